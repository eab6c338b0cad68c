//! `kubeproof cluster …`: the bundled reference cluster.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use kubeproof_refcluster::apiserver::AuthorizationMode;
use kubeproof_refcluster::cluster::{self, ClusterConfig, Components, RunningCluster, StoreConfig};
use kubeproof_refcluster::faults::{Fault, Faults};
use kubeproof_refcluster::node::process::ProcessConfig;
use kubeproof_refcluster::scheduler::SchedulerConfig;

use crate::Output;

#[derive(Args)]
pub struct ClusterArgs {
    #[command(subcommand)]
    command: ClusterCommand,
}

// One value per process, parsed once: boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum ClusterCommand {
    /// Run the cluster in the foreground until Ctrl-C (SIGINT) or SIGTERM.
    Up(UpArgs),
    /// Identities of the cluster.
    User(UserArgs),
}

#[derive(Args, Clone)]
pub struct UpArgs {
    /// Where the cluster keeps its state, certificates and kubeconfig. Starting again on the
    /// same directory resumes the same cluster.
    #[arg(long, default_value = ".kubeproof/cluster")]
    pub data_dir: PathBuf,
    /// Number of nodes: node agents of the chosen runtime, named node-0, node-1, …
    #[arg(long, default_value_t = 1)]
    pub nodes: u32,
    /// How the nodes run pods: `sim` simulates containers (thousands of nodes in one process);
    /// `process` runs them as real processes on this host (see PROCESS.md; pod logs under
    /// <data-dir>/nodes/pods).
    #[arg(long, value_enum, default_value_t = Runtime::Sim)]
    pub runtime: Runtime,
    /// With `--runtime process`: a YAML image table whose rows map images to root file
    /// systems (directories), busybox or host executables, in front of the built-in rows
    /// (format in PROCESS.md, "Image table").
    #[arg(long, value_name = "FILE")]
    pub image_table: Option<PathBuf>,
    /// The pods' address range (default 127.244.0.0/16). With `--runtime process` the range is
    /// claimed host-wide and starting fails while another cluster holds it; without this
    /// flag each process-runtime cluster claims a free block (PROCESS.md, "Pod addresses").
    #[arg(long, value_name = "CIDR")]
    pub pod_cidr: Option<String>,
    /// Run only the API server and its built-in loops: no scheduler, controller-manager or
    /// node agents (the nodes are then bare Node objects).
    #[arg(long)]
    pub api_only: bool,
    /// Port of the API server on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 6443)]
    pub api_port: u16,
    /// Store cluster state in etcd at these endpoints (comma-separated URLs) instead of the
    /// embedded store.
    #[arg(long, value_delimiter = ',')]
    pub etcd_servers: Vec<String>,
    /// A KubeSchedulerConfiguration (kubescheduler.config.k8s.io/v1 YAML) for the bundled
    /// scheduler: profiles by schedulerName, plugins enabled/disabled per extension point with
    /// score weights, pluginConfig, percentageOfNodesToScore, parallelism and pod back-off. Its
    /// leaderElection section is checked but not used: the bundled scheduler runs alone.
    #[arg(long, value_name = "FILE")]
    pub scheduler_config: Option<PathBuf>,
    #[command(flatten)]
    pub security: SecurityArgs,
    /// Start the cluster with a deliberate bug, to see a test suite catch it (repeatable).
    /// For demonstrations only: a cluster with a fault does not behave like Kubernetes.
    #[arg(long = "inject-fault", value_enum, value_name = "FAULT")]
    pub inject_fault: Vec<FaultArg>,
}

/// A fault of the bundled cluster as `--inject-fault` lists and parses it: `--help` shows
/// every fault with its one-line description, a wrong name gets the list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultArg(pub Fault);

impl clap::ValueEnum for FaultArg {
    fn value_variants<'a>() -> &'a [Self] {
        static ALL: std::sync::OnceLock<Vec<FaultArg>> = std::sync::OnceLock::new();
        ALL.get_or_init(|| Fault::ALL.into_iter().map(FaultArg).collect())
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.0.name()).help(self.0.description()))
    }
}

/// The faults named on the command line.
pub fn faults(args: &[FaultArg]) -> Faults {
    args.iter().map(|f| f.0).collect()
}

/// The warning printed whenever a cluster runs with faults, so nobody mistakes it for a
/// correct one.
pub fn fault_warning(faults: &Faults) -> Option<String> {
    (!faults.is_empty()).then(|| {
        let lines: Vec<String> = faults
            .iter()
            .map(|f| format!("  {}: {}", f.name(), f.description()))
            .collect();
        format!(
            "WARNING: the bundled cluster runs with injected faults and does not behave like Kubernetes:\n{}",
            lines.join("\n")
        )
    })
}

