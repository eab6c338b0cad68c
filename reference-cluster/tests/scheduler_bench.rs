//! Scheduler throughput, measured two ways (both `#[ignore]`: run them with `--ignored`,
//! ideally in an optimised build):
//! - the scheduling algorithm alone (cache, framework, default plugins) on 1,000 nodes;
//! - end to end against the bundled cluster: pods created through the API, bound by the
//!   scheduler, observed through a watch.
//!
//! Sizes come from `SCHED_BENCH_NODES` / `SCHED_BENCH_PODS` (default 1,000 / 10,000).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, PostParams};
use kube::runtime::watcher;
use kube::ResourceExt;
use kubeproof_refcluster::cluster::{ClusterConfig, RunningCluster, StoreConfig};
use kubeproof_refcluster::scheduler::algorithm::schedule_pod;
use kubeproof_refcluster::scheduler::cache::Cache;
use kubeproof_refcluster::scheduler::framework::{Ctx, CycleState};
use kubeproof_refcluster::scheduler::plugins::build_framework;
use kubeproof_refcluster::scheduler::podinfo::PodInfo;
use kubeproof_refcluster::scheduler::queue::Nominator;
use kubeproof_refcluster::scheduler::{self, ProfileConfig, SchedulerConfig};
use serde_json::json;
use tokio::sync::watch;

fn sizes() -> (usize, usize) {
    let get = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    (
        get("SCHED_BENCH_NODES", 1000),
        get("SCHED_BENCH_PODS", 10_000),
    )
}

fn pod(i: usize) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": format!("bench-{i}"), "namespace": "default", "uid": format!("uid-{i}")},
        "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
                 "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]},
    }))
    .unwrap()
}

/// CPU seconds used so far by this process's threads named `name` (Linux only; 0 elsewhere).
fn thread_cpu_seconds(name: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    let ticks = 100.0; // USER_HZ on Linux
    tasks
        .flatten()
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name))
        .filter_map(|t| std::fs::read_to_string(t.path().join("stat")).ok())
        .filter_map(|stat| {
            // Fields after the parenthesised command: utime and stime are the 12th and 13th.
            let rest = &stat[stat.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / ticks)
        })
        .sum()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[test]
#[ignore = "a benchmark, not a check: run with --ignored, ideally with --release"]
fn algorithm_throughput() {
    let (nodes, pods) = sizes();
    let mut cache = Cache::new();
    for i in 0..nodes {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": format!("node-{i}"), "labels": {
                "kubernetes.io/hostname": format!("node-{i}"),
                "topology.kubernetes.io/zone": format!("zone-{}", i % 10)}},
            "status": {"allocatable": {"cpu": "32", "memory": "128Gi", "pods": "110"}},
        }))
        .unwrap();
        cache.upsert_node(Arc::new(node));
    }
    let fwk = build_framework(&ProfileConfig::default()).unwrap();
    let nominator = Nominator::default();
    let mut rng = rand::rng();
    let mut next_start = 0;
    let mut latencies = Vec::with_capacity(pods);
    let start = Instant::now();
    for i in 0..pods {
        let t = Instant::now();
        let info = Arc::new(PodInfo::new(Arc::new(pod(i)), 0));
        let result = {
            let ctx = Ctx {
                cache: &cache,
                nominator: &nominator,
            };
            schedule_pod(
                &fwk,
                &ctx,
                &mut CycleState::new(),
                &info,
                &mut next_start,
                0,
                &mut rng,
            )
        };
        let node = result.expect("the pod fits").node;
        cache.assume_pod(info, &node).unwrap();
        latencies.push(t.elapsed());
    }
    let elapsed = start.elapsed();
    // LeastAllocated spreads identical pods evenly, up to its integer resolution: a 100m pod
    // moves a 32-CPU node's score by 0.3, so nodes within ~3 pods of each other tie.
    let per_node: Vec<usize> = cache.nodes().map(|n| n.pods.len()).collect();
    let (min, max) = (
        per_node.iter().min().unwrap(),
        per_node.iter().max().unwrap(),
    );
    assert!(max - min <= 4, "uneven spread: {min}..{max} pods per node");
    latencies.sort();
    println!(
        "algorithm: {pods} pods on {nodes} nodes in {:.2}s = {:.0} pods/s, p50 {:?}, p99 {:?}",
        elapsed.as_secs_f64(),
        pods as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark, not a check: run with --ignored, ideally with --release"]
async fn end_to_end_throughput() {
    let (nodes, pods) = sizes();
    let dir = tempfile::tempdir().unwrap();
    let cfg = ClusterConfig {
        store: StoreConfig::Memory,
        nodes: nodes as u32,
        ..ClusterConfig::for_tests(dir.path())
    };
    let cluster = RunningCluster::start(cfg).await.expect("cluster starts");
    let client = cluster.client().await.unwrap();
    let (stop, rx) = watch::channel(false);
    let sched = SchedulerConfig {
        leader_election: None,
        ..SchedulerConfig::for_tests()
    };
    let task = tokio::spawn(scheduler::run(client.clone(), sched, rx));

    // Observe bindings through a watch, as a user would.
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let created = Arc::new(parking_lot::Mutex::new(std::collections::HashMap::<
        String,
        Instant,
    >::new()));
    let observer = {
        let api = api.clone();
        let created = created.clone();
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut stream = watcher::watcher(api, watcher::Config::default()).boxed();
            let mut bound = std::collections::HashSet::new();
            while let Some(ev) = stream.next().await {
                let Ok(watcher::Event::Apply(p)) = ev else {
                    continue;
                };
                if p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some()
                    && bound.insert(p.name_any())
                {
                    if let Some(t) = created.lock().get(&p.name_any()) {
                        latencies.push(t.elapsed());
                    }
                    if bound.len() == pods {
                        break;
                    }
                }
            }
            (Instant::now(), latencies)
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let start = Instant::now();
    let creators: Vec<_> = (0..32)
        .map(|w| {
            let api = api.clone();
            let created = created.clone();
            tokio::spawn(async move {
                for i in (w..pods).step_by(32) {
                    let p = pod(i);
                    created.lock().insert(p.name_any(), Instant::now());
                    api.create(&PostParams::default(), &p)
                        .await
                        .expect("pod created");
                }
            })
        })
        .collect();
    for c in creators {
        c.await.unwrap();
    }
    let created_in = start.elapsed();
    let (end, mut latencies) = tokio::time::timeout(Duration::from_secs(600), observer)
        .await
        .expect("all pods bound in time")
        .unwrap();
    let elapsed = end.duration_since(start);
    latencies.sort();
    println!(
        "end to end: {pods} pods on {nodes} nodes: created in {:.2}s, all bound after {:.2}s = {:.0} pods/s, p50 {:?}, p99 {:?}; scheduling thread used {:.2} CPU-s",
        created_in.as_secs_f64(),
        elapsed.as_secs_f64(),
        pods as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        thread_cpu_seconds("kube-scheduler"),
    );
    let _ = stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    cluster.shutdown().await;
}
