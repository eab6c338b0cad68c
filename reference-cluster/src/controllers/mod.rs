//! Control loops that run inside the API server process. The full controller-manager (its own
//! process, leader-elected, an API client) comes with part 2 of the reference cluster; what is
//! here is what the API itself needs to behave: namespaces that finish terminating, and
//! compaction of the store's history.

pub mod compaction;
pub mod gc;
pub mod namespace;

// The controller-manager: workload and cluster controllers that run as API clients.
pub mod apiserver_endpoints;
pub mod config;
pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod disruption;
pub mod endpoints;
pub mod endpointslice;
pub mod history;
pub mod hpa;
pub mod job;
pub mod manager;
pub mod nodelifecycle;
pub mod persistentvolume;
pub mod replicaset;
pub mod rootca;
pub mod runtime;
pub mod serviceaccount;
pub mod statefulset;
pub mod ttl_after_finished;

pub use config::{ControllerConfig, ServiceAccountClients, CONTROLLER_SERVICE_ACCOUNTS};
pub use manager::run_controller_manager;
