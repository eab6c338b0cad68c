//! The generic registry: every verb implemented once for every resource, parameterised by the
//! resource's [`Strategy`](crate::resources::Strategy). Objects flow as JSON values.
//!
//! The `ApiServer::*_object` methods are also the in-process API that bootstrap code and
//! built-in controllers use (no HTTP, same semantics).

use std::sync::Arc;

use http::Response;
use parking_lot::Mutex;
use serde_json::{json, Value};

use super::admission::AdmissionCall;
use super::object::{self, meta, meta_mut};
use super::request::ResourceRequest;
use super::{respond_json, ApiError, ApiResult, ApiServer, Body, RequestContext, Requester};
use crate::patch::{self, ManagedFieldsUpdate, Operation, PatchType};
use crate::resources::{ResourceInfo, Strategy};
use crate::security::admission::Operation as AdmissionOperation;
use crate::store::StoreError;

/// How unknown fields in a request body are treated (`fieldValidation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldValidation {
    Strict,
    Warn,
    Ignore,
}

/// Options of a write, from the query string.
pub struct WriteOptions {
    pub dry_run: bool,
    pub field_manager: String,
    pub validation: FieldValidation,
    /// Warnings for the `Warning` response header.
    pub warnings: Mutex<Vec<String>>,
    /// Who is writing, for writes that come from API requests: the admission chain and the
    /// RBAC escalation checks judge them. `None` for the cluster's own bookkeeping.
    pub requester: Option<Requester>,
}

impl WriteOptions {
    /// Options for writes made by the cluster's own components.
    pub fn internal(manager: &str) -> Self {
        WriteOptions {
            dry_run: false,
            field_manager: manager.to_string(),
            validation: FieldValidation::Ignore,
            warnings: Mutex::new(Vec::new()),
            requester: None,
        }
    }

    fn from_request(ctx: &RequestContext, default_manager: &str) -> ApiResult<Self> {
        let validation = match ctx.q("fieldValidation") {
            None | Some("Warn") => FieldValidation::Warn,
            Some("Strict") => FieldValidation::Strict,
            Some("Ignore") => FieldValidation::Ignore,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "fieldValidation parameter unsupported: {other}; supported values: Ignore, Warn, Strict"
                )))
            }
        };
        if let Some(d) = ctx.q("dryRun") {
            if d != "All" {
                return Err(ApiError::bad_request(format!(
                    "Invalid dry run value: unsupported dry run value: {d}; supported values: All"
                )));
            }
        }
        let field_manager = match ctx.q("fieldManager") {
            Some(m) if m.len() > 128 => {
                return Err(ApiError::bad_request(
                    "fieldManager: Too long: must have at most 128 bytes",
                ))
            }
            Some(m) => m.to_string(),
            None => default_manager.to_string(),
        };
        Ok(WriteOptions {
            dry_run: ctx.dry_run(),
            field_manager,
            validation,
            warnings: Mutex::new(Vec::new()),
            requester: Some(ctx.requester()),
        })
    }
}

/// Options of a delete, from the body (`DeleteOptions`) and the query string.
#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    pub propagation: Option<String>,
    pub grace_period: Option<i64>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
    pub dry_run: bool,
    /// Who is deleting, for deletes that come from API requests (admission judges them).
    pub requester: Option<Requester>,
}

impl DeleteOptions {
    pub(crate) fn from_request(ctx: &RequestContext) -> ApiResult<Self> {
        let mut opts = DeleteOptions {
            requester: Some(ctx.requester()),
            ..Default::default()
        };
        if !ctx.body.is_empty() {
            let body = object::decode(ctx.content_type(), &ctx.body)?;
            opts.propagation = body
                .get("propagationPolicy")
                .and_then(Value::as_str)
                .map(str::to_string);
            if body.get("orphanDependents").and_then(Value::as_bool) == Some(true) {
                opts.propagation = Some("Orphan".into());
            }
            opts.grace_period = body.get("gracePeriodSeconds").and_then(Value::as_i64);
            if let Some(p) = body.get("preconditions") {
                opts.precondition_uid = p.get("uid").and_then(Value::as_str).map(str::to_string);
                opts.precondition_rv = p
                    .get("resourceVersion")
                    .and_then(Value::as_str)
                    .map(str::to_string);
            }
            opts.dry_run = body
                .get("dryRun")
                .and_then(Value::as_array)
                .map(|a| a.iter().any(|v| v == "All"))
                .unwrap_or(false);
        }
        if let Some(p) = ctx.q("propagationPolicy") {
            opts.propagation = Some(p.to_string());
        }
        if let Some(g) = ctx.q("gracePeriodSeconds") {
            opts.grace_period = Some(g.parse().map_err(|_| {
                ApiError::bad_request(format!("invalid gracePeriodSeconds {g:?}: not an integer"))
            })?);
        }
        if ctx.dry_run() {
            opts.dry_run = true;
        }
        if let Some(p) = &opts.propagation {
            if !matches!(p.as_str(), "Orphan" | "Background" | "Foreground") {
                return Err(ApiError::new(
                    422,
                    "Invalid",
                    format!("DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"{p}\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""),
                ));
            }
        }
        Ok(opts)
    }
}

