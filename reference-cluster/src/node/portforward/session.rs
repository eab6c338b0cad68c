//! The kubelet's SPDY port-forward session, as upstream's `httpStreamHandler` runs it: every
//! stream the client opens is accepted with an empty SYN_REPLY once its `port` and
//! `streamtype` headers are valid (otherwise reset); streams are paired by `requestid` (or, for
//! clients that do not send one, by stream id); a complete pair connects to the pod's port and
//! copies bytes until the pod closes its side, or the client resets the data stream. Then both
//! streams are finished, the error stream after whatever error it carries, which is what
//! kubectl waits for before closing its local connection.
//!
//! A client that finishes its half of the data stream gets the pod's side shut for writing
//! while the reply keeps flowing (a half-close, as a TCP proxy does).
//!
//! A request whose partner stream has not arrived within the stream creation timeout is given
//! up as upstream's `monitorStreamPair` does: "(conn=…, request=N) timed out waiting for
//! streams" on its error stream. Upstream then leaves the lone stream open until the
//! connection ends; here the error stream is finished after the message (so a client reading
//! it to the end sees it) and a lone data stream is reset. A connection over which no frame
//! moved either way for the idle timeout has its streams reset and is closed after a GOAWAY,
//! as spdystream's idle-aware framer does.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::spdy::{self, Decoder, Encoder, Frame, FLAG_FIN, RST_CANCEL, RST_PROTOCOL_ERROR};
use super::{Activity, StreamTimeouts, Target};

/// How much of the pod's output one DATA frame carries at most.
const CHUNK: usize = 32 * 1024;

/// What the client sends on a data stream.
enum Inbound {
    Data(Bytes),
    Fin,
}

enum Stream {
    Data(mpsc::Sender<Inbound>),
    Error,
}

/// A request's streams while they arrive.
struct Pair {
    port: u16,
    data: Option<(u32, mpsc::Receiver<Inbound>)>,
    error: Option<u32>,
    /// When the stream creation timeout gives up on the missing partner.
    deadline: Instant,
}

/// Names connections in the messages of timed-out requests.
static CONNECTIONS: AtomicU64 = AtomicU64::new(1);

