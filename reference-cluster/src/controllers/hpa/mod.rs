//! The HorizontalPodAutoscaler controller (`autoscaling/v2`; v1 objects are the same stored
//! objects): every sync period it reads the target's `/scale`, asks the resource metrics API
//! (`metrics.k8s.io`) for the selected pods' usage, computes the replica count each metric
//! proposes ([`replicas`]), takes the largest, stabilizes and rate-limits it ([`behavior`]),
//! writes it through `/scale`, and reports status, conditions and events with upstream's
//! reasons and messages.
//!
//! Custom metrics (`Pods`, `Object`, `External`) would come from `custom.metrics.k8s.io` /
//! `external.metrics.k8s.io`; when those APIs are not registered the metric is reported as
//! failing (ScalingActive=False), as upstream does, instead of being guessed.

pub mod behavior;
pub mod replicas;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::autoscaling::v2::{
    HPAScalingRules, HorizontalPodAutoscaler, HorizontalPodAutoscalerCondition,
    HorizontalPodAutoscalerStatus, MetricSpec, MetricStatus, MetricTarget, MetricValueStatus,
};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ApiResource, DynamicObject, ListParams, PostParams};
use kube::{Api, ResourceExt};
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::task::JoinHandle;

use self::behavior::{Cond, History, Limits, Policy, PolicyKind, Rules, Select};
use self::replicas::{PodFacts, Sample, Tuning};
use super::manager::{Context, Controller};
use super::runtime::events::{now_time, EventRecorder, NORMAL, WARNING};
use super::runtime::{self, key_of, split_key, Change, Informer, Reconciler, Requeue, WorkQueue};
use crate::resources::labels::{parse_label_selector, LabelSelector};
use crate::resources::quantity::Quantity;

const CONTROLLER_NAME: &str = "horizontal-pod-autoscaler";

pub struct HpaController {
    client: kube::Client,
    hpas: Informer<HorizontalPodAutoscaler>,
    pods: Informer<Pod>,
    queue: Arc<WorkQueue<String>>,
    recorder: Arc<EventRecorder>,
    sync_period: Duration,
    tuning: Tuning,
    downscale_stabilization: Duration,
    histories: Mutex<HashMap<String, History>>,
    /// Resource names of scale targets, by (apiVersion, kind).
    plurals: Mutex<HashMap<(String, String), String>>,
}

impl HpaController {
    pub fn new(ctx: &Context) -> Arc<Self> {
        let cfg = &ctx.cfg;
        let client = ctx.client_for(CONTROLLER_NAME);
        let this = Arc::new(HpaController {
            recorder: EventRecorder::new(client.clone(), CONTROLLER_NAME),
            client,
            hpas: ctx.informers.get::<HorizontalPodAutoscaler>(),
            pods: ctx.informers.get::<Pod>(),
            queue: WorkQueue::new(cfg.backoff),
            sync_period: cfg.hpa_sync_period,
            tuning: Tuning {
                tolerance: cfg.hpa_tolerance,
                cpu_initialization_period: cfg.hpa_cpu_initialization_period,
                initial_readiness_delay: cfg.hpa_initial_readiness_delay,
            },
            downscale_stabilization: cfg.hpa_downscale_stabilization,
            histories: Mutex::new(HashMap::new()),
            plurals: Mutex::new(HashMap::new()),
        });
        let q = this.queue.clone();
        // The controller's own status writes must not trigger syncs: only new HPAs and spec
        // changes are synced at once, everything else waits for the next period.
        this.hpas.add_handler(move |c| match c {
            Change::Add(h) | Change::Delete(h) => q.add(key_of(h.as_ref())),
            Change::Update { old, new } => {
                if old.metadata.generation != new.metadata.generation {
                    q.add(key_of(new.as_ref()));
                }
            }
        });
        this
    }

    async fn plural(&self, api_version: &str, kind: &str) -> Result<String, String> {
        let key = (api_version.to_string(), kind.to_string());
        if let Some(p) = self.plurals.lock().get(&key) {
            return Ok(p.clone());
        }
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
        let (ar, _) = kube::discovery::pinned_kind(&self.client, &gvk)
            .await
            .map_err(|_| format!("no matches for kind \"{kind}\" in group \"{group}\""))?;
        self.plurals.lock().insert(key, ar.plural.clone());
        Ok(ar.plural)
    }

