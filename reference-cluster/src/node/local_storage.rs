//! Local ephemeral storage eviction, as the kubelet 1.32 eviction manager's
//! `localStorageEviction` does it every monitoring period, before (and instead of, when it
//! evicted anything) node-pressure eviction. A pod is evicted, in this order of checks, when
//!
//! 1. an `emptyDir` volume holds more than its `sizeLimit`;
//! 2. the pod's ephemeral storage (its containers' writable layers and logs, its local
//!    ephemeral volumes — disk `emptyDir`s, `configMap`s — and its `/etc/hosts`) exceeds the
//!    pod's `ephemeral-storage` limit (upstream's `PodLimits`: regular containers summed, init
//!    containers by the max rule, sidecars added, plus `overhead`);
//! 3. a regular container's logs and writable layer exceed its own `ephemeral-storage` limit.
//!
//! The pod gets upstream's `immediateEvictionGracePeriodSeconds` (1s) and ends `Failed`, reason
//! `Evicted`, with the messages below (trailing space included). Unlike node-pressure
//! evictions, 1.32 sets no `DisruptionTarget` condition for these.
//!
//! Nothing here does I/O: each runtime says what a pod holds ([`PodStorage`], from
//! `Runtime::storage`), the fleet decides with [`Limits::check`].

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod, Volume};

use crate::resources::quantity::Quantity;
use crate::security::go_quote;

/// `immediateEvictionGracePeriodSeconds`.
pub const GRACE_PERIOD: Duration = Duration::from_secs(1);

const EPHEMERAL_STORAGE: &str = "ephemeral-storage";

/// What one container holds on the node's disk, in bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerStorage {
    pub name: String,
    /// Its log files (every attempt's that the node still keeps).
    pub logs: i64,
    /// Its writable layer (0 where the runtime gives containers none).
    pub rootfs: i64,
}

/// What one pod holds on the node's disk, in bytes, as the kubelet's summary stats report it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodStorage {
    /// Each measured volume's use, by volume name (at least the pod's `emptyDir`s).
    pub volumes: BTreeMap<String, i64>,
    pub containers: Vec<ContainerStorage>,
    /// The pod's `/etc/hosts` file the node writes.
    pub etc_hosts: i64,
}

impl PodStorage {
    /// Upstream's `podStats.EphemeralStorage.UsedBytes`: containers' writable layers and logs,
    /// the local ephemeral volumes (`IsLocalEphemeralVolume`: disk `emptyDir`, `configMap`,
    /// `gitRepo`) and `/etc/hosts`.
    pub fn total(&self, volumes: &[Volume]) -> i64 {
        let containers = self.containers.iter().fold(0i64, |a, c| {
            a.saturating_add(c.logs).saturating_add(c.rootfs)
        });
        let volumes = volumes
            .iter()
            .filter(|v| is_local_ephemeral(v))
            .filter_map(|v| self.volumes.get(&v.name))
            .fold(0i64, |a, u| a.saturating_add(*u));
        containers
            .saturating_add(volumes)
            .saturating_add(self.etc_hosts)
    }
}

fn is_local_ephemeral(v: &Volume) -> bool {
    v.git_repo.is_some()
        || v.config_map.is_some()
        || v.empty_dir
            .as_ref()
            .is_some_and(|e| e.medium.as_deref().unwrap_or("").is_empty())
}

/// Why a pod is evicted for local storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    EmptyDir { volume: String, limit: String },
    Pod { limit: String },
    Container { name: String, limit: String },
}

impl Violation {
    /// The kubelet's message (`emptyDirMessageFmt`, `podEphemeralStorageMessageFmt`,
    /// `containerEphemeralStorageMessageFmt`), on the pod's status and its event.
    pub fn message(&self) -> String {
        match self {
            Violation::EmptyDir { volume, limit } => format!(
                "Usage of EmptyDir volume {} exceeds the limit {}. ",
                go_quote(volume),
                go_quote(limit)
            ),
            Violation::Pod { limit } => format!(
                "Pod ephemeral local storage usage exceeds the total limit of containers {limit}. "
            ),
            Violation::Container { name, limit } => format!(
                "Container {name} exceeded its local ephemeral storage limit {}. ",
                go_quote(limit)
            ),
        }
    }
}

/// The local storage limits a pod's spec sets; read once per look at the pod.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Limits {
    /// `emptyDir` volumes with a positive `sizeLimit`, in spec order.
    empty_dirs: Vec<(String, Quantity)>,
    /// `PodLimits(pod)[ephemeral-storage]`, if any container sets one.
    pod: Option<Quantity>,
    /// Regular containers with a non-zero `ephemeral-storage` limit, in spec order.
    containers: Vec<(String, Quantity)>,
}

fn ephemeral_limit(c: &Container) -> Option<Quantity> {
    let q = c
        .resources
        .as_ref()?
        .limits
        .as_ref()?
        .get(EPHEMERAL_STORAGE)?;
    Quantity::parse(&q.0).ok()
}

