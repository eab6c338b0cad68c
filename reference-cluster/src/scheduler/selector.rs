//! Selectors compiled once per pod from k8s-openapi values: label selectors (pod affinity,
//! topology spread, PDBs), node selectors (node affinity, `nodeSelector`, PV node affinity) and
//! toleration matching. Semantics follow apimachinery's `labels.Selector` and component-helpers'
//! `nodeaffinity`, including their edge cases: a nil label selector matches nothing, an empty
//! one matches everything, and a node selector term without requirements matches nothing.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    NodeSelectorRequirement, NodeSelectorTerm, Pod, PreferredSchedulingTerm, Taint, Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

pub type Labels = BTreeMap<String, String>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    In,
    NotIn,
    Exists,
    DoesNotExist,
    Gt,
    Lt,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Requirement {
    key: String,
    op: Op,
    values: Vec<String>,
    /// The integer operand of `Gt`/`Lt`.
    number: i64,
}

impl Requirement {
    fn new(
        key: &str,
        op: &str,
        values: Option<&Vec<String>>,
        allow_numeric: bool,
    ) -> Result<Requirement, String> {
        let values: Vec<String> = values.cloned().unwrap_or_default();
        let op = match op {
            "In" => Op::In,
            "NotIn" => Op::NotIn,
            "Exists" => Op::Exists,
            "DoesNotExist" => Op::DoesNotExist,
            "Gt" if allow_numeric => Op::Gt,
            "Lt" if allow_numeric => Op::Lt,
            other => return Err(format!("{other:?} is not a valid label selector operator")),
        };
        let mut number = 0;
        match op {
            Op::In | Op::NotIn if values.is_empty() => {
                return Err("for 'in', 'notin' operators, values set can't be empty".into())
            }
            Op::Exists | Op::DoesNotExist if !values.is_empty() => {
                return Err("values set must be empty for exists and does not exist".into())
            }
            Op::Gt | Op::Lt => {
                if values.len() != 1 {
                    return Err("for 'Gt', 'Lt' operators, exactly one value is required".into());
                }
                number = values[0].parse::<i64>().map_err(|_| {
                    "for 'Gt', 'Lt' operators, the value must be an integer".to_string()
                })?;
            }
            _ => {}
        }
        Ok(Requirement {
            key: key.to_string(),
            op,
            values,
            number,
        })
    }

    fn equals(key: &str, value: &str) -> Requirement {
        Requirement {
            key: key.to_string(),
            op: Op::In,
            values: vec![value.to_string()],
            number: 0,
        }
    }

    fn matches(&self, labels: Option<&Labels>) -> bool {
        let value = labels.and_then(|l| l.get(&self.key));
        match self.op {
            Op::In => value.is_some_and(|v| self.values.iter().any(|x| x == v)),
            Op::NotIn => value.is_none_or(|v| !self.values.iter().any(|x| x == v)),
            Op::Exists => value.is_some(),
            Op::DoesNotExist => value.is_none(),
            Op::Gt => value
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|v| v > self.number),
            Op::Lt => value
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|v| v < self.number),
        }
    }
}

/// A compiled `metav1.LabelSelector`: `None` matches nothing (a nil selector), otherwise every
/// requirement must match (no requirements = everything).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    reqs: Option<Vec<Requirement>>,
}

impl Selector {
    pub fn everything() -> Selector {
        Selector {
            reqs: Some(Vec::new()),
        }
    }

    pub fn nothing() -> Selector {
        Selector { reqs: None }
    }

    /// `metav1.LabelSelectorAsSelector`.
    pub fn from_label_selector(sel: Option<&LabelSelector>) -> Result<Selector, String> {
        let Some(sel) = sel else {
            return Ok(Selector::nothing());
        };
        let mut reqs = Vec::new();
        for (k, v) in sel.match_labels.iter().flatten() {
            reqs.push(Requirement::new(k, "In", Some(&vec![v.clone()]), false)?);
        }
        for e in sel.match_expressions.iter().flatten() {
            reqs.push(Requirement::new(
                &e.key,
                &e.operator,
                e.values.as_ref(),
                false,
            )?);
        }
        Ok(Selector { reqs: Some(reqs) })
    }

