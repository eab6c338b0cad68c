//! Field paths and field sets as structured-merge-diff defines them, and their `FieldsV1`
//! encoding in `metadata.managedFields`:
//! `{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"x\"}":{...}}}}`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

/// One step of a path. The derived order (fields, then keys, values, indices) is the
/// order upstream serializes them in.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum PathElement {
    /// A struct field or map key: `f:name`.
    Field(String),
    /// An item of a list of maps, by its key fields (sorted by name; values as canonical
    /// JSON): `k:{"name":"x"}`.
    Key(Vec<(String, String)>),
    /// An item of a set, by its value (canonical JSON): `v:"x"`.
    Value(String),
    /// An item of a list identified by position: `i:0`.
    Index(usize),
}

pub(crate) type Path = Vec<PathElement>;
pub(crate) type FieldSet = BTreeSet<Path>;

/// JSON with object keys sorted, so equal values always encode the same.
pub(crate) fn canonical_json(v: &Value) -> String {
    fn sort(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let sorted: BTreeMap<&String, Value> =
                    m.iter().map(|(k, v)| (k, sort(v))).collect();
                let mut out = Map::new();
                for (k, v) in sorted {
                    out.insert(k.clone(), v);
                }
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    sort(v).to_string()
}

impl PathElement {
    /// The `FieldsV1` key of this element.
    pub fn encode(&self) -> String {
        match self {
            PathElement::Field(name) => format!("f:{name}"),
            PathElement::Key(fields) => {
                let inner: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| format!("{}:{v}", Value::from(k.as_str())))
                    .collect();
                format!("k:{{{}}}", inner.join(","))
            }
            PathElement::Value(v) => format!("v:{v}"),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    pub fn decode(s: &str) -> Option<PathElement> {
        let (prefix, rest) = s.split_at_checked(2)?;
        match prefix {
            "f:" => Some(PathElement::Field(rest.to_string())),
            "k:" => {
                let Value::Object(map) = serde_json::from_str::<Value>(rest).ok()? else {
                    return None;
                };
                let mut fields: Vec<(String, String)> = map
                    .iter()
                    .map(|(k, v)| (k.clone(), canonical_json(v)))
                    .collect();
                fields.sort();
                Some(PathElement::Key(fields))
            }
            "v:" => {
                let v: Value = serde_json::from_str(rest).ok()?;
                Some(PathElement::Value(canonical_json(&v)))
            }
            "i:" => rest.parse().ok().map(PathElement::Index),
            _ => None,
        }
    }

    /// Upstream's human form, used in conflict messages: `.name`, `[name="x"]`, `[="x"]`,
    /// `[0]`.
    fn display(&self) -> String {
        match self {
            PathElement::Field(name) => format!(".{name}"),
            PathElement::Key(fields) => {
                let inner: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("[{}]", inner.join(","))
            }
            PathElement::Value(v) => format!("[={v}]"),
            PathElement::Index(i) => format!("[{i}]"),
        }
    }
}

pub(crate) fn display_path(path: &[PathElement]) -> String {
    path.iter().map(PathElement::display).collect()
}

#[derive(Default)]
struct Tree {
    member: bool,
    children: BTreeMap<PathElement, Tree>,
}

impl Tree {
    fn to_json(&self) -> Value {
        let mut out = Map::new();
        if self.member && !self.children.is_empty() {
            out.insert(".".into(), Value::Object(Map::new()));
        }
        for (pe, child) in &self.children {
            out.insert(pe.encode(), child.to_json());
        }
        Value::Object(out)
    }
}

/// The `fieldsV1` object of a set.
pub(crate) fn encode(set: &FieldSet) -> Value {
    let mut root = Tree::default();
    for path in set {
        let mut node = &mut root;
        for pe in path {
            node = node.children.entry(pe.clone()).or_default();
        }
        node.member = true;
    }
    root.to_json()
}

/// Parses a `fieldsV1` object; `None` if it is malformed.
pub(crate) fn decode(fields: &Value) -> Option<FieldSet> {
    fn walk(v: &Value, path: &mut Path, out: &mut FieldSet) -> Option<()> {
        let Value::Object(map) = v else {
            return None;
        };
        for (k, child) in map {
            if k == "." {
                if !path.is_empty() {
                    out.insert(path.clone());
                }
                continue;
            }
            path.push(PathElement::decode(k)?);
            match child {
                Value::Object(m) if m.is_empty() => {
                    out.insert(path.clone());
                }
                _ => walk(child, path, out)?,
            }
            path.pop();
        }
        Some(())
    }
    let mut out = FieldSet::new();
    walk(fields, &mut Vec::new(), &mut out)?;
    Some(out)
}

/// Shorthand for a path of field names.
pub(crate) fn fields(names: &[&str]) -> Path {
    names
        .iter()
        .map(|n| PathElement::Field(n.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn encode_decode_roundtrip_with_members_and_keys() {
        let key = PathElement::Key(vec![("name".into(), "\"nginx\"".into())]);
        let mut set = FieldSet::new();
        set.insert(fields(&["metadata", "labels", "app"]));
        set.insert(fields(&["metadata", "labels"]));
        let mut item = fields(&["spec", "containers"]);
        item.push(key.clone());
        set.insert(item.clone());
        let mut image = item.clone();
        image.push(PathElement::Field("image".into()));
        set.insert(image);
        let mut fin = fields(&["metadata", "finalizers"]);
        fin.push(PathElement::Value("\"a\"".into()));
        set.insert(fin);

        let encoded = encode(&set);
        assert_eq!(
            encoded,
            json!({
                "f:metadata": {
                    "f:finalizers": {"v:\"a\"": {}},
                    "f:labels": {".": {}, "f:app": {}}
                },
                "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {".": {}, "f:image": {}}}}
            })
        );
        assert_eq!(decode(&encoded), Some(set));
        assert_eq!(display_path(&item), ".spec.containers[name=\"nginx\"]");
    }

    #[test]
    fn malformed_is_rejected() {
        assert_eq!(decode(&json!({"x:y": {}})), None);
        assert_eq!(decode(&json!({"f:a": 3})), None);
        assert_eq!(decode(&json!({"k:notjson": {}})), None);
    }
}
