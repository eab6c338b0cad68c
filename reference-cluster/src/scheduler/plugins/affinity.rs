//! NodeAffinity (`nodeSelector` and node affinity, required and preferred, plus the
//! scheduler-enforced `addedAffinity`) and TaintToleration (NoSchedule/NoExecute filtering,
//! PreferNoSchedule scoring).

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{NodeAffinity as ApiNodeAffinity, Toleration};
use serde::Deserialize;
use serde_json::Value;

use crate::scheduler::framework::events::{
    EventResource, ADD, UPDATE_NODE_LABEL, UPDATE_NODE_TAINT, UPDATE_POD_TOLERATIONS,
};
use crate::scheduler::framework::{
    points, ClusterEvent, Ctx, CycleState, Plugin, PreFilterResult, Status, MAX_NODE_SCORE,
};
use crate::scheduler::nodeinfo::NodeInfo;
use crate::scheduler::podinfo::PodInfo;
use crate::scheduler::selector::{
    find_untolerated_do_not_schedule, tolerations_tolerate, NodeSelector, PreferredNodeAffinity,
    RequiredNodeAffinity,
};

pub const NODE_AFFINITY_REASON: &str = "node(s) didn't match Pod's node affinity/selector";
pub const ENFORCED_REASON: &str = "node(s) didn't match scheduler-enforced node affinity";
pub const CONFLICT_REASON: &str = "pod affinity terms conflict";

