//! Who is asking: the identity type shared by the API server and the security library, and the
//! paths open to unauthenticated callers.

pub use crate::security::UserInfo;

use crate::security::user::names;

/// Whether `user` is the identity of a request that carried no credentials.
pub fn is_anonymous(user: &UserInfo) -> bool {
    user.name == names::ANONYMOUS
}

/// Paths that upstream's default RBAC (system:public-info-viewer) opens to anonymous users.
pub fn public_path(path: &str) -> bool {
    matches!(path, "/healthz" | "/livez" | "/readyz" | "/version")
        || path.starts_with("/healthz/")
        || path.starts_with("/livez/")
        || path.starts_with("/readyz/")
}
