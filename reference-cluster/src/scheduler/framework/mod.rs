//! The scheduling framework: the plugin interface with upstream's extension points, per-cycle
//! state, and the per-profile runtime that calls the plugins in order (`runtime`).

pub mod diagnosis;
pub mod events;
pub mod runtime;
pub mod status;
pub mod waiting;

use std::any::Any;
use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;

pub use diagnosis::{Diagnosis, FitError, NodeToStatus};
pub use events::ClusterEvent;
pub use runtime::Framework;
pub use status::{Code, Status};

use super::api::ApiClient;
use super::cache::Cache;
use super::nodeinfo::NodeInfo;
use super::podinfo::PodInfo;
use super::queue::Nominator;

/// Highest score a Score plugin may give after normalisation.
pub const MAX_NODE_SCORE: i64 = 100;

/// Extension points a plugin implements, as bits.
pub mod points {
    pub const PRE_ENQUEUE: u32 = 1;
    pub const PRE_FILTER: u32 = 1 << 1;
    /// `add_pod`/`remove_pod`: keeps PreFilter state right when preemption moves pods.
    pub const PRE_FILTER_EXTENSIONS: u32 = 1 << 2;
    pub const FILTER: u32 = 1 << 3;
    pub const POST_FILTER: u32 = 1 << 4;
    pub const PRE_SCORE: u32 = 1 << 5;
    pub const SCORE: u32 = 1 << 6;
    pub const RESERVE: u32 = 1 << 7;
    pub const PERMIT: u32 = 1 << 8;
    pub const PRE_BIND: u32 = 1 << 9;
    pub const BIND: u32 = 1 << 10;
    pub const QUEUE_SORT: u32 = 1 << 11;
}

/// What plugins may read during a cycle.
pub struct Ctx<'a> {
    pub cache: &'a Cache,
    pub nominator: &'a Nominator,
}

/// Plugin state for one scheduling cycle, keyed by plugin. Cloned when preemption simulates
/// removing pods, so each entry must be cloneable.
#[derive(Default)]
pub struct CycleState {
    entries: Vec<(&'static str, Box<dyn StateData>)>,
    /// Plugins whose PreFilter said Skip: their Filter is not run.
    pub skip_filter: BTreeSet<&'static str>,
    /// Plugins whose PreScore said Skip: their Score is not run.
    pub skip_score: BTreeSet<&'static str>,
    /// `skip_filter` as bits over the profile's Filter plugins, so the per-node loop does not
    /// look names up.
    pub(crate) skip_filter_mask: u128,
}

pub trait StateData: Any + Send + Sync {
    fn clone_box(&self) -> Box<dyn StateData>;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: Any + Clone + Send + Sync> StateData for T {
    fn clone_box(&self) -> Box<dyn StateData> {
        Box::new(self.clone())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

impl Clone for CycleState {
    fn clone(&self) -> Self {
        CycleState {
            entries: self
                .entries
                .iter()
                .map(|(k, v)| (*k, (**v).clone_box()))
                .collect(),
            skip_filter: self.skip_filter.clone(),
            skip_score: self.skip_score.clone(),
            skip_filter_mask: self.skip_filter_mask,
        }
    }
}

impl CycleState {
    pub fn new() -> CycleState {
        CycleState::default()
    }

    pub fn write<T: StateData>(&mut self, key: &'static str, value: T) {
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(e) => e.1 = Box::new(value),
            None => self.entries.push((key, Box::new(value))),
        }
    }

    pub fn read<T: 'static>(&self, key: &'static str) -> Option<&T> {
        self.entries
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| (**v).as_any().downcast_ref())
    }

    pub fn read_mut<T: 'static>(&mut self, key: &'static str) -> Option<&mut T> {
        self.entries
            .iter_mut()
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| (**v).as_any_mut().downcast_mut())
    }
}

/// Nodes a PreFilter plugin narrowed the search to; `None` means all nodes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PreFilterResult {
    pub node_names: Option<BTreeSet<String>>,
}

impl PreFilterResult {
    pub fn all_nodes(&self) -> bool {
        self.node_names.is_none()
    }

    /// Intersection of two results.
    pub fn merge(self, other: PreFilterResult) -> PreFilterResult {
        match (self.node_names, other.node_names) {
            (None, x) | (x, None) => PreFilterResult { node_names: x },
            (Some(a), Some(b)) => PreFilterResult {
                node_names: Some(a.intersection(&b).cloned().collect()),
            },
        }
    }
}

/// What preemption decided: victims to delete so the pod fits on `node` next time.
#[derive(Clone, Debug)]
pub struct Preemption {
    pub node: String,
    pub victims: Vec<Arc<PodInfo>>,
    /// Lower-priority pods nominated to the same node, which lose their nomination.
    pub clear_nominated: Vec<Arc<PodInfo>>,
}

