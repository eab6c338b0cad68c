//! The replica calculation of the HPA controller for per-pod metrics: which pods count, how
//! pods without a usable sample are treated, and `ceil(ratio × pods)` with the tolerance, as
//! upstream's replica calculator does it. Pure functions over plain data, so every rule is
//! tested here without a cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

/// What the calculation needs to know about one pod the target selects.
#[derive(Clone, Debug)]
pub struct PodFacts {
    pub name: String,
    pub phase: String,
    pub deleting: bool,
    /// The Ready condition: whether it is True, and when it last changed.
    pub ready: Option<(bool, Timestamp)>,
    pub start_time: Option<Timestamp>,
}

/// One pod's sample, in milli-units (millicores for CPU, millibytes for memory, as upstream).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    pub value: i64,
    pub timestamp: Timestamp,
    pub window: Duration,
}

/// Tuning of the calculation (`--horizontal-pod-autoscaler-*` flags).
#[derive(Clone, Copy, Debug)]
pub struct Tuning {
    pub tolerance: f64,
    pub cpu_initialization_period: Duration,
    pub initial_readiness_delay: Duration,
}

/// The pods' grouping: counted ready pods, then the unready, missing and ignored ones.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Groups {
    pub ready: usize,
    pub unready: BTreeSet<String>,
    pub missing: BTreeSet<String>,
    pub ignored: BTreeSet<String>,
}

fn after(t: Timestamp, d: Duration) -> Timestamp {
    t.checked_add(k8s_openapi::jiff::SignedDuration::try_from(d).unwrap_or_default())
        .unwrap_or(t)
}

/// Sorts pods as upstream's `groupPods`: deleted and failed pods are ignored, pending ones are
/// unready, pods without a sample are missing, and for CPU a pod that is not ready, or whose
/// sample may still include its start-up, is unready too.
pub fn group_pods(
    pods: &[PodFacts],
    samples: &BTreeMap<String, Sample>,
    cpu: bool,
    tuning: &Tuning,
    now: Timestamp,
) -> Groups {
    let mut g = Groups::default();
    for pod in pods {
        if pod.deleting || pod.phase == "Failed" {
            g.ignored.insert(pod.name.clone());
            continue;
        }
        if pod.phase == "Pending" {
            g.unready.insert(pod.name.clone());
            continue;
        }
        let Some(sample) = samples.get(&pod.name) else {
            g.missing.insert(pod.name.clone());
            continue;
        };
        if cpu {
            let unready = match (pod.ready, pod.start_time) {
                (Some((ready, changed)), Some(start)) => {
                    if after(start, tuning.cpu_initialization_period) > now {
                        // Still starting: the sample counts only once a whole window of it was
                        // taken after the pod became ready.
                        !ready || sample.timestamp < after(changed, sample.window)
                    } else {
                        // Past start-up, only a pod that never became ready is left out.
                        !ready && after(start, tuning.initial_readiness_delay) > changed
                    }
                }
                _ => true,
            };
            if unready {
                g.unready.insert(pod.name.clone());
                continue;
            }
        }
        g.ready += 1;
    }
    g
}

/// (usage ratio, utilization %, average raw value) of `samples` against `requests`.
pub fn utilization_ratio(
    samples: &BTreeMap<String, Sample>,
    requests: &BTreeMap<String, i64>,
    target_utilization: i32,
) -> Result<(f64, i32, i64), String> {
    let (mut used, mut requested, mut n) = (0i64, 0i64, 0i64);
    for (name, s) in samples {
        // Samples of pods without a known request are extraneous.
        let Some(r) = requests.get(name) else {
            continue;
        };
        used += s.value;
        requested += r;
        n += 1;
    }
    if requested == 0 {
        return Err("no metrics returned matched known pods".into());
    }
    let utilization = ((used * 100) / requested) as i32;
    Ok((
        f64::from(utilization) / f64::from(target_utilization),
        utilization,
        used / n,
    ))
}

