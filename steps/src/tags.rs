//! What a scenario's tags mean to the runner.

use kubeproof_report::catalogue::behaviour_id_from_tag;

/// Capabilities a scenario can declare with `@needs:<name>`, and how each is probed.
pub const CAPABILITIES: &[(&str, &str)] = &[
    (
        "nodes",
        "at least one Node object reports Ready (simulated nodes are enough)",
    ),
    (
        "process-runtime",
        "a Ready node runs real processes (not a simulated runtime)",
    ),
    (
        "network",
        "real pod networking: traffic between pods and Services",
    ),
    (
        "host",
        "access beyond the API: the target's processes, files or etcd (bundled cluster only)",
    ),
    ("metrics", "the API server's /metrics endpoint is readable"),
    (
        "scheduler-metrics",
        "the kube-scheduler's /metrics is readable: the runner knows its secure port (the bundled cluster's, or --scheduler-metrics-url)",
    ),
    (
        "workloads",
        "pods really run: a Ready node whose agent renews its Lease (plus the scheduler and controllers a cluster runs)",
    ),
    (
        "node-control",
        "the runner may cordon, taint and label nodes that run pods (use with @serial: nodes are shared)",
    ),
    (
        "sim-nodes",
        "kubeproof's simulated nodes, which act on the sim.kubeproof.dev annotations of SIM.md (pod behaviour, node pressure, silence)",
    ),
    (
        "component-control",
        "the runner may stop and start the scheduler and controller-manager (a cluster it started itself; use with @serial)",
    ),
    (
        "resource-metrics",
        "the resource metrics API metrics.k8s.io/v1beta1 is served (metrics-server), as HPAs and kubectl top need",
    ),
    (
        "compaction-control",
        "the runner may compact the store's history on demand (a cluster it started itself; use with @serial)",
    ),
    (
        "audit-log",
        "the runner reads the API server's audit log (the bundled cluster's, or one named with --audit-log)",
    ),
    (
        "runner-reachable",
        "the API server reaches servers the runner starts on its loopback address (the bundled cluster in the runner's process), as extension API servers need",
    ),
    (
        "cluster-dns",
        "a cluster DNS is installed: the kube-dns Service in kube-system (CoreDNS), as installers deploy it",
    ),
];

/// A scenario's tags, interpreted. Tags are given without their `@`, as gherkin stores them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScenarioTags {
    pub behaviours: Vec<String>,
    pub needs: Vec<String>,
    pub serial: bool,
    /// Upstream conformance test names from `@conformance:<name>`.
    pub upstream: Vec<String>,
}

pub fn parse<'a>(tags: impl IntoIterator<Item = &'a String>) -> ScenarioTags {
    let mut out = ScenarioTags::default();
    for t in tags {
        let t = t.strip_prefix('@').unwrap_or(t);
        if let Some(id) = behaviour_id_from_tag(t) {
            if !out.behaviours.iter().any(|b| b == id) {
                out.behaviours.push(id.to_string());
            }
        } else if let Some(n) = t.strip_prefix("needs:") {
            if !out.needs.iter().any(|x| x == n) {
                out.needs.push(n.to_string());
            }
        } else if let Some(u) = t.strip_prefix("conformance:") {
            out.upstream.push(u.to_string());
        } else if t == "serial" {
            out.serial = true;
        }
    }
    out
}

pub fn is_known_capability(name: &str) -> bool {
    CAPABILITIES.iter().any(|(n, _)| *n == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_split_into_behaviours_needs_and_flags() {
        let tags: Vec<String> = [
            "B-API-010",
            "needs:nodes",
            "serial",
            "conformance:sig-api-machinery-crd",
            "B-API-010",
            "wip",
            "@needs:host",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let t = parse(&tags);
        assert_eq!(t.behaviours, vec!["B-API-010"]);
        assert_eq!(t.needs, vec!["nodes", "host"]);
        assert!(t.serial);
        assert_eq!(t.upstream, vec!["sig-api-machinery-crd"]);
        assert!(is_known_capability("nodes"));
        assert!(!is_known_capability("node"));
    }
}
