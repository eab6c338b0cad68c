//! Label selectors of typed objects, evaluated with the API server's own selector code so the
//! controllers and `?labelSelector=` agree on what matches.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector as TypedSelector;

pub use crate::resources::labels::LabelSelector;

/// Upstream `metav1.LabelSelectorAsSelector`: `None` selects nothing, `{}` everything.
pub fn from_typed(sel: Option<&TypedSelector>) -> Result<LabelSelector, String> {
    match sel {
        None => Ok(LabelSelector::nothing()),
        Some(s) => {
            let v = serde_json::to_value(s).map_err(|e| e.to_string())?;
            LabelSelector::from_json(&v)
        }
    }
}

/// A selector from a plain label map (ReplicationController, Service): an empty or missing
/// map selects nothing, as `labels.SelectorFromValidatedSet` is only used for non-empty sets.
pub fn from_map(map: Option<&BTreeMap<String, String>>) -> LabelSelector {
    match map.filter(|m| !m.is_empty()) {
        None => LabelSelector::nothing(),
        Some(m) => {
            let v = serde_json::json!({ "matchLabels": m });
            LabelSelector::from_json(&v).unwrap_or_else(|_| LabelSelector::nothing())
        }
    }
}

pub fn labels_of(labels: &Option<BTreeMap<String, String>>) -> &BTreeMap<String, String> {
    static EMPTY: BTreeMap<String, String> = BTreeMap::new();
    labels.as_ref().unwrap_or(&EMPTY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn typed_selectors_match_like_upstream() {
        assert!(!from_typed(None).unwrap().matches(&labels(&[])));
        let all = TypedSelector::default();
        assert!(from_typed(Some(&all))
            .unwrap()
            .matches(&labels(&[("a", "b")])));
        let sel = TypedSelector {
            match_labels: Some(labels(&[("app", "web")])),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "NotIn".into(),
                values: Some(vec!["db".into()]),
            }]),
        };
        let s = from_typed(Some(&sel)).unwrap();
        assert!(s.matches(&labels(&[("app", "web")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "db")])));
        assert!(!s.matches(&labels(&[("app", "api")])));
        let bad = TypedSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "k".into(),
                operator: "Near".into(),
                values: None,
            }]),
            ..Default::default()
        };
        assert!(from_typed(Some(&bad)).is_err());
    }

    #[test]
    fn map_selectors_select_nothing_when_empty() {
        assert!(!from_map(None).matches(&labels(&[("a", "b")])));
        assert!(!from_map(Some(&BTreeMap::new())).matches(&labels(&[])));
        assert!(from_map(Some(&labels(&[("a", "b")]))).matches(&labels(&[("a", "b"), ("c", "d")])));
    }
}
