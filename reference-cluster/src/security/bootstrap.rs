//! Upstream's bootstrap RBAC policy (`plugin/pkg/auth/authorizer/rbac/bootstrappolicy`): the
//! default ClusterRoles, ClusterRoleBindings, Roles and RoleBindings the API server creates at
//! start, labelled `kubernetes.io/bootstrapping: rbac-defaults` and annotated
//! `rbac.authorization.kubernetes.io/autoupdate: "true"` as upstream does.
//!
//! Rules follow upstream 1.32 with feature-gated additions for alpha/beta features left out.

use kubeproof_wire::request::READ_WRITE;
use serde_json::{json, Value};

use super::rbac::{aggregate_all, PolicyRule, GROUP};

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];

const LEGACY: &str = "";
const APPS: &str = "apps";
const AUTHENTICATION: &str = "authentication.k8s.io";
const AUTHORIZATION: &str = "authorization.k8s.io";
const AUTOSCALING: &str = "autoscaling";
const BATCH: &str = "batch";
const CERTIFICATES: &str = "certificates.k8s.io";
const COORDINATION: &str = "coordination.k8s.io";
const DISCOVERY: &str = "discovery.k8s.io";
const EVENTS: &str = "events.k8s.io";
const EXTENSIONS: &str = "extensions";
const NETWORKING: &str = "networking.k8s.io";
const POLICY: &str = "policy";
const STORAGE: &str = "storage.k8s.io";
const ADMISSIONREGISTRATION: &str = "admissionregistration.k8s.io";

const AGGREGATE_TO_ADMIN: &str = "rbac.authorization.k8s.io/aggregate-to-admin";
const AGGREGATE_TO_EDIT: &str = "rbac.authorization.k8s.io/aggregate-to-edit";
const AGGREGATE_TO_VIEW: &str = "rbac.authorization.k8s.io/aggregate-to-view";

/// The namespace the controllers' service accounts live in.
pub const SYSTEM_NAMESPACE: &str = "kube-system";
/// Prefix of the controllers' roles (`system:controller:deployment-controller`).
pub const CONTROLLER_ROLE_PREFIX: &str = "system:controller:";

fn r(verbs: &[&str], groups: &[&str], resources: &[&str]) -> PolicyRule {
    PolicyRule::resource(verbs, groups, resources)
}

fn url(verbs: &[&str], urls: &[&str]) -> PolicyRule {
    PolicyRule::non_resource(verbs, urls)
}

fn events_rule() -> PolicyRule {
    r(
        &["create", "update", "patch"],
        &[LEGACY, EVENTS],
        &["events"],
    )
}

fn metadata(name: &str, namespace: Option<&str>, extra_labels: &[(&str, &str)]) -> Value {
    let mut labels = serde_json::Map::new();
    labels.insert("kubernetes.io/bootstrapping".into(), json!("rbac-defaults"));
    for (k, v) in extra_labels {
        labels.insert((*k).into(), json!(v));
    }
    let mut meta = json!({
        "name": name,
        "labels": labels,
        "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
    });
    if let Some(ns) = namespace {
        meta["namespace"] = json!(ns);
    }
    meta
}

fn cluster_role(name: &str, labels: &[(&str, &str)], rules: Vec<PolicyRule>) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": metadata(name, None, labels),
        "rules": rules,
    })
}

fn aggregated_role(name: &str, labels: &[(&str, &str)], selector_label: &str) -> Value {
    let mut role = cluster_role(name, labels, Vec::new());
    role["aggregationRule"] =
        json!({"clusterRoleSelectors": [{"matchLabels": {selector_label: "true"}}]});
    role
}

fn role(namespace: &str, name: &str, rules: Vec<PolicyRule>) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": metadata(name, Some(namespace), &[]),
        "rules": rules,
    })
}

/// A binding subject: `User`/`Group` carry the RBAC API group, `ServiceAccount` a namespace.
pub fn subject(kind: &str, name: &str, namespace: Option<&str>) -> Value {
    match namespace {
        Some(ns) => json!({"kind": kind, "name": name, "namespace": ns}),
        None => json!({"apiGroup": GROUP, "kind": kind, "name": name}),
    }
}

fn cluster_binding(name: &str, role: &str, subjects: Vec<Value>) -> Value {
    let mut b = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": metadata(name, None, &[]),
        "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": role},
    });
    if !subjects.is_empty() {
        b["subjects"] = json!(subjects);
    }
    b
}

fn role_binding(namespace: &str, name: &str, role: &str, subjects: Vec<Value>) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": metadata(name, Some(namespace), &[]),
        "roleRef": {"apiGroup": GROUP, "kind": "Role", "name": role},
        "subjects": subjects,
    })
}

fn group(name: &str) -> Value {
    subject("Group", name, None)
}

fn user(name: &str) -> Value {
    subject("User", name, None)
}

fn sa(namespace: &str, name: &str) -> Value {
    subject("ServiceAccount", name, Some(namespace))
}

