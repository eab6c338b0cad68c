//! Taint-based eviction (upstream's taint-eviction-controller): a pod on a node with a
//! NoExecute taint it does not tolerate is deleted at once; one it tolerates for
//! `tolerationSeconds` is deleted that long after the controller first saw it there (the
//! shortest of the tolerations used); one it tolerates without a limit stays. Deleted pods
//! first get the `DisruptionTarget` condition, as upstream marks them.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod, Taint};
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use parking_lot::Mutex;
use serde_json::json;
use tokio::task::JoinHandle;

use super::taints;
use crate::controllers::manager::Context;
use crate::controllers::runtime::events::{self, now_time, EventRecorder};
use crate::controllers::runtime::{
    self, key_of, pods, split_key, Change, Informer, Reconciler, Requeue, WorkQueue,
};

pub struct TaintEviction {
    client: kube::Client,
    nodes: Informer<Node>,
    pods: Informer<Pod>,
    queue: Arc<WorkQueue<String>>,
    /// Pods with a pending eviction: when it was planned and when it is due.
    scheduled: Mutex<HashMap<String, (Instant, Instant)>>,
    recorder: Arc<EventRecorder>,
}

fn no_execute(node: &Node) -> Vec<Taint> {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|t| t.effect == "NoExecute")
        .collect()
}

impl TaintEviction {
    pub fn new(ctx: &Context, nodes: Informer<Node>, pods: Informer<Pod>) -> Arc<Self> {
        let this = Arc::new(TaintEviction {
            client: ctx.client_for("node-controller"),
            nodes,
            pods,
            queue: WorkQueue::new(ctx.cfg.backoff),
            scheduled: Mutex::new(HashMap::new()),
            recorder: EventRecorder::new(
                ctx.client_for("node-controller"),
                "taint-eviction-controller",
            ),
        });
        let w: Weak<Self> = Arc::downgrade(&this);
        this.nodes.add_handler({
            let w = w.clone();
            move |c| {
                let Some(this) = w.upgrade() else { return };
                let (node, changed) = match c {
                    Change::Add(n) => (n, true),
                    Change::Update { old, new } => (new, no_execute(old) != no_execute(new)),
                    Change::Delete(n) => (n, true),
                };
                if !changed {
                    return;
                }
                let name = node.name_any();
                for p in this.pods.list() {
                    if p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(name.as_str()) {
                        this.queue.add(key_of(p.as_ref()));
                    }
                }
            }
        });
        this.pods.add_handler(move |c| {
            let Some(this) = w.upgrade() else { return };
            match c {
                Change::Add(p) => this.queue.add(key_of(p.as_ref())),
                Change::Update { old, new } => {
                    let node = |p: &Pod| p.spec.as_ref().and_then(|s| s.node_name.clone());
                    let tols = |p: &Pod| p.spec.as_ref().and_then(|s| s.tolerations.clone());
                    if node(old) != node(new)
                        || tols(old) != tols(new)
                        || new.metadata.deletion_timestamp.is_some()
                    {
                        this.queue.add(key_of(new.as_ref()));
                    }
                }
                Change::Delete(p) => {
                    this.scheduled.lock().remove(&key_of(p.as_ref()));
                }
            }
        });
        this
    }

    fn cancel(&self, key: &str, pod: Option<&Pod>) {
        if self.scheduled.lock().remove(key).is_some() {
            if let Some(p) = pod {
                self.recorder.event(
                    p,
                    events::NORMAL,
                    "TaintManagerEviction",
                    format!("Cancelling deletion of Pod {key}"),
                );
            }
        }
    }

    async fn evict(&self, key: &str, pod: &Pod) -> anyhow::Result<()> {
        self.recorder.event(
            pod,
            events::NORMAL,
            "TaintManagerEviction",
            format!("Marking for deletion Pod {key}"),
        );
        let (ns, name) = split_key(key);
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let has_target = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.type_ == "DisruptionTarget" && c.status == "True")
            });
        if !has_target {
            let mut conditions = pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.clone())
                .unwrap_or_default();
            conditions.retain(|c| c.type_ != "DisruptionTarget");
            conditions.push(k8s_openapi::api::core::v1::PodCondition {
                type_: "DisruptionTarget".into(),
                status: "True".into(),
                reason: Some("DeletionByTaintManager".into()),
                message: Some("Taint manager: deleting due to NoExecute taint".into()),
                last_transition_time: Some(now_time()),
                ..Default::default()
            });
            let patch = json!({"status": {"conditions": conditions}});
            match api
                .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {}
                Err(e) if runtime::is_not_found(&e) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if runtime::is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
        self.scheduled.lock().remove(key);
        Ok(())
    }

    pub fn start(self: Arc<Self>) -> Vec<JoinHandle<()>> {
        let q = self.queue.clone();
        runtime::run_workers(self, q, 4)
    }

    pub fn shut_down(&self) {
        self.queue.shut_down();
    }
}

#[async_trait::async_trait]
impl Reconciler for TaintEviction {
    fn name(&self) -> &'static str {
        "taint-eviction-controller"
    }

    async fn sync(&self, key: &str) -> anyhow::Result<Requeue> {
        let (ns, name) = split_key(key);
        let Some(pod) = self.pods.get(ns, name) else {
            self.scheduled.lock().remove(key);
            return Ok(Requeue::No);
        };
        if pods::is_terminal(&pod) || pod.metadata.deletion_timestamp.is_some() {
            self.scheduled.lock().remove(key);
            return Ok(Requeue::No);
        }
        let Some(node) = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .filter(|n| !n.is_empty())
            .and_then(|n| self.nodes.get("", n))
        else {
            self.cancel(key, Some(&pod));
            return Ok(Requeue::No);
        };
        let taints = no_execute(&node);
        if taints.is_empty() {
            self.cancel(key, Some(&pod));
            return Ok(Requeue::No);
        }
        let tolerations = pod
            .spec
            .as_ref()
            .and_then(|s| s.tolerations.clone())
            .unwrap_or_default();
        match taints::toleration_time(&tolerations, &taints) {
            None => {
                self.evict(key, &pod).await?;
                Ok(Requeue::No)
            }
            Some(None) => {
                self.cancel(key, Some(&pod));
                Ok(Requeue::No)
            }
            Some(Some(secs)) => {
                let now = Instant::now();
                let due = {
                    let mut s = self.scheduled.lock();
                    let entry = s.entry(key.to_string()).or_insert((now, now));
                    entry.1 = entry.0 + Duration::from_secs(secs as u64);
                    entry.1
                };
                if now >= due {
                    self.evict(key, &pod).await?;
                    return Ok(Requeue::No);
                }
                Ok(Requeue::After(due - now + Duration::from_millis(50)))
            }
        }
    }
}
