use chrono::TimeZone;
use serde_json::{json, Value};

use super::*;

fn pod_meta() -> PatchMeta {
    PatchMeta::for_builtin("", "v1", "Pod").expect("pod meta")
}

fn deployment_meta() -> PatchMeta {
    PatchMeta::for_builtin("apps", "v1", "Deployment").expect("deployment meta")
}

fn smp(meta: &PatchMeta, original: &Value, patch: Value) -> Result<Value, PatchError> {
    apply_patch(
        meta,
        PatchType::StrategicMerge,
        original,
        patch.to_string().as_bytes(),
    )
}

fn pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "containers": [
                {"name": "app", "image": "nginx:1", "env": [
                    {"name": "A", "value": "1"}, {"name": "B", "value": "2"}
                ]},
                {"name": "sidecar", "image": "busybox"}
            ],
            "volumes": [{"name": "data", "emptyDir": {}}]
        }
    })
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("list")
        .iter()
        .map(|v| v["name"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn content_types() {
    assert_eq!(
        PatchType::from_content_type("application/strategic-merge-patch+json; charset=utf-8"),
        Some(PatchType::StrategicMerge)
    );
    assert_eq!(
        PatchType::from_content_type("application/json-patch+json"),
        Some(PatchType::Json)
    );
    assert_eq!(
        PatchType::from_content_type("application/merge-patch+json"),
        Some(PatchType::Merge)
    );
    assert_eq!(
        PatchType::from_content_type("application/apply-patch+yaml"),
        Some(PatchType::Apply)
    );
    assert_eq!(PatchType::from_content_type("application/json"), None);
}

#[test]
fn smp_merges_containers_and_env_by_name() {
    let patched = smp(
        &pod_meta(),
        &pod(),
        json!({"spec": {"containers": [
            {"name": "app", "image": "nginx:2", "env": [{"name": "B", "value": "20"}, {"name": "C", "value": "3"}]}
        ]}}),
    )
    .unwrap();
    let containers = &patched["spec"]["containers"];
    assert_eq!(names(containers), vec!["app", "sidecar"]);
    assert_eq!(containers[0]["image"], "nginx:2");
    let env = &containers[0]["env"];
    // Upstream puts items new to the server before server-only ones it cannot order.
    assert_eq!(names(env), vec!["A", "B", "C"]);
    assert_eq!(env[1]["value"], "20");
    assert_eq!(patched["metadata"]["labels"]["app"], "web");
}

#[test]
fn smp_new_item_without_order_directive_goes_first_as_upstream() {
    let patched = smp(
        &pod_meta(),
        &pod(),
        json!({"spec": {"containers": [{"name": "new", "image": "x"}]}}),
    )
    .unwrap();
    assert_eq!(
        names(&patched["spec"]["containers"]),
        vec!["new", "app", "sidecar"]
    );
}

#[test]
fn smp_set_element_order_places_items() {
    let patched = smp(
        &pod_meta(),
        &pod(),
        json!({"spec": {
            "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}, {"name": "new"}],
            "containers": [{"name": "new", "image": "x"}]
        }}),
    )
    .unwrap();
    assert_eq!(
        names(&patched["spec"]["containers"]),
        vec!["sidecar", "app", "new"]
    );
    assert!(patched["spec"].get("$setElementOrder/containers").is_none());
}

#[test]
fn smp_patch_delete_removes_list_item_and_map() {
    let patched = smp(
        &pod_meta(),
        &pod(),
        json!({"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}),
    )
    .unwrap();
    assert_eq!(names(&patched["spec"]["containers"]), vec!["app"]);

    let replaced = smp(
        &pod_meta(),
        &pod(),
        json!({"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "x"}]}}),
    )
    .unwrap();
    assert_eq!(names(&replaced["spec"]["containers"]), vec!["only"]);

    let err = smp(
        &pod_meta(),
        &pod(),
        json!({"spec": {"containers": [{"$patch": "delete"}]}}),
    )
    .unwrap_err();
    assert!(
        matches!(err, PatchError::BadPatch(ref m) if m.contains("merge key")),
        "{err:?}"
    );
}

#[test]
fn smp_retain_keys_clears_other_strategy_fields() {
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"replicas": 1, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}
    });
    let patched = smp(
        &deployment_meta(),
        &deployment,
        json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
    )
    .unwrap();
    assert_eq!(patched["spec"]["strategy"], json!({"type": "Recreate"}));
    assert_eq!(patched["spec"]["replicas"], 1);

    let err = smp(
        &deployment_meta(),
        &deployment,
        json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 2}}}}),
    )
    .unwrap_err();
    assert_eq!(err.status_code(), 422);
}

