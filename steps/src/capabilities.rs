//! Probing what a target can do, so scenarios tagged `@needs:<capability>` that it cannot
//! serve are reported as skipped with a reason instead of failing (or, worse, passing).

use std::collections::BTreeMap;

use kube::Client;
use serde_json::Value;

use crate::api;

/// Whether each capability is present, and why (or why not).
#[derive(Clone, Debug, Default)]
pub struct Capabilities {
    pub found: BTreeMap<String, (bool, String)>,
}

impl Capabilities {
    /// The reason a scenario with these needs cannot run, or `None` when it can.
    pub fn unmet(&self, needs: &[String]) -> Option<String> {
        let missing: Vec<String> = needs
            .iter()
            .filter_map(|n| match self.found.get(n) {
                Some((true, _)) => None,
                Some((false, why)) => Some(format!("{n} ({why})")),
                None => Some(format!("{n} (unknown capability)")),
            })
            .collect();
        (!missing.is_empty()).then(|| format!("target lacks {}", missing.join(", ")))
    }

    pub fn set(&mut self, name: &str, present: bool, why: impl Into<String>) {
        self.found.insert(name.to_string(), (present, why.into()));
    }
}

/// The container runtime prefix the bundled cluster's simulated nodes report.
const SIM_RUNTIME_PREFIX: &str = "kubeproof-sim://";

