//! From a metric's proposal to the replica count the HPA sets: stabilization over recent
//! recommendations, scaling policies over recent scale events, and the min/max clamp, each with
//! the condition reason upstream reports. Two paths as upstream: an HPA without `behavior`
//! (only a scale-down stabilization window, and at most doubling, or going to 4, per sync) and
//! one with it.

use std::time::{Duration, Instant};

/// `selectPolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Select {
    Max,
    Min,
    Disabled,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyKind {
    Pods,
    Percent,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    pub kind: PolicyKind,
    pub value: i32,
    pub period: Duration,
}

/// `scaleUp` or `scaleDown` with defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rules {
    pub stabilization: Duration,
    pub select: Select,
    pub policies: Vec<Policy>,
}

impl Rules {
    /// Upstream's scale-up default: the faster of doubling and adding 4 pods every 15s.
    pub fn default_up() -> Rules {
        Rules {
            stabilization: Duration::ZERO,
            select: Select::Max,
            policies: vec![
                Policy {
                    kind: PolicyKind::Pods,
                    value: 4,
                    period: Duration::from_secs(15),
                },
                Policy {
                    kind: PolicyKind::Percent,
                    value: 100,
                    period: Duration::from_secs(15),
                },
            ],
        }
    }

    /// Upstream's scale-down default: everything above the recommendation every 15s, after
    /// the controller's stabilization window.
    pub fn default_down(stabilization: Duration) -> Rules {
        Rules {
            stabilization,
            select: Select::Max,
            policies: vec![Policy {
                kind: PolicyKind::Percent,
                value: 100,
                period: Duration::from_secs(15),
            }],
        }
    }

    fn longest_period(&self) -> Duration {
        self.policies
            .iter()
            .map(|p| p.period)
            .max()
            .unwrap_or_default()
    }
}

/// A replica change made by the controller.
#[derive(Clone, Copy, Debug)]
struct ScaleEvent {
    change: i32,
    at: Instant,
}

/// What the controller remembers about one HPA between syncs.
#[derive(Debug, Default)]
pub struct History {
    recommendations: Vec<(i32, Instant)>,
    ups: Vec<ScaleEvent>,
    downs: Vec<ScaleEvent>,
}

/// A condition to set: (type, status, reason, message).
pub type Cond = (&'static str, &'static str, &'static str, String);

/// The limits of one sync.
pub struct Limits<'a> {
    pub current: i32,
    pub min: i32,
    pub max: i32,
    /// `None`: the HPA has no `behavior`.
    pub behavior: Option<(&'a Rules, &'a Rules)>,
    /// The controller's scale-down stabilization window, for HPAs without `behavior`.
    pub downscale_stabilization: Duration,
}

fn within(at: Instant, now: Instant, window: Duration) -> bool {
    now.checked_duration_since(at)
        .is_none_or(|age| age < window)
}

impl History {
    /// Starts the recommendation history with the current count, as upstream does on the
    /// first sync of an HPA.
    pub fn record_initial(&mut self, current: i32, now: Instant) {
        if self.recommendations.is_empty() {
            self.recommendations.push((current, now));
        }
    }

    /// The replica count to set for `proposed`, with the AbleToScale and ScalingLimited
    /// conditions explaining it.
    pub fn normalize(&mut self, proposed: i32, l: &Limits<'_>, now: Instant) -> (i32, Vec<Cond>) {
        match l.behavior {
            None => self.normalize_plain(proposed, l, now),
            Some((up, down)) => self.normalize_with(proposed, l, up, down, now),
        }
    }

    /// Keeps one sample per sync, reusing one that has aged out of every window.
    fn remember(&mut self, proposed: i32, now: Instant, keep: Duration) {
        match self
            .recommendations
            .iter()
            .position(|(_, at)| !within(*at, now, keep))
        {
            Some(i) => self.recommendations[i] = (proposed, now),
            None => self.recommendations.push((proposed, now)),
        }
    }

