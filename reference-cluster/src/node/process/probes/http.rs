//! The kubelet's HTTP(S) client for `httpGet` probes and hooks, as upstream's `pkg/probe/http`
//! builds it: one connection per request (keep-alives off), HTTPS without certificate
//! verification (the prober's `InsecureSkipVerify`), `User-Agent: kube-probe/1.32` and
//! `Accept: */*` unless the probe's headers set them, a `Host` header from the probe's headers,
//! redirects followed only while they stay on the probed host (at most 10 requests), at most
//! 10 KiB of the body read.

use std::fmt;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::dial_error;

/// What upstream's prober reads of a response body (`maxRespBodyLength`).
const MAX_BODY: usize = 10 * 1024;
/// Go's client gives up on the 11th request of a redirect chain.
const MAX_REQUESTS: usize = 10;

/// How an HTTP probe ended, as upstream's `DoHTTPProbe` classifies it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpOutcome {
    Success,
    /// A 3xx the client did not follow (another host, or no `Location`): a success with a
    /// `ProbeWarning` event.
    Warning(String),
    Failure(String),
}

/// Where one request goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeUrl {
    pub https: bool,
    /// A host name or an IP address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// The path and query, starting with `/`.
    pub path: String,
}

impl ProbeUrl {
    pub fn new(https: bool, host: &str, port: u16, path: &str) -> ProbeUrl {
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        ProbeUrl {
            https,
            host: host.trim_start_matches('[').trim_end_matches(']').into(),
            port,
            path,
        }
    }

    fn authority(&self) -> String {
        join_host_port(&self.host, self.port)
    }
}

impl fmt::Display for ProbeUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}{}", self.authority(), self.path)
    }
}

/// Go's `net.JoinHostPort`.
pub fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The final response of a chain of requests.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Upstream's `DoHTTPProbe` verdict on a response.
pub fn classify(reply: &Reply) -> HttpOutcome {
    match reply.status {
        200..=299 => HttpOutcome::Success,
        300..=399 => HttpOutcome::Warning(format!(
            "Probe terminated redirects, Response body: {}",
            String::from_utf8_lossy(&reply.body)
        )),
        code => HttpOutcome::Failure(format!("HTTP probe failed with statuscode: {code}")),
    }
}

/// Runs a probe's GET within `timeout`.
pub async fn probe(
    url: ProbeUrl,
    headers: &[(String, String)],
    timeout: std::time::Duration,
) -> HttpOutcome {
    match tokio::time::timeout(timeout, get(&url, headers, "probe")).await {
        Ok(Ok(reply)) => classify(&reply),
        Ok(Err(message)) => HttpOutcome::Failure(message),
        Err(_) => HttpOutcome::Failure(format!(
            "Get \"{url}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
        )),
    }
}

/// The request headers upstream's `newProbeRequest` sends, and the `Host` override.
fn request_headers(
    probe_headers: &[(String, String)],
    user_agent: &str,
) -> (Vec<(String, String)>, Option<String>) {
    fn named<'a>(
        headers: &'a [(String, String)],
        name: &'a str,
    ) -> impl Iterator<Item = &'a (String, String)> {
        headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
    }
    let named = |name: &'static str| named(probe_headers, name);
    let mut out: Vec<(String, String)> = probe_headers
        .iter()
        // Host goes out as the request's host; an empty Accept means "send none".
        .filter(|(k, _)| !k.eq_ignore_ascii_case("host"))
        .filter(|(k, _)| {
            !(k.eq_ignore_ascii_case("accept")
                && named("accept").next().is_some_and(|(_, v)| v.is_empty()))
        })
        .cloned()
        .collect();
    if named("user-agent").next().is_none() {
        out.push(("User-Agent".into(), user_agent.into()));
    }
    if named("accept").next().is_none() {
        out.push(("Accept".into(), "*/*".into()));
    }
    let host = named("host").next().map(|(_, v)| v.clone());
    (out, host.filter(|h| !h.is_empty()))
}

