//! ServiceAccount tokens: ES256-signed JWTs issued by the TokenRequest API
//! (`serviceaccounts/<name>/token`) with upstream's claims, and their verification (signature,
//! issuer, time window, audience, and — through [`BoundObjects`] — that the service account and
//! the pod or secret the token is bound to still exist with the same uid).

use std::path::Path;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use kubeproof_wire::token::{self, TokenParseError};
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, KeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED,
    ECDSA_P256_SHA256_FIXED_SIGNING,
};
use serde_json::{json, Map, Value};

use super::TokenError;
use crate::security::user::{service_account_groups, service_account_username};
use crate::security::UserInfo;

pub const KEY_FILE: &str = "service-account.key";
/// Upstream's default and minimum `expirationSeconds`.
pub const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
pub const MIN_EXPIRATION_SECONDS: i64 = 600;
const MAX_EXPIRATION_SECONDS: i64 = 1 << 32;
/// Tokens the ServiceAccount admission plugin requests (3607 s) are issued for a year and carry
/// `warnafter`, as upstream's `--service-account-extend-token-expiration` (default on) does.
const WARN_ONLY_EXPIRATION_SECONDS: i64 = 3607;
const EXTENDED_EXPIRATION_SECONDS: i64 = 365 * 24 * 3600;
/// Leeway for clock skew when checking `nbf`/`exp`, as upstream's validator.
const LEEWAY_SECONDS: i64 = 60;

/// The SubjectPublicKeyInfo DER prefix of an uncompressed P-256 public key.
const P256_SPKI_PREFIX: &[u8] = &[
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// The object a token is bound to (TokenRequest `boundObjectRef`), resolved by the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoundObject {
    /// `Pod` or `Secret`.
    pub kind: String,
    pub name: String,
    pub uid: String,
    /// For pods: the node they run on, recorded as upstream does (`kubernetes.io.node`).
    pub node: Option<(String, String)>,
}

/// Checks, at verification time, that what a token names still exists. The API server
/// implements it over its store.
pub trait BoundObjects {
    /// The uid of the ServiceAccount, if it exists and is not being deleted.
    fn service_account_uid(&self, namespace: &str, name: &str) -> Option<String>;
    /// The uid of the Pod or Secret, if it exists and is not being deleted.
    fn object_uid(&self, kind: &str, namespace: &str, name: &str) -> Option<String>;
}

/// Signs and verifies ServiceAccount tokens with one P-256 key.
pub struct TokenIssuer {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    kid: String,
    issuer: String,
    /// Audiences the API server accepts (`--api-audiences`, default the issuer).
    audiences: Vec<String>,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .finish()
    }
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn pem_decode(pem: &str, label: &str) -> Result<Vec<u8>, String> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem
        .find(&begin)
        .ok_or_else(|| format!("no {label} block"))?
        + begin.len();
    let stop = pem[start..]
        .find(&end)
        .ok_or_else(|| format!("unterminated {label} block"))?
        + start;
    let body: String = pem[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    STANDARD
        .decode(body)
        .map_err(|e| format!("bad base64 in {label}: {e}"))
}

impl TokenIssuer {
    /// Loads the signing key from `dir/service-account.key` (PKCS#8 PEM), creating it (mode
    /// 0600) when absent, so tokens survive restarts.
    pub fn load_or_create(dir: &Path, issuer: &str) -> Result<TokenIssuer, String> {
        let path = dir.join(KEY_FILE);
        let rng = SystemRandom::new();
        let pkcs8 = if path.exists() {
            let pem = std::fs::read_to_string(&path)
                .map_err(|e| format!("reading {}: {e}", path.display()))?;
            pem_decode(&pem, "PRIVATE KEY")?
        } else {
            let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(|_| "generating the service account key failed".to_string())?;
            std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
            crate::pki::write_private(&path, pem_encode("PRIVATE KEY", doc.as_ref()).as_bytes())
                .map_err(|e| format!("writing {}: {e}", path.display()))?;
            doc.as_ref().to_vec()
        };
        Self::from_pkcs8(&pkcs8, issuer)
    }

