//! `meta.k8s.io/v1 Table` output: column definitions and row cells for every built-in kind as
//! upstream's printers (`pkg/printers/internalversion`) produce them. The server always prints
//! the wide form; clients hide `priority > 0` columns unless asked for `-o wide`.
//!
//! Column descriptions are the OpenAPI descriptions of the fields upstream points at, taken
//! from k8s-openapi's schemas so they stay word-for-word.

mod cluster;
mod core;
mod workloads;

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use schemars::JsonSchema;
use serde_json::Value;

use super::json::{at, str_at};
use super::TableColumn;

pub use self::workloads::pod_status_reason;

/// kubectl's `duration.HumanDuration`: at most two units, coarser as the duration grows.
pub fn human_duration(d: Duration) -> String {
    let seconds = d.num_seconds();
    if seconds < -1 {
        return "<invalid>".to_string();
    } else if seconds < 0 {
        return "0s".to_string();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = d.num_minutes();
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = d.num_hours();
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    } else if hours < 48 {
        return format!("{hours}h");
    } else if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{}h", hours / 24, h)
        };
    } else if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{}d", hours / 24 / 365, dy)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// Parses an RFC 3339 timestamp as the API serialises them (`Time` and `MicroTime`).
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// `translateTimestampSince`: human age of the timestamp at `path`, `<unknown>` if unset.
pub fn age_at(obj: &Value, path: &str, now: DateTime<Utc>) -> String {
    match str_at(obj, path).and_then(parse_time) {
        Some(t) => human_duration(now - t),
        None => "<unknown>".to_string(),
    }
}

pub(crate) fn s(v: impl Into<String>) -> Value {
    Value::String(v.into())
}

pub(crate) fn int(v: i64) -> Value {
    Value::from(v)
}

