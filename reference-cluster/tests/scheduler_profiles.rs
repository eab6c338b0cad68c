//! Scheduler profiles from a KubeSchedulerConfiguration, observed through the API: a pod is
//! scheduled by the profile its `schedulerName` names (events name that profile as their
//! reporter), and a pod naming no profile is left Pending and untouched.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, PostParams};
use kubeproof_refcluster::cluster::{ClusterConfig, RunningCluster, StoreConfig};
use kubeproof_refcluster::scheduler::{self, SchedulerConfig};
use serde_json::json;
use tokio::sync::watch;

const CONFIG: &str = r#"
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
leaderElection:
  leaderElect: false
percentageOfNodesToScore: 100
parallelism: 2
podInitialBackoffSeconds: 1
podMaxBackoffSeconds: 2
profiles:
- schedulerName: default-scheduler
- schedulerName: bin-packer
  plugins:
    score:
      disabled:
      - name: ImageLocality
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: MostAllocated
"#;

fn pod(name: &str, scheduler: &str) -> Pod {
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": {
        "schedulerName": scheduler,
        "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}))
    .unwrap()
}

async fn node_of(pods: &Api<Pod>, name: &str) -> Option<String> {
    pods.get(name)
        .await
        .ok()
        .and_then(|p| p.spec.and_then(|s| s.node_name))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_are_scheduled_by_the_profile_they_name() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ClusterConfig {
        store: StoreConfig::Memory,
        nodes: 3,
        ..ClusterConfig::for_tests(dir.path())
    };
    let cluster = RunningCluster::start(cfg).await.expect("cluster starts");
    let client = cluster.client().await.unwrap();
    let sched = SchedulerConfig::from_yaml(CONFIG).expect("a valid configuration");
    assert!(sched.leader_election.is_none());
    assert_eq!(sched.profiles.len(), 2);
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(scheduler::run(client.clone(), sched, rx));

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for (name, scheduler) in [
        ("packed", "bin-packer"),
        ("spread", "default-scheduler"),
        ("nobody", "no-such-profile"),
    ] {
        pods.create(&PostParams::default(), &pod(name, scheduler))
            .await
            .unwrap();
    }
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let reporter_of = |events: &[Event], pod: &str| {
        events
            .iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(pod))
            .map(|e| {
                (
                    e.reason.clone().unwrap_or_default(),
                    e.reporting_controller.clone().unwrap_or_default(),
                )
            })
            .collect::<Vec<_>>()
    };
    let mut seen = None;
    for _ in 0..150 {
        let list = events.list(&ListParams::default()).await.unwrap().items;
        let (packed, spread) = (reporter_of(&list, "packed"), reporter_of(&list, "spread"));
        if !packed.is_empty() && !spread.is_empty() {
            seen = Some((packed, spread));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (packed, spread) = seen.expect("both profiles schedule their pods");
    assert_eq!(
        packed,
        [("Scheduled".to_string(), "bin-packer".to_string())]
    );
    assert_eq!(
        spread,
        [("Scheduled".to_string(), "default-scheduler".to_string())]
    );
    assert!(node_of(&pods, "packed").await.is_some());
    assert!(node_of(&pods, "spread").await.is_some());

    // Give the scheduler time it would have used; the pod naming no profile stays untouched.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let nobody = pods.get("nobody").await.unwrap();
    assert_eq!(nobody.spec.as_ref().and_then(|s| s.node_name.clone()), None);
    let status = nobody.status.unwrap_or_default();
    assert_eq!(status.phase.as_deref(), Some("Pending"));
    assert!(status.conditions.unwrap_or_default().is_empty());
    let list = events.list(&ListParams::default()).await.unwrap().items;
    assert!(reporter_of(&list, "nobody").is_empty());

    let _ = stop.send(true);
    let result = tokio::time::timeout(Duration::from_secs(10), task).await;
    assert!(matches!(result, Ok(Ok(Ok(())))), "{result:?}");
    cluster.shutdown().await;
}
