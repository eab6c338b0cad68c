//! Turns a request path and method into what it addresses, as upstream's RequestInfoFactory does:
//! group, version, namespace, resource, name, subresource and the Kubernetes verb.

use std::collections::HashMap;

/// Every verb a resource request's path and method map to, in upstream's order (its bootstrap
/// policy's `ReadWrite`, which the default roles grant as "read and write everything"). One
/// definition for the RBAC bootstrap policy and the fuzz target's property.
pub const READ_WRITE: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
];

/// What a resource request addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceRequest {
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub resource: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// get, list, watch, create, update, patch, delete, deletecollection
    pub verb: String,
}

/// What a request path addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// `/api`
    CoreVersions,
    /// `/apis`
    Groups,
    /// `/apis/<group>`
    Group(String),
    /// `/api/v1` or `/apis/<group>/<version>`
    ResourceList {
        group: String,
        version: String,
    },
    Resource(ResourceRequest),
    /// Anything else (`/version`, `/healthz`, `/openapi/v2`, `/metrics`, …).
    NonResource,
}

pub fn parse_query(query: Option<&str>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    if let Some(q) = query {
        for (k, v) in form_urlencoded_pairs(q) {
            out.insert(k, v);
        }
    }
    out
}

fn form_urlencoded_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Classifies `path` (without query) for `method`; `watch` is the `watch` query flag.
pub fn classify(method: &str, path: &str, watch_param: bool) -> Target {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match parts.as_slice() {
        ["api"] => return Target::CoreVersions,
        ["apis"] => return Target::Groups,
        ["apis", g] => return Target::Group((*g).to_string()),
        ["api", v] => {
            return Target::ResourceList {
                group: String::new(),
                version: (*v).to_string(),
            }
        }
        ["apis", g, v] => {
            return Target::ResourceList {
                group: (*g).to_string(),
                version: (*v).to_string(),
            }
        }
        ["api", v, rest @ ..] => (String::new(), (*v).to_string(), rest.to_vec()),
        ["apis", g, v, rest @ ..] => ((*g).to_string(), (*v).to_string(), rest.to_vec()),
        _ => return Target::NonResource,
    };
    let mut rest = rest;
    let mut legacy_watch = false;
    if rest.first() == Some(&"watch") {
        legacy_watch = true;
        rest.remove(0);
    }
    // `namespaces/<ns>/<resource>…` addresses a namespaced resource, except the namespace object
    // itself and its subresources (`namespaces/<name>/status`, `/finalize`).
    let namespace_subresource = matches!(rest.get(2), Some(&"status" | &"finalize"));
    let (namespace, rest) = if rest.len() >= 3 && rest[0] == "namespaces" && !namespace_subresource
    {
        (Some(rest[1].to_string()), rest[2..].to_vec())
    } else {
        (None, rest)
    };
    if rest.is_empty() || rest[0].is_empty() {
        return Target::NonResource;
    }
    let resource = rest[0].to_string();
    let name = rest.get(1).map(|s| s.to_string());
    // Proxy paths keep everything after the subresource; the subresource is the third segment.
    let subresource = rest.get(2).map(|s| s.to_string());
    let verb = match method {
        "GET" | "HEAD" => {
            if legacy_watch || (watch_param && subresource.is_none()) {
                "watch"
            } else if name.is_none() {
                "list"
            } else {
                "get"
            }
        }
        "POST" => "create",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" => {
            if name.is_none() {
                "deletecollection"
            } else {
                "delete"
            }
        }
        _ => return Target::NonResource,
    };
    Target::Resource(ResourceRequest {
        group,
        version,
        namespace,
        resource,
        name,
        subresource,
        verb: verb.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(t: Target) -> ResourceRequest {
        match t {
            Target::Resource(r) => r,
            other => panic!("expected a resource request, got {other:?}"),
        }
    }

    #[test]
    fn classifies_core_and_group_paths() {
        let r = res(classify("GET", "/api/v1/namespaces/default/pods", false));
        assert_eq!(r.namespace.as_deref(), Some("default"));
        assert_eq!(r.resource, "pods");
        assert_eq!(r.verb, "list");
        let r = res(classify("GET", "/api/v1/namespaces/default/pods", true));
        assert_eq!(r.verb, "watch");
        let r = res(classify("GET", "/api/v1/namespaces/kube-system", false));
        assert_eq!(r.resource, "namespaces");
        assert_eq!(r.name.as_deref(), Some("kube-system"));
        assert_eq!(r.namespace, None);
        let r = res(classify("PUT", "/api/v1/namespaces/x/finalize", false));
        assert_eq!(r.subresource.as_deref(), Some("finalize"));
        let r = res(classify(
            "PATCH",
            "/apis/apps/v1/namespaces/a/deployments/web/scale",
            false,
        ));
        assert_eq!(
            (r.group.as_str(), r.verb.as_str(), r.subresource.as_deref()),
            ("apps", "patch", Some("scale"))
        );
        let r = res(classify("GET", "/api/v1/watch/namespaces/a/pods/p", false));
        assert_eq!((r.verb.as_str(), r.name.as_deref()), ("watch", Some("p")));
        let r = res(classify("DELETE", "/api/v1/namespaces/a/configmaps", false));
        assert_eq!(r.verb, "deletecollection");
        assert_eq!(classify("GET", "/apis", false), Target::Groups);
        assert_eq!(classify("GET", "/version", false), Target::NonResource);
    }

    #[test]
    fn decodes_queries() {
        let q = parse_query(Some("labelSelector=app%3Dweb%2Ctier+in+(a)&limit=5"));
        assert_eq!(q["labelSelector"], "app=web,tier in (a)");
        assert_eq!(q["limit"], "5");
    }
}
