//! Cron schedules as the CronJob controller reads them (robfig/cron v3 `ParseStandard`):
//! five fields (minute, hour, day of month, month, day of week) with ranges, steps, lists and
//! month/weekday names; the `@yearly`…`@hourly` and `@every <duration>` descriptors; an
//! optional `TZ=`/`CRON_TZ=` prefix. Day of month and day of week combine with OR when both
//! are restricted, as in cron. `next` walks calendar fields in the schedule's time zone
//! (skipping times a DST change removes), giving up after five years.

use std::time::Duration;

use chrono::{DateTime, Datelike, LocalResult, NaiveDate, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use crate::node::clock::parse_go_duration;

const STAR: u64 = 1 << 63;

#[derive(Clone, Copy, Debug)]
struct Bounds {
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTE: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
};
const DOM: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
const DOW: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

#[derive(Clone, Debug, PartialEq)]
enum Kind {
    Spec {
        minute: u64,
        hour: u64,
        dom: u64,
        month: u64,
        dow: u64,
    },
    Every(Duration),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    kind: Kind,
    pub tz: Tz,
}

fn parse_int(s: &str) -> Result<u32, String> {
    s.parse::<u32>()
        .map_err(|e| format!("failed to parse int from {s}: {e}"))
}

fn value(s: &str, b: Bounds) -> Result<u32, String> {
    let lower = s.to_ascii_lowercase();
    if let Some(i) = b.names.iter().position(|n| *n == lower) {
        return Ok(i as u32 + b.min);
    }
    parse_int(s)
}

/// One comma-separated part: `*`, `?`, `a`, `a-b`, each optionally `/step`.
fn range(expr: &str, b: Bounds) -> Result<u64, String> {
    let (range_part, step_part) = match expr.split_once('/') {
        Some((r, s)) => {
            if s.contains('/') {
                return Err(format!("too many slashes: {expr}"));
            }
            (r, Some(s))
        }
        None => (expr, None),
    };
    let (mut start, mut end, mut extra);
    let bounds: Vec<&str> = range_part.split('-').collect();
    let single;
    if range_part == "*" || range_part == "?" {
        start = b.min;
        end = b.max;
        extra = STAR;
        single = false;
    } else {
        start = value(bounds[0], b)?;
        extra = 0;
        match bounds.len() {
            1 => {
                end = start;
                single = true;
            }
            2 => {
                end = value(bounds[1], b)?;
                single = false;
            }
            _ => return Err(format!("too many hyphens: {expr}")),
        }
    }
    let step = match step_part {
        None => 1,
        Some(s) => {
            let step = parse_int(s)?;
            // "N/step" means "N-max/step".
            if single {
                end = b.max;
            }
            if step > 1 {
                extra = 0;
            }
            step
        }
    };
    if start < b.min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            b.min
        ));
    }
    if end > b.max {
        return Err(format!(
            "end of range ({end}) above maximum ({}): {expr}",
            b.max
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    let mut bits = 0u64;
    while start <= end {
        bits |= 1 << start;
        start += step;
    }
    Ok(bits | extra)
}

fn field(f: &str, b: Bounds) -> Result<u64, String> {
    f.split(',')
        .try_fold(0u64, |acc, part| Ok(acc | range(part, b)?))
}

/// `cron.ParseStandard` with `default_tz` for schedules without a `TZ=` prefix.
pub fn parse(spec: &str, default_tz: Tz) -> Result<Schedule, String> {
    let mut spec = spec.trim();
    if spec.is_empty() {
        return Err("empty spec string".into());
    }
    let mut tz = default_tz;
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        let (prefix, rest) = spec.split_once(char::is_whitespace).unwrap_or((spec, ""));
        let name = prefix.split_once('=').map(|(_, n)| n).unwrap_or_default();
        tz = name
            .parse::<Tz>()
            .map_err(|e| format!("provided bad location {name}: {e}"))?;
        spec = rest.trim();
    }
    if let Some(d) = spec.strip_prefix('@') {
        let expanded = match d {
            "yearly" | "annually" => "0 0 1 1 *",
            "monthly" => "0 0 1 * *",
            "weekly" => "0 0 * * 0",
            "daily" | "midnight" => "0 0 * * *",
            "hourly" => "0 * * * *",
            other => {
                if let Some(dur) = other.strip_prefix("every ") {
                    let d = parse_go_duration(dur)
                        .map_err(|e| format!("failed to parse duration {spec}: {e}"))?;
                    return Ok(Schedule {
                        kind: Kind::Every(d.max(Duration::from_secs(1))),
                        tz,
                    });
                }
                return Err(format!("unrecognized descriptor: {spec}"));
            }
        };
        return parse(&format!("TZ={} {expanded}", tz.name()), tz);
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: {spec}",
            fields.len()
        ));
    }
    Ok(Schedule {
        kind: Kind::Spec {
            minute: field(fields[0], MINUTE)?,
            hour: field(fields[1], HOUR)?,
            dom: field(fields[2], DOM)?,
            month: field(fields[3], MONTH)?,
            dow: field(fields[4], DOW)?,
        },
        tz,
    })
}

