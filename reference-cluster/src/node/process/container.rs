//! One container attempt as a task: build its environment and volumes, start the process,
//! copy its output into the log file and the fleet's log store, probe it, stop it (preStop
//! hook, SIGTERM to its process group, SIGKILL at the deadline) and report its exit.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, LifecycleHandler, Pod, Probe};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::cgroup::{ContainerCgroup, Limits};
use super::env::{build, expand, EnvContext};
use super::exec::Target;
use super::images::{ImageRule, ImageSource};
use super::launch::{self, start_error_message, Launch, Namespaces, Resolver};
use super::logfile::LogFile;
use super::probes::{self, ProbeOutcome};
use super::rootfs;
use super::volumes::{self, VolumeContext};
use super::{allocatable, Ctx};
use crate::node::clock::seconds;
use crate::node::events::WARNING;
use crate::node::logs::LogKey;
use crate::node::runtime::{ContainerKind, ContainerState, Exit, ProbeFailure, ProbeKind, Usage};

/// What the runtime asks of a container task.
#[derive(Debug)]
pub enum Control {
    /// preStop hook, SIGTERM, SIGKILL after `grace`.
    Stop { grace: Duration },
    /// Kill at once and forget (the agent removed the container or the pod).
    Remove,
    /// The liveness or startup probe failed for good: restart it.
    ProbeKill,
}

/// What the runtime reads of a container; the task writes it.
pub struct Shared {
    pub state: ContainerState,
    pub pid: Option<i32>,
    pub started_wall: Option<std::time::Instant>,
    /// Failed probes, oldest first, for the agent's `Unhealthy` events.
    pub failures: Vec<(Instant, ProbeFailure)>,
    /// The process has been reaped: its pid may be reused, never signal it again.
    pub exited: bool,
    /// A stop has begun; probes stop too.
    pub stopping: bool,
    /// The container's cgroup while it runs, for usage.
    pub cgroup: Option<Arc<ContainerCgroup>>,
}

impl Shared {
    pub fn new(state: ContainerState) -> Shared {
        Shared {
            state,
            pid: None,
            started_wall: None,
            failures: Vec::new(),
            exited: false,
            stopping: false,
            cgroup: None,
        }
    }
}

/// How many probe failures are kept per attempt (the agent reads them as they come).
const MAX_FAILURES: usize = 64;

/// `<root>/pods/<namespace>_<name>_<uid>`, like `/var/log/pods`.
pub fn pod_dir(root: &Path, pod: &Pod) -> PathBuf {
    let m = &pod.metadata;
    root.join("pods").join(format!(
        "{}_{}_{}",
        m.namespace.as_deref().unwrap_or("default"),
        m.name.as_deref().unwrap_or(""),
        m.uid.as_deref().unwrap_or("")
    ))
}

pub fn remove_pod_dir(root: &Path, uid: &str) {
    let Ok(entries) = std::fs::read_dir(root.join("pods")) else {
        return;
    };
    let suffix = format!("_{uid}");
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().ends_with(&suffix) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Memory (resident set) and average CPU of a running process, from `/proc`.
pub fn usage_of(pid: i32, started: std::time::Instant) -> Option<Usage> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: i64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .unwrap_or(4096);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which may hold spaces, closed by the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: i64 = f.get(11)?.parse::<i64>().ok()? + f.get(12)?.parse::<i64>().ok()?;
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100)
        .max(1);
    let elapsed = started.elapsed().as_secs_f64().max(0.001);
    let cpu_milli = ((ticks as f64 / hz as f64) / elapsed * 1000.0) as i64;
    Some(Usage {
        cpu_milli,
        memory_bytes: pages * page,
    })
}

pub(crate) struct Task {
    pub ctx: Arc<Ctx>,
    pub id: String,
    pub node: String,
    pub pod: Arc<Pod>,
    pub container: Container,
    pub kind: ContainerKind,
    pub attempt: u32,
    pub rule: ImageRule,
    pub resolver: Resolver,
    pub pod_ip: Option<String>,
    pub shared: Arc<Mutex<Shared>>,
}