#[test]
fn smp_primitive_sets_and_delete_from_primitive_list() {
    let mut p = pod();
    p["metadata"]["finalizers"] = json!(["a", "b"]);
    let added = smp(
        &pod_meta(),
        &p,
        json!({"metadata": {"finalizers": ["c", "a"]}}),
    )
    .unwrap();
    assert_eq!(added["metadata"]["finalizers"], json!(["c", "a", "b"]));
    let deleted = smp(
        &pod_meta(),
        &p,
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
    )
    .unwrap();
    assert_eq!(deleted["metadata"]["finalizers"], json!(["b"]));
}

#[test]
fn smp_replaces_lists_without_merge_strategy_and_deletes_nulls() {
    let mut p = pod();
    p["spec"]["tolerations"] = json!([{"key": "a", "operator": "Exists"}]);
    let patched = smp(
        &pod_meta(),
        &p,
        json!({"metadata": {"labels": {"app": null, "tier": "x"}},
               "spec": {"tolerations": [{"key": "b", "operator": "Exists"}]}}),
    )
    .unwrap();
    assert_eq!(
        patched["spec"]["tolerations"],
        json!([{"key": "b", "operator": "Exists"}])
    );
    assert_eq!(patched["metadata"]["labels"], json!({"tier": "x"}));
}

#[test]
fn smp_is_unsupported_for_custom_resources() {
    let meta = PatchMeta::from_schema(&json!({"type": "object"}));
    let err = smp(&meta, &json!({"spec": {}}), json!({"spec": {"a": 1}})).unwrap_err();
    assert_eq!(err.status_code(), 415);
    let unknown = smp(&PatchMeta::unknown(), &json!({}), json!({})).unwrap_err();
    assert_eq!(unknown.status_code(), 415);
}

#[test]
fn smp_rejects_bad_documents() {
    let err =
        apply_patch(&pod_meta(), PatchType::StrategicMerge, &pod(), b"{not json").unwrap_err();
    assert_eq!(err.status_code(), 400);
    let err = smp(&pod_meta(), &pod(), json!({"spec": {"$patch": "explode"}})).unwrap_err();
    assert_eq!(err.status_code(), 400);
    let err = smp(&pod_meta(), &pod(), json!([1])).unwrap_err();
    assert_eq!(err.status_code(), 400);
}

#[test]
fn json_patch_applies_and_test_failure_is_422() {
    let patch = br#"[{"op":"test","path":"/metadata/labels/app","value":"web"},
                     {"op":"replace","path":"/spec/containers/0/image","value":"nginx:3"},
                     {"op":"add","path":"/metadata/labels/tier","value":"fe"}]"#;
    let patched = apply_patch(&pod_meta(), PatchType::Json, &pod(), patch).unwrap();
    assert_eq!(patched["spec"]["containers"][0]["image"], "nginx:3");
    assert_eq!(patched["metadata"]["labels"]["tier"], "fe");

    let failing = br#"[{"op":"test","path":"/metadata/labels/app","value":"db"},
                       {"op":"remove","path":"/metadata/labels"}]"#;
    let err = apply_patch(&pod_meta(), PatchType::Json, &pod(), failing).unwrap_err();
    assert_eq!(
        err,
        PatchError::Invalid("testing value /metadata/labels/app failed: test failed".into())
    );
    let missing = br#"[{"op":"remove","path":"/spec/nothing"}]"#;
    let err = apply_patch(&pod_meta(), PatchType::Json, &pod(), missing).unwrap_err();
    assert_eq!(err.status_code(), 422);
    let malformed = br#"{"op":"add"}"#;
    let err = apply_patch(&pod_meta(), PatchType::Json, &pod(), malformed).unwrap_err();
    assert_eq!(err.status_code(), 400);
}

