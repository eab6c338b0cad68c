//! What some resources do beyond the generic registry: subresources (status, scale, binding,
//! finalize, eviction), cluster-IP allocation for Services, CRDs registering their custom
//! resources, and namespace / pod deletion rules.

use std::net::Ipv4Addr;
use std::sync::Arc;

use http::Response;
use serde_json::{json, Value};

use super::object;
use super::registry::{DeleteOptions, WriteOptions};
use super::request::ResourceRequest;
use super::{respond_json, ApiError, ApiResult, ApiServer, Body, RequestContext};
use crate::resources::ResourceInfo;

fn is(info: &ResourceInfo, group: &str, plural: &str) -> bool {
    info.group == group && info.plural == plural && info.custom.is_none()
}

/// Requests for `<resource>/<name>/<subresource>`.
pub async fn subresource(
    server: &Arc<ApiServer>,
    ctx: &RequestContext,
    info: &ResourceInfo,
    ns: Option<&str>,
    r: &ResourceRequest,
    sub: &str,
) -> ApiResult<Response<Body>> {
    let name = r.name.as_deref().ok_or_else(ApiError::path_not_found)?;
    let sub_info = info
        .subresources
        .iter()
        .find(|s| s.name == sub)
        .ok_or_else(ApiError::path_not_found)?;
    if !sub_info.verbs.iter().any(|v| v == &r.verb) {
        return Err(ApiError::method_not_allowed(&r.verb));
    }
    let opts = || WriteOptions::from_query(ctx);
    match (sub, r.verb.as_str()) {
        // Subresources that are views of the object itself, each writable only in its own part
        // (the strategy's prepare_subresource_update keeps the rest).
        ("status" | "approval" | "ephemeralcontainers", "get") => {
            let obj = server.get_object(info, ns, name).await?;
            super::table::respond_object(server, ctx, info, obj, 200)
        }
        ("status" | "approval" | "ephemeralcontainers", "update") => {
            let opts = opts()?;
            let obj = object::decode(ctx.content_type(), &ctx.body)?;
            let (v, _) = server
                .update_object(info, ns, name, Some(sub), obj, &opts)
                .await?;
            Ok(respond_json(200, &v))
        }
        ("status" | "approval" | "ephemeralcontainers", "patch") => {
            let opts = opts()?;
            let force = ctx.flag("force") == Some(true);
            let (v, _) = server
                .patch_object(info, ns, name, Some(sub), ctx, &opts, force)
                .await?;
            Ok(respond_json(200, &v))
        }
        ("scale", "get") => {
            let obj = server.get_object(info, ns, name).await?;
            Ok(respond_json(200, &scale_of(info, &obj)?))
        }
        ("scale", "update" | "patch") => {
            let opts = opts()?;
            let current = server.get_object(info, ns, name).await?;
            let scale = if r.verb == "update" {
                object::decode(ctx.content_type(), &ctx.body)?
            } else {
                let ct = ctx
                    .content_type()
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_string();
                let pt = crate::patch::PatchType::from_content_type(&ct)
                    .ok_or_else(|| ApiError::unsupported_media_type(&ct))?;
                let pm = crate::patch::PatchMeta::for_builtin("autoscaling", "v1", "Scale")
                    .unwrap_or_else(crate::patch::PatchMeta::unknown);
                crate::patch::apply_patch(&pm, pt, &scale_of(info, &current)?, &ctx.body)
                    .map_err(|e| ApiError::new(e.status_code(), "BadRequest", e.to_string()))?
            };
            let errors = crate::resources::scale::validate_scale(&scale);
            if !errors.is_empty() {
                let scale_info = ResourceInfo {
                    group: "autoscaling".into(),
                    kind: "Scale".into(),
                    ..Default::default()
                };
                return Err(ApiError::invalid(&scale_info, name, &errors));
            }
            let replicas = scale
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let updated = server
                .guaranteed_update(
                    info,
                    ns,
                    name,
                    None,
                    &opts,
                    crate::patch::Operation::Update,
                    |cur| {
                        let mut cur = cur.ok_or_else(|| ApiError::not_found(info, name))?;
                        crate::resources::scale::set_replicas(info, &mut cur, replicas)
                            .map_err(ApiError::internal)?;
                        Ok(cur)
                    },
                )
                .await?;
            Ok(respond_json(200, &scale_of(info, &updated)?))
        }
        ("finalize", "update") => {
            let opts = opts()?;
            let obj = object::decode(ctx.content_type(), &ctx.body)?;
            let finalizers = obj
                .pointer("/spec/finalizers")
                .cloned()
                .unwrap_or(json!([]));
            let v = server
                .guaranteed_update(
                    info,
                    ns,
                    name,
                    Some("finalize"),
                    &opts,
                    crate::patch::Operation::Update,
                    |cur| {
                        let mut cur = cur.ok_or_else(|| ApiError::not_found(info, name))?;
                        object::set_path(&mut cur, "spec.finalizers", finalizers.clone());
                        Ok(cur)
                    },
                )
                .await?;
            Ok(respond_json(200, &v))
        }
        ("eviction", "create") => {
            let body = object::decode(ctx.content_type(), &ctx.body)?;
            admit_subresource_create(server, ctx, info, ns, name, "eviction", "Eviction", &body)
                .await?;
            evict(server, info, ns, name, &body, ctx.dry_run()).await
        }
        ("binding", "create") => {
            let body = object::decode(ctx.content_type(), &ctx.body)?;
            admit_subresource_create(server, ctx, info, ns, name, "binding", "Binding", &body)
                .await?;
            bind(server, info, ns, name, &body).await
        }
        ("token", "create") => super::reviews::token_request(server, ctx, info, ns, name).await,
        ("log", "get") if is(info, "", "pods") => {
            super::logs::pod_log(server, ctx, info, ns, name).await
        }
        ("exec", "get" | "create") if is(info, "", "pods") => {
            super::exec::pod_exec(server, ctx, info, ns, name).await
        }
        ("attach", "get" | "create") if is(info, "", "pods") => {
            super::attach::pod_attach(server, ctx, info, ns, name).await
        }
        ("portforward", "get" | "create") if is(info, "", "pods") => {
            super::portforward::pod_portforward(server, ctx, info, ns, name).await
        }
        (other, _) => Err(ApiError::new(
            503,
            "ServiceUnavailable",
            format!(
                "{}/{other} is served by the node stack, which this cluster is not running",
                info.plural
            ),
        )),
    }
}

