//! The kubelet's `grpc` probe, as upstream's `pkg/probe/grpc`: one unary call of the standard
//! health checking protocol, `grpc.health.v1.Health/Check` with the probe's `service`, over
//! plaintext HTTP/2 (h2c with prior knowledge, as grpc-go's insecure credentials dial it), the
//! dial and the call sharing the probe's `timeoutSeconds`. Only `SERVING` passes. The failure
//! texts are upstream's.
//!
//! The request and the response are small enough to encode by hand: a gRPC message is a
//! 5-byte prefix (compressed flag, big-endian length) and the protobuf bytes;
//! `HealthCheckRequest` is `string service = 1`, `HealthCheckResponse` is
//! `ServingStatus status = 1`.

use std::time::Duration;

use bytes::{BufMut as _, Bytes, BytesMut};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::http::join_host_port;

pub const CHECK_PATH: &str = "/grpc.health.v1.Health/Check";
/// How long a failed dial waits before the next (grpc-go's blocking dial retries until the
/// deadline).
const REDIAL: Duration = Duration::from_millis(200);
/// The largest response message read (grpc-go's default receive limit).
const MAX_MESSAGE: usize = 4 * 1024 * 1024;

/// gRPC status codes by number, as grpc-go's `codes.Code.String` names them.
fn code_name(code: u32) -> String {
    const NAMES: [&str; 17] = [
        "OK",
        "Canceled",
        "Unknown",
        "InvalidArgument",
        "DeadlineExceeded",
        "NotFound",
        "AlreadyExists",
        "PermissionDenied",
        "ResourceExhausted",
        "FailedPrecondition",
        "Aborted",
        "OutOfRange",
        "Unimplemented",
        "Internal",
        "Unavailable",
        "DataLoss",
        "Unauthenticated",
    ];
    NAMES
        .get(code as usize)
        .map_or_else(|| format!("Code({code})"), |n| n.to_string())
}

const UNKNOWN: u32 = 2;
const DEADLINE_EXCEEDED: u32 = 4;
const UNIMPLEMENTED: u32 = 12;
const INTERNAL: u32 = 13;
const UNAVAILABLE: u32 = 14;

/// `HealthCheckResponse.ServingStatus` as protobuf-go's `String` prints it.
fn serving_status_name(status: u64) -> String {
    match status {
        0 => "UNKNOWN".into(),
        1 => "SERVING".into(),
        2 => "NOT_SERVING".into(),
        3 => "SERVICE_UNKNOWN".into(),
        n => n.to_string(),
    }
}

/// Go's `time.Duration` formatting (`1s`, `1m30s`, `500ms`).
pub use crate::node::clock::go_duration;

