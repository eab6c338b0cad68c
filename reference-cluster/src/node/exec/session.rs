//! The kubelet side of `exec`: request parsing, the WebSocket upgrade and the channel protocol
//! (`v5.channel.k8s.io`, `v4.channel.k8s.io`): every binary message starts with its channel,
//! 0 stdin, 1 stdout, 2 stderr, 3 the final `Status`, 4 terminal resizes; in v5 the client
//! sends `[255, 0]` when its stdin ends.

use crate::node::kubelet_server::text;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt as _, StreamExt as _};
use http::{HeaderMap, Request, Response};
use http_body_util::BodyExt as _;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::{EnvVar, Pod};
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::shell::{self, Io, Outcome, Shell, Stream};

/// The subprotocols served, preferred first.
pub const CHANNEL_PROTOCOLS: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const CLOSE: u8 = 255;

/// How the kubelet finds the pod an exec names (the real one asks its pod manager).
#[async_trait::async_trait]
pub trait PodSource: Send + Sync {
    async fn pod(&self, namespace: &str, name: &str) -> Result<Option<Pod>, String>;
}

#[async_trait::async_trait]
impl PodSource for kube::Client {
    async fn pod(&self, namespace: &str, name: &str) -> Result<Option<Pod>, String> {
        kube::Api::<Pod>::namespaced(self.clone(), namespace)
            .get_opt(name)
            .await
            .map_err(|e| format!("reading pod {namespace}/{name}: {e}"))
    }
}

/// A parsed `/exec/{namespace}/{pod}[/{uid}]/{container}` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecQuery {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub command: Vec<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// The request for `path`, `None` when the path is not an `exec` one.
pub fn parse(path: &str, query: &str) -> Result<Option<ExecQuery>, String> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (namespace, pod, container) = match parts.as_slice() {
        ["exec", ns, pod, container] | ["exec", ns, pod, _, container] => (*ns, *pod, *container),
        _ => return Ok(None),
    };
    if namespace.is_empty() || pod.is_empty() || container.is_empty() {
        return Ok(None);
    }
    let mut command = Vec::new();
    let mut params: HashMap<String, String> = HashMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (
            crate::apiserver::request::percent_decode(k),
            crate::apiserver::request::percent_decode(v),
        );
        if k == "command" {
            command.push(v);
        } else {
            params.insert(k, v);
        }
    }
    let flag = |name: &str| -> Result<bool, String> {
        match params.get(name).map(String::as_str) {
            None | Some("false") | Some("0") => Ok(false),
            Some("true") | Some("1") | Some("") => Ok(true),
            Some(other) => Err(format!("{name}: want true or false, got {other:?}")),
        }
    };
    let q = ExecQuery {
        namespace: namespace.to_string(),
        pod: pod.to_string(),
        container: container.to_string(),
        command,
        stdin: flag("input")? || flag("stdin")?,
        stdout: flag("output")? || flag("stdout")?,
        stderr: flag("error")? || flag("stderr")?,
        tty: flag("tty")?,
    };
    if q.command.is_empty() {
        return Err("you must specify at least one command for the container".into());
    }
    if !(q.stdin || q.stdout || q.stderr) {
        return Err("you must specify at least 1 of stdin, stdout, stderr".into());
    }
    Ok(Some(q))
}

/// Whether `headers` ask for a WebSocket upgrade.
pub fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    let has = |name: http::header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .unwrap_or("")
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case(token))
        })
    };
    has(http::header::CONNECTION, "upgrade") && has(http::header::UPGRADE, "websocket")
}

/// The served subprotocol the client offers, ours preferred.
pub fn negotiate(headers: &HeaderMap) -> Option<&'static str> {
    let offered: Vec<String> = headers
        .get_all(http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("").split(','))
        .map(|p| p.trim().to_string())
        .collect();
    CHANNEL_PROTOCOLS
        .into_iter()
        .find(|p| offered.iter().any(|o| o == p))
}

/// The `101 Switching Protocols` answer to a WebSocket request with `headers`.
pub fn switching_protocols(
    headers: &HeaderMap,
    protocol: &str,
) -> Result<http::response::Builder, String> {
    let key = headers
        .get(http::header::SEC_WEBSOCKET_KEY)
        .ok_or("the WebSocket upgrade lacks Sec-WebSocket-Key")?;
    Ok(Response::builder()
        .status(101)
        .header(http::header::CONNECTION, "Upgrade")
        .header(http::header::UPGRADE, "websocket")
        .header(
            http::header::SEC_WEBSOCKET_ACCEPT,
            tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes()),
        )
        .header(http::header::SEC_WEBSOCKET_PROTOCOL, protocol))
}

