//! The kubelet's Events as the simulated node agents record them, observed through the API the
//! way `kubectl describe pod` reads them.

#[path = "node_support/mod.rs"]
mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, DeleteParams, ListParams};
use serde_json::json;
use support::{eventually, start, Env};

impl Env {
    /// The events about pod `pod`, oldest first.
    async fn events_of(&self, pod: &str) -> Vec<Event> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), "default");
        let mut list: Vec<Event> = api
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e.involved_object.name.as_deref() == Some(pod))
            .collect();
        list.sort_by(|a, b| a.first_timestamp.cmp(&b.first_timestamp));
        list
    }

    /// Waits until pod `pod` has an event with `reason` whose message starts with `prefix`.
    async fn event(&self, pod: &str, reason: &str, prefix: &str) -> Event {
        let last = std::sync::Mutex::new(Vec::new());
        let found = eventually(Duration::from_secs(30), || async {
            let events = self.events_of(pod).await;
            let hit = events.iter().find(|e| {
                e.reason.as_deref() == Some(reason)
                    && e.message.as_deref().unwrap_or("").starts_with(prefix)
            });
            let hit = hit.cloned();
            *last.lock().unwrap() = events;
            hit
        })
        .await;
        found.unwrap_or_else(|| {
            let seen: Vec<_> = last
                .lock()
                .unwrap()
                .iter()
                .map(|e| (e.reason.clone(), e.message.clone()))
                .collect();
            panic!("pod {pod}: no {reason} event starting {prefix:?}; events: {seen:?}")
        })
    }
}

