//! The objects admission plugins consult on every write — LimitRanges, ResourceQuotas,
//! PriorityClasses, ValidatingAdmissionPolicies and their bindings, and on every pod create the
//! pod's ServiceAccount — kept in memory by
//! [`super::informer`] and this server's own writes, as upstream's plugins read them from
//! informers' listers instead of from storage. Without it, every write to any namespace listed
//! and decoded four kinds from the store.
//!
//! A stale entry can only delay what another API server sharing the store wrote, as upstream's
//! listers do; ResourceQuota's compare-and-swap of the usage catches a stale quota, and its
//! retries read the store itself.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::RwLock;
use serde_json::Value;

use crate::store::Revision;

/// `(group, resource)` of the kinds kept here; their storage keys start `/registry/<resource>/`.
const KINDS: [(&str, &str); 6] = [
    ("", "limitranges"),
    ("", "resourcequotas"),
    ("scheduling.k8s.io", "priorityclasses"),
    (
        "admissionregistration.k8s.io",
        "validatingadmissionpolicies",
    ),
    (
        "admissionregistration.k8s.io",
        "validatingadmissionpolicybindings",
    ),
    ("", "serviceaccounts"),
];

/// The storage prefixes the informer lists and watches for this cache, one per kind of
/// [`KINDS`], in the same order.
pub const PREFIXES: &[&str] = &[
    "/registry/limitranges/",
    "/registry/resourcequotas/",
    "/registry/priorityclasses/",
    "/registry/validatingadmissionpolicies/",
    "/registry/validatingadmissionpolicybindings/",
    "/registry/serviceaccounts/",
];

/// Which of [`KINDS`] the object stored under `key` is, if any.
fn kind_of_key(key: &str) -> Option<usize> {
    PREFIXES.iter().position(|p| key.starts_with(p))
}

/// Whether the object stored under `key` is one this cache keeps.
pub fn is_kept_key(key: &str) -> bool {
    kind_of_key(key).is_some()
}

/// Storage key → (revision last seen, object; `None` once deleted, so that an older event
/// arriving late cannot bring it back).
type Objects = BTreeMap<String, (Revision, Option<Arc<Value>>)>;

/// The objects of each of [`KINDS`].
#[derive(Default)]
pub struct AdmissionObjects {
    by_kind: RwLock<[Objects; KINDS.len()]>,
}

impl AdmissionObjects {
    /// Records the object stored under `key` at `revision` (`None`: deleted), unless something
    /// newer is already known.
    pub fn apply(&self, key: &str, revision: Revision, object: Option<&Value>) {
        let Some(kind) = kind_of_key(key) else {
            return;
        };
        let mut by_kind = self.by_kind.write();
        let objects = &mut by_kind[kind];
        if objects.get(key).is_some_and(|(seen, _)| *seen > revision) {
            return;
        }
        objects.insert(key.to_string(), (revision, object.cloned().map(Arc::new)));
    }

    /// Replaces everything with a fresh list at `revision`.
    pub fn reset(&self, listed: &[(String, Value)], revision: Revision) {
        let mut fresh: [Objects; KINDS.len()] = Default::default();
        for (key, obj) in listed {
            if let Some(kind) = kind_of_key(key) {
                fresh[kind].insert(key.clone(), (revision, Some(Arc::new(obj.clone()))));
            }
        }
        *self.by_kind.write() = fresh;
    }

