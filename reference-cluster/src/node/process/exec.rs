//! `kubectl exec` into process containers: the kubelet server's `/exec/…` WebSocket
//! (`v5.channel.k8s.io`, `v4.channel.k8s.io`) runs a real process in the container's
//! namespaces, environment and working directory; with `tty` it gets a pseudo-terminal whose
//! size follows the client's resize channel.

use crate::node::kubelet_server::text;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::Stdio;
use std::sync::Arc;

use bytes::Bytes;
use futures::{SinkExt as _, StreamExt as _};
use http::{Request, Response};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::launch::{self, Launch, Namespaces, Resolver};
use crate::node::exec::session::{
    channel_protocol, final_status, normal_close, upgrade_to_session, ExecQuery,
};
use crate::node::exec::Outcome;
use crate::node::logs::LogKey;

const STDIN: u8 = 0;
pub(super) const STDOUT: u8 = 1;
pub(super) const STDERR: u8 = 2;
pub(super) const ERROR: u8 = 3;
const RESIZE: u8 = 4;
const CLOSE: u8 = 255;

/// A running container exec can enter.
#[derive(Clone, Debug)]
pub struct Target {
    pub pod_uid: String,
    pub pid: i32,
    pub env: Vec<(String, String)>,
    pub cwd: Option<String>,
    pub resolver: Resolver,
    pub namespaces: bool,
    pub pod_ip: Option<String>,
    /// The container's cgroup, which exec sessions join.
    pub cgroup: Option<Arc<super::cgroup::ContainerCgroup>>,
}

/// Running containers by namespace, pod and container name.
#[derive(Clone, Default)]
pub struct Targets(Arc<Mutex<HashMap<LogKey, Target>>>);

impl Targets {
    pub fn insert(&self, key: &LogKey, t: Target) {
        self.0.lock().insert(key.clone(), t);
    }

    /// Forgets `key` if it is still the process `pid`.
    pub fn remove(&self, key: &LogKey, pid: i32) {
        let mut m = self.0.lock();
        if m.get(key).is_some_and(|t| t.pid == pid) {
            m.remove(key);
        }
    }

    pub fn remove_pod(&self, uid: &str) {
        self.0.lock().retain(|_, t| t.pod_uid != uid);
    }

    pub fn get(&self, key: &LogKey) -> Option<Target> {
        self.0.lock().get(key).cloned()
    }
}

/// What the kubelet server holds to serve exec for the process runtime.
#[derive(Clone)]
pub struct ExecHandle {
    pub targets: Targets,
    /// The containers' own stdio, for `attach`.
    pub attach: super::stdio::Attachables,
}

type Body = crate::node::kubelet_server::Body;

/// Answers an `exec` request against the process runtime.
pub async fn serve(
    mut req: Request<hyper::body::Incoming>,
    query: ExecQuery,
    handle: ExecHandle,
) -> Response<Body> {
    let names = (&query.namespace, &query.pod, &query.container);
    let (protocol, target) = match open("exec", &req, names, |key| handle.targets.get(key)) {
        Ok(found) => found,
        Err(refusal) => return *refusal,
    };
    upgrade_to_session(&mut req, protocol, move |ws, v5| async move {
        run_session(ws, v5, target, query).await
    })
}

/// The channel protocol of a `what` (`exec`, `attach`) request for the container that `names`
/// (namespace, pod, container) and what `find` knows of it; otherwise the refusal to answer,
/// as a kubelet's when the container is not running.
pub(super) fn open<T>(
    what: &str,
    req: &Request<hyper::body::Incoming>,
    (namespace, pod, container): (&String, &String, &String),
    find: impl FnOnce(&LogKey) -> Option<T>,
) -> Result<(&'static str, T), Box<Response<Body>>> {
    let protocol = channel_protocol(req.headers(), what)?;
    let key = LogKey {
        namespace: namespace.clone(),
        pod: pod.clone(),
        container: container.clone(),
    };
    match find(&key) {
        Some(found) => Ok((protocol, found)),
        None => Err(Box::new(text(
            500,
            &format!("container not found ({container:?})"),
        ))),
    }
}

pub(super) fn frame(channel: u8, data: &[u8]) -> Message {
    let mut v = Vec::with_capacity(data.len() + 1);
    v.push(channel);
    v.extend_from_slice(data);
    Message::Binary(v.into())
}

