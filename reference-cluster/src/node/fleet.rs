//! Many node agents in one task. One pod watch (every pod with `spec.nodeName` set) and one
//! node watch feed a single loop that owns all agents and pod workers; one timer queue holds
//! every pod's next state change and every node's lease renewal and status check; one write
//! queue coalesces what must reach the API server (a pod's status is rendered when its write
//! goes out, so a burst of changes costs one write) under each node's client-side QPS and a
//! fleet-wide cap on requests in flight.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::admission::{admit, requests_of, NodeView};
use super::agent::NodeAgent;
use super::api::{self, ApiResult};
use super::clock::Clock;
use super::config::FleetConfig;
use super::events::{self, EventSink, NodeEvent};
use super::eviction;
use super::kubelet_server;
use super::local_storage;
use super::logs::LogStore;
use super::process::ProcessRuntime;
use super::runtime::Runtime;
use super::sim::SimRuntime;
use super::stats::{self, PodUsage, SummaryQuery};
use super::timers::Timers;
use super::worker::{PodWorker, SyncContext};
use crate::scheduler::resource::Resource;

/// How long a failed write waits before it is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// How often a silenced node's pending writes look again whether it may write.
const SILENT_POLL: Duration = Duration::from_millis(500);

/// Counters of what a fleet has done, for benchmarks and tests.
#[derive(Clone, Debug, Default)]
pub struct FleetStats(Arc<StatsInner>);

#[derive(Debug, Default)]
struct StatsInner {
    nodes_registered: AtomicU64,
    lease_renewals: AtomicU64,
    node_status_writes: AtomicU64,
    pods_admitted: AtomicU64,
    pods_rejected: AtomicU64,
    pod_status_writes: AtomicU64,
    pods_deleted: AtomicU64,
    write_failures: AtomicU64,
    /// Events not recorded because the event channel was full.
    events_dropped: Arc<AtomicU64>,
    /// Open responses of the fleet's kubelet server.
    log_streams: Arc<std::sync::atomic::AtomicUsize>,
}

/// A copy of the counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub nodes_registered: u64,
    pub lease_renewals: u64,
    pub node_status_writes: u64,
    pub pods_admitted: u64,
    pub pods_rejected: u64,
    pub pod_status_writes: u64,
    pub pods_deleted: u64,
    pub write_failures: u64,
    /// Events dropped because too many were waiting to be written.
    pub events_dropped: u64,
    /// Log responses (followers included) the fleet's kubelet server is writing now.
    pub log_streams: u64,
}

