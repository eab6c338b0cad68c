//! Garbage collector: the ownerReferences graph, as upstream's garbage collector keeps it.
//!
//! - Background: an object whose owners are all gone is deleted.
//! - Foreground: an owner carrying the `foregroundDeletion` finalizer has its dependents
//!   deleted first; the finalizer is removed when none are left.
//! - Orphan: an owner carrying the `orphan` finalizer has itself removed from its dependents'
//!   ownerReferences, then the finalizer is removed.
//!
//! The graph is built from one list of the whole store and kept current from one watch; the
//! store is listed again only when that watch ends. Every write in the cluster passes through
//! here, so objects are only skimmed for the metadata the collector needs ([`Skim`]: uid, owners,
//! deletion and finalizers) instead of being decoded whole. Every `resync` the objects that may
//! still need an action (all owners gone, or an orphan/foreground finalizer pending) are looked
//! at again, which retries actions that failed.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};

use crate::apiserver::object;
use crate::apiserver::registry::{DeleteOptions, WriteOptions};
use crate::apiserver::ApiServer;
use crate::patch::Operation;
use crate::resources::ResourceInfo;
use crate::store::{EventKind, KeyValue};

/// The part of an object's metadata the collector reads.
#[derive(Debug, Default, serde::Deserialize)]
struct Skim {
    #[serde(default)]
    metadata: SkimMeta,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct SkimMeta {
    #[serde(default)]
    uid: Option<String>,
    #[serde(default)]
    owner_references: Option<Vec<SkimOwner>>,
    #[serde(default)]
    deletion_timestamp: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    finalizers: Option<Vec<String>>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct SkimOwner {
    #[serde(default)]
    uid: Option<String>,
}

impl Skim {
    fn of(kv: &KeyValue) -> Option<Skim> {
        serde_json::from_slice(&kv.value).ok()
    }

    fn uid(&self) -> Option<&str> {
        self.metadata.uid.as_deref()
    }

    fn owners(&self) -> impl Iterator<Item = &str> {
        self.metadata
            .owner_references
            .iter()
            .flatten()
            .filter_map(|o| o.uid.as_deref())
    }

    fn is_deleting(&self) -> bool {
        self.metadata.deletion_timestamp.is_some()
    }

    fn has_finalizer(&self, name: &str) -> bool {
        self.metadata.finalizers.iter().flatten().any(|f| f == name)
    }

    /// Deleting and waiting for the collector to orphan or delete its dependents.
    fn awaits_collector(&self) -> bool {
        self.is_deleting()
            && (self.has_finalizer("orphan") || self.has_finalizer("foregroundDeletion"))
    }
}

#[derive(Default)]
struct Graph {
    /// uid → storage key of every object.
    keys: HashMap<String, String>,
    /// storage key → uid: the reverse of `keys`, so that forgetting an object does not scan
    /// every other object (this runs on every write).
    uids: HashMap<String, String>,
    /// owner uid → dependents' storage keys.
    dependents: HashMap<String, HashSet<String>>,
    /// storage key → owner uids.
    owners: HashMap<String, Vec<String>>,
    /// Storage keys of objects deleting with an `orphan` or `foregroundDeletion` finalizer.
    finalizing: BTreeSet<String>,
}

impl Graph {
    fn put(&mut self, key: &str, obj: &Skim) {
        self.remove(key);
        if let Some(uid) = obj.uid() {
            self.keys.insert(uid.to_string(), key.to_string());
            self.uids.insert(key.to_string(), uid.to_string());
        }
        if obj.awaits_collector() {
            self.finalizing.insert(key.to_string());
        }
        let owners: Vec<String> = obj.owners().map(str::to_string).collect();
        for o in &owners {
            self.dependents
                .entry(o.clone())
                .or_default()
                .insert(key.to_string());
        }
        if !owners.is_empty() {
            self.owners.insert(key.to_string(), owners);
        }
    }

    fn remove(&mut self, key: &str) {
        self.finalizing.remove(key);
        if let Some(owners) = self.owners.remove(key) {
            for o in owners {
                if let Some(set) = self.dependents.get_mut(&o) {
                    set.remove(key);
                    if set.is_empty() {
                        self.dependents.remove(&o);
                    }
                }
            }
        }
        if let Some(uid) = self.uids.remove(key) {
            // A uid may have moved to another key (never upstream, but cheap to respect).
            if self.keys.get(&uid).is_some_and(|k| k == key) {
                self.keys.remove(&uid);
            }
        }
    }

    /// Objects the collector may still have to act on: those whose owners are all gone and
    /// those waiting for their dependents to be orphaned or deleted.
    fn pending(&self) -> Vec<String> {
        let orphaned = self
            .owners
            .iter()
            .filter(|(_, owners)| !owners.iter().any(|o| self.keys.contains_key(o)))
            .map(|(key, _)| key.clone());
        let mut keys: Vec<String> = orphaned.chain(self.finalizing.iter().cloned()).collect();
        keys.sort();
        keys.dedup();
        keys
    }
}

/// The resource a storage key belongs to, and the object's namespace and name.
fn locate(server: &ApiServer, key: &str) -> Option<(Arc<ResourceInfo>, Option<String>, String)> {
    let rest = key.strip_prefix("/registry/")?;
    let mut best: Option<Arc<ResourceInfo>> = None;
    for info in server.catalog.all() {
        let p = format!("{}/", info.storage_resource);
        if rest.starts_with(&p)
            && best
                .as_ref()
                .map(|b| b.storage_resource.len() < info.storage_resource.len())
                .unwrap_or(true)
        {
            best = Some(info);
        }
    }
    let info = best?;
    let tail = &rest[info.storage_resource.len() + 1..];
    let (ns, name) = match (info.namespaced, tail.split_once('/')) {
        (true, Some((ns, name))) => (Some(ns.to_string()), name.to_string()),
        (false, None) => (None, tail.to_string()),
        _ => return None,
    };
    Some((info, ns, name))
}

pub async fn run(server: Arc<ApiServer>, resync: Duration) {
    loop {
        let Ok(list) = server.store.list("/registry/", None, None, 0).await else {
            tokio::time::sleep(resync).await;
            continue;
        };
        let mut graph = Graph::default();
        for kv in &list.items {
            if let Some(obj) = Skim::of(kv) {
                graph.put(&kv.key, &obj);
            }
        }
        let revision = list.revision;
        drop(list);
        revisit(&server, &graph).await;
        let Ok(mut events) = server.store.watch("/registry/", revision).await else {
            tokio::time::sleep(resync).await;
            continue;
        };
        let mut ticker = tokio::time::interval(resync);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = ticker.tick() => revisit(&server, &graph).await,
                ev = events.next() => {
                    let Some(Ok(ev)) = ev else { break };
                    handle_event(&server, &mut graph, ev.kind, &ev.kv).await;
                }
            }
        }
    }
}