#[derive(Clone, Debug, Default)]
pub struct PostFilterResult {
    /// `Some(node)` sets the pod's nominated node; `Some("")` clears it; `None` leaves it.
    pub nominated_node: Option<String>,
    pub preemption: Option<Preemption>,
}

/// A scheduling plugin. Each method is one extension point; `points()` says which ones the
/// plugin implements, and the framework calls only those.
#[async_trait]
pub trait Plugin: Send + Sync {
    fn name(&self) -> &'static str;

    fn points(&self) -> u32;

    /// Cluster events after which a pod this plugin rejected may fit.
    fn events_to_register(&self) -> Vec<ClusterEvent> {
        Vec::new()
    }

    fn pre_enqueue(&self, _pod: &PodInfo) -> Status {
        Status::success()
    }

    fn pre_filter(
        &self,
        _ctx: &Ctx,
        _state: &mut CycleState,
        _pod: &PodInfo,
    ) -> (Option<PreFilterResult>, Status) {
        (None, Status::success())
    }

    fn add_pod(
        &self,
        _ctx: &Ctx,
        _state: &mut CycleState,
        _pod: &PodInfo,
        _added: &Arc<PodInfo>,
        _node: &NodeInfo,
    ) -> Status {
        Status::success()
    }

    fn remove_pod(
        &self,
        _ctx: &Ctx,
        _state: &mut CycleState,
        _pod: &PodInfo,
        _removed: &Arc<PodInfo>,
        _node: &NodeInfo,
    ) -> Status {
        Status::success()
    }

    fn filter(&self, _ctx: &Ctx, _state: &CycleState, _pod: &PodInfo, _node: &NodeInfo) -> Status {
        Status::success()
    }

    fn post_filter(
        &self,
        _fwk: &Framework,
        _ctx: &Ctx,
        _state: &CycleState,
        _pod: &PodInfo,
        _statuses: &NodeToStatus,
    ) -> (Option<PostFilterResult>, Status) {
        (None, Status::code_only(Code::Unschedulable))
    }

    /// `nodes` are indices into the cache of the nodes that passed filtering.
    fn pre_score(
        &self,
        _ctx: &Ctx,
        _state: &mut CycleState,
        _pod: &PodInfo,
        _nodes: &[usize],
    ) -> Status {
        Status::success()
    }

    fn score(
        &self,
        _ctx: &Ctx,
        _state: &CycleState,
        _pod: &PodInfo,
        _node: &NodeInfo,
    ) -> Result<i64, Status> {
        Ok(0)
    }

    /// Rescales the raw scores (aligned with `nodes`) into `0..=MAX_NODE_SCORE`.
    fn normalize_score(
        &self,
        _ctx: &Ctx,
        _state: &CycleState,
        _pod: &PodInfo,
        _nodes: &[usize],
        _scores: &mut [i64],
    ) -> Status {
        Status::success()
    }

    fn reserve(&self, _ctx: &Ctx, _state: &mut CycleState, _pod: &PodInfo, _node: &str) -> Status {
        Status::success()
    }

    fn unreserve(&self, _ctx: &Ctx, _state: &mut CycleState, _pod: &PodInfo, _node: &str) {}

    /// Success, a rejection, or `Code::Wait` with how long the pod may wait for this plugin's
    /// Allow (the duration is ignored otherwise).
    fn permit(
        &self,
        _ctx: &Ctx,
        _state: &CycleState,
        _pod: &PodInfo,
        _node: &str,
    ) -> (Status, std::time::Duration) {
        (Status::success(), std::time::Duration::ZERO)
    }

    async fn pre_bind(&self, _api: &ApiClient, _pod: &PodInfo, _node: &str) -> Status {
        Status::success()
    }

    /// Binds the pod; Skip lets the next bind plugin do it.
    async fn bind(&self, _api: &ApiClient, _pod: &PodInfo, _node: &str) -> Status {
        Status::skip()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    struct Counter(u32);

    #[test]
    fn cycle_state_reads_writes_and_clones() {
        let mut s = CycleState::new();
        s.write("a", Counter(1));
        s.read_mut::<Counter>("a").unwrap().0 += 1;
        let copy = s.clone();
        s.write("a", Counter(10));
        assert_eq!(copy.read::<Counter>("a"), Some(&Counter(2)));
        assert_eq!(s.read::<Counter>("a"), Some(&Counter(10)));
        assert!(s.read::<u8>("a").is_none(), "wrong type reads nothing");
        assert!(s.read::<Counter>("b").is_none());
    }

    #[test]
    fn prefilter_results_intersect() {
        let set = |v: &[&str]| PreFilterResult {
            node_names: Some(v.iter().map(|s| s.to_string()).collect()),
        };
        assert_eq!(set(&["a", "b"]).merge(set(&["b", "c"])), set(&["b"]));
        assert_eq!(PreFilterResult::default().merge(set(&["a"])), set(&["a"]));
        assert!(PreFilterResult::default()
            .merge(PreFilterResult::default())
            .all_nodes());
    }
}
