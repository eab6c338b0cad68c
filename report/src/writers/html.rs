//! `report.html`: one self-contained page for people (no scripts, no external assets):
//! a verdict, per-area pass rates as an inline SVG bar chart, behaviour coverage, every
//! scenario with its status, and failure details (diff, events, logs) folded under each.

use std::fmt::Write as _;

use super::secs;
use crate::catalogue::Catalogue;
use crate::coverage::{AreaSummary, CoverageCounts, CoverageStatus};
use crate::escape::markup;
use crate::model::{Case, Report, Status};

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;width:100%;font-size:14px}\
th,td{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}td.n{white-space:nowrap}details{overflow-wrap:anywhere}\
.passed{color:#1a7f37}.failed{color:#cf222e}.skipped{color:#6e7781}.flaky{color:#9a6700}\
pre{background:#f6f8fa;padding:8px;overflow-x:auto;white-space:pre-wrap}\
.verdict-pass{color:#1a7f37}.verdict-fail{color:#cf222e}";

const COLOURS: [(&str, &str); 4] = [
    ("passed", "#2da44e"),
    ("flaky", "#d4a72c"),
    ("failed", "#cf222e"),
    ("skipped", "#afb8c1"),
];

pub fn render(report: &Report, catalogue: &Catalogue) -> String {
    let run = &report.run;
    let s = report.summary();
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>kubeproof conformance report</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
    );
    let (class, word) = if report.succeeded() {
        ("verdict-pass", "PASSED")
    } else {
        ("verdict-fail", "FAILED")
    };
    let _ = writeln!(
        out,
        "<h1>kubeproof conformance: <span class=\"{class}\">{word}</span></h1>"
    );
    let _ = writeln!(
        out,
        "<p>Target <code>{}</code> ({}), Kubernetes {}, profile <code>{}</code>; started {}, took {} s.</p>",
        markup(&run.target),
        markup(run.server_version.as_deref().unwrap_or("version unknown")),
        markup(&run.kubernetes_version),
        markup(&run.profile),
        run.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
        secs(run.duration_ms)
    );
    let _ = writeln!(
        out,
        "<p><b>{} scenarios</b>: <span class=\"passed\">{} passed</span>, <span class=\"failed\">{} failed</span>, <span class=\"skipped\">{} skipped</span>, <span class=\"flaky\">{} flaky</span>.</p>",
        s.total, s.passed, s.failed, s.skipped, s.flaky
    );

    out.push_str("<h2>Pass rate by area</h2>\n");
    out.push_str(&area_chart(&report.areas()));

    let cov = report.coverage(catalogue);
    let core = CoverageCounts::of(
        cov.iter()
            .filter(|b| catalogue.get(&b.id).is_some_and(|x| x.is_core())),
    );
    let all = CoverageCounts::of(&cov);
    out.push_str("<h2>Behaviour coverage</h2>\n<table>\n<tr><th>Set</th><th>Behaviours</th><th>Passing</th><th>Failing</th><th>Skipped</th><th>Not covered</th></tr>\n");
    for (name, c) in [("core (API/SIM only)", core), ("all", all)] {
        let _ = writeln!(
            out,
            "<tr><td>{name}</td><td>{}</td><td>{} ({} %)</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            c.behaviours,
            c.passing,
            c.passing_percent(),
            c.failing,
            c.skipped,
            c.not_covered
        );
    }
    out.push_str("</table>\n");

    // As in the Markdown report: behaviours without a reason have scenarios this run did
    // not select, so they are counted rather than listed as gaps.
    let (explained, unselected): (Vec<_>, Vec<_>) = cov
        .iter()
        .filter(|b| b.status == CoverageStatus::NotCovered)
        .partition(|b| b.uncovered_reason.is_some());
    if !explained.is_empty() || !unselected.is_empty() {
        out.push_str("<h2>Not covered</h2>\n");
    }
    if !explained.is_empty() {
        out.push_str("<table>\n<tr><th>Behaviour</th><th>Needs</th><th>Why no scenario checks it</th></tr>\n");
        for b in explained {
            let needs: Vec<&str> = b.needs.iter().map(|n| n.as_str()).collect();
            let _ = writeln!(
                out,
                "<tr><td class=\"n\">{}</td><td>{}</td><td>{}<br><small>{}</small></td></tr>",
                markup(&b.id),
                needs.join("+"),
                markup(&b.title),
                markup(b.uncovered_reason.as_deref().unwrap_or_default())
            );
        }
        out.push_str("</table>\n");
    }
    if !unselected.is_empty() {
        let _ = writeln!(
            out,
            "<p>{} more behaviours have scenarios that this run did not select.</p>",
            unselected.len()
        );
    }

    out.push_str("<h2>Scenarios</h2>\n<table>\n<tr><th>Status</th><th>Area</th><th>Feature</th><th>Scenario</th><th>Behaviours</th><th>Time (s)</th><th>Retries</th></tr>\n");
    for c in &report.cases {
        scenario_row(&mut out, c);
    }
    out.push_str("</table>\n</body>\n</html>\n");
    out
}

fn scenario_row(out: &mut String, c: &Case) {
    let st = c.status.as_str();
    let _ = write!(
        out,
        "<tr><td class=\"n {st}\">{st}</td><td>{}</td><td>{}</td><td>{}<br><small><code>{}</code></small>",
        markup(&c.area),
        markup(&c.feature),
        markup(&c.scenario),
        markup(&c.location())
    );
    if c.status == Status::Skipped {
        let _ = write!(
            out,
            "<br><small>{}</small>",
            markup(c.reason.as_deref().unwrap_or(""))
        );
    }
    if let Some(f) = &c.failure {
        let label = if c.status == Status::Flaky {
            "earlier failure"
        } else {
            "failure"
        };
        let _ = write!(
            out,
            "<details><summary>{label}: {}</summary><p>Step: <code>{}</code></p><pre>{}</pre>",
            markup(&headline(&f.message)),
            markup(&f.step),
            markup(&f.message)
        );
        if let Some(d) = &f.diff {
            let _ = write!(
                out,
                "<p>Diff (expected / actual)</p><pre>{}</pre>",
                markup(d)
            );
        }
        if !f.events.is_empty() {
            out.push_str("<p>Recent events</p><table><tr><th>Type</th><th>Reason</th><th>Object</th><th>Count</th><th>Message</th></tr>");
            for e in &f.events {
                let _ = write!(
                    out,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    markup(&e.type_),
                    markup(&e.reason),
                    markup(&e.object),
                    e.count,
                    markup(&e.message)
                );
            }
            out.push_str("</table>");
        }
        for l in &f.logs {
            let _ = write!(
                out,
                "<p>Logs {}/{}</p><pre>{}</pre>",
                markup(&l.pod),
                markup(&l.container),
                markup(&l.text)
            );
        }
        out.push_str("</details>");
    }
    let _ = writeln!(
        out,
        "</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
        c.behaviours
            .iter()
            .map(|b| markup(b))
            .collect::<Vec<_>>()
            .join("<br>"),
        secs(c.duration_ms),
        c.retries
    );
}

/// The first line of a message, short enough for a one-line summary.
fn headline(message: &str) -> String {
    let first = message.lines().next().unwrap_or("");
    if first.chars().count() > 160 {
        format!("{}…", first.chars().take(160).collect::<String>())
    } else {
        first.to_string()
    }
}

/// A horizontal stacked bar per area (passed, flaky, failed, skipped as shares of the area's
/// scenarios) with the pass rate of executed scenarios printed beside it.
fn area_chart(areas: &[AreaSummary]) -> String {
    const LABEL_W: u32 = 140;
    const BAR_W: u32 = 480;
    const ROW_H: u32 = 26;
    let height = ROW_H * areas.len() as u32 + 30;
    let width = LABEL_W + BAR_W + 120;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"pass rate by area\" font-family=\"sans-serif\" font-size=\"13\">"
    );
    for (i, a) in areas.iter().enumerate() {
        let y = i as u32 * ROW_H;
        let c = a.counts;
        let _ = writeln!(
            svg,
            "<text x=\"0\" y=\"{}\">{}</text>",
            y + 16,
            markup(&a.area)
        );
        let mut x = LABEL_W;
        let total = c.total.max(1) as u32;
        for ((name, colour), n) in COLOURS.iter().zip([c.passed, c.flaky, c.failed, c.skipped]) {
            if n == 0 {
                continue;
            }
            let w = BAR_W * n as u32 / total;
            let _ = writeln!(
                svg,
                "<rect x=\"{x}\" y=\"{}\" width=\"{w}\" height=\"18\" fill=\"{colour}\"><title>{} {name}</title></rect>",
                y + 3,
                n
            );
            x += w;
        }
        let rate = c
            .pass_rate()
            .map_or("n/a".to_string(), |r| format!("{:.0} %", r * 100.0));
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\">{rate} ({}/{})</text>",
            LABEL_W + BAR_W + 8,
            y + 16,
            c.passed + c.flaky,
            c.total
        );
    }
    let legend_y = ROW_H * areas.len() as u32 + 18;
    for (i, (name, colour)) in COLOURS.iter().enumerate() {
        let x = LABEL_W + i as u32 * 100;
        let _ = writeln!(
            svg,
            "<rect x=\"{x}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{colour}\"/><text x=\"{}\" y=\"{legend_y}\">{name}</text>",
            legend_y - 10,
            x + 16
        );
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample;

    #[test]
    fn html_snapshot() {
        insta::assert_snapshot!(render(&sample::report(), Catalogue::embedded()));
    }

    #[test]
    fn html_is_self_contained_and_escapes_scenario_text() {
        let html = render(&sample::report(), Catalogue::embedded());
        assert!(!html.contains("<script"));
        assert!(
            !html.contains("http://") || html.matches("http://").count() == 1,
            "only the SVG namespace URI"
        );
        assert!(html
            .contains("Two writers race &lt;from&gt; the &quot;same&quot; version &amp; one wins"));
        assert_eq!(
            html.matches("<details>").count(),
            2,
            "failed and flaky cases fold their details"
        );
    }
}
