//! The reference cluster's node agents: what the kubelet does, as an API client.
//!
//! A [`agent::NodeAgent`] registers its Node, keeps its Lease in `kube-node-lease` fresh and
//! reports node status on upstream's cadence. Each pod bound to it is admitted
//! ([`admission`]) and run by a [`worker::PodWorker`] through a [`runtime::Runtime`]: init
//! containers in order, sidecars, main containers, restarts with CrashLoopBackOff
//! ([`backoff`]), graceful termination, and the pod status and conditions the kubelet writes
//! ([`status`]).
//!
//! Agents are built to be many: a [`fleet::SimFleet`] hosts thousands of them in one task with
//! one shared pod watch, one timer queue ([`timers`]) and one coalescing, rate-limited writer
//! ([`ratelimit`]). The `sim` runtime ([`sim`], documented in `SIM.md`) runs containers as
//! timelines; a `process` runtime for real workloads plugs into the same trait. Sim containers
//! write their logs into a shared [`logs::LogStore`], which the fleet's one
//! [`kubelet_server`] serves to the API server's `pods/log`.
//!
//! Entry point: [`run_fleet`] with a [`FleetConfig`].

pub mod admission;
pub mod agent;
pub mod api;
pub mod backoff;
pub mod clock;
pub mod config;
pub mod events;
pub mod eviction;
pub mod exec;
pub mod fleet;
pub mod ipam;
pub mod kubelet_server;
pub mod local_storage;
pub mod logs;
pub mod portforward;
pub mod process;
pub mod ratelimit;
mod reconcile;
pub mod runtime;
pub mod sim;
pub mod stats;
pub mod status;
pub mod timers;
pub mod worker;

pub use config::{AgentTimings, FleetConfig, NodeConfig};
pub use fleet::{run_fleet, run_fleet_with_stats, FleetStats, SimFleet, StatsSnapshot};
