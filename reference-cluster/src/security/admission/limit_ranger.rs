//! LimitRanger: fills in containers' default requests and limits from the namespace's
//! LimitRanges (recording what it set in the `kubernetes.io/limit-ranger` annotation), then
//! enforces `min`, `max` and `maxLimitRequestRatio` per Container, Pod and
//! PersistentVolumeClaim with upstream's messages.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::{aggregate, array_of, forbidden, Attributes, Operation, Rejection};
use crate::resources::quantity::Quantity;

pub const ANNOTATION: &str = "kubernetes.io/limit-ranger";

type ResourceList = BTreeMap<String, Quantity>;

fn resource_list(v: Option<&Value>) -> ResourceList {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, q)| Quantity::from_json(q).map(|q| (k.clone(), q)))
                .collect()
        })
        .unwrap_or_default()
}

/// Upstream's LimitRange defaulting (`SetDefaults_LimitRangeItem`): for Container items a
/// missing `default` is `max`, a missing `defaultRequest` is `default`, then `min`. Applied to
/// the LimitRange object on write and again here, so objects stored before defaulting behave
/// the same.
pub fn default_limit_range_item(item: &mut Value) {
    if item.get("type").and_then(Value::as_str) != Some("Container") {
        return;
    }
    let Some(obj) = item.as_object_mut() else {
        return;
    };
    let fill = |target: &str, source: &str, obj: &mut Map<String, Value>| {
        let src = obj
            .get(source)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        if src.is_empty() {
            return;
        }
        let entry = obj.entry(target.to_string()).or_insert_with(|| json!({}));
        if !entry.is_object() {
            *entry = json!({});
        }
        if let Some(t) = entry.as_object_mut() {
            for (k, v) in src {
                t.entry(k).or_insert(v);
            }
        }
    };
    fill("default", "max", obj);
    fill("defaultRequest", "default", obj);
    fill("defaultRequest", "min", obj);
}

fn items(limit_ranges: &[Value]) -> Vec<Value> {
    limit_ranges
        .iter()
        .flat_map(|lr| array_of(lr, "/spec/limits").iter().cloned())
        .map(|mut item| {
            default_limit_range_item(&mut item);
            item
        })
        .collect()
}

fn applies(attrs: &Attributes) -> bool {
    attrs.subresource.is_empty()
        && attrs.group.is_empty()
        && matches!(attrs.resource.as_str(), "pods" | "persistentvolumeclaims")
        && (attrs.operation == Operation::Create
            || (attrs.operation == Operation::Update && attrs.resource == "persistentvolumeclaims"))
}

/// Mutating half: sets default requests/limits on a pod being created.
pub fn mutate(attrs: &Attributes, pod: &mut Value, limit_ranges: &[Value]) {
    if !(applies(attrs) && attrs.resource == "pods" && attrs.operation == Operation::Create) {
        return;
    }
    let mut default_requests = Map::new();
    let mut default_limits = Map::new();
    for item in items(limit_ranges) {
        if item.get("type").and_then(Value::as_str) != Some("Container") {
            continue;
        }
        for (target, key) in [
            (&mut default_requests, "defaultRequest"),
            (&mut default_limits, "default"),
        ] {
            if let Some(m) = item.get(key).and_then(Value::as_object) {
                for (k, v) in m {
                    target.insert(k.clone(), v.clone());
                }
            }
        }
    }
    if default_requests.is_empty() && default_limits.is_empty() {
        return;
    }
    let mut notes = Vec::new();
    for (list, label) in [
        ("containers", "container"),
        ("initContainers", "init container"),
    ] {
        let Some(containers) = pod
            .get_mut("spec")
            .and_then(|s| s.get_mut(list))
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for c in containers.iter_mut().filter(|c| c.is_object()) {
            let name = c
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if !c.get("resources").is_some_and(Value::is_object) {
                c["resources"] = json!({});
            }
            let res = &mut c["resources"];
            let mut set = |key: &str, defaults: &Map<String, Value>| -> Vec<String> {
                if !res.get(key).is_some_and(Value::is_object) {
                    res[key] = json!({});
                }
                let mut set = Vec::new();
                if let Some(m) = res[key].as_object_mut() {
                    for (k, v) in defaults {
                        if !m.contains_key(k) {
                            m.insert(k.clone(), v.clone());
                            set.push(k.clone());
                        }
                    }
                }
                if res[key].as_object().is_some_and(Map::is_empty) {
                    if let Some(r) = res.as_object_mut() {
                        r.remove(key);
                    }
                }
                set.sort();
                set
            };
            let limits = set("limits", &default_limits);
            let requests = set("requests", &default_requests);
            if !requests.is_empty() {
                notes.push(format!(
                    "{} request for {label} {name}",
                    requests.join(", ")
                ));
            }
            if !limits.is_empty() {
                notes.push(format!("{} limit for {label} {name}", limits.join(", ")));
            }
        }
    }
    if !notes.is_empty() {
        let Some(meta) = pod.get_mut("metadata").filter(|m| m.is_object()) else {
            return;
        };
        if !meta.get("annotations").is_some_and(Value::is_object) {
            meta["annotations"] = json!({});
        }
        meta["annotations"][ANNOTATION] =
            json!(format!("LimitRanger plugin set: {}", notes.join("; ")));
    }
}

