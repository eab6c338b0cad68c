//! `kubeproof bench api --auth`: what RBAC and admission cost per request.
//!
//! Two bundled clusters run side by side in this process: one as upstream ships it (RBAC and
//! the default admission chain), one with `AlwaysAllow` and every admission plugin disabled.
//! The same non-admin identity talks to both, so authentication is identical and only
//! authorization and admission differ. Phases alternate between the clusters (create off,
//! create on, get off, …) so that drift of the shared machine hits both sides alike.

use std::path::Path;

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::api::{Api, ListParams, ObjectMeta, PostParams};
use kubeproof_refcluster::apiserver::{admission, ApiServerConfig, AuthorizationMode};
use kubeproof_refcluster::cluster::{ClusterConfig, RunningCluster, StoreConfig};
use serde_json::{json, Map, Value};

use super::bench::{ms, run_concurrently};

/// The identity both clusters see: no group beyond `system:authenticated`, so on the RBAC
/// cluster only the Role below lets it in.
const BENCH_USER: &str = "bench-user";
const NAMESPACE: &str = "bench-auth";

/// How much work each side gets.
#[derive(Clone, Copy, Debug)]
pub struct AuthBenchSizes {
    /// ConfigMaps created, then read one by one, per round.
    pub objects: usize,
    /// Requests in flight for create and get.
    pub concurrency: usize,
    /// Full lists of the namespace.
    pub lists: usize,
    /// Times the create/get/list sequence is repeated on both sides; latencies of all rounds
    /// are merged, so a burst of load from elsewhere weighs less.
    pub rounds: usize,
}

/// Measures both clusters and returns `{"auth_on": {...}, "auth_off": {...},
/// "p99_overhead_pct": {...}}`; overheads are `(on - off) / off * 100` per operation, and
/// `max` is the largest of them.
pub async fn measure_auth_overhead(sizes: AuthBenchSizes) -> Result<Value> {
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let on = start(&dir.path().join("auth-on"), auth_on_config()).await?;
    let off = match start(&dir.path().join("auth-off"), auth_off_config()).await {
        Ok(c) => c,
        Err(e) => {
            on.shutdown().await;
            return Err(e);
        }
    };
    let result = measure_both(&on, &off, sizes).await;
    on.shutdown().await;
    off.shutdown().await;
    result
}

fn auth_on_config() -> ApiServerConfig {
    ApiServerConfig::default()
}

fn auth_off_config() -> ApiServerConfig {
    ApiServerConfig {
        authorization_modes: vec![AuthorizationMode::AlwaysAllow],
        enable_admission_plugins: Vec::new(),
        disable_admission_plugins: admission::PLUGINS.iter().map(|p| p.to_string()).collect(),
        ..ApiServerConfig::default()
    }
}

async fn start(dir: &Path, apiserver: ApiServerConfig) -> Result<RunningCluster> {
    let cfg = ClusterConfig {
        store: StoreConfig::Embedded,
        nodes: 0,
        apiserver: ApiServerConfig {
            // Tests' short timings, with the security settings under measurement.
            bookmark_interval: std::time::Duration::from_secs(2),
            future_rv_wait: std::time::Duration::from_millis(500),
            ..apiserver
        },
        ..ClusterConfig::for_tests(dir)
    };
    RunningCluster::start(cfg)
        .await
        .with_context(|| format!("cannot start the bundled cluster in {}", dir.display()))
}

/// The bench user's ConfigMaps API on `cluster`, after the admin created the namespace and
/// the Role + RoleBinding that allow exactly the measured verbs.
async fn prepare(cluster: &RunningCluster) -> Result<Api<ConfigMap>> {
    let admin = cluster.client().await?;
    let pp = PostParams::default();
    Api::<Namespace>::all(admin.clone())
        .create(
            &pp,
            &Namespace {
                metadata: meta(NAMESPACE),
                ..Default::default()
            },
        )
        .await
        .with_context(|| format!("cannot create namespace {NAMESPACE}"))?;
    let role = Role {
        metadata: meta("bench-configmaps"),
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["configmaps".into()]),
            verbs: vec!["create".into(), "get".into(), "list".into()],
            ..Default::default()
        }]),
    };
    Api::<Role>::namespaced(admin.clone(), NAMESPACE)
        .create(&pp, &role)
        .await
        .context("cannot create the bench Role")?;
    let binding = RoleBinding {
        metadata: meta("bench-configmaps"),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: "bench-configmaps".into(),
        },
        subjects: Some(vec![Subject {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "User".into(),
            name: BENCH_USER.into(),
            ..Default::default()
        }]),
    };
    Api::<RoleBinding>::namespaced(admin, NAMESPACE)
        .create(&pp, &binding)
        .await
        .context("cannot create the bench RoleBinding")?;
    let user = cluster.client_as(BENCH_USER, &[]).await?;
    Ok(Api::namespaced(user, NAMESPACE))
}

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        ..Default::default()
    }
}

/// One cluster's latencies, merged over rounds.
#[derive(Default)]
struct Side {
    ops: std::collections::BTreeMap<&'static str, (Histogram<u64>, usize, f64)>,
}

impl Side {
    fn record(&mut self, op: &'static str, per_s: f64, h: &Histogram<u64>) -> Result<()> {
        let n = h.len() as usize;
        let entry = self.ops.entry(op).or_insert_with(|| (h.clone(), 0, 0.0));
        if entry.1 > 0 {
            entry.0.add(h).context("cannot merge latency histograms")?;
        }
        entry.1 += n;
        entry.2 += n as f64 / per_s.max(f64::MIN_POSITIVE);
        Ok(())
    }

