//! PodTopologySpread: `topologySpreadConstraints` with maxSkew, minDomains, matchLabelKeys,
//! node inclusion policies, `DoNotSchedule` as a filter and `ScheduleAnyway` as a score, plus
//! the system default constraints (spread pods of the same workload over hosts and zones).

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::TopologySpreadConstraint;
use serde::Deserialize;
use serde_json::Value;

use crate::scheduler::framework::events::{
    EventResource, ADD, DELETE, UPDATE_NODE_LABEL, UPDATE_NODE_TAINT, UPDATE_POD_LABEL,
    UPDATE_POD_TOLERATIONS,
};
use crate::scheduler::framework::{
    points, ClusterEvent, Ctx, CycleState, Plugin, PreFilterResult, Status, MAX_NODE_SCORE,
};
use crate::scheduler::nodeinfo::NodeInfo;
use crate::scheduler::podinfo::PodInfo;
use crate::scheduler::selector::{
    find_untolerated_do_not_schedule, Labels, RequiredNodeAffinity, Selector,
};

pub const CONSTRAINTS_NOT_MATCH: &str = "node(s) didn't match pod topology spread constraints";
pub const MISSING_LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";

const HOSTNAME: &str = "kubernetes.io/hostname";
const ZONE: &str = "topology.kubernetes.io/zone";

#[derive(Clone, Debug)]
struct Constraint {
    max_skew: i32,
    topology_key: String,
    selector: Selector,
    min_domains: i32,
    honor_node_affinity: bool,
    honor_node_taints: bool,
}

impl Constraint {
    /// Whether the node takes part in spreading for this constraint (node inclusion policies).
    fn includes(&self, pod: &PodInfo, node: &NodeInfo, required: &RequiredNodeAffinity) -> bool {
        if self.honor_node_affinity && !required.matches(node.name(), node.labels()) {
            return false;
        }
        if self.honor_node_taints
            && find_untolerated_do_not_schedule(node.taints(), pod.tolerations()).is_some()
        {
            return false;
        }
        true
    }
}

fn has_all_keys(labels: Option<&Labels>, constraints: &[Constraint]) -> bool {
    constraints
        .iter()
        .all(|c| labels.is_some_and(|l| l.contains_key(&c.topology_key)))
}

