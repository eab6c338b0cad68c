//! Bursts of concurrent requests as ServiceAccounts, for API Priority and Fairness: one client
//! floods its priority level while another, classified elsewhere, keeps being served. Every
//! answer's code is kept (and whether a 429 said when to retry) for the assertions that follow.

use std::collections::BTreeMap;

use kube::Client;

use super::raw;
use super::support::{StepArgs, StepFailure, StepResult};
use crate::api;
use crate::world::KubeWorld;

/// The most requests one burst may send: enough to saturate a small priority level, not so
/// many that the runner itself becomes the bottleneck.
const MAX_BURST: usize = 1000;

/// One answer of a burst.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub code: u16,
    /// Whether the answer carried a `Retry-After` header, as a 429 from API Priority and
    /// Fairness (or the max-in-flight filter) does.
    pub retry_after: bool,
}

/// What a burst of concurrent requests got back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Burst {
    /// `METHOD path`, for messages.
    pub request: String,
    pub answers: Vec<Answer>,
    /// Requests that got no HTTP answer at all.
    pub errors: Vec<String>,
}

impl Burst {
    /// `200 ×12, 429 ×18`, plus transport failures.
    pub fn summary(&self) -> String {
        let mut counts: BTreeMap<u16, usize> = BTreeMap::new();
        for a in &self.answers {
            *counts.entry(a.code).or_default() += 1;
        }
        let mut parts: Vec<String> = counts.iter().map(|(c, n)| format!("{c} ×{n}")).collect();
        if let Some(first) = self.errors.first() {
            parts.push(format!("{} without an answer ({first})", self.errors.len()));
        }
        if parts.is_empty() {
            "nothing".into()
        } else {
            parts.join(", ")
        }
    }

    /// Why not every request succeeded (2xx), if one did not.
    fn all_succeeded(&self) -> Option<String> {
        let ok = self.answers.iter().all(|a| (200..300).contains(&a.code));
        (!ok || !self.errors.is_empty())
            .then(|| format!("not every {} succeeded: {}", self.request, self.summary()))
    }

    /// Why no request was rejected with `code` (each such answer with `Retry-After` when
    /// `retry_after`), if none was.
    fn some_rejected(&self, code: u16, retry_after: bool) -> Option<String> {
        let rejected: Vec<&Answer> = self.answers.iter().filter(|a| a.code == code).collect();
        if rejected.is_empty() {
            return Some(format!(
                "no {} was rejected with {code}: {}",
                self.request,
                self.summary()
            ));
        }
        let bare = rejected.iter().filter(|a| !a.retry_after).count();
        (retry_after && bare > 0).then(|| {
            format!(
                "{bare} of the {} answers {code} to {} carry no Retry-After header",
                rejected.len(),
                self.request
            )
        })
    }
}

fn parse_method(raw: &str) -> Result<http::Method, StepFailure> {
    http::Method::from_bytes(raw.as_bytes()).map_err(|e| StepFailure::msg(e.to_string()))
}

/// Sends `n` requests at once and collects every answer.
async fn burst(client: Client, n: usize, method: http::Method, path: &str) -> Burst {
    let requests = (0..n).map(|_| {
        let client = client.clone();
        let method = method.clone();
        async move {
            let req = api::request(method, path, None, Vec::new())?;
            api::send(&client, req).await
        }
    });
    let mut out = Burst {
        request: format!("{method} {path}"),
        ..Burst::default()
    };
    for r in futures::future::join_all(requests).await {
        match r {
            Ok(resp) => out.answers.push(Answer {
                code: resp.code,
                retry_after: resp.headers.contains_key(http::header::RETRY_AFTER),
            }),
            Err(e) => out.errors.push(format!("{e:#}")),
        }
    }
    out
}

fn count(args: &StepArgs, name: &str) -> Result<usize, StepFailure> {
    let n: usize = args.number(name)?;
    if (1..=MAX_BURST).contains(&n) {
        Ok(n)
    } else {
        Err(StepFailure::msg(format!(
            "a burst sends between 1 and {MAX_BURST} requests, not {n}"
        )))
    }
}

