//! `metadata.managedFields`: who owns which fields, updated on every write, and
//! server-side apply with conflict detection, following structured-merge-diff's `Updater`
//! and the apiserver's field manager chain.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

use super::fieldpath::{self, display_path, FieldSet, Path};
use super::meta::PatchMeta;
use super::typed;
use super::PatchError;

/// The operation of a managed fields entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    Apply,
    Update,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// Who is writing, and how.
#[derive(Clone, Copy, Debug)]
pub struct ManagedFieldsUpdate<'a> {
    /// The field manager (`?fieldManager=`, or the user agent's default).
    pub manager: &'a str,
    pub operation: Operation,
    /// `status`, `scale`, … when writing a subresource.
    pub subresource: Option<&'a str>,
    pub time: DateTime<Utc>,
    /// The API version the request used (`apps/v1`).
    pub api_version: &'a str,
}

/// One field another manager owns that an apply would change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplyConflict {
    /// The conflicting manager's name.
    pub manager: String,
    pub operation: Operation,
    pub api_version: String,
    pub subresource: Option<String>,
    /// The field, as upstream prints paths: `.spec.replicas`,
    /// `.spec.containers[name="nginx"].image`.
    pub field: String,
}

impl ApplyConflict {
    /// Upstream's description of the manager: `"kubectl" using apps/v1` for updaters,
    /// `"other-applier"` for appliers, with `with subresource "status"` when relevant.
    pub fn manager_description(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if let Some(sub) = &self.subresource {
            s.push_str(&format!(" with subresource {sub:?}"));
        }
        if self.operation == Operation::Update {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }

    /// The `message` of this conflict's `StatusCause` (type `FieldManagerConflict`, field
    /// [`ApplyConflict::field`]).
    pub fn cause_message(&self) -> String {
        format!("conflict with {}", self.manager_description())
    }
}

/// Everything that blocks an apply; becomes a 409 with reason `Conflict`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplyConflicts {
    pub conflicts: Vec<ApplyConflict>,
}

impl ApplyConflicts {
    /// Upstream's message, e.g.
    /// `Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas`.
    pub fn message(&self) -> String {
        if let [only] = self.conflicts.as_slice() {
            return format!(
                "Apply failed with 1 conflict: conflict with {}: {}",
                only.manager_description(),
                only.field
            );
        }
        let mut by_manager: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        for c in &self.conflicts {
            by_manager
                .entry(c.manager_description())
                .or_default()
                .push(&c.field);
        }
        let mut lines = Vec::new();
        for (manager, fields) in by_manager {
            lines.push(format!("conflicts with {manager}:"));
            lines.extend(fields.into_iter().map(|f| format!("- {f}")));
        }
        format!(
            "Apply failed with {} conflicts: {}",
            self.conflicts.len(),
            lines.join("\n")
        )
    }
}

/// One decoded managed fields entry.
#[derive(Clone, Debug)]
struct Entry {
    manager: String,
    operation: Operation,
    api_version: String,
    subresource: Option<String>,
    time: Option<String>,
    set: FieldSet,
    /// The stored `fieldsV1` `set` was decoded from, while `set` is unchanged: written back
    /// as it is instead of encoding `set` again, which every write of an object would
    /// otherwise do for every manager. Only ever taken from stored objects, whose entries this
    /// server encoded, so it is what encoding `set` would give.
    raw: Option<Value>,
}

impl Entry {
    /// Entries are identified as upstream does: appliers by manager and subresource,
    /// updaters also by API version.
    fn same_identity(&self, manager: &str, op: Operation, sub: Option<&str>, api: &str) -> bool {
        self.manager == manager
            && self.operation == op
            && self.subresource.as_deref() == sub
            && (op == Operation::Apply || self.api_version == api)
    }

