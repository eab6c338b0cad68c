//! Upstream's Node authorizer (`--authorization-mode=Node`, kube-apiserver 1.32 with the
//! `AuthorizeNodeWithSelectors` gate on, as it is by default): a kubelet (`system:node:<name>`
//! in `system:nodes`) reads secrets, configmaps, persistent volume claims and volumes, resource
//! claims and volume attachments, and asks for service account tokens, only when a pod bound to
//! it relates it to the object; it reads only its own Node and the pods bound to it, and writes
//! only leases in `kube-node-lease` named after it. Everything else a node does is judged by
//! the static kubelet rules. A refusal is "no opinion" with upstream's reason, so RBAC still
//! gets its say.
//!
//! The relationships come from [`NodeGraph`], an index the API server keeps current from the
//! pods, PersistentVolumes and VolumeAttachments it stores (upstream's graph populator):
//! `pod → node`, `secret|configmap|pvc|serviceaccount|resourceclaim → pod` (mirror pods relate
//! nothing), `pv → pvc`, `secret → pv`, `volumeattachment → node`.

use std::collections::{BTreeSet, HashMap};

use parking_lot::RwLock;
use serde_json::Value;

use super::rbac::{Attributes, Decision, PolicyRule};
use super::user::names;
use super::UserInfo;
use crate::store::Revision;

/// The namespace of node heartbeat leases.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// The kinds of objects a node's access to depends on the graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Vertex {
    Pod,
    Secret,
    ConfigMap,
    PersistentVolumeClaim,
    PersistentVolume,
    ServiceAccount,
    ResourceClaim,
    VolumeAttachment,
}

impl Vertex {
    /// Upstream's vertex type names (as in its debug messages).
    fn name(self) -> &'static str {
        match self {
            Vertex::Pod => "pod",
            Vertex::Secret => "secret",
            Vertex::ConfigMap => "configmap",
            Vertex::PersistentVolumeClaim => "pvc",
            Vertex::PersistentVolume => "pv",
            Vertex::ServiceAccount => "serviceAccount",
            Vertex::ResourceClaim => "resourceclaim",
            Vertex::VolumeAttachment => "volumeattachment",
        }
    }
}

/// A pod bound to a node, with the objects in its namespace it references.
#[derive(Clone, Debug)]
struct PodEntry {
    revision: Revision,
    node: String,
    refs: Vec<(Vertex, String)>,
}

#[derive(Clone, Debug)]
struct PvEntry {
    revision: Revision,
    claim: Option<(String, String)>,
    secrets: Vec<(String, String)>,
}

#[derive(Default)]
struct Index {
    /// Bound pods by storage key.
    pods: HashMap<String, PodEntry>,
    /// `(kind, namespace, name)` → node → how many of its pods reference the object.
    referenced: HashMap<(Vertex, String, String), HashMap<String, u32>>,
    /// PersistentVolumes by name.
    pvs: HashMap<String, PvEntry>,
    /// Secret `(namespace, name)` → the volumes that name it for the kubelet.
    pv_secrets: HashMap<(String, String), BTreeSet<String>>,
    /// VolumeAttachment name → `(revision, node)`.
    attachments: HashMap<String, (Revision, String)>,
}

/// The node authorizer's relationship index (see the module documentation).
#[derive(Default)]
pub struct NodeGraph {
    index: RwLock<Index>,
}

/// Which kind of object a storage key holds, among the ones the graph follows.
pub fn graph_kind_of_key(key: &str) -> Option<Vertex> {
    let rest = key.strip_prefix("/registry/")?;
    let (resource, _) = rest.split_once('/')?;
    match resource {
        "pods" => Some(Vertex::Pod),
        "persistentvolumes" => Some(Vertex::PersistentVolume),
        "volumeattachments" => Some(Vertex::VolumeAttachment),
        _ => None,
    }
}

fn last_segment(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or_default()
}

fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn items<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

