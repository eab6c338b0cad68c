//! Printers for RBAC, storage, networking, scheduling, certificates, admission, flow control
//! and the aggregator's APIServices.

use chrono::{DateTime, Utc};
use k8s_openapi::api::certificates::v1 as certificates;
use k8s_openapi::api::flowcontrol::v1 as flowcontrol;
use k8s_openapi::api::networking::v1 as networking;
use k8s_openapi::api::rbac::v1 as rbac;
use k8s_openapi::api::scheduling::v1 as scheduling;
use k8s_openapi::api::storage::v1 as storage;
use serde_json::Value;

use super::{age_at, age_col, col, doc, has, human_duration, int, name_cell, name_col, s, wide};
use crate::resources::json::{array_at, at, bool_at, i64_at, object_at, str_at, string_at};
use crate::resources::labels::format_label_selector;
use crate::resources::quantity::Quantity;
use crate::resources::TableColumn;

fn binding_columns(what: &str, role_doc: String) -> Vec<TableColumn> {
    vec![
        name_col(),
        col("Role", "string", role_doc),
        age_col(),
        wide(col("Users", "string", format!("Users in the {what}"))),
        wide(col("Groups", "string", format!("Groups in the {what}"))),
        wide(col(
            "ServiceAccounts",
            "string",
            format!("ServiceAccounts in the {what}"),
        )),
    ]
}

