//! Encryption at rest (`apiserver.config.k8s.io/v1 EncryptionConfiguration`): per resource, an
//! ordered list of providers; the first encrypts new writes, all of them decrypt. Stored bytes
//! carry upstream's prefix, `k8s:enc:aesgcm:v1:<key name>:` + nonce + ciphertext, so a raw
//! store read shows what protects each value.
//!
//! Providers: `aesgcm` (16- or 32-byte keys; AES-GCM via `ring`, the storage key as
//! additional data, as upstream), `secretbox` (XSalsa20-Poly1305, 32-byte keys) and
//! `identity`. `aescbc` and `kms` are refused with a clear error.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::XSalsa20Poly1305;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM, AES_256_GCM};
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::Value;

const PREFIX: &[u8] = b"k8s:enc:";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EncryptionError {
    Config(String),
    /// Stored bytes carry an encryption prefix no configured provider matches.
    NoMatchingProvider,
    /// Authentication failed: wrong key, tampered data, or data moved to another key.
    Decrypt(String),
    Internal(String),
}

impl std::fmt::Display for EncryptionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EncryptionError::Config(m) => write!(f, "encryption configuration: {m}"),
            EncryptionError::NoMatchingProvider => write!(f, "no matching prefix found"),
            EncryptionError::Decrypt(m) => write!(f, "failed to decrypt: {m}"),
            EncryptionError::Internal(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for EncryptionError {}

enum Cipher {
    AesGcm(Box<LessSafeKey>),
    SecretBox(Box<XSalsa20Poly1305>),
}

struct Key {
    /// `k8s:enc:<provider>:v1:<name>:`
    prefix: Vec<u8>,
    cipher: Cipher,
}

enum Provider {
    Identity,
    Keys(Vec<Key>),
}

struct ResourceConfig {
    /// `secrets`, `deployments.apps`, `*.apps`, `*.` (core) or `*.*`.
    resources: Vec<String>,
    providers: Vec<Provider>,
}

/// A parsed EncryptionConfiguration.
pub struct EncryptionConfig {
    entries: Vec<ResourceConfig>,
    rng: SystemRandom,
}

impl std::fmt::Debug for EncryptionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let resources: Vec<&Vec<String>> = self.entries.iter().map(|e| &e.resources).collect();
        f.debug_struct("EncryptionConfig")
            .field("resources", &resources)
            .finish()
    }
}

fn config_err(m: impl Into<String>) -> EncryptionError {
    EncryptionError::Config(m.into())
}

fn parse_keys(provider: &str, body: &Value, path: &str) -> Result<Vec<Key>, EncryptionError> {
    let keys = body
        .get("keys")
        .and_then(Value::as_array)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| config_err(format!("{path}.keys: Required value")))?;
    let mut out = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let name = k.get("name").and_then(Value::as_str).unwrap_or_default();
        if name.is_empty() || name.contains(':') {
            return Err(config_err(format!("{path}.keys[{i}].name: Invalid value: {name:?}: must be non-empty and contain no ':'")));
        }
        let secret = k.get("secret").and_then(Value::as_str).unwrap_or_default();
        let raw = STANDARD
            .decode(secret)
            .map_err(|_| config_err(format!("{path}.keys[{i}].secret: Invalid value: \"REDACTED\": secrets must be base64 encoded")))?;
        let cipher = match provider {
            "aesgcm" => {
                let alg = match raw.len() {
                    16 => &AES_128_GCM,
                    32 => &AES_256_GCM,
                    n => return Err(config_err(format!(
                        "{path}.keys[{i}].secret: Invalid value: \"REDACTED\": aesgcm keys must be 16 or 32 bytes here (got {n}; 24-byte keys are not supported by this implementation)"
                    ))),
                };
                let key =
                    UnboundKey::new(alg, &raw).map_err(|_| config_err("invalid aesgcm key"))?;
                Cipher::AesGcm(Box::new(LessSafeKey::new(key)))
            }
            _ => {
                if raw.len() != 32 {
                    return Err(config_err(format!("{path}.keys[{i}].secret: Invalid value: \"REDACTED\": secretbox keys must be 32 bytes (got {})", raw.len())));
                }
                let cipher = XSalsa20Poly1305::new_from_slice(&raw)
                    .map_err(|_| config_err("invalid secretbox key"))?;
                Cipher::SecretBox(Box::new(cipher))
            }
        };
        out.push(Key {
            prefix: format!("k8s:enc:{provider}:v1:{name}:").into_bytes(),
            cipher,
        });
    }
    Ok(out)
}

