//! Loading feature files and checking them before anything runs: unknown or ambiguous
//! steps, invalid YAML in doc strings, unknown capabilities, unknown behaviour IDs and bad tag
//! expressions are all reported with file and line.

use std::fmt;
use std::path::{Path, PathBuf};

use cucumber::feature::Ext as _;
use cucumber::gherkin::{self, GherkinEnv, StepType};
use kubeproof_report::catalogue::{behaviour_id_from_tag, Catalogue};

use crate::library::{self, support::parse_documents};
use crate::{tags, template};

/// A problem found in the features, with where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// Every `*.feature` file under the given files and directories, sorted, without repeats.
pub fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Problem> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out).map_err(|e| Problem {
                file: p.display().to_string(),
                line: 0,
                message: e.to_string(),
            })?;
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            return Err(Problem {
                file: p.display().to_string(),
                line: 0,
                message: "no such feature file or directory".into(),
            });
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "feature") {
            out.push(path);
        }
    }
    Ok(())
}

/// Parses feature files (expanding Scenario Outlines), collecting every parse problem.
pub fn load(files: &[PathBuf]) -> (Vec<gherkin::Feature>, Vec<Problem>) {
    let mut features = Vec::new();
    let mut problems = Vec::new();
    for f in files {
        let parsed = gherkin::Feature::parse_path(f, GherkinEnv::default());
        match parsed
            .map_err(|e| e.to_string())
            .and_then(|feat| feat.expand_examples().map_err(|e| e.to_string()))
        {
            Ok(feat) => features.push(feat),
            Err(e) => problems.push(Problem {
                file: display(f),
                line: 0,
                message: e,
            }),
        }
    }
    (features, problems)
}

/// A path as shown in reports: relative to the working directory when below it.
pub fn display(p: &Path) -> String {
    let cwd = std::env::current_dir().ok();
    let rel = cwd
        .as_deref()
        .and_then(|c| p.strip_prefix(c).ok())
        .unwrap_or(p);
    rel.display().to_string()
}

pub fn feature_file(feature: &gherkin::Feature) -> String {
    feature
        .path
        .as_deref()
        .map(display)
        .unwrap_or_else(|| feature.name.clone())
}

/// The suite area of a feature: the directory below `features/` (`features/api/x.feature` is
/// `api`), else the file's directory name.
pub fn area(feature: &gherkin::Feature) -> String {
    let Some(path) = feature.path.as_deref() else {
        return "default".into();
    };
    let parts: Vec<String> = path
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if let Some(i) = parts.iter().rposition(|p| p == "features") {
        if i + 2 < parts.len() {
            return parts[i + 1].clone();
        }
    }
    path.parent()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "default".into())
}

/// All tags in effect for a scenario (feature, rule, scenario), without `@`.
pub fn scenario_tags(
    feature: &gherkin::Feature,
    rule: Option<&gherkin::Rule>,
    scenario: &gherkin::Scenario,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in feature
        .tags
        .iter()
        .chain(rule.iter().flat_map(|r| &r.tags))
        .chain(&scenario.tags)
    {
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    out
}

/// Every scenario of the features with its rule, in file order.
pub fn scenarios(feature: &gherkin::Feature) -> Vec<(Option<&gherkin::Rule>, &gherkin::Scenario)> {
    let mut out: Vec<_> = feature.scenarios.iter().map(|s| (None, s)).collect();
    for r in &feature.rules {
        out.extend(r.scenarios.iter().map(|s| (Some(r), s)));
    }
    out
}

/// The least time a scenario takes: the sum of its "… for N seconds" holds, which wait the
/// whole duration by definition.
fn least_duration_s(sc: &gherkin::Scenario) -> u64 {
    static HOLD: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"\bfor (\d+) (second|minute)s?$").expect("valid regex")
    });
    sc.steps
        .iter()
        .filter_map(|st| HOLD.captures(st.value.trim_end()))
        .map(|c| {
            let n: u64 = c[1].parse().unwrap_or(0);
            if &c[2] == "minute" {
                n * 60
            } else {
                n
            }
        })
        .sum()
}

