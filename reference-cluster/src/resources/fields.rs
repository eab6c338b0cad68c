//! Field selectors: which fields each kind can be filtered on (upstream's per-registry
//! `ToSelectableFields` / field-label conversion functions), the `?fieldSelector=` parser
//! (upstream `fields.ParseSelector`), and re-exports of the label selector machinery.

use serde_json::Value;

use super::json::{array_at, bool_at, i64_at, str_at, string_at};
use super::Strategy;

pub use super::labels::{
    format_label_selector, format_labels, parse_label_selector, LabelSelector, Operator,
    Requirement,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldOp {
    /// `=` and `==`.
    Equals,
    /// `!=`.
    NotEquals,
}

/// One term of a field selector, with its value unescaped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldRequirement {
    pub field: String,
    pub op: FieldOp,
    pub value: String,
}

impl FieldRequirement {
    /// Whether `obj` satisfies the term; `None` when the kind has no such field.
    pub fn matches(&self, strategy: &dyn Strategy, obj: &Value) -> Option<bool> {
        let have = strategy.field_value(obj, &self.field)?;
        Some(match self.op {
            FieldOp::Equals => have == self.value,
            FieldOp::NotEquals => have != self.value,
        })
    }
}

/// Parses `a=b,c!=d,e==f` (values may escape `\,` `\=` `\\`). Terms come back sorted as
/// upstream sorts them. Error texts are upstream's.
pub fn parse_field_selector(s: &str) -> Result<Vec<FieldRequirement>, String> {
    let mut parts = split_terms(s);
    parts.sort();
    let mut out = Vec::new();
    for part in parts {
        if part.is_empty() {
            continue;
        }
        let Some((lhs, op, rhs)) = split_term(&part) else {
            return Err(format!(
                "invalid selector: '{s}'; can't understand '{part}'"
            ));
        };
        let value = unescape_value(rhs)?;
        out.push(FieldRequirement {
            field: lhs.to_string(),
            op,
            value,
        });
    }
    Ok(out)
}

/// Checks every term against the kind's selectable fields, with upstream's 400 message.
pub fn check_supported(strategy: &dyn Strategy, reqs: &[FieldRequirement]) -> Result<(), String> {
    for r in reqs {
        if strategy.field_value(&Value::Null, &r.field).is_none() {
            return Err(format!("field label not supported: {}", r.field));
        }
    }
    Ok(())
}

/// `true` when every requirement holds; unsupported fields never match.
pub fn matches_all(strategy: &dyn Strategy, reqs: &[FieldRequirement], obj: &Value) -> bool {
    reqs.iter()
        .all(|r| r.matches(strategy, obj).unwrap_or(false))
}

/// Splits on commas not escaped by a backslash.
fn split_terms(s: &str) -> Vec<String> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut cur = String::new();
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
        } else if c == '\\' {
            cur.push(c);
            escaped = true;
        } else if c == ',' {
            terms.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    terms.push(cur);
    terms
}

/// Finds the first operator, trying `!=`, `==`, `=` at each position as upstream does.
fn split_term(term: &str) -> Option<(&str, FieldOp, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for (op, kind) in [
            ("!=", FieldOp::NotEquals),
            ("==", FieldOp::Equals),
            ("=", FieldOp::Equals),
        ] {
            if rest.starts_with(op) {
                return Some((&term[..i], kind, &term[i + op.len()..]));
            }
        }
    }
    None
}

fn unescape_value(s: &str) -> Result<String, String> {
    if !s.contains(['\\', '=', ',']) {
        return Ok(s.to_string());
    }
    let mut out = String::new();
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            match c {
                '\\' | ',' | '=' => out.push(c),
                other => {
                    return Err(format!(
                        "invalid field selector: invalid escape sequence: \\{other}"
                    ))
                }
            }
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => {
                // Go prints the rune with %v, i.e. as its code point.
                return Err(format!(
                    "invalid field selector: unescaped character in value: {}",
                    c as u32
                ));
            }
            other => out.push(other),
        }
    }
    if in_slash {
        return Err("invalid field selector: invalid escape sequence: \\".to_string());
    }
    Ok(out)
}

