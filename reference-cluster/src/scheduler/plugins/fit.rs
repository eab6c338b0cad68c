//! NodeResourcesFit (requests against allocatable, pod count, extended resources; scoring with
//! LeastAllocated, MostAllocated or RequestedToCapacityRatio) and
//! NodeResourcesBalancedAllocation (prefers nodes whose resources stay evenly used).

use serde::Deserialize;
use serde_json::Value;

use crate::scheduler::framework::events::{
    EventResource, ADD, DELETE, UPDATE_NODE_ALLOCATABLE, UPDATE_NODE_LABEL, UPDATE_NODE_TAINT,
    UPDATE_POD_SCALE_DOWN,
};
use crate::scheduler::framework::{
    points, ClusterEvent, Code, Ctx, CycleState, Plugin, Status, MAX_NODE_SCORE,
};
use crate::scheduler::nodeinfo::NodeInfo;
use crate::scheduler::podinfo::PodInfo;
use crate::scheduler::resource::{is_extended_resource_name, is_scalar_resource_name};

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceSpec {
    pub name: String,
    #[serde(default = "one")]
    pub weight: i64,
}

fn one() -> i64 {
    1
}

fn default_resources() -> Vec<ResourceSpec> {
    vec![
        ResourceSpec {
            name: "cpu".into(),
            weight: 1,
        },
        ResourceSpec {
            name: "memory".into(),
            weight: 1,
        },
    ]
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShapePoint {
    pub utilization: i64,
    pub score: i64,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RatioArgs {
    #[serde(default)]
    shape: Vec<ShapePoint>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ScoringStrategyArgs {
    #[serde(rename = "type", default = "least")]
    type_: String,
    #[serde(default = "default_resources")]
    resources: Vec<ResourceSpec>,
    #[serde(default)]
    requested_to_capacity_ratio: Option<RatioArgs>,
}

fn least() -> String {
    "LeastAllocated".into()
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FitArgs {
    #[serde(default)]
    ignored_resources: Vec<String>,
    #[serde(default)]
    ignored_resource_groups: Vec<String>,
    #[serde(default)]
    scoring_strategy: Option<ScoringStrategyArgs>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Strategy {
    LeastAllocated,
    MostAllocated,
    /// Shape points with scores already scaled from 0..10 to 0..100.
    RequestedToCapacityRatio(Vec<ShapePoint>),
}

/// Shared scoring machinery of Fit and BalancedAllocation (upstream `resourceAllocationScorer`).
#[derive(Clone, Debug)]
pub struct AllocationScorer {
    pub resources: Vec<ResourceSpec>,
    /// Use the plain requests (BalancedAllocation) rather than requests with defaults for
    /// request-less containers (Fit).
    pub use_requested: bool,
}

impl AllocationScorer {
    fn pod_request(&self, pod: &PodInfo, resource: &str) -> i64 {
        if self.use_requested {
            pod.requests.get(resource)
        } else {
            match resource {
                "cpu" | "memory" => pod.non_zero_requests.get(resource),
                other => pod.requests.get(other),
            }
        }
    }

    /// Fills (allocatable, requested-after-placing-the-pod) of each configured resource; zeros
    /// for resources the node does not have or extended resources the pod does not ask for.
    fn fill(&self, pod: &PodInfo, node: &NodeInfo, alloc: &mut [i64], req: &mut [i64]) {
        let used = if self.use_requested {
            &node.requested
        } else {
            &node.non_zero_requested
        };
        for (i, r) in self.resources.iter().enumerate() {
            let pod_req = self.pod_request(pod, &r.name);
            let (a, q) = match r.name.as_str() {
                "cpu" => (node.allocatable.milli_cpu, used.milli_cpu + pod_req),
                "memory" => (node.allocatable.memory, used.memory + pod_req),
                "ephemeral-storage" => (
                    node.allocatable.ephemeral_storage,
                    node.requested.ephemeral_storage + pod_req,
                ),
                name if pod_req == 0 && is_scalar_resource_name(name) => (0, 0),
                name => match node.allocatable.scalar.get(name) {
                    Some(a) => (*a, node.requested.scalar(name) + pod_req),
                    None => (0, 0),
                },
            };
            (alloc[i], req[i]) = if a != 0 { (a, q) } else { (0, 0) };
        }
    }

    /// Runs `f` on the (allocatable, requested) vectors, kept on the stack in the usual case
    /// of a few resources: this runs for every scored node of every pod.
    pub fn with_vectors<R>(
        &self,
        pod: &PodInfo,
        node: &NodeInfo,
        f: impl FnOnce(&[i64], &[i64]) -> R,
    ) -> R {
        let n = self.resources.len();
        if n <= STACK_RESOURCES {
            let (mut a, mut q) = ([0i64; STACK_RESOURCES], [0i64; STACK_RESOURCES]);
            self.fill(pod, node, &mut a[..n], &mut q[..n]);
            f(&a[..n], &q[..n])
        } else {
            let (mut a, mut q) = (vec![0; n], vec![0; n]);
            self.fill(pod, node, &mut a, &mut q);
            f(&a, &q)
        }
    }
}

const STACK_RESOURCES: usize = 8;

fn least_requested(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 || requested > capacity {
        return 0;
    }
    (capacity - requested) * MAX_NODE_SCORE / capacity
}

fn most_requested(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 {
        return 0;
    }
    requested.min(capacity) * MAX_NODE_SCORE / capacity
}

fn broken_linear(shape: &[ShapePoint], p: i64) -> i64 {
    for (i, pt) in shape.iter().enumerate() {
        if p <= pt.utilization {
            if i == 0 {
                return pt.score;
            }
            let prev = &shape[i - 1];
            return prev.score
                + (pt.score - prev.score) * (p - prev.utilization)
                    / (pt.utilization - prev.utilization);
        }
    }
    shape.last().map(|p| p.score).unwrap_or(0)
}

impl Strategy {
    fn score(&self, resources: &[ResourceSpec], alloc: &[i64], req: &[i64]) -> i64 {
        let (mut sum, mut weights) = (0i64, 0i64);
        for (i, r) in resources.iter().enumerate() {
            if alloc[i] == 0 {
                continue;
            }
            let s = match self {
                Strategy::LeastAllocated => least_requested(req[i], alloc[i]),
                Strategy::MostAllocated => most_requested(req[i], alloc[i]),
                Strategy::RequestedToCapacityRatio(shape) => {
                    let util = if req[i] > alloc[i] {
                        100
                    } else {
                        req[i] * 100 / alloc[i]
                    };
                    let s = broken_linear(shape, util);
                    if s <= 0 {
                        continue;
                    }
                    s
                }
            };
            sum += s * r.weight;
            weights += r.weight;
        }
        if weights == 0 {
            return 0;
        }
        match self {
            Strategy::RequestedToCapacityRatio(_) => (sum as f64 / weights as f64).round() as i64,
            _ => sum / weights,
        }
    }
}

pub struct Fit {
    ignored_resources: Vec<String>,
    ignored_groups: Vec<String>,
    strategy: Strategy,
    scorer: AllocationScorer,
}

/// Upstream's fit reasons.
pub fn insufficient(resource: &str) -> String {
    format!("Insufficient {resource}")
}

pub const TOO_MANY_PODS: &str = "Too many pods";

impl Fit {
    pub fn new(args: Option<&Value>) -> Result<Fit, String> {
        let args: FitArgs = match args {
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|e| format!("NodeResourcesFitArgs: {e}"))?,
            None => FitArgs::default(),
        };
        let ss = args.scoring_strategy.unwrap_or(ScoringStrategyArgs {
            type_: least(),
            resources: default_resources(),
            requested_to_capacity_ratio: None,
        });
        let strategy = match ss.type_.as_str() {
            "LeastAllocated" => Strategy::LeastAllocated,
            "MostAllocated" => Strategy::MostAllocated,
            "RequestedToCapacityRatio" => {
                let shape = ss.requested_to_capacity_ratio.unwrap_or_default().shape;
                if shape.is_empty() {
                    return Err("NodeResourcesFitArgs: scoringStrategy.requestedToCapacityRatio.shape: Required value".into());
                }
                if shape
                    .windows(2)
                    .any(|w| w[1].utilization <= w[0].utilization)
                {
                    return Err("NodeResourcesFitArgs: shape utilization values must be sorted in increasing order".into());
                }
                if shape
                    .iter()
                    .any(|p| !(0..=100).contains(&p.utilization) || !(0..=10).contains(&p.score))
                {
                    return Err("NodeResourcesFitArgs: shape utilization must be in 0..100 and score in 0..10".into());
                }
                Strategy::RequestedToCapacityRatio(
                    shape
                        .into_iter()
                        .map(|p| ShapePoint {
                            utilization: p.utilization,
                            score: p.score * (MAX_NODE_SCORE / 10),
                        })
                        .collect(),
                )
            }
            other => {
                return Err(format!(
                    "NodeResourcesFitArgs: scoringStrategy.type: Unsupported value: {other:?}"
                ))
            }
        };
        validate_resources(&ss.resources)?;
        Ok(Fit {
            ignored_resources: args.ignored_resources,
            ignored_groups: args.ignored_resource_groups,
            strategy,
            scorer: AllocationScorer {
                resources: ss.resources,
                use_requested: false,
            },
        })
    }

    fn ignored(&self, name: &str) -> bool {
        is_extended_resource_name(name)
            && (self.ignored_resources.iter().any(|r| r == name)
                || self
                    .ignored_groups
                    .iter()
                    .any(|g| name.split('/').next() == Some(g.as_str())))
    }

    /// Every reason the pod does not fit; `unresolvable` is never set in 1.32 (a pod asking
    /// for more than a node's allocatable is still "Unschedulable").
    pub fn insufficient_resources(&self, pod: &PodInfo, node: &NodeInfo) -> Vec<String> {
        let mut out = Vec::new();
        if node.pods.len() as i64 + 1 > node.allocatable.allowed_pod_number {
            out.push(TOO_MANY_PODS.to_string());
        }
        let r = &pod.requests;
        if r.milli_cpu == 0 && r.memory == 0 && r.ephemeral_storage == 0 && r.scalar.is_empty() {
            return out;
        }
        let (a, u) = (&node.allocatable, &node.requested);
        if r.milli_cpu > 0 && r.milli_cpu > a.milli_cpu - u.milli_cpu {
            out.push(insufficient("cpu"));
        }
        if r.memory > 0 && r.memory > a.memory - u.memory {
            out.push(insufficient("memory"));
        }
        if r.ephemeral_storage > 0
            && r.ephemeral_storage > a.ephemeral_storage - u.ephemeral_storage
        {
            out.push(insufficient("ephemeral-storage"));
        }
        for (name, want) in &r.scalar {
            if *want == 0 || self.ignored(name) {
                continue;
            }
            if *want > a.scalar(name) - u.scalar(name) {
                out.push(insufficient(name));
            }
        }
        out
    }
}

fn validate_resources(resources: &[ResourceSpec]) -> Result<(), String> {
    for r in resources {
        if !(1..=100).contains(&r.weight) {
            return Err(format!(
                "resources weight of {} should be in the range [1, 100]",
                r.name
            ));
        }
    }
    Ok(())
}

impl Plugin for Fit {
    fn name(&self) -> &'static str {
        "NodeResourcesFit"
    }
    fn points(&self) -> u32 {
        points::FILTER | points::SCORE
    }
    fn events_to_register(&self) -> Vec<ClusterEvent> {
        vec![
            ClusterEvent::new(EventResource::Pod, DELETE | UPDATE_POD_SCALE_DOWN),
            ClusterEvent::new(
                EventResource::Node,
                ADD | UPDATE_NODE_ALLOCATABLE | UPDATE_NODE_TAINT | UPDATE_NODE_LABEL,
            ),
        ]
    }
    fn filter(&self, _ctx: &Ctx, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let reasons = self.insufficient_resources(pod, node);
        if reasons.is_empty() {
            Status::success()
        } else {
            Status::with_reasons(
                Code::Unschedulable,
                reasons.into_iter().map(Into::into).collect(),
            )
        }
    }
    fn score(
        &self,
        _ctx: &Ctx,
        _state: &CycleState,
        pod: &PodInfo,
        node: &NodeInfo,
    ) -> Result<i64, Status> {
        Ok(self.scorer.with_vectors(pod, node, |alloc, req| {
            self.strategy.score(&self.scorer.resources, alloc, req)
        }))
    }
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BalancedArgs {
    #[serde(default)]
    resources: Option<Vec<ResourceSpec>>,
}

pub struct BalancedAllocation {
    scorer: AllocationScorer,
}

impl BalancedAllocation {
    pub fn new(args: Option<&Value>) -> Result<BalancedAllocation, String> {
        let args: BalancedArgs = match args {
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|e| format!("NodeResourcesBalancedAllocationArgs: {e}"))?,
            None => BalancedArgs::default(),
        };
        let resources = args.resources.unwrap_or_else(default_resources);
        validate_resources(&resources)?;
        Ok(BalancedAllocation {
            scorer: AllocationScorer {
                resources,
                use_requested: true,
            },
        })
    }
}

/// 100 × (1 − standard deviation of the used fractions): evenly used nodes score highest.
pub fn balanced_score(alloc: &[i64], req: &[i64]) -> i64 {
    let mut buf = [0f64; STACK_RESOURCES];
    let mut heap = Vec::new();
    let fractions: &mut [f64] = if alloc.len() <= STACK_RESOURCES {
        &mut buf[..]
    } else {
        heap.resize(alloc.len(), 0.0);
        &mut heap[..]
    };
    let mut n = 0;
    for (a, r) in alloc.iter().zip(req) {
        if *a != 0 {
            fractions[n] = (*r as f64 / *a as f64).min(1.0);
            n += 1;
        }
    }
    let fractions = &fractions[..n];
    let std = match n {
        2 => ((fractions[0] - fractions[1]) / 2.0).abs(),
        n if n > 2 => {
            let mean = fractions.iter().sum::<f64>() / n as f64;
            (fractions
                .iter()
                .map(|f| (f - mean) * (f - mean))
                .sum::<f64>()
                / n as f64)
                .sqrt()
        }
        _ => 0.0,
    };
    ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
}

impl Plugin for BalancedAllocation {
    fn name(&self) -> &'static str {
        "NodeResourcesBalancedAllocation"
    }
    fn points(&self) -> u32 {
        points::SCORE
    }
    fn score(
        &self,
        _ctx: &Ctx,
        _state: &CycleState,
        pod: &PodInfo,
        node: &NodeInfo,
    ) -> Result<i64, Status> {
        Ok(self.scorer.with_vectors(pod, node, balanced_score))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::testutil::{ctx_for, node, pod};
    use serde_json::json;
    use std::sync::Arc;

    fn requests(cpu: &str, mem: &str) -> serde_json::Value {
        json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": mem}}}]})
    }

    #[test]
    fn filter_reports_every_shortage() {
        let (mut cache, nom) = ctx_for(vec![node(
            "n",
            json!({"status": {"allocatable": {"cpu": "2", "memory": "1Gi", "pods": "2", "example.com/gpu": "1"}}}),
        )]);
        cache
            .assume_pod(Arc::new(pod("a", requests("1500m", "512Mi"))), "n")
            .unwrap();
        let ctx = Ctx {
            cache: &cache,
            nominator: &nom,
        };
        let fit = Fit::new(None).unwrap();
        let n = cache.get("n").unwrap();
        let st = CycleState::new();
        assert!(fit
            .filter(&ctx, &st, &pod("b", requests("500m", "512Mi")), n)
            .is_success());
        let s = fit.filter(&ctx, &st, &pod("b", requests("501m", "600Mi")), n);
        assert_eq!(s.message(), "Insufficient cpu, Insufficient memory");
        assert_eq!(
            s.code(),
            Code::Unschedulable,
            "1.32 does not mark oversize pods unresolvable"
        );
        let gpu = pod(
            "g",
            json!({"containers": [{"name": "c", "resources": {"requests": {"example.com/gpu": "2", "example.org/fpga": "1"}}}]}),
        );
        let mut reasons = fit.insufficient_resources(&gpu, n);
        reasons.sort();
        assert_eq!(
            reasons,
            [
                "Insufficient example.com/gpu",
                "Insufficient example.org/fpga"
            ]
        );
        let ignoring = Fit::new(Some(&json!({"ignoredResourceGroups": ["example.org"]}))).unwrap();
        assert_eq!(
            ignoring.insufficient_resources(&gpu, n),
            ["Insufficient example.com/gpu"]
        );
    }

    #[test]
    fn pod_count_limit() {
        let (mut cache, nom) = ctx_for(vec![node(
            "n",
            json!({"status": {"allocatable": {"cpu": "4", "pods": "1"}}}),
        )]);
        cache
            .assume_pod(Arc::new(pod("a", json!({"containers": []}))), "n")
            .unwrap();
        let ctx = Ctx {
            cache: &cache,
            nominator: &nom,
        };
        let s = Fit::new(None).unwrap().filter(
            &ctx,
            &CycleState::new(),
            &pod("b", json!({"containers": []})),
            cache.get("n").unwrap(),
        );
        assert_eq!(s.message(), TOO_MANY_PODS);
    }

    #[test]
    fn least_allocated_prefers_emptier_nodes_and_counts_defaults() {
        let (mut cache, nom) = ctx_for(vec![
            node(
                "busy",
                json!({"status": {"allocatable": {"cpu": "4", "memory": "4Gi", "pods": "10"}}}),
            ),
            node(
                "idle",
                json!({"status": {"allocatable": {"cpu": "4", "memory": "4Gi", "pods": "10"}}}),
            ),
        ]);
        cache
            .assume_pod(Arc::new(pod("a", requests("2", "2Gi"))), "busy")
            .unwrap();
        let ctx = Ctx {
            cache: &cache,
            nominator: &nom,
        };
        let fit = Fit::new(None).unwrap();
        let st = CycleState::new();
        let p = pod("p", requests("1", "1Gi"));
        let score = |n| fit.score(&ctx, &st, &p, cache.get(n).unwrap()).unwrap();
        // busy: cpu (4000-3000)*100/4000 = 25, mem 25 → 25; idle: 75.
        assert_eq!((score("busy"), score("idle")), (25, 75));
        // A request-less pod counts as 100m/200Mi.
        let empty = pod("e", json!({"containers": [{"name": "c"}]}));
        let s = fit
            .score(&ctx, &st, &empty, cache.get("idle").unwrap())
            .unwrap();
        let cpu = (4000 - 100) * 100 / 4000;
        let mem = (4096 - 200) * 100 / 4096;
        assert_eq!(s, (cpu + mem) / 2);
    }

    #[test]
    fn most_allocated_and_ratio_strategies() {
        let (mut cache, nom) = ctx_for(vec![node(
            "n",
            json!({"status": {"allocatable": {"cpu": "4", "memory": "4Gi", "pods": "10"}}}),
        )]);
        cache
            .assume_pod(Arc::new(pod("a", requests("1", "1Gi"))), "n")
            .unwrap();
        let ctx = Ctx {
            cache: &cache,
            nominator: &nom,
        };
        let st = CycleState::new();
        let p = pod("p", requests("1", "1Gi"));
        let n = cache.get("n").unwrap();
        let most = Fit::new(Some(&json!({"scoringStrategy": {"type": "MostAllocated"}}))).unwrap();
        assert_eq!(most.score(&ctx, &st, &p, n).unwrap(), 50);
        let ratio = Fit::new(Some(&json!({"scoringStrategy": {"type": "RequestedToCapacityRatio",
            "resources": [{"name": "cpu", "weight": 1}],
            "requestedToCapacityRatio": {"shape": [{"utilization": 0, "score": 0}, {"utilization": 100, "score": 10}]}}})))
        .unwrap();
        assert_eq!(ratio.score(&ctx, &st, &p, n).unwrap(), 50);
        assert!(Fit::new(Some(&json!({"scoringStrategy": {"type": "Bogus"}}))).is_err());
        assert!(Fit::new(Some(&json!({"unknownField": 1}))).is_err());
    }

    #[test]
    fn balanced_allocation_prefers_even_use() {
        assert_eq!(balanced_score(&[4000, 4096], &[2000, 2048]), 100);
        assert_eq!(balanced_score(&[4000, 4096], &[4000, 0]), 50);
        assert_eq!(
            balanced_score(&[4000, 0], &[1000, 0]),
            100,
            "one resource: no deviation"
        );
        let three = balanced_score(&[10, 10, 10], &[0, 5, 10]);
        let std = ((0.25f64 + 0.0 + 0.25) / 3.0).sqrt();
        assert_eq!(three, ((1.0 - std) * 100.0) as i64);
    }
}
