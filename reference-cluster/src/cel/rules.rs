//! CRD validation rules (`x-kubernetes-validations`): the checks CRD validation makes of each
//! rule, and their evaluation against custom objects, following apiextensions-apiserver's
//! `schema/cel` validator: transition rules only run on update where an old value correlates,
//! `messageExpression`/`message`/`reason`/`fieldPath` shape the error, and an unchanged value
//! does not fail rules that ignore `oldSelf` (ratcheting, where upstream only warns).

use std::sync::Arc;

use cel::objects::OptionalValue;
use cel::Value as Cel;
use serde_json::Value;

use super::program::{self, bind, error_text, is_overload_error};
use super::types::{schema_ty, Ty};
use super::value::{additional, deep_eq, from_schema, is_embedded, properties, schema_type};
use crate::resources::FieldError;

const RULES: &str = "x-kubernetes-validations";
const REASONS: &[&str] = &[
    "FieldValueDuplicate",
    "FieldValueForbidden",
    "FieldValueInvalid",
    "FieldValueRequired",
];

fn rules_of(schema: &Value) -> &[Value] {
    schema
        .get(RULES)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn text<'a>(rule: &'a Value, key: &str) -> &'a str {
    rule.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// Whether any node of the schema carries rules, so objects of schemas without any are not
/// walked.
pub fn has_rules(schema: &Value) -> bool {
    if !rules_of(schema).is_empty() {
        return true;
    }
    properties(schema).is_some_and(|p| p.values().any(has_rules))
        || schema.get("items").is_some_and(has_rules)
        || additional(schema).is_some_and(has_rules)
        || schema
            .get("allOf")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(has_rules))
}

/// `field.Path` rendering: the root is `<nil>`.
fn shown(path: &str) -> &str {
    if path.is_empty() {
        "<nil>"
    } else {
        path
    }
}

fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn key(path: &str, k: &str) -> String {
    format!("{path}[{k}]")
}

/// Upstream's `ValidFieldPath`: `fieldPath` (`.spec.x`, `['a.b']`) resolved against the
/// schema of the rule's node, rendered as the field path errors are reported at.
pub fn valid_field_path(field_path: &str, schema: &Value) -> Result<String, String> {
    let tokens = tokenize(field_path);
    let mut out = String::new();
    let mut node = schema;
    let mut it = tokens.into_iter();
    while let Some(tok) = it.next() {
        let name = match tok.as_str() {
            "[" => {
                let quoted = it.next().ok_or("unexpected end of JSON path")?;
                if quoted.len() < 2 || !quoted.starts_with('\'') || !quoted.ends_with('\'') {
                    return Err(format!("expected single quoted string but got {quoted}"));
                }
                let name = unescape(&quoted[1..quoted.len() - 1])
                    .map_err(|e| format!("invalid string literal: {e}"))?;
                match it.next().as_deref() {
                    Some("]") => {}
                    Some(other) => return Err(format!("expected ] but got {other}")),
                    None => return Err("unexpected end of JSON path".into()),
                }
                name
            }
            "." => it.next().ok_or("unexpected end of JSON path")?,
            other => return Err(format!("expected [ or . but got: {other}")),
        };
        if let Some(props) = properties(node) {
            out = child(&out, &name);
            node = props.get(&name).ok_or("does not refer to a valid field")?;
        } else if let Some(values) = additional(node) {
            out = key(&out, &name);
            node = values;
        } else {
            return Err("does not refer to a valid field".into());
        }
    }
    Ok(out)
}

/// Splits on `.`, `[` and `]`, keeping single-quoted strings whole.
fn tokenize(path: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut in_quote = false;
    let mut prev = '\0';
    for c in path.chars() {
        if in_quote {
            current.push(c);
            if c == '\'' && prev != '\\' {
                in_quote = false;
                tokens.push(std::mem::take(&mut current));
            }
        } else if matches!(c, '.' | '[' | ']') {
            if !current.is_empty() {
                tokens.push(std::mem::take(&mut current));
            }
            tokens.push(c.to_string());
        } else {
            if c == '\'' && current.is_empty() {
                in_quote = true;
            }
            current.push(c);
        }
        prev = c;
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

fn unescape(s: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next() {
            Some('a') => '\x07',
            Some('b') => '\x08',
            Some('f') => '\x0c',
            Some('n') => '\n',
            Some('r') => '\r',
            Some('t') => '\t',
            Some('v') => '\x0b',
            Some('\'') => '\'',
            Some('\\') => '\\',
            Some(other) => return Err(format!("invalid escape char \\{other}")),
            None => return Err("invalid escape char \\".into()),
        });
    }
    Ok(out)
}

