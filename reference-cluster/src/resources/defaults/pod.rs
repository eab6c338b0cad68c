//! Defaults of pods and pod templates (`pkg/apis/core/v1/defaults.go`).

use serde_json::{json, Value};

use crate::resources::json::{
    array_at, ensure_object, for_each_in, set_default, set_default_str, str_at,
};
use crate::resources::quantity::canonicalize_map;

/// `SetDefaults_PodSpec` and what the generated defaulters apply to everything inside a pod
/// spec. `is_pod` adds what upstream only defaults on Pod objects, never on templates
/// (`enableServiceLinks`, requests from limits, host ports for host-network pods).
///
/// `priority` and `preemptionPolicy` are not defaults upstream: the Priority admission plugin
/// sets them from the pod's (or the global default) PriorityClass, and rejects pods that
/// carry values of their own, so they are deliberately left alone here.
pub fn default_pod_spec(spec: &mut Value, is_pod: bool) {
    if !spec.is_object() {
        return;
    }
    set_default_str(spec, "dnsPolicy", "ClusterFirst");
    set_default_str(spec, "restartPolicy", "Always");
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "securityContext", json!({}));
    set_default_str(spec, "schedulerName", "default-scheduler");

    // v1 keeps the deprecated `serviceAccount` in step with `serviceAccountName`.
    let sa_name = str_at(spec, "serviceAccountName")
        .unwrap_or_default()
        .to_string();
    let sa_old = str_at(spec, "serviceAccount")
        .unwrap_or_default()
        .to_string();
    if sa_name.is_empty() && !sa_old.is_empty() {
        spec["serviceAccountName"] = json!(sa_old);
    } else if !sa_name.is_empty() {
        spec["serviceAccount"] = json!(sa_name);
    }

    let host_network = spec.get("hostNetwork").and_then(Value::as_bool) == Some(true);
    for key in ["containers", "initContainers", "ephemeralContainers"] {
        for_each_in(spec, key, |c| {
            default_container(c);
            if is_pod {
                requests_from_limits(c);
                if host_network && key != "ephemeralContainers" {
                    for_each_in(c, "ports", |p| {
                        if p.get("hostPort").and_then(Value::as_i64).unwrap_or(0) == 0 {
                            if let Some(cp) = p.get("containerPort").cloned() {
                                p["hostPort"] = cp;
                            }
                        }
                    });
                }
            }
        });
    }
    for_each_in(spec, "volumes", default_volume);
    if let Some(overhead) = spec.get_mut("overhead") {
        canonicalize_map(overhead);
    }

    if is_pod {
        set_default(spec, "enableServiceLinks", json!(true));
    }
}

/// `metadata: {creationTimestamp: null}`: what Go serialises for a template's zero ObjectMeta,
/// so clients see the same bytes they would from upstream.
pub fn template_metadata(template: &mut Value) {
    if let Some(meta) = ensure_object(template, "metadata") {
        if let Some(m) = meta.as_object_mut() {
            m.entry("creationTimestamp").or_insert(Value::Null);
        }
    }
}

/// Defaults of a `PodTemplateSpec` embedded in a workload.
pub fn default_pod_template(template: &mut Value) {
    if !template.is_object() {
        return;
    }
    template_metadata(template);
    if let Some(spec) = ensure_object(template, "spec") {
        default_pod_spec(spec, false);
    }
}

/// `SetDefaults_Container` plus probe, port, env and resource defaults.
pub fn default_container(c: &mut Value) {
    if !c.is_object() {
        return;
    }
    if str_at(c, "imagePullPolicy").unwrap_or_default().is_empty() {
        let image = str_at(c, "image").unwrap_or_default();
        let policy = if image_tag(image).as_deref() == Some("latest") {
            "Always"
        } else {
            "IfNotPresent"
        };
        c["imagePullPolicy"] = json!(policy);
    }
    set_default_str(c, "terminationMessagePath", "/dev/termination-log");
    set_default_str(c, "terminationMessagePolicy", "File");
    for_each_in(c, "ports", |p| {
        if p.is_object() {
            set_default_str(p, "protocol", "TCP");
        }
    });
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get_mut(probe).filter(|p| p.is_object()) {
            set_default(p, "timeoutSeconds", json!(1));
            set_default(p, "periodSeconds", json!(10));
            set_default(p, "successThreshold", json!(1));
            set_default(p, "failureThreshold", json!(3));
            default_handler(p);
        }
    }
    if let Some(lc) = c.get_mut("lifecycle").filter(|l| l.is_object()) {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = lc.get_mut(hook).filter(|h| h.is_object()) {
                default_handler(h);
            }
        }
    }
    for_each_in(c, "env", |env| {
        if let Some(fr) = env
            .get_mut("valueFrom")
            .and_then(|v| v.get_mut("fieldRef"))
            .filter(|f| f.is_object())
        {
            set_default_str(fr, "apiVersion", "v1");
        }
    });
    if let Some(res) = c.get_mut("resources").filter(|r| r.is_object()) {
        for key in ["limits", "requests"] {
            if let Some(m) = res.get_mut(key) {
                canonicalize_map(m);
            }
        }
    }
}

