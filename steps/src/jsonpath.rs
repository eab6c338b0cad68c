//! JSONPath in the kubectl dialect (`{.status.conditions[?(@.type=="Ready")].status}`),
//! evaluated with an RFC 9535 engine.

use jsonpath_rust::JsonPath as _;
use serde_json::Value;

/// Turns kubectl-style `{.a.b}` / `.a.b` into RFC 9535 `$.a.b`.
pub fn normalise(expr: &str) -> String {
    let e = expr.trim();
    let e = e
        .strip_prefix('{')
        .and_then(|x| x.strip_suffix('}'))
        .unwrap_or(e)
        .trim();
    if e.starts_with('$') {
        e.to_string()
    } else if e.starts_with('.') || e.starts_with('[') {
        format!("${e}")
    } else {
        format!("$.{e}")
    }
}

/// All values the expression selects.
pub fn query(value: &Value, expr: &str) -> Result<Vec<Value>, String> {
    let path = normalise(expr);
    value
        .query(&path)
        .map(|v| v.into_iter().cloned().collect())
        .map_err(|e| format!("bad JSONPath '{expr}': {e}"))
}

/// The selected values as kubectl prints them: strings bare, other values as JSON, several
/// results joined by spaces, nothing as the empty string.
pub fn query_string(value: &Value, expr: &str) -> Result<String, String> {
    let vals = query(value, expr)?;
    Ok(vals.iter().map(scalar_text).collect::<Vec<_>>().join(" "))
}

pub fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kubectl_dialect_is_accepted() {
        assert_eq!(normalise("{.metadata.name}"), "$.metadata.name");
        assert_eq!(normalise(".spec"), "$.spec");
        assert_eq!(normalise("spec.replicas"), "$.spec.replicas");
        assert_eq!(normalise("$.a"), "$.a");
    }

    #[test]
    fn queries_return_kubectl_style_text() {
        let obj = json!({
            "metadata": {"name": "x", "labels": {"app.kubernetes.io/name": "web"}},
            "spec": {"replicas": 3},
            "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Other", "status": "False"}]}
        });
        assert_eq!(query_string(&obj, "{.metadata.name}").unwrap(), "x");
        assert_eq!(query_string(&obj, "{.spec.replicas}").unwrap(), "3");
        assert_eq!(
            query_string(&obj, "{.status.conditions[?(@.type==\"Ready\")].status}").unwrap(),
            "True"
        );
        assert_eq!(
            query_string(&obj, "{.metadata.labels['app.kubernetes.io/name']}").unwrap(),
            "web"
        );
        assert_eq!(
            query_string(&obj, "{.status.conditions[*].type}").unwrap(),
            "Ready Other"
        );
        // Single quotes, as a step's double-quoted argument needs.
        assert_eq!(
            query_string(&obj, "{.status.conditions[?(@.type=='Ready')].status}").unwrap(),
            "True"
        );
        assert_eq!(
            query_string(&obj, "{.status.conditions[?(@.type=='None')].status}").unwrap(),
            ""
        );
        assert_eq!(query_string(&obj, "{.missing}").unwrap(), "");
        assert!(query(&obj, "{.a[}").is_err());
    }
}
