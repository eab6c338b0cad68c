//! List, watch and deletecollection: reads over many objects, with label and field selectors,
//! pagination (`limit`/`continue`), resourceVersion semantics, and the watch protocol
//! (synthetic ADDED events, BOOKMARKs, `sendInitialEvents`, 410 Expired as an ERROR event).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use futures::StreamExt;
use http::Response;
use http_body_util::{BodyExt, StreamBody};
use serde_json::{json, Value};

use super::negotiate::{negotiate, As};
use super::object::{self, meta_mut};
use super::registry::DeleteOptions;
use super::{respond_json, ApiError, ApiResult, ApiServer, Body, RequestContext};
use crate::resources::fields::{self, FieldRequirement, LabelSelector};
use crate::resources::{ResourceInfo, Strategy};
use crate::store::{EventKind, Revision, StoreError};

/// Selectors of a list or watch.
pub struct Filter {
    labels: Option<LabelSelector>,
    fields: Vec<FieldRequirement>,
    strategy: Arc<dyn Strategy>,
}

impl Filter {
    pub fn parse(
        server: &ApiServer,
        info: &ResourceInfo,
        ctx: &RequestContext,
        name: Option<&str>,
    ) -> ApiResult<Filter> {
        let labels = match ctx.q("labelSelector") {
            Some(s) => Some(fields::parse_label_selector(s).map_err(ApiError::bad_request)?),
            None => None,
        };
        let mut reqs = match ctx.q("fieldSelector") {
            Some(s) => fields::parse_field_selector(s).map_err(ApiError::bad_request)?,
            None => vec![],
        };
        if let Some(n) = name {
            reqs.push(FieldRequirement {
                field: "metadata.name".into(),
                op: fields::FieldOp::Equals,
                value: n.to_string(),
            });
        }
        let strategy = server.strategy(info);
        fields::check_supported(strategy.as_ref(), &reqs).map_err(ApiError::bad_request)?;
        Ok(Filter {
            labels,
            fields: reqs,
            strategy,
        })
    }

    /// No selectors: every object.
    pub fn everything(server: &ApiServer, info: &ResourceInfo) -> Filter {
        Filter {
            labels: None,
            fields: vec![],
            strategy: server.strategy(info),
        }
    }

    /// Whether no selector restricts the result (then upstream announces remainingItemCount).
    pub fn is_everything(&self) -> bool {
        self.labels
            .as_ref()
            .map(|l| l.is_everything())
            .unwrap_or(true)
            && self.fields.is_empty()
    }

    pub fn matches(&self, obj: &Value) -> bool {
        if let Some(sel) = &self.labels {
            if !sel.matches_object(obj) {
                return false;
            }
        }
        fields::matches_all(self.strategy.as_ref(), &self.fields, obj)
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    v: String,
    rv: Revision,
    start: String,
}

fn encode_continue(rv: Revision, start: &str) -> String {
    let token = ContinueToken {
        v: "meta.k8s.io/v1".into(),
        rv,
        start: start.to_string(),
    };
    base64::engine::general_purpose::URL_SAFE
        .encode(serde_json::to_vec(&token).expect("serialisable"))
}

fn decode_continue(s: &str) -> ApiResult<ContinueToken> {
    let bytes = base64::engine::general_purpose::URL_SAFE
        .decode(s)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s))
        .map_err(|_| ApiError::bad_request("continue key is not valid: illegal base64 data"))?;
    let token: ContinueToken = serde_json::from_slice(&bytes)
        .map_err(|_| ApiError::bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"))?;
    if token.v != "meta.k8s.io/v1" || token.rv <= 0 {
        return Err(ApiError::bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"));
    }
    Ok(token)
}

const EXPIRED_CONTINUE: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

fn parse_rv(s: &str) -> ApiResult<Revision> {
    s.parse::<Revision>()
        .ok()
        .filter(|r| *r >= 0)
        .ok_or_else(|| ApiError::bad_request(format!("invalid resource version {s:?}")))
}

/// A list result before representation.
pub struct Listed {
    pub items: Vec<Value>,
    pub revision: Revision,
    pub continue_token: Option<String>,
    /// Items after this page, when known (lists without selectors).
    pub remaining: Option<usize>,
}

/// Paging and consistency of a list: `limit`/`continue`, `resourceVersion`/`resourceVersionMatch`.
/// The default reads everything at the latest revision.
#[derive(Clone, Copy, Debug, Default)]
pub struct ListQuery<'a> {
    pub limit: usize,
    pub continue_from: Option<&'a str>,
    pub resource_version: Option<&'a str>,
    pub rv_match: Option<&'a str>,
}

