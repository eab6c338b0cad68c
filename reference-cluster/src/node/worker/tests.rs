//! The pod worker driven by the `sim` runtime on a simulated clock: each test plays the fleet's
//! role (sync at every requested wake-up) and inspects the status the kubelet would write.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use serde_json::{json, Value};

use super::*;
use crate::node::sim::stages::{SimStages, StageDelay};
use crate::node::sim::SimRuntime;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// Stages without jitter, so times are exact.
fn stages() -> SimStages {
    SimStages {
        sandbox: StageDelay::fixed(ms(10)),
        pull: StageDelay::fixed(ms(100)),
        create: StageDelay::fixed(ms(10)),
        stop: StageDelay::fixed(ms(30)),
        pre_stop: StageDelay::fixed(ms(40)),
        default_run: StageDelay::fixed(ms(500)),
        oom_after: StageDelay::fixed(ms(200)),
    }
}

struct Harness {
    rt: SimRuntime,
    w: PodWorker,
    clock: Clock,
    t0: Instant,
    now: Instant,
    next: Option<Instant>,
    backoff: BackOffPolicy,
}

fn pod(v: Value) -> Arc<Pod> {
    let mut v = v;
    v["metadata"]["name"] = json!("web");
    v["metadata"]["namespace"] = json!("default");
    v["metadata"]["uid"] = json!("uid-1");
    v["spec"]["nodeName"] = json!("node-0");
    Arc::new(serde_json::from_value(v).unwrap())
}

fn containers(spec: Value) -> Value {
    json!({"spec": spec})
}

impl Harness {
    fn new(p: Arc<Pod>) -> Harness {
        let t0 = Instant::now();
        let mut w = PodWorker::new(p, "127.0.0.1".parse().unwrap());
        w.set_pod_ip("127.244.0.2".parse().unwrap());
        let mut h = Harness {
            rt: SimRuntime::new(stages()),
            w,
            clock: Clock::pinned(t0, Timestamp::from_second(1_700_000_000).unwrap()),
            t0,
            now: t0,
            next: None,
            backoff: BackOffPolicy {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(4),
            },
        };
        h.sync();
        h
    }

    fn sync(&mut self) {
        let cx = SyncContext {
            node: "node-0",
            backoff: &self.backoff,
            error_requeue: ms(300),
        };
        self.next = self.w.sync(&mut self.rt, &cx, self.now);
    }

    /// Plays every wake-up up to `t0 + at`, then syncs there.
    fn run_to(&mut self, at: Duration) {
        let end = self.t0 + at;
        while let Some(n) = self.next.filter(|n| *n <= end) {
            self.now = n;
            self.sync();
        }
        self.now = end;
        self.sync();
    }

    fn status(&mut self) -> Value {
        self.w.api_status(&self.rt, &self.clock, self.now)
    }

    fn delete(&mut self, grace: i64) {
        let mut p = (**self.w.pod()).clone();
        p.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            Timestamp::now(),
        ));
        p.metadata.deletion_grace_period_seconds = Some(grace);
        self.w.update(Arc::new(p));
        self.sync();
    }
}

fn cond<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == type_)
        .unwrap()
}

fn cstatus<'a>(status: &'a Value, list: &str, name: &str) -> &'a Value {
    status[list]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap()
}

#[test]
fn a_pod_goes_from_creating_to_running_and_ready() {
    let mut h = Harness::new(pod(containers(
        json!({"containers": [{"name": "app", "image": "nginx"}]}),
    )));
    let s = h.status();
    assert_eq!(s["phase"], "Pending");
    assert_eq!(cond(&s, "PodReadyToStartContainers")["status"], "False");
    assert_eq!(
        cstatus(&s, "containerStatuses", "app")["state"]["waiting"]["reason"],
        "ContainerCreating"
    );
    assert!(
        s.get("podIP").is_none(),
        "no address before the sandbox is up"
    );
    h.run_to(ms(200));
    let s = h.status();
    assert_eq!(s["phase"], "Running");
    assert_eq!(s["podIP"], "127.244.0.2");
    assert_eq!(s["podIPs"], json!([{"ip": "127.244.0.2"}]));
    assert_eq!(s["hostIP"], "127.0.0.1");
    assert_eq!(s["qosClass"], "BestEffort");
    assert_eq!(s["startTime"], "2023-11-14T22:13:20Z");
    for c in [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
    ] {
        assert_eq!(cond(&s, c)["status"], "True", "{c}");
    }
    let app = cstatus(&s, "containerStatuses", "app");
    assert_eq!(app["ready"], true);
    assert_eq!(app["started"], true);
    assert_eq!(app["restartCount"], 0);
    assert!(app["containerID"]
        .as_str()
        .unwrap()
        .starts_with("kubeproof-sim://"));
    assert!(app["imageID"]
        .as_str()
        .unwrap()
        .starts_with("docker.io/library/nginx@sha256:"));
    assert_eq!(app["lastState"], json!({}));
    assert_eq!(h.next, None, "nothing more to do");
}

