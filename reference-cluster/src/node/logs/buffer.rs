//! One container attempt's log as the runtime keeps it: a bounded ring of timestamped lines,
//! and the kubelet's reading of it (`tailLines`, `sinceSeconds`/`sinceTime`, `timestamps`,
//! `limitBytes`).

use std::collections::VecDeque;

use k8s_openapi::jiff::Timestamp;

/// How much of a container's log is kept; older lines are dropped first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogLimits {
    pub max_lines: usize,
    pub max_bytes: usize,
}

impl Default for LogLimits {
    /// 1000 lines or 1 MiB, whichever is reached first.
    fn default() -> Self {
        LogLimits {
            max_lines: 1000,
            max_bytes: 1024 * 1024,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// Position in the attempt's whole log, so a follower knows what it has seen even after
    /// older lines were dropped.
    pub seq: u64,
    pub at: Timestamp,
    pub text: String,
}

impl LogLine {
    fn size(&self) -> usize {
        self.text.len() + 1
    }
}

#[derive(Clone, Debug)]
pub struct LogBuffer {
    limits: LogLimits,
    lines: VecDeque<LogLine>,
    bytes: usize,
    next_seq: u64,
}

impl LogBuffer {
    pub fn new(limits: LogLimits) -> LogBuffer {
        LogBuffer {
            limits,
            lines: VecDeque::new(),
            bytes: 0,
            next_seq: 0,
        }
    }

    pub fn push(&mut self, at: Timestamp, text: impl Into<String>) {
        let line = LogLine {
            seq: self.next_seq,
            at,
            text: text.into(),
        };
        self.next_seq += 1;
        self.bytes += line.size();
        self.lines.push_back(line);
        while self.lines.len() > self.limits.max_lines.max(1)
            || (self.bytes > self.limits.max_bytes && self.lines.len() > 1)
        {
            if let Some(old) = self.lines.pop_front() {
                self.bytes -= old.size();
            }
        }
    }

    pub fn limits(&self) -> LogLimits {
        self.limits
    }

    /// The sequence number the next line will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Lines written at or after `since`, the last `tail` of them.
    pub fn select(&self, since: Option<Timestamp>, tail: Option<u64>) -> Vec<LogLine> {
        let kept: Vec<&LogLine> = self
            .lines
            .iter()
            .filter(|l| since.is_none_or(|s| l.at >= s))
            .collect();
        let skip = match tail {
            Some(n) => kept.len().saturating_sub(n.min(usize::MAX as u64) as usize),
            None => 0,
        };
        kept[skip..].iter().map(|l| (*l).clone()).collect()
    }

    /// Lines from sequence number `from` on (for a follower).
    pub fn after(&self, from: u64) -> Vec<LogLine> {
        self.lines
            .iter()
            .filter(|l| l.seq >= from)
            .cloned()
            .collect()
    }
}

/// How one line is written out: with `timestamps`, prefixed by its RFC 3339 time (nanoseconds,
/// trailing zeros trimmed, as Go's `RFC3339Nano`) and a space.
pub fn format_line(line: &LogLine, timestamps: bool) -> String {
    if timestamps {
        format!("{} {}\n", line.at, line.text)
    } else {
        format!("{}\n", line.text)
    }
}

/// Counts down `limitBytes` over a whole response, initial lines and followed ones alike.
#[derive(Clone, Copy, Debug)]
pub struct ByteBudget(Option<u64>);

impl ByteBudget {
    pub fn new(limit: Option<u64>) -> ByteBudget {
        ByteBudget(limit)
    }

    /// What of `text` may still be sent (cut mid-line when the budget ends there, as the kubelet
    /// does).
    pub fn take<'a>(&mut self, text: &'a str) -> &'a [u8] {
        let bytes = text.as_bytes();
        match &mut self.0 {
            None => bytes,
            Some(left) => {
                let n = (*left).min(bytes.len() as u64) as usize;
                *left -= n as u64;
                &bytes[..n]
            }
        }
    }

    pub fn exhausted(&self) -> bool {
        self.0 == Some(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    fn filled(n: u64, limits: LogLimits) -> LogBuffer {
        let mut b = LogBuffer::new(limits);
        for i in 0..n {
            b.push(ts(i as i64), format!("line {i}"));
        }
        b
    }

    fn texts(lines: &[LogLine]) -> Vec<String> {
        lines.iter().map(|l| l.text.clone()).collect()
    }

    #[test]
    fn the_ring_keeps_the_newest_lines_within_both_limits() {
        let b = filled(
            10,
            LogLimits {
                max_lines: 4,
                max_bytes: 1 << 20,
            },
        );
        assert_eq!(
            texts(&b.select(None, None)),
            ["line 6", "line 7", "line 8", "line 9"]
        );
        assert_eq!(b.next_seq(), 10);
        // Each "line N\n" is 7 bytes: 20 bytes hold two of them.
        let b = filled(
            10,
            LogLimits {
                max_lines: 100,
                max_bytes: 20,
            },
        );
        assert_eq!(texts(&b.select(None, None)), ["line 8", "line 9"]);
        assert_eq!(b.bytes(), 14);
        let mut huge = LogBuffer::new(LogLimits {
            max_lines: 10,
            max_bytes: 4,
        });
        huge.push(ts(0), "longer than the whole budget");
        assert_eq!(huge.len(), 1, "the newest line is kept even when too big");
    }

    #[test]
    fn tail_and_since_select_from_the_end() {
        let b = filled(10, LogLimits::default());
        assert_eq!(texts(&b.select(None, Some(2))), ["line 8", "line 9"]);
        assert_eq!(b.select(None, Some(0)), vec![]);
        assert_eq!(b.select(None, Some(100)).len(), 10);
        assert_eq!(
            texts(&b.select(Some(ts(7)), None)),
            ["line 7", "line 8", "line 9"]
        );
        assert_eq!(texts(&b.select(Some(ts(5)), Some(1))), ["line 9"]);
        assert!(b.select(Some(ts(50)), None).is_empty());
        assert_eq!(texts(&b.after(8)), ["line 8", "line 9"]);
    }

    #[test]
    fn timestamps_prefix_rfc3339_nano() {
        let line = LogLine {
            seq: 0,
            at: Timestamp::from_nanosecond(1_800_000_000_120_000_000).unwrap(),
            text: "hello".into(),
        };
        assert_eq!(format_line(&line, true), "2027-01-15T08:00:00.12Z hello\n");
        assert_eq!(format_line(&line, false), "hello\n");
    }

    #[test]
    fn limit_bytes_cuts_across_lines() {
        let mut budget = ByteBudget::new(Some(8));
        assert_eq!(budget.take("line 1\n"), b"line 1\n");
        assert_eq!(budget.take("line 2\n"), b"l");
        assert!(budget.exhausted());
        assert_eq!(budget.take("line 3\n"), b"");
        let mut none = ByteBudget::new(None);
        assert_eq!(none.take("abc\n"), b"abc\n");
        assert!(!none.exhausted());
    }
}
