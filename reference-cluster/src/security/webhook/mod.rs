//! Admission webhooks (`admissionregistration.k8s.io/v1`): which webhooks a request goes to
//! (rules, scope, namespace and object selectors), the `admission.k8s.io/v1` AdmissionReview
//! they receive, and what their answers do (deny with upstream's message, JSON patches for
//! mutating webhooks, warnings, audit annotations), including `failurePolicy`,
//! `timeoutSeconds`, dry-run handling and `reinvocationPolicy: IfNeeded`.
//!
//! `matchConditions` (CEL) are not evaluated.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Map, Value};

use super::admission::{Attributes, Operation, Outcome, Rejection};
use crate::resources::labels::LabelSelector;

pub mod client;

pub use client::CallError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailurePolicy {
    Fail,
    Ignore,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub operations: Vec<String>,
    pub api_groups: Vec<String>,
    pub api_versions: Vec<String>,
    pub resources: Vec<String>,
    /// `*`, `Cluster` or `Namespaced`.
    pub scope: String,
}

/// Where the webhook is served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Url(String),
    Service {
        namespace: String,
        name: String,
        path: String,
        port: u16,
    },
}

/// One webhook of a Mutating- or ValidatingWebhookConfiguration.
#[derive(Clone, Debug)]
pub struct Webhook {
    pub configuration: String,
    pub name: String,
    pub mutating: bool,
    pub endpoint: Endpoint,
    pub ca_bundle: Vec<u8>,
    pub rules: Vec<Rule>,
    pub failure_policy: FailurePolicy,
    pub namespace_selector: LabelSelector,
    pub object_selector: LabelSelector,
    pub side_effects: String,
    pub timeout: Duration,
    pub reinvoke_if_needed: bool,
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// An absent selector selects everything (upstream defaults it to `{}`).
fn selector(v: Option<&Value>) -> Result<LabelSelector, String> {
    match v {
        None | Some(Value::Null) => Ok(LabelSelector::everything()),
        Some(s) => LabelSelector::from_json(s),
    }
}

impl Webhook {
    /// The webhooks of a configuration object, in order. Its kind says whether they mutate.
    pub fn from_configuration(config: &Value) -> Result<Vec<Webhook>, String> {
        let mutating = match config.get("kind").and_then(Value::as_str) {
            Some("MutatingWebhookConfiguration") => true,
            Some("ValidatingWebhookConfiguration") => false,
            other => return Err(format!("not a webhook configuration: {other:?}")),
        };
        let configuration = config
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let mut out = Vec::new();
        for (i, w) in config
            .get("webhooks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let path = format!("webhooks[{i}]");
            let name = w
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let cc = w.get("clientConfig").unwrap_or(&Value::Null);
            let endpoint = if let Some(url) = cc.get("url").and_then(Value::as_str) {
                Endpoint::Url(url.to_string())
            } else if let Some(svc) = cc.get("service").filter(|s| s.is_object()) {
                Endpoint::Service {
                    namespace: svc
                        .get("namespace")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    name: svc
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    path: svc
                        .get("path")
                        .and_then(Value::as_str)
                        .unwrap_or("/")
                        .to_string(),
                    port: svc
                        .get("port")
                        .and_then(Value::as_u64)
                        .and_then(|p| u16::try_from(p).ok())
                        .unwrap_or(443),
                }
            } else {
                return Err(format!("{path}.clientConfig: Required value: exactly one of url or service is required"));
            };
            let ca_bundle = match cc.get("caBundle").and_then(Value::as_str) {
                Some(b) => STANDARD
                    .decode(b)
                    .map_err(|_| format!("{path}.clientConfig.caBundle: must be base64"))?,
                None => Vec::new(),
            };
            let rules = w
                .get("rules")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|r| Rule {
                    operations: strings(r.get("operations")),
                    api_groups: strings(r.get("apiGroups")),
                    api_versions: strings(r.get("apiVersions")),
                    resources: strings(r.get("resources")),
                    scope: r
                        .get("scope")
                        .and_then(Value::as_str)
                        .unwrap_or("*")
                        .to_string(),
                })
                .collect();
            let failure_policy = match w.get("failurePolicy").and_then(Value::as_str) {
                Some("Ignore") => FailurePolicy::Ignore,
                _ => FailurePolicy::Fail,
            };
            let timeout = w
                .get("timeoutSeconds")
                .and_then(Value::as_u64)
                .unwrap_or(10)
                .clamp(1, 30);
            out.push(Webhook {
                configuration: configuration.clone(),
                name,
                mutating,
                endpoint,
                ca_bundle,
                rules,
                failure_policy,
                namespace_selector: selector(w.get("namespaceSelector"))
                    .map_err(|e| format!("{path}.namespaceSelector: {e}"))?,
                object_selector: selector(w.get("objectSelector"))
                    .map_err(|e| format!("{path}.objectSelector: {e}"))?,
                side_effects: w
                    .get("sideEffects")
                    .and_then(Value::as_str)
                    .unwrap_or("Unknown")
                    .to_string(),
                timeout: Duration::from_secs(timeout),
                reinvoke_if_needed: w.get("reinvocationPolicy").and_then(Value::as_str)
                    == Some("IfNeeded"),
            });
        }
        Ok(out)
    }

