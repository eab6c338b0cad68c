//! Schema-aware walks over JSON values for server-side apply, after structured-merge-diff's
//! `typed` package: the field set of a value, the comparison of two values, merging an
//! applied configuration into a live object, and removing a field.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::fieldpath::{canonical_json, FieldSet, Path, PathElement};
use super::meta::{Arena, ListKind, Node, NodeId};

/// Key fields that upstream fills from their schema default when an item omits them, so
/// `ports: [{containerPort: 80}]` and the defaulted `{containerPort: 80, protocol: TCP}`
/// name the same item.
const KEY_DEFAULTS: &[(&str, &str)] = &[("protocol", "\"TCP\"")];

fn list_kind(arena: &Arena, node: NodeId) -> ListKind {
    arena.list_kind(node)
}

/// The path element naming `item` (at `index`) in a list of kind `kind`.
pub(crate) fn item_element(kind: &ListKind, item: &Value, index: usize) -> PathElement {
    match kind {
        ListKind::Map(keys) => {
            let mut fields: Vec<(String, String)> = keys
                .iter()
                .filter_map(|k| match item.get(k) {
                    Some(v) if !v.is_null() => Some((k.clone(), canonical_json(v))),
                    _ => KEY_DEFAULTS
                        .iter()
                        .find(|(name, _)| name == k)
                        .map(|(_, d)| (k.clone(), d.to_string())),
                })
                .collect();
            if fields.is_empty() {
                return PathElement::Index(index);
            }
            fields.sort();
            PathElement::Key(fields)
        }
        ListKind::Set => PathElement::Value(canonical_json(item)),
        ListKind::Atomic => PathElement::Index(index),
    }
}

fn is_associative(kind: &ListKind) -> bool {
    !matches!(kind, ListKind::Atomic)
}

/// A struct with declared fields: upstream's typed objects always carry such non-pointer
/// structs, so their mere presence is not a field anybody sets.
fn is_struct(arena: &Arena, node: NodeId) -> bool {
    matches!(arena.node(node), Node::Struct { atomic: false, .. })
}

fn insert(out: &mut FieldSet, path: &Path) {
    if !path.is_empty() {
        out.insert(path.clone());
    }
}

/// The set of fields `value` sets (structured-merge-diff `ToFieldSet`).
pub(crate) fn field_set(arena: &Arena, node: NodeId, value: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    walk_field_set(arena, node, value, &mut Vec::new(), &mut out);
    out
}

fn walk_field_set(arena: &Arena, node: NodeId, value: &Value, path: &mut Path, out: &mut FieldSet) {
    match value {
        Value::Array(items) => {
            let kind = list_kind(arena, node);
            if !is_associative(&kind) {
                insert(out, path);
                return;
            }
            let item_node = arena.items(node);
            for (i, item) in items.iter().enumerate() {
                path.push(item_element(&kind, item, i));
                walk_field_set(arena, item_node, item, path, out);
                insert(out, path);
                path.pop();
            }
        }
        Value::Object(map) if !arena.is_atomic_object(node) => {
            for (k, v) in map {
                let (_, child) = arena.child(node, k);
                path.push(PathElement::Field(k.clone()));
                walk_field_set(arena, child, v, path, out);
                let empty = v.is_null() || v.as_object().is_some_and(Map::is_empty);
                if empty || !arena.is_declared(node, k) {
                    insert(out, path);
                }
                path.pop();
            }
        }
        _ => insert(out, path),
    }
}

/// What changed between two versions of an object.
#[derive(Debug, Default)]
pub(crate) struct Comparison {
    pub added: FieldSet,
    pub modified: FieldSet,
    pub removed: FieldSet,
}

/// Compares `old` (`None` for a create) with `new`. `metadata.managedFields` is left out:
/// it is the bookkeeping of fields, never a field anyone owns.
pub(crate) fn compare(arena: &Arena, node: NodeId, old: Option<&Value>, new: &Value) -> Comparison {
    let mut cmp = Comparison::default();
    walk_compare(
        arena,
        node,
        old,
        Some(new),
        Origin::Root,
        &mut Vec::new(),
        &mut cmp,
    );
    cmp
}

/// Where a compared value sits, which decides whether its own appearance is a change.
#[derive(Clone, Copy)]
enum Origin {
    Root,
    /// An item of an associative list: its appearance always is.
    Item,
    /// A field of an object; `required` fields exist (empty) in upstream's zero objects.
    Field {
        required: bool,
    },
}

