//! Cluster events that can make an unschedulable pod schedulable, and which plugins care about
//! which of them (upstream `framework.ClusterEvent` and `EventsToRegister`). The action bits and
//! their numeric order match upstream, because matching compares them numerically.

use k8s_openapi::api::core::v1::{Node, Pod};

use super::super::resource::pod_requests;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventResource {
    Pod,
    Node,
    PersistentVolume,
    PersistentVolumeClaim,
    StorageClass,
    WildCard,
}

pub type ActionType = u32;

pub const ADD: ActionType = 1;
pub const DELETE: ActionType = 1 << 1;
pub const UPDATE_NODE_ALLOCATABLE: ActionType = 1 << 2;
pub const UPDATE_NODE_LABEL: ActionType = 1 << 3;
pub const UPDATE_NODE_TAINT: ActionType = 1 << 4;
pub const UPDATE_NODE_CONDITION: ActionType = 1 << 5;
pub const UPDATE_NODE_ANNOTATION: ActionType = 1 << 6;
pub const UPDATE_POD_LABEL: ActionType = 1 << 7;
pub const UPDATE_POD_SCALE_DOWN: ActionType = 1 << 8;
pub const UPDATE_POD_TOLERATIONS: ActionType = 1 << 9;
pub const UPDATE_POD_SCHEDULING_GATES_ELIMINATED: ActionType = 1 << 10;
/// Any update.
pub const UPDATE: ActionType = UPDATE_NODE_ALLOCATABLE
    | UPDATE_NODE_LABEL
    | UPDATE_NODE_TAINT
    | UPDATE_NODE_CONDITION
    | UPDATE_NODE_ANNOTATION
    | UPDATE_POD_LABEL
    | UPDATE_POD_SCALE_DOWN
    | UPDATE_POD_TOLERATIONS
    | UPDATE_POD_SCHEDULING_GATES_ELIMINATED;
pub const ALL: ActionType = ADD | DELETE | UPDATE;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClusterEvent {
    pub resource: EventResource,
    pub action: ActionType,
}

impl ClusterEvent {
    pub const fn new(resource: EventResource, action: ActionType) -> ClusterEvent {
        ClusterEvent { resource, action }
    }

    /// The event that moves every pod (the periodic flush of pods unschedulable for too long).
    pub const WILDCARD: ClusterEvent = ClusterEvent::new(EventResource::WildCard, ALL);
    pub const NODE_ADD: ClusterEvent = ClusterEvent::new(EventResource::Node, ADD);
    pub const ASSIGNED_POD_ADD: ClusterEvent = ClusterEvent::new(EventResource::Pod, ADD);
    pub const ASSIGNED_POD_DELETE: ClusterEvent = ClusterEvent::new(EventResource::Pod, DELETE);
    pub const POD_UPDATE: ClusterEvent = ClusterEvent::new(EventResource::Pod, UPDATE);

    pub fn is_wildcard(&self) -> bool {
        self.resource == EventResource::WildCard && self.action == ALL
    }

