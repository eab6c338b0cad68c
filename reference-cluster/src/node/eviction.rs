//! Node-pressure eviction, as the kubelet's eviction manager does it: every monitoring period
//! each node's signals (`memory.available`, `nodefs.available`, …) are observed, compared with
//! the hard and soft thresholds, turned into the MemoryPressure/DiskPressure/PIDPressure
//! conditions (held for the pressure transition period after the last time a threshold was
//! met), and, once a threshold has been met for its grace period, one pod is picked and evicted.
//!
//! Nothing here does I/O: the fleet supplies what each node and pod uses (in the `sim` runtime,
//! the pods' `memory-usage` and the node's annotations, see `SIM.md`) and carries out the
//! eviction.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::resources::quantity::{Format, Quantity};

/// The eviction's reason, on the pod's status and on its event.
pub const REASON: &str = "Evicted";

/// `scheduling.SystemCriticalPriority`: pods at or above it are never evicted.
pub const SYSTEM_CRITICAL_PRIORITY: i32 = 2_000_000_000;

/// An eviction signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Signal {
    MemoryAvailable,
    NodeFsAvailable,
    NodeFsInodesFree,
    ImageFsAvailable,
    ImageFsInodesFree,
    PidAvailable,
}

/// The node conditions eviction signals drive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Pressure {
    Memory,
    Disk,
    Pid,
}

impl Signal {
    pub const ALL: [Signal; 6] = [
        Signal::MemoryAvailable,
        Signal::NodeFsAvailable,
        Signal::NodeFsInodesFree,
        Signal::ImageFsAvailable,
        Signal::ImageFsInodesFree,
        Signal::PidAvailable,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Signal::MemoryAvailable => "memory.available",
            Signal::NodeFsAvailable => "nodefs.available",
            Signal::NodeFsInodesFree => "nodefs.inodesFree",
            Signal::ImageFsAvailable => "imagefs.available",
            Signal::ImageFsInodesFree => "imagefs.inodesFree",
            Signal::PidAvailable => "pid.available",
        }
    }

    pub fn parse(s: &str) -> Option<Signal> {
        Signal::ALL.into_iter().find(|x| x.name() == s)
    }

    pub fn pressure(self) -> Pressure {
        match self {
            Signal::MemoryAvailable => Pressure::Memory,
            Signal::PidAvailable => Pressure::Pid,
            _ => Pressure::Disk,
        }
    }

    /// The resource the kubelet says the node was low on.
    pub fn resource(self) -> &'static str {
        match self {
            Signal::MemoryAvailable => "memory",
            Signal::NodeFsAvailable | Signal::ImageFsAvailable => "ephemeral-storage",
            Signal::NodeFsInodesFree | Signal::ImageFsInodesFree => "inodes",
            Signal::PidAvailable => "pids",
        }
    }

    fn binary(self) -> bool {
        matches!(
            self,
            Signal::MemoryAvailable | Signal::NodeFsAvailable | Signal::ImageFsAvailable
        )
    }
}

/// A threshold's value: an absolute quantity or a share of the capacity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Amount {
    Quantity(i64),
    Percent(f64),
}

impl Amount {
    /// The threshold in units of the signal for a node with `capacity`.
    pub fn resolve(self, capacity: i64) -> i64 {
        match self {
            Amount::Quantity(q) => q,
            Amount::Percent(p) => (capacity as f64 * p / 100.0) as i64,
        }
    }
}

/// `signal<amount`; soft thresholds also have a grace period.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Threshold {
    pub signal: Signal,
    pub amount: Amount,
    /// `None` for a hard threshold.
    pub grace: Option<Duration>,
}

