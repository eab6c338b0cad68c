//! Restart and image-pull back-off, kept per container the way client-go's
//! `flowcontrol.Backoff` keeps it per key for the kubelet: the first failure is retried at once
//! and opens a 10s window, each further failure doubles it up to 5m, and a key left alone for
//! twice the maximum (10 minutes of healthy running) starts over.

use std::time::Duration;

use tokio::time::Instant;

/// The kubelet's `backOffPeriod` and `MaxContainerBackOff`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackOffPolicy {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for BackOffPolicy {
    fn default() -> Self {
        BackOffPolicy {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(300),
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    backoff: Duration,
    last_update: Instant,
}

/// The back-off state of one key (one container, or one container's image).
#[derive(Clone, Debug, Default)]
pub struct BackOff {
    entry: Option<Entry>,
}

impl BackOffPolicy {
    /// Stable for twice the maximum: the entry no longer counts.
    fn expired(&self, at: Instant, last_update: Instant) -> bool {
        at.saturating_duration_since(last_update) > self.max * 2
    }
}

impl BackOff {
    /// `Next`: records a failure observed at `event_time`, growing the window.
    pub fn next(&mut self, policy: &BackOffPolicy, event_time: Instant, now: Instant) {
        let backoff = match self.entry {
            Some(e) if !policy.expired(event_time, e.last_update) => {
                (e.backoff * 2).min(policy.max)
            }
            _ => policy.initial.min(policy.max),
        };
        self.entry = Some(Entry {
            backoff,
            last_update: now,
        });
    }

    /// `IsInBackOffSince`: whether a restart after an event at `event_time` (a container's exit)
    /// must still wait at `now`.
    pub fn in_backoff_since(
        &self,
        policy: &BackOffPolicy,
        event_time: Instant,
        now: Instant,
    ) -> bool {
        match self.entry {
            Some(e) if !policy.expired(now, e.last_update) => {
                now.saturating_duration_since(event_time) < e.backoff
            }
            _ => false,
        }
    }

    /// `IsInBackOffSinceUpdate`: whether the window opened by the last failure is still open.
    pub fn in_backoff_since_update(&self, policy: &BackOffPolicy, now: Instant) -> bool {
        match self.entry {
            Some(e) if !policy.expired(now, e.last_update) => {
                now.saturating_duration_since(e.last_update) < e.backoff
            }
            _ => false,
        }
    }

    /// The current window, if any.
    pub fn current(&self) -> Option<Duration> {
        self.entry.map(|e| e.backoff)
    }

    /// When the window opened by the last failure closes.
    pub fn window_end(&self) -> Option<Instant> {
        self.entry.map(|e| e.last_update + e.backoff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn crash_loop_delays_double_from_10s_to_5m() {
        let policy = BackOffPolicy::default();
        let t0 = Instant::now();
        let mut b = BackOff::default();
        let mut seen = Vec::new();
        let mut now = t0;
        for _ in 0..8 {
            b.next(&policy, now, now);
            seen.push(b.current().unwrap().as_secs());
            now += b.current().unwrap();
        }
        assert_eq!(seen, [10, 20, 40, 80, 160, 300, 300, 300]);
    }

    #[test]
    fn the_first_failure_restarts_at_once_then_waits() {
        let policy = BackOffPolicy::default();
        let t0 = Instant::now();
        let mut b = BackOff::default();
        assert!(
            !b.in_backoff_since(&policy, t0, t0),
            "no entry: restart at once"
        );
        b.next(&policy, t0, t0);
        let exit2 = t0 + secs(1);
        assert!(b.in_backoff_since(&policy, exit2, exit2 + secs(9)));
        assert!(!b.in_backoff_since(&policy, exit2, exit2 + secs(10)));
    }

    #[test]
    fn ten_minutes_of_health_resets_the_window() {
        let policy = BackOffPolicy::default();
        let t0 = Instant::now();
        let mut b = BackOff::default();
        for i in 0..5 {
            b.next(&policy, t0 + secs(i), t0 + secs(i));
        }
        assert_eq!(b.current(), Some(secs(160)));
        let later = t0 + secs(4) + secs(601);
        assert!(
            !b.in_backoff_since(&policy, later, later),
            "an expired entry never holds a restart"
        );
        b.next(&policy, later, later);
        assert_eq!(
            b.current(),
            Some(secs(10)),
            "running longer than 2×max starts over"
        );
    }

    #[test]
    fn pull_back_off_is_counted_from_the_last_failure() {
        let policy = BackOffPolicy {
            initial: secs(1),
            max: secs(8),
        };
        let t0 = Instant::now();
        let mut b = BackOff::default();
        assert!(!b.in_backoff_since_update(&policy, t0));
        b.next(&policy, t0, t0);
        assert!(b.in_backoff_since_update(&policy, t0 + Duration::from_millis(500)));
        assert!(!b.in_backoff_since_update(&policy, t0 + secs(1)));
        assert_eq!(b.window_end(), Some(t0 + secs(1)));
    }
}
