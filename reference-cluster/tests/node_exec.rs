//! `kubectl exec` against simulated nodes: the sim interpreter's documented commands (SIM.md,
//! "Exec") over the API server's `pods/exec`, which tunnels the client's WebSocket
//! (`v5.channel.k8s.io`) to the fleet's kubelet server; with kube-rs (`Api::exec`) and with
//! kubectl 1.32.

#[path = "node_support/mod.rs"]
mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams};
use serde_json::json;
use support::{eventually, kubectl, kubectl_with_input, start, Env};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Runs `command` in `pod` with kube-rs; returns stdout, stderr and the final Status.
async fn exec(
    pods: &Api<Pod>,
    pod: &str,
    command: &[&str],
    ap: &AttachParams,
    stdin: Option<&str>,
) -> (
    String,
    String,
    Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Status>,
) {
    let mut attached = pods
        .exec(pod, command.to_vec(), ap)
        .await
        .unwrap_or_else(|e| panic!("exec {command:?} in {pod} is accepted: {e}"));
    if let Some(text) = stdin {
        let mut w = attached.stdin().expect("stdin was asked for");
        w.write_all(text.as_bytes()).await.unwrap();
        w.shutdown().await.unwrap();
        drop(w);
    }
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut r) = attached.stdout() {
        r.read_to_string(&mut out).await.unwrap();
    }
    if let Some(mut r) = attached.stderr() {
        r.read_to_string(&mut err).await.unwrap();
    }
    let status = attached.take_status().unwrap().await;
    (out, err, status)
}

fn exit_code(status: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Status) -> Option<String> {
    status
        .details
        .as_ref()?
        .causes
        .as_ref()?
        .iter()
        .find_map(|c| {
            (c.reason.as_deref() == Some("ExitCode")).then(|| c.message.clone().unwrap_or_default())
        })
}

/// A running pod with an env, and a side container that has exited for good.
async fn shell_pod(env: &Env, name: &str) {
    env.create_pod(
        name,
        "node-0",
        json!({"sim.kubeproof.dev/exit-after.side": "200ms"}),
        json!({
            "restartPolicy": "Never",
            "containers": [
                {"name": "app", "image": "busybox", "env": [
                    {"name": "GREETING", "value": "hi there"},
                    {"name": "FROM_FIELD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
                ]},
                {"name": "side", "image": "busybox"}
            ]
        }),
    )
    .await;
    let pods = env.pods();
    eventually(Duration::from_secs(30), || async {
        let p = pods.get(name).await.ok()?;
        let statuses = p.status?.container_statuses?;
        let state = |c: &str| statuses.iter().find(|s| s.name == c)?.state.clone();
        (state("app")?.running.is_some() && state("side")?.terminated.is_some()).then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("{name}: app runs and side has exited"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_exec_runs_the_sim_interpreter() {
    let env = start(1).await;
    shell_pod(&env, "shell").await;
    let pods = env.pods();
    let app = AttachParams::default().container("app");

    let (out, err, status) = exec(&pods, "shell", &["echo", "hello"], &app, None).await;
    assert_eq!((out.as_str(), err.as_str()), ("hello\n", ""));
    assert_eq!(status.and_then(|s| s.status).as_deref(), Some("Success"));

    let (_, _, status) = exec(&pods, "shell", &["sh", "-c", "exit 3"], &app, None).await;
    let status = status.expect("a final status");
    assert_eq!(status.reason.as_deref(), Some("NonZeroExitCode"));
    assert_eq!(exit_code(&status).as_deref(), Some("3"));

    let (out, _, status) = exec(
        &pods,
        "shell",
        &["cat"],
        &AttachParams::default()
            .container("app")
            .stdin(true)
            .stderr(false),
        Some("line one\nline two\n"),
    )
    .await;
    assert_eq!(out, "line one\nline two\n");
    assert_eq!(status.and_then(|s| s.status).as_deref(), Some("Success"));

    let (out, _, _) = exec(&pods, "shell", &["env"], &app, None).await;
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOSTNAME=shell",
            "GREETING=hi there",
            "HOME=/root"
        ]
    );
    let (out, err, status) = exec(
        &pods,
        "shell",
        &[
            "sh",
            "-c",
            "cat /etc/hostname && hostname; nope || echo \"$?\"",
        ],
        &app,
        None,
    )
    .await;
    assert_eq!(out, "shell\nshell\n127\n");
    assert_eq!(err, "sh: nope: not found\n");
    assert_eq!(status.and_then(|s| s.status).as_deref(), Some("Success"));

    let (_, _, status) = exec(&pods, "shell", &["nope"], &app, None).await;
    let message = status.and_then(|s| s.message).unwrap_or_default();
    assert!(
        message.contains("OCI runtime exec failed: exec failed: unable to start container process: exec: \"nope\": executable file not found in $PATH: unknown"),
        "{message}"
    );

    env.create_unbound_pod("unbound", json!({}), json!({}))
        .await;
    let refused = pods
        .exec("unbound", vec!["true"], &AttachParams::default())
        .await
        .err()
        .map(|e| e.to_string());
    assert!(
        refused.as_deref().is_some_and(|e| e.contains("400")),
        "an unscheduled pod refuses exec with 400: {refused:?}"
    );

    let side = AttachParams::default().container("side");
    let (_, _, status) = exec(&pods, "shell", &["echo", "x"], &side, None).await;
    let status = status.expect("a final status");
    assert_eq!(status.reason.as_deref(), Some("InternalError"));
    assert_eq!(
        status.message.as_deref(),
        Some(
            "Internal error occurred: unable to upgrade connection: container not found (\"side\")"
        )
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_exec_prints_output_and_exit_codes() {
    let env = start(1).await;
    let kc = env.cluster.kubeconfig_path().to_path_buf();
    shell_pod(&env, "shell").await;

    let (code, out, err) = kubectl(&kc, &["exec", "shell", "-c", "app", "--", "echo", "hi"]).await;
    assert_eq!((code, out.as_str()), (Some(0), "hi\n"), "{err}");

    let (code, _, err) = kubectl(
        &kc,
        &["exec", "shell", "-c", "app", "--", "sh", "-c", "exit 3"],
    )
    .await;
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("command terminated with exit code 3"), "{err}");

    // `-i` streams stdin; its end reaches `cat` as the v5 close of channel 0.
    let (code, out, err) = kubectl_with_input(
        &kc,
        &["exec", "-i", "shell", "-c", "app", "--", "cat"],
        b"piped in\n",
    )
    .await;
    assert_eq!((code, out.as_str()), (Some(0), "piped in\n"), "{err}");

    let (code, _, err) = kubectl(&kc, &["exec", "shell", "-c", "app", "--", "nope"]).await;
    assert_eq!(code, Some(1));
    assert!(
        err.contains("exec: \"nope\": executable file not found in $PATH: unknown"),
        "{err}"
    );

    let (code, _, err) = kubectl(&kc, &["exec", "shell", "-c", "side", "--", "echo", "x"]).await;
    assert_eq!(code, Some(1));
    assert!(
        err.contains("unable to upgrade connection: container not found (\"side\")"),
        "{err}"
    );

    let (code, _, err) = kubectl(&kc, &["exec", "shell", "-c", "nope", "--", "echo", "x"]).await;
    assert_eq!(code, Some(1));
    assert!(
        err.contains("container nope is not valid for pod shell"),
        "{err}"
    );
    env.finish().await;
}
