//! The PersistentVolume binder (upstream's `persistentvolume-binder` controller, events from
//! `persistentvolume-controller`): binds each unbound claim to the smallest Available volume
//! that satisfies it, marks new volumes Available, and otherwise says on the claim why it waits
//! — the signals `kubectl describe pvc` shows:
//!
//! - no volume fits and the claim names no class: `FailedBinding` "no persistent volumes
//!   available for this claim and no storage class is set";
//! - the class does not exist: `ProvisioningFailed` with the lister's not-found message;
//! - the class names an in-tree (`kubernetes.io/…`) provisioner: `ProvisioningFailed` (this
//!   cluster has no in-tree volume plugins);
//! - any other provisioner is external: the claim is annotated with it and `ExternalProvisioning`
//!   says the controller waits for it;
//! - a `WaitForFirstConsumer` claim no pod has chosen a node for: `WaitForFirstConsumer`.
//!
//! Claims are looked at again every sync period (`--pvclaimbinder-sync-period`, 15 s), as
//! upstream resyncs them, so a Pending claim keeps its event fresh and a volume created later is
//! found. Dynamic provisioning itself is left to external provisioners, as upstream does for
//! every CSI driver.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    ObjectReference, PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimStatus,
    PersistentVolumeStatus,
};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::PostParams;
use kube::{Api, ResourceExt};
use tokio::task::JoinHandle;

use super::manager::{Context, Controller};
use super::runtime::events::{EventRecorder, NORMAL, WARNING};
use super::runtime::{self, key_of, split_key, Change, Informer, Reconciler, Requeue, WorkQueue};
use crate::resources::quantity::Quantity;

pub const ANN_BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";
pub const ANN_BOUND_BY_CONTROLLER: &str = "pv.kubernetes.io/bound-by-controller";
pub const ANN_SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
pub const ANN_STORAGE_PROVISIONER: &str = "volume.kubernetes.io/storage-provisioner";
pub const ANN_BETA_STORAGE_PROVISIONER: &str = "volume.beta.kubernetes.io/storage-provisioner";
const ANN_BETA_CLASS: &str = "volume.beta.kubernetes.io/storage-class";

pub const NO_CLASS_MESSAGE: &str =
    "no persistent volumes available for this claim and no storage class is set";
pub const WAIT_FOR_CONSUMER_MESSAGE: &str =
    "waiting for first consumer to be created before binding";

fn external_message(provisioner: &str) -> String {
    format!("Waiting for a volume to be created either by the external provisioner '{provisioner}' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered.")
}

/// The default `--pvclaimbinder-sync-period`.
pub const DEFAULT_SYNC_PERIOD: Duration = Duration::from_secs(15);

/// Queue keys: claims by `namespace/name`, volumes by `pv:<name>` (cluster-scoped).
const VOLUME_PREFIX: &str = "pv:";

pub struct PersistentVolumeBinder {
    client: kube::Client,
    claims: Informer<PersistentVolumeClaim>,
    volumes: Informer<PersistentVolume>,
    classes: Informer<StorageClass>,
    queue: Arc<WorkQueue<String>>,
    events: Arc<EventRecorder>,
    sync_period: Duration,
}

/// The class a claim asks for: the field, or the beta annotation that predates it.
fn claim_class(claim: &PersistentVolumeClaim) -> String {
    claim
        .annotations()
        .get(ANN_BETA_CLASS)
        .cloned()
        .or_else(|| {
            claim
                .spec
                .as_ref()
                .and_then(|s| s.storage_class_name.clone())
        })
        .unwrap_or_default()
}

fn volume_class(pv: &PersistentVolume) -> String {
    pv.annotations()
        .get(ANN_BETA_CLASS)
        .cloned()
        .or_else(|| pv.spec.as_ref().and_then(|s| s.storage_class_name.clone()))
        .unwrap_or_default()
}

fn volume_capacity(pv: &PersistentVolume) -> Option<Quantity> {
    let q = pv.spec.as_ref()?.capacity.as_ref()?.get("storage")?;
    Quantity::parse(&q.0).ok()
}

fn claim_request(claim: &PersistentVolumeClaim) -> Option<Quantity> {
    let q = claim
        .spec
        .as_ref()?
        .resources
        .as_ref()?
        .requests
        .as_ref()?
        .get("storage")?;
    Quantity::parse(&q.0).ok()
}

