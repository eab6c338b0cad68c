//! The kubelet side of `attach` for sim containers: `/attach/{namespace}/{pod}/{container}`
//! over the same WebSocket channel protocol as `exec`. A sim container has no process to attach
//! to, so its output is its log (see `SIM.md`): every line it writes from the moment of attaching
//! arrives on stdout, and a container with `stdin: true` echoes what it reads, as `cat` would.
//! The session ends with a `Success` status when the container exits, or when the client leaves.

use crate::node::kubelet_server::text;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use http::{Request, Response};
use k8s_openapi::api::core::v1::Pod;
use serde_json::json;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::session::{channel_protocol, normal_close, upgrade_to_session, PodSource};
use crate::node::logs::buffer::format_line;
use crate::node::logs::LogStore;

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const ERROR: u8 = 3;
const CLOSE: u8 = 255;

/// A parsed `/attach/{namespace}/{pod}[/{uid}]/{container}` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachQuery {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// The request for `path`, `None` when the path is not an `attach` one.
pub fn parse(path: &str, query: &str) -> Result<Option<AttachQuery>, String> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (namespace, pod, container) = match parts.as_slice() {
        ["attach", ns, pod, container] | ["attach", ns, pod, _, container] => {
            (*ns, *pod, *container)
        }
        _ => return Ok(None),
    };
    if namespace.is_empty() || pod.is_empty() || container.is_empty() {
        return Ok(None);
    }
    let mut q = AttachQuery {
        namespace: namespace.to_string(),
        pod: pod.to_string(),
        container: container.to_string(),
        stdin: false,
        stdout: false,
        stderr: false,
        tty: false,
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let on = match v {
            "" | "1" | "true" => true,
            "0" | "false" => false,
            other => return Err(format!("{k}: want true or false, got {other:?}")),
        };
        match k {
            "input" | "stdin" => q.stdin |= on,
            "output" | "stdout" => q.stdout |= on,
            "error" | "stderr" => q.stderr |= on,
            "tty" => q.tty |= on,
            _ => {}
        }
    }
    if !(q.stdin || q.stdout || q.stderr) {
        return Err("you must specify at least 1 of stdin, stdout, stderr".into());
    }
    Ok(Some(q))
}

type Body = crate::node::kubelet_server::Body;

/// The running attempt of `container` (its container ID) and whether it reads stdin, or the
/// kubelet's answer when it does not run.
fn running_container(pod: &Pod, container: &str) -> Result<(String, bool), (u16, String)> {
    let status = pod.status.as_ref();
    let id = status
        .into_iter()
        .flat_map(|s| {
            [
                s.container_statuses.as_deref(),
                s.init_container_statuses.as_deref(),
            ]
        })
        .flatten()
        .flatten()
        .find(|s| s.name == container && s.state.as_ref().is_some_and(|st| st.running.is_some()))
        .and_then(|s| s.container_id.clone());
    let Some(id) = id else {
        return Err((500, format!("container not found ({container:?})")));
    };
    let stdin = pod.spec.as_ref().is_some_and(|s| {
        s.containers
            .iter()
            .chain(s.init_containers.iter().flatten())
            .any(|c| c.name == container && c.stdin == Some(true))
    });
    Ok((id, stdin))
}

/// Answers an `attach` request: checks it, upgrades to a WebSocket and streams the container.
pub async fn serve(
    mut req: Request<hyper::body::Incoming>,
    query: AttachQuery,
    pods: Option<Arc<dyn PodSource>>,
    logs: LogStore,
    poll: Duration,
) -> Response<Body> {
    let protocol = match channel_protocol(req.headers(), "attach on a sim node") {
        Ok(p) => p,
        Err(refusal) => return *refusal,
    };
    let Some(pods) = pods else {
        return text(
            500,
            "attach is not enabled on this kubelet server; the fleet calls KubeletServer::enable_exec",
        );
    };
    let pod = match pods.pod(&query.namespace, &query.pod).await {
        Ok(Some(p)) => p,
        Ok(None) => return text(404, "pod does not exist"),
        Err(e) => return text(500, &e),
    };
    let (id, reads_stdin) = match running_container(&pod, &query.container) {
        Ok(c) => c,
        Err((code, message)) => return text(code, &message),
    };
    upgrade_to_session(&mut req, protocol, move |ws, v5| async move {
        run_session(ws, v5, query, id, reads_stdin, logs, poll).await
    })
}