/// Upstream `NodeRules()`: what a kubelet may do (further narrowed by NodeRestriction).
pub fn node_rules() -> Vec<PolicyRule> {
    vec![
        r(&["create"], &[AUTHENTICATION], &["tokenreviews"]),
        r(
            &["create"],
            &[AUTHORIZATION],
            &["subjectaccessreviews", "localsubjectaccessreviews"],
        ),
        r(READ, &[LEGACY], &["services"]),
        r(&["create", "get", "list", "watch"], &[LEGACY], &["nodes"]),
        r(&["update", "patch"], &[LEGACY], &["nodes/status"]),
        r(&["update", "patch"], &[LEGACY], &["nodes"]),
        r(&["create", "update", "patch"], &[LEGACY], &["events"]),
        r(READ, &[LEGACY], &["pods"]),
        r(&["create", "delete"], &[LEGACY], &["pods"]),
        r(&["update", "patch"], &[LEGACY], &["pods/status"]),
        r(&["create"], &[LEGACY], &["pods/eviction"]),
        r(
            &["get", "list", "watch"],
            &[LEGACY],
            &["secrets", "configmaps"],
        ),
        r(
            &["get"],
            &[LEGACY],
            &["persistentvolumeclaims", "persistentvolumes"],
        ),
        r(&["get"], &[LEGACY], &["endpoints"]),
        r(
            &["create", "get", "list", "watch"],
            &[CERTIFICATES],
            &["certificatesigningrequests"],
        ),
        r(
            &["get", "create", "update", "patch", "delete"],
            &[COORDINATION],
            &["leases"],
        ),
        r(&["get"], &[STORAGE], &["volumeattachments"]),
        r(&["create"], &[LEGACY], &["serviceaccounts/token"]),
        r(
            &["get", "update", "patch"],
            &[LEGACY],
            &["persistentvolumeclaims/status"],
        ),
        r(&["get", "watch", "list"], &[STORAGE], &["csidrivers"]),
        r(
            &["get", "create", "update", "patch", "delete"],
            &[STORAGE],
            &["csinodes"],
        ),
        r(
            &["get", "list", "watch"],
            &["node.k8s.io"],
            &["runtimeclasses"],
        ),
    ]
}

fn aggregate_to_admin_rules() -> Vec<PolicyRule> {
    vec![
        r(
            &["create"],
            &[AUTHORIZATION],
            &["localsubjectaccessreviews"],
        ),
        r(READ_WRITE, &[GROUP], &["roles", "rolebindings"]),
    ]
}

fn aggregate_to_edit_rules() -> Vec<PolicyRule> {
    vec![
        r(
            READ,
            &[LEGACY],
            &[
                "pods/attach",
                "pods/proxy",
                "pods/exec",
                "pods/portforward",
                "secrets",
                "services/proxy",
            ],
        ),
        r(&["impersonate"], &[LEGACY], &["serviceaccounts"]),
        r(
            WRITE,
            &[LEGACY],
            &[
                "pods",
                "pods/attach",
                "pods/proxy",
                "pods/exec",
                "pods/portforward",
            ],
        ),
        r(&["create"], &[LEGACY], &["pods/eviction"]),
        r(
            WRITE,
            &[LEGACY],
            &[
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/proxy",
                "persistentvolumeclaims",
                "configmaps",
                "secrets",
                "events",
            ],
        ),
        r(&["create"], &[LEGACY], &["serviceaccounts/token"]),
        r(
            WRITE,
            &[APPS],
            &[
                "statefulsets",
                "statefulsets/scale",
                "daemonsets",
                "deployments",
                "deployments/scale",
                "deployments/rollback",
                "replicasets",
                "replicasets/scale",
            ],
        ),
        r(WRITE, &[AUTOSCALING], &["horizontalpodautoscalers"]),
        r(WRITE, &[BATCH], &["jobs", "cronjobs"]),
        r(
            WRITE,
            &[EXTENSIONS],
            &[
                "daemonsets",
                "deployments",
                "deployments/scale",
                "deployments/rollback",
                "ingresses",
                "replicasets",
                "replicasets/scale",
                "replicationcontrollers/scale",
                "networkpolicies",
            ],
        ),
        r(WRITE, &[POLICY], &["poddisruptionbudgets"]),
        r(WRITE, &[NETWORKING], &["networkpolicies", "ingresses"]),
        r(READ_WRITE, &[COORDINATION], &["leases"]),
    ]
}

fn aggregate_to_view_rules() -> Vec<PolicyRule> {
    vec![
        r(
            READ,
            &[LEGACY],
            &[
                "pods",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/status",
                "endpoints",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
                "configmaps",
            ],
        ),
        r(
            READ,
            &[LEGACY],
            &[
                "limitranges",
                "resourcequotas",
                "bindings",
                "events",
                "pods/status",
                "resourcequotas/status",
                "namespaces/status",
                "replicationcontrollers/status",
                "pods/log",
            ],
        ),
        r(READ, &[LEGACY], &["namespaces"]),
        r(READ, &[DISCOVERY], &["endpointslices"]),
        r(
            READ,
            &[APPS],
            &[
                "controllerrevisions",
                "statefulsets",
                "statefulsets/status",
                "statefulsets/scale",
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/status",
                "deployments/scale",
                "replicasets",
                "replicasets/status",
                "replicasets/scale",
            ],
        ),
        r(
            READ,
            &[AUTOSCALING],
            &[
                "horizontalpodautoscalers",
                "horizontalpodautoscalers/status",
            ],
        ),
        r(
            READ,
            &[BATCH],
            &["jobs", "cronjobs", "cronjobs/status", "jobs/status"],
        ),
        r(
            READ,
            &[EXTENSIONS],
            &[
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "ingresses",
                "ingresses/status",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "replicationcontrollers/scale",
                "networkpolicies",
            ],
        ),
        r(
            READ,
            &[POLICY],
            &["poddisruptionbudgets", "poddisruptionbudgets/status"],
        ),
        r(
            READ,
            &[NETWORKING],
            &["networkpolicies", "ingresses", "ingresses/status"],
        ),
    ]
}

fn scheduler_rules() -> Vec<PolicyRule> {
    vec![
        events_rule(),
        r(&["create"], &[COORDINATION], &["leases"]),
        r(&["get", "update"], &[COORDINATION], &["leases"]).names(&["kube-scheduler"]),
        r(READ, &[LEGACY], &["nodes"]),
        r(&["get", "list", "watch", "delete"], &[LEGACY], &["pods"]),
        r(&["create"], &[LEGACY], &["pods/binding", "bindings"]),
        r(&["patch", "update"], &[LEGACY], &["pods/status"]),
        r(READ, &[LEGACY], &["services", "replicationcontrollers"]),
        r(READ, &[APPS, EXTENSIONS], &["replicasets"]),
        r(READ, &[APPS], &["statefulsets"]),
        r(READ, &[POLICY], &["poddisruptionbudgets"]),
        r(
            READ,
            &[LEGACY],
            &["persistentvolumeclaims", "persistentvolumes"],
        ),
        r(&["create"], &[AUTHENTICATION], &["tokenreviews"]),
        r(&["create"], &[AUTHORIZATION], &["subjectaccessreviews"]),
        r(READ, &[STORAGE], &["csinodes"]),
        r(READ, &[LEGACY], &["namespaces"]),
        r(READ, &[STORAGE], &["csidrivers"]),
        r(READ, &[STORAGE], &["csistoragecapacities"]),
    ]
}

