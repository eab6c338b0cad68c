//! Pod and pod-template validation (`ValidatePodSpec`, `ValidatePodUpdate`).

use std::collections::BTreeSet;

use serde_json::Value;

use super::{check_enum, child, index, key, validate_annotations, validate_labels, Errors};
use crate::resources::json::{array_at, at, semantic_eq, str_at};
use crate::resources::names::{
    is_dns1123_label, is_dns1123_subdomain, is_env_var_name, is_valid_port_name, is_valid_port_num,
};
use crate::resources::quantity::Quantity;
use crate::resources::FieldError;

use crate::resources::defaults::pod::VOLUME_SOURCES;

pub(super) fn validate(
    group: &str,
    kind: &str,
    obj: &Value,
    old: Option<&Value>,
    errs: &mut Errors,
) {
    match (group, kind) {
        ("", "Pod") => {
            let empty = Value::Null;
            validate_pod_spec(obj.get("spec").unwrap_or(&empty), "spec", errs);
            match old {
                None => {
                    if !array_at(obj, "spec.ephemeralContainers").is_empty() {
                        errs.push(FieldError::forbidden(
                            "spec.ephemeralContainers",
                            "cannot be set on create",
                        ));
                    }
                }
                Some(old) => validate_pod_update(obj, old, errs),
            }
        }
        ("", "PodTemplate") => validate_pod_template(obj.get("template"), "template", errs),
        _ => {}
    }
}

fn dns_label(value: &Value, path: &str, errs: &mut Errors) {
    for msg in is_dns1123_label(value.as_str().unwrap_or_default()) {
        errs.push(FieldError::invalid(path, value, &msg));
    }
}

