//! The kubelet's resource usage summary, `GET /stats/summary`: the shape of the kubelet's
//! `stats/v1alpha1` Summary, reduced to what the resource metrics API reads (CPU and working-set
//! memory of the node, its pods and their containers). The API server reads it to serve
//! `metrics.k8s.io` (see `apiserver/metrics_api.rs`), as metrics-server scrapes kubelets.
//!
//! One fleet serves every node it hosts on one address, so the summary of one node is asked for
//! with `?node=<name>`; a server hosting a single node answers for it without the parameter,
//! as a real kubelet does.
//!
//! The numbers come from the fleet's loop, which owns the runtime: the server sends it a
//! [`SummaryQuery`] and waits for the answer.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use http::Response;
use http_body_util::BodyExt;
use k8s_openapi::jiff::Timestamp;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use super::kubelet_server::Body;
use super::runtime::Usage;

pub const SUMMARY_PATH: &str = "/stats/summary";

/// How long the server waits for the fleet's loop to answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// A request for one node's summary; the answer is the Summary or an HTTP code and message.
pub struct SummaryQuery {
    pub node: Option<String>,
    pub reply: oneshot::Sender<Result<Value, (u16, String)>>,
}

pub type SummarySender = mpsc::Sender<SummaryQuery>;

/// What one pod uses right now.
#[derive(Clone, Debug, Default)]
pub struct PodUsage {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub start_time: Option<Timestamp>,
    /// Running containers only, by name.
    pub containers: Vec<(String, Usage)>,
}

fn cpu(time: &str, u: Usage) -> Value {
    json!({"time": time, "usageNanoCores": (u.cpu_milli.max(0) as u64).saturating_mul(1_000_000)})
}

fn memory(time: &str, u: Usage) -> Value {
    let bytes = u.memory_bytes.max(0) as u64;
    json!({"time": time, "workingSetBytes": bytes, "usageBytes": bytes})
}

/// The Summary of `node` at `time`: each pod and container as reported, the node's usage the
/// sum of its pods' (the sim has no system daemons using anything).
pub fn summary(node: &str, time: Timestamp, pods: &[PodUsage]) -> Value {
    let t = time.to_string();
    let mut total = Usage::default();
    let mut items = Vec::new();
    for p in pods {
        let mut pod_total = Usage::default();
        let containers: Vec<Value> = p
            .containers
            .iter()
            .map(|(name, u)| {
                pod_total.cpu_milli += u.cpu_milli;
                pod_total.memory_bytes += u.memory_bytes;
                json!({"name": name, "cpu": cpu(&t, *u), "memory": memory(&t, *u)})
            })
            .collect();
        total.cpu_milli += pod_total.cpu_milli;
        total.memory_bytes += pod_total.memory_bytes;
        let mut item = json!({
            "podRef": {"name": p.name, "namespace": p.namespace, "uid": p.uid},
            "containers": containers,
            "cpu": cpu(&t, pod_total),
            "memory": memory(&t, pod_total),
        });
        if let Some(s) = p.start_time {
            item["startTime"] = json!(s.to_string());
        }
        items.push(item);
    }
    json!({
        "node": {"nodeName": node, "cpu": cpu(&t, total), "memory": memory(&t, total)},
        "pods": items,
    })
}

fn respond(code: u16, content_type: &str, body: Vec<u8>) -> Response<Body> {
    Response::builder()
        .status(code)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(
            http_body_util::Full::new(Bytes::from(body))
                .map_err(|e| match e {})
                .boxed_unsync(),
        )
        .expect("static headers are valid")
}

fn text(code: u16, message: &str) -> Response<Body> {
    respond(
        code,
        "text/plain; charset=utf-8",
        message.as_bytes().to_vec(),
    )
}

/// The `node` parameter of a summary request.
pub fn node_param(query: &str) -> Option<String> {
    let params: BTreeMap<String, String> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                crate::apiserver::request::percent_decode(k),
                crate::apiserver::request::percent_decode(v),
            )
        })
        .collect();
    params.get("node").filter(|n| !n.is_empty()).cloned()
}

