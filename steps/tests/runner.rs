//! The suite tested on itself: the runner against the bundled cluster with features written
//! to pass, to fail, to be skipped and to be flaky, checking that each is reported as such,
//! with the evidence a user needs.

use std::path::Path;

use kubeproof_refcluster::cluster::{ClusterConfig, RunningCluster};
use kubeproof_report::Status;
use kubeproof_steps::runner::{self, RunOptions};

const FEATURE: &str = r#"Feature: Self test

  Scenario: passes
    When I create:
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: fine
      data:
        k: v
      """
    Then configmap "fine" has "{.data.k}" equal to "v"

  @B-API-010
  Scenario: fails with a diff
    When I create:
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: wrong
      data:
        colour: red
      """
    Then configmap "wrong" matches:
      """
      data:
        colour: blue
      """

  @needs:process-runtime
  Scenario: needs real processes
    Then the server version is 1.32

  Scenario: flaky
    When I request POST "/api/v1/namespaces/default/configmaps"
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: kubeproof-selftest-flaky-{{ run }}
      """
    Then the last request failed with code 409
"#;

fn write_feature(dir: &Path, run: &str) -> std::path::PathBuf {
    let path = dir.join("features/selftest/self.feature");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    // The flaky scenario's marker lives outside any scenario namespace so that it survives
    // the first attempt's cleanup; the name is unique per test run.
    std::fs::write(&path, FEATURE.replace("{{ run }}", run)).unwrap();
    path
}

#[test]
fn the_runner_reports_pass_fail_skip_and_flaky_with_evidence() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let cluster = RunningCluster::start(ClusterConfig::for_tests(dir.path().join("cluster")))
            .await
            .unwrap();
        let run = kubeproof_steps::world::random_suffix(6);
        let feature = write_feature(dir.path(), &run);
        let report_dir = dir.path().join("reports");
        let opts = RunOptions {
            kubeconfig: Some(cluster.kubeconfig_path().to_path_buf()),
            target_name: Some("bundled".into()),
            features: vec![feature],
            retries: 1,
            report_dir: Some(report_dir.clone()),
            progress: false,
            ..RunOptions::default()
        };
        let outcome = runner::run(opts).await;
        // Every scenario namespace was deleted after its scenario, failed ones included.
        let client = cluster.client().await.unwrap();
        let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client);
        let left: Vec<String> = namespaces
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|n| {
                n.metadata
                    .name
                    .as_deref()
                    .is_some_and(|x| x.starts_with("kp-"))
            })
            .filter(|n| n.metadata.deletion_timestamp.is_none())
            .filter_map(|n| n.metadata.name)
            .collect();
        cluster.shutdown().await;
        assert!(left.is_empty(), "scenario namespaces left behind: {left:?}");
        let outcome = outcome.unwrap();
        let report = &outcome.report;
        let status = |name: &str| {
            report
                .cases
                .iter()
                .find(|c| c.scenario == name)
                .map(|c| c.status)
        };

        assert_eq!(status("passes"), Some(Status::Passed));
        assert_eq!(status("fails with a diff"), Some(Status::Failed));
        assert_eq!(status("needs real processes"), Some(Status::Skipped));
        assert_eq!(status("flaky"), Some(Status::Flaky));
        assert!(!report.succeeded());
        assert_eq!(
            report
                .run
                .server_version
                .as_deref()
                .map(|v| v.starts_with("v1.32.")),
            Some(true)
        );

        let failed = report
            .cases
            .iter()
            .find(|c| c.status == Status::Failed)
            .unwrap();
        let f = failed.failure.as_ref().unwrap();
        assert!(f.step.contains("configmap \"wrong\" matches"), "{}", f.step);
        assert!(
            f.message
                .contains(".data.colour: expected \"blue\", found \"red\""),
            "{}",
            f.message
        );
        assert_eq!(
            f.diff.as_deref(),
            Some("--- expected\n+++ actual\n data:\n-  colour: blue\n+  colour: red\n")
        );
        assert_eq!(failed.behaviours, vec!["B-API-010"]);
        // A failing case fails its behaviour in the coverage.
        let cov = report.coverage(kubeproof_report::Catalogue::embedded());
        let b010 = cov.iter().find(|b| b.id == "B-API-010").unwrap();
        assert_eq!(b010.status, kubeproof_report::CoverageStatus::Failing);

        let skipped = report
            .cases
            .iter()
            .find(|c| c.status == Status::Skipped)
            .unwrap();
        assert!(
            skipped
                .reason
                .as_deref()
                .unwrap()
                .contains("process-runtime"),
            "{:?}",
            skipped.reason
        );
        let flaky = report
            .cases
            .iter()
            .find(|c| c.status == Status::Flaky)
            .unwrap();
        assert_eq!(flaky.retries, 1);
        assert!(
            flaky.failure.as_ref().unwrap().message.contains("code 201"),
            "{:?}",
            flaky.failure
        );

        for f in [
            "report.json",
            "junit.xml",
            "cucumber.json",
            "report.md",
            "report.html",
            "conformance.yaml",
        ] {
            assert!(report_dir.join(f).is_file(), "{f} written");
        }
        let cucumber: serde_json::Value = serde_json::from_str(&outcome.cucumber_json).unwrap();
        assert!(cucumber.as_array().is_some_and(|a| !a.is_empty()));
    });
}
