//! Printers for core-group kinds and the closely related discovery/coordination kinds.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use k8s_openapi::api::coordination::v1 as coordination;
use k8s_openapi::api::core::v1 as corev1;
use k8s_openapi::api::discovery::v1 as discovery;
use serde_json::Value;

use super::{age_at, age_col, col, doc, has, int, name_cell, name_col, s, string_map_at, wide};
use crate::resources::convert::event_as_core;
use crate::resources::json::{array_at, at, i64_at, object_at, str_at, string_at};
use crate::resources::labels::format_labels;
use crate::resources::quantity::Quantity;
use crate::resources::TableColumn;

pub(super) fn columns(group: &str, kind: &str) -> Option<Vec<TableColumn>> {
    Some(match (group, kind) {
        ("", "Service") => {
            let d = |f: &str| doc::<corev1::ServiceSpec>(f);
            vec![
                name_col(),
                col("Type", "string", d("type")),
                col("Cluster-IP", "string", d("clusterIP")),
                col("External-IP", "string", d("externalIPs")),
                col("Port(s)", "string", d("ports")),
                age_col(),
                wide(col("Selector", "string", d("selector"))),
            ]
        }
        ("", "Endpoints") => vec![
            name_col(),
            col("Endpoints", "string", doc::<corev1::Endpoints>("subsets")),
            age_col(),
        ],
        ("", "Node") => {
            let info = |f: &str| doc::<corev1::NodeSystemInfo>(f);
            let addresses = doc::<corev1::NodeStatus>("addresses");
            vec![
                name_col(),
                col("Status", "string", "The status of the node"),
                col("Roles", "string", "The roles of the node"),
                age_col(),
                col("Version", "string", info("kubeletVersion")),
                wide(col("Internal-IP", "string", addresses.clone())),
                wide(col("External-IP", "string", addresses)),
                wide(col("OS-Image", "string", info("osImage"))),
                wide(col("Kernel-Version", "string", info("kernelVersion"))),
                wide(col(
                    "Container-Runtime",
                    "string",
                    info("containerRuntimeVersion"),
                )),
            ]
        }
        ("", "Event") | ("events.k8s.io", "Event") => {
            let d = |f: &str| doc::<corev1::Event>(f);
            let mut name = name_col();
            name.priority = 1;
            vec![
                col("Last Seen", "string", d("lastTimestamp")),
                col("Type", "string", d("type")),
                col("Reason", "string", d("reason")),
                col("Object", "string", d("involvedObject")),
                wide(col(
                    "Subobject",
                    "string",
                    doc::<corev1::ObjectReference>("fieldPath"),
                )),
                wide(col("Source", "string", d("source"))),
                col("Message", "string", d("message")),
                wide(col("First Seen", "string", d("firstTimestamp"))),
                wide(col("Count", "string", d("count"))),
                name,
            ]
        }
        ("", "Namespace") => vec![
            name_col(),
            col("Status", "string", "The status of the namespace"),
            age_col(),
        ],
        ("", "Secret") => vec![
            name_col(),
            col("Type", "string", doc::<corev1::Secret>("type")),
            col("Data", "string", doc::<corev1::Secret>("data")),
            age_col(),
        ],
        ("", "ServiceAccount") => vec![
            name_col(),
            col("Secrets", "string", doc::<corev1::ServiceAccount>("secrets")),
            age_col(),
        ],
        ("", "ConfigMap") => vec![
            name_col(),
            col("Data", "string", doc::<corev1::ConfigMap>("data")),
            age_col(),
        ],
        ("", "PersistentVolume") => {
            let d = |f: &str| doc::<corev1::PersistentVolumeSpec>(f);
            vec![
                name_col(),
                col("Capacity", "string", d("capacity")),
                col("Access Modes", "string", d("accessModes")),
                col("Reclaim Policy", "string", d("persistentVolumeReclaimPolicy")),
                col(
                    "Status",
                    "string",
                    doc::<corev1::PersistentVolumeStatus>("phase"),
                ),
                col("Claim", "string", d("claimRef")),
                col("StorageClass", "string", "StorageClass of the pv"),
                col(
                    "VolumeAttributesClass",
                    "string",
                    "VolumeAttributesClass of the pv",
                ),
                col(
                    "Reason",
                    "string",
                    doc::<corev1::PersistentVolumeStatus>("reason"),
                ),
                age_col(),
                wide(col("VolumeMode", "string", d("volumeMode"))),
            ]
        }
        ("", "PersistentVolumeClaim") => {
            let st = |f: &str| doc::<corev1::PersistentVolumeClaimStatus>(f);
            let sp = |f: &str| doc::<corev1::PersistentVolumeClaimSpec>(f);
            vec![
                name_col(),
                col("Status", "string", st("phase")),
                col("Volume", "string", sp("volumeName")),
                col("Capacity", "string", st("capacity")),
                col("Access Modes", "string", st("accessModes")),
                col("StorageClass", "string", "StorageClass of the pvc"),
                col(
                    "VolumeAttributesClass",
                    "string",
                    "VolumeAttributesClass of the pvc",
                ),
                age_col(),
                wide(col("VolumeMode", "string", sp("volumeMode"))),
            ]
        }
        ("", "ResourceQuota") => vec![
            name_col(),
            col(
                "Request",
                "string",
                "Request represents a minimum amount of cpu/memory that a container may consume.",
            ),
            col("Limit", "string", "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node."),
            age_col(),
        ],
        ("coordination.k8s.io", "Lease") => vec![
            name_col(),
            col(
                "Holder",
                "string",
                doc::<coordination::LeaseSpec>("holderIdentity"),
            ),
            age_col(),
        ],
        ("discovery.k8s.io", "EndpointSlice") => {
            let d = |f: &str| doc::<discovery::EndpointSlice>(f);
            vec![
                name_col(),
                col("AddressType", "string", d("addressType")),
                col("Ports", "string", d("ports")),
                col("Endpoints", "string", d("endpoints")),
                age_col(),
            ]
        }
        _ => return None,
    })
}

