//! Upstream's validation (`pkg/apis/*/validation`) for the common cases, with upstream's field
//! paths and messages. `validate` is the entry point the built-in strategies call.
//!
//! Values in "Invalid value" messages are rendered the way Go's `field.Error` renders them:
//! strings quoted, numbers bare, maps and structs in `%#v` form where clients commonly see them
//! (label maps, label selectors, role references).

mod core;
mod pod;
mod workloads;

use std::collections::BTreeMap;

use serde_json::Value;

use super::json::{array_at, at, object_at, str_at, string_map};
use super::names::{is_qualified_name, is_valid_label_value, NameRule};
use super::FieldError;

pub use pod::{validate_ephemeral_containers_update, validate_pod_spec, validate_pod_template};

pub type Errors = Vec<FieldError>;

/// Joins a child onto a field path.
pub fn child(base: &str, name: &str) -> String {
    if base.is_empty() {
        name.to_string()
    } else {
        format!("{base}.{name}")
    }
}

pub fn index(base: &str, i: usize) -> String {
    format!("{base}[{i}]")
}

pub fn key(base: &str, k: &str) -> String {
    format!("{base}[{k}]")
}

/// The `metadata.name` rule of each built-in kind (upstream's `ValidateXName`).
pub fn name_rule(group: &str, kind: &str) -> NameRule {
    match (group, kind) {
        ("", "Namespace") => NameRule::Dns1123Label,
        ("", "Service") => NameRule::Dns1035Label,
        ("rbac.authorization.k8s.io", _) => NameRule::PathSegment,
        ("certificates.k8s.io", "CertificateSigningRequest") => NameRule::PathSegment,
        ("flowcontrol.apiserver.k8s.io", _) => NameRule::PathSegment,
        ("apiregistration.k8s.io", "APIService") => NameRule::PathSegment,
        _ => NameRule::Dns1123Subdomain,
    }
}

/// Go's `%#v` of a `map[string]string` (keys sorted, as fmt prints maps).
pub fn go_string_map(m: Option<&BTreeMap<String, String>>) -> String {
    match m {
        None => "map[string]string(nil)".to_string(),
        Some(m) => {
            let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k:?}:{v:?}")).collect();
            format!("map[string]string{{{}}}", parts.join(", "))
        }
    }
}

/// The labels at `path` as Go would print them (nil when absent).
pub fn go_labels_at(obj: &Value, path: &str) -> String {
    match object_at(obj, path) {
        None => go_string_map(None),
        Some(_) => go_string_map(Some(&string_map(obj, path))),
    }
}

/// Go's `%#v` of a `v1.LabelSelector` value, as upstream prints immutable-selector errors.
pub fn go_label_selector(sel: &Value) -> String {
    let labels = sel
        .get("matchLabels")
        .filter(|m| m.is_object())
        .map(|_| string_map(sel, "matchLabels"));
    let exprs = match sel.get("matchExpressions").and_then(Value::as_array) {
        None => "[]v1.LabelSelectorRequirement(nil)".to_string(),
        Some(items) => {
            let parts: Vec<String> = items
                .iter()
                .map(|e| {
                    let values = match e.get("values").and_then(Value::as_array) {
                        None => "[]string(nil)".to_string(),
                        Some(vs) => format!(
                            "[]string{{{}}}",
                            vs.iter()
                                .map(|v| format!("{:?}", v.as_str().unwrap_or_default()))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    };
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{:?}, Operator:{:?}, Values:{values}}}",
                        str_at(e, "key").unwrap_or_default(),
                        str_at(e, "operator").unwrap_or_default()
                    )
                })
                .collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", parts.join(", "))
        }
    };
    format!(
        "v1.LabelSelector{{MatchLabels:{}, MatchExpressions:{exprs}}}",
        go_string_map(labels.as_ref())
    )
}

/// An "Invalid value" error whose value is already rendered (Go `%#v` output and the like).
pub fn invalid_raw(field: impl Into<String>, rendered: &str, detail: &str) -> FieldError {
    let field = field.into();
    FieldError {
        reason: "FieldValueInvalid".into(),
        message: format!("{field}: Invalid value: {rendered}: {detail}"),
        field,
    }
}

pub fn validate_nonnegative(obj: &Value, path: &str, errs: &mut Errors) {
    if let Some(n) = at(obj, path).and_then(Value::as_i64) {
        if n < 0 {
            errs.push(FieldError::invalid(
                path,
                &Value::from(n),
                "must be greater than or equal to 0",
            ));
        }
    }
}

