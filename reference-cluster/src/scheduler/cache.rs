//! The scheduler's view of the cluster: nodes with the pods on them (including pods assumed but
//! not yet bound), plus the small listers the plugins read (namespaces, volumes, PDBs, priority
//! classes, and the workload selectors used by default topology spreading).
//!
//! Only the scheduling thread touches it, between cycles, so it doubles as the per-cycle
//! snapshot upstream has to copy out of its cache.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::nodeinfo::NodeInfo;
use super::podinfo::PodInfo;
use super::selector::{Labels, Selector};

struct CachedPod {
    info: Arc<PodInfo>,
    node: String,
    assumed: bool,
}

/// Objects other than pods and nodes, keyed by `namespace/name` (or name when cluster-scoped).
#[derive(Default)]
pub struct Listers {
    pub namespaces: HashMap<String, Labels>,
    pub pvcs: HashMap<String, Arc<PersistentVolumeClaim>>,
    pub pvs: HashMap<String, Arc<PersistentVolume>>,
    pub storage_classes: HashMap<String, Arc<StorageClass>>,
    pub pdbs: HashMap<String, Arc<PodDisruptionBudget>>,
    /// name → (value, globalDefault).
    pub priority_classes: HashMap<String, (i32, bool)>,
    /// `namespace/name` → the service's selector (`None` selects nothing).
    pub services: HashMap<String, Option<Labels>>,
    pub replication_controllers: HashMap<String, Option<Labels>>,
    pub replica_sets: HashMap<String, Option<LabelSelector>>,
    pub stateful_sets: HashMap<String, Option<LabelSelector>>,
}

#[derive(Default)]
pub struct Cache {
    nodes: Vec<NodeInfo>,
    index: HashMap<String, usize>,
    /// Node indices per zone, in the order the nodes were added (upstream's node tree).
    zones: Vec<(String, Vec<usize>)>,
    /// Node indices, zone by zone round-robin (upstream's node tree), so that a sample of the
    /// first nodes covers every zone.
    order: Vec<usize>,
    pods: HashMap<String, CachedPod>,
    /// Pods bound to nodes we have not seen (yet, or any more).
    orphans: HashMap<String, Vec<Arc<PodInfo>>>,
    /// Image name → how many nodes hold it.
    image_nodes: HashMap<String, usize>,
    pub listers: Listers,
}

fn zone_key(node: &Node) -> String {
    let labels = node.metadata.labels.as_ref();
    let get = |a: &str, b: &str| {
        labels
            .and_then(|l| l.get(a).or_else(|| l.get(b)))
            .cloned()
            .unwrap_or_default()
    };
    let region = get(
        "topology.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/region",
    );
    let zone = get(
        "topology.kubernetes.io/zone",
        "failure-domain.beta.kubernetes.io/zone",
    );
    if region.is_empty() && zone.is_empty() {
        String::new()
    } else {
        format!("{region}:\x00:{zone}")
    }
}

impl Cache {
    pub fn new() -> Cache {
        Cache::default()
    }

    // ---- nodes ----

    pub fn num_nodes(&self) -> usize {
        self.nodes.len()
    }

    /// Node indices in iteration order.
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    pub fn node(&self, idx: usize) -> &NodeInfo {
        &self.nodes[idx]
    }

    pub fn node_index(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    pub fn get(&self, name: &str) -> Option<&NodeInfo> {
        self.index.get(name).map(|i| &self.nodes[*i])
    }

    /// Every node, in iteration order.
    pub fn nodes(&self) -> impl Iterator<Item = &NodeInfo> + '_ {
        self.order.iter().map(move |i| &self.nodes[*i])
    }

