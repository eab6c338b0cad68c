//! The resource metrics API, `metrics.k8s.io/v1beta1` NodeMetrics and PodMetrics, served by the
//! API server itself from the kubelets' usage summaries (`GET /stats/summary` of each node's
//! kubelet endpoint, see `node/stats.rs`).
//!
//! Upstream serves this group from metrics-server behind an APIService; this cluster keeps it
//! local (the aggregator, `aggregator.rs`, never proxies a group the API server serves itself)
//! and does what metrics-server does, on demand instead of on a timer: it asks only the kubelets of the nodes a request is about, so a cluster nobody asks
//! for metrics pays nothing. Clients see the same paths, verbs, kinds, units and errors, so
//! `kubectl top` and the HPA controller's metrics client work unchanged.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::{Request, Response};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

use super::request::ResourceRequest;
use super::{object, respond_json, ApiError, ApiResult, ApiServer, Body, RequestContext};
use crate::resources::labels::parse_label_selector;
use crate::resources::quantity::Quantity;
use crate::resources::ResourceInfo;

pub const GROUP: &str = "metrics.k8s.io";
const API_VERSION: &str = "metrics.k8s.io/v1beta1";

/// The interval a reported usage is averaged over (metrics-server's default
/// `--metric-resolution`): the sim's usage is constant, so every window is exact.
pub const WINDOW: &str = "15s";

/// How long one kubelet may take to answer.
const KUBELET_TIMEOUT: Duration = Duration::from_secs(5);

/// Kubelets asked at once.
const CONCURRENT_SCRAPES: usize = 16;

/// Whether `info` is one of this API's resources (served here, never stored).
pub fn is_metrics(info: &ResourceInfo) -> bool {
    info.custom.is_none() && info.group == GROUP
}

/// `GET` and `LIST` of `nodes` and `pods` in `metrics.k8s.io/v1beta1`.
pub async fn handle(
    server: &Arc<ApiServer>,
    ctx: &RequestContext,
    info: &ResourceInfo,
    ns: Option<&str>,
    r: &ResourceRequest,
) -> ApiResult<Response<Body>> {
    match (r.verb.as_str(), r.name.as_deref()) {
        ("get", Some(name)) | ("list", Some(name)) => {
            let selector = Selection::one(name);
            let mut items = collect(server, info, ns, &selector).await?;
            match items.pop() {
                Some(item) => Ok(respond_json(200, &item)),
                None => Err(not_found(info, ns, name)),
            }
        }
        ("list", None) => {
            let selection = Selection::from_query(ctx)?;
            let items = collect(server, info, ns, &selection).await?;
            let kind = format!("{}List", info.kind);
            Ok(respond_json(
                200,
                &json!({"kind": kind, "apiVersion": API_VERSION, "metadata": {}, "items": items}),
            ))
        }
        (verb, _) => Err(ApiError::method_not_allowed(verb)),
    }
}

/// metrics-server's NotFound names the kind and, for pods, `namespace/name`.
fn not_found(info: &ResourceInfo, ns: Option<&str>, name: &str) -> ApiError {
    let what = if info.plural == "pods" {
        "podmetrics"
    } else {
        "nodemetrics"
    };
    let shown = match ns {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    };
    let mut e = ApiError::new(
        404,
        "NotFound",
        format!("{what}.{GROUP} \"{shown}\" not found"),
    );
    e.details = Some(json!({"name": shown, "group": GROUP, "kind": what}));
    e
}

/// Which objects a request is about.
struct Selection {
    name: Option<String>,
    labels: Option<crate::resources::labels::LabelSelector>,
    /// `metadata.name` / `metadata.namespace` from a field selector.
    fields: Vec<(String, String, bool)>,
}

impl Selection {
    fn one(name: &str) -> Selection {
        Selection {
            name: Some(name.to_string()),
            labels: None,
            fields: Vec::new(),
        }
    }

    fn from_query(ctx: &RequestContext) -> ApiResult<Selection> {
        let labels = match ctx.q("labelSelector").filter(|s| !s.is_empty()) {
            Some(s) => Some(parse_label_selector(s).map_err(ApiError::bad_request)?),
            None => None,
        };
        let mut fields = Vec::new();
        for term in ctx
            .q("fieldSelector")
            .unwrap_or("")
            .split(',')
            .filter(|t| !t.is_empty())
        {
            let (key, value, equal) = if let Some((k, v)) = term.split_once("!=") {
                (k, v, false)
            } else if let Some((k, v)) = term.split_once("==") {
                (k, v, true)
            } else if let Some((k, v)) = term.split_once('=') {
                (k, v, true)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid field selector {term:?}: want key=value"
                )));
            };
            if !matches!(key.trim(), "metadata.name" | "metadata.namespace") {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {}",
                    key.trim()
                )));
            }
            fields.push((key.trim().to_string(), value.trim().to_string(), equal));
        }
        Ok(Selection {
            name: None,
            labels,
            fields,
        })
    }

    fn matches(&self, obj: &Value) -> bool {
        let name = object::name(obj);
        if self.name.as_deref().is_some_and(|n| n != name) {
            return false;
        }
        if self.labels.as_ref().is_some_and(|l| !l.matches_object(obj)) {
            return false;
        }
        let namespace = obj
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("");
        self.fields.iter().all(|(key, value, equal)| {
            let actual = if key == "metadata.name" {
                name
            } else {
                namespace
            };
            (actual == value) == *equal
        })
    }
}