/// (usage ratio, average value) of `samples` against a target average value.
pub fn usage_ratio(samples: &BTreeMap<String, Sample>, target: i64) -> (f64, i64) {
    let total: i64 = samples.values().map(|s| s.value).sum();
    let average = total / (samples.len().max(1) as i64);
    (average as f64 / target as f64, average)
}

/// How unready and missing pods are filled in before the ratio is computed again.
#[derive(Clone, Copy)]
enum Fill {
    /// Utilization against requests: missing pods on a scale-down use
    /// `max(100, target)`% of their request.
    Utilization { target: i32 },
    /// A plain average: missing pods on a scale-down use exactly the target.
    Value { target: i64 },
}

struct Calculated {
    replicas: i32,
}

fn finish(
    current: i32,
    tuning: &Tuning,
    groups: &Groups,
    mut samples: BTreeMap<String, Sample>,
    first_ratio: f64,
    requests: Option<&BTreeMap<String, i64>>,
    fill: Fill,
) -> Result<Calculated, String> {
    let scale_up_with_unready = !groups.unready.is_empty() && first_ratio > 1.0;
    if !scale_up_with_unready && groups.missing.is_empty() {
        if (1.0 - first_ratio).abs() <= tuning.tolerance {
            return Ok(Calculated { replicas: current });
        }
        return Ok(Calculated {
            replicas: (first_ratio * groups.ready as f64).ceil() as i32,
        });
    }
    let placeholder = |value| Sample {
        value,
        timestamp: Timestamp::UNIX_EPOCH,
        window: Duration::ZERO,
    };
    if !groups.missing.is_empty() {
        for name in &groups.missing {
            let value = if first_ratio < 1.0 {
                match fill {
                    Fill::Utilization { target } => {
                        let request = requests.and_then(|r| r.get(name)).copied().unwrap_or(0);
                        request * i64::from(target.max(100)) / 100
                    }
                    Fill::Value { target } => target,
                }
            } else {
                0
            };
            if first_ratio != 1.0 {
                samples.insert(name.clone(), placeholder(value));
            }
        }
    }
    if scale_up_with_unready {
        for name in &groups.unready {
            samples.insert(name.clone(), placeholder(0));
        }
    }
    let new_ratio = match (fill, requests) {
        (Fill::Utilization { target }, Some(r)) => utilization_ratio(&samples, r, target)?.0,
        (Fill::Value { target }, _) => usage_ratio(&samples, target).0,
        (Fill::Utilization { .. }, None) => return Err("no requests to compare with".into()),
    };
    let direction_flips =
        (first_ratio < 1.0 && new_ratio > 1.0) || (first_ratio > 1.0 && new_ratio < 1.0);
    if (1.0 - new_ratio).abs() <= tuning.tolerance || direction_flips {
        return Ok(Calculated { replicas: current });
    }
    let proposed = (new_ratio * samples.len() as f64).ceil() as i32;
    if (new_ratio < 1.0 && proposed > current) || (new_ratio > 1.0 && proposed < current) {
        return Ok(Calculated { replicas: current });
    }
    Ok(Calculated { replicas: proposed })
}

/// The outcome for a utilization target: (replicas, utilization %, average raw value).
#[allow(clippy::too_many_arguments)]
pub fn resource_replicas(
    current: i32,
    target_utilization: i32,
    pods: &[PodFacts],
    mut samples: BTreeMap<String, Sample>,
    requests: &BTreeMap<String, i64>,
    cpu: bool,
    tuning: &Tuning,
    now: Timestamp,
) -> Result<(i32, i32, i64), String> {
    if pods.is_empty() {
        return Err("no pods returned by selector while calculating replica count".into());
    }
    let groups = group_pods(pods, &samples, cpu, tuning, now);
    samples.retain(|name, _| !groups.ignored.contains(name) && !groups.unready.contains(name));
    if samples.is_empty() {
        return Err("did not receive metrics for targeted pods (pods might be unready)".into());
    }
    let (ratio, utilization, raw) = utilization_ratio(&samples, requests, target_utilization)?;
    let c = finish(
        current,
        tuning,
        &groups,
        samples,
        ratio,
        Some(requests),
        Fill::Utilization {
            target: target_utilization,
        },
    )?;
    Ok((c.replicas, utilization, raw))
}

