//! Priority: resolves a pod's `priorityClassName` to `priority` and `preemptionPolicy`, using
//! the global default PriorityClass when no name is given.

use serde_json::{json, Value};

use super::{forbidden, Attributes, Operation, Rejection};

/// Upstream's built-in system classes, which exist even when no object does.
pub const SYSTEM_CLASSES: &[(&str, i64)] = &[
    ("system-node-critical", 2_000_001_000),
    ("system-cluster-critical", 2_000_000_000),
];

/// Admits a pod create. `classes` are the cluster's PriorityClass objects.
pub fn admit(attrs: &Attributes, pod: &mut Value, classes: &[Value]) -> Result<(), Rejection> {
    if !(attrs.is("", "pods")
        && attrs.subresource.is_empty()
        && attrs.operation == Operation::Create)
    {
        return Ok(());
    }
    let name = pod
        .pointer("/spec/priorityClassName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let by_name = |n: &str| {
        classes
            .iter()
            .find(|c| c.pointer("/metadata/name").and_then(Value::as_str) == Some(n))
    };
    let (class_name, value, policy) = if name.is_empty() {
        // Upstream picks the default class with the lowest value if several claim the role.
        let default = classes
            .iter()
            .filter(|c| c.get("globalDefault").and_then(Value::as_bool) == Some(true))
            .min_by_key(|c| c.get("value").and_then(Value::as_i64).unwrap_or(0));
        match default {
            Some(c) => (
                c.pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                c.get("value").and_then(Value::as_i64).unwrap_or(0),
                c.get("preemptionPolicy")
                    .and_then(Value::as_str)
                    .map(String::from),
            ),
            None => (String::new(), 0, None),
        }
    } else if let Some(c) = by_name(&name) {
        (
            name.clone(),
            c.get("value").and_then(Value::as_i64).unwrap_or(0),
            c.get("preemptionPolicy")
                .and_then(Value::as_str)
                .map(String::from),
        )
    } else if let Some((_, v)) = SYSTEM_CLASSES.iter().find(|(n, _)| *n == name) {
        (name.clone(), *v, None)
    } else {
        return Err(forbidden(
            attrs,
            Some(pod),
            &format!("no PriorityClass with name {name} was found"),
        ));
    };
    if let Some(given) = pod.pointer("/spec/priority").and_then(Value::as_i64) {
        if given != value {
            return Err(forbidden(
                attrs,
                Some(pod),
                &format!("the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {value} from the given PriorityClass name"),
            ));
        }
    }
    let policy = policy.unwrap_or_else(|| "PreemptLowerPriority".to_string());
    if let Some(given) = pod
        .pointer("/spec/preemptionPolicy")
        .and_then(Value::as_str)
    {
        if given != policy {
            return Err(forbidden(
                attrs,
                Some(pod),
                &format!("the string value of PreemptionPolicy ({given}) must not be provided in pod spec; priority admission controller computed {policy} from the given PriorityClass name"),
            ));
        }
    }
    if let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) {
        if !class_name.is_empty() {
            spec.insert("priorityClassName".into(), json!(class_name));
        }
        spec.insert("priority".into(), json!(value));
        spec.insert("preemptionPolicy".into(), json!(policy));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::UserInfo;

    fn create() -> Attributes {
        Attributes::core(
            Operation::Create,
            "pods",
            "Pod",
            "ns",
            "p",
            UserInfo::new("u", &[]),
        )
    }

    fn class(name: &str, value: i64, default: bool) -> Value {
        json!({"metadata": {"name": name}, "value": value, "globalDefault": default})
    }

    #[test]
    fn resolves_named_default_and_system_classes() {
        let classes = vec![class("high", 1000, false), class("normal", 10, true)];
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"priorityClassName": "high"}});
        admit(&create(), &mut pod, &classes).unwrap();
        assert_eq!(
            (
                pod["spec"]["priority"].as_i64(),
                pod["spec"]["preemptionPolicy"].as_str()
            ),
            (Some(1000), Some("PreemptLowerPriority"))
        );
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {}});
        admit(&create(), &mut pod, &classes).unwrap();
        assert_eq!(pod["spec"]["priorityClassName"], "normal");
        assert_eq!(pod["spec"]["priority"], 10);
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {}});
        admit(&create(), &mut pod, &[]).unwrap();
        assert_eq!(pod["spec"]["priority"], 0);
        assert!(pod["spec"].get("priorityClassName").is_none());
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"priorityClassName": "system-node-critical"}});
        admit(&create(), &mut pod, &[]).unwrap();
        assert_eq!(pod["spec"]["priority"], 2_000_001_000);
    }

    #[test]
    fn unknown_class_and_conflicting_priority_are_forbidden() {
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"priorityClassName": "x"}});
        let err = admit(&create(), &mut pod, &[]).unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (
                403,
                r#"pods "p" is forbidden: no PriorityClass with name x was found"#
            )
        );
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"priorityClassName": "high", "priority": 5}});
        let err = admit(&create(), &mut pod, &[class("high", 1000, false)]).unwrap_err();
        assert!(err
            .message
            .contains("the integer value of priority (5) must not be provided in pod spec"));
    }
}
