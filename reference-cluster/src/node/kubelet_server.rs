//! The kubelet API of a whole fleet, as far as the API server needs it: one plain-HTTP server
//! on loopback answering `GET /containerLogs/{namespace}/{pod}/{container}` for every sim node
//! (each Node reports its port in `status.daemonEndpoints.kubeletEndpoint.Port`).
//!
//! Query parameters are the kubelet's: `follow`, `previous`, `tailLines`, `sinceSeconds`,
//! `sinceTime`, `timestamps`, `limitBytes`. Errors answer 400 with the kubelet's message as
//! plain text, which the API server turns into a `BadRequest` Status as upstream does.
//!
//! `/exec/{namespace}/{pod}/{container}` (WebSocket, see [`super::exec`]) and
//! `/portForward/{namespace}/{pod}` (SPDY or WebSocket, see [`super::portforward`]) are served
//! once the fleet hands the server a pod source with [`KubeletServer::enable_exec`].

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use k8s_openapi::jiff::Timestamp;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_stream::StreamExt as _;

use super::exec::{self, PodSource};
use super::logs::{format_line, ByteBudget, LogKey, LogRequest, LogStore, LogView};

pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, Infallible>;

/// A running kubelet server.
pub struct KubeletServer {
    pub addr: SocketAddr,
    pub task: JoinHandle<()>,
    streams: Arc<AtomicUsize>,
    exec: Arc<parking_lot::RwLock<Option<ExecBackend>>>,
    summaries: Arc<parking_lot::RwLock<Option<super::stats::SummarySender>>>,
}

/// What `exec` needs beyond the logs: the pods (for their env and container states) and how
/// long a `sleep` may wait.
#[derive(Clone)]
struct ExecBackend {
    pods: Arc<dyn PodSource>,
    max_sleep: Duration,
    /// Run commands as real processes (the `process` runtime) instead of the sim's interpreter.
    process: Option<super::process::exec::ExecHandle>,
    /// Port-forward's stream creation and idle timeouts.
    streaming: super::portforward::StreamTimeouts,
}

/// The longest a sim `sleep` waits unless [`KubeletServer::enable_exec`] says otherwise.
pub const DEFAULT_EXEC_MAX_SLEEP: Duration = Duration::from_secs(60);

impl KubeletServer {
    /// Log responses still being written (followers included).
    pub fn active_streams(&self) -> usize {
        self.streams.load(Ordering::SeqCst)
    }

    /// Serves `exec` from now on, reading pods from `pods`; a `sleep` waits at most `max_sleep`.
    /// Serves `/stats/summary` from now on, asking the fleet's loop through `fleet`.
    pub fn enable_stats(&self, fleet: super::stats::SummarySender) {
        *self.summaries.write() = Some(fleet);
    }

    pub fn enable_exec(&self, pods: Arc<dyn PodSource>, max_sleep: Duration) {
        *self.exec.write() = Some(ExecBackend {
            pods,
            max_sleep,
            process: None,
            streaming: Default::default(),
        });
    }

    /// Port-forward's stream creation and idle timeouts from now on; call after
    /// [`Self::enable_exec`].
    pub fn set_streaming_timeouts(&self, timeouts: super::portforward::StreamTimeouts) {
        if let Some(b) = self.exec.write().as_mut() {
            b.streaming = timeouts;
        }
    }

    /// Serves `exec` in the process runtime's containers; call after [`Self::enable_exec`].
    pub fn enable_process_exec(&self, handle: super::process::exec::ExecHandle) {
        if let Some(b) = self.exec.write().as_mut() {
            b.process = Some(handle);
        }
    }
}

/// Counts one response stream while it lives.
struct StreamGuard(Arc<AtomicUsize>);

