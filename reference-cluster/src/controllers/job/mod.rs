//! The Job controller (1.32 semantics): runs pods until `completions` succeed (or, without
//! completions, until one does), at most `parallelism` at a time, recreating failed ones after
//! an exponential back-off until `backoffLimit` failures; honours activeDeadlineSeconds,
//! suspend, Indexed completion mode, podFailurePolicy and successPolicy.
//!
//! Pods are counted exactly once through the `batch.kubernetes.io/job-tracking` finalizer:
//! a finished pod's UID is first written to `status.uncountedTerminatedPods`, then its
//! finalizer is removed, then it moves into the succeeded/failed counters. A Job that is done
//! first gets the interim SuccessCriteriaMet or FailureTarget condition, and the terminal
//! Complete or Failed condition only once none of its pods is still terminating.

pub mod backoff;
pub mod indexes;
pub mod policy;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::Duration;

use anyhow::Context as _;
use futures::future::join_all;
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use parking_lot::Mutex;
use serde_json::json;
use tokio::task::JoinHandle;

use self::backoff::{finished_at, BackoffRecord};
use self::policy::FailureAction;
use super::manager::{Context, Controller};
use super::replicaset::ranking;
use super::runtime::events::{self, now_time, EventRecorder};
use super::runtime::expectations::Expectations;
use super::runtime::ownership::{self, controller_of};
use super::runtime::{
    self, key_of, pods, selector, split_key, Change, Informer, Reconciler, Requeue, WorkQueue,
};

pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
pub const CONTROLLER_NAME: &str = "job-controller";
const MANAGED_BY_US: &str = "kubernetes.io/job-controller";
/// Most pods created, deleted or counted per sync (upstream `MaxPodCreateDeletePerSync` and
/// `MaxUncountedPods`).
const MAX_PER_SYNC: usize = 500;
const MAX_UNCOUNTED: usize = 500;

pub fn is_finished(job: &Job) -> bool {
    finished_condition(job).is_some()
}

/// The Complete or Failed condition with status True.
pub fn finished_condition(job: &Job) -> Option<&JobCondition> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
}

fn condition<'a>(job: &'a Job, type_: &str) -> Option<&'a JobCondition> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_ && c.status == "True")
}

fn new_condition(type_: &str, reason: &str, message: &str) -> JobCondition {
    let now = now_time();
    JobCondition {
        type_: type_.into(),
        status: "True".into(),
        last_probe_time: Some(now.clone()),
        last_transition_time: Some(now),
        reason: Some(reason.into()),
        message: Some(message.into()),
    }
}

/// `ensureJobConditionStatus`: set or update a condition; a False one is never added.
fn ensure_condition(
    status: &mut JobStatus,
    type_: &str,
    value: &str,
    reason: &str,
    message: &str,
) -> bool {
    let list = status.conditions.get_or_insert_with(Vec::new);
    if let Some(c) = list.iter_mut().find(|c| c.type_ == type_) {
        if c.status != value
            || c.reason.as_deref() != Some(reason)
            || c.message.as_deref() != Some(message)
        {
            *c = JobCondition {
                status: value.into(),
                ..new_condition(type_, reason, message)
            };
            return true;
        }
        return false;
    }
    if value == "False" {
        if list.is_empty() {
            status.conditions = None;
        }
        return false;
    }
    list.push(JobCondition {
        status: value.into(),
        ..new_condition(type_, reason, message)
    });
    true
}

fn spec(job: &Job) -> k8s_openapi::api::batch::v1::JobSpec {
    job.spec.clone().unwrap_or_default()
}

fn is_indexed(job: &Job) -> bool {
    job.spec.as_ref().and_then(|s| s.completion_mode.as_deref()) == Some("Indexed")
}

fn is_suspended(job: &Job) -> bool {
    job.spec.as_ref().and_then(|s| s.suspend).unwrap_or(false)
}

fn has_finalizer(pod: &Pod) -> bool {
    pod.metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == TRACKING_FINALIZER)
}

/// Only pods in the Failed phase are replaced (a failure policy, or podReplacementPolicy
/// Failed); otherwise a terminating pod counts as failed already.
fn only_replace_failed(job: &Job) -> bool {
    let s = job.spec.as_ref();
    s.and_then(|s| s.pod_replacement_policy.as_deref()) == Some("Failed")
        || s.and_then(|s| s.pod_failure_policy.as_ref()).is_some()
}

fn is_pod_failed(pod: &Pod, job: &Job) -> bool {
    if pods::phase(pod) == "Failed" {
        return true;
    }
    if only_replace_failed(job) {
        return false;
    }
    pod.metadata.deletion_timestamp.is_some() && pods::phase(pod) != "Succeeded"
}

fn nz(n: i32) -> Option<i32> {
    (n != 0).then_some(n)
}

/// `<job>-<index>-`, shortened to fit a generated name.
fn indexed_prefix(job: &str, index: i32) -> String {
    let appendix = format!("-{index}-");
    let prefix = format!("{job}{appendix}");
    if prefix.len() > 58 {
        let keep = 58usize.saturating_sub(appendix.len()).min(job.len());
        let mut cut = keep;
        while !job.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}{appendix}", &job[..cut])
    } else {
        prefix
    }
}

/// Everything one sync works with (upstream `syncJobCtx`).
struct SyncCtx {
    job: Job,
    key: String,
    pods: Vec<Arc<Pod>>,
    active_pods: Vec<Arc<Pod>>,
    expected_rm: HashSet<String>,
    uncounted_succeeded: HashSet<String>,
    uncounted_failed: HashSet<String>,
    succeeded: i32,
    ready: i32,
    terminating: i32,
    prev_succeeded_indexes: BTreeSet<i32>,
    succeeded_indexes: BTreeSet<i32>,
    /// The interim or terminal condition to reach, if the Job is done.
    finished: Option<JobCondition>,
    new_backoff: BackoffRecord,
}

pub struct JobController {
    client: kube::Client,
    jobs: Informer<Job>,
    pods: Informer<Pod>,
    queue: Arc<WorkQueue<String>>,
    /// Pods whose tracking finalizer must go because their Job is gone or finished.
    orphans: Arc<WorkQueue<String>>,
    expectations: Expectations,
    finalizer_expectations: Mutex<HashMap<String, HashSet<String>>>,
    backoffs: Mutex<HashMap<String, BackoffRecord>>,
    recorder: Arc<EventRecorder>,
    backoff_base: Duration,
    backoff_max: Duration,
    workers: usize,
}

