//! The conformance suite as a test: `cargo test --features conformance`.
//!
//! Starts the bundled cluster (unless `KUBEPROOF_KUBECONFIG` or `--kubeconfig` names another
//! target), runs `features/` through the same runner as `kubeproof conformance`, writes the
//! reports to `target/kubeproof/conformance/`, and fails when any scenario failed.
//!
//! Arguments after `--`: `--kubeconfig FILE`, `--context NAME`, `--tags EXPR`,
//! `--features PATH` (repeatable), `--retries N`, `--concurrency N`, `--keep-on-failure`.

use std::path::PathBuf;
use std::process::ExitCode;

use kubeproof_refcluster::cluster::{ClusterConfig, RunningCluster};
use kubeproof_steps::runner::{self, RunOptions};

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(suite())
}

fn options_from_args() -> Result<RunOptions, String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let mut opts = RunOptions {
        kubeconfig: std::env::var_os("KUBEPROOF_KUBECONFIG").map(PathBuf::from),
        features: Vec::new(),
        report_dir: Some(target_dir.join("kubeproof").join("conformance")),
        // Most scenarios spend their time waiting for the cluster (the whole suite uses about a
        // quarter of one core), so 24 at once keep the run short without starving it.
        concurrency: 24,
        ..RunOptions::default()
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--kubeconfig" => opts.kubeconfig = Some(PathBuf::from(value("--kubeconfig")?)),
            "--context" => opts.context = Some(value("--context")?),
            "--tags" => opts.tags = Some(value("--tags")?),
            "--features" => opts.features.push(PathBuf::from(value("--features")?)),
            "--retries" => {
                opts.retries = value("--retries")?
                    .parse()
                    .map_err(|e| format!("--retries: {e}"))?
            }
            "--concurrency" => {
                opts.concurrency = value("--concurrency")?
                    .parse()
                    .map_err(|e| format!("--concurrency: {e}"))?
            }
            "--keep-on-failure" => opts.keep_on_failure = true,
            // cargo and libtest conventions (`--nocapture`, a name filter) do not apply here.
            _ => {}
        }
    }
    if opts.features.is_empty() {
        opts.features.push(root.join("features"));
    }
    Ok(opts)
}

async fn suite() -> ExitCode {
    let mut opts = match options_from_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };

    let mut bundled = None;
    let _data_dir;
    if opts.kubeconfig.is_none() {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => {
                eprintln!("cannot create a data directory: {e}");
                return ExitCode::FAILURE;
            }
        };
        let mut cfg = ClusterConfig::with_components_for_tests(dir.path(), 3);
        if let Err(e) = kubeproof_chaos::enable_audit(&mut cfg) {
            eprintln!("cannot turn on auditing for the bundled cluster: {e:#}");
            return ExitCode::FAILURE;
        }
        match RunningCluster::start(cfg).await {
            Ok(c) => {
                opts.kubeconfig = Some(c.kubeconfig_path().to_path_buf());
                opts.target_name = Some("bundled".into());
                kubeproof_chaos::bundled_access(&c, &mut opts);
                bundled = Some(c);
            }
            Err(e) => {
                eprintln!("cannot start the bundled cluster: {e:#}");
                return ExitCode::FAILURE;
            }
        }
        _data_dir = dir;
    }

    let outcome = runner::run(opts).await;
    if let Some(c) = bundled {
        c.shutdown().await;
    }
    match outcome {
        Ok(out) => {
            let s = out.report.summary();
            if let Some(files) = &out.files {
                eprintln!(
                    "reports: {}",
                    files
                        .html
                        .parent()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                );
            }
            // The plain closing line CI reads; flaky scenarios passed in the end.
            println!(
                "{} passed, {} failed, {} skipped",
                s.passed + s.flaky,
                s.failed,
                s.skipped
            );
            if out.report.succeeded() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("{e:#}");
            println!("0 passed, 1 failed, 0 skipped");
            ExitCode::FAILURE
        }
    }
}
