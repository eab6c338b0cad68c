//! One profile's framework: the plugins enabled at each extension point, in order, with score
//! weights, and the functions that run an extension point the way upstream's
//! `frameworkImpl` does (first rejecting Filter wins, skipped plugins are not run, scores are
//! normalised then weighted, ...).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use super::super::api::ApiClient;
use super::super::nodeinfo::NodeInfo;
use super::super::parallel;
use super::super::podinfo::PodInfo;
use super::diagnosis::go_list;
use super::events::ClusterEvent;
use super::waiting::{self, WaitingPods};
use super::{
    points, Code, Ctx, CycleState, NodeToStatus, Plugin, PostFilterResult, PreFilterResult, Status,
    MAX_NODE_SCORE,
};

/// Plugins per extension point, already resolved from the configuration.
#[derive(Clone, Default)]
pub struct PluginLists {
    pub pre_enqueue: Vec<Arc<dyn Plugin>>,
    pub pre_filter: Vec<Arc<dyn Plugin>>,
    pub filter: Vec<Arc<dyn Plugin>>,
    pub post_filter: Vec<Arc<dyn Plugin>>,
    pub pre_score: Vec<Arc<dyn Plugin>>,
    pub score: Vec<(Arc<dyn Plugin>, i64)>,
    pub reserve: Vec<Arc<dyn Plugin>>,
    pub permit: Vec<Arc<dyn Plugin>>,
    pub pre_bind: Vec<Arc<dyn Plugin>>,
    pub bind: Vec<Arc<dyn Plugin>>,
}

pub struct Framework {
    pub profile_name: String,
    /// Per-profile override of the global `percentageOfNodesToScore`.
    pub percentage_of_nodes_to_score: Option<i32>,
    plugins: PluginLists,
    /// Registered events with the plugin that registered them.
    events: Vec<(ClusterEvent, &'static str)>,
    /// Pods held at Permit; plugins and tests Allow or Reject them through it.
    pub waiting: Arc<WaitingPods>,
    /// Threads Filter and Score may use (upstream `parallelism`, default 16; capped at the
    /// CPUs there are).
    pub parallelism: usize,
}

impl Framework {
    pub fn new(
        profile_name: &str,
        percentage_of_nodes_to_score: Option<i32>,
        plugins: PluginLists,
    ) -> Framework {
        let mut seen = BTreeSet::new();
        let mut events = Vec::new();
        let all = plugins
            .pre_enqueue
            .iter()
            .chain(&plugins.pre_filter)
            .chain(&plugins.filter)
            .chain(&plugins.post_filter)
            .chain(&plugins.pre_score)
            .chain(plugins.score.iter().map(|(p, _)| p))
            .chain(&plugins.reserve)
            .chain(&plugins.permit);
        for p in all {
            if seen.insert(p.name()) {
                events.extend(p.events_to_register().into_iter().map(|e| (e, p.name())));
            }
        }
        Framework {
            profile_name: profile_name.to_string(),
            percentage_of_nodes_to_score,
            plugins,
            events,
            waiting: Arc::new(WaitingPods::default()),
            parallelism: 16,
        }
    }

    pub fn plugins(&self) -> &PluginLists {
        &self.plugins
    }

    pub fn has_filter_plugins(&self) -> bool {
        !self.plugins.filter.is_empty()
    }

    pub fn has_score_plugins(&self) -> bool {
        !self.plugins.score.is_empty()
    }

    pub fn has_post_filter_plugins(&self) -> bool {
        !self.plugins.post_filter.is_empty()
    }

    /// Whether `event` may help a pod that `plugins` rejected.
    pub fn event_may_help(&self, plugins: &BTreeSet<&'static str>, event: &ClusterEvent) -> bool {
        self.events
            .iter()
            .any(|(registered, plugin)| plugins.contains(plugin) && registered.matches(event))
    }

    /// The plugins that registered for `event`: a pod rejected by one of them may now fit.
    pub fn plugins_interested_in(&self, event: &ClusterEvent) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = self
            .events
            .iter()
            .filter(|(registered, _)| registered.matches(event))
            .map(|(_, plugin)| *plugin)
            .collect();
        out.dedup();
        out
    }

