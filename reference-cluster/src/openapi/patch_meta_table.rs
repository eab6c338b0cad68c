//! Upstream's patch and list markers (`patchStrategy`, `patchMergeKey`, `+listType`,
//! `+listMapKey`, `+mapType`/`+structType`) for the built-in kinds.
//!
//! k8s-openapi's generated schemas drop these Go struct tags and comment markers, yet kubectl's
//! client-side apply, our strategic merge patch and server-side apply all depend on them, so
//! we restate them here, keyed by upstream definition name and property, and inject them
//! into the generated definitions as the `x-kubernetes-*` extensions upstream publishes.
//! Lists without an entry are atomic, as upstream's default is.

/// Markers of one property of a definition, or (when `property` is `None`) of the
/// definition itself.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Marker {
    pub definition: &'static str,
    pub property: Option<&'static str>,
    pub patch_strategy: Option<&'static str>,
    pub patch_merge_key: Option<&'static str>,
    pub list_type: Option<&'static str>,
    pub list_map_keys: &'static [&'static str],
    pub map_type: Option<&'static str>,
}

const fn base(definition: &'static str, property: Option<&'static str>) -> Marker {
    Marker {
        definition,
        property,
        patch_strategy: None,
        patch_merge_key: None,
        list_type: None,
        list_map_keys: &[],
        map_type: None,
    }
}

/// `patchStrategy:"merge" patchMergeKey:key` + `+listType=map` with `keys`.
const fn merge_map(
    d: &'static str,
    p: &'static str,
    key: &'static str,
    keys: &'static [&'static str],
) -> Marker {
    let mut m = base(d, Some(p));
    m.patch_strategy = Some("merge");
    m.patch_merge_key = Some(key);
    m.list_type = Some("map");
    m.list_map_keys = keys;
    m
}

/// Like [`merge_map`] with `retainKeys` (volumes, resource claims).
const fn merge_retain_map(
    d: &'static str,
    p: &'static str,
    key: &'static str,
    keys: &'static [&'static str],
) -> Marker {
    let mut m = merge_map(d, p, key, keys);
    m.patch_strategy = Some("merge,retainKeys");
    m
}

/// Merged by key in strategic merge patch but atomic for server-side apply.
const fn merge_atomic(d: &'static str, p: &'static str, key: &'static str) -> Marker {
    let mut m = base(d, Some(p));
    m.patch_strategy = Some("merge");
    m.patch_merge_key = Some(key);
    m.list_type = Some("atomic");
    m
}

/// A primitive list merged as a set (`patchStrategy:"merge"` + `+listType=set`).
const fn merge_set(d: &'static str, p: &'static str) -> Marker {
    let mut m = base(d, Some(p));
    m.patch_strategy = Some("merge");
    m.list_type = Some("set");
    m
}

/// `+listType=map` without a patch strategy (replaced wholesale by strategic merge patch).
const fn list_map(d: &'static str, p: &'static str, keys: &'static [&'static str]) -> Marker {
    let mut m = base(d, Some(p));
    m.list_type = Some("map");
    m.list_map_keys = keys;
    m
}

const fn set(d: &'static str, p: &'static str) -> Marker {
    let mut m = base(d, Some(p));
    m.list_type = Some("set");
    m
}

const fn atomic(d: &'static str, p: &'static str) -> Marker {
    let mut m = base(d, Some(p));
    m.list_type = Some("atomic");
    m
}

/// `+mapType=atomic` on a map-valued property.
const fn atomic_map(d: &'static str, p: &'static str) -> Marker {
    let mut m = base(d, Some(p));
    m.map_type = Some("atomic");
    m
}

/// `+structType=atomic` on a whole definition.
const fn atomic_struct(d: &'static str) -> Marker {
    let mut m = base(d, None);
    m.map_type = Some("atomic");
    m
}

const fn retain_keys(d: &'static str, p: &'static str) -> Marker {
    let mut m = base(d, Some(p));
    m.patch_strategy = Some("retainKeys");
    m
}