fn walk_compare(
    arena: &Arena,
    node: NodeId,
    old: Option<&Value>,
    new: Option<&Value>,
    origin: Origin,
    path: &mut Path,
    cmp: &mut Comparison,
) {
    let present = old.or(new);
    let Some(sample) = present else { return };
    // Equal subtrees hold no change; comparing them is far cheaper than walking them (a
    // binding or status write leaves most of the object as it was).
    if let (Some(o), Some(n)) = (old, new) {
        if o == n {
            return;
        }
    }
    let both_same_shape = match (old, new) {
        (Some(o), Some(n)) => std::mem::discriminant(o) == std::mem::discriminant(n),
        _ => true,
    };
    let granular_object = sample.is_object() && !arena.is_atomic_object(node);
    let associative_list = sample.is_array() && is_associative(&list_kind(arena, node));

    if both_same_shape && granular_object {
        let empty = Map::new();
        let o = old.and_then(Value::as_object).unwrap_or(&empty);
        let n = new.and_then(Value::as_object).unwrap_or(&empty);
        let field_origin = |k: &str| Origin::Field {
            required: arena.child(node, k).0.is_some_and(|f| f.required),
        };
        let in_metadata = matches!(path.as_slice(), [PathElement::Field(f)] if f == "metadata");
        for (k, ov) in o {
            if in_metadata && k == "managedFields" {
                continue;
            }
            let (_, child) = arena.child(node, k);
            path.push(PathElement::Field(k.clone()));
            walk_compare(arena, child, Some(ov), n.get(k), field_origin(k), path, cmp);
            path.pop();
        }
        for (k, nv) in n {
            if o.contains_key(k) || (in_metadata && k == "managedFields") {
                continue;
            }
            let (_, child) = arena.child(node, k);
            path.push(PathElement::Field(k.clone()));
            walk_compare(arena, child, None, Some(nv), field_origin(k), path, cmp);
            path.pop();
        }
    } else if both_same_shape && associative_list {
        let kind = list_kind(arena, node);
        let item_node = arena.items(node);
        fn index<'v>(kind: &ListKind, list: Option<&'v Value>) -> Vec<(PathElement, &'v Value)> {
            list.and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, v)| (item_element(kind, v, i), v))
                        .collect()
                })
                .unwrap_or_default()
        }
        let o = index(&kind, old);
        let n = index(&kind, new);
        let n_map: HashMap<&PathElement, &Value> = n.iter().map(|(p, v)| (p, *v)).collect();
        let o_map: HashMap<&PathElement, &Value> = o.iter().map(|(p, v)| (p, *v)).collect();
        for (pe, ov) in &o {
            path.push(pe.clone());
            walk_compare(
                arena,
                item_node,
                Some(*ov),
                n_map.get(pe).copied(),
                Origin::Item,
                path,
                cmp,
            );
            path.pop();
        }
        for (pe, nv) in &n {
            if o_map.contains_key(pe) {
                continue;
            }
            path.push(pe.clone());
            walk_compare(arena, item_node, None, Some(*nv), Origin::Item, path, cmp);
            path.pop();
        }
    } else if let (Some(o), Some(n)) = (old, new) {
        if o != n {
            insert(&mut cmp.modified, path);
        }
    }

    match (old, new) {
        (None, Some(n)) => {
            // Upstream compares against typed Go objects, where non-pointer structs and
            // required (non-omitempty) fields are always present; only their contents change.
            let non_empty = match n {
                Value::Object(m) => !m.is_empty(),
                Value::Array(a) => !a.is_empty(),
                _ => false,
            };
            let always_present = match origin {
                Origin::Item => false,
                Origin::Root => true,
                Origin::Field { required } => {
                    non_empty && (required || (n.is_object() && is_struct(arena, node)))
                }
            };
            let granular = granular_object || associative_list;
            if !(granular && always_present) {
                insert(&mut cmp.added, path);
            }
        }
        (Some(_), None) => insert(&mut cmp.removed, path),
        _ => {}
    }
}

