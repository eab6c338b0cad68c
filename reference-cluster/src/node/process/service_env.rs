//! Service environment variables, as the kubelet gives every container: for each Service of
//! the pod's namespace that has a cluster IP when the container starts (unless the pod sets
//! `enableServiceLinks: false`), and always for the `kubernetes` Service of `default`, the
//! `<NAME>_SERVICE_HOST` / `_SERVICE_PORT` pair and the Docker-link style `<NAME>_PORT…`
//! variables. Variables the container declares itself win over them.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::ListParams;
use kube::Api;

/// The namespace of the API server's own Service (`--master-service-namespace`).
const MASTER_NAMESPACE: &str = "default";
/// Services of that namespace every pod gets variables for.
const MASTER_SERVICES: &[&str] = &["kubernetes"];

/// `my-svc` → `MY_SVC`.
fn var_name(s: &str) -> String {
    s.to_uppercase().replace('-', "_")
}

/// Whether the Service has a cluster IP (not headless, not ExternalName).
fn has_cluster_ip(s: &Service) -> bool {
    s.spec
        .as_ref()
        .and_then(|s| s.cluster_ip.as_deref())
        .is_some_and(|ip| !ip.is_empty() && ip != "None")
}

/// The variables of one Service, in upstream's order.
pub fn variables_of(svc: &Service) -> Vec<(String, String)> {
    let Some(spec) = svc.spec.as_ref() else {
        return Vec::new();
    };
    let ip = spec.cluster_ip.clone().unwrap_or_default();
    let prefix = var_name(svc.metadata.name.as_deref().unwrap_or(""));
    let ports = spec.ports.as_deref().unwrap_or_default();
    let mut out = vec![(format!("{prefix}_SERVICE_HOST"), ip.clone())];
    let service_port = format!("{prefix}_SERVICE_PORT");
    if let Some(first) = ports.first() {
        out.push((service_port.clone(), first.port.to_string()));
    }
    for p in ports {
        if let Some(n) = p.name.as_deref().filter(|n| !n.is_empty()) {
            out.push((
                format!("{service_port}_{}", var_name(n)),
                p.port.to_string(),
            ));
        }
    }
    // An IPv6 cluster IP is bracketed in URLs, as Go's JoinHostPort does.
    let host_port = |port: i32| {
        if ip.contains(':') {
            format!("[{ip}]:{port}")
        } else {
            format!("{ip}:{port}")
        }
    };
    for (i, p) in ports.iter().enumerate() {
        let proto = p.protocol.clone().unwrap_or_else(|| "TCP".into());
        let lower = proto.to_lowercase();
        let url = format!("{lower}://{}", host_port(p.port));
        if i == 0 {
            out.push((format!("{prefix}_PORT"), url.clone()));
        }
        let pp = format!("{prefix}_PORT_{}_{}", p.port, proto.to_uppercase());
        out.push((pp.clone(), url));
        out.push((format!("{pp}_PROTO"), lower));
        out.push((format!("{pp}_PORT"), p.port.to_string()));
        out.push((format!("{pp}_ADDR"), ip.clone()));
    }
    out
}

/// The variables for `services` as a pod in `namespace` sees them: the pod's namespace's own
/// Services when `links` is on, and the master Services always (a same-named Service of the
/// pod's namespace takes their place when links are on).
pub fn variables(services: &[Service], namespace: &str, links: bool) -> Vec<(String, String)> {
    let mut chosen: BTreeMap<String, &Service> = BTreeMap::new();
    for s in services.iter().filter(|s| has_cluster_ip(s)) {
        let name = s.metadata.name.clone().unwrap_or_default();
        let ns = s.metadata.namespace.as_deref().unwrap_or("");
        if ns == MASTER_NAMESPACE && MASTER_SERVICES.contains(&name.as_str()) {
            // A same-named Service of the pod's namespace, seen before or after, wins.
            chosen.entry(name).or_insert(s);
        } else if ns == namespace && links {
            chosen.insert(name, s);
        }
    }
    chosen.values().flat_map(|s| variables_of(s)).collect()
}

