use serde_json::{json, Value};

use super::*;

fn snap(objects: &[Value]) -> RbacSnapshot {
    let (s, errors) = RbacSnapshot::from_objects(objects);
    assert!(errors.is_empty(), "{errors:?}");
    s
}

fn role(ns: &str, name: &str, rules: Value) -> Value {
    json!({"kind": "Role", "metadata": {"name": name, "namespace": ns}, "rules": rules})
}

fn cluster_role(name: &str, rules: Value) -> Value {
    json!({"kind": "ClusterRole", "metadata": {"name": name}, "rules": rules})
}

fn role_binding(ns: &str, name: &str, kind: &str, role: &str, subjects: Value) -> Value {
    json!({
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": ns},
        "roleRef": {"apiGroup": GROUP, "kind": kind, "name": role},
        "subjects": subjects,
    })
}

fn cluster_binding(name: &str, role: &str, subjects: Value) -> Value {
    json!({
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": role},
        "subjects": subjects,
    })
}

fn pod_reader_world() -> Vec<Value> {
    vec![
        role(
            "dev",
            "pod-reader",
            json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]),
        ),
        role_binding(
            "dev",
            "read-pods",
            "Role",
            "pod-reader",
            json!([{"kind": "User", "name": "jane", "apiGroup": GROUP}]),
        ),
    ]
}

fn jane() -> UserInfo {
    UserInfo::new("jane", &["system:authenticated"])
}

#[test]
fn role_binding_grants_only_in_its_namespace() {
    let s = snap(&pod_reader_world());
    for verb in ["get", "list", "watch"] {
        let a = Attributes::resource(jane(), verb, "", "pods", "dev", "");
        assert!(authorize(&a, &s).allowed, "{verb}");
    }
    let other_ns = Attributes::resource(jane(), "list", "", "pods", "prod", "");
    assert!(!authorize(&other_ns, &s).allowed);
    let cluster = Attributes::resource(jane(), "list", "", "pods", "", "");
    assert!(!authorize(&cluster, &s).allowed);
    let delete = Attributes::resource(jane(), "delete", "", "pods", "dev", "p");
    assert!(!authorize(&delete, &s).allowed);
    let logs = Attributes::resource(jane(), "get", "", "pods", "dev", "p").with_subresource("log");
    assert!(!authorize(&logs, &s).allowed);
    let ok = authorize(
        &Attributes::resource(jane(), "get", "", "pods", "dev", "p"),
        &s,
    );
    assert_eq!(
        ok.reason,
        r#"RBAC: allowed by RoleBinding "read-pods/dev" of Role "pod-reader" to User "jane""#
    );
}

#[test]
fn role_binding_to_cluster_role_is_scoped_to_the_binding_namespace() {
    let s = snap(&[
        cluster_role(
            "secret-reader",
            json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]),
        ),
        role_binding(
            "dev",
            "rb",
            "ClusterRole",
            "secret-reader",
            json!([{"kind": "Group", "name": "devs", "apiGroup": GROUP}]),
        ),
    ]);
    let dev = UserInfo::new("bob", &["devs"]);
    assert!(
        authorize(
            &Attributes::resource(dev.clone(), "get", "", "secrets", "dev", "s"),
            &s
        )
        .allowed
    );
    assert!(
        !authorize(
            &Attributes::resource(dev, "get", "", "secrets", "prod", "s"),
            &s
        )
        .allowed
    );
}

#[test]
fn service_account_subjects_default_to_the_binding_namespace() {
    let s = snap(&[
        cluster_role(
            "r",
            json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["*"]}]),
        ),
        role_binding(
            "ns1",
            "b",
            "ClusterRole",
            "r",
            json!([{"kind": "ServiceAccount", "name": "bot"}]),
        ),
        cluster_binding(
            "cb",
            "r",
            json!([{"kind": "ServiceAccount", "name": "global", "namespace": "ops"}]),
        ),
    ]);
    let bot = UserInfo::new("system:serviceaccount:ns1:bot", &[]);
    let bot2 = UserInfo::new("system:serviceaccount:ns2:bot", &[]);
    let global = UserInfo::new("system:serviceaccount:ops:global", &[]);
    let a = |u: &UserInfo, ns: &str| {
        Attributes::resource(u.clone(), "create", "", "configmaps", ns, "")
    };
    assert!(authorize(&a(&bot, "ns1"), &s).allowed);
    assert!(!authorize(&a(&bot2, "ns1"), &s).allowed);
    assert!(authorize(&a(&global, "anywhere"), &s).allowed);
    assert_eq!(
        authorize(&a(&bot, "ns1"), &s).reason,
        r#"RBAC: allowed by RoleBinding "b/ns1" of ClusterRole "r" to ServiceAccount "bot/ns1""#
    );
}

