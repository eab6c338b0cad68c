//! API aggregation: a tiny extension API server the runner starts in its own process, behind
//! an APIService, so scenarios can check that the API server proxies a group to it
//! (`@needs:runner-reachable`: the API server must reach the runner's loopback address).
//!
//! The server serves one namespaced resource of one group/version from its own memory:
//! discovery (`/apis/<group>/<version>`) and list, get, create and delete. It trusts identity
//! headers (`X-Remote-User`, `X-Remote-Group`) only from a client certificate signed by the
//! `requestheader-client-ca-file` of the cluster's `extension-apiserver-authentication`
//! ConfigMap with a name from `requestheader-allowed-names`, as a real extension server does;
//! every object it creates carries annotations naming the server and that user, which only it
//! could have written.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use parking_lot::Mutex;
use serde_json::{json, Value};

use super::support::{StepArgs, StepFailure, StepResult};
use crate::api;
use crate::world::KubeWorld;

/// The annotation every object the extension server creates carries: its own name.
pub const SERVED_BY: &str = "extension.kubeproof.dev/served-by";
/// The annotation naming the user the aggregator vouched for, as the extension server saw it.
pub const REQUESTED_BY: &str = "extension.kubeproof.dev/requested-by";

/// What the extension server serves and who may vouch for users.
#[derive(Clone, Debug)]
pub struct ExtensionConfig {
    pub group: String,
    pub version: String,
    pub resource: String,
    /// The front proxy's CA (`requestheader-client-ca-file`); without it identity headers are
    /// never trusted.
    pub requestheader_ca: Option<String>,
    pub requestheader_allowed_names: Vec<String>,
}

impl ExtensionConfig {
    fn kind(&self) -> String {
        let singular = self.singular();
        let mut c = singular.chars();
        match c.next() {
            Some(f) => f.to_uppercase().chain(c).collect(),
            None => String::new(),
        }
    }

    fn singular(&self) -> String {
        self.resource
            .strip_suffix('s')
            .unwrap_or(&self.resource)
            .to_string()
    }
}

/// A running extension API server; stops when dropped.
pub struct ExtensionServer {
    pub addr: SocketAddr,
    /// The PEM CA bundle clients verify it with (its self-signed certificate).
    pub ca_pem: String,
    pub name: String,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ExtensionServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct State {
    config: ExtensionConfig,
    name: String,
    /// (namespace, name) → object.
    objects: Mutex<BTreeMap<(String, String), Value>>,
    next_rv: Mutex<u64>,
}

/// Who the request is from, when a trusted front proxy said so.
#[derive(Clone, Debug, Default)]
struct Caller {
    user: Option<String>,
}

impl ExtensionServer {
    /// Starts the server on a free loopback port with a certificate for
    /// `<service>.<namespace>.svc` and 127.0.0.1.
    pub async fn start(
        config: ExtensionConfig,
        service: &str,
        namespace: &str,
    ) -> anyhow::Result<ExtensionServer> {
        let host = format!("{service}.{namespace}.svc");
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(vec![host.clone(), "localhost".into()])?;
        params.subject_alt_names.push(rcgen::SanType::IpAddress(
            std::net::Ipv4Addr::LOCALHOST.into(),
        ));
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, host.clone());
        let cert = params.self_signed(&key)?;
        let ca_pem = cert.pem();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let builder = match &config.requestheader_ca {
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for c in rustls_pemfile::certs(&mut std::io::BufReader::new(ca.as_bytes())) {
                    roots.add(c?)?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .allow_unauthenticated()
                .build()?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let key_der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der())
            .map_err(|e| anyhow::anyhow!("the extension server's key: {e}"))?;
        let mut tls = builder.with_single_cert(vec![cert.der().clone()], key_der)?;
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let name = format!("{service}.{namespace}");
        let state = Arc::new(State {
            config,
            name: name.clone(),
            objects: Mutex::new(BTreeMap::new()),
            next_rv: Mutex::new(1),
        });
        let served = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let state = served.clone();
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let trusted = front_proxy_verified(
                        stream.get_ref().1.peer_certificates(),
                        &state.config.requestheader_allowed_names,
                    );
                    let service =
                        hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                            let state = state.clone();
                            async move {
                                let caller = Caller {
                                    user: trusted.then(|| header(&req, "X-Remote-User")).flatten(),
                                };
                                let (parts, body) = req.into_parts();
                                let body = body
                                    .collect()
                                    .await
                                    .map(|c| c.to_bytes())
                                    .unwrap_or_default();
                                Ok::<_, Infallible>(state.handle(
                                    &parts.method,
                                    parts.uri.path(),
                                    &body,
                                    &caller,
                                ))
                            }
                        });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(ExtensionServer {
            addr,
            ca_pem,
            name,
            state,
            task,
        })
    }

    /// The object the server holds as `namespace/name`.
    pub fn object(&self, namespace: &str, name: &str) -> Option<Value> {
        self.state
            .objects
            .lock()
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }
}