/// A local wall-clock time made real in `tz`: the earlier of two on a DST fall-back, and
/// (like Go's `time.Date`) moved forward by the gap on a spring-forward.
fn local(tz: Tz, y: i32, m: u32, d: u32, h: u32, mi: u32) -> Option<DateTime<Tz>> {
    // Normalise overflowing months and days as `time.Date` does.
    let y = y + ((m as i32 - 1).div_euclid(12));
    let m = ((m as i32 - 1).rem_euclid(12) + 1) as u32;
    let date = NaiveDate::from_ymd_opt(y, m, 1)?
        .checked_add_days(chrono::Days::new(d.saturating_sub(1) as u64))?;
    let naive = date.and_hms_opt(h, mi, 0)?;
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => Some(t),
        LocalResult::Ambiguous(a, _) => Some(a),
        LocalResult::None => {
            let later = naive + chrono::Duration::hours(1);
            tz.from_local_datetime(&later).earliest()
        }
    }
}

impl Schedule {
    fn day_matches(dom: u64, dow: u64, t: &DateTime<Tz>) -> bool {
        let d = dom & (1 << t.day()) != 0;
        let w = dow & (1 << t.weekday().num_days_from_sunday()) != 0;
        if dom & STAR != 0 || dow & STAR != 0 {
            d && w
        } else {
            d || w
        }
    }

