//! A container's own standard streams, kept by the runtime for the container's lifetime as a
//! CRI runtime keeps them: stdin is a pipe when the container has `stdin: true` (`/dev/null`
//! otherwise), and with `tty: true` all three streams are one pseudo-terminal. What the
//! container writes goes, chunk by chunk, to the log file and the log store (line by line) and
//! to every attached session ([`super::attach`]) from the moment it attaches.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::Stdio;
use std::sync::Arc;

use bytes::Bytes;
use k8s_openapi::api::core::v1::Container;
use k8s_openapi::jiff::Timestamp;
use parking_lot::Mutex;
use tokio::io::AsyncReadExt;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use super::exec::{set_window_size, STDERR, STDOUT};
use super::launch::Launch;
use super::logfile::LogFile;
use super::Ctx;
use crate::node::logs::LogKey;

/// Output chunks an attached session may fall behind by before it misses some: the container
/// never waits for a slow client, as its log must not.
const BACKLOG: usize = 1024;

/// The longest line kept in memory while waiting for its newline; longer ones are logged in
/// pieces (upstream splits long lines into partial entries too).
const MAX_LINE: usize = 64 * 1024;

/// What a container's stdio is to be, decided before it starts.
pub struct Plan {
    tty: bool,
    stdin: bool,
    stdin_once: bool,
    /// The runtime's end of the stdin pipe.
    stdin_writer: Option<OwnedFd>,
    /// The pty master (tty): output is read from it and input written to it.
    master: Option<OwnedFd>,
}