/// The description of `prop` in `T`'s OpenAPI schema, or `""` when the type has none (some
/// upstream printers point at fields that do not exist and show an empty description).
pub fn doc<T: JsonSchema>(prop: &str) -> String {
    let mut generator = schemars::SchemaGenerator::default();
    let schema = T::json_schema(&mut generator);
    schema
        .as_object()
        .and_then(|o| o.get("properties"))
        .and_then(|p| p.get(prop))
        .and_then(|p| p.get("description"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

type ObjectMeta = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// A column with the given name, type and description.
pub(crate) fn col(name: &str, type_: &str, description: impl Into<String>) -> TableColumn {
    TableColumn {
        name: name.to_string(),
        type_: type_.to_string(),
        format: String::new(),
        description: description.into(),
        priority: 0,
    }
}

/// Marks a column as wide-only.
pub(crate) fn wide(mut c: TableColumn) -> TableColumn {
    c.priority = 1;
    c
}

/// The `Name` column every printer starts with.
pub(crate) fn name_col() -> TableColumn {
    TableColumn {
        format: "name".to_string(),
        ..col("Name", "string", doc::<ObjectMeta>("name"))
    }
}

/// The `Age` column.
pub(crate) fn age_col() -> TableColumn {
    col("Age", "string", doc::<ObjectMeta>("creationTimestamp"))
}

pub(crate) fn containers_cols(selector_desc: Option<String>) -> Vec<TableColumn> {
    let mut cols = vec![
        wide(col(
            "Containers",
            "string",
            "Names of each container in the template.",
        )),
        wide(col(
            "Images",
            "string",
            "Images referenced by each container in the template.",
        )),
    ];
    if let Some(d) = selector_desc {
        cols.push(wide(col("Selector", "string", d)));
    }
    cols
}

/// `layoutContainerCells`: comma-joined container names and images of a pod spec.
pub(crate) fn container_cells(pod_spec: Option<&Value>) -> (Value, Value) {
    let containers = pod_spec
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let names: Vec<&str> = containers
        .iter()
        .map(|c| c.get("name").and_then(Value::as_str).unwrap_or_default())
        .collect();
    let images: Vec<&str> = containers
        .iter()
        .map(|c| c.get("image").and_then(Value::as_str).unwrap_or_default())
        .collect();
    (s(names.join(",")), s(images.join(",")))
}

pub(crate) fn name_cell(obj: &Value) -> Value {
    s(str_at(obj, "metadata.name").unwrap_or_default())
}

pub(crate) fn string_map_at(obj: &Value, path: &str) -> BTreeMap<String, String> {
    super::json::string_map(obj, path)
}

/// `printBoolPtr`.
pub(crate) fn bool_ptr(v: Option<&Value>) -> String {
    match v.and_then(Value::as_bool) {
        Some(true) => "True".into(),
        Some(false) => "False".into(),
        None => "<unset>".into(),
    }
}

/// IntOrString's `String()`.
pub(crate) fn int_or_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// The columns of upstream's default table convertor (kinds without a printer).
pub fn default_columns() -> Vec<TableColumn> {
    vec![
        name_col(),
        col("Created At", "date", doc::<ObjectMeta>("creationTimestamp")),
    ]
}

/// Row of the default table: name and the creation timestamp as RFC 3339 in UTC.
pub fn default_row(obj: &Value) -> Vec<Value> {
    let created = str_at(obj, "metadata.creationTimestamp")
        .and_then(parse_time)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_string());
    vec![name_cell(obj), s(created)]
}

/// Columns for a built-in kind; kinds upstream has no printer for get the default table.
pub fn builtin_columns(group: &str, kind: &str) -> Vec<TableColumn> {
    workloads::columns(group, kind)
        .or_else(|| core::columns(group, kind))
        .or_else(|| cluster::columns(group, kind))
        .unwrap_or_else(default_columns)
}

/// The row for a built-in object, matching [`builtin_columns`].
pub fn builtin_row(group: &str, kind: &str, obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    workloads::row(group, kind, obj, now)
        .or_else(|| core::row(group, kind, obj, now))
        .or_else(|| cluster::row(group, kind, obj, now))
        .unwrap_or_else(|| default_row(obj))
}

/// `true` if a value at `path` exists and is not null.
pub(crate) fn has(obj: &Value, path: &str) -> bool {
    at(obj, path).is_some_and(|v| !v.is_null())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hd(secs: i64) -> String {
        human_duration(Duration::seconds(secs))
    }

    #[test]
    fn human_duration_matches_kubectl() {
        assert_eq!(hd(-5), "<invalid>");
        assert_eq!(hd(-1), "0s");
        assert_eq!(hd(0), "0s");
        assert_eq!(hd(5), "5s");
        assert_eq!(hd(119), "119s");
        assert_eq!(hd(120), "2m");
        assert_eq!(hd(150), "2m30s");
        assert_eq!(hd(599), "9m59s");
        assert_eq!(hd(600), "10m");
        assert_eq!(hd(3 * 3600 - 1), "179m");
        assert_eq!(hd(3 * 3600), "3h");
        assert_eq!(hd(3 * 3600 + 25 * 60), "3h25m");
        assert_eq!(hd(8 * 3600), "8h");
        assert_eq!(hd(47 * 3600), "47h");
        assert_eq!(hd(48 * 3600), "2d");
        assert_eq!(hd(5 * 86400 + 3 * 3600), "5d3h");
        assert_eq!(hd(8 * 86400), "8d");
        assert_eq!(hd(400 * 86400), "400d");
        assert_eq!(hd(2 * 365 * 86400), "2y");
        assert_eq!(hd((2 * 365 + 10) * 86400), "2y10d");
        assert_eq!(hd(9 * 365 * 86400), "9y");
    }

    #[test]
    fn descriptions_come_from_openapi() {
        let name = name_col();
        assert_eq!(name.format, "name");
        assert!(name
            .description
            .starts_with("Name must be unique within a namespace."));
        assert!(age_col()
            .description
            .starts_with("CreationTimestamp is a timestamp"));
        assert_eq!(doc::<ObjectMeta>("handler"), "");
    }

    #[test]
    fn default_table_shows_created_at() {
        let obj = serde_json::json!({"metadata": {"name": "r", "creationTimestamp": "2024-03-01T10:00:00Z"}});
        assert_eq!(default_row(&obj), vec![s("r"), s("2024-03-01T10:00:00Z")]);
        let cols = default_columns();
        assert_eq!(cols[1].name, "Created At");
        assert_eq!(cols[1].type_, "date");
        assert_eq!(builtin_columns("rbac.authorization.k8s.io", "Role"), cols);
    }
}