    pub fn from_pkcs8(pkcs8: &[u8], issuer: &str) -> Result<TokenIssuer, String> {
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, &rng)
            .map_err(|e| format!("service account key is not a P-256 PKCS#8 key: {e}"))?;
        let spki = [P256_SPKI_PREFIX, key.public_key().as_ref()].concat();
        // Upstream's key id: the unpadded base64url SHA-256 of the public key's DER.
        let kid = URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, &spki));
        Ok(TokenIssuer {
            key,
            rng,
            kid,
            issuer: issuer.to_string(),
            audiences: vec![issuer.to_string()],
        })
    }

    pub fn with_audiences(mut self, audiences: Vec<String>) -> Self {
        if !audiences.is_empty() {
            self.audiences = audiences;
        }
        self
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    /// The public key in PEM (`PUBLIC KEY`), for `--service-account-key-file` style consumers.
    pub fn public_key_pem(&self) -> String {
        pem_encode(
            "PUBLIC KEY",
            &[P256_SPKI_PREFIX, self.key.public_key().as_ref()].concat(),
        )
    }

    /// `/openid/v1/jwks`.
    pub fn jwks(&self) -> Value {
        let point = self.key.public_key().as_ref();
        json!({"keys": [{
            "use": "sig", "kty": "EC", "kid": self.kid, "crv": "P-256", "alg": "ES256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        }]})
    }

    /// `/.well-known/openid-configuration`.
    pub fn openid_configuration(&self) -> Value {
        json!({
            "issuer": self.issuer,
            "jwks_uri": format!("{}/openid/v1/jwks", self.issuer.trim_end_matches('/')),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
        })
    }

    fn sign(&self, claims: &Value) -> Result<String, TokenError> {
        let header = json!({"alg": "ES256", "kid": self.kid});
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = self
            .key
            .sign(&self.rng, signing_input.as_bytes())
            .map_err(|_| TokenError::Internal("signing failed".into()))?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(sig.as_ref())
        ))
    }

    /// Answers a TokenRequest (`authentication.k8s.io/v1`) posted for `service_account` at
    /// `now` (unix seconds). `bound` is the resolved `spec.boundObjectRef`, if any. Returns the
    /// TokenRequest with `status.token` and `status.expirationTimestamp`, or a 422 message.
    pub fn token_request(
        &self,
        request: &Value,
        service_account: &Value,
        bound: Option<&BoundObject>,
        now: i64,
    ) -> Result<Value, String> {
        let spec = request.get("spec").cloned().unwrap_or_else(|| json!({}));
        let requested = spec
            .get("expirationSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(DEFAULT_EXPIRATION_SECONDS);
        if requested < MIN_EXPIRATION_SECONDS {
            return Err(format!("spec.expirationSeconds: Invalid value: {requested}: may not specify a duration less than 10 minutes"));
        }
        if requested > MAX_EXPIRATION_SECONDS {
            return Err(format!("spec.expirationSeconds: Invalid value: {requested}: may not specify a duration larger than 2^32 seconds"));
        }
        let audiences: Vec<String> = spec
            .get("audiences")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .filter(|a: &Vec<String>| !a.is_empty())
            .unwrap_or_else(|| self.audiences.clone());
        let ns = service_account
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let name = service_account
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let uid = service_account
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let mut k8s = json!({"namespace": ns, "serviceaccount": {"name": name, "uid": uid}});
        let expires = now + requested;
        let mut exp_claim = expires;
        if let Some(b) = bound {
            match b.kind.as_str() {
                "Pod" => {
                    k8s["pod"] = json!({"name": b.name, "uid": b.uid});
                    if let Some((node, node_uid)) = &b.node {
                        k8s["node"] = json!({"name": node, "uid": node_uid});
                    }
                    if requested == WARN_ONLY_EXPIRATION_SECONDS {
                        k8s["warnafter"] = json!(expires);
                        exp_claim = now + EXTENDED_EXPIRATION_SECONDS;
                    }
                }
                "Secret" => k8s["secret"] = json!({"name": b.name, "uid": b.uid}),
                other => return Err(format!("spec.boundObjectRef.kind: Unsupported value: \"{other}\": supported values: \"Pod\", \"Secret\"")),
            }
        }
        let claims = json!({
            "aud": audiences,
            "exp": exp_claim,
            "iat": now,
            "iss": self.issuer,
            "jti": uuid::Uuid::new_v4().to_string(),
            "kubernetes.io": k8s,
            "nbf": now,
            "sub": service_account_username(ns, name),
        });
        let token = self.sign(&claims).map_err(|e| e.to_string())?;
        let mut out = request.clone();
        if !out.is_object() {
            out = json!({});
        }
        out["apiVersion"] = json!("authentication.k8s.io/v1");
        out["kind"] = json!("TokenRequest");
        let mut spec = spec;
        spec["audiences"] = json!(audiences);
        spec["expirationSeconds"] = json!(requested);
        out["spec"] = spec;
        out["status"] = json!({
            "token": token,
            "expirationTimestamp": rfc3339(expires),
        });
        Ok(out)
    }

    /// Verifies a token at `now` and returns the identity it carries. Tokens of other issuers
    /// answer [`TokenError::NotOurs`] so other authenticators can be tried.
    pub fn verify(
        &self,
        token: &str,
        now: i64,
        objects: &dyn BoundObjects,
    ) -> Result<UserInfo, TokenError> {
        let claims = self.verified_claims(token)?;
        let iss = claims
            .get("iss")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if iss != self.issuer {
            return Err(TokenError::NotOurs);
        }
        token::check_claims(&claims, now, LEEWAY_SECONDS, &self.audiences).map_err(token_error)?;
        let k8s = claims
            .get("kubernetes.io")
            .ok_or(TokenError::Malformed("missing kubernetes.io claim"))?;
        let s = |p: &str| {
            k8s.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let (ns, name, uid) = (
            s("/namespace"),
            s("/serviceaccount/name"),
            s("/serviceaccount/uid"),
        );
        if ns.is_empty() || name.is_empty() {
            return Err(TokenError::Malformed("missing service account"));
        }
        if claims.get("sub").and_then(Value::as_str)
            != Some(service_account_username(&ns, &name).as_str())
        {
            return Err(TokenError::Malformed(
                "sub does not name the service account",
            ));
        }
        match objects.service_account_uid(&ns, &name) {
            Some(current) if current == uid => {}
            _ => {
                return Err(TokenError::Invalidated(format!(
                    "service account {ns}/{name}"
                )))
            }
        }
        let mut user = UserInfo {
            name: service_account_username(&ns, &name),
            uid: uid.clone(),
            groups: service_account_groups(&ns),
            extra: Default::default(),
        };
        for kind in ["pod", "secret"] {
            let Some(obj) = k8s.get(kind) else { continue };
            let bound_name = obj.get("name").and_then(Value::as_str).unwrap_or_default();
            let bound_uid = obj.get("uid").and_then(Value::as_str).unwrap_or_default();
            let api_kind = if kind == "pod" { "Pod" } else { "Secret" };
            if objects.object_uid(api_kind, &ns, bound_name).as_deref() != Some(bound_uid) {
                return Err(TokenError::Invalidated(format!("{kind} {ns}/{bound_name}")));
            }
            if kind == "pod" {
                user.extra.insert(
                    "authentication.kubernetes.io/pod-name".into(),
                    vec![bound_name.into()],
                );
                user.extra.insert(
                    "authentication.kubernetes.io/pod-uid".into(),
                    vec![bound_uid.into()],
                );
            }
        }
        if let Some(node) = k8s.pointer("/node/name").and_then(Value::as_str) {
            user.extra.insert(
                "authentication.kubernetes.io/node-name".into(),
                vec![node.into()],
            );
        }
        if let Some(jti) = claims.get("jti").and_then(Value::as_str) {
            user.extra.insert(
                "authentication.kubernetes.io/credential-id".into(),
                vec![format!("JTI={jti}")],
            );
        }
        Ok(user)
    }

    /// Checks the JWS structure (parsed by `kubeproof-wire`, which is fuzzed) and signature,
    /// returning the claims.
    fn verified_claims(&self, token: &str) -> Result<Map<String, Value>, TokenError> {
        let jws = token::decode(token).map_err(token_error)?;
        let key = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, self.key.public_key().as_ref());
        key.verify(jws.signing_input.as_bytes(), &jws.signature)
            .map_err(|_| TokenError::BadSignature)?;
        jws.claims_object().map_err(token_error)
    }
}

/// The authenticator's error for a parse or claim-check refusal: a token that is no JWS or not
/// signed as ours is someone else's (other authenticators may take it); the rest are ours, bad.
fn token_error(e: TokenParseError) -> TokenError {
    match e {
        TokenParseError::NotThreeSegments | TokenParseError::UnsupportedAlgorithm(_) => {
            TokenError::NotOurs
        }
        TokenParseError::BadBase64 { .. } => TokenError::Malformed("bad base64"),
        TokenParseError::BadHeader => TokenError::Malformed("bad header"),
        TokenParseError::BadClaims => TokenError::Malformed("bad claims"),
        TokenParseError::ClaimsNotObject => TokenError::Malformed("claims are not an object"),
        TokenParseError::MissingExpiry => TokenError::Malformed("missing exp"),
        TokenParseError::Expired => TokenError::Expired,
        TokenParseError::NotYetValid => TokenError::NotYetValid,
        TokenParseError::WrongAudience => TokenError::WrongAudience,
    }
}

/// Unix seconds → RFC 3339 UTC (`2024-01-02T03:04:05Z`).
pub fn rfc3339(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    struct Objects(HashMap<String, String>);

    impl BoundObjects for Objects {
        fn service_account_uid(&self, ns: &str, name: &str) -> Option<String> {
            self.0.get(&format!("ServiceAccount/{ns}/{name}")).cloned()
        }
        fn object_uid(&self, kind: &str, ns: &str, name: &str) -> Option<String> {
            self.0.get(&format!("{kind}/{ns}/{name}")).cloned()
        }
    }

    const ISS: &str = "https://kubernetes.default.svc.cluster.local";
    const NOW: i64 = 1_700_000_000;

    fn issuer() -> (tempfile::TempDir, TokenIssuer) {
        let dir = tempfile::tempdir().unwrap();
        let i = TokenIssuer::load_or_create(dir.path(), ISS).unwrap();
        (dir, i)
    }

    fn sa() -> Value {
        json!({"metadata": {"name": "builder", "namespace": "ci", "uid": "sa-uid"}})
    }

    fn world() -> Objects {
        Objects(HashMap::from([
            (
                "ServiceAccount/ci/builder".to_string(),
                "sa-uid".to_string(),
            ),
            ("Pod/ci/runner".to_string(), "pod-uid".to_string()),
        ]))
    }

    fn claims_of(token: &str) -> Value {
        let c = token.split('.').nth(1).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c).unwrap()).unwrap()
    }

    #[test]
    fn issues_tokens_with_upstream_claims_and_verifies_them() {
        let (_d, iss) = issuer();
        let pod = BoundObject {
            kind: "Pod".into(),
            name: "runner".into(),
            uid: "pod-uid".into(),
            node: None,
        };
        let out = iss
            .token_request(
                &json!({"spec": {"audiences": [ISS]}}),
                &sa(),
                Some(&pod),
                NOW,
            )
            .unwrap();
        assert_eq!(out["status"]["expirationTimestamp"], rfc3339(NOW + 3600));
        assert_eq!(out["spec"]["expirationSeconds"], 3600);
        let token = out["status"]["token"].as_str().unwrap();
        let c = claims_of(token);
        assert_eq!(c["sub"], "system:serviceaccount:ci:builder");
        assert_eq!(c["aud"], json!([ISS]));
        assert_eq!(
            (c["iat"].as_i64(), c["nbf"].as_i64(), c["exp"].as_i64()),
            (Some(NOW), Some(NOW), Some(NOW + 3600))
        );
        assert_eq!(c["kubernetes.io"]["namespace"], "ci");
        assert_eq!(
            c["kubernetes.io"]["serviceaccount"],
            json!({"name": "builder", "uid": "sa-uid"})
        );
        assert_eq!(
            c["kubernetes.io"]["pod"],
            json!({"name": "runner", "uid": "pod-uid"})
        );
        let user = iss.verify(token, NOW + 10, &world()).unwrap();
        assert_eq!(user.name, "system:serviceaccount:ci:builder");
        assert_eq!(
            user.groups,
            vec!["system:serviceaccounts", "system:serviceaccounts:ci"]
        );
        assert_eq!(
            user.extra["authentication.kubernetes.io/pod-name"],
            vec!["runner"]
        );
    }

    #[test]
    fn rejects_expired_foreign_audience_and_invalidated_tokens() {
        let (_d, iss) = issuer();
        let pod = BoundObject {
            kind: "Pod".into(),
            name: "runner".into(),
            uid: "pod-uid".into(),
            node: None,
        };
        let out = iss
            .token_request(&json!({"spec": {}}), &sa(), Some(&pod), NOW)
            .unwrap();
        let token = out["status"]["token"].as_str().unwrap();
        assert_eq!(
            iss.verify(token, NOW + 3600 + 61, &world()),
            Err(TokenError::Expired)
        );
        let other = iss
            .token_request(&json!({"spec": {"audiences": ["vault"]}}), &sa(), None, NOW)
            .unwrap();
        assert_eq!(
            iss.verify(other["status"]["token"].as_str().unwrap(), NOW, &world()),
            Err(TokenError::WrongAudience)
        );
        // The pod is gone (or replaced by another with the same name): the token dies with it.
        let replaced = Objects(HashMap::from([
            (
                "ServiceAccount/ci/builder".to_string(),
                "sa-uid".to_string(),
            ),
            ("Pod/ci/runner".to_string(), "other-uid".to_string()),
        ]));
        assert!(matches!(
            iss.verify(token, NOW, &replaced),
            Err(TokenError::Invalidated(_))
        ));
        let no_sa = Objects(HashMap::new());
        assert!(matches!(
            iss.verify(token, NOW, &no_sa),
            Err(TokenError::Invalidated(_))
        ));
    }

    #[test]
    fn tampered_and_malformed_tokens_are_typed_errors() {
        let (_d, iss) = issuer();
        let out = iss.token_request(&json!({}), &sa(), None, NOW).unwrap();
        let token = out["status"]["token"].as_str().unwrap().to_string();
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD
            .encode(json!({"sub": "system:serviceaccount:kube-system:admin"}).to_string());
        parts[1] = &forged;
        assert_eq!(
            iss.verify(&parts.join("."), NOW, &world()),
            Err(TokenError::BadSignature)
        );
        for junk in [
            "",
            "a.b",
            "a.b.c.d",
            "!!!.###.$$$",
            "eyJhbGciOiJFUzI1NiJ9.e30.AAAA",
            "\u{0}.\u{0}.\u{0}",
        ] {
            assert!(iss.verify(junk, NOW, &world()).is_err(), "{junk:?}");
        }
        // Another issuer's key does not verify our tokens.
        let (_d2, other) = issuer();
        assert_eq!(
            other.verify(&token, NOW, &world()),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn expiration_rules_follow_upstream() {
        let (_d, iss) = issuer();
        let err = iss
            .token_request(
                &json!({"spec": {"expirationSeconds": 599}}),
                &sa(),
                None,
                NOW,
            )
            .unwrap_err();
        assert_eq!(err, "spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 10 minutes");
        let pod = BoundObject {
            kind: "Pod".into(),
            name: "runner".into(),
            uid: "pod-uid".into(),
            node: None,
        };
        let out = iss
            .token_request(
                &json!({"spec": {"expirationSeconds": 3607}}),
                &sa(),
                Some(&pod),
                NOW,
            )
            .unwrap();
        let c = claims_of(out["status"]["token"].as_str().unwrap());
        assert_eq!(c["exp"].as_i64(), Some(NOW + EXTENDED_EXPIRATION_SECONDS));
        assert_eq!(c["kubernetes.io"]["warnafter"].as_i64(), Some(NOW + 3607));
        assert_eq!(out["status"]["expirationTimestamp"], rfc3339(NOW + 3607));
    }

    #[test]
    fn key_survives_restarts_and_publishes_jwks() {
        let dir = tempfile::tempdir().unwrap();
        let a = TokenIssuer::load_or_create(dir.path(), ISS).unwrap();
        let token = a.token_request(&json!({}), &sa(), None, NOW).unwrap()["status"]["token"]
            .as_str()
            .unwrap()
            .to_string();
        let b = TokenIssuer::load_or_create(dir.path(), ISS).unwrap();
        assert!(b.verify(&token, NOW, &world()).is_ok());
        let jwks = b.jwks();
        assert_eq!(jwks["keys"][0]["kid"], a.jwks()["keys"][0]["kid"]);
        assert_eq!(jwks["keys"][0]["x"].as_str().unwrap().len(), 43);
        assert_eq!(
            b.openid_configuration()["jwks_uri"],
            format!("{ISS}/openid/v1/jwks")
        );
        assert!(b
            .public_key_pem()
            .starts_with("-----BEGIN PUBLIC KEY-----\n"));
        std::fs::write(dir.path().join(KEY_FILE), "garbage").unwrap();
        assert!(TokenIssuer::load_or_create(dir.path(), ISS).is_err());
    }
}
