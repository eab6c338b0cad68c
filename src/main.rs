//! `kubeproof`: prove a Kubernetes cluster behaves like Kubernetes 1.32, meets its latency SLOs
//! under load, and recovers from failures. This binary only parses arguments and calls the
//! libraries (reference-cluster, steps, loadgen, chaos, report).

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod commands;

#[derive(Parser)]
#[command(name = "kubeproof", version, about, long_about = None)]
struct Cli {
    /// Output format for machine readers.
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the bundled Kubernetes 1.32 reference cluster.
    Cluster(commands::cluster::ClusterArgs),
    /// Run the default job: start the bundled cluster and run the shipped suites against it.
    Run(commands::run::RunArgs),
    /// Run Gherkin features against a cluster (the bundled one when no kubeconfig is given).
    Conformance(commands::conformance::ConformanceArgs),
    /// Print the step library: every step with an example (Markdown, or JSON with --output json).
    Steps,
    /// Measure the bundled cluster.
    Bench(commands::bench::BenchArgs),
}

/// The bundled cluster (API server, scheduler, node fleet) runs in this process and is
/// allocation-heavy; mimalloc halves what glibc's allocator costs it in time and fragmentation.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            // kube-rs logs every failed request as an error although its caller gets (and
            // handles) the error too: while an API server restarts, components retrying would
            // otherwise flood the terminal.
            tracing_subscriber::EnvFilter::try_from_env("KUBEPROOF_LOG")
                .unwrap_or_else(|_| "warn,kube_client::client::builder=off".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Cluster(args) => commands::cluster::run(args, cli.output).await,
            Command::Run(args) => commands::run::run(args, cli.output).await,
            Command::Conformance(args) => commands::conformance::run(args, cli.output).await,
            Command::Steps => commands::conformance::steps(cli.output),
            Command::Bench(args) => commands::bench::run(args, cli.output).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
