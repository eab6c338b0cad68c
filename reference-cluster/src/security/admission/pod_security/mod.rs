//! PodSecurity admission (Pod Security Standards at the levels privileged, baseline and
//! restricted, as `k8s.io/pod-security-admission`): namespaces choose a level per mode with
//! the labels `pod-security.kubernetes.io/{enforce,audit,warn}[-version]`; `enforce` rejects
//! pods, `warn` returns `Warning` headers, `audit` adds audit annotations. Workload objects
//! with pod templates are checked for `warn` and `audit` only, as upstream.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{json, Value};

use super::{Attributes, Operation, Outcome, Rejection};

mod checks;

pub use checks::Violation;
use checks::{CheckLevel, CHECKS};

/// The newest minor version whose standards this implements (`latest`).
pub const LATEST_MINOR: u32 = 32;

pub const LABEL_PREFIX: &str = "pod-security.kubernetes.io/";
pub const AUDIT_VIOLATIONS_ANNOTATION: &str = "pod-security.kubernetes.io/audit-violations";
pub const ENFORCE_POLICY_ANNOTATION: &str = "pod-security.kubernetes.io/enforce-policy";
pub const EXEMPT_ANNOTATION: &str = "pod-security.kubernetes.io/exempt";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Privileged,
    Baseline,
    Restricted,
}

impl Level {
    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "privileged" => Some(Level::Privileged),
            "baseline" => Some(Level::Baseline),
            "restricted" => Some(Level::Restricted),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

/// `latest` or `v1.<minor>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    Latest,
    Minor(u32),
}

impl Version {
    pub fn parse(s: &str) -> Option<Version> {
        if s == "latest" {
            return Some(Version::Latest);
        }
        let (major, minor) = s.strip_prefix('v')?.split_once('.')?;
        if major != "1"
            || minor.is_empty()
            || !minor.bytes().all(|b| b.is_ascii_digit())
            || minor.len() > 4
        {
            return None;
        }
        minor.parse().ok().map(Version::Minor)
    }

    /// The minor version whose checks apply (newer-than-known versions evaluate as latest).
    fn effective_minor(self) -> u32 {
        match self {
            Version::Latest => LATEST_MINOR,
            Version::Minor(m) => m.min(LATEST_MINOR),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Version::Latest => write!(f, "latest"),
            Version::Minor(m) => write!(f, "v1.{m}"),
        }
    }
}

/// A level at a version, shown as `restricted:latest`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    pub level: Level,
    pub version: Version,
}

impl Policy {
    pub const PRIVILEGED: Policy = Policy {
        level: Level::Privileged,
        version: Version::Latest,
    };
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.level.as_str(), self.version)
    }
}

/// The three modes' policies of one namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NamespacePolicy {
    pub enforce: Policy,
    pub audit: Policy,
    pub warn: Policy,
}

/// The admission configuration (`PodSecurityConfiguration`): defaults for unlabelled
/// namespaces and exemptions.
#[derive(Clone, Debug)]
pub struct Config {
    pub defaults: NamespacePolicy,
    pub exempt_usernames: Vec<String>,
    pub exempt_namespaces: Vec<String>,
    pub exempt_runtime_classes: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            defaults: NamespacePolicy {
                enforce: Policy::PRIVILEGED,
                audit: Policy::PRIVILEGED,
                warn: Policy::PRIVILEGED,
            },
            exempt_usernames: Vec::new(),
            exempt_namespaces: Vec::new(),
            exempt_runtime_classes: Vec::new(),
        }
    }
}

/// Reads a namespace's labels into its policy. Invalid levels fail closed to `restricted`
/// and invalid versions fall back to `latest`, as upstream; the field errors are returned for
/// namespace validation.
pub fn policy_from_labels(
    labels: &BTreeMap<String, String>,
    defaults: &NamespacePolicy,
) -> (NamespacePolicy, Vec<String>) {
    let mut errors = Vec::new();
    let mut read = |mode: &str, default: Policy| -> Policy {
        let mut p = default;
        let level_key = format!("{LABEL_PREFIX}{mode}");
        if let Some(v) = labels.get(&level_key) {
            p.level = Level::parse(v).unwrap_or_else(|| {
                errors.push(format!(
                    "metadata.labels[{level_key}]: Invalid value: \"{v}\": must be one of privileged, baseline, restricted"
                ));
                Level::Restricted
            });
        }
        let version_key = format!("{LABEL_PREFIX}{mode}-version");
        if let Some(v) = labels.get(&version_key) {
            p.version = Version::parse(v).unwrap_or_else(|| {
                errors.push(format!(
                    "metadata.labels[{version_key}]: Invalid value: \"{v}\": must be \"latest\" or \"v1.x\""
                ));
                Version::Latest
            });
        }
        p
    };
    let policy = NamespacePolicy {
        enforce: read("enforce", defaults.enforce),
        audit: read("audit", defaults.audit),
        warn: read("warn", defaults.warn),
    };
    (policy, errors)
}