/// Serves one upgraded SPDY connection until the client closes it or it has been idle for
/// `timeouts.idle`.
pub async fn run<S>(io: S, target: Arc<Target>, timeouts: StreamTimeouts)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn = CONNECTIONS.fetch_add(1, Ordering::Relaxed);
    let (mut rd, wr) = tokio::io::split(io);
    let (out, out_rx) = mpsc::channel::<Frame>(64);
    let activity = Activity::new();
    let writer = tokio::spawn(write_frames(wr, out_rx, activity.clone()));
    let mut forwards = JoinSet::new();
    let mut dec = Decoder::new();
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut streams: HashMap<u32, Stream> = HashMap::new();
    let mut pairs: HashMap<String, Pair> = HashMap::new();
    let mut last_stream = 0u32;
    let mut gone_away = false;
    'conn: loop {
        loop {
            let frame = match dec.decode(&mut buf) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!("port-forward session ends: {e}");
                    let _ = out
                        .send(Frame::GoAway {
                            last_good_stream_id: last_stream,
                            status: 1,
                        })
                        .await;
                    break 'conn;
                }
            };
            match frame {
                Frame::SynStream {
                    stream_id,
                    flags,
                    headers,
                    ..
                } => {
                    if gone_away {
                        continue;
                    }
                    // Client streams are odd and increasing (spdystream's validateStreamId).
                    if stream_id.is_multiple_of(2) || stream_id <= last_stream {
                        let _ = out
                            .send(Frame::RstStream {
                                stream_id,
                                status: RST_PROTOCOL_ERROR,
                            })
                            .await;
                        continue;
                    }
                    last_stream = stream_id;
                    let (port, kind) = match validate(&headers) {
                        Ok(v) => v,
                        Err(e) => {
                            tracing::debug!("port-forward stream {stream_id} rejected: {e}");
                            let _ = out
                                .send(Frame::RstStream {
                                    stream_id,
                                    status: RST_CANCEL,
                                })
                                .await;
                            continue;
                        }
                    };
                    let _ = out
                        .send(Frame::SynReply {
                            stream_id,
                            flags: 0,
                            headers: Vec::new(),
                        })
                        .await;
                    let request = spdy::header(&headers, "requestid")
                        .filter(|r| !r.is_empty())
                        .map(str::to_string)
                        // Clients before request ids open error n, then data n+2.
                        .unwrap_or_else(|| match kind {
                            Kind::Error => stream_id.to_string(),
                            Kind::Data => stream_id.saturating_sub(2).to_string(),
                        });
                    let pair = pairs.entry(request.clone()).or_insert_with(|| Pair {
                        port,
                        data: None,
                        error: None,
                        deadline: Instant::now() + timeouts.creation,
                    });
                    pair.port = port;
                    let duplicate = match kind {
                        Kind::Error if pair.error.is_some() => Some("error"),
                        Kind::Data if pair.data.is_some() => Some("data"),
                        _ => None,
                    };
                    if let Some(which) = duplicate {
                        if let Some(error_id) = pair.error {
                            let message = format!(
                                "error processing stream for request {request}: {which} stream already assigned"
                            );
                            let _ = out
                                .send(Frame::Data {
                                    stream_id: error_id,
                                    flags: 0,
                                    data: message.into(),
                                })
                                .await;
                        }
                        continue;
                    }
                    match kind {
                        Kind::Error => {
                            pair.error = Some(stream_id);
                            streams.insert(stream_id, Stream::Error);
                        }
                        Kind::Data => {
                            let (tx, rx) = mpsc::channel(16);
                            if flags & FLAG_FIN != 0 {
                                let _ = tx.try_send(Inbound::Fin);
                            } else {
                                streams.insert(stream_id, Stream::Data(tx));
                            }
                            pair.data = Some((stream_id, rx));
                        }
                    }
                    if pair.error.is_some() && pair.data.is_some() {
                        let pair = pairs.remove(&request).expect("just seen");
                        let (data_id, inbound) = pair.data.expect("complete");
                        forwards.spawn(forward(
                            target.clone(),
                            pair.port,
                            data_id,
                            pair.error.expect("complete"),
                            inbound,
                            out.clone(),
                        ));
                    }
                }
                Frame::Data {
                    stream_id,
                    flags,
                    data,
                } => {
                    let fin = flags & FLAG_FIN != 0;
                    if let Some(Stream::Data(tx)) = streams.get(&stream_id) {
                        let mut alive = true;
                        if !data.is_empty() {
                            alive = tx.send(Inbound::Data(data)).await.is_ok();
                        }
                        if alive && fin {
                            let _ = tx.send(Inbound::Fin).await;
                        }
                        if !alive || fin {
                            streams.remove(&stream_id);
                        }
                    } else if fin {
                        // The client finishes its (unused) half of an error stream at once.
                        streams.remove(&stream_id);
                    }
                }
                Frame::RstStream { stream_id, .. } => {
                    // Dropping the sender tells the forward the client is gone.
                    streams.remove(&stream_id);
                }
                Frame::Ping { id } => {
                    // The client's pings are odd; ours would be even (spdystream).
                    if !id.is_multiple_of(2) {
                        let _ = out.send(Frame::Ping { id }).await;
                    }
                }
                Frame::GoAway { .. } => gone_away = true,
                Frame::SynReply { .. }
                | Frame::Headers { .. }
                | Frame::Settings { .. }
                | Frame::WindowUpdate { .. }
                | Frame::Unknown { .. } => {}
            }
        }
        let next_deadline = pairs.values().map(|p| p.deadline).min();
        let creation = async {
            match next_deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            read = rd.read_buf(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(_) => activity.touch(),
            },
            () = creation => {
                let now = Instant::now();
                let expired: Vec<String> = pairs
                    .iter()
                    .filter(|(_, p)| p.deadline <= now)
                    .map(|(r, _)| r.clone())
                    .collect();
                for request in expired {
                    let Some(pair) = pairs.remove(&request) else { continue };
                    let message = format!(
                        "(conn=#{conn}, request={request}) timed out waiting for streams"
                    );
                    tracing::debug!("port-forward: {message}");
                    if let Some(error_id) = pair.error {
                        streams.remove(&error_id);
                        for (flags, data) in [(0, Bytes::from(message)), (FLAG_FIN, Bytes::new())] {
                            let _ = out
                                .send(Frame::Data { stream_id: error_id, flags, data })
                                .await;
                        }
                    }
                    if let Some((data_id, _)) = pair.data {
                        streams.remove(&data_id);
                        let _ = out
                            .send(Frame::RstStream { stream_id: data_id, status: RST_CANCEL })
                            .await;
                    }
                }
            }
            () = activity.idle_for(timeouts.idle) => {
                tracing::debug!("port-forward connection #{conn} idle for {:?}: closing it", timeouts.idle);
                let mut open: Vec<u32> = streams.keys().copied().collect();
                open.extend(pairs.values().flat_map(|p| p.error.into_iter().chain(p.data.as_ref().map(|d| d.0))));
                open.sort_unstable();
                open.dedup();
                for stream_id in open {
                    let _ = out.send(Frame::RstStream { stream_id, status: RST_CANCEL }).await;
                }
                let _ = out
                    .send(Frame::GoAway { last_good_stream_id: last_stream, status: 0 })
                    .await;
                break 'conn;
            }
        }
    }
    drop(streams);
    drop(pairs);
    forwards.abort_all();
    drop(out);
    let _ = writer.await;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Error,
    Data,
}

