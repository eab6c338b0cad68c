//! `kubectl port-forward` on the kubelet side: the kubelet server's
//! `/portForward/{namespace}/{pod}[/{uid}]`, which the API server's `pods/portforward` proxies
//! to. Two protocols, as upstream's kubelet serves them:
//!
//! - SPDY/3.1 (`Upgrade: SPDY/3.1`, `X-Stream-Protocol-Version: portforward.k8s.io`; kubectl,
//!   directly or tunnelled through the API server's WebSocket `SPDY/3.1+portforward.k8s.io`):
//!   per forwarded connection the client opens an error stream and a data stream (headers
//!   `streamtype`, `port`, `requestid`); the kubelet connects to the pod's port and copies bytes
//!   ([`session`]).
//! - WebSocket `v4.channel.k8s.io` (kube-rs `Api::portforward`, the Python client): the ports
//!   come in the query (`port=`), each gets a data channel `2i` and an error channel `2i+1`,
//!   both opened by the port number as two little-endian bytes ([`websocket`]).
//!
//! Two timeouts, as upstream's streaming server has them ([`StreamTimeouts`]): a SPDY request
//! whose data or error stream never gets its partner is given up after the stream creation
//! timeout, and a connection (either protocol) over which nothing moved for the idle timeout
//! is closed.
//!
//! A connection that cannot be made is reported on the error stream in upstream's words
//! (`error forwarding port P to pod <sandbox>, uid : failed to execute portforward in network
//! namespace …`). The `process` runtime connects to the pod's address on loopback; a `sim` pod
//! has no process listening, so every connection is refused (see `SIM.md`).

pub mod session;
pub mod spdy;
pub mod websocket;

use crate::node::kubelet_server::text;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, Request, Response};
use http_body_util::BodyExt as _;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::Pod;
use tokio::net::TcpStream;

use super::exec::session::{is_websocket_upgrade, PodSource};

type Body = crate::node::kubelet_server::Body;

/// The SPDY subprotocol of port-forward (`X-Stream-Protocol-Version`).
pub const PROTOCOL: &str = "portforward.k8s.io";
/// The prefix of the WebSocket subprotocol that tunnels SPDY (`SPDY/3.1+portforward.k8s.io`).
pub const TUNNELING_PREFIX: &str = "SPDY/3.1+";
/// The header naming the SPDY subprotocol.
pub const PROTOCOL_HEADER: &str = "x-stream-protocol-version";

/// A parsed `/portForward/{namespace}/{pod}[/{uid}]` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortForwardQuery {
    pub namespace: String,
    pub pod: String,
    pub uid: Option<String>,
    /// The `port` query parameters as sent; only WebSocket clients send them.
    pub ports: Vec<String>,
}

/// The request for `path`, `None` when the path is not a `portForward` one.
pub fn parse(path: &str, query: &str) -> Option<PortForwardQuery> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (namespace, pod, uid) = match parts.as_slice() {
        ["portForward", ns, pod] => (*ns, *pod, None),
        ["portForward", ns, pod, uid] => (*ns, *pod, Some(*uid)),
        _ => return None,
    };
    if namespace.is_empty() || pod.is_empty() {
        return None;
    }
    let ports = query
        .split('&')
        .filter_map(|p| p.split_once('=').or(Some((p, ""))))
        .filter(|(k, _)| crate::apiserver::request::percent_decode(k) == "port")
        .map(|(_, v)| crate::apiserver::request::percent_decode(v))
        .collect();
    Some(PortForwardQuery {
        namespace: namespace.to_string(),
        pod: pod.to_string(),
        uid: uid.filter(|u| !u.is_empty()).map(str::to_string),
        ports,
    })
}

