//! The Job and TTL-after-finished controllers against the bundled cluster; a fake kubelet
//! (these tests) moves pods to Succeeded or Failed with exit codes.

#[path = "controllers_support.rs"]
mod support;

use std::time::Duration;

use k8s_openapi::api::batch::v1::{Job, JobCondition};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use support::*;

const T: Duration = Duration::from_secs(30);
const FINALIZER: &str = "batch.kubernetes.io/job-tracking";

fn job(name: &str, spec: serde_json::Value) -> Job {
    let mut s = json!({
        "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]}}
    });
    if let (Some(o), Some(extra)) = (s.as_object_mut(), spec.as_object()) {
        for (k, v) in extra {
            o.insert(k.clone(), v.clone());
        }
    }
    obj(json!({"metadata": {"name": name}, "spec": s}))
}

/// Ends the pod's container with `code` (0: Succeeded, else Failed), as a kubelet reports it.
async fn finish(client: &kube::Client, ns: &str, pod: &str, code: i32) {
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let phase = if code == 0 { "Succeeded" } else { "Failed" };
    let status = json!({"status": {
        "phase": phase,
        "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": now}],
        "containerStatuses": [{"name": "main", "ready": false, "restartCount": 0, "image": "busybox", "imageID": "",
            "state": {"terminated": {"exitCode": code, "reason": if code == 0 { "Completed" } else { "Error" },
                "startedAt": now, "finishedAt": now}}}]
    }});
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    api.patch_status(pod, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
}

async fn job_pods(client: &kube::Client, ns: &str, job: &str) -> Vec<Pod> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let mut pods = api
        .list(&ListParams::default().labels(&format!("batch.kubernetes.io/job-name={job}")))
        .await
        .unwrap()
        .items;
    pods.sort_by_key(|p| p.creation_timestamp().map(|t| t.0));
    pods
}

fn running(pods: &[Pod]) -> Vec<Pod> {
    pods.iter()
        .filter(|p| {
            p.metadata.deletion_timestamp.is_none()
                && !matches!(
                    p.status.as_ref().and_then(|s| s.phase.as_deref()),
                    Some("Succeeded" | "Failed")
                )
        })
        .cloned()
        .collect()
}

fn cond(j: &Job, type_: &str) -> Option<JobCondition> {
    j.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_ && c.status == "True")
        .cloned()
}

async fn wait_condition(api: &Api<Job>, name: &str, type_: &str) -> Job {
    eventually(T, &format!("condition {type_}"), || async {
        let j = api.get(name).await.ok()?;
        cond(&j, type_).is_some().then_some(j)
    })
    .await
}

