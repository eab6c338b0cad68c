//! The Deployment controller: owns ReplicaSets, one per pod template (named
//! `<deployment>-<pod-template-hash>`), and moves replicas from the old ones to the new one
//! by the RollingUpdate or Recreate strategy; scales proportionally while a rollout is in
//! flight, keeps revision annotations so `kubectl rollout history|undo` work, prunes history
//! beyond `revisionHistoryLimit`, and reports progress through the Progressing and Available
//! conditions that `kubectl rollout status` reads.
//!
//! ReplicaSet writes are replaces carrying the cached resourceVersion: a sync working from a
//! stale cache fails with a conflict and is retried, instead of undoing newer decisions.

mod recreate;
mod rolling;
pub mod util;

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector as TypedSelector, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, ResourceExt};
use tokio::task::JoinHandle;

use self::util::*;
use super::manager::{Context, Controller};
use super::runtime::events::{self, now_time, EventRecorder};
use super::runtime::ownership::{self, controller_of};
use super::runtime::selector::{self, labels_of};
use super::runtime::{key_of, split_key, Change, Informer, Reconciler, Requeue, WorkQueue};

pub const CONTROLLER_NAME: &str = "deployment-controller";

pub struct DeploymentController {
    client: kube::Client,
    deployments: Informer<Deployment>,
    sets: Informer<ReplicaSet>,
    pods: Informer<Pod>,
    queue: Arc<WorkQueue<String>>,
    recorder: Arc<EventRecorder>,
    workers: usize,
    /// The `deployment-ignores-max-unavailable` fault: old ReplicaSets go to zero at once.
    ignore_max_unavailable: bool,
}

fn deployment_selector(d: &Deployment) -> Result<selector::LabelSelector, String> {
    selector::from_typed(d.spec.as_ref().map(|s| &s.selector))
}

impl DeploymentController {
    pub fn new(ctx: &Context) -> Arc<Self> {
        let this = Arc::new(DeploymentController {
            client: ctx.client_for("deployment-controller"),
            deployments: ctx.informers.get::<Deployment>(),
            sets: ctx.informers.get::<ReplicaSet>(),
            pods: ctx.informers.get::<Pod>(),
            queue: WorkQueue::new(ctx.cfg.backoff),
            recorder: EventRecorder::new(ctx.client_for("deployment-controller"), CONTROLLER_NAME),
            workers: ctx.cfg.deployment_workers,
            ignore_max_unavailable: ctx
                .cfg
                .faults
                .contains(crate::faults::Fault::DeploymentIgnoresMaxUnavailable),
        });
        let w: Weak<Self> = Arc::downgrade(&this);
        this.deployments.add_handler({
            let w = w.clone();
            move |c| {
                if let Some(this) = w.upgrade() {
                    let key = match c {
                        Change::Add(d) | Change::Delete(d) => key_of(d.as_ref()),
                        Change::Update { new, .. } => key_of(new.as_ref()),
                    };
                    this.queue.add(key);
                }
            }
        });
        this.sets.add_handler({
            let w = w.clone();
            move |c| {
                if let Some(this) = w.upgrade() {
                    this.on_replica_set(c);
                }
            }
        });
        this.pods.add_handler(move |c| {
            if let (Some(this), Change::Delete(pod)) = (w.upgrade(), c) {
                this.on_pod_deleted(pod);
            }
        });
        this
    }

    fn resolve(
        &self,
        ns: &str,
        r: &k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
    ) -> Option<Arc<Deployment>> {
        if r.kind != "Deployment" {
            return None;
        }
        let d = self.deployments.get(ns, &r.name)?;
        (d.metadata.uid.as_deref() == Some(r.uid.as_str())).then_some(d)
    }

    fn enqueue_matching(&self, rs: &ReplicaSet) {
        let ns = rs.namespace().unwrap_or_default();
        for d in self.deployments.list_namespace(&ns) {
            let Ok(sel) = deployment_selector(&d) else {
                continue;
            };
            if !sel.is_everything() && sel.matches(labels_of(&rs.metadata.labels)) {
                self.queue.add(key_of(d.as_ref()));
            }
        }
    }

