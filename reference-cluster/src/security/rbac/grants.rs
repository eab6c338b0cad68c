//! What the bindings grant one identity, resolved once and reused until an RBAC object
//! changes: the ClusterRoleBindings', and each namespace's RoleBindings'. Without it every
//! request walks every ClusterRoleBinding and, for a rule with `resourceNames`, scans the names:
//! the node fleet impersonates `system:node:<n>` for thousands of nodes through one rule naming
//! all of them, so each impersonation check cost O(nodes). A namespaced request also walked its
//! namespace's RoleBindings and wrote the "allowed by" reason afresh. With it a check costs
//! O(rules granted to the identity), long name lists being hash sets, and the reason is a copy.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::Mutex;

use super::{bound_subject, describe, role_ref_rules, Attributes, RbacObjects, Role};
use crate::security::UserInfo;

/// Name lists at least this long are indexed; shorter ones are cheaper to scan.
const INDEX_NAMES_FROM: usize = 8;

/// Identities (per namespace) remembered before the cache starts afresh. The fleet's nodes and
/// the cluster's service accounts are far fewer; the bound only keeps a flood of one-off
/// identities (a SubjectAccessReview per made-up user) from growing memory without end.
const MAX_IDENTITIES: usize = 16_384;

/// Per rule of a role, its `resourceNames` as a set when the list is long.
type NameIndex = Arc<[Option<HashSet<String>>]>;

/// The grants cached for one user name, one entry per set of groups.
type ByGroups = Vec<(Vec<String>, Arc<Grants>)>;

/// Every request hashes its namespace and user name here twice: foldhash, randomly seeded
/// per map, costs a fraction of SipHash for such short keys.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// One binding that applies to the identity, with its role resolved.
pub struct Grant {
    /// Upstream's reason for an allowed request: `RBAC: allowed by ` and its description of
    /// the binding and the matching subject.
    pub reason: String,
    pub role: Arc<Role>,
    names: NameIndex,
}

impl Grant {
    /// Whether any rule of the role allows the request (upstream `RuleAllows` per rule).
    pub fn allows(&self, attrs: &Attributes) -> bool {
        self.role
            .rules
            .iter()
            .zip(self.names.iter())
            .any(|(rule, names)| match names {
                Some(set) => rule.allows_named(attrs, |n| set.contains(n)),
                None => rule.allows(attrs),
            })
    }
}

/// Every grant of one identity from the cluster-wide bindings or from one namespace's, in
/// binding order, and the roleRefs that could not be resolved (upstream reports them when
/// nothing allows the request).
#[derive(Default)]
pub struct Grants {
    pub grants: Vec<Grant>,
    pub errors: Vec<String>,
}

fn index_names(role: &Role) -> NameIndex {
    role.rules
        .iter()
        .map(|r| {
            (r.resource_names.len() >= INDEX_NAMES_FROM)
                .then(|| r.resource_names.iter().cloned().collect())
        })
        .collect()
}

/// Resolves the bindings of `namespace` (`""`: the ClusterRoleBindings) that apply to `user`;
/// `index` supplies each role's name index (computed, or shared between identities by the
/// cache).
fn resolve(
    objects: &dyn RbacObjects,
    user: &UserInfo,
    namespace: &str,
    index: &mut dyn FnMut(&Arc<Role>) -> NameIndex,
) -> Grants {
    let bindings = if namespace.is_empty() {
        objects.cluster_role_bindings()
    } else {
        objects.role_bindings(namespace)
    };
    let mut out = Grants::default();
    for binding in bindings {
        let Some(subject) = bound_subject(user, &binding) else {
            continue;
        };
        match role_ref_rules(objects, &binding.role_ref, &binding.namespace) {
            Ok(role) => out.grants.push(Grant {
                reason: format!("RBAC: allowed by {}", describe(&binding, subject)),
                names: index(&role),
                role,
            }),
            Err(e) => out.errors.push(e),
        }
    }
    out
}