/// Upstream `DefaultNormalizeScore`: scale to 0..100 by the maximum, optionally reversed.
pub fn default_normalize(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0);
    if max == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = MAX_NODE_SCORE);
        }
        return;
    }
    for s in scores.iter_mut() {
        let v = MAX_NODE_SCORE * *s / max;
        *s = if reverse { MAX_NODE_SCORE - v } else { v };
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NodeAffinityArgs {
    #[serde(default)]
    added_affinity: Option<ApiNodeAffinity>,
}

pub struct NodeAffinity {
    added_required: Option<NodeSelector>,
    added_preferred: Option<PreferredNodeAffinity>,
}

#[derive(Clone)]
struct NodeAffinityState {
    required: RequiredNodeAffinity,
}

#[derive(Clone)]
struct NodeAffinityScoreState {
    preferred: Option<PreferredNodeAffinity>,
}

const PRE_FILTER_KEY: &str = "PreFilterNodeAffinity";
const PRE_SCORE_KEY: &str = "PreScoreNodeAffinity";

impl NodeAffinity {
    pub fn new(args: Option<&Value>) -> Result<NodeAffinity, String> {
        let args: NodeAffinityArgs = match args {
            Some(v) => {
                serde_json::from_value(v.clone()).map_err(|e| format!("NodeAffinityArgs: {e}"))?
            }
            None => NodeAffinityArgs::default(),
        };
        let added = args.added_affinity.unwrap_or_default();
        let added_required = added
            .required_during_scheduling_ignored_during_execution
            .as_ref()
            .map(|ns| NodeSelector::new(&ns.node_selector_terms));
        let added_preferred = added
            .preferred_during_scheduling_ignored_during_execution
            .as_deref()
            .map(PreferredNodeAffinity::from_terms);
        Ok(NodeAffinity {
            added_required,
            added_preferred,
        })
    }
}

/// Node names a pod's required terms pin it to through `matchFields` on `metadata.name`; `None`
/// when some term does not (every node may then match).
fn pinned_node_names(pod: &PodInfo) -> Option<BTreeSet<String>> {
    let terms = &pod
        .pod
        .spec
        .as_ref()?
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    if terms.is_empty() {
        return None;
    }
    let mut all: BTreeSet<String> = BTreeSet::new();
    for t in terms {
        let mut term_names: Option<BTreeSet<String>> = None;
        for f in t.match_fields.iter().flatten() {
            if f.key == "metadata.name" && f.operator == "In" {
                let s: BTreeSet<String> = f.values.iter().flatten().cloned().collect();
                term_names = Some(match term_names {
                    None => s,
                    Some(prev) => prev.intersection(&s).cloned().collect(),
                });
            }
        }
        all.extend(term_names?);
    }
    Some(all)
}

impl Plugin for NodeAffinity {
    fn name(&self) -> &'static str {
        "NodeAffinity"
    }
    fn points(&self) -> u32 {
        points::PRE_FILTER | points::FILTER | points::PRE_SCORE | points::SCORE
    }
    fn events_to_register(&self) -> Vec<ClusterEvent> {
        vec![ClusterEvent::new(
            EventResource::Node,
            ADD | UPDATE_NODE_LABEL,
        )]
    }
    fn pre_filter(
        &self,
        _ctx: &Ctx,
        state: &mut CycleState,
        pod: &PodInfo,
    ) -> (Option<PreFilterResult>, Status) {
        let required = RequiredNodeAffinity::of(&pod.pod);
        if required.is_empty() && self.added_required.is_none() {
            return (None, Status::skip());
        }
        state.write(PRE_FILTER_KEY, NodeAffinityState { required });
        match pinned_node_names(pod) {
            Some(names) if names.is_empty() => (None, Status::unresolvable(CONFLICT_REASON)),
            Some(names) => (
                Some(PreFilterResult {
                    node_names: Some(names),
                }),
                Status::success(),
            ),
            None => (None, Status::success()),
        }
    }
    fn filter(&self, _ctx: &Ctx, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        if let Some(added) = &self.added_required {
            if !added.matches(node.name(), node.labels()) {
                return Status::unresolvable(ENFORCED_REASON);
            }
        }
        let matches = match state.read::<NodeAffinityState>(PRE_FILTER_KEY) {
            Some(s) => s.required.matches(node.name(), node.labels()),
            None => RequiredNodeAffinity::of(&pod.pod).matches(node.name(), node.labels()),
        };
        if matches {
            Status::success()
        } else {
            Status::unresolvable(NODE_AFFINITY_REASON)
        }
    }
    fn pre_score(
        &self,
        _ctx: &Ctx,
        state: &mut CycleState,
        pod: &PodInfo,
        nodes: &[usize],
    ) -> Status {
        if nodes.is_empty() {
            return Status::success();
        }
        let preferred = PreferredNodeAffinity::of(&pod.pod);
        if preferred.is_none() && self.added_preferred.is_none() {
            return Status::skip();
        }
        state.write(PRE_SCORE_KEY, NodeAffinityScoreState { preferred });
        Status::success()
    }
    fn score(
        &self,
        _ctx: &Ctx,
        state: &CycleState,
        pod: &PodInfo,
        node: &NodeInfo,
    ) -> Result<i64, Status> {
        let mut count = 0;
        if let Some(added) = &self.added_preferred {
            count += added.score(node.name(), node.labels());
        }
        let own = match state.read::<NodeAffinityScoreState>(PRE_SCORE_KEY) {
            Some(s) => s
                .preferred
                .as_ref()
                .map(|p| p.score(node.name(), node.labels())),
            None => {
                PreferredNodeAffinity::of(&pod.pod).map(|p| p.score(node.name(), node.labels()))
            }
        };
        Ok(count + own.unwrap_or(0))
    }
    fn normalize_score(
        &self,
        _ctx: &Ctx,
        _state: &CycleState,
        _pod: &PodInfo,
        _nodes: &[usize],
        scores: &mut [i64],
    ) -> Status {
        default_normalize(scores, false);
        Status::success()
    }
}

pub struct TaintToleration;

#[derive(Clone)]
struct TaintScoreState {
    prefer_no_schedule: Vec<Toleration>,
}

const TAINT_KEY: &str = "PreScoreTaintToleration";

pub fn untolerated_reason(key: &str, value: &str) -> String {
    format!("node(s) had untolerated taint {{{key}: {value}}}")
}

