//! The stable identity of StatefulSet pods: names `<set>-<ordinal>`, hostname and subdomain,
//! the pod-name and pod-index labels, and PersistentVolumeClaims `<claim>-<set>-<ordinal>`
//! mounted in place of the claim templates (upstream `stateful_set_utils.go`).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::controllers::history::HASH_LABEL;
use crate::controllers::runtime::{ownership, pods};

pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

pub fn set_name(set: &StatefulSet) -> String {
    set.metadata.name.clone().unwrap_or_default()
}

pub fn replicas(set: &StatefulSet) -> i32 {
    set.spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1)
        .max(0)
}

pub fn start_ordinal(set: &StatefulSet) -> i32 {
    set.spec
        .as_ref()
        .and_then(|s| s.ordinals.as_ref())
        .and_then(|o| o.start)
        .unwrap_or(0)
        .max(0)
}

pub fn pod_name(set: &StatefulSet, ordinal: i32) -> String {
    format!("{}-{ordinal}", set_name(set))
}

/// The ordinal in a pod's name, if the name is `<set>-<n>`.
pub fn ordinal_of(set: &StatefulSet, pod: &Pod) -> Option<i32> {
    let name = pod.metadata.name.as_deref()?;
    let rest = name.strip_prefix(&set_name(set))?.strip_prefix('-')?;
    if rest.is_empty()
        || !rest.bytes().all(|b| b.is_ascii_digit())
        || (rest.len() > 1 && rest.starts_with('0'))
    {
        return None;
    }
    rest.parse().ok()
}

pub fn claim_name(claim: &str, set: &StatefulSet, ordinal: i32) -> String {
    format!("{claim}-{}-{ordinal}", set_name(set))
}

pub fn revision_of(pod: &Pod) -> String {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(HASH_LABEL))
        .cloned()
        .unwrap_or_default()
}

/// Whether the pod carries the identity its name calls for.
pub fn identity_matches(set: &StatefulSet, pod: &Pod) -> bool {
    let Some(ord) = ordinal_of(set, pod) else {
        return false;
    };
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    labels.get(POD_NAME_LABEL) == Some(&name)
        && labels.get(POD_INDEX_LABEL) == Some(&ord.to_string())
        && pod.metadata.namespace == set.metadata.namespace
}

/// A new pod of `set` at `ordinal` with `revision` (`newStatefulSetPod`).
pub fn new_pod(set: &StatefulSet, ordinal: i32, revision: &str) -> Pod {
    let spec = set.spec.clone().unwrap_or_default();
    let owner = ownership::controller_ref(&set.metadata, "apps/v1", "StatefulSet");
    let ns = set.metadata.namespace.clone().unwrap_or_default();
    let mut pod = pods::pod_from_template(&spec.template, &ns, "", owner);
    let name = pod_name(set, ordinal);
    pod.metadata.generate_name = None;
    pod.metadata.name = Some(name.clone());
    let labels = pod.metadata.labels.get_or_insert_with(BTreeMap::new);
    labels.insert(POD_NAME_LABEL.into(), name.clone());
    labels.insert(POD_INDEX_LABEL.into(), ordinal.to_string());
    labels.insert(HASH_LABEL.into(), revision.to_string());
    if let Some(ps) = pod.spec.as_mut() {
        ps.hostname = Some(name.clone());
        ps.subdomain = spec.service_name.clone().filter(|s| !s.is_empty());
        // Claim templates replace any pod volume of the same name.
        let templates = spec.volume_claim_templates.clone().unwrap_or_default();
        let mut volumes: Vec<Volume> = ps
            .volumes
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|v| {
                !templates
                    .iter()
                    .any(|t| t.metadata.name.as_deref() == Some(v.name.as_str()))
            })
            .collect();
        for t in &templates {
            let claim = t.metadata.name.clone().unwrap_or_default();
            volumes.push(Volume {
                name: claim.clone(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: claim_name(&claim, set, ordinal),
                    read_only: None,
                }),
                ..Default::default()
            });
        }
        ps.volumes = (!volumes.is_empty()).then_some(volumes);
    }
    pod
}

