//! A kube-apiserver-compatible HTTPS API over the [`crate::store`].
//!
//! Request path: TLS (client certificate → identity) → authentication → classification
//! ([`request`]) → discovery / non-resource endpoints, or the generic [`registry`] which
//! implements every verb once for every resource, parameterised by the resource's
//! [`crate::resources::Strategy`]. Special resources (namespaces, services, CRDs, pod binding,
//! scale) hook into the registry in [`hooks`].

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
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

pub mod auth;
pub mod discovery;
pub mod hooks;
pub mod object;
pub mod metrics;
pub mod negotiate;
pub mod nonresource;
pub mod protobuf;
pub mod registry;
pub mod request;
pub mod status;
pub mod table;
pub mod tls;
pub mod typed;
pub mod watch_stream;

pub use auth::UserInfo;
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
        }
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
}

impl ApiServer {
    pub fn new(store: Arc<dyn Store>, config: ApiServerConfig) -> Arc<ApiServer> {
        Arc::new(ApiServer {
            catalog: Arc::new(Catalog::builtin()),
            store,
            config,
            metrics: metrics::Metrics::new(),
            openapi: RwLock::new(None),
            advertise: RwLock::new(String::new()),
            alloc_lock: tokio::sync::Mutex::new(()),
        })
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
    pub fn tls_acceptor(pki: &Pki) -> Result<tokio_rustls::TlsAcceptor> {
        Ok(tokio_rustls::TlsAcceptor::from(tls::server_config(pki)?))
    }

    /// Serves HTTPS on `listener` until `shutdown` turns true.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        tls: tokio_rustls::TlsAcceptor,
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
        tls: tokio_rustls::TlsAcceptor,
        tcp: tokio::net::TcpStream,
        _peer: SocketAddr,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let stream =
            match tokio::time::timeout(Duration::from_secs(10), tls.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!("TLS handshake failed: {e}");
                    return;
                }
                Err(_) => return,
            };
        let user = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .and_then(|c| tls::identity_from_certificate(c.as_ref()));
        let server = self.clone();
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let server = server.clone();
            let user = user.clone();
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

    /// Handles one request; never fails (errors become `Status` responses).
    pub async fn handle(
        self: &Arc<Self>,
        req: Request<Incoming>,
        user: Option<UserInfo>,
    ) -> Response<Body> {
        let started = Instant::now();
        let (parts, body) = req.into_parts();
        let path = parts.uri.path().to_string();
        let query = request::parse_query(parts.uri.query());
        let user = user.unwrap_or_else(UserInfo::anonymous);
        if user.is_anonymous() && !auth::public_path(&path) {
            return respond_error(&ApiError::new(401, "Unauthorized", "Unauthorized"));
        }
        let watch_flag = query.get("watch").and_then(|v| parse_bool(v)) == Some(true);
        let target = request::classify(parts.method.as_str(), &path, watch_flag);
        let body = match read_body(body, self.config.max_body_bytes).await {
            Ok(b) => b,
            Err(e) => return respond_error(&e),
        };
        let ctx = RequestContext {
            method: parts.method.clone(),
            path: path.clone(),
            query,
            headers: parts.headers,
            body,
            user,
        };
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
                // Watches are long-running and not counted in flight, as upstream.
                let kind = match r.verb.as_str() {
                    "watch" => None,
                    "get" | "list" => Some("readOnly"),
                    _ => Some("mutating"),
                };
                let gauge = kind.map(|k| self.metrics.inflight.with_label_values(&[k]));
                if let Some(g) = &gauge {
                    g.inc();
                }
                let resp = registry::handle(self, &ctx, &r).await;
                if let Some(g) = &gauge {
                    g.dec();
                }
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
                let resp = nonresource::handle(self, &ctx)
                    .await
                    .unwrap_or_else(|e| respond_error(&e));
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
            other => discovery::handle(self, &ctx, other).unwrap_or_else(|e| respond_error(&e)),
        }
    }
}

/// Everything a handler needs about the request, body already read.
pub struct RequestContext {
    pub method: Method,
    pub path: String,
    pub query: HashMap<String, String>,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub user: UserInfo,
}

impl RequestContext {
    pub fn q(&self, key: &str) -> Option<&str> {
        self.query.get(key).map(String::as_str).filter(|v| !v.is_empty())
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
        self.query.get("dryRun").map(|v| v == "All").unwrap_or(false)
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
            if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                Err(ApiError::new(
                    413,
                    "RequestEntityTooLarge",
                    "Request entity too large: limit is 3145728",
                ))
            } else {
                Err(ApiError::bad_request(format!("cannot read request body: {e}")))
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
