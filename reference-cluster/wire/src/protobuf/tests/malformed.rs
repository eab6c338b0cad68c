//! Bad input is an error with a useful message, never a panic, a stack overflow or a huge
//! allocation.

use k8s_pb::api::core::v1 as core;
use k8s_pb::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiext;
use prost::Message;

use super::{envelope, hex};
use crate::protobuf::decode::MAX_DEPTH;
use crate::protobuf::decode_request;

/// `kubectl create deployment web --image=nginx --replicas=2`, as kubectl sent it.
const DEPLOYMENT: &str = concat!(
    "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412ab010a1f0a0377656212001a0022002a",
    "003200380042005a0a0a036170701203776562127a0802120c0a0a0a0361707012037765621a600a1c0a0012",
    "001a0022002a003200380042005a0a0a036170701203776562124012220a056e67696e7812056e67696e782a",
    "0042006a007200800100880100900100a201001a00320042004a0052005800600068008201008a01009a0100",
    "c2010022020a00280038001a0c0800100018002000280038001a002200",
);

fn error_of(body: &[u8]) -> String {
    match decode_request(body) {
        Ok(v) => panic!("decoded to {v}"),
        Err(e) => e,
    }
}

#[test]
fn not_protobuf_at_all() {
    assert!(error_of(b"").contains("k8s\\0"));
    assert!(error_of(b"{\"kind\":\"Namespace\"}").contains("k8s\\0"));
    assert!(error_of(b"k8s").contains("k8s\\0"));
}

#[test]
fn envelope_without_type() {
    assert!(error_of(b"k8s\0").contains("apiVersion and kind"));
    let body = envelope("", "Namespace", Vec::new());
    assert!(error_of(&body).contains("apiVersion and kind"));
}

#[test]
fn unknown_kinds_and_custom_resources_are_refused() {
    let err = error_of(&envelope("example.com/v1", "Widget", Vec::new()));
    assert!(err.contains("example.com/v1, Kind=Widget"), "{err}");
    let err = error_of(&envelope("v1", "NoSuchKind", Vec::new()));
    assert!(err.contains("Kind=NoSuchKind"), "{err}");
}

#[test]
fn compressed_content_is_refused() {
    let mut body = b"k8s\0".to_vec();
    body.extend([0x0A, 0x0F, 0x0A, 0x02, b'v', b'1', 0x12, 0x09]); // typeMeta {v1, Namespace}
    body.extend(b"Namespace");
    body.extend([0x1A, 0x04, b'g', b'z', b'i', b'p']);
    let err = error_of(&body);
    assert!(
        err.contains("unsupported protobuf content encoding \"gzip\""),
        "{err}"
    );
}

/// Every strict prefix of a real body fails cleanly, except cuts on a field boundary of the
/// envelope: right after typeMeta (an object with no fields, which is valid protobuf) and
/// after raw.
#[test]
fn truncated_bodies() {
    let body = hex(DEPLOYMENT);
    let type_meta_end = 4 + 2 + 0x15; // magic, then field 1 of 0x15 bytes
    let raw_end = body.len() - 4; // then empty contentEncoding and contentType
    let decoded: Vec<usize> = (0..body.len())
        .filter(|&len| decode_request(&body[..len]).is_ok())
        .collect();
    assert_eq!(
        decoded,
        vec![type_meta_end, raw_end, raw_end + 2],
        "prefixes that decoded"
    );
}

/// Flipping bytes of a real body anywhere must never panic.
#[test]
fn corrupted_bodies_never_panic() {
    let body = hex(DEPLOYMENT);
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut errors = 0;
    for _ in 0..5000 {
        let mut b = body.clone();
        for _ in 0..1 + next() % 4 {
            let i = (next() as usize) % b.len();
            b[i] = next() as u8;
        }
        if decode_request(&b).is_err() {
            errors += 1;
        }
    }
    // Most corruptions land in lengths, tags or wire types and must be caught.
    assert!(errors > 0, "no corruption was detected");
}

#[test]
fn wrong_wire_type_names_the_field() {
    // Namespace.metadata (1) as a varint instead of a message.
    let err = error_of(&envelope("v1", "Namespace", vec![0x08, 0x01]));
    assert!(err.starts_with("metadata: wire type 0"), "{err}");
    // ObjectMeta.name (1) as a varint, inside spec.template.
    let mut template_meta = vec![0x08, 0x05];
    let mut template = vec![0x0A, template_meta.len() as u8];
    template.append(&mut template_meta);
    let mut spec = vec![0x1A, template.len() as u8];
    spec.append(&mut template);
    let mut raw = vec![0x12, spec.len() as u8];
    raw.append(&mut spec);
    let err = error_of(&envelope("apps/v1", "Deployment", raw));
    assert!(
        err.starts_with("spec.template.metadata.name: wire type 0"),
        "{err}"
    );
}

#[test]
fn lying_lengths_inside_the_object() {
    // ConfigMap.data entry claiming 100 bytes with 2 present.
    let err = error_of(&envelope("v1", "ConfigMap", vec![0x12, 0x64, 0x0A, 0x00]));
    assert!(err.contains("claims 100 bytes"), "{err}");
    // A map entry whose own length is consistent but whose key overruns it.
    let err = error_of(&envelope("v1", "ConfigMap", vec![0x12, 0x02, 0x0A, 0x09]));
    assert!(err.starts_with("data: field 1 claims 9 bytes"), "{err}");
}

