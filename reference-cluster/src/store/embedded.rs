//! The default, durable backend: the in-memory MVCC index of [`super::memory`] made durable by a
//! write-ahead log and a snapshot in a data directory.
//!
//! # Design
//!
//! * **State** lives in memory (the same [`Index`] and [`EventWindow`] as the memory backend),
//!   so reads and watches never touch the disk. The directory holds `wal.log`, one CRC-framed
//!   record per committed write, and `snapshot`, every retained version at some revision.
//!   Opening loads the snapshot and replays the log records newer than it; the replayed events
//!   also refill the watch window, so watchers can resume across a restart from any revision
//!   since the last snapshot. Revisions therefore continue where they stopped and are never
//!   reused.
//! * **Group commit.** All writes go through one writer thread over a channel. It takes every
//!   request already waiting, validates each against the committed state plus the earlier
//!   writes of the same batch (the compare-and-swap semantics), appends the accepted ones in
//!   one `write`, fsyncs once (`sync_data`), then applies them to memory, publishes their events
//!   and only then answers. Under load one fsync covers many writes; without load a write costs
//!   one fsync, the least durability allows. Consequences: an acknowledged write is on disk
//!   (survives `kill -9` and power loss); readers and watchers never see a write that is not on
//!   disk; a request that got an error is not in memory, and was either never logged or logged
//!   only by a batch whose fsync failed (which the writer then tries to cut off the log again).
//!   Requests rejected by validation are answered only after their batch is durable, because
//!   the rejection may rest on an earlier write of that batch.
//! * **Poisoning.** If a log write or fsync fails, the file's contents are unknown (after a
//!   failed fsync Linux may drop the dirty pages and report success next time), so the store
//!   stops accepting writes: every later write fails with `Unavailable`. Reads keep working;
//!   restarting re-reads what really is on disk.
//! * **Torn tails.** A crash can leave a partly written last batch. Recovery reads records until
//!   the first one that is short or fails its CRC, and truncates the log there; since a batch is
//!   acknowledged only after its fsync, nothing acknowledged is ever cut. Recovered state is
//!   always a prefix of the revision sequence.
//! * **Bounded directory.** When the log passes `snapshot_after_bytes`, and on every
//!   compaction, the writer writes a new snapshot (temp file, fsync, rename, fsync directory)
//!   and empties the log. A crash between rename and truncation is harmless: replay skips log
//!   records at or below the snapshot's revision. The snapshot holds the whole retained history,
//!   so its size is governed by compaction, as in etcd. Writes wait while a snapshot is written.
//! * Only one process may use a directory at a time; nothing enforces that yet (std file
//!   locks need a newer Rust than the workspace's minimum).

mod codec;
mod snapshot;
mod wal;

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use tokio::sync::oneshot;

use super::mvcc::{Index, Mutation, Pending, WriteOp};
use super::window::{EventWindow, DEFAULT_WATCHER_BUFFER};
use super::{Event, EventStream, KeyValue, ListResult, Revision, Store, StoreError, StoreResult};

const LOG_FILE: &str = "wal.log";

/// Most requests one batch takes, so one huge burst does not delay every answer in it.
const MAX_BATCH: usize = 4096;

/// Capacity of the batch encoding buffer, and the most it keeps between batches.
const INITIAL_BUFFER: usize = 64 << 10;
const MAX_KEPT_BUFFER: usize = 16 << 20;

/// Replayed events go to the watch window in chunks, so recovering a long log does not hold
/// every event in memory at once.
const REPLAY_CHUNK: usize = 1024;

#[derive(Clone, Debug)]
pub struct EmbeddedOptions {
    /// Recent events kept for watch replay (kube-apiserver's watch cache is of this order).
    pub window: usize,
    /// Log size that triggers a snapshot and log truncation.
    pub snapshot_after_bytes: u64,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        EmbeddedOptions {
            window: 10_000,
            snapshot_after_bytes: 64 << 20,
        }
    }
}

/// Counters since the store was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EmbeddedStats {
    /// Writes made durable and applied.
    pub writes: u64,
    /// Writes refused by validation (exists, not found, conflict).
    pub rejected: u64,
    /// Batches that appended to the log.
    pub batches: u64,
    /// Log fsyncs; `writes / fsyncs` is the group-commit factor.
    pub fsyncs: u64,
    pub snapshots: u64,
    /// Current size of the log file.
    pub log_bytes: u64,
    /// Bytes cut off a damaged log tail when the store was opened.
    pub recovered_dropped_bytes: u64,
}

