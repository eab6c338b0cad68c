//! Create-only resources answered without storage: the `authorization.k8s.io/v1` access
//! reviews (`kubectl auth can-i`), the `authentication.k8s.io/v1` TokenReview and
//! SelfSubjectReview (`kubectl auth whoami`), and the TokenRequest subresource
//! `serviceaccounts/<name>/token` (`kubectl create token`).

use std::sync::Arc;

use http::Response;
use serde_json::{json, Value};

use super::object;
use super::{respond_json, ApiError, ApiResult, ApiServer, Body, RequestContext};
use crate::resources::ResourceInfo;
use crate::security::authn::{self, BoundObject};
use crate::security::rbac::{self, ReviewError};

/// Whether `info` is one of the review resources answered here.
pub fn is_review(info: &ResourceInfo) -> bool {
    info.custom.is_none()
        && matches!(
            (info.group.as_str(), info.plural.as_str()),
            (
                "authorization.k8s.io",
                "subjectaccessreviews"
                    | "selfsubjectaccessreviews"
                    | "localsubjectaccessreviews"
                    | "selfsubjectrulesreviews"
            ) | (
                "authentication.k8s.io",
                "tokenreviews" | "selfsubjectreviews"
            )
        )
}

fn review_error(e: ReviewError) -> ApiError {
    ApiError::new(e.code, e.reason, e.message)
}

/// The request body as `info`'s kind; a body of another kind is refused as upstream.
fn decode_review(ctx: &RequestContext, info: &ResourceInfo) -> ApiResult<Value> {
    let body = object::decode(ctx.content_type(), &ctx.body)?;
    if let Some(kind) = body.get("kind").and_then(Value::as_str) {
        if kind != info.kind {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({kind}) does not match the expected kind ({})",
                info.kind
            )));
        }
    }
    Ok(body)
}

/// Answers a POST to a review resource (201 with the review and its status).
pub async fn handle(
    server: &Arc<ApiServer>,
    ctx: &RequestContext,
    info: &ResourceInfo,
    namespace: Option<&str>,
) -> ApiResult<Response<Body>> {
    let review = decode_review(ctx, info)?;
    let answer = match info.plural.as_str() {
        "tokenreviews" => {
            let mut answer = server.token_review(&review).await;
            answer["metadata"] = review
                .get("metadata")
                .cloned()
                .unwrap_or_else(|| json!({"creationTimestamp": null}));
            answer
        }
        "selfsubjectreviews" => authn::self_subject_review(&ctx.user),
        plural => {
            // The chain requests are judged by, so a review answers what the request would get.
            let authz = &server.security.authz;
            match plural {
                "subjectaccessreviews" => rbac::subject_access_review(&review, authz),
                "selfsubjectaccessreviews" => {
                    rbac::self_subject_access_review(&review, &ctx.user, authz)
                }
                "localsubjectaccessreviews" => {
                    rbac::local_subject_access_review(&review, namespace.unwrap_or_default(), authz)
                }
                "selfsubjectrulesreviews" => {
                    rbac::self_subject_rules_review(&review, &ctx.user, authz)
                }
                _ => return Err(ApiError::path_not_found()),
            }
            .map_err(review_error)?
        }
    };
    Ok(respond_json(201, &answer))
}

/// Resolves `spec.boundObjectRef` of a TokenRequest: the Pod or Secret must exist in the
/// service account's namespace (with the given uid, if any).
async fn bound_object(
    server: &ApiServer,
    namespace: &str,
    request: &Value,
) -> ApiResult<Option<(BoundObject, Value)>> {
    let Some(r) = request
        .pointer("/spec/boundObjectRef")
        .filter(|r| r.is_object())
    else {
        return Ok(None);
    };
    let field = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or_default();
    let (kind, name, uid) = (field("kind"), field("name"), field("uid"));
    let resource = match kind {
        "Pod" => "pods",
        "Secret" => "secrets",
        other => {
            return Err(ApiError::new(
                422,
                "Invalid",
                format!("TokenRequest.authentication.k8s.io \"\" is invalid: spec.boundObjectRef.kind: Unsupported value: \"{other}\": supported values: \"Pod\", \"Secret\""),
            ))
        }
    };
    let info = server
        .catalog
        .get("", "v1", resource)
        .ok_or_else(|| ApiError::internal(format!("{resource} are not registered")))?;
    let obj = server.get_object(&info, Some(namespace), name).await?;
    let actual_uid = object::meta_str(&obj, "uid").unwrap_or_default();
    if !uid.is_empty() && uid != actual_uid {
        return Err(ApiError::conflict(
            &info,
            name,
            &format!("the UID in the bound object reference ({uid}) does not match the UID in record. The object might have been deleted and then recreated"),
        ));
    }
    let node = match obj.pointer("/spec/nodeName").and_then(Value::as_str) {
        Some(n) if kind == "Pod" && !n.is_empty() => {
            let node_uid = match server.catalog.get("", "v1", "nodes") {
                Some(ni) => server
                    .get_object(&ni, None, n)
                    .await
                    .ok()
                    .and_then(|o| object::meta_str(&o, "uid").map(str::to_string))
                    .unwrap_or_default(),
                None => String::new(),
            };
            Some((n.to_string(), node_uid))
        }
        _ => None,
    };
    Ok(Some((
        BoundObject {
            kind: kind.to_string(),
            name: name.to_string(),
            uid: actual_uid.to_string(),
            node,
        },
        obj,
    )))
}

/// `POST serviceaccounts/<name>/token`: a signed token for the service account.
pub async fn token_request(
    server: &Arc<ApiServer>,
    ctx: &RequestContext,
    info: &ResourceInfo,
    namespace: Option<&str>,
    name: &str,
) -> ApiResult<Response<Body>> {
    let Some(issuer) = server.security.authn.tokens.service_accounts.as_ref() else {
        return Err(ApiError::new(
            503,
            "ServiceUnavailable",
            "the TokenRequest API is not enabled: this server has no service account issuer",
        ));
    };
    let ns = namespace.unwrap_or_default();
    let request = object::decode(ctx.content_type(), &ctx.body)?;
    let sa = server.get_object(info, namespace, name).await?;
    let bound = bound_object(server, ns, &request).await?;
    // NodeRestriction lets a node ask tokens only for pods bound to it.
    let requester = ctx.requester();
    let warnings = Default::default();
    let call = super::admission::AdmissionCall::new(
        info,
        namespace,
        name,
        Some("token"),
        Some("TokenRequest"),
        crate::security::admission::Operation::Create,
        ctx.dry_run(),
        &requester,
        &warnings,
    );
    let mut body = request.clone();
    let pod = bound
        .as_ref()
        .filter(|(b, _)| b.kind == "Pod")
        .map(|(_, o)| o);
    server.admit_mutating(&call, Some(&mut body), pod).await?;
    server.admit_validating(&call, Some(&body), pod).await?;
    let now = chrono::Utc::now().timestamp();
    let answer = issuer
        .token_request(&request, &sa, bound.as_ref().map(|(b, _)| b), now)
        .map_err(|m| {
            ApiError::new(
                422,
                "Invalid",
                format!("TokenRequest.authentication.k8s.io \"{name}\" is invalid: {m}"),
            )
        })?;
    let mut answer = answer;
    let meta = object::meta_mut(&mut answer);
    meta.insert("name".into(), json!(name));
    meta.insert("namespace".into(), json!(ns));
    meta.insert("creationTimestamp".into(), json!(object::now_rfc3339()));
    Ok(respond_json(201, &answer))
}
