//! JSON ⇄ CEL values. Custom resources are converted through their structural schema the way
//! apiextensions-apiserver's `UnstructuredToVal` sees them: only declared properties are visible
//! (under their CEL-escaped names), `integer`/`number` become `int`/`double`, string formats
//! `byte`, `duration`, `date` and `date-time` become bytes, durations and timestamps, and the
//! root of a resource (or of an embedded resource) always exposes `apiVersion`, `kind` and
//! `metadata.name`/`metadata.generateName`. Values without a schema (admission objects,
//! params) are converted structurally.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use cel::objects::{Key, Map};
use cel::Value as Cel;
use chrono::{DateTime, FixedOffset, NaiveDate};
use serde_json::Value;

/// CEL keywords and reserved words a property name may not be used as without escaping.
const RESERVED: &[&str] = &[
    "true",
    "false",
    "null",
    "in",
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
];

/// Upstream's `cel.Escape`: the name a property has in CEL, or `None` when it has none (it
/// starts with a digit, is empty, or holds a character other than `.`, `-` and `/`).
pub fn escape(name: &str) -> Option<String> {
    let first = name.chars().next()?;
    if first.is_ascii_digit() {
        return None;
    }
    if RESERVED.contains(&name) {
        return Some(format!("__{name}__"));
    }
    let mut out = String::with_capacity(name.len());
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '_' if chars.peek() == Some(&'_') => {
                chars.next();
                out.push_str("__underscores__");
            }
            c if c.is_ascii_alphanumeric() || c == '_' => out.push(c),
            '.' => out.push_str("__dot__"),
            '-' => out.push_str("__dash__"),
            '/' => out.push_str("__slash__"),
            _ => return None,
        }
    }
    Some(out)
}

fn flag(schema: &Value, name: &str) -> bool {
    schema.get(name).and_then(Value::as_bool) == Some(true)
}

pub fn is_int_or_string(schema: &Value) -> bool {
    flag(schema, "x-kubernetes-int-or-string")
}

pub fn is_embedded(schema: &Value) -> bool {
    flag(schema, "x-kubernetes-embedded-resource")
}

pub fn properties(schema: &Value) -> Option<&serde_json::Map<String, Value>> {
    schema.get("properties").and_then(Value::as_object)
}

/// `additionalProperties` when it is a schema (not `true`/`false`).
pub fn additional(schema: &Value) -> Option<&Value> {
    schema.get("additionalProperties").filter(|v| v.is_object())
}

pub fn schema_type(schema: &Value) -> &str {
    schema.get("type").and_then(Value::as_str).unwrap_or("")
}

/// A structural conversion for values without a schema.
pub fn from_json(v: &Value) -> Cel {
    match v {
        Value::Null => Cel::Null,
        Value::Bool(b) => Cel::Bool(*b),
        Value::Number(n) => number(n, false),
        Value::String(s) => Cel::String(Arc::new(s.clone())),
        Value::Array(items) => Cel::List(Arc::new(items.iter().map(from_json).collect())),
        Value::Object(m) => map(m
            .iter()
            .map(|(k, v)| (Key::String(Arc::new(k.clone())), from_json(v)))),
    }
}

fn map(entries: impl Iterator<Item = (Key, Cel)>) -> Cel {
    let entries: HashMap<Key, Cel> = entries.collect();
    Cel::Map(Map {
        map: Arc::new(entries),
    })
}

/// Integers are `int` unless a schema asks for `double`; an integral float under an
/// `integer` schema (JSON does not distinguish `3` from `3.0`) is an `int` too.
fn number(n: &serde_json::Number, want_double: bool) -> Cel {
    if want_double {
        return Cel::Float(n.as_f64().unwrap_or(f64::NAN));
    }
    if let Some(i) = n.as_i64() {
        return Cel::Int(i);
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 => {
            Cel::Int(f as i64)
        }
        Some(f) => Cel::Float(f),
        None => Cel::Float(f64::NAN),
    }
}

