//! The Pod Security Standards checks (`k8s.io/pod-security-admission/policy/check_*.go`), each
//! returning upstream's forbidden reason and detail text.

use std::collections::BTreeSet;

use serde_json::Value;

/// A failed check: `reason (detail)` in messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub reason: String,
    pub detail: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CheckLevel {
    Baseline,
    Restricted,
}

/// One check with the first minor version (of 1.x) it applies to, and the baseline checks it
/// replaces at the restricted level.
pub struct Check {
    pub id: &'static str,
    pub level: CheckLevel,
    pub since_minor: u32,
    pub overrides: &'static [&'static str],
    pub run: fn(&Value, &Value, u32) -> Option<Violation>,
}

/// Every check, baseline ones first, each group in ID order: upstream evaluates them in this
/// order, so messages list violations in it.
pub const CHECKS: &[Check] = &[
    Check {
        id: "appArmorProfile",
        level: CheckLevel::Baseline,
        since_minor: 0,
        overrides: &[],
        run: app_armor,
    },
    Check {
        id: "capabilities_baseline",
        level: CheckLevel::Baseline,
        since_minor: 0,
        overrides: &[],
        run: capabilities_baseline,
    },
    Check {
        id: "hostNamespaces",
        level: CheckLevel::Baseline,
        since_minor: 0,
        overrides: &[],
        run: host_namespaces,
    },
    Check {
        id: "hostPathVolumes",
        level: CheckLevel::Baseline,
        since_minor: 0,
        overrides: &[],
        run: host_path_volumes,
    },
    Check {
        id: "hostPorts",
        level: CheckLevel::Baseline,
        since_minor: 0,
        overrides: &[],
        run: host_ports,
    },
    Check {
        id: "privileged",
        level: CheckLevel::Baseline,
        since_minor: 0,
        overrides: &[],
        run: privileged,
    },
    Check {
        id: "procMount",
        level: CheckLevel::Baseline,
        since_minor: 0,
        overrides: &[],
        run: proc_mount,
    },
    Check {
        id: "seLinuxOptions",
        level: CheckLevel::Baseline,
        since_minor: 0,
        overrides: &[],
        run: se_linux_options,
    },
    Check {
        id: "seccompProfile_baseline",
        level: CheckLevel::Baseline,
        since_minor: 19,
        overrides: &[],
        run: seccomp_baseline,
    },
    Check {
        id: "sysctls",
        level: CheckLevel::Baseline,
        since_minor: 0,
        overrides: &[],
        run: sysctls,
    },
    Check {
        id: "windowsHostProcess",
        level: CheckLevel::Baseline,
        since_minor: 0,
        overrides: &[],
        run: windows_host_process,
    },
    Check {
        id: "allowPrivilegeEscalation",
        level: CheckLevel::Restricted,
        since_minor: 8,
        overrides: &[],
        run: allow_privilege_escalation,
    },
    Check {
        id: "capabilities_restricted",
        level: CheckLevel::Restricted,
        since_minor: 22,
        overrides: &["capabilities_baseline"],
        run: capabilities_restricted,
    },
    Check {
        id: "restrictedVolumes",
        level: CheckLevel::Restricted,
        since_minor: 0,
        overrides: &["hostPathVolumes"],
        run: restricted_volumes,
    },
    Check {
        id: "runAsNonRoot",
        level: CheckLevel::Restricted,
        since_minor: 0,
        overrides: &[],
        run: run_as_non_root,
    },
    Check {
        id: "runAsUser",
        level: CheckLevel::Restricted,
        since_minor: 23,
        overrides: &[],
        run: run_as_user,
    },
    Check {
        id: "seccompProfile_restricted",
        level: CheckLevel::Restricted,
        since_minor: 19,
        overrides: &["seccompProfile_baseline"],
        run: seccomp_restricted,
    },
];

fn pluralize<'a>(one: &'a str, many: &'a str, n: usize) -> &'a str {
    if n == 1 {
        one
    } else {
        many
    }
}

fn join_quote<S: AsRef<str>>(items: &[S]) -> String {
    items
        .iter()
        .map(|s| crate::security::go_quote(s.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Init containers, containers, then ephemeral containers, as upstream's `visitContainers`.
fn containers(spec: &Value) -> impl Iterator<Item = &Value> {
    ["initContainers", "containers", "ephemeralContainers"]
        .into_iter()
        .flat_map(move |k| spec.get(k).and_then(Value::as_array).into_iter().flatten())
        .filter(|c| c.is_object())
}

fn name(c: &Value) -> String {
    c.get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn csc<'a>(c: &'a Value, key: &str) -> Option<&'a Value> {
    c.get("securityContext")?.get(key).filter(|v| !v.is_null())
}

fn psc<'a>(spec: &'a Value, key: &str) -> Option<&'a Value> {
    spec.get("securityContext")?
        .get(key)
        .filter(|v| !v.is_null())
}

