//! Container logs: the `pods/log` assertion, and the log excerpts a failing scenario's report
//! carries beside its Events.

use kubeproof_report::LogExcerpt;
use serde_json::Value;

use crate::library::support::{namespace_for, over_time, send, StepArgs, StepFailure, StepResult};
use crate::watch::encode_query;
use crate::world::KubeWorld;

/// Lines of each container's log a failure report keeps.
const EXCERPT_LINES: u32 = 20;
/// Containers whose logs a failure report includes at most.
const EXCERPT_CONTAINERS: usize = 6;

fn log_path(
    ns: &str,
    pod: &str,
    container: Option<&str>,
    previous: bool,
    tail: Option<u32>,
) -> String {
    let mut query = Vec::new();
    if let Some(c) = container {
        query.push(("container", c.to_string()));
    }
    if previous {
        query.push(("previous", "true".to_string()));
    }
    if let Some(n) = tail {
        query.push(("tailLines", n.to_string()));
    }
    let base = format!("/api/v1/namespaces/{ns}/pods/{pod}/log");
    if query.is_empty() {
        base
    } else {
        format!("{base}?{}", encode_query(&query))
    }
}

/// `the logs of pod "p" [container "c"] [(previous)] contain|do not contain "text"`.
pub async fn pod_logs(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let pod = args.req("name")?.to_string();
    let ns = namespace_for(world, args.get("ns")).to_string();
    let container = args.get("container").map(str::to_string);
    let previous = args.get("previous").is_some();
    let negated = args.get("neg").is_some();
    let text = args.req("text")?.replace("\\\"", "\"");
    let path = log_path(&ns, &pod, container.as_deref(), previous, None);
    let world = &*world;
    over_time(&args, async || {
        let resp = send(world, http::Method::GET, &path, None, Vec::new()).await?;
        if !resp.is_success() {
            return Err(StepFailure::msg(format!(
                "cannot read the logs of pod \"{pod}\": {}",
                resp.describe()
            )));
        }
        let found = resp.body.contains(&text);
        if found != negated {
            return Ok(());
        }
        let tail: Vec<&str> = resp.body.lines().rev().take(10).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        Err(StepFailure::msg(format!(
            "the logs of pod \"{pod}\" {} \"{text}\" (last lines: {})",
            if negated { "contain" } else { "do not contain" },
            if tail.is_empty() {
                "none".into()
            } else {
                tail.join(" | ")
            }
        )))
    })
    .await
}

/// The last lines of the scenario namespace's containers, for a failure report: containers that
/// are not ready or have restarted come first, as they are the likely culprits.
pub async fn excerpts(world: &KubeWorld) -> Vec<LogExcerpt> {
    if world.target.is_none() || world.namespace.is_empty() {
        return Vec::new();
    }
    let path = format!("/api/v1/namespaces/{}/pods", world.namespace);
    let Ok(resp) = send(world, http::Method::GET, &path, None, Vec::new()).await else {
        return Vec::new();
    };
    let pods = resp
        .json
        .as_ref()
        .and_then(|j| j.get("items"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut candidates: Vec<(bool, String, String)> = Vec::new();
    for pod in &pods {
        let Some(name) = pod.pointer("/metadata/name").and_then(Value::as_str) else {
            continue;
        };
        for status in pod
            .pointer("/status/containerStatuses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            // Only containers that have run have logs.
            let ran = status.pointer("/state/running").is_some()
                || status.pointer("/state/terminated").is_some()
                || status.pointer("/lastState/terminated").is_some();
            if !ran {
                continue;
            }
            let healthy = status["ready"] == true && status["restartCount"] == 0;
            let container = status["name"].as_str().unwrap_or_default().to_string();
            candidates.push((healthy, name.to_string(), container));
        }
    }
    candidates.sort();
    let mut out = Vec::new();
    for (_, pod, container) in candidates.into_iter().take(EXCERPT_CONTAINERS) {
        let path = log_path(
            &world.namespace,
            &pod,
            Some(&container),
            false,
            Some(EXCERPT_LINES),
        );
        if let Ok(resp) = send(world, http::Method::GET, &path, None, Vec::new()).await {
            if resp.is_success() && !resp.body.is_empty() {
                out.push(LogExcerpt {
                    pod,
                    container,
                    text: resp.body,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_paths_carry_only_the_options_given() {
        assert_eq!(
            log_path("ns", "p", None, false, None),
            "/api/v1/namespaces/ns/pods/p/log"
        );
        let p = log_path("ns", "p", Some("app"), true, Some(20));
        assert!(p.starts_with("/api/v1/namespaces/ns/pods/p/log?"), "{p}");
        assert!(p.contains("container=app"), "{p}");
        assert!(p.contains("previous=true"), "{p}");
        assert!(p.contains("tailLines=20"), "{p}");
    }
}