    /// Keeps the paths `keep` accepts.
    fn retain_paths(&mut self, keep: impl FnMut(&Path) -> bool) {
        let before = self.set.len();
        self.set.retain(keep);
        if self.set.len() != before {
            self.raw = None;
        }
    }

    /// The set, to change it: the stored encoding no longer applies.
    fn set_mut(&mut self) -> &mut FieldSet {
        self.raw = None;
        &mut self.set
    }

    fn into_json(self) -> Value {
        let mut m = Map::new();
        m.insert("manager".into(), self.manager.into());
        m.insert("operation".into(), self.operation.as_str().into());
        m.insert("apiVersion".into(), self.api_version.into());
        if let Some(t) = self.time {
            m.insert("time".into(), t.into());
        }
        m.insert("fieldsType".into(), "FieldsV1".into());
        let fields = match self.raw {
            Some(raw) => raw,
            None => fieldpath::encode(&self.set),
        };
        m.insert("fieldsV1".into(), fields);
        if let Some(s) = self.subresource {
            m.insert("subresource".into(), s.into());
        }
        Value::Object(m)
    }
}

/// Fields nobody owns: identity and bookkeeping the server sets (upstream's
/// `stripMetaManager`). Removed as exact paths, not subtrees.
fn strip_set() -> FieldSet {
    let mut s = FieldSet::new();
    s.insert(fieldpath::fields(&["apiVersion"]));
    s.insert(fieldpath::fields(&["kind"]));
    s.insert(fieldpath::fields(&["metadata"]));
    for f in [
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
    ] {
        s.insert(fieldpath::fields(&["metadata", f]));
    }
    s
}

fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Decodes `metadata.managedFields`; `None` when absent or malformed. `stored`: they are a
/// stored object's (this server encoded them), so each entry may keep its `fieldsV1`.
fn decode_entries(obj: &Value, stored: bool) -> Option<Vec<Entry>> {
    let list = obj.get("metadata")?.get("managedFields")?.as_array()?;
    let mut out: Vec<Entry> = Vec::with_capacity(list.len());
    for item in list {
        let item = item.as_object()?;
        let str_of = |k: &str| item.get(k).and_then(Value::as_str).map(str::to_string);
        let operation = match item.get("operation").and_then(Value::as_str) {
            Some("Apply") => Operation::Apply,
            Some("Update") | None => Operation::Update,
            Some(_) => return None,
        };
        let (set, raw) = match item.get("fieldsV1") {
            None | Some(Value::Null) => (FieldSet::new(), None),
            Some(v) => (fieldpath::decode(v)?, stored.then(|| v.clone())),
        };
        let entry = Entry {
            manager: str_of("manager").unwrap_or_default(),
            operation,
            api_version: str_of("apiVersion").unwrap_or_default(),
            subresource: str_of("subresource").filter(|s| !s.is_empty()),
            time: str_of("time"),
            set,
            raw,
        };
        let existing = out.iter_mut().find(|e| {
            e.same_identity(
                &entry.manager,
                entry.operation,
                entry.subresource.as_deref(),
                &entry.api_version,
            )
        });
        match existing {
            Some(e) => e.set_mut().extend(entry.set),
            None => out.push(entry),
        }
    }
    Some(out)
}

/// Drops stripped fields and empty entries, sorts as upstream does (operation, time,
/// manager, API version, subresource) and writes `metadata.managedFields`.
fn write_entries(obj: &mut Value, mut entries: Vec<Entry>) {
    let strip = strip_set();
    for e in &mut entries {
        e.retain_paths(|p| !strip.contains(p));
    }
    entries.retain(|e| !e.set.is_empty());
    entries.sort_by(|a, b| {
        (
            a.operation,
            &a.time,
            &a.manager,
            &a.api_version,
            &a.subresource,
        )
            .cmp(&(
                b.operation,
                &b.time,
                &b.manager,
                &b.api_version,
                &b.subresource,
            ))
    });
    let Some(meta) = obj.as_object_mut().map(|o| {
        o.entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()))
    }) else {
        return;
    };
    let Some(meta) = meta.as_object_mut() else {
        return;
    };
    if entries.is_empty() {
        meta.shift_remove("managedFields");
    } else {
        let list = entries.into_iter().map(Entry::into_json).collect();
        meta.insert("managedFields".into(), Value::Array(list));
    }
}

