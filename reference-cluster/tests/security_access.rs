//! Who may do what, through real HTTPS against the bundled cluster: every cell of identities ×
//! verbs × resources × namespaces against an expectation written down from the roles'
//! definitions (not from the authorizer), `SelfSubjectAccessReview` agreeing in every cell,
//! the seed's `pod-reader` scenario with upstream's 403 message, impersonation, escalation
//! checks, the review APIs, TokenRequest tokens and ClusterRole aggregation.

mod security_support;

use security_support::*;
use serde_json::{json, Value};

const VERBS: &[&str] = &["get", "list", "watch", "create", "update", "delete"];
const READ: &[&str] = &["get", "list", "watch"];
/// (group, version, resource, kind)
const RESOURCES: &[(&str, &str, &str, &str)] = &[
    ("", "v1", "pods", "Pod"),
    ("", "v1", "secrets", "Secret"),
    ("", "v1", "configmaps", "ConfigMap"),
    ("apps", "v1", "deployments", "Deployment"),
];
const NAMESPACES: &[&str] = &["production", "default"];
const TOKEN_FILE: &str = "dev-token-0123456789,dana,1001,\"developers\"\n";

fn base(group: &str, version: &str, ns: &str, resource: &str) -> String {
    let root = if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    };
    format!("{root}/namespaces/{ns}/{resource}")
}

fn object(group: &str, version: &str, kind: &str, name: &str) -> Value {
    let api_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let mut o = json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "labels": {"app": "probe"}}});
    match kind {
        "Pod" => {
            o["spec"] =
                json!({"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]})
        }
        "Secret" => o["stringData"] = json!({"k": "v"}),
        "ConfigMap" => o["data"] = json!({"k": "v"}),
        "Deployment" => {
            o["spec"] = json!({"selector": {"matchLabels": {"app": "probe"}},
                "template": {"metadata": {"labels": {"app": "probe"}},
                             "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}})
        }
        _ => {}
    }
    o
}

/// The seed's RBAC setup plus a viewer and an editor in `production`.
async fn seed(env: &Env) {
    let admin = &env.admin;
    namespace(admin, "production", json!({})).await;
    admin
        .create(
            "/api/v1/namespaces/production/serviceaccounts",
            &json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "monitoring-sa"}}),
        )
        .await;
    let rbac = "/apis/rbac.authorization.k8s.io/v1/namespaces/production";
    admin
        .create(
            &format!("{rbac}/roles"),
            &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                    "metadata": {"name": "pod-reader"},
                    "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]}),
        )
        .await;
    let binding = |name: &str, kind: &str, role: &str, subject: Value| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": name},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
               "subjects": [subject]})
    };
    for b in [
        binding(
            "read-pods",
            "Role",
            "pod-reader",
            json!({"kind": "ServiceAccount", "name": "monitoring-sa", "namespace": "production"}),
        ),
        binding(
            "viewers",
            "ClusterRole",
            "view",
            json!({"kind": "User", "name": "viola", "apiGroup": "rbac.authorization.k8s.io"}),
        ),
        binding(
            "editors",
            "ClusterRole",
            "edit",
            json!({"kind": "Group", "name": "developers", "apiGroup": "rbac.authorization.k8s.io"}),
        ),
    ] {
        admin.create(&format!("{rbac}/rolebindings"), &b).await;
    }
    // Objects the get/update/delete cells address.
    for ns in NAMESPACES {
        for (group, version, resource, kind) in RESOURCES {
            admin
                .create(
                    &base(group, version, ns, resource),
                    &object(group, version, kind, "probe"),
                )
                .await;
        }
    }
}

struct Identity {
    label: &'static str,
    client: Client,
    /// Whether the identity may `verb` `resource` in `namespace`, from the roles' definitions.
    expect: fn(&str, &str, &str) -> bool,
}

