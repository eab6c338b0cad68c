//! A compiled, per-kind view of a schema that answers what patching needs: which lists are
//! merged by key or as sets, which maps and structs are atomic, and the strategic merge
//! patch strategy and merge key of each field.
//!
//! Schemas are compiled into an arena of nodes (definitions may be recursive, e.g. JSON
//! schema props), shared by every kind built from the same definitions.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use serde_json::{json, Value};

use crate::openapi::builtin::{builtin_schemas, v3_ref, OBJECT_META, V3_REF_PREFIX};

pub(crate) type NodeId = usize;

/// Node for values the schema says nothing about: maps are granular, lists atomic.
pub(crate) const UNTYPED: NodeId = 0;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ListKind {
    Atomic,
    /// Primitive items identified by value.
    Set,
    /// Items identified by the values of these keys.
    Map(Vec<String>),
}

#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub node: NodeId,
    /// `x-kubernetes-patch-strategy`, split on commas (`merge`, `retainKeys`, `replace`).
    pub strategies: Vec<String>,
    pub merge_key: Option<String>,
    /// Listed in the parent's `required`: upstream's zero-valued Go object always carries
    /// such fields, which matters for which fields count as newly added.
    pub required: bool,
}

impl Field {
    pub fn has_strategy(&self, s: &str) -> bool {
        self.strategies.iter().any(|x| x == s)
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Node {
    Untyped,
    Scalar,
    /// An object with declared properties; `other` types undeclared keys, if allowed.
    Struct {
        fields: HashMap<String, Field>,
        other: Option<NodeId>,
        atomic: bool,
    },
    /// A map from arbitrary keys to `values`.
    Map {
        values: NodeId,
        atomic: bool,
    },
    List {
        items: NodeId,
        kind: ListKind,
    },
}

#[derive(Debug, Default)]
pub(crate) struct Arena {
    nodes: Vec<Node>,
}

impl Arena {
    pub fn node(&self, id: NodeId) -> &Node {
        self.nodes.get(id).unwrap_or(&Node::Untyped)
    }

    /// The field declaration (if any) and node of `key` inside object node `id`.
    pub fn child(&self, id: NodeId, key: &str) -> (Option<&Field>, NodeId) {
        match self.node(id) {
            Node::Struct { fields, other, .. } => match fields.get(key) {
                Some(f) => (Some(f), f.node),
                None => (None, other.unwrap_or(UNTYPED)),
            },
            Node::Map { values, .. } => (None, *values),
            _ => (None, UNTYPED),
        }
    }

    /// Whether `key` is a declared property of struct node `id` (not a map entry).
    pub fn is_declared(&self, id: NodeId, key: &str) -> bool {
        matches!(self.node(id), Node::Struct { fields, .. } if fields.contains_key(key))
    }

    pub fn items(&self, id: NodeId) -> NodeId {
        match self.node(id) {
            Node::List { items, .. } => *items,
            _ => UNTYPED,
        }
    }

    pub fn list_kind(&self, id: NodeId) -> ListKind {
        match self.node(id) {
            Node::List { kind, .. } => kind.clone(),
            _ => ListKind::Atomic,
        }
    }

    /// Whether object node `id` is replaced as a whole by server-side apply.
    pub fn is_atomic_object(&self, id: NodeId) -> bool {
        matches!(
            self.node(id),
            Node::Struct { atomic: true, .. } | Node::Map { atomic: true, .. }
        )
    }
}

/// Per-kind schema view for patching: where lists are merged by key, sets, atomic; maps
/// granular/atomic.
#[derive(Clone, Debug)]
pub struct PatchMeta {
    pub(crate) arena: Arc<Arena>,
    pub(crate) root: NodeId,
    /// Strategic merge patch is only defined for built-in kinds (upstream answers 415 for
    /// custom resources).
    pub(crate) strategic: bool,
}

struct BuiltinMetas {
    arena: Arc<Arena>,
    roots: HashMap<(String, String, String), NodeId>,
}

fn builtin_metas() -> &'static BuiltinMetas {
    static METAS: OnceLock<BuiltinMetas> = OnceLock::new();
    METAS.get_or_init(|| {
        let schemas = builtin_schemas();
        let mut compiler = Compiler::new(&schemas.definitions);
        let roots = schemas
            .kinds
            .iter()
            .map(|(gvk, name)| (gvk.clone(), compiler.compile(&v3_ref(name))))
            .collect();
        BuiltinMetas {
            arena: Arc::new(compiler.finish()),
            roots,
        }
    })
}

impl PatchMeta {
    /// The view of a built-in kind, from k8s-openapi's types and upstream's markers.
    pub fn for_builtin(group: &str, version: &str, kind: &str) -> Option<PatchMeta> {
        let metas = builtin_metas();
        let key = (group.to_string(), version.to_string(), kind.to_string());
        metas.roots.get(&key).map(|root| PatchMeta {
            arena: metas.arena.clone(),
            root: *root,
            strategic: true,
        })
    }

