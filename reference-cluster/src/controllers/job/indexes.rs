//! Completion indexes of Indexed Jobs: the `batch.kubernetes.io/job-completion-index`
//! annotation of pods, and the compressed interval lists of `status.completedIndexes`
//! ("1,3-5,7").

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Pod;

pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";

/// The pod's completion index, if it has a valid one.
pub fn completion_index(pod: &Pod) -> Option<i32> {
    let v = pod.metadata.annotations.as_ref()?.get(COMPLETION_INDEX)?;
    // Upstream accepts only plain non-negative decimal numbers.
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse::<i32>().ok()
}

/// Parses "1,3-5" into a set, ignoring indexes at or beyond `completions` and anything
/// malformed (upstream skips bad intervals the same way).
pub fn parse(s: &str, completions: i32) -> BTreeSet<i32> {
    let mut out = BTreeSet::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => match (a.parse::<i32>(), b.parse::<i32>()) {
                (Ok(a), Ok(b)) => (a, b),
                _ => continue,
            },
            None => match part.parse::<i32>() {
                Ok(a) => (a, a),
                Err(_) => continue,
            },
        };
        if first < 0 || last < first {
            continue;
        }
        let last = last.min(completions - 1);
        for i in first..=last {
            out.insert(i);
        }
    }
    out
}

/// Formats a set as upstream's intervals: runs of three or more become "a-b", a run of two
/// is written as two numbers ("1,2").
pub fn format(set: &BTreeSet<i32>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut iter = set.iter().copied().peekable();
    while let Some(first) = iter.next() {
        let mut last = first;
        while iter.peek() == Some(&(last + 1)) {
            last = iter.next().unwrap_or(last);
        }
        match last - first {
            0 => parts.push(first.to_string()),
            1 => {
                parts.push(first.to_string());
                parts.push(last.to_string());
            }
            _ => parts.push(format!("{first}-{last}")),
        }
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_round_trip_in_upstream_form() {
        let s: BTreeSet<i32> = [0, 1, 3, 4, 5, 7, 9, 10].into();
        assert_eq!(format(&s), "0,1,3-5,7,9,10");
        assert_eq!(parse("0,1,3-5,7,9,10", 100), s);
        assert_eq!(format(&BTreeSet::new()), "");
    }

    #[test]
    fn bad_or_out_of_range_intervals_are_skipped() {
        assert_eq!(parse("2-x,5,8-9,3-1,-4", 9), [5, 8].into());
        assert_eq!(parse("0-100", 3), [0, 1, 2].into());
    }

    #[test]
    fn only_decimal_annotations_are_indexes() {
        let mut p = Pod::default();
        assert_eq!(completion_index(&p), None);
        for (v, want) in [
            ("3", Some(3)),
            ("-1", None),
            ("+2", None),
            ("x", None),
            ("", None),
        ] {
            p.metadata.annotations = Some([(COMPLETION_INDEX.to_string(), v.to_string())].into());
            assert_eq!(completion_index(&p), want, "{v}");
        }
    }
}
