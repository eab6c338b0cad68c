//! ResourceQuota: what an object costs (upstream's quota evaluators), the quota status the
//! quota controller keeps, and admission that refuses a request which would take a quota past
//! its hard limits (`exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2`).
//!
//! As upstream, admission charges against `status.used`; the caller must write back the quota
//! statuses [`admit`] returns (compare-and-swap) before persisting the object.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

use super::{array_of, forbidden, str_of, Attributes, Operation, Rejection};
use crate::resources::quantity::{Format, Quantity};

pub type ResourceList = BTreeMap<String, Quantity>;

fn count(n: i128) -> Quantity {
    Quantity {
        nanos: n * 1_000_000_000,
        format: Format::DecimalSI,
    }
}

fn add(total: &mut ResourceList, key: &str, q: Quantity) {
    match total.get_mut(key) {
        Some(t) => t.nanos += q.nanos,
        None => {
            total.insert(key.to_string(), q);
        }
    }
}

fn resource_list(v: Option<&Value>) -> ResourceList {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, q)| Quantity::from_json(q).map(|q| (k.clone(), q)))
                .collect()
        })
        .unwrap_or_default()
}

/// Upstream `quota.ToJSON`-style rendering: `k=v` pairs sorted by name, comma-separated.
pub fn pretty(list: &ResourceList) -> String {
    list.iter()
        .map(|(k, v)| format!("{k}={}", v.canonical()))
        .collect::<Vec<_>>()
        .join(",")
}

