//! How the EndpointSlice controller turns the wanted endpoints of a Service into creates,
//! updates and deletes of slices (upstream `reconciler.reconcileByAddressType` and
//! `reconcileByPortMapping`): endpoints are grouped by their port mapping; existing slices
//! keep the endpoints still wanted (updated in place), new endpoints fill the slices being
//! updated first, then an unchanged slice they fit into, then new slices of at most `max`
//! endpoints; emptied slices are deleted or reused for the creates. A Service without
//! endpoints keeps one empty placeholder slice.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;

use crate::controllers::runtime::ownership::controller_ref;

pub const LABEL_SERVICE_NAME: &str = "kubernetes.io/service-name";
pub const LABEL_MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
pub const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";
const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";

/// Identity of a port mapping (ports sorted).
pub type PortKey = String;

pub fn port_key(ports: &[EndpointPort]) -> PortKey {
    let mut v: Vec<String> = ports
        .iter()
        .map(|p| serde_json::to_string(p).unwrap_or_default())
        .collect();
    v.sort();
    v.join("|")
}

/// Identity of an endpoint (`hashEndpoint`): addresses, hostname and target pod.
pub fn endpoint_key(e: &Endpoint) -> String {
    let mut addrs = e.addresses.clone();
    addrs.sort();
    let target = e
        .target_ref
        .as_ref()
        .map(|r| {
            format!(
                "{}/{}",
                r.namespace.as_deref().unwrap_or(""),
                r.name.as_deref().unwrap_or("")
            )
        })
        .unwrap_or_default();
    format!(
        "{}#{}#{}",
        addrs.join(","),
        e.hostname.as_deref().unwrap_or(""),
        target
    )
}

/// The wanted endpoints of one port mapping, in a stable order.
#[derive(Default, Clone)]
pub struct Desired {
    pub ports: Vec<EndpointPort>,
    pub endpoints: BTreeMap<String, Endpoint>,
}

#[derive(Default)]
pub struct Plan {
    pub create: Vec<EndpointSlice>,
    pub update: Vec<EndpointSlice>,
    pub delete: Vec<EndpointSlice>,
}

fn owned_by(slice: &EndpointSlice, svc: &Service) -> bool {
    slice.metadata.owner_references.iter().flatten().any(|r| {
        r.kind == "Service" && r.api_version == "v1" && Some(&r.uid) == svc.metadata.uid.as_ref()
    })
}

/// The labels a slice of `svc` carries; the reserved ones cannot be overridden by the
/// Service's own labels.
pub fn slice_labels(svc: &Service) -> BTreeMap<String, String> {
    let mut l: BTreeMap<String, String> = svc
        .metadata
        .labels
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| k != LABEL_SERVICE_NAME && k != LABEL_MANAGED_BY)
        .collect();
    if svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None") {
        l.insert(HEADLESS_LABEL.into(), String::new());
    } else {
        l.remove(HEADLESS_LABEL);
    }
    l.insert(LABEL_SERVICE_NAME.into(), svc.name_any());
    l.insert(LABEL_MANAGED_BY.into(), CONTROLLER_NAME.into());
    l
}

/// `<service>-` unless that is too long for a generated name.
fn prefix(service: &str) -> String {
    if service.len() + 1 + 5 <= 63 {
        format!("{service}-")
    } else {
        service.to_string()
    }
}

pub fn new_slice(svc: &Service, ports: Vec<EndpointPort>, address_type: &str) -> EndpointSlice {
    EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some(prefix(&svc.name_any())),
            namespace: svc.namespace(),
            labels: Some(slice_labels(svc)),
            owner_references: Some(vec![controller_ref(&svc.metadata, "v1", "Service")]),
            ..Default::default()
        },
        address_type: address_type.to_string(),
        endpoints: Vec::new(),
        ports: Some(ports),
    }
}

fn is_placeholder(slice: &EndpointSlice, svc: &Service) -> bool {
    slice.endpoints.is_empty()
        && slice.ports.as_ref().is_none_or(|p| p.is_empty())
        && slice.metadata.labels.as_ref() == Some(&slice_labels(svc))
}

