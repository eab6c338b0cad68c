//! Conversions between API versions that share one storage: core `v1` Events and
//! `events.k8s.io/v1` Events (stored as core events, as upstream does), and
//! `autoscaling/v1` / `autoscaling/v2` HorizontalPodAutoscalers (stored as v2).
//!
//! Field mappings follow upstream's conversion functions; fields one side cannot express are
//! carried in the annotations upstream uses (`autoscaling.alpha.kubernetes.io/...`) only where
//! upstream does so, otherwise dropped.

use serde_json::{json, Map, Value};

use super::json::{array_at, at, i64_at, str_at};

fn copy(from: &Value, from_key: &str, to: &mut Map<String, Value>, to_key: &str) {
    if let Some(v) = from.get(from_key) {
        if !v.is_null() {
            to.insert(to_key.to_string(), v.clone());
        }
    }
}

/// `events.k8s.io/v1` Event → core `v1` Event.
pub fn event_v1_to_core(ev: &Value) -> Value {
    let mut out = Map::new();
    out.insert("apiVersion".into(), json!("v1"));
    out.insert("kind".into(), json!("Event"));
    copy(ev, "metadata", &mut out, "metadata");
    copy(ev, "regarding", &mut out, "involvedObject");
    copy(ev, "reason", &mut out, "reason");
    copy(ev, "note", &mut out, "message");
    copy(ev, "deprecatedSource", &mut out, "source");
    copy(ev, "deprecatedFirstTimestamp", &mut out, "firstTimestamp");
    copy(ev, "deprecatedLastTimestamp", &mut out, "lastTimestamp");
    copy(ev, "deprecatedCount", &mut out, "count");
    copy(ev, "type", &mut out, "type");
    copy(ev, "eventTime", &mut out, "eventTime");
    copy(ev, "series", &mut out, "series");
    copy(ev, "action", &mut out, "action");
    copy(ev, "related", &mut out, "related");
    copy(ev, "reportingController", &mut out, "reportingComponent");
    copy(ev, "reportingInstance", &mut out, "reportingInstance");
    Value::Object(out)
}

/// Core `v1` Event → `events.k8s.io/v1` Event.
pub fn event_core_to_v1(ev: &Value) -> Value {
    let mut out = Map::new();
    out.insert("apiVersion".into(), json!("events.k8s.io/v1"));
    out.insert("kind".into(), json!("Event"));
    copy(ev, "metadata", &mut out, "metadata");
    copy(ev, "eventTime", &mut out, "eventTime");
    copy(ev, "series", &mut out, "series");
    copy(ev, "reportingComponent", &mut out, "reportingController");
    copy(ev, "reportingInstance", &mut out, "reportingInstance");
    copy(ev, "action", &mut out, "action");
    copy(ev, "reason", &mut out, "reason");
    copy(ev, "involvedObject", &mut out, "regarding");
    copy(ev, "related", &mut out, "related");
    copy(ev, "message", &mut out, "note");
    copy(ev, "type", &mut out, "type");
    if at(ev, "source").is_some_and(|s| !super::json::is_empty(s)) {
        copy(ev, "source", &mut out, "deprecatedSource");
    }
    copy(ev, "firstTimestamp", &mut out, "deprecatedFirstTimestamp");
    copy(ev, "lastTimestamp", &mut out, "deprecatedLastTimestamp");
    if i64_at(ev, "count").is_some_and(|c| c != 0) {
        copy(ev, "count", &mut out, "deprecatedCount");
    }
    Value::Object(out)
}

/// Accepts either event shape and returns the core one (used by printing and field selection).
pub fn event_as_core(ev: &Value) -> Value {
    if str_at(ev, "apiVersion") == Some("events.k8s.io/v1")
        || (ev.get("regarding").is_some() && ev.get("involvedObject").is_none())
    {
        event_v1_to_core(ev)
    } else {
        ev.clone()
    }
}

const HPA_CURRENT_METRICS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/current-metrics";
const HPA_METRICS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/metrics";
const HPA_CONDITIONS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/conditions";
const HPA_BEHAVIOR_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/behavior";

fn is_cpu_utilization(metric: &Value) -> bool {
    str_at(metric, "type") == Some("Resource")
        && str_at(metric, "resource.name") == Some("cpu")
        && str_at(metric, "resource.target.type") == Some("Utilization")
}

