//! Pod volumes as directories under the pod's directory, and the bind mounts that put them at
//! each container's `mountPath` (inside the container's own mount namespace).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, DownwardAPIVolumeFile, KeyToPath, PersistentVolume,
    PersistentVolumeClaim, Pod, Secret, ServiceAccount, Volume,
};
use kube::api::PostParams;
use kube::Api;

use super::atomic_writer::{self, Files, Outcome};
use super::env::{config_map_value, field_value, resource_value, secret_value};

/// A bind mount of `source` at `target`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    pub source: PathBuf,
    pub target: String,
    pub read_only: bool,
}

/// What volumes may read besides the API.
pub struct VolumeContext<'a> {
    pub client: &'a kube::Client,
    pub pod: &'a Pod,
    pub pod_dir: &'a Path,
    pub pod_ip: Option<String>,
    pub host_ip: String,
    pub node_allocatable: &'a BTreeMap<String, String>,
}

impl VolumeContext<'_> {
    /// The pod's volumes.
    fn volumes(&self) -> Vec<Volume> {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.volumes.clone())
            .unwrap_or_default()
    }
}

const DEFAULT_MODE: i32 = 0o644;

/// Materialises every volume of the pod; returns each one's host directory (or file, for a
/// hostPath file). Volumes written from API objects are published again on each call (see
/// [`atomic_writer`]), so a restarted container sees current data.
pub async fn prepare(cx: &VolumeContext<'_>) -> Result<BTreeMap<String, PathBuf>, String> {
    let mut out = BTreeMap::new();
    let volumes = cx.volumes();
    for v in &volumes {
        let path = prepare_one(cx, v, Tokens::Request)
            .await
            .map_err(|e| format!("MountVolume.SetUp failed for volume {:?} : {e}", v.name))?;
        out.insert(v.name.clone(), path);
    }
    Ok(out)
}

/// Whether a projected service account token is requested anew or, while it is fresh, kept.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tokens {
    Request,
    KeepFresh,
}

/// Whether a volume is written from API objects and so follows their changes while the pod
/// runs (upstream's ConfigMap, Secret, downward API and projected volumes).
pub fn is_updated(v: &Volume) -> bool {
    v.config_map.is_some()
        || v.secret.is_some()
        || v.downward_api.is_some()
        || v.projected.is_some()
}

/// What one volume's resync did.
#[derive(Debug)]
pub struct Refreshed {
    pub volume: String,
    pub result: Result<Outcome, String>,
}

/// The kubelet's periodic remount: renders every updatable volume that a container start has
/// already set up from the current API objects (and `cx.pod`'s current labels and
/// annotations) and publishes it when its content changed. A volume whose source cannot be
/// read keeps its content; the error is returned for the caller to report.
pub async fn refresh(cx: &VolumeContext<'_>) -> Vec<Refreshed> {
    let volumes = cx.volumes();
    let mut out = Vec::new();
    for v in volumes.iter().filter(|v| is_updated(v)) {
        let dir = cx.pod_dir.join("volumes").join(&v.name);
        if std::fs::symlink_metadata(dir.join("..data")).is_err() {
            continue;
        }
        let result = render(cx, v, Tokens::KeepFresh)
            .await
            .and_then(|files| atomic_writer::write(&dir, &files));
        out.push(Refreshed {
            volume: v.name.clone(),
            result,
        });
    }
    out
}

async fn prepare_one(
    cx: &VolumeContext<'_>,
    v: &Volume,
    tokens: Tokens,
) -> Result<PathBuf, String> {
    let dir = cx.pod_dir.join("volumes").join(&v.name);
    let ns = cx.pod.metadata.namespace.as_deref().unwrap_or("default");
    if v.empty_dir.is_some() {
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        return Ok(dir);
    }
    if let Some(h) = &v.host_path {
        let p = PathBuf::from(&h.path);
        match h.type_.as_deref().unwrap_or("") {
            "DirectoryOrCreate" => std::fs::create_dir_all(&p).map_err(|e| e.to_string())?,
            "FileOrCreate" if !p.exists() => std::fs::write(&p, b"").map_err(|e| e.to_string())?,
            "Directory" if !p.is_dir() => {
                return Err(format!(
                    "hostPath type check failed: {} is not a directory",
                    h.path
                ))
            }
            "File" if !p.is_file() => {
                return Err(format!(
                    "hostPath type check failed: {} is not a file",
                    h.path
                ))
            }
            _ => {}
        }
        return Ok(p);
    }
    if let Some(pvc) = &v.persistent_volume_claim {
        return claim_path(cx.client, ns, &pvc.claim_name).await;
    }
    let files = render(cx, v, tokens).await?;
    atomic_writer::write(&dir, &files)?;
    Ok(dir)
}

