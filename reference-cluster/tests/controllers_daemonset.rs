//! The DaemonSet controller against the bundled cluster (three registered nodes, a fake
//! kubelet marking pods ready).

#[path = "controllers_support.rs"]
mod support;

use std::time::Duration;

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use support::*;

const T: Duration = Duration::from_secs(30);

fn target(p: &Pod) -> String {
    p.spec
        .as_ref()
        .unwrap()
        .affinity
        .as_ref()
        .unwrap()
        .node_affinity
        .as_ref()
        .unwrap()
        .required_during_scheduling_ignored_during_execution
        .as_ref()
        .unwrap()
        .node_selector_terms[0]
        .match_fields
        .as_ref()
        .unwrap()[0]
        .values
        .as_ref()
        .unwrap()[0]
        .clone()
}

async fn placed(client: &kube::Client, ns: &str) -> Vec<String> {
    let mut v: Vec<String> = active_pods(client, ns).await.iter().map(target).collect();
    v.sort();
    v
}

async fn label_node(nodes: &Api<Node>, name: &str, value: Option<&str>) {
    nodes
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"disk": value}}})),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn one_pod_per_matching_node_following_labels_taints_and_updates() {
    let env = Env::start().await;
    let ns = env.namespace("ds").await;
    wait_default_sa(&env.client, &ns).await;
    let _kubelet = fake_kubelet(env.client.clone(), &ns, Duration::from_millis(100), |_| {
        true
    });
    let nodes: Api<Node> = Api::all(env.client.clone());
    label_node(&nodes, "node-0", Some("ssd")).await;
    label_node(&nodes, "node-1", Some("ssd")).await;
    let api: Api<DaemonSet> = Api::namespaced(env.client.clone(), &ns);
    let ds: DaemonSet = obj(json!({"metadata": {"name": "agent"}, "spec": {
        "selector": {"matchLabels": {"app": "agent"}},
        "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"nodeSelector": {"disk": "ssd"},
            "containers": [{"name": "c", "image": "agent:1"}]}}}}));
    api.create(&PostParams::default(), &ds).await.unwrap();
    eventually(T, "pods on node-0 and node-1", || async {
        (placed(&env.client, &ns).await == ["node-0", "node-1"]).then_some(())
    })
    .await;
    let pod = active_pods(&env.client, &ns).await.remove(0);
    assert!(pod.name_any().starts_with("agent-"));
    let tolerations = pod.spec.as_ref().unwrap().tolerations.clone().unwrap();
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
        "node.kubernetes.io/unschedulable",
    ] {
        assert!(
            tolerations.iter().any(|t| t.key.as_deref() == Some(key)),
            "{key}"
        );
    }
    assert_eq!(
        pod.labels()
            .get("pod-template-generation")
            .map(String::as_str),
        Some("1")
    );
    let hash = pod
        .labels()
        .get("controller-revision-hash")
        .cloned()
        .unwrap();
    let s = eventually(T, "2 ready", || async {
        let s = api.get("agent").await.ok()?.status?;
        (s.number_ready == 2 && s.number_available == Some(2)).then_some(s)
    })
    .await;
    assert_eq!(
        (
            s.desired_number_scheduled,
            s.current_number_scheduled,
            s.number_misscheduled
        ),
        (2, 2, 0)
    );
    assert_eq!(s.updated_number_scheduled, Some(2));

    // A third node matches; one stops matching; a tainted node is skipped.
    label_node(&nodes, "node-2", Some("ssd")).await;
    eventually(T, "a pod on node-2", || async {
        (placed(&env.client, &ns).await.len() == 3).then_some(())
    })
    .await;
    label_node(&nodes, "node-0", None).await;
    eventually(T, "node-0's pod removed", || async {
        (placed(&env.client, &ns).await == ["node-1", "node-2"]).then_some(())
    })
    .await;
    let tainted: Node = obj(
        json!({"metadata": {"name": "gpu-0", "labels": {"disk": "ssd"}},
        "spec": {"taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]}}),
    );
    nodes
        .create(&PostParams::default(), &tainted)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(placed(&env.client, &ns).await, ["node-1", "node-2"]);

    // A template change rolls out node by node.
    api.patch(
        "agent",
        &PatchParams::default(),
        &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "agent:2"}]}}}})),
    )
    .await
    .unwrap();
    let s = eventually(T, "updated everywhere", || async {
        let s = api.get("agent").await.ok()?.status?;
        let pods = active_pods(&env.client, &ns).await;
        let all_new =
            pods.len() == 2 && pods.iter().all(|p| image_of(p) == "agent:2" && is_ready(p));
        (all_new && s.updated_number_scheduled == Some(2) && s.number_available == Some(2))
            .then_some(s)
    })
    .await;
    assert_eq!(s.observed_generation, Some(2));
    let new_hash = active_pods(&env.client, &ns).await[0]
        .labels()
        .get("controller-revision-hash")
        .cloned()
        .unwrap();
    assert_ne!(new_hash, hash);
    let revs: Api<ControllerRevision> = Api::namespaced(env.client.clone(), &ns);
    let names: Vec<String> = revs
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|r| r.name_any())
        .collect();
    assert!(
        names.contains(&format!("agent-{hash}")) && names.contains(&format!("agent-{new_hash}")),
        "{names:?}"
    );
    env.stop().await;
}