/// The root of a resource: `apiVersion`, `kind` and the two metadata fields rules may read,
/// on top of what the schema declares.
fn resource_root_fields(obj: &serde_json::Map<String, Value>, out: &mut Vec<(Key, Cel)>) {
    for k in ["apiVersion", "kind"] {
        if let Some(Value::String(s)) = obj.get(k) {
            out.push((
                Key::String(Arc::new(k.into())),
                Cel::String(Arc::new(s.clone())),
            ));
        }
    }
    if let Some(Value::Object(meta)) = obj.get("metadata") {
        let fields = ["name", "generateName"]
            .into_iter()
            .filter_map(|k| match meta.get(k) {
                Some(Value::String(s)) => Some((
                    Key::String(Arc::new(k.into())),
                    Cel::String(Arc::new(s.clone())),
                )),
                _ => None,
            });
        out.push((Key::String(Arc::new("metadata".into())), map(fields)));
    }
}

/// `v` as CEL sees it under `schema`; `None` for a value the schema makes invisible (an
/// untyped property, an unparsable formatted string).
pub fn from_schema(v: &Value, schema: &Value, resource_root: bool) -> Option<Cel> {
    if v.is_null() {
        return Some(Cel::Null);
    }
    if is_int_or_string(schema) {
        return Some(from_json(v));
    }
    let root = resource_root || is_embedded(schema);
    match (schema_type(schema), v) {
        ("object", Value::Object(obj)) => {
            if let Some(values) = additional(schema) {
                let entries = obj.iter().filter_map(|(k, item)| {
                    from_schema(item, values, false).map(|c| (Key::String(Arc::new(k.clone())), c))
                });
                return Some(map(entries));
            }
            let mut entries = Vec::new();
            if root {
                resource_root_fields(obj, &mut entries);
            }
            if let Some(props) = properties(schema) {
                for (k, item) in obj {
                    if root && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                        continue;
                    }
                    let (Some(prop), Some(name)) = (props.get(k), escape(k)) else {
                        continue;
                    };
                    if let Some(c) = from_schema(item, prop, false) {
                        entries.push((Key::String(Arc::new(name)), c));
                    }
                }
            }
            Some(map(entries.into_iter()))
        }
        ("array", Value::Array(items)) => {
            let item_schema = schema.get("items")?;
            let list: Option<Vec<Cel>> = items
                .iter()
                .map(|i| from_schema(i, item_schema, false))
                .collect();
            Some(Cel::List(Arc::new(list?)))
        }
        ("string", Value::String(s)) => Some(match schema.get("format").and_then(Value::as_str) {
            Some("byte") => Cel::Bytes(Arc::new(
                base64::engine::general_purpose::STANDARD.decode(s).ok()?,
            )),
            Some("duration") => Cel::Duration(parse_go_duration(s)?),
            Some("date") => Cel::Timestamp(parse_date(s)?),
            Some("date-time") => Cel::Timestamp(DateTime::parse_from_rfc3339(s).ok()?),
            _ => Cel::String(Arc::new(s.clone())),
        }),
        ("integer", Value::Number(n)) => Some(number(n, false)),
        ("number", Value::Number(n)) => Some(number(n, true)),
        ("boolean", Value::Bool(b)) => Some(Cel::Bool(*b)),
        // Schema validation reports type mismatches; CEL sees the value as it is.
        (t, other) if !t.is_empty() => Some(from_json(other)),
        _ => None,
    }
}

fn parse_date(s: &str) -> Option<DateTime<FixedOffset>> {
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    Some(d.and_hms_opt(0, 0, 0)?.and_utc().fixed_offset())
}

/// Go's `time.ParseDuration` (shared with the protobuf encoder).
pub fn parse_go_duration(s: &str) -> Option<chrono::Duration> {
    crate::apiserver::protobuf::go_format::parse_duration(s)
        .ok()
        .map(chrono::Duration::nanoseconds)
}