fn varint(mut v: u64, out: &mut BytesMut) {
    while v >= 0x80 {
        out.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

fn read_varint(b: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*at)?;
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// A length-prefixed, uncompressed `HealthCheckRequest{service}`.
pub fn encode_request(service: &str) -> Bytes {
    let mut msg = BytesMut::new();
    if !service.is_empty() {
        msg.put_u8(0x0a);
        varint(service.len() as u64, &mut msg);
        msg.put_slice(service.as_bytes());
    }
    frame(&msg)
}

/// The 5-byte gRPC message prefix and `msg`.
pub fn frame(msg: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(msg.len() + 5);
    out.put_u8(0);
    out.put_u32(msg.len() as u32);
    out.put_slice(msg);
    out.freeze()
}

/// A field's value: a varint, or length-delimited bytes.
pub type Value<'a> = Result<u64, &'a [u8]>;

/// The fields of one protobuf message as (number, value), fixed-width ones skipped; `Err` on
/// a malformed message.
pub fn fields(msg: &[u8]) -> Result<Vec<(u64, Value<'_>)>, String> {
    let mut at = 0;
    let mut out = Vec::new();
    let bad = || "proto: cannot parse invalid wire-format data".to_string();
    while at < msg.len() {
        let key = read_varint(msg, &mut at).ok_or_else(bad)?;
        let (number, wire) = (key >> 3, key & 7);
        match wire {
            0 => out.push((number, Ok(read_varint(msg, &mut at).ok_or_else(bad)?))),
            1 | 5 => {
                at += if wire == 1 { 8 } else { 4 };
                if at > msg.len() {
                    return Err(bad());
                }
            }
            2 => {
                let len = read_varint(msg, &mut at).ok_or_else(bad)? as usize;
                let end = at
                    .checked_add(len)
                    .filter(|&e| e <= msg.len())
                    .ok_or_else(bad)?;
                out.push((number, Err(&msg[at..end])));
                at = end;
            }
            _ => return Err(bad()),
        }
    }
    Ok(out)
}

/// The `status` of a `HealthCheckResponse` (0, UNKNOWN, when absent).
fn decode_status(msg: &[u8]) -> Result<u64, String> {
    Ok(fields(msg)?
        .into_iter()
        .filter(|(n, _)| *n == 1)
        .filter_map(|(_, v)| v.ok())
        .next_back()
        .unwrap_or(0))
}

/// Why a call failed: a gRPC status code and message.
struct RpcError {
    code: u32,
    message: String,
}

/// What grpc-go makes of a response that is not HTTP 200.
fn http_status_error(status: http::StatusCode) -> RpcError {
    let code = match status.as_u16() {
        400 => INTERNAL,
        401 => 16,
        403 => 7,
        404 => UNIMPLEMENTED,
        429 | 502..=504 => UNAVAILABLE,
        _ => UNKNOWN,
    };
    RpcError {
        code,
        message: format!(
            "unexpected HTTP status code received from server: {} ({})",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        ),
    }
}

/// `grpc-message` is percent-encoded (and, unlike a query, keeps `+` as it is).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn grpc_status(headers: &http::HeaderMap) -> Option<RpcError> {
    let code = headers
        .get("grpc-status")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let message = headers
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .map(percent_decode)
        .unwrap_or_default();
    Some(RpcError { code, message })
}

type Sender = hyper::client::conn::http2::SendRequest<Full<Bytes>>;

async fn dial(host: &str, port: u16) -> Result<Sender, String> {
    let tcp = TcpStream::connect((host, port))
        .await
        .map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// A call's end: the serving status, an RPC error, or a transport failure worth a redial.
enum Call {
    Status(u64),
    Rpc(RpcError),
    Transport,
}

async fn call(sender: &mut Sender, authority: &str, service: &str, deadline: Instant) -> Call {
    let left = deadline.saturating_duration_since(Instant::now());
    let req = http::Request::post(format!("http://{authority}{CHECK_PATH}"))
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .header(http::header::TE, "trailers")
        .header(http::header::USER_AGENT, "kube-probe/1.32")
        .header(
            "grpc-timeout",
            format!("{}m", left.as_millis().clamp(1, 99_999_999)),
        )
        .body(Full::new(encode_request(service)));
    let Ok(req) = req else {
        return Call::Rpc(RpcError {
            code: INTERNAL,
            message: format!("the address {authority:?} cannot name an HTTP/2 authority"),
        });
    };
    let Ok(resp) = sender.send_request(req).await else {
        return Call::Transport;
    };
    if resp.status() != http::StatusCode::OK {
        return Call::Rpc(http_status_error(resp.status()));
    }
    // A trailers-only response carries the status in its headers.
    if let Some(e) = grpc_status(resp.headers()) {
        return Call::Rpc(e);
    }
    let mut body = resp.into_body();
    let mut data = Vec::new();
    let mut trailers = None;
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(f) => f,
            Err(e) => {
                return Call::Rpc(RpcError {
                    code: UNAVAILABLE,
                    message: format!("error reading from server: {e}"),
                })
            }
        };
        match frame.into_data() {
            Ok(d) => {
                if data.len() + d.len() > MAX_MESSAGE + 5 {
                    return Call::Rpc(RpcError {
                        code: 8,
                        message: format!(
                            "grpc: received message larger than max ({} vs. {MAX_MESSAGE})",
                            data.len() + d.len() - 5
                        ),
                    });
                }
                data.extend_from_slice(&d);
            }
            Err(f) => {
                if let Ok(t) = f.into_trailers() {
                    trailers = Some(t);
                }
            }
        }
    }
    match trailers.as_ref().and_then(grpc_status) {
        None => Call::Rpc(RpcError {
            code: INTERNAL,
            message: "server closed the stream without sending trailers".into(),
        }),
        Some(e) if e.code != 0 => Call::Rpc(e),
        Some(_) => {
            let unmarshal = |why: &str| {
                Call::Rpc(RpcError {
                    code: INTERNAL,
                    message: format!("grpc: failed to unmarshal the received message: {why}"),
                })
            };
            if data.len() < 5 {
                return Call::Rpc(RpcError {
                    code: INTERNAL,
                    message: "cardinality violation: expected <EOF> for non server-streaming RPCs, but received no response message".into(),
                });
            }
            if data[0] != 0 {
                return Call::Rpc(RpcError {
                    code: INTERNAL,
                    message: "grpc: compressed flag set with identity or empty encoding".into(),
                });
            }
            let len = u32::from_be_bytes([data[1], data[2], data[3], data[4]]) as usize;
            let Some(msg) = data.get(5..5 + len) else {
                return unmarshal("unexpected EOF");
            };
            match decode_status(msg) {
                Ok(s) => Call::Status(s),
                Err(e) => unmarshal(&e),
            }
        }
    }
}

