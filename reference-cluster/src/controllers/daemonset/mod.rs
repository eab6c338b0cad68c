//! The DaemonSet controller: one pod on every node the template fits (pinned to it with node
//! affinity, tolerating the node lifecycle taints), pods removed from nodes it no longer fits,
//! failed pods replaced, and template changes rolled out node by node within maxUnavailable
//! (or, with maxSurge, by starting the new pod first). History is kept in ControllerRevisions
//! named `<daemonset>-<hash>`; pods carry the `controller-revision-hash` and
//! `pod-template-generation` labels.

pub mod placement;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::Duration;

use anyhow::Context as _;
use futures::future::join_all;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, ResourceExt};
use tokio::task::JoinHandle;

use self::placement::*;
use super::deployment::util::{compute_hash, scaled_value};
use super::history::{self, NewRevision, HASH_LABEL};
use super::manager::{Context, Controller};
use super::runtime::events::{self, EventRecorder};
use super::runtime::expectations::Expectations;
use super::runtime::ownership::{self, controller_of};
use super::runtime::{
    self, key_of, pods, selector, split_key, Change, Informer, Reconciler, Requeue, WorkQueue,
};

pub const CONTROLLER_NAME: &str = "daemonset-controller";
const TEMPLATE_GENERATION: &str = "pod-template-generation";

pub struct DaemonSetController {
    client: kube::Client,
    sets: Informer<DaemonSet>,
    pods: Informer<Pod>,
    nodes: Informer<Node>,
    revisions: Informer<ControllerRevision>,
    queue: Arc<WorkQueue<String>>,
    expectations: Expectations,
    recorder: Arc<EventRecorder>,
    workers: usize,
    burst: usize,
}

fn min_ready(ds: &DaemonSet) -> i32 {
    ds.spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0)
}

fn template_spec(ds: &DaemonSet) -> k8s_openapi::api::core::v1::PodSpec {
    let mut spec = ds
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.clone())
        .unwrap_or_default();
    add_daemon_tolerations(&mut spec);
    spec
}

fn pod_hash(p: &Pod) -> Option<&String> {
    p.metadata.labels.as_ref()?.get(HASH_LABEL)
}

/// Whether the pod was made from the current template (`IsPodUpdated`).
fn is_updated(p: &Pod, hash: &str, generation: Option<i64>) -> bool {
    let labels = p.metadata.labels.clone().unwrap_or_default();
    let gen_match =
        generation.is_some_and(|g| labels.get(TEMPLATE_GENERATION) == Some(&g.to_string()));
    gen_match || labels.get(HASH_LABEL).map(String::as_str) == Some(hash)
}

impl DaemonSetController {
    pub fn new(ctx: &Context) -> Arc<Self> {
        let this = Arc::new(DaemonSetController {
            client: ctx.client_for("daemon-set-controller"),
            sets: ctx.informers.get::<DaemonSet>(),
            pods: ctx.informers.get::<Pod>(),
            nodes: ctx.informers.get::<Node>(),
            revisions: ctx.informers.get::<ControllerRevision>(),
            queue: WorkQueue::new(ctx.cfg.backoff),
            expectations: Expectations::new(ctx.cfg.expectations_ttl),
            recorder: EventRecorder::new(ctx.client_for("daemon-set-controller"), CONTROLLER_NAME),
            workers: ctx.cfg.daemonset_workers,
            burst: ctx.cfg.burst_replicas.max(1),
        });
        let q = this.queue.clone();
        this.sets.add_handler(move |c| match c {
            Change::Add(s) | Change::Delete(s) => q.add(key_of(s.as_ref())),
            Change::Update { new, .. } => q.add(key_of(new.as_ref())),
        });
        // Any node change may change where daemons run.
        let w: Weak<Self> = Arc::downgrade(&this);
        this.nodes.add_handler({
            let w = w.clone();
            move |c| {
                let Some(this) = w.upgrade() else { return };
                if let Change::Update { old, new } = c {
                    let same = old.metadata.labels == new.metadata.labels
                        && old.spec.as_ref().and_then(|s| s.taints.clone())
                            == new.spec.as_ref().and_then(|s| s.taints.clone());
                    if same {
                        return;
                    }
                }
                for ds in this.sets.list() {
                    this.queue.add(key_of(ds.as_ref()));
                }
            }
        });
        this.pods.add_handler(move |c| {
            let Some(this) = w.upgrade() else { return };
            let p = match c {
                Change::Add(p) | Change::Delete(p) => p,
                Change::Update { new, .. } => new,
            };
            let ns = p.namespace().unwrap_or_default();
            let Some(r) = controller_of(&p.metadata).filter(|r| r.kind == "DaemonSet") else {
                return;
            };
            let Some(ds) = this
                .sets
                .get(&ns, &r.name)
                .filter(|d| d.uid().as_deref() == Some(r.uid.as_str()))
            else {
                return;
            };
            let key = key_of(ds.as_ref());
            match c {
                Change::Add(_) => this.expectations.creation_observed(&key),
                Change::Delete(_) => this
                    .expectations
                    .deletion_observed(&key, &key_of(p.as_ref())),
                Change::Update { old, new } => {
                    if new.metadata.deletion_timestamp.is_some()
                        && old.metadata.deletion_timestamp.is_none()
                    {
                        this.expectations
                            .deletion_observed(&key, &key_of(p.as_ref()));
                    }
                }
            }
            this.queue.add(key);
        });
        this
    }

