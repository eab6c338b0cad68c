//! The reference cluster's scheduler: an API client like kube-scheduler. It watches pods,
//! nodes and the objects its plugins need, keeps pending pods in a scheduling queue, runs the
//! scheduling framework (PreFilter … Bind) with upstream's default plugins, binds through
//! `pods/{name}/binding`, reports `FailedScheduling`/`Scheduled` events and the `PodScheduled`
//! condition, and holds the `kube-system/kube-scheduler` Lease while it acts.
//!
//! Entry point: [`run`] with a [`SchedulerConfig`].

pub mod algorithm;
pub mod api;
pub mod cache;
pub mod config;
pub mod events;
pub mod framework;
pub mod informers;
pub mod metrics;
pub mod nodeinfo;
pub mod parallel;
pub mod plugins;
pub mod podinfo;
pub mod queue;
pub mod resource;
pub mod selector;
pub mod server;
#[cfg(test)]
pub(crate) mod testutil;
pub mod thread;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;

pub use config::{ProfileConfig, DEFAULT_SCHEDULER_NAME};
pub use metrics::SchedulerMetrics;

use crate::leaderelection::{
    default_identity, LeaderElectionConfig, LeaderElectionError, LeaderElector,
};

/// Everything configurable about the scheduler; `Default` has upstream's values.
#[derive(Clone)]
pub struct SchedulerConfig {
    pub profiles: Vec<ProfileConfig>,
    /// Threads for filtering and scoring one pod (upstream default 16), never more than the
    /// CPUs there are; the rest of the cycle runs on the scheduling thread.
    pub parallelism: usize,
    /// 0: adaptive (50% minus 1% per 125 nodes, at least 5%, at least 100 nodes).
    pub percentage_of_nodes_to_score: i32,
    pub pod_initial_backoff: Duration,
    pub pod_max_backoff: Duration,
    /// Unschedulable pods are retried after this long even without a helpful event.
    pub pod_max_in_unschedulable: Duration,
    /// `None`: act at once, without a lease (a single scheduler).
    pub leader_election: Option<LeaderElectionConfig>,
    /// This instance's name in events (`reportingInstance`) and the lease.
    pub identity: String,
    pub metrics: SchedulerMetrics,
    /// API requests in flight at most (bindings, status updates, events).
    pub api_concurrency: usize,
    /// How long an event series stays open without repeats, and how often open series are
    /// written (client-go: 6 and 30 minutes).
    pub event_series: events::SeriesTimings,
    /// The secure port for `/healthz`, `/livez`, `/readyz` and `/metrics` ([`server`]);
    /// upstream's is [`server::UPSTREAM_SECURE_PORT`], the bundled cluster takes any free
    /// port (0) so that several clusters can run side by side. `None` serves nothing.
    pub secure_port: Option<u16>,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        let identity = default_identity();
        SchedulerConfig {
            profiles: vec![ProfileConfig::default()],
            parallelism: 16,
            percentage_of_nodes_to_score: 0,
            pod_initial_backoff: Duration::from_secs(1),
            pod_max_backoff: Duration::from_secs(10),
            pod_max_in_unschedulable: Duration::from_secs(300),
            leader_election: Some(LeaderElectionConfig::new(
                "kube-system",
                "kube-scheduler",
                &identity,
            )),
            identity,
            metrics: SchedulerMetrics::new(),
            api_concurrency: 64,
            event_series: events::SeriesTimings::default(),
            secure_port: Some(0),
        }
    }
}

impl SchedulerConfig {
    /// Short timings for tests: a 2s lease renewed every 250ms, 100ms→1s back-off.
    pub fn for_tests() -> SchedulerConfig {
        let mut c = SchedulerConfig {
            pod_initial_backoff: Duration::from_millis(100),
            pod_max_backoff: Duration::from_secs(1),
            pod_max_in_unschedulable: Duration::from_secs(30),
            ..SchedulerConfig::default()
        };
        if let Some(le) = c.leader_election.as_mut() {
            le.lease_duration = Duration::from_secs(2);
            le.renew_deadline = Duration::from_millis(1500);
            le.retry_period = Duration::from_millis(250);
        }
        c
    }

    /// Reads a `KubeSchedulerConfiguration` file's settings over the defaults.
    pub fn from_yaml(text: &str) -> anyhow::Result<SchedulerConfig> {
        let f = config::SchedulerFile::from_yaml(text).map_err(anyhow::Error::msg)?;
        let mut c = SchedulerConfig {
            profiles: f.profiles,
            parallelism: f.parallelism,
            percentage_of_nodes_to_score: f.percentage_of_nodes_to_score,
            pod_initial_backoff: f.pod_initial_backoff,
            pod_max_backoff: f.pod_max_backoff,
            ..SchedulerConfig::default()
        };
        let le = f.leader_election;
        c.leader_election = le.enabled.then(|| LeaderElectionConfig {
            lease_duration: le.lease_duration,
            renew_deadline: le.renew_deadline,
            retry_period: le.retry_period,
            ..LeaderElectionConfig::new(&le.namespace, &le.name, &c.identity)
        });
        // Validate the plugin configuration now rather than at the first pod.
        for p in &c.profiles {
            plugins::build_framework(p).map_err(anyhow::Error::msg)?;
        }
        Ok(c)
    }

