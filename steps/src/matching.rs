//! Partial object matching ("the object has at least this") and the diff shown when it fails.
//!
//! Maps match by subset. Lists match element by element as subsets, paired by the merge key
//! `name` when every expected element has one, otherwise as a set (order ignored, each actual
//! element used once), never by position: the API may order list items as it likes. An
//! expected `null` means "absent or null".

use std::fmt;

use serde_json::{Map, Value};

#[derive(Clone, Debug, PartialEq)]
pub struct Mismatch {
    /// Where, e.g. `.spec.containers[name=web].image`.
    pub path: String,
    pub expected: Value,
    /// What was there; `None` when the field is absent.
    pub found: Option<Value>,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "."
        } else {
            &self.path
        };
        match &self.found {
            None => write!(
                f,
                "{path}: expected {}, field is absent",
                compact(&self.expected)
            ),
            Some(v) => write!(
                f,
                "{path}: expected {}, found {}",
                compact(&self.expected),
                compact(v)
            ),
        }
    }
}

fn compact(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 120 {
        format!("{}…", s.chars().take(120).collect::<String>())
    } else {
        s
    }
}

/// Every way `actual` fails to contain `expected`; empty when it matches.
pub fn mismatches(expected: &Value, actual: &Value) -> Vec<Mismatch> {
    let mut out = Vec::new();
    walk(expected, Some(actual), String::new(), &mut out);
    out
}

pub fn matches(expected: &Value, actual: &Value) -> bool {
    mismatches(expected, actual).is_empty()
}

fn walk(expected: &Value, actual: Option<&Value>, path: String, out: &mut Vec<Mismatch>) {
    let miss = |out: &mut Vec<Mismatch>| {
        out.push(Mismatch {
            path: path.clone(),
            expected: expected.clone(),
            found: actual.cloned(),
        })
    };
    match (expected, actual) {
        (Value::Null, None | Some(Value::Null)) => {}
        (_, None) => miss(out),
        (Value::Object(exp), Some(Value::Object(act))) => {
            for (k, v) in exp {
                walk(v, act.get(k), format!("{path}.{}", key_segment(k)), out);
            }
        }
        (Value::Array(exp), Some(Value::Array(act))) => walk_list(exp, act, &path, out),
        (Value::Number(a), Some(Value::Number(b))) => {
            if a != b && a.as_f64() != b.as_f64() {
                miss(out)
            }
        }
        (e, Some(a)) => {
            if e != a {
                miss(out)
            }
        }
    }
}

fn walk_list(exp: &[Value], act: &[Value], path: &str, out: &mut Vec<Mismatch>) {
    if let Some(names) = merge_keys(exp) {
        for (e, name) in exp.iter().zip(names) {
            let found = act
                .iter()
                .find(|a| a.get("name").and_then(Value::as_str) == Some(name));
            walk(e, found, format!("{path}[name={name}]"), out);
        }
        return;
    }
    // Set semantics: find a distinct actual element for every expected one. Lists in
    // manifests are short, so trying assignments with backtracking is cheap and, unlike a
    // greedy pass, never reports a false mismatch when elements overlap.
    let mut used = vec![false; act.len()];
    if assign(exp, act, &mut used) {
        return;
    }
    let before = out.len();
    for (i, e) in exp.iter().enumerate() {
        if !act.iter().any(|a| matches(e, a)) {
            out.push(Mismatch {
                path: format!("{path}[{i}]"),
                expected: e.clone(),
                found: None,
            });
        }
    }
    if out.len() == before {
        // Every element matches something, but not all at once (two expected elements
        // competing for one actual element).
        out.push(Mismatch {
            path: path.to_string(),
            expected: Value::Array(exp.to_vec()),
            found: Some(Value::Array(act.to_vec())),
        });
    }
}

fn assign(exp: &[Value], act: &[Value], used: &mut [bool]) -> bool {
    let Some((first, rest)) = exp.split_first() else {
        return true;
    };
    for i in 0..act.len() {
        if !used[i] && matches(first, &act[i]) {
            used[i] = true;
            if assign(rest, act, used) {
                return true;
            }
            used[i] = false;
        }
    }
    false
}

/// The `name` of every expected element, when all of them are maps with a string `name`.
fn merge_keys(exp: &[Value]) -> Option<Vec<&str>> {
    if exp.is_empty() {
        return None;
    }
    exp.iter()
        .map(|e| e.get("name").and_then(Value::as_str))
        .collect()
}

fn key_segment(k: &str) -> String {
    if k.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_string()
    } else {
        format!("[{k:?}]")
    }
}

