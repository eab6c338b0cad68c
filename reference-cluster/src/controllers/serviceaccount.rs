//! The ServiceAccount controller: every active namespace has a `default` ServiceAccount
//! (recreated if deleted). Pods cannot be admitted in a namespace until it exists.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::PostParams;
use kube::{Api, ResourceExt};
use tokio::task::JoinHandle;

use super::manager::{Context, Controller};
use super::runtime::{self, Change, Informer, Reconciler, Requeue, WorkQueue};

/// The accounts every namespace gets (upstream's `--service-account` default list).
const ENSURED: &[&str] = &["default"];

pub struct ServiceAccountController {
    client: kube::Client,
    namespaces: Informer<Namespace>,
    accounts: Informer<ServiceAccount>,
    queue: Arc<WorkQueue<String>>,
    workers: usize,
}

impl ServiceAccountController {
    pub fn new(ctx: &Context) -> Arc<Self> {
        let this = Arc::new(ServiceAccountController {
            client: ctx.client_for("service-account-controller"),
            namespaces: ctx.informers.get::<Namespace>(),
            accounts: ctx.informers.get::<ServiceAccount>(),
            queue: WorkQueue::new(ctx.cfg.backoff),
            workers: ctx.cfg.serviceaccount_workers,
        });
        let q = this.queue.clone();
        this.namespaces.add_handler(move |c| match c {
            Change::Add(ns) => q.add(ns.name_any()),
            Change::Update { new, .. } => q.add(new.name_any()),
            Change::Delete(_) => {}
        });
        let q = this.queue.clone();
        this.accounts.add_handler(move |c| {
            if let Change::Delete(sa) = c {
                if ENSURED.contains(&sa.name_any().as_str()) {
                    q.add(sa.namespace().unwrap_or_default());
                }
            }
        });
        this
    }
}

#[async_trait::async_trait]
impl Reconciler for ServiceAccountController {
    fn name(&self) -> &'static str {
        "serviceaccount-controller"
    }

    async fn sync(&self, ns: &str) -> anyhow::Result<Requeue> {
        let Some(namespace) = self.namespaces.get("", ns) else {
            return Ok(Requeue::No);
        };
        let active = namespace.metadata.deletion_timestamp.is_none()
            && namespace
                .status
                .as_ref()
                .and_then(|s| s.phase.as_deref())
                .unwrap_or("Active")
                == "Active";
        if !active {
            return Ok(Requeue::No);
        }
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), ns);
        for name in ENSURED {
            if self.accounts.get(ns, name).is_some() {
                continue;
            }
            let sa = ServiceAccount {
                metadata: ObjectMeta {
                    name: Some(name.to_string()),
                    ..Default::default()
                },
                ..Default::default()
            };
            match api.create(&PostParams::default(), &sa).await {
                Ok(_) => {}
                Err(e)
                    if runtime::is_already_exists(&e) || runtime::is_namespace_terminating(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Requeue::No)
    }
}

impl Controller for ServiceAccountController {
    fn name(&self) -> &'static str {
        "serviceaccount"
    }

    fn run(self: Arc<Self>) -> Vec<JoinHandle<()>> {
        let (q, w) = (self.queue.clone(), self.workers);
        runtime::run_workers(self, q, w)
    }

    fn shut_down(&self) {
        self.queue.shut_down();
    }
}
