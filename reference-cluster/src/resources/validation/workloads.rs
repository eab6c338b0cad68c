//! Validation of the workload controllers (apps, batch, autoscaling, policy).

use serde_json::Value;

use super::{
    check_enum, child, go_label_selector, go_labels_at, invalid_raw, validate_label_selector,
    validate_nonnegative, validate_pod_template, Errors,
};
use crate::resources::json::{at, bool_at, i64_at, semantic_eq, str_at, string_map};
use crate::resources::labels::LabelSelector;
use crate::resources::FieldError;

pub(super) fn validate(
    group: &str,
    kind: &str,
    obj: &Value,
    old: Option<&Value>,
    errs: &mut Errors,
) {
    match (group, kind) {
        ("apps", "Deployment") => {
            validate_replicated(obj, "deployment", true, errs);
            validate_deployment_strategy(obj, errs);
            validate_nonnegative(obj, "spec.revisionHistoryLimit", errs);
            if let Some(pd) = i64_at(obj, "spec.progressDeadlineSeconds") {
                validate_nonnegative(obj, "spec.progressDeadlineSeconds", errs);
                if pd <= i64_at(obj, "spec.minReadySeconds").unwrap_or(0) {
                    errs.push(FieldError::invalid(
                        "spec.progressDeadlineSeconds",
                        &Value::from(pd),
                        "must be greater than minReadySeconds",
                    ));
                }
            }
            if let Some(old) = old {
                immutable_selector(obj, old, errs);
            }
        }
        ("apps", "ReplicaSet") => {
            // Upstream's ReplicaSet validation reuses the Deployment wording.
            validate_replicated(obj, "deployment", true, errs);
            if let Some(old) = old {
                immutable_selector(obj, old, errs);
            }
        }
        ("apps", "DaemonSet") => {
            validate_replicated(obj, "daemonset", false, errs);
            check_enum(
                obj,
                "",
                "spec.updateStrategy.type",
                &["OnDelete", "RollingUpdate"],
                errs,
            );
            if let Some(old) = old {
                immutable_selector(obj, old, errs);
            }
        }
        ("apps", "StatefulSet") => {
            validate_replicated(obj, "statefulset", true, errs);
            if let Some(p) = at(obj, "spec.podManagementPolicy").filter(|p| !p.is_null()) {
                if !matches!(p.as_str(), Some("OrderedReady" | "Parallel")) {
                    errs.push(FieldError::invalid(
                        "spec.podManagementPolicy",
                        p,
                        "must be 'OrderedReady' or 'Parallel'",
                    ));
                }
            }
            if let Some(t) = at(obj, "spec.updateStrategy.type").filter(|p| !p.is_null()) {
                if !matches!(t.as_str(), Some("RollingUpdate" | "OnDelete")) {
                    errs.push(FieldError::invalid(
                        "spec.updateStrategy",
                        t,
                        "must be 'RollingUpdate' or 'OnDelete'",
                    ));
                }
            }
            if let Some(old) = old {
                validate_stateful_set_update(obj, old, errs);
            }
        }
        ("", "ReplicationController") => validate_replication_controller(obj, errs),
        ("batch", "Job") => {
            validate_job_spec(obj, "spec", true, errs);
            match old {
                None => validate_generated_selector(obj, errs),
                Some(old) => validate_job_update(obj, old, errs),
            }
        }
        ("batch", "CronJob") => validate_cron_job(obj, errs),
        ("autoscaling", "HorizontalPodAutoscaler") => validate_hpa(obj, errs),
        ("policy", "PodDisruptionBudget") => {
            let min = at(obj, "spec.minAvailable").filter(|v| !v.is_null());
            let max = at(obj, "spec.maxUnavailable").filter(|v| !v.is_null());
            if min.is_some() && max.is_some() {
                errs.push(invalid_raw(
                    "spec",
                    &at(obj, "spec").map(Value::to_string).unwrap_or_default(),
                    "minAvailable and maxUnavailable cannot be both set",
                ));
            }
            for (path, v) in [("spec.minAvailable", min), ("spec.maxUnavailable", max)] {
                if let Some(v) = v {
                    validate_int_or_percent(v, path, errs);
                }
            }
            validate_label_selector(at(obj, "spec.selector"), "spec.selector", errs);
        }
        _ => {}
    }
}

