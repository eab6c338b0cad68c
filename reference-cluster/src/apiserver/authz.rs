//! Authorization of API requests: the authorizer chain (`--authorization-mode`, upstream's
//! kubeadm default `Node,RBAC`; the chain itself is [`crate::security::authorizer`], which the
//! request path, impersonation and the access reviews share), the RBAC cache it reads (kept current from the store by
//! [`super::informer`] and by this server's own writes), and the request attributes it judges,
//! derived from the request path as upstream's RequestInfoFactory does.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock, RwLockReadGuard};
use serde_json::{json, Value};

use super::request::{ResourceRequest, Target};
use super::{ApiError, UserInfo};
use crate::resources::ResourceInfo;
use crate::security::authorizer::{
    self as chain, AlwaysAllow, Authorize, NodeAuthorizer, PrivilegedGroups, RbacAuthorizer,
    UserRules,
};
use crate::security::bootstrap;
use crate::security::node_authorizer::NodeGraph;
use crate::security::rbac::{
    self, Attributes, Binding, Decision, GrantsCache, PolicyRule, RbacObjects, RbacSnapshot, Role,
};
use crate::store::Revision;

/// One authorizer of the chain, in `--authorization-mode` order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthorizationMode {
    /// Everything is allowed (upstream `AlwaysAllow`).
    AlwaysAllow,
    /// Node identities (`system:node:<name>` in `system:nodes`): upstream's `Node` authorizer
    /// with its object graph (`security::node_authorizer`); NodeRestriction admission narrows
    /// what a node may write.
    Node,
    /// Role-based access control over the cluster's Roles and bindings.
    Rbac,
}

impl AuthorizationMode {
    /// Parses upstream's mode names (`AlwaysAllow`, `Node`, `RBAC`).
    pub fn parse(s: &str) -> Option<AuthorizationMode> {
        match s {
            "AlwaysAllow" => Some(AuthorizationMode::AlwaysAllow),
            "Node" => Some(AuthorizationMode::Node),
            "RBAC" => Some(AuthorizationMode::Rbac),
            _ => None,
        }
    }
}

/// RBAC objects as last seen, with the revision each was seen at so that an older watch event
/// never overwrites what a newer local write already put in.
#[derive(Default)]
pub struct RbacCache {
    index: RwLock<RbacIndex>,
    revisions: Mutex<HashMap<String, Revision>>,
}

/// The RBAC objects with their bindings listed once per change rather than per request, and
/// each identity's resolved grants (cluster-wide and per namespace) cached until the next
/// change.
#[derive(Default)]
pub struct RbacIndex {
    snapshot: RbacSnapshot,
    cluster_bindings: Vec<Arc<Binding>>,
    bindings_by_namespace: HashMap<String, Vec<Arc<Binding>>>,
    grants: GrantsCache,
}

impl RbacIndex {
    /// Re-lists the bindings `kind` (in `namespace`) changed. Any change may alter what an
    /// identity is granted (a role's rules, a binding's subjects), so the grants go too.
    fn refresh(&mut self, kind: &str, namespace: &str) {
        self.grants.clear();
        match kind {
            "ClusterRoleBinding" => self.cluster_bindings = self.snapshot.cluster_role_bindings(),
            "RoleBinding" => {
                let listed = self.snapshot.role_bindings(namespace);
                if listed.is_empty() {
                    self.bindings_by_namespace.remove(namespace);
                } else {
                    self.bindings_by_namespace
                        .insert(namespace.to_string(), listed);
                }
            }
            _ => {}
        }
    }
}

impl RbacObjects for RbacIndex {
    fn cluster_role(&self, name: &str) -> Option<Arc<Role>> {
        self.snapshot.cluster_role(name)
    }

    fn role(&self, namespace: &str, name: &str) -> Option<Arc<Role>> {
        self.snapshot.role(namespace, name)
    }

    fn cluster_role_bindings(&self) -> Vec<Arc<Binding>> {
        self.cluster_bindings.clone()
    }

    fn role_bindings(&self, namespace: &str) -> Vec<Arc<Binding>> {
        self.bindings_by_namespace
            .get(namespace)
            .cloned()
            .unwrap_or_default()
    }

    fn grants_cache(&self) -> Option<&GrantsCache> {
        Some(&self.grants)
    }
}

/// The RBAC kind stored under `key`, if it is an RBAC object's key.
pub fn rbac_kind_of_key(key: &str) -> Option<&'static str> {
    let rest = key.strip_prefix("/registry/")?;
    let (resource, _) = rest.split_once('/')?;
    match resource {
        "roles" => Some("Role"),
        "rolebindings" => Some("RoleBinding"),
        "clusterroles" => Some("ClusterRole"),
        "clusterrolebindings" => Some("ClusterRoleBinding"),
        _ => None,
    }
}

