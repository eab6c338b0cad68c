//! The cucumber World: one per scenario attempt.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use kube::Client;
use kubeproof_report::{EventSummary, Failure};
use rand::Rng as _;
use serde_json::{json, Value};

use crate::api::{self, ApiResponse};
use crate::kinds::{Resolver, ResourceInfo};
use crate::watch::WatchHandle;

/// What every scenario of a run shares: the connection to the target and run settings.
pub struct Target {
    pub client: Client,
    /// The same connection without kube-rs's retries of 429/503/504, for steps where such an
    /// answer is the behaviour under test (a PodDisruptionBudget refusing an eviction).
    pub exact_client: Client,
    /// The configuration both clients were built from, for steps that send other
    /// credentials (a ServiceAccount token, none at all) to the same server.
    pub config: kube::Config,
    pub resolver: Resolver,
    /// Leave a failing scenario's namespace and objects in place for debugging.
    pub keep_on_failure: bool,
    /// Stops and starts the target's components, when the runner started the cluster itself.
    pub control: Option<Arc<dyn crate::control::ClusterControl>>,
    /// Compacts the target's storage history, when the runner started the cluster itself.
    pub history: Option<Arc<dyn crate::control::HistoryControl>>,
    /// The API server's audit log, when the runner knows where it is and can read it.
    pub audit_log: Option<std::path::PathBuf>,
    /// The scheduler's secure port, reached with the runner's credentials, when known.
    pub scheduler: Option<crate::library::metrics::SchedulerEndpoint>,
}

/// An object a scenario created, to delete after it.
#[derive(Clone, Debug)]
pub struct Created {
    pub resource: ResourceInfo,
    pub namespace: Option<String>,
    pub name: String,
}

/// The state of one list pagination, for "next page" steps.
#[derive(Clone, Debug, Default)]
pub struct Listing {
    pub path: String,
    pub query: Vec<(String, String)>,
    pub continue_token: Option<String>,
    /// Names of the items on the last page.
    pub page: Vec<String>,
    /// Names seen over all pages of this listing, in order.
    pub all: Vec<String>,
    pub pages: usize,
}

#[derive(Default)]
pub struct KubeWorld {
    pub target: Option<Arc<Target>>,
    /// The scenario's own namespace (`kp-<random>`).
    pub namespace: String,
    /// Template variables: `namespace`, `suffix`, and values remembered by steps.
    pub vars: BTreeMap<String, String>,
    /// Objects this scenario created, in creation order.
    pub created: Vec<Created>,
    pub last: Option<ApiResponse>,
    pub listing: Option<Listing>,
    pub watches: BTreeMap<String, WatchHandle>,
    /// Set by the failing step; the report reads it from the failure event.
    pub failure: Option<Failure>,
    /// Merge patches (path, patch) undoing changes to shared objects such as nodes, applied
    /// newest first after the scenario.
    pub restore: Vec<(String, Value)>,
    /// Pods followed by a watch for "at every moment" checks.
    pub trackers: BTreeMap<String, crate::library::invariants::PodTracker>,
    /// Components this scenario stopped and has not started again; cleanup starts them.
    pub stopped_components: Vec<String>,
    /// The answers to concurrent bursts of requests, by the ServiceAccount that sent them.
    pub bursts: BTreeMap<String, crate::library::flood::Burst>,
    /// Extension API servers this scenario started; they stop with the scenario.
    pub extension_servers: Vec<crate::library::aggregation::ExtensionServer>,
}

impl fmt::Debug for KubeWorld {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubeWorld")
            .field("namespace", &self.namespace)
            .field("vars", &self.vars)
            .field("created", &self.created.len())
            .field("last", &self.last.as_ref().map(|r| r.describe()))
            .finish()
    }
}

impl cucumber::World for KubeWorld {
    type Error = std::convert::Infallible;

    async fn new() -> Result<Self, Self::Error> {
        Ok(KubeWorld::default())
    }
}

