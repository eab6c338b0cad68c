//! The shared informer factory: every controller asks for the informers it needs, one watch
//! per kind (and configuration) is opened however many controllers use it, and the manager
//! starts them all and waits for their first lists before any worker runs.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use kube::runtime::watcher;
use kube::{Api, Resource};
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::informer::Informer;

type Starter = Box<dyn FnOnce(watch::Receiver<bool>) -> JoinHandle<()> + Send>;
type SyncCheck = Box<dyn Fn() -> bool + Send + Sync>;

pub struct SharedInformers {
    client: kube::Client,
    map: Mutex<HashMap<(TypeId, String), Box<dyn Any + Send + Sync>>>,
    starters: Mutex<Vec<Starter>>,
    synced: Mutex<Vec<SyncCheck>>,
}

impl SharedInformers {
    pub fn new(client: kube::Client) -> Arc<Self> {
        Arc::new(SharedInformers {
            client,
            map: Mutex::new(HashMap::new()),
            starters: Mutex::new(Vec::new()),
            synced: Mutex::new(Vec::new()),
        })
    }

    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    /// The informer of every `K` in all namespaces.
    pub fn get<K>(&self) -> Informer<K>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        self.get_with("", watcher::Config::default())
    }

    /// An informer with its own watch configuration (a field or label selector), shared
    /// under `label`.
    pub fn get_with<K>(&self, label: &str, config: watcher::Config) -> Informer<K>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        let key = (TypeId::of::<K>(), label.to_string());
        let mut map = self.map.lock();
        if let Some(existing) = map.get(&key).and_then(|b| b.downcast_ref::<Informer<K>>()) {
            return existing.clone();
        }
        let inf = Informer::new(Api::<K>::all(self.client.clone()), config);
        map.insert(key, Box::new(inf.clone()));
        let starter = inf.clone();
        self.starters
            .lock()
            .push(Box::new(move |stop| starter.start(stop)));
        let check = inf.clone();
        self.synced
            .lock()
            .push(Box::new(move || check.has_synced()));
        inf
    }

    /// Starts every informer asked for so far.
    pub fn start(&self, stop: &watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
        let starters: Vec<Starter> = std::mem::take(&mut *self.starters.lock());
        starters.into_iter().map(|s| s(stop.clone())).collect()
    }

    pub fn all_synced(&self) -> bool {
        self.synced.lock().iter().all(|c| c())
    }

    /// Waits until every informer delivered its first list; false if stopped first.
    pub async fn wait_synced(&self, stop: &watch::Receiver<bool>) -> bool {
        loop {
            if *stop.borrow() {
                return false;
            }
            if self.all_synced() {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}
