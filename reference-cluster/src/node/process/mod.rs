#![doc = include_str!("../PROCESS.md")]

pub mod atomic_writer;
pub mod attach;
pub mod cgroup;
pub mod container;
pub mod env;
pub mod exec;
pub mod images;
pub mod launch;
pub mod logfile;
pub mod probes;
mod resync;
pub mod rootfs;
pub mod service_env;
pub mod stdio;
pub mod storage;
pub mod table_file;
pub mod volumes;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::time::Instant;

use self::container::{Control, Shared};
use self::exec::{ExecHandle, Targets};
use self::images::{ImageSource, ImageTable};
use self::launch::Resolver;
use super::config::NodeConfig;
use super::events::EventSink;
use super::logs::LogStore;
use super::runtime::{
    ContainerId, ContainerState, Exit, ProbeFailure, Runtime, StartRequest, Usage,
};
use super::sim::stages::pull_error_message;

pub const RUNTIME_VERSION: &str = "kubeproof-process://0.1.0";
const ID_PREFIX: &str = "kubeproof-process://";

/// How the process runtime runs pods.
#[derive(Clone, Debug, PartialEq)]
pub struct ProcessConfig {
    /// Where pod directories (volumes, logs) and the image table's files go.
    pub root: PathBuf,
    pub images: ImageTable,
    /// Use mount and UTS namespaces (volumes at their `mountPath`, the pod's hostname) when
    /// the host allows; off, volumes are linked at missing mount paths only.
    pub namespaces: bool,
    /// `containerLogMaxSize` (10Mi): a container's log file is rotated beyond it.
    pub log_max_bytes: u64,
    /// `containerLogMaxFiles` (5): rotated files kept per container, the live one included.
    pub log_max_files: usize,
    /// How often a volume that could not be set up is tried again (the kubelet's pod sync).
    pub mount_retry: Duration,
    /// The cgroup (relative to each hierarchy's root) under which containers get their own
    /// for memory and CPU limits, like the kubelet's `kubepods`; `None` runs them without.
    pub cgroup_parent: Option<String>,
    /// `cpuCFSQuotaPeriod` (100ms): the CFS period of CPU limits.
    pub cpu_cfs_quota_period: Duration,
    /// Give containers of root-file-system images an overlayfs writable layer when the kernel
    /// accepts one under `root`; off (or refused), each attempt gets a copy of the image.
    pub rootfs_overlay: bool,
    /// Where clusters on this host claim their pod address ranges (`ipam::claim`), so two
    /// process-runtime clusters never hand out the same addresses; `None` uses the fleet's
    /// `cluster_cidr` unclaimed.
    pub pod_cidr_claims: Option<PathBuf>,
    /// Claim exactly the fleet's `cluster_cidr` (`--pod-cidr`), failing when another cluster
    /// holds it, instead of the first free block.
    pub pod_cidr_fixed: bool,
}

impl ProcessConfig {
    /// Upstream defaults, pods under `root`, the host's busybox if it has one.
    pub fn new(root: impl Into<PathBuf>) -> ProcessConfig {
        ProcessConfig {
            root: root.into(),
            images: ImageTable::detect(),
            namespaces: true,
            log_max_bytes: 10 * 1024 * 1024,
            log_max_files: 5,
            mount_retry: Duration::from_secs(2),
            cgroup_parent: Some("kubeproof".into()),
            cpu_cfs_quota_period: Duration::from_millis(100),
            rootfs_overlay: true,
            pod_cidr_claims: Some(super::ipam::default_claim_dir()),
            pod_cidr_fixed: false,
        }
    }
}

impl Ctx {
    /// The client `node`'s requests go through.
    pub fn client_of(&self, node: &str) -> &kube::Client {
        self.clients.get(node).unwrap_or(&self.client)
    }
}

/// What every container task shares.
pub(crate) struct Ctx {
    /// Each node's client: its requests are made as that node.
    pub clients: HashMap<String, kube::Client>,
    /// The fleet's own client, for a node this runtime was not given.
    pub client: kube::Client,
    pub logs: LogStore,
    pub cfg: ProcessConfig,
    pub namespaces: bool,
    /// Root-file-system images get an overlayfs layer (else a copy per attempt).
    pub overlay: bool,
    pub wake: mpsc::UnboundedSender<String>,
    pub targets: Targets,
    /// Running containers' own stdio, for `attach`.
    pub stdio: stdio::Attachables,
    pub events: Mutex<EventSink>,
    pub nodes: HashMap<String, NodeConfig>,
    /// Where containers' cgroups go; `None` without usable cgroups.
    pub cgroups: Option<Arc<cgroup::Cgroups>>,
}