impl NodeGraph {
    /// Whether the graph already holds the object under `key` at `revision` or later, so a
    /// watch event need not even be decoded.
    pub fn is_current(&self, key: &str, revision: Revision) -> bool {
        let index = self.index.read();
        let seen = match graph_kind_of_key(key) {
            Some(Vertex::Pod) => index.pods.get(key).map(|p| p.revision),
            Some(Vertex::PersistentVolume) => index.pvs.get(last_segment(key)).map(|p| p.revision),
            Some(Vertex::VolumeAttachment) => index.attachments.get(last_segment(key)).map(|a| a.0),
            _ => None,
        };
        seen.is_some_and(|r| r >= revision)
    }

    /// Records the object stored under `key` at `revision` (`None`: deleted). An event older
    /// than what the graph holds for the key is ignored.
    pub fn apply(&self, key: &str, revision: Revision, object: Option<&Value>) {
        let Some(kind) = graph_kind_of_key(key) else {
            return;
        };
        let mut index = self.index.write();
        match kind {
            Vertex::Pod => index.apply_pod(key, revision, object),
            Vertex::PersistentVolume => index.apply_pv(last_segment(key), revision, object),
            Vertex::VolumeAttachment => {
                let name = last_segment(key);
                if index.attachments.get(name).is_some_and(|a| a.0 > revision) {
                    return;
                }
                match object
                    .map(|o| s(o, "/spec/nodeName"))
                    .filter(|n| !n.is_empty())
                {
                    Some(node) => {
                        index
                            .attachments
                            .insert(name.to_string(), (revision, node.to_string()));
                    }
                    None => {
                        index.attachments.remove(name);
                    }
                }
            }
            _ => {}
        }
    }

    /// Replaces everything with `objects` (a fresh list at `revision`).
    pub fn reset(&self, objects: &[(String, Value)], revision: Revision) {
        let mut fresh = Index::default();
        for (key, obj) in objects {
            match graph_kind_of_key(key) {
                Some(Vertex::Pod) => fresh.apply_pod(key, revision, Some(obj)),
                Some(Vertex::PersistentVolume) => {
                    fresh.apply_pv(last_segment(key), revision, Some(obj))
                }
                Some(Vertex::VolumeAttachment) => {
                    let node = s(obj, "/spec/nodeName");
                    if !node.is_empty() {
                        fresh
                            .attachments
                            .insert(last_segment(key).to_string(), (revision, node.to_string()));
                    }
                }
                _ => {}
            }
        }
        *self.index.write() = fresh;
    }

    /// Whether a path leads from the object to `node` (upstream `hasPathFrom`).
    pub fn has_path(&self, node: &str, kind: Vertex, namespace: &str, name: &str) -> bool {
        self.index.read().has_path(node, kind, namespace, name)
    }
}

impl Index {
    fn apply_pod(&mut self, key: &str, revision: Revision, pod: Option<&Value>) {
        if self.pods.get(key).is_some_and(|p| p.revision > revision) {
            return;
        }
        let bound = pod.and_then(|p| {
            let node = s(p, "/spec/nodeName");
            (!node.is_empty()).then(|| PodEntry {
                revision,
                node: node.to_string(),
                refs: pod_references(p),
            })
        });
        if let Some(old) = self.pods.remove(key) {
            let ns = pod_namespace(key);
            for (kind, name) in &old.refs {
                let k = (*kind, ns.to_string(), name.clone());
                if let Some(nodes) = self.referenced.get_mut(&k) {
                    if let Some(n) = nodes.get_mut(&old.node) {
                        *n -= 1;
                        if *n == 0 {
                            nodes.remove(&old.node);
                        }
                    }
                    if nodes.is_empty() {
                        self.referenced.remove(&k);
                    }
                }
            }
        }
        if let Some(entry) = bound {
            let ns = pod_namespace(key).to_string();
            for (kind, name) in &entry.refs {
                *self
                    .referenced
                    .entry((*kind, ns.clone(), name.clone()))
                    .or_default()
                    .entry(entry.node.clone())
                    .or_default() += 1;
            }
            self.pods.insert(key.to_string(), entry);
        }
    }

