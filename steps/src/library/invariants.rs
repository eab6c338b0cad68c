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
    pub active: usize,
    pub ready: usize,
    pub cause: String,
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
            tokio::spawn(record(api, sel, m, ready_tx, replica_set_state))
        }
        _ => {
            let api: Api<Pod> = Api::namespaced(client, &world.namespace);
            let m = moments.clone();
            let sel = selector.clone();
            tokio::spawn(record(api, sel, m, ready_tx, pod_state))
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
    while let Some(ev) = stream.next().await {
        let cause = match ev {
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
                "initial list".to_string()
            }
            Ok(watcher::Event::Apply(o)) => {
                counter.apply(&name(&o), state(&o));
                format!("{} changed", name(&o))
            }
            Ok(watcher::Event::Delete(o)) => {
                counter.remove(&name(&o));
                format!("{} deleted", name(&o))
            }
            Err(_) => continue,
        };
        let (active, ready) = counter.totals();
        if let Ok(mut m) = moments.lock() {
            m.push(Moment {
                seconds: started.elapsed().as_secs_f64(),
                active,
                ready,
                cause,
            });
        }
    }
}

/// The first moment outside the bounds, if any.
pub fn first_violation(
    moments: &[Moment],
    at_most: Option<usize>,
    at_least_ready: Option<usize>,
) -> Option<&Moment> {
    moments.iter().find(|m| {
        at_most.is_some_and(|max| m.active > max) || at_least_ready.is_some_and(|min| m.ready < min)
    })
}

pub async fn tracked_bounds(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let kind = args.req("kind")?;
    let (active_word, ready_word) = match kind {
        "replicasets" => ("replicas wanted", "available"),
        _ => ("active", "ready"),
    };
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
        Some(m) => Err(StepFailure::msg(format!(
            "at {:.2} s ({}), {kind} with label \"{}\" had {} {active_word} and {} {ready_word} (bounds: at most {}, at least {}; {} moments recorded)",
            m.seconds,
            m.cause,
            tracker.selector,
            m.active,
            m.ready,
            at_most.map_or("-".into(), |v| v.to_string()),
            at_least.map_or("-".into(), |v| v.to_string()),
            moments.len()
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

    #[test]
    fn the_first_moment_out_of_bounds_is_reported() {
        let m = |active, ready| Moment {
            seconds: 0.0,
            active,
            ready,
            cause: String::new(),
        };
        let moments = vec![m(10, 10), m(13, 10), m(14, 9), m(12, 7)];
        assert_eq!(
            first_violation(&moments, Some(13), Some(8)),
            Some(&moments[2])
        );
        assert_eq!(first_violation(&moments, None, Some(8)), Some(&moments[3]));
        assert_eq!(first_violation(&moments, Some(14), Some(7)), None);
    }
}
