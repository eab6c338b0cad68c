//! The static types the checker reasons with, and the type CEL gives a structural schema
//! (upstream's `SchemaDeclType`).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use super::value::{additional, escape, is_embedded, is_int_or_string, properties, schema_type};

/// What the checker knows of an expression's type; `Dyn` when it cannot tell, which is never
/// an error.
#[derive(Clone, Debug, PartialEq)]
pub enum Ty {
    Dyn,
    Null,
    Bool,
    Int,
    Uint,
    Double,
    String,
    Bytes,
    Duration,
    Timestamp,
    /// A type value such as `int` in `type(x) == int`.
    Type,
    List(Box<Ty>),
    Map(Box<Ty>, Box<Ty>),
    /// An object with exactly these fields (a schema object, the admission request).
    Object(Arc<BTreeMap<String, Ty>>),
    Optional(Box<Ty>),
    /// An extension type such as `kubernetes.Quantity`.
    Opaque(&'static str),
}

impl Ty {
    pub fn object(fields: impl IntoIterator<Item = (&'static str, Ty)>) -> Ty {
        Ty::Object(Arc::new(
            fields
                .into_iter()
                .map(|(k, t)| (k.to_string(), t))
                .collect(),
        ))
    }

    pub fn list(t: Ty) -> Ty {
        Ty::List(Box::new(t))
    }

    pub fn map(k: Ty, v: Ty) -> Ty {
        Ty::Map(Box::new(k), Box::new(v))
    }

    pub fn is_dyn(&self) -> bool {
        matches!(self, Ty::Dyn)
    }

    pub fn is_numeric(&self) -> bool {
        matches!(self, Ty::Int | Ty::Uint | Ty::Double)
    }

    /// Scalars whose overloads the checker knows completely.
    pub fn is_primitive(&self) -> bool {
        matches!(
            self,
            Ty::Bool
                | Ty::Int
                | Ty::Uint
                | Ty::Double
                | Ty::String
                | Ty::Bytes
                | Ty::Duration
                | Ty::Timestamp
        )
    }

    /// The least specific of two types: equal types stay, anything else is `Dyn`.
    pub fn join(a: &Ty, b: &Ty) -> Ty {
        match (a, b) {
            _ if a == b => a.clone(),
            (Ty::Null, other) | (other, Ty::Null) => other.clone(),
            (Ty::List(x), Ty::List(y)) => Ty::list(Ty::join(x, y)),
            _ => Ty::Dyn,
        }
    }
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ty::Dyn => write!(f, "dyn"),
            Ty::Null => write!(f, "null_type"),
            Ty::Bool => write!(f, "bool"),
            Ty::Int => write!(f, "int"),
            Ty::Uint => write!(f, "uint"),
            Ty::Double => write!(f, "double"),
            Ty::String => write!(f, "string"),
            Ty::Bytes => write!(f, "bytes"),
            Ty::Duration => write!(f, "google.protobuf.Duration"),
            Ty::Timestamp => write!(f, "google.protobuf.Timestamp"),
            Ty::Type => write!(f, "type"),
            Ty::List(t) => write!(f, "list({t})"),
            Ty::Map(k, v) => write!(f, "map({k}, {v})"),
            Ty::Object(_) => write!(f, "object"),
            Ty::Optional(t) => write!(f, "optional_type({t})"),
            Ty::Opaque(name) => write!(f, "{name}"),
        }
    }
}

/// The fields every resource root exposes, whatever its schema declares.
fn resource_root_fields(fields: &mut BTreeMap<String, Ty>) {
    fields.insert("apiVersion".into(), Ty::String);
    fields.insert("kind".into(), Ty::String);
    fields.insert(
        "metadata".into(),
        Ty::object([("name", Ty::String), ("generateName", Ty::String)]),
    );
}

/// The CEL type of values under `schema`, `None` where CEL cannot see them (no type, an
/// array without items), as upstream's `SchemaDeclType`.
pub fn schema_ty(schema: &Value, resource_root: bool) -> Option<Ty> {
    if is_int_or_string(schema) {
        return Some(Ty::Dyn);
    }
    let root = resource_root || is_embedded(schema);
    match schema_type(schema) {
        "object" => {
            if let Some(values) = additional(schema) {
                return schema_ty(values, false).map(|v| Ty::map(Ty::String, v));
            }
            let mut fields = BTreeMap::new();
            for (name, prop) in properties(schema).into_iter().flatten() {
                if root && matches!(name.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                if let (Some(escaped), Some(t)) = (escape(name), schema_ty(prop, false)) {
                    fields.insert(escaped, t);
                }
            }
            if root {
                resource_root_fields(&mut fields);
            }
            Some(Ty::Object(Arc::new(fields)))
        }
        "array" => schema
            .get("items")
            .and_then(|items| schema_ty(items, false))
            .map(Ty::list),
        "string" => Some(match schema.get("format").and_then(Value::as_str) {
            Some("byte") => Ty::Bytes,
            Some("duration") => Ty::Duration,
            Some("date") | Some("date-time") => Ty::Timestamp,
            _ => Ty::String,
        }),
        "integer" => Some(Ty::Int),
        "number" => Some(Ty::Double),
        "boolean" => Some(Ty::Bool),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schema_types() {
        let s = json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "n": {"type": "integer"}, "free": {"x-kubernetes-preserve-unknown-fields": true},
                "port": {"x-kubernetes-int-or-string": true},
                "tags": {"type": "array", "items": {"type": "string"}},
                "m": {"type": "object", "additionalProperties": {"type": "number"}},
                "when": {"type": "string", "format": "date-time"}}}}});
        let Some(Ty::Object(root)) = schema_ty(&s, true) else {
            panic!("root is an object");
        };
        assert!(root.contains_key("apiVersion") && root.contains_key("metadata"));
        let Ty::Object(spec) = &root["spec"] else {
            panic!("spec is an object");
        };
        assert_eq!(spec["n"], Ty::Int);
        assert!(!spec.contains_key("free"));
        assert_eq!(spec["port"], Ty::Dyn);
        assert_eq!(spec["tags"], Ty::list(Ty::String));
        assert_eq!(spec["m"], Ty::map(Ty::String, Ty::Double));
        assert_eq!(spec["when"], Ty::Timestamp);
        assert_eq!(schema_ty(&json!({"type": "array"}), false), None);
    }
}