/// Looks again at every object the collector may still have to act on, as they are now.
async fn revisit(server: &Arc<ApiServer>, graph: &Graph) {
    for key in graph.pending() {
        if let Ok(Some(kv)) = server.store.get(&key).await {
            if let Some(obj) = Skim::of(&kv) {
                process(server, graph, &key, &obj).await;
            }
        }
    }
}

async fn handle_event(server: &Arc<ApiServer>, graph: &mut Graph, kind: EventKind, kv: &KeyValue) {
    let Some(obj) = Skim::of(kv) else {
        return;
    };
    match kind {
        EventKind::Put => {
            graph.put(&kv.key, &obj);
            process(server, graph, &kv.key, &obj).await;
        }
        EventKind::Delete => {
            graph.remove(&kv.key);
            // Dependents of a deleted owner may now have no owner left.
            if let Some(uid) = obj.uid() {
                let deps: Vec<String> = graph
                    .dependents
                    .get(uid)
                    .map(|s| s.iter().cloned().collect())
                    .unwrap_or_default();
                for d in deps {
                    if let Ok(Some(dkv)) = server.store.get(&d).await {
                        if let Some(dep) = Skim::of(&dkv) {
                            process(server, graph, &d, &dep).await;
                        }
                    }
                }
            }
        }
    }
}

/// Acts on one object: finishes orphan/foreground deletions it owns, deletes it if all its
/// owners are gone.
async fn process(server: &Arc<ApiServer>, graph: &Graph, key: &str, obj: &Skim) {
    let owned = graph.owners.get(key).is_some_and(|o| !o.is_empty());
    if !owned && !obj.awaits_collector() {
        return;
    }
    let Some((info, ns, name)) = locate(server, key) else {
        return;
    };
    let uid = obj.uid().unwrap_or("").to_string();
    let deps: Vec<String> = graph
        .dependents
        .get(&uid)
        .map(|s| s.iter().cloned().collect())
        .unwrap_or_default();
    if obj.is_deleting() && obj.has_finalizer("orphan") {
        for d in &deps {
            orphan(server, d, &uid).await;
        }
        remove_finalizer(server, &info, ns.as_deref(), &name, "orphan").await;
        return;
    }
    if obj.is_deleting() && obj.has_finalizer("foregroundDeletion") {
        if deps.is_empty() {
            remove_finalizer(server, &info, ns.as_deref(), &name, "foregroundDeletion").await;
        } else {
            for d in &deps {
                if let Some((dinfo, dns, dname)) = locate(server, d) {
                    let opts = DeleteOptions {
                        propagation: Some("Foreground".into()),
                        ..Default::default()
                    };
                    let _ = server
                        .delete_object(&dinfo, dns.as_deref(), &dname, &opts)
                        .await;
                }
            }
        }
        return;
    }
    // Background collection: every owner is gone.
    if let Some(owners) = graph.owners.get(key) {
        if !owners.is_empty() && !obj.is_deleting() {
            let mut all_gone = true;
            for o in owners {
                if graph.keys.contains_key(o) {
                    all_gone = false;
                    break;
                }
            }
            if all_gone {
                let opts = DeleteOptions {
                    propagation: Some("Background".into()),
                    ..Default::default()
                };
                let _ = server
                    .delete_object(&info, ns.as_deref(), &name, &opts)
                    .await;
            }
        }
    }
}