impl JobController {
    pub fn new(ctx: &Context) -> Arc<Self> {
        let this = Arc::new(JobController {
            client: ctx.client_for("job-controller"),
            jobs: ctx.informers.get::<Job>(),
            pods: ctx.informers.get::<Pod>(),
            queue: WorkQueue::new(ctx.cfg.backoff),
            orphans: WorkQueue::new(ctx.cfg.backoff),
            expectations: Expectations::new(ctx.cfg.expectations_ttl),
            finalizer_expectations: Mutex::new(HashMap::new()),
            backoffs: Mutex::new(HashMap::new()),
            recorder: EventRecorder::new(ctx.client_for("job-controller"), CONTROLLER_NAME),
            backoff_base: ctx.cfg.job_backoff_base,
            backoff_max: ctx.cfg.job_backoff_max,
            workers: ctx.cfg.job_workers,
        });
        let w: Weak<Self> = Arc::downgrade(&this);
        this.jobs.add_handler({
            let w = w.clone();
            move |c| {
                let Some(this) = w.upgrade() else { return };
                match c {
                    Change::Add(j) => this.queue.add(key_of(j.as_ref())),
                    Change::Update { new, .. } => this.queue.add(key_of(new.as_ref())),
                    Change::Delete(j) => {
                        let key = key_of(j.as_ref());
                        this.expectations.delete(&key);
                        this.finalizer_expectations.lock().remove(&key);
                        this.backoffs.lock().remove(&key);
                        // Its pods must not keep their finalizers forever.
                        let uid = j.uid().unwrap_or_default();
                        for p in this.pods.list_namespace(&j.namespace().unwrap_or_default()) {
                            if has_finalizer(&p)
                                && controller_of(&p.metadata).is_some_and(|r| r.uid == uid)
                            {
                                this.orphans.add(key_of(p.as_ref()));
                            }
                        }
                        this.queue.add(key);
                    }
                }
            }
        });
        this.pods.add_handler(move |c| {
            if let Some(this) = w.upgrade() {
                this.on_pod(c);
            }
        });
        this
    }

    fn resolve(&self, ns: &str, r: &OwnerReference) -> Option<Arc<Job>> {
        if r.kind != "Job" {
            return None;
        }
        let j = self.jobs.get(ns, &r.name)?;
        (j.metadata.uid.as_deref() == Some(r.uid.as_str())).then_some(j)
    }

    fn matching_jobs(&self, pod: &Pod) -> Vec<Arc<Job>> {
        self.jobs
            .list_namespace(&pod.namespace().unwrap_or_default())
            .into_iter()
            .filter(|j| {
                selector::from_typed(j.spec.as_ref().and_then(|s| s.selector.as_ref())).is_ok_and(
                    |s| !s.is_everything() && s.matches(selector::labels_of(&pod.metadata.labels)),
                )
            })
            .collect()
    }

    fn finalizer_observed(&self, job_key: &str, uid: &str) {
        let mut m = self.finalizer_expectations.lock();
        if let Some(set) = m.get_mut(job_key) {
            set.remove(uid);
            if set.is_empty() {
                m.remove(job_key);
            }
        }
    }

    fn on_pod(&self, c: &Change<Pod>) {
        let (pod, old) = match c {
            Change::Add(p) => (p, None),
            Change::Update { old, new } => (new, Some(old)),
            Change::Delete(p) => (p, None),
        };
        let ns = pod.namespace().unwrap_or_default();
        let pod_key = key_of(pod.as_ref());
        let job = controller_of(&pod.metadata).and_then(|r| self.resolve(&ns, r));
        if let Some(job) = &job {
            let jk = key_of(job.as_ref());
            match c {
                Change::Add(_) => self.expectations.creation_observed(&jk),
                Change::Update { old, new } => {
                    if new.metadata.deletion_timestamp.is_some()
                        && old.metadata.deletion_timestamp.is_none()
                    {
                        self.expectations.deletion_observed(&jk, &pod_key);
                    }
                    if has_finalizer(old) && !has_finalizer(new) {
                        self.finalizer_observed(&jk, &pod.uid().unwrap_or_default());
                    }
                }
                Change::Delete(_) => {
                    self.expectations.deletion_observed(&jk, &pod_key);
                    self.finalizer_observed(&jk, &pod.uid().unwrap_or_default());
                }
            }
            self.queue.add(jk);
        } else if controller_of(&pod.metadata).is_none() && !matches!(c, Change::Delete(_)) {
            for j in self.matching_jobs(pod) {
                self.queue.add(key_of(j.as_ref()));
            }
        }
        // A changed controller: the previous owner recounts too.
        if let Some(old) = old {
            if let Some(prev) = controller_of(&old.metadata).and_then(|r| self.resolve(&ns, r)) {
                if job.as_ref().is_none_or(|j| j.uid() != prev.uid()) {
                    self.queue.add(key_of(prev.as_ref()));
                }
            }
        }
        let owned_by_job = controller_of(&pod.metadata).is_some_and(|r| r.kind == "Job");
        if has_finalizer(pod)
            && (job.is_none() && owned_by_job || job.as_ref().is_some_and(|j| is_finished(j)))
            && self.jobs.has_synced()
        {
            self.orphans.add(pod_key);
        }
    }

    fn pod_api(&self, ns: &str) -> Api<Pod> {
        Api::namespaced(self.client.clone(), ns)
    }

