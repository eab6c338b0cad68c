//! Validation of core kinds and the cluster-level kinds clients most often write.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{check_enum, child, index, invalid_raw, key, validate_nonnegative, Errors};
use crate::resources::json::{array_at, at, i64_at, object_at, semantic_eq, str_at};
use crate::resources::names::{
    is_config_map_key, is_dns1123_label, is_dns1123_subdomain, is_qualified_name,
    is_valid_port_name, is_valid_port_num,
};
use crate::resources::quantity::Quantity;
use crate::resources::FieldError;

/// Upstream's cap on the data of one Secret or ConfigMap.
const MAX_DATA_SIZE: usize = 1024 * 1024;

pub(super) fn validate(
    group: &str,
    kind: &str,
    obj: &Value,
    old: Option<&Value>,
    errs: &mut Errors,
) {
    match (group, kind) {
        ("", "Service") => {
            validate_service(obj, errs);
            if let Some(old) = old {
                validate_service_update(obj, old, errs);
            }
        }
        ("", "ConfigMap") => {
            validate_config_map(obj, errs);
            if let Some(old) = old {
                immutable_data(obj, old, &["data", "binaryData"], errs);
            }
        }
        ("", "Secret") => {
            validate_secret(obj, errs);
            if let Some(old) = old {
                let (n, o) = (
                    obj.get("type").cloned().unwrap_or(Value::Null),
                    old.get("type").cloned().unwrap_or(Value::Null),
                );
                if n != o {
                    errs.push(FieldError::invalid("type", &n, "field is immutable"));
                }
                immutable_data(obj, old, &["data"], errs);
            }
        }
        ("", "Namespace") => {
            for (i, f) in array_at(obj, "spec.finalizers").iter().enumerate() {
                let name = f.as_str().unwrap_or_default();
                let path = index("spec.finalizers", i);
                for msg in is_qualified_name(name) {
                    errs.push(FieldError::invalid(&path, f, &msg));
                }
                if !name.contains('/')
                    && !["kubernetes", "orphan", "foregroundDeletion"].contains(&name)
                {
                    errs.push(FieldError::invalid(
                        &path,
                        f,
                        "name is neither a standard finalizer name nor is it fully qualified",
                    ));
                }
            }
        }
        ("", "PersistentVolumeClaim") => {
            validate_pvc(obj, errs);
            if let Some(old) = old {
                validate_pvc_update(obj, old, errs);
            }
        }
        ("", "PersistentVolume") => validate_pv(obj, errs),
        ("", "Binding") => {
            if str_at(obj, "target.name").unwrap_or_default().is_empty() {
                errs.push(FieldError::required("target.name"));
            }
            let kind = str_at(obj, "target.kind").unwrap_or_default();
            if !kind.is_empty() && kind != "Node" {
                errs.push(FieldError::not_found(
                    "target.kind",
                    &Value::String(kind.into()),
                ));
            }
        }
        ("", "Event") => validate_event(obj, errs),
        ("rbac.authorization.k8s.io", "Role") => validate_rules(obj, true, errs),
        ("rbac.authorization.k8s.io", "ClusterRole") => validate_rules(obj, false, errs),
        ("rbac.authorization.k8s.io", "RoleBinding") => {
            validate_binding(obj, &["Role", "ClusterRole"], true, errs);
            if let Some(old) = old {
                immutable_role_ref(obj, old, errs);
            }
        }
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            validate_binding(obj, &["ClusterRole"], false, errs);
            if let Some(old) = old {
                immutable_role_ref(obj, old, errs);
            }
        }
        ("scheduling.k8s.io", "PriorityClass") => {
            let name = str_at(obj, "metadata.name").unwrap_or_default();
            let value = i64_at(obj, "value").unwrap_or(0);
            if name.starts_with("system-") {
                if !["system-cluster-critical", "system-node-critical"].contains(&name) {
                    errs.push(FieldError::invalid(
                        "metadata.name",
                        &Value::String(name.to_string()),
                        "priority class names with 'system-' prefix are reserved",
                    ));
                }
            } else if value > 1_000_000_000 {
                errs.push(FieldError::forbidden(
                    "value",
                    "maximum allowed value of a user defined priority is 1000000000",
                ));
            }
            check_enum(
                obj,
                "",
                "preemptionPolicy",
                &["Never", "PreemptLowerPriority"],
                errs,
            );
            if let Some(old) = old {
                if obj.get("value") != old.get("value") {
                    errs.push(FieldError::forbidden(
                        "value",
                        "may not be changed in an update.",
                    ));
                }
                if obj.get("preemptionPolicy") != old.get("preemptionPolicy") {
                    errs.push(invalid_raw(
                        "preemptionPolicy",
                        &obj.get("preemptionPolicy")
                            .map(Value::to_string)
                            .unwrap_or_default(),
                        "field is immutable",
                    ));
                }
            }
        }
        ("storage.k8s.io", "StorageClass") => {
            match str_at(obj, "provisioner") {
                None | Some("") => errs.push(FieldError::required("provisioner")),
                Some(p) => {
                    for msg in is_qualified_name(&p.to_lowercase()) {
                        errs.push(FieldError::invalid(
                            "provisioner",
                            &obj["provisioner"],
                            &msg,
                        ));
                    }
                }
            }
            check_enum(obj, "", "reclaimPolicy", &["Delete", "Retain"], errs);
            check_enum(
                obj,
                "",
                "volumeBindingMode",
                &["Immediate", "WaitForFirstConsumer"],
                errs,
            );
            if let Some(old) = old {
                for (f, msg) in [
                    ("parameters", "updates to parameters are forbidden."),
                    ("provisioner", "updates to provisioner are forbidden."),
                    ("reclaimPolicy", "updates to reclaimPolicy are forbidden."),
                ] {
                    let n = obj.get(f).unwrap_or(&Value::Null);
                    let o = old.get(f).unwrap_or(&Value::Null);
                    if !semantic_eq(n, o) {
                        errs.push(FieldError::forbidden(f, msg));
                    }
                }
                if !semantic_eq(
                    obj.get("volumeBindingMode").unwrap_or(&Value::Null),
                    old.get("volumeBindingMode").unwrap_or(&Value::Null),
                ) {
                    errs.push(FieldError::forbidden(
                        "volumeBindingMode",
                        "field is immutable",
                    ));
                }
            }
        }
        ("coordination.k8s.io", "Lease") => {
            if let Some(d) = i64_at(obj, "spec.leaseDurationSeconds") {
                if d <= 0 {
                    errs.push(FieldError::invalid(
                        "spec.leaseDurationSeconds",
                        &Value::from(d),
                        "must be greater than 0",
                    ));
                }
            }
            validate_nonnegative(obj, "spec.leaseTransitions", errs);
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            errs.extend(crate::resources::crd::validate_crd(obj, old));
        }
        ("apiregistration.k8s.io", "APIService") => validate_apiservice(obj, errs),
        _ => {}
    }
}