fn validate_int_or_percent(v: &Value, path: &str, errs: &mut Errors) {
    match v {
        Value::Number(n) => {
            if n.as_i64().is_some_and(|i| i < 0) {
                errs.push(FieldError::invalid(
                    path,
                    v,
                    "must be greater than or equal to 0",
                ));
            }
        }
        Value::String(s) => {
            let pct = s.strip_suffix('%').and_then(|n| n.parse::<i64>().ok());
            match pct {
                None => errs.push(FieldError::invalid(
                    path,
                    v,
                    "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
                )),
                Some(p) if p > 100 => errs.push(FieldError::invalid(
                    path,
                    v,
                    "must not be greater than 100%",
                )),
                _ => {}
            }
        }
        _ => errs.push(FieldError::invalid(
            path,
            v,
            "must be an integer or percentage",
        )),
    }
}

/// Selector + template checks shared by Deployment, ReplicaSet, StatefulSet and DaemonSet.
fn validate_replicated(obj: &Value, what: &str, has_replicas: bool, errs: &mut Errors) {
    if has_replicas {
        validate_nonnegative(obj, "spec.replicas", errs);
    }
    validate_nonnegative(obj, "spec.minReadySeconds", errs);
    let selector = at(obj, "spec.selector").filter(|s| !s.is_null());
    match selector {
        None => errs.push(FieldError::required("spec.selector")),
        Some(sel) => {
            validate_label_selector(Some(sel), "spec.selector", errs);
            if LabelSelector::from_json(sel).is_ok_and(|s| s.is_everything()) {
                errs.push(invalid_raw(
                    "spec.selector",
                    &go_label_selector(sel),
                    &format!("empty selector is invalid for {what}"),
                ));
            }
        }
    }
    let template = at(obj, "spec.template");
    match selector.map(LabelSelector::from_json) {
        Some(Err(_)) => errs.push(invalid_raw(
            "spec.selector",
            &selector.map(go_label_selector).unwrap_or_default(),
            "invalid label selector",
        )),
        sel => {
            if let (Some(Ok(sel)), Some(t)) = (sel, template) {
                if !sel.is_everything() && !sel.matches(&string_map(t, "metadata.labels")) {
                    errs.push(invalid_raw(
                        "spec.template.metadata.labels",
                        &go_labels_at(t, "metadata.labels"),
                        "`selector` does not match template `labels`",
                    ));
                }
            }
            if what == "statefulset" {
                validate_template_metadata(template, "spec.template", errs);
            } else {
                validate_pod_template(template, "spec.template", errs);
            }
            if let Some(t) = template {
                if let Some(rp) = at(t, "spec.restartPolicy").filter(|v| !v.is_null()) {
                    if rp.as_str() != Some("Always") {
                        errs.push(FieldError::not_supported(
                            "spec.template.spec.restartPolicy",
                            rp,
                            &["Always"],
                        ));
                    }
                }
                if at(t, "spec.activeDeadlineSeconds").is_some_and(|v| !v.is_null()) {
                    errs.push(FieldError::forbidden(
                        "spec.template.spec.activeDeadlineSeconds",
                        "activeDeadlineSeconds in ReplicaSet is not Supported",
                    ));
                }
            }
        }
    }
}

/// Upstream checks only the metadata of a StatefulSet's template: its containers may mount
/// the volumeClaimTemplates, which are not volumes of the template, and the pods themselves
/// are validated when the controller creates them.
fn validate_template_metadata(template: Option<&Value>, path: &str, errs: &mut Errors) {
    let Some(t) = template.filter(|t| t.is_object()) else {
        errs.push(FieldError::required(path));
        return;
    };
    let meta = child(path, "metadata");
    super::validate_labels(at(t, "metadata.labels"), &child(&meta, "labels"), errs);
    super::validate_annotations(
        at(t, "metadata.annotations"),
        &child(&meta, "annotations"),
        errs,
    );
}