pub(super) fn columns(group: &str, kind: &str) -> Option<Vec<TableColumn>> {
    Some(match (group, kind) {
        ("rbac.authorization.k8s.io", "RoleBinding") => {
            binding_columns("roleBinding", doc::<rbac::RoleBinding>("roleRef"))
        }
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => binding_columns(
            "clusterRoleBinding",
            doc::<rbac::ClusterRoleBinding>("roleRef"),
        ),
        ("certificates.k8s.io", "CertificateSigningRequest") => {
            let sp = |f: &str| doc::<certificates::CertificateSigningRequestSpec>(f);
            vec![
                name_col(),
                age_col(),
                col("SignerName", "string", sp("signerName")),
                col("Requestor", "string", sp("request")),
                col("RequestedDuration", "string", sp("expirationSeconds")),
                col(
                    "Condition",
                    "string",
                    doc::<certificates::CertificateSigningRequestStatus>("conditions"),
                ),
            ]
        }
        ("storage.k8s.io", "StorageClass") => {
            let d = |f: &str| doc::<storage::StorageClass>(f);
            vec![
                name_col(),
                col("Provisioner", "string", d("provisioner")),
                col("ReclaimPolicy", "string", d("reclaimPolicy")),
                col("VolumeBindingMode", "string", d("volumeBindingMode")),
                col("AllowVolumeExpansion", "string", d("allowVolumeExpansion")),
                age_col(),
            ]
        }
        ("storage.k8s.io", "CSINode") => vec![
            name_col(),
            col(
                "Drivers",
                "integer",
                "Drivers indicates the number of CSI drivers registered on the node",
            ),
            age_col(),
        ],
        ("storage.k8s.io", "CSIDriver") => {
            let d = |f: &str| doc::<storage::CSIDriverSpec>(f);
            vec![
                name_col(),
                col("AttachRequired", "boolean", d("attachRequired")),
                col("PodInfoOnMount", "boolean", d("podInfoOnMount")),
                col("StorageCapacity", "boolean", d("storageCapacity")),
                col("TokenRequests", "string", d("tokenRequests")),
                col("RequiresRepublish", "boolean", d("requiresRepublish")),
                col("Modes", "string", d("volumeLifecycleModes")),
                age_col(),
            ]
        }
        ("storage.k8s.io", "CSIStorageCapacity") => vec![
            name_col(),
            col(
                "StorageClassName",
                "string",
                doc::<storage::CSIStorageCapacity>("storageClassName"),
            ),
            col(
                "Capacity",
                "string",
                doc::<storage::CSIStorageCapacity>("capacity"),
            ),
        ],
        ("storage.k8s.io", "VolumeAttachment") => {
            let mut attacher = col(
                "Attacher",
                "string",
                doc::<storage::VolumeAttachmentSpec>("attacher"),
            );
            attacher.format = "name".into();
            vec![
                name_col(),
                attacher,
                col(
                    "PV",
                    "string",
                    doc::<storage::VolumeAttachmentSource>("persistentVolumeName"),
                ),
                col(
                    "Node",
                    "string",
                    doc::<storage::VolumeAttachmentSpec>("nodeName"),
                ),
                col(
                    "Attached",
                    "boolean",
                    doc::<storage::VolumeAttachmentStatus>("attached"),
                ),
                age_col(),
            ]
        }
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration")
        | ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration") => vec![
            name_col(),
            col(
                "Webhooks",
                "integer",
                "Webhooks indicates the number of webhooks registered in this configuration",
            ),
            age_col(),
        ],
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy") => vec![
            name_col(),
            col(
                "Validations",
                "integer",
                "Validations indicates the number of validation rules defined in this configuration",
            ),
            col(
                "ParamKind",
                "string",
                "ParamKind specifies the kind of resources used to parameterize this policy",
            ),
            age_col(),
        ],
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding") => vec![
            name_col(),
            col(
                "PolicyName",
                "string",
                "PolicyName indicates the policy definition which the policy binding binded to",
            ),
            col(
                "ParamRef",
                "string",
                "ParamRef indicates the param resource which sets the configration param",
            ),
            age_col(),
        ],
        ("flowcontrol.apiserver.k8s.io", "FlowSchema") => {
            let d = |f: &str| doc::<flowcontrol::FlowSchemaSpec>(f);
            vec![
                name_col(),
                col(
                    "PriorityLevel",
                    "string",
                    doc::<flowcontrol::PriorityLevelConfigurationReference>("name"),
                ),
                col("MatchingPrecedence", "string", d("matchingPrecedence")),
                col("DistinguisherMethod", "string", d("distinguisherMethod")),
                age_col(),
                col(
                    "MissingPL",
                    "string",
                    "references a broken or non-existent PriorityLevelConfiguration",
                ),
            ]
        }
        ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration") => {
            let q = |f: &str| doc::<flowcontrol::QueuingConfiguration>(f);
            vec![
                name_col(),
                col(
                    "Type",
                    "string",
                    doc::<flowcontrol::PriorityLevelConfigurationSpec>("type"),
                ),
                col(
                    "NominalConcurrencyShares",
                    "string",
                    doc::<flowcontrol::LimitedPriorityLevelConfiguration>(
                        "nominalConcurrencyShares",
                    ),
                ),
                col("Queues", "string", q("queues")),
                col("HandSize", "string", q("handSize")),
                col("QueueLengthLimit", "string", q("queueLengthLimit")),
                age_col(),
            ]
        }
        ("scheduling.k8s.io", "PriorityClass") => {
            let d = |f: &str| doc::<scheduling::PriorityClass>(f);
            vec![
                name_col(),
                col("Value", "integer", d("value")),
                col("Global-Default", "boolean", d("globalDefault")),
                age_col(),
                col("PreemptionPolicy", "string", d("preemptionPolicy")),
            ]
        }
        ("node.k8s.io", "RuntimeClass") => vec![
            name_col(),
            // Upstream points this description at a field ObjectMeta does not have.
            col("Handler", "string", ""),
            age_col(),
        ],
        ("networking.k8s.io", "Ingress") => vec![
            name_col(),
            col(
                "Class",
                "string",
                "The name of the IngressClass resource that should be used for additional configuration",
            ),
            col(
                "Hosts",
                "string",
                "Hosts that incoming requests are matched against before the ingress rule",
            ),
            col(
                "Address",
                "string",
                "Address is a list containing ingress points for the load-balancer",
            ),
            col("Ports", "string", "Ports of TLS configurations that open"),
            age_col(),
        ],
        ("networking.k8s.io", "IngressClass") => vec![
            name_col(),
            col(
                "Controller",
                "string",
                "Controller that is responsible for handling this class",
            ),
            col(
                "Parameters",
                "string",
                "A reference to a resource with additional parameters",
            ),
            age_col(),
        ],
        ("networking.k8s.io", "NetworkPolicy") => vec![
            name_col(),
            col(
                "Pod-Selector",
                "string",
                doc::<networking::NetworkPolicySpec>("podSelector"),
            ),
            age_col(),
        ],
        ("apiregistration.k8s.io", "APIService") => vec![
            name_col(),
            col(
                "Service",
                "string",
                "The reference to the service that hosts this API endpoint.",
            ),
            col("Available", "string", "Whether this service is available."),
            age_col(),
        ],
        _ => return None,
    })
}

