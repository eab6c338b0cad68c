//! Audit, secrets at rest and API fairness on the running cluster: the seed's audit policy as
//! written, read back from the JSON-lines log; Secrets encrypted in the raw store; and a flood
//! from one user rejected with 429 + `Retry-After` by its priority level while the cluster's
//! own identities keep being served, visible in `apiserver_flowcontrol_*` metrics.

mod security_support;

use std::time::Duration;

use base64::Engine;
use security_support::*;
use serde_json::{json, Value};

const SEED_POLICY: &str = include_str!("../src/security/seed-audit-policy.yaml");

fn events(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every audit line is one JSON event"))
        .collect()
}

#[tokio::test]
async fn the_seed_audit_policy_works_as_written() {
    let env = start(|cfg, dir| {
        let policy = dir.join("audit-policy.yaml");
        std::fs::write(&policy, SEED_POLICY).unwrap();
        cfg.apiserver.audit_policy_file = Some(policy);
        cfg.apiserver.audit_log_path = Some(dir.join("audit/audit.log"));
    })
    .await;
    let admin = &env.admin;
    let log = env.dir.path().join("audit/audit.log");
    let created = admin
        .post("/api/v1/namespaces/default/pods", &pod("audited"))
        .await;
    assert_eq!(created.code, 201);
    admin
        .create(
            "/api/v1/namespaces/default/secrets",
            &json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "db"}, "stringData": {"password": "hunter2"}}),
        )
        .await;
    admin
        .create(
            "/api/v1/namespaces/kube-system/configmaps",
            &json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "settings"}, "data": {"k": "v"}}),
        )
        .await;
    admin
        .create(
            "/api/v1/namespaces/kube-system/configmaps",
            &json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "controller-leader"}}),
        )
        .await;
    assert_eq!(
        admin
            .get("/api/v1/namespaces/kube-system/configmaps/controller-leader")
            .await
            .code,
        200
    );
    assert_eq!(admin.get("/version").await.code, 200);
    let r = admin
        .request(
            "GET",
            "/api/v1/namespaces/default/pods/audited",
            None,
            &[("Impersonate-User", "viola")],
        )
        .await;
    assert_eq!(r.code, 403);
    assert!(
        r.headers.get("audit-id").is_some(),
        "audited responses carry their Audit-Id"
    );

    let all = events(&log);
    assert!(!all.is_empty());
    assert!(all
        .iter()
        .all(|e| e["apiVersion"] == "audit.k8s.io/v1" && e["kind"] == "Event"));
    assert!(
        all.iter().all(|e| e["stage"] != "RequestReceived"),
        "omitStages applies"
    );
    let find = |verb: &str, resource: &str, name: &str| -> Vec<&Value> {
        all.iter()
            .filter(|e| {
                e["verb"] == verb
                    && e["objectRef"]["resource"] == resource
                    && e["objectRef"]["name"] == name
            })
            .collect()
    };
    let pod_create: Vec<&Value> = all
        .iter()
        .filter(|e| e["verb"] == "create" && e["objectRef"]["resource"] == "pods")
        .collect();
    assert_eq!(pod_create.len(), 1);
    let e = pod_create[0];
    assert_eq!(e["level"], "RequestResponse");
    assert_eq!(e["stage"], "ResponseComplete");
    assert_eq!(e["user"]["username"], "kubernetes-admin");
    assert_eq!(e["responseStatus"]["code"], 201);
    assert_eq!(e["requestObject"]["metadata"]["name"], "audited");
    assert_eq!(e["responseObject"]["spec"]["serviceAccountName"], "default");
    assert_eq!(
        e["annotations"]["pod-security.kubernetes.io/enforce-policy"],
        "privileged:latest"
    );
    // Secrets never above Metadata: no payload in the log at all.
    let secret: Vec<&Value> = all
        .iter()
        .filter(|e| e["objectRef"]["resource"] == "secrets")
        .collect();
    assert_eq!(secret.len(), 1);
    assert_eq!(secret[0]["level"], "Metadata");
    assert!(secret[0].get("requestObject").is_none() && secret[0].get("responseObject").is_none());
    assert!(!std::fs::read_to_string(&log).unwrap().contains("hunter2"));
    let settings = all
        .iter()
        .find(|e| {
            e["objectRef"]["resource"] == "configmaps"
                && e["objectRef"]["namespace"] == "kube-system"
                && e["verb"] == "create"
                && e["requestObject"]["metadata"]["name"] == "settings"
        })
        .expect("the kube-system configmap is audited");
    assert_eq!(settings["level"], "Request");
    assert!(settings.get("responseObject").is_none());
    assert!(
        find("get", "configmaps", "controller-leader").is_empty(),
        "level None records nothing"
    );
    // A create names its object only in the body, so the policy, like upstream's, sees no name
    // and its resourceNames rule does not match; the event still names the object.
    let leader = find("create", "configmaps", "controller-leader");
    assert_eq!(leader.len(), 1);
    assert_eq!(leader[0]["level"], "Request");
    assert!(
        all.iter().all(|e| e["requestURI"] != "/version"),
        "/version is not audited for authenticated users"
    );
    let denied = find("get", "pods", "audited");
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0]["impersonatedUser"]["username"], "viola");
    assert_eq!(denied[0]["user"]["username"], "kubernetes-admin");
    assert_eq!(denied[0]["responseStatus"]["code"], 403);
    assert_eq!(denied[0]["responseStatus"]["reason"], "Forbidden");
    assert_eq!(
        denied[0]["annotations"]["authorization.k8s.io/decision"], "forbid",
        "{}",
        denied[0]
    );
    assert_eq!(e["annotations"]["authorization.k8s.io/decision"], "allow");
    env.cluster.shutdown().await;
}