    /// A selector requiring every `key=value` of `set` (`labels.SelectorFromSet`).
    pub fn from_set(set: &Labels) -> Selector {
        Selector {
            reqs: Some(set.iter().map(|(k, v)| Requirement::equals(k, v)).collect()),
        }
    }

    /// Adds `key=value` requirements (how `matchLabelKeys` narrow a spread selector).
    pub fn and_set(mut self, set: &Labels) -> Selector {
        if let Some(reqs) = self.reqs.as_mut() {
            reqs.extend(set.iter().map(|(k, v)| Requirement::equals(k, v)));
        }
        self
    }

    /// Adds the requirements of `other` (a match-nothing `other` adds none, as upstream's
    /// `Requirements()` reports it as not selectable).
    pub fn and(mut self, other: Selector) -> Selector {
        if let (Some(reqs), Some(more)) = (self.reqs.as_mut(), other.reqs) {
            reqs.extend(more);
        }
        self
    }

    /// `Selector.Empty()`: true for the match-everything selector only.
    pub fn is_empty(&self) -> bool {
        self.reqs.as_ref().is_some_and(|r| r.is_empty())
    }

    pub fn matches(&self, labels: Option<&Labels>) -> bool {
        match &self.reqs {
            None => false,
            Some(reqs) => reqs.iter().all(|r| r.matches(labels)),
        }
    }
}

/// One compiled node selector term. `None` when the term failed to parse (it never matches, as
/// upstream's lazy-error selector ignores bad terms).
#[derive(Clone, Debug, PartialEq, Eq)]
struct NodeTerm {
    labels: Vec<Requirement>,
    /// `metadata.name` requirements.
    names: Vec<Requirement>,
}

impl NodeTerm {
    fn parse(term: &NodeSelectorTerm) -> Option<NodeTerm> {
        let mut labels = Vec::new();
        for e in term.match_expressions.iter().flatten() {
            labels.push(Requirement::new(&e.key, &e.operator, e.values.as_ref(), true).ok()?);
        }
        let mut names = Vec::new();
        for f in term.match_fields.iter().flatten() {
            names.push(parse_field_requirement(f)?);
        }
        Some(NodeTerm { labels, names })
    }

    fn matches(&self, node_name: &str, labels: Option<&Labels>) -> bool {
        if self.labels.is_empty() && self.names.is_empty() {
            return false;
        }
        if !self.labels.iter().all(|r| r.matches(labels)) {
            return false;
        }
        let mut fields = Labels::new();
        if !self.names.is_empty() {
            fields.insert("metadata.name".into(), node_name.to_string());
        }
        self.names.iter().all(|r| r.matches(Some(&fields)))
    }
}

/// Upstream only supports `metadata.name` with `In`/`NotIn` and exactly one value.
fn parse_field_requirement(f: &NodeSelectorRequirement) -> Option<Requirement> {
    if f.key != "metadata.name" || !matches!(f.operator.as_str(), "In" | "NotIn") {
        return None;
    }
    let values = f.values.as_ref()?;
    if values.len() != 1 {
        return None;
    }
    Requirement::new(&f.key, &f.operator, Some(values), false).ok()
}

/// Terms ORed together (`v1.NodeSelector`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSelector {
    terms: Vec<Option<NodeTerm>>,
}

impl NodeSelector {
    pub fn new(terms: &[NodeSelectorTerm]) -> NodeSelector {
        NodeSelector {
            terms: terms.iter().map(NodeTerm::parse).collect(),
        }
    }

    pub fn matches(&self, node_name: &str, labels: Option<&Labels>) -> bool {
        self.terms
            .iter()
            .flatten()
            .any(|t| t.matches(node_name, labels))
    }
}

/// `nodeSelector` plus required node affinity, as one predicate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequiredNodeAffinity {
    node_selector: Option<Selector>,
    affinity: Option<NodeSelector>,
}

