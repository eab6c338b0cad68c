//! Keeps the store bounded: every interval, forget history older than the revision seen one
//! interval ago (as kube-apiserver compacts etcd every 5 minutes).

use std::sync::Arc;
use std::time::Duration;

use crate::store::Store;

pub async fn run(store: Arc<dyn Store>, interval: Duration) {
    let mut previous = None;
    loop {
        tokio::time::sleep(interval).await;
        let Ok(current) = store.current_revision().await else {
            continue;
        };
        if let Some(rev) = previous {
            if let Err(e) = store.compact(rev).await {
                tracing::warn!("compaction to revision {rev} failed: {e}");
            }
        }
        previous = Some(current);
    }
}