fn assert_from_kubelet(e: &Event, node: &str, container: Option<&str>) {
    let source = e.source.as_ref().expect("source");
    assert_eq!(source.component.as_deref(), Some("kubelet"));
    assert_eq!(source.host.as_deref(), Some(node));
    assert_eq!(e.reporting_component.as_deref(), Some("kubelet"));
    assert_eq!(e.reporting_instance.as_deref(), Some(node));
    assert_eq!(e.involved_object.kind.as_deref(), Some("Pod"));
    assert!(
        e.involved_object.uid.is_some(),
        "the event names the pod's uid"
    );
    assert_eq!(
        e.involved_object.field_path,
        container.map(|c| format!("spec.containers{{{c}}}"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_pod_records_pull_create_start_and_killing() {
    let env = start(1).await;
    env.create_pod(
        "web",
        "node-0",
        json!({}),
        json!({"containers": [{"name": "app", "image": "nginx"}]}),
    )
    .await;

    let pulling = env.event("web", "Pulling", "Pulling image \"nginx\"").await;
    assert_from_kubelet(&pulling, "node-0", Some("app"));
    assert_eq!(pulling.type_.as_deref(), Some("Normal"));
    let pulled = env
        .event("web", "Pulled", "Successfully pulled image \"nginx\" in ")
        .await;
    assert!(
        pulled
            .message
            .as_deref()
            .unwrap()
            .ends_with("including waiting). Image size: 0 bytes."),
        "upstream's shape: {:?}",
        pulled.message
    );
    let created = env.event("web", "Created", "Created container: app").await;
    assert_from_kubelet(&created, "node-0", Some("app"));
    let started = env.event("web", "Started", "Started container app").await;
    assert_eq!(started.message.as_deref(), Some("Started container app"));
    assert_eq!(started.type_.as_deref(), Some("Normal"));

    // The node now has the image: a second pod does not pull it.
    env.create_pod(
        "web2",
        "node-0",
        json!({}),
        json!({"containers": [{"name": "app", "image": "nginx"}]}),
    )
    .await;
    let present = env.event("web2", "Pulled", "Container image").await;
    assert_eq!(
        present.message.as_deref(),
        Some("Container image \"nginx\" already present on machine")
    );
    env.event("web2", "Started", "Started container app").await;
    assert!(
        !env.events_of("web2")
            .await
            .iter()
            .any(|e| e.reason.as_deref() == Some("Pulling")),
        "no pull for an image the node has"
    );

    env.pods()
        .delete("web", &DeleteParams::default())
        .await
        .expect("pod deleted");
    let killing = env.event("web", "Killing", "Stopping container app").await;
    assert_from_kubelet(&killing, "node-0", Some("app"));
    assert_eq!(killing.type_.as_deref(), Some("Normal"));
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_record_backoff_failed_and_rejections() {
    let env = start(1).await;
    env.create_pod(
        "crasher",
        "node-0",
        json!({"sim.kubeproof.dev/crash": "true", "sim.kubeproof.dev/exit-after": "200ms"}),
        json!({}),
    )
    .await;
    env.create_pod(
        "typo",
        "node-0",
        json!({}),
        json!({"containers": [{"name": "app", "image": "example.com/nonexistent:1.0"}]}),
    )
    .await;
    env.create_pod(
        "greedy",
        "node-0",
        json!({}),
        json!({"containers": [{"name": "app", "image": "nginx", "resources": {"requests": {"cpu": "5"}}}]}),
    )
    .await;

    let uid = env
        .pods()
        .get("crasher")
        .await
        .unwrap()
        .metadata
        .uid
        .unwrap();
    let backoff = env
        .event("crasher", "BackOff", "Back-off restarting failed container")
        .await;
    assert_eq!(
        backoff.message,
        Some(format!(
            "Back-off restarting failed container app in pod crasher_default({uid})"
        ))
    );
    assert_eq!(backoff.type_.as_deref(), Some("Warning"));
    assert_from_kubelet(&backoff, "node-0", Some("app"));

    let failed = env
        .event(
            "typo",
            "Failed",
            "Failed to pull image \"example.com/nonexistent:1.0\": ",
        )
        .await;
    assert_eq!(failed.type_.as_deref(), Some("Warning"));
    assert_from_kubelet(&failed, "node-0", Some("app"));
    env.event("typo", "Failed", "Error: ErrImagePull").await;
    env.event(
        "typo",
        "BackOff",
        "Back-off pulling image \"example.com/nonexistent:1.0\"",
    )
    .await;

    let rejected = env
        .event(
            "greedy",
            "OutOfcpu",
            "Node didn't have enough resource: cpu",
        )
        .await;
    assert_eq!(rejected.type_.as_deref(), Some("Warning"));
    assert_from_kubelet(&rejected, "node-0", None);
    assert_eq!(env.stats.snapshot().events_dropped, 0);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_probes_record_unhealthy_and_the_kill() {
    let env = start(1).await;
    env.create_pod(
        "sick",
        "node-0",
        json!({"sim.kubeproof.dev/liveness-fail-after": "300ms"}),
        json!({"containers": [{"name": "app", "image": "nginx",
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": 80},
                              "periodSeconds": 1, "failureThreshold": 2}}]}),
    )
    .await;
    env.create_pod(
        "aloof",
        "node-0",
        json!({"sim.kubeproof.dev/ready": "false"}),
        json!({"containers": [{"name": "app", "image": "nginx",
            "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}]}),
    )
    .await;
    env.create_pod(
        "sluggish",
        "node-0",
        json!({"sim.kubeproof.dev/started-after": "1h"}),
        json!({"restartPolicy": "Never", "containers": [{"name": "app", "image": "nginx",
            "startupProbe": {"exec": {"command": ["cat", "/tmp/started"]},
                             "periodSeconds": 1, "failureThreshold": 2}}]}),
    )
    .await;

    let unhealthy = env
        .event("sick", "Unhealthy", "Liveness probe failed: ")
        .await;
    assert_eq!(
        unhealthy.message.as_deref(),
        Some("Liveness probe failed: HTTP probe failed with statuscode: 500")
    );
    assert_eq!(unhealthy.type_.as_deref(), Some("Warning"));
    assert_from_kubelet(&unhealthy, "node-0", Some("app"));
    let killing = env
        .event("sick", "Killing", "Container app failed liveness probe")
        .await;
    assert_eq!(
        killing.message.as_deref(),
        Some("Container app failed liveness probe, will be restarted")
    );
    assert_eq!(killing.type_.as_deref(), Some("Normal"));
    assert_from_kubelet(&killing, "node-0", Some("app"));
    // Both failures before the kill fold into one event.
    let folded = eventually(Duration::from_secs(10), || async {
        env.events_of("sick")
            .await
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("Unhealthy") && e.count >= Some(2))
    })
    .await;
    assert!(folded.is_some(), "the threshold's failures are counted");

    let unready = env
        .event("aloof", "Unhealthy", "Readiness probe failed: ")
        .await;
    let msg = unready.message.unwrap_or_default();
    assert!(
        msg.starts_with("Readiness probe failed: dial tcp ")
            && msg.ends_with(":8080: connect: connection refused"),
        "{msg}"
    );
    assert!(
        !env.events_of("aloof")
            .await
            .iter()
            .any(|e| e.reason.as_deref() == Some("Killing")),
        "readiness never kills"
    );

    env.event("sluggish", "Unhealthy", "Startup probe failed: ")
        .await;
    let killed = env
        .event("sluggish", "Killing", "Container app failed startup probe")
        .await;
    assert_eq!(
        killed.message.as_deref(),
        Some("Container app failed startup probe"),
        "restartPolicy Never: not restarted"
    );
    env.finish().await;
}
