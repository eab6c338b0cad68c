//! Workload steps: images, rollouts (restart, pause, resume, undo), picking pods, eviction and
//! counting pods by phase or readiness. They speak only the API, as kubectl does.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::actions::resolve;
use super::support::{
    expect_success, namespace_for, over_time, send, StepArgs, StepFailure, StepResult,
};
use crate::api::{self, ApiResponse};
use crate::kinds::ResourceInfo;
use crate::world::KubeWorld;

const REVISION: &str = "deployment.kubernetes.io/revision";
const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

async fn patch_object(
    world: &mut KubeWorld,
    args: &StepArgs,
    res: &ResourceInfo,
    name: &str,
    content_type: &str,
    body: &Value,
) -> StepResult {
    let ns = namespace_for(world, args.get("ns")).to_string();
    let resp = send(
        world,
        http::Method::PATCH,
        &res.object_path(Some(&ns), name),
        Some(content_type),
        serde_json::to_vec(body)?,
    )
    .await?;
    let outcome = expect_success(args, &resp);
    world.last = Some(resp);
    outcome
}

/// `kubectl set image`: a strategic merge patch keyed by container name.
pub async fn set_image(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let res = resolve(world, args.req("kind")?).await?;
    let body = json!({"spec": {"template": {"spec": {"containers": [
        {"name": args.req("container")?, "image": args.req("image")?}
    ]}}}});
    let name = args.req("name")?.to_string();
    patch_object(
        world,
        &args,
        &res,
        &name,
        "application/strategic-merge-patch+json",
        &body,
    )
    .await
}

/// `kubectl rollout restart|pause|resume`.
pub async fn rollout(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let res = resolve(world, args.req("kind")?).await?;
    let body = match args.req("op")? {
        "restart" => {
            json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)}}}}})
        }
        "pause" => json!({"spec": {"paused": true}}),
        _ => json!({"spec": {"paused": false}}),
    };
    let name = args.req("name")?.to_string();
    patch_object(
        world,
        &args,
        &res,
        &name,
        "application/merge-patch+json",
        &body,
    )
    .await
}

fn revision_of(obj: &Value) -> Option<i64> {
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(REVISION))
        .and_then(Value::as_str)
        .and_then(|r| r.parse().ok())
}

fn controlled_by(obj: &Value, uid: &str) -> bool {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| {
            refs.iter()
                .any(|r| r["uid"] == uid && r["controller"] == true)
        })
}

/// The ReplicaSet to roll back to, as `kubectl rollout undo` picks it: the given revision, or
/// else the highest revision below the newest one.
fn rollback_source(replica_sets: &[Value], to_revision: Option<i64>) -> Result<&Value, String> {
    let mut by_rev: Vec<(i64, &Value)> = replica_sets
        .iter()
        .filter_map(|rs| revision_of(rs).map(|r| (r, rs)))
        .collect();
    by_rev.sort_by_key(|(r, _)| *r);
    match to_revision {
        Some(want) => by_rev
            .iter()
            .find(|(r, _)| *r == want)
            .map(|(_, rs)| *rs)
            .ok_or_else(|| format!("revision {want} not found")),
        None => {
            let revisions: Vec<i64> = by_rev.iter().map(|(r, _)| *r).collect();
            match by_rev.len() {
                0 | 1 => Err(format!(
                    "no rollout history to undo to (revisions: {revisions:?})"
                )),
                n => Ok(by_rev[n - 2].1),
            }
        }
    }
}

/// A ReplicaSet's pod template as the Deployment should carry it: without the
/// `pod-template-hash` label the controller adds.
fn template_for_rollback(rs: &Value) -> Option<Value> {
    let mut tmpl = rs.pointer("/spec/template")?.clone();
    if let Some(labels) = tmpl
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove("pod-template-hash");
    }
    Some(tmpl)
}

