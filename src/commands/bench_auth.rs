//! `kubeproof bench api --auth`: what RBAC and admission cost per request.
//!
//! Two bundled clusters run side by side in this process: one as upstream ships it (RBAC and
//! the default admission chain), one with `AlwaysAllow` and every admission plugin disabled.
//! The same non-admin identity talks to both, so authentication is identical and only
//! authorization and admission differ. Each operation of a round sends its requests to both
//! clusters at once, interleaved one by one, so that whatever else the shared machine does
//! hits both sides alike; the overhead is the median over rounds of each round's paired
//! comparison, which one disturbed round cannot move much.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use futures::StreamExt;
use hdrhistogram::Histogram;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::api::{Api, ListParams, ObjectMeta, PostParams};
use kubeproof_refcluster::apiserver::{admission, ApiServerConfig, AuthorizationMode};
use kubeproof_refcluster::cluster::{ClusterConfig, RunningCluster, StoreConfig};
use serde_json::{json, Map, Value};

use super::bench::{histogram, ms};

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
    /// Times the create/get/list sequence is repeated on both sides; the overhead is the
    /// median of the rounds', so a burst of load from elsewhere weighs less.
    pub rounds: usize,
}

/// Measures both clusters and returns `{"auth_on": {...}, "auth_off": {...},
/// "p99_overhead_pct": {...}, "p99_overhead_pct_pooled": {...}, "p99_ms_by_round": {...},
/// "method": "..."}`; overheads are `(on - off) / off * 100` per operation (the median over
/// rounds, or over all rounds' latencies merged), and `max` is the largest of them.
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
        // The memory store: a write's latency then holds no fsync, whose stalls on a disk
        // shared with other work would decide the p99 of both sides and hide the difference
        // authorization and admission make.
        store: StoreConfig::Memory,
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

/// What the bench user reaches on one cluster.
#[derive(Clone)]
struct Target {
    configmaps: Api<ConfigMap>,
    pods: Api<Pod>,
}

/// The bench user's APIs on `cluster`, after the admin created the namespace and the Role +
/// RoleBinding that allow exactly the measured verbs.
async fn prepare(cluster: &RunningCluster) -> Result<Target> {
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
        metadata: meta("bench-objects"),
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["configmaps".into(), "pods".into()]),
            verbs: vec!["create".into(), "get".into(), "list".into()],
            ..Default::default()
        }]),
    };
    Api::<Role>::namespaced(admin.clone(), NAMESPACE)
        .create(&pp, &role)
        .await
        .context("cannot create the bench Role")?;
    let binding = RoleBinding {
        metadata: meta("bench-objects"),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: "bench-objects".into(),
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
    Ok(Target {
        configmaps: Api::namespaced(user.clone(), NAMESPACE),
        pods: Api::namespaced(user, NAMESPACE),
    })
}

