//! `kubeproof run`: the main job. Starts the bundled cluster (fresh, in a temporary directory)
//! and runs the shipped suites against it; the exit code says whether everything passed.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use kubeproof_refcluster::cluster::{ClusterConfig, RunningCluster};

use super::conformance::{finish, ConformanceArgs};
use crate::Output;

#[derive(Args)]
pub struct RunArgs {
    /// Number of Node objects the bundled cluster registers.
    #[arg(long, default_value_t = 3)]
    nodes: u32,
    /// Where to write the reports.
    #[arg(long, default_value = "target/kubeproof/run")]
    report_dir: PathBuf,
    /// Scenarios run at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
}

pub async fn run(args: RunArgs, output: Output) -> Result<ExitCode> {
    let dir = tempfile::tempdir().context("cannot create a temporary directory for the cluster")?;
    let mut cfg = ClusterConfig::with_components_for_tests(dir.path(), args.nodes as usize);
    kubeproof_chaos::enable_audit(&mut cfg)?;
    eprintln!("starting the bundled Kubernetes 1.32 cluster…");
    let cluster = RunningCluster::start(cfg).await?;
    eprintln!(
        "cluster up at {}; running the conformance suite",
        cluster.url()
    );
    let conf = ConformanceArgs {
        kubeconfig: Some(cluster.kubeconfig_path().to_path_buf()),
        report_dir: args.report_dir,
        concurrency: args.concurrency,
        host_access: true,
        ..ConformanceArgs::default()
    };
    let mut opts = conf.options();
    kubeproof_chaos::bundled_access(&cluster, &mut opts);
    let outcome = kubeproof_steps::runner::run(opts).await;
    cluster.shutdown().await;
    finish(outcome?, output)
}
