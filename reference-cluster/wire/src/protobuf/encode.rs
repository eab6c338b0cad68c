//! JSON → protobuf message, driven by the same schema table the decoder uses: the inverse of
//! [`super::decode`], for responses to clients that accept only Kubernetes protobuf.
//!
//! Fields absent (or `null`) in the JSON are left off the wire, which a reader takes as their
//! zero value, exactly what the JSON's omission means too.

use base64::Engine;
use serde_json::{Map, Value};

use super::table::{self, Card, Emit, Field, Special, Ty};
use super::wire;

/// Why an object could not be encoded (a value of the wrong JSON type for its field).
#[derive(Debug, PartialEq)]
pub struct EncodeError(pub String);

type Result<T> = std::result::Result<T, EncodeError>;

fn err<T>(m: impl Into<String>) -> Result<T> {
    Err(EncodeError(m.into()))
}

/// Encodes `value` as the message at `index` of the table.
pub fn json_to_message(index: u16, value: &Value, depth: usize) -> Result<Vec<u8>> {
    if depth > super::decode::MAX_DEPTH {
        return err("the object nests too deeply to encode");
    }
    let msg = table::message(index);
    let mut out = Vec::new();
    match msg.special {
        Special::None => {
            let Value::Object(obj) = value else {
                return err(format!("{} must be an object", msg.name));
            };
            for field in msg.fields {
                if field.emit == Emit::Inline {
                    // An embedded struct's fields are the parent's own keys.
                    let Ty::Msg(inner) = field.ty else {
                        return err("an embedded field is not a message");
                    };
                    let bytes = json_to_message(inner, value, depth + 1)?;
                    put_len(&mut out, field.tag, &bytes);
                    continue;
                }
                match obj.get(field.json) {
                    None | Some(Value::Null) => {}
                    Some(v) => put_field(&mut out, field, v, depth)
                        .map_err(|e| EncodeError(format!("{}: {}", field.json, e.0)))?,
                }
            }
        }
        Special::Time | Special::MicroTime => {
            if let Some(text) = value.as_str() {
                let t = chrono::DateTime::parse_from_rfc3339(text)
                    .map_err(|e| EncodeError(format!("time {text:?}: {e}")))?;
                put_varint(&mut out, 1, t.timestamp() as u64);
                let nanos = t.timestamp_subsec_nanos();
                if msg.special == Special::MicroTime && nanos != 0 {
                    put_varint(&mut out, 2, u64::from(nanos));
                }
            }
        }
        Special::Duration => {
            let text = value.as_str().unwrap_or("0s");
            put_varint(&mut out, 1, parse_duration(text)? as u64);
        }
        Special::Quantity => {
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return err("a quantity must be a string or a number"),
            };
            put_len(&mut out, 1, text.as_bytes());
        }
        Special::IntOrString => match value {
            Value::Number(n) => {
                put_varint(&mut out, 1, 0);
                put_varint(&mut out, 2, n.as_i64().unwrap_or(0) as u64);
            }
            Value::String(s) => {
                put_varint(&mut out, 1, 1);
                put_len(&mut out, 3, s.as_bytes());
            }
            _ => return err("an int-or-string must be a number or a string"),
        },
        Special::RawJson | Special::RawExtension => {
            let raw = serde_json::to_vec(value).map_err(|e| EncodeError(e.to_string()))?;
            put_len(&mut out, 1, &raw);
        }
        Special::Items => {
            let field = msg
                .fields
                .iter()
                .find(|f| f.tag == 1)
                .ok_or_else(|| EncodeError("a list type without items".into()))?;
            put_field(&mut out, field, value, depth)?;
        }
        Special::SchemaOrArray | Special::SchemaOrStringArray => {
            // Field 1 is the single schema, field 2 the array form.
            let tag = if value.is_array() { 2 } else { 1 };
            if let Some(field) = msg.fields.iter().find(|f| f.tag == tag) {
                put_field(&mut out, field, value, depth)?;
            }
        }
        Special::SchemaOrBool => match value {
            Value::Bool(b) => put_varint(&mut out, 1, u64::from(*b)),
            schema => {
                put_varint(&mut out, 1, 1);
                if let Some(field) = msg.fields.iter().find(|f| f.tag == 2) {
                    put_field(&mut out, field, schema, depth)?;
                }
            }
        },
    }
    Ok(out)
}

fn put_field(out: &mut Vec<u8>, field: &Field, value: &Value, depth: usize) -> Result<()> {
    match field.card {
        Card::One => put_one(out, field.tag, field.ty, value, depth),
        Card::Many => {
            let Value::Array(items) = value else {
                return err("must be a list");
            };
            for item in items {
                put_one(out, field.tag, field.ty, item, depth)?;
            }
            Ok(())
        }
        Card::Map => {
            let Value::Object(entries) = value else {
                return err("must be a map");
            };
            for (k, v) in entries {
                let mut entry = Vec::new();
                put_len(&mut entry, 1, k.as_bytes());
                if !v.is_null() {
                    put_one(&mut entry, 2, field.ty, v, depth)?;
                }
                put_len(out, field.tag, &entry);
            }
            Ok(())
        }
    }
}