    fn on_replica_set(&self, c: &Change<ReplicaSet>) {
        match c {
            Change::Add(rs) | Change::Delete(rs) => {
                let ns = rs.namespace().unwrap_or_default();
                match controller_of(&rs.metadata) {
                    Some(r) => {
                        if let Some(d) = self.resolve(&ns, r) {
                            self.queue.add(key_of(d.as_ref()));
                        }
                    }
                    None if matches!(c, Change::Add(_)) => self.enqueue_matching(rs),
                    None => {}
                }
            }
            Change::Update { old, new } => {
                if old.metadata.resource_version == new.metadata.resource_version {
                    return;
                }
                let ns = new.namespace().unwrap_or_default();
                let cur = controller_of(&new.metadata);
                let prev = controller_of(&old.metadata);
                let ref_changed = cur.map(|r| &r.uid) != prev.map(|r| &r.uid);
                if ref_changed {
                    if let Some(d) = prev.and_then(|r| self.resolve(&ns, r)) {
                        self.queue.add(key_of(d.as_ref()));
                    }
                }
                if let Some(r) = cur {
                    if let Some(d) = self.resolve(&ns, r) {
                        self.queue.add(key_of(d.as_ref()));
                    }
                    return;
                }
                if ref_changed || old.metadata.labels != new.metadata.labels {
                    self.enqueue_matching(new);
                }
            }
        }
    }

    /// A Recreate rollout waits for the old pods to be gone; their deletion resumes it.
    fn on_pod_deleted(&self, pod: &Pod) {
        let ns = pod.namespace().unwrap_or_default();
        let Some(rs_ref) = controller_of(&pod.metadata).filter(|r| r.kind == "ReplicaSet") else {
            return;
        };
        let Some(rs) = self.sets.get(&ns, &rs_ref.name) else {
            return;
        };
        if let Some(d) = controller_of(&rs.metadata).and_then(|r| self.resolve(&ns, r)) {
            if strategy_type(&d) == "Recreate" {
                self.queue.add(key_of(d.as_ref()));
            }
        }
    }

    fn rs_api(&self, ns: &str) -> Api<ReplicaSet> {
        Api::namespaced(self.client.clone(), ns)
    }

    /// ReplicaSets this Deployment owns after adopting and releasing by selector.
    async fn claim_replica_sets(
        &self,
        d: &Deployment,
        sel: &selector::LabelSelector,
    ) -> anyhow::Result<Vec<Arc<ReplicaSet>>> {
        let ns = d.namespace().unwrap_or_default();
        let sets = self.sets.list_namespace(&ns);
        ownership::claim_for(&self.client, d, "apps/v1", "Deployment", sel, sets).await
    }