fn default_manager(ctx: &RequestContext) -> String {
    // Upstream derives the manager from the user agent's program name.
    ctx.headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .and_then(|ua| ua.split('/').next())
        .filter(|s| !s.is_empty())
        .unwrap_or("unknown")
        .chars()
        .take(128)
        .collect()
}

fn with_warnings(mut resp: Response<Body>, opts: &WriteOptions) -> Response<Body> {
    for w in opts.warnings.lock().iter() {
        // RFC 7234 warn-text, quoted and escaped as upstream's strconv.Quote does.
        let text = format!("299 - {}", crate::security::go_quote(w));
        if let Ok(v) = http::HeaderValue::from_str(&text) {
            resp.headers_mut().append("Warning", v);
        }
    }
    resp
}

/// Entry point for resource requests.
pub async fn handle(
    server: &Arc<ApiServer>,
    ctx: &RequestContext,
    r: &ResourceRequest,
) -> ApiResult<Response<Body>> {
    let info = server
        .catalog
        .get(&r.group, &r.version, &r.resource)
        .ok_or_else(ApiError::path_not_found)?;
    if !info.namespaced && r.namespace.is_some() {
        return Err(ApiError::path_not_found());
    }
    let ns = if info.namespaced {
        r.namespace.as_deref()
    } else {
        None
    };
    if info.namespaced && r.name.is_some() && ns.is_none() {
        return Err(ApiError::path_not_found());
    }
    if let Some(sub) = &r.subresource {
        return super::hooks::subresource(server, ctx, &info, ns, r, sub).await;
    }
    if super::reviews::is_review(&info) {
        return match (r.verb.as_str(), r.name.as_deref()) {
            ("create", None) => super::reviews::handle(server, ctx, &info, ns).await,
            (verb, _) => Err(ApiError::method_not_allowed(verb)),
        };
    }
    let verb_allowed = info.verbs.iter().any(|v| v == &r.verb);
    if !verb_allowed {
        return Err(ApiError::method_not_allowed(&r.verb));
    }
    if super::metrics_api::is_metrics(&info) {
        return super::metrics_api::handle(server, ctx, &info, ns, r).await;
    }
    match (r.verb.as_str(), r.name.as_deref()) {
        ("get", Some(name)) => {
            let obj = server.get_object(&info, ns, name).await?;
            super::table::respond_object(server, ctx, &info, obj, 200)
        }
        ("list", None) => super::watch_stream::list(server, ctx, &info, ns, None).await,
        ("watch", name) => super::watch_stream::watch(server, ctx, &info, ns, name).await,
        ("create", None) => {
            let opts = WriteOptions::from_request(ctx, &default_manager(ctx))?;
            let obj = object::decode(ctx.content_type(), &ctx.body)?;
            let created = server.create_object(&info, ns, obj, &opts).await?;
            let resp = super::table::respond_object(server, ctx, &info, created, 201)?;
            Ok(with_warnings(resp, &opts))
        }
        ("update", Some(name)) => {
            let opts = WriteOptions::from_request(ctx, &default_manager(ctx))?;
            let obj = object::decode(ctx.content_type(), &ctx.body)?;
            let (updated, created) = server
                .update_object(&info, ns, name, None, obj, &opts)
                .await?;
            let resp = super::table::respond_object(
                server,
                ctx,
                &info,
                updated,
                if created { 201 } else { 200 },
            )?;
            Ok(with_warnings(resp, &opts))
        }
        ("patch", Some(name)) => {
            let opts = WriteOptions::from_request(ctx, &default_manager(ctx))?;
            let force = ctx.flag("force") == Some(true);
            let (patched, created) = server
                .patch_object(&info, ns, name, None, ctx, &opts, force)
                .await?;
            let resp = super::table::respond_object(
                server,
                ctx,
                &info,
                patched,
                if created { 201 } else { 200 },
            )?;
            Ok(with_warnings(resp, &opts))
        }
        ("delete", Some(name)) => {
            let opts = DeleteOptions::from_request(ctx)?;
            let (code, body) = server.delete_object(&info, ns, name, &opts).await?;
            Ok(respond_json(code, &body))
        }
        ("deletecollection", None) => {
            let opts = DeleteOptions::from_request(ctx)?;
            super::watch_stream::delete_collection(server, ctx, &info, ns, &opts).await
        }
        (verb, _) => Err(ApiError::method_not_allowed(verb)),
    }
}

/// The kind the request body must have for `info` (its own kind; subresources differ).
fn check_type_meta(obj: &mut Value, kind: &str, api_version: &str) -> ApiResult<()> {
    let o = obj.as_object_mut().expect("decode returns objects");
    if let Some(k) = o.get("kind").and_then(Value::as_str).filter(|k| *k != kind) {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({k}) does not match the expected kind ({kind})"
        )));
    }
    if let Some(v) = o
        .get("apiVersion")
        .and_then(Value::as_str)
        .filter(|v| *v != api_version)
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({v}) does not match the expected API version ({api_version})"
        )));
    }
    o.insert("kind".into(), json!(kind));
    o.insert("apiVersion".into(), json!(api_version));
    Ok(())
}