    fn figures(&self) -> Map<String, Value> {
        let mut out = Map::new();
        for (op, (h, n, secs)) in &self.ops {
            out.insert(format!("{op}_per_s"), json!(*n as f64 / secs.max(1e-9)));
            out.insert(format!("{op}_p50_ms"), json!(ms(h, 0.5)));
            out.insert(format!("{op}_p99_ms"), json!(ms(h, 0.99)));
        }
        out
    }

    fn p99(&self, op: &str) -> f64 {
        self.ops.get(op).map_or(f64::NAN, |(h, _, _)| ms(h, 0.99))
    }
}

async fn measure_both(
    on: &RunningCluster,
    off: &RunningCluster,
    sizes: AuthBenchSizes,
) -> Result<Value> {
    let cms_on = prepare(on).await?;
    let cms_off = prepare(off).await?;
    // The first requests pay for connection set-up on either side; a read that RBAC allows
    // proves the binding took before anything is timed.
    for cms in [&cms_on, &cms_off] {
        cms.list(&ListParams::default()).await.context(
            "the bench user cannot list ConfigMaps: the Role or binding is not in effect",
        )?;
    }
    let (mut s_on, mut s_off) = (Side::default(), Side::default());
    for round in 0..sizes.rounds.max(1) {
        for op in ["create", "get", "list"] {
            for (cms, side, label) in [
                (&cms_off, &mut s_off, "without RBAC and admission"),
                (&cms_on, &mut s_on, "with RBAC and admission"),
            ] {
                eprintln!("round {}: measuring {op} {label}…", round + 1);
                let (per_s, h) = run_op(op, cms, round, sizes).await?;
                side.record(op, per_s, &h)?;
            }
        }
    }
    let mut overhead = Map::new();
    let mut worst = f64::MIN;
    for op in ["create", "get", "list"] {
        let (a, b) = (s_on.p99(op), s_off.p99(op));
        let pct = (a - b) / b * 100.0;
        worst = worst.max(pct);
        overhead.insert(op.into(), json!(pct));
    }
    overhead.insert("max".into(), json!(worst));
    Ok(json!({
        "objects": sizes.objects,
        "concurrency": sizes.concurrency,
        "lists": sizes.lists,
        "rounds": sizes.rounds.max(1),
        "auth_on": s_on.figures(),
        "auth_off": s_off.figures(),
        "p99_overhead_pct": overhead,
    }))
}

async fn run_op(
    op: &str,
    cms: &Api<ConfigMap>,
    round: usize,
    sizes: AuthBenchSizes,
) -> Result<(f64, Histogram<u64>)> {
    let n = sizes.objects.max(1);
    match op {
        "create" => {
            run_concurrently(n, sizes.concurrency, |i| {
                let cms = cms.clone();
                async move {
                    let cm = ConfigMap {
                        metadata: meta(&format!("cm-{round}-{i}")),
                        data: Some([("k".to_string(), "v".repeat(64))].into()),
                        ..Default::default()
                    };
                    cms.create(&PostParams::default(), &cm).await.map(|_| ())
                }
            })
            .await
        }
        "get" => {
            run_concurrently(n, sizes.concurrency, |i| {
                let cms = cms.clone();
                async move { cms.get(&format!("cm-{round}-{i}")).await.map(|_| ()) }
            })
            .await
        }
        _ => {
            run_concurrently(sizes.lists.max(1), 2, |_| {
                let cms = cms.clone();
                async move { cms.list(&ListParams::default()).await.map(|_| ()) }
            })
            .await
        }
    }
}

/// Prints the figures of both sides and the overhead; the 10 % goal is shown, not enforced.
pub fn print_text(result: &Value) {
    println!("{:<16}{:>14}{:>14}", "figure", "auth off", "auth on");
    let on = &result["auth_on"];
    let off = &result["auth_off"];
    for k in on.as_object().into_iter().flat_map(|o| o.keys()) {
        let f = |v: &Value| v[k].as_f64().unwrap_or(f64::NAN);
        println!("{k:<16}{:>14.2}{:>14.2}", f(off), f(on));
    }
    println!();
    for (op, pct) in result["p99_overhead_pct"].as_object().into_iter().flatten() {
        println!(
            "p99 overhead {op:<8}{:>8.1} %",
            pct.as_f64().unwrap_or(f64::NAN)
        );
    }
    println!("(goal: under 10 % at p99)");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reports_both_sides_and_the_overhead() {
        let result = measure_auth_overhead(AuthBenchSizes {
            objects: 5,
            concurrency: 2,
            lists: 2,
            rounds: 2,
        })
        .await
        .expect("the bench runs");
        for side in ["auth_on", "auth_off"] {
            for op in ["create", "get", "list"] {
                for fig in ["per_s", "p50_ms", "p99_ms"] {
                    let key = format!("{op}_{fig}");
                    let v = result[side][&key].as_f64();
                    assert!(
                        v.is_some_and(|v| v > 0.0),
                        "{side}.{key} should be a positive number: {result}"
                    );
                }
            }
        }
        for op in ["create", "get", "list", "max"] {
            assert!(
                result["p99_overhead_pct"][op]
                    .as_f64()
                    .is_some_and(f64::is_finite),
                "p99_overhead_pct.{op} should be a number: {result}"
            );
        }
    }
}