    async fn remove_finalizer(&self, pod: &Pod) -> Result<(), kube::Error> {
        if !has_finalizer(pod) {
            return Ok(());
        }
        let patch =
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": [TRACKING_FINALIZER]}});
        match self
            .pod_api(&pod.namespace().unwrap_or_default())
            .patch(
                &pod.name_any(),
                &PatchParams::default(),
                &Patch::Strategic(&patch),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if runtime::is_not_found(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn update_status(&self, job: &Job) -> anyhow::Result<Job> {
        let ns = job.namespace().unwrap_or_default();
        let api: Api<Job> = Api::namespaced(self.client.clone(), &ns);
        api.replace_status(&job.name_any(), &PostParams::default(), job)
            .await
            .with_context(|| format!("cannot update status of job {ns}/{}", job.name_any()))
    }

    async fn claim(&self, job: &Job) -> anyhow::Result<Vec<Arc<Pod>>> {
        let sel = selector::from_typed(job.spec.as_ref().and_then(|s| s.selector.as_ref()))
            .map_err(anyhow::Error::msg)?;
        let ns = job.namespace().unwrap_or_default();
        let pods = self.pods.list_namespace(&ns);
        ownership::claim_for(&self.client, job, "batch/v1", "Job", &sel, pods).await
    }

    /// Deletes pods after removing their tracking finalizer (they are not counted as
    /// failures: scale-down and suspension). Returns (ready deleted, deleted).
    async fn delete_job_pods(
        &self,
        job: &Job,
        key: &str,
        victims: &[Arc<Pod>],
    ) -> (i32, i32, Option<anyhow::Error>) {
        self.expectations
            .expect_deletions(key, victims.iter().map(|p| key_of(p.as_ref())));
        let results = join_all(victims.iter().map(|p| async move {
            if let Err(e) = self.remove_finalizer(p).await {
                return (p.clone(), Err(e));
            }
            let r = self
                .pod_api(&p.namespace().unwrap_or_default())
                .delete(&p.name_any(), &DeleteParams::default())
                .await;
            (p.clone(), r.map(|_| ()))
        }))
        .await;
        let (mut ready, mut deleted, mut err) = (0, 0, None);
        for (p, r) in results {
            match r {
                Ok(()) => {
                    deleted += 1;
                    if pods::is_ready(&p) {
                        ready += 1;
                    }
                    self.recorder.event(
                        job,
                        events::NORMAL,
                        "SuccessfulDelete",
                        format!("Deleted pod: {}", p.name_any()),
                    );
                }
                Err(e) => {
                    self.expectations
                        .deletion_observed(key, &key_of(p.as_ref()));
                    if !runtime::is_not_found(&e) {
                        self.recorder.event(
                            job,
                            events::WARNING,
                            "FailedDelete",
                            format!("Error deleting: {e}"),
                        );
                        err.get_or_insert(anyhow::Error::new(e));
                    } else {
                        deleted += 1;
                    }
                }
            }
        }
        (ready, deleted, err)
    }

    /// Deletes the active pods of a Job that is done, keeping their finalizers so that they
    /// are counted (as failed, unless the Job succeeded).
    async fn delete_active_pods(
        &self,
        job: &Job,
        active: &[Arc<Pod>],
    ) -> (i32, i32, Option<anyhow::Error>) {
        let results = join_all(active.iter().map(|p| async move {
            let r = self
                .pod_api(&p.namespace().unwrap_or_default())
                .delete(&p.name_any(), &DeleteParams::default())
                .await;
            (p.clone(), r)
        }))
        .await;
        let (mut ready, mut deleted, mut err) = (0, active.len() as i32, None);
        for (p, r) in results {
            if let Err(e) = r {
                if !runtime::is_not_found(&e) {
                    deleted -= 1;
                    err.get_or_insert(anyhow::Error::new(e));
                }
            }
            if pods::is_ready(&p) {
                ready += 1;
            }
        }
        let _ = job;
        (ready, deleted, err)
    }

    /// Indexes still to run: not succeeded and without an active pod, lowest first.
    fn first_pending_indexes(&self, ctx: &SyncCtx, count: usize, completions: i32) -> Vec<i32> {
        let mut busy: BTreeSet<i32> = ctx.succeeded_indexes.clone();
        for p in &ctx.active_pods {
            if let Some(i) = indexes::completion_index(p) {
                busy.insert(i);
            }
        }
        if only_replace_failed(&ctx.job) {
            for p in &ctx.pods {
                if pods::is_terminating(p) && !pods::is_terminal(p) {
                    if let Some(i) = indexes::completion_index(p) {
                        busy.insert(i);
                    }
                }
            }
        }
        (0..completions)
            .filter(|i| !busy.contains(i))
            .take(count)
            .collect()
    }

    /// Active pods to remove: for Indexed Jobs first those without a valid index and
    /// duplicates of an index; then, to reach `at_least`, the ones upstream ranks first.
    fn pods_for_removal(&self, job: &Job, active: &[Arc<Pod>], at_least: usize) -> Vec<Arc<Pod>> {
        let mut rm: Vec<Arc<Pod>> = Vec::new();
        let mut left: Vec<Arc<Pod>> = Vec::new();
        if is_indexed(job) {
            let completions = spec(job).completions.unwrap_or(0);
            let mut by_index: HashMap<i32, Vec<Arc<Pod>>> = HashMap::new();
            for p in active {
                match indexes::completion_index(p).filter(|i| *i < completions) {
                    Some(i) => by_index.entry(i).or_default().push(p.clone()),
                    None => rm.push(p.clone()),
                }
            }
            for (_, group) in by_index {
                // Keep the pod upstream would delete last; the others are duplicates.
                let ordered = ranking::pods_to_delete(&group, &[], group.len(), Timestamp::now());
                let n = ordered.len();
                for (i, p) in ordered.into_iter().enumerate() {
                    if i + 1 < n {
                        rm.push(p);
                    } else {
                        left.push(p);
                    }
                }
            }
        } else {
            left = active.to_vec();
        }
        if rm.len() < at_least {
            let more = ranking::pods_to_delete(&left, &[], at_least - rm.len(), Timestamp::now());
            rm.extend(more);
        }
        rm
    }

    /// Creates or deletes pods towards the wanted parallelism (`manageJob`); returns the
    /// active count after it and when to look again for a back-off.
    async fn manage_job(
        &self,
        ctx: &mut SyncCtx,
    ) -> (i32, Option<Duration>, Option<anyhow::Error>) {
        let job = ctx.job.clone();
        let key = ctx.key.clone();
        let s = spec(&job);
        let mut active = ctx.active_pods.len() as i32;
        if is_suspended(&job) {
            let victims = self.pods_for_removal(&job, &ctx.active_pods, ctx.active_pods.len());
            let (ready, removed, err) = self.delete_job_pods(&job, &key, &victims).await;
            ctx.terminating += removed;
            ctx.ready -= ready;
            return (active - removed, None, err);
        }
        let parallelism = s.parallelism.unwrap_or(1).max(0);
        let want = match s.completions {
            None => {
                if ctx.succeeded > 0 {
                    active
                } else {
                    parallelism
                }
            }
            Some(c) => (c - ctx.succeeded).clamp(0, parallelism),
        };
        let rm_at_least = (active - want).max(0) as usize;
        let mut victims = self.pods_for_removal(&job, &ctx.active_pods, rm_at_least);
        victims.truncate(MAX_PER_SYNC);
        if !victims.is_empty() {
            let (ready, removed, err) = self.delete_job_pods(&job, &key, &victims).await;
            ctx.terminating += removed;
            ctx.ready -= ready;
            return (active - removed, None, err);
        }
        let terminating = if only_replace_failed(&job) {
            ctx.terminating
        } else {
            0
        };
        let mut diff = want - terminating - active;
        if diff <= 0 {
            return (active, None, None);
        }
        let wait = ctx
            .new_backoff
            .remaining(self.backoff_base, self.backoff_max, Timestamp::now());
        if !wait.is_zero() {
            return (active, Some(wait), None);
        }
        diff = diff.min(MAX_PER_SYNC as i32);
        let mut to_add: Vec<Option<i32>> = vec![None; diff as usize];
        if is_indexed(&job) {
            let completions = s.completions.unwrap_or(0);
            to_add = self
                .first_pending_indexes(ctx, diff as usize, completions)
                .into_iter()
                .map(Some)
                .collect();
            diff = to_add.len() as i32;
        }
        if diff <= 0 {
            return (active, None, None);
        }
        self.expectations.expect_creations(&key, diff as usize);
        let mut template = s.template.clone();
        if is_indexed(&job) {
            add_completion_index_env(&mut template);
        }
        let tm = template.metadata.get_or_insert_with(Default::default);
        let f = tm.finalizers.get_or_insert_with(Vec::new);
        if !f.iter().any(|x| x == TRACKING_FINALIZER) {
            f.push(TRACKING_FINALIZER.into());
        }
        let ns = job.namespace().unwrap_or_default();
        let owner = ownership::controller_ref(&job.metadata, "batch/v1", "Job");
        let api = self.pod_api(&ns);
        let pp = PostParams::default();
        let mut batch = 1usize;
        let mut err = None;
        let mut queue = to_add.into_iter();
        let mut pending = diff as usize;
        while pending > 0 {
            let size = batch.min(pending);
            let mut pods_to_create = Vec::with_capacity(size);
            for _ in 0..size {
                let index = queue.next().flatten();
                let mut t = template.clone();
                let generate = match index {
                    Some(i) => {
                        let m = t.metadata.get_or_insert_with(Default::default);
                        m.annotations
                            .get_or_insert_with(Default::default)
                            .insert(indexes::COMPLETION_INDEX.into(), i.to_string());
                        m.labels
                            .get_or_insert_with(Default::default)
                            .insert(indexes::COMPLETION_INDEX.into(), i.to_string());
                        if let Some(ps) = t.spec.as_mut() {
                            ps.hostname = Some(format!("{}-{i}", job.name_any()));
                        }
                        indexed_prefix(&job.name_any(), i)
                    }
                    None => pods::pods_prefix(&job.name_any()),
                };
                pods_to_create.push(pods::pod_from_template(&t, &ns, &generate, owner.clone()));
            }
            let results = join_all(pods_to_create.iter().map(|p| api.create(&pp, p))).await;
            let mut failed_here = 0usize;
            for r in results {
                match r {
                    Ok(created) => {
                        active += 1;
                        self.recorder.event(
                            &job,
                            events::NORMAL,
                            "SuccessfulCreate",
                            format!("Created pod: {}", created.name_any()),
                        );
                    }
                    Err(e) if runtime::is_namespace_terminating(&e) => {
                        self.expectations.lower(&key, 1, 0);
                    }
                    Err(e) => {
                        failed_here += 1;
                        self.expectations.lower(&key, 1, 0);
                        let msg = match &e {
                            kube::Error::Api(s) => s.message.clone(),
                            other => other.to_string(),
                        };
                        self.recorder.event(
                            &job,
                            events::WARNING,
                            "FailedCreate",
                            format!("Error creating: {msg}"),
                        );
                        err.get_or_insert(anyhow::Error::new(e));
                    }
                }
            }
            pending -= size;
            if failed_here > 0 {
                // Skip the rest of the slow start; they are retried on the next sync.
                self.expectations.lower(&key, pending as i64, 0);
                break;
            }
            batch *= 2;
        }
        (active, None, err)
    }

    /// Counts finished pods through `uncountedTerminatedPods`, removes their finalizers,
    /// and adds the terminal condition when everything is accounted for
    /// (`trackJobStatusAndRemoveFinalizers`).
    async fn track_and_remove_finalizers(
        &self,
        mut ctx: SyncCtx,
        mut needs_flush: bool,
    ) -> anyhow::Result<()> {
        let indexed = is_indexed(&ctx.job);
        let completions = spec(&ctx.job).completions.unwrap_or(0);
        let pfp = spec(&ctx.job).pod_failure_policy;
        let mut pods_sorted = ctx.pods.clone();
        if indexed {
            pods_sorted.sort_by_key(|p| indexes::completion_index(p).unwrap_or(i32::MAX));
        }
        let mut with_finalizer: HashSet<String> = ctx
            .pods
            .iter()
            .filter(|p| has_finalizer(p))
            .filter_map(|p| p.uid())
            .filter(|u| !ctx.expected_rm.contains(u))
            .collect();
        let status = ctx.job.status.get_or_insert_with(Default::default);
        if clean_uncounted(status, &with_finalizer) {
            needs_flush = true;
        }
        let base = status.uncounted_terminated_pods.clone().unwrap_or_default();
        let mut add_succeeded: Vec<String> = Vec::new();
        let mut add_failed: Vec<String> = Vec::new();
        let snapshot = ctx.job.clone();
        let mut to_remove: Vec<Arc<Pod>> = Vec::new();
        let mut new_indexes: Vec<i32> = Vec::new();
        let mut reached_max = false;
        let job_deleting = ctx.job.metadata.deletion_timestamp.is_some();
        let success_done = ctx
            .finished
            .as_ref()
            .is_some_and(|c| c.type_ == "SuccessCriteriaMet");
        for p in &pods_sorted {
            let uid = p.uid().unwrap_or_default();
            if !has_finalizer(p) || ctx.expected_rm.contains(&uid) {
                continue;
            }
            let failed = is_pod_failed(p, &snapshot);
            let can_remove =
                job_deleting || ctx.finished.is_some() || pods::phase(p) == "Succeeded" || failed;
            if !can_remove {
                continue;
            }
            to_remove.push(p.clone());
            let ix = indexes::completion_index(p);
            let index_valid = !indexed || ix.is_some_and(|i| i < completions);
            if pods::phase(p) == "Succeeded" && !ctx.uncounted_failed.contains(&uid) {
                if indexed {
                    if let Some(i) =
                        ix.filter(|i| *i < completions && !ctx.prev_succeeded_indexes.contains(i))
                    {
                        new_indexes.push(i);
                        needs_flush = true;
                    }
                } else if !ctx.uncounted_succeeded.contains(&uid) {
                    add_succeeded.push(uid.clone());
                    ctx.uncounted_succeeded.insert(uid.clone());
                    needs_flush = true;
                }
            } else if (failed || (ctx.finished.is_some() && !success_done))
                && !ctx.uncounted_failed.contains(&uid)
                && index_valid
            {
                let counts = !matches!(
                    policy::match_failure(pfp.as_ref(), p),
                    FailureAction::Ignore
                );
                if counts {
                    add_failed.push(uid.clone());
                    ctx.uncounted_failed.insert(uid.clone());
                    needs_flush = true;
                }
            }
            let n = new_indexes.len()
                + base.succeeded.as_ref().map_or(0, Vec::len)
                + base.failed.as_ref().map_or(0, Vec::len)
                + add_succeeded.len()
                + add_failed.len();
            if n >= MAX_UNCOUNTED {
                reached_max = true;
                break;
            }
        }
        {
            let status = ctx.job.status.get_or_insert_with(Default::default);
            let u = status
                .uncounted_terminated_pods
                .get_or_insert_with(Default::default);
            if !add_succeeded.is_empty() {
                u.succeeded
                    .get_or_insert_with(Vec::new)
                    .extend(add_succeeded);
            }
            if !add_failed.is_empty() {
                u.failed.get_or_insert_with(Vec::new).extend(add_failed);
            }
        }
        if indexed {
            ctx.succeeded_indexes.extend(new_indexes);
            let formatted = indexes::format(&ctx.succeeded_indexes);
            let status = ctx.job.status.get_or_insert_with(Default::default);
            if status.completed_indexes.as_deref().unwrap_or("") != formatted {
                needs_flush = true;
            }
            status.succeeded = nz(ctx.succeeded_indexes.len() as i32);
            status.completed_indexes = Some(formatted);
        }
        // Record the interim condition before finalizers (and so the pods) go away.
        if let Some(c) = ctx.finished.take() {
            let status = ctx.job.status.get_or_insert_with(Default::default);
            let reason = c.reason.clone().unwrap_or_default();
            let message = c.message.clone().unwrap_or_default();
            let terminal = match c.type_.as_str() {
                "FailureTarget" => {
                    status.conditions.get_or_insert_with(Vec::new).push(c);
                    needs_flush = true;
                    new_condition("Failed", &reason, &message)
                }
                "SuccessCriteriaMet" => {
                    if !status
                        .conditions
                        .iter()
                        .flatten()
                        .any(|x| x.type_ == "SuccessCriteriaMet" && x.status == "True")
                    {
                        status.conditions.get_or_insert_with(Vec::new).push(c);
                        needs_flush = true;
                    }
                    new_condition("Complete", &reason, &message)
                }
                _ => c,
            };
            ctx.finished = Some(terminal);
        }
        // 1. Flush the uncounted UIDs (and the interim condition).
        if needs_flush {
            ctx.job = self.update_status(&ctx.job).await?;
            self.backoffs
                .lock()
                .insert(ctx.key.clone(), ctx.new_backoff.clone());
            needs_flush = false;
        }
        // 2. Remove the finalizers.
        let mut rm_err = None;
        if !to_remove.is_empty() {
            {
                let mut m = self.finalizer_expectations.lock();
                let set = m.entry(ctx.key.clone()).or_default();
                set.extend(to_remove.iter().filter_map(|p| p.uid()));
            }
            let results = join_all(
                to_remove
                    .iter()
                    .map(|p| async move { (p.clone(), self.remove_finalizer(p).await) }),
            )
            .await;
            for (p, r) in results {
                let uid = p.uid().unwrap_or_default();
                match r {
                    Ok(()) => {
                        with_finalizer.remove(&uid);
                    }
                    Err(e) => {
                        self.finalizer_observed(&ctx.key, &uid);
                        rm_err.get_or_insert(
                            anyhow::Error::new(e).context("removing tracking finalizer"),
                        );
                    }
                }
            }
        }
        // 3. Move the UIDs whose finalizer is gone into the counters.
        let status = ctx.job.status.get_or_insert_with(Default::default);
        if clean_uncounted(status, &with_finalizer) {
            needs_flush = true;
        }
        if let Some(e) = rm_err {
            if needs_flush {
                self.update_status(&ctx.job).await?;
            }
            return Err(e);
        }
        // 4. The terminal condition, once nothing is left uncounted or terminating.
        let finished = !reached_max && self.enact_finished(&mut ctx);
        if finished {
            needs_flush = true;
        }
        if needs_flush {
            let updated = self.update_status(&ctx.job).await?;
            if finished {
                self.record_finished(&updated);
            }
        }
        Ok(())
    }

    fn enact_finished(&self, ctx: &mut SyncCtx) -> bool {
        let Some(c) = ctx.finished.clone() else {
            return false;
        };
        let status = ctx.job.status.get_or_insert_with(Default::default);
        let uncounted = status.uncounted_terminated_pods.clone().unwrap_or_default();
        if uncounted.succeeded.as_ref().is_some_and(|v| !v.is_empty())
            || uncounted.failed.as_ref().is_some_and(|v| !v.is_empty())
        {
            return false;
        }
        if ctx.terminating > 0 {
            return false;
        }
        let reason = c.reason.clone().unwrap_or_default();
        let message = c.message.clone().unwrap_or_default();
        ensure_condition(status, &c.type_, "True", &reason, &message);
        if c.type_ == "Complete" {
            status.completion_time = status
                .conditions
                .iter()
                .flatten()
                .find(|x| x.type_ == "Complete")
                .and_then(|x| x.last_transition_time.clone());
        }
        true
    }

    fn record_finished(&self, job: &Job) {
        let Some(c) = finished_condition(job) else {
            return;
        };
        if c.type_ == "Complete" {
            let s = spec(job);
            let succeeded = job.status.as_ref().and_then(|s| s.succeeded).unwrap_or(0);
            if s.completions.is_some_and(|c| succeeded > c) {
                self.recorder.event(
                    job,
                    events::WARNING,
                    "TooManySucceededPods",
                    "Too many succeeded pods running after completion count reached",
                );
            }
            self.recorder
                .event(job, events::NORMAL, "Completed", "Job completed");
        } else {
            self.recorder.event(
                job,
                events::WARNING,
                c.reason.as_deref().unwrap_or("Failed"),
                c.message.clone().unwrap_or_default(),
            );
        }
    }

    /// Releases the finalizers of every pod of a finished Job.
    async fn release_finished(&self, job: &Job) -> anyhow::Result<()> {
        let uid = job.uid().unwrap_or_default();
        let pods: Vec<Arc<Pod>> = self
            .pods
            .list_namespace(&job.namespace().unwrap_or_default())
            .into_iter()
            .filter(|p| {
                has_finalizer(p) && controller_of(&p.metadata).is_some_and(|r| r.uid == uid)
            })
            .collect();
        for p in pods {
            self.remove_finalizer(&p).await?;
        }
        Ok(())
    }

    async fn sync_orphan(&self, key: &str) -> anyhow::Result<Requeue> {
        let (ns, name) = split_key(key);
        let Some(pod) = self.pods.get(ns, name) else {
            return Ok(Requeue::No);
        };
        if !has_finalizer(&pod) {
            return Ok(Requeue::No);
        }
        let job = controller_of(&pod.metadata).and_then(|r| self.resolve(ns, r));
        match job {
            // Still counted by a running Job.
            Some(j) if !is_finished(&j) => Ok(Requeue::No),
            _ => {
                self.remove_finalizer(&pod).await?;
                Ok(Requeue::No)
            }
        }
    }
}

/// Moves uncounted UIDs whose pods no longer hold a finalizer into the counters.
fn clean_uncounted(status: &mut JobStatus, with_finalizer: &HashSet<String>) -> bool {
    let u: &mut UncountedTerminatedPods = status
        .uncounted_terminated_pods
        .get_or_insert_with(Default::default);
    let mut changed = false;
    let split = |list: &mut Option<Vec<String>>| -> i32 {
        let all = list.take().unwrap_or_default();
        let before = all.len();
        let keep: Vec<String> = all
            .into_iter()
            .filter(|u| with_finalizer.contains(u))
            .collect();
        let moved = (before - keep.len()) as i32;
        *list = (!keep.is_empty()).then_some(keep);
        moved
    };
    let s = split(&mut u.succeeded);
    let f = split(&mut u.failed);
    if s > 0 {
        status.succeeded = nz(status.succeeded.unwrap_or(0) + s);
        changed = true;
    }
    if f > 0 {
        status.failed = nz(status.failed.unwrap_or(0) + f);
        changed = true;
    }
    changed
}

/// `JOB_COMPLETION_INDEX` from the index annotation, in every container that lacks it.
fn add_completion_index_env(t: &mut PodTemplateSpec) {
    let Some(spec) = t.spec.as_mut() else { return };
    let var = EnvVar {
        name: "JOB_COMPLETION_INDEX".into(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                api_version: None,
                field_path: format!("metadata.annotations['{}']", indexes::COMPLETION_INDEX),
            }),
            ..Default::default()
        }),
    };
    for c in spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten())
    {
        let env = c.env.get_or_insert_with(Vec::new);
        if !env.iter().any(|e| e.name == var.name) {
            env.push(var.clone());
        }
    }
}

