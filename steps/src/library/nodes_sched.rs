//! Scheduling and node steps: node annotations (the simulated runtime reads node conditions
//! from them), the node count (scheduler messages name it), and how a workload's pods are
//! spread over topology domains. Node changes record their undo for the scenario's cleanup.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::support::{
    expect_success, namespace_for, over_time, send, StepArgs, StepFailure, StepResult,
};
use crate::world::KubeWorld;

async fn list_items(world: &KubeWorld, path: &str, what: &str) -> Result<Vec<Value>, StepFailure> {
    let resp = send(world, http::Method::GET, path, None, Vec::new()).await?;
    resp.json
        .as_ref()
        .filter(|_| resp.is_success())
        .and_then(|j| j.get("items"))
        .and_then(Value::as_array)
        .cloned()
        .ok_or_else(|| StepFailure::msg(format!("listing {what}: {}", resp.describe())))
}

/// `kubectl annotate node n k=v` (and `k-` to remove). The annotation's old value is put back
/// after the scenario, so a node told to report pressure or NotReady recovers even when the
/// scenario fails half-way.
pub async fn annotate(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let name = args.req("node")?.to_string();
    let key = args.req("key")?.to_string();
    let value = match args.get("remove") {
        Some(_) => Value::Null,
        None => json!(args.caps.get("value").cloned().unwrap_or_default()),
    };
    let path = format!("/api/v1/nodes/{name}");
    let resp = send(world, http::Method::GET, &path, None, Vec::new()).await?;
    let node = resp
        .json
        .clone()
        .filter(|_| resp.is_success())
        .ok_or_else(|| StepFailure::msg(format!("reading node \"{name}\": {}", resp.describe())))?;
    let was = node
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(&key))
        .cloned()
        .unwrap_or(Value::Null);
    world.restore_after(
        &path,
        json!({"metadata": {"annotations": {key.clone(): was}}}),
    );
    let patch = json!({"metadata": {"annotations": {key: value}}});
    let resp = send(
        world,
        http::Method::PATCH,
        &path,
        Some("application/merge-patch+json"),
        serde_json::to_vec(&patch)?,
    )
    .await?;
    let outcome = expect_success(&args, &resp);
    world.last = Some(resp);
    outcome
}

/// Keeps the number of Node objects, as the scheduler counts them in "0/N nodes are available".
pub async fn remember_node_count(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let nodes = list_items(world, "/api/v1/nodes", "nodes").await?;
    world
        .vars
        .insert(args.req("var")?.to_string(), nodes.len().to_string());
    Ok(())
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// Pods per topology domain (the values of node label `key`), largest first. Every domain a
/// node offers is listed, empty ones as 0, so "all on one node" cannot pass for an even spread.
/// Only bound pods that are not being deleted count.
pub fn spread_counts(pods: &[Value], nodes: &[Value], key: &str) -> Result<Vec<usize>, String> {
    let mut domain_of: BTreeMap<&str, &str> = BTreeMap::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for n in nodes {
        if let Some(d) = n
            .pointer("/metadata/labels")
            .and_then(|l| l.get(key))
            .and_then(Value::as_str)
        {
            domain_of.insert(str_at(n, "/metadata/name"), d);
            counts.entry(d).or_default();
        }
    }
    for p in pods {
        let node = str_at(p, "/spec/nodeName");
        if node.is_empty() || p.pointer("/metadata/deletionTimestamp").is_some() {
            continue;
        }
        let d = domain_of.get(node).ok_or_else(|| {
            format!(
                "pod {} runs on node {node}, which has no label \"{key}\"",
                str_at(p, "/metadata/name")
            )
        })?;
        *counts.entry(d).or_default() += 1;
    }
    let mut out: Vec<usize> = counts.into_values().collect();
    out.sort_unstable_by(|a, b| b.cmp(a));
    Ok(out)
}

/// `"3, 2,2"` → `[3, 2, 2]`, largest first as [`spread_counts`] gives them.
pub fn parse_counts(raw: &str) -> Result<Vec<usize>, String> {
    let mut out = raw
        .split(',')
        .map(|c| {
            c.trim()
                .parse::<usize>()
                .map_err(|_| format!("\"{raw}\" is not a list of counts such as \"2, 2, 2\""))
        })
        .collect::<Result<Vec<_>, _>>()?;
    out.sort_unstable_by(|a, b| b.cmp(a));
    Ok(out)
}

fn join(counts: &[usize]) -> String {
    counts
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The scenario's bound pods matching a selector are spread over the domains of a node label
/// exactly as given (largest first).
pub async fn spread(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let sel = args.req("sel")?.to_string();
    let key = args.req("key")?.to_string();
    let want = parse_counts(args.req("counts")?)?;
    let ns = namespace_for(world, args.get("ns")).to_string();
    let mut pods_path = format!("/api/v1/namespaces/{ns}/pods");
    if !sel.is_empty() {
        pods_path = format!(
            "{pods_path}?{}",
            crate::watch::encode_query(&[("labelSelector", sel.clone())])
        );
    }
    let world = &*world;
    over_time(&args, async || {
        let nodes = list_items(world, "/api/v1/nodes", "nodes").await?;
        let pods = list_items(world, &pods_path, "pods").await?;
        let got = spread_counts(&pods, &nodes, &key).map_err(StepFailure::msg)?;
        if got == want {
            Ok(())
        } else {
            let placed: Vec<String> = pods
                .iter()
                .map(|p| {
                    let node = str_at(p, "/spec/nodeName");
                    format!(
                        "{}@{}",
                        str_at(p, "/metadata/name"),
                        if node.is_empty() { "-" } else { node }
                    )
                })
                .collect();
            Err(StepFailure::msg(format!(
                "pods with label \"{sel}\" per \"{key}\" domain are [{}], expected [{}] (pods: {})",
                join(&got),
                join(&want),
                placed.join(", ")
            )))
        }
    })
    .await
}

/// The first (by name) of the scenario's pods matching a selector that is in a phase and not
/// being deleted, e.g. the one replica the scheduler could not place.
pub fn pick_pod_in_phase<'a>(pods: &'a [Value], phase: &str) -> Option<&'a str> {
    let mut names: Vec<&str> = pods
        .iter()
        .filter(|p| {
            str_at(p, "/status/phase") == phase
                && p.pointer("/metadata/deletionTimestamp").is_none()
        })
        .map(|p| str_at(p, "/metadata/name"))
        .collect();
    names.sort_unstable();
    names.first().copied()
}