pub(super) fn row(group: &str, kind: &str, obj: &Value, now: DateTime<Utc>) -> Option<Vec<Value>> {
    let age = || s(age_at(obj, "metadata.creationTimestamp", now));
    let bool_or = |path: &str, default: bool| Value::Bool(bool_at(obj, path).unwrap_or(default));
    Some(match (group, kind) {
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            let mut users = Vec::new();
            let mut groups = Vec::new();
            let mut sas = Vec::new();
            for subj in array_at(obj, "subjects") {
                let name = string_at(subj, "name");
                match str_at(subj, "kind").unwrap_or_default() {
                    "ServiceAccount" => {
                        sas.push(format!("{}/{}", string_at(subj, "namespace"), name))
                    }
                    "User" => users.push(name),
                    "Group" => groups.push(name),
                    _ => {}
                }
            }
            vec![
                name_cell(obj),
                s(format!(
                    "{}/{}",
                    string_at(obj, "roleRef.kind"),
                    string_at(obj, "roleRef.name")
                )),
                age(),
                s(users.join(", ")),
                s(groups.join(", ")),
                s(sas.join(", ")),
            ]
        }
        ("certificates.k8s.io", "CertificateSigningRequest") => {
            let conditions = array_at(obj, "status.conditions");
            let has_type = |t: &str| conditions.iter().any(|c| str_at(c, "type") == Some(t));
            let mut status = if has_type("Denied") {
                "Denied".to_string()
            } else if has_type("Approved") {
                "Approved".to_string()
            } else {
                "Pending".to_string()
            };
            if has_type("Failed") {
                status.push_str(",Failed");
            }
            if str_at(obj, "status.certificate").is_some_and(|c| !c.is_empty()) {
                status.push_str(",Issued");
            }
            let signer = str_at(obj, "spec.signerName")
                .filter(|s| !s.is_empty())
                .unwrap_or("<none>");
            let duration = i64_at(obj, "spec.expirationSeconds")
                .map(|secs| human_duration(chrono::Duration::seconds(secs)))
                .unwrap_or_else(|| "<none>".to_string());
            vec![
                name_cell(obj),
                age(),
                s(signer),
                s(string_at(obj, "spec.username")),
                s(duration),
                s(status),
            ]
        }
        ("storage.k8s.io", "StorageClass") => {
            let annotations = object_at(obj, "metadata.annotations");
            let is_default = annotations.is_some_and(|a| {
                [
                    "storageclass.kubernetes.io/is-default-class",
                    "storageclass.beta.kubernetes.io/is-default-class",
                ]
                .iter()
                .any(|k| a.get(*k).and_then(Value::as_str) == Some("true"))
            });
            let mut name = string_at(obj, "metadata.name");
            if is_default {
                name.push_str(" (default)");
            }
            vec![
                s(name),
                s(string_at(obj, "provisioner")),
                s(str_at(obj, "reclaimPolicy").unwrap_or("Delete")),
                s(str_at(obj, "volumeBindingMode").unwrap_or("Immediate")),
                bool_or("allowVolumeExpansion", false),
                age(),
            ]
        }
        ("storage.k8s.io", "CSINode") => vec![
            name_cell(obj),
            int(array_at(obj, "spec.drivers").len() as i64),
            age(),
        ],
        ("storage.k8s.io", "CSIDriver") => {
            let modes: Vec<String> = array_at(obj, "spec.volumeLifecycleModes")
                .iter()
                .filter_map(|m| m.as_str().map(String::from))
                .collect();
            let tokens = if has(obj, "spec.tokenRequests") {
                array_at(obj, "spec.tokenRequests")
                    .iter()
                    .map(|t| string_at(t, "audience"))
                    .collect::<Vec<_>>()
                    .join(",")
            } else {
                "<unset>".to_string()
            };
            vec![
                name_cell(obj),
                bool_or("spec.attachRequired", true),
                bool_or("spec.podInfoOnMount", false),
                bool_or("spec.storageCapacity", false),
                s(tokens),
                bool_or("spec.requiresRepublish", false),
                s(if modes.is_empty() {
                    "<none>".to_string()
                } else {
                    modes.join(",")
                }),
                age(),
            ]
        }
        ("storage.k8s.io", "CSIStorageCapacity") => vec![
            name_cell(obj),
            s(string_at(obj, "storageClassName")),
            s(at(obj, "capacity")
                .and_then(Quantity::from_json)
                .map(|q| q.canonical())
                .unwrap_or_else(|| "<unset>".to_string())),
        ],
        ("storage.k8s.io", "VolumeAttachment") => vec![
            name_cell(obj),
            s(string_at(obj, "spec.attacher")),
            s(string_at(obj, "spec.source.persistentVolumeName")),
            s(string_at(obj, "spec.nodeName")),
            bool_or("status.attached", false),
            age(),
        ],
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration")
        | ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration") => vec![
            name_cell(obj),
            int(array_at(obj, "webhooks").len() as i64),
            age(),
        ],
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy") => {
            let param_kind = if has(obj, "spec.paramKind") {
                format!(
                    "{}/{}",
                    string_at(obj, "spec.paramKind.apiVersion"),
                    string_at(obj, "spec.paramKind.kind")
                )
            } else {
                "<unset>".to_string()
            };
            vec![
                name_cell(obj),
                int(array_at(obj, "spec.validations").len() as i64),
                s(param_kind),
                age(),
            ]
        }
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding") => {
            let param = match at(obj, "spec.paramRef").filter(|p| !p.is_null()) {
                None => "<unset>".to_string(),
                Some(pr) => {
                    let name = string_at(pr, "name");
                    let ns = string_at(pr, "namespace");
                    if !name.is_empty() {
                        if ns.is_empty() {
                            format!("*/{name}")
                        } else {
                            format!("{ns}/{name}")
                        }
                    } else if has(pr, "selector") {
                        format_label_selector(at(pr, "selector"))
                    } else {
                        "<unset>".to_string()
                    }
                }
            };
            vec![
                name_cell(obj),
                s(string_at(obj, "spec.policyName")),
                s(param),
                age(),
            ]
        }
        ("flowcontrol.apiserver.k8s.io", "FlowSchema") => {
            let dangling = array_at(obj, "status.conditions")
                .iter()
                .find(|c| str_at(c, "type") == Some("Dangling"))
                .map(|c| string_at(c, "status"))
                .unwrap_or_else(|| "?".to_string());
            vec![
                name_cell(obj),
                s(string_at(obj, "spec.priorityLevelConfiguration.name")),
                int(i64_at(obj, "spec.matchingPrecedence").unwrap_or(0)),
                s(str_at(obj, "spec.distinguisherMethod.type").unwrap_or("<none>")),
                age(),
                s(dangling),
            ]
        }
        ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration") => {
            let none = || s("<none>");
            let limited = at(obj, "spec.limited").filter(|l| !l.is_null());
            let num = |v: Option<i64>| v.map(int).unwrap_or_else(none);
            let queuing = limited
                .and_then(|l| at(l, "limitResponse.queuing"))
                .filter(|q| !q.is_null());
            vec![
                name_cell(obj),
                s(string_at(obj, "spec.type")),
                limited
                    .map(|l| int(i64_at(l, "nominalConcurrencyShares").unwrap_or(0)))
                    .unwrap_or_else(none),
                num(queuing.map(|q| i64_at(q, "queues").unwrap_or(0))),
                num(queuing.map(|q| i64_at(q, "handSize").unwrap_or(0))),
                num(queuing.map(|q| i64_at(q, "queueLengthLimit").unwrap_or(0))),
                age(),
            ]
        }
        ("scheduling.k8s.io", "PriorityClass") => vec![
            name_cell(obj),
            int(i64_at(obj, "value").unwrap_or(0)),
            bool_or("globalDefault", false),
            age(),
            s(string_at(obj, "preemptionPolicy")),
        ],
        ("node.k8s.io", "RuntimeClass") => {
            vec![name_cell(obj), s(string_at(obj, "handler")), age()]
        }
        ("networking.k8s.io", "Ingress") => {
            let rules = array_at(obj, "spec.rules");
            let mut hosts = Vec::new();
            let mut more = false;
            for r in rules {
                if hosts.len() == 3 {
                    more = true;
                }
                let host = string_at(r, "host");
                if !more && !host.is_empty() {
                    hosts.push(host);
                }
            }
            let hosts = if hosts.is_empty() {
                "*".to_string()
            } else if more {
                format!("{} + {} more...", hosts.join(","), rules.len() - 3)
            } else {
                hosts.join(",")
            };
            let mut addresses: Vec<String> = array_at(obj, "status.loadBalancer.ingress")
                .iter()
                .filter_map(|i| {
                    str_at(i, "ip")
                        .filter(|s| !s.is_empty())
                        .or_else(|| str_at(i, "hostname").filter(|s| !s.is_empty()))
                        .map(String::from)
                })
                .collect();
            addresses.sort();
            addresses.dedup();
            let ports = if array_at(obj, "spec.tls").is_empty() {
                "80"
            } else {
                "80, 443"
            };
            vec![
                name_cell(obj),
                s(str_at(obj, "spec.ingressClassName").unwrap_or("<none>")),
                s(hosts),
                s(addresses.join(",")),
                s(ports),
                age(),
            ]
        }
        ("networking.k8s.io", "IngressClass") => {
            let params = match at(obj, "spec.parameters").filter(|p| !p.is_null()) {
                None => "<none>".to_string(),
                Some(p) => {
                    let mut out = string_at(p, "kind");
                    if let Some(g) = str_at(p, "apiGroup") {
                        out = format!("{out}.{g}");
                    }
                    format!("{out}/{}", string_at(p, "name"))
                }
            };
            vec![
                name_cell(obj),
                s(string_at(obj, "spec.controller")),
                s(params),
                age(),
            ]
        }
        ("networking.k8s.io", "NetworkPolicy") => {
            let sel = at(obj, "spec.podSelector").cloned().unwrap_or(Value::Null);
            // The pod selector is a struct upstream, so an absent one prints as empty.
            let sel = if sel.is_null() {
                serde_json::json!({})
            } else {
                sel
            };
            vec![name_cell(obj), s(format_label_selector(Some(&sel))), age()]
        }
        ("apiregistration.k8s.io", "APIService") => {
            let service = if has(obj, "spec.service") {
                format!(
                    "{}/{}",
                    string_at(obj, "spec.service.namespace"),
                    string_at(obj, "spec.service.name")
                )
            } else {
                "Local".to_string()
            };
            let available = array_at(obj, "status.conditions")
                .iter()
                .find(|c| str_at(c, "type") == Some("Available"))
                .map(|c| {
                    let status = string_at(c, "status");
                    let reason = string_at(c, "reason");
                    if status == "True" || reason.is_empty() {
                        status
                    } else {
                        format!("{status} ({reason})")
                    }
                })
                .unwrap_or_else(|| "Unknown".to_string());
            vec![name_cell(obj), s(service), s(available), age()]
        }
        _ => return None,
    })
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
    fn role_binding_subjects() {
        let rb = json!({"metadata": {"name": "rb"}, "roleRef": {"kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "User", "name": "alice"}, {"kind": "Group", "name": "devs"},
                         {"kind": "ServiceAccount", "name": "sa", "namespace": "ns"}, {"kind": "User", "name": "bob"}]});
        let r = row("rbac.authorization.k8s.io", "RoleBinding", &rb, now()).unwrap();
        assert_eq!(r[1], s("ClusterRole/view"));
        assert_eq!(r[3], s("alice, bob"));
        assert_eq!(r[4], s("devs"));
        assert_eq!(r[5], s("ns/sa"));
    }

    #[test]
    fn storage_class_default_marker() {
        let sc = json!({"metadata": {"name": "standard",
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "rancher.io/local-path"});
        let r = row("storage.k8s.io", "StorageClass", &sc, now()).unwrap();
        assert_eq!(
            r[..5],
            [
                s("standard (default)"),
                s("rancher.io/local-path"),
                s("Delete"),
                s("Immediate"),
                Value::Bool(false)
            ]
        );
    }

    #[test]
    fn csr_condition_summary() {
        let csr = json!({"metadata": {"name": "c"}, "spec": {"signerName": "kubernetes.io/kube-apiserver-client",
            "username": "alice", "expirationSeconds": 86400},
            "status": {"conditions": [{"type": "Approved"}], "certificate": "Zm9v"}});
        let r = row(
            "certificates.k8s.io",
            "CertificateSigningRequest",
            &csr,
            now(),
        )
        .unwrap();
        assert_eq!(
            r[2..],
            [
                s("kubernetes.io/kube-apiserver-client"),
                s("alice"),
                s("24h"),
                s("Approved,Issued")
            ]
        );
    }

    #[test]
    fn ingress_hosts_and_ports() {
        let ing = json!({"metadata": {"name": "i"}, "spec": {"rules": [{"host": "a.example"}, {"host": "b.example"}],
            "tls": [{}]}, "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}});
        let r = row("networking.k8s.io", "Ingress", &ing, now()).unwrap();
        assert_eq!(
            r[1..5],
            [
                s("<none>"),
                s("a.example,b.example"),
                s("1.2.3.4"),
                s("80, 443")
            ]
        );
    }

    #[test]
    fn every_row_matches_its_columns() {
        let kinds = [
            ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
            ("certificates.k8s.io", "CertificateSigningRequest"),
            ("storage.k8s.io", "StorageClass"),
            ("storage.k8s.io", "CSINode"),
            ("storage.k8s.io", "CSIDriver"),
            ("storage.k8s.io", "CSIStorageCapacity"),
            ("storage.k8s.io", "VolumeAttachment"),
            (
                "admissionregistration.k8s.io",
                "MutatingWebhookConfiguration",
            ),
            ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
            (
                "admissionregistration.k8s.io",
                "ValidatingAdmissionPolicyBinding",
            ),
            ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
            ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
            ("scheduling.k8s.io", "PriorityClass"),
            ("node.k8s.io", "RuntimeClass"),
            ("networking.k8s.io", "IngressClass"),
            ("networking.k8s.io", "NetworkPolicy"),
            ("apiregistration.k8s.io", "APIService"),
        ];
        for (g, k) in kinds {
            let cols = columns(g, k).unwrap();
            let cells = row(g, k, &json!({"metadata": {"name": "x"}}), now()).unwrap();
            assert_eq!(cols.len(), cells.len(), "{g}/{k}");
        }
    }
}
