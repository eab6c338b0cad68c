//! The scheduler against the bundled cluster, observed only through the API as a user would:
//! pods land on nodes that fit, tainted nodes get no pods without a toleration, a pod that fits
//! nowhere stays Pending with upstream's exact FailedScheduling message, and a high-priority pod
//! preempts a lower-priority one.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Node, Pod};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::ResourceExt;
use kubeproof_refcluster::cluster::{ClusterConfig, RunningCluster, StoreConfig};
use kubeproof_refcluster::scheduler::{self, SchedulerConfig};
use serde_json::{json, Value};
use tokio::sync::watch;

struct Env {
    _dir: tempfile::TempDir,
    cluster: RunningCluster,
    client: kube::Client,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    metrics: scheduler::SchedulerMetrics,
}

async fn start(nodes: u32) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ClusterConfig {
        store: StoreConfig::Memory,
        nodes,
        ..ClusterConfig::for_tests(dir.path())
    };
    let cluster = RunningCluster::start(cfg).await.expect("cluster starts");
    let client = cluster.client().await.expect("client");
    let (stop, rx) = watch::channel(false);
    let cfg = SchedulerConfig::for_tests();
    let metrics = cfg.metrics.clone();
    let task = tokio::spawn(scheduler::run(client.clone(), cfg, rx));
    Env {
        _dir: dir,
        cluster,
        client,
        stop,
        task,
        metrics,
    }
}

impl Env {
    async fn finish(self) {
        let _ = self.stop.send(true);
        let result = tokio::time::timeout(Duration::from_secs(10), self.task).await;
        assert!(
            matches!(result, Ok(Ok(Ok(())))),
            "scheduler ends cleanly: {result:?}"
        );
        self.cluster.shutdown().await;
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), "default")
    }

    async fn create_pod(&self, name: &str, spec: Value) -> Pod {
        let mut spec = spec;
        if spec.get("containers").is_none() {
            spec["containers"] = json!([{"name": "c", "image": "registry.k8s.io/pause:3.10"}]);
        }
        let pod: Pod =
            serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap();
        self.pods()
            .create(&PostParams::default(), &pod)
            .await
            .expect("pod created")
    }

    async fn patch_node(&self, name: &str, patch: Value) {
        let nodes: Api<Node> = Api::all(self.client.clone());
        nodes
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("node patched");
    }

    async fn set_node_cpu(&self, name: &str, cpu: &str) {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let patch = json!({"status": {"allocatable": {"cpu": cpu}, "capacity": {"cpu": cpu}}});
        nodes
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("node status patched");
    }

    async fn node_of(&self, name: &str) -> String {
        let pods = self.pods();
        eventually(Duration::from_secs(20), || async {
            let p = pods.get(name).await.ok()?;
            p.spec.and_then(|s| s.node_name).filter(|n| !n.is_empty())
        })
        .await
        .unwrap_or_else(|| panic!("pod {name} was not scheduled"))
    }

    async fn events_for(&self, pod: &str) -> Vec<Event> {
        let events: Api<Event> = Api::namespaced(self.client.clone(), "default");
        events
            .list(&ListParams::default())
            .await
            .expect("events listed")
            .items
            .into_iter()
            .filter(|e| e.involved_object.name.as_deref() == Some(pod))
            .collect()
    }
}

/// Polls `f` until it gives `Some`, or `None` after `timeout`.
async fn eventually<T, F, Fut>(timeout: Duration, mut f: F) -> Option<T>
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

