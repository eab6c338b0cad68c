//! The order in which a watch saw named objects change: what StatefulSets promise (pods
//! removed from the highest ordinal down) is an order of events, not a state to poll for.

use std::time::Duration;

use super::support::{eventually, StepArgs, StepFailure, StepResult};
use crate::watch::WatchRecord;
use crate::world::KubeWorld;

/// The names in the order their first `event` arrived.
fn first_seen(records: &[WatchRecord], event: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for r in records.iter().filter(|r| r.event == event) {
        if !names.contains(&r.name) {
            names.push(r.name.clone());
        }
    }
    names
}

/// Whether `expected` were seen, in that order, and no other name of the list came between:
/// names the list does not mention are ignored.
fn judge(seen: &[String], expected: &[String]) -> Result<(), String> {
    let relevant: Vec<&String> = seen.iter().filter(|n| expected.contains(n)).collect();
    if relevant.len() < expected.len() {
        return Err(format!(
            "saw only [{}] of [{}]",
            join(&relevant),
            expected.join(", ")
        ));
    }
    if relevant.iter().zip(expected).any(|(a, b)| *a != b) {
        return Err(format!(
            "saw [{}], expected the order [{}]",
            join(&relevant),
            expected.join(", ")
        ));
    }
    Ok(())
}

fn join(names: &[&String]) -> String {
    names
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

pub async fn watch_order(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let word = args.req("kind")?.to_ascii_lowercase();
    let event = args.req("event")?.to_string();
    let expected: Vec<String> = args
        .req("names")?
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let within = args.within().or(Some(Duration::from_secs(10)));
    let world = &*world;
    let handle = world.watches.get(&word).ok_or_else(|| {
        StepFailure::msg(format!(
            "no watch on {word} was started (use \"When I watch {word} from now\")"
        ))
    })?;
    eventually(within, async || {
        let seen = first_seen(&handle.records(), &event);
        judge(&seen, &expected).map_err(|why| {
            StepFailure::msg(format!(
                "the watch on {}: {event} events {why}",
                handle.description
            ))
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(event: &str, name: &str) -> WatchRecord {
        WatchRecord {
            event: event.into(),
            name: name.into(),
            resource_version: String::new(),
            code: None,
        }
    }

    fn names(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn the_first_event_of_each_name_sets_the_order() {
        let records = vec![
            rec("MODIFIED", "web-0"),
            rec("DELETED", "web-2"),
            rec("ADDED", "web-2"),
            rec("DELETED", "web-1"),
            rec("DELETED", "web-2"),
            rec("DELETED", "web-0"),
        ];
        let seen = first_seen(&records, "DELETED");
        assert_eq!(seen, names(&["web-2", "web-1", "web-0"]));
        assert!(judge(&seen, &names(&["web-2", "web-1", "web-0"])).is_ok());
        assert!(judge(&seen, &names(&["web-2", "web-0"])).is_ok());
        let wrong = judge(&seen, &names(&["web-0", "web-1"])).unwrap_err();
        assert!(wrong.contains("expected the order"), "{wrong}");
        let short = judge(&seen, &names(&["web-2", "web-3"])).unwrap_err();
        assert!(short.starts_with("saw only [web-2]"), "{short}");
    }
}