pub(super) fn row(group: &str, kind: &str, obj: &Value, now: DateTime<Utc>) -> Option<Vec<Value>> {
    let age = || s(age_at(obj, "metadata.creationTimestamp", now));
    Some(match (group, kind) {
        ("", "Service") => {
            let cluster_ip = array_at(obj, "spec.clusterIPs")
                .first()
                .and_then(Value::as_str)
                .or_else(|| str_at(obj, "spec.clusterIP").filter(|ip| !ip.is_empty()))
                .unwrap_or("<none>")
                .to_string();
            let ports = service_ports(array_at(obj, "spec.ports"));
            vec![
                name_cell(obj),
                s(string_at(obj, "spec.type")),
                s(cluster_ip),
                s(service_external_ip(obj)),
                s(if ports.is_empty() {
                    "<none>".into()
                } else {
                    ports
                }),
                age(),
                s(format_labels(&string_map_at(obj, "spec.selector"))),
            ]
        }
        ("", "Endpoints") => vec![name_cell(obj), s(format_endpoints(obj)), age()],
        ("", "Node") => node_row(obj, now),
        ("", "Event") | ("events.k8s.io", "Event") => event_row(&event_as_core(obj), now),
        ("", "Namespace") => vec![name_cell(obj), s(string_at(obj, "status.phase")), age()],
        ("", "Secret") => vec![
            name_cell(obj),
            s(string_at(obj, "type")),
            int(object_at(obj, "data").map_or(0, |m| m.len()) as i64),
            age(),
        ],
        ("", "ServiceAccount") => vec![
            name_cell(obj),
            int(array_at(obj, "secrets").len() as i64),
            age(),
        ],
        ("", "ConfigMap") => vec![
            name_cell(obj),
            int((object_at(obj, "data").map_or(0, |m| m.len())
                + object_at(obj, "binaryData").map_or(0, |m| m.len())) as i64),
            age(),
        ],
        ("", "PersistentVolume") => {
            let claim = if has(obj, "spec.claimRef") {
                format!(
                    "{}/{}",
                    string_at(obj, "spec.claimRef.namespace"),
                    string_at(obj, "spec.claimRef.name")
                )
            } else {
                String::new()
            };
            let phase = if has(obj, "metadata.deletionTimestamp") {
                "Terminating".to_string()
            } else {
                string_at(obj, "status.phase")
            };
            vec![
                name_cell(obj),
                s(quantity_or_zero(at(obj, "spec.capacity.storage"))),
                s(access_modes(array_at(obj, "spec.accessModes"))),
                s(string_at(obj, "spec.persistentVolumeReclaimPolicy")),
                s(phase),
                s(claim),
                s(storage_class(obj)),
                s(str_at(obj, "spec.volumeAttributesClassName").unwrap_or("<unset>")),
                s(string_at(obj, "status.reason")),
                age(),
                s(str_at(obj, "spec.volumeMode").unwrap_or("<unset>")),
            ]
        }
        ("", "PersistentVolumeClaim") => {
            let phase = if has(obj, "metadata.deletionTimestamp") {
                "Terminating".to_string()
            } else {
                string_at(obj, "status.phase")
            };
            let volume = string_at(obj, "spec.volumeName");
            let (capacity, modes) = if volume.is_empty() {
                (String::new(), String::new())
            } else {
                (
                    quantity_or_zero(at(obj, "status.capacity.storage")),
                    access_modes(array_at(obj, "status.accessModes")),
                )
            };
            vec![
                name_cell(obj),
                s(phase),
                s(volume),
                s(capacity),
                s(modes),
                s(storage_class(obj)),
                s(str_at(obj, "spec.volumeAttributesClassName").unwrap_or("<unset>")),
                age(),
                s(str_at(obj, "spec.volumeMode").unwrap_or("<unset>")),
            ]
        }
        ("", "ResourceQuota") => {
            let hard = object_at(obj, "status.hard").cloned().unwrap_or_default();
            let mut names: Vec<&String> = hard.keys().collect();
            names.sort();
            let mut requests = Vec::new();
            let mut limits = Vec::new();
            for name in names {
                let used =
                    quantity_or_zero(at(obj, "status.used").and_then(|u| u.get(name.as_str())));
                let h = quantity_or_zero(hard.get(name.as_str()));
                let entry = format!("{name}: {used}/{h}");
                if name.split('.').next() == Some("limits") && name.contains('.') {
                    limits.push(entry);
                } else {
                    requests.push(entry);
                }
            }
            vec![
                name_cell(obj),
                s(requests.join(", ")),
                s(limits.join(", ")),
                age(),
            ]
        }
        ("coordination.k8s.io", "Lease") => vec![
            name_cell(obj),
            s(string_at(obj, "spec.holderIdentity")),
            age(),
        ],
        ("discovery.k8s.io", "EndpointSlice") => {
            let ports: Vec<String> = array_at(obj, "ports")
                .iter()
                .map(|p| {
                    i64_at(p, "port")
                        .map(|n| n.to_string())
                        .or_else(|| str_at(p, "name").map(String::from))
                        .unwrap_or_else(|| "*".to_string())
                })
                .collect();
            let addresses: Vec<String> = array_at(obj, "endpoints")
                .iter()
                .flat_map(|e| array_at(e, "addresses").iter())
                .map(|a| a.as_str().unwrap_or_default().to_string())
                .collect();
            vec![
                name_cell(obj),
                s(string_at(obj, "addressType")),
                s(list_with_more(&ports)),
                s(list_with_more(&addresses)),
                age(),
            ]
        }
        _ => return None,
    })
}

