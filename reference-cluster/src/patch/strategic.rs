//! Strategic merge patch, following apimachinery's `strategicpatch.StrategicMergeMapPatch`
//! with the server's options (parallel lists merged, unmatched nulls ignored).
//!
//! Directives: `$patch: replace|delete|merge`, `$retainKeys`, `$deleteFromPrimitiveList/<f>`,
//! `$setElementOrder/<f>`. Lists are merged only where the schema's patch strategy says
//! `merge` (by merge key for lists of maps, as a set for primitives); everything else is
//! replaced.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::fieldpath::canonical_json;

use super::meta::{Arena, Field, NodeId};
use super::PatchError;

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_PRIMITIVE_PREFIX: &str = "$deleteFromPrimitiveList/";
const SET_ORDER_PREFIX: &str = "$setElementOrder/";

fn bad(msg: impl Into<String>) -> PatchError {
    PatchError::BadPatch(msg.into())
}

/// Applies `patch` to `original`; both must be JSON objects.
pub(crate) fn apply(
    arena: &Arena,
    root: NodeId,
    original: &Value,
    patch: &Value,
) -> Result<Value, PatchError> {
    let (Value::Object(original), Value::Object(patch)) = (original, patch) else {
        return Err(bad("invalid JSON document"));
    };
    merge_map(arena, root, original.clone(), patch.clone()).map(Value::Object)
}

fn merge_map(
    arena: &Arena,
    node: NodeId,
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
) -> Result<Map<String, Value>, PatchError> {
    if let Some(directive) = patch.shift_remove(DIRECTIVE) {
        return match directive.as_str() {
            Some("replace") => merge_map(arena, node, Map::new(), patch),
            Some("delete") => Ok(Map::new()),
            _ => Err(bad(format!(
                "unknown patch type: {directive} in map: {}",
                Value::Object(patch)
            ))),
        };
    }
    apply_retain_keys(&mut original, &mut patch)?;
    merge_ordered_lists(arena, node, &mut original, &mut patch)?;

    for (key, patch_value) in patch {
        if let Some(field) = key.strip_prefix(DELETE_PRIMITIVE_PREFIX) {
            let Value::Array(to_delete) = patch_value else {
                return Err(bad("invalid patch format of primitive list"));
            };
            if let Some(Value::Array(list)) = original.get_mut(field) {
                list.retain(|v| !to_delete.contains(v));
            }
            continue;
        }
        if patch_value.is_null() {
            original.shift_remove(&key);
            continue;
        }
        let (field, child) = arena.child(node, &key);
        let has_strategy = |s: &str| field.is_some_and(|f| f.has_strategy(s));
        let Some(slot) = original.get_mut(&key) else {
            let value = clean(arena, field, child, patch_value)?;
            original.insert(key, value);
            continue;
        };
        // Taken out and written back in place so the key keeps its position.
        *slot = match (std::mem::take(slot), patch_value) {
            (Value::Object(o), Value::Object(p)) => {
                let base = if has_strategy("replace") {
                    Map::new()
                } else {
                    o
                };
                Value::Object(merge_map(arena, child, base, p)?)
            }
            (Value::Array(o), Value::Array(p)) if has_strategy("merge") => {
                let merge_key = field.and_then(|f| f.merge_key.as_deref());
                Value::Array(merge_list(arena, arena.items(child), merge_key, o, p)?)
            }
            (_, p) => clean(arena, field, child, p)?,
        };
    }
    Ok(original)
}

/// A patch value that lands where nothing of its type was: directives are resolved against
/// an empty original so none of them leaks into the stored object.
fn clean(
    arena: &Arena,
    field: Option<&Field>,
    node: NodeId,
    value: Value,
) -> Result<Value, PatchError> {
    match value {
        Value::Object(p) => Ok(Value::Object(merge_map(arena, node, Map::new(), p)?)),
        Value::Array(items) if field.is_some_and(|f| f.has_strategy("merge")) => {
            let merge_key = field.and_then(|f| f.merge_key.as_deref());
            Ok(Value::Array(merge_list(
                arena,
                arena.items(node),
                merge_key,
                Vec::new(),
                items,
            )?))
        }
        other => Ok(other),
    }
}

fn is_directive_map(v: &Value) -> bool {
    v.as_object().is_some_and(|m| m.contains_key(DIRECTIVE))
}

fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<(), PatchError> {
    let Some(retain) = patch.shift_remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(retain) = retain else {
        return Err(bad("invalid patch format of retainKeys"));
    };
    let mut keys = Vec::with_capacity(retain.len());
    for k in &retain {
        match k.as_str() {
            Some(s) => keys.push(s.to_string()),
            None => return Err(bad("invalid patch format of retainKeys")),
        }
    }
    for (k, v) in patch.iter() {
        if v.is_null() || k.starts_with('$') {
            continue;
        }
        if !keys.contains(k) {
            return Err(PatchError::Invalid(
                "patch content doesn't match retainKeys list".into(),
            ));
        }
    }
    original.retain(|k, _| keys.contains(k));
    Ok(())
}