#[test]
fn a_crashing_container_backs_off_longer_each_time() {
    let p = pod(
        json!({"metadata": {"annotations": {"sim.kubeproof.dev/crash": "true", "sim.kubeproof.dev/exit-after": "100ms"}},
                       "spec": {"containers": [{"name": "app", "image": "busybox"}]}}),
    );
    let mut h = Harness::new(p);
    // Runs at 120ms, exits at 220ms, restarts at once (first failure), runs at 230ms, exits at 330ms.
    h.run_to(ms(335));
    let s = h.status();
    let app = cstatus(&s, "containerStatuses", "app");
    assert_eq!(app["state"]["waiting"]["reason"], "CrashLoopBackOff");
    assert_eq!(
        app["state"]["waiting"]["message"],
        "back-off 1s restarting failed container=app pod=web_default(uid-1)"
    );
    assert_eq!(app["lastState"]["terminated"]["exitCode"], 1);
    assert_eq!(app["lastState"]["terminated"]["reason"], "Error");
    assert_eq!(app["restartCount"], 1);
    assert_eq!(
        s["phase"], "Running",
        "restartPolicy Always keeps the pod running"
    );
    assert_eq!(cond(&s, "Ready")["status"], "False");
    // The back-off ends 1s after the exit at 330ms; the restart runs 10ms later.
    h.run_to(ms(1345));
    let s = h.status();
    let app = cstatus(&s, "containerStatuses", "app");
    assert!(app["state"]["running"].is_object(), "{app}");
    assert_eq!(app["restartCount"], 2);
    h.run_to(ms(1445));
    let s = h.status();
    assert_eq!(
        cstatus(&s, "containerStatuses", "app")["state"]["waiting"]["message"],
        "back-off 2s restarting failed container=app pod=web_default(uid-1)"
    );
    h.run_to(ms(10_000));
    let s = h.status();
    assert_eq!(
        cstatus(&s, "containerStatuses", "app")["state"]["waiting"]["message"],
        "back-off 4s restarting failed container=app pod=web_default(uid-1)",
        "capped at the maximum"
    );
}

#[test]
fn a_completing_pod_with_restart_policy_never_succeeds() {
    let p = pod(
        json!({"metadata": {"annotations": {"sim.kubeproof.dev/exit-after": "100ms"}},
                       "spec": {"restartPolicy": "Never", "containers": [{"name": "job", "image": "busybox"}]}}),
    );
    let mut h = Harness::new(p);
    h.run_to(ms(300));
    assert!(h.w.is_finished());
    assert!(
        !h.w.ready_to_delete(),
        "completed pods stay until someone deletes them"
    );
    let s = h.status();
    assert_eq!(s["phase"], "Succeeded");
    let job = cstatus(&s, "containerStatuses", "job");
    assert_eq!(job["state"]["terminated"]["reason"], "Completed");
    assert_eq!(job["state"]["terminated"]["exitCode"], 0);
    assert_eq!(
        job["state"]["terminated"]["startedAt"],
        "2023-11-14T22:13:20Z"
    );
    assert_eq!(cond(&s, "Ready")["reason"], "PodCompleted");
    assert_eq!(cond(&s, "ContainersReady")["reason"], "PodCompleted");
    assert_eq!(cond(&s, "Initialized")["status"], "True");
    assert_eq!(
        cond(&s, "PodReadyToStartContainers")["status"],
        "False",
        "the sandbox is gone"
    );
    assert_eq!(h.next, None);
}