/// Upstream compares milli-values unless the bound is too large for them.
fn compare_values(
    req: Option<&Quantity>,
    lim: Option<&Quantity>,
    enforced: &Quantity,
) -> (i128, i128, i128) {
    const MAX_MILLI: i128 = i64::MAX as i128 / 1000;
    let milli = enforced.value() <= MAX_MILLI;
    let v = |q: Option<&Quantity>| q.map_or(0, |q| if milli { q.milli_value() } else { q.value() });
    (
        v(req),
        v(lim),
        if milli {
            enforced.milli_value()
        } else {
            enforced.value()
        },
    )
}

fn min_constraint(
    kind: &str,
    res: &str,
    enforced: &Quantity,
    req: &ResourceList,
    lim: &ResourceList,
) -> Option<String> {
    let (r, l) = (req.get(res), lim.get(res));
    let (rv, lv, ev) = compare_values(r, l, enforced);
    let e = enforced.canonical();
    match r {
        None => Some(format!(
            "minimum {res} usage per {kind} is {e}.  No request is specified"
        )),
        Some(r) if rv < ev => Some(format!(
            "minimum {res} usage per {kind} is {e}, but request is {}",
            r.canonical()
        )),
        _ => match l {
            Some(l) if lv < ev => Some(format!(
                "minimum {res} usage per {kind} is {e}, but limit is {}",
                l.canonical()
            )),
            _ => None,
        },
    }
}

fn max_constraint(
    kind: &str,
    res: &str,
    enforced: &Quantity,
    req: &ResourceList,
    lim: &ResourceList,
) -> Option<String> {
    let (r, l) = (req.get(res), lim.get(res));
    let (rv, lv, ev) = compare_values(r, l, enforced);
    let e = enforced.canonical();
    match l {
        None => Some(format!(
            "maximum {res} usage per {kind} is {e}.  No limit is specified"
        )),
        Some(l) if lv > ev => Some(format!(
            "maximum {res} usage per {kind} is {e}, but limit is {}",
            l.canonical()
        )),
        _ => match r {
            Some(r) if rv > ev => Some(format!(
                "maximum {res} usage per {kind} is {e}, but request is {}",
                r.canonical()
            )),
            _ => None,
        },
    }
}

/// For PVCs, whose limits are not user input: only the request is compared.
fn max_request_constraint(
    kind: &str,
    res: &str,
    enforced: &Quantity,
    req: &ResourceList,
) -> Option<String> {
    let r = req.get(res);
    let (rv, _, ev) = compare_values(r, None, enforced);
    let e = enforced.canonical();
    match r {
        None => Some(format!(
            "maximum {res} usage per {kind} is {e}.  No request is specified"
        )),
        Some(r) if rv > ev => Some(format!(
            "maximum {res} usage per {kind} is {e}, but request is {}",
            r.canonical()
        )),
        _ => None,
    }
}