/// `ValidateLabels`: keys are qualified names, values label values.
pub fn validate_labels(labels: Option<&Value>, path: &str, errs: &mut Errors) {
    let Some(map) = labels.and_then(Value::as_object) else {
        return;
    };
    for (k, v) in map {
        for msg in is_qualified_name(k) {
            errs.push(FieldError::invalid(path, &Value::String(k.clone()), &msg));
        }
        match v.as_str() {
            Some(s) => {
                for msg in is_valid_label_value(s) {
                    errs.push(FieldError::invalid(path, v, &msg));
                }
            }
            None => errs.push(FieldError::invalid(path, v, "must be a string")),
        }
    }
}

const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// `ValidateAnnotations`: qualified keys (lower-cased) and at most 256 KiB in total.
pub fn validate_annotations(annotations: Option<&Value>, path: &str, errs: &mut Errors) {
    let Some(map) = annotations.and_then(Value::as_object) else {
        return;
    };
    let mut total = 0;
    for (k, v) in map {
        for msg in is_qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid(path, &Value::String(k.clone()), &msg));
        }
        total += k.len() + v.as_str().map_or(0, str::len);
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(FieldError::too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
}

/// `ValidateObjectMeta` with the kind's name rule. Runs after the server has set the
/// namespace from the URL and generated any name.
pub fn validate_object_meta(obj: &Value, namespaced: bool, rule: NameRule, errs: &mut Errors) {
    let meta = obj.get("metadata").cloned().unwrap_or(Value::Null);
    let generate_name = str_at(&meta, "generateName").unwrap_or_default();
    if !generate_name.is_empty() {
        for msg in rule.check(generate_name, true) {
            errs.push(FieldError::invalid(
                "metadata.generateName",
                &Value::String(generate_name.to_string()),
                &msg,
            ));
        }
    }
    let name = str_at(&meta, "name").unwrap_or_default();
    if name.is_empty() {
        errs.push(FieldError::required_detail(
            "metadata.name",
            "name or generateName is required",
        ));
    } else {
        for msg in rule.check(name, false) {
            errs.push(FieldError::invalid(
                "metadata.name",
                &Value::String(name.to_string()),
                &msg,
            ));
        }
    }
    let namespace = str_at(&meta, "namespace").unwrap_or_default();
    if namespaced {
        if namespace.is_empty() {
            errs.push(FieldError::required("metadata.namespace"));
        } else {
            for msg in NameRule::Dns1123Label.check(namespace, false) {
                errs.push(FieldError::invalid(
                    "metadata.namespace",
                    &Value::String(namespace.to_string()),
                    &msg,
                ));
            }
        }
    } else if !namespace.is_empty() {
        errs.push(FieldError::forbidden(
            "metadata.namespace",
            "not allowed on this type",
        ));
    }
    if let Some(g) = meta
        .get("generation")
        .and_then(Value::as_i64)
        .filter(|g| *g < 0)
    {
        errs.push(FieldError::invalid(
            "metadata.generation",
            &Value::from(g),
            "must be greater than or equal to 0",
        ));
    }
    validate_labels(meta.get("labels"), "metadata.labels", errs);
    validate_annotations(meta.get("annotations"), "metadata.annotations", errs);
    for (i, f) in array_at(&meta, "finalizers").iter().enumerate() {
        let s = f.as_str().unwrap_or_default();
        for msg in is_qualified_name(s) {
            errs.push(FieldError::invalid(
                index("metadata.finalizers", i),
                f,
                &msg,
            ));
        }
    }
    validate_owner_references(&meta, errs);
}

fn validate_owner_references(meta: &Value, errs: &mut Errors) {
    let refs = array_at(meta, "ownerReferences");
    let mut controllers = Vec::new();
    for (i, r) in refs.iter().enumerate() {
        let path = index("metadata.ownerReferences", i);
        let api_version = str_at(r, "apiVersion").unwrap_or_default();
        if api_version.is_empty() {
            errs.push(invalid_raw(
                child(&path, "apiVersion"),
                "\"\"",
                "version must not be empty",
            ));
        }
        if str_at(r, "kind").unwrap_or_default().is_empty() {
            errs.push(invalid_raw(
                child(&path, "kind"),
                "\"\"",
                "kind must not be empty",
            ));
        }
        if str_at(r, "name").unwrap_or_default().is_empty() {
            errs.push(invalid_raw(
                child(&path, "name"),
                "\"\"",
                "name must not be empty",
            ));
        }
        if str_at(r, "uid").unwrap_or_default().is_empty() {
            errs.push(invalid_raw(
                child(&path, "uid"),
                "\"\"",
                "uid must not be empty",
            ));
        }
        if r.get("controller").and_then(Value::as_bool) == Some(true) {
            controllers.push(str_at(r, "name").unwrap_or_default().to_string());
        }
    }
    if controllers.len() > 1 {
        errs.push(invalid_raw(
            "metadata.ownerReferences",
            &Value::Array(refs.to_vec()).to_string(),
            &format!(
                "Only one reference can have Controller set to true. Found \"true\" in references for {} and {}",
                controllers[0], controllers[1]
            ),
        ));
    }
}