    fn pod_api(&self, ns: &str) -> Api<Pod> {
        Api::namespaced(self.client.clone(), ns)
    }

    async fn claim_pods(&self, ds: &DaemonSet) -> anyhow::Result<Vec<Arc<Pod>>> {
        let sel = selector::from_typed(ds.spec.as_ref().map(|s| &s.selector))
            .map_err(anyhow::Error::msg)?;
        let ns = ds.namespace().unwrap_or_default();
        let pods = self.pods.list_namespace(&ns);
        ownership::claim_for(&self.client, ds, "apps/v1", "DaemonSet", &sel, pods).await
    }

    /// The current revision (created when missing); its hash labels new pods.
    async fn current_revision(&self, ds: &DaemonSet) -> anyhow::Result<(String, i32)> {
        let spec = ds.spec.clone().unwrap_or_default();
        let collision = ds
            .status
            .as_ref()
            .and_then(|s| s.collision_count)
            .unwrap_or(0);
        let existing = history::owned(
            &self.revisions,
            &ds.namespace().unwrap_or_default(),
            &ds.uid().unwrap_or_default(),
        );
        let template = spec.template.clone();
        let new = NewRevision {
            owner: ownership::controller_ref(&ds.metadata, "apps/v1", "DaemonSet"),
            namespace: ds.namespace().unwrap_or_default(),
            labels: template
                .metadata
                .as_ref()
                .and_then(|m| m.labels.clone())
                .unwrap_or_default(),
            annotations: ds.metadata.annotations.clone().unwrap_or_default(),
            data: history::template_patch(&template),
        };
        let (rev, collision) =
            history::find_or_create(&self.client, &existing, new, collision, |c| {
                compute_hash(&template, Some(c).filter(|c| *c > 0))
            })
            .await?;
        let hash = rev
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(HASH_LABEL))
            .cloned()
            .unwrap_or_default();
        Ok((hash, collision))
    }

    async fn create_on(
        &self,
        ds: &DaemonSet,
        key: &str,
        nodes: &[String],
        hash: &str,
    ) -> Option<anyhow::Error> {
        if nodes.is_empty() {
            return None;
        }
        let ns = ds.namespace().unwrap_or_default();
        let spec = ds.spec.clone().unwrap_or_default();
        let mut template = spec.template.clone();
        let labels = template
            .metadata
            .get_or_insert_with(Default::default)
            .labels
            .get_or_insert_with(BTreeMap::new);
        labels.insert(HASH_LABEL.into(), hash.to_string());
        if let Some(g) = ds.metadata.generation {
            labels.insert(TEMPLATE_GENERATION.into(), g.to_string());
        }
        let owner = ownership::controller_ref(&ds.metadata, "apps/v1", "DaemonSet");
        self.expectations.expect_creations(key, nodes.len());
        let api = self.pod_api(&ns);
        let pp = PostParams::default();
        let mut err = None;
        // Slow start, as for ReplicaSets.
        let mut batch = 1usize;
        let mut rest = nodes;
        while !rest.is_empty() {
            let (now, later) = rest.split_at(batch.min(rest.len()));
            rest = later;
            let bodies: Vec<Pod> = now
                .iter()
                .map(|node| {
                    let mut pod = pods::pod_from_template(
                        &template,
                        &ns,
                        &pods::pods_prefix(&ds.name_any()),
                        owner.clone(),
                    );
                    if let Some(s) = pod.spec.as_mut() {
                        add_daemon_tolerations(s);
                        pin_to_node(s, node);
                    }
                    pod
                })
                .collect();
            let results = join_all(bodies.iter().map(|p| api.create(&pp, p))).await;
            let mut failed = false;
            for r in results {
                match r {
                    Ok(p) => self.recorder.event(
                        ds,
                        events::NORMAL,
                        "SuccessfulCreate",
                        format!("Created pod: {}", p.name_any()),
                    ),
                    Err(e) => {
                        self.expectations.lower(key, 1, 0);
                        if !runtime::is_namespace_terminating(&e) {
                            self.recorder.event(
                                ds,
                                events::WARNING,
                                "FailedCreate",
                                format!("Error creating: {e}"),
                            );
                            failed = true;
                            err.get_or_insert(anyhow::Error::new(e));
                        }
                    }
                }
            }
            if failed {
                self.expectations.lower(key, rest.len() as i64, 0);
                break;
            }
            batch *= 2;
        }
        err
    }

    async fn delete_pods(
        &self,
        ds: &DaemonSet,
        key: &str,
        victims: &[Arc<Pod>],
    ) -> Option<anyhow::Error> {
        if victims.is_empty() {
            return None;
        }
        self.expectations
            .expect_deletions(key, victims.iter().map(|p| key_of(p.as_ref())));
        let results = join_all(victims.iter().map(|p| async move {
            (
                p.clone(),
                self.pod_api(&p.namespace().unwrap_or_default())
                    .delete(&p.name_any(), &DeleteParams::default())
                    .await,
            )
        }))
        .await;
        let mut err = None;
        for (p, r) in results {
            match r {
                Ok(_) => self.recorder.event(
                    ds,
                    events::NORMAL,
                    "SuccessfulDelete",
                    format!("Deleted pod: {}", p.name_any()),
                ),
                Err(e) => {
                    self.expectations
                        .deletion_observed(key, &key_of(p.as_ref()));
                    if !runtime::is_not_found(&e) {
                        self.recorder.event(
                            ds,
                            events::WARNING,
                            "FailedDelete",
                            format!("Error deleting: {e}"),
                        );
                        err.get_or_insert(anyhow::Error::new(e));
                    }
                }
            }
        }
        err
    }
}