fn controller_manager_rules() -> Vec<PolicyRule> {
    vec![
        events_rule(),
        r(&["create"], &[COORDINATION], &["leases"]),
        r(&["get", "update"], &[COORDINATION], &["leases"]).names(&["kube-controller-manager"]),
        r(&["create"], &[LEGACY], &["secrets", "serviceaccounts"]),
        r(&["delete"], &[LEGACY], &["secrets"]),
        r(
            &["get"],
            &[LEGACY],
            &["configmaps", "namespaces", "secrets", "serviceaccounts"],
        ),
        r(&["update"], &[LEGACY], &["secrets", "serviceaccounts"]),
        r(&["create"], &[AUTHENTICATION], &["tokenreviews"]),
        r(&["create"], &[AUTHORIZATION], &["subjectaccessreviews"]),
        r(&["list", "watch"], &["*"], &["*"]),
        r(&["create"], &[LEGACY], &["serviceaccounts/token"]),
    ]
}

/// The controllers' roles (`system:controller:<name>`), each bound to the service account
/// `kube-system/<name>`, as upstream's `controller_policy.go`.
pub fn controller_roles() -> Vec<(&'static str, Vec<PolicyRule>)> {
    vec![
        (
            "attachdetach-controller",
            vec![
                r(
                    &["list", "watch"],
                    &[LEGACY],
                    &["persistentvolumes", "persistentvolumeclaims"],
                ),
                r(&["get", "list", "watch"], &[LEGACY], &["nodes"]),
                r(&["patch", "update"], &[LEGACY], &["nodes/status"]),
                r(&["list", "watch"], &[LEGACY], &["pods"]),
                events_rule(),
                r(
                    &["get", "create", "delete", "list", "watch"],
                    &[STORAGE],
                    &["volumeattachments"],
                ),
                r(&["get", "watch", "list"], &[STORAGE], &["csidrivers"]),
                r(&["get", "watch", "list"], &[STORAGE], &["csinodes"]),
            ],
        ),
        (
            "certificate-controller",
            vec![
                r(
                    &["get", "list", "watch", "delete"],
                    &[CERTIFICATES],
                    &["certificatesigningrequests"],
                ),
                r(
                    &["update"],
                    &[CERTIFICATES],
                    &[
                        "certificatesigningrequests/status",
                        "certificatesigningrequests/approval",
                    ],
                ),
                r(&["approve"], &[CERTIFICATES], &["signers"])
                    .names(&["kubernetes.io/kube-apiserver-client-kubelet"]),
                r(&["sign"], &[CERTIFICATES], &["signers"]).names(&[
                    "kubernetes.io/legacy-unknown",
                    "kubernetes.io/kube-apiserver-client",
                    "kubernetes.io/kube-apiserver-client-kubelet",
                    "kubernetes.io/kubelet-serving",
                ]),
                r(&["create"], &[AUTHORIZATION], &["subjectaccessreviews"]),
                events_rule(),
            ],
        ),
        (
            "clusterrole-aggregation-controller",
            vec![r(
                &["escalate", "get", "list", "watch", "update", "patch"],
                &[GROUP],
                &["clusterroles"],
            )],
        ),
        (
            "cronjob-controller",
            vec![
                r(&["get", "list", "watch", "update"], &[BATCH], &["cronjobs"]),
                r(
                    &[
                        "get", "list", "watch", "create", "update", "delete", "patch",
                    ],
                    &[BATCH],
                    &["jobs"],
                ),
                r(&["update"], &[BATCH], &["cronjobs/status"]),
                r(&["update"], &[BATCH], &["cronjobs/finalizers"]),
                r(&["list", "delete"], &[LEGACY], &["pods"]),
                events_rule(),
            ],
        ),
        (
            "daemon-set-controller",
            vec![
                r(
                    &["get", "list", "watch"],
                    &[EXTENSIONS, APPS],
                    &["daemonsets"],
                ),
                r(&["update"], &[EXTENSIONS, APPS], &["daemonsets/status"]),
                r(&["update"], &[EXTENSIONS, APPS], &["daemonsets/finalizers"]),
                r(&["list", "watch"], &[LEGACY], &["nodes"]),
                r(
                    &["list", "watch", "create", "delete", "patch"],
                    &[LEGACY],
                    &["pods"],
                ),
                r(&["create"], &[LEGACY], &["pods/binding"]),
                r(
                    &[
                        "get", "list", "watch", "create", "delete", "update", "patch",
                    ],
                    &[APPS],
                    &["controllerrevisions"],
                ),
                events_rule(),
            ],
        ),
        (
            "deployment-controller",
            vec![
                r(
                    &["get", "list", "watch", "update"],
                    &[EXTENSIONS, APPS],
                    &["deployments"],
                ),
                r(&["update"], &[EXTENSIONS, APPS], &["deployments/status"]),
                r(
                    &["update"],
                    &[EXTENSIONS, APPS],
                    &["deployments/finalizers"],
                ),
                r(
                    &[
                        "get", "list", "watch", "create", "update", "patch", "delete",
                    ],
                    &[APPS, EXTENSIONS],
                    &["replicasets"],
                ),
                r(&["get", "list", "watch", "update"], &[LEGACY], &["pods"]),
                events_rule(),
            ],
        ),
        (
            "disruption-controller",
            vec![
                r(
                    &["get", "list", "watch"],
                    &[EXTENSIONS, APPS],
                    &["deployments"],
                ),
                r(
                    &["get", "list", "watch"],
                    &[APPS, EXTENSIONS],
                    &["replicasets"],
                ),
                r(
                    &["get", "list", "watch"],
                    &[LEGACY],
                    &["replicationcontrollers"],
                ),
                r(
                    &["get", "list", "watch"],
                    &[POLICY],
                    &["poddisruptionbudgets"],
                ),
                r(&["get", "list", "watch"], &[APPS], &["statefulsets"]),
                r(&["update"], &[POLICY], &["poddisruptionbudgets/status"]),
                r(&["get"], &["*"], &["*/scale"]),
                r(&["patch", "update"], &[LEGACY], &["pods/status"]),
                events_rule(),
            ],
        ),
        (
            "endpoint-controller",
            vec![
                r(&["get", "list", "watch"], &[LEGACY], &["services", "pods"]),
                r(
                    &["get", "list", "create", "update", "delete"],
                    &[LEGACY],
                    &["endpoints"],
                ),
                r(&["create"], &[LEGACY], &["endpoints/restricted"]),
                events_rule(),
            ],
        ),
        (
            "endpointslice-controller",
            vec![
                r(
                    &["get", "list", "watch"],
                    &[LEGACY],
                    &["services", "pods", "nodes"],
                ),
                r(&["update"], &[LEGACY], &["services/finalizers"]),
                r(
                    &["get", "list", "create", "update", "delete"],
                    &[DISCOVERY],
                    &["endpointslices"],
                ),
                events_rule(),
            ],
        ),
        (
            "endpointslicemirroring-controller",
            vec![
                r(
                    &["get", "list", "watch"],
                    &[LEGACY],
                    &["services", "endpoints"],
                ),
                r(&["update"], &[LEGACY], &["endpoints/finalizers"]),
                r(
                    &["get", "list", "create", "update", "delete"],
                    &[DISCOVERY],
                    &["endpointslices"],
                ),
                events_rule(),
            ],
        ),
        (
            "ephemeral-volume-controller",
            vec![
                r(&["get", "list", "watch"], &[LEGACY], &["pods"]),
                r(&["update"], &[LEGACY], &["pods/finalizers"]),
                r(
                    &["get", "list", "watch", "create"],
                    &[LEGACY],
                    &["persistentvolumeclaims"],
                ),
                events_rule(),
            ],
        ),
        (
            "expand-controller",
            vec![
                r(
                    &["get", "list", "watch", "update", "patch"],
                    &[LEGACY],
                    &["persistentvolumes"],
                ),
                r(
                    &["update", "patch"],
                    &[LEGACY],
                    &["persistentvolumeclaims/status"],
                ),
                r(
                    &["get", "list", "watch"],
                    &[LEGACY],
                    &["persistentvolumeclaims"],
                ),
                r(&["get", "list", "watch"], &[STORAGE], &["storageclasses"]),
                r(&["get"], &[LEGACY], &["endpoints", "services"]),
                r(&["get"], &[LEGACY], &["secrets"]),
                events_rule(),
            ],
        ),
        (
            "generic-garbage-collector",
            vec![r(
                &["get", "list", "watch", "patch", "update", "delete"],
                &["*"],
                &["*"],
            )],
        ),
        (
            "horizontal-pod-autoscaler",
            vec![
                r(
                    &["get", "list", "watch"],
                    &[AUTOSCALING],
                    &["horizontalpodautoscalers"],
                ),
                r(
                    &["update"],
                    &[AUTOSCALING],
                    &["horizontalpodautoscalers/status"],
                ),
                r(&["get", "update"], &["*"], &["*/scale"]),
                r(&["list"], &[LEGACY], &["pods"]),
                r(&["list"], &["metrics.k8s.io"], &["pods"]),
                r(&["get", "list"], &["custom.metrics.k8s.io"], &["*"]),
                r(&["get", "list"], &["external.metrics.k8s.io"], &["*"]),
                events_rule(),
            ],
        ),
        (
            "job-controller",
            vec![
                r(
                    &["get", "list", "watch", "update", "patch"],
                    &[BATCH],
                    &["jobs"],
                ),
                r(&["update"], &[BATCH], &["jobs/status"]),
                r(&["update"], &[BATCH], &["jobs/finalizers"]),
                r(
                    &["list", "watch", "create", "delete", "patch"],
                    &[LEGACY],
                    &["pods"],
                ),
                events_rule(),
            ],
        ),
        (
            "namespace-controller",
            vec![
                r(
                    &["get", "list", "watch", "delete"],
                    &[LEGACY],
                    &["namespaces"],
                ),
                r(
                    &["update"],
                    &[LEGACY],
                    &["namespaces/finalize", "namespaces/status"],
                ),
                r(
                    &["get", "list", "delete", "deletecollection"],
                    &["*"],
                    &["*"],
                ),
            ],
        ),
        (
            "node-controller",
            vec![
                r(
                    &["get", "list", "update", "delete", "patch"],
                    &[LEGACY],
                    &["nodes"],
                ),
                r(&["patch", "update"], &[LEGACY], &["nodes/status"]),
                r(&["patch", "update"], &[LEGACY], &["pods/status"]),
                r(&["list", "delete"], &[LEGACY], &["pods"]),
                events_rule(),
            ],
        ),
        (
            "persistent-volume-binder",
            vec![
                r(
                    &["get", "list", "watch", "update", "create", "delete"],
                    &[LEGACY],
                    &["persistentvolumes"],
                ),
                r(&["update"], &[LEGACY], &["persistentvolumes/status"]),
                r(
                    &["get", "list", "watch", "update"],
                    &[LEGACY],
                    &["persistentvolumeclaims"],
                ),
                r(&["update"], &[LEGACY], &["persistentvolumeclaims/status"]),
                r(
                    &["list", "watch", "get", "create", "delete"],
                    &[LEGACY],
                    &["pods"],
                ),
                r(&["get", "create", "delete"], &[LEGACY], &["services"]),
                r(&["get"], &[LEGACY], &["secrets"]),
                r(&["list", "watch"], &[LEGACY], &["nodes"]),
                r(&["get", "list", "watch"], &[STORAGE], &["storageclasses"]),
                events_rule(),
            ],
        ),
        (
            "pod-garbage-collector",
            vec![
                r(&["list", "watch", "delete"], &[LEGACY], &["pods"]),
                r(&["get", "list"], &[LEGACY], &["nodes"]),
                r(&["patch"], &[LEGACY], &["pods/status"]),
            ],
        ),
        (
            "pv-protection-controller",
            vec![
                r(
                    &["get", "list", "watch", "update"],
                    &[LEGACY],
                    &["persistentvolumes"],
                ),
                events_rule(),
            ],
        ),
        (
            "pvc-protection-controller",
            vec![
                r(
                    &["get", "list", "watch", "update"],
                    &[LEGACY],
                    &["persistentvolumeclaims"],
                ),
                r(&["list", "watch", "get"], &[LEGACY], &["pods"]),
                events_rule(),
            ],
        ),
        (
            "replicaset-controller",
            vec![
                r(
                    &["get", "list", "watch", "update"],
                    &[APPS, EXTENSIONS],
                    &["replicasets"],
                ),
                r(&["update"], &[APPS, EXTENSIONS], &["replicasets/status"]),
                r(
                    &["update"],
                    &[APPS, EXTENSIONS],
                    &["replicasets/finalizers"],
                ),
                r(
                    &["list", "watch", "patch", "create", "delete"],
                    &[LEGACY],
                    &["pods"],
                ),
                events_rule(),
            ],
        ),
        (
            "replication-controller",
            vec![
                r(
                    &["get", "list", "watch", "update"],
                    &[LEGACY],
                    &["replicationcontrollers"],
                ),
                r(&["update"], &[LEGACY], &["replicationcontrollers/status"]),
                r(
                    &["update"],
                    &[LEGACY],
                    &["replicationcontrollers/finalizers"],
                ),
                r(
                    &["list", "watch", "patch", "create", "delete"],
                    &[LEGACY],
                    &["pods"],
                ),
                events_rule(),
            ],
        ),
        (
            "resourcequota-controller",
            vec![
                r(&["list", "watch"], &["*"], &["*"]),
                r(&["update"], &[LEGACY], &["resourcequotas/status"]),
                events_rule(),
            ],
        ),
        (
            "root-ca-cert-publisher",
            vec![
                r(&["create", "update"], &[LEGACY], &["configmaps"]),
                events_rule(),
            ],
        ),
        (
            "route-controller",
            vec![
                r(&["list", "watch"], &[LEGACY], &["nodes"]),
                r(&["patch"], &[LEGACY], &["nodes/status"]),
                events_rule(),
            ],
        ),
        (
            "service-account-controller",
            vec![
                r(&["create"], &[LEGACY], &["serviceaccounts"]),
                events_rule(),
            ],
        ),
        (
            "service-controller",
            vec![
                r(&["get", "list", "watch"], &[LEGACY], &["services"]),
                r(&["patch", "update"], &[LEGACY], &["services/status"]),
                r(&["list", "watch"], &[LEGACY], &["nodes"]),
                events_rule(),
            ],
        ),
        (
            "statefulset-controller",
            vec![
                r(&["list", "watch"], &[LEGACY], &["pods"]),
                r(&["get", "list", "watch"], &[APPS], &["statefulsets"]),
                r(&["update"], &[APPS], &["statefulsets/status"]),
                r(&["update"], &[APPS], &["statefulsets/finalizers"]),
                r(
                    &["get", "create", "delete", "update", "patch"],
                    &[LEGACY],
                    &["pods"],
                ),
                r(
                    &[
                        "get", "create", "delete", "update", "patch", "list", "watch",
                    ],
                    &[APPS],
                    &["controllerrevisions"],
                ),
                r(&["get", "create"], &[LEGACY], &["persistentvolumeclaims"]),
                r(
                    &["update", "delete"],
                    &[LEGACY],
                    &["persistentvolumeclaims"],
                ),
                events_rule(),
            ],
        ),
        (
            "ttl-after-finished-controller",
            vec![
                r(&["get", "list", "watch", "delete"], &[BATCH], &["jobs"]),
                events_rule(),
            ],
        ),
        (
            "ttl-controller",
            vec![
                r(&["update", "patch", "list", "watch"], &[LEGACY], &["nodes"]),
                events_rule(),
            ],
        ),
        (
            "validatingadmissionpolicy-status-controller",
            vec![
                r(
                    &["get", "list", "watch"],
                    &[ADMISSIONREGISTRATION],
                    &["validatingadmissionpolicies"],
                ),
                r(
                    &["get", "patch", "update"],
                    &[ADMISSIONREGISTRATION],
                    &["validatingadmissionpolicies/status"],
                ),
                events_rule(),
            ],
        ),
        (
            "legacy-service-account-token-cleaner",
            vec![
                r(&["get"], &[LEGACY], &["configmaps"])
                    .names(&["kube-apiserver-legacy-service-account-token-tracking"]),
                r(&["patch", "delete"], &[LEGACY], &["secrets"]),
            ],
        ),
    ]
}

