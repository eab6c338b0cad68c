//! Invariants "at every moment": a watch records every state a set of pods (or ReplicaSets)
//! went through, and a later step checks bounds on each of them. Each watch event is applied in the order the
//! API server committed it, so a violation that lasted only between two events is still seen;
//! polling could miss it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher;
use kube::Api;

use super::support::{StepArgs, StepFailure, StepResult};
use crate::world::KubeWorld;

/// The totals at one moment, and what changed into it: for pods, active and ready pods; for
/// ReplicaSets, the replicas their specs ask for and those available.
#[derive(Clone, Debug, PartialEq)]
pub struct Moment {
    pub seconds: f64,
    /// Wall-clock time the watch event arrived, to line up with events and logs.
    pub at: chrono::DateTime<chrono::Utc>,
    pub active: usize,
    pub ready: usize,
    pub cause: String,
    /// The change that led here; replaying the changes up to a moment gives each object's
    /// part of the totals then, which a failure report shows.
    pub change: Change,
}

/// One object's contribution to the totals: (active or wanted, ready or available).
pub type Contribution = (usize, usize);

/// What a watch event did to the tracked set.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// A complete (re)list: every object and its contribution.
    Listed(Vec<(String, Contribution)>),
    Applied {
        name: String,
        resource_version: Option<String>,
        state: Contribution,
    },
    Deleted {
        name: String,
        resource_version: Option<String>,
    },
}

/// Each object's contribution right after `moments[index]`, by name.
pub fn objects_at(moments: &[Moment], index: usize) -> BTreeMap<String, Contribution> {
    let mut objects = BTreeMap::new();
    for m in moments.iter().take(index + 1) {
        match &m.change {
            Change::Listed(all) => objects = all.iter().cloned().collect(),
            Change::Applied { name, state, .. } => {
                objects.insert(name.clone(), *state);
            }
            Change::Deleted { name, .. } => {
                objects.remove(name);
            }
        }
    }
    objects
}