/// The shell of `container` in `pod`, or the kubelet's answer (status, text) when it does not
/// run: the runtime only lists running containers, hence "not found".
pub fn shell_for(pod: &Pod, container: &str, max_sleep: Duration) -> Result<Shell, (u16, String)> {
    let status = pod.status.as_ref();
    let running = status
        .into_iter()
        .flat_map(|s| {
            [
                s.container_statuses.as_deref(),
                s.init_container_statuses.as_deref(),
                s.ephemeral_container_statuses.as_deref(),
            ]
        })
        .flatten()
        .flatten()
        .any(|s| s.name == container && s.state.as_ref().is_some_and(|st| st.running.is_some()));
    if !running {
        return Err((500, format!("container not found ({container:?})")));
    }
    let spec = pod.spec.as_ref();
    let env: Option<&Vec<EnvVar>> = spec.and_then(|s| {
        s.containers
            .iter()
            .chain(s.init_containers.iter().flatten())
            .find(|c| c.name == container)
            .and_then(|c| c.env.as_ref())
            .or_else(|| {
                s.ephemeral_containers
                    .iter()
                    .flatten()
                    .find(|c| c.name == container)
                    .and_then(|c| c.env.as_ref())
            })
    });
    let literal = env
        .into_iter()
        .flatten()
        .filter_map(|e| Some((e.name.clone(), e.value.clone()?)))
        .collect();
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    Ok(Shell::new(name, literal, max_sleep))
}

/// The `Status` the error channel carries when the command ends with `outcome`.
pub fn final_status(command: &[String], outcome: &Outcome, exec_id: &str) -> Value {
    match outcome {
        Outcome::Exited(0) | Outcome::Abandoned => json!({"metadata": {}, "status": "Success"}),
        Outcome::Exited(code) => json!({
            "metadata": {},
            "status": "Failure",
            "message": format!(
                "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
                command.join(" ")
            ),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
        }),
        Outcome::NotFound(cmd) => {
            let cause = format!(
                "error executing command in container: failed to exec in container: failed to start exec {exec_id:?}: OCI runtime exec failed: exec failed: unable to start container process: exec: {cmd:?}: executable file not found in $PATH: unknown"
            );
            internal_error(&cause)
        }
    }
}

/// `apierrors.NewInternalError(cause)`.
pub fn internal_error(cause: &str) -> Value {
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!("Internal error occurred: {cause}"),
        "reason": "InternalError",
        "details": {"causes": [{"message": cause}]},
        "code": 500,
    })
}

/// A containerd-like exec id, derived from the request so output stays deterministic.
fn exec_id(q: &ExecQuery) -> String {
    use std::hash::{Hash, Hasher};
    (0..4u64)
        .map(|i| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (i, &q.namespace, &q.pod, &q.container, &q.command).hash(&mut h);
            format!("{:016x}", h.finish())
        })
        .collect()
}

type Body = crate::node::kubelet_server::Body;

/// The channel protocol a streaming request (`what`, e.g. "exec on a sim node") asks for, or
/// the kubelet's refusal when it is no WebSocket upgrade or offers no protocol we serve.
pub(crate) fn channel_protocol(
    headers: &HeaderMap,
    what: &str,
) -> Result<&'static str, Box<Response<Body>>> {
    if !is_websocket_upgrade(headers) {
        return Err(Box::new(text(
            400,
            &format!(
                "{what} needs a WebSocket upgrade (v5.channel.k8s.io or v4.channel.k8s.io); SPDY is not served"
            ),
        )));
    }
    negotiate(headers).ok_or_else(|| {
        Box::new(text(
            400,
            &format!(
                "none of the offered WebSocket subprotocols is served; offer one of {}",
                CHANNEL_PROTOCOLS.join(", ")
            ),
        ))
    })
}

