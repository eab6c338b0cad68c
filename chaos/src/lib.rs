//! kubeproof-chaos: failure injection. For now, the bundled cluster's components as things a
//! chaos scenario can stop and start ([`BundledComponents`]).

use kubeproof_refcluster::control::ComponentControl;
use kubeproof_steps::control::ClusterControl;

/// The components of a bundled cluster this process started, offered to the step library.
#[derive(Clone, Debug)]
pub struct BundledComponents(pub ComponentControl);

impl ClusterControl for BundledComponents {
    fn components(&self) -> Vec<String> {
        self.0
            .status()
            .into_iter()
            .map(|(n, _)| n.to_string())
            .collect()
    }

    fn stop(&self, component: &str) -> anyhow::Result<()> {
        self.0.stop(component)
    }

    fn start(&self, component: &str) -> anyhow::Result<()> {
        self.0.start(component)
    }
}

/// The store of a bundled cluster this process started, compacted on demand for scenarios
/// that need a watch's resourceVersion to fall out of history (`@needs:compaction-control`).
#[derive(Clone)]
pub struct BundledHistory(pub std::sync::Arc<dyn kubeproof_refcluster::store::Store>);

impl std::fmt::Debug for BundledHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BundledHistory")
    }
}

impl kubeproof_steps::control::HistoryControl for BundledHistory {
    fn compact(&self) -> futures::future::BoxFuture<'_, anyhow::Result<i64>> {
        Box::pin(async move {
            let revision = self.0.current_revision().await?;
            self.0.compact(revision).await?;
            Ok(revision)
        })
    }
}

/// The audit policy of the bundled cluster the suite runs against: the seed document's
/// (health probes not audited, Secrets at Metadata, writes to pods, services and ConfigMaps at
/// Request, everything else at Metadata without its RequestReceived stage).
pub const SUITE_AUDIT_POLICY: &str = include_str!("suite-audit-policy.yaml");

/// Turns on auditing for a bundled cluster about to start: writes [`SUITE_AUDIT_POLICY`] into
/// its data directory and logs to `audit.log` beside it.
pub fn enable_audit(cfg: &mut kubeproof_refcluster::cluster::ClusterConfig) -> anyhow::Result<()> {
    use anyhow::Context as _;
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("cannot create {}", cfg.data_dir.display()))?;
    let policy = cfg.data_dir.join("audit-policy.yaml");
    std::fs::write(&policy, SUITE_AUDIT_POLICY)
        .with_context(|| format!("cannot write the audit policy {}", policy.display()))?;
    cfg.apiserver.audit_policy_file = Some(policy);
    cfg.apiserver.audit_log_path = Some(cfg.data_dir.join("audit.log"));
    Ok(())
}

/// What a runner that started `cluster` itself can do beyond its API: stop and start its
/// components, compact its store, read its audit log and files, scrape its scheduler.
pub fn bundled_access(
    cluster: &kubeproof_refcluster::cluster::RunningCluster,
    opts: &mut kubeproof_steps::runner::RunOptions,
) {
    opts.host_access = true;
    opts.control = Some(std::sync::Arc::new(BundledComponents(cluster.control())));
    opts.history = Some(std::sync::Arc::new(BundledHistory(
        cluster.raw_store.clone(),
    )));
    opts.audit_log = cluster.server.config.audit_log_path.clone();
    opts.scheduler_metrics_url = cluster.scheduler_url();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_suite_audit_policy_parses_and_lands_in_the_data_directory() {
        kubeproof_refcluster::security::audit::Policy::parse(SUITE_AUDIT_POLICY).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = kubeproof_refcluster::cluster::ClusterConfig::for_tests(dir.path());
        enable_audit(&mut cfg).unwrap();
        let policy = cfg.apiserver.audit_policy_file.unwrap();
        assert_eq!(std::fs::read_to_string(policy).unwrap(), SUITE_AUDIT_POLICY);
        assert_eq!(
            cfg.apiserver.audit_log_path,
            Some(dir.path().join("audit.log"))
        );
    }

    #[tokio::test]
    async fn compaction_moves_the_floor_to_the_current_revision() {
        use kubeproof_refcluster::store::Store as _;
        use kubeproof_steps::control::HistoryControl as _;
        let store = std::sync::Arc::new(kubeproof_refcluster::store::memory::MemoryStore::new(100));
        store
            .create("/registry/configmaps/a/x", b"{}".to_vec().into())
            .await
            .unwrap();
        store
            .create("/registry/configmaps/a/y", b"{}".to_vec().into())
            .await
            .unwrap();
        let history = BundledHistory(store.clone());
        let rev = history.compact().await.unwrap();
        assert_eq!(rev, store.current_revision().await.unwrap());
        assert_eq!(store.compacted_revision(), rev);
    }
}