fn is_native(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

/// A pod's effective requests or limits: the larger of the containers' sum and any init
/// container, plus the pod overhead (upstream `resourcehelper.PodRequests`).
fn pod_resources(pod: &Value, key: &str) -> ResourceList {
    let mut sum = ResourceList::new();
    for c in array_of(pod, "/spec/containers") {
        for (k, v) in resource_list(c.pointer(&format!("/resources/{key}"))) {
            add(&mut sum, &k, v);
        }
    }
    for c in array_of(pod, "/spec/initContainers") {
        for (k, v) in resource_list(c.pointer(&format!("/resources/{key}"))) {
            if sum.get(&k).is_none_or(|s| *s < v) {
                sum.insert(k, v);
            }
        }
    }
    for (k, v) in resource_list(pod.pointer("/spec/overhead")) {
        add(&mut sum, &k, v);
    }
    sum
}

fn is_terminal(pod: &Value) -> bool {
    matches!(str_of(pod, "/status/phase"), "Succeeded" | "Failed")
}

/// Upstream `podComputeUsageHelper`.
fn pod_compute_usage(requests: &ResourceList, limits: &ResourceList) -> ResourceList {
    let mut out = ResourceList::new();
    out.insert("pods".into(), count(1));
    for res in ["cpu", "memory", "ephemeral-storage"] {
        if let Some(r) = requests.get(res) {
            out.insert(res.into(), *r);
            out.insert(format!("requests.{res}"), *r);
        }
        if let Some(l) = limits.get(res) {
            out.insert(format!("limits.{res}"), *l);
        }
    }
    for (k, v) in requests {
        // Huge pages and extended resources are only quotable as requests.
        if k.starts_with("hugepages-") || !is_native(k) {
            out.insert(format!("requests.{k}"), *v);
        }
    }
    out
}

/// What one object costs against quota (upstream's evaluators' `Usage`).
pub fn usage(group: &str, resource: &str, obj: &Value) -> ResourceList {
    let mut out = ResourceList::new();
    let object_count = if group.is_empty() {
        format!("count/{resource}")
    } else {
        format!("count/{resource}.{group}")
    };
    out.insert(object_count, count(1));
    if !group.is_empty() {
        return out;
    }
    match resource {
        // Terminated pods hold no resources; they still count as objects.
        "pods" if !is_terminal(obj) => {
            let requests = pod_resources(obj, "requests");
            let limits = pod_resources(obj, "limits");
            out.extend(pod_compute_usage(&requests, &limits));
        }
        "services" => {
            out.insert("services".into(), count(1));
            let ty = str_of(obj, "/spec/type");
            let ports = array_of(obj, "/spec/ports").len() as i128;
            match ty {
                "NodePort" => {
                    out.insert("services.nodeports".into(), count(ports));
                }
                "LoadBalancer" => {
                    out.insert("services.loadbalancers".into(), count(1));
                    let allocate = obj
                        .pointer("/spec/allocateLoadBalancerNodePorts")
                        .and_then(Value::as_bool)
                        .unwrap_or(true);
                    let node_ports = if allocate {
                        ports
                    } else {
                        array_of(obj, "/spec/ports")
                            .iter()
                            .filter(|p| p.get("nodePort").and_then(Value::as_i64).unwrap_or(0) != 0)
                            .count() as i128
                    };
                    out.insert("services.nodeports".into(), count(node_ports));
                }
                _ => {}
            }
        }
        "persistentvolumeclaims" => {
            out.insert("persistentvolumeclaims".into(), count(1));
            let class = str_of(obj, "/spec/storageClassName");
            if !class.is_empty() {
                out.insert(
                    format!("{class}.storageclass.storage.k8s.io/persistentvolumeclaims"),
                    count(1),
                );
            }
            let requests = resource_list(obj.pointer("/spec/resources/requests"));
            if let Some(storage) = requests.get("storage") {
                out.insert("requests.storage".into(), *storage);
                if !class.is_empty() {
                    out.insert(
                        format!("{class}.storageclass.storage.k8s.io/requests.storage"),
                        *storage,
                    );
                }
            }
        }
        "configmaps" | "secrets" | "replicationcontrollers" | "resourcequotas" => {
            out.insert(resource.to_string(), count(1));
        }
        _ => {}
    }
    out
}

/// Whether a quota's scopes select this object. Scoped quotas only track pods.
fn matches_scopes(quota: &Value, group: &str, resource: &str, obj: &Value) -> bool {
    let mut scopes: Vec<(String, String, Vec<String>)> = array_of(quota, "/spec/scopes")
        .iter()
        .filter_map(Value::as_str)
        .map(|s| (s.to_string(), "Exists".to_string(), Vec::new()))
        .collect();
    for expr in array_of(quota, "/spec/scopeSelector/matchExpressions") {
        let values = array_of(expr, "/values")
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect();
        scopes.push((
            str_of(expr, "/scopeName").into(),
            str_of(expr, "/operator").into(),
            values,
        ));
    }
    if scopes.is_empty() {
        return true;
    }
    if !(group.is_empty() && resource == "pods") {
        return false;
    }
    let best_effort = ["containers", "initContainers"].iter().all(|list| {
        array_of(obj, &format!("/spec/{list}")).iter().all(|c| {
            resource_list(c.pointer("/resources/requests")).is_empty()
                && resource_list(c.pointer("/resources/limits")).is_empty()
        })
    });
    let terminating = obj
        .pointer("/spec/activeDeadlineSeconds")
        .is_some_and(|v| !v.is_null());
    let class = str_of(obj, "/spec/priorityClassName");
    scopes
        .iter()
        .all(|(scope, op, values)| match scope.as_str() {
            "BestEffort" => best_effort,
            "NotBestEffort" => !best_effort,
            "Terminating" => terminating,
            "NotTerminating" => !terminating,
            "PriorityClass" => match op.as_str() {
                "In" => values.iter().any(|v| v == class),
                "NotIn" => !values.iter().any(|v| v == class),
                "Exists" => !class.is_empty(),
                "DoesNotExist" => class.is_empty(),
                _ => false,
            },
            _ => false,
        })
}

/// One object in a namespace, for [`compute_status`].
pub struct QuotaObject<'a> {
    pub group: &'a str,
    pub resource: &'a str,
    pub object: &'a Value,
}