/// The outcome for an average-value target: (replicas, average value).
pub fn value_replicas(
    current: i32,
    target: i64,
    pods: &[PodFacts],
    mut samples: BTreeMap<String, Sample>,
    cpu: bool,
    tuning: &Tuning,
    now: Timestamp,
) -> Result<(i32, i64), String> {
    if pods.is_empty() {
        return Err("no pods returned by selector while calculating replica count".into());
    }
    let groups = group_pods(pods, &samples, cpu, tuning, now);
    samples.retain(|name, _| !groups.ignored.contains(name) && !groups.unready.contains(name));
    if samples.is_empty() {
        return Err("did not receive metrics for targeted pods (pods might be unready)".into());
    }
    let (ratio, average) = usage_ratio(&samples, target);
    let c = finish(
        current,
        tuning,
        &groups,
        samples,
        ratio,
        None,
        Fill::Value { target },
    )?;
    Ok((c.replicas, average))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    const TUNING: Tuning = Tuning {
        tolerance: 0.1,
        cpu_initialization_period: Duration::from_secs(300),
        initial_readiness_delay: Duration::from_secs(30),
    };

    /// A pod that started long ago and has been ready since.
    fn running(name: &str) -> PodFacts {
        PodFacts {
            name: name.into(),
            phase: "Running".into(),
            deleting: false,
            ready: Some((true, t(-1000))),
            start_time: Some(t(-1100)),
        }
    }

    fn sample(value: i64) -> Sample {
        Sample {
            value,
            timestamp: t(0),
            window: Duration::from_secs(15),
        }
    }

    fn fleet(
        usages: &[i64],
        request: i64,
    ) -> (
        Vec<PodFacts>,
        BTreeMap<String, Sample>,
        BTreeMap<String, i64>,
    ) {
        let pods: Vec<PodFacts> = (0..usages.len())
            .map(|i| running(&format!("p{i}")))
            .collect();
        let samples = usages
            .iter()
            .enumerate()
            .map(|(i, u)| (format!("p{i}"), sample(*u)))
            .collect();
        let requests = (0..usages.len())
            .map(|i| (format!("p{i}"), request))
            .collect();
        (pods, samples, requests)
    }

    #[test]
    fn four_pods_at_140_percent_of_a_70_percent_target_become_eight() {
        let (pods, samples, requests) = fleet(&[140, 140, 140, 140], 100);
        let r = resource_replicas(4, 70, &pods, samples, &requests, true, &TUNING, t(0)).unwrap();
        assert_eq!(r, (8, 140, 140));
    }

    #[test]
    fn a_change_within_the_tolerance_keeps_the_count() {
        let (pods, samples, requests) = fleet(&[75, 75, 75], 100);
        assert_eq!(
            resource_replicas(3, 70, &pods, samples, &requests, true, &TUNING, t(0))
                .unwrap()
                .0,
            3,
            "75% against 70% is within 10%"
        );
        let (pods, samples, requests) = fleet(&[20, 20, 20, 20], 100);
        assert_eq!(
            resource_replicas(4, 70, &pods, samples, &requests, true, &TUNING, t(0))
                .unwrap()
                .0,
            2,
            "ceil(20/70 × 4)"
        );
    }

    #[test]
    fn unready_pods_count_as_idle_on_a_scale_up() {
        let (mut pods, mut samples, mut requests) = fleet(&[200, 200], 100);
        let mut pending = running("p2");
        pending.phase = "Pending".into();
        pods.push(pending);
        requests.insert("p2".into(), 100);
        // Ratio 200/50 = 4 with the pending pod at 0: (200+200+0)/300 = 133% → 133/50.
        let r = resource_replicas(
            3,
            50,
            &pods,
            samples.clone(),
            &requests,
            true,
            &TUNING,
            t(0),
        )
        .unwrap();
        assert_eq!(r.0, 8, "ceil(2.66 × 3)");
        // On a scale-down the unready pod is simply left out.
        samples.insert("p0".into(), sample(10));
        samples.insert("p1".into(), sample(10));
        let r = resource_replicas(3, 50, &pods, samples, &requests, true, &TUNING, t(0)).unwrap();
        assert_eq!(r.0, 1, "ceil(0.2 × 2 ready pods)");
    }

    #[test]
    fn missing_pods_use_their_whole_request_on_a_scale_down_and_nothing_on_a_scale_up() {
        let (mut pods, samples, mut requests) = fleet(&[10, 10], 100);
        pods.push(running("p2"));
        requests.insert("p2".into(), 100);
        // (10 + 10 + 100) / 300 = 40% against 50% → ceil(0.8 × 3) = 3: no change.
        let r = resource_replicas(3, 50, &pods, samples, &requests, true, &TUNING, t(0)).unwrap();
        assert_eq!(r.0, 3);
        let (mut pods, samples, mut requests) = fleet(&[150, 150], 100);
        pods.push(running("p2"));
        requests.insert("p2".into(), 100);
        // (150 + 150 + 0) / 300 = 100% against 50% → 2 × 3 = 6.
        let r = resource_replicas(3, 50, &pods, samples, &requests, true, &TUNING, t(0)).unwrap();
        assert_eq!(r.0, 6);
    }

    #[test]
    fn a_cpu_sample_from_start_up_is_not_trusted() {
        let (mut pods, samples, requests) = fleet(&[300, 100], 100);
        // p0 became ready 5s ago, less than a 15s window before the sample.
        pods[0].start_time = Some(t(-10));
        pods[0].ready = Some((true, t(-5)));
        let g = group_pods(&pods, &samples, true, &TUNING, t(0));
        assert_eq!(g.ready, 1);
        assert!(g.unready.contains("p0"));
        // Memory samples are trusted at once.
        assert_eq!(group_pods(&pods, &samples, false, &TUNING, t(0)).ready, 2);
        // A pod past start-up that never became ready is left out; one that was ready is not.
        pods[0].start_time = Some(t(-1000));
        pods[0].ready = Some((false, t(-990)));
        assert!(group_pods(&pods, &samples, true, &TUNING, t(0))
            .unready
            .contains("p0"));
        pods[0].ready = Some((false, t(-500)));
        assert_eq!(group_pods(&pods, &samples, true, &TUNING, t(0)).ready, 2);
        let _ = requests;
    }

    #[test]
    fn deleted_and_failed_pods_are_ignored_and_no_samples_is_an_error() {
        let (mut pods, samples, requests) = fleet(&[100], 100);
        pods[0].deleting = true;
        let e = resource_replicas(1, 50, &pods, samples, &requests, true, &TUNING, t(0));
        assert_eq!(
            e.unwrap_err(),
            "did not receive metrics for targeted pods (pods might be unready)"
        );
        assert!(
            resource_replicas(1, 50, &[], BTreeMap::new(), &requests, true, &TUNING, t(0))
                .unwrap_err()
                .starts_with("no pods returned by selector")
        );
    }

    #[test]
    fn average_value_targets() {
        let (pods, samples, _) = fleet(&[300, 300], 0);
        assert_eq!(
            value_replicas(2, 100, &pods, samples, true, &TUNING, t(0)).unwrap(),
            (6, 300)
        );
        let (mut pods, samples, _) = fleet(&[20, 20], 0);
        pods.push(running("p2"));
        // The missing pod counts at the target: (20 + 20 + 100) / 3 = 46 → ceil(0.46 × 3) = 2.
        assert_eq!(
            value_replicas(3, 100, &pods, samples, true, &TUNING, t(0))
                .unwrap()
                .0,
            2
        );
    }
}