impl WriteOptions {
    pub(crate) fn from_query(ctx: &RequestContext) -> ApiResult<WriteOptions> {
        let manager = ctx.q("fieldManager").unwrap_or("unknown").to_string();
        Ok(WriteOptions {
            dry_run: ctx.dry_run(),
            field_manager: manager,
            validation: super::registry::FieldValidation::Ignore,
            warnings: Default::default(),
            requester: Some(ctx.requester()),
        })
    }
}

/// Admission of a create on a subresource (`pods/eviction`, `pods/binding`): the body is the
/// subresource's object, the current parent object is what it acts on.
#[allow(clippy::too_many_arguments)]
async fn admit_subresource_create(
    server: &Arc<ApiServer>,
    ctx: &RequestContext,
    info: &ResourceInfo,
    ns: Option<&str>,
    name: &str,
    sub: &str,
    kind: &str,
    body: &Value,
) -> ApiResult<()> {
    let requester = ctx.requester();
    let warnings = Default::default();
    let call = super::admission::AdmissionCall::new(
        info,
        ns,
        name,
        Some(sub),
        Some(kind),
        crate::security::admission::Operation::Create,
        ctx.dry_run(),
        &requester,
        &warnings,
    );
    let parent = server.get_object(info, ns, name).await?;
    let mut body = body.clone();
    server
        .admit_mutating(&call, Some(&mut body), Some(&parent))
        .await?;
    server
        .admit_validating(&call, Some(&body), Some(&parent))
        .await
}

/// The `autoscaling/v1 Scale` view of a scalable object.
fn scale_of(info: &ResourceInfo, obj: &Value) -> ApiResult<Value> {
    crate::resources::scale::to_scale(info, obj).ok_or_else(ApiError::path_not_found)
}

