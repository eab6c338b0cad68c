//! Response representations: the object itself (JSON or YAML), `meta.k8s.io/v1 Table` for
//! `kubectl get`, and `PartialObjectMetadata(List)`.

use std::sync::Arc;

use http::Response;
use serde_json::{json, Value};

use super::negotiate::{negotiate, wants_only_protobuf, wants_yaml, As};
use super::object::meta;
use super::{respond_bytes, respond_json, ApiError, ApiResult, ApiServer, Body, RequestContext};
use crate::resources::ResourceInfo;

fn include_object(ctx: &RequestContext) -> ApiResult<&str> {
    match ctx.q("includeObject") {
        None => Ok("Metadata"),
        Some(v @ ("None" | "Metadata" | "Object")) => Ok(v),
        Some(other) => Err(ApiError::bad_request(format!(
            "includeObject: Unsupported value: \"{other}\": supported values: \"None\", \"Metadata\", \"Object\""
        ))),
    }
}

pub fn partial_metadata(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta(obj).clone(),
    })
}

/// A Table of `objs` with `list_meta` (resourceVersion / continue).
pub fn table(
    server: &ApiServer,
    info: &ResourceInfo,
    objs: &[Value],
    include: &str,
    list_meta: Value,
) -> Value {
    let strategy = server.strategy(info);
    let now = chrono::Utc::now();
    let rows: Vec<Value> = objs
        .iter()
        .map(|o| {
            let mut row = json!({"cells": strategy.table_row(o, now)});
            match include {
                "Object" => row["object"] = o.clone(),
                "Metadata" => row["object"] = partial_metadata(o),
                _ => {}
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": strategy.table_columns(),
        "rows": rows,
    })
}

pub fn respond_object(
    server: &Arc<ApiServer>,
    ctx: &RequestContext,
    info: &ResourceInfo,
    obj: Value,
    code: u16,
) -> ApiResult<Response<Body>> {
    let accept = ctx.accept();
    match negotiate(accept) {
        As::Table => {
            let include = include_object(ctx)?;
            let rv = meta(&obj)
                .get("resourceVersion")
                .cloned()
                .unwrap_or(json!(""));
            Ok(respond_json(
                code,
                &table(
                    server,
                    info,
                    &[obj],
                    include,
                    json!({"resourceVersion": rv}),
                ),
            ))
        }
        As::Metadata => Ok(respond_json(code, &partial_metadata(&obj))),
        _ if wants_yaml(accept) => Ok(respond_bytes(
            code,
            "application/yaml",
            serde_yaml_ng::to_string(&obj).unwrap_or_default(),
        )),
        _ if wants_only_protobuf(accept) => respond_protobuf(code, &obj),
        _ => Ok(respond_json(code, &obj)),
    }
}

/// A protobuf answer for a client that accepts nothing else; kinds without a protobuf form
/// (custom resources) are 406, as upstream answers them.
fn respond_protobuf(code: u16, obj: &Value) -> ApiResult<Response<Body>> {
    match super::protobuf::encode_response(obj) {
        Some(Ok(bytes)) => Ok(respond_bytes(code, super::protobuf::MEDIA_TYPE, bytes)),
        Some(Err(e)) => Err(ApiError::internal(format!(
            "encoding the response as protobuf: {e}"
        ))),
        None => Err(ApiError::new(
            406,
            "NotAcceptable",
            "only the following media types are accepted: application/json, application/yaml",
        )),
    }
}

/// Responds to a list in the negotiated representation.
pub fn respond_list(
    server: &Arc<ApiServer>,
    ctx: &RequestContext,
    info: &ResourceInfo,
    mut items: Vec<Value>,
    list_meta: Value,
) -> ApiResult<Response<Body>> {
    match negotiate(ctx.accept()) {
        As::Table => {
            let include = include_object(ctx)?;
            Ok(respond_json(
                200,
                &table(server, info, &items, include, list_meta),
            ))
        }
        As::Metadata => {
            let items: Vec<Value> = items.iter().map(partial_metadata).collect();
            Ok(respond_json(
                200,
                &json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta, "items": items}),
            ))
        }
        _ => {
            if info.custom.is_none() {
                // Typed lists carry kind/apiVersion once, on the list.
                for item in &mut items {
                    if let Some(o) = item.as_object_mut() {
                        o.remove("kind");
                        o.remove("apiVersion");
                    }
                }
            }
            let list = json!({
                "kind": info.list_kind,
                "apiVersion": info.api_version(),
                "metadata": list_meta,
                "items": items,
            });
            if wants_yaml(ctx.accept()) {
                return Ok(respond_bytes(
                    200,
                    "application/yaml",
                    serde_yaml_ng::to_string(&list).unwrap_or_default(),
                ));
            }
            if wants_only_protobuf(ctx.accept()) {
                return respond_protobuf(200, &list);
            }
            Ok(respond_json(200, &list))
        }
    }
}
