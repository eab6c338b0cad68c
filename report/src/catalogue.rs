//! The project's machine-readable copy of the behaviour catalogue
//! (`catalogue/behaviours.json`, derived from `shared/spec/behaviours.md`).

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// What a behaviour's check needs from the target, as the catalogue's legend defines it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Need {
    /// The control plane alone.
    #[serde(rename = "API")]
    Api,
    /// Node objects and pod status transitions (simulated nodes suffice).
    #[serde(rename = "SIM")]
    Sim,
    /// A real kubelet and container runtime.
    #[serde(rename = "EXEC")]
    Exec,
    /// Real data-plane networking.
    #[serde(rename = "NET")]
    Net,
    /// Access beyond the public API (etcd, flags, files, processes).
    #[serde(rename = "HOST")]
    Host,
}

impl Need {
    pub fn as_str(self) -> &'static str {
        match self {
            Need::Api => "API",
            Need::Sim => "SIM",
            Need::Exec => "EXEC",
            Need::Net => "NET",
            Need::Host => "HOST",
        }
    }
}

/// One catalogued behaviour.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Behaviour {
    /// Stable ID, e.g. `B-API-010`.
    pub id: String,
    /// Area slug, e.g. `api`, `workloads`.
    pub area: String,
    pub needs: Vec<Need>,
    /// The catalogue's parenthesised extras ("+ webhook server", ...), verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extras: Option<String>,
    /// A few words in kubeproof's own phrasing.
    pub title: String,
    /// Why no shipped scenario checks this behaviour (what it needs that a conformance
    /// scenario cannot have, or which other command measures it). Reports show it only
    /// while the behaviour is not covered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncovered_reason: Option<String>,
}

impl Behaviour {
    /// Core behaviours can be checked with the control plane and simulated nodes alone; the
    /// issue's coverage goal (80 %) is measured over them.
    pub fn is_core(&self) -> bool {
        self.needs
            .iter()
            .all(|n| matches!(n, Need::Api | Need::Sim))
    }