impl EncryptionConfig {
    /// Parses the configuration file (YAML or JSON).
    pub fn parse(text: &str) -> Result<EncryptionConfig, EncryptionError> {
        let doc: Value = serde_yaml_ng::from_str(text).map_err(|e| config_err(e.to_string()))?;
        if doc.get("kind").and_then(Value::as_str) != Some("EncryptionConfiguration")
            || doc.get("apiVersion").and_then(Value::as_str) != Some("apiserver.config.k8s.io/v1")
        {
            return Err(config_err(
                "expected kind EncryptionConfiguration, apiVersion apiserver.config.k8s.io/v1",
            ));
        }
        let mut entries = Vec::new();
        for (i, entry) in doc
            .get("resources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let resources: Vec<String> = entry
                .get("resources")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|r| r.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            if resources.is_empty() {
                return Err(config_err(format!(
                    "resources[{i}].resources: Required value"
                )));
            }
            let mut providers = Vec::new();
            for (j, p) in entry
                .get("providers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let path = format!("resources[{i}].providers[{j}]");
                let obj = p.as_object().filter(|o| o.len() == 1).ok_or_else(|| {
                    config_err(format!(
                        "{path}: exactly one provider must be configured per entry"
                    ))
                })?;
                let (name, body) = obj
                    .iter()
                    .next()
                    .ok_or_else(|| config_err(format!("{path}: empty")))?;
                providers.push(match name.as_str() {
                    "identity" => Provider::Identity,
                    "aesgcm" | "secretbox" => Provider::Keys(parse_keys(name, body, &format!("{path}.{name}"))?),
                    other => return Err(config_err(format!("{path}: provider {other:?} is not supported (supported: aesgcm, secretbox, identity)"))),
                });
            }
            if providers.is_empty() {
                return Err(config_err(format!(
                    "resources[{i}].providers: Required value"
                )));
            }
            entries.push(ResourceConfig {
                resources,
                providers,
            });
        }
        Ok(EncryptionConfig {
            entries,
            rng: SystemRandom::new(),
        })
    }

