//! The root CA publisher: a `kube-root-ca.crt` ConfigMap with the cluster CA under `ca.crt`
//! in every namespace, so pods can verify the API server (their projected service account
//! volume mounts it). Edits to the ConfigMap are reverted; a deleted one is recreated.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::PostParams;
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use tokio::task::JoinHandle;

use super::manager::{Context, Controller};
use super::runtime::{self, Change, Informer, Reconciler, Requeue, WorkQueue};

pub const CONFIGMAP_NAME: &str = "kube-root-ca.crt";
pub const DATA_KEY: &str = "ca.crt";
const DESCRIPTION_ANNOTATION: &str = "kubernetes.io/description";
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

pub struct RootCaPublisher {
    client: kube::Client,
    ca_pem: String,
    namespaces: Informer<Namespace>,
    configmaps: Informer<ConfigMap>,
    queue: Arc<WorkQueue<String>>,
}

impl RootCaPublisher {
    /// `None` when no CA is configured (nothing to publish).
    pub fn new(ctx: &Context) -> Option<Arc<Self>> {
        let ca_pem = ctx.cfg.root_ca_pem.clone()?;
        let configmaps = ctx.informers.get_with::<ConfigMap>(
            "root-ca",
            watcher::Config::default().fields(&format!("metadata.name={CONFIGMAP_NAME}")),
        );
        let this = Arc::new(RootCaPublisher {
            client: ctx.client_for("root-ca-cert-publisher"),
            ca_pem,
            namespaces: ctx.informers.get::<Namespace>(),
            configmaps,
            queue: WorkQueue::new(ctx.cfg.backoff),
        });
        let q = this.queue.clone();
        this.namespaces.add_handler(move |c| match c {
            Change::Add(ns) => q.add(ns.name_any()),
            Change::Update { new, .. } => q.add(new.name_any()),
            Change::Delete(_) => {}
        });
        let q = this.queue.clone();
        this.configmaps.add_handler(move |c| match c {
            Change::Update { new: cm, .. } | Change::Delete(cm) => {
                if cm.name_any() == CONFIGMAP_NAME {
                    q.add(cm.namespace().unwrap_or_default());
                }
            }
            Change::Add(_) => {}
        });
        Some(this)
    }

    fn wanted_data(&self) -> BTreeMap<String, String> {
        [(DATA_KEY.to_string(), self.ca_pem.clone())].into()
    }
}

#[async_trait::async_trait]
impl Reconciler for RootCaPublisher {
    fn name(&self) -> &'static str {
        "root-ca-cert-publisher"
    }

    async fn sync(&self, ns: &str) -> anyhow::Result<Requeue> {
        let Some(namespace) = self.namespaces.get("", ns) else {
            return Ok(Requeue::No);
        };
        if namespace.metadata.deletion_timestamp.is_some() {
            return Ok(Requeue::No);
        }
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), ns);
        let data = self.wanted_data();
        match self.configmaps.get(ns, CONFIGMAP_NAME) {
            None => {
                let cm = ConfigMap {
                    metadata: ObjectMeta {
                        name: Some(CONFIGMAP_NAME.into()),
                        annotations: Some(
                            [(DESCRIPTION_ANNOTATION.to_string(), DESCRIPTION.to_string())].into(),
                        ),
                        ..Default::default()
                    },
                    data: Some(data),
                    ..Default::default()
                };
                match api.create(&PostParams::default(), &cm).await {
                    Ok(_) => {}
                    Err(e)
                        if runtime::is_already_exists(&e)
                            || runtime::is_namespace_terminating(&e) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Some(cm) => {
                let described = cm
                    .metadata
                    .annotations
                    .as_ref()
                    .is_some_and(|a| a.contains_key(DESCRIPTION_ANNOTATION));
                if cm.data.as_ref() == Some(&data) && described {
                    return Ok(Requeue::No);
                }
                let mut cm = (*cm).clone();
                cm.data = Some(data);
                cm.binary_data = None;
                cm.metadata
                    .annotations
                    .get_or_insert_with(BTreeMap::new)
                    .insert(DESCRIPTION_ANNOTATION.into(), DESCRIPTION.into());
                api.replace(CONFIGMAP_NAME, &PostParams::default(), &cm)
                    .await?;
            }
        }
        Ok(Requeue::No)
    }
}

impl Controller for RootCaPublisher {
    fn name(&self) -> &'static str {
        "root-ca-cert-publisher"
    }

    fn run(self: Arc<Self>) -> Vec<JoinHandle<()>> {
        let q = self.queue.clone();
        runtime::run_workers(self, q, 1)
    }

    fn shut_down(&self) {
        self.queue.shut_down();
    }
}