fn has_newlines(s: &str) -> bool {
    s.contains('\n') || s.contains('\r')
}

/// A rule as Go's `%#v` prints `apiextensions.ValidationRule`, the value upstream echoes in
/// rule errors. Pointer fields print an address upstream; a fixed one stands in for it.
fn go_rule(rule: &Value) -> String {
    let reason = match rule.get("reason").and_then(Value::as_str) {
        Some(_) => "(*apiextensions.FieldValueErrorReason)(0xc000000000)",
        None => "(*apiextensions.FieldValueErrorReason)(nil)",
    };
    let optional = match rule.get("optionalOldSelf").and_then(Value::as_bool) {
        Some(_) => "(*bool)(0xc000000000)",
        None => "(*bool)(nil)",
    };
    format!(
        "apiextensions.ValidationRule{{Rule:{:?}, Message:{:?}, MessageExpression:{:?}, Reason:{reason}, FieldPath:{:?}, OptionalOldSelf:{optional}}}",
        text(rule, "rule"),
        text(rule, "message"),
        text(rule, "messageExpression"),
        text(rule, "fieldPath"),
    )
}

/// An "Invalid value" error quoting a string as Go's `%q` does.
fn invalid_str(field: String, value: &str, detail: &str) -> FieldError {
    crate::resources::validation::invalid_raw(field, &format!("{value:?}"), detail)
}

fn internal(field: String, detail: &str) -> FieldError {
    FieldError {
        reason: "InternalError".into(),
        message: format!("{field}: Internal error: {detail}"),
        field,
    }
}

/// The checks CRD validation makes of every rule under `schema` (rendered at `base`, e.g.
/// `spec.validation.openAPIV3Schema`), compilation included.
pub fn crd_errors(schema: &Value, base: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    crd_node(schema, schema, base, true, None, &mut errs);
    errs
}

/// `rules` carries the rules, `node` the type they see (they differ under `allOf`);
/// `uncorrelatable` is the path of the nearest list or atomic map under which `oldSelf` has
/// no meaning.
fn crd_node(
    rules: &Value,
    node: &Value,
    path: &str,
    root: bool,
    uncorrelatable: Option<&str>,
    errs: &mut Vec<FieldError>,
) {
    let list = rules_of(rules);
    if !list.is_empty() {
        check_rules(list, node, path, root, uncorrelatable, errs);
    }
    let atomic_map = node.get("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic");
    let below_map = if atomic_map && uncorrelatable.is_none() {
        Some(path)
    } else {
        uncorrelatable
    };
    if let (Some(rp), Some(np)) = (properties(rules), properties(node)) {
        for (k, sub) in rp {
            if let Some(n) = np.get(k) {
                let p = format!("{path}.properties[{k}]");
                crd_node(sub, n, &p, is_embedded(n), below_map, errs);
            }
        }
    }
    if let (Some(ra), Some(na)) = (additional(rules), additional(node)) {
        let p = format!("{path}.additionalProperties");
        crd_node(ra, na, &p, is_embedded(na), below_map, errs);
    }
    if let (Some(ri), Some(ni)) = (rules.get("items"), node.get("items")) {
        let map_list = node.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("map");
        let below_list = match uncorrelatable {
            None if !map_list => Some(path),
            other => other,
        };
        let p = format!("{path}.items");
        crd_node(ri, ni, &p, is_embedded(ni), below_list, errs);
    }
    for (i, sub) in rules
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let p = format!("{path}.allOf[{i}]");
        crd_node(sub, node, &p, root, uncorrelatable, errs);
    }
}

