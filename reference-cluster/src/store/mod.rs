//! Storage layer: a key/value MVCC store shaped like Kubernetes' `storage.Interface`.
//!
//! One global, monotonically increasing revision; an object's `resourceVersion` is the
//! revision of its last modification. Backends: [`memory`] (unit tests), [`embedded`]
//! (durable write-ahead log with group commit; the default) and [`etcd`] (etcd v3).
//! The in-process backends serve watches from a bounded window of recent events
//! ([`window::EventWindow`]), the etcd backend from etcd's own history; a watch from before
//! what the backend still holds fails with [`StoreError::Expired`].

use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;

pub type Revision = i64;

/// One stored version of a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Bytes,
    /// Revision at which the key was created (for this incarnation of the key).
    pub create_revision: Revision,
    /// Revision of the last modification (for a delete event: the deletion revision).
    pub mod_revision: Revision,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Put,
    Delete,
}

/// A change to one key. For `Put`, `kv` is the new value and `prev` the previous one if the
/// key existed. For `Delete`, `kv` holds the last value with `mod_revision` set to the revision
/// of the deletion, and `prev` the same last value with its original revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub kv: KeyValue,
    pub prev: Option<KeyValue>,
}

impl Event {
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }
}

#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    #[error("key {0} not found")]
    NotFound(String),
    #[error("key {0} already exists")]
    AlreadyExists(String),
    #[error("key {key} was modified: expected revision {expected}, found {actual}")]
    Conflict {
        key: String,
        expected: Revision,
        actual: Revision,
    },
    /// The requested revision is older than what the store still holds (compacted or
    /// outside the watch window). The API server turns this into 410 Gone / `Expired`.
    #[error("revision {requested} is too old; the oldest available revision is {oldest}")]
    Expired {
        requested: Revision,
        oldest: Revision,
    },
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("storage error: {0}")]
    Internal(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The result of a (possibly paginated) list.
#[derive(Clone, Debug, Default)]
pub struct ListResult {
    pub items: Vec<KeyValue>,
    /// The revision the list was read at; pass it back as `at` to continue consistently.
    pub revision: Revision,
    /// More keys remain after the last item.
    pub more: bool,
}

pub type EventStream = Pin<Box<dyn Stream<Item = StoreResult<Event>> + Send>>;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn get(&self, key: &str) -> StoreResult<Option<KeyValue>>;

    /// Keys under `prefix` in key order, strictly after `start_after` when given, as of revision
    /// `at` (`None`: the latest), at most `limit` items (`0`: no limit).
    /// `at` older than the compacted revision fails with `Expired`.
    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        at: Option<Revision>,
        limit: usize,
    ) -> StoreResult<ListResult>;

    /// Creates `key`; fails with `AlreadyExists` if it exists. Returns the stored version.
    async fn create(&self, key: &str, value: Bytes) -> StoreResult<KeyValue>;

    /// Compare-and-swap: replaces `key` only if its current `mod_revision` equals `expected`.
    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> StoreResult<KeyValue>;

    /// Deletes `key`, only if its `mod_revision` equals `expected` when that is given.
    /// Returns the deleted value with `mod_revision` set to the deletion revision.
    async fn delete(&self, key: &str, expected: Option<Revision>) -> StoreResult<KeyValue>;

    /// The latest committed revision.
    async fn current_revision(&self) -> StoreResult<Revision>;

    /// Events for keys under `prefix` with revision strictly greater than `from`, in revision
    /// order, none duplicated or skipped, then live events as they commit.
    /// Fails with `Expired` when `from` is older than the watch window allows.
    async fn watch(&self, prefix: &str, from: Revision) -> StoreResult<EventStream>;

    /// Forgets history older than `revision` (lists `at` and watches `from` older than it
    /// become `Expired`) and lets the backend reclaim space.
    async fn compact(&self, revision: Revision) -> StoreResult<()>;

    /// The oldest revision that lists and watches can still be served from.
    fn compacted_revision(&self) -> Revision;
}

pub use embedded::{EmbeddedOptions, EmbeddedStats, EmbeddedStore};
pub use etcd::{EtcdOptions, EtcdStore};
pub use memory::MemoryStore;
pub use window::EventWindow;

#[cfg(test)]
mod conformance;
pub mod embedded;
pub mod etcd;
pub mod memory;
mod mvcc;
pub mod window;
