//! One node's own state and objects: the Node it registers (labels, capacity, addresses,
//! nodeInfo, taints, podCIDR), the conditions it reports and when, its Lease, its pod address
//! block and what its admitted pods request. The fleet drives many of these; nothing here does
//! I/O, so the cadence rules are testable on their own.

use std::collections::BTreeMap;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{Node, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::clock::Clock;
use super::config::{AgentTimings, NodeConfig};
use super::eviction::{EvictionConfig, NodeEviction, Observation, Observations, Pressure, Signal};
use super::ipam::{Cidr, PodIps};
use super::ratelimit::TokenBucket;
use super::sim::stages::{mix, seed_of};
use crate::scheduler::resource::Resource;
use crate::scheduler::selector::Labels;

pub const LEASE_NAMESPACE: &str = "kube-node-lease";
pub const KUBELET_VERSION: &str = "v1.32.0";

/// Node annotations through which a test can make a simulated node report pressure or
/// NotReady (documented in `SIM.md`).
pub const NODE_CONDITION_ANNOTATIONS: [(&str, &str); 4] = [
    ("sim.kubeproof.dev/memory-pressure", "MemoryPressure"),
    ("sim.kubeproof.dev/disk-pressure", "DiskPressure"),
    ("sim.kubeproof.dev/pid-pressure", "PIDPressure"),
    ("sim.kubeproof.dev/not-ready", "Ready"),
];

/// A node annotation that makes a simulated node's agent go silent, as a stopped kubelet does:
/// no lease renewals, no node or pod status writes, until it is removed (documented in `SIM.md`).
pub const SILENT_ANNOTATION: &str = "sim.kubeproof.dev/silent";

/// A node condition as the kubelet computes it, before timestamps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeCond {
    pub type_: &'static str,
    pub status: bool,
    pub reason: &'static str,
    pub message: &'static str,
}

/// The kubelet's four conditions, healthy unless the node's annotations say otherwise.
pub fn node_conditions(annotations: Option<&BTreeMap<String, String>>) -> Vec<NodeCond> {
    node_conditions_under(annotations, &[])
}

/// [`node_conditions`], with the pressure the eviction manager observed.
pub fn node_conditions_under(
    annotations: Option<&BTreeMap<String, String>>,
    pressures: &[Pressure],
) -> Vec<NodeCond> {
    let set = |key: &str| {
        annotations
            .and_then(|a| a.get(key))
            .is_some_and(|v| v == "true")
    };
    let memory = set(NODE_CONDITION_ANNOTATIONS[0].0) || pressures.contains(&Pressure::Memory);
    let disk = set(NODE_CONDITION_ANNOTATIONS[1].0) || pressures.contains(&Pressure::Disk);
    let pid = set(NODE_CONDITION_ANNOTATIONS[2].0) || pressures.contains(&Pressure::Pid);
    let not_ready = set(NODE_CONDITION_ANNOTATIONS[3].0);
    vec![
        if memory {
            NodeCond {
                type_: "MemoryPressure",
                status: true,
                reason: "KubeletHasInsufficientMemory",
                message: "kubelet has insufficient memory available",
            }
        } else {
            NodeCond {
                type_: "MemoryPressure",
                status: false,
                reason: "KubeletHasSufficientMemory",
                message: "kubelet has sufficient memory available",
            }
        },
        if disk {
            NodeCond {
                type_: "DiskPressure",
                status: true,
                reason: "KubeletHasDiskPressure",
                message: "kubelet has disk pressure",
            }
        } else {
            NodeCond {
                type_: "DiskPressure",
                status: false,
                reason: "KubeletHasNoDiskPressure",
                message: "kubelet has no disk pressure",
            }
        },
        if pid {
            NodeCond {
                type_: "PIDPressure",
                status: true,
                reason: "KubeletHasInsufficientPID",
                message: "kubelet has insufficient PID available",
            }
        } else {
            NodeCond {
                type_: "PIDPressure",
                status: false,
                reason: "KubeletHasSufficientPID",
                message: "kubelet has sufficient PID available",
            }
        },
        if not_ready {
            NodeCond {
                type_: "Ready",
                status: false,
                reason: "KubeletNotReady",
                message: "container runtime is down",
            }
        } else {
            NodeCond {
                type_: "Ready",
                status: true,
                reason: "KubeletReady",
                message: "kubelet is posting ready status",
            }
        },
    ]
}

