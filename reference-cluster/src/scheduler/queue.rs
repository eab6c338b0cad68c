//! The scheduling queue (upstream `PriorityQueue`): an active queue ordered by priority then
//! arrival, a back-off queue (1s doubling to 10s per failed attempt), and a pool of
//! unschedulable pods that only move back when a cluster event that may help them happens, or
//! after five minutes. Events that happen while a pod is being scheduled are remembered, so a
//! pod that fails right after the event that would have helped it is not parked.
//!
//! Also the nominator: pods that preempted others and wait for their nominated node.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::framework::events::ClusterEvent;
use super::framework::Framework;
use super::metrics::{PendingCounts, SchedulerMetrics};
use super::podinfo::PodInfo;

#[derive(Clone, Debug)]
pub struct QueuedPodInfo {
    pub pod: Arc<PodInfo>,
    /// When the pod last entered the queue.
    pub timestamp: Instant,
    pub initial_attempt: Option<Instant>,
    pub attempts: u32,
    pub unschedulable_plugins: BTreeSet<&'static str>,
    pub pending_plugins: BTreeSet<&'static str>,
    /// Held back by a PreEnqueue plugin (scheduling gates); never attempted while gated.
    pub gated: bool,
}

impl QueuedPodInfo {
    pub fn new(pod: Arc<PodInfo>, now: Instant) -> QueuedPodInfo {
        QueuedPodInfo {
            pod,
            timestamp: now,
            initial_attempt: None,
            attempts: 0,
            unschedulable_plugins: BTreeSet::new(),
            pending_plugins: BTreeSet::new(),
            gated: false,
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct QueueConfig {
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Pods unschedulable for longer than this are retried anyway.
    pub max_in_unschedulable: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
            max_in_unschedulable: Duration::from_secs(300),
        }
    }
}

/// Where a pod went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    Active,
    Backoff,
    Unschedulable,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Strategy {
    Skip,
    AfterBackoff,
    Immediately,
}

type ActiveKey = (Reverse<i32>, Instant, u64);

/// Profiles by scheduler name.
pub type Profiles = HashMap<String, Arc<Framework>>;

pub struct SchedulingQueue {
    cfg: QueueConfig,
    profiles: Arc<Profiles>,
    seq: u64,
    active: BTreeMap<ActiveKey, String>,
    active_items: HashMap<String, (ActiveKey, QueuedPodInfo)>,
    backoff: BTreeMap<(Instant, u64), String>,
    backoff_items: HashMap<String, ((Instant, u64), QueuedPodInfo)>,
    unschedulable: HashMap<String, QueuedPodInfo>,
    /// Pods being scheduled → the sequence number of the first event after they were popped.
    in_flight: HashMap<String, u64>,
    in_flight_events: VecDeque<(u64, ClusterEvent)>,
    event_seq: u64,
    pub nominator: Nominator,
    metrics: Option<SchedulerMetrics>,
}

impl SchedulingQueue {
    pub fn new(cfg: QueueConfig, profiles: Arc<Profiles>) -> SchedulingQueue {
        SchedulingQueue {
            cfg,
            profiles,
            seq: 0,
            active: BTreeMap::new(),
            active_items: HashMap::new(),
            backoff: BTreeMap::new(),
            backoff_items: HashMap::new(),
            unschedulable: HashMap::new(),
            in_flight: HashMap::new(),
            in_flight_events: VecDeque::new(),
            event_seq: 0,
            nominator: Nominator::default(),
            metrics: None,
        }
    }

    /// Counts every pod entering a queue in `scheduler_queue_incoming_pods_total`.
    pub fn with_metrics(mut self, metrics: SchedulerMetrics) -> SchedulingQueue {
        self.metrics = Some(metrics);
        self
    }

