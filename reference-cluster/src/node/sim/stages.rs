//! The `sim` runtime's stage model. Every container attempt follows one timeline, planned when
//! it starts: sandbox → image pull (only when the node lacks the image) → create/start →
//! running (startup probe passes, readiness passes, maybe fails again) → exit (on its own,
//! OOM-killed, killed by a failing liveness probe, or stopped). Each stage lasts a configured
//! base plus a jitter drawn deterministically from the pod, container and attempt, so a run is
//! reproducible while thousands of pods still spread out like on real nodes.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use tokio::time::Instant;

use super::behaviour::{image_cannot_be_pulled, Behaviour};
use crate::node::clock::{after, seconds};
use crate::node::runtime::{ContainerState, Exit, ProbeKind};
use crate::resources::quantity::Quantity;

/// A stage's duration: `base` plus up to `jitter`, uniformly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StageDelay {
    pub base: Duration,
    pub jitter: Duration,
}

impl StageDelay {
    pub const fn new(base: Duration, jitter: Duration) -> StageDelay {
        StageDelay { base, jitter }
    }

    pub const fn fixed(base: Duration) -> StageDelay {
        StageDelay {
            base,
            jitter: Duration::ZERO,
        }
    }

    pub fn pick(&self, seed: u64) -> Duration {
        if self.jitter.is_zero() {
            return self.base;
        }
        let frac = (mix(seed) % 10_000) as f64 / 10_000.0;
        self.base + self.jitter.mul_f64(frac)
    }
}

/// How long each stage takes. The defaults look like a fast real node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SimStages {
    /// Sandbox and pod network (`PodReadyToStartContainers`).
    pub sandbox: StageDelay,
    /// Pulling an image the node does not have yet.
    pub pull: StageDelay,
    /// Creating and starting a container.
    pub create: StageDelay,
    /// From SIGTERM to exit, for a container that handles it.
    pub stop: StageDelay,
    /// An `exec` or `httpGet` preStop hook.
    pub pre_stop: StageDelay,
    /// How long a container asked to crash or exit (without `exit-after`) runs.
    pub default_run: StageDelay,
    /// How long a container whose memory usage exceeds its limit runs before the OOM kill.
    pub oom_after: StageDelay,
}

impl Default for SimStages {
    fn default() -> Self {
        let ms = Duration::from_millis;
        SimStages {
            sandbox: StageDelay::new(ms(100), ms(100)),
            pull: StageDelay::new(ms(800), ms(700)),
            create: StageDelay::new(ms(50), ms(100)),
            stop: StageDelay::new(ms(50), ms(100)),
            pre_stop: StageDelay::new(ms(50), ms(50)),
            default_run: StageDelay::new(ms(1000), ms(500)),
            oom_after: StageDelay::new(ms(500), ms(500)),
        }
    }
}

impl SimStages {
    /// Short and jitter-free-ish stages for tests.
    pub fn for_tests() -> SimStages {
        let ms = Duration::from_millis;
        SimStages {
            sandbox: StageDelay::new(ms(20), ms(20)),
            pull: StageDelay::new(ms(50), ms(50)),
            create: StageDelay::new(ms(20), ms(20)),
            stop: StageDelay::new(ms(20), ms(20)),
            pre_stop: StageDelay::fixed(ms(20)),
            default_run: StageDelay::new(ms(300), ms(100)),
            oom_after: StageDelay::new(ms(200), ms(100)),
        }
    }
}

/// splitmix64: spreads a seed into well-mixed bits.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// FNV-1a over several strings (separated so that `ab`+`c` differs from `a`+`bc`).
pub fn seed_of(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedExit {
    pub at: Instant,
    pub code: i32,
    pub reason: &'static str,
    pub message: Option<String>,
}

/// Readiness over a running container's life.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Readiness {
    /// When it first passes; `None`: never.
    pub from: Option<Instant>,
    /// A span in which it fails again (end `None`: for good).
    pub fails: Option<(Instant, Option<Instant>)>,
}

impl Readiness {
    fn at(&self, t: Instant) -> bool {
        let passed = self.from.is_some_and(|f| t >= f);
        let failing = self
            .fails
            .is_some_and(|(start, end)| t >= start && end.is_none_or(|e| t < e));
        passed && !failing
    }
}

