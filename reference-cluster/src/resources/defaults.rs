//! Upstream's defaulting functions (`SetDefaults_*` of each API group's external version and
//! the v1 conversions that keep paired fields in step), applied to objects as JSON.
//!
//! Defaults run on every write, so each one only fills what is absent and is idempotent.

pub mod pod;

use base64::Engine;
use serde_json::{json, Value};

use super::json::{
    array_at, ensure_object, ensure_path, for_each_in, is_empty, set_default, set_default_str,
    str_at,
};
use super::quantity::canonicalize_map;
use pod::{default_pod_spec, default_pod_template, template_metadata};

/// Applies the defaults of `group`/`version`/`kind` to `obj`.
pub fn apply(group: &str, version: &str, kind: &str, obj: &mut Value) {
    if !obj.is_object() {
        return;
    }
    match (group, kind) {
        ("", "Pod") => default_pod(obj),
        ("", "PodTemplate") => {
            if let Some(t) = obj.get_mut("template").filter(|t| t.is_object()) {
                default_pod_template(t);
            }
        }
        ("", "ReplicationController") => default_replication_controller(obj),
        ("apps", "Deployment") => default_deployment(obj),
        ("apps", "ReplicaSet") => {
            if let Some(spec) = ensure_object(obj, "spec") {
                set_default(spec, "replicas", json!(1));
                template_of(spec);
            }
        }
        ("apps", "StatefulSet") => default_stateful_set(obj),
        ("apps", "DaemonSet") => default_daemon_set(obj),
        ("batch", "Job") => default_job(obj),
        ("batch", "CronJob") => default_cron_job(obj),
        ("autoscaling", "HorizontalPodAutoscaler") => default_hpa(version, obj),
        ("", "Service") => default_service(obj),
        ("", "Namespace") => default_namespace(obj),
        ("", "Secret") => default_secret(obj),
        ("", "PersistentVolumeClaim") => default_pvc(obj),
        ("", "PersistentVolume") => default_pv(obj),
        ("", "Node") => default_node(obj),
        ("", "Endpoints") => {
            for_each_in(obj, "subsets", |ss| {
                for_each_in(ss, "ports", |p| set_default_str(p, "protocol", "TCP"))
            });
        }
        ("", "ResourceQuota") => {
            for path in ["spec.hard", "status.hard", "status.used"] {
                if let Some(m) = super::json::at_mut(obj, path) {
                    canonicalize_map(m);
                }
            }
        }
        ("", "LimitRange") => {
            if let Some(spec) = super::json::at_mut(obj, "spec") {
                for_each_in(spec, "limits", |l| {
                    for key in [
                        "max",
                        "min",
                        "default",
                        "defaultRequest",
                        "maxLimitRequestRatio",
                    ] {
                        if let Some(m) = l.get_mut(key) {
                            canonicalize_map(m);
                        }
                    }
                });
            }
        }
        ("discovery.k8s.io", "EndpointSlice") => {
            for_each_in(obj, "ports", |p| {
                set_default_str(p, "protocol", "TCP");
                set_default(p, "name", json!(""));
            });
        }
        ("storage.k8s.io", "StorageClass") => {
            set_default_str(obj, "reclaimPolicy", "Delete");
            set_default_str(obj, "volumeBindingMode", "Immediate");
        }
        ("storage.k8s.io", "CSIDriver") => {
            if let Some(spec) = ensure_object(obj, "spec") {
                set_default(spec, "attachRequired", json!(true));
                set_default(spec, "podInfoOnMount", json!(false));
                set_default(spec, "storageCapacity", json!(false));
                set_default_str(spec, "fsGroupPolicy", "ReadWriteOnceWithFSType");
                set_default(spec, "requiresRepublish", json!(false));
                set_default(spec, "seLinuxMount", json!(false));
                set_default(spec, "volumeLifecycleModes", json!(["Persistent"]));
            }
        }
        ("scheduling.k8s.io", "PriorityClass") => {
            set_default_str(obj, "preemptionPolicy", "PreemptLowerPriority");
        }
        ("networking.k8s.io", "NetworkPolicy") => default_network_policy(obj),
        ("networking.k8s.io", "IngressClass") => {
            if let Some(p) = super::json::at_mut(obj, "spec.parameters").filter(|p| p.is_object()) {
                set_default_str(p, "scope", "Cluster");
            }
        }
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            if let Some(r) = ensure_object(obj, "roleRef") {
                set_default_str(r, "apiGroup", "rbac.authorization.k8s.io");
            }
            default_subjects(obj);
        }
        (
            "admissionregistration.k8s.io",
            k @ ("MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration"),
        ) => {
            let mutating = k.starts_with("Mutating");
            for_each_in(obj, "webhooks", |w| default_webhook(w, mutating));
        }
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy") => {
            if let Some(spec) = ensure_object(obj, "spec") {
                set_default_str(spec, "failurePolicy", "Fail");
                if let Some(mc) = spec.get_mut("matchConstraints").filter(|m| m.is_object()) {
                    default_match_resources(mc);
                }
            }
        }
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding") => {
            if let Some(mr) =
                super::json::at_mut(obj, "spec.matchResources").filter(|m| m.is_object())
            {
                default_match_resources(mr);
            }
        }
        ("flowcontrol.apiserver.k8s.io", "FlowSchema") => {
            if let Some(spec) = ensure_object(obj, "spec") {
                set_default(spec, "matchingPrecedence", json!(1000));
            }
        }
        ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration") => {
            if let Some(l) = super::json::at_mut(obj, "spec.limited").filter(|l| l.is_object()) {
                set_default(l, "nominalConcurrencyShares", json!(30));
                set_default(l, "lendablePercent", json!(0));
                if let Some(q) =
                    super::json::at_mut(l, "limitResponse.queuing").filter(|q| q.is_object())
                {
                    set_default(q, "queues", json!(64));
                    set_default(q, "handSize", json!(8));
                    set_default(q, "queueLengthLimit", json!(50));
                }
            }
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => default_crd(obj),
        _ => {}
    }
}

