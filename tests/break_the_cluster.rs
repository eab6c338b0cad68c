//! The suite catches a cluster that misbehaves: `kubeproof conformance --inject-fault NAME`
//! starts the bundled cluster with a deliberate bug, and the scenario checking that behaviour
//! must fail, naming the behaviour and showing the evidence. The same scenario on the correct
//! cluster is the control: it passes, so the failure is the fault's doing.
//!
//! Run with `cargo test --features conformance --test break_the_cluster`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use serde_json::Value;

/// One bundled cluster at a time: each run starts its own, and the machine is small.
static CLUSTERS: Mutex<()> = Mutex::new(());

const ROLLING: &str = "features/workloads/rolling-update-invariants.feature";

struct Run {
    output: Output,
    report: Value,
    junit: String,
}

impl Run {
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    fn case(&self) -> &Value {
        let cases = self.report["cases"].as_array().expect("cases");
        assert_eq!(cases.len(), 1, "one scenario selected: {cases:?}");
        &cases[0]
    }

    fn behaviour(&self, id: &str) -> &Value {
        self.report["behaviours"]
            .as_array()
            .expect("behaviours")
            .iter()
            .find(|b| b["id"] == id)
            .unwrap_or_else(|| panic!("{id} is in the catalogue"))
    }
}

fn conformance(args: &[&str], report_dir: &Path) -> Run {
    let _one = CLUSTERS.lock().unwrap_or_else(|e| e.into_inner());
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new(env!("CARGO_BIN_EXE_kubeproof"))
        .current_dir(&root)
        .arg("conformance")
        .args(args)
        .arg("--report-dir")
        .arg(report_dir)
        .output()
        .expect("the kubeproof binary runs");
    let read = |name: &str| {
        std::fs::read_to_string(report_dir.join(name)).unwrap_or_else(|e| {
            panic!(
                "no {name} ({e}); kubeproof said:\n{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )
        })
    };
    let report = serde_json::from_str(&read("report.json")).expect("report.json is JSON");
    let junit = read("junit.xml");
    Run {
        output,
        report,
        junit,
    }
}

#[test]
fn a_deployment_that_ignores_max_unavailable_fails_the_rolling_update_invariant() {
    let dir = tempfile::tempdir().unwrap();
    let broken = conformance(
        &[
            "--inject-fault",
            "deployment-ignores-max-unavailable",
            "--features",
            ROLLING,
        ],
        &dir.path().join("broken"),
    );
    // Exit code 1 is "scenarios failed"; 2 would be an error running the suite at all.
    assert_eq!(
        broken.output.status.code(),
        Some(1),
        "{}{}",
        broken.stdout(),
        broken.stderr()
    );
    assert!(
        broken
            .stderr()
            .contains("WARNING: the bundled cluster runs with injected faults"),
        "{}",
        broken.stderr()
    );
    let target = broken.report["run"]["target"].as_str().unwrap();
    assert!(
        target.contains("injected faults: deployment-ignores-max-unavailable"),
        "the report says the cluster was broken on purpose: {target}"
    );

    let case = broken.case();
    assert_eq!(case["status"], "failed", "{case:#}");
    assert!(case["behaviours"]
        .as_array()
        .unwrap()
        .iter()
        .any(|b| b == "B-WL-008"));
    assert_eq!(broken.behaviour("B-WL-008")["status"], "failing");

    let failure = &case["failure"];
    let step = failure["step"].as_str().unwrap();
    assert!(
        step.contains("at every moment the tracked replicasets had at most 13 wanted and at least 8 available"),
        "the invariant step failed, not an earlier one: {failure:#}"
    );
    let message = failure["message"].as_str().unwrap();
    // Which invariant, which object and its resourceVersion, the observed count against the
    // bound, and each ReplicaSet's part at that moment.
    assert!(
        message.starts_with(
            "invariant broken: at every moment the replicasets with label \"app=seed\" had at most 13 wanted and at least 8 available"
        ),
        "{message}"
    );
    let line = message
        .lines()
        .find(|l| l.contains("when ReplicaSet seed-"))
        .unwrap_or_else(|| panic!("no moment of breaking in: {message}"));
    let rv = line
        .split("changed (resourceVersion ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .unwrap_or_else(|| panic!("no resourceVersion in: {line}"));
    assert!(rv.parse::<u64>().is_ok(), "{line}");
    let bound = line.rsplit_once('(').map(|(_, b)| b).unwrap_or_default();
    let available: u32 = bound
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no observed count in: {line}"));
    assert!(
        available < 8
            && bound == format!("{available} available < 8)")
            && line.contains(&format!("wanted and {available} available (")),
        "{line}"
    );
    assert!(message.contains("objects then: seed-"), "{message}");

    // Each place a person reads shows the behaviour with the failure.
    let stdout = broken.stdout();
    assert!(
        stdout.contains("— A 10-replica rollout stays within 13 replicas and 8 available throughout [B-WL-007 B-WL-008]")
            && stdout.contains("invariant broken:"),
        "{stdout}"
    );
    assert!(
        broken
            .junit
            .contains("message=\"[B-WL-007 B-WL-008] invariant broken:"),
        "{}",
        broken.junit
    );

    // The control: the same scenario on a correct cluster passes.
    let correct = conformance(&["--features", ROLLING], &dir.path().join("correct"));
    assert_eq!(
        correct.output.status.code(),
        Some(0),
        "{}{}",
        correct.stdout(),
        correct.stderr()
    );
    assert_eq!(correct.case()["status"], "passed");
    assert_eq!(correct.behaviour("B-WL-008")["status"], "passing");
    assert!(!correct.stderr().contains("injected faults"));
}

#[test]
fn endpoints_listing_unready_pods_fail_the_readiness_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let broken = conformance(
        &[
            "--inject-fault",
            "endpoints-include-unready",
            "--features",
            "features/networking/endpoints.feature",
            "--tags",
            "@B-NET-008",
        ],
        dir.path(),
    );
    assert_eq!(
        broken.output.status.code(),
        Some(1),
        "{}{}",
        broken.stdout(),
        broken.stderr()
    );
    let case = broken.case();
    assert_eq!(case["status"], "failed", "{case:#}");
    assert_eq!(broken.behaviour("B-NET-008")["status"], "failing");
    let message = case["failure"]["message"].as_str().unwrap();
    // The pod that is not Ready yet shows up among the ready ones.
    let ready = message
        .split("list not-ready pods none, expected warming; they list ready pods ")
        .nth(1)
        .and_then(|r| r.split(" and not-ready").next())
        .unwrap_or_else(|| panic!("no readiness evidence in: {message}"));
    assert!(
        ready.split(", ").any(|p| p == "warming")
            && message.contains("of service \"web\" (resourceVersion "),
        "{message}"
    );
}

#[test]
fn faults_are_refused_for_a_cluster_kubeproof_did_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kubeproof"))
        .args([
            "conformance",
            "--inject-fault",
            "deployment-ignores-max-unavailable",
            "--kubeconfig",
        ])
        .arg(dir.path().join("kubeconfig"))
        .output()
        .expect("the kubeproof binary runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--inject-fault") && err.contains("--kubeconfig"),
        "{err}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_kubeproof"))
        .args(["conformance", "--inject-fault", "no-such-fault"])
        .output()
        .expect("the kubeproof binary runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("deployment-ignores-max-unavailable")
            && err.contains("endpoints-include-unready"),
        "a wrong name lists the faults: {err}"
    );
}