pub async fn remember_pod_in_phase(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let sel = args.req("sel")?.to_string();
    let phase = args.req("phase")?.to_string();
    let ns = namespace_for(world, args.get("ns")).to_string();
    let mut path = format!("/api/v1/namespaces/{ns}/pods");
    if !sel.is_empty() {
        path = format!(
            "{path}?{}",
            crate::watch::encode_query(&[("labelSelector", sel.clone())])
        );
    }
    let pods = list_items(world, &path, "pods").await?;
    let name = pick_pod_in_phase(&pods, &phase).ok_or_else(|| {
        StepFailure::msg(format!(
            "none of the {} pods with label \"{sel}\" is in phase {phase}",
            pods.len()
        ))
    })?;
    world
        .vars
        .insert(args.req("var")?.to_string(), name.to_string());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, zone: Option<&str>) -> Value {
        let mut labels = json!({"kubernetes.io/hostname": name});
        if let Some(z) = zone {
            labels["zone"] = json!(z);
        }
        json!({"metadata": {"name": name, "labels": labels}})
    }

    fn pod(name: &str, node: &str) -> Value {
        json!({"metadata": {"name": name}, "spec": {"nodeName": node}})
    }

    #[test]
    fn spread_counts_every_domain_largest_first() {
        let nodes = vec![
            node("n0", Some("a")),
            node("n1", Some("b")),
            node("n2", Some("b")),
            node("n3", None),
        ];
        let pods = vec![
            pod("p0", "n0"),
            pod("p1", "n1"),
            pod("p2", "n2"),
            pod("pending", ""),
            json!({"metadata": {"name": "leaving", "deletionTimestamp": "2026-01-01T00:00:00Z"}, "spec": {"nodeName": "n0"}}),
        ];
        assert_eq!(spread_counts(&pods, &nodes, "zone").unwrap(), vec![2, 1]);
        assert_eq!(
            spread_counts(&pods[..1], &nodes, "kubernetes.io/hostname").unwrap(),
            vec![1, 0, 0, 0]
        );
        let err = spread_counts(&[pod("p", "n3")], &nodes, "zone").unwrap_err();
        assert!(err.contains("n3") && err.contains("\"zone\""), "{err}");
        assert!(spread_counts(&[pod("p", "ghost")], &nodes, "zone").is_err());
    }

    #[test]
    fn picks_the_first_pod_in_the_phase_not_being_deleted() {
        let p = |name: &str, phase: &str, leaving: bool| {
            let mut v = json!({"metadata": {"name": name}, "status": {"phase": phase}});
            if leaving {
                v["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
            }
            v
        };
        let pods = vec![
            p("web-c", "Pending", false),
            p("web-a", "Pending", true),
            p("web-b", "Running", false),
            p("web-d", "Pending", false),
        ];
        assert_eq!(pick_pod_in_phase(&pods, "Pending"), Some("web-c"));
        assert_eq!(pick_pod_in_phase(&pods, "Running"), Some("web-b"));
        assert_eq!(pick_pod_in_phase(&pods, "Failed"), None);
    }

    #[test]
    fn counts_parse_in_any_order_and_reject_garbage() {
        assert_eq!(parse_counts("2, 3,2").unwrap(), vec![3, 2, 2]);
        assert_eq!(parse_counts("0").unwrap(), vec![0]);
        assert!(parse_counts("2, x").unwrap_err().contains("2, 2, 2"));
        assert!(parse_counts("").is_err());
    }
}