fn ratio_constraint(
    kind: &str,
    res: &str,
    enforced: &Quantity,
    req: &ResourceList,
    lim: &ResourceList,
) -> Option<String> {
    let (rv, lv, _) = compare_values(req.get(res), lim.get(res), enforced);
    let e = enforced.canonical();
    if rv == 0 {
        return Some(format!("{res} max limit to request ratio per {kind} is {e}, but no request is specified or request is 0"));
    }
    if lv == 0 {
        return Some(format!("{res} max limit to request ratio per {kind} is {e}, but no limit is specified or limit is 0"));
    }
    let observed = lv as f64 / rv as f64;
    // The bound is compared in thousandths, as upstream does for bounds that fit.
    if observed * 1000.0 > enforced.milli_value() as f64 {
        return Some(format!("{res} max limit to request ratio per {kind} is {e}, but provided ratio is {observed:.6}"));
    }
    None
}

fn check(
    kind: &str,
    item: &Value,
    req: &ResourceList,
    lim: &ResourceList,
    errors: &mut Vec<String>,
) {
    for (k, v) in resource_list(item.get("min")) {
        errors.extend(min_constraint(kind, &k, &v, req, lim));
    }
    for (k, v) in resource_list(item.get("max")) {
        errors.extend(max_constraint(kind, &k, &v, req, lim));
    }
    for (k, v) in resource_list(item.get("maxLimitRequestRatio")) {
        errors.extend(ratio_constraint(kind, &k, &v, req, lim));
    }
}

fn sum_into(total: &mut ResourceList, add: &ResourceList) {
    for (k, v) in add {
        let e = total.entry(k.clone()).or_insert(Quantity {
            nanos: 0,
            format: v.format,
        });
        e.nanos += v.nanos;
    }
}

fn max_into(total: &mut ResourceList, other: &ResourceList) {
    for (k, v) in other {
        match total.get(k) {
            Some(t) if t >= v => {}
            _ => {
                total.insert(k.clone(), *v);
            }
        }
    }
}

