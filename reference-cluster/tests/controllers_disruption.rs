//! PodDisruptionBudget status from the disruption controller, and the eviction API deciding
//! with it.

#[path = "controllers_support.rs"]
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{EvictParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use support::*;

const T: Duration = Duration::from_secs(30);

#[tokio::test]
async fn budgets_track_healthy_pods_and_gate_evictions() {
    let env = Env::start().await;
    let ns = env.namespace("pdb").await;
    wait_default_sa(&env.client, &ns).await;
    // The kubelet readies pods until told to stop, so a replacement stays unready on demand.
    let kubelet_on = Arc::new(AtomicBool::new(true));
    let on = kubelet_on.clone();
    let _kubelet = fake_kubelet(
        env.client.clone(),
        &ns,
        Duration::from_millis(100),
        move |_| on.load(Ordering::SeqCst),
    );
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), &ns);
    let d: Deployment = obj(json!({"metadata": {"name": "web"}, "spec": {"replicas": 3,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}));
    deployments
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(env.client.clone(), &ns);
    for (name, spec) in [
        ("min", json!({"minAvailable": 2})),
        ("max", json!({"maxUnavailable": "34%"})),
    ] {
        let mut s = spec;
        s["selector"] = json!({"matchLabels": {"app": "web"}});
        pdbs.create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": name}, "spec": s})),
        )
        .await
        .unwrap();
    }
    let s = eventually(T, "min: 1 disruption allowed", || async {
        let s = pdbs.get("min").await.ok()?.status?;
        (s.current_healthy == 3 && s.disruptions_allowed == 1).then_some(s)
    })
    .await;
    assert_eq!((s.expected_pods, s.desired_healthy), (3, 2));
    let c = &s.conditions.unwrap()[0];
    assert_eq!(
        (c.type_.as_str(), c.status.as_str(), c.reason.as_str()),
        ("DisruptionAllowed", "True", "SufficientPods")
    );
    // maxUnavailable 34% of the Deployment's 3 replicas rounds up to 2: 1 must stay healthy.
    let s = eventually(T, "max status", || async {
        let s = pdbs.get("max").await.ok()?.status?;
        (s.current_healthy == 3).then_some(s)
    })
    .await;
    assert_eq!(
        (s.expected_pods, s.desired_healthy, s.disruptions_allowed),
        (3, 1, 2)
    );

    // Evictions (the eviction API supports one budget per pod): the first fits the "min"
    // budget, a second before the replacement is ready does not.
    pdbs.delete("max", &Default::default()).await.unwrap();
    kubelet_on.store(false, Ordering::SeqCst);
    // kube-rs retries 429 answers by default; here the 429 itself is what is checked.
    let kc = kube::config::Kubeconfig::read_from(env.cluster.kubeconfig_path()).unwrap();
    let mut config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    config.default_retry = false;
    let no_retry = kube::Client::try_from(config).unwrap();
    let pods: Api<Pod> = Api::namespaced(no_retry, &ns);
    let victims: Vec<String> = active_pods(&env.client, &ns)
        .await
        .iter()
        .map(|p| p.name_any())
        .collect();
    pods.evict(&victims[0], &EvictParams::default())
        .await
        .unwrap();
    let refused = pods
        .evict(&victims[1], &EvictParams::default())
        .await
        .unwrap_err();
    match refused {
        kube::Error::Api(s) => assert_eq!(s.code, 429, "{s:?}"),
        other => panic!("{other}"),
    }
    // The replacement becomes ready and the budget recovers.
    let replacement = eventually(T, "a replacement", || async {
        active_pods(&env.client, &ns)
            .await
            .into_iter()
            .find(|p| !victims.contains(&p.name_any()))
    })
    .await;
    mark_ready(&env.client, &ns, &replacement.name_any(), "10.7.0.9").await;
    eventually(T, "the budget recovered", || async {
        let s = pdbs.get("min").await.ok()?.status?;
        (s.current_healthy == 3 && s.disruptions_allowed == 1).then_some(())
    })
    .await;
    pods.evict(&victims[1], &EvictParams::default())
        .await
        .unwrap();

    // A relative budget over a pod no controller owns cannot be computed: nothing allowed.
    let lone: Pod = obj(
        json!({"metadata": {"name": "lone", "labels": {"app": "lone"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}),
    );
    pods.create(&PostParams::default(), &lone).await.unwrap();
    pdbs.create(&PostParams::default(), &obj(json!({"metadata": {"name": "lone"}, "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "lone"}}}})))
        .await
        .unwrap();
    let s = eventually(T, "SyncFailed", || async {
        let s = pdbs.get("lone").await.ok()?.status?;
        (s.conditions.as_ref()?.first()?.reason == "SyncFailed").then_some(s)
    })
    .await;
    assert_eq!(s.disruptions_allowed, 0);
    env.stop().await;
}
