//! The security test matrix: identities × verbs × resources × namespaces, each cell checked
//! against an expectation written down independently of the authorizer, with the bootstrap
//! policy plus the seed's `pod-reader` setup (B-SEC-001..004). `kubectl auth can-i`
//! (SelfSubjectAccessReview) must agree with the authorizer in every cell.

use kubeproof_refcluster::security::bootstrap;
use kubeproof_refcluster::security::rbac::{
    authorize, forbidden, self_subject_access_review, Attributes, RbacSnapshot,
};
use kubeproof_refcluster::security::UserInfo;
use serde_json::{json, Value};

const VERBS: &[&str] = &["get", "list", "watch", "create", "update", "delete"];
const READ: &[&str] = &["get", "list", "watch"];
/// (group, resource)
const RESOURCES: &[(&str, &str)] = &[
    ("", "pods"),
    ("", "secrets"),
    ("", "configmaps"),
    ("apps", "deployments"),
];
const NAMESPACES: &[&str] = &["production", "default"];

/// The bootstrap policy and the seed's `pod-reader` Role, bound to `monitoring-sa`.
fn pod_reader_objects() -> Vec<Value> {
    let mut objects = bootstrap::all();
    objects.extend([
        json!({"kind": "Role", "metadata": {"name": "pod-reader", "namespace": "production"},
               "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]}),
        json!({"kind": "RoleBinding", "metadata": {"name": "read-pods", "namespace": "production"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
               "subjects": [{"kind": "ServiceAccount", "name": "monitoring-sa", "namespace": "production"}]}),
    ]);
    objects
}

fn world() -> RbacSnapshot {
    let mut objects = pod_reader_objects();
    objects.extend([
        json!({"kind": "RoleBinding", "metadata": {"name": "viewers", "namespace": "production"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
               "subjects": [{"kind": "User", "name": "viola", "apiGroup": "rbac.authorization.k8s.io"}]}),
        json!({"kind": "RoleBinding", "metadata": {"name": "editors", "namespace": "production"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
               "subjects": [{"kind": "Group", "name": "developers", "apiGroup": "rbac.authorization.k8s.io"}]}),
    ]);
    let (snap, errors) = RbacSnapshot::from_objects(&objects);
    assert!(errors.is_empty(), "{errors:?}");
    snap
}

struct Identity {
    label: &'static str,
    user: UserInfo,
    /// Whether the identity may `verb` `resource` in `namespace`.
    expect: fn(&str, &str, &str) -> bool,
}

fn identities() -> Vec<Identity> {
    let authed = |name: &str, groups: &[&str]| {
        let mut g: Vec<&str> = groups.to_vec();
        g.push("system:authenticated");
        UserInfo::new(name, &g)
    };
    vec![
        Identity {
            label: "cluster admin",
            user: authed("kubernetes-admin", &["system:masters"]),
            expect: |_, _, _| true,
        },
        Identity {
            label: "monitoring-sa (pod-reader)",
            user: authed(
                "system:serviceaccount:production:monitoring-sa",
                &[
                    "system:serviceaccounts",
                    "system:serviceaccounts:production",
                ],
            ),
            expect: |verb, res, ns| ns == "production" && res == "pods" && READ.contains(&verb),
        },
        Identity {
            label: "viola (view)",
            user: authed("viola", &[]),
            expect: |verb, res, ns| ns == "production" && res != "secrets" && READ.contains(&verb),
        },
        Identity {
            label: "dev (edit)",
            user: authed("dave", &["developers"]),
            expect: |_, _, ns| ns == "production",
        },
        Identity {
            label: "authenticated nobody",
            user: authed("nobody", &[]),
            expect: |_, _, _| false,
        },
        Identity {
            label: "anonymous",
            user: UserInfo::anonymous(),
            expect: |_, _, _| false,
        },
    ]
}

#[test]
fn every_cell_of_the_matrix_matches_its_expectation() {
    let snap = world();
    let mut cells = 0;
    let mut wrong = Vec::new();
    for id in identities() {
        for verb in VERBS {
            for (group, resource) in RESOURCES {
                for ns in NAMESPACES {
                    let name = if matches!(*verb, "list" | "watch" | "create") {
                        ""
                    } else {
                        "x"
                    };
                    let attrs =
                        Attributes::resource(id.user.clone(), verb, group, resource, ns, name);
                    let got = authorize(&attrs, &snap).allowed;
                    let want = (id.expect)(verb, resource, ns);
                    if got != want {
                        wrong.push(format!(
                            "{} {verb} {resource} in {ns}: got {got}, want {want}",
                            id.label
                        ));
                    }
                    // `kubectl auth can-i` answers the same.
                    let review = json!({"spec": {"resourceAttributes": {
                        "namespace": ns, "verb": verb, "group": group, "resource": resource, "name": name}}});
                    let can_i = self_subject_access_review(&review, &id.user, &snap).unwrap();
                    if can_i["status"]["allowed"] != Value::Bool(got) {
                        wrong.push(format!(
                            "{} {verb} {resource} in {ns}: can-i disagrees",
                            id.label
                        ));
                    }
                    cells += 1;
                }
            }
        }
    }
    assert_eq!(cells, 6 * 6 * 4 * 2);
    assert!(
        wrong.is_empty(),
        "{} wrong cells:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn denied_cells_carry_upstream_messages() {
    let snap = world();
    let sa = UserInfo::new(
        "system:serviceaccount:production:monitoring-sa",
        &[
            "system:serviceaccounts",
            "system:serviceaccounts:production",
            "system:authenticated",
        ],
    );
    let create = Attributes::resource(sa.clone(), "create", "", "pods", "production", "");
    let decision = authorize(&create, &snap);
    assert!(!decision.allowed);
    assert_eq!(
        forbidden(&create, &decision.reason).message,
        r#"pods is forbidden: User "system:serviceaccount:production:monitoring-sa" cannot create resource "pods" in API group "" in the namespace "production""#
    );
    let list_default = Attributes::resource(sa, "list", "", "pods", "default", "");
    assert_eq!(
        forbidden(&list_default, "").message,
        r#"pods is forbidden: User "system:serviceaccount:production:monitoring-sa" cannot list resource "pods" in API group "" in the namespace "default""#
    );
}

/// The API server's own chain (`Node,RBAC`) over the same world, with pods bound to nodes.
fn node_world() -> kubeproof_refcluster::apiserver::authz::Authorizer {
    use kubeproof_refcluster::apiserver::authz::Authorizer;
    use kubeproof_refcluster::apiserver::AuthorizationMode;
    let authz = Authorizer::new(&[AuthorizationMode::Node, AuthorizationMode::Rbac]);
    let keyed: Vec<(String, Value)> = pod_reader_objects()
        .into_iter()
        .map(|o| {
            let plural = match o["kind"].as_str().unwrap() {
                "ClusterRole" => "clusterroles",
                "ClusterRoleBinding" => "clusterrolebindings",
                "Role" => "roles",
                _ => "rolebindings",
            };
            let ns = o["metadata"]["namespace"]
                .as_str()
                .map(|n| format!("{n}/"))
                .unwrap_or_default();
            let name = o["metadata"]["name"].as_str().unwrap().to_string();
            (format!("/registry/{plural}/{ns}{name}"), o)
        })
        .collect();
    authz.rbac.reset(&keyed, 1);
    let pod = json!({"metadata": {"name": "web", "namespace": "production"},
        "spec": {"nodeName": "n1", "serviceAccountName": "monitoring-sa",
                 "containers": [{"name": "c", "image": "busybox",
                                 "envFrom": [{"configMapRef": {"name": "settings"}}]}],
                 "volumes": [{"name": "s", "secret": {"secretName": "mounted"}}]}});
    authz
        .node_graph
        .apply("/registry/pods/production/web", 2, Some(&pod));
    authz
}

fn node_identity(name: &str) -> UserInfo {
    UserInfo::new(
        format!("system:node:{name}"),
        &["system:nodes", "system:authenticated"],
    )
}

/// Node identities: SubjectAccessReview, LocalSubjectAccessReview and SelfSubjectAccessReview
/// answer as the request path does (Node authorizer first, then RBAC), with upstream's reasons.
#[test]
fn node_identity_cells_agree_between_reviews_and_requests() {
    use kubeproof_refcluster::security::authorizer::Authorize;
    use kubeproof_refcluster::security::rbac::{
        local_subject_access_review, subject_access_review,
    };
    let authz = node_world();
    // (node, verb, resource, name, allowed, reason when refused)
    let no_relation = |n: &str| format!("no relationship found between node '{n}' and this object");
    let cells: Vec<(&str, &str, &str, &str, bool, String)> = vec![
        ("n1", "get", "secrets", "mounted", true, String::new()),
        ("n1", "watch", "secrets", "mounted", true, String::new()),
        ("n1", "get", "secrets", "other", false, no_relation("n1")),
        ("n2", "get", "secrets", "mounted", false, no_relation("n2")),
        ("n1", "get", "configmaps", "settings", true, String::new()),
        (
            "n1",
            "list",
            "secrets",
            "",
            false,
            "No Object name found".into(),
        ),
        (
            "n1",
            "delete",
            "secrets",
            "mounted",
            false,
            "can only read resources of this type".into(),
        ),
        ("n1", "get", "pods", "web", true, String::new()),
        ("n2", "get", "pods", "web", false, no_relation("n2")),
        // Not subdivided: the static kubelet rules.
        ("n2", "create", "events", "", true, String::new()),
        ("n2", "delete", "services", "x", false, String::new()),
    ];
    let mut wrong = Vec::new();
    for (node, verb, resource, name, allowed, reason) in &cells {
        let user = node_identity(node);
        let attrs = Attributes::resource(user.clone(), verb, "", resource, "production", name);
        let request = authz.authorize(&attrs);
        let spec = json!({"user": user.name, "groups": user.groups,
            "resourceAttributes": {"namespace": "production", "verb": verb, "resource": resource, "name": name}});
        let sar = subject_access_review(&json!({"spec": spec}), &authz).unwrap();
        let lsar = local_subject_access_review(
            &json!({"metadata": {"namespace": "production"}, "spec": spec}),
            "production",
            &authz,
        )
        .unwrap();
        let ssar = self_subject_access_review(
            &json!({"spec": {"resourceAttributes": spec["resourceAttributes"]}}),
            &user,
            &authz,
        )
        .unwrap();
        let mut want = json!({"allowed": allowed});
        if !reason.is_empty() {
            want["reason"] = json!(reason);
        }
        if request.allowed != *allowed || request.reason != *reason {
            wrong.push(format!(
                "{node} {verb} {resource}/{name}: request got {request:?}"
            ));
        }
        for (kind, answer) in [("SAR", &sar), ("LSAR", &lsar), ("SSAR", &ssar)] {
            if answer["status"] != want {
                wrong.push(format!(
                    "{node} {verb} {resource}/{name}: {kind} got {}, want {want}",
                    answer["status"]
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // A pod list narrowed to the node's own pods, as a review's field selector says it.
    let list = |selector: Value| {
        json!({"spec": {"user": "system:node:n1", "groups": ["system:nodes"],
            "resourceAttributes": {"verb": "list", "resource": "pods", "fieldSelector": selector}}})
    };
    let raw =
        subject_access_review(&list(json!({"rawSelector": "spec.nodeName=n1"})), &authz).unwrap();
    assert_eq!(raw["status"], json!({"allowed": true}));
    let reqs = subject_access_review(
        &list(
            json!({"requirements": [{"key": "spec.nodeName", "operator": "In", "values": ["n1"]}]}),
        ),
        &authz,
    )
    .unwrap();
    assert_eq!(reqs["status"], json!({"allowed": true}));
    let other =
        subject_access_review(&list(json!({"rawSelector": "spec.nodeName=n2"})), &authz).unwrap();
    assert_eq!(
        other["status"],
        json!({"allowed": false, "reason": "can only list/watch pods with spec.nodeName field selector"})
    );

    // Someone else keeps RBAC's answer: the Node authorizer has no opinion and no reason.
    let sa = UserInfo::new(
        "system:serviceaccount:production:monitoring-sa",
        &[
            "system:serviceaccounts",
            "system:serviceaccounts:production",
            "system:authenticated",
        ],
    );
    let read = self_subject_access_review(
        &json!({"spec": {"resourceAttributes": {"namespace": "production", "verb": "get", "resource": "pods"}}}),
        &sa,
        &authz,
    )
    .unwrap();
    assert_eq!(
        read["status"],
        json!({"allowed": true, "reason": "RBAC: allowed by RoleBinding \"read-pods/production\" of Role \"pod-reader\" to ServiceAccount \"monitoring-sa/production\""})
    );
    let d = authz.decide(
        &Attributes::resource(sa, "get", "", "secrets", "production", "mounted"),
        None,
    );
    assert_eq!((d.allowed, d.reason.as_str()), (false, ""));
}

/// A node's SelfSubjectRulesReview (`kubectl auth can-i --list` as a node): upstream's Node
/// authorizer enumerates nothing and marks the answer incomplete; RBAC's rules still show.
#[test]
fn node_rules_review_is_incomplete_as_upstream() {
    use kubeproof_refcluster::security::rbac::self_subject_rules_review;
    let authz = node_world();
    let out = self_subject_rules_review(
        &json!({"spec": {"namespace": "production"}}),
        &node_identity("n1"),
        &authz,
    )
    .unwrap();
    assert_eq!(out["status"]["incomplete"], true);
    assert_eq!(
        out["status"]["evaluationError"],
        "node authorizer does not support user rule resolution"
    );
    let rules = out["status"]["resourceRules"].as_array().unwrap();
    assert!(
        rules.iter().any(|r| r["resources"]
            .as_array()
            .unwrap()
            .contains(&json!("selfsubjectaccessreviews"))),
        "RBAC's rules for system:authenticated are listed: {rules:?}"
    );
    let sa = UserInfo::new(
        "system:serviceaccount:production:monitoring-sa",
        &["system:serviceaccounts", "system:authenticated"],
    );
    let out = self_subject_rules_review(&json!({"spec": {"namespace": "production"}}), &sa, &authz)
        .unwrap();
    assert_eq!(out["status"]["incomplete"], false);
    assert!(out["status"].get("evaluationError").is_none());
}

/// RBAC writes judged as the API server judges them: `escalate`/`bind` asked of its whole chain
/// (`Node,RBAC` after the privileged groups), else the writer must hold the rules (resolved by
/// RBAC alone, as upstream's registry does).
#[test]
fn escalation_cells_ask_the_authorizer_chain() {
    use kubeproof_refcluster::apiserver::authz::Authorizer;
    use kubeproof_refcluster::apiserver::AuthorizationMode;
    use kubeproof_refcluster::security::rbac::{check_binding_escalation, check_role_escalation};
    let rbac = "rbac.authorization.k8s.io";
    let mut objects = pod_reader_objects();
    objects.extend([
        json!({"kind": "RoleBinding", "metadata": {"name": "viewers", "namespace": "production"},
               "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": "view"},
               "subjects": [{"kind": "User", "name": "viola", "apiGroup": rbac}]}),
        json!({"kind": "Role", "metadata": {"name": "escalator", "namespace": "production"},
               "rules": [{"apiGroups": [rbac], "resources": ["roles"], "verbs": ["escalate"]}]}),
        json!({"kind": "RoleBinding", "metadata": {"name": "erin-escalates", "namespace": "production"},
               "roleRef": {"apiGroup": rbac, "kind": "Role", "name": "escalator"},
               "subjects": [{"kind": "User", "name": "erin", "apiGroup": rbac}]}),
        json!({"kind": "Role", "metadata": {"name": "admin-binder", "namespace": "production"},
               "rules": [{"apiGroups": [rbac], "resources": ["clusterroles"], "verbs": ["bind"], "resourceNames": ["admin"]}]}),
        json!({"kind": "RoleBinding", "metadata": {"name": "bob-binds", "namespace": "production"},
               "roleRef": {"apiGroup": rbac, "kind": "Role", "name": "admin-binder"},
               "subjects": [{"kind": "User", "name": "bob", "apiGroup": rbac}]}),
    ]);
    let (snap, errors) = RbacSnapshot::from_objects(&objects);
    assert!(errors.is_empty(), "{errors:?}");
    let authz = Authorizer::new(&[AuthorizationMode::Node, AuthorizationMode::Rbac]);
    let keyed: Vec<(String, Value)> = objects
        .iter()
        .map(|o| {
            let plural = match o["kind"].as_str().unwrap() {
                "ClusterRole" => "clusterroles",
                "ClusterRoleBinding" => "clusterrolebindings",
                "Role" => "roles",
                _ => "rolebindings",
            };
            let ns = o["metadata"]["namespace"]
                .as_str()
                .map(|n| format!("{n}/"))
                .unwrap_or_default();
            let name = o["metadata"]["name"].as_str().unwrap();
            (format!("/registry/{plural}/{ns}{name}"), o.clone())
        })
        .collect();
    authz.rbac.reset(&keyed, 1);
    let authed = |name: &str, groups: &[&str]| {
        let mut g = groups.to_vec();
        g.push("system:authenticated");
        UserInfo::new(name, &g)
    };
    let admin = authed("kubernetes-admin", &["system:masters"]);
    let viola = authed("viola", &[]);
    let erin = authed("erin", &[]);
    let bob = authed("bob", &[]);
    let n1 = node_identity("n1");
    let pods_reader =
        json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]);
    let secrets_reader = json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]);
    let role = |ns: &str, rules: &Value| json!({"kind": "Role", "metadata": {"name": "r", "namespace": ns}, "rules": rules});
    let binding = |ns: &str, kind: &str, name: &str| {
        json!({"kind": "RoleBinding", "metadata": {"name": "b", "namespace": ns},
               "roleRef": {"apiGroup": rbac, "kind": kind, "name": name},
               "subjects": [{"kind": "User", "name": "someone", "apiGroup": rbac}]})
    };
    enum Write {
        /// Create a Role with these rules in a namespace.
        Role(&'static str, Value),
        /// Create a RoleBinding in a namespace to a role of this kind and name.
        Bind(&'static str, &'static str, &'static str),
    }
    use Write::{Bind, Role};
    let cells: Vec<(&UserInfo, &str, Write, bool)> = vec![
        (
            &admin,
            "admin creates any role",
            Role("default", secrets_reader.clone()),
            true,
        ),
        (
            &admin,
            "admin binds admin",
            Bind("default", "ClusterRole", "admin"),
            true,
        ),
        (
            &viola,
            "view holder creates a pod-reading role",
            Role("production", pods_reader.clone()),
            true,
        ),
        (
            &viola,
            "view holder creates a secret-reading role",
            Role("production", secrets_reader.clone()),
            false,
        ),
        (
            &viola,
            "view holder creates a role where she holds nothing",
            Role("default", pods_reader.clone()),
            false,
        ),
        (
            &viola,
            "view holder binds pod-reader",
            Bind("production", "Role", "pod-reader"),
            true,
        ),
        (
            &viola,
            "view holder binds admin",
            Bind("production", "ClusterRole", "admin"),
            false,
        ),
        (
            &erin,
            "escalate on roles there",
            Role("production", secrets_reader.clone()),
            true,
        ),
        (
            &erin,
            "escalate only in its namespace",
            Role("default", secrets_reader.clone()),
            false,
        ),
        (
            &bob,
            "bind on that cluster role by name",
            Bind("production", "ClusterRole", "admin"),
            true,
        ),
        (
            &bob,
            "bind only in its namespace",
            Bind("default", "ClusterRole", "admin"),
            false,
        ),
        (
            &bob,
            "bind only that cluster role",
            Bind("production", "ClusterRole", "edit"),
            false,
        ),
        // The Node authorizer lets n1 read pods bound to it, but grants neither `escalate` nor
        // `bind`, and rules are resolved by RBAC alone: a node cannot pass its access on.
        (
            &n1,
            "node creates a pod-reading role",
            Role("production", pods_reader.clone()),
            false,
        ),
        (
            &n1,
            "node binds pod-reader",
            Bind("production", "Role", "pod-reader"),
            false,
        ),
    ];
    let mut wrong = Vec::new();
    for (user, label, write, allowed) in &cells {
        let got = match write {
            Role(ns, rules) => {
                check_role_escalation(&authz, user, ns, "", &role(ns, rules), None, &snap).is_ok()
            }
            Bind(ns, kind, name) => {
                check_binding_escalation(&authz, user, &binding(ns, kind, name), None, &snap)
                    .is_ok()
            }
        };
        if got != *allowed {
            wrong.push(format!("{label} ({}): want allowed={allowed}", user.name));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
