//! Bearer-token (JWS compact serialization) parsing, before any signature is checked: the split
//! into `header.claims.signature`, base64url decoding, the JSON header and its `alg`, the JSON
//! claims, and the claim checks that need no key (`exp`, `nbf`, `aud`). The API server's
//! ServiceAccount authenticator (`security::authn::service_account`) verifies the signature over
//! [`Jws::signing_input`] with its key and maps [`TokenParseError`] to its own errors.
//!
//! Everything here reads attacker-controlled bytes, so it is fuzzed (`fuzz/fuzz_targets/
//! token_parse.rs`): no input panics, and every refusal is an error value.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};

/// The only signing algorithm the API server issues and accepts (upstream's ServiceAccount
/// token generator signs ECDSA P-256 keys with ES256).
pub const ES256: &str = "ES256";

/// Why a token was not parsed or its claims not accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenParseError {
    /// Not three dot-separated segments: not a JWS at all (maybe another kind of token).
    NotThreeSegments,
    /// A segment is not unpadded base64url.
    BadBase64 { segment: &'static str },
    /// The header is not a JSON object.
    BadHeader,
    /// The header's `alg` is missing or not [`ES256`].
    UnsupportedAlgorithm(String),
    /// The claims are not JSON.
    BadClaims,
    /// The claims are JSON but not an object.
    ClaimsNotObject,
    /// No integer `exp` claim.
    MissingExpiry,
    /// `exp` (plus leeway) is in the past.
    Expired,
    /// `nbf` (minus leeway) is in the future.
    NotYetValid,
    /// No `aud` entry is one of the accepted audiences.
    WrongAudience,
}

impl fmt::Display for TokenParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenParseError::NotThreeSegments => write!(
                f,
                "the token is not a JWT: it must be three base64url segments separated by dots"
            ),
            TokenParseError::BadBase64 { segment } => {
                write!(f, "the token's {segment} is not unpadded base64url")
            }
            TokenParseError::BadHeader => write!(f, "the token's header is not a JSON object"),
            TokenParseError::UnsupportedAlgorithm(alg) => write!(
                f,
                "the token is signed with algorithm {alg:?}; only {ES256} is accepted"
            ),
            TokenParseError::BadClaims => write!(f, "the token's claims are not valid JSON"),
            TokenParseError::ClaimsNotObject => {
                write!(f, "the token's claims are not a JSON object")
            }
            TokenParseError::MissingExpiry => {
                write!(f, "the token has no integer exp (expiry) claim")
            }
            TokenParseError::Expired => write!(f, "the token has expired; request a new one"),
            TokenParseError::NotYetValid => {
                write!(f, "the token is not valid yet (its nbf is in the future)")
            }
            TokenParseError::WrongAudience => write!(
                f,
                "the token's audiences (aud) do not include one this server accepts"
            ),
        }
    }
}

impl std::error::Error for TokenParseError {}

/// A token split and decoded, its signature not yet checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Jws<'a> {
    /// `header.claims` as sent: the bytes the signature covers.
    pub signing_input: &'a str,
    pub header: Map<String, Value>,
    /// The claims as decoded; [`Jws::claims_object`] insists on an object.
    pub claims: Value,
    pub signature: Vec<u8>,
}

impl Jws<'_> {
    /// The claims, refused unless they are a JSON object.
    pub fn claims_object(self) -> Result<Map<String, Value>, TokenParseError> {
        match self.claims {
            Value::Object(m) => Ok(m),
            _ => Err(TokenParseError::ClaimsNotObject),
        }
    }
}

fn decode_segment(s: &str, segment: &'static str) -> Result<Vec<u8>, TokenParseError> {
    // Tolerates padding some encoders add although JWS forbids it.
    URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|_| TokenParseError::BadBase64 { segment })
}

