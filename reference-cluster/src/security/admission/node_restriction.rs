//! NodeRestriction: a node identity (`system:node:<name>` in `system:nodes`) may only modify
//! its own Node (not its taints, nor labels outside the kubelet's set), its own Lease and
//! CSINode, ResourceSlices of its own, mirror pods bound to and owned by itself that reference
//! no other API object, the status of pods bound to itself, and of PersistentVolumeClaims only
//! the capacity, conditions and resize state; it may only evict or request tokens for pods
//! bound to itself. Messages are upstream 1.32's, except that a refused PVC status update lists
//! the changed fields instead of Go's `cmp.Diff` of the two objects.

use serde_json::Value;

use super::{forbidden, str_of, Attributes, Operation, Rejection};
use crate::security::admission::service_account::MIRROR_ANNOTATION;
use crate::security::node_authorizer::{self, Vertex};

/// The label namespace a node may never set on itself (it steers workloads to trusted nodes).
const NODE_RESTRICTION_LABEL_NAMESPACE: &str = "node-restriction.kubernetes.io";

/// The `kubernetes.io`/`k8s.io` labels a kubelet sets on its Node (upstream `kubeletapis`).
const KUBELET_LABELS: &[&str] = &[
    "kubernetes.io/hostname",
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
    "node.kubernetes.io/instance-type",
    "beta.kubernetes.io/instance-type",
    "kubernetes.io/os",
    "beta.kubernetes.io/os",
    "kubernetes.io/arch",
    "beta.kubernetes.io/arch",
    "node.kubernetes.io/windows-build",
];

/// Label namespaces (and their subdomains) a kubelet may use freely.
const KUBELET_LABEL_NAMESPACES: &[&str] = &["kubelet.kubernetes.io", "node.kubernetes.io"];

fn in_namespace(namespace: &str, suffix: &str) -> bool {
    namespace == suffix || namespace.ends_with(&format!(".{suffix}"))
}

/// The label keys a node may not add, remove or change (upstream `getForbiddenLabels`), sorted.
fn forbidden_labels(new: &Value, old: Option<&Value>) -> Vec<String> {
    let labels = |o: &Value| crate::resources::json::string_map(o, "metadata.labels");
    let new = labels(new);
    let old = old.map(labels).unwrap_or_default();
    let modified: std::collections::BTreeSet<&String> = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(*v))
        .chain(old.iter().filter(|(k, v)| new.get(*k) != Some(*v)))
        .map(|(k, _)| k)
        .collect();
    modified
        .into_iter()
        .filter(|key| {
            let namespace = key.split_once('/').map(|(ns, _)| ns).unwrap_or_default();
            let kubernetes =
                in_namespace(namespace, "kubernetes.io") || in_namespace(namespace, "k8s.io");
            let kubelet = KUBELET_LABELS.contains(&key.as_str())
                || KUBELET_LABEL_NAMESPACES
                    .iter()
                    .any(|ns| in_namespace(namespace, ns));
            in_namespace(namespace, NODE_RESTRICTION_LABEL_NAMESPACE) || (kubernetes && !kubelet)
        })
        .cloned()
        .collect()
}

/// The requesting node's own Node object, as the API server found it for a pod create
/// (upstream reads it from its node informer to check a mirror pod's owner UID).
#[derive(Clone, Debug, PartialEq)]
pub enum NodeLookup {
    Found(Value),
    /// No Node of that name: the create fails with upstream's 404.
    NotFound,
    /// The lookup failed for another reason, given here.
    Failed(String),
    /// Not looked up (any request but a pod create).
    NotNeeded,
}

