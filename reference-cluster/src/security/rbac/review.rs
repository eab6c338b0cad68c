//! `authorization.k8s.io/v1` reviews as request → response builders: SubjectAccessReview,
//! SelfSubjectAccessReview, LocalSubjectAccessReview and SelfSubjectRulesReview (what `kubectl
//! auth can-i` and `kubectl auth can-i --list` send). Each is answered by the authorizer chain
//! the API server judges requests with ([`Authorize`]), so with `Node,RBAC` a review about a
//! node identity gets the Node authorizer's answer first, as upstream's reviews do.

use serde_json::{json, Map, Value};

use super::Attributes;
use crate::security::authorizer::{aggregate, Authorize};
use crate::security::UserInfo;

/// A review that cannot be answered: 400 BadRequest or 422 Invalid, as upstream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReviewError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
}

const API_VERSION: &str = "authorization.k8s.io/v1";

fn bad_request(message: impl Into<String>) -> ReviewError {
    ReviewError {
        code: 400,
        reason: "BadRequest",
        message: message.into(),
    }
}

fn invalid(kind: &str, obj: &Value, errors: Vec<String>) -> ReviewError {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let body = if errors.len() == 1 {
        errors[0].clone()
    } else {
        format!("[{}]", errors.join(", "))
    };
    ReviewError {
        code: 422,
        reason: "Invalid",
        message: format!("{kind}.authorization.k8s.io \"{name}\" is invalid: {body}"),
    }
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn spec_of(review: &Value) -> &Value {
    static EMPTY: Value = Value::Null;
    review.get("spec").unwrap_or(&EMPTY)
}

/// Which of resourceAttributes / nonResourceAttributes are present, validated as upstream.
fn validate_attributes(spec: &Value, errors: &mut Vec<String>) {
    let has_res = spec.get("resourceAttributes").is_some_and(|v| !v.is_null());
    let has_non = spec
        .get("nonResourceAttributes")
        .is_some_and(|v| !v.is_null());
    if has_res && has_non {
        errors.push(format!(
            "spec.nonResourceAttributes: Invalid value: {}: cannot be specified in combination with resourceAttributes",
            spec["nonResourceAttributes"]
        ));
    }
    if !has_res && !has_non {
        errors.push(
            "spec.resourceAttributes: Invalid value: null: exactly one of nonResourceAttributes or resourceAttributes must be specified"
                .to_string(),
        );
    }
}

/// The authorizer attributes a review's spec asks about, for `user`.
fn attributes_of(spec: &Value, user: UserInfo) -> Attributes {
    if let Some(ra) = spec.get("resourceAttributes").filter(|v| v.is_object()) {
        Attributes {
            user,
            verb: s(ra, "verb").into(),
            api_group: s(ra, "group").into(),
            api_version: s(ra, "version").into(),
            resource: s(ra, "resource").into(),
            subresource: s(ra, "subresource").into(),
            namespace: s(ra, "namespace").into(),
            name: s(ra, "name").into(),
            path: String::new(),
            resource_request: true,
        }
    } else {
        let nra = spec.get("nonResourceAttributes").unwrap_or(&Value::Null);
        Attributes::non_resource(user, s(nra, "verb"), s(nra, "path"))
    }
}

fn respond(kind: &str, review: &Value, status: Value) -> Value {
    let mut metadata = review
        .get("metadata")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    metadata
        .entry("creationTimestamp".to_string())
        .or_insert(Value::Null);
    json!({
        "kind": kind,
        "apiVersion": API_VERSION,
        "metadata": Value::Object(metadata),
        "spec": review.get("spec").cloned().unwrap_or_else(|| json!({})),
        "status": status,
    })
}

/// `resourceAttributes.fieldSelector` as a selector string the authorizers read (1.32's
/// AuthorizeWithSelectors): `rawSelector`, or the requirements `In` one value (`key=value`) and
/// `NotIn` one value (`key!=value`). Requirements a field selector cannot express are left
/// out, which can only narrow what the review finds allowed, as upstream's parse errors do.
fn field_selector_of(spec: &Value) -> Option<String> {
    let fs = spec.pointer("/resourceAttributes/fieldSelector")?;
    let raw = s(fs, "rawSelector");
    if !raw.is_empty() {
        return Some(raw.to_string());
    }
    let parts: Vec<String> = fs
        .get("requirements")
        .and_then(Value::as_array)?
        .iter()
        .filter_map(|req| {
            let values = string_list(req.get("values"));
            let key = s(req, "key");
            match (s(req, "operator"), values.as_slice()) {
                ("In", [v]) if !key.is_empty() => Some(format!("{key}={v}")),
                ("NotIn", [v]) if !key.is_empty() => Some(format!("{key}!={v}")),
                _ => None,
            }
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join(","))
}

fn access_status(attrs: &Attributes, spec: &Value, authz: &dyn Authorize) -> Value {
    let decision = authz.decide(attrs, field_selector_of(spec).as_deref());
    let mut status = Map::new();
    status.insert("allowed".into(), json!(decision.allowed));
    if !decision.reason.is_empty() {
        status.insert("reason".into(), json!(decision.reason));
    }
    Value::Object(status)
}

/// `SubjectAccessReview`: may the user/groups in the spec do what it describes?
pub fn subject_access_review(review: &Value, authz: &dyn Authorize) -> Result<Value, ReviewError> {
    let spec = spec_of(review);
    let mut errors = Vec::new();
    validate_attributes(spec, &mut errors);
    let user = UserInfo {
        name: s(spec, "user").to_string(),
        uid: s(spec, "uid").to_string(),
        groups: string_list(spec.get("groups")),
        extra: spec
            .get("extra")
            .cloned()
            .and_then(|e| serde_json::from_value(e).ok())
            .unwrap_or_default(),
    };
    if user.name.is_empty() && user.groups.is_empty() {
        errors.push(
            "spec.user: Invalid value: \"\": at least one of user or group must be specified"
                .to_string(),
        );
    }
    if !errors.is_empty() {
        return Err(invalid("SubjectAccessReview", review, errors));
    }
    let attrs = attributes_of(spec, user);
    Ok(respond(
        "SubjectAccessReview",
        review,
        access_status(&attrs, spec, authz),
    ))
}

/// `SelfSubjectAccessReview`: may the requesting `user` do what the spec describes?
pub fn self_subject_access_review(
    review: &Value,
    user: &UserInfo,
    authz: &dyn Authorize,
) -> Result<Value, ReviewError> {
    let spec = spec_of(review);
    let mut errors = Vec::new();
    validate_attributes(spec, &mut errors);
    if !errors.is_empty() {
        return Err(invalid("SelfSubjectAccessReview", review, errors));
    }
    let attrs = attributes_of(spec, user.clone());
    Ok(respond(
        "SelfSubjectAccessReview",
        review,
        access_status(&attrs, spec, authz),
    ))
}

/// `LocalSubjectAccessReview` posted to `namespaces/<namespace>/localsubjectaccessreviews`.
pub fn local_subject_access_review(
    review: &Value,
    namespace: &str,
    authz: &dyn Authorize,
) -> Result<Value, ReviewError> {
    if namespace.is_empty() {
        return Err(bad_request("namespace is required on this type: "));
    }
    let meta_ns = review
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or(namespace);
    if meta_ns != namespace {
        return Err(bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let spec = spec_of(review);
    let mut errors = Vec::new();
    validate_attributes(spec, &mut errors);
    if let Some(ra) = spec.get("resourceAttributes").filter(|v| v.is_object()) {
        if s(ra, "namespace") != namespace {
            errors.push(format!(
                "spec.resourceAttributes.namespace: Invalid value: \"{}\": must match metadata.namespace",
                s(ra, "namespace")
            ));
        }
    }
    if spec
        .get("nonResourceAttributes")
        .is_some_and(|v| !v.is_null())
    {
        errors.push(format!(
            "spec.nonResourceAttributes: Invalid value: {}: disallowed on this kind of request",
            spec["nonResourceAttributes"]
        ));
    }
    let user_missing = s(spec, "user").is_empty() && string_list(spec.get("groups")).is_empty();
    if user_missing {
        errors.push(
            "spec.user: Invalid value: \"\": at least one of user or group must be specified"
                .to_string(),
        );
    }
    if !errors.is_empty() {
        return Err(invalid("LocalSubjectAccessReview", review, errors));
    }
    let mut with_ns = review.clone();
    if let Some(m) = with_ns.get_mut("metadata").and_then(Value::as_object_mut) {
        m.insert("namespace".into(), json!(namespace));
    }
    let answer = subject_access_review(&with_ns, authz)?;
    let mut answer = answer;
    answer["kind"] = json!("LocalSubjectAccessReview");
    Ok(answer)
}

/// `SelfSubjectRulesReview`: every rule the requesting `user` holds in `spec.namespace`.
pub fn self_subject_rules_review(
    review: &Value,
    user: &UserInfo,
    authz: &dyn Authorize,
) -> Result<Value, ReviewError> {
    let namespace = s(spec_of(review), "namespace");
    if namespace.is_empty() {
        return Err(bad_request("no namespace on request"));
    }
    let held = authz.rules_for(user, namespace);
    let rules = held.rules;
    let mut resource_rules = Vec::new();
    let mut non_resource_rules = Vec::new();
    for rule in &rules {
        if !rule.resources.is_empty() {
            let mut r = json!({"verbs": rule.verbs});
            if !rule.api_groups.is_empty() {
                r["apiGroups"] = json!(rule.api_groups);
            }
            r["resources"] = json!(rule.resources);
            if !rule.resource_names.is_empty() {
                r["resourceNames"] = json!(rule.resource_names);
            }
            resource_rules.push(r);
        }
        if !rule.non_resource_urls.is_empty() {
            non_resource_rules.push(json!({
                "verbs": rule.verbs,
                "nonResourceURLs": rule.non_resource_urls,
            }));
        }
    }
    let mut status = json!({
        "resourceRules": resource_rules,
        "nonResourceRules": non_resource_rules,
        "incomplete": held.incomplete,
    });
    if !held.errors.is_empty() {
        status["evaluationError"] = json!(aggregate(&held.errors));
    }
    Ok(respond("SelfSubjectRulesReview", review, status))
}

fn string_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}
