//! The JSONPath subset custom resources use: printer columns, selectable fields and scale
//! paths. Supported: `.a.b`, `['key']`/`["key"]`, `[n]`, `[*]` and equality filters
//! `[?(@.type=="Ready")]` (the shape printer columns over conditions use).

use serde_json::Value;

#[derive(Clone, Debug, PartialEq)]
enum Segment {
    Field(String),
    Index(i64),
    Wildcard,
    Filter {
        path: Vec<String>,
        negate: bool,
        value: Value,
    },
}

/// A parsed path.
#[derive(Clone, Debug, PartialEq)]
pub struct JsonPath {
    segments: Vec<Segment>,
}

impl JsonPath {
    /// Parses `.spec.replicas`-style paths; `{...}` braces around the path are accepted.
    pub fn parse(s: &str) -> Result<JsonPath, String> {
        let s = s.trim();
        let s = s
            .strip_prefix('{')
            .and_then(|x| x.strip_suffix('}'))
            .unwrap_or(s);
        let s = s.strip_prefix('$').unwrap_or(s);
        let b = s.as_bytes();
        let mut i = 0;
        let mut segments = Vec::new();
        while i < b.len() {
            match b[i] {
                b'.' => {
                    i += 1;
                    let start = i;
                    while i < b.len() && b[i] != b'.' && b[i] != b'[' {
                        i += 1;
                    }
                    if start == i {
                        if i >= b.len() && segments.is_empty() {
                            break; // "." alone is the whole object
                        }
                        return Err(format!("invalid path {s:?}: empty field name"));
                    }
                    segments.push(Segment::Field(s[start..i].to_string()));
                }
                b'[' => {
                    let end = find_close(s, i)
                        .ok_or_else(|| format!("invalid path {s:?}: unclosed '['"))?;
                    let inner = s[i + 1..end].trim();
                    segments.push(
                        parse_bracket(inner).map_err(|e| format!("invalid path {s:?}: {e}"))?,
                    );
                    i = end + 1;
                }
                _ => {
                    if segments.is_empty() && i == 0 {
                        // Tolerate a missing leading dot: "spec.replicas".
                        let start = i;
                        while i < b.len() && b[i] != b'.' && b[i] != b'[' {
                            i += 1;
                        }
                        segments.push(Segment::Field(s[start..i].to_string()));
                    } else {
                        return Err(format!("invalid path {s:?}: unexpected character at {i}"));
                    }
                }
            }
        }
        Ok(JsonPath { segments })
    }

    /// All values the path selects.
    pub fn find<'a>(&self, root: &'a Value) -> Vec<&'a Value> {
        let mut current = vec![root];
        for seg in &self.segments {
            let mut next = Vec::new();
            for v in current {
                match seg {
                    Segment::Field(f) => {
                        if let Some(x) = v.get(f.as_str()) {
                            next.push(x);
                        }
                    }
                    Segment::Index(n) => {
                        if let Some(arr) = v.as_array() {
                            let idx = if *n < 0 { arr.len() as i64 + n } else { *n };
                            if let Some(x) = usize::try_from(idx).ok().and_then(|i| arr.get(i)) {
                                next.push(x);
                            }
                        }
                    }
                    Segment::Wildcard => match v {
                        Value::Array(a) => next.extend(a.iter()),
                        Value::Object(m) => next.extend(m.values()),
                        _ => {}
                    },
                    Segment::Filter {
                        path,
                        negate,
                        value,
                    } => {
                        if let Some(arr) = v.as_array() {
                            for item in arr {
                                let mut cur = Some(item);
                                for p in path {
                                    cur = cur.and_then(|c| c.get(p.as_str()));
                                }
                                let eq = cur == Some(value);
                                if eq != *negate {
                                    next.push(item);
                                }
                            }
                        }
                    }
                }
            }
            current = next;
        }
        current
    }

    /// The first selected value.
    pub fn first<'a>(&self, root: &'a Value) -> Option<&'a Value> {
        self.find(root).into_iter().next()
    }

    /// The dotted path of a path made only of field segments (`spec.replicas`), used to write
    /// through scale subresource paths.
    pub fn field_path(&self) -> Option<Vec<String>> {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Field(f) => Some(f.clone()),
                _ => None,
            })
            .collect()
    }
}