/// One request of a cell; `true` when it was let through (anything but 401/403).
async fn attempt(
    c: &Client,
    verb: &str,
    group: &str,
    version: &str,
    resource: &str,
    kind: &str,
    ns: &str,
) -> (bool, Reply) {
    let url = base(group, version, ns, resource);
    // Writes are dry runs: authorization is the same, and the probes stay for later cells.
    let reply = match verb {
        "get" => c.get(&format!("{url}/probe")).await,
        "list" => c.get(&url).await,
        "watch" => c.get(&format!("{url}?watch=true&timeoutSeconds=1")).await,
        "create" => {
            c.request(
                "POST",
                &format!("{url}?dryRun=All"),
                Some(&object(group, version, kind, "fresh")),
                &[],
            )
            .await
        }
        "update" => {
            c.request(
                "PATCH",
                &format!("{url}/probe?dryRun=All"),
                Some(&json!({"metadata": {"labels": {"touched": "yes"}}})),
                &[],
            )
            .await
        }
        "delete" => {
            c.request("DELETE", &format!("{url}/probe?dryRun=All"), None, &[])
                .await
        }
        other => panic!("no such verb {other}"),
    };
    assert!(
        reply.code < 500,
        "{verb} {url}: server error {:?}",
        reply.body
    );
    (!matches!(reply.code, 401 | 403), reply)
}

async fn can_i(c: &Client, verb: &str, group: &str, resource: &str, ns: &str) -> bool {
    let review = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"verb": verb, "group": group, "resource": resource, "namespace": ns}}});
    let r = c
        .post(
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            &review,
        )
        .await;
    assert_eq!(r.code, 201, "{:?}", r.body);
    r.body["status"]["allowed"] == json!(true)
}

