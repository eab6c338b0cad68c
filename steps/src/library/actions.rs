//! Given/When steps: things a scenario does to the cluster.

use std::time::Duration;

use serde_json::{json, Value};

use super::support::{
    expect_success, fetch, namespace_for, parse_documents, send, send_as, StepArgs, StepFailure,
    StepResult,
};
use crate::api::ApiResponse;
use crate::jsonpath;
use crate::kinds::ResourceInfo;
use crate::watch;
use crate::world::{KubeWorld, Listing};

pub async fn a_namespace(world: &mut KubeWorld, _args: StepArgs) -> StepResult {
    // The namespace is created before the first step; this step only documents that the
    // scenario relies on it, and fails loudly if setup went wrong.
    if world.namespace.is_empty() {
        return Err(StepFailure::msg("the scenario has no namespace"));
    }
    Ok(())
}

pub async fn another_namespace(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let var = args.req("var")?.to_string();
    let name = format!("kp-{}", crate::world::random_suffix(6));
    world.create_namespace(&name).await?;
    world.vars.insert(var, name);
    Ok(())
}

/// What a manifest step does with each document.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Verb {
    Create,
    Replace,
    Apply,
}

pub async fn manifest(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let verb = match args.req("verb")? {
        "create" => Verb::Create,
        "replace" => Verb::Replace,
        _ => Verb::Apply,
    };
    let mut query: Vec<(&str, String)> = Vec::new();
    if args.get("dry").is_some() {
        query.push(("dryRun", "All".into()));
    }
    if let Some(fv) = args.get("fv") {
        query.push(("fieldValidation", fv.to_string()));
    }
    let manager = args.get("manager").unwrap_or("kubeproof").to_string();
    if verb == Verb::Apply {
        query.push(("fieldManager", manager));
        if args.get("force").is_some() {
            query.push(("force", "true".into()));
        }
    }
    let dry = args.get("dry").is_some();
    for doc in parse_documents(args.doc()?)? {
        let (res, ns, name) = identify(world, &doc).await?;
        let path = match verb {
            Verb::Create => res.collection_path(ns.as_deref()),
            _ => {
                let name = name
                    .as_deref()
                    .ok_or_else(|| StepFailure::msg("the manifest has no metadata.name"))?;
                res.object_path(ns.as_deref(), name)
            }
        };
        let path = with_query(&path, &query);
        let body = serde_json::to_vec(&doc)?;
        let resp = match verb {
            Verb::Create => {
                send_as(
                    world,
                    &args,
                    http::Method::POST,
                    &path,
                    Some("application/json"),
                    body,
                )
                .await?
            }
            Verb::Replace => {
                send_as(
                    world,
                    &args,
                    http::Method::PUT,
                    &path,
                    Some("application/json"),
                    body,
                )
                .await?
            }
            Verb::Apply => {
                send_as(
                    world,
                    &args,
                    http::Method::PATCH,
                    &path,
                    Some("application/apply-patch+yaml"),
                    body,
                )
                .await?
            }
        };
        if resp.is_success() && !dry && verb != Verb::Replace {
            let created_name = resp
                .json
                .as_ref()
                .and_then(|j| j.pointer("/metadata/name"))
                .and_then(Value::as_str)
                .map(str::to_string);
            if let Some(n) = created_name.or(name) {
                world.record_created(&res, ns.as_deref(), &n);
            }
        }
        let ok = resp.is_success();
        world.last = Some(resp);
        if !ok {
            // Later documents would run against a state the author did not expect.
            break;
        }
    }
    match &world.last {
        Some(resp) => expect_success(&args, resp),
        None => Err(StepFailure::msg("the doc string holds no manifest")),
    }
}

/// The resource, namespace and name a manifest addresses.
async fn identify(
    world: &KubeWorld,
    doc: &Value,
) -> Result<(ResourceInfo, Option<String>, Option<String>), StepFailure> {
    let s = |p: &str| doc.pointer(p).and_then(Value::as_str).map(str::to_string);
    let api_version =
        s("/apiVersion").ok_or_else(|| StepFailure::msg("a manifest lacks apiVersion"))?;
    let kind = s("/kind").ok_or_else(|| StepFailure::msg("a manifest lacks kind"))?;
    let res = world
        .target()?
        .resolver
        .by_kind(&api_version, &kind)
        .await?;
    let ns = if res.namespaced {
        Some(s("/metadata/namespace").unwrap_or_else(|| world.namespace.clone()))
    } else {
        None
    };
    Ok((res, ns, s("/metadata/name")))
}