impl RequiredNodeAffinity {
    pub fn of(pod: &Pod) -> RequiredNodeAffinity {
        let spec = pod.spec.as_ref();
        let node_selector = spec
            .and_then(|s| s.node_selector.as_ref())
            .filter(|m| !m.is_empty())
            .map(Selector::from_set);
        let affinity = spec
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .map(|ns| NodeSelector::new(&ns.node_selector_terms));
        RequiredNodeAffinity {
            node_selector,
            affinity,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.node_selector.is_none() && self.affinity.is_none()
    }

    pub fn matches(&self, node_name: &str, labels: Option<&Labels>) -> bool {
        if let Some(s) = &self.node_selector {
            if !s.matches(labels) {
                return false;
            }
        }
        match &self.affinity {
            Some(a) => a.matches(node_name, labels),
            None => true,
        }
    }
}

/// Preferred node affinity terms with their weights (weight-0 terms are dropped as upstream).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PreferredNodeAffinity {
    terms: Vec<(i64, NodeTerm)>,
}

impl PreferredNodeAffinity {
    pub fn of(pod: &Pod) -> Option<PreferredNodeAffinity> {
        let terms = pod
            .spec
            .as_ref()?
            .affinity
            .as_ref()?
            .node_affinity
            .as_ref()?
            .preferred_during_scheduling_ignored_during_execution
            .as_ref()?;
        Some(PreferredNodeAffinity::from_terms(terms))
    }

    pub fn from_terms(terms: &[PreferredSchedulingTerm]) -> PreferredNodeAffinity {
        PreferredNodeAffinity {
            terms: terms
                .iter()
                .filter(|t| t.weight != 0)
                .filter_map(|t| NodeTerm::parse(&t.preference).map(|p| (t.weight as i64, p)))
                .collect(),
        }
    }

    /// Sum of the weights of the terms the node matches.
    pub fn score(&self, node_name: &str, labels: Option<&Labels>) -> i64 {
        self.terms
            .iter()
            .filter(|(_, t)| t.matches(node_name, labels))
            .map(|(w, _)| *w)
            .sum()
    }
}

/// `Toleration.ToleratesTaint`.
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = t.effect.as_deref().filter(|e| !e.is_empty()) {
        if effect != taint.effect {
            return false;
        }
    }
    if let Some(key) = t.key.as_deref().filter(|k| !k.is_empty()) {
        if key != taint.key {
            return false;
        }
    }
    match t.operator.as_deref().unwrap_or("") {
        "" | "Equal" => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        "Exists" => true,
        _ => false,
    }
}

pub fn tolerations_tolerate(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|t| tolerates(t, taint))
}