/// How preparation ended early.
enum Early {
    /// The attempt ends without running, with this exit.
    Exit(Exit),
    /// Stopped or removed before it ran.
    Stopped,
}

impl Task {
    fn uid(&self) -> String {
        self.pod.metadata.uid.clone().unwrap_or_default()
    }

    fn set(&self, state: ContainerState) {
        self.shared.lock().state = state;
        let _ = self.ctx.wake.send(self.uid());
    }

    fn host_ip(&self) -> String {
        self.ctx
            .nodes
            .get(&self.node)
            .map(|n| n.internal_ip.to_string())
            .unwrap_or_else(|| "127.0.0.1".into())
    }

    pub async fn run(self, mut control: mpsc::UnboundedReceiver<Control>) {
        let prepared = tokio::select! {
            p = self.prepare() => p,
            c = control.recv() => {
                let _ = c;
                Err(Early::Stopped)
            }
        };
        let (launch, targets, env, cwd) = match prepared {
            Ok(p) => p,
            Err(Early::Exit(exit)) => {
                self.set(ContainerState::Exited(exit));
                return;
            }
            Err(Early::Stopped) => {
                let now = Instant::now();
                self.set(ContainerState::Exited(Exit {
                    exit_code: 137,
                    reason: "Error".into(),
                    message: None,
                    started_at: None,
                    finished_at: now,
                }));
                return;
            }
        };
        self.run_process(launch, targets, env, cwd, control).await;
    }

