//! The `process` runtime end to end: a bundled cluster (API server) with one node agent whose
//! containers are real busybox processes; pods created through the API, logs read through
//! `pods/log`, exec through `pods/exec` (kube-rs), as a user would. Needs busybox on the host
//! (`apt-get install busybox-static`); without it the tests say so and fail.

#[path = "node_support/mod.rs"]
mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, AttachParams, DeleteParams, LogParams, PostParams};
use kubeproof_refcluster::cluster::{ClusterConfig, RunningCluster, StoreConfig};
use kubeproof_refcluster::node::process::ProcessConfig;
use kubeproof_refcluster::node::{run_fleet_with_stats, FleetConfig, FleetStats};
use serde_json::{json, Value};
use support::eventually;
use tokio::io::AsyncReadExt;
use tokio::sync::watch;

struct Env {
    dir: tempfile::TempDir,
    cluster: RunningCluster,
    client: kube::Client,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start() -> Env {
    assert!(
        kubeproof_refcluster::node::process::images::find_on_path(
            "busybox",
            kubeproof_refcluster::node::process::images::DEFAULT_PATH
        )
        .is_some(),
        "these tests run busybox pods: install busybox (apt-get install busybox-static)"
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = ClusterConfig {
        store: StoreConfig::Memory,
        nodes: 0,
        ..ClusterConfig::for_tests(dir.path())
    };
    let cluster = RunningCluster::start(cfg).await.expect("cluster starts");
    let client = cluster.client().await.expect("client");
    // The controller-manager is not running here: publish the root CA its publisher would, for
    // the service account volume the API server adds to every pod.
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(
            json!({"metadata": {"name": "kube-root-ca.crt"}, "data": {"ca.crt": "test CA"}}),
        )
        .unwrap(),
    )
    .await
    .unwrap();
    let (stop, rx) = watch::channel(false);
    let mut fleet = FleetConfig::for_tests(1);
    fleet.process = Some(ProcessConfig::new(dir.path().join("nodes")));
    let task = tokio::spawn(run_fleet_with_stats(
        client.clone(),
        fleet,
        FleetStats::default(),
        rx,
    ));
    Env {
        dir,
        cluster,
        client,
        stop,
        task,
    }
}

impl Env {
    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), "default")
    }

    async fn create(&self, name: &str, spec: Value) -> Pod {
        let mut spec = spec;
        spec["nodeName"] = json!("node-0");
        if spec.get("terminationGracePeriodSeconds").is_none() {
            spec["terminationGracePeriodSeconds"] = json!(5);
        }
        let pod: Pod =
            serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap();
        self.pods()
            .create(&PostParams::default(), &pod)
            .await
            .expect("pod created")
    }

    /// Waits until `f` holds for the pod's first container status.
    async fn until_status(&self, name: &str, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        let pods = self.pods();
        let found = eventually(Duration::from_secs(40), || {
            let pods = pods.clone();
            let f = &f;
            async move {
                let p = pods.get(name).await.ok()?;
                let v = serde_json::to_value(&p).ok()?;
                let cs = v["status"]["containerStatuses"].get(0)?.clone();
                f(&cs).then_some(cs)
            }
        })
        .await;
        match found {
            Some(cs) => cs,
            None => {
                let p = pods
                    .get(name)
                    .await
                    .map(|p| serde_json::to_string_pretty(&p.status).unwrap());
                let events: Api<k8s_openapi::api::core::v1::Event> =
                    Api::namespaced(self.client.clone(), "default");
                let ev: Vec<String> = events
                    .list(&Default::default())
                    .await
                    .map(|l| {
                        l.items
                            .into_iter()
                            .map(|e| format!("{:?} {:?}", e.reason, e.message))
                            .collect()
                    })
                    .unwrap_or_default();
                panic!("pod {name}: {what} did not happen; status: {p:?}; events: {ev:#?}")
            }
        }
    }

    async fn finish(self) {
        let _ = self.stop.send(true);
        let r = tokio::time::timeout(Duration::from_secs(10), self.task).await;
        assert!(matches!(r, Ok(Ok(Ok(())))), "the fleet ends cleanly: {r:?}");
        self.cluster.shutdown().await;
    }
}