/// The files of a volume written from API objects.
async fn render(cx: &VolumeContext<'_>, v: &Volume, tokens: Tokens) -> Result<Files, String> {
    let ns = cx.pod.metadata.namespace.as_deref().unwrap_or("default");
    let dir = cx.pod_dir.join("volumes").join(&v.name);
    let mut files: Files = Vec::new();
    if let Some(s) = &v.config_map {
        let cm = Api::<ConfigMap>::namespaced(cx.client.clone(), ns)
            .get_opt(&s.name)
            .await
            .map_err(|e| e.to_string())?;
        match cm {
            Some(cm) => files.extend(from_keys(
                |k| config_map_value(&cm, k),
                keys_of_config_map(&cm),
                s.items.as_deref(),
                s.default_mode.unwrap_or(DEFAULT_MODE),
                &format!("configmap {:?}", s.name),
            )?),
            None if s.optional == Some(true) => {}
            None => return Err(format!("configmap {:?} not found", s.name)),
        }
    } else if let Some(s) = &v.secret {
        let name = s.secret_name.clone().unwrap_or_default();
        let secret = Api::<Secret>::namespaced(cx.client.clone(), ns)
            .get_opt(&name)
            .await
            .map_err(|e| e.to_string())?;
        match secret {
            Some(sec) => files.extend(from_keys(
                |k| secret_value(&sec, k),
                sec.data.iter().flatten().map(|(k, _)| k.clone()).collect(),
                s.items.as_deref(),
                s.default_mode.unwrap_or(DEFAULT_MODE),
                &format!("secret {name:?}"),
            )?),
            None if s.optional == Some(true) => {}
            None => return Err(format!("secret {name:?} not found")),
        }
    } else if let Some(d) = &v.downward_api {
        files.extend(downward(
            cx,
            d.items.as_deref().unwrap_or_default(),
            d.default_mode.unwrap_or(DEFAULT_MODE),
        )?);
    } else if let Some(p) = &v.projected {
        let mode = p.default_mode.unwrap_or(DEFAULT_MODE);
        for src in p.sources.iter().flatten() {
            if let Some(s) = &src.config_map {
                let cm = Api::<ConfigMap>::namespaced(cx.client.clone(), ns)
                    .get_opt(&s.name)
                    .await
                    .map_err(|e| e.to_string())?;
                match cm {
                    Some(cm) => files.extend(from_keys(
                        |k| config_map_value(&cm, k),
                        keys_of_config_map(&cm),
                        s.items.as_deref(),
                        mode,
                        &format!("configmap {:?}", s.name),
                    )?),
                    None if s.optional == Some(true) => {}
                    None => return Err(format!("configmap {:?} not found", s.name)),
                }
            }
            if let Some(s) = &src.secret {
                let secret = Api::<Secret>::namespaced(cx.client.clone(), ns)
                    .get_opt(&s.name)
                    .await
                    .map_err(|e| e.to_string())?;
                match secret {
                    Some(sec) => files.extend(from_keys(
                        |k| secret_value(&sec, k),
                        sec.data.iter().flatten().map(|(k, _)| k.clone()).collect(),
                        s.items.as_deref(),
                        mode,
                        &format!("secret {:?}", s.name),
                    )?),
                    None if s.optional == Some(true) => {}
                    None => return Err(format!("secret {:?} not found", s.name)),
                }
            }
            if let Some(d) = &src.downward_api {
                files.extend(downward(cx, d.items.as_deref().unwrap_or_default(), mode)?);
            }
            if let Some(t) = &src.service_account_token {
                let sa = cx
                    .pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.service_account_name.clone())
                    .unwrap_or_else(|| "default".into());
                let kept = (tokens == Tokens::KeepFresh)
                    .then(|| std::fs::read_to_string(dir.join(&t.path)).ok())
                    .flatten()
                    .filter(|tok| token_is_fresh(tok, chrono::Utc::now().timestamp()));
                let token = match kept {
                    Some(tok) => tok,
                    None => {
                        service_account_token(cx, ns, &sa, t.audience.clone(), t.expiration_seconds)
                            .await?
                    }
                };
                files.push((t.path.clone(), token.into_bytes(), mode as u32));
            }
        }
    } else {
        return Err("this volume type is not supported by the process runtime".into());
    }
    Ok(files)
}

