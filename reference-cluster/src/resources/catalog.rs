//! The catalogue of served resources: the built-in ones plus whatever CRDs are established,
//! in upstream's discovery order, with a cache of per-resource strategies.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use parking_lot::RwLock;
use serde::Serialize;

use super::builtin::{builtin_resources, GROUP_ORDER};
use super::custom::CustomStrategy;
use super::strategy::builtin_strategy;
use super::{ResourceInfo, Strategy};

/// One API group as discovery lists it: versions with the preferred one first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GroupInfo {
    pub name: String,
    pub versions: Vec<String>,
}

impl GroupInfo {
    pub fn preferred_version(&self) -> Option<&str> {
        self.versions.first().map(String::as_str)
    }
}

type StrategyKey = (String, String, String);

#[derive(Default)]
struct Inner {
    builtin: Vec<Arc<ResourceInfo>>,
    /// CRD name → the resource versions it serves.
    custom: BTreeMap<String, Vec<Arc<ResourceInfo>>>,
    strategies: HashMap<StrategyKey, (Arc<ResourceInfo>, Arc<dyn Strategy>)>,
}

/// Cheap to clone: all clones share one catalogue.
#[derive(Clone)]
pub struct Catalog {
    inner: Arc<RwLock<Inner>>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.inner.read();
        f.debug_struct("Catalog")
            .field("builtin", &inner.builtin.len())
            .field("custom", &inner.custom.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Upstream `version.CompareKubeAwareVersionStrings`: GA > beta > alpha, higher numbers first
/// within each; strings that are not Kubernetes versions sort after them, alphabetically.
pub fn compare_kube_versions(a: &str, b: &str) -> Ordering {
    fn parse(v: &str) -> Option<(u64, u8, u64)> {
        let rest = v.strip_prefix('v')?;
        let digits_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits_end == 0 {
            return None;
        }
        let major: u64 = rest[..digits_end].parse().ok()?;
        let tail = &rest[digits_end..];
        if tail.is_empty() {
            return Some((major, 2, 0));
        }
        let (kind, minor) = if let Some(m) = tail.strip_prefix("alpha") {
            (0, m)
        } else if let Some(m) = tail.strip_prefix("beta") {
            (1, m)
        } else {
            return None;
        };
        if minor.is_empty() || !minor.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        Some((major, kind, minor.parse().ok()?))
    }
    if a == b {
        return Ordering::Equal;
    }
    match (parse(a), parse(b)) {
        (None, None) => b.cmp(a),
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some((amaj, akind, amin)), Some((bmaj, bkind, bmin))) => akind
            .cmp(&bkind)
            .then(amaj.cmp(&bmaj))
            .then(amin.cmp(&bmin)),
    }
}

/// Sort key of a group: its position in upstream's priority list, then its name.
type GroupRank = (usize, String);

fn group_rank(group: &str) -> GroupRank {
    // metrics-server's APIService asks for the lowest group priority (100), below custom
    // resources' 1000: the resource metrics API is listed last.
    if group == crate::apiserver::metrics_api::GROUP {
        return (GROUP_ORDER.len() + 1, String::new());
    }
    match GROUP_ORDER.iter().position(|g| *g == group) {
        Some(i) => (i, String::new()),
        None => (GROUP_ORDER.len(), group.to_string()),
    }
}

impl Catalog {
    /// The catalogue of a fresh 1.32 API server (no CRDs yet).
    pub fn builtin() -> Catalog {
        let builtin = builtin_resources().into_iter().map(Arc::new).collect();
        Catalog {
            inner: Arc::new(RwLock::new(Inner {
                builtin,
                ..Inner::default()
            })),
        }
    }

    fn collect(inner: &Inner) -> Vec<Arc<ResourceInfo>> {
        inner
            .builtin
            .iter()
            .chain(inner.custom.values().flatten())
            .cloned()
            .collect()
    }

    /// Versions of each group, preferred first (built-in groups carry an explicit preferred
    /// flag; custom groups prefer their highest Kubernetes-aware version).
    fn group_versions(all: &[Arc<ResourceInfo>]) -> BTreeMap<GroupRank, (String, Vec<String>)> {
        // Per group: its name, every version served, and the built-in preferred version.
        type Collected = (String, BTreeSet<String>, Option<String>);
        let mut groups: BTreeMap<GroupRank, Collected> = BTreeMap::new();
        for r in all {
            let entry = groups
                .entry(group_rank(&r.group))
                .or_insert_with(|| (r.group.clone(), BTreeSet::new(), None));
            entry.1.insert(r.version.clone());
            if r.preferred && r.custom.is_none() {
                entry.2 = Some(r.version.clone());
            }
        }
        groups
            .into_iter()
            .map(|(rank, (name, versions, preferred))| {
                let mut versions: Vec<String> = versions.into_iter().collect();
                versions.sort_by(|a, b| compare_kube_versions(b, a));
                if let Some(p) = preferred {
                    versions.retain(|v| *v != p);
                    versions.insert(0, p);
                }
                (rank, (name, versions))
            })
            .collect()
    }

