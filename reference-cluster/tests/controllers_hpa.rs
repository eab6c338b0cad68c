//! The resource metrics API and the HorizontalPodAutoscaler on the bundled cluster with its
//! components: `metrics.k8s.io` reports what the simulated containers use (the
//! `sim.kubeproof.dev/cpu-usage` annotation), RBAC guards it, and an HPA scales a Deployment
//! up when its pods use more CPU than the target and back down when they use less.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kubeproof_refcluster::cluster::{ClusterConfig, RunningCluster, StoreConfig};
use serde_json::{json, Value};

async fn eventually<T, Fut: std::future::Future<Output = Option<T>>>(
    timeout: Duration,
    what: &str,
    mut f: impl FnMut() -> Fut,
) -> T {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn get_json(client: &kube::Client, path: &str) -> Result<Value, kube::Error> {
    let req = http::Request::get(path).body(Vec::new()).unwrap();
    client.request::<Value>(req).await
}

fn deployment(name: &str, replicas: i32, cpu_usage: &str, cpu_request: Option<&str>) -> Deployment {
    let mut container = json!({"name": "app", "image": "nginx"});
    if let Some(r) = cpu_request {
        container["resources"] = json!({"requests": {"cpu": r, "memory": "64Mi"}});
    }
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name},
                    "annotations": {"sim.kubeproof.dev/cpu-usage": cpu_usage, "sim.kubeproof.dev/memory-usage": "32Mi"}},
                "spec": {"containers": [container]}}}}))
    .unwrap()
}

fn replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