    /// Upstream's rule matcher: operation, group, version, `resource[/subresource]` (with `*`
    /// and `*/*` forms) and scope.
    fn rules_match(&self, attrs: &Attributes) -> bool {
        let op = attrs.operation.as_str();
        self.rules.iter().any(|r| {
            let any = |list: &[String], v: &str| list.iter().any(|x| x == "*" || x == v);
            let resource_ok = r.resources.iter().any(|res| {
                let (res, sub) = res.split_once('/').unwrap_or((res.as_str(), ""));
                (res == "*" || res == attrs.resource) && (sub == "*" || sub == attrs.subresource)
            });
            let is_namespace = attrs.resource == "namespaces"
                && attrs.group.is_empty()
                && attrs.subresource.is_empty();
            let scope_ok = match r.scope.as_str() {
                "Cluster" => attrs.namespace.is_empty() || is_namespace,
                "Namespaced" => !attrs.namespace.is_empty() && !is_namespace,
                _ => true,
            };
            any(&r.operations, op)
                && any(&r.api_groups, &attrs.group)
                && any(&r.api_versions, &attrs.version)
                && resource_ok
                && scope_ok
        })
    }

    /// Whether this request goes to this webhook. `namespace_labels` are the labels of the
    /// request's namespace (of the Namespace object itself for namespace requests).
    pub fn matches(
        &self,
        attrs: &Attributes,
        object: Option<&Value>,
        old_object: Option<&Value>,
        namespace_labels: &BTreeMap<String, String>,
    ) -> bool {
        if !self.rules_match(attrs) {
            return false;
        }
        // Cluster-scoped requests other than namespaces are never exempted by namespace.
        let namespaced = !attrs.namespace.is_empty()
            || (attrs.group.is_empty() && attrs.resource == "namespaces");
        if namespaced && !self.namespace_selector.matches(namespace_labels) {
            return false;
        }
        if !self.object_selector.is_everything() {
            let m = |o: Option<&Value>| o.is_some_and(|o| self.object_selector.matches_object(o));
            if !m(object) && !m(old_object) {
                return false;
            }
        }
        true
    }

    fn supports_dry_run(&self) -> bool {
        matches!(self.side_effects.as_str(), "None" | "NoneOnDryRun")
    }
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "version": version, "kind": kind})
}