#[test]
fn bad_varints_inside_the_object() {
    let mut raw = vec![0x0A, 0x0C, 0x38];
    raw.extend([0xFF; 11]); // ObjectMeta.generation (7) with an 11-byte varint
    let err = error_of(&envelope("v1", "Namespace", raw));
    assert!(err.contains("varint"), "{err}");
}

#[test]
fn impossible_values() {
    // IntOrString with type 7 as a Service targetPort.
    let port = core::ServicePort {
        target_port: Some(k8s_pb::apimachinery::pkg::util::intstr::IntOrString {
            r#type: Some(7),
            ..Default::default()
        }),
        ..Default::default()
    };
    let svc = core::Service {
        spec: Some(core::ServiceSpec {
            ports: vec![port],
            ..Default::default()
        }),
        ..Default::default()
    };
    let err = error_of(&envelope("v1", "Service", svc.encode_to_vec()));
    assert!(
        err.starts_with("spec.ports.targetPort: IntOrString has impossible type 7"),
        "{err}"
    );

    // A RawExtension that is not JSON.
    let rev = k8s_pb::api::apps::v1::ControllerRevision {
        data: Some(k8s_pb::apimachinery::pkg::runtime::RawExtension {
            raw: Some(b"{not json".to_vec()),
        }),
        ..Default::default()
    };
    let err = error_of(&envelope(
        "apps/v1",
        "ControllerRevision",
        rev.encode_to_vec(),
    ));
    assert!(err.starts_with("data: embedded JSON is invalid"), "{err}");

    // A NaN in a CRD schema.
    let crd = crd_with_schema(apiext::JsonSchemaProps {
        minimum: Some(f64::NAN),
        ..Default::default()
    });
    let err = error_of(&envelope(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        crd,
    ));
    assert!(err.contains("NaN has no JSON representation"), "{err}");

    // A time past year 9999.
    let ns = core::Namespace {
        metadata: Some(k8s_pb::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            creation_timestamp: Some(k8s_pb::apimachinery::pkg::apis::meta::v1::Time {
                seconds: Some(i64::MAX),
                nanos: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let err = error_of(&envelope("v1", "Namespace", ns.encode_to_vec()));
    assert!(err.starts_with("metadata.creationTimestamp:"), "{err}");
}

fn crd_with_schema(schema: apiext::JsonSchemaProps) -> Vec<u8> {
    apiext::CustomResourceDefinition {
        spec: Some(apiext::CustomResourceDefinitionSpec {
            versions: vec![apiext::CustomResourceDefinitionVersion {
                schema: Some(apiext::CustomResourceValidation {
                    open_apiv3_schema: Some(schema),
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

/// A schema nested `levels` deep through `not`.
fn nested_schema(levels: usize) -> apiext::JsonSchemaProps {
    let mut schema = apiext::JsonSchemaProps {
        r#type: Some("string".into()),
        ..Default::default()
    };
    for _ in 0..levels {
        schema = apiext::JsonSchemaProps {
            not: Some(Box::new(schema)),
            ..Default::default()
        };
    }
    schema
}

#[test]
fn deep_nesting_is_bounded() {
    // CRD → spec → versions → schema → openAPIV3Schema is 4 levels before the schema.
    let ok = crd_with_schema(nested_schema(MAX_DEPTH - 10));
    assert!(decode_request(&envelope(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        ok
    ))
    .is_ok());

    let too_deep = crd_with_schema(nested_schema(MAX_DEPTH + 10));
    let err = error_of(&envelope(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        too_deep,
    ));
    assert!(err.contains("nested deeper than"), "{err}");
}

/// Hand-made nesting far beyond any schema: 10 000 levels of `not`, which would overflow the
/// stack of a decoder without a depth limit.
#[test]
fn hostile_nesting_does_not_overflow_the_stack() {
    // Build inside out: each level is field 28 (`not`), length-delimited.
    let mut inner: Vec<u8> = Vec::new();
    for _ in 0..10_000 {
        let mut outer = vec![0xE2, 0x01]; // tag 28, wire type 2
        let mut len = inner.len();
        while len >= 0x80 {
            outer.push((len as u8) | 0x80);
            len >>= 7;
        }
        outer.push(len as u8);
        outer.extend_from_slice(&inner);
        inner = outer;
    }
    let crd = crd_with_schema_bytes(&inner);
    let err = error_of(&envelope(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        crd,
    ));
    assert!(err.contains("nested deeper than"), "{err}");
}

/// [`crd_with_schema`] with the schema's bytes given directly.
fn crd_with_schema_bytes(schema: &[u8]) -> Vec<u8> {
    fn wrap(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag << 3 | 2];
        let mut len = body.len();
        while len >= 0x80 {
            out.push((len as u8) | 0x80);
            len >>= 7;
        }
        out.push(len as u8);
        out.extend_from_slice(body);
        out
    }
    // CustomResourceValidation.openAPIV3Schema (1) → CustomResourceDefinitionVersion.schema
    // (4) → CustomResourceDefinitionSpec.versions (7) → CustomResourceDefinition.spec (2).
    wrap(2, &wrap(7, &wrap(4, &wrap(1, schema))))
}
