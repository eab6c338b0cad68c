//! Running features against a cluster and producing the report. `cargo test --features
//! conformance` and `kubeproof conformance` both call [`run`].

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::Utc;
use cucumber::gherkin::{self, tagexpr::TagOperation};
use cucumber::tag::Ext as _;
use cucumber::writer::Ext as _;
use cucumber::Cucumber;
use futures::FutureExt as _;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::Client;
use kubeproof_report::{Case, Catalogue, Report, ReportFiles, RunInfo, Status};

use crate::capabilities::{self, Capabilities};
use crate::collector::Collector;
use crate::features::{self, Problem};
use crate::kinds::Resolver;
use crate::world::{KubeWorld, Target};
use crate::{library, tags};

/// The Kubernetes minor version the shipped features assert.
pub const KUBERNETES_VERSION: &str = "1.32";

#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Kubeconfig of the target; `None` uses the default loading rules (KUBECONFIG,
    /// ~/.kube/config, in-cluster).
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    /// How the report names the target; defaults to the kubeconfig's server URL.
    pub target_name: Option<String>,
    /// Feature files and directories.
    pub features: Vec<PathBuf>,
    /// A cucumber tag expression selecting scenarios, e.g. `@B-API-010 or @watch`.
    pub tags: Option<String>,
    pub concurrency: usize,
    /// Extra attempts for a failing scenario; one that then passes is reported flaky.
    pub retries: usize,
    pub keep_on_failure: bool,
    /// Where to write the reports; `None` writes nothing.
    pub report_dir: Option<PathBuf>,
    /// Whether the target's processes and files are reachable (the bundled cluster).
    pub host_access: bool,
    /// Capabilities to take as present without probing (e.g. `network`).
    pub assume_capabilities: Vec<String>,
    /// Print one line per finished scenario to stderr.
    pub progress: bool,
    /// Stops and starts the target's components (given when the runner started the cluster).
    pub control: Option<Arc<dyn crate::control::ClusterControl>>,
    /// Compacts the target's storage history (given when the runner started the cluster).
    pub history: Option<Arc<dyn crate::control::HistoryControl>>,
    /// The target API server's audit log (`--audit-log-path`), when the runner can read it.
    pub audit_log: Option<PathBuf>,
    /// The kube-scheduler's secure port (`https://host:10259` upstream), scraped with the
    /// kubeconfig's credentials by the `the scheduler metric ...` steps.
    pub scheduler_metrics_url: Option<String>,
    /// Accept any serving certificate from the scheduler (kubeadm's scheduler serves a
    /// self-signed one the kubeconfig's CA does not vouch for).
    pub scheduler_insecure_tls: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            kubeconfig: None,
            context: None,
            target_name: None,
            features: vec![PathBuf::from("features")],
            tags: None,
            concurrency: 8,
            retries: 0,
            keep_on_failure: false,
            report_dir: None,
            host_access: false,
            assume_capabilities: Vec::new(),
            progress: true,
            control: None,
            history: None,
            audit_log: None,
            scheduler_metrics_url: None,
            scheduler_insecure_tls: false,
        }
    }
}

pub struct RunOutcome {
    pub report: Report,
    /// Cucumber's own JSON format, for tools that read it.
    pub cucumber_json: String,
    pub files: Option<ReportFiles>,
}

/// Features that failed the checks, each problem with its file and line.
#[derive(Debug)]
pub struct CheckFailed(pub Vec<Problem>);