/// Parses the kubelet's `signal<amount` list (`memory.available<100Mi,nodefs.available<10%`),
/// as `--eviction-hard`/`--eviction-soft` take it.
pub fn parse_thresholds(s: &str) -> Result<Vec<(Signal, Amount)>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = part.split_once('<').ok_or_else(|| {
            format!("eviction threshold {part:?} must look like signal<quantity, e.g. memory.available<100Mi")
        })?;
        let signal = Signal::parse(name.trim()).ok_or_else(|| {
            format!(
                "unknown eviction signal {:?}; known signals: {}",
                name.trim(),
                Signal::ALL.map(Signal::name).join(", ")
            )
        })?;
        let value = value.trim();
        let amount = if let Some(p) = value.strip_suffix('%') {
            let p: f64 = p.parse().map_err(|_| {
                format!("eviction threshold {part:?}: {value:?} is not a percentage")
            })?;
            if !(0.0..=100.0).contains(&p) {
                return Err(format!(
                    "eviction threshold {part:?}: a percentage must be between 0% and 100%"
                ));
            }
            Amount::Percent(p)
        } else {
            let q =
                Quantity::parse(value).map_err(|e| format!("eviction threshold {part:?}: {e}"))?;
            if q.nanos < 0 {
                return Err(format!(
                    "eviction threshold {part:?}: the quantity must not be negative"
                ));
            }
            Amount::Quantity(q.value().min(i64::MAX as i128) as i64)
        };
        out.push((signal, amount));
    }
    Ok(out)
}

/// How a fleet's nodes evict (the kubelet's `evictionHard`, `evictionSoft`, … settings).
#[derive(Clone, Debug, PartialEq)]
pub struct EvictionConfig {
    /// Upstream's defaults: `memory.available<100Mi`, `nodefs.available<10%`,
    /// `imagefs.available<15%`, `nodefs.inodesFree<5%`.
    pub hard: Vec<Threshold>,
    /// None by default.
    pub soft: Vec<Threshold>,
    /// `evictionMaxPodGracePeriod` (0): the longest grace a pod gets on a soft eviction.
    pub max_pod_grace_period: Duration,
    /// `evictionPressureTransitionPeriod` (5m): how long a condition stays true after the last
    /// time one of its thresholds was met.
    pub pressure_transition_period: Duration,
    /// How often signals are observed (the eviction manager's 10s monitoring interval).
    pub monitoring_period: Duration,
    /// The grace period of a pod evicted for a hard threshold (the kubelet's 1s).
    pub hard_grace_period: Duration,
    /// Inodes on a simulated node's filesystems, for `inodesFree` percentages (sim only).
    pub inodes_capacity: i64,
    /// Process IDs on a simulated node, for `pid.available` percentages (sim only).
    pub pid_capacity: i64,
    /// `localStorageCapacityIsolation` (true): enforce `emptyDir.sizeLimit` and
    /// `ephemeral-storage` limits by eviction (see `local_storage`).
    pub local_storage_capacity_isolation: bool,
}

impl Default for EvictionConfig {
    fn default() -> Self {
        let hard = |signal, amount| Threshold {
            signal,
            amount,
            grace: None,
        };
        EvictionConfig {
            hard: vec![
                hard(Signal::MemoryAvailable, Amount::Quantity(100 * 1024 * 1024)),
                hard(Signal::NodeFsAvailable, Amount::Percent(10.0)),
                hard(Signal::ImageFsAvailable, Amount::Percent(15.0)),
                hard(Signal::NodeFsInodesFree, Amount::Percent(5.0)),
            ],
            soft: Vec::new(),
            max_pod_grace_period: Duration::ZERO,
            pressure_transition_period: Duration::from_secs(300),
            monitoring_period: Duration::from_secs(10),
            hard_grace_period: Duration::from_secs(1),
            inodes_capacity: 1_000_000,
            pid_capacity: 4_194_304,
            local_storage_capacity_isolation: true,
        }
    }
}

impl EvictionConfig {
    /// Upstream's thresholds with periods short enough for tests.
    pub fn for_tests() -> EvictionConfig {
        EvictionConfig {
            pressure_transition_period: Duration::from_secs(10),
            monitoring_period: Duration::from_millis(500),
            ..EvictionConfig::default()
        }
    }

    /// Sets soft thresholds from `signal<amount` pairs, each with its grace period
    /// (`evictionSoft` with `evictionSoftGracePeriod`).
    pub fn with_soft(mut self, soft: Vec<(Signal, Amount, Duration)>) -> EvictionConfig {
        self.soft = soft
            .into_iter()
            .map(|(signal, amount, grace)| Threshold {
                signal,
                amount,
                grace: Some(grace),
            })
            .collect();
        self
    }

