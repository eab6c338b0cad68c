//! Bounded random testing of everything that reads untrusted request bytes before any
//! authorization: the body decoders (JSON, YAML, Kubernetes protobuf), the path classifier and
//! the query parser. The coverage-guided fuzz target `fuzz/fuzz_targets/request_decode.rs`
//! explores the same decoders (in `kubeproof-wire`) for a bounded time in CI; this test keeps a
//! fixed-seed, reproducible run of the same property in every `cargo test`, through the
//! refcluster's `ApiError` mapping: no input panics, and every refusal is a 4xx.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::object::decode;
use super::request::{classify, parse_query, percent_decode};

const CASES: usize = 3_000;

const SEEDS: &[&[u8]] = &[
    br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","labels":{"a":"b"}},"spec":{"containers":[{"name":"c","image":"nginx","resources":{"requests":{"cpu":"100m"}}}]}}"#,
    b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  k: v\n  list: [1, 2, {a: b}]\n",
    b"k8s\0\n\x0c\n\x02v1\x12\x03Pod\x12\x08{\"a\":1}",
];

const CONTENT_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "application/apply-patch+yaml",
];

/// A random mutation of `seed`: flipped bytes, cut, duplicated slices or random bytes.
fn mutate(rng: &mut StdRng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    match rng.random_range(0..5) {
        0 => {
            for _ in 0..rng.random_range(1..8) {
                if !v.is_empty() {
                    let i = rng.random_range(0..v.len());
                    v[i] = rng.random();
                }
            }
        }
        1 => v.truncate(rng.random_range(0..=v.len())),
        2 => {
            if !v.is_empty() {
                let a = rng.random_range(0..v.len());
                let b = rng.random_range(a..=v.len());
                let chunk = v[a..b].to_vec();
                let at = rng.random_range(0..=v.len());
                v.splice(at..at, chunk);
            }
        }
        3 => {
            v = (0..rng.random_range(0..256))
                .map(|_| rng.random())
                .collect()
        }
        _ => {
            // Deep nesting, which naive recursive decoders overflow the stack on.
            let depth = rng.random_range(100..5_000);
            let open = if rng.random() { b'[' } else { b'{' };
            v = std::iter::repeat_n(open, depth).collect();
        }
    }
    v
}

#[test]
fn decoders_never_panic_and_refuse_with_4xx() {
    let mut rng = StdRng::seed_from_u64(0x6b38_7331);
    for case in 0..CASES {
        let seed = SEEDS[case % SEEDS.len()];
        let body = mutate(&mut rng, seed);
        for ct in CONTENT_TYPES {
            if let Err(e) = decode(ct, &body) {
                assert!(
                    (400..500).contains(&e.code),
                    "case {case}, {ct}: {} for {:?}",
                    e.code,
                    String::from_utf8_lossy(&body)
                );
            }
        }
    }
}

#[test]
fn paths_and_queries_never_panic() {
    let mut rng = StdRng::seed_from_u64(0x7061_7468);
    let pieces = [
        "/",
        "api",
        "apis",
        "v1",
        "namespaces",
        "default",
        "pods",
        "status",
        "..",
        "%2F",
        "%",
        "%zz",
        "watch",
        "apps",
        "",
        "proxy",
        "log",
        "exec",
        "?",
        "&",
        "=",
        "\u{fffd}",
        "é",
    ];
    for _ in 0..CASES {
        let path: String = (0..rng.random_range(0..10))
            .map(|_| pieces[rng.random_range(0..pieces.len())])
            .collect::<Vec<_>>()
            .join("/");
        let method =
            ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "BREW"][rng.random_range(0..7)];
        let _ = classify(method, &path, rng.random());
        let _ = percent_decode(&path);
        let query: String = (0..rng.random_range(0..6))
            .map(|_| pieces[rng.random_range(0..pieces.len())])
            .collect();
        let _ = parse_query(Some(&query));
    }
}