    /// Environment, volumes, mounts and the executable; errors are the attempt's end.
    async fn prepare(
        &self,
    ) -> Result<(Launch, Vec<PathBuf>, Vec<(String, String)>, Option<String>), Early> {
        let c = &self.container;
        let dir = pod_dir(&self.ctx.cfg.root, &self.pod);
        let alloc = allocatable(&self.ctx, &self.node);
        let mut image_env = Vec::new();
        if !self.rule.env.iter().any(|(k, _)| k == "PATH") {
            image_env.push(("PATH".to_string(), self.resolver.image_path()));
        }
        image_env.extend(self.rule.env.iter().cloned());
        image_env.push((
            "HOSTNAME".to_string(),
            self.pod.metadata.name.clone().unwrap_or_default(),
        ));
        let cx = EnvContext {
            pod: &self.pod,
            pod_ip: self.pod_ip.clone(),
            host_ip: self.host_ip(),
            node_allocatable: alloc,
        };
        let never_ran = |reason: &str, message: String| {
            Early::Exit(Exit {
                exit_code: 128,
                reason: reason.to_string(),
                message: Some(message),
                started_at: None,
                finished_at: Instant::now(),
            })
        };
        let client = self.ctx.client_of(&self.node);
        let env = build(client, &cx, c, &image_env)
            .await
            .map_err(|m| never_ran("CreateContainerConfigError", m))?;
        let image_root = match &self.resolver.source {
            ImageSource::RootFs { dir } => Some(dir.clone()),
            _ => None,
        };
        if let Some(dir) = image_root.as_ref().filter(|_| !self.ctx.namespaces) {
            // Running it on the host's files instead would silently test something else.
            return Err(never_ran(
                "CreateContainerError",
                format!(
                    "failed to create containerd container: image {:?} has its own root file system ({}), which needs mount namespaces, and this node cannot create them: run the node agent as root with CAP_SYS_ADMIN (see PROCESS.md)",
                    self.container.image.as_deref().unwrap_or(""),
                    dir.display()
                ),
            ));
        }
        // A volume that cannot be set up keeps the container waiting (ContainerCreating) and
        // is tried again, with a FailedMount event each time, as upstream.
        let vcx = VolumeContext {
            client,
            pod: &self.pod,
            pod_dir: &dir,
            pod_ip: self.pod_ip.clone(),
            host_ip: self.host_ip(),
            node_allocatable: alloc,
        };
        let volumes = loop {
            match volumes::prepare(&vcx).await {
                Ok(v) => break v,
                Err(message) => {
                    self.ctx.events.lock().pod_event(
                        &self.node,
                        &self.pod,
                        None,
                        WARNING,
                        "FailedMount",
                        || message.clone(),
                    );
                    tokio::time::sleep(self.ctx.cfg.mount_retry).await;
                }
            }
        };
        let mounts = volumes::mounts_for(c, &volumes, |s| expand(s, &env))
            .map_err(|m| never_ran("CreateContainerConfigError", m))?;
        let (program_name, args) = command_line(c, &self.rule);
        let Some(program_name) = program_name else {
            return Err(never_ran(
                "StartError",
                start_error_message("no command specified"),
            ));
        };
        let program_name = expand(&program_name, &env);
        let args: Vec<String> = args.iter().map(|a| expand(a, &env)).collect();
        let path = env.get("PATH").unwrap_or("").to_string();
        let program = self
            .resolver
            .resolve(&program_name, &path)
            .map_err(|m| never_ran("StartError", start_error_message(&m)))?;
        let cwd = c
            .working_dir
            .clone()
            .or_else(|| self.rule.working_dir.clone())
            .filter(|w| !w.is_empty());
        let mut created = Vec::new();
        let namespaces = if let Some(image) = image_root {
            let plan = self
                .root_plan(&image, &dir)
                .map_err(|m| never_ran("CreateContainerError", m))?;
            Namespaces::New {
                mounts,
                hostname: self.pod.metadata.name.clone().unwrap_or_default(),
                root: Some(plan),
            }
        } else if self.ctx.namespaces {
            created = launch::make_targets(&mounts);
            Namespaces::New {
                mounts,
                hostname: self.pod.metadata.name.clone().unwrap_or_default(),
                root: None,
            }
        } else {
            // Without mount namespaces a volume can only appear where nothing is yet.
            for m in &mounts {
                let t = Path::new(&m.target);
                if std::fs::symlink_metadata(t).is_err() {
                    if let Some(p) = t.parent() {
                        let _ = std::fs::create_dir_all(p);
                    }
                    if std::os::unix::fs::symlink(&m.source, t).is_ok() {
                        created.push(t.to_path_buf());
                    }
                }
            }
            Namespaces::Host
        };
        let own_root = matches!(&namespaces, Namespaces::New { root: Some(_), .. });
        if let Some(w) = cwd.as_ref().filter(|_| !own_root) {
            if !Path::new(w).exists() {
                let _ = std::fs::create_dir_all(w);
            }
        }
        Ok((
            Launch {
                program,
                argv0: program_name,
                args,
                env: env.0.clone(),
                cwd: cwd.clone(),
                namespaces,
                stdin: Stdio::null(),
                stdout: Stdio::piped(),
                stderr: Stdio::piped(),
                controlling_tty: false,
                cgroup: None,
            },
            created,
            env.0,
            cwd,
        ))
    }

    /// This attempt's writable layer: `<pod dir>/<container>/rootfs-<attempt>`.
    fn layer_dir(&self) -> PathBuf {
        pod_dir(&self.ctx.cfg.root, &self.pod)
            .join(&self.container.name)
            .join(format!("rootfs-{}", self.attempt))
    }

    /// Removes this attempt's writable layer (in the background: a copy may be large); the
    /// next attempt starts from the image again, as a new container does.
    fn drop_layer(&self) {
        if matches!(self.resolver.source, ImageSource::RootFs { .. }) {
            let dir = self.layer_dir();
            tokio::task::spawn_blocking(move || {
                let _ = std::fs::remove_dir_all(dir);
            });
        }
    }