/// The node agents' container runtime.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    /// Simulated containers driven by stage timings and pod annotations.
    Sim,
    /// Real OS processes.
    Process,
}

/// kube-apiserver's security flags, with its names and (kubeadm's) defaults.
#[derive(Args, Clone, Default)]
pub struct SecurityArgs {
    /// Let requests without credentials in as system:anonymous (RBAC then decides); off,
    /// they get 401 except on /healthz, /livez, /readyz and /version.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub anonymous_auth: bool,
    /// Static bearer tokens: a CSV file of `token,user,uid[,"group1,group2"]` lines.
    #[arg(long)]
    pub token_auth_file: Option<PathBuf>,
    /// Authorizers in order: AlwaysAllow, Node, RBAC.
    #[arg(long, value_delimiter = ',', default_value = "Node,RBAC")]
    pub authorization_mode: Vec<String>,
    /// Admission plugins to turn on besides upstream's defaults (NodeRestriction is on).
    #[arg(long, value_delimiter = ',')]
    pub enable_admission_plugins: Vec<String>,
    /// Admission plugins to turn off.
    #[arg(long, value_delimiter = ',')]
    pub disable_admission_plugins: Vec<String>,
    /// An audit.k8s.io/v1 Policy; with --audit-log-path, requests are audited.
    #[arg(long)]
    pub audit_policy_file: Option<PathBuf>,
    /// Where audit events go, one JSON object per line.
    #[arg(long)]
    pub audit_log_path: Option<PathBuf>,
    /// An EncryptionConfiguration for data at rest (e.g. Secrets with aesgcm).
    #[arg(long)]
    pub encryption_provider_config: Option<PathBuf>,
    /// API Priority and Fairness (429 with Retry-After when a priority level is saturated).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub enable_priority_and_fairness: bool,
}

impl SecurityArgs {
    /// Applies the flags to a cluster configuration.
    pub fn apply(&self, cfg: &mut ClusterConfig) -> Result<()> {
        let api = &mut cfg.apiserver;
        api.anonymous_auth = self.anonymous_auth;
        api.token_auth_file = self.token_auth_file.clone();
        api.authorization_modes = self
            .authorization_mode
            .iter()
            .map(|m| {
                AuthorizationMode::parse(m).with_context(|| {
                    format!("unknown authorization mode {m:?}; use AlwaysAllow, Node or RBAC")
                })
            })
            .collect::<Result<_>>()?;
        api.enable_admission_plugins
            .extend(self.enable_admission_plugins.iter().cloned());
        api.disable_admission_plugins = self.disable_admission_plugins.clone();
        api.audit_policy_file = self.audit_policy_file.clone();
        api.audit_log_path = self.audit_log_path.clone();
        api.encryption_provider_config = self.encryption_provider_config.clone();
        api.priority_and_fairness = self.enable_priority_and_fairness;
        Ok(())
    }
}

impl UpArgs {
    pub fn config(&self) -> Result<ClusterConfig> {
        let (nodes, mut components) = if self.api_only {
            (self.nodes, Components::default())
        } else {
            (0, Components::full(self.nodes as usize))
        };
        if self.runtime == Runtime::Process {
            if let Some(fleet) = components.fleet.as_mut() {
                // Pod directories, logs and busybox applets live with the cluster's state.
                let mut process = ProcessConfig::new(self.data_dir.join("nodes"));
                if let Some(path) = &self.image_table {
                    process.images = process.images.with_file(path).map_err(anyhow::Error::msg)?;
                }
                process.pod_cidr_fixed = self.pod_cidr.is_some();
                fleet.process = Some(process);
            }
        } else if self.image_table.is_some() {
            anyhow::bail!(
                "--image-table maps images for the process runtime; add --runtime process or drop it"
            );
        }
        if let Some(cidr) = &self.pod_cidr {
            let cidr = kubeproof_refcluster::node::ipam::Cidr::parse(cidr).map_err(|e| {
                anyhow::anyhow!("--pod-cidr {cidr}: {e}; give an IPv4 range such as 127.50.0.0/16")
            })?;
            if let Some(fleet) = components.fleet.as_mut() {
                fleet.cluster_cidr = cidr;
            }
        }
        if let Some(path) = &self.scheduler_config {
            if self.api_only {
                anyhow::bail!(
                    "--scheduler-config configures the bundled scheduler, which --api-only leaves out; drop one of the two flags"
                );
            }
            components.scheduler = Some(scheduler_config_file(path)?);
        }
        let mut cfg = ClusterConfig {
            data_dir: self.data_dir.clone(),
            api_port: self.api_port,
            nodes,
            components,
            store: if self.etcd_servers.is_empty() {
                StoreConfig::Embedded
            } else {
                StoreConfig::Etcd(self.etcd_servers.clone())
            },
            ..ClusterConfig::default()
        };
        self.security.apply(&mut cfg)?;
        cfg.inject_faults(faults(&self.inject_fault))?;
        Ok(cfg)
    }
}