#[tokio::test]
async fn security_matrix_over_https() {
    let env = start(|cfg, dir| {
        let path = dir.join("tokens.csv");
        std::fs::write(&path, TOKEN_FILE).unwrap();
        cfg.apiserver.token_auth_file = Some(path);
    })
    .await;
    seed(&env).await;
    let cluster = &env.cluster;
    let sa_token = service_account_token(
        &env.admin,
        "production",
        "monitoring-sa",
        json!({"spec": {}}),
    )
    .await;
    let identities = vec![
        Identity {
            label: "cluster admin (client certificate, system:masters)",
            client: env.admin.clone(),
            expect: |_, _, _| true,
        },
        Identity {
            label: "monitoring-sa (ServiceAccount token, pod-reader)",
            client: with_token(cluster, &sa_token).await,
            expect: |verb, res, ns| ns == "production" && res == "pods" && READ.contains(&verb),
        },
        Identity {
            label: "viola (client certificate, view)",
            client: as_user(cluster, "viola", &[]).await,
            expect: |verb, res, ns| ns == "production" && res != "secrets" && READ.contains(&verb),
        },
        Identity {
            label: "dana (static token, developers → edit)",
            client: with_token(cluster, "dev-token-0123456789").await,
            expect: |_, _, ns| ns == "production",
        },
        Identity {
            label: "nobody (client certificate, no bindings)",
            client: as_user(cluster, "nobody", &[]).await,
            expect: |_, _, _| false,
        },
    ];
    let mut failures = Vec::new();
    let mut cells = 0;
    for id in &identities {
        for ns in NAMESPACES {
            for (group, version, resource, kind) in RESOURCES {
                for verb in VERBS {
                    cells += 1;
                    let want = (id.expect)(verb, resource, ns);
                    let (got, reply) =
                        attempt(&id.client, verb, group, version, resource, kind, ns).await;
                    if got != want {
                        failures.push(format!(
                            "{}: {verb} {resource} in {ns}: expected {}, got {} {}",
                            id.label,
                            if want { "allowed" } else { "denied" },
                            reply.code,
                            reply.message()
                        ));
                    }
                    if !got && reply.code != 403 {
                        failures.push(format!(
                            "{}: {verb} {resource} in {ns}: refused with {} instead of 403",
                            id.label, reply.code
                        ));
                    }
                    if can_i(&id.client, verb, group, resource, ns).await != want {
                        failures.push(format!(
                            "{}: can-i {verb} {resource} -n {ns} disagrees",
                            id.label
                        ));
                    }
                }
            }
        }
    }
    assert_eq!(cells, 5 * 2 * 4 * 6);
    assert!(
        failures.is_empty(),
        "{} of {cells} cells wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
    env.cluster.shutdown().await;
}

#[tokio::test]
async fn pod_reader_scenario_with_upstream_messages() {
    let env = start(|_, _| {}).await;
    seed(&env).await;
    let token = service_account_token(&env.admin, "production", "monitoring-sa", json!({})).await;
    let sa = with_token(&env.cluster, &token).await;
    assert_eq!(sa.get("/api/v1/namespaces/production/pods").await.code, 200);
    assert_eq!(
        sa.get("/api/v1/namespaces/production/pods/probe")
            .await
            .code,
        200
    );
    let who = "system:serviceaccount:production:monitoring-sa";
    let cases = [
        (
            "GET",
            "/api/v1/namespaces/production/secrets",
            format!(
                r#"secrets is forbidden: User "{who}" cannot list resource "secrets" in API group "" in the namespace "production""#
            ),
        ),
        (
            "GET",
            "/api/v1/namespaces/default/pods",
            format!(
                r#"pods is forbidden: User "{who}" cannot list resource "pods" in API group "" in the namespace "default""#
            ),
        ),
        (
            "DELETE",
            "/api/v1/namespaces/production/pods/probe",
            format!(
                r#"pods "probe" is forbidden: User "{who}" cannot delete resource "pods" in API group "" in the namespace "production""#
            ),
        ),
        (
            "GET",
            "/api/v1/namespaces/production/pods/probe/log",
            format!(
                r#"pods "probe" is forbidden: User "{who}" cannot get resource "pods/log" in API group "" in the namespace "production""#
            ),
        ),
        (
            "GET",
            "/api/v1/nodes",
            format!(
                r#"nodes is forbidden: User "{who}" cannot list resource "nodes" in API group "" at the cluster scope"#
            ),
        ),
        (
            "GET",
            "/apis/apps/v1/namespaces/production/deployments",
            format!(
                r#"deployments.apps is forbidden: User "{who}" cannot list resource "deployments" in API group "apps" in the namespace "production""#
            ),
        ),
    ];
    for (method, uri, message) in cases {
        let r = sa.request(method, uri, None, &[]).await;
        assert_eq!(r.code, 403, "{method} {uri}: {:?}", r.body);
        assert_eq!(r.body["reason"], "Forbidden");
        assert_eq!(r.message(), message);
    }
    let r = sa.get("/api/v1/namespaces/production/secrets").await;
    assert_eq!(r.body["details"], json!({"kind": "secrets"}));
    // Discovery and public info stay open to every authenticated identity.
    assert_eq!(sa.get("/apis").await.code, 200);
    assert_eq!(sa.get("/version").await.code, 200);
    env.cluster.shutdown().await;
}

#[tokio::test]
async fn impersonation_needs_the_impersonate_verb() {
    let env = start(|_, _| {}).await;
    seed(&env).await;
    let admin = &env.admin;
    let as_viola = [("Impersonate-User", "viola")];
    let r = admin
        .request("GET", "/api/v1/namespaces/production/pods", None, &as_viola)
        .await;
    assert_eq!(r.code, 200);
    let r = admin
        .request(
            "GET",
            "/api/v1/namespaces/production/secrets",
            None,
            &as_viola,
        )
        .await;
    assert_eq!(r.code, 403);
    assert_eq!(
        r.message(),
        r#"secrets is forbidden: User "viola" cannot list resource "secrets" in API group "" in the namespace "production""#
    );
    let as_sa = [(
        "Impersonate-User",
        "system:serviceaccount:production:monitoring-sa",
    )];
    let r = admin
        .request("GET", "/api/v1/namespaces/production/pods", None, &as_sa)
        .await;
    assert_eq!(
        r.code, 200,
        "a service account impersonated gets its groups and roles"
    );
    let whoami = admin
        .request(
            "POST",
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            Some(&json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})),
            &[("Impersonate-User", "viola"), ("Impersonate-Group", "qa")],
        )
        .await;
    assert_eq!(whoami.code, 201);
    assert_eq!(
        whoami.body["status"]["userInfo"],
        json!({"username": "viola", "groups": ["qa", "system:authenticated"]})
    );
    let nobody = as_user(&env.cluster, "nobody", &[]).await;
    let r = nobody
        .request("GET", "/api/v1/namespaces/production/pods", None, &as_viola)
        .await;
    assert_eq!(r.code, 403);
    assert_eq!(
        r.message(),
        r#"users "viola" is forbidden: User "nobody" cannot impersonate resource "users" in API group "" at the cluster scope"#
    );
    // Granting impersonation of one user lets nobody act as that user, and only that user.
    admin
        .create("/apis/rbac.authorization.k8s.io/v1/clusterroles", &json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "impersonate-viola"},
            "rules": [{"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"], "resourceNames": ["viola"]}]}))
        .await;
    admin
        .create("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", &json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "nobody-as-viola"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "impersonate-viola"},
            "subjects": [{"kind": "User", "name": "nobody", "apiGroup": "rbac.authorization.k8s.io"}]}))
        .await;
    let r = nobody
        .request("GET", "/api/v1/namespaces/production/pods", None, &as_viola)
        .await;
    assert_eq!(r.code, 200);
    let r = nobody
        .request(
            "GET",
            "/api/v1/namespaces/production/pods",
            None,
            &[
                ("Impersonate-User", "viola"),
                ("Impersonate-Group", "system:masters"),
            ],
        )
        .await;
    assert_eq!(r.code, 403);
    assert_eq!(
        r.message(),
        r#"groups "system:masters" is forbidden: User "nobody" cannot impersonate resource "groups" in API group "" at the cluster scope"#
    );
    env.cluster.shutdown().await;
}