/// The `admission.k8s.io/v1` AdmissionReview sent for a request.
pub fn review_request(
    uid: &str,
    attrs: &Attributes,
    object: Option<&Value>,
    old_object: Option<&Value>,
    options: Option<&Value>,
) -> Value {
    let kind = gvk(&attrs.group, &attrs.version, &attrs.kind);
    let resource =
        json!({"group": attrs.group, "version": attrs.version, "resource": attrs.resource});
    let mut req = Map::new();
    req.insert("uid".into(), json!(uid));
    req.insert("kind".into(), kind.clone());
    req.insert("resource".into(), resource.clone());
    if !attrs.subresource.is_empty() {
        req.insert("subResource".into(), json!(attrs.subresource));
    }
    req.insert("requestKind".into(), kind);
    req.insert("requestResource".into(), resource);
    if !attrs.subresource.is_empty() {
        req.insert("requestSubResource".into(), json!(attrs.subresource));
    }
    if !attrs.name.is_empty() {
        req.insert("name".into(), json!(attrs.name));
    }
    if !attrs.namespace.is_empty() {
        req.insert("namespace".into(), json!(attrs.namespace));
    }
    req.insert("operation".into(), json!(attrs.operation.as_str()));
    req.insert("userInfo".into(), attrs.user.to_json());
    req.insert("object".into(), object.cloned().unwrap_or(Value::Null));
    req.insert(
        "oldObject".into(),
        old_object.cloned().unwrap_or(Value::Null),
    );
    req.insert("dryRun".into(), json!(attrs.dry_run));
    let default_options = match attrs.operation {
        Operation::Create => Some("CreateOptions"),
        Operation::Update => Some("UpdateOptions"),
        Operation::Delete => Some("DeleteOptions"),
        Operation::Connect => None,
    };
    let options = options
        .cloned()
        .or_else(|| default_options.map(|k| json!({"kind": k, "apiVersion": "meta.k8s.io/v1"})));
    req.insert("options".into(), options.unwrap_or(Value::Null));
    json!({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": Value::Object(req)})
}

/// What a webhook answered.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    pub allowed: bool,
    /// The Forbidden/Invalid/… status to answer with when not allowed.
    pub rejection: Option<Rejection>,
    /// Decoded JSONPatch operations (mutating webhooks only).
    pub patch: Option<json_patch::Patch>,
    pub warnings: Vec<String>,
    pub audit_annotations: BTreeMap<String, String>,
}

fn status_reason(reason: &str) -> &'static str {
    match reason {
        "Forbidden" => "Forbidden",
        "Invalid" => "Invalid",
        "BadRequest" => "BadRequest",
        "NotFound" => "NotFound",
        "Conflict" => "Conflict",
        "AlreadyExists" => "AlreadyExists",
        "Unauthorized" => "Unauthorized",
        "TooManyRequests" => "TooManyRequests",
        "InternalError" => "InternalError",
        "ServiceUnavailable" => "ServiceUnavailable",
        "Timeout" => "Timeout",
        _ => "",
    }
}

/// Upstream `webhookerrors.ToStatusErr`.
fn denial(hook: &str, status: Option<&Value>) -> Rejection {
    let status = status.cloned().unwrap_or(Value::Null);
    let code = status.get("code").and_then(Value::as_u64).unwrap_or(0);
    let code = if !(400..=599).contains(&code) {
        400
    } else {
        code as u16
    };
    let message = status
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let reason = status
        .get("reason")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let denied = format!("admission webhook \"{hook}\" denied the request");
    let message = if !message.is_empty() {
        format!("{denied}: {message}")
    } else if !reason.is_empty() {
        format!("{denied}: {reason}")
    } else {
        format!("{denied} without explanation")
    };
    Rejection {
        code,
        reason: status_reason(reason),
        message,
        details: status.get("details").cloned(),
    }
}