#[derive(Default)]
struct Counters {
    writes: AtomicU64,
    rejected: AtomicU64,
    batches: AtomicU64,
    fsyncs: AtomicU64,
    snapshots: AtomicU64,
    log_bytes: AtomicU64,
    recovered_dropped_bytes: AtomicU64,
}

/// What the writer thread and the readers share.
struct Shared {
    index: RwLock<Index>,
    window: EventWindow,
    poisoned: Mutex<Option<String>>,
    counters: Counters,
    /// Makes the next log appends fail, to exercise poisoning.
    #[cfg(test)]
    fail_appends: std::sync::atomic::AtomicBool,
}

enum Request {
    Write {
        op: WriteOp,
        reply: oneshot::Sender<StoreResult<KeyValue>>,
    },
    Compact {
        revision: Revision,
        reply: oneshot::Sender<StoreResult<()>>,
    },
}

pub struct EmbeddedStore {
    shared: Arc<Shared>,
    requests: Option<mpsc::Sender<Request>>,
    writer: Option<JoinHandle<()>>,
    dir: PathBuf,
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Internal(format!("{what} {}: {e}", path.display()))
}

impl EmbeddedStore {
    /// Opens the store in `dir` (created if missing), recovering whatever a previous run left.
    /// This does blocking file I/O; from async code wrap it in `spawn_blocking` if the
    /// directory may be large.
    pub fn open(dir: &Path, opts: EmbeddedOptions) -> StoreResult<Self> {
        fs::create_dir_all(dir).map_err(|e| io_error("creating", dir, e))?;
        match fs::remove_file(dir.join(snapshot::TMP_FILE)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(io_error("removing stale snapshot in", dir, e))
            }
            _ => {}
        }
        let mut index = snapshot::load(&dir.join(snapshot::FILE))?.unwrap_or_else(Index::new);
        let snapshot_revision = index.revision();
        let window = EventWindow::new(opts.window, DEFAULT_WATCHER_BUFFER, snapshot_revision);

        let mut replayed: Vec<Event> = Vec::new();
        let recovered = wal::recover(&dir.join(LOG_FILE), |mutation| {
            // Left over from a crash between writing a snapshot and emptying the log.
            if mutation.revision <= snapshot_revision {
                return Ok(());
            }
            replayed.push(index.apply(mutation)?);
            if replayed.len() >= REPLAY_CHUNK {
                window.publish(replayed.drain(..));
            }
            Ok(())
        })?;
        window.publish(replayed);
        if recovered.created {
            snapshot::sync_dir(dir).map_err(|e| io_error("syncing", dir, e))?;
        }

        let shared = Arc::new(Shared {
            index: RwLock::new(index),
            window,
            poisoned: Mutex::new(None),
            counters: Counters::default(),
            #[cfg(test)]
            fail_appends: Default::default(),
        });
        let c = &shared.counters;
        c.log_bytes.store(recovered.len, Ordering::Relaxed);
        c.recovered_dropped_bytes
            .store(recovered.dropped, Ordering::Relaxed);

