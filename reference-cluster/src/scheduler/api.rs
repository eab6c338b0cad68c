//! The scheduler's writes to the API server: bindings, pod status (the `PodScheduled`
//! condition and `nominatedNodeName`), victim deletion, volume claim node selection and
//! events. A semaphore bounds the requests in flight so bursts reuse a few connections.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use super::plugins::volume::ClaimState;

/// Annotation through which the scheduler tells the volume provisioner where the pod goes.
pub const SELECTED_NODE_ANNOTATION: &str = "volume.kubernetes.io/selected-node";

pub struct ApiClient {
    client: kube::Client,
    limit: Arc<Semaphore>,
}

/// The API's message for a failed request (its `Status.message` when there is one).
pub fn error_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if !s.message.is_empty() => s.message.clone(),
        other => other.to_string(),
    }
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

impl ApiClient {
    pub fn new(client: kube::Client, concurrency: usize) -> ApiClient {
        ApiClient {
            client,
            limit: Arc::new(Semaphore::new(concurrency.max(1))),
        }
    }

    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    async fn slot(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.limit.clone().acquire_owned().await.ok()
    }

    fn pods(&self, ns: &str) -> Api<Pod> {
        Api::namespaced(self.client.clone(), ns)
    }

    /// POSTs a `v1 Binding` to `pods/{name}/binding`.
    pub async fn bind(&self, ns: &str, name: &str, uid: &str, node: &str) -> Result<(), String> {
        let _slot = self.slot().await;
        let binding = json!({
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "namespace": ns, "uid": uid},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        });
        self.pods(ns)
            .create_subresource::<Value, Value>("binding", name, &PostParams::default(), &binding)
            .await
            .map(|_| ())
            .map_err(|e| error_message(&e))
    }

    /// A strategic merge patch of `pods/{name}/status`.
    pub async fn patch_pod_status(
        &self,
        ns: &str,
        name: &str,
        status: Value,
    ) -> Result<(), String> {
        let _slot = self.slot().await;
        self.pods(ns)
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Strategic(json!({ "status": status })),
            )
            .await
            .map(|_| ())
            .map_err(|e| error_message(&e))
    }

    /// Deletes a pod with its default grace period; a pod already gone is fine.
    pub async fn delete_pod(&self, ns: &str, name: &str) -> Result<(), String> {
        let _slot = self.slot().await;
        match self.pods(ns).delete(name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(error_message(&e)),
        }
    }

    pub async fn claim_binding_state(&self, ns: &str, name: &str) -> Result<ClaimState, String> {
        let _slot = self.slot().await;
        let pvc = Api::<PersistentVolumeClaim>::namespaced(self.client.clone(), ns)
            .get(name)
            .await
            .map_err(|e| error_message(&e))?;
        if pvc
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.as_deref())
            .is_some_and(|v| !v.is_empty())
        {
            return Ok(ClaimState::Bound);
        }
        let selected = pvc
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(SELECTED_NODE_ANNOTATION));
        Ok(if selected {
            ClaimState::Pending
        } else {
            ClaimState::Delayed
        })
    }

    pub async fn select_node_for_claim(
        &self,
        ns: &str,
        name: &str,
        node: &str,
    ) -> Result<(), String> {
        let _slot = self.slot().await;
        let patch = json!({"metadata": {"annotations": {SELECTED_NODE_ANNOTATION: node}}});
        Api::<PersistentVolumeClaim>::namespaced(self.client.clone(), ns)
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map(|_| ())
            .map_err(|e| error_message(&e))
    }

    /// Creates an `events.k8s.io/v1` Event.
    pub async fn create_event(&self, ns: &str, event: &Event) -> Result<(), String> {
        let _slot = self.slot().await;
        self.events(ns)
            .create(&PostParams::default(), event)
            .await
            .map(|_| ())
            .map_err(|e| error_message(&e))
    }

    /// Updates an event's series; `Ok(false)` when the event no longer exists.
    pub async fn patch_event(&self, ns: &str, name: &str, patch: &Value) -> Result<bool, String> {
        let _slot = self.slot().await;
        match self
            .events(ns)
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(error_message(&e)),
        }
    }

    fn events(&self, ns: &str) -> Api<Event> {
        Api::namespaced(self.client.clone(), ns)
    }
}