/// The default ClusterRoles, with the aggregated ones (`admin`, `edit`, `view`) already holding
/// the rules upstream's aggregation controller computes for them.
pub fn cluster_roles() -> Vec<Value> {
    let mut roles = vec![
        cluster_role(
            "cluster-admin",
            &[],
            vec![r(&["*"], &["*"], &["*"]), url(&["*"], &["*"])],
        ),
        cluster_role(
            "system:discovery",
            &[],
            vec![url(
                &["get"],
                &[
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                    "/healthz",
                    "/livez",
                    "/openapi",
                    "/openapi/*",
                    "/readyz",
                    "/version",
                    "/version/",
                ],
            )],
        ),
        cluster_role(
            "system:monitoring",
            &[],
            vec![url(
                &["get"],
                &[
                    "/healthz",
                    "/healthz/*",
                    "/livez",
                    "/livez/*",
                    "/metrics",
                    "/metrics/slis",
                    "/readyz",
                    "/readyz/*",
                ],
            )],
        ),
        cluster_role(
            "system:basic-user",
            &[],
            vec![
                r(&["create"], &[AUTHENTICATION], &["selfsubjectreviews"]),
                r(
                    &["create"],
                    &[AUTHORIZATION],
                    &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                ),
            ],
        ),
        cluster_role(
            "system:public-info-viewer",
            &[],
            vec![url(
                &["get"],
                &["/healthz", "/livez", "/readyz", "/version", "/version/"],
            )],
        ),
        aggregated_role("admin", &[], AGGREGATE_TO_ADMIN),
        aggregated_role("edit", &[(AGGREGATE_TO_ADMIN, "true")], AGGREGATE_TO_EDIT),
        aggregated_role("view", &[(AGGREGATE_TO_EDIT, "true")], AGGREGATE_TO_VIEW),
        cluster_role(
            "system:aggregate-to-admin",
            &[(AGGREGATE_TO_ADMIN, "true")],
            aggregate_to_admin_rules(),
        ),
        cluster_role(
            "system:aggregate-to-edit",
            &[(AGGREGATE_TO_EDIT, "true")],
            aggregate_to_edit_rules(),
        ),
        cluster_role(
            "system:aggregate-to-view",
            &[(AGGREGATE_TO_VIEW, "true")],
            aggregate_to_view_rules(),
        ),
        // What metrics-server installs with its APIService: the resource metrics API is
        // readable by everyone holding view, edit or admin.
        cluster_role(
            "system:aggregated-metrics-reader",
            &[
                (AGGREGATE_TO_VIEW, "true"),
                (AGGREGATE_TO_EDIT, "true"),
                (AGGREGATE_TO_ADMIN, "true"),
            ],
            vec![r(
                &["get", "list", "watch"],
                &["metrics.k8s.io"],
                &["pods", "nodes"],
            )],
        ),
        cluster_role(
            "system:heapster",
            &[],
            vec![
                r(READ, &[LEGACY], &["events", "pods", "nodes", "namespaces"]),
                r(READ, &[EXTENSIONS], &["deployments"]),
            ],
        ),
        cluster_role("system:node", &[], node_rules()),
        cluster_role(
            "system:node-problem-detector",
            &[],
            vec![
                r(&["get"], &[LEGACY], &["nodes"]),
                r(&["patch"], &[LEGACY], &["nodes/status"]),
                events_rule(),
            ],
        ),
        cluster_role(
            "system:kubelet-api-admin",
            &[],
            vec![
                r(&["get", "list", "watch"], &[LEGACY], &["nodes"]),
                r(&["proxy"], &[LEGACY], &["nodes"]),
                r(
                    &["*"],
                    &[LEGACY],
                    &[
                        "nodes/proxy",
                        "nodes/metrics",
                        "nodes/stats",
                        "nodes/log",
                        "nodes/spec",
                        "nodes/checkpoint",
                    ],
                ),
            ],
        ),
        cluster_role(
            "system:node-bootstrapper",
            &[],
            vec![r(
                &["create", "get", "list", "watch"],
                &[CERTIFICATES],
                &["certificatesigningrequests"],
            )],
        ),
        cluster_role(
            "system:auth-delegator",
            &[],
            vec![
                r(&["create"], &[AUTHENTICATION], &["tokenreviews"]),
                r(&["create"], &[AUTHORIZATION], &["subjectaccessreviews"]),
            ],
        ),
        cluster_role(
            "system:kube-aggregator",
            &[],
            vec![r(READ, &[LEGACY], &["endpoints", "services"])],
        ),
        cluster_role(
            "system:kube-controller-manager",
            &[],
            controller_manager_rules(),
        ),
        cluster_role("system:kube-scheduler", &[], scheduler_rules()),
        cluster_role(
            "system:kube-dns",
            &[],
            vec![r(&["list", "watch"], &[LEGACY], &["endpoints", "services"])],
        ),
        cluster_role(
            "system:persistent-volume-provisioner",
            &[],
            vec![
                r(
                    &["get", "list", "watch", "create", "delete"],
                    &[LEGACY],
                    &["persistentvolumes"],
                ),
                r(
                    &["get", "list", "watch", "update"],
                    &[LEGACY],
                    &["persistentvolumeclaims"],
                ),
                r(READ, &[STORAGE], &["storageclasses"]),
                r(&["watch"], &[LEGACY], &["events"]),
                events_rule(),
            ],
        ),
        cluster_role(
            "system:volume-scheduler",
            &[],
            vec![
                r(
                    &["get", "list", "watch", "update", "patch"],
                    &[LEGACY],
                    &["persistentvolumes"],
                ),
                r(READ, &[STORAGE], &["storageclasses"]),
                r(
                    &["get", "list", "watch", "update", "patch"],
                    &[LEGACY],
                    &["persistentvolumeclaims"],
                ),
            ],
        ),
        cluster_role(
            "system:node-proxier",
            &[],
            vec![
                r(&["list", "watch"], &[LEGACY], &["services", "endpoints"]),
                r(&["get", "list", "watch"], &[LEGACY], &["nodes"]),
                events_rule(),
                r(&["list", "watch"], &[DISCOVERY], &["endpointslices"]),
            ],
        ),
        cluster_role(
            "system:service-account-issuer-discovery",
            &[],
            vec![url(
                &["get"],
                &["/.well-known/openid-configuration", "/openid/v1/jwks"],
            )],
        ),
        cluster_role(
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            &[],
            vec![r(
                &["create"],
                &[CERTIFICATES],
                &["certificatesigningrequests/nodeclient"],
            )],
        ),
        cluster_role(
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            &[],
            vec![r(
                &["create"],
                &[CERTIFICATES],
                &["certificatesigningrequests/selfnodeclient"],
            )],
        ),
    ];
    for signer in [
        "legacy-unknown",
        "kubelet-serving",
        "kube-apiserver-client",
        "kube-apiserver-client-kubelet",
    ] {
        roles.push(cluster_role(
            &format!("system:certificates.k8s.io:{signer}-approver"),
            &[],
            vec![r(&["approve"], &[CERTIFICATES], &["signers"])
                .names(&[&format!("kubernetes.io/{signer}")])],
        ));
    }
    for (name, rules) in controller_roles() {
        roles.push(cluster_role(
            &format!("{CONTROLLER_ROLE_PREFIX}{name}"),
            &[],
            rules,
        ));
    }
    aggregate_all(&mut roles);
    roles
}