/// Reads a KubeSchedulerConfiguration file; errors name the file and the offending field.
pub fn scheduler_config_file(path: &std::path::Path) -> Result<SchedulerConfig> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read the scheduler configuration {}; check the --scheduler-config path",
            path.display()
        )
    })?;
    let cfg = SchedulerConfig::from_yaml(&text).map_err(|e| {
        anyhow::anyhow!(
            "the scheduler configuration {} is invalid: {e}. Fix the field named and start again.",
            path.display()
        )
    })?;
    Ok(SchedulerConfig {
        // A single bundled scheduler acts at once instead of waiting out an old lease.
        leader_election: None,
        ..cfg
    })
}

#[derive(Args)]
pub struct UserArgs {
    #[command(subcommand)]
    command: UserCommand,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Write a kubeconfig for a new identity: a client certificate from the cluster CA with
    /// the user as its CN and the groups as its O. It holds no roles until you bind some.
    Add(UserAddArgs),
}

#[derive(Args)]
pub struct UserAddArgs {
    /// The user name (e.g. jane, or system:node:node-1).
    pub name: String,
    /// A group of the user (repeatable).
    #[arg(long = "group")]
    pub groups: Vec<String>,
    /// The cluster's data directory (as given to `cluster up`).
    #[arg(long, default_value = ".kubeproof/cluster")]
    pub data_dir: PathBuf,
    /// Where to write the kubeconfig (default: <data-dir>/users/<name>.kubeconfig). Not
    /// `--output`: that global flag chooses text or JSON.
    #[arg(long = "out", value_name = "FILE")]
    pub out: Option<PathBuf>,
}

pub async fn run(args: ClusterArgs, output: Output) -> Result<ExitCode> {
    match args.command {
        ClusterCommand::Up(up) => up_foreground(up, output).await,
        ClusterCommand::User(UserArgs {
            command: UserCommand::Add(add),
        }) => user_add(&add, output),
    }
}