/// Orders features for a run so that the whole run ends sooner. cucumber runs `@serial`
/// scenarios first, one at a time, and puts the features holding them ahead of the others; the
/// concurrent scenarios then start in feature order, so the features whose scenarios must wait
/// longest go first and do not start last and finish alone. Stable otherwise.
pub fn order_for_run(features: &mut [gherkin::Feature]) {
    let key = |f: &gherkin::Feature| {
        let has_serial = scenarios(f)
            .iter()
            .any(|(r, sc)| scenario_tags(f, *r, sc).iter().any(|t| t == "serial"));
        let longest = scenarios(f)
            .iter()
            .map(|(_, sc)| least_duration_s(sc))
            .max()
            .unwrap_or(0);
        (!has_serial, std::cmp::Reverse(longest))
    };
    features.sort_by_cached_key(key);
}

pub fn parse_tag_expression(expr: &str) -> Result<gherkin::tagexpr::TagOperation, String> {
    expr.parse()
        .map_err(|e| format!("bad tag expression '{expr}': {e}"))
}

/// Checks the features against the step library and the catalogue.
pub fn check(features: &[gherkin::Feature], catalogue: &Catalogue) -> Vec<Problem> {
    let mut problems = Vec::new();
    for feat in features {
        let file = feature_file(feat);
        let mut push = |line: usize, message: String| {
            problems.push(Problem {
                file: file.clone(),
                line,
                message,
            })
        };
        let backgrounds = feat
            .background
            .iter()
            .chain(feat.rules.iter().filter_map(|r| r.background.as_ref()));
        let bg_steps = backgrounds.flat_map(|b| &b.steps);
        let sc_steps = scenarios(feat).into_iter().flat_map(|(_, s)| &s.steps);
        for step in bg_steps.chain(sc_steps) {
            check_step(step, &mut push);
        }
        for (rule, sc) in scenarios(feat) {
            for t in scenario_tags(feat, rule, sc) {
                if let Some(cap) = t.strip_prefix("needs:") {
                    if !tags::is_known_capability(cap) {
                        let known: Vec<&str> = tags::CAPABILITIES.iter().map(|(n, _)| *n).collect();
                        push(
                            sc.position.line,
                            format!(
                                "unknown capability @needs:{cap} (known: {})",
                                known.join(", ")
                            ),
                        );
                    }
                } else if let Some(id) = behaviour_id_from_tag(&t) {
                    if catalogue.get(id).is_none() {
                        push(
                            sc.position.line,
                            format!("@{id} is not in the behaviour catalogue"),
                        );
                    }
                } else if t.starts_with("B-") {
                    push(
                        sc.position.line,
                        format!("@{t} looks like a behaviour ID but is malformed"),
                    );
                }
            }
        }
    }
    problems
}

