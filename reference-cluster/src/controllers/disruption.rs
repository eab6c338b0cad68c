//! The disruption controller: PodDisruptionBudget status, which the eviction API reads to
//! allow or refuse (429) an eviction. `expectedPods` comes from the replicas of the
//! controllers owning the selected pods (a Deployment through its ReplicaSets, a
//! ReplicaSet, ReplicationController or StatefulSet) when the budget is relative
//! (maxUnavailable or a percentage), else it is the number of selected pods; `currentHealthy`
//! counts ready pods not being deleted nor recently evicted; `disruptionsAllowed` is
//! `currentHealthy - desiredHealthy` (never negative).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::{Api, ResourceExt};
use tokio::task::JoinHandle;

use super::deployment::util::scaled_value;
use super::manager::{Context, Controller};
use super::runtime::events::now_time;
use super::runtime::ownership::controller_of;
use super::runtime::{
    self, key_of, pods, selector, split_key, Change, Informer, Reconciler, Requeue, WorkQueue,
};

/// How long an eviction stays in `disruptedPods` without the pod going away.
const DELETION_TIMEOUT: Duration = Duration::from_secs(2 * 60);

pub struct DisruptionController {
    client: kube::Client,
    pdbs: Informer<PodDisruptionBudget>,
    pods: Informer<Pod>,
    replica_sets: Informer<ReplicaSet>,
    deployments: Informer<Deployment>,
    stateful_sets: Informer<StatefulSet>,
    rcs: Informer<ReplicationController>,
    queue: Arc<WorkQueue<String>>,
    resync: Duration,
}

impl DisruptionController {
    pub fn new(ctx: &Context) -> Arc<Self> {
        let this = Arc::new(DisruptionController {
            client: ctx.client_for("disruption-controller"),
            pdbs: ctx.informers.get::<PodDisruptionBudget>(),
            pods: ctx.informers.get::<Pod>(),
            replica_sets: ctx.informers.get::<ReplicaSet>(),
            deployments: ctx.informers.get::<Deployment>(),
            stateful_sets: ctx.informers.get::<StatefulSet>(),
            rcs: ctx.informers.get::<ReplicationController>(),
            queue: WorkQueue::new(ctx.cfg.backoff),
            resync: ctx.cfg.pdb_resync,
        });
        let q = this.queue.clone();
        this.pdbs.add_handler(move |c| match c {
            Change::Add(p) | Change::Delete(p) => q.add(key_of(p.as_ref())),
            Change::Update { new, .. } => q.add(key_of(new.as_ref())),
        });
        let w: Weak<Self> = Arc::downgrade(&this);
        this.pods.add_handler(move |c| {
            let Some(this) = w.upgrade() else { return };
            let (p, old) = match c {
                Change::Add(p) | Change::Delete(p) => (p, None),
                Change::Update { old, new } => (new, Some(old)),
            };
            let mut keys: HashSet<String> = this.pdbs_for(p).into_iter().collect();
            if let Some(o) = old {
                keys.extend(this.pdbs_for(o));
            }
            for k in keys {
                this.queue.add(k);
            }
        });
        // Scale changes change expectedPods.
        for_each_scale_change(&this);
        this
    }

    fn pdbs_for(&self, pod: &Pod) -> Vec<String> {
        let ns = pod.namespace().unwrap_or_default();
        self.pdbs
            .list_namespace(&ns)
            .into_iter()
            .filter(|b| {
                selector::from_typed(b.spec.as_ref().and_then(|s| s.selector.as_ref()))
                    .is_ok_and(|s| s.matches(selector::labels_of(&pod.metadata.labels)))
            })
            .map(|b| key_of(b.as_ref()))
            .collect()
    }

