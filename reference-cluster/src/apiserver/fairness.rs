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
use serde_json::Value;

use super::Body;
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
    /// UIDs of the stored FlowSchemas and PriorityLevelConfigurations by name, for the
    /// `X-Kubernetes-PF-*-UID` response headers (empty until the objects are stored).
    uids: RwLock<Uids>,
}

#[derive(Default)]
struct Uids {
    schemas: BTreeMap<String, String>,
    levels: BTreeMap<String, String>,
}

/// The response headers naming a request's FlowSchema and PriorityLevelConfiguration.
pub const FLOW_SCHEMA_UID_HEADER: &str = "X-Kubernetes-PF-FlowSchema-UID";
pub const PRIORITY_LEVEL_UID_HEADER: &str = "X-Kubernetes-PF-PriorityLevel-UID";

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
            uids: RwLock::new(Uids::default()),
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
        let mut uids = Uids::default();
        for (key, (_, obj)) in objects {
            let Some(obj) = obj else { continue };
            let meta = |f: &str| {
                obj.pointer(&format!("/metadata/{f}"))
                    .and_then(Value::as_str)
            };
            if let (Some(name), Some(uid), Some(kind)) =
                (meta("name"), meta("uid"), kind_of_key(key))
            {
                let map = if kind == "FlowSchema" {
                    &mut uids.schemas
                } else {
                    &mut uids.levels
                };
                map.insert(name.to_string(), uid.to_string());
            }
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
        *self.uids.write() = uids;
    }

    /// The UIDs of the FlowSchema and priority level a request is classified into, as the
    /// headers upstream sets on every response it classified; `None` before the
    /// flow-control objects are stored (they have no UID yet).
    pub fn classification_uids(&self, attrs: &Attributes) -> Option<(String, String)> {
        let (schema, level, _) = self.dispatcher.read().classify(attrs);
        let uids = self.uids.read();
        Some((
            uids.schemas.get(&schema)?.clone(),
            uids.levels.get(&level)?.clone(),
        ))
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

/// The 429 answered when a priority level is saturated: as upstream's filter answers it, plain
/// text (not a `Status`) with `Retry-After`, before any handler could negotiate an encoding.
pub fn too_many_requests(t: &TooManyRequests) -> Response<Body> {
    let mut resp = super::respond_bytes(
        429,
        "text/plain; charset=utf-8",
        format!("{}\n", t.message()),
    );
    resp.headers_mut().insert(
        "X-Content-Type-Options",
        http::HeaderValue::from_static("nosniff"),
    );
    if let Ok(v) = http::HeaderValue::from_str(&t.retry_after_seconds.to_string()) {
        resp.headers_mut().insert(http::header::RETRY_AFTER, v);
    }
    resp
}

/// Names the FlowSchema and priority level that classified a request in its response, as
/// upstream does for every request it classified, rejected ones included.
pub fn set_classification_headers(resp: &mut Response<Body>, uids: Option<(String, String)>) {
    let Some((schema, level)) = uids else {
        return;
    };
    for (name, uid) in [
        (FLOW_SCHEMA_UID_HEADER, schema),
        (PRIORITY_LEVEL_UID_HEADER, level),
    ] {
        if let Ok(v) = http::HeaderValue::from_str(&uid) {
            resp.headers_mut().insert(name, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::user::UserInfo;
    use serde_json::json;

    /// Stored copies of the bootstrap objects, each with a UID as the store gives them.
    fn stored(objects: Vec<Value>, plural: &str) -> Vec<(String, Value)> {
        objects
            .into_iter()
            .map(|mut o| {
                let name = o["metadata"]["name"].as_str().unwrap().to_string();
                o["metadata"]["uid"] = json!(format!("uid-{name}"));
                (format!("/registry/{plural}/{name}"), o)
            })
            .collect()
    }

    #[test]
    fn responses_name_the_uids_of_the_schema_and_level_that_classified_them() {
        let f = Fairness::new(&Registry::new(), 100, Duration::from_secs(1)).unwrap();
        let robot = Attributes {
            user: UserInfo {
                name: "system:serviceaccount:ns:robot".into(),
                groups: vec![
                    "system:serviceaccounts".into(),
                    "system:serviceaccounts:ns".into(),
                    "system:authenticated".into(),
                ],
                ..Default::default()
            },
            verb: "list".into(),
            api_version: "v1".into(),
            resource: "configmaps".into(),
            namespace: "ns".into(),
            resource_request: true,
            ..Default::default()
        };
        assert_eq!(
            f.classification_uids(&robot),
            None,
            "objects not stored yet have no UID"
        );
        let mut objects = stored(bootstrap_flow_schemas(), "flowschemas");
        objects.extend(stored(
            bootstrap_priority_levels(),
            "prioritylevelconfigurations",
        ));
        f.reset(&objects, 10);
        assert_eq!(
            f.classification_uids(&robot),
            Some(("uid-service-accounts".into(), "uid-workload-low".into()))
        );
    }
}