    fn apply_pv(&mut self, name: &str, revision: Revision, pv: Option<&Value>) {
        if self.pvs.get(name).is_some_and(|p| p.revision > revision) {
            return;
        }
        if let Some(old) = self.pvs.remove(name) {
            for secret in old.secrets {
                if let Some(set) = self.pv_secrets.get_mut(&secret) {
                    set.remove(name);
                    if set.is_empty() {
                        self.pv_secrets.remove(&secret);
                    }
                }
            }
        }
        let Some(pv) = pv else { return };
        let claim_ns = s(pv, "/spec/claimRef/namespace");
        let claim_name = s(pv, "/spec/claimRef/name");
        // Upstream relates a volume (and its secrets) only while it has a claim.
        let claim =
            (!claim_name.is_empty()).then(|| (claim_ns.to_string(), claim_name.to_string()));
        let secrets = if claim.is_some() {
            pv_secret_names(pv, claim_ns)
        } else {
            Vec::new()
        };
        for secret in &secrets {
            self.pv_secrets
                .entry(secret.clone())
                .or_default()
                .insert(name.to_string());
        }
        self.pvs.insert(
            name.to_string(),
            PvEntry {
                revision,
                claim,
                secrets,
            },
        );
    }

    fn related_by_pods(&self, node: &str, kind: Vertex, ns: &str, name: &str) -> bool {
        self.referenced
            .get(&(kind, ns.to_string(), name.to_string()))
            .is_some_and(|nodes| nodes.contains_key(node))
    }

    fn has_path(&self, node: &str, kind: Vertex, ns: &str, name: &str) -> bool {
        match kind {
            Vertex::Pod => self
                .pods
                .get(&format!("/registry/pods/{ns}/{name}"))
                .is_some_and(|p| p.node == node),
            Vertex::PersistentVolume => self
                .pvs
                .get(name)
                .and_then(|pv| pv.claim.as_ref())
                .is_some_and(|(cns, claim)| {
                    self.related_by_pods(node, Vertex::PersistentVolumeClaim, cns, claim)
                }),
            Vertex::VolumeAttachment => self.attachments.get(name).is_some_and(|a| a.1 == node),
            Vertex::Secret => {
                self.related_by_pods(node, kind, ns, name)
                    || self
                        .pv_secrets
                        .get(&(ns.to_string(), name.to_string()))
                        .is_some_and(|pvs| {
                            pvs.iter()
                                .any(|pv| self.has_path(node, Vertex::PersistentVolume, "", pv))
                        })
            }
            _ => self.related_by_pods(node, kind, ns, name),
        }
    }
}

fn pod_namespace(key: &str) -> &str {
    key.trim_start_matches("/registry/pods/")
        .split('/')
        .next()
        .unwrap_or_default()
}

/// The objects in its namespace a bound pod lets its node read (upstream's
/// `VisitPodSecretNames`, `VisitPodConfigmapNames`, claims and the service account). A mirror
/// pod relates nothing: a node must not gain access by creating pods.
pub fn pod_references(pod: &Value) -> Vec<(Vertex, String)> {
    let mirror = pod
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .is_some_and(|a| a.contains_key(MIRROR_ANNOTATION));
    if mirror {
        return Vec::new();
    }
    pod_object_references(pod)
}