/// `Quantity.Add`: the sum keeps the receiver's format unless the receiver is zero.
fn add(acc: Option<Quantity>, q: Quantity) -> Quantity {
    match acc {
        None => q,
        Some(a) => Quantity {
            nanos: a.nanos.saturating_add(q.nanos),
            format: if a.nanos == 0 { q.format } else { a.format },
        },
    }
}

/// `maxResourceList` for one resource: the larger, the existing one on a tie.
fn max(acc: Option<Quantity>, q: Quantity) -> Quantity {
    match acc {
        Some(a) if q.nanos <= a.nanos => a,
        _ => q,
    }
}

/// Upstream's `PodLimits(pod)` for `ephemeral-storage`: regular containers' limits summed;
/// each init container's limit (with the sidecars started before it) against that by the max
/// rule, sidecars' own limits added to the sum; then the pod's overhead when a limit exists.
fn pod_limit(pod: &Pod) -> Option<Quantity> {
    let spec = pod.spec.as_ref()?;
    let mut limit: Option<Quantity> = None;
    for c in &spec.containers {
        if let Some(q) = ephemeral_limit(c) {
            limit = Some(add(limit, q));
        }
    }
    let mut sidecars: Option<Quantity> = None;
    let mut init: Option<Quantity> = None;
    for c in spec.init_containers.iter().flatten() {
        let own = ephemeral_limit(c);
        let effective = if super::status::is_sidecar(c) {
            if let Some(q) = own {
                limit = Some(add(limit, q));
                sidecars = Some(add(sidecars, q));
            }
            sidecars
        } else {
            match (own, sidecars) {
                (Some(q), s) => Some(s.map_or(q, |s| add(Some(q), s))),
                (None, s) => s,
            }
        };
        if let Some(e) = effective {
            init = Some(max(init, e));
        }
    }
    if let Some(i) = init {
        limit = Some(max(limit, i));
    }
    let overhead = spec
        .overhead
        .as_ref()
        .and_then(|o| o.get(EPHEMERAL_STORAGE))
        .and_then(|q| Quantity::parse(&q.0).ok());
    match (limit, overhead) {
        (Some(l), Some(o)) => Some(add(Some(l), o)),
        (l, _) => l,
    }
}

impl Limits {
    pub fn of(pod: &Pod) -> Limits {
        let Some(spec) = pod.spec.as_ref() else {
            return Limits::default();
        };
        let empty_dirs = spec
            .volumes
            .iter()
            .flatten()
            .filter_map(|v| {
                let size = v.empty_dir.as_ref()?.size_limit.as_ref()?;
                let q = Quantity::parse(&size.0).ok()?;
                (q.nanos > 0).then(|| (v.name.clone(), q))
            })
            .collect();
        let containers = spec
            .containers
            .iter()
            .filter_map(|c| {
                let q = ephemeral_limit(c)?;
                (q.value() != 0).then(|| (c.name.clone(), q))
            })
            .collect();
        Limits {
            empty_dirs,
            pod: pod_limit(pod),
            containers,
        }
    }

    /// Nothing to enforce: the runtime need not be asked what the pod holds.
    pub fn is_empty(&self) -> bool {
        self.empty_dirs.is_empty() && self.pod.is_none() && self.containers.is_empty()
    }

