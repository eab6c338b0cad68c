//! The CronJob controller (upstream's v2 controller): at each scheduled time it creates a Job
//! named `<cronjob>-<minutes since the epoch>` (the name is the lock against creating one
//! twice), honouring suspend, startingDeadlineSeconds, the concurrency policy (Allow, Forbid,
//! Replace) and the time zone; keeps `status.active`, `lastScheduleTime` and
//! `lastSuccessfulTime`, and deletes finished Jobs beyond the history limits. It requeues
//! itself for the next scheduled time.

pub mod schedule;

use std::collections::HashSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, PostParams, PropagationPolicy};
use kube::{Api, ResourceExt};
use tokio::task::JoinHandle;

use self::schedule::Schedule;
use super::job::finished_condition;
use super::manager::{Context, Controller};
use super::runtime::events::{self, EventRecorder};
use super::runtime::ownership::{self, controller_of};
use super::runtime::{self, key_of, split_key, Change, Informer, Reconciler, Requeue, WorkQueue};

pub const CONTROLLER_NAME: &str = "cronjob-controller";
pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";
/// Slack after the scheduled time before the controller looks again.
const NEXT_SCHEDULE_DELTA: Duration = Duration::from_millis(100);
/// More missed start times than this are reported as TooManyMissedTimes.
const MANY_MISSED: i64 = 100;

pub struct CronJobController {
    client: kube::Client,
    cronjobs: Informer<CronJob>,
    jobs: Informer<Job>,
    queue: Arc<WorkQueue<String>>,
    recorder: Arc<EventRecorder>,
    workers: usize,
}

fn to_chrono(t: &Time) -> DateTime<Utc> {
    DateTime::from_timestamp(t.0.as_second(), 0).unwrap_or_default()
}

fn to_time(t: DateTime<Utc>) -> Time {
    Time(Timestamp::from_second(t.timestamp()).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// `mostRecentScheduleTime`: where counting starts (last schedule, creation, or the starting
/// deadline), the latest activation not after `now`, and how many were missed.
pub fn most_recent(
    cj: &CronJob,
    sched: &Schedule,
    now: DateTime<Utc>,
    with_deadline: bool,
) -> (DateTime<Utc>, Option<DateTime<Utc>>, i64) {
    let status = cj.status.clone().unwrap_or_default();
    let mut earliest = status
        .last_schedule_time
        .as_ref()
        .or(cj.metadata.creation_timestamp.as_ref())
        .map(to_chrono)
        .unwrap_or(now);
    if with_deadline {
        if let Some(d) = cj.spec.as_ref().and_then(|s| s.starting_deadline_seconds) {
            let deadline = now - chrono::Duration::seconds(d);
            if deadline > earliest {
                earliest = deadline;
            }
        }
    }
    let Some(t1) = sched.next(earliest) else {
        return (earliest, None, 0);
    };
    if now < t1 {
        return (earliest, None, 0);
    }
    let mut recent = t1;
    let mut missed = 1i64;
    // Walk the schedule up to `now` (bounded: a long outage is reported, not replayed).
    while let Some(n) = sched.next(recent) {
        if n > now {
            break;
        }
        recent = n;
        missed += 1;
        if missed > 10 * MANY_MISSED {
            // Jump close to now and finish the walk from there.
            let gap = (n - t1).num_seconds().max(1) / (missed - 1).max(1);
            let skip = ((now - n).num_seconds() / gap.max(1)).max(0);
            missed += skip;
            let approx = n + chrono::Duration::seconds(skip.saturating_sub(1) * gap);
            recent = approx.min(now);
            let mut cursor = recent - chrono::Duration::seconds(gap.max(60));
            while let Some(m) = sched.next(cursor) {
                if m > now {
                    break;
                }
                recent = m;
                cursor = m;
            }
            break;
        }
    }
    (earliest, Some(recent), missed)
}

fn job_name(cj: &CronJob, scheduled: DateTime<Utc>) -> String {
    format!("{}-{}", cj.name_any(), scheduled.timestamp().div_euclid(60))
}

fn job_ref(job: &Job) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".into()),
        kind: Some("Job".into()),
        namespace: job.namespace(),
        name: Some(job.name_any()),
        uid: job.uid(),
        resource_version: job.resource_version(),
        field_path: None,
    }
}

fn in_active_list(cj: &CronJob, uid: &str) -> bool {
    cj.status
        .iter()
        .flat_map(|s| s.active.iter().flatten())
        .any(|r| r.uid.as_deref() == Some(uid))
}