impl StreamGuard {
    fn new(count: &Arc<AtomicUsize>) -> StreamGuard {
        count.fetch_add(1, Ordering::SeqCst);
        StreamGuard(count.clone())
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A parsed `containerLogs` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogQuery {
    pub key: LogKey,
    pub follow: bool,
    pub timestamps: bool,
    pub limit_bytes: Option<u64>,
    pub request: LogRequest,
}

/// Binds `127.0.0.1:0` and serves `logs` until `shutdown` turns true (or its sender is
/// dropped). `follow_poll` is the longest a follower waits before looking again, which bounds
/// how late it notices a stop nobody scheduled in advance.
pub async fn serve(
    logs: LogStore,
    follow_poll: Duration,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<KubeletServer> {
    serve_counted(logs, follow_poll, shutdown, Arc::default()).await
}

/// [`serve`], counting open log responses in `streams`.
pub async fn serve_counted(
    logs: LogStore,
    follow_poll: Duration,
    mut shutdown: watch::Receiver<bool>,
    streams: Arc<AtomicUsize>,
) -> std::io::Result<KubeletServer> {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = listener.local_addr()?;
    let counter = streams.clone();
    let exec: Arc<parking_lot::RwLock<Option<ExecBackend>>> = Arc::default();
    let exec_backend = exec.clone();
    let summaries: Arc<parking_lot::RwLock<Option<super::stats::SummarySender>>> = Arc::default();
    let summary_backend = summaries.clone();
    let task = tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                r = shutdown.changed() => {
                    if r.is_err() || *shutdown.borrow() {
                        return;
                    }
                    continue;
                }
                a = listener.accept() => a,
            };
            let Ok((tcp, _)) = accepted else {
                continue;
            };
            let logs = logs.clone();
            let stop = shutdown.clone();
            let counter = counter.clone();
            let exec = exec_backend.clone();
            let summaries = summary_backend.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let portforward = super::portforward::parse(
                        req.uri().path(),
                        req.uri().query().unwrap_or(""),
                    )
                    .map(|q| {
                        let backend = exec.read().clone().map(|b| super::portforward::Backend {
                            pods: b.pods,
                            process: b.process.is_some(),
                            timeouts: b.streaming,
                        });
                        (q, backend)
                    });
                    let summary = (req.uri().path() == super::stats::SUMMARY_PATH).then(|| {
                        (
                            req.method().clone(),
                            req.uri().query().unwrap_or("").to_string(),
                            summaries.read().clone(),
                        )
                    });
                    let attach = match exec::attach::parse(
                        req.uri().path(),
                        req.uri().query().unwrap_or(""),
                    ) {
                        Ok(None) => None,
                        parsed => Some((parsed, exec.read().clone(), logs.clone())),
                    };
                    let exec_query = match attach {
                        Some(_) => Ok(None),
                        None => {
                            exec::session::parse(req.uri().path(), req.uri().query().unwrap_or(""))
                        }
                    };
                    let resp = match exec_query {
                        // Answered below; nothing to do for the logs handler.
                        Ok(None) if attach.is_some() => Ok(text(404, "")),
                        Ok(None) => Ok(handle(&logs, follow_poll, &stop, &counter, &req)),
                        Ok(Some(q)) => Err((q, exec.read().clone())),
                        Err(e) => Ok(text(400, &e)),
                    };
                    async move {
                        if let Some((q, backend)) = portforward {
                            return Ok(super::portforward::serve(req, q, backend).await);
                        }
                        if let Some((method, query, fleet)) = summary {
                            return Ok(super::stats::serve(&method, &query, fleet).await);
                        }
                        if let Some((parsed, backend, logs)) = attach {
                            return Ok(match parsed {
                                Ok(Some(q)) => match backend {
                                    Some(ExecBackend {
                                        process: Some(h), ..
                                    }) => super::process::attach::serve(req, q, h).await,
                                    backend => {
                                        let pods = backend.map(|b| b.pods);
                                        exec::attach::serve(req, q, pods, logs, follow_poll).await
                                    }
                                },
                                Ok(None) => text(404, "not found"),
                                Err(e) => text(400, &e),
                            });
                        }
                        Ok::<_, Infallible>(match resp {
                            Ok(r) => r,
                            Err((
                                q,
                                Some(ExecBackend {
                                    process: Some(h), ..
                                }),
                            )) => super::process::exec::serve(req, q, h).await,
                            Err((q, backend)) => {
                                let (pods, max_sleep) = match backend {
                                    Some(b) => (Some(b.pods), b.max_sleep),
                                    None => (None, DEFAULT_EXEC_MAX_SLEEP),
                                };
                                exec::session::serve(req, q, pods, max_sleep).await
                            }
                        })
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    Ok(KubeletServer {
        addr,
        task,
        streams,
        exec,
        summaries,
    })
}

/// A plain-text answer, as the kubelet writes its refusals.
pub(crate) fn text(code: u16, message: &str) -> Response<Body> {
    Response::builder()
        .status(code)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(
            http_body_util::Full::new(Bytes::from(message.to_string()))
                .map_err(|e| match e {})
                .boxed_unsync(),
        )
        .expect("static headers are valid")
}

fn handle(
    logs: &LogStore,
    follow_poll: Duration,
    shutdown: &watch::Receiver<bool>,
    streams: &Arc<AtomicUsize>,
    req: &Request<Incoming>,
) -> Response<Body> {
    if req.method() != http::Method::GET {
        return text(405, "only GET is served here");
    }
    let now_wall = logs.clock().wall(Instant::now());
    let query = match parse(req.uri().path(), req.uri().query().unwrap_or(""), now_wall) {
        Ok(Some(q)) => q,
        Ok(None) => return text(404, "404 page not found"),
        Err(e) => return text(400, &e),
    };
    let now = Instant::now();
    let view = match logs.read(&query.key, &query.request, now) {
        Ok(v) => v,
        Err(e) => return text(400, &e.to_string()),
    };
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let guard = StreamGuard::new(streams);
    tokio::spawn(stream_log(
        guard,
        logs.clone(),
        query,
        view,
        follow_poll,
        shutdown.clone(),
        tx,
    ));
    let body = StreamBody::new(
        tokio_stream::wrappers::ReceiverStream::new(rx)
            .map(|b| Ok::<_, Infallible>(Frame::data(b))),
    );
    Response::builder()
        .status(200)
        .header(http::header::CONTENT_TYPE, "text/plain")
        .body(BodyExt::boxed_unsync(body))
        .expect("static headers are valid")
}

/// Sends `view`'s lines, then (with `follow`) new ones until the attempt ends, the client
/// leaves, `limitBytes` is used up or the fleet stops.
async fn stream_log(
    _guard: StreamGuard,
    logs: LogStore,
    q: LogQuery,
    mut view: LogView,
    follow_poll: Duration,
    mut shutdown: watch::Receiver<bool>,
    tx: mpsc::Sender<Bytes>,
) {
    let mut budget = ByteBudget::new(q.limit_bytes);
    loop {
        let mut chunk = Vec::new();
        for line in &view.lines {
            chunk.extend_from_slice(budget.take(&format_line(line, q.timestamps)));
        }
        if !chunk.is_empty() && tx.send(Bytes::from(chunk)).await.is_err() {
            return;
        }
        if !q.follow || view.finished || budget.exhausted() {
            return;
        }
        let now = Instant::now();
        let wake = view
            .next_due
            .map_or(now + follow_poll, |due| due.min(now + follow_poll));
        tokio::select! {
            _ = tokio::time::sleep_until(wake) => {}
            _ = tx.closed() => return,
            r = shutdown.changed() => {
                if r.is_err() || *shutdown.borrow() {
                    return;
                }
            }
        }
        view = logs.follow(&view.id, view.next_seq, Instant::now());
    }
}

/// The request for `path`, `None` when the path is not a `containerLogs` one.
pub fn parse(path: &str, query: &str, now: Timestamp) -> Result<Option<LogQuery>, String> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let [root, namespace, pod, container] = parts.as_slice() else {
        return Ok(None);
    };
    if *root != "containerLogs" || namespace.is_empty() || pod.is_empty() || container.is_empty() {
        return Ok(None);
    }
    let params: HashMap<String, String> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                crate::apiserver::request::percent_decode(k),
                crate::apiserver::request::percent_decode(v),
            )
        })
        .collect();
    let flag = |name: &str| -> Result<bool, String> {
        match params.get(name).map(String::as_str) {
            None | Some("false") | Some("0") => Ok(false),
            Some("true") | Some("1") | Some("") => Ok(true),
            Some(other) => Err(format!("{name}: want true or false, got {other:?}")),
        }
    };
    let number = |name: &str, min: i64| -> Result<Option<i64>, String> {
        let Some(v) = params.get(name) else {
            return Ok(None);
        };
        let n: i64 = v
            .parse()
            .map_err(|_| format!("{name}: want an integer, got {v:?}"))?;
        if n < min {
            return Err(format!("{name}: {n} is below the minimum {min}"));
        }
        Ok(Some(n))
    };
    let since_seconds = number("sinceSeconds", 1)?;
    let since_time = match params.get("sinceTime") {
        Some(t) => Some(
            t.parse::<Timestamp>()
                .map_err(|e| format!("sinceTime: {t:?} is not an RFC 3339 time: {e}"))?,
        ),
        None => None,
    };
    let since = match (since_seconds, since_time) {
        (Some(_), Some(_)) => {
            return Err("at most one of sinceTime or sinceSeconds may be specified".into())
        }
        (Some(s), None) => Some(
            now.checked_sub(k8s_openapi::jiff::SignedDuration::from_secs(s))
                .unwrap_or(Timestamp::MIN),
        ),
        (None, t) => t,
    };
    Ok(Some(LogQuery {
        key: LogKey {
            namespace: namespace.to_string(),
            pod: pod.to_string(),
            container: container.to_string(),
        },
        follow: flag("follow")?,
        timestamps: flag("timestamps")?,
        limit_bytes: number("limitBytes", 1)?.map(|n| n as u64),
        request: LogRequest {
            previous: flag("previous")?,
            since,
            tail: number("tailLines", 0)?.map(|n| n as u64),
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp::from_second(1_800_000_000).unwrap()
    }

    #[test]
    fn paths_and_parameters_parse_as_the_kubelet_reads_them() {
        let q = parse(
            "/containerLogs/default/web/app",
            "follow=true&tailLines=5&timestamps=true&limitBytes=100&sinceSeconds=10&previous=false",
            now(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(q.key.namespace, "default");
        assert_eq!(
            (q.key.pod.as_str(), q.key.container.as_str()),
            ("web", "app")
        );
        assert!(q.follow && q.timestamps && !q.request.previous);
        assert_eq!(q.limit_bytes, Some(100));
        assert_eq!(q.request.tail, Some(5));
        assert_eq!(
            q.request.since,
            Some(Timestamp::from_second(1_799_999_990).unwrap())
        );
        let t = parse(
            "/containerLogs/ns/p/c",
            "sinceTime=2027-01-15T08%3A00%3A00Z",
            now(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(t.request.since, Some(now()));
        assert!(parse("/stats/summary", "", now()).unwrap().is_none());
        assert!(parse("/containerLogs/ns/p", "", now()).unwrap().is_none());
        for bad in [
            "tailLines=-1",
            "tailLines=x",
            "limitBytes=0",
            "sinceSeconds=0",
            "follow=maybe",
            "sinceSeconds=5&sinceTime=2027-01-15T08:00:00Z",
        ] {
            assert!(
                parse("/containerLogs/ns/p/c", bad, now()).is_err(),
                "{bad} is rejected"
            );
        }
    }

    use crate::node::logs::{LogLimits, Script};

    async fn get(addr: SocketAddr, uri: &str) -> (u16, Incoming) {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .unwrap();
        tokio::spawn(conn);
        let req = Request::get(uri)
            .header(http::header::HOST, addr.to_string())
            .body(http_body_util::Empty::<Bytes>::new())
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        (resp.status().as_u16(), resp.into_body())
    }

    async fn text_of(body: Incoming) -> String {
        String::from_utf8(body.collect().await.unwrap().to_bytes().to_vec()).unwrap()
    }

    async fn until(what: &str, f: impl Fn() -> bool) {
        for _ in 0..200 {
            if f() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("{what} did not happen");
    }

    #[tokio::test]
    async fn serves_reads_errors_and_follows_until_the_client_leaves() {
        let store = LogStore::new(LogLimits::default());
        let key = LogKey {
            namespace: "default".into(),
            pod: "web".into(),
            container: "app".into(),
        };
        let script = |attempt| Script {
            pod: "web".into(),
            container: "app".into(),
            attempt,
            running_at: Instant::now(),
            lines: vec!["hello".into()],
            every: Some(Duration::from_millis(20)),
            exit: None,
            program: None,
        };
        store.begin(key.clone(), "u1", "c1", script(0));
        let (stop, rx) = watch::channel(false);
        let server = serve(store.clone(), Duration::from_millis(20), rx)
            .await
            .unwrap();

        let (code, body) = get(server.addr, "/containerLogs/default/web/app?tailLines=1").await;
        assert_eq!(code, 200);
        let text = text_of(body).await;
        assert_eq!(text.lines().count(), 1, "{text}");
        let (code, body) = get(server.addr, "/containerLogs/default/web/nope").await;
        assert_eq!(code, 400);
        assert_eq!(
            text_of(body).await,
            "container \"nope\" in pod \"web\" is not available"
        );
        let (code, _) = get(server.addr, "/containerLogs/default/web/app?tailLines=-1").await;
        assert_eq!(code, 400);
        let (code, _) = get(server.addr, "/healthz").await;
        assert_eq!(code, 404);

        // A follower gets new lines, and its stream ends when it leaves.
        let (code, mut body) = get(server.addr, "/containerLogs/default/web/app?follow=true").await;
        assert_eq!(code, 200);
        let mut seen = String::new();
        while !seen.contains("tick 3") {
            let frame = body.frame().await.unwrap().unwrap();
            seen.push_str(std::str::from_utf8(frame.data_ref().unwrap()).unwrap());
        }
        assert!(
            seen.starts_with("web app started (attempt 0)\nhello\n"),
            "{seen}"
        );
        until("only the follower's stream is open", || {
            server.active_streams() == 1
        })
        .await;
        drop(body);
        until("the follower's stream ends", || {
            server.active_streams() == 0
        })
        .await;

        // A follower of an attempt that exits is done after the exit line.
        let (_, body) = get(server.addr, "/containerLogs/default/web/app?follow=true").await;
        store.set_exit("c1", Instant::now() + Duration::from_millis(100), 2);
        let text = tokio::time::timeout(Duration::from_secs(10), text_of(body))
            .await
            .expect("the follow ends with the container");
        assert!(text.ends_with("web app exited with code 2\n"), "{text}");
        until("the finished stream is released", || {
            server.active_streams() == 0
        })
        .await;

        // previous=true reads the attempt before a restart.
        store.begin(key, "u1", "c2", script(1));
        let (_, body) = get(server.addr, "/containerLogs/default/web/app?previous=true").await;
        assert!(text_of(body)
            .await
            .ends_with("web app exited with code 2\n"));
        let _ = stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), server.task).await;
    }
}
