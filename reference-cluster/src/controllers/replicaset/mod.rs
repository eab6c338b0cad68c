//! The ReplicaSet controller, which also runs ReplicationControllers (upstream converts an RC
//! to a ReplicaSet and back the same way): it keeps `spec.replicas` active pods that match
//! the selector, adopting orphans and releasing pods that stopped matching, and reports
//! status. Expectations keep it from creating or deleting twice while its own writes are
//! still on their way back through the watch.

pub mod ranking;

use std::sync::{Arc, Weak};
use std::time::Duration;

use anyhow::Context as _;
use futures::future::join_all;
use k8s_openapi::api::apps::v1::{
    ReplicaSet, ReplicaSetCondition, ReplicaSetSpec, ReplicaSetStatus,
};
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector as TypedSelector;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, ResourceExt};
use tokio::task::JoinHandle;

use super::manager::{Context, Controller};
use super::runtime::events::{self, EventRecorder};
use super::runtime::expectations::Expectations;
use super::runtime::ownership::{self, controller_of, Owner};
use super::runtime::pods::{self, pod_from_template, pods_prefix};
use super::runtime::selector::{self, labels_of};
use super::runtime::{key_of, split_key, Change, Informer, Reconciler, Requeue, WorkQueue};

/// Which of the two kinds this instance runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplicaKind {
    ReplicaSet,
    ReplicationController,
}

impl ReplicaKind {
    pub fn kind(self) -> &'static str {
        match self {
            ReplicaKind::ReplicaSet => "ReplicaSet",
            ReplicaKind::ReplicationController => "ReplicationController",
        }
    }

    pub fn api_version(self) -> &'static str {
        match self {
            ReplicaKind::ReplicaSet => "apps/v1",
            ReplicaKind::ReplicationController => "v1",
        }
    }

    /// The controller's name in `--controllers` and its event source.
    pub fn controller_name(self) -> &'static str {
        match self {
            ReplicaKind::ReplicaSet => "replicaset-controller",
            ReplicaKind::ReplicationController => "replication-controller",
        }
    }
}

/// The owners' informer, seen as ReplicaSets whatever the kind.
enum Sets {
    Rs(Informer<ReplicaSet>),
    Rc(Informer<ReplicationController>),
}

impl Sets {
    fn get(&self, ns: &str, name: &str) -> Option<Arc<ReplicaSet>> {
        match self {
            Sets::Rs(i) => i.get(ns, name),
            Sets::Rc(i) => i.get(ns, name).map(|rc| Arc::new(rc_to_rs(&rc))),
        }
    }

    fn list_namespace(&self, ns: &str) -> Vec<Arc<ReplicaSet>> {
        match self {
            Sets::Rs(i) => i.list_namespace(ns),
            Sets::Rc(i) => i
                .list_namespace(ns)
                .iter()
                .map(|rc| Arc::new(rc_to_rs(rc)))
                .collect(),
        }
    }
}

/// Upstream's RC → RS conversion: the map selector becomes `matchLabels`.
pub fn rc_to_rs(rc: &ReplicationController) -> ReplicaSet {
    let spec = rc.spec.clone().unwrap_or_default();
    let status = rc.status.clone().map(|s| ReplicaSetStatus {
        replicas: s.replicas,
        fully_labeled_replicas: s.fully_labeled_replicas,
        ready_replicas: s.ready_replicas,
        available_replicas: s.available_replicas,
        observed_generation: s.observed_generation,
        conditions: s.conditions.map(|cs| {
            cs.into_iter()
                .map(|c| ReplicaSetCondition {
                    type_: c.type_,
                    status: c.status,
                    last_transition_time: c.last_transition_time,
                    reason: c.reason,
                    message: c.message,
                })
                .collect()
        }),
    });
    ReplicaSet {
        metadata: rc.metadata.clone(),
        spec: Some(ReplicaSetSpec {
            replicas: spec.replicas,
            min_ready_seconds: spec.min_ready_seconds,
            selector: TypedSelector {
                match_labels: spec.selector,
                match_expressions: None,
            },
            template: spec.template,
        }),
        status,
    }
}

pub fn replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

pub fn min_ready_seconds(rs: &ReplicaSet) -> i32 {
    rs.spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0)
}

fn rs_selector(rs: &ReplicaSet) -> Result<selector::LabelSelector, String> {
    selector::from_typed(rs.spec.as_ref().map(|s| &s.selector))
}

