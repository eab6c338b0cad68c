//! The aggregation layer (upstream's kube-aggregator): an `apiregistration.k8s.io/v1`
//! APIService with `spec.service` claims a group/version for an extension API server, and
//! requests under `/apis/<group>/<version>` are proxied to it instead of served from the store.
//!
//! - Routing: after authentication and authorization, a request for a claimed group/version is
//!   sent over HTTPS to one endpoint of the service (Endpoints, as upstream's
//!   `--enable-aggregator-routing`: cluster IPs here are not routable), verified with the
//!   APIService's `caBundle` for the name `<service>.<namespace>.svc`. The aggregator presents
//!   the front-proxy client certificate and says who the user is in `X-Remote-User`,
//!   `X-Remote-Group` and `X-Remote-Extra-*` (requestheader authentication); the extension
//!   server authorizes on its own. Responses stream, so watches work.
//! - Availability: [`run`] checks every APIService as upstream's AvailableConditionController
//!   does (service, port, endpoints, then a `GET /apis/<group>/<version>` discovery probe) and
//!   writes the `Available` condition with upstream's reasons. Requests for an APIService that
//!   is not available get 503.
//! - Discovery: the resource list the probe fetched is cached and merged into `/apis` (legacy
//!   and aggregated) by `discovery.rs`.
//!
//! Group/versions the API server serves itself (built-in groups, CRDs, and the resource metrics
//! API of `metrics_api.rs`, which upstream gets from metrics-server behind an APIService) stay
//! local whatever an APIService says.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use futures::StreamExt;
use http::Response;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper_util::rt::TokioIo;
use parking_lot::RwLock;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{json, Value};

use super::registry::WriteOptions;
use super::request::Target;
use super::{object, respond_bytes, ApiServer, Body, RequestContext, UserInfo};
use crate::pki::FrontProxy;

/// The identity the availability probe runs as (upstream's discovery check user).
pub const AGGREGATOR_USER: &str = "system:kube-aggregator";

/// How long the discovery probe may take (upstream gives up after 5 s, with a 6 s backstop).
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long dialling an extension server may take before the proxy answers 503.
const DIAL_TIMEOUT: Duration = Duration::from_secs(30);

/// Discovery documents larger than this are refused rather than buffered.
const MAX_DISCOVERY_BYTES: usize = 16 * 1024 * 1024;

/// The namespace and name of the ConfigMap that tells extension API servers how to trust the
/// aggregator (upstream's `extension-apiserver-authentication`).
pub const AUTHENTICATION_CONFIGMAP: (&str, &str) =
    ("kube-system", "extension-apiserver-authentication");

/// The Service an APIService sends its requests to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceRef {
    pub namespace: String,
    pub name: String,
    pub port: u16,
}

/// One APIService as the aggregator uses it.
#[derive(Clone)]
pub struct Registered {
    pub name: String,
    pub group: String,
    pub version: String,
    pub service: Option<ServiceRef>,
    pub group_priority: i64,
    pub version_priority: i64,
    pub available: bool,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for Registered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registered")
            .field("name", &self.name)
            .field("service", &self.service)
            .field("available", &self.available)
            .finish()
    }
}

/// The aggregator's state: the front-proxy identity, the APIServices and their discovery.
#[derive(Default)]
pub struct Aggregator {
    front_proxy: Option<FrontProxy>,
    /// The cluster CA, published as `client-ca-file` for extension servers.
    client_ca: Option<String>,
    table: RwLock<Arc<Vec<Registered>>>,
    /// APIService name → the `resources` of its `APIResourceList`.
    discovery: RwLock<HashMap<String, Vec<Value>>>,
}

impl Aggregator {
    /// The aggregator of a server whose PKI lives in `pki_dir` (none: it proxies without a
    /// client certificate, and extension servers see no trusted identity).
    pub fn new(pki_dir: Option<&std::path::Path>) -> anyhow::Result<Aggregator> {
        let Some(dir) = pki_dir else {
            return Ok(Aggregator::default());
        };
        let front_proxy = crate::pki::load_or_create_front_proxy(dir)?;
        let client_ca = std::fs::read_to_string(dir.join("ca.crt")).ok();
        Ok(Aggregator {
            front_proxy: Some(front_proxy),
            client_ca,
            ..Default::default()
        })
    }