/// `actual` cut down to the fields `expected` talks about, so a diff shows what matters
/// instead of the whole object with its managedFields.
pub fn project(expected: &Value, actual: &Value) -> Value {
    match (expected, actual) {
        (Value::Object(exp), Value::Object(act)) => {
            let mut m = Map::new();
            for (k, e) in exp {
                if let Some(a) = act.get(k) {
                    m.insert(k.clone(), project(e, a));
                }
            }
            Value::Object(m)
        }
        (Value::Array(exp), Value::Array(act)) => match merge_keys(exp) {
            Some(names) => Value::Array(
                exp.iter()
                    .zip(names)
                    .filter_map(|(e, n)| {
                        act.iter()
                            .find(|a| a.get("name").and_then(Value::as_str) == Some(n))
                            .map(|a| project(e, a))
                    })
                    .collect(),
            ),
            None => actual.clone(),
        },
        _ => actual.clone(),
    }
}

/// A line diff of the expected YAML against the projected actual YAML.
pub fn diff(expected: &Value, actual: &Value) -> String {
    let exp = to_yaml(expected);
    let act = to_yaml(&project(expected, actual));
    let mut out = String::from("--- expected\n+++ actual\n");
    out.push_str(&line_diff(&exp, &act));
    out
}

pub fn to_yaml(v: &Value) -> String {
    serde_yaml_ng::to_string(v).unwrap_or_else(|_| v.to_string())
}

/// Longest-common-subsequence line diff; inputs are manifest-sized, so O(n·m) is fine.
pub fn line_diff(a: &str, b: &str) -> String {
    let a: Vec<&str> = a.lines().collect();
    let b: Vec<&str> = b.lines().collect();
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = String::new();
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            out.push_str(&format!(" {}\n", a[i]));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push_str(&format!("-{}\n", a[i]));
            i += 1;
        } else {
            out.push_str(&format!("+{}\n", b[j]));
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_match_by_subset() {
        let actual =
            json!({"metadata": {"name": "a", "labels": {"x": "1", "y": "2"}}, "data": {"k": "v"}});
        assert!(matches(
            &json!({"metadata": {"labels": {"x": "1"}}}),
            &actual
        ));
        let m = mismatches(
            &json!({"metadata": {"labels": {"x": "2", "z": "3"}}}),
            &actual,
        );
        assert_eq!(m.len(), 2);
        assert_eq!(
            m[0].to_string(),
            ".metadata.labels.x: expected \"2\", found \"1\""
        );
        assert_eq!(
            m[1].to_string(),
            ".metadata.labels.z: expected \"3\", field is absent"
        );
    }

    #[test]
    fn null_means_absent() {
        let actual = json!({"metadata": {"name": "a", "deletionTimestamp": null}});
        assert!(matches(
            &json!({"metadata": {"deletionTimestamp": null, "finalizers": null}}),
            &actual
        ));
        assert!(!matches(&json!({"metadata": {"name": null}}), &actual));
    }

    #[test]
    fn lists_pair_by_name_regardless_of_order() {
        let actual = json!({"containers": [{"name": "b", "image": "i2"}, {"name": "a", "image": "i1", "x": 1}]});
        assert!(matches(
            &json!({"containers": [{"name": "a", "image": "i1"}]}),
            &actual
        ));
        let m = mismatches(
            &json!({"containers": [{"name": "a", "image": "nope"}, {"name": "c"}]}),
            &actual,
        );
        assert_eq!(m[0].path, ".containers[name=a].image");
        assert_eq!(m[1].path, ".containers[name=c]");
        assert_eq!(m[1].found, None);
    }

    #[test]
    fn lists_without_merge_key_match_as_sets() {
        let actual = json!({"finalizers": ["a/x", "b/y"], "ports": [{"port": 80}, {"port": 443, "protocol": "TCP"}]});
        assert!(matches(&json!({"finalizers": ["b/y", "a/x"]}), &actual));
        assert!(matches(&json!({"ports": [{"port": 443}]}), &actual));
        assert!(!matches(&json!({"finalizers": ["c/z"]}), &actual));
        // Two expected elements may not share one actual element.
        assert!(!matches(&json!({"finalizers": ["a/x", "a/x"]}), &actual));
        // Backtracking: {} could take either element; a greedy pass would fail here.
        assert!(matches(&json!({"ports": [{}, {"port": 80}]}), &actual));
    }

    #[test]
    fn scalars_compare_strictly_but_numbers_by_value() {
        assert!(matches(&json!({"r": 3}), &json!({"r": 3.0})));
        assert!(!matches(&json!({"r": "3"}), &json!({"r": 3})));
        assert!(!matches(&json!({"r": {"a": 1}}), &json!({"r": [1]})));
    }

    #[test]
    fn diff_shows_only_the_fields_asked_about() {
        let expected = json!({"data": {"k": "v"}});
        let actual =
            json!({"metadata": {"managedFields": [1, 2, 3]}, "data": {"k": "w", "other": "x"}});
        let d = diff(&expected, &actual);
        assert_eq!(d, "--- expected\n+++ actual\n data:\n-  k: v\n+  k: w\n");
    }

    #[test]
    fn line_diff_handles_insertions_and_removals() {
        assert_eq!(line_diff("a\nb\nc\n", "a\nc\nd\n"), " a\n-b\n c\n+d\n");
        assert_eq!(line_diff("", "x\n"), "+x\n");
    }
}