/// `kubectl rollout undo deployment/x [--to-revision=N]`.
pub async fn rollout_undo(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let name = args.req("name")?.to_string();
    let ns = namespace_for(world, args.get("ns")).to_string();
    let deployments = resolve(world, "deployments.apps").await?;
    let path = deployments.object_path(Some(&ns), &name);
    let resp = send(world, http::Method::GET, &path, None, Vec::new()).await?;
    let deploy = resp
        .json
        .clone()
        .filter(|_| resp.is_success())
        .ok_or_else(|| {
            StepFailure::msg(format!(
                "reading deployment \"{name}\": {}",
                resp.describe()
            ))
        })?;
    if deploy.pointer("/spec/paused") == Some(&Value::Bool(true)) {
        return Err(StepFailure::msg(format!(
            "deployment \"{name}\" is paused; resume it before undoing (as kubectl requires)"
        )));
    }
    let uid = deploy
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let rs_res = resolve(world, "replicasets.apps").await?;
    let list = send(
        world,
        http::Method::GET,
        &rs_res.collection_path(Some(&ns)),
        None,
        Vec::new(),
    )
    .await?;
    let owned: Vec<Value> = items(&list)?
        .into_iter()
        .filter(|rs| controlled_by(rs, &uid))
        .collect();
    let to = match args.get("rev") {
        Some(_) => Some(args.number::<i64>("rev")?),
        None => None,
    };
    let source = rollback_source(&owned, to)
        .map_err(|e| StepFailure::msg(format!("cannot undo deployment \"{name}\": {e}")))?;
    let template = template_for_rollback(source).ok_or_else(|| {
        StepFailure::msg(format!(
            "the ReplicaSet to roll deployment \"{name}\" back to has no pod template"
        ))
    })?;
    // Testing the generation (which only spec changes move, unlike the resourceVersion that
    // every status update moves) makes a concurrent template change fail, not be overwritten.
    let patch = json!([
        {"op": "test", "path": "/metadata/generation", "value": deploy.pointer("/metadata/generation")},
        {"op": "replace", "path": "/spec/template", "value": template},
    ]);
    let resp = send(
        world,
        http::Method::PATCH,
        &path,
        Some("application/json-patch+json"),
        serde_json::to_vec(&patch)?,
    )
    .await?;
    let outcome = expect_success(&args, &resp);
    world.last = Some(resp);
    outcome
}