    /// The root of an attempt of an image rooted at `image`: a fresh writable layer and the
    /// kubelet's `/etc` files, written into the pod directory `dir`.
    fn root_plan(&self, image: &Path, dir: &Path) -> Result<rootfs::RootPlan, String> {
        if !image.is_dir() {
            return Err(format!(
                "failed to create containerd container: the root file system {} of image {:?} is not a directory: fix the image table",
                image.display(),
                self.container.image.as_deref().unwrap_or("")
            ));
        }
        let layer =
            rootfs::Layer::create(image, &self.layer_dir(), self.ctx.overlay).map_err(|e| {
                format!(
                    "failed to create containerd container: cannot make the writable layer {}: {e}",
                    self.layer_dir().display()
                )
            })?;
        let files = rootfs::etc_files(&self.pod, dir, self.pod_ip.as_deref()).map_err(|e| {
            format!(
                "failed to create containerd container: cannot write /etc/hosts, /etc/hostname and /etc/resolv.conf under {}: {e}",
                dir.display()
            )
        })?;
        let read_only = self
            .container
            .security_context
            .as_ref()
            .and_then(|s| s.read_only_root_filesystem)
            .unwrap_or(false);
        Ok(rootfs::RootPlan {
            image: image.to_path_buf(),
            layer,
            files,
            read_only,
        })
    }

    /// The resolver exec sessions, probes and hooks use: a root-file-system image's
    /// executables are found in the running container's root (its writable layer included).
    fn resolver_for(&self, pid: i32) -> Resolver {
        match &self.resolver.source {
            ImageSource::RootFs { .. } => Resolver {
                source: ImageSource::RootFs {
                    dir: PathBuf::from(format!("/proc/{pid}/root")),
                },
                applets: None,
            },
            _ => self.resolver.clone(),
        }
    }

    fn log_key(&self) -> LogKey {
        LogKey {
            namespace: self.pod.metadata.namespace.clone().unwrap_or_default(),
            pod: self.pod.metadata.name.clone().unwrap_or_default(),
            container: self.container.name.clone(),
        }
    }