impl ApiServer {
    pub fn strategy(&self, info: &ResourceInfo) -> Arc<dyn Strategy> {
        self.catalog.strategy(info)
    }

    pub fn patch_meta(&self, info: &ResourceInfo) -> patch::PatchMeta {
        match &info.custom {
            Some(c) => match &c.schema {
                Some(s) => patch::PatchMeta::from_schema(s),
                None => patch::PatchMeta::unknown(),
            },
            None => patch::PatchMeta::for_builtin(&info.group, &info.version, &info.kind)
                .unwrap_or_else(patch::PatchMeta::unknown),
        }
    }

    /// A stored object as `info`'s version serves it.
    pub fn decode(&self, info: &ResourceInfo, kv: &crate::store::KeyValue) -> ApiResult<Value> {
        let obj = object::from_stored(kv)?;
        Ok(self.strategy(info).to_served_version(obj))
    }

    /// An object as it is stored (some versions share storage with another version).
    pub fn encode(&self, info: &ResourceInfo, obj: &Value) -> bytes::Bytes {
        object::to_stored(&self.strategy(info).to_storage_version(obj.clone()))
    }

    /// [`ApiServer::encode`] for an object the caller is done with. When the resource is
    /// stored as served, the object comes back too (without its resourceVersion), so that
    /// [`ApiServer::written`] can serve it without parsing the stored bytes again: the write
    /// path of every pod create and binding would otherwise decode what it just encoded.
    pub fn encode_owned(&self, info: &ResourceInfo, obj: Value) -> (bytes::Bytes, Option<Value>) {
        let strategy = self.strategy(info);
        if !strategy.stores_served_version() {
            return (object::to_stored(&strategy.to_storage_version(obj)), None);
        }
        let mut obj = obj;
        // The same removal `to_stored` makes, so the kept object has the key order that
        // decoding the stored bytes would give.
        meta_mut(&mut obj).remove("resourceVersion");
        let bytes = serde_json::to_vec(&obj).expect("JSON values always serialise");
        (bytes::Bytes::from(bytes), Some(obj))
    }

    /// The object just written as `kv`: the kept one from [`ApiServer::encode_owned`] with its
    /// new resourceVersion (what [`ApiServer::decode`] of `kv` would return), else decoded.
    pub fn written(
        &self,
        info: &ResourceInfo,
        kept: Option<Value>,
        kv: &crate::store::KeyValue,
    ) -> ApiResult<Value> {
        match kept {
            Some(mut obj) => {
                meta_mut(&mut obj)
                    .insert("resourceVersion".into(), json!(kv.mod_revision.to_string()));
                Ok(obj)
            }
            None => self.decode(info, kv),
        }
    }

    pub async fn get_object(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
    ) -> ApiResult<Value> {
        let key = info.key(ns, name);
        match self.store.get(&key).await {
            Ok(Some(kv)) => self.decode(info, &kv),
            Ok(None) => Err(ApiError::not_found(info, name)),
            Err(e) => Err(ApiError::from_store(e, info, name)),
        }
    }

    /// Validates unknown fields per `fieldValidation`: Strict rejects, Warn warns, Ignore drops.
    fn check_fields(
        &self,
        info: &ResourceInfo,
        obj: &mut Value,
        opts: &WriteOptions,
    ) -> ApiResult<()> {
        let unknown = match &info.custom {
            Some(c) => match &c.schema {
                Some(schema) => crate::resources::crd::prune(schema, obj),
                None => vec![],
            },
            None => {
                super::typed::check(info, &info.kind, obj)
                    .map_err(ApiError::bad_request)?
                    .unknown
            }
        };
        if unknown.is_empty() {
            return Ok(());
        }
        match opts.validation {
            FieldValidation::Strict => {
                let list: Vec<String> = unknown
                    .iter()
                    .map(|p| format!("unknown field \"{}\"", p.trim_start_matches('.')))
                    .collect();
                // Upstream's decoder error, e.g. `Deployment in version "v1" cannot be
                // handled as a Deployment: strict decoding error: unknown field "spec.x"`.
                Err(ApiError::bad_request(format!(
                    "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {}",
                    list.join(", "),
                    kind = info.kind,
                    version = info.version,
                )))
            }
            FieldValidation::Warn => {
                let mut w = opts.warnings.lock();
                for p in unknown {
                    w.push(format!("unknown field \"{}\"", p.trim_start_matches('.')));
                }
                Ok(())
            }
            FieldValidation::Ignore => Ok(()),
        }
    }

    fn validate(
        &self,
        info: &ResourceInfo,
        strategy: &dyn Strategy,
        obj: &Value,
        old: Option<&Value>,
    ) -> ApiResult<()> {
        reject_invalid(info, obj, strategy.validate(obj, old))
    }