/// Merges an applied configuration into the live object: configured scalars and atomic
/// values win, granular maps merge per key, associative lists merge per item.
pub(crate) fn merge(arena: &Arena, node: NodeId, live: Option<&Value>, config: &Value) -> Value {
    match (live, config) {
        (Some(Value::Object(l)), Value::Object(c)) if !arena.is_atomic_object(node) => {
            let mut out = l.clone();
            for (k, cv) in c {
                let (_, child) = arena.child(node, k);
                let merged = merge(arena, child, l.get(k), cv);
                match out.get_mut(k) {
                    Some(slot) => *slot = merged,
                    None => {
                        out.insert(k.clone(), merged);
                    }
                }
            }
            Value::Object(out)
        }
        (Some(Value::Array(l)), Value::Array(c)) => {
            let kind = list_kind(arena, node);
            if !is_associative(&kind) {
                return config.clone();
            }
            Value::Array(merge_list(arena, arena.items(node), &kind, l, c))
        }
        _ => config.clone(),
    }
}

/// Structured-merge-diff's associative list merge: items keep the live order, except that
/// items present in both follow the configuration's order; new items are placed where the
/// configuration puts them.
fn merge_list(
    arena: &Arena,
    item_node: NodeId,
    kind: &ListKind,
    lhs: &[Value],
    rhs: &[Value],
) -> Vec<Value> {
    let lhs_pes: Vec<PathElement> = lhs
        .iter()
        .enumerate()
        .map(|(i, v)| item_element(kind, v, i))
        .collect();
    let rhs_pes: Vec<PathElement> = rhs
        .iter()
        .enumerate()
        .map(|(i, v)| item_element(kind, v, i))
        .collect();
    let mut observed_lhs: HashMap<&PathElement, &Value> = HashMap::new();
    for (pe, v) in lhs_pes.iter().zip(lhs) {
        observed_lhs.entry(pe).or_insert(v);
    }
    let mut observed_rhs: HashMap<&PathElement, &Value> = HashMap::new();
    for (pe, v) in rhs_pes.iter().zip(rhs) {
        observed_rhs.entry(pe).or_insert(v);
    }
    let mut shared = rhs_pes.iter().filter(|pe| observed_lhs.contains_key(pe));
    let mut next_shared = shared.next();
    let mut merged_rhs: std::collections::HashSet<&PathElement> = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(lhs.len() + rhs.len());
    let (mut li, mut ri) = (0, 0);
    while li < lhs.len() || ri < rhs.len() {
        if li < lhs.len() && ri < rhs.len() {
            let pe = &lhs_pes[li];
            if *pe == rhs_pes[ri] {
                merged_rhs.insert(pe);
                out.push(merge(
                    arena,
                    item_node,
                    observed_lhs.get(pe).copied(),
                    observed_rhs[pe],
                ));
                li += 1;
                ri += 1;
                next_shared = shared.next();
                continue;
            }
            if observed_rhs.contains_key(pe) && next_shared.is_some_and(|n| n != pe) {
                li += 1;
                continue;
            }
        }
        if li < lhs.len() {
            let pe = &lhs_pes[li];
            if !observed_rhs.contains_key(pe) {
                out.push(lhs[li].clone());
                li += 1;
                continue;
            }
            if merged_rhs.contains(pe) {
                li += 1;
                continue;
            }
        }
        if ri < rhs.len() {
            let pe = &rhs_pes[ri];
            if merged_rhs.insert(pe) {
                out.push(merge(
                    arena,
                    item_node,
                    observed_lhs.get(pe).copied(),
                    observed_rhs[pe],
                ));
            }
            ri += 1;
            if next_shared == Some(pe) {
                next_shared = shared.next();
            }
        }
    }
    out
}