/// What the client sends: stdin data, its end, terminal sizes.
pub(super) enum FromClient {
    Stdin(Bytes),
    StdinEnd,
    Resize(u16, u16),
}

/// The meaning of one binary message from the client, `None` for what the session ignores.
pub(super) fn from_client(data: &Bytes, v5: bool) -> Option<FromClient> {
    match data.first() {
        Some(&STDIN) => Some(FromClient::Stdin(data.slice(1..))),
        Some(&RESIZE) => {
            let size: serde_json::Value = serde_json::from_slice(&data[1..]).unwrap_or_default();
            let dim = |k: &str| size.get(k).and_then(|v| v.as_u64()).unwrap_or(0) as u16;
            Some(FromClient::Resize(dim("Width"), dim("Height")))
        }
        Some(&CLOSE) if v5 && data.get(1) == Some(&STDIN) => Some(FromClient::StdinEnd),
        _ => None,
    }
}

/// Sets the terminal size of the pty whose master is `fd`; the kernel signals the resize.
pub(super) fn set_window_size(fd: std::os::fd::RawFd, width: u16, height: u16) {
    let ws = nix::libc::winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ on a pty master the caller owns, with a valid winsize.
    unsafe { nix::libc::ioctl(fd, nix::libc::TIOCSWINSZ, &ws) };
}

/// The started command's streams.
struct Started {
    child: tokio::process::Child,
    /// stdin and output through a pty master (tty) or pipes.
    pty: Option<OwnedFd>,
}

fn start(target: &Target, q: &ExecQuery) -> Result<Started, Outcome> {
    let name = q.command[0].clone();
    let path = target
        .env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let program = target
        .resolver
        .resolve(&name, &path)
        .map_err(|_| Outcome::NotFound(name.clone()))?;
    let mut env = target.env.clone();
    if q.tty && !env.iter().any(|(k, _)| k == "TERM") {
        env.push(("TERM".into(), "xterm".into()));
    }
    let namespaces = if target.namespaces {
        Namespaces::Join(target.pid)
    } else {
        Namespaces::Host
    };
    let (stdin, stdout, stderr, pty) = if q.tty {
        let p = nix::pty::openpty(None, None).map_err(|_| Outcome::NotFound(name.clone()))?;
        let dup = |fd: &OwnedFd| -> Result<Stdio, Outcome> {
            fd.try_clone()
                .map(Stdio::from)
                .map_err(|_| Outcome::NotFound(name.clone()))
        };
        (
            dup(&p.slave)?,
            dup(&p.slave)?,
            Stdio::from(p.slave),
            Some(p.master),
        )
    } else {
        (
            if q.stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            },
            Stdio::piped(),
            Stdio::piped(),
            None,
        )
    };
    let child = launch::spawn(Launch {
        program,
        argv0: name.clone(),
        args: q.command[1..].to_vec(),
        env,
        cwd: target.cwd.clone(),
        namespaces,
        stdin,
        stdout,
        stderr,
        controlling_tty: q.tty,
        cgroup: target.cgroup.clone(),
    })
    .map_err(|_| Outcome::NotFound(name))?;
    Ok(Started { child, pty })
}

