//! The admission webhooks the chain calls: every Mutating- and ValidatingWebhookConfiguration
//! as last seen (kept current by [`super::informer`] and this server's own writes), ordered by
//! configuration name as upstream sorts them, and the resolution of `clientConfig.service`
//! references to an address this process can reach.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use serde_json::{json, Value};

use super::ApiServer;
use crate::security::webhook::{Endpoint, ServiceResolver, Webhook};
use crate::store::Revision;

/// The kind of webhook configuration stored under `key`, if it is one.
pub fn configuration_kind_of_key(key: &str) -> Option<&'static str> {
    let rest = key.strip_prefix("/registry/")?;
    let (resource, _) = rest.split_once('/')?;
    match resource {
        "mutatingwebhookconfigurations" => Some("MutatingWebhookConfiguration"),
        "validatingwebhookconfigurations" => Some("ValidatingWebhookConfiguration"),
        _ => None,
    }
}

#[derive(Default)]
pub struct WebhookCache {
    /// Storage key → (revision seen, configuration; `None` once deleted).
    configs: Mutex<BTreeMap<String, (Revision, Option<Value>)>>,
    mutating: RwLock<Arc<Vec<Webhook>>>,
    validating: RwLock<Arc<Vec<Webhook>>>,
}

impl WebhookCache {
    /// Records the configuration stored under `key` at `revision` (`None`: deleted), unless
    /// something newer is already known.
    pub fn apply(&self, key: &str, revision: Revision, object: Option<&Value>) {
        let Some(kind) = configuration_kind_of_key(key) else {
            return;
        };
        let mut configs = self.configs.lock();
        if configs.get(key).is_some_and(|(seen, _)| *seen > revision) {
            return;
        }
        let object = object.map(|o| {
            let mut o = o.clone();
            o["kind"] = json!(kind);
            o
        });
        configs.insert(key.to_string(), (revision, object));
        self.rebuild(&configs);
    }

    /// Replaces everything with a fresh list at `revision`.
    pub fn reset(&self, objects: &[(String, Value)], revision: Revision) {
        let mut configs = self.configs.lock();
        configs.clear();
        for (key, obj) in objects {
            if let Some(kind) = configuration_kind_of_key(key) {
                let mut o = obj.clone();
                o["kind"] = json!(kind);
                configs.insert(key.clone(), (revision, Some(o)));
            }
        }
        self.rebuild(&configs);
    }

    fn rebuild(&self, configs: &BTreeMap<String, (Revision, Option<Value>)>) {
        let mut by_name: Vec<&Value> = configs.values().filter_map(|(_, o)| o.as_ref()).collect();
        by_name.sort_by(|a, b| {
            let name = |v: &Value| {
                v.pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            name(a).cmp(&name(b))
        });
        let mut mutating = Vec::new();
        let mut validating = Vec::new();
        for config in by_name {
            match Webhook::from_configuration(config) {
                Ok(hooks) => {
                    for h in hooks {
                        if h.mutating {
                            mutating.push(h);
                        } else {
                            validating.push(h);
                        }
                    }
                }
                Err(e) => tracing::warn!("ignoring a webhook configuration: {e}"),
            }
        }
        *self.mutating.write() = Arc::new(mutating);
        *self.validating.write() = Arc::new(validating);
    }

    pub fn mutating(&self) -> Arc<Vec<Webhook>> {
        self.mutating.read().clone()
    }

    pub fn validating(&self) -> Arc<Vec<Webhook>> {
        self.validating.read().clone()
    }
}

/// Service references resolved ahead of the (synchronous) resolver calls.
#[derive(Default)]
pub struct ResolvedServices(HashMap<(String, String, u16), (String, String)>);

impl ServiceResolver for ResolvedServices {
    fn resolve(&self, namespace: &str, name: &str, port: u16) -> Option<(String, String)> {
        self.0
            .get(&(namespace.to_string(), name.to_string(), port))
            .cloned()
    }
}

fn host(ip: &str) -> String {
    if ip.contains(':') {
        format!("[{ip}]")
    } else {
        ip.to_string()
    }
}

impl ApiServer {
    /// Resolves the Service references of `hooks`: a ready endpoint of the Service's port when
    /// its Endpoints list one (no kube-proxy routes cluster IPs here), else the cluster IP
    /// itself (upstream's default resolver; cluster IPs are loopback addresses here).
    pub async fn resolve_webhook_services(&self, hooks: &[&Webhook]) -> ResolvedServices {
        let mut out = ResolvedServices::default();
        for hook in hooks {
            let Endpoint::Service {
                namespace,
                name,
                port,
                ..
            } = &hook.endpoint
            else {
                continue;
            };
            let key = (namespace.clone(), name.clone(), *port);
            if out.0.contains_key(&key) {
                continue;
            }
            if let Some(url) = self.service_url(namespace, name, *port).await {
                out.0.insert(key, (url, format!("{name}.{namespace}.svc")));
            }
        }
        out
    }