/// Parses port values as upstream's kubelet does (`port` may repeat and hold `a,b`).
pub fn parse_ports(raw: &[String], name: &str) -> Result<Vec<u16>, String> {
    if raw.is_empty() {
        return Err(format!("query parameter {name:?} is required"));
    }
    let mut ports = Vec::new();
    for s in raw {
        if s.is_empty() {
            return Err(format!("query parameter {name:?} cannot be empty"));
        }
        for p in s.split(',') {
            let port: u16 = p
                .parse()
                .map_err(|e| format!("unable to parse {s:?} as a port: {e}"))?;
            if port < 1 {
                return Err(format!("port {s:?} must be > 0"));
            }
            ports.push(port);
        }
    }
    Ok(ports)
}

/// What the kubelet server needs to serve port-forward.
#[derive(Clone)]
pub struct Backend {
    pub pods: Arc<dyn PodSource>,
    /// The pods are real processes listening on their pod IP (the `process` runtime).
    pub process: bool,
    pub timeouts: StreamTimeouts,
}

/// The streaming server's timeouts for port-forward connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamTimeouts {
    /// How long a request's first stream waits for its partner (`streamCreationTimeout`).
    pub creation: Duration,
    /// How long a connection may carry nothing before it is closed
    /// (`streamingConnectionIdleTimeout`).
    pub idle: Duration,
}

impl Default for StreamTimeouts {
    /// Upstream's: 30 s (`DefaultStreamCreationTimeout`) and 4 h (the kubelet's and
    /// containerd's `stream_idle_timeout`).
    fn default() -> Self {
        StreamTimeouts {
            creation: Duration::from_secs(30),
            idle: Duration::from_secs(4 * 3600),
        }
    }
}

/// When a connection last carried a frame in either direction, for the idle timeout (as
/// spdystream's idle-aware framer and wsstream's deadlines count it).
pub(crate) struct Activity {
    origin: tokio::time::Instant,
    last_ms: AtomicU64,
}

impl Activity {
    pub(crate) fn new() -> Arc<Activity> {
        Arc::new(Activity {
            origin: tokio::time::Instant::now(),
            last_ms: AtomicU64::new(0),
        })
    }

