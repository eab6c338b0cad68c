//! InterPodAffinity: required pod affinity and anti-affinity (the pod's own terms and the
//! anti-affinity of pods already running) as a filter, preferred terms (both directions, plus
//! existing pods' required affinity at `hardPodAffinityWeight`) as a score.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use crate::scheduler::framework::events::{
    EventResource, ADD, DELETE, UPDATE_NODE_LABEL, UPDATE_POD_LABEL,
};
use crate::scheduler::framework::{
    points, ClusterEvent, Ctx, CycleState, Plugin, PreFilterResult, Status, MAX_NODE_SCORE,
};
use crate::scheduler::nodeinfo::NodeInfo;
use crate::scheduler::podinfo::{AffinityTerm, PodInfo, WeightedAffinityTerm};
use crate::scheduler::selector::Labels;

pub const AFFINITY_NOT_MATCH: &str = "node(s) didn't match pod affinity rules";
pub const ANTI_AFFINITY_NOT_MATCH: &str = "node(s) didn't match pod anti-affinity rules";
pub const EXISTING_ANTI_AFFINITY_NOT_MATCH: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";

type TopologyCounts = HashMap<(String, String), i64>;

fn bump(m: &mut TopologyCounts, node: &NodeInfo, key: &str, delta: i64) {
    if let Some(v) = node.label(key) {
        let k = (key.to_string(), v.to_string());
        let e = m.entry(k.clone()).or_insert(0);
        *e += delta;
        if *e == 0 {
            m.remove(&k);
        }
    }
}

/// Every term matches the pod (and there is at least one term).
fn matches_all(terms: &[AffinityTerm], ns: &str, labels: Option<&Labels>) -> bool {
    !terms.is_empty() && terms.iter().all(|t| t.matches(ns, labels, None))
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Args {
    #[serde(default = "one")]
    hard_pod_affinity_weight: i64,
    #[serde(default)]
    ignore_preferred_terms_of_existing_pods: bool,
}

fn one() -> i64 {
    1
}

pub struct InterPodAffinity {
    hard_weight: i64,
    ignore_existing_preferred: bool,
}

#[derive(Clone)]
struct FilterState {
    affinity_terms: Vec<AffinityTerm>,
    anti_affinity_terms: Vec<AffinityTerm>,
    ns_labels: Option<Labels>,
    existing_anti: TopologyCounts,
    affinity_counts: TopologyCounts,
    anti_counts: TopologyCounts,
}

impl FilterState {
    fn update(&mut self, pod: &PodInfo, other: &PodInfo, node: &NodeInfo, delta: i64) {
        for t in &other.required_anti_affinity_terms {
            if t.matches_pod(pod, self.ns_labels.as_ref()) {
                bump(&mut self.existing_anti, node, &t.topology_key, delta);
            }
        }
        if matches_all(&self.affinity_terms, &other.namespace, other.labels()) {
            for t in &self.affinity_terms {
                bump(&mut self.affinity_counts, node, &t.topology_key, delta);
            }
        }
        for t in &self.anti_affinity_terms {
            if t.matches(&other.namespace, other.labels(), None) {
                bump(&mut self.anti_counts, node, &t.topology_key, delta);
            }
        }
    }
}

#[derive(Clone)]
struct ScoreState {
    /// topology key → value → score.
    scores: HashMap<String, HashMap<String, i64>>,
}

const FILTER_KEY: &str = "PreFilterInterPodAffinity";
const SCORE_KEY: &str = "PreScoreInterPodAffinity";

impl InterPodAffinity {
    pub fn new(args: Option<&Value>) -> Result<InterPodAffinity, String> {
        let args: Args = match args {
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|e| format!("InterPodAffinityArgs: {e}"))?,
            None => Args {
                hard_pod_affinity_weight: 1,
                ignore_preferred_terms_of_existing_pods: false,
            },
        };
        if !(0..=100).contains(&args.hard_pod_affinity_weight) {
            return Err("InterPodAffinityArgs: hardPodAffinityWeight: Invalid value: not in valid range [0, 100]".into());
        }
        Ok(InterPodAffinity {
            hard_weight: args.hard_pod_affinity_weight,
            ignore_existing_preferred: args.ignore_preferred_terms_of_existing_pods,
        })
    }

    fn merged(ctx: &Ctx, terms: &[AffinityTerm]) -> Vec<AffinityTerm> {
        terms
            .iter()
            .cloned()
            .map(|mut t| {
                t.merge_namespace_selector(ctx.cache.listers.namespaces.iter());
                t
            })
            .collect()
    }

    fn merged_weighted(ctx: &Ctx, terms: &[WeightedAffinityTerm]) -> Vec<WeightedAffinityTerm> {
        terms
            .iter()
            .cloned()
            .map(|mut t| {
                t.term
                    .merge_namespace_selector(ctx.cache.listers.namespaces.iter());
                t
            })
            .collect()
    }
}

