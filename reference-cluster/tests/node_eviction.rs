//! Node-pressure eviction by the simulated node agents: signals from the node's annotations
//! and the pods' memory usage, pressure conditions, the ranking, the evicted pod's status and
//! event, and soft thresholds that wait for their grace period.

#[path = "node_support/mod.rs"]
mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, Patch, PatchParams};
use kubeproof_refcluster::node::eviction::{Amount, Signal};
use kubeproof_refcluster::node::FleetConfig;
use serde_json::json;
use support::{eventually, start, start_with, Env};

impl Env {
    async fn annotate_node(&self, node: &str, key: &str, value: Option<&str>) {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let patch = json!({"metadata": {"annotations": {key: value}}});
        nodes
            .patch(node, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("node annotated");
    }

    async fn phase(&self, pod: &str) -> Option<String> {
        let p = self.pods().get(pod).await.ok()?;
        p.status?.phase
    }

    async fn wait_phase(&self, pod: &str, phase: &str) -> Pod {
        eventually(Duration::from_secs(30), || async {
            let p = self.pods().get(pod).await.ok()?;
            (p.status.as_ref()?.phase.as_deref() == Some(phase)).then_some(p)
        })
        .await
        .unwrap_or_else(|| panic!("pod {pod} never reached {phase}"))
    }

    async fn condition(&self, node: &str, type_: &str) -> Option<String> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let n = nodes.get(node).await.ok()?;
        n.status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == type_)
            .map(|c| c.status)
    }

    async fn wait_condition(&self, node: &str, type_: &str, status: &str) {
        let found = eventually(Duration::from_secs(30), || async {
            (self.condition(node, type_).await.as_deref() == Some(status)).then_some(())
        })
        .await;
        assert!(
            found.is_some(),
            "node {node}: {type_} never became {status}"
        );
    }
}

fn app(resources: serde_json::Value) -> serde_json::Value {
    json!({"containers": [{"name": "app", "image": "nginx", "resources": resources}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_pressure_evicts_the_pod_furthest_over_its_requests() {
    let env = start(1).await;
    env.create_pod(
        "hog",
        "node-0",
        json!({"sim.kubeproof.dev/memory-usage": "950Mi"}),
        app(json!({})),
    )
    .await;
    env.create_pod(
        "burstable",
        "node-0",
        json!({"sim.kubeproof.dev/memory-usage": "200Mi"}),
        app(json!({"requests": {"memory": "64Mi"}})),
    )
    .await;
    env.create_pod(
        "guaranteed",
        "node-0",
        json!({}),
        app(json!({"requests": {"cpu": "100m", "memory": "64Mi"},
                   "limits": {"cpu": "100m", "memory": "64Mi"}})),
    )
    .await;
    for p in ["hog", "burstable", "guaranteed"] {
        env.wait_phase(p, "Running").await;
    }
    assert_eq!(
        env.condition("node-0", "MemoryPressure").await.as_deref(),
        Some("False")
    );

    // 1200Mi for pods, 1214Mi in use: 100Mi is not left.
    env.annotate_node(
        "node-0",
        "sim.kubeproof.dev/memory-available",
        Some("1200Mi"),
    )
    .await;
    let hog = env.wait_phase("hog", "Failed").await;
    let status = hog.status.unwrap();
    assert_eq!(status.reason.as_deref(), Some("Evicted"));
    let message = status.message.unwrap();
    assert!(
        message.starts_with(
            "The node was low on resource: memory. Threshold quantity: 100Mi, available: "
        ),
        "{message}"
    );
    assert!(
        message.ends_with(
            ". Container app was using 950Mi, request is 0, has larger consumption of memory. "
        ),
        "{message}"
    );
    let disruption = status
        .conditions
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "DisruptionTarget")
        .expect("a DisruptionTarget condition");
    assert_eq!(disruption.reason.as_deref(), Some("TerminationByKubelet"));
    assert_eq!(disruption.message.as_deref(), Some(message.as_str()));
    let terminated = status.container_statuses.unwrap()[0]
        .state
        .clone()
        .unwrap()
        .terminated;
    assert!(
        terminated.is_some(),
        "the evicted pod's container was stopped"
    );

    let evicted = support::pod_event(&env.client, "hog", "Evicted").await;
    assert_eq!(evicted.type_.as_deref(), Some("Warning"));
    assert_eq!(evicted.message.as_deref(), Some(message.as_str()));

    env.wait_condition("node-0", "MemoryPressure", "True").await;
    // With the hog gone 936Mi are left: nobody else goes.
    let spared = eventually(Duration::from_secs(3), || async {
        let lost = [env.phase("burstable").await, env.phase("guaranteed").await]
            .iter()
            .any(|p| p.as_deref() != Some("Running"));
        lost.then_some(())
    })
    .await;
    assert!(spared.is_none(), "only the hog is evicted");

    env.annotate_node("node-0", "sim.kubeproof.dev/memory-available", None)
        .await;
    env.wait_condition("node-0", "MemoryPressure", "False")
        .await;
    assert_eq!(
        env.phase("hog").await.as_deref(),
        Some("Failed"),
        "evicted pods stay"
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_soft_threshold_reports_pressure_at_once_and_evicts_after_its_grace() {
    let mut cfg = FleetConfig::for_tests(1);
    cfg.eviction = cfg.eviction.with_soft(vec![(
        Signal::NodeFsAvailable,
        Amount::Percent(50.0),
        Duration::from_secs(4),
    )]);
    let env = start_with(cfg).await;
    env.create_pod("victim", "node-0", json!({}), app(json!({})))
        .await;
    env.wait_phase("victim", "Running").await;

    // 40Gi of the node's 100Gi left: below the soft 50%, above the hard 10%.
    env.annotate_node("node-0", "sim.kubeproof.dev/nodefs-available", Some("40Gi"))
        .await;
    env.wait_condition("node-0", "DiskPressure", "True").await;
    assert_eq!(
        env.phase("victim").await.as_deref(),
        Some("Running"),
        "a soft threshold waits for its grace period"
    );
    let evicted = env.wait_phase("victim", "Failed").await;
    let status = evicted.status.unwrap();
    assert_eq!(status.reason.as_deref(), Some("Evicted"));
    assert_eq!(
        status.message.as_deref(),
        Some("The node was low on resource: ephemeral-storage. Threshold quantity: 50Gi, available: 40Gi. ")
    );
    assert_eq!(
        env.condition("node-0", "MemoryPressure").await.as_deref(),
        Some("False"),
        "only the disk is short"
    );
    env.annotate_node("node-0", "sim.kubeproof.dev/nodefs-available", None)
        .await;
    env.wait_condition("node-0", "DiskPressure", "False").await;
    env.finish().await;
}