/// Upstream's checks of a mirror pod a node creates: owned by its Node (by name and by the
/// stored Node's UID, so a pod cannot outlive a deleted and re-registered Node) as controller,
/// without blocking the owner's deletion, and naming no service account, secret, config map,
/// cluster trust bundle or claim (the Node authorizer would otherwise let the node read them).
fn mirror_pod_content(
    attrs: &Attributes,
    node: &str,
    pod: &Value,
    lookup: &NodeLookup,
) -> Result<(), Rejection> {
    let deny = |m: String| forbidden(attrs, Some(pod), &m);
    mirror_pod_owner(node, pod).map_err(deny)?;
    let owner_uid = str_of(pod, "/metadata/ownerReferences/0/uid");
    let node_uid = match lookup {
        NodeLookup::Found(n) => str_of(n, "/metadata/uid"),
        NodeLookup::NotFound => {
            return Err(Rejection {
                code: 404,
                reason: "NotFound",
                message: format!("nodes \"{node}\" not found"),
                details: Some(serde_json::json!({"name": node, "kind": "nodes"})),
            })
        }
        NodeLookup::Failed(e) => {
            return Err(deny(format!(
                "error looking up node {node} to verify uid: {e}"
            )))
        }
        NodeLookup::NotNeeded => {
            return Err(deny(format!(
                "error looking up node {node} to verify uid: the node was not looked up"
            )))
        }
    };
    if owner_uid != node_uid {
        // Upstream's wording, including its order: the owner's UID is the "expected" one.
        return Err(deny(format!(
            "node {node} UID mismatch: expected {owner_uid} got {node_uid}"
        )));
    }
    mirror_pod_references(node, pod).map_err(deny)
}

fn mirror_pod_owner(node: &str, pod: &Value) -> Result<(), String> {
    let owners = pod
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let owner = match owners {
        [] => {
            return Err(format!(
                "node \"{node}\" can only create pods with an owner reference set to itself"
            ))
        }
        [one] => one,
        _ => {
            return Err(format!(
                "node \"{node}\" can only create pods with a single owner reference set to itself"
            ))
        }
    };
    if str_of(owner, "/apiVersion") != "v1"
        || str_of(owner, "/kind") != "Node"
        || str_of(owner, "/name") != node
    {
        return Err(format!(
            "node \"{node}\" can only create pods with an owner reference set to itself"
        ));
    }
    if owner.get("controller").and_then(Value::as_bool) != Some(true) {
        return Err(format!(
            "node \"{node}\" can only create pods with a controller owner reference set to itself"
        ));
    }
    if owner.get("blockOwnerDeletion").and_then(Value::as_bool) == Some(true) {
        return Err(format!(
            "node \"{node}\" must not set blockOwnerDeletion on an owner reference"
        ));
    }
    Ok(())
}

fn mirror_pod_references(node: &str, pod: &Value) -> Result<(), String> {
    if !str_of(pod, "/spec/serviceAccountName").is_empty() {
        return Err(format!(
            "node \"{node}\" can not create pods that reference a service account"
        ));
    }
    let refs = node_authorizer::pod_object_references(pod);
    for (kind, what) in [
        (Vertex::Secret, "secrets"),
        (Vertex::ConfigMap, "configmaps"),
    ] {
        if refs.iter().any(|(k, _)| *k == kind) {
            return Err(format!(
                "node \"{node}\" can not create pods that reference {what}"
            ));
        }
    }
    let volumes = pod
        .pointer("/spec/volumes")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let trust_bundle = volumes.iter().any(|v| {
        v.pointer("/projected/sources")
            .and_then(Value::as_array)
            .is_some_and(|s| {
                s.iter()
                    .any(|src| src.get("clusterTrustBundle").is_some_and(|c| !c.is_null()))
            })
    });
    if trust_bundle {
        return Err(format!(
            "node \"{node}\" can not create pods that reference clustertrustbundles"
        ));
    }
    if volumes
        .iter()
        .any(|v| v.get("persistentVolumeClaim").is_some_and(|c| !c.is_null()))
    {
        return Err(format!(
            "node \"{node}\" can not create pods that reference persistentvolumeclaims"
        ));
    }
    Ok(())
}

