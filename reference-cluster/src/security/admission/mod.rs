//! Upstream's built-in admission plugins as pure functions over the request's attributes, the
//! object (mutable for mutating plugins) and the cluster state they consult (namespace,
//! LimitRanges, ResourceQuotas, PriorityClasses, …), which the API server looks up and hands in.
//!
//! Each plugin answers with an [`Outcome`] (warnings, audit annotations; mutations are made in
//! place) or a [`Rejection`] carrying upstream's code, reason and message. Upstream's order in
//! the chain: NamespaceLifecycle, LimitRanger, ServiceAccount, NodeRestriction, PodSecurity,
//! Priority, DefaultTolerationSeconds, (mutating webhooks), (validating plugins: LimitRanger,
//! ResourceQuota, …), (validating webhooks).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::UserInfo;

pub mod default_toleration_seconds;
pub mod limit_ranger;
pub mod namespace_lifecycle;
pub mod node_restriction;
pub mod pod_security;
pub mod priority;
pub mod resource_quota;
pub mod service_account;

/// The operation being admitted (AdmissionReview's `operation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
    Connect,
}

impl Operation {
    /// `CREATE`, `UPDATE`, `DELETE`, `CONNECT`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
        }
    }

    /// The operation of a Kubernetes verb (`patch` is an update, `deletecollection` a delete).
    pub fn from_verb(verb: &str) -> Option<Operation> {
        Some(match verb {
            "create" => Operation::Create,
            "update" | "patch" => Operation::Update,
            "delete" | "deletecollection" => Operation::Delete,
            "connect" | "get" => Operation::Connect,
            _ => return None,
        })
    }
}

/// What is being admitted (upstream `admission.Attributes` without the objects).
#[derive(Clone, Debug)]
pub struct Attributes {
    pub operation: Operation,
    pub group: String,
    pub version: String,
    /// Plural resource (`pods`).
    pub resource: String,
    pub subresource: String,
    pub kind: String,
    /// Empty for cluster-scoped objects.
    pub namespace: String,
    /// Empty on create with `generateName`.
    pub name: String,
    pub user: UserInfo,
    pub dry_run: bool,
}

impl Attributes {
    /// Attributes of a core (`v1`) resource, the common case in tests and built-ins.
    pub fn core(
        op: Operation,
        resource: &str,
        kind: &str,
        namespace: &str,
        name: &str,
        user: UserInfo,
    ) -> Self {
        Attributes {
            operation: op,
            group: String::new(),
            version: "v1".into(),
            resource: resource.into(),
            subresource: String::new(),
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
            user,
            dry_run: false,
        }
    }

    pub fn with_subresource(mut self, sub: &str) -> Self {
        self.subresource = sub.into();
        self
    }

    pub fn is(&self, group: &str, resource: &str) -> bool {
        self.group == group && self.resource == resource
    }

    /// `pods`, `deployments.apps`.
    pub fn qualified_resource(&self) -> String {
        if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }
}

/// A plugin's refusal, to be answered as a `Status`.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejection {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    /// `Status.details`, when upstream sets them.
    pub details: Option<Value>,
}

impl Rejection {
    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s
    }
}

/// What a plugin adds to an admitted request: `Warning` headers and audit annotations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub warnings: Vec<String>,
    pub audit_annotations: BTreeMap<String, String>,
}

impl Outcome {
    pub fn merge(&mut self, other: Outcome) {
        self.warnings.extend(other.warnings);
        self.audit_annotations.extend(other.audit_annotations);
    }
}

/// Upstream `admission.NewForbidden`: names the (new) object by its name, its `generateName`,
/// or `Unknown` (as for deletes, which have no new object), e.g. `pods "web" is forbidden: <err>`.
pub fn forbidden(attrs: &Attributes, obj: Option<&Value>, err: &str) -> Rejection {
    let meta = |k: &str| {
        obj.and_then(|o| o.pointer(&format!("/metadata/{k}")))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let name = meta("name")
        .or_else(|| meta("generateName"))
        .unwrap_or("Unknown");
    let mut details = json!({"name": name, "kind": attrs.resource});
    if !attrs.group.is_empty() {
        details["group"] = json!(attrs.group);
    }
    Rejection {
        code: 403,
        reason: "Forbidden",
        message: format!(
            "{} \"{name}\" is forbidden: {err}",
            attrs.qualified_resource()
        ),
        details: Some(details),
    }
}

/// Upstream `utilerrors.NewAggregate(errs).Error()`: one message alone, several in brackets.
pub(crate) fn aggregate(errors: &[String]) -> String {
    match errors {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

pub(crate) fn str_of<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

pub(crate) fn array_of<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_names_the_object_like_upstream() {
        let a = Attributes::core(
            Operation::Create,
            "pods",
            "Pod",
            "ns",
            "",
            UserInfo::anonymous(),
        );
        let pod = json!({"metadata": {"generateName": "web-"}});
        assert_eq!(
            forbidden(&a, Some(&pod), "no").message,
            r#"pods "web-" is forbidden: no"#
        );
        assert_eq!(
            forbidden(&a, None, "no").message,
            r#"pods "Unknown" is forbidden: no"#
        );
        let mut d = a.clone();
        d.group = "apps".into();
        d.resource = "deployments".into();
        let dep = json!({"metadata": {"name": "d"}});
        let r = forbidden(&d, Some(&dep), "x");
        assert_eq!(r.message, r#"deployments.apps "d" is forbidden: x"#);
        assert_eq!(
            r.to_status()["details"],
            json!({"name": "d", "kind": "deployments", "group": "apps"})
        );
        assert_eq!(aggregate(&["a".into(), "b".into()]), "[a, b]");
    }
}