fn validate_deployment_strategy(obj: &Value, errs: &mut Errors) {
    let Some(strategy) = at(obj, "spec.strategy") else {
        return;
    };
    match str_at(strategy, "type") {
        Some("Recreate") => {
            if strategy.get("rollingUpdate").is_some_and(|r| !r.is_null()) {
                errs.push(FieldError::forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        Some("RollingUpdate") => {
            let ru = strategy
                .get("rollingUpdate")
                .cloned()
                .unwrap_or(Value::Null);
            let mu = ru.get("maxUnavailable").cloned().unwrap_or(Value::Null);
            let ms = ru.get("maxSurge").cloned().unwrap_or(Value::Null);
            for (name, v) in [("maxUnavailable", &mu), ("maxSurge", &ms)] {
                if !v.is_null() {
                    validate_int_or_percent(
                        v,
                        &format!("spec.strategy.rollingUpdate.{name}"),
                        errs,
                    );
                }
            }
            let is_zero = |v: &Value| v.as_i64() == Some(0) || v.as_str() == Some("0%");
            if is_zero(&mu) && is_zero(&ms) {
                errs.push(FieldError::invalid(
                    "spec.strategy.rollingUpdate.maxUnavailable",
                    &mu,
                    "may not be 0 when `maxSurge` is 0",
                ));
            }
        }
        _ => {
            if let Some(t) = strategy.get("type") {
                errs.push(FieldError::not_supported(
                    "spec.strategy.type",
                    t,
                    &["Recreate", "RollingUpdate"],
                ));
            }
        }
    }
}

fn immutable_selector(obj: &Value, old: &Value, errs: &mut Errors) {
    let new_sel = at(obj, "spec.selector").cloned().unwrap_or(Value::Null);
    let old_sel = at(old, "spec.selector").cloned().unwrap_or(Value::Null);
    if !semantic_eq(&new_sel, &old_sel) {
        errs.push(invalid_raw(
            "spec.selector",
            &go_label_selector(&new_sel),
            "field is immutable",
        ));
    }
}

fn validate_stateful_set_update(obj: &Value, old: &Value, errs: &mut Errors) {
    const MUTABLE: &[&str] = &[
        "replicas",
        "ordinals",
        "template",
        "updateStrategy",
        "persistentVolumeClaimRetentionPolicy",
        "minReadySeconds",
    ];
    let strip = |v: &Value| {
        crate::resources::json::without_keys(v.get("spec").unwrap_or(&Value::Null), MUTABLE)
    };
    if !semantic_eq(&strip(obj), &strip(old)) {
        errs.push(FieldError::forbidden(
            "spec",
            "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
        ));
    }
}

fn validate_replication_controller(obj: &Value, errs: &mut Errors) {
    validate_nonnegative(obj, "spec.minReadySeconds", errs);
    validate_nonnegative(obj, "spec.replicas", errs);
    let selector = string_map(obj, "spec.selector");
    if selector.is_empty() {
        errs.push(FieldError::required("spec.selector"));
    }
    let Some(t) = at(obj, "spec.template").filter(|t| t.is_object()) else {
        errs.push(FieldError::required("spec.template"));
        return;
    };
    let labels = string_map(t, "metadata.labels");
    if !selector.is_empty() && !selector.iter().all(|(k, v)| labels.get(k) == Some(v)) {
        errs.push(invalid_raw(
            "spec.template.metadata.labels",
            &go_labels_at(t, "metadata.labels"),
            "`selector` does not match template `labels`",
        ));
    }
    validate_pod_template(Some(t), "spec.template", errs);
    if let Some(rp) = at(t, "spec.restartPolicy").filter(|v| !v.is_null()) {
        if rp.as_str() != Some("Always") {
            errs.push(FieldError::not_supported(
                "spec.template.spec.restartPolicy",
                rp,
                &["Always"],
            ));
        }
    }
}

/// `validateJobSpec`; `require_selector` is false inside a CronJob's job template, where the
/// selector is generated later.
fn validate_job_spec(obj: &Value, base: &str, require_selector: bool, errs: &mut Errors) {
    for f in [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
    ] {
        validate_nonnegative(obj, &child(base, f), errs);
    }
    let spec = at(obj, base).cloned().unwrap_or(Value::Null);
    if let Some(mode) = spec.get("completionMode").filter(|m| !m.is_null()) {
        match mode.as_str() {
            Some("NonIndexed") => {}
            Some("Indexed") => {
                if spec.get("completions").is_none_or(Value::is_null) {
                    errs.push(FieldError::required_detail(
                        child(base, "completions"),
                        "when completion mode is Indexed",
                    ));
                }
            }
            _ => errs.push(FieldError::not_supported(
                child(base, "completionMode"),
                mode,
                &["NonIndexed", "Indexed"],
            )),
        }
    }
    check_enum(
        &spec,
        base,
        "podReplacementPolicy",
        &["TerminatingOrFailed", "Failed"],
        errs,
    );
    let template = spec.get("template");
    if require_selector {
        match spec.get("selector").filter(|s| !s.is_null()) {
            None => errs.push(FieldError::required(child(base, "selector"))),
            Some(sel) => {
                validate_label_selector(Some(sel), &child(base, "selector"), errs);
                if let (Ok(s), Some(t)) = (LabelSelector::from_json(sel), template) {
                    if !s.matches(&string_map(t, "metadata.labels")) {
                        errs.push(invalid_raw(
                            child(base, "template.metadata.labels"),
                            &go_labels_at(t, "metadata.labels"),
                            "`selector` does not match template `labels`",
                        ));
                    }
                }
            }
        }
    }
    validate_pod_template(template, &child(base, "template"), errs);
    if let Some(t) = template {
        let rp = t.get("spec").and_then(|s| s.get("restartPolicy"));
        if let Some(rp) = rp.filter(|r| !r.is_null()) {
            if !matches!(rp.as_str(), Some("OnFailure" | "Never")) {
                errs.push(FieldError::not_supported(
                    child(base, "template.spec.restartPolicy"),
                    rp,
                    &["OnFailure", "Never"],
                ));
            }
        }
    }
}

const JOB_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
const LEGACY_UID_LABEL: &str = "controller-uid";
const LEGACY_NAME_LABEL: &str = "job-name";

/// `ValidateGeneratedSelector`: unless `manualSelector`, the template must carry the generated
/// labels and the selector must be the generated one.
fn validate_generated_selector(obj: &Value, errs: &mut Errors) {
    if bool_at(obj, "spec.manualSelector") == Some(true) {
        return;
    }
    if !at(obj, "spec.template.metadata.labels").is_some_and(Value::is_object) {
        return;
    }
    let uid = str_at(obj, "metadata.uid").unwrap_or_default();
    let name = str_at(obj, "metadata.name").unwrap_or_default();
    if uid.is_empty() {
        errs.push(FieldError::required("metadata.uid"));
    }
    let labels_map = string_map(obj, "spec.template.metadata.labels");
    for (k, want) in [
        (LEGACY_UID_LABEL, uid),
        (LEGACY_NAME_LABEL, name),
        (JOB_UID_LABEL, uid),
        (JOB_NAME_LABEL, name),
    ] {
        let path = format!("spec.template.metadata.labels[{k}]");
        match labels_map.get(k) {
            None => errs.push(FieldError::required_detail(path, want)),
            Some(have) if have != want => errs.push(invalid_raw(
                path,
                &super::go_string_map(Some(&labels_map)),
                &format!("must be '{want}'"),
            )),
            _ => {}
        }
    }
    let expected: std::collections::BTreeMap<String, String> = [
        (JOB_UID_LABEL, uid),
        (JOB_NAME_LABEL, name),
        (LEGACY_UID_LABEL, uid),
        (LEGACY_NAME_LABEL, name),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if let Some(sel) = at(obj, "spec.selector") {
        if LabelSelector::from_json(sel).is_ok_and(|s| !s.matches(&expected)) {
            errs.push(invalid_raw(
                "spec.selector",
                &go_label_selector(sel),
                "`selector` not auto-generated",
            ));
        }
    }
}

fn validate_job_update(obj: &Value, old: &Value, errs: &mut Errors) {
    immutable_selector(obj, old, errs);
    for f in ["completionMode", "podFailurePolicy", "backoffLimitPerIndex"] {
        let path = format!("spec.{f}");
        let n = at(obj, &path).cloned().unwrap_or(Value::Null);
        let o = at(old, &path).cloned().unwrap_or(Value::Null);
        if !semantic_eq(&n, &o) {
            errs.push(invalid_raw(&path, &n.to_string(), "field is immutable"));
        }
    }
    let n_comp = at(obj, "spec.completions").cloned().unwrap_or(Value::Null);
    let o_comp = at(old, "spec.completions").cloned().unwrap_or(Value::Null);
    let indexed = str_at(obj, "spec.completionMode") == Some("Indexed");
    if !semantic_eq(&n_comp, &o_comp) && !indexed {
        errs.push(FieldError::invalid(
            "spec.completions",
            &n_comp,
            "field is immutable",
        ));
    }
    // The template may change only while a job is suspended and has never started.
    let suspended = bool_at(old, "spec.suspend") == Some(true);
    let started = at(old, "status.startTime").is_some_and(|v| !v.is_null());
    let n_t = at(obj, "spec.template").cloned().unwrap_or(Value::Null);
    let o_t = at(old, "spec.template").cloned().unwrap_or(Value::Null);
    let template_mutable = suspended && !started;
    if !template_mutable && !semantic_eq(&n_t, &o_t) {
        errs.push(invalid_raw(
            "spec.template",
            &n_t.to_string(),
            "field is immutable",
        ));
    }
}

fn validate_cron_job(obj: &Value, errs: &mut Errors) {
    if let Some(name) = str_at(obj, "metadata.name") {
        if name.len() > 52 {
            errs.push(FieldError::invalid(
                "metadata.name",
                &Value::String(name.to_string()),
                "must be no more than 52 characters",
            ));
        }
    }
    match str_at(obj, "spec.schedule") {
        None | Some("") => errs.push(FieldError::required("spec.schedule")),
        Some(s) => {
            if let Err(e) = validate_schedule(s) {
                errs.push(FieldError::invalid(
                    "spec.schedule",
                    &Value::String(s.into()),
                    &e,
                ));
            }
            if s.contains("TZ") {
                errs.push(FieldError::invalid(
                    "spec.schedule",
                    &Value::String(s.into()),
                    "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
                ));
            }
        }
    }
    check_enum(
        obj,
        "",
        "spec.concurrencyPolicy",
        &["Allow", "Forbid", "Replace"],
        errs,
    );
    for f in [
        "spec.startingDeadlineSeconds",
        "spec.successfulJobsHistoryLimit",
        "spec.failedJobsHistoryLimit",
    ] {
        validate_nonnegative(obj, f, errs);
    }
    let jt = "spec.jobTemplate.spec";
    if at(obj, &format!("{jt}.selector")).is_some_and(|s| !s.is_null()) {
        errs.push(invalid_raw(
            format!("{jt}.selector"),
            &at(obj, &format!("{jt}.selector"))
                .map(go_label_selector)
                .unwrap_or_default(),
            "`selector` will be auto-generated",
        ));
    }
    if bool_at(obj, &format!("{jt}.manualSelector")) == Some(true) {
        errs.push(FieldError::not_supported(
            format!("{jt}.manualSelector"),
            &Value::Bool(true),
            &["nil", "false"],
        ));
    }
    validate_job_spec(obj, jt, false, errs);
}

/// The checks robfig/cron's standard parser makes, with its error texts.
pub fn validate_schedule(schedule: &str) -> Result<(), String> {
    let s = schedule.trim();
    if let Some(desc) = s.strip_prefix('@') {
        return match desc {
            "yearly" | "annually" | "monthly" | "weekly" | "daily" | "midnight" | "hourly" => {
                Ok(())
            }
            _ if desc.starts_with("every ") => Ok(()),
            _ => Err(format!("unrecognized descriptor: {s}")),
        };
    }
    let fields: Vec<&str> = s.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    const MONTHS: &[&str] = &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    let bounds: [(u32, u32, &[&str], u32); 5] = [
        (0, 59, &[], 0),
        (0, 23, &[], 0),
        (1, 31, &[], 0),
        (1, 12, MONTHS, 1),
        (0, 6, DAYS, 0),
    ];
    for (field, (min, max, names, name_base)) in fields.iter().zip(bounds) {
        for expr in field.split(',') {
            check_cron_range(expr, min, max, names, name_base)?;
        }
    }
    Ok(())
}

fn check_cron_range(
    expr: &str,
    min: u32,
    max: u32,
    names: &[&str],
    name_base: u32,
) -> Result<(), String> {
    let parse = |s: &str| -> Result<u32, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            return Ok(i as u32 + name_base);
        }
        match s.parse::<i64>() {
            Ok(n) if n < 0 => Err(format!("negative number ({n}) not allowed: {s}")),
            Ok(n) => Ok(n as u32),
            Err(_) => Err(format!(
                "failed to parse int from {s}: strconv.Atoi: parsing \"{s}\": invalid syntax"
            )),
        }
    };
    let parts: Vec<&str> = expr.split('/').collect();
    if parts.len() > 2 {
        return Err(format!("too many slashes: {expr}"));
    }
    let range: Vec<&str> = parts[0].split('-').collect();
    let (start, end) = match range.as_slice() {
        ["*" | "?"] => (min, max),
        [single] => {
            let v = parse(single)?;
            (v, v)
        }
        [a, b] => (parse(a)?, parse(b)?),
        _ => return Err(format!("too many hyphens: {expr}")),
    };
    if let Some(step) = parts.get(1) {
        let st = parse(step)?;
        if st == 0 {
            return Err(format!("step of range should be a positive number: {expr}"));
        }
    }
    if start < min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({min}): {expr}"
        ));
    }
    if end > max {
        return Err(format!(
            "end of range ({end}) above maximum ({max}): {expr}"
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    Ok(())
}

fn validate_hpa(obj: &Value, errs: &mut Errors) {
    for f in ["kind", "name"] {
        if str_at(obj, &format!("spec.scaleTargetRef.{f}"))
            .unwrap_or_default()
            .is_empty()
        {
            errs.push(FieldError::required(format!("spec.scaleTargetRef.{f}")));
        }
    }
    let min = i64_at(obj, "spec.minReplicas");
    if let Some(m) = min.filter(|m| *m < 1) {
        errs.push(FieldError::invalid(
            "spec.minReplicas",
            &Value::from(m),
            "must be greater than or equal to 1",
        ));
    }
    let max = i64_at(obj, "spec.maxReplicas").unwrap_or(0);
    if max < 1 {
        errs.push(FieldError::invalid(
            "spec.maxReplicas",
            &Value::from(max),
            "must be greater than 0",
        ));
    }
    if let Some(m) = min {
        if max < m {
            errs.push(FieldError::invalid(
                "spec.maxReplicas",
                &Value::from(max),
                "must be greater than or equal to `minReplicas`",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment() -> Value {
        let mut d = json!({"metadata": {"name": "web", "namespace": "ns"}, "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}}});
        crate::resources::defaults::apply("apps", "v1", "Deployment", &mut d);
        d
    }

    fn run(group: &str, kind: &str, obj: &Value, old: Option<&Value>) -> Vec<String> {
        let mut errs = Errors::new();
        validate(group, kind, obj, old, &mut errs);
        errs.into_iter().map(|e| e.message).collect()
    }

    #[test]
    fn statefulset_templates_may_mount_claim_templates() {
        let mut sts = json!({"metadata": {"name": "db", "namespace": "ns"}, "spec": {
            "serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}},
                         "spec": {"containers": [{"name": "db", "image": "postgres",
                             "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}});
        crate::resources::defaults::apply("apps", "v1", "StatefulSet", &mut sts);
        assert!(run("apps", "StatefulSet", &sts, None).is_empty());
        sts["spec"]["template"]["metadata"]["labels"]["bad key!"] = json!("x");
        let errs = run("apps", "StatefulSet", &sts, None);
        assert!(
            errs.iter()
                .any(|e| e.starts_with("spec.template.metadata.labels: Invalid value")),
            "{errs:?}"
        );
    }

    #[test]
    fn valid_deployment_passes() {
        assert!(run("apps", "Deployment", &deployment(), None).is_empty());
    }

    #[test]
    fn selector_must_match_template() {
        let mut d = deployment();
        d["spec"]["template"]["metadata"]["labels"] = json!({"app": "other"});
        assert_eq!(
            run("apps", "Deployment", &d, None),
            ["spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"other\"}: `selector` does not match template `labels`"]
        );
        let mut d = deployment();
        d["spec"].as_object_mut().unwrap().remove("selector");
        assert_eq!(
            run("apps", "Deployment", &d, None),
            ["spec.selector: Required value"]
        );
    }

    #[test]
    fn deployment_selector_is_immutable() {
        let old = deployment();
        let mut new = old.clone();
        new["spec"]["selector"] = json!({"matchLabels": {"app": "web2"}});
        new["spec"]["template"]["metadata"]["labels"] = json!({"app": "web2"});
        assert_eq!(
            run("apps", "Deployment", &new, Some(&old)),
            ["spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web2\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"]
        );
    }

    #[test]
    fn job_restart_policy_and_generated_selector() {
        let mut job = json!({"metadata": {"name": "pi", "namespace": "ns", "uid": "u1"},
            "spec": {"template": {"spec": {"containers": [{"name": "pi", "image": "perl"}]}}}});
        crate::resources::defaults::apply("batch", "v1", "Job", &mut job);
        crate::resources::strategy::prepare_job_create(&mut job);
        assert_eq!(
            run("batch", "Job", &job, None),
            ["spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\""]
        );
        job["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
        assert!(run("batch", "Job", &job, None).is_empty());
        let mut changed = job.clone();
        changed["spec"]["template"]["spec"]["containers"][0]["image"] = json!("perl:2");
        assert_eq!(run("batch", "Job", &changed, Some(&job)).len(), 1);
    }

    #[test]
    fn cron_schedules() {
        assert!(validate_schedule("*/5 * * * *").is_ok());
        assert!(validate_schedule("0 9 * jan-mar mon-fri").is_ok());
        assert!(validate_schedule("@hourly").is_ok());
        assert_eq!(
            validate_schedule("bad").unwrap_err(),
            "expected exactly 5 fields, found 1: [bad]"
        );
        assert_eq!(
            validate_schedule("0-70 * * * *").unwrap_err(),
            "end of range (70) above maximum (59): 0-70"
        );
        assert!(validate_schedule("x * * * *")
            .unwrap_err()
            .starts_with("failed to parse int from x"));
    }

    #[test]
    fn hpa_bounds() {
        let hpa = json!({"spec": {"scaleTargetRef": {"kind": "Deployment", "name": "d"}, "minReplicas": 3, "maxReplicas": 2}});
        assert_eq!(
            run("autoscaling", "HorizontalPodAutoscaler", &hpa, None),
            ["spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`"]
        );
    }
}
