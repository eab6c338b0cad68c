//! The 403 answered for a denied request, in upstream's exact shape
//! (`responsewriters.Forbidden` + `apierrors.NewForbidden`).

use serde_json::{json, Value};

use super::rules::go_quote;
use super::Attributes;

/// A denial ready to become a `Status`: code 403, reason `Forbidden`.
#[derive(Clone, Debug, PartialEq)]
pub struct Forbidden {
    pub message: String,
    /// `Status.details`: `{name?, group?, kind}` (kind is the resource, as upstream).
    pub details: Value,
}

impl Forbidden {
    pub fn to_status(&self) -> Value {
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": "Forbidden",
            "details": self.details,
            "code": 403,
        })
    }
}

/// Upstream `forbiddenMessage`.
fn user_message(attrs: &Attributes) -> String {
    let user = go_quote(&attrs.user.name);
    if !attrs.resource_request {
        return format!(
            "User {user} cannot {} path {}",
            attrs.verb,
            go_quote(&attrs.path)
        );
    }
    let mut resource = attrs.resource.clone();
    if !attrs.subresource.is_empty() {
        resource = format!("{resource}/{}", attrs.subresource);
    }
    if !attrs.namespace.is_empty() {
        format!(
            "User {user} cannot {} resource {} in API group {} in the namespace {}",
            attrs.verb,
            go_quote(&resource),
            go_quote(&attrs.api_group),
            go_quote(&attrs.namespace)
        )
    } else {
        format!(
            "User {user} cannot {} resource {} in API group {} at the cluster scope",
            attrs.verb,
            go_quote(&resource),
            go_quote(&attrs.api_group)
        )
    }
}

/// The Forbidden error for a denied request; `reason` is the authorizer's (appended after a
/// colon when not empty), e.g. `pods is forbidden: User "x" cannot list resource "pods" in API
/// group "" in the namespace "y"`.
pub fn forbidden(attrs: &Attributes, reason: &str) -> Forbidden {
    let mut err = user_message(attrs);
    if !reason.is_empty() {
        err = format!("{err}: {reason}");
    }
    // The qualified resource is the resource without its subresource, as upstream.
    let (group, resource) = if attrs.resource_request {
        (attrs.api_group.as_str(), attrs.resource.as_str())
    } else {
        ("", "")
    };
    let qualified = if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    };
    let message = if qualified.is_empty() {
        format!("forbidden: {err}")
    } else if attrs.name.is_empty() {
        format!("{qualified} is forbidden: {err}")
    } else {
        format!("{qualified} {} is forbidden: {err}", go_quote(&attrs.name))
    };
    let mut details = json!({});
    if !attrs.name.is_empty() {
        details["name"] = json!(attrs.name);
    }
    if !group.is_empty() {
        details["group"] = json!(group);
    }
    if !resource.is_empty() {
        details["kind"] = json!(resource);
    }
    Forbidden { message, details }
}
