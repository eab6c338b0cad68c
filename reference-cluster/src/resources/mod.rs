//! What the API server serves: the catalogue of resources (group, version, kind, plural, scope,
//! short names, categories, verbs, subresources) and, per resource, a [`Strategy`] that knows
//! its defaults, validation, status/spec split, field selectors and table columns.
//!
//! The generic registry in `apiserver` implements every verb once; everything that differs
//! between kinds lives here.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

mod builtin;
pub mod catalog;
pub mod convert;
pub mod crd;
pub mod custom;
pub mod defaults;
pub mod fields;
pub mod json;
pub mod jsonpath;
pub mod labels;
pub mod names;
pub mod quantity;
pub mod scale;
pub mod schema;
pub mod strategy;
pub mod table;
pub mod validation;

pub use catalog::{Catalog, GroupInfo};

/// One REST resource (e.g. `apps/v1 deployments`).
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct ResourceInfo {
    /// API group; `""` for the core group.
    pub group: String,
    pub version: String,
    pub kind: String,
    pub list_kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub verbs: Vec<String>,
    pub subresources: Vec<SubresourceInfo>,
    /// The resource segment of storage keys: `/registry/<storage_resource>/<ns>/<name>`.
    /// Core `events` and `events.k8s.io` events share `events`; custom resources use
    /// `<group>/<plural>` as upstream does.
    pub storage_resource: String,
    /// Whether this group-version is the group's preferred version (discovery).
    pub preferred: bool,
    /// Custom resources only: the CRD's name and version schema.
    #[serde(serialize_with = "serialize_custom")]
    pub custom: Option<Arc<CustomResourceInfo>>,
}

// serde's `rc` feature is off in the workspace; serialising through the reference keeps it so.
fn serialize_custom<S: serde::Serializer>(
    custom: &Option<Arc<CustomResourceInfo>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    custom.as_deref().serialize(serializer)
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SubresourceInfo {
    /// `status`, `scale`, `binding`, `eviction`, `log`, `exec`, `attach`, `portforward`,
    /// `proxy`, `ephemeralcontainers`, `token`, `approval`, `finalize`, …
    pub name: String,
    pub group: String,
    pub version: String,
    pub kind: String,
    pub verbs: Vec<String>,
}

/// What the API server needs to know about a custom resource version.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct CustomResourceInfo {
    pub crd_name: String,
    /// `openAPIV3Schema` of this version (structural schema), if any.
    pub schema: Option<Value>,
    pub has_status: bool,
    /// `spec.replicas`-style JSON paths of the scale subresource, if enabled.
    pub scale: Option<ScalePaths>,
    /// `additionalPrinterColumns` of this version.
    pub printer_columns: Vec<Value>,
    /// JSONPaths of `selectableFields` (field selectors beyond `metadata.name`/`namespace`).
    pub selectable_fields: Vec<String>,
    /// Whether this is the CRD's storage version (objects are stored in its shape).
    pub storage: bool,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ScalePaths {
    pub spec_replicas_path: String,
    pub status_replicas_path: String,
    pub label_selector_path: Option<String>,
}

impl ResourceInfo {
    /// `v1` for the core group, `group/version` otherwise.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn has_subresource(&self, name: &str) -> bool {
        self.subresources.iter().any(|s| s.name == name)
    }

    /// The display name upstream uses in messages: `pods`, `deployments.apps`.
    pub fn qualified_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// Storage key of one object (`namespace` ignored for cluster-scoped resources).
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match namespace {
            Some(ns) if self.namespaced => {
                format!("/registry/{}/{}/{}", self.storage_resource, ns, name)
            }
            _ => format!("/registry/{}/{}", self.storage_resource, name),
        }
    }

    /// Storage prefix for a list: all namespaces, or one namespace of a namespaced resource.
    pub fn prefix(&self, namespace: Option<&str>) -> String {
        match namespace {
            Some(ns) if self.namespaced => {
                format!("/registry/{}/{}/", self.storage_resource, ns)
            }
            _ => format!("/registry/{}/", self.storage_resource),
        }
    }
}

/// A field-level validation failure, reported like upstream's `field.Error`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// `FieldValueRequired`, `FieldValueInvalid`, `FieldValueNotSupported`,
    /// `FieldValueDuplicate`, `FieldValueForbidden`, `FieldValueTooLong`, …
    pub reason: String,
    /// JSON path such as `spec.containers[0].image`.
    pub field: String,
    /// The full message, e.g. `spec.containers[0].image: Required value`.
    pub message: String,
}

impl FieldError {
    pub fn required(field: impl Into<String>) -> Self {
        let field = field.into();
        FieldError {
            reason: "FieldValueRequired".into(),
            message: format!("{field}: Required value"),
            field,
        }
    }

    pub fn invalid(field: impl Into<String>, value: &Value, detail: &str) -> Self {
        let field = field.into();
        let shown = match value {
            Value::String(s) => format!("\"{s}\""),
            other => other.to_string(),
        };
        FieldError {
            reason: "FieldValueInvalid".into(),
            message: format!("{field}: Invalid value: {shown}: {detail}"),
            field,
        }
    }

    pub fn forbidden(field: impl Into<String>, detail: &str) -> Self {
        let field = field.into();
        FieldError {
            reason: "FieldValueForbidden".into(),
            message: format!("{field}: Forbidden: {detail}"),
            field,
        }
    }

