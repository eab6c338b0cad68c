//! One scheduling decision (upstream `schedulePod`): PreFilter, the nominated node first, then
//! Filter over nodes starting where the last cycle stopped until enough feasible nodes are
//! found (`percentageOfNodesToScore`), then PreScore/Score and a random pick among the best.
//! Pure with respect to the API: it reads the cache and returns a decision.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use rand::Rng;

use super::framework::diagnosis::go_list;
use super::framework::{Code, Ctx, CycleState, Diagnosis, FitError, Framework, Status};
use super::parallel;
use super::podinfo::PodInfo;

/// Below this many nodes every node is evaluated.
pub const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
/// The adaptive percentage never drops below this.
pub const MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND: i64 = 5;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleResult {
    pub node: String,
    pub evaluated_nodes: usize,
    pub feasible_nodes: usize,
}

#[derive(Debug)]
pub enum Failure {
    /// No node fits: the diagnosis says why.
    Fit(Box<FitError>),
    /// Something went wrong (a plugin error, no nodes at all).
    Error(Status),
}

pub const NO_NODES: &str = "no nodes available to schedule pods";

/// How many feasible nodes to look for among `all` (upstream `numFeasibleNodesToFind`): all of
/// them in small clusters, else `percentage`% (0 = adaptive: 50% minus 1% per 125 nodes, at least
/// 5%), and at least 100.
pub fn num_feasible_nodes_to_find(percentage: i32, all: usize) -> usize {
    if all < MIN_FEASIBLE_NODES_TO_FIND {
        return all;
    }
    let mut pct = percentage as i64;
    if pct == 0 {
        pct = (50 - all as i64 / 125).max(MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND);
    }
    let n = (all as i64 * pct / 100) as usize;
    n.max(MIN_FEASIBLE_NODES_TO_FIND)
}

/// Filters `nodes` starting at `start`, stopping after `num_to_find` feasible ones; statuses of
/// rejected nodes go into the diagnosis.
#[allow(clippy::too_many_arguments)]
fn pass_filters(
    fwk: &Framework,
    ctx: &Ctx,
    state: &CycleState,
    pod: &PodInfo,
    diagnosis: &mut Diagnosis,
    nodes: &[usize],
    start: usize,
    percentage: i32,
) -> Result<Vec<usize>, Status> {
    let n = nodes.len();
    if n == 0 {
        return Ok(Vec::new());
    }
    let num_to_find = if fwk.has_score_plugins() {
        num_feasible_nodes_to_find(percentage, n)
    } else {
        // Without scoring any feasible node is as good as another.
        1
    };
    if !fwk.has_filter_plugins() {
        return Ok((0..num_to_find.min(n))
            .map(|i| nodes[(start + i) % n])
            .collect());
    }
    // Workers stop taking nodes once enough fit (or one errs); the chunks they already took
    // are finished, and the merge below keeps the first `num_to_find` fits in node order.
    let found = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let workers = parallel::workers_for(n, fwk.parallelism);
    let chunks = parallel::for_chunks(
        n,
        workers,
        &|| found.load(Ordering::Relaxed) >= num_to_find || failed.load(Ordering::Relaxed),
        &|r| {
            let mut out = Vec::with_capacity(r.len());
            for i in r {
                if found.load(Ordering::Relaxed) >= num_to_find && workers == 1 {
                    break;
                }
                let idx = nodes[(start + i) % n];
                let s = fwk.run_filter_with_nominated_pods(ctx, state, pod, ctx.cache.node(idx));
                if s.is_success() {
                    found.fetch_add(1, Ordering::Relaxed);
                } else if s.code() == Code::Error {
                    failed.store(true, Ordering::Relaxed);
                }
                out.push((idx, s));
            }
            out
        },
    );
    let mut feasible = Vec::with_capacity(num_to_find.min(n));
    for (idx, s) in chunks.into_iter().flat_map(|(_, c)| c) {
        if s.is_success() {
            if feasible.len() < num_to_find {
                feasible.push(idx);
            }
        } else if s.code() == Code::Error {
            return Err(s);
        } else {
            diagnosis.add_plugin_status(&s);
            diagnosis.node_to_status.set(idx, s);
        }
    }
    Ok(feasible)
}

