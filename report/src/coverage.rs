//! Numbers derived from a report: totals, per-area counts and catalogue coverage.

use serde::Serialize;

use crate::catalogue::{Catalogue, Need};
use crate::model::{Report, Status};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub total: usize,
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub flaky: usize,
}

impl Summary {
    fn add(&mut self, s: Status) {
        self.total += 1;
        match s {
            Status::Passed => self.passed += 1,
            Status::Failed => self.failed += 1,
            Status::Skipped => self.skipped += 1,
            Status::Flaky => self.flaky += 1,
        }
    }

    /// Share of executed (not skipped) cases that passed, flaky included; `None` when nothing ran.
    pub fn pass_rate(&self) -> Option<f64> {
        let ran = self.passed + self.flaky + self.failed;
        (ran > 0).then(|| (self.passed + self.flaky) as f64 / ran as f64)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AreaSummary {
    pub area: String,
    #[serde(flatten)]
    pub counts: Summary,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CoverageStatus {
    Passing,
    Failing,
    Skipped,
    NotCovered,
}

impl CoverageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CoverageStatus::Passing => "passing",
            CoverageStatus::Failing => "failing",
            CoverageStatus::Skipped => "skipped",
            CoverageStatus::NotCovered => "not-covered",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BehaviourCoverage {
    pub id: String,
    pub area: String,
    pub title: String,
    pub needs: Vec<Need>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extras: Option<String>,
    pub status: CoverageStatus,
    /// `file:line` of every scenario tagged with this behaviour.
    pub scenarios: Vec<String>,
    /// For a behaviour no scenario covers: the catalogue's reason why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uncovered_reason: Option<String>,
}

/// Coverage counts over a set of behaviours.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CoverageCounts {
    pub behaviours: usize,
    pub passing: usize,
    pub failing: usize,
    pub skipped: usize,
    pub not_covered: usize,
}

impl CoverageCounts {
    pub fn of<'a>(items: impl IntoIterator<Item = &'a BehaviourCoverage>) -> CoverageCounts {
        let mut c = CoverageCounts::default();
        for b in items {
            c.behaviours += 1;
            match b.status {
                CoverageStatus::Passing => c.passing += 1,
                CoverageStatus::Failing => c.failing += 1,
                CoverageStatus::Skipped => c.skipped += 1,
                CoverageStatus::NotCovered => c.not_covered += 1,
            }
        }
        c
    }

    /// Passing share in whole percent, rounded down so a report never overstates coverage.
    pub fn passing_percent(&self) -> u32 {
        (self.passing * 100)
            .checked_div(self.behaviours)
            .unwrap_or(0) as u32
    }
}

impl Report {
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.cases {
            s.add(c.status);
        }
        s
    }

    /// Per-area counts, areas in order of first appearance.
    pub fn areas(&self) -> Vec<AreaSummary> {
        let mut out: Vec<AreaSummary> = Vec::new();
        for c in &self.cases {
            let idx = match out.iter().position(|a| a.area == c.area) {
                Some(i) => i,
                None => {
                    out.push(AreaSummary {
                        area: c.area.clone(),
                        counts: Summary::default(),
                    });
                    out.len() - 1
                }
            };
            out[idx].counts.add(c.status);
        }
        out
    }

    /// Every catalogue behaviour with its status in this run. A behaviour is failing when any
    /// scenario checking it failed, passing when one passed and none failed, skipped when all
    /// of its scenarios were skipped, and not covered when no scenario names it.
    pub fn coverage(&self, catalogue: &Catalogue) -> Vec<BehaviourCoverage> {
        catalogue
            .behaviours
            .iter()
            .map(|b| {
                let cases: Vec<_> = self
                    .cases
                    .iter()
                    .filter(|c| c.behaviours.contains(&b.id))
                    .collect();
                let status = if cases.is_empty() {
                    CoverageStatus::NotCovered
                } else if cases.iter().any(|c| c.status == Status::Failed) {
                    CoverageStatus::Failing
                } else if cases.iter().any(|c| c.status.is_pass()) {
                    CoverageStatus::Passing
                } else {
                    CoverageStatus::Skipped
                };
                BehaviourCoverage {
                    id: b.id.clone(),
                    area: b.area.clone(),
                    title: b.title.clone(),
                    needs: b.needs.clone(),
                    extras: b.extras.clone(),
                    uncovered_reason: (status == CoverageStatus::NotCovered)
                        .then(|| b.uncovered_reason.clone())
                        .flatten(),
                    status,
                    scenarios: cases.iter().map(|c| c.location()).collect(),
                }
            })
            .collect()
    }

    /// Behaviour IDs named in tags that the catalogue does not know (typos, stale IDs).
    pub fn unknown_behaviours(&self, catalogue: &Catalogue) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for c in &self.cases {
            for id in &c.behaviours {
                if catalogue.get(id).is_none() && !out.contains(id) {
                    out.push(id.clone());
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample;

    #[test]
    fn summary_and_areas_count_every_case_once() {
        let r = sample::report();
        let s = r.summary();
        assert_eq!(
            (s.total, s.passed, s.failed, s.skipped, s.flaky),
            (5, 2, 1, 1, 1)
        );
        let areas = r.areas();
        assert_eq!(
            areas.iter().map(|a| a.area.as_str()).collect::<Vec<_>>(),
            vec!["api", "observability"]
        );
        assert_eq!(areas.iter().map(|a| a.counts.total).sum::<usize>(), 5);
        assert_eq!(s.pass_rate(), Some(0.75));
        assert_eq!(Summary::default().pass_rate(), None);
    }

    #[test]
    fn coverage_status_follows_the_worst_scenario() {
        let r = sample::report();
        let cov = r.coverage(Catalogue::embedded());
        assert_eq!(cov.len(), 248);
        let st = |id: &str| cov.iter().find(|b| b.id == id).unwrap().status;
        assert_eq!(st("B-API-001"), CoverageStatus::Passing);
        // B-API-010 is tagged on a passing and a failing scenario.
        assert_eq!(st("B-API-010"), CoverageStatus::Failing);
        assert_eq!(
            st("B-API-011"),
            CoverageStatus::Passing,
            "flaky counts as passing"
        );
        assert_eq!(st("B-OBS-007"), CoverageStatus::Skipped);
        assert_eq!(st("B-WL-001"), CoverageStatus::NotCovered);
        let reason = |id: &str| {
            cov.iter()
                .find(|b| b.id == id)
                .unwrap()
                .uncovered_reason
                .clone()
        };
        assert!(reason("B-CHAOS-015").is_some_and(|r| r.contains("Velero")));
        assert!(
            Catalogue::embedded()
                .get("B-OBS-007")
                .unwrap()
                .uncovered_reason
                .is_some()
                && reason("B-OBS-007").is_none(),
            "a covered behaviour (skipped here) shows no reason for being uncovered"
        );
        let counts = CoverageCounts::of(&cov);
        assert_eq!(counts.behaviours, 248);
        assert_eq!(
            counts.passing + counts.failing + counts.skipped + counts.not_covered,
            248
        );
        assert_eq!(
            r.unknown_behaviours(Catalogue::embedded()),
            vec!["B-API-999"]
        );
    }
}
