//! The scheduler's secure port, as kube-scheduler serves it (`--secure-port`, 10259 upstream):
//! HTTPS with a serving certificate from the cluster CA, `/healthz`, `/livez` and `/readyz`
//! for anyone, `/metrics` (Prometheus text) for whoever the API server says may `get` it.
//!
//! Authentication and authorization are delegated to the API server as upstream's
//! `DelegatingAuthenticationOptions`/`DelegatingAuthorizationOptions` do: a client certificate
//! is checked against the cluster CA (user = CN, groups = O), a bearer token with a
//! TokenReview, and a request without credentials is `system:anonymous`; then every path but
//! the health endpoints needs a SubjectAccessReview allowing the non-resource path and verb
//! (the bootstrap `system:monitoring` ClusterRole grants `get` on `/metrics`). Upstream caches
//! review answers for 10 s; this one asks every time (scrapes are rare), and it reads no
//! `requestheader` (front-proxy) identities.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::server::danger::ClientCertVerifier;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::metrics::SchedulerMetrics;
use crate::apiserver::tls::{self, ClientCertificate};
use crate::apiserver::{respond_bytes, respond_error, ApiError, Body};
use crate::pki::{CertPair, Pki};
use crate::security::rbac::{self, Attributes};
use crate::security::user::UserInfo;

/// Upstream's secure port for kube-scheduler; the bundled cluster picks a free one instead.
pub const UPSTREAM_SECURE_PORT: u16 = 10259;

/// Paths served without authorization, as kube-scheduler's `AlwaysAllowPaths`.
const ALWAYS_ALLOW_PATHS: &[&str] = &["/healthz", "/readyz", "/livez"];

/// How long a client may take for the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The scheduler's HTTPS endpoint: TLS, delegated authentication and authorization, and the
/// handlers.
pub struct SecureServer {
    tls: tokio_rustls::TlsAcceptor,
    client_chain: Arc<dyn ClientCertVerifier>,
    /// The scheduler's own client, allowed to create TokenReviews and SubjectAccessReviews.
    reviews: kube::Client,
    metrics: SchedulerMetrics,
}

impl SecureServer {
    /// Serves with `serving` (a certificate of the cluster CA), trusting client certificates of
    /// the same CA and asking the API server through `reviews` about everything else.
    pub fn new(
        pki: &Pki,
        serving: CertPair,
        reviews: kube::Client,
        metrics: SchedulerMetrics,
    ) -> Result<SecureServer> {
        let tls = tls::server_config(&Pki {
            server: serving,
            ..pki.clone()
        })
        .context("cannot set up TLS for the scheduler's secure port")?;
        Ok(SecureServer {
            tls: tokio_rustls::TlsAcceptor::from(tls.config),
            client_chain: tls.client_chain,
            reviews,
            metrics,
        })
    }