fn volume_mode(mode: Option<&String>) -> &str {
    mode.map(String::as_str).unwrap_or("Filesystem")
}

/// Whether the volume is reserved for this claim (`spec.claimRef` names it, and its UID if set).
fn prebound_to(pv: &PersistentVolume, claim: &PersistentVolumeClaim) -> bool {
    let Some(r) = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else {
        return false;
    };
    r.name.as_deref() == Some(claim.name_any().as_str())
        && r.namespace == claim.namespace()
        && r.uid
            .as_ref()
            .is_none_or(|u| Some(u) == claim.uid().as_ref())
}

/// Upstream's `checkVolumeSatisfyClaim` plus the claim's label selector: class, size, access
/// modes, volume mode and labels must all fit.
fn satisfies(pv: &PersistentVolume, claim: &PersistentVolumeClaim) -> bool {
    let (Some(pv_spec), Some(claim_spec)) = (pv.spec.as_ref(), claim.spec.as_ref()) else {
        return false;
    };
    if volume_class(pv) != claim_class(claim) {
        return false;
    }
    match (volume_capacity(pv), claim_request(claim)) {
        (Some(have), Some(want)) if have >= want => {}
        _ => return false,
    }
    let offered = pv_spec.access_modes.clone().unwrap_or_default();
    if !claim_spec
        .access_modes
        .iter()
        .flatten()
        .all(|m| offered.contains(m))
    {
        return false;
    }
    if volume_mode(pv_spec.volume_mode.as_ref()) != volume_mode(claim_spec.volume_mode.as_ref()) {
        return false;
    }
    if let Some(sel) = claim_spec.selector.as_ref() {
        match runtime::selector::from_typed(Some(sel)) {
            Ok(s) if s.matches(runtime::selector::labels_of(&pv.metadata.labels)) => {}
            _ => return false,
        }
    }
    true
}

/// The volume to bind `claim` to: one pre-bound to it, else the smallest Available one that
/// satisfies it (upstream's `findBestMatchForClaim`). With delayed binding only pre-bound
/// volumes count: the scheduler picks the others, with the node in mind.
fn best_match<'a>(
    volumes: &'a [Arc<PersistentVolume>],
    claim: &PersistentVolumeClaim,
    delayed: bool,
) -> Option<&'a Arc<PersistentVolume>> {
    let usable = |pv: &&Arc<PersistentVolume>| {
        pv.metadata.deletion_timestamp.is_none()
            && !matches!(
                pv.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Released" | "Failed")
            )
    };
    if let Some(pv) = volumes
        .iter()
        .filter(usable)
        .find(|pv| prebound_to(pv, claim) && satisfies(pv, claim))
    {
        return Some(pv);
    }
    if delayed {
        return None;
    }
    volumes
        .iter()
        .filter(usable)
        .filter(|pv| pv.spec.as_ref().is_some_and(|s| s.claim_ref.is_none()))
        .filter(|pv| satisfies(pv, claim))
        .min_by_key(|pv| volume_capacity(pv))
}

impl PersistentVolumeBinder {
    pub fn new(ctx: &Context) -> Arc<Self> {
        let client = ctx.client_for("persistent-volume-binder");
        let this = Arc::new(PersistentVolumeBinder {
            events: EventRecorder::new(client.clone(), "persistentvolume-controller"),
            client,
            claims: ctx.informers.get::<PersistentVolumeClaim>(),
            volumes: ctx.informers.get::<PersistentVolume>(),
            classes: ctx.informers.get::<StorageClass>(),
            queue: WorkQueue::new(ctx.cfg.backoff),
            sync_period: ctx.cfg.pv_binder_sync_period,
        });
        let q = this.queue.clone();
        this.claims.add_handler(move |c| match c {
            Change::Add(pvc) | Change::Update { new: pvc, .. } => q.add(key_of(pvc.as_ref())),
            Change::Delete(_) => {}
        });
        // A new or changed volume may be what a Pending claim waits for.
        let (q, claims) = (this.queue.clone(), this.claims.clone());
        this.volumes.add_handler(move |c| match c {
            Change::Add(pv) | Change::Update { new: pv, .. } => {
                q.add(format!("{VOLUME_PREFIX}{}", pv.name_any()));
                for pvc in claims.list() {
                    if pvc
                        .spec
                        .as_ref()
                        .and_then(|s| s.volume_name.as_ref())
                        .is_none()
                    {
                        q.add(key_of(pvc.as_ref()));
                    }
                }
            }
            Change::Delete(_) => {}
        });
        let (q, claims) = (this.queue.clone(), this.claims.clone());
        this.classes.add_handler(move |c| {
            if let Change::Add(_) = c {
                for pvc in claims.list() {
                    if pvc
                        .spec
                        .as_ref()
                        .and_then(|s| s.volume_name.as_ref())
                        .is_none()
                    {
                        q.add(key_of(pvc.as_ref()));
                    }
                }
            }
        });
        this
    }

