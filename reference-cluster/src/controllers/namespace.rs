//! Namespace lifecycle: a namespace marked for deletion (phase Terminating) has all its content
//! deleted, then its `kubernetes` finalizer removed, after which the namespace is gone.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};

use crate::apiserver::object;
use crate::apiserver::registry::{DeleteOptions, WriteOptions};
use crate::apiserver::ApiServer;
use crate::patch::Operation;

pub async fn run(server: Arc<ApiServer>, resync: Duration) {
    let Some(ns_info) = server.catalog.get("", "v1", "namespaces") else {
        return;
    };
    let prefix = ns_info.prefix(None);
    let in_flight = Arc::new(parking_lot::Mutex::new(HashSet::<String>::new()));
    loop {
        let Ok(list) = server.store.list(&prefix, None, None, 0).await else {
            tokio::time::sleep(resync).await;
            continue;
        };
        for kv in &list.items {
            if let Ok(ns) = object::from_stored(kv) {
                maybe_finalize(&server, &ns, &in_flight);
            }
        }
        let Ok(mut events) = server.store.watch(&prefix, list.revision).await else {
            tokio::time::sleep(resync).await;
            continue;
        };
        let deadline = tokio::time::sleep(resync);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => break,
                ev = events.next() => match ev {
                    Some(Ok(ev)) => {
                        if let Ok(ns) = object::from_stored(&ev.kv) {
                            if ev.kind == crate::store::EventKind::Put {
                                maybe_finalize(&server, &ns, &in_flight);
                            }
                        }
                    }
                    _ => break,
                }
            }
        }
    }
}

fn maybe_finalize(
    server: &Arc<ApiServer>,
    ns: &Value,
    in_flight: &Arc<parking_lot::Mutex<HashSet<String>>>,
) {
    if !object::is_deleting(ns) {
        return;
    }
    let name = object::name(ns).to_string();
    if !in_flight.lock().insert(name.clone()) {
        return;
    }
    let server = server.clone();
    let in_flight = in_flight.clone();
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        loop {
            match finalize(&server, &name).await {
                Ok(true) => break,
                Ok(false) | Err(_) => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        in_flight.lock().remove(&name);
    });
}

/// Deletes the namespace's content; once nothing is left, removes the `kubernetes` finalizer.
/// Returns whether the namespace is finished.
async fn finalize(server: &Arc<ApiServer>, ns: &str) -> Result<bool, crate::apiserver::ApiError> {
    let mut remaining = 0usize;
    let mut seen = HashSet::new();
    for info in server.catalog.all() {
        if !info.namespaced
            || !seen.insert(info.storage_resource.clone())
            || !info.verbs.iter().any(|v| v == "delete")
        {
            continue;
        }
        let list = match server
            .store
            .list(&info.prefix(Some(ns)), None, None, 0)
            .await
        {
            Ok(l) => l,
            Err(_) => {
                remaining += 1;
                continue;
            }
        };
        for kv in list.items {
            remaining += 1;
            let Ok(obj) = object::from_stored(&kv) else {
                continue;
            };
            if object::is_deleting(&obj) {
                continue;
            }
            let opts = DeleteOptions {
                propagation: Some("Background".into()),
                ..Default::default()
            };
            let _ = server
                .delete_object(&info, Some(ns), object::name(&obj), &opts)
                .await;
        }
    }
    if remaining > 0 {
        return Ok(false);
    }
    let ns_info = server
        .catalog
        .get("", "v1", "namespaces")
        .expect("namespaces are built in");
    let opts = WriteOptions::internal("namespace-controller");
    let result = server
        .guaranteed_update(
            &ns_info,
            None,
            ns,
            Some("finalize"),
            &opts,
            Operation::Update,
            |cur| {
                let mut cur =
                    cur.ok_or_else(|| crate::apiserver::ApiError::not_found(&ns_info, ns))?;
                let kept: Vec<Value> = cur
                    .pointer("/spec/finalizers")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter(|f| *f != "kubernetes").cloned().collect())
                    .unwrap_or_default();
                object::set_path(&mut cur, "spec.finalizers", json!(kept));
                Ok(cur)
            },
        )
        .await;
    match result {
        Ok(_) => Ok(true),
        Err(e) if e.code == 404 => Ok(true),
        Err(e) => Err(e),
    }
}