/// Pods on the node in the pod's namespace matching the selector; terminating pods do not
/// count, and an empty selector counts nothing (upstream `countPodsMatchSelector`).
fn count_matching(pods: &[Arc<PodInfo>], selector: &Selector, ns: &str) -> i64 {
    if selector.is_empty() {
        return 0;
    }
    pods.iter()
        .filter(|p| !p.is_deleting() && p.namespace == ns && selector.matches(p.labels()))
        .count() as i64
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SpreadArgs {
    #[serde(default)]
    default_constraints: Vec<TopologySpreadConstraint>,
    #[serde(default)]
    defaulting_type: Option<String>,
}

pub struct PodTopologySpread {
    default_constraints: Vec<TopologySpreadConstraint>,
    system_defaulted: bool,
}

fn system_default_constraints() -> Vec<TopologySpreadConstraint> {
    let c = |key: &str, skew| TopologySpreadConstraint {
        topology_key: key.into(),
        when_unsatisfiable: "ScheduleAnyway".into(),
        max_skew: skew,
        ..Default::default()
    };
    vec![c(HOSTNAME, 3), c(ZONE, 5)]
}

#[derive(Clone)]
struct FilterState {
    constraints: Vec<Constraint>,
    /// Per constraint: topology value → matching pods.
    counts: Vec<HashMap<String, i64>>,
    required: RequiredNodeAffinity,
}

impl FilterState {
    fn min_match(&self, i: usize) -> i64 {
        let c = &self.constraints[i];
        let counts = &self.counts[i];
        if (counts.len() as i64) < c.min_domains as i64 {
            // Fewer eligible domains than minDomains: the global minimum counts as zero.
            return 0;
        }
        counts.values().copied().min().unwrap_or(0)
    }

    fn update(&mut self, pod: &PodInfo, other: &PodInfo, node: &NodeInfo, delta: i64) {
        if other.namespace != pod.namespace || !has_all_keys(node.labels(), &self.constraints) {
            return;
        }
        for (i, c) in self.constraints.iter().enumerate() {
            if !c.selector.matches(other.labels()) || !c.includes(pod, node, &self.required) {
                continue;
            }
            let v = node.label(&c.topology_key).unwrap_or("").to_string();
            *self.counts[i].entry(v).or_insert(0) += delta;
        }
    }
}

#[derive(Clone)]
struct ScoreState {
    constraints: Vec<Constraint>,
    ignored: std::collections::HashSet<usize>,
    /// Per constraint: topology value → matching pods (not used for hostname constraints).
    counts: Vec<HashMap<String, i64>>,
    weights: Vec<f64>,
}

const FILTER_KEY: &str = "PreFilterPodTopologySpread";
const SCORE_KEY: &str = "PreScorePodTopologySpread";

impl PodTopologySpread {
    pub fn new(args: Option<&Value>) -> Result<PodTopologySpread, String> {
        let args: SpreadArgs = match args {
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|e| format!("PodTopologySpreadArgs: {e}"))?,
            None => SpreadArgs::default(),
        };
        match args.defaulting_type.as_deref().unwrap_or("System") {
            "System" => {
                if !args.default_constraints.is_empty() {
                    return Err("PodTopologySpreadArgs: defaultConstraints: Invalid value: when .defaultingType is \"System\"".into());
                }
                Ok(PodTopologySpread {
                    default_constraints: system_default_constraints(),
                    system_defaulted: true,
                })
            }
            "List" => {
                if args
                    .default_constraints
                    .iter()
                    .any(|c| c.label_selector.is_some())
                {
                    return Err(
                        "PodTopologySpreadArgs: defaultConstraints[*].labelSelector: Forbidden"
                            .into(),
                    );
                }
                Ok(PodTopologySpread {
                    default_constraints: args.default_constraints,
                    system_defaulted: false,
                })
            }
            other => Err(format!(
                "PodTopologySpreadArgs: defaultingType: Unsupported value: {other:?}"
            )),
        }
    }

    fn constraints(
        list: &[TopologySpreadConstraint],
        pod_labels: Option<&Labels>,
        action: &str,
    ) -> Result<Vec<Constraint>, String> {
        let mut out = Vec::new();
        for c in list.iter().filter(|c| c.when_unsatisfiable == action) {
            let mut selector = Selector::from_label_selector(c.label_selector.as_ref())?;
            let keys = c.match_label_keys.as_deref().unwrap_or_default();
            if !keys.is_empty() {
                let own: Labels = keys
                    .iter()
                    .filter_map(|k| {
                        pod_labels
                            .and_then(|l| l.get(k))
                            .map(|v| (k.clone(), v.clone()))
                    })
                    .collect();
                if !own.is_empty() {
                    selector = selector.and_set(&own);
                }
            }
            out.push(Constraint {
                max_skew: c.max_skew,
                topology_key: c.topology_key.clone(),
                selector,
                min_domains: c.min_domains.unwrap_or(1),
                honor_node_affinity: c.node_affinity_policy.as_deref() != Some("Ignore"),
                honor_node_taints: c.node_taints_policy.as_deref() == Some("Honor"),
            });
        }
        Ok(out)
    }

    fn pod_constraints(
        &self,
        ctx: &Ctx,
        pod: &PodInfo,
        action: &str,
    ) -> Result<Vec<Constraint>, String> {
        let own = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.topology_spread_constraints.as_deref())
            .unwrap_or_default();
        if !own.is_empty() {
            return Self::constraints(own, pod.labels(), action);
        }
        let mut cs = Self::constraints(&self.default_constraints, pod.labels(), action)?;
        if cs.is_empty() {
            return Ok(cs);
        }
        let selector = ctx.cache.default_spread_selector(pod);
        if selector.is_empty() {
            return Ok(Vec::new());
        }
        for c in &mut cs {
            c.selector = selector.clone();
        }
        Ok(cs)
    }

    fn require_all_topologies(&self, pod: &PodInfo) -> bool {
        let own = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.topology_spread_constraints.as_ref());
        own.is_some_and(|c| !c.is_empty()) || !self.system_defaulted
    }
}

/// log(size + 2): constraints over many domains weigh more.
fn normalizing_weight(size: usize) -> f64 {
    ((size + 2) as f64).ln()
}

