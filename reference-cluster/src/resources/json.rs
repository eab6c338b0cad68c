//! Small helpers for reading and defaulting `serde_json::Value` objects.
//!
//! Objects arrive from clients, so every accessor tolerates a missing key or a value of the wrong
//! type (validation reports those; defaulting and printing must simply not panic).

use serde_json::{Map, Value};

/// The value at a dotted path of object keys (`"spec.template.spec"`), if every step exists.
pub fn at<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = obj;
    for key in path.split('.').filter(|k| !k.is_empty()) {
        cur = cur.as_object()?.get(key)?;
    }
    Some(cur)
}

/// Mutable access to the value at a dotted path, if every step exists.
pub fn at_mut<'a>(obj: &'a mut Value, path: &str) -> Option<&'a mut Value> {
    let mut cur = obj;
    for key in path.split('.').filter(|k| !k.is_empty()) {
        cur = cur.as_object_mut()?.get_mut(key)?;
    }
    Some(cur)
}

pub fn str_at<'a>(obj: &'a Value, path: &str) -> Option<&'a str> {
    at(obj, path).and_then(Value::as_str)
}

/// The string at `path`, or `""` when absent or not a string.
pub fn string_at(obj: &Value, path: &str) -> String {
    str_at(obj, path).unwrap_or_default().to_string()
}

pub fn i64_at(obj: &Value, path: &str) -> Option<i64> {
    at(obj, path).and_then(Value::as_i64)
}

pub fn bool_at(obj: &Value, path: &str) -> Option<bool> {
    at(obj, path).and_then(Value::as_bool)
}

pub fn array_at<'a>(obj: &'a Value, path: &str) -> &'a [Value] {
    at(obj, path)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

pub fn object_at<'a>(obj: &'a Value, path: &str) -> Option<&'a Map<String, Value>> {
    at(obj, path).and_then(Value::as_object)
}

/// Makes `obj[key]` an object (replacing a non-object or null) and returns it.
///
/// Returns `None` only when `obj` itself is not an object.
pub fn ensure_object<'a>(obj: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    let map = obj.as_object_mut()?;
    let entry = map.entry(key.to_string()).or_insert(Value::Null);
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    Some(entry)
}

/// Walks/creates nested objects along a dotted path; `None` if an existing step is not an
/// object-compatible value (a client sent e.g. a string where an object belongs).
pub fn ensure_path<'a>(obj: &'a mut Value, path: &str) -> Option<&'a mut Value> {
    let mut cur = obj;
    for key in path.split('.').filter(|k| !k.is_empty()) {
        let map = cur.as_object_mut()?;
        let entry = map.entry(key.to_string()).or_insert(Value::Null);
        if entry.is_null() {
            *entry = Value::Object(Map::new());
        }
        if !entry.is_object() {
            return None;
        }
        cur = entry;
    }
    Some(cur)
}

/// Sets `obj[key] = value` when the key is absent or null. No-op when `obj` is not an object.
pub fn set_default(obj: &mut Value, key: &str, value: Value) {
    if let Some(map) = obj.as_object_mut() {
        let entry = map.entry(key.to_string()).or_insert(Value::Null);
        if entry.is_null() {
            *entry = value;
        }
    }
}

/// Like [`set_default`] but also replaces an empty string, which Go's zero-value checks treat
/// as unset (`if obj.Type == "" { ... }`).
pub fn set_default_str(obj: &mut Value, key: &str, value: &str) {
    if let Some(map) = obj.as_object_mut() {
        let entry = map.entry(key.to_string()).or_insert(Value::Null);
        if entry.is_null() || entry.as_str() == Some("") {
            *entry = Value::String(value.to_string());
        }
    }
}

/// Applies `f` to every element of the array at `obj[key]` (if it is an array).
pub fn for_each_in(obj: &mut Value, key: &str, mut f: impl FnMut(&mut Value)) {
    if let Some(items) = obj.get_mut(key).and_then(Value::as_array_mut) {
        items.iter_mut().for_each(&mut f);
    }
}

/// `true` for null, `{}`, `[]` and `""`: what Go's `omitempty` would leave out.
pub fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// Labels (or any string map) at `path`, skipping non-string values.
pub fn string_map(obj: &Value, path: &str) -> std::collections::BTreeMap<String, String> {
    object_at(obj, path)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// The value with `path` removed from both sides, for "did anything else change" checks.
pub fn without_keys(obj: &Value, keys: &[&str]) -> Value {
    match obj {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !keys.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Renders a JSON value the way Go's `%v` would for scalar cells (strings unquoted).
pub fn display(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Semantic equality as upstream's `apiequality.Semantic.DeepEqual` sees it after decoding:
/// an absent key, `null`, an empty map/list are all the same zero value for a Go struct field.
pub fn semantic_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().all(|k| {
                let va = x.get(k).unwrap_or(&Value::Null);
                let vb = y.get(k).unwrap_or(&Value::Null);
                semantic_eq(va, vb)
            })
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| semantic_eq(p, q))
        }
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(p), Some(q)) => p == q,
            _ => x == y,
        },
        (x, y) if is_empty(x) && is_empty(y) => true,
        (x, y) => x == y,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn path_access_tolerates_wrong_types() {
        let v = json!({"spec": {"replicas": 3, "template": "oops"}});
        assert_eq!(i64_at(&v, "spec.replicas"), Some(3));
        assert_eq!(at(&v, "spec.template.spec"), None);
        assert_eq!(string_at(&v, "spec.missing"), "");
    }

    #[test]
    fn ensure_path_creates_missing_objects_but_not_over_scalars() {
        let mut v = json!({"spec": {"template": "oops"}});
        assert!(ensure_path(&mut v, "spec.selector.matchLabels").is_some());
        assert_eq!(v["spec"]["selector"], json!({"matchLabels": {}}));
        assert!(ensure_path(&mut v, "spec.template.spec").is_none());
    }

    #[test]
    fn semantic_eq_treats_empty_and_absent_alike() {
        assert!(semantic_eq(&json!({"a": {}, "b": 1}), &json!({"b": 1.0})));
        assert!(!semantic_eq(&json!({"a": [1]}), &json!({})));
    }
}
