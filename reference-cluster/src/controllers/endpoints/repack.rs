//! Endpoints subsets as upstream builds them (`endpoints.RepackSubsets` and
//! `truncateEndpoints`): one subset per distinct set of addresses sharing the same ports, an
//! address ready if it is ready for any subset it came from, sorted so equal content compares
//! equal, and at most 1000 addresses (ready ones kept first).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset};

fn addr_key(a: &EndpointAddress) -> (String, String) {
    (
        a.ip.clone(),
        a.target_ref
            .as_ref()
            .and_then(|r| r.uid.clone())
            .unwrap_or_default(),
    )
}

fn port_key(p: &EndpointPort) -> (String, i32, String, String) {
    (
        p.name.clone().unwrap_or_default(),
        p.port,
        p.protocol.clone().unwrap_or_default(),
        p.app_protocol.clone().unwrap_or_default(),
    )
}

/// A port's identity, and the addresses (ip, hostname) serving it with their readiness.
type Key = (String, i32, String, String);
type Addresses = BTreeMap<(String, String), bool>;

/// Merges subsets that share addresses and ports.
pub fn repack(subsets: Vec<EndpointSubset>) -> Vec<EndpointSubset> {
    // Ports (the sentinel `None` for port-less headless services) to addresses → ready.
    let mut by_port: BTreeMap<Option<Key>, (Option<EndpointPort>, Addresses)> = BTreeMap::new();
    let mut all: BTreeMap<(String, String), EndpointAddress> = BTreeMap::new();
    for s in &subsets {
        let ports: Vec<Option<&EndpointPort>> = match s.ports.as_ref().filter(|p| !p.is_empty()) {
            Some(ps) => ps.iter().map(Some).collect(),
            None => vec![None],
        };
        for port in ports {
            let entry = by_port
                .entry(port.map(port_key))
                .or_insert_with(|| (port.cloned(), BTreeMap::new()));
            let lists = [
                (s.addresses.as_ref(), true),
                (s.not_ready_addresses.as_ref(), false),
            ];
            for (list, ready) in lists {
                for a in list.into_iter().flatten() {
                    let k = addr_key(a);
                    all.entry(k.clone()).or_insert_with(|| a.clone());
                    let was = entry.1.entry(k).or_insert(ready);
                    *was = *was || ready;
                }
            }
        }
    }
    // Group ports by the exact address set (with readiness) they serve.
    type AddressSet = Vec<((String, String), bool)>;
    let mut by_addrs: BTreeMap<AddressSet, Vec<EndpointPort>> = BTreeMap::new();
    for (_, (port, addrs)) in by_port {
        let key: Vec<((String, String), bool)> = addrs.into_iter().collect();
        let ports = by_addrs.entry(key).or_default();
        if let Some(p) = port {
            ports.push(p);
        }
    }
    let mut out: Vec<EndpointSubset> = by_addrs
        .into_iter()
        .map(|(addrs, mut ports)| {
            let mut ready = Vec::new();
            let mut not_ready = Vec::new();
            for (k, r) in addrs {
                let a = all.get(&k).cloned().unwrap_or_default();
                if r {
                    ready.push(a);
                } else {
                    not_ready.push(a);
                }
            }
            ports.sort_by_key(port_key);
            EndpointSubset {
                addresses: (!ready.is_empty()).then_some(ready),
                not_ready_addresses: (!not_ready.is_empty()).then_some(not_ready),
                ports: (!ports.is_empty()).then_some(ports),
            }
        })
        .collect();
    out.sort_by_key(|s| serde_json::to_string(s).unwrap_or_default());
    out
}

/// Keeps at most `max` addresses, proportionally per subset: not-ready ones go first; if the
/// ready ones alone exceed `max`, all not-ready ones go and the ready ones are cut.
/// Returns whether anything was cut.
pub fn truncate(subsets: &mut [EndpointSubset], max: usize) -> bool {
    let count = |v: &Option<Vec<EndpointAddress>>| v.as_ref().map_or(0, Vec::len);
    let ready: usize = subsets.iter().map(|s| count(&s.addresses)).sum();
    let not_ready: usize = subsets.iter().map(|s| count(&s.not_ready_addresses)).sum();
    if ready + not_ready <= max {
        return false;
    }
    let truncate_ready = ready > max;
    let (limit, total) = if truncate_ready {
        (max, ready)
    } else {
        (max - ready, not_ready)
    };
    let mut can_add = limit;
    for s in subsets.iter_mut() {
        let n = if truncate_ready {
            count(&s.addresses)
        } else {
            count(&s.not_ready_addresses)
        };
        let share = ((n as f64 / total as f64) * limit as f64).ceil() as usize;
        let take = share.min(can_add);
        if truncate_ready {
            if let Some(a) = s.addresses.as_mut() {
                a.truncate(take);
            }
            s.not_ready_addresses = None;
            can_add -= count(&s.addresses);
        } else {
            if let Some(a) = s.not_ready_addresses.as_mut() {
                a.truncate(take);
            }
            can_add -= count(&s.not_ready_addresses);
        }
    }
    true
}

