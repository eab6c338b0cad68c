//! Authentication of API requests, in upstream's order: the verified client certificate (TLS
//! layer), then bearer tokens (static tokens from `--token-auth-file`, ServiceAccount JWTs of
//! this cluster's issuer), then — only when enabled — anonymous. A credential that is present
//! but not valid answers 401 even when anonymous requests are allowed, as upstream.
//! Impersonation headers are read here too; whether the requester may impersonate is the
//! authorizer's question.

use std::collections::{BTreeMap, HashMap};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::HeaderMap;
use serde_json::Value;

use super::auth::public_path;
use super::tls::ClientCertificate;
use super::{object, ApiError, ApiServer, UserInfo};
use crate::security::authn::{Authenticator, BoundObjects};
use crate::security::rbac::ImpersonationRequest;

/// The authenticators of the API server besides client certificates.
#[derive(Debug, Default)]
pub struct Authentication {
    /// Whether requests without credentials proceed as `system:anonymous` (then RBAC decides).
    /// When off they are refused with 401 except on the public health and version paths.
    pub anonymous: bool,
    pub tokens: Authenticator,
}

pub fn unauthorized() -> ApiError {
    ApiError::new(401, "Unauthorized", "Unauthorized")
}

/// The token of an `Authorization: Bearer <token>` header, as upstream's bearer-token
/// authenticator reads it: any case of "bearer", the token up to the next space.
/// Bytes that are not UTF-8 still make a (failing) credential, never no credential.
pub fn bearer_token(headers: &HeaderMap) -> Option<String> {
    let value =
        String::from_utf8_lossy(headers.get(http::header::AUTHORIZATION)?.as_bytes()).into_owned();
    let mut parts = value.trim().splitn(3, ' ');
    let scheme = parts.next()?;
    let token = parts.next()?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_string())
}

/// What a ServiceAccount token names, looked up in the store before its signature is checked
/// (the verifier itself is synchronous).
#[derive(Default)]
struct Prefetched {
    service_accounts: HashMap<(String, String), String>,
    objects: HashMap<(String, String, String), String>,
}

impl BoundObjects for Prefetched {
    fn service_account_uid(&self, namespace: &str, name: &str) -> Option<String> {
        self.service_accounts
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    fn object_uid(&self, kind: &str, namespace: &str, name: &str) -> Option<String> {
        self.objects
            .get(&(kind.to_string(), namespace.to_string(), name.to_string()))
            .cloned()
    }
}

/// The `kubernetes.io` claim of a JWT, read without checking the signature: only to know which
/// objects to look up; the verifier decides whether to believe it.
fn unverified_claims(token: &str) -> Option<Value> {
    let mut parts = token.split('.');
    let (_, claims, _) = (parts.next()?, parts.next()?, parts.next()?);
    let bytes = URL_SAFE_NO_PAD.decode(claims.trim_end_matches('=')).ok()?;
    serde_json::from_slice::<Value>(&bytes)
        .ok()?
        .get("kubernetes.io")
        .cloned()
}

impl ApiServer {
    /// The uid of a live (not deleting) object of the core `resource`.
    async fn live_uid(&self, resource: &str, namespace: &str, name: &str) -> Option<String> {
        if namespace.is_empty() || name.is_empty() {
            return None;
        }
        let info = self.catalog.get("", "v1", resource)?;
        let obj = self.get_object(&info, Some(namespace), name).await.ok()?;
        if object::is_deleting(&obj) {
            return None;
        }
        object::meta_str(&obj, "uid").map(str::to_string)
    }

