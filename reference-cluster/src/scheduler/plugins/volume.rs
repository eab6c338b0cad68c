//! VolumeBinding for persistent volume claims: claims must exist and not be lost or deleting;
//! unbound claims of an `Immediate` storage class keep the pod pending; bound claims restrict
//! the pod to nodes their volume's node affinity allows. Claims of a `WaitForFirstConsumer`
//! class are left to dynamic provisioning: PreBind records the chosen node on the claim
//! (`volume.kubernetes.io/selected-node`) and waits until the claim is bound.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;

use crate::scheduler::api::ApiClient;
use crate::scheduler::framework::events::{
    EventResource, ADD, UPDATE, UPDATE_NODE_LABEL, UPDATE_NODE_TAINT,
};
use crate::scheduler::framework::{
    points, ClusterEvent, Code, Ctx, CycleState, Plugin, PreFilterResult, Status,
};
use crate::scheduler::nodeinfo::NodeInfo;
use crate::scheduler::podinfo::PodInfo;
use crate::scheduler::selector::NodeSelector;

pub const UNBOUND_IMMEDIATE: &str = "pod has unbound immediate PersistentVolumeClaims";
pub const NODE_CONFLICT: &str = "node(s) had volume node affinity conflict";
pub const PV_NOT_EXIST: &str =
    "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)";

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Args {
    #[serde(default = "default_timeout")]
    bind_timeout_seconds: i64,
    /// Storage-capacity scoring (alpha upstream); accepted, not used.
    #[serde(default, rename = "shape")]
    _shape: Option<Value>,
}

fn default_timeout() -> i64 {
    600
}

pub struct VolumeBinding {
    bind_timeout: Duration,
}

/// The pod's claims, classified.
#[derive(Clone, Default)]
struct State {
    /// For each bound claim: its volume's required node affinity (`None`: any node), or an
    /// error marker when the volume does not exist.
    bound: Vec<Result<Option<NodeSelector>, ()>>,
    /// Claims waiting for the first consumer: `namespace`, `name`.
    delayed: Vec<(String, String)>,
}

const STATE_KEY: &str = "VolumeBinding";

impl VolumeBinding {
    pub fn new(args: Option<&Value>) -> Result<VolumeBinding, String> {
        let timeout = match args {
            Some(v) => {
                let a: Args = serde_json::from_value(v.clone())
                    .map_err(|e| format!("VolumeBindingArgs: {e}"))?;
                if a.bind_timeout_seconds < 0 {
                    return Err("VolumeBindingArgs: bindTimeoutSeconds: Invalid value: must be non-negative".into());
                }
                a.bind_timeout_seconds
            }
            None => default_timeout(),
        };
        Ok(VolumeBinding {
            bind_timeout: Duration::from_secs(timeout as u64),
        })
    }
}

/// Names of the claims the pod uses, and whether each is a generic ephemeral volume.
fn claim_names(pod: &PodInfo) -> Vec<(String, bool)> {
    pod.pod
        .spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .filter_map(|v| {
            if let Some(pvc) = &v.persistent_volume_claim {
                Some((pvc.claim_name.clone(), false))
            } else {
                v.ephemeral
                    .as_ref()
                    .map(|_| (format!("{}-{}", pod.name, v.name), true))
            }
        })
        .collect()
}

