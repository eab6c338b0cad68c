//! The scheduler's secure port in the bundled cluster: health for anyone, `/metrics` only for
//! clients the API server authorizes (delegated authentication and authorization), with the
//! upstream series moving as pods are scheduled, gated or unschedulable.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use kubeproof_refcluster::cluster::{ClusterConfig, RunningCluster, StoreConfig};
use serde_json::json;

/// Polls `f` every 100ms until it gives `Some`; panics with `what` after `timeout`.
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
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A client for the scheduler's secure port acting as `user` in `groups` (a client
/// certificate of the cluster CA), or anonymously, or with a bearer token.
async fn scheduler_client(
    cluster: &RunningCluster,
    identity: Option<(&str, &[&str])>,
    token: Option<&str>,
) -> kube::Client {
    let url = cluster
        .scheduler_url()
        .expect("the scheduler serves a port");
    let (user, groups) = identity.unwrap_or(("nobody", &[]));
    let kc = kube::config::Kubeconfig::from_yaml(&cluster.kubeconfig_for(user, groups).unwrap())
        .unwrap();
    let mut config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    config.cluster_url = url.parse().unwrap();
    if identity.is_none() {
        config.auth_info = kube::config::AuthInfo {
            token: token.map(|t| t.to_string().into()),
            ..Default::default()
        };
    }
    kube::Client::try_from(config).unwrap()
}

async fn get(client: &kube::Client, path: &str) -> (u16, String) {
    let req = http::Request::get(path).body(Vec::new()).unwrap();
    let resp = client
        .send(req.map(kube::client::Body::from))
        .await
        .unwrap();
    let code = resp.status().as_u16();
    let body = resp.into_body().collect_bytes().await.unwrap();
    (code, String::from_utf8_lossy(&body).into_owned())
}