fn check_rules(
    list: &[Value],
    node: &Value,
    path: &str,
    root: bool,
    uncorrelatable: Option<&str>,
    errs: &mut Vec<FieldError>,
) {
    let before = errs.len();
    for (i, rule) in list.iter().enumerate() {
        let at = |f: &str| format!("{path}.{RULES}[{i}].{f}");
        let src = text(rule, "rule");
        let message = text(rule, "message");
        if src.trim().is_empty() {
            errs.push(FieldError::required_detail(
                at("rule"),
                "rule is not specified",
            ));
        } else if !message.is_empty() && message.trim().is_empty() {
            errs.push(invalid_str(
                at("message"),
                message,
                "message must be non-empty if specified",
            ));
        } else if has_newlines(message.trim()) {
            errs.push(invalid_str(
                at("message"),
                message,
                "message must not contain line breaks",
            ));
        } else if has_newlines(src.trim()) && message.trim().is_empty() {
            errs.push(FieldError::required_detail(
                at("message"),
                "message must be specified if rule contains line breaks",
            ));
        }
        let msg_expr = text(rule, "messageExpression");
        if !msg_expr.is_empty() && msg_expr.trim().is_empty() {
            errs.push(FieldError::required_detail(
                at("messageExpression"),
                "messageExpression must be non-empty if specified",
            ));
        }
        if let Some(reason) = rule.get("reason").and_then(Value::as_str) {
            if !REASONS.contains(&reason) {
                errs.push(FieldError::not_supported(
                    at("reason"),
                    &Value::String(reason.into()),
                    REASONS,
                ));
            }
        }
        let field_path = text(rule, "fieldPath");
        if !field_path.is_empty() {
            let problem = if field_path.trim().is_empty() {
                Some("fieldPath must be non-empty if specified")
            } else if has_newlines(field_path) {
                Some("fieldPath must not contain line breaks")
            } else if valid_field_path(field_path, node).is_err() {
                Some("fieldPath must be a valid path")
            } else {
                None
            };
            if let Some(detail) = problem {
                errs.push(invalid_str(at("fieldPath"), field_path, detail));
            }
        }
    }
    // Upstream leaves compiling to a schema without errors: their CEL errors would only
    // confuse.
    if errs.len() > before {
        return;
    }
    let Some(self_ty) = schema_ty(node, root) else {
        errs.push(internal(
            format!("{path}.{RULES}"),
            &format!(
                "rule declared on schema that does not support validation rules type: '{}' x-kubernetes-preserve-unknown-fields: '{}'",
                schema_type(node),
                node.get("x-kubernetes-preserve-unknown-fields").and_then(Value::as_bool) == Some(true)
            ),
        ));
        return;
    };
    for (i, rule) in list.iter().enumerate() {
        let at = |f: &str| format!("{path}.{RULES}[{i}].{f}");
        let optional = rule.get("optionalOldSelf").and_then(Value::as_bool) == Some(true);
        let old_ty = if optional {
            Ty::Optional(Box::new(self_ty.clone()))
        } else {
            self_ty.clone()
        };
        let declared = vec![
            ("self".to_string(), self_ty.clone()),
            ("oldSelf".to_string(), old_ty),
        ];
        match program::compile(text(rule, "rule"), &declared) {
            Err(issues) => errs.push(crate::resources::validation::invalid_raw(
                at("rule"),
                &go_rule(rule),
                &format!("compilation failed: {issues}"),
            )),
            Ok(c) if !matches!(c.ty, Ty::Bool | Ty::Dyn) => {
                errs.push(crate::resources::validation::invalid_raw(
                    at("rule"),
                    &go_rule(rule),
                    "cel expression must evaluate to a bool",
                ))
            }
            Ok(c) => {
                if c.references.contains("oldSelf") {
                    if let Some(within) = uncorrelatable {
                        errs.push(invalid_str(
                            at("rule"),
                            text(rule, "rule"),
                            &format!("oldSelf cannot be used on the uncorrelatable portion of the schema within {within}"),
                        ));
                    }
                } else if let Some(b) = rule.get("optionalOldSelf").and_then(Value::as_bool) {
                    errs.push(FieldError::invalid(
                        at("optionalOldSelf"),
                        &Value::Bool(b),
                        "may not be set if oldSelf is not used in rule",
                    ));
                }
            }
        }
        let msg_expr = text(rule, "messageExpression");
        if !msg_expr.trim().is_empty() {
            match program::compile(msg_expr, &declared) {
                Err(issues) => errs.push(crate::resources::validation::invalid_raw(
                    at("messageExpression"),
                    &go_rule(rule),
                    &format!("messageExpression compilation failed: {issues}"),
                )),
                Ok(c) if !matches!(c.ty, Ty::String | Ty::Dyn) => {
                    errs.push(crate::resources::validation::invalid_raw(
                        at("messageExpression"),
                        &go_rule(rule),
                        "messageExpression must evaluate to a string",
                    ))
                }
                Ok(_) => {}
            }
        }
    }
}

