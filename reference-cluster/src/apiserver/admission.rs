//! The admission chain of API writes, in upstream's plugin order:
//!
//! mutating: NamespaceLifecycle → LimitRanger → ServiceAccount → NodeRestriction → Priority →
//! DefaultTolerationSeconds → MutatingAdmissionWebhook; then the registry's own defaulting and
//! validation; then validating: LimitRanger → PodSecurity → ValidatingAdmissionWebhook →
//! ResourceQuota (last, so that nothing refused later is charged).
//!
//! The plugins themselves live in [`crate::security::admission`] and
//! [`crate::security::webhook`] as pure functions; this module looks up the cluster state they
//! consult, passes warnings to the `Warning` header and audit annotations to the audit log,
//! and writes back the quota usage that ResourceQuota charges. Admission runs for writes that
//! come from API requests (they carry a [`Requester`]); the cluster's own bookkeeping writes
//! do not go through it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::OnceCell;

use super::watch_stream::Filter;
use super::{object, ApiError, ApiResult, ApiServer, UserInfo};
use crate::resources::ResourceInfo;
use crate::security::admission::{
    self as plugins, default_toleration_seconds, limit_ranger, namespace_lifecycle,
    node_restriction, pod_security, priority, resource_quota, service_account, Attributes,
    Operation, Outcome, Rejection,
};
use crate::security::webhook::{self, Webhook};

pub const NAMESPACE_LIFECYCLE: &str = "NamespaceLifecycle";
pub const LIMIT_RANGER: &str = "LimitRanger";
pub const SERVICE_ACCOUNT: &str = "ServiceAccount";
pub const NODE_RESTRICTION: &str = "NodeRestriction";
pub const POD_SECURITY: &str = "PodSecurity";
pub const PRIORITY: &str = "Priority";
pub const DEFAULT_TOLERATION_SECONDS: &str = "DefaultTolerationSeconds";
pub const MUTATING_WEBHOOK: &str = "MutatingAdmissionWebhook";
pub const VALIDATING_WEBHOOK: &str = "ValidatingAdmissionWebhook";
pub const VALIDATING_ADMISSION_POLICY: &str = "ValidatingAdmissionPolicy";
pub const RESOURCE_QUOTA: &str = "ResourceQuota";

/// Every plugin this server implements, in upstream's order.
pub const PLUGINS: &[&str] = &[
    NAMESPACE_LIFECYCLE,
    LIMIT_RANGER,
    SERVICE_ACCOUNT,
    NODE_RESTRICTION,
    POD_SECURITY,
    PRIORITY,
    DEFAULT_TOLERATION_SECONDS,
    MUTATING_WEBHOOK,
    VALIDATING_ADMISSION_POLICY,
    VALIDATING_WEBHOOK,
    RESOURCE_QUOTA,
];

const _: () = assert!(PLUGINS.len() <= u32::BITS as usize, "one bit per plugin");

/// Upstream's default-enabled plugins among [`PLUGINS`] (NodeRestriction is not one of them;
/// the cluster turns it on as kubeadm does).
pub const DEFAULT_PLUGINS: &[&str] = &[
    NAMESPACE_LIFECYCLE,
    LIMIT_RANGER,
    SERVICE_ACCOUNT,
    POD_SECURITY,
    PRIORITY,
    DEFAULT_TOLERATION_SECONDS,
    MUTATING_WEBHOOK,
    VALIDATING_ADMISSION_POLICY,
    VALIDATING_WEBHOOK,
    RESOURCE_QUOTA,
];

/// How often and how long ServiceAccount admission waits for the `default` service account,
/// which a controller creates shortly after its namespace (upstream retries the same way).
const DEFAULT_SA_RETRIES: usize = 30;
const DEFAULT_SA_RETRY_INTERVAL: Duration = Duration::from_millis(100);
/// Concurrent writers may race for a quota's usage; charging retries this often.
const QUOTA_RETRIES: usize = 10;