#[test]
fn masters_are_always_allowed_and_missing_roles_are_reported() {
    let s = snap(&[role_binding(
        "dev",
        "dangling",
        "Role",
        "gone",
        json!([{"kind": "User", "name": "jane"}]),
    )]);
    let root = UserInfo::new("root", &["system:masters"]);
    assert!(authorize(&Attributes::non_resource(root, "delete", "/anything"), &s).allowed);
    let d = authorize(
        &Attributes::resource(jane(), "get", "", "pods", "dev", ""),
        &s,
    );
    assert!(!d.allowed);
    assert_eq!(
        d.reason,
        r#"RBAC: role.rbac.authorization.k8s.io "gone" not found"#
    );
}

#[test]
fn forbidden_messages_match_upstream() {
    let list = Attributes::resource(UserInfo::new("x", &[]), "list", "", "pods", "y", "");
    assert_eq!(
        forbidden(&list, "").message,
        r#"pods is forbidden: User "x" cannot list resource "pods" in API group "" in the namespace "y""#
    );
    let get = Attributes::resource(
        UserInfo::new("x", &[]),
        "get",
        "apps",
        "deployments",
        "y",
        "web",
    )
    .with_subresource("scale");
    let f = forbidden(&get, "");
    assert_eq!(
        f.message,
        r#"deployments.apps "web" is forbidden: User "x" cannot get resource "deployments/scale" in API group "apps" in the namespace "y""#
    );
    assert_eq!(
        f.details,
        json!({"name": "web", "group": "apps", "kind": "deployments"})
    );
    assert_eq!(f.to_status()["code"], 403);
    let nodes = Attributes::resource(UserInfo::new("x", &[]), "list", "", "nodes", "", "");
    assert_eq!(
        forbidden(&nodes, "").message,
        r#"nodes is forbidden: User "x" cannot list resource "nodes" in API group "" at the cluster scope"#
    );
    let path = Attributes::non_resource(UserInfo::new("system:anonymous", &[]), "get", "/metrics");
    assert_eq!(
        forbidden(&path, "").message,
        r#"forbidden: User "system:anonymous" cannot get path "/metrics""#
    );
    assert_eq!(
        forbidden(
            &list,
            r#"RBAC: role.rbac.authorization.k8s.io "gone" not found"#
        )
        .message,
        r#"pods is forbidden: User "x" cannot list resource "pods" in API group "" in the namespace "y": RBAC: role.rbac.authorization.k8s.io "gone" not found"#
    );
}

fn role_admin_world() -> Vec<Value> {
    let mut w = pod_reader_world();
    w.push(role(
        "dev",
        "role-admin",
        // Explicit verbs: `*` would include `escalate` and `bind`.
        json!([{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"], "verbs": ["get", "list", "create", "update", "patch", "delete"]}]),
    ));
    w.push(role_binding(
        "dev",
        "jane-role-admin",
        "Role",
        "role-admin",
        json!([{"kind": "User", "name": "jane"}]),
    ));
    w
}

#[test]
fn role_escalation_requires_holding_the_rules_or_escalate() {
    let s = snap(&role_admin_world());
    let same = role(
        "dev",
        "r2",
        json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]),
    );
    assert!(check_role_escalation(&s, &jane(), "dev", "", &same, None, &s).is_ok());
    let more = role(
        "dev",
        "r3",
        json!([{"apiGroups": [""], "resources": ["pods", "secrets"], "verbs": ["get", "delete"]}]),
    );
    let err = check_role_escalation(&s, &jane(), "dev", "", &more, None, &s).unwrap_err();
    assert_eq!(
        err.message,
        "roles.rbac.authorization.k8s.io \"r3\" is forbidden: user \"jane\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"delete\"]}\n{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\" \"delete\"]}"
    );
    // With `escalate` on roles the same write passes.
    let mut w = role_admin_world();
    w.push(role(
        "dev",
        "escalator",
        json!([{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["escalate"]}]),
    ));
    w.push(role_binding(
        "dev",
        "e",
        "Role",
        "escalator",
        json!([{"kind": "User", "name": "jane"}]),
    ));
    assert!(check_role_escalation(&snap(&w), &jane(), "dev", "", &more, None, &snap(&w)).is_ok());
    // Only-GC updates are never blocked.
    let mut with_owner = more.clone();
    with_owner["metadata"]["finalizers"] = json!(["x"]);
    assert!(check_role_escalation(&s, &jane(), "dev", "r3", &with_owner, Some(&more), &s).is_ok());
}

#[test]
fn aggregation_rule_requires_full_authority() {
    let s = snap(&[
        cluster_role(
            "role-writer",
            json!([{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["create", "update"]}]),
        ),
        cluster_binding("b", "role-writer", json!([{"kind": "User", "name": "ops"}])),
    ]);
    let ops = UserInfo::new("ops", &[]);
    let mut agg = cluster_role("agg", json!([]));
    agg["aggregationRule"] = json!({"clusterRoleSelectors": [{"matchLabels": {"a": "b"}}]});
    let err = check_role_escalation(&s, &ops, "", "", &agg, None, &s).unwrap_err();
    assert_eq!(
        err.message,
        r#"clusterroles.rbac.authorization.k8s.io "agg" is forbidden: must have cluster-admin privileges to use the aggregationRule"#
    );
    let root = UserInfo::new("root", &["system:masters"]);
    assert!(check_role_escalation(&s, &root, "", "", &agg, None, &s).is_ok());
    // `*` on everything includes `escalate`, so a cluster admin by RBAC may set it too.
    let admin = snap(&[
        cluster_role(
            "all",
            json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]),
        ),
        cluster_binding("b", "all", json!([{"kind": "User", "name": "ops"}])),
    ]);
    assert!(check_role_escalation(&admin, &ops, "", "", &agg, None, &admin).is_ok());
}