    fn thresholds(&self) -> impl Iterator<Item = &Threshold> {
        self.hard.iter().chain(self.soft.iter())
    }
}

/// What a node has and has left of each signal's resource.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Observation {
    pub available: i64,
    pub capacity: i64,
}

pub type Observations = BTreeMap<Signal, Observation>;

/// A threshold that is met now.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Met {
    pub threshold: Threshold,
    /// The threshold as a quantity for this node.
    pub quantity: i64,
    pub available: i64,
}

impl Met {
    fn soft(&self) -> bool {
        self.threshold.grace.is_some()
    }
}

/// One node's eviction state across monitoring periods.
#[derive(Clone, Debug, Default)]
pub struct NodeEviction {
    /// When each currently met threshold (signal, soft) was first seen met.
    first_met: BTreeMap<(Signal, bool), Instant>,
    /// When each condition last had a threshold met.
    last_pressure: BTreeMap<Pressure, Instant>,
    /// The pods evicted last (their uids: one for node pressure, any number for local
    /// storage); like the kubelet, the node evicts no other pod until they have stopped.
    pub evicting: Vec<String>,
}

/// What one monitoring pass decided for a node.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Verdict {
    /// The conditions to report as true.
    pub pressures: Vec<Pressure>,
    /// The threshold to reclaim for now (its grace period has passed), if any.
    pub reclaim: Option<Met>,
}

impl NodeEviction {
    /// Takes in the signals observed at `now`.
    pub fn observe(&mut self, cfg: &EvictionConfig, obs: &Observations, now: Instant) -> Verdict {
        let met: Vec<Met> = cfg
            .thresholds()
            .filter_map(|t| {
                let o = obs.get(&t.signal)?;
                let quantity = t.amount.resolve(o.capacity);
                (o.available < quantity).then_some(Met {
                    threshold: *t,
                    quantity,
                    available: o.available,
                })
            })
            .collect();
        self.first_met
            .retain(|k, _| met.iter().any(|m| (m.threshold.signal, m.soft()) == *k));
        for m in &met {
            self.first_met
                .entry((m.threshold.signal, m.soft()))
                .or_insert(now);
            self.last_pressure
                .insert(m.threshold.signal.pressure(), now);
        }
        let transition = cfg.pressure_transition_period;
        self.last_pressure
            .retain(|_, at| now.saturating_duration_since(*at) < transition || *at == now);
        let pressures = self.last_pressure.keys().copied().collect();
        // Hard thresholds first (they act at once), then soft ones whose grace has passed;
        // among them the one furthest below its threshold.
        let reclaim = met
            .iter()
            .filter(|m| match m.threshold.grace {
                None => true,
                Some(g) => self
                    .first_met
                    .get(&(m.threshold.signal, true))
                    .is_some_and(|t| now.saturating_duration_since(*t) >= g),
            })
            .min_by_key(|m| (m.soft(), signal_rank(m.threshold.signal)))
            .copied();
        Verdict { pressures, reclaim }
    }
}

/// The order in which the kubelet reclaims signals: memory before disk before PIDs.
fn signal_rank(s: Signal) -> u8 {
    match s {
        Signal::MemoryAvailable => 0,
        Signal::NodeFsAvailable => 1,
        Signal::NodeFsInodesFree => 2,
        Signal::ImageFsAvailable => 3,
        Signal::ImageFsInodesFree => 4,
        Signal::PidAvailable => 5,
    }
}

/// One container's use of the resource being reclaimed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerUse {
    pub name: String,
    pub usage: i64,
    pub request: i64,
}

/// A pod the eviction manager may pick.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub uid: String,
    pub priority: i32,
    /// Static, mirror or system-critical pods are never evicted.
    pub critical: bool,
    pub containers: Vec<ContainerUse>,
}

impl Candidate {
    fn usage(&self) -> i64 {
        self.containers.iter().map(|c| c.usage).sum()
    }

    fn request(&self) -> i64 {
        self.containers.iter().map(|c| c.request).sum()
    }

    fn exceeds_requests(&self) -> bool {
        self.usage() > self.request()
    }
}