/// `listWithMoreString` with upstream's limit of three entries.
fn list_with_more(items: &[String]) -> String {
    const MAX: usize = 3;
    if items.len() > MAX {
        return format!("{} + {} more...", items[..MAX].join(","), items.len() - MAX);
    }
    if items.is_empty() {
        return "<unset>".to_string();
    }
    items.join(",")
}

fn quantity_or_zero(v: Option<&Value>) -> String {
    v.and_then(Quantity::from_json)
        .map(|q| q.canonical())
        .unwrap_or_else(|| "0".to_string())
}

/// `GetAccessModesAsString`.
fn access_modes(modes: &[Value]) -> String {
    let have: BTreeSet<&str> = modes.iter().filter_map(Value::as_str).collect();
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(m, _)| have.contains(m))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

/// The beta annotation still wins over `spec.storageClassName`, as upstream's helper has it.
fn storage_class(obj: &Value) -> String {
    object_at(obj, "metadata.annotations")
        .and_then(|a| a.get("volume.beta.kubernetes.io/storage-class"))
        .and_then(Value::as_str)
        .map(String::from)
        .unwrap_or_else(|| string_at(obj, "spec.storageClassName"))
}

fn service_ports(ports: &[Value]) -> String {
    ports
        .iter()
        .map(|p| {
            let port = i64_at(p, "port").unwrap_or(0);
            let proto = string_at(p, "protocol");
            match i64_at(p, "nodePort").filter(|n| *n > 0) {
                Some(np) => format!("{port}:{np}/{proto}"),
                None => format!("{port}/{proto}"),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn load_balancer_ips(obj: &Value) -> String {
    let set: BTreeSet<String> = array_at(obj, "status.loadBalancer.ingress")
        .iter()
        .filter_map(|i| {
            str_at(i, "ip")
                .filter(|s| !s.is_empty())
                .or_else(|| str_at(i, "hostname").filter(|s| !s.is_empty()))
                .map(String::from)
        })
        .collect();
    set.into_iter().collect::<Vec<_>>().join(",")
}

fn service_external_ip(obj: &Value) -> String {
    let external: Vec<String> = array_at(obj, "spec.externalIPs")
        .iter()
        .filter_map(|v| v.as_str().map(String::from))
        .collect();
    match str_at(obj, "spec.type").unwrap_or_default() {
        "ClusterIP" | "NodePort" => {
            if external.is_empty() {
                "<none>".into()
            } else {
                external.join(",")
            }
        }
        "LoadBalancer" => {
            let lb = load_balancer_ips(obj);
            if !external.is_empty() {
                let mut all: Vec<String> = if lb.is_empty() {
                    Vec::new()
                } else {
                    lb.split(',').map(String::from).collect()
                };
                all.extend(external);
                all.join(",")
            } else if !lb.is_empty() {
                lb
            } else {
                "<pending>".into()
            }
        }
        "ExternalName" => string_at(obj, "spec.externalName"),
        _ => "<unknown>".into(),
    }
}

/// `formatEndpoints` with all ports.
fn format_endpoints(obj: &Value) -> String {
    let subsets = array_at(obj, "subsets");
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    const MAX: usize = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0;
    for ss in subsets {
        let addresses = array_at(ss, "addresses");
        let ports = array_at(ss, "ports");
        if ports.is_empty() {
            count += addresses.len();
            for a in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(string_at(a, "ip"));
            }
            continue;
        }
        for p in ports {
            count += addresses.len();
            for a in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                let ip = string_at(a, "ip");
                let port = i64_at(p, "port").unwrap_or(0);
                list.push(if ip.contains(':') {
                    format!("[{ip}]:{port}")
                } else {
                    format!("{ip}:{port}")
                });
            }
        }
    }
    let ret = list.join(",");
    if more {
        format!("{ret} + {} more...", count - MAX)
    } else {
        ret
    }
}

fn node_row(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let mut status: Vec<String> = Vec::new();
    if let Some(ready) = array_at(obj, "status.conditions")
        .iter()
        .rev()
        .find(|c| str_at(c, "type") == Some("Ready"))
    {
        status.push(if str_at(ready, "status") == Some("True") {
            "Ready".into()
        } else {
            "NotReady".into()
        });
    }
    if status.is_empty() {
        status.push("Unknown".into());
    }
    if at(obj, "spec.unschedulable").and_then(Value::as_bool) == Some(true) {
        status.push("SchedulingDisabled".into());
    }
    let mut roles = BTreeSet::new();
    for (k, v) in string_map_at(obj, "metadata.labels") {
        if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
            if !role.is_empty() {
                roles.insert(role.to_string());
            }
        } else if k == "kubernetes.io/role" && !v.is_empty() {
            roles.insert(v);
        }
    }
    let roles = if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.into_iter().collect::<Vec<_>>().join(",")
    };
    let address = |t: &str| {
        array_at(obj, "status.addresses")
            .iter()
            .find(|a| str_at(a, "type") == Some(t))
            .map(|a| string_at(a, "address"))
            .unwrap_or_else(|| "<none>".into())
    };
    let info = |f: &str| {
        let v = string_at(obj, &format!("status.nodeInfo.{f}"));
        if v.is_empty() {
            "<unknown>".into()
        } else {
            v
        }
    };
    vec![
        name_cell(obj),
        s(status.join(",")),
        s(roles),
        s(age_at(obj, "metadata.creationTimestamp", now)),
        s(string_at(obj, "status.nodeInfo.kubeletVersion")),
        s(address("InternalIP")),
        s(address("ExternalIP")),
        s(info("osImage")),
        s(info("kernelVersion")),
        s(info("containerRuntimeVersion")),
    ]
}