/// The default ClusterRoleBindings.
pub fn cluster_role_bindings() -> Vec<Value> {
    let mut bindings = vec![
        cluster_binding(
            "cluster-admin",
            "cluster-admin",
            vec![group("system:masters")],
        ),
        cluster_binding(
            "system:monitoring",
            "system:monitoring",
            vec![group("system:monitoring")],
        ),
        cluster_binding(
            "system:discovery",
            "system:discovery",
            vec![group("system:authenticated")],
        ),
        cluster_binding(
            "system:basic-user",
            "system:basic-user",
            vec![group("system:authenticated")],
        ),
        cluster_binding(
            "system:public-info-viewer",
            "system:public-info-viewer",
            vec![
                group("system:authenticated"),
                group("system:unauthenticated"),
            ],
        ),
        cluster_binding(
            "system:node-proxier",
            "system:node-proxier",
            vec![user("system:kube-proxy")],
        ),
        cluster_binding(
            "system:kube-controller-manager",
            "system:kube-controller-manager",
            vec![user("system:kube-controller-manager")],
        ),
        cluster_binding(
            "system:kube-dns",
            "system:kube-dns",
            vec![sa(SYSTEM_NAMESPACE, "kube-dns")],
        ),
        cluster_binding(
            "system:kube-scheduler",
            "system:kube-scheduler",
            vec![user("system:kube-scheduler")],
        ),
        cluster_binding(
            "system:volume-scheduler",
            "system:volume-scheduler",
            vec![user("system:kube-scheduler")],
        ),
        // Upstream keeps this binding without subjects: nodes are authorized by the Node
        // authorizer, not by RBAC.
        cluster_binding("system:node", "system:node", Vec::new()),
        cluster_binding(
            "system:service-account-issuer-discovery",
            "system:service-account-issuer-discovery",
            vec![group("system:serviceaccounts")],
        ),
    ];
    for (name, _) in controller_roles() {
        let role = format!("{CONTROLLER_ROLE_PREFIX}{name}");
        bindings.push(cluster_binding(
            &role,
            &role,
            vec![sa(SYSTEM_NAMESPACE, name)],
        ));
    }
    bindings
}