    async fn sync_volume(&self, name: &str) -> anyhow::Result<Requeue> {
        let Some(pv) = self.volumes.get("", name) else {
            return Ok(Requeue::No);
        };
        let phase = pv.status.as_ref().and_then(|s| s.phase.as_deref());
        let unclaimed = pv.spec.as_ref().is_none_or(|s| s.claim_ref.is_none());
        // A fresh volume nobody claims becomes Available; bound ones are handled from the claim.
        if unclaimed && matches!(phase, None | Some("Pending")) {
            self.set_volume_phase(&pv, "Available").await?;
        }
        Ok(Requeue::No)
    }

    async fn set_volume_phase(&self, pv: &PersistentVolume, phase: &str) -> anyhow::Result<()> {
        let mut pv = pv.clone();
        let status = pv
            .status
            .get_or_insert_with(PersistentVolumeStatus::default);
        status.phase = Some(phase.to_string());
        status.last_phase_transition_time = Some(runtime::events::now_time());
        let api: Api<PersistentVolume> = Api::all(self.client.clone());
        api.replace_status(&pv.name_any(), &PostParams::default(), &pv)
            .await?;
        Ok(())
    }

    async fn sync_claim(&self, ns: &str, name: &str) -> anyhow::Result<Requeue> {
        let Some(claim) = self.claims.get(ns, name) else {
            return Ok(Requeue::No);
        };
        if claim.metadata.deletion_timestamp.is_some() {
            return Ok(Requeue::No);
        }
        let bound_to = claim
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.clone())
            .unwrap_or_default();
        if !bound_to.is_empty() {
            return self.finish_binding(&claim, &bound_to).await;
        }
        let class_name = claim_class(&claim);
        let class = (!class_name.is_empty())
            .then(|| self.classes.get("", &class_name))
            .flatten();
        let delayed = class
            .as_ref()
            .and_then(|c| c.volume_binding_mode.as_deref())
            == Some("WaitForFirstConsumer");
        let volumes = self.volumes.list();
        if let Some(pv) = best_match(&volumes, &claim, delayed) {
            self.bind(&claim, pv).await?;
            return Ok(Requeue::No);
        }
        let selected_node = claim.annotations().contains_key(ANN_SELECTED_NODE);
        if delayed && !selected_node {
            self.events.event(
                claim.as_ref(),
                NORMAL,
                "WaitForFirstConsumer",
                WAIT_FOR_CONSUMER_MESSAGE,
            );
        } else if class_name.is_empty() {
            self.events
                .event(claim.as_ref(), NORMAL, "FailedBinding", NO_CLASS_MESSAGE);
        } else {
            match class {
                None => self.events.event(
                    claim.as_ref(),
                    WARNING,
                    "ProvisioningFailed",
                    format!("storageclass.storage.k8s.io \"{class_name}\" not found"),
                ),
                // No in-tree volume plugin exists here, so every `kubernetes.io/` name (the
                // no-provisioner marker included) is one the controller cannot find.
                Some(c) if c.provisioner.starts_with("kubernetes.io/") => self.events.event(
                    claim.as_ref(),
                    WARNING,
                    "ProvisioningFailed",
                    format!("no volume plugin matched name: {}", c.provisioner),
                ),
                Some(c) => {
                    self.annotate_provisioner(&claim, &c.provisioner).await?;
                    self.events.event(
                        claim.as_ref(),
                        NORMAL,
                        "ExternalProvisioning",
                        external_message(&c.provisioner),
                    );
                }
            }
        }
        Ok(Requeue::After(self.sync_period))
    }

    async fn annotate_provisioner(
        &self,
        claim: &PersistentVolumeClaim,
        provisioner: &str,
    ) -> anyhow::Result<()> {
        let a = claim.annotations();
        if a.get(ANN_STORAGE_PROVISIONER).map(String::as_str) == Some(provisioner)
            && a.get(ANN_BETA_STORAGE_PROVISIONER).map(String::as_str) == Some(provisioner)
        {
            return Ok(());
        }
        let mut claim = claim.clone();
        let ann = claim.metadata.annotations.get_or_insert_with(BTreeMap::new);
        ann.insert(ANN_STORAGE_PROVISIONER.into(), provisioner.into());
        ann.insert(ANN_BETA_STORAGE_PROVISIONER.into(), provisioner.into());
        let api: Api<PersistentVolumeClaim> =
            Api::namespaced(self.client.clone(), &claim.namespace().unwrap_or_default());
        api.replace(&claim.name_any(), &PostParams::default(), &claim)
            .await?;
        Ok(())
    }

    /// Reserves the volume for the claim first (so no other claim can take it), then points
    /// the claim at it, as upstream's `bind` does.
    async fn bind(
        &self,
        claim: &PersistentVolumeClaim,
        pv: &PersistentVolume,
    ) -> anyhow::Result<()> {
        let mut pv = pv.clone();
        let ns = claim.namespace().unwrap_or_default();
        let spec = pv.spec.get_or_insert_with(Default::default);
        let prebound = spec.claim_ref.is_some();
        spec.claim_ref = Some(ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("PersistentVolumeClaim".into()),
            namespace: Some(ns.clone()),
            name: Some(claim.name_any()),
            uid: claim.uid(),
            resource_version: claim.resource_version(),
            field_path: None,
        });
        if !prebound {
            pv.metadata
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(ANN_BOUND_BY_CONTROLLER.into(), "yes".into());
        }
        let pvs: Api<PersistentVolume> = Api::all(self.client.clone());
        let pv = pvs
            .replace(&pv.name_any(), &PostParams::default(), &pv)
            .await?;
        self.set_volume_phase(&pv, "Bound").await?;

        let mut claim = claim.clone();
        claim.spec.get_or_insert_with(Default::default).volume_name = Some(pv.name_any());
        let ann = claim.metadata.annotations.get_or_insert_with(BTreeMap::new);
        ann.insert(ANN_BIND_COMPLETED.into(), "yes".into());
        ann.insert(ANN_BOUND_BY_CONTROLLER.into(), "yes".into());
        let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), &ns);
        let claim = pvcs
            .replace(&claim.name_any(), &PostParams::default(), &claim)
            .await?;
        self.set_claim_bound(&claim, &pv).await
    }

    /// A claim whose `spec.volumeName` is set (by us, by the scheduler or by the user): once
    /// the volume points back at it, the claim is Bound.
    async fn finish_binding(
        &self,
        claim: &PersistentVolumeClaim,
        volume: &str,
    ) -> anyhow::Result<Requeue> {
        let Some(pv) = self.volumes.get("", volume) else {
            // The volume may be created later (pre-bound claim): look again.
            return Ok(Requeue::After(self.sync_period));
        };
        let phase = claim.status.as_ref().and_then(|s| s.phase.as_deref());
        let points_back = pv
            .spec
            .as_ref()
            .and_then(|s| s.claim_ref.as_ref())
            .is_some_and(|r| {
                r.name.as_deref() == Some(claim.name_any().as_str())
                    && r.namespace == claim.namespace()
            });
        if !points_back {
            if pv.spec.as_ref().is_some_and(|s| s.claim_ref.is_none()) && satisfies(&pv, claim) {
                self.bind(claim, &pv).await?;
            }
            return Ok(Requeue::No);
        }
        if phase != Some("Bound") {
            if pv.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Bound") {
                self.set_volume_phase(&pv, "Bound").await?;
            }
            self.set_claim_bound(claim, &pv).await?;
        }
        Ok(Requeue::No)
    }

    async fn set_claim_bound(
        &self,
        claim: &PersistentVolumeClaim,
        pv: &PersistentVolume,
    ) -> anyhow::Result<()> {
        let mut claim = claim.clone();
        let status = claim
            .status
            .get_or_insert_with(PersistentVolumeClaimStatus::default);
        status.phase = Some("Bound".into());
        status.access_modes = pv.spec.as_ref().and_then(|s| s.access_modes.clone());
        status.capacity = pv.spec.as_ref().and_then(|s| s.capacity.clone());
        let api: Api<PersistentVolumeClaim> =
            Api::namespaced(self.client.clone(), &claim.namespace().unwrap_or_default());
        api.replace_status(&claim.name_any(), &PostParams::default(), &claim)
            .await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Reconciler for PersistentVolumeBinder {
    fn name(&self) -> &'static str {
        "persistentvolume-binder"
    }

    async fn sync(&self, key: &str) -> anyhow::Result<Requeue> {
        if let Some(name) = key.strip_prefix(VOLUME_PREFIX) {
            return self.sync_volume(name).await;
        }
        let (ns, name) = split_key(key);
        self.sync_claim(ns, name).await
    }
}

