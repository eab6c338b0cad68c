//! The Job's podFailurePolicy and successPolicy rules (upstream `pod_failure_policy.go` and
//! `success_policy.go`).

use std::collections::BTreeSet;

use k8s_openapi::api::batch::v1::{
    PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement, SuccessPolicy,
};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

use super::indexes;

/// What a failed pod means under the pod failure policy.
#[derive(Debug, PartialEq, Eq)]
pub enum FailureAction {
    /// The Job fails at once, with this message.
    FailJob(String),
    /// The failure does not count towards the backoff limit.
    Ignore,
    /// It counts (explicit Count or FailIndex rule, or no rule matched).
    Count,
}

fn matching_container<'a>(
    list: Option<&'a Vec<ContainerStatus>>,
    req: &PodFailurePolicyOnExitCodesRequirement,
) -> Option<(&'a ContainerStatus, i32)> {
    list?.iter().find_map(|cs| {
        let code = cs.state.as_ref()?.terminated.as_ref()?.exit_code;
        if req.container_name.as_deref().is_some_and(|n| n != cs.name) || code == 0 {
            return None;
        }
        let listed = req.values.contains(&code);
        let hit = match req.operator.as_str() {
            "In" => listed,
            "NotIn" => !listed,
            _ => false,
        };
        hit.then_some((cs, code))
    })
}

/// The first rule matching the failed pod decides (`matchPodFailurePolicy`).
pub fn match_failure(policy: Option<&PodFailurePolicy>, pod: &Pod) -> FailureAction {
    let Some(policy) = policy else {
        return FailureAction::Count;
    };
    let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    for (i, rule) in policy.rules.iter().enumerate() {
        let matched: Option<String> = if let Some(req) = &rule.on_exit_codes {
            matching_container(status.container_statuses.as_ref(), req)
                .or_else(|| matching_container(status.init_container_statuses.as_ref(), req))
                .map(|(cs, code)| {
                    format!("Container {} for pod {ns}/{name} failed with exit code {code} matching {} rule at index {i}", cs.name, rule.action)
                })
        } else if let Some(patterns) = &rule.on_pod_conditions {
            status.conditions.iter().flatten().find_map(|c| {
                patterns
                    .iter()
                    .any(|p| p.type_ == c.type_ && p.status == c.status)
                    .then(|| {
                        format!(
                            "Pod {ns}/{name} has condition {} matching {} rule at index {i}",
                            c.type_, rule.action
                        )
                    })
            })
        } else {
            None
        };
        let Some(message) = matched else { continue };
        return match rule.action.as_str() {
            "FailJob" => FailureAction::FailJob(message),
            "Ignore" => FailureAction::Ignore,
            // FailIndex needs backoffLimitPerIndex, which this controller does not implement:
            // the failure is counted like any other.
            _ => FailureAction::Count,
        };
    }
    FailureAction::Count
}

/// Whether the succeeded indexes satisfy a success policy rule; the message names the rule
/// (`matchSuccessPolicy`).
pub fn match_success(
    policy: Option<&SuccessPolicy>,
    completions: i32,
    succeeded: &BTreeSet<i32>,
) -> Option<String> {
    let policy = policy?;
    if succeeded.is_empty() {
        return None;
    }
    for (i, rule) in policy.rules.iter().enumerate() {
        let count = rule.succeeded_count;
        let met = match &rule.succeeded_indexes {
            Some(spec) => {
                let required = indexes::parse(spec, completions);
                if required.is_empty() {
                    continue;
                }
                let contained = required.intersection(succeeded).count();
                contained == required.len() || count.is_some_and(|c| contained as i64 >= c as i64)
            }
            None => count.is_some_and(|c| succeeded.len() as i64 >= c as i64),
        };
        if met {
            return Some(format!("Matched rules at index {i}"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn failed_pod(code: i32, conditions: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "status": {"phase": "Failed", "conditions": conditions, "containerStatuses": [
                {"name": "main", "ready": false, "restartCount": 0, "image": "i", "imageID": "",
                 "state": {"terminated": {"exitCode": code}}}
            ]}
        }))
        .unwrap()
    }

    fn policy(v: serde_json::Value) -> PodFailurePolicy {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn exit_code_rules_in_order() {
        let p = policy(json!({"rules": [
            {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [3]}},
            {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
            {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [42]}},
        ]}));
        assert_eq!(
            match_failure(Some(&p), &failed_pod(3, json!([]))),
            FailureAction::Ignore
        );
        assert_eq!(
            match_failure(Some(&p), &failed_pod(42, json!([]))),
            FailureAction::FailJob("Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 1".into())
        );
        assert_eq!(
            match_failure(Some(&p), &failed_pod(1, json!([]))),
            FailureAction::Count
        );
        assert_eq!(
            match_failure(None, &failed_pod(42, json!([]))),
            FailureAction::Count
        );
    }

    #[test]
    fn pod_condition_rules() {
        let p = policy(json!({"rules": [
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
            {"action": "FailJob", "onPodConditions": [{"type": "ConfigIssue", "status": "True"}]},
        ]}));
        let disrupted = failed_pod(137, json!([{"type": "DisruptionTarget", "status": "True"}]));
        assert_eq!(match_failure(Some(&p), &disrupted), FailureAction::Ignore);
        let broken = failed_pod(1, json!([{"type": "ConfigIssue", "status": "True"}]));
        assert_eq!(
            match_failure(Some(&p), &broken),
            FailureAction::FailJob(
                "Pod ns/p has condition ConfigIssue matching FailJob rule at index 1".into()
            )
        );
    }

    #[test]
    fn success_rules_by_indexes_or_count() {
        let sp: SuccessPolicy = serde_json::from_value(json!({"rules": [
            {"succeededIndexes": "0-2"},
            {"succeededIndexes": "5-9", "succeededCount": 2},
            {"succeededCount": 6},
        ]}))
        .unwrap();
        assert_eq!(match_success(Some(&sp), 10, &[0, 1].into()), None);
        assert_eq!(
            match_success(Some(&sp), 10, &[0, 1, 2].into()).as_deref(),
            Some("Matched rules at index 0")
        );
        assert_eq!(
            match_success(Some(&sp), 10, &[6, 9].into()).as_deref(),
            Some("Matched rules at index 1")
        );
        assert_eq!(
            match_success(Some(&sp), 12, &[0, 1, 3, 4, 10, 11].into()).as_deref(),
            Some("Matched rules at index 2")
        );
        assert_eq!(match_success(None, 10, &[0].into()), None);
    }
}