    fn count_incoming(&self, placement: Placement, event: &str) -> Placement {
        if let Some(m) = &self.metrics {
            let queue = match placement {
                Placement::Active => "active",
                Placement::Backoff => "backoff",
                Placement::Unschedulable => "unschedulable",
            };
            m.observe_incoming(queue, event);
        }
        placement
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn framework(&self, pod: &PodInfo) -> Option<&Arc<Framework>> {
        self.profiles.get(pod.scheduler_name())
    }

    pub fn counts(&self) -> PendingCounts {
        let gated = self.unschedulable.values().filter(|p| p.gated).count();
        PendingCounts {
            active: self.active.len(),
            backoff: self.backoff.len(),
            unschedulable: self.unschedulable.len() - gated,
            gated,
        }
    }

    pub fn contains(&self, key: &str) -> bool {
        self.active_items.contains_key(key)
            || self.backoff_items.contains_key(key)
            || self.unschedulable.contains_key(key)
    }

    pub fn is_in_flight(&self, key: &str) -> bool {
        self.in_flight.contains_key(key)
    }

    pub fn placement(&self, key: &str) -> Option<Placement> {
        if self.active_items.contains_key(key) {
            Some(Placement::Active)
        } else if self.backoff_items.contains_key(key) {
            Some(Placement::Backoff)
        } else if self.unschedulable.contains_key(key) {
            Some(Placement::Unschedulable)
        } else {
            None
        }
    }

    fn backoff_duration(&self, attempts: u32) -> Duration {
        if attempts == 0 {
            return Duration::ZERO;
        }
        let mut d = self.cfg.initial_backoff;
        for _ in 1..attempts {
            if d > self.cfg.max_backoff.saturating_sub(d) {
                return self.cfg.max_backoff;
            }
            d += d;
        }
        d.min(self.cfg.max_backoff)
    }

    fn backoff_expiry(&self, p: &QueuedPodInfo) -> Instant {
        p.timestamp + self.backoff_duration(p.attempts)
    }

    fn is_backing_off(&self, p: &QueuedPodInfo, now: Instant) -> bool {
        !p.gated && self.backoff_expiry(p) > now
    }

    /// Puts the pod in the active queue unless a PreEnqueue plugin holds it back (then it
    /// waits, gated, in the unschedulable pool).
    fn move_to_active(&mut self, mut p: QueuedPodInfo, event: &str) -> Placement {
        if let Some(fwk) = self.framework(&p.pod).cloned() {
            let s = fwk.run_pre_enqueue(&p.pod);
            if !s.is_success() {
                p.gated = true;
                p.unschedulable_plugins =
                    [s.plugin()].into_iter().filter(|n| !n.is_empty()).collect();
                p.pending_plugins.clear();
                self.unschedulable.insert(p.pod.key.clone(), p);
                return self.count_incoming(Placement::Unschedulable, event);
            }
        }
        p.gated = false;
        let key: ActiveKey = (Reverse(p.pod.priority), p.timestamp, self.next_seq());
        let name = p.pod.key.clone();
        self.remove_everywhere(&name);
        self.active.insert(key, name.clone());
        self.active_items.insert(name, (key, p));
        self.count_incoming(Placement::Active, event)
    }

    fn move_to_backoff(&mut self, p: QueuedPodInfo, event: &str) -> Placement {
        let key = (self.backoff_expiry(&p), self.next_seq());
        let name = p.pod.key.clone();
        self.remove_everywhere(&name);
        self.backoff.insert(key, name.clone());
        self.backoff_items.insert(name, (key, p));
        self.count_incoming(Placement::Backoff, event)
    }

    fn remove_everywhere(&mut self, key: &str) -> Option<QueuedPodInfo> {
        if let Some((k, p)) = self.active_items.remove(key) {
            self.active.remove(&k);
            return Some(p);
        }
        if let Some((k, p)) = self.backoff_items.remove(key) {
            self.backoff.remove(&k);
            return Some(p);
        }
        self.unschedulable.remove(key)
    }

    /// A new pending pod.
    pub fn add(&mut self, pod: Arc<PodInfo>, now: Instant) -> Placement {
        self.nominator.add_from_status(&pod);
        if let Some(existing) = self.remove_everywhere(&pod.key) {
            let mut p = existing;
            p.pod = pod;
            return self.move_to_active(p, "PodAdd");
        }
        self.move_to_active(QueuedPodInfo::new(pod, now), "PodAdd")
    }

    /// A pending pod changed. `events` are what changed about it (see `pod_update_events`);
    /// `old_nominated` is the previous version's `status.nominatedNodeName`.
    pub fn update(
        &mut self,
        pod: Arc<PodInfo>,
        old_nominated: &str,
        events: &[ClusterEvent],
        now: Instant,
    ) -> Option<Placement> {
        self.nominator.update(old_nominated, &pod);
        let key = pod.key.clone();
        match self.active_items.get_mut(&key) {
            Some((_, p)) if p.pod.priority == pod.priority => {
                p.pod = pod;
                return Some(Placement::Active);
            }
            Some(_) => {
                // The sort key changes with the priority.
                let mut p = self.remove_everywhere(&key)?;
                p.pod = pod;
                return Some(self.move_to_active(p, "PodUpdate"));
            }
            None => {}
        }
        if let Some((_, p)) = self.backoff_items.get_mut(&key) {
            p.pod = pod;
            return Some(Placement::Backoff);
        }
        if let Some(mut p) = self.unschedulable.remove(&key) {
            p.pod = pod;
            for e in events {
                let strategy = self.worth_requeuing(&p, e);
                if strategy != Strategy::Skip {
                    return Some(self.requeue(p, strategy, now, "PodUpdate"));
                }
            }
            self.unschedulable.insert(key, p);
            return Some(Placement::Unschedulable);
        }
        if self.in_flight.contains_key(&key) {
            // Being scheduled: remember the update in case the attempt fails.
            for e in events {
                self.record_event(*e);
            }
            return None;
        }
        Some(self.add(pod, now))
    }

    /// The pod was deleted or got bound.
    pub fn delete(&mut self, key: &str) {
        self.remove_everywhere(key);
        self.nominator.delete(key);
    }

    /// The highest-priority pod ready to be scheduled.
    pub fn pop(&mut self, now: Instant) -> Option<QueuedPodInfo> {
        let (_, key) = self.active.pop_first()?;
        let (_, mut p) = self.active_items.remove(&key)?;
        p.attempts += 1;
        p.initial_attempt.get_or_insert(now);
        self.in_flight.insert(key, self.event_seq + 1);
        Some(p)
    }

    /// The attempt on this pod is over (whatever its outcome).
    pub fn done(&mut self, key: &str) {
        if self.in_flight.remove(key).is_none() {
            return;
        }
        match self.in_flight.values().min() {
            None => self.in_flight_events.clear(),
            Some(oldest) => {
                while self
                    .in_flight_events
                    .front()
                    .is_some_and(|(s, _)| s < oldest)
                {
                    self.in_flight_events.pop_front();
                }
            }
        }
    }

    fn record_event(&mut self, e: ClusterEvent) {
        if self.in_flight.is_empty() {
            return;
        }
        self.event_seq += 1;
        self.in_flight_events.push_back((self.event_seq, e));
    }

    fn worth_requeuing(&self, p: &QueuedPodInfo, event: &ClusterEvent) -> Strategy {
        if p.unschedulable_plugins.is_empty() && p.pending_plugins.is_empty() {
            return Strategy::AfterBackoff;
        }
        if event.is_wildcard() {
            return Strategy::AfterBackoff;
        }
        let Some(fwk) = self.framework(&p.pod) else {
            return Strategy::AfterBackoff;
        };
        if fwk.event_may_help(&p.pending_plugins, event) {
            return Strategy::Immediately;
        }
        if fwk.event_may_help(&p.unschedulable_plugins, event) {
            return Strategy::AfterBackoff;
        }
        Strategy::Skip
    }

    /// `worth_requeuing` with the event's interested plugins already known (per profile), so
    /// moving many pods costs a few set lookups each.
    fn worth_requeuing_for(
        p: &QueuedPodInfo,
        event: &ClusterEvent,
        interested: &[&'static str],
    ) -> Strategy {
        if (p.unschedulable_plugins.is_empty() && p.pending_plugins.is_empty())
            || event.is_wildcard()
        {
            return Strategy::AfterBackoff;
        }
        if p.pending_plugins.iter().any(|x| interested.contains(x)) {
            return Strategy::Immediately;
        }
        if p.unschedulable_plugins
            .iter()
            .any(|x| interested.contains(x))
        {
            return Strategy::AfterBackoff;
        }
        Strategy::Skip
    }

    fn requeue(
        &mut self,
        p: QueuedPodInfo,
        strategy: Strategy,
        now: Instant,
        event: &str,
    ) -> Placement {
        match strategy {
            Strategy::Skip => {
                self.unschedulable.insert(p.pod.key.clone(), p);
                self.count_incoming(Placement::Unschedulable, event)
            }
            Strategy::AfterBackoff if self.is_backing_off(&p, now) => {
                self.move_to_backoff(p, event)
            }
            _ => self.move_to_active(p, event),
        }
    }

    /// A failed attempt: park the pod, unless an event during its attempt may have helped.
    pub fn add_unschedulable(&mut self, mut p: QueuedPodInfo, now: Instant) -> Placement {
        let key = p.pod.key.clone();
        let since = self.in_flight.get(&key).copied();
        p.timestamp = now;
        let strategy = if p.unschedulable_plugins.is_empty() && p.pending_plugins.is_empty() {
            // An error rather than a rejection: retry after back-off.
            Strategy::AfterBackoff
        } else if let Some(since) = since {
            self.in_flight_events
                .iter()
                .filter(|(s, _)| *s >= since)
                .map(|(_, e)| self.worth_requeuing(&p, e))
                .max()
                .unwrap_or(Strategy::Skip)
        } else {
            Strategy::Skip
        };
        self.done(&key);
        if self.contains(&key) {
            // Re-added by an update meanwhile; keep that newer entry.
            return self.placement(&key).unwrap_or(Placement::Active);
        }
        self.requeue(p, strategy, now, "ScheduleAttemptFailure")
    }

    /// A cluster event happened: move the unschedulable pods it may help.
    pub fn move_all(&mut self, event: ClusterEvent, now: Instant, except: Option<&str>) {
        if !self.unschedulable.is_empty() {
            let interest: HashMap<&str, Vec<&'static str>> = self
                .profiles
                .iter()
                .map(|(name, fwk)| (name.as_str(), fwk.plugins_interested_in(&event)))
                .collect();
            let moves: Vec<(String, Strategy)> = self
                .unschedulable
                .iter()
                .filter(|(k, _)| Some(k.as_str()) != except)
                .filter_map(|(k, p)| {
                    let strategy = match interest.get(p.pod.scheduler_name()) {
                        Some(i) => Self::worth_requeuing_for(p, &event, i),
                        None => Strategy::AfterBackoff,
                    };
                    (strategy != Strategy::Skip).then(|| (k.clone(), strategy))
                })
                .collect();
            for (k, strategy) in moves {
                if let Some(p) = self.unschedulable.remove(&k) {
                    self.requeue(p, strategy, now, event.label());
                }
            }
        }
        self.record_event(event);
    }

    /// Moves pods whose back-off is over to the active queue.
    pub fn flush_backoff_completed(&mut self, now: Instant) {
        while let Some((&(expiry, seq), _)) = self.backoff.first_key_value() {
            if expiry > now {
                break;
            }
            let key = self.backoff.remove(&(expiry, seq)).unwrap_or_default();
            if let Some((_, p)) = self.backoff_items.remove(&key) {
                self.move_to_active(p, "BackoffComplete");
            }
        }
    }

    /// Retries pods that have been unschedulable for too long.
    pub fn flush_unschedulable_leftover(&mut self, now: Instant) {
        let max = self.cfg.max_in_unschedulable;
        let keys: Vec<String> = self
            .unschedulable
            .iter()
            .filter(|(_, p)| now.saturating_duration_since(p.timestamp) > max)
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            if let Some(p) = self.unschedulable.remove(&k) {
                self.requeue(p, Strategy::AfterBackoff, now, "UnschedulableTimeout");
            }
        }
    }

    /// When the next back-off expires.
    pub fn next_backoff_expiry(&self) -> Option<Instant> {
        self.backoff.first_key_value().map(|((t, _), _)| *t)
    }

    pub fn has_active(&self) -> bool {
        !self.active.is_empty()
    }
}

/// Pods nominated to nodes by preemption, so that filtering on those nodes accounts for them.
#[derive(Default)]
pub struct Nominator {
    by_node: HashMap<String, Vec<Arc<PodInfo>>>,
    by_pod: HashMap<String, String>,
}

impl Nominator {
    pub fn is_empty(&self) -> bool {
        self.by_pod.is_empty()
    }

