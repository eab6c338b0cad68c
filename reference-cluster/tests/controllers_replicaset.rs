//! The ReplicaSet and ReplicationController controllers against the bundled cluster.

#[path = "controllers_support.rs"]
mod support;

use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use support::*;

const T: Duration = Duration::from_secs(20);

fn rs(name: &str, replicas: i32, min_ready: i32) -> ReplicaSet {
    obj(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "minReadySeconds": min_ready,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name, "tier": "web"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}
            }
        }
    }))
}

async fn owned_pods(client: &kube::Client, ns: &str, owner_uid: &str) -> Vec<Pod> {
    active_pods(client, ns)
        .await
        .into_iter()
        .filter(|p| {
            p.owner_references()
                .iter()
                .any(|r| r.uid == owner_uid && r.controller == Some(true))
        })
        .collect()
}

#[tokio::test]
async fn replica_set_creates_pods_reports_status_and_scales_down_unready_first() {
    let env = Env::start().await;
    let ns = env.namespace("rs-basic").await;
    wait_default_sa(&env.client, &ns).await;
    let api: Api<ReplicaSet> = Api::namespaced(env.client.clone(), &ns);
    let created = api
        .create(&PostParams::default(), &rs("web", 3, 0))
        .await
        .unwrap();
    let uid = created.uid().unwrap();

    let pods = eventually(T, "3 pods", || async {
        let p = owned_pods(&env.client, &ns, &uid).await;
        (p.len() == 3).then_some(p)
    })
    .await;
    for p in &pods {
        let name = p.name_any();
        let suffix = name.strip_prefix("web-").expect("named <rs>-<suffix>");
        assert_eq!(suffix.len(), 5, "{name}");
        let r = &p.owner_references()[0];
        assert_eq!(
            (r.kind.as_str(), r.api_version.as_str()),
            ("ReplicaSet", "apps/v1")
        );
        assert_eq!(r.block_owner_deletion, Some(true));
        assert_eq!(p.labels().get("tier").map(String::as_str), Some("web"));
    }
    // Two become ready; status follows.
    mark_ready(&env.client, &ns, &pods[0].name_any(), "10.0.0.1").await;
    mark_ready(&env.client, &ns, &pods[1].name_any(), "10.0.0.2").await;
    let status = eventually(T, "status with 2 ready", || async {
        let s = api.get("web").await.unwrap().status?;
        (s.ready_replicas == Some(2)).then_some(s)
    })
    .await;
    assert_eq!(status.replicas, 3);
    assert_eq!(status.fully_labeled_replicas, Some(3));
    assert_eq!(status.available_replicas, Some(2));
    assert_eq!(status.observed_generation, Some(1));
    let evs = events(&env.client, &ns).await;
    let created_events: Vec<_> = evs
        .iter()
        .filter(|(r, _)| r == "SuccessfulCreate")
        .collect();
    assert!(!created_events.is_empty(), "{evs:?}");
    assert!(
        created_events
            .iter()
            .all(|(_, m)| m.starts_with("Created pod: web-")),
        "{evs:?}"
    );

    // Scale to 2: the pod that is not ready goes first.
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 2}})),
    )
    .await
    .unwrap();
    let left = eventually(T, "2 pods", || async {
        let p = owned_pods(&env.client, &ns, &uid).await;
        (p.len() == 2).then_some(p)
    })
    .await;
    let mut names: Vec<String> = left.iter().map(|p| p.name_any()).collect();
    names.sort();
    let mut expected = vec![pods[0].name_any(), pods[1].name_any()];
    expected.sort();
    assert_eq!(names, expected);
    let s = eventually(T, "status after scale down", || async {
        let s = api.get("web").await.unwrap().status?;
        (s.replicas == 2 && s.observed_generation == Some(2)).then_some(s)
    })
    .await;
    assert_eq!(s.available_replicas, Some(2));
    eventually(T, "a SuccessfulDelete event", || async {
        let evs = events(&env.client, &ns).await;
        evs.iter()
            .any(|(r, m)| {
                r == "SuccessfulDelete" && m == &format!("Deleted pod: {}", pods[2].name_any())
            })
            .then_some(())
    })
    .await;

    // A deleted pod is replaced.
    let pod_api: Api<Pod> = Api::namespaced(env.client.clone(), &ns);
    pod_api
        .delete(&pods[0].name_any(), &DeleteParams::default())
        .await
        .unwrap();
    eventually(T, "a replacement pod", || async {
        let p = owned_pods(&env.client, &ns, &uid).await;
        (p.len() == 2 && p.iter().all(|x| x.name_any() != pods[0].name_any())).then_some(())
    })
    .await;
    env.stop().await;
}

#[tokio::test]
async fn orphans_are_adopted_and_pods_that_stop_matching_are_released() {
    let env = Env::start().await;
    let ns = env.namespace("rs-adopt").await;
    wait_default_sa(&env.client, &ns).await;
    let pod_api: Api<Pod> = Api::namespaced(env.client.clone(), &ns);
    let orphan: Pod = obj(json!({
        "metadata": {"name": "orphan", "labels": {"app": "api"}},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}
    }));
    pod_api
        .create(&PostParams::default(), &orphan)
        .await
        .unwrap();
    let api: Api<ReplicaSet> = Api::namespaced(env.client.clone(), &ns);
    let created = api
        .create(&PostParams::default(), &rs("api", 2, 0))
        .await
        .unwrap();
    let uid = created.uid().unwrap();
    let pods = eventually(T, "2 owned pods", || async {
        let p = owned_pods(&env.client, &ns, &uid).await;
        (p.len() == 2).then_some(p)
    })
    .await;
    assert!(
        pods.iter().any(|p| p.name_any() == "orphan"),
        "the orphan was adopted"
    );
    // Only one new pod: the adopted one counts.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(active_pods(&env.client, &ns).await.len(), 2);

    // Relabelled: released (no controller ref left) and replaced.
    pod_api
        .patch(
            "orphan",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"app": "other"}}})),
        )
        .await
        .unwrap();
    eventually(T, "release and replacement", || async {
        let released = pod_api.get("orphan").await.ok()?;
        let owned = owned_pods(&env.client, &ns, &uid).await;
        (released.owner_references().is_empty() && owned.len() == 2).then_some(())
    })
    .await;
    env.stop().await;
}

