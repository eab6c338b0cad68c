//! `kubectl attach` against simulated nodes: the container's log lines from the moment of
//! attaching, stdin echoed by a `stdin: true` container, the end of the session when the
//! container exits (SIM.md, "Attach"). Needs kubectl 1.32 on the PATH, as `node_exec.rs`.

#[path = "node_support/mod.rs"]
mod support;

use std::time::Duration;

use serde_json::json;
use support::{eventually, kubectl, kubectl_with_input, start, Env};

async fn running(env: &Env, pod: &str) {
    let up = eventually(Duration::from_secs(20), || async {
        let p = env.pods().get(pod).await.ok()?;
        let running = p
            .status?
            .container_statuses?
            .iter()
            .all(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()));
        running.then_some(())
    })
    .await;
    assert!(up.is_some(), "pod {pod} never ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_attach_streams_output_and_echoes_stdin_until_the_container_exits() {
    let env = start(1).await;
    let kc = env.cluster.kubeconfig_path().to_path_buf();
    env.create_pod(
        "talker",
        "node-0",
        json!({"sim.kubeproof.dev/log-every": "200ms", "sim.kubeproof.dev/exit-after": "4s"}),
        json!({"restartPolicy": "Never",
               "containers": [{"name": "app", "image": "busybox"}]}),
    )
    .await;
    env.create_pod(
        "crasher",
        "node-0",
        json!({"sim.kubeproof.dev/crash": "true", "sim.kubeproof.dev/exit-after": "100ms"}),
        json!({"containers": [{"name": "app", "image": "busybox"}]}),
    )
    .await;
    running(&env, "talker").await;

    let (code, out, err) = kubectl(&kc, &["attach", "talker", "-c", "app"]).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("talker app tick "), "{out}");
    assert!(
        out.ends_with("talker app exited with code 0\n"),
        "the session ends with the container: {out}"
    );
    assert!(
        !out.contains("started (attempt"),
        "only what is written after attaching: {out}"
    );

    env.create_pod(
        "echoer",
        "node-0",
        json!({"sim.kubeproof.dev/exit-after": "4s"}),
        json!({"restartPolicy": "Never",
               "containers": [{"name": "app", "image": "busybox", "stdin": true}]}),
    )
    .await;
    running(&env, "echoer").await;
    let (code, out, err) = kubectl_with_input(
        &kc,
        &["attach", "-i", "echoer", "-c", "app"],
        b"hello there\n",
    )
    .await;
    assert!(out.contains("hello there\n"), "{out} / {err}");
    assert_eq!(code, Some(0));

    // A crash-looping container is not running most of the time: the kubelet cannot find it.
    let refused = eventually(Duration::from_secs(20), || async {
        let (code, _, err) = kubectl(&kc, &["attach", "crasher", "-c", "app"]).await;
        (code == Some(1) && err.contains("container not found (\"app\")")).then_some(err)
    })
    .await;
    assert!(refused.is_some(), "attaching to a waiting container fails");

    let (code, _, err) = kubectl(&kc, &["attach", "talker", "-c", "app"]).await;
    assert_eq!(code, Some(1));
    assert!(
        err.contains("cannot attach a container in a completed pod; current phase is Succeeded"),
        "{err}"
    );
    env.finish().await;
}
