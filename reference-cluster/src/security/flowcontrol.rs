//! API Priority and Fairness (`flowcontrol.apiserver.k8s.io/v1`): upstream's bootstrap
//! FlowSchemas and PriorityLevelConfigurations, classification of a request to a flow schema and
//! priority level, and a dispatcher per level that shares the server's concurrency by
//! `nominalConcurrencyShares`, queues excess requests in shuffle-sharded queues (`queues`,
//! `handSize`, `queueLengthLimit`), serves queues round-robin so one flow cannot starve the
//! others, and rejects with 429 when a queue is full or a request waited too long.
//!
//! Simplifications: round-robin between queues stands in for upstream's virtual-time fair
//! queuing, and levels do not borrow each other's unused seats (`lendablePercent`).

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};
use serde_json::{json, Value};
use tokio::sync::oneshot;

use super::rbac::Attributes;

/// Upstream's default server concurrency (`--max-requests-inflight` 400 + mutating 200).
pub const DEFAULT_SERVER_CONCURRENCY: usize = 600;
/// How long a request may wait in a queue before it is rejected.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(15);

fn object(kind: &str, name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": name, "annotations": {"apf.kubernetes.io/autoupdate-spec": "true"}},
        "spec": spec,
    })
}

fn limited(name: &str, shares: u32, lendable: u32, queues: u32, hand: u32, qll: u32) -> Value {
    object(
        "PriorityLevelConfiguration",
        name,
        json!({
            "type": "Limited",
            "limited": {
                "nominalConcurrencyShares": shares,
                "lendablePercent": lendable,
                "limitResponse": {"type": "Queue", "queuing": {"queues": queues, "handSize": hand, "queueLengthLimit": qll}},
            },
        }),
    )
}

/// The bootstrap PriorityLevelConfigurations (mandatory and suggested), as upstream 1.32.
pub fn bootstrap_priority_levels() -> Vec<Value> {
    vec![
        object(
            "PriorityLevelConfiguration",
            "exempt",
            json!({"type": "Exempt", "exempt": {"nominalConcurrencyShares": 0, "lendablePercent": 0}}),
        ),
        object(
            "PriorityLevelConfiguration",
            "catch-all",
            json!({"type": "Limited", "limited": {
            "nominalConcurrencyShares": 5, "lendablePercent": 0, "limitResponse": {"type": "Reject"}}}),
        ),
        limited("system", 30, 33, 64, 6, 50),
        limited("node-high", 40, 25, 64, 6, 50),
        limited("leader-election", 10, 0, 16, 4, 50),
        limited("workload-high", 40, 50, 128, 6, 50),
        limited("workload-low", 100, 90, 128, 6, 50),
        limited("global-default", 20, 50, 128, 6, 50),
    ]
}

fn group(name: &str) -> Value {
    json!({"kind": "Group", "group": {"name": name}})
}

fn user(name: &str) -> Value {
    json!({"kind": "User", "user": {"name": name}})
}

fn sa(namespace: &str, name: &str) -> Value {
    json!({"kind": "ServiceAccount", "serviceAccount": {"namespace": namespace, "name": name}})
}

