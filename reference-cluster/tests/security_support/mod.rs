//! Shared helpers of the security tests: a bundled cluster, clients for any identity (client
//! certificates, bearer tokens, none at all) and raw HTTPS requests that show every status.

#![allow(dead_code)]

use std::path::Path;

use base64::Engine;
use kubeproof_refcluster::cluster::{ClusterConfig, RunningCluster, StoreConfig};
use serde_json::{json, Value};

pub struct Env {
    pub dir: tempfile::TempDir,
    pub cluster: RunningCluster,
    pub admin: Client,
}

/// A cluster on a memory store, with `tweak` applied to the test configuration.
pub async fn start(tweak: impl FnOnce(&mut ClusterConfig, &Path)) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = ClusterConfig {
        store: StoreConfig::Memory,
        nodes: 1,
        ..ClusterConfig::for_tests(dir.path())
    };
    tweak(&mut cfg, dir.path());
    let cluster = RunningCluster::start(cfg).await.expect("cluster starts");
    let admin =
        client_from_kubeconfig(&std::fs::read_to_string(cluster.kubeconfig_path()).unwrap()).await;
    Env {
        dir,
        cluster,
        admin,
    }
}

/// A response: status code, body (JSON when it is JSON) and headers.
#[derive(Debug)]
pub struct Reply {
    pub code: u16,
    pub body: Value,
    pub headers: http::HeaderMap,
}

impl Reply {
    pub fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or_default()
    }

    pub fn warnings(&self) -> Vec<String> {
        self.headers
            .get_all("warning")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect()
    }
}

/// A kube client used for raw requests, so that refusals are statuses, not errors.
#[derive(Clone)]
pub struct Client {
    pub kube: kube::Client,
}

impl Client {
    pub fn new(kube: kube::Client) -> Client {
        Client { kube }
    }

    pub async fn request(
        &self,
        method: &str,
        uri: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = http::Request::builder().method(method).uri(uri);
        let content_type = if method == "PATCH" {
            "application/merge-patch+json"
        } else {
            "application/json"
        };
        req = req.header("Content-Type", content_type);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let bytes = body
            .map(|b| serde_json::to_vec(b).unwrap())
            .unwrap_or_default();
        let resp = self
            .kube
            .send(req.body(bytes).unwrap().map(kube::client::Body::from))
            .await
            .expect("the transport works");
        let code = resp.status().as_u16();
        let headers = resp.headers().clone();
        let is_watch = uri.contains("watch=");
        let body = if is_watch {
            // A granted watch streams until its timeout; its status is the answer.
            Value::Null
        } else {
            let bytes = http_body_util::BodyExt::collect(resp.into_body())
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Reply {
            code,
            body,
            headers,
        }
    }

    pub async fn get(&self, uri: &str) -> Reply {
        self.request("GET", uri, None, &[]).await
    }

    pub async fn post(&self, uri: &str, body: &Value) -> Reply {
        self.request("POST", uri, Some(body), &[]).await
    }

    pub async fn delete(&self, uri: &str) -> Reply {
        self.request("DELETE", uri, None, &[]).await
    }

    /// Creates an object, failing the test unless it is created.
    pub async fn create(&self, uri: &str, body: &Value) -> Value {
        let r = self.post(uri, body).await;
        assert_eq!(r.code, 201, "creating at {uri} failed: {:?}", r.body);
        r.body
    }
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
}

/// A kube client from a kubeconfig document. It does not retry 429s and 5xx by itself: the
/// tests want to see every answer.
pub async fn client_from_kubeconfig(yaml: &str) -> Client {
    let kc = kube::config::Kubeconfig::from_yaml(yaml).unwrap();
    let mut config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    config.default_retry = false;
    Client::new(kube::Client::try_from(config).unwrap())
}

/// A kubeconfig for the cluster with `user` credentials (a kubeconfig `user` stanza).
pub fn kubeconfig_with(cluster: &RunningCluster, user: Value) -> String {
    let doc = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": cluster.url(), "certificate-authority-data": b64(&cluster.pki.ca.cert_pem)}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "c",
    });
    serde_yaml_ng::to_string(&doc).unwrap()
}

/// A client with a client certificate for `user` in `groups` from the cluster CA.
pub async fn as_user(cluster: &RunningCluster, user: &str, groups: &[&str]) -> Client {
    client_from_kubeconfig(&cluster.kubeconfig_for(user, groups).unwrap()).await
}

/// A client sending `Authorization: Bearer <token>`.
pub async fn with_token(cluster: &RunningCluster, token: &str) -> Client {
    client_from_kubeconfig(&kubeconfig_with(cluster, json!({"token": token}))).await
}

/// A client with no credentials at all.
pub async fn anonymous(cluster: &RunningCluster) -> Client {
    client_from_kubeconfig(&kubeconfig_with(cluster, json!({}))).await
}

/// A client presenting a certificate and key (PEM).
pub async fn with_certificate(cluster: &RunningCluster, cert_pem: &str, key_pem: &str) -> Client {
    client_from_kubeconfig(&kubeconfig_with(
        cluster,
        json!({"client-certificate-data": b64(cert_pem), "client-key-data": b64(key_pem)}),
    ))
    .await
}

pub async fn namespace(admin: &Client, name: &str, labels: Value) {
    admin
        .create(
            "/api/v1/namespaces",
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}),
        )
        .await;
}

/// A token for a service account, from the TokenRequest API.
pub async fn service_account_token(admin: &Client, ns: &str, name: &str, request: Value) -> String {
    let r = admin
        .post(
            &format!("/api/v1/namespaces/{ns}/serviceaccounts/{name}/token"),
            &request,
        )
        .await;
    assert_eq!(r.code, 201, "token request failed: {:?}", r.body);
    r.body["status"]["token"].as_str().unwrap().to_string()
}

pub fn pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
           "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}})
}

/// Waits until `check` holds, polling for up to `seconds`.
pub async fn eventually<F, Fut>(seconds: u64, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(seconds);
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
