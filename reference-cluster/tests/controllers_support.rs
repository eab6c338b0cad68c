//! Shared by the `controllers_*` integration tests (included with `#[path]`): a bundled
//! cluster with the controller-manager running, a fake kubelet that marks pods running and
//! ready, and polling helpers.
#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use kubeproof_refcluster::cluster::{ClusterConfig, RunningCluster, StoreConfig};
use kubeproof_refcluster::controllers::ControllerConfig;
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct Env {
    pub cluster: RunningCluster,
    pub client: kube::Client,
    stop: watch::Sender<bool>,
    /// The first controller-manager; `None` once stopped.
    manager: Option<JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl Env {
    pub async fn start() -> Env {
        Env::start_with(|_| {}).await
    }

    pub async fn start_with(tune: impl FnOnce(&mut ControllerConfig)) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let cluster = RunningCluster::start(ClusterConfig {
            store: StoreConfig::Memory,
            ..ClusterConfig::for_tests(dir.path())
        })
        .await
        .unwrap();
        let client = cluster.client().await.unwrap();
        let mut cfg = ControllerConfig::for_tests();
        cfg.root_ca_pem = Some(cluster.pki.ca.cert_pem.clone());
        cfg.apiserver_endpoint = Some((cluster.addr.ip(), cluster.addr.port()));
        tune(&mut cfg);
        let (stop, rx) = watch::channel(false);
        // The bootstrap nodes have no agents here: their leases are renewed as kubelets
        // would, so node lifecycle keeps them Ready.
        tokio::spawn(heartbeat(
            client.clone(),
            (0..3).map(|i| format!("node-{i}")).collect(),
            rx.clone(),
        ));
        let manager = tokio::spawn(kubeproof_refcluster::controllers::run_controller_manager(
            client.clone(),
            cfg,
            rx,
        ));
        Env {
            cluster,
            client,
            stop,
            manager: Some(manager),
            _dir: dir,
        }
    }

    pub async fn namespace(&self, name: &str) -> String {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        api.create(&PostParams::default(), &ns).await.unwrap();
        name.to_string()
    }

    /// A further controller-manager on the same cluster (e.g. a standby replica).
    pub fn spawn_manager(
        &self,
        cfg: ControllerConfig,
    ) -> (watch::Sender<bool>, JoinHandle<anyhow::Result<()>>) {
        let (stop, rx) = watch::channel(false);
        let task = tokio::spawn(kubeproof_refcluster::controllers::run_controller_manager(
            self.client.clone(),
            cfg,
            rx,
        ));
        (stop, task)
    }

    /// Stops the first controller-manager, leaving the cluster up.
    pub async fn stop_manager(&mut self) {
        let _ = self.stop.send(true);
        if let Some(manager) = self.manager.take() {
            let r = tokio::time::timeout(Duration::from_secs(10), manager).await;
            assert!(r.is_ok(), "controller-manager did not stop");
        }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Some(manager) = self.manager {
            let r = tokio::time::timeout(Duration::from_secs(10), manager).await;
            assert!(r.is_ok(), "controller-manager did not stop");
        }
        self.cluster.shutdown().await;
    }
}

/// Renews the `kube-node-lease` Lease of each node every second until `stop`.
pub async fn heartbeat(client: kube::Client, nodes: Vec<String>, mut stop: watch::Receiver<bool>) {
    let api: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client, "kube-node-lease");
    loop {
        for n in &nodes {
            let now = chrono::Utc::now()
                .format("%Y-%m-%dT%H:%M:%S%.6fZ")
                .to_string();
            let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": n, "namespace": "kube-node-lease"},
                "spec": {"holderIdentity": n, "leaseDurationSeconds": 40, "renewTime": now}});
            let _ = api
                .patch(
                    n,
                    &PatchParams::apply("kubelet").force(),
                    &Patch::Apply(&lease),
                )
                .await;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            r = stop.changed() => if r.is_err() || *stop.borrow() { return },
        }
    }
}

