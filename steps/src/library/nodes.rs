//! Node steps: cordon, taints, labels, picking a node. Nodes are shared by every scenario, so
//! each change records how to undo it and the scenario's cleanup restores the node.

use serde_json::{json, Value};

use super::support::{expect_success, send, StepArgs, StepFailure, StepResult};
use crate::world::KubeWorld;

/// A taint as written in steps and by kubectl: `key=value:Effect`, `key:Effect`, or (to
/// remove every effect of a key) `key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaintSpec {
    pub key: String,
    pub value: Option<String>,
    pub effect: Option<String>,
}

const EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];

pub fn parse_taint(raw: &str) -> Result<TaintSpec, String> {
    let (kv, effect) = match raw.rsplit_once(':') {
        Some((kv, e)) => {
            if !EFFECTS.contains(&e) {
                return Err(format!(
                    "taint \"{raw}\": effect \"{e}\" is not one of {}",
                    EFFECTS.join(", ")
                ));
            }
            (kv, Some(e.to_string()))
        }
        None => (raw, None),
    };
    let (key, value) = match kv.split_once('=') {
        Some((k, v)) => (k, Some(v.to_string())),
        None => (kv, None),
    };
    if key.is_empty() {
        return Err(format!(
            "taint \"{raw}\" has no key (write key=value:Effect)"
        ));
    }
    Ok(TaintSpec {
        key: key.to_string(),
        value,
        effect,
    })
}

/// The node's taints after adding (replacing the same key and effect, as kubectl does) or
/// removing (by key, and by effect when given) `t`.
pub fn change_taints(current: &[Value], add: bool, t: &TaintSpec) -> Result<Vec<Value>, String> {
    let same = |x: &Value| {
        x["key"] == t.key.as_str() && t.effect.as_deref().is_none_or(|e| x["effect"] == e)
    };
    let mut out: Vec<Value> = current.iter().filter(|x| !same(x)).cloned().collect();
    if add {
        let effect = t.effect.as_deref().ok_or_else(|| {
            format!(
                "adding taint \"{}\" needs an effect (key=value:Effect)",
                t.key
            )
        })?;
        let mut taint = json!({"key": t.key, "effect": effect});
        if let Some(v) = &t.value {
            taint["value"] = json!(v);
        }
        out.push(taint);
    } else if out.len() == current.len() {
        return Err(format!("the node has no taint \"{}\" to remove", t.key));
    }
    Ok(out)
}

async fn get_node(world: &KubeWorld, name: &str) -> Result<Value, StepFailure> {
    let resp = send(
        world,
        http::Method::GET,
        &format!("/api/v1/nodes/{name}"),
        None,
        Vec::new(),
    )
    .await?;
    resp.json
        .clone()
        .filter(|_| resp.is_success())
        .ok_or_else(|| StepFailure::msg(format!("reading node \"{name}\": {}", resp.describe())))
}

/// Merge-patches a node, first recording `undo` (a merge patch restoring what this changes)
/// for the scenario's cleanup.
async fn patch_node(
    world: &mut KubeWorld,
    args: &StepArgs,
    name: &str,
    patch: Value,
    undo: Value,
) -> StepResult {
    let path = format!("/api/v1/nodes/{name}");
    world.restore_after(&path, undo);
    let resp = send(
        world,
        http::Method::PATCH,
        &path,
        Some("application/merge-patch+json"),
        serde_json::to_vec(&patch)?,
    )
    .await?;
    let outcome = expect_success(args, &resp);
    world.last = Some(resp);
    outcome
}

/// `kubectl cordon|uncordon`.
pub async fn cordon(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let name = args.req("node")?.to_string();
    let node = get_node(world, &name).await?;
    let was = node
        .pointer("/spec/unschedulable")
        .cloned()
        .unwrap_or(Value::Null);
    let on = args.req("op")? == "cordon";
    patch_node(
        world,
        &args,
        &name,
        json!({"spec": {"unschedulable": if on { json!(true) } else { Value::Null }}}),
        json!({"spec": {"unschedulable": was}}),
    )
    .await
}

/// `kubectl taint node n key=value:Effect` and `... key:Effect-`.
pub async fn taint(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let name = args.req("node")?.to_string();
    let spec = parse_taint(args.req("taint")?)?;
    let add = args.req("op")? == "add";
    // The node's agent and the node lifecycle controller write the same object; like kubectl,
    // re-read and try again when one of them got in between.
    let mut attempt = 0;
    loop {
        attempt += 1;
        let node = get_node(world, &name).await?;
        let current = node
            .pointer("/spec/taints")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let next = change_taints(&current, add, &spec)
            .map_err(|e| StepFailure::msg(format!("node \"{name}\": {e}")))?;
        // Merge patches replace lists whole; the resourceVersion makes a concurrent change (the
        // node lifecycle controller's own taints) fail instead of being lost.
        let rv = node.pointer("/metadata/resourceVersion").cloned();
        let undo = if current.is_empty() {
            Value::Null
        } else {
            json!(current)
        };
        let outcome = patch_node(
            world,
            &args,
            &name,
            json!({"metadata": {"resourceVersion": rv}, "spec": {"taints": next}}),
            json!({"spec": {"taints": undo}}),
        )
        .await;
        let conflict = world.last.as_ref().is_some_and(|r| r.code == 409);
        if !(conflict && attempt < TAINT_ATTEMPTS) {
            return outcome;
        }
        // Nothing changed: the next attempt records its own undo.
        world.restore.pop();
    }
}