#[tokio::test]
async fn rbac_writes_cannot_escalate() {
    let env = start(|_, _| {}).await;
    seed(&env).await;
    let admin = &env.admin;
    let rbac = "/apis/rbac.authorization.k8s.io/v1/namespaces/production";
    // A namespace manager who may manage roles and bindings but only reads pods.
    admin
        .create(&format!("{rbac}/roles"), &json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "rbac-manager"},
            "rules": [
                {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"], "verbs": ["create", "get", "list"]},
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]}))
        .await;
    admin
        .create(&format!("{rbac}/rolebindings"), &json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "rbac-manager"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "rbac-manager"},
            "subjects": [{"kind": "User", "name": "manny", "apiGroup": "rbac.authorization.k8s.io"}]}))
        .await;
    let manny = as_user(&env.cluster, "manny", &["managers"]).await;
    let r = manny
        .post(&format!("{rbac}/roles"), &json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "secret-reader"},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}))
        .await;
    assert_eq!(r.code, 403, "{:?}", r.body);
    assert_eq!(
        r.message(),
        "roles.rbac.authorization.k8s.io \"secret-reader\" is forbidden: user \"manny\" (groups=[\"managers\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\"]}"
    );
    // A role within what manny holds is fine, and so is binding it.
    let r = manny
        .post(&format!("{rbac}/roles"), &json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "pod-lister"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]}))
        .await;
    assert_eq!(r.code, 201, "{:?}", r.body);
    let bind = |name: &str, kind: &str, role: &str| {
        json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
        "subjects": [{"kind": "User", "name": "intern", "apiGroup": "rbac.authorization.k8s.io"}]})
    };
    assert_eq!(
        manny
            .post(
                &format!("{rbac}/rolebindings"),
                &bind("intern-pods", "Role", "pod-lister")
            )
            .await
            .code,
        201
    );
    let r = manny
        .post(
            &format!("{rbac}/rolebindings"),
            &bind("intern-edit", "ClusterRole", "edit"),
        )
        .await;
    assert_eq!(r.code, 403);
    assert!(
        r.message().starts_with("rolebindings.rbac.authorization.k8s.io \"intern-edit\" is forbidden: user \"manny\" (groups=[\"managers\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:"),
        "{}",
        r.message()
    );
    // With `bind` on the role the same binding is allowed, as upstream.
    admin
        .create(&format!("{rbac}/roles"), &json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "may-bind-edit"},
            "rules": [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["bind"], "resourceNames": ["edit"]}]}))
        .await;
    admin
        .create(&format!("{rbac}/rolebindings"), &json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "manny-binds-edit"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "may-bind-edit"},
            "subjects": [{"kind": "User", "name": "manny", "apiGroup": "rbac.authorization.k8s.io"}]}))
        .await;
    let r = manny
        .post(
            &format!("{rbac}/rolebindings"),
            &bind("intern-edit", "ClusterRole", "edit"),
        )
        .await;
    assert_eq!(r.code, 201, "{:?}", r.body);
    env.cluster.shutdown().await;
}