#[tokio::test]
async fn availability_waits_for_min_ready_seconds() {
    let env = Env::start().await;
    let ns = env.namespace("rs-minready").await;
    wait_default_sa(&env.client, &ns).await;
    let api: Api<ReplicaSet> = Api::namespaced(env.client.clone(), &ns);
    let created = api
        .create(&PostParams::default(), &rs("slow", 1, 2))
        .await
        .unwrap();
    let uid = created.uid().unwrap();
    let pods = eventually(T, "1 pod", || async {
        let p = owned_pods(&env.client, &ns, &uid).await;
        (p.len() == 1).then_some(p)
    })
    .await;
    mark_ready(&env.client, &ns, &pods[0].name_any(), "10.0.0.9").await;
    let ready_at = std::time::Instant::now();
    let s = eventually(T, "ready", || async {
        let s = api.get("slow").await.unwrap().status?;
        (s.ready_replicas == Some(1)).then_some(s)
    })
    .await;
    assert_eq!(
        s.available_replicas,
        Some(0),
        "not available before minReadySeconds"
    );
    eventually(T, "available", || async {
        let s = api.get("slow").await.unwrap().status?;
        (s.available_replicas == Some(1)).then_some(())
    })
    .await;
    // Second-precision timestamps: at least minReadySeconds minus the truncated second.
    assert!(
        ready_at.elapsed() >= Duration::from_secs(1),
        "{:?}",
        ready_at.elapsed()
    );
    env.stop().await;
}

#[tokio::test]
async fn creation_failures_surface_as_replica_failure() {
    let env = Env::start().await;
    let ns = env.namespace("rs-quota").await;
    wait_default_sa(&env.client, &ns).await;
    let quotas: Api<k8s_openapi::api::core::v1::ResourceQuota> =
        Api::namespaced(env.client.clone(), &ns);
    quotas
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "q"}, "spec": {"hard": {"pods": "1"}}})),
        )
        .await
        .unwrap();
    // The quota admits nothing until its status is known; give the quota controller (or the
    // API server) a moment, then create the set.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let api: Api<ReplicaSet> = Api::namespaced(env.client.clone(), &ns);
    api.create(&PostParams::default(), &rs("big", 3, 0))
        .await
        .unwrap();
    let cond = eventually(
        Duration::from_secs(30),
        "a ReplicaFailure condition",
        || async {
            let s = api.get("big").await.unwrap().status?;
            s.conditions?
                .into_iter()
                .find(|c| c.type_ == "ReplicaFailure")
        },
    )
    .await;
    assert_eq!(cond.status, "True");
    assert_eq!(cond.reason.as_deref(), Some("FailedCreate"));
    assert!(
        cond.message
            .as_deref()
            .unwrap_or_default()
            .contains("exceeded quota"),
        "{cond:?}"
    );
    let evs = events(&env.client, &ns).await;
    assert!(
        evs.iter()
            .any(|(r, m)| r == "FailedCreate" && m.starts_with("Error creating: ")),
        "{evs:?}"
    );
    // Lifting the quota clears the condition.
    quotas.delete("q", &DeleteParams::default()).await.unwrap();
    eventually(
        Duration::from_secs(60),
        "condition cleared and 3 pods",
        || async {
            let s = api.get("big").await.unwrap().status?;
            let failing = s
                .conditions
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "ReplicaFailure");
            (!failing && s.replicas == 3).then_some(())
        },
    )
    .await;
    env.stop().await;
}

#[tokio::test]
async fn replication_controller_keeps_its_replicas() {
    let env = Env::start().await;
    let ns = env.namespace("rc").await;
    wait_default_sa(&env.client, &ns).await;
    let api: Api<ReplicationController> = Api::namespaced(env.client.clone(), &ns);
    let rc: ReplicationController = obj(json!({
        "metadata": {"name": "legacy"},
        "spec": {
            "replicas": 2,
            "selector": {"app": "legacy"},
            "template": {
                "metadata": {"labels": {"app": "legacy"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}
            }
        }
    }));
    let created = api.create(&PostParams::default(), &rc).await.unwrap();
    let uid = created.uid().unwrap();
    let pods = eventually(T, "2 pods", || async {
        let p = owned_pods(&env.client, &ns, &uid).await;
        (p.len() == 2).then_some(p)
    })
    .await;
    let r = &pods[0].owner_references()[0];
    assert_eq!(
        (r.kind.as_str(), r.api_version.as_str()),
        ("ReplicationController", "v1")
    );
    mark_ready(&env.client, &ns, &pods[0].name_any(), "10.0.1.1").await;
    let s = eventually(T, "rc status", || async {
        let s = api.get("legacy").await.unwrap().status?;
        (s.ready_replicas == Some(1) && s.replicas == 2).then_some(s)
    })
    .await;
    assert_eq!(s.observed_generation, Some(1));
    let evs = events(&env.client, &ns).await;
    assert!(evs.iter().any(|(r, _)| r == "SuccessfulCreate"), "{evs:?}");
    env.stop().await;
}
