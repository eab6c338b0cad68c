//! Auditing of API requests (`--audit-policy-file`, `--audit-log-path`): the policy decides a
//! level per request from the authenticated (not impersonated) identity, as upstream's audit
//! filter runs before impersonation; events are written at `RequestReceived` and
//! `ResponseComplete` (`ResponseStarted` for watches, whose response never completes while
//! the request is being handled).

use std::collections::BTreeMap;
use std::path::Path;

use chrono::Utc;
use serde_json::{json, Map, Value};

use super::request::Target;
use super::UserInfo;
use crate::security::audit::{
    build_event, AuditLog, ObjectRef, Policy, RequestAuditConfig, RequestRecord, Stage,
};
use crate::security::rbac::Attributes;

/// The configured policy and log.
pub struct Auditor {
    policy: Policy,
    log: AuditLog,
}

impl Auditor {
    pub fn open(policy_file: &Path, log_path: &Path) -> Result<Auditor, String> {
        let policy = Policy::load(policy_file)?;
        let log = AuditLog::open(log_path)
            .map_err(|e| format!("opening the audit log {}: {e}", log_path.display()))?;
        Ok(Auditor { policy, log })
    }

    /// Starts auditing a request; `None` when the policy records nothing for it.
    pub fn begin(&self, attrs: &Attributes, request: RequestFacts<'_>) -> Option<AuditedRequest> {
        let config = self.policy.evaluate(attrs);
        if config.level == crate::security::audit::Level::None {
            return None;
        }
        let object_ref = match request.target {
            Target::Resource(r) => Some(ObjectRef {
                resource: r.resource.clone(),
                namespace: attrs.namespace.clone(),
                name: attrs.name.clone(),
                api_group: r.group.clone(),
                api_version: r.version.clone(),
                subresource: r.subresource.clone().unwrap_or_default(),
                ..Default::default()
            }),
            _ => None,
        };
        let record = RequestRecord {
            audit_id: uuid::Uuid::new_v4().to_string(),
            request_uri: request.uri.to_string(),
            verb: attrs.verb.clone(),
            user: attrs.user.clone(),
            impersonated_user: None,
            source_ips: request.source_ip.into_iter().collect(),
            user_agent: request.user_agent.to_string(),
            object_ref,
            received: Utc::now(),
            annotations: Map::new(),
        };
        let audited = AuditedRequest { config, record };
        audited.write(self, Stage::RequestReceived, None, None, None);
        Some(audited)
    }
}

/// What the audit record says about the request besides its attributes.
pub struct RequestFacts<'a> {
    pub uri: &'a str,
    pub target: &'a Target,
    pub source_ip: Option<String>,
    pub user_agent: &'a str,
}

/// A request being audited.
pub struct AuditedRequest {
    config: RequestAuditConfig,
    record: RequestRecord,
}

impl AuditedRequest {
    pub fn audit_id(&self) -> &str {
        &self.record.audit_id
    }

    /// Whether the request body is recorded (level Request and up).
    pub fn wants_request_object(&self) -> bool {
        self.config.level >= crate::security::audit::Level::Request
    }

    /// Whether the response body is recorded (level RequestResponse).
    pub fn wants_response_object(&self) -> bool {
        self.config.level >= crate::security::audit::Level::RequestResponse
    }

    /// Whether upstream counts the request as long-running (`watch` and `proxy`, and the `attach`,
    /// `exec`, `log`, `portforward` and `proxy` subresources): its final event is written at
    /// ResponseStarted, when the response begins, since its body may never end and must not be
    /// held back to be audited.
    pub fn long_running(&self) -> bool {
        let subresource = self
            .record
            .object_ref
            .as_ref()
            .map(|o| o.subresource.as_str())
            .unwrap_or_default();
        matches!(self.record.verb.as_str(), "watch" | "proxy")
            || matches!(
                subresource,
                "attach" | "exec" | "log" | "portforward" | "proxy"
            )
    }

    /// Whether the object reference lacks the name a create gives its object in the body.
    pub fn lacks_object_name(&self) -> bool {
        self.record.verb == "create"
            && self
                .record
                .object_ref
                .as_ref()
                .is_some_and(|o| o.name.is_empty())
    }

