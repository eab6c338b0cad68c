//! `kubectl logs` against simulated nodes: the sim runtime's documented log lines (SIM.md,
//! "Logs") read through the API server's `pods/log`, which proxies to the fleet's kubelet
//! server; with kube-rs (`logs`, `log_stream`) and with kubectl 1.32.

#[path = "node_support/mod.rs"]
mod support;

use std::time::Duration;

use futures::{AsyncBufReadExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ContainerStatus, Node};
use kube::api::{Api, LogParams};
use serde_json::{json, Value};
use support::{eventually, start, Env};

impl Env {
    async fn status_until(
        &self,
        pod: &str,
        what: &str,
        check: impl Fn(&ContainerStatus) -> bool,
    ) -> ContainerStatus {
        let pods = self.pods();
        eventually(Duration::from_secs(30), || async {
            let p = pods.get(pod).await.ok()?;
            let s = p.status?.container_statuses?.into_iter().next()?;
            check(&s).then_some(s)
        })
        .await
        .unwrap_or_else(|| panic!("pod {pod}: {what} did not happen"))
    }

    async fn running(&self, pod: &str) {
        self.status_until(pod, "running", |s| {
            s.state.as_ref().is_some_and(|st| st.running.is_some())
        })
        .await;
    }

    /// The message of a request the API server refuses, with its code.
    async fn refused(&self, pod: &str, lp: &LogParams) -> (u16, String) {
        match self.pods().logs(pod, lp).await {
            Err(kube::Error::Api(s)) => (s.code, s.message.clone()),
            other => panic!("logs of {pod} with {lp:?} should be refused, got {other:?}"),
        }
    }
}

