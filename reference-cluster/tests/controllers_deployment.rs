//! The Deployment controller against the bundled cluster, driven with kube-rs and with
//! kubectl 1.32's `rollout` commands as a user would.

#[path = "controllers_support.rs"]
mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use parking_lot::Mutex;
use serde_json::json;
use support::*;

const T: Duration = Duration::from_secs(60);

fn deployment(name: &str, replicas: i32, image: &str, strategy: serde_json::Value) -> Deployment {
    obj(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": strategy,
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": image}]}
            }
        }
    }))
}

fn rolling(surge: impl serde::Serialize, unavailable: impl serde::Serialize) -> serde_json::Value {
    json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}})
}

async fn replica_sets(client: &kube::Client, ns: &str) -> Vec<ReplicaSet> {
    let api: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
    let mut l = api.list(&Default::default()).await.unwrap().items;
    l.sort_by_key(|r| r.name_any());
    l
}

fn annotation(rs: &ReplicaSet, key: &str) -> Option<String> {
    rs.annotations().get(key).cloned()
}

fn replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

async fn wait_complete(api: &Api<Deployment>, name: &str, replicas: i32) -> Deployment {
    eventually(T, "the rollout to complete", || async {
        let d = api.get(name).await.ok()?;
        let s = d.status.clone()?;
        let done = s.observed_generation >= d.metadata.generation
            && s.updated_replicas == Some(replicas)
            && s.replicas == Some(replicas)
            && s.available_replicas == Some(replicas)
            && s.conditions.as_ref()?.iter().any(|c| {
                c.type_ == "Progressing" && c.reason.as_deref() == Some("NewReplicaSetAvailable")
            });
        done.then_some(d)
    })
    .await
}

/// Watches the pods of `ns` and records, after every event, the number of active pods and
/// of active ready pods: the extremes seen while it ran.
struct Monitor {
    max_active: Arc<Mutex<usize>>,
    min_ready: Arc<Mutex<usize>>,
    both_templates: Arc<Mutex<bool>>,
    task: tokio::task::JoinHandle<()>,
}

impl Monitor {
    async fn start(client: &kube::Client, ns: &str) -> Monitor {
        let api: Api<Pod> = Api::namespaced(client.clone(), ns);
        let max_active = Arc::new(Mutex::new(0));
        let min_ready = Arc::new(Mutex::new(usize::MAX));
        let both = Arc::new(Mutex::new(false));
        let (ma, mr, b) = (max_active.clone(), min_ready.clone(), both.clone());
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut stream = watcher::watcher(api, watcher::Config::default()).boxed();
            let mut pods: HashMap<String, Pod> = HashMap::new();
            let mut init: Vec<Pod> = Vec::new();
            let mut ready_tx = Some(ready_tx);
            while let Some(ev) = stream.next().await {
                match ev {
                    Ok(watcher::Event::Init) => init.clear(),
                    Ok(watcher::Event::InitApply(p)) => init.push(p),
                    Ok(watcher::Event::InitDone) => {
                        pods = init.drain(..).map(|p| (p.name_any(), p)).collect();
                        if let Some(tx) = ready_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(watcher::Event::Apply(p)) => {
                        pods.insert(p.name_any(), p);
                    }
                    Ok(watcher::Event::Delete(p)) => {
                        pods.remove(&p.name_any());
                    }
                    Err(_) => continue,
                }
                if ready_tx.is_some() {
                    continue;
                }
                let active: Vec<&Pod> = pods
                    .values()
                    .filter(|p| p.metadata.deletion_timestamp.is_none())
                    .collect();
                let ready = active.iter().filter(|p| is_ready(p)).count();
                let images: std::collections::HashSet<String> =
                    active.iter().map(|p| image_of(p)).collect();
                let mut m = ma.lock();
                *m = (*m).max(active.len());
                let mut r = mr.lock();
                *r = (*r).min(ready);
                if images.len() > 1 {
                    *b.lock() = true;
                }
            }
        });
        let _ = tokio::time::timeout(Duration::from_secs(10), ready_rx).await;
        Monitor {
            max_active,
            min_ready,
            both_templates: both,
            task,
        }
    }

    fn stop(self) -> (usize, usize, bool) {
        self.task.abort();
        let r = (
            *self.max_active.lock(),
            *self.min_ready.lock(),
            *self.both_templates.lock(),
        );
        r
    }
}