fn template_of(spec: &mut Value) {
    if let Some(t) = spec.get_mut("template").filter(|t| t.is_object()) {
        default_pod_template(t);
    }
}

fn default_pod(pod: &mut Value) {
    if let Some(spec) = ensure_object(pod, "spec") {
        default_pod_spec(spec, true);
    }
    // v1 conversion keeps `podIP`/`podIPs` and `hostIP`/`hostIPs` consistent.
    if let Some(status) = pod.get_mut("status").filter(|s| s.is_object()) {
        for (single, plural) in [("podIP", "podIPs"), ("hostIP", "hostIPs")] {
            let first = array_at(status, plural)
                .first()
                .and_then(|ip| ip.get("ip"))
                .and_then(Value::as_str)
                .map(String::from);
            match first {
                Some(ip) => status[single] = json!(ip),
                None => {
                    if let Some(ip) = str_at(status, single).filter(|s| !s.is_empty()) {
                        status[plural] = json!([{ "ip": ip }]);
                    }
                }
            }
        }
    }
}

fn default_replication_controller(rc: &mut Value) {
    // An RC without selector or labels takes them from its template.
    let template_labels = super::json::at(rc, "spec.template.metadata.labels")
        .filter(|l| !is_empty(l))
        .cloned();
    if let Some(labels) = template_labels {
        if let Some(spec) = ensure_object(rc, "spec") {
            if spec.get("selector").is_none_or(is_empty) {
                spec["selector"] = labels.clone();
            }
        }
        if let Some(meta) = ensure_object(rc, "metadata") {
            if meta.get("labels").is_none_or(is_empty) {
                meta["labels"] = labels;
            }
        }
    }
    if let Some(spec) = ensure_object(rc, "spec") {
        set_default(spec, "replicas", json!(1));
        template_of(spec);
    }
}

fn default_deployment(d: &mut Value) {
    let Some(spec) = ensure_object(d, "spec") else {
        return;
    };
    set_default(spec, "replicas", json!(1));
    if let Some(strategy) = ensure_object(spec, "strategy") {
        set_default_str(strategy, "type", "RollingUpdate");
        if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
            if let Some(ru) = ensure_object(strategy, "rollingUpdate") {
                set_default(ru, "maxUnavailable", json!("25%"));
                set_default(ru, "maxSurge", json!("25%"));
            }
        }
    }
    set_default(spec, "revisionHistoryLimit", json!(10));
    set_default(spec, "progressDeadlineSeconds", json!(600));
    template_of(spec);
}

