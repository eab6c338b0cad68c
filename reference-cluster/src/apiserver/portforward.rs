//! `pods/portforward`: finds the pod's node as upstream's `PortForwardLocation` does and proxies
//! the client's upgrade to the kubelet's `/portForward/{namespace}/{pod}`:
//!
//! - a WebSocket offering `SPDY/3.1+portforward.k8s.io` (kubectl 1.31+, PortForwardWebsockets)
//!   is tunnelled as upstream's `TunnelingHandler` does: the kubelet is asked for a SPDY upgrade,
//!   and once it agrees the client's WebSocket is accepted with that subprotocol and its binary
//!   messages carry the SPDY bytes both ways;
//! - a plain `Upgrade: SPDY/3.1` (kubectl's fallback) and any other WebSocket
//!   (`v4.channel.k8s.io`: kube-rs, the Python client) go to the kubelet as they are, and the
//!   kubelet's answer comes back unchanged.
//!
//! A kubelet refusal (its status and text) reaches the client as the kubelet wrote it, as
//! upstream's upgrade-aware proxy passes it through.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures::{SinkExt as _, StreamExt as _};
use http::{HeaderMap, Response};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::{ApiError, ApiResult, ApiServer, Body, RequestContext};
use crate::node::exec::session::{is_websocket_upgrade, normal_close, switching_protocols};
use crate::node::portforward::{is_spdy_upgrade, parse_ports, PROTOCOL_HEADER, TUNNELING_PREFIX};
use crate::resources::ResourceInfo;

/// The `ports` of `PodPortForwardOptions` (repeated or comma-separated); WebSocket clients
/// name them here, SPDY clients in each stream's headers.
fn query_ports(raw_query: &str) -> ApiResult<Vec<u16>> {
    let raw: Vec<String> = raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (super::request::percent_decode(k) == "ports")
                .then(|| super::request::percent_decode(v))
        })
        .collect();
    if raw.is_empty() {
        return Ok(Vec::new());
    }
    parse_ports(&raw, "ports").map_err(ApiError::bad_request)
}

/// The WebSocket subprotocols offered.
fn offered_protocols(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("").split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

pub async fn pod_portforward(
    server: &Arc<ApiServer>,
    ctx: &RequestContext,
    info: &ResourceInfo,
    ns: Option<&str>,
    name: &str,
) -> ApiResult<Response<Body>> {
    let ports = query_ports(&ctx.raw_query)?;
    let pod = server.get_object(info, ns, name).await?;
    let node_name = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("");
    if node_name.is_empty() {
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    let addr = super::logs::node_kubelet_address(server, node_name).await?;
    let websocket = is_websocket_upgrade(&ctx.headers);
    if !websocket && !is_spdy_upgrade(&ctx.headers) {
        return Err(ApiError::bad_request("Upgrade request required"));
    }
    let Some(client_upgrade) = ctx.upgrade.lock().take() else {
        return Err(ApiError::bad_request(
            "this connection cannot be upgraded; use HTTP/1.1",
        ));
    };
    let mut uri = format!("/portForward/{}/{name}", ns.unwrap_or_default());
    if !ports.is_empty() {
        let q: Vec<String> = ports.iter().map(|p| format!("port={p}")).collect();
        uri = format!("{uri}?{}", q.join("&"));
    }
    let offered = offered_protocols(&ctx.headers);
    let tunnelled: Vec<&str> = offered
        .iter()
        .filter_map(|p| p.strip_prefix(TUNNELING_PREFIX))
        .filter(|p| p.ends_with("k8s.io"))
        .collect();
    if websocket && !tunnelled.is_empty() {
        // Upstream's TunnelingHandler: SPDY to the kubelet, WebSocket to the client.
        let mut headers = vec![
            (http::header::CONNECTION.as_str(), "Upgrade".to_string()),
            (http::header::UPGRADE.as_str(), "SPDY/3.1".to_string()),
        ];
        headers.extend(tunnelled.iter().map(|p| (PROTOCOL_HEADER, p.to_string())));
        let kubelet = match upgrade_kubelet(addr, "POST", &uri, &headers).await {
            Ok(r) => r,
            Err(refusal) => return Ok(refusal),
        };
        let chosen = kubelet
            .headers()
            .get(PROTOCOL_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .trim()
            .to_string();
        let protocol = format!("{TUNNELING_PREFIX}{chosen}");
        let builder =
            switching_protocols(&ctx.headers, &protocol).map_err(ApiError::bad_request)?;
        tokio::spawn(async move {
            let (client, kubelet) = tokio::join!(client_upgrade, hyper::upgrade::on(kubelet));
            let (Ok(client), Ok(kubelet)) = (client, kubelet) else {
                return;
            };
            let ws =
                WebSocketStream::from_raw_socket(TokioIo::new(client), Role::Server, None).await;
            tunnel(ws, TokioIo::new(kubelet)).await;
        });
        return empty(builder);
    }
    // Everything else goes to the kubelet as the client sent it.
    let pass: Vec<(&str, String)> = ctx
        .headers
        .iter()
        .filter(|(k, _)| {
            let k = k.as_str();
            k == "connection"
                || k == "upgrade"
                || k == PROTOCOL_HEADER
                || k.starts_with("sec-websocket-")
        })
        .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?.to_string())))
        .collect();
    let method = if websocket { "GET" } else { "POST" };
    let kubelet = match upgrade_kubelet(addr, method, &uri, &pass).await {
        Ok(r) => r,
        Err(refusal) => return Ok(refusal),
    };
    let mut builder = Response::builder().status(101);
    for (k, v) in kubelet.headers() {
        builder = builder.header(k, v);
    }
    tokio::spawn(async move {
        let (client, kubelet) = tokio::join!(client_upgrade, hyper::upgrade::on(kubelet));
        let (Ok(client), Ok(kubelet)) = (client, kubelet) else {
            return;
        };
        let _ =
            tokio::io::copy_bidirectional(&mut TokioIo::new(client), &mut TokioIo::new(kubelet))
                .await;
    });
    empty(builder)
}

