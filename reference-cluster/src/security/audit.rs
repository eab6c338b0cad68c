//! Auditing: the `audit.k8s.io/v1` Policy (first matching rule decides the level and omitted
//! stages), the `audit.k8s.io/v1` Event each stage produces, and a JSON-lines log writer.
//!
//! Secret payloads never reach the log: requests for Secrets, TokenReviews and TokenRequests are
//! capped at `Metadata` whatever the policy says.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde_json::{json, Map, Value};

use super::rbac::Attributes;
use super::UserInfo;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    None,
    Metadata,
    Request,
    RequestResponse,
}

impl Level {
    pub fn parse(s: &str) -> Option<Level> {
        Some(match s {
            "None" => Level::None,
            "Metadata" => Level::Metadata,
            "Request" => Level::Request,
            "RequestResponse" => Level::RequestResponse,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::None => "None",
            Level::Metadata => "Metadata",
            Level::Request => "Request",
            Level::RequestResponse => "RequestResponse",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    RequestReceived,
    ResponseStarted,
    ResponseComplete,
    Panic,
}

impl Stage {
    pub fn parse(s: &str) -> Option<Stage> {
        Some(match s {
            "RequestReceived" => Stage::RequestReceived,
            "ResponseStarted" => Stage::ResponseStarted,
            "ResponseComplete" => Stage::ResponseComplete,
            "Panic" => Stage::Panic,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::RequestReceived => "RequestReceived",
            Stage::ResponseStarted => "ResponseStarted",
            Stage::ResponseComplete => "ResponseComplete",
            Stage::Panic => "Panic",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct GroupResources {
    group: String,
    resources: Vec<String>,
    resource_names: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Rule {
    level: Level,
    users: Vec<String>,
    user_groups: Vec<String>,
    verbs: Vec<String>,
    resources: Vec<GroupResources>,
    namespaces: Vec<String>,
    non_resource_urls: Vec<String>,
    omit_stages: Vec<Stage>,
    omit_managed_fields: Option<bool>,
}

/// A parsed audit policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    rules: Vec<Rule>,
    omit_stages: Vec<Stage>,
    omit_managed_fields: bool,
}

/// What the policy decided for one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestAuditConfig {
    pub level: Level,
    pub omit_stages: Vec<Stage>,
    pub omit_managed_fields: bool,
}

impl RequestAuditConfig {
    /// Whether an event is written for `stage`.
    pub fn records(&self, stage: Stage) -> bool {
        self.level != Level::None && !self.omit_stages.contains(&stage)
    }
}

fn strings(v: Option<&Value>, field: &str) -> Result<Vec<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(String::from)
                    .ok_or_else(|| format!("{field}: expected strings"))
            })
            .collect(),
        Some(_) => Err(format!("{field}: expected a list")),
    }
}

fn stages(v: Option<&Value>, field: &str) -> Result<Vec<Stage>, String> {
    strings(v, field)?
        .iter()
        .map(|s| Stage::parse(s).ok_or_else(|| format!("{field}: unknown stage {s:?}")))
        .collect()
}

impl Policy {
    /// Parses an `audit.k8s.io/v1` Policy document (YAML or JSON).
    pub fn parse(text: &str) -> Result<Policy, String> {
        let doc: Value = serde_yaml_ng::from_str(text).map_err(|e| format!("audit policy: {e}"))?;
        Self::from_value(&doc)
    }

    pub fn load(path: &Path) -> Result<Policy, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        Self::parse(&text)
    }

    pub fn from_value(doc: &Value) -> Result<Policy, String> {
        if doc.get("kind").and_then(Value::as_str) != Some("Policy") {
            return Err("audit policy: kind must be Policy".into());
        }
        match doc.get("apiVersion").and_then(Value::as_str) {
            Some("audit.k8s.io/v1") => {}
            other => {
                return Err(format!(
                    "audit policy: unsupported apiVersion {other:?}, want audit.k8s.io/v1"
                ))
            }
        }
        let mut rules = Vec::new();
        for (i, r) in doc
            .get("rules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let field = |f: &str| format!("rules[{i}].{f}");
            let level = r
                .get("level")
                .and_then(Value::as_str)
                .and_then(Level::parse)
                .ok_or_else(|| {
                    format!(
                        "{}: must be one of None, Metadata, Request, RequestResponse",
                        field("level")
                    )
                })?;
            let mut resources = Vec::new();
            for (j, gr) in r
                .get("resources")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let f = format!("rules[{i}].resources[{j}]");
                resources.push(GroupResources {
                    group: gr
                        .get("group")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    resources: strings(gr.get("resources"), &format!("{f}.resources"))?,
                    resource_names: strings(
                        gr.get("resourceNames"),
                        &format!("{f}.resourceNames"),
                    )?,
                });
            }
            let rule = Rule {
                level,
                users: strings(r.get("users"), &field("users"))?,
                user_groups: strings(r.get("userGroups"), &field("userGroups"))?,
                verbs: strings(r.get("verbs"), &field("verbs"))?,
                resources,
                namespaces: strings(r.get("namespaces"), &field("namespaces"))?,
                non_resource_urls: strings(r.get("nonResourceURLs"), &field("nonResourceURLs"))?,
                omit_stages: stages(r.get("omitStages"), &field("omitStages"))?,
                omit_managed_fields: r.get("omitManagedFields").and_then(Value::as_bool),
            };
            // Upstream validation: a rule is either about resources or about URLs.
            if !rule.non_resource_urls.is_empty()
                && (!rule.resources.is_empty() || !rule.namespaces.is_empty())
            {
                return Err(format!(
                    "{}: rules cannot apply to both regular resources and non-resource URLs",
                    field("nonResourceURLs")
                ));
            }
            rules.push(rule);
        }
        Ok(Policy {
            rules,
            omit_stages: stages(doc.get("omitStages"), "omitStages")?,
            omit_managed_fields: doc
                .get("omitManagedFields")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }

    /// The level and omitted stages for a request (first matching rule; `None` if none).
    pub fn evaluate(&self, attrs: &Attributes) -> RequestAuditConfig {
        let rule = self.rules.iter().find(|r| rule_matches(r, attrs));
        let mut level = rule.map_or(Level::None, |r| r.level);
        if never_above_metadata(attrs) && level > Level::Metadata {
            level = Level::Metadata;
        }
        let mut omit = self.omit_stages.clone();
        if let Some(r) = rule {
            omit.extend(r.omit_stages.iter().copied());
        }
        RequestAuditConfig {
            level,
            omit_stages: omit,
            omit_managed_fields: rule
                .and_then(|r| r.omit_managed_fields)
                .unwrap_or(self.omit_managed_fields),
        }
    }
}

/// Requests whose bodies carry secrets or credentials.
fn never_above_metadata(attrs: &Attributes) -> bool {
    attrs.resource_request
        && matches!(
            (
                attrs.api_group.as_str(),
                attrs.resource.as_str(),
                attrs.subresource.as_str()
            ),
            ("", "secrets", _)
                | ("authentication.k8s.io", "tokenreviews", _)
                | ("", "serviceaccounts", "token")
        )
}

fn has(list: &[String], s: &str) -> bool {
    list.iter().any(|x| x == s)
}

fn rule_matches(r: &Rule, attrs: &Attributes) -> bool {
    if !r.users.is_empty() && !has(&r.users, &attrs.user.name) {
        return false;
    }
    if !r.user_groups.is_empty() && !attrs.user.groups.iter().any(|g| has(&r.user_groups, g)) {
        return false;
    }
    if !r.verbs.is_empty() && !has(&r.verbs, &attrs.verb) {
        return false;
    }
    if !r.namespaces.is_empty() || !r.resources.is_empty() {
        return resource_matches(r, attrs);
    }
    if !r.non_resource_urls.is_empty() {
        return !attrs.resource_request
            && r.non_resource_urls
                .iter()
                .any(|spec| path_matches(&attrs.path, spec));
    }
    true
}

fn path_matches(path: &str, spec: &str) -> bool {
    spec == "*"
        || spec == path
        || spec
            .strip_suffix('*')
            .is_some_and(|p| path.starts_with(p.trim_end_matches('*')))
}

fn resource_matches(r: &Rule, attrs: &Attributes) -> bool {
    if !attrs.resource_request {
        return false;
    }
    if !r.namespaces.is_empty() && !has(&r.namespaces, &attrs.namespace) {
        return false;
    }
    if r.resources.is_empty() {
        return true;
    }
    let combined = if attrs.subresource.is_empty() {
        attrs.resource.clone()
    } else {
        format!("{}/{}", attrs.resource, attrs.subresource)
    };
    r.resources
        .iter()
        .filter(|gr| gr.group == attrs.api_group)
        .any(|gr| {
            if gr.resources.is_empty() {
                return true;
            }
            if !gr.resource_names.is_empty() && !has(&gr.resource_names, &attrs.name) {
                return false;
            }
            gr.resources.iter().any(|res| {
                res == "*"
                    || *res == combined
                    || (!attrs.subresource.is_empty()
                        && res.strip_prefix("*/") == Some(attrs.subresource.as_str()))
                    || res.strip_suffix("/*") == Some(attrs.resource.as_str())
            })
        })
}

/// `objectRef` of an audit event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectRef {
    pub resource: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub api_group: String,
    pub api_version: String,
    pub resource_version: String,
    pub subresource: String,
}

impl ObjectRef {
    fn to_json(&self) -> Value {
        let mut m = Map::new();
        for (k, v) in [
            ("resource", &self.resource),
            ("namespace", &self.namespace),
            ("name", &self.name),
            ("uid", &self.uid),
            ("apiGroup", &self.api_group),
            ("apiVersion", &self.api_version),
            ("resourceVersion", &self.resource_version),
            ("subresource", &self.subresource),
        ] {
            if !v.is_empty() {
                m.insert(k.into(), json!(v));
            }
        }
        Value::Object(m)
    }
}

/// What is known about a request when its events are written.
#[derive(Clone, Debug)]
pub struct RequestRecord {
    pub audit_id: String,
    pub request_uri: String,
    pub verb: String,
    pub user: UserInfo,
    /// The identity acted as, when the request impersonated someone.
    pub impersonated_user: Option<UserInfo>,
    pub source_ips: Vec<String>,
    pub user_agent: String,
    pub object_ref: Option<ObjectRef>,
    pub received: DateTime<Utc>,
    pub annotations: Map<String, Value>,
}

fn timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn strip_managed_fields(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    v
}

/// Builds the `audit.k8s.io/v1` Event for one stage, or `None` when the policy omits it.
/// `request_object`/`response_object` are included from level Request/RequestResponse up;
/// `response_status` is `{code, status?, reason?, message?}` for completed stages.
pub fn build_event(
    config: &RequestAuditConfig,
    stage: Stage,
    record: &RequestRecord,
    response_status: Option<&Value>,
    request_object: Option<&Value>,
    response_object: Option<&Value>,
    now: DateTime<Utc>,
) -> Option<Value> {
    if !config.records(stage) {
        return None;
    }
    let mut e = json!({
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": config.level.as_str(),
        "auditID": record.audit_id,
        "stage": stage.as_str(),
        "requestURI": record.request_uri,
        "verb": record.verb,
        "user": record.user.to_json(),
    });
    if let Some(imp) = &record.impersonated_user {
        e["impersonatedUser"] = imp.to_json();
    }
    e["sourceIPs"] = json!(record.source_ips);
    if !record.user_agent.is_empty() {
        e["userAgent"] = json!(record.user_agent);
    }
    if let Some(o) = &record.object_ref {
        e["objectRef"] = o.to_json();
    }
    if let Some(s) = response_status {
        e["responseStatus"] = s.clone();
    }
    let prepare = |v: &Value| {
        if config.omit_managed_fields {
            strip_managed_fields(v)
        } else {
            v.clone()
        }
    };
    if config.level >= Level::Request {
        if let Some(r) = request_object {
            e["requestObject"] = prepare(r);
        }
    }
    if config.level >= Level::RequestResponse {
        if let Some(r) = response_object {
            e["responseObject"] = prepare(r);
        }
    }
    e["requestReceivedTimestamp"] = json!(timestamp(record.received));
    e["stageTimestamp"] = json!(timestamp(now));
    if !record.annotations.is_empty() {
        e["annotations"] = Value::Object(record.annotations.clone());
    }
    Some(e)
}

/// An append-only JSON-lines audit log (`--audit-log-path`), one Event per line.
pub struct AuditLog {
    out: Mutex<BufWriter<File>>,
}

impl AuditLog {
    pub fn open(path: &Path) -> std::io::Result<AuditLog> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let f = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(AuditLog {
            out: Mutex::new(BufWriter::new(f)),
        })
    }

