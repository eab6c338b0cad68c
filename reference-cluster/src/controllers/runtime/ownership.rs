//! Controller references (upstream `ControllerRefManager`): a controller owns the objects
//! whose controller ownerReference carries its UID; it adopts matching orphans and releases
//! owned objects that stopped matching its selector. Adoption and release are patches with the
//! object's UID as precondition, so a recreated object of the same name is never touched.

use std::fmt::Debug;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use serde_json::json;

use super::selector::{labels_of, LabelSelector};

/// The owner reference with `controller: true`, if any.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
}

/// A controller reference to `owner` (`metav1.NewControllerRef`).
pub fn controller_ref(owner: &ObjectMeta, api_version: &str, kind: &str) -> OwnerReference {
    OwnerReference {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
        name: owner.name.clone().unwrap_or_default(),
        uid: owner.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The owner as a claiming controller sees it.
pub struct Owner<'a> {
    pub meta: &'a ObjectMeta,
    pub api_version: &'a str,
    pub kind: &'a str,
}

impl Owner<'_> {
    fn uid(&self) -> &str {
        self.meta.uid.as_deref().unwrap_or_default()
    }
}

/// Result of a claim: what the controller owns now, and errors met adopting or releasing.
pub struct Claimed<K> {
    pub owned: Vec<Arc<K>>,
    pub errors: Vec<kube::Error>,
}

/// Adopts and releases so that the owned set matches `selector`.
///
/// `can_adopt` is called at most once, before the first adoption: it rechecks on the server
/// that the owner still exists with the same UID and is not being deleted (a cached owner may
/// be stale; adopting for a deleted owner would leak the object to the garbage collector).
pub async fn claim<K, F, Fut>(
    api_for: impl Fn(&str) -> Api<K>,
    owner: &Owner<'_>,
    selector: &LabelSelector,
    candidates: Vec<Arc<K>>,
    can_adopt: F,
) -> Claimed<K>
where
    K: Resource + Clone + DeserializeOwned + Debug,
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let owner_deleting = owner.meta.deletion_timestamp.is_some();
    let owner_ns = owner.meta.namespace.clone().unwrap_or_default();
    let mut can_adopt = Some(can_adopt);
    let mut adopt_checked: Option<Result<(), String>> = None;
    let mut out = Claimed {
        owned: Vec::new(),
        errors: Vec::new(),
    };
    for obj in candidates {
        let meta = obj.meta();
        let matches = selector.matches(labels_of(&meta.labels));
        let ns = meta.namespace.clone().unwrap_or_default();
        if let Some(r) = controller_of(meta) {
            if r.uid != owner.uid() {
                continue;
            }
            if matches {
                out.owned.push(obj);
                continue;
            }
            // Ours but no longer selected: let it go, unless we are going away ourselves.
            if owner_deleting {
                continue;
            }
            let patch = json!({"metadata": {
                "ownerReferences": [{"$patch": "delete", "uid": owner.uid()}],
                "uid": meta.uid,
            }});
            match api_for(&ns)
                .patch(
                    meta.name.as_deref().unwrap_or_default(),
                    &PatchParams::default(),
                    &Patch::Strategic(&patch),
                )
                .await
            {
                Ok(_) => {}
                Err(e) if matches!(super::api_code(&e), Some(404) | Some(422) | Some(409)) => {}
                Err(e) => out.errors.push(e),
            }
            continue;
        }
        if owner_deleting || !matches || meta.deletion_timestamp.is_some() || ns != owner_ns {
            continue;
        }
        if adopt_checked.is_none() {
            let check = can_adopt.take().expect("checked once");
            adopt_checked = Some(check().await);
        }
        if let Some(Err(msg)) = &adopt_checked {
            tracing::debug!(owner = ?owner.meta.name, reason = %msg, "not adopting");
            break;
        }
        let r = controller_ref(owner.meta, owner.api_version, owner.kind);
        let patch = json!({"metadata": {
            "ownerReferences": [r],
            "uid": meta.uid,
        }});
        match api_for(&ns)
            .patch(
                meta.name.as_deref().unwrap_or_default(),
                &PatchParams::default(),
                &Patch::Strategic(&patch),
            )
            .await
        {
            Ok(adopted) => out.owned.push(Arc::new(adopted)),
            // Gone, or changed under us (UID precondition): the next sync sees the truth.
            Err(e) if matches!(super::api_code(&e), Some(404) | Some(409)) => {}
            Err(e) => out.errors.push(e),
        }
    }
    out
}

/// [`claim`] as a namespaced owner's controller uses it: the owner is rechecked on the server
/// before the first adoption, and the first error met is the sync's error.
pub async fn claim_for<O, K>(
    client: &kube::Client,
    owner_obj: &O,
    api_version: &str,
    kind: &str,
    selector: &LabelSelector,
    candidates: Vec<Arc<K>>,
) -> anyhow::Result<Vec<Arc<K>>>
where
    O: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug,
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug,
{
    let meta = owner_obj.meta();
    let ns = meta.namespace.clone().unwrap_or_default();
    let owner = Owner {
        meta,
        api_version,
        kind,
    };
    let api: Api<O> = Api::namespaced(client.clone(), &ns);
    let name = meta.name.clone().unwrap_or_default();
    let uid = meta.uid.clone().unwrap_or_default();
    let c = client.clone();
    let claimed = claim(
        move |ns| Api::<K>::namespaced(c.clone(), ns),
        &owner,
        selector,
        candidates,
        || async move { recheck_owner(api, &name, &uid).await },
    )
    .await;
    if let Some(e) = claimed.errors.into_iter().next() {
        let what = K::plural(&());
        return Err(anyhow::Error::new(e).context(format!("cannot adopt or release {what}")));
    }
    Ok(claimed.owned)
}

/// The standard `can_adopt` check: a fresh GET of the owner.
pub async fn recheck_owner<K>(api: Api<K>, name: &str, uid: &str) -> Result<(), String>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let fresh = api.get(name).await.map_err(|e| e.to_string())?;
    let meta = fresh.meta();
    if meta.uid.as_deref() != Some(uid) {
        return Err(format!(
            "original {name} is gone: got uid {:?}, wanted {uid}",
            meta.uid
        ));
    }
    if meta.deletion_timestamp.is_some() {
        return Err(format!("{name} has just been deleted"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_controller_reference_counts() {
        let mut meta = ObjectMeta {
            owner_references: Some(vec![OwnerReference {
                uid: "u1".into(),
                controller: None,
                ..Default::default()
            }]),
            ..Default::default()
        };
        assert!(controller_of(&meta).is_none());
        let owner = ObjectMeta {
            name: Some("web".into()),
            uid: Some("u2".into()),
            ..Default::default()
        };
        let r = controller_ref(&owner, "apps/v1", "ReplicaSet");
        assert_eq!(r.block_owner_deletion, Some(true));
        meta.owner_references.as_mut().unwrap().push(r);
        assert_eq!(controller_of(&meta).unwrap().uid, "u2");
    }
}