    /// The `group`/`resource` object `name` (in `namespace`) as last seen; `None` when it is
    /// not known here (or the kind is not kept), which a caller confirms with the store, as
    /// upstream's admission plugins fall back to a live lookup when their lister misses.
    pub fn get(
        &self,
        group: &str,
        resource: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Arc<Value>> {
        let kind = KINDS.iter().position(|k| *k == (group, resource))?;
        let by_kind = self.by_kind.read();
        let objects = &by_kind[kind];
        if objects.is_empty() {
            return None;
        }
        let key = match namespace {
            Some(ns) => format!("{}{ns}/{name}", PREFIXES[kind]),
            None => format!("{}{name}", PREFIXES[kind]),
        };
        objects.get(&key)?.1.clone()
    }

    /// The `group`/`resource` objects of `namespace` (all namespaces, or a cluster-scoped
    /// kind: `None`) in storage-key order, as a list from the store returns them; `None` when
    /// this cache does not keep that kind.
    pub fn list(&self, group: &str, resource: &str, namespace: Option<&str>) -> Option<Vec<Value>> {
        let kind = KINDS.iter().position(|k| *k == (group, resource))?;
        let by_kind = self.by_kind.read();
        let objects = &by_kind[kind];
        // Most clusters have none of most of these kinds: no key to build, no range to walk.
        if objects.is_empty() {
            return Some(Vec::new());
        }
        let prefix = match namespace {
            Some(ns) => format!("{}{ns}/", PREFIXES[kind]),
            None => PREFIXES[kind].to_string(),
        };
        Some(
            objects
                .range(prefix.clone()..)
                .take_while(|(key, _)| key.starts_with(&prefix))
                .filter_map(|(_, (_, obj))| obj.as_deref().cloned())
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn quota(name: &str, rv: u64) -> Value {
        json!({"kind": "ResourceQuota", "metadata": {"name": name, "resourceVersion": rv.to_string()}})
    }

    fn names(v: &[Value]) -> Vec<&str> {
        v.iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap_or_default())
            .collect()
    }

    #[test]
    fn each_kind_has_its_prefix() {
        for ((_, resource), prefix) in KINDS.iter().zip(PREFIXES) {
            assert_eq!(format!("/registry/{resource}/"), *prefix);
        }
        assert_eq!(KINDS.len(), PREFIXES.len());
    }

    #[test]
    fn lists_one_namespace_in_key_order() {
        let c = AdmissionObjects::default();
        c.apply("/registry/resourcequotas/b/q2", 3, Some(&quota("q2", 3)));
        c.apply("/registry/resourcequotas/b/q1", 4, Some(&quota("q1", 4)));
        c.apply("/registry/resourcequotas/bb/q3", 5, Some(&quota("q3", 5)));
        c.apply("/registry/limitranges/b/l", 6, Some(&quota("l", 6)));
        let in_b = c.list("", "resourcequotas", Some("b")).unwrap();
        assert_eq!(names(&in_b), ["q1", "q2"], "namespace bb is not b");
        let all = c.list("", "resourcequotas", None).unwrap();
        assert_eq!(names(&all), ["q1", "q2", "q3"]);
        assert_eq!(c.list("", "resourcequotas", Some("none")), Some(vec![]));
        assert_eq!(c.list("", "pods", Some("b")), None, "pods are not kept");
    }

    #[test]
    fn gets_one_object_by_namespace_and_name() {
        let c = AdmissionObjects::default();
        assert!(c
            .get("", "serviceaccounts", Some("ns"), "default")
            .is_none());
        c.apply(
            "/registry/serviceaccounts/ns/default",
            4,
            Some(&quota("default", 4)),
        );
        let sa = c.get("", "serviceaccounts", Some("ns"), "default");
        assert_eq!(sa.as_deref(), Some(&quota("default", 4)));
        assert!(c
            .get("", "serviceaccounts", Some("other"), "default")
            .is_none());
        c.apply("/registry/serviceaccounts/ns/default", 5, None);
        assert!(c
            .get("", "serviceaccounts", Some("ns"), "default")
            .is_none());
        assert!(c.get("", "pods", Some("ns"), "default").is_none());
    }

    #[test]
    fn a_late_older_event_neither_revives_nor_rolls_back() {
        let c = AdmissionObjects::default();
        let key = "/registry/resourcequotas/ns/q";
        c.apply(key, 7, Some(&quota("q", 7)));
        c.apply(key, 5, Some(&quota("q", 5)));
        let rv = |c: &AdmissionObjects| {
            c.list("", "resourcequotas", Some("ns")).unwrap()[0]["metadata"]["resourceVersion"]
                .clone()
        };
        assert_eq!(rv(&c), json!("7"));
        c.apply(key, 8, None);
        c.apply(key, 7, Some(&quota("q", 7)));
        assert!(c.list("", "resourcequotas", Some("ns")).unwrap().is_empty());
    }

    #[test]
    fn a_reset_replaces_everything_and_ignores_other_kinds() {
        let c = AdmissionObjects::default();
        c.apply("/registry/limitranges/ns/old", 2, Some(&quota("old", 2)));
        c.apply("/registry/pods/ns/p", 3, Some(&quota("p", 3)));
        c.reset(
            &[
                ("/registry/limitranges/ns/new".into(), quota("new", 9)),
                ("/registry/pods/ns/p".into(), quota("p", 9)),
                (
                    "/registry/validatingadmissionpolicybindings/b".into(),
                    quota("b", 9),
                ),
            ],
            9,
        );
        assert_eq!(
            names(&c.list("", "limitranges", Some("ns")).unwrap()),
            ["new"]
        );
        let bindings = c
            .list(
                "admissionregistration.k8s.io",
                "validatingadmissionpolicybindings",
                None,
            )
            .unwrap();
        assert_eq!(names(&bindings), ["b"]);
        assert!(c
            .list(
                "admissionregistration.k8s.io",
                "validatingadmissionpolicies",
                None
            )
            .unwrap()
            .is_empty());
    }
}
