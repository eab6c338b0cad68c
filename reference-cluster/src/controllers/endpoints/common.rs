//! What the Endpoints and EndpointSlice controllers share (upstream `endpointsliceutil` and
//! `podutil`): which pods back a Service, which port number a service port means on a pod,
//! and the pods and services that a change concerns.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use crate::controllers::runtime::pods;
use crate::controllers::runtime::{Change, Informer};

/// Upstream `ShouldPodBeInEndpoints`: not finished, has an IP, and not terminating unless
/// terminating pods are wanted.
pub fn should_pod_be_in_endpoints(pod: &Pod, include_terminating: bool) -> bool {
    if pods::is_terminal(pod) {
        return false;
    }
    let status = pod.status.as_ref();
    let has_ip = status
        .and_then(|s| s.pod_ip.as_deref())
        .is_some_and(|ip| !ip.is_empty())
        || status
            .and_then(|s| s.pod_ips.as_ref())
            .is_some_and(|ips| !ips.is_empty());
    if !has_ip {
        return false;
    }
    include_terminating || pod.metadata.deletion_timestamp.is_none()
}

/// The pod's IPv4 address (the reference cluster's services are single-stack IPv4).
pub fn pod_ipv4(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    let mut ips: Vec<String> = status
        .pod_ips
        .iter()
        .flatten()
        .map(|p| p.ip.clone())
        .collect();
    if let Some(ip) = status.pod_ip.clone() {
        ips.insert(0, ip);
    }
    ips.into_iter()
        .find(|ip| ip.parse::<std::net::Ipv4Addr>().is_ok())
}

/// `ShouldSetHostname`: the pod asked for a hostname under this (headless) service.
pub fn should_set_hostname(pod: &Pod, svc: &Service) -> bool {
    let spec = pod.spec.as_ref();
    spec.and_then(|s| s.hostname.as_deref())
        .is_some_and(|h| !h.is_empty())
        && spec.and_then(|s| s.subdomain.as_deref()) == Some(svc.name_any().as_str())
        && pod.namespace() == svc.namespace()
}

pub fn is_headless(svc: &Service) -> bool {
    svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None")
}

pub fn publish_not_ready(svc: &Service) -> bool {
    svc.spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false)
}

/// `podutil.FindPort`: the container port a service port targets on this pod.
pub fn find_port(pod: &Pod, sp: &ServicePort) -> Option<i32> {
    let protocol = sp.protocol.as_deref().unwrap_or("TCP");
    match sp.target_port.as_ref() {
        Some(IntOrString::String(name)) => {
            let spec = pod.spec.as_ref()?;
            let sidecars = spec
                .init_containers
                .iter()
                .flatten()
                .filter(|c| c.restart_policy.as_deref() == Some("Always"));
            spec.containers
                .iter()
                .chain(sidecars)
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| {
                    p.name.as_deref() == Some(name.as_str())
                        && p.protocol.as_deref().unwrap_or("TCP") == protocol
                })
                .map(|p| p.container_port)
        }
        Some(IntOrString::Int(n)) => Some(*n),
        // Defaulting makes targetPort the port; keep that meaning if it is missing.
        None => Some(sp.port),
    }
}

/// A Service's pod selector: `None` when the service has none (its endpoints are managed
/// by hand); an empty map selects every pod, as `labels.Set{}` does upstream.
pub fn service_selector(svc: &Service) -> Option<&BTreeMap<String, String>> {
    svc.spec.as_ref()?.selector.as_ref()
}