    pub fn needs_label(&self) -> String {
        self.needs
            .iter()
            .map(|n| n.as_str())
            .collect::<Vec<_>>()
            .join("+")
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct Catalogue {
    pub source: String,
    pub behaviours: Vec<Behaviour>,
}

const EMBEDDED: &str = include_str!("../../catalogue/behaviours.json");

impl Catalogue {
    /// Parses a catalogue document in the `catalogue/behaviours.json` format.
    pub fn parse(text: &str) -> anyhow::Result<Catalogue> {
        let cat: Catalogue = serde_json::from_str(text)?;
        Ok(cat)
    }

    /// The catalogue compiled into this binary.
    pub fn embedded() -> &'static Catalogue {
        static CAT: OnceLock<Catalogue> = OnceLock::new();
        // The embedded file is part of the source tree and checked by a unit test, so a parse
        // failure here is a build defect, not bad user input.
        CAT.get_or_init(|| Catalogue::parse(EMBEDDED).expect("embedded catalogue is valid JSON"))
    }

    pub fn get(&self, id: &str) -> Option<&Behaviour> {
        self.behaviours.iter().find(|b| b.id == id)
    }

    /// Area slugs in catalogue order, without repeats.
    pub fn areas(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for b in &self.behaviours {
            if !out.contains(&b.area.as_str()) {
                out.push(&b.area);
            }
        }
        out
    }
}

/// Whether a scenario tag names a catalogue behaviour (`@B-API-010` or `B-API-010`).
pub fn behaviour_id_from_tag(tag: &str) -> Option<&str> {
    let t = tag.strip_prefix('@').unwrap_or(tag);
    let mut parts = t.split('-');
    let (b, area, num) = (parts.next()?, parts.next()?, parts.next()?);
    let well_formed = b == "B"
        && !area.is_empty()
        && area.chars().all(|c| c.is_ascii_uppercase())
        && num.len() == 3
        && num.chars().all(|c| c.is_ascii_digit())
        && parts.next().is_none();
    well_formed.then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_catalogue_has_every_seed_behaviour() {
        let cat = Catalogue::embedded();
        assert_eq!(cat.behaviours.len(), 248);
        let mut ids: Vec<&str> = cat.behaviours.iter().map(|b| b.id.as_str()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 248, "IDs are unique");
        assert!(cat
            .behaviours
            .iter()
            .all(|b| !b.needs.is_empty() && !b.title.is_empty()));
        assert!(cat
            .behaviours
            .iter()
            .all(|b| behaviour_id_from_tag(&b.id) == Some(b.id.as_str())));
    }

    #[test]
    fn embedded_catalogue_matches_the_summary_table() {
        // The summary table of behaviours.md counts each behaviour under every need it names.
        let cat = Catalogue::embedded();
        let count = |n: Need| {
            cat.behaviours
                .iter()
                .filter(|b| b.needs.contains(&n))
                .count()
        };
        assert_eq!(count(Need::Api), 80);
        assert_eq!(count(Need::Sim), 73);
        assert_eq!(count(Need::Exec), 46);
        assert_eq!(count(Need::Net), 24);
        assert_eq!(count(Need::Host), 30);
        assert_eq!(cat.areas().len(), 10);
        let b = cat.get("B-API-004").unwrap();
        assert_eq!(
            b.extras.as_deref(),
            Some("+ webhook server reachable from apiserver")
        );
        assert!(b.is_core());
        assert!(!cat.get("B-NODE-008").unwrap().is_core());
    }

    #[test]
    fn tags_are_recognised_as_behaviour_ids_only_when_well_formed() {
        assert_eq!(behaviour_id_from_tag("@B-API-010"), Some("B-API-010"));
        assert_eq!(behaviour_id_from_tag("B-SCHED-001"), Some("B-SCHED-001"));
        assert_eq!(behaviour_id_from_tag("@serial"), None);
        assert_eq!(behaviour_id_from_tag("@B-API-10"), None);
        assert_eq!(behaviour_id_from_tag("@B-api-010"), None);
        assert_eq!(behaviour_id_from_tag("@B-API-010-x"), None);
        assert_eq!(behaviour_id_from_tag(""), None);
    }

    /// Behaviour IDs tagged anywhere in the shipped features.
    fn tagged_in_features() -> std::collections::BTreeSet<String> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../features");
        let mut dirs = vec![root.clone()];
        let mut ids = std::collections::BTreeSet::new();
        while let Some(dir) = dirs.pop() {
            let entries = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
            for entry in entries {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "feature") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    for line in text.lines().map(str::trim).filter(|l| l.starts_with('@')) {
                        ids.extend(
                            line.split_whitespace()
                                .filter_map(behaviour_id_from_tag)
                                .map(str::to_string),
                        );
                    }
                }
            }
        }
        assert!(
            ids.len() > 100,
            "found only {} tagged behaviours under {}",
            ids.len(),
            root.display()
        );
        ids
    }

    #[test]
    fn every_behaviour_no_feature_tags_says_why() {
        let tagged = tagged_in_features();
        // A reason must not outlive its gap: a report that did not select the scenario would
        // show it.
        let stale: Vec<&str> = Catalogue::embedded()
            .behaviours
            .iter()
            .filter(|b| tagged.contains(&b.id) && b.uncovered_reason.is_some())
            .map(|b| b.id.as_str())
            .collect();
        assert!(
            stale.is_empty(),
            "behaviours with a scenario still carry an uncovered_reason in catalogue/behaviours.json: {stale:?}"
        );
        let missing: Vec<&str> = Catalogue::embedded()
            .behaviours
            .iter()
            .filter(|b| !tagged.contains(&b.id) && b.uncovered_reason.is_none())
            .map(|b| b.id.as_str())
            .collect();
        assert!(
            missing.is_empty(),
            "behaviours without a scenario need an uncovered_reason in catalogue/behaviours.json: {missing:?}"
        );
    }

    #[test]
    fn uncovered_reasons_are_short_sentences() {
        for b in &Catalogue::embedded().behaviours {
            if let Some(r) = &b.uncovered_reason {
                assert!(
                    !r.trim().is_empty() && r.chars().count() <= 200,
                    "{}: the reason should be one short sentence: {r:?}",
                    b.id
                );
            }
        }
    }

    #[test]
    fn malformed_catalogue_text_is_an_error_not_a_panic() {
        assert!(Catalogue::parse("{").is_err());
        assert!(Catalogue::parse(r#"{"source":"x","behaviours":[{"id":1}]}"#).is_err());
    }
}