#[test]
fn merge_patch_replaces_lists_and_deletes_nulls() {
    let patch =
        br#"{"metadata":{"labels":{"app":null,"x":"y"}},"spec":{"containers":[{"name":"only"}]}}"#;
    let patched = apply_patch(&pod_meta(), PatchType::Merge, &pod(), patch).unwrap();
    assert_eq!(patched["metadata"]["labels"], json!({"x": "y"}));
    assert_eq!(patched["spec"]["containers"], json!([{"name": "only"}]));
    assert_eq!(patched["spec"]["volumes"][0]["name"], "data");
}

// --- managed fields and server-side apply ---

fn at(secs: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
}

fn update<'a>(manager: &'a str, api_version: &'a str, secs: i64) -> ManagedFieldsUpdate<'a> {
    ManagedFieldsUpdate {
        manager,
        operation: Operation::Update,
        subresource: None,
        time: at(secs),
        api_version,
    }
}

fn apply_by<'a>(manager: &'a str, secs: i64) -> ManagedFieldsUpdate<'a> {
    ManagedFieldsUpdate {
        manager,
        operation: Operation::Apply,
        subresource: None,
        time: at(secs),
        api_version: "apps/v1",
    }
}

fn deployment(replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx:1"}]}
            }
        }
    })
}

#[test]
fn create_records_update_entry_in_fields_v1() {
    let meta = deployment_meta();
    let mut obj = deployment(3);
    obj["metadata"]["uid"] = json!("u-1");
    obj["metadata"]["resourceVersion"] = json!("5");
    update_managed_fields(
        &meta,
        None,
        &mut obj,
        &update("kubectl-create", "apps/v1", 0),
    );
    let entries = obj["metadata"]["managedFields"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(
        entries[0],
        json!({
            "manager": "kubectl-create",
            "operation": "Update",
            "apiVersion": "apps/v1",
            "time": "2023-11-14T22:13:20Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                "f:spec": {
                    "f:replicas": {},
                    "f:selector": {},
                    "f:template": {
                        "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                        "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {
                            ".": {}, "f:image": {}, "f:name": {}
                        }}}
                    }
                }
            }
        })
    );
}

#[test]
fn update_moves_changed_fields_to_the_new_manager() {
    let meta = deployment_meta();
    let mut created = deployment(3);
    update_managed_fields(&meta, None, &mut created, &update("creator", "apps/v1", 0));
    let mut scaled = created.clone();
    scaled["spec"]["replicas"] = json!(5);
    update_managed_fields(
        &meta,
        Some(&created),
        &mut scaled,
        &update("scaler", "apps/v1", 10),
    );
    let entries = scaled["metadata"]["managedFields"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["manager"], "creator");
    assert!(entries[0]["fieldsV1"]["f:spec"].get("f:replicas").is_none());
    assert_eq!(entries[1]["manager"], "scaler");
    assert_eq!(
        entries[1]["fieldsV1"],
        json!({"f:spec": {"f:replicas": {}}})
    );

    // A no-op write changes nobody's fields or timestamps.
    let mut again = scaled.clone();
    update_managed_fields(
        &meta,
        Some(&scaled),
        &mut again,
        &update("other", "apps/v1", 20),
    );
    assert_eq!(
        again["metadata"]["managedFields"],
        scaled["metadata"]["managedFields"]
    );
}

