//! NodeRestriction: a node identity (`system:node:<name>` in `system:nodes`) may only modify
//! its own Node, its own Lease, mirror pods bound to itself and the status of pods bound to
//! itself, and may only evict or request tokens for pods bound to itself.

use serde_json::Value;

use super::{forbidden, str_of, Attributes, Operation, Rejection};
use crate::security::admission::service_account::MIRROR_ANNOTATION;

/// Label prefixes a node may not set on itself (they steer workloads to trusted nodes).
const RESTRICTED_LABEL_PREFIX: &str = "node-restriction.kubernetes.io/";

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
            if matches!(
                attrs.operation,
                Operation::Create | Operation::Update | Operation::Delete
            ) {
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
                if let Some(obj) = object {
                    let old_labels = old
                        .map(|o| crate::resources::json::string_map(o, "metadata.labels"))
                        .unwrap_or_default();
                    let bad: Vec<String> =
                        crate::resources::json::string_map(obj, "metadata.labels")
                            .into_iter()
                            .filter(|(k, v)| {
                                k.starts_with(RESTRICTED_LABEL_PREFIX)
                                    && old_labels.get(k) != Some(v)
                            })
                            .map(|(k, _)| k)
                            .collect();
                    if !bad.is_empty() {
                        return deny(format!(
                            "is not allowed to modify labels: {}",
                            bad.join(", ")
                        ));
                    }
                }
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
            Ok(())
        }
        ("", "pods", "eviction") => {
            if old.is_some_and(|p| str_of(p, "/spec/nodeName") != node) {
                return deny(format!(
                    "node \"{node}\" can only evict pods with spec.nodeName set to itself"
                ));
            }
            Ok(())
        }
        ("", "serviceaccounts", "token") => {
            // `old` is the pod the token is bound to, if any.
            match old {
                None => deny(format!(
                    "node \"{node}\" can only create tokens for pods bound to itself"
                )),
                Some(pod) if str_of(pod, "/spec/nodeName") != node => deny(format!(
                    "node \"{node}\" can only create tokens for pods bound to itself"
                )),
                _ => Ok(()),
            }
        }
        ("coordination.k8s.io", "leases", _) => {
            if attrs.namespace != "kube-node-lease"
                || attrs.name.is_empty() && attrs.operation != Operation::Create
            {
                return Ok(());
            }
            let requested = if attrs.name.is_empty() {
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
        let token = node(Operation::Create, "serviceaccounts", "default").with_subresource("token");
        let own = json!({"spec": {"nodeName": "n1"}});
        assert!(admit(&token, None, Some(&own)).is_ok());
        assert!(admit(&token, None, None).is_err());
    }
}