fn is_windows(spec: &Value) -> bool {
    spec.pointer("/os/name").and_then(Value::as_str) == Some("windows")
}

fn containers_phrase(bad: &[String]) -> String {
    format!(
        "{} {}",
        pluralize("container", "containers", bad.len()),
        join_quote(bad)
    )
}

fn violation(reason: &str, detail: String) -> Option<Violation> {
    Some(Violation {
        reason: reason.to_string(),
        detail,
    })
}

fn app_armor(meta: &Value, spec: &Value, _: u32) -> Option<Violation> {
    let allowed_type = |t: &str| matches!(t, "RuntimeDefault" | "Localhost");
    let mut setters = Vec::new();
    let mut values = BTreeSet::new();
    if let Some(t) = psc(spec, "appArmorProfile")
        .and_then(|p| p.get("type"))
        .and_then(Value::as_str)
    {
        if !allowed_type(t) {
            setters.push("pod".to_string());
            values.insert(t.to_string());
        }
    }
    let mut bad = Vec::new();
    for c in containers(spec) {
        if let Some(t) = csc(c, "appArmorProfile")
            .and_then(|p| p.get("type"))
            .and_then(Value::as_str)
        {
            if !allowed_type(t) {
                bad.push(name(c));
                values.insert(t.to_string());
            }
        }
    }
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    let mut values: Vec<String> = values.into_iter().collect();
    let mut annotations: Vec<String> = meta
        .pointer("/annotations")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.starts_with("container.apparmor.security.beta.kubernetes.io/"))
        .filter_map(|(k, v)| {
            let v = v.as_str().unwrap_or_default();
            let ok = v.is_empty() || v == "runtime/default" || v.starts_with("localhost/");
            (!ok).then(|| format!("{k}={}", crate::security::go_quote(v)))
        })
        .collect();
    if !annotations.is_empty() {
        annotations.sort();
        setters.push(pluralize("annotation", "annotations", annotations.len()).to_string());
        values.extend(annotations);
    }
    if setters.is_empty() {
        return None;
    }
    violation(
        pluralize(
            "forbidden AppArmor profile",
            "forbidden AppArmor profiles",
            values.len(),
        ),
        format!(
            "{} must not set AppArmor profile type to {}",
            setters.join(" and "),
            join_quote(&values)
        ),
    )
}

const BASELINE_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

fn added_capabilities(c: &Value) -> Vec<&str> {
    csc(c, "capabilities")
        .and_then(|caps| caps.get("add"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn capabilities_baseline(_: &Value, spec: &Value, _: u32) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut caps = BTreeSet::new();
    for c in containers(spec) {
        let forbidden: Vec<&str> = added_capabilities(c)
            .into_iter()
            .filter(|cap| !BASELINE_CAPABILITIES.contains(cap))
            .collect();
        if !forbidden.is_empty() {
            bad.push(name(c));
            caps.extend(forbidden.into_iter().map(String::from));
        }
    }
    if bad.is_empty() {
        return None;
    }
    let caps: Vec<String> = caps.into_iter().collect();
    violation(
        "non-default capabilities",
        format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&bad),
            join_quote(&caps)
        ),
    )
}

fn host_namespaces(_: &Value, spec: &Value, _: u32) -> Option<Violation> {
    let set: Vec<&str> = [
        ("hostNetwork", "hostNetwork=true"),
        ("hostPID", "hostPID=true"),
        ("hostIPC", "hostIPC=true"),
    ]
    .into_iter()
    .filter(|(k, _)| spec.get(*k).and_then(Value::as_bool) == Some(true))
    .map(|(_, s)| s)
    .collect();
    if set.is_empty() {
        return None;
    }
    violation("host namespaces", set.join(", "))
}