/// Validating half: checks a pod (create) or PVC (create/update) against the LimitRanges.
pub fn validate(attrs: &Attributes, obj: &Value, limit_ranges: &[Value]) -> Result<(), Rejection> {
    if !applies(attrs) {
        return Ok(());
    }
    let mut errors = Vec::new();
    for item in items(limit_ranges) {
        let kind = item.get("type").and_then(Value::as_str).unwrap_or_default();
        match (attrs.resource.as_str(), kind) {
            ("pods", "Container") => {
                for list in ["/spec/containers", "/spec/initContainers"] {
                    for c in array_of(obj, list) {
                        let req = resource_list(c.pointer("/resources/requests"));
                        let lim = resource_list(c.pointer("/resources/limits"));
                        check(kind, &item, &req, &lim, &mut errors);
                    }
                }
            }
            ("pods", "Pod") => {
                let (mut req, mut lim) = (ResourceList::new(), ResourceList::new());
                for c in array_of(obj, "/spec/containers") {
                    sum_into(&mut req, &resource_list(c.pointer("/resources/requests")));
                    sum_into(&mut lim, &resource_list(c.pointer("/resources/limits")));
                }
                for c in array_of(obj, "/spec/initContainers") {
                    max_into(&mut req, &resource_list(c.pointer("/resources/requests")));
                    max_into(&mut lim, &resource_list(c.pointer("/resources/limits")));
                }
                check(kind, &item, &req, &lim, &mut errors);
            }
            ("persistentvolumeclaims", "PersistentVolumeClaim") => {
                let req = resource_list(obj.pointer("/spec/resources/requests"));
                for (k, v) in resource_list(item.get("min")) {
                    errors.extend(min_constraint(kind, &k, &v, &req, &ResourceList::new()));
                }
                for (k, v) in resource_list(item.get("max")) {
                    errors.extend(max_request_constraint(kind, &k, &v, &req));
                }
            }
            _ => {}
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(forbidden(attrs, Some(obj), &aggregate(&errors)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::UserInfo;

    fn create(resource: &str) -> Attributes {
        Attributes::core(
            Operation::Create,
            resource,
            "",
            "dev",
            "p",
            UserInfo::new("u", &[]),
        )
    }

    fn limit_range(limits: Value) -> Value {
        json!({"metadata": {"name": "lr", "namespace": "dev"}, "spec": {"limits": limits}})
    }

    #[test]
    fn sets_defaults_and_records_them() {
        let lr = limit_range(json!([{"type": "Container",
            "default": {"cpu": "500m", "memory": "256Mi"},
            "defaultRequest": {"cpu": "100m"}}]));
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "nginx", "resources": {"limits": {"memory": "1Gi"}}}
        ]}});
        mutate(&create("pods"), &mut pod, &[lr]);
        let res = &pod["spec"]["containers"][0]["resources"];
        assert_eq!(res["limits"], json!({"memory": "1Gi", "cpu": "500m"}));
        // memory request defaults from `default` (defaultRequest ← default), cpu from defaultRequest.
        assert_eq!(res["requests"], json!({"cpu": "100m", "memory": "256Mi"}));
        assert_eq!(
            pod["metadata"]["annotations"][ANNOTATION],
            "LimitRanger plugin set: cpu, memory request for container nginx; cpu limit for container nginx"
        );
    }

    #[test]
    fn enforces_min_max_and_ratio_with_upstream_messages() {
        let lr = limit_range(json!([{"type": "Container",
            "max": {"cpu": "1"}, "min": {"memory": "64Mi"}, "maxLimitRequestRatio": {"cpu": "2"}}]));
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "c", "resources": {"limits": {"cpu": "2", "memory": "128Mi"}, "requests": {"cpu": "500m", "memory": "32Mi"}}}
        ]}});
        let err = validate(&create("pods"), &pod, &[lr]).unwrap_err();
        assert_eq!(err.code, 403);
        assert_eq!(
            err.message,
            r#"pods "p" is forbidden: [minimum memory usage per Container is 64Mi, but request is 32Mi, maximum cpu usage per Container is 1, but limit is 2, cpu max limit to request ratio per Container is 2, but provided ratio is 4.000000]"#
        );
        let ok = json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "c", "resources": {"limits": {"cpu": "1", "memory": "128Mi"}, "requests": {"cpu": "500m", "memory": "64Mi"}}}
        ]}});
        let lr = limit_range(
            json!([{"type": "Container", "max": {"cpu": "1"}, "min": {"memory": "64Mi"}, "maxLimitRequestRatio": {"cpu": "2"}}]),
        );
        assert!(validate(&create("pods"), &ok, &[lr]).is_ok());
    }

    #[test]
    fn max_without_a_limit_and_pod_level_sums() {
        let lr = limit_range(json!([{"type": "Pod", "max": {"memory": "1Gi"}}]));
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "a", "resources": {"limits": {"memory": "600Mi"}}},
            {"name": "b", "resources": {"limits": {"memory": "600Mi"}}}
        ]}});
        assert_eq!(
            validate(&create("pods"), &pod, std::slice::from_ref(&lr))
                .unwrap_err()
                .message,
            r#"pods "p" is forbidden: maximum memory usage per Pod is 1Gi, but limit is 1200Mi"#
        );
        let bare = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]}});
        assert_eq!(
            validate(&create("pods"), &bare, &[lr]).unwrap_err().message,
            r#"pods "p" is forbidden: maximum memory usage per Pod is 1Gi.  No limit is specified"#
        );
    }

    #[test]
    fn claims_are_bounded_by_their_storage_request() {
        let lr = limit_range(
            json!([{"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"}, "max": {"storage": "10Gi"}}]),
        );
        let pvc = |size: &str| json!({"metadata": {"name": "data"}, "spec": {"resources": {"requests": {"storage": size}}}});
        assert!(validate(
            &create("persistentvolumeclaims"),
            &pvc("5Gi"),
            std::slice::from_ref(&lr)
        )
        .is_ok());
        assert_eq!(
            validate(
                &create("persistentvolumeclaims"),
                &pvc("20Gi"),
                std::slice::from_ref(&lr)
            )
            .unwrap_err()
            .message,
            r#"persistentvolumeclaims "data" is forbidden: maximum storage usage per PersistentVolumeClaim is 10Gi, but request is 20Gi"#
        );
        assert!(
            validate(&create("persistentvolumeclaims"), &pvc("500Mi"), &[lr])
                .unwrap_err()
                .message
                .contains(
                    "minimum storage usage per PersistentVolumeClaim is 1Gi, but request is 500Mi"
                )
        );
    }

    #[test]
    fn limit_range_defaulting_fills_from_max_and_min() {
        let mut item = json!({"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "1Mi"}});
        default_limit_range_item(&mut item);
        assert_eq!(item["default"], json!({"cpu": "2"}));
        assert_eq!(item["defaultRequest"], json!({"cpu": "2", "memory": "1Mi"}));
    }
}