#[tokio::test]
async fn secrets_are_encrypted_at_rest() {
    let key = base64::engine::general_purpose::STANDARD.encode([42u8; 32]);
    let env = start(|cfg, dir| {
        let path = dir.join("encryption.yaml");
        std::fs::write(&path, format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - aesgcm:\n      keys:\n      - name: key1\n        secret: {key}\n  - identity: {{}}\n"
        ))
        .unwrap();
        cfg.apiserver.encryption_provider_config = Some(path);
    })
    .await;
    let admin = &env.admin;
    admin
        .create(
            "/api/v1/namespaces/default/secrets",
            &json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "db"}, "stringData": {"password": "hunter2"}}),
        )
        .await;
    admin
        .create(
            "/api/v1/namespaces/default/configmaps",
            &json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "plain"}, "data": {"colour": "blue"}}),
        )
        .await;
    let raw = env
        .cluster
        .raw_store
        .get("/registry/secrets/default/db")
        .await
        .unwrap()
        .unwrap();
    assert!(
        raw.value.starts_with(b"k8s:enc:aesgcm:v1:key1:"),
        "{:?}",
        String::from_utf8_lossy(&raw.value[..30.min(raw.value.len())])
    );
    let encoded = base64::engine::general_purpose::STANDARD.encode("hunter2");
    for needle in ["hunter2", encoded.as_str(), "password"] {
        assert!(
            !raw.value
                .windows(needle.len())
                .any(|w| w == needle.as_bytes()),
            "{needle} is visible at rest"
        );
    }
    let cm = env
        .cluster
        .raw_store
        .get("/registry/configmaps/default/plain")
        .await
        .unwrap()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&cm.value).contains("blue"),
        "other resources are stored as they are"
    );
    let secret = admin
        .get("/api/v1/namespaces/default/secrets/db")
        .await
        .body;
    assert_eq!(
        secret["data"]["password"], encoded,
        "the API serves the decrypted secret"
    );
    let listed = admin.get("/api/v1/namespaces/default/secrets").await.body;
    assert_eq!(listed["items"][0]["data"]["password"], encoded);
    env.cluster.shutdown().await;
}