fn remove_from_active(cj: &mut CronJob, uid: &str) {
    if let Some(s) = cj.status.as_mut() {
        if let Some(a) = s.active.as_mut() {
            a.retain(|r| r.uid.as_deref() != Some(uid));
            if a.is_empty() {
                s.active = None;
            }
        }
    }
}

impl CronJobController {
    pub fn new(ctx: &Context) -> Arc<Self> {
        let this = Arc::new(CronJobController {
            client: ctx.client_for("cronjob-controller"),
            cronjobs: ctx.informers.get::<CronJob>(),
            jobs: ctx.informers.get::<Job>(),
            queue: WorkQueue::new(ctx.cfg.backoff),
            recorder: EventRecorder::new(ctx.client_for("cronjob-controller"), CONTROLLER_NAME),
            workers: ctx.cfg.cronjob_workers,
        });
        let q = this.queue.clone();
        this.cronjobs.add_handler(move |c| match c {
            Change::Add(cj) => q.add(key_of(cj.as_ref())),
            Change::Update { new, .. } => q.add(key_of(new.as_ref())),
            Change::Delete(_) => {}
        });
        let w: Weak<Self> = Arc::downgrade(&this);
        this.jobs.add_handler(move |c| {
            let Some(this) = w.upgrade() else { return };
            let j = match c {
                Change::Add(j) | Change::Delete(j) => j,
                Change::Update { new, .. } => new,
            };
            let Some(r) = controller_of(&j.metadata).filter(|r| r.kind == "CronJob") else {
                return;
            };
            let ns = j.namespace().unwrap_or_default();
            if let Some(cj) = this
                .cronjobs
                .get(&ns, &r.name)
                .filter(|cj| cj.uid().as_deref() == Some(r.uid.as_str()))
            {
                this.queue.add(key_of(cj.as_ref()));
            }
        });
        this
    }

    fn job_api(&self, ns: &str) -> Api<Job> {
        Api::namespaced(self.client.clone(), ns)
    }

