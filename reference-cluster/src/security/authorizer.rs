//! The authorizer chain: upstream's union authorizer and union rule resolver over the
//! `--authorization-mode` list, preceded by the privileged-group authorizer (`system:masters`).
//! The API server's request path, impersonation and the access reviews (SubjectAccessReview,
//! LocalSubjectAccessReview, SelfSubjectAccessReview, SelfSubjectRulesReview, hence `kubectl
//! auth can-i`) all ask the same [`Authorize`] implementation, so a review answers exactly what
//! the request would get.
//!
//! None of the authorizers here denies outright (upstream's `DecisionDeny` comes only from
//! webhooks): a request is allowed by the first that allows it, or refused with the reasons of
//! all of them, joined by newlines as upstream's union authorizer joins them.

use super::node_authorizer::{self, NodeGraph};
use super::rbac::{self, Attributes, Decision, PolicyRule, RbacObjects, RbacSnapshot};
use super::user::names;
use super::UserInfo;

/// What an authorizer can enumerate of what `user` may do in a namespace (upstream
/// `RuleResolver.RulesFor`): the rules, whether the list is known to be incomplete, and the
/// evaluation errors met.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserRules {
    pub rules: Vec<PolicyRule>,
    pub incomplete: bool,
    pub errors: Vec<String>,
}

/// One authorizer, or a chain of them (upstream `authorizer.Authorizer` and `RuleResolver`).
pub trait Authorize {
    /// Allowed, or no opinion with a reason (possibly empty). `field_selector` is the request's
    /// (or the review's) field selector, which the Node authorizer reads for pod lists.
    fn decide(&self, attrs: &Attributes, field_selector: Option<&str>) -> Decision;

    /// The rules `user` holds in `namespace`, as far as this authorizer can tell.
    fn rules_for(&self, user: &UserInfo, namespace: &str) -> UserRules;
}

/// Upstream's `utilerrors.NewAggregate(...).Error()`: one message as is, several (duplicates
/// dropped) as `[a, b]`.
pub fn aggregate(errors: &[String]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for e in errors {
        if !seen.contains(&e.as_str()) {
            seen.push(e);
        }
    }
    match seen.as_slice() {
        [] => String::new(),
        [one] => one.to_string(),
        many => format!("[{}]", many.join(", ")),
    }
}

fn allow() -> Decision {
    Decision {
        allowed: true,
        reason: String::new(),
    }
}

/// Asks each authorizer in turn; the first to allow decides (upstream `unionAuthzHandler`).
pub fn union_decide(
    chain: &[&dyn Authorize],
    attrs: &Attributes,
    field_selector: Option<&str>,
) -> Decision {
    let mut reasons = Vec::new();
    for authorizer in chain {
        let decision = authorizer.decide(attrs, field_selector);
        if decision.allowed {
            return decision;
        }
        if !decision.reason.is_empty() {
            reasons.push(decision.reason);
        }
    }
    Decision {
        allowed: false,
        reason: reasons.join("\n"),
    }
}

/// Every authorizer's rules together; incomplete if any says so (upstream
/// `unionAuthzRulesHandler`).
pub fn union_rules_for(chain: &[&dyn Authorize], user: &UserInfo, namespace: &str) -> UserRules {
    let mut out = UserRules::default();
    for authorizer in chain {
        let r = authorizer.rules_for(user, namespace);
        out.rules.extend(r.rules);
        out.incomplete |= r.incomplete;
        out.errors.extend(r.errors);
    }
    out
}

/// A chain as one authorizer, for code that is handed "the authorizer" as upstream's registry
/// is (the RBAC escalation checks).
pub struct Chain<'a>(pub &'a [&'a dyn Authorize]);

impl Authorize for Chain<'_> {
    fn decide(&self, attrs: &Attributes, field_selector: Option<&str>) -> Decision {
        union_decide(self.0, attrs, field_selector)
    }

    fn rules_for(&self, user: &UserInfo, namespace: &str) -> UserRules {
        union_rules_for(self.0, user, namespace)
    }
}

/// Members of `system:masters` may do anything (upstream's privileged-group authorizer, always
/// first in kube-apiserver's chain). It enumerates no rules, as upstream's is no rule resolver.
pub struct PrivilegedGroups;

impl Authorize for PrivilegedGroups {
    fn decide(&self, attrs: &Attributes, _: Option<&str>) -> Decision {
        if attrs.user.in_group(names::SYSTEM_MASTERS) {
            allow()
        } else {
            Decision {
                allowed: false,
                reason: String::new(),
            }
        }
    }

    fn rules_for(&self, _: &UserInfo, _: &str) -> UserRules {
        UserRules::default()
    }
}

/// `--authorization-mode=AlwaysAllow`.
pub struct AlwaysAllow;

impl Authorize for AlwaysAllow {
    fn decide(&self, _: &Attributes, _: Option<&str>) -> Decision {
        allow()
    }

    fn rules_for(&self, _: &UserInfo, _: &str) -> UserRules {
        UserRules {
            rules: vec![
                PolicyRule::resource(&["*"], &["*"], &["*"]),
                PolicyRule::non_resource(&["*"], &["*"]),
            ],
            ..Default::default()
        }
    }
}

