//! `pods/exec`: checks the request as the API server does, then tunnels the client's WebSocket
//! (`v5.channel.k8s.io` / `v4.channel.k8s.io`) byte for byte to the node's kubelet
//! `/exec/{namespace}/{pod}/{container}`. The kubelet's handshake answer goes back to the
//! client unchanged (it saw the client's key), so both ends talk to each other directly.
//!
//! When the kubelet refuses (the container is not running, the pod is gone), the client's
//! WebSocket is still accepted and the refusal arrives as an `InternalError` Status on the error
//! channel, `unable to upgrade connection: <kubelet's message>`, which is what kubectl 1.32
//! prints through upstream's stream translator. SPDY is not served.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures::SinkExt as _;
use http::Response;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::{parse_bool, ApiError, ApiResult, ApiServer, Body, RequestContext};
use crate::node::exec::session::{
    internal_error, is_websocket_upgrade, negotiate, normal_close, switching_protocols,
    CHANNEL_PROTOCOLS,
};
use crate::resources::ResourceInfo;

/// `PodExecOptions` from the query string.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecOptions {
    pub container: Option<String>,
    pub command: Vec<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

impl ExecOptions {
    /// Parses `raw_query` (where `command` repeats) and validates as upstream.
    pub fn parse(raw_query: &str) -> ApiResult<ExecOptions> {
        let mut opts = ExecOptions::default();
        for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let (k, v) = (
                super::request::percent_decode(k),
                super::request::percent_decode(v),
            );
            let flag = |v: &str| {
                parse_bool(v).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "invalid value {v:?} for query parameter {k}: want true or false"
                    ))
                })
            };
            match k.as_str() {
                "command" => opts.command.push(v),
                "container" if !v.is_empty() => opts.container = Some(v),
                "stdin" => opts.stdin = flag(&v)?,
                "stdout" => opts.stdout = flag(&v)?,
                "stderr" => opts.stderr = flag(&v)?,
                "tty" => opts.tty = flag(&v)?,
                _ => {}
            }
        }
        if opts.command.is_empty() {
            return Err(ApiError::bad_request(
                "you must specify at least one command for the container",
            ));
        }
        if !(opts.stdin || opts.stdout || opts.stderr) {
            return Err(ApiError::bad_request(
                "you must specify at least 1 of stdin, stdout, stderr",
            ));
        }
        Ok(opts)
    }

    /// The kubelet's query string: its own names for the streams, as upstream's
    /// `streamParams` sends them.
    pub fn kubelet_query(&self) -> String {
        let mut q: Vec<String> = self
            .command
            .iter()
            .map(|c| format!("command={}", encode(c)))
            .collect();
        for (name, on) in [
            ("input", self.stdin),
            ("output", self.stdout),
            ("error", self.stderr),
            ("tty", self.tty),
        ] {
            if on {
                q.push(format!("{name}=1"));
            }
        }
        q.join("&")
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub async fn pod_exec(
    server: &Arc<ApiServer>,
    ctx: &RequestContext,
    info: &ResourceInfo,
    ns: Option<&str>,
    name: &str,
) -> ApiResult<Response<Body>> {
    let opts = ExecOptions::parse(&ctx.raw_query)?;
    let target = PodStream {
        kind: StreamKind::Exec,
        container: opts.container.as_deref(),
        kubelet_query: opts.kubelet_query(),
    };
    tunnel(server, ctx, info, ns, name, target).await
}

/// Which of the kubelet's streaming endpoints a tunnel leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StreamKind {
    Exec,
    Attach,
}

impl StreamKind {
    fn path(self) -> &'static str {
        match self {
            StreamKind::Exec => "exec",
            StreamKind::Attach => "attach",
        }
    }

    /// Upstream's refusal for a pod whose containers have all finished.
    fn completed_pod(self) -> &'static str {
        match self {
            StreamKind::Exec => "cannot exec into a container in a completed pod",
            StreamKind::Attach => "cannot attach a container in a completed pod",
        }
    }
}

/// A container stream a client asked for: which endpoint, which container, and the query the
/// kubelet is to get.
pub(crate) struct PodStream<'a> {
    pub kind: StreamKind,
    pub container: Option<&'a str>,
    pub kubelet_query: String,
}