    async fn delete_job(&self, cj: &mut CronJob, job: &Job) -> bool {
        let dp = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..Default::default()
        };
        match self
            .job_api(&job.namespace().unwrap_or_default())
            .delete(&job.name_any(), &dp)
            .await
        {
            Ok(_) => {}
            Err(e) if runtime::is_not_found(&e) => {}
            Err(e) => {
                self.recorder.event(
                    cj,
                    events::WARNING,
                    "FailedDelete",
                    format!("Deleted job: {e}"),
                );
                return false;
            }
        }
        remove_from_active(cj, &job.uid().unwrap_or_default());
        self.recorder.event(
            cj,
            events::NORMAL,
            "SuccessfulDelete",
            format!("Deleted job {}", job.name_any()),
        );
        true
    }

    /// Deletes the oldest finished Jobs beyond the history limits.
    async fn cleanup_finished(&self, cj: &mut CronJob, jobs: &[Arc<Job>]) -> bool {
        let spec = cj.spec.clone().unwrap_or_default();
        if spec.successful_jobs_history_limit.is_none() && spec.failed_jobs_history_limit.is_none()
        {
            return false;
        }
        let mut changed = false;
        for (type_, limit) in [
            ("Complete", spec.successful_jobs_history_limit),
            ("Failed", spec.failed_jobs_history_limit),
        ] {
            let Some(limit) = limit else { continue };
            let mut done: Vec<Arc<Job>> = jobs
                .iter()
                .filter(|j| finished_condition(j).is_some_and(|c| c.type_ == type_))
                .cloned()
                .collect();
            let excess = done.len() as i64 - limit.max(0) as i64;
            if excess <= 0 {
                continue;
            }
            // Oldest start first; Jobs that never started go last (`byJobStartTime`).
            done.sort_by(|a, b| {
                let sa = a
                    .status
                    .as_ref()
                    .and_then(|s| s.start_time.as_ref())
                    .map(|t| t.0);
                let sb = b
                    .status
                    .as_ref()
                    .and_then(|s| s.start_time.as_ref())
                    .map(|t| t.0);
                match (sa, sb) {
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (Some(_), None) => std::cmp::Ordering::Less,
                    _ => sa.cmp(&sb).then_with(|| a.name_any().cmp(&b.name_any())),
                }
            });
            for j in done.iter().take(excess as usize) {
                if self.delete_job(cj, j).await {
                    changed = true;
                }
            }
        }
        changed
    }

    /// One pass over a CronJob (`syncCronJob`): returns when to look again and whether the
    /// status changed.
    async fn sync_cronjob(
        &self,
        cj: &mut CronJob,
        jobs: &[Arc<Job>],
    ) -> anyhow::Result<(Option<Duration>, bool)> {
        let mut update = false;
        let ns = cj.namespace().unwrap_or_default();
        let mut children: HashSet<String> = HashSet::new();
        for j in jobs {
            let uid = j.uid().unwrap_or_default();
            children.insert(uid.clone());
            let active = in_active_list(cj, &uid);
            let finished = finished_condition(j).cloned();
            match (active, finished) {
                (false, None) => {
                    self.recorder.event(
                        cj,
                        events::WARNING,
                        "UnexpectedJob",
                        format!(
                            "Saw a job that the controller did not create or forgot: {}",
                            j.name_any()
                        ),
                    );
                }
                (true, Some(c)) => {
                    remove_from_active(cj, &uid);
                    self.recorder.event(
                        cj,
                        events::NORMAL,
                        "SawCompletedJob",
                        format!(
                            "Saw completed job: {}, condition: {}",
                            j.name_any(),
                            c.type_
                        ),
                    );
                    update = true;
                    update |= self.note_success(cj, j);
                }
                (false, Some(_)) => update |= self.note_success(cj, j),
                (true, None) => {}
            }
        }
        // Active Jobs that are gone (the cache may lag: ask the server).
        let listed: Vec<ObjectReference> = cj
            .status
            .iter()
            .flat_map(|s| s.active.iter().flatten())
            .cloned()
            .collect();
        for r in listed {
            let uid = r.uid.clone().unwrap_or_default();
            if children.contains(&uid) {
                continue;
            }
            let name = r.name.clone().unwrap_or_default();
            match self.job_api(&ns).get_opt(&name).await? {
                None => {
                    self.recorder.event(
                        cj,
                        events::NORMAL,
                        "MissingJob",
                        format!("Active job went missing: {name}"),
                    );
                    remove_from_active(cj, &uid);
                    update = true;
                }
                Some(j) if j.uid().as_deref() != Some(uid.as_str()) => {
                    self.recorder.event(
                        cj,
                        events::NORMAL,
                        "MissingJob",
                        format!("Active job went missing: {name}"),
                    );
                    remove_from_active(cj, &uid);
                    update = true;
                }
                Some(_) => {}
            }
        }
        if cj.metadata.deletion_timestamp.is_some() {
            return Ok((None, update));
        }
        let spec = cj.spec.clone().unwrap_or_default();
        let mut tz = Tz::UTC;
        if let Some(name) = spec.time_zone.as_deref() {
            match name.parse::<Tz>() {
                Ok(t) => tz = t,
                Err(e) => {
                    self.recorder.event(
                        cj,
                        events::WARNING,
                        "UnknownTimeZone",
                        format!("invalid timeZone: {name:?}: {e}"),
                    );
                    return Ok((None, update));
                }
            }
        }
        if spec.suspend.unwrap_or(false) {
            return Ok((None, update));
        }
        if spec.schedule.contains("TZ") {
            self.recorder.event(
                cj,
                events::WARNING,
                "UnsupportedSchedule",
                format!("CRON_TZ or TZ used in schedule {:?} is not officially supported, see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details", spec.schedule),
            );
        }
        let sched = match schedule::parse(&spec.schedule, tz) {
            Ok(s) => s,
            Err(e) => {
                self.recorder.event(
                    cj,
                    events::WARNING,
                    "UnparseableSchedule",
                    format!("unparseable schedule: {:?} : {e}", spec.schedule),
                );
                return Ok((None, update));
            }
        };
        let now = Utc::now();
        let next_after = |cj: &CronJob| -> Option<Duration> {
            let (earliest, recent, _) = most_recent(cj, &sched, now, false);
            let base = recent.unwrap_or(earliest);
            let next = sched.next(base)?;
            let wait = (next - now).to_std().unwrap_or_default();
            Some(wait + NEXT_SCHEDULE_DELTA)
        };
        let (_, recent, missed) = most_recent(cj, &sched, now, true);
        let Some(scheduled) = recent.filter(|t| *t <= now) else {
            return Ok((next_after(cj), update));
        };
        if missed > MANY_MISSED {
            self.recorder.event(cj, events::WARNING, "TooManyMissedTimes", "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew");
        }
        if let Some(d) = spec.starting_deadline_seconds {
            if scheduled + chrono::Duration::seconds(d) < now {
                self.recorder.event(
                    cj,
                    events::WARNING,
                    "MissSchedule",
                    format!(
                        "Missed scheduled time to start a job: {}",
                        scheduled.to_rfc2822()
                    ),
                );
                return Ok((next_after(cj), update));
            }
        }
        let name = job_name(cj, scheduled);
        let already = cj
            .status
            .iter()
            .flat_map(|s| s.active.iter().flatten())
            .any(|r| r.name.as_deref() == Some(name.as_str()))
            || cj
                .status
                .as_ref()
                .and_then(|s| s.last_schedule_time.as_ref())
                .map(to_chrono)
                == Some(scheduled);
        if already {
            return Ok((next_after(cj), update));
        }
        let active_count = cj
            .status
            .as_ref()
            .and_then(|s| s.active.as_ref())
            .map_or(0, Vec::len);
        let policy = spec.concurrency_policy.as_deref().unwrap_or("Allow");
        if policy == "Forbid" && active_count > 0 {
            self.recorder.event(cj, events::NORMAL, "JobAlreadyActive", "Not starting job because prior execution is running and concurrency policy is Forbid");
            return Ok((next_after(cj), update));
        }
        if policy == "Replace" {
            let listed: Vec<ObjectReference> = cj
                .status
                .iter()
                .flat_map(|s| s.active.iter().flatten())
                .cloned()
                .collect();
            for r in listed {
                let name = r.name.clone().unwrap_or_default();
                let job = match self.job_api(&ns).get(&name).await {
                    Ok(j) => j,
                    Err(e) => {
                        self.recorder.event(
                            cj,
                            events::WARNING,
                            "FailedGet",
                            format!("Get job: {e}"),
                        );
                        return Err(e.into());
                    }
                };
                if !self.delete_job(cj, &job).await {
                    anyhow::bail!("could not replace job {ns}/{name}");
                }
                update = true;
            }
        }
        let template = spec.job_template.clone();
        let tm = template.metadata.clone().unwrap_or_default();
        let mut annotations = tm.annotations.clone().unwrap_or_default();
        annotations.insert(
            SCHEDULED_TIMESTAMP.into(),
            scheduled
                .with_timezone(&tz)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        );
        let job = Job {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(ns.clone()),
                labels: tm.labels.clone(),
                annotations: Some(annotations),
                owner_references: Some(vec![ownership::controller_ref(
                    &cj.metadata,
                    "batch/v1",
                    "CronJob",
                )]),
                ..Default::default()
            },
            spec: template.spec.clone(),
            status: None,
        };
        let created = match self.job_api(&ns).create(&PostParams::default(), &job).await {
            Ok(j) => {
                self.recorder.event(
                    cj,
                    events::NORMAL,
                    "SuccessfulCreate",
                    format!("Created job {}", j.name_any()),
                );
                j
            }
            Err(e) if runtime::is_namespace_terminating(&e) => return Err(e.into()),
            Err(e) if runtime::is_already_exists(&e) => {
                // Created before but not recorded (a crash between the two writes), or
                // someone else's Job of that name.
                let existing = self.job_api(&ns).get(&name).await?;
                let ours = controller_of(&existing.metadata)
                    .is_some_and(|r| cj.uid().as_deref() == Some(r.uid.as_str()));
                if !ours || in_active_list(cj, &existing.uid().unwrap_or_default()) {
                    return Ok((None, update));
                }
                existing
            }
            Err(e) => {
                self.recorder.event(
                    cj,
                    events::WARNING,
                    "FailedCreate",
                    format!("Error creating job: {e}"),
                );
                return Err(e.into());
            }
        };
        let status = cj.status.get_or_insert_with(Default::default);
        status
            .active
            .get_or_insert_with(Vec::new)
            .push(job_ref(&created));
        status.last_schedule_time = Some(to_time(scheduled));
        Ok((next_after(cj), true))
    }

    /// Updates lastSuccessfulTime from a completed Job.
    fn note_success(&self, cj: &mut CronJob, j: &Job) -> bool {
        if finished_condition(j).is_none_or(|c| c.type_ != "Complete") {
            return false;
        }
        let Some(done) = j.status.as_ref().and_then(|s| s.completion_time.clone()) else {
            return false;
        };
        let status = cj.status.get_or_insert_with(Default::default);
        if status
            .last_successful_time
            .as_ref()
            .is_none_or(|t| done.0 > t.0)
        {
            status.last_successful_time = Some(done);
            return true;
        }
        false
    }
}

