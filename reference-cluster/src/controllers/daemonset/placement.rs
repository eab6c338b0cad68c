//! Where a DaemonSet runs: the nodes whose labels, affinity and taints the daemon pod fits
//! (with the tolerations every daemon pod gets), the node affinity that pins each pod to its
//! node, and which node a pod is meant for.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, PodSpec,
    Toleration,
};

use crate::controllers::nodelifecycle::taints::{self, tolerates};

/// Tolerations upstream adds to every daemon pod (`AddOrUpdateDaemonPodTolerations`).
pub fn add_daemon_tolerations(spec: &mut PodSpec) {
    let mut wanted: Vec<(&str, &str)> = vec![
        (taints::NOT_READY, "NoExecute"),
        (taints::UNREACHABLE, "NoExecute"),
        (taints::DISK_PRESSURE, "NoSchedule"),
        (taints::MEMORY_PRESSURE, "NoSchedule"),
        (taints::PID_PRESSURE, "NoSchedule"),
        (taints::UNSCHEDULABLE, "NoSchedule"),
    ];
    if spec.host_network == Some(true) {
        wanted.push((taints::NETWORK_UNAVAILABLE, "NoSchedule"));
    }
    let list = spec.tolerations.get_or_insert_with(Vec::new);
    for (key, effect) in wanted {
        let t = Toleration {
            key: Some(key.into()),
            operator: Some("Exists".into()),
            effect: Some(effect.into()),
            value: None,
            toleration_seconds: None,
        };
        // Replace a toleration for the same key and effect (it may carry tolerationSeconds).
        list.retain(|x| !(x.key.as_deref() == Some(key) && x.effect.as_deref() == Some(effect)));
        list.push(t);
    }
}

/// Pins the pod to `node` (`ReplaceDaemonSetPodNodeNameNodeAffinity`).
pub fn pin_to_node(spec: &mut PodSpec, node: &str) {
    let term = NodeSelectorTerm {
        match_expressions: None,
        match_fields: Some(vec![NodeSelectorRequirement {
            key: "metadata.name".into(),
            operator: "In".into(),
            values: Some(vec![node.to_string()]),
        }]),
    };
    let affinity = spec.affinity.get_or_insert_with(Affinity::default);
    let na = affinity
        .node_affinity
        .get_or_insert_with(NodeAffinity::default);
    na.required_during_scheduling_ignored_during_execution = Some(NodeSelector {
        node_selector_terms: vec![term],
    });
}

/// The node a daemon pod is for: its nodeName, or the node its affinity pins it to.
pub fn target_node(spec: &PodSpec) -> Option<String> {
    if let Some(n) = spec.node_name.clone().filter(|n| !n.is_empty()) {
        return Some(n);
    }
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    terms.iter().find_map(|t| {
        t.match_fields.iter().flatten().find_map(|r| {
            (r.key == "metadata.name" && r.operator == "In")
                .then(|| {
                    r.values
                        .as_ref()
                        .and_then(|v| (v.len() == 1).then(|| v[0].clone()))
                })
                .flatten()
        })
    })
}

fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&String>) -> bool {
    let values = r.values.clone().unwrap_or_default();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.contains(v)),
        "NotIn" => value.is_none_or(|v| !values.contains(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), Some(bound)) = (
                value.and_then(|v| v.parse::<i64>().ok()),
                values.first().and_then(|b| b.parse::<i64>().ok()),
            ) else {
                return false;
            };
            if r.operator == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

/// A node selector: any term matches when all its requirements do; an empty term matches
/// nothing.
fn selector_matches(sel: &NodeSelector, node: &Node) -> bool {
    let labels: BTreeMap<String, String> = node.metadata.labels.clone().unwrap_or_default();
    let name = node.metadata.name.clone();
    sel.node_selector_terms.iter().any(|t| {
        let exprs = t.match_expressions.clone().unwrap_or_default();
        let fields = t.match_fields.clone().unwrap_or_default();
        if exprs.is_empty() && fields.is_empty() {
            return false;
        }
        exprs
            .iter()
            .all(|r| requirement_matches(r, labels.get(&r.key)))
            && fields
                .iter()
                .all(|r| r.key == "metadata.name" && requirement_matches(r, name.as_ref()))
    })
}