/// How often a taint change is retried after a write conflict (kubectl retries too).
const TAINT_ATTEMPTS: u32 = 5;

/// `kubectl label node n k=v` (and `k-` to remove).
pub async fn label(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let name = args.req("node")?.to_string();
    let key = args.req("key")?.to_string();
    // `k=` sets an empty value; only `k-` removes the label.
    let value = match args.get("remove") {
        Some(_) => Value::Null,
        None => json!(args.caps.get("value").cloned().unwrap_or_default()),
    };
    let node = get_node(world, &name).await?;
    let was = node
        .pointer("/metadata/labels")
        .and_then(|l| l.get(&key))
        .cloned()
        .unwrap_or(Value::Null);
    patch_node(
        world,
        &args,
        &name,
        json!({"metadata": {"labels": {key.clone(): value}}}),
        json!({"metadata": {"labels": {key: was}}}),
    )
    .await
}

fn node_is_ready(node: &Value) -> bool {
    node.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// The first (by name) Ready, schedulable node not in `except`.
pub fn pick_node<'a>(nodes: &'a [Value], except: &[String]) -> Option<&'a Value> {
    let mut ok: Vec<&Value> = nodes
        .iter()
        .filter(|n| node_is_ready(n) && n.pointer("/spec/unschedulable") != Some(&json!(true)))
        .filter(|n| {
            let name = n
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            !except.iter().any(|e| e == name)
        })
        .collect();
    ok.sort_by_key(|n| {
        n.pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
    });
    ok.first().copied()
}

pub async fn remember_node(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let resp = send(world, http::Method::GET, "/api/v1/nodes", None, Vec::new()).await?;
    let nodes = resp
        .json
        .as_ref()
        .filter(|_| resp.is_success())
        .and_then(|j| j.get("items"))
        .and_then(Value::as_array)
        .cloned()
        .ok_or_else(|| StepFailure::msg(format!("listing nodes: {}", resp.describe())))?;
    let except = args
        .get("except")
        .map(super::support::parse_groups)
        .unwrap_or_default();
    let node = pick_node(&nodes, &except).ok_or_else(|| {
        StepFailure::msg(format!(
            "none of the {} nodes is Ready and schedulable (excluding [{}])",
            nodes.len(),
            except.join(", ")
        ))
    })?;
    let name = node
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    world.vars.insert(args.req("var")?.to_string(), name);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taints_parse_like_kubectl() {
        assert_eq!(
            parse_taint("dedicated=gpu:NoSchedule").unwrap(),
            TaintSpec {
                key: "dedicated".into(),
                value: Some("gpu".into()),
                effect: Some("NoSchedule".into())
            }
        );
        let bare = parse_taint("example.com/maint:NoExecute").unwrap();
        assert_eq!(bare.key, "example.com/maint");
        assert_eq!(bare.value, None);
        assert_eq!(parse_taint("k").unwrap().effect, None);
        assert!(parse_taint("k=v:Sometimes")
            .unwrap_err()
            .contains("Sometimes"));
        assert!(parse_taint("=v:NoSchedule").is_err());
    }

    #[test]
    fn taints_are_added_replaced_and_removed() {
        let cur = vec![
            json!({"key": "a", "value": "1", "effect": "NoSchedule"}),
            json!({"key": "a", "effect": "NoExecute"}),
        ];
        let added = change_taints(&cur, true, &parse_taint("a=2:NoSchedule").unwrap()).unwrap();
        assert_eq!(added.len(), 2);
        assert_eq!(
            added[1],
            json!({"key": "a", "value": "2", "effect": "NoSchedule"})
        );
        let one = change_taints(&cur, false, &parse_taint("a:NoExecute").unwrap()).unwrap();
        assert_eq!(one, vec![cur[0].clone()]);
        assert!(change_taints(&cur, false, &parse_taint("a").unwrap())
            .unwrap()
            .is_empty());
        assert!(change_taints(&cur, false, &parse_taint("b").unwrap()).is_err());
        assert!(change_taints(&cur, true, &parse_taint("b=1").unwrap()).is_err());
    }

    #[test]
    fn picks_the_first_ready_schedulable_node() {
        let ready = |n: &str, cordoned: bool| {
            json!({"metadata": {"name": n}, "spec": {"unschedulable": cordoned},
                   "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
        };
        let nodes = vec![
            ready("node-2", false),
            ready("node-0", true),
            json!({"metadata": {"name": "node-1"}, "status": {"conditions": [{"type": "Ready", "status": "False"}]}}),
            ready("node-3", false),
        ];
        let name =
            |v: Option<&Value>| v.map(|n| n["metadata"]["name"].as_str().unwrap().to_string());
        assert_eq!(name(pick_node(&nodes, &[])), Some("node-2".into()));
        assert_eq!(
            name(pick_node(&nodes, &["node-2".into()])),
            Some("node-3".into())
        );
        assert_eq!(name(pick_node(&nodes[..3], &["node-2".into()])), None);
    }
}