impl FleetStats {
    pub fn snapshot(&self) -> StatsSnapshot {
        let s = &self.0;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsSnapshot {
            nodes_registered: g(&s.nodes_registered),
            lease_renewals: g(&s.lease_renewals),
            node_status_writes: g(&s.node_status_writes),
            pods_admitted: g(&s.pods_admitted),
            pods_rejected: g(&s.pods_rejected),
            pod_status_writes: g(&s.pod_status_writes),
            pods_deleted: g(&s.pods_deleted),
            write_failures: g(&s.write_failures),
            events_dropped: g(&s.events_dropped),
            log_streams: s.log_streams.load(Ordering::SeqCst) as u64,
        }
    }

    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs a fleet of `sim` nodes until `shutdown` turns true (or its sender is dropped).
pub async fn run_fleet(
    client: kube::Client,
    cfg: FleetConfig,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    run_fleet_with_stats(client, cfg, FleetStats::default(), shutdown).await
}

/// [`run_fleet`], counting into `stats`.
pub async fn run_fleet_with_stats(
    client: kube::Client,
    cfg: FleetConfig,
    stats: FleetStats,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    cfg.validate().map_err(anyhow::Error::msg)?;
    let mut cfg = cfg;
    let logs = LogStore::new(cfg.log_limits);
    let server = kubelet_server::serve_counted(
        logs.clone(),
        cfg.log_follow_poll,
        shutdown.clone(),
        stats.0.log_streams.clone(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("the fleet's kubelet server cannot listen on 127.0.0.1: {e}"))?;
    for n in &mut cfg.nodes {
        n.kubelet_port = server.addr.port();
    }
    server.enable_exec(
        Arc::new(client.clone()),
        kubelet_server::DEFAULT_EXEC_MAX_SLEEP,
    );
    server.set_streaming_timeouts(super::portforward::StreamTimeouts {
        creation: cfg.timings.stream_creation_timeout,
        idle: cfg.timings.streaming_connection_idle_timeout,
    });
    tracing::info!(addr = %server.addr, "fleet kubelet server listening");
    let (summaries_tx, summaries_rx) = mpsc::channel(64);
    server.enable_stats(summaries_tx);
    // Held until the fleet stops: other clusters on this host keep off this pod range.
    let _pod_cidr_claim = match cfg.process.as_ref().and_then(|p| p.pod_cidr_claims.clone()) {
        Some(dir) => {
            let fixed = cfg.process.as_ref().is_some_and(|p| p.pod_cidr_fixed);
            let choices = if fixed {
                vec![cfg.cluster_cidr]
            } else {
                super::ipam::candidates(
                    cfg.cluster_cidr,
                    cfg.node_cidr_mask,
                    cfg.nodes.len() as u64,
                )
            };
            let claim = super::ipam::claim(&dir, &choices).map_err(anyhow::Error::msg)?;
            tracing::info!(pod_cidr = %claim.cidr, "pod address range claimed");
            cfg.cluster_cidr = claim.cidr;
            Some(claim)
        }
        None => None,
    };
    let runtime: Box<dyn Runtime> = match cfg.process.clone() {
        Some(pcfg) => {
            let rt = ProcessRuntime::new(pcfg, client.clone(), logs, &cfg.nodes)?
                .with_sync_frequency(cfg.timings.sync_frequency);
            server.enable_process_exec(rt.exec_handle());
            Box::new(rt)
        }
        None => Box::new(SimRuntime::with_logs(cfg.stages, logs)),
    };
    let result = SimFleet::new(client, cfg, runtime, stats)
        .with_summaries(summaries_rx)
        .run(shutdown)
        .await;
    server.task.abort();
    result
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum WriteKey {
    Register(String),
    Lease(String),
    NodeStatus(String),
    Pod(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Timer {
    Sync(String),
    Lease(String),
    NodeStatus(String),
    Write(WriteKey),
    /// The eviction manager's pass over every node.
    Eviction,
}

enum Job {
    Register(Box<Node>),
    Lease(Box<Lease>),
    NodeStatus {
        name: String,
        status: Value,
    },
    PodStatus {
        ns: String,
        name: String,
        status: Value,
    },
    DeletePod {
        ns: String,
        name: String,
        uid: String,
    },
}

enum Outcome {
    Registered(Box<ApiResult<(Node, bool)>>),
    Lease(Box<ApiResult<Lease>>),
    Written(ApiResult<()>, Option<Value>),
    Deleted(ApiResult<()>),
}

struct Done {
    key: WriteKey,
    outcome: Outcome,
}

enum Input {
    Pod(Box<Event<Pod>>),
    Node(Box<Event<Node>>),
}

enum Prep {
    Skip,
    Defer(Instant),
    Send(Job),
}

struct PodEntry {
    worker: PodWorker,
    node: String,
    requests: Resource,
    /// Counted in the node's requests and pod count.
    counted: bool,
    ip: Option<Ipv4Addr>,
    last_written: Option<Value>,
    /// The final delete went through; the watch will confirm.
    deleted: bool,
    /// The API no longer has the pod.
    gone: bool,
}

pub struct SimFleet {
    client: kube::Client,
    cfg: FleetConfig,
    clock: Clock,
    runtime: Box<dyn Runtime>,
    nodes: HashMap<String, NodeAgent>,
    pods: HashMap<String, PodEntry>,
    timers: Timers<Timer>,
    registrations: VecDeque<String>,
    queue: VecDeque<WriteKey>,
    queued: HashSet<WriteKey>,
    writing: HashSet<WriteKey>,
    redo: HashSet<WriteKey>,
    in_flight: usize,
    registering: usize,
    listing: Option<HashSet<String>>,
    done_tx: mpsc::UnboundedSender<Done>,
    done_rx: mpsc::UnboundedReceiver<Done>,
    events: EventSink,
    /// Taken by `run`, which writes the events.
    events_rx: Option<mpsc::Receiver<NodeEvent>>,
    stats: FleetStats,
    /// Requests of the kubelet server's `/stats/summary`, answered by `run`.
    summaries: Option<mpsc::Receiver<SummaryQuery>>,
}

impl SimFleet {
    pub fn new(
        client: kube::Client,
        cfg: FleetConfig,
        runtime: Box<dyn Runtime>,
        stats: FleetStats,
    ) -> SimFleet {
        let now = Instant::now();
        let mut nodes = HashMap::new();
        let mut registrations = VecDeque::new();
        for (i, n) in cfg.nodes.iter().enumerate() {
            // `validate` guarantees a block per node.
            let Some(cidr) = cfg.cluster_cidr.subnet(cfg.node_cidr_mask, i as u64) else {
                continue;
            };
            registrations.push_back(n.name.clone());
            nodes.insert(
                n.name.clone(),
                NodeAgent::new(
                    n.clone(),
                    cidr,
                    runtime.version(),
                    cfg.api_qps,
                    cfg.api_burst,
                    now,
                ),
            );
        }
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let (events, events_rx) = if cfg.record_events {
            let (sink, rx) = EventSink::bounded(cfg.event_buffer, stats.0.events_dropped.clone());
            (sink, Some(rx))
        } else {
            (EventSink::disabled(), None)
        };
        let mut runtime = runtime;
        runtime.set_event_sink(events.clone());
        SimFleet {
            events,
            events_rx,
            client,
            clock: Clock::new(),
            runtime,
            nodes,
            pods: HashMap::new(),
            timers: Timers::default(),
            registrations,
            queue: VecDeque::new(),
            queued: HashSet::new(),
            writing: HashSet::new(),
            redo: HashSet::new(),
            in_flight: 0,
            registering: 0,
            listing: None,
            done_tx,
            done_rx,
            stats,
            cfg,
            summaries: None,
        }
    }

    /// Answers the resource usage summaries asked for on `queries` while running.
    pub fn with_summaries(mut self, queries: mpsc::Receiver<SummaryQuery>) -> SimFleet {
        self.summaries = Some(queries);
        self
    }

    /// The usage summary of one of this fleet's nodes (`None`: the only one), as the kubelet's
    /// `/stats/summary` reports it.
    fn summary(&self, node: Option<&str>, now: Instant) -> Result<Value, (u16, String)> {
        let node = match node {
            Some(n) => n.to_string(),
            None if self.nodes.len() == 1 => self.nodes.keys().next().cloned().unwrap_or_default(),
            None => {
                return Err((
                    400,
                    format!(
                        "this kubelet server hosts {} nodes; name one with ?node=<name>",
                        self.nodes.len()
                    ),
                ))
            }
        };
        if !self.nodes.contains_key(&node) {
            return Err((
                404,
                format!("node {node:?} is not hosted by this kubelet server"),
            ));
        }
        let mut pods = Vec::new();
        for (uid, entry) in &self.pods {
            if entry.node != node || entry.gone || entry.deleted {
                continue;
            }
            let containers: Vec<_> = entry
                .worker
                .current_containers()
                .filter_map(|(name, id)| Some((name.to_string(), self.runtime.usage(id, now)?)))
                .collect();
            if containers.is_empty() {
                continue;
            }
            let pod = entry.worker.pod();
            pods.push(PodUsage {
                namespace: pod.metadata.namespace.clone().unwrap_or_default(),
                name: pod.metadata.name.clone().unwrap_or_default(),
                uid: uid.clone(),
                start_time: pod
                    .status
                    .as_ref()
                    .and_then(|s| s.start_time.as_ref())
                    .map(|t| t.0),
                containers,
            });
        }
        pods.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        Ok(stats::summary(&node, self.clock.wall(now), &pods))
    }

    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
        if *shutdown.borrow() {
            return Ok(());
        }
        let (tx, mut rx) = mpsc::channel::<Input>(4096);
        let watchers = [
            spawn_watch(
                api::pods(&self.client),
                watcher::Config::default().fields("spec.nodeName!="),
                tx.clone(),
                |e| Input::Pod(Box::new(e)),
            ),
            spawn_watch(
                api::nodes(&self.client),
                watcher::Config::default(),
                tx,
                |e| Input::Node(Box::new(e)),
            ),
        ];
        // Events get their own task and channel so they never wait behind, or hold up, the
        // status writes.
        let event_writer = self
            .events_rx
            .take()
            .map(|rx| tokio::spawn(events::run_writer(self.client.clone(), rx)));
        tracing::info!(nodes = self.nodes.len(), "node fleet starting");
        let mut summaries = self.summaries.take();
        let eviction = &self.cfg.eviction;
        if !eviction.hard.is_empty()
            || !eviction.soft.is_empty()
            || eviction.local_storage_capacity_isolation
        {
            self.timers
                .set(Timer::Eviction, Instant::now() + eviction.monitoring_period);
        }
        // A runtime of real processes says which pods to look at when something happened.
        let mut wakeups = self.runtime.take_wakeups();
        loop {
            self.pump(Instant::now());
            let deadline = self.timers.next_deadline();
            tokio::select! {
                biased;
                r = shutdown.changed() => {
                    if r.is_err() || *shutdown.borrow() {
                        break;
                    }
                }
                Some(done) = self.done_rx.recv() => self.on_done(done, Instant::now()),
                Some(input) = rx.recv() => self.on_input(input, Instant::now()),
                Some(q) = next_query(&mut summaries) => {
                    let _ = q.reply.send(self.summary(q.node.as_deref(), Instant::now()));
                }
                Some(uid) = next_wakeup(&mut wakeups) => {
                    self.advance(&uid, Instant::now());
                    self.enqueue(WriteKey::Pod(uid));
                }
                _ = sleep_until(deadline) => {}
            }
            // Take whatever else is ready in one go, so bursts are handled as batches.
            for _ in 0..4096 {
                match self.done_rx.try_recv() {
                    Ok(done) => self.on_done(done, Instant::now()),
                    Err(_) => break,
                }
            }
            for _ in 0..4096 {
                match rx.try_recv() {
                    Ok(input) => self.on_input(input, Instant::now()),
                    Err(_) => break,
                }
            }
            let now = Instant::now();
            while let Some(t) = self.timers.pop_due(now) {
                self.on_timer(t, now);
            }
        }
        for w in watchers {
            w.abort();
        }
        if let Some(w) = event_writer {
            w.abort();
        }
        tracing::info!("node fleet stopped");
        Ok(())
    }

    fn on_input(&mut self, input: Input, now: Instant) {
        match input {
            Input::Pod(ev) => self.on_pod_event(*ev, now),
            Input::Node(ev) => {
                if let Event::Apply(n) | Event::InitApply(n) = *ev {
                    let name = n.metadata.name.as_deref().unwrap_or_default();
                    if let Some(agent) = self.nodes.get_mut(name) {
                        agent.observe(&n);
                    }
                }
            }
        }
    }

    fn on_pod_event(&mut self, ev: Event<Pod>, now: Instant) {
        match ev {
            Event::Init => self.listing = Some(HashSet::new()),
            Event::InitApply(p) => {
                if let Some(uid) = p.metadata.uid.clone() {
                    self.listing.get_or_insert_with(HashSet::new).insert(uid);
                }
                self.on_pod(p, now);
            }
            Event::InitDone => {
                // Pods the relist no longer shows were deleted while the watch was down.
                let listed = self.listing.take().unwrap_or_default();
                let missing: Vec<String> = self
                    .pods
                    .keys()
                    .filter(|u| !listed.contains(*u))
                    .cloned()
                    .collect();
                for uid in missing {
                    self.on_pod_gone(&uid);
                }
            }
            Event::Apply(p) => self.on_pod(p, now),
            Event::Delete(p) => {
                if let Some(uid) = p.metadata.uid.as_deref() {
                    self.on_pod_gone(uid);
                }
            }
        }
    }

    fn on_pod(&mut self, pod: Pod, now: Instant) {
        let Some(uid) = pod.metadata.uid.clone() else {
            return;
        };
        let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) else {
            return;
        };
        let Some(agent) = self.nodes.get_mut(&node) else {
            return;
        };
        let pod = Arc::new(pod);
        if let Some(entry) = self.pods.get_mut(&uid) {
            let overwritten = entry
                .last_written
                .as_ref()
                .is_some_and(|w| super::reconcile::ready_overwritten(w, &pod));
            entry.worker.update(pod);
            if overwritten {
                // Write this agent's view again (see `reconcile`); the enqueue below sends it.
                entry.last_written = None;
            }
        } else {
            let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
            if matches!(phase, Some("Succeeded" | "Failed")) {
                // Finished before this agent saw it: nothing left to run.
                return;
            }
            let mut worker = PodWorker::new(pod.clone(), agent.cfg.internal_ip);
            worker.set_events(self.events.clone(), &node);
            let requests = requests_of(&pod);
            let mut entry_ip = None;
            let mut counted = false;
            if pod.metadata.deletion_timestamp.is_none() {
                let verdict = admit(
                    &pod,
                    &requests,
                    &NodeView {
                        name: &node,
                        labels: Some(&agent.labels),
                        taints: &agent.taints,
                        allocatable: &agent.allocatable,
                        requested: &agent.requested,
                        pod_count: agent.pod_count,
                    },
                );
                match verdict {
                    Ok(()) => {
                        FleetStats::bump(&self.stats.0.pods_admitted);
                        agent.requested.add(&requests);
                        agent.pod_count += 1;
                        counted = true;
                        if !worker.host_network() {
                            let previous = pod
                                .status
                                .as_ref()
                                .and_then(|s| s.pod_ip.as_deref())
                                .and_then(|ip| ip.parse::<Ipv4Addr>().ok())
                                .filter(|ip| agent.ips.reserve(*ip));
                            entry_ip = previous.or_else(|| agent.ips.allocate());
                            match entry_ip {
                                Some(ip) => {
                                    worker.set_pod_ip(ip);
                                    self.runtime.set_pod_ip(&uid, ip);
                                }
                                None => {
                                    tracing::warn!(node, pod = ?pod.metadata.name, "no pod address left in the node's block")
                                }
                            }
                        }
                    }
                    Err(r) => {
                        FleetStats::bump(&self.stats.0.pods_rejected);
                        tracing::debug!(node, pod = ?pod.metadata.name, reason = %r.reason, "pod rejected");
                        self.events.pod_event(
                            &node,
                            &pod,
                            None,
                            events::WARNING,
                            &r.reason,
                            || r.message.clone(),
                        );
                        worker.reject(r);
                    }
                }
            }
            self.pods.insert(
                uid.clone(),
                PodEntry {
                    worker,
                    node,
                    requests,
                    counted,
                    ip: entry_ip,
                    last_written: None,
                    deleted: false,
                    gone: false,
                },
            );
        }
        self.advance(&uid, now);
        self.enqueue(WriteKey::Pod(uid));
    }

    fn on_pod_gone(&mut self, uid: &str) {
        let Some(entry) = self.pods.remove(uid) else {
            return;
        };
        if let Some(agent) = self.nodes.get_mut(&entry.node) {
            release(agent, &entry);
        }
        self.runtime.remove_sandbox(uid);
        self.timers.cancel(&Timer::Sync(uid.to_string()));
        self.timers
            .cancel(&Timer::Write(WriteKey::Pod(uid.to_string())));
    }

    /// Syncs the pod's worker at `now` and schedules its next look.
    fn advance(&mut self, uid: &str, now: Instant) {
        let Some(entry) = self.pods.get_mut(uid) else {
            return;
        };
        if entry.deleted || entry.gone {
            return;
        }
        let PodEntry { worker, node, .. } = entry;
        let cx = SyncContext {
            node,
            backoff: &self.cfg.timings.backoff,
            error_requeue: self.cfg.timings.error_requeue,
        };
        match worker.sync(self.runtime.as_mut(), &cx, now) {
            Some(at) => self.timers.set(Timer::Sync(uid.to_string()), at),
            None => self.timers.cancel(&Timer::Sync(uid.to_string())),
        }
        if entry.worker.is_finished() && entry.counted {
            if let Some(agent) = self.nodes.get_mut(&entry.node) {
                release(agent, entry);
            }
            entry.counted = false;
            entry.ip = None;
        }
    }

    fn on_timer(&mut self, t: Timer, now: Instant) {
        match t {
            Timer::Sync(uid) => {
                self.advance(&uid, now);
                self.enqueue(WriteKey::Pod(uid));
            }
            Timer::Lease(name) => self.enqueue(WriteKey::Lease(name)),
            Timer::NodeStatus(name) => {
                let timings = self.cfg.timings;
                if let Some(agent) = self.nodes.get(&name) {
                    if agent.uid.is_some() && agent.status_due(&timings, now) {
                        self.enqueue(WriteKey::NodeStatus(name.clone()));
                    }
                    self.timers.set(
                        Timer::NodeStatus(name),
                        now + timings.node_status_update_frequency,
                    );
                }
            }
            Timer::Eviction => {
                self.monitor_pressure(now);
                self.timers
                    .set(Timer::Eviction, now + self.cfg.eviction.monitoring_period);
            }
            Timer::Write(WriteKey::Register(name)) => self.registrations.push_back(name),
            Timer::Write(key) => self.enqueue(key),
        }
    }

    /// One pass of the eviction manager: observe every node's signals, report pressure changes,
    /// evict the pods over their local storage limits and, on a node where none was, at most
    /// one pod whose threshold calls for it.
    fn monitor_pressure(&mut self, now: Instant) {
        let mut memory: HashMap<&str, i64> = HashMap::new();
        for entry in self.pods.values() {
            if entry.deleted || entry.gone || entry.worker.is_finished() {
                continue;
            }
            let used: i64 = entry
                .worker
                .current_containers()
                .filter_map(|(_, id)| self.runtime.usage(id, now))
                .map(|u| u.memory_bytes)
                .sum();
            *memory.entry(entry.node.as_str()).or_default() += used;
        }
        let cfg = self.cfg.eviction.clone();
        let mut reclaim = HashMap::new();
        let mut idle = HashSet::new();
        let mut changed = Vec::new();
        for (name, agent) in self.nodes.iter_mut() {
            if agent.uid.is_none() {
                continue;
            }
            let obs = agent.observations(&cfg, memory.get(name.as_str()).copied().unwrap_or(0));
            let verdict = agent.eviction.observe(&cfg, &obs, now);
            if verdict.pressures != agent.pressures {
                agent.pressures = verdict.pressures;
                changed.push(name.clone());
            }
            let busy = agent.eviction.evicting.iter().any(|uid| {
                self.pods
                    .get(uid)
                    .is_some_and(|e| !e.deleted && !e.gone && !e.worker.is_finished())
            });
            if busy {
                continue;
            }
            agent.eviction.evicting.clear();
            idle.insert(name.clone());
            if let Some(met) = verdict.reclaim {
                reclaim.insert(name.clone(), met);
            }
        }
        for name in changed {
            self.enqueue(WriteKey::NodeStatus(name));
        }
        if cfg.local_storage_capacity_isolation {
            // As upstream: a node that evicted for local storage skips node pressure this pass.
            for node in self.local_storage_eviction(&idle, now) {
                reclaim.remove(&node);
            }
        }
        if reclaim.is_empty() {
            return;
        }
        let mut candidates: HashMap<&str, Vec<eviction::Candidate>> = HashMap::new();
        for (uid, entry) in &self.pods {
            let Some(met) = reclaim.get(&entry.node) else {
                continue;
            };
            if entry.deleted || entry.gone || !entry.worker.evictable() {
                continue;
            }
            candidates
                .entry(entry.node.as_str())
                .or_default()
                .push(candidate(
                    uid,
                    &entry.worker,
                    self.runtime.as_ref(),
                    met,
                    now,
                ));
        }
        let mut victims = Vec::new();
        for (node, cands) in &candidates {
            let Some(met) = reclaim.get(*node) else {
                continue;
            };
            if let Some(pod) = eviction::pick(cands, met.threshold.signal) {
                victims.push((
                    node.to_string(),
                    pod.uid.clone(),
                    eviction::message(met, pod),
                    *met,
                ));
            }
        }
        let wall = self.clock.wall(now);
        for (node, uid, message, met) in victims {
            let Some(entry) = self.pods.get_mut(&uid) else {
                continue;
            };
            let pod = entry.worker.pod().clone();
            let grace = match met.threshold.grace {
                None => cfg.hard_grace_period,
                // Soft evictions honour the pod's grace up to evictionMaxPodGracePeriod.
                Some(_) => pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
                    .map_or(cfg.max_pod_grace_period, |s| {
                        Duration::from_secs(s.max(0) as u64).min(cfg.max_pod_grace_period)
                    }),
            };
            tracing::info!(node, pod = ?pod.metadata.name, signal = met.threshold.signal.name(), "evicting pod for node pressure");
            if entry
                .worker
                .evict(message.clone(), grace, self.runtime.as_mut(), wall, now)
            {
                self.events
                    .pod_event(&node, &pod, None, events::WARNING, eviction::REASON, || {
                        message
                    });
                if let Some(agent) = self.nodes.get_mut(&node) {
                    agent.eviction.evicting = vec![uid.clone()];
                }
                self.advance(&uid, now);
                self.enqueue(WriteKey::Pod(uid));
            }
        }
    }

    /// The kubelet's `localStorageEviction` on the `idle` nodes (none of their evicted pods is
    /// still stopping): evicts every pod over an `emptyDir` `sizeLimit` or an
    /// `ephemeral-storage` limit (see `local_storage`). Returns the nodes that evicted one.
    fn local_storage_eviction(&mut self, idle: &HashSet<String>, now: Instant) -> Vec<String> {
        let mut victims = Vec::new();
        for (uid, entry) in &self.pods {
            if !idle.contains(&entry.node)
                || entry.deleted
                || entry.gone
                || !entry.worker.evictable()
            {
                continue;
            }
            let pod = entry.worker.pod();
            let limits = local_storage::Limits::of(pod);
            if limits.is_empty() {
                continue;
            }
            let containers: Vec<(&str, &String)> = entry.worker.current_containers().collect();
            let Some(usage) = self.runtime.storage(pod, &containers, now) else {
                continue;
            };
            if let Some(v) = limits.check(pod, &usage) {
                victims.push((entry.node.clone(), uid.clone(), v.message()));
            }
        }
        let mut nodes = Vec::new();
        for (node, uid, message) in victims {
            let Some(entry) = self.pods.get_mut(&uid) else {
                continue;
            };
            let pod = entry.worker.pod().clone();
            tracing::info!(node, pod = ?pod.metadata.name, message, "evicting pod for local storage");
            if !entry.worker.evict_for_storage(
                message.clone(),
                local_storage::GRACE_PERIOD,
                self.runtime.as_mut(),
                now,
            ) {
                continue;
            }
            self.events
                .pod_event(&node, &pod, None, events::WARNING, eviction::REASON, || {
                    message
                });
            if let Some(agent) = self.nodes.get_mut(&node) {
                agent.eviction.evicting.push(uid.clone());
            }
            nodes.push(node);
            self.advance(&uid, now);
            self.enqueue(WriteKey::Pod(uid));
        }
        nodes
    }

    fn enqueue(&mut self, key: WriteKey) {
        if self.writing.contains(&key) {
            self.redo.insert(key);
        } else if self.queued.insert(key.clone()) {
            // Heartbeats go first: a backlog of pod status writes must not make a busy node
            // look dead to the node lifecycle controller.
            if matches!(key, WriteKey::Lease(_)) {
                self.queue.push_front(key);
            } else {
                self.queue.push_back(key);
            }
        }
    }

    /// Sends queued writes while the fleet has room for them.
    fn pump(&mut self, now: Instant) {
        while self.in_flight < self.cfg.api_concurrency.max(1)
            && self.registering < self.cfg.register_concurrency.max(1)
        {
            let Some(name) = self.registrations.pop_front() else {
                break;
            };
            let Some(agent) = self.nodes.get_mut(&name) else {
                continue;
            };
            let node = agent.node_object(&self.clock, now);
            self.registering += 1;
            self.send(WriteKey::Register(name), Job::Register(Box::new(node)));
        }
        while self.in_flight < self.cfg.api_concurrency.max(1) {
            let Some(key) = self.queue.pop_front() else {
                break;
            };
            self.queued.remove(&key);
            match self.prepare(&key, now) {
                Prep::Skip => {}
                Prep::Defer(at) => self.timers.set_earliest(Timer::Write(key), at),
                Prep::Send(job) => self.send(key, job),
            }
        }
    }

    fn prepare(&mut self, key: &WriteKey, now: Instant) -> Prep {
        if self.silenced(key) {
            // A stopped kubelet writes nothing; look again so that writing resumes soon after
            // the annotation is removed.
            return Prep::Defer(now + SILENT_POLL);
        }
        match key {
            WriteKey::Register(_) => Prep::Skip,
            WriteKey::Lease(name) => {
                let timings = self.cfg.timings;
                let Some(agent) = self.nodes.get_mut(name) else {
                    return Prep::Skip;
                };
                // Not rate limited: the kubelet renews its lease through a separate heartbeat
                // client, so that its own API traffic cannot starve it.
                Prep::Send(Job::Lease(Box::new(agent.lease_object(
                    &self.clock,
                    now,
                    &timings,
                ))))
            }
            WriteKey::NodeStatus(name) => {
                let Some(agent) = self.nodes.get_mut(name) else {
                    return Prep::Skip;
                };
                if let Err(at) = agent.bucket.try_take(now) {
                    return Prep::Defer(at);
                }
                let status = agent.status(&self.clock, now);
                Prep::Send(Job::NodeStatus {
                    name: name.clone(),
                    status,
                })
            }
            WriteKey::Pod(uid) => {
                self.advance(uid, now);
                let Some(entry) = self.pods.get_mut(uid) else {
                    return Prep::Skip;
                };
                if entry.deleted || entry.gone {
                    return Prep::Skip;
                }
                let status = entry
                    .worker
                    .api_status(self.runtime.as_ref(), &self.clock, now);
                let pod = entry.worker.pod().clone();
                let ns = pod.metadata.namespace.clone().unwrap_or_default();
                let name = pod.metadata.name.clone().unwrap_or_default();
                let job = if entry.last_written.as_ref() != Some(&status) {
                    Job::PodStatus { ns, name, status }
                } else if entry.worker.ready_to_delete() {
                    Job::DeletePod {
                        ns,
                        name,
                        uid: uid.clone(),
                    }
                } else {
                    return Prep::Skip;
                };
                let Some(agent) = self.nodes.get_mut(&entry.node) else {
                    return Prep::Skip;
                };
                if let Err(at) = agent.bucket.try_take(now) {
                    return Prep::Defer(at);
                }
                Prep::Send(job)
            }
        }
    }

    /// Whether `key` belongs to a node whose agent a test has silenced.
    fn silenced(&self, key: &WriteKey) -> bool {
        let node = match key {
            WriteKey::Register(_) => return false,
            WriteKey::Lease(name) | WriteKey::NodeStatus(name) => name.as_str(),
            WriteKey::Pod(uid) => match self.pods.get(uid) {
                Some(entry) => entry.node.as_str(),
                None => return false,
            },
        };
        self.nodes.get(node).is_some_and(|a| a.silent())
    }

    fn send(&mut self, key: WriteKey, job: Job) {
        self.in_flight += 1;
        self.writing.insert(key.clone());
        let client = self.client.clone();
        let tx = self.done_tx.clone();
        // Pod writes are made as the node the pod is bound to.
        let node = match &key {
            WriteKey::Pod(uid) => self
                .pods
                .get(uid)
                .map(|e| e.node.clone())
                .unwrap_or_default(),
            _ => String::new(),
        };
        tokio::spawn(async move {
            let outcome = match job {
                Job::Register(node) => {
                    Outcome::Registered(Box::new(api::register_node(&client, &node).await))
                }
                Job::Lease(lease) => {
                    Outcome::Lease(Box::new(api::write_lease(&client, &lease).await))
                }
                Job::NodeStatus { name, status } => {
                    Outcome::Written(api::patch_node_status(&client, &name, &status).await, None)
                }
                Job::PodStatus { ns, name, status } => {
                    let r = api::patch_pod_status(&client, &node, &ns, &name, &status).await;
                    Outcome::Written(r, Some(status))
                }
                Job::DeletePod { ns, name, uid } => {
                    Outcome::Deleted(api::delete_pod(&client, &node, &ns, &name, &uid).await)
                }
            };
            let _ = tx.send(Done { key, outcome });
        });
    }

    fn on_done(&mut self, done: Done, now: Instant) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.writing.remove(&done.key);
        let timings = self.cfg.timings;
        let stats = self.stats.0.clone();
        let failed = |what: &str, key: &WriteKey, f: &api::Failure| {
            FleetStats::bump(&stats.write_failures);
            tracing::debug!(?key, code = ?f.code, error = %f.message, "{what} failed; retrying");
        };
        match (&done.key, done.outcome) {
            (WriteKey::Register(name), Outcome::Registered(result)) => {
                let result = *result;
                self.registering = self.registering.saturating_sub(1);
                match result {
                    Ok((node, created)) => {
                        FleetStats::bump(&stats.nodes_registered);
                        if let Some(agent) = self.nodes.get_mut(name) {
                            agent.observe(&node);
                            if created {
                                agent.reported(now);
                            } else {
                                self.enqueue(WriteKey::NodeStatus(name.clone()));
                            }
                        }
                        self.enqueue(WriteKey::Lease(name.clone()));
                        self.timers.set(
                            Timer::NodeStatus(name.clone()),
                            now + timings.node_status_update_frequency,
                        );
                    }
                    Err(f) => {
                        failed("node registration", &done.key, &f);
                        self.timers
                            .set(Timer::Write(done.key.clone()), now + RETRY_AFTER);
                    }
                }
            }
            (WriteKey::Lease(name), Outcome::Lease(result)) => {
                let result = *result;
                let agent = self.nodes.get_mut(name);
                match result {
                    Ok(lease) => {
                        FleetStats::bump(&stats.lease_renewals);
                        if let Some(agent) = agent {
                            agent.lease = Some(lease);
                        }
                        self.timers.set(
                            Timer::Lease(name.clone()),
                            now + timings.lease_renew_interval,
                        );
                    }
                    Err(f) => {
                        failed("lease renewal", &done.key, &f);
                        if let Some(agent) = agent {
                            agent.lease = None;
                        }
                        self.timers.set(
                            Timer::Lease(name.clone()),
                            now + RETRY_AFTER.min(timings.lease_renew_interval),
                        );
                    }
                }
            }
            (WriteKey::NodeStatus(name), Outcome::Written(result, _)) => match result {
                Ok(()) => {
                    FleetStats::bump(&stats.node_status_writes);
                    if let Some(agent) = self.nodes.get_mut(name) {
                        agent.reported(now);
                    }
                }
                Err(f) => {
                    failed("node status update", &done.key, &f);
                    self.timers
                        .set(Timer::Write(done.key.clone()), now + RETRY_AFTER);
                }
            },
            (WriteKey::Pod(uid), Outcome::Written(result, status)) => match result {
                Ok(()) => {
                    FleetStats::bump(&stats.pod_status_writes);
                    if let Some(entry) = self.pods.get_mut(uid) {
                        entry.last_written = status;
                    }
                    // More may be due: a newer status, or the final delete.
                    self.enqueue(done.key.clone());
                }
                Err(f) if f.is(404) => {
                    if let Some(entry) = self.pods.get_mut(uid) {
                        entry.gone = true;
                    }
                }
                Err(f) => {
                    failed("pod status update", &done.key, &f);
                    self.timers
                        .set(Timer::Write(done.key.clone()), now + RETRY_AFTER);
                }
            },
            (WriteKey::Pod(uid), Outcome::Deleted(result)) => match result {
                Ok(()) => {
                    FleetStats::bump(&stats.pods_deleted);
                    if let Some(entry) = self.pods.get_mut(uid) {
                        entry.deleted = true;
                    }
                }
                Err(f) => {
                    failed("pod delete", &done.key, &f);
                    self.timers
                        .set(Timer::Write(done.key.clone()), now + RETRY_AFTER);
                }
            },
            (key, _) => tracing::warn!(?key, "unexpected write outcome"),
        }
        if self.redo.remove(&done.key) {
            self.enqueue(done.key);
        }
    }
}

/// What one pod uses of the resource `met` is about, for ranking and the eviction message.
fn candidate(
    uid: &str,
    worker: &PodWorker,
    rt: &dyn Runtime,
    met: &eviction::Met,
    now: Instant,
) -> eviction::Candidate {
    let pod = worker.pod();
    let spec = pod.spec.as_ref();
    let memory = met.threshold.signal == eviction::Signal::MemoryAvailable;
    let containers = worker
        .current_containers()
        .filter_map(|(name, id)| {
            let c = spec?.containers.iter().find(|c| c.name == name)?;
            let usage = if memory {
                rt.usage(id, now)?.memory_bytes
            } else {
                // The sim keeps no per-container disk or process counts.
                0
            };
            let request = c
                .resources
                .as_ref()
                .and_then(|r| r.requests.as_ref())
                .and_then(|r| r.get(met.threshold.signal.resource()))
                .and_then(|q| crate::resources::quantity::Quantity::parse(&q.0).ok())
                .map_or(0, |q| q.value().clamp(0, i64::MAX as i128) as i64);
            Some(eviction::ContainerUse {
                name: name.to_string(),
                usage,
                request,
            })
        })
        .collect();
    eviction::Candidate {
        uid: uid.to_string(),
        priority: spec.and_then(|s| s.priority).unwrap_or(0),
        critical: false,
        containers,
    }
}

/// Gives back what an admitted pod held on its node.
fn release(agent: &mut NodeAgent, entry: &PodEntry) {
    if entry.counted {
        agent.requested.sub(&entry.requests);
        agent.pod_count = agent.pod_count.saturating_sub(1);
    }
    if let Some(ip) = entry.ip {
        agent.ips.release(ip);
    }
}

/// The next summary request, or never when the fleet answers none.
async fn next_query(queries: &mut Option<mpsc::Receiver<SummaryQuery>>) -> Option<SummaryQuery> {
    match queries {
        Some(rx) => rx.recv().await,
        None => futures::future::pending().await,
    }
}

async fn next_wakeup(rx: &mut Option<mpsc::UnboundedReceiver<String>>) -> Option<String> {
    match rx {
        Some(rx) => rx.recv().await,
        None => futures::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => futures::future::pending().await,
    }
}

fn spawn_watch<K>(
    api: kube::Api<K>,
    cfg: watcher::Config,
    tx: mpsc::Sender<Input>,
    wrap: fn(Event<K>) -> Input,
) -> JoinHandle<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    tokio::spawn(async move {
        let mut stream = watcher::watcher(api, cfg).default_backoff().boxed();
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(ev) => {
                    if tx.send(wrap(ev)).await.is_err() {
                        break;
                    }
                }
                Err(e) => tracing::debug!(error = %e, "node fleet watch error; retrying"),
            }
        }
    })
}