/// The pod to evict: as the kubelet ranks them, pods using more than they request first, then
/// lower priority first, then the largest use above requests (for PIDs: priority, then the
/// most used). Critical pods are never picked.
pub fn pick(cands: &[Candidate], signal: Signal) -> Option<&Candidate> {
    cands.iter().filter(|c| !c.critical).min_by(|a, b| {
        if signal == Signal::PidAvailable {
            return a
                .priority
                .cmp(&b.priority)
                .then(b.usage().cmp(&a.usage()))
                .then(a.uid.cmp(&b.uid));
        }
        b.exceeds_requests()
            .cmp(&a.exceeds_requests())
            .then(a.priority.cmp(&b.priority))
            .then((b.usage() - b.request()).cmp(&(a.usage() - a.request())))
            .then(a.uid.cmp(&b.uid))
    })
}

fn format_amount(signal: Signal, v: i64) -> String {
    let format = if signal.binary() {
        Format::BinarySI
    } else {
        Format::DecimalSI
    };
    Quantity {
        nanos: v as i128 * 1_000_000_000,
        format,
    }
    .canonical()
}

/// The kubelet's eviction message (trailing spaces included, as upstream writes it): the
/// resource, the threshold and what is left, then each container using more than it requests.
pub fn message(met: &Met, pod: &Candidate) -> String {
    let signal = met.threshold.signal;
    let resource = signal.resource();
    let mut m = format!(
        "The node was low on resource: {resource}. Threshold quantity: {}, available: {}. ",
        format_amount(signal, met.quantity),
        format_amount(signal, met.available.max(0)),
    );
    if matches!(
        signal,
        Signal::MemoryAvailable | Signal::NodeFsAvailable | Signal::ImageFsAvailable
    ) {
        for c in pod.containers.iter().filter(|c| c.usage > c.request) {
            m.push_str(&format!(
                "Container {} was using {}, request is {}, has larger consumption of {resource}. ",
                c.name,
                format_amount(signal, c.usage),
                format_amount(signal, c.request),
            ));
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    const MI: i64 = 1024 * 1024;

    fn obs(signal: Signal, available: i64, capacity: i64) -> Observations {
        [(
            signal,
            Observation {
                available,
                capacity,
            },
        )]
        .into_iter()
        .collect()
    }

    fn cand(uid: &str, priority: i32, uses: &[(i64, i64)]) -> Candidate {
        Candidate {
            uid: uid.into(),
            priority,
            critical: false,
            containers: uses
                .iter()
                .enumerate()
                .map(|(i, (usage, request))| ContainerUse {
                    name: format!("c{i}"),
                    usage: *usage,
                    request: *request,
                })
                .collect(),
        }
    }

    #[test]
    fn thresholds_parse_like_the_kubelets_flags() {
        let t = parse_thresholds("memory.available<100Mi, nodefs.available<10%").unwrap();
        assert_eq!(
            t,
            vec![
                (Signal::MemoryAvailable, Amount::Quantity(100 * MI)),
                (Signal::NodeFsAvailable, Amount::Percent(10.0))
            ]
        );
        assert!(parse_thresholds("memory.free<1Gi")
            .unwrap_err()
            .contains("unknown eviction signal"));
        assert!(parse_thresholds("memory.available=1Gi").is_err());
        assert!(parse_thresholds("nodefs.available<120%").is_err());
    }

    #[test]
    fn a_hard_threshold_reclaims_at_once_and_pressure_outlasts_it() {
        let cfg = EvictionConfig::for_tests();
        let mut n = NodeEviction::default();
        let t0 = Instant::now();
        let healthy = n.observe(
            &cfg,
            &obs(Signal::MemoryAvailable, 500 * MI, 16 * 1024 * MI),
            t0,
        );
        assert_eq!(healthy, Verdict::default());
        let low = n.observe(
            &cfg,
            &obs(Signal::MemoryAvailable, 12 * MI, 16 * 1024 * MI),
            t0,
        );
        assert_eq!(low.pressures, vec![Pressure::Memory]);
        let met = low.reclaim.unwrap();
        assert_eq!((met.quantity, met.available), (100 * MI, 12 * MI));
        let later = t0 + Duration::from_secs(1);
        let recovered = n.observe(
            &cfg,
            &obs(Signal::MemoryAvailable, 900 * MI, 16 * 1024 * MI),
            later,
        );
        assert_eq!(
            recovered.pressures,
            vec![Pressure::Memory],
            "held for the transition period"
        );
        assert!(recovered.reclaim.is_none());
        let gone = n.observe(
            &cfg,
            &obs(Signal::MemoryAvailable, 900 * MI, 16 * 1024 * MI),
            t0 + cfg.pressure_transition_period + Duration::from_secs(1),
        );
        assert!(gone.pressures.is_empty());
    }

    #[test]
    fn a_soft_threshold_reports_pressure_at_once_but_reclaims_after_its_grace() {
        let cfg = EvictionConfig::for_tests().with_soft(vec![(
            Signal::MemoryAvailable,
            Amount::Quantity(1024 * MI),
            Duration::from_secs(5),
        )]);
        let mut n = NodeEviction::default();
        let t0 = Instant::now();
        let o = obs(Signal::MemoryAvailable, 512 * MI, 16 * 1024 * MI);
        let first = n.observe(&cfg, &o, t0);
        assert_eq!(first.pressures, vec![Pressure::Memory]);
        assert!(first.reclaim.is_none());
        assert!(n
            .observe(&cfg, &o, t0 + Duration::from_secs(4))
            .reclaim
            .is_none());
        let due = n
            .observe(&cfg, &o, t0 + Duration::from_secs(5))
            .reclaim
            .unwrap();
        assert_eq!(due.quantity, 1024 * MI);
        assert!(due.threshold.grace.is_some());
    }

    #[test]
    fn percentages_resolve_against_capacity() {
        let cfg = EvictionConfig::for_tests();
        let mut n = NodeEviction::default();
        let gi = 1024 * MI;
        let v = n.observe(
            &cfg,
            &obs(Signal::NodeFsAvailable, 5 * gi, 100 * gi),
            Instant::now(),
        );
        assert_eq!(v.pressures, vec![Pressure::Disk]);
        let met = v.reclaim.unwrap();
        assert_eq!(met.quantity, 10 * gi);
        assert_eq!(
            message(&met, &cand("a", 0, &[])),
            "The node was low on resource: ephemeral-storage. Threshold quantity: 10Gi, available: 5Gi. "
        );
    }

    #[test]
    fn pods_over_their_requests_go_first_then_by_priority_then_by_excess() {
        let guaranteed = cand("guaranteed", 0, &[(500 * MI, 500 * MI)]);
        let big_besteffort = cand("big", 0, &[(900 * MI, 0)]);
        let small_besteffort = cand("small", 0, &[(100 * MI, 0)]);
        let important = cand("important", 1000, &[(2000 * MI, 0)]);
        let mut critical = cand("critical", 0, &[(4000 * MI, 0)]);
        critical.critical = true;
        let all = vec![
            guaranteed.clone(),
            small_besteffort.clone(),
            important.clone(),
            big_besteffort.clone(),
            critical,
        ];
        let order: Vec<&str> = {
            let mut left = all.clone();
            let mut out = Vec::new();
            while let Some(p) = pick(&left, Signal::MemoryAvailable) {
                let uid = p.uid.clone();
                out.push(all.iter().find(|c| c.uid == uid).unwrap().uid.as_str());
                left.retain(|c| c.uid != uid);
            }
            out
        };
        assert_eq!(order, ["big", "small", "important", "guaranteed"]);
    }

    #[test]
    fn the_message_names_the_containers_over_their_requests() {
        let met = Met {
            threshold: EvictionConfig::default().hard[0],
            quantity: 100 * MI,
            available: 12 * MI,
        };
        let pod = Candidate {
            uid: "u".into(),
            priority: 0,
            critical: false,
            containers: vec![
                ContainerUse {
                    name: "x".into(),
                    usage: 900 * MI,
                    request: 0,
                },
                ContainerUse {
                    name: "quiet".into(),
                    usage: 10 * MI,
                    request: 64 * MI,
                },
            ],
        };
        assert_eq!(
            message(&met, &pod),
            "The node was low on resource: memory. Threshold quantity: 100Mi, available: 12Mi. \
             Container x was using 900Mi, request is 0, has larger consumption of memory. "
        );
    }
}
