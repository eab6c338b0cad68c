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
