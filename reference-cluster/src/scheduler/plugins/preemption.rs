//! DefaultPreemption (PostFilter): when a pod fits nowhere, find nodes where evicting
//! lower-priority pods would make it fit, prefer the choice that violates fewest
//! PodDisruptionBudgets and evicts the least important pods, and nominate that node. The
//! scheduler then deletes the victims gracefully and retries the pod.

use std::sync::Arc;

use async_trait::async_trait;
use rand::Rng;
use serde::Deserialize;
use serde_json::Value;

use crate::scheduler::api::ApiClient;
use crate::scheduler::framework::{
    points, Code, Ctx, CycleState, Diagnosis, FitError, Framework, NodeToStatus, Plugin,
    PostFilterResult, Preemption, Status,
};
use crate::scheduler::nodeinfo::NodeInfo;
use crate::scheduler::podinfo::PodInfo;
use crate::scheduler::selector::Selector;

pub const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
pub const NO_VICTIMS: &str = "No preemption victims found for incoming pod";

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Args {
    #[serde(default = "ten")]
    min_candidate_nodes_percentage: i64,
    #[serde(default = "hundred")]
    min_candidate_nodes_absolute: i64,
}

fn ten() -> i64 {
    10
}

fn hundred() -> i64 {
    100
}

pub struct DefaultPreemption {
    min_percentage: i64,
    min_absolute: i64,
}

/// One node where preemption would work.
struct Candidate {
    node: usize,
    victims: Vec<Arc<PodInfo>>,
    pdb_violations: i64,
}

/// When a pod started (now, for pods not started yet), in nanoseconds.
fn start_nanos(p: &PodInfo, now: i128) -> i128 {
    p.start_time().map(|t| t.as_nanosecond()).unwrap_or(now)
}

/// Higher priority first, then the pod that started earlier.
fn more_important(a: &PodInfo, b: &PodInfo, now: i128) -> std::cmp::Ordering {
    b.priority
        .cmp(&a.priority)
        .then_with(|| start_nanos(a, now).cmp(&start_nanos(b, now)))
}

fn terminating_by_preemption(p: &PodInfo) -> bool {
    p.is_deleting()
        && p.pod
            .status
            .iter()
            .flat_map(|s| s.conditions.iter().flatten())
            .any(|c| {
                c.type_ == "DisruptionTarget"
                    && c.status == "True"
                    && c.reason.as_deref() == Some("PreemptionByScheduler")
            })
}

