//! The fleet's writes: node registration, leases, node status, pod status and the final pod
//! delete. Status writes are strategic merge patches like the kubelet's, so conditions other
//! components own (readiness gates, `DisruptionTarget`) survive; their answers are not decoded.
//!
//! Each write is made as the node it is for (`system:node:<name>` in `system:nodes`, as a
//! kubelet authenticates), through impersonation: one process cannot hold a client
//! certificate and connection per node, so the fleet's own identity, allowed to impersonate
//! exactly its nodes, sends `Impersonate-User`/`Impersonate-Group` on every request. The API
//! server's Node authorizer and NodeRestriction admission then judge it as they judge a kubelet.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, GetParams, Patch, PatchParams, PostParams, Preconditions};
use kube::core::Request;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

/// The group every node identity is in.
pub const NODES_GROUP: &str = "system:nodes";

/// The user a node authenticates as.
pub fn node_user(node: &str) -> String {
    format!("system:node:{node}")
}

/// `req`, made as `node` (impersonation headers). The API server adds `system:authenticated`.
pub fn as_node<B>(mut req: http::Request<B>, node: &str) -> http::Request<B> {
    let headers = req.headers_mut();
    if let Ok(user) = http::HeaderValue::from_str(&node_user(node)) {
        headers.insert("Impersonate-User", user);
        headers.insert(
            "Impersonate-Group",
            http::HeaderValue::from_static(NODES_GROUP),
        );
    }
    req
}

fn built(
    r: Result<http::Request<Vec<u8>>, kube::core::request::Error>,
) -> ApiResult<http::Request<Vec<u8>>> {
    r.map_err(|e| Failure {
        code: None,
        message: e.to_string(),
    })
}

fn body<T: serde::Serialize>(obj: &T) -> ApiResult<Vec<u8>> {
    serde_json::to_vec(obj).map_err(|e| Failure {
        code: None,
        message: e.to_string(),
    })
}

/// Sends `req` as `node` and decodes the answer.
pub async fn send_as<T: DeserializeOwned>(
    client: &kube::Client,
    req: Result<http::Request<Vec<u8>>, kube::core::request::Error>,
    node: &str,
) -> ApiResult<T> {
    Ok(client.request(as_node(built(req)?, node)).await?)
}

/// Sends `req` as `node`, ignoring the answer's body.
pub async fn send_text_as(
    client: &kube::Client,
    req: Result<http::Request<Vec<u8>>, kube::core::request::Error>,
    node: &str,
) -> ApiResult<String> {
    Ok(client.request_text(as_node(built(req)?, node)).await?)
}

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
    let name = node.metadata.name.as_deref().unwrap_or_default();
    let nodes = Request::new("/api/v1/nodes");
    match send_as(
        client,
        nodes.create(&PostParams::default(), body(node)?),
        name,
    )
    .await
    {
        Ok(n) => Ok((n, true)),
        Err(f) => {
            if !f.is(409) {
                return Err(f);
            }
            let labels = node.metadata.labels.clone().unwrap_or_default();
            let patch = json!({"metadata": {"labels": labels}});
            let existing = send_as(
                client,
                nodes.patch(name, &PatchParams::default(), &Patch::Merge(&patch)),
                name,
            )
            .await?;
            Ok((existing, false))
        }
    }
}

/// Writes the lease: an update of the one last written, a create when there is none yet, and
/// on a conflict an update of the current one. The lease is named after its node.
pub async fn write_lease(client: &kube::Client, lease: &Lease) -> ApiResult<Lease> {
    let ns = lease
        .metadata
        .namespace
        .as_deref()
        .unwrap_or(super::agent::LEASE_NAMESPACE);
    let name = lease.metadata.name.clone().unwrap_or_default();
    let node = name.as_str();
    let leases = Request::new(format!(
        "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases"
    ));
    let pp = PostParams::default();
    if lease.metadata.resource_version.is_none() {
        match send_as(client, leases.create(&pp, body(lease)?), node).await {
            Ok(l) => return Ok(l),
            Err(f) => {
                if !f.is(409) {
                    return Err(f);
                }
            }
        }
    } else {
        match send_as(client, leases.replace(&name, &pp, body(lease)?), node).await {
            Ok(l) => return Ok(l),
            Err(f) => {
                if f.is(404) {
                    let mut fresh = lease.clone();
                    fresh.metadata.resource_version = None;
                    fresh.metadata.uid = None;
                    return send_as(client, leases.create(&pp, body(&fresh)?), node).await;
                }
                if !f.is(409) {
                    return Err(f);
                }
            }
        }
    }
    let mut current: Lease =
        send_as(client, leases.get(&name, &GetParams::default()), node).await?;
    current.spec = lease.spec.clone();
    send_as(client, leases.replace(&name, &pp, body(&current)?), node).await
}

async fn patch_status(
    client: &kube::Client,
    url: &str,
    name: &str,
    status: &Value,
    node: &str,
) -> ApiResult<()> {
    let body = json!({ "status": status });
    let req = Request::new(url).patch_subresource(
        "status",
        name,
        &PatchParams::default(),
        &Patch::Strategic(&body),
    );
    send_text_as(client, req, node).await?;
    Ok(())
}