#[tokio::test]
async fn the_seed_rollout_stays_within_13_pods_and_8_available_and_undo_returns() {
    let env = Env::start().await;
    let ns = env.namespace("deploy-seed").await;
    wait_default_sa(&env.client, &ns).await;
    let _kubelet = fake_kubelet(env.client.clone(), &ns, Duration::from_millis(300), |_| {
        true
    });
    let api: Api<Deployment> = Api::namespaced(env.client.clone(), &ns);
    api.create(
        &PostParams::default(),
        &deployment("web", 10, "nginx:1.25", rolling("25%", "25%")),
    )
    .await
    .unwrap();
    let kubectl = Kubectl::new(&env, &ns);
    let out = kubectl
        .ok(&["rollout", "status", "deployment/web", "--timeout=60s"])
        .await;
    assert!(out.contains("successfully rolled out"), "{out}");
    let d = wait_complete(&api, "web", 10).await;
    assert_eq!(
        d.annotations()
            .get("deployment.kubernetes.io/revision")
            .map(String::as_str),
        Some("1")
    );
    let rss = replica_sets(&env.client, &ns).await;
    assert_eq!(rss.len(), 1);
    let first = rss[0].clone();
    let hash = first
        .labels()
        .get("pod-template-hash")
        .cloned()
        .expect("hash label");
    assert_eq!(first.name_any(), format!("web-{hash}"));
    assert_eq!(
        annotation(&first, "deployment.kubernetes.io/desired-replicas").as_deref(),
        Some("10")
    );
    assert_eq!(
        annotation(&first, "deployment.kubernetes.io/max-replicas").as_deref(),
        Some("13")
    );
    let pods = active_pods(&env.client, &ns).await;
    assert_eq!(pods.len(), 10);
    assert!(pods
        .iter()
        .all(|p| p.labels().get("pod-template-hash") == Some(&hash)));

    // The update, watched pod by pod.
    let monitor = Monitor::start(&env.client, &ns).await;
    kubectl
        .ok(&["set", "image", "deployment/web", "c=nginx:1.26"])
        .await;
    let out = kubectl
        .ok(&["rollout", "status", "deployment/web", "--timeout=60s"])
        .await;
    assert!(out.contains("successfully rolled out"), "{out}");
    wait_complete(&api, "web", 10).await;
    eventually(T, "old pods gone", || async {
        let pods = active_pods(&env.client, &ns).await;
        (pods.len() == 10 && pods.iter().all(|p| image_of(p) == "nginx:1.26")).then_some(())
    })
    .await;
    let (max_active, min_ready, _) = monitor.stop();
    assert!(max_active <= 13, "at most 13 pods, saw {max_active}");
    assert!(max_active > 10, "the surge was used, saw {max_active}");
    assert!(min_ready >= 8, "at least 8 available, saw {min_ready}");
    let rss = replica_sets(&env.client, &ns).await;
    assert_eq!(rss.len(), 2);
    let new = rss
        .iter()
        .find(|r| r.name_any() != first.name_any())
        .unwrap()
        .clone();
    assert_eq!(
        annotation(&new, "deployment.kubernetes.io/revision").as_deref(),
        Some("2")
    );
    assert_eq!(replicas(&new), 10);
    let old = rss
        .iter()
        .find(|r| r.name_any() == first.name_any())
        .unwrap();
    assert_eq!(replicas(old), 0);
    let evs = events(&env.client, &ns).await;
    assert!(
        evs.iter().any(|(r, m)| r == "ScalingReplicaSet"
            && m == &format!("Scaled up replica set {} from 0 to 3", new.name_any())),
        "{evs:?}"
    );
    assert!(
        evs.iter().any(|(r, m)| r == "ScalingReplicaSet"
            && m.starts_with(&format!(
                "Scaled down replica set {} from 10 to",
                first.name_any()
            ))),
        "{evs:?}"
    );

    // History and undo.
    let history = kubectl.ok(&["rollout", "history", "deployment/web"]).await;
    assert!(history.contains('1') && history.contains('2'), "{history}");
    kubectl.ok(&["rollout", "undo", "deployment/web"]).await;
    kubectl
        .ok(&["rollout", "status", "deployment/web", "--timeout=60s"])
        .await;
    let d = wait_complete(&api, "web", 10).await;
    let image = d.spec.unwrap().template.spec.unwrap().containers[0]
        .image
        .clone();
    assert_eq!(image.as_deref(), Some("nginx:1.25"));
    eventually(T, "revision 3 on the first replica set", || async {
        let rss = replica_sets(&env.client, &ns).await;
        let back = rss.iter().find(|r| r.name_any() == first.name_any())?;
        (annotation(back, "deployment.kubernetes.io/revision").as_deref() == Some("3")
            && annotation(back, "deployment.kubernetes.io/revision-history").as_deref()
                == Some("1")
            && replicas(back) == 10
            && rss.len() == 2)
            .then_some(())
    })
    .await;
    env.stop().await;
}