impl DefaultPreemption {
    pub fn new(args: Option<&Value>) -> Result<DefaultPreemption, String> {
        let a: Args = match args {
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|e| format!("DefaultPreemptionArgs: {e}"))?,
            None => Args {
                min_candidate_nodes_percentage: 10,
                min_candidate_nodes_absolute: 100,
            },
        };
        if !(0..=100).contains(&a.min_candidate_nodes_percentage)
            || a.min_candidate_nodes_absolute < 0
        {
            return Err("DefaultPreemptionArgs: minCandidateNodes values out of range".into());
        }
        if a.min_candidate_nodes_percentage == 0 && a.min_candidate_nodes_absolute == 0 {
            return Err("DefaultPreemptionArgs: minCandidateNodesPercentage and minCandidateNodesAbsolute cannot both be zero".into());
        }
        Ok(DefaultPreemption {
            min_percentage: a.min_candidate_nodes_percentage,
            min_absolute: a.min_candidate_nodes_absolute,
        })
    }

    fn num_candidates(&self, nodes: usize) -> usize {
        let n = (nodes as i64 * self.min_percentage / 100).max(self.min_absolute);
        (n as usize).min(nodes)
    }

    /// Why the pod may not preempt, if it may not.
    fn ineligible(
        &self,
        ctx: &Ctx,
        pod: &PodInfo,
        statuses: &NodeToStatus,
    ) -> Option<&'static str> {
        if pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.preemption_policy.as_deref())
            == Some("Never")
        {
            return Some("not eligible due to preemptionPolicy=Never.");
        }
        let nominated = pod.nominated_node_name();
        if nominated.is_empty() {
            return None;
        }
        let idx = ctx.cache.node_index(nominated)?;
        if statuses.get(idx).code() == Code::UnschedulableAndUnresolvable {
            return None;
        }
        let blocked = ctx
            .cache
            .node(idx)
            .pods
            .iter()
            .any(|p| p.priority < pod.priority && terminating_by_preemption(p));
        blocked.then_some("not eligible due to a terminating pod on the nominated node.")
    }

    /// Splits victims into those whose eviction would exceed a PDB's allowed disruptions and
    /// the others (upstream `filterPodsWithPDBViolation`).
    fn split_by_pdb(
        ctx: &Ctx,
        victims: Vec<Arc<PodInfo>>,
    ) -> (Vec<Arc<PodInfo>>, Vec<Arc<PodInfo>>) {
        let pdbs: Vec<_> = ctx.cache.listers.pdbs.values().collect();
        let mut allowed: Vec<i64> = pdbs
            .iter()
            .map(|p| {
                p.status
                    .as_ref()
                    .map(|s| s.disruptions_allowed as i64)
                    .unwrap_or(0)
            })
            .collect();
        let selectors: Vec<Option<Selector>> = pdbs
            .iter()
            .map(|p| {
                Selector::from_label_selector(p.spec.as_ref().and_then(|s| s.selector.as_ref()))
                    .ok()
                    .filter(|s| !s.is_empty())
            })
            .collect();
        let (mut violating, mut ok) = (Vec::new(), Vec::new());
        for v in victims {
            let mut violated = false;
            if v.labels().is_some_and(|l| !l.is_empty()) {
                for (i, pdb) in pdbs.iter().enumerate() {
                    if pdb.metadata.namespace.as_deref() != Some(v.namespace.as_str()) {
                        continue;
                    }
                    let Some(sel) = &selectors[i] else { continue };
                    if !sel.matches(v.labels()) {
                        continue;
                    }
                    let already = pdb
                        .status
                        .as_ref()
                        .and_then(|s| s.disrupted_pods.as_ref())
                        .is_some_and(|d| d.contains_key(&v.name));
                    if already {
                        continue;
                    }
                    allowed[i] -= 1;
                    if allowed[i] < 0 {
                        violated = true;
                    }
                }
            }
            if violated {
                violating.push(v);
            } else {
                ok.push(v);
            }
        }
        (violating, ok)
    }

    /// The fewest, least important pods to evict from this node so the pod fits.
    fn select_victims(
        &self,
        fwk: &Framework,
        ctx: &Ctx,
        state: &CycleState,
        pod: &PodInfo,
        original: &NodeInfo,
        now: i128,
    ) -> Result<(Vec<Arc<PodInfo>>, i64), Status> {
        let mut node = original.clone();
        let mut state = state.clone();
        let mut potential: Vec<Arc<PodInfo>> = node
            .pods
            .iter()
            .filter(|p| p.priority < pod.priority)
            .cloned()
            .collect();
        for v in &potential {
            node.remove_pod(&v.key);
            let s = fwk.run_pre_filter_remove_pod(ctx, &mut state, pod, v, &node);
            if !s.is_success() {
                return Err(s);
            }
        }
        if potential.is_empty() {
            return Err(Status::unresolvable(NO_VICTIMS));
        }
        let s = fwk.run_filter_with_nominated_pods(ctx, &state, pod, &node);
        if !s.is_success() {
            return Err(s);
        }
        potential.sort_by(|a, b| more_important(a, b, now));
        let (violating, non_violating) = Self::split_by_pdb(ctx, potential);
        let mut victims = Vec::new();
        let mut violations = 0;
        for (group, counts) in [(violating, true), (non_violating, false)] {
            for p in group {
                node.add_pod(p.clone());
                let s = fwk.run_pre_filter_add_pod(ctx, &mut state, pod, &p, &node);
                if !s.is_success() {
                    return Err(s);
                }
                if !fwk
                    .run_filter_with_nominated_pods(ctx, &state, pod, &node)
                    .is_success()
                {
                    node.remove_pod(&p.key);
                    let s = fwk.run_pre_filter_remove_pod(ctx, &mut state, pod, &p, &node);
                    if !s.is_success() {
                        return Err(s);
                    }
                    victims.push(p);
                    if counts {
                        violations += 1;
                    }
                }
            }
        }
        if victims.is_empty() {
            return Err(Status::error(format!(
                "expected at least one victim pod on node {:?}",
                original.name()
            )));
        }
        Ok((victims, violations))
    }
}