impl ApiServer {
    /// Lists objects of `info` (in `ns`, or everywhere) that pass `filter`.
    pub async fn list_objects(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        filter: &Filter,
        query: ListQuery<'_>,
    ) -> ApiResult<Listed> {
        let ListQuery {
            limit,
            continue_from,
            resource_version,
            rv_match,
        } = query;
        let prefix = info.prefix(ns);
        let (mut at, mut start) = (None, None);
        if let Some(token) = continue_from {
            if resource_version.map(|r| !r.is_empty()).unwrap_or(false) {
                return Err(ApiError::bad_request(
                    "specifying resource version is not allowed when using continue",
                ));
            }
            let t = decode_continue(token)?;
            at = Some(t.rv);
            start = Some(format!("{prefix}{}", t.start));
        } else {
            match (resource_version, rv_match) {
                (Some(rv), Some("Exact")) => at = Some(parse_rv(rv)?),
                (Some(rv), _) if rv != "0" && !rv.is_empty() => {
                    let want = parse_rv(rv)?;
                    self.wait_for_revision(want).await?;
                }
                (None, Some(m)) if !m.is_empty() => {
                    return Err(ApiError::bad_request(
                        "resourceVersionMatch is forbidden unless resourceVersion is provided",
                    ))
                }
                _ => {}
            }
        }
        let mut items = Vec::new();
        let mut revision = at;
        let mut cursor = start;
        // Selectors filter after paging through the store, so keep reading until the page is
        // full or the keys run out (as upstream does).
        loop {
            let want = if limit == 0 {
                0
            } else {
                (limit - items.len()).max(1)
            };
            let page = match self
                .store
                .list(&prefix, cursor.as_deref(), revision, want)
                .await
            {
                Ok(p) => p,
                Err(StoreError::Expired { .. }) if continue_from.is_some() => {
                    return Err(ApiError::gone(EXPIRED_CONTINUE))
                }
                Err(e) => return Err(ApiError::from_store(e, info, "")),
            };
            revision = Some(page.revision);
            let last_key = page.items.last().map(|kv| kv.key.clone());
            for kv in &page.items {
                let obj = self.decode(info, kv)?;
                if filter.matches(&obj) {
                    items.push(obj);
                }
            }
            if !page.more {
                return Ok(Listed {
                    items,
                    revision: page.revision,
                    continue_token: None,
                    remaining: None,
                });
            }
            cursor = last_key;
            if limit > 0 && items.len() >= limit {
                let start_key = cursor
                    .as_deref()
                    .unwrap_or("")
                    .strip_prefix(&prefix)
                    .unwrap_or("");
                let remaining = if filter.is_everything() {
                    self.store
                        .list(&prefix, cursor.as_deref(), Some(page.revision), 0)
                        .await
                        .ok()
                        .map(|rest| rest.items.len())
                } else {
                    None
                };
                return Ok(Listed {
                    items,
                    revision: page.revision,
                    continue_token: Some(encode_continue(
                        page.revision,
                        &format!("{start_key}\u{0}"),
                    )),
                    remaining,
                });
            }
        }
    }