/// The default Roles in `kube-system` and `kube-public`.
pub fn namespaced_roles() -> Vec<Value> {
    vec![
        role(
            SYSTEM_NAMESPACE,
            "extension-apiserver-authentication-reader",
            vec![r(&["get", "list", "watch"], &[LEGACY], &["configmaps"])
                .names(&["extension-apiserver-authentication"])],
        ),
        role(
            SYSTEM_NAMESPACE,
            "system::leader-locking-kube-controller-manager",
            vec![
                r(&["watch"], &[LEGACY], &["configmaps"]),
                r(&["get", "update"], &[LEGACY], &["configmaps"])
                    .names(&["kube-controller-manager"]),
            ],
        ),
        role(
            SYSTEM_NAMESPACE,
            "system::leader-locking-kube-scheduler",
            vec![
                r(&["watch"], &[LEGACY], &["configmaps"]),
                r(&["get", "update"], &[LEGACY], &["configmaps"]).names(&["kube-scheduler"]),
            ],
        ),
        role(
            SYSTEM_NAMESPACE,
            "system:controller:bootstrap-signer",
            vec![r(READ, &[LEGACY], &["secrets"])],
        ),
        role(
            SYSTEM_NAMESPACE,
            "system:controller:cloud-provider",
            vec![r(
                &["create", "get", "list", "watch"],
                &[LEGACY],
                &["configmaps"],
            )],
        ),
        role(
            SYSTEM_NAMESPACE,
            "system:controller:token-cleaner",
            vec![r(&["delete"], &[LEGACY], &["secrets"]), events_rule()],
        ),
        role(
            "kube-public",
            "system:controller:bootstrap-signer",
            vec![
                r(READ, &[LEGACY], &["configmaps"]),
                r(&["update"], &[LEGACY], &["configmaps"]).names(&["cluster-info"]),
                events_rule(),
            ],
        ),
    ]
}