pub struct ReplicaSetController {
    kind: ReplicaKind,
    client: kube::Client,
    sets: Sets,
    pods: Informer<Pod>,
    queue: Arc<WorkQueue<String>>,
    expectations: Expectations,
    recorder: Arc<EventRecorder>,
    workers: usize,
    burst: usize,
}

impl ReplicaSetController {
    pub fn new(ctx: &Context, kind: ReplicaKind) -> Arc<Self> {
        let sets = match kind {
            ReplicaKind::ReplicaSet => Sets::Rs(ctx.informers.get::<ReplicaSet>()),
            ReplicaKind::ReplicationController => {
                Sets::Rc(ctx.informers.get::<ReplicationController>())
            }
        };
        let this = Arc::new(ReplicaSetController {
            kind,
            client: ctx.client_for(kind.controller_name()),
            sets,
            pods: ctx.informers.get::<Pod>(),
            queue: WorkQueue::new(ctx.cfg.backoff),
            expectations: Expectations::new(ctx.cfg.expectations_ttl),
            recorder: EventRecorder::new(
                ctx.client_for(kind.controller_name()),
                kind.controller_name(),
            ),
            workers: ctx.cfg.replicaset_workers,
            burst: ctx.cfg.burst_replicas.max(1),
        });
        let weak = Arc::downgrade(&this);
        match &this.sets {
            Sets::Rs(i) => i.add_handler(owner_handler(weak.clone())),
            Sets::Rc(i) => i.add_handler(owner_handler(weak.clone())),
        }
        this.pods.add_handler(move |change| {
            if let Some(c) = weak.upgrade() {
                c.on_pod(change);
            }
        });
        this
    }

