//! Patches: JSON patch (RFC 6902), JSON merge patch (RFC 7386), strategic merge patch, and
//! server-side apply with managed fields, all on JSON values.
//!
//! Kind-specific knowledge (which lists merge by which key, what is atomic) comes from a
//! [`PatchMeta`]: built-in kinds get theirs from k8s-openapi's types plus upstream's markers,
//! custom resources from their CRD schema.

mod fieldpath;
mod managed;
mod meta;
mod strategic;
mod typed;

pub use managed::{
    server_side_apply, update_managed_fields, ApplyConflict, ApplyConflicts, ManagedFieldsUpdate,
    Operation,
};
pub use meta::PatchMeta;

use serde_json::Value;

/// The media types of `PATCH` bodies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json`
    Json,
    /// `application/merge-patch+json`
    Merge,
    /// `application/strategic-merge-patch+json`
    StrategicMerge,
    /// `application/apply-patch+yaml`
    Apply,
}

impl PatchType {
    /// Parses a `Content-Type` header value; parameters such as `charset` are ignored.
    pub fn from_content_type(ct: &str) -> Option<PatchType> {
        let media = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match media.as_str() {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::StrategicMerge),
            "application/apply-patch+yaml" => Some(PatchType::Apply),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            PatchType::Json => "application/json-patch+json",
            PatchType::Merge => "application/merge-patch+json",
            PatchType::StrategicMerge => "application/strategic-merge-patch+json",
            PatchType::Apply => "application/apply-patch+yaml",
        }
    }
}

/// Why a patch could not be applied, with the HTTP status upstream answers.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// 400 Bad Request: the patch document is malformed.
    #[error("{0}")]
    BadPatch(String),
    /// 415 Unsupported Media Type: e.g. strategic merge patch on a custom resource.
    #[error("{0}")]
    Unsupported(String),
    /// 409 Conflict: server-side apply conflicts with other field managers.
    #[error("{}", .0.message())]
    Conflict(ApplyConflicts),
    /// 422 Unprocessable Entity: the patch is well-formed but cannot be applied
    /// (a failed JSON patch `test`, a missing path, `$retainKeys` mismatch).
    #[error("{0}")]
    Invalid(String),
}

impl PatchError {
    /// The HTTP status code upstream uses for this error.
    pub fn status_code(&self) -> u16 {
        match self {
            PatchError::BadPatch(_) => 400,
            PatchError::Unsupported(_) => 415,
            PatchError::Conflict(_) => 409,
            PatchError::Invalid(_) => 422,
        }
    }
}

/// Upstream's 415 message for a patch type a resource does not accept.
fn unsupported_for_custom_resources() -> PatchError {
    PatchError::Unsupported(
        "the body of the request was in an unknown format - accepted media types include: \
         application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
            .into(),
    )
}

/// Applies a JSON patch, JSON merge patch or strategic merge patch to `original`.
/// Apply patches go through [`server_side_apply`] instead (they need managed fields); asking
/// for one here is a `BadPatch`.
pub fn apply_patch(
    meta: &PatchMeta,
    patch_type: PatchType,
    original: &Value,
    patch: &[u8],
) -> Result<Value, PatchError> {
    match patch_type {
        PatchType::Json => apply_json_patch(original, patch),
        PatchType::Merge => {
            let patch: Value = parse_json(patch)?;
            let mut doc = original.clone();
            json_patch::merge(&mut doc, &patch);
            Ok(doc)
        }
        PatchType::StrategicMerge => {
            if !meta.supports_strategic_merge() {
                return Err(unsupported_for_custom_resources());
            }
            let patch: Value = parse_json(patch)?;
            strategic::apply(&meta.arena, meta.root, original, &patch)
        }
        PatchType::Apply => Err(PatchError::BadPatch(
            "apply patches are handled by server-side apply".into(),
        )),
    }
}

fn parse_json(bytes: &[u8]) -> Result<Value, PatchError> {
    serde_json::from_slice(bytes).map_err(|e| PatchError::BadPatch(e.to_string()))
}

fn apply_json_patch(original: &Value, patch: &[u8]) -> Result<Value, PatchError> {
    let ops: json_patch::Patch =
        serde_json::from_slice(patch).map_err(|e| PatchError::BadPatch(e.to_string()))?;
    let mut doc = original.clone();
    json_patch::patch(&mut doc, &ops).map_err(|e| {
        let op = ops.0.get(e.operation);
        let path = op.map(|o| o.path().to_string()).unwrap_or_default();
        // Messages follow evanphx/json-patch, which upstream returns verbatim.
        let message = match (&e.kind, op) {
            (json_patch::PatchErrorKind::TestFailed, _) => {
                format!("testing value {path} failed: test failed")
            }
            (_, Some(op)) => format!(
                "{} operation does not apply: doc is missing path: \"{path}\": missing value",
                op_name(op)
            ),
            _ => e.to_string(),
        };
        PatchError::Invalid(message)
    })?;
    Ok(doc)
}

fn op_name(op: &json_patch::PatchOperation) -> &'static str {
    use json_patch::PatchOperation as P;
    match op {
        P::Add(_) => "add",
        P::Remove(_) => "remove",
        P::Replace(_) => "replace",
        P::Move(_) => "move",
        P::Copy(_) => "copy",
        P::Test(_) => "test",
    }
}

#[cfg(test)]
mod tests;
