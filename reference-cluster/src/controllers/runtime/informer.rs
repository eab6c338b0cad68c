//! Shared informers: one watch (kube-runtime's watcher: list, then watch, relist after an
//! expired resourceVersion) per kind, a cache indexed by namespace, and handlers that
//! controllers register to turn changes into work-queue keys. A relist is compared with the
//! cache so handlers see the same add/update/delete stream as with an unbroken watch.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use futures::StreamExt;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Resource, ResourceExt};
use parking_lot::RwLock;
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// One observed change. Handlers get the object as cached (shared, never copied).
pub enum Change<K> {
    Add(Arc<K>),
    Update { old: Arc<K>, new: Arc<K> },
    Delete(Arc<K>),
}

type Handler<K> = Arc<dyn Fn(&Change<K>) + Send + Sync>;

/// Objects by namespace ("" for cluster-scoped ones), then by name.
type Cache<K> = HashMap<String, HashMap<String, Arc<K>>>;

struct Inner<K> {
    api: Api<K>,
    config: watcher::Config,
    cache: RwLock<Cache<K>>,
    handlers: RwLock<Vec<Handler<K>>>,
    synced: watch::Sender<bool>,
}

/// A cheap-to-clone handle on one shared informer.
pub struct Informer<K> {
    inner: Arc<Inner<K>>,
}

impl<K> Clone for Informer<K> {
    fn clone(&self) -> Self {
        Informer {
            inner: self.inner.clone(),
        }
    }
}

/// The `namespace/name` key of an object (`name` when cluster-scoped), as client-go's
/// `MetaNamespaceKeyFunc`.
pub fn key_of<K: Resource>(obj: &K) -> String {
    let meta = obj.meta();
    let name = meta.name.as_deref().unwrap_or_default();
    match meta.namespace.as_deref().filter(|n| !n.is_empty()) {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    }
}

/// Splits a key made by [`key_of`] into namespace ("" if none) and name.
pub fn split_key(key: &str) -> (&str, &str) {
    match key.split_once('/') {
        Some((ns, name)) => (ns, name),
        None => ("", key),
    }
}