/// The status the quota controller writes: `hard` from `spec.hard`, `used` summed over the
/// namespace's `objects` that the quota's scopes select, for each hard resource.
pub fn compute_status(quota: &Value, objects: &[QuotaObject<'_>]) -> Value {
    let hard = resource_list(quota.pointer("/spec/hard"));
    let mut used: ResourceList = hard.keys().map(|k| (k.clone(), count(0))).collect();
    for o in objects {
        if !matches_scopes(quota, o.group, o.resource, o.object) {
            continue;
        }
        for (k, v) in usage(o.group, o.resource, o.object) {
            if hard.contains_key(&k) {
                add(&mut used, &k, v);
            }
        }
    }
    json!({"hard": to_json(&hard), "used": to_json(&used)})
}

fn to_json(list: &ResourceList) -> Value {
    Value::Object(
        list.iter()
            .map(|(k, v)| (k.clone(), json!(v.canonical())))
            .collect::<Map<_, _>>(),
    )
}

/// Resources that a quota on cpu/memory makes every container declare (upstream's backward
/// compatibility requirement).
const REQUIRED_PER_CONTAINER: &[&str] = &[
    "cpu",
    "memory",
    "requests.cpu",
    "requests.memory",
    "limits.cpu",
    "limits.memory",
];

/// Upstream pod evaluator `Constraints`: `must specify limits.cpu for: c; requests.memory for: c`.
fn pod_constraints(required: &BTreeSet<String>, pod: &Value) -> Option<String> {
    let mut missing: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for list in ["/spec/containers", "/spec/initContainers"] {
        for c in array_of(pod, list) {
            let u = pod_compute_usage(
                &resource_list(c.pointer("/resources/requests")),
                &resource_list(c.pointer("/resources/limits")),
            );
            for r in required {
                if !u.contains_key(r) {
                    missing
                        .entry(r.clone())
                        .or_default()
                        .insert(str_of(c, "/name").to_string());
                }
            }
        }
    }
    if missing.is_empty() {
        return None;
    }
    let parts: Vec<String> = missing
        .iter()
        .map(|(r, names)| {
            format!(
                "{r} for: {}",
                names.iter().cloned().collect::<Vec<_>>().join(",")
            )
        })
        .collect();
    Some(format!("must specify {}", parts.join("; ")))
}

fn handles(attrs: &Attributes) -> bool {
    if !attrs.subresource.is_empty() || attrs.namespace.is_empty() {
        return false;
    }
    match attrs.operation {
        Operation::Create => true,
        // Updates only change usage for these (resizes, service type changes).
        Operation::Update => {
            attrs.group.is_empty()
                && matches!(
                    attrs.resource.as_str(),
                    "persistentvolumeclaims" | "services"
                )
        }
        _ => false,
    }
}

/// Checks a create (or a PVC/Service update) against the namespace's `quotas`. On success
/// returns the quotas whose `status.used` grows, with the new status already set, for the
/// caller to write back; an empty list means nothing is charged.
pub fn admit(
    attrs: &Attributes,
    obj: &Value,
    old: Option<&Value>,
    quotas: &[Value],
) -> Result<Vec<Value>, Rejection> {
    if !handles(attrs) || quotas.is_empty() {
        return Ok(Vec::new());
    }
    let mut delta = usage(&attrs.group, &attrs.resource, obj);
    if let (Operation::Update, Some(old)) = (attrs.operation, old) {
        let before = usage(&attrs.group, &attrs.resource, old);
        for (k, v) in delta.iter_mut() {
            if let Some(b) = before.get(k) {
                v.nanos -= b.nanos;
            }
        }
        // Shrinking releases nothing at admission; the controller recomputes usage.
        delta.retain(|_, v| v.nanos > 0);
    }
    let mut sorted: Vec<&Value> = quotas.iter().collect();
    sorted.sort_by(|a, b| str_of(a, "/metadata/name").cmp(str_of(b, "/metadata/name")));
    let mut updated = Vec::new();
    for quota in sorted {
        if !matches_scopes(quota, &attrs.group, &attrs.resource, obj) {
            continue;
        }
        let name = str_of(quota, "/metadata/name");
        let hard = resource_list(quota.pointer("/status/hard"));
        let used = resource_list(quota.pointer("/status/used"));
        if attrs.is("", "pods") && attrs.operation == Operation::Create {
            let required: BTreeSet<String> = hard
                .keys()
                .filter(|k| REQUIRED_PER_CONTAINER.contains(&k.as_str()))
                .cloned()
                .collect();
            if let Some(err) = pod_constraints(&required, obj) {
                return Err(forbidden(
                    attrs,
                    Some(obj),
                    &format!("failed quota: {name}: {err}"),
                ));
            }
        }
        let requested: ResourceList = delta
            .iter()
            .filter(|(k, _)| hard.contains_key(*k))
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        if requested.is_empty() {
            continue;
        }
        let unknown: Vec<&str> = requested
            .keys()
            .filter(|k| !used.contains_key(*k))
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            return Err(forbidden(
                attrs,
                Some(obj),
                &format!(
                    "status unknown for quota: {name}, resources: {}",
                    unknown.join(",")
                ),
            ));
        }
        let mut new_used = used.clone();
        for (k, v) in &requested {
            add(&mut new_used, k, *v);
        }
        let exceeded: Vec<&String> = requested
            .keys()
            .filter(|k| new_used[*k] > hard[*k])
            .collect();
        if !exceeded.is_empty() {
            let mask = |l: &ResourceList| -> ResourceList {
                l.iter()
                    .filter(|(k, _)| exceeded.contains(k))
                    .map(|(k, v)| (k.clone(), *v))
                    .collect()
            };
            return Err(forbidden(
                attrs,
                Some(obj),
                &format!(
                    "exceeded quota: {name}, requested: {}, used: {}, limited: {}",
                    pretty(&mask(&requested)),
                    pretty(&mask(&used)),
                    pretty(&mask(&hard))
                ),
            ));
        }
        let mut q = quota.clone();
        if let Some(status) = q.get_mut("status").filter(|s| s.is_object()) {
            status["used"] = to_json(&new_used);
        }
        updated.push(q);
    }
    Ok(updated)
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

    fn pod(name: &str, cpu: Option<&str>) -> Value {
        let resources = match cpu {
            Some(c) => {
                json!({"requests": {"cpu": c, "memory": "64Mi"}, "limits": {"cpu": c, "memory": "64Mi"}})
            }
            None => json!({}),
        };
        json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "resources": resources}]}})
    }

    fn quota(hard: Value, used: Value) -> Value {
        json!({"metadata": {"name": "q", "namespace": "dev"}, "spec": {"hard": hard}, "status": {"hard": hard, "used": used}})
    }

    #[test]
    fn pod_usage_counts_requests_limits_and_init_containers() {
        let p = json!({"spec": {
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "1Gi"}, "limits": {"cpu": "200m"}}},
                {"name": "b", "resources": {"requests": {"cpu": "300m"}}}
            ],
            "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "1"}}}]
        }});
        let u = usage("", "pods", &p);
        assert_eq!(
            pretty(&u),
            "count/pods=1,cpu=1,limits.cpu=200m,memory=1Gi,pods=1,requests.cpu=1,requests.memory=1Gi"
        );
        let mut done = p.clone();
        done["status"] = json!({"phase": "Succeeded"});
        assert_eq!(pretty(&usage("", "pods", &done)), "count/pods=1");
        let svc = json!({"spec": {"type": "NodePort", "ports": [{"port": 80}, {"port": 443}]}});
        assert_eq!(
            pretty(&usage("", "services", &svc)),
            "count/services=1,services=1,services.nodeports=2"
        );
        assert_eq!(
            pretty(&usage("apps", "deployments", &json!({}))),
            "count/deployments.apps=1"
        );
    }

    #[test]
    fn exceeding_a_quota_is_forbidden_with_upstream_message() {
        let q = quota(json!({"pods": "2"}), json!({"pods": "2"}));
        let err = admit(&create("pods"), &pod("p", None), None, &[q]).unwrap_err();
        assert_eq!(err.code, 403);
        assert_eq!(
            err.message,
            r#"pods "p" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2"#
        );
    }

    #[test]
    fn admitted_requests_charge_the_quota() {
        let q = quota(
            json!({"pods": "2", "requests.cpu": "1"}),
            json!({"pods": "1", "requests.cpu": "500m"}),
        );
        let charged = admit(
            &create("pods"),
            &pod("p", Some("250m")),
            None,
            std::slice::from_ref(&q),
        )
        .unwrap();
        assert_eq!(charged.len(), 1);
        assert_eq!(
            charged[0]["status"]["used"],
            json!({"pods": "2", "requests.cpu": "750m"})
        );
        let err = admit(&create("pods"), &pod("p", Some("600m")), None, &[q]).unwrap_err();
        assert_eq!(
            err.message,
            r#"pods "p" is forbidden: exceeded quota: q, requested: requests.cpu=600m, used: requests.cpu=500m, limited: requests.cpu=1"#
        );
    }

    #[test]
    fn cpu_quotas_require_containers_to_declare_it() {
        let q = quota(
            json!({"limits.cpu": "2", "requests.memory": "1Gi"}),
            json!({"limits.cpu": "0", "requests.memory": "0"}),
        );
        let err = admit(&create("pods"), &pod("p", None), None, &[q]).unwrap_err();
        assert_eq!(
            err.message,
            r#"pods "p" is forbidden: failed quota: q: must specify limits.cpu for: c; requests.memory for: c"#
        );
    }

    #[test]
    fn unsynced_quotas_refuse_until_the_controller_has_counted() {
        let q = json!({"metadata": {"name": "q"}, "spec": {"hard": {"configmaps": "1"}}, "status": {"hard": {"configmaps": "1"}}});
        let cm = json!({"metadata": {"name": "c"}});
        assert_eq!(
            admit(&create("configmaps"), &cm, None, &[q])
                .unwrap_err()
                .message,
            r#"configmaps "c" is forbidden: status unknown for quota: q, resources: configmaps"#
        );
    }

    #[test]
    fn controller_status_counts_matching_objects() {
        let q = json!({"metadata": {"name": "q"}, "spec": {"hard": {"pods": "10", "secrets": "5", "requests.cpu": "4"}}});
        let p1 = pod("a", Some("1"));
        let p2 = pod("b", Some("500m"));
        let s = json!({"metadata": {"name": "s"}});
        let objs = [
            QuotaObject {
                group: "",
                resource: "pods",
                object: &p1,
            },
            QuotaObject {
                group: "",
                resource: "pods",
                object: &p2,
            },
            QuotaObject {
                group: "",
                resource: "secrets",
                object: &s,
            },
        ];
        let status = compute_status(&q, &objs);
        assert_eq!(
            status["used"],
            json!({"pods": "2", "requests.cpu": "1500m", "secrets": "1"})
        );
        assert_eq!(status["hard"]["pods"], "10");
    }

    #[test]
    fn scopes_select_pods() {
        let q = json!({"metadata": {"name": "be"}, "spec": {"hard": {"pods": "1"}, "scopes": ["BestEffort"]},
                       "status": {"hard": {"pods": "1"}, "used": {"pods": "1"}}});
        // A burstable pod is not counted by a BestEffort quota.
        assert!(admit(
            &create("pods"),
            &pod("p", Some("1")),
            None,
            std::slice::from_ref(&q)
        )
        .unwrap()
        .is_empty());
        assert!(admit(&create("pods"), &pod("p", None), None, &[q]).is_err());
    }

    #[test]
    fn claim_resizes_charge_only_the_growth() {
        let q = quota(
            json!({"requests.storage": "10Gi"}),
            json!({"requests.storage": "8Gi"}),
        );
        let old = json!({"metadata": {"name": "d"}, "spec": {"resources": {"requests": {"storage": "5Gi"}}}});
        let new = json!({"metadata": {"name": "d"}, "spec": {"resources": {"requests": {"storage": "8Gi"}}}});
        let mut a = create("persistentvolumeclaims");
        a.operation = Operation::Update;
        let err = admit(&a, &new, Some(&old), &[q]).unwrap_err();
        assert!(err.message.ends_with("requested: requests.storage=3Gi, used: requests.storage=8Gi, limited: requests.storage=10Gi"), "{}", err.message);
    }
}
