//! Then steps: what a scenario expects to observe.

use serde_json::Value;

use super::actions::resolve;
use super::support::{
    eventually, fetch, namespace_for, over_time, parse_documents, send, StepArgs, StepFailure,
    StepResult,
};
use crate::world::KubeWorld;
use crate::{jsonpath, matching};

pub async fn exists(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let res = resolve(world, args.req("kind")?).await?;
    let name = args.req("name")?;
    let ns = namespace_for(world, args.get("ns")).to_string();
    let want = args.req("neg")? == "exists";
    let world = &*world;
    over_time(&args, async || {
        let (obj, _) = fetch(world, &res, Some(&ns), name).await?;
        match (want, obj) {
            (true, Some(_)) | (false, None) => Ok(()),
            (true, None) => Err(StepFailure::msg(format!(
                "{} \"{name}\" does not exist",
                res.kind
            ))),
            (false, Some(o)) => {
                let note = match o
                    .pointer("/metadata/deletionTimestamp")
                    .and_then(Value::as_str)
                {
                    Some(ts) => format!(
                        " (deletionTimestamp {ts}, finalizers {})",
                        o.pointer("/metadata/finalizers").unwrap_or(&Value::Null)
                    ),
                    None => String::new(),
                };
                Err(StepFailure::msg(format!(
                    "{} \"{name}\" still exists{note}",
                    res.kind
                )))
            }
        }
    })
    .await
}

pub async fn object_matches(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let res = resolve(world, args.req("kind")?).await?;
    let name = args.req("name")?;
    let ns = namespace_for(world, args.get("ns")).to_string();
    let docs = parse_documents(args.doc()?)?;
    let [expected] = docs.as_slice() else {
        return Err(StepFailure::msg(
            "the expected object must be exactly one YAML document",
        ));
    };
    let world = &*world;
    over_time(&args, async || {
        let (obj, resp) = fetch(world, &res, Some(&ns), name).await?;
        let obj = obj.ok_or_else(|| {
            StepFailure::msg(format!(
                "{} \"{name}\" does not exist ({})",
                res.kind,
                resp.describe()
            ))
        })?;
        let misses = matching::mismatches(expected, &obj);
        if misses.is_empty() {
            return Ok(());
        }
        let list: Vec<String> = misses.iter().map(|m| m.to_string()).collect();
        Err(StepFailure {
            message: format!(
                "{} \"{name}\" does not match: {}",
                res.kind,
                list.join("; ")
            ),
            diff: Some(matching::diff(expected, &obj)),
        })
    })
    .await
}

/// `equal to`, `not equal to`, `containing`, `matching` (a regular expression).
fn compare(op: &str, actual: &str, expected: &str) -> Result<bool, StepFailure> {
    Ok(match op {
        "equal to" => actual == expected,
        "not equal to" => actual != expected,
        "containing" => actual.contains(expected),
        "matching" => regex::Regex::new(expected)
            .map_err(|e| StepFailure::msg(format!("bad regular expression: {e}")))?
            .is_match(actual),
        other => return Err(StepFailure::msg(format!("unknown comparison '{other}'"))),
    })
}

pub async fn field(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let res = resolve(world, args.req("kind")?).await?;
    let name = args.req("name")?;
    let ns = namespace_for(world, args.get("ns")).to_string();
    let (path, op, value) = (
        args.req("path")?,
        args.req("op")?,
        args.caps.get("value").cloned().unwrap_or_default(),
    );
    let world = &*world;
    over_time(&args, async || {
        let (obj, resp) = fetch(world, &res, Some(&ns), name).await?;
        let obj = obj.ok_or_else(|| {
            StepFailure::msg(format!(
                "{} \"{name}\" does not exist ({})",
                res.kind,
                resp.describe()
            ))
        })?;
        let actual = jsonpath::query_string(&obj, path)?;
        if compare(op, &actual, &value)? {
            Ok(())
        } else {
            Err(StepFailure::msg(format!(
                "{} \"{name}\" {path} is \"{actual}\", expected {op} \"{value}\"",
                res.kind
            )))
        }
    })
    .await
}

fn last(world: &KubeWorld) -> Result<&crate::api::ApiResponse, StepFailure> {
    world
        .last
        .as_ref()
        .ok_or_else(|| StepFailure::msg("no request has been made yet"))
}