#[tokio::test]
async fn a_parallel_job_completes_and_counts_each_pod_once() {
    let env = Env::start().await;
    let ns = env.namespace("job-basic").await;
    wait_default_sa(&env.client, &ns).await;
    let api: Api<Job> = Api::namespaced(env.client.clone(), &ns);
    api.create(
        &PostParams::default(),
        &job("pi", json!({"completions": 3, "parallelism": 2})),
    )
    .await
    .unwrap();
    let first = eventually(T, "2 pods", || async {
        let p = running(&job_pods(&env.client, &ns, "pi").await);
        (p.len() == 2).then_some(p)
    })
    .await;
    for p in &first {
        assert!(p.name_any().starts_with("pi-"));
        assert!(
            p.finalizers().iter().any(|f| f == FINALIZER),
            "tracking finalizer"
        );
        let r = &p.owner_references()[0];
        assert_eq!(
            (r.kind.as_str(), r.controller, r.block_owner_deletion),
            ("Job", Some(true), Some(true))
        );
    }
    let s = eventually(T, "status active 2", || async {
        let s = api.get("pi").await.ok()?.status?;
        (s.active == Some(2)).then_some(s)
    })
    .await;
    assert!(s.start_time.is_some());
    assert_eq!(s.ready, Some(0));
    finish(&env.client, &ns, &first[0].name_any(), 0).await;
    // One done, one running: a third pod starts (3 completions, parallelism 2).
    let second = eventually(T, "a third pod", || async {
        let all = job_pods(&env.client, &ns, "pi").await;
        let r = running(&all);
        (all.len() == 3 && r.len() == 2).then_some(r)
    })
    .await;
    eventually(T, "succeeded 1", || async {
        let s = api.get("pi").await.ok()?.status?;
        (s.succeeded == Some(1)).then_some(())
    })
    .await;
    for p in &second {
        finish(&env.client, &ns, &p.name_any(), 0).await;
    }
    let done = wait_condition(&api, "pi", "Complete").await;
    let s = done.status.clone().unwrap();
    assert_eq!(s.succeeded, Some(3));
    assert_eq!(s.failed, None);
    assert!(s.completion_time.is_some());
    let u = s.uncounted_terminated_pods.unwrap();
    assert!(u.succeeded.is_none() && u.failed.is_none());
    let met = cond(&done, "SuccessCriteriaMet").expect("interim condition");
    assert_eq!(met.reason.as_deref(), Some("CompletionsReached"));
    let complete = cond(&done, "Complete").unwrap();
    assert_eq!(
        complete.message.as_deref(),
        Some("Reached expected number of succeeded pods")
    );
    eventually(T, "finalizers released", || async {
        let pods = job_pods(&env.client, &ns, "pi").await;
        (pods.len() == 3
            && pods
                .iter()
                .all(|p| !p.finalizers().iter().any(|f| f == FINALIZER)))
        .then_some(())
    })
    .await;
    eventually(T, "Completed event", || async {
        let evs = events(&env.client, &ns).await;
        (evs.iter()
            .any(|(r, m)| r == "Completed" && m == "Job completed")
            && evs
                .iter()
                .any(|(r, m)| r == "SuccessfulCreate" && m.starts_with("Created pod: pi-")))
        .then_some(())
    })
    .await;
    env.stop().await;
}

#[tokio::test]
async fn failures_back_off_then_exceed_the_backoff_limit() {
    let env = Env::start_with(|c| c.job_backoff_base = Duration::from_secs(2)).await;
    let ns = env.namespace("job-backoff").await;
    wait_default_sa(&env.client, &ns).await;
    let api: Api<Job> = Api::namespaced(env.client.clone(), &ns);
    api.create(
        &PostParams::default(),
        &job("flaky", json!({"backoffLimit": 1})),
    )
    .await
    .unwrap();
    let p1 = eventually(T, "first pod", || async {
        running(&job_pods(&env.client, &ns, "flaky").await).pop()
    })
    .await;
    let failed_at = std::time::Instant::now();
    finish(&env.client, &ns, &p1.name_any(), 1).await;
    let p2 = eventually(T, "a replacement", || async {
        running(&job_pods(&env.client, &ns, "flaky").await)
            .into_iter()
            .find(|p| p.name_any() != p1.name_any())
    })
    .await;
    // A 2s back-off from the reported finish time, which has second precision.
    assert!(
        failed_at.elapsed() >= Duration::from_secs(1),
        "{:?}",
        failed_at.elapsed()
    );
    eventually(T, "failed 1", || async {
        let s = api.get("flaky").await.ok()?.status?;
        (s.failed == Some(1)).then_some(())
    })
    .await;
    finish(&env.client, &ns, &p2.name_any(), 1).await;
    let failed = wait_condition(&api, "flaky", "Failed").await;
    let c = cond(&failed, "Failed").unwrap();
    assert_eq!(c.reason.as_deref(), Some("BackoffLimitExceeded"));
    assert_eq!(
        c.message.as_deref(),
        Some("Job has reached the specified backoff limit")
    );
    assert!(cond(&failed, "FailureTarget").is_some());
    assert_eq!(failed.status.as_ref().unwrap().failed, Some(2));
    assert!(failed.status.as_ref().unwrap().completion_time.is_none());
    let evs = events(&env.client, &ns).await;
    assert!(
        evs.iter().any(|(r, _)| r == "BackoffLimitExceeded"),
        "{evs:?}"
    );
    env.stop().await;
}

