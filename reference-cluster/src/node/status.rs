//! Pod phase and the kubelet-owned pod conditions, computed from container statuses exactly as
//! upstream's `getPhase` and `pkg/kubelet/status/generate.go` do (Kubernetes 1.32, sidecars
//! included), plus `lastTransitionTime` bookkeeping.

use k8s_openapi::api::core::v1::{Container, ContainerStatus, PodCondition, PodSpec};
use k8s_openapi::jiff::Timestamp;
use serde_json::{json, Value};

pub const POD_READY_TO_START_CONTAINERS: &str = "PodReadyToStartContainers";
pub const INITIALIZED: &str = "Initialized";
pub const READY: &str = "Ready";
pub const CONTAINERS_READY: &str = "ContainersReady";
pub const POD_SCHEDULED: &str = "PodScheduled";

/// The conditions the kubelet owns; all others (readiness gates, `DisruptionTarget`) are left
/// to whoever set them.
pub const KUBELET_CONDITIONS: [&str; 5] = [
    POD_READY_TO_START_CONTAINERS,
    INITIALIZED,
    READY,
    CONTAINERS_READY,
    POD_SCHEDULED,
];

pub fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

fn find<'a>(statuses: &'a [ContainerStatus], name: &str) -> Option<&'a ContainerStatus> {
    statuses.iter().find(|s| s.name == name)
}

fn running(s: &ContainerStatus) -> bool {
    s.state.as_ref().is_some_and(|st| st.running.is_some())
}

fn terminated_code(s: &ContainerStatus) -> Option<i32> {
    s.state
        .as_ref()
        .and_then(|st| st.terminated.as_ref())
        .map(|t| t.exit_code)
}

fn waiting(s: &ContainerStatus) -> bool {
    s.state.as_ref().is_some_and(|st| st.waiting.is_some())
}

fn last_terminated_code(s: &ContainerStatus) -> Option<i32> {
    s.last_state
        .as_ref()
        .and_then(|st| st.terminated.as_ref())
        .map(|t| t.exit_code)
}

fn started(s: &ContainerStatus) -> bool {
    s.started == Some(true)
}

/// `getPhase`. `statuses` holds init and regular container statuses together.
pub fn pod_phase(
    spec: &PodSpec,
    statuses: &[ContainerStatus],
    pod_is_terminal: bool,
    has_initialized: bool,
) -> &'static str {
    let init = spec.init_containers.as_deref().unwrap_or_default();
    let mut pending_restartable_init = 0;
    let mut pending_regular_init = 0;
    let mut failed_initialization = 0;
    for c in init.iter().filter(|c| !is_sidecar(c)) {
        let Some(s) = find(statuses, &c.name) else {
            pending_regular_init += 1;
            continue;
        };
        if running(s) {
            pending_regular_init += 1;
        } else if let Some(code) = terminated_code(s) {
            if code != 0 {
                failed_initialization += 1;
            }
        } else if waiting(s) {
            match last_terminated_code(s) {
                Some(code) if code != 0 => failed_initialization += 1,
                Some(_) => {}
                None => pending_regular_init += 1,
            }
        } else {
            pending_regular_init += 1;
        }
    }
    let (mut unknown, mut running_n, mut waiting_n, mut stopped, mut succeeded) = (0, 0, 0, 0, 0);
    for c in init.iter().filter(|c| is_sidecar(c)) {
        let Some(s) = find(statuses, &c.name) else {
            unknown += 1;
            continue;
        };
        if running(s) {
            if !started(s) {
                pending_restartable_init += 1;
            }
            running_n += 1;
        } else if terminated_code(s).is_some() {
            // Stopped sidecars do not count towards the pod's phase.
        } else if waiting(s) {
            if last_terminated_code(s).is_none() {
                pending_restartable_init += 1;
                waiting_n += 1;
            }
        } else {
            pending_restartable_init += 1;
            unknown += 1;
        }
    }
    for c in &spec.containers {
        let Some(s) = find(statuses, &c.name) else {
            unknown += 1;
            continue;
        };
        if running(s) {
            running_n += 1;
        } else if let Some(code) = terminated_code(s) {
            stopped += 1;
            if code == 0 {
                succeeded += 1;
            }
        } else if waiting(s) {
            if last_terminated_code(s).is_some() {
                stopped += 1;
            } else {
                waiting_n += 1;
            }
        } else {
            unknown += 1;
        }
    }
    let policy = spec.restart_policy.as_deref().unwrap_or("Always");
    if failed_initialization > 0 && policy == "Never" {
        return "Failed";
    }
    if pending_regular_init > 0
        || (pending_restartable_init > 0 && !has_initialized)
        || waiting_n > 0
    {
        return "Pending";
    }
    if running_n > 0 && unknown == 0 {
        return "Running";
    }
    if running_n == 0 && stopped > 0 && unknown == 0 {
        if pod_is_terminal {
            return if stopped == succeeded {
                "Succeeded"
            } else {
                "Failed"
            };
        }
        if policy == "Always" {
            return "Running";
        }
        if stopped == succeeded {
            return "Succeeded";
        }
        if policy == "Never" {
            return "Failed";
        }
        return "Running";
    }
    "Pending"
}

