//! REST operations of each resource, described once and rendered as OpenAPI v3 or
//! Swagger 2.0 path items the way upstream publishes them (operation ids,
//! `x-kubernetes-action`, `x-kubernetes-group-version-kind`, query parameters).
//!
//! kubectl reads these: `fieldValidation` on PATCH operations of a kind tells it the server
//! validates fields itself, and `x-kubernetes-group-version-kind` finds the operation.

use serde_json::{json, Map, Value};

use super::builtin::{DELETE_OPTIONS, PATCH, STATUS};
use crate::resources::ResourceInfo;

/// Which schema an operation's body or response uses.
#[derive(Clone, Debug)]
pub(crate) struct Gvk {
    pub group: String,
    pub version: String,
    pub kind: String,
}

#[derive(Clone, Debug)]
enum Body {
    Object(String),
    Patch,
    DeleteOptions,
}

#[derive(Clone, Debug)]
struct Operation {
    method: &'static str,
    action: &'static str,
    id: String,
    description: String,
    gvk: Gvk,
    query: &'static [&'static str],
    body: Option<Body>,
    /// (status code, definition) pairs.
    responses: Vec<(&'static str, String)>,
}

#[derive(Clone, Debug)]
pub(crate) struct PathItem {
    pub path: String,
    path_params: Vec<&'static str>,
    ops: Vec<Operation>,
}

const LIST_PARAMS: &[&str] = &[
    "allowWatchBookmarks",
    "continue",
    "fieldSelector",
    "labelSelector",
    "limit",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
    "watch",
];
const WRITE_PARAMS: &[&str] = &["dryRun", "fieldManager", "fieldValidation"];
const PATCH_PARAMS: &[&str] = &["dryRun", "fieldManager", "fieldValidation", "force"];
const DELETE_PARAMS: &[&str] = &[
    "dryRun",
    "gracePeriodSeconds",
    "ignoreStoreReadErrorWithClusterBreakingPotential",
    "orphanDependents",
    "propagationPolicy",
];
const DELETE_COLLECTION_PARAMS: &[&str] = &[
    "continue",
    "dryRun",
    "fieldSelector",
    "gracePeriodSeconds",
    "ignoreStoreReadErrorWithClusterBreakingPotential",
    "labelSelector",
    "limit",
    "orphanDependents",
    "propagationPolicy",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
];

fn param_schema(name: &str) -> (&'static str, &'static str) {
    match name {
        "allowWatchBookmarks"
        | "watch"
        | "force"
        | "sendInitialEvents"
        | "ignoreStoreReadErrorWithClusterBreakingPotential"
        | "orphanDependents" => ("boolean", ""),
        "limit" | "timeoutSeconds" | "gracePeriodSeconds" => ("integer", ""),
        _ => ("string", ""),
    }
}

fn param_description(name: &str) -> &'static str {
    match name {
        "fieldValidation" => "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. This is the default behavior prior to v1.23. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default in v1.23+ - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.",
        "fieldManager" => "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.",
        "dryRun" => "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed",
        "force" => "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.",
        "labelSelector" => "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
        "fieldSelector" => "A selector to restrict the list of returned objects by their fields. Defaults to everything.",
        "limit" => "limit is a maximum number of responses to return for a list call. If more items exist, the server will set the `continue` field on the list metadata to a value that can be used with the same initial query to retrieve the next set of results.",
        "continue" => "The continue option should be set when retrieving more results from the server. Since this value is server defined, clients may only use the continue value from a previous query result with identical query parameters (except for the value of continue).",
        "resourceVersion" => "resourceVersion sets a constraint on what resource versions a request may be served from. See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.",
        "resourceVersionMatch" => "resourceVersionMatch determines how resourceVersion is applied to list calls.",
        "watch" => "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion.",
        "allowWatchBookmarks" => "allowWatchBookmarks requests watch events with type \"BOOKMARK\".",
        "sendInitialEvents" => "`sendInitialEvents=true` may be set together with `watch=true`. In that case, the watch stream will begin with synthetic events to produce the current state of objects in the collection.",
        "timeoutSeconds" => "Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity.",
        "gracePeriodSeconds" => "The duration in seconds before the object should be deleted. Value must be non-negative integer. The value zero indicates delete immediately.",
        "propagationPolicy" => "Whether and how garbage collection will be performed. Acceptable values are: 'Orphan', 'Background', 'Foreground'.",
        "orphanDependents" => "Deprecated: please use the PropagationPolicy, this field will be deprecated in 1.7. Should the dependent objects be orphaned.",
        "ignoreStoreReadErrorWithClusterBreakingPotential" => "if set to true, it will trigger an unsafe deletion of the resource in case the normal deletion flow fails with a corrupt object error.",
        "pretty" => "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget).",
        "name" => "name of the resource",
        "namespace" => "object name and auth scope, such as for teams and projects",
        _ => "",
    }
}