/// Upstream `pickOneNodeForPreemption`: fewest PDB violations, then the lowest highest victim
/// priority, the lowest sum of priorities, the fewest victims, the latest start time.
fn pick_candidate(cands: &[Candidate], now: i128) -> usize {
    type Score = Box<dyn Fn(&Candidate) -> i128>;
    let scores: Vec<Score> = vec![
        Box::new(|c: &Candidate| -(c.pdb_violations as i128)),
        Box::new(|c: &Candidate| -(c.victims[0].priority as i128)),
        Box::new(|c: &Candidate| {
            -c.victims
                .iter()
                .map(|v| v.priority as i128 + i32::MAX as i128 + 1)
                .sum::<i128>()
        }),
        Box::new(|c: &Candidate| -(c.victims.len() as i128)),
        Box::new(move |c: &Candidate| {
            let top = c.victims.iter().map(|v| v.priority).max().unwrap_or(0);
            c.victims
                .iter()
                .filter(|v| v.priority == top)
                .map(|v| start_nanos(v, now))
                .min()
                .unwrap_or(now)
        }),
    ];
    let mut remaining: Vec<usize> = (0..cands.len()).collect();
    for f in &scores {
        let best = remaining.iter().map(|i| f(&cands[*i])).max().unwrap_or(0);
        remaining.retain(|i| f(&cands[*i]) == best);
        if remaining.len() == 1 {
            break;
        }
    }
    remaining[0]
}

fn not_helpful(num_all_nodes: usize, statuses: NodeToStatus) -> String {
    let mut statuses = statuses;
    statuses.set_absent(Status::unresolvable(NOT_HELPFUL));
    let fit = FitError {
        num_all_nodes,
        diagnosis: Diagnosis {
            node_to_status: statuses,
            ..Default::default()
        },
    };
    fit.message()
}

#[async_trait]
impl Plugin for DefaultPreemption {
    fn name(&self) -> &'static str {
        "DefaultPreemption"
    }
    fn points(&self) -> u32 {
        points::POST_FILTER
    }

    fn post_filter(
        &self,
        fwk: &Framework,
        ctx: &Ctx,
        state: &CycleState,
        pod: &PodInfo,
        statuses: &NodeToStatus,
    ) -> (Option<PostFilterResult>, Status) {
        let wrap = |code: Code, msg: String| Status::new(code, format!("preemption: {msg}"));
        if let Some(msg) = self.ineligible(ctx, pod, statuses) {
            return (None, wrap(Code::Unschedulable, msg.to_string()));
        }
        let num_all = ctx.cache.num_nodes();
        if num_all == 0 {
            return (None, Status::error("preemption: no nodes available"));
        }
        let potential =
            statuses.nodes_with_code(ctx.cache.order().iter().copied(), Code::Unschedulable);
        let clear = PostFilterResult {
            nominated_node: Some(String::new()),
            preemption: None,
        };
        if potential.is_empty() {
            return (
                Some(clear),
                wrap(
                    Code::Unschedulable,
                    not_helpful(num_all, NodeToStatus::new()),
                ),
            );
        }
        let now = k8s_openapi::jiff::Timestamp::now().as_nanosecond();
        let offset = rand::rng().random_range(0..potential.len());
        let wanted = self.num_candidates(potential.len());
        let mut non_violating = Vec::new();
        let mut violating = Vec::new();
        let mut node_statuses = NodeToStatus::new();
        let mut errors = Vec::new();
        for i in 0..potential.len() {
            let idx = potential[(offset + i) % potential.len()];
            match self.select_victims(fwk, ctx, state, pod, ctx.cache.node(idx), now) {
                Ok((victims, violations)) => {
                    let c = Candidate {
                        node: idx,
                        victims,
                        pdb_violations: violations,
                    };
                    if violations == 0 {
                        non_violating.push(c);
                    } else {
                        violating.push(c);
                    }
                    if !non_violating.is_empty() && non_violating.len() + violating.len() >= wanted
                    {
                        break;
                    }
                }
                Err(s) => {
                    if s.code() == Code::Error {
                        errors.push(s.message());
                    }
                    node_statuses.set(idx, s);
                }
            }
        }
        let mut candidates = non_violating;
        candidates.extend(violating);
        if candidates.is_empty() {
            if !errors.is_empty() {
                return (
                    None,
                    Status::error(format!("preemption: {}", errors.join(", "))),
                );
            }
            return (
                Some(clear),
                wrap(Code::Unschedulable, not_helpful(num_all, node_statuses)),
            );
        }
        let best = if candidates.len() == 1 {
            0
        } else {
            pick_candidate(&candidates, now)
        };
        let chosen = candidates.swap_remove(best);
        let node_name = ctx.cache.node(chosen.node).name().to_string();
        let clear_nominated = ctx
            .nominator
            .pods_for_node(&node_name)
            .iter()
            .filter(|p| p.priority < pod.priority)
            .cloned()
            .collect();
        (
            Some(PostFilterResult {
                nominated_node: Some(node_name.clone()),
                preemption: Some(Preemption {
                    node: node_name,
                    victims: chosen.victims,
                    clear_nominated,
                }),
            }),
            Status::success(),
        )
    }
}