    pub(crate) fn touch(&self) {
        let ms = self.origin.elapsed().as_millis().min(u128::from(u64::MAX)) as u64;
        self.last_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// Resolves once nothing has moved for `idle`; never for zero (no idle timeout).
    pub(crate) async fn idle_for(&self, idle: Duration) {
        if idle.is_zero() {
            return std::future::pending().await;
        }
        loop {
            let last = self.origin + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let deadline = last + idle;
            if tokio::time::Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// Where a pod's ports are, and what error messages call it.
#[derive(Clone, Debug)]
pub struct Target {
    /// The CRI sandbox id upstream's kubelet names the pod by in port-forward errors.
    pub sandbox: String,
    route: Route,
}

#[derive(Clone, Debug)]
enum Route {
    /// A sim pod: nothing listens, a connection is refused inside the pod's network namespace.
    Refused { netns: String },
    /// A process pod: its servers listen on its address on loopback.
    Address(Ipv4Addr),
    /// A process pod whose sandbox has no address (yet).
    NoAddress,
}

/// 64 hex digits derived from `seed`, like a containerd id.
fn hex_id(seed: &str, salt: &str) -> String {
    (0..4u64)
        .map(|i| {
            let mut h = DefaultHasher::new();
            (i, salt, seed).hash(&mut h);
            format!("{:016x}", h.finish())
        })
        .collect()
}

impl Target {
    /// The target of `pod` on a sim node (`process == false`) or a process node.
    pub fn for_pod(pod: &Pod, process: bool) -> Target {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let sandbox = hex_id(&uid, "sandbox");
        let route = if process {
            pod.status
                .as_ref()
                .and_then(|s| s.pod_ip.as_deref())
                .and_then(|ip| ip.parse().ok())
                .map_or(Route::NoAddress, Route::Address)
        } else {
            let h = hex_id(&uid, "netns");
            Route::Refused {
                netns: format!(
                    "/var/run/netns/cni-{}-{}-{}-{}-{}",
                    &h[..8],
                    &h[8..12],
                    &h[12..16],
                    &h[16..20],
                    &h[20..32]
                ),
            }
        };
        Target { sandbox, route }
    }

    /// Connects to `port` of the pod, or says why not as upstream's kubelet (with containerd)
    /// writes it on the error stream.
    pub async fn connect(&self, port: u16) -> Result<TcpStream, String> {
        let sandbox = &self.sandbox;
        let (netns, cause) = match &self.route {
            Route::Refused { netns } => (
                netns.as_str(),
                format!(
                    "failed to connect to localhost:{port} inside namespace {sandbox:?}, IPv4: dial tcp4 127.0.0.1:{port}: connect: connection refused IPv6 dial tcp6 [::1]:{port}: connect: connection refused "
                ),
            ),
            Route::Address(ip) => match TcpStream::connect((*ip, port)).await {
                Ok(tcp) => {
                    let _ = tcp.set_nodelay(true);
                    return Ok(tcp);
                }
                Err(e) => (
                    "host",
                    format!(
                        "failed to connect to {ip}:{port} inside namespace {sandbox:?}, IPv4: dial tcp4 {ip}:{port}: connect: {}",
                        go_errno(&e)
                    ),
                ),
            },
            Route::NoAddress => (
                "host",
                format!("the sandbox {sandbox:?} has no pod IP yet, so port {port} cannot be reached"),
            ),
        };
        Err(format!(
            "error forwarding port {port} to pod {sandbox}, uid : failed to execute portforward in network namespace {netns:?}: {cause}"
        ))
    }
}

/// An OS error as Go's syscall package words it ("connection refused").
fn go_errno(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => {
            let desc = nix::errno::Errno::from_raw(code).desc();
            let mut c = desc.chars();
            match c.next() {
                Some(first) => first.to_lowercase().chain(c).collect(),
                None => e.to_string(),
            }
        }
        None => e.to_string(),
    }
}

/// Whether `headers` ask for a SPDY/3.1 upgrade.
pub fn is_spdy_upgrade(headers: &HeaderMap) -> bool {
    let has = |name: http::header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .unwrap_or("")
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case(token))
        })
    };
    has(http::header::CONNECTION, "upgrade") && has(http::header::UPGRADE, "spdy/3.1")
}