/// `""` → `Core`, `apps` → `Apps`, `rbac.authorization.k8s.io` → `RbacAuthorization`,
/// `stable.example.com` → `StableExampleCom`, as upstream's operation ids spell groups.
fn group_camel(group: &str) -> String {
    if group.is_empty() {
        return "Core".into();
    }
    let trimmed = group.strip_suffix(".k8s.io").unwrap_or(group);
    trimmed
        .split(['.', '-'])
        .map(capitalize)
        .collect::<Vec<_>>()
        .join("")
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// The tag upstream groups operations under: `core_v1`, `apps_v1`, `rbacAuthorization_v1`.
fn tag(group: &str, version: &str) -> String {
    let g = group_camel(group);
    let mut chars = g.chars();
    let lower = match chars.next() {
        Some(f) => f.to_lowercase().collect::<String>() + chars.as_str(),
        None => String::new(),
    };
    format!("{lower}_{version}")
}

pub(crate) struct ResourceSchemas<'a> {
    pub kind_def: &'a str,
    pub list_def: &'a str,
    /// Definition and GVK of each JSON subresource (`status`, `scale`, …).
    pub subresources: Vec<(String, String, Gvk)>,
}

/// The path items of one resource.
pub(crate) fn resource_paths(r: &ResourceInfo, schemas: &ResourceSchemas) -> Vec<PathItem> {
    let prefix = if r.group.is_empty() {
        format!("/api/{}", r.version)
    } else {
        format!("/apis/{}/{}", r.group, r.version)
    };
    let gvk = Gvk {
        group: r.group.clone(),
        version: r.version.clone(),
        kind: r.kind.clone(),
    };
    let camel = format!("{}{}", group_camel(&r.group), capitalize(&r.version));
    let scope = if r.namespaced { "Namespaced" } else { "" };
    let has = |v: &str| r.verbs.iter().any(|x| x == v);
    let (collection, item, ns_params): (String, String, Vec<&'static str>) = if r.namespaced {
        (
            format!("{prefix}/namespaces/{{namespace}}/{}", r.plural),
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", r.plural),
            vec!["namespace"],
        )
    } else {
        (
            format!("{prefix}/{}", r.plural),
            format!("{prefix}/{}/{{name}}", r.plural),
            vec![],
        )
    };
    let kind_def = schemas.kind_def.to_string();
    let op =
        |method, action, verb: &str, suffix: &str, description: String, query, body, responses| {
            Operation {
                method,
                action,
                id: format!("{verb}{camel}{scope}{}{suffix}", r.kind),
                description,
                gvk: gvk.clone(),
                query,
                body,
                responses,
            }
        };

    let mut out = Vec::new();
    let mut coll_ops = Vec::new();
    if has("list") {
        coll_ops.push(op(
            "get",
            "list",
            "list",
            "",
            format!("list or watch objects of kind {}", r.kind),
            LIST_PARAMS,
            None,
            vec![("200", schemas.list_def.to_string())],
        ));
    }
    if has("create") {
        coll_ops.push(op(
            "post",
            "post",
            "create",
            "",
            format!("create a {}", r.kind),
            WRITE_PARAMS,
            Some(Body::Object(kind_def.clone())),
            vec![
                ("200", kind_def.clone()),
                ("201", kind_def.clone()),
                ("202", kind_def.clone()),
            ],
        ));
    }
    if has("deletecollection") {
        let mut o = op(
            "delete",
            "deletecollection",
            "deleteCollection",
            "",
            format!("delete collection of {}", r.kind),
            DELETE_COLLECTION_PARAMS,
            Some(Body::DeleteOptions),
            vec![("200", STATUS.to_string())],
        );
        o.id = format!("deleteCollection{camel}{scope}{}", r.kind);
        coll_ops.push(o);
    }
    if !coll_ops.is_empty() {
        out.push(PathItem {
            path: collection,
            path_params: ns_params.clone(),
            ops: coll_ops,
        });
    }
    if r.namespaced && has("list") {
        let mut o = op(
            "get",
            "list",
            "list",
            "ForAllNamespaces",
            format!("list or watch objects of kind {}", r.kind),
            LIST_PARAMS,
            None,
            vec![("200", schemas.list_def.to_string())],
        );
        o.id = format!("list{camel}{}ForAllNamespaces", r.kind);
        out.push(PathItem {
            path: format!("{prefix}/{}", r.plural),
            path_params: vec![],
            ops: vec![o],
        });
    }

    let mut item_params = vec!["name"];
    item_params.extend(ns_params.iter().copied());
    let mut item_ops = Vec::new();
    if has("get") {
        item_ops.push(op(
            "get",
            "get",
            "read",
            "",
            format!("read the specified {}", r.kind),
            &[],
            None,
            vec![("200", kind_def.clone())],
        ));
    }
    if has("update") {
        item_ops.push(op(
            "put",
            "put",
            "replace",
            "",
            format!("replace the specified {}", r.kind),
            WRITE_PARAMS,
            Some(Body::Object(kind_def.clone())),
            vec![("200", kind_def.clone()), ("201", kind_def.clone())],
        ));
    }
    if has("patch") {
        item_ops.push(op(
            "patch",
            "patch",
            "patch",
            "",
            format!("partially update the specified {}", r.kind),
            PATCH_PARAMS,
            Some(Body::Patch),
            vec![("200", kind_def.clone()), ("201", kind_def.clone())],
        ));
    }
    if has("delete") {
        item_ops.push(op(
            "delete",
            "delete",
            "delete",
            "",
            format!("delete a {}", r.kind),
            DELETE_PARAMS,
            Some(Body::DeleteOptions),
            vec![("200", kind_def.clone()), ("202", kind_def.clone())],
        ));
    }
    if !item_ops.is_empty() {
        out.push(PathItem {
            path: item.clone(),
            path_params: item_params.clone(),
            ops: item_ops,
        });
    }

    for (sub, def, sub_gvk) in &schemas.subresources {
        let Some(info) = r.subresources.iter().find(|s| &s.name == sub) else {
            continue;
        };
        let suffix = capitalize(sub);
        let has_sub = |v: &str| info.verbs.iter().any(|x| x == v);
        let sub_op =
            |method, action, verb: &str, description: String, query, body, responses| Operation {
                method,
                action,
                id: format!("{verb}{camel}{scope}{}{suffix}", r.kind),
                description,
                gvk: sub_gvk.clone(),
                query,
                body,
                responses,
            };
        let mut ops = Vec::new();
        if has_sub("get") {
            ops.push(sub_op(
                "get",
                "get",
                "read",
                format!("read {sub} of the specified {}", r.kind),
                &[],
                None,
                vec![("200", def.clone())],
            ));
        }
        if has_sub("create") {
            ops.push(sub_op(
                "post",
                "post",
                "create",
                format!("create {sub} of a {}", r.kind),
                WRITE_PARAMS,
                Some(Body::Object(def.clone())),
                vec![
                    ("200", def.clone()),
                    ("201", def.clone()),
                    ("202", def.clone()),
                ],
            ));
        }
        if has_sub("update") {
            ops.push(sub_op(
                "put",
                "put",
                "replace",
                format!("replace {sub} of the specified {}", r.kind),
                WRITE_PARAMS,
                Some(Body::Object(def.clone())),
                vec![("200", def.clone()), ("201", def.clone())],
            ));
        }
        if has_sub("patch") {
            ops.push(sub_op(
                "patch",
                "patch",
                "patch",
                format!("partially update {sub} of the specified {}", r.kind),
                PATCH_PARAMS,
                Some(Body::Patch),
                vec![("200", def.clone()), ("201", def.clone())],
            ));
        }
        if !ops.is_empty() {
            out.push(PathItem {
                path: format!("{item}/{sub}"),
                path_params: item_params.clone(),
                ops,
            });
        }
    }
    out
}

