//! Plumbing shared by the step implementations: arguments, failures, manifests, retries.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::api::{self, ApiResponse};
use crate::kinds::ResourceInfo;
use crate::world::KubeWorld;

/// A step's captured arguments and doc string, already templated.
#[derive(Clone, Debug, Default)]
pub struct StepArgs {
    pub caps: BTreeMap<String, String>,
    pub doc: Option<String>,
}

impl StepArgs {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.caps
            .get(name)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    pub fn req(&self, name: &str) -> Result<&str, StepFailure> {
        self.caps
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| StepFailure::msg(format!("step argument '{name}' is missing")))
    }

    pub fn doc(&self) -> Result<&str, StepFailure> {
        self.doc.as_deref().ok_or_else(|| {
            StepFailure::msg("this step needs a doc string (\"\"\" ... \"\"\") below it")
        })
    }

    /// Whether the optional "try to " prefix was used: the request may fail, and the failure
    /// is kept for a later "the last request failed" step instead of failing this one.
    pub fn trying(&self) -> bool {
        self.get("try").is_some()
    }

    pub fn within(&self) -> Option<Duration> {
        self.get("secs")
            .and_then(|s| s.parse::<f64>().ok())
            .map(Duration::from_secs_f64)
    }

    /// The `for N seconds` duration: the assertion must hold on every poll for that long.
    pub fn holding_for(&self) -> Option<Duration> {
        self.get("for")
            .and_then(|s| s.parse::<f64>().ok())
            .map(Duration::from_secs_f64)
    }

    /// The identity named by `as user "x"` (`in group "g"` / `in groups "a,b"`), if any.
    pub fn identity(&self) -> Option<Identity> {
        self.get("user").map(|user| Identity {
            user: user.to_string(),
            groups: self.get("groups").map(parse_groups).unwrap_or_default(),
        })
    }

    pub fn number<T: std::str::FromStr>(&self, name: &str) -> Result<T, StepFailure> {
        let raw = self.req(name)?;
        raw.parse()
            .map_err(|_| StepFailure::msg(format!("'{raw}' is not a valid number for {name}")))
    }
}

/// Why a step failed; the runner adds the namespace's events before reporting it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepFailure {
    pub message: String,
    pub diff: Option<String>,
}

impl StepFailure {
    pub fn msg(m: impl Into<String>) -> StepFailure {
        StepFailure {
            message: m.into(),
            diff: None,
        }
    }
}

impl From<anyhow::Error> for StepFailure {
    fn from(e: anyhow::Error) -> Self {
        StepFailure::msg(format!("{e:#}"))
    }
}

impl From<String> for StepFailure {
    fn from(e: String) -> Self {
        StepFailure::msg(e)
    }
}

impl From<serde_json::Error> for StepFailure {
    fn from(e: serde_json::Error) -> Self {
        StepFailure::msg(e.to_string())
    }
}

pub type StepResult = Result<(), StepFailure>;

/// Parses a doc string holding one or more YAML documents (JSON is YAML too). Empty
/// documents (a trailing `---`) are skipped.
pub fn parse_documents(text: &str) -> Result<Vec<Value>, String> {
    use serde::Deserialize as _;
    let mut out = Vec::new();
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let v = Value::deserialize(doc)
            .map_err(|e| format!("document {} is not valid YAML: {e}", i + 1))?;
        if !v.is_null() {
            out.push(v);
        }
    }
    Ok(out)
}