/// A server-side channel WebSocket over an upgraded kubelet connection.
pub(crate) type ChannelSocket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// Answers 101 Switching Protocols and runs `session` on the upgraded connection, with
/// whether the client speaks v5 (which adds the close channel).
pub(crate) fn upgrade_to_session<F, Fut>(
    req: &mut Request<hyper::body::Incoming>,
    protocol: &'static str,
    session: F,
) -> Response<Body>
where
    F: FnOnce(ChannelSocket, bool) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let builder = match switching_protocols(req.headers(), protocol) {
        Ok(b) => b,
        Err(e) => return text(400, &e),
    };
    let upgrade = hyper::upgrade::on(req);
    let v5 = protocol == CHANNEL_PROTOCOLS[0];
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else {
            return;
        };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        session(ws, v5).await;
    });
    builder
        .body(
            http_body_util::Empty::new()
                .map_err(|e| match e {})
                .boxed_unsync(),
        )
        .expect("static headers are valid")
}

/// Answers an `exec` request: checks it, upgrades to a WebSocket and runs the command.
pub async fn serve(
    mut req: Request<hyper::body::Incoming>,
    query: ExecQuery,
    pods: Option<Arc<dyn PodSource>>,
    max_sleep: Duration,
) -> Response<Body> {
    let protocol = match channel_protocol(req.headers(), "exec on a sim node") {
        Ok(p) => p,
        Err(refusal) => return *refusal,
    };
    let Some(pods) = pods else {
        return text(
            500,
            "exec is not enabled on this kubelet server; the fleet calls KubeletServer::enable_exec",
        );
    };
    let pod = match pods.pod(&query.namespace, &query.pod).await {
        Ok(Some(p)) => p,
        Ok(None) => return text(404, "pod does not exist"),
        Err(e) => return text(500, &e),
    };
    let shell = match shell_for(&pod, &query.container, max_sleep) {
        Ok(s) => s,
        Err((code, message)) => return text(code, &message),
    };
    upgrade_to_session(&mut req, protocol, move |ws, v5| async move {
        run_session(ws, v5, shell, query).await
    })
}

/// Runs `query`'s command in `shell` over `ws`, then sends the final `Status` and closes.
pub async fn run_session<S>(ws: WebSocketStream<S>, v5: bool, shell: Shell, query: ExecQuery)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut source) = ws.split();
    let (out_tx, mut out_rx) = mpsc::channel::<(Stream, Bytes)>(16);
    let (stdin_tx, stdin_rx) = if query.stdin {
        let (tx, rx) = mpsc::channel::<Bytes>(16);
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    let (gone_tx, mut gone_rx) = tokio::sync::watch::channel(false);
    // Reads the client: stdin, its end, resizes (ignored: nothing draws on a sim terminal).
    let reader = tokio::spawn(async move {
        let mut stdin_tx = stdin_tx;
        while let Some(msg) = source.next().await {
            let data = match msg {
                Ok(Message::Binary(b)) => b,
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(_) => continue,
            };
            match data.first() {
                Some(&STDIN) => {
                    if let Some(tx) = &stdin_tx {
                        if tx.send(data.slice(1..)).await.is_err() {
                            stdin_tx = None;
                        }
                    }
                }
                Some(&CLOSE) if v5 && data.get(1) == Some(&STDIN) => stdin_tx = None,
                _ => {}
            }
        }
        drop(stdin_tx);
        let _ = gone_tx.send(true);
    });
    let argv = query.command.clone();
    let runner = tokio::spawn(async move {
        let mut io = Io::new(out_tx, stdin_rx);
        shell::run(&shell, &argv, &mut io).await
    });
    let mut client_gone = false;
    loop {
        tokio::select! {
            chunk = out_rx.recv() => {
                let Some((stream, data)) = chunk else { break };
                let (channel, wanted) = match stream {
                    _ if query.tty => (STDOUT, query.stdout),
                    Stream::Stdout => (STDOUT, query.stdout),
                    Stream::Stderr => (STDERR, query.stderr),
                };
                if !wanted {
                    continue;
                }
                let data = if query.tty { onlcr(&data) } else { data.to_vec() };
                if sink.send(frame(channel, &data)).await.is_err() {
                    client_gone = true;
                    break;
                }
            }
            r = gone_rx.changed(), if !client_gone => {
                // The client closed the socket: nobody reads the output any more.
                if r.is_err() || *gone_rx.borrow() {
                    client_gone = true;
                    break;
                }
            }
        }
    }
    if client_gone {
        runner.abort();
        reader.abort();
        return;
    }
    let outcome = runner.await.unwrap_or(Outcome::Abandoned);
    let status = final_status(&query.command, &outcome, &exec_id(&query));
    let _ = sink.send(frame(ERROR, status.to_string().as_bytes())).await;
    let _ = sink.send(normal_close()).await;
    let _ = sink.close().await;
    reader.abort();
}