        let writer = Writer {
            shared: Arc::clone(&shared),
            dir: dir.to_path_buf(),
            log: recovered.file,
            log_len: recovered.len,
            snapshot_after: opts.snapshot_after_bytes,
            next_snapshot_at: opts.snapshot_after_bytes,
            buf: Vec::with_capacity(INITIAL_BUFFER),
        };
        let (requests, inbox) = mpsc::channel();
        let writer = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer.run(inbox))
            .map_err(|e| StoreError::Internal(format!("starting the store writer: {e}")))?;
        Ok(EmbeddedStore {
            shared,
            requests: Some(requests),
            writer: Some(writer),
            dir: dir.to_path_buf(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn stats(&self) -> EmbeddedStats {
        let c = &self.shared.counters;
        EmbeddedStats {
            writes: c.writes.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
            batches: c.batches.load(Ordering::Relaxed),
            fsyncs: c.fsyncs.load(Ordering::Relaxed),
            snapshots: c.snapshots.load(Ordering::Relaxed),
            log_bytes: c.log_bytes.load(Ordering::Relaxed),
            recovered_dropped_bytes: c.recovered_dropped_bytes.load(Ordering::Relaxed),
        }
    }

    fn writer_gone() -> StoreError {
        StoreError::Unavailable("the store writer has stopped".into())
    }

    async fn submit<T>(
        &self,
        request: impl FnOnce(oneshot::Sender<StoreResult<T>>) -> Request,
    ) -> StoreResult<T> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .as_ref()
            .ok_or_else(Self::writer_gone)?
            .send(request(reply))
            .map_err(|_| Self::writer_gone())?;
        answer.await.map_err(|_| Self::writer_gone())?
    }

    async fn write(&self, op: WriteOp) -> StoreResult<KeyValue> {
        self.submit(|reply| Request::Write { op, reply }).await
    }
}

impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        // Closing the channel lets the writer finish its current batch and exit; waiting for it
        // means the directory is free for the next `open` once the store is gone.
        drop(self.requests.take());
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn get(&self, key: &str) -> StoreResult<Option<KeyValue>> {
        Ok(self.shared.index.read().get(key))
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        at: Option<Revision>,
        limit: usize,
    ) -> StoreResult<ListResult> {
        self.shared
            .index
            .read()
            .list(prefix, start_after, at, limit)
    }

    async fn create(&self, key: &str, value: Bytes) -> StoreResult<KeyValue> {
        self.write(WriteOp::Create {
            key: key.to_string(),
            value,
        })
        .await
    }

    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> StoreResult<KeyValue> {
        self.write(WriteOp::Update {
            key: key.to_string(),
            value,
            expected,
        })
        .await
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> StoreResult<KeyValue> {
        self.write(WriteOp::Delete {
            key: key.to_string(),
            expected,
        })
        .await
    }

    async fn current_revision(&self) -> StoreResult<Revision> {
        Ok(self.shared.index.read().revision())
    }

    async fn watch(&self, prefix: &str, from: Revision) -> StoreResult<EventStream> {
        self.shared.window.watch(prefix, from)
    }

    async fn compact(&self, revision: Revision) -> StoreResult<()> {
        self.submit(|reply| Request::Compact { revision, reply })
            .await
    }

    fn compacted_revision(&self) -> Revision {
        self.shared.index.read().compacted()
    }
}

/// The single thread that appends to the log and mutates the index.
struct Writer {
    shared: Arc<Shared>,
    dir: PathBuf,
    log: File,
    log_len: u64,
    snapshot_after: u64,
    /// Log size at which the next snapshot is due (pushed back after a failed attempt).
    next_snapshot_at: u64,
    /// Reused encoding buffer for a batch's records.
    buf: Vec<u8>,
}

type Reply = oneshot::Sender<StoreResult<KeyValue>>;

impl Writer {
    fn run(mut self, inbox: mpsc::Receiver<Request>) {
        while let Ok(first) = inbox.recv() {
            let mut writes = Vec::new();
            let mut request = Some(first);
            while let Some(next) = request.take() {
                match next {
                    Request::Write { op, reply } => writes.push((op, reply)),
                    Request::Compact { revision, reply } => {
                        // Keep the order callers observed: writes queued before the
                        // compaction commit before it.
                        self.commit(std::mem::take(&mut writes));
                        let _ = reply.send(self.compact(revision));
                    }
                }
                if writes.len() < MAX_BATCH {
                    request = inbox.try_recv().ok();
                }
            }
            self.commit(writes);
            if self.buf.capacity() > MAX_KEPT_BUFFER {
                // One huge batch should not pin its buffer for the life of the store.
                self.buf = Vec::with_capacity(INITIAL_BUFFER);
            }
            if self.log_len >= self.next_snapshot_at {
                if let Err(e) = self.snapshot() {
                    tracing::warn!(error = %e, "writing a store snapshot failed; will retry later");
                }
            }
        }
    }

    fn poisoned(&self) -> Option<StoreError> {
        self.shared
            .poisoned
            .lock()
            .as_ref()
            .map(|why| StoreError::Unavailable(why.clone()))
    }

    fn poison(&self, why: String) {
        tracing::error!(reason = %why, "store is refusing further writes");
        self.shared.poisoned.lock().get_or_insert(why);
    }

    fn commit(&mut self, writes: Vec<(WriteOp, Reply)>) {
        if writes.is_empty() {
            return;
        }
        if let Some(err) = self.poisoned() {
            for (_, reply) in writes {
                let _ = reply.send(Err(err.clone()));
            }
            return;
        }

        let mut accepted: Vec<(Mutation, Reply)> = Vec::with_capacity(writes.len());
        let mut rejected: Vec<(StoreError, Reply)> = Vec::new();
        self.buf.clear();
        {
            let index = self.shared.index.read();
            let mut pending = Pending::new();
            let mut revision = index.revision() + 1;
            for (op, reply) in writes {
                match index.prepare(op, &pending, revision) {
                    Ok(mutation) => {
                        let start = self.buf.len();
                        wal::encode(&mutation, &mut self.buf);
                        if self.buf.len() - start > codec::MAX_RECORD as usize {
                            // Recovery would take such a record for damage and cut the log
                            // there, losing it and everything after it.
                            self.buf.truncate(start);
                            let err = StoreError::Internal(format!(
                                "{} is too large to store ({} bytes)",
                                mutation.key,
                                mutation.value.as_ref().map_or(0, |v| v.len())
                            ));
                            rejected.push((err, reply));
                            continue;
                        }
                        let live = mutation.value.is_some().then_some(revision);
                        pending.insert(mutation.key.clone(), live);
                        accepted.push((mutation, reply));
                        revision += 1;
                    }
                    Err(e) => rejected.push((e, reply)),
                }
            }
        }

        if !accepted.is_empty() {
            if let Err(e) = self.append() {
                self.poison(format!("appending to the write-ahead log failed: {e}"));
                let err = self
                    .poisoned()
                    .unwrap_or(StoreError::Unavailable(e.to_string()));
                let replies = accepted.into_iter().map(|(_, r)| r);
                for reply in replies.chain(rejected.into_iter().map(|(_, r)| r)) {
                    let _ = reply.send(Err(err.clone()));
                }
                return;
            }
        }

        let mut events = Vec::with_capacity(accepted.len());
        let mut replies = Vec::with_capacity(accepted.len());
        {
            let mut index = self.shared.index.write();
            for (mutation, reply) in accepted {
                match index.apply(mutation) {
                    Ok(event) => {
                        replies.push((reply, Ok(event.kv.clone())));
                        events.push(event);
                    }
                    Err(e) => {
                        // Cannot happen: the mutation was prepared against this very state.
                        // If it does, memory and log disagree; stop writing.
                        self.poison(format!("applying a logged write failed: {e}"));
                        replies.push((reply, Err(e)));
                    }
                }
            }
        }
        let applied = events.len() as u64;
        self.shared.window.publish(events);

        let c = &self.shared.counters;
        c.writes.fetch_add(applied, Ordering::Relaxed);
        c.rejected
            .fetch_add(rejected.len() as u64, Ordering::Relaxed);
        for (reply, result) in replies {
            let _ = reply.send(result);
        }
        for (err, reply) in rejected {
            let _ = reply.send(Err(err));
        }
    }

    /// Appends the encoded batch and makes it durable with one fsync.
    fn append(&mut self) -> std::io::Result<()> {
        #[cfg(test)]
        if self.shared.fail_appends.load(Ordering::Relaxed) {
            self.shared.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
            return Err(std::io::Error::other("injected write failure"));
        }
        let result = self
            .log
            .write_all(&self.buf)
            .and_then(|()| self.log.sync_data());
        let c = &self.shared.counters;
        c.fsyncs.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(()) => {
                self.log_len += self.buf.len() as u64;
                c.batches.fetch_add(1, Ordering::Relaxed);
                c.log_bytes.store(self.log_len, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                // Best effort: the failed batch must not resurface on the next start.
                let _ = self
                    .log
                    .set_len(self.log_len)
                    .and_then(|()| self.log.sync_all());
                Err(e)
            }
        }
    }

    fn compact(&mut self, revision: Revision) -> StoreResult<()> {
        if let Some(err) = self.poisoned() {
            return Err(err);
        }
        {
            let mut index = self.shared.index.write();
            if revision <= index.compacted() {
                return Ok(());
            }
            index.compact(revision)?;
        }
        self.shared.window.compact(revision);
        self.snapshot().map_err(|e| {
            StoreError::Internal(format!("writing the snapshot after compaction: {e}"))
        })
    }

    /// Writes a snapshot of the current state and empties the log it supersedes.
    fn snapshot(&mut self) -> std::io::Result<()> {
        let written = {
            let index = self.shared.index.read();
            snapshot::write(&self.dir, &index)
        };
        let emptied = written.and_then(|_| {
            self.log.set_len(0)?;
            self.log.sync_all()
        });
        if let Err(e) = emptied {
            // The previous snapshot (or the new one) plus the untouched log still describe
            // the state; try again once the log has grown some more.
            self.next_snapshot_at = self.log_len + self.snapshot_after;
            return Err(e);
        }
        self.log_len = 0;
        self.next_snapshot_at = self.snapshot_after;
        let c = &self.shared.counters;
        c.snapshots.fetch_add(1, Ordering::Relaxed);
        c.log_bytes.store(0, Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
