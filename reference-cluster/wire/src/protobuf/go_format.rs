//! Go's text forms of times and durations, as `metav1.Time`, `MicroTime` and `Duration`
//! marshal to JSON.

use chrono::{DateTime, Datelike, Utc};

/// `metav1.Time`: RFC 3339 in UTC with second precision (upstream drops protobuf nanos too).
pub fn rfc3339(seconds: i64) -> Result<String, String> {
    let t = utc(i128::from(seconds) * 1_000_000_000)?;
    Ok(t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// `metav1.MicroTime`: RFC 3339 in UTC with exactly six fractional digits.
pub fn rfc3339_micro(seconds: i64, nanos: i32) -> Result<String, String> {
    let t = utc(i128::from(seconds) * 1_000_000_000 + i128::from(nanos))?;
    Ok(t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
}

/// Go's `time.Unix` normalises nanoseconds outside [0, 1e9) into the seconds; Go's JSON
/// refuses years outside [0, 9999].
fn utc(total_nanos: i128) -> Result<DateTime<Utc>, String> {
    let secs = i64::try_from(total_nanos.div_euclid(1_000_000_000))
        .map_err(|_| "time out of range".to_string())?;
    let nanos = u32::try_from(total_nanos.rem_euclid(1_000_000_000)).unwrap_or(0);
    DateTime::from_timestamp(secs, nanos)
        .filter(|t| (0..=9999).contains(&t.year()))
        .ok_or_else(|| format!("time {secs}s is outside of the years 0 to 9999"))
}

/// Go's `time.ParseDuration`: signed decimal numbers with units `ns`, `us`/`µs`, `ms`, `s`, `m`,
/// `h` (`1h2m3.5s`, `-300ms`, `0`), in nanoseconds; otherwise Go's error text.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {text:?}");
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total_nanos: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("time: missing unit in duration {text:?}"))?;
        if num_len == 0 {
            return Err(invalid());
        }
        let number: f64 = rest[..num_len].parse().map_err(|_| invalid())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            unit => return Err(format!("time: unknown unit {unit:?} in duration {text:?}")),
        };
        rest = &rest[unit_len..];
        total_nanos += number * scale;
    }
    if !total_nanos.is_finite() || total_nanos > i64::MAX as f64 {
        return Err(invalid());
    }
    let nanos = total_nanos.round() as i64;
    Ok(if negative { -nanos } else { nanos })
}

/// [`parse_duration`] for settings that cannot be negative (timeouts, periods).
pub fn parse_std_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    match parse_duration(text)? {
        n if n < 0 => Err(format!(
            "time: invalid duration {text:?}: must not be negative"
        )),
        n => Ok(std::time::Duration::from_nanos(n as u64)),
    }
}

/// [`duration`] of a `std` duration (longer ones than Go can hold print as Go's maximum).
pub fn std_duration(d: std::time::Duration) -> String {
    duration(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Go's `time.Duration.String`: `1h2m3.5s`, `1.5ms`, `0s`.
pub fn duration(nanos: i64) -> String {
    let neg = nanos < 0;
    let mut u = nanos.unsigned_abs();
    let mut out = if u < 1_000_000_000 {
        let (unit, prec) = match u {
            0 => return "0s".into(),
            1..1_000 => ("ns", 0),
            1_000..1_000_000 => ("µs", 3),
            _ => ("ms", 6),
        };
        let frac = fraction(&mut u, prec);
        format!("{u}{frac}{unit}")
    } else {
        let frac = fraction(&mut u, 9);
        let secs = u % 60;
        let mins = u / 60;
        if mins == 0 {
            format!("{secs}{frac}s")
        } else if mins < 60 {
            format!("{mins}m{secs}{frac}s")
        } else {
            format!("{}h{}m{secs}{frac}s", mins / 60, mins % 60)
        }
    };
    if neg {
        out.insert(0, '-');
    }
    out
}

/// Splits off the last `prec` decimal digits of `u` as `.ddd` without trailing zeros (nothing
/// when they are all zero), leaving the integer part in `u`.
fn fraction(u: &mut u64, prec: u32) -> String {
    let scale = 10u64.pow(prec);
    let frac = *u % scale;
    *u /= scale;
    if frac == 0 {
        return String::new();
    }
    let digits = format!("{frac:0width$}", width = prec as usize);
    format!(".{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_like_go() {
        let cases = [
            (0, "0s"),
            (1, "1ns"),
            (1_100, "1.1µs"),
            (2_200_000, "2.2ms"),
            (1_000_000_000, "1s"),
            (1_500_000_000, "1.5s"),
            (30_000_000_000, "30s"),
            (60_000_000_000, "1m0s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_723_000_000_001, "1h2m3.000000001s"),
            (-5_000_000_000, "-5s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
        ];
        for (nanos, want) in cases {
            assert_eq!(duration(nanos), want, "{nanos}ns");
        }
    }

    #[test]
    fn times_print_like_metav1() {
        assert_eq!(rfc3339(1_704_164_645).unwrap(), "2024-01-02T03:04:05Z");
        assert_eq!(rfc3339(0).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339_micro(1_704_164_645, 123_456_789).unwrap(),
            "2024-01-02T03:04:05.123456Z"
        );
        assert_eq!(
            rfc3339_micro(1_704_164_645, 0).unwrap(),
            "2024-01-02T03:04:05.000000Z"
        );
        // Nanoseconds past a second carry into the seconds, as Go's time.Unix does.
        assert_eq!(
            rfc3339_micro(0, 1_500_000_000).unwrap(),
            "1970-01-01T00:00:01.500000Z"
        );
        assert_eq!(rfc3339_micro(0, -1).unwrap(), "1969-12-31T23:59:59.999999Z");
    }

    #[test]
    fn times_outside_go_json_range_are_errors() {
        assert!(rfc3339(i64::MAX).is_err());
        assert!(rfc3339(i64::MIN).is_err());
        assert!(rfc3339(253_402_300_800).is_err()); // year 10000
        assert!(rfc3339(-62_167_219_201).is_err()); // year -1
    }
}