/// Runs `check` until it passes or `within` has elapsed (once when `within` is `None`).
pub async fn eventually<F>(within: Option<Duration>, mut check: F) -> StepResult
where
    F: AsyncFnMut() -> StepResult,
{
    let deadline = within.map(|d| Instant::now() + d);
    loop {
        let res = check().await;
        match (&res, deadline) {
            (Ok(()), _) | (Err(_), None) => return res,
            (Err(_), Some(d)) if Instant::now() >= d => {
                let mut f = res.unwrap_err();
                f.message = format!(
                    "{} (gave up after {:.0} s)",
                    f.message,
                    within.unwrap_or_default().as_secs_f64()
                );
                return Err(f);
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// How often `for N seconds` assertions look again.
pub const CONSISTENTLY_POLL: Duration = Duration::from_millis(200);

/// Runs `check` every `period` for `duration` and fails on the first poll where it does not
/// hold, naming how long it had held: "consistently", the dual of [`eventually`].
pub async fn consistently<F>(duration: Duration, period: Duration, mut check: F) -> StepResult
where
    F: AsyncFnMut() -> StepResult,
{
    let start = Instant::now();
    let deadline = start + duration;
    loop {
        if let Err(mut f) = check().await {
            f.message = format!(
                "{} (held for {:.1} s of the required {:.1} s)",
                f.message,
                start.elapsed().as_secs_f64(),
                duration.as_secs_f64()
            );
            return Err(f);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(());
        }
        // The last poll lands on the deadline so the whole duration is covered.
        tokio::time::sleep(period.min(deadline - now)).await;
    }
}

/// Judges an assertion by the step's timing suffix: `for N seconds` (must hold throughout),
/// `within N seconds` (must come to hold), or neither (must hold now).
pub async fn over_time<F>(args: &StepArgs, check: F) -> StepResult
where
    F: AsyncFnMut() -> StepResult,
{
    match args.holding_for() {
        Some(d) => consistently(d, CONSISTENTLY_POLL, check).await,
        None => eventually(args.within(), check).await,
    }
}

/// Who a request acts as when a step says `as user "x"`: the runner's own credentials plus
/// impersonation headers, so it works on any cluster where the runner may `impersonate`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub groups: Vec<String>,
}

impl Identity {
    /// The headers that ask the API server to act as this identity.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut h = vec![("Impersonate-User", self.user.clone())];
        h.extend(self.groups.iter().map(|g| ("Impersonate-Group", g.clone())));
        h
    }
}

/// `"a, b,c"` → `["a", "b", "c"]`; empty entries are dropped.
pub fn parse_groups(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(str::to_string)
        .collect()
}

/// The namespace a namespaced object of this step lives in.
pub fn namespace_for<'a>(world: &'a KubeWorld, explicit: Option<&'a str>) -> &'a str {
    explicit.unwrap_or(&world.namespace)
}

/// GETs one object; `Ok(None)` when it does not exist.
pub async fn fetch(
    world: &KubeWorld,
    res: &ResourceInfo,
    ns: Option<&str>,
    name: &str,
) -> Result<(Option<Value>, ApiResponse), StepFailure> {
    let path = res.object_path(ns, name);
    let resp = send(world, http::Method::GET, &path, None, Vec::new()).await?;
    match resp.code {
        200 => Ok((resp.json.clone(), resp)),
        404 => Ok((None, resp)),
        _ => Err(StepFailure::msg(format!(
            "reading {} \"{name}\": {}",
            res.kind,
            resp.describe()
        ))),
    }
}

pub async fn send(
    world: &KubeWorld,
    method: http::Method,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Result<ApiResponse, StepFailure> {
    let req = api::request(method, path, content_type, body)?;
    Ok(api::send(world.client()?, req).await?)
}

/// Like [`send`], but as the identity the step names (`as user ...`), if it names one.
pub async fn send_as(
    world: &KubeWorld,
    args: &StepArgs,
    method: http::Method,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Result<ApiResponse, StepFailure> {
    let mut req = api::request(method, path, content_type, body)?;
    if let Some(id) = args.identity() {
        for (name, value) in id.headers() {
            let v = http::HeaderValue::from_str(&value).map_err(|_| {
                StepFailure::msg(format!(
                    "\"{value}\" cannot be sent in an {name} header (use printable ASCII)"
                ))
            })?;
            req.headers_mut().append(name, v);
        }
    }
    Ok(api::send(world.client()?, req).await?)
}

/// Checks the outcome of a request made by a When step: in "try to" form any answer is
/// accepted (and kept for later assertions), otherwise a non-2xx answer fails the step.
pub fn expect_success(args: &StepArgs, resp: &ApiResponse) -> StepResult {
    if args.trying() || resp.is_success() {
        Ok(())
    } else {
        Err(StepFailure::msg(format!(
            "request failed: {}",
            resp.describe()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_document_yaml_skips_empty_documents() {
        let docs = parse_documents("a: 1\n---\n---\nb: [1, 2]\n").unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1]["b"][1], 2);
        let err = parse_documents("a: [1\n").unwrap_err();
        assert!(err.contains("document 1"), "{err}");
        assert!(parse_documents("").unwrap().is_empty());
    }

    #[test]
    fn identities_come_from_user_and_groups() {
        let mut args = StepArgs::default();
        assert_eq!(args.identity(), None);
        args.caps.insert("user".into(), "alice".into());
        args.caps.insert("groups".into(), " dev, ops ,,".into());
        let id = args.identity().unwrap();
        assert_eq!(id.groups, vec!["dev", "ops"]);
        assert_eq!(
            id.headers(),
            vec![
                ("Impersonate-User", "alice".to_string()),
                ("Impersonate-Group", "dev".to_string()),
                ("Impersonate-Group", "ops".to_string()),
            ]
        );
        args.caps.insert("for".into(), "1.5".into());
        assert_eq!(args.holding_for(), Some(Duration::from_millis(1500)));
    }

    #[tokio::test]
    async fn consistently_polls_for_the_whole_duration() {
        let mut n = 0;
        let r = consistently(
            Duration::from_millis(100),
            Duration::from_millis(10),
            async || {
                n += 1;
                Ok(())
            },
        )
        .await;
        assert!(r.is_ok());
        assert!(n >= 2, "polled {n} times");
    }

    #[tokio::test]
    async fn consistently_fails_on_the_first_bad_poll() {
        let mut n = 0;
        let r = consistently(
            Duration::from_secs(60),
            Duration::from_millis(5),
            async || {
                n += 1;
                if n == 3 {
                    Err(StepFailure::msg("replicas is 2"))
                } else {
                    Ok(())
                }
            },
        )
        .await;
        let f = r.unwrap_err();
        assert_eq!(n, 3);
        assert!(
            f.message.starts_with("replicas is 2 (held for "),
            "{}",
            f.message
        );
        assert!(
            f.message.ends_with("of the required 60.0 s)"),
            "{}",
            f.message
        );
    }

    #[tokio::test]
    async fn eventually_retries_until_the_check_passes() {
        let mut n = 0;
        let r = eventually(Some(Duration::from_secs(5)), async || {
            n += 1;
            if n < 3 {
                Err(StepFailure::msg("not yet"))
            } else {
                Ok(())
            }
        })
        .await;
        assert!(r.is_ok());
        assert_eq!(n, 3);
    }

    #[tokio::test]
    async fn eventually_reports_the_last_failure_after_the_deadline() {
        let r = eventually(Some(Duration::from_millis(300)), async || {
            Err(StepFailure::msg("never"))
        })
        .await;
        let f = r.unwrap_err();
        assert!(
            f.message.starts_with("never (gave up after"),
            "{}",
            f.message
        );
        let once = eventually(None, async || Err(StepFailure::msg("once"))).await;
        assert_eq!(once.unwrap_err().message, "once");
    }
}