impl Plugin for TaintToleration {
    fn name(&self) -> &'static str {
        "TaintToleration"
    }
    fn points(&self) -> u32 {
        points::FILTER | points::PRE_SCORE | points::SCORE
    }
    fn events_to_register(&self) -> Vec<ClusterEvent> {
        vec![
            ClusterEvent::new(EventResource::Node, ADD | UPDATE_NODE_TAINT),
            ClusterEvent::new(EventResource::Pod, UPDATE_POD_TOLERATIONS),
        ]
    }
    fn filter(&self, _ctx: &Ctx, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        match find_untolerated_do_not_schedule(node.taints(), pod.tolerations()) {
            None => Status::success(),
            Some(t) => {
                Status::unresolvable(untolerated_reason(&t.key, t.value.as_deref().unwrap_or("")))
            }
        }
    }
    fn pre_score(
        &self,
        _ctx: &Ctx,
        state: &mut CycleState,
        pod: &PodInfo,
        _nodes: &[usize],
    ) -> Status {
        let prefer_no_schedule = pod
            .tolerations()
            .iter()
            .filter(|t| {
                matches!(
                    t.effect.as_deref(),
                    None | Some("") | Some("PreferNoSchedule")
                )
            })
            .cloned()
            .collect();
        state.write(TAINT_KEY, TaintScoreState { prefer_no_schedule });
        Status::success()
    }
    fn score(
        &self,
        _ctx: &Ctx,
        state: &CycleState,
        pod: &PodInfo,
        node: &NodeInfo,
    ) -> Result<i64, Status> {
        let tolerations = match state.read::<TaintScoreState>(TAINT_KEY) {
            Some(s) => s.prefer_no_schedule.as_slice(),
            None => pod.tolerations(),
        };
        Ok(node
            .taints()
            .iter()
            .filter(|t| t.effect == "PreferNoSchedule" && !tolerations_tolerate(tolerations, t))
            .count() as i64)
    }
    fn normalize_score(
        &self,
        _ctx: &Ctx,
        _state: &CycleState,
        _pod: &PodInfo,
        _nodes: &[usize],
        scores: &mut [i64],
    ) -> Status {
        default_normalize(scores, true);
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::framework::Code;
    use crate::scheduler::testutil::{ctx_for, node, pod};
    use serde_json::json;

    #[test]
    fn normalize() {
        let mut s = [0, 5, 10];
        default_normalize(&mut s, false);
        assert_eq!(s, [0, 50, 100]);
        let mut r = [0, 1, 2];
        default_normalize(&mut r, true);
        assert_eq!(r, [100, 50, 0]);
        let mut z = [0, 0];
        default_normalize(&mut z, true);
        assert_eq!(z, [100, 100]);
    }

    #[test]
    fn required_affinity_filters_and_pins() {
        let (cache, nom) = ctx_for(vec![
            node("a", json!({"metadata": {"labels": {"disk": "ssd"}}})),
            node("b", json!({})),
        ]);
        let ctx = Ctx {
            cache: &cache,
            nominator: &nom,
        };
        let na = NodeAffinity::new(None).unwrap();
        let p = pod(
            "p",
            json!({"containers": [], "nodeSelector": {"disk": "ssd"}}),
        );
        let mut st = CycleState::new();
        let (r, s) = na.pre_filter(&ctx, &mut st, &p);
        assert!(s.is_success() && r.is_none());
        assert!(na
            .filter(&ctx, &st, &p, cache.get("a").unwrap())
            .is_success());
        let s = na.filter(&ctx, &st, &p, cache.get("b").unwrap());
        assert_eq!(
            (s.code(), s.message().as_str()),
            (Code::UnschedulableAndUnresolvable, NODE_AFFINITY_REASON)
        );

        let none = pod("q", json!({"containers": []}));
        assert!(na
            .pre_filter(&ctx, &mut CycleState::new(), &none)
            .1
            .is_skip());

        let pinned = pod(
            "r",
            json!({"containers": [], "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["b"]}]}
            ]}}}}),
        );
        let (r, _) = na.pre_filter(&ctx, &mut CycleState::new(), &pinned);
        assert_eq!(
            r.unwrap()
                .node_names
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            ["b"]
        );
    }

    #[test]
    fn added_affinity_is_enforced() {
        let (cache, nom) = ctx_for(vec![
            node("a", json!({"metadata": {"labels": {"pool": "x"}}})),
            node("b", json!({})),
        ]);
        let ctx = Ctx {
            cache: &cache,
            nominator: &nom,
        };
        let na = NodeAffinity::new(Some(&json!({"addedAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "pool", "operator": "In", "values": ["x"]}]}]}}})))
        .unwrap();
        let p = pod("p", json!({"containers": []}));
        let mut st = CycleState::new();
        assert!(na.pre_filter(&ctx, &mut st, &p).1.is_success());
        assert!(na
            .filter(&ctx, &st, &p, cache.get("a").unwrap())
            .is_success());
        assert_eq!(
            na.filter(&ctx, &st, &p, cache.get("b").unwrap()).message(),
            ENFORCED_REASON
        );
    }

    #[test]
    fn preferred_affinity_scores() {
        let (cache, nom) = ctx_for(vec![
            node("a", json!({"metadata": {"labels": {"z": "1"}}})),
            node("b", json!({})),
        ]);
        let ctx = Ctx {
            cache: &cache,
            nominator: &nom,
        };
        let na = NodeAffinity::new(None).unwrap();
        let p = pod(
            "p",
            json!({"containers": [], "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 40, "preference": {"matchExpressions": [{"key": "z", "operator": "Exists"}]}}]}}}),
        );
        let mut st = CycleState::new();
        assert!(na.pre_score(&ctx, &mut st, &p, &[0, 1]).is_success());
        let mut scores: Vec<i64> = ["a", "b"]
            .iter()
            .map(|n| na.score(&ctx, &st, &p, cache.get(n).unwrap()).unwrap())
            .collect();
        assert_eq!(scores, [40, 0]);
        na.normalize_score(&ctx, &st, &p, &[0, 1], &mut scores);
        assert_eq!(scores, [100, 0]);
        assert!(na
            .pre_score(
                &ctx,
                &mut CycleState::new(),
                &pod("q", json!({"containers": []})),
                &[0]
            )
            .is_skip());
    }

    #[test]
    fn taints_filter_and_score() {
        let (cache, nom) = ctx_for(vec![
            node(
                "hard",
                json!({"spec": {"taints": [{"key": "key", "value": "value", "effect": "NoSchedule"}]}}),
            ),
            node(
                "soft",
                json!({"spec": {"taints": [{"key": "s", "effect": "PreferNoSchedule"}]}}),
            ),
            node("clean", json!({})),
        ]);
        let ctx = Ctx {
            cache: &cache,
            nominator: &nom,
        };
        let tt = TaintToleration;
        let p = pod("p", json!({"containers": []}));
        let mut st = CycleState::new();
        let s = tt.filter(&ctx, &st, &p, cache.get("hard").unwrap());
        assert_eq!(s.message(), "node(s) had untolerated taint {key: value}");
        assert_eq!(s.code(), Code::UnschedulableAndUnresolvable);
        assert!(tt
            .filter(&ctx, &st, &p, cache.get("soft").unwrap())
            .is_success());
        let tolerant = pod(
            "t",
            json!({"containers": [], "tolerations": [{"key": "key", "operator": "Equal", "value": "value", "effect": "NoSchedule"}]}),
        );
        assert!(tt
            .filter(&ctx, &st, &tolerant, cache.get("hard").unwrap())
            .is_success());

        tt.pre_score(&ctx, &mut st, &p, &[0, 1]);
        let mut scores: Vec<i64> = ["soft", "clean"]
            .iter()
            .map(|n| tt.score(&ctx, &st, &p, cache.get(n).unwrap()).unwrap())
            .collect();
        tt.normalize_score(&ctx, &st, &p, &[0, 1], &mut scores);
        assert_eq!(scores, [0, 100]);
    }
}
