//! Watches (kube-runtime watchers: list, then watch, relist on expiry) for everything the
//! scheduler caches. Each watcher turns its stream into messages for the scheduling thread;
//! a relist arrives as one `Replace` so the thread can drop objects that disappeared.

use std::sync::mpsc::Sender;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{
    Namespace, Node, PersistentVolume, PersistentVolumeClaim, Pod, ReplicationController, Service,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tokio::task::JoinHandle;

use super::thread::Msg;

pub enum Ev<K> {
    Apply(Arc<K>),
    Delete(Arc<K>),
    /// A full list: everything not in it is gone.
    Replace(Vec<Arc<K>>),
}

pub enum Update {
    Pod(Ev<Pod>),
    Node(Ev<Node>),
    Pvc(Ev<PersistentVolumeClaim>),
    Pv(Ev<PersistentVolume>),
    StorageClass(Ev<StorageClass>),
    Namespace(Ev<Namespace>),
    Pdb(Ev<PodDisruptionBudget>),
    Service(Ev<Service>),
    ReplicationController(Ev<ReplicationController>),
    ReplicaSet(Ev<ReplicaSet>),
    StatefulSet(Ev<StatefulSet>),
}

/// How many watchers must deliver their first list before scheduling starts.
pub const INFORMER_COUNT: usize = 11;

fn spawn_watch<K>(
    api: Api<K>,
    cfg: watcher::Config,
    tx: Sender<Msg>,
    wrap: fn(Ev<K>) -> Update,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> JoinHandle<()>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    tokio::spawn(async move {
        let mut stream = watcher::watcher(api, cfg).default_backoff().boxed();
        let mut listing: Vec<Arc<K>> = Vec::new();
        loop {
            let ev = tokio::select! {
                ev = stream.next() => ev,
                r = stop.changed() => {
                    if r.is_err() || *stop.borrow() {
                        break;
                    }
                    continue;
                }
            };
            let msg = match ev {
                None => break,
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "scheduler watch error; retrying");
                    continue;
                }
                Some(Ok(Event::Init)) => {
                    listing.clear();
                    continue;
                }
                Some(Ok(Event::InitApply(o))) => {
                    listing.push(Arc::new(o));
                    continue;
                }
                Some(Ok(Event::InitDone)) => wrap(Ev::Replace(std::mem::take(&mut listing))),
                Some(Ok(Event::Apply(o))) => wrap(Ev::Apply(Arc::new(o))),
                Some(Ok(Event::Delete(o))) => wrap(Ev::Delete(Arc::new(o))),
            };
            if tx.send(Msg::Watch(msg)).is_err() {
                break;
            }
        }
    })
}

/// Starts every watcher; they end when `stop` turns true or the thread hangs up.
pub fn start(
    client: &kube::Client,
    tx: &Sender<Msg>,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let c = || client.clone();
    let all = watcher::Config::default;
    // Finished pods hold no resources; upstream's informer leaves them out the same way.
    let pods = watcher::Config::default().fields("status.phase!=Succeeded,status.phase!=Failed");
    vec![
        spawn_watch(
            Api::<Pod>::all(c()),
            pods,
            tx.clone(),
            Update::Pod,
            stop.clone(),
        ),
        spawn_watch(
            Api::<Node>::all(c()),
            all(),
            tx.clone(),
            Update::Node,
            stop.clone(),
        ),
        spawn_watch(
            Api::<PersistentVolumeClaim>::all(c()),
            all(),
            tx.clone(),
            Update::Pvc,
            stop.clone(),
        ),
        spawn_watch(
            Api::<PersistentVolume>::all(c()),
            all(),
            tx.clone(),
            Update::Pv,
            stop.clone(),
        ),
        spawn_watch(
            Api::<StorageClass>::all(c()),
            all(),
            tx.clone(),
            Update::StorageClass,
            stop.clone(),
        ),
        spawn_watch(
            Api::<Namespace>::all(c()),
            all(),
            tx.clone(),
            Update::Namespace,
            stop.clone(),
        ),
        spawn_watch(
            Api::<PodDisruptionBudget>::all(c()),
            all(),
            tx.clone(),
            Update::Pdb,
            stop.clone(),
        ),
        spawn_watch(
            Api::<Service>::all(c()),
            all(),
            tx.clone(),
            Update::Service,
            stop.clone(),
        ),
        spawn_watch(
            Api::<ReplicationController>::all(c()),
            all(),
            tx.clone(),
            Update::ReplicationController,
            stop.clone(),
        ),
        spawn_watch(
            Api::<ReplicaSet>::all(c()),
            all(),
            tx.clone(),
            Update::ReplicaSet,
            stop.clone(),
        ),
        spawn_watch(
            Api::<StatefulSet>::all(c()),
            all(),
            tx.clone(),
            Update::StatefulSet,
            stop.clone(),
        ),
    ]
}