    pub fn load(path: &std::path::Path) -> Result<EncryptionConfig, EncryptionError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| config_err(format!("reading {}: {e}", path.display())))?;
        Self::parse(&text)
    }

    /// The providers for `resource` (`secrets`, `deployments.apps`): the first entry that names
    /// it exactly, by group wildcard (`*.apps`, `*.` for core) or `*.*`.
    fn providers_for(&self, resource: &str) -> Option<&[Provider]> {
        let (plural, group) = resource.split_once('.').unwrap_or((resource, ""));
        self.entries
            .iter()
            .find(|e| {
                e.resources.iter().any(|r| {
                    r == resource
                        || r == "*.*"
                        || r.strip_prefix("*.").is_some_and(|g| g == group)
                        || (group.is_empty() && r == plural)
                })
            })
            .map(|e| e.providers.as_slice())
    }

    /// Whether values of `resource` are written encrypted.
    pub fn encrypts(&self, resource: &str) -> bool {
        matches!(
            self.providers_for(resource).and_then(|p| p.first()),
            Some(Provider::Keys(_))
        )
    }

    /// Encrypts a value of `resource` stored under `storage_key` with the first provider.
    pub fn to_storage(
        &self,
        resource: &str,
        storage_key: &str,
        plain: &[u8],
    ) -> Result<Vec<u8>, EncryptionError> {
        let Some(Provider::Keys(keys)) = self.providers_for(resource).and_then(|p| p.first())
        else {
            return Ok(plain.to_vec());
        };
        let key = keys
            .first()
            .ok_or_else(|| EncryptionError::Internal("provider without keys".into()))?;
        let mut out = key.prefix.clone();
        match &key.cipher {
            Cipher::AesGcm(k) => {
                let mut nonce = [0u8; 12];
                self.rng
                    .fill(&mut nonce)
                    .map_err(|_| EncryptionError::Internal("no randomness".into()))?;
                let mut buf = plain.to_vec();
                k.seal_in_place_append_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(storage_key.as_bytes()),
                    &mut buf,
                )
                .map_err(|_| EncryptionError::Internal("aes-gcm seal failed".into()))?;
                out.extend_from_slice(&nonce);
                out.extend_from_slice(&buf);
            }
            Cipher::SecretBox(c) => {
                let mut nonce = [0u8; 24];
                self.rng
                    .fill(&mut nonce)
                    .map_err(|_| EncryptionError::Internal("no randomness".into()))?;
                let sealed = c
                    .encrypt(&nonce.into(), plain)
                    .map_err(|_| EncryptionError::Internal("secretbox seal failed".into()))?;
                out.extend_from_slice(&nonce);
                out.extend_from_slice(&sealed);
            }
        }
        Ok(out)
    }

    /// Decrypts a stored value. The flag is true when it was not written by the current
    /// write key (so the server may rewrite it, as upstream's "stale" reads).
    pub fn from_storage(
        &self,
        resource: &str,
        storage_key: &str,
        stored: &[u8],
    ) -> Result<(Vec<u8>, bool), EncryptionError> {
        let Some(providers) = self.providers_for(resource) else {
            if stored.starts_with(PREFIX) {
                return Err(EncryptionError::NoMatchingProvider);
            }
            return Ok((stored.to_vec(), false));
        };
        let mut first = true;
        let mut identity_listed = false;
        for p in providers {
            match p {
                Provider::Identity => identity_listed = true,
                Provider::Keys(keys) => {
                    for key in keys {
                        if let Some(body) = stored.strip_prefix(key.prefix.as_slice()) {
                            return decrypt(key, storage_key, body).map(|v| (v, !first));
                        }
                        first = false;
                    }
                }
            }
            first = false;
        }
        if identity_listed && !stored.starts_with(PREFIX) {
            let stale = !matches!(providers.first(), Some(Provider::Identity));
            return Ok((stored.to_vec(), stale));
        }
        Err(EncryptionError::NoMatchingProvider)
    }
}