    /// Writes the Deployment's status (and its revision annotation, which upstream also
    /// writes through the status subresource) and keeps `d` at the new resourceVersion.
    async fn update_status(&self, d: &mut Deployment) -> anyhow::Result<()> {
        let ns = d.namespace().unwrap_or_default();
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), &ns);
        let updated = api
            .replace_status(&d.name_any(), &PostParams::default(), d)
            .await
            .with_context(|| format!("cannot update status of deployment {ns}/{}", d.name_any()))?;
        d.metadata.resource_version = updated.metadata.resource_version;
        Ok(())
    }

    /// The new ReplicaSet (created when `create` and missing) and all old ones, with the
    /// revision annotations brought up to date (`getAllReplicaSetsAndSyncRevision`).
    async fn get_all_and_sync_revision(
        &self,
        d: &mut Deployment,
        rs_list: &[Arc<ReplicaSet>],
        create: bool,
    ) -> anyhow::Result<(Option<Arc<ReplicaSet>>, Vec<Arc<ReplicaSet>>)> {
        let existing = find_new_rs(d, rs_list);
        let old: Vec<Arc<ReplicaSet>> = rs_list
            .iter()
            .filter(|r| {
                existing
                    .as_ref()
                    .is_none_or(|n| n.metadata.uid != r.metadata.uid)
            })
            .cloned()
            .collect();
        let new_revision = max_revision(&old) + 1;
        if let Some(existing) = existing {
            let mut copy = (*existing).clone();
            let annotations_updated = set_new_rs_annotations(d, &mut copy, new_revision, true);
            let min_ready = min_ready_seconds(d);
            let min_ready_changed = copy
                .spec
                .as_ref()
                .and_then(|s| s.min_ready_seconds)
                .unwrap_or(0)
                != min_ready;
            if annotations_updated || min_ready_changed {
                if let Some(spec) = copy.spec.as_mut() {
                    spec.min_ready_seconds = Some(min_ready);
                }
                let ns = copy.namespace().unwrap_or_default();
                let updated = self
                    .rs_api(&ns)
                    .replace(&copy.name_any(), &PostParams::default(), &copy)
                    .await?;
                return Ok((Some(Arc::new(updated)), old));
            }
            let rev = copy
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(REVISION))
                .cloned()
                .unwrap_or_default();
            let mut needs_update = set_deployment_revision(d, &rev);
            let has_progressing = d
                .status
                .as_ref()
                .and_then(|s| get_condition(s, "Progressing"))
                .is_some();
            if progress_deadline(d).is_some() && !has_progressing {
                let c = new_condition(
                    "Progressing",
                    "True",
                    FOUND_NEW_RS,
                    format!("Found new replica set {:?}", copy.name_any()),
                    &now_time(),
                );
                set_condition(d.status.get_or_insert_with(Default::default), c);
                needs_update = true;
            }
            if needs_update {
                self.update_status(d).await?;
            }
            return Ok((Some(Arc::new(copy)), old));
        }
        if !create {
            return Ok((None, old));
        }
        let created = self.create_new_rs(d, &old, new_revision).await?;
        Ok((Some(created), old))
    }

    async fn create_new_rs(
        &self,
        d: &mut Deployment,
        old: &[Arc<ReplicaSet>],
        new_revision: i64,
    ) -> anyhow::Result<Arc<ReplicaSet>> {
        let ns = d.namespace().unwrap_or_default();
        let spec = d.spec.clone().unwrap_or_default();
        let collision = d.status.as_ref().and_then(|s| s.collision_count);
        let mut template = spec.template.clone();
        let hash = compute_hash(&template, collision);
        template
            .metadata
            .get_or_insert_with(Default::default)
            .labels
            .get_or_insert_with(Default::default)
            .insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let mut sel: TypedSelector = spec.selector.clone();
        sel.match_labels
            .get_or_insert_with(Default::default)
            .insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let name = format!("{}-{hash}", d.name_any());
        let mut new_rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(ns.clone()),
                owner_references: Some(vec![ownership::controller_ref(
                    &d.metadata,
                    "apps/v1",
                    "Deployment",
                )]),
                labels: template.metadata.as_ref().and_then(|m| m.labels.clone()),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: Some(min_ready_seconds(d)),
                selector: sel,
                template: Some(template),
            }),
            status: None,
        };
        let mut all: Vec<Arc<ReplicaSet>> = old.to_vec();
        all.push(Arc::new(new_rs.clone()));
        let count = new_rs_new_replicas(d, &all, &new_rs);
        if let Some(s) = new_rs.spec.as_mut() {
            s.replicas = Some(count);
        }
        set_new_rs_annotations(d, &mut new_rs, new_revision, false);
        let api = self.rs_api(&ns);
        let mut already_exists = false;
        let created = match api.create(&PostParams::default(), &new_rs).await {
            Ok(rs) => rs,
            Err(e) if super::runtime::is_already_exists(&e) => {
                already_exists = true;
                let existing = match self.sets.get(&ns, &name) {
                    Some(rs) => (*rs).clone(),
                    None => api.get(&name).await?,
                };
                let ours = controller_of(&existing.metadata)
                    .is_some_and(|r| Some(&r.uid) == d.metadata.uid.as_ref());
                let same = existing
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.as_ref())
                    .is_some_and(|t| equal_ignore_hash(t, &spec.template));
                if !(ours && same) {
                    // A hash collision: another template produced this name. Bump the count so
                    // the next attempt hashes differently.
                    let status = d.status.get_or_insert_with(Default::default);
                    status.collision_count =
                        Some(status.collision_count.unwrap_or(0).saturating_add(1));
                    self.update_status(d).await?;
                    return Err(anyhow::Error::new(e)
                        .context(format!("hash collision for replica set {name}")));
                }
                existing
            }
            Err(e) if super::runtime::is_namespace_terminating(&e) => return Err(e.into()),
            Err(e) => {
                let msg = format!(
                    "Failed to create new replica set {name:?}: {}",
                    api_message(&e)
                );
                if progress_deadline(d).is_some() {
                    let c = new_condition(
                        "Progressing",
                        "False",
                        FAILED_RS_CREATE,
                        msg.clone(),
                        &now_time(),
                    );
                    set_condition(d.status.get_or_insert_with(Default::default), c);
                    let _ = self.update_status(d).await;
                }
                self.recorder
                    .event(d, events::WARNING, FAILED_RS_CREATE, msg);
                return Err(e.into());
            }
        };
        if !already_exists && count > 0 {
            self.recorder.event(
                d,
                events::NORMAL,
                "ScalingReplicaSet",
                format!(
                    "Scaled up replica set {} from 0 to {count}",
                    created.name_any()
                ),
            );
        }
        let mut needs_update = set_deployment_revision(d, &new_revision.to_string());
        if !already_exists && progress_deadline(d).is_some() {
            let c = new_condition(
                "Progressing",
                "True",
                NEW_RS_CREATED,
                format!("Created new replica set {:?}", created.name_any()),
                &now_time(),
            );
            set_condition(d.status.get_or_insert_with(Default::default), c);
            needs_update = true;
        }
        if needs_update {
            self.update_status(d).await?;
        }
        Ok(Arc::new(created))
    }

    /// Sets `rs` to `new_scale` replicas with current replica annotations; emits
    /// ScalingReplicaSet when the size changed. Returns (scaled, the ReplicaSet now).
    async fn scale_replica_set(
        &self,
        rs: &Arc<ReplicaSet>,
        new_scale: i32,
        d: &Deployment,
    ) -> anyhow::Result<(bool, Arc<ReplicaSet>)> {
        let old_scale = rs_replicas(rs);
        let size_changed = old_scale != new_scale;
        let (desired, max) = (spec_replicas(d), spec_replicas(d) + max_surge(d));
        if !size_changed && !replicas_annotations_need_update(rs, desired, max) {
            return Ok((false, rs.clone()));
        }
        let mut copy = (**rs).clone();
        if let Some(s) = copy.spec.as_mut() {
            s.replicas = Some(new_scale);
        }
        set_replicas_annotations(&mut copy, desired, max);
        let ns = copy.namespace().unwrap_or_default();
        let updated = self
            .rs_api(&ns)
            .replace(&copy.name_any(), &PostParams::default(), &copy)
            .await
            .with_context(|| format!("cannot scale replica set {ns}/{}", copy.name_any()))?;
        if size_changed {
            let op = if old_scale < new_scale { "up" } else { "down" };
            self.recorder.event(
                d,
                events::NORMAL,
                "ScalingReplicaSet",
                format!(
                    "Scaled {op} replica set {} from {old_scale} to {new_scale}",
                    updated.name_any()
                ),
            );
        }
        Ok((size_changed, Arc::new(updated)))
    }

    /// Only scales the ReplicaSet when the size changes (`scaleReplicaSetAndRecordEvent`).
    async fn scale_and_record(
        &self,
        rs: &Arc<ReplicaSet>,
        new_scale: i32,
        d: &Deployment,
    ) -> anyhow::Result<(bool, Arc<ReplicaSet>)> {
        if rs_replicas(rs) == new_scale {
            return Ok((false, rs.clone()));
        }
        self.scale_replica_set(rs, new_scale, d).await
    }

    /// Scaling while no template change is rolling out, or while paused: proportional
    /// scaling over the active ReplicaSets (`scale`).
    async fn scale(
        &self,
        d: &Deployment,
        new_rs: Option<&Arc<ReplicaSet>>,
        old: &[Arc<ReplicaSet>],
    ) -> anyhow::Result<()> {
        let replicas = spec_replicas(d);
        if let Some(target) = find_active_or_latest(new_rs, old) {
            if rs_replicas(&target) == replicas {
                return Ok(());
            }
            self.scale_and_record(&target, replicas, d).await?;
            return Ok(());
        }
        if is_saturated(d, new_rs) {
            for rs in old.iter().filter(|r| rs_replicas(r) > 0) {
                self.scale_and_record(rs, 0, d).await?;
            }
            return Ok(());
        }
        if !is_rolling_update(d) {
            return Ok(());
        }
        let mut all: Vec<Arc<ReplicaSet>> = old.to_vec();
        all.extend(new_rs.cloned());
        all.retain(|r| rs_replicas(r) > 0);
        let current = total_replicas(&all);
        let allowed = if replicas > 0 {
            replicas + max_surge(d)
        } else {
            0
        };
        let to_add = allowed - current;
        if to_add > 0 {
            all.sort_by(|a, b| by_size(a, b, true));
        } else if to_add < 0 {
            all.sort_by(|a, b| by_size(a, b, false));
        }
        let mut added = 0;
        let mut sizes: HashMap<String, i32> = HashMap::new();
        for rs in &all {
            let p = if to_add != 0 {
                proportion(rs, d, to_add, added)
            } else {
                0
            };
            sizes.insert(rs.name_any(), rs_replicas(rs) + p);
            added += p;
        }
        for (i, rs) in all.iter().enumerate() {
            let name = rs.name_any();
            let mut size = sizes.get(&name).copied().unwrap_or(0);
            if i == 0 && to_add != 0 {
                size = (size + to_add - added).max(0);
            }
            self.scale_replica_set(rs, size, d).await?;
        }
        Ok(())
    }

    /// Deletes old, empty ReplicaSets beyond `revisionHistoryLimit`, oldest revision first.
    async fn cleanup(&self, d: &Deployment, old: &[Arc<ReplicaSet>]) -> anyhow::Result<()> {
        let Some(limit) = d.spec.as_ref().and_then(|s| s.revision_history_limit) else {
            return Ok(());
        };
        let mut cleanable: Vec<Arc<ReplicaSet>> = old
            .iter()
            .filter(|r| r.metadata.deletion_timestamp.is_none())
            .cloned()
            .collect();
        let diff = cleanable.len() as i64 - limit.max(0) as i64;
        if diff <= 0 {
            return Ok(());
        }
        cleanable.sort_by(by_revision);
        for rs in cleanable.iter().take(diff as usize) {
            let status = rs.status.clone().unwrap_or_default();
            if status.replicas != 0
                || rs_replicas(rs) != 0
                || rs.metadata.generation.unwrap_or(0) > status.observed_generation.unwrap_or(0)
            {
                continue;
            }
            let ns = rs.namespace().unwrap_or_default();
            match self
                .rs_api(&ns)
                .delete(&rs.name_any(), &DeleteParams::default())
                .await
            {
                Ok(_) => {}
                Err(e) if super::runtime::is_not_found(&e) => {}
                Err(e) => {
                    return Err(anyhow::Error::new(e).context("cannot delete old replica set"))
                }
            }
        }
        Ok(())
    }

    /// Writes the calculated status if it changed (`syncDeploymentStatus`).
    async fn sync_deployment_status(
        &self,
        d: &mut Deployment,
        all: &[Arc<ReplicaSet>],
        new_rs: Option<&Arc<ReplicaSet>>,
    ) -> anyhow::Result<Requeue> {
        let status = calculate_status(all, new_rs, d, &now_time());
        if same_status(d.status.as_ref().unwrap_or(&Default::default()), &status) {
            return Ok(Requeue::No);
        }
        d.status = Some(status);
        self.update_status(d).await?;
        Ok(Requeue::No)
    }

    /// The status with progress estimation (`syncRolloutStatus`), and when to look again if
    /// the rollout seems stuck.
    async fn sync_rollout_status(
        &self,
        d: &mut Deployment,
        all: &[Arc<ReplicaSet>],
        new_rs: Option<&Arc<ReplicaSet>>,
    ) -> anyhow::Result<Requeue> {
        let now = now_time();
        let mut status = calculate_status(all, new_rs, d, &now);
        let deadline = progress_deadline(d);
        if deadline.is_none() {
            remove_condition(&mut status, "Progressing");
        }
        let current = d
            .status
            .as_ref()
            .and_then(|s| get_condition(s, "Progressing"))
            .cloned();
        let complete_already = status.replicas == status.updated_replicas
            && current
                .as_ref()
                .is_some_and(|c| c.reason.as_deref() == Some(NEW_RS_AVAILABLE));
        if deadline.is_some() && !complete_already {
            let rs_name = new_rs.map(|r| r.name_any());
            if deployment_complete(d, &status) {
                let msg = match &rs_name {
                    Some(n) => format!("ReplicaSet {n:?} has successfully progressed."),
                    None => format!("Deployment {:?} has successfully progressed.", d.name_any()),
                };
                set_condition(
                    &mut status,
                    new_condition("Progressing", "True", NEW_RS_AVAILABLE, msg, &now),
                );
            } else if deployment_progressing(d, &status) {
                let msg = match &rs_name {
                    Some(n) => format!("ReplicaSet {n:?} is progressing."),
                    None => format!("Deployment {:?} is progressing.", d.name_any()),
                };
                let mut c = new_condition("Progressing", "True", RS_UPDATED, msg, &now);
                if let Some(cur) = &current {
                    if cur.status == "True" {
                        c.last_transition_time = cur.last_transition_time.clone();
                    }
                    remove_condition(&mut status, "Progressing");
                }
                set_condition(&mut status, c);
            } else if deployment_timed_out(d, &status, now.0) {
                let msg = match &rs_name {
                    Some(n) => format!("ReplicaSet {n:?} has timed out progressing."),
                    None => format!("Deployment {:?} has timed out progressing.", d.name_any()),
                };
                set_condition(
                    &mut status,
                    new_condition("Progressing", "False", TIMED_OUT, msg, &now),
                );
            }
        }
        // The ReplicaSets' failure (quota, admission) surfaces on the Deployment.
        match replica_failure(all, new_rs) {
            Some(c) => set_condition(&mut status, c),
            None => remove_condition(&mut status, "ReplicaFailure"),
        }
        if same_status(d.status.as_ref().unwrap_or(&Default::default()), &status) {
            return Ok(self.requeue_stuck(d, &status));
        }
        d.status = Some(status);
        self.update_status(d).await?;
        Ok(Requeue::No)
    }

    /// When a rollout without progress must be looked at again to notice its deadline.
    fn requeue_stuck(
        &self,
        d: &Deployment,
        status: &k8s_openapi::api::apps::v1::DeploymentStatus,
    ) -> Requeue {
        let Some(deadline) = progress_deadline(d) else {
            return Requeue::No;
        };
        let Some(cur) = d
            .status
            .as_ref()
            .and_then(|s| get_condition(s, "Progressing"))
        else {
            return Requeue::No;
        };
        if deployment_complete(d, status) || cur.reason.as_deref() == Some(TIMED_OUT) {
            return Requeue::No;
        }
        let Some(updated) = cur.last_update_time.as_ref() else {
            return Requeue::No;
        };
        let at = updated.0.as_second() + deadline as i64;
        let left = at - Timestamp::now().as_second();
        if left < 1 {
            return Requeue::After(Duration::from_secs(1));
        }
        Requeue::After(Duration::from_secs(left as u64 + 1))
    }

    /// Adds or drops the Progressing=Unknown condition that marks a pause.
    async fn check_paused_conditions(&self, d: &mut Deployment) -> anyhow::Result<()> {
        if progress_deadline(d).is_none() {
            return Ok(());
        }
        let cond = d
            .status
            .as_ref()
            .and_then(|s| get_condition(s, "Progressing"))
            .cloned();
        if cond
            .as_ref()
            .is_some_and(|c| c.reason.as_deref() == Some(TIMED_OUT))
        {
            return Ok(());
        }
        let paused_cond = cond
            .as_ref()
            .is_some_and(|c| c.reason.as_deref() == Some(PAUSED));
        let now = now_time();
        let c = if is_paused(d) && !paused_cond {
            new_condition(
                "Progressing",
                "Unknown",
                PAUSED,
                "Deployment is paused".into(),
                &now,
            )
        } else if !is_paused(d) && paused_cond {
            new_condition(
                "Progressing",
                "Unknown",
                RESUMED,
                "Deployment is resumed".into(),
                &now,
            )
        } else {
            return Ok(());
        };
        set_condition(d.status.get_or_insert_with(Default::default), c);
        self.update_status(d).await
    }

    /// A replica count change not matched by the ReplicaSets' desired-replicas annotation.
    async fn is_scaling_event(
        &self,
        d: &mut Deployment,
        rs_list: &[Arc<ReplicaSet>],
    ) -> anyhow::Result<bool> {
        let (new_rs, old) = self.get_all_and_sync_revision(d, rs_list, false).await?;
        let mut all = old;
        all.extend(new_rs);
        let replicas = spec_replicas(d);
        Ok(all
            .iter()
            .filter(|r| rs_replicas(r) > 0)
            .filter_map(|r| desired_replicas_annotation(r))
            .any(|desired| desired != replicas))
    }

    /// Scale or pause handling: no rollout step, just sizes and status (`sync`).
    async fn sync_scaling(
        &self,
        d: &mut Deployment,
        rs_list: &[Arc<ReplicaSet>],
    ) -> anyhow::Result<Requeue> {
        let (new_rs, old) = self.get_all_and_sync_revision(d, rs_list, false).await?;
        self.scale(d, new_rs.as_ref(), &old).await?;
        if is_paused(d) {
            self.cleanup(d, &old).await?;
        }
        let mut all = old;
        all.extend(new_rs.clone());
        self.sync_deployment_status(d, &all, new_rs.as_ref()).await
    }

    /// Pods of the Deployment grouped by the UID of the ReplicaSet controlling them.
    fn pod_map(
        &self,
        d: &Deployment,
        rs_list: &[Arc<ReplicaSet>],
    ) -> HashMap<String, Vec<Arc<Pod>>> {
        let ns = d.namespace().unwrap_or_default();
        let mut map: HashMap<String, Vec<Arc<Pod>>> = rs_list
            .iter()
            .filter_map(|r| r.metadata.uid.clone())
            .map(|u| (u, Vec::new()))
            .collect();
        let Ok(sel) = deployment_selector(d) else {
            return map;
        };
        for p in self.pods.list_namespace(&ns) {
            if !sel.matches(labels_of(&p.metadata.labels)) {
                continue;
            }
            if let Some(r) = controller_of(&p.metadata) {
                if let Some(v) = map.get_mut(&r.uid) {
                    v.push(p.clone());
                }
            }
        }
        map
    }
}

fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

/// The first ReplicaFailure condition of the new, then the old ReplicaSets.
fn replica_failure(
    all: &[Arc<ReplicaSet>],
    new_rs: Option<&Arc<ReplicaSet>>,
) -> Option<k8s_openapi::api::apps::v1::DeploymentCondition> {
    let conv = |rs: &ReplicaSet| {
        rs.status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == "ReplicaFailure")
            .map(|c| k8s_openapi::api::apps::v1::DeploymentCondition {
                type_: c.type_.clone(),
                status: c.status.clone(),
                reason: c.reason.clone(),
                message: c.message.clone(),
                last_transition_time: c.last_transition_time.clone(),
                last_update_time: c.last_transition_time.clone(),
            })
    };
    if let Some(c) = new_rs.and_then(|r| conv(r)) {
        return Some(c);
    }
    all.iter().find_map(|r| conv(r))
}

#[async_trait::async_trait]
impl Reconciler for DeploymentController {
    fn name(&self) -> &'static str {
        CONTROLLER_NAME
    }

    async fn sync(&self, key: &str) -> anyhow::Result<Requeue> {
        let (ns, name) = split_key(key);
        let Some(cached) = self.deployments.get(ns, name) else {
            return Ok(Requeue::No);
        };
        let mut d = (*cached).clone();
        let sel = match deployment_selector(&d) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(%key, error = %e, "invalid selector");
                return Ok(Requeue::No);
            }
        };
        if sel.is_everything() {
            self.recorder.event(
                &d,
                events::WARNING,
                "SelectingAll",
                "This deployment is selecting all pods. A non-empty selector is required.",
            );
            let status = d.status.get_or_insert_with(Default::default);
            if status.observed_generation.unwrap_or(0) < d.metadata.generation.unwrap_or(0) {
                status.observed_generation = d.metadata.generation;
                self.update_status(&mut d).await?;
            }
            return Ok(Requeue::No);
        }
        let rs_list = self.claim_replica_sets(&d, &sel).await?;
        if d.metadata.deletion_timestamp.is_some() {
            let (new_rs, old) = self
                .get_all_and_sync_revision(&mut d, &rs_list, false)
                .await?;
            let mut all = old;
            all.extend(new_rs.clone());
            return self
                .sync_deployment_status(&mut d, &all, new_rs.as_ref())
                .await;
        }
        self.check_paused_conditions(&mut d).await?;
        if is_paused(&d) {
            return self.sync_scaling(&mut d, &rs_list).await;
        }
        if self.is_scaling_event(&mut d, &rs_list).await? {
            return self.sync_scaling(&mut d, &rs_list).await;
        }
        match strategy_type(&d) {
            "Recreate" => self.rollout_recreate(&mut d, &rs_list).await,
            _ => self.rollout_rolling(&mut d, &rs_list).await,
        }
    }
}

impl Controller for DeploymentController {
    fn name(&self) -> &'static str {
        "deployment"
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
