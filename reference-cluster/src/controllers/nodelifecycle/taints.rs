//! Taints and tolerations as the node lifecycle and taint-eviction controllers use them.

use k8s_openapi::api::core::v1::{NodeCondition, Taint, Toleration};

pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
pub const MEMORY_PRESSURE: &str = "node.kubernetes.io/memory-pressure";
pub const DISK_PRESSURE: &str = "node.kubernetes.io/disk-pressure";
pub const PID_PRESSURE: &str = "node.kubernetes.io/pid-pressure";
pub const NETWORK_UNAVAILABLE: &str = "node.kubernetes.io/network-unavailable";

/// The taint keys this controller owns, so others' taints are never touched.
pub const MANAGED: &[&str] = &[
    NOT_READY,
    UNREACHABLE,
    UNSCHEDULABLE,
    MEMORY_PRESSURE,
    DISK_PRESSURE,
    PID_PRESSURE,
    NETWORK_UNAVAILABLE,
];

/// `Toleration.ToleratesTaint`.
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if t.effect
        .as_deref()
        .is_some_and(|e| !e.is_empty() && e != taint.effect)
    {
        return false;
    }
    if t.key
        .as_deref()
        .is_some_and(|k| !k.is_empty() && k != taint.key)
    {
        return false;
    }
    match t.operator.as_deref().unwrap_or("") {
        "" | "Equal" => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        "Exists" => true,
        _ => false,
    }
}

/// How long a pod may stay on a node with these NoExecute taints: `None` if some taint is
/// not tolerated at all (evict now), `Some(None)` if tolerated forever, else the shortest
/// tolerationSeconds among the tolerations used.
pub fn toleration_time(tolerations: &[Toleration], taints: &[Taint]) -> Option<Option<i64>> {
    let mut min: Option<i64> = None;
    for taint in taints.iter().filter(|t| t.effect == "NoExecute") {
        let used: Vec<&Toleration> = tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        if used.is_empty() {
            return None;
        }
        for t in used {
            if let Some(s) = t.toleration_seconds {
                let s = s.max(0);
                min = Some(min.map_or(s, |m| m.min(s)));
            }
        }
    }
    Some(min)
}

fn status_of<'a>(conditions: &'a [NodeCondition], type_: &str) -> Option<&'a str> {
    conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.as_str())
}

/// The NoExecute taint the Ready condition calls for.
pub fn no_execute_for(conditions: &[NodeCondition]) -> Option<&'static str> {
    match status_of(conditions, "Ready") {
        Some("False") => Some(NOT_READY),
        Some("True") => None,
        // Unknown, or never reported.
        _ => Some(UNREACHABLE),
    }
}

/// The NoSchedule taints the conditions (and `spec.unschedulable`) call for.
pub fn no_schedule_for(conditions: &[NodeCondition], unschedulable: bool) -> Vec<&'static str> {
    let mut out = Vec::new();
    match status_of(conditions, "Ready") {
        Some("False") => out.push(NOT_READY),
        Some("True") => {}
        _ => out.push(UNREACHABLE),
    }
    for (cond, key) in [
        ("MemoryPressure", MEMORY_PRESSURE),
        ("DiskPressure", DISK_PRESSURE),
        ("PIDPressure", PID_PRESSURE),
        ("NetworkUnavailable", NETWORK_UNAVAILABLE),
    ] {
        if status_of(conditions, cond) == Some("True") {
            out.push(key);
        }
    }
    if unschedulable {
        out.push(UNSCHEDULABLE);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str, effect: &str, value: Option<&str>) -> Taint {
        Taint {
            key: key.into(),
            effect: effect.into(),
            value: value.map(String::from),
            time_added: None,
        }
    }

    fn tol(key: Option<&str>, op: &str, effect: Option<&str>, secs: Option<i64>) -> Toleration {
        Toleration {
            key: key.map(String::from),
            operator: Some(op.into()),
            effect: effect.map(String::from),
            toleration_seconds: secs,
            value: None,
        }
    }

    #[test]
    fn toleration_matching() {
        let t = taint(UNREACHABLE, "NoExecute", None);
        assert!(tolerates(
            &tol(Some(UNREACHABLE), "Exists", Some("NoExecute"), None),
            &t
        ));
        assert!(
            tolerates(&tol(None, "Exists", None, None), &t),
            "empty key with Exists tolerates all"
        );
        assert!(!tolerates(&tol(Some(NOT_READY), "Exists", None, None), &t));
        assert!(!tolerates(
            &tol(Some(UNREACHABLE), "Exists", Some("NoSchedule"), None),
            &t
        ));
        let v = taint("dedicated", "NoSchedule", Some("gpu"));
        let mut eq = tol(Some("dedicated"), "Equal", None, None);
        eq.value = Some("gpu".into());
        assert!(tolerates(&eq, &v));
        eq.value = Some("cpu".into());
        assert!(!tolerates(&eq, &v));
    }

    #[test]
    fn shortest_toleration_wins() {
        let taints = vec![
            taint(UNREACHABLE, "NoExecute", None),
            taint("x", "NoSchedule", None),
        ];
        assert_eq!(toleration_time(&[], &taints), None);
        let tols = vec![
            tol(Some(UNREACHABLE), "Exists", Some("NoExecute"), Some(300)),
            tol(None, "Exists", None, Some(60)),
        ];
        assert_eq!(toleration_time(&tols, &taints), Some(Some(60)));
        assert_eq!(
            toleration_time(&[tol(None, "Exists", None, None)], &taints),
            Some(None)
        );
    }

    #[test]
    fn conditions_map_to_taints() {
        let c = |t: &str, s: &str| NodeCondition {
            type_: t.into(),
            status: s.into(),
            ..Default::default()
        };
        assert_eq!(no_execute_for(&[c("Ready", "False")]), Some(NOT_READY));
        assert_eq!(no_execute_for(&[c("Ready", "Unknown")]), Some(UNREACHABLE));
        assert_eq!(no_execute_for(&[c("Ready", "True")]), None);
        assert_eq!(
            no_schedule_for(&[c("Ready", "True"), c("DiskPressure", "True")], true),
            vec![DISK_PRESSURE, UNSCHEDULABLE]
        );
    }
}