    async fn run_process(
        self,
        mut launch: Launch,
        created: Vec<PathBuf>,
        env: Vec<(String, String)>,
        cwd: Option<String>,
        mut control: mpsc::UnboundedReceiver<Control>,
    ) {
        let joins_namespaces = matches!(launch.namespaces, Namespaces::New { .. });
        let cgroup = match &self.ctx.cgroups {
            Some(cgroups) => {
                let limits = Limits::of(&self.container, cgroups.period());
                match cgroups.create(&self.uid(), &self.id, &limits) {
                    Ok(cg) => Some(Arc::new(cg)),
                    Err(m) => {
                        launch::remove_targets(&created);
                        self.drop_layer();
                        self.set(ContainerState::Exited(Exit {
                            exit_code: 128,
                            reason: "StartError".into(),
                            message: Some(start_error_message(&m)),
                            started_at: None,
                            finished_at: Instant::now(),
                        }));
                        return;
                    }
                }
            }
            None => None,
        };
        launch.cgroup = cgroup.clone();
        // The container's own stdin (pipe or pty) is kept by the runtime for `attach`.
        let spawned = super::stdio::plan(&self.container).and_then(|(plan, io)| {
            io.apply(&mut launch);
            launch::spawn(launch).map(|child| (plan, child))
        });
        let (stdio_plan, mut child) = match spawned {
            Ok(c) => c,
            Err(e) => {
                launch::remove_targets(&created);
                self.drop_layer();
                if let Some(cg) = cgroup {
                    cg.remove().await;
                }
                self.set(ContainerState::Exited(Exit {
                    exit_code: 128,
                    reason: "StartError".into(),
                    message: Some(start_error_message(&e.to_string())),
                    started_at: None,
                    finished_at: Instant::now(),
                }));
                return;
            }
        };
        let started_at = Instant::now();
        let pid = child.id().map(|p| p as i32).unwrap_or(0);
        let uid = self.uid();
        let key = self.log_key();
        self.ctx
            .logs
            .begin_live(key.clone(), &uid, &self.id, self.attempt);
        let log_path = pod_dir(&self.ctx.cfg.root, &self.pod)
            .join(&self.container.name)
            .join(format!("{}.log", self.attempt));
        let file = LogFile::open(&log_path, self.ctx.cfg.log_max_bytes, self.ctx.cfg.log_max_files)
            .map_err(|e| tracing::warn!(path = %log_path.display(), error = %e, "cannot write a container log file"))
            .ok();
        let file = Arc::new(Mutex::new(file));
        let (readers, stdio) = super::stdio::start(
            stdio_plan,
            &mut child,
            super::stdio::Owner {
                ctx: self.ctx.clone(),
                id: self.id.clone(),
                pod_uid: uid.clone(),
                pid,
                file: file.clone(),
            },
        );
        self.ctx.stdio.insert(&key, stdio);
        self.ctx.targets.insert(
            &key,
            Target {
                pod_uid: uid.clone(),
                pid,
                env: env.clone(),
                cwd: cwd.clone(),
                resolver: self.resolver_for(pid),
                namespaces: joins_namespaces,
                pod_ip: self.pod_ip.clone(),
                cgroup: cgroup.clone(),
            },
        );
        let c = &self.container;
        let has_startup = c.startup_probe.is_some();
        let has_readiness = c.readiness_probe.is_some();
        {
            let mut s = self.shared.lock();
            s.pid = Some(pid);
            s.started_wall = Some(std::time::Instant::now());
            s.cgroup = cgroup.clone();
        }
        let (probe_kill_tx, mut probe_kill_rx) = mpsc::unbounded_channel::<()>();
        let hook_cx = probes::ExecContext {
            pid,
            env: env.clone(),
            cwd: cwd.clone(),
            resolver: self.resolver_for(pid),
            namespaces: joins_namespaces,
            pod_ip: self.pod_ip.clone(),
            container: c.clone(),
            cgroup: cgroup.clone(),
        };
        // postStart runs before the container counts as running; its failure kills it.
        let post_start = c.lifecycle.as_ref().and_then(|l| l.post_start.clone());
        let mut post_start_failed = None;
        if let Some(h) = post_start {
            let deadline = Instant::now() + Duration::from_secs(30 * 60);
            if let Err(m) = probes::run_hook(&hook_cx, &h, deadline).await {
                post_start_failed = Some(m);
            }
        }
        self.set(ContainerState::Running {
            started_at,
            started: !has_startup,
            ready: !has_startup && !has_readiness,
        });
        let probe_task = tokio::spawn(probe_loop(
            self.shared.clone(),
            self.ctx.clone(),
            uid.clone(),
            hook_cx.clone(),
            started_at,
            probe_kill_tx,
        ));
        let pod_grace = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds)
            .unwrap_or(30);
        let mut stopper: Option<tokio::task::JoinHandle<()>> = None;
        let mut shortened: Vec<tokio::task::JoinHandle<()>> = Vec::new();
        if let Some(m) = post_start_failed {
            tracing::debug!(pod = ?self.pod.metadata.name, container = %c.name, "postStart hook failed: {m}");
            self.ctx.events.lock().pod_event(
                &self.node,
                &self.pod,
                Some(&c.name),
                WARNING,
                "FailedPostStartHook",
                || m.clone(),
            );
            stopper = Some(self.begin_stop(pid, seconds(pod_grace), &hook_cx, false));
        }
        let status = loop {
            tokio::select! {
                s = child.wait() => break s,
                c = control.recv() => match c {
                    Some(Control::Stop { grace }) => match stopper {
                        None => stopper = Some(self.begin_stop(pid, grace, &hook_cx, true)),
                        // A later, shorter grace period (a second delete) only brings the
                        // SIGKILL forward; the hook and SIGTERM already happened.
                        Some(_) => {
                            let shared = self.shared.clone();
                            shortened.push(tokio::spawn(async move {
                                tokio::time::sleep(grace).await;
                                signal_group(&shared, pid, Signal::SIGKILL);
                            }));
                        }
                    },
                    Some(Control::ProbeKill) => {}
                    Some(Control::Remove) | None => {
                        signal_group(&self.shared, pid, Signal::SIGKILL);
                    }
                },
                Some(()) = probe_kill_rx.recv() => {
                    if stopper.is_none() {
                        let grace = probe_grace(c).unwrap_or(pod_grace);
                        stopper = Some(self.begin_stop(pid, seconds(grace), &hook_cx, true));
                    }
                }
            }
        };
        // Whatever else the container started dies with it, as with a pid namespace.
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        if let Some(cg) = &cgroup {
            cg.kill_all();
        }
        let finished_at = Instant::now();
        probe_task.abort();
        for s in stopper.into_iter().chain(shortened) {
            s.abort();
        }
        for r in readers {
            let _ = tokio::time::timeout(Duration::from_secs(2), r).await;
        }
        self.ctx.logs.end_live(&self.id);
        self.ctx.targets.remove(&key, pid);
        self.ctx.stdio.remove(&key, pid);
        launch::remove_targets(&created);
        self.drop_layer();
        let code = match status {
            Ok(s) => launch::exit_code(s),
            Err(_) => 137,
        };
        {
            let mut s = self.shared.lock();
            s.exited = true;
            s.cgroup = None;
        }
        // Any OOM kill in the container's cgroup makes the reason OOMKilled, whichever
        // process it hit and however the main process ended, as containerd reports it.
        let oom_killed = cgroup.as_ref().is_some_and(|cg| cg.oom_kills() > 0);
        let reason = if oom_killed {
            "OOMKilled"
        } else if code == 0 {
            "Completed"
        } else {
            "Error"
        };
        self.set(ContainerState::Exited(Exit {
            exit_code: code,
            reason: reason.into(),
            message: None,
            started_at: Some(started_at),
            finished_at,
        }));
        if let Some(cg) = cgroup {
            cg.remove().await;
        }
        // A sidecar or init kind changes nothing here; the agent decides what comes next.
        let _ = self.kind;
        // Keep reading controls until the runtime forgets the container, so late stops do
        // not fail.
        while let Some(c) = control.recv().await {
            if matches!(c, Control::Remove) {
                break;
            }
        }
    }

    /// preStop hook (when `hook`), SIGTERM to the group, SIGKILL once `grace` is over.
    fn begin_stop(
        &self,
        pid: i32,
        grace: Duration,
        cx: &probes::ExecContext,
        hook: bool,
    ) -> tokio::task::JoinHandle<()> {
        let shared = self.shared.clone();
        shared.lock().stopping = true;
        let cx = cx.clone();
        let pre_stop = hook
            .then(|| {
                self.container
                    .lifecycle
                    .as_ref()
                    .and_then(|l| l.pre_stop.clone())
            })
            .flatten();
        let events = self.ctx.events.lock().clone();
        let (node, pod, name) = (
            self.node.clone(),
            self.pod.clone(),
            self.container.name.clone(),
        );
        tokio::spawn(async move {
            let deadline = Instant::now() + grace;
            if let Some(h) = pre_stop {
                if let Err(m) = run_pre_stop(&cx, &h, deadline).await {
                    events.pod_event(
                        &node,
                        &pod,
                        Some(&name),
                        WARNING,
                        "FailedPreStopHook",
                        || format!("PreStopHook failed: {m}"),
                    );
                }
            }
            signal_group(&shared, pid, Signal::SIGTERM);
            tokio::time::sleep_until(deadline).await;
            signal_group(&shared, pid, Signal::SIGKILL);
        })
    }
}