/// GETs `first`, following redirects as the kubelet's client does; errors are worded as Go's
/// `*url.Error` (`Get "<url>": <cause>`). `fragment` names the client in the User-Agent
/// (`probe`, `lifecycle`).
pub async fn get(
    first: &ProbeUrl,
    probe_headers: &[(String, String)],
    fragment: &str,
) -> Result<Reply, String> {
    let (headers, host_override) = request_headers(probe_headers, &format!("kube-{fragment}/1.32"));
    let mut url = first.clone();
    let mut host = host_override.clone().unwrap_or_else(|| url.authority());
    let mut requests = 0;
    loop {
        requests += 1;
        let (reply, location) = get_once(&url, &host, &headers)
            .await
            .map_err(|e| format!("Get \"{url}\": {e}"))?;
        let Some(loc) = location.filter(|l| !l.is_empty()) else {
            return Ok(reply);
        };
        if !matches!(reply.status, 301 | 302 | 303 | 307 | 308) {
            return Ok(reply);
        }
        let next = resolve(&url, &loc)
            .map_err(|e| format!("Get \"{url}\": failed to parse Location header {loc:?}: {e}"))?;
        if next.host != first.host {
            // The kubelet's client does not follow a redirect off the probed host
            // (`followNonLocalRedirects` is false): the 3xx itself is the answer.
            return Ok(reply);
        }
        if requests >= MAX_REQUESTS {
            return Err(format!(
                "Get \"{}\": stopped after 10 redirects",
                next.shown
            ));
        }
        let Some(next_url) = next.url else {
            return Err(format!(
                "Get \"{}\": unsupported protocol scheme {:?}",
                next.shown, next.scheme
            ));
        };
        // A Host override survives only a relative redirect, as in Go's client.
        host = match (&host_override, next.relative) {
            (Some(h), true) => h.clone(),
            _ => next_url.authority(),
        };
        url = next_url;
    }
}

/// A resolved `Location`.
struct Next {
    /// `None` for a scheme other than http and https.
    url: Option<ProbeUrl>,
    scheme: String,
    host: String,
    /// The Location had no scheme.
    relative: bool,
    shown: String,
}

