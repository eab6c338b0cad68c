//! Tests of the protobuf request decoder: bodies kubectl 1.32 really sent ([`kubectl`]), real
//! Kubernetes messages encoded with the k8s-pb crate ([`round_trip`]) and hostile input
//! ([`malformed`]).

mod kubectl;
mod malformed;
mod round_trip;

use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use prost::Message;
use serde_json::Value;

/// A request body as client-go frames it: magic, then `runtime.Unknown` around the object.
pub(super) fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
        }),
        raw: Some(raw),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut body = super::MAGIC.to_vec();
    body.extend(unknown.encode_to_vec());
    body
}

/// Encodes `object` as a request body of `api_version`/`kind` and decodes it.
pub(super) fn decode<M: Message>(api_version: &str, kind: &str, object: &M) -> Value {
    let body = envelope(api_version, kind, object.encode_to_vec());
    super::decode_request(&body).unwrap_or_else(|e| panic!("{kind} did not decode: {e}"))
}

pub(super) fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}
