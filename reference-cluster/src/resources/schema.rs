//! Structural OpenAPI v3 schemas of custom resources: defaulting, pruning of unknown fields
//! and validation, following apiextensions-apiserver (`structuraldefaulting`,
//! `structuralpruning`, the kube-openapi validator and its error conversion).
//!
//! CEL rules (`x-kubernetes-validations`) run after the schema checks, as upstream runs them,
//! through [`crate::cel::rules`]. Not covered: `format` checks.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use regex::Regex;
use serde_json::{Map, Value};

use super::FieldError;

fn props(schema: &Value) -> Option<&Map<String, Value>> {
    schema.get("properties").and_then(Value::as_object)
}

/// `additionalProperties` as a schema (`true` means "anything", treated as preserve-unknown).
fn additional(schema: &Value) -> Option<&Value> {
    match schema.get("additionalProperties") {
        Some(Value::Object(_)) => schema.get("additionalProperties"),
        _ => None,
    }
}

fn flag(schema: &Value, name: &str) -> bool {
    schema.get(name).and_then(Value::as_bool) == Some(true)
}

fn preserves_unknown(schema: &Value) -> bool {
    flag(schema, "x-kubernetes-preserve-unknown-fields")
        || schema.get("additionalProperties") == Some(&Value::Bool(true))
}

fn is_non_nullable_null(v: &Value, schema: &Value) -> bool {
    v.is_null() && !flag(schema, "nullable")
}

/// Applies `default` values: missing (or non-nullable null) properties of existing objects get
/// their schema default, recursively; remaining non-nullable nulls are dropped as upstream
/// prunes them before validation.
pub fn apply_defaults(schema: &Value, obj: &mut Value) {
    match obj {
        Value::Object(map) => {
            if let Some(properties) = props(schema) {
                for (k, prop) in properties {
                    let Some(default) = prop.get("default") else {
                        continue;
                    };
                    let missing = match map.get(k) {
                        None => true,
                        Some(v) => is_non_nullable_null(v, prop),
                    };
                    if missing {
                        map.insert(k.clone(), default.clone());
                    }
                }
            }
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                let sub = props(schema)
                    .and_then(|p| p.get(&k))
                    .or_else(|| additional(schema));
                let Some(sub) = sub else {
                    continue;
                };
                let Some(v) = map.get_mut(&k) else {
                    continue;
                };
                if is_non_nullable_null(v, sub) {
                    match sub.get("default") {
                        Some(d) => *v = d.clone(),
                        None => {
                            map.remove(&k);
                            continue;
                        }
                    }
                }
                if let Some(v) = map.get_mut(&k) {
                    apply_defaults(sub, v);
                }
            }
        }
        Value::Array(items) => {
            let Some(item_schema) = schema.get("items") else {
                return;
            };
            for v in items.iter_mut() {
                if is_non_nullable_null(v, item_schema) {
                    if let Some(d) = item_schema.get("default") {
                        *v = d.clone();
                    }
                }
                apply_defaults(item_schema, v);
            }
        }
        _ => {}
    }
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// Removes fields the schema does not know (unless `x-kubernetes-preserve-unknown-fields`) and
/// returns their paths (`spec.foo`, `spec.items[0].bar`) so the server can warn about or reject
/// them according to `fieldValidation`. At the root, `apiVersion`, `kind` and `metadata` are
/// always kept, as are those of `x-kubernetes-embedded-resource` objects.
pub fn prune(schema: &Value, obj: &mut Value) -> Vec<String> {
    let mut removed = Vec::new();
    prune_at(Some(schema), obj, "", true, &mut removed);
    removed
}

