//! Starting and stopping the bundled cluster: store, PKI, API server, built-in control loops,
//! bootstrap objects (including upstream's RBAC policy and flow-control configuration) and the
//! admin kubeconfig; kubeconfigs and clients for other identities; and the components beside
//! the API server (scheduler, controller-manager, simulated nodes), each an API client.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::apiserver::encrypted_store::EncryptedStore;
use crate::apiserver::registry::WriteOptions;
use crate::apiserver::{bootstrap_policy, informer, loops, ApiServer, ApiServerConfig};
use crate::control::ComponentControl;
use crate::controllers::ControllerConfig;
use crate::node::FleetConfig;
use crate::pki::{self, Pki};
use crate::scheduler::SchedulerConfig;
use crate::security::encryption::EncryptionConfig;
use crate::store::{self, Store};

/// Which storage backend the API server uses.
#[derive(Clone, Debug, Default)]
pub enum StoreConfig {
    /// The durable embedded store in `<data_dir>/store` (the default).
    #[default]
    Embedded,
    /// In memory only: nothing survives a restart (tests).
    Memory,
    /// etcd v3 at these endpoints.
    Etcd(Vec<String>),
}

/// Everything configurable about the bundled cluster; defaults are upstream's.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub data_dir: PathBuf,
    pub bind: IpAddr,
    /// 0: any free port.
    pub api_port: u16,
    /// Node objects to register (the node stack comes with part 3).
    pub nodes: u32,
    pub store: StoreConfig,
    pub apiserver: ApiServerConfig,
    /// Events kept for watch replay.
    pub watch_window: usize,
    /// How often history is compacted (upstream: 5 minutes).
    pub compaction_interval: Duration,
    /// How often the namespace controller re-lists namespaces (also the resync of the
    /// ServiceAccount and ClusterRole aggregation loops).
    pub namespace_resync: Duration,
    /// How often every ResourceQuota's usage is recounted (upstream
    /// `--resource-quota-sync-period`: 5 minutes).
    pub quota_resync: Duration,
    /// Whether every namespace gets the `kube-root-ca.crt` ConfigMap (upstream's
    /// root-ca-cert-publisher). Upstream always publishes it; it is off by default here until
    /// the older API and durability tests stop counting every ConfigMap of their namespaces,
    /// and nothing reads it before the node stack mounts service account volumes.
    pub publish_root_ca: bool,
    /// The scheduler, controller-manager and simulated nodes started with the API server.
    pub components: Components,
}

/// The components that run beside the API server, each as an API client over HTTPS like its
/// upstream counterpart; `None` leaves one out. As single instances they run without leader
/// election, so a restarted cluster acts at once instead of waiting out the old lease.
#[derive(Clone, Default)]
pub struct Components {
    pub scheduler: Option<SchedulerConfig>,
    pub controllers: Option<ControllerConfig>,
    /// Simulated nodes (they register their own Node objects).
    pub fleet: Option<FleetConfig>,
}

impl Components {
    /// Scheduler, controller-manager and `nodes` simulated nodes with upstream timings. The
    /// scheduler and the controller-manager elect leaders through their Leases in
    /// `kube-system` as upstream's do by default, and hand them back when the cluster stops so
    /// that a restart on the same data directory need not wait for them to expire.
    pub fn full(nodes: usize) -> Components {
        let mut c = Components {
            scheduler: Some(SchedulerConfig::default()),
            controllers: Some(ControllerConfig::default()),
            fleet: (nodes > 0).then(|| FleetConfig::new(nodes)),
        };
        c.release_leases_on_stop();
        c
    }

    /// [`Components::full`] with the short timings of tests (2s leases).
    pub fn for_tests(nodes: usize) -> Components {
        let scheduler = SchedulerConfig::for_tests();
        let lease = scheduler.leader_election.clone();
        let mut c = Components {
            scheduler: Some(scheduler),
            controllers: Some(ControllerConfig {
                leader_election: lease.map(|le| crate::leaderelection::LeaderElectionConfig {
                    name: "kube-controller-manager".into(),
                    ..le
                }),
                ..ControllerConfig::for_tests()
            }),
            fleet: (nodes > 0).then(|| FleetConfig::for_tests(nodes)),
        };
        c.release_leases_on_stop();
        c
    }

