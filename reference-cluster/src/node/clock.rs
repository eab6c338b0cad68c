//! Time for the node agents: scheduling runs on monotonic [`Instant`]s (tokio's, so tests may
//! pause time), while the API wants wall-clock timestamps. A [`Clock`] pins one instant to one
//! wall time so every timestamp an agent writes is derived from the same monotonic reading that
//! drove the decision. Also Go's duration syntax, which annotations and messages use.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use k8s_openapi::jiff::Timestamp;
use tokio::time::Instant;

#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin: Instant,
    origin_wall_ns: i128,
}

impl Clock {
    /// A clock whose `Instant::now()` is the current wall time.
    pub fn new() -> Clock {
        Clock::pinned(Instant::now(), Timestamp::now())
    }

    /// A clock on which `origin` reads as `wall` (tests use fixed wall times).
    pub fn pinned(origin: Instant, wall: Timestamp) -> Clock {
        Clock {
            origin,
            origin_wall_ns: wall.as_nanosecond(),
        }
    }

    pub fn wall(&self, at: Instant) -> Timestamp {
        let delta = if at >= self.origin {
            at.duration_since(self.origin).as_nanos() as i128
        } else {
            -(self.origin.duration_since(at).as_nanos() as i128)
        };
        // Out of jiff's range only for instants centuries away; the origin is the safe answer.
        Timestamp::from_nanosecond(self.origin_wall_ns + delta).unwrap_or_else(|_| {
            Timestamp::from_nanosecond(self.origin_wall_ns).unwrap_or(Timestamp::UNIX_EPOCH)
        })
    }

    pub fn time(&self, at: Instant) -> Time {
        Time(self.wall(at))
    }

    pub fn micro_time(&self, at: Instant) -> MicroTime {
        MicroTime(self.wall(at))
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// The longest wait the agents plan for (a century): API fields such as
/// `activeDeadlineSeconds` or a grace period may hold values no clock can add.
pub const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Seconds from an API field as a duration, negative as zero and capped at [`FOREVER`].
pub fn seconds(v: i64) -> Duration {
    Duration::from_secs(v.max(0) as u64).min(FOREVER)
}

/// `t + d` that never overflows: durations are capped at [`FOREVER`].
pub fn after(t: Instant, d: Duration) -> Instant {
    t.checked_add(d.min(FOREVER)).unwrap_or(t)
}

/// Go's `time.Duration.String()`: `300ms`, `10s`, `1m20s`, `5m0s`, `1h0m0s`, `1.5s`.
pub use crate::apiserver::protobuf::go_format::std_duration as go_duration;

/// Go's `time.ParseDuration` for non-negative durations (`500ms`, `1.5s`, `1m30s`, `2h`), at
/// most a century so that clocks can add it.
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let d = crate::apiserver::protobuf::go_format::parse_std_duration(s)?;
    if d > FOREVER {
        return Err(format!("time: duration \"{s}\" is longer than a century"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_like_go() {
        let cases = [
            (Duration::from_secs(10), "10s"),
            (Duration::from_secs(80), "1m20s"),
            (Duration::from_secs(300), "5m0s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_micros(1500), "1.5ms"),
            (Duration::ZERO, "0s"),
        ];
        for (d, want) in cases {
            assert_eq!(go_duration(d), want, "{d:?}");
        }
    }

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(parse_go_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_go_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(
            parse_go_duration("1.5s").unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(
            parse_go_duration("250ms").unwrap(),
            Duration::from_millis(250)
        );
        assert_eq!(parse_go_duration("0").unwrap(), Duration::ZERO);
        for bad in ["", "5", "-1s", "5x", "s", "1..2s", "abc"] {
            assert!(parse_go_duration(bad).is_err(), "{bad:?} must be rejected");
        }
    }

    #[test]
    fn huge_api_durations_never_overflow() {
        let now = Instant::now();
        assert_eq!(seconds(i64::MAX), FOREVER);
        assert_eq!(seconds(-5), Duration::ZERO);
        assert!(after(now, Duration::MAX) > now);
    }

    #[test]
    fn wall_time_follows_the_monotonic_clock() {
        let origin = Instant::now();
        let wall = Timestamp::from_second(1_700_000_000).unwrap();
        let clock = Clock::pinned(origin, wall);
        assert_eq!(
            clock.wall(origin + Duration::from_secs(3)).as_second(),
            1_700_000_003
        );
        let t = serde_json::to_value(clock.time(origin + Duration::from_millis(1500))).unwrap();
        assert_eq!(t, "2023-11-14T22:13:21Z");
    }
}