/// Evaluates every rule under `schema` against `obj` (and `old` on update).
pub fn validate(schema: &Value, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if has_rules(schema) {
        node(schema, schema, obj, old, "", true, false, &mut errs);
    }
    errs
}

/// One node of the walk: `old` is the correlated old value (absent on create, under lists
/// that are not maps, and under atomic maps); `parent_unchanged` whether the nearest
/// correlated ancestor is unchanged, which ratchets nodes that have no old value of their
/// own.
#[allow(clippy::too_many_arguments)]
fn node(
    rules: &Value,
    ty: &Value,
    v: &Value,
    old: Option<&Value>,
    path: &str,
    root: bool,
    parent_unchanged: bool,
    errs: &mut Vec<FieldError>,
) {
    if v.is_null() || !has_rules(rules) {
        return;
    }
    let unchanged = match old {
        Some(o) => deep_eq(o, v),
        None => parent_unchanged,
    };
    let list = rules_of(rules);
    if !list.is_empty() {
        evaluate_rules(list, ty, v, old, path, root, unchanged, errs);
    }
    for sub in rules
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        node(sub, ty, v, old, path, root, parent_unchanged, errs);
    }
    match v {
        Value::Object(obj) => {
            let correlatable =
                ty.get("x-kubernetes-map-type").and_then(Value::as_str) != Some("atomic");
            let old_map = old.and_then(Value::as_object).filter(|_| correlatable);
            if let (Some(ra), Some(ta)) = (additional(rules), additional(ty)) {
                for (k, item) in obj {
                    let o = old_map.and_then(|m| m.get(k));
                    node(
                        ra,
                        ta,
                        item,
                        o,
                        &key(path, k),
                        is_embedded(ta),
                        unchanged,
                        errs,
                    );
                }
            }
            if let (Some(rp), Some(tp)) = (properties(rules), properties(ty)) {
                for (k, item) in obj {
                    if let (Some(r), Some(t)) = (rp.get(k), tp.get(k)) {
                        let o = old_map.and_then(|m| m.get(k));
                        node(
                            r,
                            t,
                            item,
                            o,
                            &child(path, k),
                            is_embedded(t),
                            unchanged,
                            errs,
                        );
                    }
                }
            }
        }
        Value::Array(items) => {
            let (Some(ri), Some(ti)) = (rules.get("items"), ty.get("items")) else {
                return;
            };
            let map_keys: Option<Vec<&str>> =
                (ty.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("map")).then(
                    || {
                        ty.get("x-kubernetes-list-map-keys")
                            .and_then(Value::as_array)
                            .map(|a| a.iter().filter_map(Value::as_str).collect())
                            .unwrap_or_default()
                    },
                );
            let old_items = old.and_then(Value::as_array);
            for (i, item) in items.iter().enumerate() {
                let o = match (&map_keys, old_items) {
                    (Some(keys), Some(olds)) if !keys.is_empty() => {
                        olds.iter().find(|prev| same_keys(prev, item, keys))
                    }
                    _ => None,
                };
                let p = format!("{path}[{i}]");
                node(ri, ti, item, o, &p, is_embedded(ti), unchanged, errs);
            }
        }
        _ => {}
    }
}

fn same_keys(a: &Value, b: &Value, keys: &[&str]) -> bool {
    keys.iter().all(|k| match (a.get(*k), b.get(*k)) {
        (Some(x), Some(y)) => deep_eq(x, y),
        (None, None) => true,
        _ => false,
    })
}

fn rule_error_string(rule: &Value) -> String {
    let message = text(rule, "message");
    if message.is_empty() {
        text(rule, "rule").trim().to_string()
    } else {
        message.trim().to_string()
    }
}

fn rule_message_or_default(rule: &Value) -> String {
    let message = text(rule, "message");
    if message.is_empty() {
        format!("failed rule: {}", rule_error_string(rule))
    } else {
        message.trim().to_string()
    }
}

