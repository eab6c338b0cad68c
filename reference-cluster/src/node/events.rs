//! The kubelet's core/v1 Events (`Pulling`, `Pulled`, `Created`, `Started`, `Killing`,
//! `BackOff`, `Failed`, admission rejections), so `kubectl describe pod` shows what the node did.
//!
//! Pod workers only hand events to an [`EventSink`]: a bounded channel that never blocks. When
//! it is full the event is dropped and counted, like client-go's broadcaster (which drops once
//! 1000 events are queued), so thousands of pods cannot hold up status writes. One writer task
//! drains the channel sequentially, so events never take more than one API request at a time
//! from the fleet, and folds repeats into one Event's `count` as client-go's correlator does.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::core::Request;
use serde_json::json;
use tokio::sync::mpsc;

use crate::controllers::runtime::events::now_time;
pub use crate::controllers::runtime::events::{NORMAL, WARNING};

/// The kubelet's `source.component` and `reportingController`.
pub const COMPONENT: &str = "kubelet";

/// Events waiting to be written at most (client-go's `maxQueuedEvents`).
pub const DEFAULT_BUFFER: usize = 1000;

/// Bounds the dedup cache (client-go keeps an LRU of 4096).
const MAX_CACHED: usize = 4096;

/// One event as a worker reports it.
#[derive(Clone, Debug)]
pub struct NodeEvent {
    pub node: String,
    pub involved: ObjectReference,
    pub type_: &'static str,
    pub reason: String,
    pub message: String,
}

/// Where workers send events; a disabled sink drops them for free.
#[derive(Clone, Default)]
pub struct EventSink {
    tx: Option<mpsc::Sender<NodeEvent>>,
    dropped: Arc<AtomicU64>,
}

/// The reference to a pod, or to one of its containers (`spec.containers{app}`).
pub fn pod_ref(pod: &Pod, field_path: Option<String>) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        resource_version: pod.metadata.resource_version.clone(),
        field_path,
    }
}

impl EventSink {
    /// A sink that records nothing (`record_events: false`).
    pub fn disabled() -> EventSink {
        EventSink::default()
    }

    /// A sink holding at most `buffer` unwritten events, counting what it drops into
    /// `dropped`, and the receiving end for [`run_writer`].
    pub fn bounded(
        buffer: usize,
        dropped: Arc<AtomicU64>,
    ) -> (EventSink, mpsc::Receiver<NodeEvent>) {
        let (tx, rx) = mpsc::channel(buffer.max(1));
        (
            EventSink {
                tx: Some(tx),
                dropped,
            },
            rx,
        )
    }

    pub fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Events dropped because the channel was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub fn send(&self, event: NodeEvent) {
        let Some(tx) = &self.tx else {
            return;
        };
        if tx.try_send(event).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// An event about `pod`, or about its `container` when named.
    pub fn pod_event(
        &self,
        node: &str,
        pod: &Pod,
        container: Option<&str>,
        type_: &'static str,
        reason: &str,
        message: impl FnOnce() -> String,
    ) {
        if !self.enabled() {
            return;
        }
        let field_path = container.map(|c| container_field_path(pod, c));
        self.send(NodeEvent {
            node: node.to_string(),
            involved: pod_ref(pod, field_path),
            type_,
            reason: reason.to_string(),
            message: message(),
        });
    }
}

/// `spec.containers{name}` or `spec.initContainers{name}`, as the kubelet's `GenerateContainerRef`.
fn container_field_path(pod: &Pod, name: &str) -> String {
    let init = pod
        .spec
        .as_ref()
        .and_then(|s| s.init_containers.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.name == name));
    if init {
        format!("spec.initContainers{{{name}}}")
    } else {
        format!("spec.containers{{{name}}}")
    }
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    node: String,
    object: String,
    field_path: String,
    reason: String,
    message: String,
}