async fn bind(
    server: &Arc<ApiServer>,
    info: &ResourceInfo,
    ns: Option<&str>,
    name: &str,
    binding: &Value,
) -> ApiResult<Response<Body>> {
    let node = binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                422,
                "Invalid",
                format!("Binding \"{name}\" is invalid: target.name: Required value"),
            )
        })?
        .to_string();
    let opts = WriteOptions::internal("kube-scheduler");
    server
        .guaranteed_update(info, ns, name, Some("binding"), &opts, crate::patch::Operation::Update, |cur| {
            let mut pod = cur.ok_or_else(|| ApiError::not_found(info, name))?;
            if object::is_deleting(&pod) {
                return Err(binding_conflict(name, &format!("pod {name} is being deleted, cannot be assigned to a host")));
            }
            if let Some(existing) = pod.pointer("/spec/nodeName").and_then(Value::as_str).filter(|s| !s.is_empty()) {
                return Err(binding_conflict(
                    name,
                    &format!("pod {name} is already assigned to node \"{existing}\""),
                ));
            }
            object::set_path(&mut pod, "spec.nodeName", json!(node));
            let now = object::now_rfc3339();
            let conds = pod
                .pointer_mut("/status/conditions")
                .and_then(Value::as_array_mut)
                .map(std::mem::take)
                .unwrap_or_default();
            let mut conds: Vec<Value> = conds.into_iter().filter(|c| c["type"] != "PodScheduled").collect();
            conds.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now}));
            object::set_path(&mut pod, "status.conditions", json!(conds));
            Ok(pod)
        })
        .await?;
    Ok(respond_json(
        201,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    ))
}

