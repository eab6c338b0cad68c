//! NamespaceLifecycle: `default`, `kube-system` and `kube-public` cannot be deleted; nothing can
//! be created in a namespace that is terminating; nothing can be written into a namespace that
//! does not exist.

use serde_json::{json, Value};

use super::{forbidden, Attributes, Operation, Rejection};

/// Upstream's default immortal namespaces.
pub const IMMORTAL_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];

/// Access reviews are never refused here: answering "namespace missing" would leak whether it
/// exists.
fn is_access_review(attrs: &Attributes) -> bool {
    attrs.group == "authorization.k8s.io"
        && matches!(
            attrs.resource.as_str(),
            "localsubjectaccessreviews" | "subjectaccessreviews" | "selfsubjectaccessreviews"
        )
}

/// Admits a request. `namespace` is the object of the request's namespace, `None` when it does
/// not exist (only consulted for namespaced requests).
pub fn admit(
    attrs: &Attributes,
    object: Option<&Value>,
    namespace: Option<&Value>,
) -> Result<(), Rejection> {
    if attrs.group.is_empty() && attrs.resource == "namespaces" && attrs.subresource.is_empty() {
        if attrs.operation == Operation::Delete
            && IMMORTAL_NAMESPACES.contains(&attrs.name.as_str())
        {
            // Upstream names the namespace from the request here (apierrors.NewForbidden).
            return Err(Rejection {
                code: 403,
                reason: "Forbidden",
                message: format!(
                    "namespaces \"{}\" is forbidden: this namespace may not be deleted",
                    attrs.name
                ),
                details: Some(json!({"name": attrs.name, "kind": "namespaces"})),
            });
        }
        return Ok(());
    }
    if attrs.namespace.is_empty() || attrs.operation == Operation::Delete || is_access_review(attrs)
    {
        return Ok(());
    }
    let Some(ns) = namespace else {
        return Err(Rejection {
            code: 404,
            reason: "NotFound",
            message: format!("namespaces \"{}\" not found", attrs.namespace),
            details: Some(json!({"name": attrs.namespace, "kind": "namespaces"})),
        });
    };
    // Not `pointer`, which copies each segment: this runs on every namespaced write.
    let phase = ns.get("status").and_then(|s| s.get("phase"));
    let terminating = phase.and_then(Value::as_str) == Some("Terminating");
    if attrs.operation == Operation::Create && terminating {
        let mut r = forbidden(
            attrs,
            object,
            &format!(
                "unable to create new content in namespace {} because it is being terminated",
                attrs.namespace
            ),
        );
        if let Some(d) = r.details.as_mut() {
            d["causes"] = json!([{
                "reason": "NamespaceTerminating",
                "message": format!("namespace {} is being terminated", attrs.namespace),
                "field": "metadata.namespace",
            }]);
        }
        return Err(r);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::UserInfo;

    fn a(op: Operation, resource: &str, ns: &str, name: &str) -> Attributes {
        Attributes::core(op, resource, "", ns, name, UserInfo::new("u", &[]))
    }

    #[test]
    fn immortal_namespaces_cannot_be_deleted() {
        for ns in IMMORTAL_NAMESPACES {
            let err = admit(&a(Operation::Delete, "namespaces", "", ns), None, None).unwrap_err();
            assert_eq!(err.code, 403);
            assert_eq!(
                err.message,
                format!("namespaces \"{ns}\" is forbidden: this namespace may not be deleted")
            );
        }
        assert!(admit(&a(Operation::Delete, "namespaces", "", "dev"), None, None).is_ok());
    }

    #[test]
    fn terminating_namespaces_refuse_new_content() {
        let ns = json!({"metadata": {"name": "dev"}, "status": {"phase": "Terminating"}});
        let pod = json!({"metadata": {"name": "p"}});
        let err = admit(
            &a(Operation::Create, "pods", "dev", "p"),
            Some(&pod),
            Some(&ns),
        )
        .unwrap_err();
        assert_eq!(
            err.message,
            r#"pods "p" is forbidden: unable to create new content in namespace dev because it is being terminated"#
        );
        assert_eq!(
            err.details.unwrap()["causes"][0]["reason"],
            "NamespaceTerminating"
        );
        // Updates and deletes of existing content go on while the namespace drains.
        assert!(admit(
            &a(Operation::Update, "pods", "dev", "p"),
            Some(&pod),
            Some(&ns)
        )
        .is_ok());
        assert!(admit(&a(Operation::Delete, "pods", "dev", "p"), None, None).is_ok());
        let active = json!({"status": {"phase": "Active"}});
        assert!(admit(
            &a(Operation::Create, "pods", "dev", "p"),
            Some(&pod),
            Some(&active)
        )
        .is_ok());
    }

    #[test]
    fn missing_namespaces_are_not_found() {
        let err = admit(&a(Operation::Create, "configmaps", "nope", "c"), None, None).unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (404, r#"namespaces "nope" not found"#)
        );
        let mut review = a(Operation::Create, "localsubjectaccessreviews", "nope", "");
        review.group = "authorization.k8s.io".into();
        assert!(admit(&review, None, None).is_ok());
        assert!(admit(&a(Operation::Create, "nodes", "", "n"), None, None).is_ok());
    }
}