/// Every object in its namespace a pod names, mirror pod or not (NodeRestriction refuses
/// mirror pods that name any).
pub fn pod_object_references(pod: &Value) -> Vec<(Vertex, String)> {
    let mut refs: BTreeSet<(Vertex, String)> = BTreeSet::new();
    let mut add = |kind: Vertex, name: &str| {
        if !name.is_empty() {
            refs.insert((kind, name.to_string()));
        }
    };
    add(Vertex::ServiceAccount, s(pod, "/spec/serviceAccountName"));
    for secret in items(pod, "/spec/imagePullSecrets") {
        add(Vertex::Secret, s(secret, "/name"));
    }
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for c in items(pod, &format!("/spec/{list}")) {
            for from in items(c, "/envFrom") {
                add(Vertex::Secret, s(from, "/secretRef/name"));
                add(Vertex::ConfigMap, s(from, "/configMapRef/name"));
            }
            for env in items(c, "/env") {
                add(Vertex::Secret, s(env, "/valueFrom/secretKeyRef/name"));
                add(Vertex::ConfigMap, s(env, "/valueFrom/configMapKeyRef/name"));
            }
        }
    }
    let pod_name = s(pod, "/metadata/name");
    for v in items(pod, "/spec/volumes") {
        add(Vertex::Secret, s(v, "/secret/secretName"));
        add(Vertex::Secret, s(v, "/azureFile/secretName"));
        for plugin in [
            "cephfs",
            "cinder",
            "flexVolume",
            "rbd",
            "scaleIO",
            "iscsi",
            "storageos",
        ] {
            add(Vertex::Secret, s(v, &format!("/{plugin}/secretRef/name")));
        }
        add(Vertex::Secret, s(v, "/csi/nodePublishSecretRef/name"));
        add(Vertex::ConfigMap, s(v, "/configMap/name"));
        for src in items(v, "/projected/sources") {
            add(Vertex::Secret, s(src, "/secret/name"));
            add(Vertex::ConfigMap, s(src, "/configMap/name"));
        }
        add(
            Vertex::PersistentVolumeClaim,
            s(v, "/persistentVolumeClaim/claimName"),
        );
        if v.get("ephemeral").is_some() {
            add(
                Vertex::PersistentVolumeClaim,
                &format!("{pod_name}-{}", s(v, "/name")),
            );
        }
    }
    // A claim from a template is named in the pod's status once created (1.32's
    // `resourceclaim.Name`).
    for claim in items(pod, "/spec/resourceClaims") {
        let direct = s(claim, "/resourceClaimName");
        if !direct.is_empty() {
            add(Vertex::ResourceClaim, direct);
            continue;
        }
        let name = s(claim, "/name");
        if let Some(st) = items(pod, "/status/resourceClaimStatuses")
            .iter()
            .find(|st| s(st, "/name") == name)
        {
            add(Vertex::ResourceClaim, s(st, "/resourceClaimName"));
        }
    }
    refs.into_iter().collect()
}

/// The secrets `(namespace, name)` a bound PersistentVolume names for the kubelet (upstream's
/// `VisitPVSecretNames` with `kubeletVisible`); a reference without a namespace is in the
/// claim's namespace.
fn pv_secret_names(pv: &Value, claim_ns: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut add = |ns: &str, name: &str| {
        if !name.is_empty() {
            let ns = if ns.is_empty() { claim_ns } else { ns };
            out.push((ns.to_string(), name.to_string()));
        }
    };
    let spec = pv.get("spec").unwrap_or(&Value::Null);
    add(
        s(spec, "/azureFile/secretNamespace"),
        s(spec, "/azureFile/secretName"),
    );
    for plugin in [
        "cephfs",
        "cinder",
        "flexVolume",
        "rbd",
        "scaleIO",
        "iscsi",
        "storageos",
    ] {
        add(
            s(spec, &format!("/{plugin}/secretRef/namespace")),
            s(spec, &format!("/{plugin}/secretRef/name")),
        );
    }
    for field in [
        "nodePublishSecretRef",
        "nodeStageSecretRef",
        "nodeExpandSecretRef",
    ] {
        add(
            s(spec, &format!("/csi/{field}/namespace")),
            s(spec, &format!("/csi/{field}/name")),
        );
    }
    out
}

fn no_opinion(reason: impl Into<String>) -> Decision {
    Decision {
        allowed: false,
        reason: reason.into(),
    }
}

fn allow() -> Decision {
    Decision {
        allowed: true,
        reason: String::new(),
    }
}

