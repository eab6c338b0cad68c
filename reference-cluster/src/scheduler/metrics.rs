//! The scheduler's Prometheus metrics with upstream's names, labels and buckets. The registry is
//! handed out so whoever serves `/metrics` (the embedded cluster, a standalone process) can
//! expose it.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
};

#[derive(Clone)]
pub struct SchedulerMetrics {
    registry: Registry,
    attempt_duration: HistogramVec,
    attempts: IntCounterVec,
    pending_pods: IntGaugeVec,
    preemption_attempts: IntCounter,
    preemption_victims: Histogram,
    pod_attempts: Histogram,
    queue_incoming: IntCounterVec,
}

impl Default for SchedulerMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// How a scheduling attempt ended, as the `result` label spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptResult {
    Scheduled,
    Unschedulable,
    Error,
}

impl AttemptResult {
    pub fn label(self) -> &'static str {
        match self {
            AttemptResult::Scheduled => "scheduled",
            AttemptResult::Unschedulable => "unschedulable",
            AttemptResult::Error => "error",
        }
    }
}

/// Sizes of the scheduling queue's parts (`scheduler_pending_pods{queue=...}`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PendingCounts {
    pub active: usize,
    pub backoff: usize,
    pub unschedulable: usize,
    pub gated: usize,
}

fn exponential_buckets(start: f64, factor: f64, count: usize) -> Vec<f64> {
    (0..count).map(|i| start * factor.powi(i as i32)).collect()
}