/// Restart counts of running OnFailure pods reached the backoff limit.
fn past_backoff_limit_on_failure(job: &Job, pods: &[Arc<Pod>]) -> bool {
    let s = spec(job);
    let restart = s
        .template
        .spec
        .as_ref()
        .and_then(|p| p.restart_policy.as_deref());
    if restart != Some("OnFailure") {
        return false;
    }
    let total: i32 = pods
        .iter()
        .filter(|p| matches!(pods::phase(p), "Running" | "Pending"))
        .map(|p| {
            let st = p.status.as_ref();
            let sum = |v: Option<&Vec<k8s_openapi::api::core::v1::ContainerStatus>>| {
                v.into_iter()
                    .flatten()
                    .map(|c| c.restart_count)
                    .sum::<i32>()
            };
            sum(st.and_then(|s| s.init_container_statuses.as_ref()))
                + sum(st.and_then(|s| s.container_statuses.as_ref()))
        })
        .sum();
    let limit = s.backoff_limit.unwrap_or(6);
    if limit == 0 {
        total > 0
    } else {
        total >= limit
    }
}

#[async_trait::async_trait]
impl Reconciler for JobController {
    fn name(&self) -> &'static str {
        CONTROLLER_NAME
    }

    async fn sync(&self, key: &str) -> anyhow::Result<Requeue> {
        let (ns, name) = split_key(key);
        let Some(cached) = self.jobs.get(ns, name) else {
            self.expectations.delete(key);
            self.backoffs.lock().remove(key);
            return Ok(Requeue::No);
        };
        let job = (*cached).clone();
        // Another controller manages this Job (spec.managedBy).
        if spec(&job)
            .managed_by
            .as_deref()
            .is_some_and(|m| m != MANAGED_BY_US)
        {
            return Ok(Requeue::No);
        }
        if is_finished(&job) {
            self.release_finished(&job).await?;
            self.backoffs.lock().remove(key);
            return Ok(Requeue::No);
        }
        let s = spec(&job);
        let pods = self.claim(&job).await?;
        let expected_rm = self
            .finalizer_expectations
            .lock()
            .get(key)
            .cloned()
            .unwrap_or_default();
        let satisfied = self.expectations.satisfied(key) && expected_rm.is_empty();
        let status = job.status.clone().unwrap_or_default();
        let uncounted = status.uncounted_terminated_pods.clone().unwrap_or_default();
        let uncounted_succeeded: HashSet<String> =
            uncounted.succeeded.iter().flatten().cloned().collect();
        let uncounted_failed: HashSet<String> =
            uncounted.failed.iter().flatten().cloned().collect();
        let active_pods: Vec<Arc<Pod>> = pods
            .iter()
            .filter(|p| pods::is_active(p))
            .cloned()
            .collect();
        let terminating = pods
            .iter()
            .filter(|p| pods::is_terminating(p) && !pods::is_terminal(p))
            .count() as i32;
        let ready = active_pods.iter().filter(|p| pods::is_ready(p)).count() as i32;
        let indexed = is_indexed(&job);
        let completions = s.completions.unwrap_or(0);
        let tracked = |p: &Arc<Pod>, uncounted: &HashSet<String>| {
            let uid = p.uid().unwrap_or_default();
            has_finalizer(p)
                && !uncounted.contains(&uid)
                && !expected_rm.contains(&uid)
                && (!indexed || indexes::completion_index(p).is_some_and(|i| i < completions))
        };
        let new_succeeded: Vec<Arc<Pod>> = pods
            .iter()
            .filter(|p| tracked(p, &uncounted_succeeded) && pods::phase(p) == "Succeeded")
            .cloned()
            .collect();
        let new_failed: Vec<Arc<Pod>> = pods
            .iter()
            .filter(|p| tracked(p, &uncounted_failed) && is_pod_failed(p, &job))
            .cloned()
            .collect();
        let counted_new_failed = new_failed
            .iter()
            .filter(|p| {
                !matches!(
                    policy::match_failure(s.pod_failure_policy.as_ref(), p),
                    FailureAction::Ignore
                )
            })
            .count() as i32;
        let succeeded = status.succeeded.unwrap_or(0)
            + new_succeeded.len() as i32
            + uncounted_succeeded.len() as i32;
        let failed =
            status.failed.unwrap_or(0) + counted_new_failed + uncounted_failed.len() as i32;
        let now = Timestamp::now();
        let mut job = job;
        let mut needs_flush = false;
        let suspended_now = is_suspended(&job);
        let js = job.status.get_or_insert_with(Default::default);
        if js.start_time.is_none() && !suspended_now {
            js.start_time = Some(now_time());
            needs_flush = true;
        }
        if js.uncounted_terminated_pods.is_none() {
            js.uncounted_terminated_pods = Some(Default::default());
            needs_flush = true;
        }
        let record = self.backoffs.lock().get(key).cloned().unwrap_or_default();
        let new_backoff = record.next(
            &new_succeeded
                .iter()
                .map(|p| finished_at(p, now))
                .collect::<Vec<_>>(),
            &new_failed
                .iter()
                .map(|p| finished_at(p, now))
                .collect::<Vec<_>>(),
        );
        let mut requeue: Option<Duration> = None;
        let mut finished: Option<JobCondition> = condition(&job, "SuccessCriteriaMet").cloned();
        if finished.is_none() {
            if let Some(target) = condition(&job, "FailureTarget") {
                finished = Some(new_condition(
                    "Failed",
                    target.reason.as_deref().unwrap_or(""),
                    target.message.as_deref().unwrap_or(""),
                ));
            } else if let Some(msg) = pods
                .iter()
                .filter(|p| is_pod_failed(p, &job))
                .find_map(
                    |p| match policy::match_failure(s.pod_failure_policy.as_ref(), p) {
                        FailureAction::FailJob(m) => Some(m),
                        _ => None,
                    },
                )
            {
                finished = Some(new_condition("FailureTarget", "PodFailurePolicy", &msg));
            }
        }
        let start = job
            .status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .map(|t| t.0);
        if finished.is_none() {
            let limit = s.backoff_limit.unwrap_or(6);
            if failed > limit || past_backoff_limit_on_failure(&job, &pods) {
                finished = Some(new_condition(
                    "FailureTarget",
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                ));
            } else if let (Some(ads), Some(start), false) =
                (s.active_deadline_seconds, start, is_suspended(&job))
            {
                let elapsed = now.duration_since(start).as_secs();
                if elapsed >= ads {
                    finished = Some(new_condition(
                        "FailureTarget",
                        "DeadlineExceeded",
                        "Job was active longer than specified deadline",
                    ));
                } else {
                    requeue = Some(Duration::from_secs((ads - elapsed).max(0) as u64));
                }
            }
        }
        let prev_succeeded_indexes = if indexed {
            indexes::parse(
                status.completed_indexes.as_deref().unwrap_or(""),
                completions,
            )
        } else {
            BTreeSet::new()
        };
        let mut succeeded_indexes = prev_succeeded_indexes.clone();
        let mut succeeded = succeeded;
        if indexed {
            for p in &pods {
                if pods::phase(p) == "Succeeded" && has_finalizer(p) {
                    if let Some(i) = indexes::completion_index(p).filter(|i| *i < completions) {
                        succeeded_indexes.insert(i);
                    }
                }
            }
            succeeded = succeeded_indexes.len() as i32;
            if finished.is_none() {
                if let Some(msg) = policy::match_success(
                    s.success_policy.as_ref(),
                    completions,
                    &succeeded_indexes,
                ) {
                    finished = Some(new_condition("SuccessCriteriaMet", "SuccessPolicy", &msg));
                }
            }
        }
        let mut ctx = SyncCtx {
            key: key.to_string(),
            pods: pods.clone(),
            active_pods: active_pods.clone(),
            expected_rm: expected_rm.clone(),
            uncounted_succeeded,
            uncounted_failed,
            succeeded,
            ready,
            terminating,
            prev_succeeded_indexes,
            succeeded_indexes,
            finished,
            new_backoff,
            job,
        };
        let mut active = active_pods.len() as i32;
        let mut manage_err = None;
        let mut suspend_changed = false;
        if ctx.finished.is_some() {
            let (ready_deleted, deleted, err) =
                self.delete_active_pods(&ctx.job, &active_pods).await;
            if deleted != active || !satisfied {
                // Not yet: pods may still be on their way into the cache.
                ctx.finished = None;
            }
            active -= deleted;
            ctx.terminating += deleted;
            ctx.ready -= ready_deleted;
            manage_err = err;
        } else {
            let mut managed = false;
            if satisfied && ctx.job.metadata.deletion_timestamp.is_none() {
                let (a, wait, err) = self.manage_job(&mut ctx).await;
                active = a;
                manage_err = err;
                managed = true;
                if let Some(w) = wait {
                    requeue = Some(requeue.map_or(w, |r| r.min(w)));
                }
            }
            let complete = match s.completions {
                None => ctx.succeeded > 0 && active == 0,
                Some(c) => ctx.succeeded >= c && active == 0,
            };
            if complete {
                ctx.finished = Some(new_condition(
                    "SuccessCriteriaMet",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                ));
            } else if managed {
                let suspended = is_suspended(&ctx.job);
                let js = ctx.job.status.get_or_insert_with(Default::default);
                if suspended {
                    if ensure_condition(js, "Suspended", "True", "JobSuspended", "Job suspended") {
                        suspend_changed = true;
                        self.recorder
                            .event(&ctx.job, events::NORMAL, "Suspended", "Job suspended");
                    }
                } else if ensure_condition(js, "Suspended", "False", "JobResumed", "Job resumed") {
                    suspend_changed = true;
                    self.recorder
                        .event(&ctx.job, events::NORMAL, "Resumed", "Job resumed");
                    // activeDeadlineSeconds counts continuous activity: it restarts on resume.
                    ctx.job
                        .status
                        .get_or_insert_with(Default::default)
                        .start_time = Some(now_time());
                }
            }
        }
        let js = ctx.job.status.get_or_insert_with(Default::default);
        needs_flush = needs_flush
            || suspend_changed
            || js.active.unwrap_or(0) != active
            || js.ready != Some(ctx.ready)
            || js.terminating != Some(ctx.terminating);
        js.active = nz(active);
        js.ready = Some(ctx.ready);
        js.terminating = Some(ctx.terminating);
        self.track_and_remove_finalizers(ctx, needs_flush)
            .await
            .context("tracking status")?;
        if let Some(e) = manage_err {
            return Err(e);
        }
        Ok(requeue.map_or(Requeue::No, |d| {
            Requeue::After(d + Duration::from_millis(100))
        }))
    }
}

