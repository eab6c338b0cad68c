//! `kubeproof bench scheduler`: how fast the bundled scheduler binds pods, end to end through
//! the API (create → scheduled → bound → observed by a watch), on registered nodes.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::StreamExt;
use hdrhistogram::Histogram;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::watcher;
use kubeproof_refcluster::cluster::{ClusterConfig, RunningCluster, StoreConfig};
use kubeproof_refcluster::scheduler::{self, SchedulerConfig};
use parking_lot::Mutex;
use serde_json::{json, Value};

use super::bench::{peak_rss_bytes, SchedulerBenchArgs};
use crate::Output;

const NAMESPACE: &str = "bench-scheduler";

/// When each pod's create was sent, and when a watch first saw it bound.
#[derive(Default)]
struct Timeline {
    created: HashMap<String, Instant>,
    bound: HashMap<String, Instant>,
}

pub async fn run(args: SchedulerBenchArgs, output: Output) -> Result<ExitCode> {
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let cfg = ClusterConfig {
        store: StoreConfig::Memory,
        nodes: args.nodes,
        // Room for every pod's create and bind, so the watchers are never sent back to relist.
        watch_window: (args.pods * 3).max(10_000),
        ..ClusterConfig::for_tests(dir.path())
    };
    eprintln!("starting the cluster with {} registered nodes…", args.nodes);
    let cluster = RunningCluster::start(cfg)
        .await
        .context("cannot start the cluster")?;
    let admin = cluster.client().await?;
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let sched_client = cluster.client_as("system:kube-scheduler", &[]).await?;
    let sched_cfg = SchedulerConfig {
        leader_election: None,
        ..SchedulerConfig::default()
    };
    let scheduler_task = tokio::spawn(scheduler::run(sched_client, sched_cfg, stop_rx));

    let namespaces: Api<Namespace> = Api::all(admin.clone());
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(NAMESPACE.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    namespaces.create(&PostParams::default(), &ns).await?;
    let pods: Api<Pod> = Api::namespaced(admin.clone(), NAMESPACE);
    let timeline = Arc::new(Mutex::new(Timeline::default()));
    let all_bound = tokio::spawn(watch_bindings(
        pods.clone(),
        timeline.clone(),
        args.pods,
        Duration::from_secs(args.timeout),
    ));

    eprintln!("creating {} pods…", args.pods);
    let progress = indicatif::ProgressBar::new(args.pods as u64);
    let started = Instant::now();
    let template = json!({
        "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]},
    });
    let failed = futures::stream::iter(0..args.pods)
        .map(|i| {
            let pods = pods.clone();
            let timeline = timeline.clone();
            let mut pod = template.clone();
            let name = format!("pod-{i}");
            pod["metadata"] = json!({"name": name});
            let progress = progress.clone();
            async move {
                let pod: Pod = serde_json::from_value(pod).expect("a valid pod");
                timeline.lock().created.insert(name, Instant::now());
                let r = pods.create(&PostParams::default(), &pod).await;
                progress.inc(1);
                r.is_err()
            }
        })
        .buffer_unordered(args.concurrency.max(1))
        .filter(|failed| std::future::ready(*failed))
        .count()
        .await;
    progress.finish_and_clear();
    if failed > 0 {
        eprintln!("{failed} pod creations failed");
    }
    eprintln!("waiting for the scheduler…");
    let complete = all_bound.await.unwrap_or(false);
    let elapsed = timeline
        .lock()
        .bound
        .values()
        .max()
        .map(|last| last.duration_since(started).as_secs_f64());
    let _ = stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), scheduler_task).await;
    cluster.shutdown().await;

    let t = timeline.lock();
    let mut latency = Histogram::<u64>::new(3)?;
    for (name, bound) in &t.bound {
        if let Some(created) = t.created.get(name) {
            latency.record(bound.duration_since(*created).as_micros().max(1) as u64)?;
        }
    }
    let ms = |q: f64| (!latency.is_empty()).then(|| latency.value_at_quantile(q) as f64 / 1000.0);
    let result = json!({
        "nodes": args.nodes,
        "pods": args.pods,
        "pods_bound": t.bound.len(),
        "duration_s": elapsed,
        "pods_per_s": elapsed.map(|s| t.bound.len() as f64 / s.max(1e-9)),
        "p50_ms": ms(0.5),
        "p99_ms": ms(0.99),
        "max_ms": ms(1.0),
        "peak_rss_bytes": peak_rss_bytes(),
    });
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&result)?),
        Output::Text => {
            for (k, v) in result.as_object().into_iter().flatten() {
                let shown = match v {
                    Value::Null => "not reached".to_string(),
                    Value::Number(n) if n.is_f64() => {
                        format!("{:.2}", n.as_f64().unwrap_or_default())
                    }
                    other => other.to_string(),
                };
                println!("{k:<16}{shown:>16}");
            }
        }
    }
    if !complete {
        anyhow::bail!(
            "only {} of {} pods were bound within {}s; raise --timeout or lower --pods",
            t.bound.len(),
            args.pods,
            args.timeout
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Records when each pod is first seen with a node; true once `want` pods are bound.
async fn watch_bindings(
    pods: Api<Pod>,
    timeline: Arc<Mutex<Timeline>>,
    want: usize,
    timeout: Duration,
) -> bool {
    let mut stream = watcher::watcher(pods, watcher::Config::default()).boxed();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let ev = match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(ev)) => ev,
            Ok(None) | Err(_) => return false,
        };
        if let Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) = ev {
            let bound = p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some();
            if bound {
                let mut t = timeline.lock();
                let name = p.metadata.name.unwrap_or_default();
                t.bound.entry(name).or_insert_with(Instant::now);
                if t.bound.len() >= want {
                    return true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_small_run_binds_every_pod() {
        let args = SchedulerBenchArgs {
            nodes: 3,
            pods: 20,
            concurrency: 4,
            timeout: 60,
        };
        let code = run(args, Output::Json).await.unwrap();
        assert_eq!(code, ExitCode::SUCCESS);
    }
}
