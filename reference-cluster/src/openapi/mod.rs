//! OpenAPI documents (Swagger 2.0 at `/openapi/v2`, OpenAPI v3 per group-version at
//! `/openapi/v3/...`) generated from our own type information: k8s-openapi's schemas for
//! built-in kinds, plus upstream's patch markers, and the CRD schemas for custom resources.
//!
//! kubectl uses them for `explain`, for client-side `apply` (strategic merge patch
//! metadata) and to learn that the server validates fields (`fieldValidation`).

pub(crate) mod builtin;
mod patch_meta_table;
mod paths;

use std::collections::{BTreeMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{json, Map, Value};

use crate::resources::{CustomResourceInfo, ResourceInfo};
use builtin::{
    add_gvk, builtin_schemas, v3_ref, DELETE_OPTIONS, LIST_META, OBJECT_META, PATCH, STATUS,
    V3_REF_PREFIX,
};
use paths::{Gvk, PathItem, ResourceSchemas};

/// Subresources that stream or proxy instead of exchanging JSON objects; upstream
/// describes them as connect operations, which no client we serve needs.
const NON_JSON_SUBRESOURCES: &[&str] = &["log", "exec", "attach", "portforward", "proxy"];

/// The built documents, serialized once.
#[derive(Clone, Debug)]
pub struct OpenApi {
    v2: Bytes,
    v3: BTreeMap<String, (Bytes, String)>,
}

/// What one group-version document gathers while resources are added.
#[derive(Default)]
struct GvDoc {
    roots: Vec<String>,
    paths: Vec<PathItem>,
}

impl OpenApi {
    /// Builds all documents for these resources (built-ins and CRD versions alike).
    /// Built-in resources whose kind k8s-openapi does not know are left out.
    pub fn build(resources: &[Arc<ResourceInfo>]) -> OpenApi {
        let builtin = builtin_schemas();
        // Definitions made here (lists, custom resources), alongside the built-in ones.
        let mut local: Map<String, Value> = Map::new();
        let mut docs: BTreeMap<String, GvDoc> = BTreeMap::new();

        for r in resources {
            let gvk = (r.group.clone(), r.version.clone(), r.kind.clone());
            let kind_def = match &r.custom {
                Some(custom) => {
                    let (name, def) = crd_definition(r, custom);
                    local.insert(name.clone(), def);
                    name
                }
                None => match builtin.kinds.get(&gvk) {
                    Some(name) => name.clone(),
                    None => continue,
                },
            };
            let list_def = format!("{kind_def}List");
            local.insert(list_def.clone(), list_definition(r, &kind_def));

            let mut subresources = Vec::new();
            for s in &r.subresources {
                if NON_JSON_SUBRESOURCES.contains(&s.name.as_str()) {
                    continue;
                }
                let sub_gvk = (s.group.clone(), s.version.clone(), s.kind.clone());
                let def = if sub_gvk == gvk {
                    Some(kind_def.clone())
                } else {
                    builtin.kinds.get(&sub_gvk).cloned()
                };
                if let Some(def) = def {
                    let g = Gvk {
                        group: s.group.clone(),
                        version: s.version.clone(),
                        kind: s.kind.clone(),
                    };
                    subresources.push((s.name.clone(), def, g));
                }
            }
            let schemas = ResourceSchemas {
                kind_def: &kind_def,
                list_def: &list_def,
                subresources,
            };
            let doc = docs.entry(gv_path(r)).or_default();
            doc.paths.extend(paths::resource_paths(r, &schemas));
            doc.roots.push(kind_def.clone());
            doc.roots.push(list_def.clone());
            doc.roots
                .extend(schemas.subresources.iter().map(|(_, d, _)| d.clone()));
        }

        let lookup = |name: &str| local.get(name).or_else(|| builtin.definitions.get(name));
        let mut v2_defs: BTreeMap<String, Value> = BTreeMap::new();
        let mut v2_paths = Map::new();
        let mut v3 = BTreeMap::new();
        for (gv, doc) in &docs {
            let mut roots = doc.roots.clone();
            roots.extend([STATUS, DELETE_OPTIONS, PATCH].map(str::to_string));
            let names = closure(&roots, &lookup);
            let mut schemas = Map::new();
            for name in &names {
                if let Some(def) = lookup(name) {
                    schemas.insert(name.clone(), def.clone());
                    v2_defs.entry(name.clone()).or_insert_with(|| to_v2(def));
                }
            }
            let document = json!({
                "openapi": "3.0.0",
                "info": {"title": "Kubernetes", "version": "v1.32.0"},
                "paths": paths::render_v3(&doc.paths),
                "components": {
                    "schemas": schemas,
                    "securitySchemes": {"BearerToken": {
                        "type": "apiKey",
                        "description": "Bearer Token authentication",
                        "name": "authorization",
                        "in": "header"
                    }}
                },
                "security": [{"BearerToken": []}]
            });
            let bytes = Bytes::from(serde_json::to_vec(&document).unwrap_or_default());
            let hash = content_hash(&bytes);
            v3.insert(gv.clone(), (bytes, hash));
            v2_paths.extend(paths::render_v2(&doc.paths));
        }
        let v2_doc = json!({
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": "v1.32.0"},
            "paths": v2_paths,
            "definitions": v2_defs,
            "securityDefinitions": {"BearerToken": {
                "type": "apiKey",
                "description": "Bearer Token authentication",
                "name": "authorization",
                "in": "header"
            }},
            "security": [{"BearerToken": []}]
        });
        OpenApi {
            v2: Bytes::from(serde_json::to_vec(&v2_doc).unwrap_or_default()),
            v3,
        }
    }

    /// The Swagger 2.0 document (JSON).
    pub fn v2(&self) -> Bytes {
        self.v2.clone()
    }

    /// The `/openapi/v3` discovery document.
    pub fn v3_index(&self) -> Value {
        let paths: Map<String, Value> = self
            .v3
            .iter()
            .map(|(gv, (_, hash))| {
                (
                    gv.clone(),
                    json!({"serverRelativeURL": format!("/openapi/v3/{gv}?hash={hash}")}),
                )
            })
            .collect();
        json!({ "paths": paths })
    }

    /// The OpenAPI v3 document of one group-version (`api/v1`, `apis/apps/v1`).
    pub fn v3_document(&self, gv_path: &str) -> Option<Bytes> {
        self.v3
            .get(gv_path.trim_matches('/'))
            .map(|(b, _)| b.clone())
    }

    /// The hash clients pin a document with (`?hash=`); it changes whenever the content does.
    pub fn v3_hash(&self, gv_path: &str) -> Option<String> {
        self.v3
            .get(gv_path.trim_matches('/'))
            .map(|(_, h)| h.clone())
    }
}

fn gv_path(r: &ResourceInfo) -> String {
    if r.group.is_empty() {
        format!("api/{}", r.version)
    } else {
        format!("apis/{}/{}", r.group, r.version)
    }
}

/// Upstream names CRD definitions after the reversed group: `com.example.stable.v1.CronTab`.
fn crd_definition_name(group: &str, version: &str, kind: &str) -> String {
    let reversed: Vec<&str> = group.split('.').rev().collect();
    format!("{}.{version}.{kind}", reversed.join("."))
}

const API_VERSION_DESCRIPTION: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DESCRIPTION: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

/// A custom resource's definition: its CRD version schema with `apiVersion`, `kind` and an
/// ObjectMeta `metadata`, as upstream's CRD OpenAPI builder publishes it.
fn crd_definition(r: &ResourceInfo, custom: &CustomResourceInfo) -> (String, Value) {
    let name = crd_definition_name(&r.group, &r.version, &r.kind);
    let mut schema = match &custom.schema {
        Some(Value::Object(m)) => m.clone(),
        _ => {
            let mut m = Map::new();
            m.insert("x-kubernetes-preserve-unknown-fields".into(), true.into());
            m
        }
    };
    let user_props = match schema.shift_remove("properties") {
        Some(Value::Object(p)) => p,
        _ => Map::new(),
    };
    let mut props = Map::new();
    props.insert(
        "apiVersion".into(),
        json!({"description": API_VERSION_DESCRIPTION, "type": "string"}),
    );
    props.insert(
        "kind".into(),
        json!({"description": KIND_DESCRIPTION, "type": "string"}),
    );
    props.insert(
        "metadata".into(),
        json!({
            "allOf": [v3_ref(OBJECT_META)],
            "description": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
        }),
    );
    for (k, v) in user_props {
        if !props.contains_key(&k) {
            props.insert(k, v);
        }
    }
    schema.insert("type".into(), "object".into());
    schema.insert("properties".into(), Value::Object(props));
    add_gvk(&mut schema, &r.group, &r.version, &r.kind);
    (name, Value::Object(schema))
}

fn list_definition(r: &ResourceInfo, kind_def: &str) -> Value {
    let mut def = json!({
        "description": format!("{} is a list of {}", r.list_kind, r.kind),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"description": API_VERSION_DESCRIPTION, "type": "string"},
            "items": {
                "description": format!("List of {}.", r.plural),
                "type": "array",
                "items": v3_ref(kind_def)
            },
            "kind": {"description": KIND_DESCRIPTION, "type": "string"},
            "metadata": {
                "allOf": [v3_ref(LIST_META)],
                "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"
            }
        }
    });
    if let Value::Object(m) = &mut def {
        add_gvk(m, &r.group, &r.version, &r.list_kind);
    }
    def
}