fn decrypt(key: &Key, storage_key: &str, body: &[u8]) -> Result<Vec<u8>, EncryptionError> {
    match &key.cipher {
        Cipher::AesGcm(k) => {
            if body.len() < 12 + 16 {
                return Err(EncryptionError::Decrypt(
                    "the stored data was shorter than the required size".into(),
                ));
            }
            let (nonce, sealed) = body.split_at(12);
            let nonce = Nonce::try_assume_unique_for_key(nonce)
                .map_err(|_| EncryptionError::Decrypt("bad nonce".into()))?;
            let mut buf = sealed.to_vec();
            let plain = k
                .open_in_place(nonce, Aad::from(storage_key.as_bytes()), &mut buf)
                .map_err(|_| {
                    EncryptionError::Decrypt("cipher: message authentication failed".into())
                })?;
            Ok(plain.to_vec())
        }
        Cipher::SecretBox(c) => {
            if body.len() < 24 + 16 {
                return Err(EncryptionError::Decrypt(
                    "the stored data was shorter than the required size".into(),
                ));
            }
            let (nonce, sealed) = body.split_at(24);
            let nonce: [u8; 24] = nonce
                .try_into()
                .map_err(|_| EncryptionError::Decrypt("bad nonce".into()))?;
            c.decrypt(&nonce.into(), sealed).map_err(|_| {
                EncryptionError::Decrypt("output array was not large enough for encryption".into())
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: usize, fill: u8) -> String {
        STANDARD.encode(vec![fill; n])
    }

    fn config(providers: &str) -> EncryptionConfig {
        EncryptionConfig::parse(&format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets, '*.apps']\n  providers:\n{providers}"
        ))
        .unwrap()
    }

    const SK: &str = "/registry/secrets/default/s";

    #[test]
    fn aesgcm_round_trips_with_upstream_prefix() {
        let c = config(&format!("  - aesgcm:\n      keys:\n      - name: key1\n        secret: {}\n  - identity: {{}}\n", key(32, 7)));
        let stored = c
            .to_storage("secrets", SK, b"{\"data\":{\"k\":\"czNjcjN0\"}}")
            .unwrap();
        assert!(stored.starts_with(b"k8s:enc:aesgcm:v1:key1:"));
        assert!(!stored.windows(8).any(|w| w == b"czNjcjN0"));
        assert_eq!(
            c.from_storage("secrets", SK, &stored).unwrap(),
            (b"{\"data\":{\"k\":\"czNjcjN0\"}}".to_vec(), false)
        );
        // The storage key is authenticated: a value copied under another key does not decrypt.
        assert!(matches!(
            c.from_storage("secrets", "/registry/secrets/default/other", &stored),
            Err(EncryptionError::Decrypt(_))
        ));
        // Unencrypted data written before encryption was enabled still reads (identity listed), as stale.
        assert_eq!(
            c.from_storage("secrets", SK, b"plain").unwrap(),
            (b"plain".to_vec(), true)
        );
        // Other resources are untouched.
        assert_eq!(
            c.to_storage("configmaps", "/registry/configmaps/a/b", b"x")
                .unwrap(),
            b"x".to_vec()
        );
        assert!(c.encrypts("deployments.apps") && !c.encrypts("configmaps"));
    }

    #[test]
    fn secretbox_round_trips_and_detects_tampering() {
        let c = config(&format!(
            "  - secretbox:\n      keys:\n      - name: sb\n        secret: {}\n",
            key(32, 1)
        ));
        let mut stored = c.to_storage("secrets", SK, b"hello").unwrap();
        assert!(stored.starts_with(b"k8s:enc:secretbox:v1:sb:"));
        assert_eq!(c.from_storage("secrets", SK, &stored).unwrap().0, b"hello");
        let last = stored.len() - 1;
        stored[last] ^= 1;
        assert!(c.from_storage("secrets", SK, &stored).is_err());
        // Without identity, plaintext is refused.
        assert_eq!(
            c.from_storage("secrets", SK, b"plain"),
            Err(EncryptionError::NoMatchingProvider)
        );
        assert!(c
            .from_storage("secrets", SK, b"k8s:enc:secretbox:v1:sb:short")
            .is_err());
    }

    #[test]
    fn key_rotation_reads_old_keys_as_stale() {
        let old = config(&format!(
            "  - aesgcm:\n      keys:\n      - name: old\n        secret: {}\n",
            key(16, 2)
        ));
        let stored = old.to_storage("secrets", SK, b"v").unwrap();
        let rotated = config(&format!(
            "  - aesgcm:\n      keys:\n      - name: new\n        secret: {}\n      - name: old\n        secret: {}\n",
            key(32, 3),
            key(16, 2)
        ));
        assert_eq!(
            rotated.from_storage("secrets", SK, &stored).unwrap(),
            (b"v".to_vec(), true)
        );
        assert!(rotated
            .to_storage("secrets", SK, b"v")
            .unwrap()
            .starts_with(b"k8s:enc:aesgcm:v1:new:"));
        let identity_first = config(&format!(
            "  - identity: {{}}\n  - aesgcm:\n      keys:\n      - name: old\n        secret: {}\n",
            key(16, 2)
        ));
        assert_eq!(
            identity_first.to_storage("secrets", SK, b"v").unwrap(),
            b"v".to_vec()
        );
        assert_eq!(
            identity_first.from_storage("secrets", SK, &stored).unwrap(),
            (b"v".to_vec(), true)
        );
    }

    #[test]
    fn refuses_bad_configurations() {
        let bad = |providers: &str| {
            EncryptionConfig::parse(&format!("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n{providers}")).is_err()
        };
        assert!(bad(&format!(
            "  - aesgcm:\n      keys:\n      - name: k\n        secret: {}\n",
            key(20, 1)
        )));
        assert!(bad(&format!(
            "  - secretbox:\n      keys:\n      - name: k\n        secret: {}\n",
            key(16, 1)
        )));
        assert!(bad(
            "  - aesgcm:\n      keys:\n      - name: k\n        secret: '%%%'\n"
        ));
        assert!(bad("  - kms:\n      name: x\n"));
        assert!(bad("  - aesgcm:\n      keys: []\n"));
        assert!(bad(&format!(
            "  - aesgcm:\n      keys:\n      - name: 'a:b'\n        secret: {}\n",
            key(16, 1)
        )));
        assert!(EncryptionConfig::parse("kind: Other").is_err());
    }
}
