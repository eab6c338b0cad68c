//! Simulated node agents against the bundled cluster, observed only through the API: nodes
//! register and keep their leases fresh; pods bound to them run, crash, complete, are
//! OOM-killed, fail to pull, are rejected and are deleted as on a real kubelet.

#[path = "node_support/mod.rs"]
mod support;

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ContainerStatus, Node, Pod};
use kube::api::{Api, DeleteParams, PostParams, WatchEvent, WatchParams};
use serde_json::{json, Value};
use support::{eventually, start, Env};

impl Env {
    /// Waits until `check` accepts the pod, and returns it.
    async fn pod_until(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        check: impl Fn(&Pod) -> bool,
    ) -> Pod {
        let pods = self.pods();
        let last = std::sync::Mutex::new(None);
        let found = eventually(timeout, || async {
            let p = pods.get(name).await.ok()?;
            let ok = check(&p);
            *last.lock().unwrap() = Some(p.status.clone());
            ok.then_some(p)
        })
        .await;
        let last = last.lock().unwrap().clone();
        found.unwrap_or_else(|| {
            panic!(
                "pod {name}: {what} did not happen; last status: {}",
                serde_json::to_string_pretty(&last).unwrap()
            )
        })
    }
}

fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn condition(p: &Pod, type_: &str) -> Option<String> {
    p.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.clone())
}

fn container(p: &Pod, name: &str) -> Option<ContainerStatus> {
    p.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find(|c| c.name == name)
        .cloned()
}