async fn orphan(server: &Arc<ApiServer>, dep_key: &str, owner_uid: &str) {
    let Some((info, ns, name)) = locate(server, dep_key) else {
        return;
    };
    let opts = WriteOptions::internal("generic-garbage-collector");
    let _ = server
        .guaranteed_update(
            &info,
            ns.as_deref(),
            &name,
            None,
            &opts,
            Operation::Update,
            |cur| {
                let mut cur =
                    cur.ok_or_else(|| crate::apiserver::ApiError::not_found(&info, &name))?;
                let kept: Vec<Value> = cur
                    .pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter(|o| o.get("uid").and_then(Value::as_str) != Some(owner_uid))
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                let m = object::meta_mut(&mut cur);
                if kept.is_empty() {
                    m.remove("ownerReferences");
                } else {
                    m.insert("ownerReferences".into(), json!(kept));
                }
                Ok(cur)
            },
        )
        .await;
}

async fn remove_finalizer(
    server: &Arc<ApiServer>,
    info: &ResourceInfo,
    ns: Option<&str>,
    name: &str,
    finalizer: &str,
) {
    let opts = WriteOptions::internal("generic-garbage-collector");
    let _ = server
        .guaranteed_update(info, ns, name, None, &opts, Operation::Update, |cur| {
            let mut cur = cur.ok_or_else(|| crate::apiserver::ApiError::not_found(info, name))?;
            let kept: Vec<String> = object::finalizers(&cur)
                .into_iter()
                .filter(|f| f != finalizer)
                .collect();
            object::set_finalizers(&mut cur, &kept);
            Ok(cur)
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(uid: &str, owners: &[&str]) -> Skim {
        let refs: Vec<Value> = owners.iter().map(|o| json!({"uid": o})).collect();
        serde_json::from_value(json!({"metadata": {"uid": uid, "ownerReferences": refs}}))
            .expect("a valid skim")
    }

    #[test]
    fn the_graph_forgets_an_object_and_its_edges() {
        let mut g = Graph::default();
        g.put("/registry/replicasets/ns/rs", &obj("u-rs", &[]));
        g.put("/registry/pods/ns/a", &obj("u-a", &["u-rs"]));
        g.put("/registry/pods/ns/b", &obj("u-b", &["u-rs"]));
        assert_eq!(g.dependents["u-rs"].len(), 2);
        assert_eq!(g.keys["u-a"], "/registry/pods/ns/a");

        // An update that drops the owner reference moves the edge, not the object.
        g.put("/registry/pods/ns/a", &obj("u-a", &[]));
        assert_eq!(g.dependents["u-rs"].len(), 1);
        assert_eq!(g.keys["u-a"], "/registry/pods/ns/a");

        g.remove("/registry/pods/ns/b");
        assert!(!g.dependents.contains_key("u-rs"));
        assert!(!g.keys.contains_key("u-b"));
        assert!(!g.uids.contains_key("/registry/pods/ns/b"));
        assert_eq!(g.keys.len(), g.uids.len());
    }

    #[test]
    fn a_key_reused_by_a_new_object_keeps_only_the_new_uid() {
        let mut g = Graph::default();
        g.put("/registry/pods/ns/a", &obj("old", &[]));
        g.remove("/registry/pods/ns/a");
        g.put("/registry/pods/ns/a", &obj("new", &[]));
        assert!(!g.keys.contains_key("old"));
        assert_eq!(g.keys["new"], "/registry/pods/ns/a");
        assert_eq!(g.uids["/registry/pods/ns/a"], "new");
    }

    #[test]
    fn pending_holds_objects_without_owners_left_and_those_awaiting_the_collector() {
        let mut g = Graph::default();
        g.put("/registry/replicasets/ns/rs", &obj("u-rs", &[]));
        g.put("/registry/pods/ns/owned", &obj("u-a", &["u-rs"]));
        g.put("/registry/pods/ns/orphaned", &obj("u-b", &["u-gone"]));
        let deleting: Skim = serde_json::from_value(json!({"metadata": {
            "uid": "u-d", "deletionTimestamp": "2026-01-01T00:00:00Z", "finalizers": ["orphan"]}}))
        .expect("a valid skim");
        g.put("/registry/deployments/ns/d", &deleting);
        assert_eq!(
            g.pending(),
            vec!["/registry/deployments/ns/d", "/registry/pods/ns/orphaned"]
        );
        g.remove("/registry/deployments/ns/d");
        assert_eq!(g.pending(), vec!["/registry/pods/ns/orphaned"]);
    }

    #[test]
    fn a_skim_reads_null_and_missing_metadata_as_absent() {
        let skim: Skim = serde_json::from_slice(
            br#"{"kind":"Pod","metadata":{"name":"p","uid":"u","ownerReferences":null,"deletionTimestamp":null,"finalizers":null},"spec":{"containers":[]}}"#,
        )
        .expect("a valid skim");
        assert_eq!(skim.uid(), Some("u"));
        assert_eq!(skim.owners().count(), 0);
        assert!(!skim.is_deleting());
        assert!(!skim.awaits_collector());
    }
}
