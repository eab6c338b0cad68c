//! Node lifecycle: a node is healthy while its kubelet renews its Lease in `kube-node-lease`
//! or posts status. When neither happened for `node-monitor-grace-period` (50s; 60s for a node
//! that never reported), its conditions turn Unknown ("Kubelet stopped posting node status.").
//! Ready False/Unknown give the `node.kubernetes.io/not-ready` / `unreachable` taints, NoExecute
//! and NoSchedule, and the node's pods are marked not ready. The taint-eviction part then
//! deletes pods that do not tolerate a NoExecute taint, after their tolerationSeconds.
//!
//! Times are measured on this controller's clock from when it last saw a heartbeat change,
//! not from the timestamps the kubelet wrote, so clock skew between them does not matter.

pub mod eviction;
pub mod taints;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use parking_lot::Mutex;
use serde_json::json;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::manager::{Context, Controller};
use super::runtime::events::{self, now_time, EventRecorder};
use super::runtime::{pods, Informer};

pub const CONTROLLER_NAME: &str = "node-controller";
const LEASE_NAMESPACE: &str = "kube-node-lease";
/// The conditions that go Unknown with the kubelet.
const KUBELET_CONDITIONS: &[&str] = &["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

/// What the controller last saw of a node, and when (its own clock).
struct Health {
    probe: Instant,
    ready_heartbeat: Option<Time>,
    ready_transition: Option<Time>,
    lease_renew: Option<String>,
    ready_status: Option<String>,
}

pub struct NodeLifecycle {
    client: kube::Client,
    nodes: Informer<Node>,
    leases: Informer<Lease>,
    pods: Informer<Pod>,
    health: Mutex<HashMap<String, Health>>,
    recorder: Arc<EventRecorder>,
    period: Duration,
    grace: Duration,
    startup_grace: Duration,
    eviction: Arc<eviction::TaintEviction>,
    stop: Notify,
}

fn conditions(node: &Node) -> Vec<NodeCondition> {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default()
}

impl NodeLifecycle {
    pub fn new(ctx: &Context) -> Arc<Self> {
        let pods = ctx.informers.get::<Pod>();
        let nodes = ctx.informers.get::<Node>();
        Arc::new(NodeLifecycle {
            client: ctx.client_for("node-controller"),
            leases: ctx.informers.get_with::<Lease>(
                "node-leases",
                watcher::Config::default().fields(&format!("metadata.namespace={LEASE_NAMESPACE}")),
            ),
            health: Mutex::new(HashMap::new()),
            recorder: EventRecorder::new(ctx.client_for("node-controller"), CONTROLLER_NAME),
            period: ctx.cfg.node_monitor_period,
            grace: ctx.cfg.node_monitor_grace_period,
            startup_grace: ctx.cfg.node_startup_grace_period,
            eviction: eviction::TaintEviction::new(ctx, nodes.clone(), pods.clone()),
            nodes,
            pods,
            stop: Notify::new(),
        })
    }

    /// One pass over every node (`monitorNodeHealth`).
    async fn monitor(&self) {
        let now = Instant::now();
        let nodes = self.nodes.list();
        {
            let names: std::collections::HashSet<String> =
                nodes.iter().map(|n| n.name_any()).collect();
            self.health.lock().retain(|n, _| names.contains(n));
        }
        for node in nodes {
            if let Err(e) = self.check(&node, now).await {
                tracing::debug!(node = %node.name_any(), error = %format!("{e:#}"), "node health check failed");
            }
        }
    }

    async fn check(&self, node: &Node, now: Instant) -> anyhow::Result<()> {
        let name = node.name_any();
        let conds = conditions(node);
        let ready = conds.iter().find(|c| c.type_ == "Ready");
        let lease = self.leases.get(LEASE_NAMESPACE, &name);
        let renew = lease
            .as_ref()
            .and_then(|l| l.spec.as_ref()?.renew_time.as_ref())
            .map(|t| format!("{:?}", t.0));
        let (stale, prev_ready) = {
            let mut h = self.health.lock();
            let entry = h.entry(name.clone()).or_insert_with(|| Health {
                probe: now,
                ready_heartbeat: ready.and_then(|c| c.last_heartbeat_time.clone()),
                ready_transition: ready.and_then(|c| c.last_transition_time.clone()),
                lease_renew: renew.clone(),
                ready_status: ready.map(|c| c.status.clone()),
            });
            let heartbeat = ready.and_then(|c| c.last_heartbeat_time.clone());
            let transition = ready.and_then(|c| c.last_transition_time.clone());
            if heartbeat != entry.ready_heartbeat || transition != entry.ready_transition {
                entry.ready_heartbeat = heartbeat;
                entry.ready_transition = transition;
                entry.probe = now;
            }
            if renew.is_some() && renew != entry.lease_renew {
                entry.lease_renew = renew;
                entry.probe = now;
            }
            let grace = if ready.is_none() {
                self.startup_grace
            } else {
                self.grace
            };
            let prev = entry.ready_status.clone();
            (now.duration_since(entry.probe) > grace, prev)
        };
        let mut conds = conds;
        let needs_unknown = KUBELET_CONDITIONS.iter().any(|t| {
            conds
                .iter()
                .find(|c| c.type_ == *t)
                .is_none_or(|c| c.status != "Unknown")
        });
        if stale && needs_unknown {
            conds = self.mark_unknown(node).await?;
        }
        let ready_now = conds
            .iter()
            .find(|c| c.type_ == "Ready")
            .map(|c| c.status.clone());
        if ready_now != prev_ready {
            if let Some(h) = self.health.lock().get_mut(&name) {
                h.ready_status = ready_now.clone();
            }
            if prev_ready.as_deref() == Some("True") && ready_now.as_deref() != Some("True") {
                self.recorder.event(
                    node,
                    events::NORMAL,
                    "NodeNotReady",
                    format!("Node {name} status is now: NodeNotReady"),
                );
                self.mark_pods_not_ready(&name).await;
            }
        }
        self.reconcile_taints(node, &conds).await
    }

    /// Sets the kubelet's conditions to Unknown; returns the conditions now.
    async fn mark_unknown(&self, node: &Node) -> anyhow::Result<Vec<NodeCondition>> {
        let mut conds = conditions(node);
        let now = now_time();
        for t in KUBELET_CONDITIONS {
            match conds.iter_mut().find(|c| c.type_ == *t) {
                Some(c) => {
                    if c.status != "Unknown" {
                        c.status = "Unknown".into();
                        c.reason = Some("NodeStatusUnknown".into());
                        c.message = Some("Kubelet stopped posting node status.".into());
                        c.last_transition_time = Some(now.clone());
                    }
                }
                None => conds.push(NodeCondition {
                    type_: t.to_string(),
                    status: "Unknown".into(),
                    reason: Some("NodeStatusNeverUpdated".into()),
                    message: Some("Kubelet never posted node status.".into()),
                    last_heartbeat_time: node.metadata.creation_timestamp.clone(),
                    last_transition_time: Some(now.clone()),
                }),
            }
        }
        // The resourceVersion makes this a compare-and-swap: a heartbeat that lands first wins.
        let patch = json!({"metadata": {"resourceVersion": node.resource_version()}, "status": {"conditions": conds}});
        let api: Api<Node> = Api::all(self.client.clone());
        api.patch_status(
            &node.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
        Ok(conds)
    }

    /// Sets Ready=False on the node's pods (`MarkPodsNotReady`).
    async fn mark_pods_not_ready(&self, node: &str) {
        let now = now_time();
        for p in self.pods.list() {
            if p.spec.as_ref().and_then(|s| s.node_name.as_deref()) != Some(node)
                || !pods::is_ready(&p)
            {
                continue;
            }
            let mut conditions = p
                .status
                .as_ref()
                .and_then(|s| s.conditions.clone())
                .unwrap_or_default();
            for c in conditions
                .iter_mut()
                .filter(|c| c.type_ == "Ready" || c.type_ == "ContainersReady")
            {
                c.status = "False".into();
                c.last_transition_time = Some(now.clone());
            }
            let patch = json!({"metadata": {"resourceVersion": p.resource_version()}, "status": {"conditions": conditions}});
            let api: Api<Pod> =
                Api::namespaced(self.client.clone(), &p.namespace().unwrap_or_default());
            if api
                .patch_status(
                    &p.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
                .is_ok()
            {
                self.recorder.event(
                    p.as_ref(),
                    events::WARNING,
                    "NodeNotReady",
                    "Node is not ready",
                );
            }
        }
    }

    /// Brings the node's managed NoExecute and NoSchedule taints in line with its conditions.
    async fn reconcile_taints(&self, node: &Node, conds: &[NodeCondition]) -> anyhow::Result<()> {
        let spec = node.spec.clone().unwrap_or_default();
        let current: Vec<Taint> = spec.taints.clone().unwrap_or_default();
        let mut want: Vec<(String, &'static str)> = Vec::new();
        if let Some(k) = taints::no_execute_for(conds) {
            want.push((k.to_string(), "NoExecute"));
        }
        for k in taints::no_schedule_for(conds, spec.unschedulable.unwrap_or(false)) {
            want.push((k.to_string(), "NoSchedule"));
        }
        let managed = |t: &Taint| {
            taints::MANAGED.contains(&t.key.as_str())
                && (t.effect == "NoExecute" || t.effect == "NoSchedule")
        };
        let mut next: Vec<Taint> = current
            .iter()
            .filter(|t| !managed(t) || want.iter().any(|(k, e)| *k == t.key && *e == t.effect))
            .cloned()
            .collect();
        for (k, e) in &want {
            if !next.iter().any(|t| t.key == *k && t.effect == *e) {
                next.push(Taint {
                    key: k.clone(),
                    effect: e.to_string(),
                    value: None,
                    time_added: (*e == "NoExecute").then(now_time),
                });
            }
        }
        if next == current {
            return Ok(());
        }
        let patch = json!({"metadata": {"resourceVersion": node.resource_version()}, "spec": {"taints": next}});
        let api: Api<Node> = Api::all(self.client.clone());
        api.patch(
            &node.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
        Ok(())
    }
}

impl Controller for NodeLifecycle {
    fn name(&self) -> &'static str {
        "nodelifecycle"
    }

    fn run(self: Arc<Self>) -> Vec<JoinHandle<()>> {
        let mut tasks = self.eviction.clone().start();
        let this = self.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                this.monitor().await;
                tokio::select! {
                    _ = tokio::time::sleep(this.period) => {}
                    _ = this.stop.notified() => return,
                }
            }
        }));
        tasks
    }

    fn shut_down(&self) {
        self.eviction.shut_down();
        self.stop.notify_waiters();
        self.stop.notify_one();
    }
}
