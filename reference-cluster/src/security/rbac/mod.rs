//! The RBAC authorizer with upstream semantics (`plugin/pkg/auth/authorizer/rbac`): bindings
//! grant the rules of their role to their subjects, ClusterRoleBindings everywhere,
//! RoleBindings in their namespace; members of `system:masters` are always allowed, as
//! upstream's privileged-group authorizer does.
//!
//! The API server hands in the RBAC objects through [`RbacObjects`]; [`RbacSnapshot`] is an
//! in-memory implementation it can keep current from a watch.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::user::{names, split_service_account_username};
use super::UserInfo;

mod aggregate;
mod escalation;
mod grants;
mod impersonation;
mod message;
mod review;
mod rules;

pub use aggregate::{aggregate_all, aggregated_rules};
pub use escalation::{check_binding_escalation, check_role_escalation};
pub use grants::{Grant, Grants, GrantsCache};
pub use impersonation::{impersonate, impersonation_checks, ImpersonationRequest};
pub use message::{forbidden, Forbidden};
pub use review::{
    local_subject_access_review, self_subject_access_review, self_subject_rules_review,
    subject_access_review, ReviewError,
};
pub use rules::{breakdown, compact, covers, rule_covers, PolicyRule};

pub const GROUP: &str = "rbac.authorization.k8s.io";

/// What a request wants to do (upstream `authorizer.Attributes`). Empty strings mean "none",
/// as upstream: `namespace == ""` is a cluster-scoped request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attributes {
    pub user: UserInfo,
    /// Kubernetes verb for resource requests (`get`, `list`, `create`, …, or `escalate`,
    /// `bind`, `impersonate`, `use`, `approve`…); lower-case HTTP method for non-resource ones.
    pub verb: String,
    pub api_group: String,
    pub api_version: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    /// The request path, for non-resource requests (`/healthz`, `/apis`).
    pub path: String,
    pub resource_request: bool,
}

impl Attributes {
    pub fn resource(
        user: UserInfo,
        verb: &str,
        api_group: &str,
        resource: &str,
        namespace: &str,
        name: &str,
    ) -> Self {
        Attributes {
            user,
            verb: verb.into(),
            api_group: api_group.into(),
            resource: resource.into(),
            namespace: namespace.into(),
            name: name.into(),
            resource_request: true,
            ..Default::default()
        }
    }

    pub fn with_subresource(mut self, subresource: &str) -> Self {
        self.subresource = subresource.into();
        self
    }

    pub fn non_resource(user: UserInfo, verb: &str, path: &str) -> Self {
        Attributes {
            user,
            verb: verb.into(),
            path: path.into(),
            ..Default::default()
        }
    }
}

/// The authorizer's answer. `reason` says which binding allowed the request, or (on denial)
/// which referenced roles could not be resolved (`RBAC: clusterrole… not found`), as upstream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub reason: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subject {
    #[serde(default)]
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_group: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleRef {
    #[serde(default)]
    pub api_group: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
}

/// A Role or ClusterRole (its rules; aggregation is resolved into `rules` by
/// [`aggregated_rules`], as upstream's controller writes them back).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Role {
    pub name: String,
    /// Empty for a ClusterRole.
    pub namespace: String,
    pub rules: Vec<PolicyRule>,
}

/// A RoleBinding or ClusterRoleBinding.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Binding {
    pub name: String,
    /// Empty for a ClusterRoleBinding.
    pub namespace: String,
    pub role_ref: RoleRef,
    pub subjects: Vec<Subject>,
}

fn meta_str<'a>(obj: &'a Value, key: &str) -> &'a str {
    obj.pointer(&format!("/metadata/{key}"))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Decodes a list field, treating `null`/absent as empty. A malformed element makes the
/// whole field an error: a half-read role would grant less (or more) than it says.
fn decode_list<T: for<'de> Deserialize<'de>>(obj: &Value, key: &str) -> Result<Vec<T>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(v) => serde_json::from_value(v.clone()).map_err(|e| format!("{key}: {e}")),
    }
}

impl Role {
    pub fn from_json(obj: &Value) -> Result<Role, String> {
        Ok(Role {
            name: meta_str(obj, "name").to_string(),
            namespace: meta_str(obj, "namespace").to_string(),
            rules: decode_list(obj, "rules")?,
        })
    }
}

impl Binding {
    pub fn from_json(obj: &Value) -> Result<Binding, String> {
        let role_ref = match obj.get("roleRef") {
            Some(v) => serde_json::from_value(v.clone()).map_err(|e| format!("roleRef: {e}"))?,
            None => RoleRef::default(),
        };
        Ok(Binding {
            name: meta_str(obj, "name").to_string(),
            namespace: meta_str(obj, "namespace").to_string(),
            role_ref,
            subjects: decode_list(obj, "subjects")?,
        })
    }
}

