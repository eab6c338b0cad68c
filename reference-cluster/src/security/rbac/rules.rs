//! `PolicyRule`s: matching a request against a rule (upstream `RuleAllows`), and whether one set
//! of rules covers another (upstream `validation.Covers`, used by the escalation checks).

use serde::{Deserialize, Deserializer, Serialize};

use super::Attributes;

pub const ALL: &str = "*";

/// One rule of a Role or ClusterRole (`rbac.authorization.k8s.io/v1 PolicyRule`). Fields are in
/// upstream's serialisation order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRule {
    #[serde(default, deserialize_with = "null_as_empty")]
    pub verbs: Vec<String>,
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub api_groups: Vec<String>,
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub resources: Vec<String>,
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub resource_names: Vec<String>,
    #[serde(
        default,
        rename = "nonResourceURLs",
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub non_resource_urls: Vec<String>,
}

/// Go decodes `null` into an empty slice; so do we, instead of failing the whole role.
pub(crate) fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

impl PolicyRule {
    /// A resource rule, as upstream's `NewRule(verbs…).Groups(…).Resources(…)` builder.
    pub fn resource(verbs: &[&str], groups: &[&str], resources: &[&str]) -> Self {
        PolicyRule {
            verbs: strs(verbs),
            api_groups: strs(groups),
            resources: strs(resources),
            ..Default::default()
        }
    }

    pub fn non_resource(verbs: &[&str], urls: &[&str]) -> Self {
        PolicyRule {
            verbs: strs(verbs),
            non_resource_urls: strs(urls),
            ..Default::default()
        }
    }

    pub fn names(mut self, names: &[&str]) -> Self {
        self.resource_names = strs(names);
        self
    }

    /// Upstream `RuleAllows`: does this rule grant the request?
    pub fn allows(&self, attrs: &Attributes) -> bool {
        self.allows_named(attrs, |name| resource_name_matches(self, name))
    }

    /// [`Self::allows`] with the resourceNames test supplied by the caller, so a compiled rule
    /// can answer it from an index instead of scanning a long list.
    pub(crate) fn allows_named(&self, attrs: &Attributes, name_ok: impl Fn(&str) -> bool) -> bool {
        if !verb_matches(self, &attrs.verb) {
            return false;
        }
        if attrs.resource_request {
            api_group_matches(self, &attrs.api_group)
                && resource_matches(self, &attrs.resource, &attrs.subresource)
                && name_ok(&attrs.name)
        } else {
            non_resource_url_matches(self, &attrs.path)
        }
    }

    /// Upstream `rbacv1helpers.CompactString`, used in escalation error messages:
    /// `{APIGroups:[""], Resources:["pods"], Verbs:["get"]}`.
    pub fn compact_string(&self) -> String {
        let mut parts = Vec::new();
        let list = |v: &[String]| {
            let quoted: Vec<String> = v.iter().map(|s| go_quote(s)).collect();
            format!("[{}]", quoted.join(" "))
        };
        if !self.api_groups.is_empty() {
            parts.push(format!("APIGroups:{}", list(&self.api_groups)));
        }
        if !self.resources.is_empty() {
            parts.push(format!("Resources:{}", list(&self.resources)));
        }
        if !self.non_resource_urls.is_empty() {
            parts.push(format!("NonResourceURLs:{}", list(&self.non_resource_urls)));
        }
        if !self.resource_names.is_empty() {
            parts.push(format!("ResourceNames:{}", list(&self.resource_names)));
        }
        if !self.verbs.is_empty() {
            parts.push(format!("Verbs:{}", list(&self.verbs)));
        }
        format!("{{{}}}", parts.join(", "))
    }
}

pub(crate) use crate::security::text::{go_quote, go_quote_list};

fn has(set: &[String], item: &str) -> bool {
    set.iter().any(|s| s == item)
}

fn verb_matches(rule: &PolicyRule, verb: &str) -> bool {
    rule.verbs.iter().any(|v| v == ALL || v == verb)
}

fn api_group_matches(rule: &PolicyRule, group: &str) -> bool {
    rule.api_groups.iter().any(|g| g == ALL || g == group)
}

/// `resource` alone, `resource/subresource`, `*`, or `*/subresource` for any resource's
/// subresource of that name.
fn resource_matches(rule: &PolicyRule, resource: &str, subresource: &str) -> bool {
    rule.resources.iter().any(|r| {
        if r == ALL {
            return true;
        }
        if subresource.is_empty() {
            return r == resource;
        }
        match r.split_once('/') {
            Some((res, sub)) => sub == subresource && (res == resource || res == ALL),
            None => false,
        }
    })
}

fn resource_name_matches(rule: &PolicyRule, name: &str) -> bool {
    rule.resource_names.is_empty() || has(&rule.resource_names, name)
}

fn non_resource_url_matches(rule: &PolicyRule, path: &str) -> bool {
    rule.non_resource_urls
        .iter()
        .any(|u| u == ALL || u == path || url_prefix_matches(u, path))
}

