//! Upstream's bootstrap policy, stored at every start: the default RBAC roles and bindings
//! (`rbac/bootstrap-roles` post-start hook) and the API Priority and Fairness configuration.
//! Objects annotated for auto-update are reconciled as upstream does: missing rules, selectors
//! and subjects are added back, extra ones a user added are kept.

use serde_json::{json, Value};

use super::registry::WriteOptions;
use super::{object, ApiError, ApiResult, ApiServer};
use crate::patch::Operation;
use crate::resources::ResourceInfo;
use crate::security::{bootstrap, flowcontrol};

const RBAC_AUTOUPDATE: &str = "rbac.authorization.kubernetes.io/autoupdate";
const APF_AUTOUPDATE: &str = "apf.kubernetes.io/autoupdate-spec";

fn annotated(obj: &Value, key: &str) -> bool {
    obj.pointer(&format!("/metadata/annotations/{}", key.replace('/', "~1")))
        .and_then(Value::as_str)
        == Some("true")
}

/// Appends the elements of `wanted` that `have` lacks; returns whether anything was added.
fn union_into(have: &mut Value, wanted: &Value) -> bool {
    let wanted = wanted.as_array().cloned().unwrap_or_default();
    if !have.is_array() {
        *have = json!([]);
    }
    let list = have.as_array_mut().expect("just made an array");
    let mut changed = false;
    for w in wanted {
        if !list
            .iter()
            .any(|h| crate::resources::json::semantic_eq(h, &w))
        {
            list.push(w);
            changed = true;
        }
    }
    changed
}

/// What an auto-updated RBAC object must gain to hold the bootstrap one's grants.
fn reconcile_rbac(current: &mut Value, wanted: &Value) -> bool {
    let mut changed = false;
    if let Some(agg) = wanted.pointer("/aggregationRule/clusterRoleSelectors") {
        match current.pointer_mut("/aggregationRule/clusterRoleSelectors") {
            Some(have) => changed |= union_into(have, agg),
            None => {
                current["aggregationRule"] = json!({"clusterRoleSelectors": agg});
                changed = true;
            }
        }
    } else if let Some(rules) = wanted.get("rules") {
        let have = current
            .as_object_mut()
            .map(|o| o.entry("rules").or_insert_with(|| json!([])));
        if let Some(have) = have {
            changed |= union_into(have, rules);
        }
    }
    if let Some(subjects) = wanted.get("subjects") {
        let have = current
            .as_object_mut()
            .map(|o| o.entry("subjects").or_insert_with(|| json!([])));
        if let Some(have) = have {
            changed |= union_into(have, subjects);
        }
    }
    let labels = wanted
        .pointer("/metadata/labels")
        .cloned()
        .unwrap_or_default();
    if let Some(labels) = labels.as_object() {
        let m = object::meta_mut(current);
        let have = m.entry("labels").or_insert_with(|| json!({}));
        if !have.is_object() {
            *have = json!({});
        }
        for (k, v) in labels {
            if have.get(k) != Some(v) {
                have[k] = v.clone();
                changed = true;
            }
        }
    }
    changed
}

fn info_for(server: &ApiServer, obj: &Value) -> ApiResult<std::sync::Arc<ResourceInfo>> {
    let api_version = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    server
        .catalog
        .by_kind(group, version, kind)
        .ok_or_else(|| ApiError::internal(format!("{kind} in {api_version} is not registered")))
}

/// Creates what is missing and reconciles what is marked for auto-update.
async fn ensure(
    server: &ApiServer,
    wanted: Value,
    autoupdate: &str,
    reconcile: fn(&mut Value, &Value) -> bool,
) -> ApiResult<()> {
    let info = info_for(server, &wanted)?;
    let ns = object::meta_str(&wanted, "namespace").map(str::to_string);
    let name = object::name(&wanted).to_string();
    let opts = WriteOptions::internal("kube-apiserver");
    match server.get_object(&info, ns.as_deref(), &name).await {
        Err(e) if e.code == 404 => match server
            .create_object(&info, ns.as_deref(), wanted, &opts)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code == 409 => Ok(()),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
        Ok(current) => {
            if !annotated(&current, autoupdate) {
                return Ok(());
            }
            let mut probe = current.clone();
            if !reconcile(&mut probe, &wanted) {
                return Ok(());
            }
            server
                .guaranteed_update(
                    &info,
                    ns.as_deref(),
                    &name,
                    None,
                    &opts,
                    Operation::Update,
                    |cur| {
                        let mut cur = cur.ok_or_else(|| ApiError::not_found(&info, &name))?;
                        reconcile(&mut cur, &wanted);
                        Ok(cur)
                    },
                )
                .await
                .map(|_| ())
        }
    }
}

/// The flow-control objects follow the bootstrap spec exactly while auto-update is on.
fn reconcile_spec(current: &mut Value, wanted: &Value) -> bool {
    if current.get("spec") == wanted.get("spec") {
        return false;
    }
    current["spec"] = wanted.get("spec").cloned().unwrap_or_else(|| json!({}));
    true
}

/// Stores the bootstrap RBAC policy and flow-control configuration.
pub async fn ensure_bootstrap_policy(server: &ApiServer) -> ApiResult<()> {
    for obj in bootstrap::all() {
        ensure(server, obj, RBAC_AUTOUPDATE, reconcile_rbac).await?;
    }
    let flow = flowcontrol::bootstrap_priority_levels()
        .into_iter()
        .chain(flowcontrol::bootstrap_flow_schemas());
    for obj in flow {
        ensure(server, obj, APF_AUTOUPDATE, reconcile_spec).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconcile_adds_missing_grants_and_keeps_extra_ones() {
        let wanted = json!({"metadata": {"labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
            "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}],
            "subjects": [{"kind": "Group", "name": "system:authenticated"}]});
        let mut current = json!({"metadata": {"name": "r"},
            "rules": [{"verbs": ["list"], "apiGroups": [""], "resources": ["nodes"]}]});
        assert!(reconcile_rbac(&mut current, &wanted));
        assert_eq!(current["rules"].as_array().unwrap().len(), 2);
        assert_eq!(current["subjects"][0]["name"], "system:authenticated");
        assert_eq!(
            current["metadata"]["labels"]["kubernetes.io/bootstrapping"],
            "rbac-defaults"
        );
        assert!(
            !reconcile_rbac(&mut current, &wanted),
            "a second pass changes nothing"
        );
        let agg =
            json!({"aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"a": "true"}}]}});
        let mut role = json!({"metadata": {}, "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"b": "true"}}]}});
        assert!(reconcile_rbac(&mut role, &agg));
        assert_eq!(
            role["aggregationRule"]["clusterRoleSelectors"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
    }
}