fn default_stateful_set(sts: &mut Value) {
    let Some(spec) = ensure_object(sts, "spec") else {
        return;
    };
    set_default_str(spec, "podManagementPolicy", "OrderedReady");
    if let Some(us) = ensure_object(spec, "updateStrategy") {
        if str_at(us, "type").unwrap_or_default().is_empty() {
            us["type"] = json!("RollingUpdate");
            set_default(us, "rollingUpdate", json!({}));
        }
        if str_at(us, "type") == Some("RollingUpdate") {
            if let Some(ru) = us.get_mut("rollingUpdate").filter(|r| r.is_object()) {
                set_default(ru, "partition", json!(0));
            }
        }
    }
    if let Some(p) = ensure_object(spec, "persistentVolumeClaimRetentionPolicy") {
        set_default_str(p, "whenDeleted", "Retain");
        set_default_str(p, "whenScaled", "Retain");
    }
    set_default(spec, "replicas", json!(1));
    set_default(spec, "revisionHistoryLimit", json!(10));
    template_of(spec);
    for_each_in(spec, "volumeClaimTemplates", |pvc| {
        if !pvc.is_object() {
            return;
        }
        set_default_str(pvc, "apiVersion", "v1");
        set_default_str(pvc, "kind", "PersistentVolumeClaim");
        template_metadata(pvc);
        default_pvc(pvc);
    });
}

fn default_daemon_set(ds: &mut Value) {
    let Some(spec) = ensure_object(ds, "spec") else {
        return;
    };
    if let Some(us) = ensure_object(spec, "updateStrategy") {
        set_default_str(us, "type", "RollingUpdate");
        if str_at(us, "type") == Some("RollingUpdate") {
            if let Some(ru) = ensure_object(us, "rollingUpdate") {
                set_default(ru, "maxUnavailable", json!(1));
                set_default(ru, "maxSurge", json!(0));
            }
        }
    }
    set_default(spec, "revisionHistoryLimit", json!(10));
    template_of(spec);
}

fn default_job_spec(spec: &mut Value) {
    let completions = spec.get("completions").filter(|v| !v.is_null()).is_some();
    let parallelism = spec.get("parallelism").filter(|v| !v.is_null()).is_some();
    if !completions && !parallelism {
        spec["completions"] = json!(1);
        spec["parallelism"] = json!(1);
    }
    set_default(spec, "parallelism", json!(1));
    let per_index = spec
        .get("backoffLimitPerIndex")
        .is_some_and(|v| !v.is_null());
    set_default(
        spec,
        "backoffLimit",
        json!(if per_index { i32::MAX as i64 } else { 6 }),
    );
    set_default_str(spec, "completionMode", "NonIndexed");
    set_default(spec, "suspend", json!(false));
    let has_failure_policy = spec.get("podFailurePolicy").is_some_and(|p| p.is_object());
    if has_failure_policy {
        if let Some(pfp) = spec.get_mut("podFailurePolicy") {
            for_each_in(pfp, "rules", |rule| {
                for_each_in(rule, "onPodConditions", |c| {
                    set_default_str(c, "status", "True")
                });
            });
        }
    }
    set_default_str(
        spec,
        "podReplacementPolicy",
        if has_failure_policy {
            "Failed"
        } else {
            "TerminatingOrFailed"
        },
    );
}

fn default_job(job: &mut Value) {
    let template_labels = super::json::at(job, "spec.template.metadata.labels")
        .filter(|l| l.is_object())
        .cloned();
    if let Some(labels) = template_labels {
        if let Some(meta) = ensure_object(job, "metadata") {
            if meta.get("labels").is_none_or(is_empty) {
                meta["labels"] = labels;
            }
        }
    }
    if let Some(spec) = ensure_object(job, "spec") {
        default_job_spec(spec);
        template_of(spec);
    }
}

fn default_cron_job(cj: &mut Value) {
    let Some(spec) = ensure_object(cj, "spec") else {
        return;
    };
    set_default_str(spec, "concurrencyPolicy", "Allow");
    set_default(spec, "suspend", json!(false));
    set_default(spec, "successfulJobsHistoryLimit", json!(3));
    set_default(spec, "failedJobsHistoryLimit", json!(1));
    if let Some(jt) = ensure_object(spec, "jobTemplate") {
        template_metadata(jt);
        if let Some(js) = ensure_object(jt, "spec") {
            template_of(js);
        }
    }
}