    /// The `event` label of `scheduler_queue_incoming_pods_total` for pods this event moved,
    /// with upstream's names for its predefined events.
    pub fn label(&self) -> &'static str {
        use EventResource as R;
        match (self.resource, self.action) {
            (R::WildCard, _) => "UnschedulableTimeout",
            (R::Node, ADD) => "NodeAdd",
            (R::Node, DELETE) => "NodeDelete",
            (R::Node, UPDATE_NODE_ALLOCATABLE) => "NodeAllocatableChange",
            (R::Node, UPDATE_NODE_LABEL) => "NodeLabelChange",
            (R::Node, UPDATE_NODE_TAINT) => "NodeTaintChange",
            (R::Node, UPDATE_NODE_CONDITION) => "NodeConditionChange",
            (R::Node, UPDATE_NODE_ANNOTATION) => "NodeAnnotationChange",
            (R::Node, _) => "NodeUpdate",
            (R::Pod, ADD) => "AssignedPodAdd",
            (R::Pod, DELETE) => "AssignedPodDelete",
            (R::Pod, UPDATE_POD_LABEL) => "PodLabelChange",
            (R::Pod, UPDATE_POD_SCALE_DOWN) => "PodRequestScaledDown",
            (R::Pod, UPDATE_POD_TOLERATIONS) => "PodTolerationChange",
            (R::Pod, UPDATE_POD_SCHEDULING_GATES_ELIMINATED) => "PodSchedulingGateEliminatedChange",
            (R::Pod, _) => "AssignedPodUpdate",
            (R::PersistentVolume, ADD) => "PvAdd",
            (R::PersistentVolume, _) => "PvUpdate",
            (R::PersistentVolumeClaim, ADD) => "PvcAdd",
            (R::PersistentVolumeClaim, _) => "PvcUpdate",
            (R::StorageClass, ADD) => "StorageClassAdd",
            (R::StorageClass, _) => "StorageClassUpdate",
        }
    }

    /// Whether `incoming` is this registered event or a more specific form of it (an incoming
    /// generic "update" does not match a registration for label updates only).
    pub fn matches(&self, incoming: &ClusterEvent) -> bool {
        self.is_wildcard()
            || (self.resource == incoming.resource
                && self.action & incoming.action != 0
                && incoming.action <= self.action)
    }
}

fn labels_of_node(n: &Node) -> Option<&std::collections::BTreeMap<String, String>> {
    n.metadata.labels.as_ref()
}