    pub fn pods_for_node(&self, node: &str) -> &[Arc<PodInfo>] {
        self.by_node
            .get(node)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    pub fn node_of(&self, key: &str) -> Option<&str> {
        self.by_pod.get(key).map(String::as_str)
    }

    pub fn delete(&mut self, key: &str) {
        if let Some(node) = self.by_pod.remove(key) {
            if let Some(v) = self.by_node.get_mut(&node) {
                v.retain(|p| p.key != key);
                if v.is_empty() {
                    self.by_node.remove(&node);
                }
            }
        }
    }

    /// Nominates the pod to `node`; an empty node clears the nomination.
    pub fn set(&mut self, pod: Arc<PodInfo>, node: &str) {
        self.delete(&pod.key);
        if node.is_empty() || !pod.node_name().is_empty() {
            return;
        }
        self.by_pod.insert(pod.key.clone(), node.to_string());
        self.by_node.entry(node.to_string()).or_default().push(pod);
    }

    /// Picks up `status.nominatedNodeName` of a pod seen through the API.
    pub fn add_from_status(&mut self, pod: &Arc<PodInfo>) {
        let nnn = pod.nominated_node_name();
        if !nnn.is_empty() {
            self.set(pod.clone(), nnn);
        }
    }

    /// A new version of a pending pod: its status wins, but a nomination made in memory
    /// survives an update in which neither version has one yet (the status patch is still on
    /// its way).
    pub fn update(&mut self, old_nominated: &str, pod: &Arc<PodInfo>) {
        let nnn = pod.nominated_node_name().to_string();
        let node = if nnn.is_empty() && old_nominated.is_empty() {
            match self.by_pod.get(&pod.key) {
                Some(n) => n.clone(),
                None => return,
            }
        } else {
            nnn
        };
        if node.is_empty() {
            self.delete(&pod.key);
            return;
        }
        self.set(pod.clone(), &node);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::framework::events::{
        EventResource, ADD, UPDATE_NODE_LABEL, UPDATE_NODE_TAINT,
    };
    use crate::scheduler::framework::runtime::PluginLists;
    use crate::scheduler::framework::{points, Plugin, Status};
    use serde_json::json;

    struct Gate;
    impl Plugin for Gate {
        fn name(&self) -> &'static str {
            "SchedulingGates"
        }
        fn points(&self) -> u32 {
            points::PRE_ENQUEUE
        }
        fn pre_enqueue(&self, pod: &PodInfo) -> Status {
            if pod
                .pod
                .metadata
                .labels
                .as_ref()
                .is_some_and(|l| l.contains_key("gated"))
            {
                Status::unresolvable("gated")
            } else {
                Status::success()
            }
        }
    }

    struct Taints;
    impl Plugin for Taints {
        fn name(&self) -> &'static str {
            "TaintToleration"
        }
        fn points(&self) -> u32 {
            points::FILTER
        }
        fn events_to_register(&self) -> Vec<ClusterEvent> {
            vec![ClusterEvent::new(
                EventResource::Node,
                ADD | UPDATE_NODE_TAINT,
            )]
        }
    }