    /// The view of a custom resource from its CRD version's `openAPIV3Schema`
    /// (`x-kubernetes-list-type`, `x-kubernetes-list-map-keys`, `x-kubernetes-map-type`).
    /// `metadata` always follows ObjectMeta, as upstream's CRD handler arranges.
    pub fn from_schema(openapi_v3_schema: &Value) -> PatchMeta {
        let mut root = match openapi_v3_schema {
            Value::Object(m) => m.clone(),
            _ => serde_json::Map::new(),
        };
        if !root.contains_key("properties") {
            root.insert("x-kubernetes-preserve-unknown-fields".into(), true.into());
        }
        let props = root
            .entry("properties")
            .or_insert_with(|| json!({}))
            .as_object_mut();
        if let Some(props) = props {
            props.insert("metadata".into(), v3_ref(OBJECT_META));
            props.insert("apiVersion".into(), json!({"type": "string"}));
            props.insert("kind".into(), json!({"type": "string"}));
        }
        root.insert("type".into(), "object".into());
        let mut compiler = Compiler::new(&builtin_schemas().definitions);
        let id = compiler.compile(&Value::Object(root));
        PatchMeta {
            arena: Arc::new(compiler.finish()),
            root: id,
            strategic: false,
        }
    }

    /// No schema at all: maps granular, lists atomic (JSON-merge-like).
    pub fn unknown() -> PatchMeta {
        PatchMeta {
            arena: Arc::new(Compiler::new(&serde_json::Map::new()).finish()),
            root: UNTYPED,
            strategic: false,
        }
    }

    /// Whether strategic merge patch applies to this kind.
    pub fn supports_strategic_merge(&self) -> bool {
        self.strategic
    }
}

/// Turns JSON schemas (OpenAPI v3 flavoured, refs into `definitions`) into arena nodes.
struct Compiler<'a> {
    definitions: &'a serde_json::Map<String, Value>,
    nodes: Vec<Node>,
    by_ref: HashMap<String, NodeId>,
    scalar: NodeId,
}

impl<'a> Compiler<'a> {
    fn new(definitions: &'a serde_json::Map<String, Value>) -> Self {
        Compiler {
            definitions,
            nodes: vec![Node::Untyped, Node::Scalar],
            by_ref: HashMap::new(),
            scalar: 1,
        }
    }

    fn finish(self) -> Arena {
        Arena { nodes: self.nodes }
    }

