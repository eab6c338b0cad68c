//! The HTTPS client that calls admission webhooks: one connection per call, HTTP/1.1 over
//! rustls, trusting only the webhook's `caBundle`, bounded by the webhook's timeout and a
//! response size limit.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;

/// Upstream caps webhook responses well below this; larger answers are refused, not buffered.
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// Why a call failed; the text follows upstream's `failed to call webhook: …` shapes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallError(pub String);

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn tls_config(ca_bundle: &[u8]) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    let mut reader = std::io::BufReader::new(ca_bundle);
    for cert in rustls_pemfile::certs(&mut reader) {
        let cert = cert.map_err(|e| format!("invalid caBundle: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("invalid caBundle: {e}"))?;
    }
    if roots.is_empty() {
        return Err("the webhook has no caBundle to verify its server with".into());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// POSTs `body` (an AdmissionReview) to `url` (`https://host:port/path`) and returns the
/// response body. `server_name` overrides the name the certificate must carry (for Service
/// references: `<service>.<namespace>.svc`).
pub async fn post(
    url: &str,
    ca_bundle: &[u8],
    server_name: Option<&str>,
    body: Vec<u8>,
    timeout: Duration,
) -> Result<Bytes, CallError> {
    let shown = format!("Post {}", crate::security::go_quote(url));
    match tokio::time::timeout(timeout, post_inner(url, ca_bundle, server_name, body)).await {
        Ok(Ok(b)) => Ok(b),
        Ok(Err(e)) => Err(CallError(format!("failed to call webhook: {shown}: {e}"))),
        Err(_) => Err(CallError(format!(
            "failed to call webhook: {shown}: context deadline exceeded"
        ))),
    }
}

async fn post_inner(
    url: &str,
    ca_bundle: &[u8],
    server_name: Option<&str>,
    body: Vec<u8>,
) -> Result<Bytes, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("invalid URL: {e}"))?;
    if uri.scheme_str() != Some("https") {
        return Err("webhook URLs must use https".into());
    }
    let host = uri
        .host()
        .ok_or("URL has no host")?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(443);
    let config = tls_config(ca_bundle)?;
    let name = ServerName::try_from(server_name.unwrap_or(&host).to_string())
        .map_err(|e| format!("invalid server name: {e}"))?;
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("dial tcp {host}:{port}: {e}"))?;
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| format!("tls: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| e.to_string())?;
    let driver = tokio::spawn(async move {
        // The connection ends with the exchange; its own error surfaces through send_request.
        let _ = conn.await;
    });
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let authority = uri
        .authority()
        .map(|a| a.as_str())
        .unwrap_or(&host)
        .to_string();
    let request = http::Request::post(path)
        .header(http::header::HOST, authority)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ACCEPT, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string());
    let result = match response {
        Ok(resp) => {
            let status = resp.status();
            let bytes = Limited::new(resp.into_body(), MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|e| format!("reading the response: {e}"))?
                .to_bytes();
            if !status.is_success() {
                Err(format!("the server responded with the status code {} but did not return more information", status.as_u16()))
            } else {
                Ok(bytes)
            }
        }
        Err(e) => Err(e),
    };
    driver.abort();
    result
}