pub struct NodeAgent {
    pub cfg: NodeConfig,
    runtime_version: String,
    boot_id: String,
    pub pod_cidr: Cidr,
    pub ips: PodIps,
    /// Set once the Node exists.
    pub uid: Option<String>,
    /// Labels, taints and annotations as the API has them now (users may change them).
    pub labels: Labels,
    pub taints: Vec<Taint>,
    pub annotations: BTreeMap<String, String>,
    pub allocatable: Resource,
    /// What the admitted, still active pods request, and how many there are.
    pub requested: Resource,
    pub pod_count: usize,
    pub lease: Option<Lease>,
    /// When the status was last written, and the conditions it carried.
    last_report: Option<(Instant, Vec<NodeCond>)>,
    transitions: Vec<(&'static str, bool, Timestamp)>,
    pub bucket: TokenBucket,
    /// The eviction manager's state, and the pressure it reports now.
    pub eviction: NodeEviction,
    pub pressures: Vec<Pressure>,
}

fn uuid_like(seed: u64) -> String {
    let a = mix(seed);
    let b = mix(a);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

impl NodeAgent {
    pub fn new(
        cfg: NodeConfig,
        pod_cidr: Cidr,
        runtime_version: &str,
        qps: f64,
        burst: u32,
        now: Instant,
    ) -> NodeAgent {
        let allocatable = Resource::from_list(&quantities(cfg.allocatable()));
        let labels = default_labels(&cfg);
        NodeAgent {
            boot_id: uuid_like(seed_of(&[
                &cfg.name,
                "boot",
                &Timestamp::now().as_nanosecond().to_string(),
            ])),
            runtime_version: runtime_version.to_string(),
            ips: PodIps::new(pod_cidr),
            pod_cidr,
            uid: None,
            taints: cfg.taints.clone(),
            annotations: BTreeMap::new(),
            labels,
            allocatable,
            requested: Resource::default(),
            pod_count: 0,
            lease: None,
            last_report: None,
            transitions: Vec::new(),
            bucket: TokenBucket::new(qps, burst, now),
            eviction: NodeEviction::default(),
            pressures: Vec::new(),
            cfg,
        }
    }

    /// The eviction signals of a simulated node whose pods use `pods_memory` bytes: each
    /// signal's node annotation (see `SIM.md`) or the whole capacity, less the pods' memory for
    /// `memory.available`. A value that does not parse counts as unset.
    pub fn observations(&self, cfg: &EvictionConfig, pods_memory: i64) -> Observations {
        let quantity = |v: &str| {
            crate::resources::quantity::Quantity::parse(v)
                .ok()
                .map(|q| q.value().clamp(0, i64::MAX as i128) as i64)
        };
        let capacity = |name: &str| {
            self.cfg
                .capacity
                .get(name)
                .and_then(|v| quantity(v))
                .unwrap_or(0)
        };
        let memory = capacity("memory");
        let storage = capacity("ephemeral-storage");
        let mut obs = Observations::new();
        for signal in Signal::ALL {
            let cap = match signal {
                Signal::MemoryAvailable => memory,
                Signal::NodeFsAvailable | Signal::ImageFsAvailable => storage,
                Signal::NodeFsInodesFree | Signal::ImageFsInodesFree => cfg.inodes_capacity,
                Signal::PidAvailable => cfg.pid_capacity,
            };
            let key = format!(
                "{}{}",
                super::sim::behaviour::PREFIX,
                signal_annotation(signal)
            );
            let given = self.annotations.get(&key).and_then(|v| quantity(v));
            let mut available = given.unwrap_or(cap).min(cap);
            if signal == Signal::MemoryAvailable {
                available = available.saturating_sub(pods_memory);
            }
            obs.insert(
                signal,
                Observation {
                    available,
                    capacity: cap,
                },
            );
        }
        obs
    }

    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    /// The Node as the kubelet registers it, status included.
    pub fn node_object(&mut self, clock: &Clock, now: Instant) -> Node {
        let mut obj = json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.cfg.name,
                "labels": default_labels(&self.cfg),
                "annotations": {
                    "node.alpha.kubernetes.io/ttl": "0",
                    "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                },
            },
            "spec": {
                "podCIDR": self.pod_cidr.to_string(),
                "podCIDRs": [self.pod_cidr.to_string()],
            },
        });
        if !self.cfg.taints.is_empty() {
            obj["spec"]["taints"] = json!(self.cfg.taints);
        }
        obj["status"] = self.status(clock, now);
        // The object is built from typed parts and literals; it always deserializes.
        serde_json::from_value(obj).unwrap_or_default()
    }

