//! Deliberate bugs the bundled cluster can be started with, to prove that the suite notices
//! when a cluster misbehaves (`kubeproof cluster up --inject-fault NAME`,
//! `kubeproof conformance --inject-fault NAME`).
//!
//! Every fault is off unless asked for by name; nothing in a normal run turns one on. Each one
//! mimics a plausible bug of a real distribution in one place of one component, so that the
//! scenarios checking that behaviour fail and the others keep passing.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// One injectable fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// The Deployment controller scales old ReplicaSets straight to zero during a rolling
    /// update instead of within `maxUnavailable`.
    DeploymentIgnoresMaxUnavailable,
    /// The Endpoints and EndpointSlice controllers publish every selected pod as ready, as if
    /// every Service had `publishNotReadyAddresses: true`.
    EndpointsIncludeUnready,
}

impl Fault {
    pub const ALL: [Fault; 2] = [
        Fault::DeploymentIgnoresMaxUnavailable,
        Fault::EndpointsIncludeUnready,
    ];

    /// The name users pass to `--inject-fault`.
    pub fn name(self) -> &'static str {
        match self {
            Fault::DeploymentIgnoresMaxUnavailable => "deployment-ignores-max-unavailable",
            Fault::EndpointsIncludeUnready => "endpoints-include-unready",
        }
    }

    /// One line for `--help` and error messages.
    pub fn description(self) -> &'static str {
        match self {
            Fault::DeploymentIgnoresMaxUnavailable => {
                "the Deployment controller scales old ReplicaSets to zero at once during a rolling update, ignoring maxUnavailable"
            }
            Fault::EndpointsIncludeUnready => {
                "the Endpoints and EndpointSlice controllers list pods that are not Ready as ready addresses"
            }
        }
    }

    /// The behaviour the fault breaks, as the catalogue names it.
    pub fn breaks(self) -> &'static str {
        match self {
            Fault::DeploymentIgnoresMaxUnavailable => "B-WL-008",
            Fault::EndpointsIncludeUnready => "B-NET-008",
        }
    }

    /// `name: description` lines of every fault, for error messages.
    pub fn list() -> String {
        Fault::ALL
            .iter()
            .map(|f| {
                format!(
                    "  {}: {} (breaks {})",
                    f.name(),
                    f.description(),
                    f.breaks()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Fault {
    type Err = String;

    fn from_str(s: &str) -> Result<Fault, String> {
        Fault::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown fault {s:?}; the bundled cluster can inject:\n{}",
                    Fault::list()
                )
            })
    }
}

/// The faults a cluster runs with; empty (a correct cluster) by default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Faults(BTreeSet<Fault>);

impl Faults {
    pub fn none() -> Faults {
        Faults::default()
    }

    pub fn insert(&mut self, fault: Fault) {
        self.0.insert(fault);
    }

    pub fn contains(&self, fault: Fault) -> bool {
        self.0.contains(&fault)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = Fault> + '_ {
        self.0.iter().copied()
    }
}

impl FromIterator<Fault> for Faults {
    fn from_iter<I: IntoIterator<Item = Fault>>(iter: I) -> Faults {
        Faults(iter.into_iter().collect())
    }
}

impl crate::cluster::ClusterConfig {
    /// Starts the cluster with these faults. Every fault lives in the controller-manager, so
    /// a cluster without one cannot carry them.
    pub fn inject_faults(&mut self, faults: Faults) -> anyhow::Result<()> {
        if faults.is_empty() {
            return Ok(());
        }
        let Some(controllers) = self.components.controllers.as_mut() else {
            anyhow::bail!(
                "the faults {} live in the controller-manager, which this cluster does not run (drop --api-only)",
                faults.iter().map(Fault::name).collect::<Vec<_>>().join(", ")
            );
        };
        controllers.faults = faults;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_unknown_names_list_the_choices() {
        for f in Fault::ALL {
            assert_eq!(f.name().parse::<Fault>(), Ok(f));
            assert!(!f.description().is_empty());
        }
        let err = "deployment-is-slow".parse::<Fault>().unwrap_err();
        assert!(err.contains("deployment-is-slow"), "{err}");
        assert!(err.contains("endpoints-include-unready"), "{err}");
    }

    #[test]
    fn a_default_cluster_has_no_faults() {
        let none = Faults::default();
        assert!(none.is_empty());
        assert!(Fault::ALL.iter().all(|f| !none.contains(*f)));
        let one: Faults = [Fault::EndpointsIncludeUnready].into_iter().collect();
        assert!(one.contains(Fault::EndpointsIncludeUnready));
        assert!(!one.contains(Fault::DeploymentIgnoresMaxUnavailable));
    }

    #[test]
    fn faults_reach_the_controller_manager_and_need_one() {
        let dir = std::path::Path::new("/nonexistent");
        let mut cfg = crate::cluster::ClusterConfig::with_components_for_tests(dir, 1);
        let none = cfg.components.controllers.as_ref().unwrap().faults.clone();
        assert!(none.is_empty(), "tests run a correct cluster");
        let faults: Faults = [Fault::DeploymentIgnoresMaxUnavailable]
            .into_iter()
            .collect();
        cfg.inject_faults(faults.clone()).unwrap();
        assert_eq!(cfg.components.controllers.as_ref().unwrap().faults, faults);

        let mut api_only = crate::cluster::ClusterConfig::for_tests(dir);
        api_only.inject_faults(Faults::none()).unwrap();
        let err = api_only.inject_faults(faults).unwrap_err().to_string();
        assert!(err.contains("deployment-ignores-max-unavailable"), "{err}");
    }
}
