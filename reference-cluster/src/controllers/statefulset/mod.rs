//! The StatefulSet controller: pods `<set>-<ordinal>` with stable hostnames and their own
//! PersistentVolumeClaims, created in ordinal order and each only once its predecessors are
//! Running and Ready (OrderedReady) or all at once (Parallel), removed from the highest
//! ordinal down; rolling updates replace pods from the highest ordinal down to the
//! partition, one healthy pod at a time; `currentRevision`/`updateRevision` name
//! ControllerRevisions (upstream `stateful_set_control.go`).

pub mod identity;

use std::collections::HashSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use tokio::task::JoinHandle;

use self::identity::*;
use super::history::{self, NewRevision};
use super::manager::{Context, Controller};
use super::runtime::events::{self, EventRecorder};
use super::runtime::ownership::{self, controller_of};
use super::runtime::{
    self, key_of, pods, selector, split_key, Change, Informer, Reconciler, Requeue, WorkQueue,
};

pub const CONTROLLER_NAME: &str = "statefulset-controller";

pub struct StatefulSetController {
    client: kube::Client,
    sets: Informer<StatefulSet>,
    pods: Informer<Pod>,
    revisions: Informer<ControllerRevision>,
    claims: Informer<PersistentVolumeClaim>,
    queue: Arc<WorkQueue<String>>,
    recorder: Arc<EventRecorder>,
    workers: usize,
}

fn is_created(p: &Pod) -> bool {
    !pods::phase(p).is_empty()
}

fn running_and_ready(p: &Pod) -> bool {
    pods::phase(p) == "Running" && pods::is_ready(p)
}

fn running_and_available(p: &Pod, min_ready: i32) -> bool {
    pods::phase(p) == "Running" && pods::is_available(p, min_ready, Timestamp::now())
}

fn healthy(p: &Pod) -> bool {
    running_and_ready(p) && !pods::is_terminating(p)
}

fn min_ready(set: &StatefulSet) -> i32 {
    set.spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0)
}

fn parallel(set: &StatefulSet) -> bool {
    set.spec
        .as_ref()
        .and_then(|s| s.pod_management_policy.as_deref())
        == Some("Parallel")
}

fn strategy(set: &StatefulSet) -> (String, Option<i32>) {
    let us = set
        .spec
        .as_ref()
        .and_then(|s| s.update_strategy.clone())
        .unwrap_or_default();
    let t = us.type_.unwrap_or_else(|| "RollingUpdate".into());
    let partition = us.rolling_update.and_then(|r| r.partition);
    (t, partition)
}

/// The set with the template of a revision (`ApplyRevision`).
fn apply_revision(set: &StatefulSet, rev: &ControllerRevision) -> StatefulSet {
    let mut s = set.clone();
    if let (Some(t), Some(spec)) = (history::template_of(rev), s.spec.as_mut()) {
        spec.template = t;
    }
    s
}

/// Counts of the status over the given pods (`computeReplicaStatus`).
fn count_status(
    status: &mut StatefulSetStatus,
    list: &[Arc<Pod>],
    min_ready: i32,
    current: &str,
    update: &str,
) {
    for p in list {
        if is_created(p) {
            status.replicas += 1;
        }
        if running_and_ready(p) {
            status.ready_replicas = Some(status.ready_replicas.unwrap_or(0) + 1);
            if running_and_available(p, min_ready) {
                status.available_replicas = Some(status.available_replicas.unwrap_or(0) + 1);
            }
        }
        if is_created(p) && !pods::is_terminating(p) {
            let r = revision_of(p);
            if r == current {
                status.current_replicas = Some(status.current_replicas.unwrap_or(0) + 1);
            }
            if r == update {
                status.updated_replicas = Some(status.updated_replicas.unwrap_or(0) + 1);
            }
        }
    }
}