    async fn service_url(&self, namespace: &str, name: &str, port: u16) -> Option<String> {
        let svc_info = self.catalog.get("", "v1", "services")?;
        let svc = self
            .get_object(&svc_info, Some(namespace), name)
            .await
            .ok()?;
        let ports = svc
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let svc_port = ports
            .iter()
            .find(|p| p.get("port").and_then(Value::as_u64) == Some(u64::from(port)))?;
        let port_name = svc_port
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if let Some(ep_info) = self.catalog.get("", "v1", "endpoints") {
            if let Ok(ep) = self.get_object(&ep_info, Some(namespace), name).await {
                for subset in ep
                    .get("subsets")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let ep_port = subset
                        .get("ports")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .find(|p| {
                            p.get("name").and_then(Value::as_str).unwrap_or_default() == port_name
                        })
                        .and_then(|p| p.get("port").and_then(Value::as_u64));
                    let ip = subset
                        .pointer("/addresses/0/ip")
                        .and_then(Value::as_str)
                        .filter(|ip| !ip.is_empty());
                    if let (Some(ip), Some(p)) = (ip, ep_port) {
                        return Some(format!("https://{}:{p}", host(ip)));
                    }
                }
            }
        }
        let ip = svc
            .pointer("/spec/clusterIP")
            .and_then(Value::as_str)
            .filter(|ip| !ip.is_empty() && *ip != "None")?;
        Some(format!("https://{}:{port}", host(ip)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(kind: &str, name: &str, hooks: &[&str]) -> Value {
        let webhooks: Vec<Value> = hooks
            .iter()
            .map(|h| json!({"name": h, "clientConfig": {"url": "https://127.0.0.1:1/"}, "sideEffects": "None", "admissionReviewVersions": ["v1"]}))
            .collect();
        json!({"kind": kind, "metadata": {"name": name}, "webhooks": webhooks})
    }

    #[test]
    fn orders_by_configuration_name_and_forgets_deleted_ones() {
        let cache = WebhookCache::default();
        let key_b = "/registry/validatingwebhookconfigurations/b";
        let key_a = "/registry/validatingwebhookconfigurations/a";
        cache.apply(key_b, 3, Some(&config("", "b", &["b1", "b2"])));
        cache.apply(key_a, 4, Some(&config("", "a", &["a1"])));
        cache.apply(
            "/registry/mutatingwebhookconfigurations/m",
            5,
            Some(&config("", "m", &["m1"])),
        );
        let names: Vec<String> = cache.validating().iter().map(|h| h.name.clone()).collect();
        assert_eq!(names, vec!["a1", "b1", "b2"]);
        assert_eq!(cache.mutating().len(), 1);
        assert!(cache.mutating()[0].mutating);
        cache.apply(key_a, 6, None);
        cache.apply(key_a, 5, Some(&config("", "a", &["a1"])));
        let names: Vec<String> = cache.validating().iter().map(|h| h.name.clone()).collect();
        assert_eq!(
            names,
            vec!["b1", "b2"],
            "a stale event does not resurrect a deleted config"
        );
    }
}