    /// `Required value: <detail>`, for the many upstream checks that explain what is missing.
    pub fn required_detail(field: impl Into<String>, detail: &str) -> Self {
        let field = field.into();
        FieldError {
            reason: "FieldValueRequired".into(),
            message: if detail.is_empty() {
                format!("{field}: Required value")
            } else {
                format!("{field}: Required value: {detail}")
            },
            field,
        }
    }

    pub fn duplicate(field: impl Into<String>, value: &Value) -> Self {
        let field = field.into();
        FieldError {
            reason: "FieldValueDuplicate".into(),
            message: format!("{field}: Duplicate value: {value}"),
            field,
        }
    }

    pub fn not_found(field: impl Into<String>, value: &Value) -> Self {
        let field = field.into();
        FieldError {
            reason: "FieldValueNotFound".into(),
            message: format!("{field}: Not found: {value}"),
            field,
        }
    }

    /// Upstream `field.TooLong`: the value itself is not echoed.
    pub fn too_long(field: impl Into<String>, max_bytes: usize) -> Self {
        let field = field.into();
        FieldError {
            reason: "FieldValueTooLong".into(),
            message: format!("{field}: Too long: may not be more than {max_bytes} bytes"),
            field,
        }
    }

    pub fn too_many(field: impl Into<String>, actual: usize, max: usize) -> Self {
        let field = field.into();
        FieldError {
            reason: "FieldValueTooMany".into(),
            message: format!("{field}: Too many: {actual}: must have at most {max} items"),
            field,
        }
    }

    pub fn not_supported(field: impl Into<String>, value: &Value, supported: &[&str]) -> Self {
        let field = field.into();
        let quoted: Vec<String> = supported.iter().map(|s| format!("\"{s}\"")).collect();
        FieldError {
            reason: "FieldValueNotSupported".into(),
            message: format!(
                "{field}: Unsupported value: {value}: supported values: {}",
                quoted.join(", ")
            ),
            field,
        }
    }
}

/// One column of a `meta.k8s.io/v1 Table`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TableColumn {
    pub name: String,
    #[serde(rename = "type")]
    pub type_: String,
    pub format: String,
    pub description: String,
    /// Columns with priority > 0 are shown only with `-o wide`.
    pub priority: i32,
}

/// Per-resource behaviour plugged into the generic registry.
pub trait Strategy: Send + Sync {
    /// Fill in defaults as upstream's defaulting functions do (on create and update).
    fn default(&self, _obj: &mut Value) {}

    /// Called on create after defaulting: e.g. clear status for resources with a status
    /// subresource, set `metadata.generation = 1`.
    fn prepare_create(&self, _obj: &mut Value) {}

    /// Called on update of the main resource: e.g. keep `old`'s status when the resource has a
    /// status subresource, bump `metadata.generation` when the spec changed.
    fn prepare_update(&self, _obj: &mut Value, _old: &Value) {}

    /// Called on update of the `status` subresource: keep everything of `old` except status.
    fn prepare_status_update(&self, _obj: &mut Value, _old: &Value) {}

    /// Called on update through any subresource that writes the object (`status`, `finalize`,
    /// `approval`, `ephemeralcontainers`): keep everything of `old` except what that
    /// subresource owns. The default treats every subresource as `status`.
    fn prepare_subresource_update(&self, _subresource: &str, obj: &mut Value, old: &Value) {
        self.prepare_status_update(obj, old);
    }

    /// Validates an update through a subresource. Most subresources are validated as an
    /// update of the whole object; `pods/ephemeralcontainers` has rules of its own.
    fn validate_subresource_update(
        &self,
        _subresource: &str,
        obj: &Value,
        old: &Value,
    ) -> Vec<FieldError> {
        self.validate(obj, Some(old))
    }

    /// Converts an object of this resource version to the shape it is stored in, for
    /// versions that share storage with another (`events.k8s.io/v1` events are stored as core
    /// events, `autoscaling/v1` HPAs as `autoscaling/v2`). Identity for everything else.
    fn to_storage_version(&self, obj: Value) -> Value {
        obj
    }

    /// The inverse of [`Strategy::to_storage_version`]: a stored object as this version shows it.
    fn to_served_version(&self, obj: Value) -> Value {
        obj
    }

    /// Whether [`Strategy::to_storage_version`] and [`Strategy::to_served_version`] are the
    /// identity, so that the registry may keep an object it has just written instead of
    /// decoding the stored bytes again. Must be `false` wherever either converts.
    fn stores_served_version(&self) -> bool {
        true
    }

    /// Validation on create (`old` is `None`) and update.
    fn validate(&self, _obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
        Vec::new()
    }

    /// Value of a field selector label for this object (`metadata.name`, `metadata.namespace`
    /// and the per-kind ones such as `spec.nodeName`); `None` if the field is not supported.
    fn field_value(&self, obj: &Value, field: &str) -> Option<String>;

    /// Columns of the Table representation (`kubectl get`).
    fn table_columns(&self) -> Vec<TableColumn>;

    /// One row of cells, matching `table_columns`, for `obj` at time `now`.
    fn table_row(&self, obj: &Value, now: chrono::DateTime<chrono::Utc>) -> Vec<Value>;
}