/// A condition before its transition time is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cond {
    pub type_: &'static str,
    pub status: bool,
    pub reason: Option<String>,
    pub message: Option<String>,
}

impl Cond {
    fn new(type_: &'static str, status: bool) -> Cond {
        Cond {
            type_,
            status,
            reason: None,
            message: None,
        }
    }

    fn because(mut self, reason: &str, message: Option<String>) -> Cond {
        self.reason = Some(reason.to_string());
        self.message = message;
        self
    }
}

/// Go's `%s` of a `[]string`: `[a b]`.
fn go_list(names: &[&str]) -> String {
    format!("[{}]", names.join(" "))
}

fn terminal_reason(phase: &str) -> Option<&'static str> {
    match phase {
        "Failed" => Some("PodFailed"),
        "Succeeded" => Some("PodCompleted"),
        _ => None,
    }
}

/// `GenerateContainersReadyCondition`.
pub fn containers_ready(spec: &PodSpec, statuses: &[ContainerStatus], phase: &str) -> Cond {
    let mut unknown = Vec::new();
    let mut unready = Vec::new();
    let sidecars = spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| is_sidecar(c));
    for c in sidecars.chain(spec.containers.iter()) {
        match find(statuses, &c.name) {
            Some(s) if !s.ready => unready.push(c.name.as_str()),
            Some(_) => {}
            None => unknown.push(c.name.as_str()),
        }
    }
    if (phase == "Succeeded" && unknown.is_empty()) || phase == "Failed" {
        let reason = terminal_reason(phase).unwrap_or_default();
        return Cond::new(CONTAINERS_READY, false).because(reason, None);
    }
    let mut messages = Vec::new();
    if !unknown.is_empty() {
        messages.push(format!(
            "containers with unknown status: {}",
            go_list(&unknown)
        ));
    }
    if !unready.is_empty() {
        messages.push(format!(
            "containers with unready status: {}",
            go_list(&unready)
        ));
    }
    if messages.is_empty() {
        Cond::new(CONTAINERS_READY, true)
    } else {
        Cond::new(CONTAINERS_READY, false).because("ContainersNotReady", Some(messages.join(", ")))
    }
}

/// `GeneratePodReadyCondition`: containers ready and every readiness gate's condition `True`.
/// `conditions` are the pod's current conditions (where readiness gates are set by others).
pub fn pod_ready(
    spec: &PodSpec,
    conditions: &[PodCondition],
    statuses: &[ContainerStatus],
    phase: &str,
) -> Cond {
    let cr = containers_ready(spec, statuses, phase);
    if !cr.status {
        return Cond { type_: READY, ..cr };
    }
    let mut messages = Vec::new();
    for gate in spec.readiness_gates.iter().flatten() {
        match conditions.iter().find(|c| c.type_ == gate.condition_type) {
            None => messages.push(format!(
                "corresponding condition of pod readiness gate \"{}\" does not exist.",
                gate.condition_type
            )),
            Some(c) if c.status != "True" => messages.push(format!(
                "the status of pod readiness gate \"{}\" is not \"True\", but {}",
                gate.condition_type, c.status
            )),
            Some(_) => {}
        }
    }
    if messages.is_empty() {
        Cond::new(READY, true)
    } else {
        Cond::new(READY, false).because("ReadinessGatesNotReady", Some(messages.join(", ")))
    }
}