fn managed_fields_of(obj: &Value) -> Option<&Value> {
    obj.get("metadata")?.get("managedFields")
}

fn without_managed_fields(obj: &Value) -> Value {
    let mut out = obj.clone();
    if let Some(meta) = out.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.shift_remove("managedFields");
    }
    out
}

/// Removes `null` members of objects: in an applied configuration they carry no value.
fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// For non-apply writes (create/update/patch): gives the fields that changed between `old`
/// and `new` to `upd.manager` (an `Update` entry), takes them away from other managers, and
/// writes `metadata.managedFields` on `new` (dropping managers left with no fields).
///
/// `managedFields` sent in `new` (when non-empty) replace the stored ones, which is how
/// clients edit or reset them (`[{}]`), as upstream allows.
pub fn update_managed_fields(
    meta: &PatchMeta,
    old: Option<&Value>,
    new: &mut Value,
    upd: &ManagedFieldsUpdate,
) {
    // Entries `new` carries unchanged from `old` (a read-modify-write) are the stored ones.
    let new_as_stored = old.is_some_and(|o| {
        managed_fields_of(o).is_some() && managed_fields_of(o) == managed_fields_of(new)
    });
    let mut entries = decode_entries(new, new_as_stored)
        .filter(|e| !e.is_empty())
        .or_else(|| old.and_then(|o| decode_entries(o, true)))
        .unwrap_or_default();
    // `compare` leaves managedFields out, so neither object needs a copy without them.
    let cmp = typed::compare(&meta.arena, meta.root, old, new);
    let mut changed: FieldSet = cmp.added.union(&cmp.modified).cloned().collect();
    for e in &mut entries {
        e.retain_paths(|p| !changed.contains(p) && !cmp.removed.contains(p));
    }
    let strip = strip_set();
    changed.retain(|p| !strip.contains(p));
    if !changed.is_empty() {
        let sub = upd.subresource;
        let existing = entries
            .iter_mut()
            .find(|e| e.same_identity(upd.manager, Operation::Update, sub, upd.api_version));
        match existing {
            Some(e) => {
                e.set_mut().extend(changed);
                e.time = Some(format_time(upd.time));
            }
            None => entries.push(Entry {
                manager: upd.manager.to_string(),
                operation: Operation::Update,
                api_version: upd.api_version.to_string(),
                subresource: sub.map(str::to_string),
                time: Some(format_time(upd.time)),
                set: changed,
                raw: None,
            }),
        }
    }
    write_entries(new, entries);
}