    /// Takes in the Node as the API has it (after registration or from the watch).
    pub fn observe(&mut self, node: &Node) {
        if let Some(uid) = &node.metadata.uid {
            self.uid = Some(uid.clone());
        }
        self.labels = node.metadata.labels.clone().unwrap_or_default();
        self.annotations = node.metadata.annotations.clone().unwrap_or_default();
        self.taints = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default();
        if let Some(cidr) = node
            .spec
            .as_ref()
            .and_then(|s| s.pod_cidr.as_deref())
            .and_then(|c| Cidr::parse(c).ok())
        {
            if cidr != self.pod_cidr && self.ips.in_use() == 0 {
                // A node registered earlier keeps the block it was given then.
                self.pod_cidr = cidr;
                self.ips = PodIps::new(cidr);
            }
        }
    }

    /// `status` for registration and for updates (conditions stamped at `now`).
    /// Whether a test has silenced this node's agent (see [`SILENT_ANNOTATION`]).
    pub fn silent(&self) -> bool {
        self.annotations
            .get(SILENT_ANNOTATION)
            .is_some_and(|v| v == "true")
    }

    pub fn status(&mut self, clock: &Clock, now: Instant) -> Value {
        let conds = node_conditions_under(Some(&self.annotations), &self.pressures);
        let wall = clock.wall(now);
        let time = |t: Timestamp| k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(t);
        let conditions: Vec<Value> = conds
            .iter()
            .map(|c| {
                let at = match self.transitions.iter_mut().find(|(t, _, _)| *t == c.type_) {
                    Some(e) if e.1 == c.status => e.2,
                    Some(e) => {
                        *e = (c.type_, c.status, wall);
                        wall
                    }
                    None => {
                        self.transitions.push((c.type_, c.status, wall));
                        wall
                    }
                };
                json!({"type": c.type_, "status": if c.status { "True" } else { "False" },
                       "lastHeartbeatTime": time(wall), "lastTransitionTime": time(at),
                       "reason": c.reason, "message": c.message})
            })
            .collect();
        let seed = seed_of(&[&self.cfg.name]);
        json!({
            "capacity": self.cfg.capacity,
            "allocatable": self.cfg.allocatable(),
            "conditions": conditions,
            "addresses": [
                {"type": "InternalIP", "address": self.cfg.internal_ip.to_string()},
                {"type": "Hostname", "address": self.cfg.name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.cfg.kubelet_port}},
            "nodeInfo": {
                "machineID": format!("{:016x}{:016x}", mix(seed), mix(seed ^ 1)),
                "systemUUID": uuid_like(seed ^ 2),
                "bootID": self.boot_id,
                "kernelVersion": "6.1.0-kubeproof",
                "osImage": "kubeproof simulated node",
                "containerRuntimeVersion": self.runtime_version,
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": "",
                "operatingSystem": self.cfg.os,
                "architecture": self.cfg.arch,
            },
        })
    }

    /// Records a written status.
    pub fn reported(&mut self, at: Instant) {
        self.last_report = Some((
            at,
            node_conditions_under(Some(&self.annotations), &self.pressures),
        ));
    }

