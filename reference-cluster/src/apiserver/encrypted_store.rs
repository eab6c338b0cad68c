//! Encryption at rest (`--encryption-provider-config`): a [`Store`] in front of the real one
//! that encrypts the values of the configured resources on their way in and decrypts every
//! value on its way out (gets, lists, watches, deletes), so the API server above sees plain
//! objects and the backend only ever holds `k8s:enc:<provider>:v1:<key>:` ciphertext for them.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;

use crate::resources::Catalog;
use crate::security::encryption::EncryptionConfig;
use crate::store::{EventStream, KeyValue, ListResult, Revision, Store, StoreError, StoreResult};

pub struct EncryptedStore {
    inner: Arc<dyn Store>,
    config: Arc<EncryptionConfig>,
    /// `/registry/<storage resource>/` → the resource name the configuration uses, longest
    /// prefix first.
    prefixes: Arc<Vec<(String, String)>>,
}

impl EncryptedStore {
    pub fn new(inner: Arc<dyn Store>, config: EncryptionConfig) -> EncryptedStore {
        let mut prefixes: Vec<(String, String)> = Vec::new();
        for info in Catalog::builtin().all() {
            let prefix = format!("/registry/{}/", info.storage_resource);
            if !prefixes.iter().any(|(p, _)| *p == prefix) {
                prefixes.push((prefix, info.qualified_resource()));
            }
        }
        prefixes.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
        EncryptedStore {
            inner,
            config: Arc::new(config),
            prefixes: Arc::new(prefixes),
        }
    }

    /// The store below, holding what is really written (ciphertext for encrypted resources).
    pub fn inner(&self) -> &Arc<dyn Store> {
        &self.inner
    }
}

/// The resource (`secrets`, `deployments.apps`, `widgets.example.com`) a key belongs to.
fn resource_of(prefixes: &[(String, String)], key: &str) -> Option<String> {
    if let Some((_, r)) = prefixes.iter().find(|(p, _)| key.starts_with(p.as_str())) {
        return Some(r.clone());
    }
    // Custom resources are stored under `/registry/<group>/<plural>/`.
    let rest = key.strip_prefix("/registry/")?;
    let mut parts = rest.split('/');
    let (group, plural) = (parts.next()?, parts.next()?);
    group.contains('.').then(|| format!("{plural}.{group}"))
}

fn seal(
    config: &EncryptionConfig,
    prefixes: &[(String, String)],
    key: &str,
    value: Bytes,
) -> StoreResult<Bytes> {
    let Some(resource) = resource_of(prefixes, key) else {
        return Ok(value);
    };
    if !config.encrypts(&resource) {
        return Ok(value);
    }
    config
        .to_storage(&resource, key, &value)
        .map(Bytes::from)
        .map_err(|e| StoreError::Internal(format!("encrypting {key}: {e}")))
}

fn open(
    config: &EncryptionConfig,
    prefixes: &[(String, String)],
    mut kv: KeyValue,
) -> StoreResult<KeyValue> {
    let resource = resource_of(prefixes, &kv.key).unwrap_or_default();
    let (plain, _stale) = config
        .from_storage(&resource, &kv.key, &kv.value)
        .map_err(|e| StoreError::Internal(format!("decrypting {}: {e}", kv.key)))?;
    kv.value = Bytes::from(plain);
    Ok(kv)
}

impl EncryptedStore {
    fn seal(&self, key: &str, value: Bytes) -> StoreResult<Bytes> {
        seal(&self.config, &self.prefixes, key, value)
    }

    fn open(&self, kv: KeyValue) -> StoreResult<KeyValue> {
        open(&self.config, &self.prefixes, kv)
    }
}

#[async_trait]
impl Store for EncryptedStore {
    async fn get(&self, key: &str) -> StoreResult<Option<KeyValue>> {
        self.inner
            .get(key)
            .await?
            .map(|kv| self.open(kv))
            .transpose()
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        at: Option<Revision>,
        limit: usize,
    ) -> StoreResult<ListResult> {
        let mut list = self.inner.list(prefix, start_after, at, limit).await?;
        list.items = list
            .items
            .into_iter()
            .map(|kv| self.open(kv))
            .collect::<StoreResult<_>>()?;
        Ok(list)
    }