    /// Every served resource version in discovery order: groups by upstream priority, versions
    /// preferred first, resources alphabetically.
    pub fn all(&self) -> Vec<Arc<ResourceInfo>> {
        let inner = self.inner.read();
        let all = Self::collect(&inner);
        let order = Self::group_versions(&all);
        let mut out = Vec::with_capacity(all.len());
        for (name, versions) in order.values() {
            for v in versions {
                let mut rs: Vec<Arc<ResourceInfo>> = all
                    .iter()
                    .filter(|r| r.group == *name && r.version == *v)
                    .cloned()
                    .collect();
                rs.sort_by(|a, b| a.plural.cmp(&b.plural));
                out.extend(rs);
            }
        }
        out
    }

    pub fn groups(&self) -> Vec<GroupInfo> {
        let inner = self.inner.read();
        let all = Self::collect(&inner);
        Self::group_versions(&all)
            .into_values()
            .map(|(name, versions)| GroupInfo { name, versions })
            .collect()
    }

    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceInfo>> {
        let inner = self.inner.read();
        inner
            .builtin
            .iter()
            .chain(inner.custom.values().flatten())
            .find(|r| r.group == group && r.version == version && r.plural == plural)
            .cloned()
    }

    pub fn by_kind(&self, group: &str, version: &str, kind: &str) -> Option<Arc<ResourceInfo>> {
        let inner = self.inner.read();
        inner
            .builtin
            .iter()
            .chain(inner.custom.values().flatten())
            .find(|r| r.group == group && r.version == version && r.kind == kind)
            .cloned()
    }

    /// All served versions of one resource (`group`, `plural`), e.g. to find the storage
    /// version of a custom resource.
    ///
    /// The order is [`Catalog::all`]'s. Admission asks this on every write, so only `group`'s
    /// own resources are ordered (they alone decide its version order), not the whole catalogue.
    pub fn versions_of(&self, group: &str, plural: &str) -> Vec<Arc<ResourceInfo>> {
        let inner = self.inner.read();
        let all = || inner.builtin.iter().chain(inner.custom.values().flatten());
        // Most resources are served in one version, which needs no ordering; ordering the
        // group's versions is most of the cost of this call.
        let mut matching = all().filter(|r| r.group == group && r.plural == plural);
        match (matching.next(), matching.next()) {
            (None, _) => return Vec::new(),
            (Some(only), None) => return vec![only.clone()],
            _ => {}
        }
        let of_group: Vec<Arc<ResourceInfo>> =
            all().filter(|r| r.group == group).cloned().collect();
        let mut out = Vec::new();
        for (_, versions) in Self::group_versions(&of_group).values() {
            for v in versions {
                out.extend(
                    of_group
                        .iter()
                        .filter(|r| r.version == *v && r.plural == plural)
                        .cloned(),
                );
            }
        }
        out
    }

    /// Replaces every version served for one CRD (`infos` from [`super::crd::infos_from_crd`]);
    /// an empty list stops serving it. The `preferred` flags of the CRD's group are recomputed.
    pub fn set_custom(&self, crd_name: &str, infos: Vec<ResourceInfo>) {
        let mut inner = self.inner.write();
        let groups: BTreeSet<String> = inner
            .custom
            .get(crd_name)
            .into_iter()
            .flatten()
            .map(|r| r.group.clone())
            .chain(infos.iter().map(|r| r.group.clone()))
            .collect();
        if infos.is_empty() {
            inner.custom.remove(crd_name);
        } else {
            inner.custom.insert(
                crd_name.to_string(),
                infos.into_iter().map(Arc::new).collect(),
            );
        }
        Self::recompute_preferred(&mut inner, &groups);
        inner
            .strategies
            .retain(|_, (info, _)| info.custom.as_ref().is_none_or(|c| c.crd_name != crd_name));
    }

    pub fn remove_custom(&self, crd_name: &str) {
        self.set_custom(crd_name, Vec::new());
    }

    fn recompute_preferred(inner: &mut Inner, groups: &BTreeSet<String>) {
        for group in groups {
            let best = inner
                .custom
                .values()
                .flatten()
                .filter(|r| &r.group == group)
                .map(|r| r.version.clone())
                .max_by(|a, b| compare_kube_versions(a, b));
            for infos in inner.custom.values_mut() {
                for info in infos.iter_mut() {
                    if &info.group == group {
                        let preferred = best.as_deref() == Some(info.version.as_str());
                        if info.preferred != preferred {
                            Arc::make_mut(info).preferred = preferred;
                        }
                    }
                }
            }
        }
    }

