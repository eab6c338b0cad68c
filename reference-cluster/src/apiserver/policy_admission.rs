//! The ValidatingAdmissionPolicy admission plugin: every ValidatingAdmissionPolicyBinding whose
//! policy and match resources select the request has the policy's CEL validations
//! ([`crate::cel::policy`]) judge it, after the built-in validating plugins and before the
//! validating webhooks, as upstream orders them. Deny bindings reject, Warn bindings add
//! warnings; Audit is recorded by nothing here yet.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::{json, Value};

use super::admission::AdmissionCall;
use super::{ApiError, ApiResult, ApiServer};
use crate::cel::policy::{self, CompiledPolicy, FailurePolicy, PolicyInput, PolicyOutcome};
use crate::security::admission::Attributes;
use crate::security::webhook::Webhook;

const GROUP: &str = "admissionregistration.k8s.io";

/// A policy's or binding's match resources as a webhook's rules and selectors, whose
/// matching is the same ([`Webhook::matches`]); `None` when it cannot be read.
fn matcher(match_resources: Option<&Value>) -> Option<Webhook> {
    let m = match_resources.cloned().unwrap_or(json!({}));
    let mut hook = json!({
        "name": "policy.kubeproof.dev",
        "clientConfig": {"url": "https://policy.invalid/"},
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "rules": m.get("resourceRules").cloned().unwrap_or(json!([{
            "apiGroups": ["*"], "apiVersions": ["*"], "operations": ["*"], "resources": ["*"]
        }])),
    });
    for key in ["namespaceSelector", "objectSelector"] {
        if let Some(s) = m.get(key) {
            hook[key] = s.clone();
        }
    }
    let config = json!({"kind": "ValidatingWebhookConfiguration", "webhooks": [hook]});
    Webhook::from_configuration(&config)
        .ok()?
        .into_iter()
        .next()
}

/// Whether the request is one of the match resources' excluded ones.
fn excluded(
    match_resources: Option<&Value>,
    attrs: &Attributes,
    object: Option<&Value>,
    old: Option<&Value>,
    labels: &BTreeMap<String, String>,
) -> bool {
    let Some(rules) = match_resources.and_then(|m| m.get("excludeResourceRules")) else {
        return false;
    };
    if rules.as_array().is_none_or(Vec::is_empty) {
        return false;
    }
    matcher(Some(&json!({"resourceRules": rules})))
        .is_some_and(|h| h.matches(attrs, object, old, labels))
}

fn selects(
    match_resources: Option<&Value>,
    attrs: &Attributes,
    object: Option<&Value>,
    old: Option<&Value>,
    labels: &BTreeMap<String, String>,
) -> bool {
    matcher(match_resources).is_some_and(|h| h.matches(attrs, object, old, labels))
        && !excluded(match_resources, attrs, object, old, labels)
}

/// The `admission.k8s.io/v1` AdmissionRequest the expressions see as `request`.
fn request_json(a: &Attributes) -> Value {
    let user = &a.user;
    json!({
        "kind": {"group": a.group, "version": a.version, "kind": a.kind},
        "resource": {"group": a.group, "version": a.version, "resource": a.resource},
        "subResource": a.subresource,
        "requestKind": {"group": a.group, "version": a.version, "kind": a.kind},
        "requestResource": {"group": a.group, "version": a.version, "resource": a.resource},
        "requestSubResource": a.subresource,
        "name": a.name,
        "namespace": a.namespace,
        "operation": a.operation.as_str(),
        "userInfo": {"username": user.name, "uid": user.uid, "groups": user.groups, "extra": user.extra},
        "dryRun": a.dry_run,
    })
}

/// `pods`, `deployments.apps`, with `/subresource`: how upstream names what was refused.
fn group_resource(a: &Attributes) -> String {
    let mut s = if a.group.is_empty() {
        a.resource.clone()
    } else {
        format!("{}.{}", a.resource, a.group)
    };
    if !a.subresource.is_empty() {
        s = format!("{s}/{}", a.subresource);
    }
    s
}

