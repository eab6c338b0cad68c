//! The in-memory backend: the MVCC [`Index`] plus an [`EventWindow`], nothing durable.
//! Meant for unit tests and throwaway clusters.

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::{Mutex, RwLock};

use super::mvcc::{Index, Pending, WriteOp};
use super::window::{EventWindow, DEFAULT_WATCHER_BUFFER};
use super::{EventStream, KeyValue, ListResult, Revision, Store, StoreResult};

pub struct MemoryStore {
    index: RwLock<Index>,
    /// Serialises writers from revision assignment through publication, so events reach the
    /// window in revision order while readers only wait for the index update itself.
    writer: Mutex<()>,
    window: EventWindow,
}

impl MemoryStore {
    /// `window`: how many recent events watches can replay.
    pub fn new(window: usize) -> Self {
        Self::with_watcher_buffer(window, DEFAULT_WATCHER_BUFFER)
    }

    /// Like [`MemoryStore::new`], with `watcher_buffer` live events a watcher may have queued
    /// before it is cut off as too slow.
    pub fn with_watcher_buffer(window: usize, watcher_buffer: usize) -> Self {
        MemoryStore {
            index: RwLock::new(Index::new()),
            writer: Mutex::new(()),
            window: EventWindow::new(window, watcher_buffer, 0),
        }
    }

    fn write(&self, op: WriteOp) -> StoreResult<KeyValue> {
        let _writer = self.writer.lock();
        let event = {
            let mut index = self.index.write();
            let revision = index.revision() + 1;
            let mutation = index.prepare(op, &Pending::new(), revision)?;
            index.apply(mutation)?
        };
        let kv = event.kv.clone();
        self.window.publish(std::iter::once(event));
        Ok(kv)
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn get(&self, key: &str) -> StoreResult<Option<KeyValue>> {
        Ok(self.index.read().get(key))
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        at: Option<Revision>,
        limit: usize,
    ) -> StoreResult<ListResult> {
        self.index.read().list(prefix, start_after, at, limit)
    }

    async fn create(&self, key: &str, value: Bytes) -> StoreResult<KeyValue> {
        self.write(WriteOp::Create {
            key: key.to_string(),
            value,
        })
    }

    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> StoreResult<KeyValue> {
        self.write(WriteOp::Update {
            key: key.to_string(),
            value,
            expected,
        })
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> StoreResult<KeyValue> {
        self.write(WriteOp::Delete {
            key: key.to_string(),
            expected,
        })
    }

    async fn current_revision(&self) -> StoreResult<Revision> {
        Ok(self.index.read().revision())
    }

    async fn watch(&self, prefix: &str, from: Revision) -> StoreResult<EventStream> {
        self.window.watch(prefix, from)
    }

    async fn compact(&self, revision: Revision) -> StoreResult<()> {
        let _writer = self.writer.lock();
        self.index.write().compact(revision)?;
        self.window.compact(revision);
        Ok(())
    }

    fn compacted_revision(&self) -> Revision {
        self.index.read().compacted()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::{self, Fixture};
    use std::sync::Arc;

    async fn fixture() -> Option<Fixture> {
        Some(Fixture::new(Arc::new(MemoryStore::new(10_000)), ()))
    }

    conformance::conformance_suite!(fixture);

    #[tokio::test]
    async fn first_write_is_revision_one() {
        conformance::first_write_is_revision_one(&MemoryStore::new(10)).await;
    }

    #[tokio::test]
    async fn watch_from_before_the_window_is_expired() {
        conformance::watch_before_window_is_expired(&MemoryStore::new(5), 5).await;
    }

    #[tokio::test]
    async fn slow_watcher_gets_expired_and_writers_continue() {
        conformance::slow_watcher_is_cut_off(&MemoryStore::with_watcher_buffer(1000, 8), 8).await;
    }
}