    /// The strategy for a resource (built-in or custom), cached per resource version.
    pub fn strategy(&self, info: &ResourceInfo) -> Arc<dyn Strategy> {
        let key = (
            info.group.clone(),
            info.version.clone(),
            info.plural.clone(),
        );
        if let Some((cached_info, s)) = self.inner.read().strategies.get(&key) {
            if cached_info.custom == info.custom {
                return s.clone();
            }
        }
        let strategy: Arc<dyn Strategy> = match &info.custom {
            Some(_) => Arc::new(CustomStrategy::new(info)),
            None => builtin_strategy(info),
        };
        self.inner
            .write()
            .strategies
            .insert(key, (Arc::new(info.clone()), strategy.clone()));
        strategy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(c: &Catalog) -> Vec<String> {
        c.all()
            .iter()
            .map(|r| format!("{}/{}/{}", r.group, r.version, r.plural))
            .collect()
    }

    #[test]
    fn versions_of_keeps_the_discovery_order() {
        let c = Catalog::builtin();
        c.set_custom(
            "widgets.example.com",
            vec![
                custom("widgets.example.com", "example.com", "v1beta1", "widgets"),
                custom("widgets.example.com", "example.com", "v1", "widgets"),
                custom("widgets.example.com", "example.com", "v2alpha1", "widgets"),
            ],
        );
        let all = c.all();
        let key = |r: &Arc<ResourceInfo>| format!("{}/{}/{}", r.group, r.version, r.plural);
        let pairs: BTreeSet<(String, String)> = all
            .iter()
            .map(|r| (r.group.clone(), r.plural.clone()))
            .collect();
        for (group, plural) in pairs {
            let expected: Vec<String> = all
                .iter()
                .filter(|r| r.group == group && r.plural == plural)
                .map(key)
                .collect();
            let got: Vec<String> = c.versions_of(&group, &plural).iter().map(key).collect();
            assert_eq!(got, expected, "{group}/{plural}");
        }
        let widgets: Vec<String> = c
            .versions_of("example.com", "widgets")
            .iter()
            .map(|r| r.version.clone())
            .collect();
        assert_eq!(widgets, ["v1", "v1beta1", "v2alpha1"]);
        assert!(c.versions_of("example.com", "gadgets").is_empty());
    }

    #[test]
    fn lookups_by_plural_and_kind() {
        let c = Catalog::builtin();
        let deploy = c.get("apps", "v1", "deployments").unwrap();
        assert_eq!(deploy.kind, "Deployment");
        assert_eq!(deploy.short_names, vec!["deploy"]);
        assert_eq!(deploy.categories, vec!["all"]);
        assert!(deploy.has_subresource("scale") && deploy.has_subresource("status"));
        let scale = deploy
            .subresources
            .iter()
            .find(|s| s.name == "scale")
            .unwrap();
        assert_eq!(
            (
                scale.group.as_str(),
                scale.version.as_str(),
                scale.kind.as_str()
            ),
            ("autoscaling", "v1", "Scale")
        );
        assert_eq!(c.by_kind("", "v1", "Pod").unwrap().plural, "pods");
        assert!(c.get("apps", "v1", "pods").is_none());
        assert!(c.get("", "v1", "componentstatuses").is_none());
    }

    #[test]
    fn upstream_storage_layout() {
        let c = Catalog::builtin();
        let key = |g: &str, p: &str| c.get(g, "v1", p).unwrap().key(Some("ns"), "x");
        assert_eq!(key("", "services"), "/registry/services/specs/ns/x");
        assert_eq!(key("", "endpoints"), "/registry/services/endpoints/ns/x");
        assert_eq!(
            c.get("", "v1", "nodes").unwrap().key(None, "n1"),
            "/registry/minions/n1"
        );
        assert_eq!(key("", "events"), key("events.k8s.io", "events"));
        assert_eq!(
            key("", "replicationcontrollers"),
            "/registry/controllers/ns/x"
        );
        assert_eq!(
            c.get("autoscaling", "v1", "horizontalpodautoscalers")
                .unwrap()
                .storage_resource,
            c.get("autoscaling", "v2", "horizontalpodautoscalers")
                .unwrap()
                .storage_resource
        );
    }

    #[test]
    fn pod_subresources_and_verbs() {
        let c = Catalog::builtin();
        let pods = c.get("", "v1", "pods").unwrap();
        let subs: Vec<&str> = pods.subresources.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            subs,
            [
                "attach",
                "binding",
                "ephemeralcontainers",
                "eviction",
                "exec",
                "log",
                "portforward",
                "proxy",
                "status"
            ]
        );
        let eviction = pods
            .subresources
            .iter()
            .find(|s| s.name == "eviction")
            .unwrap();
        assert_eq!(
            (eviction.group.as_str(), eviction.kind.as_str()),
            ("policy", "Eviction")
        );
        let ns = c.get("", "v1", "namespaces").unwrap();
        assert!(!ns.verbs.contains(&"deletecollection".to_string()));
        assert_eq!(c.get("", "v1", "bindings").unwrap().verbs, vec!["create"]);
        let token = c.get("", "v1", "serviceaccounts").unwrap();
        assert_eq!(token.subresources[0].kind, "TokenRequest");
    }