#[async_trait::async_trait]
impl Reconciler for CronJobController {
    fn name(&self) -> &'static str {
        CONTROLLER_NAME
    }

    async fn sync(&self, key: &str) -> anyhow::Result<Requeue> {
        let (ns, name) = split_key(key);
        let Some(cached) = self.cronjobs.get(ns, name) else {
            return Ok(Requeue::No);
        };
        let uid = cached.uid().unwrap_or_default();
        let jobs: Vec<Arc<Job>> = self
            .jobs
            .list_namespace(ns)
            .into_iter()
            .filter(|j| {
                controller_of(&j.metadata).is_some_and(|r| r.kind == "CronJob" && r.uid == uid)
            })
            .collect();
        let mut cj = (*cached).clone();
        let cleaned = self.cleanup_finished(&mut cj, &jobs).await;
        let result = self.sync_cronjob(&mut cj, &jobs).await;
        let update = cleaned || result.as_ref().is_ok_and(|(_, u)| *u);
        if update {
            let api: Api<CronJob> = Api::namespaced(self.client.clone(), ns);
            api.replace_status(name, &PostParams::default(), &cj)
                .await?;
        }
        match result {
            Ok((Some(d), _)) => Ok(Requeue::After(d)),
            Ok((None, _)) => Ok(Requeue::No),
            Err(e) => Err(e),
        }
    }
}