/// Where the authorizer finds roles and bindings. The API server implements it over its store
/// (or keeps an [`RbacSnapshot`] current from a watch).
pub trait RbacObjects {
    fn cluster_role(&self, name: &str) -> Option<Arc<Role>>;
    fn role(&self, namespace: &str, name: &str) -> Option<Arc<Role>>;
    fn cluster_role_bindings(&self) -> Vec<Arc<Binding>>;
    fn role_bindings(&self, namespace: &str) -> Vec<Arc<Binding>>;

    /// Where resolved cluster-wide grants per identity are kept between requests, if the
    /// implementation keeps them (it must then clear the cache whenever an object changes).
    fn grants_cache(&self) -> Option<&GrantsCache> {
        None
    }
}

/// An in-memory index of RBAC objects, built from their JSON.
#[derive(Clone, Debug, Default)]
pub struct RbacSnapshot {
    cluster_roles: HashMap<String, Arc<Role>>,
    roles: HashMap<(String, String), Arc<Role>>,
    cluster_role_bindings: HashMap<String, Arc<Binding>>,
    role_bindings: HashMap<String, HashMap<String, Arc<Binding>>>,
}

impl RbacSnapshot {
    pub fn new() -> Self {
        Self::default()
    }

    /// Indexes every RBAC object among `objects` (by `kind`), ignoring other kinds. Objects
    /// that do not decode are skipped and reported, so one bad object cannot hide the others.
    pub fn from_objects<'a>(objects: impl IntoIterator<Item = &'a Value>) -> (Self, Vec<String>) {
        let mut snap = Self::new();
        let mut errors = Vec::new();
        for obj in objects {
            if let Err(e) = snap.upsert(obj) {
                errors.push(e);
            }
        }
        (snap, errors)
    }

    /// Adds or replaces one object (Role, ClusterRole, RoleBinding, ClusterRoleBinding).
    pub fn upsert(&mut self, obj: &Value) -> Result<(), String> {
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
        let name = meta_str(obj, "name").to_string();
        let ns = meta_str(obj, "namespace").to_string();
        let fail = |e: String| format!("{kind} {ns}/{name}: {e}");
        match kind {
            "ClusterRole" => {
                let role = Role::from_json(obj).map_err(fail)?;
                self.cluster_roles.insert(name, Arc::new(role));
            }
            "Role" => {
                let role = Role::from_json(obj).map_err(fail)?;
                self.roles.insert((ns, name), Arc::new(role));
            }
            "ClusterRoleBinding" => {
                let b = Binding::from_json(obj).map_err(fail)?;
                self.cluster_role_bindings.insert(name, Arc::new(b));
            }
            "RoleBinding" => {
                let b = Binding::from_json(obj).map_err(fail)?;
                self.role_bindings
                    .entry(ns)
                    .or_default()
                    .insert(name, Arc::new(b));
            }
            _ => {}
        }
        Ok(())
    }

    /// Removes one object by kind, namespace (empty for cluster-scoped) and name.
    pub fn remove(&mut self, kind: &str, namespace: &str, name: &str) {
        match kind {
            "ClusterRole" => {
                self.cluster_roles.remove(name);
            }
            "Role" => {
                self.roles
                    .remove(&(namespace.to_string(), name.to_string()));
            }
            "ClusterRoleBinding" => {
                self.cluster_role_bindings.remove(name);
            }
            "RoleBinding" => {
                if let Some(m) = self.role_bindings.get_mut(namespace) {
                    m.remove(name);
                }
            }
            _ => {}
        }
    }
}

impl RbacObjects for RbacSnapshot {
    fn cluster_role(&self, name: &str) -> Option<Arc<Role>> {
        self.cluster_roles.get(name).cloned()
    }

    fn role(&self, namespace: &str, name: &str) -> Option<Arc<Role>> {
        self.roles
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    fn cluster_role_bindings(&self) -> Vec<Arc<Binding>> {
        let mut v: Vec<_> = self.cluster_role_bindings.values().cloned().collect();
        // Deterministic order, so "allowed by" reasons do not flap between requests.
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    fn role_bindings(&self, namespace: &str) -> Vec<Arc<Binding>> {
        let mut v: Vec<_> = self
            .role_bindings
            .get(namespace)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }
}

/// Upstream `appliesToUser`. ServiceAccount subjects without a namespace take the binding's.
fn applies_to(user: &UserInfo, subject: &Subject, binding_namespace: &str) -> bool {
    match subject.kind.as_str() {
        "User" => user.name == subject.name,
        "Group" => user.in_group(&subject.name),
        "ServiceAccount" => {
            let ns = if subject.namespace.is_empty() {
                binding_namespace
            } else {
                subject.namespace.as_str()
            };
            !ns.is_empty()
                && split_service_account_username(&user.name) == Some((ns, subject.name.as_str()))
        }
        _ => false,
    }
}

/// The first of `binding`'s subjects that `user` is (upstream `appliesTo`), if any.
fn bound_subject<'b>(user: &UserInfo, binding: &'b Binding) -> Option<&'b Subject> {
    binding
        .subjects
        .iter()
        .find(|s| applies_to(user, s, &binding.namespace))
}

