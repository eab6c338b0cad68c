//! A bundled cluster (API server only) with one node agent, node-0, whose containers are real
//! busybox processes (the `process` runtime), for the tests `node_process*.rs`. Included beside
//! `node_support/mod.rs`, which those tests name `support`.

#![allow(dead_code)] // each test file uses a different part

use std::ops::Deref;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{Api, AttachParams, LogParams, PostParams};
use kubeproof_refcluster::node::process::images::{find_on_path, DEFAULT_PATH};
use kubeproof_refcluster::node::process::ProcessConfig;
use kubeproof_refcluster::node::FleetConfig;
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

use crate::support::{self, eventually};

/// How long a container may take to reach a state a test waits for.
const STATUS_WAIT: Duration = Duration::from_secs(60);

/// The cluster of [`support::Env`] (which this derefs to) with a process node; `dir` holds the
/// node's files and is free for the test's own.
pub struct Env {
    base: support::Env,
    pub dir: tempfile::TempDir,
}

impl Deref for Env {
    type Target = support::Env;
    fn deref(&self) -> &support::Env {
        &self.base
    }
}

/// Why this host cannot run busybox pods, if it cannot.
pub fn no_busybox() -> Option<&'static str> {
    find_on_path("busybox", DEFAULT_PATH)
        .is_none()
        .then_some("these tests run busybox pods: install busybox (apt-get install busybox-static)")
}

/// Starts the cluster and its process node; fails the test on a host without busybox.
pub async fn start() -> Env {
    if let Some(reason) = no_busybox() {
        panic!("{reason}");
    }
    start_with(|_| {}).await
}

/// [`start`], or `None` with the reason printed on a host without busybox.
pub async fn start_or_skip() -> Option<Env> {
    if let Some(reason) = no_busybox() {
        eprintln!("skipped: {reason}");
        return None;
    }
    Some(start_with(|_| {}).await)
}

/// Starts the cluster with one process node whose fleet (test timings, a [`ProcessConfig`]
/// under `dir`) `configure` may change; waits until the node is Ready.
pub async fn start_with(configure: impl FnOnce(&mut FleetConfig)) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let mut fleet = FleetConfig::for_tests(1);
    fleet.process = Some(ProcessConfig::new(dir.path().join("nodes")));
    configure(&mut fleet);
    let base = support::start_with(fleet).await;
    support::publish_root_ca(&base.client).await;
    Env { base, dir }
}

impl Env {
    /// Creates a pod on node-0 (a 2 s grace period unless `spec` sets one).
    pub async fn create(&self, name: &str, spec: Value) -> Pod {
        self.create_with_labels(name, json!({}), spec).await
    }

    /// [`Env::create`] with labels.
    pub async fn create_with_labels(&self, name: &str, labels: Value, mut spec: Value) -> Pod {
        spec["nodeName"] = json!("node-0");
        if spec.get("terminationGracePeriodSeconds").is_none() {
            spec["terminationGracePeriodSeconds"] = json!(2);
        }
        let pod: Pod = serde_json::from_value(
            json!({"metadata": {"name": name, "labels": labels}, "spec": spec}),
        )
        .unwrap();
        self.pods()
            .create(&PostParams::default(), &pod)
            .await
            .expect("pod created")
    }

    /// Waits until `f` holds for the pod's first container status; panics naming `what`, with
    /// the pod's status and the namespace's events, when it does not.
    pub async fn until_status(&self, name: &str, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        let pods = self.pods();
        let found = eventually(STATUS_WAIT, || {
            let pods = pods.clone();
            let f = &f;
            async move {
                let v = serde_json::to_value(pods.get(name).await.ok()?).ok()?;
                let cs = v["status"]["containerStatuses"].get(0)?.clone();
                f(&cs).then_some(cs)
            }
        })
        .await;
        if let Some(cs) = found {
            return cs;
        }
        let status = pods
            .get(name)
            .await
            .map(|p| serde_json::to_string_pretty(&p.status).unwrap());
        let events: Api<Event> = Api::namespaced(self.client.clone(), "default");
        let events: Vec<String> = events
            .list(&Default::default())
            .await
            .map(|l| {
                l.items
                    .into_iter()
                    .map(|e| format!("{:?} {:?}", e.reason, e.message))
                    .collect()
            })
            .unwrap_or_default();
        panic!("pod {name}: {what} did not happen; status: {status:?}; events: {events:#?}")
    }

    /// Waits until the pod's first container runs.
    pub async fn running(&self, name: &str) -> Value {
        self.until_status(name, "running", |cs| cs["state"]["running"].is_object())
            .await
    }

    /// The pod's log, or of its previous attempt; empty when there is none (yet).
    pub async fn logs(&self, name: &str, previous: bool) -> String {
        let params = LogParams {
            previous,
            ..Default::default()
        };
        self.pods().logs(name, &params).await.unwrap_or_default()
    }

    /// Runs `command` in the pod through `pods/exec`: its stdout, its stderr and the session's
    /// final Status.
    pub async fn exec(&self, pod: &str, command: &[&str]) -> (String, String, Option<Status>) {
        let params = AttachParams::default().stderr(true);
        let mut attached = self
            .pods()
            .exec(pod, command.to_vec(), &params)
            .await
            .unwrap_or_else(|e| panic!("exec in pod {pod} is accepted: {e}"));
        let (mut out, mut err) = (String::new(), String::new());
        let mut stdout = attached.stdout().unwrap();
        let mut stderr = attached.stderr().unwrap();
        // Both at once: a stream nobody reads could hold up the other.
        let (o, e) = tokio::join!(
            stdout.read_to_string(&mut out),
            stderr.read_to_string(&mut err)
        );
        o.unwrap();
        e.unwrap();
        let status = attached.take_status().unwrap().await;
        (out, err, status)
    }

    /// Stops the fleet (which must end cleanly) and the cluster.
    pub async fn finish(self) {
        self.base.finish().await;
    }
}