fn port_num(v: &Value, path: &str, errs: &mut Errors) {
    let n = v.as_i64().unwrap_or(0);
    for msg in is_valid_port_num(n) {
        errs.push(FieldError::invalid(path, &Value::from(n), &msg));
    }
}

fn validate_service(svc: &Value, errs: &mut Errors) {
    let spec = svc.get("spec").cloned().unwrap_or(Value::Null);
    let svc_type = str_at(&spec, "type").unwrap_or_default();
    check_enum(
        &spec,
        "spec",
        "type",
        &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        errs,
    );
    check_enum(
        &spec,
        "spec",
        "sessionAffinity",
        &["ClientIP", "None"],
        errs,
    );
    let headless = str_at(&spec, "clusterIP") == Some("None");
    let ports = array_at(&spec, "ports");
    if svc_type == "ExternalName" {
        match str_at(&spec, "externalName") {
            None | Some("") => errs.push(FieldError::required("spec.externalName")),
            Some(name) => {
                for msg in is_dns1123_subdomain(name.trim_end_matches('.')) {
                    errs.push(FieldError::invalid(
                        "spec.externalName",
                        &spec["externalName"],
                        &msg,
                    ));
                }
            }
        }
    } else if ports.is_empty() && !headless {
        errs.push(FieldError::required("spec.ports"));
    }
    let mut names = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let pp = index("spec.ports", i);
        let name = str_at(p, "name").unwrap_or_default();
        if ports.len() > 1 && name.is_empty() {
            errs.push(FieldError::required(child(&pp, "name")));
        } else if !name.is_empty() {
            for msg in is_dns1123_label(name) {
                errs.push(FieldError::invalid(child(&pp, "name"), &p["name"], &msg));
            }
            if !names.insert(name.to_string()) {
                errs.push(FieldError::duplicate(child(&pp, "name"), &p["name"]));
            }
        }
        port_num(
            p.get("port").unwrap_or(&Value::Null),
            &child(&pp, "port"),
            errs,
        );
        match p.get("protocol") {
            None | Some(Value::Null) => errs.push(FieldError::required(child(&pp, "protocol"))),
            Some(_) => check_enum(p, &pp, "protocol", &["SCTP", "TCP", "UDP"], errs),
        }
        match p.get("targetPort") {
            Some(Value::String(s)) => {
                for msg in is_valid_port_name(s) {
                    errs.push(FieldError::invalid(
                        child(&pp, "targetPort"),
                        &p["targetPort"],
                        &msg,
                    ));
                }
            }
            Some(v @ Value::Number(_)) => port_num(v, &child(&pp, "targetPort"), errs),
            _ => {}
        }
        if let Some(np) = p
            .get("nodePort")
            .and_then(Value::as_i64)
            .filter(|n| *n != 0)
        {
            if svc_type == "ClusterIP" || svc_type == "ExternalName" {
                errs.push(FieldError::forbidden(
                    child(&pp, "nodePort"),
                    &format!("may not be used when `type` is '{svc_type}'"),
                ));
            } else {
                port_num(&Value::from(np), &child(&pp, "nodePort"), errs);
            }
        }
    }
    check_enum(
        &spec,
        "spec",
        "externalTrafficPolicy",
        &["Cluster", "Local"],
        errs,
    );
    check_enum(
        &spec,
        "spec",
        "internalTrafficPolicy",
        &["Cluster", "Local"],
        errs,
    );
    check_enum(
        &spec,
        "spec",
        "ipFamilyPolicy",
        &["SingleStack", "PreferDualStack", "RequireDualStack"],
        errs,
    );
    for (i, f) in array_at(&spec, "ipFamilies").iter().enumerate() {
        if !matches!(f.as_str(), Some("IPv4" | "IPv6")) {
            errs.push(FieldError::not_supported(
                index("spec.ipFamilies", i),
                f,
                &["IPv4", "IPv6"],
            ));
        }
    }
}