/// The eviction subresource: a delete that respects PodDisruptionBudgets.
///
/// As upstream: a pod that is not running yet, has finished or is already deleting goes
/// without asking its budget; otherwise its one matching budget must allow a disruption, and
/// the eviction takes it (status `disruptionsAllowed` down by one, the pod recorded in
/// `disruptedPods`) before deleting, so that two evictions racing cannot both pass.
async fn evict(
    server: &Arc<ApiServer>,
    info: &ResourceInfo,
    ns: Option<&str>,
    name: &str,
    body: &Value,
    dry_run_query: bool,
) -> ApiResult<Response<Body>> {
    let pod = server.get_object(info, ns, name).await?;
    let phase = pod.pointer("/status/phase").and_then(Value::as_str);
    let budget_applies =
        !object::is_deleting(&pod) && !matches!(phase, Some("Pending" | "Succeeded" | "Failed"));
    let dry_run = dry_run_query
        || body
            .pointer("/deleteOptions/dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
    if budget_applies {
        if let Some(pdb_info) = server.catalog.get("policy", "v1", "poddisruptionbudgets") {
            take_disruption(server, &pdb_info, ns, &pod, dry_run).await?;
        }
    }
    let opts = DeleteOptions {
        grace_period: body
            .pointer("/deleteOptions/gracePeriodSeconds")
            .and_then(Value::as_i64),
        dry_run,
        ..Default::default()
    };
    server.delete_object(info, ns, name, &opts).await?;
    Ok(respond_json(
        201,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    ))
}

/// Checks the pod's budget and records the disruption in its status (429 when none is left).
async fn take_disruption(
    server: &Arc<ApiServer>,
    pdb_info: &ResourceInfo,
    ns: Option<&str>,
    pod: &Value,
    dry_run: bool,
) -> ApiResult<()> {
    let filter_all = super::watch_stream::Filter::everything(server, pdb_info);
    let pdbs = server
        .list_objects(pdb_info, ns, &filter_all, Default::default())
        .await?;
    let matching: Vec<&Value> = pdbs
        .items
        .iter()
        .filter(|pdb| {
            let sel = pdb
                .pointer("/spec/selector")
                .cloned()
                .unwrap_or(Value::Null);
            crate::resources::fields::LabelSelector::from_json(&sel)
                .map(|s| s.matches_object(pod))
                .unwrap_or(false)
        })
        .collect();
    let pdb = match matching.as_slice() {
        [] => return Ok(()),
        [one] => *one,
        _ => {
            return Err(ApiError::new(
                500,
                "InternalError",
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            ))
        }
    };
    let pdb_name = object::name(pdb).to_string();
    let pod_name = object::name(pod).to_string();
    let refuse = |pdb: &Value| {
        let mut e = ApiError::new(
            429,
            "TooManyRequests",
            "Cannot evict pod as it would violate the pod's disruption budget.",
        );
        e.details = Some(
            json!({"causes": [{"reason": "DisruptionBudget", "message": format!(
            "The disruption budget {} needs {} healthy pods and has {} currently",
            object::name(pdb),
            pdb.pointer("/status/desiredHealthy").cloned().unwrap_or(json!(0)),
            pdb.pointer("/status/currentHealthy").cloned().unwrap_or(json!(0)))}]}),
        );
        e
    };
    let allowed = |pdb: &Value| {
        pdb.pointer("/status/disruptionsAllowed")
            .and_then(Value::as_i64)
            .unwrap_or(0)
    };
    if dry_run {
        return if allowed(pdb) > 0 {
            Ok(())
        } else {
            Err(refuse(pdb))
        };
    }
    let opts = WriteOptions::internal("kube-apiserver");
    server
        .guaranteed_update(
            pdb_info,
            ns,
            &pdb_name,
            Some("status"),
            &opts,
            crate::patch::Operation::Update,
            |cur| {
                let mut pdb = cur.ok_or_else(|| ApiError::not_found(pdb_info, &pdb_name))?;
                let left = allowed(&pdb);
                if left <= 0 {
                    return Err(refuse(&pdb));
                }
                object::set_path(&mut pdb, "status.disruptionsAllowed", json!(left - 1));
                // Pod names may hold dots: the map entry is set directly, not by path.
                let mut disrupted = pdb
                    .pointer("/status/disruptedPods")
                    .cloned()
                    .filter(Value::is_object)
                    .unwrap_or_else(|| json!({}));
                disrupted[pod_name.as_str()] = json!(object::now_rfc3339());
                object::set_path(&mut pdb, "status.disruptedPods", disrupted);
                Ok(pdb)
            },
        )
        .await
        .map(|_| ())
}

/// Work before an object is first stored.
pub async fn before_create(
    server: &ApiServer,
    info: &ResourceInfo,
    obj: &mut Value,
) -> ApiResult<()> {
    if is(info, "", "services") {
        allocate_service(server, obj).await?;
    }
    if is(info, "apiextensions.k8s.io", "customresourcedefinitions") {
        crd_status(obj)?;
    }
    Ok(())
}

/// Work before an update is stored.
pub async fn before_update(
    server: &ApiServer,
    info: &ResourceInfo,
    new: &mut Value,
    old: &Value,
) -> ApiResult<()> {
    if is(info, "", "services") {
        for f in ["clusterIP", "clusterIPs"] {
            if new.pointer(&format!("/spec/{f}")).is_none() {
                if let Some(v) = old.pointer(&format!("/spec/{f}")) {
                    object::set_path(new, &format!("spec.{f}"), v.clone());
                }
            }
        }
        check_cluster_ip_unchanged(new, old)?;
        // A Service turned into NodePort/LoadBalancer gets its node ports now, as upstream's
        // update path allocates them.
        allocate_node_ports(server, new, Some(old)).await?;
    }
    if is(info, "apiextensions.k8s.io", "customresourcedefinitions") {
        crd_status(new)?;
    }
    Ok(())
}

/// Follow-up after a successful write (`new = None`: deleted).
pub async fn after_write(
    server: &ApiServer,
    info: &ResourceInfo,
    _old: Option<&Value>,
    new: Option<&Value>,
) {
    super::informer::observe_local_write(server, info, _old, new);
    if info.namespaced && releases_quota(info, _old, new) {
        if let Some(ns) = new.or(_old).and_then(|o| object::meta_str(o, "namespace")) {
            server.security.quota_queue.touch(ns);
        }
    }
    if is(info, "apiextensions.k8s.io", "customresourcedefinitions") {
        let name = new
            .map(object::name)
            .or(_old.map(object::name))
            .unwrap_or("")
            .to_string();
        match new {
            Some(crd) => register_crd(server, crd),
            None => {
                server.catalog.remove_custom(&name);
                server.invalidate_openapi();
                if let Some(old) = _old {
                    delete_custom_objects(server, old).await;
                }
            }
        }
    }
}

/// Whether a write may lower quota usage: deletes, and pods reaching a terminal phase.
fn releases_quota(info: &ResourceInfo, old: Option<&Value>, new: Option<&Value>) -> bool {
    let terminal = |o: Option<&Value>| {
        matches!(
            o.and_then(|o| o.pointer("/status/phase"))
                .and_then(Value::as_str),
            Some("Succeeded" | "Failed")
        )
    };
    new.is_none() || (is(info, "", "pods") && terminal(new) && !terminal(old))
}

/// Registers the custom resources a stored CRD serves.
pub fn register_crd(server: &ApiServer, crd: &Value) {
    if let Ok(infos) = crate::resources::crd::infos_from_crd(crd) {
        server.catalog.set_custom(object::name(crd), infos);
        server.invalidate_openapi();
    }
}

async fn delete_custom_objects(server: &ApiServer, crd: &Value) {
    let group = crd
        .pointer("/spec/group")
        .and_then(Value::as_str)
        .unwrap_or("");
    let plural = crd
        .pointer("/spec/names/plural")
        .and_then(Value::as_str)
        .unwrap_or("");
    if group.is_empty() || plural.is_empty() {
        return;
    }
    let prefix = format!("/registry/{group}/{plural}/");
    if let Ok(list) = server.store.list(&prefix, None, None, 0).await {
        for kv in list.items {
            let _ = server.store.delete(&kv.key, None).await;
        }
    }
}

fn crd_status(crd: &mut Value) -> ApiResult<()> {
    if let Err(errors) = crate::resources::crd::infos_from_crd(crd) {
        let info = ResourceInfo {
            group: "apiextensions.k8s.io".into(),
            kind: "CustomResourceDefinition".into(),
            plural: "customresourcedefinitions".into(),
            ..Default::default()
        };
        return Err(ApiError::invalid(&info, object::name(crd), &errors));
    }
    let names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
    let storage: Vec<Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                .filter_map(|v| v.get("name").cloned())
                .collect()
        })
        .unwrap_or_default();
    let now = object::now_rfc3339();
    let mut stored: Vec<Value> = crd
        .pointer("/status/storedVersions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for s in storage {
        if !stored.contains(&s) {
            stored.push(s);
        }
    }
    object::set_path(
        crd,
        "status",
        json!({
            "acceptedNames": names,
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "lastTransitionTime": now, "reason": "NoConflicts", "message": "no conflicts found"},
                {"type": "Established", "status": "True", "lastTransitionTime": now, "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"},
            ],
            "storedVersions": stored,
        }),
    );
    Ok(())
}

