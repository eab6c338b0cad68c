//! A kube-apiserver-compatible HTTPS API over the [`crate::store`].
//!
//! Request path, in upstream's filter order: TLS (client certificate) → authentication
//! ([`authn`]: certificate, bearer tokens, anonymous) → classification ([`request`]) → audit
//! ([`audit`]) → impersonation → API Priority and Fairness ([`fairness`]) → authorization
//! ([`authz`]) → discovery / non-resource endpoints, the review APIs ([`reviews`]), or the
//! generic [`registry`] which implements every verb once for every resource, parameterised by
//! the resource's [`crate::resources::Strategy`], with the [`admission`] chain around its
//! writes. Special resources (namespaces, services, CRDs, pod binding, scale) hook into the
//! registry in [`hooks`]. The security caches are kept current by [`informer`]; the control
//! loops security needs are in [`loops`].

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use parking_lot::RwLock;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::openapi::OpenApi;
use crate::pki::Pki;
use crate::resources::Catalog;
use crate::store::Store;

pub mod admission;
pub mod admission_objects;
pub mod aggregator;
pub mod attach;
pub mod audit;
pub mod auth;
pub mod authn;
pub mod authz;
pub mod bootstrap_policy;
pub mod discovery;
pub mod encrypted_store;
pub mod exec;
pub mod fairness;
#[cfg(test)]
mod fuzz_tests;
pub mod hooks;
pub mod informer;
pub mod logs;
pub mod loops;
pub mod metrics;
pub mod metrics_api;
pub mod negotiate;
pub mod nonresource;
pub mod object;
mod policy_admission;
pub mod portforward;
pub mod protobuf;
pub mod registry;
pub mod request;
pub mod reviews;
pub mod status;
pub mod table;
pub mod tls;
pub mod typed;
pub mod watch_stream;
pub mod webhooks;

pub use admission::Requester;
pub use auth::UserInfo;
pub use authz::AuthorizationMode;
pub use status::{ApiError, ApiResult};

pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, Infallible>;

/// Timings and limits of the API server; defaults are upstream's.
#[derive(Clone, Debug)]
pub struct ApiServerConfig {
    /// Services' cluster IPs come from here (inside 127.0.0.0/8 so they stay on loopback).
    pub service_cidr: (std::net::Ipv4Addr, u8),
    pub node_port_range: (u16, u16),
    /// How often a watch with `allowWatchBookmarks` gets a BOOKMARK (upstream: about a minute).
    pub bookmark_interval: Duration,
    /// Longest a watch stays open when the client gives no timeout (upstream: 30–60 min).
    pub max_watch_timeout: Duration,
    /// Request bodies larger than this are refused with 413 (upstream: 3 MiB objects).
    pub max_body_bytes: usize,
    /// How long a list with a future resourceVersion waits before 504 (upstream: 3 s).
    pub future_rv_wait: Duration,
    /// `--anonymous-auth`: requests without credentials proceed as `system:anonymous` and
    /// RBAC decides. Off (the default here): they get 401, except on `/healthz`, `/livez`,
    /// `/readyz` and `/version`.
    pub anonymous_auth: bool,
    /// `--token-auth-file`: static bearer tokens (`token,user,uid[,"groups"]` lines).
    pub token_auth_file: Option<PathBuf>,
    /// `--service-account-issuer`: the `iss` of ServiceAccount tokens.
    pub service_account_issuer: String,
    /// `--api-audiences`: audiences tokens must carry (empty: the issuer).
    pub api_audiences: Vec<String>,
    /// `--authorization-mode`, tried in order (kubeadm's `Node,RBAC` by default).
    pub authorization_modes: Vec<AuthorizationMode>,
    /// `--enable-admission-plugins`, on top of upstream's default set.
    pub enable_admission_plugins: Vec<String>,
    /// `--disable-admission-plugins`.
    pub disable_admission_plugins: Vec<String>,
    /// PodSecurity's defaults for unlabelled namespaces and its exemptions.
    pub pod_security: crate::security::admission::pod_security::Config,
    /// `--audit-policy-file`; auditing is on when it and `audit_log_path` are set.
    pub audit_policy_file: Option<PathBuf>,
    /// `--audit-log-path`: JSON lines of `audit.k8s.io/v1` Events.
    pub audit_log_path: Option<PathBuf>,
    /// `--encryption-provider-config`: an EncryptionConfiguration for data at rest.
    pub encryption_provider_config: Option<PathBuf>,
    /// `--enable-priority-and-fairness`.
    pub priority_and_fairness: bool,
    /// `--max-requests-inflight` + `--max-mutating-requests-inflight`: the seats API Priority
    /// and Fairness shares among priority levels (upstream: 400 + 200).
    pub max_requests_inflight: usize,
    pub max_mutating_requests_inflight: usize,
    /// How long a request may wait in a priority level's queue before 429 (upstream: a
    /// quarter of the 60 s request timeout).
    pub flow_control_max_wait: Duration,
    /// How often every APIService's availability is checked again, besides on each change
    /// (upstream's AvailableConditionController resyncs every 30 s).
    pub apiservice_availability_period: Duration,
}