/// The configured chain.
pub struct Admission {
    /// Bit `i` set: `PLUGINS[i]` is on. Asked several times per write, so no set of strings.
    enabled: u32,
    pub pod_security: pod_security::Config,
    pub webhooks: super::webhooks::WebhookCache,
    pub objects: super::admission_objects::AdmissionObjects,
    pub(crate) policies: super::policy_admission::CompiledPolicies,
}

impl Admission {
    /// `--enable-admission-plugins` and `--disable-admission-plugins` over upstream's
    /// defaults. Unknown names are an error, as upstream.
    pub fn new(
        enable: &[String],
        disable: &[String],
        pod_security: pod_security::Config,
    ) -> Result<Admission, String> {
        for name in enable.iter().chain(disable) {
            if !PLUGINS.contains(&name.as_str()) {
                return Err(format!(
                    "admission plugin {name:?} is not supported by this server; supported: {}",
                    PLUGINS.join(", ")
                ));
            }
        }
        let mut enabled = 0;
        for name in DEFAULT_PLUGINS
            .iter()
            .copied()
            .chain(enable.iter().map(String::as_str))
        {
            enabled |= plugin_bit(name);
        }
        for name in disable {
            enabled &= !plugin_bit(name);
        }
        Ok(Admission {
            enabled,
            pod_security,
            webhooks: Default::default(),
            objects: Default::default(),
            policies: Default::default(),
        })
    }

    /// No plugin at all.
    pub fn none() -> Admission {
        Admission {
            enabled: 0,
            pod_security: pod_security::Config::default(),
            webhooks: Default::default(),
            objects: Default::default(),
            policies: Default::default(),
        }
    }

    pub fn on(&self, plugin: &str) -> bool {
        self.enabled & plugin_bit(plugin) != 0
    }
}

/// The bit of `plugin` in [`Admission::enabled`]; none for a name not in [`PLUGINS`].
fn plugin_bit(plugin: &str) -> u32 {
    PLUGINS
        .iter()
        .position(|p| *p == plugin)
        .map_or(0, |i| 1 << i)
}

/// Who is writing: the identity admission judges, and where plugins leave audit annotations.
#[derive(Clone, Debug)]
pub struct Requester {
    pub user: UserInfo,
    pub annotations: Arc<Mutex<BTreeMap<String, String>>>,
}

impl Requester {
    pub fn new(user: UserInfo) -> Requester {
        Requester {
            user,
            annotations: Default::default(),
        }
    }
}

/// One write being admitted: its attributes and what its plugins found along the way.
pub struct AdmissionCall<'a> {
    pub attrs: Attributes,
    requester: &'a Requester,
    warnings: &'a Mutex<Vec<String>>,
    namespace: OnceCell<Option<Value>>,
}

impl<'a> AdmissionCall<'a> {
    /// A write of `info` (or its `subresource`, whose body has `kind`).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        info: &ResourceInfo,
        namespace: Option<&str>,
        name: &str,
        subresource: Option<&str>,
        kind: Option<&str>,
        operation: Operation,
        dry_run: bool,
        requester: &'a Requester,
        warnings: &'a Mutex<Vec<String>>,
    ) -> Self {
        AdmissionCall {
            attrs: Attributes {
                operation,
                group: info.group.clone(),
                version: info.version.clone(),
                resource: info.plural.clone(),
                subresource: subresource.unwrap_or_default().to_string(),
                kind: kind.unwrap_or(&info.kind).to_string(),
                namespace: if info.namespaced {
                    namespace.unwrap_or_default().to_string()
                } else {
                    String::new()
                },
                name: name.to_string(),
                user: requester.user.clone(),
                dry_run,
            },
            requester,
            warnings,
            namespace: OnceCell::new(),
        }
    }

    /// Starts with the Namespace object the caller has already read for this request (the
    /// registry does, to refuse creates in missing or terminating namespaces), so that the
    /// plugins do not read and decode it again.
    pub fn with_namespace(self, namespace: Option<Value>) -> Self {
        if let Some(ns) = namespace.filter(|_| !self.attrs.namespace.is_empty()) {
            let _ = self.namespace.set(Some(ns));
        }
        self
    }

    fn record(&self, outcome: Outcome) {
        self.warnings.lock().extend(outcome.warnings);
        self.requester
            .annotations
            .lock()
            .extend(outcome.audit_annotations);
    }

    fn is_pod_create(&self) -> bool {
        self.attrs.is("", "pods")
            && self.attrs.subresource.is_empty()
            && self.attrs.operation == Operation::Create
    }

    /// The Namespace object of a namespaced request, looked up once.
    pub(super) async fn namespace(&self, server: &ApiServer) -> Option<&Value> {
        let ns = self.attrs.namespace.clone();
        self.namespace
            .get_or_init(|| async move {
                if ns.is_empty() {
                    return None;
                }
                let info = server.catalog.get("", "v1", "namespaces")?;
                server.get_object(&info, None, &ns).await.ok()
            })
            .await
            .as_ref()
    }
}