/// Plans the changes for one address type.
pub fn plan(
    svc: &Service,
    mut desired: BTreeMap<PortKey, Desired>,
    existing: &[Arc<EndpointSlice>],
    max: usize,
    address_type: &str,
) -> Plan {
    let max = max.max(1);
    let mut plan = Plan::default();
    let mut by_ports: BTreeMap<PortKey, Vec<Arc<EndpointSlice>>> = BTreeMap::new();
    for s in existing {
        if owned_by(s, svc) && s.address_type == address_type {
            by_ports
                .entry(port_key(s.ports.as_deref().unwrap_or_default()))
                .or_default()
                .push(s.clone());
        } else {
            plan.delete.push((**s).clone());
        }
    }
    for (key, want) in desired.iter_mut() {
        let slices = by_ports.get(key).cloned().unwrap_or_default();
        let (c, u, d) = plan_port_mapping(svc, &slices, want, max, address_type);
        plan.create.extend(c);
        plan.update.extend(u);
        plan.delete.extend(d);
    }
    for (key, slices) in &by_ports {
        if !desired.contains_key(key) {
            plan.delete.extend(slices.iter().map(|s| (**s).clone()));
        }
    }
    // Nothing left: keep exactly one empty placeholder slice.
    if existing.len() == plan.delete.len() && plan.create.is_empty() {
        let placeholder = new_slice(svc, Vec::new(), address_type);
        if plan.delete.len() == 1 && is_placeholder(&plan.delete[0], svc) {
            plan.delete.clear();
        } else {
            plan.create.push(placeholder);
        }
    }
    // Reuse slices about to be deleted for the creates (fewer objects churn).
    let mut i = 0;
    while i < plan.delete.len() && !plan.create.is_empty() {
        let d = &plan.delete[i];
        if d.address_type == address_type && owned_by(d, svc) {
            let mut s = plan.create.pop().expect("not empty");
            s.metadata.name = d.metadata.name.clone();
            s.metadata.generate_name = None;
            s.metadata.resource_version = d.metadata.resource_version.clone();
            plan.update.push(s);
            plan.delete.remove(i);
        } else {
            i += 1;
        }
    }
    plan
}