/// The grants of `user` by the bindings of `namespace` (`""`: the cluster-wide ones), from
/// `objects`' cache when it keeps one.
pub(super) fn grants_in(
    objects: &dyn RbacObjects,
    user: &UserInfo,
    namespace: &str,
) -> Arc<Grants> {
    match objects.grants_cache() {
        Some(cache) => cache.get(objects, user, namespace),
        // Used once, an index would cost the scan it saves.
        None => Arc::new(resolve(objects, user, namespace, &mut |r| {
            r.rules.iter().map(|_| None).collect()
        })),
    }
}

/// Grants by namespace and identity (name and groups: all RBAC subjects match on). Whoever
/// owns the RBAC objects must [`GrantsCache::clear`] it on every change to them, while no
/// reader can be resolving against the old objects (under the same write lock).
#[derive(Default)]
pub struct GrantsCache {
    inner: Mutex<CacheState>,
}

#[derive(Default)]
struct CacheState {
    /// namespace (`""`: cluster-wide) → user name → (groups, grants); usually one entry per
    /// name.
    by_scope: FastMap<String, FastMap<String, ByGroups>>,
    identities: usize,
    /// Name indexes by role identity (the `Arc`'s address, kept alive by the entry), so that
    /// thousands of identities bound to one large role share one index.
    roles: HashMap<usize, (Arc<Role>, NameIndex)>,
}

impl GrantsCache {
    pub fn clear(&self) {
        *self.inner.lock() = CacheState::default();
    }

