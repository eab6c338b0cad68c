//! `kubeproof conformance` and `kubeproof steps`: the declarative suite against any cluster.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use clap::Args;
use kubeproof_chaos::BundledComponents;
use kubeproof_report::Status;
use kubeproof_steps::runner::{self, RunOptions, RunOutcome};

use crate::Output;

#[derive(Args, Clone)]
pub struct ConformanceArgs {
    /// Kubeconfig of the cluster under test; without it, the bundled cluster is started.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Context of the kubeconfig to use.
    #[arg(long)]
    pub context: Option<String>,
    /// Tag expression selecting scenarios, e.g. "@B-API-010 or @watch".
    #[arg(long)]
    pub tags: Option<String>,
    /// Feature files or directories to run.
    #[arg(long = "features", num_args = 1.., default_values_os_t = vec![PathBuf::from("features")])]
    pub features: Vec<PathBuf>,
    /// Scenarios run at once (each in its own namespace; `@serial` ones alone).
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Extra attempts for a failing scenario; one that then passes is reported flaky.
    #[arg(long, default_value_t = 0)]
    pub retries: usize,
    /// Leave failing scenarios' objects in the cluster for debugging.
    #[arg(long)]
    pub keep_on_failure: bool,
    /// Where to write the reports.
    #[arg(long, default_value = "target/kubeproof/conformance")]
    pub report_dir: PathBuf,
    /// Print the scenarios that would run, and run nothing.
    #[arg(long)]
    pub list: bool,
    /// Check the features (steps, YAML, tags) and run nothing.
    #[arg(long)]
    pub check: bool,
    #[arg(skip)]
    pub host_access: bool,
    /// How the bundled cluster's nodes run pods (without --kubeconfig): `process` runs real
    /// processes, so `@needs:process-runtime` scenarios run instead of being skipped.
    #[arg(long, value_enum, default_value_t = super::cluster::Runtime::Sim)]
    pub runtime: super::cluster::Runtime,
}

impl Default for ConformanceArgs {
    fn default() -> Self {
        ConformanceArgs {
            kubeconfig: None,
            context: None,
            tags: None,
            features: vec![PathBuf::from("features")],
            concurrency: 8,
            retries: 0,
            keep_on_failure: false,
            report_dir: PathBuf::from("target/kubeproof/conformance"),
            list: false,
            check: false,
            host_access: false,
            runtime: super::cluster::Runtime::Sim,
        }
    }
}

impl ConformanceArgs {
    pub fn options(&self) -> RunOptions {
        RunOptions {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            features: self.features.clone(),
            tags: self.tags.clone(),
            concurrency: self.concurrency.max(1),
            retries: self.retries,
            keep_on_failure: self.keep_on_failure,
            report_dir: Some(self.report_dir.clone()),
            host_access: self.host_access,
            ..RunOptions::default()
        }
    }
}

pub async fn run(mut args: ConformanceArgs, output: Output) -> Result<ExitCode> {
    let opts = args.options();
    if args.check {
        let problems = runner::check(&opts);
        for p in &problems {
            eprintln!("{p}");
        }
        println!("{} problem(s) in the features", problems.len());
        return Ok(if problems.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    if args.list {
        let scenarios = runner::list(&opts)?;
        match output {
            Output::Json => println!("{}", serde_json::to_string_pretty(&scenarios)?),
            Output::Text => {
                for s in &scenarios {
                    println!(
                        "{}:{}  {} — {}  {}",
                        s.file,
                        s.line,
                        s.feature,
                        s.scenario,
                        s.tags.join(" ")
                    );
                }
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.kubeconfig.is_some() {
        return finish(runner::run(opts).await?, output);
    }
    let dir = tempfile::tempdir()?;
    let mut cfg =
        kubeproof_refcluster::cluster::ClusterConfig::with_components_for_tests(dir.path(), 3);
    if args.runtime == super::cluster::Runtime::Process {
        if let Some(fleet) = cfg.components.fleet.as_mut() {
            fleet.process = Some(kubeproof_refcluster::node::process::ProcessConfig::new(
                dir.path().join("nodes"),
            ));
        }
    }
    let cluster = kubeproof_refcluster::cluster::RunningCluster::start(cfg).await?;
    args.kubeconfig = Some(cluster.kubeconfig_path().to_path_buf());
    args.host_access = true;
    let opts = RunOptions {
        control: Some(Arc::new(BundledComponents(cluster.control()))),
        ..args.options()
    };
    let outcome = runner::run(opts).await;
    cluster.shutdown().await;
    finish(outcome?, output)
}

/// Prints the outcome and turns it into the exit code.
pub fn finish(outcome: RunOutcome, output: Output) -> Result<ExitCode> {
    let report = &outcome.report;
    let count = |s: Status| report.cases.iter().filter(|c| c.status == s).count();
    let (passed, failed, skipped, flaky) = (
        count(Status::Passed),
        count(Status::Failed),
        count(Status::Skipped),
        count(Status::Flaky),
    );
    match output {
        Output::Json => println!(
            "{}",
            serde_json::json!({"passed": passed, "failed": failed, "skipped": skipped, "flaky": flaky,
                               "reports": outcome.files.as_ref().map(|f| serde_json::json!({
                                   "json": f.json, "junit": f.junit, "markdown": f.markdown,
                                   "html": f.html, "conformance": f.conformance}))})
        ),
        Output::Text => {
            for c in report.cases.iter().filter(|c| c.status == Status::Failed) {
                println!("FAILED {} — {}", c.location(), c.scenario);
            }
            if let Some(f) = &outcome.files {
                let dir = f.json.parent().unwrap_or(std::path::Path::new("."));
                println!(
                    "reports in {}: report.html, report.md, junit.xml, report.json, cucumber.json, conformance.yaml",
                    dir.display()
                );
            }
            println!(
                "{} passed, {} failed, {} skipped",
                passed + flaky,
                failed,
                skipped
            );
        }
    }
    Ok(if report.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `kubeproof steps`: the step catalogue, Markdown for people, JSON for editors.
pub fn steps(output: Output) -> Result<ExitCode> {
    match output {
        Output::Json => println!("{}", kubeproof_steps::library::catalogue_json()),
        Output::Text => println!("{}", kubeproof_steps::library::catalogue_markdown()),
    }
    Ok(ExitCode::SUCCESS)
}