/// Subsets compared without the pods' resource versions (which never change endpoints).
pub fn equal_ignoring_resource_version(a: &[EndpointSubset], b: &[EndpointSubset]) -> bool {
    let strip = |subsets: &[EndpointSubset]| {
        let mut v = subsets.to_vec();
        for s in &mut v {
            for list in [s.addresses.as_mut(), s.not_ready_addresses.as_mut()]
                .into_iter()
                .flatten()
            {
                for a in list {
                    if let Some(r) = a.target_ref.as_mut() {
                        r.resource_version = None;
                    }
                }
            }
        }
        v
    };
    strip(a) == strip(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ObjectReference;

    fn addr(ip: &str) -> EndpointAddress {
        EndpointAddress {
            ip: ip.into(),
            target_ref: Some(ObjectReference {
                kind: Some("Pod".into()),
                uid: Some(format!("uid-{ip}")),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn port(name: &str, n: i32) -> EndpointPort {
        EndpointPort {
            name: Some(name.into()),
            port: n,
            protocol: Some("TCP".into()),
            app_protocol: None,
        }
    }

    fn subset(ready: &[&str], not_ready: &[&str], ports: Vec<EndpointPort>) -> EndpointSubset {
        EndpointSubset {
            addresses: (!ready.is_empty()).then(|| ready.iter().map(|i| addr(i)).collect()),
            not_ready_addresses: (!not_ready.is_empty())
                .then(|| not_ready.iter().map(|i| addr(i)).collect()),
            ports: Some(ports),
        }
    }

    #[test]
    fn addresses_with_the_same_ports_merge() {
        let out = repack(vec![
            subset(&["10.0.0.2"], &[], vec![port("http", 80)]),
            subset(&["10.0.0.1"], &[], vec![port("http", 80)]),
            subset(&[], &["10.0.0.3"], vec![port("http", 80)]),
        ]);
        assert_eq!(out.len(), 1);
        let ips: Vec<_> = out[0]
            .addresses
            .as_ref()
            .unwrap()
            .iter()
            .map(|a| a.ip.as_str())
            .collect();
        assert_eq!(ips, ["10.0.0.1", "10.0.0.2"]);
        assert_eq!(
            out[0].not_ready_addresses.as_ref().unwrap()[0].ip,
            "10.0.0.3"
        );
    }

    #[test]
    fn ports_served_by_different_pods_split() {
        let out = repack(vec![
            subset(&["10.0.0.1"], &[], vec![port("http", 80)]),
            subset(&["10.0.0.1"], &[], vec![port("metrics", 9090)]),
            subset(&["10.0.0.2"], &[], vec![port("http", 80)]),
        ]);
        assert_eq!(out.len(), 2);
        let with_both = out
            .iter()
            .find(|s| s.addresses.as_ref().unwrap().len() == 2)
            .unwrap();
        assert_eq!(
            with_both.ports.as_ref().unwrap()[0].name.as_deref(),
            Some("http")
        );
        let only_one = out
            .iter()
            .find(|s| s.addresses.as_ref().unwrap().len() == 1)
            .unwrap();
        assert_eq!(only_one.ports.as_ref().unwrap()[0].port, 9090);
        // Same content in another order: the same result.
        let again = repack(vec![
            subset(&["10.0.0.2"], &[], vec![port("http", 80)]),
            subset(&["10.0.0.1"], &[], vec![port("metrics", 9090)]),
            subset(&["10.0.0.1"], &[], vec![port("http", 80)]),
        ]);
        assert!(equal_ignoring_resource_version(&out, &again));
    }

    #[test]
    fn truncation_drops_not_ready_first() {
        let ready: Vec<String> = (0..6).map(|i| format!("10.0.1.{i}")).collect();
        let not_ready: Vec<String> = (0..6).map(|i| format!("10.0.2.{i}")).collect();
        let r: Vec<&str> = ready.iter().map(String::as_str).collect();
        let n: Vec<&str> = not_ready.iter().map(String::as_str).collect();
        let mut s = vec![subset(&r, &n, vec![port("http", 80)])];
        assert!(truncate(&mut s, 8));
        assert_eq!(s[0].addresses.as_ref().unwrap().len(), 6);
        assert_eq!(s[0].not_ready_addresses.as_ref().unwrap().len(), 2);
        let mut s = vec![subset(&r, &n, vec![port("http", 80)])];
        assert!(truncate(&mut s, 4));
        assert_eq!(s[0].addresses.as_ref().unwrap().len(), 4);
        assert!(s[0].not_ready_addresses.is_none());
        let mut s = vec![subset(&r, &[], vec![port("http", 80)])];
        assert!(!truncate(&mut s, 6));
    }
}