fn default_handler(h: &mut Value) {
    if let Some(get) = h.get_mut("httpGet").filter(|g| g.is_object()) {
        set_default_str(get, "path", "/");
        set_default_str(get, "scheme", "HTTP");
    }
}

/// Pods only: a resource with a limit but no request gets the limit as its request.
fn requests_from_limits(c: &mut Value) {
    let Some(limits) = c
        .get("resources")
        .and_then(|r| r.get("limits"))
        .and_then(Value::as_object)
        .cloned()
    else {
        return;
    };
    if limits.is_empty() {
        return;
    }
    let Some(res) = ensure_object(c, "resources") else {
        return;
    };
    let Some(requests) = ensure_object(res, "requests").and_then(Value::as_object_mut) else {
        return;
    };
    for (k, v) in limits {
        requests.entry(k).or_insert(v);
    }
}

/// The tag of an image reference as the docker reference parser sees it: `latest` when there
/// is neither tag nor digest, `None` when only a digest pins it.
pub fn image_tag(image: &str) -> Option<String> {
    if image.contains('@') {
        let (name, _) = image.split_once('@').unwrap_or((image, ""));
        return tag_of(name);
    }
    Some(tag_of(image).unwrap_or_else(|| "latest".to_string()))
}

fn tag_of(name: &str) -> Option<String> {
    // A colon after the last slash is a tag; one before it belongs to a registry host:port.
    let last = name.rsplit('/').next().unwrap_or(name);
    last.split_once(':').map(|(_, t)| t.to_string())
}

/// The `VolumeSource` members, one of which every volume sets (defaulting and validation share it).
pub(crate) const VOLUME_SOURCES: &[&str] = &[
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
];

/// `SetDefaults_Volume` and the defaults of each volume source.
pub fn default_volume(v: &mut Value) {
    if !v.is_object() {
        return;
    }
    let has_source = VOLUME_SOURCES
        .iter()
        .any(|s| v.get(*s).is_some_and(|x| !x.is_null()));
    if !has_source {
        v["emptyDir"] = json!({});
    }
    for key in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(src) = v.get_mut(key).filter(|s| s.is_object()) {
            set_default(src, "defaultMode", json!(420));
            if key == "downwardAPI" {
                default_downward_items(src);
            }
            if key == "projected" {
                for_each_in(src, "sources", |s| {
                    if let Some(t) = s.get_mut("serviceAccountToken").filter(|t| t.is_object()) {
                        set_default(t, "expirationSeconds", json!(3600));
                    }
                    if let Some(d) = s.get_mut("downwardAPI").filter(|d| d.is_object()) {
                        default_downward_items(d);
                    }
                });
            }
        }
    }
    if let Some(hp) = v.get_mut("hostPath").filter(|h| h.is_object()) {
        set_default(hp, "type", json!(""));
    }
    if let Some(iscsi) = v.get_mut("iscsi").filter(|h| h.is_object()) {
        set_default_str(iscsi, "iscsiInterface", "default");
    }
    if let Some(spec) = v
        .get_mut("ephemeral")
        .and_then(|e| e.get_mut("volumeClaimTemplate"))
        .and_then(|t| t.get_mut("spec"))
        .filter(|s| s.is_object())
    {
        set_default_str(spec, "volumeMode", "Filesystem");
    }
}

fn default_downward_items(src: &mut Value) {
    for_each_in(src, "items", |item| {
        if let Some(fr) = item.get_mut("fieldRef").filter(|f| f.is_object()) {
            set_default_str(fr, "apiVersion", "v1");
        }
    });
}