/// What changed between two versions of a node, as scheduling-relevant events (upstream
/// `nodeSchedulingPropertiesChange`). Heartbeats change nothing here, so they move no pods.
pub fn node_update_events(old: &Node, new: &Node) -> Vec<ClusterEvent> {
    let mut out = Vec::new();
    let mut push = |a| out.push(ClusterEvent::new(EventResource::Node, a));
    let spec_unsched = |n: &Node| {
        n.spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false)
    };
    if spec_unsched(old) != spec_unsched(new) {
        push(UPDATE_NODE_TAINT);
    }
    let alloc = |n: &Node| n.status.as_ref().and_then(|s| s.allocatable.clone());
    if alloc(old) != alloc(new) {
        push(UPDATE_NODE_ALLOCATABLE);
    }
    if labels_of_node(old) != labels_of_node(new) {
        push(UPDATE_NODE_LABEL);
    }
    let taints = |n: &Node| {
        n.spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default()
    };
    if taints(old) != taints(new) {
        push(UPDATE_NODE_TAINT);
    }
    let conds = |n: &Node| -> Vec<(String, String)> {
        n.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .map(|c| {
                c.iter()
                    .map(|c| (c.type_.clone(), c.status.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    if conds(old) != conds(new) {
        push(UPDATE_NODE_CONDITION);
    }
    if old.metadata.annotations != new.metadata.annotations {
        push(UPDATE_NODE_ANNOTATION);
    }
    out
}

/// What changed in an unscheduled pod that might let it schedule now (upstream
/// `PodSchedulingPropertiesChange`); a generic pod update when nothing specific changed.
pub fn pod_update_events(old: &Pod, new: &Pod) -> Vec<ClusterEvent> {
    let mut out = Vec::new();
    let mut push = |a| out.push(ClusterEvent::new(EventResource::Pod, a));
    if old.metadata.labels != new.metadata.labels {
        push(UPDATE_POD_LABEL);
    }
    let (o, n) = (pod_requests(old, false), pod_requests(new, false));
    let scaled_down = n.milli_cpu < o.milli_cpu
        || n.memory < o.memory
        || n.ephemeral_storage < o.ephemeral_storage
        || o.scalar.iter().any(|(k, v)| n.scalar(k) < *v);
    if scaled_down {
        push(UPDATE_POD_SCALE_DOWN);
    }
    let tol = |p: &Pod| p.spec.as_ref().and_then(|s| s.tolerations.clone());
    if tol(old) != tol(new) {
        push(UPDATE_POD_TOLERATIONS);
    }
    let gated = |p: &Pod| {
        p.spec
            .as_ref()
            .and_then(|s| s.scheduling_gates.as_ref())
            .is_some_and(|g| !g.is_empty())
    };
    if gated(old) && !gated(new) {
        push(UPDATE_POD_SCHEDULING_GATES_ELIMINATED);
    }
    if out.is_empty() {
        out.push(ClusterEvent::POD_UPDATE);
    }
    out
}

/// The events an update of an assigned pod produces (labels and scale-down matter to
/// spreading, affinity and resource fit).
pub fn assigned_pod_update_events(old: &Pod, new: &Pod) -> Vec<ClusterEvent> {
    pod_update_events(old, new)
        .into_iter()
        .filter(|e| {
            e.action & (UPDATE_POD_LABEL | UPDATE_POD_SCALE_DOWN) != 0
                || *e == ClusterEvent::POD_UPDATE
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn matching_follows_upstream() {
        let label_only = ClusterEvent::new(EventResource::Node, ADD | UPDATE_NODE_LABEL);
        assert!(label_only.matches(&ClusterEvent::new(EventResource::Node, UPDATE_NODE_LABEL)));
        assert!(label_only.matches(&ClusterEvent::NODE_ADD));
        assert!(!label_only.matches(&ClusterEvent::new(EventResource::Node, UPDATE_NODE_TAINT)));
        assert!(
            !label_only.matches(&ClusterEvent::new(EventResource::Node, UPDATE)),
            "generic update is broader"
        );
        assert!(!label_only.matches(&ClusterEvent::ASSIGNED_POD_ADD));
        assert!(ClusterEvent::WILDCARD.matches(&ClusterEvent::ASSIGNED_POD_DELETE));
        assert!(ClusterEvent::new(EventResource::Pod, ALL).matches(&ClusterEvent::POD_UPDATE));
    }

    #[test]
    fn node_heartbeat_is_not_an_event_but_taints_are() {
        let base = json!({"metadata": {"name": "n"}, "status": {"conditions": [
            {"type": "Ready", "status": "True", "lastHeartbeatTime": "2024-01-01T00:00:00Z"}]}});
        let old: Node = serde_json::from_value(base.clone()).unwrap();
        let mut hb = base.clone();
        hb["status"]["conditions"][0]["lastHeartbeatTime"] = json!("2024-01-01T00:00:10Z");
        assert!(node_update_events(&old, &serde_json::from_value(hb).unwrap()).is_empty());
        let mut tainted = base;
        tainted["spec"] = json!({"taints": [{"key": "k", "effect": "NoSchedule"}]});
        let ev = node_update_events(&old, &serde_json::from_value(tainted).unwrap());
        assert_eq!(
            ev,
            vec![ClusterEvent::new(EventResource::Node, UPDATE_NODE_TAINT)]
        );
    }

    #[test]
    fn pod_updates_are_classified() {
        let old: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {
            "containers": [{"name": "c", "resources": {"requests": {"cpu": "2"}}}],
            "schedulingGates": [{"name": "g"}]}}))
        .unwrap();
        let new: Pod = serde_json::from_value(
            json!({"metadata": {"name": "p", "labels": {"a": "b"}}, "spec": {
            "containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]}}),
        )
        .unwrap();
        let actions: Vec<_> = pod_update_events(&old, &new)
            .iter()
            .map(|e| e.action)
            .collect();
        assert_eq!(
            actions,
            vec![
                UPDATE_POD_LABEL,
                UPDATE_POD_SCALE_DOWN,
                UPDATE_POD_SCHEDULING_GATES_ELIMINATED
            ]
        );
        assert_eq!(
            pod_update_events(&old, &old),
            vec![ClusterEvent::POD_UPDATE]
        );
    }
}