impl std::fmt::Display for CheckFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{} problem(s) in the features:", self.0.len())?;
        for p in &self.0 {
            writeln!(f, "  {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for CheckFailed {}

/// A scenario that would run, for `--list`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ScenarioRef {
    pub file: String,
    pub line: usize,
    pub feature: String,
    pub scenario: String,
    pub tags: Vec<String>,
}

/// Loads and checks the features; the parsed features and tag filter when all is well.
pub fn prepare(
    opts: &RunOptions,
) -> Result<(Vec<gherkin::Feature>, Option<TagOperation>), CheckFailed> {
    let files = features::collect_files(&opts.features).map_err(|p| CheckFailed(vec![p]))?;
    if files.is_empty() {
        return Err(CheckFailed(vec![Problem {
            file: format!("{:?}", opts.features),
            line: 0,
            message: "no .feature files found".into(),
        }]));
    }
    let (feats, mut problems) = features::load(&files);
    problems.extend(features::check(&feats, Catalogue::embedded()));
    let filter = match opts
        .tags
        .as_deref()
        .map(features::parse_tag_expression)
        .transpose()
    {
        Ok(f) => f,
        Err(e) => {
            problems.push(Problem {
                file: "--tags".into(),
                line: 0,
                message: e,
            });
            None
        }
    };
    if problems.is_empty() {
        Ok((feats, filter))
    } else {
        Err(CheckFailed(problems))
    }
}

/// `--check`: every problem in the features, without touching a cluster.
pub fn check(opts: &RunOptions) -> Vec<Problem> {
    match prepare(opts) {
        Ok(_) => Vec::new(),
        Err(CheckFailed(p)) => p,
    }
}

/// `--list`: the scenarios the options select.
pub fn list(opts: &RunOptions) -> Result<Vec<ScenarioRef>, CheckFailed> {
    let (feats, filter) = prepare(opts)?;
    let mut out = Vec::new();
    for f in &feats {
        for (rule, sc) in features::scenarios(f) {
            let t = features::scenario_tags(f, rule, sc);
            if filter.as_ref().is_none_or(|op| op.eval(t.iter())) {
                out.push(ScenarioRef {
                    file: features::feature_file(f),
                    line: sc.position.line,
                    feature: f.name.clone(),
                    scenario: sc.name.clone(),
                    tags: t.iter().map(|t| format!("@{t}")).collect(),
                });
            }
        }
    }
    Ok(out)
}

pub async fn connect(opts: &RunOptions) -> anyhow::Result<(Client, String)> {
    let (config, name) = connect_config(opts).await?;
    Ok((Client::try_from(config)?, name))
}

/// The target's client configuration and display name.
pub async fn connect_config(opts: &RunOptions) -> anyhow::Result<(kube::Config, String)> {
    let config = match &opts.kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path)?;
            let kopts = KubeConfigOptions {
                context: opts.context.clone(),
                ..KubeConfigOptions::default()
            };
            kube::Config::from_custom_kubeconfig(kc, &kopts).await?
        }
        None => match &opts.context {
            Some(ctx) => {
                kube::Config::from_kubeconfig(&KubeConfigOptions {
                    context: Some(ctx.clone()),
                    ..KubeConfigOptions::default()
                })
                .await?
            }
            None => kube::Config::infer().await?,
        },
    };
    let name = opts
        .target_name
        .clone()
        .unwrap_or_else(|| config.cluster_url.to_string());
    Ok((config, name))
}