struct Entry {
    pod_uid: String,
    shared: Arc<Mutex<Shared>>,
    control: mpsc::UnboundedSender<Control>,
}

/// Containers as real processes on this host.
pub struct ProcessRuntime {
    ctx: Arc<Ctx>,
    resolvers: HashMap<String, Resolver>,
    containers: HashMap<ContainerId, Entry>,
    by_pod: HashMap<String, Vec<ContainerId>>,
    pod_ips: HashMap<String, Ipv4Addr>,
    wake_rx: Option<mpsc::UnboundedReceiver<String>>,
    /// `syncFrequency`: how often a pod's API-sourced volumes are rendered again.
    sync_frequency: Duration,
    /// Each pod's volume resync, by pod UID; aborted with the sandbox.
    resyncs: HashMap<String, tokio::task::JoinHandle<()>>,
}

impl ProcessRuntime {
    /// A runtime for `nodes` whose containers log into `logs` and read ConfigMaps, Secrets and
    /// tokens through `client`. Links busybox applets under the root once.
    pub fn new(
        cfg: ProcessConfig,
        client: kube::Client,
        logs: LogStore,
        nodes: &[NodeConfig],
    ) -> anyhow::Result<ProcessRuntime> {
        std::fs::create_dir_all(&cfg.root).map_err(|e| {
            anyhow::anyhow!(
                "the process runtime cannot create its directory {}: {e}",
                cfg.root.display()
            )
        })?;
        let mut resolvers = HashMap::new();
        for rule in &cfg.images.rules {
            let applets = match &rule.source {
                ImageSource::Busybox { binary } => {
                    let dir = cfg.root.join("images").join("busybox-bin");
                    let names = images::install_applets(binary, &dir).map_err(|e| {
                        anyhow::anyhow!(
                            "cannot link the applets of {} for image {}: {e}",
                            binary.display(),
                            rule.repository
                        )
                    })?;
                    Some((dir, names))
                }
                ImageSource::Host | ImageSource::RootFs { .. } => None,
                ImageSource::BusyboxRootFs { .. } => None,
            };
            let source = match &rule.source {
                ImageSource::BusyboxRootFs { binary } => {
                    let dir = cfg.root.join("images").join("busybox-rootfs");
                    rootfs::build_busybox(binary, &dir).map_err(|e| {
                        anyhow::anyhow!(
                            "cannot lay out a busybox root file system from {} in {} for image {}: {e}",
                            binary.display(),
                            dir.display(),
                            rule.repository
                        )
                    })?;
                    ImageSource::RootFs { dir }
                }
                other => other.clone(),
            };
            resolvers.insert(rule.repository.clone(), Resolver { source, applets });
        }
        let namespaces = cfg.namespaces && launch::namespaces_work();
        if cfg.namespaces && !namespaces {
            tracing::warn!("mount namespaces are not available: volumes are linked at missing mount paths only, and images with a root file system fail to create (see PROCESS.md)");
        }
        let overlay = namespaces
            && cfg.rootfs_overlay
            && cfg.images.rules.iter().any(|r| r.source.needs_root())
            && rootfs::overlay_works(&cfg.root.join("images"));
        let cgroups = cfg.cgroup_parent.as_deref().and_then(|parent| {
            match cgroup::Cgroups::new(parent, cfg.cpu_cfs_quota_period) {
                Ok(c) => Some(Arc::new(c)),
                Err(e) => {
                    tracing::warn!(
                        "containers run without memory and CPU limits: {e} (see PROCESS.md)"
                    );
                    None
                }
            }
        });
        let (wake, wake_rx) = mpsc::unbounded_channel();
        Ok(ProcessRuntime {
            ctx: Arc::new(Ctx {
                clients: nodes
                    .iter()
                    .map(|n| (n.name.clone(), super::api::node_client(&client, &n.name)))
                    .collect(),
                client,
                logs,
                cfg,
                namespaces,
                overlay,
                cgroups,
                wake,
                targets: Targets::default(),
                stdio: stdio::Attachables::default(),
                events: Mutex::new(EventSink::disabled()),
                nodes: nodes.iter().map(|n| (n.name.clone(), n.clone())).collect(),
            }),
            resolvers,
            containers: HashMap::new(),
            by_pod: HashMap::new(),
            pod_ips: HashMap::new(),
            wake_rx: Some(wake_rx),
            sync_frequency: Duration::from_secs(60),
            resyncs: HashMap::new(),
        })
    }