fn plan_port_mapping(
    svc: &Service,
    existing: &[Arc<EndpointSlice>],
    want: &mut Desired,
    max: usize,
    address_type: &str,
) -> (Vec<EndpointSlice>, Vec<EndpointSlice>, Vec<EndpointSlice>) {
    let labels = slice_labels(svc);
    let mut by_name: BTreeMap<String, EndpointSlice> = BTreeMap::new();
    let mut unchanged: BTreeSet<String> = BTreeSet::new();
    let mut to_update: BTreeSet<String> = BTreeSet::new();
    let mut to_delete: BTreeSet<String> = BTreeSet::new();
    for s in existing {
        let name = s.name_any();
        let mut kept = Vec::new();
        let mut changed = false;
        for e in &s.endpoints {
            let k = endpoint_key(e);
            if let Some(w) = want.endpoints.remove(&k) {
                if &w != e {
                    changed = true;
                }
                kept.push(w);
            }
        }
        let labels_changed = s.metadata.labels.as_ref() != Some(&labels);
        let mut copy = (**s).clone();
        if changed || kept.len() != s.endpoints.len() {
            if kept.is_empty() {
                to_delete.insert(name.clone());
            } else {
                copy.endpoints = kept;
                copy.metadata.labels = Some(labels.clone());
                to_update.insert(name.clone());
            }
        } else if labels_changed {
            copy.metadata.labels = Some(labels.clone());
            to_update.insert(name.clone());
        } else {
            unchanged.insert(name.clone());
        }
        by_name.insert(name, copy);
    }
    let mut remaining: Vec<Endpoint> = std::mem::take(&mut want.endpoints).into_values().collect();
    remaining.reverse(); // popped from the end: the original order
                         // Fill the slices being updated anyway, fullest first.
    if !remaining.is_empty() && !to_update.is_empty() {
        let mut names: Vec<String> = to_update.iter().cloned().collect();
        names.sort_by_key(|n| std::cmp::Reverse(by_name.get(n).map_or(0, |s| s.endpoints.len())));
        for n in names {
            let Some(s) = by_name.get_mut(&n) else {
                continue;
            };
            while s.endpoints.len() < max {
                match remaining.pop() {
                    Some(e) => s.endpoints.push(e),
                    None => break,
                }
            }
        }
    }
    let mut create = Vec::new();
    while !remaining.is_empty() {
        // A few left: an unchanged slice they fit into (the one closest to full) takes them.
        let mut target: Option<String> = None;
        if remaining.len() < max {
            let mut best = max;
            for n in &unchanged {
                let len = by_name.get(n).map_or(0, |s| s.endpoints.len());
                if remaining.len() + len <= max && max - (remaining.len() + len) < best {
                    best = max - (remaining.len() + len);
                    target = Some(n.clone());
                }
            }
        }
        let mut slice = match &target {
            Some(n) => by_name.get(n).cloned().expect("known slice"),
            None => new_slice(svc, want.ports.clone(), address_type),
        };
        while slice.endpoints.len() < max {
            match remaining.pop() {
                Some(e) => slice.endpoints.push(e),
                None => break,
            }
        }
        match target {
            Some(n) => {
                unchanged.remove(&n);
                to_update.insert(n.clone());
                by_name.insert(n, slice);
            }
            None => create.push(slice),
        }
    }
    let update = to_update
        .iter()
        .filter_map(|n| by_name.get(n).cloned())
        .collect();
    let delete = to_delete
        .iter()
        .filter_map(|n| by_name.get(n).cloned())
        .collect();
    (create, update, delete)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ObjectReference;
    use k8s_openapi::api::discovery::v1::EndpointConditions;
    use serde_json::json;

    fn svc() -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "svc-uid", "labels": {"team": "a"}},
            "spec": {"selector": {"app": "web"}, "clusterIP": "10.96.0.10"}
        }))
        .unwrap()
    }

    fn ep(i: usize, ready: bool) -> Endpoint {
        Endpoint {
            addresses: vec![format!("10.0.{}.{}", i / 256, i % 256)],
            conditions: Some(EndpointConditions {
                ready: Some(ready),
                serving: Some(ready),
                terminating: Some(false),
            }),
            target_ref: Some(ObjectReference {
                kind: Some("Pod".into()),
                namespace: Some("ns".into()),
                name: Some(format!("p{i}")),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn port() -> Vec<EndpointPort> {
        vec![EndpointPort {
            name: Some("http".into()),
            port: Some(80),
            protocol: Some("TCP".into()),
            app_protocol: None,
        }]
    }

    fn desired(n: usize) -> BTreeMap<PortKey, Desired> {
        let mut d = Desired {
            ports: port(),
            ..Default::default()
        };
        for i in 0..n {
            let e = ep(i, true);
            d.endpoints.insert(endpoint_key(&e), e);
        }
        [(port_key(&port()), d)].into()
    }

    fn existing(name: &str, eps: Vec<Endpoint>) -> Arc<EndpointSlice> {
        let mut s = new_slice(&svc(), port(), "IPv4");
        s.metadata.name = Some(name.into());
        s.metadata.generate_name = None;
        s.endpoints = eps;
        Arc::new(s)
    }

    #[test]
    fn endpoints_are_split_at_the_maximum() {
        let p = plan(&svc(), desired(250), &[], 100, "IPv4");
        let sizes: Vec<usize> = p.create.iter().map(|s| s.endpoints.len()).collect();
        assert_eq!(sizes, [100, 100, 50]);
        let l = p.create[0].metadata.labels.clone().unwrap();
        assert_eq!(l[LABEL_SERVICE_NAME], "web");
        assert_eq!(l[LABEL_MANAGED_BY], CONTROLLER_NAME);
        assert_eq!(l["team"], "a");
        assert_eq!(p.create[0].metadata.generate_name.as_deref(), Some("web-"));
        assert_eq!(
            p.create[0].metadata.owner_references.as_ref().unwrap()[0].kind,
            "Service"
        );
    }

    #[test]
    fn unchanged_slices_stay_and_changes_are_in_place() {
        let e: Vec<Endpoint> = (0..3).map(|i| ep(i, true)).collect();
        let s = existing("web-abc", e);
        let p = plan(&svc(), desired(3), std::slice::from_ref(&s), 100, "IPv4");
        assert!(p.create.is_empty() && p.update.is_empty() && p.delete.is_empty());
        // One endpoint turns unready, one disappears, one appears.
        let mut d = desired(2);
        let entry = d.values_mut().next().unwrap();
        let changed = ep(0, false);
        entry.endpoints.insert(endpoint_key(&changed), changed);
        let new = ep(7, true);
        entry.endpoints.insert(endpoint_key(&new), new);
        let p = plan(&svc(), d, &[s], 100, "IPv4");
        assert!(p.create.is_empty() && p.delete.is_empty());
        assert_eq!(p.update.len(), 1);
        let names: Vec<_> = p.update[0]
            .endpoints
            .iter()
            .map(|e| e.target_ref.as_ref().unwrap().name.clone().unwrap())
            .collect();
        assert_eq!(names, ["p0", "p1", "p7"]);
        assert_eq!(
            p.update[0].endpoints[0].conditions.as_ref().unwrap().ready,
            Some(false)
        );
    }

    #[test]
    fn no_endpoints_leave_one_placeholder() {
        let p = plan(&svc(), BTreeMap::new(), &[], 100, "IPv4");
        assert_eq!(p.create.len(), 1);
        assert!(p.create[0].endpoints.is_empty());
        // An emptied slice is reused as the placeholder rather than deleted and recreated.
        let s = existing("web-abc", vec![ep(0, true)]);
        let p = plan(&svc(), BTreeMap::new(), &[s], 100, "IPv4");
        assert!(p.delete.is_empty() && p.create.is_empty());
        assert_eq!(p.update.len(), 1);
        assert_eq!(p.update[0].metadata.name.as_deref(), Some("web-abc"));
        assert!(p.update[0].endpoints.is_empty());
        // The placeholder itself is left alone.
        let ph = Arc::new(p.update[0].clone());
        let mut ph2 = (*ph).clone();
        ph2.ports = Some(vec![]);
        let p = plan(&svc(), BTreeMap::new(), &[Arc::new(ph2)], 100, "IPv4");
        assert!(p.delete.is_empty() && p.create.is_empty() && p.update.is_empty());
    }

    #[test]
    fn foreign_slices_are_deleted() {
        let mut s = (*existing("old", vec![ep(0, true)])).clone();
        s.metadata.owner_references.as_mut().unwrap()[0].uid = "other".into();
        let p = plan(&svc(), desired(1), &[Arc::new(s)], 100, "IPv4");
        assert_eq!(p.delete.len(), 1);
        assert_eq!(p.create.len(), 1);
    }
}