const NAME: &[&str] = &["name"];
const TYPE: &[&str] = &["type"];
const IP: &[&str] = &["ip"];

const POD_SPEC: &str = "io.k8s.api.core.v1.PodSpec";
const POD_STATUS: &str = "io.k8s.api.core.v1.PodStatus";
const CONTAINER: &str = "io.k8s.api.core.v1.Container";
const EPHEMERAL: &str = "io.k8s.api.core.v1.EphemeralContainer";
const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

/// All markers. Order does not matter; one entry per (definition, property).
pub(crate) static MARKERS: &[Marker] = &[
    // --- meta/v1 ---
    merge_set(OBJECT_META, "finalizers"),
    merge_map(OBJECT_META, "ownerReferences", "uid", &["uid"]),
    atomic(OBJECT_META, "managedFields"),
    atomic_struct("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"),
    atomic(
        "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
        "matchExpressions",
    ),
    atomic(
        "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelectorRequirement",
        "values",
    ),
    atomic(
        "io.k8s.apimachinery.pkg.apis.meta.v1.StatusDetails",
        "causes",
    ),
    // --- core/v1: pods ---
    merge_retain_map(POD_SPEC, "volumes", "name", NAME),
    merge_map(POD_SPEC, "initContainers", "name", NAME),
    merge_map(POD_SPEC, "containers", "name", NAME),
    merge_map(POD_SPEC, "ephemeralContainers", "name", NAME),
    merge_map(POD_SPEC, "imagePullSecrets", "name", NAME),
    merge_map(POD_SPEC, "hostAliases", "ip", IP),
    atomic(POD_SPEC, "tolerations"),
    merge_map(
        POD_SPEC,
        "topologySpreadConstraints",
        "topologyKey",
        &["topologyKey", "whenUnsatisfiable"],
    ),
    atomic(POD_SPEC, "readinessGates"),
    merge_retain_map(POD_SPEC, "resourceClaims", "name", NAME),
    merge_map(POD_SPEC, "schedulingGates", "name", NAME),
    atomic_map(POD_SPEC, "nodeSelector"),
    merge_map(POD_STATUS, "conditions", "type", TYPE),
    merge_map(POD_STATUS, "podIPs", "ip", IP),
    merge_atomic(POD_STATUS, "hostIPs", "ip"),
    atomic(POD_STATUS, "containerStatuses"),
    atomic(POD_STATUS, "initContainerStatuses"),
    atomic(POD_STATUS, "ephemeralContainerStatuses"),
    merge_retain_map(POD_STATUS, "resourceClaimStatuses", "name", NAME),
    merge_map(
        CONTAINER,
        "ports",
        "containerPort",
        &["containerPort", "protocol"],
    ),
    merge_map(CONTAINER, "env", "name", NAME),
    atomic(CONTAINER, "envFrom"),
    merge_map(CONTAINER, "volumeMounts", "mountPath", &["mountPath"]),
    merge_map(CONTAINER, "volumeDevices", "devicePath", &["devicePath"]),
    atomic(CONTAINER, "command"),
    atomic(CONTAINER, "args"),
    atomic(CONTAINER, "resizePolicy"),
    merge_map(
        EPHEMERAL,
        "ports",
        "containerPort",
        &["containerPort", "protocol"],
    ),
    merge_map(EPHEMERAL, "env", "name", NAME),
    atomic(EPHEMERAL, "envFrom"),
    merge_map(EPHEMERAL, "volumeMounts", "mountPath", &["mountPath"]),
    merge_map(EPHEMERAL, "volumeDevices", "devicePath", &["devicePath"]),
    atomic(EPHEMERAL, "command"),
    atomic(EPHEMERAL, "args"),
    atomic(EPHEMERAL, "resizePolicy"),
    list_map("io.k8s.api.core.v1.ResourceRequirements", "claims", NAME),
    atomic(
        "io.k8s.api.core.v1.PodSecurityContext",
        "supplementalGroups",
    ),
    atomic("io.k8s.api.core.v1.PodSecurityContext", "sysctls"),
    atomic("io.k8s.api.core.v1.Capabilities", "add"),
    atomic("io.k8s.api.core.v1.Capabilities", "drop"),
    atomic("io.k8s.api.core.v1.PodDNSConfig", "nameservers"),
    atomic("io.k8s.api.core.v1.PodDNSConfig", "searches"),
    atomic("io.k8s.api.core.v1.PodDNSConfig", "options"),
    atomic("io.k8s.api.core.v1.HostAlias", "hostnames"),
    atomic("io.k8s.api.core.v1.ExecAction", "command"),
    atomic("io.k8s.api.core.v1.HTTPGetAction", "httpHeaders"),
    atomic("io.k8s.api.core.v1.ConfigMapVolumeSource", "items"),
    atomic("io.k8s.api.core.v1.SecretVolumeSource", "items"),
    atomic("io.k8s.api.core.v1.DownwardAPIVolumeSource", "items"),
    atomic("io.k8s.api.core.v1.ProjectedVolumeSource", "sources"),
    atomic("io.k8s.api.core.v1.ConfigMapProjection", "items"),
    atomic("io.k8s.api.core.v1.SecretProjection", "items"),
    atomic("io.k8s.api.core.v1.DownwardAPIProjection", "items"),
    // Scheduling constraints.
    atomic_struct("io.k8s.api.core.v1.NodeSelector"),
    atomic("io.k8s.api.core.v1.NodeSelector", "nodeSelectorTerms"),
    atomic_struct("io.k8s.api.core.v1.NodeSelectorTerm"),
    atomic("io.k8s.api.core.v1.NodeSelectorTerm", "matchExpressions"),
    atomic("io.k8s.api.core.v1.NodeSelectorTerm", "matchFields"),
    atomic("io.k8s.api.core.v1.NodeSelectorRequirement", "values"),
    atomic_struct("io.k8s.api.core.v1.TopologySelectorTerm"),
    atomic(
        "io.k8s.api.core.v1.NodeAffinity",
        "preferredDuringSchedulingIgnoredDuringExecution",
    ),
    atomic(
        "io.k8s.api.core.v1.PodAffinity",
        "requiredDuringSchedulingIgnoredDuringExecution",
    ),
    atomic(
        "io.k8s.api.core.v1.PodAffinity",
        "preferredDuringSchedulingIgnoredDuringExecution",
    ),
    atomic(
        "io.k8s.api.core.v1.PodAntiAffinity",
        "requiredDuringSchedulingIgnoredDuringExecution",
    ),
    atomic(
        "io.k8s.api.core.v1.PodAntiAffinity",
        "preferredDuringSchedulingIgnoredDuringExecution",
    ),
    atomic("io.k8s.api.core.v1.PodAffinityTerm", "namespaces"),
    atomic("io.k8s.api.core.v1.PodAffinityTerm", "matchLabelKeys"),
    atomic("io.k8s.api.core.v1.PodAffinityTerm", "mismatchLabelKeys"),
    atomic(
        "io.k8s.api.core.v1.TopologySpreadConstraint",
        "matchLabelKeys",
    ),
    // References are replaced as a whole by server-side apply.
    atomic_struct("io.k8s.api.core.v1.LocalObjectReference"),
    atomic_struct("io.k8s.api.core.v1.ObjectReference"),
    atomic_struct("io.k8s.api.core.v1.TypedLocalObjectReference"),
    atomic_struct("io.k8s.api.core.v1.TypedObjectReference"),
    atomic_struct("io.k8s.api.core.v1.SecretReference"),
    atomic_struct("io.k8s.api.core.v1.ConfigMapKeySelector"),
    atomic_struct("io.k8s.api.core.v1.SecretKeySelector"),
    atomic_struct("io.k8s.api.core.v1.ObjectFieldSelector"),
    atomic_struct("io.k8s.api.core.v1.ResourceFieldSelector"),
    // --- core/v1: other kinds ---
    atomic("io.k8s.api.core.v1.NodeSpec", "taints"),
    merge_set("io.k8s.api.core.v1.NodeSpec", "podCIDRs"),
    merge_map("io.k8s.api.core.v1.NodeStatus", "conditions", "type", TYPE),
    merge_map("io.k8s.api.core.v1.NodeStatus", "addresses", "type", TYPE),
    atomic("io.k8s.api.core.v1.NodeStatus", "images"),
    atomic("io.k8s.api.core.v1.NodeStatus", "volumesInUse"),
    atomic("io.k8s.api.core.v1.NodeStatus", "volumesAttached"),
    merge_map(
        "io.k8s.api.core.v1.ServiceSpec",
        "ports",
        "port",
        &["port", "protocol"],
    ),
    atomic("io.k8s.api.core.v1.ServiceSpec", "clusterIPs"),
    atomic("io.k8s.api.core.v1.ServiceSpec", "externalIPs"),
    atomic("io.k8s.api.core.v1.ServiceSpec", "loadBalancerSourceRanges"),
    atomic("io.k8s.api.core.v1.ServiceSpec", "ipFamilies"),
    atomic_map("io.k8s.api.core.v1.ServiceSpec", "selector"),
    merge_map(
        "io.k8s.api.core.v1.ServiceStatus",
        "conditions",
        "type",
        TYPE,
    ),
    atomic("io.k8s.api.core.v1.LoadBalancerStatus", "ingress"),
    atomic("io.k8s.api.core.v1.LoadBalancerIngress", "ports"),
    merge_map(
        "io.k8s.api.core.v1.PersistentVolumeClaimStatus",
        "conditions",
        "type",
        TYPE,
    ),
    atomic(
        "io.k8s.api.core.v1.PersistentVolumeClaimStatus",
        "accessModes",
    ),
    atomic(
        "io.k8s.api.core.v1.PersistentVolumeClaimSpec",
        "accessModes",
    ),
    atomic("io.k8s.api.core.v1.PersistentVolumeSpec", "accessModes"),
    atomic("io.k8s.api.core.v1.PersistentVolumeSpec", "mountOptions"),
    merge_map(
        "io.k8s.api.core.v1.NamespaceStatus",
        "conditions",
        "type",
        TYPE,
    ),
    atomic("io.k8s.api.core.v1.NamespaceSpec", "finalizers"),
    merge_map(
        "io.k8s.api.core.v1.ReplicationControllerStatus",
        "conditions",
        "type",
        TYPE,
    ),
    atomic_map("io.k8s.api.core.v1.ReplicationControllerSpec", "selector"),
    merge_map("io.k8s.api.core.v1.ServiceAccount", "secrets", "name", NAME),
    atomic("io.k8s.api.core.v1.ServiceAccount", "imagePullSecrets"),
    merge_map(
        "io.k8s.api.core.v1.ComponentStatus",
        "conditions",
        "type",
        TYPE,
    ),
    atomic("io.k8s.api.core.v1.Endpoints", "subsets"),
    atomic("io.k8s.api.core.v1.EndpointSubset", "addresses"),
    atomic("io.k8s.api.core.v1.EndpointSubset", "notReadyAddresses"),
    atomic("io.k8s.api.core.v1.EndpointSubset", "ports"),
    atomic("io.k8s.api.core.v1.LimitRangeSpec", "limits"),
    atomic("io.k8s.api.core.v1.ResourceQuotaSpec", "scopes"),
    // --- apps/v1 ---
    retain_keys("io.k8s.api.apps.v1.DeploymentSpec", "strategy"),
    merge_map(
        "io.k8s.api.apps.v1.DeploymentStatus",
        "conditions",
        "type",
        TYPE,
    ),
    atomic("io.k8s.api.apps.v1.StatefulSetSpec", "volumeClaimTemplates"),
    merge_map(
        "io.k8s.api.apps.v1.StatefulSetStatus",
        "conditions",
        "type",
        TYPE,
    ),
    merge_map(
        "io.k8s.api.apps.v1.DaemonSetStatus",
        "conditions",
        "type",
        TYPE,
    ),
    merge_map(
        "io.k8s.api.apps.v1.ReplicaSetStatus",
        "conditions",
        "type",
        TYPE,
    ),
    // --- batch/v1 ---
    merge_atomic("io.k8s.api.batch.v1.JobStatus", "conditions", "type"),
    atomic("io.k8s.api.batch.v1.CronJobStatus", "active"),
    atomic("io.k8s.api.batch.v1.PodFailurePolicy", "rules"),
    atomic(
        "io.k8s.api.batch.v1.PodFailurePolicyRule",
        "onPodConditions",
    ),
    set(
        "io.k8s.api.batch.v1.PodFailurePolicyOnExitCodesRequirement",
        "values",
    ),
    atomic("io.k8s.api.batch.v1.SuccessPolicy", "rules"),
    set("io.k8s.api.batch.v1.UncountedTerminatedPods", "succeeded"),
    set("io.k8s.api.batch.v1.UncountedTerminatedPods", "failed"),
    // --- autoscaling ---
    merge_map(
        "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus",
        "conditions",
        "type",
        TYPE,
    ),
    atomic(
        "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus",
        "currentMetrics",
    ),
    atomic(
        "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerSpec",
        "metrics",
    ),
    atomic("io.k8s.api.autoscaling.v2.HPAScalingRules", "policies"),
    // --- policy/v1 ---
    merge_map(
        "io.k8s.api.policy.v1.PodDisruptionBudgetStatus",
        "conditions",
        "type",
        TYPE,
    ),
    // --- networking/v1 ---
    atomic("io.k8s.api.networking.v1.IngressSpec", "rules"),
    atomic("io.k8s.api.networking.v1.IngressSpec", "tls"),
    atomic("io.k8s.api.networking.v1.IngressTLS", "hosts"),
    atomic("io.k8s.api.networking.v1.HTTPIngressRuleValue", "paths"),
    atomic(
        "io.k8s.api.networking.v1.IngressLoadBalancerStatus",
        "ingress",
    ),
    atomic("io.k8s.api.networking.v1.NetworkPolicySpec", "ingress"),
    atomic("io.k8s.api.networking.v1.NetworkPolicySpec", "egress"),
    atomic("io.k8s.api.networking.v1.NetworkPolicySpec", "policyTypes"),
    atomic("io.k8s.api.networking.v1.NetworkPolicyIngressRule", "ports"),
    atomic("io.k8s.api.networking.v1.NetworkPolicyIngressRule", "from"),
    atomic("io.k8s.api.networking.v1.NetworkPolicyEgressRule", "ports"),
    atomic("io.k8s.api.networking.v1.NetworkPolicyEgressRule", "to"),
    // --- discovery/v1 ---
    atomic("io.k8s.api.discovery.v1.EndpointSlice", "endpoints"),
    atomic("io.k8s.api.discovery.v1.EndpointSlice", "ports"),
    set("io.k8s.api.discovery.v1.Endpoint", "addresses"),
    // --- rbac/v1 ---
    atomic("io.k8s.api.rbac.v1.Role", "rules"),
    atomic("io.k8s.api.rbac.v1.ClusterRole", "rules"),
    atomic("io.k8s.api.rbac.v1.RoleBinding", "subjects"),
    atomic("io.k8s.api.rbac.v1.ClusterRoleBinding", "subjects"),
    atomic("io.k8s.api.rbac.v1.AggregationRule", "clusterRoleSelectors"),
    // --- apiextensions/v1 ---
    list_map(
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionStatus",
        "conditions",
        TYPE,
    ),
    atomic(
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionSpec",
        "versions",
    ),
    atomic(
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionNames",
        "shortNames",
    ),
    atomic(
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionNames",
        "categories",
    ),
    // --- certificates/v1 ---
    list_map(
        "io.k8s.api.certificates.v1.CertificateSigningRequestStatus",
        "conditions",
        TYPE,
    ),
    atomic(
        "io.k8s.api.certificates.v1.CertificateSigningRequestSpec",
        "usages",
    ),
    // --- admissionregistration/v1 ---
    merge_map(
        "io.k8s.api.admissionregistration.v1.MutatingWebhookConfiguration",
        "webhooks",
        "name",
        NAME,
    ),
    merge_map(
        "io.k8s.api.admissionregistration.v1.ValidatingWebhookConfiguration",
        "webhooks",
        "name",
        NAME,
    ),
    // --- storage/v1 ---
    merge_map("io.k8s.api.storage.v1.CSINodeSpec", "drivers", "name", NAME),
    atomic("io.k8s.api.storage.v1.StorageClass", "mountOptions"),
    atomic("io.k8s.api.storage.v1.StorageClass", "allowedTopologies"),
    // --- flowcontrol/v1 ---
    merge_map(
        "io.k8s.api.flowcontrol.v1.FlowSchemaStatus",
        "conditions",
        "type",
        TYPE,
    ),
    merge_map(
        "io.k8s.api.flowcontrol.v1.PriorityLevelConfigurationStatus",
        "conditions",
        "type",
        TYPE,
    ),
    // --- apiregistration/v1 ---
    merge_map(
        "io.k8s.kube-aggregator.pkg.apis.apiregistration.v1.APIServiceStatus",
        "conditions",
        "type",
        TYPE,
    ),
];

