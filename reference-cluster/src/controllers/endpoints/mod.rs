//! The Endpoints controller: for every Service with a selector, an Endpoints object of the
//! same name listing the selected pods' addresses per port, ready ones under `addresses` and
//! the others under `notReadyAddresses` (all under `addresses` with publishNotReadyAddresses),
//! capped at 1000 addresses with the `endpoints.kubernetes.io/over-capacity` annotation.

pub mod common;
pub mod repack;

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, ResourceExt};
use tokio::task::JoinHandle;

use self::common::*;
use super::manager::{Context, Controller};
use super::runtime::{
    self, key_of, pods, split_key, Change, Informer, Reconciler, Requeue, WorkQueue,
};

pub const LAST_CHANGE_TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";
pub const OVER_CAPACITY: &str = "endpoints.kubernetes.io/over-capacity";
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";
/// Endpoints used as leader-election locks are not the controller's to garbage-collect.
const LEADER_ANNOTATION: &str = "control-plane.alpha.kubernetes.io/leader";

pub struct EndpointsController {
    client: kube::Client,
    services: Informer<Service>,
    pods: Informer<Pod>,
    endpoints: Informer<Endpoints>,
    queue: Arc<WorkQueue<String>>,
    workers: usize,
    max_addresses: usize,
    /// The `endpoints-include-unready` fault: every pod is listed as ready.
    include_unready: bool,
}

impl EndpointsController {
    pub fn new(ctx: &Context) -> Arc<Self> {
        let this = Arc::new(EndpointsController {
            client: ctx.client_for("endpoint-controller"),
            services: ctx.informers.get::<Service>(),
            pods: ctx.informers.get::<Pod>(),
            endpoints: ctx.informers.get::<Endpoints>(),
            queue: WorkQueue::new(ctx.cfg.backoff),
            workers: ctx.cfg.endpoint_workers,
            max_addresses: ctx.cfg.max_endpoints_per_endpoints.max(1),
            include_unready: ctx
                .cfg
                .faults
                .contains(crate::faults::Fault::EndpointsIncludeUnready),
        });
        let q = this.queue.clone();
        this.services.add_handler(move |c| match c {
            Change::Add(s) | Change::Delete(s) => q.add(key_of(s.as_ref())),
            Change::Update { new, .. } => q.add(key_of(new.as_ref())),
        });
        let w: Weak<Self> = Arc::downgrade(&this);
        this.pods.add_handler(move |c| {
            let Some(this) = w.upgrade() else { return };
            for k in services_for_pod_change(c, &this.services) {
                this.queue.add(k);
            }
        });
        let q = this.queue.clone();
        let informer = this.endpoints.clone();
        this.endpoints.add_handler(move |c| match c {
            // A deleted Endpoints object of a selector service comes back.
            Change::Delete(e) => q.add(key_of(e.as_ref())),
            // Leftovers from before a restart, whose Service is gone, are removed (upstream
            // `checkLeftoverEndpoints`); Endpoints created later without a Service are the
            // user's (selector-less services are filled by hand).
            Change::Add(e) if !informer.has_synced() => q.add(key_of(e.as_ref())),
            _ => {}
        });
        this
    }

    /// The subsets the Service's pods call for.
    fn desired_subsets(&self, svc: &Service) -> Vec<EndpointSubset> {
        let tolerate_unready = publish_not_ready(svc);
        let ports = svc
            .spec
            .as_ref()
            .and_then(|s| s.ports.clone())
            .unwrap_or_default();
        let mut subsets = Vec::new();
        for pod in pods_for_service(svc, &self.pods) {
            if !should_pod_be_in_endpoints(&pod, tolerate_unready) {
                continue;
            }
            let Some(ip) = pod_ipv4(&pod) else { continue };
            let mut addr = EndpointAddress {
                ip,
                node_name: pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.node_name.clone())
                    .filter(|n| !n.is_empty()),
                target_ref: Some(ObjectReference {
                    kind: Some("Pod".into()),
                    namespace: pod.namespace(),
                    name: Some(pod.name_any()),
                    uid: pod.uid(),
                    ..Default::default()
                }),
                hostname: None,
            };
            if should_set_hostname(&pod, svc) {
                addr.hostname = pod.spec.as_ref().and_then(|s| s.hostname.clone());
            }
            let ready = tolerate_unready || self.include_unready || pods::is_ready(&pod);
            let subset = |port: Option<EndpointPort>| EndpointSubset {
                addresses: ready.then(|| vec![addr.clone()]),
                not_ready_addresses: (!ready).then(|| vec![addr.clone()]),
                ports: port.map(|p| vec![p]),
            };
            if ports.is_empty() {
                // Headless services may have no ports at all.
                if is_headless(svc) {
                    subsets.push(subset(None));
                }
                continue;
            }
            for sp in &ports {
                let Some(n) = find_port(&pod, sp) else {
                    continue;
                };
                subsets.push(subset(Some(EndpointPort {
                    name: sp.name.clone(),
                    port: n,
                    protocol: Some(sp.protocol.clone().unwrap_or_else(|| "TCP".into())),
                    app_protocol: sp.app_protocol.clone(),
                })));
            }
        }
        repack::repack(subsets)
    }

    /// When the newest change in the selected pods happened (their readiness or creation),
    /// as the `last-change-trigger-time` annotation reports it.
    fn trigger_time(&self, svc: &Service) -> Option<String> {
        let mut times: Vec<k8s_openapi::jiff::Timestamp> = pods_for_service(svc, &self.pods)
            .iter()
            .filter_map(|p| {
                let ready = p
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
                    .and_then(|c| c.last_transition_time.as_ref().map(|t| t.0));
                ready.or_else(|| p.metadata.creation_timestamp.as_ref().map(|t| t.0))
            })
            .collect();
        times.extend(svc.metadata.creation_timestamp.as_ref().map(|t| t.0));
        times.into_iter().max().map(|t| t.to_string())
    }
}