#[test]
fn binding_requires_bind_or_holding_the_role() {
    let mut w = role_admin_world();
    w.push(cluster_role(
        "admin-ish",
        json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]),
    ));
    let s = snap(&w);
    let ok = role_binding(
        "dev",
        "b1",
        "Role",
        "pod-reader",
        json!([{"kind": "User", "name": "tom"}]),
    );
    assert!(check_binding_escalation(&s, &jane(), &ok, None, &s).is_ok());
    let too_much = role_binding(
        "dev",
        "b2",
        "ClusterRole",
        "admin-ish",
        json!([{"kind": "User", "name": "tom"}]),
    );
    let err = check_binding_escalation(&s, &jane(), &too_much, None, &s).unwrap_err();
    assert!(
        err.message.starts_with(
            "rolebindings.rbac.authorization.k8s.io \"b2\" is forbidden: user \"jane\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n"
        ),
        "{}",
        err.message
    );
    let missing = role_binding("dev", "b3", "Role", "nope", json!([]));
    assert_eq!(
        check_binding_escalation(&s, &jane(), &missing, None, &s)
            .unwrap_err()
            .message,
        r#"rolebindings.rbac.authorization.k8s.io "b3" is forbidden: role.rbac.authorization.k8s.io "nope" not found"#
    );
    // `bind` on that cluster role by name lets jane bind it.
    w.push(role(
        "dev",
        "binder",
        json!([{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["bind"], "resourceNames": ["admin-ish"]}]),
    ));
    w.push(role_binding(
        "dev",
        "bb",
        "Role",
        "binder",
        json!([{"kind": "User", "name": "jane"}]),
    ));
    assert!(check_binding_escalation(&snap(&w), &jane(), &too_much, None, &snap(&w)).is_ok());
}

