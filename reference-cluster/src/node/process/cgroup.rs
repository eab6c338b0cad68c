//! Memory and CPU limits through the host's cgroups, the way runc applies a container's
//! resources for the kubelet: every container gets its own cgroup under
//! `<hierarchy root>/<parent>/run-<agent pid>-<agent start>-<n>/pod<uid>/<container id>`, with
//! the memory limit, the CFS quota and the CPU shares (v1) or weight (v2) of its `resources`.
//! The process joins it between fork and exec, so the limit holds from its first instruction;
//! exec sessions, exec probes and hooks join it too. A container whose cgroup saw an OOM kill
//! ends `OOMKilled`, as containerd reports it.
//!
//! The layout is found at run time: a cgroup v2 hierarchy with the memory controller, else
//! cgroup v1 memory (and cpu, cpuacct) hierarchies, else none (the runtime warns and runs
//! containers without limits). Each runtime owns one `run-…` directory; one left behind by an
//! agent that is gone (its pid no longer runs with the start time in the name) is emptied and
//! removed when the next runtime starts.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Container;

use crate::resources::quantity::Quantity;

/// `cpu.shares` of a container that asks for no CPU (upstream's `MinShares`).
pub const MIN_SHARES: u64 = 2;
/// The largest `cpu.shares` the kernel takes (upstream's `MaxShares`).
pub const MAX_SHARES: u64 = 262_144;
/// Shares per CPU (upstream's `SharesPerCPU`).
const SHARES_PER_CPU: u64 = 1024;
/// The smallest CFS quota, 1 ms (upstream's `MinQuotaPeriod`).
pub const MIN_QUOTA_US: i64 = 1000;

/// The cgroup hierarchies this host offers for memory and CPU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Layout {
    /// The unified hierarchy (cgroup v2) mounted at `root`, with the memory controller and,
    /// when `cpu`, the cpu controller.
    V2 { root: PathBuf, cpu: bool },
    /// Separate hierarchies (cgroup v1): memory, and cpu and cpuacct where mounted (they may
    /// be one mount).
    V1 {
        memory: PathBuf,
        cpu: Option<PathBuf>,
        cpuacct: Option<PathBuf>,
    },
}

/// One cgroup file system mount from `/proc/self/mountinfo`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupMount {
    pub point: PathBuf,
    /// `cgroup` (v1) or `cgroup2`.
    pub fstype: String,
    /// Super block options: the controllers of a v1 hierarchy.
    pub options: Vec<String>,
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let oct = &b[i + 1..i + 4];
            if oct.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let v = oct
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                out.push(v as u8);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The cgroup and cgroup2 mounts listed in a mountinfo text; other lines are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<CgroupMount> {
    let mut mounts = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        let (Some(point), Some(fstype)) = (left.get(4), right.first()) else {
            continue;
        };
        if *fstype != "cgroup" && *fstype != "cgroup2" {
            continue;
        }
        mounts.push(CgroupMount {
            point: PathBuf::from(unescape(point)),
            fstype: fstype.to_string(),
            options: right
                .get(2)
                .map(|o| o.split(',').map(str::to_string).collect())
                .unwrap_or_default(),
        });
    }
    mounts
}

impl Layout {
    /// The layout of this host, or why there is none.
    pub fn detect() -> Result<Layout, String> {
        let text = fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
        Layout::from_mounts(&parse_mountinfo(&text), |p| {
            fs::read_to_string(p.join("cgroup.controllers")).ok()
        })
    }