/// Every violation of `policy` by a pod's metadata and spec, in upstream's order.
pub fn evaluate(policy: Policy, metadata: &Value, spec: &Value) -> Vec<Violation> {
    if policy.level == Level::Privileged {
        return Vec::new();
    }
    let minor = policy.version.effective_minor();
    let active = |level: CheckLevel, since: u32| {
        since <= minor && (level == CheckLevel::Baseline || policy.level == Level::Restricted)
    };
    let overridden: Vec<&str> = if policy.level == Level::Restricted {
        CHECKS
            .iter()
            .filter(|c| active(c.level, c.since_minor))
            .flat_map(|c| c.overrides.iter().copied())
            .collect()
    } else {
        Vec::new()
    };
    CHECKS
        .iter()
        .filter(|c| active(c.level, c.since_minor) && !overridden.contains(&c.id))
        .filter_map(|c| (c.run)(metadata, spec, minor))
        .collect()
}

/// Upstream `ForbiddenDetail`: `reason (detail), reason (detail)`.
pub fn forbidden_detail(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| {
            if v.detail.is_empty() {
                v.reason.clone()
            } else {
                format!("{} ({})", v.reason, v.detail)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn forbidden_reasons(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| v.reason.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where a workload keeps its pod template.
fn template_of<'a>(attrs: &Attributes, obj: &'a Value) -> Option<&'a Value> {
    let pointer = match (attrs.group.as_str(), attrs.resource.as_str()) {
        ("", "podtemplates") => "/template",
        ("", "replicationcontrollers")
        | ("apps", "replicasets" | "deployments" | "statefulsets" | "daemonsets")
        | ("batch", "jobs") => "/spec/template",
        ("batch", "cronjobs") => "/spec/jobTemplate/spec/template",
        _ => return None,
    };
    obj.pointer(pointer)
}

fn empty() -> &'static Value {
    static EMPTY: Value = Value::Null;
    &EMPTY
}

/// Whether a pod update changes anything the standards look at (upstream ignores updates
/// that only change metadata or container images).
fn significant_pod_update(new: &Value, old: &Value) -> bool {
    let normalise = |pod: &Value| {
        let mut spec = pod.get("spec").cloned().unwrap_or(Value::Null);
        for list in ["initContainers", "containers", "ephemeralContainers"] {
            if let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) {
                for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                    c.remove("image");
                }
            }
        }
        spec
    };
    !crate::resources::json::semantic_eq(&normalise(new), &normalise(old))
}

fn labels_of(ns: Option<&Value>) -> BTreeMap<String, String> {
    ns.map(|n| crate::resources::json::string_map(n, "metadata.labels"))
        .unwrap_or_default()
}

fn forbidden_status(attrs: &Attributes, message: String) -> Rejection {
    // Upstream's PodSecurity answers with apierrors.NewForbidden on the request's name.
    let prefix = if attrs.name.is_empty() {
        format!("{} is forbidden", attrs.qualified_resource())
    } else {
        format!(
            "{} \"{}\" is forbidden",
            attrs.qualified_resource(),
            attrs.name
        )
    };
    let mut details = json!({"kind": attrs.resource});
    if !attrs.name.is_empty() {
        details["name"] = json!(attrs.name);
    }
    Rejection {
        code: 403,
        reason: "Forbidden",
        message: format!("{prefix}: {message}"),
        details: Some(details),
    }
}