    async fn wait_for_revision(&self, want: Revision) -> ApiResult<()> {
        let deadline = tokio::time::Instant::now() + self.config.future_rv_wait;
        loop {
            let current = self
                .store
                .current_revision()
                .await
                .map_err(|e| ApiError::new(503, "ServiceUnavailable", e.to_string()))?;
            if current >= want {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                let mut e = ApiError::new(
                    504,
                    "Timeout",
                    format!("Timeout: Too large resource version: {want}, current: {current}"),
                );
                e.details = Some(
                    json!({"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1}),
                );
                return Err(e);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn parse_limit(ctx: &RequestContext) -> ApiResult<usize> {
    match ctx.q("limit") {
        None => Ok(0),
        Some(l) => l
            .parse::<i64>()
            .map(|n| n.max(0) as usize)
            .map_err(|_| ApiError::bad_request(format!("invalid limit {l:?}"))),
    }
}

pub async fn list(
    server: &Arc<ApiServer>,
    ctx: &RequestContext,
    info: &ResourceInfo,
    ns: Option<&str>,
    name: Option<&str>,
) -> ApiResult<Response<Body>> {
    let filter = Filter::parse(server, info, ctx, name)?;
    let listed = server
        .list_objects(
            info,
            ns,
            &filter,
            ListQuery {
                limit: parse_limit(ctx)?,
                continue_from: ctx.q("continue"),
                resource_version: ctx.query.get("resourceVersion").map(String::as_str),
                rv_match: ctx.q("resourceVersionMatch"),
            },
        )
        .await?;
    let mut list_meta = json!({"resourceVersion": listed.revision.to_string()});
    if let Some(c) = listed.continue_token {
        list_meta["continue"] = json!(c);
    }
    if let Some(n) = listed.remaining.filter(|n| *n > 0) {
        list_meta["remainingItemCount"] = json!(n);
    }
    super::table::respond_list(server, ctx, info, listed.items, list_meta)
}

fn event_line(kind: &str, object: Value) -> Bytes {
    event_line_ref(kind, &object)
}

/// How long before a watch's timeout its last bookmark is sent (upstream: 2 s).
const BOOKMARK_BEFORE_TIMEOUT: Duration = Duration::from_secs(2);

fn bookmark(info: &ResourceInfo, rv: Revision, initial_end: bool) -> Value {
    let mut m = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        m["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    json!({"kind": info.kind, "apiVersion": info.api_version(), "metadata": m})
}

pub async fn watch(
    server: &Arc<ApiServer>,
    ctx: &RequestContext,
    info: &ResourceInfo,
    ns: Option<&str>,
    name: Option<&str>,
) -> ApiResult<Response<Body>> {
    let filter = Filter::parse(server, info, ctx, name)?;
    let rv = ctx
        .query
        .get("resourceVersion")
        .cloned()
        .unwrap_or_default();
    let send_initial = match ctx.flag("sendInitialEvents") {
        Some(true) => {
            if ctx.q("resourceVersionMatch") != Some("NotOlderThan") {
                return Err(ApiError::new(
                    422,
                    "Invalid",
                    "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                ));
            }
            true
        }
        Some(false) => false,
        _ => rv.is_empty() || rv == "0",
    };
    let explicit_initial = ctx.flag("sendInitialEvents") == Some(true);
    let bookmarks = ctx.flag("allowWatchBookmarks") == Some(true);
    let timeout = match ctx.q("timeoutSeconds") {
        Some(t) => Duration::from_secs(
            t.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid timeoutSeconds {t:?}")))?,
        ),
        None => server.config.max_watch_timeout,
    }
    .min(server.config.max_watch_timeout);
    let as_ = negotiate(ctx.accept());
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(256);
    let prefix = info.prefix(ns);
    let mut initial = Vec::new();
    let from: Revision = if send_initial {
        if !rv.is_empty() && rv != "0" {
            server.wait_for_revision(parse_rv(&rv)?).await?;
        }
        let listed = server
            .list_objects(info, ns, &filter, ListQuery::default())
            .await?;
        initial = listed.items;
        listed.revision
    } else {
        parse_rv(&rv)?
    };
    let stream = server.store.watch(&prefix, from).await;
    let server2 = server.clone();
    let info2 = info.clone();
    let ctx_as = (as_, ctx.q("includeObject").map(str::to_string));
    let kind_labels = [info.group.clone(), info.version.clone(), info.kind.clone()];
    let everything = filter.is_everything();
    let server_id = Arc::as_ptr(server) as usize;
    tokio::spawn(async move {
        let (as_, include) = ctx_as;
        let convert = |obj: Value| -> Value {
            match as_ {
                As::Table => {
                    let rvv = obj
                        .pointer("/metadata/resourceVersion")
                        .cloned()
                        .unwrap_or(json!(""));
                    super::table::table(
                        &server2,
                        &info2,
                        &[obj],
                        include.as_deref().unwrap_or("Metadata"),
                        json!({"resourceVersion": rvv}),
                    )
                }
                As::Metadata => super::table::partial_metadata(&obj),
                _ => obj,
            }
        };
        let labels: Vec<&str> = kind_labels.iter().map(String::as_str).collect();
        let gauge = server2.metrics.watchers.with_label_values(&labels);
        gauge.inc();
        let counter = server2.metrics.watch_events.with_label_values(&labels);
        let _guard = scopeguard(move || gauge.dec());
        let mut stream = match stream {
            Ok(s) => s,
            Err(StoreError::Expired { requested, oldest }) => {
                let status =
                    ApiError::gone(format!("too old resource version: {requested} ({oldest})"))
                        .to_status();
                let _ = tx.send(event_line("ERROR", status)).await;
                return;
            }
            Err(e) => {
                let status = ApiError::internal(e.to_string()).to_status();
                let _ = tx.send(event_line("ERROR", status)).await;
                return;
            }
        };
        for obj in initial {
            counter.inc();
            if tx.send(event_line("ADDED", convert(obj))).await.is_err() {
                return;
            }
        }
        if explicit_initial && bookmarks {
            let _ = tx
                .send(event_line("BOOKMARK", bookmark(&info2, from, true)))
                .await;
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        // Like upstream's watch cache, a watcher that allows bookmarks also gets one shortly
        // before its timeout, so it can resume from the newest revision however quiet the
        // resource was.
        let mut final_bookmark_due = bookmarks && timeout > BOOKMARK_BEFORE_TIMEOUT;
        let final_bookmark = tokio::time::sleep(timeout.saturating_sub(BOOKMARK_BEFORE_TIMEOUT));
        tokio::pin!(final_bookmark);
        let mut ticker = tokio::time::interval(server2.config.bookmark_interval);
        ticker.tick().await;
        let mut last_rv = from;
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = &mut final_bookmark, if final_bookmark_due => {
                    final_bookmark_due = false;
                    if tx.send(event_line("BOOKMARK", bookmark(&info2, last_rv, false))).await.is_err() { return; }
                }
                _ = ticker.tick(), if bookmarks => {
                    if tx.send(event_line("BOOKMARK", bookmark(&info2, last_rv, false))).await.is_err() { return; }
                }
                _ = tx.closed() => return,
                ev = stream.next() => {
                    let Some(ev) = ev else { return };
                    let ev = match ev {
                        Ok(ev) => ev,
                        Err(StoreError::Expired { requested, oldest }) => {
                            let status = ApiError::gone(format!("too old resource version: {requested} ({oldest})")).to_status();
                            let _ = tx.send(event_line("ERROR", status)).await;
                            return;
                        }
                        Err(e) => {
                            let _ = tx.send(event_line("ERROR", ApiError::internal(e.to_string()).to_status())).await;
                            return;
                        }
                    };
                    last_rv = ev.revision();
                    let api_version = info2.api_version();
                    if everything && as_ == As::Object {
                        // Without selectors the event type follows from the store event alone and
                        // every such watcher sends the same bytes: encode each event once.
                        let kind = match (ev.kind, ev.prev.is_some()) {
                            (EventKind::Delete, _) => "DELETED",
                            (EventKind::Put, true) => "MODIFIED",
                            (EventKind::Put, false) => "ADDED",
                        };
                        // The decoded object comes from the cache watchers with selectors share,
                        // so an event reaching both kinds of watcher is decoded once.
                        let line = shared_line(server_id, &api_version, kind, &ev.kv, || {
                            let obj = shared_object(&server2, server_id, &info2, &api_version, &ev.kv)?;
                            Some(event_line_ref(kind, &obj))
                        });
                        if let Some(line) = line {
                            counter.inc();
                            if tx.send(line).await.is_err() { return; }
                        }
                        continue;
                    }
                    // Watchers with selectors see the same stored versions: each is decoded once
                    // per server and shared, and only the selectors run per watcher.
                    let decode = |kv: &crate::store::KeyValue| shared_object(&server2, server_id, &info2, &api_version, kv);
                    let prev = ev.prev.as_ref().and_then(decode);
                    let Some(cur) = decode(&ev.kv) else { continue };
                    let prev_match = prev.as_ref().map(|p| filter.matches(p)).unwrap_or(false);
                    let kind = match ev.kind {
                        EventKind::Delete => if prev_match || filter.matches(&cur) { Some("DELETED") } else { None },
                        EventKind::Put => match (prev_match, filter.matches(&cur)) {
                            (false, true) => Some("ADDED"),
                            (true, true) => Some("MODIFIED"),
                            (true, false) => Some("DELETED"),
                            (false, false) => None,
                        },
                    };
                    if let Some(kind) = kind {
                        let line = if as_ == As::Object {
                            shared_line(server_id, &api_version, kind, &ev.kv, || Some(event_line_ref(kind, &cur)))
                        } else {
                            Some(event_line(kind, convert(Value::clone(&cur))))
                        };
                        let Some(line) = line else { continue };
                        counter.inc();
                        if tx.send(line).await.is_err() { return; }
                    }
                }
            }
        }
    });
    let body = StreamBody::new(
        tokio_stream::wrappers::ReceiverStream::new(rx)
            .map(|b| Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(b))),
    );
    let _ = as_;
    Ok(Response::builder()
        .status(200)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header("Cache-Control", "no-cache, private")
        .body(BodyExt::boxed_unsync(body))
        .expect("static headers are valid"))
}

/// A stored version as one API server serves it in one version: (server, revision, storage key,
/// served apiVersion). The revision is the version's `mod_revision`, which for a deletion is the
/// revision of the delete.
type VersionKey = (usize, Revision, String, String);

/// Decoded objects shared by all watchers of one API server; decoding is the costly part of
/// serving an event, and every watcher of a resource sees the same versions.
static DECODED: BoundedCache<VersionKey, Arc<Value>> = BoundedCache::new(1024);

/// Encoded `{"type":…,"object":…}` lines shared by all watchers of one API server: watchers
/// without selectors, and watchers with selectors that see the same event type, send the same
/// bytes.
static EVENT_LINES: BoundedCache<(VersionKey, &'static str), Bytes> = BoundedCache::new(8192);

/// `kv` decoded as `info`'s version serves it, with its resourceVersion, shared between watchers.
fn shared_object(
    server: &ApiServer,
    server_id: usize,
    info: &ResourceInfo,
    api_version: &str,
    kv: &crate::store::KeyValue,
) -> Option<Arc<Value>> {
    let key = (
        server_id,
        kv.mod_revision,
        kv.key.clone(),
        api_version.to_string(),
    );
    DECODED.get_or_insert(key, &kv.value, || served(server, info, kv).map(Arc::new))
}

/// `kv` decoded as `info`'s version serves it, with its resourceVersion.
fn served(server: &ApiServer, info: &ResourceInfo, kv: &crate::store::KeyValue) -> Option<Value> {
    let mut obj = server.decode(info, kv).ok()?;
    meta_mut(&mut obj).insert("resourceVersion".into(), json!(kv.mod_revision.to_string()));
    Some(obj)
}

/// The watch event line of type `kind` for `kv`, encoded once per server.
fn shared_line(
    server_id: usize,
    api_version: &str,
    kind: &'static str,
    kv: &crate::store::KeyValue,
    make: impl FnOnce() -> Option<Bytes>,
) -> Option<Bytes> {
    let key = (
        server_id,
        kv.mod_revision,
        kv.key.clone(),
        api_version.to_string(),
    );
    EVENT_LINES.get_or_insert((key, kind), &kv.value, make)
}

fn event_line_ref(kind: &str, object: &Value) -> Bytes {
    #[derive(serde::Serialize)]
    struct Line<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        object: &'a Value,
    }
    let mut line = serde_json::to_vec(&Line { kind, object }).expect("serialisable");
    line.push(b'\n');
    Bytes::from(line)
}

/// A bounded map, oldest entry out first, behind one lock. Each entry remembers the stored bytes
/// it was made from and is used only for the same bytes, so a key reused by another server at
/// the same address (tests start many in one process) can never be served a stale value.
struct BoundedCache<K, V> {
    inner: std::sync::OnceLock<parking_lot::Mutex<BoundedInner<K, V>>>,
    capacity: usize,
}

struct BoundedInner<K, V> {
    values: std::collections::HashMap<K, (Bytes, V)>,
    order: std::collections::VecDeque<K>,
}

impl<K: std::hash::Hash + Eq + Clone, V: Clone> BoundedCache<K, V> {
    const fn new(capacity: usize) -> Self {
        BoundedCache {
            inner: std::sync::OnceLock::new(),
            capacity,
        }
    }

    fn get_or_insert(&self, key: K, source: &Bytes, make: impl FnOnce() -> Option<V>) -> Option<V> {
        let cache = self.inner.get_or_init(|| {
            parking_lot::Mutex::new(BoundedInner {
                values: std::collections::HashMap::new(),
                order: std::collections::VecDeque::new(),
            })
        });
        if let Some((made_from, v)) = cache.lock().values.get(&key) {
            if made_from == source {
                return Some(v.clone());
            }
        }
        // Made outside the lock: decoding and encoding are the slow part, and two watchers
        // racing on the same event at worst both make it.
        let value = make()?;
        let mut c = cache.lock();
        if c.values
            .insert(key.clone(), (source.clone(), value.clone()))
            .is_none()
        {
            c.order.push_back(key);
            while c.order.len() > self.capacity {
                if let Some(old) = c.order.pop_front() {
                    c.values.remove(&old);
                }
            }
        }
        Some(value)
    }
}

struct Guard<F: FnOnce()>(Option<F>);
impl<F: FnOnce()> Drop for Guard<F> {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}
fn scopeguard<F: FnOnce()>(f: F) -> Guard<F> {
    Guard(Some(f))
}

pub async fn delete_collection(
    server: &Arc<ApiServer>,
    ctx: &RequestContext,
    info: &ResourceInfo,
    ns: Option<&str>,
    opts: &DeleteOptions,
) -> ApiResult<Response<Body>> {
    let filter = Filter::parse(server, info, ctx, None)?;
    let listed = server
        .list_objects(info, ns, &filter, ListQuery::default())
        .await?;
    let mut deleted = Vec::new();
    for obj in listed.items {
        let name = object::name(&obj).to_string();
        let ons = object::meta_str(&obj, "namespace").map(str::to_string);
        match server
            .delete_object(info, ons.as_deref().or(ns), &name, opts)
            .await
        {
            Ok((_, body)) => {
                if body.get("kind").and_then(Value::as_str) == Some("Status") {
                    deleted.push(obj);
                } else {
                    deleted.push(body);
                }
            }
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(respond_json(
        200,
        &json!({"kind": info.list_kind, "apiVersion": info.api_version(), "metadata": {"resourceVersion": listed.revision.to_string()}, "items": deleted}),
    ))
}
