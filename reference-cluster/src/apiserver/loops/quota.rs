//! ResourceQuota usage (upstream's resourcequota controller): a quota's `status.hard` follows
//! its `spec.hard` and `status.used` is recounted from the namespace's objects when the quota
//! changes, when quota-tracked objects go away (admission only ever charges; releasing is the
//! controller's job), and on every resync.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::Notify;

use super::{next_event, watch};
use crate::apiserver::registry::WriteOptions;
use crate::apiserver::watch_stream::Filter;
use crate::apiserver::{object, ApiError, ApiServer};
use crate::resources::ResourceInfo;
use crate::security::admission::resource_quota::{compute_status, QuotaObject};
use crate::store::{EventKind, Revision};

/// Namespaces whose quotas need recounting, fed by the registry when objects go away.
#[derive(Default)]
pub struct QuotaQueue {
    /// Namespaces that have at least one ResourceQuota.
    with_quota: Mutex<HashSet<String>>,
    pending: Mutex<BTreeSet<String>>,
    wake: Notify,
}

impl QuotaQueue {
    /// Asks for `namespace` to be recounted if it has quotas.
    pub fn touch(&self, namespace: &str) {
        if self.with_quota.lock().contains(namespace) {
            self.pending.lock().insert(namespace.to_string());
            self.wake.notify_one();
        }
    }

    fn requeue(&self, namespace: &str) {
        self.pending.lock().insert(namespace.to_string());
        self.wake.notify_one();
    }

    fn take(&self) -> BTreeSet<String> {
        std::mem::take(&mut *self.pending.lock())
    }
}

pub async fn run(server: Arc<ApiServer>, resync: Duration) {
    let Some(info) = server.catalog.get("", "v1", "resourcequotas") else {
        return;
    };
    let prefix = info.prefix(None);
    let queue = &server.security.quota_queue;
    loop {
        let Some(from) = sync_all(&server, &prefix).await else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        let Some(mut events) = watch(&server, &prefix, from).await else {
            continue;
        };
        let deadline = tokio::time::sleep(resync);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                ev = next_event(&mut events, &mut deadline) => {
                    let Some(ev) = ev else { break };
                    if ev.kind != EventKind::Put {
                        continue;
                    }
                    let Ok(quota) = object::from_stored(&ev.kv) else { continue };
                    // Our own status writes come back too; only spec changes need a recount.
                    if quota.pointer("/spec/hard") != quota.pointer("/status/hard") {
                        if let Some(ns) = object::meta_str(&quota, "namespace") {
                            queue.with_quota.lock().insert(ns.to_string());
                            recount(&server, ns).await;
                        }
                    }
                }
                _ = queue.wake.notified() => {
                    for ns in queue.take() {
                        recount(&server, &ns).await;
                    }
                }
            }
        }
    }
}

async fn sync_all(server: &ApiServer, prefix: &str) -> Option<Revision> {
    let list = server.store.list(prefix, None, None, 0).await.ok()?;
    let namespaces: BTreeSet<String> = list
        .items
        .iter()
        .filter_map(|kv| object::from_stored(kv).ok())
        .filter_map(|q| object::meta_str(&q, "namespace").map(str::to_string))
        .collect();
    *server.security.quota_queue.with_quota.lock() = namespaces.iter().cloned().collect();
    for ns in &namespaces {
        recount(server, ns).await;
    }
    Some(list.revision)
}

/// One version of every namespaced resource, so that each stored object is counted once.
fn counted_resources(server: &ApiServer) -> Vec<Arc<ResourceInfo>> {
    let mut seen = HashSet::new();
    let mut all = server.catalog.all();
    all.sort_by_key(|i| !i.preferred);
    all.into_iter()
        .filter(|i| i.namespaced && seen.insert(i.storage_resource.clone()))
        .collect()
}

/// Recounts the usage of every quota in `namespace` and writes the statuses that changed.
pub async fn recount(server: &ApiServer, namespace: &str) {
    let Some(quota_info) = server.catalog.get("", "v1", "resourcequotas") else {
        return;
    };
    let filter = Filter::everything(server, &quota_info);
    let Ok(quotas) = server
        .list_objects(&quota_info, Some(namespace), &filter, Default::default())
        .await
    else {
        return;
    };
    if quotas.items.is_empty() {
        server
            .security
            .quota_queue
            .with_quota
            .lock()
            .remove(namespace);
        return;
    }
    let mut listed: Vec<(Arc<ResourceInfo>, Vec<Value>)> = Vec::new();
    for info in counted_resources(server) {
        let filter = Filter::everything(server, &info);
        if let Ok(l) = server
            .list_objects(&info, Some(namespace), &filter, Default::default())
            .await
        {
            listed.push((info, l.items));
        }
    }
    let objects: Vec<QuotaObject<'_>> = listed
        .iter()
        .flat_map(|(info, items)| {
            items.iter().map(move |o| QuotaObject {
                group: &info.group,
                resource: &info.plural,
                object: o,
            })
        })
        .collect();
    let opts = WriteOptions::internal("resourcequota-controller");
    for quota in &quotas.items {
        let status = compute_status(quota, &objects);
        if quota.get("status") == Some(&status) {
            continue;
        }
        let name = object::name(quota).to_string();
        let counted_at = object::meta_str(quota, "resourceVersion").map(str::to_string);
        // Only over the quota as counted: admission may have charged it since, and that
        // charge must not be lost (the next recount sees its object).
        let result = server
            .guaranteed_update(
                &quota_info,
                Some(namespace),
                &name,
                Some("status"),
                &opts,
                crate::patch::Operation::Update,
                |cur| {
                    let mut cur = cur.ok_or_else(|| ApiError::not_found(&quota_info, &name))?;
                    if object::meta_str(&cur, "resourceVersion").map(str::to_string) != counted_at {
                        return Err(ApiError::stale(&quota_info, &name));
                    }
                    cur["status"] = status.clone();
                    Ok(cur)
                },
            )
            .await;
        match result {
            Err(e) if e.code == 409 => server.security.quota_queue.requeue(namespace),
            Err(e) => tracing::debug!("writing the usage of quota {namespace}/{name}: {e}"),
            Ok(_) => {}
        }
    }
}
