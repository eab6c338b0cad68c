//! A container's environment as the kubelet builds it: the image's `ENV`, then the service
//! variables ([`super::service_env`]), then `envFrom` sources, then `env` in order (later names
//! win), values with `$(VAR)` expanded against what is defined before them (service variables
//! included), `valueFrom` read through the node's API client.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Container, EnvVar, ObjectFieldSelector, Pod, Secret};
use kube::Api;

use crate::resources::quantity::Quantity;

/// What a container's env can refer to besides the API: the pod's addresses and the node's
/// allocatable (limits a container does not set default to it, as upstream).
pub struct EnvContext<'a> {
    pub pod: &'a Pod,
    pub pod_ip: Option<String>,
    pub host_ip: String,
    pub node_allocatable: &'a BTreeMap<String, String>,
}

/// An ordered environment with last-write-wins names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Env(pub Vec<(String, String)>);

impl Env {
    pub fn set(&mut self, name: &str, value: String) {
        match self.0.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name.to_string(), value)),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Expands `$(NAME)` with `env`; `$$` escapes a `$`, unknown names stay as written.
pub fn expand(s: &str, env: &Env) -> String {
    let mut out = String::with_capacity(s.len());
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < s.len() {
        if bytes[i] == b'$' && i + 1 < s.len() {
            if bytes[i + 1] == b'$' {
                out.push('$');
                i += 2;
                continue;
            }
            if bytes[i + 1] == b'(' {
                if let Some(end) = s[i + 2..].find(')') {
                    let name = &s[i + 2..i + 2 + end];
                    match env.get(name) {
                        Some(v) => out.push_str(v),
                        None => out.push_str(&s[i..i + 3 + end]),
                    }
                    i += 3 + end;
                    continue;
                }
            }
        }
        let ch = s[i..].chars().next().unwrap_or_default();
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// Reads ConfigMaps and Secrets once per build.
struct Sources<'a> {
    client: &'a kube::Client,
    namespace: &'a str,
    config_maps: BTreeMap<String, Option<ConfigMap>>,
    secrets: BTreeMap<String, Option<Secret>>,
}

impl Sources<'_> {
    async fn config_map(&mut self, name: &str) -> Result<Option<&ConfigMap>, String> {
        if !self.config_maps.contains_key(name) {
            let cm = Api::<ConfigMap>::namespaced(self.client.clone(), self.namespace)
                .get_opt(name)
                .await
                .map_err(|e| format!("reading configmap {:?}: {e}", name))?;
            self.config_maps.insert(name.to_string(), cm);
        }
        Ok(self.config_maps[name].as_ref())
    }

    async fn secret(&mut self, name: &str) -> Result<Option<&Secret>, String> {
        if !self.secrets.contains_key(name) {
            let s = Api::<Secret>::namespaced(self.client.clone(), self.namespace)
                .get_opt(name)
                .await
                .map_err(|e| format!("reading secret {:?}: {e}", name))?;
            self.secrets.insert(name.to_string(), s);
        }
        Ok(self.secrets[name].as_ref())
    }
}

/// The value of a ConfigMap key, binary data included.
pub fn config_map_value(cm: &ConfigMap, key: &str) -> Option<Vec<u8>> {
    if let Some(v) = cm.data.as_ref().and_then(|d| d.get(key)) {
        return Some(v.clone().into_bytes());
    }
    cm.binary_data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| b.0.clone())
}

/// The value of a Secret key (`stringData` is folded into `data` by the API server).
pub fn secret_value(s: &Secret, key: &str) -> Option<Vec<u8>> {
    if let Some(v) = s.data.as_ref().and_then(|d| d.get(key)) {
        return Some(v.0.clone());
    }
    s.string_data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|v| v.clone().into_bytes())
}

