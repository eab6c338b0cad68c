//! Builders for the unit tests: nodes like the reference cluster registers (4 CPU, 16Gi, 110
//! pods) with overrides merged in, pods in `default`, and a cache holding given nodes.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Node;
use serde_json::{json, Value};

use super::cache::Cache;
use super::podinfo::PodInfo;
use super::queue::Nominator;

/// Deep-merges `extra` into `base` (objects merge, everything else replaces).
pub fn merge(base: &mut Value, extra: Value) {
    match (base, extra) {
        (Value::Object(b), Value::Object(e)) => {
            for (k, v) in e {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, e) => *b = e,
    }
}

pub fn node(name: &str, extra: Value) -> Arc<Node> {
    let mut v = json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {},
        "status": {"allocatable": {"cpu": "4", "memory": "16Gi", "pods": "110", "ephemeral-storage": "100Gi"}},
    });
    // Allocatable given by a test replaces the default entirely.
    if let Some(a) = extra.pointer("/status/allocatable") {
        v["status"]["allocatable"] = a.clone();
    }
    merge(&mut v, extra);
    Arc::new(serde_json::from_value(v).expect("a valid node"))
}

/// A pod named `name` in `default` with this spec.
pub fn pod(name: &str, spec: Value) -> PodInfo {
    pod_in(json!({"name": name}), spec)
}

/// A pod with this metadata (namespace defaults to `default`, uid to the name) and spec.
pub fn pod_in(meta: Value, spec: Value) -> PodInfo {
    let mut m = json!({"namespace": "default"});
    merge(&mut m, meta);
    if m.get("uid").is_none() {
        m["uid"] = m["name"].clone();
    }
    let p = serde_json::from_value(json!({"metadata": m, "spec": spec})).expect("a valid pod");
    PodInfo::new(Arc::new(p), 0)
}

pub fn ctx_for(nodes: Vec<Arc<Node>>) -> (Cache, Nominator) {
    let mut cache = Cache::new();
    for n in nodes {
        cache.upsert_node(n);
    }
    (cache, Nominator::default())
}