    fn release_leases_on_stop(&mut self) {
        let scheduler = self
            .scheduler
            .as_mut()
            .and_then(|s| s.leader_election.as_mut());
        let controllers = self
            .controllers
            .as_mut()
            .and_then(|c| c.leader_election.as_mut());
        for le in scheduler.into_iter().chain(controllers) {
            le.release_on_cancel = true;
        }
    }

    fn any(&self) -> bool {
        self.scheduler.is_some() || self.controllers.is_some() || self.fleet.is_some()
    }
}

impl std::fmt::Debug for Components {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Components")
            .field("scheduler", &self.scheduler.is_some())
            .field("controllers", &self.controllers.is_some())
            .field("nodes", &self.fleet.as_ref().map(|f| f.nodes.len()))
            .finish()
    }
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            data_dir: PathBuf::from(".kubeproof/cluster"),
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            api_port: 6443,
            nodes: 0,
            store: StoreConfig::Embedded,
            apiserver: ApiServerConfig::default(),
            watch_window: 10_000,
            compaction_interval: Duration::from_secs(300),
            namespace_resync: Duration::from_secs(300),
            quota_resync: Duration::from_secs(300),
            publish_root_ca: false,
            components: Components::default(),
        }
    }
}

impl ClusterConfig {
    /// Shortened timings and a free port, for tests.
    pub fn for_tests(data_dir: impl Into<PathBuf>) -> Self {
        ClusterConfig {
            data_dir: data_dir.into(),
            api_port: 0,
            nodes: 3,
            apiserver: ApiServerConfig {
                bookmark_interval: Duration::from_secs(2),
                future_rv_wait: Duration::from_millis(500),
                ..ApiServerConfig::default()
            },
            compaction_interval: Duration::from_secs(30),
            namespace_resync: Duration::from_secs(5),
            quota_resync: Duration::from_secs(10),
            ..ClusterConfig::default()
        }
    }

    /// [`ClusterConfig::for_tests`] with the scheduler, controller-manager and `nodes`
    /// simulated nodes running (instead of bare Node objects), as a user's cluster has.
    pub fn with_components_for_tests(data_dir: impl Into<PathBuf>, nodes: usize) -> Self {
        ClusterConfig {
            nodes: 0,
            components: Components::for_tests(nodes),
            ..ClusterConfig::for_tests(data_dir)
        }
    }
}

/// A running bundled cluster.
pub struct RunningCluster {
    pub server: Arc<ApiServer>,
    pub addr: SocketAddr,
    pub pki: Pki,
    /// The store below encryption at rest: what is really written (the same store as the
    /// server's when no encryption is configured).
    pub raw_store: Arc<dyn Store>,
    kubeconfig: PathBuf,
    shutdown: watch::Sender<bool>,
    /// Told first, so that components can hand back their Leases while the API server still
    /// answers.
    components_shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// The API server's listener, the scheduler, the controller-manager and the node fleet,
    /// which tests may stop and start.
    control: ComponentControl,
    /// Where the scheduler's secure port (health and `/metrics`) listens, when it serves one.
    scheduler_addr: Option<SocketAddr>,
}

pub async fn open_store(cfg: &ClusterConfig) -> Result<Arc<dyn Store>> {
    Ok(match &cfg.store {
        StoreConfig::Memory => Arc::new(store::memory::MemoryStore::new(cfg.watch_window)),
        StoreConfig::Embedded => {
            let dir = cfg.data_dir.join("store");
            let opts = store::embedded::EmbeddedOptions {
                window: cfg.watch_window,
                ..Default::default()
            };
            Arc::new(
                store::embedded::EmbeddedStore::open(&dir, opts).with_context(|| {
                    format!("cannot open the cluster store in {}", dir.display())
                })?,
            )
        }
        StoreConfig::Etcd(endpoints) => Arc::new(
            store::etcd::EtcdStore::connect(endpoints, store::etcd::EtcdOptions::default())
                .await
                .with_context(|| format!("cannot reach etcd at {}", endpoints.join(",")))?,
        ),
    })
}