/// Runs the selected scenarios and builds the report (and writes it when asked).
///
/// The returned future is not `Send` (cucumber runs steps as local futures): drive it with
/// `block_on` or `LocalSet`, not `tokio::spawn`.
pub async fn run(opts: RunOptions) -> anyhow::Result<RunOutcome> {
    let (feats, filter) = prepare(&opts)?;
    let (config, target_name) = connect_config(&opts).await?;
    let client = Client::try_from(config.clone())?;
    let mut exact_config = config.clone();
    exact_config.default_retry = false;
    let exact_client = Client::try_from(exact_config)?;
    let server_version = client.apiserver_version().await.ok().map(|v| v.git_version);
    let mut caps = capabilities::probe(&client, opts.host_access, &opts.assume_capabilities).await;
    match &opts.control {
        Some(c) => caps.set(
            "component-control",
            true,
            format!(
                "the runner started the cluster: {}",
                c.components().join(", ")
            ),
        ),
        None => caps.set(
            "component-control",
            false,
            "only a cluster the runner starts itself lets it stop components",
        ),
    }
    set_access_capabilities(&mut caps, &opts);
    let scheduler = library::metrics::probe_scheduler(
        &config,
        opts.scheduler_metrics_url.as_deref(),
        opts.scheduler_insecure_tls,
        &mut caps,
    )
    .await;
    let started_at = Utc::now();
    let clock = Instant::now();

    let selected: Vec<(String, usize)> = list_selected(&feats, filter.as_ref());
    let skipped = skipped_cases(&feats, filter.as_ref(), &caps);
    let runnable = selected.len() - skipped.len();

    let target = Arc::new(Target {
        client: client.clone(),
        exact_client,
        config,
        resolver: Resolver::new(client.clone()),
        keep_on_failure: opts.keep_on_failure,
        control: opts.control.clone(),
        history: opts.history.clone(),
        audit_log: opts.audit_log.clone(),
        scheduler,
    });
    let collector = Collector::new(runnable, opts.progress);
    let json_buf = SharedBuf::default();

    let runner = cucumber::runner::Basic::default()
        .steps(library::collection())
        .max_concurrent_scenarios(opts.concurrency.max(1))
        .retries(opts.retries)
        .before({
            let target = target.clone();
            move |_, _, _, world: &mut KubeWorld| {
                let target = target.clone();
                async move {
                    if let Err(e) = world.start(target).await {
                        std::panic::resume_unwind(Box::new(format!("{e:#}")));
                    }
                }
                .boxed_local()
            }
        })
        .after(move |_, _, _, finished, world: Option<&mut KubeWorld>| {
            async move {
                let Some(world) = world else { return };
                let failed = !matches!(finished, cucumber::event::ScenarioFinished::StepPassed);
                let keep = failed && world.target.as_ref().is_some_and(|t| t.keep_on_failure);
                if keep {
                    eprintln!(
                        "keeping namespace {} of a failed scenario (--keep-on-failure)",
                        world.namespace
                    );
                } else {
                    world.cleanup().await;
                }
            }
            .boxed_local()
        });
    let writer = collector
        .clone()
        .tee::<KubeWorld, _>(cucumber::writer::Json::raw(json_buf.clone()))
        .normalized();
    // Default options: cucumber must not parse this process's command line (the CLI's or
    // cargo test's), kubeproof passes everything it needs explicitly.
    let cucumber: Cucumber<KubeWorld, _, _, _, _, cucumber::cli::Empty> =
        Cucumber::custom(Preparsed, runner, writer);
    let cucumber = cucumber.with_cli::<cucumber::cli::Empty>(cucumber::cli::Opts::default());

    let caps_for_filter = caps.clone();
    let mut ordered = feats.clone();
    features::order_for_run(&mut ordered);
    cucumber
        .filter_run(ordered, move |feat, rule, sc| {
            let t = features::scenario_tags(feat, rule, sc);
            filter.as_ref().is_none_or(|op| op.eval(t.iter()))
                && caps_for_filter.unmet(&tags::parse(&t).needs).is_none()
        })
        .await;

    let finished_at = Utc::now();
    let mut report = Report::new(RunInfo {
        tool: format!("kubeproof {}", env!("CARGO_PKG_VERSION")),
        target: target_name,
        server_version,
        kubernetes_version: KUBERNETES_VERSION.into(),
        profile: opts.tags.clone().unwrap_or_else(|| "default".into()),
        started_at,
        finished_at,
        duration_ms: clock.elapsed().as_millis() as u64,
    });
    let collected = std::mem::take(
        &mut *collector
            .state
            .lock()
            .map_err(|_| anyhow::anyhow!("collector poisoned"))?,
    );
    if !collected.errors.is_empty() {
        anyhow::bail!("the run hit errors: {}", collected.errors.join("; "));
    }
    report.cases = collected.cases;
    report.cases.extend(skipped);
    report
        .cases
        .sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));

    let cucumber_json = json_buf.text();
    let files = match &opts.report_dir {
        Some(dir) => {
            let files = kubeproof_report::write_all(&report, Catalogue::embedded(), dir)?;
            std::fs::write(dir.join("cucumber.json"), &cucumber_json)?;
            Some(files)
        }
        None => None,
    };
    Ok(RunOutcome {
        report,
        cucumber_json,
        files,
    })
}

/// Capabilities that come from what the runner was given rather than from probing the API:
/// compacting the store on demand and reading the audit log.
fn set_access_capabilities(caps: &mut Capabilities, opts: &RunOptions) {
    match &opts.history {
        Some(_) => caps.set(
            "compaction-control",
            true,
            "the runner started the cluster and compacts its store on demand",
        ),
        None => caps.set(
            "compaction-control",
            false,
            "only a cluster the runner starts itself lets it compact the store on demand (kube-apiserver compacts etcd every 5 minutes)",
        ),
    }
    match &opts.audit_log {
        Some(path) if path.is_file() => caps.set(
            "audit-log",
            true,
            format!("the API server's audit log is {}", path.display()),
        ),
        Some(path) => caps.set(
            "audit-log",
            false,
            format!("the audit log {} is not a readable file", path.display()),
        ),
        None => caps.set(
            "audit-log",
            false,
            "the runner does not know where the API server writes its audit log (pass --audit-log PATH)",
        ),
    }
}