impl Default for ApiServerConfig {
    fn default() -> Self {
        ApiServerConfig {
            service_cidr: (std::net::Ipv4Addr::new(127, 96, 0, 0), 16),
            node_port_range: (30000, 32767),
            bookmark_interval: Duration::from_secs(60),
            max_watch_timeout: Duration::from_secs(1800),
            max_body_bytes: 3 * 1024 * 1024,
            future_rv_wait: Duration::from_secs(3),
            anonymous_auth: false,
            token_auth_file: None,
            service_account_issuer: "https://kubernetes.default.svc.cluster.local".into(),
            api_audiences: Vec::new(),
            authorization_modes: vec![AuthorizationMode::Node, AuthorizationMode::Rbac],
            enable_admission_plugins: vec![admission::NODE_RESTRICTION.to_string()],
            disable_admission_plugins: Vec::new(),
            pod_security: Default::default(),
            audit_policy_file: None,
            audit_log_path: None,
            encryption_provider_config: None,
            priority_and_fairness: true,
            max_requests_inflight: 400,
            max_mutating_requests_inflight: 200,
            flow_control_max_wait: Duration::from_secs(15),
            apiservice_availability_period: Duration::from_secs(30),
        }
    }
}

/// Authentication, authorization, admission, audit and fairness of the server.
pub struct Security {
    pub authn: authn::Authentication,
    pub authz: authz::Authorizer,
    pub admission: admission::Admission,
    pub audit: Option<audit::Auditor>,
    pub fairness: Option<fairness::Fairness>,
    pub quota_queue: loops::quota::QuotaQueue,
}

impl Security {
    /// Builds everything `config` asks for. `pki_dir` holds the ServiceAccount signing key
    /// (created when missing); without it the TokenRequest API and ServiceAccount tokens are
    /// off.
    pub fn from_config(
        config: &ApiServerConfig,
        metrics: &prometheus::Registry,
        pki_dir: Option<&std::path::Path>,
    ) -> Result<Security> {
        use crate::security::authn::{Authenticator, TokenFile, TokenIssuer};
        let token_file = match &config.token_auth_file {
            Some(p) => Some(TokenFile::load(p).map_err(anyhow::Error::msg)?),
            None => None,
        };
        let service_accounts = match pki_dir {
            Some(dir) => Some(
                TokenIssuer::load_or_create(dir, &config.service_account_issuer)
                    .map_err(anyhow::Error::msg)?
                    .with_audiences(config.api_audiences.clone()),
            ),
            None => None,
        };
        let audit = match (&config.audit_policy_file, &config.audit_log_path) {
            (Some(policy), Some(log)) => {
                Some(audit::Auditor::open(policy, log).map_err(anyhow::Error::msg)?)
            }
            (None, None) => None,
            _ => anyhow::bail!("auditing needs both an audit policy file and an audit log path"),
        };
        let fairness = if config.priority_and_fairness {
            Some(
                fairness::Fairness::new(
                    metrics,
                    config.max_requests_inflight + config.max_mutating_requests_inflight,
                    config.flow_control_max_wait,
                )
                .map_err(anyhow::Error::msg)?,
            )
        } else {
            None
        };
        if config.authorization_modes.is_empty() {
            anyhow::bail!("at least one authorization mode is required");
        }
        Ok(Security {
            authn: authn::Authentication {
                anonymous: config.anonymous_auth,
                tokens: Authenticator {
                    token_file,
                    service_accounts,
                },
            },
            authz: authz::Authorizer::new(&config.authorization_modes),
            admission: admission::Admission::new(
                &config.enable_admission_plugins,
                &config.disable_admission_plugins,
                config.pod_security.clone(),
            )
            .map_err(anyhow::Error::msg)?,
            audit,
            fairness,
            quota_queue: Default::default(),
        })
    }
}

