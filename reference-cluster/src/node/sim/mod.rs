#![doc = include_str!("../SIM.md")]

pub mod behaviour;
pub mod stages;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod};
use tokio::time::Instant;

use self::behaviour::Behaviour;
use self::stages::{
    mix, plan, plan_stop, seed_of, PlanInput, PlannedExit, SimStages, StopInput, Timeline,
};
use super::exec::script::Program;
use super::local_storage::{ContainerStorage, PodStorage};
use super::logs::{LogKey, LogStore, Script};
use super::runtime::{
    ContainerId, ContainerState, ProbeFailure, ProbeKind, Runtime, StartRequest, Usage,
};
use crate::resources::quantity::Quantity;

pub const RUNTIME_VERSION: &str = "kubeproof-sim://0.1.0";
const ID_PREFIX: &str = "kubeproof-sim://";

struct SimContainer {
    pod_uid: String,
    container: Container,
    behaviour: Behaviour,
    timeline: Timeline,
    stop: Option<PlannedExit>,
    seed: u64,
    usage: Usage,
}

/// Containers that exist only as timelines: no processes, no images, thousands per process.
pub struct SimRuntime {
    stages: SimStages,
    containers: HashMap<ContainerId, SimContainer>,
    by_pod: HashMap<String, Vec<ContainerId>>,
    /// Images each node has pulled.
    images: HashMap<String, HashSet<String>>,
    created: u64,
    logs: Option<LogStore>,
    /// Each pod's address, for a tcpSocket probe's message.
    pod_ips: HashMap<String, std::net::Ipv4Addr>,
}

impl SimRuntime {
    pub fn new(stages: SimStages) -> SimRuntime {
        SimRuntime {
            stages,
            containers: HashMap::new(),
            by_pod: HashMap::new(),
            images: HashMap::new(),
            created: 0,
            logs: None,
            pod_ips: HashMap::new(),
        }
    }

    /// A runtime whose containers write their logs (see `SIM.md`) into `logs`.
    pub fn with_logs(stages: SimStages, logs: LogStore) -> SimRuntime {
        SimRuntime {
            logs: Some(logs),
            ..SimRuntime::new(stages)
        }
    }

    pub fn container_count(&self) -> usize {
        self.containers.len()
    }
}

fn hex64(seed: u64) -> String {
    (0..4u64)
        .map(|i| format!("{:016x}", mix(seed ^ i.wrapping_mul(0x9e37_79b9))))
        .collect()
}

/// `emptydir-usage` names only the pod's `emptyDir` volumes, so a typo is reported.
fn emptydirs_exist(pod: &Pod, b: Behaviour) -> Result<Behaviour, String> {
    let volumes = pod.spec.as_ref().and_then(|s| s.volumes.as_deref());
    let empty_dir = |name: &str| {
        volumes
            .unwrap_or_default()
            .iter()
            .any(|v| v.name == name && v.empty_dir.is_some())
    };
    match b.emptydir_usage.keys().find(|n| !empty_dir(n)) {
        Some(n) => Err(format!(
            "annotation {}emptydir-usage: the pod has no emptyDir volume {n:?}",
            behaviour::PREFIX
        )),
        None => Ok(b),
    }
}

/// What a container uses when its pod does not say: its requests, or a small idle footprint.
fn default_usage(c: &Container) -> Usage {
    let request = |name: &str, milli: bool| {
        let q = c.resources.as_ref()?.requests.as_ref()?.get(name)?;
        let q = Quantity::parse(&q.0).ok()?;
        Some((if milli { q.milli_value() } else { q.value() }).clamp(0, i64::MAX as i128) as i64)
    };
    Usage {
        cpu_milli: request("cpu", true).unwrap_or(1),
        memory_bytes: request("memory", false).unwrap_or(4 * 1024 * 1024),
    }
}

impl Runtime for SimRuntime {
    fn version(&self) -> &str {
        RUNTIME_VERSION
    }

    fn run_sandbox(&mut self, node: &str, pod: &Pod, now: Instant) -> Instant {
        let uid = pod.metadata.uid.as_deref().unwrap_or("");
        self.by_pod.entry(uid.to_string()).or_default();
        now + self.stages.sandbox.pick(seed_of(&[node, uid, "sandbox"]))
    }

