//! The CronJob controller against the bundled cluster. Schedules fire at minute
//! boundaries, so the tests move `status.lastScheduleTime` back in time to have a missed
//! start time to act on at once.

#[path = "controllers_support.rs"]
mod support;

use std::time::Duration;

use chrono::{Timelike, Utc};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use support::*;

const T: Duration = Duration::from_secs(30);

fn cronjob(name: &str, schedule: &str, extra: serde_json::Value) -> CronJob {
    let mut spec = json!({
        "schedule": schedule,
        "suspend": true,
        "jobTemplate": {
            "metadata": {"labels": {"from": name}},
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]}}}
        }
    });
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            s.insert(k.clone(), v.clone());
        }
    }
    obj(json!({"metadata": {"name": name}, "spec": spec}))
}

fn rfc3339(t: chrono::DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Pretends the last run was at `at`, then lets the CronJob run.
async fn start_from(api: &Api<CronJob>, name: &str, at: chrono::DateTime<Utc>) {
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"lastScheduleTime": rfc3339(at)}})),
    )
    .await
    .unwrap();
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"suspend": false}})),
    )
    .await
    .unwrap();
}

async fn jobs_of(client: &kube::Client, ns: &str, cj: &str) -> Vec<Job> {
    let api: Api<Job> = Api::namespaced(client.clone(), ns);
    api.list(&ListParams::default().labels(&format!("from={cj}")))
        .await
        .unwrap()
        .items
}

fn active_names(cj: &CronJob) -> Vec<String> {
    cj.status
        .iter()
        .flat_map(|s| s.active.iter().flatten())
        .filter_map(|r| r.name.clone())
        .collect()
}

#[tokio::test]
async fn a_missed_schedule_runs_and_its_job_is_tracked_to_completion() {
    let env = Env::start().await;
    let ns = env.namespace("cron-basic").await;
    wait_default_sa(&env.client, &ns).await;
    let api: Api<CronJob> = Api::namespaced(env.client.clone(), &ns);
    api.create(
        &PostParams::default(),
        &cronjob(
            "tick",
            "* * * * *",
            json!({"successfulJobsHistoryLimit": 1}),
        ),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        jobs_of(&env.client, &ns, "tick").await.is_empty(),
        "suspended"
    );
    let now = Utc::now();
    start_from(&api, "tick", now - chrono::Duration::minutes(5)).await;
    let job = eventually(T, "a job", || async {
        jobs_of(&env.client, &ns, "tick").await.pop()
    })
    .await;
    // The most recent missed minute, not the five of them.
    let minute = now.timestamp() / 60;
    let name = job.name_any();
    let n: i64 = name.strip_prefix("tick-").unwrap().parse().unwrap();
    assert!(n == minute || n == minute + 1, "{name} vs {minute}");
    let stamp = job
        .annotations()
        .get("batch.kubernetes.io/cronjob-scheduled-timestamp")
        .cloned()
        .unwrap();
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(&stamp)
            .unwrap()
            .timestamp(),
        n * 60
    );
    let owner = &job.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.controller),
        ("CronJob", Some(true))
    );
    let cj = eventually(T, "the job in status.active", || async {
        let cj = api.get("tick").await.ok()?;
        (active_names(&cj) == [name.clone()]).then_some(cj)
    })
    .await;
    let last = cj.status.unwrap().last_schedule_time.unwrap();
    assert_eq!(last.0.as_second(), n * 60);
    eventually(T, "SuccessfulCreate", || async {
        events(&env.client, &ns)
            .await
            .iter()
            .any(|(r, m)| r == "SuccessfulCreate" && m == &format!("Created job {name}"))
            .then_some(())
    })
    .await;

    // The Job's pod succeeds; the Job completes; the CronJob notices.
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &ns);
    let pod = eventually(T, "the job's pod", || async {
        pods.list(&ListParams::default().labels(&format!("batch.kubernetes.io/job-name={name}")))
            .await
            .ok()?
            .items
            .pop()
    })
    .await;
    let t = rfc3339(Utc::now());
    pods.patch_status(
        &pod.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Succeeded", "containerStatuses": [{"name": "main", "ready": false, "restartCount": 0,
            "image": "busybox", "imageID": "", "state": {"terminated": {"exitCode": 0, "finishedAt": t}}}]}})),
    )
    .await
    .unwrap();
    let cj = eventually(T, "active cleared and lastSuccessfulTime", || async {
        let cj = api.get("tick").await.ok()?;
        (active_names(&cj).is_empty() && cj.status.as_ref()?.last_successful_time.is_some())
            .then_some(cj)
    })
    .await;
    assert!(cj.status.unwrap().last_schedule_time.is_some());
    eventually(T, "SawCompletedJob", || async {
        events(&env.client, &ns)
            .await
            .iter()
            .any(|(r, m)| {
                r == "SawCompletedJob"
                    && m == &format!("Saw completed job: {name}, condition: Complete")
            })
            .then_some(())
    })
    .await;
    env.stop().await;
}

#[tokio::test]
async fn forbid_skips_and_replace_swaps_a_running_job() {
    let env = Env::start().await;
    let ns = env.namespace("cron-policy").await;
    wait_default_sa(&env.client, &ns).await;
    let api: Api<CronJob> = Api::namespaced(env.client.clone(), &ns);
    let now = Utc::now()
        .with_second(0)
        .unwrap()
        .with_nanosecond(0)
        .unwrap();
    let t1 = now - chrono::Duration::minutes(6);
    let t2 = now - chrono::Duration::minutes(3);
    let daily = |t: chrono::DateTime<Utc>| format!("{} {} * * *", t.minute(), t.hour());
    for (name, policy) in [("forbid", "Forbid"), ("replace", "Replace")] {
        api.create(
            &PostParams::default(),
            &cronjob(name, &daily(t1), json!({"concurrencyPolicy": policy})),
        )
        .await
        .unwrap();
        start_from(&api, name, t1 - chrono::Duration::minutes(1)).await;
    }
    for name in ["forbid", "replace"] {
        let first = format!("{name}-{}", t1.timestamp() / 60);
        eventually(T, "the first run", || async {
            let cj = api.get(name).await.ok()?;
            (active_names(&cj) == [first.clone()]).then_some(())
        })
        .await;
        // A second start time comes while the first Job still runs.
        api.patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"schedule": daily(t2)}})),
        )
        .await
        .unwrap();
    }
    let second = format!("replace-{}", t2.timestamp() / 60);
    eventually(T, "the replacement", || async {
        let cj = api.get("replace").await.ok()?;
        let names: Vec<String> = jobs_of(&env.client, &ns, "replace")
            .await
            .iter()
            .filter(|j| j.metadata.deletion_timestamp.is_none())
            .map(|j| j.name_any())
            .collect();
        (active_names(&cj) == [second.clone()] && names == [second.clone()]).then_some(())
    })
    .await;
    eventually(T, "JobAlreadyActive", || async {
        events(&env.client, &ns)
            .await
            .iter()
            .any(|(r, _)| r == "JobAlreadyActive")
            .then_some(())
    })
    .await;
    let cj = api.get("forbid").await.unwrap();
    assert_eq!(
        active_names(&cj),
        [format!("forbid-{}", t1.timestamp() / 60)]
    );
    assert_eq!(jobs_of(&env.client, &ns, "forbid").await.len(), 1);
    let evs = events(&env.client, &ns).await;
    assert!(
        evs.iter().any(|(r, m)| r == "SuccessfulDelete"
            && m == &format!("Deleted job replace-{}", t1.timestamp() / 60)),
        "{evs:?}"
    );
    env.stop().await;
}
