//! `kubeproof bench …`: performance figures of the bundled cluster, printed, never asserted.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use futures::{StreamExt, TryStreamExt};
use hdrhistogram::Histogram;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ListParams, ObjectMeta, PostParams, WatchEvent, WatchParams};
use kubeproof_refcluster::cluster::{ClusterConfig, RunningCluster, StoreConfig};
use serde_json::{json, Value};

use crate::Output;

#[derive(Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// API throughput and latency (create/get/list/watch) of the embedded store and, with
    /// --etcd, of the same API server on etcd, measured in one run.
    Api(ApiBenchArgs),
    /// Simulated nodes (the `sim` runtime) at scale: time until all nodes are Ready and all
    /// pods Running, with the bundled scheduler placing the pods, and peak memory.
    Nodes(NodesBenchArgs),
    /// Scheduler throughput and latency: pods created through the API until all are bound,
    /// onto registered nodes (no node agents), by the bundled scheduler.
    Scheduler(SchedulerBenchArgs),
}

#[derive(Args)]
pub struct SchedulerBenchArgs {
    /// Nodes to register (4 CPU, 16Gi, 110 pods each).
    #[arg(long, default_value_t = 1000)]
    pub nodes: u32,
    /// Pods to schedule (100m CPU, 128Mi each).
    #[arg(long, default_value_t = 10000)]
    pub pods: usize,
    /// Pod creations in flight.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Seconds the run may take before it is abandoned.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
}

#[derive(Args)]
pub struct ApiBenchArgs {
    /// Also measure the API server backed by etcd at this URL (e.g. http://127.0.0.1:2379).
    #[arg(long)]
    etcd: Option<String>,
    /// Objects created (and read) per backend.
    #[arg(long, default_value_t = 2000)]
    objects: usize,
    /// Concurrent clients for create and get.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Watchers that all receive every update.
    #[arg(long, default_value_t = 100)]
    watchers: usize,
    /// Updates observed by the watchers.
    #[arg(long, default_value_t = 200)]
    watch_events: usize,
    /// Instead: latency of create, get and list with RBAC and the default admission chain on
    /// versus AlwaysAllow and no admission, measured in one run, and the p99 overhead.
    #[arg(long, conflicts_with = "etcd")]
    auth: bool,
    /// Full lists per side and round with --auth.
    #[arg(long, default_value_t = 20)]
    lists: usize,
    /// With --auth: rounds of create/get/list, each in slices taking turns between the two
    /// clusters; the overhead is the median over rounds.
    #[arg(long, default_value_t = 9)]
    rounds: usize,
}

pub async fn run(args: BenchArgs, output: Output) -> Result<ExitCode> {
    match args.command {
        BenchCommand::Api(a) => bench_api(a, output).await,
        BenchCommand::Nodes(a) => bench_nodes(a, output).await,
        BenchCommand::Scheduler(a) => super::bench_scheduler::run(a, output).await,
    }
}

async fn bench_api(args: ApiBenchArgs, output: Output) -> Result<ExitCode> {
    if args.auth {
        return bench_api_auth(&args, output).await;
    }
    let mut results = BTreeMap::new();
    let mut backends = vec![("embedded", StoreConfig::Embedded)];
    if let Some(url) = &args.etcd {
        backends.push(("etcd", StoreConfig::Etcd(vec![url.clone()])));
    }
    for (name, store) in backends {
        let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
        let cfg = ClusterConfig {
            store,
            ..ClusterConfig::for_tests(dir.path())
        };
        let cluster = RunningCluster::start(cfg)
            .await
            .with_context(|| format!("cannot start the cluster on the {name} backend"))?;
        let client = cluster.client().await?;
        eprintln!("measuring the {name} backend…");
        let figures = measure(client, &args).await;
        cluster.shutdown().await;
        results.insert(name.to_string(), figures?);
    }
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&results)?),
        Output::Text => print_table(&results),
    }
    Ok(ExitCode::SUCCESS)
}

async fn bench_api_auth(args: &ApiBenchArgs, output: Output) -> Result<ExitCode> {
    use super::bench_auth;
    let result = bench_auth::measure_auth_overhead(bench_auth::AuthBenchSizes {
        objects: args.objects,
        concurrency: args.concurrency,
        lists: args.lists,
        rounds: args.rounds,
    })
    .await?;
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&result)?),
        Output::Text => bench_auth::print_text(&result),
    }
    Ok(ExitCode::SUCCESS)
}

