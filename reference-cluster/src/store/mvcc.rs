//! The in-memory multi-version index shared by the memory and embedded backends.
//!
//! Each key maps to its versions in revision order; a delete appends a tombstone rather than
//! removing anything, so a list `at` an older revision still sees the key as it was. Only
//! [`Index::compact`] forgets versions. Writes happen in two steps so the embedded backend can
//! make a batch durable between them: [`Index::prepare`] validates a request (against the
//! committed state plus the earlier, not yet applied writes of the same batch) and turns it into
//! a [`Mutation`]; [`Index::apply`] installs a mutation and returns its [`Event`]. Recovery
//! replays logged mutations through the same `apply`.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use bytes::Bytes;

use super::{Event, EventKind, KeyValue, ListResult, Revision, StoreError, StoreResult};

/// One version of a key. A tombstone marks the revision at which the key was deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Version {
    pub value: Bytes,
    pub create_revision: Revision,
    pub mod_revision: Revision,
    pub tombstone: bool,
}

/// A write request as received from a caller.
#[derive(Debug)]
pub(crate) enum WriteOp {
    Create {
        key: String,
        value: Bytes,
    },
    Update {
        key: String,
        value: Bytes,
        expected: Revision,
    },
    Delete {
        key: String,
        expected: Option<Revision>,
    },
}

/// A validated write: set `key` to `value` (or delete it when `value` is `None`) at `revision`.
/// This is exactly what the embedded backend logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Mutation {
    pub revision: Revision,
    pub key: String,
    pub value: Option<Bytes>,
}

/// What earlier writes of a not yet applied batch did to their keys: `Some(mod_revision)` when
/// the key is live afterwards, `None` when it was deleted.
pub(crate) type Pending = HashMap<String, Option<Revision>>;

/// The error for a revision the store has not reached yet. Kubernetes answers such reads with
/// a retryable "too large resource version", hence `Unavailable` rather than a hard failure.
pub(crate) fn future_revision(requested: Revision, current: Revision) -> StoreError {
    StoreError::Unavailable(format!(
        "revision {requested} is newer than the current revision {current}"
    ))
}

#[derive(Debug, Default)]
pub(crate) struct Index {
    keys: BTreeMap<String, Vec<Version>>,
    revision: Revision,
    compacted: Revision,
}

impl Index {
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds an index from a snapshot. Version lists must be non-empty and in revision
    /// order, which the snapshot loader checks.
    pub fn restore(
        revision: Revision,
        compacted: Revision,
        keys: BTreeMap<String, Vec<Version>>,
    ) -> Self {
        Index {
            keys,
            revision,
            compacted,
        }
    }

    pub fn revision(&self) -> Revision {
        self.revision
    }

    pub fn compacted(&self) -> Revision {
        self.compacted
    }

    /// Every key with its retained versions, in key order (what a snapshot stores).
    pub fn histories(&self) -> impl ExactSizeIterator<Item = (&String, &Vec<Version>)> {
        self.keys.iter()
    }

    fn latest_live(&self, key: &str) -> Option<&Version> {
        self.keys
            .get(key)
            .and_then(|versions| versions.last())
            .filter(|v| !v.tombstone)
    }

    pub fn get(&self, key: &str) -> Option<KeyValue> {
        self.latest_live(key).map(|v| to_kv(key, v))
    }