/// `autoscaling/v2` HPA → `autoscaling/v1`: the CPU utilisation target moves to
/// `targetCPUUtilizationPercentage`; other metrics and conditions go to annotations.
pub fn hpa_v2_to_v1(hpa: &Value) -> Value {
    let mut out = hpa.clone();
    let Some(obj) = out.as_object_mut() else {
        return out;
    };
    obj.insert("apiVersion".into(), json!("autoscaling/v1"));
    let spec = hpa.get("spec").cloned().unwrap_or(json!({}));
    let mut new_spec = Map::new();
    copy(&spec, "scaleTargetRef", &mut new_spec, "scaleTargetRef");
    copy(&spec, "minReplicas", &mut new_spec, "minReplicas");
    copy(&spec, "maxReplicas", &mut new_spec, "maxReplicas");
    let metrics = array_at(&spec, "metrics");
    let mut others = Vec::new();
    for m in metrics {
        if is_cpu_utilization(m) && !new_spec.contains_key("targetCPUUtilizationPercentage") {
            if let Some(u) = at(m, "resource.target.averageUtilization") {
                new_spec.insert("targetCPUUtilizationPercentage".into(), u.clone());
            }
        } else {
            others.push(m.clone());
        }
    }
    let mut annotations: Vec<(String, String)> = Vec::new();
    if !others.is_empty() {
        annotations.push((
            HPA_METRICS_ANNOTATION.into(),
            Value::Array(others).to_string(),
        ));
    }
    if let Some(b) = spec.get("behavior").filter(|b| !b.is_null()) {
        annotations.push((HPA_BEHAVIOR_ANNOTATION.into(), b.to_string()));
    }
    obj.insert("spec".into(), Value::Object(new_spec));

    let status = hpa.get("status").cloned().unwrap_or(json!({}));
    let mut new_status = Map::new();
    copy(
        &status,
        "observedGeneration",
        &mut new_status,
        "observedGeneration",
    );
    copy(&status, "lastScaleTime", &mut new_status, "lastScaleTime");
    new_status.insert(
        "currentReplicas".into(),
        json!(i64_at(&status, "currentReplicas").unwrap_or(0)),
    );
    new_status.insert(
        "desiredReplicas".into(),
        json!(i64_at(&status, "desiredReplicas").unwrap_or(0)),
    );
    let mut other_current = Vec::new();
    for m in array_at(&status, "currentMetrics") {
        let cpu =
            str_at(m, "type") == Some("Resource") && str_at(m, "resource.name") == Some("cpu");
        match at(m, "resource.current.averageUtilization") {
            Some(u) if cpu => {
                new_status.insert("currentCPUUtilizationPercentage".into(), u.clone());
            }
            _ => other_current.push(m.clone()),
        }
    }
    if !other_current.is_empty() {
        annotations.push((
            HPA_CURRENT_METRICS_ANNOTATION.into(),
            Value::Array(other_current).to_string(),
        ));
    }
    if let Some(c) = status
        .get("conditions")
        .filter(|c| !super::json::is_empty(c))
    {
        annotations.push((HPA_CONDITIONS_ANNOTATION.into(), c.to_string()));
    }
    obj.insert("status".into(), Value::Object(new_status));
    if !annotations.is_empty() {
        if let Some(meta) = super::json::ensure_object(&mut out, "metadata") {
            if let Some(ann) = super::json::ensure_object(meta, "annotations") {
                if let Some(ann) = ann.as_object_mut() {
                    for (k, v) in annotations {
                        ann.insert(k, Value::String(v));
                    }
                }
            }
        }
    }
    out
}

