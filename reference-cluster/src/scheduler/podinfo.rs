//! A pod with everything the plugins derive from it computed once: requests, priority, parsed
//! affinity terms and host ports (upstream `framework.PodInfo`). Shared as `Arc<PodInfo>` between
//! the cache, the queue and the plugins, so a scheduling cycle never clones a pod.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, PodAffinityTerm, WeightedPodAffinityTerm};

use super::resource::{pod_requests, Resource};
use super::selector::{Labels, Selector};

/// One pod (anti-)affinity term with its namespaces resolved (upstream `AffinityTerm`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AffinityTerm {
    pub namespaces: Vec<String>,
    pub selector: Selector,
    pub topology_key: String,
    pub namespace_selector: Selector,
}

impl AffinityTerm {
    fn new(pod_namespace: &str, term: &PodAffinityTerm) -> Result<AffinityTerm, String> {
        let selector = Selector::from_label_selector(term.label_selector.as_ref())?;
        let namespace_selector = Selector::from_label_selector(term.namespace_selector.as_ref())?;
        let listed = term.namespaces.as_deref().unwrap_or_default();
        // No namespaces and no namespace selector means "the pod's own namespace".
        let namespaces = if listed.is_empty() && term.namespace_selector.is_none() {
            vec![pod_namespace.to_string()]
        } else {
            listed.to_vec()
        };
        Ok(AffinityTerm {
            namespaces,
            selector,
            topology_key: term.topology_key.clone(),
            namespace_selector,
        })
    }

    /// Whether a pod in `namespace` with `labels` is selected by this term; `ns_labels` are the
    /// labels of that namespace (for the namespace selector).
    pub fn matches(
        &self,
        namespace: &str,
        labels: Option<&Labels>,
        ns_labels: Option<&Labels>,
    ) -> bool {
        (self.namespaces.iter().any(|n| n == namespace)
            || self.namespace_selector.matches(ns_labels))
            && self.selector.matches(labels)
    }

    pub fn matches_pod(&self, pod: &PodInfo, ns_labels: Option<&Labels>) -> bool {
        self.matches(&pod.namespace, pod.labels(), ns_labels)
    }

    /// Folds the namespace selector into the namespace list, given the labels of every
    /// namespace (upstream `mergeAffinityTermNamespacesIfNotEmpty`); afterwards no lookup of
    /// the other pod's namespace is needed.
    pub fn merge_namespace_selector<'a>(
        &mut self,
        namespaces: impl Iterator<Item = (&'a String, &'a Labels)>,
    ) {
        // An empty selector selects every namespace and stays as it is.
        if self.namespace_selector.is_empty() {
            return;
        }
        for (name, labels) in namespaces {
            if self.namespace_selector.matches(Some(labels)) && !self.namespaces.contains(name) {
                self.namespaces.push(name.clone());
            }
        }
        self.namespace_selector = Selector::nothing();
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WeightedAffinityTerm {
    pub term: AffinityTerm,
    pub weight: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPort {
    pub ip: String,
    pub protocol: String,
    pub port: i32,
}

impl HostPort {
    /// Upstream `HostPortInfo.CheckConflict`: the wildcard address conflicts with every address.
    pub fn conflicts(&self, other: &HostPort) -> bool {
        self.port == other.port
            && self.protocol == other.protocol
            && (self.ip == other.ip || self.ip == "0.0.0.0" || other.ip == "0.0.0.0")
    }
}

#[derive(Debug)]
pub struct PodInfo {
    pub pod: Arc<Pod>,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// `namespace/name`.
    pub key: String,
    pub priority: i32,
    /// What the pod needs (for fit).
    pub requests: Resource,
    /// Requests with 100m/200Mi for unset CPU/memory (for spreading scores).
    pub non_zero_requests: Resource,
    pub required_affinity_terms: Vec<AffinityTerm>,
    pub required_anti_affinity_terms: Vec<AffinityTerm>,
    pub preferred_affinity_terms: Vec<WeightedAffinityTerm>,
    pub preferred_anti_affinity_terms: Vec<WeightedAffinityTerm>,
    /// A malformed affinity term (the API server does not validate every case).
    pub parse_error: Option<String>,
    pub host_ports: Vec<HostPort>,
}

fn parse_terms(
    ns: &str,
    terms: Option<&Vec<PodAffinityTerm>>,
    errs: &mut Vec<String>,
) -> Vec<AffinityTerm> {
    let mut out = Vec::new();
    for t in terms.into_iter().flatten() {
        match AffinityTerm::new(ns, t) {
            Ok(t) => out.push(t),
            Err(e) => {
                errs.push(e);
                return Vec::new();
            }
        }
    }
    out
}

fn parse_weighted(
    ns: &str,
    terms: Option<&Vec<WeightedPodAffinityTerm>>,
    errs: &mut Vec<String>,
) -> Vec<WeightedAffinityTerm> {
    let mut out = Vec::new();
    for t in terms.into_iter().flatten() {
        match AffinityTerm::new(ns, &t.pod_affinity_term) {
            Ok(term) => out.push(WeightedAffinityTerm {
                term,
                weight: t.weight as i64,
            }),
            Err(e) => {
                errs.push(e);
                return Vec::new();
            }
        }
    }
    out
}

fn host_ports(pod: &Pod) -> Vec<HostPort> {
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    // Ports of sidecars (restartable init containers) count; plain init containers' do not.
    let sidecars = spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"));
    sidecars
        .chain(spec.containers.iter())
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            let port = p.host_port.filter(|hp| *hp > 0)?;
            Some(HostPort {
                ip: p
                    .host_ip
                    .clone()
                    .filter(|ip| !ip.is_empty())
                    .unwrap_or_else(|| "0.0.0.0".into()),
                protocol: p
                    .protocol
                    .clone()
                    .filter(|p| !p.is_empty())
                    .unwrap_or_else(|| "TCP".into()),
                port,
            })
        })
        .collect()
}