/// A close with code 1000: kubectl reads a close without a code (1005) as an error.
pub fn normal_close() -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    }))
}

fn frame(channel: u8, data: &[u8]) -> Message {
    let mut v = Vec::with_capacity(data.len() + 1);
    v.push(channel);
    v.extend_from_slice(data);
    Message::Binary(v.into())
}

/// What a terminal's output processing does to newlines.
fn onlcr(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 8);
    for &b in data {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_paths_and_parameters_parse_as_the_kubelet_reads_them() {
        let q = parse(
            "/exec/default/web/app",
            "command=sh&command=-c&command=echo+a%3B+exit+3&input=1&output=1&tty=0",
        )
        .unwrap()
        .unwrap();
        assert_eq!(q.command, ["sh", "-c", "echo a; exit 3"]);
        assert!(q.stdin && q.stdout && !q.stderr && !q.tty);
        assert_eq!(
            (q.namespace.as_str(), q.pod.as_str(), q.container.as_str()),
            ("default", "web", "app")
        );
        let with_uid = parse("/exec/ns/p/uid-1/c", "command=true&stdout=true")
            .unwrap()
            .unwrap();
        assert_eq!(with_uid.container, "c");
        assert!(parse("/containerLogs/ns/p/c", "").unwrap().is_none());
        assert_eq!(
            parse("/exec/ns/p/c", "stdout=true").unwrap_err(),
            "you must specify at least one command for the container"
        );
        assert_eq!(
            parse("/exec/ns/p/c", "command=true").unwrap_err(),
            "you must specify at least 1 of stdin, stdout, stderr"
        );
    }

    #[test]
    fn protocols_are_negotiated_v5_first() {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::SEC_WEBSOCKET_PROTOCOL,
            "v4.channel.k8s.io, v5.channel.k8s.io".parse().unwrap(),
        );
        assert_eq!(negotiate(&h), Some("v5.channel.k8s.io"));
        h.insert(
            http::header::SEC_WEBSOCKET_PROTOCOL,
            "channel.k8s.io".parse().unwrap(),
        );
        assert_eq!(negotiate(&h), None);
    }

    #[test]
    fn statuses_say_what_upstream_says() {
        let cmd = vec!["sh".to_string(), "-c".into(), "exit 3".into()];
        let s = final_status(&cmd, &Outcome::Exited(3), "id");
        assert_eq!(s["reason"], "NonZeroExitCode");
        assert_eq!(
            s["details"]["causes"][0],
            json!({"reason": "ExitCode", "message": "3"})
        );
        assert_eq!(
            s["message"],
            "command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3"
        );
        assert_eq!(
            final_status(&cmd, &Outcome::Exited(0), "id")["status"],
            "Success"
        );
        let nf = final_status(&cmd, &Outcome::NotFound("nope".into()), "abc");
        assert_eq!(nf["code"], 500);
        assert_eq!(
            nf["message"],
            "Internal error occurred: error executing command in container: failed to exec in container: failed to start exec \"abc\": OCI runtime exec failed: exec failed: unable to start container process: exec: \"nope\": executable file not found in $PATH: unknown"
        );
    }

    #[test]
    fn only_running_containers_accept_exec() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "web"},
            "spec": {"containers": [
                {"name": "app", "env": [{"name": "A", "value": "1"}, {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]},
                {"name": "side"}
            ]},
            "status": {"containerStatuses": [
                {"name": "app", "ready": true, "restartCount": 0, "image": "i", "imageID": "", "state": {"running": {}}},
                {"name": "side", "ready": false, "restartCount": 1, "image": "i", "imageID": "", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
            ]}
        }))
        .unwrap();
        let shell = shell_for(&pod, "app", Duration::from_secs(1)).unwrap();
        assert_eq!(shell.pod, "web");
        assert!(shell.env.contains(&("A".into(), "1".into())));
        assert!(!shell.env.iter().any(|(n, _)| n == "B"));
        assert_eq!(
            shell_for(&pod, "side", Duration::from_secs(1)).unwrap_err(),
            (500, "container not found (\"side\")".to_string())
        );
    }
}