impl Controller for CronJobController {
    fn name(&self) -> &'static str {
        "cronjob"
    }

    fn run(self: Arc<Self>) -> Vec<JoinHandle<()>> {
        let (q, w) = (self.queue.clone(), self.workers);
        runtime::run_workers(self, q, w)
    }

    fn shut_down(&self) {
        self.queue.shut_down();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cj(created: &str, last: Option<&str>, deadline: Option<i64>) -> CronJob {
        let mut v = json!({
            "metadata": {"name": "c", "creationTimestamp": created},
            "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}},
            "status": {}
        });
        if let Some(l) = last {
            v["status"]["lastScheduleTime"] = json!(l);
        }
        if let Some(d) = deadline {
            v["spec"]["startingDeadlineSeconds"] = json!(d);
        }
        serde_json::from_value(v).unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_most_recent_unmet_time_and_missed_count() {
        let s = schedule::parse("*/5 * * * *", Tz::UTC).unwrap();
        let c = cj("2024-01-01T00:00:00Z", None, None);
        let (_, t, n) = most_recent(&c, &s, at("2024-01-01T00:03:00Z"), true);
        assert_eq!((t, n), (None, 0));
        let (_, t, n) = most_recent(&c, &s, at("2024-01-01T00:17:00Z"), true);
        assert_eq!((t, n), (Some(at("2024-01-01T00:15:00Z")), 3));
        let c = cj("2024-01-01T00:00:00Z", Some("2024-01-01T00:15:00Z"), None);
        let (_, t, n) = most_recent(&c, &s, at("2024-01-01T00:17:00Z"), true);
        assert_eq!((t, n), (None, 0));
        // A starting deadline limits how far back the controller looks.
        let c = cj("2024-01-01T00:00:00Z", None, Some(60));
        let (_, t, n) = most_recent(&c, &s, at("2024-01-01T00:17:00Z"), true);
        assert_eq!((t, n), (None, 0));
        let (_, t, _) = most_recent(&c, &s, at("2024-01-01T00:20:30Z"), true);
        assert_eq!(t, Some(at("2024-01-01T00:20:00Z")));
        // A long outage: counted, and the latest time found without walking every step.
        let c = cj("2020-01-01T00:00:00Z", None, None);
        let (_, t, n) = most_recent(&c, &s, at("2024-01-01T00:17:00Z"), true);
        assert_eq!(t, Some(at("2024-01-01T00:15:00Z")));
        assert!(n > MANY_MISSED);
    }

    #[test]
    fn job_names_are_minutes_since_the_epoch() {
        let c = cj("2024-01-01T00:00:00Z", None, None);
        assert_eq!(
            job_name(&c, at("2024-01-01T00:15:00Z")),
            format!("c-{}", 1704068100 / 60)
        );
    }
}
