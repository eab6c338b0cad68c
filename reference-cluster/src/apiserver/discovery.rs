//! Discovery: legacy (`/api`, `/apis`, `/apis/<g>`, `/api/v1`, `/apis/<g>/<v>`) and aggregated
//! (`apidiscovery.k8s.io/v2 APIGroupDiscoveryList`, served on `/api` and `/apis` when asked for).

use std::sync::Arc;

use http::Response;
use serde_json::{json, Value};

use super::negotiate::{negotiate, As};
use super::request::Target;
use super::{respond_bytes, respond_json, ApiError, ApiResult, ApiServer, Body, RequestContext};
use crate::resources::ResourceInfo;

pub fn handle(
    server: &Arc<ApiServer>,
    ctx: &RequestContext,
    target: Target,
) -> ApiResult<Response<Body>> {
    if ctx.method != http::Method::GET {
        return Err(ApiError::method_not_allowed(ctx.method.as_str()));
    }
    let aggregated = negotiate(ctx.accept());
    match target {
        Target::CoreVersions => match aggregated {
            As::DiscoveryV2 | As::DiscoveryV2Beta1 => {
                Ok(aggregated_response(server, true, aggregated))
            }
            _ => Ok(respond_json(
                200,
                &json!({
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server.advertise.read().clone()}],
                }),
            )),
        },
        Target::Groups => match aggregated {
            As::DiscoveryV2 | As::DiscoveryV2Beta1 => {
                Ok(aggregated_response(server, false, aggregated))
            }
            _ => {
                let mut groups: Vec<Value> = server
                    .catalog
                    .groups()
                    .into_iter()
                    .filter(|g| !g.name.is_empty())
                    .map(|g| group_json(&g.name, &g.versions))
                    .collect();
                // Upstream lists every APIService's group, available or not.
                groups.extend(server.aggregator.groups(server).into_iter().map(|g| {
                    let versions: Vec<String> = g.versions.into_iter().map(|v| v.0).collect();
                    group_json(&g.name, &versions)
                }));
                Ok(respond_json(
                    200,
                    &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
                ))
            }
        },
        Target::Group(name) => {
            let group = server
                .catalog
                .groups()
                .into_iter()
                .find(|g| g.name == name && !name.is_empty())
                .or_else(|| {
                    let g = server
                        .aggregator
                        .groups(server)
                        .into_iter()
                        .find(|g| g.name == name)?;
                    Some(crate::resources::catalog::GroupInfo {
                        name: g.name,
                        versions: g.versions.into_iter().map(|v| v.0).collect(),
                    })
                })
                .ok_or_else(ApiError::path_not_found)?;
            let mut body = group_json(&group.name, &group.versions);
            body["kind"] = json!("APIGroup");
            body["apiVersion"] = json!("v1");
            Ok(respond_json(200, &body))
        }
        Target::ResourceList { group, version } => {
            let resources: Vec<Arc<ResourceInfo>> = server
                .catalog
                .all()
                .into_iter()
                .filter(|r| r.group == group && r.version == version)
                .collect();
            if resources.is_empty() {
                return Err(ApiError::path_not_found());
            }
            let mut list = Vec::new();
            for r in &resources {
                list.push(resource_json(r));
                for s in &r.subresources {
                    let mut entry = json!({
                        "name": format!("{}/{}", r.plural, s.name),
                        "singularName": "",
                        "namespaced": r.namespaced,
                        "kind": s.kind,
                        "verbs": s.verbs,
                    });
                    if s.group != r.group || s.version != r.version {
                        entry["group"] = json!(s.group);
                        entry["version"] = json!(s.version);
                    }
                    list.push(entry);
                }
            }
            let gv = if group.is_empty() {
                version.clone()
            } else {
                format!("{group}/{version}")
            };
            Ok(respond_json(
                200,
                &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": list}),
            ))
        }
        Target::Resource(_) | Target::NonResource => Err(ApiError::path_not_found()),
    }
}

fn group_json(name: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({"name": name, "versions": vs, "preferredVersion": vs.first().cloned().unwrap_or(Value::Null)})
}

fn resource_json(r: &ResourceInfo) -> Value {
    let mut entry = json!({
        "name": r.plural,
        "singularName": r.singular,
        "namespaced": r.namespaced,
        "kind": r.kind,
        "verbs": r.verbs,
    });
    if !r.short_names.is_empty() {
        entry["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        entry["categories"] = json!(r.categories);
    }
    entry
}

/// The aggregated discovery document: one request gives kubectl every group, version and
/// resource, instead of one request per group-version.
fn aggregated_response(server: &Arc<ApiServer>, core: bool, version: As) -> Response<Body> {
    let all = server.catalog.all();
    let mut items = Vec::new();
    for g in server.catalog.groups() {
        if g.name.is_empty() != core {
            continue;
        }
        let versions: Vec<Value> = g
            .versions
            .iter()
            .map(|v| {
                let resources: Vec<Value> = all
                    .iter()
                    .filter(|r| r.group == g.name && &r.version == v)
                    .map(|r| aggregated_resource(r))
                    .collect();
                json!({"version": v, "resources": resources, "freshness": "Current"})
            })
            .collect();
        items.push(
            json!({"metadata": {"name": g.name, "creationTimestamp": null}, "versions": versions}),
        );
    }
    if !core {
        items.extend(super::aggregator::aggregated_discovery(server));
    }
    let v = if version == As::DiscoveryV2 {
        "v2"
    } else {
        "v2beta1"
    };
    let body = json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{v}"),
        "metadata": {},
        "items": items,
    });
    respond_bytes(
        200,
        &format!("application/json;g=apidiscovery.k8s.io;v={v};as=APIGroupDiscoveryList"),
        serde_json::to_vec(&body).unwrap_or_default(),
    )
}

fn aggregated_resource(r: &ResourceInfo) -> Value {
    let mut entry = json!({
        "resource": r.plural,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": r.verbs,
    });
    if !r.short_names.is_empty() {
        entry["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        entry["categories"] = json!(r.categories);
    }
    if !r.subresources.is_empty() {
        entry["subresources"] = json!(r
            .subresources
            .iter()
            .map(|s| json!({
                "subresource": s.name,
                "responseKind": {"group": s.group, "version": s.version, "kind": s.kind},
                "verbs": s.verbs,
            }))
            .collect::<Vec<_>>());
    }
    entry
}