/// Splits and decodes a compact JWS whose header names [`ES256`]. The claims are decoded as any
/// JSON value so that a caller can check the signature before judging their shape.
pub fn decode(token: &str) -> Result<Jws<'_>, TokenParseError> {
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenParseError::NotThreeSegments);
    };
    let header: Value = serde_json::from_slice(&decode_segment(h, "header")?)
        .map_err(|_| TokenParseError::BadHeader)?;
    let Value::Object(header) = header else {
        // A JSON header that is no object names no algorithm either.
        return Err(TokenParseError::UnsupportedAlgorithm(String::new()));
    };
    match header.get("alg").and_then(Value::as_str) {
        Some(ES256) => {}
        other => {
            return Err(TokenParseError::UnsupportedAlgorithm(
                other.unwrap_or_default().to_string(),
            ))
        }
    }
    let claims: Value = serde_json::from_slice(&decode_segment(c, "claims")?)
        .map_err(|_| TokenParseError::BadClaims)?;
    let signature = decode_segment(sig, "signature")?;
    Ok(Jws {
        signing_input: &token[..h.len() + 1 + c.len()],
        header,
        claims,
        signature,
    })
}

/// [`decode`] and [`Jws::claims_object`] in one: a token whose structure is acceptable, with its
/// claims, signature unchecked.
pub fn parse(token: &str) -> Result<(Jws<'_>, Map<String, Value>), TokenParseError> {
    let jws = decode(token)?;
    let claims = jws.clone().claims_object()?;
    Ok((jws, claims))
}