/// Whether a token may be kept: upstream's kubelet requests a new one once 80% of its lifetime
/// has passed or it is older than 24 hours. A token that cannot be read is not fresh.
fn token_is_fresh(token: &str, now: i64) -> bool {
    use base64::Engine;
    let Some(claims) = token.split('.').nth(1) else {
        return false;
    };
    let Ok(raw) =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(claims.trim_end_matches('='))
    else {
        return false;
    };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&raw) else {
        return false;
    };
    let (Some(iat), Some(exp)) = (v["iat"].as_i64(), v["exp"].as_i64()) else {
        return false;
    };
    let refresh_at = iat + (exp - iat).max(0) * 8 / 10;
    now < refresh_at && now < iat + 24 * 3600
}

fn keys_of_config_map(cm: &ConfigMap) -> Vec<String> {
    cm.data
        .iter()
        .flatten()
        .map(|(k, _)| k.clone())
        .chain(cm.binary_data.iter().flatten().map(|(k, _)| k.clone()))
        .collect()
}

/// The files of a key-valued source: every key, or just `items` (a missing item is an error).
fn from_keys(
    get: impl Fn(&str) -> Option<Vec<u8>>,
    all: Vec<String>,
    items: Option<&[KeyToPath]>,
    default_mode: i32,
    what: &str,
) -> Result<Files, String> {
    let mode = default_mode as u32;
    match items {
        None => Ok(all
            .into_iter()
            .filter_map(|k| get(&k).map(|v| (k, v, mode)))
            .collect()),
        Some(items) => items
            .iter()
            .map(|i| {
                let v = get(&i.key).ok_or_else(|| {
                    format!(
                        "configured to use key {} of {what}, which is missing",
                        i.key
                    )
                })?;
                Ok((i.path.clone(), v, i.mode.map_or(mode, |m| m as u32)))
            })
            .collect(),
    }
}

fn downward(
    cx: &VolumeContext<'_>,
    items: &[DownwardAPIVolumeFile],
    mode: i32,
) -> Result<Files, String> {
    let mut files = Vec::new();
    for item in items {
        let value = if let Some(f) = &item.field_ref {
            field_value(f, cx.pod, cx.pod_ip.as_deref(), &cx.host_ip)?
        } else if let Some(r) = &item.resource_field_ref {
            let name = r.container_name.clone().unwrap_or_default();
            let c: Option<&Container> = cx.pod.spec.as_ref().and_then(|s| {
                s.containers
                    .iter()
                    .chain(s.init_containers.iter().flatten())
                    .find(|c| c.name == name)
            });
            let c = c.ok_or_else(|| format!("container {name:?} not found in the pod"))?;
            resource_value(
                c,
                &r.resource,
                r.divisor.as_ref().map(|d| d.0.as_str()),
                cx.node_allocatable,
            )?
        } else {
            String::new()
        };
        files.push((
            item.path.clone(),
            value.into_bytes(),
            item.mode.unwrap_or(mode) as u32,
        ));
    }
    Ok(files)
}

async fn service_account_token(
    cx: &VolumeContext<'_>,
    ns: &str,
    sa: &str,
    audience: Option<String>,
    expiration: Option<i64>,
) -> Result<String, String> {
    let req = TokenRequest {
        spec: TokenRequestSpec {
            audiences: audience.into_iter().collect(),
            expiration_seconds: Some(expiration.unwrap_or(3607)),
            // Bound to the pod, as the kubelet asks: NodeRestriction refuses a node any other
            // token.
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: cx.pod.metadata.name.clone(),
                uid: cx.pod.metadata.uid.clone(),
            }),
        },
        ..Default::default()
    };
    let r = Api::<ServiceAccount>::namespaced(cx.client.clone(), ns)
        .create_token_request(sa, &PostParams::default(), &req)
        .await
        .map_err(|e| format!("failed to fetch token for service account {ns}/{sa}: {e}"))?;
    r.status
        .map(|s| s.token)
        .ok_or_else(|| format!("the token request for {ns}/{sa} returned no token"))
}