#[tokio::test]
async fn review_apis_answer_without_storage() {
    let env = start(|_, _| {}).await;
    seed(&env).await;
    let admin = &env.admin;
    let sar = admin
        .post("/apis/authorization.k8s.io/v1/subjectaccessreviews", &json!({
            "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": "viola", "resourceAttributes": {"verb": "list", "resource": "pods", "namespace": "production"}}}))
        .await;
    assert_eq!(sar.code, 201);
    assert_eq!(sar.body["status"]["allowed"], true);
    assert_eq!(
        sar.body["status"]["reason"],
        r#"RBAC: allowed by RoleBinding "viewers/production" of ClusterRole "view" to User "viola""#
    );
    let lsar = admin
        .post("/apis/authorization.k8s.io/v1/namespaces/default/localsubjectaccessreviews", &json!({
            "apiVersion": "authorization.k8s.io/v1", "kind": "LocalSubjectAccessReview",
            "metadata": {"namespace": "default"},
            "spec": {"user": "viola", "resourceAttributes": {"verb": "list", "resource": "pods", "namespace": "default"}}}))
        .await;
    assert_eq!(lsar.code, 201);
    assert_eq!(lsar.body["status"]["allowed"], false);
    let bad = admin
        .post("/apis/authorization.k8s.io/v1/subjectaccessreviews", &json!({
            "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": {"user": "viola"}}))
        .await;
    assert_eq!(bad.code, 422);
    // Reviews are not stored: there is nothing to get or list.
    assert_eq!(
        admin
            .get("/apis/authorization.k8s.io/v1/subjectaccessreviews")
            .await
            .code,
        405
    );
    let viola = as_user(&env.cluster, "viola", &[]).await;
    let rules = viola
        .post("/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", &json!({
            "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview", "spec": {"namespace": "production"}}))
        .await;
    assert_eq!(rules.code, 201);
    let resource_rules = rules.body["status"]["resourceRules"].as_array().unwrap();
    assert!(resource_rules.iter().any(|r| r["resources"]
        .as_array()
        .unwrap()
        .contains(&json!("pods"))
        && r["verbs"].as_array().unwrap().contains(&json!("list"))));
    assert_eq!(rules.body["status"]["incomplete"], false);
    // TokenReview (system:auth-delegator's business; the admin may) of a service account token.
    let token = service_account_token(admin, "production", "monitoring-sa", json!({})).await;
    let tr = admin
        .post("/apis/authentication.k8s.io/v1/tokenreviews", &json!({
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}))
        .await;
    assert_eq!(tr.code, 201);
    assert_eq!(tr.body["status"]["authenticated"], true);
    assert_eq!(
        tr.body["status"]["user"]["username"],
        "system:serviceaccount:production:monitoring-sa"
    );
    assert_eq!(
        tr.body["status"]["user"]["groups"],
        json!([
            "system:serviceaccounts",
            "system:serviceaccounts:production",
            "system:authenticated"
        ])
    );
    let tr = admin
        .post("/apis/authentication.k8s.io/v1/tokenreviews", &json!({
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": "not-a-token"}}))
        .await;
    assert_eq!(tr.code, 201);
    assert!(tr.body["status"].get("authenticated").is_none());
    // Viola may not review tokens.
    let r = viola
        .post("/apis/authentication.k8s.io/v1/tokenreviews", &json!({
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": "x"}}))
        .await;
    assert_eq!(r.code, 403);
    env.cluster.shutdown().await;
}

#[tokio::test]
async fn bound_service_account_tokens_die_with_their_pod() {
    let env = start(|_, _| {}).await;
    seed(&env).await;
    let admin = &env.admin;
    let pod = admin
        .get("/api/v1/namespaces/production/pods/probe")
        .await
        .body;
    let req = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": {"audiences": ["https://kubernetes.default.svc.cluster.local"], "expirationSeconds": 600,
                 "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "probe", "uid": pod["metadata"]["uid"]}}});
    let answer = admin
        .post(
            "/api/v1/namespaces/production/serviceaccounts/monitoring-sa/token",
            &req,
        )
        .await;
    assert_eq!(answer.code, 201, "{:?}", answer.body);
    assert_eq!(answer.body["spec"]["expirationSeconds"], 600);
    let token = answer.body["status"]["token"].as_str().unwrap().to_string();
    assert_eq!(token.split('.').count(), 3, "a JWT");
    let sa = with_token(&env.cluster, &token).await;
    let me = sa
        .post(
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}),
        )
        .await;
    assert_eq!(
        me.body["status"]["userInfo"]["extra"]["authentication.kubernetes.io/pod-name"],
        json!(["probe"])
    );
    assert_eq!(sa.get("/api/v1/namespaces/production/pods").await.code, 200);
    assert_eq!(
        admin
            .delete("/api/v1/namespaces/production/pods/probe")
            .await
            .code,
        200
    );
    assert_eq!(
        sa.get("/api/v1/namespaces/production/pods").await.code,
        401,
        "the pod is gone, so is the token"
    );
    let short = admin
        .post("/api/v1/namespaces/production/serviceaccounts/monitoring-sa/token",
            &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 60}}))
        .await;
    assert_eq!(short.code, 422);
    assert_eq!(
        short.message(),
        "TokenRequest.authentication.k8s.io \"monitoring-sa\" is invalid: spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes"
    );
    let missing = admin
        .post(
            "/api/v1/namespaces/production/serviceaccounts/ghost/token",
            &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest"}),
        )
        .await;
    assert_eq!(missing.code, 404);
    env.cluster.shutdown().await;
}

