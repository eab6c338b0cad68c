//! Pod failure back-off of a Job (upstream `backoff_utils.go`): after `n` failures since the
//! last success, new pods wait `base * 2^(n-1)` (capped) from the last failure.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct BackoffRecord {
    pub failures_after_last_success: u32,
    pub last_failure: Option<Timestamp>,
}

/// When a pod finished: its containers' latest termination, else its deletion or readiness
/// change, else now.
pub fn finished_at(pod: &Pod, now: Timestamp) -> Timestamp {
    let status = pod.status.as_ref();
    let terminated = status
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|c| {
            c.state
                .as_ref()?
                .terminated
                .as_ref()?
                .finished_at
                .as_ref()
                .map(|t| t.0)
        })
        .max();
    terminated
        .or_else(|| pod.metadata.deletion_timestamp.as_ref().map(|t| t.0))
        .or_else(|| {
            status
                .and_then(|s| s.conditions.as_ref())
                .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
                .and_then(|c| c.last_transition_time.as_ref().map(|t| t.0))
        })
        .unwrap_or(now)
}

impl BackoffRecord {
    /// The record after newly finished pods (`newBackoffRecord`): a success resets it, and
    /// only failures after the latest success count.
    pub fn next(&self, succeeded: &[Timestamp], failed: &[Timestamp]) -> BackoffRecord {
        let mut failed = failed.to_vec();
        failed.sort();
        match succeeded.iter().max() {
            None => match failed.last() {
                None => self.clone(),
                Some(last) => BackoffRecord {
                    failures_after_last_success: self.failures_after_last_success
                        + failed.len() as u32,
                    last_failure: Some(*last),
                },
            },
            Some(last_success) => {
                let after: Vec<&Timestamp> = failed.iter().filter(|t| *t > last_success).collect();
                BackoffRecord {
                    failures_after_last_success: after.len() as u32,
                    last_failure: after.last().map(|t| **t),
                }
            }
        }
    }

    /// How long new pods must still wait.
    pub fn remaining(&self, base: Duration, max: Duration, now: Timestamp) -> Duration {
        let Some(last) = self
            .last_failure
            .filter(|_| self.failures_after_last_success > 0)
        else {
            return Duration::ZERO;
        };
        let mut backoff = base;
        for _ in 1..self.failures_after_last_success {
            backoff = backoff.saturating_mul(2);
            if backoff >= max {
                backoff = max;
                break;
            }
        }
        let elapsed = Duration::try_from(now.duration_since(last)).unwrap_or_default();
        backoff.saturating_sub(elapsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    #[test]
    fn back_off_doubles_per_failure_and_resets_on_success() {
        let base = Duration::from_secs(10);
        let max = Duration::from_secs(360);
        let r = BackoffRecord::default().next(&[], &[t(100)]);
        assert_eq!(r.remaining(base, max, t(104)), Duration::from_secs(6));
        let r = r.next(&[], &[t(120), t(110)]);
        assert_eq!(r.failures_after_last_success, 3);
        assert_eq!(r.last_failure, Some(t(120)));
        assert_eq!(r.remaining(base, max, t(130)), Duration::from_secs(30));
        assert_eq!(r.remaining(base, max, t(200)), Duration::ZERO);
        let many = BackoffRecord {
            failures_after_last_success: 30,
            last_failure: Some(t(0)),
        };
        assert_eq!(many.remaining(base, max, t(0)), max);
        // A success resets; only failures after it count.
        let r = r.next(&[t(125)], &[t(121), t(130)]);
        assert_eq!(r.failures_after_last_success, 1);
        assert_eq!(r.last_failure, Some(t(130)));
        assert_eq!(r.next(&[t(140)], &[]), BackoffRecord::default());
    }
}