impl RbacCache {
    /// Records the object stored under `key` at `revision` (`None`: deleted). Returns false
    /// when the cache already holds something newer.
    pub fn apply(&self, key: &str, revision: Revision, object: Option<&Value>) -> bool {
        let Some(kind) = rbac_kind_of_key(key) else {
            return false;
        };
        {
            let mut revs = self.revisions.lock();
            if revs.get(key).is_some_and(|seen| *seen > revision) {
                return false;
            }
            revs.insert(key.to_string(), revision);
        }
        let (ns, name) = namespace_and_name(key);
        let mut index = self.index.write();
        match object {
            Some(obj) => {
                let mut obj = obj.clone();
                obj["kind"] = json!(kind);
                if let Err(e) = index.snapshot.upsert(&obj) {
                    tracing::warn!("ignoring an RBAC object the authorizer cannot read: {e}");
                }
            }
            None => index.snapshot.remove(kind, ns, name),
        }
        index.refresh(kind, ns);
        true
    }

    /// Replaces everything with `objects` (a fresh list at `revision`).
    pub fn reset(&self, objects: &[(String, Value)], revision: Revision) {
        let mut index = RbacIndex::default();
        let mut revs = HashMap::new();
        let mut namespaces = std::collections::BTreeSet::new();
        for (key, obj) in objects {
            let Some(kind) = rbac_kind_of_key(key) else {
                continue;
            };
            let mut obj = obj.clone();
            obj["kind"] = json!(kind);
            if let Err(e) = index.snapshot.upsert(&obj) {
                tracing::warn!("ignoring an RBAC object the authorizer cannot read: {e}");
            }
            if kind == "RoleBinding" {
                namespaces.insert(namespace_and_name(key).0.to_string());
            }
            revs.insert(key.clone(), revision);
        }
        index.refresh("ClusterRoleBinding", "");
        for ns in namespaces {
            index.refresh("RoleBinding", &ns);
        }
        *self.index.write() = index;
        *self.revisions.lock() = revs;
    }

    pub fn read(&self) -> RwLockReadGuard<'_, RbacIndex> {
        self.index.read()
    }
}

/// `(namespace, name)` of a storage key `/registry/<resource>[/<ns>]/<name>`.
fn namespace_and_name(key: &str) -> (&str, &str) {
    let rest = key.trim_start_matches("/registry/");
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        [_, ns, name] => (ns, name),
        [_, name] => ("", name),
        _ => ("", ""),
    }
}

/// The authorizer chain of the API server.
pub struct Authorizer {
    modes: Vec<AuthorizationMode>,
    pub rbac: RbacCache,
    /// What relates objects to nodes, for the Node authorizer.
    pub node_graph: NodeGraph,
    node_rules: Vec<PolicyRule>,
}

impl Authorizer {
    pub fn new(modes: &[AuthorizationMode]) -> Authorizer {
        Authorizer {
            modes: modes.to_vec(),
            rbac: RbacCache::default(),
            node_graph: NodeGraph::default(),
            node_rules: bootstrap::node_rules(),
        }
    }

    /// Whether every request is allowed whatever the policy says.
    pub fn allows_everything(&self) -> bool {
        self.modes.contains(&AuthorizationMode::AlwaysAllow)
    }

    /// Whether escalation checks and impersonation checks consult RBAC.
    pub fn uses_rbac(&self) -> bool {
        !self.allows_everything() && self.modes.contains(&AuthorizationMode::Rbac)
    }

    /// Asks the chain (see [`Authorize::decide`]) about a request without a field selector.
    pub fn authorize(&self, attrs: &Attributes) -> Decision {
        self.decide(attrs, None)
    }

    /// [`Self::authorize`] for a list or watch narrowed by `field_selector` (the Node
    /// authorizer lets a node list the pods selected by `spec.nodeName=<itself>`).
    pub fn authorize_selected(&self, attrs: &Attributes, field_selector: Option<&str>) -> Decision {
        self.decide(attrs, field_selector)
    }

    /// Runs `f` over the chain in `--authorization-mode` order, after the privileged-group
    /// authorizer, as kube-apiserver builds it.
    fn with_chain<R>(&self, f: impl FnOnce(&[&dyn Authorize]) -> R) -> R {
        let rbac_objects = self
            .modes
            .contains(&AuthorizationMode::Rbac)
            .then(|| self.rbac.read());
        self.with_chain_over(rbac_objects.as_deref(), f)
    }

    /// Runs `f` with the chain and the RBAC objects under one read of the RBAC cache: the RBAC
    /// escalation checks ask the chain for `escalate`/`bind` and then resolve rules from the
    /// same objects (a second read while a writer waits would deadlock the fair lock).
    pub(crate) fn with_chain_and_rbac<R>(
        &self,
        f: impl FnOnce(&dyn Authorize, &dyn RbacObjects) -> R,
    ) -> R {
        let objects = self.rbac.read();
        let rbac = self
            .modes
            .contains(&AuthorizationMode::Rbac)
            .then_some(&*objects);
        self.with_chain_over(rbac, |members| f(&chain::Chain(members), &*objects))
    }