fn prune_at(
    schema: Option<&Value>,
    obj: &mut Value,
    path: &str,
    is_root: bool,
    removed: &mut Vec<String>,
) {
    let preserve = schema.is_some_and(preserves_unknown);
    match obj {
        Value::Object(map) => {
            let embedded =
                is_root || schema.is_some_and(|s| flag(s, "x-kubernetes-embedded-resource"));
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                if embedded {
                    let keep = match k.as_str() {
                        "apiVersion" | "kind" => map.get(&k).is_some_and(Value::is_string),
                        "metadata" => true,
                        _ => false,
                    };
                    if keep {
                        continue;
                    }
                }
                let sub =
                    schema.and_then(|s| props(s).and_then(|p| p.get(&k)).or_else(|| additional(s)));
                let child_path = join(path, &k);
                match sub {
                    Some(sub) => {
                        if let Some(v) = map.get_mut(&k) {
                            prune_at(Some(sub), v, &child_path, false, removed);
                        }
                    }
                    None if preserve => {}
                    None => {
                        removed.push(child_path);
                        map.remove(&k);
                    }
                }
            }
        }
        Value::Array(items) => {
            let item_schema = schema.and_then(|s| s.get("items"));
            if preserve && item_schema.is_none() {
                return;
            }
            for (i, v) in items.iter_mut().enumerate() {
                prune_at(item_schema, v, &format!("{path}[{i}]"), false, removed);
            }
        }
        _ => {}
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) => {
            if n.is_i64() || n.is_u64() {
                "integer"
            } else {
                "number"
            }
        }
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn is_integer(v: &Value) -> bool {
    match v {
        Value::Number(n) => {
            n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => false,
    }
}

fn type_matches(expected: &str, v: &Value) -> bool {
    match expected {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "integer" => is_integer(v),
        "number" => v.is_number(),
        _ => true,
    }
}

fn compiled(pattern: &str) -> Option<Regex> {
    static CACHE: OnceLock<Mutex<HashMap<String, Option<Regex>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let mut guard = cache.lock().unwrap_or_else(|e| e.into_inner());
    if guard.len() > 4096 {
        guard.clear();
    }
    guard
        .entry(pattern.to_string())
        .or_insert_with(|| Regex::new(pattern).ok())
        .clone()
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

/// Formats a number the way Go's `%v` prints a float64 bound (`10`, `2.5`).
fn fmt_num(v: &Value) -> String {
    match v.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
        Some(f) => f.to_string(),
        None => v.to_string(),
    }
}

fn invalid_detail(path: &str, value: &Value, detail: String) -> FieldError {
    FieldError::invalid(path, value, &detail)
}

/// Validates a new `obj` against the schema; the errors carry upstream's paths and messages.
pub fn validate(schema: &Value, obj: &Value) -> Vec<FieldError> {
    validate_update(schema, obj, None)
}

/// Validates `obj` replacing `old` (`None` on create): the schema, then the CEL rules, whose
/// transition rules compare with the old object.
pub fn validate_update(schema: &Value, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    validate_at(schema, obj, "", true, &mut errs);
    if let Some(old) = old {
        errs.retain(|e| !ratchets(e, obj, old));
    }
    if crate::cel::rules::has_rules(schema) {
        if errs.iter().any(blocks_rules) {
            errs.push(FieldError::invalid(
                "<nil>",
                &Value::String("null".into()),
                "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation",
            ));
        } else {
            errs.extend(crate::cel::rules::validate(schema, obj, old));
        }
    }
    errs
}

/// Validation ratcheting (on by default since 1.30): an update may keep a value that a
/// tightened schema no longer accepts, as long as it leaves that value unchanged. Only values
/// reached through object fields are compared; inside lists upstream correlates elements by
/// their keys, which we do not, so errors there always stand (stricter, never looser). A
/// missing required value is not a kept value and is never ratcheted.
fn ratchets(e: &FieldError, obj: &Value, old: &Value) -> bool {
    if e.reason == "FieldValueRequired" || e.field.is_empty() || e.field.contains('[') {
        return false;
    }
    let path = e.field.trim_start_matches('.');
    match (value_at(obj, path), value_at(old, path)) {
        (Some(new), Some(prev)) => new == prev,
        _ => false,
    }
}

fn value_at<'a>(v: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.split('.').try_fold(v, |cur, key| cur.get(key))
}

/// Upstream's `hasBlockingErr`: rules are not run over values of the wrong shape.
fn blocks_rules(e: &FieldError) -> bool {
    matches!(
        e.reason.as_str(),
        "FieldValueNotSupported"
            | "FieldValueRequired"
            | "FieldValueTooLong"
            | "FieldValueTooMany"
            | "FieldValueTypeInvalid"
    )
}

