use super::*;
use k8s_openapi::api::apps::v1::{
    DeploymentSpec, DeploymentStrategy, ReplicaSetSpec, ReplicaSetStatus, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

fn pct(s: &str) -> IntOrString {
    IntOrString::String(s.into())
}

fn deployment(replicas: i32, surge: IntOrString, unavailable: IntOrString) -> Deployment {
    Deployment {
        metadata: ObjectMeta {
            name: Some("web".into()),
            generation: Some(1),
            ..Default::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(surge),
                    max_unavailable: Some(unavailable),
                }),
            }),
            template: template("nginx:1"),
            ..Default::default()
        }),
        status: None,
    }
}

fn template(image: &str) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some([("app".to_string(), "web".to_string())].into()),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "c".into(),
                image: Some(image.into()),
                ..Default::default()
            }],
            ..Default::default()
        }),
    }
}

fn rs(name: &str, replicas: i32, available: i32, created: i64) -> Arc<ReplicaSet> {
    Arc::new(ReplicaSet {
        metadata: ObjectMeta {
            name: Some(name.into()),
            creation_timestamp: Some(Time(Timestamp::from_second(created).unwrap())),
            ..Default::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(replicas),
            ..Default::default()
        }),
        status: Some(ReplicaSetStatus {
            replicas,
            available_replicas: Some(available),
            ready_replicas: Some(available),
            ..Default::default()
        }),
    })
}

#[test]
fn percentages_round_surge_up_and_unavailable_down() {
    // The seed's example: 10 replicas at 25%/25% → at most 13 pods, at least 8 available.
    let d = deployment(10, pct("25%"), pct("25%"));
    assert_eq!(max_surge(&d), 3);
    assert_eq!(max_unavailable(&d), 2);
    assert_eq!(scaled_value(&pct("33%"), 10, true), Ok(4));
    assert_eq!(scaled_value(&pct("33%"), 10, false), Ok(3));
    assert_eq!(scaled_value(&IntOrString::Int(7), 10, false), Ok(7));
    assert!(scaled_value(&pct("abc%"), 10, false).is_err());
    assert!(scaled_value(&pct("5"), 10, false).is_err());
}

#[test]
fn both_fenceposts_zero_make_unavailable_one() {
    assert_eq!(
        resolve_fenceposts(Some(&pct("0%")), Some(&pct("10%")), 3),
        Ok((0, 1))
    );
    let d = deployment(1, pct("0%"), pct("25%"));
    assert_eq!(max_unavailable(&d), 1);
    let zero = deployment(0, pct("25%"), pct("25%"));
    assert_eq!(max_unavailable(&zero), 0);
    // maxUnavailable never exceeds the replica count.
    let d = deployment(2, IntOrString::Int(0), IntOrString::Int(5));
    assert_eq!(max_unavailable(&d), 2);
}

#[test]
fn new_replica_set_grows_within_the_surge() {
    let d = deployment(10, pct("25%"), pct("25%"));
    let old = rs("old", 10, 10, 1);
    let new = rs("new", 0, 0, 2);
    assert_eq!(
        new_rs_new_replicas(&d, &[old.clone(), new.clone()], &new),
        3
    );
    let new3 = rs("new", 3, 0, 2);
    assert_eq!(
        new_rs_new_replicas(&d, &[old, new3.clone()], &new3),
        3,
        "already at 13 pods"
    );
    let old8 = rs("old", 8, 8, 1);
    assert_eq!(new_rs_new_replicas(&d, &[old8, new3.clone()], &new3), 5);
    let mut recreate = d.clone();
    recreate.spec.as_mut().unwrap().strategy = Some(DeploymentStrategy {
        type_: Some("Recreate".into()),
        rolling_update: None,
    });
    assert_eq!(
        new_rs_new_replicas(&recreate, std::slice::from_ref(&new3), &new3),
        10
    );
    assert_eq!(max_surge(&recreate), 0);
}