/// Removes the value at `path` (if present).
pub(crate) fn remove(arena: &Arena, node: NodeId, value: &mut Value, path: &[PathElement]) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    match (first, value) {
        (PathElement::Field(name), Value::Object(map)) => {
            if rest.is_empty() {
                map.shift_remove(name);
            } else if let Some(child_value) = map.get_mut(name) {
                let (_, child) = arena.child(node, name);
                remove(arena, child, child_value, rest);
            }
        }
        (pe, Value::Array(items)) => {
            let kind = list_kind(arena, node);
            let Some(pos) = items
                .iter()
                .enumerate()
                .position(|(i, item)| item_element(&kind, item, i) == *pe)
            else {
                return;
            };
            if rest.is_empty() {
                items.remove(pos);
            } else {
                remove(arena, arena.items(node), &mut items[pos], rest);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::fieldpath::{display_path, fields};
    use crate::patch::PatchMeta;
    use serde_json::json;

    fn shown(set: &FieldSet) -> Vec<String> {
        set.iter().map(|p| display_path(p)).collect()
    }

    #[test]
    fn field_set_of_a_deployment() {
        let meta = PatchMeta::for_builtin("apps", "v1", "Deployment").unwrap();
        let obj = json!({
            "metadata": {"labels": {"app": "x"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "x"}},
                "template": {"spec": {"containers": [{"name": "c", "image": "i",
                    "ports": [{"containerPort": 80}]}]}}
            }
        });
        let set = field_set(&meta.arena, meta.root, &obj);
        assert_eq!(
            shown(&set),
            vec![
                ".metadata.labels.app",
                ".spec.replicas",
                ".spec.selector",
                ".spec.template.spec.containers[name=\"c\"]",
                ".spec.template.spec.containers[name=\"c\"].image",
                ".spec.template.spec.containers[name=\"c\"].name",
                ".spec.template.spec.containers[name=\"c\"].ports[containerPort=80,protocol=\"TCP\"]",
                ".spec.template.spec.containers[name=\"c\"].ports[containerPort=80,protocol=\"TCP\"].containerPort",
            ]
        );
    }

    #[test]
    fn compare_reports_added_modified_removed() {
        let meta = PatchMeta::for_builtin("", "v1", "Pod").unwrap();
        let old = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}});
        let new = json!({"metadata": {"labels": {"a": "9"}, "finalizers": ["f"]}, "spec": {"containers": [{"name": "c", "image": "y"}]}});
        let cmp = compare(&meta.arena, meta.root, Some(&old), &new);
        assert_eq!(
            shown(&cmp.modified),
            vec![".metadata.labels.a", ".spec.containers[name=\"c\"].image"]
        );
        assert_eq!(
            shown(&cmp.added),
            vec![".metadata.finalizers", ".metadata.finalizers[=\"f\"]"]
        );
        assert_eq!(shown(&cmp.removed), vec![".metadata.labels.b"]);
    }

    #[test]
    fn compare_leaves_out_managed_fields_and_equal_subtrees() {
        let meta = PatchMeta::for_builtin("", "v1", "Pod").unwrap();
        let mf =
            |m: &str| json!([{"manager": m, "operation": "Update", "fieldsV1": {"f:spec": {}}}]);
        let old = json!({"metadata": {"name": "p", "managedFields": mf("a")},
            "spec": {"containers": [{"name": "c", "image": "x"}]}});
        let mut new = old.clone();
        new["metadata"]["managedFields"] = mf("b");
        let cmp = compare(&meta.arena, meta.root, Some(&old), &new);
        assert!(
            cmp.added.is_empty() && cmp.modified.is_empty() && cmp.removed.is_empty(),
            "only managedFields differ: {cmp:?}"
        );
        new["spec"]["nodeName"] = json!("n1");
        let cmp = compare(&meta.arena, meta.root, Some(&old), &new);
        assert_eq!(shown(&cmp.added), vec![".spec.nodeName"]);
        assert!(cmp.modified.is_empty() && cmp.removed.is_empty());
        let created = compare(&meta.arena, meta.root, None, &new);
        assert!(
            !shown(&created.added)
                .iter()
                .any(|p| p.contains("managedFields")),
            "{created:?}"
        );
    }

    #[test]
    fn merge_keeps_live_items_and_follows_config_order() {
        let meta = PatchMeta::for_builtin("", "v1", "Pod").unwrap();
        let live = json!({"spec": {"containers": [
            {"name": "a", "image": "a1"}, {"name": "b", "image": "b1"}, {"name": "c", "image": "c1"}
        ]}});
        let config = json!({"spec": {"containers": [{"name": "c", "image": "c2"}, {"name": "a"}, {"name": "d"}]}});
        let merged = merge(&meta.arena, meta.root, Some(&live), &config);
        let names: Vec<&str> = merged["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, vec!["b", "c", "a", "d"]);
        assert_eq!(merged["spec"]["containers"][1]["image"], "c2");
        assert_eq!(merged["spec"]["containers"][2]["image"], "a1");
    }

    #[test]
    fn remove_by_key_and_field() {
        let meta = PatchMeta::for_builtin("", "v1", "Pod").unwrap();
        let mut v = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        remove(
            &meta.arena,
            meta.root,
            &mut v,
            &fields(&["metadata", "labels", "a"]),
        );
        let mut p = fields(&["spec", "containers"]);
        p.push(PathElement::Key(vec![("name".into(), "\"a\"".into())]));
        remove(&meta.arena, meta.root, &mut v, &p);
        assert_eq!(
            v,
            json!({"metadata": {"labels": {}}, "spec": {"containers": [{"name": "b"}]}})
        );
    }
}
