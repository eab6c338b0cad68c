//! CustomResourceDefinitions: turning an `apiextensions.k8s.io/v1` CRD into the resources it
//! serves, and CRD validation with upstream's paths and messages.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{json, Value};

use super::json::{array_at, at, bool_at, ensure_object, str_at};
use super::jsonpath::JsonPath;
use super::names::{is_dns1035_label, is_dns1123_subdomain};
use super::validation::{check_enum, invalid_raw};
use super::{CustomResourceInfo, FieldError, ResourceInfo, ScalePaths, SubresourceInfo};

/// Unknown-field pruning of custom resources, re-exported here next to the rest of the CRD
/// machinery.
pub use super::schema::prune;

const CR_VERBS: &[&str] = &[
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "create",
    "update",
    "watch",
];
const SUB_VERBS: &[&str] = &["get", "patch", "update"];

fn strings(v: &Value, path: &str) -> Vec<String> {
    array_at(v, path)
        .iter()
        .filter_map(|s| s.as_str().map(String::from))
        .collect()
}

/// One `ResourceInfo` per served version of a valid CRD (the storage version marked in
/// `custom.storage`); the CRD's validation errors otherwise.
pub fn infos_from_crd(crd: &Value) -> Result<Vec<ResourceInfo>, Vec<FieldError>> {
    let mut normalized = crd.clone();
    super::defaults::apply(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        &mut normalized,
    );
    let errs = validate_crd(&normalized, None);
    if !errs.is_empty() {
        return Err(errs);
    }
    let crd = &normalized;
    let group = str_at(crd, "spec.group").unwrap_or_default().to_string();
    let kind = str_at(crd, "spec.names.kind")
        .unwrap_or_default()
        .to_string();
    let plural = str_at(crd, "spec.names.plural")
        .unwrap_or_default()
        .to_string();
    let singular = str_at(crd, "spec.names.singular")
        .filter(|s| !s.is_empty())
        .map(String::from)
        .unwrap_or_else(|| kind.to_lowercase());
    let list_kind = str_at(crd, "spec.names.listKind")
        .filter(|s| !s.is_empty())
        .map(String::from)
        .unwrap_or_else(|| format!("{kind}List"));
    let namespaced = str_at(crd, "spec.scope") == Some("Namespaced");
    let crd_name = str_at(crd, "metadata.name").unwrap_or_default().to_string();

    let infos = array_at(crd, "spec.versions")
        .iter()
        .filter(|v| bool_at(v, "served") == Some(true))
        .map(|v| {
            let version = str_at(v, "name").unwrap_or_default().to_string();
            let has_status = at(v, "subresources.status").is_some_and(|s| !s.is_null());
            let scale = at(v, "subresources.scale")
                .filter(|s| s.is_object())
                .map(|s| ScalePaths {
                    spec_replicas_path: str_at(s, "specReplicasPath").unwrap_or_default().into(),
                    status_replicas_path: str_at(s, "statusReplicasPath")
                        .unwrap_or_default()
                        .into(),
                    label_selector_path: str_at(s, "labelSelectorPath").map(String::from),
                });
            let mut subresources = Vec::new();
            if has_status {
                subresources.push(SubresourceInfo {
                    name: "status".into(),
                    group: group.clone(),
                    version: version.clone(),
                    kind: kind.clone(),
                    verbs: SUB_VERBS.iter().map(|s| s.to_string()).collect(),
                });
            }
            if scale.is_some() {
                subresources.push(SubresourceInfo {
                    name: "scale".into(),
                    group: "autoscaling".into(),
                    version: "v1".into(),
                    kind: "Scale".into(),
                    verbs: SUB_VERBS.iter().map(|s| s.to_string()).collect(),
                });
            }
            let selectable_fields = array_at(v, "selectableFields")
                .iter()
                .filter_map(|f| str_at(f, "jsonPath").map(String::from))
                .collect();
            ResourceInfo {
                group: group.clone(),
                version: version.clone(),
                kind: kind.clone(),
                list_kind: list_kind.clone(),
                plural: plural.clone(),
                singular: singular.clone(),
                namespaced,
                short_names: strings(crd, "spec.names.shortNames"),
                categories: strings(crd, "spec.names.categories"),
                verbs: CR_VERBS.iter().map(|s| s.to_string()).collect(),
                subresources,
                storage_resource: format!("{group}/{plural}"),
                preferred: false,
                custom: Some(Arc::new(CustomResourceInfo {
                    crd_name: crd_name.clone(),
                    schema: at(v, "schema.openAPIV3Schema").cloned(),
                    has_status,
                    scale,
                    printer_columns: array_at(v, "additionalPrinterColumns").to_vec(),
                    selectable_fields,
                    storage: bool_at(v, "storage") == Some(true),
                })),
            }
        })
        .collect();
    Ok(infos)
}