/// The API server's shared state.
pub struct ApiServer {
    pub catalog: Arc<Catalog>,
    pub store: Arc<dyn Store>,
    pub config: ApiServerConfig,
    pub metrics: metrics::Metrics,
    openapi: RwLock<Option<Arc<OpenApi>>>,
    /// `host:port` clients should use, reported in discovery.
    pub advertise: RwLock<String>,
    /// Serialises cluster-IP / node-port allocation.
    pub(crate) alloc_lock: tokio::sync::Mutex<()>,
    pub security: Security,
    /// APIServices and the extension servers requests are proxied to.
    pub aggregator: aggregator::Aggregator,
}

impl ApiServer {
    /// A server over `store` as `config` says; `pki_dir` holds the ServiceAccount signing key.
    pub fn new(
        store: Arc<dyn Store>,
        config: ApiServerConfig,
        pki_dir: Option<&std::path::Path>,
    ) -> Result<Arc<ApiServer>> {
        let metrics = metrics::Metrics::new();
        let security = Security::from_config(&config, metrics.registry(), pki_dir)?;
        let aggregator = aggregator::Aggregator::new(pki_dir)?;
        Ok(Arc::new(ApiServer {
            catalog: Arc::new(Catalog::builtin()),
            store,
            config,
            metrics,
            openapi: RwLock::new(None),
            advertise: RwLock::new(String::new()),
            alloc_lock: tokio::sync::Mutex::new(()),
            security,
            aggregator,
        }))
    }

    /// The OpenAPI documents for the current set of resources, built on first use and again
    /// after the set changes (CRDs).
    pub fn openapi(&self) -> Arc<OpenApi> {
        if let Some(doc) = self.openapi.read().as_ref() {
            return doc.clone();
        }
        let doc = Arc::new(OpenApi::build(&self.catalog.all()));
        *self.openapi.write() = Some(doc.clone());
        doc
    }

    /// Forget the OpenAPI documents (the served resources changed).
    pub fn invalidate_openapi(&self) {
        *self.openapi.write() = None;
    }

    /// The TLS acceptor for the cluster's PKI: serving certificate, client certificates from
    /// the cluster CA.
    pub fn tls_acceptor(pki: &Pki) -> Result<Acceptor> {
        let tls = tls::server_config(pki)?;
        Ok(Acceptor {
            tls: tokio_rustls::TlsAcceptor::from(tls.config),
            client_chain: tls.client_chain,
        })
    }