fn header<B>(req: &Request<B>, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Whether the client presented a certificate (already verified against the requestheader
/// CA by the TLS layer) whose common name is allowed to vouch for users.
fn front_proxy_verified(
    certs: Option<&[rustls::pki_types::CertificateDer<'_>]>,
    allowed: &[String],
) -> bool {
    let Some(leaf) = certs.and_then(|c| c.first()) else {
        return false;
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(leaf.as_ref()) else {
        return false;
    };
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|c| c.as_str().ok())
        .unwrap_or_default()
        .to_string();
    allowed.is_empty() || allowed.contains(&cn)
}

fn respond(code: u16, body: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

fn status(code: u16, reason: &str, message: String) -> Response<Full<Bytes>> {
    respond(
        code,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": message, "reason": reason, "code": code}),
    )
}

impl State {
    fn handle(
        &self,
        method: &Method,
        path: &str,
        body: &[u8],
        caller: &Caller,
    ) -> Response<Full<Bytes>> {
        let c = &self.config;
        let gv = format!("{}/{}", c.group, c.version);
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        match parts.as_slice() {
            ["apis", g, v] if *g == c.group && *v == c.version && method == Method::GET => respond(
                200,
                &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                        "resources": [{"name": c.resource, "singularName": c.singular(),
                        "namespaced": true, "kind": c.kind(),
                        "verbs": ["create", "delete", "get", "list"]}]}),
            ),
            ["apis", g, v, res] if *g == c.group && *v == c.version && *res == c.resource => {
                self.list(method, None)
            }
            ["apis", g, v, "namespaces", ns, res]
                if *g == c.group && *v == c.version && *res == c.resource =>
            {
                if method == Method::POST {
                    self.create(ns, body, caller)
                } else {
                    self.list(method, Some(ns))
                }
            }
            ["apis", g, v, "namespaces", ns, res, name]
                if *g == c.group && *v == c.version && *res == c.resource =>
            {
                self.one(method, ns, name)
            }
            _ => status(
                404,
                "NotFound",
                "the server could not find the requested resource".into(),
            ),
        }
    }

    fn list(&self, method: &Method, ns: Option<&str>) -> Response<Full<Bytes>> {
        if method != Method::GET {
            return status(
                405,
                "MethodNotAllowed",
                format!("{method} is not supported"),
            );
        }
        let items: Vec<Value> = self
            .objects
            .lock()
            .iter()
            .filter(|((n, _), _)| ns.is_none_or(|ns| ns == n))
            .map(|(_, o)| o.clone())
            .collect();
        let rv = self.next_rv.lock().to_string();
        respond(
            200,
            &json!({"kind": format!("{}List", self.config.kind()),
                    "apiVersion": format!("{}/{}", self.config.group, self.config.version),
                    "metadata": {"resourceVersion": rv}, "items": items}),
        )
    }

    fn create(&self, ns: &str, body: &[u8], caller: &Caller) -> Response<Full<Bytes>> {
        let Ok(mut obj) = serde_json::from_slice::<Value>(body) else {
            return status(
                400,
                "BadRequest",
                "the request body is not a JSON object".into(),
            );
        };
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if name.is_empty() {
            return status(422, "Invalid", "metadata.name: Required value".into());
        }
        let key = (ns.to_string(), name.clone());
        let mut objects = self.objects.lock();
        if objects.contains_key(&key) {
            return status(
                409,
                "AlreadyExists",
                format!(
                    "{}.{} {name:?} already exists",
                    self.config.resource, self.config.group
                ),
            );
        }
        let rv = {
            let mut next = self.next_rv.lock();
            *next += 1;
            *next
        };
        let meta = &mut obj["metadata"];
        meta["namespace"] = json!(ns);
        meta["uid"] = json!(format!("{}-{rv}", self.name));
        meta["resourceVersion"] = json!(rv.to_string());
        meta["creationTimestamp"] =
            json!(chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string());
        if !meta["annotations"].is_object() {
            meta["annotations"] = json!({});
        }
        meta["annotations"][SERVED_BY] = json!(self.name);
        meta["annotations"][REQUESTED_BY] = json!(caller.user.clone().unwrap_or_default());
        objects.insert(key, obj.clone());
        respond(201, &obj)
    }

    fn one(&self, method: &Method, ns: &str, name: &str) -> Response<Full<Bytes>> {
        let key = (ns.to_string(), name.to_string());
        let mut objects = self.objects.lock();
        let found = match *method {
            Method::GET => objects.get(&key).cloned(),
            Method::DELETE => objects.remove(&key),
            _ => {
                return status(
                    405,
                    "MethodNotAllowed",
                    format!("{method} is not supported"),
                )
            }
        };
        match found {
            Some(o) => respond(200, &o),
            None => status(
                404,
                "NotFound",
                format!(
                    "{}.{} {name:?} not found",
                    self.config.resource, self.config.group
                ),
            ),
        }
    }
}

/// Reads the requestheader settings of `extension-apiserver-authentication`, as an extension
/// server does at start.
async fn requestheader_settings(
    world: &KubeWorld,
) -> anyhow::Result<(Option<String>, Vec<String>)> {
    let req = api::request(
        Method::GET,
        "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication",
        None,
        Vec::new(),
    )?;
    let resp = api::send(world.client()?, req).await?;
    if !resp.is_success() {
        return Ok((None, Vec::new()));
    }
    let data = resp
        .json
        .as_ref()
        .and_then(|j| j.get("data"))
        .cloned()
        .unwrap_or_default();
    let ca = data
        .get("requestheader-client-ca-file")
        .and_then(Value::as_str)
        .map(str::to_string);
    let allowed = data
        .get("requestheader-allowed-names")
        .and_then(Value::as_str)
        .and_then(|s| serde_json::from_str::<Vec<String>>(s).ok())
        .unwrap_or_default();
    Ok((ca, allowed))
}

async fn create(
    world: &mut KubeWorld,
    word: &str,
    ns: Option<&str>,
    body: Value,
) -> anyhow::Result<()> {
    let res = world.target()?.resolver.by_word(word).await?;
    let name = body["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let req = api::request(
        Method::POST,
        &res.collection_path(ns),
        Some("application/json"),
        serde_json::to_vec(&body)?,
    )?;
    let resp = api::send(world.client()?, req).await?;
    if !resp.is_success() {
        anyhow::bail!("creating {word} {name}: {}", resp.describe());
    }
    world.record_created(&res, ns, &name);
    Ok(())
}

/// `an extension API server serving group "G" version "V" with resource "R"`: starts the
/// server, and registers a selectorless Service, its Endpoints and the APIService `V.G`.
pub async fn extension_server(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let group = args.req("group")?.to_string();
    let version = args.req("version")?.to_string();
    let resource = args.req("resource")?.to_string();
    let (requestheader_ca, allowed) = requestheader_settings(world).await?;
    let ns = world.namespace.clone();
    let service = "extension-apiserver";
    let config = ExtensionConfig {
        group: group.clone(),
        version: version.clone(),
        resource,
        requestheader_ca,
        requestheader_allowed_names: allowed,
    };
    let server = ExtensionServer::start(config, service, &ns).await?;
    let port = server.addr.port();
    create(
        world,
        "services",
        Some(&ns),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": service},
               "spec": {"ports": [{"name": "https", "port": 443, "targetPort": port, "protocol": "TCP"}]}}),
    )
    .await?;
    create(
        world,
        "endpoints",
        Some(&ns),
        json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": service},
               "subsets": [{"addresses": [{"ip": "127.0.0.1"}],
                            "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]}),
    )
    .await?;
    use base64::Engine as _;
    let apiservice = format!("{version}.{group}");
    create(
        world,
        "apiservices",
        None,
        json!({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
               "metadata": {"name": apiservice},
               "spec": {"group": group, "version": version, "groupPriorityMinimum": 1000,
                        "versionPriority": 15,
                        "caBundle": base64::engine::general_purpose::STANDARD.encode(&server.ca_pem),
                        "service": {"namespace": ns, "name": service, "port": 443}}}),
    )
    .await?;
    world.vars.insert("apiservice".into(), apiservice);
    world
        .vars
        .insert("extension_server".into(), server.name.clone());
    world.extension_servers.push(server);
    Ok(())
}

/// Who the runner is to the API server, by SelfSubjectReview.
async fn runner_user(world: &KubeWorld) -> anyhow::Result<String> {
    let body = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"});
    let req = api::request(
        Method::POST,
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        Some("application/json"),
        body.to_string().into_bytes(),
    )?;
    let resp = api::send(world.client()?, req).await?;
    if !resp.is_success() {
        anyhow::bail!(
            "cannot ask who the runner is (SelfSubjectReview): {}",
            resp.describe()
        );
    }
    resp.json
        .as_ref()
        .and_then(|j| j.pointer("/status/userInfo/username"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("the SelfSubjectReview answer names no user"))
}

/// Whether `/apis` lists `group`, in the legacy APIGroupList and in aggregated discovery.
async fn discovery_lists(world: &KubeWorld, group: &str) -> anyhow::Result<(bool, bool)> {
    let legacy = api::send(
        world.client()?,
        api::request(Method::GET, "/apis", None, Vec::new())?,
    )
    .await?;
    if !legacy.is_success() {
        anyhow::bail!("GET /apis: {}", legacy.describe());
    }
    let in_legacy = legacy
        .json
        .as_ref()
        .and_then(|j| j.get("groups"))
        .and_then(Value::as_array)
        .is_some_and(|gs| gs.iter().any(|g| g["name"] == group));
    let mut req = api::request(Method::GET, "/apis", None, Vec::new())?;
    req.headers_mut().insert(
        http::header::ACCEPT,
        http::HeaderValue::from_static(
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
        ),
    );
    let aggregated = api::send(world.client()?, req).await?;
    if !aggregated.is_success() {
        anyhow::bail!(
            "GET /apis (aggregated discovery): {}",
            aggregated.describe()
        );
    }
    let in_aggregated = aggregated
        .json
        .as_ref()
        .and_then(|j| j.get("items"))
        .and_then(Value::as_array)
        .is_some_and(|gs| gs.iter().any(|g| g["metadata"]["name"] == group));
    Ok((in_legacy, in_aggregated))
}

/// `discovery lists|does not list group "G"[ within N seconds]`: both `/apis` documents
/// (legacy and aggregated) agree.
pub async fn discovery_group(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let group = args.req("group")?.to_string();
    let want = args.get("neg") == Some("lists");
    let deadline = std::time::Instant::now() + args.within().unwrap_or_default();
    loop {
        let (legacy, aggregated) = discovery_lists(world, &group).await?;
        if legacy == want && aggregated == want {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            let shown = |b: bool| if b { "lists" } else { "does not list" };
            return Err(StepFailure::msg(format!(
                "the legacy discovery document (GET /apis) {} group {group:?} and the aggregated one {} it; expected both to {}",
                shown(legacy),
                shown(aggregated),
                if want { "list it" } else { "leave it out" }
            )));
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// `the extension API server holds "NAME"[ created by user "U"]`: the object is in the
/// extension server's own memory (the scenario's namespace), not in the cluster's store.
pub async fn extension_holds(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let name = args.req("name")?.to_string();
    let user = match (args.get("user"), args.get("me")) {
        (Some(u), _) => Some(u.to_string()),
        (None, Some(_)) => Some(runner_user(world).await?),
        (None, None) => None,
    };
    let Some(server) = world.extension_servers.last() else {
        return Err(StepFailure::msg(
            "no extension API server runs in this scenario; start one with `Given an extension API server serving group ...`",
        ));
    };
    let Some(obj) = server.object(&world.namespace, &name) else {
        return Err(StepFailure::msg(format!(
            "the extension API server {} holds no object {:?} in namespace {}: the request did not reach it",
            server.name, name, world.namespace
        )));
    };
    if let Some(user) = user {
        let seen = obj
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(REQUESTED_BY))
            .and_then(Value::as_str)
            .unwrap_or_default();
        if seen != user {
            return Err(StepFailure::msg(format!(
                "the extension API server saw {name:?} created by user {seen:?}, not {user:?} (an empty user means the aggregator's identity headers were not trusted)"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> State {
        State {
            config: ExtensionConfig {
                group: "x.example.com".into(),
                version: "v1".into(),
                resource: "widgets".into(),
                requestheader_ca: None,
                requestheader_allowed_names: Vec::new(),
            },
            name: "ext.ns".into(),
            objects: Mutex::new(BTreeMap::new()),
            next_rv: Mutex::new(1),
        }
    }

    async fn body(r: Response<Full<Bytes>>) -> Value {
        let b = r.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&b).unwrap()
    }

    #[tokio::test]
    async fn serves_discovery_and_its_resource_from_memory() {
        let s = state();
        let caller = Caller {
            user: Some("alice".into()),
        };
        let d = body(s.handle(&Method::GET, "/apis/x.example.com/v1", b"", &caller)).await;
        assert_eq!(d["resources"][0]["kind"], "Widget");
        assert_eq!(d["resources"][0]["singularName"], "widget");
        let created = s.handle(
            &Method::POST,
            "/apis/x.example.com/v1/namespaces/ns/widgets",
            br#"{"apiVersion":"x.example.com/v1","kind":"Widget","metadata":{"name":"w1"}}"#,
            &caller,
        );
        assert_eq!(created.status(), 201);
        let again = s.handle(
            &Method::POST,
            "/apis/x.example.com/v1/namespaces/ns/widgets",
            br#"{"metadata":{"name":"w1"}}"#,
            &caller,
        );
        assert_eq!(again.status(), 409);
        let list = body(s.handle(
            &Method::GET,
            "/apis/x.example.com/v1/namespaces/ns/widgets",
            b"",
            &caller,
        ))
        .await;
        assert_eq!(
            list["items"][0]["metadata"]["annotations"][REQUESTED_BY],
            "alice"
        );
        assert_eq!(
            list["items"][0]["metadata"]["annotations"][SERVED_BY],
            "ext.ns"
        );
        let other = body(s.handle(
            &Method::GET,
            "/apis/x.example.com/v1/namespaces/other/widgets",
            b"",
            &caller,
        ))
        .await;
        assert_eq!(other["items"], json!([]));
        let gone = s.handle(
            &Method::DELETE,
            "/apis/x.example.com/v1/namespaces/ns/widgets/w1",
            b"",
            &caller,
        );
        assert_eq!(gone.status(), 200);
        let missing = s.handle(
            &Method::GET,
            "/apis/x.example.com/v1/namespaces/ns/widgets/w1",
            b"",
            &caller,
        );
        assert_eq!(missing.status(), 404);
    }
}