    /// The first activation strictly after `after`, or `None` if there is none within five
    /// years (e.g. February 30th).
    pub fn next(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let (minute, hour, dom, month, dow) = match &self.kind {
            Kind::Every(d) => {
                let secs = after.timestamp() + d.as_secs().max(1) as i64;
                return DateTime::from_timestamp(secs, 0);
            }
            Kind::Spec {
                minute,
                hour,
                dom,
                month,
                dow,
            } => (*minute, *hour, *dom, *month, *dow),
        };
        let tz = self.tz;
        // Start at the next whole minute (standard schedules fire at second 0).
        let start =
            DateTime::from_timestamp(after.timestamp() - after.timestamp().rem_euclid(60) + 60, 0)?;
        let mut t = start.with_timezone(&tz);
        let mut added = false;
        let year_limit = t.year() + 5;
        'wrap: loop {
            if t.year() > year_limit {
                return None;
            }
            while month & (1 << t.month()) == 0 {
                if !added {
                    added = true;
                    t = local(tz, t.year(), t.month(), 1, 0, 0)?;
                }
                t = local(tz, t.year(), t.month() + 1, 1, 0, 0)?;
                if t.month() == 1 {
                    continue 'wrap;
                }
            }
            while !Self::day_matches(dom, dow, &t) {
                if !added {
                    added = true;
                    t = local(tz, t.year(), t.month(), t.day(), 0, 0)?;
                }
                t = local(tz, t.year(), t.month(), t.day() + 1, 0, 0)?;
                if t.day() == 1 {
                    continue 'wrap;
                }
            }
            while hour & (1 << t.hour()) == 0 {
                if !added {
                    added = true;
                    t = local(tz, t.year(), t.month(), t.day(), t.hour(), 0)?;
                }
                t += chrono::Duration::hours(1);
                if t.hour() == 0 {
                    continue 'wrap;
                }
            }
            while minute & (1 << t.minute()) == 0 {
                if !added {
                    added = true;
                    t = t.with_second(0)?;
                }
                t += chrono::Duration::minutes(1);
                if t.minute() == 0 {
                    continue 'wrap;
                }
            }
            return Some(t.with_timezone(&Utc));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn next(spec: &str, after: &str) -> Option<String> {
        parse(spec, Tz::UTC)
            .unwrap()
            .next(at(after))
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    }

    #[test]
    fn standard_fields() {
        assert_eq!(
            next("*/15 * * * *", "2024-01-01T10:07:30Z").as_deref(),
            Some("2024-01-01T10:15:00Z")
        );
        assert_eq!(
            next("*/15 * * * *", "2024-01-01T10:15:00Z").as_deref(),
            Some("2024-01-01T10:30:00Z"),
            "strictly after"
        );
        assert_eq!(
            next("0 9 * * MON-FRI", "2024-01-05T09:00:00Z").as_deref(),
            Some("2024-01-08T09:00:00Z")
        );
        assert_eq!(
            next("30 2 1 jan,jul *", "2024-02-01T00:00:00Z").as_deref(),
            Some("2024-07-01T02:30:00Z")
        );
        assert_eq!(
            next("5/20 * * * *", "2024-01-01T00:06:00Z").as_deref(),
            Some("2024-01-01T00:25:00Z")
        );
        assert_eq!(
            next("0 0 29 2 *", "2024-03-01T00:00:00Z").as_deref(),
            Some("2028-02-29T00:00:00Z")
        );
        assert_eq!(next("0 0 30 2 *", "2024-01-01T00:00:00Z"), None);
    }

    #[test]
    fn day_of_month_and_week_combine_with_or() {
        // The 13th, or any Friday.
        assert_eq!(
            next("0 0 13 * 5", "2024-09-01T00:00:00Z").as_deref(),
            Some("2024-09-06T00:00:00Z")
        );
        assert_eq!(
            next("0 0 13 * 5", "2024-09-07T00:00:00Z").as_deref(),
            Some("2024-09-13T00:00:00Z")
        );
        // With a star on one side, both must match (the star always does).
        assert_eq!(
            next("0 0 * * 5", "2024-09-07T00:00:00Z").as_deref(),
            Some("2024-09-13T00:00:00Z")
        );
    }

    #[test]
    fn descriptors_and_every() {
        assert_eq!(
            next("@hourly", "2024-01-01T10:07:00Z").as_deref(),
            Some("2024-01-01T11:00:00Z")
        );
        assert_eq!(
            next("@weekly", "2024-01-01T00:00:00Z").as_deref(),
            Some("2024-01-07T00:00:00Z")
        );
        assert_eq!(
            next("@yearly", "2024-06-01T00:00:00Z").as_deref(),
            Some("2025-01-01T00:00:00Z")
        );
        assert_eq!(
            next("@every 1h30m", "2024-01-01T00:00:10Z").as_deref(),
            Some("2024-01-01T01:30:10Z")
        );
        assert!(parse("@every 1x", Tz::UTC).is_err());
        // A duration too long for the clock is refused, not a panic.
        assert!(parse(&format!("@every {}h", "9".repeat(400)), Tz::UTC).is_err());
        assert!(parse("@fortnightly", Tz::UTC).is_err());
    }

    #[test]
    fn time_zones_and_dst() {
        // 09:00 in New York is 14:00 UTC in winter, 13:00 in summer.
        let ny = parse("0 9 * * *", "America/New_York".parse().unwrap()).unwrap();
        assert_eq!(
            ny.next(at("2024-01-10T00:00:00Z")),
            Some(at("2024-01-10T14:00:00Z"))
        );
        assert_eq!(
            ny.next(at("2024-07-10T00:00:00Z")),
            Some(at("2024-07-10T13:00:00Z"))
        );
        let prefixed = parse("TZ=Asia/Tokyo 0 9 * * *", Tz::UTC).unwrap();
        assert_eq!(
            prefixed.next(at("2024-01-10T00:00:00Z")),
            Some(at("2024-01-11T00:00:00Z"))
        );
        // 02:30 does not exist on 2024-03-10 in New York: that day is skipped, as in cron.
        let gap = parse("30 2 * * *", "America/New_York".parse().unwrap()).unwrap();
        assert_eq!(
            gap.next(at("2024-03-10T05:00:00Z")),
            Some(at("2024-03-11T06:30:00Z"))
        );
        assert!(parse("TZ=Mars/Olympus 0 9 * * *", Tz::UTC)
            .unwrap_err()
            .contains("bad location"));
    }

    #[test]
    fn bad_specs_are_rejected_with_reasons() {
        for (spec, want) in [
            ("", "empty spec"),
            ("* * * *", "expected exactly 5 fields"),
            ("60 * * * *", "above maximum"),
            ("* * 0 * *", "below minimum"),
            ("5-1 * * * *", "beyond end"),
            ("*/0 * * * *", "positive number"),
            ("1-2-3 * * * *", "too many hyphens"),
            ("a * * * *", "failed to parse int"),
            ("* * * * 7", "above maximum"),
        ] {
            let e = parse(spec, Tz::UTC).unwrap_err();
            assert!(e.contains(want), "{spec:?}: {e}");
        }
    }
}
