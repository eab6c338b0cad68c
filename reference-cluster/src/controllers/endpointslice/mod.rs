//! The EndpointSlice controller: for every Service with a selector, EndpointSlices labelled
//! `kubernetes.io/service-name` and managed by `endpointslice-controller.k8s.io`, owned by the
//! Service, holding at most `--max-endpoints-per-slice` (100) endpoints each. Every selected pod
//! with an IP appears, terminating ones included, with conditions ready (serving and not
//! terminating, or always with publishNotReadyAddresses), serving (the pod is ready) and
//! terminating.

pub mod reconcile;

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};

use k8s_openapi::api::core::v1::{Node, ObjectReference, Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, ResourceExt};
use tokio::task::JoinHandle;

use self::reconcile::*;
use super::endpoints::common::*;
use super::manager::{Context, Controller};
use super::runtime::{
    self, key_of, pods, split_key, Change, Informer, Reconciler, Requeue, WorkQueue,
};

const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
const TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";

pub struct EndpointSliceController {
    client: kube::Client,
    services: Informer<Service>,
    pods: Informer<Pod>,
    nodes: Informer<Node>,
    slices: Informer<EndpointSlice>,
    queue: Arc<WorkQueue<String>>,
    workers: usize,
    max_per_slice: usize,
    /// The `endpoints-include-unready` fault: every endpoint is marked ready.
    include_unready: bool,
    /// Slices created per Service that the informer has not shown yet (upstream's
    /// endpointSliceTracker): planning from a cache without them would create them again.
    unseen: parking_lot::Mutex<BTreeMap<String, Vec<(String, std::time::Instant)>>>,
}

/// How soon a sync that found the slice cache behind is tried again.
const STALE_CACHE_RETRY: std::time::Duration = std::time::Duration::from_millis(200);
/// How long a created slice may stay unseen before it is assumed gone (deleted meanwhile).
const UNSEEN_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

impl EndpointSliceController {
    pub fn new(ctx: &Context) -> Arc<Self> {
        let this = Arc::new(EndpointSliceController {
            client: ctx.client_for("endpointslice-controller"),
            services: ctx.informers.get::<Service>(),
            pods: ctx.informers.get::<Pod>(),
            nodes: ctx.informers.get::<Node>(),
            slices: ctx.informers.get::<EndpointSlice>(),
            queue: WorkQueue::new(ctx.cfg.backoff),
            workers: ctx.cfg.endpoint_workers,
            max_per_slice: ctx.cfg.max_endpoints_per_slice.max(1),
            include_unready: ctx
                .cfg
                .faults
                .contains(crate::faults::Fault::EndpointsIncludeUnready),
            unseen: Default::default(),
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
        // Someone else's edit (or deletion) of a managed slice is put right.
        let q = this.queue.clone();
        this.slices.add_handler(move |c| {
            let s = match c {
                Change::Add(s) | Change::Delete(s) => s,
                Change::Update { new, .. } => new,
            };
            let labels = s.metadata.labels.as_ref();
            if labels
                .and_then(|l| l.get(LABEL_MANAGED_BY))
                .map(String::as_str)
                != Some(CONTROLLER_NAME)
            {
                return;
            }
            if let Some(svc) = labels.and_then(|l| l.get(LABEL_SERVICE_NAME)) {
                q.add(format!("{}/{svc}", s.namespace().unwrap_or_default()));
            }
        });
        this
    }

    fn endpoint_for(&self, pod: &Pod, svc: &Service) -> Option<Endpoint> {
        let ip = pod_ipv4(pod)?;
        let serving = pods::is_ready(pod);
        let terminating = pod.metadata.deletion_timestamp.is_some();
        let ready = publish_not_ready(svc) || self.include_unready || (serving && !terminating);
        let node_name = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty());
        let zone = node_name
            .as_ref()
            .and_then(|n| self.nodes.get("", n))
            .and_then(|n| {
                n.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(ZONE_LABEL).cloned())
            })
            .filter(|z| !z.is_empty());
        Some(Endpoint {
            addresses: vec![ip],
            conditions: Some(EndpointConditions {
                ready: Some(ready),
                serving: Some(serving),
                terminating: Some(terminating),
            }),
            target_ref: Some(ObjectReference {
                kind: Some("Pod".into()),
                namespace: pod.namespace(),
                name: Some(pod.name_any()),
                uid: pod.uid(),
                ..Default::default()
            }),
            node_name,
            zone,
            hostname: should_set_hostname(pod, svc)
                .then(|| pod.spec.as_ref().and_then(|s| s.hostname.clone()))
                .flatten(),
            ..Default::default()
        })
    }

    fn endpoint_ports(&self, pod: &Pod, svc: &Service) -> Vec<EndpointPort> {
        let ports = svc
            .spec
            .as_ref()
            .and_then(|s| s.ports.clone())
            .unwrap_or_default();
        ports
            .iter()
            .filter_map(|sp| {
                let n = find_port(pod, sp)?;
                Some(EndpointPort {
                    name: Some(sp.name.clone().unwrap_or_default()),
                    port: Some(n),
                    protocol: Some(sp.protocol.clone().unwrap_or_else(|| "TCP".into())),
                    app_protocol: sp.app_protocol.clone(),
                })
            })
            .collect()
    }
}