impl Controller for PersistentVolumeBinder {
    fn name(&self) -> &'static str {
        "persistentvolume-binder"
    }

    fn run(self: Arc<Self>) -> Vec<JoinHandle<()>> {
        let q = self.queue.clone();
        runtime::run_workers(self, q, 1)
    }

    fn shut_down(&self) {
        self.queue.shut_down();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pv(name: &str, spec: serde_json::Value) -> Arc<PersistentVolume> {
        Arc::new(serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap())
    }

    fn claim(spec: serde_json::Value) -> PersistentVolumeClaim {
        serde_json::from_value(json!({
            "metadata": {"name": "data", "namespace": "ns", "uid": "u1"},
            "spec": spec,
        }))
        .unwrap()
    }

    fn rwo(size: &str, class: &str) -> serde_json::Value {
        json!({"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"], "storageClassName": class,
               "hostPath": {"path": "/tmp"}})
    }

    #[test]
    fn the_smallest_satisfying_volume_wins() {
        let want = claim(
            json!({"accessModes": ["ReadWriteOnce"], "storageClassName": "",
            "resources": {"requests": {"storage": "1Gi"}}}),
        );
        let vols = vec![
            pv("big", rwo("10Gi", "")),
            pv("small", rwo("2Gi", "")),
            pv("tiny", rwo("500Mi", "")),
            pv("other-class", rwo("1Gi", "fast")),
        ];
        assert_eq!(best_match(&vols, &want, false).unwrap().name_any(), "small");
        assert!(
            best_match(&vols, &want, true).is_none(),
            "delayed binding leaves it to the scheduler"
        );
    }

    #[test]
    fn access_modes_volume_mode_and_selector_must_fit() {
        let want = claim(
            json!({"accessModes": ["ReadWriteMany"], "storageClassName": "",
            "resources": {"requests": {"storage": "1Gi"}}}),
        );
        assert!(!satisfies(&pv("a", rwo("5Gi", "")), &want));
        let block = claim(
            json!({"accessModes": ["ReadWriteOnce"], "storageClassName": "", "volumeMode": "Block",
            "resources": {"requests": {"storage": "1Gi"}}}),
        );
        assert!(!satisfies(&pv("a", rwo("5Gi", "")), &block));
        let picky = claim(
            json!({"accessModes": ["ReadWriteOnce"], "storageClassName": "",
            "selector": {"matchLabels": {"tier": "gold"}},
            "resources": {"requests": {"storage": "1Gi"}}}),
        );
        let mut labelled = (*pv("a", rwo("5Gi", ""))).clone();
        assert!(!satisfies(&labelled, &picky));
        labelled.metadata.labels = Some([("tier".to_string(), "gold".to_string())].into());
        assert!(satisfies(&labelled, &picky));
    }

    #[test]
    fn a_volume_reserved_for_the_claim_is_taken_first_and_others_are_skipped() {
        let want = claim(
            json!({"accessModes": ["ReadWriteOnce"], "storageClassName": "",
            "resources": {"requests": {"storage": "1Gi"}}}),
        );
        let mut reserved = rwo("8Gi", "");
        reserved["claimRef"] = json!({"name": "data", "namespace": "ns"});
        let mut taken = rwo("1Gi", "");
        taken["claimRef"] = json!({"name": "else", "namespace": "ns"});
        let vols = vec![
            pv("taken", taken),
            pv("small", rwo("1Gi", "")),
            pv("reserved", reserved),
        ];
        assert_eq!(
            best_match(&vols, &want, false).unwrap().name_any(),
            "reserved"
        );
        assert_eq!(
            best_match(&vols, &want, true).unwrap().name_any(),
            "reserved"
        );
    }

    #[test]
    fn the_external_provisioning_message_names_the_provisioner() {
        assert!(external_message("csi.example.com")
            .starts_with("Waiting for a volume to be created either by the external provisioner 'csi.example.com' or manually"));
    }
}
