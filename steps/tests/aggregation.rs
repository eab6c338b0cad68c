//! The aggregation layer end to end: the bundled cluster proxies an APIService's group to the
//! step library's extension API server, lists it in discovery while it is Available, tells the
//! extension server who the user is through the front proxy, and stops when the APIService
//! becomes unavailable or goes away. (Here rather than in `reference-cluster/tests/` because
//! the extension server is the step library's.)

use std::time::{Duration, Instant};

use base64::Engine as _;
use kube::Client;
use serde_json::{json, Value};

use kubeproof_refcluster::apiserver::ApiServerConfig;
use kubeproof_refcluster::cluster::{ClusterConfig, RunningCluster};
use kubeproof_steps::library::aggregation::{
    ExtensionConfig, ExtensionServer, REQUESTED_BY, SERVED_BY,
};

const GROUP: &str = "wardle.example.com";
const NS: &str = "default";

async fn send(client: &Client, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    send_accept(client, method, path, body, "application/json").await
}

async fn send_accept(
    client: &Client,
    method: &str,
    path: &str,
    body: Option<Value>,
    accept: &str,
) -> (u16, Value) {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::ACCEPT, accept)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body.map(|b| b.to_string().into_bytes()).unwrap_or_default())
        .unwrap();
    let resp = client
        .send(req.map(kube::client::Body::from))
        .await
        .unwrap();
    let code = resp.status().as_u16();
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (code, value)
}

/// Lists the flunders of `NS` as `client`: the status code and the body.
async fn list_flunders(client: &Client) -> (u16, Value) {
    let path = format!("/apis/{GROUP}/v1alpha1/namespaces/{NS}/flunders");
    send(client, "GET", &path, None).await
}

/// Polls `f` until it returns `Some`, for at most `limit`.
async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn available(client: &Client, name: &str) -> Option<(String, String)> {
    let (code, obj) = send(
        client,
        "GET",
        &format!("/apis/apiregistration.k8s.io/v1/apiservices/{name}"),
        None,
    )
    .await;
    assert_eq!(code, 200, "{obj}");
    let c = obj
        .pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Available")?
        .clone();
    Some((
        c["status"].as_str()?.to_string(),
        c["reason"].as_str()?.to_string(),
    ))
}

