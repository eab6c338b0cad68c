//! Local ephemeral storage eviction with the `process` runtime: a busybox pod that writes 4Mi
//! into an `emptyDir` with `sizeLimit: 1Mi` is evicted by the node agent's next monitoring pass,
//! as the kubelet's eviction manager does it. Skipped, with the reason printed, on a host
//! without busybox.

#[path = "node_support/process.rs"]
mod process_support;
#[path = "node_support/mod.rs"]
mod support;

use std::time::Duration;

use process_support::start_or_skip;
use serde_json::json;
use support::eventually;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_writing_past_its_emptydir_size_limit_is_evicted() {
    let Some(env) = start_or_skip().await else {
        return;
    };
    let mount = format!(
        "/tmp/kp-storage-test-{}/data",
        uuid::Uuid::new_v4().simple()
    );
    env.create(
        "filler",
        json!({
            "restartPolicy": "Never",
            "volumes": [{"name": "data", "emptyDir": {"sizeLimit": "1Mi"}}],
            "containers": [{"name": "c", "image": "busybox",
                "command": ["sh", "-c",
                    format!("dd if=/dev/zero of={mount}/f bs=1M count=4 2>/dev/null && echo written && sleep 3600")],
                "volumeMounts": [{"name": "data", "mountPath": mount}]}],
        }),
    )
    .await;
    let pods = env.pods();
    let pod = eventually(Duration::from_secs(60), || async {
        let p = pods.get("filler").await.ok()?;
        (p.status.as_ref()?.phase.as_deref() == Some("Failed")).then_some(p)
    })
    .await;
    let Some(pod) = pod else {
        let status = pods.get("filler").await.map(|p| p.status);
        panic!("the pod was not evicted: {status:?}");
    };
    let status = pod.status.unwrap();
    let message = r#"Usage of EmptyDir volume "data" exceeds the limit "1Mi". "#;
    assert_eq!(status.reason.as_deref(), Some("Evicted"));
    assert_eq!(status.message.as_deref(), Some(message));
    assert!(status
        .conditions
        .unwrap_or_default()
        .iter()
        .all(|c| c.type_ != "DisruptionTarget"));
    let terminated = status.container_statuses.unwrap()[0]
        .state
        .clone()
        .unwrap()
        .terminated
        .expect("the container was stopped");
    // Stopped by the eviction (SIGTERM, then SIGKILL after the 1s grace), not finished.
    assert_ne!(terminated.exit_code, 0, "{terminated:?}");
    assert_eq!(env.logs("filler", false).await.trim(), "written");
    let event = support::pod_event(&env.client, "filler", "Evicted").await;
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    assert_eq!(event.message.as_deref(), Some(message));
    let _ = std::fs::remove_dir_all(std::path::Path::new(&mount).parent().unwrap());
    env.finish().await;
}