/// `autoscaling/v1` HPA → `autoscaling/v2` (the storage version), restoring what
/// [`hpa_v2_to_v1`] parked in annotations.
pub fn hpa_v1_to_v2(hpa: &Value) -> Value {
    let mut out = hpa.clone();
    let Some(obj) = out.as_object_mut() else {
        return out;
    };
    obj.insert("apiVersion".into(), json!("autoscaling/v2"));
    let mut annotations = obj
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut take = |key: &str| -> Option<Value> {
        annotations
            .remove(key)
            .and_then(|v| v.as_str().and_then(|s| serde_json::from_str(s).ok()))
    };
    let extra_metrics = take(HPA_METRICS_ANNOTATION);
    let behavior = take(HPA_BEHAVIOR_ANNOTATION);
    let extra_current = take(HPA_CURRENT_METRICS_ANNOTATION);
    let conditions = take(HPA_CONDITIONS_ANNOTATION);

    let spec = hpa.get("spec").cloned().unwrap_or(json!({}));
    let mut new_spec = Map::new();
    copy(&spec, "scaleTargetRef", &mut new_spec, "scaleTargetRef");
    copy(&spec, "minReplicas", &mut new_spec, "minReplicas");
    copy(&spec, "maxReplicas", &mut new_spec, "maxReplicas");
    let mut metrics = Vec::new();
    if let Some(t) = spec
        .get("targetCPUUtilizationPercentage")
        .filter(|t| !t.is_null())
    {
        metrics.push(json!({"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": t}}}));
    }
    if let Some(Value::Array(extra)) = extra_metrics {
        metrics.extend(extra);
    }
    if !metrics.is_empty() {
        new_spec.insert("metrics".into(), Value::Array(metrics));
    }
    if let Some(b) = behavior {
        new_spec.insert("behavior".into(), b);
    }
    obj.insert("spec".into(), Value::Object(new_spec));

    let status = hpa.get("status").cloned().unwrap_or(json!({}));
    let mut new_status = Map::new();
    copy(
        &status,
        "observedGeneration",
        &mut new_status,
        "observedGeneration",
    );
    copy(&status, "lastScaleTime", &mut new_status, "lastScaleTime");
    copy(
        &status,
        "currentReplicas",
        &mut new_status,
        "currentReplicas",
    );
    new_status.insert(
        "desiredReplicas".into(),
        json!(i64_at(&status, "desiredReplicas").unwrap_or(0)),
    );
    let mut current = Vec::new();
    if let Some(u) = status
        .get("currentCPUUtilizationPercentage")
        .filter(|u| !u.is_null())
    {
        current.push(json!({"type": "Resource", "resource": {"name": "cpu",
            "current": {"averageUtilization": u}}}));
    }
    if let Some(Value::Array(extra)) = extra_current {
        current.extend(extra);
    }
    if !current.is_empty() {
        new_status.insert("currentMetrics".into(), Value::Array(current));
    }
    if let Some(c) = conditions {
        new_status.insert("conditions".into(), c);
    }
    obj.insert("status".into(), Value::Object(new_status));
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if annotations.is_empty() {
            meta.remove("annotations");
        } else {
            meta.insert("annotations".into(), Value::Object(annotations));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_between_versions() {
        let v1 = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e", "namespace": "ns"},
            "regarding": {"kind": "Pod", "name": "p"},
            "note": "pulled", "reason": "Pulled", "type": "Normal",
            "reportingController": "kubelet", "reportingInstance": "n1",
            "eventTime": "2024-01-01T00:00:00.000000Z", "action": "Pull"
        });
        let core = event_v1_to_core(&v1);
        assert_eq!(core["involvedObject"]["name"], "p");
        assert_eq!(core["message"], "pulled");
        assert_eq!(core["reportingComponent"], "kubelet");
        let back = event_core_to_v1(&core);
        assert_eq!(back, v1);
    }

    #[test]
    fn hpa_cpu_target_maps_to_v1_field_and_back() {
        let v2 = json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "h"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "d", "apiVersion": "apps/v1"},
                     "minReplicas": 1, "maxReplicas": 5,
                     "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 60}}}]},
            "status": {"currentReplicas": 2, "desiredReplicas": 3}
        });
        let v1 = hpa_v2_to_v1(&v2);
        assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 60);
        assert_eq!(v1["status"]["desiredReplicas"], 3);
        assert!(v1["metadata"].get("annotations").is_none());
        let back = hpa_v1_to_v2(&v1);
        assert_eq!(back["spec"], v2["spec"]);
    }

    #[test]
    fn hpa_memory_metric_survives_v1_via_annotation() {
        let v2 = json!({"apiVersion": "autoscaling/v2", "metadata": {"name": "h"},
            "spec": {"maxReplicas": 3, "metrics": [{"type": "Resource", "resource": {"name": "memory",
                "target": {"type": "AverageValue", "averageValue": "100Mi"}}}]}});
        let v1 = hpa_v2_to_v1(&v2);
        assert!(v1["metadata"]["annotations"][HPA_METRICS_ANNOTATION].is_string());
        let back = hpa_v1_to_v2(&v1);
        assert_eq!(back["spec"]["metrics"], v2["spec"]["metrics"]);
        assert!(back["metadata"].get("annotations").is_none());
    }
}
