//! `report.md`: a summary for pull requests and CI job pages.

use std::fmt::Write as _;

use super::secs;
use crate::catalogue::Catalogue;
use crate::coverage::{CoverageCounts, CoverageStatus};
use crate::escape::md_cell;
use crate::model::{Report, Status};

pub fn render(report: &Report, catalogue: &Catalogue) -> String {
    let run = &report.run;
    let s = report.summary();
    let mut out = String::new();
    let verdict = if report.succeeded() {
        "PASSED"
    } else {
        "FAILED"
    };
    let _ = writeln!(out, "# kubeproof conformance: {verdict}\n");
    let _ = writeln!(
        out,
        "Target `{}` ({}), Kubernetes {}, profile `{}`, {} to {} ({} s).\n",
        run.target,
        run.server_version.as_deref().unwrap_or("version unknown"),
        run.kubernetes_version,
        run.profile,
        run.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
        run.finished_at.format("%H:%M:%S UTC"),
        secs(run.duration_ms)
    );
    let _ = writeln!(
        out,
        "**{} passed, {} failed, {} skipped, {} flaky** of {} scenarios.\n",
        s.passed, s.failed, s.skipped, s.flaky, s.total
    );

    out.push_str("## Areas\n\n| Area | Passed | Failed | Skipped | Flaky | Pass rate |\n|---|---:|---:|---:|---:|---:|\n");
    for a in report.areas() {
        let c = a.counts;
        let rate = c
            .pass_rate()
            .map_or("n/a".to_string(), |r| format!("{:.0} %", r * 100.0));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            md_cell(&a.area),
            c.passed,
            c.failed,
            c.skipped,
            c.flaky,
            rate
        );
    }

    let cov = report.coverage(catalogue);
    let core = CoverageCounts::of(
        cov.iter()
            .filter(|b| catalogue.get(&b.id).is_some_and(|x| x.is_core())),
    );
    let all = CoverageCounts::of(&cov);
    out.push_str("\n## Behaviour coverage\n\n| Set | Behaviours | Passing | Failing | Skipped | Not covered |\n|---|---:|---:|---:|---:|---:|\n");
    for (name, c) in [("core (API/SIM only)", core), ("all", all)] {
        let _ = writeln!(
            out,
            "| {name} | {} | {} ({} %) | {} | {} | {} |",
            c.behaviours,
            c.passing,
            c.passing_percent(),
            c.failing,
            c.skipped,
            c.not_covered
        );
    }

    // A behaviour the catalogue gives no reason for has shipped scenarios (a unit test keeps
    // it so), which this run did not select: counted, not listed as a gap.
    let (explained, unselected): (Vec<_>, Vec<_>) = cov
        .iter()
        .filter(|b| b.status == CoverageStatus::NotCovered)
        .partition(|b| b.uncovered_reason.is_some());
    if !explained.is_empty() || !unselected.is_empty() {
        out.push_str("\n## Not covered\n");
    }
    if !explained.is_empty() {
        out.push_str("\n| Behaviour | Needs | Why no scenario checks it |\n|---|---|---|\n");
        for b in explained {
            let _ = writeln!(
                out,
                "| {} {} | {} | {} |",
                b.id,
                md_cell(&b.title),
                b.needs
                    .iter()
                    .map(|n| n.as_str())
                    .collect::<Vec<_>>()
                    .join("+"),
                md_cell(b.uncovered_reason.as_deref().unwrap_or_default())
            );
        }
    }
    if !unselected.is_empty() {
        let _ = writeln!(
            out,
            "\n{} more behaviours have scenarios that this run did not select.",
            unselected.len()
        );
    }

    let failing: Vec<_> = report
        .cases
        .iter()
        .filter(|c| c.status == Status::Failed)
        .collect();
    if !failing.is_empty() {
        out.push_str("\n## Failures\n");
        for c in failing {
            let _ = writeln!(
                out,
                "\n### {} — {}\n",
                md_cell(&c.feature),
                md_cell(&c.scenario)
            );
            let _ = writeln!(out, "`{}` {}\n", c.location(), c.behaviours.join(" "));
            if let Some(f) = &c.failure {
                let _ = writeln!(
                    out,
                    "```\n{}```",
                    super::junit::failure_text(f).replace("```", "'''")
                );
            } else if let Some(r) = &c.reason {
                let _ = writeln!(out, "{}", md_cell(r));
            }
        }
    }

    let flaky: Vec<_> = report
        .cases
        .iter()
        .filter(|c| c.status == Status::Flaky)
        .collect();
    if !flaky.is_empty() {
        out.push_str("\n## Flaky (passed on retry)\n\n");
        for c in flaky {
            let _ = writeln!(
                out,
                "- `{}` {} (retries: {})",
                c.location(),
                md_cell(&c.scenario),
                c.retries
            );
        }
    }

    let skipped: Vec<_> = report
        .cases
        .iter()
        .filter(|c| c.status == Status::Skipped)
        .collect();
    if !skipped.is_empty() {
        out.push_str("\n## Skipped\n\n");
        for c in skipped {
            let _ = writeln!(
                out,
                "- `{}` {}: {}",
                c.location(),
                md_cell(&c.scenario),
                md_cell(c.reason.as_deref().unwrap_or("no reason given"))
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample;

    #[test]
    fn markdown_snapshot() {
        insta::assert_snapshot!(render(&sample::report(), Catalogue::embedded()));
    }
}
