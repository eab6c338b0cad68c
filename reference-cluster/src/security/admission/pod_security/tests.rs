use serde_json::{json, Value};

use super::*;
use crate::security::UserInfo;

fn ns(labels: Value) -> Value {
    json!({"metadata": {"name": "ns", "labels": labels}})
}

fn create_pod(name: &str) -> Attributes {
    Attributes::core(
        Operation::Create,
        "pods",
        "Pod",
        "ns",
        name,
        UserInfo::new("u", &[]),
    )
}

fn pod(spec: Value) -> Value {
    json!({"metadata": {"name": "x"}, "spec": spec})
}

fn plain() -> Value {
    pod(json!({"containers": [{"name": "c", "image": "nginx"}]}))
}

fn compliant() -> Value {
    pod(json!({
        "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "c", "image": "nginx", "securityContext": {
            "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}
        }}]
    }))
}

fn restricted(p: &Value) -> Vec<Violation> {
    let policy = Policy {
        level: Level::Restricted,
        version: Version::Latest,
    };
    evaluate(policy, &p["metadata"], &p["spec"])
}

fn baseline(p: &Value) -> Vec<Violation> {
    let policy = Policy {
        level: Level::Baseline,
        version: Version::Latest,
    };
    evaluate(policy, &p["metadata"], &p["spec"])
}

#[test]
fn restricted_enforce_rejects_with_upstream_message() {
    let err = admit(
        &create_pod("x"),
        &plain(),
        None,
        Some(&ns(
            json!({"pod-security.kubernetes.io/enforce": "restricted"}),
        )),
        &Config::default(),
    )
    .unwrap_err();
    assert_eq!(err.code, 403);
    assert_eq!(
        err.message,
        r#"pods "x" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#
    );
}

#[test]
fn compliant_pods_pass_every_level() {
    let labels = json!({"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/warn": "restricted"});
    let out = admit(
        &create_pod("x"),
        &compliant(),
        None,
        Some(&ns(labels)),
        &Config::default(),
    )
    .unwrap();
    assert!(out.warnings.is_empty());
    assert_eq!(
        out.audit_annotations[ENFORCE_POLICY_ANNOTATION],
        "restricted:latest"
    );
    assert!(restricted(&compliant()).is_empty());
}

#[test]
fn warn_and_audit_modes_do_not_reject() {
    let labels = json!({
        "pod-security.kubernetes.io/enforce": "baseline",
        "pod-security.kubernetes.io/warn": "restricted",
        "pod-security.kubernetes.io/warn-version": "v1.30",
        "pod-security.kubernetes.io/audit": "restricted",
    });
    let out = admit(
        &create_pod("x"),
        &plain(),
        None,
        Some(&ns(labels)),
        &Config::default(),
    )
    .unwrap();
    assert_eq!(out.warnings.len(), 1);
    assert!(
        out.warnings[0].starts_with(
            r#"would violate PodSecurity "restricted:v1.30": allowPrivilegeEscalation != false"#
        ),
        "{}",
        out.warnings[0]
    );
    assert!(out.audit_annotations[AUDIT_VIOLATIONS_ANNOTATION]
        .starts_with(r#"would violate PodSecurity "restricted:latest": "#));
}

#[test]
fn baseline_checks_report_each_violation() {
    let p = pod(json!({
        "hostNetwork": true, "hostPID": true,
        "securityContext": {"sysctls": [{"name": "kernel.msgmax", "value": "1"}, {"name": "net.ipv4.tcp_syncookies", "value": "1"}]},
        "volumes": [{"name": "host", "hostPath": {"path": "/"}}, {"name": "cfg", "configMap": {"name": "c"}}],
        "containers": [
            {"name": "a", "ports": [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 9, "hostPort": 10}],
             "securityContext": {"privileged": true, "capabilities": {"add": ["NET_ADMIN", "CHOWN", "SYS_TIME"]}}},
            {"name": "b", "securityContext": {"procMount": "Unmasked", "seccompProfile": {"type": "Unconfined"},
             "seLinuxOptions": {"type": "spc_t", "user": "root"}, "windowsOptions": {"hostProcess": true},
             "appArmorProfile": {"type": "Unconfined"}}}
        ]
    }));
    let detail = forbidden_detail(&baseline(&p));
    assert_eq!(
        detail,
        concat!(
            r#"forbidden AppArmor profile (container "b" must not set AppArmor profile type to "Unconfined"), "#,
            r#"non-default capabilities (container "a" must not include "NET_ADMIN", "SYS_TIME" in securityContext.capabilities.add), "#,
            r#"host namespaces (hostNetwork=true, hostPID=true), "#,
            r#"hostPath volumes (volume "host"), "#,
            r#"hostPort (container "a" uses hostPorts 10, 8080), "#,
            r#"privileged (container "a" must not set securityContext.privileged=true), "#,
            r#"procMount (container "b" must not set securityContext.procMount to "Unmasked"), "#,
            r#"seLinuxOptions (container "b" set forbidden securityContext.seLinuxOptions: type "spc_t"; user may not be set), "#,
            r#"seccompProfile (container "b" must not set securityContext.seccompProfile.type to "Unconfined"), "#,
            r#"forbidden sysctls (kernel.msgmax), "#,
            r#"hostProcess (container "b" must not set securityContext.windowsOptions.hostProcess=true)"#,
        )
    );
}

#[test]
fn restricted_overrides_the_baseline_versions_of_its_checks() {
    let p = pod(json!({
        "securityContext": {"runAsNonRoot": true, "runAsUser": 0, "seccompProfile": {"type": "Unconfined"}},
        "volumes": [{"name": "host", "hostPath": {"path": "/"}}, {"name": "nfs", "nfs": {"server": "s", "path": "/"}}],
        "containers": [{"name": "c", "securityContext": {"allowPrivilegeEscalation": false,
            "runAsNonRoot": false, "capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN"]}}}]
    }));
    let reasons: Vec<String> = restricted(&p)
        .into_iter()
        .map(|v| format!("{} ({})", v.reason, v.detail))
        .collect();
    assert_eq!(
        reasons,
        vec![
            r#"unrestricted capabilities (container "c" must not include "SYS_ADMIN" in securityContext.capabilities.add)"#,
            r#"restricted volume types (volumes "host", "nfs" use restricted volume types "hostPath", "nfs")"#,
            r#"runAsNonRoot != true (container "c" must not set securityContext.runAsNonRoot=false)"#,
            r#"runAsUser=0 (pod must not set runAsUser=0)"#,
            r#"seccompProfile (pod must not set securityContext.seccompProfile.type to "Unconfined")"#,
        ]
    );
}