pub fn selects(selector: &BTreeMap<String, String>, pod: &Pod) -> bool {
    let labels = pod.metadata.labels.as_ref();
    selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// Pods of the service's namespace its selector picks.
pub fn pods_for_service(svc: &Service, pods: &Informer<Pod>) -> Vec<Arc<Pod>> {
    let Some(sel) = service_selector(svc) else {
        return Vec::new();
    };
    let mut out: Vec<Arc<Pod>> = pods
        .list_namespace(&svc.namespace().unwrap_or_default())
        .into_iter()
        .filter(|p| selects(sel, p))
        .collect();
    out.sort_by_key(|p| p.name_any());
    out
}

/// Keys of the services in the pod's namespace selecting it.
pub fn services_for_pod(pod: &Pod, services: &Informer<Service>) -> Vec<String> {
    let ns = pod.namespace().unwrap_or_default();
    services
        .list_namespace(&ns)
        .into_iter()
        .filter(|s| service_selector(s).is_some_and(|sel| selects(sel, pod)))
        .map(|s| format!("{ns}/{}", s.name_any()))
        .collect()
}

/// Keys of the services to resync after a pod change: those selecting it (before and after, when
/// its labels changed); none for an update no endpoint shows.
pub fn services_for_pod_change(change: &Change<Pod>, services: &Informer<Service>) -> Vec<String> {
    match change {
        Change::Add(p) | Change::Delete(p) => services_for_pod(p, services),
        Change::Update { old, new } => {
            if !pod_endpoints_changed(old, new) {
                return Vec::new();
            }
            let mut keys = services_for_pod(new, services);
            if old.metadata.labels != new.metadata.labels {
                keys.extend(services_for_pod(old, services));
            }
            keys
        }
    }
}

/// Whether a pod update can change any endpoint (upstream `podEndpointsChanged` plus label
/// changes): IPs, readiness, deletion, node, hostname.
pub fn pod_endpoints_changed(old: &Pod, new: &Pod) -> bool {
    let view = |p: &Pod| {
        (
            pod_ipv4(p),
            pods::is_ready(p),
            p.metadata.deletion_timestamp.is_some(),
            pods::phase(p).to_string(),
            p.spec.as_ref().and_then(|s| s.node_name.clone()),
            p.spec.as_ref().and_then(|s| s.hostname.clone()),
            p.spec.as_ref().and_then(|s| s.subdomain.clone()),
            p.metadata.labels.clone(),
        )
    };
    view(old) != view(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, ContainerPort, PodIP, PodSpec, PodStatus};
    use serde_json::json;

    fn pod(ip: Option<&str>, phase: &str) -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    ports: Some(vec![ContainerPort {
                        name: Some("http".into()),
                        container_port: 8080,
                        protocol: Some("TCP".into()),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                pod_ip: ip.map(String::from),
                pod_ips: ip.map(|i| vec![PodIP { ip: i.into() }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn which_pods_back_a_service() {
        assert!(should_pod_be_in_endpoints(
            &pod(Some("10.0.0.1"), "Running"),
            false
        ));
        assert!(!should_pod_be_in_endpoints(&pod(None, "Running"), false));
        assert!(!should_pod_be_in_endpoints(
            &pod(Some("10.0.0.1"), "Succeeded"),
            true
        ));
        let mut deleting = pod(Some("10.0.0.1"), "Running");
        deleting.metadata.deletion_timestamp =
            Some(crate::controllers::runtime::events::now_time());
        assert!(!should_pod_be_in_endpoints(&deleting, false));
        assert!(should_pod_be_in_endpoints(&deleting, true));
    }

    #[test]
    fn target_ports_resolve_by_number_or_name() {
        let p = pod(Some("10.0.0.1"), "Running");
        let by_name: ServicePort =
            serde_json::from_value(json!({"port": 80, "targetPort": "http", "protocol": "TCP"}))
                .unwrap();
        assert_eq!(find_port(&p, &by_name), Some(8080));
        let udp: ServicePort =
            serde_json::from_value(json!({"port": 80, "targetPort": "http", "protocol": "UDP"}))
                .unwrap();
        assert_eq!(find_port(&p, &udp), None);
        let by_number: ServicePort =
            serde_json::from_value(json!({"port": 80, "targetPort": 9090})).unwrap();
        assert_eq!(find_port(&p, &by_number), Some(9090));
        let missing: ServicePort =
            serde_json::from_value(json!({"port": 80, "targetPort": "metrics"})).unwrap();
        assert_eq!(find_port(&p, &missing), None);
    }

    #[test]
    fn empty_selector_selects_everything() {
        let p = pod(None, "Running");
        assert!(selects(&BTreeMap::new(), &p));
        let sel: BTreeMap<String, String> = [("app".to_string(), "x".to_string())].into();
        assert!(!selects(&sel, &p));
    }
}
