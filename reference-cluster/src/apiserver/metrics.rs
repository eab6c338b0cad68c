//! Prometheus metrics with upstream's names and labels, served at `/metrics`.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub durations: HistogramVec,
    pub watchers: IntGaugeVec,
    pub watch_events: IntCounterVec,
    pub longrunning: IntGaugeVec,
    pub inflight: IntGaugeVec,
}

/// Labels of one request as upstream records them.
pub struct RequestLabels<'a> {
    pub verb: &'a str,
    pub group: &'a str,
    pub version: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
    pub scope: &'a str,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let labels = [
            "verb",
            "group",
            "version",
            "resource",
            "subresource",
            "scope",
            "component",
            "code",
        ];
        let requests = IntCounterVec::new(
            Opts::new(
                "apiserver_request_total",
                "Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code.",
            ),
            &labels,
        )
        .expect("valid metric");
        let durations = HistogramVec::new(
            HistogramOpts::new(
                "apiserver_request_duration_seconds",
                "Response latency distribution in seconds for each verb, dry run value, group, version, resource, subresource, scope and component.",
            )
            .buckets(vec![
                0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0,
                6.0, 8.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
            ]),
            &labels[..7],
        )
        .expect("valid metric");
        let watchers = IntGaugeVec::new(
            Opts::new(
                "apiserver_registered_watchers",
                "Number of currently registered watchers for a given resources",
            ),
            &["group", "version", "kind"],
        )
        .expect("valid metric");
        let watch_events = IntCounterVec::new(
            Opts::new(
                "apiserver_watch_events_total",
                "Number of events sent in watch clients",
            ),
            &["group", "version", "kind"],
        )
        .expect("valid metric");
        let longrunning = IntGaugeVec::new(
            Opts::new(
                "apiserver_longrunning_requests",
                "Gauge of all active long-running apiserver requests broken out by verb, group, version, resource, scope and component.",
            ),
            &["verb", "group", "version", "resource", "subresource", "scope", "component"],
        )
        .expect("valid metric");
        let inflight = IntGaugeVec::new(
            Opts::new(
                "apiserver_current_inflight_requests",
                "Maximal number of currently used inflight request limit of this apiserver per request kind in last second.",
            ),
            &["request_kind"],
        )
        .expect("valid metric");
        // Both series exist from the start, as upstream reports them.
        inflight.with_label_values(&["readOnly"]).set(0);
        inflight.with_label_values(&["mutating"]).set(0);
        for c in [
            Box::new(inflight.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(requests.clone()),
            Box::new(durations.clone()),
            Box::new(watchers.clone()),
            Box::new(watch_events.clone()),
            Box::new(longrunning.clone()),
        ] {
            registry.register(c).expect("metric names are unique");
        }
        Metrics {
            registry,
            requests,
            durations,
            watchers,
            watch_events,
            longrunning,
            inflight,
        }
    }

    pub fn observe(&self, l: &RequestLabels<'_>, code: u16, seconds: f64) {
        let code = code.to_string();
        self.requests
            .with_label_values(&[
                l.verb,
                l.group,
                l.version,
                l.resource,
                l.subresource,
                l.scope,
                "apiserver",
                &code,
            ])
            .inc();
        self.durations
            .with_label_values(&[
                l.verb,
                l.group,
                l.version,
                l.resource,
                l.subresource,
                l.scope,
                "apiserver",
            ])
            .observe(seconds);
    }

    /// The registry served at `/metrics`, for subsystems that bring their own metrics.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding of gathered metrics cannot fail");
        String::from_utf8_lossy(&buf).into_owned()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