    fn with_chain_over<R>(
        &self,
        rbac_objects: Option<&RbacIndex>,
        f: impl FnOnce(&[&dyn Authorize]) -> R,
    ) -> R {
        let rbac_authz = rbac_objects.map(|o| RbacAuthorizer(o));
        let node_authz = NodeAuthorizer {
            graph: &self.node_graph,
            rules: &self.node_rules,
        };
        let mut members: Vec<&dyn Authorize> = Vec::with_capacity(self.modes.len() + 1);
        members.push(&PrivilegedGroups);
        for mode in &self.modes {
            match mode {
                AuthorizationMode::AlwaysAllow => members.push(&AlwaysAllow),
                AuthorizationMode::Node => members.push(&node_authz),
                AuthorizationMode::Rbac => {
                    if let Some(r) = &rbac_authz {
                        members.push(r);
                    }
                }
            }
        }
        f(&members)
    }
}

impl Authorize for Authorizer {
    /// Asks each authorizer in turn; the first to allow decides. A refusal carries the
    /// reasons the authorizers gave, joined as upstream's union authorizer does.
    fn decide(&self, attrs: &Attributes, field_selector: Option<&str>) -> Decision {
        self.with_chain(|c| chain::union_decide(c, attrs, field_selector))
    }

    fn rules_for(&self, user: &UserInfo, namespace: &str) -> UserRules {
        self.with_chain(|c| chain::union_rules_for(c, user, namespace))
    }
}

/// The authorizer attributes of a resource request. As upstream's RequestInfoFactory: a
/// request for one namespace object is in that namespace, and a list or watch narrowed to one
/// name by `fieldSelector=metadata.name=<n>` is about that name.
pub fn resource_attributes(
    user: &UserInfo,
    r: &ResourceRequest,
    field_selector: Option<&str>,
) -> Attributes {
    let mut name = r.name.clone().unwrap_or_default();
    if name.is_empty() && matches!(r.verb.as_str(), "list" | "watch") {
        if let Some(n) = field_selector.and_then(single_name_selector) {
            name = n;
        }
    }
    let mut namespace = r.namespace.clone().unwrap_or_default();
    if r.group.is_empty() && r.resource == "namespaces" && !name.is_empty() {
        namespace = name.clone();
    }
    Attributes {
        user: user.clone(),
        verb: r.verb.clone(),
        api_group: r.group.clone(),
        api_version: r.version.clone(),
        resource: r.resource.clone(),
        subresource: r.subresource.clone().unwrap_or_default(),
        namespace,
        name,
        path: String::new(),
        resource_request: true,
    }
}

/// `metadata.name=<n>` (or `==`) as the only requirement of a field selector.
fn single_name_selector(selector: &str) -> Option<String> {
    if selector.contains(',') {
        return None;
    }
    let value = selector
        .strip_prefix("metadata.name==")
        .or_else(|| selector.strip_prefix("metadata.name="))?;
    (!value.is_empty()).then(|| value.to_string())
}

/// The authorizer attributes of any request: resource requests as above, everything else
/// (discovery, `/version`, `/healthz`, `/metrics`, OpenAPI) as a non-resource request whose
/// verb is the lower-case HTTP method.
pub fn request_attributes(
    user: &UserInfo,
    method: &str,
    path: &str,
    target: &Target,
    field_selector: Option<&str>,
) -> Attributes {
    match target {
        Target::Resource(r) => resource_attributes(user, r, field_selector),
        _ => Attributes::non_resource(user.clone(), &method.to_ascii_lowercase(), path),
    }
}

impl super::ApiServer {
    /// Upstream's escalation checks on RBAC writes: a requester may only create or change a
    /// role whose rules they hold (or with `escalate`), and only bind a role whose rules they
    /// hold (or with `bind`).
    pub(crate) fn check_rbac_escalation(
        &self,
        info: &ResourceInfo,
        namespace: Option<&str>,
        request_name: &str,
        obj: &Value,
        old: Option<&Value>,
        opts: &super::registry::WriteOptions,
    ) -> Result<(), ApiError> {
        let Some(requester) = &opts.requester else {
            return Ok(());
        };
        if !self.security.authz.uses_rbac() || info.group != rbac::GROUP || info.custom.is_some() {
            return Ok(());
        }
        let user = &requester.user;
        // `escalate` and `bind` are asked of the same chain as the request itself (upstream
        // passes the API server's authorizer to the RBAC registry).
        let checked =
            self.security
                .authz
                .with_chain_and_rbac(|authz, objects| match info.plural.as_str() {
                    "roles" => rbac::check_role_escalation(
                        authz,
                        user,
                        namespace.unwrap_or_default(),
                        request_name,
                        obj,
                        old,
                        objects,
                    ),
                    "clusterroles" => rbac::check_role_escalation(
                        authz,
                        user,
                        "",
                        request_name,
                        obj,
                        old,
                        objects,
                    ),
                    "rolebindings" | "clusterrolebindings" => {
                        rbac::check_binding_escalation(authz, user, obj, old, objects)
                    }
                    _ => Ok(()),
                });
        checked.map_err(|f| ApiError {
            code: 403,
            reason: "Forbidden",
            message: f.message,
            details: Some(f.details),
        })
    }
}