impl StatefulSetController {
    pub fn new(ctx: &Context) -> Arc<Self> {
        let this = Arc::new(StatefulSetController {
            client: ctx.client_for("statefulset-controller"),
            sets: ctx.informers.get::<StatefulSet>(),
            pods: ctx.informers.get::<Pod>(),
            revisions: ctx.informers.get::<ControllerRevision>(),
            claims: ctx.informers.get::<PersistentVolumeClaim>(),
            queue: WorkQueue::new(ctx.cfg.backoff),
            recorder: EventRecorder::new(ctx.client_for("statefulset-controller"), CONTROLLER_NAME),
            workers: ctx.cfg.statefulset_workers,
        });
        let q = this.queue.clone();
        this.sets.add_handler(move |c| match c {
            Change::Add(s) | Change::Delete(s) => q.add(key_of(s.as_ref())),
            Change::Update { new, .. } => q.add(key_of(new.as_ref())),
        });
        let w: Weak<Self> = Arc::downgrade(&this);
        this.pods.add_handler(move |c| {
            let Some(this) = w.upgrade() else { return };
            let mut pods_seen = vec![];
            match c {
                Change::Add(p) | Change::Delete(p) => pods_seen.push(p.clone()),
                Change::Update { old, new } => {
                    pods_seen.push(new.clone());
                    if controller_of(&old.metadata).map(|r| &r.uid)
                        != controller_of(&new.metadata).map(|r| &r.uid)
                    {
                        pods_seen.push(old.clone());
                    }
                }
            }
            for p in pods_seen {
                let ns = p.namespace().unwrap_or_default();
                match controller_of(&p.metadata) {
                    Some(r) if r.kind == "StatefulSet" => {
                        if let Some(s) = this
                            .sets
                            .get(&ns, &r.name)
                            .filter(|s| s.uid().as_deref() == Some(r.uid.as_str()))
                        {
                            this.queue.add(key_of(s.as_ref()));
                        }
                    }
                    Some(_) => {}
                    None => {
                        for s in this.sets.list_namespace(&ns) {
                            let matches =
                                selector::from_typed(s.spec.as_ref().map(|x| &x.selector))
                                    .is_ok_and(|sel| {
                                        !sel.is_everything()
                                            && sel.matches(selector::labels_of(&p.metadata.labels))
                                    });
                            if matches {
                                this.queue.add(key_of(s.as_ref()));
                            }
                        }
                    }
                }
            }
        });
        this
    }

    fn pod_api(&self, ns: &str) -> Api<Pod> {
        Api::namespaced(self.client.clone(), ns)
    }

    async fn claim_pods(&self, set: &StatefulSet) -> anyhow::Result<Vec<Arc<Pod>>> {
        let sel = selector::from_typed(set.spec.as_ref().map(|s| &s.selector))
            .map_err(anyhow::Error::msg)?;
        let ns = set.namespace().unwrap_or_default();
        // Only pods named after the set are members.
        let candidates: Vec<Arc<Pod>> = self
            .pods
            .list_namespace(&ns)
            .into_iter()
            .filter(|p| ordinal_of(set, p).is_some())
            .collect();
        ownership::claim_for(
            &self.client,
            set,
            "apps/v1",
            "StatefulSet",
            &sel,
            candidates,
        )
        .await
    }

    /// The current and update revisions (`getStatefulSetRevisions`).
    async fn revisions_for(
        &self,
        set: &StatefulSet,
        revisions: &[Arc<ControllerRevision>],
    ) -> anyhow::Result<(ControllerRevision, ControllerRevision, i32)> {
        let spec = set.spec.clone().unwrap_or_default();
        let data = history::template_patch(&spec.template);
        let collision = set
            .status
            .as_ref()
            .and_then(|s| s.collision_count)
            .unwrap_or(0);
        let new = NewRevision {
            owner: ownership::controller_ref(&set.metadata, "apps/v1", "StatefulSet"),
            namespace: set.namespace().unwrap_or_default(),
            labels: spec
                .template
                .metadata
                .as_ref()
                .and_then(|m| m.labels.clone())
                .unwrap_or_default(),
            annotations: set.metadata.annotations.clone().unwrap_or_default(),
            data: data.clone(),
        };
        let (update, collision) =
            history::find_or_create(&self.client, revisions, new, collision, |c| {
                history::hash_data(&data, Some(c))
            })
            .await?;
        let current_name = set
            .status
            .as_ref()
            .and_then(|s| s.current_revision.clone())
            .unwrap_or_default();
        let current = revisions
            .iter()
            .find(|r| r.name_any() == current_name)
            .map(|r| (**r).clone())
            .unwrap_or_else(|| update.clone());
        Ok((current, update, collision))
    }