pub async fn last_failed(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let resp = last(world)?;
    let code: u16 = args.number("code")?;
    let mut problems = Vec::new();
    if resp.code != code {
        problems.push(format!("code {} instead of {code}", resp.code));
    }
    if let Some(reason) = args.get("reason") {
        if resp.reason() != Some(reason) {
            problems.push(format!(
                "reason {:?} instead of \"{reason}\"",
                resp.reason().unwrap_or("")
            ));
        }
    }
    if let Some(msg) = args.get("msg") {
        if !resp.message().unwrap_or("").contains(msg) {
            problems.push(format!("message does not contain \"{msg}\""));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(StepFailure::msg(format!(
            "the last request answered {} ({})",
            resp.describe(),
            problems.join(", ")
        )))
    }
}

pub async fn last_succeeded(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let resp = last(world)?;
    let ok = match args.get("code") {
        Some(_) => resp.code == args.number::<u16>("code")?,
        None => resp.is_success(),
    };
    if ok {
        Ok(())
    } else {
        Err(StepFailure::msg(format!(
            "the last request answered {}",
            resp.describe()
        )))
    }
}

pub async fn response_body(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let resp = last(world)?;
    let text = args.req("text")?;
    let op = args.req("op")?;
    if op == "matches" {
        let re = regex::Regex::new(text)
            .map_err(|e| StepFailure::msg(format!("bad regular expression: {e}")))?;
        return if re.is_match(&resp.body) {
            Ok(())
        } else {
            let excerpt: String = resp.body.chars().take(2000).collect();
            Err(StepFailure::msg(format!(
                "the response body of {} does not match /{text}/:\n{excerpt}",
                resp.request
            )))
        };
    }
    let want = op == "contains";
    if resp.body.contains(text) == want {
        Ok(())
    } else {
        let excerpt: String = resp.body.chars().take(2000).collect();
        Err(StepFailure::msg(format!(
            "the response body of {} {} \"{text}\":\n{excerpt}",
            resp.request,
            if want { "lacks" } else { "contains" }
        )))
    }
}

pub async fn response_field(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let resp = last(world)?;
    let json = resp
        .json
        .as_ref()
        .ok_or_else(|| StepFailure::msg(format!("the response of {} is not JSON", resp.request)))?;
    let (path, op, value) = (
        args.req("path")?,
        args.req("op")?,
        args.caps.get("value").cloned().unwrap_or_default(),
    );
    let actual = jsonpath::query_string(json, path)?;
    if compare(op, &actual, &value)? {
        Ok(())
    } else {
        Err(StepFailure::msg(format!(
            "the response's {path} is \"{actual}\", expected {op} \"{value}\""
        )))
    }
}

pub async fn response_header(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let resp = last(world)?;
    let name = args.req("header")?;
    let actual = resp
        .headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    match (actual, args.get("value")) {
        (None, _) => Err(StepFailure::msg(format!(
            "the response of {} has no header {name}",
            resp.request
        ))),
        (Some(a), Some(v)) if !a.contains(v) => Err(StepFailure::msg(format!(
            "header {name} is \"{a}\", expected it to contain \"{v}\""
        ))),
        _ => Ok(()),
    }
}

pub async fn count(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let res = resolve(world, args.req("kind")?).await?;
    let ns = namespace_for(world, args.get("ns")).to_string();
    let want: usize = args.number("count")?;
    let mut path = res.collection_path(Some(&ns));
    if let Some(sel) = args.get("sel") {
        path = format!(
            "{path}?{}",
            crate::watch::encode_query(&[("labelSelector", sel.to_string())])
        );
    }
    let world = &*world;
    over_time(&args, async || {
        let resp = send(world, http::Method::GET, &path, None, Vec::new()).await?;
        if !resp.is_success() {
            return Err(StepFailure::msg(format!(
                "listing failed: {}",
                resp.describe()
            )));
        }
        let names: Vec<String> = resp
            .json
            .as_ref()
            .and_then(|j| j.get("items"))
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| {
                        i.pointer("/metadata/name")
                            .and_then(Value::as_str)
                            .map(str::to_string)
                    })
                    .collect()
            })
            .unwrap_or_default();
        if names.len() == want {
            Ok(())
        } else {
            Err(StepFailure::msg(format!(
                "found {} {} ({}), expected {want}",
                names.len(),
                res.plural,
                names.join(", ")
            )))
        }
    })
    .await
}

pub async fn list_size(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let listing = world
        .listing
        .as_ref()
        .ok_or_else(|| StepFailure::msg("no list was made"))?;
    let want: usize = args.number("n")?;
    let (what, names) = if args.get("all").is_some() {
        ("all pages together", &listing.all)
    } else {
        ("the last page", &listing.page)
    };
    let mut distinct = names.clone();
    distinct.sort();
    distinct.dedup();
    if distinct.len() != names.len() {
        return Err(StepFailure::msg(format!(
            "{what} repeat items: {}",
            names.join(", ")
        )));
    }
    if names.len() == want {
        Ok(())
    } else {
        Err(StepFailure::msg(format!(
            "{what} hold {} items ({}), expected {want}",
            names.len(),
            names.join(", ")
        )))
    }
}

pub async fn list_contains(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let listing = world
        .listing
        .as_ref()
        .ok_or_else(|| StepFailure::msg("no list was made"))?;
    let name = args.req("name")?;
    let want = args.req("op")? == "contains";
    if listing.page.iter().any(|n| n == name) == want {
        Ok(())
    } else {
        Err(StepFailure::msg(format!(
            "the last list {} \"{name}\" (items: {})",
            if want { "lacks" } else { "contains" },
            listing.page.join(", ")
        )))
    }
}