fn string_list(v: &[Value]) -> String {
    let items: Vec<String> = v
        .iter()
        .map(|s| format!("{:?}", s.as_str().unwrap_or_default()))
        .collect();
    format!("[]string{{{}}}", items.join(", "))
}

/// Cluster IPs may not change once allocated (except to or from ExternalName).
fn validate_service_update(new: &Value, old: &Value, errs: &mut Errors) {
    let is_ext = |v: &Value| str_at(v, "spec.type") == Some("ExternalName");
    if is_ext(new) || is_ext(old) {
        return;
    }
    let headless = |v: &Value| str_at(v, "spec.clusterIP") == Some("None");
    if headless(new) && headless(old) {
        return;
    }
    let old_ips = array_at(old, "spec.clusterIPs");
    let new_ips = array_at(new, "spec.clusterIPs");
    if old_ips.is_empty() {
        return;
    }
    if new_ips.is_empty() {
        errs.push(invalid_raw(
            "spec.clusterIPs[0]",
            "[]string(nil)",
            "primary clusterIP can not be unset",
        ));
        return;
    }
    for (i, ip) in old_ips.iter().enumerate() {
        if let Some(n) = new_ips.get(i) {
            if n != ip {
                errs.push(invalid_raw(
                    index("spec.clusterIPs", i),
                    &string_list(new_ips),
                    "may not change once set",
                ));
            }
        }
    }
}

