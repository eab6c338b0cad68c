//! The small node-level plugins: NodeName, NodeUnschedulable, NodePorts, SchedulingGates,
//! PrioritySort (ordering itself lives in the queue) and ImageLocality.

use k8s_openapi::api::core::v1::Taint;

use crate::scheduler::framework::events::{
    EventResource, ADD, DELETE, UPDATE, UPDATE_NODE_TAINT, UPDATE_POD_SCHEDULING_GATES_ELIMINATED,
    UPDATE_POD_TOLERATIONS,
};
use crate::scheduler::framework::{
    points, ClusterEvent, Ctx, CycleState, Plugin, Status, MAX_NODE_SCORE,
};
use crate::scheduler::nodeinfo::NodeInfo;
use crate::scheduler::podinfo::PodInfo;
use crate::scheduler::selector::tolerations_tolerate;

/// Pods with `spec.nodeName` set only fit that node.
pub struct NodeName;

pub const NODE_NAME_REASON: &str = "node(s) didn't match the requested node name";

impl Plugin for NodeName {
    fn name(&self) -> &'static str {
        "NodeName"
    }
    fn points(&self) -> u32 {
        points::FILTER
    }
    fn events_to_register(&self) -> Vec<ClusterEvent> {
        vec![ClusterEvent::new(EventResource::Node, ADD | UPDATE)]
    }
    fn filter(&self, _ctx: &Ctx, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let wanted = pod.node_name();
        if wanted.is_empty() || wanted == node.name() {
            Status::success()
        } else {
            Status::unresolvable(NODE_NAME_REASON)
        }
    }
}

/// Cordoned nodes (`spec.unschedulable`) take only pods tolerating the unschedulable taint.
pub struct NodeUnschedulable;

pub const UNSCHEDULABLE_REASON: &str = "node(s) were unschedulable";

impl Plugin for NodeUnschedulable {
    fn name(&self) -> &'static str {
        "NodeUnschedulable"
    }
    fn points(&self) -> u32 {
        points::FILTER
    }
    fn events_to_register(&self) -> Vec<ClusterEvent> {
        vec![
            ClusterEvent::new(EventResource::Node, ADD | UPDATE_NODE_TAINT),
            ClusterEvent::new(EventResource::Pod, UPDATE_POD_TOLERATIONS),
        ]
    }
    fn filter(&self, _ctx: &Ctx, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        if !node.unschedulable() {
            return Status::success();
        }
        let taint = Taint {
            key: "node.kubernetes.io/unschedulable".into(),
            effect: "NoSchedule".into(),
            value: None,
            time_added: None,
        };
        if tolerations_tolerate(pod.tolerations(), &taint) {
            Status::success()
        } else {
            Status::unresolvable(UNSCHEDULABLE_REASON)
        }
    }
}

/// Host ports must be free on the node.
pub struct NodePorts;

pub const NODE_PORTS_REASON: &str = "node(s) didn't have free ports for the requested pod ports";

impl Plugin for NodePorts {
    fn name(&self) -> &'static str {
        "NodePorts"
    }
    fn points(&self) -> u32 {
        points::FILTER
    }
    fn events_to_register(&self) -> Vec<ClusterEvent> {
        vec![
            ClusterEvent::new(EventResource::Pod, DELETE),
            ClusterEvent::new(EventResource::Node, ADD | UPDATE),
        ]
    }
    fn filter(&self, _ctx: &Ctx, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let conflict = pod
            .host_ports
            .iter()
            .any(|want| node.used_ports.iter().any(|used| used.conflicts(want)));
        if conflict {
            Status::unschedulable(NODE_PORTS_REASON)
        } else {
            Status::success()
        }
    }
}

/// Pods with `spec.schedulingGates` are not attempted until the gates are removed.
pub struct SchedulingGates;

