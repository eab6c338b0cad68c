//! Metrics steps: scraping the API server's and the kube-scheduler's `/metrics` (Prometheus
//! text format) and judging one series' value, polled, so that a scenario can wait for a
//! gauge to move. A series is written as in PromQL without operators,
//! `scheduler_pending_pods{queue="gated"}`: its value is the sum of every sample of that name
//! whose labels include the given ones (as `sum()` would), so a counter split by a label the
//! scenario does not name (`profile`) is still one number.
//!
//! The scheduler is reached at its secure port with the runner's credentials (client
//! certificate or token from the kubeconfig); the capability `scheduler-metrics` says whether
//! the runner knows where that is.

use std::collections::BTreeMap;

use kube::Client;

use super::support::{over_time, StepArgs, StepFailure, StepResult};
use crate::api::{self, ApiResponse};
use crate::capabilities::Capabilities;
use crate::world::KubeWorld;

/// The kube-scheduler's secure port as the runner reaches it.
#[derive(Clone)]
pub struct SchedulerEndpoint {
    pub url: String,
    /// The runner's client configuration pointed at the scheduler, for other credentials.
    pub config: kube::Config,
    pub client: Client,
}

/// The runner's configuration pointed at `url` instead of the API server.
fn endpoint_config(
    config: &kube::Config,
    url: &str,
    insecure: bool,
) -> Result<kube::Config, String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("--scheduler-metrics-url {url:?} is not a URL: {e}"))?;
    if uri.scheme_str() != Some("https") || uri.host().is_none() {
        return Err(format!(
            "--scheduler-metrics-url {url:?} must be an https:// URL with a host, e.g. https://127.0.0.1:10259"
        ));
    }
    let mut c = config.clone();
    c.cluster_url = uri;
    // The API server's name does not fit the scheduler's certificate.
    c.tls_server_name = None;
    c.accept_invalid_certs = c.accept_invalid_certs || insecure;
    c.default_retry = false;
    Ok(c)
}

/// Sets the `scheduler-metrics` capability: present when the runner was given the
/// scheduler's secure port and `/metrics` answers there with its credentials.
pub async fn probe_scheduler(
    config: &kube::Config,
    url: Option<&str>,
    insecure: bool,
    caps: &mut Capabilities,
) -> Option<SchedulerEndpoint> {
    const CAP: &str = "scheduler-metrics";
    let Some(url) = url else {
        caps.set(
            CAP,
            false,
            "the runner does not know the scheduler's secure port (pass --scheduler-metrics-url https://HOST:10259)",
        );
        return None;
    };
    let built = endpoint_config(config, url, insecure).and_then(|c| {
        Client::try_from(c.clone())
            .map(|client| (c, client))
            .map_err(|e| format!("cannot build a client for the scheduler at {url}: {e}"))
    });
    let (config, client) = match built {
        Ok(x) => x,
        Err(why) => {
            caps.set(CAP, false, why);
            return None;
        }
    };
    match scrape(&client).await {
        // Every kube-scheduler reports its queue; another component's /metrics does not.
        Ok(text) if !text.contains("scheduler_pending_pods") => {
            caps.set(
                CAP,
                false,
                format!("{url}/metrics answered without scheduler_pending_pods: is it the kube-scheduler's secure port?"),
            );
            None
        }
        Ok(_) => {
            caps.set(
                CAP,
                true,
                format!("the scheduler's /metrics answered at {url}"),
            );
            Some(SchedulerEndpoint {
                url: url.to_string(),
                config,
                client,
            })
        }
        Err(why) => {
            caps.set(CAP, false, format!("{url}: {}", why.message));
            None
        }
    }
}

/// Fetches `/metrics` and keeps its text.
async fn scrape(client: &Client) -> Result<String, StepFailure> {
    let mut req = api::request(http::Method::GET, "/metrics", None, Vec::new())?;
    req.headers_mut().insert(
        http::header::ACCEPT,
        http::HeaderValue::from_static("text/plain"),
    );
    let resp = api::send(client, req).await?;
    if !resp.is_success() {
        return Err(StepFailure::msg(format!(
            "scraping /metrics failed: {}",
            resp.describe()
        )));
    }
    Ok(resp.body)
}