fn check_step(step: &gherkin::Step, push: &mut impl FnMut(usize, String)) {
    let line = step.position.line;
    let defs = library::matching(step.ty, &step.value);
    let kw = match step.ty {
        StepType::Given => "Given",
        StepType::When => "When",
        StepType::Then => "Then",
    };
    match defs.len() {
        0 => push(
            line,
            format!("unknown step: {kw} {} (see `kubeproof steps`)", step.value),
        ),
        1 => {}
        _ => push(
            line,
            format!(
                "ambiguous step: {} matches {}",
                step.value,
                defs.iter().map(|d| d.name).collect::<Vec<_>>().join(", ")
            ),
        ),
    }
    for v in template::variables(&step.value).iter().chain(
        step.docstring
            .as_deref()
            .map(template::variables)
            .unwrap_or_default()
            .iter(),
    ) {
        if !template::is_identifier(v) {
            push(line, format!("'{{{{ {v} }}}}' is not a template variable"));
        }
    }
    if let Some(doc) = &step.docstring {
        match template::render_placeholders(doc) {
            Err(e) => push(line, e),
            Ok(text) => {
                if let Err(e) = parse_documents(&text) {
                    push(line, format!("doc string: {e}"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feature(text: &str) -> gherkin::Feature {
        let mut f = gherkin::Feature::parse(text, GherkinEnv::default()).unwrap();
        f.path = Some(PathBuf::from("/x/features/api/demo.feature"));
        f
    }

    #[test]
    fn serial_features_go_first_then_the_longest_holds() {
        let quick = feature("Feature: quick\n  Scenario: s\n    Given a namespace\n");
        let held = feature(
            "Feature: held\n  Scenario: s\n    Given a namespace\n    Then pod \"p\" has \"{.a}\" equal to \"1\" for 20 seconds\n    And pod \"p\" has \"{.a}\" equal to \"1\" for 1 minute\n",
        );
        let shorter = feature(
            "Feature: shorter\n  Scenario: s\n    Then pod \"p\" has \"{.a}\" equal to \"1\" for 30 seconds\n",
        );
        let serial = feature("Feature: serial\n  @serial\n  Scenario: s\n    Given a namespace\n");
        let mut feats = vec![quick, shorter, held, serial];
        order_for_run(&mut feats);
        let names: Vec<&str> = feats.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["serial", "held", "shorter", "quick"]);
    }

    #[test]
    fn a_clean_feature_has_no_problems() {
        let f = feature(
            "Feature: demo\n\n  @B-API-023 @needs:nodes\n  Scenario: one\n    Given a namespace\n    When I create:\n      \"\"\"\n      apiVersion: v1\n      kind: ConfigMap\n      metadata:\n        name: a-{{ suffix }}\n        namespace: {{ namespace }}\n      \"\"\"\n    Then configmap \"a-{{ suffix }}\" exists\n",
        );
        assert_eq!(
            check(std::slice::from_ref(&f), Catalogue::embedded()),
            vec![]
        );
        assert_eq!(area(&f), "api");
        assert_eq!(
            scenario_tags(&f, None, &f.scenarios[0]),
            vec!["B-API-023", "needs:nodes"]
        );
    }

    #[test]
    fn problems_carry_their_line() {
        let f = feature(
            "Feature: demo\n\n  @B-API-999 @needs:warp-drive @B-X-1\n  Scenario: one\n    When I frobnicate\n    And I create:\n      \"\"\"\n      a: [1\n      \"\"\"\n    Then configmap \"{{ a b }}\" exists\n",
        );
        let problems: Vec<String> = check(&[f], Catalogue::embedded())
            .iter()
            .map(|p| p.to_string())
            .collect();
        let expect = [
            "features/api/demo.feature:5: unknown step: When I frobnicate",
            "features/api/demo.feature:6: doc string: document 1 is not valid YAML",
            "features/api/demo.feature:10: '{{ a b }}' is not a template variable",
            "features/api/demo.feature:4: @B-API-999 is not in the behaviour catalogue",
            "features/api/demo.feature:4: unknown capability @needs:warp-drive",
            "features/api/demo.feature:4: @B-X-1 looks like a behaviour ID but is malformed",
        ];
        for e in expect {
            assert!(
                problems
                    .iter()
                    .any(|p| p.ends_with(e.split_once("feature:").unwrap().1)
                        || p.contains(e.split_once("feature:").unwrap().1)),
                "missing {e:?} in {problems:#?}"
            );
        }
        assert_eq!(problems.len(), expect.len(), "{problems:#?}");
    }

    #[test]
    fn tag_expressions_are_validated() {
        assert!(parse_tag_expression("@api and not @serial").is_ok());
        assert!(parse_tag_expression("@api and (").is_err());
    }

    #[test]
    fn missing_paths_are_reported() {
        let err = collect_files(&[PathBuf::from("/definitely/not/here.feature")]).unwrap_err();
        assert!(err.message.contains("no such"));
    }
}