    async fn create(&self, key: &str, value: Bytes) -> StoreResult<KeyValue> {
        let sealed = self.seal(key, value.clone())?;
        let mut kv = self.inner.create(key, sealed).await?;
        kv.value = value;
        Ok(kv)
    }

    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> StoreResult<KeyValue> {
        let sealed = self.seal(key, value.clone())?;
        let mut kv = self.inner.update(key, sealed, expected).await?;
        kv.value = value;
        Ok(kv)
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> StoreResult<KeyValue> {
        let kv = self.inner.delete(key, expected).await?;
        self.open(kv)
    }

    async fn current_revision(&self) -> StoreResult<Revision> {
        self.inner.current_revision().await
    }

    async fn watch(&self, prefix: &str, from: Revision) -> StoreResult<EventStream> {
        let events = self.inner.watch(prefix, from).await?;
        let config = self.config.clone();
        let prefixes = self.prefixes.clone();
        Ok(Box::pin(events.map(move |ev| {
            let mut ev = ev?;
            ev.kv = open(&config, &prefixes, ev.kv)?;
            ev.prev = ev.prev.map(|p| open(&config, &prefixes, p)).transpose()?;
            Ok(ev)
        })))
    }

    async fn compact(&self, revision: Revision) -> StoreResult<()> {
        self.inner.compact(revision).await
    }

    fn compacted_revision(&self) -> Revision {
        self.inner.compacted_revision()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use base64::Engine;

    fn config() -> EncryptionConfig {
        let key = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
        EncryptionConfig::parse(&format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - secretbox:\n      keys:\n      - name: k1\n        secret: {key}\n  - identity: {{}}\n"
        ))
        .unwrap()
    }

    #[tokio::test]
    async fn secrets_are_ciphertext_below_and_plain_above() {
        let raw: Arc<dyn Store> = Arc::new(MemoryStore::new(100));
        let store = EncryptedStore::new(raw.clone(), config());
        let secret = Bytes::from_static(br#"{"data":{"password":"aHVudGVyMg=="}}"#);
        let mut watch = store.watch("/registry/", 0).await.unwrap();
        store
            .create("/registry/secrets/default/db", secret.clone())
            .await
            .unwrap();
        store
            .create("/registry/configmaps/default/c", Bytes::from_static(b"{}"))
            .await
            .unwrap();
        let below = raw
            .get("/registry/secrets/default/db")
            .await
            .unwrap()
            .unwrap();
        assert!(below.value.starts_with(b"k8s:enc:secretbox:v1:k1:"));
        assert!(!below.value.windows(12).any(|w| w == b"aHVudGVyMg=="));
        let cm = raw
            .get("/registry/configmaps/default/c")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            cm.value,
            Bytes::from_static(b"{}"),
            "other resources stay plain"
        );
        let above = store
            .get("/registry/secrets/default/db")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(above.value, secret);
        let listed = store
            .list("/registry/secrets/", None, None, 0)
            .await
            .unwrap();
        assert_eq!(listed.items[0].value, secret);
        let first = watch.next().await.unwrap().unwrap();
        assert_eq!(first.kv.value, secret, "watch events are decrypted");
        let deleted = store
            .delete("/registry/secrets/default/db", None)
            .await
            .unwrap();
        assert_eq!(deleted.value, secret);
    }

    #[test]
    fn maps_keys_to_resources() {
        let store = EncryptedStore::new(Arc::new(MemoryStore::new(1)), config());
        let r = |k: &str| resource_of(&store.prefixes, k);
        assert_eq!(r("/registry/secrets/ns/s").as_deref(), Some("secrets"));
        assert_eq!(
            r("/registry/deployments/ns/d").as_deref(),
            Some("deployments.apps")
        );
        assert_eq!(
            r("/registry/services/specs/ns/s").as_deref(),
            Some("services")
        );
        assert_eq!(
            r("/registry/example.com/widgets/ns/w").as_deref(),
            Some("widgets.example.com")
        );
    }
}