pub async fn patch_node_status(client: &kube::Client, name: &str, status: &Value) -> ApiResult<()> {
    patch_status(client, "/api/v1/nodes", name, status, name).await
}

/// Patches the status of a pod bound to `node`.
pub async fn patch_pod_status(
    client: &kube::Client,
    node: &str,
    ns: &str,
    name: &str,
    status: &Value,
) -> ApiResult<()> {
    patch_status(
        client,
        &format!("/api/v1/namespaces/{ns}/pods"),
        name,
        status,
        node,
    )
    .await
}

/// Removes a pod of `node` whose containers have stopped (grace 0, only this incarnation); a
/// pod already gone or replaced counts as done.
pub async fn delete_pod(
    client: &kube::Client,
    node: &str,
    ns: &str,
    name: &str,
    uid: &str,
) -> ApiResult<()> {
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: Some(uid.to_string()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    let req = Request::new(format!("/api/v1/namespaces/{ns}/pods")).delete(name, &dp);
    match send_text_as(client, req, node).await {
        Ok(_) => Ok(()),
        Err(f) if f.is(404) || f.is(409) => Ok(()),
        Err(f) => Err(f),
    }
}

/// Pods as the fleet watches them: with the fleet's own identity, one watch for every node
/// (a node may only watch its own pods).
pub fn pods(client: &kube::Client) -> Api<Pod> {
    Api::all(client.clone())
}

pub fn nodes(client: &kube::Client) -> Api<Node> {
    Api::all(client.clone())
}

/// The identity the fleet itself authenticates as (its shared watches of pods and nodes, and
/// the impersonation of its nodes).
pub const FLEET_USER: &str = "system:kubeproof:node-fleet";

/// The ClusterRole (and ClusterRoleBinding) granting [`FLEET_USER`] what it needs.
pub const FLEET_ROLE: &str = "system:kubeproof:node-fleet";

/// The fleet's ClusterRole and its binding to [`FLEET_USER`]: watching every pod and node (one
/// shared watch instead of one per node) and impersonating exactly `nodes` in `system:nodes`.
pub fn fleet_rbac<'a>(nodes: impl IntoIterator<Item = &'a str>) -> (Value, Value) {
    let users: Vec<String> = nodes.into_iter().map(node_user).collect();
    let role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": FLEET_ROLE},
        "rules": [
            {"apiGroups": [""], "resources": ["pods", "nodes"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"], "resourceNames": users},
            {"apiGroups": [""], "resources": ["groups"], "verbs": ["impersonate"], "resourceNames": [NODES_GROUP]},
        ],
    });
    let binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": FLEET_ROLE},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": FLEET_ROLE},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": FLEET_USER}],
    });
    (role, binding)
}

/// Writes the fleet's ClusterRole and binding (server-side apply) with `admin`, replacing the
/// node names a previous fleet registered.
pub async fn grant_fleet<'a>(
    admin: &kube::Client,
    nodes: impl IntoIterator<Item = &'a str>,
) -> ApiResult<()> {
    let (role, binding) = fleet_rbac(nodes);
    let pp = PatchParams::apply("kubeproof-node-fleet").force();
    for (url, obj) in [
        ("/apis/rbac.authorization.k8s.io/v1/clusterroles", &role),
        (
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            &binding,
        ),
    ] {
        let req = built(Request::new(url).patch(FLEET_ROLE, &pp, &Patch::Apply(obj)))?;
        admin.request_text(req).await?;
    }
    Ok(())
}

/// A client whose every request is made as `node`, sharing `client`'s connections: for code
/// that speaks through typed `Api`s (the process runtime's volumes, environment and tokens).
pub fn node_client(client: &kube::Client, node: &str) -> kube::Client {
    kube::Client::new(
        AsNode {
            base: client.clone(),
            node: node.into(),
        },
        client.default_namespace().to_string(),
    )
}

#[derive(Clone)]
struct AsNode {
    base: kube::Client,
    node: std::sync::Arc<str>,
}

impl tower_service::Service<http::Request<kube::client::Body>> for AsNode {
    type Response = http::Response<kube::client::Body>;
    type Error = kube::Error;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, kube::Error>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), kube::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<kube::client::Body>) -> Self::Future {
        let base = self.base.clone();
        let req = as_node(req, &self.node);
        Box::pin(async move { base.send(req).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_made_as_the_node() {
        let req = as_node(http::Request::new(Vec::<u8>::new()), "node-3");
        assert_eq!(req.headers()["impersonate-user"], "system:node:node-3");
        let groups: Vec<_> = req.headers().get_all("impersonate-group").iter().collect();
        assert_eq!(groups, vec!["system:nodes"]);
    }

    #[test]
    fn the_fleet_may_impersonate_exactly_its_nodes() {
        let (role, binding) = fleet_rbac(["node-0", "node-1"]);
        assert_eq!(
            role["rules"][1]["resourceNames"],
            json!(["system:node:node-0", "system:node:node-1"])
        );
        assert_eq!(role["rules"][2]["resourceNames"], json!(["system:nodes"]));
        assert_eq!(binding["subjects"][0]["name"], FLEET_USER);
    }
}