fn volumes(spec: &Value) -> impl Iterator<Item = &Value> {
    spec.get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn host_path_volumes(_: &Value, spec: &Value, _: u32) -> Option<Violation> {
    let bad: Vec<String> = volumes(spec)
        .filter(|v| v.get("hostPath").is_some_and(|h| !h.is_null()))
        .map(name)
        .collect();
    if bad.is_empty() {
        return None;
    }
    violation(
        "hostPath volumes",
        format!(
            "{} {}",
            pluralize("volume", "volumes", bad.len()),
            join_quote(&bad)
        ),
    )
}

fn host_ports(_: &Value, spec: &Value, _: u32) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut ports = BTreeSet::new();
    for c in containers(spec) {
        let host: Vec<i64> = c
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| p.get("hostPort").and_then(Value::as_i64))
            .filter(|p| *p != 0)
            .collect();
        if !host.is_empty() {
            bad.push(name(c));
            // Upstream keeps them in a string set, so they sort as text.
            ports.extend(host.iter().map(|p| p.to_string()));
        }
    }
    if bad.is_empty() {
        return None;
    }
    let ports: Vec<String> = ports.into_iter().collect();
    violation(
        "hostPort",
        format!(
            "{} {} {} {}",
            containers_phrase(&bad),
            pluralize("uses", "use", bad.len()),
            pluralize("hostPort", "hostPorts", ports.len()),
            ports.join(", ")
        ),
    )
}

fn privileged(_: &Value, spec: &Value, _: u32) -> Option<Violation> {
    let bad: Vec<String> = containers(spec)
        .filter(|c| csc(c, "privileged").and_then(Value::as_bool) == Some(true))
        .map(name)
        .collect();
    if bad.is_empty() {
        return None;
    }
    violation(
        "privileged",
        format!(
            "{} must not set securityContext.privileged=true",
            containers_phrase(&bad)
        ),
    )
}

fn proc_mount(_: &Value, spec: &Value, minor: u32) -> Option<Violation> {
    // Since 1.29 pods in their own user namespace may unmask /proc.
    if minor >= 29 && spec.get("hostUsers").and_then(Value::as_bool) == Some(false) {
        return None;
    }
    let mut bad = Vec::new();
    let mut types = BTreeSet::new();
    for c in containers(spec) {
        if let Some(t) = csc(c, "procMount").and_then(Value::as_str) {
            if t != "Default" {
                bad.push(name(c));
                types.insert(t.to_string());
            }
        }
    }
    if bad.is_empty() {
        return None;
    }
    let types: Vec<String> = types.into_iter().collect();
    violation(
        "procMount",
        format!(
            "{} must not set securityContext.procMount to {}",
            containers_phrase(&bad),
            join_quote(&types)
        ),
    )
}

fn se_linux_options(_: &Value, spec: &Value, minor: u32) -> Option<Violation> {
    let mut allowed = vec!["", "container_t", "container_init_t", "container_kvm_t"];
    if minor >= 31 {
        allowed.push("container_engine_t");
    }
    let mut bad_types = BTreeSet::new();
    let (mut set_user, mut set_role) = (false, false);
    let mut valid = |opts: &Value| {
        let mut ok = true;
        let t = opts.get("type").and_then(Value::as_str).unwrap_or_default();
        if !allowed.contains(&t) {
            ok = false;
            bad_types.insert(t.to_string());
        }
        if !opts
            .get("user")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .is_empty()
        {
            ok = false;
            set_user = true;
        }
        if !opts
            .get("role")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .is_empty()
        {
            ok = false;
            set_role = true;
        }
        ok
    };
    let mut setters = Vec::new();
    if let Some(opts) = psc(spec, "seLinuxOptions") {
        if !valid(opts) {
            setters.push("pod".to_string());
        }
    }
    let mut bad = Vec::new();
    for c in containers(spec) {
        if let Some(opts) = csc(c, "seLinuxOptions") {
            if !valid(opts) {
                bad.push(name(c));
            }
        }
    }
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    if setters.is_empty() {
        return None;
    }
    let mut data = Vec::new();
    if !bad_types.is_empty() {
        let types: Vec<String> = bad_types.into_iter().collect();
        data.push(format!(
            "{} {}",
            pluralize("type", "types", types.len()),
            join_quote(&types)
        ));
    }
    if set_user {
        data.push("user may not be set".to_string());
    }
    if set_role {
        data.push("role may not be set".to_string());
    }
    violation(
        "seLinuxOptions",
        format!(
            "{} set forbidden securityContext.seLinuxOptions: {}",
            setters.join(" and "),
            data.join("; ")
        ),
    )
}

fn seccomp_type(v: Option<&Value>) -> Option<&str> {
    v.and_then(|p| p.get("type")).and_then(Value::as_str)
}

fn valid_seccomp(t: &str) -> bool {
    matches!(t, "RuntimeDefault" | "Localhost")
}