    fn queue() -> SchedulingQueue {
        let fwk = Framework::new(
            "default-scheduler",
            None,
            PluginLists {
                pre_enqueue: vec![Arc::new(Gate)],
                filter: vec![Arc::new(Taints)],
                ..Default::default()
            },
        );
        let profiles: Profiles = [("default-scheduler".to_string(), Arc::new(fwk))].into();
        SchedulingQueue::new(QueueConfig::default(), Arc::new(profiles))
    }

    fn pod(name: &str, priority: i32, labels: serde_json::Value) -> Arc<PodInfo> {
        Arc::new(PodInfo::new(
            Arc::new(
                serde_json::from_value(json!({"metadata": {"name": name, "namespace": "d", "labels": labels}, "spec": {"containers": []}}))
                    .unwrap(),
            ),
            priority,
        ))
    }

    #[test]
    fn pops_by_priority_then_arrival() {
        let mut q = queue();
        let t = Instant::now();
        q.add(pod("low", 0, json!({})), t);
        q.add(pod("high", 100, json!({})), t + Duration::from_millis(1));
        q.add(pod("low2", 0, json!({})), t + Duration::from_millis(2));
        let order: Vec<String> = std::iter::from_fn(|| q.pop(t))
            .map(|p| p.pod.name.clone())
            .collect();
        assert_eq!(order, ["high", "low", "low2"]);
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let q = queue();
        let secs: Vec<u64> = (1..=6).map(|a| q.backoff_duration(a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 10, 10]);
        assert_eq!(q.backoff_duration(0), Duration::ZERO);
    }