impl RunningCluster {
    pub async fn start(cfg: ClusterConfig) -> Result<RunningCluster> {
        std::fs::create_dir_all(&cfg.data_dir).with_context(|| {
            format!(
                "cannot create the data directory {}",
                cfg.data_dir.display()
            )
        })?;
        let pki_dir = cfg.data_dir.join("pki");
        let pki = Pki::load_or_create(&pki_dir, &[cfg.bind])?;
        let raw_store = open_store(&cfg).await?;
        let store: Arc<dyn Store> = match &cfg.apiserver.encryption_provider_config {
            Some(path) => {
                let config = EncryptionConfig::load(path).with_context(|| {
                    format!("cannot use the encryption configuration {}", path.display())
                })?;
                Arc::new(EncryptedStore::new(raw_store.clone(), config))
            }
            None => raw_store.clone(),
        };
        let server = ApiServer::new(store.clone(), cfg.apiserver.clone(), Some(&pki_dir))?;
        bootstrap(&server, cfg.nodes).await?;
        let watch_from = informer::prime(&server)
            .await
            .context("cannot load the authorization policy")?;
        let listener = tokio::net::TcpListener::bind((cfg.bind, cfg.api_port))
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {}:{} (is another cluster running? choose another port with --api-port)",
                    cfg.bind, cfg.api_port
                )
            })?;
        let addr = listener.local_addr()?;
        let (tx, _) = watch::channel(false);
        let tls = ApiServer::tls_acceptor(&pki)?;
        let control = ComponentControl::default();
        control.register(
            APISERVER,
            serve_restartably(server.clone(), tls, listener, tx.subscribe()),
        );
        let resync = cfg.namespace_resync;
        let tasks = vec![
            tokio::spawn(crate::controllers::namespace::run(server.clone(), resync)),
            tokio::spawn(crate::controllers::compaction::run(
                store,
                cfg.compaction_interval,
            )),
            tokio::spawn(crate::controllers::gc::run(server.clone(), resync)),
            tokio::spawn(informer::run(server.clone(), watch_from)),
            tokio::spawn(loops::aggregation::run(server.clone(), resync)),
            tokio::spawn(loops::service_accounts::run(
                server.clone(),
                cfg.publish_root_ca.then(|| pki.ca.cert_pem.clone()),
                resync,
            )),
            tokio::spawn(loops::quota::run(server.clone(), cfg.quota_resync)),
            tokio::spawn(crate::apiserver::aggregator::run(
                server.clone(),
                cfg.apiserver.apiservice_availability_period,
            )),
        ];
        let url = format!("https://{addr}");
        let kubeconfig = cfg.data_dir.join("kubeconfig");
        pki::write_private(
            &kubeconfig,
            pki::kubeconfig(&url, &pki.ca.cert_pem, &pki.admin, "kubernetes-admin").as_bytes(),
        )?;
        let mut cluster = RunningCluster {
            server,
            addr,
            pki,
            raw_store,
            kubeconfig,
            shutdown: tx,
            components_shutdown: watch::channel(false).0,
            tasks,
            control,
            scheduler_addr: None,
        };
        if cfg.components.any() {
            if let Err(e) = cluster.start_components(cfg.components).await {
                cluster.shutdown().await;
                return Err(e);
            }
        }
        Ok(cluster)
    }

    /// Starts the scheduler (as `system:kube-scheduler`), the controller-manager (reading as
    /// `system:kube-controller-manager`, each controller writing as its own service account,
    /// as upstream's `--use-service-account-credentials`) and the simulated nodes.
    ///
    /// The node fleet authenticates as `system:kubeproof:node-fleet` and makes each node's
    /// requests as that node (`system:node:<name>` in `system:nodes`) by impersonation, which
    /// a ClusterRole written here allows for exactly the fleet's nodes; the Node authorizer and
    /// NodeRestriction then judge them as they judge kubelets.
    async fn start_components(&mut self, components: Components) -> Result<()> {
        let rx = self.components_shutdown.subscribe();
        if let Some(mut controllers) = components.controllers {
            controllers.root_ca_pem = Some(self.pki.ca.cert_pem.clone());
            controllers.apiserver_endpoint = Some((self.addr.ip(), self.addr.port()));
            for sa in crate::controllers::CONTROLLER_SERVICE_ACCOUNTS {
                let user = format!("system:serviceaccount:kube-system:{sa}");
                let groups = [
                    "system:serviceaccounts",
                    "system:serviceaccounts:kube-system",
                ];
                let client = self.client_as(&user, &groups).await?;
                controllers
                    .service_account_clients
                    .0
                    .insert(sa.to_string(), client);
            }
            controllers.service_account_clients.0.insert(
                crate::controllers::config::APISERVER_IDENTITY.to_string(),
                self.client().await?,
            );
            // The manager's own identity reads (lists and watches) everything, as upstream's.
            let client = self
                .client_as("system:kube-controller-manager", &[])
                .await?;
            let rx = rx.clone();
            self.control.register(
                "kube-controller-manager",
                Box::new(move || {
                    // Each start is a new process to the others: a new identity, which must
                    // wait for a killed predecessor's Lease to expire.
                    let mut controllers = controllers.clone();
                    if let Some(le) = controllers.leader_election.as_mut() {
                        le.identity = crate::leaderelection::default_identity();
                    }
                    spawn_component(
                        "controller-manager",
                        crate::controllers::run_controller_manager(
                            client.clone(),
                            controllers,
                            rx.clone(),
                        ),
                    )
                }),
            );
        }
        if let Some(scheduler) = components.scheduler {
            let client = self.client_as("system:kube-scheduler", &[]).await?;
            let serving = match scheduler.secure_port {
                Some(port) => Some(
                    self.scheduler_secure_port(port, &client, &scheduler)
                        .await?,
                ),
                None => None,
            };
            let rx = rx.clone();
            self.control.register(
                "kube-scheduler",
                Box::new(move || {
                    let run = crate::scheduler::run(
                        client.clone(),
                        scheduler
                            .clone()
                            .with_identity(&crate::leaderelection::default_identity()),
                        rx.clone(),
                    );
                    // The secure port lives and dies with the scheduler, as in one process.
                    let serving = serving.clone();
                    spawn_component("scheduler", async move {
                        let Some((server, first, addr)) = serving else {
                            return run.await;
                        };
                        let taken = first.lock().unwrap_or_else(|p| p.into_inner()).take();
                        let listener = match taken {
                            Some(l) => l,
                            None => rebind(addr).await.with_context(|| {
                                format!("cannot listen on the scheduler's secure port {addr} again")
                            })?,
                        };
                        tokio::select! {
                            r = run => r,
                            r = server.serve(listener) => r,
                        }
                    })
                }),
            );
        }
        if let Some(fleet) = components.fleet {
            fleet
                .validate()
                .map_err(|e| anyhow::anyhow!("the node fleet is misconfigured: {e}"))?;
            let count = fleet.nodes.len();
            let client = self.client().await?;
            crate::node::api::grant_fleet(&client, fleet.nodes.iter().map(|n| n.name.as_str()))
                .await
                .map_err(|f| {
                    anyhow::anyhow!("cannot grant the node fleet its permissions: {}", f.message)
                })?;
            let fleet_client = self.client_as(crate::node::api::FLEET_USER, &[]).await?;
            self.control.register(
                "node-fleet",
                Box::new(move || {
                    spawn_component(
                        "node fleet",
                        crate::node::run_fleet(fleet_client.clone(), fleet.clone(), rx.clone()),
                    )
                }),
            );
            wait_for_node_leases(&client, count, NODES_UP_TIMEOUT).await?;
        }
        Ok(())
    }

    /// Binds the scheduler's secure port (0: any free port) on the API server's address and
    /// prepares its server, with a serving certificate from the cluster CA.
    async fn scheduler_secure_port(
        &mut self,
        port: u16,
        client: &kube::Client,
        scheduler: &SchedulerConfig,
    ) -> Result<SchedulerServing> {
        let ip = self.addr.ip();
        let listener = tokio::net::TcpListener::bind((ip, port))
            .await
            .with_context(|| {
                format!("cannot listen on {ip}:{port} for the scheduler's secure port (is another scheduler running? choose another port)")
            })?;
        let addr = listener.local_addr()?;
        let serving = self.pki.issue_serving("kube-scheduler", &[ip])?;
        let server = crate::scheduler::server::SecureServer::new(
            &self.pki,
            serving,
            client.clone(),
            scheduler.metrics.clone(),
        )?;
        self.scheduler_addr = Some(addr);
        Ok((
            Arc::new(server),
            Arc::new(std::sync::Mutex::new(Some(listener))),
            addr,
        ))
    }

    /// The scheduler's secure port (`/healthz`, `/livez`, `/readyz`, `/metrics`), e.g.
    /// `https://127.0.0.1:40123`, when the cluster runs a scheduler that serves one.
    pub fn scheduler_url(&self) -> Option<String> {
        self.scheduler_addr.map(|a| format!("https://{a}"))
    }

    /// Stops and starts this cluster's components (failure injection).
    pub fn control(&self) -> ComponentControl {
        self.control.clone()
    }

    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// A kube-rs client with the admin identity.
    pub async fn client(&self) -> Result<kube::Client> {
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig)?;
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
        Ok(kube::Client::try_from(config)?)
    }

    /// A kubeconfig (YAML) for `user` in `groups`, with a new client certificate from the
    /// cluster CA.
    pub fn kubeconfig_for(&self, user: &str, groups: &[&str]) -> Result<String> {
        let pair = self.pki.issue_client(user, groups)?;
        Ok(pki::kubeconfig(
            &self.url(),
            &self.pki.ca.cert_pem,
            &pair,
            user,
        ))
    }

    /// A kube-rs client acting as `user` in `groups` (client certificate from the cluster CA),
    /// so that components run with least privilege: e.g. `system:kube-scheduler`,
    /// `system:kube-controller-manager`, or `system:node:<name>` in `system:nodes`.
    pub async fn client_as(&self, user: &str, groups: &[&str]) -> Result<kube::Client> {
        let kc = kube::config::Kubeconfig::from_yaml(&self.kubeconfig_for(user, groups)?)?;
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
        Ok(kube::Client::try_from(config)?)
    }

    pub async fn shutdown(self) {
        let _ = self.components_shutdown.send(true);
        // Components get a moment to hand back their Leases before they are killed.
        self.control
            .stop_where(COMPONENT_STOP_GRACE, |name| name != APISERVER)
            .await;
        let _ = self.shutdown.send(true);
        for t in &self.tasks {
            t.abort();
        }
        self.control.stop_all(Duration::from_secs(5)).await;
    }
}

