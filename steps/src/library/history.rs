//! The store's history: compacting it on demand (only on a cluster the runner started, as a
//! real one compacts every 5 minutes on its own) and checking how a watch from before the
//! compaction is refused: an ERROR event carrying a `Status` (410 `Expired`, "too old resource
//! version"), after which the client has to list again.

use serde_json::Value;

use super::raw;
use super::support::{StepArgs, StepFailure, StepResult};
use crate::world::KubeWorld;

pub async fn compact(world: &mut KubeWorld, _args: StepArgs) -> StepResult {
    let history = world.target()?.history.clone().ok_or_else(|| {
        StepFailure::msg(
            "the runner cannot compact this target's storage history; tag the scenario @needs:compaction-control so that it is skipped on such targets",
        )
    })?;
    let revision = history.compact().await?;
    world
        .vars
        .insert("compacted_revision".into(), revision.to_string());
    Ok(())
}

/// What an ERROR event of a watch stream must carry.
#[derive(Debug, PartialEq)]
struct ExpectedError<'a> {
    code: u64,
    reason: &'a str,
    message: Option<&'a str>,
}

/// Why the watch events lack the expected ERROR, or `None` when one matches.
fn error_mismatch(events: &[Value], want: &ExpectedError<'_>) -> Option<String> {
    let errors: Vec<&Value> = events
        .iter()
        .filter(|e| raw::event_type(e) == "ERROR")
        .collect();
    if errors.is_empty() {
        return Some(format!(
            "the watch delivered no ERROR event ({})",
            raw::summary(events)
        ));
    }
    let matches = |e: &&Value| {
        let status = e.get("object").unwrap_or(&Value::Null);
        status.get("kind").and_then(Value::as_str) == Some("Status")
            && status.get("code").and_then(Value::as_u64) == Some(want.code)
            && status.get("reason").and_then(Value::as_str) == Some(want.reason)
            && want.message.is_none_or(|m| {
                status
                    .get("message")
                    .and_then(Value::as_str)
                    .is_some_and(|got| got.contains(m))
            })
    };
    if errors.iter().any(matches) {
        return None;
    }
    let seen: Vec<String> = errors
        .iter()
        .map(|e| e.get("object").map(Value::to_string).unwrap_or_default())
        .collect();
    Some(format!(
        "no ERROR event carries a Status with code {} and reason {}{}; got {}",
        want.code,
        want.reason,
        want.message
            .map(|m| format!(" and a message containing \"{m}\""))
            .unwrap_or_default(),
        seen.join(", ")
    ))
}

pub async fn watch_error(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let resp = world
        .last
        .as_ref()
        .ok_or_else(|| StepFailure::msg("no request has been made yet"))?;
    let events = raw::watch_events(resp)?;
    let want = ExpectedError {
        code: args.number("code")?,
        reason: args.req("reason")?,
        message: args.get("msg"),
    };
    match error_mismatch(&events, &want) {
        None => Ok(()),
        Some(why) => Err(StepFailure::msg(format!("{}: {why}", resp.request))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn expired(message: &str) -> Value {
        json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": message, "reason": "Expired", "code": 410}})
    }

    #[test]
    fn an_expired_error_event_matches_code_reason_and_message() {
        let want = ExpectedError {
            code: 410,
            reason: "Expired",
            message: Some("too old resource version"),
        };
        let events = vec![expired("too old resource version: 5 (20)")];
        assert_eq!(error_mismatch(&events, &want), None);
        let without_message = ExpectedError {
            message: None,
            ..want
        };
        assert_eq!(error_mismatch(&events, &without_message), None);
    }

    #[test]
    fn other_events_and_other_statuses_do_not_match() {
        let want = ExpectedError {
            code: 410,
            reason: "Expired",
            message: Some("too old resource version"),
        };
        let added = json!({"type": "ADDED", "object": {"kind": "ConfigMap"}});
        let why = error_mismatch(std::slice::from_ref(&added), &want).unwrap();
        assert!(why.contains("no ERROR event (ADDED)"), "{why}");
        let internal = json!({"type": "ERROR", "object": {"kind": "Status", "code": 500, "reason": "InternalError", "message": "boom"}});
        let why = error_mismatch(&[added, internal], &want).unwrap();
        assert!(why.contains("code 410 and reason Expired"), "{why}");
        assert!(why.contains("InternalError"), "{why}");
        let why = error_mismatch(&[expired("gone")], &want).unwrap();
        assert!(why.contains("\"too old resource version\""), "{why}");
    }
}