fn empty(builder: http::response::Builder) -> ApiResult<Response<Body>> {
    builder
        .body(http_body_util::Empty::<Bytes>::new().boxed_unsync())
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// Asks the kubelet at `addr` for an upgrade; `Err` is the answer to give the client instead:
/// the kubelet's own refusal, or a 500 when it cannot be reached.
async fn upgrade_kubelet(
    addr: SocketAddr,
    method: &str,
    uri: &str,
    headers: &[(&str, String)],
) -> Result<Response<hyper::body::Incoming>, Response<Body>> {
    let failed = |e: &dyn std::fmt::Display| {
        super::respond_error(&ApiError::internal(format!(
            "error dialing backend: dial http://{addr}{uri}: {e}"
        )))
    };
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| failed(&e))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| failed(&e))?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    let mut req = http::Request::builder()
        .method(method)
        .uri(uri)
        .header(http::header::HOST, addr.to_string());
    for (k, v) in headers {
        req = req.header(*k, v.as_str());
    }
    let req = req
        .body(http_body_util::Empty::<Bytes>::new())
        .map_err(|e| failed(&e))?;
    let resp = sender.send_request(req).await.map_err(|e| failed(&e))?;
    if resp.status() == http::StatusCode::SWITCHING_PROTOCOLS {
        return Ok(resp);
    }
    let (parts, body) = resp.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut out = Response::builder().status(parts.status);
    if let Some(ct) = parts.headers.get(http::header::CONTENT_TYPE) {
        out = out.header(http::header::CONTENT_TYPE, ct);
    }
    Err(out
        .body(
            http_body_util::Full::new(body)
                .map_err(|e| match e {})
                .boxed_unsync(),
        )
        .expect("headers from a parsed response are valid"))
}

/// Carries the SPDY bytes of the client's WebSocket binary messages to the kubelet's raw
/// connection and back, until both sides have finished.
async fn tunnel<C, K>(ws: WebSocketStream<C>, kubelet: K)
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    K: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut sink, mut source) = ws.split();
    let (mut k_rd, mut k_wr) = tokio::io::split(kubelet);
    let up = async {
        while let Some(Ok(msg)) = source.next().await {
            match msg {
                // The guard writes; only a failed write ends the tunnel.
                Message::Binary(b) if k_wr.write_all(&b).await.is_err() => break,
                Message::Close(_) => break,
                _ => {}
            }
        }
        let _ = k_wr.shutdown().await;
    };
    let down = async {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match k_rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if sink
                        .send(Message::Binary(Bytes::copy_from_slice(&buf[..n])))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
        let _ = sink.send(normal_close()).await;
        let _ = sink.close().await;
    };
    tokio::join!(up, down);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_come_from_the_query_as_upstream_converts_them() {
        assert_eq!(query_ports("ports=80%2C1234").unwrap(), [80, 1234]);
        assert_eq!(query_ports("&ports=80&ports=81").unwrap(), [80, 81]);
        assert!(query_ports("").unwrap().is_empty());
        assert!(query_ports("ports=http").is_err());
    }

    #[tokio::test]
    async fn the_tunnel_carries_bytes_both_ways_and_ends_with_the_kubelet() {
        let (client_end, server_end) = tokio::io::duplex(4096);
        let (kubelet_end, mut kubelet) = tokio::io::duplex(4096);
        let ws = WebSocketStream::from_raw_socket(server_end, Role::Server, None).await;
        let task = tokio::spawn(tunnel(ws, kubelet_end));
        let mut client = WebSocketStream::from_raw_socket(client_end, Role::Client, None).await;
        client
            .send(Message::Binary(Bytes::from_static(b"spdy-bytes")))
            .await
            .unwrap();
        let mut got = [0u8; 10];
        kubelet.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"spdy-bytes");
        kubelet.write_all(b"reply").await.unwrap();
        match client.next().await.unwrap().unwrap() {
            Message::Binary(b) => assert_eq!(&b[..], b"reply"),
            other => panic!("{other:?}"),
        }
        drop(kubelet);
        assert!(matches!(
            client.next().await.unwrap().unwrap(),
            Message::Close(_)
        ));
        drop(client);
        tokio::time::timeout(std::time::Duration::from_secs(5), task)
            .await
            .expect("the tunnel ends")
            .unwrap();
    }
}
