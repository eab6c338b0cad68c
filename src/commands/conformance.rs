//! `kubeproof conformance` and `kubeproof steps`: the declarative suite against any cluster.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
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
    /// Start the bundled cluster with a deliberate bug and watch the suite catch it
    /// (repeatable; not with --kubeconfig). The report's target then names the faults.
    #[arg(long = "inject-fault", value_enum, value_name = "FAULT")]
    pub inject_fault: Vec<super::cluster::FaultArg>,
    /// The target API server's audit log (`--audit-log-path`), readable here, for
    /// `@needs:audit-log` scenarios; the bundled cluster's is found without it.
    #[arg(long)]
    pub audit_log: Option<PathBuf>,
    /// The kube-scheduler's secure port, e.g. https://127.0.0.1:10259, scraped with the
    /// kubeconfig's credentials for `@needs:scheduler-metrics` scenarios; the bundled
    /// cluster's is found without it.
    #[arg(long, value_name = "URL")]
    pub scheduler_metrics_url: Option<String>,
    /// Accept the scheduler's serving certificate without checking it against the
    /// kubeconfig's CA (kubeadm's kube-scheduler serves a self-signed one).
    #[arg(long)]
    pub scheduler_insecure_skip_tls_verify: bool,
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
            inject_fault: Vec::new(),
            audit_log: None,
            scheduler_metrics_url: None,
            scheduler_insecure_skip_tls_verify: false,
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
            audit_log: self.audit_log.clone(),
            scheduler_metrics_url: self.scheduler_metrics_url.clone(),
            scheduler_insecure_tls: self.scheduler_insecure_skip_tls_verify,
            ..RunOptions::default()
        }
    }
}

pub async fn run(mut args: ConformanceArgs, output: Output) -> Result<ExitCode> {
    if args.kubeconfig.is_some() && !args.inject_fault.is_empty() {
        anyhow::bail!(
            "--inject-fault breaks the bundled cluster on purpose and cannot change the cluster behind --kubeconfig; drop one of the two flags"
        );
    }
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
    let faults = super::cluster::faults(&args.inject_fault);
    cfg.inject_faults(faults.clone())?;
    kubeproof_chaos::enable_audit(&mut cfg)?;
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
    let mut opts = args.options();
    kubeproof_chaos::bundled_access(&cluster, &mut opts);
    if let Some(warning) = super::cluster::fault_warning(&faults) {
        eprintln!("{warning}");
        // Reports of a deliberately broken cluster say so wherever they are read.
        opts.target_name = Some(format!(
            "bundled, with injected faults: {}",
            faults
                .iter()
                .map(|f| f.name())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
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
                print!("{}", failure_summary(c));
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

/// Lines shown lest a long message (an object dump) bury the next failure; the reports have all.
const FAILURE_LINES: usize = 12;

/// A failed scenario on the terminal: where, which behaviours, the step and the message.
fn failure_summary(c: &kubeproof_report::Case) -> String {
    let mut out = format!("FAILED {} — {}", c.location(), c.scenario);
    if !c.behaviours.is_empty() {
        out.push_str(&format!(" [{}]", c.behaviours.join(" ")));
    }
    out.push('\n');
    if let Some(f) = &c.failure {
        out.push_str(&format!("  step: {}\n", f.step));
        let lines: Vec<&str> = f.message.lines().collect();
        for line in lines.iter().take(FAILURE_LINES) {
            out.push_str(&format!("  {line}\n"));
        }
        if lines.len() > FAILURE_LINES {
            out.push_str(&format!(
                "  … {} more lines in the reports\n",
                lines.len() - FAILURE_LINES
            ));
        }
    }
    out
}

/// `kubeproof steps`: the step catalogue, Markdown for people, JSON for editors.
pub fn steps(output: Output) -> Result<ExitCode> {
    match output {
        Output::Json => println!("{}", kubeproof_steps::library::catalogue_json()),
        Output::Text => println!("{}", kubeproof_steps::library::catalogue_markdown()),
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_names_its_behaviours_step_and_message() {
        let mut c = kubeproof_report::Case::new(
            "workloads",
            "Rolling update",
            "stays within bounds",
            "features/workloads/x.feature",
            7,
            vec!["@B-WL-008".into(), "@needs:workloads".into()],
        );
        c.status = Status::Failed;
        c.failure = Some(kubeproof_report::Failure {
            step: "And at every moment …".into(),
            message: (0..20).map(|i| format!("line {i}\n")).collect(),
            ..Default::default()
        });
        let text = failure_summary(&c);
        assert!(text.starts_with(
            "FAILED features/workloads/x.feature:7 — stays within bounds [B-WL-008]\n"
        ));
        assert!(text.contains("  step: And at every moment …\n"));
        assert!(text.contains("  line 11\n") && !text.contains("line 12\n"));
        assert!(text.contains("8 more lines"));
    }

    #[test]
    fn inject_fault_is_refused_with_another_cluster() {
        let args = ConformanceArgs {
            kubeconfig: Some(PathBuf::from("/nonexistent/kubeconfig")),
            inject_fault: vec![super::super::cluster::FaultArg(
                kubeproof_refcluster::faults::Fault::DeploymentIgnoresMaxUnavailable,
            )],
            ..ConformanceArgs::default()
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let err = rt
            .block_on(run(args, Output::Text))
            .unwrap_err()
            .to_string();
        assert!(err.contains("--kubeconfig"), "{err}");
    }
}
