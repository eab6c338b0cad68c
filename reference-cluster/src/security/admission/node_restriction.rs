//! NodeRestriction: a node identity (`system:node:<name>` in `system:nodes`) may only modify
//! its own Node (not its taints, nor labels outside the kubelet's set), its own Lease, mirror
//! pods bound to itself and the status of pods bound to itself, and may only evict or request
//! tokens for pods bound to itself. Messages are upstream 1.32's.

use serde_json::Value;

use super::{forbidden, str_of, Attributes, Operation, Rejection};
use crate::security::admission::service_account::MIRROR_ANNOTATION;

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

/// Admits a request from a node. `object`/`old` are the new and current objects (the current
/// pod for pod deletes, status updates and evictions; the pod a token is requested for).
pub fn admit(
    attrs: &Attributes,
    object: Option<&Value>,
    old: Option<&Value>,
) -> Result<(), Rejection> {
    let Some(node) = attrs.user.node_name() else {
        return Ok(());
    };
    let deny = |msg: String| Err(forbidden(attrs, object, &msg));
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
                Ok(())
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
                "unexpected operation {}, node \"{node}\" can only create and delete mirror pods",
                attrs.operation.as_str()
            )),
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
            let requested = if attrs.operation == Operation::Create {
                object
                    .map(|o| str_of(o, "/metadata/name"))
                    .unwrap_or_default()
            } else {
                attrs.name.as_str()
            };
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
        let mirror = json!({"metadata": {"name": "m", "annotations": {MIRROR_ANNOTATION: "h"}}, "spec": {"nodeName": "n1"}});
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
        .contains("unexpected operation UPDATE"));
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
}