#[tokio::test]
async fn restart_pause_and_resume_with_kubectl() {
    let env = Env::start().await;
    let ns = env.namespace("deploy-restart").await;
    wait_default_sa(&env.client, &ns).await;
    let _kubelet = fake_kubelet(env.client.clone(), &ns, Duration::from_millis(100), |_| {
        true
    });
    let api: Api<Deployment> = Api::namespaced(env.client.clone(), &ns);
    api.create(
        &PostParams::default(),
        &deployment("app", 2, "busybox:1", rolling(1, 0)),
    )
    .await
    .unwrap();
    let kubectl = Kubectl::new(&env, &ns);
    kubectl
        .ok(&["rollout", "status", "deployment/app", "--timeout=60s"])
        .await;

    kubectl.ok(&["rollout", "restart", "deployment/app"]).await;
    kubectl
        .ok(&["rollout", "status", "deployment/app", "--timeout=60s"])
        .await;
    let rss = replica_sets(&env.client, &ns).await;
    assert_eq!(rss.len(), 2);
    let restarted = rss.iter().find(|r| replicas(r) == 2).unwrap();
    let tpl_annotations = restarted
        .spec
        .as_ref()
        .unwrap()
        .template
        .as_ref()
        .unwrap()
        .metadata
        .as_ref()
        .unwrap()
        .annotations
        .clone()
        .unwrap_or_default();
    assert!(tpl_annotations.contains_key("kubectl.kubernetes.io/restartedAt"));

    // Paused: a template change creates nothing until resumed.
    kubectl.ok(&["rollout", "pause", "deployment/app"]).await;
    kubectl
        .ok(&["set", "image", "deployment/app", "c=busybox:2"])
        .await;
    let paused = eventually(T, "the paused condition", || async {
        let d = api.get("app").await.ok()?;
        let c = d
            .status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "Progressing")?;
        (c.reason.as_deref() == Some("DeploymentPaused")).then_some(c)
    })
    .await;
    assert_eq!(paused.status, "Unknown");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        replica_sets(&env.client, &ns).await.len(),
        2,
        "no rollout while paused"
    );
    kubectl.ok(&["rollout", "resume", "deployment/app"]).await;
    kubectl
        .ok(&["rollout", "status", "deployment/app", "--timeout=60s"])
        .await;
    eventually(T, "pods on the new image", || async {
        let pods = active_pods(&env.client, &ns).await;
        (pods.len() == 2 && pods.iter().all(|p| image_of(p) == "busybox:2")).then_some(())
    })
    .await;
    assert_eq!(replica_sets(&env.client, &ns).await.len(), 3);
    env.stop().await;
}

#[tokio::test]
async fn recreate_never_runs_old_and_new_pods_together() {
    let env = Env::start().await;
    let ns = env.namespace("deploy-recreate").await;
    wait_default_sa(&env.client, &ns).await;
    let _kubelet = fake_kubelet(env.client.clone(), &ns, Duration::from_millis(100), |_| {
        true
    });
    let api: Api<Deployment> = Api::namespaced(env.client.clone(), &ns);
    api.create(
        &PostParams::default(),
        &deployment("db", 3, "postgres:15", json!({"type": "Recreate"})),
    )
    .await
    .unwrap();
    wait_complete(&api, "db", 3).await;
    let monitor = Monitor::start(&env.client, &ns).await;
    api.patch(
        "db",
        &PatchParams::default(),
        &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "postgres:16"}]}}}})),
    )
    .await
    .unwrap();
    wait_complete(&api, "db", 3).await;
    eventually(T, "new pods", || async {
        let pods = active_pods(&env.client, &ns).await;
        (pods.len() == 3 && pods.iter().all(|p| image_of(p) == "postgres:16")).then_some(())
    })
    .await;
    let (max_active, _, both) = monitor.stop();
    assert!(!both, "old and new pods were active at the same time");
    assert!(max_active <= 3);
    env.stop().await;
}