#[test]
fn a_failing_container_with_on_failure_restarts_and_with_never_fails_the_pod() {
    let never = pod(
        json!({"metadata": {"annotations": {"sim.kubeproof.dev/exit-code": "3"}},
                           "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}),
    );
    let mut h = Harness::new(never);
    h.run_to(ms(1000));
    let s = h.status();
    assert_eq!(s["phase"], "Failed");
    assert_eq!(
        cstatus(&s, "containerStatuses", "c")["state"]["terminated"]["exitCode"],
        3
    );
    assert_eq!(cond(&s, "Ready")["reason"], "PodFailed");
    let on_failure = pod(
        json!({"metadata": {"annotations": {"sim.kubeproof.dev/exit-code": "3"}},
                                "spec": {"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "i"}]}}),
    );
    let mut h = Harness::new(on_failure);
    h.run_to(ms(1500));
    let s = h.status();
    assert_eq!(s["phase"], "Running");
    assert!(
        cstatus(&s, "containerStatuses", "c")["restartCount"]
            .as_i64()
            .unwrap()
            >= 1
    );
}

#[test]
fn memory_over_the_limit_is_oom_killed() {
    let p = pod(
        json!({"metadata": {"annotations": {"sim.kubeproof.dev/memory-usage": "600Mi"}},
                       "spec": {"restartPolicy": "Never", "containers": [{"name": "hog", "image": "i",
                                "resources": {"limits": {"memory": "512Mi", "cpu": "1"}, "requests": {"memory": "512Mi", "cpu": "1"}}}]}}),
    );
    let mut h = Harness::new(p);
    h.run_to(ms(500));
    let s = h.status();
    let t = &cstatus(&s, "containerStatuses", "hog")["state"]["terminated"];
    assert_eq!(
        (t["reason"].as_str(), t["exitCode"].as_i64()),
        (Some("OOMKilled"), Some(137))
    );
    assert_eq!(s["phase"], "Failed");
    assert_eq!(s["qosClass"], "Guaranteed");
}

#[test]
fn a_missing_image_shows_err_image_pull_then_image_pull_back_off() {
    let p = pod(containers(
        json!({"containers": [{"name": "c", "image": "example.com/nonexistent:1"}]}),
    ));
    let mut h = Harness::new(p);
    // The pull fails at 110ms: ErrImagePull until the worker's retry 300ms later.
    h.run_to(ms(150));
    let s = h.status();
    let w = &cstatus(&s, "containerStatuses", "c")["state"]["waiting"];
    assert_eq!(w["reason"], "ErrImagePull");
    assert!(w["message"]
        .as_str()
        .unwrap()
        .starts_with("Failed to pull image \"example.com/nonexistent:1\""));
    h.run_to(ms(500));
    let s = h.status();
    let w = &cstatus(&s, "containerStatuses", "c")["state"]["waiting"];
    assert_eq!(w["reason"], "ImagePullBackOff");
    assert_eq!(
        w["message"],
        "Back-off pulling image \"example.com/nonexistent:1\""
    );
    assert_eq!(
        cstatus(&s, "containerStatuses", "c")["restartCount"],
        0,
        "a failed pull is no restart"
    );
    assert_eq!(s["phase"], "Pending");
    // The back-off (1s from 110ms) ends; the next pull fails again.
    h.run_to(ms(1300));
    assert_eq!(
        cstatus(&h.status(), "containerStatuses", "c")["state"]["waiting"]["reason"],
        "ErrImagePull"
    );
}

#[test]
fn init_containers_run_in_order_before_the_main_containers() {
    let p = pod(
        json!({"metadata": {"annotations": {"sim.kubeproof.dev/exit-after.init-a": "100ms", "sim.kubeproof.dev/exit-after.init-b": "100ms"}},
                       "spec": {"initContainers": [{"name": "init-a", "image": "i"}, {"name": "init-b", "image": "i"}],
                                "containers": [{"name": "app", "image": "i"}]}}),
    );
    let mut h = Harness::new(p);
    // init-a pulls its image and runs 120–220ms, init-b runs 230–330ms, app from 340ms.
    h.run_to(ms(150));
    let s = h.status();
    assert!(cstatus(&s, "initContainerStatuses", "init-a")["state"]["running"].is_object());
    assert_eq!(
        cstatus(&s, "initContainerStatuses", "init-b")["state"]["waiting"]["reason"],
        "PodInitializing"
    );
    assert_eq!(
        cstatus(&s, "containerStatuses", "app")["state"]["waiting"]["reason"],
        "PodInitializing"
    );
    assert_eq!(
        cond(&s, "Initialized")["message"],
        "containers with incomplete status: [init-a init-b]"
    );
    h.run_to(ms(250));
    let s = h.status();
    assert_eq!(
        cstatus(&s, "initContainerStatuses", "init-a")["state"]["terminated"]["reason"],
        "Completed"
    );
    assert_eq!(
        cstatus(&s, "initContainerStatuses", "init-a")["ready"],
        true
    );
    assert!(cstatus(&s, "initContainerStatuses", "init-b")["state"]["running"].is_object());
    assert_eq!(s["phase"], "Pending");
    h.run_to(ms(400));
    let s = h.status();
    assert_eq!(s["phase"], "Running");
    assert_eq!(cond(&s, "Initialized")["status"], "True");
    assert!(cstatus(&s, "containerStatuses", "app")["state"]["running"].is_object());
}

#[test]
fn a_failed_init_container_fails_a_never_pod() {
    let p = pod(
        json!({"metadata": {"annotations": {"sim.kubeproof.dev/exit-code.setup": "2"}},
                       "spec": {"restartPolicy": "Never", "initContainers": [{"name": "setup", "image": "i"}],
                                "containers": [{"name": "app", "image": "i"}]}}),
    );
    let mut h = Harness::new(p);
    h.run_to(ms(2000));
    let s = h.status();
    assert_eq!(s["phase"], "Failed");
    assert_eq!(
        cstatus(&s, "initContainerStatuses", "setup")["state"]["terminated"]["exitCode"],
        2
    );
    assert_eq!(
        cstatus(&s, "containerStatuses", "app")["state"]["waiting"]["reason"],
        "PodInitializing"
    );
    assert!(h.w.is_finished());
}

#[test]
fn sidecars_start_first_wait_for_startup_and_stop_last() {
    let p = pod(
        json!({"metadata": {"annotations": {"sim.kubeproof.dev/started-after.proxy": "200ms", "sim.kubeproof.dev/exit-after.job": "300ms",
                                                    "sim.kubeproof.dev/termination-delay.proxy": "50ms", "sim.kubeproof.dev/termination-delay.log": "50ms"}},
                       "spec": {"restartPolicy": "Never",
                                "initContainers": [{"name": "log", "image": "i", "restartPolicy": "Always"},
                                                   {"name": "proxy", "image": "i", "restartPolicy": "Always", "startupProbe": {"exec": {"command": ["true"]}}}],
                                "containers": [{"name": "job", "image": "i"}]}}),
    );
    let mut h = Harness::new(p);
    // log runs at 120ms (pull), proxy at 130ms but is only started at 330ms.
    h.run_to(ms(250));
    let s = h.status();
    assert_eq!(
        cstatus(&s, "initContainerStatuses", "proxy")["started"],
        false
    );
    assert_eq!(
        cstatus(&s, "containerStatuses", "job")["state"]["waiting"]["reason"],
        "PodInitializing"
    );
    assert_eq!(s["phase"], "Pending");
    h.run_to(ms(400));
    let s = h.status();
    assert!(
        cstatus(&s, "containerStatuses", "job")["state"]["running"].is_object(),
        "the main container starts once the sidecar has started"
    );
    assert_eq!(s["phase"], "Running");
    assert_eq!(cond(&s, "Initialized")["status"], "True");
    // job exits at 340+300=640ms; then proxy (last sidecar) stops, then log.
    h.run_to(ms(660));
    let s = h.status();
    assert_eq!(
        cstatus(&s, "containerStatuses", "job")["state"]["terminated"]["reason"],
        "Completed"
    );
    assert!(
        cstatus(&s, "initContainerStatuses", "log")["state"]["running"].is_object(),
        "log waits for proxy"
    );
    assert_eq!(s["phase"], "Running", "sidecars still run");
    h.run_to(ms(2000));
    let s = h.status();
    let proxy_end =
        cstatus(&s, "initContainerStatuses", "proxy")["state"]["terminated"]["finishedAt"].clone();
    assert!(cstatus(&s, "initContainerStatuses", "log")["state"]["terminated"].is_object());
    assert!(proxy_end.is_string());
    assert_eq!(s["phase"], "Succeeded", "sidecars do not block completion");
    assert!(h.w.is_finished());
}

#[test]
fn deleting_a_running_pod_stops_its_containers_then_asks_for_removal() {
    let p = pod(
        json!({"metadata": {"annotations": {"sim.kubeproof.dev/termination-delay": "400ms"}},
                       "spec": {"containers": [{"name": "app", "image": "i", "lifecycle": {"preStop": {"sleep": {"seconds": 1}}}}]}}),
    );
    let mut h = Harness::new(p);
    h.run_to(ms(200));
    h.delete(30);
    assert!(!h.w.ready_to_delete());
    h.run_to(ms(1500));
    assert!(
        !h.w.ready_to_delete(),
        "preStop 1s + SIGTERM 400ms are not over at 1.5s"
    );
    h.run_to(ms(1700));
    assert!(h.w.ready_to_delete());
    let s = h.status();
    let t = &cstatus(&s, "containerStatuses", "app")["state"]["terminated"];
    assert_eq!(
        (t["exitCode"].as_i64(), t["reason"].as_str()),
        (Some(0), Some("Completed"))
    );
    assert_eq!(s["phase"], "Succeeded");
}

#[test]
fn the_grace_period_ends_with_a_kill() {
    let p = pod(
        json!({"metadata": {"annotations": {"sim.kubeproof.dev/ignore-sigterm": "true"}},
                       "spec": {"containers": [{"name": "app", "image": "i"}]}}),
    );
    let mut h = Harness::new(p);
    h.run_to(ms(200));
    h.delete(3);
    h.run_to(ms(3100));
    assert!(!h.w.ready_to_delete());
    h.run_to(ms(3300));
    assert!(h.w.ready_to_delete());
    let s = h.status();
    assert_eq!(
        cstatus(&s, "containerStatuses", "app")["state"]["terminated"]["exitCode"],
        137
    );
    assert_eq!(s["phase"], "Failed");
}

#[test]
fn readiness_follows_annotations_and_gates() {
    let p = pod(
        json!({"metadata": {"annotations": {"sim.kubeproof.dev/ready-after": "500ms", "sim.kubeproof.dev/unready-after": "1s",
                                                    "sim.kubeproof.dev/not-ready-for": "1s"}},
                       "spec": {"containers": [{"name": "app", "image": "i"}]}}),
    );
    let mut h = Harness::new(p);
    h.run_to(ms(300));
    let s = h.status();
    assert_eq!(s["phase"], "Running");
    assert_eq!(
        cond(&s, "Ready")["message"],
        "containers with unready status: [app]"
    );
    h.run_to(ms(700));
    assert_eq!(cond(&h.status(), "Ready")["status"], "True");
    h.run_to(ms(1300));
    let s = h.status();
    assert_eq!(cond(&s, "Ready")["status"], "False");
    assert_eq!(
        cond(&s, "Ready")["lastTransitionTime"],
        "2023-11-14T22:13:21Z"
    );
    h.run_to(ms(2300));
    assert_eq!(cond(&h.status(), "Ready")["status"], "True");
    let gated = pod(
        json!({"spec": {"readinessGates": [{"conditionType": "example.com/ready"}], "containers": [{"name": "app", "image": "i"}]}}),
    );
    let mut h = Harness::new(gated);
    h.run_to(ms(300));
    let s = h.status();
    assert_eq!(cond(&s, "ContainersReady")["status"], "True");
    assert_eq!(cond(&s, "Ready")["reason"], "ReadinessGatesNotReady");
}

#[test]
fn the_active_deadline_fails_the_pod() {
    let p = pod(
        json!({"spec": {"activeDeadlineSeconds": 1, "containers": [{"name": "app", "image": "i"}]}}),
    );
    let mut h = Harness::new(p);
    h.run_to(ms(1200));
    let s = h.status();
    assert_eq!(s["phase"], "Failed");
    assert_eq!(s["reason"], "DeadlineExceeded");
    assert_eq!(
        s["message"],
        "Pod was active on the node longer than the specified deadline"
    );
    assert!(h.w.is_finished());
}

#[test]
fn a_rejected_pod_reports_why() {
    let mut w = PodWorker::new(
        pod(containers(
            json!({"containers": [{"name": "c", "image": "i"}]}),
        )),
        "127.0.0.1".parse().unwrap(),
    );
    w.reject(Rejection {
        reason: "OutOfcpu".into(),
        message: "Node didn't have enough resource: cpu, requested: 5000, used: 0, capacity: 4000"
            .into(),
    });
    let rt = SimRuntime::new(stages());
    let now = Instant::now();
    let s = w.api_status(
        &rt,
        &Clock::pinned(now, Timestamp::from_second(1_700_000_000).unwrap()),
        now,
    );
    assert_eq!(s["phase"], "Failed");
    assert_eq!(s["reason"], "OutOfcpu");
    assert_eq!(s["message"], "Pod was rejected: Node didn't have enough resource: cpu, requested: 5000, used: 0, capacity: 4000");
    assert!(w.is_finished());
}

#[test]
fn restarting_agents_keep_counting_restarts() {
    let p = pod(
        json!({"spec": {"containers": [{"name": "app", "image": "i"}]},
                       "status": {"phase": "Running", "startTime": "2023-01-01T00:00:00Z",
                                  "containerStatuses": [{"name": "app", "image": "i", "imageID": "", "ready": true, "restartCount": 2,
                                                         "state": {"running": {"startedAt": "2023-01-01T00:00:00Z"}}}]}}),
    );
    let mut h = Harness::new(p);
    h.run_to(ms(300));
    let s = h.status();
    assert_eq!(cstatus(&s, "containerStatuses", "app")["restartCount"], 3);
    assert_eq!(s["startTime"], "2023-01-01T00:00:00Z");
}

#[test]
fn hostile_values_never_panic() {
    let p = pod(
        json!({"metadata": {"annotations": {"sim.kubeproof.dev/exit-after": "876000h", "sim.kubeproof.dev/liveness-fail-after": "1s"}},
                       "spec": {"activeDeadlineSeconds": i64::MAX, "terminationGracePeriodSeconds": i64::MAX,
                                "containers": [{"name": "app", "image": "",
                                                "livenessProbe": {"exec": {"command": ["x"]}, "periodSeconds": i32::MAX, "failureThreshold": i32::MAX},
                                                "lifecycle": {"preStop": {"sleep": {"seconds": i64::MAX}}}}]}}),
    );
    let mut h = Harness::new(p);
    h.run_to(ms(500));
    h.delete(i64::MAX);
    h.run_to(ms(1000));
    let s = h.status();
    assert_eq!(
        s["phase"], "Running",
        "still stopping, within its (huge) grace period"
    );
    let empty = pod(json!({"spec": {"containers": []}}));
    let mut h = Harness::new(empty);
    h.run_to(ms(500));
    assert!(
        h.w.is_finished(),
        "a pod without containers has nothing to run"
    );
    let mut bare = PodWorker::new(Arc::new(Pod::default()), "127.0.0.1".parse().unwrap());
    let mut rt = SimRuntime::new(stages());
    let cx = SyncContext {
        node: "node-0",
        backoff: &BackOffPolicy::default(),
        error_requeue: ms(300),
    };
    let now = Instant::now();
    bare.sync(&mut rt, &cx, now);
    bare.api_status(&rt, &Clock::new(), now);
}

#[test]
fn storage_evictions_fail_the_pod_without_a_disruption_target_unlike_pressure_ones() {
    let spec = json!({
        "metadata": {"annotations": {
            "sim.kubeproof.dev/ephemeral-storage-usage": "3Mi",
            "sim.kubeproof.dev/emptydir-usage": "data=2Mi"}},
        "spec": {"containers": [{"name": "app", "image": "i"}],
                 "volumes": [{"name": "data", "emptyDir": {}}]}});
    let mut h = Harness::new(pod(spec.clone()));
    h.run_to(ms(2000));
    let ids: Vec<(String, String)> =
        h.w.current_containers()
            .map(|(n, id)| (n.to_string(), id.clone()))
            .collect();
    let refs: Vec<(&str, &String)> = ids.iter().map(|(n, id)| (n.as_str(), id)).collect();
    let usage = h.rt.storage(h.w.pod(), &refs, h.now).unwrap();
    assert_eq!(usage.containers[0].rootfs, 3 << 20);
    assert_eq!(usage.volumes["data"], 2 << 20);

    let message = "Usage of EmptyDir volume \"data\" exceeds the limit \"1Mi\". ";
    let now = h.now;
    assert!(h
        .w
        .evict_for_storage(message.into(), Duration::from_secs(1), &mut h.rt, now));
    h.run_to(ms(3500));
    let s = h.status();
    assert_eq!(
        (&s["phase"], &s["reason"], &s["message"]),
        (&json!("Failed"), &json!("Evicted"), &json!(message))
    );
    let types: Vec<&Value> = s["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["type"])
        .collect();
    assert!(!types.contains(&&json!("DisruptionTarget")), "{types:?}");

    let mut h = Harness::new(pod(spec));
    h.run_to(ms(2000));
    let (now, wall) = (h.now, h.clock.wall(h.now));
    assert!(h
        .w
        .evict("low".into(), Duration::from_secs(1), &mut h.rt, wall, now));
    h.run_to(ms(3500));
    let s = h.status();
    assert_eq!(
        cond(&s, "DisruptionTarget")["reason"],
        "TerminationByKubelet"
    );
}