#[test]
fn versions_select_the_checks_of_their_time() {
    let p = pod(
        json!({"securityContext": {"runAsNonRoot": true, "runAsUser": 0, "seccompProfile": {"type": "RuntimeDefault"}},
                      "containers": [{"name": "c", "securityContext": {"allowPrivilegeEscalation": false}}]}),
    );
    let at = |minor| {
        evaluate(
            Policy {
                level: Level::Restricted,
                version: Version::Minor(minor),
            },
            &p["metadata"],
            &p["spec"],
        )
    };
    // runAsUser joined restricted in 1.23, capabilities in 1.22.
    assert!(at(21).is_empty());
    assert_eq!(at(22).len(), 1);
    assert_eq!(at(23).len(), 2);
    assert_eq!(Version::parse("v1.99").unwrap().to_string(), "v1.99");
    assert_eq!(at(99).len(), 2);
    assert_eq!(Version::parse("v2.1"), None);
    assert_eq!(Version::parse("1.25"), None);
}

#[test]
fn windows_pods_skip_linux_only_checks() {
    let p = pod(
        json!({"os": {"name": "windows"}, "securityContext": {"runAsNonRoot": true}, "containers": [{"name": "c"}]}),
    );
    assert!(restricted(&p).is_empty());
}

#[test]
fn workloads_get_warnings_but_are_never_rejected() {
    let deploy = json!({"metadata": {"name": "web"}, "spec": {"template": plain()}});
    let mut a = create_pod("web");
    a.group = "apps".into();
    a.resource = "deployments".into();
    let labels = json!({"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/warn": "restricted"});
    let out = admit(
        &a,
        &deploy,
        None,
        Some(&ns(labels.clone())),
        &Config::default(),
    )
    .unwrap();
    assert_eq!(out.warnings.len(), 1);
    assert!(out.warnings[0].starts_with(
        "would violate PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false"
    ));
    let cron = json!({"metadata": {"name": "c"}, "spec": {"jobTemplate": {"spec": {"template": plain()}}}});
    a.group = "batch".into();
    a.resource = "cronjobs".into();
    assert_eq!(
        admit(
            &a,
            &cron,
            None,
            Some(&ns(labels.clone())),
            &Config::default()
        )
        .unwrap()
        .warnings
        .len(),
        1
    );
    // An update that leaves the template alone is not re-evaluated.
    a.operation = Operation::Update;
    assert!(admit(
        &a,
        &cron,
        Some(&cron),
        Some(&ns(labels)),
        &Config::default()
    )
    .unwrap()
    .warnings
    .is_empty());
}