/// Probe failures that end in a kill: `count` failures `period` apart from `first`, the last
/// one at the kill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeKill {
    pub kind: ProbeKind,
    pub first: Instant,
    pub period: Duration,
    pub count: u32,
}

impl ProbeKill {
    fn at(&self, k: u64) -> Instant {
        let offset = self.period.as_nanos().saturating_mul(k as u128);
        after(
            self.first,
            Duration::from_nanos(offset.min(u64::MAX as u128) as u64),
        )
    }

    /// The index of the first failure at or after `t`.
    fn index_at_or_after(&self, t: Instant) -> u64 {
        if t <= self.first {
            return 0;
        }
        let period = self.period.max(Duration::from_nanos(1)).as_nanos();
        ((t - self.first).as_nanos().div_ceil(period)).min(u64::MAX as u128) as u64
    }

    /// The kill: the last of the failures.
    pub fn kill_at(&self) -> Instant {
        self.at(u64::from(self.count.max(1)) - 1)
    }

    /// The first failure after `t`.
    fn next_after(&self, t: Instant) -> Option<Instant> {
        let mut k = self.index_at_or_after(t);
        if self.at(k) <= t {
            k += 1;
        }
        (k < u64::from(self.count)).then(|| self.at(k))
    }

    /// Failure indices in `[from, to]`, at most `cap` of them (the newest).
    fn within(&self, from: Instant, to: Instant, cap: u64) -> std::ops::Range<u64> {
        let lo = self.index_at_or_after(from);
        let mut hi = self.index_at_or_after(to);
        if self.at(hi) <= to {
            hi += 1;
        }
        let hi = hi.min(u64::from(self.count));
        hi.saturating_sub(cap).max(lo)..hi.max(lo)
    }
}

/// When a readiness probe runs: from `first`, every `period`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probing {
    pub first: Instant,
    pub period: Duration,
}

