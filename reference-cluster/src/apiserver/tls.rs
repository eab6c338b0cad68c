//! HTTPS for the API server: rustls with ALPN h2 + http/1.1 as kubectl expects. Client
//! certificates are requested but, as kube-apiserver's `RequestClientCert`, not judged during
//! the handshake: a certificate from another CA or an expired one must get a 401 from the
//! authenticator, not a TLS alert. The handshake still proves the client holds the key of the
//! certificate it sent; [`ClientCertificate::of`] then checks the chain against the cluster CA.

use std::sync::Arc;

use anyhow::{Context, Result};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};

use crate::pki::Pki;

use super::auth::UserInfo;

/// The client certificate of a connection, as the authenticator sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientCertificate {
    /// None was sent.
    None,
    /// Signed by the cluster CA and valid now: its identity.
    Valid(UserInfo),
    /// Sent but not acceptable (unknown CA, expired, no usable subject): 401.
    Invalid,
}

/// Requests a client certificate and checks the handshake signature with it, leaving the
/// chain to [`ClientCertificate::of`].
#[derive(Debug)]
struct RequestClientCert {
    chain: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for RequestClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.chain.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.chain.supported_verify_schemes()
    }
}

/// The TLS configuration and the verifier of client certificate chains.
pub struct Tls {
    pub config: Arc<ServerConfig>,
    pub client_chain: Arc<dyn ClientCertVerifier>,
}

pub fn server_config(pki: &Pki) -> Result<Tls> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for ca in certs(&pki.ca.cert_pem)? {
        roots
            .add(ca)
            .context("the cluster CA certificate is not usable")?;
    }
    let chain = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .context("cannot build the client certificate verifier")?;
    let verifier = Arc::new(RequestClientCert {
        chain: chain.clone(),
    });
    let key = private_key(&pki.server.key_pem)?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("no TLS protocol versions available")?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs(&pki.server.cert_pem)?, key)
        .context("the API server certificate or key is not valid")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Tls {
        config: Arc::new(config),
        client_chain: chain,
    })
}

impl ClientCertificate {
    /// Judges the certificates a client presented (leaf first) with `chain`.
    pub fn of(
        presented: Option<&[CertificateDer<'static>]>,
        chain: &dyn ClientCertVerifier,
    ) -> ClientCertificate {
        let Some((leaf, intermediates)) = presented.and_then(|c| c.split_first()) else {
            return ClientCertificate::None;
        };
        if let Err(e) = chain.verify_client_cert(leaf, intermediates, UnixTime::now()) {
            tracing::debug!("client certificate refused: {e}");
            return ClientCertificate::Invalid;
        }
        match identity_from_certificate(leaf.as_ref()) {
            Some(user) => ClientCertificate::Valid(user),
            None => ClientCertificate::Invalid,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn der(pem: &str) -> Vec<CertificateDer<'static>> {
        certs(pem).unwrap()
    }

    #[test]
    fn judges_chains_against_the_cluster_ca() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::load_or_create(dir.path(), &[]).unwrap();
        let other_dir = tempfile::tempdir().unwrap();
        let other = Pki::load_or_create(other_dir.path(), &[]).unwrap();
        let tls = server_config(&pki).unwrap();
        let ours = der(&pki.issue_client("alice", &["dev"]).unwrap().cert_pem);
        match ClientCertificate::of(Some(&ours), tls.client_chain.as_ref()) {
            ClientCertificate::Valid(u) => {
                assert_eq!(u.name, "alice");
                assert_eq!(u.groups, vec!["dev", "system:authenticated"]);
            }
            other => panic!("expected a valid identity, got {other:?}"),
        }
        let theirs = der(&other
            .issue_client("mallory", &["system:masters"])
            .unwrap()
            .cert_pem);
        assert_eq!(
            ClientCertificate::of(Some(&theirs), tls.client_chain.as_ref()),
            ClientCertificate::Invalid
        );
        assert_eq!(
            ClientCertificate::of(None, tls.client_chain.as_ref()),
            ClientCertificate::None
        );
    }
}
