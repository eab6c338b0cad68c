//! API errors as `meta.k8s.io/v1 Status` objects with upstream's codes, reasons and messages.

use serde_json::{json, Value};

use crate::resources::{FieldError, ResourceInfo};
use crate::store::StoreError;

/// An error answered to the client as a `Status` object.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    fn with_details(mut self, info: &ResourceInfo, name: &str) -> Self {
        let mut details = json!({"kind": info.plural});
        if !name.is_empty() {
            details["name"] = json!(name);
        }
        if !info.group.is_empty() {
            details["group"] = json!(info.group);
        }
        self.details = Some(details);
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn not_found(info: &ResourceInfo, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{}\" not found", info.qualified_resource(), name),
        )
        .with_details(info, name)
    }

    pub fn path_not_found() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    pub fn already_exists(info: &ResourceInfo, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{}\" already exists", info.qualified_resource(), name),
        )
        .with_details(info, name)
    }

    pub fn conflict(info: &ResourceInfo, name: &str, detail: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{}\": {}",
                info.qualified_resource(),
                name,
                detail
            ),
        )
        .with_details(info, name)
    }

    pub fn stale(info: &ResourceInfo, name: &str) -> Self {
        Self::conflict(
            info,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    pub fn method_not_allowed(verb: &str) -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource ({verb})"),
        )
    }

    pub fn invalid(info: &ResourceInfo, name: &str, errors: &[FieldError]) -> Self {
        let kind = info.kind.clone();
        let group_kind = if info.group.is_empty() {
            kind.clone()
        } else {
            format!("{}.{}", kind, info.group)
        };
        let list: Vec<String> = errors.iter().map(|e| e.message.clone()).collect();
        let message = if list.len() == 1 {
            format!("{group_kind} \"{name}\" is invalid: {}", list[0])
        } else {
            format!("{group_kind} \"{name}\" is invalid: [{}]", list.join(", "))
        };
        let causes: Vec<Value> = errors
            .iter()
            .map(|e| {
                json!({
                    "reason": e.reason,
                    "message": e.message.strip_prefix(&format!("{}: ", e.field)).unwrap_or(&e.message),
                    "field": e.field,
                })
            })
            .collect();
        let mut details = json!({"name": name, "kind": kind, "causes": causes});
        if !info.group.is_empty() {
            details["group"] = json!(info.group);
        }
        ApiError {
            code: 422,
            reason: "Invalid",
            message,
            details: Some(details),
        }
    }

    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    pub fn unsupported_media_type(ct: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {ct:?})"),
        )
    }

    /// Maps a storage error for the object `name` of `info`.
    pub fn from_store(err: StoreError, info: &ResourceInfo, name: &str) -> Self {
        match err {
            StoreError::NotFound(_) => Self::not_found(info, name),
            StoreError::AlreadyExists(_) => Self::already_exists(info, name),
            StoreError::Conflict { .. } => Self::stale(info, name),
            StoreError::Expired { requested, oldest } => Self::gone(format!(
                "The resourceVersion for the provided list is too old: requested {requested}, oldest available {oldest}"
            )),
            StoreError::Unavailable(m) => Self::new(503, "ServiceUnavailable", m),
            StoreError::Internal(m) => Self::internal(m),
        }
    }

    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            status["details"] = d.clone();
        }
        status
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.reason, self.message)
    }
}

/// The `Status` answered for a successful delete of an object that is gone at once, where
/// upstream answers with a Status rather than the object.
pub fn success_status(info: &ResourceInfo, name: &str, uid: &str) -> Value {
    let mut details = json!({"name": name, "kind": info.plural, "uid": uid});
    if !info.group.is_empty() {
        details["group"] = json!(info.group);
    }
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    })
}