    /// The kubelet's rule: write when the conditions changed, or when the last write is older
    /// than `nodeStatusReportFrequency`.
    pub fn status_due(&self, timings: &AgentTimings, now: Instant) -> bool {
        match &self.last_report {
            None => true,
            Some((at, conds)) => {
                *conds != node_conditions_under(Some(&self.annotations), &self.pressures)
                    || now.saturating_duration_since(*at) >= timings.node_status_report_frequency
            }
        }
    }

    /// The Lease with `renewTime` = now, based on the last one written.
    pub fn lease_object(&self, clock: &Clock, now: Instant, timings: &AgentTimings) -> Lease {
        let mut lease = self.lease.clone().unwrap_or_else(|| Lease {
            metadata: ObjectMeta {
                name: Some(self.cfg.name.clone()),
                namespace: Some(LEASE_NAMESPACE.into()),
                owner_references: self.uid.as_ref().map(|uid| {
                    vec![OwnerReference {
                        api_version: "v1".into(),
                        kind: "Node".into(),
                        name: self.cfg.name.clone(),
                        uid: uid.clone(),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            },
            spec: None,
        });
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        spec.holder_identity = Some(self.cfg.name.clone());
        spec.lease_duration_seconds =
            Some(timings.lease_duration.as_secs().min(i32::MAX as u64) as i32);
        spec.renew_time = Some(clock.micro_time(now));
        lease
    }
}

/// The node annotation (after `sim.kubeproof.dev/`) that sets a signal's value.
pub fn signal_annotation(signal: Signal) -> &'static str {
    match signal {
        Signal::MemoryAvailable => "memory-available",
        Signal::NodeFsAvailable => "nodefs-available",
        Signal::NodeFsInodesFree => "nodefs-inodes-free",
        Signal::ImageFsAvailable => "imagefs-available",
        Signal::ImageFsInodesFree => "imagefs-inodes-free",
        Signal::PidAvailable => "pid-available",
    }
}

fn quantities(
    m: &BTreeMap<String, String>,
) -> BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity> {
    m.iter()
        .map(|(k, v)| {
            (
                k.clone(),
                k8s_openapi::apimachinery::pkg::api::resource::Quantity(v.clone()),
            )
        })
        .collect()
}

/// The labels the kubelet sets on its Node, plus the configured ones.
pub fn default_labels(cfg: &NodeConfig) -> Labels {
    let mut l: Labels = cfg.labels.clone();
    for (k, v) in [
        ("beta.kubernetes.io/arch", cfg.arch.as_str()),
        ("beta.kubernetes.io/os", cfg.os.as_str()),
        ("kubernetes.io/arch", cfg.arch.as_str()),
        ("kubernetes.io/hostname", cfg.name.as_str()),
        ("kubernetes.io/os", cfg.os.as_str()),
    ] {
        l.insert(k.into(), v.into());
    }
    if let Some(zone) = &cfg.zone {
        l.insert("topology.kubernetes.io/zone".into(), zone.clone());
    }
    if let Some(region) = &cfg.region {
        l.insert("topology.kubernetes.io/region".into(), region.clone());
    }
    l
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn agent(cfg: NodeConfig) -> (NodeAgent, Clock, Instant) {
        let now = Instant::now();
        let clock = Clock::pinned(now, Timestamp::from_second(1_700_000_000).unwrap());
        let cidr = Cidr::parse("127.244.3.0/24").unwrap();
        (
            NodeAgent::new(cfg, cidr, "kubeproof-sim://0.1.0", 50.0, 100, now),
            clock,
            now,
        )
    }

    #[test]
    fn the_registered_node_looks_like_a_kubelets() {
        let mut cfg = NodeConfig::new("node-3");
        cfg.zone = Some("zone-a".into());
        cfg.taints = vec![serde_json::from_value(
            json!({"key": "dedicated", "value": "x", "effect": "NoSchedule"}),
        )
        .unwrap()];
        let (mut a, clock, now) = agent(cfg);
        let node = a.node_object(&clock, now);
        let labels = node.metadata.labels.clone().unwrap();
        assert_eq!(labels["kubernetes.io/hostname"], "node-3");
        assert_eq!(labels["kubernetes.io/os"], "linux");
        assert_eq!(labels["kubernetes.io/arch"], "amd64");
        assert_eq!(labels["topology.kubernetes.io/zone"], "zone-a");
        let spec = node.spec.clone().unwrap();
        assert_eq!(spec.pod_cidr.as_deref(), Some("127.244.3.0/24"));
        assert_eq!(spec.taints.unwrap()[0].key, "dedicated");
        let status = node.status.unwrap();
        assert_eq!(
            status.node_info.as_ref().unwrap().container_runtime_version,
            "kubeproof-sim://0.1.0"
        );
        assert_eq!(
            status.node_info.as_ref().unwrap().kubelet_version,
            "v1.32.0"
        );
        assert_eq!(status.allocatable.unwrap()["pods"].0, "110");
        let conds = status.conditions.unwrap();
        let types: Vec<_> = conds
            .iter()
            .map(|c| (c.type_.as_str(), c.status.as_str()))
            .collect();
        assert_eq!(
            types,
            [
                ("MemoryPressure", "False"),
                ("DiskPressure", "False"),
                ("PIDPressure", "False"),
                ("Ready", "True")
            ]
        );
        assert_eq!(conds[3].reason.as_deref(), Some("KubeletReady"));
        assert_eq!(status.addresses.unwrap()[0].address, "127.0.0.1");
    }

    #[test]
    fn status_is_written_on_change_or_after_the_report_frequency() {
        let (mut a, _clock, now) = agent(NodeConfig::new("n"));
        let t = AgentTimings::default();
        assert!(a.status_due(&t, now), "never reported");
        a.reported(now);
        assert!(
            !a.status_due(&t, now + Duration::from_secs(10)),
            "unchanged within 5m"
        );
        assert!(
            a.status_due(&t, now + Duration::from_secs(300)),
            "unchanged for 5m"
        );
        a.annotations
            .insert("sim.kubeproof.dev/memory-pressure".into(), "true".into());
        assert!(
            a.status_due(&t, now + Duration::from_secs(10)),
            "a changed condition is reported at once"
        );
    }

    #[test]
    fn condition_transitions_keep_their_time_until_they_flip() {
        let (mut a, clock, now) = agent(NodeConfig::new("n"));
        let first = a.status(&clock, now);
        let later = a.status(&clock, now + Duration::from_secs(60));
        assert_eq!(
            first["conditions"][3]["lastTransitionTime"],
            later["conditions"][3]["lastTransitionTime"]
        );
        assert_ne!(
            first["conditions"][3]["lastHeartbeatTime"],
            later["conditions"][3]["lastHeartbeatTime"]
        );
        a.annotations
            .insert("sim.kubeproof.dev/not-ready".into(), "true".into());
        let flipped = a.status(&clock, now + Duration::from_secs(90));
        assert_eq!(flipped["conditions"][3]["status"], "False");
        assert_eq!(flipped["conditions"][3]["reason"], "KubeletNotReady");
        assert_eq!(
            flipped["conditions"][3]["lastTransitionTime"],
            "2023-11-14T22:14:50Z"
        );
    }

    #[test]
    fn the_lease_names_its_holder_and_owner() {
        let (mut a, clock, now) = agent(NodeConfig::new("n"));
        a.uid = Some("uid-1".into());
        let lease = a.lease_object(
            &clock,
            now + Duration::from_millis(1500),
            &AgentTimings::default(),
        );
        assert_eq!(lease.metadata.namespace.as_deref(), Some("kube-node-lease"));
        assert_eq!(
            lease.metadata.owner_references.as_ref().unwrap()[0].uid,
            "uid-1"
        );
        let spec = lease.spec.unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some("n"));
        assert_eq!(spec.lease_duration_seconds, Some(40));
        assert_eq!(
            serde_json::to_value(spec.renew_time).unwrap(),
            "2023-11-14T22:13:21.500000Z"
        );
    }
}