    /// How many (namespace, identity) pairs are cached (for tests and metrics).
    pub fn len(&self) -> usize {
        self.inner.lock().identities
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn get(&self, objects: &dyn RbacObjects, user: &UserInfo, namespace: &str) -> Arc<Grants> {
        let mut state = self.inner.lock();
        if let Some(hit) = state
            .by_scope
            .get(namespace)
            .and_then(|users| users.get(&user.name))
            .and_then(|v| v.iter().find(|(g, _)| *g == user.groups))
        {
            return hit.1.clone();
        }
        if state.identities >= MAX_IDENTITIES {
            state.by_scope.clear();
            state.identities = 0;
        }
        let roles = &mut state.roles;
        let grants = Arc::new(resolve(objects, user, namespace, &mut |role| {
            let key = Arc::as_ptr(role) as usize;
            roles
                .entry(key)
                .or_insert_with(|| (role.clone(), index_names(role)))
                .1
                .clone()
        }));
        state
            .by_scope
            .entry(namespace.to_string())
            .or_default()
            .entry(user.name.clone())
            .or_default()
            .push((user.groups.clone(), grants.clone()));
        state.identities += 1;
        grants
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::security::rbac::{authorize, RbacSnapshot};

    /// A snapshot with a grants cache, as the API server's index has.
    struct Cached(RbacSnapshot, GrantsCache);

    impl RbacObjects for Cached {
        fn cluster_role(&self, name: &str) -> Option<Arc<Role>> {
            self.0.cluster_role(name)
        }
        fn role(&self, namespace: &str, name: &str) -> Option<Arc<Role>> {
            self.0.role(namespace, name)
        }
        fn cluster_role_bindings(&self) -> Vec<Arc<super::super::Binding>> {
            self.0.cluster_role_bindings()
        }
        fn role_bindings(&self, namespace: &str) -> Vec<Arc<super::super::Binding>> {
            self.0.role_bindings(namespace)
        }
        fn grants_cache(&self) -> Option<&GrantsCache> {
            Some(&self.1)
        }
    }

    fn fleet_world(nodes: usize) -> Vec<serde_json::Value> {
        let users: Vec<String> = (0..nodes).map(|i| format!("system:node:n{i}")).collect();
        vec![
            json!({"kind": "ClusterRole", "metadata": {"name": "fleet"}, "rules": [
                {"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"], "resourceNames": users},
                {"apiGroups": [""], "resources": ["groups"], "verbs": ["impersonate"], "resourceNames": ["system:nodes"]}
            ]}),
            json!({"kind": "ClusterRoleBinding", "metadata": {"name": "fleet"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "fleet"},
                   "subjects": [{"kind": "User", "name": "fleet"}]}),
            json!({"kind": "ClusterRoleBinding", "metadata": {"name": "dangling"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "gone"},
                   "subjects": [{"kind": "User", "name": "fleet"}]}),
        ]
    }

    #[test]
    fn cached_grants_answer_as_the_plain_walk() {
        let (snap, _) = RbacSnapshot::from_objects(&fleet_world(50));
        let cached = Cached(snap.clone(), GrantsCache::default());
        let fleet = UserInfo::new("fleet", &["system:authenticated"]);
        let ask = |name: &str, resource: &str| {
            Attributes::resource(fleet.clone(), "impersonate", "", resource, "", name)
        };
        for (name, resource) in [
            ("system:node:n0", "users"),
            ("system:node:n49", "users"),
            ("system:node:n50", "users"),
            ("", "users"),
            ("system:nodes", "groups"),
            ("system:masters", "groups"),
        ] {
            let a = ask(name, resource);
            assert_eq!(authorize(&a, &snap), authorize(&a, &cached), "{name}");
        }
        let yes = authorize(&ask("system:node:n7", "users"), &cached);
        assert_eq!(
            yes.reason,
            r#"RBAC: allowed by ClusterRoleBinding "fleet" of ClusterRole "fleet" to User "fleet""#
        );
        let no = authorize(&ask("system:node:n99", "users"), &cached);
        assert_eq!(
            (no.allowed, no.reason.as_str()),
            (
                false,
                r#"RBAC: clusterrole.rbac.authorization.k8s.io "gone" not found"#
            )
        );
        assert_eq!(cached.1.len(), 1, "one identity asked, one entry");
        // Another group set is another identity.
        let other = UserInfo::new("fleet", &[]);
        authorize(
            &Attributes::resource(other, "impersonate", "", "users", "", "system:node:n1"),
            &cached,
        );
        assert_eq!(cached.1.len(), 2);
        cached.1.clear();
        assert!(cached.1.is_empty());
    }

    #[test]
    fn namespace_grants_are_cached_per_namespace_with_their_reasons() {
        let world = vec![
            json!({"kind": "Role", "metadata": {"name": "reader", "namespace": "a"},
                   "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}),
            json!({"kind": "RoleBinding", "metadata": {"name": "read", "namespace": "a"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
                   "subjects": [{"kind": "ServiceAccount", "name": "bot"}]}),
            json!({"kind": "RoleBinding", "metadata": {"name": "broken", "namespace": "b"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "gone"},
                   "subjects": [{"kind": "ServiceAccount", "name": "bot", "namespace": "a"}]}),
        ];
        let (snap, _) = RbacSnapshot::from_objects(&world);
        let cached = Cached(snap.clone(), GrantsCache::default());
        let bot = UserInfo::new("system:serviceaccount:a:bot", &["system:serviceaccounts"]);
        let ask =
            |ns: &str, verb: &str| Attributes::resource(bot.clone(), verb, "", "pods", ns, "p");
        for (ns, verb) in [("a", "get"), ("a", "list"), ("b", "get"), ("c", "get")] {
            let a = ask(ns, verb);
            // Twice: the second answer comes from the cache.
            assert_eq!(authorize(&a, &snap), authorize(&a, &cached), "{ns} {verb}");
            assert_eq!(authorize(&a, &snap), authorize(&a, &cached), "{ns} {verb}");
        }
        assert_eq!(
            authorize(&ask("a", "get"), &cached).reason,
            r#"RBAC: allowed by RoleBinding "read/a" of Role "reader" to ServiceAccount "bot/a""#
        );
        assert_eq!(
            authorize(&ask("b", "get"), &cached).reason,
            r#"RBAC: role.rbac.authorization.k8s.io "gone" not found"#
        );
        assert_eq!(
            cached.1.len(),
            4,
            "cluster-wide, a, b and c for one identity"
        );
    }
}