    fn remove_sandbox(&mut self, pod_uid: &str) {
        self.pod_ips.remove(pod_uid);
        if let Some(logs) = &self.logs {
            logs.remove_pod(pod_uid);
        }
        for id in self.by_pod.remove(pod_uid).unwrap_or_default() {
            self.containers.remove(&id);
        }
    }

    fn has_image(&self, node: &str, image: &str) -> bool {
        self.images.get(node).is_some_and(|i| i.contains(image))
    }

    fn start_container(&mut self, req: StartRequest<'_>, now: Instant) -> ContainerId {
        let uid = req.pod.metadata.uid.as_deref().unwrap_or("");
        let name = req.container.name.as_str();
        let attempt = req.attempt.to_string();
        let seed = seed_of(&[uid, name, &attempt]);
        self.created += 1;
        let id = format!("{ID_PREFIX}{}", hex64(seed ^ self.created));
        let image = req.container.image.clone().unwrap_or_default();
        let node_images = self.images.entry(req.node.to_string()).or_default();
        let image_present = node_images.contains(&image);
        let mut program = None;
        let (behaviour, timeline) =
            match Behaviour::from_annotations(req.pod.metadata.annotations.as_ref(), name)
                .and_then(|b| emptydirs_exist(req.pod, b))
            {
                Ok(mut b) => {
                    program = (!b.overrides_command())
                        .then(|| Program::for_container(req.pod, req.container))
                        .flatten();
                    if program.is_some() {
                        // The script runs as PID 1 without a handler: SIGTERM is ignored and
                        // only the kill at the end of the grace period stops it.
                        b.ignore_sigterm = true;
                    } else if runs_to_completion_by_default(req.pod, req.container, &b) {
                        b.exit_code = Some(0);
                    }
                    let t = plan(
                        req.container,
                        &b,
                        &PlanInput {
                            stages: &self.stages,
                            seed,
                            now,
                            image_present,
                            command_exit: program.as_ref().and_then(Program::outcome),
                        },
                    );
                    (b, t)
                }
                // A pod the sim cannot understand does not run; the container says why.
                Err(message) => (
                    Behaviour::default(),
                    Timeline::StartFails {
                        at: now + self.stages.create.pick(seed),
                        message,
                    },
                ),
            };
        if !matches!(timeline, Timeline::PullFails { .. }) {
            node_images.insert(image);
        }
        if let (Some(logs), Timeline::Runs(run)) = (&self.logs, &timeline) {
            let key = LogKey {
                namespace: req.pod.metadata.namespace.clone().unwrap_or_default(),
                pod: req.pod.metadata.name.clone().unwrap_or_default(),
                container: name.to_string(),
            };
            let script = Script {
                pod: key.pod.clone(),
                container: key.container.clone(),
                attempt: req.attempt,
                running_at: run.running_at,
                lines: behaviour.log_lines.clone(),
                every: behaviour.log_every,
                exit: run.exit.as_ref().map(|e| (e.at, e.code)),
                program,
            };
            logs.begin(key, uid, &id, script);
        }
        let mut usage = default_usage(req.container);
        if let Some(cpu) = behaviour.cpu_usage_milli {
            usage.cpu_milli = cpu;
        }
        if let Some(mem) = behaviour.memory_usage {
            usage.memory_bytes = mem;
        }
        self.by_pod
            .entry(uid.to_string())
            .or_default()
            .push(id.clone());
        self.containers.insert(
            id.clone(),
            SimContainer {
                pod_uid: uid.to_string(),
                container: req.container.clone(),
                behaviour,
                timeline,
                stop: None,
                seed,
                usage,
            },
        );
        id
    }

    fn state(&self, id: &str, now: Instant) -> ContainerState {
        match self.containers.get(id) {
            Some(c) => c.timeline.state_at(now, c.stop.as_ref()),
            None => ContainerState::Exited(super::runtime::Exit {
                exit_code: 137,
                reason: "ContainerStatusUnknown".into(),
                message: Some(
                    "The container could not be located when the pod was terminated".into(),
                ),
                started_at: None,
                finished_at: now,
            }),
        }
    }

