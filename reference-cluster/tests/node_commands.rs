//! Sim containers running their `command` through the built-in interpreter (SIM.md, Commands):
//! a busybox-style pod ends, logs and restarts on simulated nodes as on a real cluster.

#[path = "node_support/mod.rs"]
mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::{ContainerStateTerminated, Pod};
use kube::api::LogParams;
use serde_json::json;
use support::{eventually, start, Env};

fn busybox(script: &str) -> serde_json::Value {
    json!([{"name": "app", "image": "busybox:1.36", "command": ["sh", "-c", script]}])
}

fn terminated(p: &Pod, last: bool) -> Option<ContainerStateTerminated> {
    let s = p.status.as_ref()?.container_statuses.as_ref()?.first()?;
    let state = if last {
        s.last_state.as_ref()
    } else {
        s.state.as_ref()
    };
    state?.terminated.clone()
}

impl Env {
    async fn pod_matching(&self, name: &str, what: &str, check: impl Fn(&Pod) -> bool) -> Pod {
        let pods = self.pods();
        eventually(Duration::from_secs(30), || async {
            let p = pods.get(name).await.ok()?;
            check(&p).then_some(p)
        })
        .await
        .unwrap_or_else(|| panic!("pod {name}: {what} did not happen"))
    }

    async fn log(&self, name: &str, previous: bool) -> String {
        let lp = LogParams {
            previous,
            ..LogParams::default()
        };
        self.pods()
            .logs(name, &lp)
            .await
            .expect("logs are readable")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_prints_sleeps_and_exits_with_its_code() {
    let env = start(2).await;
    let spec = |script: &str| json!({"restartPolicy": "Never", "containers": busybox(script)});
    env.create_pod(
        "once",
        "node-0",
        json!({}),
        spec("echo hello; sleep 1; exit 3"),
    )
    .await;
    env.create_pod("done", "node-1", json!({}), spec("printf 'all %s\\n' done"))
        .await;

    let p = env
        .pod_matching("once", "Failed", |p| {
            p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed")
        })
        .await;
    let t = terminated(&p, false).expect("terminated");
    assert_eq!((t.exit_code, t.reason.as_deref()), (3, Some("Error")));
    let (started, finished) = (t.started_at.unwrap().0, t.finished_at.unwrap().0);
    assert!(
        finished.duration_since(started).as_secs_f64() >= 1.0,
        "it slept a second: {started} → {finished}"
    );
    assert_eq!(env.log("once", false).await, "hello\n");

    let p = env
        .pod_matching("done", "Succeeded", |p| {
            p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Succeeded")
        })
        .await;
    let t = terminated(&p, false).expect("terminated");
    assert_eq!((t.exit_code, t.reason.as_deref()), (0, Some("Completed")));
    assert_eq!(env.log("done", false).await, "all done\n");
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loops_log_over_time_and_crashes_restart() {
    let env = start(2).await;
    env.create_pod(
        "ticker",
        "node-0",
        json!({}),
        json!({"containers": busybox("while true; do echo tick; sleep 0.2; done")}),
    )
    .await;
    env.create_pod(
        "crasher",
        "node-1",
        json!({}),
        json!({"containers": busybox("echo boom; exit 1")}),
    )
    .await;

    let ticks = eventually(Duration::from_secs(20), || async {
        let log = env
            .pods()
            .logs("ticker", &LogParams::default())
            .await
            .ok()?;
        (log.lines().count() >= 3).then_some(log)
    })
    .await
    .expect("the loop writes a line per round");
    assert!(ticks.lines().all(|l| l == "tick"), "{ticks}");

    let p = env
        .pod_matching("crasher", "a restart", |p| {
            terminated(p, true).is_some_and(|t| t.exit_code == 1)
        })
        .await;
    assert_eq!(
        terminated(&p, true).unwrap().reason.as_deref(),
        Some("Error")
    );
    assert_eq!(env.log("crasher", true).await, "boom\n");
    env.finish().await;
}