    /// Picks the layout from `mounts`; `controllers` reads a v2 mount's `cgroup.controllers`.
    /// A v2 hierarchy counts only with its memory controller: on hybrid hosts the controllers
    /// are bound to the v1 hierarchies and the v2 mount has none.
    pub fn from_mounts(
        mounts: &[CgroupMount],
        controllers: impl Fn(&Path) -> Option<String>,
    ) -> Result<Layout, String> {
        for m in mounts.iter().filter(|m| m.fstype == "cgroup2") {
            let Some(list) = controllers(&m.point) else {
                continue;
            };
            let names: Vec<&str> = list.split_whitespace().collect();
            if names.contains(&"memory") {
                return Ok(Layout::V2 {
                    root: m.point.clone(),
                    cpu: names.contains(&"cpu"),
                });
            }
        }
        let v1 = |controller: &str| {
            mounts
                .iter()
                .find(|m| m.fstype == "cgroup" && m.options.iter().any(|o| o == controller))
                .map(|m| m.point.clone())
        };
        match v1("memory") {
            Some(memory) => Ok(Layout::V1 {
                memory,
                cpu: v1("cpu"),
                cpuacct: v1("cpuacct"),
            }),
            None => Err(
                "the host has no cgroup memory controller (neither a cgroup v2 hierarchy \
                 with the memory controller nor a cgroup v1 memory hierarchy is mounted)"
                    .into(),
            ),
        }
    }

    /// The directory of cgroup `path` (relative to the hierarchy's root) in the hierarchy
    /// holding the memory controller.
    pub fn memory_dir(&self, path: &str) -> PathBuf {
        let root = match self {
            Layout::V2 { root, .. } => root,
            Layout::V1 { memory, .. } => memory,
        };
        root.join(path.trim_start_matches('/'))
    }

    /// The file holding a cgroup's memory limit.
    pub fn memory_limit_file(&self) -> &'static str {
        match self {
            Layout::V2 { .. } => "memory.max",
            Layout::V1 { .. } => "memory.limit_in_bytes",
        }
    }

    fn is_v2(&self) -> bool {
        matches!(self, Layout::V2 { .. })
    }

    /// The same cgroup `path` in each hierarchy, by role.
    fn dirs(&self, path: &Path) -> Dirs {
        match self {
            Layout::V2 { root, cpu } => {
                let d = root.join(path);
                Dirs {
                    memory: d.clone(),
                    cpu: cpu.then(|| d.clone()),
                    cpuacct: cpu.then_some(d),
                }
            }
            Layout::V1 {
                memory,
                cpu,
                cpuacct,
            } => Dirs {
                memory: memory.join(path),
                cpu: cpu.as_ref().map(|c| c.join(path)),
                cpuacct: cpuacct.as_ref().map(|c| c.join(path)),
            },
        }
    }
}

/// One cgroup's directory in each hierarchy that has the controller.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Dirs {
    memory: PathBuf,
    cpu: Option<PathBuf>,
    cpuacct: Option<PathBuf>,
}

impl Dirs {
    /// Each directory once (v2, or v1 with cpu and cpuacct mounted together, share them).
    fn distinct(&self) -> Vec<&Path> {
        let mut v: Vec<&Path> = vec![&self.memory];
        for d in [&self.cpu, &self.cpuacct].into_iter().flatten() {
            if !v.contains(&d.as_path()) {
                v.push(d);
            }
        }
        v
    }
}

/// What a container's cgroup is set to, from its `resources` as the kubelet computes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// `limits.memory` in bytes.
    pub memory_bytes: Option<i64>,
    /// From `requests.cpu` (else `limits.cpu`).
    pub cpu_shares: u64,
    /// From `limits.cpu`, per `cpu_period_us`.
    pub cpu_quota_us: Option<i64>,
    pub cpu_period_us: u64,
}

/// Upstream's `MilliCPUToShares`.
pub fn milli_cpu_to_shares(milli: i64) -> u64 {
    if milli <= 0 {
        return MIN_SHARES;
    }
    let shares = (milli as u128 * SHARES_PER_CPU as u128 / 1000) as u64;
    shares.clamp(MIN_SHARES, MAX_SHARES)
}