/// (should run, should keep running): the pod fits the node (name, selector, affinity, all
/// taints); an existing pod may stay while it tolerates the NoExecute taints.
pub fn node_should_run(spec: &PodSpec, node: &Node) -> (bool, bool) {
    let name = node.metadata.name.clone().unwrap_or_default();
    if spec
        .node_name
        .as_deref()
        .is_some_and(|n| !n.is_empty() && n != name)
    {
        return (false, false);
    }
    let labels = node.metadata.labels.clone().unwrap_or_default();
    if let Some(sel) = &spec.node_selector {
        if !sel.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            return (false, false);
        }
    }
    if let Some(req) = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| {
            na.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
    {
        if !selector_matches(req, node) {
            return (false, false);
        }
    }
    let tolerations = spec.tolerations.clone().unwrap_or_default();
    let node_taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let untolerated = |effect: &str| {
        node_taints
            .iter()
            .filter(|t| t.effect == effect)
            .any(|t| !tolerations.iter().any(|x| tolerates(x, t)))
    };
    let keep = !untolerated("NoExecute");
    let run = keep && !untolerated("NoSchedule");
    (run, keep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(v: serde_json::Value) -> Node {
        serde_json::from_value(v).unwrap()
    }

    fn spec(v: serde_json::Value) -> PodSpec {
        let mut s: PodSpec = serde_json::from_value(v).unwrap();
        add_daemon_tolerations(&mut s);
        s
    }

    #[test]
    fn selectors_affinity_and_taints_decide() {
        let gpu = node(json!({"metadata": {"name": "g1", "labels": {"gpu": "yes", "zone": "a"}}}));
        let plain = node(json!({"metadata": {"name": "p1", "labels": {"zone": "b"}}}));
        let s = spec(json!({"containers": [], "nodeSelector": {"gpu": "yes"}}));
        assert_eq!(node_should_run(&s, &gpu), (true, true));
        assert_eq!(node_should_run(&s, &plain), (false, false));
        let a = spec(
            json!({"containers": [], "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
            {"nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]}]}}}}),
        );
        assert!(!node_should_run(&a, &gpu).0);
        assert!(node_should_run(&a, &plain).0);
        let tainted = node(
            json!({"metadata": {"name": "t"}, "spec": {"taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]}}),
        );
        assert_eq!(
            node_should_run(&spec(json!({"containers": []})), &tainted),
            (false, true),
            "existing pods stay"
        );
        let evicting = node(
            json!({"metadata": {"name": "e"}, "spec": {"taints": [{"key": "dedicated", "effect": "NoExecute"}]}}),
        );
        assert_eq!(
            node_should_run(&spec(json!({"containers": []})), &evicting),
            (false, false)
        );
        // Daemon pods tolerate the node lifecycle taints.
        let unreachable = node(json!({"metadata": {"name": "u"}, "spec": {"taints": [
            {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"},
            {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]}}));
        assert_eq!(
            node_should_run(&spec(json!({"containers": []})), &unreachable),
            (true, true)
        );
    }

    #[test]
    fn pods_are_pinned_to_their_node() {
        let mut s = spec(
            json!({"containers": [], "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
            {"nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}}}),
        );
        assert_eq!(target_node(&s), None);
        pin_to_node(&mut s, "n7");
        assert_eq!(target_node(&s).as_deref(), Some("n7"));
        let terms = &s
            .affinity
            .unwrap()
            .node_affinity
            .unwrap()
            .required_during_scheduling_ignored_during_execution
            .unwrap()
            .node_selector_terms;
        assert_eq!(terms.len(), 1);
    }
}