/// Resolves a binding's roleRef to the role's rules, or upstream's "not found" error text.
fn role_ref_rules(
    objects: &dyn RbacObjects,
    role_ref: &RoleRef,
    binding_namespace: &str,
) -> Result<Arc<Role>, String> {
    match role_ref.kind.as_str() {
        "ClusterRole" => objects.cluster_role(&role_ref.name).ok_or_else(|| {
            format!(
                "clusterrole.rbac.authorization.k8s.io {} not found",
                rules::go_quote(&role_ref.name)
            )
        }),
        "Role" => objects
            .role(binding_namespace, &role_ref.name)
            .ok_or_else(|| {
                format!(
                    "role.rbac.authorization.k8s.io {} not found",
                    rules::go_quote(&role_ref.name)
                )
            }),
        other => Err(format!(
            "unsupported role reference kind: {}",
            rules::go_quote(other)
        )),
    }
}

/// Upstream's describers for "allowed by" reasons.
fn describe(binding: &Binding, subject: &Subject) -> String {
    let subj = match subject.kind.as_str() {
        "ServiceAccount" => {
            let ns = if subject.namespace.is_empty() {
                &binding.namespace
            } else {
                &subject.namespace
            };
            format!(
                "{} {}",
                subject.kind,
                rules::go_quote(&format!("{}/{}", subject.name, ns))
            )
        }
        _ => format!("{} {}", subject.kind, rules::go_quote(&subject.name)),
    };
    if binding.namespace.is_empty() {
        format!(
            "ClusterRoleBinding {} of {} {} to {}",
            rules::go_quote(&binding.name),
            binding.role_ref.kind,
            rules::go_quote(&binding.role_ref.name),
            subj
        )
    } else {
        format!(
            "RoleBinding {} of {} {} to {}",
            rules::go_quote(&format!("{}/{}", binding.name, binding.namespace)),
            binding.role_ref.kind,
            rules::go_quote(&binding.role_ref.name),
            subj
        )
    }
}

/// Authorizes one request. Members of `system:masters` are always allowed (reason empty, as
/// upstream's privileged-group authorizer). The cluster-wide bindings are asked first, then
/// the namespace's (upstream `VisitRulesFor`).
pub fn authorize(attrs: &Attributes, objects: &dyn RbacObjects) -> Decision {
    if attrs.user.in_group(names::SYSTEM_MASTERS) {
        return Decision {
            allowed: true,
            reason: String::new(),
        };
    }
    let cluster = grants::grants_in(objects, &attrs.user, "");
    let allowing = |g: &Grants| {
        g.grants.iter().find(|g| g.allows(attrs)).map(|g| Decision {
            allowed: true,
            reason: g.reason.clone(),
        })
    };
    if let Some(allowed) = allowing(&cluster) {
        return allowed;
    }
    if attrs.namespace.is_empty() {
        return Decision {
            allowed: false,
            reason: rbac_errors_reason(&cluster.errors),
        };
    }
    let in_namespace = grants::grants_in(objects, &attrs.user, &attrs.namespace);
    if let Some(allowed) = allowing(&in_namespace) {
        return allowed;
    }
    let errors: Vec<String> = cluster
        .errors
        .iter()
        .chain(&in_namespace.errors)
        .cloned()
        .collect();
    Decision {
        allowed: false,
        reason: rbac_errors_reason(&errors),
    }
}

/// Upstream formats resolution errors as `RBAC: <aggregate>` (`[a, b]` for several).
fn rbac_errors_reason(errors: &[String]) -> String {
    if errors.is_empty() {
        String::new()
    } else {
        format!("RBAC: {}", crate::security::authorizer::aggregate(errors))
    }
}

/// Every rule that applies to `user` in `namespace` (cluster-wide ones included), and the
/// resolution errors met on the way (upstream `RulesFor`; SelfSubjectRulesReview and the
/// escalation checks use it).
pub fn rules_for(
    user: &UserInfo,
    namespace: &str,
    objects: &dyn RbacObjects,
) -> (Vec<PolicyRule>, Vec<String>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let scopes: &[&str] = if namespace.is_empty() {
        &[""]
    } else {
        &["", namespace]
    };
    for scope in scopes {
        let grants = grants::grants_in(objects, user, scope);
        out.extend(
            grants
                .grants
                .iter()
                .flat_map(|g| g.role.rules.iter().cloned()),
        );
        errors.extend(grants.errors.iter().cloned());
    }
    (out, errors)
}

#[cfg(test)]
mod tests;