/// A CEL result as JSON, for messages and tests; values JSON cannot hold are rendered as
/// strings.
#[cfg(test)]
pub fn to_json(v: &Cel) -> Value {
    match v {
        Cel::Null => Value::Null,
        Cel::Bool(b) => Value::Bool(*b),
        Cel::Int(i) => Value::from(*i),
        Cel::UInt(u) => Value::from(*u),
        Cel::Float(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        Cel::String(s) => Value::String(s.to_string()),
        Cel::Bytes(b) => Value::String(base64::engine::general_purpose::STANDARD.encode(&**b)),
        Cel::List(items) => Value::Array(items.iter().map(to_json).collect()),
        Cel::Map(m) => {
            let mut entries: Vec<(String, Value)> = m
                .map
                .iter()
                .map(|(k, v)| (k.to_string(), to_json(v)))
                .collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().collect())
        }
        Cel::Duration(d) => Value::String(format!("{}s", d.num_milliseconds() as f64 / 1000.0)),
        Cel::Timestamp(t) => Value::String(t.to_rfc3339()),
        other => Value::String(format!("{other:?}")),
    }
}

/// Deep equality of two JSON values with numbers compared by value, as Go's `reflect.DeepEqual`
/// sees decoded unstructured objects (where `3` and `3.0` are both `int64` or both `float64`).
pub fn deep_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(p), Some(q)) => p == q,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| deep_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| deep_eq(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn escaping_follows_upstream() {
        assert_eq!(escape("replicas").as_deref(), Some("replicas"));
        assert_eq!(escape("namespace").as_deref(), Some("__namespace__"));
        assert_eq!(
            escape("a.b-c/d").as_deref(),
            Some("a__dot__b__dash__c__slash__d")
        );
        assert_eq!(escape("x__y").as_deref(), Some("x__underscores__y"));
        assert_eq!(escape("1st"), None);
        assert_eq!(escape("a b"), None);
        assert_eq!(escape(""), None);
    }

    #[test]
    fn schema_conversion_hides_undeclared_fields_and_types_numbers() {
        let schema = json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "ratio": {"type": "number"}, "count": {"type": "integer"},
                "timeout": {"type": "string", "format": "duration"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}}}}}});
        let obj = json!({"apiVersion": "x/v1", "kind": "W", "metadata": {"name": "w", "uid": "u"},
            "spec": {"ratio": 1, "count": 2.0, "timeout": "1m30s", "secret": "hidden",
                     "labels": {"a.b": "c"}}});
        let cel = from_schema(&obj, &schema, true).unwrap();
        let back = to_json(&cel);
        assert_eq!(back["apiVersion"], "x/v1");
        assert_eq!(back["metadata"], json!({"name": "w"}));
        assert_eq!(back["spec"]["ratio"], json!(1.0));
        assert_eq!(back["spec"]["count"], json!(2));
        assert_eq!(back["spec"]["timeout"], json!("90s"));
        assert!(back["spec"].get("secret").is_none());
        assert_eq!(back["spec"]["labels"], json!({"a.b": "c"}));
    }

    #[test]
    fn go_durations() {
        assert_eq!(
            parse_go_duration("1h30m"),
            Some(chrono::Duration::minutes(90))
        );
        assert_eq!(
            parse_go_duration("-1.5s"),
            Some(chrono::Duration::milliseconds(-1500))
        );
        assert_eq!(parse_go_duration("0"), Some(chrono::Duration::zero()));
        for bad in ["", "5", "1x", "h", "1h-"] {
            assert_eq!(parse_go_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn deep_equality_compares_numbers_by_value() {
        assert!(deep_eq(&json!({"a": [1, 2.0]}), &json!({"a": [1.0, 2]})));
        assert!(!deep_eq(&json!({"a": 1}), &json!({"a": 1, "b": null})));
    }
}
