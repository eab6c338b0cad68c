//! The built-in resources of a Kubernetes 1.32 API server with its default feature gates, as
//! `kubectl api-resources -o wide` lists them: names, scope, short names, categories, verbs and
//! subresources, plus each resource's etcd key segment.

use super::{ResourceInfo, SubresourceInfo};

const FULL: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
const NO_COLLECTION: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];
const CREATE: &[&str] = &["create"];
const GET_PATCH_UPDATE: &[&str] = &["get", "patch", "update"];
const PROXY: &[&str] = &["create", "delete", "get", "patch", "update"];
const CONNECT: &[&str] = &["create", "get"];

/// How a subresource is spelled in the table below.
struct Sub {
    name: &'static str,
    /// `None`: the parent's own group/version/kind (status, approval, finalize, ...).
    gvk: Option<(&'static str, &'static str, &'static str)>,
    verbs: &'static [&'static str],
}

const fn sub(name: &'static str, verbs: &'static [&'static str]) -> Sub {
    Sub {
        name,
        gvk: None,
        verbs,
    }
}

const fn sub_kind(
    name: &'static str,
    gvk: (&'static str, &'static str, &'static str),
    verbs: &'static [&'static str],
) -> Sub {
    Sub {
        name,
        gvk: Some(gvk),
        verbs,
    }
}

const STATUS: Sub = sub("status", GET_PATCH_UPDATE);
const SCALE: Sub = sub_kind("scale", ("autoscaling", "v1", "Scale"), GET_PATCH_UPDATE);

struct Entry {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    categories: &'static [&'static str],
    verbs: &'static [&'static str],
    subs: Vec<Sub>,
    /// Upstream's etcd resource prefix when it differs from the plural.
    storage: Option<&'static str>,
}

#[allow(clippy::too_many_arguments)]
fn e(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    categories: &'static [&'static str],
    verbs: &'static [&'static str],
    subs: Vec<Sub>,
) -> Entry {
    Entry {
        group,
        version,
        kind,
        plural,
        namespaced,
        short,
        categories,
        verbs,
        subs,
        storage: None,
    }
}

impl Entry {
    fn stored_as(mut self, prefix: &'static str) -> Self {
        self.storage = Some(prefix);
        self
    }
}

const NS: bool = true;
const CLUSTER: bool = false;
const ALL: &[&str] = &["all"];
const API_EXT: &[&str] = &["api-extensions"];
const NONE: &[&str] = &[];