impl Probing {
    /// The first probe at or after `t`.
    fn next_at_or_after(&self, t: Instant) -> Instant {
        if t <= self.first {
            return self.first;
        }
        let period = self.period.max(Duration::from_millis(1)).as_nanos();
        let k = ((t - self.first).as_nanos()).div_ceil(period);
        let offset = period.saturating_mul(k).min(u64::MAX as u128) as u64;
        after(self.first, Duration::from_nanos(offset))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    pub running_at: Instant,
    pub started_at: Instant,
    pub ready: Readiness,
    /// How it ends on its own, if it does.
    pub exit: Option<PlannedExit>,
    /// The liveness or startup probe failures that kill it, when a probe does.
    pub kill_probe: Option<ProbeKill>,
    /// The readiness probe's schedule, when the container has one.
    pub readiness_probe: Option<Probing>,
}

impl Run {
    /// Failed probes in `(since, now]` (from the start when `since` is `None`), before the exit:
    /// each liveness/startup failure, and at most one readiness failure however many probes
    /// failed (they fold into one event anyway).
    pub fn probe_failures(
        &self,
        since: Option<Instant>,
        now: Instant,
        stop: Option<&PlannedExit>,
    ) -> Vec<(ProbeKind, bool)> {
        let end = earliest(self.exit.as_ref(), stop).map_or(now, |e| e.at.min(now));
        // Probes exactly at `since` were reported by the previous call.
        let from = match since {
            Some(t) => t + Duration::from_nanos(1),
            None => self.running_at,
        };
        let mut out = Vec::new();
        if let Some(p) = &self.readiness_probe {
            let mut spans: Vec<(Instant, Option<Instant>)> = Vec::new();
            match self.ready.from {
                Some(ready) if ready > p.first => spans.push((p.first, Some(ready))),
                Some(_) => {}
                None => spans.push((p.first, None)),
            }
            spans.extend(self.ready.fails);
            let probed_failing = spans.iter().any(|&(start, stop_at)| {
                let t = p.next_at_or_after(start.max(from));
                t <= end && stop_at.is_none_or(|s| t < s)
            });
            if probed_failing {
                out.push((ProbeKind::Readiness, false));
            }
        }
        if let Some(k) = &self.kill_probe {
            // Repeats fold into one Event anyway; a handful shows the count growing.
            let last = u64::from(k.count.max(1)) - 1;
            for i in k.within(from, end, 10) {
                out.push((k.kind, i == last));
            }
        }
        out
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Timeline {
    PullFails { at: Instant, message: String },
    StartFails { at: Instant, message: String },
    Runs(Run),
}

/// Everything a plan depends on besides the container spec and behaviour.
pub struct PlanInput<'a> {
    pub stages: &'a SimStages,
    pub seed: u64,
    pub now: Instant,
    /// The node already has the image.
    pub image_present: bool,
    /// How the container's interpreted command ends (see `SIM.md`, Commands): this long after
    /// it starts running, with this exit code.
    pub command_exit: Option<(Duration, i32)>,
}

fn secs(v: Option<i32>, default: i32) -> Duration {
    Duration::from_secs(v.unwrap_or(default).max(0) as u64)
}

fn probe_delay(p: Option<&Probe>) -> Option<Duration> {
    p.map(|p| secs(p.initial_delay_seconds, 0))
}

/// `docker.io/library/nginx:latest` for `nginx`, as containerd names what it pulls.
pub fn normalize_image(image: &str) -> String {
    let (name, suffix) = match image.find('@') {
        Some(i) => (&image[..i], image[i..].to_string()),
        None => {
            let last = image.rsplit('/').next().unwrap_or(image);
            match last.rfind(':') {
                Some(i) => {
                    let cut = image.len() - last.len() + i;
                    (&image[..cut], image[cut..].to_string())
                }
                None => (image, ":latest".to_string()),
            }
        }
    };
    let first = name.split('/').next().unwrap_or("");
    let has_registry =
        name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let full = if has_registry {
        name.to_string()
    } else if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    };
    format!("{full}{suffix}")
}

/// containerd's message for an image that does not exist.
pub fn pull_error_message(image: &str) -> String {
    let r = normalize_image(image);
    format!(
        "Failed to pull image \"{image}\": rpc error: code = NotFound desc = failed to pull and unpack image \"{r}\": failed to resolve reference \"{r}\": {r}: not found"
    )
}

fn memory_limit(c: &Container) -> Option<i64> {
    let q = c.resources.as_ref()?.limits.as_ref()?.get("memory")?;
    Quantity::parse(&q.0)
        .ok()
        .map(|q| q.value().clamp(0, i64::MAX as i128) as i64)
}

/// Plans one attempt of `c` started at `input.now`.
pub fn plan(c: &Container, b: &Behaviour, input: &PlanInput<'_>) -> Timeline {
    let st = input.stages;
    let seed = |stage: u64| mix(input.seed ^ stage.wrapping_mul(0x2545_f491_4f6c_dd1d));
    let image = c.image.as_deref().unwrap_or("");
    let pull_fails = b.image_pull_error || image_cannot_be_pulled(image);
    let pull = match b.image_pull_duration {
        Some(d) => d,
        None if input.image_present && !pull_fails => Duration::ZERO,
        None => st.pull.pick(seed(1)),
    };
    if pull_fails {
        return Timeline::PullFails {
            at: input.now + pull,
            message: pull_error_message(image),
        };
    }
    let created = input.now + pull + st.create.pick(seed(2));
    if let Some(message) = &b.start_error {
        return Timeline::StartFails {
            at: created,
            message: message.clone(),
        };
    }
    let running_at = created;
    let started_at = running_at
        + b.started_after
            .or_else(|| probe_delay(c.startup_probe.as_ref()))
            .unwrap_or_default();
    let ready_from = (!b.never_ready).then(|| {
        let delay = b
            .ready_after
            .or_else(|| probe_delay(c.readiness_probe.as_ref()))
            .unwrap_or_default();
        started_at.max(after(running_at, delay))
    });
    let fails = match (b.unready_after, b.not_ready_for, ready_from) {
        (Some(after_d), span, _) => {
            let start = after(running_at, after_d);
            Some((start, span.map(|d| after(start, d))))
        }
        (None, Some(span), Some(from)) => Some((from, Some(after(from, span)))),
        _ => None,
    };
    let mut exits: Vec<PlannedExit> = Vec::new();
    if b.exit_after.is_some() || b.crash || b.exit_code.is_some() {
        let run_for = b.exit_after.unwrap_or_else(|| st.default_run.pick(seed(3)));
        let code = b.exit_code.unwrap_or(if b.crash { 1 } else { 0 });
        exits.push(PlannedExit {
            at: after(running_at, run_for),
            code,
            reason: if code == 0 { "Completed" } else { "Error" },
            message: None,
        });
    }
    if let Some((run_for, code)) = input.command_exit {
        exits.push(PlannedExit {
            at: after(running_at, run_for),
            code,
            reason: if code == 0 { "Completed" } else { "Error" },
            message: None,
        });
    }
    if let (Some(usage), Some(limit)) = (b.memory_usage, memory_limit(c)) {
        if usage > limit {
            exits.push(PlannedExit {
                at: running_at + st.oom_after.pick(seed(4)),
                code: 137,
                reason: "OOMKilled",
                message: None,
            });
        }
    }
    let mut kills: Vec<ProbeKill> = Vec::new();
    if let Some(p) = c.startup_probe.as_ref() {
        // The startup probe fails until `started_at`; `failureThreshold` failures kill first.
        let period = secs(p.period_seconds, 10);
        let threshold = p.failure_threshold.unwrap_or(3).max(1) as u32;
        let first = after(running_at, secs(p.initial_delay_seconds, 0));
        let kill = ProbeKill {
            kind: ProbeKind::Startup,
            first,
            period,
            count: threshold,
        };
        if kill.kill_at() < started_at {
            kills.push(kill);
        }
    }
    if let Some(fail_after) = b.liveness_fail_after {
        let p = c.liveness_probe.as_ref();
        let period = secs(p.and_then(|p| p.period_seconds), 10);
        let threshold = p.and_then(|p| p.failure_threshold).unwrap_or(3).max(1) as u32;
        let first = p.and_then(|p| p.initial_delay_seconds).unwrap_or(0).max(0) as u64;
        // Liveness is only probed once the container has started.
        let fail_from = after(running_at, fail_after)
            .max(after(running_at, Duration::from_secs(first)))
            .max(started_at);
        kills.push(ProbeKill {
            kind: ProbeKind::Liveness,
            first: after(fail_from, period),
            period,
            count: threshold,
        });
    }
    let kill_probe = kills.into_iter().min_by_key(|k| k.kill_at());
    if let Some(k) = &kill_probe {
        exits.push(PlannedExit {
            at: k.kill_at(),
            code: 137,
            reason: "Error",
            message: None,
        });
    }
    let exit = exits.into_iter().min_by_key(|e| e.at);
    let readiness_probe = c.readiness_probe.as_ref().map(|p| Probing {
        first: started_at.max(after(running_at, secs(p.initial_delay_seconds, 0))),
        period: secs(p.period_seconds, 10),
    });
    Timeline::Runs(Run {
        running_at,
        started_at,
        ready: Readiness {
            from: ready_from,
            fails,
        },
        exit,
        kill_probe,
        readiness_probe,
    })
}

/// How a stop request ends a running attempt.
pub struct StopInput<'a> {
    pub stages: &'a SimStages,
    pub seed: u64,
    pub now: Instant,
    pub grace: Duration,
}

