//! Probes and lifecycle hooks against a running process container: `exec` runs a command in
//! the container's namespaces, environment and working directory; `httpGet` and `tcpSocket`
//! connect to the pod's address; `grpc` checks that the port accepts connections (see
//! `PROCESS.md`); `sleep` hooks wait.

use std::process::Stdio;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, LifecycleHandler, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::launch::{self, Launch, Namespaces, Resolver};

/// How a probe ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeOutcome {
    Success,
    /// With what the kubelet's event says after "… probe failed: ".
    Failure(String),
}

/// Where commands for one container run.
#[derive(Clone, Debug)]
pub struct ExecContext {
    pub pid: i32,
    pub env: Vec<(String, String)>,
    pub cwd: Option<String>,
    pub resolver: Resolver,
    pub namespaces: bool,
    pub pod_ip: Option<String>,
    pub container: Container,
    /// The container's cgroup: exec probes and hooks run inside its limits, as with runc.
    pub cgroup: Option<std::sync::Arc<super::cgroup::ContainerCgroup>>,
}

/// Output an exec probe keeps, like the kubelet's 10 KiB limit.
const MAX_OUTPUT: usize = 10 * 1024;

/// Runs `command` in the container; its exit code and combined output, or why it could not
/// start.
pub async fn exec_command(
    cx: &ExecContext,
    command: &[String],
    timeout: Duration,
) -> Result<(i32, String), String> {
    let Some(name) = command.first() else {
        return Err("no command specified".into());
    };
    let path = cx
        .env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let program = cx.resolver.resolve(name, &path)?;
    let mut child = launch::spawn(Launch {
        program,
        argv0: name.clone(),
        args: command[1..].to_vec(),
        env: cx.env.clone(),
        cwd: cx.cwd.clone(),
        namespaces: if cx.namespaces {
            Namespaces::Join(cx.pid)
        } else {
            Namespaces::Host
        },
        stdin: Stdio::null(),
        stdout: Stdio::piped(),
        stderr: Stdio::piped(),
        controlling_tty: false,
        cgroup: cx.cgroup.clone(),
    })
    .map_err(|e| e.to_string())?;
    let pid = child.id().map(|p| p as i32);
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let run = async {
        let mut a = Vec::new();
        let mut b = Vec::new();
        let (_, _, status) = tokio::join!(
            async {
                if let Some(o) = out.as_mut() {
                    let _ = o.read_to_end(&mut a).await;
                }
            },
            async {
                if let Some(e) = err.as_mut() {
                    let _ = e.read_to_end(&mut b).await;
                }
            },
            child.wait()
        );
        a.extend_from_slice(&b);
        a.truncate(MAX_OUTPUT);
        (status, a)
    };
    match tokio::time::timeout(timeout, run).await {
        Ok((status, output)) => {
            let code = status.map(launch::exit_code).unwrap_or(255);
            Ok((code, String::from_utf8_lossy(&output).into_owned()))
        }
        Err(_) => {
            if let Some(pid) = pid {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            Err(format!(
                "command {:?} timed out after {}s",
                command.join(" "),
                timeout.as_secs()
            ))
        }
    }
}

/// A named or numbered container port.
fn port_of(p: &IntOrString, c: &Container) -> Result<u16, String> {
    match p {
        IntOrString::Int(n) => u16::try_from(*n).map_err(|_| format!("invalid port {n}")),
        IntOrString::String(name) => {
            if let Ok(n) = name.parse::<u16>() {
                return Ok(n);
            }
            c.ports
                .iter()
                .flatten()
                .find(|cp| cp.name.as_deref() == Some(name.as_str()))
                .and_then(|cp| u16::try_from(cp.container_port).ok())
                .ok_or_else(|| format!("couldn't find port {name:?} in the container"))
        }
    }
}

fn host_of(host: Option<&String>, cx: &ExecContext) -> String {
    host.filter(|h| !h.is_empty())
        .cloned()
        .or_else(|| cx.pod_ip.clone())
        .unwrap_or_else(|| "127.0.0.1".into())
}

/// How Go's dialer words a failed connect, which users know from upstream's probe events.
fn dial_error(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connect: connection refused".into(),
        std::io::ErrorKind::TimedOut => "i/o timeout".into(),
        _ => format!("connect: {e}"),
    }
}