#[test]
fn invalid_labels_fail_closed_and_are_refused_on_namespaces() {
    let err = admit(
        &create_pod("x"),
        &plain(),
        None,
        Some(&ns(json!({"pod-security.kubernetes.io/enforce": "strict"}))),
        &Config::default(),
    )
    .unwrap_err();
    assert!(err
        .message
        .contains(r#"violates PodSecurity "restricted:latest""#));
    let a = Attributes::core(
        Operation::Create,
        "namespaces",
        "Namespace",
        "",
        "ns",
        UserInfo::new("u", &[]),
    );
    let err = admit_namespace(
        &a,
        &ns(json!({"pod-security.kubernetes.io/enforce": "strict"})),
        None,
        &[],
        &Config::default(),
    )
    .unwrap_err();
    assert_eq!(err.code, 422);
    assert_eq!(
        err.message,
        r#"Namespace "ns" is invalid: metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "strict": must be one of privileged, baseline, restricted"#
    );
}

#[test]
fn tightening_enforce_warns_about_existing_pods() {
    let mut a = Attributes::core(
        Operation::Update,
        "namespaces",
        "Namespace",
        "",
        "ns",
        UserInfo::new("u", &[]),
    );
    a.name = "ns".into();
    let mut p2 = plain();
    p2["metadata"]["name"] = json!("y");
    let mut priv_pod = plain();
    priv_pod["metadata"]["name"] = json!("z");
    priv_pod["spec"]["containers"][0]["securityContext"] = json!({"privileged": true});
    let out = admit_namespace(
        &a,
        &ns(json!({"pod-security.kubernetes.io/enforce": "baseline"})),
        Some(&ns(json!({}))),
        &[plain(), compliant(), priv_pod.clone()],
        &Config::default(),
    )
    .unwrap();
    assert_eq!(
        out.warnings,
        vec![
            r#"existing pods in namespace "ns" violate the new PodSecurity enforce level "baseline:latest""#.to_string(),
            "z: privileged".to_string(),
        ]
    );
    let out = admit_namespace(
        &a,
        &ns(json!({"pod-security.kubernetes.io/enforce": "restricted"})),
        Some(&ns(json!({}))),
        &[plain(), p2],
        &Config::default(),
    )
    .unwrap();
    assert_eq!(out.warnings[1], "x (and 1 other pod): allowPrivilegeEscalation != false, unrestricted capabilities, runAsNonRoot != true, seccompProfile");
}

#[test]
fn exemptions_and_insignificant_updates_skip_evaluation() {
    let labels = ns(json!({"pod-security.kubernetes.io/enforce": "restricted"}));
    let cfg = Config {
        exempt_usernames: vec!["system:serviceaccount:kube-system:replicaset-controller".into()],
        ..Config::default()
    };
    let mut a = create_pod("x");
    a.user = UserInfo::new(
        "system:serviceaccount:kube-system:replicaset-controller",
        &[],
    );
    let out = admit(&a, &plain(), None, Some(&labels), &cfg).unwrap();
    assert_eq!(out.audit_annotations[EXEMPT_ANNOTATION], "user");
    let mut upd = create_pod("x");
    upd.operation = Operation::Update;
    let mut new_image = plain();
    new_image["spec"]["containers"][0]["image"] = json!("nginx:2");
    new_image["metadata"]["labels"] = json!({"a": "b"});
    assert!(admit(
        &upd,
        &new_image,
        Some(&plain()),
        Some(&labels),
        &Config::default()
    )
    .is_ok());
    // Status and other subresources are not pod specs.
    assert!(admit(
        &create_pod("x").with_subresource("status"),
        &plain(),
        None,
        Some(&labels),
        &Config::default()
    )
    .is_ok());
}

#[test]
fn malformed_pods_never_panic() {
    let labels = ns(json!({"pod-security.kubernetes.io/enforce": "restricted"}));
    for junk in [
        json!(null),
        json!({"spec": 5}),
        json!({"spec": {"containers": "x", "volumes": [1, null], "securityContext": []}}),
        json!({"spec": {"containers": [null, {"securityContext": {"capabilities": {"add": [1]}}}]}}),
    ] {
        let _ = admit(
            &create_pod("x"),
            &junk,
            None,
            Some(&labels),
            &Config::default(),
        );
    }
}