/// `$setElementOrder/<field>`: merge the field's list and order it as the directive says,
/// placing server-only items relative to their neighbours (upstream `mergePatchIntoOriginal`).
fn merge_ordered_lists(
    arena: &Arena,
    node: NodeId,
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<(), PatchError> {
    let directives: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ORDER_PREFIX))
        .cloned()
        .collect();
    for directive in directives {
        let order = patch.shift_remove(&directive).unwrap_or(Value::Null);
        let Value::Array(order) = order else {
            return Err(bad("invalid patch format of setElementOrder list"));
        };
        let field_name = &directive[SET_ORDER_PREFIX.len()..];
        let (field, child) = arena.child(node, field_name);
        let Some(field) = field.filter(|f| f.has_strategy("merge")) else {
            continue;
        };
        let merge_key = field.merge_key.as_deref();
        let patch_list = match patch.shift_remove(field_name) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(l)) => l,
            Some(_) => return Err(bad("invalid patch format of setElementOrder list")),
        };
        validate_order(&patch_list, &order, merge_key)?;
        let original_list = match original.get(field_name) {
            Some(Value::Array(l)) => l.clone(),
            _ => Vec::new(),
        };
        let merged = if patch_list.is_empty() {
            original_list.clone()
        } else {
            merge_list(
                arena,
                arena.items(child),
                merge_key,
                original_list.clone(),
                patch_list,
            )?
        };
        let order_ids = positions(&order, merge_key);
        let (in_order, server_only): (Vec<Value>, Vec<Value>) =
            merged.into_iter().partition(|item| {
                item_id(item, merge_key).is_some_and(|id| order_ids.contains_key(&id))
            });
        let merged = normalize_order(in_order, server_only, &order, &original_list, merge_key);
        if !merged.is_empty() {
            original.insert(field_name.to_string(), Value::Array(merged));
        }
    }
    Ok(())
}

fn validate_order(patch: &[Value], order: &[Value], key: Option<&str>) -> Result<(), PatchError> {
    if patch.is_empty() || order.is_empty() {
        return Ok(());
    }
    let items: Vec<&Value> = patch.iter().filter(|v| !is_directive_map(v)).collect();
    let (mut p, mut o) = (0, 0);
    while p < items.len() && o < order.len() {
        if same_item(items[p], &order[o], key) {
            p += 1;
        }
        o += 1;
    }
    if p < items.len() {
        return Err(bad(format!(
            "The order in patch list:\n{}\n doesn't match $setElementOrder list:\n{}\n",
            Value::Array(patch.to_vec()),
            Value::Array(order.to_vec())
        )));
    }
    Ok(())
}

fn same_item(a: &Value, b: &Value, key: Option<&str>) -> bool {
    match key {
        Some(k) => match (a.get(k), b.get(k)) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        },
        None => a == b,
    }
}

/// What identifies a list item: its merge key's value, or the whole primitive.
fn item_id(item: &Value, key: Option<&str>) -> Option<String> {
    match key {
        Some(k) => item.get(k).map(canonical_json),
        None => Some(canonical_json(item)),
    }
}

/// Position of each item's identity in `list` (first occurrence wins), so ordering and
/// matching stay linear on long lists.
fn positions(list: &[Value], key: Option<&str>) -> HashMap<String, usize> {
    let mut out = HashMap::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        if let Some(id) = item_id(item, key) {
            out.entry(id).or_insert(i);
        }
    }
    out
}

