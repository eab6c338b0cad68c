//! A node with the aggregate of the pods on it (upstream `framework.NodeInfo`): requested
//! resources, used host ports, the pods with (anti-)affinity, and the images it holds.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Taint};

use super::podinfo::{HostPort, PodInfo};
use super::resource::{node_allocatable, Resource};
use super::selector::Labels;

#[derive(Clone, Debug)]
pub struct NodeInfo {
    pub node: Arc<Node>,
    pub pods: Vec<Arc<PodInfo>>,
    pub pods_with_affinity: Vec<Arc<PodInfo>>,
    pub pods_with_required_anti_affinity: Vec<Arc<PodInfo>>,
    pub used_ports: Vec<HostPort>,
    /// Sum of the pods' requests (assumed pods included).
    pub requested: Resource,
    /// Sum with 100m/200Mi for unset CPU/memory requests, so request-less pods still spread.
    pub non_zero_requested: Resource,
    pub allocatable: Resource,
    /// Image name → size in bytes, for every name of every image on the node.
    pub images: HashMap<String, i64>,
    /// Bumped on every change.
    pub generation: u64,
}

fn images_of(node: &Node) -> HashMap<String, i64> {
    let mut out = HashMap::new();
    for img in node.status.iter().flat_map(|s| s.images.iter().flatten()) {
        let size = img.size_bytes.unwrap_or(0);
        for name in img.names.iter().flatten() {
            out.entry(name.clone()).or_insert(size);
        }
    }
    out
}

impl NodeInfo {
    pub fn new(node: Arc<Node>) -> NodeInfo {
        NodeInfo {
            allocatable: node_allocatable(&node),
            images: images_of(&node),
            node,
            pods: Vec::new(),
            pods_with_affinity: Vec::new(),
            pods_with_required_anti_affinity: Vec::new(),
            used_ports: Vec::new(),
            requested: Resource::default(),
            non_zero_requested: Resource::default(),
            generation: 0,
        }
    }

    pub fn set_node(&mut self, node: Arc<Node>) {
        self.allocatable = node_allocatable(&node);
        self.images = images_of(&node);
        self.node = node;
        self.generation += 1;
    }

    pub fn name(&self) -> &str {
        self.node.metadata.name.as_deref().unwrap_or("")
    }

    pub fn labels(&self) -> Option<&Labels> {
        self.node.metadata.labels.as_ref()
    }

    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels().and_then(|l| l.get(key)).map(String::as_str)
    }

    pub fn taints(&self) -> &[Taint] {
        self.node
            .spec
            .as_ref()
            .and_then(|s| s.taints.as_deref())
            .unwrap_or_default()
    }

    pub fn unschedulable(&self) -> bool {
        self.node
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false)
    }

    pub fn add_pod(&mut self, pod: Arc<PodInfo>) {
        self.requested.add(&pod.requests);
        self.non_zero_requested.add(&pod.non_zero_requests);
        self.used_ports.extend(pod.host_ports.iter().cloned());
        if pod.has_affinity() {
            self.pods_with_affinity.push(pod.clone());
        }
        if pod.has_required_anti_affinity() {
            self.pods_with_required_anti_affinity.push(pod.clone());
        }
        self.pods.push(pod);
        self.generation += 1;
    }

    /// Removes the pod with this `namespace/name` key; `None` if it is not here.
    pub fn remove_pod(&mut self, key: &str) -> Option<Arc<PodInfo>> {
        let pos = self.pods.iter().position(|p| p.key == key)?;
        let pod = self.pods.swap_remove(pos);
        self.pods_with_affinity.retain(|p| p.key != key);
        self.pods_with_required_anti_affinity
            .retain(|p| p.key != key);
        self.requested.sub(&pod.requests);
        self.non_zero_requested.sub(&pod.non_zero_requests);
        for hp in &pod.host_ports {
            if let Some(i) = self.used_ports.iter().position(|u| u == hp) {
                self.used_ports.swap_remove(i);
            }
        }
        self.generation += 1;
        Some(pod)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn add_and_remove_keep_aggregates() {
        let node: Node = serde_json::from_value(json!({"metadata": {"name": "n"}, "status": {
            "allocatable": {"cpu": "4", "pods": "10"},
            "images": [{"names": ["nginx:1.25", "docker.io/nginx:1.25"], "sizeBytes": 100}],
        }}))
        .unwrap();
        let mut ni = NodeInfo::new(Arc::new(node));
        assert_eq!(ni.images.get("nginx:1.25"), Some(&100));
        let pod = |name: &str, cpu: &str| {
            Arc::new(PodInfo::new(
                Arc::new(
                    serde_json::from_value(
                        json!({"metadata": {"name": name, "namespace": "d"}, "spec": {
                            "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}},
                                            "ports": [{"containerPort": 80, "hostPort": 80}]}],
                            "affinity": {"podAffinity": {}},
                        }}),
                    )
                    .unwrap(),
                ),
                0,
            ))
        };
        ni.add_pod(pod("a", "1"));
        ni.add_pod(pod("b", "500m"));
        assert_eq!(ni.requested.milli_cpu, 1500);
        assert_eq!(
            ni.non_zero_requested.memory,
            2 * crate::scheduler::resource::DEFAULT_MEMORY_REQUEST
        );
        assert_eq!((ni.used_ports.len(), ni.pods_with_affinity.len()), (2, 2));
        assert!(ni.remove_pod("d/a").is_some());
        assert!(ni.remove_pod("d/a").is_none());
        assert_eq!(
            (ni.requested.milli_cpu, ni.pods.len(), ni.used_ports.len()),
            (500, 1, 1)
        );
        assert_eq!(ni.pods_with_affinity.len(), 1);
    }
}