    fn scale_path(api_version: &str, plural: &str, ns: &str, name: &str) -> String {
        let base = if api_version.contains('/') {
            format!("/apis/{api_version}")
        } else {
            format!("/api/{api_version}")
        };
        format!("{base}/namespaces/{ns}/{plural}/{name}/scale")
    }

    async fn get_scale(&self, path: &str) -> Result<Value, String> {
        let req = http::Request::get(path)
            .body(Vec::new())
            .map_err(|e| e.to_string())?;
        self.client
            .request::<Value>(req)
            .await
            .map_err(|e| api_message(&e))
    }

    async fn put_scale(&self, path: &str, scale: &Value) -> Result<(), String> {
        let req = http::Request::put(path)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(scale).unwrap_or_default())
            .map_err(|e| e.to_string())?;
        self.client
            .request::<Value>(req)
            .await
            .map(|_| ())
            .map_err(|e| api_message(&e))
    }

    /// The selected pods' samples of `resource` (optionally one container's), by pod name,
    /// as upstream's resource metrics client reads PodMetrics.
    async fn resource_samples(
        &self,
        ns: &str,
        selector: &str,
        resource: &str,
        container: Option<&str>,
    ) -> Result<BTreeMap<String, Sample>, String> {
        let ar = ApiResource {
            group: "metrics.k8s.io".into(),
            version: "v1beta1".into(),
            api_version: "metrics.k8s.io/v1beta1".into(),
            kind: "PodMetrics".into(),
            plural: "pods".into(),
        };
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), ns, &ar);
        let list = api
            .list(&ListParams::default().labels(selector))
            .await
            .map_err(|e| {
                let detail = match &e {
                    kube::Error::Api(s) if s.code == 404 => {
                        "the server could not find the requested resource (get pods.metrics.k8s.io)"
                            .to_string()
                    }
                    other => api_message(other),
                };
                format!("unable to fetch metrics from resource metrics API: {detail}")
            })?;
        if list.items.is_empty() {
            return Err("no metrics returned from resource metrics API".into());
        }
        let mut out = BTreeMap::new();
        for m in &list.items {
            let name = m.name_any();
            let timestamp = m.data["timestamp"]
                .as_str()
                .and_then(|t| t.parse::<Timestamp>().ok())
                .unwrap_or_else(Timestamp::now);
            let window = m.data["window"]
                .as_str()
                .and_then(|w| crate::node::clock::parse_go_duration(w).ok())
                .unwrap_or_default();
            let containers = m.data["containers"].as_array().cloned().unwrap_or_default();
            let value = match container {
                Some(c) => {
                    let Some(found) = containers.iter().find(|x| x["name"] == c) else {
                        return Err(format!(
                            "failed to get container metrics: container {c} not present in metrics for pod {ns}/{name}"
                        ));
                    };
                    match milli(&found["usage"][resource]) {
                        Some(v) => v,
                        None => continue,
                    }
                }
                None => {
                    // A pod missing any container's sample has no sample at all.
                    let values: Option<Vec<i64>> = containers
                        .iter()
                        .map(|x| milli(&x["usage"][resource]))
                        .collect();
                    match values {
                        Some(v) if !v.is_empty() => v.iter().sum(),
                        _ => continue,
                    }
                }
            };
            out.insert(
                name,
                Sample {
                    value,
                    timestamp,
                    window,
                },
            );
        }
        Ok(out)
    }

    /// Whether a metrics API group is served (custom and external metrics come from adapters).
    async fn group_served(&self, group: &str) -> bool {
        let req = match http::Request::get(format!("/apis/{group}")).body(Vec::new()) {
            Ok(r) => r,
            Err(_) => return false,
        };
        self.client.request::<Value>(req).await.is_ok()
    }

    fn selected_pods(&self, ns: &str, selector: &LabelSelector) -> Vec<Arc<Pod>> {
        let mut pods: Vec<Arc<Pod>> = self
            .pods
            .list_namespace(ns)
            .into_iter()
            .filter(|p| selector.matches(runtime::selector::labels_of(&p.metadata.labels)))
            .collect();
        pods.sort_by_key(|p| p.name_any());
        pods
    }

    /// Computes one metric's proposal, filling in its status; an error comes with the
    /// ScalingActive condition explaining it.
    async fn replicas_for_metric(
        &self,
        hpa: &HorizontalPodAutoscaler,
        spec: &MetricSpec,
        current: i32,
        selector_text: &str,
        pods: &[Arc<Pod>],
    ) -> Result<(i32, String, MetricStatus), (Cond, String)> {
        let ns = hpa.namespace().unwrap_or_default();
        let now = Timestamp::now();
        let facts: Vec<PodFacts> = pods.iter().map(|p| pod_facts(p)).collect();
        let fail = |reason: &'static str, err: String, wrapped: String| {
            self.recorder.event(hpa, WARNING, reason, err.clone());
            (
                (
                    "ScalingActive",
                    "False",
                    reason,
                    format!("the HPA was unable to compute the replica count: {err}"),
                ),
                wrapped,
            )
        };
        match spec.type_.as_str() {
            "Resource" | "ContainerResource" => {
                let (resource, target, container, reason) =
                    match (&spec.resource, &spec.container_resource) {
                        (Some(r), _) if spec.type_ == "Resource" => (
                            r.name.clone(),
                            r.target.clone(),
                            None,
                            "FailedGetResourceMetric",
                        ),
                        (_, Some(c)) if spec.type_ == "ContainerResource" => (
                            c.name.clone(),
                            c.target.clone(),
                            Some(c.container.clone()),
                            "FailedGetContainerResourceMetric",
                        ),
                        _ => {
                            let err = format!("the {} metric has no source", spec.type_);
                            return Err(fail("InvalidMetricSourceType", err.clone(), err));
                        }
                    };
                let computed = self
                    .resource_proposal(
                        &ns,
                        selector_text,
                        &resource,
                        container.as_deref(),
                        &target,
                        current,
                        &facts,
                        pods,
                        now,
                    )
                    .await;
                match computed {
                    Ok((replicas, name, value)) => {
                        let status = if let Some(c) = container {
                            MetricStatus {
                                type_: "ContainerResource".into(),
                                container_resource: Some(
                                    k8s_openapi::api::autoscaling::v2::ContainerResourceMetricStatus {
                                        name: resource,
                                        container: c,
                                        current: value,
                                    },
                                ),
                                ..Default::default()
                            }
                        } else {
                            MetricStatus {
                                type_: "Resource".into(),
                                resource: Some(
                                    k8s_openapi::api::autoscaling::v2::ResourceMetricStatus {
                                        name: resource,
                                        current: value,
                                    },
                                ),
                                ..Default::default()
                            }
                        };
                        Ok((replicas, name, status))
                    }
                    Err(e) => Err(fail(reason, e.clone(), e)),
                }
            }
            "Pods" => {
                let metric = spec
                    .pods
                    .as_ref()
                    .map(|p| p.metric.name.clone())
                    .unwrap_or_default();
                let err = format!(
                    "unable to get metric {metric}: unable to fetch metrics from custom metrics API: {}",
                    self.missing_adapter("custom.metrics.k8s.io", "custom").await
                );
                Err(fail(
                    "FailedGetPodsMetric",
                    err.clone(),
                    format!("failed to get pods metric value: {err}"),
                ))
            }
            "Object" => {
                let (metric, kind, name) = spec
                    .object
                    .as_ref()
                    .map(|o| {
                        (
                            o.metric.name.clone(),
                            o.described_object.kind.clone(),
                            o.described_object.name.clone(),
                        )
                    })
                    .unwrap_or_default();
                let err = format!(
                    "unable to get metric {metric}: {kind} on {ns} {name}/unable to fetch metrics from custom metrics API: {}",
                    self.missing_adapter("custom.metrics.k8s.io", "custom").await
                );
                Err(fail(
                    "FailedGetObjectMetric",
                    err.clone(),
                    format!("failed to get object metric value: {err}"),
                ))
            }
            "External" => {
                let metric = spec
                    .external
                    .as_ref()
                    .map(|e| e.metric.name.clone())
                    .unwrap_or_default();
                let err = format!(
                    "unable to get external metric {ns}/{metric}/nil: unable to fetch metrics from external metrics API: {}",
                    self.missing_adapter("external.metrics.k8s.io", "external").await
                );
                Err(fail(
                    "FailedGetExternalMetric",
                    err.clone(),
                    format!("failed to get external metric value: {err}"),
                ))
            }
            other => {
                let err = format!("unknown metric source type \"{other}\"");
                Err(fail("InvalidMetricSourceType", err.clone(), err))
            }
        }
    }

    async fn missing_adapter(&self, group: &str, what: &str) -> String {
        if self.group_served(group).await {
            format!("reading {what} metrics is not supported by this controller")
        } else {
            format!("no {what} metrics API ({group}) registered")
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn resource_proposal(
        &self,
        ns: &str,
        selector: &str,
        resource: &str,
        container: Option<&str>,
        target: &MetricTarget,
        current: i32,
        facts: &[PodFacts],
        pods: &[Arc<Pod>],
        now: Timestamp,
    ) -> Result<(i32, String, MetricValueStatus), String> {
        let cpu = resource == "cpu";
        let in_container = if container.is_some() {
            " container"
        } else {
            ""
        };
        match (target.type_.as_str(), target.average_utilization, &target.average_value) {
            ("Utilization", Some(util), _) => {
                let samples = self
                    .resource_samples(ns, selector, resource, container)
                    .await
                    .map_err(|e| format!("failed to get {resource} utilization: unable to get metrics for resource {resource}: {e}"))?;
                if facts.is_empty() {
                    return Err(format!("failed to get {resource} utilization: no pods returned by selector while calculating replica count"));
                }
                let requests = pod_requests(pods, resource, container)
                    .map_err(|e| format!("failed to get {resource} utilization: {e}"))?;
                let (replicas, utilization, raw) = replicas::resource_replicas(
                    current, util, facts, samples, &requests, cpu, &self.tuning, now,
                )
                .map_err(|e| format!("failed to get {resource} utilization: {e}"))?;
                Ok((
                    replicas,
                    format!("{resource}{in_container} resource utilization (percentage of request)"),
                    MetricValueStatus {
                        average_utilization: Some(utilization),
                        average_value: Some(ApiQuantity(milli_quantity(raw))),
                        ..Default::default()
                    },
                ))
            }
            ("AverageValue", _, Some(v)) => {
                let target = Quantity::parse(&v.0)
                    .map(|q| q.milli_value() as i64)
                    .map_err(|e| format!("invalid target value {:?}: {e}", v.0))?;
                let samples = self
                    .resource_samples(ns, selector, resource, container)
                    .await
                    .map_err(|e| format!("failed to get {resource} usage: unable to get metrics for resource {resource}: {e}"))?;
                let (replicas, average) =
                    replicas::value_replicas(current, target, facts, samples, cpu, &self.tuning, now)
                        .map_err(|e| format!("failed to get {resource} usage: {e}"))?;
                Ok((
                    replicas,
                    format!("{resource}{in_container} resource"),
                    MetricValueStatus {
                        average_value: Some(ApiQuantity(milli_quantity(average))),
                        ..Default::default()
                    },
                ))
            }
            _ => Err(format!(
                "invalid resource metric source: neither a utilization target nor a value target was set for {resource}"
            )),
        }
    }

    async fn reconcile(&self, cached: &HorizontalPodAutoscaler, key: &str) -> anyhow::Result<()> {
        let mut hpa = cached.clone();
        let old_status = hpa.status.clone().unwrap_or_default();
        let mut conditions = old_status.conditions.clone().unwrap_or_default();
        let spec = hpa.spec.clone().unwrap_or_default();
        let ns = hpa.namespace().unwrap_or_default();
        let target = &spec.scale_target_ref;
        let api_version = target.api_version.clone().unwrap_or_default();
        let reference = format!("{}/{}/{}", target.kind, ns, target.name);

        let scale_err = |this: &Self,
                         hpa: &HorizontalPodAutoscaler,
                         conditions: &mut Vec<HorizontalPodAutoscalerCondition>,
                         e: String| {
            this.recorder
                .event(hpa, WARNING, "FailedGetScale", e.clone());
            set_condition(
                conditions,
                "AbleToScale",
                "False",
                "FailedGetScale",
                format!("the HPA controller was unable to get the target's current scale: {e}"),
            );
        };
        let scale_path = match self.plural(&api_version, &target.kind).await {
            Ok(plural) => Self::scale_path(&api_version, &plural, &ns, &target.name),
            Err(e) => {
                scale_err(self, &hpa, &mut conditions, e.clone());
                self.write_status(&mut hpa, &old_status, status_with(&old_status, conditions))
                    .await?;
                anyhow::bail!("unable to determine resource for scale target reference: {e}");
            }
        };
        let mut scale = match self.get_scale(&scale_path).await {
            Ok(s) => s,
            Err(e) => {
                scale_err(self, &hpa, &mut conditions, e.clone());
                self.write_status(&mut hpa, &old_status, status_with(&old_status, conditions))
                    .await?;
                anyhow::bail!("failed to query scale subresource for {reference}: {e}");
            }
        };
        set_condition(
            &mut conditions,
            "AbleToScale",
            "True",
            "SucceededGetScale",
            "the HPA controller was able to get the target's current scale".into(),
        );
        let current = scale["spec"]["replicas"].as_i64().unwrap_or(0) as i32;
        let now = Instant::now();
        self.histories
            .lock()
            .entry(key.to_string())
            .or_default()
            .record_initial(current, now);
        let min = spec.min_replicas.unwrap_or(1);
        let max = spec.max_replicas;
        let behavior = spec.behavior.as_ref().map(|b| {
            (
                rules(b.scale_up.as_ref(), Rules::default_up()),
                rules(
                    b.scale_down.as_ref(),
                    Rules::default_down(self.downscale_stabilization),
                ),
            )
        });
        let mut metric_statuses: Vec<MetricStatus> = Vec::new();
        let mut rescale_reason = String::new();
        let desired;
        let mut rescale = true;
        if current == 0 && min != 0 {
            desired = 0;
            rescale = false;
            set_condition(
                &mut conditions,
                "ScalingActive",
                "False",
                "ScalingDisabled",
                "scaling is disabled since the replica count of the target is zero".into(),
            );
        } else if current > max {
            rescale_reason = "Current number of replicas above Spec.MaxReplicas".into();
            desired = max;
        } else if current < min {
            rescale_reason = "Current number of replicas below Spec.MinReplicas".into();
            desired = min;
        } else {
            let selector_text = scale["status"]["selector"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let selector = if selector_text.is_empty() {
                self.recorder
                    .event(&hpa, WARNING, "SelectorRequired", "selector is required");
                set_condition(
                    &mut conditions,
                    "ScalingActive",
                    "False",
                    "InvalidSelector",
                    "the HPA target's scale is missing a selector".into(),
                );
                Err("selector is required".to_string())
            } else {
                parse_label_selector(&selector_text).map_err(|e| {
                    let msg = format!(
                        "couldn't convert selector into a corresponding internal selector object: {e}"
                    );
                    self.recorder.event(&hpa, WARNING, "InvalidSelector", msg.clone());
                    set_condition(&mut conditions, "ScalingActive", "False", "InvalidSelector", msg.clone());
                    msg
                })
            };
            let selector = match selector {
                Ok(s) => s,
                Err(e) => {
                    self.write_status(
                        &mut hpa,
                        &old_status,
                        HorizontalPodAutoscalerStatus {
                            current_replicas: Some(current),
                            conditions: Some(conditions),
                            ..old_status.clone()
                        },
                    )
                    .await?;
                    anyhow::bail!("{e}");
                }
            };
            let pods = self.selected_pods(&ns, &selector);
            let metrics = spec.metrics.clone().unwrap_or_default();
            let mut best: Option<(i32, String)> = None;
            let mut invalid = 0usize;
            let mut first_error: Option<(Cond, String)> = None;
            for m in &metrics {
                match self
                    .replicas_for_metric(&hpa, m, current, &selector_text, &pods)
                    .await
                {
                    Ok((replicas, name, status)) => {
                        metric_statuses.push(status);
                        if best.as_ref().is_none_or(|(r, _)| replicas > *r) {
                            best = Some((replicas, name));
                        }
                    }
                    Err(e) => {
                        metric_statuses.push(MetricStatus {
                            type_: String::new(),
                            ..Default::default()
                        });
                        invalid += 1;
                        if first_error.is_none() {
                            first_error = Some(e);
                        }
                    }
                }
            }
            let proposal = best.as_ref().map_or(0, |(r, _)| *r);
            if invalid >= metrics.len() || (invalid > 0 && proposal < current) {
                let (cond, wrapped) = first_error.unwrap_or_else(|| {
                    (
                        (
                            "ScalingActive",
                            "False",
                            "FailedGetResourceMetric",
                            String::new(),
                        ),
                        "no metrics".into(),
                    )
                });
                set_condition(&mut conditions, cond.0, cond.1, cond.2, cond.3);
                let message = format!(
                    "invalid metrics ({invalid} invalid out of {}), first error is: {wrapped}",
                    metrics.len()
                );
                self.recorder.event(
                    &hpa,
                    WARNING,
                    "FailedComputeMetricsReplicas",
                    message.clone(),
                );
                self.write_status(
                    &mut hpa,
                    &old_status,
                    HorizontalPodAutoscalerStatus {
                        current_replicas: Some(current),
                        current_metrics: status_metrics(metric_statuses),
                        conditions: Some(conditions),
                        desired_replicas: old_status.desired_replicas,
                        last_scale_time: old_status.last_scale_time.clone(),
                        observed_generation: old_status.observed_generation,
                    },
                )
                .await?;
                anyhow::bail!(
                    "failed to compute desired number of replicas based on listed metrics for {reference}: {message}"
                );
            }
            let (proposal, metric_name) = best.unwrap_or((0, String::new()));
            set_condition(
                &mut conditions,
                "ScalingActive",
                "True",
                "ValidMetricFound",
                format!(
                    "the HPA was able to successfully calculate a replica count from {metric_name}"
                ),
            );
            if proposal > current {
                rescale_reason = format!("{metric_name} above target");
            } else if proposal < current {
                rescale_reason = "All metrics below target".into();
            }
            let limits = Limits {
                current,
                min,
                max,
                behavior: behavior.as_ref().map(|(u, d)| (u, d)),
                downscale_stabilization: self.downscale_stabilization,
            };
            let (normalized, conds) = self
                .histories
                .lock()
                .entry(key.to_string())
                .or_default()
                .normalize(proposal, &limits, now);
            for c in conds {
                set_condition(&mut conditions, c.0, c.1, c.2, c.3);
            }
            desired = normalized;
            rescale = desired != current;
        }
        let mut last_scale_time = old_status.last_scale_time.clone();
        let desired = if rescale {
            scale["spec"]["replicas"] = json!(desired);
            if let Err(e) = self.put_scale(&scale_path, &scale).await {
                self.recorder.event(
                    &hpa,
                    WARNING,
                    "FailedRescale",
                    format!("New size: {desired}; reason: {rescale_reason}; error: {e}"),
                );
                set_condition(
                    &mut conditions,
                    "AbleToScale",
                    "False",
                    "FailedUpdateScale",
                    format!("the HPA controller was unable to update the target scale: {e}"),
                );
                self.write_status(
                    &mut hpa,
                    &old_status,
                    HorizontalPodAutoscalerStatus {
                        current_replicas: Some(current),
                        current_metrics: status_metrics(metric_statuses),
                        conditions: Some(conditions),
                        ..old_status.clone()
                    },
                )
                .await?;
                anyhow::bail!("failed to rescale {reference}: {e}");
            }
            set_condition(
                &mut conditions,
                "AbleToScale",
                "True",
                "SucceededRescale",
                format!("the HPA controller was able to update the target scale to {desired}"),
            );
            self.recorder.event(
                &hpa,
                NORMAL,
                "SuccessfulRescale",
                format!("New size: {desired}; reason: {rescale_reason}"),
            );
            self.histories
                .lock()
                .entry(key.to_string())
                .or_default()
                .record_scale(
                    current,
                    desired,
                    behavior.as_ref().map(|(u, d)| (u, d)),
                    now,
                );
            tracing::info!(hpa = key, from = current, to = desired, reason = %rescale_reason, "rescaled");
            last_scale_time = Some(now_time());
            desired
        } else {
            current
        };
        let status = HorizontalPodAutoscalerStatus {
            current_replicas: Some(current),
            desired_replicas: desired,
            current_metrics: status_metrics(metric_statuses),
            conditions: Some(conditions),
            last_scale_time,
            observed_generation: old_status.observed_generation,
        };
        self.write_status(&mut hpa, &old_status, status).await
    }

    /// Writes `status` unless it equals what is stored.
    async fn write_status(
        &self,
        hpa: &mut HorizontalPodAutoscaler,
        old: &HorizontalPodAutoscalerStatus,
        status: HorizontalPodAutoscalerStatus,
    ) -> anyhow::Result<()> {
        if serde_json::to_value(old).ok() == serde_json::to_value(&status).ok() {
            return Ok(());
        }
        hpa.status = Some(status);
        let ns = hpa.namespace().unwrap_or_default();
        let api: Api<HorizontalPodAutoscaler> = Api::namespaced(self.client.clone(), &ns);
        api.replace_status(&hpa.name_any(), &PostParams::default(), hpa)
            .await?;
        Ok(())
    }
}

/// The failing metrics leave no status entry, as upstream's empty entries are dropped when
/// the status is serialised without a type.
fn status_metrics(statuses: Vec<MetricStatus>) -> Option<Vec<MetricStatus>> {
    let kept: Vec<MetricStatus> = statuses
        .into_iter()
        .filter(|s| !s.type_.is_empty())
        .collect();
    (!kept.is_empty()).then_some(kept)
}

fn status_with(
    old: &HorizontalPodAutoscalerStatus,
    conditions: Vec<HorizontalPodAutoscalerCondition>,
) -> HorizontalPodAutoscalerStatus {
    HorizontalPodAutoscalerStatus {
        conditions: Some(conditions),
        ..old.clone()
    }
}

/// Sets a condition, keeping its transition time unless its status changes (upstream keeps
/// the order in which conditions first appeared).
fn set_condition(
    list: &mut Vec<HorizontalPodAutoscalerCondition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
) {
    let idx = match list.iter().position(|c| c.type_ == type_) {
        Some(i) => i,
        None => {
            list.push(HorizontalPodAutoscalerCondition {
                type_: type_.to_string(),
                ..Default::default()
            });
            list.len() - 1
        }
    };
    let c = &mut list[idx];
    if c.status != status {
        c.last_transition_time = Some(now_time());
    }
    c.status = status.to_string();
    c.reason = Some(reason.to_string());
    c.message = Some(message);
}

fn rules(r: Option<&HPAScalingRules>, default: Rules) -> Rules {
    let Some(r) = r else {
        return default;
    };
    let select = match r.select_policy.as_deref() {
        Some("Min") => Select::Min,
        Some("Disabled") => Select::Disabled,
        Some(_) => Select::Max,
        None => default.select,
    };
    let policies = match &r.policies {
        Some(p) => p
            .iter()
            .map(|p| Policy {
                kind: if p.type_ == "Pods" {
                    PolicyKind::Pods
                } else {
                    PolicyKind::Percent
                },
                value: p.value,
                period: Duration::from_secs(p.period_seconds.max(0) as u64),
            })
            .collect(),
        None => default.policies,
    };
    Rules {
        stabilization: r
            .stabilization_window_seconds
            .map_or(default.stabilization, |s| {
                Duration::from_secs(s.max(0) as u64)
            }),
        select,
        policies,
    }
}

/// A quantity in milli-units, printed as upstream's `NewMilliQuantity(v, DecimalSI)`.
fn milli_quantity(v: i64) -> String {
    Quantity::parse(&format!("{v}m"))
        .map(|q| q.canonical())
        .unwrap_or_else(|_| format!("{v}m"))
}

fn milli(v: &Value) -> Option<i64> {
    let q = Quantity::parse(v.as_str()?).ok()?;
    Some(q.milli_value().clamp(i64::MIN as i128, i64::MAX as i128) as i64)
}

fn pod_facts(p: &Pod) -> PodFacts {
    let status = p.status.as_ref();
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .map(|c| {
            (
                c.status == "True",
                c.last_transition_time
                    .as_ref()
                    .map_or(Timestamp::UNIX_EPOCH, |t| t.0),
            )
        });
    PodFacts {
        name: p.name_any(),
        phase: status.and_then(|s| s.phase.clone()).unwrap_or_default(),
        deleting: p.metadata.deletion_timestamp.is_some(),
        ready,
        start_time: status.and_then(|s| s.start_time.as_ref()).map(|t| t.0),
    }
}

/// Each pod's request of `resource` in milli-units, summed over its containers and sidecars
/// (or the one container asked for); a container without the request is an error.
fn pod_requests(
    pods: &[Arc<Pod>],
    resource: &str,
    container: Option<&str>,
) -> Result<BTreeMap<String, i64>, String> {
    let mut out = BTreeMap::new();
    for p in pods {
        let Some(spec) = p.spec.as_ref() else {
            continue;
        };
        let sidecars = spec
            .init_containers
            .iter()
            .flatten()
            .filter(|c| c.restart_policy.as_deref() == Some("Always"));
        let mut sum = 0i64;
        for c in spec.containers.iter().chain(sidecars) {
            if container.is_some_and(|name| name != c.name) {
                continue;
            }
            let request = c
                .resources
                .as_ref()
                .and_then(|r| r.requests.as_ref())
                .and_then(|r| r.get(resource))
                .and_then(|q| Quantity::parse(&q.0).ok());
            match request {
                Some(q) => sum += q.milli_value() as i64,
                None => {
                    return Err(format!(
                        "missing request for {resource} in container {} of Pod {}",
                        c.name,
                        p.name_any()
                    ))
                }
            }
        }
        out.insert(p.name_any(), sum);
    }
    Ok(out)
}

/// The message of an API error as the API server wrote it.
fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

#[async_trait::async_trait]
impl Reconciler for HpaController {
    fn name(&self) -> &'static str {
        CONTROLLER_NAME
    }

    async fn sync(&self, key: &str) -> anyhow::Result<Requeue> {
        let (ns, name) = split_key(key);
        let Some(cached) = self.hpas.get(ns, name) else {
            self.histories.lock().remove(key);
            return Ok(Requeue::No);
        };
        if let Err(e) = self.reconcile(&cached, key).await {
            if runtime::is_conflict(&e) {
                return Err(e);
            }
            // Upstream logs the error and tries again at the next period.
            tracing::debug!(hpa = key, error = %format!("{e:#}"), "HPA sync did not finish");
        }
        Ok(Requeue::After(self.sync_period))
    }
}

impl Controller for HpaController {
    fn name(&self) -> &'static str {
        "horizontalpodautoscaling"
    }

    fn run(self: Arc<Self>) -> Vec<JoinHandle<()>> {
        let q = self.queue.clone();
        runtime::run_workers(self, q, 5)
    }

    fn shut_down(&self) {
        self.queue.shut_down();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_include_sidecars_and_name_the_container_without_one() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "web-1"},
            "spec": {
                "initContainers": [
                    {"name": "side", "restartPolicy": "Always", "resources": {"requests": {"cpu": "50m"}}},
                    {"name": "setup"},
                ],
                "containers": [{"name": "app", "resources": {"requests": {"cpu": "200m"}}}],
            },
        }))
        .unwrap();
        let pods = vec![Arc::new(pod)];
        assert_eq!(pod_requests(&pods, "cpu", None).unwrap()["web-1"], 250);
        assert_eq!(
            pod_requests(&pods, "cpu", Some("app")).unwrap()["web-1"],
            200
        );
        assert_eq!(
            pod_requests(&pods, "memory", None).unwrap_err(),
            "missing request for memory in container app of Pod web-1"
        );
    }

    #[test]
    fn conditions_keep_their_transition_time_while_the_status_holds() {
        let mut list = Vec::new();
        set_condition(
            &mut list,
            "AbleToScale",
            "True",
            "SucceededGetScale",
            "a".into(),
        );
        let first = list[0].last_transition_time.clone();
        list[0].last_transition_time = None;
        set_condition(
            &mut list,
            "AbleToScale",
            "True",
            "ReadyForNewScale",
            "b".into(),
        );
        assert_eq!(list[0].last_transition_time, None, "same status: unchanged");
        set_condition(
            &mut list,
            "AbleToScale",
            "False",
            "FailedGetScale",
            "c".into(),
        );
        assert!(list[0].last_transition_time.is_some());
        assert!(first.is_some());
        set_condition(
            &mut list,
            "ScalingActive",
            "True",
            "ValidMetricFound",
            "d".into(),
        );
        assert_eq!(
            list.iter().map(|c| c.type_.as_str()).collect::<Vec<_>>(),
            ["AbleToScale", "ScalingActive"]
        );
    }

    #[test]
    fn behavior_rules_fill_in_defaults() {
        let r = rules(
            Some(&HPAScalingRules {
                stabilization_window_seconds: Some(60),
                select_policy: None,
                policies: None,
            }),
            Rules::default_up(),
        );
        assert_eq!(r.stabilization, Duration::from_secs(60));
        assert_eq!(r.policies, Rules::default_up().policies);
        let d = rules(None, Rules::default_down(Duration::from_secs(300)));
        assert_eq!(d.stabilization, Duration::from_secs(300));
        assert_eq!(milli_quantity(140), "140m");
        assert_eq!(milli_quantity(4_194_304_000), "4194304");
    }
}