/// A value of the wrong JSON type: shown as "Invalid value" but typed apart, as upstream's
/// `field.TypeInvalid`.
fn type_invalid(path: &str, v: &Value, expected: &str) -> FieldError {
    let mut e = invalid_detail(
        path,
        &Value::String(type_name(v).into()),
        format!(
            "{path} in body must be of type {expected}: \"{}\"",
            type_name(v)
        ),
    );
    e.reason = "FieldValueTypeInvalid".into();
    e
}

fn validate_at(schema: &Value, v: &Value, path: &str, is_root: bool, errs: &mut Vec<FieldError>) {
    let shown = if path.is_empty() { "." } else { path };
    if v.is_null() {
        if flag(schema, "nullable") || schema.get("type").is_none() {
            return;
        }
        let expected = schema
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("object");
        errs.push(type_invalid(shown, v, expected));
        return;
    }
    if flag(schema, "x-kubernetes-int-or-string") {
        if !(is_integer(v) || v.is_string()) {
            errs.push(type_invalid(shown, v, "integer or string"));
            return;
        }
    } else if let Some(expected) = schema.get("type").and_then(Value::as_str) {
        if !type_matches(expected, v) {
            errs.push(type_invalid(shown, v, expected));
            return;
        }
    }

    if let Some(options) = schema.get("enum").and_then(Value::as_array) {
        if !options.iter().any(|o| o == v) {
            let supported: Vec<String> = options
                .iter()
                .map(|o| match o {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            let refs: Vec<&str> = supported.iter().map(String::as_str).collect();
            errs.push(FieldError::not_supported(shown, v, &refs));
        }
    }

    match v {
        Value::Number(_) => validate_number(schema, v, shown, errs),
        Value::String(s) => validate_string(schema, s, v, shown, errs),
        Value::Array(items) => {
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64) {
                if items.len() as u64 > max {
                    errs.push(FieldError::too_many(shown, items.len(), max as usize));
                }
            }
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64) {
                if (items.len() as u64) < min {
                    errs.push(invalid_detail(
                        shown,
                        &Value::from(items.len()),
                        format!("{shown} in body should have at least {min} items"),
                    ));
                }
            }
            validate_list_type(schema, items, path, errs);
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    validate_at(item_schema, item, &format!("{path}[{i}]"), false, errs);
                }
            }
        }
        Value::Object(map) => {
            if let Some(max) = schema.get("maxProperties").and_then(Value::as_u64) {
                if map.len() as u64 > max {
                    errs.push(FieldError::too_many(shown, map.len(), max as usize));
                }
            }
            if let Some(min) = schema.get("minProperties").and_then(Value::as_u64) {
                if (map.len() as u64) < min {
                    errs.push(invalid_detail(
                        shown,
                        &Value::from(map.len()),
                        format!("{shown} in body should have at least {min} properties"),
                    ));
                }
            }
            for req in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(name) = req.as_str() {
                    if !map.contains_key(name) {
                        errs.push(FieldError::required(join(path, name)));
                    }
                }
            }
            if flag(schema, "x-kubernetes-embedded-resource") && !is_root {
                for f in ["apiVersion", "kind"] {
                    if map.get(f).and_then(Value::as_str).is_none_or(str::is_empty) {
                        errs.push(FieldError::required_detail(
                            join(path, f),
                            "must not be empty",
                        ));
                    }
                }
            }
            for (k, child) in map {
                if is_root && (k == "metadata" || k == "apiVersion" || k == "kind") {
                    continue;
                }
                let sub = props(schema)
                    .and_then(|p| p.get(k))
                    .or_else(|| additional(schema));
                if let Some(sub) = sub {
                    validate_at(sub, child, &join(path, k), false, errs);
                }
            }
        }
        _ => {}
    }

    for combinator in ["allOf", "anyOf", "oneOf"] {
        let Some(alternatives) = schema.get(combinator).and_then(Value::as_array) else {
            continue;
        };
        let results: Vec<Vec<FieldError>> = alternatives
            .iter()
            .map(|alt| {
                let mut e = Vec::new();
                validate_at(alt, v, path, is_root, &mut e);
                e
            })
            .collect();
        let passing = results.iter().filter(|r| r.is_empty()).count();
        match combinator {
            "allOf" => errs.extend(results.into_iter().flatten()),
            "anyOf" if passing == 0 => errs.push(invalid_detail(
                shown,
                v,
                format!("{shown} in body must validate at least one schema (anyOf)"),
            )),
            "oneOf" if passing != 1 => errs.push(invalid_detail(
                shown,
                v,
                format!("{shown} in body must validate one and only one schema (oneOf)"),
            )),
            _ => {}
        }
    }
    if let Some(not) = schema.get("not") {
        let mut e = Vec::new();
        validate_at(not, v, path, is_root, &mut e);
        if e.is_empty() {
            errs.push(invalid_detail(
                shown,
                v,
                format!("{shown} in body must not validate the schema (not)"),
            ));
        }
    }
}

