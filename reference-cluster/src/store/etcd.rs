//! The etcd v3 backend, for clusters whose state lives in etcd as real Kubernetes' does.
//!
//! Keys are used as given (`/registry/<resource>/<namespace>/<name>`) and revisions are etcd's
//! own, so other etcd clients see the same data and `resourceVersion`s. Every write is one
//! transaction guarded by a comparison, the same scheme kube-apiserver's etcd3 storage uses:
//! create requires `create_revision == 0`, update and conditional delete require
//! `mod_revision == expected`; when the guard fails, the transaction's else branch reads the key
//! so the error can report the actual revision without a second round trip. Watches are etcd
//! watches with `prev_kv`, so delete events carry the deleted value.
//!
//! etcd reports a compacted revision only as an error, without saying how far it compacted.
//! [`Store::compacted_revision`] is therefore the highest compaction this client performed or
//! observed, and when etcd refuses a revision as compacted the store asks etcd for the exact
//! compaction point (a watch from revision 1 is cancelled with it) to fill in `Expired`.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use etcd_client::{
    Client, CompactionOptions, Compare, CompareOp, ConnectOptions, DeleteOptions, EventType,
    GetOptions, PutOptions, Txn, TxnOp, TxnOpResponse, WatchOptions, WatchStream,
};

use super::mvcc::future_revision;
use super::{
    Event, EventKind, EventStream, KeyValue, ListResult, Revision, Store, StoreError, StoreResult,
};

#[derive(Clone, Debug)]
pub struct EtcdOptions {
    pub connect_timeout: Duration,
    /// Deadline for each unary request (not for watch streams, which live indefinitely).
    pub request_timeout: Duration,
    /// User name and password when etcd has authentication enabled.
    pub user: Option<(String, String)>,
}

impl Default for EtcdOptions {
    fn default() -> Self {
        // kube-apiserver dials etcd with a 20s timeout; a test cluster should fail faster.
        EtcdOptions {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            user: None,
        }
    }
}

pub struct EtcdStore {
    client: Client,
    opts: EtcdOptions,
    compacted: AtomicI64,
}

/// Any key works for reading the revision from a response header; this one sorts first.
const REVISION_PROBE_KEY: &[u8] = b"\0";

/// How long to wait for etcd to name its compaction point when asked.
const COMPACTION_PROBE_TIMEOUT: Duration = Duration::from_secs(3);

fn is_compacted(e: &etcd_client::Error) -> bool {
    e.to_string()
        .contains("required revision has been compacted")
}

fn is_future(e: &etcd_client::Error) -> bool {
    e.to_string()
        .contains("required revision is a future revision")
}

/// gRPC status codes (a stable part of the wire protocol) that mean "try again later".
const RETRYABLE_GRPC_CODES: [i32; 5] = [
    1,  // CANCELLED
    4,  // DEADLINE_EXCEEDED
    8,  // RESOURCE_EXHAUSTED
    10, // ABORTED
    14, // UNAVAILABLE
];

fn map_error(e: etcd_client::Error) -> StoreError {
    use etcd_client::Error as E;
    match &e {
        E::GRpcStatus(status) if RETRYABLE_GRPC_CODES.contains(&i32::from(status.code())) => {
            StoreError::Unavailable(format!("etcd: {}", status.message()))
        }
        E::GRpcStatus(status) => StoreError::Internal(format!("etcd: {}", status.message())),
        E::TransportError(_) | E::IoError(_) | E::EndpointError(_) => {
            StoreError::Unavailable(format!("etcd: {e}"))
        }
        _ => StoreError::Internal(format!("etcd: {e}")),
    }
}

/// A request that failed in etcd or did not finish in time.
enum Failure {
    Etcd(etcd_client::Error),
    TimedOut,
}

impl Failure {
    fn is_compacted(&self) -> bool {
        matches!(self, Failure::Etcd(e) if is_compacted(e))
    }

    fn is_future(&self) -> bool {
        matches!(self, Failure::Etcd(e) if is_future(e))
    }
}

impl From<Failure> for StoreError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Etcd(e) => map_error(e),
            Failure::TimedOut => StoreError::Unavailable("etcd request timed out".into()),
        }
    }
}

fn to_kv(kv: &etcd_client::KeyValue) -> KeyValue {
    KeyValue {
        key: String::from_utf8_lossy(kv.key()).into_owned(),
        value: Bytes::copy_from_slice(kv.value()),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
    }
}

