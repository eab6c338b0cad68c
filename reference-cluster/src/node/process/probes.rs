//! Probes and lifecycle hooks against a running process container: `exec` runs a command in
//! the container's namespaces, environment and working directory; `httpGet` (HTTP, or HTTPS
//! without certificate verification: [`http`]) and `tcpSocket` connect to the pod's address;
//! `grpc` calls the standard health service over h2c ([`grpc`]); `sleep` hooks wait.

mod grpc;
mod http;

use std::process::Stdio;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, LifecycleHandler, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::AsyncReadExt;
use tokio::time::Instant;

use super::launch::{self, Launch, Namespaces, Resolver};

/// How a probe ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeOutcome {
    Success,
    /// A success the kubelet reports with a `ProbeWarning` event ("… probe warning: " and
    /// this): an HTTP probe answered by a redirect it did not follow.
    Warning(String),
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
        let (url, headers) = match http_request(h, cx, h.path.as_deref().unwrap_or_default()) {
            Ok(r) => r,
            Err(m) => return fail(m),
        };
        return match http::probe(url, &headers, timeout).await {
            http::HttpOutcome::Success => ProbeOutcome::Success,
            http::HttpOutcome::Warning(m) => ProbeOutcome::Warning(m),
            http::HttpOutcome::Failure(m) => fail(m),
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
        let service = g.service.as_deref().unwrap_or_default();
        return match grpc::probe(&host_of(None, cx), port, service, timeout).await {
            Ok(()) => ProbeOutcome::Success,
            Err(m) => fail(m),
        };
    }
    fail("the probe has no handler".into())
}

/// Where an `httpGet` probe or hook goes (`path` as the caller defaults it) and the headers
/// it sends.
fn http_request(
    h: &k8s_openapi::api::core::v1::HTTPGetAction,
    cx: &ExecContext,
    path: &str,
) -> Result<(http::ProbeUrl, Vec<(String, String)>), String> {
    let port = port_of(&h.port, &cx.container)?;
    let host = host_of(h.host.as_ref(), cx);
    let headers = h
        .http_headers
        .iter()
        .flatten()
        .map(|x| (x.name.clone(), x.value.clone()))
        .collect();
    let https = h.scheme.as_deref() == Some("HTTPS");
    Ok((http::ProbeUrl::new(https, &host, port, path), headers))
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
        let path = h.path.clone().unwrap_or("/".into());
        let (url, headers) = http_request(h, cx, &path)?;
        let code = tokio::time::timeout(left, http::get(&url, &headers, "lifecycle"))
            .await
            .map_err(|_| "the hook timed out".to_string())??
            .status;
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
    use tokio::io::AsyncWriteExt;

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
    async fn https_and_grpc_probes_speak_their_protocols() {
        let probe = |v: serde_json::Value| -> Probe { serde_json::from_value(v).unwrap() };
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let https = probe(json!({"httpGet": {"scheme": "HTTPS", "path": "/h", "port": port}}));
        assert_eq!(
            run_probe(&cx(), &https, Duration::from_secs(5)).await,
            ProbeOutcome::Failure(format!(
                "Get \"https://127.0.0.1:{port}/h\": dial tcp 127.0.0.1:{port}: connect: connection refused"
            ))
        );
        let grpc = probe(json!({"grpc": {"port": port, "service": "web"}}));
        assert_eq!(
            run_probe(&cx(), &grpc, Duration::from_secs(1)).await,
            ProbeOutcome::Failure(format!(
                "timeout: failed to connect service \"127.0.0.1:{port}\" within 1s: context deadline exceeded"
            ))
        );
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