fn scheduler(world: &KubeWorld) -> Result<&SchedulerEndpoint, StepFailure> {
    world.target()?.scheduler.as_ref().ok_or_else(|| {
        StepFailure::msg(
            "the runner does not know the scheduler's secure port; tag the scenario @needs:scheduler-metrics so that it is skipped on such targets",
        )
    })
}

async fn scrape_component(world: &KubeWorld, component: &str) -> Result<String, StepFailure> {
    match component {
        "scheduler" => scrape(&scheduler(world)?.client).await,
        _ => scrape(&world.target()?.exact_client).await,
    }
}

/// A series selector: a metric name and labels every matching sample must carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

impl Selector {
    pub fn parse(text: &str) -> Result<Selector, String> {
        let text = text.trim();
        let (name, labels) = match text.split_once('{') {
            None => (text, BTreeMap::new()),
            Some((name, rest)) => {
                let inner = rest.strip_suffix('}').ok_or_else(|| {
                    format!("series {text:?} opens '{{' but does not end with '}}'")
                })?;
                (name, parse_labels(inner)?)
            }
        };
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if !valid {
            return Err(format!("{name:?} is not a metric name"));
        }
        Ok(Selector {
            name: name.to_string(),
            labels,
        })
    }

    fn matches(&self, sample: &Sample) -> bool {
        sample.name == self.name
            && self
                .labels
                .iter()
                .all(|(k, v)| sample.labels.get(k) == Some(v))
    }
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.name)?;
        if !self.labels.is_empty() {
            let l: Vec<String> = self
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect();
            write!(f, "{{{}}}", l.join(","))?;
        }
        Ok(())
    }
}

/// One sample line of the text format.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// `a="x",b="y"` (values with `\"`, `\\` and `\n` escapes) into a map.
fn parse_labels(inner: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let mut rest = inner.trim();
    while !rest.is_empty() {
        let (key, after) = rest
            .split_once('=')
            .ok_or_else(|| format!("label list {inner:?}: expected name=\"value\""))?;
        let after = after.trim_start();
        let mut chars = after.char_indices();
        if chars.next().map(|(_, c)| c) != Some('"') {
            return Err(format!("label {key:?} needs a double-quoted value"));
        }
        let mut value = String::new();
        let mut end = None;
        let mut escaped = false;
        for (i, c) in chars {
            match (escaped, c) {
                (true, 'n') => {
                    value.push('\n');
                    escaped = false
                }
                (true, c) => {
                    value.push(c);
                    escaped = false
                }
                (false, '\\') => escaped = true,
                (false, '"') => {
                    end = Some(i);
                    break;
                }
                (false, c) => value.push(c),
            }
        }
        let end = end.ok_or_else(|| format!("label {key:?} has an unterminated value"))?;
        out.insert(key.trim().to_string(), value);
        rest = after[end + 1..].trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
    Ok(out)
}

/// The samples of a Prometheus text-format exposition (comments skipped).
pub fn parse_exposition(text: &str) -> Result<Vec<Sample>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: &str| format!("line {}: {why}: {line}", n + 1);
        let (series, value) = match line.rfind('}') {
            Some(close) => (&line[..=close], line[close + 1..].trim()),
            None => line
                .split_once(char::is_whitespace)
                .ok_or_else(|| bad("no value"))?,
        };
        let value_text = value
            .split_whitespace()
            .next()
            .ok_or_else(|| bad("no value"))?;
        let value = match value_text {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse::<f64>()
                .map_err(|_| bad("the value is not a number"))?,
        };
        let sel = Selector::parse(series).map_err(|e| bad(&e))?;
        out.push(Sample {
            name: sel.name,
            labels: sel.labels,
            value,
        });
    }
    Ok(out)
}