/// `GeneratePodInitializedCondition`.
pub fn initialized(spec: &PodSpec, statuses: &[ContainerStatus], phase: &str) -> Cond {
    let mut unknown = Vec::new();
    let mut incomplete = Vec::new();
    for c in spec.init_containers.iter().flatten() {
        let Some(s) = find(statuses, &c.name) else {
            unknown.push(c.name.as_str());
            continue;
        };
        let done = if is_sidecar(c) { started(s) } else { s.ready };
        if !done {
            incomplete.push(c.name.as_str());
        }
    }
    if phase == "Succeeded" && unknown.is_empty() {
        return Cond::new(INITIALIZED, true).because("PodCompleted", None);
    }
    let any_regular_started = spec
        .containers
        .iter()
        .any(|c| find(statuses, &c.name).is_some_and(started));
    if any_regular_started {
        return Cond::new(INITIALIZED, true);
    }
    let mut messages = Vec::new();
    if !unknown.is_empty() {
        messages.push(format!(
            "containers with unknown status: {}",
            go_list(&unknown)
        ));
    }
    if !incomplete.is_empty() {
        messages.push(format!(
            "containers with incomplete status: {}",
            go_list(&incomplete)
        ));
    }
    if messages.is_empty() {
        Cond::new(INITIALIZED, true)
    } else {
        Cond::new(INITIALIZED, false).because("ContainersNotInitialized", Some(messages.join(", ")))
    }
}

/// The kubelet's conditions in the kubelet's order.
pub fn kubelet_conditions(
    spec: &PodSpec,
    api_conditions: &[PodCondition],
    statuses: &[ContainerStatus],
    phase: &str,
    sandbox_ready: bool,
) -> Vec<Cond> {
    vec![
        Cond::new(POD_READY_TO_START_CONTAINERS, sandbox_ready),
        initialized(spec, statuses, phase),
        pod_ready(spec, api_conditions, statuses, phase),
        containers_ready(spec, statuses, phase),
        Cond::new(POD_SCHEDULED, true),
    ]
}

/// Remembers when each condition last changed, as the status manager does.
#[derive(Clone, Debug, Default)]
pub struct TransitionTimes {
    seen: Vec<(&'static str, bool, Timestamp)>,
}

impl TransitionTimes {
    /// Seeds the times from conditions already on the pod (an agent picking up a running pod).
    pub fn from_api(conditions: &[PodCondition]) -> TransitionTimes {
        let mut t = TransitionTimes::default();
        for c in conditions {
            let Some(type_) = KUBELET_CONDITIONS.iter().find(|k| **k == c.type_) else {
                continue;
            };
            if let Some(at) = &c.last_transition_time {
                t.seen.push((type_, c.status == "True", at.0));
            }
        }
        t
    }

