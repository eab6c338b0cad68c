//! Reading the API server's audit log (`--audit-log-path`: one `audit.k8s.io/v1` Event per
//! line) for the events of this scenario's requests and the annotations admission plugins put
//! on them (PodSecurity's `pod-security.kubernetes.io/audit-violations`, webhooks' own).

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::support::{eventually, StepArgs, StepFailure, StepResult};
use crate::world::KubeWorld;

/// How long an audit event may take to reach the log unless the step says otherwise (upstream's
/// batching backends flush within seconds; the log backend writes as requests finish).
const DEFAULT_WAIT: Duration = Duration::from_secs(10);

/// The request whose audit event a step looks for.
#[derive(Debug)]
struct Wanted<'a> {
    verb: &'a str,
    resource: &'a str,
    namespace: &'a str,
    name: &'a str,
    annotation: &'a str,
    containing: &'a str,
}

impl Wanted<'_> {
    fn describes(&self, event: &Value) -> bool {
        let field = |p: &str| event.pointer(p).and_then(Value::as_str).unwrap_or("");
        let (resource, subresource) = self.resource.split_once('/').unwrap_or((self.resource, ""));
        field("/verb") == self.verb
            && field("/objectRef/resource") == resource
            && field("/objectRef/subresource") == subresource
            && field("/objectRef/namespace") == self.namespace
            && field("/objectRef/name") == self.name
    }
}

/// Why the log lacks the wanted event and annotation, or `None` when it has them.
fn check(log: &str, want: &Wanted<'_>) -> Option<String> {
    let events: Vec<Value> = log
        .lines()
        // Most of the log is other scenarios' requests; only lines naming ours are parsed.
        .filter(|l| l.contains(want.namespace) && l.contains(want.name))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| want.describes(e))
        .collect();
    let what = format!(
        "{} {} \"{}\" in namespace {}",
        want.verb, want.resource, want.name, want.namespace
    );
    if events.is_empty() {
        return Some(format!("the audit log has no event for {what}"));
    }
    let found = events.iter().any(|e| {
        e.pointer("/annotations")
            .and_then(|a| a.get(want.annotation))
            .and_then(Value::as_str)
            .is_some_and(|v| v.contains(want.containing))
    });
    if found {
        return None;
    }
    let seen: Vec<String> = events
        .iter()
        .map(|e| {
            format!(
                "{} at level {}: annotations {}",
                e.pointer("/stage").and_then(Value::as_str).unwrap_or("?"),
                e.pointer("/level").and_then(Value::as_str).unwrap_or("?"),
                e.get("annotations")
                    .map(Value::to_string)
                    .unwrap_or_else(|| "none".into())
            )
        })
        .collect();
    Some(format!(
        "no audit event for {what} has annotation {} containing \"{}\"; its events: {}",
        want.annotation,
        want.containing,
        seen.join("; ")
    ))
}

fn read_log(path: &Path) -> Result<String, StepFailure> {
    let bytes = std::fs::read(path).map_err(|e| {
        StepFailure::msg(format!("cannot read the audit log {}: {e}", path.display()))
    })?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

pub async fn has_annotation(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let path = world.target()?.audit_log.clone().ok_or_else(|| {
        StepFailure::msg(
            "the runner does not know this target's audit log; tag the scenario @needs:audit-log so that it is skipped on such targets",
        )
    })?;
    let namespace = args
        .get("ns")
        .map(str::to_string)
        .unwrap_or_else(|| world.namespace.clone());
    let want = Wanted {
        verb: args.req("verb")?,
        resource: args.req("resource")?,
        namespace: &namespace,
        name: args.req("name")?,
        annotation: args.req("key")?,
        containing: args.req("value")?,
    };
    eventually(Some(args.within().unwrap_or(DEFAULT_WAIT)), async || {
        let log = read_log(&path)?;
        match check(&log, &want) {
            None => Ok(()),
            Some(why) => Err(StepFailure::msg(why)),
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(verb: &str, name: &str, annotations: Value) -> String {
        json!({"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
            "stage": "ResponseComplete", "verb": verb,
            "objectRef": {"resource": "pods", "namespace": "kp-a", "name": name, "apiVersion": "v1"},
            "annotations": annotations})
        .to_string()
    }

    fn wanted<'a>(name: &'a str) -> Wanted<'a> {
        Wanted {
            verb: "create",
            resource: "pods",
            namespace: "kp-a",
            name,
            annotation: "pod-security.kubernetes.io/audit-violations",
            containing: "allowPrivilegeEscalation != false",
        }
    }

    #[test]
    fn finds_the_annotation_on_the_event_of_the_request() {
        let log = [
            "not json at all kp-a web".to_string(),
            event("get", "web", json!({})),
            event(
                "create",
                "web",
                json!({"pod-security.kubernetes.io/audit-violations": "would violate PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false (container \"c\" must set securityContext.allowPrivilegeEscalation=false)"}),
            ),
        ]
        .join("\n");
        assert_eq!(check(&log, &wanted("web")), None);
    }

    #[test]
    fn explains_a_missing_event_or_annotation() {
        let log = event(
            "create",
            "web",
            json!({"pod-security.kubernetes.io/enforce-policy": "privileged:latest"}),
        );
        let why = check(&log, &wanted("web")).unwrap();
        assert!(why.contains("enforce-policy"), "{why}");
        assert!(why.contains("ResponseComplete at level Metadata"), "{why}");
        let why = check(&log, &wanted("db")).unwrap();
        assert!(
            why.starts_with("the audit log has no event for create pods \"db\""),
            "{why}"
        );
        let status = Wanted {
            resource: "pods/status",
            ..wanted("web")
        };
        assert!(check(&log, &status).unwrap().contains("no event"));
    }
}