/// Writes events one at a time until every sink is gone.
pub async fn run_writer(client: kube::Client, mut rx: mpsc::Receiver<NodeEvent>) {
    // Event name and count of what was already written, for folding repeats.
    let mut seen: HashMap<Key, (String, i32)> = HashMap::new();
    while let Some(ev) = rx.recv().await {
        let namespace = ev
            .involved
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".into());
        let key = Key {
            node: ev.node.clone(),
            object: ev.involved.uid.clone().unwrap_or_default(),
            field_path: ev.involved.field_path.clone().unwrap_or_default(),
            reason: ev.reason.clone(),
            message: ev.message.clone(),
        };
        // Written as the node that saw it, as a kubelet's recorder does.
        let node = ev.node.clone();
        let events = Request::new(format!("/api/v1/namespaces/{namespace}/events"));
        let now = now_time();
        if let Some((name, count)) = seen.get_mut(&key) {
            *count += 1;
            let patch = json!({"count": *count, "lastTimestamp": now});
            let req = events.patch(name, &PatchParams::default(), &Patch::Merge(&patch));
            match super::api::send_text_as(&client, req, &node).await {
                Ok(_) => continue,
                Err(e) => {
                    tracing::debug!(error = %e.message, "cannot update event; creating it again");
                    seen.remove(&key);
                }
            }
        }
        if seen.len() >= MAX_CACHED {
            seen.clear();
        }
        let name = format!(
            "{}.{:x}",
            ev.involved.name.as_deref().unwrap_or_default(),
            Timestamp::now().as_nanosecond()
        );
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                ..Default::default()
            },
            involved_object: ev.involved,
            reason: Some(ev.reason),
            message: Some(ev.message),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            event_time: None::<MicroTime>,
            count: Some(1),
            type_: Some(ev.type_.to_string()),
            source: Some(EventSource {
                component: Some(COMPONENT.into()),
                host: Some(ev.node.clone()),
            }),
            reporting_component: Some(COMPONENT.into()),
            reporting_instance: Some(ev.node),
            ..Default::default()
        };
        let created = match serde_json::to_vec(&event) {
            Ok(body) => {
                super::api::send_text_as(
                    &client,
                    events.create(&PostParams::default(), body),
                    &node,
                )
                .await
            }
            Err(e) => Err(super::api::Failure {
                code: None,
                message: e.to_string(),
            }),
        };
        match created {
            Ok(_) => {
                seen.insert(key, (name, 1));
            }
            // A terminating namespace refuses new objects; nothing to record then.
            Err(e) => tracing::debug!(error = %e.message, "cannot record event"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
            "spec": {"initContainers": [{"name": "init"}], "containers": [{"name": "app"}]}
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn a_full_channel_drops_and_counts_instead_of_waiting() {
        let dropped = Arc::new(AtomicU64::new(0));
        let (sink, mut rx) = EventSink::bounded(2, dropped.clone());
        for _ in 0..5 {
            sink.pod_event("node-0", &pod(), Some("app"), NORMAL, "Started", || {
                "Started container app".into()
            });
        }
        assert_eq!(sink.dropped(), 3);
        assert_eq!(dropped.load(Ordering::Relaxed), 3);
        let first = rx.recv().await.unwrap();
        assert_eq!(
            first.involved.field_path.as_deref(),
            Some("spec.containers{app}")
        );
        assert_eq!(first.node, "node-0");
    }

    #[test]
    fn init_containers_get_their_own_field_path() {
        assert_eq!(
            container_field_path(&pod(), "init"),
            "spec.initContainers{init}"
        );
    }

    #[test]
    fn a_disabled_sink_records_nothing() {
        let sink = EventSink::disabled();
        sink.pod_event("n", &pod(), None, WARNING, "OutOfcpu", || {
            unreachable!("a disabled sink never renders a message")
        });
        assert_eq!(sink.dropped(), 0);
        assert!(!sink.enabled());
    }
}
