//! The StatefulSet controller against the bundled cluster, with a fake kubelet.

#[path = "controllers_support.rs"]
mod support;

use std::time::Duration;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use support::*;

const T: Duration = Duration::from_secs(30);

fn set(name: &str, replicas: i32, extra: serde_json::Value) -> StatefulSet {
    let mut spec = json!({
        "replicas": replicas,
        "serviceName": name,
        "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "pg:15"}]}},
    });
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            s.insert(k.clone(), v.clone());
        }
    }
    obj(json!({"metadata": {"name": name}, "spec": spec}))
}

async fn names(client: &kube::Client, ns: &str) -> Vec<String> {
    let mut v: Vec<String> = active_pods(client, ns)
        .await
        .iter()
        .map(|p| p.name_any())
        .collect();
    v.sort();
    v
}

/// The revision a pod was made from (its `controller-revision-hash` label holds the name).
fn revision(p: &Pod) -> String {
    p.labels()
        .get("controller-revision-hash")
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn ordered_creation_stable_identity_claims_and_reverse_scale_down() {
    let env = Env::start().await;
    let ns = env.namespace("sts").await;
    wait_default_sa(&env.client, &ns).await;
    // web-1 is held back: web-2 must wait for it.
    let _kubelet = fake_kubelet(env.client.clone(), &ns, Duration::from_millis(200), |p| {
        p.name_any() != "web-1"
    });
    let api: Api<StatefulSet> = Api::namespaced(env.client.clone(), &ns);
    let claims = json!([{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]);
    api.create(
        &PostParams::default(),
        &set("web", 3, json!({"volumeClaimTemplates": claims})),
    )
    .await
    .unwrap();
    eventually(T, "web-0 and web-1", || async {
        (names(&env.client, &ns).await == ["web-0", "web-1"]).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        names(&env.client, &ns).await,
        ["web-0", "web-1"],
        "web-2 waits for web-1 to be ready"
    );
    mark_ready(&env.client, &ns, "web-1", "10.3.0.1").await;
    eventually(T, "web-2", || async {
        (names(&env.client, &ns).await.len() == 3).then_some(())
    })
    .await;

    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &ns);
    let p1 = pods.get("web-1").await.unwrap();
    let spec = p1.spec.clone().unwrap();
    assert_eq!(
        (spec.hostname.as_deref(), spec.subdomain.as_deref()),
        (Some("web-1"), Some("web"))
    );
    assert_eq!(
        p1.labels()
            .get("statefulset.kubernetes.io/pod-name")
            .map(String::as_str),
        Some("web-1")
    );
    assert_eq!(
        p1.labels()
            .get("apps.kubernetes.io/pod-index")
            .map(String::as_str),
        Some("1")
    );
    let vol = spec
        .volumes
        .unwrap()
        .into_iter()
        .find(|v| v.name == "data")
        .unwrap();
    assert_eq!(
        vol.persistent_volume_claim.unwrap().claim_name,
        "data-web-1"
    );
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(env.client.clone(), &ns);
    for i in 0..3 {
        let c = pvcs.get(&format!("data-web-{i}")).await.unwrap();
        assert_eq!(c.labels().get("app").map(String::as_str), Some("web"));
    }
    let s = eventually(T, "3 ready", || async {
        let s = api.get("web").await.ok()?.status?;
        (s.ready_replicas == Some(3)).then_some(s)
    })
    .await;
    assert_eq!(s.replicas, 3);
    assert_eq!(s.current_revision, s.update_revision);
    let rev = s.update_revision.clone().unwrap();
    assert!(rev.starts_with("web-"));
    let revs: Api<ControllerRevision> = Api::namespaced(env.client.clone(), &ns);
    let r = revs.get(&rev).await.unwrap();
    assert_eq!(r.revision, 1);
    assert_eq!(
        r.labels()
            .get("controller-revision-hash")
            .map(|h| format!("web-{h}")),
        Some(rev.clone())
    );
    assert!(active_pods(&env.client, &ns)
        .await
        .iter()
        .all(|p| revision(p) == rev));

    // Scale down: highest ordinal first; the claims stay (retention Retain by default).
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 1}})),
    )
    .await
    .unwrap();
    eventually(T, "only web-0", || async {
        (names(&env.client, &ns).await == ["web-0"]).then_some(())
    })
    .await;
    assert!(pvcs.get_opt("data-web-2").await.unwrap().is_some());
    let evs = events(&env.client, &ns).await;
    let deleted: Vec<&String> = evs
        .iter()
        .filter(|(r, _)| r == "SuccessfulDelete")
        .map(|(_, m)| m)
        .collect();
    assert!(
        deleted
            .iter()
            .any(|m| *m == "delete Pod web-2 in StatefulSet web successful"),
        "{evs:?}"
    );
    assert!(
        evs.iter().any(|(r, m)| r == "SuccessfulCreate"
            && m == "create Claim data-web-0 Pod web-0 in StatefulSet web success"),
        "{evs:?}"
    );
    env.stop().await;
}