/// Services get a cluster IP from the service CIDR (inside 127.0.0.0/8) and node ports.
async fn allocate_service(server: &ApiServer, svc: &mut Value) -> ApiResult<()> {
    let _guard = server.alloc_lock.lock().await;
    let typ = svc
        .pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_string();
    if typ == "ExternalName" {
        return Ok(());
    }
    let Some(info) = server.catalog.get("", "v1", "services") else {
        return Ok(());
    };
    let all = server
        .list_objects(
            &info,
            None,
            &super::watch_stream::Filter::everything(server, &info),
            Default::default(),
        )
        .await?;
    let used_ips: std::collections::HashSet<String> = all
        .items
        .iter()
        .filter_map(|s| {
            s.pointer("/spec/clusterIP")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect();
    let requested = svc
        .pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let ip = if requested == "None" {
        "None".to_string()
    } else if !requested.is_empty() {
        check_in_service_range(server, svc, &requested)?;
        if used_ips.contains(&requested) {
            return Err(ApiError::new(
                422,
                "Invalid",
                format!("Service \"{}\" is invalid: spec.clusterIPs: Invalid value: [\"{requested}\"]: failed to allocate IP {requested}: provided IP is already allocated", object::name(svc)),
            ));
        }
        requested
    } else {
        let (base, bits) = server.config.service_cidr;
        let size: u32 = 1u32 << (32 - bits as u32);
        let base = u32::from(base);
        let mut found = None;
        // .0 is the network and .1 the `kubernetes` service, as upstream reserves them.
        let start = rand::random::<u32>() % (size - 3);
        for i in 0..size - 2 {
            let off = 2 + (start + i) % (size - 3);
            let cand = Ipv4Addr::from(base + off).to_string();
            if !used_ips.contains(&cand) {
                found = Some(cand);
                break;
            }
        }
        found.ok_or_else(|| ApiError::internal("failed to allocate a serviceIP: range is full"))?
    };
    object::set_path(svc, "spec.clusterIP", json!(ip));
    object::set_path(svc, "spec.clusterIPs", json!([ip]));
    drop(_guard);
    allocate_node_ports(server, svc, None).await
}

/// The range check upstream's IP allocator makes on a requested cluster IP.
fn check_in_service_range(server: &ApiServer, svc: &Value, requested: &str) -> ApiResult<()> {
    let Ok(ip) = requested.parse::<Ipv4Addr>() else {
        // Not IPv4: validation reports malformed addresses; this cluster has no IPv6 range.
        return Ok(());
    };
    let (base, bits) = server.config.service_cidr;
    if in_cidr(ip, base, bits) {
        return Ok(());
    }
    Err(ApiError::new(
        422,
        "Invalid",
        format!(
            "Service \"{}\" is invalid: spec.clusterIPs: Invalid value: [\"{requested}\"]: failed to allocate IP {requested}: the provided IP ({requested}) is not in the valid range. The range of valid IPs is {base}/{bits}",
            object::name(svc)
        ),
    ))
}

fn in_cidr(ip: Ipv4Addr, base: Ipv4Addr, bits: u8) -> bool {
    let mask = match bits {
        0 => 0,
        b if b >= 32 => u32::MAX,
        b => u32::MAX << (32 - b as u32),
    };
    u32::from(ip) & mask == u32::from(base) & mask
}

/// `spec.clusterIP` may not change once set (upstream's update validation), except when
/// the Service becomes or stops being ExternalName.
fn check_cluster_ip_unchanged(new: &Value, old: &Value) -> ApiResult<()> {
    let ip = |v: &Value| {
        v.pointer("/spec/clusterIP")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let typ = |v: &Value| {
        v.pointer("/spec/type")
            .and_then(Value::as_str)
            .unwrap_or("ClusterIP")
            .to_string()
    };
    let (before, after) = (ip(old), ip(new));
    if before.is_empty() || before == after || typ(new) == "ExternalName" {
        return Ok(());
    }
    Err(ApiError::new(
        422,
        "Invalid",
        format!(
            "Service \"{}\" is invalid: spec.clusterIPs[0]: Invalid value: [\"{after}\"]: may not change once set",
            object::name(new)
        ),
    ))
}

/// Node ports for NodePort and LoadBalancer Services: requested ones must lie in the node port
/// range and be free, missing ones are allocated. `old` is the stored Service on update, whose
/// own ports do not count as taken.
async fn allocate_node_ports(
    server: &ApiServer,
    svc: &mut Value,
    old: Option<&Value>,
) -> ApiResult<()> {
    let typ = svc
        .pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_string();
    let wants_ports = typ == "NodePort"
        || (typ == "LoadBalancer"
            && svc
                .pointer("/spec/allocateLoadBalancerNodePorts")
                .and_then(Value::as_bool)
                .unwrap_or(true));
    if !wants_ports {
        return Ok(());
    }
    let _guard = server.alloc_lock.lock().await;
    let Some(info) = server.catalog.get("", "v1", "services") else {
        return Ok(());
    };
    let all = server
        .list_objects(
            &info,
            None,
            &super::watch_stream::Filter::everything(server, &info),
            Default::default(),
        )
        .await?;
    let own_uid = old.and_then(|o| o.pointer("/metadata/uid")).cloned();
    let mut used_ports: std::collections::HashSet<i64> = all
        .items
        .iter()
        .filter(|s| own_uid.is_none() || s.pointer("/metadata/uid").cloned() != own_uid)
        .flat_map(|s| {
            s.pointer("/spec/ports")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|p| p.get("nodePort").and_then(Value::as_i64))
        .collect();
    let (lo, hi) = server.config.node_port_range;
    let name = object::name(svc).to_string();
    let Some(ports) = svc.pointer_mut("/spec/ports").and_then(Value::as_array_mut) else {
        return Ok(());
    };
    for (i, p) in ports.iter().enumerate() {
        let Some(port) = p.get("nodePort").and_then(Value::as_i64) else {
            continue;
        };
        let invalid = |why: String| {
            ApiError::new(
                422,
                "Invalid",
                format!("Service \"{name}\" is invalid: spec.ports[{i}].nodePort: Invalid value: {port}: {why}"),
            )
        };
        if port < lo as i64 || port > hi as i64 {
            return Err(invalid(format!(
                "provided port is not in the valid range. The range of valid ports is {lo}-{hi}"
            )));
        }
        if !used_ports.insert(port) {
            return Err(invalid("provided port is already allocated".into()));
        }
    }
    let mut next = lo as i64;
    for p in ports.iter_mut() {
        if p.get("nodePort").and_then(Value::as_i64).is_some() {
            continue;
        }
        while used_ports.contains(&next) && next <= hi as i64 {
            next += 1;
        }
        if next > hi as i64 {
            return Err(ApiError::internal(
                "failed to allocate a nodePort: range is full",
            ));
        }
        p["nodePort"] = json!(next);
        used_ports.insert(next);
    }
    Ok(())
}

/// The grace period a delete waits for before the object is gone, if any: pods on a node
/// wait for the node agent to stop their containers; namespaces wait for their content to go.
pub fn grace_period(info: &ResourceInfo, obj: &Value, opts: &DeleteOptions) -> Option<i64> {
    if is(info, "", "namespaces") {
        return Some(0);
    }
    if is(info, "", "pods") {
        let bound = obj
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .map(|n| !n.is_empty())
            .unwrap_or(false);
        let terminal = matches!(
            obj.pointer("/status/phase").and_then(Value::as_str),
            Some("Succeeded" | "Failed")
        );
        if !bound || terminal {
            return None;
        }
        let grace = opts
            .grace_period
            .or_else(|| {
                obj.pointer("/spec/terminationGracePeriodSeconds")
                    .and_then(Value::as_i64)
            })
            .unwrap_or(30);
        return if grace > 0 { Some(grace) } else { None };
    }
    None
}

/// Whether a delete answers with the deleted object (upstream's ReturnDeletedObject) rather
/// than a Success Status.
pub fn returns_deleted_object(info: &ResourceInfo) -> bool {
    info.custom.is_some()
        || is(info, "", "pods")
        || is(info, "", "services")
        || is(info, "", "namespaces")
}

/// Called when a delete is pending (deletionTimestamp set).
pub async fn on_delete_marked(_server: &ApiServer, info: &ResourceInfo, obj: &mut Value) {
    if is(info, "", "namespaces") {
        object::set_path(obj, "status.phase", json!("Terminating"));
    }
}

/// Whether a deleting object may leave the store now (no finalizers hold it).
///
/// As upstream's `ShouldDeleteDuringUpdate`, only an object whose delete was already due (no
/// grace period left on the stored version) goes: a pod still in its grace period keeps
/// taking status updates from its node.
pub fn ready_to_delete(info: &ResourceInfo, old: &Value, obj: &Value) -> bool {
    if !object::is_deleting(old) || !object::finalizers(obj).is_empty() {
        return false;
    }
    let grace = old
        .pointer("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if grace > 0 {
        return false;
    }
    if is(info, "", "namespaces") {
        return obj
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .map(|a| a.is_empty())
            .unwrap_or(true);
    }
    true
}

/// A refused Binding: upstream reports it as a conflict on the `pods/binding` subresource,
/// not on the pod.
fn binding_conflict(name: &str, detail: &str) -> ApiError {
    let mut e = ApiError::new(
        409,
        "Conflict",
        format!("Operation cannot be fulfilled on pods/binding \"{name}\": {detail}"),
    );
    e.details = Some(json!({"name": name, "kind": "pods/binding"}));
    e
}

#[cfg(test)]
mod service_ip_tests {
    use super::*;

    #[test]
    fn addresses_are_checked_against_the_service_range() {
        let base: Ipv4Addr = "127.96.0.0".parse().unwrap();
        assert!(in_cidr("127.96.3.4".parse().unwrap(), base, 16));
        assert!(!in_cidr("203.0.113.10".parse().unwrap(), base, 16));
        assert!(!in_cidr("127.97.0.1".parse().unwrap(), base, 16));
        assert!(in_cidr("10.1.2.3".parse().unwrap(), base, 0));
    }

    #[test]
    fn a_cluster_ip_may_not_change_once_set() {
        let old = json!({"metadata": {"name": "web"}, "spec": {"clusterIP": "127.96.0.5"}});
        let same = old.clone();
        assert!(check_cluster_ip_unchanged(&same, &old).is_ok());
        let moved = json!({"metadata": {"name": "web"}, "spec": {"clusterIP": "127.96.0.6"}});
        let err = check_cluster_ip_unchanged(&moved, &old).unwrap_err();
        assert!(
            format!("{err:?}").contains("may not change once set"),
            "{err:?}"
        );
        let alias = json!({"metadata": {"name": "web"}, "spec": {"type": "ExternalName"}});
        assert!(check_cluster_ip_unchanged(&alias, &old).is_ok());
    }
}