fn seccomp_baseline(_: &Value, spec: &Value, _: u32) -> Option<Violation> {
    let mut setters = Vec::new();
    let mut values = BTreeSet::new();
    if let Some(t) = seccomp_type(psc(spec, "seccompProfile")) {
        if t == "Unconfined" {
            setters.push("pod".to_string());
            values.insert(t.to_string());
        }
    }
    let mut bad = Vec::new();
    for c in containers(spec) {
        if let Some(t) = seccomp_type(csc(c, "seccompProfile")) {
            if t == "Unconfined" {
                bad.push(name(c));
                values.insert(t.to_string());
            }
        }
    }
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    if setters.is_empty() {
        return None;
    }
    let values: Vec<String> = values.into_iter().collect();
    violation(
        "seccompProfile",
        format!(
            "{} must not set securityContext.seccompProfile.type to {}",
            setters.join(" and "),
            join_quote(&values)
        ),
    )
}

const SYSCTLS_1_0: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
];
const SYSCTLS_1_27: &[&str] = &["net.ipv4.ip_local_reserved_ports"];
const SYSCTLS_1_29: &[&str] = &[
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];
const SYSCTLS_1_32: &[&str] = &["net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"];

fn sysctls(_: &Value, spec: &Value, minor: u32) -> Option<Violation> {
    let allowed = |n: &str| {
        SYSCTLS_1_0.contains(&n)
            || (minor >= 27 && SYSCTLS_1_27.contains(&n))
            || (minor >= 29 && SYSCTLS_1_29.contains(&n))
            || (minor >= 32 && SYSCTLS_1_32.contains(&n))
    };
    let bad: Vec<&str> = psc(spec, "sysctls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.get("name").and_then(Value::as_str))
        .filter(|n| !allowed(n))
        .collect();
    if bad.is_empty() {
        return None;
    }
    violation("forbidden sysctls", bad.join(", "))
}

fn windows_host_process(_: &Value, spec: &Value, _: u32) -> Option<Violation> {
    let host_process = |sc: Option<&Value>| {
        sc.and_then(|w| w.get("hostProcess"))
            .and_then(Value::as_bool)
            == Some(true)
    };
    let mut setters = Vec::new();
    if host_process(psc(spec, "windowsOptions")) {
        setters.push("pod".to_string());
    }
    let bad: Vec<String> = containers(spec)
        .filter(|c| host_process(csc(c, "windowsOptions")))
        .map(name)
        .collect();
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    if setters.is_empty() {
        return None;
    }
    violation(
        "hostProcess",
        format!(
            "{} must not set securityContext.windowsOptions.hostProcess=true",
            setters.join(" and ")
        ),
    )
}

fn allow_privilege_escalation(_: &Value, spec: &Value, minor: u32) -> Option<Violation> {
    if minor >= 25 && is_windows(spec) {
        return None;
    }
    let bad: Vec<String> = containers(spec)
        .filter(|c| csc(c, "allowPrivilegeEscalation").and_then(Value::as_bool) != Some(false))
        .map(name)
        .collect();
    if bad.is_empty() {
        return None;
    }
    violation(
        "allowPrivilegeEscalation != false",
        format!(
            "{} must set securityContext.allowPrivilegeEscalation=false",
            containers_phrase(&bad)
        ),
    )
}

fn capabilities_restricted(_: &Value, spec: &Value, minor: u32) -> Option<Violation> {
    if minor >= 25 && is_windows(spec) {
        return None;
    }
    let mut missing_drop = Vec::new();
    let mut adding = Vec::new();
    let mut caps = BTreeSet::new();
    for c in containers(spec) {
        let drops_all = csc(c, "capabilities")
            .and_then(|caps| caps.get("drop"))
            .and_then(Value::as_array)
            .is_some_and(|d| d.iter().any(|x| x.as_str() == Some("ALL")));
        if !drops_all {
            missing_drop.push(name(c));
        }
        let forbidden: Vec<&str> = added_capabilities(c)
            .into_iter()
            .filter(|cap| *cap != "NET_BIND_SERVICE")
            .collect();
        if !forbidden.is_empty() {
            adding.push(name(c));
            caps.extend(forbidden.into_iter().map(String::from));
        }
    }
    let mut details = Vec::new();
    if !missing_drop.is_empty() {
        details.push(format!(
            "{} must set securityContext.capabilities.drop=[\"ALL\"]",
            containers_phrase(&missing_drop)
        ));
    }
    if !adding.is_empty() {
        let caps: Vec<String> = caps.into_iter().collect();
        details.push(format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&adding),
            join_quote(&caps)
        ));
    }
    if details.is_empty() {
        return None;
    }
    violation("unrestricted capabilities", details.join("; "))
}