    async fn prefetch_bound_objects(&self, token: &str) -> Prefetched {
        let mut out = Prefetched::default();
        let Some(k8s) = unverified_claims(token) else {
            return out;
        };
        let s = |p: &str| {
            k8s.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let ns = s("/namespace");
        let sa = s("/serviceaccount/name");
        if let Some(uid) = self.live_uid("serviceaccounts", &ns, &sa).await {
            out.service_accounts.insert((ns.clone(), sa), uid);
        }
        for (kind, resource, pointer) in [
            ("Pod", "pods", "/pod/name"),
            ("Secret", "secrets", "/secret/name"),
        ] {
            let name = s(pointer);
            if let Some(uid) = self.live_uid(resource, &ns, &name).await {
                out.objects.insert((kind.into(), ns.clone(), name), uid);
            }
        }
        out
    }

    /// Authenticates a bearer token at the current time.
    pub async fn authenticate_token(&self, token: &str) -> Result<UserInfo, String> {
        let objects = self.prefetch_bound_objects(token).await;
        let now = chrono::Utc::now().timestamp();
        self.security
            .authn
            .tokens
            .authenticate_bearer(token, now, &objects)
            .map_err(|e| e.to_string())
    }

    /// Answers a TokenReview's spec with the bearer-token authenticators.
    pub async fn token_review(&self, review: &Value) -> Value {
        let token = review
            .pointer("/spec/token")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let objects = self.prefetch_bound_objects(token).await;
        let now = chrono::Utc::now().timestamp();
        self.security
            .authn
            .tokens
            .token_review(review, now, &objects)
    }

    /// Who sent the request: the client certificate's identity, a bearer token's, or
    /// anonymous. `Err` is the 401 to answer.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        path: &str,
        certificate: ClientCertificate,
    ) -> Result<UserInfo, ApiError> {
        if let ClientCertificate::Valid(user) = certificate {
            return Ok(user);
        }
        if let Some(token) = bearer_token(headers) {
            return self.authenticate_token(&token).await.map_err(|e| {
                tracing::debug!("bearer token refused: {e}");
                unauthorized()
            });
        }
        // A credential that failed is never taken for no credential.
        if certificate == ClientCertificate::Invalid {
            return Err(unauthorized());
        }
        if self.security.authn.anonymous || public_path(path) {
            return Ok(UserInfo::anonymous());
        }
        Err(unauthorized())
    }
}

/// The impersonation a request asks for with `Impersonate-*` headers, if any.
pub fn impersonation_request(headers: &HeaderMap) -> Option<ImpersonationRequest> {
    let text = |v: &http::HeaderValue| v.to_str().ok().map(str::to_string);
    let user = headers.get("impersonate-user").and_then(text);
    let uid = headers.get("impersonate-uid").and_then(text);
    let groups: Vec<String> = headers
        .get_all("impersonate-group")
        .iter()
        .filter_map(text)
        .collect();
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in headers {
        if let Some(key) = name.as_str().strip_prefix("impersonate-extra-") {
            // Header names cannot carry every character of an extra key; upstream
            // percent-encodes them and lower-cases the result.
            let key = super::request::percent_decode(key).to_ascii_lowercase();
            if let Some(v) = text(value) {
                extra.entry(key).or_default().push(v);
            }
        }
    }
    if user.is_none() && uid.is_none() && groups.is_empty() && extra.is_empty() {
        return None;
    }
    Some(ImpersonationRequest {
        user: user.unwrap_or_default(),
        uid: uid.unwrap_or_default(),
        groups,
        extra,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                http::HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn reads_bearer_tokens_like_upstream() {
        assert_eq!(
            bearer_token(&headers(&[("authorization", "Bearer abc")])).as_deref(),
            Some("abc")
        );
        assert_eq!(
            bearer_token(&headers(&[("authorization", "bearer abc extra")])).as_deref(),
            Some("abc")
        );
        assert_eq!(
            bearer_token(&headers(&[("authorization", "Basic abc")])),
            None
        );
        assert_eq!(bearer_token(&headers(&[("authorization", "Bearer")])), None);
        assert_eq!(bearer_token(&headers(&[])), None);
    }

    #[test]
    fn reads_impersonation_headers() {
        assert!(impersonation_request(&headers(&[("accept", "x")])).is_none());
        let req = impersonation_request(&headers(&[
            ("Impersonate-User", "jane"),
            ("Impersonate-Group", "dev"),
            ("Impersonate-Group", "ops"),
            ("Impersonate-Extra-Scopes%2Fview", "a"),
            ("Impersonate-Extra-Scopes%2Fview", "b"),
        ]))
        .unwrap();
        assert_eq!(req.user, "jane");
        assert_eq!(req.groups, vec!["dev", "ops"]);
        assert_eq!(req.extra["scopes/view"], vec!["a", "b"]);
        let groups_only = impersonation_request(&headers(&[("Impersonate-Group", "dev")])).unwrap();
        assert!(groups_only.user.is_empty());
    }

    #[test]
    fn claims_are_read_only_from_well_formed_tokens() {
        assert!(unverified_claims("not-a-jwt").is_none());
        assert!(unverified_claims("a.!!!.c").is_none());
        let claims = URL_SAFE_NO_PAD.encode(r#"{"kubernetes.io":{"namespace":"ns"}}"#);
        let v = unverified_claims(&format!("h.{claims}.s")).unwrap();
        assert_eq!(v["namespace"], "ns");
    }
}