#[tokio::test]
async fn a_flooding_user_gets_429_and_the_system_keeps_working() {
    let env = start(|cfg, _| {
        // Few seats, so that one share of them is a single seat.
        cfg.apiserver.max_requests_inflight = 4;
        cfg.apiserver.max_mutating_requests_inflight = 2;
    })
    .await;
    let admin = &env.admin;
    admin
        .create("/apis/flowcontrol.apiserver.k8s.io/v1/prioritylevelconfigurations", &json!({
            "apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "PriorityLevelConfiguration",
            "metadata": {"name": "flooders"},
            "spec": {"type": "Limited", "limited": {"nominalConcurrencyShares": 1, "lendablePercent": 0, "limitResponse": {"type": "Reject"}}}}))
        .await;
    admin
        .create("/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas", &json!({
            "apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema",
            "metadata": {"name": "flooders"},
            "spec": {"priorityLevelConfiguration": {"name": "flooders"}, "matchingPrecedence": 500,
                     "distinguisherMethod": {"type": "ByUser"},
                     "rules": [{"subjects": [{"kind": "User", "user": {"name": "flooder"}}],
                                "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"], "namespaces": ["*"], "clusterScope": true}]}]}}))
        .await;
    admin
        .create("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", &json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "flooder-view"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "User", "name": "flooder", "apiGroup": "rbac.authorization.k8s.io"},
                         {"kind": "User", "name": "steady", "apiGroup": "rbac.authorization.k8s.io"}]}))
        .await;
    let flooder = as_user(&env.cluster, "flooder", &[]).await;
    let steady = as_user(&env.cluster, "steady", &[]).await;
    // Lists that wait for a revision that never comes hold their seat until they time out.
    let slow = "/api/v1/namespaces/default/configmaps?resourceVersion=999999999&resourceVersionMatch=NotOlderThan";
    let flood: Vec<_> = (0..12)
        .map(|_| {
            let c = flooder.clone();
            tokio::spawn(async move { c.get(slow).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // While the flood runs, the admin (exempt) and another user (global-default) are served.
    for _ in 0..5 {
        assert_eq!(
            admin
                .get("/api/v1/namespaces/default/configmaps")
                .await
                .code,
            200
        );
        assert_eq!(
            steady
                .get("/api/v1/namespaces/default/configmaps")
                .await
                .code,
            200
        );
    }
    let mut codes = Vec::new();
    for f in flood {
        let r = f.await.unwrap();
        if r.code == 429 {
            assert_eq!(
                r.headers.get("retry-after").and_then(|v| v.to_str().ok()),
                Some("1")
            );
            // Upstream's filter answers in plain text, naming the schema and level it used.
            assert_eq!(
                r.headers.get("content-type").and_then(|v| v.to_str().ok()),
                Some("text/plain; charset=utf-8")
            );
            assert!(r.headers.contains_key("x-kubernetes-pf-prioritylevel-uid"));
            assert!(r.headers.contains_key("x-kubernetes-pf-flowschema-uid"));
        }
        codes.push(r.code);
    }
    let rejected = codes.iter().filter(|c| **c == 429).count();
    assert!(rejected >= 10, "one seat for the flooder: {codes:?}");
    assert!(
        codes.contains(&504),
        "the request holding the seat ran: {codes:?}"
    );
    let metrics = env
        .admin
        .kube
        .request_text(http::Request::get("/metrics").body(Vec::new()).unwrap())
        .await
        .unwrap();
    let line = metrics
        .lines()
        .find(|l| {
            l.starts_with("apiserver_flowcontrol_rejected_requests_total")
                && l.contains("flow_schema=\"flooders\"")
        })
        .unwrap_or_else(|| panic!("no rejection metric in:\n{metrics}"));
    assert!(line.contains("reason=\"concurrency-limit\""), "{line}");
    let count: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert_eq!(count as usize, rejected);
    assert!(metrics.contains("apiserver_flowcontrol_dispatched_requests_total{flow_schema=\"exempt\",priority_level=\"exempt\"}"));
    env.cluster.shutdown().await;
}