/// `roots` and every definition they refer to, transitively.
fn closure<'a>(roots: &[String], lookup: &dyn Fn(&str) -> Option<&'a Value>) -> Vec<String> {
    let mut seen: HashSet<String> = HashSet::new();
    let mut order = Vec::new();
    let mut pending: Vec<String> = roots.to_vec();
    while let Some(name) = pending.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        order.push(name.clone());
        let Some(def) = lookup(&name) else { continue };
        let mut stack = vec![def];
        while let Some(v) = stack.pop() {
            match v {
                Value::Object(map) => {
                    if let Some(Value::String(r)) = map.get("$ref") {
                        if let Some(target) = r.strip_prefix(V3_REF_PREFIX) {
                            if !seen.contains(target) {
                                pending.push(target.to_string());
                            }
                        }
                    }
                    stack.extend(map.values());
                }
                Value::Array(items) => stack.extend(items),
                _ => {}
            }
        }
    }
    order.sort();
    order
}

/// A v3 schema in Swagger 2.0 form: refs into `#/definitions/`, `$ref` with siblings
/// instead of a single-element `allOf`, and no v3-only keywords.
fn to_v2(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, child) in map {
                match k.as_str() {
                    "nullable" | "oneOf" | "anyOf" | "not" => continue,
                    "$ref" => {
                        let r = child.as_str().unwrap_or_default();
                        let target = r.strip_prefix(V3_REF_PREFIX).unwrap_or(r);
                        out.insert(k.clone(), format!("#/definitions/{target}").into());
                    }
                    "allOf" => match child.as_array().map(Vec::as_slice) {
                        Some([only]) if only.get("$ref").is_some() => {
                            if let Value::Object(inner) = to_v2(only) {
                                out.extend(inner);
                            }
                        }
                        _ => {
                            out.insert(k.clone(), to_v2(child));
                        }
                    },
                    _ => {
                        out.insert(k.clone(), to_v2(child));
                    }
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(to_v2).collect()),
        other => other.clone(),
    }
}

/// A stable content hash (two independent 64-bit hashes, upper-case hex). Upstream uses
/// SHA-512; clients only compare it, so any hash that changes with the content works.
fn content_hash(bytes: &[u8]) -> String {
    let mut fnv: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        fnv ^= u64::from(*b);
        fnv = fnv.wrapping_mul(0x0100_0000_01b3);
    }
    // `DefaultHasher::new()` uses fixed keys, so it is deterministic for a given build.
    let mut sip = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut sip);
    format!("{fnv:016X}{:016X}", sip.finish())
}

#[cfg(test)]
mod tests;
