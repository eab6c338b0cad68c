//! `{{ name }}` substitution in manifests and step arguments.
//!
//! Deliberately tiny: variables only (the scenario namespace, a unique suffix, values a
//! scenario remembered), so a feature file stays readable YAML and an unknown name is an
//! error rather than an empty string.

use std::collections::BTreeMap;

/// Replaces every `{{ name }}` in `text` with `vars[name]`.
pub fn render(text: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(format!(
                "unterminated '{{{{' in template near: {}",
                snippet(&rest[start..])
            ));
        };
        let name = after[..end].trim();
        if !is_identifier(name) {
            return Err(format!("'{{{{ {name} }}}}' is not a variable name"));
        }
        match vars.get(name) {
            Some(v) => out.push_str(v),
            None => {
                let known: Vec<&str> = vars.keys().map(String::as_str).collect();
                return Err(format!(
                    "unknown template variable '{name}' (known: {})",
                    known.join(", ")
                ));
            }
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Variable names used in `text`, for checks before a run (where values are not known yet).
pub fn variables(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        out.push(after[..end].trim().to_string());
        rest = &after[end + 2..];
    }
    out
}

/// Replaces every variable with a harmless placeholder so the text can be parsed (as YAML)
/// before a run.
pub fn render_placeholders(text: &str) -> Result<String, String> {
    let vars: BTreeMap<String, String> = variables(text)
        .into_iter()
        .filter(|v| is_identifier(v))
        .map(|v| (v, "placeholder".to_string()))
        .collect();
    render(text, &vars)
}

pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn snippet(s: &str) -> String {
    s.chars().take(30).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<String, String> {
        [("namespace", "kp-abc12"), ("rv", "42")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn substitutes_with_and_without_spaces() {
        assert_eq!(
            render("ns: {{ namespace }}/{{rv}}", &vars()).unwrap(),
            "ns: kp-abc12/42"
        );
        assert_eq!(render("no templates", &vars()).unwrap(), "no templates");
    }

    #[test]
    fn unknown_or_malformed_templates_are_errors() {
        let e = render("{{ nope }}", &vars()).unwrap_err();
        assert!(e.contains("nope") && e.contains("namespace"), "{e}");
        assert!(render("{{ namespace", &vars())
            .unwrap_err()
            .contains("unterminated"));
        assert!(render("{{ a b }}", &vars())
            .unwrap_err()
            .contains("not a variable"));
        assert!(render("{{ }}", &vars()).is_err());
    }

    #[test]
    fn placeholders_keep_yaml_parseable() {
        let text = "metadata:\n  namespace: {{ namespace }}\n  name: cm-{{ suffix }}\n";
        assert_eq!(variables(text), vec!["namespace", "suffix"]);
        let r = render_placeholders(text).unwrap();
        assert!(serde_yaml_ng::from_str::<serde_yaml_ng::Value>(&r).is_ok());
    }
}