/// The pod both sides are sent: one as the admission chain of the `on` cluster returns it
/// (service-account token volume and mounts, default tolerations, priority), so that both
/// sides store the same object and the difference is the chain's own work, not the cost of a
/// larger pod downstream. The chain still runs in full on it: it finds the volume, the
/// tolerations and the priority already right, as it does for a pod re-created from a
/// manifest exported from a cluster.
async fn admitted_pod(on: &Target) -> Result<Pod> {
    let plain: Pod = serde_json::from_value(json!({
        "metadata": {"name": "template"},
        "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]}
    }))
    .context("the bench pod does not decode")?;
    let admitted = on
        .pods
        .create(&PostParams::default(), &plain)
        .await
        .context("the bench user cannot create a pod on the cluster with admission")?;
    Ok(Pod {
        metadata: meta("template"),
        spec: admitted.spec,
        status: None,
    })
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
    let t_on = prepare(on).await?;
    let t_off = prepare(off).await?;
    // The first requests pay for connection set-up on either side; a read that RBAC allows
    // proves the binding took before anything is timed.
    for t in [&t_on, &t_off] {
        t.configmaps.list(&ListParams::default()).await.context(
            "the bench user cannot list ConfigMaps: the Role or binding is not in effect",
        )?;
    }
    let pod = admitted_pod(&t_on).await?;
    let (mut s_on, mut s_off) = (Side::default(), Side::default());
    let (mut paired, mut paired_p50) = (Paired::default(), Paired::default());
    for round in 0..sizes.rounds.max(1) {
        for op in OPS {
            eprintln!(
                "round {}: measuring {op} with and without RBAC and admission…",
                round + 1
            );
            let both = run_op(op, [&t_off, &t_on], &pod, round, sizes).await?;
            let [(per_s_off, h_off), (per_s_on, h_on)] = both;
            s_on.record(op, per_s_on, &h_on)?;
            s_off.record(op, per_s_off, &h_off)?;
            paired.push(op, ms(&h_on, 0.99), ms(&h_off, 0.99));
            paired_p50.push(op, ms(&h_on, 0.5), ms(&h_off, 0.5));
        }
    }
    let mut pooled = Map::new();
    let mut worst = f64::MIN;
    for op in OPS {
        let pct = overhead_pct(s_on.p99(op), s_off.p99(op));
        worst = worst.max(pct);
        pooled.insert(op.into(), json!(pct));
    }
    pooled.insert("max".into(), json!(worst));
    Ok(json!({
        "objects": sizes.objects,
        "concurrency": sizes.concurrency,
        "lists": sizes.lists,
        "rounds": sizes.rounds.max(1),
        "auth_on": s_on.figures(),
        "auth_off": s_off.figures(),
        "p99_overhead_pct": paired.median_overheads(),
        "p99_overhead_pct_pooled": pooled,
        "p50_overhead_pct": paired_p50.median_overheads(),
        "p99_ms_by_round": paired.by_round(),
        "method": METHOD,
    }))
}

/// `create`, `get` and `list` are of ConfigMaps.
const OPS: [&str; 4] = ["create", "get", "list", "create_pod"];

/// How `p99_overhead_pct` is computed; printed with the figures so a reader knows what the
/// number means.
const METHOD: &str = "each round runs every operation on both clusters at once, their \
    requests interleaved one by one (off, on, off, on, ...) so that both sides meet the same \
    moments of the machine; p99_overhead_pct is, per operation, the median over rounds of \
    (p99 on - p99 off) / p99 off of that round; p99_overhead_pct_pooled compares the p99s of \
    all rounds merged; p50_overhead_pct is the median over rounds for the p50; per_s figures \
    are each side's rate while the other runs beside it; create, get and list are of \
    ConfigMaps; create_pod sends both sides the pod as the admission chain returned it once \
    (token volume, tolerations, priority), so both store the same pod; both clusters use the \
    memory store";

fn overhead_pct(on: f64, off: f64) -> f64 {
    (on - off) / off * 100.0
}

/// The p99 of each side in each round, paired, so that load from elsewhere during one round
/// hits both sides of that round's comparison alike and a single disturbed round cannot move
/// the median much.
#[derive(Default)]
struct Paired {
    rounds: std::collections::BTreeMap<&'static str, Vec<(f64, f64)>>,
}

impl Paired {
    fn push(&mut self, op: &'static str, p99_on: f64, p99_off: f64) {
        self.rounds.entry(op).or_default().push((p99_on, p99_off));
    }

    /// `{op: median overhead %, …, "max": the largest}`.
    fn median_overheads(&self) -> Map<String, Value> {
        let mut out = Map::new();
        let mut worst = f64::MIN;
        for (op, pairs) in &self.rounds {
            let pct = median(
                pairs
                    .iter()
                    .map(|(on, off)| overhead_pct(*on, *off))
                    .collect(),
            );
            worst = worst.max(pct);
            out.insert(op.to_string(), json!(pct));
        }
        out.insert("max".into(), json!(worst));
        out
    }

    /// `{op: {"on": [p99 of round 1, …], "off": […]}}` in milliseconds.
    fn by_round(&self) -> Map<String, Value> {
        self.rounds
            .iter()
            .map(|(op, pairs)| {
                let on: Vec<f64> = pairs.iter().map(|p| p.0).collect();
                let off: Vec<f64> = pairs.iter().map(|p| p.1).collect();
                (op.to_string(), json!({"on": on, "off": off}))
            })
            .collect()
    }
}