fn storage_version(crd: &Value) -> Option<String> {
    array_at(crd, "spec.versions")
        .iter()
        .find(|v| bool_at(v, "storage") == Some(true))
        .and_then(|v| str_at(v, "name"))
        .map(String::from)
}

/// A new CRD's status: names not yet accepted (the naming controller fills them), the storage
/// version recorded as stored.
pub fn initial_status(crd: &Value) -> Value {
    let stored: Vec<String> = storage_version(crd).into_iter().collect();
    json!({"acceptedNames": {"plural": "", "kind": ""}, "storedVersions": stored})
}

/// On update, a new storage version is added to `status.storedVersions`.
pub fn record_stored_version(crd: &mut Value) {
    let Some(v) = storage_version(crd) else {
        return;
    };
    if let Some(status) = ensure_object(crd, "status") {
        let mut stored: Vec<Value> = status
            .get("storedVersions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if !stored.iter().any(|s| s.as_str() == Some(v.as_str())) {
            stored.push(json!(v));
            status["storedVersions"] = Value::Array(stored);
        }
    }
}

fn dns1035(value: &str, path: String, prefix: &str, errs: &mut Vec<FieldError>) {
    let msgs = is_dns1035_label(value);
    if !msgs.is_empty() {
        errs.push(FieldError::invalid(
            path,
            &Value::String(value.to_string()),
            &format!("{prefix}{}", msgs.join(",")),
        ));
    }
}

