//! The machinery every controller of the controller-manager shares, as client-go provides it
//! to kube-controller-manager: shared informers, work queues, expectations, an event recorder,
//! and the worker loop that drives a level-triggered `sync(key)`.

pub mod events;
pub mod expectations;
pub mod factory;
pub mod informer;
pub mod ownership;
pub mod pods;
pub mod queue;
pub mod selector;

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use factory::{InformerSet, SharedInformers};
pub use informer::{key_of, split_key, Change, Informer};
pub use queue::WorkQueue;

/// What a sync asks of the queue besides forgetting past failures.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Requeue {
    #[default]
    No,
    After(Duration),
}

/// One controller's reconcile function, called with a queue key (`namespace/name`).
#[async_trait::async_trait]
pub trait Reconciler: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    async fn sync(&self, key: &str) -> anyhow::Result<Requeue>;
}

/// Whether an error is an API conflict (a stale cache; the retry will see fresher state).
pub fn is_conflict(e: &anyhow::Error) -> bool {
    e.downcast_ref::<kube::Error>()
        .is_some_and(|e| matches!(e, kube::Error::Api(s) if s.code == 409))
}

pub fn api_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

pub fn is_not_found(e: &kube::Error) -> bool {
    api_code(e) == Some(404)
}

pub fn is_already_exists(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409 && s.reason == "AlreadyExists")
}

/// Creation refused because the namespace is being deleted (upstream's
/// `NamespaceTerminatingCause`): nothing to do, the namespace controller removes everything.
pub fn is_namespace_terminating(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 403
        && (s.message.contains("because it is being terminated")
            || s.details.as_ref().is_some_and(|d| d.causes.iter().any(|c| c.reason == "NamespaceTerminating"))))
}

/// Starts `workers` loops taking keys from `queue` until it is shut down.
pub fn run_workers<R: Reconciler>(
    reconciler: Arc<R>,
    queue: Arc<WorkQueue<String>>,
    workers: usize,
) -> Vec<JoinHandle<()>> {
    (0..workers.max(1))
        .map(|_| {
            let r = reconciler.clone();
            let q = queue.clone();
            tokio::spawn(async move {
                while let Some(key) = q.get().await {
                    // A bug in one sync must not take the worker down with it.
                    let outcome = std::panic::AssertUnwindSafe(r.sync(&key)).catch_unwind().await;
                    let result = match outcome {
                        Ok(r) => r,
                        Err(panic) => {
                            let what = panic
                                .downcast_ref::<&str>()
                                .map(|s| s.to_string())
                                .or_else(|| panic.downcast_ref::<String>().cloned())
                                .unwrap_or_default();
                            tracing::error!(controller = r.name(), %key, panic = %what, "sync panicked");
                            Err(anyhow::anyhow!("sync panicked: {what}"))
                        }
                    };
                    match result {
                        Ok(requeue) => {
                            q.forget(&key);
                            if let Requeue::After(d) = requeue {
                                q.add_after(key.clone(), d);
                            }
                        }
                        Err(e) => {
                            if is_conflict(&e) {
                                tracing::debug!(controller = r.name(), %key, "conflict; retrying");
                            } else {
                                tracing::info!(controller = r.name(), %key, error = %format!("{e:#}"), "sync failed; retrying");
                            }
                            q.add_rate_limited(key.clone());
                        }
                    }
                    q.done(&key);
                }
            })
        })
        .collect()
}

/// Shuts `queue` down when `stop` turns true (or its sender goes away).
pub fn shut_down_on(
    queue: Arc<WorkQueue<String>>,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        while !*stop.borrow() {
            if stop.changed().await.is_err() {
                break;
            }
        }
        queue.shut_down();
    })
}