fn validate_number(schema: &Value, v: &Value, shown: &str, errs: &mut Vec<FieldError>) {
    let Some(x) = num(v) else {
        return;
    };
    if let Some(max) = schema.get("maximum") {
        if let Some(m) = num(max) {
            let exclusive = flag(schema, "exclusiveMaximum");
            if (exclusive && x >= m) || (!exclusive && x > m) {
                let rel = if exclusive {
                    "less than"
                } else {
                    "less than or equal to"
                };
                errs.push(invalid_detail(
                    shown,
                    v,
                    format!("{shown} in body should be {rel} {}", fmt_num(max)),
                ));
            }
        }
    }
    if let Some(min) = schema.get("minimum") {
        if let Some(m) = num(min) {
            let exclusive = flag(schema, "exclusiveMinimum");
            if (exclusive && x <= m) || (!exclusive && x < m) {
                let rel = if exclusive {
                    "greater than"
                } else {
                    "greater than or equal to"
                };
                errs.push(invalid_detail(
                    shown,
                    v,
                    format!("{shown} in body should be {rel} {}", fmt_num(min)),
                ));
            }
        }
    }
    if let Some(m) = schema.get("multipleOf").and_then(num).filter(|m| *m > 0.0) {
        let q = x / m;
        if (q - q.round()).abs() > 1e-9 {
            errs.push(invalid_detail(
                shown,
                v,
                format!(
                    "{shown} in body should be a multiple of {}",
                    fmt_num(&schema["multipleOf"])
                ),
            ));
        }
    }
}

fn validate_string(schema: &Value, s: &str, v: &Value, shown: &str, errs: &mut Vec<FieldError>) {
    let len = s.chars().count() as u64;
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
        if len > max {
            errs.push(FieldError::too_long(shown, max as usize));
        }
    }
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64) {
        if len < min {
            errs.push(invalid_detail(
                shown,
                v,
                format!("{shown} in body should be at least {min} chars long"),
            ));
        }
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
        if let Some(re) = compiled(pattern) {
            if !re.is_match(s) {
                errs.push(invalid_detail(
                    shown,
                    v,
                    format!("{shown} in body should match '{pattern}'"),
                ));
            }
        }
    }
}

/// `x-kubernetes-list-type: set` items and `map` keys must be unique.
fn validate_list_type(schema: &Value, items: &[Value], path: &str, errs: &mut Vec<FieldError>) {
    match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => {
            for (i, item) in items.iter().enumerate() {
                if items[..i].contains(item) {
                    errs.push(FieldError::duplicate(format!("{path}[{i}]"), item));
                }
            }
        }
        Some("map") => {
            let keys: Vec<&str> = schema
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let key_of = |item: &Value| -> Vec<Value> {
                keys.iter()
                    .map(|k| item.get(*k).cloned().unwrap_or(Value::Null))
                    .collect()
            };
            for (i, item) in items.iter().enumerate() {
                let k = key_of(item);
                if items[..i].iter().any(|prev| key_of(prev) == k) {
                    let shown: Map<String, Value> = keys
                        .iter()
                        .map(|kk| {
                            (
                                kk.to_string(),
                                item.get(*kk).cloned().unwrap_or(Value::Null),
                            )
                        })
                        .collect();
                    errs.push(FieldError::duplicate(
                        format!("{path}[{i}]"),
                        &Value::Object(shown),
                    ));
                }
            }
        }
        _ => {}
    }
}