    /// Refuses a create in a missing or terminating namespace; returns the namespace read,
    /// which admission then need not read and decode again.
    async fn check_namespace_for_create(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
    ) -> ApiResult<Option<Value>> {
        let Some(ns) = ns.filter(|_| info.namespaced) else {
            return Ok(None);
        };
        let ns_info = self
            .catalog
            .get("", "v1", "namespaces")
            .ok_or_else(|| ApiError::internal("namespaces are not registered"))?;
        match self.store.get(&ns_info.key(None, ns)).await {
            Ok(Some(kv)) => {
                let nso = self.decode(&ns_info, &kv)?;
                if object::is_deleting(&nso) {
                    return Err(ApiError::forbidden(format!(
                        "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                        info.qualified_resource(),
                    )));
                }
                Ok(Some(nso))
            }
            Ok(None) => Err(ApiError::new(
                404,
                "NotFound",
                format!("namespaces \"{ns}\" not found"),
            )),
            Err(e) => Err(ApiError::from_store(e, &ns_info, ns)),
        }
    }

    /// Creates an object (the POST verb).
    pub async fn create_object(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        mut obj: Value,
        opts: &WriteOptions,
    ) -> ApiResult<Value> {
        check_type_meta(&mut obj, &info.kind, &info.api_version())?;
        {
            let m = meta_mut(&mut obj);
            match (m.get("namespace").and_then(Value::as_str), ns) {
                (Some(on), Some(rn)) if !on.is_empty() && on != rn && info.namespaced => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ))
                }
                _ => {}
            }
            if info.namespaced {
                if let Some(ns) = ns {
                    m.insert("namespace".into(), json!(ns));
                }
            } else {
                m.remove("namespace");
            }
            let has_name = m
                .get("name")
                .and_then(Value::as_str)
                .map(|s| !s.is_empty())
                .unwrap_or(false);
            if !has_name {
                if let Some(g) = m
                    .get("generateName")
                    .and_then(Value::as_str)
                    .filter(|g| !g.is_empty())
                {
                    let base: String = g.chars().take(58).collect();
                    m.insert(
                        "name".into(),
                        json!(format!("{base}{}", object::random_suffix(5))),
                    );
                }
            }
            m.remove("resourceVersion");
            m.remove("deletionTimestamp");
            m.remove("deletionGracePeriodSeconds");
            m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
            m.insert("creationTimestamp".into(), json!(object::now_rfc3339()));
            m.remove("managedFields");
        }
        if object::name(&obj).is_empty() {
            return Err(ApiError::invalid(
                info,
                "",
                &[crate::resources::FieldError {
                    reason: "FieldValueRequired".into(),
                    field: "metadata.name".into(),
                    message: "metadata.name: Required value: name or generateName is required"
                        .into(),
                }],
            ));
        }
        self.check_fields(info, &mut obj, opts)?;
        let namespace = self
            .check_namespace_for_create(info, ns, object::name(&obj))
            .await?;
        let strategy = self.strategy(info);
        strategy.default(&mut obj);
        let name = object::name(&obj).to_string();
        let call = opts.requester.as_ref().map(|r| {
            AdmissionCall::new(
                info,
                ns,
                &name,
                None,
                None,
                AdmissionOperation::Create,
                opts.dry_run,
                r,
                &opts.warnings,
            )
            .with_namespace(namespace)
        });
        if let Some(call) = &call {
            self.admit_mutating(call, Some(&mut obj), None).await?;
            // Objects patched by webhooks are decoded with defaulting again, as upstream.
            strategy.default(&mut obj);
            self.check_rbac_escalation(info, ns, "", &obj, None, opts)?;
        }
        strategy.prepare_create(&mut obj);
        super::hooks::before_create(self, info, &mut obj).await?;
        self.validate(info, strategy.as_ref(), &obj, None)?;
        if let Some(call) = &call {
            self.admit_validating(call, Some(&obj), None).await?;
        }
        let pm = self.patch_meta(info);
        patch::update_managed_fields(
            &pm,
            None,
            &mut obj,
            &ManagedFieldsUpdate {
                manager: &opts.field_manager,
                operation: Operation::Update,
                subresource: None,
                time: chrono::Utc::now(),
                api_version: &info.api_version(),
            },
        );
        let name = object::name(&obj).to_string();
        if opts.dry_run {
            if self
                .store
                .get(&info.key(ns, &name))
                .await
                .ok()
                .flatten()
                .is_some()
            {
                return Err(ApiError::already_exists(info, &name));
            }
            return Ok(obj);
        }
        let (bytes, kept) = self.encode_owned(info, obj);
        let kv = self
            .store
            .create(&info.key(ns, &name), bytes)
            .await
            .map_err(|e| ApiError::from_store(e, info, &name))?;
        let created = self.written(info, kept, &kv)?;
        super::hooks::after_write(self, info, None, Some(&created)).await;
        Ok(created)
    }

    /// Replaces an object (PUT) or its status (`subresource = Some("status")`).
    /// Returns the stored object and whether it was created.
    pub async fn update_object(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        subresource: Option<&str>,
        mut obj: Value,
        opts: &WriteOptions,
    ) -> ApiResult<(Value, bool)> {
        check_type_meta(&mut obj, &info.kind, &info.api_version())?;
        if object::name(&obj) != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                object::name(&obj)
            )));
        }
        if info.namespaced {
            let m = meta_mut(&mut obj);
            match m.get("namespace").and_then(Value::as_str) {
                Some(on) if !on.is_empty() && Some(on) != ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ))
                }
                _ => {
                    if let Some(ns) = ns {
                        m.insert("namespace".into(), json!(ns));
                    }
                }
            }
        }
        self.check_fields(info, &mut obj, opts)?;
        let requested_rv = object::meta_str(&obj, "resourceVersion").map(str::to_string);
        let sent = obj;
        self.guaranteed_update(
            info,
            ns,
            name,
            subresource,
            opts,
            Operation::Update,
            move |current| {
                let current = current.ok_or_else(|| ApiError::not_found(info, name))?;
                if let Some(rv) = &requested_rv {
                    if object::meta_str(&current, "resourceVersion") != Some(rv.as_str()) {
                        return Err(ApiError::stale(info, name));
                    }
                }
                Ok(sent.clone())
            },
        )
        .await
        .map(|v| (v, false))
    }

    /// Applies a patch (PATCH) to an object or its status.
    #[allow(clippy::too_many_arguments)]
    pub async fn patch_object(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        subresource: Option<&str>,
        ctx: &RequestContext,
        opts: &WriteOptions,
        force: bool,
    ) -> ApiResult<(Value, bool)> {
        let ct = ctx
            .content_type()
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        let patch_type = PatchType::from_content_type(&ct).ok_or_else(|| {
            ApiError::new(
                415,
                "UnsupportedMediaType",
                format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {ct})"),
            )
        })?;
        if patch_type == PatchType::StrategicMerge && info.custom.is_some() {
            return Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
            ));
        }
        let pm = self.patch_meta(info);
        let body = ctx.body.clone();
        if patch_type == PatchType::Apply {
            if ctx.q("fieldManager").is_none() {
                return Err(ApiError::bad_request(
                    "PATCH, application/apply-patch+yaml requires fieldManager to be set",
                ));
            }
            let mut applied = object::decode("application/yaml", &body)?;
            check_type_meta(&mut applied, &info.kind, &info.api_version())?;
            self.check_fields(info, &mut applied, opts)?;
            let exists = self
                .store
                .get(&info.key(ns, name))
                .await
                .ok()
                .flatten()
                .is_some();
            if !exists && subresource.is_none() {
                // Apply creates the object when it is missing.
                let mut live = json!({"apiVersion": info.api_version(), "kind": info.kind, "metadata": {"name": name}});
                if let Some(ns) = ns.filter(|_| info.namespaced) {
                    meta_mut(&mut live).insert("namespace".into(), json!(ns));
                }
                let upd = ManagedFieldsUpdate {
                    manager: &opts.field_manager,
                    operation: Operation::Apply,
                    subresource: None,
                    time: chrono::Utc::now(),
                    api_version: &info.api_version(),
                };
                let merged = patch::server_side_apply(&pm, None, &applied, &upd, force)
                    .map_err(|e| patch_error(info, name, e))?;
                let mut merged = merged;
                let mf = meta(&merged).get("managedFields").cloned();
                let created = self
                    .create_object_keeping_managed(info, ns, &mut merged, mf, opts)
                    .await?;
                return Ok((created, true));
            }
            let applied2 = applied.clone();
            let manager = opts.field_manager.clone();
            let api_version = info.api_version();
            let v = self
                .guaranteed_update(
                    info,
                    ns,
                    name,
                    subresource,
                    opts,
                    Operation::Apply,
                    move |current| {
                        let current = current.ok_or_else(|| ApiError::not_found(info, name))?;
                        let upd = ManagedFieldsUpdate {
                            manager: &manager,
                            operation: Operation::Apply,
                            subresource,
                            time: chrono::Utc::now(),
                            api_version: &api_version,
                        };
                        patch::server_side_apply(&pm, Some(&current), &applied2, &upd, force)
                            .map_err(|e| patch_error(info, name, e))
                    },
                )
                .await?;
            return Ok((v, false));
        }
        let pm2 = self.patch_meta(info);
        let v = self
            .guaranteed_update(
                info,
                ns,
                name,
                subresource,
                opts,
                Operation::Update,
                move |current| {
                    let current = current.ok_or_else(|| ApiError::not_found(info, name))?;
                    let mut patched = patch::apply_patch(&pm2, patch_type, &current, &body)
                        .map_err(|e| patch_error(info, name, e))?;
                    // A resourceVersion in the patch is a precondition.
                    if let Some(rv) = object::meta_str(&patched, "resourceVersion") {
                        if object::meta_str(&current, "resourceVersion") != Some(rv) {
                            return Err(ApiError::stale(info, name));
                        }
                    }
                    if object::name(&patched) != name {
                        return Err(ApiError::bad_request(format!(
                        "the name of the object ({}) does not match the name on the URL ({name})",
                        object::name(&patched)
                    )));
                    }
                    if !patched.is_object() {
                        return Err(ApiError::bad_request("the patch result is not an object"));
                    }
                    meta_mut(&mut patched);
                    Ok(patched)
                },
            )
            .await?;
        Ok((v, false))
    }

    async fn create_object_keeping_managed(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        obj: &mut Value,
        managed: Option<Value>,
        opts: &WriteOptions,
    ) -> ApiResult<Value> {
        // Create with a throwaway manager record, then restore the apply entry computed by SSA.
        let mut created = self.create_object(info, ns, obj.clone(), opts).await?;
        if let Some(mf) = managed {
            if opts.dry_run {
                meta_mut(&mut created).insert("managedFields".into(), mf);
                return Ok(created);
            }
            let name = object::name(&created).to_string();
            let mut with_mf = created.clone();
            meta_mut(&mut with_mf).insert("managedFields".into(), mf);
            let rev: i64 = object::meta_str(&created, "resourceVersion")
                .and_then(|r| r.parse().ok())
                .unwrap_or(0);
            if let Ok(kv) = self
                .store
                .update(&info.key(ns, &name), self.encode(info, &with_mf), rev)
                .await
            {
                return self.decode(info, &kv);
            }
        }
        Ok(created)
    }

    /// Read-modify-write with compare-and-swap, retried on conflicts with concurrent writers
    /// (upstream's GuaranteedUpdate). `mutate` gets the current object and returns the desired
    /// one; strategy hooks, validation, managed fields and finalizer-driven deletion apply.
    #[allow(clippy::too_many_arguments)]
    pub async fn guaranteed_update<F>(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        subresource: Option<&str>,
        opts: &WriteOptions,
        operation: Operation,
        mut mutate: F,
    ) -> ApiResult<Value>
    where
        F: FnMut(Option<Value>) -> ApiResult<Value>,
    {
        let key = info.key(ns, name);
        let strategy = self.strategy(info);
        let pm = self.patch_meta(info);
        let kind = (subresource == Some("scale")).then_some("Scale");
        let call = opts.requester.as_ref().map(|r| {
            AdmissionCall::new(
                info,
                ns,
                name,
                subresource,
                kind,
                AdmissionOperation::Update,
                opts.dry_run,
                r,
                &opts.warnings,
            )
        });
        for _attempt in 0..16 {
            let current_kv = self
                .store
                .get(&key)
                .await
                .map_err(|e| ApiError::from_store(e, info, name))?;
            let current = match &current_kv {
                Some(kv) => Some(self.decode(info, kv)?),
                None => None,
            };
            let old = current.clone();
            let mut new = mutate(current)?;
            let Some(old) = old else {
                return Err(ApiError::not_found(info, name));
            };
            // Fields clients may not change.
            {
                let om = meta(&old);
                let m = meta_mut(&mut new);
                for f in [
                    "uid",
                    "creationTimestamp",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                    "namespace",
                    "name",
                    "selfLink",
                ] {
                    match om.get(f) {
                        Some(v) => {
                            m.insert(f.into(), v.clone());
                        }
                        None => {
                            m.remove(f);
                        }
                    }
                }
                if om.get("generation").is_some() {
                    m.insert("generation".into(), om["generation"].clone());
                }
            }
            strategy.default(&mut new);
            if let Some(call) = &call {
                self.admit_mutating(call, Some(&mut new), Some(&old))
                    .await?;
                strategy.default(&mut new);
                self.check_rbac_escalation(info, ns, name, &new, Some(&old), opts)?;
            }
            match subresource {
                // A binding only assigns the node; upstream validates the Binding, not a pod
                // update (spec.nodeName is otherwise immutable).
                Some("binding") => {}
                Some(sub) => strategy.prepare_subresource_update(sub, &mut new, &old),
                None => strategy.prepare_update(&mut new, &old),
            }
            super::hooks::before_update(self, info, &mut new, &old).await?;
            if subresource != Some("binding") {
                let errors = match subresource {
                    Some(sub) => strategy.validate_subresource_update(sub, &new, &old),
                    None => strategy.validate(&new, Some(&old)),
                };
                reject_invalid(info, &new, errors)?;
            }
            if let Some(call) = &call {
                self.admit_validating(call, Some(&new), Some(&old)).await?;
            }
            if operation == Operation::Update {
                patch::update_managed_fields(
                    &pm,
                    Some(&old),
                    &mut new,
                    &ManagedFieldsUpdate {
                        manager: &opts.field_manager,
                        operation: Operation::Update,
                        subresource,
                        time: chrono::Utc::now(),
                        api_version: &info.api_version(),
                    },
                );
            }
            let rev = current_kv.as_ref().map(|kv| kv.mod_revision).unwrap_or(0);
            // Finalizers emptied on a deleting object: the delete completes now.
            if super::hooks::ready_to_delete(info, &old, &new) {
                if opts.dry_run {
                    return Ok(new);
                }
                match self.store.delete(&key, Some(rev)).await {
                    Ok(_) => {
                        super::hooks::after_write(self, info, Some(&old), None).await;
                        return Ok(new);
                    }
                    Err(StoreError::Conflict { .. }) => continue,
                    Err(e) => return Err(ApiError::from_store(e, info, name)),
                }
            }
            if same_write(&old, &new) {
                // A no-op write is not persisted: the resourceVersion stays, no watch event.
                return Ok(old);
            }
            if opts.dry_run {
                return Ok(new);
            }
            let (bytes, kept) = self.encode_owned(info, new);
            match self.store.update(&key, bytes, rev).await {
                Ok(kv) => {
                    let stored = self.written(info, kept, &kv)?;
                    super::hooks::after_write(self, info, Some(&old), Some(&stored)).await;
                    return Ok(stored);
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(StoreError::NotFound(_)) => return Err(ApiError::not_found(info, name)),
                Err(e) => return Err(ApiError::from_store(e, info, name)),
            }
        }
        Err(ApiError::stale(info, name))
    }

    /// Deletes an object (DELETE). Returns the HTTP code (200 when gone, 202 when deletion is
    /// pending on finalizers or a grace period) and the body.
    pub async fn delete_object(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> ApiResult<(u16, Value)> {
        let key = info.key(ns, name);
        let warnings = Mutex::new(Vec::new());
        let mut call = opts.requester.as_ref().map(|r| {
            AdmissionCall::new(
                info,
                ns,
                name,
                None,
                None,
                AdmissionOperation::Delete,
                opts.dry_run,
                r,
                &warnings,
            )
        });
        for _attempt in 0..16 {
            let kv = self
                .store
                .get(&key)
                .await
                .map_err(|e| ApiError::from_store(e, info, name))?
                .ok_or_else(|| ApiError::not_found(info, name))?;
            let current = self.decode(info, &kv)?;
            // Admission judges a delete once, against the object as first found.
            if let Some(call) = call.take() {
                self.admit_mutating(&call, None, Some(&current)).await?;
                self.admit_validating(&call, None, Some(&current)).await?;
            }
            if let Some(uid) = &opts.precondition_uid {
                let actual = object::meta_str(&current, "uid").unwrap_or("");
                if actual != uid {
                    return Err(ApiError::conflict(
                        info,
                        name,
                        &format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"),
                    ));
                }
            }
            if let Some(rv) = &opts.precondition_rv {
                let actual = object::meta_str(&current, "resourceVersion").unwrap_or("");
                if actual != rv {
                    return Err(ApiError::conflict(
                        info,
                        name,
                        &format!("Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {actual}"),
                    ));
                }
            }
            let mut finalizers = object::finalizers(&current);
            match opts.propagation.as_deref() {
                Some("Orphan") if !finalizers.iter().any(|f| f == "orphan") => {
                    finalizers.push("orphan".into())
                }
                Some("Foreground") if !finalizers.iter().any(|f| f == "foregroundDeletion") => {
                    finalizers.push("foregroundDeletion".into())
                }
                _ => {}
            }
            let graceful = super::hooks::grace_period(info, &current, opts);
            if finalizers.is_empty() && graceful.is_none() {
                if opts.dry_run {
                    return Ok((200, current));
                }
                match self.store.delete(&key, Some(kv.mod_revision)).await {
                    Ok(deleted) => {
                        let mut obj = self.decode(info, &deleted)?;
                        meta_mut(&mut obj).insert(
                            "resourceVersion".into(),
                            json!(deleted.mod_revision.to_string()),
                        );
                        super::hooks::after_write(self, info, Some(&current), None).await;
                        if super::hooks::returns_deleted_object(info) {
                            return Ok((200, obj));
                        }
                        return Ok((
                            200,
                            super::status::success_status(
                                info,
                                name,
                                object::meta_str(&current, "uid").unwrap_or(""),
                            ),
                        ));
                    }
                    Err(StoreError::Conflict { .. }) => continue,
                    Err(StoreError::NotFound(_)) => return Err(ApiError::not_found(info, name)),
                    Err(e) => return Err(ApiError::from_store(e, info, name)),
                }
            }
            // Deletion is pending: mark the object and let finalizers / the node finish it.
            let mut marked = current.clone();
            let already = object::is_deleting(&current);
            object::set_finalizers(&mut marked, &finalizers);
            {
                let m = meta_mut(&mut marked);
                let grace = graceful.unwrap_or(0);
                // A later delete may only shorten a pending grace period (upstream's
                // BeforeDelete): the deadline moves back by the difference.
                let at = match (already, object::deletion_grace(&current)) {
                    (false, _) => Some(chrono::Utc::now() + chrono::Duration::seconds(grace)),
                    (true, Some((ts, was))) if graceful.is_some() && grace < was => {
                        Some(ts - chrono::Duration::seconds(was - grace))
                    }
                    _ => None,
                };
                if let Some(at) = at {
                    m.insert(
                        "deletionTimestamp".into(),
                        json!(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                    );
                    m.insert("deletionGracePeriodSeconds".into(), json!(grace));
                }
            }
            super::hooks::on_delete_marked(self, info, &mut marked).await;
            if marked == current {
                return Ok((202, current));
            }
            if opts.dry_run {
                return Ok((202, marked));
            }
            match self
                .store
                .update(&key, self.encode(info, &marked), kv.mod_revision)
                .await
            {
                Ok(kv) => {
                    let stored = self.decode(info, &kv)?;
                    super::hooks::after_write(self, info, Some(&current), Some(&stored)).await;
                    return Ok((202, stored));
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(ApiError::from_store(e, info, name)),
            }
        }
        Err(ApiError::stale(info, name))
    }
}

/// Whether writing `new` over `old` changes nothing that is stored: they are equal apart from
/// the resourceVersion and the managedFields timestamps (which a no-op write must not bump).
/// Compares in place; a binding or status update would otherwise copy both objects twice.
fn same_write(old: &Value, new: &Value) -> bool {
    let (Some(a), Some(b)) = (old.as_object(), new.as_object()) else {
        return old == new;
    };
    let empty = serde_json::Map::new();
    // A missing or non-object metadata compares as an empty one, as `meta_mut` would make it.
    fn meta_of(m: &serde_json::Map<String, Value>) -> Option<&serde_json::Map<String, Value>> {
        m.get("metadata").and_then(Value::as_object)
    }
    let (meta_a, meta_b) = (meta_of(a).unwrap_or(&empty), meta_of(b).unwrap_or(&empty));
    maps_equal_except(a, b, "metadata", |_, x, y| x == y)
        && maps_equal_except(meta_a, meta_b, "resourceVersion", |k, x, y| {
            if k == "managedFields" {
                same_managed_fields(x, y)
            } else {
                x == y
            }
        })
}

/// `a == b` for two maps, leaving out the entry `skip` and comparing values with `eq`.
fn maps_equal_except(
    a: &serde_json::Map<String, Value>,
    b: &serde_json::Map<String, Value>,
    skip: &str,
    eq: impl Fn(&str, &Value, &Value) -> bool,
) -> bool {
    let len = |m: &serde_json::Map<String, Value>| m.len() - usize::from(m.contains_key(skip));
    len(a) == len(b)
        && a.iter()
            .filter(|(k, _)| k.as_str() != skip)
            .all(|(k, x)| b.get(k).is_some_and(|y| eq(k, x, y)))
}

/// managedFields lists equal apart from their entries' `time`.
fn same_managed_fields(a: &Value, b: &Value) -> bool {
    match (a.as_array(), b.as_array()) {
        (Some(a), Some(b)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|(x, y)| match (x.as_object(), y.as_object()) {
                        (Some(x), Some(y)) => maps_equal_except(x, y, "time", |_, p, q| p == q),
                        _ => x == y,
                    })
        }
        _ => a == b,
    }
}

fn patch_error(info: &ResourceInfo, name: &str, e: patch::PatchError) -> ApiError {
    match e {
        patch::PatchError::BadPatch(m) => ApiError::bad_request(m),
        patch::PatchError::Unsupported(m) => ApiError::new(415, "UnsupportedMediaType", m),
        patch::PatchError::Invalid(m) => ApiError::new(422, "Invalid", m),
        patch::PatchError::Conflict(c) => {
            let mut err = ApiError::new(409, "Conflict", c.message());
            let causes: Vec<Value> = c
                .conflicts
                .iter()
                .map(|x| json!({"reason": "FieldManagerConflict", "message": format!("conflict with \"{}\"", x.manager), "field": x.field}))
                .collect();
            let mut details = json!({"name": name, "kind": info.plural, "causes": causes});
            if !info.group.is_empty() {
                details["group"] = json!(info.group);
            }
            err.details = Some(details);
            err
        }
    }
}

/// 422 Invalid naming the object when validation found anything.
fn reject_invalid(
    info: &ResourceInfo,
    obj: &Value,
    errors: Vec<crate::resources::FieldError>,
) -> ApiResult<()> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(info, object::name(obj), &errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_differing_only_in_bookkeeping_is_a_no_op() {
        let old = json!({"metadata": {"name": "p", "resourceVersion": "7", "managedFields": [
            {"manager": "m", "operation": "Update", "time": "2024-01-01T00:00:00Z", "fieldsV1": {"f:spec": {}}}
        ]}, "spec": {"nodeName": ""}});
        let mut new = old.clone();
        new["metadata"]["resourceVersion"] = json!("8");
        new["metadata"]["managedFields"][0]["time"] = json!("2024-02-02T00:00:00Z");
        assert!(same_write(&old, &new));
        let mut no_rv = new.clone();
        meta_mut(&mut no_rv).remove("resourceVersion");
        assert!(
            same_write(&old, &no_rv),
            "a missing resourceVersion is no change"
        );
        for (path, value) in [
            ("/spec/nodeName", json!("n1")),
            ("/metadata/managedFields/0/manager", json!("other")),
            ("/metadata/name", json!("q")),
        ] {
            let mut changed = new.clone();
            *changed.pointer_mut(path).unwrap() = value;
            assert!(!same_write(&old, &changed), "{path} changed");
        }
        let mut extra = new.clone();
        extra["status"] = json!({});
        assert!(!same_write(&old, &extra), "a new top-level field");
        assert!(same_write(
            &json!({"spec": {}}),
            &json!({"metadata": {}, "spec": {}})
        ));
    }
}
