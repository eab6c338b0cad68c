//! Stopping and starting the target's control-plane components, for chaos scenarios. Only a
//! runner that started the cluster itself can do this (the bundled cluster); on any other target
//! the `component-control` capability is absent and such scenarios are skipped with the reason.

/// What the runner can do to the target's components. Names are upstream's:
/// `kube-scheduler`, `kube-controller-manager`.
pub trait ClusterControl: Send + Sync + std::fmt::Debug {
    /// The components that can be stopped and started.
    fn components(&self) -> Vec<String>;
    /// Kills the component, as SIGKILL would (its Lease, if it leads, stays held until it
    /// expires).
    fn stop(&self, component: &str) -> anyhow::Result<()>;
    /// Starts a stopped component again.
    fn start(&self, component: &str) -> anyhow::Result<()>;
}

/// Compacting the target's storage history on demand, as `etcdctl compact` does. Only a runner
/// that started the cluster itself can do this; elsewhere the `compaction-control` capability is
/// absent (a real cluster's API server compacts etcd every 5 minutes on its own).
pub trait HistoryControl: Send + Sync + std::fmt::Debug {
    /// Forgets every revision up to the current one and returns it: a watch from an older
    /// resourceVersion can no longer be served.
    fn compact(&self) -> futures::future::BoxFuture<'_, anyhow::Result<i64>>;
}