fn into_kv(kv: etcd_client::KeyValue) -> KeyValue {
    let (create_revision, mod_revision) = (kv.create_revision(), kv.mod_revision());
    let (key, value) = kv.into_key_value();
    KeyValue {
        key: String::from_utf8(key)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        value: Bytes::from(value),
        create_revision,
        mod_revision,
    }
}

/// The end of the key range holding exactly the keys that start with `prefix`
/// (`"\0"` meaning "to the end of the keyspace").
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// The first key of a range over `prefix`, strictly after `start_after` when that is inside
/// or beyond the prefix range.
fn range_start(prefix: &str, start_after: Option<&str>) -> Vec<u8> {
    match start_after {
        Some(after) if after >= prefix => {
            let mut key = after.as_bytes().to_vec();
            key.push(0);
            key
        }
        _ if prefix.is_empty() => vec![0],
        _ => prefix.as_bytes().to_vec(),
    }
}

fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> StoreResult<Revision> {
    header
        .map(|h| h.revision())
        .ok_or_else(|| StoreError::Internal("etcd response without a header".into()))
}

impl EtcdStore {
    /// Connects to etcd at `endpoints` (e.g. `http://127.0.0.1:2379`) and checks that it answers.
    pub async fn connect(endpoints: &[String], opts: EtcdOptions) -> StoreResult<Self> {
        let mut connect = ConnectOptions::new()
            .with_connect_timeout(opts.connect_timeout)
            .with_keep_alive(Duration::from_secs(30), Duration::from_secs(10));
        if let Some((user, password)) = &opts.user {
            connect = connect.with_user(user.clone(), password.clone());
        }
        let client = tokio::time::timeout(
            opts.connect_timeout,
            Client::connect(endpoints, Some(connect)),
        )
        .await
        .map_err(|_| {
            StoreError::Unavailable(format!("connecting to etcd at {endpoints:?} timed out"))
        })?
        .map_err(map_error)?;
        let store = EtcdStore {
            client,
            opts,
            compacted: AtomicI64::new(0),
        };
        store.current_revision().await?;
        Ok(store)
    }