/// `ValidateLabelSelector` (metav1 validation).
pub fn validate_label_selector(sel: Option<&Value>, path: &str, errs: &mut Errors) {
    let Some(sel) = sel.filter(|s| s.is_object()) else {
        return;
    };
    validate_labels(sel.get("matchLabels"), &child(path, "matchLabels"), errs);
    for (i, expr) in array_at(sel, "matchExpressions").iter().enumerate() {
        let p = index(&child(path, "matchExpressions"), i);
        let values = array_at(expr, "values");
        match str_at(expr, "operator").unwrap_or_default() {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(FieldError::required_detail(
                        child(&p, "values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(FieldError::forbidden(
                        child(&p, "values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            other => errs.push(FieldError::invalid(
                child(&p, "operator"),
                &Value::String(other.to_string()),
                "not a valid selector operator",
            )),
        }
        let k = str_at(expr, "key").unwrap_or_default();
        for msg in is_qualified_name(k) {
            errs.push(FieldError::invalid(
                child(&p, "key"),
                &Value::String(k.to_string()),
                &msg,
            ));
        }
        for (j, v) in values.iter().enumerate() {
            for msg in is_valid_label_value(v.as_str().unwrap_or_default()) {
                errs.push(FieldError::invalid(index(&child(&p, "values"), j), v, &msg));
            }
        }
    }
}

/// Rejects `parent[field]` (reported at `base.field`) when it is set and not in `supported`,
/// with upstream's "Unsupported value" message.
pub fn check_enum(parent: &Value, base: &str, field: &str, supported: &[&str], errs: &mut Errors) {
    if let Some(v) = at(parent, field).filter(|v| !v.is_null()) {
        if !v.as_str().is_some_and(|s| supported.contains(&s)) {
            errs.push(FieldError::not_supported(child(base, field), v, supported));
        }
    }
}

/// Validates a built-in object; `old` is the stored object on update.
pub fn validate(
    group: &str,
    kind: &str,
    namespaced: bool,
    obj: &Value,
    old: Option<&Value>,
) -> Errors {
    let mut errs = Errors::new();
    // Review requests are never stored and usually carry no name; upstream skips their
    // object-meta validation.
    let is_review = matches!(group, "authentication.k8s.io" | "authorization.k8s.io");
    if !is_review {
        validate_object_meta(obj, namespaced, name_rule(group, kind), &mut errs);
    }
    workloads::validate(group, kind, obj, old, &mut errs);
    core::validate(group, kind, obj, old, &mut errs);
    pod::validate(group, kind, obj, old, &mut errs);
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_renderings() {
        let mut m = BTreeMap::new();
        m.insert("app".to_string(), "web".to_string());
        m.insert("a".to_string(), "b".to_string());
        assert_eq!(
            go_string_map(Some(&m)),
            r#"map[string]string{"a":"b", "app":"web"}"#
        );
        assert_eq!(
            go_label_selector(&json!({"matchLabels": {"app": "web2"}})),
            r#"v1.LabelSelector{MatchLabels:map[string]string{"app":"web2"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}"#
        );
    }

    #[test]
    fn object_meta_messages() {
        let mut errs = Errors::new();
        let obj = json!({"metadata": {"name": "Bad_Name", "namespace": "ns",
            "labels": {"bad key!": "v", "ok": "-bad"}}});
        validate_object_meta(&obj, true, NameRule::Dns1123Subdomain, &mut errs);
        let msgs: Vec<&str> = errs.iter().map(|e| e.message.as_str()).collect();
        assert!(msgs[0].starts_with(
            "metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"
        ));
        assert!(msgs.iter().any(|m| m.starts_with(
            "metadata.labels: Invalid value: \"bad key!\": name part must consist of"
        )));
        assert!(msgs.iter().any(|m| m.starts_with(
            "metadata.labels: Invalid value: \"-bad\": a valid label must be an empty string"
        )));

        let mut errs = Errors::new();
        validate_object_meta(
            &json!({"metadata": {"namespace": "x"}}),
            false,
            NameRule::Dns1123Subdomain,
            &mut errs,
        );
        assert_eq!(
            errs[0].message,
            "metadata.name: Required value: name or generateName is required"
        );
        assert_eq!(
            errs[1].message,
            "metadata.namespace: Forbidden: not allowed on this type"
        );
    }

    #[test]
    fn selector_expression_messages() {
        let mut errs = Errors::new();
        validate_label_selector(
            Some(
                &json!({"matchExpressions": [{"key": "a", "operator": "In"}, {"key": "b", "operator": "Foo"}]}),
            ),
            "spec.selector",
            &mut errs,
        );
        assert_eq!(errs[0].message, "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'");
        assert_eq!(errs[1].message, "spec.selector.matchExpressions[1].operator: Invalid value: \"Foo\": not a valid selector operator");
    }
}
