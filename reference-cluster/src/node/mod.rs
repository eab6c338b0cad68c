//! The reference cluster's node agents: what the kubelet does, as an API client.
//!
//! A node agent registers its Node, keeps its Lease in `kube-node-lease` fresh, reports node
//! status on upstream's cadence, admits the pods bound to it and runs them through a
//! [`runtime::Runtime`]: init containers in order, sidecars, main containers, restarts with
//! CrashLoopBackOff, graceful termination, and the pod status the kubelet writes.
//!
//! Agents are built to be many: a [`fleet`] hosts thousands of them in one process with one
//! shared pod watch, one timer queue and one rate-limited writer. The `sim` runtime
//! ([`sim`], documented in `SIM.md`) runs containers as timelines; a `process` runtime for real
//! workloads plugs into the same trait.
//!
//! Entry point: [`run_fleet`] with a [`FleetConfig`].

pub mod admission;
pub mod agent;
mod api;
pub mod backoff;
pub mod clock;
pub mod config;
pub mod fleet;
pub mod ipam;
pub mod ratelimit;
pub mod runtime;
pub mod sim;
pub mod status;
pub mod timers;
pub mod worker;

pub use config::{AgentTimings, FleetConfig, NodeConfig};
pub use fleet::{run_fleet, run_fleet_with_stats, FleetStats, SimFleet, StatsSnapshot};