    async fn create_pod(&self, set: &StatefulSet, pod: &Pod, ordinal: i32) -> anyhow::Result<()> {
        let ns = set.namespace().unwrap_or_default();
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), &ns);
        for c in claims_for(set, ordinal) {
            let name = c.name_any();
            if self.claims.get(&ns, &name).is_some() {
                continue;
            }
            match claims.create(&PostParams::default(), &c).await {
                Ok(_) => self.recorder.event(
                    set,
                    events::NORMAL,
                    "SuccessfulCreate",
                    format!(
                        "create Claim {name} Pod {} in StatefulSet {} success",
                        pod.name_any(),
                        set.name_any()
                    ),
                ),
                Err(e) if runtime::is_already_exists(&e) => {}
                Err(e) => {
                    self.recorder.event(
                        set,
                        events::WARNING,
                        "FailedCreate",
                        format!(
                            "create Claim {name} for Pod {} in StatefulSet {} failed error: {e}",
                            pod.name_any(),
                            set.name_any()
                        ),
                    );
                    return Err(e.into());
                }
            }
        }
        match self.pod_api(&ns).create(&PostParams::default(), pod).await {
            Ok(_) => {
                self.recorder.event(
                    set,
                    events::NORMAL,
                    "SuccessfulCreate",
                    format!(
                        "create Pod {} in StatefulSet {} successful",
                        pod.name_any(),
                        set.name_any()
                    ),
                );
                Ok(())
            }
            Err(e) if runtime::is_already_exists(&e) => Ok(()),
            Err(e) => {
                self.recorder.event(
                    set,
                    events::WARNING,
                    "FailedCreate",
                    format!(
                        "create Pod {} in StatefulSet {} failed error: {e}",
                        pod.name_any(),
                        set.name_any()
                    ),
                );
                Err(e.into())
            }
        }
    }

    async fn delete_pod(&self, set: &StatefulSet, pod: &Pod) -> anyhow::Result<()> {
        match self
            .pod_api(&pod.namespace().unwrap_or_default())
            .delete(&pod.name_any(), &DeleteParams::default())
            .await
        {
            Ok(_) => {
                self.recorder.event(
                    set,
                    events::NORMAL,
                    "SuccessfulDelete",
                    format!(
                        "delete Pod {} in StatefulSet {} successful",
                        pod.name_any(),
                        set.name_any()
                    ),
                );
                Ok(())
            }
            Err(e) if runtime::is_not_found(&e) => Ok(()),
            Err(e) => {
                self.recorder.event(
                    set,
                    events::WARNING,
                    "FailedDelete",
                    format!(
                        "delete Pod {} in StatefulSet {} failed error: {e}",
                        pod.name_any(),
                        set.name_any()
                    ),
                );
                Err(e.into())
            }
        }
    }

    /// Puts lost identity labels back on a pod.
    async fn fix_identity(&self, set: &StatefulSet, pod: &Pod) -> anyhow::Result<()> {
        let Some(ord) = ordinal_of(set, pod) else {
            return Ok(());
        };
        let patch = json!({"metadata": {"labels": {POD_NAME_LABEL: pod.name_any(), POD_INDEX_LABEL: ord.to_string()}}});
        self.pod_api(&pod.namespace().unwrap_or_default())
            .patch(
                &pod.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        self.recorder.event(
            set,
            events::NORMAL,
            "SuccessfulUpdate",
            format!(
                "update Pod {} in StatefulSet {} successful",
                pod.name_any(),
                set.name_any()
            ),
        );
        Ok(())
    }

    /// Moves the pods one step towards the spec (`updateStatefulSet`); returns the status.
    async fn update_set(
        &self,
        set: &StatefulSet,
        current: &ControllerRevision,
        update: &ControllerRevision,
        collision: i32,
        pods: &[Arc<Pod>],
    ) -> anyhow::Result<StatefulSetStatus> {
        let current_set = apply_revision(set, current);
        let update_set = apply_revision(set, update);
        let (cur_name, upd_name) = (current.name_any(), update.name_any());
        let mut status = StatefulSetStatus {
            observed_generation: set.metadata.generation,
            current_revision: Some(cur_name.clone()),
            update_revision: Some(upd_name.clone()),
            collision_count: Some(collision),
            ..Default::default()
        };
        let start = start_ordinal(set);
        let count = replicas(set);
        let end = start + count - 1;
        let mut slots: Vec<Option<Arc<Pod>>> = vec![None; count as usize];
        let mut condemned: Vec<Arc<Pod>> = Vec::new();
        for p in pods {
            match ordinal_of(set, p) {
                Some(o) if o >= start && o <= end => slots[(o - start) as usize] = Some(p.clone()),
                Some(_) => condemned.push(p.clone()),
                None => {}
            }
        }
        condemned.sort_by_key(|p| std::cmp::Reverse(ordinal_of(set, p)));
        let current_replicas = set
            .status
            .as_ref()
            .and_then(|s| s.current_replicas)
            .unwrap_or(0);
        let (strategy_type, partition) = strategy(set);
        let versioned = |ordinal: i32| -> Pod {
            let use_current = strategy_type == "RollingUpdate"
                && match partition {
                    None => ordinal < start + current_replicas,
                    Some(p) => ordinal < start + p,
                };
            if use_current {
                new_pod(&current_set, ordinal, &cur_name)
            } else {
                new_pod(&update_set, ordinal, &upd_name)
            }
        };
        let existing: Vec<Arc<Pod>> = slots.iter().flatten().cloned().collect();
        count_status(&mut status, &existing, min_ready(set), &cur_name, &upd_name);
        count_status(
            &mut status,
            &condemned,
            min_ready(set),
            &cur_name,
            &upd_name,
        );
        if set.metadata.deletion_timestamp.is_some() {
            return Ok(status);
        }
        let monotonic = !parallel(set);
        let first_unhealthy: Option<String> = slots
            .iter()
            .flatten()
            .chain(condemned.iter().rev())
            .find(|p| !healthy(p))
            .map(|p| p.name_any());
        // Live replicas, lowest ordinal first.
        for (i, slot) in slots.iter_mut().enumerate() {
            let ordinal = start + i as i32;
            if let Some(p) = slot.clone() {
                if pods::is_terminal(&p) {
                    let (reason, what) = if pods::phase(&p) == "Failed" {
                        ("RecreatingFailedPod", "failed")
                    } else {
                        ("RecreatingTerminatedPod", "terminated")
                    };
                    self.recorder.event(
                        set,
                        events::WARNING,
                        reason,
                        format!(
                            "StatefulSet {}/{} is recreating {what} Pod {}",
                            set.namespace().unwrap_or_default(),
                            set.name_any(),
                            p.name_any()
                        ),
                    );
                    self.delete_pod(set, &p).await?;
                    *slot = None;
                    // It must be gone before its name can be used again.
                    if monotonic {
                        return Ok(status);
                    }
                    continue;
                }
            }
            let Some(p) = slot.clone() else {
                let pod = versioned(ordinal);
                self.create_pod(set, &pod, ordinal).await?;
                if monotonic {
                    return Ok(status);
                }
                continue;
            };
            if monotonic
                && (pods::is_terminating(&p)
                    || !running_and_ready(&p)
                    || !running_and_available(&p, min_ready(set)))
            {
                return Ok(status);
            }
            if !identity_matches(set, &p) {
                self.fix_identity(set, &p).await?;
            }
        }
        // Scale down: the highest ordinal first, after its predecessors are healthy.
        for p in &condemned {
            if pods::is_terminating(p) {
                if monotonic {
                    return Ok(status);
                }
                continue;
            }
            let is_first_unhealthy = first_unhealthy.as_deref() == Some(p.name_any().as_str());
            if monotonic && !running_and_available(p, min_ready(set)) && !is_first_unhealthy {
                return Ok(status);
            }
            self.delete_pod(set, p).await?;
            if monotonic {
                return Ok(status);
            }
        }
        if strategy_type == "OnDelete" {
            return Ok(status);
        }
        // Rolling update: replace the highest ordinal not at the update revision, down to the
        // partition, waiting for each to be healthy.
        let update_min = partition.unwrap_or(0).max(0) as usize;
        for target in (update_min..slots.len()).rev() {
            let Some(p) = &slots[target] else {
                return Ok(status);
            };
            if revision_of(p) != upd_name && !pods::is_terminating(p) {
                self.delete_pod(set, p).await?;
                status.current_replicas = Some(status.current_replicas.unwrap_or(0) - 1);
                return Ok(status);
            }
            if !healthy(p) {
                return Ok(status);
            }
        }
        Ok(status)
    }
}