/// `ValidateCustomResourceDefinition` (and `...Update` when `old` is given), for the checks a
/// CRD author commonly trips over.
pub fn validate_crd(crd: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let group = str_at(crd, "spec.group").unwrap_or_default();
    let plural = str_at(crd, "spec.names.plural").unwrap_or_default();
    let name = str_at(crd, "metadata.name").unwrap_or_default();
    if !name.is_empty() && name != format!("{plural}.{group}") {
        errs.push(FieldError::invalid(
            "metadata.name",
            &Value::String(name.to_string()),
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }

    if group.is_empty() {
        errs.push(FieldError::required("spec.group"));
    } else {
        for msg in is_dns1123_subdomain(group) {
            errs.push(FieldError::invalid(
                "spec.group",
                &Value::String(group.into()),
                &msg,
            ));
        }
        if group.split('.').count() < 2 {
            errs.push(FieldError::invalid(
                "spec.group",
                &Value::String(group.into()),
                "should be a domain with at least one dot",
            ));
        }
    }
    match str_at(crd, "spec.scope") {
        None | Some("") => errs.push(FieldError::required("spec.scope")),
        Some(_) => check_enum(crd, "", "spec.scope", &["Cluster", "Namespaced"], &mut errs),
    }

    validate_names(crd, &mut errs);
    validate_versions(crd, &mut errs);

    if let Some(old) = old {
        for f in ["spec.group", "spec.scope"] {
            let n = at(crd, f).cloned().unwrap_or(Value::Null);
            if at(old, f) != Some(&n) {
                errs.push(FieldError::invalid(f, &n, "field is immutable"));
            }
        }
    }
    errs
}

fn validate_names(crd: &Value, errs: &mut Vec<FieldError>) {
    let names = at(crd, "spec.names").cloned().unwrap_or(Value::Null);
    for f in ["plural", "singular", "kind", "listKind"] {
        if str_at(&names, f).unwrap_or_default().is_empty() {
            errs.push(FieldError::required(format!("spec.names.{f}")));
        }
    }
    for f in ["plural", "singular"] {
        let v = str_at(&names, f).unwrap_or_default();
        if !v.is_empty() {
            dns1035(v, format!("spec.names.{f}"), "", errs);
        }
    }
    for f in ["kind", "listKind"] {
        let v = str_at(&names, f).unwrap_or_default();
        if !v.is_empty() {
            let msgs = is_dns1035_label(&v.to_lowercase());
            if !msgs.is_empty() {
                errs.push(FieldError::invalid(
                    format!("spec.names.{f}"),
                    &Value::String(v.into()),
                    &format!(
                        "may have mixed case, but should otherwise match: {}",
                        msgs.join(",")
                    ),
                ));
            }
        }
    }
    let kind = str_at(&names, "kind").unwrap_or_default();
    if !kind.is_empty() && Some(kind) == str_at(&names, "listKind") {
        errs.push(FieldError::invalid(
            "spec.names.listKind",
            &Value::String(kind.into()),
            "kind and listKind may not be the same",
        ));
    }
    for list in ["shortNames", "categories"] {
        for (i, s) in array_at(&names, list).iter().enumerate() {
            dns1035(
                s.as_str().unwrap_or_default(),
                format!("spec.names.{list}[{i}]"),
                "",
                errs,
            );
        }
    }
}

const COLUMN_TYPES: &[&str] = &["integer", "number", "string", "boolean", "date"];

fn schema_of(version: &Value) -> Option<&Value> {
    at(version, "schema.openAPIV3Schema").filter(|s| s.is_object())
}

/// A version's schema: structural checks, then its CEL rules, which only compile over a
/// structural schema.
fn schema_errors(schema: &Value, base: &str, errs: &mut Vec<FieldError>) {
    let structural = super::schema::structural_errors(schema, base);
    if structural.is_empty() {
        errs.extend(crate::cel::rules::crd_errors(schema, base));
    }
    errs.extend(structural);
}

fn validate_versions(crd: &Value, errs: &mut Vec<FieldError>) {
    let versions = array_at(crd, "spec.versions");
    if versions.is_empty() {
        errs.push(FieldError::required("spec.versions"));
        return;
    }
    let rendered = || Value::Array(versions.to_vec()).to_string();
    // Upstream validates the internal form, where a schema shared by every version is hoisted
    // to `spec.validation`: its errors are reported once, there.
    let shared = schema_of(&versions[0]).filter(|first| {
        versions
            .iter()
            .all(|v| schema_of(v).is_some_and(|s| s == *first))
    });
    if let Some(schema) = shared {
        schema_errors(schema, "spec.validation.openAPIV3Schema", errs);
    }
    let mut seen = BTreeSet::new();
    let mut unique = true;
    let mut storage = 0;
    for (i, v) in versions.iter().enumerate() {
        let base = format!("spec.versions[{i}]");
        let name = str_at(v, "name").unwrap_or_default();
        if !seen.insert(name.to_string()) {
            unique = false;
        }
        if bool_at(v, "storage") == Some(true) {
            storage += 1;
        }
        dns1035(name, format!("{base}.name"), "", errs);
        match schema_of(v) {
            None => errs.push(FieldError::required_detail(
                format!("{base}.schema.openAPIV3Schema"),
                "schemas are required",
            )),
            Some(_) if shared.is_some() => {}
            Some(schema) => schema_errors(schema, &format!("{base}.schema.openAPIV3Schema"), errs),
        }
        for (j, col) in array_at(v, "additionalPrinterColumns").iter().enumerate() {
            let cp = format!("{base}.additionalPrinterColumns[{j}]");
            if str_at(col, "name").unwrap_or_default().is_empty() {
                errs.push(FieldError::required(format!("{cp}.name")));
            }
            match str_at(col, "type") {
                None | Some("") => errs.push(FieldError::required(format!("{cp}.type"))),
                Some(_) => check_enum(col, &cp, "type", COLUMN_TYPES, errs),
            }
            match str_at(col, "jsonPath").unwrap_or_default() {
                "" => errs.push(FieldError::required(format!("{cp}.jsonPath"))),
                p if !p.starts_with('.') => errs.push(FieldError::invalid(
                    format!("{cp}.jsonPath"),
                    &Value::String(p.into()),
                    "must be a simple json path starting with .",
                )),
                p if JsonPath::parse(p).is_err() => errs.push(FieldError::invalid(
                    format!("{cp}.jsonPath"),
                    &Value::String(p.into()),
                    "must be a json path in the dot notation",
                )),
                _ => {}
            }
        }
        if let Some(scale) = at(v, "subresources.scale").filter(|s| s.is_object()) {
            let sp = format!("{base}.subresources.scale");
            for (f, prefix) in [
                ("specReplicasPath", ".spec."),
                ("statusReplicasPath", ".status."),
            ] {
                match str_at(scale, f).unwrap_or_default() {
                    "" => errs.push(FieldError::required(format!("{sp}.{f}"))),
                    p if !p.starts_with(prefix) => errs.push(FieldError::invalid(
                        format!("{sp}.{f}"),
                        &Value::String(p.into()),
                        &format!("should start with {}", prefix.trim_end_matches('.')),
                    )),
                    _ => {}
                }
            }
        }
        for (j, f) in array_at(v, "selectableFields").iter().enumerate() {
            let p = str_at(f, "jsonPath").unwrap_or_default();
            if p.is_empty() {
                errs.push(FieldError::required(format!(
                    "{base}.selectableFields[{j}].jsonPath"
                )));
            } else if !p.starts_with('.') || JsonPath::parse(p).is_err() {
                errs.push(FieldError::invalid(
                    format!("{base}.selectableFields[{j}].jsonPath"),
                    &Value::String(p.into()),
                    "must be a simple json path starting with .",
                ));
            }
        }
    }
    if !unique {
        errs.push(invalid_raw(
            "spec.versions",
            &rendered(),
            "must contain unique version names",
        ));
    }
    if storage != 1 {
        errs.push(invalid_raw(
            "spec.versions",
            &rendered(),
            "must have exactly one version marked as storage version",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn widget_crd() -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"], "categories": ["all"]},
                "versions": [
                    {"name": "v1beta1", "served": true, "storage": false,
                     "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}},
                    {"name": "v1", "served": true, "storage": true,
                     "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                        "spec": {"type": "object", "properties": {"replicas": {"type": "integer", "default": 1},
                            "color": {"type": "string"}}},
                        "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}}}}},
                     "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas",
                        "statusReplicasPath": ".status.replicas"}},
                     "additionalPrinterColumns": [{"name": "Color", "type": "string", "jsonPath": ".spec.color"}],
                     "selectableFields": [{"jsonPath": ".spec.color"}]},
                    {"name": "v1alpha1", "served": false, "storage": false,
                     "schema": {"openAPIV3Schema": {"type": "object"}}}
                ]
            }
        })
    }

    #[test]
    fn infos_for_served_versions() {
        let infos = infos_from_crd(&widget_crd()).unwrap();
        let versions: Vec<&str> = infos.iter().map(|i| i.version.as_str()).collect();
        assert_eq!(versions, ["v1beta1", "v1"]);
        let v1 = &infos[1];
        assert_eq!(v1.kind, "Widget");
        assert_eq!(v1.list_kind, "WidgetList");
        assert_eq!(v1.singular, "widget");
        assert_eq!(v1.storage_resource, "example.com/widgets");
        assert_eq!(
            v1.key(Some("ns"), "w"),
            "/registry/example.com/widgets/ns/w"
        );
        assert_eq!(v1.short_names, ["wd"]);
        let custom = v1.custom.as_ref().unwrap();
        assert!(custom.storage && custom.has_status);
        assert_eq!(
            custom.scale.as_ref().unwrap().spec_replicas_path,
            ".spec.replicas"
        );
        assert_eq!(custom.selectable_fields, [".spec.color"]);
        let subs: Vec<&str> = v1.subresources.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(subs, ["status", "scale"]);
        assert!(!infos[0].custom.as_ref().unwrap().storage);
        assert!(infos[0].subresources.is_empty());
    }

    fn messages(crd: &Value) -> Vec<String> {
        validate_crd(crd, None)
            .into_iter()
            .map(|e| e.message)
            .collect()
    }

    #[test]
    fn name_group_and_scope_messages() {
        let mut crd = widget_crd();
        crate::resources::defaults::apply(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            &mut crd,
        );
        assert!(messages(&crd).is_empty(), "{:?}", messages(&crd));
        let mut bad = crd.clone();
        bad["metadata"]["name"] = json!("widget.example.com");
        bad["spec"]["scope"] = json!("Global");
        let m = messages(&bad);
        assert!(m.contains(&"metadata.name: Invalid value: \"widget.example.com\": must be spec.names.plural+\".\"+spec.group".to_string()));
        assert!(m.contains(&"spec.scope: Unsupported value: \"Global\": supported values: \"Cluster\", \"Namespaced\"".to_string()));
        let mut nodot = crd.clone();
        nodot["spec"]["group"] = json!("example");
        nodot["metadata"]["name"] = json!("widgets.example");
        assert_eq!(
            messages(&nodot),
            ["spec.group: Invalid value: \"example\": should be a domain with at least one dot"]
        );
    }

    #[test]
    fn versions_and_schema_messages() {
        let mut crd = widget_crd();
        crd["spec"]["versions"][0]["storage"] = json!(true);
        crd["spec"]["versions"][2]["schema"] = json!({});
        let err = infos_from_crd(&crd).unwrap_err();
        let m: Vec<&str> = err.iter().map(|e| e.message.as_str()).collect();
        assert!(m.contains(
            &"spec.versions[2].schema.openAPIV3Schema: Required value: schemas are required"
        ));
        assert!(m
            .iter()
            .any(|x| x.starts_with("spec.versions: Invalid value: ")
                && x.ends_with(": must have exactly one version marked as storage version")));
        let mut kindless = widget_crd();
        kindless["spec"]["names"]["kind"] = json!("");
        let m: Vec<String> = infos_from_crd(&kindless)
            .unwrap_err()
            .into_iter()
            .map(|e| e.message)
            .collect();
        assert!(m.contains(&"spec.names.kind: Required value".to_string()));
    }

    #[test]
    fn cel_rules_are_compiled_with_the_crd() {
        let mut crd = widget_crd();
        for v in crd["spec"]["versions"].as_array_mut().unwrap() {
            v["schema"]["openAPIV3Schema"] = json!({"type": "object", "properties": {
                "spec": {"type": "object", "properties": {"replicas": {"type": "integer"}},
                    "x-kubernetes-validations": [{"rule": "self.replicas <= self.maxReplicas"}]}}});
        }
        let m: Vec<String> = infos_from_crd(&crd)
            .unwrap_err()
            .into_iter()
            .map(|e| e.message)
            .collect();
        // One schema shared by every version is validated once, as `spec.validation`.
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(m[0].starts_with("spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: Invalid value: apiextensions.ValidationRule{Rule:\"self.replicas <= self.maxReplicas\""), "{}", m[0]);
        assert!(
            m[0].contains(
                ": compilation failed: ERROR: <input>:1:22: undefined field 'maxReplicas'"
            ),
            "{}",
            m[0]
        );

        let mut fixed = crd.clone();
        fixed["spec"]["versions"][1]["schema"]["openAPIV3Schema"]["properties"]["spec"]
            ["properties"]["maxReplicas"] = json!({"type": "integer"});
        let m: Vec<String> = infos_from_crd(&fixed)
            .unwrap_err()
            .into_iter()
            .map(|e| e.message)
            .collect();
        // Schemas that differ are validated per version.
        assert_eq!(m.len(), 2, "{m:?}");
        assert!(m[0].starts_with("spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: "));
        assert!(m[1].starts_with("spec.versions[2].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: "));
        for v in fixed["spec"]["versions"].as_array_mut().unwrap() {
            v["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["maxReplicas"] =
                json!({"type": "integer"});
        }
        assert!(infos_from_crd(&fixed).is_ok());
    }

    #[test]
    fn status_and_stored_versions() {
        let crd = widget_crd();
        assert_eq!(
            initial_status(&crd),
            json!({"acceptedNames": {"plural": "", "kind": ""}, "storedVersions": ["v1"]})
        );
        let mut updated = crd.clone();
        updated["status"] = initial_status(&crd);
        updated["spec"]["versions"][1]["storage"] = json!(false);
        updated["spec"]["versions"][0]["storage"] = json!(true);
        record_stored_version(&mut updated);
        assert_eq!(
            updated["status"]["storedVersions"],
            json!(["v1", "v1beta1"])
        );
    }
}