fn cloexec(fd: &OwnedFd) -> std::io::Result<()> {
    // The container must not inherit the runtime's ends: it would hold its own stdin open.
    // SAFETY: F_SETFD on a descriptor we own.
    let r = unsafe { nix::libc::fcntl(fd.as_raw_fd(), nix::libc::F_SETFD, nix::libc::FD_CLOEXEC) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The streams the container's process is started with.
pub struct ProcessStdio {
    stdin: Stdio,
    stdout: Stdio,
    stderr: Stdio,
    controlling_tty: bool,
}

impl ProcessStdio {
    pub fn apply(self, launch: &mut Launch) {
        launch.stdin = self.stdin;
        launch.stdout = self.stdout;
        launch.stderr = self.stderr;
        launch.controlling_tty = self.controlling_tty;
        // containerd sets TERM for a container with a terminal unless its env does.
        if self.controlling_tty && !launch.env.iter().any(|(k, _)| k == "TERM") {
            launch.env.push(("TERM".into(), "xterm".into()));
        }
    }
}

/// The container's stdio: a pty for `tty`, a stdin pipe for `stdin`, output pipes otherwise.
pub fn plan(c: &Container) -> std::io::Result<(Plan, ProcessStdio)> {
    let tty = c.tty == Some(true);
    let stdin = c.stdin == Some(true);
    let mut plan = Plan {
        tty,
        stdin,
        stdin_once: c.stdin_once == Some(true),
        stdin_writer: None,
        master: None,
    };
    let io = if tty {
        let p = nix::pty::openpty(None, None).map_err(std::io::Error::from)?;
        cloexec(&p.master)?;
        let io = ProcessStdio {
            stdin: Stdio::from(p.slave.try_clone()?),
            stdout: Stdio::from(p.slave.try_clone()?),
            stderr: Stdio::from(p.slave),
            controlling_tty: true,
        };
        plan.master = Some(p.master);
        io
    } else {
        let stdin = if stdin {
            let (read, write) =
                nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)?;
            plan.stdin_writer = Some(write);
            Stdio::from(read)
        } else {
            Stdio::null()
        };
        ProcessStdio {
            stdin,
            stdout: Stdio::piped(),
            stderr: Stdio::piped(),
            controlling_tty: false,
        }
    };
    Ok((plan, io))
}

/// The runtime's end of one running container's stdio, shared with attach sessions.
pub struct ContainerStdio {
    pub pod_uid: String,
    pub pid: i32,
    pub tty: bool,
    /// The container reads stdin (`stdin: true`).
    pub stdin: bool,
    pub stdin_once: bool,
    /// Feeds the stdin writer thread; `None` once stdin is closed.
    input: Mutex<Option<std::sync::mpsc::Sender<Bytes>>>,
    /// Weak, so the output ends for every session when the container's streams end.
    output: broadcast::WeakSender<(u8, Bytes)>,
    master: Option<OwnedFd>,
}

impl ContainerStdio {
    /// Output from now on, or `None` when the container's output has ended.
    pub fn subscribe(&self) -> Option<broadcast::Receiver<(u8, Bytes)>> {
        self.output.upgrade().map(|tx| tx.subscribe())
    }

    /// Writes to the container's stdin; nothing once it is closed.
    pub fn write(&self, data: Bytes) {
        if let Some(tx) = self.input.lock().as_ref() {
            let _ = tx.send(data);
        }
    }

    /// Closes the container's stdin for good (`stdinOnce`). A pipe reaches end of file once
    /// what was written is read; a terminal takes no more input.
    pub fn close_stdin(&self) {
        self.input.lock().take();
    }

    pub fn stdin_open(&self) -> bool {
        self.input.lock().is_some()
    }

    /// Applies a client's terminal size to the container's pty.
    pub fn resize(&self, width: u16, height: u16) {
        if let Some(m) = &self.master {
            if width > 0 && height > 0 {
                set_window_size(m.as_raw_fd(), width, height);
            }
        }
    }
}

/// Running containers' stdio by namespace, pod and container name.
#[derive(Clone, Default)]
pub struct Attachables(Arc<Mutex<HashMap<LogKey, Arc<ContainerStdio>>>>);

impl Attachables {
    pub fn insert(&self, key: &LogKey, s: Arc<ContainerStdio>) {
        self.0.lock().insert(key.clone(), s);
    }

    /// Forgets `key` if it is still the process `pid`, closing its stdin.
    pub fn remove(&self, key: &LogKey, pid: i32) {
        let mut m = self.0.lock();
        if m.get(key).is_some_and(|s| s.pid == pid) {
            if let Some(s) = m.remove(key) {
                s.close_stdin();
            }
        }
    }

    pub fn remove_pod(&self, uid: &str) {
        self.0.lock().retain(|_, s| {
            let keep = s.pod_uid != uid;
            if !keep {
                s.close_stdin();
            }
            keep
        });
    }

    pub fn get(&self, key: &LogKey) -> Option<Arc<ContainerStdio>> {
        self.0.lock().get(key).cloned()
    }
}

/// Copies one output stream to its log and to attached sessions.
struct Tee {
    stream: &'static str,
    channel: u8,
    ctx: Arc<Ctx>,
    id: String,
    file: Arc<Mutex<Option<LogFile>>>,
    partial: Vec<u8>,
    out: broadcast::Sender<(u8, Bytes)>,
}

impl Tee {
    fn chunk(&mut self, data: &[u8]) {
        // An error only says nobody is attached.
        let _ = self.out.send((self.channel, Bytes::copy_from_slice(data)));
        let mut partial = std::mem::take(&mut self.partial);
        split_lines(&mut partial, data, |line| self.line(line));
        self.partial = partial;
    }

    /// The stream ended: a last line without its newline is still a line.
    fn finish(&mut self) {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.line(&line);
        }
    }

    fn line(&self, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes).into_owned();
        let at = Timestamp::now();
        if let Some(f) = self.file.lock().as_mut() {
            f.write_line(at, self.stream, &text);
        }
        self.ctx.logs.push_line(&self.id, at, text);
    }
}

/// Appends `data` to `partial` and hands every complete line (without its newline) to `emit`;
/// a line that grows past [`MAX_LINE`] is handed over as it is.
fn split_lines(partial: &mut Vec<u8>, data: &[u8], mut emit: impl FnMut(&[u8])) {
    partial.extend_from_slice(data);
    let mut start = 0;
    while let Some(i) = partial[start..].iter().position(|&b| b == b'\n') {
        emit(&partial[start..start + i]);
        start += i + 1;
    }
    partial.drain(..start);
    if partial.len() >= MAX_LINE {
        emit(partial);
        partial.clear();
    }
}

/// Who the started container is, for [`start`].
pub(crate) struct Owner {
    pub ctx: Arc<Ctx>,
    pub id: String,
    pub pod_uid: String,
    pub pid: i32,
    pub file: Arc<Mutex<Option<LogFile>>>,
}