/// Whether a field selector requires `field` to equal `value` (`=` or `==`).
fn selects(field_selector: Option<&str>, field: &str, value: &str) -> bool {
    field_selector.is_some_and(|sel| {
        sel.split(',').any(|req| {
            let req = req.trim();
            let Some(rest) = req.strip_prefix(field) else {
                return false;
            };
            rest.strip_prefix("==")
                .or_else(|| rest.strip_prefix('='))
                .is_some_and(|v| v == value)
        })
    })
}

/// Whether `user` is a node identity (upstream `NodeIdentity`'s `isNode`): in `system:nodes`
/// and named `system:node:<name>`, the name possibly empty.
pub fn is_node_identity(user: &UserInfo) -> bool {
    user.in_group(names::NODES) && user.name.starts_with(names::NODE_PREFIX)
}

/// Upstream `NodeAuthorizer.Authorize`: allows, or has no opinion with the reason. Requests
/// from anyone but a node get no opinion and no reason.
pub fn authorize(
    attrs: &Attributes,
    field_selector: Option<&str>,
    graph: &NodeGraph,
    rules: &[PolicyRule],
) -> Decision {
    let Some(node) = attrs.user.node_name() else {
        if is_node_identity(&attrs.user) {
            return no_opinion(format!(
                "unknown node for user {}",
                crate::security::go_quote(&attrs.user.name)
            ));
        }
        return no_opinion("");
    };
    if attrs.resource_request {
        let decided = match (attrs.api_group.as_str(), attrs.resource.as_str()) {
            ("", "secrets") => Some(read_namespaced(node, Vertex::Secret, attrs, graph)),
            ("", "configmaps") => Some(read_namespaced(node, Vertex::ConfigMap, attrs, graph)),
            ("", "persistentvolumeclaims") => Some(if attrs.subresource == "status" {
                status_update(node, Vertex::PersistentVolumeClaim, attrs, graph)
            } else {
                get(node, Vertex::PersistentVolumeClaim, attrs, graph)
            }),
            ("", "persistentvolumes") => Some(get(node, Vertex::PersistentVolume, attrs, graph)),
            ("resource.k8s.io", "resourceclaims") => {
                Some(get(node, Vertex::ResourceClaim, attrs, graph))
            }
            ("storage.k8s.io", "volumeattachments") => {
                Some(get(node, Vertex::VolumeAttachment, attrs, graph))
            }
            ("", "serviceaccounts") => Some(create_token(node, attrs, graph)),
            ("coordination.k8s.io", "leases") => Some(lease(node, attrs)),
            ("storage.k8s.io", "csinodes") => Some(csi_node(node, attrs)),
            ("", "nodes") => Some(node_object(node, attrs)),
            ("", "pods") => Some(pod(node, attrs, field_selector, graph)),
            _ => None,
        };
        if let Some(d) = decided {
            return d;
        }
    }
    if rules.iter().any(|r| r.allows(attrs)) {
        allow()
    } else {
        no_opinion("")
    }
}

fn related(node: &str, kind: Vertex, attrs: &Attributes, graph: &NodeGraph) -> Decision {
    if attrs.name.is_empty() {
        return no_opinion("No Object name found");
    }
    if graph.has_path(node, kind, &attrs.namespace, &attrs.name) {
        allow()
    } else {
        tracing::debug!(
            "node '{node}' cannot get {} {}/{}, no relationship to this object was found in the node authorizer graph",
            kind.name(),
            attrs.namespace,
            attrs.name
        );
        no_opinion(format!(
            "no relationship found between node '{node}' and this object"
        ))
    }
}

fn read_namespaced(node: &str, kind: Vertex, attrs: &Attributes, graph: &NodeGraph) -> Decision {
    if !matches!(attrs.verb.as_str(), "get" | "list" | "watch") {
        return no_opinion("can only read resources of this type");
    }
    if !attrs.subresource.is_empty() {
        return no_opinion("cannot read subresource");
    }
    if attrs.namespace.is_empty() {
        return no_opinion("can only read namespaced object of this type");
    }
    related(node, kind, attrs, graph)
}

