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