/// Runs one grpc probe against `host:port`; `Err` holds the failure upstream's prober reports.
pub async fn probe(host: &str, port: u16, service: &str, timeout: Duration) -> Result<(), String> {
    let addr = join_host_port(host, port);
    let within = go_duration(timeout);
    let deadline = Instant::now() + timeout;
    let dial_timeout = || {
        format!("timeout: failed to connect service {addr:?} within {within}: context deadline exceeded")
    };
    loop {
        let mut sender = match tokio::time::timeout_at(deadline, dial(host, port)).await {
            Err(_) => return Err(dial_timeout()),
            Ok(Ok(s)) => s,
            Ok(Err(_)) => {
                // grpc-go's blocking dial treats refusals as transient until the deadline.
                if Instant::now() + REDIAL >= deadline {
                    tokio::time::sleep_until(deadline).await;
                    return Err(dial_timeout());
                }
                tokio::time::sleep(REDIAL).await;
                continue;
            }
        };
        let outcome =
            match tokio::time::timeout_at(deadline, call(&mut sender, &addr, service, deadline))
                .await
            {
                Err(_) => {
                    return Err(format!(
                        "timeout: health rpc did not complete within {within}"
                    ))
                }
                Ok(c) => c,
            };
        return match outcome {
            // The connection broke before an answer (e.g. the port does not speak HTTP/2):
            // not ready yet, as grpc-go sees a transport that never became ready.
            Call::Transport => {
                if Instant::now() + REDIAL >= deadline {
                    tokio::time::sleep_until(deadline).await;
                    return Err(dial_timeout());
                }
                tokio::time::sleep(REDIAL).await;
                continue;
            }
            Call::Status(1) => Ok(()),
            Call::Status(s) => Err(format!(
                "service unhealthy (responded with {:?})",
                serving_status_name(s)
            )),
            Call::Rpc(e) if e.code == UNIMPLEMENTED => Err(format!(
                "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): {}",
                e.message
            )),
            Call::Rpc(e) if e.code == DEADLINE_EXCEEDED => {
                Err(format!("timeout: health rpc did not complete within {within}"))
            }
            Call::Rpc(e) => Err(format!(
                "error: health rpc probe failed: rpc error: code = {} desc = {}",
                code_name(e.code),
                e.message
            )),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::StreamBody;
    use hyper::body::Frame;
    use std::convert::Infallible;

    #[test]
    fn messages_encode_and_decode_as_protobuf() {
        assert_eq!(&encode_request("")[..], [0, 0, 0, 0, 0]);
        assert_eq!(
            &encode_request("ab")[..],
            [0, 0, 0, 0, 4, 0x0a, 2, b'a', b'b']
        );
        assert_eq!(decode_status(&[0x08, 0x02]), Ok(2));
        assert_eq!(decode_status(&[]), Ok(0));
        // Unknown fields of every wire type are skipped.
        assert_eq!(
            decode_status(&[0x12, 1, b'x', 0x1d, 0, 0, 0, 0, 0x08, 0x01]),
            Ok(1)
        );
        assert!(decode_status(&[0x0a, 5, b'x']).is_err());
        assert!(decode_status(&[0x08]).is_err());
        assert_eq!(serving_status_name(7), "7");
        assert_eq!(code_name(5), "NotFound");
        assert_eq!(code_name(99), "Code(99)");
    }

    #[test]
    fn durations_print_as_go_does() {
        assert_eq!(go_duration(Duration::from_secs(1)), "1s");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_millis(250)), "250ms");
    }

    /// An h2c health server: `""` and `"web"` are SERVING, `"db"` NOT_SERVING, `"slow"`
    /// answers after 3 s, `"legacy"` is a server without the health service, anything else
    /// is unknown (NOT_FOUND, as grpc-go's health server answers).
    async fn health_server() -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let svc = hyper::service::service_fn(
                    |req: http::Request<hyper::body::Incoming>| async move {
                        assert_eq!(req.uri().path(), CHECK_PATH);
                        assert_eq!(req.headers()["content-type"], "application/grpc");
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let service = fields(&body[5..])
                            .unwrap()
                            .into_iter()
                            .find_map(|(n, v)| (n == 1).then_some(v).and_then(Result::err))
                            .map(|b| String::from_utf8_lossy(b).into_owned())
                            .unwrap_or_default();
                        let status = match service.as_str() {
                            "" | "web" => Some(1u8),
                            "db" => Some(2),
                            "slow" => {
                                tokio::time::sleep(Duration::from_secs(3)).await;
                                Some(1)
                            }
                            _ => None,
                        };
                        let resp =
                            http::Response::builder().header("content-type", "application/grpc");
                        let frames: Vec<Result<Frame<Bytes>, Infallible>> = match status {
                            Some(s) => {
                                let mut trailers = http::HeaderMap::new();
                                trailers.insert("grpc-status", "0".parse().unwrap());
                                vec![
                                    Ok(Frame::data(frame(&[0x08, s]))),
                                    Ok(Frame::trailers(trailers)),
                                ]
                            }
                            None => {
                                let (code, message) = if service == "legacy" {
                                    ("12", "unknown service grpc.health.v1.Health")
                                } else {
                                    ("5", "unknown service")
                                };
                                let mut trailers = http::HeaderMap::new();
                                trailers.insert("grpc-status", code.parse().unwrap());
                                trailers.insert(
                                    "grpc-message",
                                    message.replace(' ', "%20").parse().unwrap(),
                                );
                                vec![Ok(Frame::trailers(trailers))]
                            }
                        };
                        Ok::<_, Infallible>(
                            resp.body(StreamBody::new(futures::stream::iter(frames)))
                                .unwrap(),
                        )
                    },
                );
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tcp), svc)
                        .await;
                });
            }
        });
        port
    }

    #[tokio::test]
    async fn health_checks_pass_only_when_serving_and_fail_in_upstreams_words() {
        let port = health_server().await;
        let t = Duration::from_secs(5);
        assert_eq!(probe("127.0.0.1", port, "", t).await, Ok(()));
        assert_eq!(probe("127.0.0.1", port, "web", t).await, Ok(()));
        assert_eq!(
            probe("127.0.0.1", port, "db", t).await,
            Err("service unhealthy (responded with \"NOT_SERVING\")".into())
        );
        assert_eq!(
            probe("127.0.0.1", port, "cache", t).await,
            Err(
                "error: health rpc probe failed: rpc error: code = NotFound desc = unknown service"
                    .into()
            )
        );
        assert_eq!(
            probe("127.0.0.1", port, "legacy", t).await,
            Err("error: this server does not implement the grpc health protocol (grpc.health.v1.Health): unknown service grpc.health.v1.Health".into())
        );
        assert_eq!(
            probe("127.0.0.1", port, "slow", Duration::from_secs(1)).await,
            Err("timeout: health rpc did not complete within 1s".into())
        );
    }

    #[tokio::test]
    async fn a_closed_port_is_a_dial_timeout() {
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        assert_eq!(
            probe("127.0.0.1", port, "", Duration::from_secs(1)).await,
            Err(format!("timeout: failed to connect service \"127.0.0.1:{port}\" within 1s: context deadline exceeded"))
        );
    }
}