/// Where a bound claim's volume lives on this host (hostPath and local volumes only).
async fn claim_path(client: &kube::Client, ns: &str, claim: &str) -> Result<PathBuf, String> {
    let pvc = Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns)
        .get_opt(claim)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("persistentvolumeclaim {claim:?} not found"))?;
    let pv_name = pvc
        .spec
        .and_then(|s| s.volume_name)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| format!("persistentvolumeclaim {claim:?} is not bound"))?;
    let pv = Api::<PersistentVolume>::all(client.clone())
        .get(&pv_name)
        .await
        .map_err(|e| e.to_string())?;
    let spec = pv.spec.unwrap_or_default();
    let path = spec
        .host_path
        .map(|h| h.path)
        .or(spec.local.map(|l| l.path))
        .ok_or_else(|| {
            format!("persistentvolume {pv_name:?} is neither hostPath nor local; the process runtime cannot mount it")
        })?;
    std::fs::create_dir_all(&path).map_err(|e| e.to_string())?;
    Ok(PathBuf::from(path))
}

/// The mounts of `container`: each `volumeMount` (with `subPath`, `subPathExpr` expanded by
/// the caller's env) over the pod's prepared volumes.
pub fn mounts_for(
    container: &Container,
    volumes: &BTreeMap<String, PathBuf>,
    expand: impl Fn(&str) -> String,
) -> Result<Vec<Mount>, String> {
    let mut out = Vec::new();
    for m in container.volume_mounts.iter().flatten() {
        let base = volumes
            .get(&m.name)
            .ok_or_else(|| format!("volume {:?} is not defined in the pod", m.name))?;
        let sub = match (&m.sub_path, &m.sub_path_expr) {
            (Some(s), _) if !s.is_empty() => Some(s.clone()),
            (_, Some(e)) if !e.is_empty() => Some(expand(e)),
            _ => None,
        };
        let source = match sub {
            Some(s) => {
                if s.starts_with('/') || s.split('/').any(|p| p == "..") {
                    return Err(format!(
                        "subPath {s:?} must be relative and may not contain '..'"
                    ));
                }
                let p = base.join(&s);
                if !p.exists() {
                    std::fs::create_dir_all(&p).map_err(|e| e.to_string())?;
                }
                p
            }
            None => base.clone(),
        };
        out.push(Mount {
            source,
            target: m.mount_path.clone(),
            read_only: m.read_only == Some(true),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tokens_are_kept_until_four_fifths_of_their_lifetime() {
        use base64::Engine;
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"iat": 1000, "exp": 4600}"#);
        let tok = format!("h.{claims}.s");
        assert!(token_is_fresh(&tok, 1000));
        assert!(token_is_fresh(&tok, 3879));
        assert!(!token_is_fresh(&tok, 3880));
        assert!(!token_is_fresh("not a token", 0));
        assert!(!token_is_fresh("a.!!!.b", 0));
    }

    #[test]
    fn mounts_follow_volume_mounts_with_sub_paths() {
        let dir = tempfile::tempdir().unwrap();
        let c: Container = serde_json::from_value(json!({"name": "c", "volumeMounts": [
            {"name": "data", "mountPath": "/data", "readOnly": true},
            {"name": "data", "mountPath": "/logs", "subPathExpr": "$(POD)"}
        ]}))
        .unwrap();
        let vols: BTreeMap<String, PathBuf> =
            [("data".to_string(), dir.path().to_path_buf())].into();
        let m = mounts_for(&c, &vols, |s| s.replace("$(POD)", "p1")).unwrap();
        assert_eq!(m[0].target, "/data");
        assert!(m[0].read_only);
        assert_eq!(m[1].source, dir.path().join("p1"));
        assert!(dir.path().join("p1").is_dir());
        let missing: Container = serde_json::from_value(
            json!({"name": "c", "volumeMounts": [{"name": "x", "mountPath": "/x"}]}),
        )
        .unwrap();
        assert!(mounts_for(&missing, &vols, |s| s.to_string()).is_err());
        let keys = from_keys(
            |k| (k == "a").then(|| b"v".to_vec()),
            vec!["a".into()],
            Some(&[KeyToPath {
                key: "a".into(),
                path: "x/y".into(),
                mode: Some(0o400),
            }]),
            0o644,
            "configmap \"c\"",
        )
        .unwrap();
        assert_eq!(keys, vec![("x/y".to_string(), b"v".to_vec(), 0o400)]);
    }
}