    fn normalize_plain(&mut self, proposed: i32, l: &Limits<'_>, now: Instant) -> (i32, Vec<Cond>) {
        let window = l.downscale_stabilization;
        let stabilized = self
            .recommendations
            .iter()
            .filter(|(_, at)| within(*at, now, window))
            .map(|(r, _)| *r)
            .fold(proposed, i32::max);
        self.remember(proposed, now, window);
        let mut conds = Vec::new();
        if stabilized != proposed {
            conds.push((
                "AbleToScale",
                "True",
                "ScaleDownStabilized",
                "recent recommendations were higher than current one, applying the highest recent recommendation".to_string(),
            ));
        } else {
            conds.push(ready_for_new_scale());
        }
        // Without behavior, at most double (or go to 4) in one step.
        let (max_allowed, max_reason, max_message) = up_cap((2 * l.current).max(4), l.max);
        let (desired, reason, message) = if stabilized < l.min {
            (
                l.min,
                "TooFewReplicas",
                "the desired replica count is less than the minimum replica count",
            )
        } else if stabilized > max_allowed {
            (max_allowed, max_reason, max_message)
        } else {
            (
                stabilized,
                "DesiredWithinRange",
                "the desired count is within the acceptable range",
            )
        };
        conds.push(limited(desired != stabilized, reason, message));
        (desired, conds)
    }

    fn normalize_with(
        &mut self,
        proposed: i32,
        l: &Limits<'_>,
        up: &Rules,
        down: &Rules,
        now: Instant,
    ) -> (i32, Vec<Cond>) {
        // The lowest recommendation of the scale-up window and the highest of the scale-down
        // window bound what this sync may move to.
        let mut up_bound = proposed;
        let mut down_bound = proposed;
        for (r, at) in &self.recommendations {
            if within(*at, now, up.stabilization) {
                up_bound = up_bound.min(*r);
            }
            if within(*at, now, down.stabilization) {
                down_bound = down_bound.max(*r);
            }
        }
        let stabilized = l.current.max(up_bound).min(down_bound);
        self.remember(proposed, now, up.stabilization.max(down.stabilization));
        let mut conds = Vec::new();
        if stabilized != proposed {
            conds.push(if proposed >= l.current {
                (
                    "AbleToScale",
                    "True",
                    "ScaleUpStabilized",
                    "recent recommendations were lower than current one, applying the lowest recent recommendation".to_string(),
                )
            } else {
                (
                    "AbleToScale",
                    "True",
                    "ScaleDownStabilized",
                    "recent recommendations were higher than current one, applying the highest recent recommendation".to_string(),
                )
            });
        } else {
            conds.push(ready_for_new_scale());
        }
        let (desired, reason, message) = self.rate_limit(stabilized, l, up, down, now);
        conds.push(limited(desired != stabilized, reason, message));
        (desired, conds)
    }

    fn added_within(&self, events: &[ScaleEvent], period: Duration, now: Instant) -> i32 {
        events
            .iter()
            .filter(|e| within(e.at, now, period))
            .map(|e| e.change)
            .sum()
    }

    /// The most (scale-up) or fewest (scale-down) replicas the policies allow now.
    fn policy_limit(&self, current: i32, rules: &Rules, scaling_up: bool, now: Instant) -> i32 {
        if rules.select == Select::Disabled {
            return current;
        }
        // Max picks the largest change: the highest count up, the lowest down.
        let pick_high = (rules.select == Select::Max) == scaling_up;
        let mut result: Option<i32> = None;
        for p in &rules.policies {
            let added = self.added_within(&self.ups, p.period, now);
            let removed = self.added_within(&self.downs, p.period, now);
            let start = current - added + removed;
            let proposed = match (p.kind, scaling_up) {
                (PolicyKind::Pods, true) => start + p.value,
                (PolicyKind::Pods, false) => start - p.value,
                (PolicyKind::Percent, true) => {
                    (f64::from(start) * (1.0 + f64::from(p.value) / 100.0)).ceil() as i32
                }
                (PolicyKind::Percent, false) => {
                    (f64::from(start) * (1.0 - f64::from(p.value) / 100.0)) as i32
                }
            };
            result = Some(match result {
                None => proposed,
                Some(r) if pick_high => r.max(proposed),
                Some(r) => r.min(proposed),
            });
        }
        result.unwrap_or(current)
    }

    fn rate_limit(
        &self,
        stabilized: i32,
        l: &Limits<'_>,
        up: &Rules,
        down: &Rules,
        now: Instant,
    ) -> (i32, &'static str, &'static str) {
        if stabilized > l.current {
            let limit = self.policy_limit(l.current, up, true, now).max(l.current);
            let (allowed, reason, message) = up_cap(limit, l.max);
            if stabilized > allowed {
                return (allowed, reason, message);
            }
        } else if stabilized < l.current {
            let limit = self
                .policy_limit(l.current, down, false, now)
                .min(l.current);
            let (allowed, reason, message) = if l.min < limit {
                (
                    limit,
                    "ScaleDownLimit",
                    "the desired replica count is decreasing faster than the maximum scale rate",
                )
            } else {
                (
                    l.min,
                    "TooFewReplicas",
                    "the desired replica count is less than the minimum replica count",
                )
            };
            if stabilized < allowed {
                return (allowed, reason, message);
            }
        }
        (
            stabilized,
            "DesiredWithinRange",
            "the desired count is within the acceptable range",
        )
    }