fn waiting_reason(p: &Pod, name: &str) -> Option<String> {
    container(p, name)?.state?.waiting?.reason
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_register_and_renew_their_leases() {
    let env = start(3).await;
    let node = env.node_ready("node-1").await;
    let labels = node.metadata.labels.clone().unwrap();
    assert_eq!(labels["kubernetes.io/hostname"], "node-1");
    assert_eq!(labels["kubernetes.io/os"], "linux");
    let status = node.status.clone().unwrap();
    assert_eq!(
        status.node_info.unwrap().container_runtime_version,
        "kubeproof-sim://0.1.0"
    );
    assert_eq!(
        node.spec.unwrap().pod_cidr.as_deref(),
        Some("127.244.1.0/24")
    );
    let types: Vec<String> = status
        .conditions
        .unwrap()
        .into_iter()
        .map(|c| c.type_)
        .collect();
    assert_eq!(
        types,
        ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]
    );

    let leases: Api<Lease> = Api::namespaced(env.client.clone(), "kube-node-lease");
    let renew_time = |l: &Lease| {
        l.spec
            .as_ref()
            .and_then(|s| s.renew_time.clone())
            .map(|t| t.0)
    };
    let first = eventually(Duration::from_secs(10), || async {
        leases.get("node-1").await.ok()
    })
    .await
    .expect("the lease exists");
    let spec = first.spec.clone().unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some("node-1"));
    assert_eq!(spec.lease_duration_seconds, Some(4));
    let owner = &first.metadata.owner_references.clone().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Node", "node-1")
    );
    assert_eq!(Some(owner.uid.clone()), node.metadata.uid);
    let t1 = renew_time(&first).unwrap();
    let renewed = eventually(Duration::from_secs(10), || async {
        let l = leases.get("node-1").await.ok()?;
        renew_time(&l).filter(|t| *t > t1)
    })
    .await;
    assert!(renewed.is_some(), "the lease was renewed after {t1}");
    assert!(env.stats.snapshot().lease_renewals >= 4);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_pod_runs_ready_with_an_address() {
    let env = start(3).await;
    env.create_pod("web", "node-2", json!({}), json!({})).await;
    let p = env
        .pod_until("web", "Running and Ready", Duration::from_secs(20), |p| {
            phase(p) == "Running" && condition(p, "Ready").as_deref() == Some("True")
        })
        .await;
    let status = p.status.clone().unwrap();
    let ip = status.pod_ip.clone().expect("a pod IP");
    assert!(ip.starts_with("127.244.2."), "node-2's block: {ip}");
    assert_eq!(status.host_ip.as_deref(), Some("127.0.0.1"));
    assert!(status.start_time.is_some());
    assert_eq!(status.qos_class.as_deref(), Some("BestEffort"));
    for c in [
        "PodReadyToStartContainers",
        "Initialized",
        "ContainersReady",
        "PodScheduled",
    ] {
        assert_eq!(condition(&p, c).as_deref(), Some("True"), "{c}");
    }
    let app = container(&p, "app").unwrap();
    assert!(app.ready && app.started == Some(true));
    assert!(app.container_id.unwrap().starts_with("kubeproof-sim://"));

    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_pod_backs_off_longer_each_time() {
    let env = start(3).await;
    env.create_pod(
        "crasher",
        "node-0",
        json!({"sim.kubeproof.dev/crash": "true", "sim.kubeproof.dev/exit-after": "200ms"}),
        json!({}),
    )
    .await;
    let message = |p: &Pod| {
        container(p, "app")
            .and_then(|c| c.state?.waiting?.message)
            .unwrap_or_default()
    };
    let p = env
        .pod_until(
            "crasher",
            "CrashLoopBackOff 1s",
            Duration::from_secs(20),
            |p| {
                waiting_reason(p, "app").as_deref() == Some("CrashLoopBackOff")
                    && message(p).starts_with("back-off 1s ")
            },
        )
        .await;
    let uid = p.metadata.uid.clone().unwrap();
    assert_eq!(
        message(&p),
        format!("back-off 1s restarting failed container=app pod=crasher_default({uid})")
    );
    let app = container(&p, "app").unwrap();
    let last = app.last_state.unwrap().terminated.unwrap();
    assert_eq!((last.exit_code, last.reason.as_deref()), (1, Some("Error")));
    assert_eq!(phase(&p), "Running");
    let p = env
        .pod_until(
            "crasher",
            "CrashLoopBackOff 2s",
            Duration::from_secs(20),
            |p| message(p).starts_with("back-off 2s "),
        )
        .await;
    let restarts_at_2s = container(&p, "app").unwrap().restart_count;
    let p = env
        .pod_until(
            "crasher",
            "CrashLoopBackOff 4s",
            Duration::from_secs(30),
            |p| message(p).starts_with("back-off 4s "),
        )
        .await;
    let restarts_at_4s = container(&p, "app").unwrap().restart_count;
    assert!(
        restarts_at_4s > restarts_at_2s && restarts_at_2s >= 2,
        "{restarts_at_2s} then {restarts_at_4s}"
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_complete_are_oom_killed_and_fail_to_pull() {
    let env = start(3).await;
    env.create_pod(
        "job",
        "node-0",
        json!({"sim.kubeproof.dev/exit-after": "300ms"}),
        json!({"restartPolicy": "Never"}),
    )
    .await;
    env.create_pod(
        "hog",
        "node-1",
        json!({"sim.kubeproof.dev/memory-usage": "600Mi"}),
        json!({"restartPolicy": "Never", "containers": [{"name": "app", "image": "busybox", "resources": {"limits": {"memory": "512Mi"}}}]}),
    )
    .await;
    env.create_pod(
        "typo",
        "node-2",
        json!({}),
        json!({"containers": [{"name": "app", "image": "example.com/nonexistent:1.0"}]}),
    )
    .await;

    let p = env
        .pod_until("job", "Succeeded", Duration::from_secs(20), |p| {
            phase(p) == "Succeeded"
        })
        .await;
    let t = container(&p, "app")
        .unwrap()
        .state
        .unwrap()
        .terminated
        .unwrap();
    assert_eq!((t.exit_code, t.reason.as_deref()), (0, Some("Completed")));
    assert_eq!(condition(&p, "Ready").as_deref(), Some("False"));

    let p = env
        .pod_until("hog", "Failed", Duration::from_secs(20), |p| {
            phase(p) == "Failed"
        })
        .await;
    let t = container(&p, "app")
        .unwrap()
        .state
        .unwrap()
        .terminated
        .unwrap();
    assert_eq!((t.exit_code, t.reason.as_deref()), (137, Some("OOMKilled")));
    assert_eq!(p.status.unwrap().qos_class.as_deref(), Some("Burstable"));

    let p = env
        .pod_until("typo", "ImagePullBackOff", Duration::from_secs(20), |p| {
            waiting_reason(p, "app").as_deref() == Some("ImagePullBackOff")
        })
        .await;
    let w = container(&p, "app")
        .unwrap()
        .state
        .unwrap()
        .waiting
        .unwrap();
    assert_eq!(
        w.message.as_deref(),
        Some("Back-off pulling image \"example.com/nonexistent:1.0\"")
    );
    assert_eq!(phase(&p), "Pending");
    let p = env
        .pod_until("typo", "ErrImagePull again", Duration::from_secs(20), |p| {
            waiting_reason(p, "app").as_deref() == Some("ErrImagePull")
        })
        .await;
    let msg = container(&p, "app")
        .unwrap()
        .state
        .unwrap()
        .waiting
        .unwrap()
        .message
        .unwrap();
    assert!(
        msg.starts_with(
            "Failed to pull image \"example.com/nonexistent:1.0\": rpc error: code = NotFound"
        ),
        "{msg}"
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_running_pod_removes_it_after_the_agent_stops_it() {
    let env = start(3).await;
    env.create_pod(
        "victim",
        "node-1",
        json!({"sim.kubeproof.dev/termination-delay": "1s"}),
        json!({}),
    )
    .await;
    env.pod_until("victim", "Running", Duration::from_secs(20), |p| {
        phase(p) == "Running"
    })
    .await;
    // Watch the pod from here on: its last versions must show the agent's work.
    let wp = WatchParams::default().fields("metadata.name=victim");
    let current = env.pods().get("victim").await.unwrap();
    let rv = current.metadata.resource_version.clone().unwrap();
    let mut events = env.pods().watch(&wp, &rv).await.unwrap().boxed();
    env.pods()
        .delete("victim", &DeleteParams::default())
        .await
        .unwrap();
    // The API keeps the pod (deletionTimestamp set) while the container handles SIGTERM.
    let p = env
        .pods()
        .get("victim")
        .await
        .expect("still there while terminating");
    assert!(p.metadata.deletion_timestamp.is_some());
    assert_eq!(p.metadata.deletion_grace_period_seconds, Some(5));
    let mut seen_stopped = None;
    let deleted = tokio::time::timeout(Duration::from_secs(15), async {
        while let Some(ev) = events.try_next().await.unwrap() {
            match ev {
                WatchEvent::Modified(p) => {
                    let stopped = container(&p, "app").and_then(|c| c.state?.terminated);
                    if let Some(stopped) =
                        stopped.filter(|_| p.metadata.deletion_timestamp.is_some())
                    {
                        seen_stopped = Some((stopped, phase(&p).to_string()));
                    }
                }
                WatchEvent::Deleted(_) => return true,
                _ => {}
            }
        }
        false
    })
    .await;
    assert_eq!(deleted, Ok(true), "the pod was removed");
    let (stopped, final_phase) =
        seen_stopped.expect("the stopped container was reported before the pod went away");
    assert_eq!(
        (stopped.exit_code, stopped.reason.as_deref()),
        (0, Some("Completed"))
    );
    assert_eq!(
        final_phase, "Succeeded",
        "a deleted pod ends in a terminal phase"
    );
    // The agent counts its delete once the API answered it, which may be after watchers saw it.
    let counted = eventually(Duration::from_secs(5), || async {
        (env.stats.snapshot().pods_deleted >= 1).then_some(())
    })
    .await;
    assert!(counted.is_some(), "the agent counted its final delete");
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_that_do_not_fit_are_rejected_with_upstream_reasons() {
    let env = start(1).await;
    env.create_pod(
        "greedy",
        "node-0",
        json!({}),
        json!({"containers": [{"name": "app", "image": "nginx", "resources": {"requests": {"cpu": "5"}}}]}),
    )
    .await;
    let p = env
        .pod_until("greedy", "rejected", Duration::from_secs(20), |p| {
            phase(p) == "Failed"
        })
        .await;
    let status = p.status.unwrap();
    assert_eq!(status.reason.as_deref(), Some("OutOfcpu"));
    assert_eq!(
        status.message.as_deref(),
        Some("Pod was rejected: Node didn't have enough resource: cpu, requested: 5000, used: 0, capacity: 4000")
    );
    env.create_pod(
        "picky",
        "node-0",
        json!({}),
        json!({"nodeSelector": {"disk": "ssd"}}),
    )
    .await;
    let p = env
        .pod_until("picky", "rejected", Duration::from_secs(20), |p| {
            phase(p) == "Failed"
        })
        .await;
    assert_eq!(p.status.unwrap().reason.as_deref(), Some("NodeAffinity"));
    assert_eq!(env.stats.snapshot().pods_rejected, 2);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_bound_through_the_binding_subresource_runs() {
    let env = start(1).await;
    let pod: Pod = serde_json::from_value(
        json!({"metadata": {"name": "bound"}, "spec": {"containers": [{"name": "app", "image": "nginx"}]}}),
    )
    .unwrap();
    env.pods()
        .create(&PostParams::default(), &pod)
        .await
        .unwrap();
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "bound"},
                         "target": {"apiVersion": "v1", "kind": "Node", "name": "node-0"}});
    env.pods()
        .create_subresource::<Value, Value>("binding", "bound", &PostParams::default(), &binding)
        .await
        .expect("the binding is accepted");
    let p = env
        .pod_until("bound", "Running", Duration::from_secs(20), |p| {
            phase(p) == "Running"
        })
        .await;
    assert!(p.status.unwrap().pod_ip.unwrap().starts_with("127.244.0."));
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_pods_cost_few_status_writes() {
    let env = start(3).await;
    let n = 30;
    for i in 0..n {
        env.create_pod(
            &format!("p-{i}"),
            &format!("node-{}", i % 3),
            json!({}),
            json!({}),
        )
        .await;
    }
    for i in 0..n {
        env.pod_until(&format!("p-{i}"), "Running", Duration::from_secs(30), |p| {
            phase(p) == "Running" && condition(p, "Ready").as_deref() == Some("True")
        })
        .await;
    }
    let writes = env.stats.snapshot().pod_status_writes;
    assert!(
        writes >= n && writes <= 3 * n,
        "{writes} status writes for {n} pods"
    );
    // Nothing changes any more, so nothing more is written.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(env.stats.snapshot().pod_status_writes, writes);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_annotations_drive_node_conditions() {
    let env = start(1).await;
    let nodes: Api<Node> = Api::all(env.client.clone());
    let patch = json!({"metadata": {"annotations": {"sim.kubeproof.dev/memory-pressure": "true"}}});
    nodes
        .patch(
            "node-0",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .unwrap();
    let pressure = eventually(Duration::from_secs(15), || async {
        let n = nodes.get("node-0").await.ok()?;
        let c = n
            .status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "MemoryPressure")?;
        (c.status == "True").then_some(c)
    })
    .await
    .expect("MemoryPressure is reported");
    assert_eq!(
        pressure.reason.as_deref(),
        Some("KubeletHasInsufficientMemory")
    );
    assert_eq!(
        pressure.message.as_deref(),
        Some("kubelet has insufficient memory available")
    );
    env.finish().await;
}