    /// The first PreEnqueue plugin that keeps the pod out of the active queue.
    pub fn run_pre_enqueue(&self, pod: &PodInfo) -> Status {
        for p in &self.plugins.pre_enqueue {
            let s = p.pre_enqueue(pod);
            if !s.is_success() {
                return s.with_plugin(p.name());
            }
        }
        Status::success()
    }

    /// Runs every PreFilter plugin. Returns the merged node restriction, the status, and the
    /// plugins that restricted the nodes.
    pub fn run_pre_filter(
        &self,
        ctx: &Ctx,
        state: &mut CycleState,
        pod: &PodInfo,
    ) -> (Option<PreFilterResult>, Status, Vec<&'static str>) {
        let mut result: Option<PreFilterResult> = None;
        let mut with_nodes = Vec::new();
        let mut skipped = BTreeSet::new();
        let mut returned = Status::success();
        for p in &self.plugins.pre_filter {
            let (r, s) = p.pre_filter(ctx, state, pod);
            if s.is_skip() {
                skipped.insert(p.name());
                continue;
            }
            if !s.is_success() {
                let s = s.with_plugin(p.name());
                match s.code() {
                    // Preemption cannot help: no need to run the others.
                    Code::UnschedulableAndUnresolvable => return (None, s, Vec::new()),
                    // Preemption may still run this cycle, so the others' state is needed.
                    Code::Unschedulable => {
                        returned = s;
                        continue;
                    }
                    _ => {
                        let name = p.name();
                        return (
                            None,
                            s.into_error(&format!("running PreFilter plugin {name:?}")),
                            Vec::new(),
                        );
                    }
                }
            }
            if let Some(r) = r.filter(|r| !r.all_nodes()) {
                with_nodes.push(p.name());
                result = Some(match result {
                    Some(prev) => prev.merge(r),
                    None => r,
                });
                if result
                    .as_ref()
                    .and_then(|r| r.node_names.as_ref())
                    .is_some_and(|n| n.is_empty())
                {
                    let msg = if with_nodes.len() == 1 {
                        format!("node(s) didn't satisfy plugin {}", with_nodes[0])
                    } else {
                        format!(
                            "node(s) didn't satisfy plugin(s) {} simultaneously",
                            go_list(&with_nodes)
                        )
                    };
                    return (result, Status::unresolvable(msg), with_nodes);
                }
            }
        }
        state.skip_filter_mask = self
            .plugins
            .filter
            .iter()
            .enumerate()
            .filter(|(i, p)| *i < 128 && skipped.contains(p.name()))
            .fold(0, |m, (i, _)| m | (1u128 << i));
        state.skip_filter = skipped;
        (result, returned, with_nodes)
    }

    pub fn run_pre_filter_add_pod(
        &self,
        ctx: &Ctx,
        state: &mut CycleState,
        pod: &PodInfo,
        added: &Arc<PodInfo>,
        node: &NodeInfo,
    ) -> Status {
        for p in &self.plugins.pre_filter {
            if p.points() & points::PRE_FILTER_EXTENSIONS == 0
                || state.skip_filter.contains(p.name())
            {
                continue;
            }
            let s = p.add_pod(ctx, state, pod, added, node);
            if !s.is_success() {
                return s
                    .with_plugin(p.name())
                    .into_error("running AddPod on PreFilter plugin");
            }
        }
        Status::success()
    }

    pub fn run_pre_filter_remove_pod(
        &self,
        ctx: &Ctx,
        state: &mut CycleState,
        pod: &PodInfo,
        removed: &Arc<PodInfo>,
        node: &NodeInfo,
    ) -> Status {
        for p in &self.plugins.pre_filter {
            if p.points() & points::PRE_FILTER_EXTENSIONS == 0
                || state.skip_filter.contains(p.name())
            {
                continue;
            }
            let s = p.remove_pod(ctx, state, pod, removed, node);
            if !s.is_success() {
                return s
                    .with_plugin(p.name())
                    .into_error("running RemovePod on PreFilter plugin");
            }
        }
        Status::success()
    }

    /// The first rejecting Filter plugin decides the node's status.
    pub fn run_filter(
        &self,
        ctx: &Ctx,
        state: &CycleState,
        pod: &PodInfo,
        node: &NodeInfo,
    ) -> Status {
        for (i, p) in self.plugins.filter.iter().enumerate() {
            let skipped = if i < 128 {
                state.skip_filter_mask & (1u128 << i) != 0
            } else {
                state.skip_filter.contains(p.name())
            };
            if skipped {
                continue;
            }
            let s = p.filter(ctx, state, pod, node);
            if !s.is_success() {
                let s = if s.is_rejected() {
                    s
                } else {
                    let name = p.name();
                    s.into_error(&format!("running {name:?} filter plugin"))
                };
                return s.with_plugin(p.name());
            }
        }
        Status::success()
    }