fn optional(v: Option<Cel>) -> Cel {
    Cel::Opaque(Arc::new(match v {
        Some(v) => OptionalValue::of(v),
        None => OptionalValue::none(),
    }))
}

/// The message of a failed rule from its `messageExpression`, or `None` when that fails,
/// which falls back to `message`.
fn message_from_expression(source: &str, self_val: &Cel, old_val: Option<&Cel>) -> Option<String> {
    let program = program::parse(source).ok()?;
    let mut vars = vec![("self", bind(self_val.clone()))];
    if let Some(o) = old_val {
        vars.push(("oldSelf", bind(o.clone())));
    }
    match program::run(&program, vars) {
        Ok(Cel::String(s)) => {
            let trimmed = s.trim();
            (!trimmed.is_empty() && !trimmed.contains('\n')).then(|| trimmed.to_string())
        }
        _ => None,
    }
}

fn field_error(path: String, type_name: &str, detail: &str, reason: Option<&str>) -> FieldError {
    let value = Value::String(type_name.into());
    match reason {
        Some("FieldValueForbidden") => FieldError::forbidden(path, detail),
        Some("FieldValueRequired") => FieldError::required_detail(path, detail),
        Some("FieldValueDuplicate") => FieldError::duplicate(path, &value),
        _ => FieldError::invalid(path, &value, detail),
    }
}