/// Structural-schema checks of CRD validation (`spec.versions[*].schema.openAPIV3Schema`):
/// every specified field has a type, the root is an object, metadata restricts only name and
/// generateName. Returns errors at `base` (the schema's field path).
pub fn structural_errors(schema: &Value, base: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match schema.get("type").and_then(Value::as_str) {
        None => errs.push(FieldError::required_detail(
            child_path(base, "type"),
            "must not be empty at the root",
        )),
        Some("object") => {}
        Some(other) => errs.push(FieldError::invalid(
            child_path(base, "type"),
            &Value::String(other.into()),
            "must be object at the root",
        )),
    }
    if let Some(meta) = props(schema).and_then(|p| p.get("metadata")) {
        let allowed_keys = ["type", "properties"];
        let extra_props = props(meta)
            .map(|p| p.keys().any(|k| k != "name" && k != "generateName"))
            .unwrap_or(false);
        let extra_keys = meta
            .as_object()
            .map(|m| m.keys().any(|k| !allowed_keys.contains(&k.as_str())))
            .unwrap_or(false);
        if extra_props || extra_keys {
            errs.push(FieldError::forbidden(
                format!("{base}.properties[metadata]"),
                "must not specify anything other than name and generateName, but metadata is implicitly specified",
            ));
        }
    }
    check_types(schema, base, true, &mut errs);
    errs
}

fn child_path(base: &str, k: &str) -> String {
    format!("{base}.{k}")
}

