//! The controller-manager: builds every enabled controller on one set of shared informers,
//! starts the watches, waits for the caches to fill, then runs the workers until told to stop.
//! With leader election configured, all of that happens only while holding the
//! kube-system/kube-controller-manager Lease.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::config::ControllerConfig;
use super::runtime::{InformerSet, SharedInformers};
use crate::leaderelection::{LeaderElectionError, LeaderElector};

/// What every controller is built from.
pub struct Context {
    pub client: kube::Client,
    pub informers: Arc<SharedInformers>,
    pub cfg: Arc<ControllerConfig>,
}

impl Context {
    /// The client a controller writes with: its service account's when the manager was given
    /// one (least privilege, as upstream's `--use-service-account-credentials`), else the
    /// manager's own.
    pub fn client_for(&self, service_account: &str) -> kube::Client {
        self.cfg
            .service_account_clients
            .0
            .get(service_account)
            .cloned()
            .unwrap_or_else(|| self.client.clone())
    }
}

/// A controller the manager can run: `run` spawns its workers (and any timers) once the
/// informers are in sync; `shut_down` makes them return.
pub trait Controller: Send + Sync {
    fn name(&self) -> &'static str;
    fn run(self: Arc<Self>) -> Vec<JoinHandle<()>>;
    fn shut_down(&self);
}

/// Runs the controller-manager until `shutdown` turns true. Returns an error if leadership
/// was lost (upstream exits then; a caller may start over as a candidate).
pub async fn run_controller_manager(
    client: kube::Client,
    cfg: ControllerConfig,
    shutdown: watch::Receiver<bool>,
) -> Result<()> {
    match cfg.leader_election.clone() {
        None => run_controllers(client, cfg, shutdown).await,
        Some(le) => {
            let elector = LeaderElector::new(client.clone(), le)?;
            match elector
                .run(shutdown, |stop| run_controllers(client, cfg, stop))
                .await
            {
                Ok(()) => Ok(()),
                Err(LeaderElectionError::Lost) => {
                    anyhow::bail!("leaderelection lost for kube-system/kube-controller-manager")
                }
                Err(e) => Err(e.into()),
            }
        }
    }
}

/// Builds the enabled controllers (registering their informers and handlers).
pub fn build_controllers(ctx: &Context) -> Vec<(Arc<dyn Controller>, InformerSet)> {
    use super::replicaset::{ReplicaKind, ReplicaSetController};
    let cfg = &ctx.cfg;
    ctx.informers.track();
    let mut out = Tracked {
        ctx,
        built: Vec::new(),
    };
    if cfg.enabled("replicaset") {
        out.push(ReplicaSetController::new(ctx, ReplicaKind::ReplicaSet));
    }
    if cfg.enabled("deployment") {
        out.push(super::deployment::DeploymentController::new(ctx));
    }
    if cfg.enabled("replicationcontroller") {
        out.push(ReplicaSetController::new(
            ctx,
            ReplicaKind::ReplicationController,
        ));
    }
    if cfg.enabled("serviceaccount") {
        out.push(super::serviceaccount::ServiceAccountController::new(ctx));
    }
    if cfg.enabled("root-ca-cert-publisher") {
        if let Some(c) = super::rootca::RootCaPublisher::new(ctx) {
            out.push(c);
        }
    }
    if cfg.enabled("endpoint") {
        out.push(super::endpoints::EndpointsController::new(ctx));
    }
    if cfg.enabled("endpointslice") {
        out.push(super::endpointslice::EndpointSliceController::new(ctx));
    }
    if cfg.enabled("kubernetes-service-endpoints") {
        if let Some(c) = super::apiserver_endpoints::ApiServerEndpoints::new(ctx) {
            out.push(c);
        }
    }
    if cfg.enabled("job") {
        out.push(super::job::JobController::new(ctx));
    }
    if cfg.enabled("ttl-after-finished") {
        out.push(super::ttl_after_finished::TtlAfterFinished::new(ctx));
    }
    if cfg.enabled("cronjob") {
        out.push(super::cronjob::CronJobController::new(ctx));
    }
    if cfg.enabled("nodelifecycle") {
        out.push(super::nodelifecycle::NodeLifecycle::new(ctx));
    }
    if cfg.enabled("statefulset") {
        out.push(super::statefulset::StatefulSetController::new(ctx));
    }
    if cfg.enabled("daemonset") {
        out.push(super::daemonset::DaemonSetController::new(ctx));
    }
    if cfg.enabled("disruption") {
        out.push(super::disruption::DisruptionController::new(ctx));
    }
    if cfg.enabled("persistentvolume-binder") {
        out.push(super::persistentvolume::PersistentVolumeBinder::new(ctx));
    }
    if cfg.enabled("horizontalpodautoscaling") {
        out.push(super::hpa::HpaController::new(ctx));
    }
    let _ = ctx.informers.tracked();
    out.built
}

/// Collects controllers with the informers each asked for while being built.
struct Tracked<'a> {
    ctx: &'a Context,
    built: Vec<(Arc<dyn Controller>, InformerSet)>,
}

impl Tracked<'_> {
    fn push(&mut self, c: Arc<dyn Controller>) {
        let set = self.ctx.informers.tracked();
        self.built.push((c, set));
        self.ctx.informers.track();
    }
}

/// Runs every enabled controller without leader election. Each controller starts its workers
/// once the informers it uses have listed everything.
pub async fn run_controllers(
    client: kube::Client,
    cfg: ControllerConfig,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    let ctx = Context {
        informers: SharedInformers::new(client.clone()),
        client,
        cfg: Arc::new(cfg),
    };
    let controllers = build_controllers(&ctx);
    let watches = ctx.informers.start(&stop);
    let mut runners = Vec::new();
    for (c, informers) in &controllers {
        let (c, informers, mut stop) = (c.clone(), informers.clone(), stop.clone());
        runners.push(tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            let mut warned = false;
            while !informers.synced() {
                if *stop.borrow() {
                    return;
                }
                if !warned && started.elapsed() > Duration::from_secs(30) {
                    warned = true;
                    tracing::warn!(controller = c.name(), pending = ?informers.pending(), "still waiting for informers to sync");
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                    r = stop.changed() => if r.is_err() { return },
                }
            }
            tracing::debug!(controller = c.name(), "caches synced; starting workers");
            for t in c.run() {
                let _ = t.await;
            }
        }));
    }
    tracing::info!(
        controllers = ?controllers.iter().map(|(c, _)| c.name()).collect::<Vec<_>>(),
        "controller-manager started"
    );
    while !*stop.borrow() {
        if stop.changed().await.is_err() {
            break;
        }
    }
    for (c, _) in &controllers {
        c.shut_down();
    }
    for t in runners {
        // A worker in the middle of a sync finishes it; one stuck on the network does not
        // hold the shutdown up.
        if tokio::time::timeout(Duration::from_secs(5), t)
            .await
            .is_err()
        {
            tracing::debug!("controller task did not stop in time");
        }
    }
    for w in watches {
        w.abort();
    }
    Ok(())
}