/// Merges two lists of a `merge` field (upstream `mergeSlice`).
fn merge_list(
    arena: &Arena,
    items_node: NodeId,
    merge_key: Option<&str>,
    original: Vec<Value>,
    patch: Vec<Value>,
) -> Result<Vec<Value>, PatchError> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    let all_maps = element_kind(&original, &patch)?;
    if !all_maps {
        let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
        let mut seen = HashSet::new();
        for v in original.iter().chain(patch.iter()) {
            if seen.insert(canonical_json(v)) {
                merged.push(v.clone());
            }
        }
        let (in_patch, server_only): (Vec<Value>, Vec<Value>) = {
            let in_patch = positions(&patch, None);
            merged
                .into_iter()
                .partition(|item| in_patch.contains_key(&canonical_json(item)))
        };
        return Ok(normalize_order(
            in_patch,
            server_only,
            &patch,
            &original,
            None,
        ));
    }
    let Some(key) = merge_key else {
        return Err(bad("cannot merge lists without merge key"));
    };
    let (mut original, patch) = apply_special_elements(original, patch, key)?;
    let server_order = original.clone();
    let mut at = positions(&original, Some(key));
    for item in patch.iter().cloned() {
        let Value::Object(item) = item else { continue };
        let Some(key_value) = item.get(key) else {
            return Err(bad(format!(
                "map: {} does not contain declared merge key: {key}",
                Value::Object(item)
            )));
        };
        let id = canonical_json(key_value);
        match at.get(&id).copied() {
            Some(i) => {
                let o = match std::mem::take(&mut original[i]) {
                    Value::Object(o) => o,
                    _ => Map::new(),
                };
                original[i] = Value::Object(merge_map(arena, items_node, o, item)?);
            }
            None => {
                at.insert(id, original.len());
                original.push(Value::Object(merge_map(
                    arena,
                    items_node,
                    Map::new(),
                    item,
                )?));
            }
        }
    }
    let patch_ids = positions(&patch, Some(key));
    let (in_patch, server_only): (Vec<Value>, Vec<Value>) = original
        .into_iter()
        .partition(|item| item_id(item, Some(key)).is_some_and(|id| patch_ids.contains_key(&id)));
    Ok(normalize_order(
        in_patch,
        server_only,
        &patch,
        &server_order,
        Some(key),
    ))
}

/// Whether the lists hold maps (`true`) or primitives (`false`); mixed lists are rejected.
fn element_kind(original: &[Value], patch: &[Value]) -> Result<bool, PatchError> {
    let mut kind: Option<bool> = None;
    for v in original.iter().chain(patch.iter()) {
        if v.is_array() {
            return Err(PatchError::Invalid(
                "lists of lists are not supported".into(),
            ));
        }
        let is_map = v.is_object();
        match kind {
            None => kind = Some(is_map),
            Some(k) if k != is_map => {
                return Err(bad(format!(
                    "mismatched types in list: {}",
                    Value::Array(original.iter().chain(patch.iter()).cloned().collect())
                )))
            }
            _ => {}
        }
    }
    Ok(kind.unwrap_or(false))
}

/// Handles `$patch` elements of a list of maps (upstream `mergeSliceWithSpecialElements`):
/// `delete` removes matching originals, `replace` makes the rest of the patch the list.
/// Returns the (possibly reduced) original and the patch without special elements.
fn apply_special_elements(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    key: &str,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut plain = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in patch {
        let Some(directive) = item.get(DIRECTIVE).cloned() else {
            plain.push(item);
            continue;
        };
        match directive.as_str() {
            Some("delete") => {
                let Some(key_value) = item.get(key) else {
                    return Err(bad(format!(
                        "map: {item} does not contain declared merge key: {key}"
                    )));
                };
                original.retain(|o| o.get(key) != Some(key_value));
            }
            Some("replace") => replace = true,
            Some("merge") => {
                return Err(bad("merging lists cannot yet be specified in the patch"));
            }
            _ => {
                return Err(bad(format!(
                    "unknown patch type: {directive} in map: {item}"
                )))
            }
        }
    }
    if replace {
        return Ok((plain, Vec::new()));
    }
    Ok((original, plain))
}

/// Orders `patch_items` by `patch_order` and `server_only` by `server_order`, then
/// interleaves them keeping server-only items next to the neighbours they had
/// (upstream `normalizeElementOrder` + `mergeSortedSlice`). Items new to the server come
/// before server-only items they cannot be compared with, as upstream does.
fn normalize_order(
    mut patch_items: Vec<Value>,
    mut server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    key: Option<&str>,
) -> Vec<Value> {
    let patch_positions = positions(patch_order, key);
    let server_positions = positions(server_order, key);
    let pos = |map: &HashMap<String, usize>, v: &Value| {
        item_id(v, key)
            .and_then(|id| map.get(&id).copied())
            .map_or(-1, |i| i as i64)
    };
    patch_items.sort_by_cached_key(|v| pos(&patch_positions, v));
    server_only.sort_by_cached_key(|v| pos(&server_positions, v));
    let mut out = Vec::with_capacity(patch_items.len() + server_only.len());
    let (mut left, mut right) = (
        server_only.into_iter().peekable(),
        patch_items.into_iter().peekable(),
    );
    loop {
        match (left.peek(), right.peek()) {
            (Some(l), Some(r)) => {
                let (li, ri) = (pos(&server_positions, l), pos(&server_positions, r));
                if li >= 0 && ri >= 0 && li < ri {
                    out.extend(left.next());
                } else {
                    out.extend(right.next());
                }
            }
            (Some(_), None) => out.extend(left.next()),
            (None, Some(_)) => out.extend(right.next()),
            (None, None) => break,
        }
    }
    out
}
