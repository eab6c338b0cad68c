//! Pod admission on the node (upstream `lifecycle.PredicateAdmitHandler` with
//! `generalFilter`): the pod must fit the node's allocatable resources next to the pods already
//! admitted, match its nodeSelector/required node affinity and name, and tolerate its
//! `NoExecute` taints. A rejected pod ends `Failed` with upstream's reason (`OutOfcpu`,
//! `OutOfpods`, `NodeAffinity`, …) and message `Pod was rejected: …`.

use k8s_openapi::api::core::v1::{Pod, Taint};

use crate::scheduler::resource::{pod_requests, Resource};
use crate::scheduler::selector::{tolerations_tolerate, Labels, RequiredNodeAffinity};

/// What the node offers and already gives out.
pub struct NodeView<'a> {
    pub name: &'a str,
    pub labels: Option<&'a Labels>,
    pub taints: &'a [Taint],
    pub allocatable: &'a Resource,
    pub requested: &'a Resource,
    pub pod_count: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub reason: String,
    pub message: String,
}

impl Rejection {
    /// `status.message` of the rejected pod.
    pub fn status_message(&self) -> String {
        format!("Pod was rejected: {}", self.message)
    }
}

fn insufficient(resource: &str, requested: i64, used: i64, capacity: i64) -> Rejection {
    Rejection {
        reason: format!("OutOf{resource}"),
        message: format!("Node didn't have enough resource: {resource}, requested: {requested}, used: {used}, capacity: {capacity}"),
    }
}

fn predicate(name: &str, desc: &str) -> Rejection {
    Rejection {
        reason: name.to_string(),
        message: format!("Predicate {name} failed: {desc}"),
    }
}

/// Admits `pod` onto the node, or says why not (the first failure, as the kubelet reports).
/// `requests` are the pod's requests (`pod_requests(pod, false)`).
pub fn admit(pod: &Pod, requests: &Resource, node: &NodeView<'_>) -> Result<(), Rejection> {
    let alloc = node.allocatable;
    let used = node.requested;
    if node.pod_count as i64 + 1 > alloc.allowed_pod_number {
        return Err(insufficient(
            "pods",
            1,
            node.pod_count as i64,
            alloc.allowed_pod_number,
        ));
    }
    let checks = [
        ("cpu", requests.milli_cpu, used.milli_cpu, alloc.milli_cpu),
        ("memory", requests.memory, used.memory, alloc.memory),
        (
            "ephemeral-storage",
            requests.ephemeral_storage,
            used.ephemeral_storage,
            alloc.ephemeral_storage,
        ),
    ];
    for (name, req, used, cap) in checks {
        if req > 0 && req > cap.saturating_sub(used) {
            return Err(insufficient(name, req, used, cap));
        }
    }
    for (name, req) in &requests.scalar {
        // The kubelet drops extended resources the node does not know before it checks.
        if *req == 0 || !alloc.scalar.contains_key(name) && !name.starts_with("hugepages-") {
            continue;
        }
        let cap = alloc.scalar(name);
        let used = used.scalar(name);
        if *req > cap.saturating_sub(used) {
            return Err(insufficient(name, *req, used, cap));
        }
    }
    if !RequiredNodeAffinity::of(pod).matches(node.name, node.labels) {
        return Err(predicate(
            "NodeAffinity",
            "node(s) didn't match Pod's node affinity/selector",
        ));
    }
    let bound_to = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("");
    if !bound_to.is_empty() && bound_to != node.name {
        return Err(predicate(
            "NodeName",
            "node(s) didn't match the requested node name",
        ));
    }
    let tolerations = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or_default();
    if node
        .taints
        .iter()
        .any(|t| t.effect == "NoExecute" && !tolerations_tolerate(tolerations, t))
    {
        return Err(predicate(
            "TaintToleration",
            "node(s) had taints that the pod didn't tolerate",
        ));
    }
    Ok(())
}