#[test]
fn stored_entries_are_kept_and_sent_ones_are_encoded_again() {
    let meta = deployment_meta();
    let mut created = deployment(3);
    update_managed_fields(&meta, None, &mut created, &update("creator", "apps/v1", 0));
    let mut labelled = created.clone();
    labelled["metadata"]["labels"]["team"] = json!("a");
    update_managed_fields(
        &meta,
        Some(&created),
        &mut labelled,
        &update("labeller", "apps/v1", 10),
    );
    let entries = labelled["metadata"]["managedFields"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(
        entries[0], created["metadata"]["managedFields"][0],
        "the creator's fields did not change"
    );
    assert_eq!(
        entries[1]["fieldsV1"],
        json!({"f:metadata": {"f:labels": {"f:team": {}}}})
    );

    // Entries a client sends are its own: decoded and encoded again (here into canonical
    // order), never stored as sent.
    let mut sent = labelled.clone();
    sent["metadata"]["managedFields"] = json!([{
        "manager": "creator", "operation": "Update", "apiVersion": "apps/v1",
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:spec": {"f:paused": {}}, "f:metadata": {"f:labels": {"f:team": {}}}},
    }]);
    sent["spec"]["replicas"] = json!(4);
    update_managed_fields(
        &meta,
        Some(&labelled),
        &mut sent,
        &update("scaler", "apps/v1", 20),
    );
    let entries = sent["metadata"]["managedFields"].as_array().unwrap();
    assert_eq!(entries[0]["manager"], "creator", "{entries:?}");
    assert_eq!(
        serde_json::to_string(&entries[0]["fieldsV1"]).unwrap(),
        r#"{"f:metadata":{"f:labels":{"f:team":{}}},"f:spec":{"f:paused":{}}}"#
    );
}

#[test]
fn apply_conflicts_with_an_updater_and_force_takes_ownership() {
    let meta = deployment_meta();
    let mut live = deployment(3);
    update_managed_fields(
        &meta,
        None,
        &mut live,
        &update("kubectl-client-side-apply", "apps/v1", 0),
    );
    let config = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 5}
    });
    let err =
        server_side_apply(&meta, Some(&live), &config, &apply_by("ssa", 5), false).unwrap_err();
    let PatchError::Conflict(conflicts) = &err else {
        panic!("expected conflict, got {err:?}");
    };
    assert_eq!(
        conflicts.message(),
        "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas"
    );
    assert_eq!(conflicts.conflicts[0].field, ".spec.replicas");
    assert_eq!(err.status_code(), 409);

    // Applying the value the other manager already set is not a conflict: ownership is shared.
    let same = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"}, "spec": {"replicas": 3}});
    let shared = server_side_apply(&meta, Some(&live), &same, &apply_by("ssa", 5), false).unwrap();
    let entries = shared["metadata"]["managedFields"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert!(entries
        .iter()
        .all(|e| e["fieldsV1"]["f:spec"].get("f:replicas").is_some()));

    let forced = server_side_apply(&meta, Some(&live), &config, &apply_by("ssa", 5), true).unwrap();
    assert_eq!(forced["spec"]["replicas"], 5);
    assert_eq!(
        forced["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1"
    );
    let entries = forced["metadata"]["managedFields"].as_array().unwrap();
    let applier = entries.iter().find(|e| e["manager"] == "ssa").unwrap();
    assert_eq!(applier["operation"], "Apply");
    assert_eq!(applier["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));
    let updater = entries
        .iter()
        .find(|e| e["manager"] == "kubectl-client-side-apply")
        .unwrap();
    assert!(updater["fieldsV1"]["f:spec"].get("f:replicas").is_none());
    assert_eq!(entries[0]["operation"], "Apply", "Apply entries sort first");
}

#[test]
fn apply_removes_fields_the_applier_stopped_applying() {
    let meta = deployment_meta();
    let first = deployment(2);
    let created = server_side_apply(&meta, None, &first, &apply_by("ssa", 0), false).unwrap();
    assert_eq!(created["metadata"]["managedFields"][0]["manager"], "ssa");

    let mut second = deployment(2);
    second["metadata"]["labels"] = json!({});
    second["spec"]["template"]["spec"]["containers"] =
        json!([{"name": "nginx", "image": "nginx:2"}]);
    second["metadata"].as_object_mut().unwrap().remove("labels");
    second["spec"].as_object_mut().unwrap().remove("replicas");
    let applied =
        server_side_apply(&meta, Some(&created), &second, &apply_by("ssa", 10), false).unwrap();
    assert!(applied["spec"].get("replicas").is_none());
    assert!(applied["metadata"]["labels"].get("app").is_none());
    assert_eq!(
        applied["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:2"
    );
    let fields = &applied["metadata"]["managedFields"][0]["fieldsV1"];
    assert!(fields["f:spec"].get("f:replicas").is_none());
    assert_eq!(
        applied["metadata"]["managedFields"][0]["time"],
        "2023-11-14T22:13:30Z"
    );
}

#[test]
fn apply_keeps_a_dropped_field_another_manager_owns() {
    let meta = deployment_meta();
    let created = server_side_apply(&meta, None, &deployment(2), &apply_by("a", 0), false).unwrap();
    let shared = server_side_apply(
        &meta,
        Some(&created),
        &deployment(2),
        &apply_by("b", 1),
        false,
    )
    .unwrap();
    let mut without = deployment(2);
    without["spec"].as_object_mut().unwrap().remove("replicas");
    let applied =
        server_side_apply(&meta, Some(&shared), &without, &apply_by("a", 2), false).unwrap();
    assert_eq!(applied["spec"]["replicas"], 2);
}

#[test]
fn apply_merges_list_items_by_key_and_rejects_managed_fields() {
    let meta = pod_meta();
    let live = server_side_apply(&meta, None, &pod(), &apply_by("one", 0), false).unwrap();
    let config = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "extra", "image": "x"}]}});
    let merged =
        server_side_apply(&meta, Some(&live), &config, &apply_by("two", 1), false).unwrap();
    assert_eq!(
        names(&merged["spec"]["containers"]),
        vec!["app", "sidecar", "extra"]
    );

    let mut bad = config.clone();
    bad["metadata"]["managedFields"] = json!([]);
    let err = server_side_apply(&meta, Some(&live), &bad, &apply_by("two", 1), false).unwrap_err();
    assert_eq!(err.status_code(), 400);
}