async fn list_stored(
    server: &ApiServer,
    group: &str,
    plural: &str,
    ns: Option<&str>,
) -> ApiResult<Vec<Value>> {
    let info = server
        .catalog
        .get(group, "v1", plural)
        .ok_or_else(|| ApiError::internal(format!("{plural} are not registered")))?;
    let list = server
        .store
        .list(&info.prefix(ns), None, None, 0)
        .await
        .map_err(|e| ApiError::internal(format!("cannot read {plural}: {e}")))?;
    Ok(list
        .items
        .iter()
        .filter_map(|kv| object::from_stored(kv).ok())
        .collect())
}

/// The metrics objects `selection` asks for, in name order (namespace, name for pods).
async fn collect(
    server: &Arc<ApiServer>,
    info: &ResourceInfo,
    ns: Option<&str>,
    selection: &Selection,
) -> ApiResult<Vec<Value>> {
    let nodes = list_stored(server, "", "nodes", None).await?;
    let nodes: HashMap<String, Value> = nodes
        .into_iter()
        .map(|n| (object::name(&n).to_string(), n))
        .collect();
    if info.plural == "nodes" {
        let mut wanted: Vec<&Value> = nodes.values().filter(|n| selection.matches(n)).collect();
        wanted.sort_by_key(|n| object::name(n).to_string());
        let names: Vec<String> = wanted.iter().map(|n| object::name(n).to_string()).collect();
        let summaries = scrape(&nodes, &names).await;
        let mut out = Vec::new();
        for node in wanted {
            let name = object::name(node);
            if let Some(s) = summaries.get(name) {
                if let Some(m) = node_metrics(node, &s["node"]) {
                    out.push(m);
                }
            }
        }
        return Ok(out);
    }
    let mut pods: Vec<Value> = list_stored(server, "", "pods", ns)
        .await?
        .into_iter()
        .filter(|p| selection.matches(p))
        .filter(|p| {
            p.pointer("/status/phase").and_then(Value::as_str) == Some("Running")
                && p.pointer("/spec/nodeName")
                    .and_then(Value::as_str)
                    .is_some_and(|n| !n.is_empty())
        })
        .collect();
    pods.sort_by(|a, b| {
        let key = |p: &Value| {
            (
                p.pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                object::name(p).to_string(),
            )
        };
        key(a).cmp(&key(b))
    });
    let mut node_names: Vec<String> = pods
        .iter()
        .filter_map(|p| p.pointer("/spec/nodeName").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    node_names.sort();
    node_names.dedup();
    let summaries = scrape(&nodes, &node_names).await;
    // Each pod's entry in its node's summary, by UID (a pod recreated under the same name is
    // another pod).
    let mut reported: HashMap<String, &Value> = HashMap::new();
    for s in summaries.values() {
        for p in s["pods"].as_array().into_iter().flatten() {
            if let Some(uid) = p.pointer("/podRef/uid").and_then(Value::as_str) {
                reported.insert(uid.to_string(), p);
            }
        }
    }
    Ok(pods
        .iter()
        .filter_map(|pod| {
            let uid = pod.pointer("/metadata/uid").and_then(Value::as_str)?;
            pod_metrics(pod, reported.get(uid)?)
        })
        .collect())
}

/// The summaries of `names` from their kubelets; nodes whose kubelet cannot be reached are
/// left out (as metrics-server leaves out a node it failed to scrape).
async fn scrape(nodes: &HashMap<String, Value>, names: &[String]) -> HashMap<String, Value> {
    let jobs: Vec<(String, SocketAddr)> = names
        .iter()
        .filter_map(|n| {
            let addr = super::logs::kubelet_address(nodes.get(n)?).ok()?;
            Some((n.clone(), addr))
        })
        .collect();
    futures::stream::iter(jobs)
        .map(|(name, addr)| async move {
            match fetch_summary(addr, &name).await {
                Ok(s) => Some((name, s)),
                Err(e) => {
                    tracing::debug!(node = %name, error = %e, "cannot read the node's usage summary");
                    None
                }
            }
        })
        .buffer_unordered(CONCURRENT_SCRAPES)
        .filter_map(|x| async move { x })
        .collect()
        .await
}

/// `GET /stats/summary?node=<name>` on the kubelet at `addr` (plain HTTP on loopback, as the
/// logs proxy).
async fn fetch_summary(addr: SocketAddr, node: &str) -> Result<Value, String> {
    // Node names are DNS subdomains: nothing in them needs escaping in a query.
    let uri = format!("/stats/summary?node={node}");
    let work = async {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot reach the kubelet at {addr}: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let req = Request::get(uri)
            .header(http::header::HOST, addr.to_string())
            .body(http_body_util::Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        let code = resp.status().as_u16();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        if code != 200 {
            return Err(format!(
                "the kubelet answered {code}: {}",
                String::from_utf8_lossy(&bytes)
            ));
        }
        serde_json::from_slice(&bytes).map_err(|e| e.to_string())
    };
    tokio::time::timeout(KUBELET_TIMEOUT, work)
        .await
        .map_err(|_| format!("the kubelet at {addr} did not answer in time"))?
}

/// CPU as metrics-server prints it: nanocores in the shortest exact form (`250m`, `12345n`).
pub fn cpu_quantity(nanocores: u64) -> String {
    Quantity::parse(&format!("{nanocores}n"))
        .map(|q| q.canonical())
        .unwrap_or_else(|_| format!("{nanocores}n"))
}

/// Memory as metrics-server prints it: binary units (`600Mi`, `12345Ki`).
pub fn memory_quantity(bytes: u64) -> String {
    if !bytes.is_multiple_of(1024) {
        return bytes.to_string();
    }
    let text = format!("{}Ki", bytes / 1024);
    Quantity::parse(&text)
        .map(|q| q.canonical())
        .unwrap_or(text)
}

fn usage(stats: &Value) -> Option<Value> {
    let cpu = stats.pointer("/cpu/usageNanoCores")?.as_u64()?;
    let memory = stats.pointer("/memory/workingSetBytes")?.as_u64()?;
    Some(json!({"cpu": cpu_quantity(cpu), "memory": memory_quantity(memory)}))
}

/// When the sample was taken: the pod's (or node's) CPU time, else its first container's.
fn timestamp(stats: &Value) -> Value {
    stats
        .pointer("/cpu/time")
        .or_else(|| stats.pointer("/containers/0/cpu/time"))
        .cloned()
        .unwrap_or_else(|| json!(object::now_rfc3339()))
}

fn labels_of(obj: &Value) -> Value {
    obj.pointer("/metadata/labels")
        .cloned()
        .unwrap_or_else(|| json!({}))
}

fn node_metrics(node: &Value, stats: &Value) -> Option<Value> {
    Some(json!({
        "kind": "NodeMetrics",
        "apiVersion": API_VERSION,
        "metadata": {
            "name": object::name(node),
            "creationTimestamp": object::now_rfc3339(),
            "labels": labels_of(node),
        },
        "timestamp": timestamp(stats),
        "window": WINDOW,
        "usage": usage(stats)?,
    }))
}

/// A pod's metrics once every running container of it has been measured.
fn pod_metrics(pod: &Value, stats: &Value) -> Option<Value> {
    let measured: BTreeMap<&str, &Value> = stats["containers"]
        .as_array()?
        .iter()
        .filter_map(|c| Some((c.get("name")?.as_str()?, c)))
        .collect();
    let containers: Vec<Value> = measured
        .iter()
        .filter_map(|(name, c)| Some(json!({"name": name, "usage": usage(c)?})))
        .collect();
    if containers.is_empty() {
        return None;
    }
    Some(json!({
        "kind": "PodMetrics",
        "apiVersion": API_VERSION,
        "metadata": {
            "name": object::name(pod),
            "namespace": pod.pointer("/metadata/namespace").cloned().unwrap_or(Value::Null),
            "creationTimestamp": object::now_rfc3339(),
            "labels": labels_of(pod),
        },
        "timestamp": timestamp(stats),
        "window": WINDOW,
        "containers": containers,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_print_as_metrics_server_prints_them() {
        assert_eq!(cpu_quantity(250_000_000), "250m");
        assert_eq!(cpu_quantity(2_000_000_000), "2");
        assert_eq!(cpu_quantity(12_345), "12345n");
        assert_eq!(cpu_quantity(0), "0");
        assert_eq!(memory_quantity(600 * 1024 * 1024), "600Mi");
        assert_eq!(memory_quantity(12_345 * 1024), "12345Ki");
        assert_eq!(memory_quantity(1000), "1000");
    }

    #[test]
    fn pods_are_reported_from_their_summary() {
        let pod =
            json!({"metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}}});
        let stats = json!({
            "podRef": {"name": "web", "namespace": "default", "uid": "u"},
            "containers": [
                {"name": "app", "cpu": {"time": "2027-01-15T08:00:00Z", "usageNanoCores": 250_000_000u64},
                 "memory": {"workingSetBytes": 4_194_304u64}},
            ],
        });
        let m = pod_metrics(&pod, &stats).unwrap();
        assert_eq!(m["kind"], "PodMetrics");
        assert_eq!(m["metadata"]["labels"]["app"], "web");
        assert_eq!(m["timestamp"], "2027-01-15T08:00:00Z");
        assert_eq!(m["window"], WINDOW);
        assert_eq!(
            m["containers"][0]["usage"],
            json!({"cpu": "250m", "memory": "4Mi"})
        );
        assert!(pod_metrics(&pod, &json!({"containers": []})).is_none());
    }
}