fn everything() -> (Value, Value) {
    (
        json!([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"], "clusterScope": true, "namespaces": ["*"]}]),
        json!([{"verbs": ["*"], "nonResourceURLs": ["*"]}]),
    )
}

fn schema(
    name: &str,
    level: &str,
    precedence: u32,
    distinguisher: Option<&str>,
    subjects: Vec<Value>,
    resource_rules: Value,
    non_resource_rules: Value,
) -> Value {
    let mut rule = json!({"subjects": subjects});
    if resource_rules.as_array().is_some_and(|a| !a.is_empty()) {
        rule["resourceRules"] = resource_rules;
    }
    if non_resource_rules.as_array().is_some_and(|a| !a.is_empty()) {
        rule["nonResourceRules"] = non_resource_rules;
    }
    let mut spec = json!({
        "priorityLevelConfiguration": {"name": level},
        "matchingPrecedence": precedence,
        "rules": [rule],
    });
    if let Some(d) = distinguisher {
        spec["distinguisherMethod"] = json!({"type": d});
    }
    object("FlowSchema", name, spec)
}

/// The bootstrap FlowSchemas (mandatory and suggested), as upstream 1.32.
pub fn bootstrap_flow_schemas() -> Vec<Value> {
    let (all_res, all_urls) = everything();
    let leases = json!([{"verbs": ["get", "create", "update"], "apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "namespaces": ["*"]}]);
    vec![
        schema(
            "exempt",
            "exempt",
            1,
            None,
            vec![group("system:masters")],
            all_res.clone(),
            all_urls.clone(),
        ),
        schema(
            "probes",
            "exempt",
            2,
            None,
            vec![
                group("system:unauthenticated"),
                group("system:authenticated"),
            ],
            json!([]),
            json!([{"verbs": ["get"], "nonResourceURLs": ["/healthz", "/readyz", "/livez"]}]),
        ),
        schema(
            "system-leader-election",
            "leader-election",
            100,
            Some("ByUser"),
            vec![
                user("system:kube-controller-manager"),
                user("system:kube-scheduler"),
                sa("kube-system", "kube-controller-manager"),
                sa("kube-system", "kube-scheduler"),
            ],
            leases.clone(),
            json!([]),
        ),
        schema(
            "endpoint-controller",
            "workload-high",
            150,
            Some("ByUser"),
            vec![
                user("system:kube-controller-manager"),
                sa("kube-system", "endpoint-controller"),
            ],
            json!([{"verbs": ["get", "create", "update"], "apiGroups": [""], "resources": ["endpoints"], "namespaces": ["*"]}]),
            json!([]),
        ),
        schema(
            "workload-leader-election",
            "leader-election",
            200,
            Some("ByUser"),
            vec![
                json!({"kind": "ServiceAccount", "serviceAccount": {"namespace": "kube-system", "name": "*"}}),
            ],
            leases,
            json!([]),
        ),
        schema(
            "system-node-high",
            "node-high",
            400,
            Some("ByUser"),
            vec![group("system:nodes")],
            json!([{"verbs": ["*"], "apiGroups": [""], "resources": ["nodes", "nodes/status"], "clusterScope": true},
                   {"verbs": ["*"], "apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "namespaces": ["*"]}]),
            json!([]),
        ),
        schema(
            "system-nodes",
            "system",
            500,
            Some("ByUser"),
            vec![group("system:nodes")],
            all_res.clone(),
            all_urls.clone(),
        ),
        schema(
            "kube-controller-manager",
            "workload-high",
            800,
            Some("ByNamespace"),
            vec![user("system:kube-controller-manager")],
            all_res.clone(),
            all_urls.clone(),
        ),
        schema(
            "kube-scheduler",
            "workload-high",
            800,
            Some("ByNamespace"),
            vec![user("system:kube-scheduler")],
            all_res.clone(),
            all_urls.clone(),
        ),
        schema(
            "kube-system-service-accounts",
            "workload-high",
            900,
            Some("ByNamespace"),
            vec![
                json!({"kind": "ServiceAccount", "serviceAccount": {"namespace": "kube-system", "name": "*"}}),
            ],
            all_res.clone(),
            all_urls.clone(),
        ),
        schema(
            "service-accounts",
            "workload-low",
            9000,
            Some("ByUser"),
            vec![group("system:serviceaccounts")],
            all_res.clone(),
            all_urls.clone(),
        ),
        schema(
            "global-default",
            "global-default",
            9900,
            Some("ByUser"),
            vec![
                group("system:unauthenticated"),
                group("system:authenticated"),
            ],
            all_res.clone(),
            all_urls.clone(),
        ),
        schema(
            "catch-all",
            "catch-all",
            10000,
            Some("ByUser"),
            vec![
                group("system:unauthenticated"),
                group("system:authenticated"),
            ],
            all_res,
            all_urls,
        ),
    ]
}

fn strs(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether the string list `key` of `v` holds `want` or `*`. Every request is classified
/// against every rule until one matches, so this reads the list in place rather than copying it.
fn lists_or_star(v: &Value, key: &str, want: &str) -> bool {
    v.get(key)
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|x| x == "*" || x == want))
}

/// `v[a][b]` as a string; `Value::pointer` would allocate for each segment it unescapes.
fn str_at<'v>(v: &'v Value, a: &str, b: &str) -> Option<&'v str> {
    v.get(a).and_then(|x| x.get(b)).and_then(Value::as_str)
}

#[derive(Clone, Debug)]
struct Schema {
    name: String,
    level: String,
    precedence: i64,
    distinguisher: Option<String>,
    rules: Vec<Value>,
}

fn subject_matches(s: &Value, attrs: &Attributes) -> bool {
    let u = &attrs.user;
    match s.get("kind").and_then(Value::as_str) {
        Some("User") => str_at(s, "user", "name").is_some_and(|n| n == "*" || n == u.name),
        Some("Group") => str_at(s, "group", "name").is_some_and(|g| g == "*" || u.in_group(g)),
        Some("ServiceAccount") => {
            let ns = str_at(s, "serviceAccount", "namespace").unwrap_or_default();
            let name = str_at(s, "serviceAccount", "name").unwrap_or_default();
            u.service_account()
                .is_some_and(|(uns, uname)| uns == ns && (name == "*" || name == uname))
        }
        _ => false,
    }
}

fn rule_matches(rule: &Value, attrs: &Attributes) -> bool {
    let subjects = rule
        .get("subjects")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    if !subjects.iter().any(|s| subject_matches(s, attrs)) {
        return false;
    }
    if attrs.resource_request {
        let resource = if attrs.subresource.is_empty() {
            attrs.resource.clone()
        } else {
            format!("{}/{}", attrs.resource, attrs.subresource)
        };
        rule.get("resourceRules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|r| {
                let scope_ok = if attrs.namespace.is_empty() {
                    r.get("clusterScope").and_then(Value::as_bool) == Some(true)
                } else {
                    lists_or_star(r, "namespaces", &attrs.namespace)
                };
                lists_or_star(r, "verbs", &attrs.verb)
                    && lists_or_star(r, "apiGroups", &attrs.api_group)
                    && lists_or_star(r, "resources", &resource)
                    && scope_ok
            })
    } else {
        rule.get("nonResourceRules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|r| {
                lists_or_star(r, "verbs", &attrs.verb)
                    && strs(r, "nonResourceURLs").iter().any(|u| {
                        u == "*"
                            || *u == attrs.path
                            || u.strip_suffix("/*").is_some_and(|p| {
                                attrs.path.starts_with(&format!("{p}/")) || attrs.path == p
                            })
                    })
            })
    }
}

#[derive(Clone, Copy, Debug)]
struct Queuing {
    queues: usize,
    hand_size: usize,
    queue_length_limit: usize,
}

struct LevelState {
    executing: usize,
    queues: Vec<VecDeque<oneshot::Sender<()>>>,
    next_queue: usize,
}

struct Level {
    name: String,
    exempt: bool,
    limit: usize,
    queuing: Option<Queuing>,
    state: Mutex<LevelState>,
}

/// Why a request was not dispatched: answer 429 with `Retry-After`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TooManyRequests {
    pub priority_level: String,
    pub flow_schema: String,
    /// `queue-full`, `concurrency-limit` or `time-out`, as upstream's rejection reasons.
    pub reason: &'static str,
    pub retry_after_seconds: u64,
}

impl TooManyRequests {
    pub fn message(&self) -> &'static str {
        "Too many requests, please try again later."
    }
}

/// Upstream's flowcontrol metrics.
pub struct FlowMetrics {
    executing: IntGaugeVec,
    waiting: IntGaugeVec,
    dispatched: IntCounterVec,
    rejected: IntCounterVec,
}

impl FlowMetrics {
    pub fn new(registry: &Registry) -> prometheus::Result<FlowMetrics> {
        let labels = ["priority_level", "flow_schema"];
        let m = FlowMetrics {
            executing: IntGaugeVec::new(Opts::new("apiserver_flowcontrol_current_executing_requests", "Number of requests in initial (for a WATCH) or any (for a non-WATCH) execution stage in the API Priority and Fairness subsystem"), &labels)?,
            waiting: IntGaugeVec::new(Opts::new("apiserver_flowcontrol_current_inqueue_requests", "Number of requests currently pending in queues of the API Priority and Fairness subsystem"), &labels)?,
            dispatched: IntCounterVec::new(Opts::new("apiserver_flowcontrol_dispatched_requests_total", "Number of requests executed by API Priority and Fairness subsystem"), &labels)?,
            rejected: IntCounterVec::new(Opts::new("apiserver_flowcontrol_rejected_requests_total", "Number of requests rejected by API Priority and Fairness subsystem"), &["priority_level", "flow_schema", "reason"])?,
        };
        registry.register(Box::new(m.executing.clone()))?;
        registry.register(Box::new(m.waiting.clone()))?;
        registry.register(Box::new(m.dispatched.clone()))?;
        registry.register(Box::new(m.rejected.clone()))?;
        Ok(m)
    }
}

/// Classifies requests and holds them until their priority level has a free seat.
pub struct Dispatcher {
    schemas: Vec<Schema>,
    levels: HashMap<String, Arc<Level>>,
    max_wait: Duration,
    metrics: Option<Arc<FlowMetrics>>,
}

/// A seat at a priority level; dropping it frees the seat for the next queued request.
pub struct Permit {
    level: Option<Arc<Level>>,
    labels: [String; 2],
    metrics: Option<Arc<FlowMetrics>>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(m) = &self.metrics {
            m.executing
                .with_label_values(&[&self.labels[0], &self.labels[1]])
                .dec();
        }
        if let Some(level) = &self.level {
            release(level);
        }
    }
}