    fn fail(q: &mut SchedulingQueue, now: Instant, plugin: &'static str) -> Placement {
        let mut p = q.pop(now).expect("a pod to pop");
        if !plugin.is_empty() {
            p.unschedulable_plugins.insert(plugin);
        }
        q.add_unschedulable(p, now)
    }

    #[test]
    fn unschedulable_pods_wait_for_a_relevant_event() {
        let mut q = queue();
        let t = Instant::now();
        q.add(pod("p", 0, json!({})), t);
        assert_eq!(fail(&mut q, t, "TaintToleration"), Placement::Unschedulable);
        // A pod deletion does not help a taint problem.
        q.move_all(ClusterEvent::ASSIGNED_POD_DELETE, t, None);
        assert_eq!(q.placement("d/p"), Some(Placement::Unschedulable));
        // A label change neither.
        q.move_all(
            ClusterEvent::new(EventResource::Node, UPDATE_NODE_LABEL),
            t,
            None,
        );
        assert_eq!(q.placement("d/p"), Some(Placement::Unschedulable));
        // A taint change does; the pod still backs off for a second.
        q.move_all(
            ClusterEvent::new(EventResource::Node, UPDATE_NODE_TAINT),
            t,
            None,
        );
        assert_eq!(q.placement("d/p"), Some(Placement::Backoff));
        assert!(q.pop(t).is_none());
        q.flush_backoff_completed(t + Duration::from_millis(999));
        assert!(!q.has_active());
        q.flush_backoff_completed(t + Duration::from_secs(1));
        assert_eq!(
            q.pop(t + Duration::from_secs(1)).map(|p| p.attempts),
            Some(2)
        );
    }