fn cpu(c: &str) -> Value {
    json!([{"name": "c", "image": "registry.k8s.io/pause:3.10", "resources": {"requests": {"cpu": c}}}])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_lands_on_the_node_that_fits() {
    let env = start(3).await;
    env.set_node_cpu("node-0", "1").await;
    env.set_node_cpu("node-1", "1").await;
    // Let the scheduler's node watch catch up before the pod arrives.
    tokio::time::sleep(Duration::from_millis(500)).await;
    env.create_pod("big", json!({"containers": cpu("2")})).await;
    assert_eq!(env.node_of("big").await, "node-2");

    let pods = env.pods();
    let cond = eventually(Duration::from_secs(10), || async {
        let p = pods.get("big").await.ok()?;
        p.status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "PodScheduled")
    })
    .await
    .expect("PodScheduled condition");
    assert_eq!(cond.status, "True");

    let scheduled = eventually(Duration::from_secs(10), || async {
        env.events_for("big")
            .await
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("Scheduled"))
    })
    .await
    .expect("a Scheduled event");
    assert_eq!(
        scheduled.message.as_deref(),
        Some("Successfully assigned default/big to node-2")
    );
    assert_eq!(scheduled.type_.as_deref(), Some("Normal"));
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tainted_nodes_get_no_pods_without_a_toleration() {
    let env = start(3).await;
    let taint =
        json!({"spec": {"taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]}});
    env.patch_node("node-0", taint.clone()).await;
    env.patch_node("node-1", taint).await;
    // Let the scheduler see the taints before the pods arrive.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for i in 0..6 {
        env.create_pod(&format!("plain-{i}"), json!({})).await;
    }
    for i in 0..6 {
        assert_eq!(
            env.node_of(&format!("plain-{i}")).await,
            "node-2",
            "plain-{i}"
        );
    }
    env.create_pod(
        "tolerant",
        json!({
            "nodeSelector": {"kubernetes.io/hostname": "node-0"},
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}],
        }),
    )
    .await;
    assert_eq!(env.node_of("tolerant").await, "node-0");
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfit_pod_stays_pending_with_the_exact_message() {
    let env = start(3).await;
    let taint =
        json!({"spec": {"taints": [{"key": "key", "value": "value", "effect": "NoSchedule"}]}});
    env.patch_node("node-1", taint.clone()).await;
    env.patch_node("node-2", taint).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    env.create_pod("huge", json!({"containers": cpu("100")}))
        .await;

    let expected = "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {key: value}. \
                    preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, \
                    2 Preemption is not helpful for scheduling..";
    let event = eventually(Duration::from_secs(20), || async {
        env.events_for("huge")
            .await
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("FailedScheduling"))
    })
    .await
    .expect("a FailedScheduling event");
    assert_eq!(event.message.as_deref(), Some(expected));
    assert_eq!(event.type_.as_deref(), Some("Warning"));

    let pods = env.pods();
    let cond = eventually(Duration::from_secs(10), || async {
        let p = pods.get("huge").await.ok()?;
        p.status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "PodScheduled")
    })
    .await
    .expect("PodScheduled condition");
    assert_eq!(cond.status, "False");
    assert_eq!(cond.reason.as_deref(), Some("Unschedulable"));
    assert_eq!(cond.message.as_deref(), Some(expected));

    // It stays pending: retries keep failing the same way.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let p = pods.get("huge").await.unwrap();
    assert!(p.spec.unwrap().node_name.is_none());
    assert_eq!(p.status.unwrap().phase.as_deref(), Some("Pending"));

    // Room appears (the taint goes, the node grows): the node event brings the pod back.
    env.patch_node("node-1", json!({"spec": {"taints": null}}))
        .await;
    env.set_node_cpu("node-1", "128").await;
    assert_eq!(env.node_of("huge").await, "node-1");

    let text = {
        use prometheus::Encoder;
        let mut out = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&env.metrics.registry().gather(), &mut out)
            .unwrap();
        String::from_utf8(out).unwrap()
    };
    assert!(
        text.contains("scheduler_schedule_attempts_total{profile=\"default-scheduler\",result=\"unschedulable\"}"),
        "{text}"
    );
    assert!(text.contains(
        "scheduler_schedule_attempts_total{profile=\"default-scheduler\",result=\"scheduled\"} 1"
    ));
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn high_priority_pod_preempts_a_lower_priority_one() {
    let env = start(1).await;
    let classes: Api<PriorityClass> = Api::all(env.client.clone());
    for (name, value) in [("low", 10), ("high", 1000)] {
        let pc: PriorityClass =
            serde_json::from_value(json!({"metadata": {"name": name}, "value": value})).unwrap();
        classes.create(&PostParams::default(), &pc).await.unwrap();
    }
    // Victims go at once (no node agent runs here to finish a graceful deletion).
    let low = json!({"containers": cpu("2"), "priorityClassName": "low", "terminationGracePeriodSeconds": 0});
    for name in ["low-a", "low-b"] {
        env.create_pod(name, low.clone()).await;
        assert_eq!(env.node_of(name).await, "node-0");
    }
    env.create_pod(
        "vip",
        json!({"containers": cpu("2"), "priorityClassName": "high"}),
    )
    .await;
    assert_eq!(env.node_of("vip").await, "node-0");

    let pods = env.pods();
    let remaining: Vec<String> = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|p| p.name_any())
        .collect();
    let survivors = remaining.iter().filter(|n| n.starts_with("low-")).count();
    assert_eq!(survivors, 1, "exactly one victim: {remaining:?}");
    let victim = if remaining.iter().any(|n| n == "low-a") {
        "low-b"
    } else {
        "low-a"
    };
    let preempted = eventually(Duration::from_secs(10), || async {
        env.events_for(victim)
            .await
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("Preempted"))
    })
    .await
    .expect("a Preempted event on the victim");
    let vip_uid = pods.get("vip").await.unwrap().uid().unwrap();
    assert_eq!(
        preempted.message.as_deref(),
        Some(format!("Preempted by pod {vip_uid} on node node-0").as_str())
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_from_a_configuration_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ClusterConfig {
        store: StoreConfig::Memory,
        nodes: 2,
        ..ClusterConfig::for_tests(dir.path())
    };
    let cluster = RunningCluster::start(cfg).await.expect("cluster starts");
    let client = cluster.client().await.expect("client");
    let cfg = SchedulerConfig::from_yaml(
        r#"
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
leaderElection:
  leaderElect: false
profiles:
- schedulerName: default-scheduler
- schedulerName: bin-packer
  percentageOfNodesToScore: 100
  plugins:
    score:
      disabled:
      - name: NodeResourcesBalancedAllocation
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: MostAllocated
"#,
    )
    .expect("configuration accepted");
    let metrics = cfg.metrics.clone();
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(scheduler::run(client.clone(), cfg, rx));
    let env = Env {
        _dir: dir,
        cluster,
        client,
        stop,
        task,
        metrics,
    };

    env.create_pod("elsewhere", json!({"schedulerName": "someone-else"}))
        .await;
    for name in ["pack-a", "pack-b", "pack-c"] {
        env.create_pod(
            name,
            json!({"schedulerName": "bin-packer", "containers": cpu("1")}),
        )
        .await;
        env.node_of(name).await;
    }
    let a = env.node_of("pack-a").await;
    assert_eq!(
        env.node_of("pack-b").await,
        a,
        "MostAllocated packs pods together"
    );
    assert_eq!(env.node_of("pack-c").await, a);
    env.create_pod("plain", json!({})).await;
    env.node_of("plain").await;

    let elsewhere = env.pods().get("elsewhere").await.unwrap();
    assert!(
        elsewhere.spec.unwrap().node_name.is_none(),
        "another scheduler's pod is left alone"
    );
    assert!(env.events_for("elsewhere").await.is_empty());
    let scheduled = eventually(Duration::from_secs(10), || async {
        env.events_for("pack-a")
            .await
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("Scheduled"))
    })
    .await
    .expect("a Scheduled event");
    assert_eq!(scheduled.reporting_component.as_deref(), Some("bin-packer"));
    env.finish().await;
}
