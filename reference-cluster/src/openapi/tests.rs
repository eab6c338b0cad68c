use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};

use super::OpenApi;
use crate::resources::{CustomResourceInfo, ResourceInfo, SubresourceInfo};

const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

fn sub(name: &str, group: &str, version: &str, kind: &str, verbs: &[&str]) -> SubresourceInfo {
    SubresourceInfo {
        name: name.into(),
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
        verbs: verbs.iter().map(|v| v.to_string()).collect(),
    }
}

fn resource(
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
    namespaced: bool,
) -> ResourceInfo {
    ResourceInfo {
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
        list_kind: format!("{kind}List"),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        namespaced,
        short_names: vec![],
        categories: vec![],
        verbs: ALL_VERBS.iter().map(|v| v.to_string()).collect(),
        subresources: vec![],
        storage_resource: plural.into(),
        preferred: true,
        custom: None,
    }
}

fn resources() -> Vec<Arc<ResourceInfo>> {
    let mut pod = resource("", "v1", "Pod", "pods", true);
    pod.subresources = vec![
        sub("status", "", "v1", "Pod", &["get", "patch", "update"]),
        sub("binding", "", "v1", "Binding", &["create"]),
        sub("eviction", "policy", "v1", "Eviction", &["create"]),
        sub("log", "", "v1", "Pod", &["get"]),
    ];
    let mut deploy = resource("apps", "v1", "Deployment", "deployments", true);
    deploy.subresources = vec![
        sub(
            "status",
            "apps",
            "v1",
            "Deployment",
            &["get", "patch", "update"],
        ),
        sub(
            "scale",
            "autoscaling",
            "v1",
            "Scale",
            &["get", "patch", "update"],
        ),
    ];
    let ns = resource("", "v1", "Namespace", "namespaces", false);
    let mut widget = resource("example.com", "v1", "Widget", "widgets", true);
    widget.custom = Some(Arc::new(CustomResourceInfo {
        crd_name: "widgets.example.com".into(),
        schema: Some(json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "description": "The widget's desired state.",
                    "properties": {"size": {"type": "integer"}}
                }
            }
        })),
        has_status: false,
        scale: None,
        printer_columns: vec![],
        ..Default::default()
    }));
    // A kind k8s-openapi does not know is left out rather than breaking the build.
    let unknown = resource("nope.io", "v1", "Nope", "nopes", true);
    [pod, deploy, ns, widget, unknown]
        .into_iter()
        .map(Arc::new)
        .collect()
}

fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("document is JSON")
}

#[test]
fn builds_documents_kubectl_can_use() {
    let started = Instant::now();
    let api = OpenApi::build(&resources());
    let built = started.elapsed();
    let core = parse(&api.v3_document("api/v1").expect("core doc"));
    println!(
        "OpenApi::build took {built:?}; api/v1 is {} bytes, v2 is {} bytes",
        api.v3_document("api/v1").map_or(0, |b| b.len()),
        api.v2().len()
    );

    assert_eq!(core["openapi"], "3.0.0");
    let schemas = &core["components"]["schemas"];
    let pod = &schemas["io.k8s.api.core.v1.Pod"];
    assert_eq!(
        pod["x-kubernetes-group-version-kind"],
        json!([{"group": "", "kind": "Pod", "version": "v1"}])
    );
    let containers = &schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    assert!(schemas
        .get("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")
        .is_some());
    assert!(schemas.get("io.k8s.api.core.v1.PodList").is_some());
    // Every reference resolves inside the document.
    assert_refs_resolve(&core, "#/components/schemas/", schemas);

    let item = &core["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"];
    let patch = &item["patch"];
    assert_eq!(patch["operationId"], "patchCoreV1NamespacedPod");
    assert_eq!(patch["x-kubernetes-action"], "patch");
    assert_eq!(
        patch["x-kubernetes-group-version-kind"],
        json!({"group": "", "kind": "Pod", "version": "v1"})
    );
    let params: Vec<&str> = patch["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(params.contains(&"fieldValidation"), "{params:?}");
    assert!(core["paths"]["/api/v1/pods"]["get"].is_object());
    assert!(core["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/status"]["put"].is_object());
    assert!(
        core["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/eviction"]["post"].is_object()
    );
    assert!(core["paths"]
        .get("/api/v1/namespaces/{namespace}/pods/{name}/log")
        .is_none());
    assert!(core["paths"]["/api/v1/namespaces/{name}"]["get"].is_object());

    let apps = parse(&api.v3_document("apis/apps/v1").expect("apps doc"));
    let scale =
        &apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]["patch"];
    assert_eq!(
        scale["x-kubernetes-group-version-kind"],
        json!({"group": "autoscaling", "kind": "Scale", "version": "v1"})
    );
    assert!(apps["components"]["schemas"]["io.k8s.api.autoscaling.v1.Scale"].is_object());
    assert!(apps["components"]["schemas"]
        .get("io.k8s.api.core.v1.Namespace")
        .is_none());
}

#[test]
fn custom_resources_get_upstream_style_definitions() {
    let api = OpenApi::build(&resources());
    let doc = parse(&api.v3_document("apis/example.com/v1").expect("crd doc"));
    let widget = &doc["components"]["schemas"]["com.example.v1.Widget"];
    assert_eq!(
        widget["x-kubernetes-group-version-kind"],
        json!([{"group": "example.com", "kind": "Widget", "version": "v1"}])
    );
    assert_eq!(
        widget["properties"]["metadata"]["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
    assert_eq!(
        widget["properties"]["spec"]["properties"]["size"]["type"],
        "integer"
    );
    assert!(doc["components"]["schemas"]["com.example.v1.WidgetList"].is_object());
    assert!(
        doc["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}"]["patch"]
            .is_object()
    );
    assert!(api.v3_document("apis/nope.io/v1").is_none());
}

#[test]
fn index_v2_and_hashes() {
    let api = OpenApi::build(&resources());
    let index = api.v3_index();
    let hash = api.v3_hash("api/v1").expect("hash");
    assert_eq!(
        index["paths"]["api/v1"]["serverRelativeURL"],
        format!("/openapi/v3/api/v1?hash={hash}")
    );
    assert!(index["paths"]["apis/apps/v1"].is_object());
    assert_ne!(api.v3_hash("apis/apps/v1"), Some(hash.clone()));
    // The same input always hashes the same.
    assert_eq!(OpenApi::build(&resources()).v3_hash("api/v1"), Some(hash));

    let v2 = parse(&api.v2());
    assert_eq!(v2["swagger"], "2.0");
    let defs = &v2["definitions"];
    assert_eq!(
        defs["io.k8s.api.core.v1.Pod"]["properties"]["metadata"]["$ref"],
        "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
    assert!(defs["com.example.v1.Widget"].is_object());
    assert!(
        v2["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"].is_object()
    );
    assert_refs_resolve(&v2, "#/definitions/", defs);
}

fn assert_refs_resolve(v: &Value, prefix: &str, defs: &Value) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                let name = r
                    .strip_prefix(prefix)
                    .unwrap_or_else(|| panic!("bad ref {r}"));
                assert!(defs.get(name).is_some(), "dangling ref {r}");
            }
            m.values()
                .for_each(|c| assert_refs_resolve(c, prefix, defs));
        }
        Value::Array(a) => a.iter().for_each(|c| assert_refs_resolve(c, prefix, defs)),
        _ => {}
    }
}