#[tokio::test]
async fn indexed_jobs_track_completed_indexes_and_success_policy() {
    let env = Env::start().await;
    let ns = env.namespace("job-indexed").await;
    wait_default_sa(&env.client, &ns).await;
    let api: Api<Job> = Api::namespaced(env.client.clone(), &ns);
    api.create(
        &PostParams::default(),
        &job(
            "idx",
            json!({"completions": 3, "parallelism": 3, "completionMode": "Indexed"}),
        ),
    )
    .await
    .unwrap();
    let pods = eventually(T, "3 indexed pods", || async {
        let p = running(&job_pods(&env.client, &ns, "idx").await);
        (p.len() == 3).then_some(p)
    })
    .await;
    let index = |p: &Pod| {
        p.annotations()
            .get("batch.kubernetes.io/job-completion-index")
            .cloned()
            .unwrap()
    };
    let mut seen: Vec<String> = pods.iter().map(index).collect();
    seen.sort();
    assert_eq!(seen, ["0", "1", "2"]);
    for p in &pods {
        let i = index(p);
        assert!(p.name_any().starts_with(&format!("idx-{i}-")));
        assert_eq!(
            p.labels().get("batch.kubernetes.io/job-completion-index"),
            Some(&i)
        );
        let spec = p.spec.as_ref().unwrap();
        assert_eq!(spec.hostname.as_deref(), Some(format!("idx-{i}").as_str()));
        let env_var = spec.containers[0]
            .env
            .as_ref()
            .unwrap()
            .iter()
            .find(|e| e.name == "JOB_COMPLETION_INDEX")
            .unwrap();
        assert!(env_var.value_from.is_some());
    }
    let by_index = |i: &str| pods.iter().find(|p| index(p) == i).unwrap().name_any();
    finish(&env.client, &ns, &by_index("0"), 0).await;
    finish(&env.client, &ns, &by_index("2"), 0).await;
    eventually(T, "completedIndexes 0,2", || async {
        let s = api.get("idx").await.ok()?.status?;
        (s.completed_indexes.as_deref() == Some("0,2") && s.succeeded == Some(2)).then_some(())
    })
    .await;
    finish(&env.client, &ns, &by_index("1"), 0).await;
    let done = wait_condition(&api, "idx", "Complete").await;
    assert_eq!(
        done.status.unwrap().completed_indexes.as_deref(),
        Some("0-2")
    );

    // successPolicy: index 0 alone is enough; the rest are stopped.
    api.create(
        &PostParams::default(),
        &job(
            "leader",
            json!({"completions": 3, "parallelism": 3, "completionMode": "Indexed",
            "successPolicy": {"rules": [{"succeededIndexes": "0"}]}}),
        ),
    )
    .await
    .unwrap();
    let pods = eventually(T, "3 pods", || async {
        let p = running(&job_pods(&env.client, &ns, "leader").await);
        (p.len() == 3).then_some(p)
    })
    .await;
    let leader = pods.iter().find(|p| index(p) == "0").unwrap().name_any();
    finish(&env.client, &ns, &leader, 0).await;
    let done = wait_condition(&api, "leader", "Complete").await;
    let met = cond(&done, "SuccessCriteriaMet").unwrap();
    assert_eq!(met.reason.as_deref(), Some("SuccessPolicy"));
    assert_eq!(met.message.as_deref(), Some("Matched rules at index 0"));
    assert_eq!(
        cond(&done, "Complete").unwrap().reason.as_deref(),
        Some("SuccessPolicy")
    );
    assert!(running(&job_pods(&env.client, &ns, "leader").await).is_empty());
    env.stop().await;
}