/// Decodes and checks a webhook's AdmissionReview answer to the request `uid`.
pub fn interpret_response(hook: &Webhook, uid: &str, body: &[u8]) -> Result<Answer, String> {
    let review: Value = serde_json::from_slice(body)
        .map_err(|e| format!("received invalid webhook response: {e}"))?;
    if review.get("apiVersion").and_then(Value::as_str) != Some("admission.k8s.io/v1")
        || review.get("kind").and_then(Value::as_str) != Some("AdmissionReview")
    {
        return Err("received invalid webhook response: expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview".into());
    }
    let response = review
        .get("response")
        .filter(|r| r.is_object())
        .ok_or("webhook response was absent")?;
    let got_uid = response
        .get("uid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if got_uid != uid {
        return Err(format!(
            "expected response.uid=\"{uid}\", got \"{got_uid}\""
        ));
    }
    let allowed = response
        .get("allowed")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let warnings = strings(response.get("warnings"));
    let audit_annotations = response
        .get("auditAnnotations")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| {
                    v.as_str()
                        .map(|v| (format!("{}/{k}", hook.name), v.to_string()))
                })
                .collect()
        })
        .unwrap_or_default();
    let patch = match response.get("patch").and_then(Value::as_str) {
        Some(p) if allowed => {
            if !hook.mutating {
                return Err("validating webhooks may not return patches".into());
            }
            let pt = response
                .get("patchType")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if pt != "JSONPatch" {
                return Err(format!("unsupported patch type {pt:?}"));
            }
            let raw = STANDARD
                .decode(p)
                .map_err(|e| format!("invalid patch: {e}"))?;
            Some(
                serde_json::from_slice::<json_patch::Patch>(&raw)
                    .map_err(|e| format!("invalid patch: {e}"))?,
            )
        }
        _ => None,
    };
    Ok(Answer {
        allowed,
        rejection: (!allowed).then(|| denial(&hook.name, response.get("status"))),
        patch,
        warnings,
        audit_annotations,
    })
}

/// Turns a Service reference into a URL and the TLS name to expect. The API server implements
/// it (resolving the Service to an endpoint it can reach).
pub trait ServiceResolver: Sync {
    /// `(https://address:port, "<service>.<namespace>.svc")`, or `None` if unreachable.
    fn resolve(&self, namespace: &str, name: &str, port: u16) -> Option<(String, String)>;
}

/// A resolver for configurations that only use URLs.
pub struct NoServices;

impl ServiceResolver for NoServices {
    fn resolve(&self, _: &str, _: &str, _: u16) -> Option<(String, String)> {
        None
    }
}

fn with_timeout_query(url: &str, timeout: Duration) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}timeout={}s", timeout.as_secs())
}

/// Sends one review to `hook` and decodes the answer.
pub async fn call(
    hook: &Webhook,
    review: &Value,
    services: &dyn ServiceResolver,
) -> Result<Answer, String> {
    let uid = review
        .pointer("/request/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let (url, server_name) = match &hook.endpoint {
        Endpoint::Url(u) => (u.clone(), None),
        Endpoint::Service {
            namespace,
            name,
            path,
            port,
        } => {
            let (base, sni) = services
                .resolve(namespace, name, *port)
                .ok_or_else(|| format!("failed to call webhook: service \"{namespace}/{name}\" has no reachable endpoints"))?;
            (format!("{}{}", base.trim_end_matches('/'), path), Some(sni))
        }
    };
    let body = serde_json::to_vec(review).map_err(|e| e.to_string())?;
    let url = with_timeout_query(&url, hook.timeout);
    let bytes = client::post(
        &url,
        &hook.ca_bundle,
        server_name.as_deref(),
        body,
        hook.timeout,
    )
    .await
    .map_err(|e| e.0)?;
    interpret_response(hook, &uid, &bytes)
}

/// The request data the dispatchers need.
pub struct Request<'a> {
    pub attrs: &'a Attributes,
    pub old_object: Option<&'a Value>,
    pub namespace_labels: &'a BTreeMap<String, String>,
    pub options: Option<&'a Value>,
}

fn call_failed(hook: &Webhook, err: &str) -> Rejection {
    Rejection {
        code: 500,
        reason: "InternalError",
        message: format!(
            "Internal error occurred: failed calling webhook \"{}\": {err}",
            hook.name
        ),
        details: None,
    }
}

fn dry_run_unsupported(hook: &Webhook) -> Rejection {
    Rejection {
        code: 400,
        reason: "BadRequest",
        message: format!(
            "admission webhook \"{}\" does not support dry run",
            hook.name
        ),
        details: None,
    }
}