    /// Serves `listener` until the future is dropped; dropping it also ends every connection,
    /// as a killed kube-scheduler's would.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) -> Result<()> {
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (tcp, _) = match accepted {
                        Ok(x) => x,
                        Err(e) => {
                            tracing::warn!(component = "kube-scheduler", "accept failed: {e}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let _ = tcp.set_nodelay(true);
                    connections.spawn(self.clone().connection(tcp));
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
    }

    async fn connection(self: Arc<Self>, tcp: tokio::net::TcpStream) {
        let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.tls.accept(tcp)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::debug!("scheduler TLS handshake failed: {e}");
                return;
            }
            Err(_) => return,
        };
        let certificate = ClientCertificate::of(
            stream.get_ref().1.peer_certificates(),
            self.client_chain.as_ref(),
        );
        let server = self.clone();
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let server = server.clone();
            let certificate = certificate.clone();
            async move { Ok::<_, Infallible>(server.handle(&req, &certificate).await) }
        });
        let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        let _ = builder
            .serve_connection(TokioIo::new(stream), service)
            .await;
    }

    async fn handle<B>(&self, req: &Request<B>, certificate: &ClientCertificate) -> Response<Body> {
        let path = req.uri().path();
        // Non-resource requests are authorized with the lower-cased HTTP method as the verb.
        let verb = req.method().as_str().to_ascii_lowercase();
        let user = match self.authenticate(req.headers(), certificate).await {
            Ok(u) => u,
            Err(e) => return respond_error(&e),
        };
        if !ALWAYS_ALLOW_PATHS.contains(&path) {
            if let Err(e) = self.authorize(user, &verb, path).await {
                return respond_error(&e);
            }
        }
        if req.method() != http::Method::GET && req.method() != http::Method::HEAD {
            return respond_bytes(405, "text/plain; charset=utf-8", "Method Not Allowed\n");
        }
        match path {
            "/healthz" | "/livez" | "/readyz" => {
                respond_bytes(200, "text/plain; charset=utf-8", "ok")
            }
            "/metrics" => respond_bytes(
                200,
                crate::apiserver::metrics::TEXT_FORMAT,
                crate::apiserver::metrics::render(self.metrics.registry()),
            ),
            _ => respond_bytes(404, "text/plain; charset=utf-8", "404 page not found\n"),
        }
    }

    /// Who sent the request: certificate, then bearer token (TokenReview), else anonymous.
    async fn authenticate(
        &self,
        headers: &http::HeaderMap,
        certificate: &ClientCertificate,
    ) -> Result<UserInfo, ApiError> {
        match certificate {
            ClientCertificate::Valid(user) => return Ok(user.clone()),
            ClientCertificate::Invalid => return Err(unauthorized()),
            ClientCertificate::None => {}
        }
        let Some(auth) = headers.get(http::header::AUTHORIZATION) else {
            return Ok(UserInfo::new(
                "system:anonymous",
                &["system:unauthenticated"],
            ));
        };
        let token = auth
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(unauthorized)?;
        let review = json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token},
        });
        let answer = self
            .post("/apis/authentication.k8s.io/v1/tokenreviews", &review)
            .await
            .map_err(|e| {
                tracing::warn!(component = "kube-scheduler", "TokenReview failed: {e:#}");
                unauthorized()
            })?;
        token_review_user(&answer).ok_or_else(unauthorized)
    }

    /// Asks the API server whether `user` may `verb` the non-resource `path`.
    async fn authorize(&self, user: UserInfo, verb: &str, path: &str) -> Result<(), ApiError> {
        let review = subject_access_review(&user, verb, path);
        let answer = self
            .post(
                "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                &review,
            )
            .await
            .map_err(|e| {
                ApiError::internal(format!(
                    "cannot ask the API server whether the request is allowed: {e:#}"
                ))
            })?;
        let status = &answer["status"];
        if status["allowed"].as_bool() == Some(true) {
            return Ok(());
        }
        let reason = status["reason"].as_str().unwrap_or("");
        let f = rbac::forbidden(&Attributes::non_resource(user, verb, path), reason);
        Err(ApiError {
            code: 403,
            reason: "Forbidden",
            message: f.message,
            details: Some(f.details),
        })
    }

    async fn post(&self, path: &str, body: &Value) -> Result<Value> {
        let req = Request::post(path)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(body)?)?;
        Ok(self.reviews.request::<Value>(req).await?)
    }
}

fn unauthorized() -> ApiError {
    ApiError::new(401, "Unauthorized", "Unauthorized")
}

/// The user a TokenReview answer vouches for, if it does.
fn token_review_user(answer: &Value) -> Option<UserInfo> {
    let status = answer.get("status")?;
    if status["authenticated"].as_bool() != Some(true) {
        return None;
    }
    serde_json::from_value(status.get("user")?.clone()).ok()
}

fn subject_access_review(user: &UserInfo, verb: &str, path: &str) -> Value {
    json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": user.name,
            "uid": user.uid,
            "groups": user.groups,
            "extra": user.extra,
            "nonResourceAttributes": {"path": path, "verb": verb},
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_reviews_vouch_only_when_authenticated() {
        let yes = json!({"status": {"authenticated": true, "user": {
            "username": "system:serviceaccount:mon:prom", "uid": "u1",
            "groups": ["system:serviceaccounts", "system:authenticated"]}}});
        let user = token_review_user(&yes).expect("an authenticated review names its user");
        assert_eq!(user.name, "system:serviceaccount:mon:prom");
        assert_eq!(user.uid, "u1");
        assert_eq!(user.groups.len(), 2);
        let no = json!({"status": {"authenticated": false, "error": "invalid bearer token"}});
        assert_eq!(token_review_user(&no), None);
        assert_eq!(token_review_user(&json!({})), None);
    }

    #[test]
    fn access_reviews_ask_about_the_non_resource_path() {
        let user = UserInfo::new("system:anonymous", &["system:unauthenticated"]);
        let review = subject_access_review(&user, "get", "/metrics");
        assert_eq!(review["spec"]["user"], "system:anonymous");
        assert_eq!(review["spec"]["groups"], json!(["system:unauthenticated"]));
        assert_eq!(
            review["spec"]["nonResourceAttributes"],
            json!({"path": "/metrics", "verb": "get"})
        );
        assert!(review["spec"].get("resourceAttributes").is_none());
    }

    #[test]
    fn denials_read_as_upstream_forbidden_messages() {
        let user = UserInfo::new("system:anonymous", &["system:unauthenticated"]);
        let f = rbac::forbidden(&Attributes::non_resource(user, "get", "/metrics"), "");
        assert_eq!(
            f.message,
            r#"forbidden: User "system:anonymous" cannot get path "/metrics""#
        );
    }
}