/// The sum of the samples `sel` matches, or `None` when none does.
pub fn value_of(samples: &[Sample], sel: &Selector) -> Option<f64> {
    let mut matched = samples.iter().filter(|s| sel.matches(s)).peekable();
    matched.peek()?;
    Some(matched.map(|s| s.value).sum())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Relation {
    AtLeast,
    AtMost,
    GreaterThan,
    LessThan,
    EqualTo,
}

impl Relation {
    fn parse(op: &str) -> Result<Relation, StepFailure> {
        Ok(match op {
            "at least" => Relation::AtLeast,
            "at most" => Relation::AtMost,
            "greater than" => Relation::GreaterThan,
            "less than" => Relation::LessThan,
            "equal to" => Relation::EqualTo,
            other => return Err(StepFailure::msg(format!("unknown relation {other:?}"))),
        })
    }

    fn holds(self, actual: f64, expected: f64) -> bool {
        match self {
            Relation::AtLeast => actual >= expected,
            Relation::AtMost => actual <= expected,
            Relation::GreaterThan => actual > expected,
            Relation::LessThan => actual < expected,
            Relation::EqualTo => actual == expected,
        }
    }
}

fn parse_number(raw: &str) -> Result<f64, StepFailure> {
    raw.trim()
        .parse()
        .map_err(|_| StepFailure::msg(format!("{raw:?} is not a number")))
}

fn component_name(component: &str) -> &'static str {
    if component == "scheduler" {
        "the scheduler"
    } else {
        "the API server"
    }
}

/// `the scheduler metric X is at least N [within S seconds]`, `... exists`.
pub async fn metric_value(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let component = args.req("component")?.to_string();
    let sel = Selector::parse(args.req("series")?).map_err(StepFailure::msg)?;
    let expect = match args.get("op") {
        Some(op) => Some((
            Relation::parse(op)?,
            op.to_string(),
            parse_number(args.req("value")?)?,
        )),
        None => None,
    };
    let world = &*world;
    over_time(&args, async || {
        let text = scrape_component(world, &component).await?;
        let samples = parse_exposition(&text).map_err(|e| {
            StepFailure::msg(format!(
                "{}'s /metrics is not in the Prometheus text format: {e}",
                component_name(&component)
            ))
        })?;
        let Some(actual) = value_of(&samples, &sel) else {
            return Err(StepFailure::msg(format!(
                "{} reports no series {sel}",
                component_name(&component)
            )));
        };
        match &expect {
            Some((rel, op, expected)) if !rel.holds(actual, *expected) => {
                Err(StepFailure::msg(format!(
                    "{}'s {sel} is {actual}, expected {op} {expected}",
                    component_name(&component)
                )))
            }
            _ => Ok(()),
        }
    })
    .await
}

/// `I remember the scheduler metric X as "var"`: the current value (0 when no series matches
/// yet, as for a counter nothing has incremented).
pub async fn remember_metric(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let component = args.req("component")?;
    let sel = Selector::parse(args.req("series")?).map_err(StepFailure::msg)?;
    let text = scrape_component(world, component).await?;
    let samples = parse_exposition(&text).map_err(StepFailure::msg)?;
    let value = value_of(&samples, &sel).unwrap_or(0.0);
    world
        .vars
        .insert(args.req("var")?.to_string(), value.to_string());
    Ok(())
}