/// Upstream's `MilliCPUToQuota`: `None` (no quota) for no limit.
pub fn milli_cpu_to_quota(milli: i64, period_us: u64) -> Option<i64> {
    if milli <= 0 {
        return None;
    }
    let quota = (milli as i128 * period_us as i128 / 1000).min(i64::MAX as i128) as i64;
    Some(quota.max(MIN_QUOTA_US))
}

/// runc's conversion of cgroup v1 shares to a cgroup v2 `cpu.weight` (1..=10000).
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    let shares = shares.clamp(MIN_SHARES, MAX_SHARES);
    1 + ((shares - 2) * 9999) / 262_142
}

/// A resource quantity of a container's `requests` or `limits`, parsed.
fn quantity(
    c: &Container,
    limits: bool,
    name: &str,
) -> Option<crate::resources::quantity::Quantity> {
    let r = c.resources.as_ref()?;
    let map = if limits { &r.limits } else { &r.requests };
    Quantity::parse(&map.as_ref()?.get(name)?.0).ok()
}

fn to_i64(v: i128) -> i64 {
    v.clamp(0, i64::MAX as i128) as i64
}

impl Limits {
    /// The cgroup settings of `c`, with CFS periods of `period`.
    pub fn of(c: &Container, period: Duration) -> Limits {
        let period_us = (period.as_micros() as u64).max(MIN_QUOTA_US as u64);
        let memory_bytes = quantity(c, true, "memory")
            .map(|q| to_i64(q.value()))
            .filter(|b| *b > 0);
        let cpu_limit = quantity(c, true, "cpu").map(|q| to_i64(q.milli_value()));
        let cpu_request = quantity(c, false, "cpu").map(|q| to_i64(q.milli_value()));
        // A limit without a request stands for the request, as the kubelet repeats the API
        // server's defaulting for pods created before it.
        let cpu_shares = milli_cpu_to_shares(cpu_request.or(cpu_limit).unwrap_or(0));
        Limits {
            memory_bytes,
            cpu_shares,
            cpu_quota_us: milli_cpu_to_quota(cpu_limit.unwrap_or(0), period_us),
            cpu_period_us: period_us,
        }
    }
}

/// The value of `key` in a flat-keyed cgroup file (`memory.stat`, `cpu.stat`,
/// `memory.events`, `memory.oom_control`).
pub fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        (f.next()? == key).then(|| f.next()?.parse().ok())?
    })
}

/// The working set as the kubelet's cAdvisor computes it: usage less inactive file pages.
pub fn working_set(usage: u64, stat: &str, v2: bool) -> u64 {
    let inactive = keyed(
        stat,
        if v2 {
            "inactive_file"
        } else {
            "total_inactive_file"
        },
    );
    usage.saturating_sub(inactive.unwrap_or(0))
}

fn read_trimmed(p: &Path) -> Option<String> {
    fs::read_to_string(p).ok().map(|s| s.trim().to_string())
}

fn write_file(dir: &Path, name: &str, value: &str) -> Result<(), String> {
    let p = dir.join(name);
    OpenOptions::new()
        .write(true)
        .open(&p)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|e| format!("cannot write {value:?} to {}: {e}", p.display()))
}