/// Reads the Services a container's variables come from and returns the variables.
pub async fn for_pod(client: &kube::Client, pod: &Pod) -> Result<Vec<(String, String)>, String> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let links = pod
        .spec
        .as_ref()
        .and_then(|s| s.enable_service_links)
        .unwrap_or(true);
    let mut services = Vec::new();
    if links {
        let list = Api::<Service>::namespaced(client.clone(), namespace)
            .list(&ListParams::default())
            .await
            .map_err(|e| {
                format!("cannot read the services of namespace {namespace:?} for the container's service environment variables: {e}")
            })?;
        services.extend(list.items);
    }
    if !(links && namespace == MASTER_NAMESPACE) {
        let api = Api::<Service>::namespaced(client.clone(), MASTER_NAMESPACE);
        for name in MASTER_SERVICES {
            let svc = api.get_opt(name).await.map_err(|e| {
                format!("cannot read service {MASTER_NAMESPACE}/{name} for the container's service environment variables: {e}")
            })?;
            services.extend(svc);
        }
    }
    // The items of a namespaced list may omit their namespace; they are the pod's.
    for s in &mut services {
        if s.metadata.namespace.is_none() {
            s.metadata.namespace = Some(namespace.to_string());
        }
    }
    Ok(variables(&services, namespace, links))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(ns: &str, name: &str, spec: serde_json::Value) -> Service {
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": ns}, "spec": spec}))
            .unwrap()
    }

    fn map(v: Vec<(String, String)>) -> BTreeMap<String, String> {
        v.into_iter().collect()
    }

    #[test]
    fn one_service_gets_upstream_names() {
        let s = svc(
            "app",
            "my-svc",
            json!({"clusterIP": "10.0.0.11", "ports": [
                {"name": "http", "port": 80, "protocol": "TCP"},
                {"name": "dns-udp", "port": 53, "protocol": "UDP"}
            ]}),
        );
        let got = variables_of(&s);
        let expected: Vec<(&str, &str)> = vec![
            ("MY_SVC_SERVICE_HOST", "10.0.0.11"),
            ("MY_SVC_SERVICE_PORT", "80"),
            ("MY_SVC_SERVICE_PORT_HTTP", "80"),
            ("MY_SVC_SERVICE_PORT_DNS_UDP", "53"),
            ("MY_SVC_PORT", "tcp://10.0.0.11:80"),
            ("MY_SVC_PORT_80_TCP", "tcp://10.0.0.11:80"),
            ("MY_SVC_PORT_80_TCP_PROTO", "tcp"),
            ("MY_SVC_PORT_80_TCP_PORT", "80"),
            ("MY_SVC_PORT_80_TCP_ADDR", "10.0.0.11"),
            ("MY_SVC_PORT_53_UDP", "udp://10.0.0.11:53"),
            ("MY_SVC_PORT_53_UDP_PROTO", "udp"),
            ("MY_SVC_PORT_53_UDP_PORT", "53"),
            ("MY_SVC_PORT_53_UDP_ADDR", "10.0.0.11"),
        ];
        let expected: Vec<(String, String)> = expected
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(got, expected);
        // An unnamed single port defaults to TCP and adds no named variable.
        let plain = svc(
            "app",
            "db",
            json!({"clusterIP": "fd00::5", "ports": [{"port": 5432}]}),
        );
        let m = map(variables_of(&plain));
        assert_eq!(m["DB_PORT"], "tcp://[fd00::5]:5432");
        assert_eq!(m["DB_PORT_5432_TCP_ADDR"], "fd00::5");
        assert_eq!(m.len(), 7);
    }

    #[test]
    fn links_namespaces_and_headless_services() {
        let all = vec![
            svc(
                "default",
                "kubernetes",
                json!({"clusterIP": "10.0.0.1", "ports": [{"name": "https", "port": 443}]}),
            ),
            svc(
                "default",
                "other",
                json!({"clusterIP": "10.0.0.2", "ports": [{"port": 1}]}),
            ),
            svc(
                "app",
                "web",
                json!({"clusterIP": "10.0.0.3", "ports": [{"port": 8080}]}),
            ),
            svc(
                "app",
                "headless",
                json!({"clusterIP": "None", "ports": [{"port": 80}]}),
            ),
            svc(
                "app",
                "ext",
                json!({"type": "ExternalName", "externalName": "example.com"}),
            ),
        ];
        let m = map(variables(&all, "app", true));
        assert_eq!(m["KUBERNETES_SERVICE_HOST"], "10.0.0.1");
        assert_eq!(m["KUBERNETES_SERVICE_PORT"], "443");
        assert_eq!(m["KUBERNETES_SERVICE_PORT_HTTPS"], "443");
        assert_eq!(m["KUBERNETES_PORT"], "tcp://10.0.0.1:443");
        assert_eq!(m["WEB_SERVICE_HOST"], "10.0.0.3");
        assert!(
            !m.contains_key("OTHER_SERVICE_HOST"),
            "other namespaces' services are not linked"
        );
        assert!(!m
            .keys()
            .any(|k| k.starts_with("HEADLESS_") || k.starts_with("EXT_")));
        let off = map(variables(&all, "app", false));
        assert!(off.contains_key("KUBERNETES_SERVICE_HOST"));
        assert!(!off.contains_key("WEB_SERVICE_HOST"));
        // In `default`, with links on, every service there is linked.
        let def = map(variables(&all, "default", true));
        assert!(def.contains_key("OTHER_SERVICE_HOST"));
        // A `kubernetes` service of the pod's namespace takes the master one's place.
        let mut shadowed = all.clone();
        shadowed.push(svc(
            "app",
            "kubernetes",
            json!({"clusterIP": "10.0.0.9", "ports": [{"port": 9}]}),
        ));
        let m = map(variables(&shadowed, "app", true));
        assert_eq!(m["KUBERNETES_SERVICE_HOST"], "10.0.0.9");
        let m = map(variables(&shadowed, "app", false));
        assert_eq!(m["KUBERNETES_SERVICE_HOST"], "10.0.0.1");
    }
}