async fn logs(pods: &Api<Pod>, name: &str, previous: bool) -> String {
    pods.logs(
        name,
        &LogParams {
            previous,
            ..Default::default()
        },
    )
    .await
    .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busybox_pods_log_exit_restart_read_env_and_stop_with_sigterm() {
    let env = start().await;
    let pods = env.pods();

    // Logs and the exit code of a real process, then CrashLoopBackOff and --previous.
    env.create(
        "crash",
        json!({"containers": [{"name": "c", "image": "busybox:1.36",
            "command": ["sh", "-c", "echo hi; echo oops >&2; sleep 1; exit 3"]}]}),
    )
    .await;
    let cs = env
        .until_status("crash", "the first exit", |cs| {
            cs["lastState"]["terminated"]["exitCode"] == 3
                || cs["state"]["terminated"]["exitCode"] == 3
        })
        .await;
    let ended = if cs["state"]["terminated"].is_object() {
        &cs["state"]["terminated"]
    } else {
        &cs["lastState"]["terminated"]
    };
    assert_eq!(ended["reason"], "Error", "{cs}");
    assert!(ended["containerID"]
        .as_str()
        .unwrap()
        .starts_with("kubeproof-process://"));
    let cs = env
        .until_status("crash", "CrashLoopBackOff", |cs| {
            cs["state"]["waiting"]["reason"] == "CrashLoopBackOff"
                && cs["restartCount"].as_i64() >= Some(1)
        })
        .await;
    assert_eq!(cs["lastState"]["terminated"]["exitCode"], 3);
    let previous = eventually(Duration::from_secs(10), || async {
        let text = logs(&pods, "crash", true).await;
        (text.contains("hi") && text.contains("oops")).then_some(text)
    })
    .await
    .expect("logs --previous show the last attempt");
    // stdout and stderr are two pipes: their lines interleave in arrival order.
    let mut lines: Vec<&str> = previous.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["hi", "oops"], "{previous}");

    // Env from a ConfigMap, a field and a literal; a working directory.
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), "default");
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(
            json!({"metadata": {"name": "settings"}, "data": {"color": "blue", "size": "L"}}),
        )
        .unwrap(),
    )
    .await
    .unwrap();
    env.create(
        "envy",
        json!({"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox",
            "workingDir": "/tmp",
            "command": ["sh", "-c", "echo color=$COLOR size=$CFG_size pod=$POD ip=$POD_IP greeting=$(GREETING) cwd=$(pwd)"],
            "envFrom": [{"prefix": "CFG_", "configMapRef": {"name": "settings"}}],
            "env": [
                {"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "color"}}},
                {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "GREETING", "value": "hello $(COLOR)"}
            ]}]}),
    )
    .await;
    let cs = env
        .until_status("envy", "completion", |cs| {
            cs["state"]["terminated"].is_object()
        })
        .await;
    assert_eq!(cs["state"]["terminated"]["reason"], "Completed", "{cs}");
    let text = logs(&pods, "envy", false).await;
    assert!(
        text.starts_with("color=blue size=L pod=envy ip=127.244.0.")
            && text.trim_end().ends_with("greeting=hello blue cwd=/tmp"),
        "{text}"
    );

    // Deletion sends SIGTERM: the trap writes a file before the process exits.
    let marker = env.dir.path().join("got-term");
    env.create(
        "trapper",
        json!({"containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c",
            format!("trap 'echo term > {}; exit 0' TERM; echo ready; while true; do sleep 0.1; done", marker.display())]}]}),
    )
    .await;
    env.until_status("trapper", "running", |cs| {
        cs["state"]["running"].is_object()
    })
    .await;
    eventually(Duration::from_secs(10), || async {
        logs(&pods, "trapper", false)
            .await
            .contains("ready")
            .then_some(())
    })
    .await
    .expect("the trap is installed");
    pods.delete("trapper", &DeleteParams::default())
        .await
        .unwrap();
    eventually(Duration::from_secs(20), || async {
        pods.get_opt("trapper").await.ok()?.is_none().then_some(())
    })
    .await
    .expect("the pod goes away after its process ended");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "term\n");

    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_missing_images_and_executables_and_liveness() {
    let env = start().await;
    let pods = env.pods();
    env.create(
        "shell",
        json!({"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"],
            "env": [{"name": "WHO", "value": "proc"}]}]}),
    )
    .await;
    env.until_status("shell", "running", |cs| cs["state"]["running"].is_object())
        .await;
    let mut attached = pods
        .exec(
            "shell",
            vec!["sh", "-c", "echo $WHO; echo err >&2; exit 7"],
            &AttachParams::default().stderr(true),
        )
        .await
        .expect("exec is accepted");
    let mut out = String::new();
    attached
        .stdout()
        .unwrap()
        .read_to_string(&mut out)
        .await
        .unwrap();
    let mut err = String::new();
    attached
        .stderr()
        .unwrap()
        .read_to_string(&mut err)
        .await
        .unwrap();
    let status = attached.take_status().unwrap().await.unwrap();
    assert_eq!((out.as_str(), err.as_str()), ("proc\n", "err\n"));
    assert_eq!(status.reason.as_deref(), Some("NonZeroExitCode"));
    let code = status.details.unwrap().causes.unwrap()[0].message.clone();
    assert_eq!(code.as_deref(), Some("7"));

    // An image the table does not map cannot be pulled; a missing executable cannot start.
    env.create(
        "nope",
        json!({"containers": [{"name": "c", "image": "example.com/no/such:1"}]}),
    )
    .await;
    env.until_status("nope", "ImagePullBackOff", |cs| {
        cs["state"]["waiting"]["reason"] == "ImagePullBackOff"
    })
    .await;
    env.create(
        "noexec",
        json!({"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox", "command": ["no-such-tool"]}]}),
    )
    .await;
    let cs = env
        .until_status("noexec", "a start error", |cs| {
            cs["state"]["terminated"].is_object()
        })
        .await;
    assert_eq!(cs["state"]["terminated"]["reason"], "StartError", "{cs}");
    assert!(cs["state"]["terminated"]["message"]
        .as_str()
        .unwrap()
        .contains("exec: \"no-such-tool\": executable file not found in $PATH"));

    // A failing liveness probe restarts the container.
    env.create(
        "unwell",
        json!({"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"],
            "livenessProbe": {"exec": {"command": ["sh", "-c", "exit 1"]}, "periodSeconds": 1, "failureThreshold": 2}}],
            "terminationGracePeriodSeconds": 1}),
    )
    .await;
    let cs = env
        .until_status("unwell", "a liveness restart", |cs| {
            cs["restartCount"].as_i64() >= Some(1)
        })
        .await;
    assert_eq!(cs["lastState"]["terminated"]["reason"], "Error", "{cs}");
    env.finish().await;
}
