//! `report.json`: the stable machine format (schema in `report/SCHEMA.md`).
//!
//! The document is the [`Report`] itself plus derived sections (summary, areas, behaviour
//! coverage) so consumers need not recompute them; [`Report::from_json`] reads it back.

use serde::Serialize;

use crate::catalogue::Catalogue;
use crate::coverage::{AreaSummary, BehaviourCoverage, Summary};
use crate::model::{Case, Report, RunInfo};

#[derive(Serialize)]
struct Document<'a> {
    schema_version: u32,
    run: &'a RunInfo,
    summary: Summary,
    areas: Vec<AreaSummary>,
    cases: &'a [Case],
    behaviours: Vec<BehaviourCoverage>,
    unknown_behaviours: Vec<String>,
}

pub fn render(report: &Report, catalogue: &Catalogue) -> anyhow::Result<String> {
    let doc = Document {
        schema_version: report.schema_version,
        run: &report.run,
        summary: report.summary(),
        areas: report.areas(),
        cases: &report.cases,
        behaviours: report.coverage(catalogue),
        unknown_behaviours: report.unknown_behaviours(catalogue),
    };
    let mut s = serde_json::to_string_pretty(&doc)?;
    s.push('\n');
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample;

    #[test]
    fn json_round_trips_through_the_reader() {
        let r = sample::report();
        let text = render(&r, Catalogue::embedded()).unwrap();
        assert_eq!(Report::from_json(&text).unwrap(), r);
    }

    #[test]
    fn json_snapshot() {
        // The 248 behaviour entries are pinned by their own test; keep the snapshot readable.
        let r = sample::report();
        let mut v: serde_json::Value =
            serde_json::from_str(&render(&r, Catalogue::embedded()).unwrap()).unwrap();
        let behaviours = v["behaviours"].as_array_mut().unwrap();
        assert_eq!(behaviours.len(), 248);
        behaviours.retain(|b| b["status"] != "not-covered" || b["id"] == "B-WL-001");
        insta::assert_json_snapshot!(v);
    }
}