/// Polls `f` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What a kubelet reports for a running, ready pod.
pub fn ready_status(ip: &str) -> serde_json::Value {
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    json!({"status": {
        "phase": "Running",
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
            {"type": "Initialized", "status": "True", "lastTransitionTime": now},
            {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
            {"type": "Ready", "status": "True", "lastTransitionTime": now},
        ],
    }})
}

pub async fn mark_ready(client: &kube::Client, ns: &str, name: &str, ip: &str) {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(&ready_status(ip)),
    )
    .await
    .unwrap();
}

pub fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Marks every new pod of `ns` for which `ready_if` holds running and ready after `delay`,
/// as a kubelet would.
pub fn fake_kubelet(
    client: kube::Client,
    ns: &str,
    delay: Duration,
    ready_if: impl Fn(&Pod) -> bool + Send + 'static,
) -> JoinHandle<()> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let ns = ns.to_string();
    tokio::spawn(async move {
        let mut stream = watcher::watcher(api, watcher::Config::default()).boxed();
        let mut n: u32 = 0;
        let mut seen = std::collections::HashSet::new();
        while let Some(ev) = stream.next().await {
            let p = match ev {
                Ok(watcher::Event::Apply(p)) | Ok(watcher::Event::InitApply(p)) => p,
                _ => continue,
            };
            if is_ready(&p) || p.metadata.deletion_timestamp.is_some() || !ready_if(&p) {
                continue;
            }
            if !seen.insert(p.metadata.uid.clone()) {
                continue;
            }
            let name = p.name_any();
            n += 1;
            let ip = format!("10.{}.{}.{}", 1 + n / 65536, (n / 256) % 256, n % 256);
            let client = client.clone();
            let ns = ns.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let api: Api<Pod> = Api::namespaced(client, &ns);
                let _ = api
                    .patch_status(
                        &name,
                        &PatchParams::default(),
                        &Patch::Merge(&ready_status(&ip)),
                    )
                    .await;
            });
        }
    })
}

pub fn image_of(p: &Pod) -> String {
    p.spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default()
}

/// kubectl 1.32 with the cluster's admin kubeconfig, in namespace `ns`.
pub struct Kubectl {
    pub kubeconfig: std::path::PathBuf,
    pub ns: String,
}

impl Kubectl {
    pub fn new(env: &Env, ns: &str) -> Kubectl {
        Kubectl {
            kubeconfig: env.cluster.kubeconfig_path().to_path_buf(),
            ns: ns.to_string(),
        }
    }

    /// (success, stdout, stderr)
    pub async fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = tokio::process::Command::new("kubectl")
            .env("KUBECONFIG", &self.kubeconfig)
            .args(["-n", &self.ns])
            .args(args)
            .output()
            .await
            .expect("kubectl runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub async fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args).await;
        assert!(ok, "kubectl {} failed:\n{out}{err}", args.join(" "));
        out
    }
}

pub async fn wait_default_sa(client: &kube::Client, ns: &str) {
    let api: Api<k8s_openapi::api::core::v1::ServiceAccount> = Api::namespaced(client.clone(), ns);
    eventually(
        Duration::from_secs(20),
        "the default service account",
        || {
            let api = api.clone();
            async move { api.get_opt("default").await.ok().flatten() }
        },
    )
    .await;
}

pub async fn list_pods(client: &kube::Client, ns: &str) -> Vec<Pod> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    api.list(&Default::default()).await.unwrap().items
}

/// Active pods (not terminating, not finished).
pub async fn active_pods(client: &kube::Client, ns: &str) -> Vec<Pod> {
    list_pods(client, ns)
        .await
        .into_iter()
        .filter(|p| {
            p.metadata.deletion_timestamp.is_none()
                && !matches!(
                    p.status.as_ref().and_then(|s| s.phase.as_deref()),
                    Some("Succeeded" | "Failed")
                )
        })
        .collect()
}

/// Core/v1 events in `ns` as (reason, message).
pub async fn events(client: &kube::Client, ns: &str) -> Vec<(String, String)> {
    let api: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), ns);
    api.list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|e| (e.reason.unwrap_or_default(), e.message.unwrap_or_default()))
        .collect()
}

pub fn obj<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).unwrap()
}
