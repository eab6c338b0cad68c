//! Pods held at Permit (upstream `waitingPodsMap`): a Permit plugin may answer Wait with a
//! timeout; the pod then stays assumed on its node while its binding cycle waits until every
//! waiting plugin has allowed it, any of them rejects it, or one plugin's timeout passes (which
//! rejects it). Allow and Reject come from elsewhere: another plugin, an event handler, a test.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{Code, Status};
use crate::scheduler::podinfo::PodInfo;

/// Upstream caps how long any plugin may hold a pod at Permit.
pub const MAX_PERMIT_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Go's `%v` of a `time.Duration`.
pub use crate::apiserver::protobuf::go_format::std_duration as go_duration;

struct Inner {
    /// Plugins that have not allowed the pod yet, with when each gives up.
    pending: BTreeMap<&'static str, (Instant, Duration)>,
    /// Taken by the first decision; later ones are ignored.
    done: Option<oneshot::Sender<Status>>,
}

/// One pod waiting at Permit.
pub struct WaitingPod {
    pub pod: Arc<PodInfo>,
    pub node: String,
    inner: Mutex<Inner>,
    rx: Mutex<Option<oneshot::Receiver<Status>>>,
}

impl WaitingPod {
    fn new(pod: Arc<PodInfo>, node: &str, plugins: &[(&'static str, Duration)]) -> WaitingPod {
        let (tx, rx) = oneshot::channel();
        let now = Instant::now();
        WaitingPod {
            pod,
            node: node.to_string(),
            inner: Mutex::new(Inner {
                pending: plugins
                    .iter()
                    .map(|(p, t)| {
                        let t = (*t).min(MAX_PERMIT_TIMEOUT);
                        (*p, (now + t, t))
                    })
                    .collect(),
                done: Some(tx),
            }),
            rx: Mutex::new(Some(rx)),
        }
    }

    /// The plugins still to allow the pod.
    pub fn pending_plugins(&self) -> Vec<&'static str> {
        self.inner.lock().pending.keys().copied().collect()
    }

    /// `plugin` lets the pod go on; once no plugin is left, the binding cycle continues.
    pub fn allow(&self, plugin: &str) {
        let mut inner = self.inner.lock();
        inner.pending.remove(plugin);
        if inner.pending.is_empty() {
            if let Some(tx) = inner.done.take() {
                let _ = tx.send(Status::success());
            }
        }
    }

    /// Turns the pod down: its binding cycle fails as Unschedulable with `message`.
    pub fn reject(&self, plugin: &str, message: &str) {
        let mut inner = self.inner.lock();
        let name = inner
            .pending
            .keys()
            .find(|p| **p == plugin)
            .copied()
            .unwrap_or("");
        if let Some(tx) = inner.done.take() {
            let _ = tx.send(Status::unschedulable(message.to_string()).with_plugin(name));
        }
    }

    /// The earliest deadline among the plugins still pending.
    fn next_deadline(&self) -> Option<(&'static str, Instant, Duration)> {
        self.inner
            .lock()
            .pending
            .iter()
            .min_by_key(|(_, (at, _))| *at)
            .map(|(p, (at, t))| (*p, *at, *t))
    }

    fn still_pending(&self, plugin: &str) -> bool {
        self.inner.lock().pending.contains_key(plugin)
    }

    /// Resolves once the pod is allowed or rejected; a plugin's timeout rejects it.
    async fn wait(&self) -> Status {
        let Some(mut rx) = self.rx.lock().take() else {
            return Status::error("the pod's Permit decision was already awaited");
        };
        loop {
            let next = self.next_deadline();
            let timer = async {
                match next {
                    Some((_, at, _)) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = &mut rx => {
                    return r.unwrap_or_else(|_| Status::error("the pod's Permit wait was abandoned"));
                }
                _ = timer => {
                    if let Some((plugin, _, t)) = next {
                        if self.still_pending(plugin) {
                            self.reject(
                                plugin,
                                &format!(
                                    "rejected due to timeout after waiting {} at plugin {plugin}",
                                    go_duration(t)
                                ),
                            );
                        }
                    }
                }
            }
        }
    }
}

/// Every pod waiting at Permit, by UID.
#[derive(Default)]
pub struct WaitingPods {
    pods: Mutex<HashMap<String, Arc<WaitingPod>>>,
}

impl WaitingPods {
    /// Holds `pod` until each of `plugins` allows it (or one rejects it or times out).
    pub fn add(
        &self,
        pod: Arc<PodInfo>,
        node: &str,
        plugins: &[(&'static str, Duration)],
    ) -> Arc<WaitingPod> {
        let wp = Arc::new(WaitingPod::new(pod.clone(), node, plugins));
        self.pods.lock().insert(pod.uid.clone(), wp.clone());
        wp
    }

    pub fn get(&self, uid: &str) -> Option<Arc<WaitingPod>> {
        self.pods.lock().get(uid).cloned()
    }

    pub fn len(&self) -> usize {
        self.pods.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every waiting pod (upstream `IterateOverWaitingPods`).
    pub fn all(&self) -> Vec<Arc<WaitingPod>> {
        self.pods.lock().values().cloned().collect()
    }

    /// Rejects the pod with this UID if it is waiting; true if it was.
    pub fn reject(&self, uid: &str, plugin: &str, message: &str) -> bool {
        match self.get(uid) {
            Some(wp) => {
                wp.reject(plugin, message);
                true
            }
            None => false,
        }
    }

    /// Waits for the decision on the pod with this UID (success at once if it is not waiting)
    /// and forgets it.
    pub async fn wait_on_permit(&self, uid: &str) -> Status {
        let Some(wp) = self.get(uid) else {
            return Status::success();
        };
        let s = wp.wait().await;
        self.pods.lock().remove(uid);
        s
    }
}

/// Whether a Permit status asks the pod to wait.
pub fn is_wait(s: &Status) -> bool {
    s.code() == Code::Wait
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::testutil::pod;
    use serde_json::json;

    fn waiting(pods: &WaitingPods, plugins: &[(&'static str, Duration)]) -> Arc<WaitingPod> {
        let mut p = pod("p", json!({"containers": []}));
        p.uid = "uid-p".into();
        pods.add(Arc::new(p), "n1", plugins)
    }

    #[test]
    fn durations_print_as_go_does() {
        assert_eq!(go_duration(Duration::from_secs(10)), "10s");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_millis(300)), "300ms");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
    }

    #[tokio::test]
    async fn allowed_by_every_plugin() {
        let pods = WaitingPods::default();
        let wp = waiting(
            &pods,
            &[
                ("A", Duration::from_secs(60)),
                ("B", Duration::from_secs(60)),
            ],
        );
        assert_eq!(wp.pending_plugins(), ["A", "B"]);
        wp.allow("A");
        assert_eq!(wp.pending_plugins(), ["B"]);
        let waiter = tokio::spawn(async move { pods.wait_on_permit("uid-p").await });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "B has not allowed yet");
        wp.allow("B");
        assert!(waiter.await.unwrap().is_success());
    }

    #[tokio::test]
    async fn rejected_from_elsewhere() {
        let pods = Arc::new(WaitingPods::default());
        waiting(&pods, &[("A", Duration::from_secs(10))]);
        let p2 = pods.clone();
        let waiter = tokio::spawn(async move { p2.wait_on_permit("uid-p").await });
        assert!(pods.reject("uid-p", "A", "not today"));
        let s = waiter.await.unwrap();
        assert_eq!(
            (s.code(), s.message().as_str(), s.plugin()),
            (Code::Unschedulable, "not today", "A")
        );
        assert!(pods.is_empty(), "a decided pod is forgotten");
        assert!(!pods.reject("uid-p", "A", "again"));
    }

    #[tokio::test]
    async fn the_shortest_pending_timeout_rejects() {
        let pods = WaitingPods::default();
        let wp = waiting(
            &pods,
            &[
                ("Slow", Duration::from_millis(200)),
                ("Fast", Duration::from_millis(20)),
            ],
        );
        // An allowed plugin's timer no longer counts.
        wp.allow("Fast");
        let s = pods.wait_on_permit("uid-p").await;
        assert_eq!(s.code(), Code::Unschedulable);
        assert_eq!(
            s.message(),
            "rejected due to timeout after waiting 200ms at plugin Slow"
        );
        assert_eq!(s.plugin(), "Slow");
    }

    /// A Permit plugin as an out-of-tree one would be: pods labelled `permit=wait` wait up to
    /// the given time, `permit=deny` are rejected, the rest pass.
    struct Gate(Duration);

    impl crate::scheduler::framework::Plugin for Gate {
        fn name(&self) -> &'static str {
            "Gate"
        }
        fn points(&self) -> u32 {
            crate::scheduler::framework::points::PERMIT
        }
        fn permit(
            &self,
            _ctx: &crate::scheduler::framework::Ctx,
            _state: &crate::scheduler::framework::CycleState,
            pod: &PodInfo,
            _node: &str,
        ) -> (Status, Duration) {
            match pod
                .labels()
                .and_then(|l| l.get("permit"))
                .map(String::as_str)
            {
                Some("wait") => (Status::code_only(Code::Wait), self.0),
                Some("deny") => (Status::unschedulable("denied by the gate"), Duration::ZERO),
                _ => (Status::success(), Duration::ZERO),
            }
        }
    }

    fn labelled(name: &str, value: &str) -> Arc<PodInfo> {
        let mut p = pod(name, json!({"containers": []}));
        let mut raw = (*p.pod).clone();
        raw.metadata.labels = Some([("permit".to_string(), value.to_string())].into());
        p = PodInfo::new(Arc::new(raw), 0);
        p.uid = format!("uid-{name}");
        Arc::new(p)
    }

    #[tokio::test]
    async fn framework_holds_a_pod_its_permit_plugin_waits_on() {
        use crate::scheduler::framework::runtime::PluginLists;
        use crate::scheduler::framework::{CycleState, Framework};
        let fwk = Arc::new(Framework::new(
            "test",
            None,
            PluginLists {
                permit: vec![Arc::new(Gate(Duration::from_secs(30 * 60)))],
                ..Default::default()
            },
        ));
        let (cache, nominator) = crate::scheduler::testutil::ctx_for(vec![]);
        let ctx = crate::scheduler::framework::Ctx {
            cache: &cache,
            nominator: &nominator,
        };
        let state = CycleState::new();

        let (s, waits) = fwk.run_permit(&ctx, &state, &labelled("free", "no"), "n1");
        assert!(s.is_success() && waits.is_empty());
        let (s, _) = fwk.run_permit(&ctx, &state, &labelled("denied", "deny"), "n1");
        assert_eq!(
            (s.code(), s.plugin(), s.message().as_str()),
            (Code::Unschedulable, "Gate", "denied by the gate")
        );

        let held = labelled("held", "wait");
        let (s, waits) = fwk.run_permit(&ctx, &state, &held, "n1");
        assert!(s.is_wait());
        assert_eq!(
            waits,
            [("Gate", MAX_PERMIT_TIMEOUT)],
            "timeouts are capped at 15 minutes"
        );
        fwk.waiting.add(held.clone(), "n1", &waits);
        let binding = {
            let (fwk, held) = (fwk.clone(), held.clone());
            tokio::spawn(async move { fwk.wait_on_permit(&held).await })
        };
        tokio::task::yield_now().await;
        assert!(!binding.is_finished(), "the binding cycle waits for Allow");
        let wp = fwk.waiting.get("uid-held").expect("the pod is waiting");
        assert_eq!(
            (wp.node.as_str(), wp.pending_plugins()),
            ("n1", vec!["Gate"])
        );
        wp.allow("Gate");
        assert!(binding.await.unwrap().is_success());
        assert!(fwk.waiting.is_empty());
    }

    #[tokio::test]
    async fn not_waiting_means_allowed() {
        assert!(WaitingPods::default()
            .wait_on_permit("nobody")
            .await
            .is_success());
    }
}