fn pre_stop_duration(c: &Container, b: &Behaviour, st: &SimStages, seed: u64) -> Duration {
    let Some(hook) = c.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref()) else {
        return Duration::ZERO;
    };
    if let Some(sleep) = &hook.sleep {
        return seconds(sleep.seconds);
    }
    b.pre_stop_duration
        .unwrap_or_else(|| st.pre_stop.pick(seed))
}

/// Plans the end of an attempt asked to stop at `input.now`: preStop, then SIGTERM, then
/// SIGKILL when the grace period runs out.
pub fn plan_stop(c: &Container, b: &Behaviour, t: &Timeline, input: &StopInput<'_>) -> PlannedExit {
    let st = input.stages;
    let deadline = after(input.now, input.grace);
    let Timeline::Runs(run) = t else {
        return PlannedExit {
            at: input.now,
            code: 137,
            reason: "Error",
            message: None,
        };
    };
    if input.now < run.running_at {
        // Still being created: it is removed before it ever runs.
        return PlannedExit {
            at: input.now,
            code: 137,
            reason: "Error",
            message: None,
        };
    }
    let pre_stop = pre_stop_duration(c, b, st, mix(input.seed ^ 5));
    let term = b
        .termination_delay
        .unwrap_or_else(|| st.stop.pick(mix(input.seed ^ 6)));
    let graceful = after(after(input.now, pre_stop), term);
    if !b.ignore_sigterm && graceful < deadline {
        PlannedExit {
            at: graceful,
            code: 0,
            reason: "Completed",
            message: None,
        }
    } else {
        PlannedExit {
            at: deadline,
            code: 137,
            reason: "Error",
            message: None,
        }
    }
}

