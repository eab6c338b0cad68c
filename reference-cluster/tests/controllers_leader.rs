//! Two controller-managers on one cluster: only the holder of the
//! kube-system/kube-controller-manager Lease acts; when it stops, the standby takes over.

#[path = "controllers_support.rs"]
mod support;

use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Patch, PatchParams, PostParams};
use kube::Api;
use kubeproof_refcluster::controllers::ControllerConfig;
use kubeproof_refcluster::leaderelection::LeaderElectionConfig;
use serde_json::json;
use support::*;

const T: Duration = Duration::from_secs(40);

fn elected(identity: &str) -> impl FnOnce(&mut ControllerConfig) {
    let identity = identity.to_string();
    move |c: &mut ControllerConfig| {
        let mut le = LeaderElectionConfig::new("kube-system", "kube-controller-manager", &identity);
        le.lease_duration = Duration::from_secs(3);
        le.renew_deadline = Duration::from_secs(2);
        le.retry_period = Duration::from_millis(500);
        c.leader_election = Some(le);
    }
}

async fn holder(leases: &Api<Lease>) -> Option<String> {
    leases
        .get_opt("kube-controller-manager")
        .await
        .ok()
        .flatten()?
        .spec?
        .holder_identity
}

#[tokio::test]
async fn the_standby_takes_over_when_the_leader_stops() {
    let mut env = Env::start_with(elected("cm-a")).await;
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), "kube-system");
    eventually(T, "cm-a leads", || async {
        (holder(&leases).await.as_deref() == Some("cm-a")).then_some(())
    })
    .await;
    let mut standby_cfg = ControllerConfig::for_tests();
    elected("cm-b")(&mut standby_cfg);
    let (standby_stop, standby) = env.spawn_manager(standby_cfg);

    let ns = env.namespace("leader").await;
    wait_default_sa(&env.client, &ns).await;
    let rss: Api<ReplicaSet> = Api::namespaced(env.client.clone(), &ns);
    let rs: ReplicaSet = obj(json!({"metadata": {"name": "web"}, "spec": {"replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}));
    rss.create(&PostParams::default(), &rs).await.unwrap();
    eventually(T, "2 pods", || async {
        (active_pods(&env.client, &ns).await.len() == 2).then_some(())
    })
    .await;
    // Only one manager acted: never more pods than replicas.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(active_pods(&env.client, &ns).await.len(), 2);
    assert_eq!(holder(&leases).await.as_deref(), Some("cm-a"));
    let before = leases
        .get("kube-controller-manager")
        .await
        .unwrap()
        .spec
        .unwrap()
        .lease_transitions
        .unwrap_or(0);

    env.stop_manager().await;
    eventually(T, "cm-b leads", || async {
        (holder(&leases).await.as_deref() == Some("cm-b")).then_some(())
    })
    .await;
    let after = leases
        .get("kube-controller-manager")
        .await
        .unwrap()
        .spec
        .unwrap()
        .lease_transitions
        .unwrap_or(0);
    assert_eq!(after, before + 1);
    rss.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 4}})),
    )
    .await
    .unwrap();
    eventually(T, "the new leader scales up", || async {
        (active_pods(&env.client, &ns).await.len() == 4).then_some(())
    })
    .await;
    let _ = standby_stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), standby).await;
    env.stop().await;
}