fn list_selected(
    feats: &[gherkin::Feature],
    filter: Option<&TagOperation>,
) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for f in feats {
        for (rule, sc) in features::scenarios(f) {
            if filter.is_none_or(|op| op.eval(features::scenario_tags(f, rule, sc).iter())) {
                out.push((features::feature_file(f), sc.position.line));
            }
        }
    }
    out
}

/// Selected scenarios the target cannot serve, as skipped cases with the reason.
fn skipped_cases(
    feats: &[gherkin::Feature],
    filter: Option<&TagOperation>,
    caps: &Capabilities,
) -> Vec<Case> {
    let mut out = Vec::new();
    for f in feats {
        for (rule, sc) in features::scenarios(f) {
            let t = features::scenario_tags(f, rule, sc);
            if !filter.is_none_or(|op| op.eval(t.iter())) {
                continue;
            }
            if let Some(reason) = caps.unmet(&tags::parse(&t).needs) {
                let tagged = t.iter().map(|t| format!("@{t}")).collect();
                let mut c = Case::new(
                    &features::area(f),
                    &f.name,
                    &sc.name,
                    &features::feature_file(f),
                    sc.position.line as u32,
                    tagged,
                );
                c.status = Status::Skipped;
                c.reason = Some(reason);
                out.push(c);
            }
        }
    }
    out
}

/// Hands already parsed (and checked) features to cucumber.
struct Preparsed;

impl cucumber::Parser<Vec<gherkin::Feature>> for Preparsed {
    type Cli = cucumber::cli::Empty;
    type Output =
        futures::stream::Iter<std::vec::IntoIter<cucumber::parser::Result<gherkin::Feature>>>;

    fn parse(self, input: Vec<gherkin::Feature>, _cli: Self::Cli) -> Self::Output {
        futures::stream::iter(input.into_iter().map(Ok).collect::<Vec<_>>())
    }
}

/// An in-memory sink for cucumber's JSON writer.
#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl SharedBuf {
    fn text(&self) -> String {
        self.0
            .lock()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }
}

impl io::Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| io::Error::other("poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> RunOptions {
        RunOptions {
            features: vec![PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../features")],
            ..RunOptions::default()
        }
    }

    #[test]
    fn shipped_features_pass_the_check() {
        let problems: Vec<String> = check(&shipped()).iter().map(|p| p.to_string()).collect();
        assert!(problems.is_empty(), "{problems:#?}");
    }

    #[derive(Debug)]
    struct NoHistory;

    impl crate::control::HistoryControl for NoHistory {
        fn compact(&self) -> futures::future::BoxFuture<'_, anyhow::Result<i64>> {
            Box::pin(async { Ok(0) })
        }
    }

    #[test]
    fn access_capabilities_follow_what_the_runner_was_given() {
        let mut caps = Capabilities::default();
        set_access_capabilities(&mut caps, &RunOptions::default());
        let why = caps.unmet(&["compaction-control".into()]).unwrap();
        assert!(why.contains("every 5 minutes"), "{why}");
        let why = caps.unmet(&["audit-log".into()]).unwrap();
        assert!(why.contains("--audit-log PATH"), "{why}");
        let missing = RunOptions {
            audit_log: Some(PathBuf::from("/nonexistent/audit.log")),
            ..RunOptions::default()
        };
        set_access_capabilities(&mut caps, &missing);
        let why = caps.unmet(&["audit-log".into()]).unwrap();
        assert!(why.contains("not a readable file"), "{why}");
        let given = RunOptions {
            history: Some(Arc::new(NoHistory)),
            audit_log: Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")),
            ..RunOptions::default()
        };
        set_access_capabilities(&mut caps, &given);
        assert_eq!(
            caps.unmet(&["compaction-control".into(), "audit-log".into()]),
            None
        );
    }

    #[test]
    fn list_applies_the_tag_filter() {
        let all = list(&shipped()).unwrap();
        assert!(all.len() > 20);
        let opts = RunOptions {
            tags: Some("@B-API-010".into()),
            ..shipped()
        };
        let some = list(&opts).unwrap();
        assert!(!some.is_empty() && some.len() < all.len());
        assert!(some
            .iter()
            .all(|s| s.tags.iter().any(|t| t == "@B-API-010")));
        let bad = RunOptions {
            tags: Some("@a and (".into()),
            ..shipped()
        };
        assert!(list(&bad)
            .unwrap_err()
            .to_string()
            .contains("bad tag expression"));
    }
}