fn release(level: &Level) {
    let mut st = level.state.lock();
    st.executing = st.executing.saturating_sub(1);
    // Serve queues round-robin so every flow gets its turn.
    let n = st.queues.len();
    for k in 0..n {
        let qi = (st.next_queue + k) % n;
        while let Some(waiter) = st.queues[qi].pop_front() {
            if waiter.send(()).is_ok() {
                st.executing += 1;
                st.next_queue = (qi + 1) % n;
                return;
            }
        }
    }
}

fn flow_hash(schema: &str, distinguisher: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    schema.hash(&mut h);
    distinguisher.hash(&mut h);
    h.finish()
}

/// Upstream's shuffle sharding: deal a hand of `hand_size` distinct queues from the flow's hash.
fn deal_hand(mut hash: u64, queues: usize, hand_size: usize) -> Vec<usize> {
    let mut hand: Vec<usize> = Vec::with_capacity(hand_size);
    for i in 0..hand_size.min(queues) {
        let remaining = (queues - i) as u64;
        let mut card = (hash % remaining) as usize;
        hash /= remaining;
        // Skip cards already dealt, keeping the deal uniform.
        let mut sorted = hand.clone();
        sorted.sort_unstable();
        for taken in sorted {
            if card >= taken {
                card += 1;
            }
        }
        hand.push(card);
    }
    hand
}