    /// The replicas and UID of the controller owning `pod` (`getExpectedScale` finders).
    fn scale_of(&self, pod: &Pod) -> Option<(String, i32)> {
        let ns = pod.namespace().unwrap_or_default();
        let r = controller_of(&pod.metadata)?;
        match r.kind.as_str() {
            "ReplicaSet" => {
                let rs = self
                    .replica_sets
                    .get(&ns, &r.name)
                    .filter(|x| x.uid().as_deref() == Some(r.uid.as_str()))?;
                if let Some(dr) = controller_of(&rs.metadata).filter(|d| d.kind == "Deployment") {
                    let d = self
                        .deployments
                        .get(&ns, &dr.name)
                        .filter(|x| x.uid().as_deref() == Some(dr.uid.as_str()))?;
                    return Some((
                        dr.uid.clone(),
                        d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                    ));
                }
                Some((
                    r.uid.clone(),
                    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                ))
            }
            "StatefulSet" => {
                let s = self
                    .stateful_sets
                    .get(&ns, &r.name)
                    .filter(|x| x.uid().as_deref() == Some(r.uid.as_str()))?;
                Some((
                    r.uid.clone(),
                    s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                ))
            }
            "ReplicationController" => {
                let rc = self
                    .rcs
                    .get(&ns, &r.name)
                    .filter(|x| x.uid().as_deref() == Some(r.uid.as_str()))?;
                Some((
                    r.uid.clone(),
                    rc.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                ))
            }
            _ => None,
        }
    }
}

fn for_each_scale_change(this: &Arc<DisruptionController>) {
    macro_rules! watch_scale {
        ($inf:expr) => {{
            let w = Arc::downgrade(this);
            $inf.add_handler(move |c| {
                let Some(this) = w.upgrade() else { return };
                let obj = match c {
                    Change::Add(o) | Change::Delete(o) => o,
                    Change::Update { new, .. } => new,
                };
                for b in this
                    .pdbs
                    .list_namespace(&obj.namespace().unwrap_or_default())
                {
                    this.queue.add(key_of(b.as_ref()));
                }
            });
        }};
    }
    watch_scale!(this.replica_sets);
    watch_scale!(this.deployments);
    watch_scale!(this.stateful_sets);
    watch_scale!(this.rcs);
}

/// (expectedPods, desiredHealthy) for a budget, or the reason it cannot be computed.
pub fn budget(
    min_available: Option<&IntOrString>,
    max_unavailable: Option<&IntOrString>,
    selected: usize,
    scale: impl FnOnce() -> Result<i32, String>,
) -> Result<(i32, i32), String> {
    match (max_unavailable, min_available) {
        (Some(mu), _) => {
            let expected = scale()?;
            let mu = scaled_value(mu, expected, true)?;
            Ok((expected, (expected - mu).max(0)))
        }
        (None, Some(IntOrString::Int(n))) => Ok((selected as i32, *n)),
        (None, Some(pct @ IntOrString::String(_))) => {
            let expected = scale()?;
            Ok((expected, scaled_value(pct, expected, true)?))
        }
        (None, None) => Ok((selected as i32, 0)),
    }
}

fn condition(
    status: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    old: Option<&Condition>,
) -> Condition {
    let now = now_time();
    let same = old.is_some_and(|o| o.status == status);
    Condition {
        type_: "DisruptionAllowed".into(),
        status: status.into(),
        reason: reason.into(),
        message: message.into(),
        observed_generation: generation,
        last_transition_time: if same {
            old.map(|o| o.last_transition_time.clone()).unwrap_or(now)
        } else {
            now
        },
    }
}