impl SchedulerMetrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let attempt_duration = HistogramVec::new(
            HistogramOpts::new(
                "scheduler_scheduling_attempt_duration_seconds",
                "Scheduling attempt latency in seconds (scheduling algorithm + binding)",
            )
            .buckets(exponential_buckets(0.001, 2.0, 15)),
            &["result", "profile"],
        )
        .expect("valid metric");
        let attempts = IntCounterVec::new(
            Opts::new(
                "scheduler_schedule_attempts_total",
                "Number of attempts to schedule pods, by the result. 'unschedulable' means a pod could not be scheduled, while 'error' means an internal scheduler problem.",
            ),
            &["result", "profile"],
        )
        .expect("valid metric");
        let pending_pods = IntGaugeVec::new(
            Opts::new(
                "scheduler_pending_pods",
                "Number of pending pods, by the queue type. 'active' means number of pods in activeQ; 'backoff' means number of pods in backoffQ; 'unschedulable' means number of pods in unschedulablePods that the scheduler attempted to schedule and failed; 'gated' is the number of unschedulable pods that the scheduler never attempted to schedule because they are gated.",
            ),
            &["queue"],
        )
        .expect("valid metric");
        let preemption_attempts = IntCounter::new(
            "scheduler_preemption_attempts_total",
            "Total preemption attempts in the cluster till now",
        )
        .expect("valid metric");
        let preemption_victims = Histogram::with_opts(
            HistogramOpts::new(
                "scheduler_preemption_victims",
                "Number of selected preemption victims",
            )
            .buckets(exponential_buckets(1.0, 2.0, 7)),
        )
        .expect("valid metric");
        let pod_attempts = Histogram::with_opts(
            HistogramOpts::new(
                "scheduler_pod_scheduling_attempts",
                "Number of attempts to successfully schedule a pod.",
            )
            .buckets(exponential_buckets(1.0, 2.0, 5)),
        )
        .expect("valid metric");
        let queue_incoming = IntCounterVec::new(
            Opts::new(
                "scheduler_queue_incoming_pods_total",
                "Number of pods added to scheduling queues by event and queue type.",
            ),
            &["queue", "event"],
        )
        .expect("valid metric");
        for c in [
            Box::new(attempt_duration.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(queue_incoming.clone()),
            Box::new(pod_attempts.clone()),
            Box::new(attempts.clone()),
            Box::new(pending_pods.clone()),
            Box::new(preemption_attempts.clone()),
            Box::new(preemption_victims.clone()),
        ] {
            registry.register(c).expect("metric names are unique");
        }
        SchedulerMetrics {
            registry,
            attempt_duration,
            attempts,
            pending_pods,
            preemption_attempts,
            preemption_victims,
            pod_attempts,
            queue_incoming,
        }
    }

    /// Counts pods entering a scheduling queue (`queue`: active, backoff or unschedulable) and
    /// the event that moved them there.
    pub fn observe_incoming(&self, queue: &str, event: &str) {
        self.queue_incoming.with_label_values(&[queue, event]).inc();
    }

    /// The registry holding every scheduler metric.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn observe_attempt(&self, result: AttemptResult, profile: &str, seconds: f64) {
        let labels = [result.label(), profile];
        self.attempts.with_label_values(&labels).inc();
        self.attempt_duration
            .with_label_values(&labels)
            .observe(seconds);
    }

    /// A pod was bound after `attempts` scheduling attempts.
    pub fn observe_scheduled_pod(&self, attempts: u32) {
        self.pod_attempts.observe(f64::from(attempts.max(1)));
    }

    pub fn set_pending(&self, c: PendingCounts) {
        for (queue, n) in [
            ("active", c.active),
            ("backoff", c.backoff),
            ("unschedulable", c.unschedulable),
            ("gated", c.gated),
        ] {
            self.pending_pods.with_label_values(&[queue]).set(n as i64);
        }
    }

    pub fn observe_preemption(&self, victims: usize) {
        self.preemption_attempts.inc();
        if victims > 0 {
            self.preemption_victims.observe(victims as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_upstream_names_and_labels() {
        let m = SchedulerMetrics::new();
        m.observe_attempt(AttemptResult::Scheduled, "default-scheduler", 0.002);
        m.observe_attempt(AttemptResult::Unschedulable, "default-scheduler", 0.5);
        m.set_pending(PendingCounts {
            active: 2,
            backoff: 1,
            unschedulable: 3,
            gated: 0,
        });
        m.observe_scheduled_pod(3);
        let text = crate::apiserver::metrics::render(m.registry());
        assert!(text.contains("# TYPE scheduler_scheduling_attempt_duration_seconds histogram"));
        assert!(text.contains("# TYPE scheduler_schedule_attempts_total counter"));
        assert!(text.contains("# TYPE scheduler_pending_pods gauge"));

        // Every queue is reported, empty ones included.
        assert!(text.contains(r#"scheduler_pending_pods{queue="gated"} 0"#));
        assert!(text.contains(r#"scheduler_pending_pods{queue="active"} 2"#));
        assert!(text.contains(r#"scheduler_pending_pods{queue="backoff"} 1"#));
        assert!(text.contains(
            r#"scheduler_schedule_attempts_total{profile="default-scheduler",result="unschedulable"} 1"#
        ));
        // Buckets 1, 2, 4, 8, 16 as upstream's ExponentialBuckets(1, 2, 5).
        assert!(text.contains(r#"scheduler_pod_scheduling_attempts_bucket{le="2"} 0"#));
        assert!(text.contains(r#"scheduler_pod_scheduling_attempts_bucket{le="4"} 1"#));
        assert!(text.contains(r#"scheduler_pod_scheduling_attempts_bucket{le="16"} 1"#));
        // The attempt-duration histogram has 15 buckets from 1 ms doubling, as upstream.
        assert!(text.contains(
            r#"scheduler_scheduling_attempt_duration_seconds_bucket{profile="default-scheduler",result="scheduled",le="16.384"} 1"#
        ));
        assert!(text.contains(
            r#"scheduler_schedule_attempts_total{profile="default-scheduler",result="scheduled"} 1"#
        ));
        assert!(text.contains(r#"scheduler_pending_pods{queue="unschedulable"} 3"#));
        assert!(text.contains(
            r#"scheduler_scheduling_attempt_duration_seconds_bucket{profile="default-scheduler",result="scheduled",le="0.002"} 1"#
        ));
    }
}