    pub fn nodes_with_affinity_pods(&self) -> impl Iterator<Item = &NodeInfo> + '_ {
        self.nodes().filter(|n| !n.pods_with_affinity.is_empty())
    }

    pub fn nodes_with_required_anti_affinity_pods(&self) -> impl Iterator<Item = &NodeInfo> + '_ {
        self.nodes()
            .filter(|n| !n.pods_with_required_anti_affinity.is_empty())
    }

    pub fn image_num_nodes(&self, image: &str) -> usize {
        self.image_nodes.get(image).copied().unwrap_or(0)
    }

    fn count_images(&mut self, ni_idx: usize, delta: isize) {
        for name in self.nodes[ni_idx].images.keys() {
            let e = self.image_nodes.entry(name.clone()).or_insert(0);
            *e = e.saturating_add_signed(delta);
            if *e == 0 {
                self.image_nodes.remove(name);
            }
        }
    }

    /// Interleaves the zones round-robin: O(nodes), run on every node add, remove or zone move.
    fn rebuild_order(&mut self) {
        self.order.clear();
        let longest = self.zones.iter().map(|z| z.1.len()).max().unwrap_or(0);
        for round in 0..longest {
            for (_, members) in &self.zones {
                if let Some(i) = members.get(round) {
                    self.order.push(*i);
                }
            }
        }
    }

    fn zone_insert(&mut self, zone: String, idx: usize) {
        match self.zones.iter_mut().find(|(z, _)| *z == zone) {
            Some((_, members)) => members.push(idx),
            None => self.zones.push((zone, vec![idx])),
        }
    }

    fn zone_remove(&mut self, idx: usize) {
        for (_, members) in &mut self.zones {
            members.retain(|i| *i != idx);
        }
        self.zones.retain(|(_, members)| !members.is_empty());
    }

    /// Adds or replaces a node; returns the previous version when it replaced one.
    pub fn upsert_node(&mut self, node: Arc<Node>) -> Option<Arc<Node>> {
        let name = node.metadata.name.clone().unwrap_or_default();
        if let Some(&i) = self.index.get(&name) {
            let new_zone = zone_key(&node);
            let zone_changed = zone_key(&self.nodes[i].node) != new_zone;
            self.count_images(i, -1);
            let old = self.nodes[i].node.clone();
            self.nodes[i].set_node(node);
            self.count_images(i, 1);
            if zone_changed {
                self.zone_remove(i);
                self.zone_insert(new_zone, i);
                self.rebuild_order();
            }
            return Some(old);
        }
        let zone = zone_key(&node);
        let mut ni = NodeInfo::new(node);
        for p in self.orphans.remove(&name).unwrap_or_default() {
            ni.add_pod(p);
        }
        self.nodes.push(ni);
        let idx = self.nodes.len() - 1;
        self.index.insert(name, idx);
        self.count_images(idx, 1);
        self.zone_insert(zone, idx);
        self.rebuild_order();
        None
    }

    pub fn remove_node(&mut self, name: &str) -> Option<Arc<Node>> {
        let idx = self.index.remove(name)?;
        self.count_images(idx, -1);
        self.zone_remove(idx);
        let last = self.nodes.len() - 1;
        let ni = self.nodes.swap_remove(idx);
        if idx < self.nodes.len() {
            // The last node moved into the hole: rename it, keeping its place in its zone.
            let moved = self.nodes[idx].name().to_string();
            self.index.insert(moved, idx);
            for (_, members) in &mut self.zones {
                for m in members.iter_mut().filter(|m| **m == last) {
                    *m = idx;
                }
            }
        }
        if !ni.pods.is_empty() {
            self.orphans.insert(name.to_string(), ni.pods);
        }
        self.rebuild_order();
        Some(ni.node)
    }

    /// Replaces every node with this list (a relist); pods stay where they are.
    pub fn replace_nodes(&mut self, nodes: Vec<Arc<Node>>) {
        let keep: std::collections::HashSet<String> = nodes
            .iter()
            .filter_map(|n| n.metadata.name.clone())
            .collect();
        let stale: Vec<String> = self
            .index
            .keys()
            .filter(|k| !keep.contains(*k))
            .cloned()
            .collect();
        for n in stale {
            self.remove_node(&n);
        }
        for n in nodes {
            self.upsert_node(n);
        }
    }

    // ---- pods ----

    fn place(&mut self, info: Arc<PodInfo>, node: &str) {
        match self.index.get(node) {
            Some(&i) => self.nodes[i].add_pod(info),
            None => self.orphans.entry(node.to_string()).or_default().push(info),
        }
    }

    fn unplace(&mut self, key: &str, node: &str) {
        match self.index.get(node) {
            Some(&i) => {
                self.nodes[i].remove_pod(key);
            }
            None => {
                if let Some(v) = self.orphans.get_mut(node) {
                    v.retain(|p| p.key != key);
                    if v.is_empty() {
                        self.orphans.remove(node);
                    }
                }
            }
        }
    }

    /// Records a bound pod seen through the API (confirming it if it was assumed); returns the
    /// previous version if there was one.
    pub fn upsert_pod(&mut self, info: Arc<PodInfo>) -> Option<Arc<PodInfo>> {
        let node = info.node_name().to_string();
        let old = self.pods.remove(&info.key);
        if let Some(old) = &old {
            self.unplace(&old.info.key, &old.node);
        }
        self.place(info.clone(), &node);
        let key = info.key.clone();
        self.pods.insert(
            key,
            CachedPod {
                info,
                node,
                assumed: false,
            },
        );
        old.map(|o| o.info)
    }

    pub fn remove_pod(&mut self, key: &str) -> Option<Arc<PodInfo>> {
        let old = self.pods.remove(key)?;
        self.unplace(key, &old.node);
        Some(old.info)
    }

    /// Counts a pod on `node` before the binding is confirmed, so the next cycles see the
    /// resources as taken.
    pub fn assume_pod(&mut self, info: Arc<PodInfo>, node: &str) -> Result<(), String> {
        if self.pods.contains_key(&info.key) {
            return Err(format!(
                "pod {} is in the cache, so can't be assumed",
                info.key
            ));
        }
        self.place(info.clone(), node);
        self.pods.insert(
            info.key.clone(),
            CachedPod {
                info,
                node: node.to_string(),
                assumed: true,
            },
        );
        Ok(())
    }

    /// Drops an assumed pod whose binding failed; confirmed pods are left alone.
    pub fn forget_pod(&mut self, key: &str) -> bool {
        match self.pods.get(key) {
            Some(p) if p.assumed => {
                let node = p.node.clone();
                self.pods.remove(key);
                self.unplace(key, &node);
                true
            }
            _ => false,
        }
    }

    pub fn is_assumed(&self, key: &str) -> bool {
        self.pods.get(key).is_some_and(|p| p.assumed)
    }

    pub fn contains_pod(&self, key: &str) -> bool {
        self.pods.contains_key(key)
    }

    pub fn pod_node(&self, key: &str) -> Option<&str> {
        self.pods.get(key).map(|p| p.node.as_str())
    }

    /// Replaces the confirmed pods with this list (a relist); assumed pods stay.
    pub fn replace_pods(&mut self, pods: Vec<Arc<PodInfo>>) {
        let keep: std::collections::HashSet<&str> = pods.iter().map(|p| p.key.as_str()).collect();
        let stale: Vec<String> = self
            .pods
            .iter()
            .filter(|(k, p)| !p.assumed && !keep.contains(k.as_str()))
            .map(|(k, _)| k.clone())
            .collect();
        for k in stale {
            self.remove_pod(&k);
        }
        for p in pods {
            self.upsert_pod(p);
        }
    }

    // ---- listers ----

    pub fn namespace_labels(&self, ns: &str) -> Option<&Labels> {
        self.listers.namespaces.get(ns)
    }

    /// A pod's priority: `spec.priority` as the API server's admission sets it, else the value
    /// of its priority class, else the global default class, else zero. The scheduler does not
    /// watch PriorityClasses (upstream's `system:kube-scheduler` role may not read them), so
    /// outside unit tests this is `spec.priority` or zero, as upstream's `PodPriority`.
    pub fn resolve_priority(&self, pod: &Pod) -> i32 {
        let spec = pod.spec.as_ref();
        if let Some(p) = spec.and_then(|s| s.priority) {
            return p;
        }
        let classes = &self.listers.priority_classes;
        if let Some(name) = spec
            .and_then(|s| s.priority_class_name.as_deref())
            .filter(|n| !n.is_empty())
        {
            if let Some((v, _)) = classes.get(name) {
                return *v;
            }
        }
        classes
            .values()
            .filter(|(_, global)| *global)
            .map(|(v, _)| *v)
            .max()
            .unwrap_or(0)
    }

    /// The selector of the workloads (services, replication controllers, replica sets,
    /// stateful sets) that own or select the pod: what default topology spreading counts
    /// (upstream `helper.DefaultSelector`).
    pub fn default_spread_selector(&self, pod: &PodInfo) -> Selector {
        let l = &self.listers;
        let ns = &pod.namespace;
        let mut set = Labels::new();
        for (key, sel) in &l.services {
            let Some(sel) = sel else { continue };
            if key.split_once('/').map(|(n, _)| n) != Some(ns.as_str()) {
                continue;
            }
            if Selector::from_set(sel).matches(pod.labels()) {
                set.extend(sel.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        let mut selector = Selector::from_set(&set);
        let owner = pod
            .pod
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.controller == Some(true));
        let Some(owner) = owner else {
            return selector;
        };
        let key = format!("{ns}/{}", owner.name);
        match (owner.api_version.as_str(), owner.kind.as_str()) {
            ("v1", "ReplicationController") => {
                if let Some(Some(rc)) = l.replication_controllers.get(&key) {
                    set.extend(rc.iter().map(|(k, v)| (k.clone(), v.clone())));
                    selector = Selector::from_set(&set);
                }
            }
            ("apps/v1", "ReplicaSet") | ("apps/v1", "StatefulSet") => {
                let owner_sel = if owner.kind == "ReplicaSet" {
                    l.replica_sets.get(&key)
                } else {
                    l.stateful_sets.get(&key)
                };
                if let Some(Some(s)) = owner_sel {
                    if let Ok(extra) = Selector::from_label_selector(Some(s)) {
                        selector = selector.and(extra);
                    }
                }
            }
            _ => {}
        }
        selector
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, zone: Option<&str>) -> Arc<Node> {
        let mut labels = json!({"kubernetes.io/hostname": name});
        if let Some(z) = zone {
            labels["topology.kubernetes.io/zone"] = json!(z);
        }
        Arc::new(
            serde_json::from_value(json!({"metadata": {"name": name, "labels": labels},
                "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                           "images": [{"names": ["img:1"], "sizeBytes": 10}]}}))
            .unwrap(),
        )
    }

    fn pod(name: &str, node: &str) -> Arc<PodInfo> {
        Arc::new(PodInfo::new(
            Arc::new(
                serde_json::from_value(json!({"metadata": {"name": name, "namespace": "d", "uid": name},
                "spec": {"nodeName": node, "containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]}}))
                .unwrap(),
            ),
            0,
        ))
    }

    #[test]
    fn iteration_interleaves_zones() {
        let mut c = Cache::new();
        for (n, z) in [
            ("a1", "a"),
            ("a2", "a"),
            ("a3", "a"),
            ("b1", "b"),
            ("c1", "c"),
        ] {
            c.upsert_node(node(n, Some(z)));
        }
        let names: Vec<&str> = c.nodes().map(|n| n.name()).collect();
        assert_eq!(names, ["a1", "b1", "c1", "a2", "a3"]);
        c.remove_node("b1");
        let names: Vec<&str> = c.nodes().map(|n| n.name()).collect();
        assert_eq!(names, ["a1", "c1", "a2", "a3"]);
        assert_eq!(c.image_num_nodes("img:1"), 4);
        // A node moving zones joins the end of its new zone.
        c.upsert_node(node("a2", Some("c")));
        let names: Vec<&str> = c.nodes().map(|n| n.name()).collect();
        assert_eq!(names, ["a1", "c1", "a3", "a2"]);
        assert_eq!(c.get("c1").map(|n| n.name()), Some("c1"));
    }

    #[test]
    fn assume_confirm_and_forget() {
        let mut c = Cache::new();
        c.upsert_node(node("n1", None));
        let p = pod("p", "");
        c.assume_pod(p.clone(), "n1").unwrap();
        assert!(c.is_assumed("d/p"));
        assert!(c.assume_pod(p, "n1").is_err(), "cannot assume twice");
        assert_eq!(c.get("n1").unwrap().requested.milli_cpu, 1000);
        // The watch confirms the binding.
        c.upsert_pod(pod("p", "n1"));
        assert!(!c.is_assumed("d/p"));
        assert!(!c.forget_pod("d/p"), "confirmed pods are not forgotten");
        assert_eq!(c.get("n1").unwrap().pods.len(), 1);
        c.assume_pod(pod("q", ""), "n1").unwrap();
        assert!(c.forget_pod("d/q"));
        assert_eq!(c.get("n1").unwrap().requested.milli_cpu, 1000);
    }

    #[test]
    fn pods_on_unknown_nodes_wait_for_them() {
        let mut c = Cache::new();
        c.upsert_pod(pod("p", "later"));
        assert_eq!(c.num_nodes(), 0);
        c.upsert_node(node("later", None));
        assert_eq!(c.get("later").unwrap().pods.len(), 1);
        c.remove_node("later");
        c.upsert_node(node("later", None));
        assert_eq!(
            c.get("later").unwrap().pods.len(),
            1,
            "pods survive a node's delete and re-add"
        );
        c.remove_pod("d/p");
        assert_eq!(c.get("later").unwrap().pods.len(), 0);
    }

    #[test]
    fn relist_drops_stale_objects() {
        let mut c = Cache::new();
        c.upsert_node(node("a", None));
        c.upsert_node(node("b", None));
        c.replace_nodes(vec![node("b", None), node("c", None)]);
        let mut names: Vec<&str> = c.nodes().map(|n| n.name()).collect();
        names.sort();
        assert_eq!(names, ["b", "c"]);
        c.upsert_pod(pod("x", "b"));
        c.assume_pod(pod("y", ""), "b").unwrap();
        c.replace_pods(vec![]);
        assert!(!c.contains_pod("d/x") && c.is_assumed("d/y"));
    }

    #[test]
    fn priority_resolution() {
        let mut c = Cache::new();
        c.listers
            .priority_classes
            .insert("high".into(), (1000, false));
        let p = |spec: serde_json::Value| -> Pod {
            serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": spec})).unwrap()
        };
        assert_eq!(
            c.resolve_priority(&p(json!({"containers": [], "priority": 7}))),
            7
        );
        assert_eq!(
            c.resolve_priority(&p(json!({"containers": [], "priorityClassName": "high"}))),
            1000
        );
        assert_eq!(c.resolve_priority(&p(json!({"containers": []}))), 0);
        c.listers.priority_classes.insert("def".into(), (5, true));
        assert_eq!(c.resolve_priority(&p(json!({"containers": []}))), 5);
    }

    #[test]
    fn default_spread_selector_merges_services_and_owner() {
        let mut c = Cache::new();
        let labels: Labels = [
            ("app".to_string(), "web".to_string()),
            ("pod-template-hash".into(), "x".into()),
        ]
        .into();
        c.listers.services.insert(
            "d/web".into(),
            Some([("app".to_string(), "web".to_string())].into()),
        );
        c.listers
            .services
            .insert("other/web".into(), Some(Labels::new()));
        c.listers.replica_sets.insert(
            "d/rs".into(),
            Some(
                serde_json::from_value(json!({"matchLabels": {"pod-template-hash": "x"}})).unwrap(),
            ),
        );
        let p = PodInfo::new(
            Arc::new(
                serde_json::from_value(json!({"metadata": {"name": "p", "namespace": "d", "labels": labels,
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u", "controller": true}]},
                "spec": {"containers": []}}))
                .unwrap(),
            ),
            0,
        );
        let s = c.default_spread_selector(&p);
        assert!(s.matches(p.labels()));
        let only_app: Labels = [("app".to_string(), "web".to_string())].into();
        assert!(
            !s.matches(Some(&only_app)),
            "the replica set's selector is required too"
        );
        let lone = PodInfo::new(
            Arc::new(serde_json::from_value(json!({"metadata": {"name": "q", "namespace": "e"}, "spec": {"containers": []}})).unwrap()),
            0,
        );
        assert!(c.default_spread_selector(&lone).is_empty());
    }
}
