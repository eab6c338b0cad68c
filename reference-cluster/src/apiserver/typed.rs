//! Unknown-field detection and type checking for built-in kinds, by decoding into the typed
//! k8s-openapi structs and comparing with what the client sent. This gives the same verdict as
//! upstream's strict decoding (fieldValidation=Strict|Warn|Ignore) without a hand-written schema.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::resources::ResourceInfo;

type Check = fn(&Value) -> Result<Value, String>;

fn roundtrip<T: DeserializeOwned + Serialize>(v: &Value) -> Result<Value, String> {
    let typed: T = serde_json::from_value(v.clone()).map_err(|e| e.to_string())?;
    serde_json::to_value(typed).map_err(|e| e.to_string())
}

macro_rules! kinds {
    ($($g:literal $v:literal $k:literal => $t:ty),* $(,)?) => {
        fn checker(group: &str, version: &str, kind: &str) -> Option<Check> {
            match (group, version, kind) {
                $(($g, $v, $k) => Some(roundtrip::<$t> as Check),)*
                _ => None,
            }
        }
    };
}

use k8s_openapi::api as a;
kinds! {
    "" "v1" "Pod" => a::core::v1::Pod,
    "" "v1" "Service" => a::core::v1::Service,
    "" "v1" "Namespace" => a::core::v1::Namespace,
    "" "v1" "ConfigMap" => a::core::v1::ConfigMap,
    "" "v1" "Secret" => a::core::v1::Secret,
    "" "v1" "ServiceAccount" => a::core::v1::ServiceAccount,
    "" "v1" "Node" => a::core::v1::Node,
    "" "v1" "Endpoints" => a::core::v1::Endpoints,
    "" "v1" "Event" => a::core::v1::Event,
    "" "v1" "LimitRange" => a::core::v1::LimitRange,
    "" "v1" "ResourceQuota" => a::core::v1::ResourceQuota,
    "" "v1" "PersistentVolume" => a::core::v1::PersistentVolume,
    "" "v1" "PersistentVolumeClaim" => a::core::v1::PersistentVolumeClaim,
    "" "v1" "ReplicationController" => a::core::v1::ReplicationController,
    "" "v1" "PodTemplate" => a::core::v1::PodTemplate,
    "" "v1" "Binding" => a::core::v1::Binding,
    "apps" "v1" "Deployment" => a::apps::v1::Deployment,
    "apps" "v1" "ReplicaSet" => a::apps::v1::ReplicaSet,
    "apps" "v1" "StatefulSet" => a::apps::v1::StatefulSet,
    "apps" "v1" "DaemonSet" => a::apps::v1::DaemonSet,
    "apps" "v1" "ControllerRevision" => a::apps::v1::ControllerRevision,
    "batch" "v1" "Job" => a::batch::v1::Job,
    "batch" "v1" "CronJob" => a::batch::v1::CronJob,
    "autoscaling" "v2" "HorizontalPodAutoscaler" => a::autoscaling::v2::HorizontalPodAutoscaler,
    "autoscaling" "v1" "HorizontalPodAutoscaler" => a::autoscaling::v1::HorizontalPodAutoscaler,
    "autoscaling" "v1" "Scale" => a::autoscaling::v1::Scale,
    "policy" "v1" "PodDisruptionBudget" => a::policy::v1::PodDisruptionBudget,
    "policy" "v1" "Eviction" => a::policy::v1::Eviction,
    "coordination.k8s.io" "v1" "Lease" => a::coordination::v1::Lease,
    "discovery.k8s.io" "v1" "EndpointSlice" => a::discovery::v1::EndpointSlice,
    "events.k8s.io" "v1" "Event" => a::events::v1::Event,
    "rbac.authorization.k8s.io" "v1" "Role" => a::rbac::v1::Role,
    "rbac.authorization.k8s.io" "v1" "RoleBinding" => a::rbac::v1::RoleBinding,
    "rbac.authorization.k8s.io" "v1" "ClusterRole" => a::rbac::v1::ClusterRole,
    "rbac.authorization.k8s.io" "v1" "ClusterRoleBinding" => a::rbac::v1::ClusterRoleBinding,
    "scheduling.k8s.io" "v1" "PriorityClass" => a::scheduling::v1::PriorityClass,
    "storage.k8s.io" "v1" "StorageClass" => a::storage::v1::StorageClass,
    "storage.k8s.io" "v1" "CSIDriver" => a::storage::v1::CSIDriver,
    "storage.k8s.io" "v1" "CSINode" => a::storage::v1::CSINode,
    "storage.k8s.io" "v1" "VolumeAttachment" => a::storage::v1::VolumeAttachment,
    "networking.k8s.io" "v1" "Ingress" => a::networking::v1::Ingress,
    "networking.k8s.io" "v1" "IngressClass" => a::networking::v1::IngressClass,
    "networking.k8s.io" "v1" "NetworkPolicy" => a::networking::v1::NetworkPolicy,
    "node.k8s.io" "v1" "RuntimeClass" => a::node::v1::RuntimeClass,
    "certificates.k8s.io" "v1" "CertificateSigningRequest" => a::certificates::v1::CertificateSigningRequest,
    "admissionregistration.k8s.io" "v1" "MutatingWebhookConfiguration" => a::admissionregistration::v1::MutatingWebhookConfiguration,
    "admissionregistration.k8s.io" "v1" "ValidatingWebhookConfiguration" => a::admissionregistration::v1::ValidatingWebhookConfiguration,
    "apiextensions.k8s.io" "v1" "CustomResourceDefinition" => k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    "apiregistration.k8s.io" "v1" "APIService" => k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService,
}

