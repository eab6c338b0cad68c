//! The cluster's certificate authority: a self-generated CA (rcgen), the API server's serving
//! certificate and client certificates whose subject carries the identity Kubernetes reads
//! (user = CN, groups = O). Kept on disk so a restarted cluster keeps its identity and old
//! kubeconfigs stay valid.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

/// PEM-encoded certificate and private key.
#[derive(Clone, Debug)]
pub struct CertPair {
    pub cert_pem: String,
    pub key_pem: String,
}

/// The CA plus the certificates the cluster itself needs.
#[derive(Clone, Debug)]
pub struct Pki {
    pub dir: PathBuf,
    pub ca: CertPair,
    pub server: CertPair,
    pub admin: CertPair,
}

const CA: &str = "ca";
const SERVER: &str = "apiserver";
const ADMIN: &str = "admin";

impl Pki {
    /// Loads the PKI from `dir`, creating whatever is missing. The serving certificate covers
    /// `localhost`, the in-cluster service names and every address in `ips`.
    pub fn load_or_create(dir: &Path, ips: &[std::net::IpAddr]) -> Result<Pki> {
        fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the PKI directory {}", dir.display()))?;
        let ca = match read_pair(dir, CA)? {
            Some(pair) => pair,
            None => write_pair(dir, CA, &new_ca()?)?,
        };
        let server = match read_pair(dir, SERVER)? {
            Some(pair) => pair,
            None => write_pair(dir, SERVER, &issue_server(&ca, ips)?)?,
        };
        let admin = match read_pair(dir, ADMIN)? {
            Some(pair) => pair,
            None => write_pair(
                dir,
                ADMIN,
                &issue_client(&ca, "kubernetes-admin", &["system:masters"])?,
            )?,
        };
        Ok(Pki {
            dir: dir.to_path_buf(),
            ca,
            server,
            admin,
        })
    }

    /// A serving certificate for a component's own HTTPS port (e.g. the scheduler's secure
    /// port), named `name`, for `localhost`, the loopback addresses and `ips`; signed by the
    /// cluster CA so clients that trust the cluster trust it. Not kept on disk: each start
    /// issues a new one, as kube-scheduler self-signs one when given none.
    pub fn issue_serving(&self, name: &str, ips: &[std::net::IpAddr]) -> Result<CertPair> {
        issue_serving(&self.ca, name, &["localhost".to_string()], ips)
    }

    /// A client certificate for `user` in `groups`, signed by the cluster CA.
    pub fn issue_client(&self, user: &str, groups: &[&str]) -> Result<CertPair> {
        issue_client(&self.ca, user, groups)
    }
}

/// The user name of the aggregator's client certificate, which extension API servers accept
/// in `requestheader-allowed-names`.
pub const FRONT_PROXY_CLIENT: &str = "front-proxy-client";

/// The front proxy's own CA and its client certificate (kubeadm's `front-proxy-ca` and
/// `front-proxy-client`). A CA apart from the cluster's: an extension API server trusts a
/// certificate from it to vouch for the `X-Remote-*` identity headers, which no ordinary
/// client certificate of the cluster may do.
#[derive(Clone, Debug)]
pub struct FrontProxy {
    pub ca: CertPair,
    pub client: CertPair,
}

/// Loads the front proxy's CA and client certificate from `dir`, creating what is missing.
pub fn load_or_create_front_proxy(dir: &Path) -> Result<FrontProxy> {
    fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the PKI directory {}", dir.display()))?;
    let ca = match read_pair(dir, "front-proxy-ca")? {
        Some(pair) => pair,
        None => write_pair(dir, "front-proxy-ca", &new_ca_named("front-proxy-ca")?)?,
    };
    let client = match read_pair(dir, FRONT_PROXY_CLIENT)? {
        Some(pair) => pair,
        None => write_pair(
            dir,
            FRONT_PROXY_CLIENT,
            &issue_client(&ca, FRONT_PROXY_CLIENT, &[])?,
        )?,
    };
    Ok(FrontProxy { ca, client })
}

fn read_pair(dir: &Path, name: &str) -> Result<Option<CertPair>> {
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    if !cert.exists() || !key.exists() {
        return Ok(None);
    }
    let read =
        |p: &Path| fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()));
    Ok(Some(CertPair {
        cert_pem: read(&cert)?,
        key_pem: read(&key)?,
    }))
}

fn write_pair(dir: &Path, name: &str, pair: &CertPair) -> Result<CertPair> {
    write_private(&dir.join(format!("{name}.crt")), pair.cert_pem.as_bytes())?;
    write_private(&dir.join(format!("{name}.key")), pair.key_pem.as_bytes())?;
    Ok(pair.clone())
}

