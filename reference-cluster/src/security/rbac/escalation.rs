//! Privilege-escalation prevention (upstream `pkg/registry/rbac/*/policybased`): a user may only
//! write a Role/ClusterRole whose rules they already hold (unless granted `escalate` on it),
//! and may only bind a role whose rules they hold (unless granted `bind` on it).
//!
//! As upstream (`RoleEscalationAuthorized`, `BindingAuthorized`), the `escalate` and `bind`
//! verbs are asked of the whole authorizer chain the request path uses (privileged groups,
//! Node, RBAC, …), so whatever authorizer grants them counts; the "holds every rule" fallback
//! resolves rules through RBAC alone, as upstream's registry uses RBAC's rule resolver.

use serde_json::{json, Value};

use super::message::Forbidden;
use super::rules::{compact, covers, go_quote, go_quote_list, PolicyRule};
use super::{role_ref_rules, rules_for, Attributes, Binding, RbacObjects, GROUP};
use crate::security::authorizer::Authorize;
use crate::security::user::names;
use crate::security::UserInfo;

/// Why an escalation check refused a write: the text after `is forbidden: `.
#[derive(Clone, Debug, PartialEq, Eq)]
struct EscalationError {
    message: String,
}

/// Full authority (`*` on everything), which setting an `aggregationRule` requires.
fn full_authority() -> Vec<PolicyRule> {
    vec![
        PolicyRule::resource(&["*"], &["*"], &["*"]),
        PolicyRule::non_resource(&["*"], &["*"]),
    ]
}

/// Upstream `ConfirmNoEscalation`: does `user`, in `namespace`, hold every rule of `wanted`?
fn confirm_no_escalation(
    user: &UserInfo,
    namespace: &str,
    wanted: &[PolicyRule],
    objects: &dyn RbacObjects,
) -> Result<(), EscalationError> {
    let (owned, errors) = rules_for(user, namespace, objects);
    let (ok, missing) = covers(&owned, wanted);
    if ok {
        return Ok(());
    }
    let mut described: Vec<String> = compact(&missing)
        .iter()
        .map(|r| r.compact_string())
        .collect();
    described.sort();
    described.dedup();
    let mut message = format!(
        "user {} (groups={}) is attempting to grant RBAC permissions not currently held:\n{}",
        go_quote(&user.name),
        go_quote_list(&user.groups),
        described.join("\n")
    );
    if !errors.is_empty() {
        message.push_str(&format!("; resolution errors: [{}]", errors.join(" ")));
    }
    Err(EscalationError { message })
}

/// Upstream `IsOnlyMutatingGCFields`: updates that only touch owner references or finalizers
/// are allowed so garbage collection never stalls on an escalation check.
fn only_gc_fields_changed(new: &Value, old: Option<&Value>) -> bool {
    let Some(old) = old else {
        return false;
    };
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            for k in [
                "ownerReferences",
                "finalizers",
                "resourceVersion",
                "managedFields",
                "generation",
            ] {
                meta.remove(k);
            }
        }
        v
    };
    crate::resources::json::semantic_eq(&strip(new), &strip(old))
}

fn forbidden_for(resource: &str, name: &str, message: String) -> Forbidden {
    Forbidden {
        message: format!(
            "{resource}.{GROUP} {} is forbidden: {message}",
            go_quote(name)
        ),
        details: json!({"name": name, "group": GROUP, "kind": resource}),
    }
}

fn decode_rules(obj: &Value) -> Vec<PolicyRule> {
    obj.get("rules")
        .cloned()
        .and_then(|r| serde_json::from_value(r).ok())
        .unwrap_or_default()
}

/// Checks a create (`old == None`) or update of a Role (`namespace` set) or ClusterRole
/// (`namespace == ""`). `request_name` is the name in the request path (empty on create), as
/// upstream authorizes `escalate` against it. `authz` is the request path's authorizer chain;
/// `objects` the RBAC objects whose rules the requester must hold otherwise.
pub fn check_role_escalation(
    authz: &dyn Authorize,
    user: &UserInfo,
    namespace: &str,
    request_name: &str,
    role: &Value,
    old: Option<&Value>,
    objects: &dyn RbacObjects,
) -> Result<(), Forbidden> {
    let resource = if namespace.is_empty() {
        "clusterroles"
    } else {
        "roles"
    };
    if user.in_group(names::SYSTEM_MASTERS) || only_gc_fields_changed(role, old) {
        return Ok(());
    }
    let mut escalate = Attributes::resource(
        user.clone(),
        "escalate",
        GROUP,
        resource,
        namespace,
        request_name,
    );
    escalate.api_version = "*".into();
    if authz.decide(&escalate, None).allowed {
        return Ok(());
    }
    let name = role
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    confirm_no_escalation(user, namespace, &decode_rules(role), objects)
        .map_err(|e| forbidden_for(resource, name, e.message))?;
    let has_aggregation = role.get("aggregationRule").is_some_and(|a| !a.is_null());
    if namespace.is_empty() && has_aggregation {
        confirm_no_escalation(user, namespace, &full_authority(), objects).map_err(|_| {
            forbidden_for(
                resource,
                name,
                "must have cluster-admin privileges to use the aggregationRule".into(),
            )
        })?;
    }
    Ok(())
}

/// Checks a create or update of a RoleBinding (`metadata.namespace` set) or
/// ClusterRoleBinding: allowed with `bind` on the referenced role, or when the user holds
/// every rule of it. `bind` is asked of `authz`, the request path's authorizer chain, in the
/// binding's namespace (empty for a ClusterRoleBinding), as upstream's `BindingAuthorized`.
pub fn check_binding_escalation(
    authz: &dyn Authorize,
    user: &UserInfo,
    binding: &Value,
    old: Option<&Value>,
    objects: &dyn RbacObjects,
) -> Result<(), Forbidden> {
    if user.in_group(names::SYSTEM_MASTERS) || only_gc_fields_changed(binding, old) {
        return Ok(());
    }
    let decoded = Binding::from_json(binding).map_err(|e| Forbidden {
        message: format!("forbidden: {e}"),
        details: json!({}),
    })?;
    let resource = if decoded.namespace.is_empty() {
        "clusterrolebindings"
    } else {
        "rolebindings"
    };
    // Upstream asks only for the two role kinds; validation refuses any other.
    let role_resource = match decoded.role_ref.kind.as_str() {
        "ClusterRole" => Some("clusterroles"),
        "Role" => Some("roles"),
        _ => None,
    };
    let bind = role_resource.map(|role_resource| {
        Attributes::resource(
            user.clone(),
            "bind",
            &decoded.role_ref.api_group,
            role_resource,
            &decoded.namespace,
            &decoded.role_ref.name,
        )
    });
    if bind.is_some_and(|bind| authz.decide(&bind, None).allowed) {
        return Ok(());
    }
    let role = role_ref_rules(objects, &decoded.role_ref, &decoded.namespace)
        .map_err(|e| forbidden_for(resource, &decoded.name, e))?;
    confirm_no_escalation(user, &decoded.namespace, &role.rules, objects)
        .map_err(|e| forbidden_for(resource, &decoded.name, e.message))
}