/// Nodes the pod fits on, and why the others were rejected.
fn find_nodes_that_fit(
    fwk: &Framework,
    ctx: &Ctx,
    state: &mut CycleState,
    pod: &PodInfo,
    next_start: &mut usize,
    percentage: i32,
) -> Result<(Vec<usize>, Diagnosis), Status> {
    let mut diagnosis = Diagnosis::default();
    let (restriction, s, restricting) = fwk.run_pre_filter(ctx, state, pod);
    if !s.is_success() {
        if !s.is_rejected() {
            return Err(s);
        }
        diagnosis.pre_filter_msg = s.message();
        diagnosis.add_plugin_status(&s);
        diagnosis.node_to_status.set_absent(s);
        return Ok((Vec::new(), diagnosis));
    }
    // A node preemption made room on is probably the only fit: try it first.
    let nominated = pod.nominated_node_name();
    if !nominated.is_empty() {
        if let Some(idx) = ctx.cache.node_index(nominated) {
            let feasible =
                pass_filters(fwk, ctx, state, pod, &mut diagnosis, &[idx], 0, percentage)?;
            if !feasible.is_empty() {
                return Ok((feasible, diagnosis));
            }
        }
    }
    let all = ctx.cache.order();
    let nodes: Cow<[usize]> = match restriction.and_then(|r| r.node_names) {
        None => Cow::Borrowed(all),
        Some(names) => {
            diagnosis
                .node_to_status
                .set_absent(Status::unresolvable(format!(
                    "node(s) didn't satisfy plugin(s) {}",
                    go_list(&restricting)
                )));
            Cow::Owned(
                names
                    .iter()
                    .filter_map(|n| ctx.cache.node_index(n))
                    .collect(),
            )
        }
    };
    let feasible = pass_filters(
        fwk,
        ctx,
        state,
        pod,
        &mut diagnosis,
        &nodes,
        *next_start,
        percentage,
    );
    let processed =
        feasible.as_ref().map(|f| f.len()).unwrap_or(0) + diagnosis.node_to_status.len();
    if !all.is_empty() {
        *next_start = (*next_start + processed) % all.len();
    }
    Ok((feasible?, diagnosis))
}

/// The highest-scoring node; ties are broken uniformly at random (reservoir sampling).
pub fn select_host(nodes: &[usize], scores: &[i64], rng: &mut impl Rng) -> Option<usize> {
    let mut best: Option<(usize, i64)> = None;
    let mut ties = 0u32;
    for (i, &s) in scores.iter().enumerate() {
        match best {
            Some((_, b)) if s < b => {}
            Some((_, b)) if s == b => {
                ties += 1;
                if rng.random_range(0..ties) == 0 {
                    best = Some((nodes[i], s));
                }
            }
            _ => {
                best = Some((nodes[i], s));
                ties = 1;
            }
        }
    }
    best.map(|(n, _)| n)
}