    /// Appends one event and flushes, so a crash loses at most the event being written.
    pub fn write(&self, event: &Value) -> std::io::Result<()> {
        let mut out = self.out.lock();
        serde_json::to_writer(&mut *out, event)?;
        out.write_all(b"\n")?;
        out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED_POLICY: &str = include_str!("seed-audit-policy.yaml");

    fn user(name: &str, groups: &[&str]) -> UserInfo {
        UserInfo::new(name, groups)
    }

    fn res(verb: &str, resource: &str, sub: &str, ns: &str, name: &str) -> Attributes {
        Attributes::resource(
            user("alice", &["system:authenticated"]),
            verb,
            "",
            resource,
            ns,
            name,
        )
        .with_subresource(sub)
    }

    #[test]
    fn the_upstream_example_policy_works_as_written() {
        let p = Policy::parse(SEED_POLICY).unwrap();
        let level = |a: &Attributes| p.evaluate(a).level;
        assert_eq!(
            level(&res("get", "pods", "", "default", "p")),
            Level::RequestResponse
        );
        assert_eq!(
            level(&res("get", "pods", "log", "default", "p")),
            Level::Metadata
        );
        assert_eq!(
            level(&res(
                "update",
                "configmaps",
                "",
                "kube-system",
                "controller-leader"
            )),
            Level::None
        );
        assert_eq!(
            level(&res("update", "configmaps", "", "kube-system", "other")),
            Level::Request
        );
        assert_eq!(
            level(&res("update", "configmaps", "", "default", "other")),
            Level::Metadata
        );
        let mut proxy = res("watch", "endpoints", "", "default", "");
        proxy.user = user("system:kube-proxy", &[]);
        assert_eq!(level(&proxy), Level::None);
        assert_eq!(
            level(&res("get", "services", "", "default", "s")),
            Level::Request
        );
        let api = Attributes::non_resource(
            user("alice", &["system:authenticated"]),
            "get",
            "/apis/apps",
        );
        assert_eq!(level(&api), Level::None);
        let healthz =
            Attributes::non_resource(user("alice", &["system:authenticated"]), "get", "/healthz");
        assert_eq!(level(&healthz), Level::Metadata);
        let mut apps = res("create", "deployments", "", "default", "d");
        apps.api_group = "apps".into();
        assert_eq!(level(&apps), Level::Metadata);
        let c = p.evaluate(&res("get", "pods", "", "default", "p"));
        assert!(!c.records(Stage::RequestReceived));
        assert!(c.records(Stage::ResponseComplete));
    }

    /// The example policy of the seed document (section 5), verbatim.
    const SEED_DOC_POLICY: &str = r#"
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: None
  nonResourceURLs: ["/healthz*", "/livez*", "/readyz*"]
- level: Metadata
  resources:
  - group: ""
    resources: ["secrets"]
- level: Request
  verbs: ["create", "update", "patch", "delete"]
  resources:
  - group: ""
    resources: ["pods", "services", "configmaps"]
- level: Metadata
  omitStages: ["RequestReceived"]
"#;

    #[test]
    fn the_seed_policy_works_as_written() {
        let p = Policy::parse(SEED_DOC_POLICY).unwrap();
        let nr = |path: &str| p.evaluate(&Attributes::non_resource(user("a", &[]), "get", path));
        assert_eq!(nr("/healthz").level, Level::None);
        assert_eq!(nr("/readyz/etcd").level, Level::None);
        assert_eq!(nr("/version").level, Level::Metadata);
        assert_eq!(
            p.evaluate(&res("update", "secrets", "", "d", "s")).level,
            Level::Metadata
        );
        assert_eq!(
            p.evaluate(&res("create", "pods", "", "d", "p")).level,
            Level::Request
        );
        let get = p.evaluate(&res("get", "pods", "", "d", "p"));
        assert_eq!(get.level, Level::Metadata);
        assert!(!get.records(Stage::RequestReceived));
        assert!(p
            .evaluate(&res("create", "pods", "", "d", "p"))
            .records(Stage::RequestReceived));
    }

    #[test]
    fn secrets_and_token_reviews_never_log_payloads() {
        let p = Policy::parse(
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: RequestResponse\n",
        )
        .unwrap();
        assert_eq!(
            p.evaluate(&res("get", "secrets", "", "default", "s")).level,
            Level::Metadata
        );
        assert_eq!(
            p.evaluate(&res("create", "serviceaccounts", "token", "default", "sa"))
                .level,
            Level::Metadata
        );
        let mut tr = res("create", "tokenreviews", "", "", "");
        tr.api_group = "authentication.k8s.io".into();
        assert_eq!(p.evaluate(&tr).level, Level::Metadata);
        assert_eq!(
            p.evaluate(&res("get", "configmaps", "", "default", "c"))
                .level,
            Level::RequestResponse
        );
    }

    #[test]
    fn wildcard_resource_forms_match_like_upstream() {
        let p = Policy::parse(r#"{"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [
            {"level": "Request", "resources": [{"group": "", "resources": ["*/status"]}]},
            {"level": "RequestResponse", "resources": [{"group": "", "resources": ["deployments/*"]}]}
        ]}"#)
        .unwrap();
        assert_eq!(
            p.evaluate(&res("update", "nodes", "status", "", "n")).level,
            Level::Request
        );
        assert_eq!(
            p.evaluate(&res("update", "deployments", "scale", "x", "d"))
                .level,
            Level::RequestResponse
        );
        assert_eq!(
            p.evaluate(&res("update", "nodes", "", "", "n")).level,
            Level::None
        );
    }

