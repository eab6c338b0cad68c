//! `pods/log`: checks the request the way the API server and the kubelet do, then proxies it to
//! the node's kubelet endpoint (`status.addresses` InternalIP and
//! `status.daemonEndpoints.kubeletEndpoint.Port`) and streams the answer back as text/plain.
//!
//! The hop to the kubelet is plain HTTP and only ever to a loopback address: every node of this
//! cluster is simulated in a process on this machine.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use http::Response;
use http_body_util::{BodyExt, StreamBody};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::sync::mpsc;

use super::{parse_bool, ApiError, ApiResult, ApiServer, Body, RequestContext};
use crate::resources::ResourceInfo;

/// `PodLogOptions` from the query string.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogOptions {
    pub container: Option<String>,
    pub follow: bool,
    pub previous: bool,
    pub timestamps: bool,
    pub since_seconds: Option<i64>,
    pub since_time: Option<String>,
    pub tail_lines: Option<i64>,
    pub limit_bytes: Option<i64>,
}

impl LogOptions {
    /// Parses and validates as upstream: malformed values are a 400, out-of-range ones a 422
    /// `PodLogOptions "<pod>" is invalid`.
    pub fn parse(get: impl Fn(&str) -> Option<String>, pod: &str) -> ApiResult<LogOptions> {
        let flag = |name: &str| -> ApiResult<bool> {
            match get(name) {
                None => Ok(false),
                Some(v) => parse_bool(&v).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "invalid value {v:?} for query parameter {name}: want true or false"
                    ))
                }),
            }
        };
        let int = |name: &str| -> ApiResult<Option<i64>> {
            match get(name) {
                None => Ok(None),
                Some(v) => v.parse().map(Some).map_err(|_| {
                    ApiError::bad_request(format!(
                        "invalid value {v:?} for query parameter {name}: want an integer"
                    ))
                }),
            }
        };
        let opts = LogOptions {
            container: get("container").filter(|c| !c.is_empty()),
            follow: flag("follow")?,
            previous: flag("previous")?,
            timestamps: flag("timestamps")?,
            since_seconds: int("sinceSeconds")?,
            since_time: get("sinceTime").filter(|t| !t.is_empty()),
            tail_lines: int("tailLines")?,
            limit_bytes: int("limitBytes")?,
        };
        let mut errors = Vec::new();
        if let Some(n) = opts.tail_lines.filter(|n| *n < 0) {
            errors.push(format!(
                "tailLines: Invalid value: {n}: must be greater than or equal to 0"
            ));
        }
        if let Some(n) = opts.limit_bytes.filter(|n| *n < 1) {
            errors.push(format!(
                "limitBytes: Invalid value: {n}: must be greater than 0"
            ));
        }
        if opts.since_seconds.is_some() && opts.since_time.is_some() {
            errors.push("sinceSeconds: Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified".into());
        }
        if let Some(n) = opts.since_seconds.filter(|n| *n < 1) {
            errors.push(format!(
                "sinceSeconds: Invalid value: {n}: must be greater than 0"
            ));
        }
        if let Some(t) = &opts.since_time {
            if t.parse::<k8s_openapi::jiff::Timestamp>().is_err() {
                return Err(ApiError::bad_request(format!(
                    "invalid value {t:?} for query parameter sinceTime: want an RFC 3339 time"
                )));
            }
        }
        match errors.len() {
            0 => Ok(opts),
            1 => Err(ApiError::new(
                422,
                "Invalid",
                format!("PodLogOptions \"{pod}\" is invalid: {}", errors[0]),
            )),
            _ => Err(ApiError::new(
                422,
                "Invalid",
                format!(
                    "PodLogOptions \"{pod}\" is invalid: [{}]",
                    errors.join(", ")
                ),
            )),
        }
    }

    /// The kubelet's query string for these options.
    pub fn kubelet_query(&self) -> String {
        let mut q = Vec::new();
        for (name, on) in [
            ("follow", self.follow),
            ("previous", self.previous),
            ("timestamps", self.timestamps),
        ] {
            if on {
                q.push(format!("{name}=true"));
            }
        }
        for (name, v) in [
            ("sinceSeconds", self.since_seconds),
            ("tailLines", self.tail_lines),
            ("limitBytes", self.limit_bytes),
        ] {
            if let Some(v) = v {
                q.push(format!("{name}={v}"));
            }
        }
        if let Some(t) = &self.since_time {
            q.push(format!(
                "sinceTime={}",
                t.replace('%', "%25")
                    .replace(':', "%3A")
                    .replace('+', "%2B")
            ));
        }
        q.join("&")
    }
}