/// The `aud` claim as a list: a string is one audience, an array its strings, anything else none.
pub fn audiences(claims: &Map<String, Value>) -> Vec<&str> {
    match claims.get("aud") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// The claim checks that need no key, in the order the authenticator applies them: `exp`
/// (required) and `nbf` (optional) against `now` with `leeway` seconds for clock skew, then
/// whether any `aud` is one of `accepted`.
pub fn check_claims(
    claims: &Map<String, Value>,
    now: i64,
    leeway: i64,
    accepted: &[String],
) -> Result<(), TokenParseError> {
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or(TokenParseError::MissingExpiry)?;
    // Saturating: an `exp` near i64::MAX means "never", not an overflow.
    if now > exp.saturating_add(leeway) {
        return Err(TokenParseError::Expired);
    }
    if let Some(nbf) = claims.get("nbf").and_then(Value::as_i64) {
        if now.saturating_add(leeway) < nbf {
            return Err(TokenParseError::NotYetValid);
        }
    }
    if !audiences(claims)
        .iter()
        .any(|a| accepted.iter().any(|x| x == a))
    {
        return Err(TokenParseError::WrongAudience);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(v: &Value) -> String {
        URL_SAFE_NO_PAD.encode(v.to_string())
    }

    fn token(header: &Value, claims: &Value) -> String {
        format!(
            "{}.{}.{}",
            b64(header),
            b64(claims),
            URL_SAFE_NO_PAD.encode([1, 2, 3])
        )
    }

    fn es256() -> Value {
        json!({"alg": "ES256", "kid": "k"})
    }

    #[test]
    fn parses_a_well_formed_token() {
        let claims = json!({"iss": "i", "exp": 100, "aud": ["a"]});
        let t = token(&es256(), &claims);
        let (jws, parsed) = parse(&t).unwrap();
        assert_eq!(Value::Object(parsed), claims);
        assert_eq!(jws.header["kid"], "k");
        assert_eq!(jws.signature, vec![1, 2, 3]);
        assert_eq!(jws.signing_input, t.rsplit_once('.').unwrap().0);
        // Trailing `=` padding is tolerated.
        let padded = format!("{}==", t);
        assert!(decode(&padded).is_ok());
    }

    #[test]
    fn refusals_are_typed() {
        let ok_claims = json!({"exp": 1});
        for (t, want) in [
            (String::new(), TokenParseError::NotThreeSegments),
            ("a.b".into(), TokenParseError::NotThreeSegments),
            ("a.b.c.d".into(), TokenParseError::NotThreeSegments),
            (
                "!!!.e30.AAAA".into(),
                TokenParseError::BadBase64 { segment: "header" },
            ),
            (
                format!("{}.e30.AAAA", URL_SAFE_NO_PAD.encode("{")),
                TokenParseError::BadHeader,
            ),
            (
                token(&json!({"alg": "none"}), &ok_claims),
                TokenParseError::UnsupportedAlgorithm("none".into()),
            ),
            (
                token(&json!({}), &ok_claims),
                TokenParseError::UnsupportedAlgorithm(String::new()),
            ),
            (
                token(&json!(["ES256"]), &ok_claims),
                TokenParseError::UnsupportedAlgorithm(String::new()),
            ),
            (
                format!("{}.{}.AAAA", b64(&es256()), URL_SAFE_NO_PAD.encode("{x")),
                TokenParseError::BadClaims,
            ),
            (
                format!("{}.e30.***", b64(&es256())),
                TokenParseError::BadBase64 {
                    segment: "signature",
                },
            ),
            (
                token(&es256(), &json!([1])),
                TokenParseError::ClaimsNotObject,
            ),
        ] {
            assert_eq!(parse(&t).map(|_| ()), Err(want.clone()), "{t:?}");
            assert!(!want.to_string().is_empty());
        }
    }

    /// The fuzz target's property (`fuzz/fuzz_targets/token_parse.rs`) over fixed-seed mutations
    /// of a valid token, so `cargo test` keeps it without libFuzzer.
    #[test]
    fn mutated_tokens_never_panic_and_accepted_ones_are_well_formed() {
        let seed = token(&es256(), &json!({"exp": 10, "aud": "a", "nbf": 1}));
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet = b"eyJ.=-_AQ\"{}0";
        for _ in 0..5000 {
            let mut bytes = seed.clone().into_bytes();
            for _ in 0..(next() % 4 + 1) {
                let at = (next() as usize) % bytes.len();
                match next() % 3 {
                    0 => bytes[at] = alphabet[(next() as usize) % alphabet.len()],
                    1 => {
                        bytes.remove(at);
                    }
                    _ => bytes.insert(at, alphabet[(next() as usize) % alphabet.len()]),
                }
                if bytes.is_empty() {
                    break;
                }
            }
            let t = String::from_utf8_lossy(&bytes);
            match parse(&t) {
                Ok((jws, claims)) => {
                    assert_eq!(t.matches('.').count(), 2, "{t}");
                    assert_eq!(Value::Object(claims.clone()), jws.claims);
                    let _ = check_claims(&claims, i64::MAX, 60, &["a".to_string()]);
                }
                Err(e) => assert!(!e.to_string().is_empty()),
            }
        }
    }

    #[test]
    fn claim_checks_follow_the_authenticator() {
        let accepted = vec!["api".to_string()];
        let check = |c: Value, now: i64| {
            let Value::Object(m) = c else { unreachable!() };
            check_claims(&m, now, 60, &accepted)
        };
        assert_eq!(check(json!({"exp": 100, "aud": "api"}), 160), Ok(()));
        assert_eq!(
            check(json!({"exp": 100, "aud": "api"}), 161),
            Err(TokenParseError::Expired)
        );
        assert_eq!(
            check(json!({"aud": "api"}), 0),
            Err(TokenParseError::MissingExpiry)
        );
        assert_eq!(
            check(json!({"exp": 1.5e3, "aud": "api"}), 0),
            Err(TokenParseError::MissingExpiry)
        );
        assert_eq!(
            check(json!({"exp": 1000, "nbf": 200, "aud": ["x", "api"]}), 140),
            Ok(())
        );
        assert_eq!(
            check(json!({"exp": 1000, "nbf": 200, "aud": "api"}), 139),
            Err(TokenParseError::NotYetValid)
        );
        assert_eq!(
            check(json!({"exp": 1000, "aud": ["x", 3]}), 0),
            Err(TokenParseError::WrongAudience)
        );
        assert_eq!(
            check(json!({"exp": 1000, "aud": {"api": true}}), 0),
            Err(TokenParseError::WrongAudience)
        );
        // Extreme values saturate instead of overflowing.
        assert_eq!(
            check(json!({"exp": i64::MAX, "aud": "api"}), i64::MAX),
            Ok(())
        );
        assert_eq!(
            check(
                json!({"exp": i64::MAX, "nbf": i64::MAX, "aud": "api"}),
                i64::MAX
            ),
            Ok(())
        );
        assert_eq!(
            check(json!({"exp": i64::MIN, "aud": "api"}), 0),
            Err(TokenParseError::Expired)
        );
    }
}