    #[test]
    fn rejects_invalid_policies() {
        assert!(Policy::parse("kind: Policy\napiVersion: audit.k8s.io/v1beta1\n").is_err());
        assert!(Policy::parse(
            "kind: Policy\napiVersion: audit.k8s.io/v1\nrules:\n- level: Everything\n"
        )
        .is_err());
        assert!(
            Policy::parse("kind: Policy\napiVersion: audit.k8s.io/v1\nomitStages: [Later]\n")
                .is_err()
        );
        assert!(Policy::parse("{{{").is_err());
    }

    #[test]
    fn events_carry_what_the_level_allows_and_go_to_a_json_lines_log() {
        let p = Policy::parse("apiVersion: audit.k8s.io/v1\nkind: Policy\nomitManagedFields: true\nrules:\n- level: Request\n").unwrap();
        let attrs = res("create", "configmaps", "", "default", "c");
        let config = p.evaluate(&attrs);
        let t0 = DateTime::from_timestamp(1_700_000_000, 123_456_000).unwrap();
        let record = RequestRecord {
            audit_id: "abc".into(),
            request_uri: "/api/v1/namespaces/default/configmaps".into(),
            verb: "create".into(),
            user: attrs.user.clone(),
            impersonated_user: None,
            source_ips: vec!["127.0.0.1".into()],
            user_agent: "kubectl/v1.32.0".into(),
            object_ref: Some(ObjectRef {
                resource: "configmaps".into(),
                namespace: "default".into(),
                name: "c".into(),
                api_version: "v1".into(),
                ..Default::default()
            }),
            received: t0,
            annotations: Map::from_iter([(
                "authorization.k8s.io/decision".to_string(),
                json!("allow"),
            )]),
        };
        let body = json!({"metadata": {"name": "c", "managedFields": [{}]}, "data": {"k": "v"}});
        let e = build_event(
            &config,
            Stage::ResponseComplete,
            &record,
            Some(&json!({"metadata": {}, "code": 201})),
            Some(&body),
            Some(&body),
            t0,
        )
        .unwrap();
        assert_eq!(e["level"], "Request");
        assert_eq!(
            e["requestObject"],
            json!({"metadata": {"name": "c"}, "data": {"k": "v"}})
        );
        assert!(e.get("responseObject").is_none());
        assert_eq!(
            e["objectRef"],
            json!({"resource": "configmaps", "namespace": "default", "name": "c", "apiVersion": "v1"})
        );
        assert_eq!(e["requestReceivedTimestamp"], "2023-11-14T22:13:20.123456Z");
        assert_eq!(e["responseStatus"]["code"], 201);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit/audit.log");
        let log = AuditLog::open(&path).unwrap();
        log.write(&e).unwrap();
        log.write(&e).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["auditID"], "abc");
        let none = p.evaluate(&Attributes::non_resource(user("x", &[]), "get", "/x"));
        assert_eq!(none.level, Level::Request);
        let none = Policy::parse("apiVersion: audit.k8s.io/v1\nkind: Policy\n")
            .unwrap()
            .evaluate(&attrs);
        assert!(build_event(
            &none,
            Stage::ResponseComplete,
            &record,
            None,
            None,
            None,
            t0
        )
        .is_none());
    }
}