fn names(pod: &Value, field: &str) -> Vec<String> {
    pod.pointer(&format!("/spec/{field}"))
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The container whose log is asked for, as upstream's `validateContainer` picks it: the only
/// container when there is one, else the one named, which may be any container of the pod.
pub fn pick_container(pod: &Value, asked: Option<&str>) -> ApiResult<String> {
    let pod_name = super::object::name(pod);
    let regular = names(pod, "containers");
    let mut all = names(pod, "initContainers");
    all.extend(regular.iter().cloned());
    all.extend(names(pod, "ephemeralContainers"));
    match asked {
        None => match regular.as_slice() {
            [only] => Ok(only.clone()),
            [] => Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {pod_name}"
            ))),
            _ => Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {pod_name}, choose one of: [{}]",
                all.join(" ")
            ))),
        },
        Some(c) if all.iter().any(|n| n == c) => Ok(c.to_string()),
        Some(c) => Err(ApiError::bad_request(format!(
            "container {c} is not valid for pod {pod_name}"
        ))),
    }
}

/// Whether the kubelet has a log to show for `container`, judged from the pod's status as the
/// kubelet's `validateContainerLogStatus` does; the error is its message.
pub fn check_container_status(pod: &Value, container: &str, previous: bool) -> Result<(), String> {
    let pod_name = super::object::name(pod);
    let status = [
        "containerStatuses",
        "initContainerStatuses",
        "ephemeralContainerStatuses",
    ]
    .iter()
    .filter_map(|f| {
        pod.pointer(&format!("/status/{f}"))
            .and_then(Value::as_array)
    })
    .flatten()
    .find(|s| s.get("name").and_then(Value::as_str) == Some(container));
    let Some(status) = status else {
        return Err(format!(
            "container {container:?} in pod {pod_name:?} is not available"
        ));
    };
    let has_id = |v: Option<&Value>| {
        v.and_then(|t| t.get("containerID"))
            .and_then(Value::as_str)
            .is_some_and(|id| !id.is_empty())
    };
    let last_terminated = status.pointer("/lastState/terminated");
    let terminated = || format!("container {container:?} in pod {pod_name:?} is terminated");
    if previous {
        return if has_id(last_terminated) {
            Ok(())
        } else {
            Err(format!(
                "previous terminated container {container:?} in pod {pod_name:?} not found"
            ))
        };
    }
    let state = status.get("state");
    if state.and_then(|s| s.get("running")).is_some() {
        return Ok(());
    }
    if let Some(t) = state.and_then(|s| s.get("terminated")) {
        return if has_id(Some(t)) || has_id(last_terminated) {
            Ok(())
        } else {
            Err(terminated())
        };
    }
    if last_terminated.is_some() {
        return if has_id(last_terminated) {
            Ok(())
        } else {
            Err(terminated())
        };
    }
    let reason = state
        .and_then(|s| s.pointer("/waiting/reason"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let why = match reason {
        "ErrImagePull" => "image can't be pulled".to_string(),
        "ImagePullBackOff" => "trying and failing to pull image".to_string(),
        other => other.to_string(),
    };
    Err(format!(
        "container {container:?} in pod {pod_name:?} is waiting to start: {why}"
    ))
}

/// Where the node's kubelet listens: its InternalIP (else its first address) and the port it
/// reports (10250 when it reports none).
pub fn kubelet_address(node: &Value) -> ApiResult<SocketAddr> {
    let node_name = super::object::name(node);
    let addresses = node
        .pointer("/status/addresses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let address = addresses
        .iter()
        .find(|a| a.get("type").and_then(Value::as_str) == Some("InternalIP"))
        .or_else(|| addresses.first())
        .and_then(|a| a.get("address").and_then(Value::as_str))
        .ok_or_else(|| {
            ApiError::internal(format!(
                "node {node_name:?} reports no address in status.addresses, so its kubelet cannot be reached"
            ))
        })?;
    let ip: IpAddr = address.parse().map_err(|_| {
        ApiError::internal(format!(
            "node {node_name:?} reports the address {address:?}, which is not an IP address"
        ))
    })?;
    if !ip.is_loopback() {
        return Err(ApiError::internal(format!(
            "node {node_name:?} reports the address {ip}, which is not on loopback; this cluster only reaches kubelets on 127.0.0.0/8"
        )));
    }
    let port = node
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_i64)
        .filter(|p| (1..=65535).contains(p))
        .unwrap_or(10250) as u16;
    Ok(SocketAddr::new(ip, port))
}

/// Where the kubelet of the node named `node_name` listens, from its Node object.
pub async fn node_kubelet_address(server: &ApiServer, node_name: &str) -> ApiResult<SocketAddr> {
    let node_info = server
        .catalog
        .get("", "v1", "nodes")
        .ok_or_else(|| ApiError::internal("the nodes resource is not registered"))?;
    let node = server.get_object(&node_info, None, node_name).await?;
    kubelet_address(&node)
}

/// `GET pods/{name}/log`.
pub async fn pod_log(
    server: &Arc<ApiServer>,
    ctx: &RequestContext,
    info: &ResourceInfo,
    ns: Option<&str>,
    name: &str,
) -> ApiResult<Response<Body>> {
    let opts = LogOptions::parse(|k| ctx.q(k).map(str::to_string), name)?;
    let pod = server.get_object(info, ns, name).await?;
    let container = pick_container(&pod, opts.container.as_deref())?;
    let node_name = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("");
    if node_name.is_empty() {
        // Upstream's LogLocation gives no location for an unscheduled pod, which its stream
        // handler answers with an empty 204 (exec and attach answer 400 instead).
        return Ok(Response::builder()
            .status(204)
            .body(BodyExt::boxed_unsync(http_body_util::Empty::<Bytes>::new()))
            .expect("static response is valid"));
    }
    let addr = node_kubelet_address(server, node_name).await?;
    check_container_status(&pod, &container, opts.previous).map_err(ApiError::bad_request)?;
    let path = format!(
        "/containerLogs/{}/{name}/{container}",
        ns.unwrap_or_default()
    );
    let query = opts.kubelet_query();
    let uri = if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    };
    proxy(addr, &uri).await
}

async fn proxy(addr: SocketAddr, uri: &str) -> ApiResult<Response<Body>> {
    let url = format!("http://{addr}{uri}");
    let failed = |e: &dyn std::fmt::Display| ApiError::internal(format!("Get {url:?}: {e}"));
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| failed(&e))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| failed(&e))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = http::Request::get(uri)
        .header(http::header::HOST, addr.to_string())
        .body(http_body_util::Empty::<Bytes>::new())
        .map_err(|e| failed(&e))?;
    let resp = sender.send_request(req).await.map_err(|e| failed(&e))?;
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    if status != 200 {
        let mut text = Vec::new();
        while let Some(Ok(frame)) = body.frame().await {
            if let Some(d) = frame.data_ref() {
                text.extend_from_slice(d);
            }
            if text.len() > 64 * 1024 {
                break;
            }
        }
        let text = String::from_utf8_lossy(&text).trim().to_string();
        return Err(match status {
            400 => ApiError::bad_request(text),
            404 => ApiError::new(404, "NotFound", text),
            _ => ApiError::internal(text),
        });
    }
    // The kubelet's stream is copied as it comes; when the client leaves, the send fails and
    // dropping the kubelet connection ends a follow there too.
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        loop {
            // A quiet follow must notice a departed client too, not only at its next line.
            let frame = tokio::select! {
                f = body.frame() => f,
                _ = tx.closed() => return,
            };
            let Some(Ok(frame)) = frame else {
                return;
            };
            if let Ok(data) = frame.into_data() {
                if tx.send(data).await.is_err() {
                    return;
                }
            }
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    let body = StreamBody::new(futures::StreamExt::map(stream, |b| {
        Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(b))
    }));
    Ok(Response::builder()
        .status(200)
        .header(http::header::CONTENT_TYPE, "text/plain")
        .body(BodyExt::boxed_unsync(body))
        .expect("static headers are valid"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(status: Value) -> Value {
        json!({"metadata": {"name": "p"},
               "spec": {"initContainers": [{"name": "init"}], "containers": [{"name": "a"}, {"name": "b"}]},
               "status": status})
    }

    #[test]
    fn the_container_is_picked_as_upstream_does() {
        let p = pod(json!({}));
        assert_eq!(
            pick_container(&p, None).unwrap_err().message,
            "a container name must be specified for pod p, choose one of: [init a b]"
        );
        assert_eq!(
            pick_container(&p, Some("c")).unwrap_err().message,
            "container c is not valid for pod p"
        );
        assert_eq!(pick_container(&p, Some("init")).unwrap(), "init");
        let single = json!({"metadata": {"name": "q"}, "spec": {"containers": [{"name": "only"}]}});
        assert_eq!(pick_container(&single, None).unwrap(), "only");
    }

    #[test]
    fn status_decides_whether_there_is_a_log() {
        let waiting = pod(json!({"containerStatuses": [
            {"name": "a", "state": {"waiting": {"reason": "ContainerCreating"}}},
            {"name": "b", "state": {"waiting": {"reason": "ErrImagePull"}}}]}));
        assert_eq!(
            check_container_status(&waiting, "a", false).unwrap_err(),
            "container \"a\" in pod \"p\" is waiting to start: ContainerCreating"
        );
        assert_eq!(
            check_container_status(&waiting, "b", false).unwrap_err(),
            "container \"b\" in pod \"p\" is waiting to start: image can't be pulled"
        );
        assert_eq!(
            check_container_status(&waiting, "init", false).unwrap_err(),
            "container \"init\" in pod \"p\" is not available"
        );
        let restarted = pod(json!({"containerStatuses": [
            {"name": "a", "state": {"waiting": {"reason": "CrashLoopBackOff"}},
             "lastState": {"terminated": {"exitCode": 1, "containerID": "kubeproof-sim://1"}}},
            {"name": "b", "state": {"running": {}}}]}));
        assert!(check_container_status(&restarted, "a", false).is_ok());
        assert!(check_container_status(&restarted, "a", true).is_ok());
        assert!(check_container_status(&restarted, "b", false).is_ok());
        assert_eq!(
            check_container_status(&restarted, "b", true).unwrap_err(),
            "previous terminated container \"b\" in pod \"p\" not found"
        );
    }

    #[test]
    fn options_are_validated_and_forwarded() {
        let q = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let o = LogOptions::parse(
            q(&[
                ("follow", "true"),
                ("tailLines", "3"),
                ("sinceTime", "2027-01-15T08:00:00Z"),
            ]),
            "p",
        )
        .unwrap();
        assert_eq!(
            o.kubelet_query(),
            "follow=true&tailLines=3&sinceTime=2027-01-15T08%3A00%3A00Z"
        );
        let e = LogOptions::parse(q(&[("tailLines", "-1")]), "p").unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (
                422,
                "PodLogOptions \"p\" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0"
            )
        );
        assert_eq!(
            LogOptions::parse(q(&[("limitBytes", "0")]), "p")
                .unwrap_err()
                .code,
            422
        );
        assert_eq!(
            LogOptions::parse(q(&[("tailLines", "x")]), "p")
                .unwrap_err()
                .code,
            400
        );
    }

    #[test]
    fn kubelets_are_reached_only_on_loopback() {
        let node = |ip: &str, port: Value| {
            json!({"metadata": {"name": "n"}, "status": {
                "addresses": [{"type": "Hostname", "address": "n"}, {"type": "InternalIP", "address": ip}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}})
        };
        assert_eq!(
            kubelet_address(&node("127.0.0.1", json!(4321))).unwrap(),
            "127.0.0.1:4321".parse().unwrap()
        );
        assert_eq!(
            kubelet_address(&node("127.0.0.2", json!(0)))
                .unwrap()
                .port(),
            10250
        );
        assert!(kubelet_address(&node("10.0.0.1", json!(10250))).is_err());
    }
}