    pub fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        at: Option<Revision>,
        limit: usize,
    ) -> StoreResult<ListResult> {
        let at = at.unwrap_or(self.revision);
        if at < self.compacted {
            return Err(StoreError::Expired {
                requested: at,
                oldest: self.compacted,
            });
        }
        if at > self.revision {
            return Err(future_revision(at, self.revision));
        }
        let lower = match start_after {
            Some(after) if after >= prefix => Bound::Excluded(after),
            _ => Bound::Included(prefix),
        };
        let mut result = ListResult {
            items: Vec::new(),
            revision: at,
            more: false,
        };
        let visible = self
            .keys
            .range::<str, _>((lower, Bound::Unbounded))
            .take_while(|(key, _)| key.starts_with(prefix))
            .filter_map(|(key, versions)| version_at(versions, at).map(|v| (key, v)));
        for (key, version) in visible {
            if limit > 0 && result.items.len() == limit {
                result.more = true;
                break;
            }
            result.items.push(to_kv(key, version));
        }
        Ok(result)
    }

    /// Validates `op` as the write at `revision`, seeing the earlier writes of the same batch
    /// through `pending`.
    pub fn prepare(
        &self,
        op: WriteOp,
        pending: &Pending,
        revision: Revision,
    ) -> StoreResult<Mutation> {
        let current = |key: &str| match pending.get(key) {
            Some(state) => *state,
            None => self.latest_live(key).map(|v| v.mod_revision),
        };
        match op {
            WriteOp::Create { key, value } => match current(&key) {
                Some(_) => Err(StoreError::AlreadyExists(key)),
                None => Ok(Mutation {
                    revision,
                    key,
                    value: Some(value),
                }),
            },
            WriteOp::Update {
                key,
                value,
                expected,
            } => match current(&key) {
                None => Err(StoreError::NotFound(key)),
                Some(actual) if actual != expected => Err(StoreError::Conflict {
                    key,
                    expected,
                    actual,
                }),
                Some(_) => Ok(Mutation {
                    revision,
                    key,
                    value: Some(value),
                }),
            },
            WriteOp::Delete { key, expected } => match (current(&key), expected) {
                (None, _) => Err(StoreError::NotFound(key)),
                (Some(actual), Some(expected)) if actual != expected => Err(StoreError::Conflict {
                    key,
                    expected,
                    actual,
                }),
                (Some(_), _) => Ok(Mutation {
                    revision,
                    key,
                    value: None,
                }),
            },
        }
    }

    /// Installs a mutation, which must be the next revision, and returns its event.
    pub fn apply(&mut self, mutation: Mutation) -> StoreResult<Event> {
        let Mutation {
            revision,
            key,
            value,
        } = mutation;
        if revision != self.revision + 1 {
            return Err(StoreError::Internal(format!(
                "mutation of {key} at revision {revision} does not follow revision {}",
                self.revision
            )));
        }
        let prev = self.latest_live(&key).cloned();
        let event = match value {
            Some(value) => {
                let create_revision = prev.as_ref().map_or(revision, |p| p.create_revision);
                let version = Version {
                    value,
                    create_revision,
                    mod_revision: revision,
                    tombstone: false,
                };
                let event = Event {
                    kind: EventKind::Put,
                    kv: to_kv(&key, &version),
                    prev: prev.as_ref().map(|p| to_kv(&key, p)),
                };
                self.keys.entry(key).or_default().push(version);
                event
            }
            None => {
                let Some(prev) = prev else {
                    return Err(StoreError::Internal(format!(
                        "delete of {key} at revision {revision}, but it does not exist"
                    )));
                };
                let event = Event {
                    kind: EventKind::Delete,
                    kv: KeyValue {
                        key: key.clone(),
                        value: prev.value.clone(),
                        create_revision: prev.create_revision,
                        mod_revision: revision,
                    },
                    prev: Some(to_kv(&key, &prev)),
                };
                // `prev` exists, so the key has a version list.
                if let Some(versions) = self.keys.get_mut(&key) {
                    versions.push(Version {
                        value: Bytes::new(),
                        create_revision: prev.create_revision,
                        mod_revision: revision,
                        tombstone: true,
                    });
                }
                event
            }
        };
        self.revision = revision;
        Ok(event)
    }

    /// Drops every version that no read at or after `revision` can see.
    pub fn compact(&mut self, revision: Revision) -> StoreResult<()> {
        if revision > self.revision {
            return Err(future_revision(revision, self.revision));
        }
        if revision <= self.compacted {
            return Ok(());
        }
        self.keys.retain(|_, versions| {
            // The newest version at or below `revision` is what a read at `revision` sees;
            // everything before it is unreachable, and so is that version itself if it is
            // a tombstone (reading "nothing" needs no record).
            let visible = versions.partition_point(|v| v.mod_revision <= revision);
            if visible > 0 {
                let keep_from = if versions[visible - 1].tombstone {
                    visible
                } else {
                    visible - 1
                };
                versions.drain(..keep_from);
            }
            !versions.is_empty()
        });
        self.compacted = revision;
        Ok(())
    }
}

/// The version of a key visible at revision `at`, if the key existed then.
fn version_at(versions: &[Version], at: Revision) -> Option<&Version> {
    let visible = versions.partition_point(|v| v.mod_revision <= at);
    visible
        .checked_sub(1)
        .map(|i| &versions[i])
        .filter(|v| !v.tombstone)
}

