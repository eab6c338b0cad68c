//! Why a pod fits nowhere, and the message users read in `FailedScheduling` events and the
//! `PodScheduled` condition. The format is upstream's `FitError.Error()`, byte for byte:
//!
//! `0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {k: v}.
//! preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling..`
//!
//! (reasons counted per node and sorted as strings; the doubled final period is upstream's too,
//! as the preemption message is itself a full sentence wrapped in another).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::status::{Code, Status};

/// Per-node filter results. Nodes without an entry have `absent`'s status (by default
/// UnschedulableAndUnresolvable, which preemption treats as hopeless).
#[derive(Clone, Debug)]
pub struct NodeToStatus {
    map: HashMap<usize, Status>,
    absent: Status,
}

impl Default for NodeToStatus {
    fn default() -> Self {
        NodeToStatus {
            map: HashMap::new(),
            absent: Status::code_only(Code::UnschedulableAndUnresolvable),
        }
    }
}

impl NodeToStatus {
    pub fn new() -> NodeToStatus {
        NodeToStatus::default()
    }

    pub fn get(&self, node: usize) -> &Status {
        self.map.get(&node).unwrap_or(&self.absent)
    }

    pub fn set(&mut self, node: usize, status: Status) {
        self.map.insert(node, status);
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn absent(&self) -> &Status {
        &self.absent
    }

    pub fn set_absent(&mut self, status: Status) {
        self.absent = status;
    }

    pub fn iter(&self) -> impl Iterator<Item = (&usize, &Status)> {
        self.map.iter()
    }

    /// Of `all` nodes, those whose status has `code`.
    pub fn nodes_with_code(&self, all: impl Iterator<Item = usize>, code: Code) -> Vec<usize> {
        if self.absent.code() == code {
            all.filter(|n| self.get(*n).code() == code).collect()
        } else {
            let mut v: Vec<usize> = self
                .map
                .iter()
                .filter(|(_, s)| s.code() == code)
                .map(|(n, _)| *n)
                .collect();
            v.sort_unstable();
            v
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Diagnosis {
    pub node_to_status: NodeToStatus,
    /// Plugins that turned the pod down (their events may make it schedulable).
    pub unschedulable_plugins: BTreeSet<&'static str>,
    pub pending_plugins: BTreeSet<&'static str>,
    /// Set when a PreFilter plugin rejected the pod before any node was looked at.
    pub pre_filter_msg: String,
    /// What preemption said.
    pub post_filter_msg: String,
}

impl Diagnosis {
    pub fn add_plugin_status(&mut self, s: &Status) {
        if s.plugin().is_empty() {
            return;
        }
        if s.code() == Code::Pending {
            self.pending_plugins.insert(s.plugin());
        } else if s.is_rejected() {
            self.unschedulable_plugins.insert(s.plugin());
        }
    }
}

#[derive(Clone, Debug)]
pub struct FitError {
    pub num_all_nodes: usize,
    pub diagnosis: Diagnosis,
}

impl FitError {
    /// Upstream's `FitError.Error()`.
    pub fn message(&self) -> String {
        let mut msg = format!("0/{} nodes are available:", self.num_all_nodes);
        let d = &self.diagnosis;
        if !d.pre_filter_msg.is_empty() {
            msg.push_str(&format!(" {}.", d.pre_filter_msg));
        } else {
            let reasons = reason_histogram(&d.node_to_status, self.num_all_nodes);
            if !reasons.is_empty() {
                msg.push_str(&format!(" {}.", reasons.join(", ")));
            }
        }
        if !d.post_filter_msg.is_empty() {
            msg.push_str(&format!(" {}.", d.post_filter_msg));
        }
        msg
    }
}

/// "N reason" for every reason, counted over nodes, sorted as plain strings (so "10 …" sorts
/// before "2 …", as upstream's `sort.Strings` does).
fn reason_histogram(statuses: &NodeToStatus, num_all_nodes: usize) -> Vec<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, s) in statuses.iter() {
        for r in s.reasons() {
            *counts.entry(r).or_default() += 1;
        }
    }
    if statuses.len() < num_all_nodes {
        let absent = num_all_nodes - statuses.len();
        for r in statuses.absent().reasons() {
            *counts.entry(r).or_default() += absent;
        }
    }
    let mut out: Vec<String> = counts
        .into_iter()
        .map(|(r, n)| format!("{n} {r}"))
        .collect();
    out.sort();
    out
}

/// A string list as Go's `%v` prints it: `[A B]`.
pub fn go_list(items: &[&str]) -> String {
    format!("[{}]", items.join(" "))
}

/// Event notes are limited to 1024 bytes; longer messages are cut and end in " ..." as
/// upstream's `truncateMessage` does.
pub fn truncate_event_message(msg: &str) -> String {
    const MAX: usize = 1024;
    const SUFFIX: &str = " ...";
    if msg.len() <= MAX {
        return msg.to_string();
    }
    let mut cut = MAX - SUFFIX.len();
    while !msg.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{SUFFIX}", &msg[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fit_error(n: usize, statuses: Vec<(usize, Status)>) -> FitError {
        let mut d = Diagnosis::default();
        for (i, s) in statuses {
            d.node_to_status.set(i, s);
        }
        FitError {
            num_all_nodes: n,
            diagnosis: d,
        }
    }

    #[test]
    fn counts_and_sorts_reasons() {
        let e = fit_error(
            3,
            vec![
                (0, Status::unschedulable("Insufficient cpu")),
                (
                    1,
                    Status::unresolvable("node(s) had untolerated taint {key: value}"),
                ),
                (
                    2,
                    Status::unresolvable("node(s) had untolerated taint {key: value}"),
                ),
            ],
        );
        assert_eq!(
            e.message(),
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {key: value}."
        );
    }

    #[test]
    fn several_reasons_on_one_node_each_count() {
        let e = fit_error(
            2,
            vec![
                (
                    0,
                    Status::with_reasons(
                        Code::Unschedulable,
                        vec!["Insufficient cpu".into(), "Insufficient memory".into()],
                    ),
                ),
                (1, Status::unschedulable("Insufficient memory")),
            ],
        );
        assert_eq!(
            e.message(),
            "0/2 nodes are available: 1 Insufficient cpu, 2 Insufficient memory."
        );
    }

    #[test]
    fn sorting_is_by_string_not_number() {
        let mut statuses: Vec<(usize, Status)> =
            (0..10).map(|i| (i, Status::unschedulable("b"))).collect();
        statuses.push((10, Status::unschedulable("a")));
        statuses.push((11, Status::unschedulable("a")));
        assert_eq!(
            fit_error(12, statuses).message(),
            "0/12 nodes are available: 10 b, 2 a."
        );
    }

    #[test]
    fn absent_nodes_get_the_absent_status() {
        let mut e = fit_error(5, vec![(0, Status::unschedulable("Insufficient cpu"))]);
        e.diagnosis.node_to_status.set_absent(Status::unresolvable(
            "node(s) didn't satisfy plugin(s) [NodeAffinity]",
        ));
        assert_eq!(
            e.message(),
            "0/5 nodes are available: 1 Insufficient cpu, 4 node(s) didn't satisfy plugin(s) [NodeAffinity]."
        );
    }

    #[test]
    fn prefilter_message_replaces_the_histogram_and_preemption_is_appended() {
        let mut e = fit_error(3, vec![]);
        e.diagnosis.pre_filter_msg = "pod has unbound immediate PersistentVolumeClaims".into();
        e.diagnosis.node_to_status.set_absent(Status::unresolvable(
            "pod has unbound immediate PersistentVolumeClaims",
        ));
        let mut inner = fit_error(3, vec![]);
        inner
            .diagnosis
            .node_to_status
            .set_absent(Status::unresolvable(
                "Preemption is not helpful for scheduling",
            ));
        e.diagnosis.post_filter_msg = format!("preemption: {}", inner.message());
        assert_eq!(
            e.message(),
            "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.."
        );
    }

    #[test]
    fn nodes_with_code_respects_absent_status() {
        let mut m = NodeToStatus::new();
        m.set(2, Status::unschedulable("x"));
        m.set(0, Status::unresolvable("y"));
        assert_eq!(m.nodes_with_code(0..4, Code::Unschedulable), vec![2]);
        m.set_absent(Status::unschedulable("z"));
        assert_eq!(m.nodes_with_code(0..4, Code::Unschedulable), vec![1, 2, 3]);
    }

    #[test]
    fn plugin_statuses_are_collected() {
        let mut d = Diagnosis::default();
        d.add_plugin_status(&Status::unschedulable("x").with_plugin("A"));
        d.add_plugin_status(&Status::new(Code::Pending, "y").with_plugin("B"));
        d.add_plugin_status(&Status::error("z").with_plugin("C"));
        assert_eq!(
            d.unschedulable_plugins.iter().copied().collect::<Vec<_>>(),
            ["A"]
        );
        assert_eq!(d.pending_plugins.iter().copied().collect::<Vec<_>>(), ["B"]);
    }

    #[test]
    fn long_messages_are_truncated_for_events() {
        let long = "é".repeat(600);
        let t = truncate_event_message(&long);
        assert!(t.len() <= 1024 && t.ends_with(" ..."));
        assert_eq!(truncate_event_message("short"), "short");
    }
}
