//! Non-resource endpoints: `/version`, health checks, `/metrics`, OpenAPI, and the
//! ServiceAccount issuer's OpenID discovery documents.

use std::sync::Arc;

use http::Response;
use serde_json::json;

use super::{respond_bytes, respond_json, ApiError, ApiResult, ApiServer, Body, RequestContext};

/// The Kubernetes version the reference cluster implements.
pub const GIT_VERSION: &str = "v1.32.0";

pub fn version_json() -> serde_json::Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": GIT_VERSION,
        "gitCommit": "kubeproof",
        "gitTreeState": "clean",
        "buildDate": "2024-12-11T00:00:00Z",
        "goVersion": "go1.23.3",
        "compiler": "gc",
        "platform": format!("{}/{}", std::env::consts::OS, goarch()),
    })
}

fn goarch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Health checks of each endpoint, as upstream names them.
fn checks(endpoint: &str) -> Vec<&'static str> {
    let mut c = vec!["ping", "log", "etcd"];
    if endpoint == "readyz" {
        c.push("etcd-readiness");
        c.push("informer-sync");
    }
    c.extend([
        "poststarthook/start-apiserver-admission-initializer",
        "poststarthook/generic-apiserver-start-informers",
        "poststarthook/crd-informer-synced",
        "poststarthook/bootstrap-controller",
    ]);
    if endpoint == "readyz" {
        c.push("shutdown");
    }
    c
}

pub async fn handle(server: &Arc<ApiServer>, ctx: &RequestContext) -> ApiResult<Response<Body>> {
    let path = ctx.path.trim_end_matches('/');
    if ctx.method != http::Method::GET && ctx.method != http::Method::HEAD {
        return Err(ApiError::method_not_allowed(ctx.method.as_str()));
    }
    match path {
        "/version" => Ok(respond_json(200, &version_json())),
        "/metrics" => Ok(respond_bytes(
            200,
            super::metrics::TEXT_FORMAT,
            server.metrics.render(),
        )),
        // ServiceAccount issuer discovery, for relying parties that verify our tokens.
        "/.well-known/openid-configuration" => match &server.security.authn.tokens.service_accounts
        {
            Some(issuer) => Ok(respond_json(200, &issuer.openid_configuration())),
            None => Err(ApiError::path_not_found()),
        },
        "/openid/v1/jwks" => match &server.security.authn.tokens.service_accounts {
            Some(issuer) => Ok(respond_bytes(
                200,
                "application/jwk-set+json",
                serde_json::to_vec(&issuer.jwks()).unwrap_or_default(),
            )),
            None => Err(ApiError::path_not_found()),
        },
        "/openapi/v2" => Ok(respond_bytes(
            200,
            "application/json",
            server.openapi().v2(),
        )),
        "/openapi/v3" => Ok(respond_json(200, &server.openapi().v3_index())),
        p if p.starts_with("/openapi/v3/") => {
            let gv = &p["/openapi/v3/".len()..];
            match server.openapi().v3_document(gv) {
                Some(doc) => Ok(respond_bytes(200, "application/json", doc)),
                None => Err(ApiError::path_not_found()),
            }
        }
        p => health(server, ctx, p).await,
    }
}

async fn health(
    server: &Arc<ApiServer>,
    ctx: &RequestContext,
    path: &str,
) -> ApiResult<Response<Body>> {
    let mut segs = path.trim_start_matches('/').splitn(2, '/');
    let endpoint = segs.next().unwrap_or("");
    if !matches!(endpoint, "healthz" | "livez" | "readyz") {
        return Err(ApiError::path_not_found());
    }
    let store_ok = server.store.current_revision().await.is_ok();
    let results: Vec<(&str, bool)> = checks(endpoint)
        .into_iter()
        .map(|c| (c, !c.starts_with("etcd") || store_ok))
        .collect();
    if let Some(single) = segs.next() {
        return match results.iter().find(|(c, _)| *c == single) {
            Some((_, true)) => Ok(respond_bytes(200, "text/plain; charset=utf-8", "ok")),
            Some((c, false)) => Ok(respond_bytes(
                500,
                "text/plain; charset=utf-8",
                format!("internal server error: {c} check failed"),
            )),
            None => Err(ApiError::path_not_found()),
        };
    }
    let excluded: Vec<&str> = ctx
        .query
        .get("exclude")
        .map(|e| e.split(',').collect())
        .unwrap_or_default();
    let healthy = results.iter().all(|(c, ok)| *ok || excluded.contains(c));
    let code = if healthy { 200 } else { 500 };
    if ctx.query.contains_key("verbose") {
        let mut text = String::new();
        for (c, ok) in &results {
            if excluded.contains(c) {
                text.push_str(&format!("[+]{c} excluded: ok\n"));
            } else if *ok {
                text.push_str(&format!("[+]{c} ok\n"));
            } else {
                text.push_str(&format!("[-]{c} failed: reason withheld\n"));
            }
        }
        text.push_str(&format!(
            "{endpoint} check {}\n",
            if healthy { "passed" } else { "failed" }
        ));
        return Ok(respond_bytes(code, "text/plain; charset=utf-8", text));
    }
    Ok(respond_bytes(
        code,
        "text/plain; charset=utf-8",
        if healthy {
            "ok"
        } else {
            "internal server error"
        },
    ))
}