fn items(resp: &ApiResponse) -> Result<Vec<Value>, StepFailure> {
    if !resp.is_success() {
        return Err(StepFailure::msg(format!(
            "listing failed: {}",
            resp.describe()
        )));
    }
    Ok(resp
        .json
        .as_ref()
        .and_then(|j| j.get("items"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default())
}

fn name_of(obj: &Value) -> &str {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn is_terminating(pod: &Value) -> bool {
    pod.pointer("/metadata/deletionTimestamp").is_some()
}

pub fn pod_is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// Whether a pod counts for `there are N [ready] pods ... [in phase P]`: pods being deleted
/// never count (controllers no longer count them either).
fn pod_counts(pod: &Value, ready: bool, phase: Option<&str>) -> bool {
    !is_terminating(pod)
        && (!ready || pod_is_ready(pod))
        && phase.is_none_or(|p| pod.pointer("/status/phase").and_then(Value::as_str) == Some(p))
}

async fn list_pods(world: &KubeWorld, ns: &str, selector: &str) -> Result<Vec<Value>, StepFailure> {
    let mut path = format!("/api/v1/namespaces/{ns}/pods");
    if !selector.is_empty() {
        path = format!(
            "{path}?{}",
            crate::watch::encode_query(&[("labelSelector", selector.to_string())])
        );
    }
    let resp = send(world, http::Method::GET, &path, None, Vec::new()).await?;
    items(&resp)
}

fn describe_pods(pods: &[Value]) -> String {
    if pods.is_empty() {
        return "none".into();
    }
    pods.iter()
        .map(|p| {
            format!(
                "{} {}{}{}",
                name_of(p),
                p.pointer("/status/phase")
                    .and_then(Value::as_str)
                    .unwrap_or("?"),
                if pod_is_ready(p) { " Ready" } else { "" },
                if is_terminating(p) {
                    " terminating"
                } else {
                    ""
                }
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub async fn pod_count(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let want: usize = args.number("count")?;
    let ready = args.get("ready").is_some();
    let phase = args.get("phase").map(str::to_string);
    let sel = args.get("sel").unwrap_or("").to_string();
    let ns = namespace_for(world, args.get("ns")).to_string();
    let world = &*world;
    over_time(&args, async || {
        let pods = list_pods(world, &ns, &sel).await?;
        let n = pods
            .iter()
            .filter(|p| pod_counts(p, ready, phase.as_deref()))
            .count();
        if n == want {
            Ok(())
        } else {
            Err(StepFailure::msg(format!(
                "{n} {}pods with label \"{sel}\"{} instead of {want} (pods: {})",
                if ready { "ready " } else { "" },
                phase
                    .as_deref()
                    .map(|p| format!(" in phase {p}"))
                    .unwrap_or_default(),
                describe_pods(&pods)
            )))
        }
    })
    .await
}

/// Nodes a DaemonSet pod with its default tolerations runs on: Ready nodes without a
/// NoSchedule/NoExecute taint outside `node.kubernetes.io/` (those DaemonSet pods tolerate).
fn daemon_nodes(nodes: &[Value]) -> BTreeSet<String> {
    nodes
        .iter()
        .filter(|n| pod_is_ready(n))
        .filter(|n| {
            !n.pointer("/spec/taints")
                .and_then(Value::as_array)
                .is_some_and(|ts| {
                    ts.iter().any(|t| {
                        t["effect"] != "PreferNoSchedule"
                            && !t["key"]
                                .as_str()
                                .unwrap_or("")
                                .starts_with("node.kubernetes.io/")
                    })
                })
        })
        .map(|n| name_of(n).to_string())
        .collect()
}

/// Checks that every eligible node runs exactly one of `pods` and no node runs two.
fn one_per_node(pods: &[Value], eligible: &BTreeSet<String>, ready: bool) -> Result<(), String> {
    let mut on: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for p in pods.iter().filter(|p| pod_counts(p, ready, None)) {
        let node = p
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .unwrap_or("(unscheduled)");
        on.entry(node.to_string()).or_default().push(name_of(p));
    }
    let mut problems = Vec::new();
    for n in eligible {
        if !on.contains_key(n) {
            problems.push(format!("node {n} has none"));
        }
    }
    for (n, ps) in &on {
        if ps.len() > 1 {
            problems.push(format!("node {n} has {}: {}", ps.len(), ps.join(", ")));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

pub async fn pod_per_node(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let ready = args.get("ready").is_some();
    let sel = args.req("sel")?.to_string();
    let ns = namespace_for(world, args.get("ns")).to_string();
    let world = &*world;
    over_time(&args, async || {
        let nodes_resp = send(world, http::Method::GET, "/api/v1/nodes", None, Vec::new()).await?;
        let eligible = daemon_nodes(&items(&nodes_resp)?);
        if eligible.is_empty() {
            return Err(StepFailure::msg("no Ready node can run the pods"));
        }
        let pods = list_pods(world, &ns, &sel).await?;
        one_per_node(&pods, &eligible, ready).map_err(|e| {
            StepFailure::msg(format!(
                "not one {}pod with label \"{sel}\" per Ready node: {e} (pods: {})",
                if ready { "ready " } else { "" },
                describe_pods(&pods)
            ))
        })
    })
    .await
}

/// Remembers the name of one pod matching a selector (the first by name, so runs repeat).
pub async fn remember_pod(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let sel = args.req("sel")?.to_string();
    let ready = args.get("ready").is_some();
    let except: Vec<String> = args
        .get("except")
        .map(super::support::parse_groups)
        .unwrap_or_default();
    let ns = namespace_for(world, args.get("ns")).to_string();
    let mut pods = list_pods(world, &ns, &sel).await?;
    pods.sort_by(|a, b| name_of(a).cmp(name_of(b)));
    let pick = pods
        .iter()
        .find(|p| pod_counts(p, ready, None) && !except.iter().any(|e| e == name_of(p)));
    let Some(pod) = pick else {
        return Err(StepFailure::msg(format!(
            "no {}pod with label \"{sel}\" other than [{}] (pods: {})",
            if ready { "ready " } else { "" },
            except.join(", "),
            describe_pods(&pods)
        )));
    };
    world
        .vars
        .insert(args.req("var")?.to_string(), name_of(pod).to_string());
    Ok(())
}

/// POSTs a policy/v1 Eviction. The request goes through the runner's non-retrying client:
/// a PodDisruptionBudget's 429 is the answer under test, not a transient error to retry.
pub async fn evict(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let name = args.req("name")?;
    let ns = namespace_for(world, args.get("ns")).to_string();
    let body = json!({
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": name, "namespace": ns},
    });
    let req = api::request(
        http::Method::POST,
        &format!("/api/v1/namespaces/{ns}/pods/{name}/eviction"),
        Some("application/json"),
        serde_json::to_vec(&body)?,
    )?;
    let resp = api::send(&world.target()?.exact_client, req).await?;
    let outcome = expect_success(&args, &resp);
    world.last = Some(resp);
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rs(rev: &str, image: &str) -> Value {
        json!({
            "metadata": {"annotations": {REVISION: rev}, "ownerReferences": [{"uid": "u1", "controller": true}]},
            "spec": {"template": {"metadata": {"labels": {"app": "web", "pod-template-hash": "abc"}}, "spec": {"containers": [{"name": "app", "image": image}]}}}
        })
    }

    #[test]
    fn undo_picks_the_previous_revision_like_kubectl() {
        let sets = vec![rs("3", "v3"), rs("1", "v1"), rs("2", "v2")];
        let prev = rollback_source(&sets, None).unwrap();
        assert_eq!(revision_of(prev), Some(2));
        let first = rollback_source(&sets, Some(1)).unwrap();
        assert_eq!(revision_of(first), Some(1));
        assert!(rollback_source(&sets, Some(7))
            .unwrap_err()
            .contains("revision 7"));
        assert!(rollback_source(&sets[..1], None)
            .unwrap_err()
            .contains("no rollout history"));
        let tmpl = template_for_rollback(prev).unwrap();
        assert_eq!(tmpl["metadata"]["labels"], json!({"app": "web"}));
        assert_eq!(tmpl["spec"]["containers"][0]["image"], "v2");
        assert!(controlled_by(prev, "u1"));
        assert!(!controlled_by(prev, "u2"));
    }

    #[test]
    fn daemon_pods_must_cover_every_eligible_node_once() {
        let node = |n: &str, taint: Option<&str>| {
            let taints: Vec<Value> = taint
                .map(|k| vec![json!({"key": k, "effect": "NoSchedule"})])
                .unwrap_or_default();
            json!({"metadata": {"name": n}, "spec": {"taints": taints},
                   "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
        };
        let nodes = vec![
            node("a", None),
            node("b", Some("node.kubernetes.io/unschedulable")),
            node("c", Some("dedicated")),
        ];
        let eligible = daemon_nodes(&nodes);
        assert_eq!(eligible.iter().collect::<Vec<_>>(), vec!["a", "b"]);
        let pod = |name: &str, n: &str| {
            json!({"metadata": {"name": name}, "spec": {"nodeName": n},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}})
        };
        assert!(one_per_node(&[pod("p1", "a"), pod("p2", "b")], &eligible, true).is_ok());
        let missing = one_per_node(&[pod("p1", "a")], &eligible, true).unwrap_err();
        assert_eq!(missing, "node b has none");
        let twice = one_per_node(
            &[pod("p1", "a"), pod("p2", "a"), pod("p3", "b")],
            &eligible,
            false,
        )
        .unwrap_err();
        assert_eq!(twice, "node a has 2: p1, p2");
    }

    #[test]
    fn pods_count_by_phase_and_readiness_but_not_while_terminating() {
        let running_ready = json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}});
        let running = json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]}});
        let pending = json!({"status": {"phase": "Pending"}});
        let leaving = json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}, "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}});
        assert!(pod_counts(&running_ready, true, None));
        assert!(pod_counts(&running_ready, false, Some("Running")));
        assert!(!pod_counts(&running, true, None));
        assert!(pod_counts(&running, false, Some("Running")));
        assert!(!pod_counts(&pending, false, Some("Running")));
        assert!(pod_counts(&pending, false, Some("Pending")));
        assert!(!pod_counts(&leaving, false, None));
    }
}
