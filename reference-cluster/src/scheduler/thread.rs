//! The scheduling thread. It owns the cache and the queue, applies watch updates between
//! cycles, runs one scheduling cycle per pod, and hands API work (binding, status, events,
//! preemption) to tasks on the async runtime; binding results come back as messages. Keeping
//! the cycle on one thread with no locks is what lets a cycle read the cache as a snapshot.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use serde_json::{json, Value};
use tokio::runtime::Handle;

use super::algorithm::{schedule_pod, Failure};
use super::api::ApiClient;
use super::cache::Cache;
use super::events::{pod_ref, EventRecorder};
use super::framework::diagnosis::truncate_event_message;
use super::framework::events::{
    assigned_pod_update_events, node_update_events, pod_update_events, ClusterEvent, EventResource,
    ADD, UPDATE,
};
use super::framework::{Code, Ctx, CycleState, Diagnosis, FitError, Framework, Preemption, Status};
use super::informers::{Ev, Update, INFORMER_COUNT};
use super::metrics::{AttemptResult, SchedulerMetrics};
use super::podinfo::PodInfo;
use super::queue::{Profiles, QueueConfig, QueuedPodInfo, SchedulingQueue};

pub enum Msg {
    Watch(Update),
    /// A binding cycle ended.
    Bound {
        key: String,
        status: Status,
    },
    Stop,
}

/// Everything the thread shares with the async side.
pub struct Shared {
    pub api: Arc<ApiClient>,
    /// Event recorders by profile (scheduler name).
    pub events: HashMap<String, Arc<EventRecorder>>,
    pub metrics: SchedulerMetrics,
    pub rt: Handle,
    pub tx: Sender<Msg>,
    /// Cleared when leadership is lost or the scheduler stops: nothing is written after that.
    pub active: Arc<AtomicBool>,
}

/// A pod between assume and the end of its binding cycle.
struct Binding {
    qpi: QueuedPodInfo,
    state: CycleState,
    node: String,
    start: Instant,
}

pub struct Settings {
    pub percentage_of_nodes_to_score: i32,
    pub queue: QueueConfig,
}

/// How many pods are scheduled before pending updates are applied again.
const BATCH: usize = 32;
const LEFTOVER_FLUSH: Duration = Duration::from_secs(30);

pub struct Scheduler {
    profiles: Arc<Profiles>,
    cache: Cache,
    queue: SchedulingQueue,
    /// Latest version of every non-terminal pod (the informer's lister).
    pods: HashMap<String, Arc<Pod>>,
    binding: HashMap<String, Binding>,
    next_start: usize,
    percentage: i32,
    synced: std::collections::HashSet<&'static str>,
    shared: Shared,
}

fn key_of<K: kube::Resource>(o: &K) -> String {
    match o.meta().namespace.as_deref() {
        Some(ns) if !ns.is_empty() => format!("{ns}/{}", o.name_any()),
        _ => o.name_any(),
    }
}

fn is_terminal(p: &Pod) -> bool {
    matches!(
        p.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded") | Some("Failed")
    )
}

fn node_name(p: &Pod) -> &str {
    p.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

fn nominated(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.nominated_node_name.as_deref())
        .unwrap_or("")
}

/// Applies a watch event to a keyed map; returns the change as a cluster event action.
fn apply_map<K: kube::Resource, V>(
    map: &mut HashMap<String, V>,
    ev: Ev<K>,
    val: impl Fn(&K) -> V,
) -> Option<u32> {
    match ev {
        Ev::Apply(o) => Some(match map.insert(key_of(&*o), val(&o)) {
            None => ADD,
            Some(_) => UPDATE,
        }),
        Ev::Delete(o) => {
            map.remove(&key_of(&*o));
            None
        }
        Ev::Replace(list) => {
            map.clear();
            for o in &list {
                map.insert(key_of(&**o), val(o));
            }
            Some(ADD | UPDATE)
        }
    }
}