fn runtime_version(node: &Value) -> &str {
    node.pointer("/status/nodeInfo/containerRuntimeVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Whether the node is one of the bundled cluster's simulated nodes, whose agents honour the
/// `sim.kubeproof.dev/*` annotations of `SIM.md` (pressure, silence, usage).
fn is_simulated(node: &Value) -> bool {
    runtime_version(node).starts_with(SIM_RUNTIME_PREFIX)
}

/// What kind of runtime a node reports. The bundled cluster's simulated nodes report
/// `kubeproof-sim://` runtimes unless labelled `kubeproof.dev/runtime=process`; kwok nodes carry
/// its annotation; anything else is taken to be a real kubelet.
fn runs_processes(node: &Value) -> bool {
    let label = node
        .pointer("/metadata/labels/kubeproof.dev~1runtime")
        .and_then(Value::as_str);
    if let Some(l) = label {
        return l == "process";
    }
    if node
        .pointer("/metadata/annotations/kwok.x-k8s.io~1node")
        .is_some()
    {
        return false;
    }
    let runtime = runtime_version(node);
    if runtime.starts_with("kubeproof-process://") {
        return true;
    }
    // Other `kubeproof…` runtimes are simulated nodes, or bare Node objects of an API-only
    // cluster (`kubeproof://`), which run nothing.
    !runtime.is_empty() && !runtime.starts_with("kubeproof")
}

fn is_ready(node: &Value) -> bool {
    node.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// Ready nodes whose node agent is alive: a Lease in `kube-node-lease` held for the node and
/// renewed within its duration (plus slack for one missed renewal). A Node object alone is not
/// enough: the bundled cluster registers Ready nodes even when no agent runs pods on them.
pub fn nodes_with_live_agents(
    nodes: &[Value],
    leases: &[Value],
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<String> {
    let fresh = |name: &str| {
        leases.iter().any(|l| {
            let holder = l
                .pointer("/spec/holderIdentity")
                .or_else(|| l.pointer("/metadata/name"))
                .and_then(Value::as_str);
            let renewed = l
                .pointer("/spec/renewTime")
                .and_then(Value::as_str)
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
            let duration = l
                .pointer("/spec/leaseDurationSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(40);
            holder == Some(name)
                && renewed.is_some_and(|r| {
                    now.signed_duration_since(r) <= chrono::Duration::seconds(duration + 10)
                })
        })
    };
    nodes
        .iter()
        .filter(|n| is_ready(n))
        .filter_map(|n| n.pointer("/metadata/name").and_then(Value::as_str))
        .filter(|name| fresh(name))
        .map(str::to_string)
        .collect()
}

/// Probes `client`'s target. `host_access` says whether the caller can reach the target's
/// processes and files (true for the bundled cluster started by this process); `assume`
/// forces capabilities on (e.g. `network` on a cluster known to have a CNI).
pub async fn probe(client: &Client, host_access: bool, assume: &[String]) -> Capabilities {
    let mut caps = Capabilities::default();
    let get = |path: &'static str| async move {
        let req = api::request(http::Method::GET, path, None, Vec::new()).ok()?;
        api::send(client, req).await.ok()
    };

    match get("/api/v1/nodes").await {
        Some(r) if r.is_success() => {
            let nodes = r
                .json
                .as_ref()
                .and_then(|j| j.get("items"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let ready: Vec<&Value> = nodes.iter().filter(|n| is_ready(n)).collect();
            caps.set(
                "nodes",
                !ready.is_empty(),
                format!("{} of {} nodes Ready", ready.len(), nodes.len()),
            );
            let real = ready.iter().filter(|n| runs_processes(n)).count();
            caps.set(
                "process-runtime",
                real > 0,
                format!("{real} Ready nodes run real processes"),
            );
        }
        other => {
            let why = other
                .map(|r| r.describe())
                .unwrap_or_else(|| "nodes could not be listed".into());
            caps.set("nodes", false, why.clone());
            caps.set("process-runtime", false, why);
        }
    }
    let node_items = match get("/api/v1/nodes").await {
        Some(r) if r.is_success() => r
            .json
            .as_ref()
            .and_then(|j| j.get("items"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    let leases = match get("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases").await {
        Some(r) if r.is_success() => r
            .json
            .as_ref()
            .and_then(|j| j.get("items"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    let live = nodes_with_live_agents(&node_items, &leases, chrono::Utc::now());
    if live.is_empty() {
        caps.set(
            "workloads",
            false,
            format!(
                "no Ready nodes: the cluster runs no node agents ({} Node objects, none with a Lease renewed in kube-node-lease)",
                node_items.len()
            ),
        );
    } else {
        caps.set(
            "workloads",
            true,
            format!("{} Ready nodes with a live node agent", live.len()),
        );
    }
    let simulated = node_items
        .iter()
        .filter(|n| is_simulated(n))
        .filter_map(|n| n.pointer("/metadata/name").and_then(Value::as_str))
        .filter(|name| live.iter().any(|l| l == name))
        .count();
    caps.set(
        "sim-nodes",
        simulated > 0,
        format!(
            "{simulated} live nodes are kubeproof's simulated nodes, which act on sim.kubeproof.dev annotations"
        ),
    );
    let may_patch_nodes = self_review(client, "patch", "nodes").await;
    match (live.is_empty(), may_patch_nodes) {
        (true, _) => caps.set(
            "node-control",
            false,
            "no Ready nodes with a live node agent to cordon, taint or label",
        ),
        (false, Ok(true)) => caps.set(
            "node-control",
            true,
            "the runner may patch nodes and pods run on them",
        ),
        (false, Ok(false)) => caps.set(
            "node-control",
            false,
            "the runner may not patch nodes (SelfSubjectAccessReview denied)",
        ),
        (false, Err(why)) => caps.set("node-control", false, why),
    }
    match get("/metrics").await {
        Some(r) if r.is_success() => caps.set("metrics", true, "/metrics answered"),
        Some(r) => caps.set("metrics", false, r.describe()),
        None => caps.set("metrics", false, "/metrics could not be reached"),
    }
    // The resource metrics API (metrics-server, or the bundled cluster's own) that HPAs and
    // `kubectl top` read.
    match get("/apis/metrics.k8s.io/v1beta1").await {
        Some(r) if r.is_success() => {
            caps.set("resource-metrics", true, "metrics.k8s.io/v1beta1 is served")
        }
        Some(r) => caps.set(
            "resource-metrics",
            false,
            format!(
                "metrics.k8s.io/v1beta1 is not served (install metrics-server): {}",
                r.describe()
            ),
        ),
        None => caps.set(
            "resource-metrics",
            false,
            "metrics.k8s.io/v1beta1 could not be reached",
        ),
    }
    // Cluster DNS as kubeadm and most installers deploy it: a `kube-dns` Service in
    // kube-system (CoreDNS behind it). The bundled cluster runs no DNS server.
    match get("/api/v1/namespaces/kube-system/services/kube-dns").await {
        Some(r) if r.is_success() => {
            caps.set("cluster-dns", true, "kube-system has a kube-dns Service")
        }
        Some(r) => caps.set(
            "cluster-dns",
            false,
            format!("kube-system has no kube-dns Service: {}", r.describe()),
        ),
        None => caps.set(
            "cluster-dns",
            false,
            "the kube-dns Service could not be read",
        ),
    }
    caps.set(
        "network",
        false,
        "pod networking is not probed; pass it as an assumed capability",
    );
    caps.set(
        "runner-reachable",
        host_access,
        if host_access {
            "the bundled cluster runs in the runner's process and reaches its loopback"
        } else {
            "the API server cannot be assumed to reach the runner's loopback address"
        },
    );
    caps.set(
        "host",
        host_access,
        if host_access {
            "bundled cluster in this process"
        } else {
            "the target is reached only through its API"
        },
    );
    for a in assume {
        caps.set(a, true, "assumed by the caller");
    }
    caps
}

/// Whether the runner may `verb` the cluster-scoped `resource`, by SelfSubjectAccessReview.
async fn self_review(client: &Client, verb: &str, resource: &str) -> Result<bool, String> {
    let body = serde_json::json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"verb": verb, "resource": resource}},
    });
    let req = api::request(
        http::Method::POST,
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        Some("application/json"),
        body.to_string().into_bytes(),
    )
    .map_err(|e| e.to_string())?;
    let resp = api::send(client, req).await.map_err(|e| e.to_string())?;
    if !resp.is_success() {
        return Err(format!(
            "cannot ask whether the runner may {verb} {resource}: {}",
            resp.describe()
        ));
    }
    Ok(resp
        .json
        .as_ref()
        .and_then(|j| j.pointer("/status/allowed"))
        .and_then(Value::as_bool)
        .unwrap_or(false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn node_runtime_detection() {
        let sim =
            json!({"status": {"nodeInfo": {"containerRuntimeVersion": "kubeproof-sim://0.1.0"}}});
        let real =
            json!({"status": {"nodeInfo": {"containerRuntimeVersion": "containerd://1.7.0"}}});
        let kwok = json!({"metadata": {"annotations": {"kwok.x-k8s.io/node": "fake"}}, "status": {"nodeInfo": {"containerRuntimeVersion": "containerd://1.7.0"}}});
        let labelled = json!({"metadata": {"labels": {"kubeproof.dev/runtime": "process"}}, "status": {"nodeInfo": {"containerRuntimeVersion": "kubeproof-sim://0.1.0"}}});
        assert!(!runs_processes(&sim));
        let bare =
            json!({"status": {"nodeInfo": {"containerRuntimeVersion": "kubeproof://0.1.0"}}});
        assert!(!runs_processes(&bare));
        let process = json!({"status": {"nodeInfo": {"containerRuntimeVersion": "kubeproof-process://0.1.0"}}});
        assert!(runs_processes(&process));
        assert!(runs_processes(&real));
        assert!(!runs_processes(&kwok));
        assert!(runs_processes(&labelled));
        assert!(is_ready(
            &json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}})
        ));
        assert!(!is_ready(
            &json!({"status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}})
        ));
    }

    #[test]
    fn only_nodes_with_a_fresh_lease_have_live_agents() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-27T12:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let node = |n: &str, ready: &str| json!({"metadata": {"name": n}, "status": {"conditions": [{"type": "Ready", "status": ready}]}});
        let lease = |n: &str, t: &str| json!({"metadata": {"name": n}, "spec": {"holderIdentity": n, "renewTime": t, "leaseDurationSeconds": 40}});
        let nodes = vec![
            node("a", "True"),
            node("b", "True"),
            node("c", "False"),
            node("d", "True"),
        ];
        let leases = vec![
            lease("a", "2026-11-27T11:59:50.123456Z"),
            lease("b", "2026-11-27T11:58:00.000000Z"),
            lease("c", "2026-11-27T11:59:59.000000Z"),
        ];
        assert_eq!(nodes_with_live_agents(&nodes, &leases, now), vec!["a"]);
        assert!(nodes_with_live_agents(&nodes, &[], now).is_empty());
    }

    #[test]
    fn unmet_needs_explain_themselves() {
        let mut c = Capabilities::default();
        c.set("nodes", true, "1 of 1 nodes Ready");
        c.set("process-runtime", false, "0 Ready nodes run real processes");
        assert_eq!(c.unmet(&["nodes".into()]), None);
        assert_eq!(
            c.unmet(&["nodes".into(), "process-runtime".into(), "x".into()]).unwrap(),
            "target lacks process-runtime (0 Ready nodes run real processes), x (unknown capability)"
        );
    }
}