    /// Filters as if the higher-or-equal-priority pods nominated to this node were already
    /// running there, then (if they changed anything) also without them: the pod must fit both
    /// ways (upstream `RunFilterPluginsWithNominatedPods`).
    pub fn run_filter_with_nominated_pods(
        &self,
        ctx: &Ctx,
        state: &CycleState,
        pod: &PodInfo,
        node: &NodeInfo,
    ) -> Status {
        if ctx.nominator.is_empty() {
            return self.run_filter(ctx, state, pod, node);
        }
        let nominated = ctx.nominator.pods_for_node(node.name());
        let relevant: Vec<&Arc<PodInfo>> = nominated
            .iter()
            .filter(|n| n.priority >= pod.priority && n.key != pod.key)
            .collect();
        if relevant.is_empty() {
            return self.run_filter(ctx, state, pod, node);
        }
        let mut node_with = node.clone();
        let mut state_with = state.clone();
        for n in relevant {
            node_with.add_pod(n.clone());
            let s = self.run_pre_filter_add_pod(ctx, &mut state_with, pod, n, &node_with);
            if !s.is_success() {
                return s;
            }
        }
        let s = self.run_filter(ctx, &state_with, pod, &node_with);
        if !s.is_success() {
            return s;
        }
        self.run_filter(ctx, state, pod, node)
    }

    /// Runs PostFilter plugins until one succeeds (preemption).
    pub fn run_post_filter(
        &self,
        ctx: &Ctx,
        state: &CycleState,
        pod: &PodInfo,
        statuses: &NodeToStatus,
    ) -> (Option<PostFilterResult>, Status) {
        let mut result = None;
        let mut reasons = Vec::new();
        let mut rejector = "";
        for p in &self.plugins.post_filter {
            let (r, s) = p.post_filter(self, ctx, state, pod, statuses);
            if s.is_success() {
                return (r, s);
            }
            if s.code() == Code::UnschedulableAndUnresolvable {
                return (r, s.with_plugin(p.name()));
            }
            if !s.is_rejected() {
                let name = p.name();
                return (
                    None,
                    s.into_error(&format!("running PostFilter plugin {name:?}")),
                );
            }
            if r.is_some() {
                result = r;
            }
            reasons.extend(s.reasons().iter().cloned());
            if rejector.is_empty() {
                rejector = p.name();
            }
        }
        (
            result,
            Status::with_reasons(Code::Unschedulable, reasons).with_plugin(rejector),
        )
    }

    pub fn run_pre_score(
        &self,
        ctx: &Ctx,
        state: &mut CycleState,
        pod: &PodInfo,
        nodes: &[usize],
    ) -> Status {
        let mut skipped = BTreeSet::new();
        for p in &self.plugins.pre_score {
            let s = p.pre_score(ctx, state, pod, nodes);
            if s.is_skip() {
                skipped.insert(p.name());
                continue;
            }
            if !s.is_success() {
                let name = p.name();
                return s.into_error(&format!("running PreScore plugin {name:?}"));
            }
        }
        state.skip_score = skipped;
        Status::success()
    }

