//! The report model: what a run was (metadata) and what happened to each scenario (cases).
//!
//! This is also the `report.json` document (see `report/SCHEMA.md`); field names are part of
//! that stable schema, so rename nothing without bumping [`SCHEMA_VERSION`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::catalogue::behaviour_id_from_tag;

/// Version of the `report.json` schema. Bump on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    pub run: RunInfo,
    pub cases: Vec<Case>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The tool and its version, e.g. `kubeproof 0.1.0`.
    pub tool: String,
    /// What was tested: `bundled` or the kubeconfig server/context.
    pub target: String,
    /// `gitVersion` from the target's `/version`, when it answered.
    pub server_version: Option<String>,
    /// The Kubernetes minor version the suite asserts, e.g. `1.32`.
    pub kubernetes_version: String,
    /// Which scenarios were selected (e.g. `default`, or the tag expression used).
    pub profile: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub duration_ms: u64,
}

/// One scenario's outcome.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// Suite area, taken from the feature's directory under `features/` (e.g. `api`).
    pub area: String,
    pub feature: String,
    pub scenario: String,
    /// Feature file path, relative to where the suite was loaded from when possible.
    pub file: String,
    pub line: u32,
    /// All tags in effect (feature and scenario), with their `@`.
    pub tags: Vec<String>,
    /// Catalogue behaviour IDs taken from the tags.
    pub behaviours: Vec<String>,
    pub status: Status,
    /// Why a case was skipped, or a one-line failure summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub duration_ms: u64,
    /// Attempts after the first one.
    pub retries: u32,
    /// For failed cases the failure; for flaky ones the last failed attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
}

impl Case {
    /// Builds a case with its behaviour IDs derived from its tags.
    pub fn new(
        area: &str,
        feature: &str,
        scenario: &str,
        file: &str,
        line: u32,
        tags: Vec<String>,
    ) -> Case {
        let behaviours = behaviours_from_tags(&tags);
        Case {
            area: area.to_string(),
            feature: feature.to_string(),
            scenario: scenario.to_string(),
            file: file.to_string(),
            line,
            tags,
            behaviours,
            status: Status::Passed,
            reason: None,
            duration_ms: 0,
            retries: 0,
            failure: None,
        }
    }

    /// `file:line`, the way editors and CI annotations want it.
    pub fn location(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

/// Behaviour IDs named by a tag list, in tag order without repeats.
pub fn behaviours_from_tags(tags: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in tags {
        if let Some(id) = behaviour_id_from_tag(t) {
            if !out.iter().any(|o| o == id) {
                out.push(id.to_string());
            }
        }
    }
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Passed,
    Failed,
    Skipped,
    /// Failed at least once, then passed on a retry.
    Flaky,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
            Status::Flaky => "flaky",
        }
    }

    /// A flaky case did pass in the end; it counts as passing everywhere a pass count is asked.
    pub fn is_pass(self) -> bool {
        matches!(self, Status::Passed | Status::Flaky)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// The failing step as written in the feature (keyword and text).
    pub step: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_line: Option<u32>,
    pub message: String,
    /// Expected vs actual, as a unified-style diff of YAML, when the step compared objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// The scenario namespace's most recent Events at the time of failure.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<EventSummary>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<LogExcerpt>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventSummary {
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub type_: String,
    pub reason: String,
    /// `kind/name` of the involved object.
    pub object: String,
    pub message: String,
    pub count: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogExcerpt {
    pub pod: String,
    pub container: String,
    /// The last lines of the container's log.
    pub text: String,
}

impl Report {
    pub fn new(run: RunInfo) -> Report {
        Report {
            schema_version: SCHEMA_VERSION,
            run,
            cases: Vec::new(),
        }
    }

    /// Reads a `report.json` document. Derived sections (`summary`, `areas`, `behaviours`)
    /// are ignored: they are recomputed from the cases.
    pub fn from_json(text: &str) -> anyhow::Result<Report> {
        let report: Report = serde_json::from_str(text)?;
        if report.schema_version != SCHEMA_VERSION {
            anyhow::bail!(
                "report schema_version {} is not supported (this kubeproof reads {})",
                report.schema_version,
                SCHEMA_VERSION
            );
        }
        Ok(report)
    }

    /// True when no case failed; flaky and skipped cases do not fail a run.
    pub fn succeeded(&self) -> bool {
        !self.cases.iter().any(|c| c.status == Status::Failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_takes_behaviour_ids_from_tags_once() {
        let tags = vec![
            "@B-API-010".into(),
            "@serial".into(),
            "@B-API-009".into(),
            "@B-API-010".into(),
        ];
        let c = Case::new("api", "F", "S", "features/api/x.feature", 3, tags);
        assert_eq!(c.behaviours, vec!["B-API-010", "B-API-009"]);
        assert_eq!(c.location(), "features/api/x.feature:3");
    }

    #[test]
    fn from_json_rejects_other_schema_versions_and_garbage() {
        let r = crate::sample::report();
        let mut v = serde_json::to_value(&r).unwrap();
        assert_eq!(Report::from_json(&v.to_string()).unwrap(), r);
        v["schema_version"] = 99.into();
        let err = Report::from_json(&v.to_string()).unwrap_err().to_string();
        assert!(err.contains("99"), "{err}");
        assert!(Report::from_json("not json").is_err());
    }

    #[test]
    fn a_run_fails_only_on_failed_cases() {
        let mut r = crate::sample::report();
        assert!(!r.succeeded());
        r.cases.retain(|c| c.status != Status::Failed);
        assert!(r.succeeded());
    }
}