#[allow(clippy::too_many_arguments)]
fn evaluate_rules(
    list: &[Value],
    ty: &Value,
    v: &Value,
    old: Option<&Value>,
    path: &str,
    root: bool,
    unchanged: bool,
    errs: &mut Vec<FieldError>,
) {
    let type_name = schema_type(ty);
    let at = shown(path).to_string();
    // Values CEL cannot see (an unparsable formatted string) are left to schema validation.
    let Some(self_val) = from_schema(v, ty, root) else {
        return;
    };
    let old_val = old.and_then(|o| from_schema(o, ty, root));
    for rule in list {
        let src = text(rule, "rule");
        if src.trim().is_empty() {
            continue;
        }
        let program = match program::parse(src) {
            Ok(p) => p,
            Err(e) => {
                errs.push(FieldError::invalid(
                    at.clone(),
                    &Value::String(type_name.into()),
                    &format!("rule compile error: compilation failed: {e}"),
                ));
                continue;
            }
        };
        let uses_old_self = program.references().has_variable("oldSelf");
        let optional_old = rule.get("optionalOldSelf").and_then(Value::as_bool) == Some(true);
        if uses_old_self && old_val.is_none() && !optional_old {
            continue;
        }
        let mut vars = vec![("self", bind(self_val.clone()))];
        if uses_old_self {
            let old_bound = if optional_old {
                optional(old_val.clone())
            } else {
                old_val.clone().unwrap_or(Cel::Null)
            };
            vars.push(("oldSelf", bind(old_bound)));
        }
        let passed = match program::run(&program, vars) {
            Ok(Cel::Bool(true)) => true,
            Ok(_) => false,
            Err(e) => {
                let detail = if is_overload_error(&e) {
                    format!(
                        "'{}': call arguments did not match a supported operator, function or macro signature for rule: {}",
                        error_text(&e),
                        rule_error_string(rule)
                    )
                } else {
                    format!(
                        "{} evaluating rule: {}",
                        error_text(&e),
                        rule_error_string(rule)
                    )
                };
                errs.push(FieldError::invalid(
                    at.clone(),
                    &Value::String(type_name.into()),
                    &detail,
                ));
                continue;
            }
        };
        if passed || (unchanged && !uses_old_self) {
            continue;
        }
        let target = match text(rule, "fieldPath") {
            "" => at.clone(),
            fp => match valid_field_path(fp, ty) {
                Ok(rel) if path.is_empty() => rel,
                Ok(rel) => child(path, &rel),
                Err(_) => at.clone(),
            },
        };
        let msg_expr = text(rule, "messageExpression");
        let detail = (!msg_expr.trim().is_empty())
            .then(|| message_from_expression(msg_expr, &self_val, old_val.as_ref()))
            .flatten()
            .unwrap_or_else(|| rule_message_or_default(rule));
        errs.push(field_error(
            target,
            type_name,
            &detail,
            rule.get("reason").and_then(Value::as_str),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object",
                "properties": {
                    "replicas": {"type": "integer"},
                    "maxReplicas": {"type": "integer"},
                    "mode": {"type": "string",
                        "x-kubernetes-validations": [
                            {"rule": "self == oldSelf", "message": "mode is immutable"}]},
                    "tags": {"type": "array", "items": {"type": "string",
                        "x-kubernetes-validations": [{"rule": "self.size() <= 3"}]}},
                    "limits": {"type": "object", "additionalProperties": {"type": "integer",
                        "x-kubernetes-validations": [{"rule": "self >= 0", "message": "must not be negative"}]}},
                    "ports": {"type": "array", "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["name"],
                        "items": {"type": "object", "required": ["name"], "properties": {
                            "name": {"type": "string"}, "port": {"type": "integer"}},
                            "x-kubernetes-validations": [{"rule": "!has(oldSelf.port) || self.port >= oldSelf.port",
                                "message": "ports only grow"}]}}},
                "x-kubernetes-validations": [
                    {"rule": "!has(self.replicas) || !has(self.maxReplicas) || self.replicas <= self.maxReplicas",
                     "message": "replicas must not exceed maxReplicas"},
                    {"rule": "!has(self.replicas) || self.replicas != 13",
                     "messageExpression": "'replicas may not be ' + string(self.replicas)",
                     "reason": "FieldValueForbidden", "fieldPath": ".replicas"}]}},
            "x-kubernetes-validations": [{"rule": "self.metadata.name.startsWith('w')"}]})
    }

    fn widget(spec: Value) -> Value {
        json!({"apiVersion": "kubeproof.dev/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": spec})
    }

    fn msgs(obj: &Value, old: Option<&Value>) -> Vec<String> {
        validate(&schema(), obj, old)
            .into_iter()
            .map(|e| e.message)
            .collect()
    }

    #[test]
    fn failed_rule_reports_its_message_at_the_node() {
        assert!(msgs(&widget(json!({"replicas": 2, "maxReplicas": 3})), None).is_empty());
        assert_eq!(
            msgs(&widget(json!({"replicas": 5, "maxReplicas": 3})), None),
            ["spec: Invalid value: \"object\": replicas must not exceed maxReplicas"]
        );
    }

    #[test]
    fn message_expression_reason_and_field_path() {
        let errs = validate(&schema(), &widget(json!({"replicas": 13})), None);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].reason, "FieldValueForbidden");
        assert_eq!(errs[0].field, "spec.replicas");
        assert_eq!(
            errs[0].message,
            "spec.replicas: Forbidden: replicas may not be 13"
        );
    }

    #[test]
    fn root_rules_see_metadata_name_and_report_at_nil() {
        let mut obj = widget(json!({}));
        obj["metadata"]["name"] = json!("gadget");
        assert_eq!(
            msgs(&obj, None),
            ["<nil>: Invalid value: \"object\": failed rule: self.metadata.name.startsWith('w')"]
        );
    }

    #[test]
    fn rules_on_items_and_map_values() {
        let obj = widget(json!({"tags": ["ok", "toolong"], "limits": {"cpu": 1, "mem": -1}}));
        assert_eq!(
            msgs(&obj, None),
            [
                "spec.tags[1]: Invalid value: \"string\": failed rule: self.size() <= 3",
                "spec.limits[mem]: Invalid value: \"integer\": must not be negative"
            ]
        );
    }

    #[test]
    fn transition_rules_run_only_on_update() {
        let created = widget(json!({"mode": "fast"}));
        assert!(msgs(&created, None).is_empty());
        let changed = widget(json!({"mode": "slow"}));
        assert_eq!(
            msgs(&changed, Some(&created)),
            ["spec.mode: Invalid value: \"string\": mode is immutable"]
        );
        // A field added on update has no old value to compare with.
        let added = widget(json!({"mode": "slow"}));
        assert!(msgs(&added, Some(&widget(json!({})))).is_empty());
    }

    #[test]
    fn map_list_items_correlate_by_key() {
        let old = widget(json!({"ports": [{"name": "a", "port": 80}, {"name": "b", "port": 90}]}));
        let reordered =
            widget(json!({"ports": [{"name": "b", "port": 91}, {"name": "a", "port": 79}]}));
        assert_eq!(
            msgs(&reordered, Some(&old)),
            ["spec.ports[1]: Invalid value: \"object\": ports only grow"]
        );
    }

    #[test]
    fn unchanged_values_ratchet() {
        let mut old = widget(json!({"replicas": 5, "maxReplicas": 3}));
        old["metadata"]["labels"] = json!({"a": "b"});
        let same_spec = widget(json!({"replicas": 5, "maxReplicas": 3}));
        assert!(msgs(&same_spec, Some(&old)).is_empty());
        let worse = widget(json!({"replicas": 6, "maxReplicas": 3}));
        assert_eq!(msgs(&worse, Some(&old)).len(), 1);
    }

    #[test]
    fn optional_old_self_sees_absence() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
            "properties": {"v": {"type": "integer"}},
            "x-kubernetes-validations": [{"rule": "!oldSelf.hasValue() || self.v >= oldSelf.value().v",
                "optionalOldSelf": true, "message": "v only grows"}]}}});
        let obj = json!({"spec": {"v": 1}});
        assert!(validate(&schema, &obj, None).is_empty());
        let old = json!({"spec": {"v": 2}});
        let m: Vec<String> = validate(&schema, &obj, Some(&old))
            .into_iter()
            .map(|e| e.message)
            .collect();
        assert_eq!(m, ["spec: Invalid value: \"object\": v only grows"]);
    }

    #[test]
    fn evaluation_errors_name_the_rule() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"x-kubernetes-int-or-string": true}},
            "x-kubernetes-validations": [
                {"rule": "self.a > 0"},
                {"rule": "self.b > 1", "message": "b too small"}]}}});
        let m: Vec<String> = validate(&schema, &json!({"spec": {"b": "x"}}), None)
            .into_iter()
            .map(|e| e.message)
            .collect();
        assert_eq!(
            m[0],
            "spec: Invalid value: \"object\": no such key: a evaluating rule: self.a > 0"
        );
        assert!(
            m[1].starts_with("spec: Invalid value: \"object\": 'no such overload")
                && m[1].ends_with("call arguments did not match a supported operator, function or macro signature for rule: b too small"),
            "{}",
            m[1]
        );
    }

    #[test]
    fn duplicate_and_required_reasons() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
            "properties": {"xs": {"type": "array", "items": {"type": "integer"},
                "x-kubernetes-validations": [
                    {"rule": "self.all(x, self.exists_one(y, y == x))", "reason": "FieldValueDuplicate"},
                    {"rule": "size(self) > 0", "reason": "FieldValueRequired", "message": "xs must not be empty"}]}}}}});
        let m: Vec<String> = validate(&schema, &json!({"spec": {"xs": [1, 1]}}), None)
            .into_iter()
            .map(|e| e.message)
            .collect();
        assert_eq!(m, ["spec.xs: Duplicate value: \"array\""]);
        let m: Vec<String> = validate(&schema, &json!({"spec": {"xs": []}}), None)
            .into_iter()
            .map(|e| e.message)
            .collect();
        assert_eq!(m, ["spec.xs: Required value: xs must not be empty"]);
    }

    fn crd_msgs(schema: &Value) -> Vec<String> {
        crd_errors(schema, "spec.validation.openAPIV3Schema")
            .into_iter()
            .map(|e| e.message)
            .collect()
    }

    #[test]
    fn valid_rules_compile() {
        assert!(crd_msgs(&schema()).is_empty(), "{:?}", crd_msgs(&schema()));
    }

    #[test]
    fn compile_errors_point_into_the_rule() {
        let s = json!({"type": "object", "properties": {"spec": {"type": "object",
            "properties": {"replicas": {"type": "integer"}},
            "x-kubernetes-validations": [
                {"rule": "self.replica > 1"},
                {"rule": "self.replicas >"},
                {"rule": "self.replicas + 'x' == 1"},
                {"rule": "self.replicas"},
                {"rule": "foo(self)"}]}}});
        let m = crd_msgs(&s);
        let base = "spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations";
        assert_eq!(m.len(), 5, "{m:?}");
        assert_eq!(
            m[0],
            format!("{base}[0].rule: Invalid value: apiextensions.ValidationRule{{Rule:\"self.replica > 1\", Message:\"\", MessageExpression:\"\", Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:\"\", OptionalOldSelf:(*bool)(nil)}}: compilation failed: ERROR: <input>:1:5: undefined field 'replica'\n | self.replica > 1\n | ....^")
        );
        assert!(m[1].starts_with(&format!("{base}[1].rule: Invalid value: ")));
        assert!(
            m[1].contains(": compilation failed: ERROR: <input>:1:16: Syntax error: "),
            "{}",
            m[1]
        );
        assert!(m[2].ends_with("compilation failed: ERROR: <input>:1:15: found no matching overload for '_+_' applied to '(int, string)'\n | self.replicas + 'x' == 1\n | ..............^"), "{}", m[2]);
        assert!(
            m[3].ends_with(": cel expression must evaluate to a bool"),
            "{}",
            m[3]
        );
        assert!(
            m[4].contains("undeclared reference to 'foo' (in container '')"),
            "{}",
            m[4]
        );
    }

    #[test]
    fn rule_field_checks() {
        let s = json!({"type": "object", "properties": {"spec": {"type": "object",
            "properties": {"a": {"type": "integer"}},
            "x-kubernetes-validations": [
                {"rule": ""},
                {"rule": "true", "reason": "Bogus"},
                {"rule": "true", "fieldPath": ".nope"},
                {"rule": "true", "message": "two\nlines"}]}}});
        let base = "spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations";
        assert_eq!(
            crd_msgs(&s),
            [
                format!("{base}[0].rule: Required value: rule is not specified"),
                format!("{base}[1].reason: Unsupported value: \"Bogus\": supported values: \"FieldValueDuplicate\", \"FieldValueForbidden\", \"FieldValueInvalid\", \"FieldValueRequired\""),
                format!("{base}[2].fieldPath: Invalid value: \".nope\": fieldPath must be a valid path"),
                format!("{base}[3].message: Invalid value: \"two\\nlines\": message must not contain line breaks"),
            ]
        );
    }

    #[test]
    fn old_self_checks() {
        let s = json!({"type": "object", "properties": {"spec": {"type": "object",
            "properties": {"xs": {"type": "array", "items": {"type": "string",
                "x-kubernetes-validations": [{"rule": "self == oldSelf"}]}}},
            "x-kubernetes-validations": [{"rule": "true", "optionalOldSelf": true}]}}});
        let base = "spec.validation.openAPIV3Schema.properties[spec]";
        assert_eq!(
            crd_msgs(&s),
            [
                format!("{base}.x-kubernetes-validations[0].optionalOldSelf: Invalid value: true: may not be set if oldSelf is not used in rule"),
                format!("{base}.properties[xs].items.x-kubernetes-validations[0].rule: Invalid value: \"self == oldSelf\": oldSelf cannot be used on the uncorrelatable portion of the schema within {base}.properties[xs]"),
            ]
        );
    }

    #[test]
    fn field_paths_resolve_against_the_schema() {
        let s = json!({"type": "object", "properties": {
            "a": {"type": "object", "properties": {"b.c": {"type": "string"}}},
            "m": {"type": "object", "additionalProperties": {"type": "string"}}}});
        assert_eq!(valid_field_path(".a['b.c']", &s).as_deref(), Ok("a.b.c"));
        assert_eq!(valid_field_path(".m.key", &s).as_deref(), Ok("m[key]"));
        assert!(valid_field_path("a", &s).is_err());
        assert!(valid_field_path(".a.x", &s).is_err());
        assert!(valid_field_path(".a[b]", &s).is_err());
    }

    #[test]
    fn odd_rules_and_values_never_panic() {
        let schemas = [
            json!({"type": "object", "x-kubernetes-validations": "x"}),
            json!({"type": "object", "x-kubernetes-validations": [null, 1, {"rule": 5}, {"rule": "self.x.y.z"}]}),
            json!({"type": "array", "x-kubernetes-validations": [{"rule": "self[5] == 1", "fieldPath": "[", "messageExpression": "1/0"}]}),
            json!({"type": "string", "format": "date-time", "x-kubernetes-validations": [{"rule": "self > timestamp('2020-01-01T00:00:00Z')"}]}),
        ];
        let values = [
            json!(null),
            json!(1),
            json!("nope"),
            json!([1]),
            json!({"x": {}}),
        ];
        for s in &schemas {
            let _ = crd_errors(s, "s");
            for v in &values {
                for old in [None, Some(&values[3])] {
                    let _ = validate(s, v, old);
                }
            }
        }
    }
}