fn get(node: &str, kind: Vertex, attrs: &Attributes, graph: &NodeGraph) -> Decision {
    if attrs.verb != "get" {
        return no_opinion("can only get individual resources of this type");
    }
    if !attrs.subresource.is_empty() {
        return no_opinion("cannot get subresource");
    }
    related(node, kind, attrs, graph)
}

fn status_update(node: &str, kind: Vertex, attrs: &Attributes, graph: &NodeGraph) -> Decision {
    if !matches!(attrs.verb.as_str(), "update" | "patch") {
        return no_opinion("can only get/update/patch this type");
    }
    related(node, kind, attrs, graph)
}

fn create_token(node: &str, attrs: &Attributes, graph: &NodeGraph) -> Decision {
    if attrs.verb != "create" || attrs.name.is_empty() {
        return no_opinion("can only create tokens for individual service accounts");
    }
    if attrs.subresource != "token" {
        return no_opinion("can only create token subresource of serviceaccount");
    }
    related(node, Vertex::ServiceAccount, attrs, graph)
}

fn lease(node: &str, attrs: &Attributes) -> Decision {
    let verb = attrs.verb.as_str();
    if !matches!(verb, "get" | "create" | "update" | "patch" | "delete") {
        return no_opinion("can only get, create, update, patch, or delete a node lease");
    }
    if attrs.namespace != NODE_LEASE_NAMESPACE {
        return no_opinion(format!(
            "can only access leases in the \"{NODE_LEASE_NAMESPACE}\" system namespace"
        ));
    }
    // On create the name is in the body: NodeRestriction checks it.
    if verb != "create" && attrs.name != node {
        return no_opinion("can only access node lease with the same name as the requesting node");
    }
    allow()
}

fn csi_node(node: &str, attrs: &Attributes) -> Decision {
    let verb = attrs.verb.as_str();
    if !matches!(verb, "get" | "create" | "update" | "patch" | "delete") {
        return no_opinion("can only get, create, update, patch, or delete a CSINode");
    }
    if !attrs.subresource.is_empty() {
        return no_opinion("cannot authorize CSINode subresources");
    }
    if verb != "create" && attrs.name != node {
        return no_opinion("can only access CSINode with the same name as the requesting node");
    }
    allow()
}

fn node_object(node: &str, attrs: &Attributes) -> Decision {
    match (attrs.subresource.as_str(), attrs.verb.as_str()) {
        // NodeRestriction limits a node to writing its own Node.
        ("", "create" | "update" | "patch") | ("status", "update" | "patch") => allow(),
        // By name rather than the graph, so a kubelet can look for its Node before creating it.
        ("", "get" | "list" | "watch") => {
            if attrs.name == node {
                allow()
            } else if attrs.name.is_empty() {
                no_opinion(format!(
                    "node '{node}' cannot read all nodes, only its own Node object"
                ))
            } else {
                no_opinion(format!(
                    "node '{node}' cannot read '{}', only its own Node object",
                    attrs.name
                ))
            }
        }
        _ => no_opinion(""),
    }
}

