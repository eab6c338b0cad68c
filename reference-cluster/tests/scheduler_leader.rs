//! Lease-based leader election between scheduler replicas: only the lease holder schedules,
//! and when it dies the standby takes the lease over and scheduling continues. Also the
//! compare-and-swap that keeps two candidates from both winning.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use kubeproof_refcluster::cluster::{ClusterConfig, RunningCluster, StoreConfig};
use kubeproof_refcluster::leaderelection::{LeaderElectionConfig, LeaderElector};
use kubeproof_refcluster::scheduler::{self, SchedulerConfig, SchedulerMetrics};
use serde_json::json;
use tokio::sync::watch;

async fn cluster() -> (tempfile::TempDir, RunningCluster, kube::Client) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ClusterConfig {
        store: StoreConfig::Memory,
        nodes: 2,
        ..ClusterConfig::for_tests(dir.path())
    };
    let cluster = RunningCluster::start(cfg).await.expect("cluster starts");
    let client = cluster.client().await.expect("client");
    (dir, cluster, client)
}

async fn eventually<T, F, Fut>(timeout: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn attempts(m: &SchedulerMetrics) -> u64 {
    m.registry()
        .gather()
        .iter()
        .filter(|f| f.name() == "scheduler_schedule_attempts_total")
        .flat_map(|f| {
            f.get_metric()
                .iter()
                .map(|m| m.get_counter().get_value() as u64)
                .collect::<Vec<_>>()
        })
        .sum()
}

async fn holder(client: &kube::Client) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    leases
        .get("kube-scheduler")
        .await
        .ok()?
        .spec?
        .holder_identity
}

async fn create_pod(client: &kube::Client, name: &str) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
}

async fn node_of(client: &kube::Client, name: &str, timeout: Duration) -> Option<String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    eventually(timeout, || async {
        pods.get(name)
            .await
            .ok()?
            .spec?
            .node_name
            .filter(|n| !n.is_empty())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standby_takes_over_when_the_leader_dies() {
    let (_dir, cluster, client) = cluster().await;
    let a = SchedulerConfig::for_tests().with_identity("scheduler-a");
    let b = SchedulerConfig::for_tests().with_identity("scheduler-b");
    let (metrics_a, metrics_b) = (a.metrics.clone(), b.metrics.clone());
    let (_stop_a, rx_a) = watch::channel(false);
    let leader = tokio::spawn(scheduler::run(client.clone(), a, rx_a));
    let who = eventually(Duration::from_secs(10), || holder(&client)).await;
    assert_eq!(who.as_deref(), Some("scheduler-a"));

    let (stop_b, rx_b) = watch::channel(false);
    let standby = tokio::spawn(scheduler::run(client.clone(), b, rx_b));
    create_pod(&client, "first").await;
    assert!(node_of(&client, "first", Duration::from_secs(20))
        .await
        .is_some());
    // Give the standby time to (wrongly) act: it must not.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(attempts(&metrics_a) >= 1);
    assert_eq!(
        attempts(&metrics_b),
        0,
        "the standby never schedules while the leader lives"
    );

    // The leader dies without handing the lease back (a crash, not a clean stop).
    leader.abort();
    let _ = leader.await;
    let who = eventually(Duration::from_secs(15), || async {
        holder(&client).await.filter(|h| h == "scheduler-b")
    })
    .await;
    assert_eq!(
        who.as_deref(),
        Some("scheduler-b"),
        "the lease moves to the standby"
    );
    create_pod(&client, "second").await;
    assert!(
        node_of(&client, "second", Duration::from_secs(20))
            .await
            .is_some(),
        "scheduling continues"
    );
    assert!(attempts(&metrics_b) >= 1);

    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    let spec = leases.get("kube-scheduler").await.unwrap().spec.unwrap();
    assert_eq!(spec.lease_transitions, Some(1));
    assert_eq!(spec.lease_duration_seconds, Some(2));

    let _ = stop_b.send(true);
    let r = tokio::time::timeout(Duration::from_secs(10), standby).await;
    assert!(matches!(r, Ok(Ok(Ok(())))), "{r:?}");
    cluster.shutdown().await;
}

fn elector(client: &kube::Client, id: &str) -> LeaderElector {
    let mut cfg = LeaderElectionConfig::new("kube-system", "race", id);
    cfg.lease_duration = Duration::from_secs(5);
    cfg.renew_deadline = Duration::from_secs(3);
    cfg.retry_period = Duration::from_millis(500);
    cfg.release_on_cancel = true;
    LeaderElector::new(client.clone(), cfg).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_one_candidate_wins_and_release_hands_over() {
    let (_dir, cluster, client) = cluster().await;
    let electors: Vec<Arc<LeaderElector>> = (0..4)
        .map(|i| Arc::new(elector(&client, &format!("c{i}"))))
        .collect();
    let attempts: Vec<_> = electors
        .iter()
        .map(|e| {
            let e = e.clone();
            tokio::spawn(async move { e.try_acquire_or_renew().await })
        })
        .collect();
    let mut winners = 0;
    for a in attempts {
        if a.await.unwrap() {
            winners += 1;
        }
    }
    assert_eq!(
        winners, 1,
        "the resourceVersion check lets exactly one candidate win"
    );
    let leader = electors.iter().find(|e| e.is_leader()).unwrap().clone();
    let other = electors.iter().find(|e| !e.is_leader()).unwrap().clone();
    assert!(
        !other.try_acquire_or_renew().await,
        "a valid lease is not taken over"
    );
    assert!(leader.try_acquire_or_renew().await, "the holder renews");

    // `run` with release_on_cancel: a clean stop hands the lease over at once.
    let (stop, rx) = watch::channel(false);
    let (led_tx, mut led_rx) = watch::channel(false);
    let runner = {
        let leader = leader.clone();
        tokio::spawn(async move {
            leader
                .run(rx, |mut stop| async move {
                    let _ = led_tx.send(true);
                    while !*stop.borrow() {
                        if stop.changed().await.is_err() {
                            break;
                        }
                    }
                    Ok(())
                })
                .await
        })
    };
    while !*led_rx.borrow() {
        led_rx.changed().await.unwrap();
    }
    let _ = stop.send(true);
    assert!(runner.await.unwrap().is_ok());
    assert!(
        other.try_acquire_or_renew().await,
        "released lease is free immediately"
    );
    cluster.shutdown().await;
}
