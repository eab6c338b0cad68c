//! The strategy of custom resources: schema defaults and validation, status split when the
//! status subresource is on, generation on any non-metadata change, selectable fields and
//! printer columns from the CRD.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::json::{at, ensure_object, semantic_eq, str_at};
use super::jsonpath::JsonPath;
use super::names::NameRule;
use super::table::{doc, human_duration, name_col, parse_time};
use super::{
    schema, validation, CustomResourceInfo, FieldError, ResourceInfo, Strategy, TableColumn,
};

type ObjectMeta = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

struct Column {
    def: TableColumn,
    path: Option<JsonPath>,
}

pub struct CustomStrategy {
    info: Arc<CustomResourceInfo>,
    namespaced: bool,
    columns: Vec<Column>,
    selectable: Vec<(String, JsonPath)>,
}

impl CustomStrategy {
    /// A resource without custom info (a caller mistake) gets an empty schema rather than a
    /// panic.
    pub fn new(info: &ResourceInfo) -> Self {
        let custom = info.custom.clone().unwrap_or_else(|| {
            Arc::new(CustomResourceInfo {
                crd_name: String::new(),
                schema: None,
                has_status: false,
                scale: None,
                printer_columns: Vec::new(),
                selectable_fields: Vec::new(),
                storage: true,
            })
        });
        let mut columns = vec![Column {
            def: name_col(),
            path: None,
        }];
        let printer: Vec<Value> = if custom.printer_columns.is_empty() {
            // Upstream shows the age when a CRD declares no columns.
            vec![json!({"name": "Age", "type": "date",
                "description": doc::<ObjectMeta>("creationTimestamp"),
                "jsonPath": ".metadata.creationTimestamp"})]
        } else {
            custom.printer_columns.clone()
        };
        for c in &printer {
            columns.push(Column {
                def: TableColumn {
                    name: str_at(c, "name").unwrap_or_default().to_string(),
                    type_: str_at(c, "type").unwrap_or("string").to_string(),
                    format: str_at(c, "format").unwrap_or_default().to_string(),
                    description: str_at(c, "description").unwrap_or_default().to_string(),
                    priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0) as i32,
                },
                path: str_at(c, "jsonPath").and_then(|p| JsonPath::parse(p).ok()),
            });
        }
        let selectable = custom
            .selectable_fields
            .iter()
            .filter_map(|p| {
                JsonPath::parse(p)
                    .ok()
                    .map(|jp| (p.trim_start_matches('.').to_string(), jp))
            })
            .collect();
        CustomStrategy {
            info: custom,
            namespaced: info.namespaced,
            columns,
            selectable,
        }
    }

    fn schema(&self) -> Option<&Value> {
        self.info.schema.as_ref()
    }
}

/// `cellForJSONValue`: typed cells; `date` columns show the age.
fn cell(type_: &str, v: Option<&Value>, now: DateTime<Utc>) -> Value {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Value::Null;
    };
    match type_ {
        "integer" => v
            .as_i64()
            .or_else(|| v.as_f64().map(|f| f as i64))
            .map(Value::from)
            .unwrap_or(Value::Null),
        "number" => v.as_f64().map(Value::from).unwrap_or(Value::Null),
        "boolean" => v.as_bool().map(Value::Bool).unwrap_or(Value::Null),
        "date" => match v.as_str() {
            Some(s) => match parse_time(s) {
                Some(t) => Value::String(human_duration(now - t)),
                None => Value::String("<invalid>".into()),
            },
            None => Value::Null,
        },
        // String columns print whatever the path selects.
        _ => Value::String(match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }),
    }
}

impl Strategy for CustomStrategy {
    fn default(&self, obj: &mut Value) {
        if let Some(s) = self.schema() {
            schema::apply_defaults(s, obj);
        }
    }

    fn prepare_create(&self, obj: &mut Value) {
        if self.info.has_status {
            if let Some(m) = obj.as_object_mut() {
                m.remove("status");
            }
        }
        if let Some(meta) = ensure_object(obj, "metadata") {
            meta["generation"] = json!(1);
        }
    }

    fn prepare_update(&self, obj: &mut Value, old: &Value) {
        let Some(map) = obj.as_object_mut() else {
            return;
        };
        if self.info.has_status {
            match old.get("status") {
                Some(s) => {
                    map.insert("status".into(), s.clone());
                }
                None => {
                    map.remove("status");
                }
            }
        }
        let generation = at(old, "metadata.generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let strip = |v: &Value| super::json::without_keys(v, &["metadata"]);
        let next = if semantic_eq(&strip(obj), &strip(old)) {
            generation
        } else {
            generation + 1
        };
        if let Some(meta) = ensure_object(obj, "metadata").and_then(Value::as_object_mut) {
            // Go omits a zero generation, so an object that never had one keeps none.
            if next == 0 {
                meta.remove("generation");
            } else {
                meta.insert("generation".into(), json!(next));
            }
        }
    }

    fn prepare_status_update(&self, obj: &mut Value, old: &Value) {
        let status = obj.get("status").cloned();
        let managed = at(obj, "metadata.managedFields").cloned();
        *obj = old.clone();
        if let Some(map) = obj.as_object_mut() {
            match status {
                Some(s) => {
                    map.insert("status".into(), s);
                }
                None => {
                    map.remove("status");
                }
            }
        }
        if let Some(m) = managed {
            if let Some(meta) = ensure_object(obj, "metadata") {
                meta["managedFields"] = m;
            }
        }
    }

    fn validate(&self, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
        let mut errs = Vec::new();
        validation::validate_object_meta(
            obj,
            self.namespaced,
            NameRule::Dns1123Subdomain,
            &mut errs,
        );
        if let Some(s) = self.schema() {
            errs.extend(schema::validate_update(s, obj, old));
        }
        errs
    }

    fn field_value(&self, obj: &Value, field: &str) -> Option<String> {
        match field {
            "metadata.name" => {
                return Some(str_at(obj, "metadata.name").unwrap_or_default().into())
            }
            "metadata.namespace" => {
                return Some(str_at(obj, "metadata.namespace").unwrap_or_default().into())
            }
            _ => {}
        }
        let (_, path) = self.selectable.iter().find(|(f, _)| f == field)?;
        Some(match path.first(obj) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        })
    }

