//! The scenarios that need real processes (`@needs:process-runtime`) are skipped by the default
//! suite, whose bundled cluster runs simulated nodes. Here they run as a user would run them:
//! `kubeproof conformance --runtime process` starts the bundled cluster with the process runtime
//! and every selected scenario must run and pass — a skip fails this test too.
//!
//! Run with `cargo test --features conformance --test process_runtime_suite`.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

const FEATURES: &[&str] = &[
    "features/nodes/process-runtime.feature",
    "features/nodes/volume-updates-and-service-env.feature",
];

/// Scenarios in `path` (the runner selects every one of them here).
fn scenarios_in(root: &std::path::Path, path: &str) -> usize {
    let text = std::fs::read_to_string(root.join(path)).expect("the feature file exists");
    text.lines()
        .filter(|l| l.trim_start().starts_with("Scenario:"))
        .count()
}

#[test]
fn process_runtime_scenarios_run_and_pass_on_real_processes() {
    // The process runtime's `busybox` image is the host's static busybox (`.ci/run` installs
    // it); without it every container would end in ErrImagePull.
    if Command::new("busybox").arg("true").status().is_err() {
        eprintln!("SKIPPED: no busybox on this host (apt-get install busybox-static)");
        return;
    }
    // The OOM scenario needs memory cgroups, which the runtime creates only as root.
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED: the process runtime enforces memory limits only when run as root");
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kubeproof"));
    cmd.current_dir(&root)
        .args(["conformance", "--runtime", "process", "--report-dir"])
        .arg(dir.path());
    for f in FEATURES {
        cmd.args(["--features", f]);
    }
    let output = cmd.output().expect("the kubeproof binary runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("report.json"))
            .unwrap_or_else(|e| panic!("no report.json ({e}); kubeproof said:\n{said}")),
    )
    .expect("report.json is JSON");
    assert_eq!(output.status.code(), Some(0), "{said}");

    let cases = report["cases"].as_array().expect("cases");
    let expected: usize = FEATURES.iter().map(|f| scenarios_in(&root, f)).sum();
    assert_eq!(cases.len(), expected, "every scenario is reported: {said}");
    for case in cases {
        assert_eq!(
            case["status"], "passed",
            "{} ran on real processes and passed: {case:#}",
            case["scenario"]
        );
    }
}
