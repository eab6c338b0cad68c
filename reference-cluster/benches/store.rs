//! Storage benchmark: durable write throughput of the embedded store against a real etcd on the
//! same machine, and watch fan-out latency to many watchers.
//!
//! `cargo bench -p kubeproof-refcluster --bench store` (plain `main`, no bench harness).
//! Knobs: `STORE_BENCH_SECS` (per throughput run, default 3), `STORE_BENCH_CLIENTS` (concurrent
//! writers, default 64), `KUBEPROOF_ETCD_BIN` (etcd binary, default `/usr/bin/etcd`; the etcd
//! comparison is skipped without one). etcd runs with its defaults, i.e. it fsyncs too.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use kubeproof_refcluster::store::embedded::{EmbeddedOptions, EmbeddedStore};
use kubeproof_refcluster::store::etcd::{EtcdOptions, EtcdStore};
use kubeproof_refcluster::store::Store;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Creates distinct keys with ~1 KiB values from `clients` tasks for `secs`; writes per second.
async fn write_throughput(store: Arc<dyn Store>, clients: u64, secs: u64) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let value = Bytes::from(vec![b'x'; 1024]);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (store, stop, done, value) = (
                Arc::clone(&store),
                Arc::clone(&stop),
                Arc::clone(&done),
                value.clone(),
            );
            tokio::spawn(async move {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    store
                        .create(&format!("/registry/bench/c{c}/{i}"), value.clone())
                        .await
                        .expect("write");
                    done.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// `watchers` watchers on one prefix; `writes` paced writes; latency from the write's
/// acknowledgement to each watcher receiving it.
async fn fan_out(store: Arc<dyn Store>, watchers: usize, writes: usize) {
    let from = store.current_revision().await.unwrap();
    let acked: Arc<Vec<AtomicU64>> = Arc::new((0..writes).map(|_| AtomicU64::new(0)).collect());
    let epoch = Instant::now();
    let mut receivers = Vec::new();
    for _ in 0..watchers {
        let mut stream = store.watch("/registry/fanout/", from).await.unwrap();
        receivers.push(tokio::spawn(async move {
            let mut received = Vec::with_capacity(writes);
            while received.len() < writes {
                let event = stream.next().await.expect("open").expect("event");
                let n = (event.revision() - from - 1) as usize;
                received.push((n, epoch.elapsed()));
            }
            received
        }));
    }
    for n in 0..writes {
        store
            .create(&format!("/registry/fanout/{n}"), Bytes::from_static(b"{}"))
            .await
            .unwrap();
        acked[n].store(epoch.elapsed().as_nanos() as u64, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut latencies = Vec::with_capacity(watchers * writes);
    for receiver in receivers {
        for (n, at) in receiver.await.unwrap() {
            let ack = Duration::from_nanos(acked[n].load(Ordering::Relaxed));
            latencies.push(at.saturating_sub(ack));
        }
    }
    latencies.sort_unstable();
    println!(
        "  fan-out to {watchers} watchers, {writes} writes: p50 {:?}  p99 {:?}  max {:?}",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().unwrap()
    );
}

struct Etcd {
    child: Child,
    endpoint: String,
    _dir: tempfile::TempDir,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_etcd() -> Option<(Etcd, EtcdStore)> {
    let binary = std::env::var_os("KUBEPROOF_ETCD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/etcd"));
    if !binary.exists() {
        println!("etcd: skipped, {} not found", binary.display());
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let (client, peer) = (free_port(), free_port());
    let endpoint = format!("http://127.0.0.1:{client}");
    let peer_url = format!("http://127.0.0.1:{peer}");
    let child = Command::new(&binary)
        .arg("--name=bench")
        .arg(format!("--data-dir={}", dir.path().join("data").display()))
        .arg(format!("--listen-client-urls={endpoint}"))
        .arg(format!("--advertise-client-urls={endpoint}"))
        .arg(format!("--listen-peer-urls={peer_url}"))
        .arg(format!("--initial-advertise-peer-urls={peer_url}"))
        .arg(format!("--initial-cluster=bench={peer_url}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let etcd = Etcd {
        child,
        endpoint,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let endpoints = [etcd.endpoint.clone()];
        if let Ok(store) = EtcdStore::connect(&endpoints, EtcdOptions::default()).await {
            return Some((etcd, store));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("etcd: skipped, not ready within 30s");
    None
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let secs = env_or("STORE_BENCH_SECS", 3);
        let clients = env_or("STORE_BENCH_CLIENTS", 64);
        println!("durable creates of 1 KiB values, {clients} concurrent clients, {secs}s each");

        let dir = tempfile::tempdir().unwrap();
        let embedded = Arc::new(EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).unwrap());
        let ours = write_throughput(embedded.clone(), clients, secs).await;
        let stats = embedded.stats();
        println!(
            "embedded: {ours:.0} writes/s, {:.1} writes per fsync ({} writes, {} fsyncs, {} snapshots)",
            stats.writes as f64 / stats.fsyncs.max(1) as f64,
            stats.writes,
            stats.fsyncs,
            stats.snapshots
        );

        if let Some((etcd, store)) = start_etcd().await {
            let theirs = write_throughput(Arc::new(store), clients, secs).await;
            println!("etcd:     {theirs:.0} writes/s");
            println!("embedded / etcd: {:.2}x", ours / theirs);
            drop(etcd);
        }

        println!("watch fan-out (embedded store)");
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).unwrap());
        fan_out(store, 100, 1000).await;
    });
}