impl Plugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        "PodTopologySpread"
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
            ClusterEvent::new(
                EventResource::Pod,
                ADD | UPDATE_POD_LABEL | UPDATE_POD_TOLERATIONS | DELETE,
            ),
            ClusterEvent::new(
                EventResource::Node,
                ADD | DELETE | UPDATE_NODE_LABEL | UPDATE_NODE_TAINT,
            ),
        ]
    }

    fn pre_filter(
        &self,
        ctx: &Ctx,
        state: &mut CycleState,
        pod: &PodInfo,
    ) -> (Option<PreFilterResult>, Status) {
        let constraints = match self.pod_constraints(ctx, pod, "DoNotSchedule") {
            Ok(c) => c,
            Err(e) => return (None, Status::error(e)),
        };
        if constraints.is_empty() {
            return (None, Status::skip());
        }
        let required = RequiredNodeAffinity::of(&pod.pod);
        let mut counts = vec![HashMap::new(); constraints.len()];
        for node in ctx.cache.nodes() {
            if !has_all_keys(node.labels(), &constraints) {
                continue;
            }
            for (i, c) in constraints.iter().enumerate() {
                if !c.includes(pod, node, &required) {
                    continue;
                }
                let n = count_matching(&node.pods, &c.selector, &pod.namespace);
                let v = node.label(&c.topology_key).unwrap_or("").to_string();
                *counts[i].entry(v).or_insert(0) += n;
            }
        }
        state.write(
            FILTER_KEY,
            FilterState {
                constraints,
                counts,
                required,
            },
        );
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
                "reading \"PreFilterPodTopologySpread\" from cycleState: not found",
            );
        };
        for (i, c) in s.constraints.iter().enumerate() {
            let Some(value) = node.label(&c.topology_key) else {
                return Status::unresolvable(MISSING_LABEL);
            };
            let self_match = i64::from(c.selector.matches(pod.labels()));
            let matching = s.counts[i].get(value).copied().unwrap_or(0);
            if matching + self_match - s.min_match(i) > c.max_skew as i64 {
                return Status::unschedulable(CONSTRAINTS_NOT_MATCH);
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
        if nodes.is_empty() || ctx.cache.num_nodes() == 0 {
            return Status::skip();
        }
        let constraints = match self.pod_constraints(ctx, pod, "ScheduleAnyway") {
            Ok(c) => c,
            Err(e) => {
                return Status::error(format!(
                    "obtaining pod's soft topology spread constraints: {e}"
                ))
            }
        };
        if constraints.is_empty() {
            return Status::skip();
        }
        let require_all = self.require_all_topologies(pod);
        let mut ignored = std::collections::HashSet::new();
        let mut counts = vec![HashMap::new(); constraints.len()];
        let mut sizes = vec![0usize; constraints.len()];
        for &n in nodes {
            let node = ctx.cache.node(n);
            if require_all && !has_all_keys(node.labels(), &constraints) {
                ignored.insert(n);
                continue;
            }
            for (i, c) in constraints.iter().enumerate() {
                if c.topology_key == HOSTNAME {
                    continue;
                }
                let v = node.label(&c.topology_key).unwrap_or("").to_string();
                if let std::collections::hash_map::Entry::Vacant(e) = counts[i].entry(v) {
                    e.insert(0);
                    sizes[i] += 1;
                }
            }
        }
        let weights = constraints
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let size = if c.topology_key == HOSTNAME {
                    nodes.len() - ignored.len()
                } else {
                    sizes[i]
                };
                normalizing_weight(size)
            })
            .collect();
        let required = RequiredNodeAffinity::of(&pod.pod);
        let counts_domains = constraints.iter().any(|c| c.topology_key != HOSTNAME);
        if counts_domains {
            for node in ctx.cache.nodes() {
                if require_all && !has_all_keys(node.labels(), &constraints) {
                    continue;
                }
                for (i, c) in constraints.iter().enumerate() {
                    if c.topology_key == HOSTNAME || !c.includes(pod, node, &required) {
                        continue;
                    }
                    let v = node.label(&c.topology_key).unwrap_or("");
                    if let Some(slot) = counts[i].get_mut(v) {
                        *slot += count_matching(&node.pods, &c.selector, &pod.namespace);
                    }
                }
            }
        }
        state.write(
            SCORE_KEY,
            ScoreState {
                constraints,
                ignored,
                counts,
                weights,
            },
        );
        Status::success()
    }

    fn score(
        &self,
        ctx: &Ctx,
        state: &CycleState,
        pod: &PodInfo,
        node: &NodeInfo,
    ) -> Result<i64, Status> {
        let Some(s) = state.read::<ScoreState>(SCORE_KEY) else {
            return Err(Status::error(
                "reading \"PreScorePodTopologySpread\" from cycleState: not found",
            ));
        };
        if ctx
            .cache
            .node_index(node.name())
            .is_some_and(|i| s.ignored.contains(&i))
        {
            return Ok(0);
        }
        let mut score = 0f64;
        for (i, c) in s.constraints.iter().enumerate() {
            let Some(v) = node.label(&c.topology_key) else {
                continue;
            };
            let cnt = if c.topology_key == HOSTNAME {
                count_matching(&node.pods, &c.selector, &pod.namespace)
            } else {
                s.counts[i].get(v).copied().unwrap_or(0)
            };
            score += cnt as f64 * s.weights[i] + (c.max_skew - 1) as f64;
        }
        Ok(score.round() as i64)
    }

    fn normalize_score(
        &self,
        _ctx: &Ctx,
        state: &CycleState,
        _pod: &PodInfo,
        nodes: &[usize],
        scores: &mut [i64],
    ) -> Status {
        let Some(s) = state.read::<ScoreState>(SCORE_KEY) else {
            return Status::success();
        };
        let mut min = i64::MAX;
        let mut max = 0;
        for (i, n) in nodes.iter().enumerate() {
            if s.ignored.contains(n) {
                continue;
            }
            min = min.min(scores[i]);
            max = max.max(scores[i]);
        }
        for (i, n) in nodes.iter().enumerate() {
            scores[i] = if s.ignored.contains(n) {
                0
            } else if max == 0 {
                MAX_NODE_SCORE
            } else {
                MAX_NODE_SCORE * (max + min - scores[i]) / max
            };
        }
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::framework::Code;
    use crate::scheduler::testutil::{ctx_for, node, pod, pod_in};
    use serde_json::json;

    fn zone_node(name: &str, zone: &str) -> std::sync::Arc<k8s_openapi::api::core::v1::Node> {
        node(name, json!({"metadata": {"labels": {"zone": zone}}}))
    }

    fn spread(skew: i32, when: &str, extra: serde_json::Value) -> serde_json::Value {
        let mut c = json!({"maxSkew": skew, "topologyKey": "zone", "whenUnsatisfiable": when,
                           "labelSelector": {"matchLabels": {"app": "web"}}});
        if let (Some(c), Some(e)) = (c.as_object_mut(), extra.as_object()) {
            c.extend(e.clone());
        }
        json!({"containers": [], "topologySpreadConstraints": [c]})
    }

    fn web(name: &str) -> PodInfo {
        pod_in(
            json!({"name": name, "labels": {"app": "web"}}),
            json!({"containers": []}),
        )
    }

    fn setup() -> crate::scheduler::cache::Cache {
        let (mut cache, _) = ctx_for(vec![
            zone_node("a1", "a"),
            zone_node("a2", "a"),
            zone_node("b1", "b"),
            node("nolabel", json!({})),
        ]);
        cache
            .assume_pod(std::sync::Arc::new(web("w1")), "a1")
            .unwrap();
        cache
            .assume_pod(std::sync::Arc::new(web("w2")), "a2")
            .unwrap();
        cache
    }

    #[test]
    fn do_not_schedule_limits_skew() {
        let cache = setup();
        let nom = Default::default();
        let ctx = Ctx {
            cache: &cache,
            nominator: &nom,
        };
        let pl = PodTopologySpread::new(None).unwrap();
        let mut p = web("new");
        let mut pi = (*p.pod).clone();
        pi.spec = Some(serde_json::from_value(spread(1, "DoNotSchedule", json!({}))).unwrap());
        p = PodInfo::new(std::sync::Arc::new(pi), 0);
        let mut st = CycleState::new();
        assert!(pl.pre_filter(&ctx, &mut st, &p).1.is_success());
        // zone a has 2, zone b 0: a → 3-0 > 1.
        let s = pl.filter(&ctx, &st, &p, cache.get("a1").unwrap());
        assert_eq!(
            (s.code(), s.message().as_str()),
            (Code::Unschedulable, CONSTRAINTS_NOT_MATCH)
        );
        assert!(pl
            .filter(&ctx, &st, &p, cache.get("b1").unwrap())
            .is_success());
        let s = pl.filter(&ctx, &st, &p, cache.get("nolabel").unwrap());
        assert_eq!(
            (s.code(), s.message().as_str()),
            (Code::UnschedulableAndUnresolvable, MISSING_LABEL)
        );
        // Preemption removing one pod from zone a changes the count.
        let w1 = cache.get("a1").unwrap().pods[0].clone();
        pl.remove_pod(&ctx, &mut st, &p, &w1, cache.get("a1").unwrap());
        pl.remove_pod(
            &ctx,
            &mut st,
            &p,
            &cache.get("a2").unwrap().pods[0].clone(),
            cache.get("a2").unwrap(),
        );
        assert!(pl
            .filter(&ctx, &st, &p, cache.get("a1").unwrap())
            .is_success());
    }

    #[test]
    fn min_domains_treats_missing_domains_as_empty() {
        let (mut cache, nom) = ctx_for(vec![zone_node("a1", "a"), zone_node("b1", "b")]);
        cache
            .assume_pod(std::sync::Arc::new(web("w1")), "a1")
            .unwrap();
        cache
            .assume_pod(std::sync::Arc::new(web("w2")), "b1")
            .unwrap();
        let ctx = Ctx {
            cache: &cache,
            nominator: &nom,
        };
        let pl = PodTopologySpread::new(None).unwrap();
        let mut pi = (*web("new").pod).clone();
        pi.spec = Some(
            serde_json::from_value(spread(1, "DoNotSchedule", json!({"minDomains": 3}))).unwrap(),
        );
        let p = PodInfo::new(std::sync::Arc::new(pi), 0);
        let mut st = CycleState::new();
        pl.pre_filter(&ctx, &mut st, &p);
        // Two domains < minDomains 3: global minimum is 0, so 1 + 1 - 0 > 1 everywhere.
        assert!(!pl
            .filter(&ctx, &st, &p, cache.get("a1").unwrap())
            .is_success());
        assert!(!pl
            .filter(&ctx, &st, &p, cache.get("b1").unwrap())
            .is_success());
    }

    #[test]
    fn no_constraints_skip() {
        let (cache, nom) = ctx_for(vec![zone_node("a1", "a")]);
        let ctx = Ctx {
            cache: &cache,
            nominator: &nom,
        };
        let pl = PodTopologySpread::new(None).unwrap();
        let p = pod("p", json!({"containers": []}));
        assert!(pl.pre_filter(&ctx, &mut CycleState::new(), &p).1.is_skip());
        assert!(
            pl.pre_score(&ctx, &mut CycleState::new(), &p, &[0])
                .is_skip(),
            "no owner, no default selector"
        );
    }

    #[test]
    fn schedule_anyway_scores_emptier_domains_higher() {
        let cache = setup();
        let nom = Default::default();
        let ctx = Ctx {
            cache: &cache,
            nominator: &nom,
        };
        let pl = PodTopologySpread::new(None).unwrap();
        let mut pi = (*web("new").pod).clone();
        pi.spec = Some(serde_json::from_value(spread(1, "ScheduleAnyway", json!({}))).unwrap());
        let p = PodInfo::new(std::sync::Arc::new(pi), 0);
        let nodes: Vec<usize> = ["a1", "b1", "nolabel"]
            .iter()
            .map(|n| cache.node_index(n).unwrap())
            .collect();
        let mut st = CycleState::new();
        assert!(pl.pre_score(&ctx, &mut st, &p, &nodes).is_success());
        let mut scores: Vec<i64> = nodes
            .iter()
            .map(|n| pl.score(&ctx, &st, &p, cache.node(*n)).unwrap())
            .collect();
        // Domains among candidates: a, b → weight ln(4); a: 2·ln4 = 2.77 → 3; b: 0.
        assert_eq!(scores, [3, 0, 0]);
        pl.normalize_score(&ctx, &st, &p, &nodes, &mut scores);
        assert_eq!(scores, [0, 100, 0], "the node without the key is ignored");
    }

    #[test]
    fn system_defaults_spread_workload_pods_by_host() {
        let (mut cache, nom) = ctx_for(vec![node("h1", json!({})), node("h2", json!({}))]);
        cache.listers.services.insert(
            "default/web".into(),
            Some([("app".to_string(), "web".to_string())].into()),
        );
        cache
            .assume_pod(std::sync::Arc::new(web("w1")), "h1")
            .unwrap();
        let ctx = Ctx {
            cache: &cache,
            nominator: &nom,
        };
        let pl = PodTopologySpread::new(None).unwrap();
        let p = web("new");
        let nodes = [
            cache.node_index("h1").unwrap(),
            cache.node_index("h2").unwrap(),
        ];
        let mut st = CycleState::new();
        assert!(pl.pre_score(&ctx, &mut st, &p, &nodes).is_success());
        let mut scores: Vec<i64> = nodes
            .iter()
            .map(|n| pl.score(&ctx, &st, &p, cache.node(*n)).unwrap())
            .collect();
        pl.normalize_score(&ctx, &st, &p, &nodes, &mut scores);
        assert!(scores[1] > scores[0], "{scores:?}");
        assert!(PodTopologySpread::new(Some(
            &json!({"defaultingType": "List", "defaultConstraints": []})
        ))
        .is_ok());
        assert!(PodTopologySpread::new(Some(&json!({"defaultingType": "Other"}))).is_err());
    }
}