/// Answers a `portForward` request: finds the pod, then serves the WebSocket channel protocol
/// or upgrades to SPDY.
pub async fn serve(
    mut req: Request<hyper::body::Incoming>,
    query: PortForwardQuery,
    backend: Option<Backend>,
) -> Response<Body> {
    let Some(backend) = backend else {
        return text(
            500,
            "port-forward is not enabled on this kubelet server; the fleet calls KubeletServer::enable_exec",
        );
    };
    let pod = match backend.pods.pod(&query.namespace, &query.pod).await {
        Ok(Some(p)) => p,
        Ok(None) => return text(404, "pod does not exist"),
        Err(e) => return text(500, &e),
    };
    if let Some(uid) = &query.uid {
        if pod.metadata.uid.as_deref() != Some(uid.as_str()) {
            return text(404, "pod not found");
        }
    }
    let target = Arc::new(Target::for_pod(&pod, backend.process));
    if is_websocket_upgrade(req.headers()) {
        let ports = match parse_ports(&query.ports, "port") {
            Ok(p) => p,
            Err(e) => return text(400, &e),
        };
        return websocket::upgrade(&mut req, ports, target, backend.timeouts.idle);
    }
    if !is_spdy_upgrade(req.headers()) {
        return text(
            400,
            &format!(
                "unable to upgrade: missing upgrade headers in request: Connection {:?}, Upgrade {:?}",
                req.headers().get(http::header::CONNECTION),
                req.headers().get(http::header::UPGRADE)
            ),
        );
    }
    let offered: Vec<String> = req
        .headers()
        .get_all(PROTOCOL_HEADER)
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("").split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    if offered.is_empty() {
        return text(
            400,
            "unable to upgrade: X-Stream-Protocol-Version is required",
        );
    }
    if !offered.iter().any(|p| p == PROTOCOL) {
        let mut r = text(
            403,
            &format!(
                "unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server accepts [{PROTOCOL:?}]"
            ),
        );
        r.headers_mut().insert(
            "x-accepted-stream-protocol-versions",
            http::HeaderValue::from_static(PROTOCOL),
        );
        return r;
    }
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        if let Ok(upgraded) = upgrade.await {
            session::run(TokioIo::new(upgraded), target, backend.timeouts).await;
        }
    });
    Response::builder()
        .status(101)
        .header(http::header::CONNECTION, "Upgrade")
        .header(http::header::UPGRADE, "SPDY/3.1")
        .header(PROTOCOL_HEADER, PROTOCOL)
        .body(
            http_body_util::Empty::new()
                .map_err(|e| match e {})
                .boxed_unsync(),
        )
        .expect("static headers are valid")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_and_ports_parse_as_the_kubelet_reads_them() {
        let q = parse("/portForward/default/web", "port=8080&port=80%2C81").unwrap();
        assert_eq!((q.namespace.as_str(), q.pod.as_str()), ("default", "web"));
        assert_eq!(q.uid, None);
        assert_eq!(parse_ports(&q.ports, "port").unwrap(), [8080, 80, 81]);
        let q = parse("/portForward/ns/p/uid-1", "").unwrap();
        assert_eq!(q.uid.as_deref(), Some("uid-1"));
        assert!(parse("/exec/ns/p/c", "").is_none());
        assert!(parse("/portForward/ns", "").is_none());
        assert_eq!(
            parse_ports(&[], "port").unwrap_err(),
            "query parameter \"port\" is required"
        );
        assert!(parse_ports(&["x".into()], "port")
            .unwrap_err()
            .starts_with("unable to parse \"x\" as a port"));
        assert_eq!(
            parse_ports(&["0".into()], "port").unwrap_err(),
            "port \"0\" must be > 0"
        );
    }

    #[tokio::test]
    async fn sim_pods_refuse_in_upstreams_words_and_process_pods_are_dialled() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "web", "uid": "u-1"},
            "status": {"podIP": "127.0.0.1"}
        }))
        .unwrap();
        let sim = Target::for_pod(&pod, false);
        assert_eq!(sim.sandbox.len(), 64);
        let e = sim.connect(8080).await.unwrap_err();
        assert!(
            e.starts_with(&format!(
                "error forwarding port 8080 to pod {}, uid : failed to execute portforward in network namespace \"/var/run/netns/cni-",
                sim.sandbox
            )),
            "{e}"
        );
        assert!(
            e.ends_with(&format!("\": failed to connect to localhost:8080 inside namespace \"{}\", IPv4: dial tcp4 127.0.0.1:8080: connect: connection refused IPv6 dial tcp6 [::1]:8080: connect: connection refused ", sim.sandbox)),
            "{e}"
        );
        // The same pod always gets the same sandbox.
        assert_eq!(Target::for_pod(&pod, false).sandbox, sim.sandbox);

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let process = Target::for_pod(&pod, true);
        assert!(process.connect(port).await.is_ok());
        drop(listener);
        let e = process.connect(port).await.unwrap_err();
        assert!(
            e.ends_with(&format!(
                "network namespace \"host\": failed to connect to 127.0.0.1:{port} inside namespace \"{}\", IPv4: dial tcp4 127.0.0.1:{port}: connect: connection refused",
                process.sandbox
            )),
            "{e}"
        );
        let no_ip: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}})).unwrap();
        assert!(Target::for_pod(&no_ip, true)
            .connect(80)
            .await
            .unwrap_err()
            .contains("has no pod IP yet"));
    }
}