    fn stop_container(&mut self, id: &str, grace: Duration, now: Instant) {
        let stages = self.stages;
        let Some(c) = self.containers.get_mut(id) else {
            return;
        };
        if matches!(
            c.timeline.state_at(now, c.stop.as_ref()),
            ContainerState::Exited(_) | ContainerState::PullFailed { .. }
        ) {
            return;
        }
        let stop = plan_stop(
            &c.container,
            &c.behaviour,
            &c.timeline,
            &StopInput {
                stages: &stages,
                seed: c.seed,
                now,
                grace,
            },
        );
        // A second stop (a shorter grace period) can only bring the exit forward.
        if c.stop.as_ref().is_some_and(|s| s.at <= stop.at) {
            return;
        }
        if let Some(logs) = &self.logs {
            logs.set_exit(id, stop.at, stop.code);
        }
        c.stop = Some(stop);
    }

    fn remove_container(&mut self, id: &str) {
        if let Some(c) = self.containers.remove(id) {
            if let Some(ids) = self.by_pod.get_mut(&c.pod_uid) {
                ids.retain(|i| i != id);
            }
        }
    }

    fn image_id(&self, image: &str) -> String {
        let full = stages::normalize_image(image);
        let repo = match full.find('@') {
            Some(i) => &full[..i],
            None => {
                let last_slash = full.rfind('/').unwrap_or(0);
                match full[last_slash..].rfind(':') {
                    Some(i) => &full[..last_slash + i],
                    None => full.as_str(),
                }
            }
        };
        format!("{repo}@sha256:{}", hex64(seed_of(&[&full])))
    }

    fn next_change(&self, id: &str, now: Instant) -> Option<Instant> {
        let c = self.containers.get(id)?;
        c.timeline.next_change(now, c.stop.as_ref())
    }

    fn usage(&self, id: &str, now: Instant) -> Option<Usage> {
        let c = self.containers.get(id)?;
        matches!(
            c.timeline.state_at(now, c.stop.as_ref()),
            ContainerState::Running { .. }
        )
        .then_some(c.usage)
    }

    fn set_pod_ip(&mut self, pod_uid: &str, ip: std::net::Ipv4Addr) {
        self.pod_ips.insert(pod_uid.to_string(), ip);
    }

    /// From `ephemeral-storage-usage` (each container that has run) and `emptydir-usage` (once
    /// a container has started): no files, only the annotations (see `SIM.md`).
    fn storage(
        &self,
        _pod: &Pod,
        containers: &[(&str, &ContainerId)],
        now: Instant,
    ) -> Option<PodStorage> {
        let mut out = PodStorage::default();
        for (name, id) in containers {
            let Some(c) = self.containers.get(*id) else {
                continue;
            };
            let ran = match c.timeline.state_at(now, c.stop.as_ref()) {
                ContainerState::Running { .. } => true,
                ContainerState::Exited(e) => e.started_at.is_some(),
                _ => false,
            };
            if !ran {
                continue;
            }
            // Every container reads the same pod-wide volume setting.
            if out.volumes.is_empty() {
                out.volumes = c.behaviour.emptydir_usage.clone();
            }
            out.containers.push(ContainerStorage {
                name: name.to_string(),
                logs: 0,
                rootfs: c.behaviour.ephemeral_storage_usage.unwrap_or(0),
            });
        }
        Some(out)
    }

    fn probe_failures(&self, id: &str, since: Option<Instant>, now: Instant) -> Vec<ProbeFailure> {
        let Some(c) = self.containers.get(id) else {
            return Vec::new();
        };
        let Timeline::Runs(run) = &c.timeline else {
            return Vec::new();
        };
        run.probe_failures(since, now, c.stop.as_ref())
            .into_iter()
            .map(|(kind, kills)| ProbeFailure {
                kind,
                output: probe_output(&c.container, kind, self.pod_ips.get(&c.pod_uid).copied()),
                kills,
                warning: false,
            })
            .collect()
    }
}