    /// Weighted total score of each node in `nodes` (same order).
    pub fn run_score(
        &self,
        ctx: &Ctx,
        state: &CycleState,
        pod: &PodInfo,
        nodes: &[usize],
    ) -> Result<Vec<i64>, Status> {
        let mut totals = vec![0i64; nodes.len()];
        let active: Vec<&(Arc<dyn Plugin>, i64)> = self
            .plugins
            .score
            .iter()
            .filter(|(p, _)| !state.skip_score.contains(p.name()))
            .collect();
        // Raw scores, plugin-major: every plugin scores a chunk of nodes on one thread.
        let mut raw = vec![0i64; active.len() * nodes.len()];
        let workers = parallel::workers_for(nodes.len(), self.parallelism);
        let chunks = parallel::for_chunks(nodes.len(), workers, &|| false, &|r| {
            let mut out = Vec::with_capacity(active.len() * r.len());
            for (p, _) in &active {
                for n in &nodes[r.clone()] {
                    out.push(p.score(ctx, state, pod, ctx.cache.node(*n)).map_err(|s| {
                        let name = p.name();
                        s.into_error(&format!("running Score plugin {name:?}"))
                    }));
                }
            }
            (r, out)
        });
        for (_, (r, out)) in chunks {
            let mut out = out.into_iter();
            for k in 0..active.len() {
                for i in r.clone() {
                    raw[k * nodes.len() + i] = out.next().unwrap_or(Ok(0))?;
                }
            }
        }
        for (k, (p, weight)) in active.into_iter().enumerate() {
            let scores = &mut raw[k * nodes.len()..(k + 1) * nodes.len()];
            let s = p.normalize_score(ctx, state, pod, nodes, scores);
            if !s.is_success() {
                let name = p.name();
                return Err(s.into_error(&format!("running Normalize on Score plugin {name:?}")));
            }
            for (i, s) in scores.iter().enumerate() {
                if !(0..=MAX_NODE_SCORE).contains(s) {
                    let name = p.name();
                    return Err(Status::error(format!(
                        "plugin {name:?} returns an invalid score {s}, it should in the range of [0, {MAX_NODE_SCORE}] after normalizing"
                    )));
                }
                totals[i] += s * weight;
            }
        }
        Ok(totals)
    }

    pub fn run_reserve(
        &self,
        ctx: &Ctx,
        state: &mut CycleState,
        pod: &PodInfo,
        node: &str,
    ) -> Status {
        for p in &self.plugins.reserve {
            let s = p.reserve(ctx, state, pod, node);
            if !s.is_success() {
                if s.is_rejected() {
                    return s.with_plugin(p.name());
                }
                let name = p.name();
                return s.into_error(&format!("running Reserve plugin {name:?}"));
            }
        }
        Status::success()
    }

    pub fn run_unreserve(&self, ctx: &Ctx, state: &mut CycleState, pod: &PodInfo, node: &str) {
        for p in self.plugins.reserve.iter().rev() {
            p.unreserve(ctx, state, pod, node);
        }
    }

    /// Permit plugins (upstream `RunPermitPlugins`): the first rejection wins; plugins asking
    /// to Wait are collected with their timeouts, and the status is then `Code::Wait`. The
    /// caller registers the pod in [`Framework::waiting`] before its binding cycle waits.
    pub fn run_permit(
        &self,
        ctx: &Ctx,
        state: &CycleState,
        pod: &PodInfo,
        node: &str,
    ) -> (Status, Vec<(&'static str, Duration)>) {
        let mut waits = Vec::new();
        for p in &self.plugins.permit {
            let (s, timeout) = p.permit(ctx, state, pod, node);
            if s.is_success() {
                continue;
            }
            let name = p.name();
            if s.is_wait() {
                waits.push((name, timeout.min(waiting::MAX_PERMIT_TIMEOUT)));
                continue;
            }
            if s.is_rejected() {
                return (s.with_plugin(name), Vec::new());
            }
            return (
                s.into_error(&format!("running Permit plugin {name:?}")),
                Vec::new(),
            );
        }
        if waits.is_empty() {
            (Status::success(), waits)
        } else {
            (Status::code_only(Code::Wait), waits)
        }
    }

    /// Holds the binding cycle until every plugin that asked the pod to wait allowed it;
    /// success at once for a pod that is not waiting.
    pub async fn wait_on_permit(&self, pod: &PodInfo) -> Status {
        self.waiting.wait_on_permit(&pod.uid).await
    }

    pub async fn run_pre_bind(&self, api: &ApiClient, pod: &PodInfo, node: &str) -> Status {
        for p in &self.plugins.pre_bind {
            let s = p.pre_bind(api, pod, node).await;
            if !s.is_success() {
                let name = p.name();
                return s.into_error(&format!("running PreBind plugin {name:?}"));
            }
        }
        Status::success()
    }

    pub async fn run_bind(&self, api: &ApiClient, pod: &PodInfo, node: &str) -> Status {
        for p in &self.plugins.bind {
            let s = p.bind(api, pod, node).await;
            if s.is_skip() {
                continue;
            }
            if !s.is_success() {
                let name = p.name();
                return s.into_error(&format!("running Bind plugin {name:?}"));
            }
            return s;
        }
        Status::error("no bind plugin bound the pod")
    }
}
