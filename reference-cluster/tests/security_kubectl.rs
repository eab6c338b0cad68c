//! kubectl 1.32's security commands against the bundled cluster, as a user would run them:
//! `auth can-i` (with `--list` and `--as`), `auth whoami`, `create token`, and the errors it
//! prints for refused requests. kubectl sends protobuf bodies for some of these. kubectl runs
//! blocking, so the cluster needs a worker thread of its own.

mod security_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use security_support::*;
use serde_json::{json, Value};

struct Kubectl {
    kubeconfig: PathBuf,
}

impl Kubectl {
    fn new(dir: &Path, name: &str, yaml: &str) -> Kubectl {
        let kubeconfig = dir.join(format!("{name}.kubeconfig"));
        std::fs::write(&kubeconfig, yaml).unwrap();
        Kubectl { kubeconfig }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("kubectl")
            .env("KUBECONFIG", &self.kubeconfig)
            .args(args)
            .output()
            .expect("kubectl runs")
    }

    /// stdout of a command that must succeed.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "kubectl {} failed:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// (exit code, stdout, stderr)
    fn outcome(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.run(args);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_auth_commands_agree_with_rbac() {
    let env = start(|_, _| {}).await;
    let admin = &env.admin;
    namespace(admin, "production", json!({})).await;
    admin
        .create("/api/v1/namespaces/production/serviceaccounts",
            &json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "monitoring-sa"}}))
        .await;
    let rbac = "/apis/rbac.authorization.k8s.io/v1/namespaces/production";
    admin
        .create(&format!("{rbac}/roles"), &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "pod-reader"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]}))
        .await;
    admin
        .create(&format!("{rbac}/rolebindings"), &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "read-pods"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "monitoring-sa", "namespace": "production"}]}))
        .await;
    admin
        .create("/api/v1/namespaces/production/pods", &pod("web"))
        .await;
    let dir = env.dir.path();
    let admin_ctl = Kubectl::new(
        dir,
        "admin",
        &std::fs::read_to_string(env.cluster.kubeconfig_path()).unwrap(),
    );

    // kubectl create token (TokenRequest), then act with the token.
    let token = admin_ctl.ok(&[
        "create",
        "token",
        "monitoring-sa",
        "-n",
        "production",
        "--duration",
        "15m",
    ]);
    let token = token.trim();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    let sa = Kubectl::new(
        dir,
        "sa",
        &kubeconfig_with(&env.cluster, json!({"token": token})),
    );

    let can = |ctl: &Kubectl, args: &[&str]| {
        let mut full = vec!["auth", "can-i"];
        full.extend_from_slice(args);
        ctl.outcome(&full)
    };
    assert_eq!(
        can(&sa, &["list", "pods", "-n", "production"]),
        (0, "yes".into(), String::new())
    );
    assert_eq!(can(&sa, &["watch", "pods", "-n", "production"]).1, "yes");
    let (code, out, _) = can(&sa, &["delete", "pods", "-n", "production"]);
    assert_eq!((code, out.as_str()), (1, "no"));
    assert_eq!(can(&sa, &["list", "pods", "-n", "default"]).1, "no");
    assert_eq!(can(&sa, &["get", "secrets", "-n", "production"]).1, "no");

    // --as: the admin asks on the service account's behalf (impersonation).
    let who = "system:serviceaccount:production:monitoring-sa";
    assert_eq!(
        can(
            &admin_ctl,
            &["get", "pods", "-n", "production", "--as", who]
        )
        .1,
        "yes"
    );
    assert_eq!(
        can(
            &admin_ctl,
            &["create", "pods", "-n", "production", "--as", who]
        )
        .1,
        "no"
    );
    assert_eq!(
        can(&admin_ctl, &["create", "pods", "-n", "production"]).1,
        "yes"
    );

    // --list: the rules the service account holds in production.
    let list = sa.ok(&["auth", "can-i", "--list", "-n", "production"]);
    let pods_line = list
        .lines()
        .find(|l| l.starts_with("pods "))
        .unwrap_or_else(|| panic!("no pods rule in:\n{list}"));
    assert!(pods_line.ends_with("[get list watch]"), "{pods_line}");
    assert!(
        list.lines()
            .any(|l| l.starts_with("selfsubjectaccessreviews.authorization.k8s.io")),
        "{list}"
    );

    // whoami (SelfSubjectReview).
    let me: Value = serde_json::from_str(&sa.ok(&["auth", "whoami", "-o", "json"])).unwrap();
    assert_eq!(me["kind"], "SelfSubjectReview");
    assert_eq!(me["status"]["userInfo"]["username"], who);
    assert_eq!(
        me["status"]["userInfo"]["groups"],
        json!([
            "system:serviceaccounts",
            "system:serviceaccounts:production",
            "system:authenticated"
        ])
    );
    let admin_me: Value =
        serde_json::from_str(&admin_ctl.ok(&["auth", "whoami", "-o", "json"])).unwrap();
    assert_eq!(
        admin_me["status"]["userInfo"]["username"],
        "kubernetes-admin"
    );

    // What the user sees when refused.
    assert!(sa.ok(&["get", "pods", "-n", "production"]).contains("web"));
    let (code, _, err) = sa.outcome(&["get", "secrets", "-n", "production"]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        format!(
            r#"Error from server (Forbidden): secrets is forbidden: User "{who}" cannot list resource "secrets" in API group "" in the namespace "production""#
        )
    );
    // A user kubeconfig with a client certificate from the cluster CA.
    let quinn = Kubectl::new(
        dir,
        "quinn",
        &env.cluster.kubeconfig_for("quinn", &["qa"]).unwrap(),
    );
    assert_eq!(
        quinn.ok(&[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}"
        ]),
        "quinn"
    );
    let (code, _, err) = quinn.outcome(&["get", "namespaces"]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        r#"Error from server (Forbidden): namespaces is forbidden: User "quinn" cannot list resource "namespaces" in API group "" at the cluster scope"#
    );
    env.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_shows_pod_security_refusals() {
    let env = start(|_, _| {}).await;
    namespace(&env.admin, "locked", json!({"pod-security.kubernetes.io/enforce": "baseline", "pod-security.kubernetes.io/warn": "restricted"})).await;
    let ctl = Kubectl::new(
        env.dir.path(),
        "admin",
        &std::fs::read_to_string(env.cluster.kubeconfig_path()).unwrap(),
    );
    let (code, _, err) = ctl.outcome(&[
        "run",
        "root",
        "-n",
        "locked",
        "--image=nginx",
        "--restart=Never",
        "--overrides",
        r#"{"spec": {"hostNetwork": true}}"#,
    ]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        r#"Error from server (Forbidden): pods "root" is forbidden: violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true)"#
    );
    let (code, out, err) = ctl.outcome(&[
        "run",
        "plain",
        "-n",
        "locked",
        "--image=nginx",
        "--restart=Never",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "pod/plain created");
    assert!(
        err.starts_with(r#"Warning: would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false"#),
        "{err}"
    );
    env.cluster.shutdown().await;
}

/// `kubectl auth can-i --as system:node:<n> --as-group system:nodes` and a SubjectAccessReview
/// about a node get the Node authorizer's answer, as the node's own requests do: the secret a
/// pod bound to the node mounts, yes; any other, no, with upstream's reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn can_i_as_a_node_asks_the_node_authorizer() {
    let env = start(|_, _| {}).await;
    let admin = &env.admin;
    namespace(admin, "apps", json!({})).await;
    for name in ["mounted", "unrelated"] {
        admin
            .create(
                "/api/v1/namespaces/apps/secrets",
                &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}}),
            )
            .await;
    }
    admin
        .create(
            "/api/v1/namespaces/apps/pods",
            &json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web"},
            "spec": {"nodeName": "node-0",
                     "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}],
                     "volumes": [{"name": "s", "secret": {"secretName": "mounted"}}]}}),
        )
        .await;
    let sar = |user: &str, name: &str| {
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": user, "groups": ["system:nodes", "system:authenticated"],
                     "resourceAttributes": {"namespace": "apps", "verb": "get", "resource": "secrets", "name": name}}})
    };
    let uri = "/apis/authorization.k8s.io/v1/subjectaccessreviews";
    // The node graph follows the store; the pod may take a moment to reach it.
    let related = eventually(10, || async {
        admin
            .post(uri, &sar("system:node:node-0", "mounted"))
            .await
            .body["status"]["allowed"]
            == true
    })
    .await;
    assert!(related, "node-0 never got the secret its pod mounts");
    let other = admin
        .post(uri, &sar("system:node:node-0", "unrelated"))
        .await;
    assert_eq!(other.code, 201);
    assert_eq!(
        other.body["status"],
        json!({"allowed": false, "reason": "no relationship found between node 'node-0' and this object"})
    );
    let node1 = admin.post(uri, &sar("system:node:node-1", "mounted")).await;
    assert_eq!(
        node1.body["status"],
        json!({"allowed": false, "reason": "no relationship found between node 'node-1' and this object"})
    );

    let ctl = Kubectl::new(
        env.dir.path(),
        "admin",
        &std::fs::read_to_string(env.cluster.kubeconfig_path()).unwrap(),
    );
    let can = |what: &str| {
        ctl.outcome(&[
            "auth",
            "can-i",
            "get",
            what,
            "-n",
            "apps",
            "--as",
            "system:node:node-0",
            "--as-group",
            "system:nodes",
        ])
    };
    assert_eq!(can("secret/mounted"), (0, "yes".into(), String::new()));
    assert_eq!(
        can("secret/unrelated"),
        (
            1,
            "no - no relationship found between node 'node-0' and this object".into(),
            String::new()
        )
    );
    assert_eq!(can("pod/web").1, "yes");
    env.cluster.shutdown().await;
}
