//! The kubelet's WebSocket port-forward (`v4.channel.k8s.io`, or no subprotocol: binary
//! channels), which kube-rs `Api::portforward` and the Python client use: the ports are the
//! request's `port` parameters; port `i` has the data channel `2i` and the error channel
//! `2i+1`; each channel's first message is the port as two little-endian bytes. One connection
//! per port is made when the socket opens; the socket closes when every port's connection has
//! ended, when the client leaves, or when no message moved either way for the idle timeout (as
//! upstream's wsstream deadlines close it: the connection drops without a close frame).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt as _, StreamExt as _};
use http::{Request, Response};
use http_body_util::BodyExt as _;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::{text, Activity, Target};
use crate::node::exec::session::normal_close;

type Body = crate::node::kubelet_server::Body;

/// The subprotocol served besides none at all.
pub const CHANNEL_PROTOCOL: &str = "v4.channel.k8s.io";

const CHUNK: usize = 32 * 1024;

/// Answers 101 Switching Protocols and forwards `ports` over the upgraded socket.
pub fn upgrade(
    req: &mut Request<hyper::body::Incoming>,
    ports: Vec<u16>,
    target: Arc<Target>,
    idle: Duration,
) -> Response<Body> {
    let offered: Vec<String> = req
        .headers()
        .get_all(http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("").split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    let protocol = if offered.is_empty() {
        None
    } else if offered.iter().any(|p| p == CHANNEL_PROTOCOL) {
        Some(CHANNEL_PROTOCOL)
    } else {
        return text(
            400,
            &format!(
                "unable to upgrade websocket connection: none of the offered subprotocols {offered:?} is served; offer {CHANNEL_PROTOCOL} (v4.base64.channel.k8s.io is not served)"
            ),
        );
    };
    let Some(key) = req.headers().get(http::header::SEC_WEBSOCKET_KEY).cloned() else {
        return text(400, "the WebSocket upgrade lacks Sec-WebSocket-Key");
    };
    let mut builder = Response::builder()
        .status(101)
        .header(http::header::CONNECTION, "Upgrade")
        .header(http::header::UPGRADE, "websocket")
        .header(
            http::header::SEC_WEBSOCKET_ACCEPT,
            tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes()),
        );
    if let Some(p) = protocol {
        builder = builder.header(http::header::SEC_WEBSOCKET_PROTOCOL, p);
    }
    let upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else {
            return;
        };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        run(ws, ports, target, idle).await;
    });
    builder
        .body(
            http_body_util::Empty::new()
                .map_err(|e| match e {})
                .boxed_unsync(),
        )
        .expect("static headers are valid")
}

fn message(channel: usize, data: &[u8]) -> Message {
    let mut v = Vec::with_capacity(data.len() + 1);
    v.push(channel as u8);
    v.extend_from_slice(data);
    Message::Binary(v.into())
}

/// Forwards `ports` over `ws` until every port's connection has ended, the client leaves or
/// the connection has been idle for `idle`.
pub async fn run<S>(ws: WebSocketStream<S>, ports: Vec<u16>, target: Arc<Target>, idle: Duration)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut source) = ws.split();
    let (out, mut out_rx) = mpsc::channel::<Message>(64);
    // Channel numbers are one byte: at most 128 ports fit.
    let ports: Vec<u16> = ports.into_iter().take(128).collect();
    for (i, port) in ports.iter().enumerate() {
        for channel in [2 * i, 2 * i + 1] {
            let _ = out.send(message(channel, &port.to_le_bytes())).await;
        }
    }
    let mut inbound = Vec::with_capacity(ports.len());
    let mut forwards = JoinSet::new();
    for (i, port) in ports.iter().enumerate() {
        let (tx, rx) = mpsc::channel::<Bytes>(16);
        inbound.push(Some(tx));
        forwards.spawn(forward(target.clone(), i, *port, rx, out.clone()));
    }
    drop(out);
    let activity = Activity::new();
    let writer = async {
        while let Some(m) = out_rx.recv().await {
            if sink.send(m).await.is_err() {
                return;
            }
            activity.touch();
        }
        let _ = sink.send(normal_close()).await;
        let _ = sink.close().await;
    };
    let reader = async {
        while let Some(Ok(msg)) = source.next().await {
            activity.touch();
            let data = match msg {
                Message::Binary(b) => b,
                Message::Close(_) => break,
                _ => continue,
            };
            let Some(&channel) = data.first() else {
                continue;
            };
            let channel = channel as usize;
            // Clients write only to data channels; the error channels are the kubelet's.
            if !channel.is_multiple_of(2) {
                continue;
            }
            if let Some(slot) = inbound.get_mut(channel / 2) {
                if let Some(tx) = slot {
                    if tx.send(data.slice(1..)).await.is_err() {
                        *slot = None;
                    }
                }
            }
        }
    };
    tokio::select! {
        _ = writer => {}
        _ = reader => {}
        _ = activity.idle_for(idle) => {
            tracing::debug!("port-forward WebSocket idle for {idle:?}: closing it");
        }
    }
    forwards.abort_all();
}