/// `fieldRef` values: the downward API's fields.
pub fn field_value(
    f: &ObjectFieldSelector,
    pod: &Pod,
    pod_ip: Option<&str>,
    host_ip: &str,
) -> Result<String, String> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let path = f.field_path.as_str();
    let keyed = |prefix: &str, map: Option<&BTreeMap<String, String>>| {
        let key = path.strip_prefix(prefix)?.strip_suffix("']")?;
        Some(map.and_then(|m| m.get(key)).cloned().unwrap_or_default())
    };
    if let Some(v) = keyed("metadata.labels['", meta.labels.as_ref()) {
        return Ok(v);
    }
    if let Some(v) = keyed("metadata.annotations['", meta.annotations.as_ref()) {
        return Ok(v);
    }
    let joined = |m: Option<&BTreeMap<String, String>>| {
        m.into_iter()
            .flatten()
            .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
            .collect::<Vec<_>>()
            .join("\n")
    };
    Ok(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "metadata.labels" => joined(meta.labels.as_ref()),
        "metadata.annotations" => joined(meta.annotations.as_ref()),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.hostIP" | "status.hostIPs" => host_ip.to_string(),
        "status.podIP" | "status.podIPs" => pod_ip.unwrap_or_default().to_string(),
        other => return Err(format!("unsupported fieldPath: {other}")),
    })
}

/// `resourceFieldRef` values: the container's limit (the node's allocatable when unset) or
/// request, divided by `divisor` and rounded up, as upstream.
pub fn resource_value(
    container: &Container,
    resource: &str,
    divisor: Option<&str>,
    allocatable: &BTreeMap<String, String>,
) -> Result<String, String> {
    let (kind, name) = resource
        .split_once('.')
        .ok_or_else(|| format!("unsupported container resource: {resource}"))?;
    let res = container.resources.as_ref();
    let from_spec = match kind {
        "limits" => res
            .and_then(|r| r.limits.as_ref())
            .and_then(|m| m.get(name)),
        "requests" => res
            .and_then(|r| r.requests.as_ref())
            .and_then(|m| m.get(name)),
        _ => return Err(format!("unsupported container resource: {resource}")),
    };
    let raw = match (from_spec, kind) {
        (Some(q), _) => q.0.clone(),
        // An unset request reads as 0 for memory and storage, an unset limit as allocatable.
        (None, "limits") => allocatable.get(name).cloned().unwrap_or_else(|| "0".into()),
        (None, _) => "0".into(),
    };
    let q = Quantity::parse(&raw).map_err(|e| format!("{resource}: {e}"))?;
    let d = match divisor {
        Some(d) if !d.is_empty() && d != "0" => {
            Quantity::parse(d).map_err(|e| format!("divisor {d}: {e}"))?
        }
        _ => Quantity::parse("1").expect("1 is a quantity"),
    };
    let (n, dv) = (q.milli_value(), d.milli_value().max(1));
    Ok(((n + dv - 1) / dv).to_string())
}

/// Builds `container`'s environment over `image_env`.
pub async fn build(
    client: &kube::Client,
    cx: &EnvContext<'_>,
    container: &Container,
    image_env: &[(String, String)],
) -> Result<Env, String> {
    let pod = cx.pod;
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let mut src = Sources {
        client,
        namespace,
        config_maps: BTreeMap::new(),
        secrets: BTreeMap::new(),
    };
    let mut env = Env(image_env.to_vec());
    for (name, value) in super::service_env::for_pod(client, pod).await? {
        env.set(&name, value);
    }
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        if let Some(r) = &from.config_map_ref {
            match src.config_map(&r.name).await? {
                Some(cm) => {
                    let mut pairs: Vec<(String, String)> = cm
                        .data
                        .iter()
                        .flatten()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    pairs.sort();
                    for (k, v) in pairs {
                        env.set(&format!("{prefix}{k}"), v);
                    }
                }
                None if r.optional == Some(true) => {}
                None => return Err(format!("configmap {:?} not found", r.name)),
            }
        }
        if let Some(r) = &from.secret_ref {
            match src.secret(&r.name).await? {
                Some(s) => {
                    for (k, v) in s.data.iter().flatten() {
                        env.set(
                            &format!("{prefix}{k}"),
                            String::from_utf8_lossy(&v.0).into_owned(),
                        );
                    }
                }
                None if r.optional == Some(true) => {}
                None => return Err(format!("secret {:?} not found", r.name)),
            }
        }
    }
    for var in container.env.iter().flatten() {
        if let Some(v) = value_of(var, &mut src, cx, container).await? {
            let v = expand(&v, &env);
            env.set(&var.name, v);
        }
    }
    Ok(env)
}