    /// Sets `syncFrequency` (upstream's 60s unless set): running pods' ConfigMap, Secret,
    /// downward API and projected volumes are updated on this period.
    pub fn with_sync_frequency(mut self, period: Duration) -> ProcessRuntime {
        self.sync_frequency = period;
        self
    }

    /// What the kubelet server needs to run `exec` in this runtime's containers.
    pub fn exec_handle(&self) -> ExecHandle {
        ExecHandle {
            targets: self.ctx.targets.clone(),
            attach: self.ctx.stdio.clone(),
        }
    }

    /// Whether containers get their own mount namespace.
    pub fn uses_namespaces(&self) -> bool {
        self.ctx.namespaces
    }

    pub fn container_count(&self) -> usize {
        self.containers.len()
    }
}

fn new_id() -> String {
    format!(
        "{ID_PREFIX}{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

fn unknown(now: Instant) -> ContainerState {
    ContainerState::Exited(Exit {
        exit_code: 137,
        reason: "ContainerStatusUnknown".into(),
        message: Some("The container could not be located when the pod was terminated".into()),
        started_at: None,
        finished_at: now,
    })
}

impl Runtime for ProcessRuntime {
    fn version(&self) -> &str {
        RUNTIME_VERSION
    }

    fn run_sandbox(&mut self, node: &str, pod: &Pod, now: Instant) -> Instant {
        let uid = pod.metadata.uid.as_deref().unwrap_or("");
        self.by_pod.entry(uid.to_string()).or_default();
        if !self.resyncs.contains_key(uid) {
            let task = resync::run(
                self.ctx.clone(),
                node.to_string(),
                pod.clone(),
                self.sync_frequency,
            );
            self.resyncs.insert(uid.to_string(), tokio::spawn(task));
        }
        let dir = container::pod_dir(&self.ctx.cfg.root, pod);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot create the pod directory");
        }
        now
    }

    fn remove_sandbox(&mut self, pod_uid: &str) {
        if let Some(t) = self.resyncs.remove(pod_uid) {
            t.abort();
        }
        for id in self.by_pod.remove(pod_uid).unwrap_or_default() {
            if let Some(e) = self.containers.remove(&id) {
                let _ = e.control.send(Control::Remove);
            }
        }
        self.pod_ips.remove(pod_uid);
        self.ctx.logs.remove_pod(pod_uid);
        self.ctx.targets.remove_pod(pod_uid);
        self.ctx.stdio.remove_pod(pod_uid);
        container::remove_pod_dir(&self.ctx.cfg.root, pod_uid);
    }

    fn has_image(&self, _node: &str, image: &str) -> bool {
        self.ctx.cfg.images.resolve(image).is_some()
    }

    fn start_container(&mut self, req: StartRequest<'_>, now: Instant) -> ContainerId {
        let id = new_id();
        let uid = req.pod.metadata.uid.clone().unwrap_or_default();
        let image = req.container.image.clone().unwrap_or_default();
        let rule = self.ctx.cfg.images.resolve(&image).cloned();
        let initial = match &rule {
            Some(_) => ContainerState::Creating,
            None => ContainerState::PullFailed {
                message: pull_error_message(&image),
            },
        };
        let shared = Arc::new(Mutex::new(Shared::new(initial)));
        let (control, control_rx) = mpsc::unbounded_channel();
        if let Some(rule) = rule {
            let resolver = self.resolvers[&rule.repository].clone();
            let pod_ip = self.pod_ips.get(&uid).map(|ip| ip.to_string()).or_else(|| {
                req.pod
                    .status
                    .as_ref()
                    .and_then(|s| s.pod_ip.clone())
                    .filter(|ip| !ip.is_empty())
            });
            let task = container::Task {
                ctx: self.ctx.clone(),
                id: id.clone(),
                node: req.node.to_string(),
                pod: Arc::new(req.pod.clone()),
                container: req.container.clone(),
                kind: req.kind,
                attempt: req.attempt,
                rule,
                resolver,
                pod_ip,
                shared: shared.clone(),
            };
            tokio::spawn(task.run(control_rx));
        } else {
            let _ = self.ctx.wake.send(uid.clone());
        }
        self.by_pod.entry(uid.clone()).or_default().push(id.clone());
        self.containers.insert(
            id.clone(),
            Entry {
                pod_uid: uid,
                shared,
                control,
            },
        );
        let _ = now;
        id
    }

    fn state(&self, id: &str, now: Instant) -> ContainerState {
        match self.containers.get(id) {
            Some(e) => e.shared.lock().state.clone(),
            None => unknown(now),
        }
    }

    fn stop_container(&mut self, id: &str, grace: Duration, _now: Instant) {
        if let Some(e) = self.containers.get(id) {
            let _ = e.control.send(Control::Stop { grace });
        }
    }

    fn remove_container(&mut self, id: &str) {
        if let Some(e) = self.containers.remove(id) {
            let _ = e.control.send(Control::Remove);
            if let Some(ids) = self.by_pod.get_mut(&e.pod_uid) {
                ids.retain(|i| i != id);
            }
        }
    }

    fn image_id(&self, image: &str) -> String {
        let repo = images::repository(image);
        let digest = ring::digest::digest(&ring::digest::SHA256, repo.as_bytes());
        let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        format!("{repo}@sha256:{hex}")
    }

    fn next_change(&self, _id: &str, _now: Instant) -> Option<Instant> {
        // Processes change on their own; the runtime wakes the agent through `take_wakeups`.
        None
    }

    fn usage(&self, id: &str, _now: Instant) -> Option<Usage> {
        let e = self.containers.get(id)?;
        let s = e.shared.lock();
        matches!(s.state, ContainerState::Running { .. }).then_some(())?;
        let (pid, started, cg) = (s.pid?, s.started_wall?, s.cgroup.clone());
        drop(s);
        let by_process = container::usage_of(pid, started);
        let Some(cg) = cg else {
            return by_process;
        };
        // The cgroup counts every process of the container, as the kubelet's cAdvisor does.
        let (memory, cpu_ns) = cg.usage();
        let elapsed = started.elapsed().as_nanos().max(1);
        Some(Usage {
            memory_bytes: match memory {
                Some(m) => m.min(i64::MAX as u64) as i64,
                None => by_process?.memory_bytes,
            },
            cpu_milli: match cpu_ns {
                Some(ns) => (u128::from(ns) * 1000 / elapsed).min(i64::MAX as u128) as i64,
                None => by_process.map_or(0, |u| u.cpu_milli),
            },
        })
    }

    fn probe_failures(&self, id: &str, since: Option<Instant>, now: Instant) -> Vec<ProbeFailure> {
        let Some(e) = self.containers.get(id) else {
            return Vec::new();
        };
        e.shared
            .lock()
            .failures
            .iter()
            .filter(|(at, _)| since.is_none_or(|s| *at > s) && *at <= now)
            .map(|(_, f)| f.clone())
            .collect()
    }

    fn set_pod_ip(&mut self, pod_uid: &str, ip: Ipv4Addr) {
        self.pod_ips.insert(pod_uid.to_string(), ip);
    }

    fn take_wakeups(&mut self) -> Option<mpsc::UnboundedReceiver<String>> {
        self.wake_rx.take()
    }

    fn set_event_sink(&mut self, sink: EventSink) {
        *self.ctx.events.lock() = sink;
    }

    fn storage(
        &self,
        pod: &Pod,
        containers: &[(&str, &ContainerId)],
        _now: Instant,
    ) -> Option<super::local_storage::PodStorage> {
        let names: Vec<&str> = containers.iter().map(|(n, _)| *n).collect();
        let dir = container::pod_dir(&self.ctx.cfg.root, pod);
        Some(storage::measure(&dir, pod, &names))
    }
}

impl Drop for ProcessRuntime {
    /// The fleet is going away: no container outlives it.
    fn drop(&mut self) {
        for t in self.resyncs.values() {
            t.abort();
        }
        for e in self.containers.values() {
            let s = e.shared.lock();
            if let (Some(pid), false) = (s.pid, s.exited) {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        if let Some(c) = &self.ctx.cgroups {
            c.remove_all();
        }
    }
}

/// Applet names of a resolver, for tests and docs.
pub fn applets(r: &Resolver) -> BTreeSet<String> {
    r.applets
        .as_ref()
        .map(|(_, n)| n.clone())
        .unwrap_or_default()
}

/// Node allocatable by node name, for `resourceFieldRef` defaults.
pub(crate) fn allocatable<'a>(ctx: &'a Ctx, node: &str) -> &'a BTreeMap<String, String> {
    static EMPTY: std::sync::OnceLock<BTreeMap<String, String>> = std::sync::OnceLock::new();
    ctx.nodes
        .get(node)
        .map(|n| n.allocatable())
        .unwrap_or_else(|| EMPTY.get_or_init(BTreeMap::new))
}