fn put_one(out: &mut Vec<u8>, tag: u32, ty: Ty, value: &Value, depth: usize) -> Result<()> {
    match (ty, value) {
        (Ty::Msg(index), v) => {
            let bytes = json_to_message(index, v, depth + 1)?;
            put_len(out, tag, &bytes);
        }
        (Ty::Str, Value::String(s)) => put_len(out, tag, s.as_bytes()),
        (Ty::Bytes, Value::String(s)) => {
            let b = base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|e| EncodeError(format!("bytes are not base64: {e}")))?;
            put_len(out, tag, &b);
        }
        (Ty::I32 | Ty::I64, Value::Number(n)) => {
            // Negative int32s are sign-extended to 64 bits on the wire, as protobuf does.
            let v = n
                .as_i64()
                .ok_or_else(|| EncodeError(format!("{n} is not an integer")))?;
            put_varint(out, tag, v as u64);
        }
        (Ty::Bool, Value::Bool(b)) => put_varint(out, tag, u64::from(*b)),
        (Ty::F64, Value::Number(n)) => {
            put_key(out, tag, wire::FIXED64);
            out.extend_from_slice(&n.as_f64().unwrap_or(0.0).to_bits().to_le_bytes());
        }
        (_, Value::Null) => {}
        (ty, v) => return err(format!("{v} does not fit a {ty:?} field")),
    }
    Ok(())
}

fn put_key(out: &mut Vec<u8>, tag: u32, wire_type: u8) {
    write_varint(out, (u64::from(tag) << 3) | u64::from(wire_type));
}

fn put_varint(out: &mut Vec<u8>, tag: u32, v: u64) {
    put_key(out, tag, wire::VARINT);
    write_varint(out, v);
}

fn put_len(out: &mut Vec<u8>, tag: u32, bytes: &[u8]) {
    put_key(out, tag, wire::LEN);
    write_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn write_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Go's duration text (`1h2m3.5s`, `300ms`) in nanoseconds.
fn parse_duration(text: &str) -> Result<i64> {
    super::go_format::parse_duration(text).map_err(EncodeError)
}

/// Encodes a whole object as a Kubernetes protobuf body: the `k8s\0` magic and a
/// `runtime.Unknown` envelope naming its apiVersion and kind. `None` when the kind has no
/// protobuf message (custom resources).
pub fn encode_object(object: &Value) -> Option<Result<Vec<u8>>> {
    let api_version = object.get("apiVersion")?.as_str()?;
    let kind = object.get("kind")?.as_str()?;
    let index = table::message_for_kind(api_version, kind)?;
    let mut body: Map<String, Value> = object.as_object()?.clone();
    body.remove("apiVersion");
    body.remove("kind");
    Some(json_to_message(index, &Value::Object(body), 0).map(|raw| {
        let mut type_meta = Vec::new();
        put_len(&mut type_meta, 1, api_version.as_bytes());
        put_len(&mut type_meta, 2, kind.as_bytes());
        let mut unknown = Vec::new();
        put_len(&mut unknown, 1, &type_meta);
        put_len(&mut unknown, 2, &raw);
        put_len(&mut unknown, 3, b"");
        put_len(&mut unknown, 4, b"");
        let mut out = super::MAGIC.to_vec();
        out.extend(unknown);
        out
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_pod_survives_encoding_and_decoding() {
        let pod = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "web",
                "namespace": "default",
                "labels": {"app": "web"},
                "creationTimestamp": "2024-05-01T10:00:00Z",
                "resourceVersion": "42",
            },
            "spec": {
                "containers": [{
                    "name": "app",
                    "image": "nginx:1.26",
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    "resources": {"limits": {"memory": "128Mi"}},
                    "readinessProbe": {"httpGet": {"path": "/", "port": "http"}},
                }],
                "terminationGracePeriodSeconds": 30,
                "enableServiceLinks": true,
            },
            "status": {"phase": "Pending"},
        });
        let bytes = encode_object(&pod).unwrap().unwrap();
        assert!(bytes.starts_with(b"k8s\0"));
        let back = super::super::decode_request(&bytes).unwrap();
        assert_eq!(back, pod);
    }

    #[test]
    fn custom_kinds_have_no_protobuf_form() {
        let cr = json!({"apiVersion": "kubeproof.dev/v1", "kind": "Widget", "metadata": {}});
        assert!(encode_object(&cr).is_none());
    }

    #[test]
    fn go_durations_parse() {
        assert_eq!(parse_duration("1h2m3.5s").unwrap(), 3_723_500_000_000);
        assert_eq!(parse_duration("300ms").unwrap(), 300_000_000);
        assert_eq!(parse_duration("-1s").unwrap(), -1_000_000_000);
        assert_eq!(parse_duration("0s").unwrap(), 0);
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5x").is_err());
    }

    #[test]
    fn wrong_json_types_are_errors_not_panics() {
        let bad = json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": "nope"}});
        let e = encode_object(&bad).unwrap().unwrap_err();
        assert!(e.0.contains("containers"), "{}", e.0);
    }
}