/// One `env` entry's value; `None` for an optional source that is missing.
async fn value_of(
    var: &EnvVar,
    src: &mut Sources<'_>,
    cx: &EnvContext<'_>,
    container: &Container,
) -> Result<Option<String>, String> {
    let Some(from) = &var.value_from else {
        return Ok(Some(var.value.clone().unwrap_or_default()));
    };
    let ns = src.namespace.to_string();
    if let Some(r) = &from.config_map_key_ref {
        let optional = r.optional == Some(true);
        return match src.config_map(&r.name).await? {
            Some(cm) => match config_map_value(cm, &r.key) {
                Some(v) => Ok(Some(String::from_utf8_lossy(&v).into_owned())),
                None if optional => Ok(None),
                None => Err(format!(
                    "couldn't find key {} in ConfigMap {ns}/{}",
                    r.key, r.name
                )),
            },
            None if optional => Ok(None),
            None => Err(format!("configmap {:?} not found", r.name)),
        };
    }
    if let Some(r) = &from.secret_key_ref {
        let optional = r.optional == Some(true);
        return match src.secret(&r.name).await? {
            Some(s) => match secret_value(s, &r.key) {
                Some(v) => Ok(Some(String::from_utf8_lossy(&v).into_owned())),
                None if optional => Ok(None),
                None => Err(format!(
                    "couldn't find key {} in Secret {ns}/{}",
                    r.key, r.name
                )),
            },
            None if optional => Ok(None),
            None => Err(format!("secret {:?} not found", r.name)),
        };
    }
    if let Some(f) = &from.field_ref {
        return field_value(f, cx.pod, cx.pod_ip.as_deref(), &cx.host_ip).map(Some);
    }
    if let Some(r) = &from.resource_field_ref {
        let target = match r.container_name.as_deref().filter(|n| !n.is_empty()) {
            Some(name) => cx
                .pod
                .spec
                .as_ref()
                .and_then(|s| {
                    s.containers
                        .iter()
                        .chain(s.init_containers.iter().flatten())
                        .find(|c| c.name == name)
                })
                .ok_or_else(|| format!("container {name:?} not found in the pod"))?,
            None => container,
        };
        let divisor = r.divisor.as_ref().map(|d| d.0.as_str());
        return resource_value(target, &r.resource, divisor, cx.node_allocatable).map(Some);
    }
    Ok(Some(String::new()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expansion_follows_upstream_rules() {
        let env = Env(vec![("A".into(), "1".into()), ("B".into(), "two".into())]);
        assert_eq!(expand("$(A)-$(B)", &env), "1-two");
        assert_eq!(expand("$(C) $$(A) $", &env), "$(C) $(A) $");
        assert_eq!(expand("x$(A", &env), "x$(A");
        assert_eq!(expand("é$(A)", &env), "é1");
    }

    #[test]
    fn fields_and_resources_read_like_the_downward_api() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u", "labels": {"app": "web"}},
            "spec": {"nodeName": "node-0", "containers": [{"name": "c", "resources": {
                "limits": {"memory": "64Mi"}, "requests": {"cpu": "250m"}}}]}
        }))
        .unwrap();
        let f = |p: &str| {
            field_value(
                &ObjectFieldSelector {
                    field_path: p.into(),
                    api_version: None,
                },
                &pod,
                Some("127.244.0.5"),
                "127.0.0.1",
            )
        };
        assert_eq!(f("metadata.name").unwrap(), "p");
        assert_eq!(f("metadata.labels['app']").unwrap(), "web");
        assert_eq!(f("metadata.labels").unwrap(), "app=\"web\"");
        assert_eq!(f("status.podIP").unwrap(), "127.244.0.5");
        assert_eq!(f("spec.nodeName").unwrap(), "node-0");
        assert!(f("spec.bogus").is_err());
        let c = &pod.spec.as_ref().unwrap().containers[0];
        let alloc: BTreeMap<String, String> = [("cpu".to_string(), "4".to_string())].into();
        assert_eq!(
            resource_value(c, "limits.memory", Some("1Mi"), &alloc).unwrap(),
            "64"
        );
        assert_eq!(
            resource_value(c, "requests.cpu", Some("1m"), &alloc).unwrap(),
            "250"
        );
        assert_eq!(
            resource_value(c, "requests.cpu", None, &alloc).unwrap(),
            "1"
        );
        assert_eq!(resource_value(c, "limits.cpu", None, &alloc).unwrap(), "4");
    }
}
