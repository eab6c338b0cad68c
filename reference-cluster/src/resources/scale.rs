//! The `scale` subresource: the `autoscaling/v1 Scale` view of Deployments, ReplicaSets,
//! StatefulSets, ReplicationControllers and custom resources with a scale subresource, and
//! writing a new replica count back.

use serde_json::{json, Map, Value};

use super::json::{at, ensure_path, i64_at, string_map};
use super::jsonpath::JsonPath;
use super::labels::LabelSelector;
use super::{FieldError, ResourceInfo};

/// Where a resource keeps its replica counts and selector.
enum Paths {
    /// Built-in workloads: `spec.replicas`, `status.replicas`, and a selector object or map.
    Builtin { selector_is_map: bool },
    Custom {
        spec: JsonPath,
        status: JsonPath,
        selector: Option<JsonPath>,
    },
}

fn paths(info: &ResourceInfo) -> Option<Paths> {
    if !info.has_subresource("scale") {
        return None;
    }
    if let Some(custom) = &info.custom {
        let scale = custom.scale.as_ref()?;
        return Some(Paths::Custom {
            spec: JsonPath::parse(&scale.spec_replicas_path).ok()?,
            status: JsonPath::parse(&scale.status_replicas_path).ok()?,
            selector: scale
                .label_selector_path
                .as_deref()
                .and_then(|p| JsonPath::parse(p).ok()),
        });
    }
    Some(Paths::Builtin {
        selector_is_map: info.group.is_empty() && info.kind == "ReplicationController",
    })
}

fn meta_of(obj: &Value) -> Value {
    let mut meta = Map::new();
    for k in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = at(obj, &format!("metadata.{k}")).filter(|v| !v.is_null()) {
            meta.insert(k.to_string(), v.clone());
        }
    }
    Value::Object(meta)
}

/// The Scale of `obj`, or `None` if the resource has no scale subresource.
pub fn to_scale(info: &ResourceInfo, obj: &Value) -> Option<Value> {
    let (spec_replicas, status_replicas, selector) = match paths(info)? {
        Paths::Builtin { selector_is_map } => {
            let selector = if selector_is_map {
                string_map(obj, "spec.selector")
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            } else {
                LabelSelector::from_json(at(obj, "spec.selector").unwrap_or(&Value::Null))
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            };
            (
                i64_at(obj, "spec.replicas").unwrap_or(1),
                i64_at(obj, "status.replicas").unwrap_or(0),
                selector,
            )
        }
        Paths::Custom {
            spec,
            status,
            selector,
        } => (
            spec.first(obj).and_then(Value::as_i64).unwrap_or(0),
            status.first(obj).and_then(Value::as_i64).unwrap_or(0),
            selector
                .and_then(|p| p.first(obj).and_then(Value::as_str).map(String::from))
                .unwrap_or_default(),
        ),
    };
    let spec = if spec_replicas == 0 {
        json!({})
    } else {
        json!({ "replicas": spec_replicas })
    };
    let mut status = json!({ "replicas": status_replicas });
    if !selector.is_empty() {
        status["selector"] = json!(selector);
    }
    Some(json!({
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": meta_of(obj),
        "spec": spec,
        "status": status,
    }))
}

/// Validates a Scale sent by a client (`spec.replicas` must not be negative).
pub fn validate_scale(scale: &Value) -> Vec<FieldError> {
    match i64_at(scale, "spec.replicas") {
        Some(n) if n < 0 => vec![FieldError::invalid(
            "spec.replicas",
            &Value::from(n),
            "must be greater than or equal to 0",
        )],
        _ => Vec::new(),
    }
}

/// Writes `replicas` into `obj` where its resource keeps the desired count.
pub fn set_replicas(info: &ResourceInfo, obj: &mut Value, replicas: i64) -> Result<(), String> {
    if !obj.is_object() {
        return Err("the object is not a JSON object".into());
    }
    let path = match paths(info).ok_or("the resource has no scale subresource")? {
        Paths::Builtin { .. } => vec!["spec".to_string(), "replicas".to_string()],
        Paths::Custom { spec, .. } => spec
            .field_path()
            .ok_or("the specReplicasPath is not a plain field path")?,
    };
    let (last, parents) = path.split_last().ok_or("empty specReplicasPath")?;
    let parent = ensure_path(obj, &parents.join("."))
        .ok_or("the object has a non-object value along specReplicasPath")?;
    parent[last.as_str()] = json!(replicas);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Catalog;

    #[test]
    fn deployment_scale_view_and_update() {
        let c = Catalog::builtin();
        let info = c.get("apps", "v1", "deployments").unwrap();
        let mut d = json!({"metadata": {"name": "web", "namespace": "ns", "uid": "u", "resourceVersion": "7"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}},
            "status": {"replicas": 2}});
        let scale = to_scale(&info, &d).unwrap();
        assert_eq!(scale["spec"], json!({"replicas": 3}));
        assert_eq!(
            scale["status"],
            json!({"replicas": 2, "selector": "app=web"})
        );
        assert_eq!(scale["metadata"]["resourceVersion"], "7");
        set_replicas(&info, &mut d, 5).unwrap();
        assert_eq!(d["spec"]["replicas"], 5);
        assert!(to_scale(&c.get("", "v1", "pods").unwrap(), &d).is_none());
    }

    #[test]
    fn replication_controller_selector_is_a_map() {
        let c = Catalog::builtin();
        let info = c.get("", "v1", "replicationcontrollers").unwrap();
        let rc = json!({"metadata": {"name": "rc"}, "spec": {"replicas": 0, "selector": {"b": "2", "a": "1"}}});
        let scale = to_scale(&info, &rc).unwrap();
        assert_eq!(scale["spec"], json!({}));
        assert_eq!(scale["status"]["selector"], "a=1,b=2");
    }

    #[test]
    fn custom_resource_scale_paths() {
        let crd = json!({"metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced", "names": {"plural": "widgets", "kind": "Widget"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                    "subresources": {"scale": {"specReplicasPath": ".spec.size", "statusReplicasPath": ".status.size",
                        "labelSelectorPath": ".status.selector"}}}]}});
        let info = crate::resources::crd::infos_from_crd(&crd)
            .unwrap()
            .remove(0);
        let mut w = json!({"metadata": {"name": "w"}, "status": {"size": 1, "selector": "app=w"}});
        let scale = to_scale(&info, &w).unwrap();
        assert_eq!(scale["status"], json!({"replicas": 1, "selector": "app=w"}));
        set_replicas(&info, &mut w, 4).unwrap();
        assert_eq!(w["spec"]["size"], 4);
        assert_eq!(
            validate_scale(&json!({"spec": {"replicas": -1}}))[0].message,
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        );
    }
}