impl Timeline {
    /// The attempt's state at `now`, given a stop if one was requested.
    pub fn state_at(&self, now: Instant, stop: Option<&PlannedExit>) -> ContainerState {
        match self {
            Timeline::PullFails { at, message } => {
                if now >= *at {
                    ContainerState::PullFailed {
                        message: message.clone(),
                    }
                } else if let Some(s) = stop.filter(|s| now >= s.at) {
                    exited(s, None)
                } else {
                    ContainerState::Creating
                }
            }
            Timeline::StartFails { at, message } => {
                if let Some(s) = stop.filter(|s| now >= s.at && s.at < *at) {
                    return exited(s, None);
                }
                if now >= *at {
                    ContainerState::Exited(Exit {
                        exit_code: 128,
                        reason: "ContainerCannotRun".into(),
                        message: Some(message.clone()),
                        started_at: None,
                        finished_at: *at,
                    })
                } else {
                    ContainerState::Creating
                }
            }
            Timeline::Runs(run) => {
                let end = earliest(run.exit.as_ref(), stop);
                if let Some(e) = end.filter(|e| now >= e.at) {
                    let started = (e.at >= run.running_at).then_some(run.running_at);
                    return exited(e, started);
                }
                if now < run.running_at {
                    return ContainerState::Creating;
                }
                let started = now >= run.started_at;
                ContainerState::Running {
                    started_at: run.running_at,
                    started,
                    ready: started && run.ready.at(now),
                }
            }
        }
    }

    /// The next instant after `now` at which [`Timeline::state_at`] changes.
    pub fn next_change(&self, now: Instant, stop: Option<&PlannedExit>) -> Option<Instant> {
        let mut points: Vec<Instant> = stop.map(|s| s.at).into_iter().collect();
        match self {
            Timeline::PullFails { at, .. } | Timeline::StartFails { at, .. } => points.push(*at),
            Timeline::Runs(run) => {
                points.extend([run.running_at, run.started_at]);
                points.extend(run.ready.from);
                if let Some((start, end)) = run.ready.fails {
                    points.push(start);
                    points.extend(end);
                }
                points.extend(run.exit.as_ref().map(|e| e.at));
                // Each failure that leads to a kill is worth an `Unhealthy` event when it happens.
                if let Some(k) = &run.kill_probe {
                    points.extend(k.next_after(now));
                }
            }
        }
        if matches!(
            self.state_at(now, stop),
            ContainerState::Exited(_) | ContainerState::PullFailed { .. }
        ) {
            return None;
        }
        points.into_iter().filter(|p| *p > now).min()
    }
}

fn earliest<'a>(a: Option<&'a PlannedExit>, b: Option<&'a PlannedExit>) -> Option<&'a PlannedExit> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.at < a.at { b } else { a }),
        (a, b) => a.or(b),
    }
}