fn same_status(a: &StatefulSetStatus, b: &StatefulSetStatus) -> bool {
    serde_json::to_value(a).ok() == serde_json::to_value(b).ok()
}

#[async_trait::async_trait]
impl Reconciler for StatefulSetController {
    fn name(&self) -> &'static str {
        CONTROLLER_NAME
    }

    async fn sync(&self, key: &str) -> anyhow::Result<Requeue> {
        let (ns, name) = split_key(key);
        let Some(cached) = self.sets.get(ns, name) else {
            return Ok(Requeue::No);
        };
        let set = (*cached).clone();
        let pods = self.claim_pods(&set).await?;
        let uid = set.uid().unwrap_or_default();
        let revisions = history::owned(&self.revisions, ns, &uid);
        let (current, update, collision) = self.revisions_for(&set, &revisions).await?;
        let result = self
            .update_set(&set, &current, &update, collision, &pods)
            .await;
        let mut status = match result {
            Ok(s) => s,
            Err(e) => return Err(e),
        };
        // A finished rolling update makes the update revision current.
        let (t, _) = strategy(&set);
        if t == "RollingUpdate"
            && status.updated_replicas.unwrap_or(0) == status.replicas
            && status.ready_replicas.unwrap_or(0) == status.replicas
        {
            status.current_replicas = status.updated_replicas;
            status.current_revision = status.update_revision.clone();
        }
        for n in [
            &mut status.ready_replicas,
            &mut status.current_replicas,
            &mut status.updated_replicas,
        ] {
            if n.is_none() {
                *n = Some(0);
            }
        }
        status.available_replicas = Some(status.available_replicas.unwrap_or(0));
        let old = set.status.clone().unwrap_or_default();
        if !same_status(&old, &status) {
            let mut s = set.clone();
            s.status = Some(status.clone());
            let api: Api<StatefulSet> = Api::namespaced(self.client.clone(), ns);
            api.replace_status(name, &PostParams::default(), &s)
                .await
                .with_context(|| format!("cannot update status of statefulset {key}"))?;
        }
        // History beyond revisionHistoryLimit goes, except revisions still in use.
        let mut live: HashSet<String> = [current.name_any(), update.name_any()].into();
        live.extend(pods.iter().map(|p| revision_of(p)));
        let limit = set
            .spec
            .as_ref()
            .and_then(|s| s.revision_history_limit)
            .unwrap_or(10);
        let revisions = history::owned(&self.revisions, ns, &uid);
        history::truncate(&self.client, &revisions, &live, limit).await?;
        let now = Timestamp::now();
        let next = pods
            .iter()
            .filter_map(|p| pods::until_available(p, min_ready(&set), now))
            .min();
        Ok(next.map_or(Requeue::No, |d| {
            Requeue::After(d + Duration::from_millis(100))
        }))
    }
}

impl Controller for StatefulSetController {
    fn name(&self) -> &'static str {
        "statefulset"
    }

    fn run(self: Arc<Self>) -> Vec<JoinHandle<()>> {
        let (q, w) = (self.queue.clone(), self.workers);
        runtime::run_workers(self, q, w)
    }

    fn shut_down(&self) {
        self.queue.shut_down();
    }
}
