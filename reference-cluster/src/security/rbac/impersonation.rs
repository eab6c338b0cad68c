//! Impersonation (`Impersonate-User`, `Impersonate-Group`, `Impersonate-Uid`,
//! `Impersonate-Extra-*` headers, kubectl's `--as`/`--as-group`): every impersonated attribute
//! needs the `impersonate` verb on it, as upstream's impersonation filter checks, asking the
//! whole authorizer chain.

use std::collections::BTreeMap;

use super::{forbidden, Attributes, Forbidden};
use crate::security::authorizer::Authorize;
use crate::security::user::{names, service_account_groups, split_service_account_username};
use crate::security::UserInfo;

/// What the request's impersonation headers ask for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImpersonationRequest {
    pub user: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

/// The authorization checks impersonating `req` takes (upstream order: user or service
/// account, groups, extra, uid).
pub fn impersonation_checks(requester: &UserInfo, req: &ImpersonationRequest) -> Vec<Attributes> {
    let mut checks = Vec::new();
    let base = |resource: &str, ns: &str, name: &str| {
        Attributes::resource(requester.clone(), "impersonate", "", resource, ns, name)
    };
    match split_service_account_username(&req.user) {
        Some((ns, name)) => checks.push(base("serviceaccounts", ns, name)),
        None => checks.push(base("users", "", &req.user)),
    }
    for g in &req.groups {
        checks.push(base("groups", "", g));
    }
    for (key, values) in &req.extra {
        for v in values {
            let mut a = base("userextras", "", v);
            a.api_group = "authentication.k8s.io".into();
            a.subresource = key.clone();
            checks.push(a);
        }
    }
    if !req.uid.is_empty() {
        let mut a = base("uids", "", &req.uid);
        a.api_group = "authentication.k8s.io".into();
        checks.push(a);
    }
    checks
}

/// Authorizes an impersonation and returns the identity the request then runs as, or the
/// 403 for the first attribute the requester may not impersonate.
pub fn impersonate(
    requester: &UserInfo,
    req: &ImpersonationRequest,
    authz: &dyn Authorize,
) -> Result<UserInfo, Forbidden> {
    if req.user.is_empty() {
        return Err(Forbidden {
            message: "requested impersonation of groups, extra or uid without a user".into(),
            details: serde_json::json!({}),
        });
    }
    for attrs in impersonation_checks(requester, req) {
        let decision = authz.decide(&attrs, None);
        if !decision.allowed {
            return Err(forbidden(&attrs, &decision.reason));
        }
    }
    let mut groups = req.groups.clone();
    if let Some((ns, _)) = split_service_account_username(&req.user) {
        for g in service_account_groups(ns) {
            if !groups.contains(&g) {
                groups.push(g);
            }
        }
    }
    // Upstream adds system:authenticated unless the target is anonymous or already has it.
    if req.user != names::ANONYMOUS && !groups.iter().any(|g| g == names::AUTHENTICATED) {
        groups.push(names::AUTHENTICATED.to_string());
    }
    Ok(UserInfo {
        name: req.user.clone(),
        uid: req.uid.clone(),
        groups,
        extra: req.extra.clone(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::security::rbac::RbacSnapshot;

    #[test]
    fn impersonation_needs_the_verb_on_each_attribute() {
        let (s, _) = RbacSnapshot::from_objects(&[
            json!({"kind": "ClusterRole", "metadata": {"name": "imp"}, "rules": [
                {"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"], "resourceNames": ["jane"]},
                {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"]},
                {"apiGroups": [""], "resources": ["groups"], "verbs": ["impersonate"], "resourceNames": ["dev"]}
            ]}),
            json!({"kind": "ClusterRoleBinding", "metadata": {"name": "imp"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "imp"},
                   "subjects": [{"kind": "User", "name": "ops"}]}),
        ]);
        let ops = UserInfo::new("ops", &["system:authenticated"]);
        let as_jane = ImpersonationRequest {
            user: "jane".into(),
            groups: vec!["dev".into()],
            ..Default::default()
        };
        let user = impersonate(&ops, &as_jane, &s).unwrap();
        assert_eq!(
            (user.name.as_str(), user.groups.clone()),
            (
                "jane",
                vec!["dev".to_string(), "system:authenticated".to_string()]
            )
        );
        let as_sa = ImpersonationRequest {
            user: "system:serviceaccount:prod:monitoring-sa".into(),
            ..Default::default()
        };
        let sa = impersonate(&ops, &as_sa, &s).unwrap();
        assert_eq!(
            sa.groups,
            vec![
                "system:serviceaccounts",
                "system:serviceaccounts:prod",
                "system:authenticated"
            ]
        );
        let as_admin = ImpersonationRequest {
            user: "jane".into(),
            groups: vec!["system:masters".into()],
            ..Default::default()
        };
        assert_eq!(
            impersonate(&ops, &as_admin, &s).unwrap_err().message,
            r#"groups "system:masters" is forbidden: User "ops" cannot impersonate resource "groups" in API group "" at the cluster scope"#
        );
        let alice = UserInfo::new("alice", &["system:authenticated"]);
        assert!(impersonate(&alice, &as_jane, &s).is_err());
    }
}