    /// Sets the identity everywhere it is used.
    pub fn with_identity(mut self, identity: &str) -> SchedulerConfig {
        self.identity = identity.to_string();
        if let Some(le) = self.leader_election.as_mut() {
            le.identity = identity.to_string();
        }
        self
    }
}

fn build_profiles(cfg: &SchedulerConfig) -> anyhow::Result<Arc<queue::Profiles>> {
    let mut profiles = HashMap::new();
    for p in &cfg.profiles {
        let mut fwk = plugins::build_framework(p).map_err(anyhow::Error::msg)?;
        fwk.parallelism = cfg.parallelism.max(1);
        profiles.insert(p.scheduler_name.clone(), Arc::new(fwk));
    }
    anyhow::ensure!(
        !profiles.is_empty(),
        "at least one scheduling profile is needed"
    );
    Ok(Arc::new(profiles))
}

/// Runs the scheduler until `shutdown` turns true: leader election first (when configured),
/// then watching and scheduling. Returns an error if leadership is lost, as kube-scheduler
/// exits then.
pub async fn run(
    client: kube::Client,
    cfg: SchedulerConfig,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let profiles = build_profiles(&cfg)?;
    match cfg.leader_election.clone() {
        None => schedule(client, cfg, profiles, shutdown).await,
        Some(le) => {
            let elector = LeaderElector::new(client.clone(), le)?;
            match elector
                .run(shutdown, |stop| schedule(client, cfg, profiles, stop))
                .await
            {
                Ok(()) => Ok(()),
                Err(LeaderElectionError::Leading(e)) => Err(e),
                Err(e) => Err(e.into()),
            }
        }
    }
}

/// Stops the scheduling thread and the watches when dropped, so that a scheduler whose task
/// is cancelled (as a crash would) stops acting at once.
struct Running {
    active: Arc<AtomicBool>,
    tx: std::sync::mpsc::Sender<thread::Msg>,
    stop_tasks: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.active.store(false, Ordering::Release);
        let _ = self.stop_tasks.send(true);
        let _ = self.tx.send(thread::Msg::Stop);
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Watches and schedules until `stop` turns true.
async fn schedule(
    client: kube::Client,
    cfg: SchedulerConfig,
    profiles: Arc<queue::Profiles>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let (tx, rx) = std::sync::mpsc::channel();
    let active = Arc::new(AtomicBool::new(true));
    let rt = tokio::runtime::Handle::current();
    let api = Arc::new(api::ApiClient::new(client.clone(), cfg.api_concurrency));
    // One recorder per profile: events name the profile's scheduler as their reporter.
    let mut recorders = HashMap::new();
    let (stop_tasks, tasks_stop) = watch::channel(false);
    let mut tasks = informers::start(&client, &tx, &tasks_stop);
    for name in profiles.keys() {
        let instance = format!("{name}-{}", cfg.identity);
        let recorder = events::EventRecorder::new(api.clone(), name, &instance, rt.clone());
        tasks.push(tokio::spawn(
            recorder
                .clone()
                .maintain(cfg.event_series, tasks_stop.clone()),
        ));
        recorders.insert(name.clone(), recorder);
    }
    let running = Running {
        active: active.clone(),
        tx: tx.clone(),
        stop_tasks,
        tasks,
    };
    let shared = thread::Shared {
        api,
        events: recorders,
        metrics: cfg.metrics.clone(),
        rt,
        tx,
        active,
    };
    let settings = thread::Settings {
        percentage_of_nodes_to_score: cfg.percentage_of_nodes_to_score,
        queue: queue::QueueConfig {
            initial_backoff: cfg.pod_initial_backoff,
            max_backoff: cfg.pod_max_backoff,
            max_in_unschedulable: cfg.pod_max_in_unschedulable,
        },
    };
    let sched = thread::Scheduler::new(profiles, settings, shared);
    let handle = std::thread::Builder::new()
        .name("kube-scheduler".into())
        .spawn(move || sched.run(rx))
        .context("cannot start the scheduling thread")?;
    let mut thread_done = tokio::task::spawn_blocking(move || handle.join());
    let ended_early = tokio::select! {
        _ = async { while !*stop.borrow() { if stop.changed().await.is_err() { break } } } => false,
        _ = &mut thread_done => true,
    };
    drop(running);
    if !ended_early {
        let _ = thread_done.await;
    }
    anyhow::ensure!(!ended_early, "the scheduling thread stopped unexpectedly");
    Ok(())
}
