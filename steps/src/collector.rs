//! A cucumber writer that turns the runner's events into report cases.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use cucumber::event::{self, Cucumber, Feature, Rule, Scenario, Step, StepError};
use cucumber::{gherkin, parser, Event};
use kubeproof_report::{Case, Failure, Status};

use crate::features;
use crate::world::KubeWorld;

/// A scenario is identified by its file and line (names may repeat, e.g. outline rows).
type Key = (String, usize);

#[derive(Default)]
pub struct Collected {
    pub cases: Vec<Case>,
    /// Problems the runner itself hit (parse errors surfacing late).
    pub errors: Vec<String>,
    in_flight: HashMap<Key, Attempt>,
    done: usize,
    failed: usize,
}

struct Attempt {
    first_start: SystemTime,
    failure: Option<Failure>,
    /// The failure of an earlier attempt, kept so a flaky case can show it.
    earlier: Option<Failure>,
}

#[derive(Clone)]
pub struct Collector {
    pub state: Arc<Mutex<Collected>>,
    pub total: usize,
    pub progress: bool,
}

impl Collector {
    pub fn new(total: usize, progress: bool) -> Collector {
        Collector {
            state: Arc::new(Mutex::new(Collected::default())),
            total,
            progress,
        }
    }

    fn on_scenario(
        &self,
        feat: &gherkin::Feature,
        rule: Option<&gherkin::Rule>,
        sc: &gherkin::Scenario,
        ev: event::RetryableScenario<KubeWorld>,
        at: SystemTime,
    ) {
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        let key: Key = (features::feature_file(feat), sc.position.line);
        match ev.event {
            Scenario::Started => {
                let entry = st.in_flight.entry(key).or_insert(Attempt {
                    first_start: at,
                    failure: None,
                    earlier: None,
                });
                if let Some(f) = entry.failure.take() {
                    entry.earlier = Some(f);
                }
            }
            Scenario::Hook(event::HookType::Before, event::Hook::Failed(_, info)) => {
                let f = Failure {
                    step: "(scenario setup)".into(),
                    message: format!("setup failed: {}", panic_text(&info)),
                    ..Failure::default()
                };
                set_failure(&mut st, &key, f);
            }
            Scenario::Step(step, Step::Failed(_, _, world, err))
            | Scenario::Background(step, Step::Failed(_, _, world, err)) => {
                let f = world
                    .as_ref()
                    .and_then(|w| w.failure.clone())
                    .unwrap_or_else(|| Failure {
                        step: format!("{}{}", step.keyword, step.value),
                        step_line: Some(step.position.line as u32),
                        message: step_error_text(&err),
                        ..Failure::default()
                    });
                set_failure(&mut st, &key, f);
            }
            Scenario::Step(step, Step::Skipped) | Scenario::Background(step, Step::Skipped) => {
                // cucumber skips a step no definition matches; `check` rejects such features
                // before a run, so reaching this is a failure, never a quiet skip.
                let f = Failure {
                    step: format!("{}{}", step.keyword, step.value),
                    step_line: Some(step.position.line as u32),
                    message: "no step definition matches this step".into(),
                    ..Failure::default()
                };
                set_failure(&mut st, &key, f);
            }
            Scenario::Finished => {
                let retry_pending = ev.retries.is_some_and(|r| r.left > 0);
                let Some(attempt) = st.in_flight.get(&key) else {
                    return;
                };
                if attempt.failure.is_some() && retry_pending {
                    return; // another attempt follows
                }
                let Some(attempt) = st.in_flight.remove(&key) else {
                    return;
                };
                let tags: Vec<String> = features::scenario_tags(feat, rule, sc)
                    .iter()
                    .map(|t| format!("@{t}"))
                    .collect();
                let mut case = Case::new(
                    &features::area(feat),
                    &feat.name,
                    &sc.name,
                    &key.0,
                    key.1 as u32,
                    tags,
                );
                case.retries = ev.retries.map_or(0, |r| r.current as u32);
                case.duration_ms = at
                    .duration_since(attempt.first_start)
                    .map_or(0, |d| d.as_millis() as u64);
                match (attempt.failure, attempt.earlier) {
                    (Some(f), _) => {
                        case.status = Status::Failed;
                        case.reason = Some(f.message.lines().next().unwrap_or("").to_string());
                        case.failure = Some(f);
                    }
                    (None, Some(earlier)) => {
                        case.status = Status::Flaky;
                        case.reason = Some(format!(
                            "passed after {} retr{}",
                            case.retries,
                            if case.retries == 1 { "y" } else { "ies" }
                        ));
                        case.failure = Some(earlier);
                    }
                    (None, None) => case.status = Status::Passed,
                }
                st.done += 1;
                if case.status == Status::Failed {
                    st.failed += 1;
                }
                if self.progress {
                    let mark = match case.status {
                        Status::Passed => "ok  ",
                        Status::Flaky => "ok~ ",
                        _ => "FAIL",
                    };
                    let mut err = std::io::stderr().lock();
                    let _ = writeln!(
                        err,
                        "[{}/{}, {} failed] {mark} {} :: {} ({})",
                        st.done,
                        self.total,
                        st.failed,
                        case.feature,
                        case.scenario,
                        case.location()
                    );
                    if let Some(f) = case
                        .failure
                        .as_ref()
                        .filter(|_| case.status == Status::Failed)
                    {
                        let _ = writeln!(err, "       {}: {}", f.step, f.message);
                    }
                }
                st.cases.push(case);
            }
            _ => {}
        }
    }
}

fn set_failure(st: &mut Collected, key: &Key, f: Failure) {
    if let Some(a) = st.in_flight.get_mut(key) {
        a.failure.get_or_insert(f);
    }
}

fn panic_text(info: &event::Info) -> String {
    if let Some(s) = info.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = info.downcast_ref::<&str>() {
        s.to_string()
    } else {
        "panicked".into()
    }
}

fn step_error_text(err: &StepError) -> String {
    match err {
        StepError::Panic(info) => panic_text(info),
        other => other.to_string(),
    }
}

impl cucumber::Writer<KubeWorld> for Collector {
    type Cli = cucumber::cli::Empty;

    async fn handle_event(
        &mut self,
        ev: parser::Result<Event<Cucumber<KubeWorld>>>,
        _cli: &Self::Cli,
    ) {
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) => {
                if let Ok(mut st) = self.state.lock() {
                    st.errors.push(e.to_string());
                }
                return;
            }
        };
        let at = ev.at;
        match ev.value {
            Cucumber::Feature(feat, Feature::Scenario(sc, rev)) => {
                self.on_scenario(&feat, None, &sc, rev, at)
            }
            Cucumber::Feature(feat, Feature::Rule(rule, Rule::Scenario(sc, rev))) => {
                self.on_scenario(&feat, Some(&rule), &sc, rev, at)
            }
            _ => {}
        }
    }
}
