//! ServiceAccount admission: a pod runs as `default` unless it names a service account, the
//! account must exist, and (unless automounting is off) every container mounts a projected
//! `kube-api-access-xxxxx` volume with the token, the cluster CA and the namespace, in
//! upstream's exact shape. Mirror pods may not use service accounts or secrets.

use rand::Rng;
use serde_json::{json, Value};

use super::{array_of, forbidden, str_of, Attributes, Operation, Outcome, Rejection};

pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";
pub const TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
pub const VOLUME_PREFIX: &str = "kube-api-access-";
pub const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";
/// Upstream's `WarnOnlyBoundTokenExpirationSeconds`: 1 h + 7 s, so kubelets can tell
/// admission-injected tokens from user-requested ones.
pub const TOKEN_EXPIRATION_SECONDS: i64 = 3607;

/// Upstream's `SimpleNameGenerator` alphabet (no vowels, no look-alike digits).
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// `prefix` + 5 random characters, as upstream's name generator.
pub fn generate_name(prefix: &str) -> String {
    let mut rng = rand::rng();
    let suffix: String = (0..5)
        .map(|_| NAME_ALPHABET[rng.random_range(0..NAME_ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{suffix}")
}

/// The projected volume source upstream injects (`TokenVolumeSource`).
pub fn token_volume(name: &str) -> Value {
    json!({
        "name": name,
        "projected": {
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION_SECONDS, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
            ],
            "defaultMode": 420,
        },
    })
}

fn is_mirror_pod(pod: &Value) -> bool {
    pod.pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .is_some_and(|a| a.contains_key(MIRROR_ANNOTATION))
}

fn references_secrets(pod: &Value) -> bool {
    let volumes = array_of(pod, "/spec/volumes");
    let secret_volume = volumes.iter().any(|v| v.get("secret").is_some());
    let containers = array_of(pod, "/spec/containers")
        .iter()
        .chain(array_of(pod, "/spec/initContainers"));
    let secret_env = containers.into_iter().any(|c| {
        array_of(c, "/env")
            .iter()
            .any(|e| e.pointer("/valueFrom/secretKeyRef").is_some())
            || array_of(c, "/envFrom")
                .iter()
                .any(|e| e.get("secretRef").is_some())
    });
    secret_volume || secret_env || !array_of(pod, "/spec/imagePullSecrets").is_empty()
}

/// Admits a pod create. `service_account` is the ServiceAccount the pod will run as (looked up
/// by the caller from `spec.serviceAccountName`, defaulting to `default`), `None` if missing.
pub fn admit(
    attrs: &Attributes,
    pod: &mut Value,
    service_account: Option<&Value>,
) -> Result<Outcome, Rejection> {
    if !(attrs.is("", "pods")
        && attrs.subresource.is_empty()
        && attrs.operation == Operation::Create)
    {
        return Ok(Outcome::default());
    }
    if !pod.get("spec").is_some_and(Value::is_object) {
        return Ok(Outcome::default());
    }
    if is_mirror_pod(pod) {
        if !str_of(pod, "/spec/serviceAccountName").is_empty() {
            return Err(forbidden(
                attrs,
                Some(pod),
                "a mirror pod may not reference service accounts",
            ));
        }
        if references_secrets(pod) {
            return Err(forbidden(
                attrs,
                Some(pod),
                "a mirror pod may not reference secrets",
            ));
        }
        return Ok(Outcome::default());
    }
    let sa_name = match str_of(pod, "/spec/serviceAccountName") {
        "" => DEFAULT_SERVICE_ACCOUNT.to_string(),
        n => n.to_string(),
    };
    pod["spec"]["serviceAccountName"] = json!(sa_name);
    // The deprecated alias is what v1 clients read back, as upstream's conversion fills it.
    pod["spec"]["serviceAccount"] = json!(sa_name);
    let Some(sa) = service_account else {
        return Err(forbidden(
            attrs,
            Some(pod),
            &format!(
                "error looking up service account {}/{sa_name}: serviceaccount \"{sa_name}\" not found",
                attrs.namespace
            ),
        ));
    };
    let automount = pod
        .pointer("/spec/automountServiceAccountToken")
        .and_then(Value::as_bool)
        .or_else(|| {
            sa.get("automountServiceAccountToken")
                .and_then(Value::as_bool)
        })
        .unwrap_or(true);
    if automount {
        mount_token(pod);
    }
    if array_of(pod, "/spec/imagePullSecrets").is_empty() {
        let from_sa = array_of(sa, "/imagePullSecrets");
        if !from_sa.is_empty() {
            pod["spec"]["imagePullSecrets"] = json!(from_sa);
        }
    }
    Ok(Outcome::default())
}

/// Upstream `mountServiceAccountToken`: reuse an existing `kube-api-access-*` volume, mount it
/// in every (init) container that has nothing at the token path yet.
fn mount_token(pod: &mut Value) {
    let existing = array_of(pod, "/spec/volumes")
        .iter()
        .filter_map(|v| v.get("name").and_then(Value::as_str))
        .find(|n| n.starts_with(VOLUME_PREFIX))
        .map(String::from);
    let has_volume = existing.is_some();
    let volume_name = existing.unwrap_or_else(|| generate_name(VOLUME_PREFIX));
    let mount = json!({"name": volume_name, "readOnly": true, "mountPath": TOKEN_MOUNT_PATH});
    let mut needs_volume = false;
    for list in ["initContainers", "containers"] {
        let Some(containers) = pod["spec"].get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for c in containers.iter_mut().filter(|c| c.is_object()) {
            let mounted = array_of(c, "/volumeMounts")
                .iter()
                .any(|m| m.get("mountPath").and_then(Value::as_str) == Some(TOKEN_MOUNT_PATH));
            if mounted {
                continue;
            }
            if !c.get("volumeMounts").is_some_and(Value::is_array) {
                c["volumeMounts"] = json!([]);
            }
            if let Some(m) = c["volumeMounts"].as_array_mut() {
                m.push(mount.clone());
            }
            needs_volume = true;
        }
    }
    if needs_volume && !has_volume {
        if !pod["spec"].get("volumes").is_some_and(Value::is_array) {
            pod["spec"]["volumes"] = json!([]);
        }
        if let Some(v) = pod["spec"]["volumes"].as_array_mut() {
            v.push(token_volume(&volume_name));
        }
    }
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
            "dev",
            "p",
            UserInfo::new("u", &[]),
        )
    }

    fn sa() -> Value {
        json!({"metadata": {"name": "default", "namespace": "dev"}})
    }

    #[test]
    fn injects_the_projected_token_volume_into_every_container() {
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {
            "initContainers": [{"name": "init", "image": "busybox"}],
            "containers": [{"name": "c", "image": "nginx"}, {"name": "d", "image": "x",
                "volumeMounts": [{"name": "own", "mountPath": TOKEN_MOUNT_PATH}]}]
        }});
        admit(&create(), &mut pod, Some(&sa())).unwrap();
        assert_eq!(pod["spec"]["serviceAccountName"], "default");
        let volumes = pod["spec"]["volumes"].as_array().unwrap();
        assert_eq!(volumes.len(), 1);
        let name = volumes[0]["name"].as_str().unwrap();
        assert!(
            name.starts_with(VOLUME_PREFIX) && name.len() == VOLUME_PREFIX.len() + 5,
            "{name}"
        );
        assert!(name[VOLUME_PREFIX.len()..]
            .bytes()
            .all(|b| NAME_ALPHABET.contains(&b)));
        assert_eq!(volumes[0], token_volume(name));
        assert_eq!(
            volumes[0]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"],
            3607
        );
        let mount = json!({"name": name, "readOnly": true, "mountPath": TOKEN_MOUNT_PATH});
        assert_eq!(
            pod["spec"]["initContainers"][0]["volumeMounts"],
            json!([mount])
        );
        assert_eq!(pod["spec"]["containers"][0]["volumeMounts"], json!([mount]));
        // A container with its own mount at the token path is left alone.
        assert_eq!(
            pod["spec"]["containers"][1]["volumeMounts"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn respects_automount_settings_and_copies_pull_secrets() {
        let mut pod =
            json!({"spec": {"automountServiceAccountToken": false, "containers": [{"name": "c"}]}});
        admit(&create(), &mut pod, Some(&sa())).unwrap();
        assert!(pod["spec"].get("volumes").is_none());
        let no_mount = json!({"metadata": {"name": "default"}, "automountServiceAccountToken": false,
                              "imagePullSecrets": [{"name": "regcred"}]});
        let mut pod = json!({"spec": {"containers": [{"name": "c"}]}});
        admit(&create(), &mut pod, Some(&no_mount)).unwrap();
        assert!(pod["spec"].get("volumes").is_none());
        assert_eq!(
            pod["spec"]["imagePullSecrets"],
            json!([{"name": "regcred"}])
        );
        // The pod's own setting wins over the account's.
        let mut pod =
            json!({"spec": {"automountServiceAccountToken": true, "containers": [{"name": "c"}]}});
        admit(&create(), &mut pod, Some(&no_mount)).unwrap();
        assert_eq!(pod["spec"]["volumes"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn missing_account_is_forbidden() {
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"serviceAccountName": "builder", "containers": []}});
        let err = admit(&create(), &mut pod, None).unwrap_err();
        assert_eq!(
            err.message,
            r#"pods "p" is forbidden: error looking up service account dev/builder: serviceaccount "builder" not found"#
        );
    }

    #[test]
    fn mirror_pods_may_not_use_accounts_or_secrets() {
        let mut pod = json!({"metadata": {"name": "m", "annotations": {MIRROR_ANNOTATION: "x"}},
                             "spec": {"containers": [{"name": "c"}]}});
        admit(&create(), &mut pod, None).unwrap();
        assert!(pod["spec"].get("serviceAccountName").is_none());
        let mut with_secret = pod.clone();
        with_secret["spec"]["volumes"] = json!([{"name": "s", "secret": {"secretName": "x"}}]);
        assert!(admit(&create(), &mut with_secret, None)
            .unwrap_err()
            .message
            .ends_with("a mirror pod may not reference secrets"));
    }
}