/// Upstream's `httpStreamReceived` checks.
fn validate(headers: &spdy::Headers) -> Result<(u16, Kind), String> {
    let port = spdy::header(headers, "port").unwrap_or("");
    if port.is_empty() {
        return Err("\"port\" header is required".into());
    }
    let port: u16 = port
        .parse()
        .map_err(|e| format!("unable to parse {port:?} as a port: {e}"))?;
    if port < 1 {
        return Err(format!("port \"{port}\" must be > 0"));
    }
    match spdy::header(headers, "streamtype").unwrap_or("") {
        "" => Err("\"streamType\" header is required".into()),
        "error" => Ok((port, Kind::Error)),
        "data" => Ok((port, Kind::Data)),
        other => Err(format!("invalid stream type {other:?}")),
    }
}

/// One forwarded connection.
async fn forward(
    target: Arc<Target>,
    port: u16,
    data_id: u32,
    error_id: u32,
    mut inbound: mpsc::Receiver<Inbound>,
    out: mpsc::Sender<Frame>,
) {
    match target.connect(port).await {
        Err(message) => {
            let _ = out
                .send(Frame::Data {
                    stream_id: error_id,
                    flags: 0,
                    data: message.into(),
                })
                .await;
        }
        Ok(tcp) => {
            let (mut pod_rd, mut pod_wr) = tcp.into_split();
            let to_client = async {
                let mut chunk = vec![0u8; CHUNK];
                loop {
                    match pod_rd.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            let frame = Frame::Data {
                                stream_id: data_id,
                                flags: 0,
                                data: Bytes::copy_from_slice(&chunk[..n]),
                            };
                            if out.send(frame).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            };
            // True when the client finished its half, false when it reset the stream.
            let to_pod = async {
                while let Some(m) = inbound.recv().await {
                    match m {
                        Inbound::Data(b) => {
                            if pod_wr.write_all(&b).await.is_err() {
                                return true;
                            }
                        }
                        Inbound::Fin => {
                            let _ = pod_wr.shutdown().await;
                            return true;
                        }
                    }
                }
                false
            };
            tokio::pin!(to_client);
            tokio::select! {
                _ = &mut to_client => {}
                half_closed = to_pod => {
                    if half_closed {
                        to_client.await;
                    }
                }
            }
        }
    }
    for stream_id in [data_id, error_id] {
        let _ = out
            .send(Frame::Data {
                stream_id,
                flags: FLAG_FIN,
                data: Bytes::new(),
            })
            .await;
    }
}

/// Encodes frames in order (the header compressor is one stream) and writes them.
async fn write_frames<W>(mut wr: W, mut frames: mpsc::Receiver<Frame>, activity: Arc<Activity>)
where
    W: AsyncWrite + Unpin,
{
    let mut enc = Encoder::new();
    let mut wire = Vec::with_capacity(CHUNK + 64);
    while let Some(frame) = frames.recv().await {
        wire.clear();
        if enc.encode(&frame, &mut wire).is_err() {
            break;
        }
        // Whatever else is queued goes out in the same write.
        while wire.len() < CHUNK {
            let Ok(next) = frames.try_recv() else { break };
            if enc.encode(&next, &mut wire).is_err() {
                break;
            }
        }
        if wr.write_all(&wire).await.is_err() || wr.flush().await.is_err() {
            break;
        }
        activity.touch();
    }
    let _ = wr.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    /// The client half of a SPDY connection, as client-go drives it.
    struct Client {
        enc: Encoder,
        dec: Decoder,
        buf: BytesMut,
        io: tokio::io::DuplexStream,
    }

    impl Client {
        async fn send(&mut self, f: Frame) {
            let mut wire = Vec::new();
            self.enc.encode(&f, &mut wire).unwrap();
            self.io.write_all(&wire).await.unwrap();
        }

        async fn next(&mut self) -> Option<Frame> {
            loop {
                if let Some(f) = self.dec.decode(&mut self.buf).unwrap() {
                    return Some(f);
                }
                let n =
                    tokio::time::timeout(Duration::from_secs(10), self.io.read_buf(&mut self.buf))
                        .await
                        .expect("the kubelet answers")
                        .unwrap();
                if n == 0 {
                    return None;
                }
            }
        }

        async fn open(&mut self, id: u32, kind: &str, port: u16, request: &str) {
            self.send(Frame::SynStream {
                stream_id: id,
                associated_to: 0,
                priority: 0,
                slot: 0,
                flags: 0,
                headers: vec![
                    ("port".into(), port.to_string()),
                    ("requestid".into(), request.into()),
                    ("streamtype".into(), kind.into()),
                ],
            })
            .await;
        }

        /// Collects what arrives on `stream` until it is finished.
        async fn read_stream(&mut self, stream: u32, others: &mut Vec<Frame>) -> Vec<u8> {
            let mut got = Vec::new();
            while let Some(f) = self.next().await {
                match f {
                    Frame::Data {
                        stream_id,
                        flags,
                        data,
                    } if stream_id == stream => {
                        got.extend_from_slice(&data);
                        if flags & FLAG_FIN != 0 {
                            return got;
                        }
                    }
                    other => others.push(other),
                }
            }
            panic!("stream {stream} did not finish; frames seen: {others:?}")
        }
    }

    fn start(target: Target) -> Client {
        start_with(target, StreamTimeouts::default())
    }

    fn start_with(target: Target, timeouts: StreamTimeouts) -> Client {
        let (a, b) = tokio::io::duplex(1 << 16);
        tokio::spawn(run(b, Arc::new(target), timeouts));
        Client {
            enc: Encoder::new(),
            dec: Decoder::new(),
            buf: BytesMut::new(),
            io: a,
        }
    }

    fn pod(ip: &str) -> k8s_openapi::api::core::v1::Pod {
        serde_json::from_value(
            json!({"metadata": {"name": "web", "uid": "u-1"}, "status": {"podIP": ip}}),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn forwards_bytes_to_a_listening_pod_and_half_closes() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // The pod: reads until the client's end, then answers and closes.
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut req = Vec::new();
            s.read_to_end(&mut req).await.unwrap();
            s.write_all(format!("got {}", String::from_utf8_lossy(&req)).as_bytes())
                .await
                .unwrap();
        });
        let mut c = start(Target::for_pod(&pod("127.0.0.1"), true));
        c.send(Frame::Ping { id: 1 }).await;
        c.open(1, "error", port, "0").await;
        c.send(Frame::Data {
            stream_id: 1,
            flags: FLAG_FIN,
            data: Bytes::new(),
        })
        .await;
        c.open(3, "data", port, "0").await;
        c.send(Frame::Data {
            stream_id: 3,
            flags: 0,
            data: Bytes::from_static(b"hello"),
        })
        .await;
        c.send(Frame::Data {
            stream_id: 3,
            flags: FLAG_FIN,
            data: Bytes::new(),
        })
        .await;
        let mut others = Vec::new();
        assert_eq!(c.read_stream(3, &mut others).await, b"got hello");
        assert!(c.read_stream(1, &mut others).await.is_empty(), "no error");
        assert!(others.contains(&Frame::Ping { id: 1 }), "{others:?}");
        for id in [1, 3] {
            assert!(
                others.contains(&Frame::SynReply {
                    stream_id: id,
                    flags: 0,
                    headers: Vec::new()
                }),
                "{others:?}"
            );
        }
    }

    #[tokio::test]
    async fn refusals_arrive_on_the_error_stream_and_bad_streams_are_reset() {
        let target = Target::for_pod(&pod("127.0.0.1"), false);
        let sandbox = target.sandbox.clone();
        let mut c = start(target);
        // No request id: error n and data n+2 still pair up.
        c.send(Frame::SynStream {
            stream_id: 1,
            associated_to: 0,
            priority: 0,
            slot: 0,
            flags: 0,
            headers: vec![
                ("port".into(), "80".into()),
                ("streamtype".into(), "error".into()),
            ],
        })
        .await;
        c.send(Frame::SynStream {
            stream_id: 3,
            associated_to: 0,
            priority: 0,
            slot: 0,
            flags: 0,
            headers: vec![
                ("port".into(), "80".into()),
                ("streamtype".into(), "data".into()),
            ],
        })
        .await;
        let mut others = Vec::new();
        let message = String::from_utf8(c.read_stream(1, &mut others).await).unwrap();
        assert!(
            message.starts_with(&format!("error forwarding port 80 to pod {sandbox}, uid : failed to execute portforward in network namespace")),
            "{message}"
        );
        assert!(message.contains("connect: connection refused"), "{message}");
        // A stream without a port is reset; an even (server-side) id is a protocol error.
        c.open(5, "data", 0, "1").await;
        c.send(Frame::SynStream {
            stream_id: 7,
            associated_to: 0,
            priority: 0,
            slot: 0,
            flags: 0,
            headers: vec![("streamtype".into(), "data".into())],
        })
        .await;
        c.open(8, "data", 80, "2").await;
        let mut resets = Vec::new();
        while resets.len() < 3 {
            if let Frame::RstStream { stream_id, status } =
                c.next().await.expect("the session stays up")
            {
                resets.push((stream_id, status));
            }
        }
        assert_eq!(
            resets,
            [(5, RST_CANCEL), (7, RST_CANCEL), (8, RST_PROTOCOL_ERROR)]
        );
        drop(c);
    }

    #[tokio::test]
    async fn a_stream_whose_partner_never_comes_is_given_up_after_the_creation_timeout() {
        let timeouts = StreamTimeouts {
            creation: Duration::from_millis(300),
            idle: Duration::from_secs(3600),
        };
        let mut c = start_with(Target::for_pod(&pod("127.0.0.1"), false), timeouts);
        // Request 0 sends only its data stream, request 1 only its error stream.
        c.open(1, "data", 80, "0").await;
        c.open(3, "error", 80, "1").await;
        let mut others = Vec::new();
        let message = String::from_utf8(c.read_stream(3, &mut others).await).unwrap();
        assert!(
            message.starts_with("(conn=#")
                && message.ends_with(", request=1) timed out waiting for streams"),
            "{message}"
        );
        while !others.iter().any(|f| matches!(f, Frame::RstStream { .. })) {
            others.push(c.next().await.expect("the session stays up"));
        }
        assert!(
            others.contains(&Frame::RstStream {
                stream_id: 1,
                status: RST_CANCEL
            }),
            "the lone data stream is reset: {others:?}"
        );
        // The connection itself stays usable for the next request.
        c.open(5, "error", 80, "2").await;
        c.open(7, "data", 80, "2").await;
        let refused = String::from_utf8(c.read_stream(5, &mut others).await).unwrap();
        assert!(refused.contains("connection refused"), "{refused}");
    }

    #[tokio::test]
    async fn an_idle_connection_is_reset_and_closed() {
        let timeouts = StreamTimeouts {
            creation: Duration::from_secs(3600),
            idle: Duration::from_millis(300),
        };
        let mut c = start_with(Target::for_pod(&pod("127.0.0.1"), false), timeouts);
        c.open(1, "error", 80, "0").await;
        let mut seen = Vec::new();
        while let Some(f) = c.next().await {
            seen.push(f);
        }
        assert_eq!(
            seen,
            [
                Frame::SynReply {
                    stream_id: 1,
                    flags: 0,
                    headers: Vec::new()
                },
                Frame::RstStream {
                    stream_id: 1,
                    status: RST_CANCEL
                },
                Frame::GoAway {
                    last_good_stream_id: 1,
                    status: 0
                }
            ]
        );
    }

    #[test]
    fn stream_headers_are_checked_as_upstream() {
        let h = |pairs: &[(&str, &str)]| -> spdy::Headers {
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        assert_eq!(
            validate(&h(&[("port", "80"), ("streamtype", "data")])),
            Ok((80, Kind::Data))
        );
        assert_eq!(
            validate(&h(&[("streamtype", "data")])).unwrap_err(),
            "\"port\" header is required"
        );
        assert_eq!(
            validate(&h(&[("port", "80")])).unwrap_err(),
            "\"streamType\" header is required"
        );
        assert_eq!(
            validate(&h(&[("port", "80"), ("streamtype", "x")])).unwrap_err(),
            "invalid stream type \"x\""
        );
        assert!(validate(&h(&[("port", "http"), ("streamtype", "data")])).is_err());
    }
}