/// `I request GET "/path" from the scheduler [without credentials | with bearer token "t"]`.
pub async fn scheduler_request(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let endpoint = scheduler(world)?;
    let client = if args.get("anon").is_some() || args.get("token").is_some() {
        let mut config = endpoint.config.clone();
        config.auth_info = kube::config::AuthInfo {
            token: args.get("token").map(|t| t.to_string().into()),
            ..Default::default()
        };
        Client::try_from(config).map_err(|e| {
            StepFailure::msg(format!(
                "cannot build a client for the scheduler with other credentials: {e}"
            ))
        })?
    } else {
        endpoint.client.clone()
    };
    let req = api::request(http::Method::GET, args.req("path")?, None, Vec::new())?;
    let resp: ApiResponse = api::send(&client, req).await?;
    world.last = Some(resp);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPOSITION: &str = r#"# HELP scheduler_pending_pods Number of pending pods, by the queue type.
# TYPE scheduler_pending_pods gauge
scheduler_pending_pods{queue="active"} 0
scheduler_pending_pods{queue="gated"} 2
scheduler_pending_pods{queue="unschedulable"} 1
# TYPE scheduler_schedule_attempts_total counter
scheduler_schedule_attempts_total{profile="default-scheduler",result="scheduled"} 7
scheduler_schedule_attempts_total{profile="bin-packer",result="scheduled"} 3
scheduler_schedule_attempts_total{profile="default-scheduler",result="unschedulable"} 4
scheduler_scheduling_attempt_duration_seconds_bucket{profile="default-scheduler",result="scheduled",le="+Inf"} 7
odd_label{path="a \"quoted\", comma={x}"} 1.5e3
process_start_time_seconds 1.7e9
"#;

    #[test]
    fn reads_samples_and_labels() {
        let s = parse_exposition(EXPOSITION).unwrap();
        assert_eq!(s.len(), 9);
        assert_eq!(s[1].name, "scheduler_pending_pods");
        assert_eq!(s[1].labels["queue"], "gated");
        assert_eq!(s[1].value, 2.0);
        assert_eq!(s[7].labels["path"], r#"a "quoted", comma={x}"#);
        assert_eq!(s[7].value, 1500.0);
        assert!(s[8].labels.is_empty());
    }

    #[test]
    fn a_selector_sums_the_series_it_matches() {
        let s = parse_exposition(EXPOSITION).unwrap();
        let v = |sel: &str| value_of(&s, &Selector::parse(sel).unwrap());
        assert_eq!(v(r#"scheduler_pending_pods{queue="gated"}"#), Some(2.0));
        assert_eq!(
            v(r#"scheduler_schedule_attempts_total{result="scheduled"}"#),
            Some(10.0)
        );
        assert_eq!(
            v(r#"scheduler_schedule_attempts_total{result="scheduled",profile="bin-packer"}"#),
            Some(3.0)
        );
        assert_eq!(v("scheduler_pending_pods"), Some(3.0));
        assert_eq!(v(r#"scheduler_pending_pods{queue="backoff"}"#), None);
        assert_eq!(v("scheduler_pending"), None);
    }

    #[test]
    fn bad_selectors_and_lines_are_explained() {
        assert!(Selector::parse("1abc")
            .unwrap_err()
            .contains("not a metric name"));
        assert!(Selector::parse(r#"x{a="b""#)
            .unwrap_err()
            .contains("does not end"));
        assert!(Selector::parse(r#"x{a=b}"#)
            .unwrap_err()
            .contains("double-quoted"));
        assert!(parse_exposition("x{a=\"b\"} nope")
            .unwrap_err()
            .contains("not a number"));
    }

    #[test]
    fn relations_compare_as_written() {
        assert!(Relation::parse("at least").unwrap().holds(1.0, 1.0));
        assert!(!Relation::parse("greater than").unwrap().holds(1.0, 1.0));
        assert!(Relation::parse("at most").unwrap().holds(0.0, 1.0));
        assert!(Relation::parse("less than").unwrap().holds(0.0, 1.0));
        assert!(Relation::parse("equal to").unwrap().holds(2.0, 2.0));
        assert!(Relation::parse("about").is_err());
    }

    #[test]
    fn the_scheduler_endpoint_keeps_the_runner_credentials() {
        let mut c = kube::Config::new("https://127.0.0.1:6443".parse().unwrap());
        c.tls_server_name = Some("kubernetes".into());
        let e = endpoint_config(&c, "https://127.0.0.1:10259", false).unwrap();
        assert_eq!(e.cluster_url.to_string(), "https://127.0.0.1:10259/");
        assert_eq!(e.tls_server_name, None);
        assert!(!e.accept_invalid_certs);
        assert!(
            endpoint_config(&c, "https://127.0.0.1:10259", true)
                .unwrap()
                .accept_invalid_certs
        );
        assert!(endpoint_config(&c, "http://127.0.0.1:10251", false).is_err());
    }
}
