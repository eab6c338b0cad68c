//! Control loops the security features need inside the API server process, each the in-process
//! counterpart of an upstream controller: ClusterRole aggregation, the default ServiceAccount
//! and `kube-root-ca.crt` of every namespace, and ResourceQuota usage.

use std::time::Duration;

use futures::StreamExt;

use super::ApiServer;
use crate::store::{Event, EventStream, Revision};

pub mod aggregation;
pub mod quota;
pub mod service_accounts;

/// Waits for the next event on `events` until `deadline`; `None` when the watch ended, broke,
/// or the deadline passed (time for a full resync).
async fn next_event(
    events: &mut EventStream,
    deadline: &mut std::pin::Pin<&mut tokio::time::Sleep>,
) -> Option<Event> {
    tokio::select! {
        _ = deadline.as_mut() => None,
        ev = events.next() => match ev {
            Some(Ok(ev)) => Some(ev),
            _ => None,
        },
    }
}

/// A watch on `prefix` from `from`, or `None` after a short pause when the store refuses.
async fn watch(server: &ApiServer, prefix: &str, from: Revision) -> Option<EventStream> {
    match server.store.watch(prefix, from).await {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::debug!("watch on {prefix} failed: {e}");
            tokio::time::sleep(Duration::from_millis(500)).await;
            None
        }
    }
}
