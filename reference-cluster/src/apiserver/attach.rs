//! `pods/attach`: checks the request as `pods/exec` does, then tunnels the client's WebSocket
//! (`v5.channel.k8s.io` / `v4.channel.k8s.io`) to the node's kubelet
//! `/attach/{namespace}/{pod}/{container}`. A kubelet refusal (the container is not running)
//! reaches the client as an `InternalError` Status on the error channel, as for exec.

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

/// `PodAttachOptions` from the query string.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttachOptions {
    pub container: Option<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

impl AttachOptions {
    pub fn parse(raw_query: &str) -> ApiResult<AttachOptions> {
        let mut opts = AttachOptions::default();
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
                "container" if !v.is_empty() => opts.container = Some(v),
                "stdin" => opts.stdin = flag(&v)?,
                "stdout" => opts.stdout = flag(&v)?,
                "stderr" => opts.stderr = flag(&v)?,
                "tty" => opts.tty = flag(&v)?,
                _ => {}
            }
        }
        if !(opts.stdin || opts.stdout || opts.stderr) {
            return Err(ApiError::bad_request(
                "you must specify at least 1 of stdin, stdout, stderr",
            ));
        }
        Ok(opts)
    }

    /// The kubelet's query string, with its own names for the streams.
    pub fn kubelet_query(&self) -> String {
        [
            ("input", self.stdin),
            ("output", self.stdout),
            ("error", self.stderr),
            ("tty", self.tty),
        ]
        .iter()
        .filter(|(_, on)| *on)
        .map(|(name, _)| format!("{name}=1"))
        .collect::<Vec<_>>()
        .join("&")
    }
}

pub async fn pod_attach(
    server: &Arc<ApiServer>,
    ctx: &RequestContext,
    info: &ResourceInfo,
    ns: Option<&str>,
    name: &str,
) -> ApiResult<Response<Body>> {
    let opts = AttachOptions::parse(&ctx.raw_query)?;
    let pod = server.get_object(info, ns, name).await?;
    let container = super::logs::pick_container(&pod, opts.container.as_deref())?;
    let phase = pod
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("");
    if phase == "Succeeded" || phase == "Failed" {
        return Err(ApiError::bad_request(format!(
            "cannot attach a container in a completed pod; current phase is {phase}"
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
    let node_info = server
        .catalog
        .get("", "v1", "nodes")
        .ok_or_else(|| ApiError::internal("the nodes resource is not registered"))?;
    let node = server.get_object(&node_info, None, node_name).await?;
    let addr = super::logs::kubelet_address(&node)?;
    if !is_websocket_upgrade(&ctx.headers) {
        return Err(ApiError::bad_request(format!(
            "pods/attach is served over WebSocket only (subprotocols {}); SPDY upgrades are not supported by this cluster",
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
        "/attach/{}/{name}/{container}?{}",
        ns.unwrap_or_default(),
        opts.kubelet_query()
    );
    let key = ctx
        .headers
        .get(http::header::SEC_WEBSOCKET_KEY)
        .cloned()
        .ok_or_else(|| ApiError::bad_request("the WebSocket upgrade lacks Sec-WebSocket-Key"))?;
    match super::exec::connect_kubelet(addr, &uri, &key, protocol).await {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_and_name_the_kubelets_streams() {
        let o = AttachOptions::parse("container=app&stdin=true&stdout=true&tty=true").unwrap();
        assert_eq!(o.container.as_deref(), Some("app"));
        assert_eq!(o.kubelet_query(), "input=1&output=1&tty=1");
        assert!(AttachOptions::parse("container=app").is_err());
        assert!(AttachOptions::parse("stdout=maybe").is_err());
    }
}