fn validate_data_keys(obj: &Value, field: &str, errs: &mut Errors) -> usize {
    let mut total = 0;
    for (k, v) in object_at(obj, field).into_iter().flatten() {
        for msg in is_config_map_key(k) {
            errs.push(FieldError::invalid(
                key(field, k),
                &Value::String(k.clone()),
                &msg,
            ));
        }
        total += v.as_str().map_or(0, str::len);
    }
    total
}

fn validate_config_map(cm: &Value, errs: &mut Errors) {
    let mut total = validate_data_keys(cm, "data", errs);
    if let (Some(data), Some(binary)) = (object_at(cm, "data"), object_at(cm, "binaryData")) {
        for k in data.keys().filter(|k| binary.contains_key(*k)) {
            errs.push(FieldError::invalid(
                key("data", k),
                &Value::String(k.clone()),
                "duplicate of key present in binaryData",
            ));
        }
    }
    total += validate_data_keys(cm, "binaryData", errs);
    if total > MAX_DATA_SIZE {
        errs.push(FieldError::too_long("", MAX_DATA_SIZE));
    }
}

fn validate_secret(secret: &Value, errs: &mut Errors) {
    let total = validate_data_keys(secret, "data", errs);
    if total > MAX_DATA_SIZE * 4 / 3 + 4 {
        errs.push(FieldError::too_long("data", MAX_DATA_SIZE));
    }
    let data = object_at(secret, "data");
    let has = |k: &str| data.is_some_and(|d| d.contains_key(k));
    let require = |k: &str, errs: &mut Errors| {
        if !has(k) {
            errs.push(FieldError::required(key("data", k)));
        }
    };
    match str_at(secret, "type").unwrap_or_default() {
        "kubernetes.io/service-account-token" => {
            let name = at(secret, "metadata.annotations")
                .and_then(|a| a.get("kubernetes.io/service-account.name"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            if name.is_empty() {
                errs.push(FieldError::required(
                    "metadata.annotations[kubernetes.io/service-account.name]",
                ));
            }
        }
        "kubernetes.io/dockercfg" => require(".dockercfg", errs),
        "kubernetes.io/dockerconfigjson" => require(".dockerconfigjson", errs),
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            require("username", errs);
            require("password", errs);
        }
        "kubernetes.io/ssh-auth"
            if data
                .and_then(|d| d.get("ssh-privatekey"))
                .and_then(Value::as_str)
                .is_none_or(str::is_empty) =>
        {
            errs.push(FieldError::required("data[ssh-privatekey]"));
        }
        "kubernetes.io/tls" => {
            require("tls.crt", errs);
            require("tls.key", errs);
        }
        _ => {}
    }
}

/// `immutable: true` freezes the data fields and the flag itself.
fn immutable_data(new: &Value, old: &Value, fields: &[&str], errs: &mut Errors) {
    if old.get("immutable").and_then(Value::as_bool) != Some(true) {
        return;
    }
    const MSG: &str = "field is immutable when `immutable` is set";
    if new.get("immutable").and_then(Value::as_bool) != Some(true) {
        errs.push(FieldError::forbidden("immutable", MSG));
    }
    for f in fields {
        if !semantic_eq(
            new.get(*f).unwrap_or(&Value::Null),
            old.get(*f).unwrap_or(&Value::Null),
        ) {
            errs.push(FieldError::forbidden(*f, MSG));
        }
    }
}

const ACCESS_MODES: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];

