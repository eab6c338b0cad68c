//! A fixed report for the writers' snapshot tests: every status, a failure with diff, events
//! and logs, characters that need escaping, and fixed timestamps so snapshots are stable.

use chrono::{TimeZone, Utc};

use crate::model::{Case, EventSummary, Failure, LogExcerpt, Report, RunInfo, Status};

pub fn report() -> Report {
    let started = Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap();
    let finished = Utc.with_ymd_and_hms(2025, 1, 2, 3, 5, 17).unwrap();
    let mut r = Report::new(RunInfo {
        tool: "kubeproof 0.1.0".into(),
        target: "bundled".into(),
        server_version: Some("v1.32.0-kubeproof".into()),
        kubernetes_version: "1.32".into(),
        profile: "default".into(),
        started_at: started,
        finished_at: finished,
        duration_ms: 72_000,
    });

    let tags = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    let mut version = Case::new(
        "api",
        "Server identity",
        "The server reports Kubernetes 1.32",
        "features/api/version.feature",
        4,
        tags(&["@B-API-001"]),
    );
    version.duration_ms = 12;

    let mut stale = Case::new(
        "api",
        "Optimistic concurrency",
        "An update with a stale resourceVersion is rejected",
        "features/api/concurrency.feature",
        6,
        tags(&["@B-API-009", "@B-API-010"]),
    );
    stale.duration_ms = 340;

    let mut race = Case::new(
        "api",
        "Optimistic concurrency",
        "Two writers race <from> the \"same\" version & one wins",
        "features/api/concurrency.feature",
        21,
        tags(&["@B-API-010", "@serial"]),
    );
    race.status = Status::Failed;
    race.duration_ms = 5_021;
    race.reason = Some("configmap \"race\" does not match".into());
    race.failure = Some(Failure {
        step: "Then configmap \"race\" matches:".into(),
        step_line: Some(30),
        message: "configmap \"race\" does not match at .data.winner: expected \"a\", found \"b\""
            .into(),
        diff: Some("--- expected\n+++ actual\n data:\n-  winner: a\n+  winner: b\n".into()),
        events: vec![EventSummary {
            type_: "Warning".into(),
            reason: "Conflict".into(),
            object: "ConfigMap/race".into(),
            message:
                "the object has been modified; please apply your changes to the latest version"
                    .into(),
            count: 2,
        }],
        logs: vec![LogExcerpt {
            pod: "writer-a".into(),
            container: "main".into(),
            text: "wrote a\n".into(),
        }],
    });

    let mut watch = Case::new(
        "api",
        "Watch",
        "A watch sees ADDED, MODIFIED and DELETED in order",
        "features/api/watch.feature",
        9,
        tags(&["@B-API-011", "@B-API-999"]),
    );
    watch.status = Status::Flaky;
    watch.retries = 1;
    watch.duration_ms = 1_200;
    watch.reason = Some("passed after 1 retry".into());
    watch.failure = Some(Failure {
        step: "Then the watch sees ADDED, MODIFIED, DELETED".into(),
        step_line: Some(18),
        message: "saw ADDED, MODIFIED within 10s".into(),
        ..Failure::default()
    });

    let mut kubelet = Case::new(
        "observability",
        "Component metrics",
        "Kubelet metrics through the node proxy",
        "features/observability/metrics.feature",
        12,
        tags(&["@B-OBS-007", "@needs:process-runtime"]),
    );
    kubelet.status = Status::Skipped;
    kubelet.reason =
        Some("target lacks process-runtime: no node runs a real container runtime".into());

    r.cases = vec![version, stale, race, watch, kubelet];
    r
}
