//! `pods/attach`: checks the request as `pods/exec` does, then tunnels the client's WebSocket
//! (`v5.channel.k8s.io` / `v4.channel.k8s.io`) to the node's kubelet
//! `/attach/{namespace}/{pod}/{container}`. A kubelet refusal (the container is not running)
//! reaches the client as an `InternalError` Status on the error channel, as for exec.

use std::sync::Arc;

use http::Response;

use super::exec::{tunnel, PodStream, StreamKind};
use super::{parse_bool, ApiError, ApiResult, ApiServer, Body, RequestContext};
use crate::resources::ResourceInfo;

/// `PodAttachOptions` from the query string.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttachOptions {
    pub container: Option<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

impl AttachOptions {
    pub fn parse(raw_query: &str) -> ApiResult<AttachOptions> {
        let mut opts = AttachOptions::default();
        for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let (k, v) = (
                super::request::percent_decode(k),
                super::request::percent_decode(v),
            );
            let flag = |v: &str| {
                parse_bool(v).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "invalid value {v:?} for query parameter {k}: want true or false"
                    ))
                })
            };
            match k.as_str() {
                "container" if !v.is_empty() => opts.container = Some(v),
                "stdin" => opts.stdin = flag(&v)?,
                "stdout" => opts.stdout = flag(&v)?,
                "stderr" => opts.stderr = flag(&v)?,
                "tty" => opts.tty = flag(&v)?,
                _ => {}
            }
        }
        if !(opts.stdin || opts.stdout || opts.stderr) {
            return Err(ApiError::bad_request(
                "you must specify at least 1 of stdin, stdout, stderr",
            ));
        }
        Ok(opts)
    }

    /// The kubelet's query string, with its own names for the streams.
    pub fn kubelet_query(&self) -> String {
        [
            ("input", self.stdin),
            ("output", self.stdout),
            ("error", self.stderr),
            ("tty", self.tty),
        ]
        .iter()
        .filter(|(_, on)| *on)
        .map(|(name, _)| format!("{name}=1"))
        .collect::<Vec<_>>()
        .join("&")
    }
}

pub async fn pod_attach(
    server: &Arc<ApiServer>,
    ctx: &RequestContext,
    info: &ResourceInfo,
    ns: Option<&str>,
    name: &str,
) -> ApiResult<Response<Body>> {
    let opts = AttachOptions::parse(&ctx.raw_query)?;
    let target = PodStream {
        kind: StreamKind::Attach,
        container: opts.container.as_deref(),
        kubelet_query: opts.kubelet_query(),
    };
    tunnel(server, ctx, info, ns, name, target).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_and_name_the_kubelets_streams() {
        let o = AttachOptions::parse("container=app&stdin=true&stdout=true&tty=true").unwrap();
        assert_eq!(o.container.as_deref(), Some("app"));
        assert_eq!(o.kubelet_query(), "input=1&output=1&tty=1");
        assert!(AttachOptions::parse("container=app").is_err());
        assert!(AttachOptions::parse("stdout=maybe").is_err());
    }
}