    fn push(&mut self, node: Node) -> NodeId {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    fn compile(&mut self, schema: &Value) -> NodeId {
        let Value::Object(map) = schema else {
            return UNTYPED;
        };
        if let Some(Value::String(r)) = map.get("$ref") {
            let name = r
                .strip_prefix(V3_REF_PREFIX)
                .or_else(|| r.strip_prefix("#/definitions/"))
                .unwrap_or(r);
            if let Some(id) = self.by_ref.get(name) {
                return *id;
            }
            let Some(def) = self.definitions.get(name) else {
                return UNTYPED;
            };
            // Reserve the slot first so recursive definitions terminate.
            let id = self.push(Node::Untyped);
            self.by_ref.insert(name.to_string(), id);
            let node = self.shape(def);
            self.nodes[id] = node;
            return id;
        }
        if let Some(Value::Array(all)) = map.get("allOf") {
            if let Some(first) = all.first() {
                return self.compile(first);
            }
        }
        let node = self.shape(schema);
        match node {
            Node::Untyped => UNTYPED,
            Node::Scalar => self.scalar,
            other => self.push(other),
        }
    }

    fn shape(&mut self, schema: &Value) -> Node {
        let Value::Object(map) = schema else {
            return Node::Untyped;
        };
        if map.contains_key("$ref") || map.contains_key("allOf") {
            let id = self.compile(schema);
            return self.nodes[id].clone();
        }
        let atomic_map = map.get("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic");
        let preserve = map
            .get("x-kubernetes-preserve-unknown-fields")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if let Some(Value::Object(props)) = map.get("properties") {
            let required: Vec<&str> = map
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut fields = HashMap::new();
            for (name, prop) in props {
                let node = self.compile(prop);
                let mut field = field_of(prop, node);
                field.required = required.contains(&name.as_str());
                fields.insert(name.clone(), field);
            }
            let other = match map.get("additionalProperties") {
                Some(ap @ Value::Object(_)) => Some(self.compile(ap)),
                _ if preserve => Some(UNTYPED),
                _ => None,
            };
            return Node::Struct {
                fields,
                other,
                atomic: atomic_map,
            };
        }
        let ty = map.get("type").and_then(Value::as_str);
        match ty {
            Some("array") => {
                let items = map.get("items").map_or(UNTYPED, |i| self.compile(i));
                Node::List {
                    items,
                    kind: list_kind(map),
                }
            }
            Some("object") => match map.get("additionalProperties") {
                Some(ap @ Value::Object(_)) => Node::Map {
                    values: self.compile(ap),
                    atomic: atomic_map,
                },
                _ if atomic_map => Node::Map {
                    values: UNTYPED,
                    atomic: true,
                },
                _ => Node::Untyped,
            },
            Some(_) => Node::Scalar,
            None if map.contains_key("x-kubernetes-int-or-string") => Node::Scalar,
            None => Node::Untyped,
        }
    }
}

fn field_of(prop: &Value, node: NodeId) -> Field {
    let strategies = prop
        .get("x-kubernetes-patch-strategy")
        .and_then(Value::as_str)
        .map(|s| s.split(',').map(|x| x.trim().to_string()).collect())
        .unwrap_or_default();
    let merge_key = prop
        .get("x-kubernetes-patch-merge-key")
        .and_then(Value::as_str)
        .map(str::to_string);
    Field {
        node,
        strategies,
        merge_key,
        required: false,
    }
}

/// Upstream's conversion (kube-openapi schemaconv): `x-kubernetes-list-type` wins; otherwise
/// a `merge` patch strategy makes the list associative (keyed by the merge key, or a set);
/// otherwise atomic.
fn list_kind(map: &serde_json::Map<String, Value>) -> ListKind {
    match map.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => return ListKind::Set,
        Some("map") => {
            let keys: Vec<String> = map
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|k| {
                    k.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            return if keys.is_empty() {
                ListKind::Atomic
            } else {
                ListKind::Map(keys)
            };
        }
        Some(_) => return ListKind::Atomic,
        None => {}
    }
    let merge = map
        .get("x-kubernetes-patch-strategy")
        .and_then(Value::as_str)
        .is_some_and(|s| s.split(',').any(|x| x.trim() == "merge"));
    if !merge {
        return ListKind::Atomic;
    }
    match map
        .get("x-kubernetes-patch-merge-key")
        .and_then(Value::as_str)
    {
        Some(key) => ListKind::Map(vec![key.to_string()]),
        None => ListKind::Set,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field<'a>(meta: &'a PatchMeta, path: &[&str]) -> (Option<&'a Field>, NodeId) {
        let mut id = meta.root;
        let mut f = None;
        for key in path {
            let node = match meta.arena.node(id) {
                Node::List { items, .. } => *items,
                _ => id,
            };
            let (ff, child) = meta.arena.child(node, key);
            f = ff;
            id = child;
        }
        (f, id)
    }

    #[test]
    fn pod_containers_are_merged_by_name() {
        let meta = PatchMeta::for_builtin("", "v1", "Pod").expect("pod");
        let (f, id) = field(&meta, &["spec", "containers"]);
        let f = f.expect("declared");
        assert!(f.has_strategy("merge"));
        assert_eq!(f.merge_key.as_deref(), Some("name"));
        assert_eq!(meta.arena.list_kind(id), ListKind::Map(vec!["name".into()]));
        let (_, ports) = field(&meta, &["spec", "containers", "ports"]);
        assert_eq!(
            meta.arena.list_kind(ports),
            ListKind::Map(vec!["containerPort".into(), "protocol".into()])
        );
        let (_, tolerations) = field(&meta, &["spec", "tolerations"]);
        assert_eq!(meta.arena.list_kind(tolerations), ListKind::Atomic);
        let (_, finalizers) = field(&meta, &["metadata", "finalizers"]);
        assert_eq!(meta.arena.list_kind(finalizers), ListKind::Set);
    }

    #[test]
    fn deployment_template_reaches_pod_spec_and_selector_is_atomic() {
        let meta = PatchMeta::for_builtin("apps", "v1", "Deployment").expect("deployment");
        let (_, env) = field(&meta, &["spec", "template", "spec", "containers", "env"]);
        assert_eq!(
            meta.arena.list_kind(env),
            ListKind::Map(vec!["name".into()])
        );
        let (_, selector) = field(&meta, &["spec", "selector"]);
        assert!(meta.arena.is_atomic_object(selector));
        assert!(PatchMeta::for_builtin("apps", "v1", "Nope").is_none());
    }

    #[test]
    fn crd_schema_markers_and_object_meta() {
        let schema = json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {
                        "items": {
                            "type": "array",
                            "x-kubernetes-list-type": "map",
                            "x-kubernetes-list-map-keys": ["id"],
                            "items": {"type": "object", "properties": {"id": {"type": "string"}}}
                        },
                        "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                        "blob": {"type": "object", "x-kubernetes-map-type": "atomic", "additionalProperties": {"type": "string"}}
                    }
                }
            }
        });
        let meta = PatchMeta::from_schema(&schema);
        assert!(!meta.supports_strategic_merge());
        let (_, items) = field(&meta, &["spec", "items"]);
        assert_eq!(
            meta.arena.list_kind(items),
            ListKind::Map(vec!["id".into()])
        );
        let (_, tags) = field(&meta, &["spec", "tags"]);
        assert_eq!(meta.arena.list_kind(tags), ListKind::Set);
        let (_, blob) = field(&meta, &["spec", "blob"]);
        assert!(meta.arena.is_atomic_object(blob));
        let (_, owners) = field(&meta, &["metadata", "ownerReferences"]);
        assert_eq!(
            meta.arena.list_kind(owners),
            ListKind::Map(vec!["uid".into()])
        );
    }

    #[test]
    fn unknown_is_untyped_everywhere() {
        let meta = PatchMeta::unknown();
        let (_, id) = field(&meta, &["spec", "anything"]);
        assert!(matches!(meta.arena.node(id), Node::Untyped));
    }
}