pub async fn list_continue(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let listing = world
        .listing
        .as_ref()
        .ok_or_else(|| StepFailure::msg("no list was made"))?;
    let want = args.req("which")? == "a";
    if listing.continue_token.is_some() == want {
        Ok(())
    } else {
        Err(StepFailure::msg(format!(
            "the last list page {} a continue token",
            if want { "has no" } else { "has" }
        )))
    }
}

pub async fn server_version(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let resp = send(world, http::Method::GET, "/version", None, Vec::new()).await?;
    let j = resp.json.clone().ok_or_else(|| {
        StepFailure::msg(format!("/version did not answer JSON: {}", resp.describe()))
    })?;
    let (major, minor) = (args.req("major")?, args.req("minor")?);
    let field = |f: &str| j.get(f).and_then(Value::as_str).unwrap_or("").to_string();
    let git = field("gitVersion");
    // Some distributions report minor as "32+"; the number is what counts.
    let minor_num: String = field("minor")
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    if field("major") == major
        && minor_num == minor
        && git.starts_with(&format!("v{major}.{minor}."))
    {
        Ok(())
    } else {
        Err(StepFailure::msg(format!("the server reports major {:?}, minor {:?}, gitVersion {git:?}; expected {major}.{minor}", field("major"), field("minor"))))
    }
}

pub async fn watch_sees(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let word = args.req("kind")?.to_ascii_lowercase();
    let expected: Vec<String> = args
        .req("events")?
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    let within = args.within().or(Some(std::time::Duration::from_secs(10)));
    let world = &*world;
    let handle = world.watches.get(&word).ok_or_else(|| {
        StepFailure::msg(format!(
            "no watch on {word} was started (use \"When I watch {word} from now\")"
        ))
    })?;
    eventually(within, async || {
        let seen: Vec<_> = handle
            .records()
            .into_iter()
            .filter(|r| r.event != "BOOKMARK" || expected.iter().any(|e| e == "BOOKMARK"))
            .collect();
        let types: Vec<&str> = seen.iter().map(|r| r.event.as_str()).collect();
        let describe = || {
            seen.iter()
                .map(|r| format!("{} {} rv={}", r.event, r.name, r.resource_version))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if types.len() < expected.len() {
            return Err(StepFailure::msg(format!(
                "the watch on {} saw only [{}], expected {}",
                handle.description,
                describe(),
                expected.join(", ")
            )));
        }
        if types != expected {
            return Err(StepFailure::msg(format!(
                "the watch on {} saw [{}], expected exactly {}",
                handle.description,
                describe(),
                expected.join(", ")
            )));
        }
        let mut rvs: Vec<&str> = seen
            .iter()
            .map(|r| r.resource_version.as_str())
            .filter(|r| !r.is_empty())
            .collect();
        let n = rvs.len();
        rvs.sort();
        rvs.dedup();
        if rvs.len() != n {
            return Err(StepFailure::msg(format!(
                "watch events repeat a resourceVersion: [{}]",
                describe()
            )));
        }
        Ok(())
    })
    .await
}

pub async fn event_exists(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let res = resolve(world, args.req("kind")?).await?;
    let name = args.req("name")?.to_string();
    let reason = args.req("reason")?.to_string();
    let msg = args.get("msg").map(str::to_string);
    let world = &*world;
    over_time(&args, async || {
        let events = world.recent_events(usize::MAX).await;
        let object = format!("{}/{}", res.kind, name);
        let hit = events.iter().any(|e| {
            e.object == object
                && e.reason == reason
                && msg.as_ref().is_none_or(|m| e.message.contains(m.as_str()))
        });
        if hit {
            Ok(())
        } else {
            let seen: Vec<String> = events
                .iter()
                .filter(|e| e.object == object)
                .map(|e| format!("{} {}: {}", e.type_, e.reason, e.message))
                .collect();
            Err(StepFailure::msg(format!(
                "no event with reason {reason} for {object} (its events: {})",
                if seen.is_empty() {
                    "none".into()
                } else {
                    seen.join("; ")
                }
            )))
        }
    })
    .await
}

/// No Event in the scenario namespace names the object (now, or throughout `for N seconds`):
/// e.g. a pod no scheduler looked at.
pub async fn no_events(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let res = resolve(world, args.req("kind")?).await?;
    let object = format!("{}/{}", res.kind, args.req("name")?);
    let world = &*world;
    over_time(&args, async || {
        let events = world.recent_events(usize::MAX).await;
        let seen: Vec<String> = events
            .iter()
            .filter(|e| e.object == object)
            .map(|e| format!("{} {}: {}", e.type_, e.reason, e.message))
            .collect();
        if seen.is_empty() {
            Ok(())
        } else {
            Err(StepFailure::msg(format!(
                "{object} has events: {}",
                seen.join("; ")
            )))
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons() {
        assert!(compare("equal to", "a", "a").unwrap());
        assert!(compare("not equal to", "a", "b").unwrap());
        assert!(compare("containing", "abc", "b").unwrap());
        assert!(compare("matching", "v1.32.0", r"^v1\.32\.").unwrap());
        assert!(compare("matching", "x", "(").is_err());
        assert!(compare("frobbing", "x", "y").is_err());
    }
}
