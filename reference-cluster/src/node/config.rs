//! Configuration of node agents and fleets. Every period has upstream's default; `for_tests()`
//! shortens them so tests see leases renewed and back-offs grow within seconds.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use k8s_openapi::api::core::v1::Taint;

use super::backoff::BackOffPolicy;
use super::ipam::Cidr;
use super::logs::LogLimits;
use super::sim::stages::SimStages;

/// One node: its name, size, labels and taints.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeConfig {
    pub name: String,
    /// `status.capacity` (cpu, memory, pods, ephemeral-storage, extended resources).
    pub capacity: BTreeMap<String, String>,
    /// `status.allocatable`; `None`: the capacity (the sim reserves nothing for the system).
    pub allocatable: Option<BTreeMap<String, String>>,
    /// Labels besides the well-known ones the agent sets itself.
    pub labels: BTreeMap<String, String>,
    /// `topology.kubernetes.io/zone`.
    pub zone: Option<String>,
    /// `topology.kubernetes.io/region`.
    pub region: Option<String>,
    /// Registered with the node (`--register-with-taints`).
    pub taints: Vec<Taint>,
    /// `InternalIP` address and every pod's `hostIP`.
    pub internal_ip: Ipv4Addr,
    pub os: String,
    pub arch: String,
    /// `status.daemonEndpoints.kubeletEndpoint.Port` (10250); a fleet sets it to the port its
    /// kubelet server got.
    pub kubelet_port: u16,
}

impl NodeConfig {
    /// A 4-CPU, 16Gi, 110-pod linux/amd64 node on 127.0.0.1.
    pub fn new(name: impl Into<String>) -> NodeConfig {
        let capacity = [
            ("cpu", "4"),
            ("memory", "16Gi"),
            ("pods", "110"),
            ("ephemeral-storage", "100Gi"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        NodeConfig {
            name: name.into(),
            capacity,
            allocatable: None,
            labels: BTreeMap::new(),
            zone: None,
            region: None,
            taints: Vec::new(),
            internal_ip: Ipv4Addr::LOCALHOST,
            os: "linux".into(),
            arch: "amd64".into(),
            kubelet_port: 10250,
        }
    }

    pub fn allocatable(&self) -> &BTreeMap<String, String> {
        self.allocatable.as_ref().unwrap_or(&self.capacity)
    }
}

/// The kubelet's periods.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AgentTimings {
    /// `nodeLeaseDurationSeconds` (40s).
    pub lease_duration: Duration,
    /// How often the lease is renewed: a quarter of its duration upstream (10s).
    pub lease_renew_interval: Duration,
    /// `nodeStatusUpdateFrequency` (10s): how often node status is computed and compared.
    pub node_status_update_frequency: Duration,
    /// `nodeStatusReportFrequency` (5m): how often an unchanged status is still written.
    pub node_status_report_frequency: Duration,
    /// Container restart and image pull back-off (10s doubling to 5m).
    pub backoff: BackOffPolicy,
    /// How soon a pod worker retries after a failed sync (10s).
    pub error_requeue: Duration,
    /// `syncFrequency` (1m): the periodic pod sync, which updates running pods' ConfigMap,
    /// Secret, downward API and projected volumes (process runtime).
    pub sync_frequency: Duration,
    /// How long a port-forward request's first stream waits for its partner (30s,
    /// `streamCreationTimeout`).
    pub stream_creation_timeout: Duration,
    /// `streamingConnectionIdleTimeout` (4h): a port-forward connection idle this long is
    /// closed; zero never closes one.
    pub streaming_connection_idle_timeout: Duration,
}

impl Default for AgentTimings {
    fn default() -> Self {
        AgentTimings {
            lease_duration: Duration::from_secs(40),
            lease_renew_interval: Duration::from_secs(10),
            node_status_update_frequency: Duration::from_secs(10),
            node_status_report_frequency: Duration::from_secs(300),
            backoff: BackOffPolicy::default(),
            error_requeue: Duration::from_secs(10),
            sync_frequency: Duration::from_secs(60),
            stream_creation_timeout: Duration::from_secs(30),
            streaming_connection_idle_timeout: Duration::from_secs(4 * 3600),
        }
    }
}

impl AgentTimings {
    pub fn for_tests() -> AgentTimings {
        AgentTimings {
            lease_duration: Duration::from_secs(4),
            lease_renew_interval: Duration::from_secs(1),
            node_status_update_frequency: Duration::from_secs(1),
            node_status_report_frequency: Duration::from_secs(5),
            backoff: BackOffPolicy {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(8),
            },
            error_requeue: Duration::from_millis(500),
            sync_frequency: Duration::from_secs(1),
            stream_creation_timeout: Duration::from_secs(5),
            streaming_connection_idle_timeout: Duration::from_secs(120),
        }
    }
}

/// A fleet of simulated nodes in one process.
#[derive(Clone, Debug)]
pub struct FleetConfig {
    pub nodes: Vec<NodeConfig>,
    pub timings: AgentTimings,
    pub stages: SimStages,
    /// Pod addresses for the whole fleet (default `127.244.0.0/16`, or `127.128.0.0/9` when
    /// more than 256 nodes need a `/24` each).
    pub cluster_cidr: Cidr,
    /// The size of each node's block (`--node-cidr-mask-size`, 24).
    pub node_cidr_mask: u8,
    /// Each node's client-side limit, like the kubelet's `kubeAPIQPS` (50; 0: none).
    pub api_qps: f64,
    /// Each node's burst, like `kubeAPIBurst` (100).
    pub api_burst: u32,
    /// Requests the whole fleet has in flight at most.
    pub api_concurrency: usize,
    /// Node registrations in flight at most.
    pub register_concurrency: usize,
    /// How much of each container attempt's log is kept (1000 lines / 1 MiB).
    pub log_limits: LogLimits,
    /// The longest a `follow` reader waits before looking for new lines again (250ms); lines
    /// due at a known time are sent when due.
    pub log_follow_poll: Duration,
    /// Record the kubelet's Events for pods (`Pulling`, `Started`, `BackOff`, …).
    pub record_events: bool,
    /// Events waiting to be written at most; more are dropped and counted (1000, like
    /// client-go's broadcaster).
    pub event_buffer: usize,
    /// Run containers as real processes (the `process` runtime) instead of simulating them.
    pub process: Option<super::process::ProcessConfig>,
    /// Node-pressure eviction thresholds and periods (the kubelet's defaults).
    pub eviction: super::eviction::EvictionConfig,
}

impl FleetConfig {
    /// `count` default nodes named `node-0`, `node-1`, … with upstream timings.
    pub fn new(count: usize) -> FleetConfig {
        let nodes = (0..count)
            .map(|i| NodeConfig::new(format!("node-{i}")))
            .collect();
        let cluster_cidr = if count <= 256 {
            Cidr {
                base: Ipv4Addr::new(127, 244, 0, 0),
                prefix: 16,
            }
        } else {
            Cidr {
                base: Ipv4Addr::new(127, 128, 0, 0),
                prefix: 9,
            }
        };
        FleetConfig {
            nodes,
            timings: AgentTimings::default(),
            stages: SimStages::default(),
            cluster_cidr,
            node_cidr_mask: 24,
            api_qps: 50.0,
            api_burst: 100,
            api_concurrency: 64,
            register_concurrency: 32,
            log_limits: LogLimits::default(),
            log_follow_poll: Duration::from_millis(250),
            record_events: true,
            event_buffer: super::events::DEFAULT_BUFFER,
            process: None,
            eviction: super::eviction::EvictionConfig::default(),
        }
    }

