//! Node lifecycle and taint-based eviction against the bundled cluster: nodes whose
//! heartbeats stop turn Unknown and get the unreachable taints; pods leave after their
//! tolerationSeconds and their controllers replace them.

#[path = "controllers_support.rs"]
mod support;

use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use support::*;

const T: Duration = Duration::from_secs(30);

fn node(name: &str) -> Node {
    obj(kubeproof_refcluster::cluster::node_object(name))
}

fn ready_status(node: &Node) -> Option<(String, String)> {
    let c = node
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")?
        .clone();
    Some((c.status, c.reason.unwrap_or_default()))
}

fn taints(node: &Node) -> Vec<(String, String)> {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|t| (t.key, t.effect))
        .collect()
}

fn pod(name: &str, node: &str, tolerations: serde_json::Value) -> Pod {
    obj(
        json!({"metadata": {"name": name}, "spec": {"nodeName": node, "tolerations": tolerations,
        "containers": [{"name": "c", "image": "nginx"}]}}),
    )
}

#[tokio::test]
async fn silent_nodes_turn_unknown_and_their_pods_are_evicted_and_replaced() {
    let env = Env::start().await;
    let ns = env.namespace("nodes").await;
    wait_default_sa(&env.client, &ns).await;
    let nodes: Api<Node> = Api::all(env.client.clone());
    for n in ["lonely", "steady"] {
        nodes
            .create(&PostParams::default(), &node(n))
            .await
            .unwrap();
    }
    // "steady" keeps heartbeating through its Lease; "lonely" never does.
    let (_hb_stop, hb_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(heartbeat(env.client.clone(), vec!["steady".into()], hb_rx));

    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &ns);
    let short = json!([{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 2}]);
    let forever = json!([{"operator": "Exists"}]);
    pods.create(
        &PostParams::default(),
        &pod("short", "lonely", short.clone()),
    )
    .await
    .unwrap();
    pods.create(&PostParams::default(), &pod("forever", "lonely", forever))
        .await
        .unwrap();
    pods.create(
        &PostParams::default(),
        &pod("elsewhere", "steady", json!([])),
    )
    .await
    .unwrap();
    for p in ["short", "forever", "elsewhere"] {
        mark_ready(&env.client, &ns, p, "10.9.0.1").await;
    }
    // A ReplicaSet's pod on the silent node (its template names the node), to see it replaced.
    let rs: ReplicaSet = obj(json!({"metadata": {"name": "web"}, "spec": {"replicas": 1,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"tolerations": short, "nodeName": "lonely",
            "containers": [{"name": "c", "image": "nginx"}]}}}}));
    let rss: Api<ReplicaSet> = Api::namespaced(env.client.clone(), &ns);
    rss.create(&PostParams::default(), &rs).await.unwrap();
    let first = eventually(T, "the replica set's pod", || async {
        active_pods(&env.client, &ns)
            .await
            .into_iter()
            .find(|p| p.name_any().starts_with("web-"))
    })
    .await;

    let silent_since = std::time::Instant::now();
    let lonely = eventually(T, "lonely Unknown and tainted", || async {
        let n = nodes.get("lonely").await.ok()?;
        let t = taints(&n);
        let tainted = t.contains(&("node.kubernetes.io/unreachable".into(), "NoExecute".into()))
            && t.contains(&("node.kubernetes.io/unreachable".into(), "NoSchedule".into()));
        (ready_status(&n)?.0 == "Unknown" && tainted).then_some(n)
    })
    .await;
    // The test configuration's grace period is 4s.
    assert!(
        silent_since.elapsed() >= Duration::from_secs(3),
        "{:?}",
        silent_since.elapsed()
    );
    assert_eq!(ready_status(&lonely).unwrap().1, "NodeStatusUnknown");
    let ready = lonely
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(
        ready.message.as_deref(),
        Some("Kubelet stopped posting node status.")
    );

    // Pods there are marked not ready; the short toleration runs out.
    let evicted = eventually(T, "the short-toleration pod evicted", || async {
        let p = pods.get_opt("short").await.ok()?;
        match p {
            None => Some(None),
            Some(p) if p.metadata.deletion_timestamp.is_some() => Some(Some(p)),
            Some(_) => None,
        }
    })
    .await;
    if let Some(p) = evicted {
        let c = p
            .status
            .unwrap()
            .conditions
            .unwrap()
            .into_iter()
            .find(|c| c.type_ == "DisruptionTarget")
            .unwrap();
        assert_eq!(c.reason.as_deref(), Some("DeletionByTaintManager"));
    }
    eventually(T, "a replacement for the evicted replica", || async {
        let all = active_pods(&env.client, &ns).await;
        all.iter()
            .any(|p| p.name_any().starts_with("web-") && p.name_any() != first.name_any())
            .then_some(())
    })
    .await;
    let forever = pods.get("forever").await.unwrap();
    assert!(
        forever.metadata.deletion_timestamp.is_none(),
        "tolerates the taint for good"
    );
    assert!(!is_ready(&forever), "marked not ready with its node");
    let elsewhere = pods.get("elsewhere").await.unwrap();
    assert!(elsewhere.metadata.deletion_timestamp.is_none() && is_ready(&elsewhere));
    let steady = nodes.get("steady").await.unwrap();
    assert_eq!(ready_status(&steady).unwrap().0, "True");
    assert!(taints(&steady).is_empty());
    let evs = events(&env.client, &ns).await;
    assert!(
        evs.iter().any(|(r, m)| r == "TaintManagerEviction"
            && m == &format!("Marking for deletion Pod {ns}/short")),
        "{evs:?}"
    );

    // The kubelet comes back: Ready again, taints gone.
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    nodes
        .patch_status("lonely", &PatchParams::default(), &Patch::Merge(json!({"status": {"conditions": [
            {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status", "lastHeartbeatTime": now, "lastTransitionTime": now}
        ]}})))
        .await
        .unwrap();
    eventually(T, "taints removed", || async {
        let n = nodes.get("lonely").await.ok()?;
        taints(&n).is_empty().then_some(())
    })
    .await;
    env.stop().await;
}

#[tokio::test]
async fn a_not_ready_node_gets_the_not_ready_taints() {
    let env = Env::start().await;
    let nodes: Api<Node> = Api::all(env.client.clone());
    nodes
        .create(&PostParams::default(), &node("sick"))
        .await
        .unwrap();
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    nodes
        .patch_status("sick", &PatchParams::default(), &Patch::Merge(json!({"status": {"conditions": [
            {"type": "Ready", "status": "False", "reason": "KubeletNotReady", "message": "container runtime is down", "lastHeartbeatTime": now, "lastTransitionTime": now}
        ]}})))
        .await
        .unwrap();
    let n = eventually(T, "not-ready taints", || async {
        let n = nodes.get("sick").await.ok()?;
        let t = taints(&n);
        (t.contains(&("node.kubernetes.io/not-ready".into(), "NoExecute".into()))
            && t.contains(&("node.kubernetes.io/not-ready".into(), "NoSchedule".into())))
        .then_some(n)
    })
    .await;
    let added = n
        .spec
        .unwrap()
        .taints
        .unwrap()
        .into_iter()
        .find(|t| t.effect == "NoExecute")
        .unwrap();
    assert!(added.time_added.is_some());
    // The bootstrap nodes, heartbeating, stay clean.
    for i in 0..3 {
        let n = nodes.get(&format!("node-{i}")).await.unwrap();
        assert!(taints(&n).is_empty(), "node-{i}: {:?}", taints(&n));
    }
    env.stop().await;
}