fn frame(channel: u8, data: &[u8], tty: bool) -> Message {
    let mut v = Vec::with_capacity(data.len() + 8);
    v.push(channel);
    for &b in data {
        if tty && b == b'\n' {
            v.push(b'\r');
        }
        v.push(b);
    }
    Message::Binary(v.into())
}

async fn run_session<S>(
    ws: WebSocketStream<S>,
    v5: bool,
    q: AttachQuery,
    id: String,
    reads_stdin: bool,
    logs: LogStore,
    poll: Duration,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut source) = ws.split();
    // Attaching shows what the container writes from now on, not what it wrote before.
    let mut seq = logs.follow(&id, u64::MAX, Instant::now()).next_seq;
    let mut stdin_open = q.stdin && reads_stdin;
    loop {
        let view = logs.follow(&id, seq, Instant::now());
        seq = view.next_seq;
        if q.stdout {
            for line in &view.lines {
                let text = format_line(line, false);
                if sink
                    .send(frame(STDOUT, text.as_bytes(), q.tty))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
        if view.finished {
            break;
        }
        let wake = view.next_due.map_or(poll, |t| {
            t.saturating_duration_since(Instant::now()).min(poll)
        });
        tokio::select! {
            msg = source.next() => {
                let data = match msg {
                    Some(Ok(Message::Binary(b))) => b,
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                    Some(Ok(_)) => continue,
                };
                let echo = match data.first() {
                    // The sim's stdin-reading container echoes its input.
                    Some(&STDIN) => stdin_open && q.stdout,
                    Some(&CLOSE) if v5 && data.get(1) == Some(&STDIN) => {
                        stdin_open = false;
                        false
                    }
                    _ => false,
                };
                if echo && sink.send(frame(STDOUT, &data[1..], q.tty)).await.is_err() {
                    return;
                }
            }
            _ = tokio::time::sleep(wake) => {}
        }
    }
    let status = json!({"metadata": {}, "status": "Success"});
    let _ = sink
        .send(frame(ERROR, status.to_string().as_bytes(), false))
        .await;
    let _ = sink.send(normal_close()).await;
    let _ = sink.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attach_paths_and_streams_parse() {
        let q = parse("/attach/ns/p/app", "input=1&output=1&tty=1")
            .unwrap()
            .unwrap();
        assert_eq!(
            (q.namespace.as_str(), q.pod.as_str(), q.container.as_str()),
            ("ns", "p", "app")
        );
        assert!(q.stdin && q.stdout && !q.stderr && q.tty);
        let with_uid = parse("/attach/ns/p/uid-1/app", "output=1")
            .unwrap()
            .unwrap();
        assert_eq!(with_uid.container, "app");
        assert!(parse("/exec/ns/p/app", "output=1").unwrap().is_none());
        assert!(parse("/attach/ns/p/app", "").is_err());
        assert!(parse("/attach/ns/p/app", "output=maybe").is_err());
    }

    #[test]
    fn only_a_running_container_can_be_attached() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "app", "stdin": true}, {"name": "side"}]},
            "status": {"containerStatuses": [
                {"name": "app", "image": "x", "imageID": "", "ready": true, "restartCount": 0,
                 "containerID": "kubeproof-sim://abc", "state": {"running": {}}},
                {"name": "side", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                 "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
            ]}
        }))
        .unwrap();
        assert_eq!(
            running_container(&pod, "app").unwrap(),
            ("kubeproof-sim://abc".to_string(), true)
        );
        assert_eq!(
            running_container(&pod, "side").unwrap_err(),
            (500, "container not found (\"side\")".to_string())
        );
    }

    #[test]
    fn tty_output_gets_carriage_returns() {
        let Message::Binary(b) = frame(STDOUT, b"a\nb\n", true) else {
            panic!()
        };
        assert_eq!(&b[..], b"\x01a\r\nb\r\n");
    }
}