#[tokio::test]
async fn a_stuck_rollout_exceeds_its_progress_deadline() {
    let env = Env::start().await;
    let ns = env.namespace("deploy-deadline").await;
    wait_default_sa(&env.client, &ns).await;
    // No kubelet: the pods never become ready.
    let api: Api<Deployment> = Api::namespaced(env.client.clone(), &ns);
    let mut d = deployment("stuck", 1, "nginx", rolling("25%", "25%"));
    d.spec.as_mut().unwrap().progress_deadline_seconds = Some(2);
    api.create(&PostParams::default(), &d).await.unwrap();
    let c = eventually(T, "ProgressDeadlineExceeded", || async {
        let d = api.get("stuck").await.ok()?;
        let c = d
            .status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "Progressing")?;
        (c.reason.as_deref() == Some("ProgressDeadlineExceeded")).then_some(c)
    })
    .await;
    assert_eq!(c.status, "False");
    assert!(c.message.unwrap().ends_with("has timed out progressing."));
    let d = api.get("stuck").await.unwrap();
    let avail = d
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Available")
        .unwrap();
    assert_eq!(
        (avail.status.as_str(), avail.reason.as_deref()),
        ("False", Some("MinimumReplicasUnavailable"))
    );
    let kubectl = Kubectl::new(&env, &ns);
    let (ok, _, err) = kubectl
        .run(&["rollout", "status", "deployment/stuck", "--timeout=10s"])
        .await;
    assert!(!ok);
    assert!(err.contains("exceeded its progress deadline"), "{err}");
    env.stop().await;
}

#[tokio::test]
async fn scaling_during_a_rollout_is_proportional_and_history_is_pruned() {
    let env = Env::start().await;
    let ns = env.namespace("deploy-scale").await;
    wait_default_sa(&env.client, &ns).await;
    // Pods of the broken image never become ready: the rollout stays in flight.
    let _kubelet = fake_kubelet(env.client.clone(), &ns, Duration::from_millis(50), |p| {
        image_of(p) != "nginx:broken"
    });
    let api: Api<Deployment> = Api::namespaced(env.client.clone(), &ns);
    let mut d = deployment("web", 10, "nginx:1", rolling("25%", "25%"));
    d.spec.as_mut().unwrap().revision_history_limit = Some(1);
    api.create(&PostParams::default(), &d).await.unwrap();
    wait_complete(&api, "web", 10).await;
    let set_image = |image: &str| json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}});
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Strategic(set_image("nginx:broken")),
    )
    .await
    .unwrap();
    // 3 surge pods, then the old set down by the 2 allowed unavailable, then 2 more new:
    // old 8 + new 5 = 13, stuck.
    let (old_name, new_name) = eventually(T, "the stuck 8/5 split", || async {
        let rss = replica_sets(&env.client, &ns).await;
        let old = rss
            .iter()
            .find(|r| annotation(r, "deployment.kubernetes.io/revision").as_deref() == Some("1"))?;
        let new = rss
            .iter()
            .find(|r| annotation(r, "deployment.kubernetes.io/revision").as_deref() == Some("2"))?;
        (replicas(old) == 8 && replicas(new) == 5).then(|| (old.name_any(), new.name_any()))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 20}})),
    )
    .await
    .unwrap();
    // 12 more allowed (25 - 13), shared 7 to the old and 5 to the new set.
    eventually(T, "the proportional 15/10 split", || async {
        let rss = replica_sets(&env.client, &ns).await;
        let old = rss.iter().find(|r| r.name_any() == old_name)?;
        let new = rss.iter().find(|r| r.name_any() == new_name)?;
        (replicas(old) == 15
            && replicas(new) == 10
            && annotation(old, "deployment.kubernetes.io/desired-replicas").as_deref()
                == Some("20")
            && annotation(new, "deployment.kubernetes.io/max-replicas").as_deref() == Some("25"))
        .then_some(())
    })
    .await;
    // Two more good rollouts: with revisionHistoryLimit 1 only one old set remains.
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Strategic(set_image("nginx:2")),
    )
    .await
    .unwrap();
    wait_complete(&api, "web", 20).await;
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Strategic(set_image("nginx:3")),
    )
    .await
    .unwrap();
    wait_complete(&api, "web", 20).await;
    eventually(T, "old replica sets pruned", || async {
        let rss = replica_sets(&env.client, &ns).await;
        (rss.len() == 2).then_some(())
    })
    .await;
    env.stop().await;
}