#[test]
fn multiple_conflicts_message_groups_by_manager() {
    let conflicts = ApplyConflicts {
        conflicts: vec![
            ApplyConflict {
                manager: "m".into(),
                operation: Operation::Update,
                api_version: "v1".into(),
                subresource: None,
                field: ".a".into(),
            },
            ApplyConflict {
                manager: "m".into(),
                operation: Operation::Update,
                api_version: "v1".into(),
                subresource: None,
                field: ".b".into(),
            },
        ],
    };
    assert_eq!(
        conflicts.message(),
        "Apply failed with 2 conflicts: conflicts with \"m\" using v1:\n- .a\n- .b"
    );
}

#[test]
fn smp_accepts_the_patch_kubectl_apply_generates() {
    // Recorded from `kubectl apply` (1.32) adding container "b" and bumping "a".
    let live = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "resourceVersion": "1"},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "a", "image": "a:1"}]}}}});
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
        "containers": [{"image": "a:2", "name": "a"}, {"image": "b:1", "name": "b"}]
    }}}});
    let patched = smp(&deployment_meta(), &live, patch).unwrap();
    assert_eq!(
        patched["spec"]["template"]["spec"]["containers"],
        json!([{"name": "a", "image": "a:2"}, {"image": "b:1", "name": "b"}])
    );
    assert_eq!(patched["metadata"]["resourceVersion"], "1");
}

#[test]
fn odd_input_is_an_error_or_a_result_never_a_panic() {
    let meta = pod_meta();
    let odd_patches = [
        json!({"spec": {"containers": [1, {"name": "a"}]}}),
        json!({"spec": {"containers": [[1]]}}),
        json!({"spec": {"$setElementOrder/containers": 5}}),
        json!({"spec": {"$setElementOrder/containers": [{"name": "zzz"}], "containers": [{"name": "a"}]}}),
        json!({"spec": {"$retainKeys": "x"}}),
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}}),
        json!({"spec": {"containers": {"name": "not-a-list"}}}),
        json!({"spec": {"containers": [{"name": "app", "$patch": "merge"}]}}),
        json!({"spec": 7}),
    ];
    for p in odd_patches {
        let _ = smp(&meta, &pod(), p);
    }
    // Garbage managed fields on the live object are ignored, not trusted.
    let mut live = pod();
    live["metadata"]["managedFields"] = json!([{"manager": 3, "fieldsV1": {"q:": {}}}, "x"]);
    let odd_configs = [
        json!({"spec": {"containers": ["x", {"name": 5}, {"image": "no-name"}]}}),
        json!({"spec": {"containers": {"a": 1}}}),
        json!({"metadata": {"finalizers": [{"a": 1}, [2]]}}),
        json!({"spec": null}),
    ];
    for c in odd_configs {
        let _ = server_side_apply(&meta, Some(&live), &c, &apply_by("m", 0), false);
        let _ = server_side_apply(&meta, Some(&c), &pod(), &apply_by("m", 0), true);
        let mut new = c.clone();
        update_managed_fields(&meta, Some(&live), &mut new, &update("u", "v1", 0));
    }
    let err = server_side_apply(&meta, None, &json!([1]), &apply_by("m", 0), false).unwrap_err();
    assert_eq!(err.status_code(), 400);
}