/// What a failing probe reports, as the kubelet's probers word it: an exec probe's command
/// prints nothing and exits non-zero, an HTTP endpoint answers 500, a TCP port refuses, a gRPC
/// health service answers `NOT_SERVING`.
fn probe_output(c: &Container, kind: ProbeKind, pod_ip: Option<std::net::Ipv4Addr>) -> String {
    let probe = match kind {
        ProbeKind::Startup => c.startup_probe.as_ref(),
        ProbeKind::Liveness => c.liveness_probe.as_ref(),
        ProbeKind::Readiness => c.readiness_probe.as_ref(),
    };
    let Some(p) = probe else {
        return String::new();
    };
    if p.http_get.is_some() {
        return "HTTP probe failed with statuscode: 500".into();
    }
    if let Some(tcp) = &p.tcp_socket {
        let host = tcp
            .host
            .clone()
            .or_else(|| pod_ip.map(|ip| ip.to_string()))
            .unwrap_or_default();
        let port = match &tcp.port {
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n) => n.to_string(),
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(name) => c
                .ports
                .iter()
                .flatten()
                .find(|cp| cp.name.as_deref() == Some(name))
                .map_or_else(|| name.clone(), |cp| cp.container_port.to_string()),
        };
        return format!("dial tcp {host}:{port}: connect: connection refused");
    }
    if p.grpc.is_some() {
        return "service unhealthy (responded with \"NOT_SERVING\")".into();
    }
    String::new()
}