/// The pids in one cgroup directory.
fn procs(dir: &Path) -> Vec<i32> {
    fs::read_to_string(dir.join("cgroup.procs"))
        .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// SIGKILLs whatever runs in `dir` (not below it) until it is empty or a few rounds passed
/// (a process may fork while it is being killed).
fn kill_in(dir: &Path) {
    if fs::write(dir.join("cgroup.kill"), b"1").is_ok() {
        return;
    }
    for _ in 0..8 {
        let pids = procs(dir);
        if pids.is_empty() {
            return;
        }
        for p in pids {
            if p > 0 {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(p),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

/// Every directory under `dir` (itself included), deepest first.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(tree(&e.path()));
            }
        }
    }
    out.push(dir.to_path_buf());
    out
}

/// Kills everything in `dir`'s tree and removes it, waiting up to `rounds` × 10 ms for the
/// killed processes to leave. Whether it is gone.
fn remove_tree_now(dir: &Path, rounds: usize) -> bool {
    for round in 0..rounds.max(1) {
        let mut left = false;
        for d in tree(dir) {
            kill_in(&d);
            match fs::remove_dir(&d) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(_) => left = true,
            }
        }
        if !left {
            return true;
        }
        if round + 1 < rounds {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    false
}

/// The start time of process `pid` (field 22 of its stat, clock ticks since boot).
fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The agent that owns `run-<pid>-<start>-<n>`, if the name has that form.
fn owner(name: &str) -> Option<(u32, u64)> {
    let mut f = name.strip_prefix("run-")?.split('-');
    let pid = f.next()?.parse().ok()?;
    let start = f.next()?.parse().ok()?;
    f.next()?.parse::<u64>().ok()?;
    Some((pid, start))
}

/// Runtimes of this process so far, so each gets its own directory.
static INSTANCES: AtomicU64 = AtomicU64::new(0);

/// The cgroups of one runtime: `<root>/<parent>/run-…` in each hierarchy.
#[derive(Debug)]
pub struct Cgroups {
    layout: Layout,
    /// `<parent>/run-…`, relative to each hierarchy's root.
    base: PathBuf,
    period: Duration,
}

impl Cgroups {
    /// Finds the layout, removes what dead agents left under `parent`, and creates this
    /// runtime's directory. CFS periods are `period` (the kubelet's `cpuCFSQuotaPeriod`).
    pub fn new(parent: &str, period: Duration) -> Result<Cgroups, String> {
        let layout = Layout::detect()?;
        let parent = Path::new(parent.trim_matches('/'));
        if parent.as_os_str().is_empty() || parent.components().any(|c| c.as_os_str() == "..") {
            return Err(format!(
                "the cgroup parent {:?} must be a relative path inside the hierarchy, such as \"kubeproof\"",
                parent.display()
            ));
        }
        let parents = layout.dirs(parent);
        if let Layout::V2 { root, .. } = &layout {
            enable_controllers(&layout, root)?;
        }
        for d in parents.distinct() {
            fs::create_dir_all(d).map_err(|e| {
                format!(
                    "cannot create the cgroup {}: {e}; run the node agent as root, or without \
                     cgroups (ProcessConfig::cgroup_parent None)",
                    d.display()
                )
            })?;
            clean_stale(d);
        }
        enable_controllers(&layout, &parents.memory)?;
        let me = std::process::id();
        let base = parent.join(format!(
            "run-{me}-{}-{}",
            start_time(me).unwrap_or(0),
            INSTANCES.fetch_add(1, Ordering::Relaxed)
        ));
        let dirs = layout.dirs(&base);
        for d in dirs.distinct() {
            fs::create_dir_all(d)
                .map_err(|e| format!("cannot create the cgroup {}: {e}", d.display()))?;
        }
        enable_controllers(&layout, &dirs.memory)?;
        Ok(Cgroups {
            layout,
            base,
            period,
        })
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The CFS period containers get.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Creates the cgroup of container `id` of pod `pod_uid` with `limits`.
    pub fn create(
        &self,
        pod_uid: &str,
        id: &str,
        limits: &Limits,
    ) -> Result<ContainerCgroup, String> {
        let clean = |s: &str| -> String {
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect()
        };
        let pod = self.base.join(format!("pod{}", clean(pod_uid)));
        let leaf = pod.join(clean(id.rsplit('/').next().unwrap_or(id)));
        let pod_dirs = self.layout.dirs(&pod);
        let dirs = self.layout.dirs(&leaf);
        // A sibling container that just ended may remove the pod directory between our
        // mkdirs: try again then.
        let mut last = String::new();
        let mut made = false;
        for _ in 0..3 {
            match make_leaf(&self.layout, &pod_dirs, &dirs) {
                Ok(()) => {
                    made = true;
                    break;
                }
                Err(e) => last = e,
            }
        }
        if !made {
            return Err(last);
        }
        let cg = ContainerCgroup {
            v2: self.layout.is_v2(),
            dirs,
            pod: pod_dirs,
        };
        if let Err(e) = cg.apply(limits) {
            cg.remove_now(1);
            return Err(e);
        }
        Ok(cg)
    }

    /// Kills every container process still in this runtime's cgroups and removes them: the
    /// node agent is going away.
    pub fn remove_all(&self) {
        let dirs = self.layout.dirs(&self.base);
        for d in dirs.distinct() {
            if !remove_tree_now(d, 50) {
                tracing::warn!(cgroup = %d.display(), "cannot remove the runtime's cgroup; the next run removes it");
            }
        }
    }
}

/// Turns on memory and cpu for the children of `dir` (cgroup v2 only; v1 needs nothing).
fn enable_controllers(layout: &Layout, dir: &Path) -> Result<(), String> {
    let Layout::V2 { cpu, .. } = layout else {
        return Ok(());
    };
    let want = if *cpu { "+memory +cpu" } else { "+memory" };
    let current = read_trimmed(&dir.join("cgroup.subtree_control")).unwrap_or_default();
    let on: Vec<&str> = current.split_whitespace().collect();
    if on.contains(&"memory") && (!cpu || on.contains(&"cpu")) {
        return Ok(());
    }
    write_file(dir, "cgroup.subtree_control", want)
}

fn make_leaf(layout: &Layout, pod: &Dirs, leaf: &Dirs) -> Result<(), String> {
    for d in pod.distinct() {
        fs::create_dir_all(d)
            .map_err(|e| format!("cannot create the cgroup {}: {e}", d.display()))?;
    }
    enable_controllers(layout, &pod.memory)?;
    for d in leaf.distinct() {
        match fs::create_dir(d) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("cannot create the cgroup {}: {e}", d.display())),
        }
    }
    Ok(())
}

/// Empties and removes `run-…` directories under `parent` whose agent is gone.
fn clean_stale(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some((pid, start)) = owner(&name) else {
            continue;
        };
        // Without a start time in the name (its agent could not read it) only a pid that no
        // longer runs proves the agent gone; with one, a reused pid does too.
        let alive = if start == 0 {
            Path::new(&format!("/proc/{pid}")).exists()
        } else {
            start_time(pid) == Some(start)
        };
        if alive {
            continue;
        }
        tracing::info!(cgroup = %e.path().display(), "removing the cgroups of a node agent that is gone");
        if !remove_tree_now(&e.path(), 50) {
            tracing::warn!(cgroup = %e.path().display(), "cannot remove a stale cgroup");
        }
    }
}

