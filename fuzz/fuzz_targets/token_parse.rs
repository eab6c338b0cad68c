//! Coverage-guided fuzzing of bearer-token parsing (`kubeproof_wire::token`): the JWS split,
//! base64url, the JSON header and its `alg`, the JSON claims, and the `exp`/`nbf`/`aud` checks
//! the ServiceAccount authenticator applies before trusting a token's identity.
//!
//! Properties: no input panics; a token the parser accepts has exactly three segments, names
//! ES256 and decodes to a JSON object of claims; a claim check that passes saw an integer `exp`
//! not yet past and an accepted audience; every refusal is an error value.
//!
//! Random bytes seldom form base64url of JSON, so each input is also read as
//! `<header JSON>\n<claims JSON>`, encoded into a token (the seeds in `fuzz/corpus/token_parse/`
//! are of that shape), which takes the fuzzer straight to the JSON and claim checks.

#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use kubeproof_wire::token::{self, TokenParseError};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

const LEEWAY: i64 = 60;
const NOWS: &[i64] = &[i64::MIN, -1, 0, 1_700_000_000, i64::MAX];

fn check_token(t: &str) -> Result<Map<String, Value>, TokenParseError> {
    let decoded = token::decode(t);
    let parsed = token::parse(t);
    match (&decoded, &parsed) {
        (Ok(jws), Ok((same, claims))) => {
            assert_eq!(jws, same, "decode and parse disagree on {t:?}");
            assert_eq!(
                t.matches('.').count(),
                2,
                "accepted {t:?} without three segments"
            );
            assert_eq!(
                jws.header.get("alg").and_then(Value::as_str),
                Some(token::ES256)
            );
            assert!(t.starts_with(jws.signing_input));
            assert_eq!(t.as_bytes().get(jws.signing_input.len()), Some(&b'.'));
            assert_eq!(&Value::Object(claims.clone()), &jws.claims);
            Ok(claims.clone())
        }
        (Ok(jws), Err(e)) => {
            assert_eq!(e, &TokenParseError::ClaimsNotObject, "{t:?}");
            assert!(!jws.claims.is_object());
            Err(e.clone())
        }
        (Err(e), Err(same)) => {
            assert_eq!(e, same, "{t:?}");
            assert!(!e.to_string().is_empty());
            if t.matches('.').count() != 2 {
                assert_eq!(e, &TokenParseError::NotThreeSegments);
            }
            Err(e.clone())
        }
        (Err(e), Ok(_)) => panic!("parse accepted {t:?} that decode refused: {e}"),
    }
}

fn check_claims(claims: &Map<String, Value>) {
    let accepted = ["https://kubernetes.default.svc.cluster.local".to_string()];
    for &now in NOWS {
        match token::check_claims(claims, now, LEEWAY, &accepted) {
            Ok(()) => {
                let exp = claims.get("exp").and_then(Value::as_i64);
                assert!(exp.is_some_and(|exp| exp.saturating_add(LEEWAY) >= now));
                assert!(token::audiences(claims).contains(&accepted[0].as_str()));
            }
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    if let Ok(claims) = check_token(&raw) {
        check_claims(&claims);
    }

    // `<header JSON>\n<claims JSON>` as a token with a dummy signature.
    let (header, claims) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b"{}"[..]),
    };
    let built = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims),
        URL_SAFE_NO_PAD.encode(b"sig")
    );
    let header_ok = serde_json::from_slice::<Value>(header)
        .ok()
        .is_some_and(|h| h.get("alg").and_then(Value::as_str) == Some(token::ES256));
    let claims_json = serde_json::from_slice::<Value>(claims).ok();
    match check_token(&built) {
        Ok(parsed) => {
            assert!(header_ok);
            check_claims(&parsed);
        }
        Err(e) => {
            // Well-formed base64url in three segments: only the JSON can be refused.
            assert!(
                !matches!(
                    e,
                    TokenParseError::NotThreeSegments | TokenParseError::BadBase64 { .. }
                ),
                "{built:?}: {e}"
            );
            if header_ok {
                match &claims_json {
                    Some(c) if c.is_object() => panic!("{built:?} refused: {e}"),
                    Some(_) => assert_eq!(e, TokenParseError::ClaimsNotObject),
                    None => assert_eq!(e, TokenParseError::BadClaims),
                }
            }
        }
    }
});
