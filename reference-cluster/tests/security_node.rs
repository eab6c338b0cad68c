//! Node identities against the bundled cluster, which runs `--authorization-mode=Node,RBAC`
//! and NodeRestriction as kubeadm's clusters do: what `system:node:node-0` may read and write
//! (its own Node, the secrets its pods use, its pods, its lease), the 403s for the rest with
//! upstream's messages, the same through impersonation, and the node fleet itself running on
//! node identities (its nodes get Ready and its pods Running while it may impersonate nothing
//! but its own nodes).

mod security_support;

use kubeproof_refcluster::cluster::{ClusterConfig, StoreConfig};
use kubeproof_refcluster::node::api::{FLEET_ROLE, FLEET_USER};
use security_support::*;
use serde_json::{json, Value};

fn secret(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": {"k": "v"}})
}

fn pod_on(name: &str, node: &str, secret: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
           "spec": {"nodeName": node,
                    "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}],
                    "volumes": [{"name": "s", "secret": {"secretName": secret}}]}})
}

async fn patch(client: &Client, uri: &str, body: Value) -> Reply {
    client.request("PATCH", uri, Some(&body), &[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_reach_only_what_their_pods_use() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ClusterConfig {
        store: StoreConfig::Memory,
        ..ClusterConfig::with_components_for_tests(dir.path(), 2)
    };
    let cluster = kubeproof_refcluster::cluster::RunningCluster::start(cfg)
        .await
        .expect("cluster starts");
    let admin =
        client_from_kubeconfig(&std::fs::read_to_string(cluster.kubeconfig_path()).unwrap()).await;
    let node0 = as_user(&cluster, "system:node:node-0", &["system:nodes"]).await;

    // Its own Node: read and write; another's: neither.
    assert_eq!(node0.get("/api/v1/nodes/node-0").await.code, 200);
    let other = node0.get("/api/v1/nodes/node-1").await;
    assert_eq!(other.code, 403);
    assert_eq!(
        other.message(),
        r#"nodes "node-1" is forbidden: User "system:node:node-0" cannot get resource "nodes" in API group "" at the cluster scope: node 'node-0' cannot read 'node-1', only its own Node object"#
    );
    let all = node0.get("/api/v1/nodes").await;
    assert_eq!(all.code, 403);
    assert!(all
        .message()
        .ends_with("node 'node-0' cannot read all nodes, only its own Node object"));
    let own = patch(
        &node0,
        "/api/v1/nodes/node-0",
        json!({"metadata": {"labels": {"example.com/rack": "r1"}}}),
    )
    .await;
    assert_eq!(own.code, 200, "{:?}", own.body);
    let foreign = patch(
        &node0,
        "/api/v1/nodes/node-1",
        json!({"metadata": {"labels": {"example.com/rack": "r1"}}}),
    )
    .await;
    assert_eq!(foreign.code, 403);
    assert_eq!(
        foreign.message(),
        r#"nodes "node-1" is forbidden: node "node-0" is not allowed to modify node "node-1""#
    );
    let restricted = patch(
        &node0,
        "/api/v1/nodes/node-0",
        json!({"metadata": {"labels": {"node-restriction.kubernetes.io/trusted": "yes"}}}),
    )
    .await;
    assert_eq!(restricted.code, 403);
    assert_eq!(
        restricted.message(),
        r#"nodes "node-0" is forbidden: is not allowed to modify labels: node-restriction.kubernetes.io/trusted"#
    );
    let status = patch(
        &node0,
        "/api/v1/nodes/node-0/status",
        json!({"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "ok"}]}}),
    )
    .await;
    assert_eq!(status.code, 200, "{:?}", status.body);

    // Secrets: only those a pod bound to the node uses.
    namespace(&admin, "apps", json!({})).await;
    for s in ["mounted", "unrelated"] {
        admin
            .create("/api/v1/namespaces/apps/secrets", &secret(s))
            .await;
    }
    admin
        .create(
            "/api/v1/namespaces/apps/pods",
            &pod_on("web", "node-0", "mounted"),
        )
        .await;
    assert_eq!(
        node0
            .get("/api/v1/namespaces/apps/secrets/mounted")
            .await
            .code,
        200
    );
    let unrelated = node0.get("/api/v1/namespaces/apps/secrets/unrelated").await;
    assert_eq!(unrelated.code, 403);
    assert_eq!(
        unrelated.message(),
        r#"secrets "unrelated" is forbidden: User "system:node:node-0" cannot get resource "secrets" in API group "" in the namespace "apps": no relationship found between node 'node-0' and this object"#
    );
    let node1 = as_user(&cluster, "system:node:node-1", &["system:nodes"]).await;
    assert_eq!(
        node1
            .get("/api/v1/namespaces/apps/secrets/mounted")
            .await
            .code,
        403
    );
    assert_eq!(node0.get("/api/v1/namespaces/apps/secrets").await.code, 403);

    // Pods: its own, or listed by spec.nodeName=<itself>.
    assert_eq!(
        node0.get("/api/v1/namespaces/apps/pods/web").await.code,
        200
    );
    assert_eq!(
        node1.get("/api/v1/namespaces/apps/pods/web").await.code,
        403
    );
    assert_eq!(
        node0
            .get("/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-0")
            .await
            .code,
        200
    );
    let listed = node0.get("/api/v1/pods").await;
    assert_eq!(listed.code, 403);
    assert!(listed
        .message()
        .ends_with("can only list/watch pods with spec.nodeName field selector"));
    let status = patch(
        &node1,
        "/api/v1/namespaces/apps/pods/web/status",
        json!({"status": {"message": "mine"}}),
    )
    .await;
    assert_eq!(status.code, 403);
    assert_eq!(
        status.message(),
        r#"pods "web" is forbidden: node "node-1" can only update pod status for pods with spec.nodeName set to itself"#
    );

    // Leases: only its own, in kube-node-lease.
    let leases = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases";
    assert_eq!(node0.get(&format!("{leases}/node-0")).await.code, 200);
    let lease = node0.get(&format!("{leases}/node-1")).await;
    assert_eq!(lease.code, 403);
    assert!(lease
        .message()
        .ends_with("can only access node lease with the same name as the requesting node"));

    // The same identity through impersonation (what the node fleet does).
    let as_node0 = [
        ("Impersonate-User", "system:node:node-0"),
        ("Impersonate-Group", "system:nodes"),
    ];
    let r = admin
        .request("GET", "/api/v1/nodes/node-1", None, &as_node0)
        .await;
    assert_eq!(r.code, 403);
    assert_eq!(r.message(), other.message());
    let r = admin
        .request(
            "GET",
            "/api/v1/namespaces/apps/secrets/mounted",
            None,
            &as_node0,
        )
        .await;
    assert_eq!(r.code, 200);

    // The fleet's own identity impersonates its nodes and nobody else.
    let role = admin
        .get(&format!(
            "/apis/rbac.authorization.k8s.io/v1/clusterroles/{FLEET_ROLE}"
        ))
        .await;
    assert_eq!(
        role.body["rules"][1]["resourceNames"],
        json!(["system:node:node-0", "system:node:node-1"])
    );
    let fleet = as_user(&cluster, FLEET_USER, &[]).await;
    let r = fleet
        .request("GET", "/api/v1/nodes/node-0", None, &as_node0)
        .await;
    assert_eq!(r.code, 200);
    let r = fleet
        .request(
            "GET",
            "/api/v1/namespaces/apps/secrets/unrelated",
            None,
            &[
                ("Impersonate-User", "kubernetes-admin"),
                ("Impersonate-Group", "system:masters"),
            ],
        )
        .await;
    assert_eq!(r.code, 403);
    assert_eq!(
        r.message(),
        r#"users "kubernetes-admin" is forbidden: User "system:kubeproof:node-fleet" cannot impersonate resource "users" in API group "" at the cluster scope"#
    );
    assert_eq!(
        fleet
            .get("/api/v1/namespaces/apps/secrets/unrelated")
            .await
            .code,
        403
    );

    // The fleet, writing as node-0, still runs the pod: status and Ready condition.
    let running = eventually(30, || async {
        let p = admin.get("/api/v1/namespaces/apps/pods/web").await;
        p.body["status"]["phase"] == "Running"
    })
    .await;
    assert!(running, "the pod bound to node-0 never ran");
    let ready = admin.get("/api/v1/nodes/node-1").await;
    let conditions = ready.body["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(conditions
        .iter()
        .any(|c| c["type"] == "Ready" && c["status"] == "True"));
    cluster.shutdown().await;
}

/// NodeRestriction's mirror pods over HTTPS: the single controller owner must be the node's
/// own Node by UID as stored (upstream reads the Node); a node without a Node object gets the
/// lookup's 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mirror_pods_name_their_node_by_uid() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ClusterConfig {
        store: StoreConfig::Memory,
        ..ClusterConfig::with_components_for_tests(dir.path(), 1)
    };
    let cluster = kubeproof_refcluster::cluster::RunningCluster::start(cfg)
        .await
        .expect("cluster starts");
    let admin =
        client_from_kubeconfig(&std::fs::read_to_string(cluster.kubeconfig_path()).unwrap()).await;
    let registered = eventually(30, || async {
        admin.get("/api/v1/nodes/node-0").await.code == 200
    })
    .await;
    assert!(registered, "node-0 never registered");
    let uid = admin.get("/api/v1/nodes/node-0").await.body["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    let mirror = |name: &str, node: &str, owner_uid: &str| {
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "annotations": {"kubernetes.io/config.mirror": "hash"},
                            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node,
                                                 "uid": owner_uid, "controller": true}]},
               "spec": {"nodeName": node,
                        "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}})
    };
    let node0 = as_user(&cluster, "system:node:node-0", &["system:nodes"]).await;
    let uri = "/api/v1/namespaces/default/pods";
    let ok = node0.post(uri, &mirror("static-web", "node-0", &uid)).await;
    assert_eq!(ok.code, 201, "{:?}", ok.body);
    let stale = node0
        .post(uri, &mirror("stale-web", "node-0", "stale"))
        .await;
    assert_eq!(stale.code, 403, "{:?}", stale.body);
    assert_eq!(
        stale.message(),
        format!(
            r#"pods "stale-web" is forbidden: node node-0 UID mismatch: expected stale got {uid}"#
        )
    );
    let ghost = as_user(&cluster, "system:node:ghost", &["system:nodes"]).await;
    let missing = ghost.post(uri, &mirror("ghost-web", "ghost", "u")).await;
    assert_eq!(missing.code, 404, "{:?}", missing.body);
    assert_eq!(missing.message(), r#"nodes "ghost" not found"#);
    cluster.shutdown().await;
}
