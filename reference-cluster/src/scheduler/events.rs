//! Recording `events.k8s.io/v1` Events the way client-go's events broadcaster does: the first
//! occurrence is created; a repeat of the same (regarding, reason, action, controller, related)
//! turns it into a series (count 2); later repeats only count in memory and are written when
//! the series ends (no repeat for 6 minutes) or on the 30-minute heartbeat.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use parking_lot::Mutex;
use serde_json::json;
use tokio::runtime::Handle;

use super::api::ApiClient;

/// A reference to a pod as events carry it.
pub fn pod_ref(pod: &Pod) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        resource_version: pod.metadata.resource_version.clone(),
        field_path: None,
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    action: String,
    reason: String,
    regarding: String,
    related: String,
}

fn ref_key(r: &ObjectReference) -> String {
    serde_json::to_string(r).unwrap_or_default()
}

struct Cached {
    namespace: String,
    name: String,
    count: i32,
    last_observed: Timestamp,
    created: Timestamp,
    /// Counted since the last write.
    dirty: bool,
}

pub struct EventRecorder {
    api: Arc<ApiClient>,
    controller: String,
    instance: String,
    rt: Handle,
    cache: Mutex<HashMap<Key, Cached>>,
}

/// How long without a repeat ends a series, and how often open series are written.
#[derive(Clone, Copy, Debug)]
pub struct SeriesTimings {
    pub finish: Duration,
    pub refresh: Duration,
}

impl Default for SeriesTimings {
    fn default() -> Self {
        SeriesTimings {
            finish: Duration::from_secs(6 * 60),
            refresh: Duration::from_secs(30 * 60),
        }
    }
}

fn series_patch(count: i32, at: Timestamp) -> serde_json::Value {
    json!({"series": {"count": count, "lastObservedTime": MicroTime(at)}})
}

impl EventRecorder {
    pub fn new(
        api: Arc<ApiClient>,
        controller: &str,
        instance: &str,
        rt: Handle,
    ) -> Arc<EventRecorder> {
        Arc::new(EventRecorder {
            api,
            controller: controller.to_string(),
            instance: instance.to_string(),
            rt,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Records an event about `regarding` (asynchronously; failures are logged).
    pub fn record(
        self: &Arc<Self>,
        regarding: ObjectReference,
        related: Option<ObjectReference>,
        type_: &str,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let now = Timestamp::now();
        let key = Key {
            action: action.to_string(),
            reason: reason.to_string(),
            regarding: ref_key(&regarding),
            related: related.as_ref().map(ref_key).unwrap_or_default(),
        };
        let namespace = regarding
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".into());
        let name = format!(
            "{}.{:x}",
            regarding.name.as_deref().unwrap_or(""),
            now.as_nanosecond()
        );
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                ..Default::default()
            },
            event_time: Some(MicroTime(now)),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            action: Some(action.to_string()),
            reason: Some(reason.to_string()),
            regarding: Some(regarding),
            related,
            note: Some(note),
            type_: Some(type_.to_string()),
            ..Default::default()
        };
        let series_write = {
            let mut cache = self.cache.lock();
            match cache.get_mut(&key) {
                None => {
                    cache.insert(
                        key,
                        Cached {
                            namespace: namespace.clone(),
                            name,
                            count: 1,
                            last_observed: now,
                            created: now,
                            dirty: false,
                        },
                    );
                    None
                }
                Some(c) => {
                    c.count += 1;
                    c.last_observed = now;
                    if c.count == 2 {
                        Some((c.namespace.clone(), c.name.clone()))
                    } else {
                        c.dirty = true;
                        return;
                    }
                }
            }
        };
        let this = self.clone();
        self.rt.spawn(async move {
            let result = match series_write {
                None => this.api.create_event(&namespace, &event).await,
                Some((ns, name)) => match this
                    .api
                    .patch_event(&ns, &name, &series_patch(2, now))
                    .await
                {
                    Ok(true) => Ok(()),
                    // The first event is gone (expired or deleted): start over with a series.
                    Ok(false) => {
                        let mut e = event;
                        e.metadata.name = Some(name);
                        e.series = Some(k8s_openapi::api::events::v1::EventSeries {
                            count: 2,
                            last_observed_time: MicroTime(now),
                        });
                        this.api.create_event(&ns, &e).await
                    }
                    Err(e) => Err(e),
                },
            };
            if let Err(e) = result {
                tracing::warn!(error = %e, "cannot record event");
            }
        });
    }

    /// Writes series counts that changed, and forgets events older than `finish`: the work of
    /// client-go's finish and heartbeat loops.
    pub async fn flush(&self, finish: Duration, all_series: bool) {
        let now = Timestamp::now();
        let finish_nanos = finish.as_nanos() as i128;
        let mut writes = Vec::new();
        {
            let mut cache = self.cache.lock();
            cache.retain(|_, c| {
                let idle = now.as_nanosecond() - c.last_observed.as_nanosecond() > finish_nanos;
                if c.count >= 2 && (c.dirty && (idle || all_series)) {
                    writes.push((
                        c.namespace.clone(),
                        c.name.clone(),
                        c.count,
                        c.last_observed,
                    ));
                    c.dirty = false;
                }
                let old = now.as_nanosecond() - c.created.as_nanosecond() > finish_nanos;
                !(idle && (c.count >= 2 || old))
            });
        }
        for (ns, name, count, at) in writes {
            if let Err(e) = self
                .api
                .patch_event(&ns, &name, &series_patch(count, at))
                .await
            {
                tracing::warn!(error = %e, "cannot update event series");
            }
        }
    }

    /// Runs the finish and heartbeat loops until `stop` turns true.
    pub async fn maintain(
        self: Arc<Self>,
        timings: SeriesTimings,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut finish = tokio::time::interval(timings.finish);
        let mut refresh = tokio::time::interval(timings.refresh);
        finish.tick().await;
        refresh.tick().await;
        loop {
            tokio::select! {
                _ = finish.tick() => self.flush(timings.finish, false).await,
                _ = refresh.tick() => self.flush(timings.finish, true).await,
                r = stop.changed() => if r.is_err() || *stop.borrow() { break },
            }
        }
    }
}
