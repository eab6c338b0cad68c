//! Resource vectors in the units the scheduler compares: milli-CPU, bytes, pod slots and integer
//! counts for "scalar" resources (extended resources, hugepages, attachable volumes).
//!
//! `pod_requests` follows upstream's `resourcehelper.PodRequests`, including the sidecar rules:
//! a pod needs `max(sum(main) + sum(sidecars), max over init containers of
//! (sidecars started before it + that init container))`, plus the pod overhead.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Node, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;

use crate::resources::quantity::Quantity;

/// What a container without a CPU request counts as when spreading (upstream
/// `schedutil.DefaultMilliCPURequest`): keeps many request-less pods from piling onto one node.
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// 200 MiB, upstream `schedutil.DefaultMemoryRequest`.
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resource {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    pub allowed_pod_number: i64,
    pub scalar: BTreeMap<String, i64>,
}

/// Upstream `IsScalarResourceName`: extended resources, `hugepages-*`, `attachable-volumes-*`
/// and other `kubernetes.io/`-prefixed native resources.
pub fn is_scalar_resource_name(name: &str) -> bool {
    is_extended_resource_name(name)
        || name.starts_with("hugepages-")
        || name.starts_with("attachable-volumes-")
        || name.contains("kubernetes.io/")
}

/// A resource outside the `kubernetes.io` domain, e.g. `example.com/gpu`.
pub fn is_extended_resource_name(name: &str) -> bool {
    name.contains('/') && !name.contains("kubernetes.io/") && !name.starts_with("requests.")
}

fn parse(q: &ApiQuantity) -> Option<Quantity> {
    Quantity::parse(&q.0).ok()
}