#[tokio::test]
async fn rolling_update_respects_the_partition_and_parallel_creates_at_once() {
    let env = Env::start().await;
    let ns = env.namespace("sts-update").await;
    wait_default_sa(&env.client, &ns).await;
    let _kubelet = fake_kubelet(env.client.clone(), &ns, Duration::from_millis(100), |p| {
        !p.name_any().starts_with("par-")
    });
    let api: Api<StatefulSet> = Api::namespaced(env.client.clone(), &ns);
    api.create(
        &PostParams::default(),
        &set(
            "db",
            3,
            json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}}),
        ),
    )
    .await
    .unwrap();
    let old = eventually(T, "3 ready", || async {
        let s = api.get("db").await.ok()?.status?;
        (s.ready_replicas == Some(3)).then_some(s.update_revision?)
    })
    .await;
    api.patch(
        "db",
        &PatchParams::default(),
        &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "pg:16"}]}}}})),
    )
    .await
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &ns);
    let s = eventually(T, "ordinals 1 and 2 updated, 0 kept", || async {
        let s = api.get("db").await.ok()?.status?;
        let new = s.update_revision.clone()?;
        let mut p: Vec<Pod> = Vec::new();
        for i in 0..3 {
            p.push(pods.get(&format!("db-{i}")).await.ok()?);
        }
        let ok = p.len() == 3
            && revision(&p[0]) == old
            && p[1..].iter().all(|x| revision(x) == new && is_ready(x))
            && s.updated_replicas == Some(2)
            && s.current_replicas == Some(1);
        ok.then_some(s)
    })
    .await;
    assert_ne!(s.current_revision, s.update_revision);
    let image = |p: &Pod| {
        p.spec.as_ref().unwrap().containers[0]
            .image
            .clone()
            .unwrap()
    };
    assert_eq!(image(&pods.get("db-0").await.unwrap()), "pg:15");
    assert_eq!(image(&pods.get("db-2").await.unwrap()), "pg:16");
    api.patch(
        "db",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"updateStrategy": {"rollingUpdate": {"partition": 0}}}})),
    )
    .await
    .unwrap();
    eventually(T, "the rollout completes", || async {
        let s = api.get("db").await.ok()?.status?;
        (s.current_revision == s.update_revision
            && s.updated_replicas == Some(3)
            && s.ready_replicas == Some(3))
        .then_some(())
    })
    .await;
    assert_eq!(image(&pods.get("db-0").await.unwrap()), "pg:16");

    // Parallel: every pod at once, ready or not.
    api.create(
        &PostParams::default(),
        &set("par", 3, json!({"podManagementPolicy": "Parallel"})),
    )
    .await
    .unwrap();
    eventually(T, "3 parallel pods", || async {
        let n: Vec<String> = names(&env.client, &ns)
            .await
            .into_iter()
            .filter(|n| n.starts_with("par-"))
            .collect();
        (n == ["par-0", "par-1", "par-2"]).then_some(())
    })
    .await;
    env.stop().await;
}
