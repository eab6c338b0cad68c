//! ControllerRevisions, the history StatefulSets and DaemonSets keep of their pod templates
//! (upstream `controller/history`): a revision holds the template as a strategic-merge patch
//! (`{"spec":{"template":{…,"$patch":"replace"}}}`), is named `<owner>-<hash>`, carries the
//! `controller-revision-hash` label, and a rollback to an old template re-numbers the old
//! revision instead of creating a new one.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::{json, Value};

use super::deployment::util::safe_encode;
use super::runtime::{self, ownership::controller_of, Informer};

pub const HASH_LABEL: &str = "controller-revision-hash";

/// The revision data of a pod template.
pub fn template_patch(template: &PodTemplateSpec) -> Value {
    let mut t = serde_json::to_value(template).unwrap_or(Value::Null);
    if let Some(m) = t.as_object_mut() {
        m.insert("$patch".into(), json!("replace"));
    }
    json!({"spec": {"template": t}})
}

/// The template a revision holds.
pub fn template_of(rev: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut t = rev.data.as_ref()?.0.get("spec")?.get("template")?.clone();
    if let Some(m) = t.as_object_mut() {
        m.remove("$patch");
    }
    serde_json::from_value(t).ok()
}

/// FNV-1 32-bit (Go's `fnv.New32`, which `HashControllerRevision` uses).
fn fnv32(data: &[u8]) -> u32 {
    let mut h: u32 = 0x811c9dc5;
    for b in data {
        h = h.wrapping_mul(0x01000193);
        h ^= *b as u32;
    }
    h
}

/// `HashControllerRevision`: the data, then the collision count as decimal text.
pub fn hash_data(data: &Value, collision: Option<i32>) -> String {
    let mut bytes = serde_json::to_vec(data).unwrap_or_default();
    if let Some(c) = collision {
        bytes.extend_from_slice(c.to_string().as_bytes());
    }
    safe_encode(&fnv32(&bytes).to_string())
}

pub fn revision_name(owner: &str, hash: &str) -> String {
    let mut prefix = owner.to_string();
    if prefix.len() > 223 {
        let mut cut = 223;
        while !prefix.is_char_boundary(cut) {
            cut -= 1;
        }
        prefix.truncate(cut);
    }
    format!("{prefix}-{hash}")
}

/// Revisions of `owner_uid` in `ns`, lowest revision first.
pub fn owned(
    revisions: &Informer<ControllerRevision>,
    ns: &str,
    owner_uid: &str,
) -> Vec<Arc<ControllerRevision>> {
    let mut v: Vec<Arc<ControllerRevision>> = revisions
        .list_namespace(ns)
        .into_iter()
        .filter(|r| controller_of(&r.metadata).is_some_and(|o| o.uid == owner_uid))
        .collect();
    v.sort_by(|a, b| {
        a.revision
            .cmp(&b.revision)
            .then_with(|| a.name_any().cmp(&b.name_any()))
    });
    v
}

pub fn same_data(a: &ControllerRevision, b: &ControllerRevision) -> bool {
    a.data.as_ref().map(|d| &d.0) == b.data.as_ref().map(|d| &d.0)
}

/// What a new revision of an owner looks like.
pub struct NewRevision {
    pub owner: OwnerReference,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub data: Value,
}

/// Finds or creates the revision for `new` (`getStatefulSetRevisions` / DaemonSet's
/// `constructHistory`): the latest revision if it has the same data; an older equal one is
/// renumbered as the newest (a rollback); else a new one is created, bumping the collision
/// count on a name clash with different data. Returns the revision and the collision count.
pub async fn find_or_create(
    client: &kube::Client,
    existing: &[Arc<ControllerRevision>],
    new: NewRevision,
    collision: i32,
    name_hash: impl Fn(i32) -> String,
) -> anyhow::Result<(ControllerRevision, i32)> {
    let api: Api<ControllerRevision> = Api::namespaced(client.clone(), &new.namespace);
    let next = existing.iter().map(|r| r.revision).max().unwrap_or(0) + 1;
    let equal: Vec<&Arc<ControllerRevision>> = existing
        .iter()
        .filter(|r| r.data.as_ref().map(|d| &d.0) == Some(&new.data))
        .collect();
    if let Some(last_equal) = equal.last() {
        if existing
            .last()
            .is_some_and(|l| l.name_any() == last_equal.name_any())
        {
            return Ok(((***last_equal).clone(), collision));
        }
        let mut r = (***last_equal).clone();
        r.revision = next;
        let updated = api
            .replace(&r.name_any(), &PostParams::default(), &r)
            .await?;
        return Ok((updated, collision));
    }
    let mut collision = collision;
    for _ in 0..100 {
        let hash = name_hash(collision);
        let mut labels = new.labels.clone();
        labels.insert(HASH_LABEL.into(), hash.clone());
        let rev = ControllerRevision {
            metadata: ObjectMeta {
                name: Some(revision_name(&new.owner.name, &hash)),
                namespace: Some(new.namespace.clone()),
                labels: Some(labels),
                annotations: (!new.annotations.is_empty()).then(|| new.annotations.clone()),
                owner_references: Some(vec![new.owner.clone()]),
                ..Default::default()
            },
            data: Some(RawExtension(new.data.clone())),
            revision: next,
        };
        match api.create(&PostParams::default(), &rev).await {
            Ok(created) => return Ok((created, collision)),
            Err(e) if runtime::is_already_exists(&e) => {
                let clash = api.get(&rev.name_any()).await?;
                if clash.data.as_ref().map(|d| &d.0) == Some(&new.data) {
                    return Ok((clash, collision));
                }
                collision += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
    anyhow::bail!(
        "too many ControllerRevision hash collisions for {}",
        new.owner.name
    )
}

/// Deletes the oldest revisions that are not live beyond `limit`.
pub async fn truncate(
    client: &kube::Client,
    revisions: &[Arc<ControllerRevision>],
    live: &std::collections::HashSet<String>,
    limit: i32,
) -> anyhow::Result<()> {
    let history: Vec<&Arc<ControllerRevision>> = revisions
        .iter()
        .filter(|r| !live.contains(&r.name_any()))
        .collect();
    let excess = history.len() as i64 - limit.max(0) as i64;
    if excess <= 0 {
        return Ok(());
    }
    for r in history.into_iter().take(excess as usize) {
        let api: Api<ControllerRevision> =
            Api::namespaced(client.clone(), &r.namespace().unwrap_or_default());
        match api.delete(&r.name_any(), &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if runtime::is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    fn template(image: &str) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: None,
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    image: Some(image.into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        }
    }

    #[test]
    fn templates_round_trip_through_revision_data() {
        let t = template("nginx:1");
        let data = template_patch(&t);
        assert_eq!(data["spec"]["template"]["$patch"], "replace");
        let rev = ControllerRevision {
            data: Some(RawExtension(data.clone())),
            ..Default::default()
        };
        assert_eq!(template_of(&rev), Some(t));
        assert_eq!(hash_data(&data, None), hash_data(&data, None));
        assert_ne!(hash_data(&data, None), hash_data(&data, Some(1)));
        assert_ne!(
            hash_data(&data, None),
            hash_data(&template_patch(&template("nginx:2")), None)
        );
    }

    #[test]
    fn fnv1_differs_from_fnv1a() {
        // FNV-1 of "a" (Go's fnv.New32).
        assert_eq!(fnv32(b"a"), 0x050c5d7e);
        assert_eq!(revision_name("web", "abc"), "web-abc");
        assert_eq!(revision_name(&"x".repeat(300), "h").len(), 225);
    }
}