    #[test]
    fn discovery_order() {
        let c = Catalog::builtin();
        let groups: Vec<String> = c.groups().into_iter().map(|g| g.name).collect();
        assert_eq!(
            groups[..4],
            ["", "apiregistration.k8s.io", "apps", "events.k8s.io"]
        );
        assert_eq!(groups[groups.len() - 2], "flowcontrol.apiserver.k8s.io");
        assert_eq!(groups.last().unwrap(), "metrics.k8s.io");
        let autoscaling = c
            .groups()
            .into_iter()
            .find(|g| g.name == "autoscaling")
            .unwrap();
        assert_eq!(autoscaling.versions, ["v2", "v1"]);
        let all = names(&c);
        assert_eq!(all[0], "/v1/bindings");
        let v2 = all
            .iter()
            .position(|n| n == "autoscaling/v2/horizontalpodautoscalers")
            .unwrap();
        let v1 = all
            .iter()
            .position(|n| n == "autoscaling/v1/horizontalpodautoscalers")
            .unwrap();
        assert!(v2 < v1);
    }

    #[test]
    fn kube_aware_version_order() {
        let mut vs = vec![
            "v1beta1",
            "foo10",
            "v1",
            "v2",
            "v11alpha2",
            "v1alpha1",
            "foo1",
            "v10beta3",
        ];
        vs.sort_by(|a, b| compare_kube_versions(b, a));
        assert_eq!(
            vs,
            [
                "v2",
                "v1",
                "v10beta3",
                "v1beta1",
                "v11alpha2",
                "v1alpha1",
                "foo1",
                "foo10"
            ]
        );
    }

    fn custom(crd: &str, group: &str, version: &str, plural: &str) -> ResourceInfo {
        ResourceInfo {
            group: group.into(),
            version: version.into(),
            kind: "Widget".into(),
            list_kind: "WidgetList".into(),
            plural: plural.into(),
            singular: "widget".into(),
            namespaced: true,
            short_names: vec![],
            categories: vec![],
            verbs: vec!["get".into()],
            subresources: vec![],
            storage_resource: format!("{group}/{plural}"),
            preferred: false,
            custom: Some(Arc::new(super::super::CustomResourceInfo {
                crd_name: crd.into(),
                schema: None,
                has_status: false,
                scale: None,
                printer_columns: vec![],
                selectable_fields: vec![],
                storage: version == "v1",
            })),
        }
    }

    #[test]
    fn custom_resources_come_last_and_can_be_removed() {
        let c = Catalog::builtin();
        c.set_custom(
            "widgets.example.com",
            vec![
                custom("widgets.example.com", "example.com", "v1beta1", "widgets"),
                custom("widgets.example.com", "example.com", "v1", "widgets"),
            ],
        );
        c.set_custom(
            "gadgets.acme.io",
            vec![custom("gadgets.acme.io", "acme.io", "v1alpha1", "gadgets")],
        );
        let groups = c.groups();
        let tail: Vec<&str> = groups[groups.len() - 3..]
            .iter()
            .map(|g| g.name.as_str())
            .collect();
        assert_eq!(tail, ["acme.io", "example.com", "metrics.k8s.io"]);
        assert_eq!(groups[groups.len() - 2].versions, ["v1", "v1beta1"]);
        assert!(c.get("example.com", "v1", "widgets").unwrap().preferred);
        assert!(
            !c.get("example.com", "v1beta1", "widgets")
                .unwrap()
                .preferred
        );
        assert_eq!(c.versions_of("example.com", "widgets").len(), 2);
        let s1 = c.strategy(&c.get("example.com", "v1", "widgets").unwrap());
        let s2 = c.strategy(&c.get("example.com", "v1", "widgets").unwrap());
        assert!(Arc::ptr_eq(&s1, &s2));
        c.remove_custom("widgets.example.com");
        assert!(c.get("example.com", "v1", "widgets").is_none());
        assert!(c.groups().iter().all(|g| g.name != "example.com"));
    }
}
