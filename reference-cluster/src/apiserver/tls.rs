//! HTTPS for the API server: rustls with the cluster CA as the trust root for client
//! certificates (optional, so that anonymous requests reach the authenticator and get a proper
//! 401), ALPN h2 + http/1.1 as kubectl expects.

use std::sync::Arc;

use anyhow::{Context, Result};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::ServerConfig;

use crate::pki::Pki;

use super::auth::UserInfo;

pub fn server_config(pki: &Pki) -> Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for ca in certs(&pki.ca.cert_pem)? {
        roots.add(ca).context("the cluster CA certificate is not usable")?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .context("cannot build the client certificate verifier")?;
    let key = private_key(&pki.server.key_pem)?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("no TLS protocol versions available")?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs(&pki.server.cert_pem)?, key)
        .context("the API server certificate or key is not valid")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn certs(pem: &str) -> Result<Vec<CertificateDer<'static>>> {
    let mut reader = std::io::BufReader::new(pem.as_bytes());
    rustls_pemfile::certs(&mut reader)
        .collect::<Result<Vec<_>, _>>()
        .context("invalid certificate PEM")
}

fn private_key(pem: &str) -> Result<PrivateKeyDer<'static>> {
    let mut reader = std::io::BufReader::new(pem.as_bytes());
    rustls_pemfile::private_key(&mut reader)
        .context("invalid private key PEM")?
        .context("no private key in PEM")
}

/// The identity in a verified client certificate: user = CN, groups = O (as upstream).
pub fn identity_from_certificate(der: &[u8]) -> Option<UserInfo> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())?
        .to_string();
    let mut groups: Vec<String> = cert
        .subject()
        .iter_organization()
        .filter_map(|a| a.as_str().ok().map(str::to_string))
        .collect();
    groups.push("system:authenticated".to_string());
    Some(UserInfo {
        name,
        groups,
        ..Default::default()
    })
}