fn url_prefix_matches(rule_url: &str, path: &str) -> bool {
    rule_url
        .strip_suffix('*')
        .is_some_and(|prefix| path.starts_with(prefix))
}

/// Upstream `BreakdownRule`: one rule per (group, resource, verb[, name]) and (url, verb).
pub fn breakdown(rule: &PolicyRule) -> Vec<PolicyRule> {
    let mut out = Vec::new();
    for group in &rule.api_groups {
        for resource in &rule.resources {
            for verb in &rule.verbs {
                let base = PolicyRule {
                    verbs: vec![verb.clone()],
                    api_groups: vec![group.clone()],
                    resources: vec![resource.clone()],
                    ..Default::default()
                };
                if rule.resource_names.is_empty() {
                    out.push(base);
                } else {
                    for name in &rule.resource_names {
                        let mut r = base.clone();
                        r.resource_names = vec![name.clone()];
                        out.push(r);
                    }
                }
            }
        }
    }
    for url in &rule.non_resource_urls {
        for verb in &rule.verbs {
            out.push(PolicyRule::non_resource(&[verb], &[url]));
        }
    }
    out
}

fn has_all(set: &[String], items: &[String]) -> bool {
    items.iter().all(|i| has(set, i))
}

fn resource_covers_all(owner: &[String], wanted: &[String]) -> bool {
    if has(owner, ALL) || has_all(owner, wanted) {
        return true;
    }
    wanted.iter().all(|path| {
        if has(owner, path) {
            return true;
        }
        match path.split_once('/') {
            Some((_, sub)) => has(owner, &format!("*/{sub}")),
            None => false,
        }
    })
}

fn non_resource_url_covers(owner: &str, sub: &str) -> bool {
    owner == sub
        || owner
            .strip_suffix('*')
            .is_some_and(|p| sub.starts_with(p.trim_end_matches('*')))
}

/// Upstream `ruleCovers`: does `owner` grant everything `sub` grants?
pub fn rule_covers(owner: &PolicyRule, sub: &PolicyRule) -> bool {
    let verbs = has(&owner.verbs, ALL) || has_all(&owner.verbs, &sub.verbs);
    let groups = has(&owner.api_groups, ALL) || has_all(&owner.api_groups, &sub.api_groups);
    let resources = resource_covers_all(&owner.resources, &sub.resources);
    let urls = sub.non_resource_urls.iter().all(|u| {
        owner
            .non_resource_urls
            .iter()
            .any(|o| non_resource_url_covers(o, u))
    });
    let names = if sub.resource_names.is_empty() {
        owner.resource_names.is_empty()
    } else {
        owner.resource_names.is_empty() || has_all(&owner.resource_names, &sub.resource_names)
    };
    verbs && groups && resources && names && urls
}

/// Upstream `validation.Covers`: whether `owner` covers every rule of `wanted`, and the broken
/// down rules it does not cover.
pub fn covers(owner: &[PolicyRule], wanted: &[PolicyRule]) -> (bool, Vec<PolicyRule>) {
    let mut missing = Vec::new();
    for rule in wanted {
        for sub in breakdown(rule) {
            if !owner.iter().any(|o| rule_covers(o, &sub)) {
                missing.push(sub);
            }
        }
    }
    (missing.is_empty(), missing)
}

/// (group, resource, resource name) of a rule `compact` can merge.
type SimpleKey<'a> = (&'a str, &'a str, Option<&'a str>);