    /// The APIService claiming `group`/`version` for an extension server, if any.
    fn claimed(&self, group: &str, version: &str) -> Option<Registered> {
        self.table
            .read()
            .iter()
            .find(|r| r.service.is_some() && r.group == group && r.version == version)
            .cloned()
    }

    /// The APIService a request goes to, when it addresses a group/version an extension
    /// server serves and the API server does not serve itself.
    pub fn route(&self, server: &ApiServer, target: &Target) -> Option<Registered> {
        let (group, version) = match target {
            Target::Resource(r) => (&r.group, &r.version),
            Target::ResourceList { group, version } => (group, version),
            _ => return None,
        };
        if group.is_empty() {
            return None;
        }
        let claimed = self.claimed(group, version)?;
        (!served_locally(server, group, version)).then_some(claimed)
    }

    /// Groups extension servers serve (not served locally), by upstream's order: higher
    /// `groupPriorityMinimum` first, then name; versions by `versionPriority`, then Kubernetes
    /// version order. Each version carries its cached resource list (`None` until a probe
    /// fetched it).
    pub fn groups(&self, server: &ApiServer) -> Vec<AggregatedGroup> {
        let table = self.table.read().clone();
        let discovery = self.discovery.read();
        let mut groups: Vec<AggregatedGroup> = Vec::new();
        for r in table.iter().filter(|r| r.service.is_some()) {
            if served_locally(server, &r.group, &r.version) {
                continue;
            }
            let resources = discovery.get(&r.name).cloned();
            match groups.iter_mut().find(|g| g.name == r.group) {
                Some(g) => {
                    g.priority = g.priority.max(r.group_priority);
                    g.versions
                        .push((r.version.clone(), r.version_priority, resources));
                }
                None => groups.push(AggregatedGroup {
                    name: r.group.clone(),
                    priority: r.group_priority,
                    versions: vec![(r.version.clone(), r.version_priority, resources)],
                }),
            }
        }
        for g in &mut groups {
            g.versions.sort_by(|a, b| {
                b.1.cmp(&a.1)
                    .then_with(|| crate::resources::catalog::compare_kube_versions(&b.0, &a.0))
            });
        }
        groups.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.name.cmp(&b.name)));
        groups
    }

    /// The `extension-apiserver-authentication` ConfigMap's data, as upstream publishes it.
    pub fn authentication_data(&self) -> Option<Value> {
        let fp = self.front_proxy.as_ref()?;
        let mut data = json!({
            "requestheader-client-ca-file": fp.ca.cert_pem,
            "requestheader-allowed-names": json!([crate::pki::FRONT_PROXY_CLIENT]).to_string(),
            "requestheader-username-headers": json!(["X-Remote-User"]).to_string(),
            "requestheader-group-headers": json!(["X-Remote-Group"]).to_string(),
            "requestheader-extra-headers-prefix": json!(["X-Remote-Extra-"]).to_string(),
        });
        if let Some(ca) = &self.client_ca {
            data["client-ca-file"] = json!(ca);
        }
        Some(data)
    }
}

/// The `APIGroupDiscovery` items of the groups extension servers serve, built from the
/// resource lists their probes fetched; versions not (yet) discovered are left out.
pub fn aggregated_discovery(server: &ApiServer) -> Vec<Value> {
    let mut items = Vec::new();
    for g in server.aggregator.groups(server) {
        let versions: Vec<Value> = g
            .versions
            .iter()
            .filter_map(|(v, _, resources)| {
                let resources = resources.as_ref()?;
                Some(json!({"version": v, "resources": to_aggregated(&g.name, v, resources), "freshness": "Current"}))
            })
            .collect();
        if !versions.is_empty() {
            items.push(json!({"metadata": {"name": g.name, "creationTimestamp": null}, "versions": versions}));
        }
    }
    items
}

