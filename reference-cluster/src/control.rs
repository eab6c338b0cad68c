//! Stopping and starting a running cluster's components, for failure injection (the chaos
//! scenarios of the suite). A stop aborts the component's task the way SIGKILL ends a process:
//! nothing is released or flushed, so a leader's Lease stays held until it expires, exactly what
//! a standby or a restarted replica meets upstream.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Result};
use tokio::task::JoinHandle;

/// Starts one instance of a component; called again for each restart.
pub type Starter = Box<dyn Fn() -> JoinHandle<()> + Send + Sync>;

struct Slot {
    start: Starter,
    running: Option<JoinHandle<()>>,
}

/// The components of one cluster by name (`kube-scheduler`, `kube-controller-manager`,
/// `node-fleet`), each with the means to start it again. Cheap to clone; clones share state.
#[derive(Clone, Default)]
pub struct ComponentControl {
    slots: Arc<Mutex<BTreeMap<&'static str, Slot>>>,
}

impl std::fmt::Debug for ComponentControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentControl")
            .field("components", &self.status())
            .finish()
    }
}

impl ComponentControl {
    /// Starts `name` now and remembers how to start it again.
    pub fn register(&self, name: &'static str, start: Starter) {
        let running = Some(start());
        let old = self.lock().insert(name, Slot { start, running });
        if let Some(h) = old.and_then(|s| s.running) {
            h.abort();
        }
    }

    /// Each component and whether it runs now (a component that ended on its own is not running).
    pub fn status(&self) -> Vec<(&'static str, bool)> {
        self.lock()
            .iter()
            .map(|(n, s)| (*n, s.running.as_ref().is_some_and(|h| !h.is_finished())))
            .collect()
    }

    /// Kills `name`. Stopping a component that is not running is refused, so that a scenario
    /// that thinks it stopped something learns it did not.
    pub fn stop(&self, name: &str) -> Result<()> {
        let mut slots = self.lock();
        let known = known(&slots);
        let Some(slot) = slots.get_mut(name) else {
            bail!("this cluster has no component named {name:?}; it has {known}");
        };
        match slot.running.take() {
            Some(h) if !h.is_finished() => {
                h.abort();
                Ok(())
            }
            _ => bail!("{name} is not running, so it cannot be stopped; start it first"),
        }
    }

    /// Starts `name` again after a stop (or after it ended on its own).
    pub fn start(&self, name: &str) -> Result<()> {
        let mut slots = self.lock();
        let known = known(&slots);
        let Some(slot) = slots.get_mut(name) else {
            bail!("this cluster has no component named {name:?}; it has {known}");
        };
        if slot.running.as_ref().is_some_and(|h| !h.is_finished()) {
            bail!("{name} is already running; stop it before starting it again");
        }
        slot.running = Some((slot.start)());
        Ok(())
    }

    /// Waits up to `grace` for every component to finish (they were told to stop), then kills
    /// what is left.
    pub async fn stop_all(&self, grace: std::time::Duration) {
        self.stop_where(grace, |_| true).await;
    }

    /// [`ComponentControl::stop_all`] for the components `which` names, in one go.
    pub async fn stop_where(&self, grace: std::time::Duration, which: impl Fn(&str) -> bool) {
        let handles: Vec<JoinHandle<()>> = self
            .lock()
            .iter_mut()
            .filter(|(name, _)| which(name))
            .filter_map(|(_, s)| s.running.take())
            .collect();
        let aborts: Vec<_> = handles.iter().map(|h| h.abort_handle()).collect();
        let _ = tokio::time::timeout(grace, futures::future::join_all(handles)).await;
        for a in aborts {
            a.abort();
        }
    }

    /// Kills every component at once.
    pub fn abort_all(&self) {
        for slot in self.lock().values_mut() {
            if let Some(h) = slot.running.take() {
                h.abort();
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, Slot>> {
        // A panic while holding the lock leaves the map consistent (every operation is a
        // single insert or take), so a poisoned lock is still usable.
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn known(slots: &BTreeMap<&'static str, Slot>) -> String {
    if slots.is_empty() {
        return "none (it runs only the API server)".into();
    }
    slots.keys().copied().collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// A component that counts its starts and runs until aborted.
    fn counting(starts: Arc<AtomicUsize>) -> Starter {
        Box::new(move || {
            starts.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async { tokio::time::sleep(Duration::from_secs(3600)).await })
        })
    }

    #[tokio::test]
    async fn stop_and_start_again_runs_a_fresh_instance() {
        let control = ComponentControl::default();
        let starts = Arc::new(AtomicUsize::new(0));
        control.register("kube-scheduler", counting(starts.clone()));
        assert_eq!(starts.load(Ordering::SeqCst), 1);
        assert_eq!(control.status(), vec![("kube-scheduler", true)]);

        control.stop("kube-scheduler").unwrap();
        tokio::task::yield_now().await;
        assert_eq!(control.status(), vec![("kube-scheduler", false)]);

        control.start("kube-scheduler").unwrap();
        assert_eq!(starts.load(Ordering::SeqCst), 2);
        assert_eq!(control.status(), vec![("kube-scheduler", true)]);
        control.abort_all();
    }

    #[tokio::test]
    async fn refusals_name_the_component_and_the_fix() {
        let control = ComponentControl::default();
        let err = control.stop("kube-scheduler").unwrap_err().to_string();
        assert!(err.contains("only the API server"), "{err}");

        control.register("kube-scheduler", counting(Arc::default()));
        let err = control.start("kube-scheduler").unwrap_err().to_string();
        assert!(err.contains("already running"), "{err}");
        control.stop("kube-scheduler").unwrap();
        let err = control.stop("kube-scheduler").unwrap_err().to_string();
        assert!(err.contains("not running"), "{err}");
        let err = control.stop("etcd").unwrap_err().to_string();
        assert!(err.contains("kube-scheduler"), "{err}");
        control.abort_all();
    }

    #[tokio::test]
    async fn a_component_that_ended_on_its_own_can_be_started() {
        let control = ComponentControl::default();
        control.register("node-fleet", Box::new(|| tokio::spawn(async {})));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(control.status(), vec![("node-fleet", false)]);
        control.start("node-fleet").unwrap();
    }
}