fn gvk_json(gvk: &Gvk) -> Value {
    json!({"group": gvk.group, "kind": gvk.kind, "version": gvk.version})
}

fn path_param(name: &str, v3: bool) -> Value {
    if v3 {
        json!({"name": name, "in": "path", "description": param_description(name),
               "required": true, "schema": {"type": "string", "uniqueItems": true}})
    } else {
        json!({"uniqueItems": true, "type": "string", "description": param_description(name),
               "name": name, "in": "path", "required": true})
    }
}

fn query_param(name: &str, v3: bool) -> Value {
    let (ty, _) = param_schema(name);
    if v3 {
        json!({"name": name, "in": "query", "description": param_description(name),
               "schema": {"type": ty, "uniqueItems": true}})
    } else {
        json!({"uniqueItems": true, "type": ty, "description": param_description(name),
               "name": name, "in": "query"})
    }
}

const RESPONSE_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];
const PATCH_TYPES: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];

fn body_def(body: &Body) -> &str {
    match body {
        Body::Object(d) => d,
        Body::Patch => PATCH,
        Body::DeleteOptions => DELETE_OPTIONS,
    }
}

fn status_description(code: &str) -> &'static str {
    match code {
        "200" => "OK",
        "201" => "Created",
        "202" => "Accepted",
        _ => "",
    }
}