    #[test]
    fn incoming_pods_are_counted_by_queue_and_event() {
        let metrics = SchedulerMetrics::new();
        let mut q = queue().with_metrics(metrics.clone());
        let t = Instant::now();
        q.add(pod("p", 0, json!({})), t);
        q.add(pod("gated", 0, json!({"gated": "yes"})), t);
        fail(&mut q, t, "TaintToleration");
        q.move_all(
            ClusterEvent::new(EventResource::Node, UPDATE_NODE_TAINT),
            t,
            None,
        );
        q.flush_backoff_completed(t + Duration::from_secs(1));
        let text = crate::apiserver::metrics::render(metrics.registry());
        for series in [
            r#"scheduler_queue_incoming_pods_total{event="PodAdd",queue="active"} 1"#,
            r#"scheduler_queue_incoming_pods_total{event="PodAdd",queue="unschedulable"} 1"#,
            r#"scheduler_queue_incoming_pods_total{event="ScheduleAttemptFailure",queue="unschedulable"} 1"#,
            r#"scheduler_queue_incoming_pods_total{event="NodeTaintChange",queue="backoff"} 1"#,
            r#"scheduler_queue_incoming_pods_total{event="BackoffComplete",queue="active"} 1"#,
        ] {
            assert!(text.contains(series), "{series} missing from:\n{text}");
        }
    }