fn labels_without_headless(l: &Option<BTreeMap<String, String>>) -> BTreeMap<String, String> {
    let mut l = l.clone().unwrap_or_default();
    l.remove(HEADLESS_LABEL);
    l
}

fn capacity_annotation_correct(e: &Endpoints, max: usize) -> bool {
    let n: usize = e
        .subsets
        .iter()
        .flatten()
        .map(|s| {
            s.addresses.as_ref().map_or(0, Vec::len)
                + s.not_ready_addresses.as_ref().map_or(0, Vec::len)
        })
        .sum();
    if n > max {
        return false;
    }
    !e.metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(OVER_CAPACITY))
}

#[async_trait::async_trait]
impl Reconciler for EndpointsController {
    fn name(&self) -> &'static str {
        "endpoint-controller"
    }

    async fn sync(&self, key: &str) -> anyhow::Result<Requeue> {
        let (ns, name) = split_key(key);
        let api: Api<Endpoints> = Api::namespaced(self.client.clone(), ns);
        let Some(svc) = self.services.get(ns, name) else {
            // The Service is gone: so are its Endpoints (unless they are a leader lock).
            if let Some(e) = self.endpoints.get(ns, name) {
                let lock = e
                    .metadata
                    .annotations
                    .as_ref()
                    .is_some_and(|a| a.contains_key(LEADER_ANNOTATION));
                if !lock {
                    match api.delete(name, &DeleteParams::default()).await {
                        Ok(_) => {}
                        Err(e) if runtime::is_not_found(&e) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            return Ok(Requeue::No);
        };
        let spec = svc.spec.clone().unwrap_or_default();
        if spec.type_.as_deref() == Some("ExternalName") || spec.selector.is_none() {
            return Ok(Requeue::No);
        }
        let mut subsets = self.desired_subsets(&svc);
        let current = self.endpoints.get(ns, name);
        let service_labels = svc.metadata.labels.clone().unwrap_or_default();
        if let Some(cur) = &current {
            let same = repack::equal_ignoring_resource_version(
                cur.subsets.as_deref().unwrap_or_default(),
                &subsets,
            ) && labels_without_headless(&cur.metadata.labels) == service_labels
                && capacity_annotation_correct(cur, self.max_addresses);
            if same {
                return Ok(Requeue::No);
            }
        }
        let mut e = current.as_deref().cloned().unwrap_or_else(|| Endpoints {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some(ns.to_string()),
                ..Default::default()
            },
            subsets: None,
        });
        let annotations = e.metadata.annotations.get_or_insert_with(BTreeMap::new);
        match self.trigger_time(&svc) {
            Some(t) => annotations.insert(LAST_CHANGE_TRIGGER_TIME.into(), t),
            None => annotations.remove(LAST_CHANGE_TRIGGER_TIME),
        };
        if repack::truncate(&mut subsets, self.max_addresses) {
            annotations.insert(OVER_CAPACITY.into(), "truncated".into());
        } else {
            annotations.remove(OVER_CAPACITY);
        }
        let mut labels = service_labels;
        if is_headless(&svc) {
            labels.insert(HEADLESS_LABEL.into(), String::new());
        }
        e.metadata.labels = Some(labels);
        e.subsets = (!subsets.is_empty()).then_some(subsets);
        let result = match current {
            None => api.create(&PostParams::default(), &e).await.map(|_| ()),
            Some(_) => api
                .replace(name, &PostParams::default(), &e)
                .await
                .map(|_| ()),
        };
        match result {
            Ok(()) => Ok(Requeue::No),
            Err(e) if runtime::is_namespace_terminating(&e) => Ok(Requeue::No),
            Err(e) => Err(e.into()),
        }
    }
}

impl Controller for EndpointsController {
    fn name(&self) -> &'static str {
        "endpoint"
    }

    fn run(self: Arc<Self>) -> Vec<JoinHandle<()>> {
        let (q, w) = (self.queue.clone(), self.workers);
        runtime::run_workers(self, q, w)
    }

    fn shut_down(&self) {
        self.queue.shut_down();
    }
}