impl Scheduler {
    pub fn new(profiles: Arc<Profiles>, settings: Settings, shared: Shared) -> Scheduler {
        Scheduler {
            queue: SchedulingQueue::new(settings.queue, profiles.clone())
                .with_metrics(shared.metrics.clone()),
            profiles,
            cache: Cache::new(),
            pods: HashMap::new(),
            binding: HashMap::new(),
            next_start: 0,
            percentage: settings.percentage_of_nodes_to_score,
            synced: Default::default(),
            shared,
        }
    }

    /// The profile's event recorder (every profile has one; any will do otherwise).
    fn recorder(&self, profile: &str) -> Option<Arc<EventRecorder>> {
        self.shared
            .events
            .get(profile)
            .or_else(|| self.shared.events.values().next())
            .cloned()
    }

    fn ready(&self) -> bool {
        self.synced.len() >= INFORMER_COUNT
    }

    fn active(&self) -> bool {
        self.shared.active.load(Ordering::Acquire)
    }

    /// The thread's main loop; returns when told to stop.
    pub fn run(mut self, rx: Receiver<Msg>) {
        let mut last_leftover = Instant::now();
        let mut last_metrics = Instant::now() - Duration::from_secs(1);
        'outer: loop {
            let now = Instant::now();
            let wait = if self.ready() && self.queue.has_active() {
                Duration::ZERO
            } else {
                self.queue
                    .next_backoff_expiry()
                    .map(|t| t.saturating_duration_since(now))
                    .unwrap_or(Duration::from_secs(1))
                    .min(Duration::from_secs(1))
            };
            match rx.recv_timeout(wait) {
                Ok(m) => {
                    if !self.handle(m) {
                        break;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            while let Ok(m) = rx.try_recv() {
                if !self.handle(m) {
                    break 'outer;
                }
            }
            if !self.active() {
                break;
            }
            let now = Instant::now();
            self.queue.flush_backoff_completed(now);
            if now.duration_since(last_leftover) >= LEFTOVER_FLUSH {
                self.queue.flush_unschedulable_leftover(now);
                last_leftover = now;
            }
            if self.ready() {
                for _ in 0..BATCH {
                    if !self.queue.has_active() || !self.active() {
                        break;
                    }
                    self.schedule_one();
                }
            }
            if now.duration_since(last_metrics) >= Duration::from_millis(200) {
                self.shared.metrics.set_pending(self.queue.counts());
                last_metrics = now;
            }
        }
        self.shared.metrics.set_pending(self.queue.counts());
    }

    fn handle(&mut self, m: Msg) -> bool {
        match m {
            Msg::Stop => return false,
            Msg::Watch(u) => self.on_update(u),
            Msg::Bound { key, status } => self.on_bound(key, status),
        }
        true
    }

    fn move_all(&mut self, resource: EventResource, action: u32) {
        self.queue
            .move_all(ClusterEvent::new(resource, action), Instant::now(), None);
    }

    fn on_update(&mut self, u: Update) {
        match u {
            Update::Pod(ev) => match ev {
                Ev::Apply(p) => self.on_pod(p),
                Ev::Delete(p) => self.on_pod_delete(&key_of(&*p)),
                Ev::Replace(list) => {
                    self.synced.insert("pods");
                    let keep: std::collections::HashSet<String> =
                        list.iter().map(|p| key_of(&**p)).collect();
                    let gone: Vec<String> = self
                        .pods
                        .keys()
                        .filter(|k| !keep.contains(*k))
                        .cloned()
                        .collect();
                    for k in gone {
                        self.on_pod_delete(&k);
                    }
                    for p in list {
                        self.on_pod(p);
                    }
                }
            },
            Update::Node(ev) => match ev {
                Ev::Apply(n) => self.on_node(n),
                Ev::Delete(n) => {
                    self.cache.remove_node(&n.name_any());
                }
                Ev::Replace(list) => {
                    self.synced.insert("nodes");
                    let keep: std::collections::HashSet<String> =
                        list.iter().map(|n| n.name_any()).collect();
                    let gone: Vec<String> = self
                        .cache
                        .nodes()
                        .map(|n| n.name().to_string())
                        .filter(|n| !keep.contains(n))
                        .collect();
                    for n in gone {
                        self.cache.remove_node(&n);
                    }
                    for n in list {
                        self.on_node(n);
                    }
                }
            },
            Update::Pvc(ev) => {
                self.mark_synced_if_replace(&ev, "pvcs");
                if let Some(a) =
                    apply_map(&mut self.cache.listers.pvcs, ev, |o| Arc::new(o.clone()))
                {
                    self.move_all(EventResource::PersistentVolumeClaim, a);
                }
            }
            Update::Pv(ev) => {
                self.mark_synced_if_replace(&ev, "pvs");
                if let Some(a) = apply_map(&mut self.cache.listers.pvs, ev, |o| Arc::new(o.clone()))
                {
                    self.move_all(EventResource::PersistentVolume, a);
                }
            }
            Update::StorageClass(ev) => {
                self.mark_synced_if_replace(&ev, "storageclasses");
                if let Some(a) = apply_map(&mut self.cache.listers.storage_classes, ev, |o| {
                    Arc::new(o.clone())
                }) {
                    self.move_all(EventResource::StorageClass, a);
                }
            }
            Update::Namespace(ev) => {
                self.mark_synced_if_replace(&ev, "namespaces");
                apply_map(&mut self.cache.listers.namespaces, ev, |o| {
                    o.metadata.labels.clone().unwrap_or_default()
                });
            }
            Update::Pdb(ev) => {
                self.mark_synced_if_replace(&ev, "pdbs");
                apply_map(&mut self.cache.listers.pdbs, ev, |o| Arc::new(o.clone()));
            }
            Update::Service(ev) => {
                self.mark_synced_if_replace(&ev, "services");
                apply_map(&mut self.cache.listers.services, ev, |o| {
                    o.spec.as_ref().and_then(|s| s.selector.clone())
                });
            }
            Update::ReplicationController(ev) => {
                self.mark_synced_if_replace(&ev, "replicationcontrollers");
                apply_map(&mut self.cache.listers.replication_controllers, ev, |o| {
                    o.spec.as_ref().and_then(|s| s.selector.clone())
                });
            }
            Update::ReplicaSet(ev) => {
                self.mark_synced_if_replace(&ev, "replicasets");
                apply_map(&mut self.cache.listers.replica_sets, ev, |o| {
                    o.spec.as_ref().map(|s| s.selector.clone())
                });
            }
            Update::StatefulSet(ev) => {
                self.mark_synced_if_replace(&ev, "statefulsets");
                apply_map(&mut self.cache.listers.stateful_sets, ev, |o| {
                    o.spec.as_ref().map(|s| s.selector.clone())
                });
            }
        }
    }

    fn mark_synced_if_replace<K>(&mut self, ev: &Ev<K>, name: &'static str) {
        if matches!(ev, Ev::Replace(_)) {
            self.synced.insert(name);
        }
    }

    fn on_node(&mut self, node: Arc<Node>) {
        let now = Instant::now();
        match self.cache.upsert_node(node.clone()) {
            None => self.queue.move_all(ClusterEvent::NODE_ADD, now, None),
            Some(old) => {
                for e in node_update_events(&old, &node) {
                    self.queue.move_all(e, now, None);
                }
            }
        }
    }

    fn responsible(&self, p: &Pod) -> bool {
        let name = p
            .spec
            .as_ref()
            .and_then(|s| s.scheduler_name.as_deref())
            .filter(|s| !s.is_empty())
            .unwrap_or(super::DEFAULT_SCHEDULER_NAME);
        self.profiles.contains_key(name)
    }

    fn on_pod(&mut self, pod: Arc<Pod>) {
        if is_terminal(&pod) {
            self.on_pod_delete(&key_of(&*pod));
            return;
        }
        let key = key_of(&*pod);
        let now = Instant::now();
        let old = self.pods.insert(key.clone(), pod.clone());
        if let Some(o) = &old {
            if o.metadata.uid != pod.metadata.uid {
                // Deleted and recreated under the same name while we were not looking.
                self.forget_pod_object(&key, o);
            } else if o.metadata.resource_version == pod.metadata.resource_version
                && o.metadata.resource_version.is_some()
            {
                return;
            }
        }
        let priority = self.cache.resolve_priority(&pod);
        if !node_name(&pod).is_empty() {
            // Bound: it leaves the scheduling queue and counts on its node.
            self.queue.delete(&key);
            let info = Arc::new(PodInfo::new(pod.clone(), priority));
            let was_confirmed = self.cache.contains_pod(&key) && !self.cache.is_assumed(&key);
            self.cache.upsert_pod(info);
            match (&old, was_confirmed) {
                (Some(o), true) => {
                    for e in assigned_pod_update_events(o, &pod) {
                        self.queue.move_all(e, now, None);
                    }
                }
                _ => self
                    .queue
                    .move_all(ClusterEvent::ASSIGNED_POD_ADD, now, None),
            }
            return;
        }
        if !self.responsible(&pod) || pod.metadata.deletion_timestamp.is_some() {
            self.queue.delete(&key);
            return;
        }
        if self.cache.is_assumed(&key) {
            return;
        }
        let info = Arc::new(PodInfo::new(pod.clone(), priority));
        match old {
            Some(o) if node_name(&o).is_empty() => {
                let events = pod_update_events(&o, &pod);
                self.queue.update(info, nominated(&o), &events, now);
            }
            _ => {
                self.queue.add(info, now);
            }
        }
    }

    fn forget_pod_object(&mut self, key: &str, old: &Pod) {
        if (!node_name(old).is_empty() || self.cache.contains_pod(key))
            && self.cache.remove_pod(key).is_some()
        {
            self.queue
                .move_all(ClusterEvent::ASSIGNED_POD_DELETE, Instant::now(), None);
        }
        self.queue.delete(key);
    }

    fn on_pod_delete(&mut self, key: &str) {
        self.pods.remove(key);
        if let Some(b) = self.binding.get(key) {
            // A pod deleted while held at Permit stops waiting (upstream rejects it the same way).
            for f in self.profiles.values() {
                f.waiting.reject(&b.qpi.pod.uid, "", "removed");
            }
        }
        let now = Instant::now();
        if self.cache.contains_pod(key) && !self.cache.is_assumed(key) {
            self.cache.remove_pod(key);
            self.queue
                .move_all(ClusterEvent::ASSIGNED_POD_DELETE, now, None);
        }
        self.queue.delete(key);
    }

    /// One scheduling cycle for the next pod in the queue.
    fn schedule_one(&mut self) {
        let now = Instant::now();
        let Some(qpi) = self.queue.pop(now) else {
            return;
        };
        let pod = qpi.pod.clone();
        let Some(fwk) = self.profiles.get(pod.scheduler_name()).cloned() else {
            self.queue.done(&pod.key);
            return;
        };
        let latest = self.pods.get(&pod.key);
        let skip = latest
            .is_none_or(|p| p.metadata.deletion_timestamp.is_some() || !node_name(p).is_empty())
            || self.cache.is_assumed(&pod.key);
        if skip {
            self.queue.done(&pod.key);
            return;
        }
        let start = Instant::now();
        let mut state = CycleState::new();
        let mut rng = rand::rng();
        let result = {
            let ctx = Ctx {
                cache: &self.cache,
                nominator: &self.queue.nominator,
            };
            schedule_pod(
                &fwk,
                &ctx,
                &mut state,
                &pod,
                &mut self.next_start,
                self.percentage,
                &mut rng,
            )
        };
        match result {
            Err(Failure::Fit(fit)) => self.on_fit_error(&fwk, qpi, *fit, &state, start),
            Err(Failure::Error(s)) => {
                self.handle_failure(&fwk, qpi, &s, s.message(), Some(String::new()), start);
            }
            Ok(r) => self.assume_and_bind(&fwk, qpi, state, r.node, start),
        }
    }

    fn on_fit_error(
        &mut self,
        fwk: &Arc<Framework>,
        mut qpi: QueuedPodInfo,
        mut fit: FitError,
        state: &CycleState,
        start: Instant,
    ) {
        let pod = qpi.pod.clone();
        let mut nominating = None;
        let mut preemption = None;
        if fwk.has_post_filter_plugins() {
            let (result, s) = {
                let ctx = Ctx {
                    cache: &self.cache,
                    nominator: &self.queue.nominator,
                };
                fwk.run_post_filter(&ctx, state, &pod, &fit.diagnosis.node_to_status)
            };
            fit.diagnosis.post_filter_msg = s.message();
            if s.code() == Code::Error {
                tracing::warn!(pod = %pod.key, status = %s.message(), "PostFilter failed");
            }
            if let Some(r) = result {
                nominating = r.nominated_node;
                preemption = r.preemption;
            }
        }
        qpi.unschedulable_plugins = fit.diagnosis.unschedulable_plugins.clone();
        qpi.pending_plugins = fit.diagnosis.pending_plugins.clone();
        let status = Status::code_only(Code::Unschedulable);
        self.handle_failure(fwk, qpi, &status, fit.message(), nominating, start);
        if let Some(p) = preemption {
            self.execute_preemption(&pod, p);
        }
    }

    fn assume_and_bind(
        &mut self,
        fwk: &Arc<Framework>,
        qpi: QueuedPodInfo,
        mut state: CycleState,
        node: String,
        start: Instant,
    ) {
        let pod = qpi.pod.clone();
        if let Err(e) = self.cache.assume_pod(pod.clone(), &node) {
            self.handle_failure(
                fwk,
                qpi,
                &Status::error(e.clone()),
                e,
                Some(String::new()),
                start,
            );
            return;
        }
        let (reserve, waits) = {
            let ctx = Ctx {
                cache: &self.cache,
                nominator: &self.queue.nominator,
            };
            let s = fwk.run_reserve(&ctx, &mut state, &pod, &node);
            let (s, waits) = if s.is_success() {
                fwk.run_permit(&ctx, &state, &pod, &node)
            } else {
                (s, Vec::new())
            };
            if !s.is_success() && !s.is_wait() {
                fwk.run_unreserve(&ctx, &mut state, &pod, &node);
            }
            (s, waits)
        };
        if !reserve.is_success() && !reserve.is_wait() {
            self.cache.forget_pod(&pod.key);
            self.fail_on_node(fwk, qpi, reserve, &node, start);
            return;
        }
        if reserve.is_wait() {
            // The pod stays assumed while it waits; its binding cycle blocks on the decision.
            fwk.waiting.add(pod.clone(), &node, &waits);
        }
        // Once assumed, the pod's nomination is no longer needed.
        self.queue.nominator.delete(&pod.key);
        self.binding.insert(
            pod.key.clone(),
            Binding {
                qpi,
                state,
                node: node.clone(),
                start,
            },
        );
        let api = self.shared.api.clone();
        let events = self.recorder(&fwk.profile_name);
        let tx = self.shared.tx.clone();
        let active = self.shared.active.clone();
        let fwk = fwk.clone();
        self.shared.rt.spawn(async move {
            let mut s = fwk.wait_on_permit(&pod).await;
            if s.is_success() {
                s = fwk.run_pre_bind(&api, &pod, &node).await;
            }
            if s.is_success() {
                s = if active.load(Ordering::Acquire) {
                    fwk.run_bind(&api, &pod, &node).await
                } else {
                    Status::error("the scheduler is no longer active")
                };
            }
            if let (true, Some(events)) = (s.is_success(), events) {
                events.record(
                    pod_ref(&pod.pod),
                    None,
                    "Normal",
                    "Scheduled",
                    "Binding",
                    format!(
                        "Successfully assigned {}/{} to {node}",
                        pod.namespace, pod.name
                    ),
                );
            }
            let _ = tx.send(Msg::Bound {
                key: pod.key.clone(),
                status: s,
            });
        });
    }

    /// A Reserve/Permit rejection: a fit error on the one chosen node.
    fn fail_on_node(
        &mut self,
        fwk: &Arc<Framework>,
        mut qpi: QueuedPodInfo,
        s: Status,
        node: &str,
        start: Instant,
    ) {
        if !s.is_rejected() {
            self.handle_failure(fwk, qpi, &s, s.message(), Some(String::new()), start);
            return;
        }
        let mut d = Diagnosis::default();
        d.add_plugin_status(&s);
        if let Some(i) = self.cache.node_index(node) {
            d.node_to_status.set(i, s.clone());
        }
        qpi.unschedulable_plugins = d.unschedulable_plugins.clone();
        let fit = FitError {
            num_all_nodes: 1,
            diagnosis: d,
        };
        self.handle_failure(fwk, qpi, &s, fit.message(), Some(String::new()), start);
    }

    fn on_bound(&mut self, key: String, status: Status) {
        let Some(b) = self.binding.remove(&key) else {
            return;
        };
        let fwk = match self.profiles.get(b.qpi.pod.scheduler_name()) {
            Some(f) => f.clone(),
            None => return,
        };
        if status.is_success() {
            self.shared.metrics.observe_attempt(
                AttemptResult::Scheduled,
                &fwk.profile_name,
                b.start.elapsed().as_secs_f64(),
            );
            self.shared.metrics.observe_scheduled_pod(b.qpi.attempts);
            self.queue.done(&key);
            return;
        }
        let Binding {
            qpi,
            mut state,
            node,
            start,
        } = b;
        {
            let ctx = Ctx {
                cache: &self.cache,
                nominator: &self.queue.nominator,
            };
            fwk.run_unreserve(&ctx, &mut state, &qpi.pod, &node);
        }
        if self.cache.forget_pod(&key) {
            // The resources the assumed pod held are free again.
            let except = status.is_rejected().then_some(key.as_str());
            self.queue
                .move_all(ClusterEvent::ASSIGNED_POD_DELETE, Instant::now(), except);
        }
        self.handle_failure(
            &fwk,
            qpi,
            &status,
            status.message(),
            Some(String::new()),
            start,
        );
    }

    /// Requeues the pod and tells the user (event + condition), as upstream's
    /// `handleSchedulingFailure`. `nominating`: `Some(node)` sets (or with "" clears) the pod's
    /// nominated node.
    fn handle_failure(
        &mut self,
        fwk: &Framework,
        mut qpi: QueuedPodInfo,
        status: &Status,
        message: String,
        nominating: Option<String>,
        start: Instant,
    ) {
        let rejected = status.is_rejected();
        let (result, reason) = if rejected {
            (AttemptResult::Unschedulable, "Unschedulable")
        } else {
            (AttemptResult::Error, "SchedulerError")
        };
        self.shared.metrics.observe_attempt(
            result,
            &fwk.profile_name,
            start.elapsed().as_secs_f64(),
        );
        let key = qpi.pod.key.clone();
        let latest = self.pods.get(&key).cloned();
        match &latest {
            Some(p) if node_name(p).is_empty() && p.metadata.deletion_timestamp.is_none() => {
                let priority = self.cache.resolve_priority(p);
                qpi.pod = Arc::new(PodInfo::new(p.clone(), priority));
                self.queue.add_unschedulable(qpi.clone(), Instant::now());
            }
            _ => self.queue.done(&key),
        }
        if let Some(node) = &nominating {
            if latest.as_ref().is_some_and(|p| node_name(p).is_empty()) {
                self.queue.nominator.set(qpi.pod.clone(), node);
            }
        }
        if !self.active() {
            return;
        }
        let pod = latest.unwrap_or_else(|| qpi.pod.pod.clone());
        if let Some(events) = self.recorder(&fwk.profile_name) {
            events.record(
                pod_ref(&pod),
                None,
                "Warning",
                "FailedScheduling",
                "Scheduling",
                truncate_event_message(&message),
            );
        }
        if let Some(patch) = failure_status_patch(&pod, reason, &message, nominating.as_deref()) {
            let api = self.shared.api.clone();
            let (ns, name) = (qpi.pod.namespace.clone(), qpi.pod.name.clone());
            self.shared.rt.spawn(async move {
                if let Err(e) = api.patch_pod_status(&ns, &name, patch).await {
                    tracing::debug!(pod = %name, error = %e, "cannot update the PodScheduled condition");
                }
            });
        }
    }

    fn execute_preemption(&mut self, preemptor: &PodInfo, p: Preemption) {
        self.shared.metrics.observe_preemption(p.victims.len());
        if !self.active() {
            return;
        }
        let message = format!(
            "{}: preempting to accommodate a higher priority pod",
            preemptor.scheduler_name()
        );
        let note = format!("Preempted by pod {} on node {}", preemptor.uid, p.node);
        for v in p.victims {
            let api = self.shared.api.clone();
            let events = self.recorder(preemptor.scheduler_name());
            let preemptor = pod_ref(&preemptor.pod);
            let (message, note) = (message.clone(), note.clone());
            self.shared.rt.spawn(async move {
                let condition = json!({"conditions": [{
                    "type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler",
                    "message": message, "lastTransitionTime": Time(Timestamp::now()),
                }]});
                if let Err(e) = api.patch_pod_status(&v.namespace, &v.name, condition).await {
                    tracing::warn!(victim = %v.key, error = %e, "cannot add the DisruptionTarget condition");
                    return;
                }
                if let Err(e) = api.delete_pod(&v.namespace, &v.name).await {
                    tracing::warn!(victim = %v.key, error = %e, "cannot delete preemption victim");
                    return;
                }
                if let Some(events) = events {
                    events.record(pod_ref(&v.pod), Some(preemptor), "Normal", "Preempted", "Preempting", note);
                }
            });
        }
        for lower in p.clear_nominated {
            let api = self.shared.api.clone();
            self.shared.rt.spawn(async move {
                let _ = api
                    .patch_pod_status(
                        &lower.namespace,
                        &lower.name,
                        json!({"nominatedNodeName": Value::Null}),
                    )
                    .await;
            });
        }
    }
}

/// The status patch for a failed attempt, or `None` when the pod already says exactly this
/// (upstream `updatePod` only writes changes; the transition time moves only when the status
/// does).
pub fn failure_status_patch(
    pod: &Pod,
    reason: &str,
    message: &str,
    nominating: Option<&str>,
) -> Option<Value> {
    let existing = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"));
    let same_status = existing.is_some_and(|c| c.status == "False");
    let unchanged = same_status
        && existing.is_some_and(|c| {
            c.reason.as_deref() == Some(reason)
                && c.message.as_deref() == Some(message)
                && c.last_probe_time.is_none()
        });
    let nnn_change = nominating.filter(|n| *n != nominated(pod));
    if unchanged && nnn_change.is_none() {
        return None;
    }
    let transition = match existing {
        Some(c) if same_status => c
            .last_transition_time
            .clone()
            .map(|t| json!(t))
            .unwrap_or(Value::Null),
        _ => json!(Time(Timestamp::now())),
    };
    let mut patch = json!({"conditions": [{
        "type": "PodScheduled", "status": "False", "reason": reason, "message": message,
        "lastProbeTime": Value::Null, "lastTransitionTime": transition,
    }]});
    if let Some(n) = nnn_change {
        patch["nominatedNodeName"] = if n.is_empty() { Value::Null } else { json!(n) };
    }
    Some(patch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(status: Value) -> Pod {
        serde_json::from_value(
            json!({"metadata": {"name": "p"}, "spec": {"containers": []}, "status": status}),
        )
        .unwrap()
    }

    #[test]
    fn status_patch_only_when_something_changed() {
        let fresh = pod(json!({"phase": "Pending"}));
        let p = failure_status_patch(
            &fresh,
            "Unschedulable",
            "0/1 nodes are available: 1 Too many pods.",
            None,
        )
        .unwrap();
        assert_eq!(p["conditions"][0]["reason"], "Unschedulable");
        assert_eq!(p["conditions"][0]["status"], "False");
        assert!(p.get("nominatedNodeName").is_none());
        let same = pod(
            json!({"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "m", "lastTransitionTime": "2024-01-01T00:00:00Z"}]}),
        );
        assert!(failure_status_patch(&same, "Unschedulable", "m", None).is_none());
        assert!(
            failure_status_patch(&same, "Unschedulable", "m", Some("")).is_none(),
            "nothing to clear"
        );
        let changed = failure_status_patch(&same, "Unschedulable", "other", Some("n1")).unwrap();
        assert_eq!(
            changed["conditions"][0]["lastTransitionTime"], "2024-01-01T00:00:00Z",
            "status did not change"
        );
        assert_eq!(changed["nominatedNodeName"], "n1");
        let nominated = pod(json!({"nominatedNodeName": "n1"}));
        assert_eq!(
            failure_status_patch(&nominated, "Unschedulable", "m", Some("")).unwrap()
                ["nominatedNodeName"],
            Value::Null
        );
    }
}
