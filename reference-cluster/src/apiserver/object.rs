//! Small helpers over objects as JSON values.

use bytes::Bytes;
use serde_json::{json, Map, Value};

use crate::store::KeyValue;

use super::{ApiError, ApiResult};

pub fn meta(obj: &Value) -> &Value {
    obj.get("metadata").unwrap_or(&Value::Null)
}

pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = json!({});
    }
    let o = obj.as_object_mut().expect("just made an object");
    let m = o.entry("metadata").or_insert_with(|| json!({}));
    if !m.is_object() {
        *m = json!({});
    }
    m.as_object_mut().expect("just made an object")
}

pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    meta(obj)
        .get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

pub fn name(obj: &Value) -> &str {
    meta_str(obj, "name").unwrap_or("")
}

pub fn labels(obj: &Value) -> Map<String, Value> {
    meta(obj)
        .get("labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

pub fn finalizers(obj: &Value) -> Vec<String> {
    meta(obj)
        .get("finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

pub fn set_finalizers(obj: &mut Value, list: &[String]) {
    let m = meta_mut(obj);
    if list.is_empty() {
        m.remove("finalizers");
    } else {
        m.insert("finalizers".into(), json!(list));
    }
}

pub fn is_deleting(obj: &Value) -> bool {
    meta(obj)
        .get("deletionTimestamp")
        .map(|v| !v.is_null())
        .unwrap_or(false)
}

/// The pending deletion's deadline and grace period, when both are set.
pub fn deletion_grace(obj: &Value) -> Option<(chrono::DateTime<chrono::Utc>, i64)> {
    let m = meta(obj);
    let at = m.get("deletionTimestamp")?.as_str()?;
    let at = chrono::DateTime::parse_from_rfc3339(at).ok()?.to_utc();
    Some((at, m.get("deletionGracePeriodSeconds")?.as_i64()?))
}

/// RFC 3339 with second precision, as metav1.Time serialises.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Decodes a stored object and stamps its resourceVersion from the store's revision.
pub fn from_stored(kv: &KeyValue) -> ApiResult<Value> {
    let mut obj: Value = serde_json::from_slice(&kv.value).map_err(|e| {
        ApiError::internal(format!("stored object {} is not valid JSON: {e}", kv.key))
    })?;
    meta_mut(&mut obj).insert("resourceVersion".into(), json!(kv.mod_revision.to_string()));
    Ok(obj)
}

/// Encodes an object for storage; the resourceVersion is never stored (it is the revision).
pub fn to_stored(obj: &Value) -> Bytes {
    let mut copy = obj.clone();
    meta_mut(&mut copy).remove("resourceVersion");
    Bytes::from(serde_json::to_vec(&copy).expect("JSON values always serialise"))
}

/// Parses a request body as JSON, or YAML or Kubernetes protobuf when the content type says so
/// (`kubeproof_wire::decode`, which the fuzz target exercises); refusals become `Status` errors.
pub fn decode(content_type: &str, body: &[u8]) -> ApiResult<Value> {
    kubeproof_wire::decode(content_type, body)
        .map_err(|e| ApiError::new(e.code, e.reason, e.message))
}

/// Random suffix for `generateName`, from the same alphabet upstream uses (no vowels, no
/// look-alike characters).
pub fn random_suffix(n: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A value at a dotted path (`spec.replicas`), for scale subresources of custom resources.
pub fn at_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    path.trim_start_matches('.')
        .split('.')
        .filter(|s| !s.is_empty())
        .try_fold(obj, |v, seg| v.get(seg))
}

pub fn set_path(obj: &mut Value, path: &str, value: Value) {
    let segs: Vec<&str> = path
        .trim_start_matches('.')
        .split('.')
        .filter(|s| !s.is_empty())
        .collect();
    let mut cur = obj;
    for (i, seg) in segs.iter().enumerate() {
        if !cur.is_object() {
            *cur = json!({});
        }
        let map = cur.as_object_mut().expect("just made an object");
        if i + 1 == segs.len() {
            map.insert((*seg).to_string(), value);
            return;
        }
        cur = map.entry(seg.to_string()).or_insert_with(|| json!({}));
    }
}