/// Decides where the pod goes, or why it cannot go anywhere.
pub fn schedule_pod(
    fwk: &Framework,
    ctx: &Ctx,
    state: &mut CycleState,
    pod: &PodInfo,
    next_start: &mut usize,
    global_percentage: i32,
    rng: &mut impl Rng,
) -> Result<ScheduleResult, Failure> {
    let num_nodes = ctx.cache.num_nodes();
    if num_nodes == 0 {
        return Err(Failure::Error(Status::error(NO_NODES)));
    }
    let percentage = fwk
        .percentage_of_nodes_to_score
        .unwrap_or(global_percentage);
    let (feasible, diagnosis) = find_nodes_that_fit(fwk, ctx, state, pod, next_start, percentage)
        .map_err(Failure::Error)?;
    if feasible.is_empty() {
        return Err(Failure::Fit(Box::new(FitError {
            num_all_nodes: num_nodes,
            diagnosis,
        })));
    }
    let evaluated = feasible.len() + diagnosis.node_to_status.len();
    if feasible.len() == 1 {
        return Ok(ScheduleResult {
            node: ctx.cache.node(feasible[0]).name().to_string(),
            evaluated_nodes: evaluated,
            feasible_nodes: 1,
        });
    }
    let scores = if fwk.has_score_plugins() {
        let s = fwk.run_pre_score(ctx, state, pod, &feasible);
        if !s.is_success() {
            return Err(Failure::Error(s));
        }
        fwk.run_score(ctx, state, pod, &feasible)
            .map_err(Failure::Error)?
    } else {
        vec![1; feasible.len()]
    };
    let host = select_host(&feasible, &scores, rng)
        .ok_or_else(|| Failure::Error(Status::error("empty priorityList")))?;
    Ok(ScheduleResult {
        node: ctx.cache.node(host).name().to_string(),
        evaluated_nodes: evaluated,
        feasible_nodes: feasible.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::config::ProfileConfig;
    use crate::scheduler::plugins::build_framework;
    use crate::scheduler::testutil::{ctx_for, node, pod};
    use serde_json::json;
    use std::sync::Arc;

    #[test]
    fn feasible_node_counts() {
        assert_eq!(num_feasible_nodes_to_find(0, 50), 50);
        assert_eq!(num_feasible_nodes_to_find(0, 1000), 420);
        assert_eq!(num_feasible_nodes_to_find(0, 5000), 500);
        assert_eq!(num_feasible_nodes_to_find(0, 6000), 300);
        assert_eq!(num_feasible_nodes_to_find(10, 500), 100);
        assert_eq!(num_feasible_nodes_to_find(100, 500), 500);
    }

    #[test]
    fn ties_are_broken_among_the_best_only() {
        let mut rng = rand::rng();
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            seen.insert(select_host(&[10, 11, 12, 13], &[5, 9, 9, 1], &mut rng).unwrap());
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), [11, 12]);
        assert_eq!(select_host(&[], &[], &mut rng), None);
    }

    fn run(cache: &crate::scheduler::cache::Cache, p: &PodInfo) -> Result<ScheduleResult, Failure> {
        let fwk = build_framework(&ProfileConfig::default()).unwrap();
        let nom = Default::default();
        let ctx = Ctx {
            cache,
            nominator: &nom,
        };
        let mut start = 0;
        schedule_pod(
            &fwk,
            &ctx,
            &mut CycleState::new(),
            p,
            &mut start,
            0,
            &mut rand::rng(),
        )
    }

    fn message(f: Failure) -> String {
        match f {
            Failure::Fit(fit) => fit.message(),
            other => panic!("expected a fit error, got {other:?}"),
        }
    }

    #[test]
    fn picks_the_only_fitting_node() {
        let (cache, _) = ctx_for(vec![
            node(
                "small",
                json!({"status": {"allocatable": {"cpu": "1", "memory": "1Gi", "pods": "10"}}}),
            ),
            node(
                "big",
                json!({"status": {"allocatable": {"cpu": "8", "memory": "8Gi", "pods": "10"}}}),
            ),
            node(
                "tainted",
                json!({"spec": {"taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}]},
                "status": {"allocatable": {"cpu": "8", "memory": "8Gi", "pods": "10"}}}),
            ),
        ]);
        let p = pod(
            "p",
            json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": "2"}}}]}),
        );
        let r = run(&cache, &p).unwrap();
        assert_eq!(
            (r.node.as_str(), r.feasible_nodes, r.evaluated_nodes),
            ("big", 1, 3)
        );
    }

    #[test]
    fn scores_pick_the_emptier_node() {
        let (mut cache, _) = ctx_for(vec![node("a", json!({})), node("b", json!({}))]);
        cache
            .assume_pod(
                Arc::new(pod(
                    "x",
                    json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": "3"}}}]}),
                )),
                "a",
            )
            .unwrap();
        let p = pod(
            "p",
            json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": "500m"}}}]}),
        );
        for _ in 0..10 {
            assert_eq!(run(&cache, &p).unwrap().node, "b");
        }
    }

    #[test]
    fn unschedulable_message_is_upstreams() {
        let (cache, _) = ctx_for(vec![
            node("n0", json!({})),
            node(
                "n1",
                json!({"spec": {"taints": [{"key": "key", "value": "value", "effect": "NoSchedule"}]}}),
            ),
            node(
                "n2",
                json!({"spec": {"taints": [{"key": "key", "value": "value", "effect": "NoSchedule"}]}}),
            ),
        ]);
        let p = pod(
            "p",
            json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": "100"}}}]}),
        );
        assert_eq!(
            message(run(&cache, &p).unwrap_err()),
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {key: value}."
        );
    }

    #[test]
    fn prefilter_rejection_and_restriction_messages() {
        let (cache, _) = ctx_for(vec![node("n0", json!({})), node("n1", json!({}))]);
        let p = pod(
            "p",
            json!({"containers": [], "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "missing"}}]}),
        );
        assert_eq!(
            message(run(&cache, &p).unwrap_err()),
            "0/2 nodes are available: persistentvolumeclaim \"missing\" not found."
        );
        let pinned = pod(
            "q",
            json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": "100"}}}],
                   "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                       {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}}}}),
        );
        assert_eq!(
            message(run(&cache, &pinned).unwrap_err()),
            "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) didn't satisfy plugin(s) [NodeAffinity]."
        );
    }

    #[test]
    fn no_nodes_is_an_error() {
        let (cache, _) = ctx_for(vec![]);
        match run(&cache, &pod("p", json!({"containers": []}))) {
            Err(Failure::Error(s)) => assert_eq!(s.message(), NO_NODES),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn start_index_rotates_over_large_clusters() {
        let nodes: Vec<_> = (0..300)
            .map(|i| node(&format!("n{i:03}"), json!({})))
            .collect();
        let (cache, _) = ctx_for(nodes);
        let fwk = build_framework(&ProfileConfig::default()).unwrap();
        let nom = Default::default();
        let ctx = Ctx {
            cache: &cache,
            nominator: &nom,
        };
        let mut start = 0;
        let p = pod("p", json!({"containers": []}));
        let r = schedule_pod(
            &fwk,
            &ctx,
            &mut CycleState::new(),
            &p,
            &mut start,
            0,
            &mut rand::rng(),
        )
        .unwrap();
        // 300 nodes → 50 - 2 = 48% → 144 evaluated, and the next cycle starts after them.
        assert_eq!(
            (r.evaluated_nodes, r.feasible_nodes, start),
            (144, 144, 144)
        );
    }

    fn big_cluster(n: usize) -> crate::scheduler::cache::Cache {
        // Every third node is tainted, so filtering both accepts and rejects.
        let nodes: Vec<_> = (0..n)
            .map(|i| {
                let extra = if i % 3 == 0 {
                    json!({"spec": {"taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}]}})
                } else {
                    json!({})
                };
                node(&format!("n{i:04}"), extra)
            })
            .collect();
        ctx_for(nodes).0
    }

    fn schedule_with(
        cache: &crate::scheduler::cache::Cache,
        parallelism: usize,
        percentage: i32,
        start: &mut usize,
    ) -> ScheduleResult {
        let mut fwk = build_framework(&ProfileConfig::default()).unwrap();
        fwk.parallelism = parallelism;
        let nom = Default::default();
        let ctx = Ctx {
            cache,
            nominator: &nom,
        };
        schedule_pod(
            &fwk,
            &ctx,
            &mut CycleState::new(),
            &pod("p", json!({"containers": []})),
            start,
            percentage,
            &mut rand::rng(),
        )
        .unwrap()
    }

    #[test]
    fn parallel_filtering_decides_like_a_sequential_pass() {
        let cache = big_cluster(1000);
        let (mut seq_start, mut par_start) = (0, 0);
        for _ in 0..5 {
            let seq = schedule_with(&cache, 1, 0, &mut seq_start);
            let par = schedule_with(&cache, 16, 0, &mut par_start);
            assert_eq!((seq.feasible_nodes, par.feasible_nodes), (420, 420));
            // 420 fits among 630 nodes (each rejection is one of three), give or take the
            // start's position in the pattern.
            assert!((629..=631).contains(&seq.evaluated_nodes));
            // Workers finish the chunks they took, so a few more rejections may be recorded
            // (as upstream's parallel filter does); the next cycle starts after all of them.
            let extra = par.evaluated_nodes.saturating_sub(631);
            assert!(extra < 2 * 32, "{extra} extra nodes evaluated");
        }
        let none_fit = pod(
            "big",
            json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": "100"}}}]}),
        );
        let fwk = build_framework(&ProfileConfig::default()).unwrap();
        let nom = Default::default();
        let ctx = Ctx {
            cache: &cache,
            nominator: &nom,
        };
        let mut start = 0;
        let err = schedule_pod(
            &fwk,
            &ctx,
            &mut CycleState::new(),
            &none_fit,
            &mut start,
            0,
            &mut rand::rng(),
        )
        .unwrap_err();
        assert_eq!(
            message(err),
            "0/1000 nodes are available: 334 node(s) had untolerated taint {k: v}, 666 Insufficient cpu."
        );
    }

    /// B-SCHED-017: only a share of the feasible nodes is evaluated and scored, and the share
    /// is configurable up to all of them.
    #[test]
    fn percentage_of_nodes_to_score_bounds_the_nodes_evaluated() {
        let cache = big_cluster(1000);
        let mut start = 0;
        let adaptive = schedule_with(&cache, 16, 0, &mut start);
        assert_eq!(adaptive.feasible_nodes, 420, "50% - 1000/125 = 42%");
        assert!(adaptive.evaluated_nodes < 1000);
        let all = schedule_with(&cache, 16, 100, &mut start);
        assert_eq!((all.feasible_nodes, all.evaluated_nodes), (666, 1000));
        let tenth = schedule_with(&cache, 16, 10, &mut start);
        assert_eq!(tenth.feasible_nodes, 100, "at least 100 nodes");
    }
}