/// The default RoleBindings in `kube-system` and `kube-public`.
pub fn namespaced_role_bindings() -> Vec<Value> {
    vec![
        role_binding(
            SYSTEM_NAMESPACE,
            "system::extension-apiserver-authentication-reader",
            "extension-apiserver-authentication-reader",
            vec![
                user("system:kube-controller-manager"),
                user("system:kube-scheduler"),
            ],
        ),
        role_binding(
            SYSTEM_NAMESPACE,
            "system::leader-locking-kube-controller-manager",
            "system::leader-locking-kube-controller-manager",
            vec![
                user("system:kube-controller-manager"),
                sa(SYSTEM_NAMESPACE, "kube-controller-manager"),
            ],
        ),
        role_binding(
            SYSTEM_NAMESPACE,
            "system::leader-locking-kube-scheduler",
            "system::leader-locking-kube-scheduler",
            vec![
                user("system:kube-scheduler"),
                sa(SYSTEM_NAMESPACE, "kube-scheduler"),
            ],
        ),
        role_binding(
            SYSTEM_NAMESPACE,
            "system:controller:bootstrap-signer",
            "system:controller:bootstrap-signer",
            vec![sa(SYSTEM_NAMESPACE, "bootstrap-signer")],
        ),
        role_binding(
            SYSTEM_NAMESPACE,
            "system:controller:cloud-provider",
            "system:controller:cloud-provider",
            vec![sa(SYSTEM_NAMESPACE, "cloud-provider")],
        ),
        role_binding(
            SYSTEM_NAMESPACE,
            "system:controller:token-cleaner",
            "system:controller:token-cleaner",
            vec![sa(SYSTEM_NAMESPACE, "token-cleaner")],
        ),
        role_binding(
            "kube-public",
            "system:controller:bootstrap-signer",
            "system:controller:bootstrap-signer",
            vec![sa(SYSTEM_NAMESPACE, "bootstrap-signer")],
        ),
    ]
}