/// A short random DNS-label-safe string.
/// How long cleanup waits for a node the scenario disturbed to be healthy again.
const NODE_RECOVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Waits (bounded) until the node is Ready and carries none of the `node.kubernetes.io/` taints
/// the control plane adds for conditions (unschedulable, pressure, not-ready, unreachable): they
/// are removed asynchronously after a node is restored, and a scenario starting meanwhile would
/// see one node fewer.
async fn wait_until_healthy(client: &Client, path: &str) {
    let deadline = std::time::Instant::now() + NODE_RECOVERY;
    while std::time::Instant::now() < deadline {
        let Ok(req) = api::request(http::Method::GET, path, None, Vec::new()) else {
            return;
        };
        match api::send(client, req).await {
            Ok(resp) if resp.is_success() => {
                if resp.json.as_ref().is_some_and(node_is_healthy) {
                    return;
                }
            }
            // Gone, or the cluster is unreachable: nothing to wait for.
            _ => return,
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

fn node_is_healthy(node: &Value) -> bool {
    let ready = node
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        });
    let tainted = node
        .pointer("/spec/taints")
        .and_then(Value::as_array)
        .is_some_and(|ts| {
            ts.iter().any(|t| {
                t["key"]
                    .as_str()
                    .is_some_and(|k| k.starts_with("node.kubernetes.io/"))
            })
        });
    ready && !tainted
}

pub fn random_suffix(len: usize) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

impl KubeWorld {
    pub fn target(&self) -> anyhow::Result<&Arc<Target>> {
        self.target
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("the scenario is not connected to a cluster"))
    }

    pub fn client(&self) -> anyhow::Result<&Client> {
        Ok(&self.target()?.client)
    }

    pub fn render(&self, text: &str) -> anyhow::Result<String> {
        crate::template::render(text, &self.vars).map_err(anyhow::Error::msg)
    }

    /// Connects the world and creates its namespace. Called before the first step.
    pub async fn start(&mut self, target: Arc<Target>) -> anyhow::Result<()> {
        let suffix = random_suffix(6);
        self.namespace = format!("kp-{suffix}");
        self.vars.insert("namespace".into(), self.namespace.clone());
        self.vars.insert("suffix".into(), random_suffix(5));
        self.target = Some(target);
        let ns = self.namespace.clone();
        self.create_namespace(&ns).await
    }

    /// Creates a namespace owned by this scenario (deleted after it).
    pub async fn create_namespace(&mut self, name: &str) -> anyhow::Result<()> {
        let res = self.target()?.resolver.by_word("namespaces").await?;
        let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {"kubeproof.dev/scenario": "true"}}});
        let req = api::request(
            http::Method::POST,
            &res.collection_path(None),
            Some("application/json"),
            serde_json::to_vec(&body)?,
        )?;
        let resp = api::send(self.client()?, req).await?;
        if !resp.is_success() {
            anyhow::bail!("creating namespace {name}: {}", resp.describe());
        }
        self.created.push(Created {
            resource: res,
            namespace: None,
            name: name.to_string(),
        });
        Ok(())
    }

    /// Registers a merge patch that undoes a change to a shared object (e.g. a cordoned node).
    pub fn restore_after(&mut self, path: &str, patch: Value) {
        self.restore.push((path.to_string(), patch));
    }

    pub fn record_created(&mut self, resource: &ResourceInfo, namespace: Option<&str>, name: &str) {
        let ns = if resource.namespaced {
            namespace.map(str::to_string)
        } else {
            None
        };
        if !self.created.iter().any(|c| {
            c.resource.plural == resource.plural
                && c.resource.group == resource.group
                && c.namespace == ns
                && c.name == name
        }) {
            self.created.push(Created {
                resource: resource.clone(),
                namespace: ns,
                name: name.to_string(),
            });
        }
    }

    /// Deletes what the scenario created, newest first. Finalizers the scenario may have left
    /// on its own objects are cleared first so cleanup never leaves objects stuck deleting.
    /// Errors are ignored: cleanup must not turn a passing scenario into a failure.
    pub async fn cleanup(&mut self) {
        for w in std::mem::take(&mut self.watches).into_values() {
            w.stop();
        }
        let Some(target) = self.target.clone() else {
            return;
        };
        let client = &target.client;
        if let Some(control) = &target.control {
            for c in std::mem::take(&mut self.stopped_components) {
                let _ = control.start(&c);
            }
        }
        // Restoring nodes first lets the scenario's own pods leave before its namespace goes.
        let restored = std::mem::take(&mut self.restore);
        for (path, patch) in restored.iter().rev() {
            if let Ok(req) = api::request(
                http::Method::PATCH,
                path,
                Some("application/merge-patch+json"),
                patch.to_string().into_bytes(),
            ) {
                let _ = api::send(client, req).await;
            }
        }
        let mut nodes: Vec<&str> = restored
            .iter()
            .map(|(p, _)| p.as_str())
            .filter(|p| p.starts_with("/api/v1/nodes/"))
            .collect();
        nodes.sort_unstable();
        nodes.dedup();
        for path in nodes {
            wait_until_healthy(client, path).await;
        }
        for c in std::mem::take(&mut self.created).into_iter().rev() {
            let path = c.resource.object_path(c.namespace.as_deref(), &c.name);
            if c.resource.kind != "Namespace" {
                let clear = json!({"metadata": {"finalizers": null}});
                if let Ok(req) = api::request(
                    http::Method::PATCH,
                    &path,
                    Some("application/merge-patch+json"),
                    clear.to_string().into_bytes(),
                ) {
                    let _ = api::send(client, req).await;
                }
            }
            let opts = json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"});
            if let Ok(req) = api::request(
                http::Method::DELETE,
                &path,
                Some("application/json"),
                opts.to_string().into_bytes(),
            ) {
                let _ = api::send(client, req).await;
            }
        }
    }

    /// The namespace's most recent Events, newest last.
    pub async fn recent_events(&self, limit: usize) -> Vec<EventSummary> {
        let Ok(client) = self.client() else {
            return Vec::new();
        };
        let path = format!("/api/v1/namespaces/{}/events", self.namespace);
        let Ok(req) = api::request(http::Method::GET, &path, None, Vec::new()) else {
            return Vec::new();
        };
        let Ok(resp) = api::send(client, req).await else {
            return Vec::new();
        };
        let items = resp
            .json
            .as_ref()
            .and_then(|j| j.get("items"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut events: Vec<(String, EventSummary)> = items
            .iter()
            .map(|e| {
                let s = |p: &str| {
                    e.pointer(p)
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string()
                };
                let when = [
                    s("/lastTimestamp"),
                    s("/eventTime"),
                    s("/metadata/creationTimestamp"),
                ]
                .into_iter()
                .find(|t| !t.is_empty())
                .unwrap_or_default();
                (
                    when,
                    EventSummary {
                        type_: s("/type"),
                        reason: s("/reason"),
                        object: format!(
                            "{}/{}",
                            s("/involvedObject/kind"),
                            s("/involvedObject/name")
                        ),
                        message: s("/message"),
                        count: e.get("count").and_then(Value::as_u64).unwrap_or(1) as u32,
                    },
                )
            })
            .collect();
        events.sort_by(|a, b| a.0.cmp(&b.0));
        let skip = events.len().saturating_sub(limit);
        events.into_iter().skip(skip).map(|(_, e)| e).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_is_healthy_when_ready_and_free_of_condition_taints() {
        let ready = json!({"type": "Ready", "status": "True"});
        let healthy = json!({"status": {"conditions": [ready]}, "spec": {"taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]}});
        assert!(node_is_healthy(&healthy));
        let cordoned = json!({"status": {"conditions": [ready]}, "spec": {"taints": [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]}});
        assert!(!node_is_healthy(&cordoned));
        let unknown = json!({"status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}});
        assert!(!node_is_healthy(&unknown));
    }
}