/// Legacy `APIResource` entries (subresources as `<resource>/<sub>` entries) to aggregated
/// discovery's resources with nested subresources.
pub fn to_aggregated(group: &str, version: &str, resources: &[Value]) -> Vec<Value> {
    let str_of = |r: &Value, k: &str| {
        r.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let kind_of = |r: &Value| {
        json!({
            "group": r.get("group").and_then(Value::as_str).unwrap_or(group),
            "version": r.get("version").and_then(Value::as_str).unwrap_or(version),
            "kind": str_of(r, "kind"),
        })
    };
    let mut out: Vec<Value> = Vec::new();
    for r in resources
        .iter()
        .filter(|r| !str_of(r, "name").contains('/'))
    {
        let namespaced = r
            .get("namespaced")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let mut entry = json!({
            "resource": str_of(r, "name"),
            "responseKind": kind_of(r),
            "scope": if namespaced { "Namespaced" } else { "Cluster" },
            "singularResource": str_of(r, "singularName"),
            "verbs": r.get("verbs").cloned().unwrap_or_else(|| json!([])),
        });
        for key in ["shortNames", "categories"] {
            if let Some(v) = r
                .get(key)
                .filter(|v| v.as_array().is_some_and(|a| !a.is_empty()))
            {
                entry[key] = v.clone();
            }
        }
        out.push(entry);
    }
    for r in resources {
        let name = str_of(r, "name");
        let Some((parent, sub)) = name.split_once('/') else {
            continue;
        };
        if let Some(p) = out.iter_mut().find(|e| e["resource"] == parent) {
            let entry = json!({
                "subresource": sub,
                "responseKind": kind_of(r),
                "verbs": r.get("verbs").cloned().unwrap_or_else(|| json!([])),
            });
            match p.get_mut("subresources").and_then(Value::as_array_mut) {
                Some(list) => list.push(entry),
                None => p["subresources"] = json!([entry]),
            }
        }
    }
    out
}

/// A group extension servers serve, for discovery.
#[derive(Clone, Debug)]
pub struct AggregatedGroup {
    pub name: String,
    pub priority: i64,
    /// (version, versionPriority, cached APIResource list)
    pub versions: Vec<(String, i64, Option<Vec<Value>>)>,
}

fn served_locally(server: &ApiServer, group: &str, version: &str) -> bool {
    server
        .catalog
        .groups()
        .iter()
        .any(|g| g.name == group && g.versions.iter().any(|v| v == version))
}

/// Reads an APIService object; `None` when it is too malformed to use (validation keeps such
/// objects out of the store).
pub fn parse(obj: &Value, front_proxy: Option<&FrontProxy>) -> Option<Registered> {
    let spec = obj.get("spec")?;
    let version = spec.get("version").and_then(Value::as_str)?.to_string();
    let group = spec
        .get("group")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let service = spec
        .get("service")
        .filter(|s| !s.is_null())
        .map(|s| ServiceRef {
            namespace: s
                .get("namespace")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            name: s
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            port: s
                .get("port")
                .and_then(Value::as_u64)
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(443),
        });
    let insecure = spec
        .get("insecureSkipTLSVerify")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let ca_bundle = spec
        .get("caBundle")
        .and_then(Value::as_str)
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .unwrap_or_default();
    let tls = service.as_ref().and_then(|_| {
        client_tls(&ca_bundle, insecure, front_proxy)
            .map_err(|e| tracing::debug!("APIService {}: {e}", object::name(obj)))
            .ok()
    });
    let available = obj
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Available" && c["status"] == "True")
        });
    Some(Registered {
        name: object::name(obj).to_string(),
        group,
        version,
        service,
        group_priority: spec
            .get("groupPriorityMinimum")
            .and_then(Value::as_i64)
            .unwrap_or(0),
        version_priority: spec
            .get("versionPriority")
            .and_then(Value::as_i64)
            .unwrap_or(0),
        available,
        tls,
    })
}