/// The fields a PVC status update changes beyond what a kubelet may (upstream compares the
/// claims without resourceVersion, managedFields, status.capacity, status.conditions and, with
/// RecoverVolumeExpansionFailure on as in 1.32, status.allocatedResources and
/// status.allocatedResourceStatuses), as `metadata.labels`-style paths.
fn pvc_changes_beyond_status(old: &Value, new: &Value) -> Vec<String> {
    fn comparable(v: &Value) -> Value {
        let mut v = v.clone();
        if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("resourceVersion");
            meta.remove("managedFields");
        }
        if let Some(status) = v.get_mut("status").and_then(Value::as_object_mut) {
            for f in [
                "capacity",
                "conditions",
                "allocatedResources",
                "allocatedResourceStatuses",
            ] {
                status.remove(f);
            }
        }
        v
    }
    fn diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                for k in keys {
                    let sub = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    diff(
                        &sub,
                        x.get(k).unwrap_or(&Value::Null),
                        y.get(k).unwrap_or(&Value::Null),
                        out,
                    );
                }
            }
            _ if a != b => out.push(path.to_string()),
            _ => {}
        }
    }
    let mut out = Vec::new();
    diff("", &comparable(old), &comparable(new), &mut out);
    out
}

/// The name of the object a request is about: from its body on create, else from the path.
fn requested_name<'a>(attrs: &'a Attributes, object: Option<&'a Value>) -> &'a str {
    if attrs.operation == Operation::Create {
        object
            .map(|o| str_of(o, "/metadata/name"))
            .unwrap_or_default()
    } else {
        attrs.name.as_str()
    }
}

