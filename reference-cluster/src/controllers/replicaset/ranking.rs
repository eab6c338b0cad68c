//! Which pods a ReplicaSet deletes first when it scales down: upstream's
//! `ActivePodsWithRanks` order. Earlier in the order means deleted sooner.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

use crate::controllers::runtime::pods;

const DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

fn phase_ordinal(pod: &Pod) -> u8 {
    match pods::phase(pod) {
        "Pending" => 0,
        "Unknown" => 1,
        "Running" => 2,
        _ => 3,
    }
}

fn deletion_cost(pod: &Pod) -> i32 {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DELETION_COST))
        .and_then(|v| v.parse::<i32>().ok())
        .unwrap_or(0)
}

fn node(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

/// `afterOrZero`: a zero time sorts first, otherwise the later time does.
fn after_or_zero(a: Option<Timestamp>, b: Option<Timestamp>) -> bool {
    match (a, b) {
        (None, _) | (_, None) => a.is_none(),
        (Some(a), Some(b)) => a > b,
    }
}

/// `logarithmicRankDiff`: compares ages on a log2 scale (nanoseconds), so pods of similar age
/// count as equal and the tie falls to the UID (spreading deletions randomly).
fn log_rank_diff(a: Timestamp, b: Timestamp, now: Timestamp) -> i64 {
    let rank = |t: Timestamp| {
        let d = now.duration_since(t).as_nanos();
        if d > 0 {
            (d as f64).log2() as i64
        } else {
            -1
        }
    };
    rank(a) - rank(b)
}

/// Compares two times by upstream's logarithmic scale-down rule (true: `a` goes first).
fn time_less(
    a: Option<Timestamp>,
    b: Option<Timestamp>,
    now: Timestamp,
    ua: &str,
    ub: &str,
) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => {
            let diff = log_rank_diff(x, y, now);
            if diff == 0 {
                ua < ub
            } else {
                diff < 0
            }
        }
        _ => after_or_zero(a, b),
    }
}

/// Whether pod `i` should be deleted before pod `j`.
fn less(a: &Pod, rank_a: usize, b: &Pod, rank_b: usize, now: Timestamp) -> bool {
    // 1. Unassigned < assigned.
    let (na, nb) = (node(a), node(b));
    if na != nb && (na.is_empty() || nb.is_empty()) {
        return na.is_empty();
    }
    // 2. Pending < Unknown < Running.
    if phase_ordinal(a) != phase_ordinal(b) {
        return phase_ordinal(a) < phase_ordinal(b);
    }
    // 3. Not ready < ready.
    let (ra, rb) = (pods::is_ready(a), pods::is_ready(b));
    if ra != rb {
        return !ra;
    }
    // 4. Lower pod-deletion-cost < higher.
    let (ca, cb) = (deletion_cost(a), deletion_cost(b));
    if ca != cb {
        return ca < cb;
    }
    // 5. Doubled up (more related pods on the same node) < not doubled up.
    if rank_a != rank_b {
        return rank_a > rank_b;
    }
    let ua = a.metadata.uid.as_deref().unwrap_or_default();
    let ub = b.metadata.uid.as_deref().unwrap_or_default();
    // 6. Ready for a shorter time < longer.
    if ra && rb {
        let (ta, tb) = (pods::ready_since(a), pods::ready_since(b));
        if ta != tb {
            return time_less(ta, tb, now, ua, ub);
        }
    }
    // 7. More container restarts < fewer.
    let (xa, xb) = (pods::max_restarts(a), pods::max_restarts(b));
    if xa != xb {
        return xa > xb;
    }
    // 8. Newer < older.
    let ta = a.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let tb = b.metadata.creation_timestamp.as_ref().map(|t| t.0);
    if ta != tb {
        return time_less(ta, tb, now, ua, ub);
    }
    false
}

/// The `n` pods to delete from `pods`. `related` are all active pods of this controller's
/// siblings (ReplicaSets of the same Deployment, this one included): a pod sharing its node
/// with many of them ranks higher, so scale-down spreads what remains.
pub fn pods_to_delete(
    pods: &[Arc<Pod>],
    related: &[Arc<Pod>],
    n: usize,
    now: Timestamp,
) -> Vec<Arc<Pod>> {
    if n >= pods.len() {
        return pods.to_vec();
    }
    let mut per_node: HashMap<&str, usize> = HashMap::new();
    for p in related {
        let nn = node(p);
        if !nn.is_empty() && pods::is_active(p) {
            *per_node.entry(nn).or_default() += 1;
        }
    }
    let ranked: Vec<(Arc<Pod>, usize)> = pods
        .iter()
        .map(|p| {
            let r = per_node.get(node(p)).copied().unwrap_or(0);
            (p.clone(), r)
        })
        .collect();
    let ranked = merge_sort(
        ranked,
        &|(a, ra): &(Arc<Pod>, usize), (b, rb): &(Arc<Pod>, usize)| less(a, *ra, b, *rb, now),
    );
    ranked.into_iter().take(n).map(|(p, _)| p).collect()
}