fn find_close(s: &str, open: usize) -> Option<usize> {
    let mut quote: Option<u8> = None;
    for (i, c) in s.bytes().enumerate().skip(open + 1) {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == b'\'' || c == b'"' => quote = Some(c),
            None if c == b']' => return Some(i),
            None => {}
        }
    }
    None
}

fn unquote(s: &str) -> Option<&str> {
    let s = s.trim();
    if s.len() >= 2
        && ((s.starts_with('\'') && s.ends_with('\'')) || (s.starts_with('"') && s.ends_with('"')))
    {
        Some(&s[1..s.len() - 1])
    } else {
        None
    }
}

fn parse_bracket(inner: &str) -> Result<Segment, String> {
    if inner == "*" {
        return Ok(Segment::Wildcard);
    }
    if let Some(k) = unquote(inner) {
        return Ok(Segment::Field(k.to_string()));
    }
    if let Ok(n) = inner.parse::<i64>() {
        return Ok(Segment::Index(n));
    }
    let filter = inner
        .strip_prefix("?(")
        .and_then(|f| f.strip_suffix(')'))
        .ok_or_else(|| format!("unsupported expression [{inner}]"))?;
    let (lhs, rhs, negate) = if let Some((l, r)) = filter.split_once("!=") {
        (l, r, true)
    } else if let Some((l, r)) = filter.split_once("==") {
        (l, r, false)
    } else {
        return Err(format!("unsupported filter {filter:?}"));
    };
    let path: Vec<String> = lhs
        .trim()
        .strip_prefix("@.")
        .ok_or_else(|| format!("filter must start with @.: {filter:?}"))?
        .split('.')
        .map(String::from)
        .collect();
    let rhs = rhs.trim();
    let value = match unquote(rhs) {
        Some(s) => Value::String(s.to_string()),
        None => serde_json::from_str(rhs).map_err(|_| format!("bad filter value {rhs:?}"))?,
    };
    Ok(Segment::Filter {
        path,
        negate,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn simple_and_indexed_paths() {
        let v = json!({"spec": {"replicas": 3, "items": [{"name": "a"}, {"name": "b"}], "a.b": 1}});
        assert_eq!(
            JsonPath::parse(".spec.replicas").unwrap().first(&v),
            Some(&json!(3))
        );
        assert_eq!(
            JsonPath::parse(".spec.items[1].name").unwrap().first(&v),
            Some(&json!("b"))
        );
        assert_eq!(
            JsonPath::parse(".spec.items[-1].name").unwrap().first(&v),
            Some(&json!("b"))
        );
        assert_eq!(
            JsonPath::parse(".spec['a.b']").unwrap().first(&v),
            Some(&json!(1))
        );
        assert_eq!(
            JsonPath::parse(".spec.items[*].name")
                .unwrap()
                .find(&v)
                .len(),
            2
        );
        assert_eq!(JsonPath::parse(".spec.missing").unwrap().first(&v), None);
        assert_eq!(
            JsonPath::parse("{.spec.replicas}").unwrap().first(&v),
            Some(&json!(3))
        );
    }

    #[test]
    fn condition_filters() {
        let v = json!({"status": {"conditions": [{"type": "Synced", "status": "False"}, {"type": "Ready", "status": "True"}]}});
        let p = JsonPath::parse(".status.conditions[?(@.type==\"Ready\")].status").unwrap();
        assert_eq!(p.first(&v), Some(&json!("True")));
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        assert!(JsonPath::parse(".spec[").is_err());
        assert!(JsonPath::parse(".spec..x").is_err());
        assert!(JsonPath::parse(".spec[?(x)]").is_err());
        assert_eq!(
            JsonPath::parse(".spec.replicas").unwrap().field_path(),
            Some(vec!["spec".into(), "replicas".into()])
        );
    }
}
