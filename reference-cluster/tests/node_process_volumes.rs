//! The `process` runtime's live volume updates and service environment variables, end to end:
//! a bundled API server, one node agent running busybox processes, objects changed through the
//! API and the result read inside the container with `pods/exec`. Without busybox on the host
//! the tests print why and return.

#[path = "node_support/process.rs"]
mod process_support;
#[path = "node_support/mod.rs"]
mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::{Api, Patch, PatchParams, PostParams};
use process_support::{no_busybox, start_with, Env};
use serde_json::{json, Value};
use support::create_config_map;

/// A cluster with one process node, or `None` (with the reason printed) on a host without
/// busybox.
async fn start() -> Option<Env> {
    if let Some(reason) = no_busybox() {
        eprintln!("skipped: {reason}");
        return None;
    }
    Some(
        start_with(|fleet| {
            assert!(
                fleet.timings.sync_frequency < Duration::from_secs(60),
                "tests shorten syncFrequency"
            )
        })
        .await,
    )
}

/// Creates a pod with `labels` and waits until it runs.
async fn create_running(env: &Env, name: &str, spec: Value, labels: Value) {
    env.create_with_labels(name, labels, spec).await;
    env.running(name).await;
}

/// Runs `sh -c script` in the pod; its stdout.
async fn sh(env: &Env, pod: &str, script: &str) -> String {
    env.exec(pod, &["sh", "-c", script]).await.0
}

/// Waits until `sh -c script` prints `want`; panics with the last output otherwise.
async fn until_output(env: &Env, pod: &str, script: &str, want: &str) {
    let mut last = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while tokio::time::Instant::now() < deadline {
        last = sh(env, pod, script).await;
        if last == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("`{script}` in pod {pod} never printed {want:?}; last output {last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_map_and_downward_api_volumes_follow_updates_but_sub_paths_do_not() {
    let Some(env) = start().await else {
        return;
    };
    create_config_map(
        &env.client,
        "settings",
        json!({"mode": "fast", "level": "1"}),
    )
    .await;
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), "default");
    let base = format!("/tmp/kp-volume-test-{}", uuid::Uuid::new_v4().simple());
    create_running(
        &env,
        "reader",
        json!({
            "volumes": [
                {"name": "cfg", "configMap": {"name": "settings"}},
                {"name": "info", "downwardAPI": {"items": [
                    {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}}
            ],
            "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"],
                "volumeMounts": [
                    {"name": "cfg", "mountPath": format!("{base}/cfg"), "readOnly": true},
                    {"name": "cfg", "mountPath": format!("{base}/pinned-mode"), "subPath": "mode"},
                    {"name": "info", "mountPath": format!("{base}/info")}
                ]}]
        }),
        json!({"tier": "one"}),
    )
    .await;
    let cfg = format!("{base}/cfg");
    assert_eq!(sh(&env, "reader", &format!("cat {cfg}/mode")).await, "fast");
    // The kubelet's layout: keys are links into `..data`, which names one version directory.
    let listing = sh(
        &env,
        "reader",
        &format!("readlink {cfg}/mode; readlink {cfg}/..data"),
    )
    .await;
    let mut lines = listing.lines();
    assert_eq!(lines.next(), Some("..data/mode"), "{listing}");
    assert!(
        lines.next().is_some_and(|v| v.starts_with("..20")),
        "{listing}"
    );

    cms.patch(
        "settings",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"mode": "slow", "level": null, "extra": "x"}})),
    )
    .await
    .unwrap();
    until_output(&env, "reader", &format!("cat {cfg}/mode"), "slow").await;
    // The whole set changed at once: the removed key is gone, the new one is there.
    until_output(
        &env,
        "reader",
        &format!("ls {cfg} | tr '\\n' ' '"),
        "extra mode ",
    )
    .await;
    // A subPath mount binds one version's file and keeps it (a bind mount needs the mount
    // namespace; without it the runtime links the path, see PROCESS.md).
    if kubeproof_refcluster::node::process::launch::namespaces_work() {
        assert_eq!(
            sh(&env, "reader", &format!("cat {base}/pinned-mode")).await,
            "fast"
        );
    } else {
        eprintln!("no mount namespaces on this host: the subPath check is skipped");
    }

    // Labels reach a downward API volume the same way.
    assert_eq!(
        sh(&env, "reader", &format!("cat {base}/info/labels")).await,
        "tier=\"one\""
    );
    env.pods()
        .patch(
            "reader",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"tier": "two"}}})),
        )
        .await
        .unwrap();
    until_output(
        &env,
        "reader",
        &format!("cat {base}/info/labels"),
        "tier=\"two\"",
    )
    .await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_get_service_variables_unless_links_are_off() {
    let Some(env) = start().await else {
        return;
    };
    let services: Api<Service> = Api::namespaced(env.client.clone(), "default");
    let svc = services
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "my-svc"}, "spec": {
                "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}}))
            .unwrap(),
        )
        .await
        .unwrap();
    let ip = svc.spec.unwrap().cluster_ip.unwrap();
    let kubernetes = services.get("kubernetes").await.unwrap();
    let master_ip = kubernetes.spec.unwrap().cluster_ip.unwrap();
    create_running(
        &env,
        "linked",
        json!({"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"],
        "env": [
            {"name": "MY_SVC_SERVICE_PORT", "value": "mine"},
            {"name": "TARGET", "value": "$(MY_SVC_SERVICE_HOST):$(MY_SVC_PORT_80_TCP_PORT)"}
        ]}]}),
        json!({}),
    )
    .await;
    let out = sh(
&env,
            "linked",
            "echo $MY_SVC_SERVICE_HOST $MY_SVC_SERVICE_PORT $MY_SVC_SERVICE_PORT_HTTP $MY_SVC_PORT $MY_SVC_PORT_80_TCP_PROTO $TARGET $KUBERNETES_SERVICE_HOST $KUBERNETES_SERVICE_PORT",
        )
        .await;
    assert_eq!(
        out,
        format!("{ip} mine 80 tcp://{ip}:80 tcp {ip}:80 {master_ip} 443\n"),
        "explicit env wins and may refer to service variables"
    );
    create_running(
        &env,
        "unlinked",
        json!({"enableServiceLinks": false,
            "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"]}]}),
        json!({}),
    )
    .await;
    let out = sh(
        &env,
        "unlinked",
        "echo \"[$MY_SVC_SERVICE_HOST] $KUBERNETES_SERVICE_HOST $KUBERNETES_PORT_443_TCP\"",
    )
    .await;
    assert_eq!(
        out,
        format!("[] {master_ip} tcp://{master_ip}:443\n"),
        "without links only the master service's variables are set"
    );
    env.finish().await;
}