    /// Runs one unary request with the configured deadline.
    async fn call<T>(
        &self,
        request: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, Failure> {
        match tokio::time::timeout(self.opts.request_timeout, request).await {
            Ok(result) => result.map_err(Failure::Etcd),
            Err(_) => Err(Failure::TimedOut),
        }
    }

    fn note_compacted(&self, revision: Revision) {
        self.compacted.fetch_max(revision, Ordering::Relaxed);
    }

    /// Asks etcd how far it has compacted: a watch from revision 1 is cancelled with the
    /// compaction revision. Falls back to what this client knows if etcd does not say in time.
    async fn probe_compacted(&self) -> Revision {
        let probe = async {
            let mut watch = self
                .client
                .watch_client()
                .watch(
                    REVISION_PROBE_KEY,
                    Some(WatchOptions::new().with_start_revision(1)),
                )
                .await
                .ok()?;
            loop {
                let response = watch.message().await.ok()??;
                if response.compact_revision() > 0 {
                    return Some(response.compact_revision());
                }
                if response.canceled() {
                    return None;
                }
            }
        };
        if let Ok(Some(revision)) = tokio::time::timeout(COMPACTION_PROBE_TIMEOUT, probe).await {
            self.note_compacted(revision);
        }
        self.compacted.load(Ordering::Relaxed)
    }

    async fn expired(&self, requested: Revision) -> StoreError {
        let oldest = self.probe_compacted().await;
        StoreError::Expired {
            requested,
            oldest: oldest.max(requested + 1),
        }
    }

    /// Reads `key` inside a failed transaction's else branch.
    fn current_of(responses: Vec<TxnOpResponse>) -> Option<etcd_client::KeyValue> {
        responses.into_iter().find_map(|r| match r {
            TxnOpResponse::Get(mut get) => get.take_kvs().into_iter().next(),
            _ => None,
        })
    }

    /// The error for a guarded write whose guard failed, given what the key holds now.
    fn guard_failed(
        key: &str,
        expected: Revision,
        current: Option<etcd_client::KeyValue>,
    ) -> StoreError {
        match current {
            None => StoreError::NotFound(key.to_string()),
            Some(kv) => StoreError::Conflict {
                key: key.to_string(),
                expected,
                actual: kv.mod_revision(),
            },
        }
    }
}

#[async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> StoreResult<Option<KeyValue>> {
        let mut kv = self.client.kv_client();
        let mut response = self.call(kv.get(key, None)).await?;
        Ok(response.take_kvs().into_iter().next().map(into_kv))
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        at: Option<Revision>,
        limit: usize,
    ) -> StoreResult<ListResult> {
        if let Some(at) = at {
            // etcd's history starts at revision 1 and treats 0 as "latest".
            let oldest = self.compacted.load(Ordering::Relaxed).max(1);
            if at < oldest {
                return Err(StoreError::Expired {
                    requested: at,
                    oldest,
                });
            }
        }
        let mut options = GetOptions::new().with_range(prefix_end(prefix.as_bytes()));
        if limit > 0 {
            options = options.with_limit(i64::try_from(limit).unwrap_or(i64::MAX));
        }
        if let Some(at) = at {
            options = options.with_revision(at);
        }
        let mut kv = self.client.kv_client();
        let start = range_start(prefix, start_after);
        let mut response = match self.call(kv.get(start, Some(options))).await {
            Ok(response) => response,
            Err(e) if e.is_compacted() => return Err(self.expired(at.unwrap_or(0)).await),
            Err(e) if e.is_future() => {
                let current = self.current_revision().await?;
                return Err(future_revision(at.unwrap_or(0), current));
            }
            Err(e) => return Err(e.into()),
        };
        let revision = match at {
            Some(at) => at,
            None => header_revision(response.header())?,
        };
        let more = response.more();
        Ok(ListResult {
            items: response.take_kvs().into_iter().map(into_kv).collect(),
            revision,
            more,
        })
    }

    async fn create(&self, key: &str, value: Bytes) -> StoreResult<KeyValue> {
        let txn = Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, value.to_vec(), None)]);
        let mut kv = self.client.kv_client();
        let response = self.call(kv.txn(txn)).await?;
        if !response.succeeded() {
            return Err(StoreError::AlreadyExists(key.to_string()));
        }
        let revision = header_revision(response.header())?;
        Ok(KeyValue {
            key: key.to_string(),
            value,
            create_revision: revision,
            mod_revision: revision,
        })
    }

    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> StoreResult<KeyValue> {
        // `mod_revision == 0` also holds for a missing key, so the guard must insist the key
        // exists, or an update "expecting 0" would create it.
        let txn = Txn::new()
            .when([
                Compare::create_revision(key, CompareOp::Greater, 0),
                Compare::mod_revision(key, CompareOp::Equal, expected),
            ])
            .and_then([TxnOp::put(
                key,
                value.to_vec(),
                Some(PutOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(key, None)]);
        let mut kv = self.client.kv_client();
        let response = self.call(kv.txn(txn)).await?;
        if !response.succeeded() {
            let current = Self::current_of(response.op_responses());
            return Err(Self::guard_failed(key, expected, current));
        }
        let revision = header_revision(response.header())?;
        let create_revision = response
            .op_responses()
            .into_iter()
            .find_map(|r| match r {
                TxnOpResponse::Put(put) => put.prev_key().map(|p| p.create_revision()),
                _ => None,
            })
            .ok_or_else(|| StoreError::Internal("etcd put returned no previous value".into()))?;
        Ok(KeyValue {
            key: key.to_string(),
            value,
            create_revision,
            mod_revision: revision,
        })
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> StoreResult<KeyValue> {
        let mut guard = vec![Compare::create_revision(key, CompareOp::Greater, 0)];
        if let Some(expected) = expected {
            guard.push(Compare::mod_revision(key, CompareOp::Equal, expected));
        }
        let txn = Txn::new()
            .when(guard)
            .and_then([TxnOp::delete(
                key,
                Some(DeleteOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(key, None)]);
        let mut kv = self.client.kv_client();
        let response = self.call(kv.txn(txn)).await?;
        if !response.succeeded() {
            let current = Self::current_of(response.op_responses());
            // Without a precondition the guard fails only when the key is missing.
            return Err(Self::guard_failed(key, expected.unwrap_or(0), current));
        }
        let revision = header_revision(response.header())?;
        let deleted = response
            .op_responses()
            .into_iter()
            .find_map(|r| match r {
                TxnOpResponse::Delete(mut delete) => delete.take_prev_kvs().into_iter().next(),
                _ => None,
            })
            .ok_or_else(|| StoreError::Internal("etcd delete returned no previous value".into()))?;
        Ok(KeyValue {
            mod_revision: revision,
            ..into_kv(deleted)
        })
    }

    async fn current_revision(&self) -> StoreResult<Revision> {
        let mut kv = self.client.kv_client();
        let options = GetOptions::new().with_count_only();
        let response = self.call(kv.get(REVISION_PROBE_KEY, Some(options))).await?;
        header_revision(response.header())
    }

    async fn watch(&self, prefix: &str, from: Revision) -> StoreResult<EventStream> {
        let known = self.compacted.load(Ordering::Relaxed);
        if from < known || from < 0 {
            return Err(StoreError::Expired {
                requested: from,
                oldest: known,
            });
        }
        // etcd would accept the watch and cancel it a moment later; check up front so the
        // caller gets `Expired` from this call, like the other backends. A revision in the
        // future is fine for a watch.
        let mut kv = self.client.kv_client();
        let check = GetOptions::new()
            .with_count_only()
            .with_revision(from.max(1));
        match self.call(kv.get(REVISION_PROBE_KEY, Some(check))).await {
            Ok(_) => {}
            Err(e) if e.is_compacted() => return Err(self.expired(from).await),
            Err(e) if e.is_future() => {}
            Err(e) => return Err(e.into()),
        }
        let options = WatchOptions::new()
            .with_range(prefix_end(prefix.as_bytes()))
            .with_start_revision(from + 1)
            .with_prev_key();
        let mut watch = self.client.watch_client();
        let stream = self
            .call(watch.watch(range_start(prefix, None), Some(options)))
            .await?;
        let state = WatchState {
            stream,
            pending: VecDeque::new(),
            last: from,
            done: false,
        };
        Ok(Box::pin(futures::stream::unfold(state, WatchState::next)))
    }

    async fn compact(&self, revision: Revision) -> StoreResult<()> {
        if revision <= self.compacted.load(Ordering::Relaxed) {
            return Ok(());
        }
        let mut kv = self.client.kv_client();
        // Physical: return only once etcd has really dropped the history, so reads below
        // `revision` fail from now on rather than at some later point.
        let options = CompactionOptions::new().with_physical();
        match self.call(kv.compact(revision, Some(options))).await {
            Ok(_) => {
                self.note_compacted(revision);
                Ok(())
            }
            // Someone compacted further already; the history is gone either way.
            Err(e) if e.is_compacted() => {
                self.probe_compacted().await;
                Ok(())
            }
            Err(e) if e.is_future() => {
                let current = self.current_revision().await?;
                Err(future_revision(revision, current))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn compacted_revision(&self) -> Revision {
        self.compacted.load(Ordering::Relaxed)
    }
}

struct WatchState {
    stream: WatchStream,
    pending: VecDeque<StoreResult<Event>>,
    /// The last revision yielded; etcd never repeats one, but a restarted stream could.
    last: Revision,
    done: bool,
}

impl WatchState {
    async fn next(mut self) -> Option<(StoreResult<Event>, Self)> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some((item, self));
            }
            if self.done {
                return None;
            }
            match self.stream.message().await {
                Ok(Some(response)) => {
                    for event in response.events() {
                        if let Some(event) = convert(event) {
                            if event.revision() > self.last {
                                self.last = event.revision();
                                self.pending.push_back(Ok(event));
                            }
                        }
                    }
                    if response.compact_revision() > 0 {
                        self.done = true;
                        self.pending.push_back(Err(StoreError::Expired {
                            requested: self.last,
                            oldest: response.compact_revision(),
                        }));
                    } else if response.canceled() {
                        self.done = true;
                        self.pending.push_back(Err(StoreError::Unavailable(format!(
                            "etcd cancelled the watch: {}",
                            response.cancel_reason()
                        ))));
                    }
                }
                Ok(None) => self.done = true,
                Err(e) => {
                    self.done = true;
                    self.pending.push_back(Err(map_error(e)));
                }
            }
        }
    }
}

/// Maps an etcd event to ours; a delete's `kv` carries the deleted value (from `prev_kv`) at the
/// deletion revision, as the other backends report it.
fn convert(event: &etcd_client::Event) -> Option<Event> {
    let kv = event.kv()?;
    let prev = event.prev_kv().map(to_kv);
    Some(match event.event_type() {
        EventType::Put => Event {
            kind: EventKind::Put,
            kv: to_kv(kv),
            prev,
        },
        EventType::Delete => Event {
            kind: EventKind::Delete,
            kv: KeyValue {
                key: String::from_utf8_lossy(kv.key()).into_owned(),
                value: prev.as_ref().map(|p| p.value.clone()).unwrap_or_default(),
                create_revision: prev.as_ref().map_or(0, |p| p.create_revision),
                mod_revision: kv.mod_revision(),
            },
            prev,
        },
    })
}

#[cfg(test)]
mod tests;
