//! The bundled cluster with its components: a Deployment created through the API ends with
//! its pods scheduled onto simulated nodes and Running, with no other help.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams, PostParams};
use kubeproof_refcluster::cluster::{ClusterConfig, RunningCluster, StoreConfig};
use serde_json::json;

/// Polls `f` every 100ms until it gives `Some`; panics with `what` after `timeout`.
async fn eventually<T, Fut: std::future::Future<Output = Option<T>>>(
    timeout: Duration,
    what: &str,
    mut f: impl FnMut() -> Fut,
) -> T {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_runs_on_simulated_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ClusterConfig {
        store: StoreConfig::Memory,
        ..ClusterConfig::with_components_for_tests(dir.path(), 2)
    };
    let cluster = RunningCluster::start(cfg).await.unwrap();
    let client = cluster.client().await.unwrap();
    let nodes: Api<Node> = Api::all(client.clone());
    eventually(Duration::from_secs(30), "2 registered nodes", || async {
        (nodes.list(&ListParams::default()).await.ok()?.items.len() == 2).then_some(())
    })
    .await;

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}))
    .unwrap();
    deployments
        .create(&PostParams::default(), &d)
        .await
        .unwrap();

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let running = eventually(Duration::from_secs(60), "3 ready pods", || async {
        let list = pods
            .list(&ListParams::default().labels("app=web"))
            .await
            .ok()?;
        let ready: Vec<Pod> = list.items.into_iter().filter(ready).collect();
        (ready.len() == 3).then_some(ready)
    })
    .await;
    for p in &running {
        let node = p.spec.as_ref().and_then(|s| s.node_name.as_deref());
        assert!(
            matches!(node, Some("node-0" | "node-1")),
            "{node:?} is one of the simulated nodes"
        );
        let ip = p.status.as_ref().and_then(|s| s.pod_ip.as_deref()).unwrap();
        assert!(ip.starts_with("127."), "pod IPs stay on loopback: {ip}");
    }
    let status = eventually(Duration::from_secs(30), "3 available replicas", || async {
        let s = deployments.get("web").await.ok()?.status?;
        (s.available_replicas == Some(3)).then_some(s)
    })
    .await;
    assert_eq!(status.updated_replicas, Some(3));
    cluster.shutdown().await;
}