    /// Fills what the object reference lacks from the request's object, as upstream's
    /// `LogRequestObject` does at every level from Metadata up: a create's event then names the
    /// object it created (an object with only `generateName` still has no name here).
    pub fn complete_object_ref(&mut self, object: &Value) {
        let Some(r) = self.record.object_ref.as_mut() else {
            return;
        };
        let meta = |f: &str| {
            object
                .pointer(&format!("/metadata/{f}"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        if r.namespace.is_empty() {
            r.namespace = meta("namespace");
        }
        if r.name.is_empty() {
            r.name = meta("name");
        }
    }

    pub fn set_impersonated(&mut self, user: &UserInfo) {
        self.record.impersonated_user = Some(user.clone());
    }

    pub fn annotate(&mut self, annotations: &BTreeMap<String, String>) {
        for (k, v) in annotations {
            self.record.annotations.insert(k.clone(), json!(v));
        }
    }

    /// Writes the final event: `code` and, for failures, the Status the client got.
    pub fn finish(
        &self,
        auditor: &Auditor,
        stage: Stage,
        code: u16,
        status: Option<&Value>,
        request_object: Option<&Value>,
        response_object: Option<&Value>,
    ) {
        let mut rs = json!({"metadata": {}, "code": code});
        if let Some(s) = status.filter(|s| s.get("kind") == Some(&json!("Status"))) {
            for k in ["status", "message", "reason", "details"] {
                if let Some(v) = s.get(k) {
                    rs[k] = v.clone();
                }
            }
        }
        self.write(auditor, stage, Some(&rs), request_object, response_object);
    }

    fn write(
        &self,
        auditor: &Auditor,
        stage: Stage,
        status: Option<&Value>,
        request_object: Option<&Value>,
        response_object: Option<&Value>,
    ) {
        let event = build_event(
            &self.config,
            stage,
            &self.record,
            status,
            request_object,
            response_object,
            Utc::now(),
        );
        if let Some(event) = event {
            if let Err(e) = auditor.log.write(&event) {
                tracing::warn!("cannot write to the audit log: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::audit::Level;

    fn create_request(name: &str) -> AuditedRequest {
        AuditedRequest {
            config: RequestAuditConfig {
                level: Level::Metadata,
                omit_stages: Vec::new(),
                omit_managed_fields: false,
            },
            record: RequestRecord {
                audit_id: "id".into(),
                request_uri: "/api/v1/namespaces/ns/pods".into(),
                verb: "create".into(),
                user: UserInfo::new("alice", &["system:authenticated"]),
                impersonated_user: None,
                source_ips: Vec::new(),
                user_agent: String::new(),
                object_ref: Some(ObjectRef {
                    resource: "pods".into(),
                    namespace: "ns".into(),
                    name: name.into(),
                    api_version: "v1".into(),
                    ..Default::default()
                }),
                received: Utc::now(),
                annotations: Map::new(),
            },
        }
    }

    #[test]
    fn a_create_names_its_object_from_the_body_even_at_metadata_level() {
        let mut a = create_request("");
        assert!(a.lacks_object_name());
        a.complete_object_ref(&json!({"metadata": {"name": "web", "namespace": "other"}}));
        let r = a.record.object_ref.as_ref().unwrap();
        // The namespace of the URL stays; only what was missing is filled in.
        assert_eq!((r.name.as_str(), r.namespace.as_str()), ("web", "ns"));
        assert!(!a.lacks_object_name());
        a.annotate(&BTreeMap::from([(
            "pod-security.kubernetes.io/audit-violations".to_string(),
            "would violate PodSecurity".to_string(),
        )]));
        let e = build_event(
            &a.config,
            Stage::ResponseComplete,
            &a.record,
            None,
            None,
            None,
            Utc::now(),
        )
        .unwrap();
        assert_eq!(e["level"], "Metadata");
        assert_eq!(e["objectRef"]["name"], "web");
        assert_eq!(
            e["annotations"]["pod-security.kubernetes.io/audit-violations"],
            "would violate PodSecurity"
        );
        let mut get = create_request("db");
        get.record.verb = "get".into();
        assert!(!get.lacks_object_name());
        assert!(!get.long_running());
        get.record.verb = "watch".into();
        assert!(get.long_running());
        let mut logs = create_request("db");
        logs.record.verb = "get".into();
        if let Some(r) = logs.record.object_ref.as_mut() {
            r.subresource = "log".into();
        }
        assert!(logs.long_running());
    }
}