/// kubectl's success, stdout and stderr.
async fn kubectl(kubeconfig: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let (code, out, err) = support::kubectl(kubeconfig, args).await;
    (code == Some(0), out, err)
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

/// The number in a `<pod> <container> tick N` line.
fn tick(line: &str) -> Option<u64> {
    line.rsplit_once(" tick ")?.1.parse().ok()
}

/// A pod that talks: two annotation lines and a tick every 100ms.
fn talker() -> Value {
    json!({"sim.kubeproof.dev/logs.app": "hello\nworld", "sim.kubeproof.dev/log-every": "100ms"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_reads_follows_and_is_refused_like_upstream() {
    let env = start(1).await;
    let nodes: Api<Node> = Api::all(env.client.clone());
    let node = nodes.get("node-0").await.unwrap();
    let status = node.status.unwrap();
    let port = status
        .daemon_endpoints
        .unwrap()
        .kubelet_endpoint
        .unwrap()
        .port;
    assert!(
        port > 0 && port != 10250,
        "the node reports the fleet's kubelet server port, got {port}"
    );
    assert!(status
        .addresses
        .unwrap()
        .iter()
        .any(|a| a.type_ == "InternalIP" && a.address.starts_with("127.")));

    // The documented lines, in order.
    env.create_pod("talker", "node-0", talker(), json!({}))
        .await;
    env.running("talker").await;
    let pods = env.pods();
    let text = eventually(Duration::from_secs(10), || async {
        let t = pods.logs("talker", &LogParams::default()).await.ok()?;
        t.contains("tick 2").then_some(t)
    })
    .await
    .expect("ticks appear");
    let all = lines(&text);
    assert_eq!(
        all[..4],
        [
            "talker app started (attempt 0)",
            "hello",
            "world",
            "talker app tick 1"
        ]
    );
    for pair in all[3..].windows(2) {
        assert_eq!(tick(pair[1]), tick(pair[0]).map(|n| n + 1), "{text}");
    }

    // tailLines, timestamps, limitBytes.
    let tail = pods
        .logs(
            "talker",
            &LogParams {
                tail_lines: Some(2),
                ..LogParams::default()
            },
        )
        .await
        .unwrap();
    let tail = lines(&tail);
    assert_eq!(tail.len(), 2);
    assert!(tail.iter().all(|l| tick(l).is_some()), "{tail:?}");
    let stamped = pods
        .logs(
            "talker",
            &LogParams {
                timestamps: true,
                ..LogParams::default()
            },
        )
        .await
        .unwrap();
    let first = stamped.lines().next().unwrap();
    let (ts, rest) = first.split_once(' ').unwrap();
    assert!(
        ts.parse::<k8s_openapi::jiff::Timestamp>().is_ok() && ts.ends_with('Z'),
        "{first}"
    );
    assert_eq!(rest, "talker app started (attempt 0)");
    let cut = pods
        .logs(
            "talker",
            &LogParams {
                limit_bytes: Some(6),
                ..LogParams::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(cut, "talker");

    // Following sees lines written after it began.
    let mut follow = pods
        .log_stream(
            "talker",
            &LogParams {
                follow: true,
                tail_lines: Some(1),
                ..LogParams::default()
            },
        )
        .await
        .unwrap()
        .lines();
    let first = follow.try_next().await.unwrap().unwrap();
    let n0 = tick(&first).expect("the tail is a tick");
    let later = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let l = follow
                .try_next()
                .await
                .unwrap()
                .expect("the stream stays open");
            if tick(&l).is_some_and(|n| n >= n0 + 3) {
                return l;
            }
        }
    })
    .await
    .expect("followed ticks keep coming");
    assert!(later.starts_with("talker app tick "));
    let streams = || env.stats.snapshot().log_streams;
    eventually(Duration::from_secs(10), || async {
        (streams() == 1).then_some(())
    })
    .await
    .expect("the follow is the kubelet server's only open stream");
    drop(follow);
    eventually(Duration::from_secs(10), || async {
        (streams() == 0).then_some(())
    })
    .await
    .expect("a client leaving ends the follow on the node too");

    // A follow ends with the container: its last line is the exit line.
    env.create_pod(
        "short",
        "node-0",
        json!({"sim.kubeproof.dev/log-every": "100ms", "sim.kubeproof.dev/exit-after": "1500ms",
               "sim.kubeproof.dev/exit-code": "3"}),
        json!({"restartPolicy": "Never"}),
    )
    .await;
    env.running("short").await;
    let stream = pods
        .log_stream(
            "short",
            &LogParams {
                follow: true,
                ..LogParams::default()
            },
        )
        .await
        .unwrap();
    let followed: Vec<String> = tokio::time::timeout(
        Duration::from_secs(20),
        stream.lines().try_collect::<Vec<String>>(),
    )
    .await
    .expect("the follow ends when the container exits")
    .unwrap();
    assert_eq!(followed[0], "short app started (attempt 0)");
    assert_eq!(
        followed.last().map(String::as_str),
        Some("short app exited with code 3")
    );
    assert!(followed[1..followed.len() - 1]
        .iter()
        .all(|l| tick(l).is_some()));
    let after = pods.logs("short", &LogParams::default()).await.unwrap();
    assert_eq!(lines(&after), followed, "the log stays readable after exit");

    // previous=true after crash restarts.
    env.create_pod(
        "crasher",
        "node-0",
        json!({"sim.kubeproof.dev/crash": "true", "sim.kubeproof.dev/exit-after": "300ms",
               "sim.kubeproof.dev/logs": "boom"}),
        json!({}),
    )
    .await;
    env.status_until("crasher", "two restarts", |s| s.restart_count >= 2)
        .await;
    let previous = pods
        .logs(
            "crasher",
            &LogParams {
                previous: true,
                ..LogParams::default()
            },
        )
        .await
        .unwrap();
    let previous = lines(&previous);
    assert_eq!(previous.len(), 3, "{previous:?}");
    let attempt: u32 = previous[0]
        .strip_prefix("crasher app started (attempt ")
        .and_then(|r| r.strip_suffix(')'))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{previous:?}"));
    assert!(attempt >= 1, "{previous:?}");
    assert_eq!(previous[1..], ["boom", "crasher app exited with code 1"]);

    // Refusals, with upstream's codes and messages.
    let (code, msg) = env
        .refused(
            "talker",
            &LogParams {
                previous: true,
                ..LogParams::default()
            },
        )
        .await;
    assert_eq!(
        (code, msg.as_str()),
        (
            400,
            "previous terminated container \"app\" in pod \"talker\" not found"
        )
    );
    env.create_pod(
        "pair",
        "node-0",
        json!({}),
        json!({"containers": [{"name": "a", "image": "nginx"}, {"name": "b", "image": "nginx"}]}),
    )
    .await;
    assert_eq!(
        env.refused("pair", &LogParams::default()).await,
        (
            400,
            "a container name must be specified for pod pair, choose one of: [a b]".to_string()
        )
    );
    let (code, msg) = env
        .refused(
            "pair",
            &LogParams {
                container: Some("c".into()),
                ..LogParams::default()
            },
        )
        .await;
    assert_eq!(
        (code, msg.as_str()),
        (400, "container c is not valid for pod pair")
    );
    env.create_pod(
        "slow",
        "node-0",
        json!({"sim.kubeproof.dev/image-pull-duration": "1h"}),
        json!({}),
    )
    .await;
    env.status_until("slow", "waiting ContainerCreating", |s| {
        s.state
            .as_ref()
            .and_then(|st| st.waiting.as_ref())
            .and_then(|w| w.reason.as_deref())
            == Some("ContainerCreating")
    })
    .await;
    assert_eq!(
        env.refused("slow", &LogParams::default()).await,
        (
            400,
            "container \"app\" in pod \"slow\" is waiting to start: ContainerCreating".to_string()
        )
    );
    let (code, msg) = env
        .refused(
            "talker",
            &LogParams {
                tail_lines: Some(-1),
                ..LogParams::default()
            },
        )
        .await;
    assert_eq!(code, 422, "{msg}");
    assert!(msg.contains("tailLines"), "{msg}");
    assert_eq!(env.refused("nobody", &LogParams::default()).await.0, 404);
    env.create_unbound_pod("unbound", json!({}), json!({}))
        .await;
    assert_eq!(
        pods.logs("unbound", &LogParams::default()).await.unwrap(),
        "",
        "an unscheduled pod has no log yet (upstream answers 204)"
    );

    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_logs_and_logs_follow() {
    let env = start(1).await;
    let kc = env.cluster.kubeconfig_path().to_path_buf();
    env.create_pod("talker", "node-0", talker(), json!({}))
        .await;
    env.running("talker").await;
    eventually(Duration::from_secs(10), || async {
        let t = env
            .pods()
            .logs("talker", &LogParams::default())
            .await
            .ok()?;
        t.contains("tick 1").then_some(())
    })
    .await
    .expect("a tick appears");

    let (ok, out, err) = kubectl(&kc, &["logs", "talker"]).await;
    assert!(ok, "{err}");
    assert_eq!(
        lines(&out)[..3],
        ["talker app started (attempt 0)", "hello", "world"]
    );
    let (ok, out, err) = kubectl(&kc, &["logs", "talker", "--tail=1"]).await;
    assert!(ok, "{err}");
    assert_eq!(lines(&out).len(), 1);
    assert!(tick(lines(&out)[0]).is_some(), "{out}");

    env.create_pod(
        "short",
        "node-0",
        json!({"sim.kubeproof.dev/log-every": "200ms", "sim.kubeproof.dev/exit-after": "1500ms"}),
        json!({"restartPolicy": "Never"}),
    )
    .await;
    env.running("short").await;
    let (ok, out, err) = kubectl(&kc, &["logs", "-f", "short"]).await;
    assert!(ok, "{err}");
    let out = lines(&out);
    assert_eq!(out.first(), Some(&"short app started (attempt 0)"));
    assert_eq!(out.last(), Some(&"short app exited with code 0"));

    let (ok, out, err) = kubectl(&kc, &["logs", "talker", "--since=1h", "--timestamps"]).await;
    assert!(ok, "{err}");
    let first = out.lines().next().unwrap_or_default();
    assert!(first.ends_with("Z talker app started (attempt 0)"), "{out}");

    env.create_pod(
        "crasher",
        "node-0",
        json!({"sim.kubeproof.dev/crash": "true", "sim.kubeproof.dev/exit-after": "300ms"}),
        json!({}),
    )
    .await;
    env.status_until("crasher", "a restart", |s| s.restart_count >= 1)
        .await;
    let (ok, out, err) = kubectl(&kc, &["logs", "crasher", "--previous"]).await;
    assert!(ok, "{err}");
    assert_eq!(
        lines(&out).last(),
        Some(&"crasher app exited with code 1"),
        "{out}"
    );

    let (ok, _, err) = kubectl(&kc, &["logs", "talker", "-c", "nope"]).await;
    assert!(!ok);
    assert!(
        err.contains("container nope is not valid for pod talker"),
        "{err}"
    );
    env.finish().await;
}