fn event_row(ev: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let since = |path: &str| age_at(ev, path, now);
    let first = if has(ev, "firstTimestamp") {
        since("firstTimestamp")
    } else {
        since("eventTime")
    };
    let mut last = if has(ev, "lastTimestamp") {
        since("lastTimestamp")
    } else {
        first.clone()
    };
    let mut count = i64_at(ev, "count").unwrap_or(0);
    if has(ev, "series") {
        last = since("series.lastObservedTime");
        count = i64_at(ev, "series.count").unwrap_or(0);
    } else if count == 0 {
        count = 1;
    }
    let kind = string_at(ev, "involvedObject.kind").to_lowercase();
    let name = string_at(ev, "involvedObject.name");
    let target = if name.is_empty() {
        kind
    } else {
        format!("{kind}/{name}")
    };
    let first_non_empty = |a: String, b: String| if a.is_empty() { b } else { a };
    let component = first_non_empty(
        string_at(ev, "source.component"),
        string_at(ev, "reportingComponent"),
    );
    let instance = first_non_empty(
        string_at(ev, "source.host"),
        string_at(ev, "reportingInstance"),
    );
    let source = if instance.is_empty() {
        component
    } else {
        format!("{component}, {instance}")
    };
    vec![
        s(last),
        s(string_at(ev, "type")),
        s(string_at(ev, "reason")),
        s(target),
        s(string_at(ev, "involvedObject.fieldPath")),
        s(source),
        s(string_at(ev, "message").trim()),
        s(first),
        int(count),
        name_cell(ev),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap()
    }

    #[test]
    fn service_rows() {
        let svc = json!({"metadata": {"name": "web", "creationTimestamp": "2024-05-01T11:00:00Z"},
            "spec": {"type": "NodePort", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                     "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}],
                     "selector": {"app": "web"}}});
        let r = row("", "Service", &svc, now()).unwrap();
        assert_eq!(
            r,
            vec![
                s("web"),
                s("NodePort"),
                s("10.96.0.10"),
                s("<none>"),
                s("80:30080/TCP,53/UDP"),
                s("60m"),
                s("app=web")
            ]
        );
        let lb = json!({"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer", "ports": []}});
        let r = row("", "Service", &lb, now()).unwrap();
        assert_eq!(r[2], s("<none>"));
        assert_eq!(r[3], s("<pending>"));
        assert_eq!(r[4], s("<none>"));
        assert_eq!(r[5], s("<unknown>"));
    }

    #[test]
    fn node_row_status_roles_addresses() {
        let node = json!({"metadata": {"name": "n1", "creationTimestamp": "2024-04-26T12:00:00Z",
                "labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "worker"}},
            "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                "addresses": [{"type": "InternalIP", "address": "10.0.0.2"}],
                "nodeInfo": {"kubeletVersion": "v1.32.0", "osImage": "Linux"}}});
        let r = node_row(&node, now());
        assert_eq!(r[1], s("Ready,SchedulingDisabled"));
        assert_eq!(r[2], s("control-plane,worker"));
        assert_eq!(r[3], s("5d"));
        assert_eq!(r[4], s("v1.32.0"));
        assert_eq!(r[5], s("10.0.0.2"));
        assert_eq!(r[6], s("<none>"));
        assert_eq!(r[8], s("<unknown>"));
    }

    #[test]
    fn event_rows_for_both_versions() {
        let core = json!({"metadata": {"name": "e1"}, "type": "Warning", "reason": "BackOff",
            "involvedObject": {"kind": "Pod", "name": "p", "fieldPath": "spec.containers{a}"},
            "message": " Back-off restarting ", "source": {"component": "kubelet", "host": "n1"},
            "firstTimestamp": "2024-05-01T11:00:00Z", "lastTimestamp": "2024-05-01T11:59:00Z", "count": 7});
        let r = row("", "Event", &core, now()).unwrap();
        assert_eq!(r[0], s("60s"));
        assert_eq!(r[3], s("pod/p"));
        assert_eq!(r[5], s("kubelet, n1"));
        assert_eq!(r[6], s("Back-off restarting"));
        assert_eq!(r[7], s("60m"));
        assert_eq!(r[8], int(7));
        let v1 = json!({"apiVersion": "events.k8s.io/v1", "metadata": {"name": "e2"},
            "regarding": {"kind": "Node", "name": "n1"}, "note": "ok", "type": "Normal", "reason": "Ready",
            "eventTime": "2024-05-01T11:59:30.000000Z", "reportingController": "node-controller"});
        let r = row("events.k8s.io", "Event", &v1, now()).unwrap();
        assert_eq!(r[0], s("30s"));
        assert_eq!(r[3], s("node/n1"));
        assert_eq!(r[5], s("node-controller"));
        assert_eq!(r[8], int(1));
    }

    #[test]
    fn endpoints_and_slices() {
        let ep = json!({"metadata": {"name": "e"}, "subsets": [{"addresses": [
            {"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {"ip": "10.0.0.3"}, {"ip": "10.0.0.4"}],
            "ports": [{"port": 80}]}]});
        assert_eq!(
            format_endpoints(&ep),
            "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 1 more..."
        );
        let slice = json!({"metadata": {"name": "s"}, "addressType": "IPv4", "ports": [{"port": 80}],
            "endpoints": [{"addresses": ["10.0.0.1"]}]});
        let r = row("discovery.k8s.io", "EndpointSlice", &slice, now()).unwrap();
        assert_eq!(r[2], s("80"));
        assert_eq!(r[3], s("10.0.0.1"));
    }

    #[test]
    fn pvc_and_secret_rows() {
        let pvc = json!({"metadata": {"name": "data"}, "spec": {"volumeName": "pv1", "storageClassName": "standard",
            "volumeMode": "Filesystem"}, "status": {"phase": "Bound", "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce", "ReadOnlyMany"]}});
        let r = row("", "PersistentVolumeClaim", &pvc, now()).unwrap();
        assert_eq!(
            r[1..7],
            [
                s("Bound"),
                s("pv1"),
                s("1Gi"),
                s("RWO,ROX"),
                s("standard"),
                s("<unset>")
            ]
        );
        let secret =
            json!({"metadata": {"name": "s"}, "type": "Opaque", "data": {"a": "", "b": ""}});
        assert_eq!(row("", "Secret", &secret, now()).unwrap()[2], int(2));
    }
}