/// One HTTP GET; Ok with the status code.
async fn http_get(
    host: &str,
    port: u16,
    path: &str,
    headers: &[(String, String)],
) -> Result<u16, String> {
    let mut s = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| {
            format!(
                "Get \"http://{host}:{port}{path}\": dial tcp {host}:{port}: {}",
                dial_error(&e)
            )
        })?;
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: kube-probe/1.32\r\nAccept: */*\r\nConnection: close\r\n"
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 1024];
    let mut got = 0;
    while got < buf.len() {
        let n = s.read(&mut buf[got..]).await.map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        got += n;
        if buf[..got].contains(&b'\n') {
            break;
        }
    }
    let head = String::from_utf8_lossy(&buf[..got]);
    head.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("Get \"http://{host}:{port}{path}\": malformed HTTP response"))
}

/// Runs one probe within `timeout`.
pub async fn run_probe(cx: &ExecContext, p: &Probe, timeout: Duration) -> ProbeOutcome {
    let fail = ProbeOutcome::Failure;
    if let Some(e) = &p.exec {
        let cmd = e.command.clone().unwrap_or_default();
        return match exec_command(cx, &cmd, timeout).await {
            Ok((0, _)) => ProbeOutcome::Success,
            Ok((_, out)) => fail(out),
            Err(m) => fail(m),
        };
    }
    let connect = |host: String, port: u16| async move {
        match tokio::time::timeout(
            timeout,
            tokio::net::TcpStream::connect((host.as_str(), port)),
        )
        .await
        {
            Ok(Ok(_)) => ProbeOutcome::Success,
            Ok(Err(e)) => fail(format!("dial tcp {host}:{port}: {}", dial_error(&e))),
            Err(_) => fail(format!("dial tcp {host}:{port}: i/o timeout")),
        }
    };
    if let Some(h) = &p.http_get {
        let port = match port_of(&h.port, &cx.container) {
            Ok(p) => p,
            Err(m) => return fail(m),
        };
        let host = host_of(h.host.as_ref(), cx);
        let path = h
            .path
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or("/".into());
        if h.scheme.as_deref() == Some("HTTPS") {
            // No TLS client here: an HTTPS probe checks that the port accepts connections.
            return connect(host, port).await;
        }
        let headers: Vec<(String, String)> = h
            .http_headers
            .iter()
            .flatten()
            .map(|x| (x.name.clone(), x.value.clone()))
            .collect();
        return match tokio::time::timeout(timeout, http_get(&host, port, &path, &headers)).await {
            Ok(Ok(code)) if (200..400).contains(&code) => ProbeOutcome::Success,
            Ok(Ok(code)) => fail(format!("HTTP probe failed with statuscode: {code}")),
            Ok(Err(m)) => fail(m),
            Err(_) => fail(format!(
                "Get \"http://{host}:{port}{path}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
            )),
        };
    }
    if let Some(t) = &p.tcp_socket {
        let port = match port_of(&t.port, &cx.container) {
            Ok(p) => p,
            Err(m) => return fail(m),
        };
        return connect(host_of(t.host.as_ref(), cx), port).await;
    }
    if let Some(g) = &p.grpc {
        let port = match u16::try_from(g.port) {
            Ok(p) => p,
            Err(_) => return fail(format!("invalid port {}", g.port)),
        };
        return connect(host_of(None, cx), port).await;
    }
    fail("the probe has no handler".into())
}

/// Runs a postStart or preStop handler; `Err` says why it failed.
pub async fn run_hook(
    cx: &ExecContext,
    h: &LifecycleHandler,
    deadline: Instant,
) -> Result<(), String> {
    let left = deadline.saturating_duration_since(Instant::now());
    if let Some(e) = &h.exec {
        let cmd = e.command.clone().unwrap_or_default();
        return match exec_command(cx, &cmd, left).await {
            Ok((0, _)) => Ok(()),
            Ok((code, out)) => Err(format!(
                "command '{}' exited with {code}: {out}",
                cmd.join(" ")
            )),
            Err(m) => Err(m),
        };
    }
    if let Some(h) = &h.http_get {
        let port = port_of(&h.port, &cx.container)?;
        let host = host_of(h.host.as_ref(), cx);
        let path = h.path.clone().unwrap_or("/".into());
        let code = tokio::time::timeout(left, http_get(&host, port, &path, &[]))
            .await
            .map_err(|_| "the hook timed out".to_string())??;
        return if (200..400).contains(&code) {
            Ok(())
        } else {
            Err(format!(
                "HTTP lifecycle hook ({path}) for Container returned status {code}"
            ))
        };
    }
    if let Some(s) = &h.sleep {
        let d = Duration::from_secs(s.seconds.max(0) as u64).min(left);
        tokio::time::sleep(d).await;
        return Ok(());
    }
    Err("the lifecycle handler has no action".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::process::images::ImageSource;
    use serde_json::json;

    fn cx() -> ExecContext {
        ExecContext {
            pid: 0,
            env: vec![("PATH".into(), super::super::images::DEFAULT_PATH.into())],
            cwd: None,
            resolver: Resolver {
                source: ImageSource::Host,
                applets: None,
            },
            namespaces: false,
            pod_ip: Some("127.0.0.1".into()),
            container: serde_json::from_value(
                json!({"name": "c", "ports": [{"name": "web", "containerPort": 8080}]}),
            )
            .unwrap(),
            cgroup: None,
        }
    }

    #[test]
    fn named_ports_resolve_through_the_container() {
        let c = cx().container;
        assert_eq!(port_of(&IntOrString::String("web".into()), &c), Ok(8080));
        assert_eq!(port_of(&IntOrString::Int(81), &c), Ok(81));
        assert!(port_of(&IntOrString::String("nope".into()), &c).is_err());
    }

    #[tokio::test]
    async fn probes_see_exit_codes_http_statuses_and_closed_ports() {
        let probe = |v: serde_json::Value| -> Probe { serde_json::from_value(v).unwrap() };
        let t = Duration::from_secs(5);
        assert_eq!(
            run_probe(
                &cx(),
                &probe(json!({"exec": {"command": ["sh", "-c", "exit 0"]}})),
                t
            )
            .await,
            ProbeOutcome::Success
        );
        assert_eq!(
            run_probe(
                &cx(),
                &probe(json!({"exec": {"command": ["sh", "-c", "echo no; exit 1"]}})),
                t
            )
            .await,
            ProbeOutcome::Failure("no\n".into())
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let mut n = 0;
            while let Ok((mut s, _)) = listener.accept().await {
                let mut b = [0u8; 512];
                let _ = s.read(&mut b).await;
                let code = if n == 0 { 200 } else { 503 };
                n += 1;
                let _ = s
                    .write_all(format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\r\n").as_bytes())
                    .await;
            }
        });
        let http = probe(json!({"httpGet": {"path": "/healthz", "port": port}}));
        assert_eq!(run_probe(&cx(), &http, t).await, ProbeOutcome::Success);
        assert_eq!(
            run_probe(&cx(), &http, t).await,
            ProbeOutcome::Failure("HTTP probe failed with statuscode: 503".into())
        );
        let tcp = probe(json!({"tcpSocket": {"port": port}}));
        assert_eq!(run_probe(&cx(), &tcp, t).await, ProbeOutcome::Success);
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let closed_port = closed.local_addr().unwrap().port();
        drop(closed);
        assert!(matches!(
            run_probe(
                &cx(),
                &probe(json!({"tcpSocket": {"port": closed_port}})),
                t
            )
            .await,
            ProbeOutcome::Failure(_)
        ));
    }
}
