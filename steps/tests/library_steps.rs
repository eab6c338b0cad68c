//! Steps of the library that need no scheduler or node agents, run through the runner against
//! the bundled API-only cluster: impersonation, `for N seconds`, node changes (and their
//! restoration after the scenario), pod counts, eviction, and the `workloads` capability.

use kubeproof_refcluster::cluster::{ClusterConfig, RunningCluster};
use kubeproof_report::Status;
use kubeproof_steps::runner::{self, RunOptions};
use serde_json::Value;

const FEATURE: &str = r#"Feature: Library steps

  Scenario: impersonated requests are authorized as that identity
    When I try to create as user "nobody":
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: denied
      """
    Then the last request failed with code 403 and reason "Forbidden" and message containing "User \"nobody\" cannot create resource \"configmaps\""
    When I create as user "alice" in groups "dev, system:masters":
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: allowed
      data:
        k: v
      """
    Then the last request succeeded with code 201
    And configmap "allowed" has "{.data.k}" equal to "v" for 1 second
    When I try to get configmap "allowed" as user "nobody" in group "dev"
    Then the last request failed with code 403
    When I try to delete configmap "allowed" as user "nobody"
    Then the last request failed with code 403
    And configmap "allowed" exists for 0.5 seconds

  Scenario: a for-assertion fails at the first poll that differs
    When I create:
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: steady
      data:
        k: v
      """
    Then configmap "steady" has "{.data.k}" equal to "other" for 30 seconds

  @serial
  Scenario: node changes are made and undone after the scenario
    Given I remember the name of a Ready node as "node"
    When I cordon node "{{ node }}"
    And I label node "{{ node }}" with "kubeproof-test={{ suffix }}"
    And I add taint "kubeproof-test=x:NoSchedule" to node "{{ node }}"
    Then node "{{ node }}" matches:
      """
      metadata:
        labels:
          kubeproof-test: "{{ suffix }}"
      spec:
        unschedulable: true
        taints:
        - key: kubeproof-test
          value: x
          effect: NoSchedule
      """
    When I remove taint "kubeproof-test:NoSchedule" from node "{{ node }}"
    Then node "{{ node }}" has "{.spec.taints[*].key}" not equal to "kubeproof-test"

  Scenario: pending pods are counted and evicted
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: waiting
        labels:
          app: waiting
      spec:
        containers:
        - name: app
          image: nginx:1.26
      """
    Then there is 1 pod with label "app=waiting" in phase Pending for 1 second
    And there are 0 ready pods with label "app=waiting"
    When I remember the name of a pod with label "app=waiting" as "victim"
    And I evict pod "{{ victim }}"
    Then the last request succeeded with code 201
    And there are 0 pods with label "app=waiting" within 10 seconds

  @needs:workloads
  Scenario: needs pods that run
    Then the server version is 1.32
"#;

#[test]
fn library_steps_work_against_the_api_only_cluster() {
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
        let path = dir.path().join("features/library/steps.feature");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, FEATURE).unwrap();
        let opts = RunOptions {
            kubeconfig: Some(cluster.kubeconfig_path().to_path_buf()),
            target_name: Some("bundled".into()),
            features: vec![path],
            progress: false,
            ..RunOptions::default()
        };
        let outcome = runner::run(opts).await;
        let client = cluster.client().await.unwrap();
        let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(client);
        let nodes = nodes.list(&Default::default()).await.unwrap().items;
        cluster.shutdown().await;

        // Every node is back as it was: schedulable, no test label, no test taint.
        for n in &nodes {
            let v: Value = serde_json::to_value(n).unwrap();
            let name = v["metadata"]["name"].as_str().unwrap_or("?");
            assert_ne!(
                v.pointer("/spec/unschedulable"),
                Some(&Value::Bool(true)),
                "{name} still cordoned"
            );
            assert!(
                v.pointer("/metadata/labels/kubeproof-test").is_none(),
                "{name} keeps the test label"
            );
            assert!(
                v.pointer("/spec/taints")
                    .and_then(Value::as_array)
                    .is_none_or(|t| t.is_empty()),
                "{name} keeps taints: {v}"
            );
        }

        let report = outcome.unwrap().report;
        let case = |name: &str| {
            report
                .cases
                .iter()
                .find(|c| c.scenario == name)
                .unwrap_or_else(|| panic!("no case {name}"))
        };
        for name in [
            "impersonated requests are authorized as that identity",
            "node changes are made and undone after the scenario",
            "pending pods are counted and evicted",
        ] {
            let c = case(name);
            assert_eq!(c.status, Status::Passed, "{name}: {:?}", c.failure);
        }
        let steady = case("a for-assertion fails at the first poll that differs");
        assert_eq!(steady.status, Status::Failed);
        let msg = &steady.failure.as_ref().unwrap().message;
        assert!(
            msg.contains("{.data.k} is \"v\", expected equal to \"other\" (held for ")
                && msg.ends_with("of the required 30.0 s)"),
            "{msg}"
        );
        let skipped = case("needs pods that run");
        assert_eq!(skipped.status, Status::Skipped);
        let reason = skipped.reason.as_deref().unwrap_or("");
        assert!(
            reason.contains("workloads (no Ready nodes: the cluster runs no node agents"),
            "{reason}"
        );
    });
}