    #[test]
    fn event_during_the_attempt_is_not_lost() {
        let mut q = queue();
        let t = Instant::now();
        q.add(pod("p", 0, json!({})), t);
        let mut p = q.pop(t).unwrap();
        q.move_all(ClusterEvent::NODE_ADD, t, None);
        p.unschedulable_plugins.insert("TaintToleration");
        assert_eq!(q.add_unschedulable(p, t), Placement::Backoff);
        // Without an event, the same failure parks the pod.
        q.flush_backoff_completed(t + Duration::from_secs(5));
        assert_eq!(
            fail(&mut q, t + Duration::from_secs(5), "TaintToleration"),
            Placement::Unschedulable
        );
    }

    #[test]
    fn errors_back_off_and_leftovers_are_flushed() {
        let mut q = queue();
        let t = Instant::now();
        q.add(pod("p", 0, json!({})), t);
        assert_eq!(fail(&mut q, t, ""), Placement::Backoff);
        assert_eq!(q.next_backoff_expiry(), Some(t + Duration::from_secs(1)));
        q.flush_backoff_completed(t + Duration::from_secs(1));
        assert_eq!(
            fail(&mut q, t + Duration::from_secs(1), "TaintToleration"),
            Placement::Unschedulable
        );
        q.flush_unschedulable_leftover(t + Duration::from_secs(200));
        assert_eq!(q.placement("d/p"), Some(Placement::Unschedulable));
        q.flush_unschedulable_leftover(t + Duration::from_secs(302));
        assert_eq!(q.placement("d/p"), Some(Placement::Active));
    }

    #[test]
    fn gated_pods_wait_until_the_gate_is_gone() {
        let mut q = queue();
        let t = Instant::now();
        assert_eq!(
            q.add(pod("g", 0, json!({"gated": "yes"})), t),
            Placement::Unschedulable
        );
        assert_eq!(q.counts().gated, 1);
        q.move_all(ClusterEvent::WILDCARD, t, None);
        assert_eq!(
            q.placement("d/g"),
            Some(Placement::Unschedulable),
            "still gated"
        );
        let ungated = pod("g", 0, json!({}));
        let events = [ClusterEvent::new(
            EventResource::Pod,
            crate::scheduler::framework::events::UPDATE_POD_LABEL,
        )];
        q.update(ungated, "", &events, t);
        assert_eq!(
            q.placement("d/g"),
            Some(Placement::Unschedulable),
            "SchedulingGates registered no event here"
        );
        q.move_all(ClusterEvent::WILDCARD, t, None);
        assert_eq!(q.placement("d/g"), Some(Placement::Active));
        assert_eq!(
            q.counts(),
            PendingCounts {
                active: 1,
                ..Default::default()
            }
        );
    }

    #[test]
    fn delete_and_update_of_queued_pods() {
        let mut q = queue();
        let t = Instant::now();
        q.add(pod("a", 0, json!({})), t);
        q.update(pod("a", 50, json!({})), "", &[], t);
        q.add(pod("b", 10, json!({})), t);
        assert_eq!(
            q.pop(t).unwrap().pod.name,
            "a",
            "priority raised by the update"
        );
        q.delete("d/b");
        assert!(q.pop(t).is_none());
        // An update of an unknown pod adds it.
        assert_eq!(
            q.update(pod("c", 0, json!({})), "", &[], t),
            Some(Placement::Active)
        );
    }

    #[test]
    fn nominator_tracks_nominations() {
        let mut n = Nominator::default();
        let p = pod("p", 5, json!({}));
        n.set(p.clone(), "n1");
        assert_eq!(n.pods_for_node("n1").len(), 1);
        n.update("", &p);
        assert_eq!(
            n.node_of("d/p"),
            Some("n1"),
            "in-memory nomination survives a stale update"
        );
        n.update("n1", &p);
        assert_eq!(
            n.node_of("d/p"),
            None,
            "a cleared status clears the nomination"
        );
        n.set(p.clone(), "n1");
        n.set(p.clone(), "n2");
        assert!(n.pods_for_node("n1").is_empty());
        n.set(p, "");
        assert!(n.node_of("d/p").is_none());
    }
}