impl<K> Informer<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    pub fn new(api: Api<K>, config: watcher::Config) -> Self {
        let (synced, _) = watch::channel(false);
        Informer {
            inner: Arc::new(Inner {
                api,
                config,
                cache: RwLock::new(HashMap::new()),
                handlers: RwLock::new(Vec::new()),
                synced,
            }),
        }
    }

    /// Registers a handler; register before `start` to see the initial list as adds.
    pub fn add_handler(&self, f: impl Fn(&Change<K>) + Send + Sync + 'static) {
        self.inner.handlers.write().push(Arc::new(f));
    }

    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<K>> {
        self.inner
            .cache
            .read()
            .get(namespace)
            .and_then(|m| m.get(name))
            .cloned()
    }

    pub fn get_by_key(&self, key: &str) -> Option<Arc<K>> {
        let (ns, name) = split_key(key);
        self.get(ns, name)
    }

    pub fn list_namespace(&self, namespace: &str) -> Vec<Arc<K>> {
        self.inner
            .cache
            .read()
            .get(namespace)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    pub fn list(&self) -> Vec<Arc<K>> {
        self.inner
            .cache
            .read()
            .values()
            .flat_map(|m| m.values().cloned())
            .collect()
    }

    pub fn len(&self) -> usize {
        self.inner.cache.read().values().map(HashMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn has_synced(&self) -> bool {
        *self.inner.synced.borrow()
    }

    /// Waits for the first complete list; false if `stop` turned true first.
    pub async fn wait_synced(&self, stop: &mut watch::Receiver<bool>) -> bool {
        let mut rx = self.inner.synced.subscribe();
        loop {
            if *rx.borrow_and_update() {
                return true;
            }
            if *stop.borrow() {
                return false;
            }
            tokio::select! {
                r = rx.changed() => if r.is_err() { return false },
                r = stop.changed() => if r.is_err() { return false },
            }
        }
    }

    fn notify(&self, change: Change<K>) {
        let handlers: Vec<Handler<K>> = self.inner.handlers.read().clone();
        for h in handlers {
            h(&change);
        }
    }

    fn apply(&self, obj: K) {
        let ns = obj.namespace().unwrap_or_default();
        let name = obj.name_any();
        let new = Arc::new(obj);
        let old = self
            .inner
            .cache
            .write()
            .entry(ns)
            .or_default()
            .insert(name, new.clone());
        match old {
            Some(old) => self.notify(Change::Update { old, new }),
            None => self.notify(Change::Add(new)),
        }
    }

    fn delete(&self, obj: K) {
        let ns = obj.namespace().unwrap_or_default();
        let name = obj.name_any();
        let removed = {
            let mut cache = self.inner.cache.write();
            let removed = cache.get_mut(&ns).and_then(|m| m.remove(&name));
            if cache.get(&ns).is_some_and(HashMap::is_empty) {
                cache.remove(&ns);
            }
            removed
        };
        // The final state from the watch is newer than what we cached.
        if removed.is_some() {
            self.notify(Change::Delete(Arc::new(obj)));
        }
    }

    /// Replaces the cache with a fresh list, telling handlers what changed.
    fn replace(&self, listed: Vec<K>) {
        let mut fresh: Cache<K> = HashMap::new();
        for o in listed {
            let ns = o.namespace().unwrap_or_default();
            fresh
                .entry(ns)
                .or_default()
                .insert(o.name_any(), Arc::new(o));
        }
        let old = std::mem::replace(&mut *self.inner.cache.write(), fresh.clone());
        for (ns, objs) in &fresh {
            for (name, new) in objs {
                match old.get(ns).and_then(|m| m.get(name)) {
                    None => self.notify(Change::Add(new.clone())),
                    Some(o) => {
                        if o.meta().resource_version != new.meta().resource_version
                            || o.meta().uid != new.meta().uid
                        {
                            self.notify(Change::Update {
                                old: o.clone(),
                                new: new.clone(),
                            })
                        }
                    }
                }
            }
        }
        for (ns, objs) in old {
            for (name, o) in objs {
                if !fresh.get(&ns).is_some_and(|m| m.contains_key(&name)) {
                    self.notify(Change::Delete(o));
                }
            }
        }
        self.inner.synced.send_replace(true);
    }

    /// Runs the watch until `stop` turns true.
    pub fn start(&self, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut stream = watcher::watcher(this.inner.api.clone(), this.inner.config.clone())
                .default_backoff()
                .boxed();
            let mut listing: Vec<K> = Vec::new();
            loop {
                if *stop.borrow() {
                    break;
                }
                let ev = tokio::select! {
                    ev = stream.next() => ev,
                    r = stop.changed() => {
                        if r.is_err() {
                            break;
                        }
                        continue;
                    }
                };
                match ev {
                    None => break,
                    Some(Err(e)) => {
                        tracing::debug!(kind = %K::kind(&()), error = %e, "watch error; retrying");
                    }
                    Some(Ok(Event::Init)) => listing.clear(),
                    Some(Ok(Event::InitApply(o))) => listing.push(o),
                    Some(Ok(Event::InitDone)) => this.replace(std::mem::take(&mut listing)),
                    Some(Ok(Event::Apply(o))) => this.apply(o),
                    Some(Ok(Event::Delete(o))) => this.delete(o),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use parking_lot::Mutex;

    fn cm(ns: &str, name: &str, rv: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                namespace: Some(ns.into()),
                name: Some(name.into()),
                resource_version: Some(rv.into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn offline_informer() -> Informer<ConfigMap> {
        // No request is made unless `start` is called.
        let cfg = kube::Config::new("https://127.0.0.1:1".parse().unwrap());
        let client = kube::Client::try_from(cfg).unwrap();
        Informer::new(Api::all(client), watcher::Config::default())
    }

    #[tokio::test]
    async fn relists_are_reported_as_the_changes_they_imply() {
        let inf = offline_informer();
        let seen = Arc::new(Mutex::new(Vec::<String>::new()));
        let s = seen.clone();
        inf.add_handler(move |c| {
            let e = match c {
                Change::Add(o) => format!("add {}", key_of(o.as_ref())),
                Change::Update { new, .. } => format!("update {}", key_of(new.as_ref())),
                Change::Delete(o) => format!("delete {}", key_of(o.as_ref())),
            };
            s.lock().push(e);
        });
        inf.replace(vec![cm("a", "x", "1"), cm("a", "y", "1")]);
        assert!(inf.has_synced());
        inf.apply(cm("b", "z", "2"));
        inf.apply(cm("a", "x", "3"));
        inf.delete(cm("a", "y", "4"));
        inf.delete(cm("a", "never", "5"));
        assert_eq!(inf.len(), 2);
        assert_eq!(inf.list_namespace("a").len(), 1);
        seen.lock().clear();
        // After a relist: x unchanged, z changed, w new, nothing else.
        inf.replace(vec![
            cm("a", "x", "3"),
            cm("b", "z", "6"),
            cm("c", "w", "7"),
        ]);
        let mut got = seen.lock().clone();
        got.sort();
        assert_eq!(got, vec!["add c/w", "update b/z"]);
        seen.lock().clear();
        inf.replace(vec![cm("c", "w", "7")]);
        let mut got = seen.lock().clone();
        got.sort();
        assert_eq!(got, vec!["delete a/x", "delete b/z"]);
        assert_eq!(
            inf.get("c", "w")
                .unwrap()
                .metadata
                .resource_version
                .as_deref(),
            Some("7")
        );
        assert!(inf.get_by_key("a/x").is_none());
    }

    #[test]
    fn keys_split_back_into_namespace_and_name() {
        assert_eq!(key_of(&cm("ns", "n", "1")), "ns/n");
        assert_eq!(split_key("ns/n"), ("ns", "n"));
        assert_eq!(split_key("node-1"), ("", "node-1"));
    }
}