/// One container's cgroup.
#[derive(Debug)]
pub struct ContainerCgroup {
    v2: bool,
    dirs: Dirs,
    pod: Dirs,
}

impl ContainerCgroup {
    fn apply(&self, l: &Limits) -> Result<(), String> {
        let mem = &self.dirs.memory;
        if self.v2 {
            let max = l.memory_bytes.map_or("max".to_string(), |b| b.to_string());
            write_file(mem, "memory.max", &max)?;
            // The kubelet's NoSwap: a limited container does not swap.
            if l.memory_bytes.is_some() && mem.join("memory.swap.max").exists() {
                let _ = write_file(mem, "memory.swap.max", "0");
            }
            if let Some(cpu) = &self.dirs.cpu {
                write_file(
                    cpu,
                    "cpu.weight",
                    &shares_to_weight(l.cpu_shares).to_string(),
                )?;
                let quota = l.cpu_quota_us.map_or("max".to_string(), |q| q.to_string());
                write_file(cpu, "cpu.max", &format!("{quota} {}", l.cpu_period_us))?;
            }
        } else {
            if let Some(b) = l.memory_bytes {
                write_file(mem, "memory.limit_in_bytes", &b.to_string())?;
                // As containerd does: memory+swap equal to memory, so the limit cannot be
                // escaped by swapping. Absent without swap accounting; the memory limit
                // was written first, as the kernel requires memsw >= memory.
                if mem.join("memory.memsw.limit_in_bytes").exists() {
                    if let Err(e) = write_file(mem, "memory.memsw.limit_in_bytes", &b.to_string()) {
                        tracing::debug!("{e}");
                    }
                }
            }
            if let Some(cpu) = &self.dirs.cpu {
                write_file(cpu, "cpu.shares", &l.cpu_shares.to_string())?;
                if let Some(q) = l.cpu_quota_us {
                    write_file(cpu, "cpu.cfs_period_us", &l.cpu_period_us.to_string())?;
                    write_file(cpu, "cpu.cfs_quota_us", &q.to_string())?;
                }
            }
        }
        Ok(())
    }

