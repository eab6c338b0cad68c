//! `conformance.yaml`: the statement of what a target conforms to, in the spirit of Gateway
//! API's conformance report: the implementation and version, per-area results with the
//! reasons for skips, flaky scenarios, and behaviour coverage against the catalogue split
//! into a core profile (needs API/SIM only) and an extended one (EXEC, NET or HOST).

use serde::Serialize;

use crate::catalogue::{Catalogue, Need};
use crate::coverage::{BehaviourCoverage, CoverageCounts, CoverageStatus, Summary};
use crate::model::{Report, Status};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document<'a> {
    api_version: &'static str,
    kind: &'static str,
    date: String,
    implementation: Implementation<'a>,
    kubernetes_version: &'a str,
    profile: &'a str,
    result: &'static str,
    summary: Summary,
    areas: Vec<Area>,
    profiles: Vec<Profile>,
    behaviours: Vec<Entry<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Implementation<'a> {
    target: &'a str,
    server_version: Option<&'a str>,
    tool: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Area {
    name: String,
    result: &'static str,
    statistics: Summary,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    failed_scenarios: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    flaky_scenarios: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    skipped_scenarios: Vec<Skipped>,
}

#[derive(Serialize)]
struct Skipped {
    scenario: String,
    reason: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    name: &'static str,
    description: &'static str,
    behaviours: usize,
    passing: usize,
    failing: usize,
    skipped: usize,
    not_covered: usize,
    passing_percent: u32,
}

#[derive(Serialize)]
struct Entry<'a> {
    id: &'a str,
    title: &'a str,
    needs: &'a [Need],
    status: CoverageStatus,
}

/// Success when everything that ran passed, failure when something failed, partial when
/// nothing failed but something was skipped.
fn verdict(s: &Summary) -> &'static str {
    if s.failed > 0 {
        "failure"
    } else if s.skipped > 0 {
        "partial"
    } else {
        "success"
    }
}

pub fn render(report: &Report, catalogue: &Catalogue) -> anyhow::Result<String> {
    let scenario = |c: &crate::model::Case| format!("{} ({})", c.scenario, c.location());
    let areas = report
        .areas()
        .into_iter()
        .map(|a| {
            let cases = report.cases.iter().filter(|c| c.area == a.area);
            let with = |st: Status| cases.clone().filter(move |c| c.status == st);
            Area {
                result: verdict(&a.counts),
                statistics: a.counts,
                failed_scenarios: with(Status::Failed).map(scenario).collect(),
                flaky_scenarios: with(Status::Flaky).map(scenario).collect(),
                skipped_scenarios: with(Status::Skipped)
                    .map(|c| Skipped {
                        scenario: scenario(c),
                        reason: c.reason.clone().unwrap_or_else(|| "no reason given".into()),
                    })
                    .collect(),
                name: a.area,
            }
        })
        .collect();

    let cov: Vec<BehaviourCoverage> = report.coverage(catalogue);
    let is_core = |b: &&BehaviourCoverage| catalogue.get(&b.id).is_some_and(|x| x.is_core());
    let profile = |name, description, c: CoverageCounts| Profile {
        name,
        description,
        behaviours: c.behaviours,
        passing: c.passing,
        failing: c.failing,
        skipped: c.skipped,
        not_covered: c.not_covered,
        passing_percent: c.passing_percent(),
    };
    let profiles = vec![
        profile("core", "behaviours checkable with the control plane and simulated nodes (API, SIM)", CoverageCounts::of(cov.iter().filter(is_core))),
        profile(
            "extended",
            "behaviours needing a real runtime, data-plane networking or host access (EXEC, NET, HOST)",
            CoverageCounts::of(cov.iter().filter(|b| !is_core(b))),
        ),
    ];

    let summary = report.summary();
    let doc = Document {
        api_version: "kubeproof.dev/v1alpha1",
        kind: "ConformanceReport",
        date: report.run.finished_at.to_rfc3339(),
        implementation: Implementation {
            target: &report.run.target,
            server_version: report.run.server_version.as_deref(),
            tool: &report.run.tool,
        },
        kubernetes_version: &report.run.kubernetes_version,
        profile: &report.run.profile,
        result: verdict(&summary),
        summary,
        areas,
        profiles,
        behaviours: catalogue
            .behaviours
            .iter()
            .zip(&cov)
            .map(|(b, c)| Entry {
                id: &b.id,
                title: &b.title,
                needs: &b.needs,
                status: c.status,
            })
            .collect(),
    };
    Ok(serde_yaml_ng::to_string(&doc)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample;

    #[test]
    fn conformance_snapshot() {
        let text = render(&sample::report(), Catalogue::embedded()).unwrap();
        // Pin the head (everything but the 248-entry list) and a few list entries.
        let head = text.split("behaviours:\n").next().unwrap();
        insta::assert_snapshot!(head);
        assert!(text.contains("- id: B-API-010\n  title: Stale resourceVersion update gets 409\n  needs:\n  - API\n  status: failing\n"));
        assert!(text.contains("- id: B-OBS-007\n  title: Kubelet metrics via proxy\n  needs:\n  - EXEC\n  status: skipped\n"));
        assert_eq!(text.matches("\n- id: B-").count(), 248);
    }

    #[test]
    fn verdict_prefers_failure_then_partial() {
        let s = |failed, skipped| Summary {
            total: 3,
            passed: 1,
            failed,
            skipped,
            flaky: 0,
        };
        assert_eq!(verdict(&s(1, 1)), "failure");
        assert_eq!(verdict(&s(0, 1)), "partial");
        assert_eq!(verdict(&s(0, 0)), "success");
    }
}