impl PodInfo {
    /// `priority` is the pod's resolved priority (`spec.priority`, or its class's value when
    /// the API server did not fill it in).
    pub fn new(pod: Arc<Pod>, priority: i32) -> PodInfo {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let affinity = pod.spec.as_ref().and_then(|s| s.affinity.as_ref());
        let pa = affinity.and_then(|a| a.pod_affinity.as_ref());
        let paa = affinity.and_then(|a| a.pod_anti_affinity.as_ref());
        let mut errs = Vec::new();
        let required_affinity_terms = parse_terms(
            &namespace,
            pa.and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            }),
            &mut errs,
        );
        let required_anti_affinity_terms = parse_terms(
            &namespace,
            paa.and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            }),
            &mut errs,
        );
        let preferred_affinity_terms = parse_weighted(
            &namespace,
            pa.and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            }),
            &mut errs,
        );
        let preferred_anti_affinity_terms = parse_weighted(
            &namespace,
            paa.and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            }),
            &mut errs,
        );
        PodInfo {
            key: format!("{namespace}/{name}"),
            requests: pod_requests(&pod, false),
            non_zero_requests: pod_requests(&pod, true),
            host_ports: host_ports(&pod),
            parse_error: (!errs.is_empty()).then(|| errs.join("; ")),
            namespace,
            name,
            uid,
            priority,
            required_affinity_terms,
            required_anti_affinity_terms,
            preferred_affinity_terms,
            preferred_anti_affinity_terms,
            pod,
        }
    }

    pub fn labels(&self) -> Option<&Labels> {
        self.pod.metadata.labels.as_ref()
    }

    pub fn node_name(&self) -> &str {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .unwrap_or("")
    }

    pub fn scheduler_name(&self) -> &str {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.scheduler_name.as_deref())
            .filter(|s| !s.is_empty())
            .unwrap_or(super::DEFAULT_SCHEDULER_NAME)
    }

    pub fn nominated_node_name(&self) -> &str {
        self.pod
            .status
            .as_ref()
            .and_then(|s| s.nominated_node_name.as_deref())
            .unwrap_or("")
    }

    pub fn is_deleting(&self) -> bool {
        self.pod.metadata.deletion_timestamp.is_some()
    }

    pub fn tolerations(&self) -> &[k8s_openapi::api::core::v1::Toleration] {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.tolerations.as_deref())
            .unwrap_or_default()
    }

    /// Has pod affinity or anti-affinity of any kind.
    pub fn has_affinity(&self) -> bool {
        let a = self.pod.spec.as_ref().and_then(|s| s.affinity.as_ref());
        a.is_some_and(|a| a.pod_affinity.is_some() || a.pod_anti_affinity.is_some())
    }

    pub fn has_required_anti_affinity(&self) -> bool {
        !self.required_anti_affinity_terms.is_empty()
    }

    /// The pod's start time, for ordering preemption victims (earlier = more important).
    pub fn start_time(&self) -> Option<&k8s_openapi::jiff::Timestamp> {
        self.pod
            .status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .map(|t| &t.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Arc<Pod> {
        Arc::new(serde_json::from_value(v).unwrap())
    }

    #[test]
    fn terms_default_to_own_namespace() {
        let p = PodInfo::new(
            pod(
                json!({"metadata": {"name": "p", "namespace": "ns1", "labels": {"app": "a"}}, "spec": {
                    "containers": [],
                    "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                        {"labelSelector": {"matchLabels": {"app": "a"}}, "topologyKey": "kubernetes.io/hostname"}
                    ]}},
                }}),
            ),
            0,
        );
        let t = &p.required_anti_affinity_terms[0];
        assert_eq!(t.namespaces, vec!["ns1".to_string()]);
        assert!(t.matches_pod(&p, None));
        assert!(!t.matches("ns2", p.labels(), None));
        assert!(p.has_affinity() && p.has_required_anti_affinity() && p.parse_error.is_none());
        assert_eq!(p.key, "ns1/p");
    }

    #[test]
    fn namespace_selector_merge() {
        let p = PodInfo::new(
            pod(
                json!({"metadata": {"name": "p", "namespace": "a"}, "spec": {
                    "containers": [],
                    "affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                        {"labelSelector": {}, "namespaceSelector": {"matchLabels": {"team": "x"}}, "topologyKey": "zone"}
                    ]}},
                }}),
            ),
            0,
        );
        let mut t = p.required_affinity_terms[0].clone();
        assert!(t.namespaces.is_empty());
        let team: Labels = [("team".to_string(), "x".to_string())].into();
        let other: Labels = Labels::new();
        let nss = [("b".to_string(), team), ("c".to_string(), other)];
        t.merge_namespace_selector(nss.iter().map(|(n, l)| (n, l)));
        assert_eq!(t.namespaces, vec!["b".to_string()]);
        assert!(t.matches("b", None, None) && !t.matches("c", None, None));
    }

    #[test]
    fn bad_selector_is_a_parse_error() {
        let p = PodInfo::new(
            pod(json!({"metadata": {"name": "p"}, "spec": {"containers": [],
            "affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchExpressions": [{"key": "a", "operator": "Bogus"}]}, "topologyKey": "z"}
            ]}}}})),
            0,
        );
        assert!(p.parse_error.is_some());
    }

    #[test]
    fn host_ports_and_conflicts() {
        let p = PodInfo::new(
            pod(json!({"metadata": {"name": "p"}, "spec": {
                "initContainers": [
                    {"name": "i", "ports": [{"containerPort": 1, "hostPort": 81}]},
                    {"name": "s", "restartPolicy": "Always", "ports": [{"containerPort": 1, "hostPort": 82}]}
                ],
                "containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080, "hostIP": "127.0.0.1"}, {"containerPort": 9}]}]
            }})),
            0,
        );
        let ports: Vec<i32> = p.host_ports.iter().map(|h| h.port).collect();
        assert_eq!(ports, vec![82, 8080]);
        let any = HostPort {
            ip: "0.0.0.0".into(),
            protocol: "TCP".into(),
            port: 8080,
        };
        assert!(any.conflicts(&p.host_ports[1]));
        let udp = HostPort {
            protocol: "UDP".into(),
            ..any.clone()
        };
        assert!(!udp.conflicts(&p.host_ports[1]));
    }
}