const ALLOWED_VOLUME_TYPES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

fn restricted_volumes(_: &Value, spec: &Value, _: u32) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut types = BTreeSet::new();
    for v in volumes(spec) {
        let Some(obj) = v.as_object() else { continue };
        let sources: Vec<&String> = obj
            .iter()
            .filter(|(k, val)| k.as_str() != "name" && !val.is_null())
            .map(|(k, _)| k)
            .collect();
        if sources
            .iter()
            .any(|k| ALLOWED_VOLUME_TYPES.contains(&k.as_str()))
        {
            continue;
        }
        bad.push(name(v));
        types.insert(
            sources
                .first()
                .map_or("unknown".to_string(), |k| k.to_string()),
        );
    }
    if bad.is_empty() {
        return None;
    }
    let types: Vec<String> = types.into_iter().collect();
    violation(
        "restricted volume types",
        format!(
            "{} {} {} {} {}",
            pluralize("volume", "volumes", bad.len()),
            join_quote(&bad),
            pluralize("uses", "use", bad.len()),
            pluralize(
                "restricted volume type",
                "restricted volume types",
                types.len()
            ),
            join_quote(&types)
        ),
    )
}

fn run_as_non_root(_: &Value, spec: &Value, _: u32) -> Option<Violation> {
    let mut setters = Vec::new();
    let mut pod_ok = false;
    match psc(spec, "runAsNonRoot").and_then(Value::as_bool) {
        Some(false) => setters.push("pod".to_string()),
        Some(true) => pod_ok = true,
        None => {}
    }
    let mut explicit = Vec::new();
    let mut implicit = Vec::new();
    for c in containers(spec) {
        match csc(c, "runAsNonRoot").and_then(Value::as_bool) {
            Some(false) => explicit.push(name(c)),
            Some(true) => {}
            None if !pod_ok => implicit.push(name(c)),
            None => {}
        }
    }
    if !explicit.is_empty() {
        setters.push(containers_phrase(&explicit));
    }
    if !setters.is_empty() {
        return violation(
            "runAsNonRoot != true",
            format!(
                "{} must not set securityContext.runAsNonRoot=false",
                setters.join(" and ")
            ),
        );
    }
    if !implicit.is_empty() {
        return violation(
            "runAsNonRoot != true",
            format!(
                "pod or {} must set securityContext.runAsNonRoot=true",
                containers_phrase(&implicit)
            ),
        );
    }
    None
}

fn run_as_user(_: &Value, spec: &Value, _: u32) -> Option<Violation> {
    let mut setters = Vec::new();
    if psc(spec, "runAsUser").and_then(Value::as_i64) == Some(0) {
        setters.push("pod".to_string());
    }
    let bad: Vec<String> = containers(spec)
        .filter(|c| csc(c, "runAsUser").and_then(Value::as_i64) == Some(0))
        .map(name)
        .collect();
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    if setters.is_empty() {
        return None;
    }
    violation(
        "runAsUser=0",
        format!("{} must not set runAsUser=0", setters.join(" and ")),
    )
}

fn seccomp_restricted(_: &Value, spec: &Value, minor: u32) -> Option<Violation> {
    if minor >= 25 && is_windows(spec) {
        return None;
    }
    let mut setters = Vec::new();
    let mut values = BTreeSet::new();
    let mut pod_set = false;
    if let Some(t) = seccomp_type(psc(spec, "seccompProfile")) {
        if valid_seccomp(t) {
            pod_set = true;
        } else {
            setters.push("pod".to_string());
            values.insert(t.to_string());
        }
    }
    let mut explicit = Vec::new();
    let mut implicit = Vec::new();
    for c in containers(spec) {
        match seccomp_type(csc(c, "seccompProfile")) {
            Some(t) if !valid_seccomp(t) => {
                explicit.push(name(c));
                values.insert(t.to_string());
            }
            Some(_) => {}
            None if !pod_set => implicit.push(name(c)),
            None => {}
        }
    }
    if !explicit.is_empty() {
        setters.push(containers_phrase(&explicit));
    }
    if !setters.is_empty() {
        let values: Vec<String> = values.into_iter().collect();
        return violation(
            "seccompProfile",
            format!(
                "{} must not set securityContext.seccompProfile.type to {}",
                setters.join(" and "),
                join_quote(&values)
            ),
        );
    }
    if !implicit.is_empty() {
        return violation(
            "seccompProfile",
            format!(
                "pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
                containers_phrase(&implicit)
            ),
        );
    }
    None
}