/// Port `index`'s one connection.
async fn forward(
    target: Arc<Target>,
    index: usize,
    port: u16,
    mut inbound: mpsc::Receiver<Bytes>,
    out: mpsc::Sender<Message>,
) {
    let tcp = match target.connect(port).await {
        Ok(t) => t,
        Err(e) => {
            let _ = out.send(message(2 * index + 1, e.as_bytes())).await;
            return;
        }
    };
    let (mut pod_rd, mut pod_wr) = tcp.into_split();
    let to_client = async {
        let mut chunk = vec![0u8; CHUNK];
        loop {
            match pod_rd.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if out.send(message(2 * index, &chunk[..n])).await.is_err() {
                        return;
                    }
                }
            }
        }
    };
    let to_pod = async {
        while let Some(b) = inbound.recv().await {
            if pod_wr.write_all(&b).await.is_err() {
                return;
            }
        }
    };
    // As upstream's runtimes do: the forward ends when either direction does.
    tokio::select! {
        _ = to_client => {}
        _ = to_pod => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    #[tokio::test]
    async fn an_idle_socket_is_closed_after_the_idle_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // The pod accepts and then says nothing.
        tokio::spawn(async move {
            let (_s, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(3600)).await;
        });
        let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(
            json!({"metadata": {"name": "web", "uid": "u"}, "status": {"podIP": "127.0.0.1"}}),
        )
        .unwrap();
        let (a, b) = tokio::io::duplex(1 << 16);
        let served = tokio::spawn(run(
            WebSocketStream::from_raw_socket(b, Role::Server, None).await,
            vec![port],
            Arc::new(Target::for_pod(&pod, true)),
            Duration::from_millis(300),
        ));
        let mut client = WebSocketStream::from_raw_socket(a, Role::Client, None).await;
        let mut channels = 0;
        let ended = loop {
            match tokio::time::timeout(Duration::from_secs(10), client.next()).await {
                Ok(Some(Ok(Message::Binary(_)))) => channels += 1,
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(_)) | None) => break true,
                Err(_) => break false,
            }
        };
        assert!(ended, "the idle socket was not closed");
        assert_eq!(channels, 2, "the two channel headers came first");
        tokio::time::timeout(Duration::from_secs(10), served)
            .await
            .expect("the session ends")
            .unwrap();
    }

    #[tokio::test]
    async fn each_port_gets_its_channels_its_data_and_its_errors() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut b = [0u8; 4];
            s.read_exact(&mut b).await.unwrap();
            s.write_all(&b.map(|c| c.to_ascii_uppercase()))
                .await
                .unwrap();
        });
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(
            json!({"metadata": {"name": "web", "uid": "u"}, "status": {"podIP": "127.0.0.1"}}),
        )
        .unwrap();
        let (a, b) = tokio::io::duplex(1 << 16);
        tokio::spawn(run(
            WebSocketStream::from_raw_socket(b, Role::Server, None).await,
            vec![open, closed],
            Arc::new(Target::for_pod(&pod, true)),
            Duration::from_secs(3600),
        ));
        let mut client = WebSocketStream::from_raw_socket(a, Role::Client, None).await;
        let mut first = Vec::new();
        while first.len() < 4 {
            let Message::Binary(m) = client.next().await.unwrap().unwrap() else {
                continue;
            };
            first.push(m.to_vec());
        }
        let le = |c: u8, p: u16| {
            let mut v = vec![c];
            v.extend_from_slice(&p.to_le_bytes());
            v
        };
        assert_eq!(
            first,
            [le(0, open), le(1, open), le(2, closed), le(3, closed)]
        );
        client
            .send(Message::Binary(Bytes::from_static(b"\0ping")))
            .await
            .unwrap();
        let mut data = Vec::new();
        let mut error = String::new();
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(10), client.next())
                .await
                .expect("the kubelet answers");
            match msg {
                Some(Ok(Message::Binary(m))) => match m[0] {
                    0 => data.extend_from_slice(&m[1..]),
                    3 => error.push_str(std::str::from_utf8(&m[1..]).unwrap()),
                    other => panic!("unexpected channel {other}"),
                },
                Some(Ok(Message::Close(_))) | None => break,
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("{e}"),
            }
        }
        assert_eq!(data, b"PING");
        assert!(
            error.starts_with(&format!("error forwarding port {closed} to pod ")),
            "{error}"
        );
        assert!(error.contains("connect: connection refused"), "{error}");
    }
}