async fn start() -> (RunningCluster, kube::Client, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ClusterConfig {
        store: StoreConfig::Memory,
        ..ClusterConfig::with_components_for_tests(dir.path(), 2)
    };
    let cluster = RunningCluster::start(cfg).await.unwrap();
    let client = cluster.client().await.unwrap();
    (cluster, client, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_api_reports_simulated_usage() {
    let (cluster, client, _dir) = start().await;
    let groups = get_json(&client, "/apis").await.unwrap();
    assert!(
        groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] == "metrics.k8s.io"),
        "discovery lists metrics.k8s.io: {groups}"
    );
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    deployments
        .create(
            &PostParams::default(),
            &deployment("web", 2, "250m", Some("100m")),
        )
        .await
        .unwrap();
    let list = eventually(Duration::from_secs(60), "metrics of 2 pods", || async {
        let l = get_json(
            &client,
            "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods?labelSelector=app%3Dweb",
        )
        .await
        .ok()?;
        (l["items"].as_array()?.len() == 2).then_some(l)
    })
    .await;
    assert_eq!(list["kind"], "PodMetricsList");
    let item = &list["items"][0];
    assert_eq!(item["containers"][0]["name"], "app");
    assert_eq!(item["containers"][0]["usage"]["cpu"], "250m");
    assert_eq!(item["containers"][0]["usage"]["memory"], "32Mi");
    assert_eq!(item["metadata"]["labels"]["app"], "web");
    assert!(item["timestamp"].is_string() && item["window"].is_string());
    // One pod by name; a selector matching nothing gives an empty list.
    let name = item["metadata"]["name"].as_str().unwrap();
    let one = get_json(
        &client,
        &format!("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/{name}"),
    )
    .await
    .unwrap();
    assert_eq!(one["kind"], "PodMetrics");
    let none = get_json(
        &client,
        "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods?labelSelector=app%3Dnone",
    )
    .await
    .unwrap();
    assert_eq!(none["items"].as_array().unwrap().len(), 0);
    match get_json(
        &client,
        "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/gone",
    )
    .await
    {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 404);
            assert_eq!(
                s.message,
                "podmetrics.metrics.k8s.io \"default/gone\" not found"
            );
        }
        other => panic!("a pod without metrics is NotFound: {other:?}"),
    }

    // Nodes report the sum of what their pods use.
    let nodes = get_json(&client, "/apis/metrics.k8s.io/v1beta1/nodes")
        .await
        .unwrap();
    assert_eq!(nodes["kind"], "NodeMetricsList");
    let items = nodes["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{nodes}");
    let total_milli: i64 = items
        .iter()
        .map(|n| {
            let cpu = n["usage"]["cpu"].as_str().unwrap();
            match cpu.strip_suffix('m') {
                Some(m) => m.parse::<i64>().unwrap(),
                None => cpu.parse::<i64>().unwrap() * 1000,
            }
        })
        .sum();
    assert_eq!(total_milli, 500);

    // RBAC: a user without a role may not read metrics; `view` may.
    let jane = cluster.client_as("jane", &[]).await.unwrap();
    match get_json(
        &jane,
        "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods",
    )
    .await
    {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 403),
        other => panic!("jane may not list pod metrics: {other:?}"),
    }
    let bindings: Api<k8s_openapi::api::rbac::v1::RoleBinding> =
        Api::namespaced(client.clone(), "default");
    bindings
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "jane-view"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "jane"}],
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    eventually(
        Duration::from_secs(20),
        "view to allow pod metrics",
        || async {
            get_json(
                &jane,
                "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods",
            )
            .await
            .ok()
        },
    )
    .await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hpa_scales_up_on_high_usage_and_down_on_low() {
    let (cluster, client, _dir) = start().await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    deployments
        .create(
            &PostParams::default(),
            &deployment("web", 2, "200m", Some("100m")),
        )
        .await
        .unwrap();
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), "default");
    hpas.create(
        &PostParams::default(),
        &serde_json::from_value(json!({
            "metadata": {"name": "web"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 1, "maxReplicas": 6,
                "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 50}}}],
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}},
            },
        }))
        .unwrap(),
    )
    .await
    .unwrap();
    // 200% of the request against a 50% target: 4×, capped at 6.
    eventually(
        Duration::from_secs(90),
        "the HPA to scale web to 6",
        || async {
            let d = deployments.get("web").await.ok()?;
            (replicas(&d) == 6).then_some(())
        },
    )
    .await;
    let hpa = eventually(Duration::from_secs(30), "the HPA status", || async {
        let h = hpas.get("web").await.ok()?;
        let s = h.status.clone()?;
        (s.desired_replicas == 6 && s.last_scale_time.is_some()).then_some(h)
    })
    .await;
    let status = hpa.status.unwrap();
    let conditions = status.conditions.unwrap();
    let active = conditions
        .iter()
        .find(|c| c.type_ == "ScalingActive")
        .unwrap();
    assert_eq!(active.status, "True");
    assert_eq!(active.reason.as_deref(), Some("ValidMetricFound"));
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    eventually(Duration::from_secs(30), "a SuccessfulRescale event", || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items
            .iter()
            .find(|e| {
                e.reason.as_deref() == Some("SuccessfulRescale")
                    && e.message.as_deref().is_some_and(|m| {
                        m.ends_with("reason: cpu resource utilization (percentage of request) above target")
                    })
            })
            .map(|_| ())
    })
    .await;

    // Load drops: new pods use 10% of their request; the HPA scales down to its minimum.
    deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"template": {"metadata": {"annotations": {"sim.kubeproof.dev/cpu-usage": "10m"}}}}})),
        )
        .await
        .unwrap();
    eventually(
        Duration::from_secs(120),
        "the HPA to scale web down to 1",
        || async {
            let d = deployments.get("web").await.ok()?;
            (replicas(&d) == 1).then_some(())
        },
    )
    .await;
    eventually(Duration::from_secs(30), "a scale-down event", || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items
            .iter()
            .find(|e| e.message.as_deref() == Some("New size: 1; reason: All metrics below target"))
            .map(|_| ())
    })
    .await;
    let h = hpas.get("web").await.unwrap();
    let status = h.status.unwrap();
    assert_eq!(status.desired_replicas, 1);
    let current = &status.current_metrics.unwrap()[0];
    let util = current
        .resource
        .as_ref()
        .unwrap()
        .current
        .average_utilization;
    assert_eq!(util, Some(10), "10m of a 100m request");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hpa_without_requests_or_with_custom_metrics_does_not_scale() {
    let (cluster, client, _dir) = start().await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    deployments
        .create(
            &PostParams::default(),
            &deployment("plain", 2, "500m", None),
        )
        .await
        .unwrap();
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), "default");
    let hpa = |name: &str, metric: Value| -> HorizontalPodAutoscaler {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "plain"},
                "minReplicas": 1, "maxReplicas": 10, "metrics": [metric],
            },
        }))
        .unwrap()
    };
    hpas.create(
        &PostParams::default(),
        &hpa(
            "cpu",
            json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}),
        ),
    )
    .await
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let cond = eventually(Duration::from_secs(60), "ScalingActive=False", || async {
        let h = hpas.get("cpu").await.ok()?;
        let c = h
            .status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "ScalingActive")?;
        (c.reason.as_deref() == Some("FailedGetResourceMetric")
            && c.message.as_deref()?.contains("missing request for cpu"))
        .then_some(c)
    })
    .await;
    let pod_names: Vec<String> = pods
        .list(&ListParams::default().labels("app=plain"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    let message = cond.message.unwrap();
    assert!(
        message.starts_with("the HPA was unable to compute the replica count: failed to get cpu utilization: missing request for cpu in container app of Pod "),
        "{message}"
    );
    assert!(
        pod_names.iter().any(|p| message.ends_with(p.as_str())),
        "{message}"
    );
    assert_eq!(cond.status, "False");

    hpas.create(
        &PostParams::default(),
        &hpa(
            "custom",
            json!({"type": "Pods", "pods": {"metric": {"name": "packets-per-second"}, "target": {"type": "AverageValue", "averageValue": "1k"}}}),
        ),
    )
    .await
    .unwrap();
    let cond = eventually(Duration::from_secs(60), "FailedGetPodsMetric", || async {
        let h = hpas.get("custom").await.ok()?;
        h.status?.conditions?.into_iter().find(|c| {
            c.type_ == "ScalingActive" && c.reason.as_deref() == Some("FailedGetPodsMetric")
        })
    })
    .await;
    assert_eq!(
        cond.message.as_deref(),
        Some("the HPA was unable to compute the replica count: unable to get metric packets-per-second: unable to fetch metrics from custom metrics API: no custom metrics API (custom.metrics.k8s.io) registered")
    );
    let d = deployments.get("plain").await.unwrap();
    assert_eq!(replicas(&d), 2, "nothing scaled");
    cluster.shutdown().await;
}