    fn api<K>(&self, ns: &str) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), ns)
    }

    /// The owner a controller reference points at, if it is one of ours and still the same.
    fn resolve(
        &self,
        ns: &str,
        r: &k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
    ) -> Option<Arc<ReplicaSet>> {
        if r.kind != self.kind.kind() {
            return None;
        }
        let rs = self.sets.get(ns, &r.name)?;
        (rs.metadata.uid.as_deref() == Some(r.uid.as_str())).then_some(rs)
    }

    /// Owners whose selector matches an orphan pod.
    fn matching_sets(&self, pod: &Pod) -> Vec<Arc<ReplicaSet>> {
        let ns = pod.namespace().unwrap_or_default();
        self.sets
            .list_namespace(&ns)
            .into_iter()
            .filter(|rs| {
                rs_selector(rs)
                    .map(|s| !s.is_everything() && s.matches(labels_of(&pod.metadata.labels)))
                    .unwrap_or(false)
            })
            .collect()
    }

    fn enqueue(&self, rs: &ReplicaSet) {
        self.queue.add(key_of(rs));
    }

    fn on_pod(&self, change: &Change<Pod>) {
        match change {
            Change::Add(pod) => {
                if pod.metadata.deletion_timestamp.is_some() {
                    // Seen for the first time already terminating (e.g. after a relist).
                    self.pod_deleted(pod);
                    return;
                }
                let ns = pod.namespace().unwrap_or_default();
                if let Some(r) = controller_of(&pod.metadata) {
                    if let Some(rs) = self.resolve(&ns, r) {
                        self.expectations.creation_observed(&key_of(rs.as_ref()));
                        self.enqueue(&rs);
                    }
                    return;
                }
                for rs in self.matching_sets(pod) {
                    self.enqueue(&rs);
                }
            }
            Change::Update { old, new } => {
                if old.metadata.resource_version == new.metadata.resource_version {
                    return;
                }
                let labels_changed = old.metadata.labels != new.metadata.labels;
                if new.metadata.deletion_timestamp.is_some() {
                    // Terminating pods no longer count: treat as deleted now, so a replacement
                    // is created without waiting out the grace period.
                    self.pod_deleted(new);
                    if labels_changed {
                        self.pod_deleted(old);
                    }
                    return;
                }
                let ns = new.namespace().unwrap_or_default();
                let cur = controller_of(&new.metadata);
                let prev = controller_of(&old.metadata);
                let ref_changed = cur.map(|r| &r.uid) != prev.map(|r| &r.uid);
                if ref_changed {
                    if let Some(rs) = prev.and_then(|r| self.resolve(&ns, r)) {
                        self.enqueue(&rs);
                    }
                }
                if let Some(r) = cur {
                    if let Some(rs) = self.resolve(&ns, r) {
                        self.enqueue(&rs);
                    }
                    return;
                }
                if labels_changed || ref_changed {
                    for rs in self.matching_sets(new) {
                        self.enqueue(&rs);
                    }
                }
            }
            Change::Delete(pod) => self.pod_deleted(pod),
        }
    }

    fn pod_deleted(&self, pod: &Pod) {
        let ns = pod.namespace().unwrap_or_default();
        if let Some(rs) = controller_of(&pod.metadata).and_then(|r| self.resolve(&ns, r)) {
            let key = key_of(rs.as_ref());
            self.expectations.deletion_observed(&key, &key_of(pod));
            self.queue.add(key);
        }
    }

    fn owner_ref(
        &self,
        rs: &ReplicaSet,
    ) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
        ownership::controller_ref(&rs.metadata, self.kind.api_version(), self.kind.kind())
    }

    async fn claim_pods(
        &self,
        rs: &ReplicaSet,
        sel: &selector::LabelSelector,
    ) -> anyhow::Result<Vec<Arc<Pod>>> {
        let ns = rs.namespace().unwrap_or_default();
        let candidates: Vec<Arc<Pod>> = self
            .pods
            .list_namespace(&ns)
            .into_iter()
            .filter(|p| pods::is_active(p))
            .collect();
        let owner = Owner {
            meta: &rs.metadata,
            api_version: self.kind.api_version(),
            kind: self.kind.kind(),
        };
        let name = rs.name_any();
        let uid = rs.uid().unwrap_or_default();
        let kind = self.kind;
        let client = self.client.clone();
        let ns2 = ns.clone();
        let check = move || async move {
            match kind {
                ReplicaKind::ReplicaSet => {
                    ownership::recheck_owner(
                        Api::<ReplicaSet>::namespaced(client, &ns2),
                        &name,
                        &uid,
                    )
                    .await
                }
                ReplicaKind::ReplicationController => {
                    ownership::recheck_owner(
                        Api::<ReplicationController>::namespaced(client, &ns2),
                        &name,
                        &uid,
                    )
                    .await
                }
            }
        };
        let client = self.client.clone();
        let claimed = ownership::claim(
            move |ns| Api::<Pod>::namespaced(client.clone(), ns),
            &owner,
            sel,
            candidates,
            check,
        )
        .await;
        if let Some(e) = claimed.errors.into_iter().next() {
            return Err(anyhow::Error::new(e).context("cannot adopt or release pods"));
        }
        Ok(claimed.owned)
    }

    /// Creates or deletes pods so that `filtered` (the active, owned pods) reaches the target.
    async fn manage_replicas(
        &self,
        key: &str,
        rs: &ReplicaSet,
        filtered: &[Arc<Pod>],
    ) -> anyhow::Result<()> {
        let want = replicas(rs).max(0) as usize;
        let ns = rs.namespace().unwrap_or_default();
        if filtered.len() < want {
            let n = (want - filtered.len()).min(self.burst);
            self.expectations.expect_creations(key, n);
            let (ok, err) = self.create_pods(rs, &ns, n).await;
            if ok < n {
                // Creations that were never attempted or failed will not be observed.
                self.expectations.lower(key, (n - ok) as i64, 0);
            }
            return err.map_or(Ok(()), Err);
        }
        if filtered.len() > want {
            let n = (filtered.len() - want).min(self.burst);
            let related = self.related_pods(rs);
            let victims = ranking::pods_to_delete(filtered, &related, n, Timestamp::now());
            self.expectations
                .expect_deletions(key, victims.iter().map(|p| key_of(p.as_ref())));
            let api: Api<Pod> = self.api(&ns);
            let results = join_all(victims.iter().map(|p| {
                let api = api.clone();
                async move {
                    (
                        p.clone(),
                        api.delete(&p.name_any(), &DeleteParams::default()).await,
                    )
                }
            }))
            .await;
            let mut first_err = None;
            for (pod, r) in results {
                match r {
                    Ok(_) => self.recorder.event(
                        rs,
                        events::NORMAL,
                        "SuccessfulDelete",
                        format!("Deleted pod: {}", pod.name_any()),
                    ),
                    Err(e) => {
                        self.expectations
                            .deletion_observed(key, &key_of(pod.as_ref()));
                        if !super::runtime::is_not_found(&e) {
                            self.recorder.event(
                                rs,
                                events::WARNING,
                                "FailedDelete",
                                format!("Error deleting: {e}"),
                            );
                            first_err.get_or_insert(e);
                        }
                    }
                }
            }
            return first_err.map_or(Ok(()), |e| {
                Err(anyhow::Error::new(e).context("cannot delete pods"))
            });
        }
        Ok(())
    }

    /// Creates `n` pods in slow-start batches (1, 2, 4, ...): a systematic failure (quota,
    /// admission) costs one request per batch instead of `n`.
    async fn create_pods(
        &self,
        rs: &ReplicaSet,
        ns: &str,
        n: usize,
    ) -> (usize, Option<anyhow::Error>) {
        let template = rs
            .spec
            .as_ref()
            .and_then(|s| s.template.clone())
            .unwrap_or_default();
        let pod = pod_from_template(
            &template,
            ns,
            &pods_prefix(&rs.name_any()),
            self.owner_ref(rs),
        );
        let api: Api<Pod> = self.api(ns);
        let pp = PostParams::default();
        let mut done = 0usize;
        let mut batch = 1usize;
        while done < n {
            let size = batch.min(n - done);
            let results = join_all((0..size).map(|_| api.create(&pp, &pod))).await;
            let mut err = None;
            for r in results {
                match r {
                    Ok(created) => {
                        done += 1;
                        self.recorder.event(
                            rs,
                            events::NORMAL,
                            "SuccessfulCreate",
                            format!("Created pod: {}", created.name_any()),
                        );
                    }
                    Err(e) if super::runtime::is_namespace_terminating(&e) => {
                        // Every later create fails the same way; the namespace is going.
                        return (done, None);
                    }
                    Err(e) => {
                        self.recorder.event(
                            rs,
                            events::WARNING,
                            "FailedCreate",
                            format!("Error creating: {}", api_message(&e)),
                        );
                        err.get_or_insert(e);
                    }
                }
            }
            if let Some(e) = err {
                return (
                    done,
                    Some(anyhow::Error::new(e).context("cannot create pods")),
                );
            }
            batch *= 2;
        }
        (done, None)
    }

    /// Active pods of every ReplicaSet with the same controller as `rs` (itself included).
    fn related_pods(&self, rs: &ReplicaSet) -> Vec<Arc<Pod>> {
        let ns = rs.namespace().unwrap_or_default();
        let siblings: Vec<Arc<ReplicaSet>> = match controller_of(&rs.metadata) {
            None => vec![Arc::new(rs.clone())],
            Some(owner) => self
                .sets
                .list_namespace(&ns)
                .into_iter()
                .filter(|s| controller_of(&s.metadata).is_some_and(|r| r.uid == owner.uid))
                .collect(),
        };
        let all = self.pods.list_namespace(&ns);
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for s in siblings {
            let Ok(sel) = rs_selector(&s) else { continue };
            for p in &all {
                if pods::is_active(p)
                    && sel.matches(labels_of(&p.metadata.labels))
                    && seen.insert(p.metadata.uid.clone())
                {
                    out.push(p.clone());
                }
            }
        }
        out
    }

    /// Writes the status with an update of the status subresource, as upstream does (its
    /// service account may update `replicasets/status`, not patch it); a conflict with a
    /// concurrent write makes the sync retry.
    async fn write_status(&self, rs: &ReplicaSet, status: ReplicaSetStatus) -> anyhow::Result<()> {
        let ns = rs.namespace().unwrap_or_default();
        let name = rs.name_any();
        let pp = PostParams::default();
        let status = serde_json::to_value(&status)?;
        match self.kind {
            ReplicaKind::ReplicaSet => {
                let api = self.api::<ReplicaSet>(&ns);
                let mut current = serde_json::to_value(api.get(&name).await?)?;
                current["status"] = status;
                api.replace_status(&name, &pp, &serde_json::from_value(current)?)
                    .await?;
            }
            ReplicaKind::ReplicationController => {
                let api = self.api::<ReplicationController>(&ns);
                let mut current = serde_json::to_value(api.get(&name).await?)?;
                current["status"] = status;
                api.replace_status(&name, &pp, &serde_json::from_value(current)?)
                    .await?;
            }
        }
        Ok(())
    }
}

fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

fn owner_handler<K>(weak: Weak<ReplicaSetController>) -> impl Fn(&Change<K>) + Send + Sync + 'static
where
    K: kube::Resource<DynamicType = ()> + Send + Sync + 'static,
{
    move |change| {
        let Some(c) = weak.upgrade() else { return };
        match change {
            Change::Add(o) => c.queue.add(key_of(o.as_ref())),
            Change::Update { new, .. } => c.queue.add(key_of(new.as_ref())),
            Change::Delete(o) => {
                let key = key_of(o.as_ref());
                c.expectations.delete(&key);
                c.queue.add(key);
            }
        }
    }
}

/// The status a ReplicaSet should report for its active pods (upstream `calculateStatus`).
pub fn calculate_status(
    rs: &ReplicaSet,
    filtered: &[Arc<Pod>],
    manage_err: Option<&anyhow::Error>,
    now: Timestamp,
) -> ReplicaSetStatus {
    let mut status = rs.status.clone().unwrap_or_default();
    let template_labels = rs
        .spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let min_ready = min_ready_seconds(rs);
    let (mut fully, mut ready, mut available) = (0, 0, 0);
    for p in filtered {
        let labels = labels_of(&p.metadata.labels);
        if template_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
        {
            fully += 1;
        }
        if pods::is_ready(p) {
            ready += 1;
            if pods::is_available(p, min_ready, now) {
                available += 1;
            }
        }
    }
    let mut conditions = status.conditions.take().unwrap_or_default();
    let has_failure = conditions.iter().any(|c| c.type_ == "ReplicaFailure");
    match manage_err {
        Some(e) if !has_failure => {
            let diff = filtered.len() as i64 - replicas(rs) as i64;
            let reason = if diff < 0 {
                "FailedCreate"
            } else if diff > 0 {
                "FailedDelete"
            } else {
                ""
            };
            conditions.push(ReplicaSetCondition {
                type_: "ReplicaFailure".into(),
                status: "True".into(),
                last_transition_time: Some(events::now_time()),
                reason: Some(reason.into()),
                message: Some(root_message(e)),
            });
        }
        None if has_failure => conditions.retain(|c| c.type_ != "ReplicaFailure"),
        _ => {}
    }
    status.conditions = (!conditions.is_empty()).then_some(conditions);
    status.replicas = filtered.len() as i32;
    status.fully_labeled_replicas = Some(fully);
    status.ready_replicas = Some(ready);
    status.available_replicas = Some(available);
    status
}