/// The median, the mean of the middle two for an even count; NaN for no values. NaNs sort
/// last, so they only matter when they are the majority.
fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// Runs `op`'s requests of one round on both sides at once, interleaved request by request
/// (off, on, off, on, …) with `2 × concurrency` in flight, so that whatever else the machine
/// does at any moment slows both sides alike. Returns each side's requests per second (while
/// sharing the machine with the other) and latencies, `[off, on]`.
async fn run_op(
    op: &str,
    sides: [&Target; 2],
    pod: &Pod,
    round: usize,
    sizes: AuthBenchSizes,
) -> Result<[(f64, Histogram<u64>); 2]> {
    let (per_side, concurrency) = if op == "list" {
        // Lists are long; more of them at once would measure the queue, not the list.
        (sizes.lists.max(1), 1)
    } else {
        (sizes.objects.max(1), sizes.concurrency.max(1))
    };
    let started = Instant::now();
    let latencies: Vec<Result<(usize, u64), kube::Error>> = futures::stream::iter(0..2 * per_side)
        .map(|i| {
            let (side, item) = (i % 2, i / 2);
            let target = sides[side].clone();
            let mut pod = pod.clone();
            async move {
                let (cms, pp) = (&target.configmaps, PostParams::default());
                let name = format!("cm-{round}-{item}");
                let t = Instant::now();
                match op {
                    "create" => {
                        let cm = ConfigMap {
                            metadata: meta(&name),
                            data: Some([("k".to_string(), "v".repeat(64))].into()),
                            ..Default::default()
                        };
                        cms.create(&pp, &cm).await.map(drop)?
                    }
                    "get" => cms.get(&name).await.map(drop)?,
                    "create_pod" => {
                        pod.metadata.name = Some(format!("pod-{round}-{item}"));
                        target.pods.create(&pp, &pod).await.map(drop)?
                    }
                    _ => cms.list(&ListParams::default()).await.map(drop)?,
                }
                Ok((side, t.elapsed().as_micros() as u64))
            }
        })
        .buffer_unordered(2 * concurrency)
        .collect()
        .await;
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    let mut out = [
        (per_side as f64 / secs, histogram()),
        (per_side as f64 / secs, histogram()),
    ];
    for r in latencies {
        let (side, micros) = r.with_context(|| format!("a {op} request of the bench failed"))?;
        out[side].1.record(micros.max(1))?;
    }
    Ok(out)
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
    println!(
        "{:<14}{:>22}{:>22}{:>22}",
        "overhead", "p99 median of rounds", "p99 rounds merged", "p50 median of rounds"
    );
    let pooled = &result["p99_overhead_pct_pooled"];
    let p50 = &result["p50_overhead_pct"];
    for (op, pct) in result["p99_overhead_pct"].as_object().into_iter().flatten() {
        let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
        println!(
            "{op:<14}{:>20.1} %{:>20.1} %{:>20.1} %",
            f(pct),
            f(&pooled[op.as_str()]),
            f(&p50[op.as_str()])
        );
    }
    if let Some(method) = result["method"].as_str() {
        println!("method: {method}");
    }
    println!("(goal: under 10 % at p99, median of rounds)");
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
            for op in OPS {
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
        for figure in [
            "p99_overhead_pct",
            "p99_overhead_pct_pooled",
            "p50_overhead_pct",
        ] {
            for op in OPS.iter().chain(&["max"]) {
                assert!(
                    result[figure][op].as_f64().is_some_and(f64::is_finite),
                    "{figure}.{op} should be a number: {result}"
                );
            }
        }
        for side in ["on", "off"] {
            let rounds = result["p99_ms_by_round"]["create"][side].as_array();
            assert_eq!(rounds.map(Vec::len), Some(2), "{result}");
        }
        assert!(result["method"]
            .as_str()
            .is_some_and(|m| m.contains("median")));
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(Vec::new()).is_nan());
    }

    #[test]
    fn one_disturbed_round_does_not_move_the_paired_median() {
        let mut p = Paired::default();
        // Rounds 1 and 3: 10 % slower with auth; round 2: the "off" side met a burst of load.
        p.push("create", 11.0, 10.0);
        p.push("create", 11.0, 50.0);
        p.push("create", 22.0, 20.0);
        let o = p.median_overheads();
        let pct = o["create"].as_f64().unwrap();
        assert!((pct - 10.0).abs() < 1e-9, "{o:?}");
        assert_eq!(o["max"], o["create"]);
        assert_eq!(p.by_round()["create"]["off"], json!([10.0, 50.0, 20.0]));
    }
}