/// The first `NoSchedule`/`NoExecute` taint the tolerations do not tolerate.
pub fn find_untolerated_do_not_schedule<'a>(
    taints: &'a [Taint],
    tolerations: &[Toleration],
) -> Option<&'a Taint> {
    taints
        .iter()
        .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
        .find(|t| !tolerations_tolerate(tolerations, t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn sel(v: serde_json::Value) -> Selector {
        Selector::from_label_selector(Some(&serde_json::from_value(v).unwrap())).unwrap()
    }

    #[test]
    fn nil_matches_nothing_and_empty_matches_everything() {
        let l = labels(&[("a", "1")]);
        assert!(!Selector::from_label_selector(None)
            .unwrap()
            .matches(Some(&l)));
        let empty = sel(json!({}));
        assert!(empty.matches(Some(&l)) && empty.is_empty());
        assert!(!Selector::nothing().is_empty());
    }

    #[test]
    fn label_operators() {
        let s = sel(json!({"matchLabels": {"app": "web"}, "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["a", "b"]},
            {"key": "env", "operator": "NotIn", "values": ["prod"]},
            {"key": "x", "operator": "DoesNotExist"},
        ]}));
        assert!(s.matches(Some(&labels(&[("app", "web"), ("tier", "a")]))));
        assert!(!s.matches(Some(&labels(&[("app", "web"), ("tier", "c")]))));
        assert!(!s.matches(Some(&labels(&[
            ("app", "web"),
            ("tier", "a"),
            ("env", "prod")
        ]))));
        assert!(!s.matches(Some(&labels(&[("app", "web"), ("tier", "a"), ("x", "")]))));
        assert!(!s.matches(None));
    }

    #[test]
    fn invalid_label_selectors_are_errors() {
        let bad =
            |v| Selector::from_label_selector(Some(&serde_json::from_value(v).unwrap())).is_err();
        assert!(bad(
            json!({"matchExpressions": [{"key": "a", "operator": "In"}]})
        ));
        assert!(bad(
            json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]})
        ));
        assert!(bad(
            json!({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]})
        ));
    }

    fn terms(v: serde_json::Value) -> Vec<NodeSelectorTerm> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn node_selector_terms_are_ored_and_empty_terms_match_nothing() {
        let ns = NodeSelector::new(&terms(json!([
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]},
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n9"]}]},
            {},
        ])));
        assert!(ns.matches("n1", Some(&labels(&[("zone", "a")]))));
        assert!(ns.matches("n9", None));
        assert!(!ns.matches("n1", Some(&labels(&[("zone", "b")]))));
        assert!(!NodeSelector::new(&terms(json!([{}]))).matches("n1", None));
        assert!(!NodeSelector::new(&[]).matches("n1", None));
    }

    #[test]
    fn numeric_node_operators_and_bad_terms() {
        let ns = NodeSelector::new(&terms(json!([
            {"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["4"]}]},
            {"matchExpressions": [{"key": "x", "operator": "Gt", "values": ["nope"]}]},
        ])));
        assert!(ns.matches("n", Some(&labels(&[("cores", "8")]))));
        assert!(!ns.matches("n", Some(&labels(&[("cores", "4")]))));
        assert!(!ns.matches("n", Some(&labels(&[("cores", "many"), ("x", "9")]))));
        let lt = NodeSelector::new(&terms(
            json!([{"matchExpressions": [{"key": "c", "operator": "Lt", "values": ["4"]}]}]),
        ));
        assert!(lt.matches("n", Some(&labels(&[("c", "3")]))));
    }

    #[test]
    fn required_affinity_combines_node_selector_and_terms() {
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {
            "containers": [],
            "nodeSelector": {"disk": "ssd"},
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "Exists"}]}
            ]}}},
        }}))
        .unwrap();
        let r = RequiredNodeAffinity::of(&pod);
        assert!(r.matches("n", Some(&labels(&[("disk", "ssd"), ("zone", "a")]))));
        assert!(!r.matches("n", Some(&labels(&[("disk", "ssd")]))));
        assert!(!r.matches("n", Some(&labels(&[("zone", "a")]))));
    }

    #[test]
    fn preferred_affinity_sums_weights() {
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {
            "containers": [],
            "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 10, "preference": {"matchExpressions": [{"key": "a", "operator": "Exists"}]}},
                {"weight": 5, "preference": {"matchExpressions": [{"key": "b", "operator": "Exists"}]}},
                {"weight": 0, "preference": {"matchExpressions": [{"key": "a", "operator": "Exists"}]}},
            ]}},
        }}))
        .unwrap();
        let p = PreferredNodeAffinity::of(&pod).unwrap();
        assert_eq!(p.score("n", Some(&labels(&[("a", ""), ("b", "")]))), 15);
        assert_eq!(p.score("n", Some(&labels(&[("b", "")]))), 5);
    }

    fn taint(key: &str, value: &str, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            value: Some(value.into()),
            effect: effect.into(),
            time_added: None,
        }
    }

    #[test]
    fn toleration_matching() {
        let t: Toleration =
            serde_json::from_value(json!({"key": "k", "value": "v", "effect": "NoSchedule"}))
                .unwrap();
        assert!(tolerates(&t, &taint("k", "v", "NoSchedule")));
        assert!(!tolerates(&t, &taint("k", "w", "NoSchedule")));
        assert!(!tolerates(&t, &taint("k", "v", "NoExecute")));
        let any: Toleration = serde_json::from_value(json!({"operator": "Exists"})).unwrap();
        assert!(tolerates(&any, &taint("x", "y", "NoExecute")));
        let bad: Toleration =
            serde_json::from_value(json!({"key": "k", "operator": "Nope"})).unwrap();
        assert!(!tolerates(&bad, &taint("k", "", "NoSchedule")));
    }

    #[test]
    fn untolerated_ignores_prefer_no_schedule() {
        let taints = [
            taint("soft", "", "PreferNoSchedule"),
            taint("hard", "x", "NoSchedule"),
        ];
        assert_eq!(
            find_untolerated_do_not_schedule(&taints, &[]).map(|t| t.key.as_str()),
            Some("hard")
        );
        let tol: Toleration =
            serde_json::from_value(json!({"key": "hard", "operator": "Exists"})).unwrap();
        assert!(find_untolerated_do_not_schedule(&taints, &[tol]).is_none());
    }
}