pub async fn send_burst(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let sa = args.req("sa")?.to_string();
    let first = {
        let client = raw::service_account_client(world, &sa).await?;
        (
            client,
            count(&args, "n")?,
            parse_method(args.req("method")?)?,
            args.req("path")?.to_string(),
        )
    };
    let second = match args.get("sa2") {
        Some(sa2) => Some((
            sa2.to_string(),
            raw::service_account_client(world, sa2).await?,
            count(&args, "n2")?,
            parse_method(args.req("method2")?)?,
            args.req("path2")?.to_string(),
        )),
        None => None,
    };
    if second.as_ref().is_some_and(|s| s.0 == sa) {
        return Err(StepFailure::msg(
            "the two bursts must come from different service accounts, whose answers are kept apart",
        ));
    }
    // Both bursts are in flight together: the second one's answers show how the server treats
    // other clients while the first one floods it.
    let (a, b) = futures::join!(burst(first.0, first.1, first.2, &first.3), async {
        match &second {
            Some((_, client, n, method, path)) => {
                Some(burst(client.clone(), *n, method.clone(), path).await)
            }
            None => None,
        }
    });
    world.bursts.insert(sa, a);
    if let (Some((sa2, ..)), Some(b)) = (second, b) {
        world.bursts.insert(sa2, b);
    }
    Ok(())
}

fn burst_of<'a>(world: &'a KubeWorld, sa: &str) -> Result<&'a Burst, StepFailure> {
    world.bursts.get(sa).ok_or_else(|| {
        StepFailure::msg(format!(
            "service account \"{sa}\" has sent no burst of concurrent requests in this scenario"
        ))
    })
}

pub async fn some_rejected(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let b = burst_of(world, args.req("sa")?)?;
    match b.some_rejected(args.number("code")?, args.get("retry").is_some()) {
        None => Ok(()),
        Some(why) => Err(StepFailure::msg(why)),
    }
}

pub async fn all_succeeded(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let b = burst_of(world, args.req("sa")?)?;
    match b.all_succeeded() {
        None => Ok(()),
        Some(why) => Err(StepFailure::msg(why)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn burst(codes: &[(u16, bool)]) -> Burst {
        Burst {
            request: "GET /api/v1/namespaces/kp-a/configmaps".into(),
            answers: codes
                .iter()
                .map(|&(code, retry_after)| Answer { code, retry_after })
                .collect(),
            errors: Vec::new(),
        }
    }

    #[test]
    fn summaries_count_each_code() {
        let b = burst(&[(429, true), (200, false), (429, true), (504, false)]);
        assert_eq!(b.summary(), "200 ×1, 429 ×2, 504 ×1");
        assert_eq!(Burst::default().summary(), "nothing");
    }

    #[test]
    fn rejections_need_a_retry_after_when_asked() {
        let b = burst(&[(200, false), (429, true), (429, false)]);
        assert_eq!(b.some_rejected(429, false), None);
        let why = b.some_rejected(429, true).unwrap();
        assert!(why.starts_with("1 of the 2 answers 429"), "{why}");
        let why = burst(&[(200, false)]).some_rejected(429, true).unwrap();
        assert!(why.contains("no GET"), "{why}");
        assert!(why.ends_with("200 ×1"), "{why}");
    }

    #[test]
    fn success_means_every_request_got_a_2xx() {
        assert_eq!(burst(&[(200, false), (201, false)]).all_succeeded(), None);
        let why = burst(&[(200, false), (429, true)]).all_succeeded().unwrap();
        assert!(why.ends_with("200 ×1, 429 ×1"), "{why}");
        let mut lost = burst(&[(200, false)]);
        lost.errors.push("connection reset".into());
        let why = lost.all_succeeded().unwrap();
        assert!(
            why.contains("1 without an answer (connection reset)"),
            "{why}"
        );
    }
}
