//! The authenticated identity of a request (upstream `user.Info`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Upstream's well-known groups and users.
pub mod names {
    pub const SYSTEM_MASTERS: &str = "system:masters";
    pub const AUTHENTICATED: &str = "system:authenticated";
    pub const UNAUTHENTICATED: &str = "system:unauthenticated";
    pub const ANONYMOUS: &str = "system:anonymous";
    pub const NODES: &str = "system:nodes";
    pub const NODE_PREFIX: &str = "system:node:";
    pub const SERVICE_ACCOUNTS: &str = "system:serviceaccounts";
    pub const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";
    pub const MONITORING: &str = "system:monitoring";
    pub const KUBE_SCHEDULER: &str = "system:kube-scheduler";
    pub const KUBE_CONTROLLER_MANAGER: &str = "system:kube-controller-manager";
    pub const KUBE_PROXY: &str = "system:kube-proxy";
}

/// Who a request is from: name, uid, groups and extra attributes, as upstream's `user.Info`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    #[serde(rename = "username")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    pub fn new(name: impl Into<String>, groups: &[&str]) -> Self {
        UserInfo {
            name: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..Default::default()
        }
    }

    pub fn anonymous() -> Self {
        UserInfo::new(names::ANONYMOUS, &[names::UNAUTHENTICATED])
    }

    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    /// `(namespace, name)` when this is a ServiceAccount identity.
    pub fn service_account(&self) -> Option<(&str, &str)> {
        split_service_account_username(&self.name)
    }

    /// The node name when this is a node identity (`system:node:<name>` in `system:nodes`);
    /// upstream's NodeRestriction and Node authorizer recognise nodes this way.
    pub fn node_name(&self) -> Option<&str> {
        if !self.in_group(names::NODES) {
            return None;
        }
        self.name
            .strip_prefix(names::NODE_PREFIX)
            .filter(|n| !n.is_empty())
    }

    /// The `userInfo` stanza of AdmissionReview, audit Events and TokenReview
    /// (`authentication.k8s.io/v1 UserInfo`).
    pub fn to_json(&self) -> Value {
        let mut v = json!({"username": self.name});
        if !self.uid.is_empty() {
            v["uid"] = json!(self.uid);
        }
        if !self.groups.is_empty() {
            v["groups"] = json!(self.groups);
        }
        if !self.extra.is_empty() {
            v["extra"] = json!(self.extra);
        }
        v
    }
}

/// `system:serviceaccount:<ns>:<name>` → `(ns, name)`.
pub fn split_service_account_username(user: &str) -> Option<(&str, &str)> {
    let rest = user.strip_prefix(names::SERVICE_ACCOUNT_PREFIX)?;
    let (ns, name) = rest.split_once(':')?;
    if ns.is_empty() || name.is_empty() || name.contains(':') {
        return None;
    }
    Some((ns, name))
}

pub fn service_account_username(namespace: &str, name: &str) -> String {
    format!("{}{namespace}:{name}", names::SERVICE_ACCOUNT_PREFIX)
}

/// The groups upstream gives a ServiceAccount identity (before `system:authenticated`).
pub fn service_account_groups(namespace: &str) -> Vec<String> {
    vec![
        names::SERVICE_ACCOUNTS.to_string(),
        format!("{}:{namespace}", names::SERVICE_ACCOUNTS),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_service_accounts_and_nodes() {
        let sa = UserInfo::new("system:serviceaccount:ns1:builder", &[]);
        assert_eq!(sa.service_account(), Some(("ns1", "builder")));
        assert_eq!(
            split_service_account_username("system:serviceaccount:ns"),
            None
        );
        assert_eq!(
            split_service_account_username("system:serviceaccount::x"),
            None
        );
        assert_eq!(split_service_account_username("alice"), None);
        let node = UserInfo::new("system:node:n1", &["system:nodes"]);
        assert_eq!(node.node_name(), Some("n1"));
        // Without the group the name alone is not a node identity, as upstream.
        assert_eq!(UserInfo::new("system:node:n1", &[]).node_name(), None);
    }

    #[test]
    fn json_shape_omits_empty_fields() {
        let u = UserInfo::new("alice", &["dev"]);
        assert_eq!(u.to_json(), json!({"username": "alice", "groups": ["dev"]}));
    }
}