fn exec_id() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Runs the command over `ws` until it exits, then sends its final `Status`.
pub async fn run_session<S>(ws: WebSocketStream<S>, v5: bool, target: Target, q: ExecQuery)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut source) = ws.split();
    let started = match start(&target, &q) {
        Ok(s) => s,
        Err(outcome) => {
            let status = final_status(&q.command, &outcome, &exec_id());
            let _ = sink.send(frame(ERROR, status.to_string().as_bytes())).await;
            let _ = sink.send(normal_close()).await;
            let _ = sink.close().await;
            return;
        }
    };
    let Started { mut child, pty } = started;
    let (in_tx, mut in_rx) = mpsc::channel::<FromClient>(16);
    let reader = tokio::spawn(async move {
        while let Some(msg) = source.next().await {
            let data = match msg {
                Ok(Message::Binary(b)) => b,
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(_) => continue,
            };
            let Some(m) = from_client(&data, v5) else {
                continue;
            };
            if in_tx.send(m).await.is_err() {
                break;
            }
        }
    });
    let (out_tx, mut out_rx) = mpsc::channel::<(u8, Bytes)>(16);
    let mut stdin_pipe = child.stdin.take();
    // A pty master is read and written by blocking threads: it is one fd for both ways.
    let pty_writer: Option<std::fs::File> = match &pty {
        Some(m) => m.try_clone().ok().map(std::fs::File::from),
        None => None,
    };
    let pty_raw = pty.as_ref().map(|m| m.as_raw_fd());
    if let Some(m) = pty.as_ref().and_then(|m| m.try_clone().ok()) {
        let tx = out_tx.clone();
        std::thread::spawn(move || {
            let mut f = std::fs::File::from(m);
            let mut buf = [0u8; 8192];
            // EIO once every slave copy is closed: the command and its children are gone.
            while let Ok(n) = f.read(&mut buf) {
                if n == 0
                    || tx
                        .blocking_send((STDOUT, Bytes::copy_from_slice(&buf[..n])))
                        .is_err()
                {
                    break;
                }
            }
        });
    }
    let mut pumps = Vec::new();
    if let Some(mut o) = child.stdout.take() {
        let tx = out_tx.clone();
        pumps.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 8192];
            while let Ok(n) = o.read(&mut buf).await {
                if n == 0
                    || tx
                        .send((STDOUT, Bytes::copy_from_slice(&buf[..n])))
                        .await
                        .is_err()
                {
                    break;
                }
            }
        }));
    }
    if let Some(mut e) = child.stderr.take() {
        let tx = out_tx.clone();
        pumps.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 8192];
            while let Ok(n) = e.read(&mut buf).await {
                if n == 0
                    || tx
                        .send((STDERR, Bytes::copy_from_slice(&buf[..n])))
                        .await
                        .is_err()
                {
                    break;
                }
            }
        }));
    }
    drop(out_tx);
    let (pty_in_tx, pty_in_rx) = std::sync::mpsc::channel::<Bytes>();
    if let Some(mut w) = pty_writer {
        std::thread::spawn(move || {
            while let Ok(b) = pty_in_rx.recv() {
                if w.write_all(&b).is_err() {
                    break;
                }
            }
        });
    }
    let mut status = None;
    let mut outputs_open = true;
    let mut client_open = true;
    let pgid = child.id().map(|p| p as i32);
    loop {
        if status.is_some() && !outputs_open {
            break;
        }
        tokio::select! {
            s = child.wait(), if status.is_none() => {
                status = Some(s.map(launch::exit_code).unwrap_or(255));
                if pty.is_some() {
                    // Background jobs may keep the pty open; the session ends with the command.
                    outputs_open = false;
                    while let Ok(chunk) = out_rx.try_recv() {
                        if sink.send(frame(chunk.0, &chunk.1)).await.is_err() {
                            break;
                        }
                    }
                }
            }
            chunk = out_rx.recv(), if outputs_open => match chunk {
                Some((channel, data)) => {
                    let wanted = if channel == STDOUT { q.stdout || q.tty } else { q.stderr };
                    if wanted && sink.send(frame(channel, &data)).await.is_err() {
                        client_open = false;
                        break;
                    }
                }
                None => outputs_open = false,
            },
            m = in_rx.recv(), if client_open => match m {
                Some(FromClient::Stdin(b)) => {
                    if pty.is_some() {
                        let _ = pty_in_tx.send(b);
                    } else if let Some(w) = stdin_pipe.as_mut() {
                        if w.write_all(&b).await.is_err() {
                            stdin_pipe = None;
                        }
                    }
                }
                Some(FromClient::StdinEnd) => {
                    stdin_pipe = None;
                    if pty.is_some() {
                        // EOT: the terminal's end of input.
                        let _ = pty_in_tx.send(Bytes::from_static(b"\x04"));
                    }
                }
                Some(FromClient::Resize(w, h)) => {
                    if let Some(fd) = pty_raw {
                        set_window_size(fd, w, h);
                    }
                }
                None => {
                    // The client is gone: nobody reads the output any more.
                    client_open = false;
                    if status.is_none() {
                        if let Some(p) = pgid {
                            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(p), nix::sys::signal::Signal::SIGKILL);
                        }
                    }
                    break;
                }
            },
        }
    }
    for p in pumps {
        p.abort();
    }
    reader.abort();
    if !client_open {
        return;
    }
    let code = status.unwrap_or(255);
    let final_ = final_status(&q.command, &Outcome::Exited(code), &exec_id());
    let _ = sink.send(frame(ERROR, final_.to_string().as_bytes())).await;
    let _ = sink.send(normal_close()).await;
    let _ = sink.close().await;
}