fn pod(
    node: &str,
    attrs: &Attributes,
    field_selector: Option<&str>,
    graph: &NodeGraph,
) -> Decision {
    match (attrs.subresource.as_str(), attrs.verb.as_str()) {
        ("", "get") => get(node, Vertex::Pod, attrs, graph),
        ("", "list" | "watch") => {
            if selects(field_selector, "spec.nodeName", node) {
                allow()
            } else if !attrs.name.is_empty() {
                related(node, Vertex::Pod, attrs, graph)
            } else {
                no_opinion("can only list/watch pods with spec.nodeName field selector")
            }
        }
        // Mirror pods, pod status and evictions: NodeRestriction limits them to the node's pods.
        ("", "create" | "delete") | ("status", "update" | "patch") | ("eviction", "create") => {
            allow()
        }
        _ => no_opinion(""),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::security::bootstrap;
    use crate::security::UserInfo;

    fn node0() -> UserInfo {
        UserInfo::new(
            "system:node:node-0",
            &["system:nodes", "system:authenticated"],
        )
    }

    fn ask(
        graph: &NodeGraph,
        verb: &str,
        group: &str,
        resource: &str,
        ns: &str,
        name: &str,
    ) -> Decision {
        let attrs = Attributes::resource(node0(), verb, group, resource, ns, name);
        authorize(&attrs, None, graph, &bootstrap::node_rules())
    }

    fn graph_with_pods() -> NodeGraph {
        let g = NodeGraph::default();
        let pod = json!({
            "metadata": {"name": "web", "namespace": "ns"},
            "spec": {
                "nodeName": "node-0",
                "serviceAccountName": "runner",
                "imagePullSecrets": [{"name": "pull"}],
                "containers": [{"name": "c", "env": [
                    {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "a"}}}
                ]}],
                "volumes": [
                    {"name": "creds", "secret": {"secretName": "mounted"}},
                    {"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
                    {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {}}}
                ]
            }
        });
        g.apply("/registry/pods/ns/web", 5, Some(&pod));
        let elsewhere = json!({"metadata": {"name": "far", "namespace": "ns"},
            "spec": {"nodeName": "node-1", "volumes": [{"name": "x", "secret": {"secretName": "other"}}]}});
        g.apply("/registry/pods/ns/far", 6, Some(&elsewhere));
        let pv = json!({"metadata": {"name": "pv-1"}, "spec": {
            "claimRef": {"namespace": "ns", "name": "data"},
            "csi": {"driver": "d", "volumeHandle": "h", "nodePublishSecretRef": {"name": "csi-creds", "namespace": "storage"}}
        }});
        g.apply("/registry/persistentvolumes/pv-1", 7, Some(&pv));
        g
    }

    #[test]
    fn secrets_and_configmaps_need_a_pod_on_the_node() {
        let g = graph_with_pods();
        assert!(ask(&g, "get", "", "secrets", "ns", "mounted").allowed);
        assert!(ask(&g, "watch", "", "secrets", "ns", "pull").allowed);
        assert!(ask(&g, "get", "", "configmaps", "ns", "settings").allowed);
        let d = ask(&g, "get", "", "secrets", "ns", "other");
        assert_eq!(
            (d.allowed, d.reason.as_str()),
            (
                false,
                "no relationship found between node 'node-0' and this object"
            )
        );
        assert_eq!(
            ask(&g, "list", "", "secrets", "ns", "").reason,
            "No Object name found"
        );
        assert_eq!(
            ask(&g, "update", "", "secrets", "ns", "mounted").reason,
            "can only read resources of this type"
        );
        // Volumes reach their secrets through the claim a pod on the node uses.
        assert!(ask(&g, "get", "", "persistentvolumeclaims", "ns", "data").allowed);
        assert!(ask(&g, "get", "", "persistentvolumeclaims", "ns", "web-scratch").allowed);
        assert!(ask(&g, "get", "", "persistentvolumes", "", "pv-1").allowed);
        assert!(ask(&g, "get", "", "secrets", "storage", "csi-creds").allowed);
        assert_eq!(
            ask(&g, "list", "", "persistentvolumes", "", "").reason,
            "can only get individual resources of this type"
        );
    }

    #[test]
    fn deleting_or_moving_a_pod_removes_its_relationships() {
        let g = graph_with_pods();
        g.apply("/registry/pods/ns/web", 4, None);
        assert!(
            ask(&g, "get", "", "secrets", "ns", "mounted").allowed,
            "an older event changes nothing"
        );
        g.apply("/registry/pods/ns/web", 9, None);
        assert!(!ask(&g, "get", "", "secrets", "ns", "mounted").allowed);
        assert!(!ask(&g, "get", "", "persistentvolumes", "", "pv-1").allowed);
        assert!(g.is_current("/registry/pods/ns/far", 6));
        assert!(!g.is_current("/registry/pods/ns/far", 7));
        let mirror = json!({"metadata": {"name": "m", "namespace": "ns",
            "annotations": {"kubernetes.io/config.mirror": "x"}},
            "spec": {"nodeName": "node-0", "volumes": [{"name": "s", "secret": {"secretName": "stolen"}}]}});
        g.apply("/registry/pods/ns/m", 10, Some(&mirror));
        assert!(ask(&g, "get", "", "pods", "ns", "m").allowed);
        assert!(!ask(&g, "get", "", "secrets", "ns", "stolen").allowed);
    }

    #[test]
    fn nodes_pods_leases_and_tokens() {
        let g = graph_with_pods();
        assert!(ask(&g, "get", "", "nodes", "", "node-0").allowed);
        assert!(
            ask(&g, "update", "", "nodes", "", "node-1").allowed,
            "left to NodeRestriction"
        );
        assert_eq!(
            ask(&g, "get", "", "nodes", "", "node-1").reason,
            "node 'node-0' cannot read 'node-1', only its own Node object"
        );
        assert_eq!(
            ask(&g, "list", "", "nodes", "", "").reason,
            "node 'node-0' cannot read all nodes, only its own Node object"
        );
        assert!(!ask(&g, "delete", "", "nodes", "", "node-0").allowed);
        assert!(ask(&g, "get", "", "pods", "ns", "web").allowed);
        assert!(!ask(&g, "get", "", "pods", "ns", "far").allowed);
        let list = Attributes::resource(node0(), "list", "", "pods", "", "");
        let rules = bootstrap::node_rules();
        assert!(authorize(&list, Some("spec.nodeName=node-0"), &g, &rules).allowed);
        assert_eq!(
            authorize(&list, Some("spec.nodeName=node-1"), &g, &rules).reason,
            "can only list/watch pods with spec.nodeName field selector"
        );
        assert!(
            ask(
                &g,
                "update",
                "coordination.k8s.io",
                "leases",
                NODE_LEASE_NAMESPACE,
                "node-0"
            )
            .allowed
        );
        assert_eq!(
            ask(
                &g,
                "update",
                "coordination.k8s.io",
                "leases",
                NODE_LEASE_NAMESPACE,
                "node-1"
            )
            .reason,
            "can only access node lease with the same name as the requesting node"
        );
        assert_eq!(
            ask(
                &g,
                "get",
                "coordination.k8s.io",
                "leases",
                "default",
                "node-0"
            )
            .reason,
            "can only access leases in the \"kube-node-lease\" system namespace"
        );
        let mut token =
            Attributes::resource(node0(), "create", "", "serviceaccounts", "ns", "runner");
        token.subresource = "token".into();
        assert!(authorize(&token, None, &g, &rules).allowed);
        token.name = "default".into();
        assert!(!authorize(&token, None, &g, &rules).allowed);
        // Not subdivided: the static kubelet rules.
        assert!(ask(&g, "watch", "", "services", "", "").allowed);
        assert!(ask(&g, "create", "", "events", "ns", "").allowed);
        assert!(!ask(&g, "create", "", "secrets", "ns", "").allowed);
        // Anyone else: no opinion, no reason.
        let alice = Attributes::resource(
            UserInfo::new("alice", &["system:authenticated"]),
            "get",
            "",
            "secrets",
            "ns",
            "mounted",
        );
        assert_eq!(authorize(&alice, None, &g, &rules), no_opinion(""));
        let nameless = Attributes::resource(
            UserInfo::new("system:node:", &["system:nodes"]),
            "get",
            "",
            "nodes",
            "",
            "",
        );
        assert_eq!(
            authorize(&nameless, None, &g, &rules).reason,
            r#"unknown node for user "system:node:""#
        );
    }
}