/// Accepts any server certificate: `insecureSkipTLSVerify: true`.
#[derive(Debug)]
pub(crate) struct SkipVerification(pub(crate) Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for SkipVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The TLS client of one APIService: its CA bundle (or no verification), and the front-proxy
/// client certificate.
fn client_tls(
    ca_bundle: &[u8],
    insecure: bool,
    front_proxy: Option<&FrontProxy>,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(SkipVerification(provider)))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut std::io::BufReader::new(ca_bundle)) {
            let cert = cert.map_err(|e| format!("its caBundle is not valid PEM: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("its caBundle holds an unusable certificate: {e}"))?;
        }
        if roots.is_empty() {
            return Err(
                "it has no caBundle to verify its server with; set spec.caBundle or spec.insecureSkipTLSVerify".into(),
            );
        }
        builder.with_root_certificates(roots)
    };
    let config = match front_proxy {
        Some(fp) => {
            let certs: Vec<CertificateDer<'static>> =
                rustls_pemfile::certs(&mut std::io::BufReader::new(fp.client.cert_pem.as_bytes()))
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("the front-proxy certificate is not valid PEM: {e}"))?;
            let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(
                &mut std::io::BufReader::new(fp.client.key_pem.as_bytes()),
            )
            .map_err(|e| format!("the front-proxy key is not valid PEM: {e}"))?
            .ok_or("the front-proxy key file holds no key")?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| format!("the front-proxy certificate is unusable: {e}"))?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// Why an APIService is not available: upstream's condition reason and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unavailable {
    pub reason: &'static str,
    pub message: String,
}

/// Where the requests of `svc` go: `host:port` of one ready endpoint (or the external name).
pub async fn resolve(server: &ApiServer, svc: &ServiceRef) -> Result<String, Unavailable> {
    let (ns, name) = (&svc.namespace, &svc.name);
    let not_present = || Unavailable {
        reason: "ServiceNotFound",
        message: format!("service/{name} in {ns:?} is not present"),
    };
    let svc_info = server
        .catalog
        .get("", "v1", "services")
        .ok_or_else(not_present)?;
    let service = match server.get_object(&svc_info, Some(ns), name).await {
        Ok(s) => s,
        Err(e) if e.code == 404 => return Err(not_present()),
        Err(e) => {
            return Err(Unavailable {
                reason: "ServiceAccessError",
                message: format!("service/{name} in {ns:?} cannot be checked due to: {e}"),
            })
        }
    };
    if service.pointer("/spec/type").and_then(Value::as_str) == Some("ExternalName") {
        let host = service
            .pointer("/spec/externalName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        return Ok(format!("{host}:{}", svc.port));
    }
    let ports = service
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let Some(svc_port) = ports
        .iter()
        .find(|p| p.get("port").and_then(Value::as_u64) == Some(u64::from(svc.port)))
    else {
        return Err(Unavailable {
            reason: "ServicePortError",
            message: format!(
                "service/{name} in {ns:?} is not listening on port {}",
                svc.port
            ),
        });
    };
    let port_name = svc_port
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let ep_info = server
        .catalog
        .get("", "v1", "endpoints")
        .ok_or_else(not_present)?;
    let endpoints = match server.get_object(&ep_info, Some(ns), name).await {
        Ok(e) => e,
        Err(e) if e.code == 404 => {
            return Err(Unavailable {
                reason: "EndpointsNotFound",
                message: format!("cannot find endpoints for service/{name} in {ns:?}"),
            })
        }
        Err(e) => {
            return Err(Unavailable {
                reason: "EndpointsAccessError",
                message: format!("service/{name} in {ns:?} cannot be checked due to: {e}"),
            })
        }
    };
    pick_endpoint(&endpoints, port_name).ok_or_else(|| Unavailable {
        reason: "MissingEndpoints",
        message: format!(
            "endpoints for service/{name} in {ns:?} have no addresses with port name {port_name:?}"
        ),
    })
}

/// One ready address of `endpoints` with the port named `port_name`, chosen at random as
/// upstream's endpoint routing does, as `host:port`.
pub fn pick_endpoint(endpoints: &Value, port_name: &str) -> Option<String> {
    let mut candidates = Vec::new();
    for subset in endpoints
        .get("subsets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let port = subset
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|p| p.get("name").and_then(Value::as_str).unwrap_or_default() == port_name)
            .and_then(|p| p.get("port").and_then(Value::as_u64));
        let Some(port) = port else { continue };
        for addr in subset
            .get("addresses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(ip) = addr
                .get("ip")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                let host = if ip.contains(':') {
                    format!("[{ip}]")
                } else {
                    ip.to_string()
                };
                candidates.push(format!("{host}:{port}"));
            }
        }
    }
    if candidates.is_empty() {
        return None;
    }
    let i = rand::random_range(0..candidates.len());
    Some(candidates.swap_remove(i))
}