/// The claims the pod at `ordinal` needs: the templates' labels plus the set's selector
/// labels, and the owner references the retention policy calls for.
pub fn claims_for(set: &StatefulSet, ordinal: i32) -> Vec<PersistentVolumeClaim> {
    let spec = set.spec.clone().unwrap_or_default();
    let selector_labels = spec.selector.match_labels.clone().unwrap_or_default();
    let delete_with_set = spec
        .persistent_volume_claim_retention_policy
        .as_ref()
        .and_then(|p| p.when_deleted.as_deref())
        == Some("Delete");
    spec.volume_claim_templates
        .unwrap_or_default()
        .into_iter()
        .map(|t| {
            let name = t.metadata.name.clone().unwrap_or_default();
            let mut labels = t.metadata.labels.clone().unwrap_or_default();
            labels.extend(selector_labels.clone());
            let mut owners = Vec::new();
            if delete_with_set {
                let mut r = ownership::controller_ref(&set.metadata, "apps/v1", "StatefulSet");
                r.controller = Some(true);
                owners.push(r);
            }
            PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some(claim_name(&name, set, ordinal)),
                    namespace: set.metadata.namespace.clone(),
                    labels: Some(labels),
                    annotations: t.metadata.annotations.clone(),
                    owner_references: (!owners.is_empty()).then_some(owners),
                    ..Default::default()
                },
                spec: t.spec.clone(),
                status: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set() -> StatefulSet {
        serde_json::from_value(json!({
            "metadata": {"name": "db", "namespace": "ns", "uid": "u"},
            "spec": {
                "replicas": 3, "serviceName": "db-hl",
                "selector": {"matchLabels": {"app": "db"}},
                "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "c", "image": "pg"}],
                    "volumes": [{"name": "data", "emptyDir": {}}]}},
                "volumeClaimTemplates": [{"metadata": {"name": "data", "labels": {"tier": "storage"}}, "spec": {"accessModes": ["ReadWriteOnce"]}}],
                "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Retain"}
            }
        }))
        .unwrap()
    }

    #[test]
    fn pods_get_a_stable_identity_and_their_claims() {
        let s = set();
        let p = new_pod(&s, 2, "db-abc");
        assert_eq!(p.metadata.name.as_deref(), Some("db-2"));
        let l = p.metadata.labels.clone().unwrap();
        assert_eq!(l[POD_NAME_LABEL], "db-2");
        assert_eq!(l[POD_INDEX_LABEL], "2");
        assert_eq!(l[HASH_LABEL], "db-abc");
        let spec = p.spec.clone().unwrap();
        assert_eq!(spec.hostname.as_deref(), Some("db-2"));
        assert_eq!(spec.subdomain.as_deref(), Some("db-hl"));
        let vols = spec.volumes.unwrap();
        assert_eq!(
            vols.len(),
            1,
            "the claim replaces the emptyDir of the same name"
        );
        assert_eq!(
            vols[0].persistent_volume_claim.as_ref().unwrap().claim_name,
            "data-db-2"
        );
        assert!(identity_matches(&s, &p));
        assert_eq!(ordinal_of(&s, &p), Some(2));
        let c = &claims_for(&s, 2)[0];
        assert_eq!(c.metadata.name.as_deref(), Some("data-db-2"));
        let cl = c.metadata.labels.clone().unwrap();
        assert_eq!((cl["app"].as_str(), cl["tier"].as_str()), ("db", "storage"));
        assert_eq!(
            c.metadata.owner_references.as_ref().unwrap()[0].kind,
            "StatefulSet"
        );
    }

    #[test]
    fn only_canonical_ordinals_count() {
        let s = set();
        let named = |n: &str| Pod {
            metadata: ObjectMeta {
                name: Some(n.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(ordinal_of(&s, &named("db-10")), Some(10));
        for bad in ["db-01", "db-", "db-x", "dbx-1", "other-1"] {
            assert_eq!(ordinal_of(&s, &named(bad)), None, "{bad}");
        }
    }
}
