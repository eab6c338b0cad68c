//! One pod on one node: the kubelet's pod worker and `computePodActions` in one state machine,
//! independent of the runtime. Each [`PodWorker::sync`] looks at the runtime's containers at
//! `now`, takes the next steps (start the sandbox, init containers in order, sidecars, main
//! containers, restarts after back-off, graceful termination in upstream's order) and says when
//! it wants to look again. [`PodWorker::api_status`] renders the `status` the kubelet would
//! write at that instant.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    Container, ContainerState as ApiState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, Pod, PodSpec, VolumeMountStatus,
};
use k8s_openapi::jiff::Timestamp;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::admission::Rejection;
use super::backoff::{BackOff, BackOffPolicy};
use super::clock::{after, go_duration, seconds, Clock};
use super::events::{EventSink, NORMAL, WARNING};
use super::runtime::{ContainerId, ContainerKind, ContainerState, Exit, Runtime, StartRequest};
use super::status::{is_sidecar, kubelet_conditions, pod_phase, TransitionTimes};

/// The kubelet's floor for the time a container gets between SIGTERM and SIGKILL.
const MIN_GRACE: Duration = Duration::from_secs(2);

/// What every sync needs to know about the agent.
pub struct SyncContext<'a> {
    pub node: &'a str,
    pub backoff: &'a BackOffPolicy,
    /// How soon the kubelet's pod worker retries after a failed sync (upstream 10s); decides
    /// how long `ErrImagePull` shows before `ImagePullBackOff`.
    pub error_requeue: Duration,
}

/// The earliest of several wake-up times.
#[derive(Default)]
struct Wake(Option<Instant>);