/// Drives the queue of pods whose tracking finalizer must be released.
struct OrphanKeys(Arc<JobController>);

#[async_trait::async_trait]
impl Reconciler for OrphanKeys {
    fn name(&self) -> &'static str {
        "job-orphan-pod-finalizers"
    }

    async fn sync(&self, key: &str) -> anyhow::Result<Requeue> {
        self.0.sync_orphan(key).await
    }
}

impl Controller for JobController {
    fn name(&self) -> &'static str {
        "job"
    }

    fn run(self: Arc<Self>) -> Vec<JoinHandle<()>> {
        let (q, w) = (self.queue.clone(), self.workers);
        let orphans = self.orphans.clone();
        let mut tasks = runtime::run_workers(self.clone(), q, w);
        tasks.extend(runtime::run_workers(Arc::new(OrphanKeys(self)), orphans, 1));
        tasks
    }

    fn shut_down(&self) {
        self.queue.shut_down();
        self.orphans.shut_down();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_are_set_not_duplicated_and_false_is_never_added() {
        let mut s = JobStatus::default();
        assert!(!ensure_condition(
            &mut s,
            "Suspended",
            "False",
            "JobResumed",
            "Job resumed"
        ));
        assert!(s.conditions.is_none());
        assert!(ensure_condition(
            &mut s,
            "Suspended",
            "True",
            "JobSuspended",
            "Job suspended"
        ));
        assert!(!ensure_condition(
            &mut s,
            "Suspended",
            "True",
            "JobSuspended",
            "Job suspended"
        ));
        assert!(ensure_condition(
            &mut s,
            "Suspended",
            "False",
            "JobResumed",
            "Job resumed"
        ));
        let c = &s.conditions.as_ref().unwrap()[0];
        assert_eq!(
            (c.status.as_str(), c.reason.as_deref()),
            ("False", Some("JobResumed"))
        );
    }

    #[test]
    fn uncounted_pods_move_to_counters_once_their_finalizer_is_gone() {
        let mut s = JobStatus {
            succeeded: Some(1),
            uncounted_terminated_pods: Some(UncountedTerminatedPods {
                succeeded: Some(vec!["a".into(), "b".into()]),
                failed: Some(vec!["c".into()]),
            }),
            ..Default::default()
        };
        let still: HashSet<String> = ["b".to_string()].into();
        assert!(clean_uncounted(&mut s, &still));
        assert_eq!(s.succeeded, Some(2));
        assert_eq!(s.failed, Some(1));
        let u = s.uncounted_terminated_pods.clone().unwrap();
        assert_eq!(u.succeeded, Some(vec!["b".to_string()]));
        assert_eq!(u.failed, None);
        assert!(!clean_uncounted(&mut s, &still));
    }

    #[test]
    fn indexed_pod_names_fit() {
        assert_eq!(indexed_prefix("pi", 3), "pi-3-");
        let long = "j".repeat(60);
        let p = indexed_prefix(&long, 12);
        assert_eq!(p.len(), 58);
        assert!(p.ends_with("-12-"));
    }

    #[test]
    fn terminating_pods_count_as_failed_unless_only_failed_are_replaced() {
        let mut job = Job::default();
        let mut pod = Pod::default();
        pod.metadata.deletion_timestamp = Some(now_time());
        pod.status = Some(k8s_openapi::api::core::v1::PodStatus {
            phase: Some("Running".into()),
            ..Default::default()
        });
        assert!(is_pod_failed(&pod, &job));
        job.spec = Some(k8s_openapi::api::batch::v1::JobSpec {
            pod_replacement_policy: Some("Failed".into()),
            ..Default::default()
        });
        assert!(!is_pod_failed(&pod, &job));
    }
}