/// `ValidatePodTemplateSpec`: template metadata plus the pod spec.
pub fn validate_pod_template(template: Option<&Value>, path: &str, errs: &mut Errors) {
    let Some(t) = template.filter(|t| t.is_object()) else {
        errs.push(FieldError::required(path));
        return;
    };
    let meta = child(path, "metadata");
    validate_labels(at(t, "metadata.labels"), &child(&meta, "labels"), errs);
    validate_annotations(
        at(t, "metadata.annotations"),
        &child(&meta, "annotations"),
        errs,
    );
    let empty = Value::Null;
    validate_pod_spec(t.get("spec").unwrap_or(&empty), &child(path, "spec"), errs);
    if !array_at(t, "spec.ephemeralContainers").is_empty() {
        errs.push(FieldError::forbidden(
            child(path, "spec.ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
}

/// `ValidatePodSpec` for the checks clients commonly run into.
pub fn validate_pod_spec(spec: &Value, path: &str, errs: &mut Errors) {
    let volumes = validate_volumes(spec, &child(path, "volumes"), errs);
    validate_app_armor(
        at(spec, "securityContext.appArmorProfile"),
        &child(path, "securityContext.appArmorProfile"),
        errs,
    );
    let containers = array_at(spec, "containers");
    if containers.is_empty() {
        errs.push(FieldError::required(child(path, "containers")));
    }
    let mut names = BTreeSet::new();
    validate_containers(
        containers,
        &child(path, "containers"),
        &volumes,
        &mut names,
        errs,
    );
    validate_containers(
        array_at(spec, "initContainers"),
        &child(path, "initContainers"),
        &volumes,
        &mut names,
        errs,
    );
    for (i, c) in array_at(spec, "initContainers").iter().enumerate() {
        if let Some(rp) = c.get("restartPolicy").filter(|v| !v.is_null()) {
            if rp.as_str() != Some("Always") {
                errs.push(FieldError::not_supported(
                    child(&index(&child(path, "initContainers"), i), "restartPolicy"),
                    rp,
                    &["Always"],
                ));
            }
        }
    }
    match spec.get("restartPolicy") {
        None | Some(Value::Null) => errs.push(FieldError::required(child(path, "restartPolicy"))),
        Some(_) => check_enum(
            spec,
            path,
            "restartPolicy",
            &["Always", "OnFailure", "Never"],
            errs,
        ),
    }
    check_enum(
        spec,
        path,
        "dnsPolicy",
        &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        errs,
    );
    validate_labels(spec.get("nodeSelector"), &child(path, "nodeSelector"), errs);
    if let Some(sa) = spec.get("serviceAccountName").and_then(Value::as_str) {
        if !sa.is_empty() {
            for msg in is_dns1123_subdomain(sa) {
                errs.push(FieldError::invalid(
                    child(path, "serviceAccountName"),
                    &Value::String(sa.to_string()),
                    &msg,
                ));
            }
        }
    }
    if let Some(n) = spec.get("activeDeadlineSeconds").and_then(Value::as_i64) {
        if !(1..=i32::MAX as i64).contains(&n) {
            errs.push(FieldError::invalid(
                child(path, "activeDeadlineSeconds"),
                &Value::from(n),
                "must be between 1 and 2147483647, inclusive",
            ));
        }
    }
    for field in ["hostname", "subdomain"] {
        if let Some(v) = spec
            .get(field)
            .filter(|v| v.as_str().is_some_and(|s| !s.is_empty()))
        {
            dns_label(v, &child(path, field), errs);
        }
    }
    for (i, t) in array_at(spec, "tolerations").iter().enumerate() {
        let tp = index(&child(path, "tolerations"), i);
        check_enum(t, &tp, "operator", &["Equal", "Exists"], errs);
        if t.get("effect")
            .and_then(Value::as_str)
            .is_some_and(|e| !e.is_empty())
        {
            check_enum(
                t,
                &tp,
                "effect",
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
                errs,
            );
        }
        if str_at(t, "operator") == Some("Exists")
            && str_at(t, "value").is_some_and(|v| !v.is_empty())
        {
            errs.push(FieldError::invalid(
                child(&tp, "operator"),
                &t["value"],
                "value must be empty when `operator` is 'Exists'",
            ));
        }
    }
}

fn validate_volumes(spec: &Value, path: &str, errs: &mut Errors) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (i, v) in array_at(spec, "volumes").iter().enumerate() {
        let vp = index(path, i);
        let name = v.get("name").cloned().unwrap_or(Value::Null);
        let sources: Vec<&str> = VOLUME_SOURCES
            .iter()
            .copied()
            .filter(|s| v.get(*s).is_some_and(|x| !x.is_null()))
            .collect();
        if sources.is_empty() {
            errs.push(FieldError::required_detail(
                &vp,
                "must specify a volume type",
            ));
        } else if sources.len() > 1 {
            errs.push(FieldError::forbidden(
                child(&vp, sources[1]),
                "may not specify more than 1 volume type",
            ));
        }
        let n = name.as_str().unwrap_or_default();
        if n.is_empty() {
            errs.push(FieldError::required(child(&vp, "name")));
        } else {
            dns_label(&name, &child(&vp, "name"), errs);
        }
        if !names.insert(n.to_string()) {
            errs.push(FieldError::duplicate(child(&vp, "name"), &name));
        }
        if let Some(pvc) = v.get("persistentVolumeClaim").filter(|p| p.is_object()) {
            if str_at(pvc, "claimName").unwrap_or_default().is_empty() {
                errs.push(FieldError::required(child(
                    &vp,
                    "persistentVolumeClaim.claimName",
                )));
            }
        }
        if let Some(hp) = v.get("hostPath").filter(|p| p.is_object()) {
            if str_at(hp, "path").unwrap_or_default().is_empty() {
                errs.push(FieldError::required(child(&vp, "hostPath.path")));
            }
            check_enum(
                hp,
                &child(&vp, "hostPath"),
                "type",
                &[
                    "",
                    "BlockDevice",
                    "CharDevice",
                    "Directory",
                    "DirectoryOrCreate",
                    "File",
                    "FileOrCreate",
                    "Socket",
                ],
                errs,
            );
        }
    }
    names
}

fn validate_containers(
    containers: &[Value],
    path: &str,
    volumes: &BTreeSet<String>,
    names: &mut BTreeSet<String>,
    errs: &mut Errors,
) {
    for (i, c) in containers.iter().enumerate() {
        let cp = index(path, i);
        let name = c.get("name").cloned().unwrap_or(Value::Null);
        let n = name.as_str().unwrap_or_default();
        if n.is_empty() {
            errs.push(FieldError::required(child(&cp, "name")));
        } else {
            dns_label(&name, &child(&cp, "name"), errs);
        }
        if !n.is_empty() && !names.insert(n.to_string()) {
            errs.push(FieldError::duplicate(child(&cp, "name"), &name));
        }
        if str_at(c, "image").unwrap_or_default().trim().is_empty() {
            errs.push(FieldError::required(child(&cp, "image")));
        }
        match c.get("terminationMessagePolicy") {
            None | Some(Value::Null) => {
                errs.push(FieldError::required(child(&cp, "terminationMessagePolicy")))
            }
            Some(_) => check_enum(
                c,
                &cp,
                "terminationMessagePolicy",
                &["File", "FallbackToLogsOnError"],
                errs,
            ),
        }
        match c.get("imagePullPolicy") {
            None | Some(Value::Null) => {
                errs.push(FieldError::required(child(&cp, "imagePullPolicy")))
            }
            Some(_) => check_enum(
                c,
                &cp,
                "imagePullPolicy",
                &["Always", "IfNotPresent", "Never"],
                errs,
            ),
        }
        validate_ports(array_at(c, "ports"), &child(&cp, "ports"), errs);
        validate_env(array_at(c, "env"), &child(&cp, "env"), errs);
        validate_mounts(
            array_at(c, "volumeMounts"),
            &child(&cp, "volumeMounts"),
            volumes,
            errs,
        );
        validate_resources(c.get("resources"), &child(&cp, "resources"), errs);
        validate_app_armor(
            at(c, "securityContext.appArmorProfile"),
            &child(&cp, "securityContext.appArmorProfile"),
            errs,
        );
    }
}

/// `securityContext.appArmorProfile` (GA in 1.31): only a Localhost profile names a profile,
/// and it must.
fn validate_app_armor(profile: Option<&Value>, path: &str, errs: &mut Errors) {
    let Some(p) = profile.filter(|p| !p.is_null()) else {
        return;
    };
    let localhost = p.get("localhostProfile").filter(|v| !v.is_null());
    match str_at(p, "type") {
        Some("Localhost") => match localhost.and_then(Value::as_str) {
            Some(name) if name.trim() != name => errs.push(FieldError::invalid(
                child(path, "localhostProfile"),
                &Value::String(name.to_string()),
                "must not be padded with whitespace",
            )),
            Some(name) if !name.is_empty() => {}
            _ => errs.push(FieldError::required_detail(
                child(path, "localhostProfile"),
                "must be set when AppArmor type is Localhost",
            )),
        },
        Some("RuntimeDefault" | "Unconfined") => {
            if let Some(l) = localhost {
                errs.push(FieldError::invalid(
                    child(path, "localhostProfile"),
                    l,
                    "can only be set when AppArmor type is Localhost",
                ));
            }
        }
        None | Some("") => errs.push(FieldError::required_detail(
            child(path, "type"),
            "type is required when appArmorProfile is set",
        )),
        Some(_) => check_enum(
            p,
            path,
            "type",
            &["Localhost", "RuntimeDefault", "Unconfined"],
            errs,
        ),
    }
}

fn validate_ports(ports: &[Value], path: &str, errs: &mut Errors) {
    let mut names = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let pp = index(path, i);
        if let Some(name) = p
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        {
            let msgs = is_valid_port_name(name);
            if !msgs.is_empty() {
                for msg in msgs {
                    errs.push(FieldError::invalid(child(&pp, "name"), &p["name"], &msg));
                }
            } else if !names.insert(name.to_string()) {
                errs.push(FieldError::duplicate(child(&pp, "name"), &p["name"]));
            }
        }
        match p.get("containerPort").and_then(Value::as_i64) {
            None | Some(0) => errs.push(FieldError::required(child(&pp, "containerPort"))),
            Some(n) => {
                for msg in is_valid_port_num(n) {
                    errs.push(FieldError::invalid(
                        child(&pp, "containerPort"),
                        &Value::from(n),
                        &msg,
                    ));
                }
            }
        }
        if let Some(n) = p
            .get("hostPort")
            .and_then(Value::as_i64)
            .filter(|n| *n != 0)
        {
            for msg in is_valid_port_num(n) {
                errs.push(FieldError::invalid(
                    child(&pp, "hostPort"),
                    &Value::from(n),
                    &msg,
                ));
            }
        }
        match p.get("protocol") {
            None | Some(Value::Null) => errs.push(FieldError::required(child(&pp, "protocol"))),
            Some(_) => check_enum(p, &pp, "protocol", &["SCTP", "TCP", "UDP"], errs),
        }
    }
}

fn validate_env(env: &[Value], path: &str, errs: &mut Errors) {
    for (i, e) in env.iter().enumerate() {
        let ep = index(path, i);
        let name = e.get("name").cloned().unwrap_or(Value::Null);
        let n = name.as_str().unwrap_or_default();
        if n.is_empty() {
            errs.push(FieldError::required(child(&ep, "name")));
        } else {
            for msg in is_env_var_name(n) {
                errs.push(FieldError::invalid(child(&ep, "name"), &name, &msg));
            }
        }
        if let Some(from) = e.get("valueFrom").filter(|v| v.is_object()) {
            let sources = [
                "fieldRef",
                "resourceFieldRef",
                "configMapKeyRef",
                "secretKeyRef",
            ]
            .iter()
            .filter(|s| from.get(**s).is_some_and(|v| !v.is_null()))
            .count();
            if sources == 0 {
                errs.push(FieldError::invalid(
                    child(&ep, "valueFrom"),
                    &Value::String(String::new()),
                    "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
                ));
            } else if sources > 1 {
                errs.push(FieldError::invalid(
                    child(&ep, "valueFrom"),
                    &Value::String(String::new()),
                    "may not have more than one field specified at a time",
                ));
            }
            if e.get("value")
                .and_then(Value::as_str)
                .is_some_and(|v| !v.is_empty())
            {
                errs.push(FieldError::invalid(
                    child(&ep, "valueFrom"),
                    &Value::String(String::new()),
                    "may not be specified when `value` is not empty",
                ));
            }
        }
    }
}

fn validate_mounts(mounts: &[Value], path: &str, volumes: &BTreeSet<String>, errs: &mut Errors) {
    let mut points = BTreeSet::new();
    for (i, m) in mounts.iter().enumerate() {
        let mp = index(path, i);
        let name = m.get("name").cloned().unwrap_or(Value::Null);
        let n = name.as_str().unwrap_or_default();
        if n.is_empty() {
            errs.push(FieldError::required(child(&mp, "name")));
        }
        if !volumes.contains(n) {
            errs.push(FieldError::not_found(
                child(&mp, "name"),
                &Value::String(n.to_string()),
            ));
        }
        let mount_path = m.get("mountPath").cloned().unwrap_or(Value::Null);
        let p = mount_path.as_str().unwrap_or_default();
        if p.is_empty() {
            errs.push(FieldError::required(child(&mp, "mountPath")));
        }
        if !points.insert(p.to_string()) {
            errs.push(FieldError::invalid(
                child(&mp, "mountPath"),
                &mount_path,
                "must be unique",
            ));
        }
    }
}

fn is_standard_container_resource(name: &str) -> bool {
    matches!(name, "cpu" | "memory" | "ephemeral-storage")
        || name.starts_with("hugepages-")
        || (name.contains('/')
            && !name.starts_with("kubernetes.io/")
            && !name.starts_with("requests."))
}

fn validate_resources(res: Option<&Value>, path: &str, errs: &mut Errors) {
    let Some(res) = res.filter(|r| r.is_object()) else {
        return;
    };
    let limits = res.get("limits").and_then(Value::as_object);
    let requests = res.get("requests").and_then(Value::as_object);
    let mut check_map = |map: Option<&serde_json::Map<String, Value>>, sub: &str| {
        for (name, q) in map.into_iter().flatten() {
            let fp = key(&child(path, sub), name);
            if !is_standard_container_resource(name) {
                errs.push(FieldError::invalid(
                    &fp,
                    &Value::String(name.clone()),
                    "must be a standard resource for containers",
                ));
            }
            match Quantity::from_json(q) {
                None => errs.push(FieldError::invalid(
                    &fp,
                    q,
                    crate::resources::quantity::PARSE_ERROR,
                )),
                Some(qty) if qty.nanos < 0 => errs.push(FieldError::invalid(
                    &fp,
                    &Value::String(qty.canonical()),
                    "must be greater than or equal to 0",
                )),
                _ => {}
            }
        }
    };
    check_map(limits, "limits");
    check_map(requests, "requests");
    for (name, q) in requests.into_iter().flatten() {
        let (Some(req), Some(lim)) = (
            Quantity::from_json(q),
            limits
                .and_then(|l| l.get(name))
                .and_then(Quantity::from_json),
        ) else {
            if name.starts_with("hugepages-") && limits.and_then(|l| l.get(name)).is_none() {
                errs.push(FieldError::required_detail(
                    child(path, "limits"),
                    "Limit must be set for non overcommitable resources",
                ));
            }
            continue;
        };
        let overcommit = !name.starts_with("hugepages-") && !name.contains('/');
        if req != lim && !overcommit {
            errs.push(FieldError::invalid(
                child(path, "requests"),
                &Value::String(req.canonical()),
                &format!("must be equal to {name} limit of {}", lim.canonical()),
            ));
        } else if req > lim {
            errs.push(FieldError::invalid(
                child(path, "requests"),
                &Value::String(req.canonical()),
                &format!(
                    "must be less than or equal to {name} limit of {}",
                    lim.canonical()
                ),
            ));
        }
    }
}

const POD_UPDATE_FORBIDDEN: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// `ValidatePodUpdate`: only images, activeDeadlineSeconds (shortened), tolerations (added),
/// scheduling gates (removed) and a negative grace period (set to 1) may change.
fn validate_pod_update(new: &Value, old: &Value, errs: &mut Errors) {
    let new_spec = new.get("spec").cloned().unwrap_or(Value::Null);
    let old_spec = old.get("spec").cloned().unwrap_or(Value::Null);
    for key_name in ["containers", "initContainers"] {
        let n = array_at(&new_spec, key_name);
        let o = array_at(&old_spec, key_name);
        if n.len() != o.len() {
            errs.push(FieldError::forbidden(
                format!("spec.{key_name}"),
                "pod updates may not add or remove containers",
            ));
            return;
        }
    }
    if let Some(n) = new_spec
        .get("activeDeadlineSeconds")
        .and_then(Value::as_i64)
    {
        if !(0..=i32::MAX as i64).contains(&n) {
            errs.push(FieldError::invalid(
                "spec.activeDeadlineSeconds",
                &Value::from(n),
                "must be between 0 and 2147483647, inclusive",
            ));
            return;
        }
        if let Some(o) = old_spec
            .get("activeDeadlineSeconds")
            .and_then(Value::as_i64)
        {
            if o < n {
                errs.push(FieldError::invalid(
                    "spec.activeDeadlineSeconds",
                    &Value::from(n),
                    "must be less than or equal to previous value",
                ));
                return;
            }
        }
    } else if old_spec
        .get("activeDeadlineSeconds")
        .is_some_and(|v| !v.is_null())
    {
        errs.push(FieldError::invalid(
            "spec.activeDeadlineSeconds",
            &Value::Null,
            "must not update from a positive integer to nil value",
        ));
    }
    let old_tolerations = array_at(&old_spec, "tolerations");
    let new_tolerations = array_at(&new_spec, "tolerations");
    for t in old_tolerations {
        if !new_tolerations.iter().any(|n| semantic_eq(n, t)) {
            errs.push(FieldError::forbidden(
                "spec.tolerations",
                "existing toleration can not be modified except its tolerationSeconds",
            ));
            break;
        }
    }
    let old_gates = array_at(&old_spec, "schedulingGates");
    for g in array_at(&new_spec, "schedulingGates") {
        if !old_gates.iter().any(|o| semantic_eq(o, g)) {
            errs.push(FieldError::forbidden(
                "spec.schedulingGates",
                "only deletion is allowed, but found new scheduling gate",
            ));
            break;
        }
    }
    if semantic_eq(&new_spec, &old_spec) {
        return;
    }
    let mut munged = new_spec.clone();
    for key_name in ["containers", "initContainers"] {
        if let Some(items) = munged.get_mut(key_name).and_then(Value::as_array_mut) {
            for (i, c) in items.iter_mut().enumerate() {
                if let Some(old_image) = array_at(&old_spec, key_name)
                    .get(i)
                    .and_then(|o| o.get("image"))
                {
                    c["image"] = old_image.clone();
                }
            }
        }
    }
    if let Some(m) = munged.as_object_mut() {
        for k in ["activeDeadlineSeconds", "schedulingGates", "tolerations"] {
            match old_spec.get(k) {
                Some(v) => {
                    m.insert(k.to_string(), v.clone());
                }
                None => {
                    m.remove(k);
                }
            }
        }
        let old_grace = old_spec
            .get("terminationGracePeriodSeconds")
            .and_then(Value::as_i64);
        let new_grace = m
            .get("terminationGracePeriodSeconds")
            .and_then(Value::as_i64);
        if old_grace.is_some_and(|g| g < 0) && new_grace == Some(1) {
            m.insert(
                "terminationGracePeriodSeconds".into(),
                Value::from(old_grace.unwrap_or(1)),
            );
        }
    }
    if !semantic_eq(&munged, &old_spec) {
        errs.push(FieldError::forbidden(
            "spec",
            &format!("{POD_UPDATE_FORBIDDEN}\n{}", spec_diff(&old_spec, &munged)),
        ));
    }
}

/// Existing ephemeral containers may be neither removed nor changed (matched by name, since
/// patches do not keep their order); only `pods/ephemeralcontainers` adds new ones.
pub fn validate_ephemeral_containers_update(new: &Value, old: &Value, errs: &mut Errors) {
    let new_containers = array_at(new, "spec.ephemeralContainers");
    for o in array_at(old, "spec.ephemeralContainers") {
        let name = str_at(o, "name").unwrap_or_default();
        match new_containers
            .iter()
            .find(|n| str_at(n, "name").unwrap_or_default() == name)
        {
            None => errs.push(FieldError::forbidden(
                "spec.ephemeralContainers",
                &format!("existing ephemeral containers \"{name}\" may not be removed\n"),
            )),
            Some(n) if !semantic_eq(n, o) => errs.push(FieldError::forbidden(
                "spec.ephemeralContainers",
                &format!("existing ephemeral containers \"{name}\" may not be changed\n"),
            )),
            Some(_) => {}
        }
    }
}

/// A short description of which top-level spec fields differ (upstream prints a `cmp.Diff`).
fn spec_diff(old: &Value, new: &Value) -> String {
    let keys: BTreeSet<&String> = old
        .as_object()
        .into_iter()
        .flat_map(|m| m.keys())
        .chain(new.as_object().into_iter().flat_map(|m| m.keys()))
        .collect();
    let mut lines = Vec::new();
    for k in keys {
        let o = old.get(k.as_str()).unwrap_or(&Value::Null);
        let n = new.get(k.as_str()).unwrap_or(&Value::Null);
        if !semantic_eq(o, n) {
            lines.push(format!("  spec.{k}:\n  - {o}\n  + {n}"));
        }
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msgs(errs: &Errors) -> Vec<String> {
        errs.iter().map(|e| e.message.clone()).collect()
    }

    fn good_spec() -> Value {
        json!({"restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
            "containers": [{"name": "web", "image": "nginx", "imagePullPolicy": "Always",
                "terminationMessagePolicy": "File", "ports": [{"containerPort": 80, "protocol": "TCP"}]}]})
    }

    #[test]
    fn valid_spec_has_no_errors() {
        let mut errs = Errors::new();
        validate_pod_spec(&good_spec(), "spec", &mut errs);
        assert!(errs.is_empty(), "{errs:?}");
    }

    #[test]
    fn required_containers_and_images() {
        let mut errs = Errors::new();
        validate_pod_spec(&json!({"restartPolicy": "Always"}), "spec", &mut errs);
        assert_eq!(msgs(&errs), ["spec.containers: Required value"]);

        let mut spec = good_spec();
        spec["containers"][0]["image"] = json!("");
        spec["containers"][0]["name"] = json!("Web");
        let mut errs = Errors::new();
        validate_pod_spec(&spec, "spec.template.spec", &mut errs);
        let m = msgs(&errs);
        assert!(m[0].starts_with("spec.template.spec.containers[0].name: Invalid value: \"Web\": a lowercase RFC 1123 label"));
        assert_eq!(
            m[1],
            "spec.template.spec.containers[0].image: Required value"
        );
    }

    #[test]
    fn enums_ports_and_duplicates() {
        let mut spec = good_spec();
        spec["restartPolicy"] = json!("Sometimes");
        spec["containers"][0]["ports"][0] = json!({"containerPort": 70000, "protocol": "HTTP"});
        spec["containers"][0]["imagePullPolicy"] = json!("Maybe");
        let first = spec["containers"][0].clone();
        spec["containers"].as_array_mut().unwrap().push(first);
        let mut errs = Errors::new();
        validate_pod_spec(&spec, "spec", &mut errs);
        let m = msgs(&errs);
        assert!(m.contains(&"spec.containers[0].imagePullPolicy: Unsupported value: \"Maybe\": supported values: \"Always\", \"IfNotPresent\", \"Never\"".to_string()));
        assert!(m.contains(&"spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive".to_string()));
        assert!(m.contains(&"spec.containers[0].ports[0].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"".to_string()));
        assert!(m.contains(&"spec.containers[1].name: Duplicate value: \"web\"".to_string()));
        assert!(m.contains(&"spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"".to_string()));
    }

    #[test]
    fn mounts_and_resources() {
        let mut spec = good_spec();
        spec["containers"][0]["volumeMounts"] = json!([{"name": "data", "mountPath": "/data"}]);
        spec["containers"][0]["resources"] =
            json!({"limits": {"cpu": "1"}, "requests": {"cpu": "2"}});
        let mut errs = Errors::new();
        validate_pod_spec(&spec, "spec", &mut errs);
        assert_eq!(
            msgs(&errs),
            [
                "spec.containers[0].volumeMounts[0].name: Not found: \"data\"",
                "spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1",
            ]
        );
    }

    #[test]
    fn app_armor_profiles_name_a_profile_only_when_localhost() {
        let mut spec = good_spec();
        spec["securityContext"] = json!({"appArmorProfile": {"type": "RuntimeDefault"}});
        spec["containers"][0]["securityContext"] =
            json!({"appArmorProfile": {"type": "Localhost", "localhostProfile": "k8s-deny"}});
        let mut errs = Errors::new();
        validate_pod_spec(&spec, "spec", &mut errs);
        assert!(msgs(&errs).is_empty(), "{:?}", msgs(&errs));
        spec["securityContext"] =
            json!({"appArmorProfile": {"type": "Unconfined", "localhostProfile": "x"}});
        spec["containers"][0]["securityContext"] =
            json!({"appArmorProfile": {"type": "Localhost"}});
        let mut errs = Errors::new();
        validate_pod_spec(&spec, "spec", &mut errs);
        assert_eq!(
            msgs(&errs),
            [
                "spec.securityContext.appArmorProfile.localhostProfile: Invalid value: \"x\": can only be set when AppArmor type is Localhost",
                "spec.containers[0].securityContext.appArmorProfile.localhostProfile: Required value: must be set when AppArmor type is Localhost",
            ]
        );
    }

    #[test]
    fn pod_update_allows_image_and_rejects_other_changes() {
        let old = json!({"spec": good_spec()});
        let mut new = old.clone();
        new["spec"]["containers"][0]["image"] = json!("nginx:1.27");
        let mut errs = Errors::new();
        validate_pod_update(&new, &old, &mut errs);
        assert!(errs.is_empty(), "{errs:?}");

        new["spec"]["restartPolicy"] = json!("Never");
        let mut errs = Errors::new();
        validate_pod_update(&new, &old, &mut errs);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "spec");
        assert!(errs[0]
            .message
            .starts_with(&format!("spec: Forbidden: {POD_UPDATE_FORBIDDEN}\n")));
        assert!(errs[0].message.contains("spec.restartPolicy"));

        let mut more = old.clone();
        more["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "b", "image": "x"}));
        let mut errs = Errors::new();
        validate_pod_update(&more, &old, &mut errs);
        assert_eq!(
            msgs(&errs),
            ["spec.containers: Forbidden: pod updates may not add or remove containers"]
        );
    }

    #[test]
    fn tolerations_can_only_be_added() {
        let mut old = json!({"spec": good_spec()});
        old["spec"]["tolerations"] = json!([{"key": "a", "operator": "Exists"}]);
        let mut added = old.clone();
        added["spec"]["tolerations"]
            .as_array_mut()
            .unwrap()
            .push(json!({"key": "b", "operator": "Exists"}));
        let mut errs = Errors::new();
        validate_pod_update(&added, &old, &mut errs);
        assert!(errs.is_empty(), "{errs:?}");
        let mut removed = old.clone();
        removed["spec"]["tolerations"] = json!([]);
        let mut errs = Errors::new();
        validate_pod_update(&removed, &old, &mut errs);
        assert!(!errs.is_empty());
    }

    #[test]
    fn ephemeral_containers_are_added_only_through_their_subresource() {
        let old = json!({"spec": good_spec()});
        let mut added = old.clone();
        added["spec"]["ephemeralContainers"] = json!([{"name": "debug", "image": "busybox"}]);
        // Through the pod itself: a forbidden spec change.
        let mut errs = Errors::new();
        validate_pod_update(&added, &old, &mut errs);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0]
            .message
            .contains("pod updates may not change fields"));
        // The subresource's own rule: adding is fine, removing or changing is not.
        let mut errs = Errors::new();
        validate_ephemeral_containers_update(&added, &old, &mut errs);
        assert!(errs.is_empty(), "{errs:?}");
        validate_ephemeral_containers_update(&old, &added, &mut errs);
        let mut changed = added.clone();
        changed["spec"]["ephemeralContainers"][0]["image"] = json!("alpine");
        validate_ephemeral_containers_update(&changed, &added, &mut errs);
        assert_eq!(
            msgs(&errs),
            [
                "spec.ephemeralContainers: Forbidden: existing ephemeral containers \"debug\" may not be removed\n",
                "spec.ephemeralContainers: Forbidden: existing ephemeral containers \"debug\" may not be changed\n",
            ]
        );
    }
}