fn root_message(e: &anyhow::Error) -> String {
    match e.downcast_ref::<kube::Error>() {
        Some(k) => api_message(k),
        None => e.root_cause().to_string(),
    }
}

fn same_status(a: &ReplicaSetStatus, b: &ReplicaSetStatus) -> bool {
    let norm = |s: &ReplicaSetStatus| {
        (
            s.replicas,
            s.fully_labeled_replicas.unwrap_or(0),
            s.ready_replicas.unwrap_or(0),
            s.available_replicas.unwrap_or(0),
            s.conditions.clone().unwrap_or_default(),
        )
    };
    norm(a) == norm(b)
}

#[async_trait::async_trait]
impl Reconciler for ReplicaSetController {
    fn name(&self) -> &'static str {
        self.kind.controller_name()
    }

    async fn sync(&self, key: &str) -> anyhow::Result<Requeue> {
        let (ns, name) = split_key(key);
        let Some(rs) = self.sets.get(ns, name) else {
            self.expectations.delete(key);
            return Ok(Requeue::No);
        };
        let sel = match rs_selector(&rs) {
            Ok(s) => s,
            Err(e) => {
                // Invalid selectors never become valid by retrying.
                tracing::warn!(%key, error = %e, "invalid selector");
                return Ok(Requeue::No);
            }
        };
        let needs_sync =
            self.expectations.satisfied(key) && rs.metadata.deletion_timestamp.is_none();
        let filtered = self.claim_pods(&rs, &sel).await?;
        let manage_err = if needs_sync {
            self.manage_replicas(key, &rs, &filtered).await.err()
        } else {
            None
        };
        let now = Timestamp::now();
        let status = calculate_status(&rs, &filtered, manage_err.as_ref(), now);
        let old = rs.status.clone().unwrap_or_default();
        let generation = rs.metadata.generation;
        if !same_status(&old, &status) || old.observed_generation != generation {
            let mut status = status;
            status.observed_generation = generation;
            self.write_status(&rs, status)
                .await
                .with_context(|| format!("cannot update status of {key}"))?;
        }
        if let Some(e) = manage_err {
            return Err(e);
        }
        // Ready pods become available after minReadySeconds without any further event.
        let min_ready = min_ready_seconds(&rs);
        let next = filtered
            .iter()
            .filter_map(|p| pods::until_available(p, min_ready, now))
            .min();
        Ok(next.map_or(Requeue::No, |d| {
            Requeue::After(d + Duration::from_millis(500))
        }))
    }
}

impl Controller for ReplicaSetController {
    fn name(&self) -> &'static str {
        self.kind.controller_name()
    }

    fn run(self: Arc<Self>) -> Vec<JoinHandle<()>> {
        let workers = self.workers;
        let queue = self.queue.clone();
        super::runtime::run_workers(self, queue, workers)
    }

    fn shut_down(&self) {
        self.queue.shut_down();
    }
}