/// Upstream `CompactRules`: merges simple resource rules (one group, one resource, at most one
/// name) that differ only in verbs, keeping first-seen order.
pub fn compact(rules: &[PolicyRule]) -> Vec<PolicyRule> {
    let mut out: Vec<PolicyRule> = Vec::new();
    let mut simple_index: Vec<(SimpleKey, usize)> = Vec::new();
    for rule in rules {
        let simple = rule.api_groups.len() == 1
            && rule.resources.len() == 1
            && rule.resource_names.len() <= 1
            && rule.non_resource_urls.is_empty();
        if !simple {
            out.push(rule.clone());
            continue;
        }
        let key = (
            rule.api_groups[0].as_str(),
            rule.resources[0].as_str(),
            rule.resource_names.first().map(String::as_str),
        );
        match simple_index.iter().find(|(k, _)| *k == key) {
            Some((_, i)) => {
                for v in &rule.verbs {
                    if !has(&out[*i].verbs, v) {
                        out[*i].verbs.push(v.clone());
                    }
                }
            }
            None => {
                simple_index.push((key, out.len()));
                out.push(rule.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::UserInfo;

    fn req(verb: &str, group: &str, resource: &str, sub: &str, name: &str) -> Attributes {
        Attributes {
            user: UserInfo::new("u", &[]),
            verb: verb.into(),
            api_group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            name: name.into(),
            namespace: "ns".into(),
            resource_request: true,
            ..Default::default()
        }
    }

    #[test]
    fn matches_verbs_groups_and_resources() {
        let r = PolicyRule::resource(&["get", "list"], &[""], &["pods"]);
        assert!(r.allows(&req("get", "", "pods", "", "p")));
        assert!(!r.allows(&req("delete", "", "pods", "", "p")));
        assert!(!r.allows(&req("get", "apps", "pods", "", "p")));
        // A rule for `pods` does not grant its subresources.
        assert!(!r.allows(&req("get", "", "pods", "log", "p")));
        let star = PolicyRule::resource(&["*"], &["*"], &["*"]);
        assert!(star.allows(&req(
            "escalate",
            "rbac.authorization.k8s.io",
            "roles",
            "",
            ""
        )));
    }

    #[test]
    fn matches_subresources_and_wildcard_subresources() {
        let r = PolicyRule::resource(&["get"], &[""], &["pods/log"]);
        assert!(r.allows(&req("get", "", "pods", "log", "p")));
        assert!(!r.allows(&req("get", "", "pods", "", "p")));
        let any_scale = PolicyRule::resource(&["get"], &["*"], &["*/scale"]);
        assert!(any_scale.allows(&req("get", "apps", "deployments", "scale", "d")));
        assert!(!any_scale.allows(&req("get", "apps", "deployments", "status", "d")));
        assert!(!any_scale.allows(&req("get", "apps", "deployments", "", "d")));
    }

    #[test]
    fn resource_names_restrict_and_never_match_unnamed_requests() {
        let r = PolicyRule::resource(&["get", "list"], &[""], &["configmaps"]).names(&["a"]);
        assert!(r.allows(&req("get", "", "configmaps", "", "a")));
        assert!(!r.allows(&req("get", "", "configmaps", "", "b")));
        assert!(!r.allows(&req("list", "", "configmaps", "", "")));
    }

    #[test]
    fn non_resource_urls_support_trailing_star() {
        let r = PolicyRule::non_resource(&["get"], &["/healthz", "/apis/*"]);
        let nr = |path: &str| Attributes {
            user: UserInfo::new("u", &[]),
            verb: "get".into(),
            path: path.into(),
            ..Default::default()
        };
        assert!(r.allows(&nr("/healthz")));
        assert!(!r.allows(&nr("/healthz/etcd")));
        assert!(r.allows(&nr("/apis/apps/v1")));
        assert!(!r.allows(&nr("/api")));
        // Non-resource rules never match resource requests.
        assert!(!r.allows(&req("get", "", "pods", "", "")));
    }

    #[test]
    fn covers_matches_upstream_examples() {
        let owner = vec![PolicyRule::resource(&["get", "list"], &[""], &["pods"])];
        let (ok, missing) = covers(&owner, &[PolicyRule::resource(&["get"], &[""], &["pods"])]);
        assert!(ok && missing.is_empty());
        let (ok, missing) = covers(
            &owner,
            &[PolicyRule::resource(
                &["get", "delete"],
                &[""],
                &["pods", "secrets"],
            )],
        );
        assert!(!ok);
        let shown: Vec<String> = compact(&missing)
            .iter()
            .map(|r| r.compact_string())
            .collect();
        assert_eq!(
            shown,
            vec![
                r#"{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}"#,
                r#"{APIGroups:[""], Resources:["secrets"], Verbs:["get" "delete"]}"#,
            ]
        );
        // */scale covers deployments/scale; names are covered by an unnamed owner rule.
        let owner = vec![PolicyRule::resource(
            &["get"],
            &["apps"],
            &["*/scale", "configmaps"],
        )];
        assert!(
            covers(
                &owner,
                &[PolicyRule::resource(
                    &["get"],
                    &["apps"],
                    &["deployments/scale"]
                )]
            )
            .0
        );
        assert!(
            covers(
                &owner,
                &[PolicyRule::resource(&["get"], &["apps"], &["configmaps"]).names(&["x"])]
            )
            .0
        );
        // A named owner rule does not cover an unnamed request for the same resource.
        let named = vec![PolicyRule::resource(&["get"], &[""], &["secrets"]).names(&["x"])];
        assert!(
            !covers(
                &named,
                &[PolicyRule::resource(&["get"], &[""], &["secrets"])]
            )
            .0
        );
        let urls = vec![PolicyRule::non_resource(&["get"], &["/logs/*"])];
        assert!(covers(&urls, &[PolicyRule::non_resource(&["get"], &["/logs/a/b"])]).0);
        assert!(!covers(&urls, &[PolicyRule::non_resource(&["get"], &["/metrics"])]).0);
    }

    #[test]
    fn decodes_nulls_and_serialises_in_upstream_order() {
        let r: PolicyRule = serde_json::from_value(serde_json::json!({
            "apiGroups": null, "verbs": ["get"], "nonResourceURLs": ["/x"]
        }))
        .unwrap();
        assert!(r.api_groups.is_empty());
        assert_eq!(
            serde_json::to_string(&PolicyRule::resource(&["get"], &[""], &["pods"])).unwrap(),
            r#"{"verbs":["get"],"apiGroups":[""],"resources":["pods"]}"#
        );
    }
}