#[tokio::test]
async fn pod_failure_policy_ignores_or_fails_the_job() {
    let env = Env::start().await;
    let ns = env.namespace("job-pfp").await;
    wait_default_sa(&env.client, &ns).await;
    let api: Api<Job> = Api::namespaced(env.client.clone(), &ns);
    api.create(
        &PostParams::default(),
        &job("pfp", json!({"backoffLimit": 0, "podFailurePolicy": {"rules": [
            {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [3]}},
            {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}}
        ]}})),
    )
    .await
    .unwrap();
    let p1 = eventually(T, "a pod", || async {
        running(&job_pods(&env.client, &ns, "pfp").await).pop()
    })
    .await;
    finish(&env.client, &ns, &p1.name_any(), 3).await;
    // Ignored: not counted against backoffLimit 0, and replaced.
    let p2 = eventually(T, "a replacement", || async {
        running(&job_pods(&env.client, &ns, "pfp").await)
            .into_iter()
            .find(|p| p.name_any() != p1.name_any())
    })
    .await;
    let s = api.get("pfp").await.unwrap().status.unwrap();
    assert_eq!(s.failed, None);
    finish(&env.client, &ns, &p2.name_any(), 42).await;
    let failed = wait_condition(&api, "pfp", "Failed").await;
    let c = cond(&failed, "Failed").unwrap();
    assert_eq!(c.reason.as_deref(), Some("PodFailurePolicy"));
    assert_eq!(
        c.message.unwrap(),
        format!("Container main for pod {ns}/{} failed with exit code 42 matching FailJob rule at index 1", p2.name_any())
    );
    env.stop().await;
}

#[tokio::test]
async fn suspend_resume_deadline_and_ttl() {
    let env = Env::start().await;
    let ns = env.namespace("job-suspend").await;
    wait_default_sa(&env.client, &ns).await;
    let api: Api<Job> = Api::namespaced(env.client.clone(), &ns);
    api.create(
        &PostParams::default(),
        &job(
            "later",
            json!({"suspend": true, "parallelism": 2, "completions": 2}),
        ),
    )
    .await
    .unwrap();
    let j = wait_condition(&api, "later", "Suspended").await;
    assert_eq!(
        cond(&j, "Suspended").unwrap().reason.as_deref(),
        Some("JobSuspended")
    );
    assert!(j.status.unwrap().start_time.is_none());
    assert!(job_pods(&env.client, &ns, "later").await.is_empty());
    api.patch(
        "later",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"suspend": false}})),
    )
    .await
    .unwrap();
    eventually(T, "resumed with 2 pods", || async {
        let j = api.get("later").await.ok()?;
        let c = j
            .status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == "Suspended")?
            .clone();
        let pods = running(&job_pods(&env.client, &ns, "later").await);
        (c.status == "False" && c.reason.as_deref() == Some("JobResumed") && pods.len() == 2)
            .then_some(())
    })
    .await;
    // Suspending again removes the running pods without counting them as failures.
    api.patch(
        "later",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"suspend": true}})),
    )
    .await
    .unwrap();
    eventually(T, "pods gone", || async {
        let s = api.get("later").await.ok()?.status?;
        (running(&job_pods(&env.client, &ns, "later").await).is_empty() && s.active.is_none())
            .then_some(s)
    })
    .await;
    assert_eq!(api.get("later").await.unwrap().status.unwrap().failed, None);

    // activeDeadlineSeconds: the running pod is stopped and the Job fails.
    api.create(
        &PostParams::default(),
        &job("slow", json!({"activeDeadlineSeconds": 1})),
    )
    .await
    .unwrap();
    let failed = wait_condition(&api, "slow", "Failed").await;
    assert_eq!(
        cond(&failed, "Failed").unwrap().reason.as_deref(),
        Some("DeadlineExceeded")
    );
    assert!(running(&job_pods(&env.client, &ns, "slow").await).is_empty());

    // ttlSecondsAfterFinished: removed a second after it completed.
    api.create(
        &PostParams::default(),
        &job("short", json!({"ttlSecondsAfterFinished": 1})),
    )
    .await
    .unwrap();
    let p = eventually(T, "a pod", || async {
        running(&job_pods(&env.client, &ns, "short").await).pop()
    })
    .await;
    finish(&env.client, &ns, &p.name_any(), 0).await;
    wait_condition(&api, "short", "Complete").await;
    eventually(T, "the job deleted", || async {
        api.get_opt("short").await.ok()?.is_none().then_some(())
    })
    .await;
    env.stop().await;
}