fn default_hpa(version: &str, hpa: &mut Value) {
    let Some(spec) = ensure_object(hpa, "spec") else {
        return;
    };
    set_default(spec, "minReplicas", json!(1));
    if version != "v2" {
        return;
    }
    if spec.get("metrics").is_none_or(is_empty) {
        spec["metrics"] = json!([{"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": 80}}}]);
    }
    if let Some(behavior) = spec.get_mut("behavior").filter(|b| b.is_object()) {
        let up_default = json!({"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
            "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                         {"type": "Percent", "value": 100, "periodSeconds": 15}]});
        let down_default = json!({"selectPolicy": "Max",
            "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]});
        for (key, default) in [("scaleUp", up_default), ("scaleDown", down_default)] {
            let rules = ensure_object(behavior, key);
            if let (Some(rules), Some(d)) = (rules, default.as_object()) {
                for (k, v) in d {
                    set_default(rules, k, v.clone());
                }
            }
        }
    }
}

fn default_service(svc: &mut Value) {
    let Some(spec) = ensure_object(svc, "spec") else {
        return;
    };
    set_default_str(spec, "sessionAffinity", "None");
    set_default_str(spec, "type", "ClusterIP");
    let svc_type = str_at(spec, "type").unwrap_or_default().to_string();
    for_each_in(spec, "ports", |p| {
        if !p.is_object() {
            return;
        }
        set_default_str(p, "protocol", "TCP");
        let target_unset = match p.get("targetPort") {
            None | Some(Value::Null) => true,
            Some(Value::Number(n)) => n.as_i64() == Some(0),
            Some(Value::String(s)) => s.is_empty(),
            _ => false,
        };
        if target_unset {
            if let Some(port) = p.get("port").cloned() {
                p["targetPort"] = port;
            }
        }
    });
    if svc_type == "NodePort" || svc_type == "LoadBalancer" {
        set_default_str(spec, "externalTrafficPolicy", "Cluster");
    }
    if svc_type == "LoadBalancer" {
        set_default(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    if str_at(spec, "sessionAffinity") == Some("ClientIP") {
        set_default(
            spec,
            "sessionAffinityConfig",
            json!({"clientIP": {"timeoutSeconds": 10800}}),
        );
    }
    if svc_type == "ExternalName" {
        return;
    }
    set_default_str(spec, "internalTrafficPolicy", "Cluster");
    // Keep `clusterIP` and `clusterIPs` consistent, as the v1 conversion does.
    let cluster_ip = str_at(spec, "clusterIP").unwrap_or_default().to_string();
    let first = array_at(spec, "clusterIPs")
        .first()
        .and_then(Value::as_str)
        .map(String::from);
    match first {
        Some(ip) if cluster_ip.is_empty() => spec["clusterIP"] = json!(ip),
        None if !cluster_ip.is_empty() => spec["clusterIPs"] = json!([cluster_ip]),
        _ => {}
    }
    let headless = str_at(spec, "clusterIP") == Some("None");
    let selectorless = spec.get("selector").is_none_or(is_empty);
    if headless && selectorless {
        set_default_str(spec, "ipFamilyPolicy", "RequireDualStack");
    } else {
        set_default_str(spec, "ipFamilyPolicy", "SingleStack");
    }
    if spec.get("ipFamilies").is_none_or(is_empty) {
        let families: Vec<&str> = array_at(spec, "clusterIPs")
            .iter()
            .filter_map(Value::as_str)
            .filter(|ip| *ip != "None")
            .map(|ip| if ip.contains(':') { "IPv6" } else { "IPv4" })
            .collect();
        spec["ipFamilies"] = if families.is_empty() {
            json!(["IPv4"])
        } else {
            json!(families)
        };
    }
}

fn default_namespace(ns: &mut Value) {
    // Namespaces carry their own name as a label (only once the name is known).
    let name = str_at(ns, "metadata.name").unwrap_or_default().to_string();
    if !name.is_empty() {
        if let Some(labels) = ensure_path(ns, "metadata.labels") {
            labels["kubernetes.io/metadata.name"] = json!(name);
        }
    }
    if let Some(status) = ensure_object(ns, "status") {
        set_default_str(status, "phase", "Active");
    }
}

fn default_secret(secret: &mut Value) {
    set_default_str(secret, "type", "Opaque");
    // `stringData` is write-only: it is merged into `data` (winning over it) on the way in.
    let Some(string_data) = secret.as_object_mut().and_then(|m| m.remove("stringData")) else {
        return;
    };
    let Some(entries) = string_data.as_object() else {
        return;
    };
    if let Some(data) = ensure_object(secret, "data").and_then(Value::as_object_mut) {
        for (k, v) in entries {
            let raw = v.as_str().unwrap_or_default();
            let encoded = base64::engine::general_purpose::STANDARD.encode(raw.as_bytes());
            data.insert(k.clone(), json!(encoded));
        }
    }
}

fn default_pvc(pvc: &mut Value) {
    if let Some(spec) = ensure_object(pvc, "spec") {
        set_default_str(spec, "volumeMode", "Filesystem");
        for path in ["resources.requests", "resources.limits"] {
            if let Some(m) = super::json::at_mut(spec, path) {
                canonicalize_map(m);
            }
        }
    }
    if let Some(status) = ensure_object(pvc, "status") {
        set_default_str(status, "phase", "Pending");
        if let Some(m) = status.get_mut("capacity") {
            canonicalize_map(m);
        }
    }
}

fn default_pv(pv: &mut Value) {
    if let Some(spec) = ensure_object(pv, "spec") {
        set_default_str(spec, "persistentVolumeReclaimPolicy", "Retain");
        set_default_str(spec, "volumeMode", "Filesystem");
        if let Some(hp) = spec.get_mut("hostPath").filter(|h| h.is_object()) {
            set_default(hp, "type", json!(""));
        }
        if let Some(m) = spec.get_mut("capacity") {
            canonicalize_map(m);
        }
    }
    if let Some(status) = ensure_object(pv, "status") {
        set_default_str(status, "phase", "Pending");
    }
}

fn default_node(node: &mut Value) {
    if let Some(spec) = node.get_mut("spec").filter(|s| s.is_object()) {
        let cidr = str_at(spec, "podCIDR").unwrap_or_default().to_string();
        let first = array_at(spec, "podCIDRs")
            .first()
            .and_then(Value::as_str)
            .map(String::from);
        match first {
            Some(c) if cidr.is_empty() => spec["podCIDR"] = json!(c),
            None if !cidr.is_empty() => spec["podCIDRs"] = json!([cidr]),
            _ => {}
        }
    }
    if let Some(status) = node.get_mut("status").filter(|s| s.is_object()) {
        for key in ["capacity", "allocatable"] {
            if let Some(m) = status.get_mut(key) {
                canonicalize_map(m);
            }
        }
        let capacity = status.get("capacity").filter(|c| !is_empty(c)).cloned();
        if let Some(cap) = capacity {
            set_default(status, "allocatable", cap);
        }
    }
}

fn default_network_policy(np: &mut Value) {
    let Some(spec) = ensure_object(np, "spec") else {
        return;
    };
    set_default(spec, "podSelector", json!({}));
    for dir in ["ingress", "egress"] {
        for_each_in(spec, dir, |rule| {
            for_each_in(rule, "ports", |p| set_default_str(p, "protocol", "TCP"));
        });
    }
    if spec.get("policyTypes").is_none_or(is_empty) {
        let mut types = vec!["Ingress"];
        if !array_at(spec, "egress").is_empty() {
            types.push("Egress");
        }
        spec["policyTypes"] = json!(types);
    }
}

fn default_subjects(binding: &mut Value) {
    for_each_in(binding, "subjects", |s| {
        let kind = str_at(s, "kind").unwrap_or_default().to_string();
        match kind.as_str() {
            "User" | "Group" => set_default_str(s, "apiGroup", "rbac.authorization.k8s.io"),
            "ServiceAccount" => set_default(s, "apiGroup", json!("")),
            _ => {}
        }
    });
}

fn default_rules(holder: &mut Value) {
    for_each_in(holder, "rules", |r| set_default_str(r, "scope", "*"));
}

fn default_match_resources(mr: &mut Value) {
    set_default(mr, "namespaceSelector", json!({}));
    set_default(mr, "objectSelector", json!({}));
    set_default_str(mr, "matchPolicy", "Equivalent");
    for key in ["resourceRules", "excludeResourceRules"] {
        for_each_in(mr, key, |r| set_default_str(r, "scope", "*"));
    }
}

fn default_webhook(w: &mut Value, mutating: bool) {
    if !w.is_object() {
        return;
    }
    set_default_str(w, "failurePolicy", "Fail");
    set_default_str(w, "matchPolicy", "Equivalent");
    set_default(w, "namespaceSelector", json!({}));
    set_default(w, "objectSelector", json!({}));
    set_default(w, "timeoutSeconds", json!(10));
    if mutating {
        set_default_str(w, "reinvocationPolicy", "Never");
    }
    default_rules(w);
    if let Some(svc) = super::json::at_mut(w, "clientConfig.service").filter(|s| s.is_object()) {
        set_default(svc, "port", json!(443));
    }
}

fn default_crd(crd: &mut Value) {
    let Some(spec) = ensure_object(crd, "spec") else {
        return;
    };
    if let Some(conv) = ensure_object(spec, "conversion") {
        set_default_str(conv, "strategy", "None");
        if let Some(svc) =
            super::json::at_mut(conv, "webhook.clientConfig.service").filter(|s| s.is_object())
        {
            set_default(svc, "port", json!(443));
        }
    }
    let kind = str_at(spec, "names.kind").unwrap_or_default().to_string();
    if let Some(names) = spec.get_mut("names").filter(|n| n.is_object()) {
        if !kind.is_empty() {
            set_default_str(names, "singular", &kind.to_lowercase());
            set_default_str(names, "listKind", &format!("{kind}List"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_defaults_match_upstream() {
        let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.25",
                "ports": [{"containerPort": 80}],
                "readinessProbe": {"httpGet": {"port": 80}}}]}});
        apply("", "v1", "Pod", &mut pod);
        let spec = &pod["spec"];
        assert_eq!(spec["restartPolicy"], "Always");
        assert_eq!(spec["dnsPolicy"], "ClusterFirst");
        assert_eq!(spec["schedulerName"], "default-scheduler");
        assert_eq!(spec["terminationGracePeriodSeconds"], 30);
        assert_eq!(spec["securityContext"], json!({}));
        assert_eq!(spec["enableServiceLinks"], true);
        assert!(
            spec.get("priority").is_none(),
            "set by Priority admission, not defaults"
        );
        let c = &spec["containers"][0];
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(c["terminationMessagePolicy"], "File");
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        assert_eq!(
            c["readinessProbe"],
            json!({"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
                   "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
        );
        let again = pod.clone();
        apply("", "v1", "Pod", &mut pod);
        assert_eq!(pod, again, "defaulting is idempotent");
    }

    #[test]
    fn deployment_defaults_match_upstream() {
        let mut d = json!({"metadata": {"name": "web"}, "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}}});
        apply("apps", "v1", "Deployment", &mut d);
        let spec = &d["spec"];
        assert_eq!(spec["replicas"], 1);
        assert_eq!(
            spec["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        );
        assert_eq!(spec["revisionHistoryLimit"], 10);
        assert_eq!(spec["progressDeadlineSeconds"], 600);
        let t = &spec["template"];
        assert_eq!(t["metadata"]["creationTimestamp"], Value::Null);
        assert!(t["metadata"]
            .as_object()
            .unwrap()
            .contains_key("creationTimestamp"));
        assert_eq!(t["spec"]["restartPolicy"], "Always");
        assert_eq!(t["spec"]["containers"][0]["imagePullPolicy"], "Always");
        assert!(t["spec"].get("enableServiceLinks").is_none());
    }

    #[test]
    fn recreate_strategy_gets_no_rolling_update() {
        let mut d = json!({"spec": {"strategy": {"type": "Recreate"}}});
        apply("apps", "v1", "Deployment", &mut d);
        assert_eq!(d["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn service_defaults_match_upstream() {
        let mut svc = json!({"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"},
            "ports": [{"port": 80}, {"port": 443, "targetPort": "https", "name": "https"}]}});
        apply("", "v1", "Service", &mut svc);
        let spec = &svc["spec"];
        assert_eq!(spec["type"], "ClusterIP");
        assert_eq!(spec["sessionAffinity"], "None");
        assert_eq!(spec["ports"][0]["protocol"], "TCP");
        assert_eq!(spec["ports"][0]["targetPort"], 80);
        assert_eq!(spec["ports"][1]["targetPort"], "https");
        assert_eq!(spec["ipFamilyPolicy"], "SingleStack");
        assert_eq!(spec["ipFamilies"], json!(["IPv4"]));
        assert_eq!(spec["internalTrafficPolicy"], "Cluster");
        assert!(spec.get("externalTrafficPolicy").is_none());

        let mut np = json!({"spec": {"type": "NodePort", "ports": [{"port": 80}]}});
        apply("", "v1", "Service", &mut np);
        assert_eq!(np["spec"]["externalTrafficPolicy"], "Cluster");

        let mut ext = json!({"spec": {"type": "ExternalName", "externalName": "example.com"}});
        apply("", "v1", "Service", &mut ext);
        assert!(ext["spec"].get("ipFamilies").is_none());
        assert!(ext["spec"].get("internalTrafficPolicy").is_none());

        let mut headless = json!({"spec": {"clusterIP": "None", "ports": [{"port": 80}]}});
        apply("", "v1", "Service", &mut headless);
        assert_eq!(headless["spec"]["ipFamilyPolicy"], "RequireDualStack");
        assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));
    }

    #[test]
    fn job_defaults_match_upstream() {
        let mut job = json!({"metadata": {"name": "pi"}, "spec": {"template": {
            "metadata": {"labels": {"app": "pi"}},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "pi", "image": "perl:5.34"}]}}}});
        apply("batch", "v1", "Job", &mut job);
        let spec = &job["spec"];
        assert_eq!(spec["completions"], 1);
        assert_eq!(spec["parallelism"], 1);
        assert_eq!(spec["backoffLimit"], 6);
        assert_eq!(spec["completionMode"], "NonIndexed");
        assert_eq!(spec["suspend"], false);
        assert_eq!(spec["podReplacementPolicy"], "TerminatingOrFailed");
        assert!(spec.get("manualSelector").is_none());
        assert_eq!(job["metadata"]["labels"], json!({"app": "pi"}));

        let mut queue = json!({"spec": {"parallelism": 3, "template": {"spec": {}}}});
        apply("batch", "v1", "Job", &mut queue);
        assert!(queue["spec"].get("completions").is_none());
        assert_eq!(queue["spec"]["parallelism"], 3);
    }

    #[test]
    fn cronjob_and_statefulset_defaults() {
        let mut cj = json!({"spec": {"schedule": "*/1 * * * *", "jobTemplate": {"spec": {"template": {"spec": {}}}}}});
        apply("batch", "v1", "CronJob", &mut cj);
        assert_eq!(cj["spec"]["concurrencyPolicy"], "Allow");
        assert_eq!(cj["spec"]["successfulJobsHistoryLimit"], 3);
        assert_eq!(cj["spec"]["failedJobsHistoryLimit"], 1);
        assert_eq!(cj["spec"]["suspend"], false);
        assert!(cj["spec"]["jobTemplate"]["spec"]
            .get("backoffLimit")
            .is_none());

        let mut sts = json!({"spec": {"volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {}}],
            "template": {"spec": {}}}});
        apply("apps", "v1", "StatefulSet", &mut sts);
        let spec = &sts["spec"];
        assert_eq!(spec["podManagementPolicy"], "OrderedReady");
        assert_eq!(
            spec["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        );
        assert_eq!(
            spec["persistentVolumeClaimRetentionPolicy"],
            json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
        );
        assert_eq!(
            spec["volumeClaimTemplates"][0]["spec"]["volumeMode"],
            "Filesystem"
        );
        assert_eq!(
            spec["volumeClaimTemplates"][0]["status"]["phase"],
            "Pending"
        );
    }

    #[test]
    fn namespace_secret_and_storage_defaults() {
        let mut ns = json!({"metadata": {"name": "team-a"}});
        apply("", "v1", "Namespace", &mut ns);
        assert_eq!(
            ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
            "team-a"
        );
        assert_eq!(ns["status"]["phase"], "Active");

        let mut secret = json!({"data": {"a": "eA=="}, "stringData": {"a": "hello", "b": "x"}});
        apply("", "v1", "Secret", &mut secret);
        assert_eq!(secret["type"], "Opaque");
        assert_eq!(secret["data"], json!({"a": "aGVsbG8=", "b": "eA=="}));
        assert!(secret.get("stringData").is_none());

        let mut pv =
            json!({"spec": {"capacity": {"storage": "1.5Gi"}, "hostPath": {"path": "/tmp"}}});
        apply("", "v1", "PersistentVolume", &mut pv);
        assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Retain");
        assert_eq!(pv["spec"]["volumeMode"], "Filesystem");
        assert_eq!(pv["spec"]["capacity"]["storage"], "1536Mi");
        assert_eq!(pv["status"]["phase"], "Pending");
    }
}
