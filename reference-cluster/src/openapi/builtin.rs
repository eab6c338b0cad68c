//! Schemas of the built-in kinds, generated once from k8s-openapi's types.
//!
//! k8s-openapi names its schemas exactly as upstream names its definitions
//! (`io.k8s.api.core.v1.Pod`), so the generated `components.schemas` map can be served
//! as-is once upstream's patch markers and group-version-kind extensions are added.

use std::collections::HashMap;
use std::sync::OnceLock;

use k8s_openapi::api;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1 as apiregistration;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{json, Map, Value};

use super::patch_meta_table;

/// Prefix of references inside [`BuiltinSchemas::definitions`] (OpenAPI v3 style).
pub(crate) const V3_REF_PREFIX: &str = "#/components/schemas/";

pub(crate) const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
pub(crate) const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
pub(crate) const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
pub(crate) const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
pub(crate) const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";

/// (group, version, kind) of a built-in kind.
pub(crate) type Gvk = (String, String, String);

pub(crate) struct BuiltinSchemas {
    /// Every definition reachable from the built-in kinds, with patch markers and
    /// `x-kubernetes-group-version-kind` applied. References use [`V3_REF_PREFIX`].
    pub definitions: Map<String, Value>,
    /// Definition name of each built-in kind.
    pub kinds: HashMap<Gvk, String>,
}

/// The built-in schemas, generated on first use.
pub(crate) fn builtin_schemas() -> &'static BuiltinSchemas {
    static SCHEMAS: OnceLock<BuiltinSchemas> = OnceLock::new();
    SCHEMAS.get_or_init(generate)
}

/// `$ref` to a definition, v3 style.
pub(crate) fn v3_ref(definition: &str) -> Value {
    json!({ "$ref": format!("{V3_REF_PREFIX}{definition}") })
}

fn register<T>(gen: &mut SchemaGenerator, kinds: &mut Vec<(Gvk, String)>)
where
    T: k8s_openapi::Resource + schemars::JsonSchema,
{
    gen.subschema_for::<T>();
    kinds.push((
        (
            T::GROUP.to_string(),
            T::VERSION.to_string(),
            T::KIND.to_string(),
        ),
        T::schema_name().into_owned(),
    ));
}

macro_rules! register_all {
    ($gen:expr, $kinds:expr; $($t:ty),* $(,)?) => {
        $( register::<$t>($gen, $kinds); )*
    };
}

