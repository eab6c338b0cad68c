//! Every active namespace gets the `default` ServiceAccount (upstream's serviceaccount
//! controller) and the `kube-root-ca.crt` ConfigMap with the cluster CA (upstream's
//! root-ca-cert-publisher), which the token volume ServiceAccount admission injects refers to.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::{next_event, watch};
use crate::apiserver::registry::WriteOptions;
use crate::apiserver::{object, ApiServer};
use crate::store::{EventKind, Revision};

pub const ROOT_CA_CONFIGMAP: &str = "kube-root-ca.crt";
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

/// `ca_pem`: the CA to publish in `kube-root-ca.crt`, or `None` not to publish it.
pub async fn run(server: Arc<ApiServer>, ca_pem: Option<String>, resync: Duration) {
    let prefix = match server.catalog.get("", "v1", "namespaces") {
        Some(info) => info.prefix(None),
        None => return,
    };
    loop {
        let Some(from) = sync_all(&server, &prefix, ca_pem.as_deref()).await else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        let Some(mut events) = watch(&server, &prefix, from).await else {
            continue;
        };
        let deadline = tokio::time::sleep(resync);
        tokio::pin!(deadline);
        while let Some(ev) = next_event(&mut events, &mut deadline).await {
            if ev.kind != EventKind::Put {
                continue;
            }
            if let Ok(ns) = object::from_stored(&ev.kv) {
                ensure(&server, &ns, ca_pem.as_deref()).await;
            }
        }
    }
}

async fn sync_all(server: &ApiServer, prefix: &str, ca_pem: Option<&str>) -> Option<Revision> {
    let list = server.store.list(prefix, None, None, 0).await.ok()?;
    for kv in &list.items {
        if let Ok(ns) = object::from_stored(kv) {
            ensure(server, &ns, ca_pem).await;
        }
    }
    Some(list.revision)
}

/// Creates what an active namespace lacks.
pub async fn ensure(server: &ApiServer, namespace: &Value, ca_pem: Option<&str>) {
    if object::is_deleting(namespace) {
        return;
    }
    let ns = object::name(namespace);
    if ns.is_empty() {
        return;
    }
    let opts = WriteOptions::internal("kube-controller-manager");
    if let Some(info) = server.catalog.get("", "v1", "serviceaccounts") {
        if server.get_object(&info, Some(ns), "default").await.is_err() {
            let sa = json!({"metadata": {"name": "default", "namespace": ns}});
            if let Err(e) = server.create_object(&info, Some(ns), sa, &opts).await {
                if e.code != 409 {
                    tracing::debug!("creating the default service account of {ns}: {e}");
                }
            }
        }
    }
    let Some(ca_pem) = ca_pem else { return };
    if let Some(info) = server.catalog.get("", "v1", "configmaps") {
        let data = json!({"ca.crt": ca_pem});
        match server.get_object(&info, Some(ns), ROOT_CA_CONFIGMAP).await {
            Ok(cm) if cm.get("data") == Some(&data) => {}
            Ok(_) => {
                let result = server
                    .guaranteed_update(
                        &info,
                        Some(ns),
                        ROOT_CA_CONFIGMAP,
                        None,
                        &opts,
                        crate::patch::Operation::Update,
                        |cur| {
                            let mut cur = cur.ok_or_else(|| {
                                crate::apiserver::ApiError::not_found(&info, ROOT_CA_CONFIGMAP)
                            })?;
                            cur["data"] = data.clone();
                            Ok(cur)
                        },
                    )
                    .await;
                if let Err(e) = result {
                    tracing::debug!("updating {ROOT_CA_CONFIGMAP} in {ns}: {e}");
                }
            }
            Err(_) => {
                let cm = json!({
                    "metadata": {"name": ROOT_CA_CONFIGMAP, "namespace": ns,
                                 "annotations": {"kubernetes.io/description": DESCRIPTION}},
                    "data": data,
                });
                if let Err(e) = server.create_object(&info, Some(ns), cm, &opts).await {
                    if e.code != 409 {
                        tracing::debug!("creating {ROOT_CA_CONFIGMAP} in {ns}: {e}");
                    }
                }
            }
        }
    }
}