/// Like kwok's `pod-complete` stage: a Job's pod does its work and exits 0 (after the 1–1.5 s
/// an `exit-code` alone gives) unless its annotations say how it ends; sidecars keep running.
fn runs_to_completion_by_default(pod: &Pod, container: &Container, b: &Behaviour) -> bool {
    let owned_by_job = pod.metadata.owner_references.as_ref().is_some_and(|os| {
        os.iter()
            .any(|o| o.kind == "Job" && o.api_version == "batch/v1")
    });
    let sidecar = container.restart_policy.as_deref() == Some("Always");
    owned_by_job && !sidecar && b.exit_after.is_none() && b.exit_code.is_none() && !b.crash
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::runtime::ContainerKind;
    use serde_json::json;

    fn pod(annotations: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p", "namespace": "default", "uid": "u-1", "annotations": annotations},
            "spec": {"containers": [{"name": "c", "image": "nginx", "resources": {"requests": {"cpu": "100m"}}}]}}))
        .unwrap()
    }

    fn start(rt: &mut SimRuntime, p: &Pod, attempt: u32, now: Instant) -> ContainerId {
        let c = p.spec.as_ref().unwrap().containers[0].clone();
        rt.start_container(
            StartRequest {
                node: "node-0",
                pod: p,
                container: &c,
                kind: ContainerKind::Regular,
                attempt,
            },
            now,
        )
    }

    #[test]
    fn a_node_pulls_an_image_once() {
        let mut rt = SimRuntime::new(SimStages::for_tests());
        let t0 = Instant::now();
        let p = pod(json!({}));
        let first = start(&mut rt, &p, 0, t0);
        let second = start(&mut rt, &p, 1, t0);
        assert!(
            first.starts_with("kubeproof-sim://") && first.len() == "kubeproof-sim://".len() + 64
        );
        assert_ne!(first, second);
        let first_runs = rt.next_change(&first, t0).unwrap();
        let second_runs = rt.next_change(&second, t0).unwrap();
        assert!(
            second_runs < first_runs,
            "the second start finds the image on the node"
        );
        assert_eq!(
            rt.usage(&first, first_runs),
            Some(Usage {
                cpu_milli: 100,
                memory_bytes: 4 * 1024 * 1024
            })
        );
        rt.remove_sandbox("u-1");
        assert_eq!(rt.container_count(), 0);
    }

    #[test]
    fn bad_annotations_make_the_container_fail_to_start() {
        let mut rt = SimRuntime::new(SimStages::for_tests());
        let t0 = Instant::now();
        let p = pod(json!({"sim.kubeproof.dev/exit-afterr": "5s"}));
        let id = start(&mut rt, &p, 0, t0);
        match rt.state(&id, t0 + Duration::from_secs(1)) {
            ContainerState::Exited(e) => {
                assert_eq!(
                    (e.exit_code, e.reason.as_str()),
                    (128, "ContainerCannotRun")
                );
                assert!(e.message.unwrap().contains("exit-afterr"));
            }
            other => panic!("{other:?}"),
        }
    }

    fn with_command(annotations: serde_json::Value, script: &str) -> Pod {
        let mut p = pod(annotations);
        let c = &mut p.spec.as_mut().unwrap().containers[0];
        c.command = Some(vec!["sh".into(), "-c".into(), script.into()]);
        p
    }

    #[test]
    fn an_interpreted_command_decides_the_exit_and_the_log() {
        let logs = LogStore::new(crate::node::logs::LogLimits::default());
        let mut rt = SimRuntime::with_logs(SimStages::for_tests(), logs.clone());
        let t0 = Instant::now();
        let p = with_command(json!({}), "echo hello; sleep 2; exit 3");
        let id = start(&mut rt, &p, 0, t0);
        let running = rt.next_change(&id, t0).unwrap();
        let end = rt.next_change(&id, running).unwrap();
        assert_eq!(end - running, Duration::from_secs(2));
        match rt.state(&id, end) {
            ContainerState::Exited(e) => assert_eq!((e.exit_code, e.reason.as_str()), (3, "Error")),
            other => panic!("{other:?}"),
        }
        let key = LogKey {
            namespace: "default".into(),
            pod: "p".into(),
            container: "c".into(),
        };
        let view = logs.read(&key, &Default::default(), end).unwrap();
        let text: Vec<&str> = view.lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(text, ["hello"], "only what the script printed");
        assert!(view.finished);

        // As PID 1 without a handler the script ignores SIGTERM: the grace period ends it.
        let forever = with_command(json!({}), "sleep infinity");
        let id = start(&mut rt, &forever, 1, t0);
        let running = rt.next_change(&id, t0).unwrap();
        assert_eq!(
            rt.next_change(&id, running),
            None,
            "it never exits on its own"
        );
        rt.stop_container(&id, Duration::from_secs(3), running);
        match rt.state(&id, running + Duration::from_secs(3)) {
            ContainerState::Exited(e) => assert_eq!(e.exit_code, 137),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn annotations_win_over_the_command() {
        let mut rt = SimRuntime::new(SimStages::for_tests());
        let t0 = Instant::now();
        let p = with_command(
            json!({"sim.kubeproof.dev/exit-code": "5", "sim.kubeproof.dev/exit-after": "100ms"}),
            "exit 3",
        );
        let id = start(&mut rt, &p, 0, t0);
        match rt.state(&id, t0 + Duration::from_secs(1)) {
            ContainerState::Exited(e) => assert_eq!(e.exit_code, 5),
            other => panic!("{other:?}"),
        }
        let unknown = with_command(json!({}), "nginx -g 'daemon off;'");
        let id = start(&mut rt, &unknown, 1, t0);
        assert!(matches!(
            rt.state(&id, t0 + Duration::from_secs(3600)),
            ContainerState::Running { .. }
        ));
    }

    #[test]
    fn stopping_ends_a_running_container() {
        let mut rt = SimRuntime::new(SimStages::for_tests());
        let t0 = Instant::now();
        let p = pod(json!({"sim.kubeproof.dev/cpu-usage": "250m"}));
        let id = start(&mut rt, &p, 0, t0);
        let running = t0 + Duration::from_secs(1);
        assert_eq!(rt.usage(&id, running).unwrap().cpu_milli, 250);
        rt.stop_container(&id, Duration::from_secs(30), running);
        let end = rt.next_change(&id, running).unwrap();
        assert!(matches!(rt.state(&id, end), ContainerState::Exited(ref e) if e.exit_code == 0));
        assert!(rt.usage(&id, end).is_none());
        assert!(rt
            .image_id("nginx")
            .starts_with("docker.io/library/nginx@sha256:"));
    }
}