/// The 403 answered for a denied request.
pub fn forbidden(attrs: &Attributes, decision: &Decision) -> ApiError {
    let f = rbac::forbidden(attrs, &decision.reason);
    ApiError {
        code: 403,
        reason: "Forbidden",
        message: f.message,
        details: Some(f.details),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::request::classify;

    fn user(name: &str, groups: &[&str]) -> UserInfo {
        UserInfo::new(name, groups)
    }

    #[test]
    fn namespace_objects_are_in_their_own_namespace() {
        let t = classify("GET", "/api/v1/namespaces/team-a", false);
        let a = request_attributes(
            &user("u", &[]),
            "GET",
            "/api/v1/namespaces/team-a",
            &t,
            None,
        );
        assert_eq!(
            (a.namespace.as_str(), a.name.as_str(), a.verb.as_str()),
            ("team-a", "team-a", "get")
        );
        let t = classify("GET", "/api/v1/namespaces/a/pods", true);
        let a = request_attributes(&user("u", &[]), "GET", "/", &t, Some("metadata.name=p1"));
        assert_eq!((a.verb.as_str(), a.name.as_str()), ("watch", "p1"));
        let a = request_attributes(
            &user("u", &[]),
            "GET",
            "/",
            &t,
            Some("metadata.name=p1,x=y"),
        );
        assert_eq!(a.name, "");
        let t = classify("GET", "/apis/apps", false);
        let a = request_attributes(&user("u", &[]), "GET", "/apis/apps", &t, None);
        assert!(!a.resource_request);
        assert_eq!((a.verb.as_str(), a.path.as_str()), ("get", "/apis/apps"));
    }

    #[test]
    fn cache_ignores_events_older_than_what_it_holds() {
        let cache = RbacCache::default();
        let key = "/registry/clusterroles/reader";
        let v1 = json!({"metadata": {"name": "reader"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]});
        let v2 = json!({"metadata": {"name": "reader"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]});
        assert!(cache.apply(key, 5, Some(&v2)));
        assert!(!cache.apply(key, 4, Some(&v1)), "a stale event is ignored");
        let rules = cache.read().cluster_role("reader").unwrap().rules.clone();
        assert_eq!(rules[0].verbs, vec!["get", "list"]);
        assert!(cache.apply(key, 6, None));
        assert!(cache.read().cluster_role("reader").is_none());
        assert!(!cache.apply("/registry/pods/ns/p", 7, Some(&v1)));
    }

    #[test]
    fn chain_tries_each_mode_and_nodes_get_kubelet_rules() {
        let authz = Authorizer::new(&[AuthorizationMode::Node, AuthorizationMode::Rbac]);
        let node = user("system:node:n1", &["system:nodes", "system:authenticated"]);
        let get_node = Attributes::resource(node.clone(), "get", "", "nodes", "", "n1");
        assert!(authz.authorize(&get_node).allowed);
        let secret_list = Attributes::resource(node, "list", "", "secrets", "", "");
        assert!(!authz.authorize(&secret_list).allowed);
        let alice = user("alice", &["system:authenticated"]);
        let pods = Attributes::resource(alice.clone(), "list", "", "pods", "default", "");
        let d = authz.authorize(&pods);
        assert!(!d.allowed);
        assert_eq!(
            forbidden(&pods, &d).message,
            r#"pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "default""#
        );
        let open = Authorizer::new(&[AuthorizationMode::AlwaysAllow]);
        assert!(open.authorize(&pods).allowed);
        let review =
            json!({"spec": {"resourceAttributes": {"verb": "delete", "resource": "nodes"}}});
        let answer = rbac::self_subject_access_review(&review, &alice, &open).unwrap();
        assert_eq!(answer["status"], json!({"allowed": true}));
        let rules = rbac::self_subject_rules_review(
            &json!({"spec": {"namespace": "default"}}),
            &alice,
            &open,
        )
        .unwrap();
        assert_eq!(
            rules["status"]["resourceRules"],
            json!([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}])
        );
    }
}