#[tokio::test]
async fn aggregated_cluster_roles_pick_up_new_rules() {
    let env = start(|_, _| {}).await;
    seed(&env).await;
    let admin = &env.admin;
    let viola = as_user(&env.cluster, "viola", &[]).await;
    let crons = "/apis/batch/v1/namespaces/production/cronjobs";
    // view already aggregates batch reads; a new aggregated role extends it with a verb it
    // lacks, and viola (bound to view) gets it.
    let before = viola
        .request("POST", &format!("{crons}?dryRun=All"), Some(&json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"},
            "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}}})), &[])
        .await;
    assert_eq!(before.code, 403);
    admin
        .create("/apis/rbac.authorization.k8s.io/v1/clusterroles", &json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "cron-creator", "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
            "rules": [{"apiGroups": ["batch"], "resources": ["cronjobs"], "verbs": ["create"]}]}))
        .await;
    let aggregated = eventually(10, || async move {
        let view = admin
            .get("/apis/rbac.authorization.k8s.io/v1/clusterroles/view")
            .await
            .body;
        view["rules"].as_array().is_some_and(|rules| {
            rules
                .iter()
                .any(|r| r["resources"] == json!(["cronjobs"]) && r["verbs"] == json!(["create"]))
        })
    })
    .await;
    assert!(aggregated, "the view ClusterRole aggregates the new rule");
    let after = viola
        .request("POST", &format!("{crons}?dryRun=All"), Some(&json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"},
            "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}}})), &[])
        .await;
    assert_eq!(after.code, 201, "{:?}", after.body);
    // The bootstrap roles are stored with upstream's labels and annotations.
    let admin_role = admin
        .get("/apis/rbac.authorization.k8s.io/v1/clusterroles/cluster-admin")
        .await
        .body;
    assert_eq!(
        admin_role["metadata"]["annotations"]["rbac.authorization.kubernetes.io/autoupdate"],
        "true"
    );
    let basic = admin
        .get("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/system:basic-user")
        .await;
    assert_eq!(basic.code, 200);
    env.cluster.shutdown().await;
}

#[tokio::test]
async fn components_get_least_privilege_identities() {
    use k8s_openapi::api::coordination::v1::Lease;
    use k8s_openapi::api::core::v1::{Node, Pod, Secret};
    use kube::api::{Api, ListParams, Patch, PatchParams};
    let env = start(|_, _| {}).await;
    let cluster = &env.cluster;
    let scheduler = cluster
        .client_as("system:kube-scheduler", &[])
        .await
        .unwrap();
    let pods: Api<Pod> = Api::all(scheduler.clone());
    assert!(
        pods.list(&ListParams::default()).await.is_ok(),
        "the scheduler watches pods everywhere"
    );
    let secrets: Api<Secret> = Api::all(scheduler.clone());
    let err = secrets.list(&ListParams::default()).await.unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 403),
        "the scheduler reads no secrets: {err}"
    );
    let leases: Api<Lease> = Api::namespaced(scheduler, "kube-system");
    let lease: Lease = serde_json::from_value(
        json!({"metadata": {"name": "kube-scheduler"}, "spec": {"holderIdentity": "s1"}}),
    )
    .unwrap();
    assert!(
        leases.create(&Default::default(), &lease).await.is_ok(),
        "leader election"
    );
    assert!(
        leases.list(&ListParams::default()).await.is_err(),
        "but no reading of every lease"
    );
    let kcm = cluster
        .client_as("system:kube-controller-manager", &[])
        .await
        .unwrap();
    let secrets: Api<Secret> = Api::all(kcm);
    assert!(
        secrets.list(&ListParams::default()).await.is_ok(),
        "the controller manager reads secrets"
    );
    let node = cluster
        .client_as("system:node:node-0", &["system:nodes"])
        .await
        .unwrap();
    let nodes: Api<Node> = Api::all(node.clone());
    let status = json!({"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "ok"}]}});
    assert!(nodes
        .patch_status("node-0", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .is_ok());
    let node_secrets: Api<Secret> = Api::all(node);
    assert!(
        node_secrets.list(&ListParams::default()).await.is_err(),
        "a node may not list secrets"
    );
    env.cluster.shutdown().await;
}