fn bool_str(b: bool) -> String {
    if b { "true" } else { "false" }.to_string()
}

/// The selectable value of `field` for a built-in kind, or `None` if the kind does not support
/// selecting on it. Every kind supports `metadata.name` and `metadata.namespace`.
pub fn builtin_field_value(group: &str, kind: &str, obj: &Value, field: &str) -> Option<String> {
    match field {
        "metadata.name" => return Some(string_at(obj, "metadata.name")),
        "metadata.namespace" => return Some(string_at(obj, "metadata.namespace")),
        _ => {}
    }
    match (group, kind) {
        ("", "Pod") => pod_field(obj, field),
        ("", "Node") => match field {
            "spec.unschedulable" => Some(bool_str(
                bool_at(obj, "spec.unschedulable").unwrap_or(false),
            )),
            _ => None,
        },
        ("", "Event") | ("events.k8s.io", "Event") => event_field(obj, field),
        ("", "Secret") => match field {
            "type" => Some(string_at(obj, "type")),
            _ => None,
        },
        ("", "Namespace") => match field {
            "status.phase" => Some(string_at(obj, "status.phase")),
            "name" => Some(string_at(obj, "metadata.name")),
            _ => None,
        },
        ("", "PersistentVolume") | ("", "PersistentVolumeClaim") => match field {
            "name" => Some(string_at(obj, "metadata.name")),
            _ => None,
        },
        ("", "ReplicationController") | ("apps", "ReplicaSet") => match field {
            "status.replicas" => Some(i64_at(obj, "status.replicas").unwrap_or(0).to_string()),
            _ => None,
        },
        ("batch", "Job") => match field {
            "status.successful" => Some(i64_at(obj, "status.succeeded").unwrap_or(0).to_string()),
            _ => None,
        },
        ("certificates.k8s.io", "CertificateSigningRequest") => match field {
            "spec.signerName" => Some(string_at(obj, "spec.signerName")),
            _ => None,
        },
        ("", "Service") => match field {
            "spec.clusterIP" => Some(string_at(obj, "spec.clusterIP")),
            "spec.type" => Some(string_at(obj, "spec.type")),
            _ => None,
        },
        _ => None,
    }
}

fn pod_field(obj: &Value, field: &str) -> Option<String> {
    Some(match field {
        "spec.nodeName" => string_at(obj, "spec.nodeName"),
        "spec.restartPolicy" => string_at(obj, "spec.restartPolicy"),
        "spec.schedulerName" => string_at(obj, "spec.schedulerName"),
        "spec.serviceAccountName" => string_at(obj, "spec.serviceAccountName"),
        "spec.hostNetwork" => bool_str(bool_at(obj, "spec.hostNetwork").unwrap_or(false)),
        "status.phase" => string_at(obj, "status.phase"),
        "status.podIP" => array_at(obj, "status.podIPs")
            .first()
            .and_then(|ip| ip.get("ip"))
            .and_then(Value::as_str)
            .or_else(|| str_at(obj, "status.podIP"))
            .unwrap_or_default()
            .to_string(),
        "status.nominatedNodeName" => string_at(obj, "status.nominatedNodeName"),
        _ => return None,
    })
}