/// (maxSurge, maxUnavailable) against the number of nodes that should run the daemon.
fn fenceposts(ds: &DaemonSet, desired: i32) -> (i32, i32) {
    let ru = ds
        .spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.rolling_update.as_ref());
    let surge = ru
        .and_then(|r| r.max_surge.as_ref())
        .map(|v| scaled_value(v, desired, true).unwrap_or(0))
        .unwrap_or(0);
    let unavailable = ru
        .and_then(|r| r.max_unavailable.as_ref())
        .map(|v| scaled_value(v, desired, true).unwrap_or(1))
        .unwrap_or_else(|| scaled_value(&IntOrString::Int(1), desired, true).unwrap_or(1));
    if surge == 0 && unavailable == 0 {
        return (0, 1);
    }
    (surge, unavailable)
}

#[async_trait::async_trait]
impl Reconciler for DaemonSetController {
    fn name(&self) -> &'static str {
        CONTROLLER_NAME
    }

    async fn sync(&self, key: &str) -> anyhow::Result<Requeue> {
        let (ns, name) = split_key(key);
        let Some(cached) = self.sets.get(ns, name) else {
            self.expectations.delete(key);
            return Ok(Requeue::No);
        };
        let ds = (*cached).clone();
        let pods = self.claim_pods(&ds).await?;
        let (hash, collision) = self.current_revision(&ds).await?;
        let generation = ds.metadata.generation;
        let spec = template_spec(&ds);
        let now = Timestamp::now();
        // Pods by the node they are meant for.
        let mut by_node: HashMap<String, Vec<Arc<Pod>>> = HashMap::new();
        for p in &pods {
            if let Some(n) = p.spec.as_ref().and_then(target_node) {
                by_node.entry(n).or_default().push(p.clone());
            }
        }
        for list in by_node.values_mut() {
            list.sort_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0));
        }
        let nodes = self.nodes.list();
        let node_names: HashSet<String> = nodes.iter().map(|n| n.name_any()).collect();
        let satisfied =
            self.expectations.satisfied(key) && ds.metadata.deletion_timestamp.is_none();
        let mut to_create: Vec<String> = Vec::new();
        let mut to_delete: Vec<Arc<Pod>> = Vec::new();
        let mut status = DaemonSetStatus {
            observed_generation: generation,
            collision_count: (collision > 0).then_some(collision),
            ..Default::default()
        };
        let mut updated_nodes = 0;
        for node in &nodes {
            let n = node.name_any();
            let (run, keep) = node_should_run(&spec, node);
            let here: Vec<Arc<Pod>> = by_node.get(&n).cloned().unwrap_or_default();
            let live: Vec<Arc<Pod>> = here
                .iter()
                .filter(|p| !pods::is_terminating(p))
                .cloned()
                .collect();
            if run {
                status.desired_number_scheduled += 1;
                if !live.is_empty() {
                    status.current_number_scheduled += 1;
                    let first = &live[0];
                    if pods::is_ready(first) {
                        status.number_ready += 1;
                        if pods::is_available(first, min_ready(&ds), now) {
                            status.number_available =
                                Some(status.number_available.unwrap_or(0) + 1);
                        }
                    }
                    if is_updated(first, &hash, generation) {
                        updated_nodes += 1;
                    }
                }
            } else if !live.is_empty() {
                status.number_misscheduled += 1;
            }
            if run {
                let failed: Vec<Arc<Pod>> = live
                    .iter()
                    .filter(|p| pods::phase(p) == "Failed")
                    .cloned()
                    .collect();
                for p in &failed {
                    self.recorder.event(
                        &ds,
                        events::WARNING,
                        "FailedDaemonPod",
                        format!(
                            "Found failed daemon pod {}/{} on node {n}, will try to kill it",
                            ns,
                            p.name_any()
                        ),
                    );
                }
                to_delete.extend(failed.iter().cloned());
                let healthy: Vec<Arc<Pod>> = live
                    .iter()
                    .filter(|p| pods::phase(p) != "Failed")
                    .cloned()
                    .collect();
                if healthy.is_empty()
                    && here
                        .iter()
                        .all(|p| pods::phase(p) == "Failed" || !pods::is_terminating(p))
                {
                    to_create.push(n.clone());
                } else if healthy.len() > 1 {
                    // Keep the oldest (two during a surge update: one old, one new).
                    let surge_pair = healthy.len() == 2
                        && is_updated(&healthy[0], &hash, generation)
                            != is_updated(&healthy[1], &hash, generation);
                    if !surge_pair {
                        to_delete.extend(healthy[1..].iter().cloned());
                    }
                }
            } else if !keep {
                to_delete.extend(live.iter().cloned());
            }
        }
        // Pods for nodes that no longer exist.
        for (n, list) in &by_node {
            if !node_names.contains(n) {
                to_delete.extend(list.iter().filter(|p| !pods::is_terminating(p)).cloned());
            }
        }
        status.updated_number_scheduled = Some(updated_nodes);
        status.number_unavailable =
            Some((status.desired_number_scheduled - status.number_available.unwrap_or(0)).max(0));
        let mut err = None;
        if satisfied {
            to_create.truncate(self.burst);
            to_delete.truncate(self.burst);
            if to_create.is_empty() && to_delete.is_empty() {
                let victims = self.rolling_update(
                    &ds,
                    &nodes,
                    &spec,
                    &by_node,
                    &hash,
                    status.desired_number_scheduled,
                    now,
                    &mut to_create,
                );
                to_delete.extend(victims);
            }
            err = self.delete_pods(&ds, key, &to_delete).await;
            if let Some(e) = self.create_on(&ds, key, &to_create, &hash).await {
                err.get_or_insert(e);
            }
        }
        let old = ds.status.clone().unwrap_or_default();
        if serde_json::to_value(&old).ok() != serde_json::to_value(&status).ok() {
            let mut d = ds.clone();
            d.status = Some(status);
            let api: Api<DaemonSet> = Api::namespaced(self.client.clone(), ns);
            api.replace_status(name, &PostParams::default(), &d)
                .await
                .with_context(|| format!("cannot update status of daemonset {key}"))?;
        }
        // History beyond the limit, keeping revisions pods still use.
        let revisions = history::owned(&self.revisions, ns, &ds.uid().unwrap_or_default());
        let mut live: HashSet<String> = HashSet::new();
        for r in &revisions {
            let h = r
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(HASH_LABEL))
                .cloned()
                .unwrap_or_default();
            if h == hash || pods.iter().any(|p| pod_hash(p) == Some(&h)) {
                live.insert(r.name_any());
            }
        }
        let limit = ds
            .spec
            .as_ref()
            .and_then(|s| s.revision_history_limit)
            .unwrap_or(10);
        history::truncate(&self.client, &revisions, &live, limit).await?;
        if let Some(e) = err {
            return Err(e);
        }
        let next = pods
            .iter()
            .filter_map(|p| pods::until_available(p, min_ready(&ds), now))
            .min();
        Ok(next.map_or(Requeue::No, |d| {
            Requeue::After(d + Duration::from_millis(100))
        }))
    }
}

