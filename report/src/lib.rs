//! kubeproof's report model and its writers.
//!
//! One model ([`Report`]) is filled by the conformance runner (and later by load and chaos
//! runs); every output format is a pure function of it, so the formats can never disagree
//! about what happened. The behaviour catalogue ([`catalogue`]) is compiled in so coverage can
//! be computed wherever kubeproof is installed.

pub mod catalogue;
pub mod coverage;
mod escape;
pub mod model;
#[cfg(test)]
mod sample;
pub mod writers;

pub use catalogue::{Behaviour, Catalogue, Need};
pub use coverage::{AreaSummary, BehaviourCoverage, CoverageStatus, Summary};
pub use model::{Case, EventSummary, Failure, LogExcerpt, Report, RunInfo, Status, SCHEMA_VERSION};
pub use writers::{write_all, ReportFiles};