/// `--authorization-mode=Node`: see [`node_authorizer`].
pub struct NodeAuthorizer<'a> {
    pub graph: &'a NodeGraph,
    /// The static kubelet rules for what the graph does not subdivide.
    pub rules: &'a [PolicyRule],
}

/// Upstream's evaluation error for a node's SelfSubjectRulesReview.
pub const NODE_RULES_UNSUPPORTED: &str = "node authorizer does not support user rule resolution";

impl Authorize for NodeAuthorizer<'_> {
    fn decide(&self, attrs: &Attributes, field_selector: Option<&str>) -> Decision {
        node_authorizer::authorize(attrs, field_selector, self.graph, self.rules)
    }

    /// A node's permissions depend on its pods, so upstream enumerates none and says so.
    fn rules_for(&self, user: &UserInfo, _: &str) -> UserRules {
        if node_authorizer::is_node_identity(user) {
            UserRules {
                rules: Vec::new(),
                incomplete: true,
                errors: vec![NODE_RULES_UNSUPPORTED.to_string()],
            }
        } else {
            UserRules::default()
        }
    }
}

/// `--authorization-mode=RBAC` over `objects`.
pub struct RbacAuthorizer<'a>(pub &'a dyn RbacObjects);

impl Authorize for RbacAuthorizer<'_> {
    fn decide(&self, attrs: &Attributes, _: Option<&str>) -> Decision {
        rbac::authorize(attrs, self.0)
    }

    /// Unresolvable roleRefs are reported but, as upstream, do not make the list incomplete.
    fn rules_for(&self, user: &UserInfo, namespace: &str) -> UserRules {
        let (rules, errors) = rbac::rules_for(user, namespace, self.0);
        UserRules {
            rules,
            incomplete: false,
            errors,
        }
    }
}

/// A snapshot of RBAC objects judged as a cluster with `--authorization-mode=RBAC` would.
impl Authorize for RbacSnapshot {
    fn decide(&self, attrs: &Attributes, field_selector: Option<&str>) -> Decision {
        union_decide(
            &[&PrivilegedGroups, &RbacAuthorizer(self)],
            attrs,
            field_selector,
        )
    }

    fn rules_for(&self, user: &UserInfo, namespace: &str) -> UserRules {
        union_rules_for(&[&PrivilegedGroups, &RbacAuthorizer(self)], user, namespace)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::security::bootstrap;

    fn node(name: &str) -> UserInfo {
        UserInfo::new(
            format!("system:node:{name}"),
            &["system:nodes", "system:authenticated"],
        )
    }

    #[test]
    fn aggregate_formats_as_upstream() {
        assert_eq!(aggregate(&[]), "");
        assert_eq!(aggregate(&["a".into()]), "a");
        assert_eq!(aggregate(&["a".into(), "a".into()]), "a");
        assert_eq!(aggregate(&["a".into(), "b".into(), "a".into()]), "[a, b]");
    }

    #[test]
    fn node_then_rbac_reasons_and_rules() {
        let graph = NodeGraph::default();
        graph.apply(
            "/registry/pods/ns/web",
            3,
            Some(&json!({"metadata": {"name": "web", "namespace": "ns"},
                "spec": {"nodeName": "n1", "volumes": [{"name": "s", "secret": {"secretName": "mounted"}}]}})),
        );
        let rules = bootstrap::node_rules();
        let (snap, _) = RbacSnapshot::from_objects(&[
            json!({"kind": "ClusterRoleBinding", "metadata": {"name": "dangling"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "gone"},
                   "subjects": [{"kind": "Group", "name": "system:nodes"}]}),
        ]);
        let node_authz = NodeAuthorizer {
            graph: &graph,
            rules: &rules,
        };
        let rbac_authz = RbacAuthorizer(&snap);
        let chain: [&dyn Authorize; 3] = [&PrivilegedGroups, &node_authz, &rbac_authz];
        let get = |name: &str| Attributes::resource(node("n1"), "get", "", "secrets", "ns", name);
        assert!(union_decide(&chain, &get("mounted"), None).allowed);
        let d = union_decide(&chain, &get("other"), None);
        assert!(!d.allowed);
        assert_eq!(
            d.reason,
            "no relationship found between node 'n1' and this object\nRBAC: clusterrole.rbac.authorization.k8s.io \"gone\" not found"
        );
        let r = union_rules_for(&chain, &node("n1"), "ns");
        assert!(r.incomplete);
        assert_eq!(
            aggregate(&r.errors),
            "[node authorizer does not support user rule resolution, clusterrole.rbac.authorization.k8s.io \"gone\" not found]"
        );
        // Not a node: the Node authorizer enumerates nothing and is complete.
        let alice = UserInfo::new("alice", &["system:authenticated"]);
        let r = union_rules_for(&chain, &alice, "ns");
        assert_eq!((r.incomplete, r.errors.is_empty()), (false, true));
        // A user named like a node but outside system:nodes is no node.
        let fake = UserInfo::new("system:node:n1", &["system:authenticated"]);
        let d = union_decide(
            &chain,
            &Attributes::resource(fake, "get", "", "secrets", "ns", "mounted"),
            None,
        );
        assert_eq!((d.allowed, d.reason.as_str()), (false, ""));
    }
}