/// States after each watch event, kept until the scenario ends.
pub struct PodTracker {
    pub selector: String,
    moments: Arc<Mutex<Vec<Moment>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for PodTracker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PodTracker {
    pub fn moments(&self) -> Vec<Moment> {
        self.moments.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

/// What counts: pods not being deleted and not finished are active (as controllers count
/// them); active pods with `Ready=True` are ready.
fn pod_state(p: &Pod) -> (usize, usize) {
    let (active, ready) = pod_flags(p);
    (usize::from(active), usize::from(ready))
}

/// A ReplicaSet's part of a Deployment's bounds: the replicas its spec asks for (what upstream's
/// surge limit is computed on) and its available replicas.
fn replica_set_state(rs: &ReplicaSet) -> (usize, usize) {
    let wanted = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let available = rs
        .status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0);
    (wanted.max(0) as usize, available.max(0) as usize)
}

fn pod_flags(p: &Pod) -> (bool, bool) {
    let deleting = p.metadata.deletion_timestamp.is_some();
    let status = p.status.as_ref();
    let finished = matches!(
        status.and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    );
    let active = !deleting && !finished;
    let ready = active
        && status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    (active, ready)
}

/// Each object's contribution to the two totals, kept up to date from watch events.
#[derive(Default)]
struct Counter {
    objects: BTreeMap<String, (usize, usize)>,
}

impl Counter {
    fn totals(&self) -> (usize, usize) {
        self.objects
            .values()
            .fold((0, 0), |(a, r), (x, y)| (a + x, r + y))
    }

    fn apply(&mut self, name: &str, state: (usize, usize)) {
        self.objects.insert(name.to_string(), state);
    }

    fn remove(&mut self, name: &str) {
        self.objects.remove(name);
    }
}

pub async fn track(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let selector = world
        .render(args.req("sel")?)
        .map_err(|e| StepFailure::msg(e.to_string()))?;
    let kind = args.req("kind")?.to_string();
    let client = world.client()?.clone();
    let moments = Arc::new(Mutex::new(Vec::new()));
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let task = match kind.as_str() {
        "replicasets" => {
            let api: Api<ReplicaSet> = Api::namespaced(client, &world.namespace);
            let m = moments.clone();
            let sel = selector.clone();
            tokio::spawn(record(
                "ReplicaSet",
                api,
                sel,
                m,
                ready_tx,
                replica_set_state,
            ))
        }
        _ => {
            let api: Api<Pod> = Api::namespaced(client, &world.namespace);
            let m = moments.clone();
            let sel = selector.clone();
            tokio::spawn(record("Pod", api, sel, m, ready_tx, pod_state))
        }
    };
    // The tracker counts from a complete initial list: wait for it before the next step acts.
    let listed = tokio::time::timeout(std::time::Duration::from_secs(30), ready_rx).await;
    if !matches!(listed, Ok(Ok(()))) {
        task.abort();
        return Err(StepFailure::msg(format!(
            "could not list {kind} with label \"{selector}\" to start tracking them"
        )));
    }
    world.trackers.insert(
        kind,
        PodTracker {
            selector,
            moments,
            task,
        },
    );
    Ok(())
}

async fn record<K>(
    kind: &'static str,
    api: Api<K>,
    selector: String,
    moments: Arc<Mutex<Vec<Moment>>>,
    listed: tokio::sync::oneshot::Sender<()>,
    state: fn(&K) -> (usize, usize),
) where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + 'static,
{
    let started = Instant::now();
    let cfg = watcher::Config::default().labels(&selector);
    let mut stream = watcher::watcher(api, cfg).boxed();
    let mut counter = Counter::default();
    let mut relisting = Counter::default();
    let mut listed = Some(listed);
    let name = |o: &K| o.meta().name.clone().unwrap_or_default();
    let rv = |o: &K| o.meta().resource_version.clone();
    let describe = |what: &str, o: &K| match rv(o) {
        Some(v) => format!("{kind} {} {what} (resourceVersion {v})", name(o)),
        None => format!("{kind} {} {what}", name(o)),
    };
    while let Some(ev) = stream.next().await {
        let (cause, change) = match ev {
            Ok(watcher::Event::Init) => {
                relisting = Counter::default();
                continue;
            }
            Ok(watcher::Event::InitApply(o)) => {
                relisting.apply(&name(&o), state(&o));
                continue;
            }
            Ok(watcher::Event::InitDone) => {
                counter = std::mem::take(&mut relisting);
                if let Some(tx) = listed.take() {
                    let _ = tx.send(());
                }
                let all = counter
                    .objects
                    .iter()
                    .map(|(n, s)| (n.clone(), *s))
                    .collect();
                ("initial list".to_string(), Change::Listed(all))
            }
            Ok(watcher::Event::Apply(o)) => {
                counter.apply(&name(&o), state(&o));
                let change = Change::Applied {
                    name: name(&o),
                    resource_version: rv(&o),
                    state: state(&o),
                };
                (describe("changed", &o), change)
            }
            Ok(watcher::Event::Delete(o)) => {
                counter.remove(&name(&o));
                let change = Change::Deleted {
                    name: name(&o),
                    resource_version: rv(&o),
                };
                (describe("deleted", &o), change)
            }
            Err(_) => continue,
        };
        let (active, ready) = counter.totals();
        if let Ok(mut m) = moments.lock() {
            m.push(Moment {
                seconds: started.elapsed().as_secs_f64(),
                at: chrono::Utc::now(),
                active,
                ready,
                cause,
                change,
            });
        }
    }
}

/// The index of the first moment outside the bounds, if any.
pub fn first_violation(
    moments: &[Moment],
    at_most: Option<usize>,
    at_least_ready: Option<usize>,
) -> Option<usize> {
    moments.iter().position(|m| {
        at_most.is_some_and(|max| m.active > max) || at_least_ready.is_some_and(|min| m.ready < min)
    })
}

/// The words a tracked kind's two totals go by.
fn words(kind: &str) -> (&'static str, &'static str) {
    match kind {
        "replicasets" => ("wanted", "available"),
        _ => ("active", "ready"),
    }
}

/// A broken invariant as a report reads it: which invariant, when it first broke and through
/// which object's change, the observed totals against the bounds, each object's part, how
/// far and how long it stayed broken, and the state just before.
pub fn violation_report(
    kind: &str,
    selector: &str,
    moments: &[Moment],
    at_most: Option<usize>,
    at_least: Option<usize>,
    index: usize,
) -> String {
    let (active_word, ready_word) = words(kind);
    let m = &moments[index];
    let mut bounds = Vec::new();
    if let Some(max) = at_most {
        bounds.push(format!("at most {max} {active_word}"));
    }
    if let Some(min) = at_least {
        bounds.push(format!("at least {min} {ready_word}"));
    }
    let invariant = format!(
        "at every moment the {kind} with label \"{selector}\" had {}",
        bounds.join(" and ")
    );
    let mut broken = Vec::new();
    if let Some(max) = at_most.filter(|max| m.active > *max) {
        broken.push(format!("{} {active_word} > {max}", m.active));
    }
    if let Some(min) = at_least.filter(|min| m.ready < *min) {
        broken.push(format!("{} {ready_word} < {min}", m.ready));
    }
    let mut out = format!("invariant broken: {invariant}\n");
    out.push_str(&format!(
        "first broken {:.2} s after tracking began ({}), when {}: {} {active_word} and {} {ready_word} ({})\n",
        m.seconds,
        m.at.format("%H:%M:%S%.3f UTC"),
        m.cause,
        m.active,
        m.ready,
        broken.join(", ")
    ));
    let parts: Vec<String> = objects_at(moments, index)
        .iter()
        .map(|(name, (a, r))| format!("{name} {a} {active_word} / {r} {ready_word}"))
        .collect();
    out.push_str(&format!("objects then: {}\n", parts.join("; ")));
    let out_of_bounds: Vec<&Moment> = moments[index..]
        .iter()
        .filter(|m| {
            at_most.is_some_and(|max| m.active > max) || at_least.is_some_and(|min| m.ready < min)
        })
        .collect();
    let worst_active = out_of_bounds.iter().map(|m| m.active).max().unwrap_or(0);
    let worst_ready = out_of_bounds.iter().map(|m| m.ready).min().unwrap_or(0);
    let mut worst = Vec::new();
    if at_most.is_some() {
        worst.push(format!("most {active_word} {worst_active}"));
    }
    if at_least.is_some() {
        worst.push(format!("fewest {ready_word} {worst_ready}"));
    }
    let back = moments[index..].iter().find(|m| {
        !(at_most.is_some_and(|max| m.active > max) || at_least.is_some_and(|min| m.ready < min))
    });
    let until = match back {
        Some(b) => format!("back within bounds at {:.2} s", b.seconds),
        None => "still out of bounds at the last recorded moment".to_string(),
    };
    out.push_str(&format!(
        "{} of {} recorded moments out of bounds ({}); {until}\n",
        out_of_bounds.len(),
        moments.len(),
        worst.join(", ")
    ));
    if let Some(p) = index.checked_sub(1).map(|i| &moments[i]) {
        out.push_str(&format!(
            "just before, at {:.2} s ({}): {} {active_word} and {} {ready_word}\n",
            p.seconds, p.cause, p.active, p.ready
        ));
    }
    out
}

pub async fn tracked_bounds(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let kind = args.req("kind")?;
    let tracker = world.trackers.get(kind).ok_or_else(|| {
        StepFailure::msg(format!(
            "no {kind} are tracked: start with `When I track {kind} with label \"…\"`"
        ))
    })?;
    let at_most = args.get("max").map(str::parse::<usize>).transpose();
    let at_least = args.get("min").map(str::parse::<usize>).transpose();
    let (Ok(at_most), Ok(at_least)) = (at_most, at_least) else {
        return Err(StepFailure::msg("the bounds must be whole numbers"));
    };
    let moments = tracker.moments();
    if moments.is_empty() {
        return Err(StepFailure::msg(format!(
            "nothing was recorded for {kind} with label \"{}\"",
            tracker.selector
        )));
    }
    match first_violation(&moments, at_most, at_least) {
        None => Ok(()),
        Some(i) => Err(StepFailure::msg(violation_report(
            kind,
            &tracker.selector,
            &moments,
            at_most,
            at_least,
            i,
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, ready: bool, deleting: bool) -> Pod {
        let mut v = serde_json::json!({"metadata": {"name": name}, "status": {"phase": "Running",
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}});
        if deleting {
            v["metadata"]["deletionTimestamp"] = serde_json::json!("2026-01-01T00:00:00Z");
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn terminating_and_finished_pods_do_not_count() {
        let mut c = Counter::default();
        c.apply("a", pod_state(&pod("a", true, false)));
        c.apply("b", pod_state(&pod("b", false, false)));
        c.apply("c", pod_state(&pod("c", true, true)));
        assert_eq!(c.totals(), (2, 1));
        c.remove("a");
        assert_eq!(c.totals(), (1, 0));
    }

    #[test]
    fn replica_sets_count_what_their_specs_want_and_have_available() {
        let rs: ReplicaSet = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "a"},
            "spec": {"replicas": 7, "selector": {}},
            "status": {"replicas": 8, "availableReplicas": 6}}))
        .unwrap();
        let mut c = Counter::default();
        c.apply("a", replica_set_state(&rs));
        c.apply("b", (5, 2));
        assert_eq!(c.totals(), (12, 8));
    }

    fn moment(active: usize, ready: usize, change: Change) -> Moment {
        Moment {
            seconds: 0.0,
            at: chrono::Utc::now(),
            active,
            ready,
            cause: String::new(),
            change,
        }
    }

    fn applied(name: &str, rv: &str, state: Contribution) -> Change {
        Change::Applied {
            name: name.into(),
            resource_version: Some(rv.into()),
            state,
        }
    }

    #[test]
    fn the_first_moment_out_of_bounds_is_reported() {
        let m = |active, ready| moment(active, ready, Change::Listed(Vec::new()));
        let moments = vec![m(10, 10), m(13, 10), m(14, 9), m(12, 7)];
        assert_eq!(first_violation(&moments, Some(13), Some(8)), Some(2));
        assert_eq!(first_violation(&moments, None, Some(8)), Some(3));
        assert_eq!(first_violation(&moments, Some(14), Some(7)), None);
    }

    #[test]
    fn a_violation_names_the_invariant_the_change_and_each_objects_part() {
        let mut moments = vec![
            moment(10, 10, Change::Listed(vec![("web-old".into(), (10, 10))])),
            moment(13, 10, applied("web-new", "41", (3, 0))),
            moment(3, 0, applied("web-old", "42", (0, 0))),
            moment(10, 3, applied("web-new", "43", (10, 3))),
            moment(10, 10, applied("web-new", "44", (10, 10))),
        ];
        moments[2].seconds = 1.5;
        moments[2].cause = "ReplicaSet web-old changed (resourceVersion 42)".into();
        moments[4].seconds = 4.25;
        let i = first_violation(&moments, Some(13), Some(8)).unwrap();
        assert_eq!(i, 2);
        let text = violation_report("replicasets", "app=web", &moments, Some(13), Some(8), i);
        assert!(
            text.starts_with("invariant broken: at every moment the replicasets with label \"app=web\" had at most 13 wanted and at least 8 available\n"),
            "{text}"
        );
        assert!(
            text.contains("1.50 s after tracking began")
                && text.contains("when ReplicaSet web-old changed (resourceVersion 42): 3 wanted and 0 available (0 available < 8)"),
            "{text}"
        );
        assert!(
            text.contains(
                "objects then: web-new 3 wanted / 0 available; web-old 0 wanted / 0 available"
            ),
            "{text}"
        );
        assert!(
            text.contains("2 of 5 recorded moments out of bounds (most wanted 10, fewest available 0); back within bounds at 4.25 s"),
            "{text}"
        );
        assert!(text.contains("just before, at 0.00 s"), "{text}");
    }

    #[test]
    fn objects_are_replayed_through_lists_and_deletions() {
        let moments = vec![
            moment(
                0,
                0,
                Change::Listed(vec![("a".into(), (1, 1)), ("b".into(), (1, 0))]),
            ),
            moment(
                0,
                0,
                Change::Deleted {
                    name: "a".into(),
                    resource_version: None,
                },
            ),
            moment(0, 0, applied("c", "7", (1, 1))),
            moment(0, 0, Change::Listed(vec![("d".into(), (2, 2))])),
        ];
        let names = |i| objects_at(&moments, i).into_keys().collect::<Vec<_>>();
        assert_eq!(names(0), ["a", "b"]);
        assert_eq!(names(2), ["b", "c"]);
        assert_eq!(names(3), ["d"]);
    }
}