/// The scheduler's secure server, its first listener (taken by the first start) and its
/// address (bound again by later starts).
type SchedulerServing = (
    Arc<crate::scheduler::server::SecureServer>,
    Arc<std::sync::Mutex<Option<tokio::net::TcpListener>>>,
    SocketAddr,
);

/// The API server's name among the components (its HTTPS listener and connections; the store
/// and the in-process control loops keep running across a restart).
pub const APISERVER: &str = "kube-apiserver";

/// Serves the API on `listener`, and on a new listener at the same address after each restart.
/// Stopping the task (as killing a process) ends every connection it accepted, so clients see
/// their watches break as they do when kube-apiserver restarts.
fn serve_restartably(
    server: Arc<ApiServer>,
    tls: crate::apiserver::Acceptor,
    listener: tokio::net::TcpListener,
    cluster: watch::Receiver<bool>,
) -> crate::control::Starter {
    let addr = listener.local_addr().ok();
    let first = Arc::new(std::sync::Mutex::new(Some(listener)));
    Box::new(move || {
        let (server, tls, first, mut cluster) =
            (server.clone(), tls.clone(), first.clone(), cluster.clone());
        tokio::spawn(async move {
            let taken = first.lock().unwrap_or_else(|p| p.into_inner()).take();
            let listener = match (taken, addr) {
                (Some(l), _) => l,
                (None, Some(addr)) => match rebind(addr).await {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!(
                            component = APISERVER,
                            "cannot listen on {addr} again: {e}"
                        );
                        return;
                    }
                },
                (None, None) => return,
            };
            // Dropping `stop` with this task ends the connections; sending ends them gracefully.
            let (stop, serving) = watch::channel(false);
            let serve = server.serve(listener, tls, serving);
            tokio::pin!(serve);
            tokio::select! {
                r = &mut serve => {
                    if let Err(e) = r {
                        tracing::error!(component = APISERVER, "stopped: {e:#}");
                    }
                }
                _ = async { cluster.wait_for(|down| *down).await.is_ok() } => {
                    let _ = stop.send(true);
                    let _ = serve.await;
                }
            }
        })
    })
}