    /// The memory cgroup's directory.
    pub fn memory_dir(&self) -> &Path {
        &self.dirs.memory
    }

    /// `cgroup.procs` of each hierarchy, opened for the child to write `0` into between fork
    /// and exec (a write is async-signal-safe; opening is done here, before the fork).
    pub fn open_procs(&self) -> io::Result<Vec<File>> {
        self.dirs
            .distinct()
            .into_iter()
            .map(|d| {
                let p = d.join("cgroup.procs");
                OpenOptions::new().write(true).open(&p).map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("cannot join the container's cgroup {}: {e}", d.display()),
                    )
                })
            })
            .collect()
    }

    /// OOM kills in the cgroup so far.
    pub fn oom_kills(&self) -> u64 {
        let file = if self.v2 {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        fs::read_to_string(self.dirs.memory.join(file))
            .ok()
            .and_then(|t| keyed(&t, "oom_kill"))
            .unwrap_or(0)
    }

    /// Working-set memory in bytes and CPU time in nanoseconds, where readable.
    pub fn usage(&self) -> (Option<u64>, Option<u64>) {
        let mem = &self.dirs.memory;
        let (usage, stat) = if self.v2 {
            ("memory.current", "memory.stat")
        } else {
            ("memory.usage_in_bytes", "memory.stat")
        };
        let memory = read_trimmed(&mem.join(usage))
            .and_then(|u| u.parse::<u64>().ok())
            .map(|u| {
                let stat = fs::read_to_string(mem.join(stat)).unwrap_or_default();
                working_set(u, &stat, self.v2)
            });
        let cpu = self.dirs.cpuacct.as_ref().and_then(|d| {
            if self.v2 {
                let t = fs::read_to_string(d.join("cpu.stat")).ok()?;
                keyed(&t, "usage_usec").map(|us| us.saturating_mul(1000))
            } else {
                read_trimmed(&d.join("cpuacct.usage"))?.parse().ok()
            }
        });
        (memory, cpu)
    }

    /// Kills whatever still runs in the cgroup (what the main process left behind, exec
    /// sessions).
    pub fn kill_all(&self) {
        for d in self.dirs.distinct() {
            kill_in(d);
        }
    }

    /// Kills what is left and removes the cgroup (and the pod's, once empty), waiting for
    /// killed processes to leave for up to `rounds` × 10 ms. Whether it is gone.
    pub fn remove_now(&self, rounds: usize) -> bool {
        let mut gone = true;
        for d in self.dirs.distinct() {
            gone &= remove_tree_now(d, rounds);
        }
        for d in self.pod.distinct() {
            // Other containers of the pod may still be there.
            let _ = fs::remove_dir(d);
        }
        gone
    }

    /// [`ContainerCgroup::remove_now`] without blocking the runtime's threads.
    pub async fn remove(self: std::sync::Arc<Self>) {
        let me = self.clone();
        let gone = tokio::task::spawn_blocking(move || me.remove_now(200))
            .await
            .unwrap_or(false);
        if !gone {
            tracing::warn!(cgroup = %self.dirs.memory.display(), "cannot remove a container's cgroup; it is removed when the node agent stops");
        }
    }
}

