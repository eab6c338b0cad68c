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
type SyncCheck = Arc<dyn Fn() -> bool + Send + Sync>;
/// One shared informer: the typed store (erased), its display name and its sync check.
type InformerEntry = (Box<dyn Any + Send + Sync>, String, SyncCheck);

/// The informers one controller uses, to wait for just those (a watch that cannot list
/// does not hold up controllers that do not need it).
#[derive(Clone, Default)]
pub struct InformerSet {
    checks: Vec<(String, SyncCheck)>,
}

impl InformerSet {
    pub fn synced(&self) -> bool {
        self.checks.iter().all(|(_, c)| c())
    }

    /// The informers that have not delivered their first list yet.
    pub fn pending(&self) -> Vec<String> {
        self.checks
            .iter()
            .filter(|(_, c)| !c())
            .map(|(n, _)| n.clone())
            .collect()
    }
}

pub struct SharedInformers {
    client: kube::Client,
    map: Mutex<HashMap<(TypeId, String), InformerEntry>>,
    starters: Mutex<Vec<Starter>>,
    synced: Mutex<Vec<SyncCheck>>,
    /// Informers asked for since `track` (the controller being built).
    tracked: Mutex<Option<InformerSet>>,
}

impl SharedInformers {
    pub fn new(client: kube::Client) -> Arc<Self> {
        Arc::new(SharedInformers {
            client,
            map: Mutex::new(HashMap::new()),
            starters: Mutex::new(Vec::new()),
            synced: Mutex::new(Vec::new()),
            tracked: Mutex::new(None),
        })
    }

    /// Starts recording the informers asked for (by the controller about to be built).
    pub fn track(&self) {
        *self.tracked.lock() = Some(InformerSet::default());
    }

    /// The informers asked for since `track`.
    pub fn tracked(&self) -> InformerSet {
        self.tracked.lock().take().unwrap_or_default()
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
        if let Some((existing, name, check)) = map.get(&key) {
            if let Some(inf) = existing.downcast_ref::<Informer<K>>() {
                if let Some(t) = self.tracked.lock().as_mut() {
                    t.checks.push((name.clone(), check.clone()));
                }
                return inf.clone();
            }
        }
        let inf = Informer::new(Api::<K>::all(self.client.clone()), config);
        let name = match label {
            "" => K::kind(&()).to_string(),
            l => format!("{} ({l})", K::kind(&())),
        };
        let check_inf = inf.clone();
        let check: SyncCheck = Arc::new(move || check_inf.has_synced());
        map.insert(key, (Box::new(inf.clone()), name.clone(), check.clone()));
        let starter = inf.clone();
        self.starters
            .lock()
            .push(Box::new(move |stop| starter.start(stop)));
        self.synced.lock().push(check.clone());
        if let Some(t) = self.tracked.lock().as_mut() {
            t.checks.push((name, check));
        }
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