#[async_trait]
impl Plugin for VolumeBinding {
    fn name(&self) -> &'static str {
        "VolumeBinding"
    }
    fn points(&self) -> u32 {
        points::PRE_FILTER | points::FILTER | points::PRE_BIND
    }
    fn events_to_register(&self) -> Vec<ClusterEvent> {
        vec![
            ClusterEvent::new(EventResource::StorageClass, ADD | UPDATE),
            ClusterEvent::new(EventResource::PersistentVolumeClaim, ADD | UPDATE),
            ClusterEvent::new(EventResource::PersistentVolume, ADD | UPDATE),
            ClusterEvent::new(
                EventResource::Node,
                ADD | UPDATE_NODE_LABEL | UPDATE_NODE_TAINT,
            ),
        ]
    }

    fn pre_filter(
        &self,
        ctx: &Ctx,
        state: &mut CycleState,
        pod: &PodInfo,
    ) -> (Option<PreFilterResult>, Status) {
        let claims = claim_names(pod);
        if claims.is_empty() {
            return (None, Status::skip());
        }
        let l = &ctx.cache.listers;
        let mut s = State::default();
        let mut unbound_immediate = false;
        for (name, ephemeral) in claims {
            let key = format!("{}/{name}", pod.namespace);
            let Some(pvc) = l.pvcs.get(&key) else {
                let msg = if ephemeral {
                    format!("waiting for ephemeral volume controller to create the persistentvolumeclaim {name:?}")
                } else {
                    format!("persistentvolumeclaim {name:?} not found")
                };
                return (None, Status::unresolvable(msg));
            };
            let volume = pvc
                .spec
                .as_ref()
                .and_then(|s| s.volume_name.clone())
                .unwrap_or_default();
            if pvc.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Lost") {
                return (
                    None,
                    Status::unresolvable(format!("persistentvolumeclaim {name:?} bound to non-existent persistentvolume {volume:?}")),
                );
            }
            if pvc.metadata.deletion_timestamp.is_some() {
                return (
                    None,
                    Status::unresolvable(format!(
                        "persistentvolumeclaim {name:?} is being deleted"
                    )),
                );
            }
            if ephemeral {
                let owned = pvc
                    .metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| o.controller == Some(true) && o.uid == pod.uid);
                if !owned {
                    return (
                        None,
                        Status::unresolvable(format!(
                            "PVC {}/{name} was not created for pod {} (pod is not owner)",
                            pod.namespace, pod.key
                        )),
                    );
                }
            }
            if !volume.is_empty() {
                s.bound.push(match l.pvs.get(&volume) {
                    None => Err(()),
                    Some(pv) => Ok(pv
                        .spec
                        .as_ref()
                        .and_then(|s| s.node_affinity.as_ref())
                        .and_then(|a| a.required.as_ref())
                        .map(|r| NodeSelector::new(&r.node_selector_terms))),
                });
                continue;
            }
            let class = pvc
                .spec
                .as_ref()
                .and_then(|s| s.storage_class_name.clone())
                .unwrap_or_default();
            let delayed = l
                .storage_classes
                .get(&class)
                .and_then(|sc| sc.volume_binding_mode.as_deref())
                == Some("WaitForFirstConsumer");
            if delayed {
                s.delayed.push((pod.namespace.clone(), name));
            } else {
                unbound_immediate = true;
            }
        }
        if unbound_immediate {
            // The PV controller binds these; the PVC event brings the pod back.
            return (None, Status::unresolvable(UNBOUND_IMMEDIATE));
        }
        state.write(STATE_KEY, s);
        (None, Status::success())
    }

    fn filter(&self, _ctx: &Ctx, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(s) = state.read::<State>(STATE_KEY) else {
            return Status::success();
        };
        let mut reasons: Vec<std::borrow::Cow<'static, str>> = Vec::new();
        let mut conflict = false;
        let mut missing = false;
        for b in &s.bound {
            match b {
                Err(()) => missing = true,
                Ok(Some(sel)) if !sel.matches(node.name(), node.labels()) => conflict = true,
                Ok(_) => {}
            }
        }
        if missing {
            reasons.push(PV_NOT_EXIST.into());
        } else if conflict {
            reasons.push(NODE_CONFLICT.into());
        }
        if reasons.is_empty() {
            Status::success()
        } else {
            Status::with_reasons(Code::UnschedulableAndUnresolvable, reasons)
        }
    }

    async fn pre_bind(&self, api: &ApiClient, pod: &PodInfo, node: &str) -> Status {
        let claims = claim_names(pod);
        let mut waiting = Vec::new();
        for (name, _) in claims {
            match api.claim_binding_state(&pod.namespace, &name).await {
                Ok(ClaimState::Bound) => {}
                Ok(ClaimState::Delayed) => {
                    if let Err(e) = api.select_node_for_claim(&pod.namespace, &name, node).await {
                        return Status::error(e);
                    }
                    waiting.push(name);
                }
                Ok(ClaimState::Pending) => waiting.push(name),
                Err(e) => return Status::error(e),
            }
        }
        let deadline = tokio::time::Instant::now() + self.bind_timeout;
        for name in waiting {
            loop {
                match api.claim_binding_state(&pod.namespace, &name).await {
                    Ok(ClaimState::Bound) => break,
                    Ok(_) => {}
                    Err(e) => return Status::error(e),
                }
                if tokio::time::Instant::now() >= deadline {
                    return Status::error(format!("binding volumes: context deadline exceeded (persistentvolumeclaim {name:?})"));
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        Status::success()
    }
}

/// The claim states PreBind distinguishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimState {
    Bound,
    /// Unbound, waiting for a node to be selected.
    Delayed,
    /// Unbound, node already selected.
    Pending,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::testutil::{ctx_for, node, pod_in};
    use serde_json::json;
    use std::sync::Arc;

    fn with_claim(claim: &str) -> PodInfo {
        pod_in(
            json!({"name": "p", "uid": "u1"}),
            json!({"containers": [], "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]}),
        )
    }

    fn pvc(
        name: &str,
        spec: serde_json::Value,
    ) -> Arc<k8s_openapi::api::core::v1::PersistentVolumeClaim> {
        Arc::new(
            serde_json::from_value(
                json!({"metadata": {"name": name, "namespace": "default"}, "spec": spec}),
            )
            .unwrap(),
        )
    }

    #[test]
    fn missing_unbound_and_bound_claims() {
        let (mut cache, nom) = ctx_for(vec![
            node("a", json!({"metadata": {"labels": {"zone": "a"}}})),
            node("b", json!({"metadata": {"labels": {"zone": "b"}}})),
        ]);
        cache.listers.pvcs.insert(
            "default/unbound".into(),
            pvc("unbound", json!({"storageClassName": "fast"})),
        );
        cache.listers.pvcs.insert(
            "default/bound".into(),
            pvc("bound", json!({"volumeName": "pv1"})),
        );
        cache.listers.pvcs.insert(
            "default/dangling".into(),
            pvc("dangling", json!({"volumeName": "gone"})),
        );
        cache.listers.pvcs.insert(
            "default/later".into(),
            pvc("later", json!({"storageClassName": "wffc"})),
        );
        cache.listers.storage_classes.insert(
            "wffc".into(),
            Arc::new(serde_json::from_value(json!({"metadata": {"name": "wffc"}, "provisioner": "x", "volumeBindingMode": "WaitForFirstConsumer"})).unwrap()),
        );
        cache.listers.pvs.insert(
            "pv1".into(),
            Arc::new(
                serde_json::from_value(json!({"metadata": {"name": "pv1"}, "spec": {"nodeAffinity": {"required": {"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}}}))
                .unwrap(),
            ),
        );
        let ctx = Ctx {
            cache: &cache,
            nominator: &nom,
        };
        let vb = VolumeBinding::new(None).unwrap();
        let pre = |claim: &str| {
            let mut st = CycleState::new();
            let (_, s) = vb.pre_filter(&ctx, &mut st, &with_claim(claim));
            (s, st)
        };
        assert_eq!(
            pre("nope").0.message(),
            "persistentvolumeclaim \"nope\" not found"
        );
        let (s, _) = pre("unbound");
        assert_eq!(
            (s.code(), s.message().as_str()),
            (Code::UnschedulableAndUnresolvable, UNBOUND_IMMEDIATE)
        );
        let (s, st) = pre("bound");
        assert!(s.is_success());
        let p = with_claim("bound");
        assert!(vb
            .filter(&ctx, &st, &p, cache.get("a").unwrap())
            .is_success());
        assert_eq!(
            vb.filter(&ctx, &st, &p, cache.get("b").unwrap()).message(),
            NODE_CONFLICT
        );
        let (_, st) = pre("dangling");
        assert_eq!(
            vb.filter(&ctx, &st, &with_claim("dangling"), cache.get("a").unwrap())
                .message(),
            PV_NOT_EXIST
        );
        let (s, st) = pre("later");
        assert!(s.is_success());
        assert!(vb
            .filter(&ctx, &st, &with_claim("later"), cache.get("b").unwrap())
            .is_success());
        let none = pod_in(json!({"name": "q"}), json!({"containers": []}));
        assert!(vb
            .pre_filter(&ctx, &mut CycleState::new(), &none)
            .1
            .is_skip());
    }

    #[test]
    fn ephemeral_claims_must_exist_and_belong_to_the_pod() {
        let (mut cache, nom) = ctx_for(vec![node("a", json!({}))]);
        let p = pod_in(
            json!({"name": "p", "uid": "u1"}),
            json!({"containers": [], "volumes": [{"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}}]}),
        );
        let ctx = Ctx {
            cache: &cache,
            nominator: &nom,
        };
        let vb = VolumeBinding::new(None).unwrap();
        let (_, s) = vb.pre_filter(&ctx, &mut CycleState::new(), &p);
        assert_eq!(s.message(), "waiting for ephemeral volume controller to create the persistentvolumeclaim \"p-scratch\"");
        cache.listers.pvcs.insert(
            "default/p-scratch".into(),
            Arc::new(serde_json::from_value(json!({"metadata": {"name": "p-scratch", "namespace": "default",
                "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "other", "uid": "u2", "controller": true}]},
                "spec": {"volumeName": "v"}})).unwrap()),
        );
        let ctx = Ctx {
            cache: &cache,
            nominator: &nom,
        };
        let (_, s) = vb.pre_filter(&ctx, &mut CycleState::new(), &p);
        assert!(s.message().contains("pod is not owner"), "{}", s.message());
    }
}