fn validate_access_modes(modes: &[Value], path: &str, errs: &mut Errors) {
    if modes.is_empty() {
        errs.push(FieldError::required_detail(
            path,
            "at least 1 access mode is required",
        ));
    }
    for m in modes {
        if !m.as_str().is_some_and(|s| ACCESS_MODES.contains(&s)) {
            errs.push(FieldError::not_supported(path, m, ACCESS_MODES));
        }
    }
    let pod_only = modes.iter().any(|m| m.as_str() == Some("ReadWriteOncePod"));
    if pod_only && modes.len() > 1 {
        errs.push(FieldError::forbidden(
            path,
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
}

fn validate_pvc(pvc: &Value, errs: &mut Errors) {
    let spec = pvc.get("spec").cloned().unwrap_or(Value::Null);
    validate_access_modes(array_at(&spec, "accessModes"), "spec.accessModes", errs);
    let storage = at(&spec, "resources.requests").and_then(|r| r.get("storage"));
    let has_source = spec.get("dataSource").is_some_and(|d| !d.is_null())
        || spec.get("dataSourceRef").is_some_and(|d| !d.is_null());
    match storage {
        None if !has_source => errs.push(FieldError::required("spec.resources[storage]")),
        None => {}
        Some(q) => match Quantity::from_json(q) {
            Some(qty) if qty.nanos > 0 => {}
            _ => errs.push(FieldError::invalid(
                "spec.resources[storage]",
                q,
                "must be greater than zero",
            )),
        },
    }
    check_enum(&spec, "spec", "volumeMode", &["Block", "Filesystem"], errs);
}

fn validate_pvc_update(new: &Value, old: &Value, errs: &mut Errors) {
    // Requests may grow on bound claims; everything else in the spec is fixed.
    let strip = |v: &Value| {
        let mut spec = v.get("spec").cloned().unwrap_or(Value::Null);
        if let Some(res) = spec.get_mut("resources").and_then(Value::as_object_mut) {
            res.remove("requests");
        }
        if let Some(m) = spec.as_object_mut() {
            m.remove("volumeAttributesClassName");
            // Binding fills in the volume name after creation.
            if old
                .get("spec")
                .and_then(|s| s.get("volumeName"))
                .is_none_or(Value::is_null)
            {
                m.remove("volumeName");
            }
        }
        spec
    };
    if !semantic_eq(&strip(new), &strip(old)) {
        errs.push(FieldError::forbidden(
            "spec",
            "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
        ));
    }
}

const PV_SOURCES: &[&str] = &[
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "hostPath",
    "glusterfs",
    "nfs",
    "rbd",
    "iscsi",
    "cinder",
    "cephfs",
    "fc",
    "flocker",
    "flexVolume",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "local",
    "storageos",
    "csi",
];

fn validate_pv(pv: &Value, errs: &mut Errors) {
    let spec = pv.get("spec").cloned().unwrap_or(Value::Null);
    validate_access_modes(array_at(&spec, "accessModes"), "spec.accessModes", errs);
    match object_at(&spec, "capacity") {
        None => errs.push(FieldError::required("spec.capacity")),
        Some(cap) if cap.is_empty() => errs.push(FieldError::required("spec.capacity")),
        Some(cap) => {
            if !cap.contains_key("storage") || cap.len() > 1 {
                errs.push(invalid_raw(
                    "spec.capacity",
                    &spec["capacity"].to_string(),
                    "supported values: \"storage\"",
                ));
            }
        }
    }
    check_enum(
        &spec,
        "spec",
        "persistentVolumeReclaimPolicy",
        &["Delete", "Recycle", "Retain"],
        errs,
    );
    let sources = PV_SOURCES
        .iter()
        .filter(|s| spec.get(**s).is_some_and(|v| !v.is_null()))
        .count();
    if sources == 0 {
        errs.push(FieldError::required_detail(
            "spec",
            "must specify a volume type",
        ));
    } else if sources > 1 {
        errs.push(FieldError::forbidden(
            "spec",
            "may not specify more than 1 volume type",
        ));
    }
}

fn validate_event(ev: &Value, errs: &mut Errors) {
    let ns = str_at(ev, "metadata.namespace").unwrap_or_default();
    let involved = str_at(ev, "involvedObject.namespace").unwrap_or_default();
    let ok = if involved.is_empty() {
        ns.is_empty() || ns == "default"
    } else {
        ns == involved
    };
    if !ok && ev.get("involvedObject").is_some() {
        errs.push(FieldError::invalid(
            "involvedObject.namespace",
            &Value::String(involved.to_string()),
            "does not match event.namespace",
        ));
    }
}

fn validate_rules(role: &Value, namespaced: bool, errs: &mut Errors) {
    for (i, r) in array_at(role, "rules").iter().enumerate() {
        let rp = index("rules", i);
        if array_at(r, "verbs").is_empty() {
            errs.push(FieldError::required_detail(
                child(&rp, "verbs"),
                "verbs must contain at least one value",
            ));
        }
        let urls = array_at(r, "nonResourceURLs");
        if !urls.is_empty() {
            if namespaced {
                errs.push(invalid_raw(
                    child(&rp, "nonResourceURLs"),
                    &string_list(urls),
                    "namespaced rules cannot apply to non-resource URLs",
                ));
            }
            if !array_at(r, "apiGroups").is_empty()
                || !array_at(r, "resources").is_empty()
                || !array_at(r, "resourceNames").is_empty()
            {
                errs.push(invalid_raw(
                    child(&rp, "nonResourceURLs"),
                    &string_list(urls),
                    "rules cannot apply to both regular resources and non-resource URLs",
                ));
            }
            continue;
        }
        if array_at(r, "apiGroups").is_empty() {
            errs.push(FieldError::required_detail(
                child(&rp, "apiGroups"),
                "resource rules must supply at least one api group",
            ));
        }
        if array_at(r, "resources").is_empty() {
            errs.push(FieldError::required_detail(
                child(&rp, "resources"),
                "resource rules must supply at least one resource",
            ));
        }
    }
}

fn validate_binding(b: &Value, kinds: &[&str], namespaced: bool, errs: &mut Errors) {
    check_enum(
        b,
        "",
        "roleRef.apiGroup",
        &["rbac.authorization.k8s.io"],
        errs,
    );
    match b.get("roleRef").and_then(|r| r.get("kind")) {
        None | Some(Value::Null) => errs.push(FieldError::not_supported(
            "roleRef.kind",
            &Value::String(String::new()),
            kinds,
        )),
        Some(_) => check_enum(b, "", "roleRef.kind", kinds, errs),
    }
    let name = str_at(b, "roleRef.name").unwrap_or_default();
    if name.is_empty() {
        errs.push(FieldError::required("roleRef.name"));
    }
    for (i, s) in array_at(b, "subjects").iter().enumerate() {
        let sp = index("subjects", i);
        if str_at(s, "name").unwrap_or_default().is_empty() {
            errs.push(FieldError::required(child(&sp, "name")));
        }
        match str_at(s, "kind").unwrap_or_default() {
            "ServiceAccount" => {
                if !str_at(s, "apiGroup").unwrap_or_default().is_empty() {
                    errs.push(FieldError::not_supported(
                        child(&sp, "apiGroup"),
                        &s["apiGroup"],
                        &[""],
                    ));
                }
                if !namespaced && str_at(s, "namespace").unwrap_or_default().is_empty() {
                    errs.push(FieldError::required(child(&sp, "namespace")));
                }
            }
            "User" | "Group" => {
                if str_at(s, "apiGroup") != Some("rbac.authorization.k8s.io") {
                    errs.push(FieldError::not_supported(
                        child(&sp, "apiGroup"),
                        s.get("apiGroup").unwrap_or(&Value::String(String::new())),
                        &["rbac.authorization.k8s.io"],
                    ));
                }
            }
            _ => errs.push(FieldError::not_supported(
                child(&sp, "kind"),
                s.get("kind").unwrap_or(&Value::String(String::new())),
                &["ServiceAccount", "User", "Group"],
            )),
        }
    }
}

fn immutable_role_ref(new: &Value, old: &Value, errs: &mut Errors) {
    let n = new.get("roleRef").cloned().unwrap_or(Value::Null);
    let o = old.get("roleRef").cloned().unwrap_or(Value::Null);
    if !semantic_eq(&n, &o) {
        errs.push(invalid_raw(
            "roleRef",
            &format!(
                "rbac.RoleRef{{APIGroup:{:?}, Kind:{:?}, Name:{:?}}}",
                str_at(&n, "apiGroup").unwrap_or_default(),
                str_at(&n, "kind").unwrap_or_default(),
                str_at(&n, "name").unwrap_or_default()
            ),
            "cannot change roleRef",
        ));
    }
}

/// Upstream's `ValidateAPIService`: the name is `<version>.<group>`, priorities are in range,
/// and only an APIService with a service has TLS settings.
fn validate_apiservice(obj: &Value, errs: &mut Errors) {
    let name = str_at(obj, "metadata.name").unwrap_or_default();
    let group = str_at(obj, "spec.group").unwrap_or_default();
    let version = str_at(obj, "spec.version").unwrap_or_default();
    let expected = if group.is_empty() {
        version.to_string()
    } else {
        format!("{version}.{group}")
    };
    if !name.is_empty() && name != expected {
        errs.push(FieldError::invalid(
            "metadata.name",
            &Value::String(name.into()),
            "must be `spec.version+\".\"+spec.group`",
        ));
    }
    if !group.is_empty() {
        for msg in is_dns1123_subdomain(group) {
            errs.push(FieldError::invalid(
                "spec.group",
                &Value::String(group.into()),
                &msg,
            ));
        }
    }
    if version.is_empty() {
        errs.push(FieldError::required("spec.version"));
    } else {
        for msg in crate::resources::names::is_dns1035_label(version) {
            errs.push(FieldError::invalid(
                "spec.version",
                &Value::String(version.into()),
                &msg,
            ));
        }
    }
    let group_priority = i64_at(obj, "spec.groupPriorityMinimum").unwrap_or(0);
    if !(1..=20000).contains(&group_priority) {
        errs.push(FieldError::invalid(
            "spec.groupPriorityMinimum",
            &Value::from(group_priority),
            "must be positive and less than 20000",
        ));
    }
    let version_priority = i64_at(obj, "spec.versionPriority").unwrap_or(0);
    if !(1..=1000).contains(&version_priority) {
        errs.push(FieldError::invalid(
            "spec.versionPriority",
            &Value::from(version_priority),
            "must be positive and less than 1000",
        ));
    }
    let insecure = at(obj, "spec.insecureSkipTLSVerify").and_then(Value::as_bool) == Some(true);
    let has_ca = str_at(obj, "spec.caBundle").is_some_and(|c| !c.is_empty());
    match at(obj, "spec.service").filter(|s| !s.is_null()) {
        None => {
            if has_ca {
                errs.push(FieldError::forbidden(
                    "spec.caBundle",
                    "local APIServices may not have a caBundle",
                ));
            }
            if insecure {
                errs.push(FieldError::forbidden(
                    "spec.insecureSkipTLSVerify",
                    "local APIServices may not have insecureSkipTLSVerify",
                ));
            }
        }
        Some(_) => {
            for field in ["namespace", "name"] {
                if str_at(obj, &format!("spec.service.{field}"))
                    .unwrap_or_default()
                    .is_empty()
                {
                    errs.push(FieldError::required(format!("spec.service.{field}")));
                }
            }
            if let Some(port) = at(obj, "spec.service.port") {
                port_num(port, "spec.service.port", errs);
            }
            if insecure && has_ca {
                errs.push(FieldError::invalid(
                    "spec.insecureSkipTLSVerify",
                    &Value::Bool(true),
                    "may not be true if caBundle is present",
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(group: &str, kind: &str, obj: &Value, old: Option<&Value>) -> Vec<String> {
        let mut errs = Errors::new();
        validate(group, kind, obj, old, &mut errs);
        errs.into_iter().map(|e| e.message).collect()
    }

    fn service() -> Value {
        let mut s = json!({"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}], "selector": {"app": "web"}}});
        crate::resources::defaults::apply("", "v1", "Service", &mut s);
        s
    }

    #[test]
    fn service_messages() {
        assert!(run("", "Service", &service(), None).is_empty());
        let mut s = service();
        s["spec"]["ports"] = json!([]);
        assert_eq!(run("", "Service", &s, None), ["spec.ports: Required value"]);
        let mut s = service();
        s["spec"]["type"] = json!("Magic");
        assert_eq!(
            run("", "Service", &s, None),
            ["spec.type: Unsupported value: \"Magic\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\""]
        );
        let mut s = service();
        s["spec"]["ports"] = json!([{"port": 80, "protocol": "TCP", "targetPort": 80},
                                    {"port": 0, "protocol": "TCP", "targetPort": 81}]);
        let m = run("", "Service", &s, None);
        assert!(m.contains(&"spec.ports[1].name: Required value".to_string()));
        assert!(m.contains(
            &"spec.ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive"
                .to_string()
        ));
    }

    #[test]
    fn cluster_ip_is_immutable() {
        let mut old = service();
        old["spec"]["clusterIP"] = json!("10.96.0.5");
        old["spec"]["clusterIPs"] = json!(["10.96.0.5"]);
        let mut new = old.clone();
        new["spec"]["clusterIP"] = json!("10.96.0.6");
        new["spec"]["clusterIPs"] = json!(["10.96.0.6"]);
        assert_eq!(
            run("", "Service", &new, Some(&old)),
            ["spec.clusterIPs[0]: Invalid value: []string{\"10.96.0.6\"}: may not change once set"]
        );
    }

    #[test]
    fn config_map_keys_and_immutability() {
        let cm = json!({"data": {"good.key": "v", "bad key": "v"}});
        let m = run("", "ConfigMap", &cm, None);
        assert_eq!(m.len(), 1);
        assert!(m[0].starts_with("data[bad key]: Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.'"));
        let old = json!({"immutable": true, "data": {"a": "1"}});
        let new = json!({"immutable": true, "data": {"a": "2"}});
        assert_eq!(
            run("", "ConfigMap", &new, Some(&old)),
            ["data: Forbidden: field is immutable when `immutable` is set"]
        );
    }

    #[test]
    fn secret_types() {
        let tls = json!({"type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}});
        assert_eq!(
            run("", "Secret", &tls, None),
            ["data[tls.key]: Required value"]
        );
        let old = json!({"type": "Opaque"});
        let new = json!({"type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}});
        assert_eq!(
            run("", "Secret", &new, Some(&old)),
            ["type: Invalid value: \"kubernetes.io/tls\": field is immutable"]
        );
    }

    #[test]
    fn rbac_checks() {
        let role = json!({"rules": [{"apiGroups": [""], "resources": ["pods"]}]});
        assert_eq!(
            run("rbac.authorization.k8s.io", "Role", &role, None),
            ["rules[0].verbs: Required value: verbs must contain at least one value"]
        );
        let rb = json!({"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"}]});
        assert!(run("rbac.authorization.k8s.io", "RoleBinding", &rb, None).is_empty());
        let mut changed = rb.clone();
        changed["roleRef"]["name"] = json!("admin");
        assert_eq!(
            run("rbac.authorization.k8s.io", "RoleBinding", &changed, Some(&rb)),
            ["roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"ClusterRole\", Name:\"admin\"}: cannot change roleRef"]
        );
    }

    #[test]
    fn binding_target() {
        let b = json!({"target": {"kind": "Pod", "name": ""}});
        assert_eq!(
            run("", "Binding", &b, None),
            [
                "target.name: Required value",
                "target.kind: Not found: \"Pod\""
            ]
        );
    }

    #[test]
    fn pvc_requirements() {
        let pvc = json!({"spec": {}});
        assert_eq!(
            run("", "PersistentVolumeClaim", &pvc, None),
            [
                "spec.accessModes: Required value: at least 1 access mode is required",
                "spec.resources[storage]: Required value"
            ]
        );
    }
}