#[async_trait::async_trait]
impl Reconciler for DisruptionController {
    fn name(&self) -> &'static str {
        "disruption-controller"
    }

    async fn sync(&self, key: &str) -> anyhow::Result<Requeue> {
        let (ns, name) = split_key(key);
        let Some(cached) = self.pdbs.get(ns, name) else {
            return Ok(Requeue::No);
        };
        let pdb = (*cached).clone();
        let spec = pdb.spec.clone().unwrap_or_default();
        let old = pdb.status.clone().unwrap_or_default();
        let old_cond = old
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "DisruptionAllowed")
            .cloned();
        let generation = pdb.metadata.generation;
        let sel = selector::from_typed(spec.selector.as_ref());
        let pods: Vec<Arc<Pod>> = match &sel {
            Ok(s) => self
                .pods
                .list_namespace(ns)
                .into_iter()
                .filter(|p| s.matches(selector::labels_of(&p.metadata.labels)))
                .collect(),
            Err(_) => Vec::new(),
        };
        let scale = || -> Result<i32, String> {
            let mut seen: BTreeMap<String, i32> = BTreeMap::new();
            for p in &pods {
                match self.scale_of(p) {
                    Some((uid, n)) => {
                        seen.insert(uid, n);
                    }
                    None => return Err(format!("found no controllers for pod {:?}", p.name_any())),
                }
            }
            Ok(seen.values().sum())
        };
        let computed = sel.map_err(|e| e.to_string()).and_then(|_| {
            budget(
                spec.min_available.as_ref(),
                spec.max_unavailable.as_ref(),
                pods.len(),
                scale,
            )
        });
        // Evictions the API recorded: dropped once the pod is gone or deleting, or too old.
        let now = Timestamp::now();
        let mut disrupted: BTreeMap<String, Time> = BTreeMap::new();
        let mut next_expiry: Option<Duration> = None;
        for (pod_name, at) in old.disrupted_pods.clone().unwrap_or_default() {
            let Some(p) = pods.iter().find(|p| p.name_any() == pod_name) else {
                continue;
            };
            if p.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let age = Duration::try_from(now.duration_since(at.0)).unwrap_or_default();
            if age >= DELETION_TIMEOUT {
                continue;
            }
            let left = DELETION_TIMEOUT - age;
            next_expiry = Some(next_expiry.map_or(left, |n| n.min(left)));
            disrupted.insert(pod_name, at);
        }
        let healthy = pods
            .iter()
            .filter(|p| {
                p.metadata.deletion_timestamp.is_none()
                    && !disrupted.contains_key(&p.name_any())
                    && pods::is_ready(p)
            })
            .count() as i32;
        let mut status = PodDisruptionBudgetStatus {
            observed_generation: generation,
            current_healthy: healthy,
            disrupted_pods: (!disrupted.is_empty()).then_some(disrupted),
            ..Default::default()
        };
        match computed {
            Ok((expected, desired)) => {
                status.expected_pods = expected;
                status.desired_healthy = desired;
                status.disruptions_allowed = (healthy - desired).max(0);
                let c = if status.disruptions_allowed > 0 {
                    condition("True", "SufficientPods", "", generation, old_cond.as_ref())
                } else {
                    condition(
                        "False",
                        "InsufficientPods",
                        "",
                        generation,
                        old_cond.as_ref(),
                    )
                };
                status.conditions = Some(vec![c]);
            }
            Err(e) => {
                // Unknown budgets allow no disruption (upstream's failSafe).
                status.expected_pods = old.expected_pods;
                status.desired_healthy = old.desired_healthy;
                status.disruptions_allowed = 0;
                status.conditions = Some(vec![condition(
                    "False",
                    "SyncFailed",
                    &e,
                    generation,
                    old_cond.as_ref(),
                )]);
            }
        }
        if serde_json::to_value(&old).ok() != serde_json::to_value(&status).ok() {
            let mut b = pdb.clone();
            b.status = Some(status);
            let api: Api<PodDisruptionBudget> = Api::namespaced(self.client.clone(), ns);
            api.replace_status(name, &PostParams::default(), &b).await?;
        }
        let wait = next_expiry.map_or(self.resync, |d| d.min(self.resync));
        Ok(Requeue::After(wait))
    }
}

impl Controller for DisruptionController {
    fn name(&self) -> &'static str {
        "disruption"
    }

    fn run(self: Arc<Self>) -> Vec<JoinHandle<()>> {
        let q = self.queue.clone();
        runtime::run_workers(self, q, 2)
    }

    fn shut_down(&self) {
        self.queue.shut_down();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_as_upstream_computes_them() {
        let int = IntOrString::Int;
        let pct = |s: &str| IntOrString::String(s.into());
        assert_eq!(
            budget(Some(&int(2)), None, 5, || Err("unused".into())),
            Ok((5, 2))
        );
        assert_eq!(
            budget(Some(&pct("50%")), None, 3, || Ok(5)),
            Ok((5, 3)),
            "rounded up"
        );
        assert_eq!(budget(None, Some(&int(1)), 3, || Ok(4)), Ok((4, 3)));
        assert_eq!(
            budget(None, Some(&pct("30%")), 3, || Ok(4)),
            Ok((4, 2)),
            "2 unavailable (30% of 4 rounded up)"
        );
        assert_eq!(budget(None, Some(&int(9)), 3, || Ok(4)), Ok((4, 0)));
        assert!(budget(
            None,
            Some(&int(1)),
            3,
            || Err("found no controllers".into())
        )
        .is_err());
    }
}