async fn lists_group(client: &Client) -> (bool, bool) {
    let (_, legacy) = send(client, "GET", "/apis", None).await;
    let in_legacy = legacy["groups"]
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g["name"] == GROUP);
    let (_, agg) = send_accept(
        client,
        "GET",
        "/apis",
        None,
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
    )
    .await;
    let in_agg = agg["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g["metadata"]["name"] == GROUP);
    (in_legacy, in_agg)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apiservice_proxies_its_group_to_the_extension_server() {
    let dir = tempfile::tempdir().unwrap();
    let config = ClusterConfig {
        nodes: 0,
        apiserver: ApiServerConfig {
            apiservice_availability_period: Duration::from_millis(500),
            ..ClusterConfig::for_tests(dir.path().join("cluster")).apiserver
        },
        ..ClusterConfig::for_tests(dir.path().join("cluster"))
    };
    let cluster = RunningCluster::start(config).await.unwrap();
    // 503 is an answer under test here, not something to retry.
    let mut exact = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(cluster.kubeconfig_path()).unwrap(),
        &Default::default(),
    )
    .await
    .unwrap();
    exact.default_retry = false;
    let client = Client::try_from(exact).unwrap();

    // The ConfigMap an extension server reads to trust the aggregator.
    let auth = eventually(
        "extension-apiserver-authentication",
        Duration::from_secs(10),
        || async {
            let (code, cm) = send(
                &client,
                "GET",
                "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication",
                None,
            )
            .await;
            (code == 200).then_some(cm)
        },
    )
    .await;
    let data = &auth["data"];
    assert_eq!(
        data["requestheader-username-headers"],
        "[\"X-Remote-User\"]"
    );
    assert_eq!(data["requestheader-group-headers"], "[\"X-Remote-Group\"]");
    assert_eq!(
        data["requestheader-extra-headers-prefix"],
        "[\"X-Remote-Extra-\"]"
    );
    assert!(data["client-ca-file"]
        .as_str()
        .unwrap()
        .contains("BEGIN CERTIFICATE"));
    let allowed: Vec<String> =
        serde_json::from_str(data["requestheader-allowed-names"].as_str().unwrap()).unwrap();
    assert_eq!(allowed, vec!["front-proxy-client"]);

    let server = ExtensionServer::start(
        ExtensionConfig {
            group: GROUP.into(),
            version: "v1alpha1".into(),
            resource: "flunders".into(),
            requestheader_ca: data["requestheader-client-ca-file"]
                .as_str()
                .map(str::to_string),
            requestheader_allowed_names: allowed,
        },
        "wardle",
        NS,
    )
    .await
    .unwrap();
    let port = server.addr.port();

    // An APIService whose service does not exist yet is not available.
    let apiservice = json!({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
        "metadata": {"name": format!("v1alpha1.{GROUP}")},
        "spec": {"group": GROUP, "version": "v1alpha1", "groupPriorityMinimum": 2000, "versionPriority": 200,
                 "caBundle": base64::engine::general_purpose::STANDARD.encode(&server.ca_pem),
                 "service": {"namespace": NS, "name": "wardle", "port": 443}}});
    let (code, body) = send(
        &client,
        "POST",
        "/apis/apiregistration.k8s.io/v1/apiservices",
        Some(apiservice),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let name = format!("v1alpha1.{GROUP}");
    let status = eventually("ServiceNotFound", Duration::from_secs(10), || async {
        available(&client, &name)
            .await
            .filter(|s| s.1 == "ServiceNotFound")
    })
    .await;
    assert_eq!(status.0, "False");
    let (code, _) = list_flunders(&client).await;
    assert_eq!(code, 503, "an unavailable APIService answers 503");

    let (code, body) = send(
        &client,
        "POST",
        &format!("/api/v1/namespaces/{NS}/services"),
        Some(json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "wardle"},
        "spec": {"ports": [{"name": "https", "port": 443, "targetPort": port}]}})),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    eventually("EndpointsNotFound", Duration::from_secs(10), || async {
        available(&client, &name)
            .await
            .filter(|s| s.1 == "EndpointsNotFound")
    })
    .await;
    let endpoints = json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "wardle"},
        "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"name": "https", "port": port}]}]});
    let (code, body) = send(
        &client,
        "POST",
        &format!("/api/v1/namespaces/{NS}/endpoints"),
        Some(endpoints),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let status = eventually("Available", Duration::from_secs(10), || async {
        available(&client, &name).await.filter(|s| s.0 == "True")
    })
    .await;
    assert_eq!(status.1, "Passed");

    // Discovery lists the group, with the resources the extension server serves.
    eventually("discovery", Duration::from_secs(10), || async {
        (lists_group(&client).await == (true, true)).then_some(())
    })
    .await;
    let (code, group) = send(&client, "GET", &format!("/apis/{GROUP}"), None).await;
    assert_eq!(code, 200);
    assert_eq!(
        group["preferredVersion"]["groupVersion"],
        format!("{GROUP}/v1alpha1")
    );
    let (_, agg) = send_accept(
        &client,
        "GET",
        "/apis",
        None,
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
    )
    .await;
    let item = agg["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["metadata"]["name"] == GROUP)
        .unwrap();
    assert_eq!(item["versions"][0]["resources"][0]["resource"], "flunders");
    assert_eq!(
        item["versions"][0]["resources"][0]["responseKind"]["kind"],
        "Flunder"
    );

    // Requests are proxied: the extension server stores the object and saw the admin.
    let (code, created) = send(&client, "POST", &format!("/apis/{GROUP}/v1alpha1/namespaces/{NS}/flunders"),
        Some(json!({"apiVersion": format!("{GROUP}/v1alpha1"), "kind": "Flunder", "metadata": {"name": "f1"}}))).await;
    assert_eq!(code, 201, "{created}");
    let held = server
        .object(NS, "f1")
        .expect("the extension server holds the object");
    assert_eq!(
        held["metadata"]["annotations"][REQUESTED_BY],
        "kubernetes-admin"
    );
    assert_eq!(held["metadata"]["annotations"][SERVED_BY], "wardle.default");
    let (code, list) = list_flunders(&client).await;
    assert_eq!(code, 200);
    assert_eq!(list["items"][0]["metadata"]["name"], "f1");
    let (code, _) = send(
        &client,
        "GET",
        &format!("/apis/{GROUP}/v1alpha1/namespaces/{NS}/flunders/nope"),
        None,
    )
    .await;
    assert_eq!(code, 404, "the extension server's answers pass through");

    // kubectl finds the group through discovery and reads it through the proxy.
    if let Ok(out) = tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(cluster.kubeconfig_path())
        .args(["api-resources", "--api-group", GROUP])
        .output()
        .await
    {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("flunders"),
            "{text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = tokio::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(cluster.kubeconfig_path())
            .args(["get", "flunders", "-n", NS])
            .output()
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("f1"),
            "{text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // The API server authorizes before proxying: a user without RBAC never reaches it.
    let bob = cluster.client_as("bob", &[]).await.unwrap();
    let (code, _) = list_flunders(&bob).await;
    assert_eq!(code, 403);

    // The built-in resource metrics API stays served locally.
    let (code, body) = send(&client, "GET", "/apis/metrics.k8s.io/v1beta1", None).await;
    assert_eq!(code, 200, "{body}");

    // Without endpoints the APIService is unavailable and requests get 503.
    let (code, _) = send(
        &client,
        "DELETE",
        &format!("/api/v1/namespaces/{NS}/endpoints/wardle"),
        None,
    )
    .await;
    assert_eq!(code, 200);
    eventually("unavailable again", Duration::from_secs(10), || async {
        available(&client, &name).await.filter(|s| s.0 == "False")
    })
    .await;
    let (code, _) = list_flunders(&client).await;
    assert_eq!(code, 503);

    // Deleting the APIService takes the group out of discovery and out of the API.
    let (code, _) = send(
        &client,
        "DELETE",
        &format!("/apis/apiregistration.k8s.io/v1/apiservices/{name}"),
        None,
    )
    .await;
    assert_eq!(code, 200);
    eventually(
        "the group to leave discovery",
        Duration::from_secs(10),
        || async { (lists_group(&client).await == (false, false)).then_some(()) },
    )
    .await;
    let (code, _) = list_flunders(&client).await;
    assert_eq!(code, 404);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_apiservices_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = ClusterConfig {
        nodes: 0,
        ..ClusterConfig::for_tests(dir.path().join("cluster"))
    };
    let cluster = RunningCluster::start(config).await.unwrap();
    let client = cluster.client().await.unwrap();
    let (code, body) = send(&client, "POST", "/apis/apiregistration.k8s.io/v1/apiservices", Some(json!({
        "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
        "metadata": {"name": "v1.wrong.example.com"},
        "spec": {"group": "x.example.com", "version": "v1", "groupPriorityMinimum": 0, "versionPriority": 1,
                 "insecureSkipTLSVerify": true, "caBundle": "Zm9v",
                 "service": {"namespace": "default", "name": "x"}}}))).await;
    assert_eq!(code, 422, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("metadata.name"), "{message}");
    assert!(message.contains("spec.groupPriorityMinimum"), "{message}");
    assert!(
        message.contains("may not be true if caBundle is present"),
        "{message}"
    );
    cluster.shutdown().await;
}