/// Outcome of checking a request body against the kind's type.
pub struct Checked {
    /// Paths of fields the type does not have, e.g. `.spec.foo` (upstream's notation).
    pub unknown: Vec<String>,
}

/// Checks `obj` against the typed definition of `info`'s kind (`kind` may name a subresource
/// kind). Type mismatches are an error with upstream's wording; unknown fields are reported
/// and removed from `obj`. Kinds without a typed definition pass unchanged.
pub fn check(info: &ResourceInfo, kind: &str, obj: &mut Value) -> Result<Checked, String> {
    let Some(check) = checker(&info.group, &info.version, kind) else {
        return Ok(Checked { unknown: vec![] });
    };
    let typed = check(obj).map_err(|e| {
        format!(
            "{kind} in version \"{}\" cannot be handled as a {kind}: {e}",
            info.version
        )
    })?;
    let mut unknown = Vec::new();
    prune(obj, &typed, String::new(), &mut unknown);
    Ok(Checked { unknown })
}

/// Removes from `sent` every key that `typed` lacks, recording its path. Nulls are not unknown
/// fields (they decode to absent options).
fn prune(sent: &mut Value, typed: &Value, path: String, unknown: &mut Vec<String>) {
    match (sent, typed) {
        (Value::Object(s), Value::Object(t)) => {
            let keys: Vec<String> = s.keys().cloned().collect();
            for k in keys {
                let child = format!("{path}.{k}");
                match t.get(&k) {
                    Some(tv) => prune(s.get_mut(&k).expect("key listed"), tv, child, unknown),
                    None => {
                        let v = s.remove(&k).expect("key listed");
                        if !v.is_null() && !is_empty_container(&v) {
                            unknown.push(child);
                        } else if !v.is_null() {
                            // Empty containers that the typed struct drops are kept as sent.
                            s.insert(k, v);
                        }
                    }
                }
            }
        }
        (Value::Array(s), Value::Array(t)) => {
            for (i, (sv, tv)) in s.iter_mut().zip(t.iter()).enumerate() {
                prune(sv, tv, format!("{path}[{i}]"), unknown);
            }
        }
        _ => {}
    }
}

fn is_empty_container(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn info() -> ResourceInfo {
        ResourceInfo {
            group: "apps".into(),
            version: "v1".into(),
            kind: "Deployment".into(),
            list_kind: "DeploymentList".into(),
            plural: "deployments".into(),
            singular: "deployment".into(),
            namespaced: true,
            short_names: vec![],
            categories: vec![],
            verbs: vec![],
            subresources: vec![],
            storage_resource: "deployments".into(),
            preferred: true,
            custom: None,
        }
    }

    #[test]
    fn finds_and_removes_unknown_fields() {
        let mut obj = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "x", "bogus": 1},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"a": "b"}},
                     "template": {"spec": {"containers": [{"name": "c", "image": "i", "imagePolicy": "x"}]}}},
        });
        let checked = check(&info(), "Deployment", &mut obj).unwrap();
        assert_eq!(
            checked.unknown,
            vec![
                ".metadata.bogus",
                ".spec.template.spec.containers[0].imagePolicy"
            ]
        );
        assert!(obj["metadata"].get("bogus").is_none());
        assert_eq!(obj["spec"]["replicas"], 2);
    }

    #[test]
    fn type_mismatch_is_an_error_naming_the_kind() {
        let mut obj = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}, "spec": {"replicas": "three"}});
        let err = check(&info(), "Deployment", &mut obj).err().unwrap();
        assert!(
            err.starts_with("Deployment in version \"v1\" cannot be handled as a Deployment"),
            "{err}"
        );
    }
}
