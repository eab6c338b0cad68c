//! Configuration of the controller-manager. Every period and timeout has its upstream
//! default (`kube-controller-manager` flags); `for_tests` shortens the slow ones.

use std::net::IpAddr;
use std::time::Duration;

use crate::leaderelection::LeaderElectionConfig;

use super::runtime::queue::Backoff;

#[derive(Clone, Debug)]
pub struct ControllerConfig {
    /// Controllers not to run, by upstream name (`replicaset`, `deployment`, `job`, ...).
    pub disabled: Vec<String>,
    /// Lease-based leader election (kube-system/kube-controller-manager); `None` runs
    /// without it (a single instance).
    pub leader_election: Option<LeaderElectionConfig>,
    /// Back-off of failed syncs (client-go's default: 5ms doubling to 1000s).
    pub backoff: Backoff,
    /// How long a controller waits for its own creations/deletions to be observed.
    pub expectations_ttl: Duration,

    /// `--concurrent-replicaset-syncs` and friends.
    pub replicaset_workers: usize,
    pub deployment_workers: usize,
    pub endpoint_workers: usize,
    pub job_workers: usize,
    pub cronjob_workers: usize,
    pub statefulset_workers: usize,
    pub daemonset_workers: usize,
    pub serviceaccount_workers: usize,
    /// Most pods a ReplicaSet creates or deletes in one sync (`BurstReplicas`).
    pub burst_replicas: usize,

    /// The cluster CA (PEM) published as `kube-root-ca.crt` in every namespace.
    pub root_ca_pem: Option<String>,
    /// Where the API server listens, for the `kubernetes` service's endpoints.
    pub apiserver_endpoint: Option<(IpAddr, u16)>,
    /// `--max-endpoints-per-slice`.
    pub max_endpoints_per_slice: usize,
    /// Endpoints objects are truncated beyond this many addresses.
    pub max_endpoints_per_endpoints: usize,

    /// Job pod failure back-off: 10s doubling up to 6 minutes.
    pub job_backoff_base: Duration,
    pub job_backoff_max: Duration,
    /// How often the CronJob controller rechecks a schedule at most (it requeues for the next
    /// scheduled time anyway).
    pub cronjob_resync: Duration,

    /// Node lifecycle: how often nodes are checked, how long a silent node stays Ready.
    pub node_monitor_period: Duration,
    pub node_monitor_grace_period: Duration,
    pub node_startup_grace_period: Duration,

    /// HorizontalPodAutoscaler: sync period, tolerance, scale-down stabilisation default.
    pub hpa_sync_period: Duration,
    pub hpa_tolerance: f64,
    pub hpa_downscale_stabilization: Duration,
    pub hpa_cpu_initialization_period: Duration,
    pub hpa_initial_readiness_delay: Duration,

    /// ResourceQuota full recalculation period.
    pub resource_quota_resync: Duration,
    /// PodDisruptionBudget: how long a missing pod counts as "recently deleted".
    pub pdb_resync: Duration,
    /// `--pvclaimbinder-sync-period`: how often the PV binder looks at unbound claims again.
    pub pv_binder_sync_period: Duration,
    /// `--use-service-account-credentials`: the client each controller writes with, by its
    /// service account in kube-system; a controller without one uses the manager's client.
    pub service_account_clients: ServiceAccountClients,
    /// Deliberate bugs (`--inject-fault`); empty unless a demonstration asks for one.
    pub faults: crate::faults::Faults,
}

/// Clients acting as the controllers' service accounts (`system:controller:<name>` roles).
#[derive(Clone, Default)]
pub struct ServiceAccountClients(pub std::collections::HashMap<String, kube::Client>);

impl std::fmt::Debug for ServiceAccountClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// The key in [`ServiceAccountClients`] of the API server's own identity: the `kubernetes`
/// service's endpoints are the API server's to write upstream (`system:apiserver`), not a
/// controller's.
pub const APISERVER_IDENTITY: &str = "kube-apiserver";

/// The service accounts of the controllers this manager runs, as upstream names them.
pub const CONTROLLER_SERVICE_ACCOUNTS: &[&str] = &[
    "replicaset-controller",
    "replication-controller",
    "deployment-controller",
    "service-account-controller",
    "root-ca-cert-publisher",
    "endpoint-controller",
    "endpointslice-controller",
    "job-controller",
    "ttl-after-finished-controller",
    "cronjob-controller",
    "node-controller",
    "statefulset-controller",
    "daemon-set-controller",
    "disruption-controller",
    "horizontal-pod-autoscaler",
    "persistent-volume-binder",
];

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            disabled: Vec::new(),
            leader_election: Some(LeaderElectionConfig::new(
                "kube-system",
                "kube-controller-manager",
                &crate::leaderelection::default_identity(),
            )),
            backoff: Backoff::default(),
            expectations_ttl: Duration::from_secs(5 * 60),
            replicaset_workers: 5,
            deployment_workers: 5,
            endpoint_workers: 5,
            job_workers: 5,
            cronjob_workers: 5,
            statefulset_workers: 5,
            daemonset_workers: 2,
            serviceaccount_workers: 1,
            burst_replicas: 500,
            root_ca_pem: None,
            apiserver_endpoint: None,
            max_endpoints_per_slice: 100,
            max_endpoints_per_endpoints: 1000,
            job_backoff_base: Duration::from_secs(10),
            job_backoff_max: Duration::from_secs(6 * 60),
            cronjob_resync: Duration::from_secs(10),
            node_monitor_period: Duration::from_secs(5),
            node_monitor_grace_period: Duration::from_secs(50),
            node_startup_grace_period: Duration::from_secs(60),
            hpa_sync_period: Duration::from_secs(15),
            hpa_tolerance: 0.1,
            hpa_downscale_stabilization: Duration::from_secs(5 * 60),
            hpa_cpu_initialization_period: Duration::from_secs(5 * 60),
            hpa_initial_readiness_delay: Duration::from_secs(30),
            resource_quota_resync: Duration::from_secs(5 * 60),
            pdb_resync: Duration::from_secs(30),
            pv_binder_sync_period: crate::controllers::persistentvolume::DEFAULT_SYNC_PERIOD,
            service_account_clients: ServiceAccountClients::default(),
            faults: crate::faults::Faults::none(),
        }
    }
}

impl ControllerConfig {
    /// Short timings for tests; no leader election (tests that want it set it).
    pub fn for_tests() -> Self {
        ControllerConfig {
            leader_election: None,
            backoff: Backoff {
                base: Duration::from_millis(5),
                max: Duration::from_secs(2),
            },
            expectations_ttl: Duration::from_secs(30),
            job_backoff_base: Duration::from_millis(500),
            job_backoff_max: Duration::from_secs(4),
            cronjob_resync: Duration::from_secs(1),
            node_monitor_period: Duration::from_millis(500),
            node_monitor_grace_period: Duration::from_secs(4),
            node_startup_grace_period: Duration::from_secs(4),
            hpa_sync_period: Duration::from_secs(1),
            hpa_downscale_stabilization: Duration::from_secs(2),
            hpa_cpu_initialization_period: Duration::from_secs(1),
            hpa_initial_readiness_delay: Duration::from_secs(1),
            resource_quota_resync: Duration::from_secs(5),
            pdb_resync: Duration::from_secs(2),
            pv_binder_sync_period: Duration::from_secs(2),
            ..ControllerConfig::default()
        }
    }

    pub fn enabled(&self, controller: &str) -> bool {
        !self.disabled.iter().any(|d| d == controller)
    }
}