impl DaemonSetController {
    /// RollingUpdate: which old pods to delete now (and, with maxSurge, where to start new
    /// pods first). Nodes whose pod is unavailable count against maxUnavailable.
    #[allow(clippy::too_many_arguments)]
    fn rolling_update(
        &self,
        ds: &DaemonSet,
        nodes: &[Arc<Node>],
        spec: &k8s_openapi::api::core::v1::PodSpec,
        by_node: &HashMap<String, Vec<Arc<Pod>>>,
        hash: &str,
        desired: i32,
        now: Timestamp,
        to_create: &mut Vec<String>,
    ) -> Vec<Arc<Pod>> {
        let strategy = ds
            .spec
            .as_ref()
            .and_then(|s| s.update_strategy.as_ref())
            .and_then(|u| u.type_.clone())
            .unwrap_or_else(|| "RollingUpdate".into());
        if strategy != "RollingUpdate" {
            return Vec::new();
        }
        let (max_surge, max_unavailable) = fenceposts(ds, desired);
        let generation = ds.metadata.generation;
        let min_ready = min_ready(ds);
        let mut unavailable = 0;
        let mut replace_now: Vec<Arc<Pod>> = Vec::new();
        let mut candidates: Vec<Arc<Pod>> = Vec::new();
        let mut surge_used = 0;
        let mut surge_nodes: Vec<String> = Vec::new();
        let mut names: Vec<&Arc<Node>> = nodes.iter().collect();
        names.sort_by_key(|n| n.name_any());
        for node in names {
            let n = node.name_any();
            if !node_should_run(spec, node).0 {
                continue;
            }
            let live: Vec<Arc<Pod>> = by_node
                .get(&n)
                .map(|v| {
                    v.iter()
                        .filter(|p| !pods::is_terminating(p))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            let new = live
                .iter()
                .find(|p| is_updated(p, hash, generation))
                .cloned();
            let old = live
                .iter()
                .find(|p| !is_updated(p, hash, generation))
                .cloned();
            match (old, new) {
                (None, None) => unavailable += 1,
                (Some(old), Some(new)) => {
                    // Surging: the old pod goes once the new one is available.
                    if pods::is_available(&new, min_ready, now) {
                        replace_now.push(old);
                    } else {
                        unavailable += 1;
                        surge_used += 1;
                    }
                }
                (None, Some(new)) => {
                    if !pods::is_available(&new, min_ready, now) {
                        unavailable += 1;
                    }
                }
                (Some(old), None) => {
                    if !pods::is_available(&old, min_ready, now) {
                        // Not serving anyway: replace it at once.
                        replace_now.push(old);
                        unavailable += 1;
                    } else if max_surge > 0 {
                        surge_nodes.push(n.clone());
                    } else {
                        candidates.push(old);
                    }
                }
            }
        }
        if max_surge > 0 {
            let room = (max_surge - surge_used).max(0) as usize;
            to_create.extend(surge_nodes.into_iter().take(room));
            return replace_now;
        }
        let room = (max_unavailable - unavailable).max(0) as usize;
        replace_now.extend(candidates.into_iter().take(room));
        replace_now
    }
}

impl Controller for DaemonSetController {
    fn name(&self) -> &'static str {
        "daemonset"
    }

    fn run(self: Arc<Self>) -> Vec<JoinHandle<()>> {
        let (q, w) = (self.queue.clone(), self.workers);
        runtime::run_workers(self, q, w)
    }

    fn shut_down(&self) {
        self.queue.shut_down();
    }
}