impl EndpointSliceController {
    /// Whether a slice this controller created for `key` is still missing from `existing`.
    fn cache_is_behind(&self, key: &str, existing: &[Arc<EndpointSlice>]) -> bool {
        let mut unseen = self.unseen.lock();
        let Some(names) = unseen.get_mut(key) else {
            return false;
        };
        names.retain(|(name, at)| {
            at.elapsed() < UNSEEN_LIMIT
                && !existing
                    .iter()
                    .any(|s| s.metadata.name.as_deref() == Some(name.as_str()))
        });
        if names.is_empty() {
            unseen.remove(key);
            return false;
        }
        true
    }
}

#[async_trait::async_trait]
impl Reconciler for EndpointSliceController {
    fn name(&self) -> &'static str {
        "endpointslice-controller"
    }

    async fn sync(&self, key: &str) -> anyhow::Result<Requeue> {
        let (ns, name) = split_key(key);
        // Slices of a deleted Service go with it (they are owned by it).
        let Some(svc) = self.services.get(ns, name) else {
            return Ok(Requeue::No);
        };
        let spec = svc.spec.clone().unwrap_or_default();
        if spec.type_.as_deref() == Some("ExternalName") || spec.selector.is_none() {
            return Ok(Requeue::No);
        }
        let mut desired: BTreeMap<PortKey, Desired> = BTreeMap::new();
        let mut missing_node = false;
        for pod in pods_for_service(&svc, &self.pods) {
            if !should_pod_be_in_endpoints(&pod, true) {
                continue;
            }
            let node = pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .filter(|n| !n.is_empty());
            if let Some(n) = node {
                if self.nodes.get("", &n).is_none() && !publish_not_ready(&svc) {
                    // Left out until its node shows up (or the pod is collected).
                    missing_node = true;
                    continue;
                }
            }
            let ports = self.endpoint_ports(&pod, &svc);
            let Some(ep) = self.endpoint_for(&pod, &svc) else {
                continue;
            };
            let entry = desired.entry(port_key(&ports)).or_insert_with(|| Desired {
                ports,
                ..Default::default()
            });
            entry.endpoints.insert(endpoint_key(&ep), ep);
        }
        let existing: Vec<Arc<EndpointSlice>> = self
            .slices
            .list_namespace(ns)
            .into_iter()
            .filter(|s| {
                let l = s.metadata.labels.as_ref();
                l.and_then(|l| l.get(LABEL_SERVICE_NAME))
                    .map(String::as_str)
                    == Some(name)
                    && l.and_then(|l| l.get(LABEL_MANAGED_BY)).map(String::as_str)
                        == Some(CONTROLLER_NAME)
            })
            .collect();
        if self.cache_is_behind(key, &existing) {
            return Ok(Requeue::After(STALE_CACHE_RETRY));
        }
        let plan = plan(&svc, desired, &existing, self.max_per_slice, "IPv4");
        let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), ns);
        let now = runtime::events::now_time().0.to_string();
        let stamp = |mut s: EndpointSlice| {
            s.metadata
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(TRIGGER_TIME.into(), now.clone());
            s
        };
        if svc.metadata.deletion_timestamp.is_none() {
            for s in plan.create {
                match api.create(&PostParams::default(), &stamp(s)).await {
                    Ok(created) => self
                        .unseen
                        .lock()
                        .entry(key.to_string())
                        .or_default()
                        .push((created.name_any(), std::time::Instant::now())),
                    Err(e) if runtime::is_namespace_terminating(&e) => return Ok(Requeue::No),
                    Err(e) => {
                        return Err(anyhow::Error::new(e)
                            .context(format!("failed to create EndpointSlice for Service {key}")))
                    }
                }
            }
        }
        for s in plan.update {
            let name = s.name_any();
            api.replace(&name, &PostParams::default(), &stamp(s))
                .await
                .map_err(|e| {
                    anyhow::Error::new(e).context(format!(
                        "failed to update EndpointSlice {name} for Service {key}"
                    ))
                })?;
        }
        for s in plan.delete {
            match api.delete(&s.name_any(), &DeleteParams::default()).await {
                Ok(_) => {}
                Err(e) if runtime::is_not_found(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if missing_node {
            anyhow::bail!("some pods of Service {key} are on nodes that do not exist; retrying");
        }
        Ok(Requeue::No)
    }
}

impl Controller for EndpointSliceController {
    fn name(&self) -> &'static str {
        "endpointslice"
    }

    fn run(self: Arc<Self>) -> Vec<JoinHandle<()>> {
        let (q, w) = (self.queue.clone(), self.workers);
        runtime::run_workers(self, q, w)
    }

    fn shut_down(&self) {
        self.queue.shut_down();
    }
}
