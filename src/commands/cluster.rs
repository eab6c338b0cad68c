//! `kubeproof cluster …`: the bundled reference cluster.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};
use kubeproof_refcluster::cluster::{ClusterConfig, RunningCluster, StoreConfig};

use crate::Output;

#[derive(Args)]
pub struct ClusterArgs {
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// Run the cluster in the foreground until Ctrl-C (SIGINT) or SIGTERM.
    Up(UpArgs),
}

#[derive(Args, Clone)]
pub struct UpArgs {
    /// Where the cluster keeps its state, certificates and kubeconfig. Starting again on the
    /// same directory resumes the same cluster.
    #[arg(long, default_value = ".kubeproof/cluster")]
    pub data_dir: PathBuf,
    /// Number of Node objects to register.
    #[arg(long, default_value_t = 1)]
    pub nodes: u32,
    /// Port of the API server on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 6443)]
    pub api_port: u16,
    /// Store cluster state in etcd at these endpoints (comma-separated URLs) instead of the
    /// embedded store.
    #[arg(long, value_delimiter = ',')]
    pub etcd_servers: Vec<String>,
}

impl UpArgs {
    pub fn config(&self) -> ClusterConfig {
        ClusterConfig {
            data_dir: self.data_dir.clone(),
            api_port: self.api_port,
            nodes: self.nodes,
            store: if self.etcd_servers.is_empty() {
                StoreConfig::Embedded
            } else {
                StoreConfig::Etcd(self.etcd_servers.clone())
            },
            ..ClusterConfig::default()
        }
    }
}

pub async fn run(args: ClusterArgs, output: Output) -> Result<ExitCode> {
    match args.command {
        ClusterCommand::Up(up) => up_foreground(up, output).await,
    }
}

async fn up_foreground(args: UpArgs, output: Output) -> Result<ExitCode> {
    let cluster = RunningCluster::start(args.config()).await?;
    let kubeconfig = cluster.kubeconfig_path().display().to_string();
    match output {
        Output::Json => println!(
            "{}",
            serde_json::json!({"server": cluster.url(), "kubeconfig": kubeconfig, "dataDir": args.data_dir})
        ),
        Output::Text => {
            println!(
                "kubeproof reference cluster (Kubernetes 1.32) is up at {}",
                cluster.url()
            );
            println!("  data directory: {}", args.data_dir.display());
            println!("  use it with:    export KUBECONFIG={kubeconfig}");
            println!("                  kubectl get nodes");
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