/// Writes the markers of `MARKERS` into `definitions` (a `components.schemas`-style map).
/// Definitions or properties that do not exist are skipped: the table covers more kinds
/// than a given build may include.
pub(crate) fn inject(definitions: &mut serde_json::Map<String, serde_json::Value>) {
    use serde_json::Value;
    for marker in MARKERS {
        let Some(definition) = definitions.get_mut(marker.definition) else {
            continue;
        };
        let target = match marker.property {
            None => Some(definition),
            Some(property) => definition
                .get_mut("properties")
                .and_then(|p| p.get_mut(property)),
        };
        let Some(Value::Object(target)) = target else {
            continue;
        };
        if let Some(s) = marker.patch_strategy {
            target.insert("x-kubernetes-patch-strategy".into(), s.into());
        }
        if let Some(k) = marker.patch_merge_key {
            target.insert("x-kubernetes-patch-merge-key".into(), k.into());
        }
        if let Some(t) = marker.list_type {
            target.insert("x-kubernetes-list-type".into(), t.into());
        }
        if !marker.list_map_keys.is_empty() {
            let keys = marker
                .list_map_keys
                .iter()
                .map(|k| Value::from(*k))
                .collect();
            target.insert("x-kubernetes-list-map-keys".into(), Value::Array(keys));
        }
        if let Some(t) = marker.map_type {
            target.insert("x-kubernetes-map-type".into(), t.into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn one_entry_per_property() {
        let mut seen = HashSet::new();
        for m in MARKERS {
            assert!(
                seen.insert((m.definition, m.property)),
                "duplicate marker {}.{:?}",
                m.definition,
                m.property
            );
        }
    }

    #[test]
    fn map_lists_declare_keys_and_merge_lists_a_key_or_set() {
        for m in MARKERS {
            if m.list_type == Some("map") {
                assert!(
                    !m.list_map_keys.is_empty(),
                    "{}.{:?}",
                    m.definition,
                    m.property
                );
            }
            if let (Some(key), false) = (m.patch_merge_key, m.list_map_keys.is_empty()) {
                assert!(
                    m.list_map_keys.contains(&key),
                    "{}.{:?}",
                    m.definition,
                    m.property
                );
            }
        }
    }
}