impl Plugin for SchedulingGates {
    fn name(&self) -> &'static str {
        "SchedulingGates"
    }
    fn points(&self) -> u32 {
        points::PRE_ENQUEUE
    }
    fn events_to_register(&self) -> Vec<ClusterEvent> {
        vec![ClusterEvent::new(
            EventResource::Pod,
            UPDATE_POD_SCHEDULING_GATES_ELIMINATED,
        )]
    }
    fn pre_enqueue(&self, pod: &PodInfo) -> Status {
        let gates: Vec<&str> = pod
            .pod
            .spec
            .iter()
            .flat_map(|s| s.scheduling_gates.iter().flatten())
            .map(|g| g.name.as_str())
            .collect();
        if gates.is_empty() {
            Status::success()
        } else {
            Status::unresolvable(format!(
                "waiting for scheduling gates: [{}]",
                gates.join(" ")
            ))
        }
    }
}

/// Queue order by priority, then time of arrival. The queue implements the ordering; the
/// plugin exists so configurations naming it are accepted.
pub struct PrioritySort;

impl Plugin for PrioritySort {
    fn name(&self) -> &'static str {
        "PrioritySort"
    }
    fn points(&self) -> u32 {
        points::QUEUE_SORT
    }
}

/// Prefers nodes that already hold the pod's images, weighted by how widely each image is
/// spread (so one node holding a popular image does not attract everything).
pub struct ImageLocality;

const MB: i64 = 1024 * 1024;
const MIN_THRESHOLD: i64 = 23 * MB;
const MAX_CONTAINER_THRESHOLD: i64 = 1000 * MB;

/// A reference without a tag means `:latest`.
pub fn normalized_image_name(name: &str) -> String {
    let last = |c| name.rfind(c).map_or(-1, |i| i as i64);
    if last(':') <= last('/') {
        format!("{name}:latest")
    } else {
        name.to_string()
    }
}