/// The pod's requests as admission counts them.
pub fn requests_of(pod: &Pod) -> Resource {
    pod_requests(pod, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(spec: serde_json::Value) -> Pod {
        let mut spec = spec;
        if spec.get("containers").is_none() {
            spec["containers"] = json!([{"name": "c", "image": "i"}]);
        }
        spec["nodeName"] = json!("node-0");
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": spec})).unwrap()
    }

    fn alloc() -> Resource {
        Resource {
            milli_cpu: 4000,
            memory: 16 << 30,
            ephemeral_storage: 100 << 30,
            allowed_pod_number: 110,
            ..Default::default()
        }
    }

    fn check(
        p: &Pod,
        used: &Resource,
        count: usize,
        labels: &Labels,
        taints: &[Taint],
    ) -> Result<(), Rejection> {
        let a = alloc();
        admit(
            p,
            &requests_of(p),
            &NodeView {
                name: "node-0",
                labels: Some(labels),
                taints,
                allocatable: &a,
                requested: used,
                pod_count: count,
            },
        )
    }

    #[test]
    fn resources_must_fit_next_to_admitted_pods() {
        let p = pod(
            json!({"containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "2"}}}]}),
        );
        let labels = Labels::new();
        assert!(check(&p, &Resource::default(), 0, &labels, &[]).is_ok());
        let used = Resource {
            milli_cpu: 3500,
            ..Default::default()
        };
        let r = check(&p, &used, 3, &labels, &[]).unwrap_err();
        assert_eq!(r.reason, "OutOfcpu");
        assert_eq!(r.status_message(), "Pod was rejected: Node didn't have enough resource: cpu, requested: 2000, used: 3500, capacity: 4000");
        let r = check(&pod(json!({})), &Resource::default(), 110, &labels, &[]).unwrap_err();
        assert_eq!(
            (r.reason.as_str(), r.message.as_str()),
            (
                "OutOfpods",
                "Node didn't have enough resource: pods, requested: 1, used: 110, capacity: 110"
            )
        );
        let gpu = pod(
            json!({"containers": [{"name": "c", "image": "i", "resources": {"requests": {"example.com/gpu": "1"}, "limits": {"example.com/gpu": "1"}}}]}),
        );
        assert!(
            check(&gpu, &Resource::default(), 0, &labels, &[]).is_ok(),
            "unknown extended resources are dropped"
        );
    }

    #[test]
    fn selectors_affinity_and_no_execute_taints_are_checked() {
        let labels: Labels = [("disk".to_string(), "ssd".to_string())].into();
        assert!(check(
            &pod(json!({"nodeSelector": {"disk": "ssd"}})),
            &Resource::default(),
            0,
            &labels,
            &[]
        )
        .is_ok());
        let r = check(
            &pod(json!({"nodeSelector": {"disk": "hdd"}})),
            &Resource::default(),
            0,
            &labels,
            &[],
        )
        .unwrap_err();
        assert_eq!(r.reason, "NodeAffinity");
        assert_eq!(
            r.message,
            "Predicate NodeAffinity failed: node(s) didn't match Pod's node affinity/selector"
        );
        let taint: Taint =
            serde_json::from_value(json!({"key": "k", "value": "v", "effect": "NoExecute"}))
                .unwrap();
        let r = check(
            &pod(json!({})),
            &Resource::default(),
            0,
            &labels,
            std::slice::from_ref(&taint),
        )
        .unwrap_err();
        assert_eq!(r.reason, "TaintToleration");
        let tolerant = pod(json!({"tolerations": [{"key": "k", "operator": "Exists"}]}));
        assert!(check(&tolerant, &Resource::default(), 0, &labels, &[taint]).is_ok());
        let no_schedule: Taint =
            serde_json::from_value(json!({"key": "k", "effect": "NoSchedule"})).unwrap();
        assert!(
            check(
                &pod(json!({})),
                &Resource::default(),
                0,
                &labels,
                &[no_schedule]
            )
            .is_ok(),
            "only NoExecute matters here"
        );
    }
}