/// Resolves `loc` against `base` (RFC 3986, as Go's `URL.ResolveReference`).
fn resolve(base: &ProbeUrl, loc: &str) -> Result<Next, String> {
    let loc = loc.split('#').next().unwrap_or("");
    let scheme_end = loc.find("://").filter(|&i| {
        i > 0
            && loc[..i]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    let (scheme, rest, relative) = match scheme_end {
        Some(i) => (loc[..i].to_ascii_lowercase(), &loc[i + 1..], false),
        None => (
            if base.https { "https" } else { "http" }.to_string(),
            loc,
            true,
        ),
    };
    let (host, port, path) = if let Some(after) = rest.strip_prefix("//") {
        let end = after.find(['/', '?']).unwrap_or(after.len());
        let authority = after[..end].rsplit('@').next().unwrap_or("");
        let (host, port) = split_host_port(authority)?;
        let default = match scheme.as_str() {
            "https" => 443,
            _ => 80,
        };
        let path = match &after[end..] {
            "" => "/".to_string(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_string(),
        };
        (host, port.unwrap_or(default), path)
    } else {
        let base_path = base.path.split('?').next().unwrap_or("/");
        let path = if rest.is_empty() {
            base.path.clone()
        } else if rest.starts_with('/') {
            rest.to_string()
        } else if rest.starts_with('?') {
            format!("{base_path}{rest}")
        } else {
            let dir = &base_path[..base_path.rfind('/').map_or(0, |i| i + 1)];
            format!("{dir}{rest}")
        };
        (base.host.clone(), base.port, path)
    };
    let (p, q) = match path.split_once('?') {
        Some((p, q)) => (p.to_string(), format!("?{q}")),
        None => (path.clone(), String::new()),
    };
    let path = format!("{}{q}", remove_dot_segments(&p));
    let supported = scheme == "http" || scheme == "https";
    let url = supported.then(|| ProbeUrl {
        https: scheme == "https",
        host: host.clone(),
        port,
        path: path.clone(),
    });
    let shown = match &url {
        Some(u) => u.to_string(),
        None => format!("{scheme}://{}{path}", join_host_port(&host, port)),
    };
    Ok(Next {
        url,
        scheme,
        host,
        relative,
        shown,
    })
}

fn split_host_port(authority: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("missing ']' in host {authority:?}"))?;
        (h, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port.filter(|p| !p.is_empty()) {
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .map_err(|_| format!("invalid port {:?} after host", format!(":{p}")))?,
        ),
    };
    Ok((host.to_string(), port))
}

fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    for (i, s) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match *s {
            "." => {
                if last {
                    out.push("");
                }
            }
            ".." => {
                out.pop();
                if last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

/// Verifies nothing about the server's certificate (the handshake's signatures still are).
fn insecure_tls() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .expect("ring supports the default protocol versions")
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(
                    crate::apiserver::aggregator::SkipVerification(provider),
                ))
                .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}

/// One request on a fresh connection; the response and its `Location`.
async fn get_once(
    url: &ProbeUrl,
    host: &str,
    headers: &[(String, String)],
) -> Result<(Reply, Option<String>), String> {
    let authority = url.authority();
    let tcp = TcpStream::connect((url.host.as_str(), url.port))
        .await
        .map_err(|e| format!("dial tcp {authority}: {}", dial_error(&e)))?;
    let _ = tcp.set_nodelay(true);
    if !url.https {
        return exchange(tcp, url, host, headers).await;
    }
    let name = rustls::pki_types::ServerName::try_from(url.host.clone())
        .map_err(|e| format!("tls: invalid server name {:?}: {e}", url.host))?;
    let tls = tokio_rustls::TlsConnector::from(insecure_tls())
        .connect(name, tcp)
        .await
        .map_err(|e| tls_error(&e))?;
    exchange(tls, url, host, headers).await
}

/// A TLS handshake failure in Go's words where users know them.
fn tls_error(e: &std::io::Error) -> String {
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    match inner {
        // The server answered the ClientHello with plaintext.
        Some(rustls::Error::InvalidMessage(_)) => {
            "http: server gave HTTP response to HTTPS client".into()
        }
        Some(r) => format!("tls: {r}"),
        None if e.kind() == std::io::ErrorKind::UnexpectedEof => "EOF".into(),
        None => format!("tls: {e}"),
    }
}

async fn exchange<I>(
    io: I,
    url: &ProbeUrl,
    host: &str,
    headers: &[(String, String)],
) -> Result<(Reply, Option<String>), String>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut req = http::Request::get(url.path.as_str())
        .header(http::header::HOST, host)
        // Keep-alives are off in the prober's transport.
        .header(http::header::CONNECTION, "close");
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let req = req
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("net/http: invalid request: {e}"))?;
    let resp = sender.send_request(req).await.map_err(|e| {
        if e.is_incomplete_message() {
            "EOF".to_string()
        } else {
            e.to_string()
        }
    })?;
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get(http::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut body = resp.into_body();
    let mut read = Vec::new();
    while read.len() < MAX_BODY {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    read.extend_from_slice(&data);
                }
            }
            Some(Err(e)) => return Err(e.to_string()),
            None => break,
        }
    }
    read.truncate(MAX_BODY);
    Ok((Reply { status, body: read }, location))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use std::time::Duration;

    #[test]
    fn locations_resolve_as_gos_client_reads_them() {
        let base = ProbeUrl::new(false, "10.0.0.1", 8080, "/a/b?x=1");
        let r = |loc: &str| resolve(&base, loc).unwrap();
        assert_eq!(r("/c").shown, "http://10.0.0.1:8080/c");
        assert_eq!(r("c").shown, "http://10.0.0.1:8080/a/c");
        assert_eq!(r("../c?y").shown, "http://10.0.0.1:8080/c?y");
        assert_eq!(r("?y=2").shown, "http://10.0.0.1:8080/a/b?y=2");
        assert!(r("/c").relative);
        let abs = r("https://10.0.0.1:8443");
        assert_eq!(abs.shown, "https://10.0.0.1:8443/");
        assert!(!abs.relative);
        assert_eq!(r("HTTPS://other/x#frag").shown, "https://other:443/x");
        assert_eq!(r("//[::1]/x").url.unwrap().host, "::1");
        assert!(r("ftp://10.0.0.1/x").url.is_none());
        assert!(resolve(&base, "http://h:port/").is_err());
        assert_eq!(
            ProbeUrl::new(true, "::1", 443, "healthz").to_string(),
            "https://[::1]:443/healthz"
        );
    }

    #[test]
    fn headers_default_and_override_as_upstreams_request_builder() {
        let (h, host) = request_headers(&[], "kube-probe/1.32");
        assert_eq!(
            h,
            [
                ("User-Agent".to_string(), "kube-probe/1.32".to_string()),
                ("Accept".into(), "*/*".into())
            ]
        );
        assert_eq!(host, None);
        let given = [
            ("host".to_string(), "example.com".to_string()),
            ("Accept".into(), "".into()),
            ("user-agent".into(), "mine".into()),
            ("X-A".into(), "1".into()),
        ];
        let (h, host) = request_headers(&given, "kube-probe/1.32");
        assert_eq!(host.as_deref(), Some("example.com"));
        assert_eq!(
            h,
            [
                ("user-agent".to_string(), "mine".to_string()),
                ("X-A".into(), "1".into())
            ]
        );
    }

    type Seen = Arc<parking_lot::Mutex<Vec<(String, Option<String>)>>>;

    /// An HTTPS server with a self-signed certificate answering by path: `/ok` 200, `/fail`
    /// 500, `/hop` a redirect to `/ok`, `/away` a redirect to another host, `/loop` to itself.
    async fn https_server(seen: Seen) -> u16 {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let seen = seen.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let svc = hyper::service::service_fn(move |req: http::Request<_>| {
                        let host = req
                            .headers()
                            .get("host")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string);
                        seen.lock().push((req.uri().to_string(), host));
                        let (code, location) = match req.uri().path() {
                            "/ok" => (200, None),
                            "/hop" => (302, Some("/ok".to_string())),
                            "/away" => (302, Some("https://elsewhere.invalid/ok".into())),
                            "/loop" => (307, Some("/loop".into())),
                            _ => (500, None),
                        };
                        let mut resp = http::Response::builder().status(code);
                        if let Some(l) = location {
                            resp = resp.header("location", l);
                        }
                        let body = if code == 302 { "moved" } else { "" };
                        async move {
                            Ok::<_, Infallible>(
                                resp.body(http_body_util::Full::new(Bytes::from(body)))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), svc)
                        .await;
                });
            }
        });
        port
    }

    #[tokio::test]
    async fn https_probes_skip_verification_follow_local_redirects_and_judge_codes() {
        let seen = Seen::default();
        let port = https_server(seen.clone()).await;
        let t = Duration::from_secs(5);
        let url = |p: &str| ProbeUrl::new(true, "127.0.0.1", port, p);
        assert_eq!(probe(url("/ok"), &[], t).await, HttpOutcome::Success);
        assert_eq!(
            probe(url("/fail"), &[], t).await,
            HttpOutcome::Failure("HTTP probe failed with statuscode: 500".into())
        );
        seen.lock().clear();
        let host = [("Host".to_string(), "web.example".to_string())];
        assert_eq!(probe(url("/hop"), &host, t).await, HttpOutcome::Success);
        assert_eq!(
            *seen.lock(),
            [
                ("/hop".to_string(), Some("web.example".to_string())),
                ("/ok".to_string(), Some("web.example".to_string()))
            ],
            "the redirect is followed and keeps the Host override"
        );
        assert_eq!(
            probe(url("/away"), &[], t).await,
            HttpOutcome::Warning("Probe terminated redirects, Response body: moved".into())
        );
        seen.lock().clear();
        assert_eq!(
            probe(url("/loop"), &[], t).await,
            HttpOutcome::Failure(format!(
                "Get \"https://127.0.0.1:{port}/loop\": stopped after 10 redirects"
            ))
        );
        assert_eq!(seen.lock().len(), 10);
    }

    #[tokio::test]
    async fn https_to_a_plaintext_or_closed_port_fails_in_gos_words() {
        let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = plain.local_addr().unwrap().port();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut s, _)) = plain.accept().await {
                let mut b = [0u8; 512];
                let _ = s.read(&mut b).await;
                let _ = s
                    .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                    .await;
            }
        });
        let t = Duration::from_secs(5);
        assert_eq!(
            probe(ProbeUrl::new(true, "127.0.0.1", port, "/"), &[], t).await,
            HttpOutcome::Failure(format!(
                "Get \"https://127.0.0.1:{port}/\": http: server gave HTTP response to HTTPS client"
            ))
        );
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let closed_port = closed.local_addr().unwrap().port();
        drop(closed);
        assert_eq!(
            probe(ProbeUrl::new(true, "127.0.0.1", closed_port, "/x"), &[], t).await,
            HttpOutcome::Failure(format!(
                "Get \"https://127.0.0.1:{closed_port}/x\": dial tcp 127.0.0.1:{closed_port}: connect: connection refused"
            ))
        );
    }
}