/// Writes a file readable only by its owner (keys and kubeconfigs hold credentials), atomically
/// so that a crash never leaves half a key behind.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(contents)?;
    f.sync_all()?;
    fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn new_ca() -> Result<CertPair> {
    new_ca_named("kubeproof-ca")
}

fn new_ca_named(common_name: &str) -> Result<CertPair> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = dn(common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_after = rcgen::date_time_ymd(2099, 1, 1);
    let cert = params.self_signed(&key)?;
    Ok(CertPair {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn issuer(ca: &CertPair) -> Result<Issuer<'static, KeyPair>> {
    let key = KeyPair::from_pem(&ca.key_pem).context("the CA key is not valid PEM")?;
    Issuer::from_ca_cert_pem(&ca.cert_pem, key).context("the CA certificate is not valid PEM")
}

fn issue_server(ca: &CertPair, ips: &[std::net::IpAddr]) -> Result<CertPair> {
    let names = [
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    ]
    .map(str::to_string);
    issue_serving(ca, "kube-apiserver", &names, ips)
}

fn issue_serving(
    ca: &CertPair,
    common_name: &str,
    dns_names: &[String],
    ips: &[std::net::IpAddr],
) -> Result<CertPair> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(dns_names.to_vec())?;
    let mut all_ips: Vec<std::net::IpAddr> = vec![
        std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::Ipv6Addr::LOCALHOST.into(),
    ];
    all_ips.extend(ips.iter().copied());
    all_ips.dedup();
    for ip in all_ips {
        params.subject_alt_names.push(SanType::IpAddress(ip));
    }
    params.distinguished_name = dn(common_name);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.not_after = rcgen::date_time_ymd(2099, 1, 1);
    let cert = params.signed_by(&key, &issuer(ca)?)?;
    Ok(CertPair {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn issue_client(ca: &CertPair, user: &str, groups: &[&str]) -> Result<CertPair> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = dn(user);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.not_after = rcgen::date_time_ymd(2099, 1, 1);
    let cert = params.signed_by(&key, &issuer(ca)?)?;
    // rcgen keeps one value per attribute type, but Kubernetes reads every O as a group: put
    // the full subject in and sign again with the CA key.
    let der = subject::replace_subject(cert.der(), &ca.key_pem, user, groups)?;
    Ok(CertPair {
        cert_pem: subject::pem("CERTIFICATE", &der),
        key_pem: key.serialize_pem(),
    })
}

/// Certificate subjects with repeated attributes (several `O=` groups), which rcgen's
/// distinguished-name map cannot express: the TBS certificate gets a new subject and a new
/// ECDSA P-256 signature from the CA key.
mod subject {
    use anyhow::{bail, Context, Result};
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};

    const OID_CN: [u8; 3] = [0x55, 0x04, 0x03];
    const OID_O: [u8; 3] = [0x55, 0x04, 0x0a];

    fn der_len(n: usize) -> Vec<u8> {
        if n < 0x80 {
            return vec![n as u8];
        }
        let bytes = n.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let mut out = vec![0x80 | (bytes.len() - skip) as u8];
        out.extend_from_slice(&bytes[skip..]);
        out
    }

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        out.extend(der_len(content.len()));
        out.extend_from_slice(content);
        out
    }

    /// (tag, header length, content length) of the element at the start of `buf`.
    fn header(buf: &[u8]) -> Result<(u8, usize, usize)> {
        let tag = *buf.first().context("truncated DER")?;
        let first = *buf.get(1).context("truncated DER")?;
        if first < 0x80 {
            return Ok((tag, 2, first as usize));
        }
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || buf.len() < 2 + n {
            bail!("unsupported DER length");
        }
        let len = buf[2..2 + n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        Ok((tag, 2 + n, len))
    }

    /// The consecutive elements of `buf`, each with its header.
    fn elements(mut buf: &[u8]) -> Result<Vec<&[u8]>> {
        let mut out = Vec::new();
        while !buf.is_empty() {
            let (_, h, l) = header(buf)?;
            if buf.len() < h + l {
                bail!("truncated DER element");
            }
            out.push(&buf[..h + l]);
            buf = &buf[h + l..];
        }
        Ok(out)
    }

    fn name(cn: &str, orgs: &[&str]) -> Vec<u8> {
        let attr = |oid: &[u8], value: &str| {
            let mut seq = tlv(0x06, oid);
            seq.extend(tlv(0x0c, value.as_bytes()));
            tlv(0x31, &tlv(0x30, &seq))
        };
        let mut rdns = Vec::new();
        for o in orgs {
            rdns.extend(attr(&OID_O, o));
        }
        rdns.extend(attr(&OID_CN, cn));
        tlv(0x30, &rdns)
    }

    pub fn replace_subject(
        cert: &[u8],
        ca_key_pem: &str,
        cn: &str,
        orgs: &[&str],
    ) -> Result<Vec<u8>> {
        let (_, h, l) = header(cert)?;
        let outer = elements(cert.get(h..h + l).context("truncated certificate")?)?;
        let [tbs, alg, _sig] = outer.as_slice() else {
            bail!("a certificate has three parts");
        };
        let (_, th, _) = header(tbs)?;
        let mut parts: Vec<Vec<u8>> = elements(&tbs[th..])?
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect();
        // version [0], serial, signature algorithm, issuer, validity, subject, …
        let subject = if parts.first().map(|p| p[0]) == Some(0xa0) {
            5
        } else {
            4
        };
        *parts
            .get_mut(subject)
            .context("the certificate has no subject")? = name(cn, orgs);
        let new_tbs = tlv(0x30, &parts.concat());
        let key = rustls_pemfile::private_key(&mut std::io::BufReader::new(ca_key_pem.as_bytes()))
            .context("the CA key is not valid PEM")?
            .context("no CA key in PEM")?;
        let rng = SystemRandom::new();
        let signer =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, key.secret_der(), &rng)
                .map_err(|e| anyhow::anyhow!("the CA key is not an ECDSA P-256 key: {e}"))?;
        let sig = signer
            .sign(&rng, &new_tbs)
            .map_err(|e| anyhow::anyhow!("signing failed: {e}"))?;
        let mut bits = vec![0u8];
        bits.extend_from_slice(sig.as_ref());
        let mut body = new_tbs;
        body.extend_from_slice(alg);
        body.extend(tlv(0x03, &bits));
        Ok(tlv(0x30, &body))
    }

    pub fn pem(label: &str, der: &[u8]) -> String {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let mut out = format!("-----BEGIN {label}-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
            out.push('\n');
        }
        out.push_str(&format!("-----END {label}-----\n"));
        out
    }
}

fn dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

/// A kubeconfig for `server` that trusts the cluster CA and authenticates with `client`.
pub fn kubeconfig(server: &str, ca_pem: &str, client: &CertPair, user: &str) -> String {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    let doc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kubeproof", "cluster": {
            "server": server,
            "certificate-authority-data": b64(ca_pem),
        }}],
        "users": [{"name": user, "user": {
            "client-certificate-data": b64(&client.cert_pem),
            "client-key-data": b64(&client.key_pem),
        }}],
        "contexts": [{"name": "kubeproof", "context": {"cluster": "kubeproof", "user": user}}],
        "current-context": "kubeproof",
        "preferences": {},
    });
    serde_yaml_ng::to_string(&doc).expect("a JSON value always serialises to YAML")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_then_reloads_the_same_ca() {
        let dir = tempfile::tempdir().unwrap();
        let first = Pki::load_or_create(dir.path(), &[]).unwrap();
        let second = Pki::load_or_create(dir.path(), &[]).unwrap();
        assert_eq!(first.ca.cert_pem, second.ca.cert_pem);
        assert_eq!(first.admin.cert_pem, second.admin.cert_pem);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &fs::metadata(dir.path().join("ca.key"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn client_certificate_carries_user_and_groups() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::load_or_create(dir.path(), &[]).unwrap();
        let pair = pki.issue_client("alice", &["dev", "ops"]).unwrap();
        let der = pem_to_der(&pair.cert_pem);
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        let cn: Vec<_> = cert
            .subject()
            .iter_common_name()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        let orgs: Vec<_> = cert
            .subject()
            .iter_organization()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        assert_eq!(cn, vec!["alice"]);
        assert_eq!(orgs, vec!["dev", "ops"]);
        // Still signed by the cluster CA.
        let ca_der = pem_to_der(&pki.ca.cert_pem);
        let (_, ca) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
        cert.verify_signature(Some(ca.public_key()))
            .expect("signed by the CA");
    }

    fn pem_to_der(pem: &str) -> Vec<u8> {
        let mut reader = std::io::BufReader::new(pem.as_bytes());
        let der = rustls_pemfile::certs(&mut reader).next().unwrap().unwrap();
        der.to_vec()
    }
}