/// Core and events.k8s.io events share storage, so either shape may arrive here; both field
/// vocabularies are accepted (events.k8s.io's are upstream's field-label conversions).
fn event_field(obj: &Value, field: &str) -> Option<String> {
    let regarding = |sub: &str| -> String {
        str_at(obj, &format!("involvedObject.{sub}"))
            .or_else(|| str_at(obj, &format!("regarding.{sub}")))
            .unwrap_or_default()
            .to_string()
    };
    let field = field
        .strip_prefix("regarding.")
        .map(|sub| format!("involvedObject.{sub}"))
        .unwrap_or_else(|| field.to_string());
    Some(match field.as_str() {
        "involvedObject.kind" => regarding("kind"),
        "involvedObject.namespace" => regarding("namespace"),
        "involvedObject.name" => regarding("name"),
        "involvedObject.uid" => regarding("uid"),
        "involvedObject.apiVersion" => regarding("apiVersion"),
        "involvedObject.resourceVersion" => regarding("resourceVersion"),
        "involvedObject.fieldPath" => regarding("fieldPath"),
        "reason" => string_at(obj, "reason"),
        "type" => string_at(obj, "type"),
        "reportingComponent" | "reportingController" => str_at(obj, "reportingComponent")
            .filter(|s| !s.is_empty())
            .or_else(|| str_at(obj, "reportingController"))
            .unwrap_or_default()
            .to_string(),
        "source" => {
            let component = str_at(obj, "source.component")
                .or_else(|| str_at(obj, "deprecatedSource.component"))
                .unwrap_or_default();
            if component.is_empty() {
                str_at(obj, "reportingComponent")
                    .or_else(|| str_at(obj, "reportingController"))
                    .unwrap_or_default()
                    .to_string()
            } else {
                component.to_string()
            }
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_and_sorts_terms() {
        let reqs =
            parse_field_selector("status.phase!=Running,metadata.name==web,spec.nodeName=n1")
                .unwrap();
        let fields: Vec<&str> = reqs.iter().map(|r| r.field.as_str()).collect();
        assert_eq!(fields, ["metadata.name", "spec.nodeName", "status.phase"]);
        assert_eq!(reqs[0].op, FieldOp::Equals);
        assert_eq!(reqs[2].op, FieldOp::NotEquals);
        assert!(parse_field_selector("").unwrap().is_empty());
    }

    #[test]
    fn escaped_values() {
        let reqs = parse_field_selector(r"metadata.name=a\,b\=c").unwrap();
        assert_eq!(reqs[0].value, "a,b=c");
        assert_eq!(
            parse_field_selector(r"a=b\x").unwrap_err(),
            r"invalid field selector: invalid escape sequence: \x"
        );
        assert_eq!(
            parse_field_selector("a=b=c").unwrap_err(),
            "invalid field selector: unescaped character in value: 61"
        );
    }

    #[test]
    fn rejects_terms_without_operator() {
        assert_eq!(
            parse_field_selector("metadata.name").unwrap_err(),
            "invalid selector: 'metadata.name'; can't understand 'metadata.name'"
        );
    }

    #[test]
    fn pod_fields() {
        let pod = json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {"nodeName": "n1", "restartPolicy": "Always", "hostNetwork": true},
            "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.1"}]}
        });
        let f = |field| builtin_field_value("", "Pod", &pod, field);
        assert_eq!(f("spec.nodeName").as_deref(), Some("n1"));
        assert_eq!(f("spec.hostNetwork").as_deref(), Some("true"));
        assert_eq!(f("status.podIP").as_deref(), Some("10.0.0.1"));
        assert_eq!(f("metadata.namespace").as_deref(), Some("ns"));
        assert_eq!(f("spec.schedulerName").as_deref(), Some(""));
        assert_eq!(f("spec.containers"), None);
    }

    #[test]
    fn per_kind_fields() {
        let node = json!({"spec": {"unschedulable": true}});
        assert_eq!(
            builtin_field_value("", "Node", &node, "spec.unschedulable").as_deref(),
            Some("true")
        );
        let job = json!({"status": {"succeeded": 2}});
        assert_eq!(
            builtin_field_value("batch", "Job", &job, "status.successful").as_deref(),
            Some("2")
        );
        let ev = json!({"involvedObject": {"kind": "Pod", "name": "p"}, "source": {"component": "kubelet"}});
        assert_eq!(
            builtin_field_value("", "Event", &ev, "involvedObject.kind").as_deref(),
            Some("Pod")
        );
        assert_eq!(
            builtin_field_value("events.k8s.io", "Event", &ev, "regarding.name").as_deref(),
            Some("p")
        );
        assert_eq!(
            builtin_field_value("", "Event", &ev, "source").as_deref(),
            Some("kubelet")
        );
        assert_eq!(
            builtin_field_value("apps", "Deployment", &ev, "status.replicas"),
            None
        );
    }
}
