//! JUnit XML: one `<testsuite>` per feature, one `<testcase>` per scenario.
//!
//! Flaky cases pass, and carry their earlier failure as `<flakyFailure>` (the Surefire rerun
//! convention that Jenkins and GitLab understand).

use std::fmt::Write as _;

use super::secs;
use crate::escape::markup;
use crate::model::{Case, Failure, Report, Status};

pub fn render(report: &Report) -> String {
    let s = report.summary();
    let mut out = String::new();
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"kubeproof conformance\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{}\" timestamp=\"{}\">",
        s.total,
        s.failed,
        s.skipped,
        secs(report.run.duration_ms),
        report.run.started_at.format("%Y-%m-%dT%H:%M:%S")
    );

    let mut features: Vec<(&str, &str)> = Vec::new();
    for c in &report.cases {
        if !features.contains(&(c.feature.as_str(), c.file.as_str())) {
            features.push((&c.feature, &c.file));
        }
    }
    for (feature, file) in features {
        let cases: Vec<&Case> = report
            .cases
            .iter()
            .filter(|c| c.feature == feature && c.file == file)
            .collect();
        let count = |st: Status| cases.iter().filter(|c| c.status == st).count();
        let time: u64 = cases.iter().map(|c| c.duration_ms).sum();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" file=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{}\">",
            markup(feature),
            markup(file),
            cases.len(),
            count(Status::Failed),
            count(Status::Skipped),
            secs(time)
        );
        for c in cases {
            testcase(&mut out, c);
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

fn testcase(out: &mut String, c: &Case) {
    let _ = writeln!(
        out,
        "    <testcase name=\"{}\" classname=\"{}\" file=\"{}\" line=\"{}\" time=\"{}\">",
        markup(&c.scenario),
        markup(&c.feature),
        markup(&c.file),
        c.line,
        secs(c.duration_ms)
    );
    if !c.tags.is_empty() || c.retries > 0 {
        out.push_str("      <properties>\n");
        for t in &c.tags {
            let _ = writeln!(
                out,
                "        <property name=\"tag\" value=\"{}\"/>",
                markup(t)
            );
        }
        if c.retries > 0 {
            let _ = writeln!(
                out,
                "        <property name=\"retries\" value=\"{}\"/>",
                c.retries
            );
        }
        out.push_str("      </properties>\n");
    }
    match c.status {
        Status::Passed => {}
        Status::Skipped => {
            let _ = writeln!(
                out,
                "      <skipped message=\"{}\"/>",
                markup(c.reason.as_deref().unwrap_or("skipped"))
            );
        }
        Status::Failed => {
            if let Some(f) = &c.failure {
                failure_element(out, "failure", f, &c.behaviours);
            } else {
                let _ = writeln!(
                    out,
                    "      <failure message=\"{}\"/>",
                    markup(c.reason.as_deref().unwrap_or("failed"))
                );
            }
        }
        Status::Flaky => {
            if let Some(f) = &c.failure {
                failure_element(out, "flakyFailure", f, &c.behaviours);
            }
        }
    }
    out.push_str("    </testcase>\n");
}

/// CI tools show the message attribute as the headline, so it starts with the behaviours the
/// scenario checks: a reader sees what broke before reading how.
fn failure_element(out: &mut String, element: &str, f: &Failure, behaviours: &[String]) {
    let (message, text) = if behaviours.is_empty() {
        (f.message.clone(), failure_text(f))
    } else {
        let ids = behaviours.join(" ");
        (
            format!("[{ids}] {}", f.message),
            format!("Behaviours: {ids}\n{}", failure_text(f)),
        )
    };
    let _ = writeln!(
        out,
        "      <{element} message=\"{}\" type=\"{}\">{}</{element}>",
        markup(&message),
        markup(&f.step),
        markup(&text)
    );
}

/// The failure as plain text: what CI tools show when a test case is expanded.
pub fn failure_text(f: &Failure) -> String {
    let mut s = String::new();
    match f.step_line {
        Some(l) => {
            let _ = writeln!(s, "Step (line {l}): {}", f.step);
        }
        None => {
            let _ = writeln!(s, "Step: {}", f.step);
        }
    }
    let _ = writeln!(s, "{}", f.message);
    if let Some(d) = &f.diff {
        let _ = write!(s, "\nDiff:\n{d}");
        if !d.ends_with('\n') {
            s.push('\n');
        }
    }
    if !f.events.is_empty() {
        s.push_str("\nRecent events:\n");
        for e in &f.events {
            let _ = writeln!(
                s,
                "  {} {} {} (x{}): {}",
                e.type_, e.reason, e.object, e.count, e.message
            );
        }
    }
    for l in &f.logs {
        let _ = writeln!(
            s,
            "\nLogs {}/{}:\n{}",
            l.pod,
            l.container,
            l.text.trim_end()
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample;

    #[test]
    fn junit_snapshot() {
        insta::assert_snapshot!(render(&sample::report()));
    }

    #[test]
    fn junit_counts_one_testcase_per_scenario() {
        let xml = render(&sample::report());
        assert_eq!(xml.matches("<testcase ").count(), 5);
        assert_eq!(xml.matches("<testsuite ").count(), 4);
        assert!(xml.contains("tests=\"5\" failures=\"1\" errors=\"0\" skipped=\"1\""));
    }
}
