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

fn world() -> RbacSnapshot {
    let mut objects = bootstrap::all();
    objects.extend([
        json!({"kind": "Role", "metadata": {"name": "pod-reader", "namespace": "production"},
               "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]}),
        json!({"kind": "RoleBinding", "metadata": {"name": "read-pods", "namespace": "production"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
               "subjects": [{"kind": "ServiceAccount", "name": "monitoring-sa", "namespace": "production"}]}),
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