impl Dispatcher {
    /// Builds a dispatcher from FlowSchema and PriorityLevelConfiguration objects, sharing
    /// `server_concurrency` seats among the limited levels by their shares.
    pub fn new(
        flow_schemas: &[Value],
        priority_levels: &[Value],
        server_concurrency: usize,
    ) -> Dispatcher {
        let total_shares: u64 = priority_levels
            .iter()
            .filter(|p| p.pointer("/spec/type").and_then(Value::as_str) == Some("Limited"))
            .map(|p| {
                p.pointer("/spec/limited/nominalConcurrencyShares")
                    .and_then(Value::as_u64)
                    .unwrap_or(30)
            })
            .sum::<u64>()
            .max(1);
        let mut levels = HashMap::new();
        for p in priority_levels {
            let name = p
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let exempt = p.pointer("/spec/type").and_then(Value::as_str) == Some("Exempt");
            let shares = p
                .pointer("/spec/limited/nominalConcurrencyShares")
                .and_then(Value::as_u64)
                .unwrap_or(30);
            let limit =
                ((server_concurrency as u64 * shares).div_ceil(total_shares)).max(1) as usize;
            let queuing = p
                .pointer("/spec/limited/limitResponse")
                .filter(|r| r.get("type").and_then(Value::as_str) == Some("Queue"))
                .map(|r| {
                    let q = |k: &str, d: u64| {
                        r.pointer(&format!("/queuing/{k}"))
                            .and_then(Value::as_u64)
                            .unwrap_or(d)
                            .max(1) as usize
                    };
                    Queuing {
                        queues: q("queues", 64),
                        hand_size: q("handSize", 8),
                        queue_length_limit: q("queueLengthLimit", 50),
                    }
                });
            let queues = queuing.map_or(0, |q| q.queues);
            levels.insert(
                name.clone(),
                Arc::new(Level {
                    name,
                    exempt,
                    limit,
                    queuing,
                    state: Mutex::new(LevelState {
                        executing: 0,
                        queues: (0..queues).map(|_| VecDeque::new()).collect(),
                        next_queue: 0,
                    }),
                }),
            );
        }
        let mut schemas: Vec<Schema> = flow_schemas
            .iter()
            .map(|f| Schema {
                name: f
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                level: f
                    .pointer("/spec/priorityLevelConfiguration/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                precedence: f
                    .pointer("/spec/matchingPrecedence")
                    .and_then(Value::as_i64)
                    .unwrap_or(1000),
                distinguisher: f
                    .pointer("/spec/distinguisherMethod/type")
                    .and_then(Value::as_str)
                    .map(String::from),
                rules: f
                    .pointer("/spec/rules")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            })
            .collect();
        // Lower precedence first; ties by name, as upstream.
        schemas.sort_by(|a, b| {
            a.precedence
                .cmp(&b.precedence)
                .then_with(|| a.name.cmp(&b.name))
        });
        Dispatcher {
            schemas,
            levels,
            max_wait: DEFAULT_MAX_WAIT,
            metrics: None,
        }
    }

    /// The upstream bootstrap configuration with the default server concurrency.
    pub fn bootstrap() -> Dispatcher {
        Self::new(
            &bootstrap_flow_schemas(),
            &bootstrap_priority_levels(),
            DEFAULT_SERVER_CONCURRENCY,
        )
    }

    pub fn with_max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    pub fn with_metrics(mut self, metrics: Arc<FlowMetrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// `(flow schema, priority level, flow distinguisher)` of a request; requests no schema
    /// matches go to catch-all.
    pub fn classify(&self, attrs: &Attributes) -> (String, String, String) {
        for s in &self.schemas {
            if s.rules.iter().any(|r| rule_matches(r, attrs)) {
                let d = match s.distinguisher.as_deref() {
                    Some("ByUser") => attrs.user.name.clone(),
                    Some("ByNamespace") => attrs.namespace.clone(),
                    _ => String::new(),
                };
                return (s.name.clone(), s.level.clone(), d);
            }
        }
        (
            "catch-all".into(),
            "catch-all".into(),
            attrs.user.name.clone(),
        )
    }

    /// The seat limit of a priority level (for tests and status).
    pub fn limit_of(&self, level: &str) -> Option<usize> {
        self.levels.get(level).map(|l| l.limit)
    }

    /// Waits for a seat for this request, or says why it is rejected.
    pub async fn acquire(&self, attrs: &Attributes) -> Result<Permit, TooManyRequests> {
        let (schema, level_name, flow) = self.classify(attrs);
        let labels = [level_name.clone(), schema.clone()];
        let reject = |reason: &'static str| {
            if let Some(m) = &self.metrics {
                m.rejected
                    .with_label_values(&[&labels[0], &labels[1], reason])
                    .inc();
            }
            TooManyRequests {
                priority_level: level_name.clone(),
                flow_schema: schema.clone(),
                reason,
                retry_after_seconds: 1,
            }
        };
        let Some(level) = self.levels.get(&level_name).cloned() else {
            return Err(reject("concurrency-limit"));
        };
        let permit = |level: Option<Arc<Level>>| {
            if let Some(m) = &self.metrics {
                m.dispatched
                    .with_label_values(&[&labels[0], &labels[1]])
                    .inc();
                m.executing
                    .with_label_values(&[&labels[0], &labels[1]])
                    .inc();
            }
            Permit {
                level,
                labels: labels.clone(),
                metrics: self.metrics.clone(),
            }
        };
        if level.exempt {
            return Ok(permit(None));
        }
        let rx = {
            let mut st = level.state.lock();
            let queued: usize = st.queues.iter().map(VecDeque::len).sum();
            if st.executing < level.limit && queued == 0 {
                st.executing += 1;
                return Ok(permit(Some(level.clone())));
            }
            let Some(q) = level.queuing else {
                return Err(reject("concurrency-limit"));
            };
            let hand = deal_hand(flow_hash(&schema, &flow), q.queues, q.hand_size);
            for &i in &hand {
                st.queues[i].retain(|w| !w.is_closed());
            }
            let Some(&shortest) = hand.iter().min_by_key(|&&i| st.queues[i].len()) else {
                return Err(reject("queue-full"));
            };
            if st.queues[shortest].len() >= q.queue_length_limit {
                return Err(reject("queue-full"));
            }
            let (tx, rx) = oneshot::channel();
            st.queues[shortest].push_back(tx);
            rx
        };
        if let Some(m) = &self.metrics {
            m.waiting.with_label_values(&[&labels[0], &labels[1]]).inc();
        }
        let waited = tokio::time::timeout(self.max_wait, rx).await;
        if let Some(m) = &self.metrics {
            m.waiting.with_label_values(&[&labels[0], &labels[1]]).dec();
        }
        match waited {
            Ok(Ok(())) => Ok(permit(Some(level))),
            _ => Err(reject("time-out")),
        }
    }
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let levels: Vec<(&str, usize)> = self
            .levels
            .values()
            .map(|l| (l.name.as_str(), l.limit))
            .collect();
        f.debug_struct("Dispatcher")
            .field("levels", &levels)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::UserInfo;

    fn req(user: UserInfo, verb: &str, resource: &str, ns: &str) -> Attributes {
        Attributes::resource(user, verb, "", resource, ns, "")
    }

    #[test]
    fn bootstrap_classification_matches_upstream() {
        let d = Dispatcher::bootstrap();
        let c = |a: &Attributes| {
            let (s, l, _) = d.classify(a);
            (s, l)
        };
        let admin = UserInfo::new("root", &["system:masters", "system:authenticated"]);
        assert_eq!(
            c(&req(admin, "list", "pods", "x")),
            ("exempt".into(), "exempt".into())
        );
        let node = UserInfo::new("system:node:n1", &["system:nodes", "system:authenticated"]);
        assert_eq!(c(&req(node.clone(), "patch", "nodes", "")).1, "node-high");
        assert_eq!(c(&req(node, "get", "configmaps", "x")).1, "system");
        let kcm = UserInfo::new("system:kube-controller-manager", &["system:authenticated"]);
        assert_eq!(c(&req(kcm, "list", "pods", "x")).1, "workload-high");
        let sa = UserInfo::new(
            "system:serviceaccount:dev:bot",
            &["system:serviceaccounts", "system:authenticated"],
        );
        assert_eq!(c(&req(sa, "list", "pods", "dev")).1, "workload-low");
        let ctrl = UserInfo::new(
            "system:serviceaccount:kube-system:deployment-controller",
            &["system:serviceaccounts", "system:authenticated"],
        );
        assert_eq!(c(&req(ctrl, "list", "pods", "dev")).1, "workload-high");
        let alice = UserInfo::new("alice", &["system:authenticated"]);
        assert_eq!(
            c(&req(alice.clone(), "list", "pods", "dev")),
            ("global-default".into(), "global-default".into())
        );
        assert_eq!(
            c(&Attributes::non_resource(alice, "get", "/healthz")).0,
            "probes"
        );
        // Shares split the server's concurrency as upstream's defaults do (600 · 20 / 245).
        assert_eq!(d.limit_of("global-default"), Some(49));
        assert_eq!(d.limit_of("catch-all"), Some(13));
    }

    #[test]
    fn hands_are_distinct_and_stable() {
        for h in [0u64, 1, 12345, u64::MAX] {
            let hand = deal_hand(h, 8, 4);
            let mut s = hand.clone();
            s.sort_unstable();
            s.dedup();
            assert_eq!(s.len(), 4);
            assert!(hand.iter().all(|&c| c < 8));
            assert_eq!(hand, deal_hand(h, 8, 4));
        }
    }

    fn tiny() -> Dispatcher {
        let levels = vec![object(
            "PriorityLevelConfiguration",
            "tiny",
            json!({"type": "Limited", "limited": {"nominalConcurrencyShares": 1,
                "limitResponse": {"type": "Queue", "queuing": {"queues": 4, "handSize": 1, "queueLengthLimit": 2}}}}),
        )];
        let schemas = vec![schema(
            "all",
            "tiny",
            1,
            Some("ByUser"),
            vec![group("system:authenticated")],
            everything().0,
            everything().1,
        )];
        Dispatcher::new(&schemas, &levels, 1).with_max_wait(Duration::from_millis(300))
    }

    #[tokio::test]
    async fn saturated_levels_queue_then_reject_with_429() {
        let d = tiny();
        let flood = UserInfo::new("flood", &["system:authenticated"]);
        let a = req(flood, "list", "pods", "x");
        let first = d.acquire(&a).await.unwrap();
        // The seat is taken: the next requests wait in the flood's queue, up to its length limit.
        let d = Arc::new(d);
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let d = d.clone();
                let a = a.clone();
                tokio::spawn(async move { d.acquire(&a).await.map(|_| ()) })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let err = d.acquire(&a).await.err().unwrap();
        assert_eq!(err.reason, "queue-full");
        assert_eq!(err.retry_after_seconds, 1);
        drop(first);
        for w in waiters {
            // Each queued request gets the seat in turn (each drops it at once).
            assert!(w.await.unwrap().is_ok());
        }
        // A request that waits past the limit is rejected as timed out.
        let _hold = d.acquire(&a).await.unwrap();
        assert_eq!(d.acquire(&a).await.err().unwrap().reason, "time-out");
    }

    #[tokio::test]
    async fn a_flood_from_one_user_does_not_starve_another() {
        let d = Arc::new(tiny());
        let flood = req(
            UserInfo::new("flood", &["system:authenticated"]),
            "list",
            "pods",
            "x",
        );
        // Find another user whose flow lands in a different queue than the flood's.
        let flood_q = deal_hand(flow_hash("all", "flood"), 4, 1)[0];
        let other_name = (0..100)
            .map(|i| format!("ctrl-{i}"))
            .find(|n| deal_hand(flow_hash("all", n), 4, 1)[0] != flood_q)
            .unwrap();
        let other = req(
            UserInfo::new(&other_name, &["system:authenticated"]),
            "list",
            "pods",
            "x",
        );
        let seat = d.acquire(&flood).await.unwrap();
        let flood_waiters: Vec<_> = (0..2)
            .map(|_| {
                let d = d.clone();
                let a = flood.clone();
                tokio::spawn(async move { d.acquire(&a).await.map(drop) })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let other_waiter = {
            let d = d.clone();
            let a = other.clone();
            tokio::spawn(async move { d.acquire(&a).await.is_ok() })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        // The flood's queue is full, but the other user's queue is not.
        assert_eq!(d.acquire(&flood).await.err().unwrap().reason, "queue-full");
        drop(seat);
        assert!(other_waiter.await.unwrap());
        for w in flood_waiters {
            assert!(w.await.unwrap().is_ok());
        }
    }

    #[tokio::test]
    async fn metrics_count_dispatch_and_rejection() {
        let registry = Registry::new();
        let metrics = Arc::new(FlowMetrics::new(&registry).unwrap());
        let d = tiny().with_metrics(metrics);
        let a = req(
            UserInfo::new("u", &["system:authenticated"]),
            "get",
            "pods",
            "x",
        );
        let p = d.acquire(&a).await.unwrap();
        let _ = d.acquire(&a).await;
        drop(p);
        let names: Vec<String> = registry
            .gather()
            .iter()
            .map(|f| f.name().to_string())
            .collect();
        assert!(names.contains(&"apiserver_flowcontrol_dispatched_requests_total".to_string()));
        assert!(names.contains(&"apiserver_flowcontrol_rejected_requests_total".to_string()));
    }
}