/// Checks the pod and the client's WebSocket upgrade as upstream's `pods/exec` and
/// `pods/attach` do, then tunnels the client's WebSocket to the pod's kubelet. A kubelet
/// refusal reaches the client as an `InternalError` Status on the error channel.
pub(crate) async fn tunnel(
    server: &Arc<ApiServer>,
    ctx: &RequestContext,
    info: &ResourceInfo,
    ns: Option<&str>,
    name: &str,
    target: PodStream<'_>,
) -> ApiResult<Response<Body>> {
    let pod = server.get_object(info, ns, name).await?;
    let container = super::logs::pick_container(&pod, target.container)?;
    let phase = pod
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("");
    if phase == "Succeeded" || phase == "Failed" {
        return Err(ApiError::bad_request(format!(
            "{}; current phase is {phase}",
            target.kind.completed_pod()
        )));
    }
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
    if !is_websocket_upgrade(&ctx.headers) {
        return Err(ApiError::bad_request(format!(
            "pods/{} is served over WebSocket only (subprotocols {}); SPDY upgrades are not supported by this cluster",
            target.kind.path(),
            CHANNEL_PROTOCOLS.join(", ")
        )));
    }
    let Some(protocol) = negotiate(&ctx.headers) else {
        return Err(ApiError::bad_request(format!(
            "none of the offered WebSocket subprotocols is served; offer one of {}",
            CHANNEL_PROTOCOLS.join(", ")
        )));
    };
    let Some(client_upgrade) = ctx.upgrade.lock().take() else {
        return Err(ApiError::bad_request(
            "this connection cannot be upgraded to a WebSocket; use HTTP/1.1",
        ));
    };
    let uri = format!(
        "/{}/{}/{name}/{container}?{}",
        target.kind.path(),
        ns.unwrap_or_default(),
        target.kubelet_query
    );
    let key = ctx
        .headers
        .get(http::header::SEC_WEBSOCKET_KEY)
        .cloned()
        .ok_or_else(|| ApiError::bad_request("the WebSocket upgrade lacks Sec-WebSocket-Key"))?;
    match connect_kubelet(addr, &uri, &key, protocol).await {
        Ok(kubelet) => {
            let mut builder = Response::builder().status(101);
            for (k, v) in kubelet.headers() {
                builder = builder.header(k, v);
            }
            tokio::spawn(async move {
                let (client, kubelet) = tokio::join!(client_upgrade, hyper::upgrade::on(kubelet));
                let (Ok(client), Ok(kubelet)) = (client, kubelet) else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(
                    &mut TokioIo::new(client),
                    &mut TokioIo::new(kubelet),
                )
                .await;
            });
            Ok(builder
                .body(http_body_util::Empty::<Bytes>::new().boxed_unsync())
                .map_err(|e| ApiError::internal(e.to_string()))?)
        }
        Err(refusal) => {
            let builder =
                switching_protocols(&ctx.headers, protocol).map_err(ApiError::bad_request)?;
            let status = internal_error(&format!("unable to upgrade connection: {refusal}"));
            tokio::spawn(async move {
                let Ok(client) = client_upgrade.await else {
                    return;
                };
                let mut ws =
                    WebSocketStream::from_raw_socket(TokioIo::new(client), Role::Server, None)
                        .await;
                let mut frame = vec![3u8];
                frame.extend_from_slice(status.to_string().as_bytes());
                let _ = ws.send(Message::Binary(frame.into())).await;
                let _ = ws.send(normal_close()).await;
                let _ = ws.close(None).await;
            });
            Ok(builder
                .body(http_body_util::Empty::<Bytes>::new().boxed_unsync())
                .map_err(|e| ApiError::internal(e.to_string()))?)
        }
    }
}

/// Opens the kubelet's WebSocket with the client's key; a refusal is the kubelet's message.
pub(crate) async fn connect_kubelet(
    addr: SocketAddr,
    uri: &str,
    key: &http::HeaderValue,
    protocol: &str,
) -> Result<Response<hyper::body::Incoming>, String> {
    let failed = |e: &dyn std::fmt::Display| format!("dial http://{addr}{uri}: {e}");
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| failed(&e))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| failed(&e))?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    let req = http::Request::get(uri)
        .header(http::header::HOST, addr.to_string())
        .header(http::header::CONNECTION, "Upgrade")
        .header(http::header::UPGRADE, "websocket")
        .header(http::header::SEC_WEBSOCKET_VERSION, "13")
        .header(http::header::SEC_WEBSOCKET_KEY, key)
        .header(http::header::SEC_WEBSOCKET_PROTOCOL, protocol)
        .body(http_body_util::Empty::<Bytes>::new())
        .map_err(|e| failed(&e))?;
    let resp = sender.send_request(req).await.map_err(|e| failed(&e))?;
    if resp.status() == http::StatusCode::SWITCHING_PROTOCOLS {
        return Ok(resp);
    }
    let body = resp
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Err(String::from_utf8_lossy(&body).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_repeated_commands_and_validate() {
        let o = ExecOptions::parse(
            "command=sh&command=-c&command=exit%203&container=app&stdout=true&stdin=1",
        )
        .unwrap();
        assert_eq!(o.command, ["sh", "-c", "exit 3"]);
        assert_eq!(o.container.as_deref(), Some("app"));
        assert!(o.stdin && o.stdout && !o.stderr && !o.tty);
        assert_eq!(
            o.kubelet_query(),
            "command=sh&command=-c&command=exit%203&input=1&output=1"
        );
        assert!(ExecOptions::parse("stdout=true").is_err());
        assert!(ExecOptions::parse("command=ls").is_err());
        assert!(ExecOptions::parse("command=ls&stdout=maybe").is_err());
    }
}