/// Binds through the `pods/binding` subresource.
pub struct DefaultBinder;

#[async_trait]
impl Plugin for DefaultBinder {
    fn name(&self) -> &'static str {
        "DefaultBinder"
    }
    fn points(&self) -> u32 {
        points::BIND
    }
    async fn bind(&self, api: &ApiClient, pod: &PodInfo, node: &str) -> Status {
        match api.bind(&pod.namespace, &pod.name, &pod.uid, node).await {
            Ok(()) => Status::success(),
            Err(e) => Status::error(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::framework::runtime::PluginLists;
    use crate::scheduler::plugins::fit::Fit;
    use crate::scheduler::testutil::{ctx_for, node, pod_in};
    use serde_json::json;

    fn fwk(preemption: DefaultPreemption) -> Framework {
        let fit: Arc<dyn Plugin> = Arc::new(Fit::new(None).unwrap());
        Framework::new(
            "default-scheduler",
            None,
            PluginLists {
                filter: vec![fit],
                post_filter: vec![Arc::new(preemption)],
                ..Default::default()
            },
        )
    }

    fn cpu_pod(name: &str, cpu: &str, priority: i32, labels: serde_json::Value) -> PodInfo {
        let mut p = pod_in(
            json!({"name": name, "labels": labels}),
            json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}),
        );
        p.priority = priority;
        p
    }

    fn statuses_after_filter(f: &Framework, ctx: &Ctx, p: &PodInfo) -> NodeToStatus {
        let mut m = NodeToStatus::new();
        for &i in ctx.cache.order() {
            let s = f.run_filter(ctx, &CycleState::new(), p, ctx.cache.node(i));
            if !s.is_success() {
                m.set(i, s);
            }
        }
        m
    }

    #[test]
    fn evicts_the_fewest_lowest_priority_pods() {
        let (mut cache, nom) = ctx_for(vec![node(
            "n1",
            json!({"status": {"allocatable": {"cpu": "4", "pods": "10"}}}),
        )]);
        cache
            .assume_pod(Arc::new(cpu_pod("low-a", "2", 1, json!({}))), "n1")
            .unwrap();
        cache
            .assume_pod(Arc::new(cpu_pod("low-b", "1", 2, json!({}))), "n1")
            .unwrap();
        cache
            .assume_pod(Arc::new(cpu_pod("same", "1", 100, json!({}))), "n1")
            .unwrap();
        let ctx = Ctx {
            cache: &cache,
            nominator: &nom,
        };
        let f = fwk(DefaultPreemption::new(None).unwrap());
        let p = cpu_pod("hi", "2", 100, json!({}));
        let statuses = statuses_after_filter(&f, &ctx, &p);
        let (r, s) = f.run_post_filter(&ctx, &CycleState::new(), &p, &statuses);
        assert!(s.is_success(), "{s:?}");
        let r = r.unwrap();
        assert_eq!(r.nominated_node.as_deref(), Some("n1"));
        let victims: Vec<&str> = r
            .preemption
            .as_ref()
            .unwrap()
            .victims
            .iter()
            .map(|v| v.name.as_str())
            .collect();
        // Removing low-a (2 cpu) alone is enough; low-b (higher priority) is reprieved.
        assert_eq!(victims, ["low-a"]);
    }

    #[test]
    fn messages_when_preemption_cannot_help() {
        let (mut cache, nom) = ctx_for(vec![
            node(
                "n1",
                json!({"status": {"allocatable": {"cpu": "1", "pods": "10"}}}),
            ),
            node(
                "tainted",
                json!({"status": {"allocatable": {"cpu": "8", "pods": "10"}}}),
            ),
        ]);
        cache
            .assume_pod(Arc::new(cpu_pod("peer", "500m", 100, json!({}))), "n1")
            .unwrap();
        let ctx = Ctx {
            cache: &cache,
            nominator: &nom,
        };
        let f = fwk(DefaultPreemption::new(None).unwrap());
        let p = cpu_pod("big", "2", 100, json!({}));
        let mut statuses = statuses_after_filter(&f, &ctx, &p);
        // Pretend the second node was rejected for an unresolvable reason.
        statuses.set(
            cache.node_index("tainted").unwrap(),
            Status::unresolvable("node(s) had untolerated taint {k: v}"),
        );
        let (r, s) = f.run_post_filter(&ctx, &CycleState::new(), &p, &statuses);
        assert_eq!(r.unwrap().nominated_node.as_deref(), Some(""));
        assert_eq!(
            s.message(),
            "preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling."
        );
        let mut never = cpu_pod("never", "2", 100, json!({}));
        let mut raw = (*never.pod).clone();
        raw.spec.as_mut().unwrap().preemption_policy = Some("Never".into());
        never = PodInfo::new(Arc::new(raw), 100);
        let (_, s) = f.run_post_filter(&ctx, &CycleState::new(), &never, &statuses);
        assert_eq!(
            s.message(),
            "preemption: not eligible due to preemptionPolicy=Never."
        );
        let mut all_unresolvable = NodeToStatus::new();
        all_unresolvable.set(0, Status::unresolvable("x"));
        let (_, s) = f.run_post_filter(&ctx, &CycleState::new(), &p, &all_unresolvable);
        assert_eq!(
            s.message(),
            "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
        );
    }

    #[test]
    fn pdb_violations_are_avoided_when_possible() {
        let (mut cache, nom) = ctx_for(vec![
            node(
                "guarded",
                json!({"status": {"allocatable": {"cpu": "1", "pods": "10"}}}),
            ),
            node(
                "free",
                json!({"status": {"allocatable": {"cpu": "1", "pods": "10"}}}),
            ),
        ]);
        cache
            .assume_pod(
                Arc::new(cpu_pod("g", "1", 0, json!({"app": "db"}))),
                "guarded",
            )
            .unwrap();
        cache
            .assume_pod(
                Arc::new(cpu_pod("f", "1", 0, json!({"app": "web"}))),
                "free",
            )
            .unwrap();
        cache.listers.pdbs.insert(
            "default/db".into(),
            Arc::new(
                serde_json::from_value(json!({"metadata": {"name": "db", "namespace": "default"},
                    "spec": {"selector": {"matchLabels": {"app": "db"}}},
                    "status": {"disruptionsAllowed": 0, "currentHealthy": 1, "desiredHealthy": 1, "expectedPods": 1, "observedGeneration": 1}}))
                .unwrap(),
            ),
        );
        let ctx = Ctx {
            cache: &cache,
            nominator: &nom,
        };
        let f = fwk(DefaultPreemption::new(None).unwrap());
        let p = cpu_pod("hi", "1", 10, json!({}));
        let statuses = statuses_after_filter(&f, &ctx, &p);
        for _ in 0..5 {
            let (r, s) = f.run_post_filter(&ctx, &CycleState::new(), &p, &statuses);
            assert!(s.is_success());
            assert_eq!(r.unwrap().nominated_node.as_deref(), Some("free"));
        }
    }

    #[test]
    fn candidate_ordering() {
        let now = 1_000;
        let v = |prio| Arc::new(cpu_pod("v", "1", prio, json!({})));
        let cands = vec![
            Candidate {
                node: 0,
                victims: vec![v(5)],
                pdb_violations: 1,
            },
            Candidate {
                node: 1,
                victims: vec![v(5), v(1)],
                pdb_violations: 0,
            },
            Candidate {
                node: 2,
                victims: vec![v(3)],
                pdb_violations: 0,
            },
        ];
        assert_eq!(pick_candidate(&cands, now), 2);
        assert_eq!(DefaultPreemption::new(None).unwrap().num_candidates(50), 50);
        assert_eq!(
            DefaultPreemption::new(None).unwrap().num_candidates(5000),
            500
        );
    }
}