fn to_kv(key: &str, version: &Version) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: version.value.clone(),
        create_revision: version.create_revision,
        mod_revision: version.mod_revision,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(index: &mut Index, op: WriteOp) -> StoreResult<Event> {
        let revision = index.revision() + 1;
        let mutation = index.prepare(op, &Pending::new(), revision)?;
        index.apply(mutation)
    }

    fn create(key: &str, value: &'static str) -> WriteOp {
        WriteOp::Create {
            key: key.into(),
            value: Bytes::from_static(value.as_bytes()),
        }
    }

    #[test]
    fn prepare_sees_earlier_writes_of_the_same_batch() {
        let index = Index::new();
        let mut pending = Pending::new();
        let first = index.prepare(create("/k", "a"), &pending, 1).unwrap();
        pending.insert(first.key.clone(), Some(1));
        assert_eq!(
            index.prepare(create("/k", "b"), &pending, 2),
            Err(StoreError::AlreadyExists("/k".into()))
        );
        let update = WriteOp::Update {
            key: "/k".into(),
            value: Bytes::from_static(b"c"),
            expected: 1,
        };
        assert!(index.prepare(update, &pending, 2).is_ok());
        pending.insert("/k".into(), None);
        let delete = WriteOp::Delete {
            key: "/k".into(),
            expected: None,
        };
        assert_eq!(
            index.prepare(delete, &pending, 2),
            Err(StoreError::NotFound("/k".into()))
        );
    }

    #[test]
    fn apply_rejects_out_of_order_and_impossible_mutations() {
        let mut index = Index::new();
        let skip = Mutation {
            revision: 2,
            key: "/k".into(),
            value: Some(Bytes::new()),
        };
        assert!(matches!(index.apply(skip), Err(StoreError::Internal(_))));
        let delete_missing = Mutation {
            revision: 1,
            key: "/k".into(),
            value: None,
        };
        assert!(matches!(
            index.apply(delete_missing),
            Err(StoreError::Internal(_))
        ));
        assert_eq!(index.revision(), 0);
        assert!(index.histories().len() == 0);
    }

    #[test]
    fn compaction_keeps_what_reads_at_or_after_it_can_see() {
        let mut index = Index::new();
        write(&mut index, create("/a", "1")).unwrap(); // 1
        write(&mut index, create("/b", "1")).unwrap(); // 2
        let update = WriteOp::Update {
            key: "/a".into(),
            value: Bytes::from_static(b"2"),
            expected: 1,
        };
        write(&mut index, update).unwrap(); // 3
        let delete = WriteOp::Delete {
            key: "/b".into(),
            expected: None,
        };
        write(&mut index, delete).unwrap(); // 4
        write(&mut index, create("/c", "1")).unwrap(); // 5
        index.compact(4).unwrap();
        let histories: Vec<(String, Vec<Revision>)> = index
            .histories()
            .map(|(k, vs)| (k.clone(), vs.iter().map(|v| v.mod_revision).collect()))
            .collect();
        // "/a" keeps its version from 3 (visible at 4); "/b"'s tombstone at 4 hides it from
        // every read at 4 or later, so it disappears entirely.
        assert_eq!(
            histories,
            vec![("/a".to_string(), vec![3]), ("/c".to_string(), vec![5])]
        );
        let at4 = index.list("/", None, Some(4), 0).unwrap();
        assert_eq!(at4.items.len(), 1);
        assert_eq!(at4.items[0].value, Bytes::from_static(b"2"));
        assert!(matches!(
            index.list("/", None, Some(3), 0),
            Err(StoreError::Expired {
                requested: 3,
                oldest: 4
            })
        ));
    }

    #[test]
    fn list_looks_past_hidden_keys_before_claiming_more() {
        let mut index = Index::new();
        write(&mut index, create("/p/a", "1")).unwrap();
        write(&mut index, create("/p/b", "1")).unwrap();
        let delete = WriteOp::Delete {
            key: "/p/b".into(),
            expected: None,
        };
        write(&mut index, delete).unwrap();
        let page = index.list("/p/", None, None, 1).unwrap();
        assert_eq!(page.items.len(), 1);
        assert!(!page.more, "the only other key is deleted");
    }

    #[test]
    fn future_revisions_are_refused() {
        let mut index = Index::new();
        assert!(matches!(
            index.list("/", None, Some(1), 0),
            Err(StoreError::Unavailable(_))
        ));
        assert!(matches!(index.compact(1), Err(StoreError::Unavailable(_))));
    }
}