    fn table_columns(&self) -> Vec<TableColumn> {
        self.columns.iter().map(|c| c.def.clone()).collect()
    }

    fn table_row(&self, obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
        self.columns
            .iter()
            .map(|c| match &c.path {
                None if c.def.format == "name" && c.def.name == "Name" => {
                    Value::String(str_at(obj, "metadata.name").unwrap_or_default().into())
                }
                None => Value::Null,
                Some(p) => cell(&c.def.type_, p.first(obj), now),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::crd::infos_from_crd;
    use chrono::TimeZone;

    fn crd() -> Value {
        json!({
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "subresources": {"status": {}},
                    "selectableFields": [{"jsonPath": ".spec.color"}],
                    "additionalPrinterColumns": [
                        {"name": "Color", "type": "string", "jsonPath": ".spec.color"},
                        {"name": "Size", "type": "integer", "jsonPath": ".spec.size", "priority": 1},
                        {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"},
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}],
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                        "spec": {"type": "object", "required": ["color"], "properties": {
                            "color": {"type": "string", "enum": ["red", "blue"]},
                            "size": {"type": "integer", "default": 3}}},
                        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}]}
        })
    }

    fn strategy() -> CustomStrategy {
        let info = infos_from_crd(&crd()).unwrap().remove(0);
        CustomStrategy::new(&info)
    }

    fn widget() -> Value {
        json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w1", "namespace": "ns", "creationTimestamp": "2024-05-01T11:00:00Z"},
            "spec": {"color": "red"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    }

    #[test]
    fn create_defaults_and_drops_status() {
        let s = strategy();
        let mut w = widget();
        s.default(&mut w);
        s.prepare_create(&mut w);
        assert_eq!(w["spec"]["size"], 3);
        assert!(w.get("status").is_none());
        assert_eq!(w["metadata"]["generation"], 1);
        assert!(s.validate(&w, None).is_empty());
    }

    #[test]
    fn generation_and_status_split() {
        let s = strategy();
        let mut stored = widget();
        stored["metadata"]["generation"] = json!(1);
        let mut relabel = stored.clone();
        relabel["metadata"]["labels"] = json!({"a": "b"});
        relabel["status"] = json!({"phase": "forged"});
        s.prepare_update(&mut relabel, &stored);
        assert_eq!(relabel["metadata"]["generation"], 1);
        assert_eq!(relabel["status"], stored["status"]);
        let mut respec = stored.clone();
        respec["spec"]["color"] = json!("blue");
        s.prepare_update(&mut respec, &stored);
        assert_eq!(respec["metadata"]["generation"], 2);
        let mut status = stored.clone();
        status["spec"]["color"] = json!("blue");
        status["status"] = json!({"phase": "Ready"});
        s.prepare_status_update(&mut status, &stored);
        assert_eq!(status["spec"]["color"], "red");
        assert_eq!(status["status"], json!({"phase": "Ready"}));
    }

    #[test]
    fn schema_errors_surface() {
        let s = strategy();
        let mut w = widget();
        w["spec"] = json!({"color": "green"});
        let m: Vec<String> = s
            .validate(&w, None)
            .into_iter()
            .map(|e| e.message)
            .collect();
        assert_eq!(
            m,
            ["spec.color: Unsupported value: \"green\": supported values: \"red\", \"blue\""]
        );
    }

    #[test]
    fn selectable_fields_and_table() {
        let s = strategy();
        let w = widget();
        assert_eq!(s.field_value(&w, "spec.color").as_deref(), Some("red"));
        assert_eq!(s.field_value(&w, "metadata.name").as_deref(), Some("w1"));
        assert_eq!(s.field_value(&w, "spec.size"), None);
        let cols: Vec<String> = s.table_columns().into_iter().map(|c| c.name).collect();
        assert_eq!(cols, ["Name", "Color", "Size", "Ready", "Age"]);
        let now = Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap();
        assert_eq!(
            s.table_row(&w, now),
            vec![
                json!("w1"),
                json!("red"),
                Value::Null,
                json!("True"),
                json!("60m")
            ]
        );
    }

    #[test]
    fn default_columns_are_name_and_age() {
        let mut c = crd();
        c["spec"]["versions"][0]["additionalPrinterColumns"] = json!([]);
        let s = CustomStrategy::new(&infos_from_crd(&c).unwrap()[0]);
        let cols = s.table_columns();
        assert_eq!(cols.len(), 2);
        assert_eq!(
            (cols[1].name.as_str(), cols[1].type_.as_str()),
            ("Age", "date")
        );
    }
}
