//! The `process` runtime end to end: a bundled cluster (API server) with one node agent whose
//! containers are real busybox processes; pods created through the API, logs read through
//! `pods/log`, exec through `pods/exec` (kube-rs), as a user would. Needs busybox on the host
//! (`apt-get install busybox-static`); without it the tests say so and fail.

#[path = "node_support/process.rs"]
mod process_support;
#[path = "node_support/mod.rs"]
mod support;

use std::time::Duration;

use kube::api::DeleteParams;
use process_support::start;
use serde_json::json;
use support::{create_config_map, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busybox_pods_log_exit_restart_read_env_and_stop_with_sigterm() {
    let env = start().await;
    let pods = env.pods();

    // Logs and the exit code of a real process, then CrashLoopBackOff and --previous.
    env.create(
        "crash",
        json!({"containers": [{"name": "c", "image": "busybox:1.36",
            "command": ["sh", "-c", "echo hi; echo oops >&2; sleep 1; exit 3"]}]}),
    )
    .await;
    let cs = env
        .until_status("crash", "the first exit", |cs| {
            cs["lastState"]["terminated"]["exitCode"] == 3
                || cs["state"]["terminated"]["exitCode"] == 3
        })
        .await;
    let ended = if cs["state"]["terminated"].is_object() {
        &cs["state"]["terminated"]
    } else {
        &cs["lastState"]["terminated"]
    };
    assert_eq!(ended["reason"], "Error", "{cs}");
    assert!(ended["containerID"]
        .as_str()
        .unwrap()
        .starts_with("kubeproof-process://"));
    let cs = env
        .until_status("crash", "CrashLoopBackOff", |cs| {
            cs["state"]["waiting"]["reason"] == "CrashLoopBackOff"
                && cs["restartCount"].as_i64() >= Some(1)
        })
        .await;
    assert_eq!(cs["lastState"]["terminated"]["exitCode"], 3);
    let previous = eventually(Duration::from_secs(10), || async {
        let text = env.logs("crash", true).await;
        (text.contains("hi") && text.contains("oops")).then_some(text)
    })
    .await
    .expect("logs --previous show the last attempt");
    // stdout and stderr are two pipes: their lines interleave in arrival order.
    let mut lines: Vec<&str> = previous.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["hi", "oops"], "{previous}");

    // Env from a ConfigMap, a field and a literal; a working directory.
    create_config_map(
        &env.client,
        "settings",
        json!({"color": "blue", "size": "L"}),
    )
    .await;
    env.create(
        "envy",
        json!({"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox",
            "workingDir": "/tmp",
            "command": ["sh", "-c", "echo color=$COLOR size=$CFG_size pod=$POD ip=$POD_IP greeting=$(GREETING) cwd=$(pwd)"],
            "envFrom": [{"prefix": "CFG_", "configMapRef": {"name": "settings"}}],
            "env": [
                {"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "color"}}},
                {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "GREETING", "value": "hello $(COLOR)"}
            ]}]}),
    )
    .await;
    let cs = env
        .until_status("envy", "completion", |cs| {
            cs["state"]["terminated"].is_object()
        })
        .await;
    assert_eq!(cs["state"]["terminated"]["reason"], "Completed", "{cs}");
    let text = env.logs("envy", false).await;
    assert!(
        // Clusters running at once on one host get distinct pod ranges inside 127.0.0.0/8.
        text.starts_with("color=blue size=L pod=envy ip=127.")
            && text.trim_end().ends_with("greeting=hello blue cwd=/tmp"),
        "{text}"
    );

    // Deletion sends SIGTERM: the trap writes a file before the process exits.
    let marker = env.dir.path().join("got-term");
    env.create(
        "trapper",
        json!({"terminationGracePeriodSeconds": 5,
            "containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c",
            format!("trap 'echo term > {}; exit 0' TERM; echo ready; while true; do sleep 0.1; done", marker.display())]}]}),
    )
    .await;
    env.running("trapper").await;
    eventually(Duration::from_secs(10), || async {
        env.logs("trapper", false)
            .await
            .contains("ready")
            .then_some(())
    })
    .await
    .expect("the trap is installed");
    pods.delete("trapper", &DeleteParams::default())
        .await
        .unwrap();
    eventually(Duration::from_secs(20), || async {
        pods.get_opt("trapper").await.ok()?.is_none().then_some(())
    })
    .await
    .expect("the pod goes away after its process ended");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "term\n");

    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_missing_images_and_executables_and_liveness() {
    let env = start().await;
    env.create(
        "shell",
        json!({"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"],
            "env": [{"name": "WHO", "value": "proc"}]}]}),
    )
    .await;
    env.running("shell").await;
    let (out, err, status) = env
        .exec("shell", &["sh", "-c", "echo $WHO; echo err >&2; exit 7"])
        .await;
    let status = status.expect("a final status");
    assert_eq!((out.as_str(), err.as_str()), ("proc\n", "err\n"));
    assert_eq!(status.reason.as_deref(), Some("NonZeroExitCode"));
    let code = status.details.unwrap().causes.unwrap()[0].message.clone();
    assert_eq!(code.as_deref(), Some("7"));

    // An image the table does not map cannot be pulled; a missing executable cannot start.
    env.create(
        "nope",
        json!({"containers": [{"name": "c", "image": "example.com/no/such:1"}]}),
    )
    .await;
    env.until_status("nope", "ImagePullBackOff", |cs| {
        cs["state"]["waiting"]["reason"] == "ImagePullBackOff"
    })
    .await;
    env.create(
        "noexec",
        json!({"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox", "command": ["no-such-tool"]}]}),
    )
    .await;
    let cs = env
        .until_status("noexec", "a start error", |cs| {
            cs["state"]["terminated"].is_object()
        })
        .await;
    assert_eq!(cs["state"]["terminated"]["reason"], "StartError", "{cs}");
    assert!(cs["state"]["terminated"]["message"]
        .as_str()
        .unwrap()
        .contains("exec: \"no-such-tool\": executable file not found in $PATH"));

    // A failing liveness probe restarts the container.
    env.create(
        "unwell",
        json!({"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"],
            "livenessProbe": {"exec": {"command": ["sh", "-c", "exit 1"]}, "periodSeconds": 1, "failureThreshold": 2}}],
            "terminationGracePeriodSeconds": 1}),
    )
    .await;
    let cs = env
        .until_status("unwell", "a liveness restart", |cs| {
            cs["restartCount"].as_i64() >= Some(1)
        })
        .await;
    assert_eq!(cs["lastState"]["terminated"]["reason"], "Error", "{cs}");
    env.finish().await;
}
