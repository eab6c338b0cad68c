//! Keeps the security caches current from the store with one watch over `/registry/`: RBAC
//! roles and bindings (the authorizer), the Node authorizer's graph (pods, PersistentVolumes,
//! VolumeAttachments), webhook configurations and the objects admission plugins consult
//! ([`admission_objects`]), and flow-control objects (API Priority and Fairness). Writes made
//! by this server update the caches at once as well ([`observe_local_write`]), so a client
//! that creates a RoleBinding is authorized by it on its next request; the watch brings in writes of other API servers sharing the store.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;

use super::{admission_objects, authz, fairness, object, webhooks, ApiServer};
use crate::resources::ResourceInfo;
use crate::security::node_authorizer;
use crate::store::{EventKind, Revision, StoreResult};

/// The storage prefixes whose objects the caches hold, besides [`admission_objects::PREFIXES`].
const PREFIXES: &[&str] = &[
    "/registry/clusterroles/",
    "/registry/clusterrolebindings/",
    "/registry/roles/",
    "/registry/rolebindings/",
    "/registry/mutatingwebhookconfigurations/",
    "/registry/validatingwebhookconfigurations/",
    "/registry/flowschemas/",
    "/registry/prioritylevelconfigurations/",
    "/registry/pods/",
    "/registry/persistentvolumes/",
    "/registry/volumeattachments/",
];

fn is_cached(key: &str) -> bool {
    authz::rbac_kind_of_key(key).is_some()
        || webhooks::configuration_kind_of_key(key).is_some()
        || fairness::kind_of_key(key).is_some()
        || node_authorizer::graph_kind_of_key(key).is_some()
        || admission_objects::is_kept_key(key)
}

fn apply(server: &ApiServer, key: &str, revision: Revision, object: Option<&Value>) {
    let s = &server.security;
    s.authz.rbac.apply(key, revision, object);
    s.authz.node_graph.apply(key, revision, object);
    s.admission.webhooks.apply(key, revision, object);
    s.admission.objects.apply(key, revision, object);
    if let Some(f) = &s.fairness {
        f.apply(key, revision, object);
    }
}

/// Lists everything the caches hold at one revision and replaces their contents. Returns the
/// revision to watch from.
pub async fn prime(server: &ApiServer) -> StoreResult<Revision> {
    let revision = server.store.current_revision().await?;
    let mut objects: Vec<(String, Value)> = Vec::new();
    for prefix in PREFIXES.iter().chain(admission_objects::PREFIXES) {
        let list = server.store.list(prefix, None, Some(revision), 0).await?;
        for kv in list.items {
            match object::from_stored(&kv) {
                Ok(obj) => objects.push((kv.key, obj)),
                Err(e) => tracing::warn!("{e}"),
            }
        }
    }
    let s = &server.security;
    s.authz.rbac.reset(&objects, revision);
    s.authz.node_graph.reset(&objects, revision);
    s.admission.webhooks.reset(&objects, revision);
    s.admission.objects.reset(&objects, revision);
    if let Some(f) = &s.fairness {
        f.reset(&objects, revision);
    }
    Ok(revision)
}

/// Follows the store from `from` for ever, re-listing when the watch breaks (e.g. the
/// revision fell out of the store's window).
pub async fn run(server: Arc<ApiServer>, mut from: Revision) {
    loop {
        match server.store.watch("/registry/", from).await {
            Ok(mut events) => {
                while let Some(ev) = events.next().await {
                    let Ok(ev) = ev else { break };
                    from = ev.revision();
                    if !is_cached(&ev.kv.key) {
                        continue;
                    }
                    // This server's own writes are in the graph already; most pod events
                    // are, so they need not be decoded again.
                    if ev.kind == EventKind::Put
                        && server
                            .security
                            .authz
                            .node_graph
                            .is_current(&ev.kv.key, ev.revision())
                    {
                        continue;
                    }
                    match ev.kind {
                        EventKind::Put => match object::from_stored(&ev.kv) {
                            Ok(obj) => apply(&server, &ev.kv.key, ev.revision(), Some(&obj)),
                            Err(e) => tracing::warn!("{e}"),
                        },
                        EventKind::Delete => apply(&server, &ev.kv.key, ev.revision(), None),
                    }
                }
            }
            Err(e) => tracing::debug!("security watch failed: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        match prime(&server).await {
            Ok(rev) => from = rev,
            Err(e) => tracing::warn!("cannot re-list the security caches: {e}"),
        }
    }
}

/// Updates the caches after this server wrote `info`'s object (`new = None`: deleted).
pub fn observe_local_write(
    server: &ApiServer,
    info: &ResourceInfo,
    old: Option<&Value>,
    new: Option<&Value>,
) {
    let Some(any) = new.or(old) else { return };
    let ns = if info.namespaced {
        object::meta_str(any, "namespace")
    } else {
        None
    };
    let key = info.key(ns, object::name(any));
    if !is_cached(&key) {
        return;
    }
    let rv = |o: &Value| -> Revision {
        object::meta_str(o, "resourceVersion")
            .and_then(|r| r.parse().ok())
            .unwrap_or(0)
    };
    match new {
        Some(obj) => apply(server, &key, rv(obj), Some(obj)),
        // The deletion's own revision is later than the object's last one.
        None => apply(server, &key, old.map(rv).unwrap_or(0) + 1, None),
    }
}