#[test]
fn aggregation_collects_matching_roles_in_name_order_without_duplicates() {
    let mut roles = vec![
        {
            let mut r = cluster_role("monitoring", json!([]));
            r["aggregationRule"] = json!({"clusterRoleSelectors": [
                {"matchLabels": {"rbac.example.com/aggregate-to-monitoring": "true"}}
            ]});
            r
        },
        json!({"kind": "ClusterRole", "metadata": {"name": "b-endpoints", "labels": {"rbac.example.com/aggregate-to-monitoring": "true"}},
               "rules": [{"apiGroups": [""], "resources": ["endpoints"], "verbs": ["get"]},
                         {"apiGroups": [""], "resources": ["services"], "verbs": ["get"]}]}),
        json!({"kind": "ClusterRole", "metadata": {"name": "a-services", "labels": {"rbac.example.com/aggregate-to-monitoring": "true"}},
               "rules": [{"apiGroups": [""], "resources": ["services"], "verbs": ["get"]}]}),
        json!({"kind": "ClusterRole", "metadata": {"name": "other"},
               "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}),
    ];
    let changed = aggregate_all(&mut roles);
    assert_eq!(changed, vec!["monitoring".to_string()]);
    assert_eq!(
        roles[0]["rules"],
        json!([{"verbs": ["get"], "apiGroups": [""], "resources": ["services"]},
               {"verbs": ["get"], "apiGroups": [""], "resources": ["endpoints"]}])
    );
    assert!(
        aggregate_all(&mut roles).is_empty(),
        "a second sync changes nothing"
    );
    assert_eq!(aggregated_rules(&roles[1], &roles), None);
}

#[test]
fn access_reviews_answer_like_can_i() {
    let s = snap(&pod_reader_world());
    let sar = json!({
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": "jane", "resourceAttributes": {"namespace": "dev", "verb": "list", "resource": "pods"}}
    });
    let out = subject_access_review(&sar, &s).unwrap();
    assert_eq!(out["status"]["allowed"], true);
    assert_eq!(out["metadata"]["creationTimestamp"], Value::Null);
    assert_eq!(out["spec"], sar["spec"]);
    let denied = json!({"spec": {"user": "jane", "resourceAttributes": {"namespace": "dev", "verb": "delete", "resource": "pods"}}});
    assert_eq!(
        subject_access_review(&denied, &s).unwrap()["status"],
        json!({"allowed": false})
    );
    let bad = json!({"spec": {"resourceAttributes": {"verb": "get"}}});
    let err = subject_access_review(&bad, &s).unwrap_err();
    assert_eq!(err.code, 422);
    assert_eq!(
        err.message,
        r#"SubjectAccessReview.authorization.k8s.io "" is invalid: spec.user: Invalid value: "": at least one of user or group must be specified"#
    );
    let ssar = json!({"spec": {"resourceAttributes": {"namespace": "dev", "verb": "watch", "resource": "pods"}}});
    let out = self_subject_access_review(&ssar, &jane(), &s).unwrap();
    assert_eq!(out["kind"], "SelfSubjectAccessReview");
    assert_eq!(out["status"]["allowed"], true);
    let both = json!({"spec": {"resourceAttributes": {}, "nonResourceAttributes": {"path": "/x", "verb": "get"}}});
    assert_eq!(
        self_subject_access_review(&both, &jane(), &s)
            .unwrap_err()
            .code,
        422
    );
    let lsar = json!({"metadata": {"namespace": "dev"}, "spec": {"user": "jane", "resourceAttributes": {"namespace": "dev", "verb": "get", "resource": "pods"}}});
    let out = local_subject_access_review(&lsar, "dev", &s).unwrap();
    assert_eq!(
        (out["kind"].as_str(), out["status"]["allowed"].as_bool()),
        (Some("LocalSubjectAccessReview"), Some(true))
    );
    assert_eq!(
        local_subject_access_review(&lsar, "prod", &s)
            .unwrap_err()
            .code,
        400
    );
}

#[test]
fn rules_review_lists_what_the_user_holds() {
    let mut w = pod_reader_world();
    w.extend(crate::security::bootstrap::cluster_roles());
    w.extend(crate::security::bootstrap::cluster_role_bindings());
    let s = snap(&w);
    let review = json!({"spec": {"namespace": "dev"}});
    let out = self_subject_rules_review(&review, &jane(), &s).unwrap();
    let rr = out["status"]["resourceRules"].as_array().unwrap();
    assert!(rr.contains(
        &json!({"verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["pods"]})
    ));
    assert!(rr.contains(&json!({"verbs": ["create"], "apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]})));
    let nr = out["status"]["nonResourceRules"].as_array().unwrap();
    assert!(nr.iter().any(|r| r["nonResourceURLs"]
        .as_array()
        .unwrap()
        .contains(&json!("/version"))));
    assert_eq!(out["status"]["incomplete"], false);
    // In another namespace the Role does not apply.
    let other =
        self_subject_rules_review(&json!({"spec": {"namespace": "prod"}}), &jane(), &s).unwrap();
    assert!(!other["status"]["resourceRules"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["resources"] == json!(["pods"])));
    assert_eq!(
        self_subject_rules_review(&json!({"spec": {}}), &jane(), &s)
            .unwrap_err()
            .code,
        400
    );
}

#[test]
fn bad_objects_never_panic() {
    let (s, errors) = RbacSnapshot::from_objects(&[
        json!({"kind": "Role", "metadata": {"name": "r", "namespace": "n"}, "rules": "nope"}),
        json!({"kind": "RoleBinding", "metadata": {"name": "b", "namespace": "n"}, "roleRef": 5}),
        json!({"kind": "ClusterRole", "metadata": {"name": "ok"}, "rules": null}),
        json!("garbage"),
    ]);
    assert_eq!(errors.len(), 2);
    assert!(s.cluster_role("ok").unwrap().rules.is_empty());
    assert!(
        !authorize(
            &Attributes::resource(jane(), "get", "", "pods", "n", ""),
            &s
        )
        .allowed
    );
    for junk in [
        json!(null),
        json!([]),
        json!({"spec": 3}),
        json!({"spec": {"resourceAttributes": 1}}),
    ] {
        let _ = subject_access_review(&junk, &s);
        let _ = self_subject_access_review(&junk, &jane(), &s);
        let _ = local_subject_access_review(&junk, "n", &s);
        let _ = self_subject_rules_review(&junk, &jane(), &s);
        let _ = check_role_escalation(&s, &jane(), "n", "", &junk, None, &s);
        let _ = check_binding_escalation(&s, &jane(), &junk, None, &s);
    }
}

/// An authorizer outside RBAC (as a webhook or the Node authorizer would be) that allows one
/// verb and records what it was asked.
struct GrantsVerb {
    verb: &'static str,
    asked: std::sync::Mutex<Vec<Attributes>>,
}

impl GrantsVerb {
    fn new(verb: &'static str) -> GrantsVerb {
        GrantsVerb {
            verb,
            asked: std::sync::Mutex::new(Vec::new()),
        }
    }
}

impl crate::security::authorizer::Authorize for GrantsVerb {
    fn decide(&self, attrs: &Attributes, _: Option<&str>) -> Decision {
        self.asked.lock().unwrap().push(attrs.clone());
        Decision {
            allowed: attrs.verb == self.verb,
            reason: String::new(),
        }
    }

    fn rules_for(&self, _: &UserInfo, _: &str) -> crate::security::authorizer::UserRules {
        Default::default()
    }
}

#[test]
fn escalate_granted_by_any_authorizer_of_the_chain_allows_the_role() {
    use crate::security::authorizer::{Authorize, Chain, RbacAuthorizer};
    let s = snap(&role_admin_world());
    let more = role(
        "dev",
        "r3",
        json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["delete"]}]),
    );
    // RBAC alone refuses: jane neither holds the rules nor has `escalate`.
    assert!(check_role_escalation(&s, &jane(), "dev", "r3", &more, None, &s).is_err());
    let other = GrantsVerb::new("escalate");
    let rbac = RbacAuthorizer(&s);
    let members: [&dyn Authorize; 2] = [&rbac, &other];
    let chain = Chain(&members);
    assert!(check_role_escalation(&chain, &jane(), "dev", "r3", &more, None, &s).is_ok());
    // Asked as upstream's RoleEscalationAuthorized: the request's name and namespace, any version.
    let asked = other.asked.lock().unwrap();
    let a = asked.last().unwrap();
    assert_eq!(
        (
            a.verb.as_str(),
            a.api_group.as_str(),
            a.api_version.as_str(),
            a.resource.as_str(),
            a.namespace.as_str(),
            a.name.as_str(),
            a.resource_request
        ),
        ("escalate", GROUP, "*", "roles", "dev", "r3", true)
    );
}

#[test]
fn bind_granted_by_any_authorizer_of_the_chain_allows_the_binding() {
    let w = role_admin_world();
    let mut with_admin = w.clone();
    with_admin.push(cluster_role(
        "admin-ish",
        json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]),
    ));
    let s = snap(&with_admin);
    let binding = role_binding(
        "dev",
        "b",
        "ClusterRole",
        "admin-ish",
        json!([{"kind": "User", "name": "tom"}]),
    );
    assert!(check_binding_escalation(&s, &jane(), &binding, None, &s).is_err());
    let binder = GrantsVerb::new("bind");
    assert!(check_binding_escalation(&binder, &jane(), &binding, None, &s).is_ok());
    {
        let asked = binder.asked.lock().unwrap();
        let a = asked.last().unwrap();
        assert_eq!(
            (
                a.verb.as_str(),
                a.api_group.as_str(),
                a.resource.as_str(),
                a.namespace.as_str(),
                a.name.as_str()
            ),
            ("bind", GROUP, "clusterroles", "dev", "admin-ish")
        );
    }
    // An authorizer granting only `escalate` does not let anyone bind.
    let escalator = GrantsVerb::new("escalate");
    assert!(check_binding_escalation(&escalator, &jane(), &binding, None, &s).is_err());
    // A roleRef kind other than Role or ClusterRole is never asked about (upstream returns
    // false); the rules check then refuses it.
    let mut odd = binding.clone();
    odd["roleRef"]["kind"] = json!("Group");
    let never = GrantsVerb::new("bind");
    assert!(check_binding_escalation(&never, &jane(), &odd, None, &s).is_err());
    assert!(never.asked.lock().unwrap().is_empty());
}