/// `qos.GetPodQOS`: Guaranteed when every container limits CPU and memory with requests equal
/// to limits, BestEffort when nothing is requested or limited, Burstable otherwise.
pub fn qos_class(spec: &Value) -> &'static str {
    use crate::resources::quantity::Quantity;
    use std::collections::BTreeMap;
    let supported = |name: &str| name == "cpu" || name == "memory";
    let mut requests: BTreeMap<String, i128> = BTreeMap::new();
    let mut limits: BTreeMap<String, i128> = BTreeMap::new();
    let mut guaranteed = true;
    let containers = array_at(spec, "containers")
        .iter()
        .chain(array_at(spec, "initContainers").iter());
    for c in containers {
        let res = c.get("resources");
        let map = |k: &str| {
            res.and_then(|r| r.get(k))
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        };
        for (name, q) in map("requests") {
            if !supported(&name) {
                continue;
            }
            if let Some(q) = Quantity::from_json(&q).filter(|q| q.nanos > 0) {
                *requests.entry(name).or_insert(0) += q.nanos;
            }
        }
        let mut found = Vec::new();
        for (name, q) in map("limits") {
            if !supported(&name) {
                continue;
            }
            if let Some(q) = Quantity::from_json(&q).filter(|q| q.nanos > 0) {
                found.push(name.clone());
                *limits.entry(name).or_insert(0) += q.nanos;
            }
        }
        if !(found.iter().any(|n| n == "cpu") && found.iter().any(|n| n == "memory")) {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed
        && requests
            .iter()
            .all(|(name, req)| limits.get(name) == Some(req))
        && requests.len() == limits.len()
    {
        return "Guaranteed";
    }
    "Burstable"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_pull_policy_follows_tag() {
        assert_eq!(image_tag("nginx").as_deref(), Some("latest"));
        assert_eq!(image_tag("nginx:latest").as_deref(), Some("latest"));
        assert_eq!(image_tag("nginx:1.25").as_deref(), Some("1.25"));
        assert_eq!(
            image_tag("registry:5000/team/app").as_deref(),
            Some("latest")
        );
        assert_eq!(
            image_tag("registry:5000/team/app:v2").as_deref(),
            Some("v2")
        );
        assert_eq!(image_tag("nginx@sha256:abc"), None);
        let mut c = json!({"name": "a", "image": "nginx@sha256:abc"});
        default_container(&mut c);
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
        let mut c = json!({"name": "a", "image": "nginx"});
        default_container(&mut c);
        assert_eq!(c["imagePullPolicy"], "Always");
    }

    #[test]
    fn qos_classes() {
        let best = json!({"containers": [{"name": "a"}]});
        assert_eq!(qos_class(&best), "BestEffort");
        let guaranteed = json!({"containers": [{"name": "a", "resources": {
            "limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1000m", "memory": "1Gi"}}}]});
        assert_eq!(qos_class(&guaranteed), "Guaranteed");
        let burst =
            json!({"containers": [{"name": "a", "resources": {"requests": {"cpu": "100m"}}}]});
        assert_eq!(qos_class(&burst), "Burstable");
        let partial = json!({"containers": [{"name": "a", "resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "1"}}}]});
        assert_eq!(qos_class(&partial), "Burstable");
    }

    #[test]
    fn volumes_default_to_empty_dir_and_modes() {
        let mut v = json!({"name": "scratch"});
        default_volume(&mut v);
        assert_eq!(v["emptyDir"], json!({}));
        let mut v = json!({"name": "cfg", "configMap": {"name": "c"}});
        default_volume(&mut v);
        assert_eq!(v["configMap"]["defaultMode"], 420);
        assert!(v.get("emptyDir").is_none());
        let mut v = json!({"name": "tok", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}});
        default_volume(&mut v);
        assert_eq!(
            v["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"],
            3600
        );
    }

    #[test]
    fn pod_only_defaults_stay_out_of_templates() {
        let mut spec = json!({"containers": [{"name": "a", "image": "x:1",
            "resources": {"limits": {"cpu": "0.5"}}}]});
        default_pod_spec(&mut spec, false);
        assert!(spec.get("enableServiceLinks").is_none());
        assert!(spec.get("priority").is_none());
        assert!(spec["containers"][0]["resources"].get("requests").is_none());
        assert_eq!(spec["containers"][0]["resources"]["limits"]["cpu"], "500m");
        let mut pod_spec = spec.clone();
        default_pod_spec(&mut pod_spec, true);
        assert_eq!(pod_spec["enableServiceLinks"], true);
        assert_eq!(
            pod_spec["containers"][0]["resources"]["requests"]["cpu"],
            "500m"
        );
    }
}