/// Admits a request from a node. `object`/`old` are the new and current objects (the current
/// pod for pod deletes, status updates and evictions; the pod a token is requested for);
/// `own_node` the requesting node's Node, looked up for pod creates.
pub fn admit(
    attrs: &Attributes,
    object: Option<&Value>,
    old: Option<&Value>,
    own_node: &NodeLookup,
) -> Result<(), Rejection> {
    let deny = |msg: String| Err(forbidden(attrs, object, &msg));
    let Some(node) = attrs.user.node_name() else {
        if node_authorizer::is_node_identity(&attrs.user) {
            return deny(format!(
                "could not determine node from user {}",
                crate::security::go_quote(&attrs.user.name)
            ));
        }
        return Ok(());
    };
    match (
        attrs.group.as_str(),
        attrs.resource.as_str(),
        attrs.subresource.as_str(),
    ) {
        ("", "nodes", _) => {
            let requested = if attrs.name.is_empty() {
                object
                    .map(|o| str_of(o, "/metadata/name"))
                    .unwrap_or_default()
            } else {
                attrs.name.as_str()
            };
            if requested != node {
                return deny(format!(
                    "node \"{node}\" is not allowed to modify node \"{requested}\""
                ));
            }
            match (attrs.operation, object) {
                (Operation::Create, Some(obj)) => {
                    if obj
                        .pointer("/spec/configSource")
                        .is_some_and(|c| !c.is_null())
                    {
                        return deny(format!("node \"{node}\" is not allowed to create pods with a non-nil configSource"));
                    }
                    let bad = forbidden_labels(obj, None);
                    if !bad.is_empty() {
                        return deny(format!(
                            "node \"{node}\" is not allowed to set the following labels: {}",
                            bad.join(", ")
                        ));
                    }
                }
                (Operation::Update, Some(obj)) => {
                    let old = old.unwrap_or(&Value::Null);
                    let config = obj.pointer("/spec/configSource").filter(|c| !c.is_null());
                    if config.is_some() && config != old.pointer("/spec/configSource") {
                        return deny(format!("node \"{node}\" is not allowed to update configSource to a new non-nil configSource"));
                    }
                    let taints = |o: &Value| {
                        o.pointer("/spec/taints")
                            .filter(|t| t.as_array().is_some_and(|a| !a.is_empty()))
                            .cloned()
                    };
                    if taints(obj) != taints(old) {
                        return deny(format!("node \"{node}\" is not allowed to modify taints"));
                    }
                    let bad = forbidden_labels(obj, Some(old));
                    if !bad.is_empty() {
                        return deny(format!(
                            "is not allowed to modify labels: {}",
                            bad.join(", ")
                        ));
                    }
                }
                _ => {}
            }
            Ok(())
        }
        ("", "pods", "") => match attrs.operation {
            Operation::Create => {
                let pod = object.unwrap_or(&Value::Null);
                let mirror = pod
                    .pointer("/metadata/annotations")
                    .and_then(Value::as_object)
                    .is_some_and(|a| a.contains_key(MIRROR_ANNOTATION));
                if !mirror {
                    return deny(format!(
                        "pod does not have \"{MIRROR_ANNOTATION}\" annotation, node \"{node}\" can only create mirror pods"
                    ));
                }
                if str_of(pod, "/spec/nodeName") != node {
                    return deny(format!(
                        "node \"{node}\" can only create pods with spec.nodeName set to itself"
                    ));
                }
                mirror_pod_content(attrs, node, pod, own_node)
            }
            Operation::Delete => {
                if old.is_some_and(|p| str_of(p, "/spec/nodeName") != node) {
                    return deny(format!(
                        "node \"{node}\" can only delete pods with spec.nodeName set to itself"
                    ));
                }
                Ok(())
            }
            _ => deny(format!(
                "unexpected operation \"{}\", node \"{node}\" can only create and delete mirror pods",
                attrs.operation.as_str()
            )),
        },
        ("", "pods", sub) if !matches!(sub, "status" | "eviction") => deny(format!(
            "unexpected pod subresource \"{sub}\", only 'status' and 'eviction' are allowed"
        )),
        ("", "persistentvolumeclaims", "status") => {
            if attrs.operation != Operation::Update {
                return deny(format!(
                    "unexpected operation \"{}\"",
                    attrs.operation.as_str()
                ));
            }
            let changed = pvc_changes_beyond_status(old.unwrap_or(&Value::Null), object.unwrap_or(&Value::Null));
            if !changed.is_empty() {
                return deny(format!(
                    "node \"{node}\" is not allowed to update fields other than status.quantity and status.conditions: {}",
                    changed.join(", ")
                ));
            }
            Ok(())
        }
        ("", "persistentvolumeclaims", _) => deny("may only update PVC status".to_string()),
        ("storage.k8s.io", "csinodes", _) => {
            let requested = requested_name(attrs, object);
            if requested != node {
                return deny(
                    "can only access CSINode with the same name as the requesting node".to_string(),
                );
            }
            Ok(())
        }
        ("resource.k8s.io", "resourceslices", _) => match attrs.operation {
            Operation::Create if object.is_some_and(|o| str_of(o, "/spec/nodeName") != node) => {
                deny("can only create ResourceSlice with the same NodeName as the requesting node".to_string())
            }
            Operation::Delete if old.is_some_and(|o| str_of(o, "/spec/nodeName") != node) => {
                deny("can only delete ResourceSlice with the same NodeName as the requesting node".to_string())
            }
            _ => Ok(()),
        },
        ("", "pods", "status") => {
            let current = old.or(object).unwrap_or(&Value::Null);
            if str_of(current, "/spec/nodeName") != node {
                return deny(format!("node \"{node}\" can only update pod status for pods with spec.nodeName set to itself"));
            }
            let labels = |o: Option<&Value>| {
                o.map(|o| crate::resources::json::string_map(o, "metadata.labels"))
                    .unwrap_or_default()
            };
            if object.is_some() && labels(object) != labels(old) {
                return deny(format!(
                    "node \"{node}\" cannot update labels through pod status"
                ));
            }
            Ok(())
        }
        ("", "pods", "eviction") => {
            if old.is_some_and(|p| str_of(p, "/spec/nodeName") != node) {
                return deny(format!(
                    "node {node} can only evict pods with spec.nodeName set to itself"
                ));
            }
            Ok(())
        }
        ("", "serviceaccounts", "token") => {
            // `old` is the pod the token is bound to, looked up from `boundObjectRef`.
            let r = object.and_then(|o| o.pointer("/spec/boundObjectRef"));
            let field = |f: &str| r.map(|r| str_of(r, f)).unwrap_or_default();
            if r.is_none()
                || field("/apiVersion") != "v1"
                || field("/kind") != "Pod"
                || field("/name").is_empty()
            {
                return deny("node requested token not bound to a pod".to_string());
            }
            if field("/uid").is_empty() {
                return deny("node requested token with a pod binding without a uid".to_string());
            }
            match old {
                Some(pod) if str_of(pod, "/metadata/uid") != field("/uid") => deny(format!(
                    "the UID in the bound object reference ({}) does not match the UID in record. The object might have been deleted and then recreated",
                    field("/uid")
                )),
                Some(pod) if str_of(pod, "/spec/nodeName") == node => Ok(()),
                _ => deny("node requested token bound to a pod scheduled on a different node".to_string()),
            }
        }
        ("coordination.k8s.io", "leases", _) => {
            if attrs.namespace != "kube-node-lease" {
                return deny(
                    "can only access leases in the \"kube-node-lease\" system namespace"
                        .to_string(),
                );
            }
            let requested = requested_name(attrs, object);
            if requested != node {
                return deny(
                    "can only access node lease with the same name as the requesting node"
                        .to_string(),
                );
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::security::UserInfo;

    /// The Node `n1` as stored, with the UID the tests' mirror pods name.
    fn n1() -> NodeLookup {
        NodeLookup::Found(json!({"metadata": {"name": "n1", "uid": "u"}}))
    }

    /// [`super::admit`] for a cluster where node `n1` exists.
    fn admit(a: &Attributes, object: Option<&Value>, old: Option<&Value>) -> Result<(), Rejection> {
        super::admit(a, object, old, &n1())
    }

    #[test]
    fn mirror_pod_owner_uid_must_be_the_stored_nodes() {
        let mut a = node(Operation::Create, "pods", "m");
        a.namespace = "default".into();
        let mirror = |uid: &str| {
            json!({"metadata": {"name": "m", "annotations": {MIRROR_ANNOTATION: "h"},
                "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": uid, "controller": true}]},
                "spec": {"nodeName": "n1"}})
        };
        assert!(super::admit(&a, Some(&mirror("u")), None, &n1()).is_ok());
        // A pod naming an earlier incarnation of the node (deleted and re-registered).
        let err = super::admit(&a, Some(&mirror("old")), None, &n1()).unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (
                403,
                r#"pods "m" is forbidden: node n1 UID mismatch: expected old got u"#
            )
        );
        let err = super::admit(&a, Some(&mirror("")), None, &n1()).unwrap_err();
        assert_eq!(
            err.message,
            r#"pods "m" is forbidden: node n1 UID mismatch: expected  got u"#
        );
        // No such Node: upstream answers the lookup's NotFound as is.
        let err = super::admit(&a, Some(&mirror("u")), None, &NodeLookup::NotFound).unwrap_err();
        assert_eq!(
            (err.code, err.reason, err.message.as_str()),
            (404, "NotFound", r#"nodes "n1" not found"#)
        );
        assert_eq!(err.details, Some(json!({"name": "n1", "kind": "nodes"})));
        let failed = NodeLookup::Failed("the store is unavailable".into());
        let err = super::admit(&a, Some(&mirror("u")), None, &failed).unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (
                403,
                r#"pods "m" is forbidden: error looking up node n1 to verify uid: the store is unavailable"#
            )
        );
        // The owner's name, kind and controller flag are judged before the lookup.
        let mut renamed = mirror("u");
        renamed["metadata"]["ownerReferences"][0]["name"] = json!("n2");
        let err = super::admit(&a, Some(&renamed), None, &NodeLookup::NotFound).unwrap_err();
        assert_eq!(
            err.message,
            r#"pods "m" is forbidden: node "n1" can only create pods with an owner reference set to itself"#
        );
        // Requests other than pod creates never need the node.
        let own = json!({"metadata": {"name": "n1"}});
        assert!(super::admit(
            &node(Operation::Update, "nodes", "n1"),
            Some(&own),
            Some(&own),
            &NodeLookup::NotNeeded
        )
        .is_ok());
    }

    fn node(op: Operation, resource: &str, name: &str) -> Attributes {
        Attributes::core(
            op,
            resource,
            "",
            "",
            name,
            UserInfo::new("system:node:n1", &["system:nodes"]),
        )
    }

    #[test]
    fn nodes_modify_only_themselves() {
        let own = json!({"metadata": {"name": "n1"}});
        assert!(admit(
            &node(Operation::Update, "nodes", "n1"),
            Some(&own),
            Some(&own)
        )
        .is_ok());
        let other = json!({"metadata": {"name": "n2"}});
        let err = admit(
            &node(Operation::Update, "nodes", "n2"),
            Some(&other),
            Some(&other),
        )
        .unwrap_err();
        assert_eq!(
            err.message,
            r#"nodes "n2" is forbidden: node "n1" is not allowed to modify node "n2""#
        );
        let labelled = json!({"metadata": {"name": "n1", "labels": {"node-restriction.kubernetes.io/pci": "true"}}});
        assert!(admit(
            &node(Operation::Update, "nodes", "n1"),
            Some(&labelled),
            Some(&own)
        )
        .unwrap_err()
        .message
        .ends_with("is not allowed to modify labels: node-restriction.kubernetes.io/pci"));
        // Other identities are not restricted here.
        let mut a = node(Operation::Update, "nodes", "n2");
        a.user = UserInfo::new("admin", &["system:masters"]);
        assert!(admit(&a, Some(&other), Some(&other)).is_ok());
    }

    #[test]
    fn pods_only_mirror_and_bound_to_the_node() {
        let mut a = node(Operation::Create, "pods", "m");
        a.namespace = "default".into();
        let mirror = json!({"metadata": {"name": "m", "annotations": {MIRROR_ANNOTATION: "h"},
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": "u", "controller": true}]},
            "spec": {"nodeName": "n1"}});
        assert!(admit(&a, Some(&mirror), None).is_ok());
        let plain = json!({"metadata": {"name": "m"}, "spec": {"nodeName": "n1"}});
        assert_eq!(
            admit(&a, Some(&plain), None).unwrap_err().message,
            r#"pods "m" is forbidden: pod does not have "kubernetes.io/config.mirror" annotation, node "n1" can only create mirror pods"#
        );
        let elsewhere = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n2"}});
        let status = node(Operation::Update, "pods", "p").with_subresource("status");
        assert!(admit(&status, Some(&elsewhere), Some(&elsewhere))
            .unwrap_err()
            .message
            .contains("can only update pod status for pods with spec.nodeName set to itself"));
        let own = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1"}});
        assert!(admit(&status, Some(&own), Some(&own)).is_ok());
        assert!(admit(
            &node(Operation::Delete, "pods", "p"),
            None,
            Some(&elsewhere)
        )
        .is_err());
        assert!(admit(
            &node(Operation::Update, "pods", "p"),
            Some(&own),
            Some(&own)
        )
        .unwrap_err()
        .message
        .contains(
            r#"unexpected operation "UPDATE", node "n1" can only create and delete mirror pods"#
        ));
    }

    #[test]
    fn leases_and_tokens_are_scoped_to_the_node() {
        let mut lease = node(Operation::Update, "leases", "n2");
        lease.group = "coordination.k8s.io".into();
        lease.namespace = "kube-node-lease".into();
        assert!(admit(&lease, None, None).is_err());
        lease.name = "n1".into();
        assert!(admit(&lease, None, None).is_ok());
        lease.namespace = "default".into();
        assert_eq!(
            admit(&lease, None, None).unwrap_err().message,
            r#"leases.coordination.k8s.io "Unknown" is forbidden: can only access leases in the "kube-node-lease" system namespace"#
        );
        let token = node(Operation::Create, "serviceaccounts", "default").with_subresource("token");
        let own = json!({"metadata": {"uid": "u1"}, "spec": {"nodeName": "n1"}});
        let bound = json!({"spec": {"boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "u1"}}});
        assert!(admit(&token, Some(&bound), Some(&own)).is_ok());
        let unbound = json!({"spec": {}});
        assert!(admit(&token, Some(&unbound), None)
            .unwrap_err()
            .message
            .ends_with("node requested token not bound to a pod"));
        let elsewhere = json!({"metadata": {"uid": "u1"}, "spec": {"nodeName": "n2"}});
        assert!(admit(&token, Some(&bound), Some(&elsewhere))
            .unwrap_err()
            .message
            .ends_with("node requested token bound to a pod scheduled on a different node"));
    }

    #[test]
    fn nodes_keep_their_taints_and_restricted_labels() {
        let update = node(Operation::Update, "nodes", "n1");
        let old = json!({"metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1"}},
                         "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}});
        let untainted = json!({"metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1"}}, "spec": {}});
        assert_eq!(
            admit(&update, Some(&untainted), Some(&old))
                .unwrap_err()
                .message,
            r#"nodes "n1" is forbidden: node "n1" is not allowed to modify taints"#
        );
        let relabelled = json!({"metadata": {"name": "n1", "labels": {
            "kubernetes.io/hostname": "n1", "example.com/team": "a", "node.kubernetes.io/pool": "p",
            "node-role.kubernetes.io/control-plane": ""}},
            "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}});
        assert_eq!(
            admit(&update, Some(&relabelled), Some(&old))
                .unwrap_err()
                .message,
            r#"nodes "n1" is forbidden: is not allowed to modify labels: node-role.kubernetes.io/control-plane"#
        );
        let create = node(Operation::Create, "nodes", "n1");
        let registering = json!({"metadata": {"name": "n1", "labels": {
            "kubernetes.io/os": "linux", "foo.node-restriction.kubernetes.io/x": "y"}}});
        assert_eq!(
            admit(&create, Some(&registering), None)
                .unwrap_err()
                .message,
            r#"nodes "n1" is forbidden: node "n1" is not allowed to set the following labels: foo.node-restriction.kubernetes.io/x"#
        );
    }

    #[test]
    fn mirror_pods_are_owned_by_the_node_and_reference_nothing() {
        let mut a = node(Operation::Create, "pods", "m");
        a.namespace = "default".into();
        let owner = json!({"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": "u", "controller": true});
        let pod = |owners: Value, spec: Value| {
            let mut spec = spec;
            spec["nodeName"] = json!("n1");
            json!({"metadata": {"name": "m", "annotations": {MIRROR_ANNOTATION: "h"}, "ownerReferences": owners},
                   "spec": spec})
        };
        let refused = |p: &Value| admit(&a, Some(p), None).unwrap_err().message;
        let prefix = r#"pods "m" is forbidden: node "n1" "#;
        for (owners, want) in [
            (
                json!([]),
                "can only create pods with an owner reference set to itself",
            ),
            (
                json!([owner.clone(), owner.clone()]),
                "can only create pods with a single owner reference set to itself",
            ),
            (
                json!([{"apiVersion": "v1", "kind": "Node", "name": "n2", "controller": true}]),
                "can only create pods with an owner reference set to itself",
            ),
            (
                json!([{"apiVersion": "v1", "kind": "Node", "name": "n1"}]),
                "can only create pods with a controller owner reference set to itself",
            ),
            (
                json!([{"apiVersion": "v1", "kind": "Node", "name": "n1", "controller": true, "blockOwnerDeletion": true}]),
                "must not set blockOwnerDeletion on an owner reference",
            ),
        ] {
            assert_eq!(refused(&pod(owners, json!({}))), format!("{prefix}{want}"));
        }
        for (spec, want) in [
            (
                json!({"serviceAccountName": "default"}),
                "can not create pods that reference a service account",
            ),
            (
                json!({"imagePullSecrets": [{"name": "pull"}]}),
                "can not create pods that reference secrets",
            ),
            (
                json!({"containers": [{"name": "c", "envFrom": [{"configMapRef": {"name": "cm"}}]}]}),
                "can not create pods that reference configmaps",
            ),
            (
                json!({"volumes": [{"name": "b", "projected": {"sources": [{"clusterTrustBundle": {"name": "b", "path": "p"}}]}}]}),
                "can not create pods that reference clustertrustbundles",
            ),
            (
                json!({"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "d"}}]}),
                "can not create pods that reference persistentvolumeclaims",
            ),
        ] {
            assert_eq!(
                refused(&pod(json!([owner.clone()]), spec)),
                format!("{prefix}{want}")
            );
        }
        let plain = pod(
            json!([owner]),
            json!({"containers": [{"name": "c", "image": "busybox"}]}),
        );
        assert!(admit(&a, Some(&plain), None).is_ok());
        let logs = node(Operation::Create, "pods", "m").with_subresource("binding");
        assert_eq!(
            admit(&logs, Some(&plain), None).unwrap_err().message,
            r#"pods "m" is forbidden: unexpected pod subresource "binding", only 'status' and 'eviction' are allowed"#
        );
        let nameless = Attributes::core(
            Operation::Create,
            "pods",
            "",
            "default",
            "m",
            UserInfo::new("system:node:", &["system:nodes"]),
        );
        assert_eq!(
            admit(&nameless, Some(&plain), None).unwrap_err().message,
            r#"pods "m" is forbidden: could not determine node from user "system:node:""#
        );
    }

    #[test]
    fn claims_csinodes_and_resource_slices() {
        let mut status =
            node(Operation::Update, "persistentvolumeclaims", "c").with_subresource("status");
        status.namespace = "default".into();
        let old = json!({"metadata": {"name": "c", "resourceVersion": "5"}, "spec": {"resources": {"requests": {"storage": "1Gi"}}},
                         "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}}});
        let resized = json!({"metadata": {"name": "c"}, "spec": {"resources": {"requests": {"storage": "1Gi"}}},
                             "status": {"phase": "Bound", "capacity": {"storage": "2Gi"},
                                        "conditions": [{"type": "FileSystemResizePending", "status": "True"}],
                                        "allocatedResourceStatuses": {"storage": "NodeResizeInProgress"}}});
        assert!(admit(&status, Some(&resized), Some(&old)).is_ok());
        let mut relabelled = resized.clone();
        relabelled["metadata"]["labels"] = json!({"a": "b"});
        relabelled["status"]["phase"] = json!("Lost");
        assert_eq!(
            admit(&status, Some(&relabelled), Some(&old))
                .unwrap_err()
                .message,
            r#"persistentvolumeclaims "c" is forbidden: node "n1" is not allowed to update fields other than status.quantity and status.conditions: metadata.labels, status.phase"#
        );
        let spec = node(Operation::Update, "persistentvolumeclaims", "c");
        assert_eq!(
            admit(&spec, Some(&old), Some(&old)).unwrap_err().message,
            r#"persistentvolumeclaims "c" is forbidden: may only update PVC status"#
        );

        let mut csi = node(Operation::Create, "csinodes", "");
        csi.group = "storage.k8s.io".into();
        csi.kind = "CSINode".into();
        assert!(admit(&csi, Some(&json!({"metadata": {"name": "n1"}})), None).is_ok());
        assert!(
            admit(&csi, Some(&json!({"metadata": {"name": "n2"}})), None)
                .unwrap_err()
                .message
                .ends_with("can only access CSINode with the same name as the requesting node")
        );
        let mut slice = node(Operation::Create, "resourceslices", "s");
        slice.group = "resource.k8s.io".into();
        let theirs = json!({"metadata": {"name": "s"}, "spec": {"nodeName": "n2"}});
        assert!(admit(&slice, Some(&theirs), None)
            .unwrap_err()
            .message
            .ends_with(
                "can only create ResourceSlice with the same NodeName as the requesting node"
            ));
        slice.operation = Operation::Delete;
        assert!(admit(&slice, None, Some(&theirs))
            .unwrap_err()
            .message
            .ends_with(
                "can only delete ResourceSlice with the same NodeName as the requesting node"
            ));
        let ours = json!({"metadata": {"name": "s"}, "spec": {"nodeName": "n1"}});
        assert!(admit(&slice, None, Some(&ours)).is_ok());
    }
}