/// A file name for a user name (`system:node:n1` → `system_node_n1`).
fn file_stem(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn user_add(args: &UserAddArgs, output: Output) -> Result<ExitCode> {
    let groups: Vec<&str> = args.groups.iter().map(String::as_str).collect();
    let kubeconfig = cluster::user_kubeconfig(&args.data_dir, &args.name, &groups)?;
    let path = match &args.out {
        Some(p) => p.clone(),
        None => args
            .data_dir
            .join("users")
            .join(format!("{}.kubeconfig", file_stem(&args.name))),
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    kubeproof_refcluster::pki::write_private(&path, kubeconfig.as_bytes())?;
    match output {
        Output::Json => println!(
            "{}",
            serde_json::json!({"user": args.name, "groups": args.groups, "kubeconfig": path})
        ),
        Output::Text => {
            println!("wrote {} for user {:?}", path.display(), args.name);
            println!(
                "  use it with: KUBECONFIG={} kubectl auth whoami",
                path.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn up_foreground(args: UpArgs, output: Output) -> Result<ExitCode> {
    let cluster = RunningCluster::start(args.config()?).await?;
    if let Some(warning) = fault_warning(&faults(&args.inject_fault)) {
        eprintln!("{warning}");
    }
    let kubeconfig = cluster.kubeconfig_path().display().to_string();
    match output {
        Output::Json => println!(
            "{}",
            serde_json::json!({"server": cluster.url(), "kubeconfig": kubeconfig, "dataDir": args.data_dir,
                               "schedulerMetrics": cluster.scheduler_url().map(|u| format!("{u}/metrics"))})
        ),
        Output::Text => {
            println!(
                "kubeproof reference cluster (Kubernetes 1.32) is up at {}",
                cluster.url()
            );
            println!("  data directory: {}", args.data_dir.display());
            println!("  use it with:    export KUBECONFIG={kubeconfig}");
            println!("                  kubectl get nodes");
            if let Some(url) = cluster.scheduler_url() {
                println!("  scheduler:      {url}/metrics (and /healthz, /livez, /readyz)");
            }
            println!("Press Ctrl-C to stop; starting again with the same --data-dir resumes it.");
        }
    }
    wait_for_signal().await?;
    eprintln!("stopping the cluster…");
    cluster.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

pub async fn wait_for_signal() -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: ClusterCommand,
    }

    #[test]
    fn security_flags_map_to_the_cluster_configuration() {
        let cli = Cli::try_parse_from([
            "cluster",
            "up",
            "--anonymous-auth",
            "--authorization-mode",
            "RBAC",
            "--disable-admission-plugins",
            "PodSecurity",
            "--enable-priority-and-fairness=false",
            "--token-auth-file",
            "/tmp/tokens.csv",
        ])
        .unwrap();
        let ClusterCommand::Up(up) = cli.command else {
            panic!("not up")
        };
        let cfg = up.config().unwrap();
        assert!(cfg.apiserver.anonymous_auth);
        assert_eq!(
            cfg.apiserver.authorization_modes,
            vec![AuthorizationMode::Rbac]
        );
        assert_eq!(cfg.apiserver.disable_admission_plugins, vec!["PodSecurity"]);
        assert!(!cfg.apiserver.priority_and_fairness);
        assert_eq!(
            cfg.apiserver.token_auth_file,
            Some(PathBuf::from("/tmp/tokens.csv"))
        );
        let defaults = Cli::try_parse_from(["cluster", "up"]).unwrap();
        let ClusterCommand::Up(up) = defaults.command else {
            panic!("not up")
        };
        let cfg = up.config().unwrap();
        assert!(!cfg.apiserver.anonymous_auth);
        assert_eq!(
            cfg.apiserver.authorization_modes,
            vec![AuthorizationMode::Node, AuthorizationMode::Rbac]
        );
        assert!(cfg.apiserver.priority_and_fairness);
        let bad = Cli::try_parse_from(["cluster", "up", "--authorization-mode", "ABAC"]).unwrap();
        let ClusterCommand::Up(up) = bad.command else {
            panic!("not up")
        };
        assert!(up.config().is_err());
    }

    #[test]
    fn scheduler_config_file_reaches_the_bundled_scheduler() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("sched.yaml");
        std::fs::write(
            &good,
            "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n\
             percentageOfNodesToScore: 30\nparallelism: 4\nprofiles:\n\
             - schedulerName: default-scheduler\n- schedulerName: bin-packer\n",
        )
        .unwrap();
        let up_with = |extra: &[&str]| {
            let mut argv = vec!["cluster", "up"];
            argv.extend_from_slice(extra);
            let ClusterCommand::Up(up) = Cli::try_parse_from(argv).unwrap().command else {
                panic!("not up")
            };
            up.config()
        };
        let path = good.to_str().unwrap();
        let cfg = up_with(&["--scheduler-config", path]).unwrap();
        let sched = cfg.components.scheduler.expect("the scheduler runs");
        assert_eq!(
            (sched.percentage_of_nodes_to_score, sched.parallelism),
            (30, 4)
        );
        let names: Vec<&str> = sched
            .profiles
            .iter()
            .map(|p| p.scheduler_name.as_str())
            .collect();
        assert_eq!(names, ["default-scheduler", "bin-packer"]);
        assert!(sched.leader_election.is_none());
        let err = up_with(&["--scheduler-config", path, "--api-only"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--api-only"), "{err}");

        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, "percentageOfNodesToScore: 150\n").unwrap();
        let err = up_with(&["--scheduler-config", bad.to_str().unwrap()])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("bad.yaml") && err.contains("percentageOfNodesToScore"),
            "{err}"
        );
        let missing = dir.path().join("missing.yaml");
        let err = format!(
            "{:#}",
            up_with(&["--scheduler-config", missing.to_str().unwrap()]).unwrap_err()
        );
        assert!(err.contains("missing.yaml"), "{err}");
    }

    #[test]
    fn inject_fault_reaches_the_controller_manager_and_is_off_by_default() {
        let up = |argv: &[&str]| {
            let mut all = vec!["cluster", "up"];
            all.extend_from_slice(argv);
            match Cli::try_parse_from(all).map(|c| c.command) {
                Ok(ClusterCommand::Up(up)) => Ok(up),
                Ok(_) => panic!("not up"),
                Err(e) => Err(e.to_string()),
            }
        };
        let plain = up(&[]).unwrap().config().unwrap();
        assert!(plain.components.controllers.unwrap().faults.is_empty());
        let broken = up(&["--inject-fault", "deployment-ignores-max-unavailable"])
            .unwrap()
            .config()
            .unwrap();
        assert!(broken
            .components
            .controllers
            .unwrap()
            .faults
            .contains(Fault::DeploymentIgnoresMaxUnavailable));
        let err = up(&["--inject-fault", "no-such-fault"]).err().unwrap();
        assert!(err.contains("endpoints-include-unready"), "{err}");
        let err = up(&["--inject-fault", "endpoints-include-unready", "--api-only"])
            .unwrap()
            .config()
            .unwrap_err()
            .to_string();
        assert!(err.contains("--api-only"), "{err}");
        let warning = fault_warning(&faults(&[FaultArg(Fault::EndpointsIncludeUnready)]));
        assert!(warning.unwrap().contains("endpoints-include-unready"));
        assert_eq!(fault_warning(&Faults::none()), None);
    }

    #[test]
    fn the_process_runtime_keeps_pods_under_the_data_dir() {
        let cli = Cli::try_parse_from([
            "cluster",
            "up",
            "--runtime",
            "process",
            "--data-dir",
            "/tmp/kp",
        ])
        .unwrap();
        let ClusterCommand::Up(up) = cli.command else {
            panic!("not up")
        };
        let cfg = up.config().unwrap();
        let fleet = cfg.components.fleet.expect("node agents run");
        assert_eq!(
            fleet.process.expect("process runtime").root,
            PathBuf::from("/tmp/kp/nodes")
        );
        let sim = Cli::try_parse_from(["cluster", "up"]).unwrap();
        let ClusterCommand::Up(up) = sim.command else {
            panic!("not up")
        };
        assert!(up
            .config()
            .unwrap()
            .components
            .fleet
            .unwrap()
            .process
            .is_none());
    }

    #[test]
    fn image_tables_and_pod_cidrs_reach_the_process_runtime() {
        let dir = tempfile::tempdir().unwrap();
        let table = dir.path().join("images.yaml");
        std::fs::create_dir(dir.path().join("root")).unwrap();
        std::fs::write(&table, "images: [{image: example.com/app, rootfs: root}]\n").unwrap();
        let up = |argv: &[&str]| {
            let mut all = vec!["cluster", "up"];
            all.extend_from_slice(argv);
            match Cli::try_parse_from(all).unwrap().command {
                ClusterCommand::Up(up) => up.config(),
                _ => panic!("not up"),
            }
        };
        let t = table.to_str().unwrap();
        let cfg = up(&[
            "--runtime",
            "process",
            "--image-table",
            t,
            "--pod-cidr",
            "127.50.0.0/16",
        ])
        .unwrap();
        let fleet = cfg.components.fleet.unwrap();
        assert_eq!(fleet.cluster_cidr.to_string(), "127.50.0.0/16");
        let process = fleet.process.unwrap();
        assert!(process.pod_cidr_fixed);
        assert_eq!(
            process.images.rules[0].repository, "example.com/app",
            "the file's rows come first"
        );
        let err = up(&["--image-table", t]).unwrap_err().to_string();
        assert!(err.contains("--runtime process"), "{err}");
        let err = up(&["--pod-cidr", "127.50.0.1/16"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--pod-cidr 127.50.0.1/16") && err.contains("host bits"),
            "{err}"
        );
        std::fs::write(&table, "images: [{image: x}]\n").unwrap();
        let err = up(&["--runtime", "process", "--image-table", t])
            .unwrap_err()
            .to_string();
        assert!(err.contains(t) && err.contains("row 1 (image x)"), "{err}");
    }

    #[test]
    fn user_add_writes_a_kubeconfig_for_an_existing_cluster_only() {
        let dir = tempfile::tempdir().unwrap();
        let add = UserAddArgs {
            name: "system:node:n1".into(),
            groups: vec!["system:nodes".into()],
            data_dir: dir.path().to_path_buf(),
            out: None,
        };
        assert!(
            user_add(&add, Output::Text).is_err(),
            "no cluster in an empty directory"
        );
        kubeproof_refcluster::pki::Pki::load_or_create(&dir.path().join("pki"), &[]).unwrap();
        std::fs::write(
            dir.path().join("kubeconfig"),
            "clusters:\n- name: kubeproof\n  cluster:\n    server: https://127.0.0.1:6443\n",
        )
        .unwrap();
        user_add(&add, Output::Text).unwrap();
        let written =
            std::fs::read_to_string(dir.path().join("users/system_node_n1.kubeconfig")).unwrap();
        assert!(written.contains("server: https://127.0.0.1:6443"));
        assert!(written.contains("client-certificate-data"));
    }
}