impl Wake {
    fn at(&mut self, t: Option<Instant>) {
        if let Some(t) = t {
            self.0 = Some(self.0.map_or(t, |cur| cur.min(t)));
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Waiting {
    reason: &'static str,
    message: Option<String>,
}

enum Progress {
    /// Not running yet (creating, pulling, in back-off).
    Pending,
    Running {
        started: bool,
    },
    /// Exited and will not be restarted.
    Succeeded,
    Failed,
}

struct Slot {
    name: String,
    index: usize,
    kind: ContainerKind,
    attempt: Option<ContainerId>,
    /// The current attempt got past creation (it counts as a container that existed).
    attempt_ran: bool,
    stop_requested: bool,
    runs: u32,
    attempts: u32,
    /// `restartCount` carried over from a status written before this agent started.
    base_restarts: i32,
    last: Option<(Exit, ContainerId)>,
    waiting: Option<Waiting>,
    pull_error_until: Option<Instant>,
    crash: BackOff,
    pull: BackOff,
    /// When the current attempt began pulling its image, for the `Pulled` event.
    pull_started: Option<Instant>,
    /// Up to when the current attempt's probe failures were turned into events.
    probes_seen: Option<Instant>,
}

impl Slot {
    fn new(
        c: &Container,
        index: usize,
        kind: ContainerKind,
        previous: Option<&ContainerStatus>,
    ) -> Slot {
        let base_restarts = previous.map_or(0, |s| {
            let ran = s
                .state
                .as_ref()
                .is_some_and(|st| st.running.is_some() || st.terminated.is_some())
                || s.last_state
                    .as_ref()
                    .is_some_and(|st| st.terminated.is_some());
            if ran {
                s.restart_count + 1
            } else {
                s.restart_count
            }
        });
        Slot {
            name: c.name.clone(),
            index,
            kind,
            attempt: None,
            attempt_ran: false,
            stop_requested: false,
            runs: 0,
            attempts: 0,
            base_restarts,
            last: None,
            waiting: None,
            pull_error_until: None,
            crash: BackOff::default(),
            pull: BackOff::default(),
            pull_started: None,
            probes_seen: None,
        }
    }

    fn restart_count(&self) -> i32 {
        self.base_restarts
            .saturating_add(self.runs.saturating_sub(1).min(i32::MAX as u32) as i32)
    }

    fn count_run(&mut self) {
        if !self.attempt_ran {
            self.attempt_ran = true;
            self.runs += 1;
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The pod was deleted: stop everything, then remove the pod object.
    Deleted,
    /// The main containers are done and will not restart (restartPolicy Never/OnFailure).
    Completed,
    /// An init container failed for good, or the active deadline passed.
    Failed,
}

#[derive(Clone, Copy, Debug)]
struct Termination {
    ending: Ending,
    deadline: Instant,
}

pub struct PodWorker {
    pub uid: String,
    pod: Arc<Pod>,
    init: Vec<Slot>,
    main: Vec<Slot>,
    qos: String,
    rejection: Option<Rejection>,
    failure: Option<(String, String)>,
    started: Option<Instant>,
    events: Events,
    start_wall: Option<Timestamp>,
    sandbox_ready: Option<Instant>,
    pod_ip: Option<Ipv4Addr>,
    host_ip: Ipv4Addr,
    initialized: bool,
    termination: Option<Termination>,
    finished: bool,
    times: TransitionTimes,
    /// When the node evicted the pod, for its `DisruptionTarget` condition.
    evicted_at: Option<Timestamp>,
}

fn spec(pod: &Pod) -> &PodSpec {
    static EMPTY: std::sync::OnceLock<PodSpec> = std::sync::OnceLock::new();
    pod.spec
        .as_ref()
        .unwrap_or_else(|| EMPTY.get_or_init(PodSpec::default))
}

fn pod_grace(pod: &Pod) -> Duration {
    let secs = pod
        .metadata
        .deletion_grace_period_seconds
        .or_else(|| spec(pod).termination_grace_period_seconds)
        .unwrap_or(30);
    seconds(secs)
}

impl PodWorker {
    pub fn new(pod: Arc<Pod>, host_ip: Ipv4Addr) -> PodWorker {
        let s = spec(&pod);
        let api = pod.status.as_ref();
        let previous = |list: Option<&Vec<ContainerStatus>>, name: &str| {
            list.and_then(|l| l.iter().find(|c| c.name == name))
                .cloned()
        };
        let init = s
            .init_containers
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, c)| {
                let kind = if is_sidecar(c) {
                    ContainerKind::Sidecar
                } else {
                    ContainerKind::Init
                };
                Slot::new(
                    c,
                    i,
                    kind,
                    previous(
                        api.and_then(|a| a.init_container_statuses.as_ref()),
                        &c.name,
                    )
                    .as_ref(),
                )
            })
            .collect();
        let main = s
            .containers
            .iter()
            .enumerate()
            .map(|(i, c)| {
                Slot::new(
                    c,
                    i,
                    ContainerKind::Regular,
                    previous(api.and_then(|a| a.container_statuses.as_ref()), &c.name).as_ref(),
                )
            })
            .collect();
        let qos = api.and_then(|a| a.qos_class.clone()).unwrap_or_else(|| {
            let spec_json = serde_json::to_value(s).unwrap_or(Value::Null);
            crate::resources::defaults::pod::qos_class(&spec_json).to_string()
        });
        PodWorker {
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            start_wall: api.and_then(|a| a.start_time.as_ref()).map(|t| t.0),
            times: TransitionTimes::from_api(
                api.and_then(|a| a.conditions.as_deref())
                    .unwrap_or_default(),
            ),
            pod,
            init,
            main,
            qos,
            rejection: None,
            failure: None,
            started: None,
            events: Events::default(),
            sandbox_ready: None,
            pod_ip: None,
            host_ip,
            initialized: false,
            termination: None,
            finished: false,
            evicted_at: None,
        }
    }

    /// Where this pod's events go, as the kubelet on `node`.
    pub fn set_events(&mut self, sink: EventSink, node: &str) {
        self.events = Events {
            sink,
            node: node.to_string(),
        };
    }

    pub fn pod(&self) -> &Arc<Pod> {
        &self.pod
    }

    /// A newer version of the pod from the API (deletion shows up at the next sync).
    pub fn update(&mut self, pod: Arc<Pod>) {
        self.pod = pod;
    }

    /// Ends the pod for node pressure: its containers are stopped within `grace` and it ends
    /// `Failed`, reason `Evicted`, with `message` (also on a `DisruptionTarget` condition).
    /// Returns false when the pod is already ending.
    pub fn evict(
        &mut self,
        message: String,
        grace: Duration,
        rt: &mut dyn Runtime,
        wall: Timestamp,
        now: Instant,
    ) -> bool {
        self.end_evicted(message, Some(wall), grace, rt, now)
    }

    /// Ends the pod for going over its local ephemeral storage limits (see `local_storage`):
    /// as [`PodWorker::evict`], but without the `DisruptionTarget` condition, which the kubelet
    /// 1.32 sets only for node-pressure evictions.
    pub fn evict_for_storage(
        &mut self,
        message: String,
        grace: Duration,
        rt: &mut dyn Runtime,
        now: Instant,
    ) -> bool {
        self.end_evicted(message, None, grace, rt, now)
    }

    fn end_evicted(
        &mut self,
        message: String,
        disruption_at: Option<Timestamp>,
        grace: Duration,
        rt: &mut dyn Runtime,
        now: Instant,
    ) -> bool {
        if self.finished || self.termination.is_some() {
            return false;
        }
        self.failure = Some((super::eviction::REASON.into(), message));
        self.evicted_at = disruption_at;
        self.begin_termination(Ending::Failed, grace, rt, now);
        true
    }

    /// Whether the node may evict this pod at all: not once it is ending, never a static,
    /// mirror or system-critical pod (the kubelet's `IsCriticalPod`).
    pub fn evictable(&self) -> bool {
        if self.finished || self.termination.is_some() || self.deleting() {
            return false;
        }
        let critical_priority = spec(&self.pod)
            .priority
            .is_some_and(|p| p >= super::eviction::SYSTEM_CRITICAL_PRIORITY);
        let annotations = self.pod.metadata.annotations.as_ref();
        let static_or_mirror = annotations.is_some_and(|a| {
            a.contains_key("kubernetes.io/config.mirror")
                || a.get("kubernetes.io/config.source")
                    .is_some_and(|s| s != "api")
        });
        !critical_priority && !static_or_mirror
    }

    pub fn reject(&mut self, r: Rejection) {
        self.rejection = Some(r);
        self.finished = true;
    }

    pub fn rejection(&self) -> Option<&Rejection> {
        self.rejection.as_ref()
    }

    pub fn set_pod_ip(&mut self, ip: Ipv4Addr) {
        self.pod_ip = Some(ip);
    }

    pub fn pod_ip(&self) -> Option<Ipv4Addr> {
        self.pod_ip
    }

    pub fn host_network(&self) -> bool {
        spec(&self.pod).host_network == Some(true)
    }

    /// Each container's current attempt (init, sidecar and regular), by container name: what
    /// the kubelet's stats summary asks the runtime about.
    pub fn current_containers(&self) -> impl Iterator<Item = (&str, &ContainerId)> {
        self.init
            .iter()
            .chain(self.main.iter())
            .filter_map(|s| Some((s.name.as_str(), s.attempt.as_ref()?)))
    }

    /// All containers have stopped for good (or the pod was rejected).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    pub fn ending(&self) -> Option<Ending> {
        self.termination.map(|t| t.ending)
    }

    fn deleting(&self) -> bool {
        self.pod.metadata.deletion_timestamp.is_some()
    }

    /// Done, and the pod object should now be removed.
    pub fn ready_to_delete(&self) -> bool {
        self.finished && (self.deleting() || self.ending() == Some(Ending::Deleted))
    }

    /// Advances the pod at `now`; returns when to look again.
    pub fn sync(
        &mut self,
        rt: &mut dyn Runtime,
        cx: &SyncContext<'_>,
        now: Instant,
    ) -> Option<Instant> {
        if self.finished {
            return None;
        }
        let mut wake = Wake::default();
        let started = *self.started.get_or_insert(now);
        if self.termination.is_none() {
            if self.deleting() {
                self.begin_termination(Ending::Deleted, pod_grace(&self.pod), rt, now);
            } else if let Some(secs) = spec(&self.pod).active_deadline_seconds {
                let deadline = after(started, seconds(secs));
                if now >= deadline {
                    self.failure = Some((
                        "DeadlineExceeded".into(),
                        "Pod was active on the node longer than the specified deadline".into(),
                    ));
                    self.begin_termination(Ending::Failed, pod_grace(&self.pod), rt, now);
                } else {
                    wake.at(Some(deadline));
                }
            }
        }
        if self.termination.is_some() {
            self.shorten_grace(rt, now);
            return self.sync_termination(rt, now, wake);
        }
        let ready_at = match self.sandbox_ready {
            Some(t) => t,
            None => *self
                .sandbox_ready
                .insert(rt.run_sandbox(cx.node, &self.pod, now)),
        };
        if now < ready_at {
            wake.at(Some(ready_at));
            return wake.0;
        }
        let pod = self.pod.clone();
        let s = spec(&pod);
        let policy = s.restart_policy.as_deref().unwrap_or("Always").to_string();
        let init_specs = s.init_containers.as_deref().unwrap_or_default();
        if !self.initialized {
            for slot in self.init.iter_mut() {
                let Some(c) = init_specs.get(slot.index) else {
                    continue;
                };
                let sidecar = slot.kind == ContainerKind::Sidecar;
                let restart = |code: i32| sidecar || (policy != "Never" && code != 0);
                match drive(
                    slot,
                    c,
                    &pod,
                    &restart,
                    rt,
                    cx,
                    &self.events,
                    now,
                    &mut wake,
                ) {
                    Progress::Running { started: true } if sidecar => continue,
                    Progress::Succeeded if !sidecar => continue,
                    Progress::Failed if !sidecar => {
                        self.begin_termination(Ending::Failed, pod_grace(&pod), rt, now);
                        return self.sync_termination(rt, now, wake);
                    }
                    _ => return wake.0,
                }
            }
            self.initialized = true;
        }
        for slot in self
            .init
            .iter_mut()
            .filter(|s| s.kind == ContainerKind::Sidecar)
        {
            if let Some(c) = init_specs.get(slot.index) {
                drive(
                    slot,
                    c,
                    &pod,
                    &|_| true,
                    rt,
                    cx,
                    &self.events,
                    now,
                    &mut wake,
                );
            }
        }
        let mut all_done = true;
        for slot in self.main.iter_mut() {
            let Some(c) = s.containers.get(slot.index) else {
                continue;
            };
            let restart = |code: i32| policy == "Always" || (policy == "OnFailure" && code != 0);
            match drive(
                slot,
                c,
                &pod,
                &restart,
                rt,
                cx,
                &self.events,
                now,
                &mut wake,
            ) {
                Progress::Succeeded | Progress::Failed => {}
                _ => all_done = false,
            }
        }
        if all_done {
            self.begin_termination(Ending::Completed, pod_grace(&pod), rt, now);
            return self.sync_termination(rt, now, wake);
        }
        wake.0
    }

    fn begin_termination(
        &mut self,
        ending: Ending,
        grace: Duration,
        rt: &mut dyn Runtime,
        now: Instant,
    ) {
        let deadline = after(now, grace);
        self.termination = Some(Termination { ending, deadline });
        let mut wake = Wake::default();
        for slot in self
            .init
            .iter_mut()
            .filter(|s| s.kind != ContainerKind::Sidecar)
            .chain(self.main.iter_mut())
        {
            stop(slot, &self.pod, &self.events, rt, deadline, now, &mut wake);
        }
    }

    /// A second delete may shorten the grace period (the API server moved the deadline back):
    /// like the kubelet, bring the kill forward for the containers already stopping.
    fn shorten_grace(&mut self, rt: &mut dyn Runtime, now: Instant) {
        let Some(t) = self.termination.as_mut() else {
            return;
        };
        let deadline = after(now, pod_grace(&self.pod));
        if t.ending != Ending::Deleted || deadline >= t.deadline {
            return;
        }
        t.deadline = deadline;
        let grace = deadline.saturating_duration_since(now).max(MIN_GRACE);
        for slot in self.init.iter().chain(self.main.iter()) {
            if let Some(id) = slot.attempt.as_ref().filter(|_| slot.stop_requested) {
                rt.stop_container(id, grace, now);
            }
        }
    }

    /// Regular containers stop together; then sidecars one by one, last first.
    fn sync_termination(
        &mut self,
        rt: &mut dyn Runtime,
        now: Instant,
        mut wake: Wake,
    ) -> Option<Instant> {
        let Some(t) = self.termination else {
            return wake.0;
        };
        let mut pending = false;
        for slot in self
            .init
            .iter_mut()
            .filter(|s| s.kind != ContainerKind::Sidecar)
            .chain(self.main.iter_mut())
        {
            pending |= stop(
                slot,
                &self.pod,
                &self.events,
                rt,
                t.deadline,
                now,
                &mut wake,
            );
        }
        if pending {
            return wake.0;
        }
        for slot in self
            .init
            .iter_mut()
            .rev()
            .filter(|s| s.kind == ContainerKind::Sidecar)
        {
            if stop(
                slot,
                &self.pod,
                &self.events,
                rt,
                t.deadline,
                now,
                &mut wake,
            ) {
                return wake.0;
            }
        }
        self.finished = true;
        None
    }

    /// The pod's status as the kubelet would write it at `now`.
    pub fn api_status(&mut self, rt: &dyn Runtime, clock: &Clock, now: Instant) -> Value {
        let start = *self
            .start_wall
            .get_or_insert_with(|| clock.wall(self.started.unwrap_or(now)));
        let start_time = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(start);
        if let Some(r) = &self.rejection {
            return json!({"phase": "Failed", "reason": r.reason, "message": r.status_message(),
                          "qosClass": self.qos, "startTime": start_time});
        }
        let pod = self.pod.clone();
        let s = spec(&pod);
        let init_specs = s.init_containers.as_deref().unwrap_or_default();
        let default_reason = if init_specs.is_empty() {
            "ContainerCreating"
        } else {
            "PodInitializing"
        };
        let init: Vec<ContainerStatus> = self
            .init
            .iter()
            .filter_map(|slot| {
                init_specs
                    .get(slot.index)
                    .map(|c| container_status(slot, c, rt, clock, now, default_reason))
            })
            .collect();
        let main: Vec<ContainerStatus> = self
            .main
            .iter()
            .filter_map(|slot| {
                s.containers
                    .get(slot.index)
                    .map(|c| container_status(slot, c, rt, clock, now, default_reason))
            })
            .collect();
        let mut all = init.clone();
        all.extend(main.iter().cloned());
        let main_started = self.main.iter().any(|m| m.runs > 0);
        let mut phase = pod_phase(s, &all, self.finished, main_started);
        // As the status manager's `mergePodStatus`: a pod whose containers may still run is
        // not reported terminal yet, nor with the reason and message of its end.
        let failure = self.failure.as_ref().filter(|_| self.finished);
        if failure.is_some() {
            phase = "Failed";
        }
        let api = pod.status.as_ref();
        if let Some(p) = api
            .and_then(|a| a.phase.as_deref())
            .filter(|p| *p == "Succeeded" || *p == "Failed")
        {
            // Pods never leave a terminal phase.
            phase = if p == "Succeeded" {
                "Succeeded"
            } else {
                "Failed"
            };
        }
        let sandbox_ready = !self.finished && self.sandbox_ready.is_some_and(|t| now >= t);
        let api_conditions = api
            .and_then(|a| a.conditions.as_deref())
            .unwrap_or_default();
        let conds = kubelet_conditions(s, api_conditions, &all, phase, sandbox_ready);
        let mut conditions = self.times.stamp(&conds, clock.wall(now));
        if let (Some(at), Some((_, message))) = (self.evicted_at, &self.failure) {
            // As the kubelet marks pods it terminates for node pressure.
            conditions.push(json!({
                "type": "DisruptionTarget",
                "status": "True",
                "lastProbeTime": null,
                "lastTransitionTime": k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(at),
                "reason": "TerminationByKubelet",
                "message": message,
            }));
        }
        let host = self.host_ip.to_string();
        let mut status = json!({
            "phase": phase,
            "conditions": conditions,
            "hostIP": host,
            "hostIPs": [{"ip": host}],
            "startTime": start_time,
            "containerStatuses": main,
            "qosClass": self.qos,
        });
        if !init.is_empty() {
            status["initContainerStatuses"] = json!(init);
        }
        let pod_ip = if self.host_network() {
            Some(self.host_ip)
        } else {
            self.pod_ip
        };
        if let Some(ip) = pod_ip.filter(|_| self.sandbox_ready.is_some_and(|t| now >= t)) {
            status["podIP"] = json!(ip.to_string());
            status["podIPs"] = json!([{"ip": ip.to_string()}]);
        }
        if let Some((reason, message)) = failure {
            status["reason"] = json!(reason);
            status["message"] = json!(message);
        }
        status
    }
}

/// Brings one container towards running under `restart`; see [`Progress`].
#[allow(clippy::too_many_arguments)]
fn drive(
    slot: &mut Slot,
    c: &Container,
    pod: &Pod,
    restart: &dyn Fn(i32) -> bool,
    rt: &mut dyn Runtime,
    cx: &SyncContext<'_>,
    ev: &Events,
    now: Instant,
    wake: &mut Wake,
) -> Progress {
    if let Some(id) = slot.attempt.clone() {
        match rt.state(&id, now) {
            ContainerState::Creating => {
                wake.at(rt.next_change(&id, now));
                return Progress::Pending;
            }
            ContainerState::PullFailed { message } => {
                slot.pull_started = None;
                ev.emit(pod, &slot.name, WARNING, "Failed", || message.clone());
                ev.emit(pod, &slot.name, WARNING, "Failed", || {
                    "Error: ErrImagePull".into()
                });
                rt.remove_container(&id);
                slot.attempt = None;
                slot.pull.next(cx.backoff, now, now);
                slot.waiting = Some(Waiting {
                    reason: "ErrImagePull",
                    message: Some(message),
                });
                let until = now + cx.error_requeue;
                slot.pull_error_until = Some(until);
                wake.at(Some(until));
                return Progress::Pending;
            }
            ContainerState::Running { started, .. } => {
                if !slot.attempt_ran {
                    ran(slot, c, pod, ev, now);
                }
                slot.count_run();
                slot.waiting = None;
                probe_events(slot, &id, pod, restart, rt, ev, now);
                wake.at(rt.next_change(&id, now));
                return Progress::Running { started };
            }
            ContainerState::Exited(exit) => {
                if !slot.attempt_ran {
                    if exit.started_at.is_some() {
                        ran(slot, c, pod, ev, now);
                    } else if let Some(m) = &exit.message {
                        ev.emit(pod, &slot.name, WARNING, "Failed", || format!("Error: {m}"));
                    }
                }
                if exit.started_at.is_some() {
                    probe_events(slot, &id, pod, restart, rt, ev, exit.finished_at.min(now));
                }
                slot.count_run();
                if !restart(exit.exit_code) {
                    slot.waiting = None;
                    return if exit.exit_code == 0 {
                        Progress::Succeeded
                    } else {
                        Progress::Failed
                    };
                }
                if slot
                    .crash
                    .in_backoff_since(cx.backoff, exit.finished_at, now)
                {
                    let d = slot.crash.current().unwrap_or_default();
                    if slot
                        .waiting
                        .as_ref()
                        .is_none_or(|w| w.reason != "CrashLoopBackOff")
                    {
                        ev.emit(pod, &slot.name, WARNING, "BackOff", || {
                            format!(
                                "Back-off restarting failed container {} in pod {}_{}({})",
                                slot.name,
                                pod.metadata.name.as_deref().unwrap_or(""),
                                pod.metadata.namespace.as_deref().unwrap_or(""),
                                pod.metadata.uid.as_deref().unwrap_or(""),
                            )
                        });
                    }
                    slot.waiting = Some(Waiting {
                        reason: "CrashLoopBackOff",
                        message: Some(format!(
                            "back-off {} restarting failed container={} pod={}_{}({})",
                            go_duration(d),
                            slot.name,
                            pod.metadata.name.as_deref().unwrap_or(""),
                            pod.metadata.namespace.as_deref().unwrap_or(""),
                            pod.metadata.uid.as_deref().unwrap_or(""),
                        )),
                    });
                    wake.at(Some(exit.finished_at + d));
                    return Progress::Pending;
                }
                slot.crash.next(cx.backoff, exit.finished_at, now);
                rt.remove_container(&id);
                slot.last = Some((exit, id));
                slot.attempt = None;
            }
        }
    } else if let Some(until) = slot.pull_error_until.filter(|u| now < *u) {
        wake.at(Some(until));
        return Progress::Pending;
    }
    if slot.pull.in_backoff_since_update(cx.backoff, now) {
        if slot
            .waiting
            .as_ref()
            .is_none_or(|w| w.reason != "ImagePullBackOff")
        {
            ev.emit(pod, &slot.name, NORMAL, "BackOff", || {
                format!(
                    "Back-off pulling image \"{}\"",
                    c.image.as_deref().unwrap_or("")
                )
            });
            ev.emit(pod, &slot.name, WARNING, "Failed", || {
                "Error: ImagePullBackOff".into()
            });
        }
        slot.waiting = Some(Waiting {
            reason: "ImagePullBackOff",
            message: Some(format!(
                "Back-off pulling image \"{}\"",
                c.image.as_deref().unwrap_or("")
            )),
        });
        wake.at(slot.pull.window_end());
        return Progress::Pending;
    }
    slot.pull_error_until = None;
    let attempt = slot.attempts;
    slot.attempts += 1;
    let image = c.image.as_deref().unwrap_or("");
    if rt.has_image(cx.node, image) {
        slot.pull_started = None;
        ev.emit(pod, &slot.name, NORMAL, "Pulled", || {
            format!("Container image \"{image}\" already present on machine")
        });
    } else {
        slot.pull_started = Some(now);
        ev.emit(pod, &slot.name, NORMAL, "Pulling", || {
            format!("Pulling image \"{image}\"")
        });
    }
    let id = rt.start_container(
        StartRequest {
            node: cx.node,
            pod,
            container: c,
            kind: slot.kind,
            attempt,
        },
        now,
    );
    wake.at(rt.next_change(&id, now).or(Some(now)));
    slot.attempt = Some(id);
    slot.attempt_ran = false;
    slot.stop_requested = false;
    slot.probes_seen = None;
    Progress::Pending
}

/// The kubelet's prober events for what failed since the last look: `Unhealthy` for each
/// failed probe, then `Killing` when a liveness or startup probe's failures reach the threshold.
fn probe_events(
    slot: &mut Slot,
    id: &str,
    pod: &Pod,
    restart: &dyn Fn(i32) -> bool,
    rt: &dyn Runtime,
    ev: &Events,
    now: Instant,
) {
    if !ev.sink.enabled() || slot.probes_seen.is_some_and(|t| t >= now) {
        return;
    }
    let failures = rt.probe_failures(id, slot.probes_seen, now);
    slot.probes_seen = Some(now);
    for f in failures {
        if f.warning {
            ev.emit(pod, &slot.name, WARNING, "ProbeWarning", || {
                format!("{} probe warning: {}", f.kind.name(), f.output)
            });
            continue;
        }
        ev.emit(pod, &slot.name, WARNING, "Unhealthy", || {
            format!("{} probe failed: {}", f.kind.name(), f.output)
        });
        if f.kills {
            ev.emit(pod, &slot.name, NORMAL, "Killing", || {
                // Upstream says "will be restarted" whenever the restart policy is not Never.
                let again = if restart(137) {
                    ", will be restarted"
                } else {
                    ""
                };
                format!(
                    "Container {} failed {} probe{again}",
                    slot.name,
                    f.kind.name().to_lowercase()
                )
            });
        }
    }
}

/// Asks a container to stop by `deadline`; `true` while it has not exited.
#[allow(clippy::too_many_arguments)]
fn stop(
    slot: &mut Slot,
    pod: &Pod,
    ev: &Events,
    rt: &mut dyn Runtime,
    deadline: Instant,
    now: Instant,
    wake: &mut Wake,
) -> bool {
    let Some(id) = slot.attempt.clone() else {
        return false;
    };
    match rt.state(&id, now) {
        ContainerState::Exited(_) => {
            if slot
                .waiting
                .as_ref()
                .is_some_and(|w| w.reason == "CrashLoopBackOff")
            {
                // It will not be restarted any more: show how it ended.
                slot.waiting = None;
            }
            false
        }
        ContainerState::PullFailed { .. } => {
            rt.remove_container(&id);
            slot.attempt = None;
            false
        }
        ContainerState::Creating | ContainerState::Running { .. } => {
            if !slot.stop_requested {
                // Every container gets at least the minimum grace, even when the pod's is used up.
                let grace = deadline.saturating_duration_since(now).max(MIN_GRACE);
                ev.emit(pod, &slot.name, NORMAL, "Killing", || {
                    format!("Stopping container {}", slot.name)
                });
                rt.stop_container(&id, grace, now);
                slot.stop_requested = true;
            }
            wake.at(rt.next_change(&id, now));
            true
        }
    }
}

/// The events the kubelet records once an attempt has run: its image pulled (when it had to
/// be), the container created and started.
fn ran(slot: &mut Slot, c: &Container, pod: &Pod, ev: &Events, now: Instant) {
    if let Some(t) = slot.pull_started.take() {
        let took = go_duration(now.saturating_duration_since(t));
        ev.emit(pod, &slot.name, NORMAL, "Pulled", || {
            format!(
                "Successfully pulled image \"{}\" in {took} ({took} including waiting). Image size: 0 bytes.",
                c.image.as_deref().unwrap_or("")
            )
        });
    }
    ev.emit(pod, &slot.name, NORMAL, "Created", || {
        format!("Created container: {}", slot.name)
    });
    ev.emit(pod, &slot.name, NORMAL, "Started", || {
        format!("Started container {}", slot.name)
    });
}

/// The pod worker's handle on its node's event sink.
#[derive(Clone, Default)]
struct Events {
    sink: EventSink,
    node: String,
}

impl Events {
    fn emit(
        &self,
        pod: &Pod,
        container: &str,
        type_: &'static str,
        reason: &str,
        message: impl FnOnce() -> String,
    ) {
        self.sink
            .pod_event(&self.node, pod, Some(container), type_, reason, message);
    }
}

fn terminated(e: &Exit, id: &str, clock: &Clock) -> ContainerStateTerminated {
    ContainerStateTerminated {
        container_id: Some(id.to_string()),
        exit_code: e.exit_code,
        finished_at: Some(clock.time(e.finished_at)),
        message: e.message.clone(),
        reason: Some(e.reason.clone()),
        signal: None,
        started_at: e.started_at.map(|t| clock.time(t)),
    }
}

fn waiting_state(reason: &str, message: Option<String>) -> ApiState {
    ApiState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.to_string()),
            message,
        }),
        ..Default::default()
    }
}