/// Opens an HTTP/1.1 connection to `addr` over TLS for `svc`.
async fn connect(
    reg: &Registered,
    svc: &ServiceRef,
    addr: &str,
) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>, String> {
    let tls = reg.tls.clone().ok_or_else(|| {
        format!(
            "APIService {} has no usable TLS settings; check spec.caBundle",
            reg.name
        )
    })?;
    let host = format!("{}.{}.svc", svc.name, svc.namespace);
    let server_name =
        ServerName::try_from(host.clone()).map_err(|e| format!("invalid server name: {e}"))?;
    let tcp = tokio::time::timeout(DIAL_TIMEOUT, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| format!("dial tcp {addr}: i/o timeout"))?
        .map_err(|e| format!("dial tcp {addr}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(server_name, tcp)
        .await
        .map_err(|e| format!("tls: {e}"))?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    // The connection lives as long as the response body: a watch keeps it open.
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Headers a proxy must not pass on, plus the credentials and identity headers the
/// aggregator replaces with its own.
fn dropped_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(
        n.as_str(),
        "authorization"
            | "connection"
            | "keep-alive"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "content-length"
    ) || n.starts_with("impersonate-")
        || n.starts_with("x-remote-")
}

/// Upstream escapes extra keys in header names (`X-Remote-Extra-<key>`) as URL path
/// segments, so a key may hold any character.
fn escape_extra_key(key: &str) -> String {
    let mut out = String::new();
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn identity_headers(builder: http::request::Builder, user: &UserInfo) -> http::request::Builder {
    let mut b = builder.header("X-Remote-User", user.name.as_str());
    for g in &user.groups {
        b = b.header("X-Remote-Group", g.as_str());
    }
    for (k, vs) in &user.extra {
        for v in vs {
            b = b.header(
                format!("X-Remote-Extra-{}", escape_extra_key(k)),
                v.as_str(),
            );
        }
    }
    b
}

fn unavailable(message: &str) -> Response<Body> {
    respond_bytes(503, "text/plain; charset=utf-8", format!("{message}\n"))
}

/// Proxies an authorized request to the extension server of `reg`.
pub async fn proxy(server: &ApiServer, ctx: &RequestContext, reg: Registered) -> Response<Body> {
    let Some(svc) = reg.service.clone() else {
        return unavailable("service unavailable");
    };
    if !reg.available {
        return unavailable("service unavailable");
    }
    let addr = match resolve(server, &svc).await {
        Ok(a) => a,
        Err(e) => {
            tracing::debug!("APIService {}: {}", reg.name, e.message);
            return unavailable("service unavailable");
        }
    };
    match forward(ctx, &reg, &svc, &addr).await {
        Ok(resp) => resp,
        Err(e) => unavailable(&format!("error trying to reach service: {e}")),
    }
}

async fn forward(
    ctx: &RequestContext,
    reg: &Registered,
    svc: &ServiceRef,
    addr: &str,
) -> Result<Response<Body>, String> {
    let mut sender = connect(reg, svc, addr).await?;
    let path = if ctx.raw_query.is_empty() {
        ctx.path.clone()
    } else {
        format!("{}?{}", ctx.path, ctx.raw_query)
    };
    let mut builder = http::Request::builder()
        .method(ctx.method.clone())
        .uri(path)
        .header(
            http::header::HOST,
            format!("{}.{}.svc:{}", svc.name, svc.namespace, svc.port),
        );
    for (name, value) in ctx.headers.iter() {
        if !dropped_header(name.as_str()) {
            builder = builder.header(name, value);
        }
    }
    builder = identity_headers(builder, &ctx.user);
    let request = builder
        .body(Full::new(ctx.body.clone()))
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let (parts, body) = response.into_parts();
    // A broken connection ends the body; the client sees a truncated response, as through
    // upstream's proxy.
    let frames = http_body_util::BodyStream::new(body)
        .take_while(|f| std::future::ready(f.is_ok()))
        .filter_map(|f| std::future::ready(f.ok().map(Ok::<_, Infallible>)));
    let mut out = Response::builder().status(parts.status);
    for (name, value) in parts.headers.iter() {
        if !dropped_header(name.as_str()) {
            out = out.header(name, value);
        }
    }
    out.body(StreamBody::new(frames).boxed_unsync())
        .map_err(|e| e.to_string())
}

/// The discovery probe: `GET /apis/<group>/<version>` as the aggregator itself. Returns the
/// resource list on success.
async fn probe(reg: &Registered, svc: &ServiceRef, addr: &str) -> Result<Vec<Value>, String> {
    let url = format!("https://{addr}/apis/{}/{}", reg.group, reg.version);
    let attempt = async {
        let mut sender = connect(reg, svc, addr).await?;
        let request = identity_headers(
            http::Request::get(format!("/apis/{}/{}", reg.group, reg.version))
                .header(
                    http::header::HOST,
                    format!("{}.{}.svc:{}", svc.name, svc.namespace, svc.port),
                )
                .header(http::header::ACCEPT, "application/json"),
            &UserInfo::new(AGGREGATOR_USER, &[]),
        )
        .body(Full::new(Bytes::new()))
        .map_err(|e| e.to_string())?;
        let resp = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status();
        let body = Limited::new(resp.into_body(), MAX_DISCOVERY_BYTES)
            .collect()
            .await
            .map_err(|e| format!("reading the response: {e}"))?
            .to_bytes();
        Ok::<_, String>((status, body))
    };
    let (status, body) = match tokio::time::timeout(PROBE_TIMEOUT, attempt).await {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => return Err(format!("failing or missing response from {url}: {e}")),
        Err(_) => {
            return Err(format!(
                "failing or missing response from {url}: context deadline exceeded"
            ))
        }
    };
    if !status.is_success() {
        return Err(format!(
            "failing or missing response from {url}: bad status from {url}: {}",
            status.as_u16()
        ));
    }
    // A server that answers but lists nothing is available with no resources to discover.
    Ok(serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("resources").and_then(Value::as_array).cloned())
        .unwrap_or_default())
}

/// Checks one APIService: its `Available` condition (status, reason, message) and, when it
/// passed, the resource list its server serves.
async fn check(server: &ApiServer, reg: &Registered) -> (bool, Unavailable, Option<Vec<Value>>) {
    let Some(svc) = &reg.service else {
        return (
            true,
            Unavailable {
                reason: "Local",
                message: "Local APIServices are always available".into(),
            },
            None,
        );
    };
    let addr = match resolve(server, svc).await {
        Ok(a) => a,
        Err(e) => return (false, e, None),
    };
    match probe(reg, svc, &addr).await {
        Ok(resources) => (
            true,
            Unavailable {
                reason: "Passed",
                message: "all checks passed".into(),
            },
            Some(resources),
        ),
        Err(message) => (
            false,
            Unavailable {
                reason: "FailedDiscoveryCheck",
                message,
            },
            None,
        ),
    }
}

/// `status.conditions` with `Available` set; `None` when nothing changed (no write).
fn with_condition(obj: &Value, available: bool, why: &Unavailable) -> Option<Value> {
    let status = if available { "True" } else { "False" };
    let mut conditions: Vec<Value> = obj
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let existing = conditions.iter_mut().find(|c| c["type"] == "Available");
    match existing {
        Some(c)
            if c["status"] == status
                && c["reason"] == why.reason
                && c["message"] == *why.message =>
        {
            None
        }
        Some(c) => {
            if c["status"] != status {
                c["lastTransitionTime"] = json!(object::now_rfc3339());
            }
            c["status"] = json!(status);
            c["reason"] = json!(why.reason);
            c["message"] = json!(why.message);
            Some(json!(conditions))
        }
        None => {
            conditions.push(json!({
                "type": "Available",
                "status": status,
                "lastTransitionTime": object::now_rfc3339(),
                "reason": why.reason,
                "message": why.message,
            }));
            Some(json!(conditions))
        }
    }
}

/// Writes the `extension-apiserver-authentication` ConfigMap (created or brought up to date).
pub async fn publish_authentication(server: &ApiServer) -> Result<(), String> {
    let Some(data) = server.aggregator.authentication_data() else {
        return Ok(());
    };
    let info = server
        .catalog
        .get("", "v1", "configmaps")
        .ok_or("configmaps are not registered")?;
    let (ns, name) = AUTHENTICATION_CONFIGMAP;
    let opts = WriteOptions::internal("kube-apiserver");
    match server.get_object(&info, Some(ns), name).await {
        Ok(cur) if cur.get("data") == Some(&data) => Ok(()),
        Ok(_) => server
            .guaranteed_update(
                &info,
                Some(ns),
                name,
                None,
                &opts,
                crate::patch::Operation::Update,
                |cur| {
                    let mut cur = cur.ok_or_else(|| super::ApiError::not_found(&info, name))?;
                    cur["data"] = data.clone();
                    Ok(cur)
                },
            )
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Err(_) => {
            let obj = json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": ns}, "data": data});
            match server.create_object(&info, Some(ns), obj, &opts).await {
                Ok(_) => Ok(()),
                Err(e) if e.code == 409 => Ok(()),
                Err(e) => Err(e.to_string()),
            }
        }
    }
}

/// Checks every APIService, writes their conditions and rebuilds the routing table and the
/// discovery cache. Returns the revision the APIServices were listed at.
pub async fn sync(server: &ApiServer) -> Option<crate::store::Revision> {
    let info = server
        .catalog
        .get("apiregistration.k8s.io", "v1", "apiservices")?;
    let list = server
        .store
        .list(&info.prefix(None), None, None, 0)
        .await
        .ok()?;
    let fp = server.aggregator.front_proxy.as_ref();
    let opts = WriteOptions::internal("kube-aggregator");
    let mut table = Vec::new();
    let mut discovery = HashMap::new();
    let mut verdicts = Vec::new();
    for kv in &list.items {
        let Ok(obj) = server.decode(&info, kv) else {
            continue;
        };
        let Some(mut reg) = parse(&obj, fp) else {
            continue;
        };
        let (available, why, resources) = check(server, &reg).await;
        reg.available = available;
        if let Some(r) = resources {
            discovery.insert(reg.name.clone(), r);
        }
        if let Some(conditions) = with_condition(&obj, available, &why) {
            let rv = object::meta_str(&obj, "resourceVersion").map(str::to_string);
            verdicts.push((reg.name.clone(), rv, conditions));
        }
        table.push(reg);
    }
    // Routing follows the checks at once; the conditions say so a moment later.
    *server.aggregator.table.write() = Arc::new(table);
    *server.aggregator.discovery.write() = discovery;
    for (name, rv, conditions) in verdicts {
        let result = server
            .guaranteed_update(
                &info,
                None,
                &name,
                Some("status"),
                &opts,
                crate::patch::Operation::Update,
                |cur| {
                    let mut cur = cur.ok_or_else(|| super::ApiError::not_found(&info, &name))?;
                    // A changed spec is checked again on the event its write caused.
                    if object::meta_str(&cur, "resourceVersion").map(str::to_string) != rv {
                        return Err(super::ApiError::stale(&info, &name));
                    }
                    cur["status"]["conditions"] = conditions.clone();
                    Ok(cur)
                },
            )
            .await;
        if let Err(e) = result {
            tracing::debug!("writing the status of APIService {name}: {e}");
        }
    }
    Some(list.revision)
}

/// The availability controller: checks every APIService when any changes and every `period`.
pub async fn run(server: Arc<ApiServer>, period: Duration) {
    while let Err(e) = publish_authentication(&server).await {
        tracing::warn!("cannot publish the extension-apiserver-authentication ConfigMap: {e}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let Some(prefix) = server
        .catalog
        .get("apiregistration.k8s.io", "v1", "apiservices")
        .map(|i| i.prefix(None))
    else {
        return;
    };
    loop {
        let Some(from) = sync(&server).await else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        let mut events = match server.store.watch(&prefix, from).await {
            Ok(w) => w,
            Err(e) => {
                tracing::debug!("watch on {prefix} failed: {e}");
                tokio::time::sleep(period.min(Duration::from_secs(1))).await;
                continue;
            }
        };
        let deadline = tokio::time::sleep(period);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = deadline.as_mut() => break,
                ev = events.next() => match ev {
                    // Our own status writes come back as events; the next sync writes nothing.
                    Some(Ok(_)) => {
                        if sync(&server).await.is_none() {
                            break;
                        }
                    }
                    _ => break,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_an_apiservice() {
        let obj = json!({"metadata": {"name": "v1.x.example.com"}, "spec": {
            "group": "x.example.com", "version": "v1", "insecureSkipTLSVerify": true,
            "groupPriorityMinimum": 1000, "versionPriority": 15,
            "service": {"namespace": "ns", "name": "ext"}},
            "status": {"conditions": [{"type": "Available", "status": "True"}]}});
        let r = parse(&obj, None).expect("a valid APIService");
        assert_eq!(
            r.service,
            Some(ServiceRef {
                namespace: "ns".into(),
                name: "ext".into(),
                port: 443
            })
        );
        assert!(r.available);
        assert!(r.tls.is_some(), "insecureSkipTLSVerify needs no CA bundle");
        let no_ca = json!({"metadata": {"name": "v1.y"}, "spec": {"group": "y", "version": "v1",
            "service": {"namespace": "ns", "name": "ext", "port": 8443}}});
        let r = parse(&no_ca, None).unwrap();
        assert_eq!(r.service.as_ref().map(|s| s.port), Some(8443));
        assert!(
            r.tls.is_none(),
            "without a CA bundle nothing can be verified"
        );
        assert!(!r.available);
        assert!(parse(&json!({"metadata": {"name": "x"}, "spec": {}}), None).is_none());
    }

    #[test]
    fn picks_an_endpoint_with_the_service_ports_name() {
        let ep = json!({"subsets": [
            {"addresses": [{"ip": "127.0.0.9"}], "ports": [{"name": "other", "port": 1}]},
            {"addresses": [{"ip": "127.0.0.5"}], "ports": [{"name": "https", "port": 8443}]},
        ]});
        assert_eq!(
            pick_endpoint(&ep, "https").as_deref(),
            Some("127.0.0.5:8443")
        );
        assert_eq!(pick_endpoint(&ep, "grpc"), None);
        let unnamed = json!({"subsets": [{"addresses": [{"ip": "::1"}], "ports": [{"port": 9}]}]});
        assert_eq!(pick_endpoint(&unnamed, "").as_deref(), Some("[::1]:9"));
        assert_eq!(
            pick_endpoint(&json!({"subsets": [{"ports": [{"port": 9}]}]}), ""),
            None
        );
    }

    #[test]
    fn condition_changes_only_when_the_verdict_does() {
        let passed = Unavailable {
            reason: "Passed",
            message: "all checks passed".into(),
        };
        let obj = json!({"status": {}});
        let conditions = with_condition(&obj, true, &passed).expect("a first condition");
        assert_eq!(conditions[0]["status"], "True");
        let obj = json!({"status": {"conditions": conditions}});
        assert_eq!(with_condition(&obj, true, &passed), None);
        let missing = Unavailable {
            reason: "MissingEndpoints",
            message: "endpoints for service/x in \"ns\" have no addresses with port name \"\""
                .into(),
        };
        let changed = with_condition(&obj, false, &missing).expect("a changed condition");
        assert_eq!(changed[0]["reason"], "MissingEndpoints");
        assert_eq!(changed[0]["status"], "False");
    }

    #[test]
    fn converts_legacy_resources_to_aggregated_discovery() {
        let legacy = vec![
            json!({"name": "widgets", "singularName": "widget", "namespaced": true, "kind": "Widget", "verbs": ["get", "list"], "shortNames": ["wd"]}),
            json!({"name": "widgets/status", "singularName": "", "namespaced": true, "kind": "Widget", "verbs": ["get"]}),
        ];
        let agg = to_aggregated("x.example.com", "v1", &legacy);
        assert_eq!(agg.len(), 1);
        assert_eq!(agg[0]["resource"], "widgets");
        assert_eq!(agg[0]["scope"], "Namespaced");
        assert_eq!(agg[0]["responseKind"]["group"], "x.example.com");
        assert_eq!(agg[0]["shortNames"], json!(["wd"]));
        assert_eq!(agg[0]["subresources"][0]["subresource"], "status");
    }

    #[test]
    fn strips_credentials_and_escapes_extra_keys() {
        assert!(dropped_header("Authorization"));
        assert!(dropped_header("Impersonate-User"));
        assert!(dropped_header("X-Remote-User"));
        assert!(!dropped_header("Accept"));
        assert_eq!(
            escape_extra_key("authentication.kubernetes.io/pod-name"),
            "authentication.kubernetes.io%2Fpod-name"
        );
    }
}