/// Applies `applied` (the user's configuration, YAML/JSON already parsed) onto `live`
/// (`None` = create). Returns the new object with `metadata.managedFields` updated.
///
/// Fields other managers own whose values would change are conflicts (`409`) unless
/// `force`, which moves their ownership to the applier. Fields the applier applied last
/// time but no longer applies are removed unless another manager owns them.
pub fn server_side_apply(
    meta: &PatchMeta,
    live: Option<&Value>,
    applied: &Value,
    upd: &ManagedFieldsUpdate,
    force: bool,
) -> Result<Value, PatchError> {
    if !applied.is_object() {
        return Err(PatchError::BadPatch(
            "apply patch must be a JSON or YAML object".into(),
        ));
    }
    if applied
        .get("metadata")
        .and_then(|m| m.get("managedFields"))
        .is_some_and(|m| !m.is_null())
    {
        return Err(PatchError::BadPatch(
            "metadata.managedFields must be nil".into(),
        ));
    }
    let (arena, root) = (&meta.arena, meta.root);
    let config = without_nulls(applied);
    let live_plain = live.map(without_managed_fields);
    let strip = strip_set();

    let mut entries = live
        .and_then(|l| decode_entries(l, true))
        .unwrap_or_default();
    if let (Some(lp), true) = (&live_plain, entries.is_empty()) {
        // Objects written before anyone tracked fields: what exists belongs to an updater
        // named as upstream names it, so the first apply can conflict with it.
        let mut set = typed::field_set(arena, root, lp);
        set.retain(|p| !strip.contains(p));
        entries.push(Entry {
            manager: "before-first-apply".into(),
            operation: Operation::Update,
            api_version: upd.api_version.to_string(),
            subresource: None,
            time: Some(format_time(upd.time)),
            set,
            raw: None,
        });
    }

    let empty = json!({});
    let mut merged = typed::merge(
        arena,
        root,
        Some(live_plain.as_ref().unwrap_or(&empty)),
        &config,
    );
    let mut applied_set = typed::field_set(arena, root, &config);
    applied_set.retain(|p| !strip.contains(p));

    let sub = upd.subresource;
    let applier = entries
        .iter()
        .position(|e| e.same_identity(upd.manager, Operation::Apply, sub, upd.api_version));
    let (applier, last_set, previous_time) = match applier {
        Some(i) => {
            let last = std::mem::replace(entries[i].set_mut(), applied_set);
            entries[i].api_version = upd.api_version.to_string();
            (i, last, entries[i].time.clone())
        }
        None => {
            entries.push(Entry {
                manager: upd.manager.to_string(),
                operation: Operation::Apply,
                api_version: upd.api_version.to_string(),
                subresource: sub.map(str::to_string),
                time: None,
                set: applied_set,
                raw: None,
            });
            (entries.len() - 1, FieldSet::new(), None)
        }
    };

    prune(meta, &mut merged, &entries, &last_set);

    let cmp = typed::compare(arena, root, live_plain.as_ref(), &merged);
    let changed: FieldSet = cmp.added.union(&cmp.modified).cloned().collect();
    let mut conflicts = Vec::new();
    for (i, e) in entries.iter_mut().enumerate() {
        if i == applier {
            continue;
        }
        let clashing: Vec<Path> = e.set.intersection(&changed).cloned().collect();
        for path in &clashing {
            conflicts.push(ApplyConflict {
                manager: e.manager.clone(),
                operation: e.operation,
                api_version: e.api_version.clone(),
                subresource: e.subresource.clone(),
                field: display_path(path),
            });
        }
        if force {
            for path in clashing {
                e.set_mut().remove(&path);
            }
        }
    }
    if !force && !conflicts.is_empty() {
        return Err(PatchError::Conflict(ApplyConflicts { conflicts }));
    }
    for e in &mut entries {
        e.retain_paths(|p| !cmp.removed.contains(p));
    }
    let unchanged = live_plain.as_ref() == Some(&merged);
    entries[applier].time = match previous_time {
        Some(t) if unchanged => Some(t),
        _ => Some(format_time(upd.time)),
    };
    write_entries(&mut merged, entries);
    Ok(merged)
}

/// Removes from `merged` what the applier applied last time, no longer applies, and no
/// manager (including the applier's new configuration) owns.
fn prune(meta: &PatchMeta, merged: &mut Value, entries: &[Entry], last_set: &FieldSet) {
    if last_set.is_empty() {
        return;
    }
    let owned: FieldSet = entries.iter().flat_map(|e| e.set.iter().cloned()).collect();
    for path in last_set {
        if owned.contains(path) {
            continue;
        }
        // Keep a parent while anyone still owns something inside it.
        let owned_inside = owned
            .range(path.clone()..)
            .next()
            .is_some_and(|p| p.starts_with(path));
        if !owned_inside {
            typed::remove(&meta.arena, meta.root, merged, path);
        }
    }
}