fn generate() -> BuiltinSchemas {
    let mut gen = SchemaSettings::openapi3().into_generator();
    let mut kinds: Vec<(Gvk, String)> = Vec::new();
    {
        use api::admissionregistration::{v1 as ar1, v1alpha1 as ar1a1, v1beta1 as ar1b1};
        use api::apps::v1 as apps;
        use api::authentication::{v1 as authn1, v1beta1 as authn1b1};
        use api::authorization::v1 as authz;
        use api::autoscaling::{v1 as as1, v2 as as2};
        use api::batch::v1 as batch;
        use api::certificates::{v1 as cert1, v1alpha1 as cert1a1};
        use api::coordination::{v1 as coord1, v1alpha2 as coord1a2};
        use api::core::v1 as core;
        use api::discovery::v1 as discovery;
        use api::events::v1 as events;
        use api::flowcontrol::v1 as flowcontrol;
        use api::networking::{v1 as net1, v1beta1 as net1b1};
        use api::node::v1 as node;
        use api::policy::v1 as policy;
        use api::rbac::v1 as rbac;
        use api::resource::{v1alpha3 as res1a3, v1beta1 as res1b1};
        use api::scheduling::v1 as scheduling;
        use api::storage::{v1 as st1, v1alpha1 as st1a1, v1beta1 as st1b1};
        use api::storagemigration::v1alpha1 as stmig;
        register_all!(&mut gen, &mut kinds;
            core::Binding, core::ComponentStatus, core::ConfigMap, core::Endpoints, core::Event,
            core::LimitRange, core::Namespace, core::Node, core::PersistentVolume,
            core::PersistentVolumeClaim, core::Pod, core::PodTemplate,
            core::ReplicationController, core::ResourceQuota, core::Secret, core::Service,
            core::ServiceAccount,
            apps::ControllerRevision, apps::DaemonSet, apps::Deployment, apps::ReplicaSet,
            apps::StatefulSet,
            batch::CronJob, batch::Job,
            as1::HorizontalPodAutoscaler, as1::Scale, as2::HorizontalPodAutoscaler,
            authn1::SelfSubjectReview, authn1::TokenRequest, authn1::TokenReview,
            authn1b1::SelfSubjectReview,
            authz::LocalSubjectAccessReview, authz::SelfSubjectAccessReview,
            authz::SelfSubjectRulesReview, authz::SubjectAccessReview,
            ar1::MutatingWebhookConfiguration, ar1::ValidatingAdmissionPolicy,
            ar1::ValidatingAdmissionPolicyBinding, ar1::ValidatingWebhookConfiguration,
            ar1a1::MutatingAdmissionPolicy, ar1a1::MutatingAdmissionPolicyBinding,
            ar1b1::ValidatingAdmissionPolicy, ar1b1::ValidatingAdmissionPolicyBinding,
            api::apiserverinternal::v1alpha1::StorageVersion,
            cert1::CertificateSigningRequest, cert1a1::ClusterTrustBundle,
            coord1::Lease, coord1a2::LeaseCandidate,
            discovery::EndpointSlice, events::Event,
            flowcontrol::FlowSchema, flowcontrol::PriorityLevelConfiguration,
            net1::Ingress, net1::IngressClass, net1::NetworkPolicy,
            net1b1::IPAddress, net1b1::ServiceCIDR,
            node::RuntimeClass,
            policy::Eviction, policy::PodDisruptionBudget,
            rbac::ClusterRole, rbac::ClusterRoleBinding, rbac::Role, rbac::RoleBinding,
            res1a3::DeviceClass, res1a3::ResourceClaim, res1a3::ResourceClaimTemplate,
            res1a3::ResourceSlice,
            res1b1::DeviceClass, res1b1::ResourceClaim, res1b1::ResourceClaimTemplate,
            res1b1::ResourceSlice,
            scheduling::PriorityClass,
            st1::CSIDriver, st1::CSINode, st1::CSIStorageCapacity, st1::StorageClass,
            st1::VolumeAttachment, st1a1::VolumeAttributesClass, st1b1::VolumeAttributesClass,
            stmig::StorageVersionMigration,
            apiextensions::CustomResourceDefinition, apiregistration::APIService,
        );
    }
    // Definitions the REST operations refer to.
    gen.subschema_for::<meta::Status>();
    gen.subschema_for::<meta::DeleteOptions>();
    gen.subschema_for::<meta::ListMeta>();
    gen.subschema_for::<meta::Patch>();

    let mut definitions = gen.take_definitions(true);
    patch_meta_table::inject(&mut definitions);
    for ((group, version, kind), name) in &kinds {
        if let Some(Value::Object(def)) = definitions.get_mut(name) {
            add_gvk(def, group, version, kind);
        }
    }
    BuiltinSchemas {
        definitions,
        kinds: kinds.into_iter().collect(),
    }
}

/// Appends a group-version-kind to a definition's `x-kubernetes-group-version-kind`.
pub(crate) fn add_gvk(def: &mut Map<String, Value>, group: &str, version: &str, kind: &str) {
    let entry = json!({ "group": group, "kind": kind, "version": version });
    match def.get_mut("x-kubernetes-group-version-kind") {
        Some(Value::Array(list)) => {
            if !list.contains(&entry) {
                list.push(entry);
            }
        }
        _ => {
            def.insert("x-kubernetes-group-version-kind".into(), json!([entry]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_names_and_markers() {
        let s = builtin_schemas();
        let pod = &s.definitions["io.k8s.api.core.v1.Pod"];
        assert_eq!(
            pod["x-kubernetes-group-version-kind"],
            json!([{"group": "", "kind": "Pod", "version": "v1"}])
        );
        let containers = &s.definitions["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
        assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
        assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
        assert_eq!(
            s.kinds[&("apps".into(), "v1".into(), "Deployment".into())],
            "io.k8s.api.apps.v1.Deployment"
        );
        // A $ref with a description must be wrapped for OpenAPI v3, as upstream does.
        let meta = &pod["properties"]["metadata"];
        assert_eq!(meta["allOf"][0], v3_ref(OBJECT_META));
    }

    #[test]
    fn every_marker_hits_an_existing_property() {
        let s = builtin_schemas();
        for m in patch_meta_table::MARKERS {
            let Some(def) = s.definitions.get(m.definition) else {
                panic!("marker for unknown definition {}", m.definition);
            };
            if let Some(p) = m.property {
                assert!(
                    def["properties"].get(p).is_some(),
                    "marker for unknown property {}.{p}",
                    m.definition
                );
            }
        }
    }
}
