//! The fleet's writes: node registration, leases, node status, pod status and the final pod
//! delete. Status writes are strategic merge patches like the kubelet's, so conditions other
//! components own (readiness gates, `DisruptionTarget`) survive; their answers are not decoded.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::core::Request;
use serde_json::{json, Value};

/// A failed request: the HTTP code when the server answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub code: Option<u16>,
    pub message: String,
}

impl From<kube::Error> for Failure {
    fn from(e: kube::Error) -> Failure {
        match e {
            kube::Error::Api(s) => Failure {
                code: Some(s.code),
                message: s.message.clone(),
            },
            other => Failure {
                code: None,
                message: other.to_string(),
            },
        }
    }
}

impl Failure {
    pub fn is(&self, code: u16) -> bool {
        self.code == Some(code)
    }
}

pub type ApiResult<T> = Result<T, Failure>;

/// Creates the Node; an existing one is taken over as the kubelet does (its well-known labels
/// refreshed). Returns the Node and whether it was created.
pub async fn register_node(client: &kube::Client, node: &Node) -> ApiResult<(Node, bool)> {
    let api: Api<Node> = Api::all(client.clone());
    match api.create(&PostParams::default(), node).await {
        Ok(n) => Ok((n, true)),
        Err(e) => {
            let f = Failure::from(e);
            if !f.is(409) {
                return Err(f);
            }
            let name = node.metadata.name.as_deref().unwrap_or_default();
            let labels = node.metadata.labels.clone().unwrap_or_default();
            let patch = json!({"metadata": {"labels": labels}});
            let existing = api
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
            Ok((existing, false))
        }
    }
}

/// Writes the lease: an update of the one last written, a create when there is none yet, and
/// on a conflict an update of the current one.
pub async fn write_lease(client: &kube::Client, lease: &Lease) -> ApiResult<Lease> {
    let ns = lease
        .metadata
        .namespace
        .as_deref()
        .unwrap_or(super::agent::LEASE_NAMESPACE);
    let name = lease.metadata.name.clone().unwrap_or_default();
    let api: Api<Lease> = Api::namespaced(client.clone(), ns);
    if lease.metadata.resource_version.is_none() {
        match api.create(&PostParams::default(), lease).await {
            Ok(l) => return Ok(l),
            Err(e) => {
                let f = Failure::from(e);
                if !f.is(409) {
                    return Err(f);
                }
            }
        }
    } else {
        match api.replace(&name, &PostParams::default(), lease).await {
            Ok(l) => return Ok(l),
            Err(e) => {
                let f = Failure::from(e);
                if f.is(404) {
                    let mut fresh = lease.clone();
                    fresh.metadata.resource_version = None;
                    fresh.metadata.uid = None;
                    return Ok(api.create(&PostParams::default(), &fresh).await?);
                }
                if !f.is(409) {
                    return Err(f);
                }
            }
        }
    }
    let mut current = api.get(&name).await?;
    current.spec = lease.spec.clone();
    Ok(api.replace(&name, &PostParams::default(), &current).await?)
}

async fn patch_status(
    client: &kube::Client,
    url: &str,
    name: &str,
    status: &Value,
) -> ApiResult<()> {
    let body = json!({ "status": status });
    let req = Request::new(url)
        .patch_subresource(
            "status",
            name,
            &PatchParams::default(),
            &Patch::Strategic(&body),
        )
        .map_err(|e| Failure {
            code: None,
            message: e.to_string(),
        })?;
    client.request_text(req).await?;
    Ok(())
}

pub async fn patch_node_status(client: &kube::Client, name: &str, status: &Value) -> ApiResult<()> {
    patch_status(client, "/api/v1/nodes", name, status).await
}

pub async fn patch_pod_status(
    client: &kube::Client,
    ns: &str,
    name: &str,
    status: &Value,
) -> ApiResult<()> {
    patch_status(
        client,
        &format!("/api/v1/namespaces/{ns}/pods"),
        name,
        status,
    )
    .await
}

/// Removes a pod whose containers have stopped (grace 0, only this incarnation); a pod already
/// gone or replaced counts as done.
pub async fn delete_pod(client: &kube::Client, ns: &str, name: &str, uid: &str) -> ApiResult<()> {
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: Some(uid.to_string()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    let req = Request::new(format!("/api/v1/namespaces/{ns}/pods"))
        .delete(name, &dp)
        .map_err(|e| Failure {
            code: None,
            message: e.to_string(),
        })?;
    match client.request_text(req).await.map_err(Failure::from) {
        Ok(_) => Ok(()),
        Err(f) if f.is(404) || f.is(409) => Ok(()),
        Err(f) => Err(f),
    }
}

/// Pods as the fleet watches them.
pub fn pods(client: &kube::Client) -> Api<Pod> {
    Api::all(client.clone())
}

pub fn nodes(client: &kube::Client) -> Api<Node> {
    Api::all(client.clone())
}
