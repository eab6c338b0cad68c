//! Endpoints and EndpointSlice of the `default/kubernetes` Service, which has no selector:
//! upstream the API server's endpoint reconciler writes them; here the controller-manager
//! keeps them pointing at the API server address it is configured with, checking every 10s
//! (upstream's `--endpoint-reconciler` interval).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset, Endpoints};
use k8s_openapi::api::discovery::v1::{
    Endpoint, EndpointConditions, EndpointPort as SlicePort, EndpointSlice,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::PostParams;
use kube::Api;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::manager::{Context, Controller};

const NAMESPACE: &str = "default";
const NAME: &str = "kubernetes";
const SKIP_MIRROR: &str = "endpointslice.kubernetes.io/skip-mirror";
const INTERVAL: Duration = Duration::from_secs(10);

pub struct ApiServerEndpoints {
    client: kube::Client,
    ip: IpAddr,
    port: u16,
    stop: Notify,
}

impl ApiServerEndpoints {
    pub fn new(ctx: &Context) -> Option<Arc<Self>> {
        let (ip, port) = ctx.cfg.apiserver_endpoint?;
        Some(Arc::new(ApiServerEndpoints {
            client: ctx.client_for(crate::controllers::config::APISERVER_IDENTITY),
            ip,
            port,
            stop: Notify::new(),
        }))
    }

    fn address_type(&self) -> &'static str {
        if self.ip.is_ipv6() {
            "IPv6"
        } else {
            "IPv4"
        }
    }

    pub fn desired_endpoints(&self) -> Endpoints {
        Endpoints {
            metadata: ObjectMeta {
                name: Some(NAME.into()),
                namespace: Some(NAMESPACE.into()),
                labels: Some([(SKIP_MIRROR.to_string(), "true".to_string())].into()),
                ..Default::default()
            },
            subsets: Some(vec![EndpointSubset {
                addresses: Some(vec![EndpointAddress {
                    ip: self.ip.to_string(),
                    ..Default::default()
                }]),
                not_ready_addresses: None,
                ports: Some(vec![EndpointPort {
                    name: Some("https".into()),
                    port: self.port as i32,
                    protocol: Some("TCP".into()),
                    app_protocol: None,
                }]),
            }]),
        }
    }

    pub fn desired_slice(&self) -> EndpointSlice {
        EndpointSlice {
            metadata: ObjectMeta {
                name: Some(NAME.into()),
                namespace: Some(NAMESPACE.into()),
                labels: Some([("kubernetes.io/service-name".to_string(), NAME.to_string())].into()),
                ..Default::default()
            },
            address_type: self.address_type().into(),
            endpoints: vec![Endpoint {
                addresses: vec![self.ip.to_string()],
                conditions: Some(EndpointConditions {
                    ready: Some(true),
                    serving: None,
                    terminating: None,
                }),
                ..Default::default()
            }],
            ports: Some(vec![SlicePort {
                name: Some("https".into()),
                port: Some(self.port as i32),
                protocol: Some("TCP".into()),
                app_protocol: None,
            }]),
        }
    }

    async fn reconcile(&self) -> anyhow::Result<()> {
        let eps: Api<Endpoints> = Api::namespaced(self.client.clone(), NAMESPACE);
        let want = self.desired_endpoints();
        match eps.get_opt(NAME).await? {
            None => {
                eps.create(&PostParams::default(), &want).await?;
            }
            Some(cur) => {
                let labels_ok = cur
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(SKIP_MIRROR))
                    .map(String::as_str)
                    == Some("true");
                if cur.subsets != want.subsets || !labels_ok {
                    let mut next = cur.clone();
                    next.subsets = want.subsets.clone();
                    next.metadata
                        .labels
                        .get_or_insert_with(BTreeMap::new)
                        .insert(SKIP_MIRROR.into(), "true".into());
                    eps.replace(NAME, &PostParams::default(), &next).await?;
                }
            }
        }
        let slices: Api<EndpointSlice> = Api::namespaced(self.client.clone(), NAMESPACE);
        let want = self.desired_slice();
        match slices.get_opt(NAME).await? {
            None => {
                slices.create(&PostParams::default(), &want).await?;
            }
            Some(cur) => {
                if cur.endpoints != want.endpoints
                    || cur.ports != want.ports
                    || cur.address_type != want.address_type
                {
                    let mut next = want.clone();
                    next.metadata = cur.metadata.clone();
                    next.metadata
                        .labels
                        .get_or_insert_with(BTreeMap::new)
                        .insert("kubernetes.io/service-name".into(), NAME.into());
                    slices.replace(NAME, &PostParams::default(), &next).await?;
                }
            }
        }
        Ok(())
    }
}

impl Controller for ApiServerEndpoints {
    fn name(&self) -> &'static str {
        "kubernetes-service-endpoints"
    }

    fn run(self: Arc<Self>) -> Vec<JoinHandle<()>> {
        vec![tokio::spawn(async move {
            loop {
                if let Err(e) = self.reconcile().await {
                    tracing::debug!(error = %format!("{e:#}"), "cannot reconcile the kubernetes service endpoints");
                }
                tokio::select! {
                    _ = tokio::time::sleep(INTERVAL) => {}
                    _ = self.stop.notified() => return,
                }
            }
        })]
    }

    fn shut_down(&self) {
        self.stop.notify_waiters();
        self.stop.notify_one();
    }
}