impl Plugin for ImageLocality {
    fn name(&self) -> &'static str {
        "ImageLocality"
    }
    fn points(&self) -> u32 {
        points::SCORE
    }
    fn score(
        &self,
        ctx: &Ctx,
        _state: &CycleState,
        pod: &PodInfo,
        node: &NodeInfo,
    ) -> Result<i64, Status> {
        let Some(spec) = pod.pod.spec.as_ref() else {
            return Ok(0);
        };
        // A node without any of the images scores zero; most nodes in most clusters.
        if node.images.is_empty() {
            return Ok(0);
        }
        let total_nodes = ctx.cache.num_nodes().max(1) as f64;
        let containers = || {
            spec.init_containers
                .iter()
                .flatten()
                .chain(spec.containers.iter())
        };
        let mut sum: i64 = 0;
        for c in containers() {
            let Some(image) = c.image.as_deref() else {
                continue;
            };
            let name = normalized_image_name(image);
            if let Some(size) = node.images.get(&name) {
                let spread = ctx.cache.image_num_nodes(&name) as f64 / total_nodes;
                sum += (*size as f64 * spread) as i64;
            }
        }
        let max_threshold = MAX_CONTAINER_THRESHOLD * containers().count() as i64;
        if max_threshold <= MIN_THRESHOLD {
            return Ok(0);
        }
        let clamped = sum.clamp(MIN_THRESHOLD, max_threshold);
        Ok(MAX_NODE_SCORE * (clamped - MIN_THRESHOLD) / (max_threshold - MIN_THRESHOLD))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::testutil::{ctx_for, node, pod};
    use serde_json::json;

    #[test]
    fn node_name_filter() {
        let (cache, nom) = ctx_for(vec![node("n1", json!({}))]);
        let ctx = Ctx {
            cache: &cache,
            nominator: &nom,
        };
        let st = CycleState::new();
        let n1 = cache.get("n1").unwrap();
        assert!(NodeName
            .filter(&ctx, &st, &pod("p", json!({"containers": []})), n1)
            .is_success());
        let s = NodeName.filter(
            &ctx,
            &st,
            &pod("p", json!({"containers": [], "nodeName": "n2"})),
            n1,
        );
        assert_eq!(s.message(), NODE_NAME_REASON);
        assert_eq!(
            s.code(),
            crate::scheduler::framework::Code::UnschedulableAndUnresolvable
        );
    }

    #[test]
    fn cordoned_nodes_need_the_toleration() {
        let (cache, nom) = ctx_for(vec![node("n1", json!({"spec": {"unschedulable": true}}))]);
        let ctx = Ctx {
            cache: &cache,
            nominator: &nom,
        };
        let st = CycleState::new();
        let n1 = cache.get("n1").unwrap();
        let s = NodeUnschedulable.filter(&ctx, &st, &pod("p", json!({"containers": []})), n1);
        assert_eq!(s.message(), UNSCHEDULABLE_REASON);
        let tolerant = pod(
            "p",
            json!({"containers": [], "tolerations": [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]}),
        );
        assert!(NodeUnschedulable
            .filter(&ctx, &st, &tolerant, n1)
            .is_success());
    }

    #[test]
    fn host_port_conflicts() {
        let (mut cache, nom) = ctx_for(vec![node("n1", json!({}))]);
        let with_port = |name: &str, ip: &str| {
            pod(
                name,
                json!({"containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080, "hostIP": ip}]}]}),
            )
        };
        cache
            .assume_pod(std::sync::Arc::new(with_port("a", "10.0.0.1")), "n1")
            .unwrap();
        let ctx = Ctx {
            cache: &cache,
            nominator: &nom,
        };
        let st = CycleState::new();
        let n1 = cache.get("n1").unwrap();
        assert_eq!(
            NodePorts
                .filter(&ctx, &st, &with_port("b", "0.0.0.0"), n1)
                .message(),
            NODE_PORTS_REASON
        );
        assert!(NodePorts
            .filter(&ctx, &st, &with_port("c", "10.0.0.2"), n1)
            .is_success());
        assert_eq!(
            NodePorts
                .filter(&ctx, &st, &with_port("d", "10.0.0.1"), n1)
                .code(),
            crate::scheduler::framework::Code::Unschedulable
        );
    }

    #[test]
    fn scheduling_gates_hold_pods_back() {
        let gated = pod(
            "p",
            json!({"containers": [], "schedulingGates": [{"name": "a"}, {"name": "b"}]}),
        );
        assert_eq!(
            SchedulingGates.pre_enqueue(&gated).message(),
            "waiting for scheduling gates: [a b]"
        );
        assert!(SchedulingGates
            .pre_enqueue(&pod("q", json!({"containers": []})))
            .is_success());
    }

    #[test]
    fn image_names_normalise() {
        assert_eq!(normalized_image_name("nginx"), "nginx:latest");
        assert_eq!(
            normalized_image_name("reg:5000/nginx"),
            "reg:5000/nginx:latest"
        );
        assert_eq!(normalized_image_name("nginx:1.25"), "nginx:1.25");
    }

    #[test]
    fn image_locality_prefers_nodes_with_big_spread_images() {
        let img = |names: serde_json::Value| json!({"status": {"images": [{"names": names, "sizeBytes": 500 * MB}]}});
        let (cache, nom) = ctx_for(vec![
            node("has", img(json!(["app:1"]))),
            node("has2", img(json!(["app:1"]))),
            node("none", json!({})),
        ]);
        let ctx = Ctx {
            cache: &cache,
            nominator: &nom,
        };
        let st = CycleState::new();
        let p = pod(
            "p",
            json!({"containers": [{"name": "c", "image": "app:1"}]}),
        );
        let score = |n| {
            ImageLocality
                .score(&ctx, &st, &p, cache.get(n).unwrap())
                .unwrap()
        };
        // 500MiB * 2/3 spread = 333MiB; (333-23)/(1000-23)*100 = 31.
        assert_eq!(score("has"), 31);
        assert_eq!(score("none"), 0);
    }
}