async fn run_pre_stop(
    cx: &probes::ExecContext,
    h: &LifecycleHandler,
    deadline: Instant,
) -> Result<(), String> {
    match tokio::time::timeout_at(deadline, probes::run_hook(cx, h, deadline)).await {
        Ok(r) => r,
        Err(_) => Err("the hook did not finish within the grace period".into()),
    }
}

/// `terminationGracePeriodSeconds` of the liveness or startup probe, when set.
fn probe_grace(c: &Container) -> Option<i64> {
    c.liveness_probe
        .as_ref()
        .and_then(|p| p.termination_grace_period_seconds)
        .or_else(|| {
            c.startup_probe
                .as_ref()
                .and_then(|p| p.termination_grace_period_seconds)
        })
}

/// Signals the container's process group unless it has already been reaped.
fn signal_group(shared: &Mutex<Shared>, pid: i32, sig: Signal) {
    let s = shared.lock();
    if !s.exited && pid > 0 {
        let _ = killpg(Pid::from_raw(pid), sig);
    }
}

/// The command and args a container runs: its own, else the image's entrypoint and cmd
/// (a container `command` drops the image's cmd, as upstream).
pub fn command_line(c: &Container, rule: &ImageRule) -> (Option<String>, Vec<String>) {
    let command = c.command.clone().filter(|v| !v.is_empty());
    let args = c.args.clone().filter(|v| !v.is_empty());
    let mut line: Vec<String> = match (command, args) {
        (Some(cmd), Some(args)) => cmd.into_iter().chain(args).collect(),
        (Some(cmd), None) => cmd,
        (None, Some(args)) => rule.entrypoint.iter().cloned().chain(args).collect(),
        (None, None) => rule
            .entrypoint
            .iter()
            .chain(rule.cmd.iter())
            .cloned()
            .collect(),
    };
    if line.is_empty() {
        return (None, Vec::new());
    }
    let program = line.remove(0);
    (Some(program), line)
}