/// OpenAPI v3 `paths`; refs point at `#/components/schemas/`.
pub(crate) fn render_v3(items: &[PathItem]) -> Map<String, Value> {
    let reference = |d: &str| json!({"$ref": format!("#/components/schemas/{d}")});
    let mut paths = Map::new();
    for item in items {
        let mut pi = Map::new();
        for op in &item.ops {
            let mut o = Map::new();
            o.insert("tags".into(), json!([tag(&op.gvk.group, &op.gvk.version)]));
            o.insert("description".into(), op.description.clone().into());
            o.insert("operationId".into(), op.id.clone().into());
            let params: Vec<Value> = op.query.iter().map(|q| query_param(q, true)).collect();
            if !params.is_empty() {
                o.insert("parameters".into(), Value::Array(params));
            }
            if let Some(body) = &op.body {
                let types: &[&str] = match body {
                    Body::Patch => PATCH_TYPES,
                    _ => &["*/*"],
                };
                let content: Map<String, Value> = types
                    .iter()
                    .map(|t| (t.to_string(), json!({"schema": reference(body_def(body))})))
                    .collect();
                let mut rb = json!({"content": content});
                if !matches!(body, Body::DeleteOptions) {
                    rb["required"] = true.into();
                }
                o.insert("requestBody".into(), rb);
            }
            let mut responses = Map::new();
            for (code, def) in &op.responses {
                let content: Map<String, Value> = RESPONSE_TYPES
                    .iter()
                    .map(|t| (t.to_string(), json!({"schema": reference(def)})))
                    .collect();
                responses.insert(
                    code.to_string(),
                    json!({"description": status_description(code), "content": content}),
                );
            }
            responses.insert("401".into(), json!({"description": "Unauthorized"}));
            o.insert("responses".into(), Value::Object(responses));
            o.insert("x-kubernetes-action".into(), op.action.into());
            o.insert("x-kubernetes-group-version-kind".into(), gvk_json(&op.gvk));
            pi.insert(op.method.into(), Value::Object(o));
        }
        let mut params: Vec<Value> = item
            .path_params
            .iter()
            .map(|p| path_param(p, true))
            .collect();
        params.push(query_param("pretty", true));
        pi.insert("parameters".into(), Value::Array(params));
        paths.insert(item.path.clone(), Value::Object(pi));
    }
    paths
}

/// Swagger 2.0 `paths`; refs point at `#/definitions/`.
pub(crate) fn render_v2(items: &[PathItem]) -> Map<String, Value> {
    let reference = |d: &str| json!({"$ref": format!("#/definitions/{d}")});
    let mut paths = Map::new();
    for item in items {
        let mut pi = Map::new();
        for op in &item.ops {
            let mut o = Map::new();
            o.insert("description".into(), op.description.clone().into());
            let consumes: &[&str] = match op.body {
                Some(Body::Patch) => PATCH_TYPES,
                _ => &["*/*"],
            };
            o.insert("consumes".into(), json!(consumes));
            o.insert("produces".into(), json!(RESPONSE_TYPES));
            o.insert("schemes".into(), json!(["https"]));
            o.insert("tags".into(), json!([tag(&op.gvk.group, &op.gvk.version)]));
            o.insert("operationId".into(), op.id.clone().into());
            let mut params: Vec<Value> = Vec::new();
            if let Some(body) = &op.body {
                let mut p =
                    json!({"name": "body", "in": "body", "schema": reference(body_def(body))});
                if !matches!(body, Body::DeleteOptions) {
                    p["required"] = true.into();
                }
                params.push(p);
            }
            params.extend(op.query.iter().map(|q| query_param(q, false)));
            if !params.is_empty() {
                o.insert("parameters".into(), Value::Array(params));
            }
            let mut responses = Map::new();
            for (code, def) in &op.responses {
                responses.insert(
                    code.to_string(),
                    json!({"description": status_description(code), "schema": reference(def)}),
                );
            }
            responses.insert("401".into(), json!({"description": "Unauthorized"}));
            o.insert("responses".into(), Value::Object(responses));
            o.insert("x-kubernetes-action".into(), op.action.into());
            o.insert("x-kubernetes-group-version-kind".into(), gvk_json(&op.gvk));
            pi.insert(op.method.into(), Value::Object(o));
        }
        let mut params: Vec<Value> = item
            .path_params
            .iter()
            .map(|p| path_param(p, false))
            .collect();
        params.push(query_param("pretty", false));
        pi.insert("parameters".into(), Value::Array(params));
        paths.insert(item.path.clone(), Value::Object(pi));
    }
    paths
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_in_operation_ids() {
        assert_eq!(group_camel(""), "Core");
        assert_eq!(group_camel("apps"), "Apps");
        assert_eq!(
            group_camel("rbac.authorization.k8s.io"),
            "RbacAuthorization"
        );
        assert_eq!(group_camel("stable.example.com"), "StableExampleCom");
        assert_eq!(
            tag("rbac.authorization.k8s.io", "v1"),
            "rbacAuthorization_v1"
        );
        assert_eq!(tag("", "v1"), "core_v1");
    }
}
