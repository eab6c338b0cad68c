//! Aggregated ClusterRoles (upstream `clusterroleaggregation` controller): a ClusterRole with an
//! `aggregationRule` gets the union of the rules of every other ClusterRole its label selectors
//! match, in name order, without duplicates.

use serde_json::{json, Value};

use super::rules::PolicyRule;
use crate::resources::labels::LabelSelector;

fn name_of(v: &Value) -> &str {
    v.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn rules_of(v: &Value) -> Vec<PolicyRule> {
    v.get("rules")
        .cloned()
        .and_then(|r| serde_json::from_value(r).ok())
        .unwrap_or_default()
}

/// The rules `role` should have according to its `aggregationRule`, or `None` when it has no
/// aggregation rule (its rules are its own). Selectors that do not parse match nothing.
pub fn aggregated_rules(role: &Value, cluster_roles: &[Value]) -> Option<Vec<Value>> {
    let selectors = role.pointer("/aggregationRule/clusterRoleSelectors")?;
    let mut sorted: Vec<&Value> = cluster_roles.iter().collect();
    sorted.sort_by(|a, b| name_of(a).cmp(name_of(b)));
    let mut out: Vec<PolicyRule> = Vec::new();
    for selector in selectors.as_array().map(Vec::as_slice).unwrap_or(&[]) {
        let Ok(selector) = LabelSelector::from_json(selector) else {
            continue;
        };
        for other in &sorted {
            if name_of(other) == name_of(role) || !selector.matches_object(other) {
                continue;
            }
            for rule in rules_of(other) {
                if !out.contains(&rule) {
                    out.push(rule);
                }
            }
        }
    }
    Some(out.iter().map(|r| json!(r)).collect())
}

/// Brings every aggregated ClusterRole in `cluster_roles` up to date, repeating until nothing
/// changes so chains (admin ← edit ← view) settle as the controller's repeated syncs would.
/// Returns the names of the roles whose rules changed.
pub fn aggregate_all(cluster_roles: &mut [Value]) -> Vec<String> {
    let mut changed = Vec::new();
    // Each pass settles at least one more link of the longest chain; a chain cannot be longer
    // than the number of roles.
    for _ in 0..=cluster_roles.len() {
        let mut any = false;
        for i in 0..cluster_roles.len() {
            let Some(rules) = aggregated_rules(&cluster_roles[i], cluster_roles) else {
                continue;
            };
            let current: Vec<PolicyRule> = rules_of(&cluster_roles[i]);
            let new: Vec<PolicyRule> = rules
                .iter()
                .filter_map(|r| serde_json::from_value(r.clone()).ok())
                .collect();
            if current != new {
                cluster_roles[i]["rules"] = Value::Array(rules);
                let name = name_of(&cluster_roles[i]).to_string();
                if !changed.contains(&name) {
                    changed.push(name);
                }
                any = true;
            }
        }
        if !any {
            break;
        }
    }
    changed
}