/// Starts copying the started `child`'s output and feeding its stdin as `plan` says; returns
/// the output copiers (done when the streams end) and the stdio for attach.
pub(crate) fn start(
    plan: Plan,
    child: &mut tokio::process::Child,
    owner: Owner,
) -> (Vec<JoinHandle<()>>, Arc<ContainerStdio>) {
    let (tx, _) = broadcast::channel(BACKLOG);
    let tee = |stream: &'static str, channel: u8| Tee {
        stream,
        channel,
        ctx: owner.ctx.clone(),
        id: owner.id.clone(),
        file: owner.file.clone(),
        partial: Vec::new(),
        out: tx.clone(),
    };
    let mut readers = Vec::new();
    let mut writer: Option<std::fs::File> = plan.stdin_writer.map(std::fs::File::from);
    if let Some(master) = &plan.master {
        // A pty master is one descriptor both ways, read and written by blocking threads;
        // reading fails (EIO) once the container's processes have all closed the terminal.
        if let Ok(m) = master.try_clone() {
            let mut t = tee("stdout", STDOUT);
            readers.push(tokio::task::spawn_blocking(move || {
                let mut f = std::fs::File::from(m);
                let mut buf = [0u8; 8192];
                while let Ok(n) = f.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    t.chunk(&buf[..n]);
                }
                t.finish();
            }));
        }
        if plan.stdin {
            writer = master.try_clone().ok().map(std::fs::File::from);
        }
    }
    for (pipe, stream, channel) in [
        (
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            "stdout",
            STDOUT,
        ),
        (
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            "stderr",
            STDERR,
        ),
    ] {
        let Some(mut pipe) = pipe else { continue };
        let mut t = tee(stream, channel);
        readers.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 8192];
            while let Ok(n) = pipe.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                t.chunk(&buf[..n]);
            }
            t.finish();
        }));
    }
    let input = writer.map(|mut w| {
        let (in_tx, in_rx) = std::sync::mpsc::channel::<Bytes>();
        // Blocking writes: a container that does not read its stdin holds up only this thread.
        std::thread::spawn(move || {
            while let Ok(b) = in_rx.recv() {
                if w.write_all(&b).is_err() {
                    break;
                }
            }
        });
        in_tx
    });
    let stdio = Arc::new(ContainerStdio {
        pod_uid: owner.pod_uid,
        pid: owner.pid,
        tty: plan.tty,
        stdin: plan.stdin,
        stdin_once: plan.stdin_once,
        input: Mutex::new(input),
        output: tx.downgrade(),
        master: plan.master,
    });
    (readers, stdio)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_chunks_become_log_lines() {
        let mut partial = Vec::new();
        let mut lines: Vec<String> = Vec::new();
        let mut emit = |l: &[u8]| lines.push(String::from_utf8_lossy(l).into_owned());
        split_lines(&mut partial, b"a\nb", &mut emit);
        split_lines(&mut partial, b"c\n\nd", &mut emit);
        assert_eq!(partial, b"d");
        split_lines(&mut partial, &vec![b'x'; MAX_LINE], &mut emit);
        assert!(partial.is_empty(), "an endless line is logged in pieces");
        assert_eq!(lines.len(), 4);
        assert_eq!(&lines[..3], ["a", "bc", ""]);
        assert_eq!(lines[3].len(), MAX_LINE + 1);
    }

    #[test]
    fn a_tty_container_gets_one_terminal_and_a_stdin_container_a_pipe() {
        let c = |v: serde_json::Value| -> Container { serde_json::from_value(v).unwrap() };
        let (p, io) = plan(&c(serde_json::json!({"name": "a", "tty": true}))).unwrap();
        assert!(p.tty && !p.stdin && p.master.is_some() && io.controlling_tty);
        let (p, _) = plan(&c(
            serde_json::json!({"name": "a", "stdin": true, "stdinOnce": true}),
        ))
        .unwrap();
        assert!(!p.tty && p.stdin && p.stdin_once && p.stdin_writer.is_some());
        let (p, io) = plan(&c(serde_json::json!({"name": "a"}))).unwrap();
        assert!(p.stdin_writer.is_none() && p.master.is_none() && !io.controlling_tty);
    }
}