/// One probe's schedule and counters.
struct ProbeRun {
    kind: ProbeKind,
    probe: Probe,
    next: Instant,
    successes: i32,
    failures: i32,
}

impl ProbeRun {
    fn new(kind: ProbeKind, probe: Probe, start: Instant) -> ProbeRun {
        let delay = probe.initial_delay_seconds.unwrap_or(0).max(0);
        ProbeRun {
            kind,
            next: start + seconds(i64::from(delay)),
            probe,
            successes: 0,
            failures: 0,
        }
    }

    fn period(&self) -> Duration {
        seconds(i64::from(self.probe.period_seconds.unwrap_or(10).max(1)))
    }
}

/// Runs the startup, then liveness and readiness probes on their periods; updates `started`
/// and `ready`, records failures, and asks for a restart when liveness or startup gives up.
async fn probe_loop(
    shared: Arc<Mutex<Shared>>,
    ctx: Arc<Ctx>,
    uid: String,
    cx: probes::ExecContext,
    start: Instant,
    kill: mpsc::UnboundedSender<()>,
) {
    let c = cx.container.clone();
    let mut startup = c
        .startup_probe
        .clone()
        .map(|p| ProbeRun::new(ProbeKind::Startup, p, start));
    let mut others: Vec<ProbeRun> = Vec::new();
    let mut started = startup.is_none();
    let begin_others = |at: Instant| {
        let mut v = Vec::new();
        if let Some(p) = c.liveness_probe.clone() {
            v.push(ProbeRun::new(ProbeKind::Liveness, p, at));
        }
        if let Some(p) = c.readiness_probe.clone() {
            v.push(ProbeRun::new(ProbeKind::Readiness, p, at));
        }
        v
    };
    if started {
        others = begin_others(start);
    }
    loop {
        let next = match (&startup, started) {
            (Some(s), false) => Some(s.next),
            _ => others.iter().map(|p| p.next).min(),
        };
        let Some(next) = next else {
            return;
        };
        tokio::time::sleep_until(next).await;
        if shared.lock().stopping {
            return;
        }
        let now = Instant::now();
        let runs: Vec<&mut ProbeRun> = if !started {
            startup.iter_mut().collect()
        } else {
            others.iter_mut().filter(|p| p.next <= now).collect()
        };
        let mut changed = false;
        for p in runs {
            let timeout = seconds(i64::from(p.probe.timeout_seconds.unwrap_or(1).max(1)));
            let outcome = probes::run_probe(&cx, &p.probe, timeout).await;
            let after = Instant::now();
            p.next = after + p.period();
            if let ProbeOutcome::Warning(output) = &outcome {
                let mut s = shared.lock();
                s.failures.push((
                    after,
                    ProbeFailure {
                        kind: p.kind,
                        output: output.clone(),
                        kills: false,
                        warning: true,
                    },
                ));
                if s.failures.len() > MAX_FAILURES {
                    s.failures.remove(0);
                }
            }
            match outcome {
                // A warning counts as a success (upstream's prober returns `results.Success`).
                ProbeOutcome::Success | ProbeOutcome::Warning(_) => {
                    p.failures = 0;
                    p.successes += 1;
                    let needed = p.probe.success_threshold.unwrap_or(1).max(1);
                    if p.successes >= needed {
                        match p.kind {
                            ProbeKind::Startup if !started => {
                                started = true;
                                changed = true;
                            }
                            ProbeKind::Readiness => {
                                let mut s = shared.lock();
                                if let ContainerState::Running { ready, .. } = &mut s.state {
                                    if !*ready {
                                        *ready = true;
                                        changed = true;
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                }
                ProbeOutcome::Failure(output) => {
                    p.successes = 0;
                    p.failures += 1;
                    let threshold = p.probe.failure_threshold.unwrap_or(3).max(1);
                    let gives_up = p.failures >= threshold;
                    let kills = gives_up && p.kind != ProbeKind::Readiness;
                    {
                        let mut s = shared.lock();
                        s.failures.push((
                            after,
                            ProbeFailure {
                                kind: p.kind,
                                output,
                                kills,
                                warning: false,
                            },
                        ));
                        if s.failures.len() > MAX_FAILURES {
                            s.failures.remove(0);
                        }
                        if gives_up && p.kind == ProbeKind::Readiness {
                            if let ContainerState::Running { ready, .. } = &mut s.state {
                                if *ready {
                                    *ready = false;
                                }
                            }
                        }
                    }
                    changed = true;
                    if kills {
                        let _ = ctx.wake.send(uid.clone());
                        let _ = kill.send(());
                        return;
                    }
                }
            }
        }
        if started && others.is_empty() && startup.as_ref().is_some_and(|s| s.successes > 0) {
            // The startup probe just passed: the others begin now.
            others = begin_others(Instant::now());
            let mut s = shared.lock();
            if let ContainerState::Running {
                started: st, ready, ..
            } = &mut s.state
            {
                *st = true;
                *ready = c.readiness_probe.is_none();
            }
        }
        if changed {
            let _ = ctx.wake.send(uid.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn command_lines_combine_container_and_image_like_upstream() {
        let rule = ImageRule {
            repository: "r".into(),
            source: ImageSource::Host,
            entrypoint: vec!["ep".into()],
            cmd: vec!["cmd".into()],
            env: vec![],
            working_dir: None,
        };
        let c = |v: serde_json::Value| -> Container { serde_json::from_value(v).unwrap() };
        assert_eq!(
            command_line(&c(json!({"name": "a"})), &rule),
            (Some("ep".into()), vec!["cmd".into()])
        );
        assert_eq!(
            command_line(&c(json!({"name": "a", "args": ["x"]})), &rule),
            (Some("ep".into()), vec!["x".into()])
        );
        assert_eq!(
            command_line(&c(json!({"name": "a", "command": ["sh"]})), &rule),
            (Some("sh".into()), vec![])
        );
        assert_eq!(
            command_line(
                &c(json!({"name": "a", "command": ["sh"], "args": ["-c", "x"]})),
                &rule
            ),
            (Some("sh".into()), vec!["-c".into(), "x".into()])
        );
        let empty = ImageRule {
            entrypoint: vec![],
            cmd: vec![],
            ..rule
        };
        assert_eq!(command_line(&c(json!({"name": "a"})), &empty).0, None);
    }

    #[test]
    fn pod_directories_are_named_like_var_log_pods() {
        let pod: Pod = serde_json::from_value(
            json!({"metadata": {"name": "p", "namespace": "ns", "uid": "u1"}}),
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let d = pod_dir(dir.path(), &pod);
        assert!(d.ends_with("pods/ns_p_u1"));
        std::fs::create_dir_all(d.join("c")).unwrap();
        remove_pod_dir(dir.path(), "u1");
        assert!(!d.exists());
        let me = std::process::id() as i32;
        let u = usage_of(me, std::time::Instant::now() - Duration::from_secs(1)).unwrap();
        assert!(u.memory_bytes > 0);
    }
}
