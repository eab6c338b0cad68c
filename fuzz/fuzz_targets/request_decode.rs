//! Coverage-guided fuzzing of everything the API server reads from a request before any
//! authorization: the body decoders (JSON, YAML, Kubernetes protobuf) and the request target
//! (path classification, query parsing, percent-decoding), all in `kubeproof-wire`.
//!
//! Property: no input panics (libFuzzer also reports stack overflows, leaks, out-of-memory and
//! slow inputs as failures), every refused body is a 4xx, a decoded body is a JSON object, and a
//! resource request always names a resource and a Kubernetes verb.
//!
//! The same bytes go to every decoder: each rejects the others' inputs in a few steps, so the
//! fuzzer need not learn a selector, and the seed corpus (`fuzz/corpus/request_decode/`) stays
//! readable request bodies and paths.

#![no_main]

use kubeproof_wire::request::{classify, parse_query, percent_decode, Target, READ_WRITE};
use libfuzzer_sys::fuzz_target;

const CONTENT_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "application/merge-patch+json; charset=utf-8",
    "application/apply-patch+yaml",
];

const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

fuzz_target!(|data: &[u8]| {
    for ct in CONTENT_TYPES {
        match kubeproof_wire::decode(ct, data) {
            Ok(value) => assert!(value.is_object(), "{ct} decoded to a non-object"),
            Err(e) => assert!(
                (400..500).contains(&e.code),
                "{ct}: refused with {} ({}): {}",
                e.code,
                e.reason,
                e.message
            ),
        }
    }

    // The request target as hyper hands it over: a path, then the query after `?`.
    let target = String::from_utf8_lossy(data);
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (&*target, None),
    };
    let params = parse_query(query);
    let watch = params.get("watch").is_some_and(|v| v == "true" || v == "1");
    for method in METHODS {
        if let Target::Resource(r) = classify(method, path, watch) {
            assert!(!r.resource.is_empty(), "{method} {path}: no resource");
            assert!(
                READ_WRITE.contains(&r.verb.as_str()),
                "{method} {path}: verb {}",
                r.verb
            );
        }
    }
    if !path.contains(['%', '+']) {
        assert_eq!(percent_decode(path), path, "nothing to decode");
    }
});
