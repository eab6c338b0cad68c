//! Noticing that someone else changed the status a node agent reported, so that the agent
//! writes its own view again, as the kubelet's status manager reconciles the API's copy with its
//! cache. The case that matters: the node lifecycle controller marks the pods of a node it lost
//! contact with not Ready; once the node is back, its agent must say Ready again.

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;

/// Whether the API's Ready condition of `pod` contradicts the one this agent last wrote
/// (`written`, a pod status as sent) and changed after it. A copy of the agent's own earlier
/// write, delivered late by the watch, changed before, so it does not count.
pub fn ready_overwritten(written: &Value, pod: &Pod) -> bool {
    let Some(mine) = written
        .get("conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
    else {
        return false;
    };
    let Some(theirs) = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
    else {
        return false;
    };
    if mine["status"].as_str() == Some(theirs.status.as_str()) {
        return false;
    }
    let parse = |v: Option<Value>| -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(v?.as_str()?)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    };
    let mine_at = parse(mine.get("lastTransitionTime").cloned());
    let theirs_at = parse(
        theirs
            .last_transition_time
            .as_ref()
            .and_then(|t| serde_json::to_value(t).ok()),
    );
    match (mine_at, theirs_at) {
        (Some(mine_at), Some(theirs_at)) => theirs_at >= mine_at,
        // Without times to compare, a contradiction is taken as someone else's.
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(status: &str, at: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "status": {"conditions": [{"type": "Ready", "status": status, "lastTransitionTime": at}]}
        }))
        .unwrap()
    }

    fn written(status: &str, at: &str) -> Value {
        json!({"conditions": [{"type": "Ready", "status": status, "lastTransitionTime": at}]})
    }

    #[test]
    fn the_node_controller_marking_the_pod_not_ready_is_noticed() {
        let w = written("True", "2026-01-01T00:00:10Z");
        assert!(ready_overwritten(&w, &pod("False", "2026-01-01T00:01:00Z")));
    }

    #[test]
    fn a_late_copy_of_an_earlier_own_write_is_not() {
        let w = written("True", "2026-01-01T00:00:10Z");
        assert!(!ready_overwritten(
            &w,
            &pod("False", "2026-01-01T00:00:05Z")
        ));
    }

    #[test]
    fn agreement_or_missing_conditions_are_not() {
        let w = written("True", "2026-01-01T00:00:10Z");
        assert!(!ready_overwritten(&w, &pod("True", "2026-01-01T00:00:10Z")));
        assert!(!ready_overwritten(
            &json!({}),
            &pod("False", "2026-01-01T00:01:00Z")
        ));
        let bare: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}})).unwrap();
        assert!(!ready_overwritten(&w, &bare));
    }
}