/// Admits a pod (create, significant update, ephemeral containers) or a workload with a pod
/// template. `namespace` is the request's Namespace object.
pub fn admit(
    attrs: &Attributes,
    obj: &Value,
    old: Option<&Value>,
    namespace: Option<&Value>,
    config: &Config,
) -> Result<Outcome, Rejection> {
    let mut outcome = Outcome::default();
    if !matches!(attrs.operation, Operation::Create | Operation::Update)
        || attrs.namespace.is_empty()
    {
        return Ok(outcome);
    }
    let is_pod = attrs.is("", "pods");
    if is_pod && !matches!(attrs.subresource.as_str(), "" | "ephemeralcontainers") {
        return Ok(outcome);
    }
    if !is_pod && !attrs.subresource.is_empty() {
        return Ok(outcome);
    }
    let (metadata, spec, old_template) = if is_pod {
        (
            obj.get("metadata").unwrap_or(empty()),
            obj.get("spec").unwrap_or(empty()),
            None,
        )
    } else {
        let Some(t) = template_of(attrs, obj) else {
            return Ok(outcome);
        };
        (
            t.get("metadata").unwrap_or(empty()),
            t.get("spec").unwrap_or(empty()),
            old.and_then(|o| template_of(attrs, o)),
        )
    };
    if attrs.operation == Operation::Update {
        let unchanged = match (is_pod, old) {
            (true, Some(o)) => attrs.subresource.is_empty() && !significant_pod_update(obj, o),
            (false, _) => old_template.is_some_and(|ot| {
                crate::resources::json::semantic_eq(ot, template_of(attrs, obj).unwrap_or(empty()))
            }),
            _ => false,
        };
        if unchanged {
            return Ok(outcome);
        }
    }
    if config.exempt_namespaces.contains(&attrs.namespace) {
        outcome
            .audit_annotations
            .insert(EXEMPT_ANNOTATION.into(), "namespace".into());
        return Ok(outcome);
    }
    if config.exempt_usernames.contains(&attrs.user.name) {
        outcome
            .audit_annotations
            .insert(EXEMPT_ANNOTATION.into(), "user".into());
        return Ok(outcome);
    }
    let runtime_class = spec
        .get("runtimeClassName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !runtime_class.is_empty()
        && config
            .exempt_runtime_classes
            .iter()
            .any(|c| c == runtime_class)
    {
        outcome
            .audit_annotations
            .insert(EXEMPT_ANNOTATION.into(), "runtimeClass".into());
        return Ok(outcome);
    }
    let (policy, _) = policy_from_labels(&labels_of(namespace), &config.defaults);
    if is_pod {
        outcome
            .audit_annotations
            .insert(ENFORCE_POLICY_ANNOTATION.into(), policy.enforce.to_string());
        let violations = evaluate(policy.enforce, metadata, spec);
        if !violations.is_empty() {
            return Err(forbidden_status(
                attrs,
                format!(
                    "violates PodSecurity \"{}\": {}",
                    policy.enforce,
                    forbidden_detail(&violations)
                ),
            ));
        }
    }
    let audit = evaluate(policy.audit, metadata, spec);
    if !audit.is_empty() {
        outcome.audit_annotations.insert(
            AUDIT_VIOLATIONS_ANNOTATION.into(),
            format!(
                "would violate PodSecurity \"{}\": {}",
                policy.audit,
                forbidden_detail(&audit)
            ),
        );
    }
    let warn = evaluate(policy.warn, metadata, spec);
    if !warn.is_empty() {
        outcome.warnings.push(format!(
            "would violate PodSecurity \"{}\": {}",
            policy.warn,
            forbidden_detail(&warn)
        ));
    }
    Ok(outcome)
}

/// Admits a Namespace create/update: invalid `pod-security.kubernetes.io/*` labels are
/// refused (422); tightening `enforce` warns about the existing `pods` that would be refused.
pub fn admit_namespace(
    attrs: &Attributes,
    namespace: &Value,
    old: Option<&Value>,
    pods: &[Value],
    config: &Config,
) -> Result<Outcome, Rejection> {
    let mut outcome = Outcome::default();
    let applies = attrs.is("", "namespaces")
        && attrs.subresource.is_empty()
        && matches!(attrs.operation, Operation::Create | Operation::Update);
    if !applies {
        return Ok(outcome);
    }
    let name = namespace
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or(&attrs.name)
        .to_string();
    let (policy, errors) = policy_from_labels(&labels_of(Some(namespace)), &config.defaults);
    if !errors.is_empty() {
        let body = super::aggregate(&errors);
        return Err(Rejection {
            code: 422,
            reason: "Invalid",
            message: format!("Namespace \"{name}\" is invalid: {body}"),
            details: Some(json!({"name": name, "kind": "Namespace"})),
        });
    }
    let Some(old) = old else {
        return Ok(outcome);
    };
    let (old_policy, _) = policy_from_labels(&labels_of(Some(old)), &config.defaults);
    if old_policy.enforce == policy.enforce
        || policy.enforce.level == Level::Privileged
        || config.exempt_namespaces.contains(&name)
    {
        return Ok(outcome);
    }
    // Pods with the same violations are reported together, first pod named, in pod order.
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for pod in pods {
        let runtime_class = pod
            .pointer("/spec/runtimeClassName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !runtime_class.is_empty()
            && config
                .exempt_runtime_classes
                .iter()
                .any(|c| c == runtime_class)
        {
            continue;
        }
        let v = evaluate(
            policy.enforce,
            pod.get("metadata").unwrap_or(empty()),
            pod.get("spec").unwrap_or(empty()),
        );
        if v.is_empty() {
            continue;
        }
        let reasons = forbidden_reasons(&v);
        let pod_name = pod
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        match groups.iter_mut().find(|(r, _)| *r == reasons) {
            Some((_, names)) => names.push(pod_name),
            None => groups.push((reasons, vec![pod_name])),
        }
    }
    if groups.is_empty() {
        return Ok(outcome);
    }
    outcome.warnings.push(format!(
        "existing pods in namespace \"{name}\" violate the new PodSecurity enforce level \"{}\"",
        policy.enforce
    ));
    for (reasons, names) in groups {
        let who = match names.len() {
            1 => names[0].clone(),
            2 => format!("{} (and 1 other pod)", names[0]),
            n => format!("{} (and {} other pods)", names[0], n - 1),
        };
        outcome.warnings.push(format!("{who}: {reasons}"));
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests;