fn check_types(schema: &Value, path: &str, is_root: bool, errs: &mut Vec<FieldError>) {
    let typed = schema
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| !t.is_empty());
    let exempt = flag(schema, "x-kubernetes-int-or-string")
        || flag(schema, "x-kubernetes-preserve-unknown-fields");
    if !is_root && !typed && !exempt {
        errs.push(FieldError::required_detail(
            child_path(path, "type"),
            "must not be empty for specified object fields",
        ));
    }
    if let Some(p) = props(schema) {
        for (k, sub) in p {
            check_types(sub, &format!("{path}.properties[{k}]"), false, errs);
        }
    }
    if let Some(items) = schema.get("items") {
        if items.is_object() {
            check_types(items, &child_path(path, "items"), false, errs);
        }
    }
    if let Some(ap) = additional(schema) {
        check_types(ap, &child_path(path, "additionalProperties"), false, errs);
    }
    if schema.get("type").and_then(Value::as_str) == Some("array") && schema.get("items").is_none()
    {
        errs.push(FieldError::required_detail(
            child_path(path, "items"),
            "must be specified",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object", "required": ["size"], "properties": {
                "size": {"type": "integer", "minimum": 1, "maximum": 10},
                "color": {"type": "string", "enum": ["red", "green"], "default": "red"},
                "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 5, "minLength": 2},
                "tags": {"type": "array", "maxItems": 2, "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                "ports": {"type": "array", "items": {"type": "object", "properties": {
                    "name": {"type": "string"}, "port": {"type": "integer", "default": 80}}},
                    "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "amount": {"x-kubernetes-int-or-string": true},
                "maybe": {"type": "string", "nullable": true}
            }},
            "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}
        }})
    }

    fn msgs(v: &Value) -> Vec<String> {
        validate(&schema(), v)
            .into_iter()
            .map(|e| e.message)
            .collect()
    }

    #[test]
    fn unchanged_invalid_values_ratchet_on_update() {
        let old = json!({"spec": {"size": 1, "name": "toolong", "tags": ["a", "b", "c"]}});
        let texts = |errs: Vec<FieldError>| errs.into_iter().map(|e| e.field).collect::<Vec<_>>();
        let created = texts(validate_update(&schema(), &old, None));
        assert!(created.contains(&"spec.name".to_string()), "{created:?}");
        let mut other_change = old.clone();
        other_change["spec"]["size"] = json!(2);
        let kept = texts(validate_update(&schema(), &other_change, Some(&old)));
        assert!(!kept.contains(&"spec.name".to_string()), "{kept:?}");
        let mut still_bad = old.clone();
        still_bad["spec"]["name"] = json!("toolonger");
        let changed = texts(validate_update(&schema(), &still_bad, Some(&old)));
        assert!(changed.contains(&"spec.name".to_string()), "{changed:?}");
        let no_size = json!({"spec": {"name": "ab"}});
        let required = texts(validate_update(&schema(), &no_size, Some(&no_size)));
        assert_eq!(
            required,
            ["spec.size"],
            "a missing required value never ratchets"
        );
    }

    #[test]
    fn defaults_fill_missing_and_nested() {
        let mut obj =
            json!({"spec": {"size": 1, "ports": [{"name": "http"}, {"name": "x", "port": 81}]}});
        apply_defaults(&schema(), &mut obj);
        assert_eq!(obj["spec"]["color"], "red");
        assert_eq!(obj["spec"]["ports"][0]["port"], 80);
        assert_eq!(obj["spec"]["ports"][1]["port"], 81);
        let mut no_spec = json!({"metadata": {"name": "a"}});
        apply_defaults(&schema(), &mut no_spec);
        assert!(
            no_spec.get("spec").is_none(),
            "defaults only apply inside existing objects"
        );
        let mut nulls = json!({"spec": {"size": 1, "color": null, "name": null, "maybe": null}});
        apply_defaults(&schema(), &mut nulls);
        assert_eq!(nulls["spec"]["color"], "red");
        assert!(nulls["spec"].get("name").is_none());
        assert!(nulls["spec"]["maybe"].is_null());
    }

    #[test]
    fn pruning_reports_removed_paths() {
        let mut obj = json!({"apiVersion": "x/v1", "kind": "W", "metadata": {"name": "a", "anything": 1},
            "spec": {"size": 1, "bogus": true, "extra": {"free": {"form": 1}},
                     "ports": [{"name": "a", "junk": 1}], "labels": {"k": "v"}},
            "top": 1});
        let removed = prune(&schema(), &mut obj);
        assert_eq!(removed, ["spec.bogus", "spec.ports[0].junk", "top"]);
        assert_eq!(obj["spec"]["extra"]["free"]["form"], 1);
        assert_eq!(obj["metadata"]["anything"], 1);
        assert_eq!(obj["spec"]["labels"]["k"], "v");
    }

    #[test]
    fn type_and_bound_messages() {
        assert_eq!(
            msgs(&json!({"spec": {"size": "big"}})),
            ["spec.size: Invalid value: \"string\": spec.size in body must be of type integer: \"string\""]
        );
        assert_eq!(
            msgs(&json!({"spec": {"size": 20}})),
            ["spec.size: Invalid value: 20: spec.size in body should be less than or equal to 10"]
        );
        assert_eq!(
            msgs(&json!({"spec": {"size": 0}})),
            ["spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1"]
        );
        assert_eq!(msgs(&json!({"spec": {}})), ["spec.size: Required value"]);
    }

    #[test]
    fn string_enum_and_list_messages() {
        let m = msgs(
            &json!({"spec": {"size": 1, "color": "blue", "name": "TOOLONGNAME", "tags": ["a", "a", "b"]}}),
        );
        assert!(m.contains(
            &"spec.color: Unsupported value: \"blue\": supported values: \"red\", \"green\""
                .to_string()
        ));
        assert!(m.contains(&"spec.name: Too long: may not be more than 5 bytes".to_string()));
        assert!(m.contains(
            &"spec.name: Invalid value: \"TOOLONGNAME\": spec.name in body should match '^[a-z]+$'"
                .to_string()
        ));
        assert!(m.contains(&"spec.tags: Too many: 3: must have at most 2 items".to_string()));
        assert!(m.contains(&"spec.tags[1]: Duplicate value: \"a\"".to_string()));
        assert_eq!(
            msgs(&json!({"spec": {"size": 1, "name": "a"}})),
            ["spec.name: Invalid value: \"a\": spec.name in body should be at least 2 chars long"]
        );
    }

    #[test]
    fn int_or_string_and_nullable() {
        assert!(msgs(&json!({"spec": {"size": 1, "amount": "50%", "maybe": null}})).is_empty());
        assert!(msgs(&json!({"spec": {"size": 1, "amount": 5}})).is_empty());
        assert_eq!(
            msgs(&json!({"spec": {"size": 1, "amount": true}})),
            ["spec.amount: Invalid value: \"boolean\": spec.amount in body must be of type integer or string: \"boolean\""]
        );
        assert_eq!(
            msgs(&json!({"spec": {"size": 1, "name": null}})),
            ["spec.name: Invalid value: \"null\": spec.name in body must be of type string: \"null\""]
        );
    }

    #[test]
    fn odd_schemas_and_objects_never_panic() {
        let schemas = [
            json!(null),
            json!({"type": 5, "properties": [], "items": "x", "pattern": "(", "enum": "x",
                   "required": "spec", "maxLength": -1, "allOf": {}, "additionalProperties": 3}),
            json!({"type": "object", "properties": {"a": {"type": "string", "pattern": "([", "default": {"x": 1}}},
                   "x-kubernetes-list-type": "map", "anyOf": [null, 1], "not": "x"}),
            json!({"type": "array", "items": {"type": "object"}, "x-kubernetes-list-type": "map",
                   "x-kubernetes-list-map-keys": "name"}),
        ];
        let objects = [
            json!(null),
            json!(1),
            json!([{"a": null}, 2]),
            json!({"a": [], "b": {"c": null}}),
        ];
        for sch in &schemas {
            for obj in &objects {
                let mut o = obj.clone();
                apply_defaults(sch, &mut o);
                let _ = prune(sch, &mut o);
                let _ = validate(sch, &o);
                let _ = structural_errors(sch, "s");
            }
        }
    }

    fn ruled() -> Value {
        json!({"type": "object", "properties": {"spec": {"type": "object",
            "properties": {"replicas": {"type": "integer", "maximum": 100}, "maxReplicas": {"type": "integer"},
                "mode": {"type": "string", "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "immutable"}]}},
            "x-kubernetes-validations": [{"rule": "self.replicas <= self.maxReplicas",
                "message": "replicas must not exceed maxReplicas"}]}}})
    }

    #[test]
    fn cel_rules_run_after_the_schema() {
        let m: Vec<String> = validate(
            &ruled(),
            &json!({"spec": {"replicas": 5, "maxReplicas": 3}}),
        )
        .into_iter()
        .map(|e| e.message)
        .collect();
        assert_eq!(
            m,
            ["spec: Invalid value: \"object\": replicas must not exceed maxReplicas"]
        );
        // A bound violation does not keep rules from running.
        let m: Vec<String> = validate(
            &ruled(),
            &json!({"spec": {"replicas": 101, "maxReplicas": 3}}),
        )
        .into_iter()
        .map(|e| e.message)
        .collect();
        assert_eq!(m.len(), 2, "{m:?}");
    }

    #[test]
    fn wrong_types_block_cel_rules() {
        let errs = validate(
            &ruled(),
            &json!({"spec": {"replicas": "five", "maxReplicas": 3}}),
        );
        assert_eq!(errs[0].reason, "FieldValueTypeInvalid");
        let m: Vec<&str> = errs.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            m,
            [
                "spec.replicas: Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\"",
                "<nil>: Invalid value: \"null\": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation"
            ]
        );
    }

    #[test]
    fn updates_run_transition_rules() {
        let old = json!({"spec": {"replicas": 1, "maxReplicas": 3, "mode": "a"}});
        let new = json!({"spec": {"replicas": 1, "maxReplicas": 3, "mode": "b"}});
        assert!(validate(&ruled(), &new).is_empty());
        let m: Vec<String> = validate_update(&ruled(), &new, Some(&old))
            .into_iter()
            .map(|e| e.message)
            .collect();
        assert_eq!(m, ["spec.mode: Invalid value: \"string\": immutable"]);
    }

    #[test]
    fn structural_checks() {
        assert!(structural_errors(&schema(), "spec.versions[0].schema.openAPIV3Schema").is_empty());
        let bad = json!({"type": "object", "properties": {"spec": {"properties": {"x": {"type": "string"}}},
            "metadata": {"type": "object", "properties": {"labels": {"type": "object"}}}}});
        let m: Vec<String> = structural_errors(&bad, "s")
            .into_iter()
            .map(|e| e.message)
            .collect();
        assert!(m.contains(&"s.properties[spec].type: Required value: must not be empty for specified object fields".to_string()));
        assert!(m.iter().any(|x| x.starts_with("s.properties[metadata]: Forbidden: must not specify anything other than name and generateName")));
        let m: Vec<String> = structural_errors(&json!({"type": "string"}), "s")
            .into_iter()
            .map(|e| e.message)
            .collect();
        assert_eq!(
            m,
            ["s.type: Invalid value: \"string\": must be object at the root"]
        );
    }
}
