//! DefaultTolerationSeconds: pods tolerate `node.kubernetes.io/not-ready` and
//! `node.kubernetes.io/unreachable` NoExecute taints for 300 s unless they say otherwise.

use serde_json::{json, Value};

use super::{Attributes, Operation};

pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// Upstream's `--default-not-ready-toleration-seconds` and `--default-unreachable-…` default.
pub const DEFAULT_SECONDS: i64 = 300;

/// Adds the default tolerations to a pod being created.
pub fn admit(attrs: &Attributes, pod: &mut Value) {
    if !(attrs.is("", "pods")
        && attrs.subresource.is_empty()
        && attrs.operation == Operation::Create)
    {
        return;
    }
    let tolerations = pod
        .pointer("/spec/tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    // An empty key or effect in a toleration matches every key or effect.
    let tolerates = |key: &str| {
        tolerations.iter().any(|t| {
            let k = t.get("key").and_then(Value::as_str).unwrap_or_default();
            let e = t.get("effect").and_then(Value::as_str).unwrap_or_default();
            (k == key || k.is_empty()) && (e == "NoExecute" || e.is_empty())
        })
    };
    let mut added = Vec::new();
    for key in [NOT_READY, UNREACHABLE] {
        if !tolerates(key) {
            added.push(json!({
                "key": key,
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": DEFAULT_SECONDS,
            }));
        }
    }
    if added.is_empty() {
        return;
    }
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let list = spec.entry("tolerations").or_insert_with(|| json!([]));
    if !list.is_array() {
        *list = json!([]);
    }
    if let Some(arr) = list.as_array_mut() {
        arr.extend(added);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::UserInfo;

    fn create() -> Attributes {
        Attributes::core(
            Operation::Create,
            "pods",
            "Pod",
            "ns",
            "p",
            UserInfo::new("u", &[]),
        )
    }

    #[test]
    fn adds_both_defaults() {
        let mut pod = json!({"spec": {"containers": []}});
        admit(&create(), &mut pod);
        assert_eq!(
            pod["spec"]["tolerations"],
            json!([
                {"key": NOT_READY, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            ])
        );
    }

    #[test]
    fn keeps_explicit_tolerations() {
        let mut pod = json!({"spec": {"tolerations": [
            {"key": NOT_READY, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}
        ]}});
        admit(&create(), &mut pod);
        let t = pod["spec"]["tolerations"].as_array().unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0]["tolerationSeconds"], 5);
        assert_eq!(t[1]["key"], UNREACHABLE);
        // A toleration of everything tolerates both.
        let mut all = json!({"spec": {"tolerations": [{"operator": "Exists"}]}});
        admit(&create(), &mut all);
        assert_eq!(all["spec"]["tolerations"].as_array().unwrap().len(), 1);
        // Updates are left alone.
        let mut upd = json!({"spec": {}});
        let mut a = create();
        a.operation = Operation::Update;
        admit(&a, &mut upd);
        assert_eq!(upd, json!({"spec": {}}));
    }
}