    /// The first of the three checks the pod fails, if any.
    pub fn check(&self, pod: &Pod, usage: &PodStorage) -> Option<Violation> {
        let over = |used: i64, limit: &Quantity| (used as i128) * 1_000_000_000 > limit.nanos;
        for (volume, limit) in &self.empty_dirs {
            if usage.volumes.get(volume).is_some_and(|u| over(*u, limit)) {
                return Some(Violation::EmptyDir {
                    volume: volume.clone(),
                    limit: limit.canonical(),
                });
            }
        }
        if let Some(limit) = &self.pod {
            let volumes = pod
                .spec
                .as_ref()
                .and_then(|s| s.volumes.as_deref())
                .unwrap_or_default();
            if over(usage.total(volumes), limit) {
                return Some(Violation::Pod {
                    limit: limit.canonical(),
                });
            }
        }
        for c in &usage.containers {
            let Some((_, limit)) = self.containers.iter().find(|(n, _)| *n == c.name) else {
                continue;
            };
            if over(c.logs.saturating_add(c.rootfs), limit) {
                return Some(Violation::Container {
                    name: c.name.clone(),
                    limit: limit.canonical(),
                });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const MI: i64 = 1024 * 1024;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p", "uid": "u"}, "spec": spec}))
            .unwrap()
    }

    fn limited(name: &str, limit: &str) -> serde_json::Value {
        json!({"name": name, "image": "busybox",
               "resources": {"limits": {"ephemeral-storage": limit}}})
    }

    fn container(name: &str, logs: i64, rootfs: i64) -> ContainerStorage {
        ContainerStorage {
            name: name.into(),
            logs,
            rootfs,
        }
    }

    fn usage(volumes: &[(&str, i64)], containers: Vec<ContainerStorage>) -> PodStorage {
        PodStorage {
            volumes: volumes.iter().map(|(n, u)| (n.to_string(), *u)).collect(),
            containers,
            etc_hosts: 0,
        }
    }

    fn verdict(p: &Pod, u: &PodStorage) -> Option<String> {
        Limits::of(p).check(p, u).map(|v| v.message())
    }

    #[test]
    fn an_empty_dir_over_its_size_limit_is_evicted_with_upstreams_message() {
        let p = pod(json!({
            "containers": [{"name": "app", "image": "busybox"}],
            "volumes": [{"name": "data", "emptyDir": {"sizeLimit": "1Mi"}}],
        }));
        assert!(!Limits::of(&p).is_empty());
        assert_eq!(
            verdict(&p, &usage(&[("data", MI)], vec![])),
            None,
            "at the limit"
        );
        assert_eq!(
            verdict(&p, &usage(&[("data", 4 * MI)], vec![])).as_deref(),
            Some(r#"Usage of EmptyDir volume "data" exceeds the limit "1Mi". "#)
        );
    }

    #[test]
    fn the_empty_dir_check_comes_first_then_the_pod_then_the_container() {
        let p = pod(json!({
            "containers": [limited("a", "1Mi"), limited("b", "2Mi")],
            "volumes": [{"name": "cache", "emptyDir": {"sizeLimit": "10Mi"}}],
        }));
        // The emptyDir also counts towards the pod's 3Mi.
        let both = usage(&[("cache", 11 * MI)], vec![container("a", 2 * MI, 0)]);
        assert!(verdict(&p, &both)
            .unwrap()
            .starts_with("Usage of EmptyDir volume"));
        let pod_over = usage(&[("cache", 3 * MI)], vec![container("a", 2 * MI, 0)]);
        assert_eq!(
            verdict(&p, &pod_over).as_deref(),
            Some("Pod ephemeral local storage usage exceeds the total limit of containers 3Mi. ")
        );
        let container_over = usage(&[], vec![container("a", MI, MI / 2)]);
        assert_eq!(
            verdict(&p, &container_over).as_deref(),
            Some(r#"Container a exceeded its local ephemeral storage limit "1Mi". "#)
        );
        assert_eq!(verdict(&p, &usage(&[], vec![container("b", MI, MI)])), None);
    }

    #[test]
    fn memory_empty_dirs_and_secrets_do_not_count_towards_the_pod_but_config_maps_do() {
        let p = pod(json!({
            "containers": [limited("a", "2Mi")],
            "volumes": [
                {"name": "ram", "emptyDir": {"medium": "Memory"}},
                {"name": "s", "secret": {"secretName": "x"}},
                {"name": "cm", "configMap": {"name": "x"}},
            ],
        }));
        let u = usage(&[("ram", 5 * MI), ("s", 5 * MI), ("cm", MI)], vec![]);
        assert_eq!(verdict(&p, &u), None);
        let mut u = usage(&[("cm", MI)], vec![container("a", MI / 2, 0)]);
        u.etc_hosts = MI;
        assert!(verdict(&p, &u).unwrap().starts_with("Pod ephemeral"));
    }

    #[test]
    fn pod_limits_follow_upstreams_init_container_rules() {
        // Regular containers sum to 3Mi; a 5Mi init container wins by the max rule.
        let p = pod(json!({
            "initContainers": [limited("init", "5Mi")],
            "containers": [limited("a", "1Mi"), limited("b", "2Mi")],
        }));
        assert_eq!(Limits::of(&p).pod.unwrap().canonical(), "5Mi");
        // A sidecar's limit adds to the regular containers' and to every later init container's.
        let mut sidecar = limited("side", "1Mi");
        sidecar["restartPolicy"] = json!("Always");
        let p = pod(json!({
            "initContainers": [sidecar, limited("init", "3Mi")],
            "containers": [limited("a", "1Mi")],
        }));
        assert_eq!(Limits::of(&p).pod.unwrap().canonical(), "4Mi");
        // No container sets one: nothing to enforce, even with an init container's.
        let p = pod(json!({"containers": [{"name": "a", "image": "busybox"}]}));
        assert!(Limits::of(&p).is_empty());
        // Overhead is added to an existing limit; the sum keeps the first one's format.
        let p = pod(json!({
            "containers": [limited("a", "500M"), limited("b", "1Gi")],
            "overhead": {"ephemeral-storage": "1k"},
        }));
        assert_eq!(Limits::of(&p).pod.unwrap().canonical(), "1573742824");
    }

    #[test]
    fn a_zero_container_limit_is_no_container_limit_but_still_a_pod_limit() {
        let p = pod(json!({"containers": [limited("a", "0")]}));
        let l = Limits::of(&p);
        assert!(l.containers.is_empty());
        assert_eq!(
            l.check(&p, &usage(&[], vec![container("a", 1, 0)]))
                .map(|v| v.message())
                .as_deref(),
            Some("Pod ephemeral local storage usage exceeds the total limit of containers 0. ")
        );
    }

    #[test]
    fn bad_quantities_are_ignored_rather_than_panicking() {
        let p = pod(json!({
            "containers": [limited("a", "lots")],
            "volumes": [{"name": "d", "emptyDir": {"sizeLimit": "-1Mi"}}],
        }));
        assert!(Limits::of(&p).is_empty());
        assert_eq!(go_quote("a\"b\\"), r#""a\"b\\""#);
    }
}