    /// The conditions as JSON for a strategic merge patch (explicit nulls clear stale fields).
    pub fn stamp(&mut self, conds: &[Cond], now: Timestamp) -> Vec<Value> {
        conds
            .iter()
            .map(|c| {
                let at = match self.seen.iter_mut().find(|(t, _, _)| *t == c.type_) {
                    Some(entry) if entry.1 == c.status => entry.2,
                    Some(entry) => {
                        *entry = (c.type_, c.status, now);
                        now
                    }
                    None => {
                        self.seen.push((c.type_, c.status, now));
                        now
                    }
                };
                json!({
                    "type": c.type_,
                    "status": if c.status { "True" } else { "False" },
                    "lastProbeTime": null,
                    "lastTransitionTime": k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(at),
                    "reason": c.reason,
                    "message": c.message,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: Value) -> PodSpec {
        serde_json::from_value(v).unwrap()
    }

    fn st(v: Value) -> ContainerStatus {
        let mut v = v;
        for (k, d) in [
            ("image", json!("i")),
            ("imageID", json!("")),
            ("ready", json!(false)),
            ("restartCount", json!(0)),
        ] {
            if v.get(k).is_none() {
                v[k] = d;
            }
        }
        serde_json::from_value(v).unwrap()
    }

    fn run(name: &str, ready: bool) -> ContainerStatus {
        st(
            json!({"name": name, "ready": ready, "started": true, "state": {"running": {"startedAt": "2024-01-01T00:00:00Z"}}}),
        )
    }

    fn exited(name: &str, code: i32) -> ContainerStatus {
        st(
            json!({"name": name, "ready": false, "started": false, "state": {"terminated": {"exitCode": code}}}),
        )
    }

    fn wait(name: &str, reason: &str) -> ContainerStatus {
        st(json!({"name": name, "state": {"waiting": {"reason": reason}}}))
    }

    fn backoff(name: &str, last_code: i32) -> ContainerStatus {
        st(
            json!({"name": name, "state": {"waiting": {"reason": "CrashLoopBackOff"}}, "lastState": {"terminated": {"exitCode": last_code}}}),
        )
    }

    #[test]
    fn phases_follow_the_restart_policy() {
        let always = spec(json!({"containers": [{"name": "a"}, {"name": "b"}]}));
        assert_eq!(
            pod_phase(
                &always,
                &[
                    wait("a", "ContainerCreating"),
                    wait("b", "ContainerCreating")
                ],
                false,
                false
            ),
            "Pending"
        );
        assert_eq!(
            pod_phase(&always, &[run("a", true), run("b", false)], false, true),
            "Running"
        );
        assert_eq!(
            pod_phase(&always, &[run("a", true)], false, true),
            "Pending",
            "an unknown container keeps it pending"
        );
        assert_eq!(
            pod_phase(&always, &[exited("a", 0), backoff("b", 1)], false, true),
            "Running",
            "Always restarts"
        );
        assert_eq!(
            pod_phase(&always, &[exited("a", 0), exited("b", 1)], true, true),
            "Failed",
            "a deleted pod ends terminal"
        );
        assert_eq!(
            pod_phase(&always, &[exited("a", 0), exited("b", 0)], true, true),
            "Succeeded"
        );
        let never = spec(json!({"restartPolicy": "Never", "containers": [{"name": "a"}]}));
        assert_eq!(
            pod_phase(&never, &[exited("a", 0)], false, true),
            "Succeeded"
        );
        assert_eq!(pod_phase(&never, &[exited("a", 2)], false, true), "Failed");
        let on_failure = spec(json!({"restartPolicy": "OnFailure", "containers": [{"name": "a"}]}));
        assert_eq!(
            pod_phase(&on_failure, &[backoff("a", 2)], false, true),
            "Running"
        );
        assert_eq!(
            pod_phase(&on_failure, &[exited("a", 0)], false, true),
            "Succeeded"
        );
    }

    #[test]
    fn init_containers_hold_the_pod_pending_and_can_fail_it() {
        let s = spec(
            json!({"restartPolicy": "Never", "initContainers": [{"name": "i"}], "containers": [{"name": "a"}]}),
        );
        assert_eq!(
            pod_phase(
                &s,
                &[run("i", false), wait("a", "PodInitializing")],
                false,
                false
            ),
            "Pending"
        );
        assert_eq!(
            pod_phase(
                &s,
                &[exited("i", 1), wait("a", "PodInitializing")],
                false,
                false
            ),
            "Failed"
        );
        let s = spec(json!({"initContainers": [{"name": "i"}], "containers": [{"name": "a"}]}));
        assert_eq!(
            pod_phase(
                &s,
                &[backoff("i", 1), wait("a", "PodInitializing")],
                false,
                false
            ),
            "Pending"
        );
    }

    #[test]
    fn sidecars_count_while_running_and_not_once_stopped() {
        let s = spec(
            json!({"restartPolicy": "Never", "initContainers": [{"name": "side", "restartPolicy": "Always"}], "containers": [{"name": "a"}]}),
        );
        let mut unstarted = run("side", false);
        unstarted.started = Some(false);
        assert_eq!(
            pod_phase(&s, &[unstarted, wait("a", "PodInitializing")], false, false),
            "Pending"
        );
        assert_eq!(
            pod_phase(&s, &[run("side", true), exited("a", 0)], false, true),
            "Running",
            "the sidecar still runs"
        );
        assert_eq!(
            pod_phase(&s, &[exited("side", 137), exited("a", 0)], false, true),
            "Succeeded",
            "a stopped sidecar does not fail the job"
        );
    }

    #[test]
    fn conditions_carry_upstream_reasons_and_messages() {
        let s = spec(
            json!({"initContainers": [{"name": "i1"}, {"name": "i2"}], "containers": [{"name": "a"}, {"name": "b"}]}),
        );
        let statuses = [
            exited("i1", 0),
            run("i2", false),
            wait("a", "PodInitializing"),
            wait("b", "PodInitializing"),
        ];
        let mut s1 = statuses.to_vec();
        s1[0].ready = true;
        let init = initialized(&s, &s1, "Pending");
        assert_eq!(init.reason.as_deref(), Some("ContainersNotInitialized"));
        assert_eq!(
            init.message.as_deref(),
            Some("containers with incomplete status: [i2]")
        );
        let cr = containers_ready(&s, &s1, "Pending");
        assert_eq!(
            cr.message.as_deref(),
            Some("containers with unready status: [a b]")
        );
        let ready = pod_ready(&s, &[], &s1, "Pending");
        assert_eq!(
            (ready.type_, ready.status, ready.reason.as_deref()),
            (READY, false, Some("ContainersNotReady"))
        );
        let done = containers_ready(&s, &s1, "Succeeded");
        assert_eq!(done.reason.as_deref(), Some("PodCompleted"));
    }

    #[test]
    fn readiness_gates_need_their_conditions_true() {
        let s = spec(
            json!({"readinessGates": [{"conditionType": "example.com/lb"}], "containers": [{"name": "a"}]}),
        );
        let statuses = [run("a", true)];
        let r = pod_ready(&s, &[], &statuses, "Running");
        assert_eq!(r.reason.as_deref(), Some("ReadinessGatesNotReady"));
        assert_eq!(
            r.message.as_deref(),
            Some(
                "corresponding condition of pod readiness gate \"example.com/lb\" does not exist."
            )
        );
        let gate: PodCondition =
            serde_json::from_value(json!({"type": "example.com/lb", "status": "False"})).unwrap();
        assert_eq!(
            pod_ready(&s, std::slice::from_ref(&gate), &statuses, "Running")
                .message
                .as_deref(),
            Some("the status of pod readiness gate \"example.com/lb\" is not \"True\", but False")
        );
        let gate = PodCondition {
            status: "True".into(),
            ..gate
        };
        assert!(pod_ready(&s, &[gate], &statuses, "Running").status);
    }

    #[test]
    fn transition_times_move_only_on_change() {
        let t1 = Timestamp::from_second(1_700_000_000).unwrap();
        let t2 = Timestamp::from_second(1_700_000_060).unwrap();
        let mut times = TransitionTimes::default();
        let ready = |s| vec![Cond::new(READY, s)];
        let first = times.stamp(&ready(false), t1);
        assert_eq!(first[0]["lastTransitionTime"], "2023-11-14T22:13:20Z");
        assert_eq!(first[0]["reason"], Value::Null);
        let same = times.stamp(&ready(false), t2);
        assert_eq!(same[0]["lastTransitionTime"], "2023-11-14T22:13:20Z");
        let flipped = times.stamp(&ready(true), t2);
        assert_eq!(flipped[0]["lastTransitionTime"], "2023-11-14T22:14:20Z");
        assert_eq!(flipped[0]["status"], "True");
    }
}