fn clamp(v: i128) -> i64 {
    v.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

impl Resource {
    /// A resource list (requests, allocatable, overhead) as a vector; unparsable quantities count
    /// as zero, as a value the API server would have rejected cannot reach us in practice.
    pub fn from_list(list: &BTreeMap<String, ApiQuantity>) -> Resource {
        let mut r = Resource::default();
        r.add_list(list);
        r
    }

    pub fn add_list(&mut self, list: &BTreeMap<String, ApiQuantity>) {
        for (name, q) in list {
            let Some(q) = parse(q) else { continue };
            match name.as_str() {
                "cpu" => self.milli_cpu = self.milli_cpu.saturating_add(clamp(q.milli_value())),
                "memory" => self.memory = self.memory.saturating_add(clamp(q.value())),
                "ephemeral-storage" => {
                    self.ephemeral_storage = self.ephemeral_storage.saturating_add(clamp(q.value()))
                }
                "pods" => {
                    self.allowed_pod_number =
                        self.allowed_pod_number.saturating_add(clamp(q.value()))
                }
                other if is_scalar_resource_name(other) => {
                    let e = self.scalar.entry(other.to_string()).or_insert(0);
                    *e = e.saturating_add(clamp(q.value()));
                }
                _ => {}
            }
        }
    }

    pub fn add(&mut self, o: &Resource) {
        self.milli_cpu = self.milli_cpu.saturating_add(o.milli_cpu);
        self.memory = self.memory.saturating_add(o.memory);
        self.ephemeral_storage = self.ephemeral_storage.saturating_add(o.ephemeral_storage);
        self.allowed_pod_number = self.allowed_pod_number.saturating_add(o.allowed_pod_number);
        for (k, v) in &o.scalar {
            let e = self.scalar.entry(k.clone()).or_insert(0);
            *e = e.saturating_add(*v);
        }
    }

    pub fn sub(&mut self, o: &Resource) {
        self.milli_cpu = self.milli_cpu.saturating_sub(o.milli_cpu);
        self.memory = self.memory.saturating_sub(o.memory);
        self.ephemeral_storage = self.ephemeral_storage.saturating_sub(o.ephemeral_storage);
        self.allowed_pod_number = self.allowed_pod_number.saturating_sub(o.allowed_pod_number);
        for (k, v) in &o.scalar {
            let e = self.scalar.entry(k.clone()).or_insert(0);
            *e = e.saturating_sub(*v);
        }
    }

    /// Per-dimension maximum (init containers define a floor for each resource separately).
    pub fn set_max(&mut self, o: &Resource) {
        self.milli_cpu = self.milli_cpu.max(o.milli_cpu);
        self.memory = self.memory.max(o.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(o.ephemeral_storage);
        self.allowed_pod_number = self.allowed_pod_number.max(o.allowed_pod_number);
        for (k, v) in &o.scalar {
            let e = self.scalar.entry(k.clone()).or_insert(*v);
            *e = (*e).max(*v);
        }
    }

    pub fn is_zero(&self) -> bool {
        self.milli_cpu == 0
            && self.memory == 0
            && self.ephemeral_storage == 0
            && self.scalar.values().all(|v| *v == 0)
    }

    pub fn scalar(&self, name: &str) -> i64 {
        self.scalar.get(name).copied().unwrap_or(0)
    }

    /// The amount of one named resource, in the unit the scorers use (milli-CPU for `cpu`).
    pub fn get(&self, name: &str) -> i64 {
        match name {
            "cpu" => self.milli_cpu,
            "memory" => self.memory,
            "ephemeral-storage" => self.ephemeral_storage,
            "pods" => self.allowed_pod_number,
            other => self.scalar(other),
        }
    }
}

fn container_requests(c: &Container, defaults: bool) -> Resource {
    let requests = c.resources.as_ref().and_then(|r| r.requests.as_ref());
    let mut r = requests.map(Resource::from_list).unwrap_or_default();
    if defaults {
        // Only a *missing* request gets the default; an explicit zero stays zero (upstream
        // `NonMissingContainerRequests`).
        let has = |k: &str| requests.is_some_and(|m| m.contains_key(k));
        if !has("cpu") {
            r.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
        }
        if !has("memory") {
            r.memory = DEFAULT_MEMORY_REQUEST;
        }
    }
    r
}

fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// What the pod asks the node for. With `defaults`, containers without a CPU/memory request
/// count as 100m/200Mi (used for spreading scores, never for fit).
pub fn pod_requests(pod: &Pod, defaults: bool) -> Resource {
    let Some(spec) = pod.spec.as_ref() else {
        return Resource::default();
    };
    let mut reqs = Resource::default();
    for c in &spec.containers {
        reqs.add(&container_requests(c, defaults));
    }
    let mut sidecars = Resource::default();
    let mut init_floor = Resource::default();
    for c in spec.init_containers.iter().flatten() {
        let own = container_requests(c, defaults);
        let in_use = if is_sidecar(c) {
            // A sidecar keeps running next to the main containers and every later init container.
            reqs.add(&own);
            sidecars.add(&own);
            sidecars.clone()
        } else {
            let mut tmp = own;
            tmp.add(&sidecars);
            tmp
        };
        init_floor.set_max(&in_use);
    }
    reqs.set_max(&init_floor);
    if let Some(overhead) = spec.overhead.as_ref() {
        reqs.add_list(overhead);
    }
    reqs
}

/// `node.status.allocatable` as a vector.
pub fn node_allocatable(node: &Node) -> Resource {
    node.status
        .as_ref()
        .and_then(|s| s.allocatable.as_ref())
        .map(Resource::from_list)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": spec})).unwrap()
    }

    fn c(name: &str, cpu: &str, mem: &str) -> serde_json::Value {
        json!({"name": name, "resources": {"requests": {"cpu": cpu, "memory": mem}}})
    }

    #[test]
    fn sums_main_containers() {
        let p = pod(json!({"containers": [c("a", "100m", "1Gi"), c("b", "250m", "512Mi")]}));
        let r = pod_requests(&p, false);
        assert_eq!(r.milli_cpu, 350);
        assert_eq!(r.memory, 1536 * 1024 * 1024);
    }

    #[test]
    fn init_containers_set_a_floor() {
        let p = pod(json!({
            "initContainers": [c("init", "2", "64Mi")],
            "containers": [c("a", "500m", "1Gi")],
        }));
        let r = pod_requests(&p, false);
        assert_eq!(r.milli_cpu, 2000, "the big init container dominates cpu");
        assert_eq!(
            r.memory,
            1024 * 1024 * 1024,
            "the main container dominates memory"
        );
    }

    #[test]
    fn sidecars_add_to_main_and_to_later_init_containers() {
        // sidecar 200m, then init 1 cpu (runs next to the sidecar: 1.2), main 300m.
        // main + sidecars = 500m; init phase = 1200m → 1200m.
        let mut sidecar = c("side", "200m", "100Mi");
        sidecar["restartPolicy"] = json!("Always");
        let p = pod(json!({
            "initContainers": [sidecar, c("init", "1", "10Mi")],
            "containers": [c("a", "300m", "50Mi")],
        }));
        let r = pod_requests(&p, false);
        assert_eq!(r.milli_cpu, 1200);
        assert_eq!(r.memory, 150 * 1024 * 1024);
    }

    #[test]
    fn sidecar_after_init_does_not_count_toward_that_init() {
        let mut sidecar = c("side", "800m", "0");
        sidecar["restartPolicy"] = json!("Always");
        let p = pod(json!({
            "initContainers": [c("init", "1", "0"), sidecar],
            "containers": [c("a", "100m", "0")],
        }));
        // init alone: 1000m; sidecar phase: 800m; main + sidecar = 900m → 1000m.
        assert_eq!(pod_requests(&p, false).milli_cpu, 1000);
    }

    #[test]
    fn defaults_only_fill_missing_requests() {
        let p = pod(json!({"containers": [
            {"name": "none"},
            {"name": "zero", "resources": {"requests": {"cpu": "0"}}},
        ]}));
        let r = pod_requests(&p, true);
        assert_eq!(r.milli_cpu, DEFAULT_MILLI_CPU_REQUEST);
        assert_eq!(r.memory, 2 * DEFAULT_MEMORY_REQUEST);
        assert_eq!(pod_requests(&p, false), Resource::default());
    }

    #[test]
    fn overhead_and_extended_resources() {
        let p = pod(json!({
            "containers": [{"name": "a", "resources": {"requests": {"example.com/gpu": "2", "hugepages-2Mi": "4Mi"}}}],
            "overhead": {"cpu": "50m"},
        }));
        let r = pod_requests(&p, false);
        assert_eq!(r.milli_cpu, 50);
        assert_eq!(r.scalar("example.com/gpu"), 2);
        assert_eq!(r.scalar("hugepages-2Mi"), 4 * 1024 * 1024);
    }

    #[test]
    fn scalar_names() {
        assert!(is_scalar_resource_name("example.com/gpu"));
        assert!(is_scalar_resource_name("hugepages-1Gi"));
        assert!(is_scalar_resource_name("attachable-volumes-csi-x"));
        assert!(!is_scalar_resource_name("cpu"));
        assert!(!is_extended_resource_name("kubernetes.io/foo"));
    }

    #[test]
    fn node_allocatable_reads_pods_and_cpu() {
        let n: Node = serde_json::from_value(json!({
            "metadata": {"name": "n"},
            "status": {"allocatable": {"cpu": "4", "memory": "16Gi", "pods": "110", "bogus": "x"}},
        }))
        .unwrap();
        let r = node_allocatable(&n);
        assert_eq!((r.milli_cpu, r.allowed_pod_number), (4000, 110));
        assert_eq!(r.memory, 16 * 1024 * 1024 * 1024);
    }
}