fn actions(binding: &Value) -> Vec<&str> {
    binding
        .pointer("/spec/validationActions")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The uid and resourceVersion a policy was compiled at, and the result (`None`: an
/// expression does not compile, which skips the policy as before).
type Compiled = (String, Option<Arc<CompiledPolicy>>);

/// Policies compiled once per version rather than on every write they judge, as upstream's
/// policy source compiles each policy when its informer delivers it.
#[derive(Default)]
pub struct CompiledPolicies {
    by_name: Mutex<HashMap<String, Compiled>>,
}

impl CompiledPolicies {
    /// `policy` compiled, reusing the last compilation while its uid and resourceVersion are
    /// unchanged (any write to a policy changes its resourceVersion).
    pub fn get(&self, policy: &Value) -> Option<Arc<CompiledPolicy>> {
        let meta = |f: &str| {
            policy
                .pointer(&format!("/metadata/{f}"))
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        let name = meta("name");
        let version = format!("{}/{}", meta("uid"), meta("resourceVersion"));
        if let Some((seen, compiled)) = self.by_name.lock().get(name) {
            if *seen == version {
                return compiled.clone();
            }
        }
        let compiled = policy::compile_policy(policy).ok().map(Arc::new);
        self.by_name
            .lock()
            .insert(name.to_string(), (version, compiled.clone()));
        compiled
    }

    /// Forgets the policies that no longer exist.
    pub fn retain(&self, names: &BTreeMap<String, Value>) {
        let mut by_name = self.by_name.lock();
        if by_name.len() > names.len() {
            by_name.retain(|name, _| names.contains_key(name));
        }
    }
}

impl ApiServer {
    /// Runs the bound ValidatingAdmissionPolicies over a write.
    pub(super) async fn admit_policies(
        &self,
        call: &AdmissionCall<'_>,
        object: Option<&Value>,
        old: Option<&Value>,
        warnings: &mut Vec<String>,
    ) -> ApiResult<()> {
        let a = &call.attrs;
        // The policies themselves are not subject to policies, so a bad one can be undone.
        if a.group == GROUP {
            return Ok(());
        }
        let bindings = self
            .objects_of(GROUP, "validatingadmissionpolicybindings", None)
            .await;
        if bindings.is_empty() {
            return Ok(());
        }
        let labels = &self.namespace_labels(call, object).await;
        let policies: BTreeMap<String, Value> = self
            .objects_of(GROUP, "validatingadmissionpolicies", None)
            .await
            .into_iter()
            .filter_map(|p| {
                let name = p.pointer("/metadata/name")?.as_str()?.to_string();
                Some((name, p))
            })
            .collect();
        let compiled_policies = &self.security.admission.policies;
        compiled_policies.retain(&policies);
        let request = request_json(a);
        for binding in &bindings {
            let Some(policy_obj) = binding
                .pointer("/spec/policyName")
                .and_then(Value::as_str)
                .and_then(|n| policies.get(n))
            else {
                continue;
            };
            let constraints = policy_obj.pointer("/spec/matchConstraints");
            if !selects(constraints, a, object, old, labels) {
                continue;
            }
            let binding_match = binding.pointer("/spec/matchResources");
            if binding_match.is_some_and(|m| !m.is_null())
                && !selects(binding_match, a, object, old, labels)
            {
                continue;
            }
            // Policies with params are not supported: upstream denies when the params of a
            // binding cannot be found, which is what every such binding looks like here.
            let Some(compiled) = compiled_policies.get(policy_obj) else {
                continue;
            };
            let binding_name = binding
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let input = PolicyInput {
                object,
                old_object: old,
                request: &request,
                params: None,
                namespace_object: call.namespace(self).await,
            };
            let outcomes = match compiled.matches_conditions(&input) {
                Ok(false) => continue,
                Ok(true) => compiled.evaluate(&input),
                Err(e) => vec![PolicyOutcome::Error(e)],
            };
            let acts = actions(binding);
            for outcome in outcomes {
                let (message, reason, code) = match outcome {
                    PolicyOutcome::Admit => continue,
                    PolicyOutcome::Deny {
                        message,
                        reason,
                        code,
                    } => (message, reason, code),
                    PolicyOutcome::Error(e) => {
                        if compiled.failure_policy() == FailurePolicy::Ignore {
                            continue;
                        }
                        (e, "Invalid".to_string(), 422)
                    }
                };
                let text = policy::denial_message(
                    &group_resource(a),
                    &a.name,
                    compiled.name(),
                    Some(binding_name),
                    &message,
                );
                if acts.contains(&"Warn") {
                    warnings.push(format!(
                        "Validation failed for ValidatingAdmissionPolicy '{}' with binding '{binding_name}': {message}",
                        compiled.name()
                    ));
                }
                if acts.contains(&"Deny") {
                    let reason: &'static str = match reason.as_str() {
                        "Forbidden" => "Forbidden",
                        "Unauthorized" => "Unauthorized",
                        "RequestEntityTooLarge" => "RequestEntityTooLarge",
                        _ => "Invalid",
                    };
                    return Err(ApiError::new(code, reason, text));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::admission::Operation;

    fn pod_create(ns: &str) -> Attributes {
        Attributes {
            operation: Operation::Create,
            group: String::new(),
            version: "v1".into(),
            resource: "pods".into(),
            subresource: String::new(),
            kind: "Pod".into(),
            namespace: ns.into(),
            name: "web".into(),
            user: Default::default(),
            dry_run: false,
        }
    }

    fn labels(ns: &str) -> BTreeMap<String, String> {
        BTreeMap::from([("kubernetes.io/metadata.name".to_string(), ns.to_string())])
    }

    #[test]
    fn match_constraints_select_by_rules_and_namespace() {
        let constraints = json!({"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
            "operations": ["CREATE"], "resources": ["pods"]}]});
        let a = pod_create("team-a");
        assert!(selects(
            Some(&constraints),
            &a,
            None,
            None,
            &labels("team-a")
        ));
        let mut update = pod_create("team-a");
        update.operation = Operation::Update;
        assert!(!selects(
            Some(&constraints),
            &update,
            None,
            None,
            &labels("team-a")
        ));
        let binding = json!({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "team-b"}}});
        assert!(!selects(Some(&binding), &a, None, None, &labels("team-a")));
        assert!(selects(Some(&binding), &a, None, None, &labels("team-b")));
        let excluding = json!({"resourceRules": [{"apiGroups": ["*"], "apiVersions": ["*"],
            "operations": ["*"], "resources": ["*"]}],
            "excludeResourceRules": [{"apiGroups": [""], "apiVersions": ["*"],
            "operations": ["*"], "resources": ["pods"]}]});
        assert!(!selects(
            Some(&excluding),
            &a,
            None,
            None,
            &labels("team-a")
        ));
    }

    fn policy(uid: &str, rv: &str, expression: &str) -> Value {
        json!({
            "metadata": {"name": "replicas", "uid": uid, "resourceVersion": rv},
            "spec": {"validations": [{"expression": expression}]},
        })
    }

    #[test]
    fn a_policy_is_compiled_again_only_when_it_changes() {
        let cache = CompiledPolicies::default();
        let first = cache.get(&policy("u1", "5", "true")).expect("compiles");
        let again = cache.get(&policy("u1", "5", "true")).expect("compiles");
        assert!(Arc::ptr_eq(&first, &again), "same version: reused");
        let updated = cache.get(&policy("u1", "6", "false")).expect("compiles");
        assert!(
            !Arc::ptr_eq(&first, &updated),
            "new resourceVersion: recompiled"
        );
        let input = PolicyInput {
            object: None,
            old_object: None,
            request: &json!({}),
            params: None,
            namespace_object: None,
        };
        assert!(
            matches!(updated.evaluate(&input)[..], [PolicyOutcome::Deny { .. }]),
            "the update's expression is the one evaluated"
        );
        let recreated = cache.get(&policy("u2", "6", "false")).expect("compiles");
        assert!(
            !Arc::ptr_eq(&updated, &recreated),
            "deleted and created again under the same name: recompiled"
        );
        assert!(
            cache.get(&policy("u2", "7", "(")).is_none(),
            "does not compile"
        );
        cache.retain(&BTreeMap::new());
        assert!(
            cache.by_name.lock().is_empty(),
            "deleted policies are forgotten"
        );
    }

    #[test]
    fn refusals_name_the_group_resource_and_the_request() {
        let mut a = pod_create("ns");
        assert_eq!(group_resource(&a), "pods");
        a.group = "apps".into();
        a.resource = "deployments".into();
        a.subresource = "scale".into();
        assert_eq!(group_resource(&a), "deployments.apps/scale");
        let r = request_json(&pod_create("ns"));
        assert_eq!(r["operation"], "CREATE");
        assert_eq!(r["resource"]["resource"], "pods");
        assert_eq!(
            actions(&json!({"spec": {"validationActions": ["Deny", "Warn"]}})),
            ["Deny", "Warn"]
        );
    }
}