    /// Serves HTTPS on `listener` until `shutdown` turns true.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        tls: Acceptor,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<()> {
        let local = listener.local_addr().context("listener has no address")?;
        *self.advertise.write() = local.to_string();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (tcp, peer) = match accepted {
                        Ok(x) => x,
                        Err(e) => {
                            tracing::warn!("accept failed: {e}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let _ = tcp.set_nodelay(true);
                    let server = self.clone();
                    let tls = tls.clone();
                    let shutdown = shutdown.clone();
                    tokio::spawn(async move {
                        server.serve_connection(tls, tcp, peer, shutdown).await;
                    });
                }
                _ = shutdown.changed() => {
                    if *shutdown.borrow() { return Ok(()); }
                }
            }
        }
    }

    async fn serve_connection(
        self: Arc<Self>,
        tls: Acceptor,
        tcp: tokio::net::TcpStream,
        peer: SocketAddr,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let stream = match tokio::time::timeout(Duration::from_secs(10), tls.tls.accept(tcp)).await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::debug!("TLS handshake failed: {e}");
                return;
            }
            Err(_) => return,
        };
        let user = tls::ClientCertificate::of(
            stream.get_ref().1.peer_certificates(),
            tls.client_chain.as_ref(),
        );
        let server = self.clone();
        let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            let server = server.clone();
            let user = user.clone();
            req.extensions_mut().insert(peer);
            async move {
                // A bug in one handler must answer 500, not take the connection or the process.
                let handled = std::panic::AssertUnwindSafe(server.handle(req, user));
                let resp = match futures::FutureExt::catch_unwind(handled).await {
                    Ok(resp) => resp,
                    Err(_) => respond_error(&ApiError::internal(
                        "the server panicked while handling the request; this is a bug in kubeproof",
                    )),
                };
                Ok::<_, Infallible>(resp)
            }
        });
        let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
        tokio::pin!(conn);
        tokio::select! {
            _ = conn.as_mut() => {}
            _ = shutdown.changed() => {}
        }
    }

    /// Handles one request; never fails (errors become `Status` responses). `certificate`
    /// is what the connection's client certificate says.
    pub async fn handle(
        self: &Arc<Self>,
        req: Request<Incoming>,
        certificate: tls::ClientCertificate,
    ) -> Response<Body> {
        let started = Instant::now();
        let peer = req.extensions().get::<SocketAddr>().copied();
        let (mut parts, body) = req.into_parts();
        let path = parts.uri.path().to_string();
        let query = request::parse_query(parts.uri.query());
        let requester = match self.authenticate(&parts.headers, &path, certificate).await {
            Ok(u) => u,
            Err(e) => return respond_error(&e),
        };
        let watch_flag = query.get("watch").and_then(|v| parse_bool(v)) == Some(true);
        let target = request::classify(parts.method.as_str(), &path, watch_flag);
        let field_selector = query.get("fieldSelector").map(String::as_str);
        let method = parts.method.as_str();
        let requester_attrs =
            authz::request_attributes(&requester, method, &path, &target, field_selector);
        let uri = parts.uri.to_string();
        let user_agent = parts
            .headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mut audited = self.security.audit.as_ref().and_then(|a| {
            a.begin(
                &requester_attrs,
                audit::RequestFacts {
                    uri: &uri,
                    target: &target,
                    source_ip: peer.map(|p| p.ip().to_string()),
                    user_agent,
                },
            )
        });
        let admitted = self
            .authorize_request(
                &parts.headers,
                requester,
                requester_attrs,
                &target,
                field_selector,
                &mut audited,
            )
            .await;
        let (user, attrs, _permit) = match admitted {
            Ok(x) => x,
            Err(resp) => return self.finish_audit(audited, None, resp).await,
        };
        let body = match read_body(body, self.config.max_body_bytes).await {
            Ok(b) => b,
            Err(e) => return self.finish_audit(audited, None, respond_error(&e)).await,
        };
        let ctx = RequestContext {
            method: parts.method.clone(),
            path: path.clone(),
            query,
            headers: parts.headers,
            body,
            user,
            annotations: Default::default(),
            raw_query: parts.uri.query().unwrap_or("").to_string(),
            upgrade: parking_lot::Mutex::new(
                parts.extensions.remove::<hyper::upgrade::OnUpgrade>(),
            ),
        };
        let flow_uids = self
            .security
            .fairness
            .as_ref()
            .and_then(|f| f.classification_uids(&attrs));
        let mut resp = self.dispatch(&ctx, target, started).await;
        drop(attrs);
        fairness::set_classification_headers(&mut resp, flow_uids);
        if let Some(a) = audited.as_mut() {
            a.annotate(&ctx.annotations.lock());
        }
        self.finish_audit(audited, Some(&ctx), resp).await
    }

    /// Impersonation, API Priority and Fairness and authorization of an authenticated
    /// request. Returns the identity it runs as, its attributes and its seat, or the response
    /// refusing it.
    async fn authorize_request(
        &self,
        headers: &HeaderMap,
        requester: UserInfo,
        requester_attrs: crate::security::rbac::Attributes,
        target: &request::Target,
        field_selector: Option<&str>,
        audited: &mut Option<audit::AuditedRequest>,
    ) -> std::result::Result<
        (
            UserInfo,
            crate::security::rbac::Attributes,
            Option<crate::security::flowcontrol::Permit>,
        ),
        Response<Body>,
    > {
        // Without anonymous auth, an anonymous request got here only for a public path.
        let public_only = auth::is_anonymous(&requester) && !self.security.authn.anonymous;
        let (user, attrs) = match authn::impersonation_request(headers) {
            Some(imp) if !public_only => {
                let impersonated =
                    crate::security::rbac::impersonate(&requester, &imp, &self.security.authz);
                match impersonated {
                    Ok(user) => {
                        if let Some(a) = audited.as_mut() {
                            a.set_impersonated(&user);
                        }
                        let method = requester_attrs.verb.clone();
                        let attrs = if requester_attrs.resource_request {
                            crate::security::rbac::Attributes {
                                user: user.clone(),
                                ..requester_attrs
                            }
                        } else {
                            authz::request_attributes(
                                &user,
                                &method,
                                &requester_attrs.path,
                                target,
                                field_selector,
                            )
                        };
                        (user, attrs)
                    }
                    Err(f) => {
                        return Err(respond_json(403, &f.to_status()));
                    }
                }
            }
            _ => (requester, requester_attrs),
        };
        let permit = match &self.security.fairness {
            Some(f) => match f.acquire(&attrs).await {
                // A watch holds its seat only while it starts, as upstream.
                Ok(p) if attrs.verb == "watch" => {
                    drop(p);
                    None
                }
                Ok(p) => Some(p),
                Err(t) => {
                    let mut resp = fairness::too_many_requests(&t);
                    fairness::set_classification_headers(&mut resp, f.classification_uids(&attrs));
                    return Err(resp);
                }
            },
            None => None,
        };
        if !public_only {
            let decision = self
                .security
                .authz
                .authorize_selected(&attrs, field_selector);
            if let Some(a) = audited.as_mut() {
                // Upstream's authorization audit annotations.
                let verdict = if decision.allowed { "allow" } else { "forbid" };
                a.annotate(&std::collections::BTreeMap::from([
                    (
                        "authorization.k8s.io/decision".to_string(),
                        verdict.to_string(),
                    ),
                    (
                        "authorization.k8s.io/reason".to_string(),
                        decision.reason.clone(),
                    ),
                ]));
            }
            if !decision.allowed {
                tracing::debug!(reason = %decision.reason, "denied: {attrs:?}");
                return Err(respond_error(&authz::forbidden(&attrs, &decision)));
            }
        }
        Ok((user, attrs, permit))
    }

    /// Writes the audit event of a finished request and stamps its `Audit-Id`.
    async fn finish_audit(
        &self,
        audited: Option<audit::AuditedRequest>,
        ctx: Option<&RequestContext>,
        resp: Response<Body>,
    ) -> Response<Body> {
        let (Some(mut audited), Some(auditor)) = (audited, self.security.audit.as_ref()) else {
            return resp;
        };
        let code = resp.status().as_u16();
        // A watch answers `application/json` like any list: the request, not the content type,
        // says whether the body may go on for as long as the client listens.
        let streaming = audited.long_running()
            || resp.status() == http::StatusCode::SWITCHING_PROTOCOLS
            || resp
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| ct.contains("stream") || ct.contains("watch"));
        let decoded = ctx
            .filter(|c| {
                (audited.wants_request_object() || audited.lacks_object_name())
                    && !c.body.is_empty()
            })
            .and_then(|c| object::decode(c.content_type(), &c.body).ok());
        if let Some(obj) = &decoded {
            audited.complete_object_ref(obj);
        }
        let request_object = decoded.filter(|_| audited.wants_request_object());
        let mut resp = resp;
        if let Ok(v) = http::HeaderValue::from_str(audited.audit_id()) {
            resp.headers_mut().insert("Audit-Id", v);
        }
        if streaming {
            audited.finish(
                auditor,
                crate::security::audit::Stage::ResponseStarted,
                code,
                None,
                request_object.as_ref(),
                None,
            );
            return resp;
        }
        let (parts, body) = resp.into_parts();
        let bytes = body
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();
        let response_object = parsed.as_ref().filter(|_| audited.wants_response_object());
        audited.finish(
            auditor,
            crate::security::audit::Stage::ResponseComplete,
            code,
            parsed.as_ref().filter(|_| code >= 400),
            request_object.as_ref(),
            response_object,
        );
        Response::from_parts(parts, full(bytes))
    }

    /// Serves an authorized request.
    async fn dispatch(
        self: &Arc<Self>,
        ctx: &RequestContext,
        target: request::Target,
        started: Instant,
    ) -> Response<Body> {
        if let Some(claimed) = self.aggregator.route(self, &target) {
            return aggregator::proxy(self, ctx, claimed).await;
        }
        match target {
            request::Target::Resource(r) => {
                // Upstream's scope label: one object, one namespace, or the whole cluster.
                let scope = if r.name.is_some() {
                    "resource"
                } else if r.namespace.is_some() {
                    "namespace"
                } else {
                    "cluster"
                };
                let verb = r.verb.to_uppercase();
                // Long-running requests (watches, exec, logs) are not counted in flight.
                let inflight = metrics::RequestKind::of(&r.verb, r.subresource.as_deref())
                    .map(|k| self.metrics.inflight_watermark.enter(k));
                let resp = registry::handle(self, ctx, &r).await;
                drop(inflight);
                let resp = match resp {
                    Ok(resp) => resp,
                    Err(e) => respond_error(&e),
                };
                self.metrics.observe(
                    &metrics::RequestLabels {
                        verb: &verb,
                        group: &r.group,
                        version: &r.version,
                        resource: &r.resource,
                        subresource: r.subresource.as_deref().unwrap_or(""),
                        scope,
                    },
                    resp.status().as_u16(),
                    started.elapsed().as_secs_f64(),
                );
                resp
            }
            request::Target::NonResource => {
                // Upstream's verb for a non-resource request is the lower-cased method.
                let verb = ctx.method.as_str().to_ascii_lowercase();
                let inflight = metrics::RequestKind::of(&verb, None)
                    .map(|k| self.metrics.inflight_watermark.enter(k));
                let resp = nonresource::handle(self, ctx)
                    .await
                    .unwrap_or_else(|e| respond_error(&e));
                drop(inflight);
                self.metrics.observe(
                    &metrics::RequestLabels {
                        verb: ctx.method.as_str(),
                        group: "",
                        version: "",
                        resource: "",
                        subresource: "",
                        scope: "",
                    },
                    resp.status().as_u16(),
                    started.elapsed().as_secs_f64(),
                );
                resp
            }
            other => {
                let verb = ctx.method.as_str().to_ascii_lowercase();
                let _inflight = metrics::RequestKind::of(&verb, None)
                    .map(|k| self.metrics.inflight_watermark.enter(k));
                discovery::handle(self, ctx, other).unwrap_or_else(|e| respond_error(&e))
            }
        }
    }
}