    /// Like [`FleetConfig::new`] with short periods and stages.
    pub fn for_tests(count: usize) -> FleetConfig {
        FleetConfig {
            timings: AgentTimings::for_tests(),
            stages: SimStages::for_tests(),
            log_follow_poll: Duration::from_millis(50),
            eviction: super::eviction::EvictionConfig::for_tests(),
            ..FleetConfig::new(count)
        }
    }

    /// Checks what would otherwise fail later: unique names, enough pod address blocks.
    pub fn validate(&self) -> Result<(), String> {
        let mut names = std::collections::HashSet::new();
        for n in &self.nodes {
            if n.name.is_empty() {
                return Err("a node has an empty name".into());
            }
            if !names.insert(n.name.as_str()) {
                return Err(format!("node {} is configured twice", n.name));
            }
        }
        let blocks = self.cluster_cidr.subnet_count(self.node_cidr_mask);
        if (self.nodes.len() as u64) > blocks {
            return Err(format!(
                "the cluster CIDR {} holds {blocks} /{} node blocks, too few for {} nodes",
                self.cluster_cidr,
                self.node_cidr_mask,
                self.nodes.len()
            ));
        }
        if self.timings.lease_renew_interval.is_zero()
            || self.timings.node_status_update_frequency.is_zero()
        {
            return Err(
                "lease renew interval and node status update frequency must be positive".into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_upstream_and_fleets_get_address_room() {
        let t = AgentTimings::default();
        assert_eq!(
            (t.lease_duration.as_secs(), t.lease_renew_interval.as_secs()),
            (40, 10)
        );
        assert_eq!(
            (
                t.node_status_update_frequency.as_secs(),
                t.node_status_report_frequency.as_secs()
            ),
            (10, 300)
        );
        assert_eq!(t.sync_frequency.as_secs(), 60);
        assert_eq!(
            (
                t.stream_creation_timeout.as_secs(),
                t.streaming_connection_idle_timeout.as_secs()
            ),
            (30, 4 * 3600)
        );
        let small = FleetConfig::new(3);
        assert_eq!(small.nodes[2].name, "node-2");
        assert_eq!(small.cluster_cidr.to_string(), "127.244.0.0/16");
        assert!(small.validate().is_ok());
        let big = FleetConfig::new(5000);
        assert!(big.validate().is_ok(), "{:?}", big.validate());
        let cramped = FleetConfig {
            cluster_cidr: Cidr::parse("127.244.0.0/16").unwrap(),
            ..FleetConfig::new(300)
        };
        assert!(cramped
            .validate()
            .unwrap_err()
            .contains("too few for 300 nodes"));
        let mut dup = FleetConfig::new(2);
        dup.nodes[1].name = "node-0".into();
        assert!(dup.validate().is_err());
    }
}