/// Moves the calling process into the cgroups whose `cgroup.procs` files are `files`. Called
/// between fork and exec: it only writes to already open descriptors.
pub fn join(files: &[File]) -> io::Result<()> {
    for f in files {
        // SAFETY: a write of a static buffer to a descriptor this process owns.
        let n = unsafe { nix::libc::write(f.as_raw_fd(), b"0".as_ptr().cast(), 1) };
        if n != 1 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const HYBRID: &str = "\
25 30 0:22 / /sys rw,nosuid shared:7 - sysfs sysfs rw
31 25 0:26 / /sys/fs/cgroup rw shared:9 - tmpfs tmpfs rw,mode=755
32 31 0:27 / /sys/fs/cgroup/unified rw shared:10 - cgroup2 cgroup2 rw
35 31 0:30 / /sys/fs/cgroup/memory rw shared:13 - cgroup cgroup rw,memory
36 31 0:31 / /sys/fs/cgroup/cpu,cpuacct rw shared:14 - cgroup cgroup rw,cpu,cpuacct
37 31 0:32 / /sys/fs/my\\040cg rw shared:15 - cgroup cgroup rw,pids
";

    #[test]
    fn mountinfo_yields_cgroup_mounts_with_their_controllers() {
        let m = parse_mountinfo(HYBRID);
        assert_eq!(m.len(), 4);
        assert_eq!(m[0].fstype, "cgroup2");
        assert_eq!(m[1].point, PathBuf::from("/sys/fs/cgroup/memory"));
        assert_eq!(m[2].options, ["rw", "cpu", "cpuacct"]);
        assert_eq!(m[3].point, PathBuf::from("/sys/fs/my cg"));
        assert!(parse_mountinfo("garbage\n\n1 2 3 - \n").is_empty());
    }

    #[test]
    fn the_layout_prefers_v2_with_memory_then_v1_then_none() {
        let m = parse_mountinfo(HYBRID);
        // A hybrid host: the v2 mount has no controllers.
        let l = Layout::from_mounts(&m, |_| Some(String::new())).unwrap();
        assert_eq!(
            l,
            Layout::V1 {
                memory: "/sys/fs/cgroup/memory".into(),
                cpu: Some("/sys/fs/cgroup/cpu,cpuacct".into()),
                cpuacct: Some("/sys/fs/cgroup/cpu,cpuacct".into()),
            }
        );
        assert_eq!(l.dirs(Path::new("k/x")).distinct().len(), 2);
        assert_eq!(l.memory_limit_file(), "memory.limit_in_bytes");
        let l = Layout::from_mounts(&m, |_| Some("cpuset cpu io memory pids\n".into())).unwrap();
        assert_eq!(
            l,
            Layout::V2 {
                root: "/sys/fs/cgroup/unified".into(),
                cpu: true
            }
        );
        assert_eq!(l.dirs(Path::new("k")).distinct().len(), 1);
        assert_eq!(
            l.memory_dir("/kubeproof/x"),
            PathBuf::from("/sys/fs/cgroup/unified/kubeproof/x")
        );
        let only_pids = parse_mountinfo(
            "37 31 0:32 / /sys/fs/cgroup/pids rw shared:15 - cgroup cgroup rw,pids\n",
        );
        let err = Layout::from_mounts(&only_pids, |_| None).unwrap_err();
        assert!(err.contains("no cgroup memory controller"), "{err}");
    }

    #[test]
    fn cpu_converts_like_the_kubelet_and_runc() {
        assert_eq!(milli_cpu_to_shares(0), 2);
        assert_eq!(milli_cpu_to_shares(1), 2);
        assert_eq!(milli_cpu_to_shares(100), 102);
        assert_eq!(milli_cpu_to_shares(250), 256);
        assert_eq!(milli_cpu_to_shares(1000), 1024);
        assert_eq!(milli_cpu_to_shares(1_000_000), MAX_SHARES);
        assert_eq!(milli_cpu_to_quota(0, 100_000), None);
        assert_eq!(milli_cpu_to_quota(500, 100_000), Some(50_000));
        assert_eq!(milli_cpu_to_quota(2500, 100_000), Some(250_000));
        assert_eq!(milli_cpu_to_quota(1, 100_000), Some(MIN_QUOTA_US));
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(256), 10);
        assert_eq!(shares_to_weight(MAX_SHARES), 10_000);
    }

    #[test]
    fn limits_come_from_requests_and_limits() {
        let c = |v: serde_json::Value| -> Container {
            serde_json::from_value(json!({"name": "c", "resources": v})).unwrap()
        };
        let period = Duration::from_millis(100);
        let l = Limits::of(
            &c(json!({"limits": {"memory": "64Mi", "cpu": "500m"}, "requests": {"cpu": "250m"}})),
            period,
        );
        assert_eq!(
            l,
            Limits {
                memory_bytes: Some(67_108_864),
                cpu_shares: 256,
                cpu_quota_us: Some(50_000),
                cpu_period_us: 100_000,
            }
        );
        // A limit alone stands for the request.
        let l = Limits::of(&c(json!({"limits": {"cpu": "2", "memory": "1G"}})), period);
        assert_eq!((l.cpu_shares, l.cpu_quota_us), (2048, Some(200_000)));
        assert_eq!(l.memory_bytes, Some(1_000_000_000));
        // Nothing asked: best effort, no limits.
        let none = Limits::of(&c(json!({})), period);
        assert_eq!(
            (none.memory_bytes, none.cpu_shares, none.cpu_quota_us),
            (None, 2, None)
        );
        // Fractions round up to whole bytes; bad quantities are ignored, never a panic.
        let l = Limits::of(
            &c(json!({"limits": {"memory": "0.5Ki", "cpu": "x"}})),
            period,
        );
        assert_eq!((l.memory_bytes, l.cpu_quota_us), (Some(512), None));
        let l = Limits::of(
            &c(json!({"limits": {"memory": "1.5"}})),
            Duration::from_millis(50),
        );
        assert_eq!((l.memory_bytes, l.cpu_period_us), (Some(2), 50_000));
    }

    #[test]
    fn usage_files_parse_like_cadvisor() {
        let v1 = "cache 100\nrss 5\ntotal_inactive_file 4096\ninactive_file 1\n";
        assert_eq!(working_set(10_000, v1, false), 5904);
        let v2 = "anon 5\ninactive_file 8192\n";
        assert_eq!(working_set(10_000, v2, true), 1808);
        assert_eq!(working_set(10, v2, true), 0);
        assert_eq!(working_set(10, "", true), 10);
        assert_eq!(
            keyed("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", "oom_kill"),
            Some(3)
        );
        assert_eq!(
            keyed("low 0\nhigh 0\nmax 9\noom 2\noom_kill 1\n", "oom_kill"),
            Some(1)
        );
        assert_eq!(
            keyed("usage_usec 1500\nuser_usec 1000\n", "usage_usec"),
            Some(1500)
        );
        assert_eq!(keyed("oom_kill x\n", "oom_kill"), None);
    }

    #[test]
    fn run_directories_name_their_agent() {
        let me = std::process::id();
        let start = start_time(me).unwrap();
        assert_eq!(owner(&format!("run-{me}-{start}-0")), Some((me, start)));
        assert_eq!(owner("run-1-2"), None);
        assert_eq!(owner("other"), None);
        assert_eq!(unescape("a\\040b\\"), "a b\\");
    }
}