/// Accepts TLS connections and judges their client certificates.
#[derive(Clone)]
pub struct Acceptor {
    tls: tokio_rustls::TlsAcceptor,
    client_chain: Arc<dyn rustls::server::danger::ClientCertVerifier>,
}

/// Everything a handler needs about the request, body already read.
pub struct RequestContext {
    pub method: Method,
    pub path: String,
    pub query: HashMap<String, String>,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Who the request runs as (the impersonated identity when impersonating).
    pub user: UserInfo,
    /// Audit annotations admission adds while handling the request.
    pub annotations: Arc<parking_lot::Mutex<std::collections::BTreeMap<String, String>>>,
    /// The query as sent: `pods/exec` repeats `command`, which `query` keeps only once.
    pub raw_query: String,
    /// The connection upgrade a WebSocket request (`pods/exec`) asks for, taken by its handler.
    pub upgrade: parking_lot::Mutex<Option<hyper::upgrade::OnUpgrade>>,
}

impl RequestContext {
    /// The writer admission judges for this request.
    pub fn requester(&self) -> Requester {
        Requester {
            user: self.user.clone(),
            annotations: self.annotations.clone(),
        }
    }

    pub fn q(&self, key: &str) -> Option<&str> {
        self.query
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A boolean query parameter, parsed as Go's strconv.ParseBool (clients send `true`,
    /// `True`, `1`, …); `None` when absent or not a boolean.
    pub fn flag(&self, key: &str) -> Option<bool> {
        self.q(key).and_then(parse_bool)
    }

    pub fn accept(&self) -> &str {
        self.headers
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn content_type(&self) -> &str {
        self.headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json")
    }

    pub fn dry_run(&self) -> bool {
        self.query
            .get("dryRun")
            .map(|v| v == "All")
            .unwrap_or(false)
    }
}

pub fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

async fn read_body(body: Incoming, limit: usize) -> ApiResult<Bytes> {
    let limited = http_body_util::Limited::new(body, limit);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Err(ApiError::new(
                    413,
                    "RequestEntityTooLarge",
                    "Request entity too large: limit is 3145728",
                ))
            } else {
                Err(ApiError::bad_request(format!(
                    "cannot read request body: {e}"
                )))
            }
        }
    }
}

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

pub fn respond_json(code: u16, value: &Value) -> Response<Body> {
    respond_bytes(
        code,
        "application/json",
        serde_json::to_vec(value).unwrap_or_default(),
    )
}

pub fn respond_bytes(code: u16, content_type: &str, bytes: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(http::header::CONTENT_TYPE, content_type)
        .header("Cache-Control", "no-cache, private")
        .body(full(bytes))
        .expect("static headers are valid")
}

pub fn respond_error(e: &ApiError) -> Response<Body> {
    respond_json(e.code, &e.to_status())
}
