//! Recording core/v1 Events the way client-go's legacy `record.EventRecorder` does for
//! kube-controller-manager: named `<object>.<hex nanoseconds>`, `source.component` set to the
//! controller, and repeats of the same (object, type, reason, message) folded into one Event
//! whose `count` and `lastTimestamp` are patched (the EventCorrelator's dedup). Writes happen in
//! the background: a controller never waits for, or fails because of, an Event.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Resource, ResourceExt};
use parking_lot::Mutex;
use serde_json::json;

pub const NORMAL: &str = "Normal";
pub const WARNING: &str = "Warning";

/// Bounds the dedup cache (client-go keeps an LRU of 4096).
const MAX_CACHED: usize = 4096;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    object: String,
    type_: String,
    reason: String,
    message: String,
}

struct Seen {
    namespace: String,
    name: String,
    count: i32,
}

pub struct EventRecorder {
    client: kube::Client,
    component: String,
    cache: Mutex<HashMap<Key, Seen>>,
}

/// The reference an Event's `involvedObject` carries.
pub fn object_ref<K: Resource<DynamicType = ()>>(obj: &K) -> ObjectReference {
    ObjectReference {
        api_version: Some(K::api_version(&()).to_string()),
        kind: Some(K::kind(&()).to_string()),
        namespace: obj.namespace(),
        name: Some(obj.name_any()),
        uid: obj.uid(),
        resource_version: obj.resource_version(),
        field_path: None,
    }
}

/// Seconds precision, as `metav1.Time` serialises.
pub fn now_time() -> Time {
    Time(Timestamp::from_second(Timestamp::now().as_second()).unwrap_or(Timestamp::UNIX_EPOCH))
}

impl EventRecorder {
    pub fn new(client: kube::Client, component: &str) -> Arc<EventRecorder> {
        Arc::new(EventRecorder {
            client,
            component: component.to_string(),
            cache: Mutex::new(HashMap::new()),
        })
    }

    pub fn component(&self) -> &str {
        &self.component
    }

    /// Records an event about `obj`.
    pub fn event<K: Resource<DynamicType = ()>>(
        self: &Arc<Self>,
        obj: &K,
        type_: &str,
        reason: &str,
        message: impl Into<String>,
    ) {
        self.event_ref(object_ref(obj), type_, reason, message.into());
    }

    pub fn event_ref(
        self: &Arc<Self>,
        involved: ObjectReference,
        type_: &str,
        reason: &str,
        message: String,
    ) {
        tracing::debug!(component = %self.component, object = ?involved.name, reason, %message, "event");
        let namespace = involved
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".into());
        let key = Key {
            object: format!(
                "{}/{}/{}/{}",
                involved.kind.as_deref().unwrap_or_default(),
                namespace,
                involved.name.as_deref().unwrap_or_default(),
                involved.uid.as_deref().unwrap_or_default()
            ),
            type_: type_.to_string(),
            reason: reason.to_string(),
            message: message.clone(),
        };
        let now = now_time();
        // The first occurrence claims the cache entry at once, so a burst of repeats patches
        // one Event instead of racing to create several.
        let repeat = {
            let mut cache = self.cache.lock();
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
            match cache.get_mut(&key) {
                Some(seen) => {
                    seen.count += 1;
                    Some((seen.namespace.clone(), seen.name.clone(), seen.count))
                }
                None => {
                    cache.insert(
                        key.clone(),
                        Seen {
                            namespace: namespace.clone(),
                            name: event_name(&involved),
                            count: 1,
                        },
                    );
                    None
                }
            }
        };
        let this = self.clone();
        tokio::spawn(async move {
            match repeat {
                Some((ns, name, count)) => {
                    let api: Api<Event> = Api::namespaced(this.client.clone(), &ns);
                    let patch = json!({"count": count, "lastTimestamp": now});
                    if let Err(e) = api
                        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                    {
                        tracing::debug!(error = %e, "cannot update event; creating it again");
                        let name = event_name(&involved);
                        if let Some(seen) = this.cache.lock().get_mut(&key) {
                            seen.name = name.clone();
                        }
                        this.create(&key, name, involved, namespace, now, message, count)
                            .await;
                    }
                }
                None => {
                    let name = this
                        .cache
                        .lock()
                        .get(&key)
                        .map(|s| s.name.clone())
                        .unwrap_or_else(|| event_name(&involved));
                    this.create(&key, name, involved, namespace, now, message, 1)
                        .await;
                }
            }
        });
    }

    #[allow(clippy::too_many_arguments)]
    async fn create(
        &self,
        key: &Key,
        name: String,
        involved: ObjectReference,
        namespace: String,
        now: Time,
        message: String,
        count: i32,
    ) {
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                ..Default::default()
            },
            involved_object: involved,
            reason: Some(key.reason.clone()),
            message: Some(message),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            count: Some(count),
            type_: Some(key.type_.clone()),
            source: Some(EventSource {
                component: Some(self.component.clone()),
                host: None,
            }),
            reporting_component: Some(self.component.clone()),
            reporting_instance: Some(String::new()),
            ..Default::default()
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        if let Err(e) = api.create(&PostParams::default(), &event).await {
            // A terminating namespace refuses new objects; nothing to record then.
            tracing::debug!(error = %e, "cannot record event");
            self.cache.lock().remove(key);
        }
    }
}

fn event_name(involved: &ObjectReference) -> String {
    format!(
        "{}.{:x}",
        involved.name.as_deref().unwrap_or_default(),
        Timestamp::now().as_nanosecond()
    )
}