fn add_score(
    scores: &mut HashMap<String, HashMap<String, i64>>,
    node: &NodeInfo,
    key: &str,
    delta: i64,
) {
    if let Some(v) = node.label(key) {
        *scores
            .entry(key.to_string())
            .or_default()
            .entry(v.to_string())
            .or_insert(0) += delta;
    }
}

impl Plugin for InterPodAffinity {
    fn name(&self) -> &'static str {
        "InterPodAffinity"
    }
    fn points(&self) -> u32 {
        points::PRE_FILTER
            | points::PRE_FILTER_EXTENSIONS
            | points::FILTER
            | points::PRE_SCORE
            | points::SCORE
    }
    fn events_to_register(&self) -> Vec<ClusterEvent> {
        vec![
            ClusterEvent::new(EventResource::Pod, ADD | UPDATE_POD_LABEL | DELETE),
            ClusterEvent::new(EventResource::Node, ADD | UPDATE_NODE_LABEL),
        ]
    }

    fn pre_filter(
        &self,
        ctx: &Ctx,
        state: &mut CycleState,
        pod: &PodInfo,
    ) -> (Option<PreFilterResult>, Status) {
        if let Some(e) = &pod.parse_error {
            return (None, Status::unresolvable(format!("parsing pod: {e}")));
        }
        let ns_labels = ctx.cache.namespace_labels(&pod.namespace).cloned();
        let mut s = FilterState {
            affinity_terms: Self::merged(ctx, &pod.required_affinity_terms),
            anti_affinity_terms: Self::merged(ctx, &pod.required_anti_affinity_terms),
            ns_labels,
            existing_anti: TopologyCounts::new(),
            affinity_counts: TopologyCounts::new(),
            anti_counts: TopologyCounts::new(),
        };
        for node in ctx.cache.nodes_with_required_anti_affinity_pods() {
            for existing in &node.pods_with_required_anti_affinity {
                for t in &existing.required_anti_affinity_terms {
                    if t.matches_pod(pod, s.ns_labels.as_ref()) {
                        bump(&mut s.existing_anti, node, &t.topology_key, 1);
                    }
                }
            }
        }
        if !s.affinity_terms.is_empty() || !s.anti_affinity_terms.is_empty() {
            for node in ctx.cache.nodes() {
                for existing in &node.pods {
                    if matches_all(&s.affinity_terms, &existing.namespace, existing.labels()) {
                        for t in &s.affinity_terms {
                            bump(&mut s.affinity_counts, node, &t.topology_key, 1);
                        }
                    }
                    for t in &s.anti_affinity_terms {
                        if t.matches(&existing.namespace, existing.labels(), None) {
                            bump(&mut s.anti_counts, node, &t.topology_key, 1);
                        }
                    }
                }
            }
        }
        if s.existing_anti.is_empty()
            && s.affinity_terms.is_empty()
            && s.anti_affinity_terms.is_empty()
        {
            return (None, Status::skip());
        }
        state.write(FILTER_KEY, s);
        (None, Status::success())
    }

    fn add_pod(
        &self,
        _ctx: &Ctx,
        state: &mut CycleState,
        pod: &PodInfo,
        added: &Arc<PodInfo>,
        node: &NodeInfo,
    ) -> Status {
        if let Some(s) = state.read_mut::<FilterState>(FILTER_KEY) {
            s.update(pod, added, node, 1);
        }
        Status::success()
    }

    fn remove_pod(
        &self,
        _ctx: &Ctx,
        state: &mut CycleState,
        pod: &PodInfo,
        removed: &Arc<PodInfo>,
        node: &NodeInfo,
    ) -> Status {
        if let Some(s) = state.read_mut::<FilterState>(FILTER_KEY) {
            s.update(pod, removed, node, -1);
        }
        Status::success()
    }

    fn filter(&self, _ctx: &Ctx, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(s) = state.read::<FilterState>(FILTER_KEY) else {
            return Status::error(
                "reading \"PreFilterInterPodAffinity\" from cycleState: not found",
            );
        };
        // The pod's own affinity: every term's topology must already hold a matching pod,
        // unless nothing in the cluster matches and the pod matches its own terms (the first
        // pod of a group that wants to be together).
        let mut pods_exist = true;
        for t in &s.affinity_terms {
            match node.label(&t.topology_key) {
                None => return Status::unresolvable(AFFINITY_NOT_MATCH),
                Some(v) => {
                    if s.affinity_counts
                        .get(&(t.topology_key.clone(), v.to_string()))
                        .copied()
                        .unwrap_or(0)
                        <= 0
                    {
                        pods_exist = false;
                    }
                }
            }
        }
        let first_of_group = s.affinity_counts.is_empty()
            && matches_all(&s.affinity_terms, &pod.namespace, pod.labels());
        if !pods_exist && !first_of_group {
            return Status::unresolvable(AFFINITY_NOT_MATCH);
        }
        if !s.anti_counts.is_empty() {
            for t in &s.anti_affinity_terms {
                if let Some(v) = node.label(&t.topology_key) {
                    if s.anti_counts
                        .get(&(t.topology_key.clone(), v.to_string()))
                        .copied()
                        .unwrap_or(0)
                        > 0
                    {
                        return Status::unschedulable(ANTI_AFFINITY_NOT_MATCH);
                    }
                }
            }
        }
        if !s.existing_anti.is_empty() {
            for (k, v) in node.labels().into_iter().flatten() {
                if s.existing_anti
                    .get(&(k.clone(), v.clone()))
                    .copied()
                    .unwrap_or(0)
                    > 0
                {
                    return Status::unschedulable(EXISTING_ANTI_AFFINITY_NOT_MATCH);
                }
            }
        }
        Status::success()
    }

    fn pre_score(
        &self,
        ctx: &Ctx,
        state: &mut CycleState,
        pod: &PodInfo,
        nodes: &[usize],
    ) -> Status {
        if nodes.is_empty() {
            return Status::skip();
        }
        let has_constraints = !pod.preferred_affinity_terms.is_empty()
            || !pod.preferred_anti_affinity_terms.is_empty();
        if self.ignore_existing_preferred && !has_constraints {
            return Status::skip();
        }
        let preferred = Self::merged_weighted(ctx, &pod.preferred_affinity_terms);
        let preferred_anti = Self::merged_weighted(ctx, &pod.preferred_anti_affinity_terms);
        let ns_labels = ctx.cache.namespace_labels(&pod.namespace);
        let mut scores: HashMap<String, HashMap<String, i64>> = HashMap::new();
        let candidates: Box<dyn Iterator<Item = &NodeInfo>> = if has_constraints {
            Box::new(ctx.cache.nodes())
        } else {
            Box::new(ctx.cache.nodes_with_affinity_pods())
        };
        for node in candidates {
            if node.labels().is_none_or(|l| l.is_empty()) {
                continue;
            }
            let existing_pods = if has_constraints {
                &node.pods
            } else {
                &node.pods_with_affinity
            };
            for existing in existing_pods {
                for t in &preferred {
                    if t.term.matches(&existing.namespace, existing.labels(), None) {
                        add_score(&mut scores, node, &t.term.topology_key, t.weight);
                    }
                }
                for t in &preferred_anti {
                    if t.term.matches(&existing.namespace, existing.labels(), None) {
                        add_score(&mut scores, node, &t.term.topology_key, -t.weight);
                    }
                }
                if self.hard_weight > 0 {
                    for t in &existing.required_affinity_terms {
                        if t.matches_pod(pod, ns_labels) {
                            add_score(&mut scores, node, &t.topology_key, self.hard_weight);
                        }
                    }
                }
                for t in &existing.preferred_affinity_terms {
                    if t.term.matches_pod(pod, ns_labels) {
                        add_score(&mut scores, node, &t.term.topology_key, t.weight);
                    }
                }
                for t in &existing.preferred_anti_affinity_terms {
                    if t.term.matches_pod(pod, ns_labels) {
                        add_score(&mut scores, node, &t.term.topology_key, -t.weight);
                    }
                }
            }
        }
        if scores.is_empty() {
            return Status::skip();
        }
        state.write(SCORE_KEY, ScoreState { scores });
        Status::success()
    }

    fn score(
        &self,
        _ctx: &Ctx,
        state: &CycleState,
        _pod: &PodInfo,
        node: &NodeInfo,
    ) -> Result<i64, Status> {
        let Some(s) = state.read::<ScoreState>(SCORE_KEY) else {
            return Err(Status::error(
                "reading \"PreScoreInterPodAffinity\" from cycleState: not found",
            ));
        };
        Ok(s.scores
            .iter()
            .filter_map(|(k, values)| node.label(k).and_then(|v| values.get(v)))
            .sum())
    }

    fn normalize_score(
        &self,
        _ctx: &Ctx,
        state: &CycleState,
        _pod: &PodInfo,
        _nodes: &[usize],
        scores: &mut [i64],
    ) -> Status {
        if state.read::<ScoreState>(SCORE_KEY).is_none() {
            return Status::success();
        }
        let max = scores.iter().copied().max().unwrap_or(0);
        let min = scores.iter().copied().min().unwrap_or(0);
        let diff = max - min;
        for s in scores.iter_mut() {
            *s = if diff > 0 {
                (MAX_NODE_SCORE as f64 * ((*s - min) as f64 / diff as f64)) as i64
            } else {
                0
            };
        }
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::framework::Code;
    use crate::scheduler::testutil::{ctx_for, node, pod_in};
    use serde_json::json;

    fn zone_node(name: &str, zone: &str) -> std::sync::Arc<k8s_openapi::api::core::v1::Node> {
        node(name, json!({"metadata": {"labels": {"zone": zone}}}))
    }

    fn term(app: &str) -> serde_json::Value {
        json!({"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": "zone"})
    }

    fn labelled(name: &str, app: &str, affinity: serde_json::Value) -> PodInfo {
        pod_in(
            json!({"name": name, "labels": {"app": app}}),
            json!({"containers": [], "affinity": affinity}),
        )
    }

    fn cache_with(pods: Vec<(PodInfo, &str)>) -> crate::scheduler::cache::Cache {
        let (mut cache, _) = ctx_for(vec![
            zone_node("a1", "a"),
            zone_node("b1", "b"),
            node("nolabel", json!({})),
        ]);
        for (p, n) in pods {
            cache.assume_pod(std::sync::Arc::new(p), n).unwrap();
        }
        cache
    }

    fn run_filter(cache: &crate::scheduler::cache::Cache, p: &PodInfo, node: &str) -> Status {
        let nom = Default::default();
        let ctx = Ctx {
            cache,
            nominator: &nom,
        };
        let pl = InterPodAffinity::new(None).unwrap();
        let mut st = CycleState::new();
        let (_, s) = pl.pre_filter(&ctx, &mut st, p);
        if s.is_skip() {
            return Status::success();
        }
        assert!(s.is_success(), "{s:?}");
        pl.filter(&ctx, &st, p, cache.get(node).unwrap())
    }

    #[test]
    fn required_affinity_needs_a_matching_pod_in_the_topology() {
        let cache = cache_with(vec![(labelled("db", "db", json!({})), "a1")]);
        let p = labelled(
            "web",
            "web",
            json!({"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term("db")]}}),
        );
        assert!(run_filter(&cache, &p, "a1").is_success());
        let s = run_filter(&cache, &p, "b1");
        assert_eq!(
            (s.code(), s.message().as_str()),
            (Code::UnschedulableAndUnresolvable, AFFINITY_NOT_MATCH)
        );
        assert_eq!(
            run_filter(&cache, &p, "nolabel").message(),
            AFFINITY_NOT_MATCH
        );
    }

    #[test]
    fn first_pod_of_a_self_affine_group_may_go_anywhere() {
        let cache = cache_with(vec![]);
        let p = labelled(
            "web",
            "web",
            json!({"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term("web")]}}),
        );
        assert!(run_filter(&cache, &p, "b1").is_success());
        let other = labelled(
            "web",
            "web",
            json!({"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term("db")]}}),
        );
        assert!(!run_filter(&cache, &other, "b1").is_success());
    }

    #[test]
    fn anti_affinity_both_ways() {
        let cache = cache_with(vec![
            (labelled("w1", "web", json!({})), "a1"),
            (
                labelled(
                    "loner",
                    "loner",
                    json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term("web")]}}),
                ),
                "b1",
            ),
        ]);
        let p = labelled(
            "w2",
            "web",
            json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term("web")]}}),
        );
        let s = run_filter(&cache, &p, "a1");
        assert_eq!(
            (s.code(), s.message().as_str()),
            (Code::Unschedulable, ANTI_AFFINITY_NOT_MATCH)
        );
        // b1 holds a pod that refuses web pods in its zone.
        assert_eq!(
            run_filter(&cache, &p, "b1").message(),
            EXISTING_ANTI_AFFINITY_NOT_MATCH
        );
        assert!(run_filter(&cache, &p, "nolabel").is_success());
        let plain = labelled("w3", "web", json!({}));
        assert_eq!(
            run_filter(&cache, &plain, "b1").message(),
            EXISTING_ANTI_AFFINITY_NOT_MATCH
        );
        assert!(run_filter(&cache, &plain, "a1").is_success());
    }

    #[test]
    fn remove_pod_updates_counts_for_preemption() {
        let cache = cache_with(vec![(labelled("w1", "web", json!({})), "a1")]);
        let nom = Default::default();
        let ctx = Ctx {
            cache: &cache,
            nominator: &nom,
        };
        let pl = InterPodAffinity::new(None).unwrap();
        let p = labelled(
            "w2",
            "web",
            json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term("web")]}}),
        );
        let mut st = CycleState::new();
        pl.pre_filter(&ctx, &mut st, &p);
        let a1 = cache.get("a1").unwrap();
        assert!(!pl.filter(&ctx, &st, &p, a1).is_success());
        pl.remove_pod(&ctx, &mut st, &p, &a1.pods[0].clone(), a1);
        assert!(pl.filter(&ctx, &st, &p, a1).is_success());
    }

    #[test]
    fn preferred_terms_score_by_topology() {
        let cache = cache_with(vec![(labelled("db", "db", json!({})), "a1")]);
        let nom = Default::default();
        let ctx = Ctx {
            cache: &cache,
            nominator: &nom,
        };
        let pl = InterPodAffinity::new(None).unwrap();
        let p = labelled(
            "web",
            "web",
            json!({"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 10, "podAffinityTerm": term("db")}]}}),
        );
        let nodes: Vec<usize> = ["a1", "b1"]
            .iter()
            .map(|n| cache.node_index(n).unwrap())
            .collect();
        let mut st = CycleState::new();
        assert!(pl.pre_score(&ctx, &mut st, &p, &nodes).is_success());
        let mut scores: Vec<i64> = nodes
            .iter()
            .map(|n| pl.score(&ctx, &st, &p, cache.node(*n)).unwrap())
            .collect();
        assert_eq!(scores, [10, 0]);
        pl.normalize_score(&ctx, &st, &p, &nodes, &mut scores);
        assert_eq!(scores, [100, 0]);
        let plain = labelled("x", "x", json!({}));
        assert!(pl
            .pre_score(&ctx, &mut CycleState::new(), &plain, &nodes)
            .is_skip());
    }

    #[test]
    fn existing_required_affinity_attracts_matching_pods() {
        let cache = cache_with(vec![(
            labelled(
                "fan",
                "fan",
                json!({"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term("star")]}}),
            ),
            "b1",
        )]);
        let nom = Default::default();
        let ctx = Ctx {
            cache: &cache,
            nominator: &nom,
        };
        let pl = InterPodAffinity::new(None).unwrap();
        let star = labelled("star", "star", json!({}));
        let nodes: Vec<usize> = ["a1", "b1"]
            .iter()
            .map(|n| cache.node_index(n).unwrap())
            .collect();
        let mut st = CycleState::new();
        assert!(pl.pre_score(&ctx, &mut st, &star, &nodes).is_success());
        let scores: Vec<i64> = nodes
            .iter()
            .map(|n| pl.score(&ctx, &st, &star, cache.node(*n)).unwrap())
            .collect();
        assert_eq!(scores, [0, 1], "hardPodAffinityWeight 1");
    }

    #[test]
    fn parse_errors_are_unresolvable() {
        let cache = cache_with(vec![]);
        let bad = pod_in(
            json!({"name": "bad"}),
            json!({"containers": [], "affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchExpressions": [{"key": "a", "operator": "Nope"}]}, "topologyKey": "zone"}]}}}),
        );
        let nom = Default::default();
        let ctx = Ctx {
            cache: &cache,
            nominator: &nom,
        };
        let (_, s) =
            InterPodAffinity::new(None)
                .unwrap()
                .pre_filter(&ctx, &mut CycleState::new(), &bad);
        assert_eq!(s.code(), Code::UnschedulableAndUnresolvable);
        assert!(s.message().starts_with("parsing pod: "));
    }
}