fn entries() -> Vec<Entry> {
    let core = |kind, plural, namespaced, short, cats, verbs, subs| {
        e("", "v1", kind, plural, namespaced, short, cats, verbs, subs)
    };
    let pod_connect =
        |name: &'static str, kind: &'static str, verbs| sub_kind(name, ("", "v1", kind), verbs);
    vec![
        // core/v1
        core("Binding", "bindings", NS, NONE, NONE, CREATE, vec![]),
        core("ConfigMap", "configmaps", NS, &["cm"], NONE, FULL, vec![]),
        core("Endpoints", "endpoints", NS, &["ep"], NONE, FULL, vec![])
            .stored_as("services/endpoints"),
        core("Event", "events", NS, &["ev"], NONE, FULL, vec![]),
        core(
            "LimitRange",
            "limitranges",
            NS,
            &["limits"],
            NONE,
            FULL,
            vec![],
        ),
        core(
            "Namespace",
            "namespaces",
            CLUSTER,
            &["ns"],
            NONE,
            NO_COLLECTION,
            vec![sub("finalize", &["update"]), STATUS],
        ),
        core(
            "Node",
            "nodes",
            CLUSTER,
            &["no"],
            NONE,
            FULL,
            vec![pod_connect("proxy", "NodeProxyOptions", PROXY), STATUS],
        )
        .stored_as("minions"),
        core(
            "PersistentVolumeClaim",
            "persistentvolumeclaims",
            NS,
            &["pvc"],
            NONE,
            FULL,
            vec![STATUS],
        ),
        core(
            "PersistentVolume",
            "persistentvolumes",
            CLUSTER,
            &["pv"],
            NONE,
            FULL,
            vec![STATUS],
        ),
        core(
            "Pod",
            "pods",
            NS,
            &["po"],
            ALL,
            FULL,
            vec![
                pod_connect("attach", "PodAttachOptions", CONNECT),
                sub_kind("binding", ("", "v1", "Binding"), CREATE),
                sub("ephemeralcontainers", GET_PATCH_UPDATE),
                sub_kind("eviction", ("policy", "v1", "Eviction"), CREATE),
                pod_connect("exec", "PodExecOptions", CONNECT),
                sub("log", &["get"]),
                pod_connect("portforward", "PodPortForwardOptions", CONNECT),
                pod_connect("proxy", "PodProxyOptions", PROXY),
                STATUS,
            ],
        ),
        core("PodTemplate", "podtemplates", NS, NONE, NONE, FULL, vec![]),
        core(
            "ReplicationController",
            "replicationcontrollers",
            NS,
            &["rc"],
            ALL,
            FULL,
            vec![SCALE, STATUS],
        )
        .stored_as("controllers"),
        core(
            "ResourceQuota",
            "resourcequotas",
            NS,
            &["quota"],
            NONE,
            FULL,
            vec![STATUS],
        ),
        core("Secret", "secrets", NS, NONE, NONE, FULL, vec![]),
        core(
            "ServiceAccount",
            "serviceaccounts",
            NS,
            &["sa"],
            NONE,
            FULL,
            vec![sub_kind(
                "token",
                ("authentication.k8s.io", "v1", "TokenRequest"),
                CREATE,
            )],
        ),
        core(
            "Service",
            "services",
            NS,
            &["svc"],
            ALL,
            FULL,
            vec![pod_connect("proxy", "ServiceProxyOptions", PROXY), STATUS],
        )
        .stored_as("services/specs"),
        // apiregistration.k8s.io/v1
        e(
            "apiregistration.k8s.io",
            "v1",
            "APIService",
            "apiservices",
            CLUSTER,
            NONE,
            API_EXT,
            FULL,
            vec![STATUS],
        )
        .stored_as("apiregistration.k8s.io/apiservices"),
        // apps/v1
        e(
            "apps",
            "v1",
            "ControllerRevision",
            "controllerrevisions",
            NS,
            NONE,
            NONE,
            FULL,
            vec![],
        ),
        e(
            "apps",
            "v1",
            "DaemonSet",
            "daemonsets",
            NS,
            &["ds"],
            ALL,
            FULL,
            vec![STATUS],
        ),
        e(
            "apps",
            "v1",
            "Deployment",
            "deployments",
            NS,
            &["deploy"],
            ALL,
            FULL,
            vec![SCALE, STATUS],
        ),
        e(
            "apps",
            "v1",
            "ReplicaSet",
            "replicasets",
            NS,
            &["rs"],
            ALL,
            FULL,
            vec![SCALE, STATUS],
        ),
        e(
            "apps",
            "v1",
            "StatefulSet",
            "statefulsets",
            NS,
            &["sts"],
            ALL,
            FULL,
            vec![SCALE, STATUS],
        ),
        // events.k8s.io/v1 shares core events' storage.
        e(
            "events.k8s.io",
            "v1",
            "Event",
            "events",
            NS,
            &["ev"],
            NONE,
            FULL,
            vec![],
        ),
        // authentication.k8s.io/v1
        e(
            "authentication.k8s.io",
            "v1",
            "SelfSubjectReview",
            "selfsubjectreviews",
            CLUSTER,
            NONE,
            NONE,
            CREATE,
            vec![],
        ),
        e(
            "authentication.k8s.io",
            "v1",
            "TokenReview",
            "tokenreviews",
            CLUSTER,
            NONE,
            NONE,
            CREATE,
            vec![],
        ),
        // authorization.k8s.io/v1
        e(
            "authorization.k8s.io",
            "v1",
            "LocalSubjectAccessReview",
            "localsubjectaccessreviews",
            NS,
            NONE,
            NONE,
            CREATE,
            vec![],
        ),
        e(
            "authorization.k8s.io",
            "v1",
            "SelfSubjectAccessReview",
            "selfsubjectaccessreviews",
            CLUSTER,
            NONE,
            NONE,
            CREATE,
            vec![],
        ),
        e(
            "authorization.k8s.io",
            "v1",
            "SelfSubjectRulesReview",
            "selfsubjectrulesreviews",
            CLUSTER,
            NONE,
            NONE,
            CREATE,
            vec![],
        ),
        e(
            "authorization.k8s.io",
            "v1",
            "SubjectAccessReview",
            "subjectaccessreviews",
            CLUSTER,
            NONE,
            NONE,
            CREATE,
            vec![],
        ),
        // autoscaling: v2 is stored and preferred, v1 is served from the same storage.
        e(
            "autoscaling",
            "v2",
            "HorizontalPodAutoscaler",
            "horizontalpodautoscalers",
            NS,
            &["hpa"],
            ALL,
            FULL,
            vec![STATUS],
        ),
        e(
            "autoscaling",
            "v1",
            "HorizontalPodAutoscaler",
            "horizontalpodautoscalers",
            NS,
            &["hpa"],
            ALL,
            FULL,
            vec![STATUS],
        ),
        // metrics.k8s.io/v1beta1: served by the API server from the kubelets' usage
        // (`apiserver/metrics_api.rs`), never stored; the storage keys only keep the names
        // apart from core nodes and pods.
        e(
            "metrics.k8s.io",
            "v1beta1",
            "NodeMetrics",
            "nodes",
            CLUSTER,
            NONE,
            NONE,
            &["get", "list"],
            vec![],
        )
        .stored_as("metrics.k8s.io/nodes"),
        e(
            "metrics.k8s.io",
            "v1beta1",
            "PodMetrics",
            "pods",
            NS,
            NONE,
            NONE,
            &["get", "list"],
            vec![],
        )
        .stored_as("metrics.k8s.io/pods"),
        // batch/v1
        e(
            "batch",
            "v1",
            "CronJob",
            "cronjobs",
            NS,
            &["cj"],
            ALL,
            FULL,
            vec![STATUS],
        ),
        e(
            "batch",
            "v1",
            "Job",
            "jobs",
            NS,
            NONE,
            ALL,
            FULL,
            vec![STATUS],
        ),
        // certificates.k8s.io/v1
        e(
            "certificates.k8s.io",
            "v1",
            "CertificateSigningRequest",
            "certificatesigningrequests",
            CLUSTER,
            &["csr"],
            NONE,
            FULL,
            vec![sub("approval", GET_PATCH_UPDATE), STATUS],
        ),
        // networking.k8s.io/v1
        e(
            "networking.k8s.io",
            "v1",
            "IngressClass",
            "ingressclasses",
            CLUSTER,
            NONE,
            NONE,
            FULL,
            vec![],
        ),
        e(
            "networking.k8s.io",
            "v1",
            "Ingress",
            "ingresses",
            NS,
            &["ing"],
            NONE,
            FULL,
            vec![STATUS],
        )
        .stored_as("ingress"),
        e(
            "networking.k8s.io",
            "v1",
            "NetworkPolicy",
            "networkpolicies",
            NS,
            &["netpol"],
            NONE,
            FULL,
            vec![],
        ),
        // policy/v1
        e(
            "policy",
            "v1",
            "PodDisruptionBudget",
            "poddisruptionbudgets",
            NS,
            &["pdb"],
            NONE,
            FULL,
            vec![STATUS],
        ),
        // rbac.authorization.k8s.io/v1
        e(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRoleBinding",
            "clusterrolebindings",
            CLUSTER,
            NONE,
            NONE,
            FULL,
            vec![],
        ),
        e(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRole",
            "clusterroles",
            CLUSTER,
            NONE,
            NONE,
            FULL,
            vec![],
        ),
        e(
            "rbac.authorization.k8s.io",
            "v1",
            "RoleBinding",
            "rolebindings",
            NS,
            NONE,
            NONE,
            FULL,
            vec![],
        ),
        e(
            "rbac.authorization.k8s.io",
            "v1",
            "Role",
            "roles",
            NS,
            NONE,
            NONE,
            FULL,
            vec![],
        ),
        // storage.k8s.io/v1
        e(
            "storage.k8s.io",
            "v1",
            "CSIDriver",
            "csidrivers",
            CLUSTER,
            NONE,
            NONE,
            FULL,
            vec![],
        ),
        e(
            "storage.k8s.io",
            "v1",
            "CSINode",
            "csinodes",
            CLUSTER,
            NONE,
            NONE,
            FULL,
            vec![],
        ),
        e(
            "storage.k8s.io",
            "v1",
            "CSIStorageCapacity",
            "csistoragecapacities",
            NS,
            NONE,
            NONE,
            FULL,
            vec![],
        ),
        e(
            "storage.k8s.io",
            "v1",
            "StorageClass",
            "storageclasses",
            CLUSTER,
            &["sc"],
            NONE,
            FULL,
            vec![],
        ),
        e(
            "storage.k8s.io",
            "v1",
            "VolumeAttachment",
            "volumeattachments",
            CLUSTER,
            NONE,
            NONE,
            FULL,
            vec![STATUS],
        ),
        // admissionregistration.k8s.io/v1
        e(
            "admissionregistration.k8s.io",
            "v1",
            "MutatingWebhookConfiguration",
            "mutatingwebhookconfigurations",
            CLUSTER,
            NONE,
            API_EXT,
            FULL,
            vec![],
        ),
        e(
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingAdmissionPolicy",
            "validatingadmissionpolicies",
            CLUSTER,
            NONE,
            API_EXT,
            FULL,
            vec![STATUS],
        ),
        e(
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingAdmissionPolicyBinding",
            "validatingadmissionpolicybindings",
            CLUSTER,
            NONE,
            API_EXT,
            FULL,
            vec![],
        ),
        e(
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingWebhookConfiguration",
            "validatingwebhookconfigurations",
            CLUSTER,
            NONE,
            API_EXT,
            FULL,
            vec![],
        ),
        // apiextensions.k8s.io/v1
        e(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            CLUSTER,
            &["crd", "crds"],
            API_EXT,
            FULL,
            vec![STATUS],
        )
        .stored_as("apiextensions.k8s.io/customresourcedefinitions"),
        // scheduling.k8s.io/v1
        e(
            "scheduling.k8s.io",
            "v1",
            "PriorityClass",
            "priorityclasses",
            CLUSTER,
            &["pc"],
            NONE,
            FULL,
            vec![],
        ),
        // coordination.k8s.io/v1
        e(
            "coordination.k8s.io",
            "v1",
            "Lease",
            "leases",
            NS,
            NONE,
            NONE,
            FULL,
            vec![],
        ),
        // node.k8s.io/v1
        e(
            "node.k8s.io",
            "v1",
            "RuntimeClass",
            "runtimeclasses",
            CLUSTER,
            NONE,
            NONE,
            FULL,
            vec![],
        ),
        // discovery.k8s.io/v1
        e(
            "discovery.k8s.io",
            "v1",
            "EndpointSlice",
            "endpointslices",
            NS,
            NONE,
            NONE,
            FULL,
            vec![],
        ),
        // flowcontrol.apiserver.k8s.io/v1
        e(
            "flowcontrol.apiserver.k8s.io",
            "v1",
            "FlowSchema",
            "flowschemas",
            CLUSTER,
            NONE,
            NONE,
            FULL,
            vec![STATUS],
        ),
        e(
            "flowcontrol.apiserver.k8s.io",
            "v1",
            "PriorityLevelConfiguration",
            "prioritylevelconfigurations",
            CLUSTER,
            NONE,
            NONE,
            FULL,
            vec![STATUS],
        ),
    ]
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Every built-in resource version, preferred versions flagged.
pub fn builtin_resources() -> Vec<ResourceInfo> {
    entries()
        .into_iter()
        .map(|en| {
            let subresources = en
                .subs
                .iter()
                .map(|s| {
                    let (group, version, kind) = s.gvk.unwrap_or((en.group, en.version, en.kind));
                    SubresourceInfo {
                        name: s.name.to_string(),
                        group: group.to_string(),
                        version: version.to_string(),
                        kind: kind.to_string(),
                        verbs: strings(s.verbs),
                    }
                })
                .collect();
            ResourceInfo {
                group: en.group.to_string(),
                version: en.version.to_string(),
                kind: en.kind.to_string(),
                list_kind: format!("{}List", en.kind),
                plural: en.plural.to_string(),
                singular: en.kind.to_lowercase(),
                namespaced: en.namespaced,
                short_names: strings(en.short),
                categories: strings(en.categories),
                verbs: strings(en.verbs),
                subresources,
                storage_resource: en.storage.unwrap_or(en.plural).to_string(),
                // autoscaling/v1 is the only non-preferred built-in version.
                preferred: !(en.group == "autoscaling" && en.version == "v1"),
                custom: None,
            }
        })
        .collect()
}

/// Upstream's group priorities (aggregator `apiVersionPriorities`), highest first; groups not
/// listed (custom resources) sort after all of these.
pub const GROUP_ORDER: &[&str] = &[
    "",
    "apiregistration.k8s.io",
    "apps",
    "events.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "networking.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "scheduling.k8s.io",
    "coordination.k8s.io",
    "node.k8s.io",
    "discovery.k8s.io",
    "flowcontrol.apiserver.k8s.io",
];
