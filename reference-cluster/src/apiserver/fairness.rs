//! API Priority and Fairness on the request path: requests are classified by the stored
//! FlowSchemas into PriorityLevelConfigurations and wait for a seat of their level
//! ([`crate::security::flowcontrol::Dispatcher`]); a saturated level answers 429 with
//! `Retry-After`. The dispatcher is rebuilt when the flow-control objects change.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use http::Response;
use parking_lot::{Mutex, RwLock};
use prometheus::Registry;
use serde_json::{json, Value};

use super::{respond_json, Body};
use crate::security::flowcontrol::{
    bootstrap_flow_schemas, bootstrap_priority_levels, Dispatcher, FlowMetrics, Permit,
    TooManyRequests,
};
use crate::security::rbac::Attributes;
use crate::store::Revision;

/// The flow-control kind stored under `key`, if it is one.
pub fn kind_of_key(key: &str) -> Option<&'static str> {
    let rest = key.strip_prefix("/registry/")?;
    let (resource, _) = rest.split_once('/')?;
    match resource {
        "flowschemas" => Some("FlowSchema"),
        "prioritylevelconfigurations" => Some("PriorityLevelConfiguration"),
        _ => None,
    }
}

pub struct Fairness {
    concurrency: usize,
    max_wait: Duration,
    metrics: Arc<FlowMetrics>,
    objects: Mutex<BTreeMap<String, (Revision, Option<Value>)>>,
    dispatcher: RwLock<Arc<Dispatcher>>,
}

impl Fairness {
    /// A dispatcher with upstream's bootstrap configuration until the stored objects are
    /// known, its metrics registered in `registry`.
    pub fn new(
        registry: &Registry,
        concurrency: usize,
        max_wait: Duration,
    ) -> Result<Fairness, String> {
        let metrics =
            Arc::new(FlowMetrics::new(registry).map_err(|e| format!("flow-control metrics: {e}"))?);
        let dispatcher = Dispatcher::new(
            &bootstrap_flow_schemas(),
            &bootstrap_priority_levels(),
            concurrency,
        )
        .with_max_wait(max_wait)
        .with_metrics(metrics.clone());
        Ok(Fairness {
            concurrency,
            max_wait,
            metrics,
            objects: Mutex::new(BTreeMap::new()),
            dispatcher: RwLock::new(Arc::new(dispatcher)),
        })
    }

    /// Records a FlowSchema or PriorityLevelConfiguration change and rebuilds the dispatcher.
    pub fn apply(&self, key: &str, revision: Revision, object: Option<&Value>) {
        if kind_of_key(key).is_none() {
            return;
        }
        let mut objects = self.objects.lock();
        if objects.get(key).is_some_and(|(seen, _)| *seen > revision) {
            return;
        }
        let unchanged = objects
            .get(key)
            .is_some_and(|(_, o)| o.as_ref().map(|v| &v["spec"]) == object.map(|v| &v["spec"]));
        objects.insert(key.to_string(), (revision, object.cloned()));
        if !unchanged {
            self.rebuild(&objects);
        }
    }

    pub fn reset(&self, listed: &[(String, Value)], revision: Revision) {
        let mut objects = self.objects.lock();
        objects.clear();
        for (key, obj) in listed {
            if kind_of_key(key).is_some() {
                objects.insert(key.clone(), (revision, Some(obj.clone())));
            }
        }
        self.rebuild(&objects);
    }

    fn rebuild(&self, objects: &BTreeMap<String, (Revision, Option<Value>)>) {
        let mut schemas = Vec::new();
        let mut levels = Vec::new();
        for (key, (_, obj)) in objects {
            let Some(obj) = obj else { continue };
            match kind_of_key(key) {
                Some("FlowSchema") => schemas.push(obj.clone()),
                Some(_) => levels.push(obj.clone()),
                None => {}
            }
        }
        // Until the bootstrap objects are stored, upstream's configuration applies.
        if levels.is_empty() {
            levels = bootstrap_priority_levels();
        }
        if schemas.is_empty() {
            schemas = bootstrap_flow_schemas();
        }
        let dispatcher = Dispatcher::new(&schemas, &levels, self.concurrency)
            .with_max_wait(self.max_wait)
            .with_metrics(self.metrics.clone());
        *self.dispatcher.write() = Arc::new(dispatcher);
    }

    /// Waits for a seat for the request.
    pub async fn acquire(&self, attrs: &Attributes) -> Result<Permit, TooManyRequests> {
        let dispatcher = self.dispatcher.read().clone();
        dispatcher.acquire(attrs).await
    }

    pub fn limit_of(&self, level: &str) -> Option<usize> {
        self.dispatcher.read().limit_of(level)
    }
}

/// The 429 answered when a priority level is saturated.
pub fn too_many_requests(t: &TooManyRequests) -> Response<Body> {
    let status = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": t.message(),
        "reason": "TooManyRequests",
        "details": {"retryAfterSeconds": t.retry_after_seconds},
        "code": 429,
    });
    let mut resp = respond_json(429, &status);
    if let Ok(v) = http::HeaderValue::from_str(&t.retry_after_seconds.to_string()) {
        resp.headers_mut().insert(http::header::RETRY_AFTER, v);
    }
    resp
}