/// Every bootstrap object, cluster roles first (the order the API server should create them).
pub fn all() -> Vec<Value> {
    let mut all = cluster_roles();
    all.extend(cluster_role_bindings());
    all.extend(namespaced_roles());
    all.extend(namespaced_role_bindings());
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::rbac::{authorize, Attributes, RbacSnapshot};
    use crate::security::UserInfo;

    fn snapshot() -> RbacSnapshot {
        let objects = all();
        let (snap, errors) = RbacSnapshot::from_objects(&objects);
        assert!(errors.is_empty(), "{errors:?}");
        snap
    }

    fn find<'a>(objs: &'a [Value], name: &str) -> &'a Value {
        objs.iter()
            .find(|o| o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing"))
    }

    #[test]
    fn every_object_carries_the_bootstrap_label_and_autoupdate_annotation() {
        for obj in all() {
            assert_eq!(
                obj["metadata"]["labels"]["kubernetes.io/bootstrapping"],
                "rbac-defaults"
            );
            assert_eq!(
                obj["metadata"]["annotations"]["rbac.authorization.kubernetes.io/autoupdate"],
                "true"
            );
        }
    }

    #[test]
    fn aggregated_roles_nest_view_into_edit_into_admin() {
        let roles = cluster_roles();
        let rules = |name: &str| -> Vec<PolicyRule> {
            serde_json::from_value(find(&roles, name)["rules"].clone()).unwrap()
        };
        let (view, edit, admin) = (rules("view"), rules("edit"), rules("admin"));
        // view = system:aggregate-to-view + system:aggregated-metrics-reader.
        assert!(aggregate_to_view_rules().iter().all(|r| view.contains(r)));
        assert!(view.contains(&r(READ, &["metrics.k8s.io"], &["pods", "nodes"])));
        assert!(view.iter().all(|r| edit.contains(r)));
        assert!(edit.iter().all(|r| admin.contains(r)));
        assert!(admin.contains(&r(READ_WRITE, &[GROUP], &["roles", "rolebindings"])));
        assert!(!edit.contains(&r(READ_WRITE, &[GROUP], &["roles", "rolebindings"])));
    }

    #[test]
    fn default_bindings_grant_what_upstream_grants() {
        let snap = snapshot();
        let alice = UserInfo::new("alice", &["system:authenticated"]);
        let anon = UserInfo::anonymous();
        let nr = |u: &UserInfo, path: &str| {
            authorize(&Attributes::non_resource(u.clone(), "get", path), &snap).allowed
        };
        assert!(nr(&alice, "/apis/apps/v1"));
        assert!(nr(&alice, "/version"));
        assert!(nr(&anon, "/healthz"));
        assert!(nr(&anon, "/version"));
        assert!(!nr(&anon, "/apis"));
        assert!(!nr(&alice, "/metrics"));
        let ssar = Attributes::resource(
            alice.clone(),
            "create",
            "authorization.k8s.io",
            "selfsubjectaccessreviews",
            "",
            "",
        );
        assert!(authorize(&ssar, &snap).allowed);
        let pods = Attributes::resource(alice, "list", "", "pods", "default", "");
        assert!(!authorize(&pods, &snap).allowed);
        let admin = UserInfo::new("root", &["system:masters"]);
        assert!(
            authorize(
                &Attributes::resource(admin, "delete", "", "nodes", "", "n1"),
                &snap
            )
            .allowed
        );
    }

    #[test]
    fn components_get_least_privilege_identities() {
        let snap = snapshot();
        let scheduler = UserInfo::new("system:kube-scheduler", &["system:authenticated"]);
        let bind = Attributes::resource(scheduler.clone(), "create", "", "pods", "ns", "p")
            .with_subresource("binding");
        assert!(authorize(&bind, &snap).allowed);
        let secrets = Attributes::resource(scheduler, "get", "", "secrets", "ns", "s");
        assert!(!authorize(&secrets, &snap).allowed);
        let deploy_ctrl = UserInfo::new(
            "system:serviceaccount:kube-system:deployment-controller",
            &[
                "system:serviceaccounts",
                "system:serviceaccounts:kube-system",
                "system:authenticated",
            ],
        );
        let d = authorize(
            &Attributes::resource(
                deploy_ctrl.clone(),
                "create",
                "apps",
                "replicasets",
                "x",
                "",
            ),
            &snap,
        );
        assert!(d.allowed);
        assert_eq!(
            d.reason,
            "RBAC: allowed by ClusterRoleBinding \"system:controller:deployment-controller\" of ClusterRole \"system:controller:deployment-controller\" to ServiceAccount \"deployment-controller/kube-system\""
        );
        assert!(
            !authorize(
                &Attributes::resource(deploy_ctrl, "delete", "", "nodes", "", "n"),
                &snap
            )
            .allowed
        );
    }
}