/// Binds `addr` again; the previous listener may take a moment to be dropped after its task is
/// aborted.
async fn rebind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let mut tries = 0;
    loop {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => return Ok(l),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && tries < 100 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// How long a stopping cluster waits for its components to finish before killing them.
const COMPONENT_STOP_GRACE: Duration = Duration::from_secs(2);

/// How long `start` waits for its simulated nodes to register and hold their leases.
const NODES_UP_TIMEOUT: Duration = Duration::from_secs(120);

/// Waits until `count` nodes hold a Lease in `kube-node-lease`: the cluster is up when its
/// nodes are, so that a client starting right away sees them alive (Ready, heartbeating).
async fn wait_for_node_leases(
    client: &kube::Client,
    count: usize,
    timeout: Duration,
) -> Result<()> {
    use k8s_openapi::api::coordination::v1::Lease;
    let leases: kube::Api<Lease> = kube::Api::namespaced(client.clone(), "kube-node-lease");
    let deadline = tokio::time::Instant::now() + timeout;
    let mut seen = 0;
    while tokio::time::Instant::now() < deadline {
        if let Ok(list) = leases.list(&Default::default()).await {
            seen = list
                .items
                .iter()
                .filter(|l| {
                    l.spec
                        .as_ref()
                        .and_then(|s| s.renew_time.as_ref())
                        .is_some()
                })
                .count();
            if seen >= count {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!(
        "only {seen} of {count} simulated nodes renewed their lease within {}s; the node fleet may be overloaded (try fewer --nodes)",
        timeout.as_secs()
    )
}

/// Runs a component until it returns; an error is logged, as a crashed component's would be.
fn spawn_component(
    name: &'static str,
    run: impl std::future::Future<Output = Result<()>> + Send + 'static,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(e) = run.await {
            tracing::error!(component = name, "stopped: {e:#}");
        }
    })
}

/// Objects every cluster has: the system namespaces, the `kubernetes` service, system priority
/// classes, registered nodes, and the custom resources of stored CRDs.
pub async fn bootstrap(server: &Arc<ApiServer>, nodes: u32) -> Result<()> {
    if let Some(crds) =
        server
            .catalog
            .get("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    {
        let list = server.store.list(&crds.prefix(None), None, None, 0).await?;
        for kv in list.items {
            if let Ok(crd) = crate::apiserver::object::from_stored(&kv) {
                crate::apiserver::hooks::register_crd(server, &crd);
            }
        }
    }
    let mut objects: Vec<(&str, &str, &str, Option<&str>, Value)> = Vec::new();
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        objects.push((
            "",
            "v1",
            "namespaces",
            None,
            json!({"metadata": {"name": ns}}),
        ));
    }
    objects.push((
        "",
        "v1",
        "services",
        Some("default"),
        json!({"metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
               "spec": {"clusterIP": first_service_ip(server), "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]}}),
    ));
    for (name, value) in [
        ("system-cluster-critical", 2000000000),
        ("system-node-critical", 2000001000),
    ] {
        objects.push((
            "scheduling.k8s.io",
            "v1",
            "priorityclasses",
            None,
            json!({"metadata": {"name": name}, "value": value, "description": "Used for system critical pods that must not be moved from their current node."}),
        ));
    }
    for i in 0..nodes {
        objects.push(("", "v1", "nodes", None, node_object(&format!("node-{i}"))));
    }
    let opts = WriteOptions::internal("kube-apiserver");
    for (group, version, plural, ns, mut obj) in objects {
        let info = server
            .catalog
            .get(group, version, plural)
            .with_context(|| format!("{plural} are not registered"))?;
        obj["apiVersion"] = json!(info.api_version());
        obj["kind"] = json!(info.kind);
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if server.get_object(&info, ns, &name).await.is_ok() {
            continue;
        }
        match server.create_object(&info, ns, obj, &opts).await {
            Ok(_) => {}
            Err(e) if e.code == 409 => {}
            Err(e) => anyhow::bail!("cannot create bootstrap {plural}: {e}"),
        }
    }
    bootstrap_policy::ensure_bootstrap_policy(server)
        .await
        .map_err(|e| anyhow::anyhow!("cannot store the bootstrap policy: {e}"))?;
    loops::aggregation::sync(server).await;
    Ok(())
}

/// A kubeconfig (YAML) for a new client-certificate identity of the cluster kept in
/// `data_dir`, pointing at the server its admin kubeconfig names (`kubeproof cluster user
/// add`). The cluster need not be running.
pub fn user_kubeconfig(data_dir: &Path, user: &str, groups: &[&str]) -> Result<String> {
    if user.is_empty() {
        anyhow::bail!("the user name must not be empty");
    }
    let pki_dir = data_dir.join("pki");
    if !pki_dir.join("ca.crt").exists() {
        anyhow::bail!(
            "no cluster in {} (start one with `kubeproof cluster up --data-dir {}`)",
            data_dir.display(),
            data_dir.display()
        );
    }
    let pki = Pki::load_or_create(&pki_dir, &[])?;
    let admin = data_dir.join("kubeconfig");
    let text = std::fs::read_to_string(&admin)
        .with_context(|| format!("cannot read the cluster's kubeconfig {}", admin.display()))?;
    let doc: Value = serde_yaml_ng::from_str(&text)
        .with_context(|| format!("{} is not a kubeconfig", admin.display()))?;
    let server = doc
        .pointer("/clusters/0/cluster/server")
        .and_then(Value::as_str)
        .with_context(|| format!("{} names no server", admin.display()))?;
    let pair = pki.issue_client(user, groups)?;
    Ok(pki::kubeconfig(server, &pki.ca.cert_pem, &pair, user))
}

fn first_service_ip(server: &ApiServer) -> String {
    let (base, _) = server.config.service_cidr;
    Ipv4Addr::from(u32::from(base) + 1).to_string()
}

/// A Node object as a kubelet would register it.
pub fn node_object(name: &str) -> Value {
    let now = crate::apiserver::object::now_rfc3339();
    json!({
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64",
        }},
        "spec": {},
        "status": {
            "capacity": {"cpu": "4", "memory": "16Gi", "pods": "110", "ephemeral-storage": "100Gi"},
            "allocatable": {"cpu": "4", "memory": "16Gi", "pods": "110", "ephemeral-storage": "100Gi"},
            "conditions": [
                {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory", "message": "kubelet has sufficient memory available", "lastHeartbeatTime": now, "lastTransitionTime": now},
                {"type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure", "message": "kubelet has no disk pressure", "lastHeartbeatTime": now, "lastTransitionTime": now},
                {"type": "PIDPressure", "status": "False", "reason": "KubeletHasSufficientPID", "message": "kubelet has sufficient PID available", "lastHeartbeatTime": now, "lastTransitionTime": now},
                {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status", "lastHeartbeatTime": now, "lastTransitionTime": now},
            ],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": name}],
            "nodeInfo": {"machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": "", "osImage": "kubeproof", "containerRuntimeVersion": "kubeproof://0.1.0", "kubeletVersion": "v1.32.0", "kubeProxyVersion": "v1.32.0", "operatingSystem": "linux", "architecture": "amd64"},
        },
    })
}