#[test]
fn revisions_and_history_annotations() {
    let mut d = deployment(3, pct("25%"), pct("25%"));
    d.metadata.annotations = Some(
        [
            ("team".to_string(), "a".to_string()),
            (REVISION.to_string(), "9".to_string()),
            (LAST_APPLIED.to_string(), "{}".to_string()),
        ]
        .into(),
    );
    let mut new = (*rs("new", 0, 0, 1)).clone();
    assert!(set_new_rs_annotations(&d, &mut new, 1, false));
    let a = new.metadata.annotations.clone().unwrap();
    assert_eq!(a.get("team").map(String::as_str), Some("a"));
    assert_eq!(a.get(REVISION).map(String::as_str), Some("1"));
    assert_eq!(a.get(DESIRED_REPLICAS).map(String::as_str), Some("3"));
    assert_eq!(a.get(MAX_REPLICAS).map(String::as_str), Some("4"));
    assert!(!a.contains_key(LAST_APPLIED));
    assert!(!a.contains_key(REVISION_HISTORY));
    // Nothing to do the second time.
    assert!(!set_new_rs_annotations(&d, &mut new, 1, true));
    // Rolled back to: the old revision goes to the history.
    assert!(set_new_rs_annotations(&d, &mut new, 3, true));
    assert!(set_new_rs_annotations(&d, &mut new, 5, true));
    let a = new.metadata.annotations.clone().unwrap();
    assert_eq!(a.get(REVISION).map(String::as_str), Some("5"));
    assert_eq!(a.get(REVISION_HISTORY).map(String::as_str), Some("1,3"));
    // Revisions are never lowered.
    assert!(!set_new_rs_annotations(&d, &mut new, 2, true));
    assert!(set_deployment_revision(&mut d, "5"));
    assert!(!set_deployment_revision(&mut d, "5"));
}