/// The value of the one sample line starting with `series ` (labels as the encoder orders
/// them: alphabetically).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn pod(name: &str, spec: serde_json::Value) -> Pod {
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secure_port_delegates_authn_and_authz_and_serves_the_queue_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ClusterConfig {
        store: StoreConfig::Memory,
        ..ClusterConfig::with_components_for_tests(dir.path(), 1)
    };
    let cluster = RunningCluster::start(cfg).await.unwrap();
    let url = cluster.scheduler_url().unwrap();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    assert_ne!(url, cluster.url(), "the scheduler has its own port");

    // Health is open to anyone.
    let anonymous = scheduler_client(&cluster, None, None).await;
    for path in ["/healthz", "/livez", "/readyz"] {
        assert_eq!(
            get(&anonymous, path).await,
            (200, "ok".to_string()),
            "{path}"
        );
    }
    // Metrics are not: anonymous is authenticated but not authorized, a bad token not even
    // authenticated, a user without a role is refused.
    let (code, body) = get(&anonymous, "/metrics").await;
    assert_eq!(code, 403, "{body}");
    assert!(
        body.contains(r#"forbidden: User \"system:anonymous\" cannot get path \"/metrics\""#),
        "{body}"
    );
    let forged = scheduler_client(&cluster, None, Some("not-a-token")).await;
    let (code, body) = get(&forged, "/metrics").await;
    assert_eq!(code, 401, "{body}");
    let stranger = scheduler_client(&cluster, Some(("stranger", &[])), None).await;
    let (code, body) = get(&stranger, "/metrics").await;
    assert_eq!(code, 403, "{body}");
    assert!(
        body.contains(r#"User \"stranger\" cannot get path"#),
        "{body}"
    );

    // The bootstrap system:monitoring group may read them, by client certificate.
    let monitor =
        scheduler_client(&cluster, Some(("prometheus", &["system:monitoring"])), None).await;
    let (code, text) = get(&monitor, "/metrics").await;
    assert_eq!(code, 200, "{text}");
    assert!(
        text.contains("# TYPE scheduler_pending_pods gauge"),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"scheduler_pending_pods{queue="gated"}"#),
        Some(0.0)
    );

    // A ServiceAccount token is checked with a TokenReview; the account has no role yet.
    let client = cluster.client().await.unwrap();
    let sa_api: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(client.clone(), "default");
    sa_api
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "scraper"}})).unwrap(),
        )
        .await
        .unwrap();
    let token_request: serde_json::Value = client
        .request(
            http::Request::post("/api/v1/namespaces/default/serviceaccounts/scraper/token")
                .header("Content-Type", "application/json")
                .body(
                    serde_json::to_vec(&json!({"apiVersion": "authentication.k8s.io/v1",
                        "kind": "TokenRequest", "spec": {"expirationSeconds": 600}}))
                    .unwrap(),
                )
                .unwrap(),
        )
        .await
        .unwrap();
    let token = token_request["status"]["token"].as_str().unwrap();
    let sa = scheduler_client(&cluster, None, Some(token)).await;
    let (code, body) = get(&sa, "/metrics").await;
    assert_eq!(code, 403, "{body}");
    assert!(
        body.contains("system:serviceaccount:default:scraper"),
        "the refusal names the account the token belongs to: {body}"
    );
    assert_eq!(get(&sa, "/healthz").await.0, 200);

    // Pods: one gated, one that fits no node, one that schedules.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let container = json!([{"name": "c", "image": "nginx"}]);
    for p in [
        pod(
            "gated",
            json!({"schedulingGates": [{"name": "example.com/wait"}], "containers": container}),
        ),
        pod(
            "nowhere",
            json!({"nodeSelector": {"no-node": "has-this"}, "containers": container}),
        ),
        pod("placed", json!({"containers": container})),
    ] {
        pods.create(&PostParams::default(), &p).await.unwrap();
    }
    let text = eventually(Duration::from_secs(30), "the queue gauges to move", || async {
        let (_, text) = get(&monitor, "/metrics").await;
        let gated = sample(&text, r#"scheduler_pending_pods{queue="gated"}"#)?;
        let unschedulable = sample(&text, r#"scheduler_pending_pods{queue="unschedulable"}"#)?;
        let scheduled = sample(
            &text,
            r#"scheduler_schedule_attempts_total{profile="default-scheduler",result="scheduled"}"#,
        )?;
        (gated == 1.0 && unschedulable == 1.0 && scheduled >= 1.0).then_some(text)
    })
    .await;
    assert!(
        sample(
            &text,
            r#"scheduler_schedule_attempts_total{profile="default-scheduler",result="unschedulable"}"#
        )
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert!(
        text.contains("# TYPE scheduler_scheduling_attempt_duration_seconds histogram"),
        "{text}"
    );
    assert!(
        sample(&text, "scheduler_pod_scheduling_attempts_count").is_some_and(|n| n >= 1.0),
        "{text}"
    );

    // A killed scheduler takes its port down; started again, it serves at the same address
    // (the suite keeps one URL for the whole run).
    let control = cluster.control();
    control.stop("kube-scheduler").unwrap();
    eventually(Duration::from_secs(10), "the port to close", || async {
        let req = http::Request::get("/healthz").body(Vec::new()).unwrap();
        anonymous
            .send(req.map(kube::client::Body::from))
            .await
            .is_err()
            .then_some(())
    })
    .await;
    control.start("kube-scheduler").unwrap();
    let again = scheduler_client(&cluster, None, None).await;
    eventually(
        Duration::from_secs(10),
        "the port to open again",
        || async {
            let req = http::Request::get("/healthz").body(Vec::new()).unwrap();
            let resp = again.send(req.map(kube::client::Body::from)).await.ok()?;
            (resp.status() == 200).then_some(())
        },
    )
    .await;
    assert_eq!(cluster.scheduler_url().as_deref(), Some(url.as_str()));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secure_port_when_the_scheduler_serves_none() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = ClusterConfig {
        store: StoreConfig::Memory,
        ..ClusterConfig::with_components_for_tests(dir.path(), 0)
    };
    if let Some(s) = cfg.components.scheduler.as_mut() {
        s.secure_port = None;
    }
    let cluster = RunningCluster::start(cfg).await.unwrap();
    assert_eq!(cluster.scheduler_url(), None);
    cluster.shutdown().await;
}
