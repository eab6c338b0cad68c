//! A bundled cluster (API server only) with a fleet of simulated nodes, for the node agent
//! tests (`node_sim.rs`, `node_logs.rs`, `node_exec.rs`).

#![allow(dead_code)] // each test file uses a different part

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
use kube::api::{Api, PostParams};
use kubeproof_refcluster::cluster::{ClusterConfig, RunningCluster, StoreConfig};
use kubeproof_refcluster::node::{run_fleet_with_stats, FleetConfig, FleetStats};
use serde_json::{json, Value};
use tokio::sync::watch;

pub struct Env {
    _dir: tempfile::TempDir,
    pub cluster: RunningCluster,
    pub client: kube::Client,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    pub stats: FleetStats,
}

/// Starts the cluster and `nodes` simulated nodes (node-0, …) with test timings, and waits
/// until every node is Ready.
pub async fn start(nodes: usize) -> Env {
    start_with(FleetConfig::for_tests(nodes)).await
}

/// [`start`] with a fleet configured by the test.
pub async fn start_with(fleet: FleetConfig) -> Env {
    let nodes = fleet.nodes.len();
    let dir = tempfile::tempdir().unwrap();
    let cfg = ClusterConfig {
        store: StoreConfig::Memory,
        nodes: 0,
        ..ClusterConfig::for_tests(dir.path())
    };
    let cluster = RunningCluster::start(cfg).await.expect("cluster starts");
    let client = cluster.client().await.expect("client");
    let (stop, rx) = watch::channel(false);
    let stats = FleetStats::default();
    let task = tokio::spawn(run_fleet_with_stats(
        client.clone(),
        fleet,
        stats.clone(),
        rx,
    ));
    let env = Env {
        _dir: dir,
        cluster,
        client,
        stop,
        task,
        stats,
    };
    for i in 0..nodes {
        env.node_ready(&format!("node-{i}")).await;
    }
    env
}

impl Env {
    /// Stops the fleet (which must end cleanly) and the cluster.
    pub async fn finish(self) {
        let _ = self.stop.send(true);
        let result = tokio::time::timeout(Duration::from_secs(10), self.task).await;
        assert!(
            matches!(result, Ok(Ok(Ok(())))),
            "the fleet ends cleanly: {result:?}"
        );
        self.cluster.shutdown().await;
    }

    pub fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), "default")
    }

    pub async fn node_ready(&self, name: &str) -> Node {
        let nodes: Api<Node> = Api::all(self.client.clone());
        eventually(Duration::from_secs(20), || async {
            let n = nodes.get(name).await.ok()?;
            let ready = n
                .status
                .as_ref()?
                .conditions
                .as_ref()?
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            ready.then_some(n)
        })
        .await
        .unwrap_or_else(|| panic!("node {name} did not become Ready"))
    }

    /// Creates a pod already bound to `node` (a pause container unless `spec` has containers;
    /// a 5 s grace period).
    pub async fn create_pod(&self, name: &str, node: &str, annotations: Value, spec: Value) -> Pod {
        let mut spec = spec;
        spec["nodeName"] = json!(node);
        self.create_unbound_pod(name, annotations, spec).await
    }

    /// Creates a pod no node runs until something binds it.
    pub async fn create_unbound_pod(&self, name: &str, annotations: Value, spec: Value) -> Pod {
        let mut spec = spec;
        if spec.get("containers").is_none() {
            spec["containers"] = json!([{"name": "app", "image": "registry.k8s.io/pause:3.10"}]);
        }
        spec["terminationGracePeriodSeconds"] = json!(5);
        let pod: Pod = serde_json::from_value(
            json!({"metadata": {"name": name, "annotations": annotations}, "spec": spec}),
        )
        .unwrap();
        self.pods()
            .create(&PostParams::default(), &pod)
            .await
            .expect("pod created")
    }
}

/// Creates the ConfigMap `name` in `default` with `data`.
pub async fn create_config_map(client: &kube::Client, name: &str, data: Value) -> ConfigMap {
    let cm = serde_json::from_value(json!({"metadata": {"name": name}, "data": data})).unwrap();
    Api::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &cm)
        .await
        .unwrap_or_else(|e| panic!("ConfigMap {name} is created: {e}"))
}

/// Publishes the root CA as the controller-manager's publisher would, for the service account
/// volume the API server adds to every pod, in tests that run no controller-manager.
pub async fn publish_root_ca(client: &kube::Client) {
    create_config_map(client, "kube-root-ca.crt", json!({"ca.crt": "test CA"})).await;
}

/// Polls `f` every 100 ms until it gives `Some`, or `None` after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The Event with `reason` about pod `pod` in `default`, waited for up to 20 s.
pub async fn pod_event(
    client: &kube::Client,
    pod: &str,
    reason: &str,
) -> k8s_openapi::api::core::v1::Event {
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), "default");
    eventually(Duration::from_secs(20), || async {
        events
            .list(&Default::default())
            .await
            .ok()?
            .items
            .into_iter()
            .find(|e| {
                e.reason.as_deref() == Some(reason)
                    && e.involved_object.name.as_deref() == Some(pod)
            })
    })
    .await
    .unwrap_or_else(|| panic!("no {reason} event for pod {pod} within 20 s"))
}

/// Runs kubectl 1.32 with `kubeconfig` (30 s at most): exit code, stdout, stderr.
pub async fn kubectl(kubeconfig: &std::path::Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new("kubectl")
            .env("KUBECONFIG", kubeconfig)
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("kubectl {} did not finish", args.join(" ")))
    .expect("kubectl runs");
    exit_and_output(out)
}

/// Starts kubectl 1.32 with `kubeconfig`, its stdin, stdout and stderr piped to the test.
pub fn spawn_kubectl(kubeconfig: &std::path::Path, args: &[&str]) -> tokio::process::Child {
    tokio::process::Command::new("kubectl")
        .env("KUBECONFIG", kubeconfig)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("kubectl runs")
}

/// Runs kubectl 1.32 with `input` on its stdin, which then ends, and waits (30 s at most) for
/// it to finish: exit code, stdout, stderr.
pub async fn kubectl_with_input(
    kubeconfig: &std::path::Path,
    args: &[&str],
    input: &[u8],
) -> (Option<i32>, String, String) {
    use tokio::io::AsyncWriteExt;
    let mut child = spawn_kubectl(kubeconfig, args);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("kubectl {} did not finish", args.join(" ")))
        .expect("kubectl runs");
    exit_and_output(out)
}

fn exit_and_output(out: std::process::Output) -> (Option<i32>, String, String) {
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