    /// Remembers a rescale for the policies' periods (only HPAs with `behavior` use them).
    pub fn record_scale(
        &mut self,
        from: i32,
        to: i32,
        rules: Option<(&Rules, &Rules)>,
        now: Instant,
    ) {
        let Some((up, down)) = rules else {
            return;
        };
        let (events, keep, change) = if to > from {
            (&mut self.ups, up.longest_period(), to - from)
        } else {
            (&mut self.downs, down.longest_period(), from - to)
        };
        events.retain(|e| within(e.at, now, keep));
        events.push(ScaleEvent { change, at: now });
    }
}

fn ready_for_new_scale() -> Cond {
    (
        "AbleToScale",
        "True",
        "ReadyForNewScale",
        "recommended size matches current size".to_string(),
    )
}

fn limited(is: bool, reason: &'static str, message: &str) -> Cond {
    (
        "ScalingLimited",
        if is { "True" } else { "False" },
        reason,
        message.to_string(),
    )
}

/// The highest count a scale-up may reach: the rate limit, or `maxReplicas` when that is lower,
/// with the condition reason each gives.
fn up_cap(rate_limit: i32, max: i32) -> (i32, &'static str, &'static str) {
    if max > rate_limit {
        (
            rate_limit,
            "ScaleUpLimit",
            "the desired replica count is increasing faster than the maximum scale rate",
        )
    } else {
        (
            max,
            "TooManyReplicas",
            "the desired replica count is more than the maximum replica count",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn limits(current: i32, min: i32, max: i32) -> Limits<'static> {
        Limits {
            current,
            min,
            max,
            behavior: None,
            downscale_stabilization: secs(300),
        }
    }

    fn reason(conds: &[Cond], type_: &str) -> &'static str {
        conds.iter().find(|c| c.0 == type_).unwrap().2
    }

    #[test]
    fn without_behavior_scale_up_is_capped_at_double_and_max() {
        let now = Instant::now();
        let mut h = History::default();
        h.record_initial(3, now);
        let (n, c) = h.normalize(20, &limits(3, 1, 10), now);
        assert_eq!(n, 6, "at most 2 × 3");
        assert_eq!(reason(&c, "ScalingLimited"), "ScaleUpLimit");
        let (n, c) = h.normalize(20, &limits(6, 1, 10), now);
        assert_eq!(n, 10);
        assert_eq!(reason(&c, "ScalingLimited"), "TooManyReplicas");
        let (n, c) = h.normalize(1, &limits(1, 2, 10), now);
        assert_eq!(
            n, 4,
            "the highest recent recommendation (20), at most 4 from 1"
        );
        assert_eq!(reason(&c, "AbleToScale"), "ScaleDownStabilized");
    }

    #[test]
    fn without_behavior_scale_down_waits_out_the_window() {
        let start = Instant::now();
        let mut h = History::default();
        h.record_initial(8, start);
        let (n, _) = h.normalize(2, &limits(8, 1, 10), start + secs(15));
        assert_eq!(n, 8, "8 was recommended within 300s");
        let (n, c) = h.normalize(2, &limits(8, 1, 10), start + secs(301));
        assert_eq!(n, 2);
        assert_eq!(reason(&c, "AbleToScale"), "ReadyForNewScale");
        assert_eq!(reason(&c, "ScalingLimited"), "DesiredWithinRange");
        // Below the minimum: clamped, and the condition says why.
        let mut fresh = History::default();
        let (n, c) = fresh.normalize(1, &limits(3, 2, 10), start);
        assert_eq!(n, 2);
        assert_eq!(reason(&c, "ScalingLimited"), "TooFewReplicas");
    }

    fn percent(value: i32, period: u64) -> Policy {
        Policy {
            kind: PolicyKind::Percent,
            value,
            period: secs(period),
        }
    }

    #[test]
    fn doubling_per_minute_gives_2_4_8_16_20() {
        let up = Rules {
            stabilization: secs(0),
            select: Select::Max,
            policies: vec![percent(100, 60)],
        };
        let down = Rules::default_down(secs(300));
        let start = Instant::now();
        let mut h = History::default();
        h.record_initial(2, start);
        let mut current = 2;
        let mut seen = vec![current];
        // A sync every 15s for 5 minutes with the metric at 10× target.
        for i in 0..20 {
            let now = start + secs(15 * i);
            let l = Limits {
                current,
                min: 1,
                max: 20,
                behavior: Some((&up, &down)),
                downscale_stabilization: secs(300),
            };
            let (n, _) = h.normalize(current * 10, &l, now);
            if n != current {
                h.record_scale(current, n, Some((&up, &down)), now);
                current = n;
                seen.push(n);
            }
        }
        assert_eq!(seen, vec![2, 4, 8, 16, 20]);
    }

    #[test]
    fn ten_percent_per_minute_after_a_five_minute_window() {
        let up = Rules::default_up();
        let down = Rules {
            stabilization: secs(300),
            select: Select::Max,
            policies: vec![percent(10, 60)],
        };
        let start = Instant::now();
        let mut h = History::default();
        h.record_initial(20, start);
        let mut current = 20;
        let mut changes = Vec::new();
        for i in 0..40 {
            let now = start + secs(15 * i);
            let l = Limits {
                current,
                min: 1,
                max: 20,
                behavior: Some((&up, &down)),
                downscale_stabilization: secs(300),
            };
            let (n, c) = h.normalize(1, &l, now);
            if n != current {
                h.record_scale(current, n, Some((&up, &down)), now);
                changes.push((15 * i, n));
                current = n;
            } else if i > 0 && i < 20 {
                assert_eq!(reason(&c, "AbleToScale"), "ScaleDownStabilized");
            }
        }
        // 20 → 18 (10% of 20 floors 18), then a minute later 16 (90% of 18 = 16.2), ...
        assert_eq!(changes[0], (300, 18));
        assert_eq!(changes[1], (360, 16));
        assert_eq!(changes[2], (420, 14));
        for w in changes.windows(2) {
            assert!(w[1].0 - w[0].0 >= 60);
        }
    }

    #[test]
    fn select_policies() {
        let now = Instant::now();
        let h = History::default();
        let pods = Policy {
            kind: PolicyKind::Pods,
            value: 4,
            period: secs(60),
        };
        let mut rules = Rules {
            stabilization: secs(0),
            select: Select::Max,
            policies: vec![pods, percent(50, 60)],
        };
        assert_eq!(h.policy_limit(10, &rules, true, now), 15, "max(14, 15)");
        assert_eq!(h.policy_limit(10, &rules, false, now), 5, "min(6, 5)");
        rules.select = Select::Min;
        assert_eq!(h.policy_limit(10, &rules, true, now), 14);
        assert_eq!(h.policy_limit(10, &rules, false, now), 6);
        rules.select = Select::Disabled;
        assert_eq!(h.policy_limit(10, &rules, true, now), 10);
        let down = Rules {
            select: Select::Disabled,
            ..Rules::default_down(secs(0))
        };
        let up = Rules::default_up();
        let mut h = History::default();
        let l = Limits {
            current: 10,
            min: 1,
            max: 20,
            behavior: Some((&up, &down)),
            downscale_stabilization: secs(300),
        };
        let (n, c) = h.normalize(2, &l, now);
        assert_eq!(n, 10, "scale-down disabled");
        assert_eq!(reason(&c, "ScalingLimited"), "ScaleDownLimit");
    }

    #[test]
    fn scale_up_stabilization_takes_the_lowest_recent_recommendation() {
        let up = Rules {
            stabilization: secs(60),
            ..Rules::default_up()
        };
        let down = Rules::default_down(secs(0));
        let start = Instant::now();
        let mut h = History::default();
        h.record_initial(2, start);
        let l = Limits {
            current: 2,
            min: 1,
            max: 20,
            behavior: Some((&up, &down)),
            downscale_stabilization: secs(300),
        };
        let (n, c) = h.normalize(8, &l, start + secs(15));
        assert_eq!(n, 2);
        assert_eq!(reason(&c, "AbleToScale"), "ScaleUpStabilized");
        let (n, _) = h.normalize(8, &l, start + secs(61));
        assert_eq!(
            n, 6,
            "8 stabilized, then the default policies: max(2 + 4, 2 × 2)"
        );
    }
}
