//! `kubectl attach` to process containers: the kubelet server's `/attach/…` WebSocket
//! (`v5.channel.k8s.io`, `v4.channel.k8s.io`, the session code `exec` uses) connected to the
//! container's own stdio ([`super::stdio`]), as containerd's attach is:
//!
//! - output is what the container writes from the moment of attaching, never what it wrote
//!   before; with `tty: true` stdout and stderr are one stream and resizes reach its pty;
//! - the container's `tty` decides, not the request (upstream's kubelet reads it from the spec);
//! - stdin reaches the container only when it has `stdin: true`, and is otherwise ignored;
//! - when the client's stdin ends (v5) the session ends, except that with `stdinOnce` and no
//!   tty the container's stdin is closed and its output followed until it exits;
//! - with `stdinOnce`, the container's stdin is closed once the first session that attached
//!   stdin ends;
//! - the session ends with a `Success` status when the container's output ends (it exited).

use std::sync::Arc;

use bytes::Bytes;
use futures::{SinkExt as _, StreamExt as _};
use http::{Request, Response};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::exec::{frame, from_client, open, ExecHandle, FromClient, ERROR, STDOUT};
use super::stdio::ContainerStdio;
use crate::node::exec::attach::AttachQuery;
use crate::node::exec::session::{normal_close, upgrade_to_session};

type Body = crate::node::kubelet_server::Body;

/// Answers an `attach` request against the process runtime.
pub async fn serve(
    mut req: Request<hyper::body::Incoming>,
    query: AttachQuery,
    handle: ExecHandle,
) -> Response<Body> {
    let names = (&query.namespace, &query.pod, &query.container);
    // Only a running container has stdio to attach to; the runtime lists no other.
    let attached = open("attach", &req, names, |key| {
        let stdio = handle.attach.get(key)?;
        let output = stdio.subscribe()?;
        Some((stdio, output))
    });
    let (protocol, (stdio, output)) = match attached {
        Ok(found) => found,
        Err(refusal) => return *refusal,
    };
    upgrade_to_session(&mut req, protocol, move |ws, v5| async move {
        run_session(ws, v5, query, stdio, output).await
    })
}

/// How a session ended.
enum End {
    /// The container's output ended: it exited.
    Exited,
    /// The client's stdin ended: it detached.
    Detached,
    /// The client closed the connection: nobody reads a status.
    ClientGone,
}

async fn run_session<S>(
    ws: WebSocketStream<S>,
    v5: bool,
    q: AttachQuery,
    stdio: Arc<ContainerStdio>,
    mut output: broadcast::Receiver<(u8, Bytes)>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut source) = ws.split();
    let tty = stdio.tty;
    // A container without stdin ignores the client's; its end then detaches nothing either.
    let attaches_stdin = q.stdin && stdio.stdin && stdio.stdin_open();
    let mut stdin_open = attaches_stdin;
    let end = loop {
        tokio::select! {
            chunk = output.recv() => match chunk {
                Ok((channel, data)) => {
                    // A kubelet drops stderr when there is a tty: one stream.
                    let wanted = if channel == STDOUT { q.stdout } else { q.stderr && !tty };
                    if wanted && sink.send(frame(channel, &data)).await.is_err() {
                        break End::ClientGone;
                    }
                }
                // This client fell behind the container; what it missed is in the log.
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break End::Exited,
            },
            msg = source.next() => {
                let data = match msg {
                    Some(Ok(Message::Binary(b))) => b,
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break End::ClientGone,
                    Some(Ok(_)) => continue,
                };
                match from_client(&data, v5) {
                    Some(FromClient::Stdin(b)) if stdin_open => stdio.write(b),
                    Some(FromClient::StdinEnd) if stdin_open => {
                        stdin_open = false;
                        if stdio.stdin_once && !tty {
                            // The container reads its end of file; its output is still ours.
                            stdio.close_stdin();
                        } else {
                            break End::Detached;
                        }
                    }
                    Some(FromClient::Resize(w, h)) if tty => stdio.resize(w, h),
                    _ => {}
                }
            }
        }
    };
    if attaches_stdin && stdio.stdin_once {
        stdio.close_stdin();
    }
    if matches!(end, End::ClientGone) {
        return;
    }
    let status = json!({"metadata": {}, "status": "Success"});
    let _ = sink.send(frame(ERROR, status.to_string().as_bytes())).await;
    let _ = sink.send(normal_close()).await;
    let _ = sink.close().await;
}
