//! The container runtime as the node agent sees it, in the spirit of the CRI: pod sandboxes and
//! containers started, observed and stopped. The agent owns all policy (ordering, restarts,
//! back-off, termination order, status); a runtime only reports what happened to each container.
//!
//! Calls are non-blocking and take the current instant, so one agent loop can drive thousands of
//! pods. A runtime whose containers change on their own schedule (the `sim` runtime) says when to
//! look again through [`Runtime::next_change`]; one driven by real processes will instead wake
//! the agent when something happens.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod};
use tokio::time::Instant;

pub type ContainerId = String;

/// The role a container plays in its pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContainerKind {
    Init,
    /// An init container with `restartPolicy: Always`.
    Sidecar,
    Regular,
}

/// How a container attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exit {
    pub exit_code: i32,
    /// `Completed`, `Error`, `OOMKilled`, `ContainerCannotRun`.
    pub reason: String,
    pub message: Option<String>,
    /// `None` when the container never ran.
    pub started_at: Option<Instant>,
    pub finished_at: Instant,
}

/// What the runtime knows about one container attempt right now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContainerState {
    /// Pulling its image or being created.
    Creating,
    /// The image could not be pulled; the attempt is over without having run.
    PullFailed {
        message: String,
    },
    Running {
        started_at: Instant,
        /// The startup probe passed (or there is none).
        started: bool,
        /// The readiness probe passes (or there is none), once started.
        ready: bool,
    },
    Exited(Exit),
}

/// What a container uses, for the metrics API.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub cpu_milli: i64,
    pub memory_bytes: i64,
}

/// Which of a container's probes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeKind {
    Startup,
    Liveness,
    Readiness,
}

impl ProbeKind {
    /// The name the kubelet's events use (`Liveness probe failed: …`).
    pub fn name(self) -> &'static str {
        match self {
            ProbeKind::Startup => "Startup",
            ProbeKind::Liveness => "Liveness",
            ProbeKind::Readiness => "Readiness",
        }
    }
}

/// A probe that failed, with what the probe printed or why it failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeFailure {
    pub kind: ProbeKind,
    pub output: String,
    /// This failure reached the failure threshold and the container is being killed for it.
    pub kills: bool,
    /// Not a failure but a success with a warning (upstream's `probe.Warning`): a
    /// `ProbeWarning` event instead of `Unhealthy`.
    pub warning: bool,
}

pub struct StartRequest<'a> {
    pub node: &'a str,
    pub pod: &'a Pod,
    pub container: &'a Container,
    pub kind: ContainerKind,
    /// 0 for the first attempt of this container in this pod.
    pub attempt: u32,
}

pub trait Runtime: Send {
    /// `status.nodeInfo.containerRuntimeVersion`, e.g. `kubeproof-sim://0.1.0`.
    fn version(&self) -> &str;

    /// Creates the pod's sandbox; returns when its network is ready.
    fn run_sandbox(&mut self, node: &str, pod: &Pod, now: Instant) -> Instant;

    /// Frees everything the pod still holds.
    fn remove_sandbox(&mut self, pod_uid: &str);

    /// Whether `node` already has `image`, so starting a container needs no pull.
    fn has_image(&self, _node: &str, _image: &str) -> bool {
        true
    }

    /// Pulls the image if needed, then creates and starts the container.
    fn start_container(&mut self, req: StartRequest<'_>, now: Instant) -> ContainerId;

    /// The attempt's state at `now`; an unknown id reads as a container that never ran.
    fn state(&self, id: &str, now: Instant) -> ContainerState;

    /// Runs the preStop hook, then SIGTERM, then SIGKILL once `grace` has passed.
    fn stop_container(&mut self, id: &str, grace: Duration, now: Instant);

    fn remove_container(&mut self, id: &str);

    /// `status.containerStatuses[].imageID` for an image this runtime ran.
    fn image_id(&self, image: &str) -> String;

    /// When [`Runtime::state`] may next answer differently, if the runtime knows.
    fn next_change(&self, id: &str, now: Instant) -> Option<Instant>;

    fn usage(&self, id: &str, now: Instant) -> Option<Usage>;

    /// Probe failures of the attempt after `since` (from its start when `None`) up to `now`,
    /// oldest first, for the kubelet's `Unhealthy` and `Killing` events. A runtime whose probes
    /// the agent runs itself reports none.
    fn probe_failures(
        &self,
        _id: &str,
        _since: Option<Instant>,
        _now: Instant,
    ) -> Vec<ProbeFailure> {
        Vec::new()
    }

    /// The address the fleet gave the pod, before any of its containers start (a runtime
    /// running real servers hands it to them).
    fn set_pod_ip(&mut self, _pod_uid: &str, _ip: std::net::Ipv4Addr) {}

    /// Pod UIDs whose containers changed on their own, for a runtime that cannot say in
    /// advance when ([`Runtime::next_change`] is `None`); taken once by the agent loop.
    fn take_wakeups(&mut self) -> Option<tokio::sync::mpsc::UnboundedReceiver<String>> {
        None
    }

    /// Where the runtime records events of its own (volume set-up failures).
    fn set_event_sink(&mut self, _sink: super::events::EventSink) {}

    /// What `pod` holds on the node's disk (its volumes, and its `containers`' logs and
    /// writable layers, by name and current attempt) for local ephemeral storage eviction;
    /// `None` when the runtime cannot tell. Asked every eviction monitoring period, only for
    /// pods that set a limit, so it must be cheap.
    fn storage(
        &self,
        _pod: &Pod,
        _containers: &[(&str, &ContainerId)],
        _now: Instant,
    ) -> Option<super::local_storage::PodStorage> {
        None
    }
}
