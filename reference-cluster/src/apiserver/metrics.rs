//! Prometheus metrics with upstream's names and labels, served at `/metrics`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// The content type of the Prometheus text exposition format.
pub const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every metric of `registry` in the Prometheus text format (also the scheduler's `/metrics`).
pub fn render(registry: &Registry) -> String {
    let mut buf = Vec::new();
    TextEncoder::new()
        .encode(&registry.gather(), &mut buf)
        .expect("text encoding of gathered metrics cannot fail");
    String::from_utf8_lossy(&buf).into_owned()
}

/// How often upstream publishes `apiserver_current_inflight_requests`
/// (`inflightUsageMetricUpdatePeriod`).
pub const INFLIGHT_USAGE_PERIOD: Duration = Duration::from_secs(1);

/// Upstream's request kinds of `apiserver_current_inflight_requests`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestKind {
    ReadOnly,
    Mutating,
}

impl RequestKind {
    pub fn label(self) -> &'static str {
        match self {
            RequestKind::ReadOnly => "readOnly",
            RequestKind::Mutating => "mutating",
        }
    }

    /// The kind of a request with this (Kubernetes, lower-case) verb and subresource, or
    /// `None` for the long-running requests upstream leaves out (watches, proxies, `exec`,
    /// `attach`, `log`, `portforward`). Only `get`, `list` and `watch` are read-only: a
    /// non-resource `HEAD` (verb `head`) counts as mutating upstream too.
    pub fn of(verb: &str, subresource: Option<&str>) -> Option<RequestKind> {
        let long_running = matches!(verb, "watch" | "proxy")
            || matches!(
                subresource,
                Some("attach" | "exec" | "proxy" | "log" | "portforward")
            );
        if long_running {
            return None;
        }
        Some(match verb {
            "get" | "list" => RequestKind::ReadOnly,
            _ => RequestKind::Mutating,
        })
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Requests executing now and the most executing at once, as upstream's `requestWatermark`:
/// the gauge reports the maximum of the last complete period, not the instant it is read, so a
/// scrape sees the requests of the second before it (and not itself).
pub struct InflightWatermark {
    period: Duration,
    state: parking_lot::Mutex<WatermarkState>,
}

struct WatermarkState {
    executing: [i64; 2],
    high: [i64; 2],
    reported: [i64; 2],
    window_start: Instant,
}

impl InflightWatermark {
    pub fn new(period: Duration) -> InflightWatermark {
        InflightWatermark {
            period: period.max(Duration::from_millis(1)),
            state: parking_lot::Mutex::new(WatermarkState {
                executing: [0; 2],
                high: [0; 2],
                reported: [0; 2],
                window_start: Instant::now(),
            }),
        }
    }

    fn roll(&self, s: &mut WatermarkState, now: Instant) {
        let elapsed = now.saturating_duration_since(s.window_start);
        if elapsed < self.period {
            return;
        }
        let windows = (elapsed.as_nanos() / self.period.as_nanos()) as u32;
        // A period in which no request started or ended peaked at what was executing throughout.
        s.reported = if windows == 1 { s.high } else { s.executing };
        s.high = s.executing;
        s.window_start += self.period * windows;
    }

    /// Counts a request of `kind` as executing until the guard is dropped.
    pub fn enter(self: &Arc<Self>, kind: RequestKind) -> InflightGuard {
        self.note(kind, 1, Instant::now());
        InflightGuard {
            watermark: self.clone(),
            kind,
        }
    }

    /// A request of `kind` started (`delta` 1) or ended (-1) at `now`.
    fn note(&self, kind: RequestKind, delta: i64, now: Instant) {
        let mut s = self.state.lock();
        self.roll(&mut s, now);
        let i = kind.index();
        s.executing[i] += delta;
        s.high[i] = s.high[i].max(s.executing[i]);
    }

    /// The most requests of each kind (read-only, mutating) executing at once in the last
    /// complete period.
    pub fn reported(&self) -> (i64, i64) {
        self.reported_at(Instant::now())
    }

    fn reported_at(&self, now: Instant) -> (i64, i64) {
        let mut s = self.state.lock();
        self.roll(&mut s, now);
        (s.reported[0], s.reported[1])
    }
}

/// One executing request; dropping it ends the request's count.
pub struct InflightGuard {
    watermark: Arc<InflightWatermark>,
    kind: RequestKind,
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.watermark.note(self.kind, -1, Instant::now());
    }
}

pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub durations: HistogramVec,
    pub watchers: IntGaugeVec,
    pub watch_events: IntCounterVec,
    pub longrunning: IntGaugeVec,
    /// Published from `inflight_watermark` at each scrape.
    pub inflight: IntGaugeVec,
    pub inflight_watermark: Arc<InflightWatermark>,
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
            inflight_watermark: Arc::new(InflightWatermark::new(INFLIGHT_USAGE_PERIOD)),
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
        let (read_only, mutating) = self.inflight_watermark.reported();
        self.inflight
            .with_label_values(&[RequestKind::ReadOnly.label()])
            .set(read_only);
        self.inflight
            .with_label_values(&[RequestKind::Mutating.label()])
            .set(mutating);
        render(&self.registry)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inflight_reports_the_peak_of_the_last_complete_period() {
        use RequestKind::{Mutating, ReadOnly};
        let w = InflightWatermark::new(Duration::from_secs(1));
        let t0 = w.state.lock().window_start;
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        w.note(ReadOnly, 1, at(100));
        w.note(ReadOnly, 1, at(200));
        w.note(Mutating, 1, at(300));
        // Nothing is complete yet: the first period is still running.
        assert_eq!(w.reported_at(at(400)), (0, 0));
        w.note(ReadOnly, -1, at(500));
        w.note(ReadOnly, -1, at(600));
        assert_eq!(w.reported_at(at(1100)), (2, 1));
        // The mutating request still executes through the next period; reads ended.
        assert_eq!(w.reported_at(at(2100)), (0, 1));
        w.note(Mutating, -1, at(2200));
        assert_eq!(w.reported_at(at(3000)), (0, 1));
        // Several quiet periods later only what still executes counts.
        assert_eq!(w.reported_at(at(6500)), (0, 0));
    }

    #[test]
    fn the_metric_is_served_with_upstream_labels() {
        let m = Metrics::new();
        let guard = m.inflight_watermark.enter(RequestKind::ReadOnly);
        let text = m.render();
        drop(guard);
        assert!(text.contains("# TYPE apiserver_current_inflight_requests gauge"));
        assert!(text.contains(r#"apiserver_current_inflight_requests{request_kind="readOnly"} "#));
        assert!(text.contains(r#"apiserver_current_inflight_requests{request_kind="mutating"} "#));
    }

    #[test]
    fn long_running_requests_are_not_in_flight() {
        assert_eq!(RequestKind::of("watch", None), None);
        assert_eq!(RequestKind::of("create", Some("exec")), None);
        assert_eq!(RequestKind::of("get", Some("log")), None);
        assert_eq!(RequestKind::of("get", None), Some(RequestKind::ReadOnly));
        assert_eq!(RequestKind::of("list", None), Some(RequestKind::ReadOnly));
        assert_eq!(RequestKind::of("head", None), Some(RequestKind::Mutating));
        assert_eq!(
            RequestKind::of("patch", Some("status")),
            Some(RequestKind::Mutating)
        );
    }
}