fn exited(e: &PlannedExit, started_at: Option<Instant>) -> ContainerState {
    ContainerState::Exited(Exit {
        exit_code: e.code,
        reason: e.reason.to_string(),
        message: e.message.clone(),
        started_at,
        finished_at: e.at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn container(v: serde_json::Value) -> Container {
        let mut v = v;
        v["name"] = json!("c");
        if v.get("image").is_none() {
            v["image"] = json!("nginx");
        }
        serde_json::from_value(v).unwrap()
    }

    fn fixed() -> SimStages {
        let ms = Duration::from_millis;
        SimStages {
            sandbox: StageDelay::fixed(ms(10)),
            pull: StageDelay::fixed(ms(100)),
            create: StageDelay::fixed(ms(10)),
            stop: StageDelay::fixed(ms(30)),
            pre_stop: StageDelay::fixed(ms(40)),
            default_run: StageDelay::fixed(ms(1000)),
            oom_after: StageDelay::fixed(ms(200)),
        }
    }

    fn run_plan(c: &Container, b: &Behaviour, now: Instant, present: bool) -> Timeline {
        plan(
            c,
            b,
            &PlanInput {
                stages: &fixed(),
                seed: 7,
                now,
                image_present: present,
                command_exit: None,
            },
        )
    }

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn a_plain_container_is_created_then_runs_ready_forever() {
        let t0 = Instant::now();
        let t = run_plan(&container(json!({})), &Behaviour::default(), t0, false);
        assert_eq!(
            t.state_at(t0 + ms(50), None),
            ContainerState::Creating,
            "still pulling"
        );
        match t.state_at(t0 + ms(110), None) {
            ContainerState::Running {
                started_at,
                started,
                ready,
            } => {
                assert_eq!(started_at, t0 + ms(110));
                assert!(started && ready);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(t.next_change(t0, None), Some(t0 + ms(110)));
        assert_eq!(
            t.next_change(t0 + ms(200), None),
            None,
            "nothing more happens"
        );
        let cached = run_plan(&container(json!({})), &Behaviour::default(), t0, true);
        assert!(
            matches!(
                cached.state_at(t0 + ms(10), None),
                ContainerState::Running { .. }
            ),
            "no pull when the image is there"
        );
    }

    #[test]
    fn exit_after_and_exit_code_end_the_run() {
        let t0 = Instant::now();
        let b = Behaviour {
            exit_after: Some(ms(500)),
            exit_code: Some(3),
            ..Default::default()
        };
        let t = run_plan(&container(json!({})), &b, t0, true);
        match t.state_at(t0 + ms(510), None) {
            ContainerState::Exited(e) => {
                assert_eq!((e.exit_code, e.reason.as_str()), (3, "Error"));
                assert_eq!(e.started_at, Some(t0 + ms(10)));
                assert_eq!(e.finished_at, t0 + ms(510));
            }
            other => panic!("{other:?}"),
        }
        let ok = run_plan(
            &container(json!({})),
            &Behaviour {
                exit_after: Some(ms(5)),
                ..Default::default()
            },
            t0,
            true,
        );
        assert!(
            matches!(ok.state_at(t0 + ms(20), None), ContainerState::Exited(Exit { exit_code: 0, ref reason, .. }) if reason == "Completed")
        );
        let crash = run_plan(
            &container(json!({})),
            &Behaviour {
                crash: true,
                ..Default::default()
            },
            t0,
            true,
        );
        assert!(matches!(
            crash.state_at(t0 + ms(1010), None),
            ContainerState::Exited(Exit { exit_code: 1, .. })
        ));
    }

    #[test]
    fn memory_over_the_limit_is_oom_killed() {
        let t0 = Instant::now();
        let c = container(json!({"resources": {"limits": {"memory": "512Mi"}}}));
        let b = Behaviour {
            memory_usage: Some(600 * 1024 * 1024),
            ..Default::default()
        };
        let t = run_plan(&c, &b, t0, true);
        match t.state_at(t0 + ms(210), None) {
            ContainerState::Exited(e) => {
                assert_eq!((e.exit_code, e.reason.as_str()), (137, "OOMKilled"))
            }
            other => panic!("{other:?}"),
        }
        let within = Behaviour {
            memory_usage: Some(100),
            ..Default::default()
        };
        assert!(matches!(
            run_plan(&c, &within, t0, true).state_at(t0 + ms(5000), None),
            ContainerState::Running { .. }
        ));
        let no_limit = container(json!({}));
        assert!(
            matches!(
                run_plan(&no_limit, &b, t0, true).state_at(t0 + ms(5000), None),
                ContainerState::Running { .. }
            ),
            "no limit, no OOM kill"
        );
    }

    #[test]
    fn missing_images_fail_the_pull() {
        let t0 = Instant::now();
        let t = run_plan(
            &container(json!({"image": "registry.example.com/nonexistent:v1"})),
            &Behaviour::default(),
            t0,
            true,
        );
        assert_eq!(t.state_at(t0 + ms(50), None), ContainerState::Creating);
        match t.state_at(t0 + ms(100), None) {
            ContainerState::PullFailed { message } => assert_eq!(
                message,
                "Failed to pull image \"registry.example.com/nonexistent:v1\": rpc error: code = NotFound desc = failed to pull and unpack image \"registry.example.com/nonexistent:v1\": failed to resolve reference \"registry.example.com/nonexistent:v1\": registry.example.com/nonexistent:v1: not found"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn probes_and_annotations_shape_startup_and_readiness() {
        let t0 = Instant::now();
        let c = container(
            json!({"startupProbe": {"exec": {"command": ["true"]}, "initialDelaySeconds": 2},
                                 "readinessProbe": {"exec": {"command": ["true"]}, "initialDelaySeconds": 1}}),
        );
        let Timeline::Runs(run) = run_plan(&c, &Behaviour::default(), t0, true) else {
            panic!()
        };
        assert_eq!(run.started_at, t0 + ms(2010));
        assert_eq!(
            run.ready.from,
            Some(t0 + ms(2010)),
            "readiness waits for startup"
        );
        let b = Behaviour {
            ready_after: Some(ms(100)),
            unready_after: Some(ms(300)),
            not_ready_for: Some(ms(200)),
            ..Default::default()
        };
        let t = run_plan(&container(json!({})), &b, t0, true);
        let ready = |at: u64| {
            matches!(
                t.state_at(t0 + ms(at), None),
                ContainerState::Running { ready: true, .. }
            )
        };
        assert!(!ready(50) && ready(120) && !ready(320) && !ready(500) && ready(520));
    }

    #[test]
    fn stops_honour_pre_stop_sigterm_and_the_grace_deadline() {
        let t0 = Instant::now();
        let st = fixed();
        let c = container(json!({"lifecycle": {"preStop": {"exec": {"command": ["true"]}}}}));
        let t = run_plan(&c, &Behaviour::default(), t0, true);
        let stop_at = t0 + ms(100);
        let input = |grace| StopInput {
            stages: &st,
            seed: 1,
            now: stop_at,
            grace,
        };
        let graceful = plan_stop(
            &c,
            &Behaviour::default(),
            &t,
            &input(Duration::from_secs(30)),
        );
        assert_eq!(
            (graceful.at, graceful.code),
            (stop_at + ms(70), 0),
            "preStop 40ms + SIGTERM 30ms"
        );
        let killed = plan_stop(&c, &Behaviour::default(), &t, &input(ms(50)));
        assert_eq!(
            (killed.at, killed.code, killed.reason),
            (stop_at + ms(50), 137, "Error")
        );
        let stubborn = Behaviour {
            ignore_sigterm: true,
            ..Default::default()
        };
        assert_eq!(
            plan_stop(&c, &stubborn, &t, &input(Duration::from_secs(2))).at,
            stop_at + Duration::from_secs(2)
        );
        let sleeper = container(json!({"lifecycle": {"preStop": {"sleep": {"seconds": 5}}}}));
        assert_eq!(
            plan_stop(
                &sleeper,
                &Behaviour::default(),
                &t,
                &input(Duration::from_secs(30))
            )
            .at,
            stop_at + ms(5030)
        );
        match t.state_at(stop_at + ms(70), Some(&graceful)) {
            ContainerState::Exited(e) => assert_eq!(e.started_at, Some(t0 + ms(10))),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn liveness_failures_lead_to_the_kill_and_are_reported_once() {
        let t0 = Instant::now();
        let c = container(
            json!({"livenessProbe": {"httpGet": {"path": "/", "port": 80},
                                  "periodSeconds": 1, "failureThreshold": 3}}),
        );
        let b = Behaviour {
            liveness_fail_after: Some(ms(500)),
            ..Default::default()
        };
        let Timeline::Runs(run) = run_plan(&c, &b, t0, true) else {
            panic!("runs")
        };
        // Running at 10ms; failing from 510ms; failures at 1.51s, 2.51s, 3.51s (the kill).
        let kill = run.exit.as_ref().unwrap();
        assert_eq!((kill.at, kill.code), (t0 + ms(3510), 137));
        let t = Timeline::Runs(run.clone());
        assert_eq!(t.next_change(t0 + ms(20), None), Some(t0 + ms(1510)));
        assert_eq!(t.next_change(t0 + ms(1510), None), Some(t0 + ms(2510)));
        let early = run.probe_failures(None, t0 + ms(2600), None);
        assert_eq!(
            early,
            vec![(ProbeKind::Liveness, false), (ProbeKind::Liveness, false)]
        );
        let rest = run.probe_failures(Some(t0 + ms(2600)), t0 + ms(9000), None);
        assert_eq!(
            rest,
            vec![(ProbeKind::Liveness, true)],
            "the last one kills"
        );
        assert!(run
            .probe_failures(Some(t0 + ms(9000)), t0 + ms(20000), None)
            .is_empty());
    }

    #[test]
    fn a_startup_probe_that_never_passes_kills_after_its_threshold() {
        let t0 = Instant::now();
        let c = container(json!({"startupProbe": {"exec": {"command": ["true"]},
                                 "periodSeconds": 2, "failureThreshold": 3}}));
        let slow = Behaviour {
            started_after: Some(Duration::from_secs(60)),
            ..Default::default()
        };
        let Timeline::Runs(run) = run_plan(&c, &slow, t0, true) else {
            panic!("runs")
        };
        assert_eq!(run.exit.as_ref().unwrap().at, t0 + ms(4010));
        let kinds = run.probe_failures(None, t0 + ms(5000), None);
        assert_eq!(kinds.last(), Some(&(ProbeKind::Startup, true)));
        let in_time = Behaviour {
            started_after: Some(Duration::from_secs(3)),
            ..Default::default()
        };
        let Timeline::Runs(ok) = run_plan(&c, &in_time, t0, true) else {
            panic!("runs")
        };
        assert!(ok.exit.is_none(), "started within the threshold");
    }

    #[test]
    fn readiness_failures_are_reported_while_probes_fail() {
        let t0 = Instant::now();
        let c =
            container(json!({"readinessProbe": {"tcpSocket": {"port": 80}, "periodSeconds": 1}}));
        let b = Behaviour {
            ready_after: Some(ms(2500)),
            ..Default::default()
        };
        let Timeline::Runs(run) = run_plan(&c, &b, t0, true) else {
            panic!("runs")
        };
        assert_eq!(
            run.probe_failures(None, t0 + ms(100), None),
            vec![(ProbeKind::Readiness, false)],
            "the first probe at start fails"
        );
        assert!(
            run.probe_failures(Some(t0 + ms(3000)), t0 + ms(9000), None)
                .is_empty(),
            "ready from 2.51s on"
        );
        let no_probe = container(json!({}));
        let Timeline::Runs(quiet) = run_plan(&no_probe, &b, t0, true) else {
            panic!("runs")
        };
        assert!(quiet.probe_failures(None, t0 + ms(9000), None).is_empty());
    }

    #[test]
    fn huge_thresholds_stay_cheap() {
        let t0 = Instant::now();
        let c = container(json!({"livenessProbe": {"exec": {"command": ["true"]},
                                  "periodSeconds": 1, "failureThreshold": i32::MAX}}));
        let b = Behaviour {
            liveness_fail_after: Some(ms(0)),
            ..Default::default()
        };
        let Timeline::Runs(run) = run_plan(&c, &b, t0, true) else {
            panic!("runs")
        };
        let failures = run.probe_failures(None, t0 + Duration::from_secs(1_000_000), None);
        assert_eq!(failures.len(), 10, "capped");
    }

    #[test]
    fn jitter_is_deterministic_and_bounded() {
        let d = StageDelay::new(ms(100), ms(50));
        for seed in 0..1000u64 {
            let v = d.pick(seed);
            assert!(v >= ms(100) && v <= ms(150));
            assert_eq!(v, d.pick(seed));
        }
        assert_ne!(seed_of(&["ab", "c"]), seed_of(&["a", "bc"]));
    }

    #[test]
    fn image_names_normalise_like_containerd() {
        assert_eq!(normalize_image("nginx"), "docker.io/library/nginx:latest");
        assert_eq!(
            normalize_image("nginx:1.27"),
            "docker.io/library/nginx:1.27"
        );
        assert_eq!(
            normalize_image("bitnami/redis"),
            "docker.io/bitnami/redis:latest"
        );
        assert_eq!(
            normalize_image("registry.k8s.io/pause:3.10"),
            "registry.k8s.io/pause:3.10"
        );
        assert_eq!(
            normalize_image("localhost:5000/app"),
            "localhost:5000/app:latest"
        );
        assert_eq!(
            normalize_image("busybox@sha256:abc"),
            "docker.io/library/busybox@sha256:abc"
        );
    }
}