fn volume_mounts(c: &Container) -> Option<Vec<VolumeMountStatus>> {
    let mounts = c.volume_mounts.as_ref()?;
    Some(
        mounts
            .iter()
            .map(|m| {
                let read_only = m.read_only == Some(true);
                VolumeMountStatus {
                    mount_path: m.mount_path.clone(),
                    name: m.name.clone(),
                    read_only: read_only.then_some(true),
                    recursive_read_only: read_only.then(|| {
                        if m.recursive_read_only.as_deref() == Some("Enabled") {
                            "Enabled".to_string()
                        } else {
                            "Disabled".to_string()
                        }
                    }),
                }
            })
            .collect(),
    )
}

fn container_status(
    slot: &Slot,
    c: &Container,
    rt: &dyn Runtime,
    clock: &Clock,
    now: Instant,
    default_reason: &str,
) -> ContainerStatus {
    let image = c.image.clone().unwrap_or_default();
    let mut cs = ContainerStatus {
        name: slot.name.clone(),
        image: image.clone(),
        restart_count: slot.restart_count(),
        started: Some(false),
        ..Default::default()
    };
    let last = slot.last.as_ref().map(|(e, id)| ApiState {
        terminated: Some(terminated(e, id, clock)),
        ..Default::default()
    });
    let waiting = slot.waiting.clone();
    let (state, last_state) = match slot.attempt.as_ref().map(|id| (id, rt.state(id, now))) {
        None => {
            let w = waiting.unwrap_or(Waiting {
                reason: "",
                message: None,
            });
            let reason = if w.reason.is_empty() {
                default_reason
            } else {
                w.reason
            };
            (waiting_state(reason, w.message), last)
        }
        Some((_, ContainerState::Creating | ContainerState::PullFailed { .. })) => {
            let (reason, message) =
                waiting.map_or(("ContainerCreating", None), |w| (w.reason, w.message));
            (waiting_state(reason, message), last)
        }
        Some((
            id,
            ContainerState::Running {
                started_at,
                started,
                ready,
            },
        )) => {
            cs.container_id = Some(id.clone());
            cs.image_id = rt.image_id(&image);
            cs.started = Some(started);
            // A regular init container is ready only once it has succeeded.
            cs.ready = ready && slot.kind != ContainerKind::Init;
            cs.volume_mounts = volume_mounts(c);
            let state = ApiState {
                running: Some(ContainerStateRunning {
                    started_at: Some(clock.time(started_at)),
                }),
                ..Default::default()
            };
            (state, last)
        }
        Some((id, ContainerState::Exited(e))) => {
            cs.container_id = Some(id.clone());
            cs.image_id = rt.image_id(&image);
            cs.volume_mounts = volume_mounts(c);
            let ended = ApiState {
                terminated: Some(terminated(&e, id, clock)),
                ..Default::default()
            };
            match waiting {
                Some(w) => (waiting_state(w.reason, w.message), Some(ended)),
                None => {
                    // A regular init container that succeeded counts as ready.
                    cs.ready = slot.kind == ContainerKind::Init && e.exit_code == 0;
                    (ended, last)
                }
            }
        }
    };
    cs.state = Some(state);
    cs.last_state = Some(last_state.unwrap_or_default());
    cs
}

#[cfg(test)]
mod tests;