/// Answers `GET /stats/summary?node=...` by asking the fleet's loop through `fleet`.
pub async fn serve(
    method: &http::Method,
    query: &str,
    fleet: Option<SummarySender>,
) -> Response<Body> {
    if method != http::Method::GET {
        return text(405, "only GET is served here");
    }
    let Some(fleet) = fleet else {
        return text(
            503,
            "resource usage is not available from this kubelet server yet",
        );
    };
    let (reply, answer) = oneshot::channel();
    let q = SummaryQuery {
        node: node_param(query),
        reply,
    };
    if fleet.send(q).await.is_err() {
        return text(503, "the node agents are stopping");
    }
    match tokio::time::timeout(ANSWER_TIMEOUT, answer).await {
        Ok(Ok(Ok(v))) => respond(
            200,
            "application/json",
            serde_json::to_vec(&v).unwrap_or_default(),
        ),
        Ok(Ok(Err((code, message)))) => text(code, &message),
        Ok(Err(_)) => text(503, "the node agents are stopping"),
        Err(_) => text(503, "the node agents did not report usage in time"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_and_the_node_add_up_their_containers() {
        let t = Timestamp::from_second(1_800_000_000).unwrap();
        let u = |cpu_milli, memory_bytes| Usage {
            cpu_milli,
            memory_bytes,
        };
        let pods = vec![
            PodUsage {
                namespace: "default".into(),
                name: "web".into(),
                uid: "u1".into(),
                start_time: Some(t),
                containers: vec![("app".into(), u(250, 1 << 20)), ("side".into(), u(5, 1024))],
            },
            PodUsage {
                namespace: "default".into(),
                name: "db".into(),
                uid: "u2".into(),
                start_time: None,
                containers: vec![("db".into(), u(1000, 2 << 20))],
            },
        ];
        let s = summary("node-0", t, &pods);
        assert_eq!(s["node"]["nodeName"], "node-0");
        assert_eq!(s["node"]["cpu"]["usageNanoCores"], 1_255_000_000u64);
        assert_eq!(s["node"]["memory"]["workingSetBytes"], (3u64 << 20) + 1024);
        assert_eq!(s["pods"][0]["cpu"]["usageNanoCores"], 255_000_000u64);
        assert_eq!(s["pods"][0]["containers"][1]["name"], "side");
        assert_eq!(s["pods"][1]["podRef"]["uid"], "u2");
        assert_eq!(s["node"]["cpu"]["time"], "2027-01-15T08:00:00Z");
        assert_eq!(node_param("node=node-3&x=1").as_deref(), Some("node-3"));
        assert_eq!(node_param("node="), None);
    }

    async fn body_of(r: Response<Body>) -> (u16, String) {
        let code = r.status().as_u16();
        let bytes = r.into_body().collect().await.unwrap().to_bytes();
        (code, String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn the_fleet_answers_through_its_channel() {
        let get = http::Method::GET;
        assert_eq!(body_of(serve(&get, "", None).await).await.0, 503);
        let (tx, mut rx) = mpsc::channel::<SummaryQuery>(4);
        tokio::spawn(async move {
            while let Some(q) = rx.recv().await {
                let answer = match q.node.as_deref() {
                    Some("node-0") => Ok(json!({"node": {"nodeName": "node-0"}, "pods": []})),
                    other => Err((404, format!("node {other:?} is not hosted here"))),
                };
                let _ = q.reply.send(answer);
            }
        });
        let (code, text) = body_of(serve(&get, "node=node-0", Some(tx.clone())).await).await;
        assert_eq!(code, 200);
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap()["node"]["nodeName"],
            "node-0"
        );
        let (code, text) = body_of(serve(&get, "node=node-9", Some(tx.clone())).await).await;
        assert_eq!(
            (code, text.as_str()),
            (404, "node Some(\"node-9\") is not hosted here")
        );
        assert_eq!(
            body_of(serve(&http::Method::POST, "", Some(tx)).await)
                .await
                .0,
            405
        );
    }
}