fn with_query(path: &str, query: &[(&str, String)]) -> String {
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", watch::encode_query(query))
    }
}

pub async fn resolve(world: &KubeWorld, word: &str) -> Result<ResourceInfo, StepFailure> {
    Ok(world.target()?.resolver.by_word(word).await?)
}

pub async fn patch(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let res = resolve(world, args.req("kind")?).await?;
    let name = args.req("name")?;
    let ns = namespace_for(world, args.get("ns")).to_string();
    let content_type = match args.req("type")? {
        "json" => "application/json-patch+json",
        "merge" => "application/merge-patch+json",
        _ => "application/strategic-merge-patch+json",
    };
    let docs = parse_documents(args.doc()?)?;
    let [doc] = docs.as_slice() else {
        return Err(StepFailure::msg(
            "a patch doc string must hold exactly one document",
        ));
    };
    let path = res.object_path(Some(&ns), name);
    let resp = send_as(
        world,
        &args,
        http::Method::PATCH,
        &path,
        Some(content_type),
        serde_json::to_vec(doc)?,
    )
    .await?;
    keep(world, &args, resp)
}

pub async fn delete(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let res = resolve(world, args.req("kind")?).await?;
    let name = args.req("name")?;
    let ns = namespace_for(world, args.get("ns")).to_string();
    let mut opts = json!({"kind": "DeleteOptions", "apiVersion": "v1"});
    if let Some(p) = args.get("policy") {
        opts["propagationPolicy"] = json!(p);
    }
    if args.get("grace").is_some() {
        opts["gracePeriodSeconds"] = json!(args.number::<i64>("grace")?);
    }
    let path = res.object_path(Some(&ns), name);
    let resp = send_as(
        world,
        &args,
        http::Method::DELETE,
        &path,
        Some("application/json"),
        serde_json::to_vec(&opts)?,
    )
    .await?;
    keep(world, &args, resp)
}

pub async fn scale(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let res = resolve(world, args.req("kind")?).await?;
    let name = args.req("name")?;
    let replicas: i64 = args.number("n")?;
    let ns = namespace_for(world, args.get("ns")).to_string();
    let path = format!("{}/scale", res.object_path(Some(&ns), name));
    let body = json!({"spec": {"replicas": replicas}});
    let resp = send_as(
        world,
        &args,
        http::Method::PATCH,
        &path,
        Some("application/merge-patch+json"),
        serde_json::to_vec(&body)?,
    )
    .await?;
    keep(world, &args, resp)
}

pub async fn get(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let res = resolve(world, args.req("kind")?).await?;
    let name = args.req("name")?;
    let ns = namespace_for(world, args.get("ns")).to_string();
    let resp = send_as(
        world,
        &args,
        http::Method::GET,
        &res.object_path(Some(&ns), name),
        None,
        Vec::new(),
    )
    .await?;
    keep(world, &args, resp)
}

/// Keeps `resp` as the last response and judges it by the step's "try to" form.
fn keep(world: &mut KubeWorld, args: &StepArgs, resp: ApiResponse) -> StepResult {
    let outcome = expect_success(args, &resp);
    world.last = Some(resp);
    outcome
}

pub async fn list(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let res = resolve(world, args.req("kind")?).await?;
    let ns = namespace_for(world, args.get("ns")).to_string();
    let mut query: Vec<(String, String)> = Vec::new();
    for (cap, param) in [
        ("ls", "labelSelector"),
        ("fs", "fieldSelector"),
        ("limit", "limit"),
    ] {
        if let Some(v) = args.get(cap) {
            query.push((param.to_string(), v.to_string()));
        }
    }
    let listing = Listing {
        path: res.collection_path(Some(&ns)),
        query,
        ..Listing::default()
    };
    list_page(world, &args, listing).await
}

