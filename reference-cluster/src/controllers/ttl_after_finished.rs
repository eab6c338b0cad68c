//! The TTL-after-finished controller: a Job with `ttlSecondsAfterFinished` is deleted (with
//! its pods, foreground) that many seconds after it completed or failed. The Job is read
//! fresh before deleting, and the delete carries its UID as precondition, so a Job whose TTL
//! was just extended, or a new Job of the same name, is not removed.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Preconditions, PropagationPolicy};
use kube::{Api, ResourceExt};
use tokio::task::JoinHandle;

use super::job::finished_condition;
use super::manager::{Context, Controller};
use super::runtime::{self, key_of, split_key, Change, Informer, Reconciler, Requeue, WorkQueue};

pub struct TtlAfterFinished {
    client: kube::Client,
    jobs: Informer<Job>,
    queue: Arc<WorkQueue<String>>,
}

/// When the Job expires, if it is finished and has a TTL.
pub fn expires_at(job: &Job) -> Option<Timestamp> {
    let ttl = job.spec.as_ref()?.ttl_seconds_after_finished?;
    if job.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let finished = finished_condition(job)?.last_transition_time.as_ref()?.0;
    finished
        .checked_add(runtime::pods::jiff_secs(ttl.max(0) as i64))
        .ok()
}

impl TtlAfterFinished {
    pub fn new(ctx: &Context) -> Arc<Self> {
        let this = Arc::new(TtlAfterFinished {
            client: ctx.client_for("ttl-after-finished-controller"),
            jobs: ctx.informers.get::<Job>(),
            queue: WorkQueue::new(ctx.cfg.backoff),
        });
        let q = this.queue.clone();
        this.jobs.add_handler(move |c| {
            let j = match c {
                Change::Add(j) => j,
                Change::Update { new, .. } => new,
                Change::Delete(_) => return,
            };
            if expires_at(j).is_some() {
                q.add(key_of(j.as_ref()));
            }
        });
        this
    }
}

#[async_trait::async_trait]
impl Reconciler for TtlAfterFinished {
    fn name(&self) -> &'static str {
        "ttl-after-finished-controller"
    }

    async fn sync(&self, key: &str) -> anyhow::Result<Requeue> {
        let (ns, name) = split_key(key);
        let Some(job) = self.jobs.get(ns, name) else {
            return Ok(Requeue::No);
        };
        let Some(at) = expires_at(&job) else {
            return Ok(Requeue::No);
        };
        let now = Timestamp::now();
        if at > now {
            let left = Duration::try_from(at.duration_since(now)).unwrap_or_default();
            return Ok(Requeue::After(left + Duration::from_millis(100)));
        }
        // The cache may be stale (a TTL just raised): decide on the server's copy.
        let api: Api<Job> = Api::namespaced(self.client.clone(), ns);
        let Some(fresh) = api.get_opt(name).await? else {
            return Ok(Requeue::No);
        };
        let Some(at) = expires_at(&fresh) else {
            return Ok(Requeue::No);
        };
        if at > Timestamp::now() {
            let left = Duration::try_from(at.duration_since(Timestamp::now())).unwrap_or_default();
            return Ok(Requeue::After(left + Duration::from_millis(100)));
        }
        let dp = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Foreground),
            preconditions: Some(Preconditions {
                uid: fresh.uid(),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api.delete(name, &dp).await {
            Ok(_) => Ok(Requeue::No),
            Err(e) if runtime::is_not_found(&e) || runtime::api_code(&e) == Some(409) => {
                Ok(Requeue::No)
            }
            Err(e) => Err(e.into()),
        }
    }
}

impl Controller for TtlAfterFinished {
    fn name(&self) -> &'static str {
        "ttl-after-finished"
    }

    fn run(self: Arc<Self>) -> Vec<JoinHandle<()>> {
        let q = self.queue.clone();
        runtime::run_workers(self, q, 5)
    }

    fn shut_down(&self) {
        self.queue.shut_down();
    }
}