/// A stable merge sort driven by a "less" function. Upstream's order is not guaranteed to be
/// transitive (the logarithmic time buckets), which the standard library's sorts may reject
/// with a panic; merging never does.
pub fn merge_sort<T>(mut v: Vec<T>, less: &dyn Fn(&T, &T) -> bool) -> Vec<T> {
    if v.len() <= 1 {
        return v;
    }
    let right = v.split_off(v.len() / 2);
    let left = merge_sort(v, less);
    let right = merge_sort(right, less);
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut l = left.into_iter().peekable();
    let mut r = right.into_iter().peekable();
    loop {
        match (l.peek(), r.peek()) {
            (Some(a), Some(b)) => {
                if less(b, a) {
                    out.extend(r.next());
                } else {
                    out.extend(l.next());
                }
            }
            (Some(_), None) => out.extend(l.next()),
            (None, Some(_)) => out.extend(r.next()),
            (None, None) => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerStatus, PodCondition, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    struct P {
        name: &'static str,
        node: &'static str,
        phase: &'static str,
        ready_at: Option<i64>,
        created: i64,
        restarts: i32,
        cost: Option<&'static str>,
    }

    fn build(p: &P) -> Arc<Pod> {
        let mut pod = Pod::default();
        pod.metadata.name = Some(p.name.into());
        pod.metadata.uid = Some(p.name.into());
        pod.metadata.creation_timestamp = Some(Time(Timestamp::from_second(p.created).unwrap()));
        if let Some(c) = p.cost {
            pod.metadata.annotations = Some([(DELETION_COST.to_string(), c.to_string())].into());
        }
        pod.spec = Some(PodSpec {
            node_name: (!p.node.is_empty()).then(|| p.node.to_string()),
            ..Default::default()
        });
        pod.status = Some(PodStatus {
            phase: Some(p.phase.into()),
            conditions: p.ready_at.map(|t| {
                vec![PodCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    last_transition_time: Some(Time(Timestamp::from_second(t).unwrap())),
                    ..Default::default()
                }]
            }),
            container_statuses: Some(vec![ContainerStatus {
                name: "c".into(),
                restart_count: p.restarts,
                ..Default::default()
            }]),
            ..Default::default()
        });
        Arc::new(pod)
    }

    fn base(name: &'static str) -> P {
        P {
            name,
            node: "n1",
            phase: "Running",
            ready_at: Some(100),
            created: 50,
            restarts: 0,
            cost: None,
        }
    }

    fn order(ps: &[P], related: &[P]) -> Vec<String> {
        let pods: Vec<_> = ps.iter().map(build).collect();
        let rel: Vec<_> = related.iter().map(build).collect();
        let now = Timestamp::from_second(1_000_000).unwrap();
        pods_to_delete(&pods, &rel, pods.len() - 1, now)
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect()
    }

    #[test]
    fn upstream_precedence() {
        let unscheduled = P {
            node: "",
            phase: "Pending",
            ready_at: None,
            ..base("unscheduled")
        };
        let pending = P {
            phase: "Pending",
            ready_at: None,
            ..base("pending")
        };
        let unknown = P {
            phase: "Unknown",
            ready_at: None,
            ..base("unknown")
        };
        let not_ready = P {
            ready_at: None,
            ..base("not-ready")
        };
        let cheap = P {
            cost: Some("-5"),
            ..base("cheap")
        };
        let ready = base("ready");
        let keep = P {
            cost: Some("10"),
            ..base("keep")
        };
        assert_eq!(
            order(
                &[keep, ready, cheap, not_ready, unknown, pending, unscheduled],
                &[]
            ),
            [
                "unscheduled",
                "pending",
                "unknown",
                "not-ready",
                "cheap",
                "ready"
            ]
        );
    }

    #[test]
    fn doubled_up_pods_go_before_lonely_ones() {
        let crowded = P {
            node: "busy",
            ..base("crowded")
        };
        let alone = P {
            node: "quiet",
            ..base("alone")
        };
        let sibling = P {
            node: "busy",
            ..base("sibling")
        };
        assert_eq!(order(&[alone, crowded], &[sibling]), ["crowded"]);
    }

    #[test]
    fn restarts_then_age_break_ties() {
        let flaky = P {
            restarts: 3,
            ..base("flaky")
        };
        let steady = base("steady");
        assert_eq!(order(&[steady, flaky], &[]), ["flaky"]);
        // Ready much more recently: deleted first (log scale sees a difference).
        let fresh = P {
            ready_at: Some(999_990),
            ..base("fresh")
        };
        let old = base("old");
        assert_eq!(order(&[old, fresh], &[]), ["fresh"]);
        // Created much later: deleted first.
        let young = P {
            created: 999_000,
            ready_at: None,
            ..base("young")
        };
        let elder = P {
            ready_at: None,
            ..base("elder")
        };
        assert_eq!(order(&[elder, young], &[]), ["young"]);
    }

    #[test]
    fn merge_sort_is_stable() {
        let v = vec![(2, 'a'), (1, 'b'), (2, 'c'), (0, 'd'), (1, 'e')];
        let sorted = merge_sort(v, &|x: &(i32, char), y: &(i32, char)| x.0 < y.0);
        assert_eq!(
            sorted,
            vec![(0, 'd'), (1, 'b'), (1, 'e'), (2, 'a'), (2, 'c')]
        );
    }

    #[test]
    fn asking_for_all_returns_all() {
        let pods: Vec<_> = [base("a"), base("b")].iter().map(build).collect();
        assert_eq!(pods_to_delete(&pods, &[], 5, Timestamp::now()).len(), 2);
    }
}