#[test]
fn hashes_are_stable_and_sensitive() {
    let a = compute_hash(&template("nginx:1"), None);
    assert_eq!(a, compute_hash(&template("nginx:1"), None));
    assert_ne!(a, compute_hash(&template("nginx:2"), None));
    assert_ne!(a, compute_hash(&template("nginx:1"), Some(1)));
    assert!(a.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
    assert!((1..=10).contains(&a.len()));
    assert_eq!(safe_encode("0123"), "4567");
}

#[test]
fn templates_compare_without_the_hash_label() {
    let a = template("nginx:1");
    let mut b = a.clone();
    b.metadata
        .as_mut()
        .unwrap()
        .labels
        .as_mut()
        .unwrap()
        .insert(POD_TEMPLATE_HASH.into(), "x".into());
    b.spec.as_mut().unwrap().volumes = Some(vec![]);
    assert!(equal_ignore_hash(&a, &b));
    assert!(!equal_ignore_hash(&a, &template("nginx:2")));
}

#[test]
fn conditions_keep_transition_time_for_the_same_status() {
    let t1 = Time(Timestamp::from_second(100).unwrap());
    let t2 = Time(Timestamp::from_second(200).unwrap());
    let mut s = DeploymentStatus::default();
    set_condition(
        &mut s,
        new_condition("Progressing", "True", NEW_RS_CREATED, "a".into(), &t1),
    );
    set_condition(
        &mut s,
        new_condition("Progressing", "True", NEW_RS_CREATED, "b".into(), &t2),
    );
    assert_eq!(
        get_condition(&s, "Progressing").unwrap().message.as_deref(),
        Some("a"),
        "same reason: no-op"
    );
    set_condition(
        &mut s,
        new_condition("Progressing", "True", RS_UPDATED, "c".into(), &t2),
    );
    let c = get_condition(&s, "Progressing").unwrap();
    assert_eq!(c.last_transition_time, Some(t1.clone()));
    assert_eq!(c.last_update_time, Some(t2.clone()));
    set_condition(
        &mut s,
        new_condition("Progressing", "False", TIMED_OUT, "d".into(), &t2),
    );
    assert_eq!(
        get_condition(&s, "Progressing")
            .unwrap()
            .last_transition_time,
        Some(t2)
    );
    remove_condition(&mut s, "Progressing");
    assert!(s.conditions.is_none());
}

#[test]
fn progress_deadline_is_measured_from_the_last_update() {
    let mut d = deployment(1, pct("25%"), pct("25%"));
    d.spec.as_mut().unwrap().progress_deadline_seconds = Some(10);
    let mut s = DeploymentStatus::default();
    let at = Time(Timestamp::from_second(1000).unwrap());
    set_condition(
        &mut s,
        new_condition("Progressing", "True", RS_UPDATED, "x".into(), &at),
    );
    assert!(!deployment_timed_out(
        &d,
        &s,
        Timestamp::from_second(1010).unwrap()
    ));
    assert!(deployment_timed_out(
        &d,
        &s,
        Timestamp::from_second(1011).unwrap()
    ));
    d.spec.as_mut().unwrap().progress_deadline_seconds = Some(i32::MAX);
    assert!(!deployment_timed_out(
        &d,
        &s,
        Timestamp::from_second(99_999).unwrap()
    ));
}

#[test]
fn proportional_scaling_follows_the_max_replicas_annotation() {
    // 10 replicas (max 13) split 6 new / 7 old, scaled to 20 (max 25): +12 to share.
    let d = deployment(20, pct("25%"), pct("25%"));
    let mut new = (*rs("new", 6, 0, 2)).clone();
    set_replicas_annotations(&mut new, 10, 13);
    let mut old = (*rs("old", 7, 7, 1)).clone();
    set_replicas_annotations(&mut old, 10, 13);
    let to_add = 25 - 13;
    let p_old = proportion(&old, &d, to_add, 0);
    let p_new = proportion(&new, &d, to_add, p_old);
    assert_eq!(p_old, 6); // round(7*25/13) - 7 = 13 - 7
    assert_eq!(p_new, 6); // min(round(6*25/13) - 6 = 6, 12 - 6)
                          // Scaling to zero takes everything away.
    let zero = deployment(0, pct("25%"), pct("25%"));
    assert_eq!(proportion(&old, &zero, -13, 0), -7);
}

#[test]
fn status_and_completion() {
    let d = deployment(3, pct("25%"), pct("25%"));
    let new = rs("new", 3, 3, 2);
    let now = Time(Timestamp::from_second(5).unwrap());
    let s = calculate_status(std::slice::from_ref(&new), Some(&new), &d, &now);
    assert_eq!(s.replicas, Some(3));
    assert_eq!(s.updated_replicas, Some(3));
    assert_eq!(s.available_replicas, Some(3));
    assert_eq!(s.unavailable_replicas, Some(0));
    assert_eq!(get_condition(&s, "Available").unwrap().status, "True");
    assert!(deployment_complete(&d, &s));
    let old = rs("old", 3, 0, 1);
    let s = calculate_status(std::slice::from_ref(&old), None, &d, &now);
    assert_eq!(s.updated_replicas, Some(0));
    assert_eq!(
        get_condition(&s, "Available").unwrap().reason.as_deref(),
        Some(MIN_UNAVAILABLE)
    );
    assert!(!deployment_complete(&d, &s));
}

#[test]
fn active_or_latest_and_saturation() {
    let d = deployment(3, pct("25%"), pct("25%"));
    let a = rs("a", 0, 0, 1);
    let b = rs("b", 0, 0, 2);
    assert_eq!(
        find_active_or_latest(None, &[a.clone(), b.clone()])
            .unwrap()
            .metadata
            .name
            .as_deref(),
        Some("b")
    );
    let c = rs("c", 2, 2, 3);
    assert_eq!(
        find_active_or_latest(Some(&c), &[a.clone(), b.clone()])
            .unwrap()
            .metadata
            .name
            .as_deref(),
        Some("c")
    );
    let e = rs("e", 1, 1, 4);
    assert!(find_active_or_latest(Some(&c), &[e]).is_none());
    let mut full = (*rs("full", 3, 3, 5)).clone();
    assert!(!is_saturated(&d, Some(&Arc::new(full.clone()))));
    set_replicas_annotations(&mut full, 3, 4);
    assert!(is_saturated(&d, Some(&Arc::new(full))));
}