fn rejected(r: Rejection) -> ApiError {
    ApiError {
        code: r.code,
        reason: r.reason,
        message: r.message,
        details: r.details,
    }
}

impl ApiServer {
    /// Objects of a core or grouped resource in one namespace (or cluster-wide): from the
    /// admission cache for the kinds it keeps, else from the store.
    pub(super) async fn objects_of(
        &self,
        group: &str,
        resource: &str,
        namespace: Option<&str>,
    ) -> Vec<Value> {
        match self
            .security
            .admission
            .objects
            .list(group, resource, namespace)
        {
            Some(cached) => cached,
            None => self.stored_objects_of(group, resource, namespace).await,
        }
    }

    /// [`ApiServer::objects_of`] read from the store.
    async fn stored_objects_of(
        &self,
        group: &str,
        resource: &str,
        namespace: Option<&str>,
    ) -> Vec<Value> {
        let Some(info) = self
            .catalog
            .versions_of(group, resource)
            .into_iter()
            .find(|i| i.preferred)
            .or_else(|| self.catalog.versions_of(group, resource).into_iter().next())
        else {
            return Vec::new();
        };
        let filter = Filter::everything(self, &info);
        self.list_objects(&info, namespace, &filter, Default::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default()
    }

    /// The service account a pod will run as, from the admission cache or else the store;
    /// `default` is waited for a little, since its controller creates it just after the
    /// namespace.
    async fn service_account_for(&self, namespace: &str, pod: &Value) -> Option<Arc<Value>> {
        let name = match pod
            .pointer("/spec/serviceAccountName")
            .and_then(Value::as_str)
        {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => service_account::DEFAULT_SERVICE_ACCOUNT.to_string(),
        };
        let cached =
            self.security
                .admission
                .objects
                .get("", "serviceaccounts", Some(namespace), &name);
        if cached.is_some() {
            return cached;
        }
        let info = self.catalog.get("", "v1", "serviceaccounts")?;
        let attempts = if name == service_account::DEFAULT_SERVICE_ACCOUNT {
            DEFAULT_SA_RETRIES
        } else {
            1
        };
        for attempt in 0..attempts {
            if attempt > 0 {
                tokio::time::sleep(DEFAULT_SA_RETRY_INTERVAL).await;
            }
            if let Ok(sa) = self.get_object(&info, Some(namespace), &name).await {
                return Some(Arc::new(sa));
            }
        }
        None
    }

    /// The Node named `name`, for NodeRestriction's check of a mirror pod's owner.
    async fn own_node(&self, name: &str) -> node_restriction::NodeLookup {
        use node_restriction::NodeLookup;
        let Some(info) = self.catalog.get("", "v1", "nodes") else {
            return NodeLookup::Failed("the nodes resource is not served".into());
        };
        match self.get_object(&info, None, name).await {
            Ok(node) => NodeLookup::Found(node),
            Err(e) if e.code == 404 => NodeLookup::NotFound,
            Err(e) => NodeLookup::Failed(e.message),
        }
    }

    /// The mutating half of the chain. `object` is the new object (none for deletes), `old`
    /// the current one (updates, deletes) or the object a subresource request acts on.
    pub async fn admit_mutating(
        &self,
        call: &AdmissionCall<'_>,
        mut object: Option<&mut Value>,
        old: Option<&Value>,
    ) -> ApiResult<()> {
        let chain = &self.security.admission;
        let a = &call.attrs;
        if chain.on(NAMESPACE_LIFECYCLE) {
            let ns = call.namespace(self).await;
            namespace_lifecycle::admit(a, object.as_deref(), ns).map_err(rejected)?;
        }
        if let Some(obj) = object.as_deref_mut() {
            if chain.on(LIMIT_RANGER) && call.is_pod_create() {
                let ranges = self.objects_of("", "limitranges", Some(&a.namespace)).await;
                limit_ranger::mutate(a, obj, &ranges);
            }
            if chain.on(SERVICE_ACCOUNT) && call.is_pod_create() {
                let sa = self.service_account_for(&a.namespace, obj).await;
                let outcome = service_account::admit(a, obj, sa.as_deref()).map_err(rejected)?;
                call.record(outcome);
            }
        }
        if let Some(node) = a.user.node_name().filter(|_| chain.on(NODE_RESTRICTION)) {
            // A mirror pod's owner must carry the stored Node's UID.
            let own_node = if call.is_pod_create() {
                self.own_node(node).await
            } else {
                node_restriction::NodeLookup::NotNeeded
            };
            node_restriction::admit(a, object.as_deref(), old, &own_node).map_err(rejected)?;
        }
        if let Some(obj) = object {
            if chain.on(PRIORITY) && call.is_pod_create() {
                let classes = self
                    .objects_of("scheduling.k8s.io", "priorityclasses", None)
                    .await;
                priority::admit(a, obj, &classes).map_err(rejected)?;
            }
            if chain.on(DEFAULT_TOLERATION_SECONDS) {
                default_toleration_seconds::admit(a, obj);
            }
            if chain.on(MUTATING_WEBHOOK) {
                let hooks = chain.webhooks.mutating();
                if !hooks.is_empty() {
                    self.call_mutating_webhooks(call, &hooks, obj, old).await?;
                }
            }
        }
        Ok(())
    }

    pub(super) async fn namespace_labels(
        &self,
        call: &AdmissionCall<'_>,
        object: Option<&Value>,
    ) -> BTreeMap<String, String> {
        let a = &call.attrs;
        if a.is("", "namespaces") {
            return object
                .map(|o| crate::resources::json::string_map(o, "metadata.labels"))
                .unwrap_or_default();
        }
        call.namespace(self)
            .await
            .map(|n| crate::resources::json::string_map(n, "metadata.labels"))
            .unwrap_or_default()
    }

    async fn call_mutating_webhooks(
        &self,
        call: &AdmissionCall<'_>,
        hooks: &[Webhook],
        object: &mut Value,
        old: Option<&Value>,
    ) -> ApiResult<()> {
        let labels = self.namespace_labels(call, Some(object)).await;
        let matching: Vec<&Webhook> = hooks
            .iter()
            .filter(|h| h.matches(&call.attrs, Some(object), old, &labels))
            .collect();
        if matching.is_empty() {
            return Ok(());
        }
        let services = self.resolve_webhook_services(&matching).await;
        let req = webhook::Request {
            attrs: &call.attrs,
            old_object: old,
            namespace_labels: &labels,
            options: None,
        };
        let outcome = webhook::run_mutating(hooks, &req, object, &services)
            .await
            .map_err(rejected)?;
        call.record(outcome);
        Ok(())
    }

    /// The validating half of the chain, after the registry's own validation; charges quota
    /// (written back unless the request is a dry run).
    pub async fn admit_validating(
        &self,
        call: &AdmissionCall<'_>,
        object: Option<&Value>,
        old: Option<&Value>,
    ) -> ApiResult<()> {
        let chain = &self.security.admission;
        let a = &call.attrs;
        if let Some(obj) = object {
            if chain.on(LIMIT_RANGER)
                && a.group.is_empty()
                && matches!(a.resource.as_str(), "pods" | "persistentvolumeclaims")
            {
                let ranges = self.objects_of("", "limitranges", Some(&a.namespace)).await;
                limit_ranger::validate(a, obj, &ranges).map_err(rejected)?;
            }
            if chain.on(POD_SECURITY) {
                self.pod_security(call, obj, old).await?;
            }
        }
        if chain.on(VALIDATING_ADMISSION_POLICY) {
            let mut warnings = Vec::new();
            let verdict = self.admit_policies(call, object, old, &mut warnings).await;
            call.warnings.lock().extend(warnings);
            verdict?;
        }
        if chain.on(VALIDATING_WEBHOOK) {
            let hooks = chain.webhooks.validating();
            if !hooks.is_empty() {
                let labels = self.namespace_labels(call, object).await;
                let matching: Vec<&Webhook> = hooks
                    .iter()
                    .filter(|h| h.matches(a, object, old, &labels))
                    .collect();
                if !matching.is_empty() {
                    let services = self.resolve_webhook_services(&matching).await;
                    let req = webhook::Request {
                        attrs: a,
                        old_object: old,
                        namespace_labels: &labels,
                        options: None,
                    };
                    let outcome = webhook::run_validating(&hooks, &req, object, &services)
                        .await
                        .map_err(rejected)?;
                    call.record(outcome);
                }
            }
        }
        if chain.on(RESOURCE_QUOTA) {
            if let Some(obj) = object {
                self.charge_quota(call, obj, old).await?;
            }
        }
        Ok(())
    }

    async fn pod_security(
        &self,
        call: &AdmissionCall<'_>,
        obj: &Value,
        old: Option<&Value>,
    ) -> ApiResult<()> {
        let a = &call.attrs;
        let config = &self.security.admission.pod_security;
        if a.is("", "namespaces") {
            let labels_changed = old.is_some_and(|o| {
                crate::resources::json::string_map(o, "metadata.labels")
                    != crate::resources::json::string_map(obj, "metadata.labels")
            });
            let pods = if labels_changed {
                self.objects_of("", "pods", Some(plugins::str_of(obj, "/metadata/name")))
                    .await
            } else {
                Vec::new()
            };
            let outcome =
                pod_security::admit_namespace(a, obj, old, &pods, config).map_err(rejected)?;
            call.record(outcome);
            return Ok(());
        }
        if a.namespace.is_empty() {
            return Ok(());
        }
        let ns = call.namespace(self).await;
        let outcome = pod_security::admit(a, obj, old, ns, config).map_err(rejected)?;
        call.record(outcome);
        Ok(())
    }

    /// ResourceQuota: checks the namespace's quotas and writes their new usage back with
    /// compare-and-swap, retrying when another writer charged them first.
    async fn charge_quota(
        &self,
        call: &AdmissionCall<'_>,
        obj: &Value,
        old: Option<&Value>,
    ) -> ApiResult<()> {
        let a = &call.attrs;
        if a.namespace.is_empty() || !a.subresource.is_empty() {
            return Ok(());
        }
        // Quotas already charged by an earlier attempt are not charged again.
        let mut written: BTreeSet<String> = BTreeSet::new();
        for attempt in 0..QUOTA_RETRIES {
            // A conflict may come from a stale cached quota, so retries read the store.
            let quotas = if attempt == 0 {
                self.objects_of("", "resourcequotas", Some(&a.namespace))
                    .await
            } else {
                self.stored_objects_of("", "resourcequotas", Some(&a.namespace))
                    .await
            };
            let quotas: Vec<Value> = quotas
                .into_iter()
                .filter(|q| !written.contains(object::name(q)))
                .collect();
            if quotas.is_empty() {
                return Ok(());
            }
            let Some(quota_info) = self.catalog.get("", "v1", "resourcequotas") else {
                return Ok(());
            };
            let charged = resource_quota::admit(a, obj, old, &quotas).map_err(rejected)?;
            if a.dry_run || charged.is_empty() {
                return Ok(());
            }
            let mut all_written = true;
            for quota in charged {
                let name = object::name(&quota).to_string();
                let rev: i64 = object::meta_str(&quota, "resourceVersion")
                    .and_then(|r| r.parse().ok())
                    .unwrap_or(0);
                let key = quota_info.key(Some(&a.namespace), &name);
                let (bytes, kept) = self.encode_owned(&quota_info, quota);
                match self.store.update(&key, bytes, rev).await {
                    Ok(kv) => {
                        // The next write in this namespace must see this usage, not the
                        // cached one, or it would conflict and re-read.
                        let stored = self.written(&quota_info, kept, &kv)?;
                        super::informer::observe_local_write(
                            self,
                            &quota_info,
                            None,
                            Some(&stored),
                        );
                        written.insert(name);
                    }
                    Err(crate::store::StoreError::Conflict { .. }) => {
                        all_written = false;
                        break;
                    }
                    Err(e) => return Err(ApiError::from_store(e, &quota_info, &name)),
                }
            }
            if all_written {
                return Ok(());
            }
        }
        Err(ApiError::new(
            409,
            "Conflict",
            "Operation cannot be fulfilled on resourcequotas: the quota usage kept changing; please try again",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespace_read_by_the_registry_is_not_read_again() {
        let catalog = crate::resources::Catalog::builtin();
        let requester = Requester::new(UserInfo::default());
        let warnings = Mutex::new(Vec::new());
        let call = |plural: &str, ns: Option<&str>| {
            let info = catalog.get("", "v1", plural).expect("built-in resource");
            AdmissionCall::new(
                &info,
                ns,
                "x",
                None,
                None,
                Operation::Create,
                false,
                &requester,
                &warnings,
            )
        };
        let ns = serde_json::json!({"metadata": {"name": "team-a"}});
        let seeded = call("configmaps", Some("team-a")).with_namespace(Some(ns.clone()));
        assert_eq!(seeded.namespace.get(), Some(&Some(ns.clone())));
        let cluster_scoped = call("nodes", None).with_namespace(Some(ns));
        assert!(
            cluster_scoped.namespace.get().is_none(),
            "a cluster-scoped write has no namespace to remember"
        );
        assert!(call("configmaps", Some("team-a"))
            .with_namespace(None)
            .namespace
            .get()
            .is_none());
    }

    #[test]
    fn plugins_are_upstreams_defaults_plus_and_minus_the_flags() {
        let a = Admission::new(&[], &[], Default::default()).unwrap();
        assert!(a.on(POD_SECURITY) && a.on(RESOURCE_QUOTA));
        assert!(
            a.on(VALIDATING_ADMISSION_POLICY),
            "on by default since 1.30"
        );
        assert!(!a.on(NODE_RESTRICTION), "not on by default upstream");
        let a = Admission::new(
            &[NODE_RESTRICTION.into()],
            &[POD_SECURITY.into()],
            Default::default(),
        )
        .unwrap();
        assert!(a.on(NODE_RESTRICTION) && !a.on(POD_SECURITY));
        let err = Admission::new(&["AlwaysPullImages".into()], &[], Default::default())
            .err()
            .unwrap();
        assert!(
            err.contains("\"AlwaysPullImages\" is not supported"),
            "{err}"
        );
        assert!(!Admission::none().on(NAMESPACE_LIFECYCLE));
    }
}