pub async fn next_page(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let Some(listing) = world.listing.clone() else {
        return Err(StepFailure::msg(
            "no list was made before asking for the next page",
        ));
    };
    let Some(token) = listing.continue_token.clone() else {
        return Err(StepFailure::msg("the last list page has no continue token"));
    };
    let mut next = listing;
    next.query.retain(|(k, _)| k != "continue");
    next.query.push(("continue".into(), token));
    list_page(world, &args, next).await
}

async fn list_page(world: &mut KubeWorld, args: &StepArgs, mut listing: Listing) -> StepResult {
    let q: Vec<(&str, String)> = listing
        .query
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    let resp = send_as(
        world,
        args,
        http::Method::GET,
        &with_query(&listing.path, &q),
        None,
        Vec::new(),
    )
    .await?;
    if resp.is_success() {
        let j = resp.json.clone().unwrap_or(Value::Null);
        listing.page = j
            .get("items")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| {
                        i.pointer("/metadata/name")
                            .and_then(Value::as_str)
                            .map(str::to_string)
                    })
                    .collect()
            })
            .unwrap_or_default();
        listing.all.extend(listing.page.iter().cloned());
        listing.pages += 1;
        listing.continue_token = j
            .pointer("/metadata/continue")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        world.listing = Some(listing);
    }
    keep(world, args, resp)
}

pub async fn request(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let method = http::Method::from_bytes(args.req("method")?.as_bytes())
        .map_err(|e| StepFailure::msg(e.to_string()))?;
    let path = args.req("path")?;
    let (ct, body) = match &args.doc {
        Some(d) => {
            let docs = parse_documents(d)?;
            let [doc] = docs.as_slice() else {
                return Err(StepFailure::msg(
                    "a request body must be exactly one document",
                ));
            };
            (Some("application/json"), serde_json::to_vec(doc)?)
        }
        None => (None, Vec::new()),
    };
    let resp = send(world, method, path, ct, body).await?;
    world.last = Some(resp);
    // Raw requests are made to look at the answer, whatever its code.
    Ok(())
}

pub async fn remember_field(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let res = resolve(world, args.req("kind")?).await?;
    let name = args.req("name")?;
    let ns = namespace_for(world, args.get("ns")).to_string();
    let (obj, resp) = fetch(world, &res, Some(&ns), name).await?;
    let obj = obj.ok_or_else(|| {
        StepFailure::msg(format!(
            "{} \"{name}\" does not exist: {}",
            res.kind,
            resp.describe()
        ))
    })?;
    let value = jsonpath::query_string(&obj, args.req("path")?)?;
    world.vars.insert(args.req("var")?.to_string(), value);
    Ok(())
}

pub async fn remember_response_field(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let json = world
        .last
        .as_ref()
        .and_then(|r| r.json.clone())
        .ok_or_else(|| StepFailure::msg("the last response has no JSON body"))?;
    let value = jsonpath::query_string(&json, args.req("path")?)?;
    world.vars.insert(args.req("var")?.to_string(), value);
    Ok(())
}

pub async fn start_watch(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let word = args.req("kind")?.to_string();
    let res = resolve(world, &word).await?;
    let ns = namespace_for(world, args.get("ns")).to_string();
    let path = res.collection_path(Some(&ns));
    let rv = match args.get("rv") {
        Some(rv) => rv.to_string(),
        None => {
            // "Now" is the collection's current resourceVersion: everything after it counts.
            let resp = send(
                world,
                http::Method::GET,
                &format!("{path}?limit=1"),
                None,
                Vec::new(),
            )
            .await?;
            resp.json
                .as_ref()
                .and_then(|j| j.pointer("/metadata/resourceVersion"))
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| {
                    StepFailure::msg(format!(
                        "listing {path} gave no resourceVersion: {}",
                        resp.describe()
                    ))
                })?
        }
    };
    let selector = args.get("name").map(|n| format!("metadata.name={n}"));
    let handle = watch::start(world.client()?.clone(), &path, &rv, selector.as_deref())?;
    world.watches.insert(word.to_ascii_lowercase(), handle);
    Ok(())
}

pub async fn wait(_world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let secs: f64 = args.number("secs")?;
    if !(0.0..=600.0).contains(&secs) {
        return Err(StepFailure::msg("waits are limited to 600 seconds"));
    }
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    Ok(())
}