fn print_table(results: &BTreeMap<String, Value>) {
    let names: Vec<&String> = results.keys().collect();
    print!("{:<22}", "figure");
    for n in &names {
        print!("{:>14}", n);
    }
    println!();
    let keys: Vec<String> = results
        .values()
        .next()
        .and_then(Value::as_object)
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    for k in keys {
        print!("{k:<22}");
        for n in &names {
            let v = results[*n]
                .get(&k)
                .and_then(Value::as_f64)
                .unwrap_or(f64::NAN);
            print!("{v:>14.2}");
        }
        println!();
    }
}

pub(super) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

pub(super) fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

async fn measure(client: kube::Client, args: &ApiBenchArgs) -> Result<Value> {
    let ns = format!("bench-{}", std::process::id());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: ObjectMeta {
                    name: Some(ns.clone()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await?;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);

    let (create_per_s, create_h) = run_concurrently(args.objects, args.concurrency, |i| {
        let cms = cms.clone();
        async move {
            let cm = ConfigMap {
                metadata: ObjectMeta {
                    name: Some(format!("cm-{i}")),
                    ..Default::default()
                },
                data: Some([("k".to_string(), "v".repeat(64))].into()),
                ..Default::default()
            };
            cms.create(&PostParams::default(), &cm).await.map(|_| ())
        }
    })
    .await?;
    let (get_per_s, get_h) = run_concurrently(args.objects, args.concurrency, |i| {
        let cms = cms.clone();
        async move {
            cms.get(&format!("cm-{}", i % args.objects))
                .await
                .map(|_| ())
        }
    })
    .await?;
    let lists = 20usize;
    let (list_per_s, list_h) = run_concurrently(lists, 2, |_| {
        let cms = cms.clone();
        async move { cms.list(&ListParams::default()).await.map(|_| ()) }
    })
    .await?;

    // Watch fan-out: every watcher sees every update; latency is from the write's start to
    // the event's arrival, both measured against one clock in this process.
    let base = Instant::now();
    let watch_h = Arc::new(parking_lot::Mutex::new(histogram()));
    let target = "cm-0";
    let current = cms.get(target).await?;
    let rv = current
        .metadata
        .resource_version
        .clone()
        .unwrap_or_default();
    let mut watchers = Vec::new();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(args.watchers);
    for _ in 0..args.watchers {
        let cms = cms.clone();
        let h = watch_h.clone();
        let rv = rv.clone();
        let want = args.watch_events;
        let ready = ready_tx.clone();
        watchers.push(tokio::spawn(async move {
            let wp = WatchParams::default()
                .fields(&format!("metadata.name={target}"))
                .timeout(120);
            let mut stream = cms.watch(&wp, &rv).await?.boxed();
            let _ = ready.send(()).await;
            let mut seen = 0;
            while seen < want {
                match stream.try_next().await? {
                    Some(WatchEvent::Modified(cm)) => {
                        if let Some(t) = cm
                            .data
                            .as_ref()
                            .and_then(|d| d.get("t"))
                            .and_then(|t| t.parse::<u64>().ok())
                        {
                            let now = base.elapsed().as_micros() as u64;
                            let _ = h.lock().record(now.saturating_sub(t).max(1));
                            seen += 1;
                        }
                    }
                    Some(_) => {}
                    None => break,
                }
            }
            Ok::<_, kube::Error>(())
        }));
    }
    for _ in 0..args.watchers {
        ready_rx.recv().await;
    }
    for i in 0..args.watch_events {
        let t = base.elapsed().as_micros().to_string();
        let patch = json!({"data": {"t": t, "i": i.to_string()}});
        cms.patch(
            target,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await?;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for w in watchers {
        let _ = tokio::time::timeout(Duration::from_secs(60), w).await;
    }
    let watch_h = watch_h.lock().clone();
    let _ = namespaces.delete(&ns, &Default::default()).await;
    Ok(json!({
        "create_per_s": create_per_s,
        "create_p50_ms": ms(&create_h, 0.5),
        "create_p99_ms": ms(&create_h, 0.99),
        "get_per_s": get_per_s,
        "get_p50_ms": ms(&get_h, 0.5),
        "get_p99_ms": ms(&get_h, 0.99),
        "list_per_s": list_per_s,
        "list_p50_ms": ms(&list_h, 0.5),
        "list_p99_ms": ms(&list_h, 0.99),
        "list_items": args.objects,
        "watchers": args.watchers,
        "watch_events_received": watch_h.len(),
        "watch_p50_ms": ms(&watch_h, 0.5),
        "watch_p99_ms": ms(&watch_h, 0.99),
    }))
}

/// Runs `n` operations with `concurrency` in flight; returns operations per second and the
/// latency histogram (microseconds).
pub(super) async fn run_concurrently<F, Fut>(
    n: usize,
    concurrency: usize,
    op: F,
) -> Result<(f64, Histogram<u64>)>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<(), kube::Error>>,
{
    let started = Instant::now();
    let mut h = histogram();
    let results: Vec<Result<u64, kube::Error>> = futures::stream::iter(0..n)
        .map(|i| {
            let fut = op(i);
            async move {
                let t = Instant::now();
                fut.await?;
                Ok(t.elapsed().as_micros() as u64)
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    for r in results {
        h.record(r?.max(1))?;
    }
    let secs = started.elapsed().as_secs_f64();
    Ok((n as f64 / secs, h))
}

#[derive(Args)]
pub struct NodesBenchArgs {
    /// Simulated nodes in the fleet (named node-0, node-1, …).
    #[arg(long, default_value_t = 1000)]
    nodes: usize,
    /// Pods created once every node is Ready.
    #[arg(long, default_value_t = 10000)]
    pods: usize,
    /// Pod creations in flight.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds each phase may take before the run is abandoned.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// Bind pods round-robin through `spec.nodeName` instead of running the scheduler
    /// (measures the node agents alone, as kwok's CI does).
    #[arg(long)]
    without_scheduler: bool,
}

/// The process's peak resident memory (Linux `VmHWM`); the cluster runs in this process.
pub(crate) fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Watches `api` until `done(seen)` says enough objects match `matches`; returns the seconds
/// since `since`, or how far it got.
async fn watch_until<K>(
    api: Api<K>,
    cfg: kube::runtime::watcher::Config,
    want: usize,
    timeout: Duration,
    since: Instant,
    matches: fn(&K) -> bool,
) -> Result<f64, usize>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    use kube::runtime::watcher::{watcher, Event};
    use kube::runtime::WatchStreamExt;
    let mut stream = watcher(api, cfg).default_backoff().boxed();
    let mut ok: std::collections::HashSet<String> = std::collections::HashSet::new();
    let deadline = tokio::time::Instant::now() + timeout;
    let key = |o: &K| o.meta().uid.clone().unwrap_or_default();
    loop {
        let ev = match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(ev)) => ev,
            Ok(None) | Err(_) => return Err(ok.len()),
        };
        match ev {
            Ok(Event::Apply(o) | Event::InitApply(o)) => {
                if matches(&o) {
                    ok.insert(key(&o));
                } else {
                    ok.remove(&key(&o));
                }
            }
            Ok(Event::Delete(o)) => {
                ok.remove(&key(&o));
            }
            Ok(_) | Err(_) => {}
        }
        if ok.len() >= want {
            return Ok(since.elapsed().as_secs_f64());
        }
    }
}

async fn bench_nodes(args: NodesBenchArgs, output: Output) -> Result<ExitCode> {
    use k8s_openapi::api::core::v1::{Node, Pod};
    use kubeproof_refcluster::node::{run_fleet_with_stats, FleetConfig, FleetStats};
    use kubeproof_refcluster::scheduler::{self, SchedulerConfig};

    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let cfg = ClusterConfig {
        store: StoreConfig::Memory,
        nodes: 0,
        // Room for a few events per pod and node, so busy watchers are not sent back to relist.
        watch_window: (args.pods * 2 + args.nodes * 2).max(10_000),
        ..ClusterConfig::for_tests(dir.path())
    };
    let cluster = RunningCluster::start(cfg)
        .await
        .context("cannot start the cluster")?;
    let client = cluster.client().await?;
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let sched_cfg = SchedulerConfig {
        leader_election: None,
        ..SchedulerConfig::default()
    };
    let scheduler_task = (!args.without_scheduler)
        .then(|| tokio::spawn(scheduler::run(client.clone(), sched_cfg, stop_rx.clone())));
    let stats = FleetStats::default();
    let timeout = Duration::from_secs(args.timeout);

    // The fleet runs as it does in a cluster: its own identity, impersonating each node, so the
    // Node authorizer, NodeRestriction and the impersonation checks are part of what is measured.
    let fleet_cfg = FleetConfig::new(args.nodes);
    kubeproof_refcluster::node::api::grant_fleet(
        &client,
        fleet_cfg.nodes.iter().map(|n| n.name.as_str()),
    )
    .await
    .map_err(|f| anyhow::anyhow!("cannot grant the node fleet its permissions: {}", f.message))?;
    let fleet_client = cluster
        .client_as(kubeproof_refcluster::node::api::FLEET_USER, &[])
        .await?;

    eprintln!("starting {} simulated nodes…", args.nodes);
    let started = Instant::now();
    let fleet_task = tokio::spawn(run_fleet_with_stats(
        fleet_client,
        fleet_cfg,
        stats.clone(),
        stop_rx,
    ));
    let node_ready = |n: &Node| {
        n.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    };
    let nodes_api: Api<Node> = Api::all(client.clone());
    let nodes_ready_s = watch_until(
        nodes_api,
        Default::default(),
        args.nodes,
        timeout,
        started,
        node_ready,
    )
    .await;

    let ns = "bench-nodes";
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(ns.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    namespaces
        .create(&PostParams::default(), &namespace)
        .await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let pod_running =
        |p: &Pod| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
    let pods_started = Instant::now();
    let watch = tokio::spawn(watch_until(
        pods.clone(),
        kube::runtime::watcher::Config::default().labels("app=bench-nodes"),
        args.pods,
        timeout,
        pods_started,
        pod_running,
    ));
    if nodes_ready_s.is_ok() {
        eprintln!("creating {} pods…", args.pods);
        let template: Pod = serde_json::from_value(json!({
            "metadata": {"labels": {"app": "bench-nodes"}},
            "spec": {"containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10",
                                     "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]},
        }))?;
        let created: Vec<Result<(), kube::Error>> = futures::stream::iter(0..args.pods)
            .map(|i| {
                let pods = pods.clone();
                let mut pod = template.clone();
                pod.metadata.name = Some(format!("pod-{i}"));
                if args.without_scheduler {
                    if let Some(spec) = pod.spec.as_mut() {
                        spec.node_name = Some(format!("node-{}", i % args.nodes.max(1)));
                    }
                }
                async move { pods.create(&PostParams::default(), &pod).await.map(|_| ()) }
            })
            .buffer_unordered(args.concurrency.max(1))
            .collect()
            .await;
        let failed = created.iter().filter(|r| r.is_err()).count();
        if failed > 0 {
            eprintln!("{failed} pod creations failed");
        }
    }
    let pods_running_s = watch.await.unwrap_or(Err(0));
    let peak = peak_rss_bytes();
    let fleet = stats.snapshot();
    let _ = stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), fleet_task).await;
    if let Some(task) = scheduler_task {
        let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    }
    cluster.shutdown().await;

    let secs = |r: &Result<f64, usize>| r.as_ref().ok().copied();
    let pods_per_s = secs(&pods_running_s).map(|s| args.pods as f64 / s.max(1e-9));
    let result = json!({
        "nodes": args.nodes,
        "pods": args.pods,
        "nodes_ready_s": secs(&nodes_ready_s),
        "pods_running_s": secs(&pods_running_s),
        "pods_per_s": pods_per_s,
        "peak_rss_bytes": peak,
        "pod_status_writes": fleet.pod_status_writes,
        "lease_renewals": fleet.lease_renewals,
        "write_failures": fleet.write_failures,
    });
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&result)?),
        Output::Text => {
            let show = |v: &Value| match v {
                Value::Null => "not reached".to_string(),
                Value::Number(n) if n.is_f64() => format!("{:.2}", n.as_f64().unwrap_or_default()),
                other => other.to_string(),
            };
            for (k, v) in result.as_object().into_iter().flatten() {
                println!("{k:<20}{:>16}", show(v));
            }
        }
    }
    if let Err(n) = nodes_ready_s {
        anyhow::bail!(
            "only {n} of {} nodes became Ready within {}s",
            args.nodes,
            args.timeout
        );
    }
    if let Err(n) = pods_running_s {
        anyhow::bail!(
            "only {n} of {} pods were Running within {}s",
            args.pods,
            args.timeout
        );
    }
    Ok(ExitCode::SUCCESS)
}
