//! Local ephemeral storage eviction by the simulated node agents: an `emptyDir` over its
//! `sizeLimit`, a pod over its containers' summed `ephemeral-storage` limits and a container
//! over its own, driven by the `emptydir-usage` and `ephemeral-storage-usage` annotations
//! (SIM.md). Each ends `Failed`/`Evicted` with the kubelet's message, an `Evicted` Warning
//! event and, unlike node-pressure evictions, no `DisruptionTarget` condition.

#[path = "node_support/mod.rs"]
mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use serde_json::json;
use support::{eventually, start};

async fn wait_phase(pods: &Api<Pod>, pod: &str, phase: &str) -> Pod {
    eventually(Duration::from_secs(30), || async {
        let p = pods.get(pod).await.ok()?;
        (p.status.as_ref()?.phase.as_deref() == Some(phase)).then_some(p)
    })
    .await
    .unwrap_or_else(|| panic!("pod {pod} never reached {phase}"))
}

fn container(name: &str, limit: Option<&str>) -> serde_json::Value {
    let mut c = json!({"name": name, "image": "nginx"});
    if let Some(l) = limit {
        c["resources"] = json!({"limits": {"ephemeral-storage": l}});
    }
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_over_their_local_storage_limits_are_evicted_with_upstreams_messages() {
    let env = start(1).await;
    let pods = env.pods();
    env.create_pod(
        "scratch",
        "node-0",
        json!({"sim.kubeproof.dev/emptydir-usage": "data=4Mi"}),
        json!({"containers": [container("app", None)],
               "volumes": [{"name": "data", "emptyDir": {"sizeLimit": "1Mi"}}]}),
    )
    .await;
    env.create_pod(
        "pod-total",
        "node-0",
        // 2 × 50Mi + 30Mi is over the pod's 128Mi; each container is within its 64Mi.
        json!({"sim.kubeproof.dev/ephemeral-storage-usage": "50Mi",
               "sim.kubeproof.dev/emptydir-usage": "cache=30Mi"}),
        json!({"containers": [container("a", Some("64Mi")), container("b", Some("64Mi"))],
               "volumes": [{"name": "cache", "emptyDir": {}}]}),
    )
    .await;
    env.create_pod(
        "one-container",
        "node-0",
        json!({"sim.kubeproof.dev/ephemeral-storage-usage.writer": "300Mi"}),
        json!({"containers": [container("writer", Some("256Mi")), container("idle", Some("1Gi"))]}),
    )
    .await;
    env.create_pod(
        "within",
        "node-0",
        json!({"sim.kubeproof.dev/ephemeral-storage-usage": "10Mi",
               "sim.kubeproof.dev/emptydir-usage": "data=1Mi"}),
        json!({"containers": [container("app", Some("64Mi"))],
               "volumes": [{"name": "data", "emptyDir": {"sizeLimit": "1Mi"}}]}),
    )
    .await;

    let expected = [
        (
            "scratch",
            r#"Usage of EmptyDir volume "data" exceeds the limit "1Mi". "#,
        ),
        (
            "pod-total",
            "Pod ephemeral local storage usage exceeds the total limit of containers 128Mi. ",
        ),
        (
            "one-container",
            r#"Container writer exceeded its local ephemeral storage limit "256Mi". "#,
        ),
    ];
    for (pod, message) in expected {
        let p = wait_phase(&pods, pod, "Failed").await;
        let status = p.status.unwrap();
        assert_eq!(status.reason.as_deref(), Some("Evicted"), "{pod}");
        assert_eq!(status.message.as_deref(), Some(message), "{pod}");
        let conditions = status.conditions.unwrap_or_default();
        assert!(
            conditions.iter().all(|c| c.type_ != "DisruptionTarget"),
            "{pod}: local storage evictions set no DisruptionTarget: {conditions:?}"
        );
        let event = support::pod_event(&env.client, pod, "Evicted").await;
        assert_eq!(event.type_.as_deref(), Some("Warning"));
        assert_eq!(event.message.as_deref(), Some(message));
    }
    // At the limits is not over them (and at least three monitoring passes have looked).
    assert_eq!(
        wait_phase(&pods, "within", "Running")
            .await
            .status
            .unwrap()
            .phase
            .as_deref(),
        Some("Running")
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emptydir_usage_naming_no_volume_is_reported_on_the_container() {
    let env = start(1).await;
    env.create_pod(
        "typo",
        "node-0",
        json!({"sim.kubeproof.dev/emptydir-usage": "dta=4Mi"}),
        json!({"restartPolicy": "Never", "containers": [container("app", None)],
               "volumes": [{"name": "data", "emptyDir": {}}]}),
    )
    .await;
    let pods = env.pods();
    let message = eventually(Duration::from_secs(30), || async {
        let p = pods.get("typo").await.ok()?;
        let cs = p.status?.container_statuses?.into_iter().next()?;
        let t = cs.state?.terminated?;
        t.message
    })
    .await
    .expect("the container fails to start");
    assert!(message.contains("no emptyDir volume \"dta\""), "{message}");
    env.finish().await;
}
