//! Authentication of bearer tokens: static tokens from a token file and ServiceAccount JWTs
//! (client certificates are handled by the TLS layer, `apiserver::tls`). Also the
//! `authentication.k8s.io/v1` TokenReview and SelfSubjectReview responses.

use std::fmt;

use serde_json::{json, Value};

use super::user::names;
use super::UserInfo;

pub mod service_account;
pub mod token_file;

pub use service_account::{BoundObject, BoundObjects, TokenIssuer};
pub use token_file::TokenFile;

/// Why a bearer token was not accepted. Every variant answers 401 to the client; the variants
/// exist for logs and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenError {
    /// Not a token this authenticator knows (no such static token, not one of our JWTs).
    NotOurs,
    Malformed(&'static str),
    BadSignature,
    Expired,
    NotYetValid,
    WrongAudience,
    /// The service account, pod or secret it is bound to no longer exists (or was replaced).
    Invalidated(String),
    Internal(String),
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::NotOurs => write!(f, "token not recognised"),
            TokenError::Malformed(why) => write!(f, "malformed token: {why}"),
            TokenError::BadSignature => write!(f, "invalid token signature"),
            TokenError::Expired => write!(f, "token has expired"),
            TokenError::NotYetValid => write!(f, "token is not valid yet"),
            TokenError::WrongAudience => write!(f, "token audiences do not match the server's"),
            TokenError::Invalidated(what) => {
                write!(f, "token has been invalidated: {what} no longer exists")
            }
            TokenError::Internal(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for TokenError {}

/// The bearer-token authenticators of the API server, tried in order: static tokens, then
/// ServiceAccount tokens.
#[derive(Debug, Default)]
pub struct Authenticator {
    pub token_file: Option<TokenFile>,
    pub service_accounts: Option<TokenIssuer>,
}

/// Adds `system:authenticated` (as upstream's authenticated-group adder), once.
pub fn with_authenticated_group(mut user: UserInfo) -> UserInfo {
    if !user.in_group(names::AUTHENTICATED) {
        user.groups.push(names::AUTHENTICATED.to_string());
    }
    user
}

impl Authenticator {
    /// Authenticates an `Authorization: Bearer <token>` credential at `now` (unix seconds).
    pub fn authenticate_bearer(
        &self,
        token: &str,
        now: i64,
        objects: &dyn BoundObjects,
    ) -> Result<UserInfo, TokenError> {
        if token.is_empty() || token.len() > 16 * 1024 {
            return Err(TokenError::Malformed("empty or oversized token"));
        }
        if let Some(user) = self.token_file.as_ref().and_then(|f| f.authenticate(token)) {
            return Ok(with_authenticated_group(user));
        }
        match &self.service_accounts {
            Some(issuer) => issuer
                .verify(token, now, objects)
                .map(with_authenticated_group),
            None => Err(TokenError::NotOurs),
        }
    }

    /// Answers a TokenReview: `status.authenticated`, `user`, `audiences` or `error`.
    pub fn token_review(&self, review: &Value, now: i64, objects: &dyn BoundObjects) -> Value {
        let token = review
            .pointer("/spec/token")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let status = match self.authenticate_bearer(token, now, objects) {
            Ok(user) => {
                let audiences = self
                    .service_accounts
                    .as_ref()
                    .map(|i| i.audiences().to_vec())
                    .unwrap_or_default();
                json!({"authenticated": true, "user": user.to_json(), "audiences": audiences})
            }
            Err(e) => json!({"user": {}, "error": e.to_string()}),
        };
        json!({
            "kind": "TokenReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": null},
            "spec": review.get("spec").cloned().unwrap_or_else(|| json!({})),
            "status": status,
        })
    }
}

/// SelfSubjectReview (`kubectl auth whoami`): the requester's own attributes.
pub fn self_subject_review(user: &UserInfo) -> Value {
    json!({
        "kind": "SelfSubjectReview",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": null},
        "status": {"userInfo": user.to_json()},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Nothing;
    impl BoundObjects for Nothing {
        fn service_account_uid(&self, _: &str, _: &str) -> Option<String> {
            None
        }
        fn object_uid(&self, _: &str, _: &str, _: &str) -> Option<String> {
            None
        }
    }

    #[test]
    fn static_tokens_authenticate_and_reviews_report() {
        let auth = Authenticator {
            token_file: Some(TokenFile::parse("s3cret,ci-bot,42,\"ci\"").unwrap()),
            service_accounts: None,
        };
        let user = auth.authenticate_bearer("s3cret", 0, &Nothing).unwrap();
        assert_eq!(user.groups, vec!["ci", "system:authenticated"]);
        assert_eq!(
            auth.authenticate_bearer("nope", 0, &Nothing),
            Err(TokenError::NotOurs)
        );
        assert!(auth
            .authenticate_bearer(&"x".repeat(20_000), 0, &Nothing)
            .is_err());
        let ok = auth.token_review(&json!({"spec": {"token": "s3cret"}}), 0, &Nothing);
        assert_eq!(ok["status"]["authenticated"], true);
        assert_eq!(ok["status"]["user"]["username"], "ci-bot");
        let bad = auth.token_review(&json!({"spec": {"token": "x"}}), 0, &Nothing);
        assert!(bad["status"].get("authenticated").is_none());
        assert_eq!(bad["status"]["error"], "token not recognised");
        let me = self_subject_review(&user);
        assert_eq!(me["status"]["userInfo"]["username"], "ci-bot");
    }
}