/// Runs one webhook on `object`: `Ok(None)` when it does not apply or failed open.
async fn invoke(
    hook: &Webhook,
    req: &Request<'_>,
    object: Option<&Value>,
    services: &dyn ServiceResolver,
) -> Result<Option<Answer>, Rejection> {
    if !hook.matches(req.attrs, object, req.old_object, req.namespace_labels) {
        return Ok(None);
    }
    if req.attrs.dry_run && !hook.supports_dry_run() {
        return Err(dry_run_unsupported(hook));
    }
    let uid = uuid::Uuid::new_v4().to_string();
    let review = review_request(&uid, req.attrs, object, req.old_object, req.options);
    match call(hook, &review, services).await {
        Ok(answer) => match &answer.rejection {
            Some(r) => Err(r.clone()),
            None => Ok(Some(answer)),
        },
        Err(e) => match hook.failure_policy {
            FailurePolicy::Fail => Err(call_failed(hook, &e)),
            FailurePolicy::Ignore => Ok(None),
        },
    }
}

/// Runs the mutating webhooks in order, applying their patches to `object`. Webhooks with
/// `reinvocationPolicy: IfNeeded` run a second time when a later webhook changed the object.
pub async fn run_mutating(
    hooks: &[Webhook],
    req: &Request<'_>,
    object: &mut Value,
    services: &dyn ServiceResolver,
) -> Result<Outcome, Rejection> {
    let mut outcome = Outcome::default();
    // For each IfNeeded webhook that ran: the object as it left it.
    let mut reinvocable: Vec<(usize, Value)> = Vec::new();
    for (i, hook) in hooks.iter().enumerate() {
        if !hook.mutating {
            continue;
        }
        if let Some(answer) = invoke(hook, req, Some(object), services).await? {
            apply(hook, answer, object, &mut outcome, 0, i)?;
            if hook.reinvoke_if_needed {
                reinvocable.push((i, object.clone()));
            }
        }
    }
    let needs: Vec<usize> = reinvocable
        .iter()
        .filter(|(_, seen)| !crate::resources::json::semantic_eq(seen, object))
        .map(|(i, _)| *i)
        .collect();
    for i in needs {
        let hook = &hooks[i];
        if let Some(answer) = invoke(hook, req, Some(object), services).await? {
            apply(hook, answer, object, &mut outcome, 1, i)?;
        }
    }
    Ok(outcome)
}

fn apply(
    hook: &Webhook,
    answer: Answer,
    object: &mut Value,
    outcome: &mut Outcome,
    round: usize,
    index: usize,
) -> Result<(), Rejection> {
    outcome.warnings.extend(answer.warnings);
    outcome.audit_annotations.extend(answer.audit_annotations);
    let mut mutated = false;
    if let Some(patch) = answer.patch {
        let before = object.clone();
        json_patch::patch(object, &patch).map_err(|e| {
            *object = before.clone();
            call_failed(hook, &format!("JSON patch failed: {e}"))
        })?;
        mutated = before != *object;
    }
    outcome.audit_annotations.insert(
        format!("mutation.webhook.admission.k8s.io/round_{round}_index_{index}"),
        json!({"configuration": hook.configuration, "webhook": hook.name, "mutated": mutated})
            .to_string(),
    );
    Ok(())
}

/// Runs the validating webhooks (concurrently, as upstream); the first denial in webhook
/// order is the answer.
pub async fn run_validating(
    hooks: &[Webhook],
    req: &Request<'_>,
    object: Option<&Value>,
    services: &dyn ServiceResolver,
) -> Result<Outcome, Rejection> {
    let calls = hooks
        .iter()
        .filter(|h| !h.mutating)
        .map(|h| invoke(h, req, object, services));
    let mut outcome = Outcome::default();
    for result in futures::future::join_all(calls).await {
        if let Some(answer) = result? {
            outcome.warnings.extend(answer.warnings);
            outcome.audit_annotations.extend(answer.audit_annotations);
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests;
