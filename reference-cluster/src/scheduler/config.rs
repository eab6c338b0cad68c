//! `KubeSchedulerConfiguration` (kubescheduler.config.k8s.io/v1) as YAML: profiles, plugin
//! enable/disable/weights per extension point or `multiPoint`, plugin arguments,
//! `percentageOfNodesToScore`, `parallelism`, back-off and leader election settings. Unknown
//! fields are rejected, as upstream decodes strictly.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

/// The default profile's name.
pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PluginRef {
    pub name: String,
    #[serde(default)]
    pub weight: Option<i64>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PluginSet {
    #[serde(default)]
    pub enabled: Vec<PluginRef>,
    #[serde(default)]
    pub disabled: Vec<PluginRef>,
}

/// Plugins per extension point (upstream `Plugins`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PluginsConfig {
    #[serde(default)]
    pub pre_enqueue: PluginSet,
    #[serde(default)]
    pub queue_sort: PluginSet,
    #[serde(default)]
    pub pre_filter: PluginSet,
    #[serde(default)]
    pub filter: PluginSet,
    #[serde(default)]
    pub post_filter: PluginSet,
    #[serde(default)]
    pub pre_score: PluginSet,
    #[serde(default)]
    pub score: PluginSet,
    #[serde(default)]
    pub reserve: PluginSet,
    #[serde(default)]
    pub permit: PluginSet,
    #[serde(default)]
    pub pre_bind: PluginSet,
    #[serde(default)]
    pub bind: PluginSet,
    #[serde(default)]
    pub post_bind: PluginSet,
    #[serde(default)]
    pub multi_point: PluginSet,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PluginArgs {
    pub name: String,
    #[serde(default)]
    pub args: Option<Value>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ProfileYaml {
    #[serde(default)]
    scheduler_name: Option<String>,
    #[serde(default)]
    percentage_of_nodes_to_score: Option<i32>,
    #[serde(default)]
    plugins: Option<PluginsConfig>,
    #[serde(default)]
    plugin_config: Vec<PluginArgs>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LeaderElectionYaml {
    #[serde(default)]
    leader_elect: Option<bool>,
    #[serde(default)]
    lease_duration: Option<String>,
    #[serde(default)]
    renew_deadline: Option<String>,
    #[serde(default)]
    retry_period: Option<String>,
    #[serde(default)]
    resource_lock: Option<String>,
    #[serde(default)]
    resource_name: Option<String>,
    #[serde(default)]
    resource_namespace: Option<String>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConfigYaml {
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    parallelism: Option<i32>,
    #[serde(default)]
    percentage_of_nodes_to_score: Option<i32>,
    #[serde(default)]
    pod_initial_backoff_seconds: Option<i64>,
    #[serde(default)]
    pod_max_backoff_seconds: Option<i64>,
    #[serde(default)]
    leader_election: Option<LeaderElectionYaml>,
    #[serde(default)]
    profiles: Vec<ProfileYaml>,
    // Accepted for compatibility with upstream files; they configure things this scheduler
    // does not have (its own HTTP endpoints, client rate limits, extenders).
    #[serde(default)]
    client_connection: Option<Value>,
    #[serde(default)]
    debugging_configuration: Option<Value>,
    #[serde(default)]
    enable_profiling: Option<bool>,
    #[serde(default)]
    enable_contention_profiling: Option<bool>,
    #[serde(default)]
    health_z_bind_address: Option<String>,
    #[serde(default)]
    metrics_bind_address: Option<String>,
    #[serde(default)]
    extenders: Option<Vec<Value>>,
    #[serde(default)]
    delay_cache_until_active: Option<bool>,
}

/// One scheduling profile: a scheduler name and its plugins.
#[derive(Clone, Debug, PartialEq)]
pub struct ProfileConfig {
    pub scheduler_name: String,
    pub percentage_of_nodes_to_score: Option<i32>,
    pub plugins: PluginsConfig,
    /// Plugin name → its arguments.
    pub plugin_args: BTreeMap<String, Value>,
}

impl Default for ProfileConfig {
    fn default() -> Self {
        ProfileConfig {
            scheduler_name: DEFAULT_SCHEDULER_NAME.into(),
            percentage_of_nodes_to_score: None,
            plugins: PluginsConfig::default(),
            plugin_args: BTreeMap::new(),
        }
    }
}

/// Lease-based leader election settings from the file.
#[derive(Clone, Debug, PartialEq)]
pub struct LeaderElectionSettings {
    pub enabled: bool,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
    pub namespace: String,
    pub name: String,
}

impl Default for LeaderElectionSettings {
    fn default() -> Self {
        LeaderElectionSettings {
            enabled: true,
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
            namespace: "kube-system".into(),
            name: "kube-scheduler".into(),
        }
    }
}

/// The parsed and validated file.
#[derive(Clone, Debug, PartialEq)]
pub struct SchedulerFile {
    pub profiles: Vec<ProfileConfig>,
    pub parallelism: usize,
    pub percentage_of_nodes_to_score: i32,
    pub pod_initial_backoff: Duration,
    pub pod_max_backoff: Duration,
    pub leader_election: LeaderElectionSettings,
}

/// A Go duration string (`"15s"`, `"1m30s"`, `"500ms"`, `"1.5h"`), not negative.
pub use crate::apiserver::protobuf::go_format::parse_std_duration as parse_go_duration;

impl SchedulerFile {
    pub fn defaults() -> SchedulerFile {
        SchedulerFile {
            profiles: vec![ProfileConfig::default()],
            parallelism: 16,
            percentage_of_nodes_to_score: 0,
            pod_initial_backoff: Duration::from_secs(1),
            pod_max_backoff: Duration::from_secs(10),
            leader_election: LeaderElectionSettings::default(),
        }
    }

    pub fn from_yaml(text: &str) -> Result<SchedulerFile, String> {
        let y: ConfigYaml = serde_yaml_ng::from_str(text)
            .map_err(|e| format!("decoding KubeSchedulerConfiguration: {e}"))?;
        if let Some(v) = y.api_version.as_deref() {
            if v != "kubescheduler.config.k8s.io/v1" {
                return Err(format!(
                    "no kind \"KubeSchedulerConfiguration\" is registered for version {v:?}"
                ));
            }
        }
        if let Some(k) = y.kind.as_deref() {
            if k != "KubeSchedulerConfiguration" {
                return Err(format!(
                    "unexpected kind {k:?}, want \"KubeSchedulerConfiguration\""
                ));
            }
        }
        let mut f = SchedulerFile::defaults();
        let mut errs = Vec::new();
        if let Some(p) = y.parallelism {
            if p <= 0 {
                errs.push(
                    "parallelism: Invalid value: should be an integer value greater than zero"
                        .to_string(),
                );
            }
            f.parallelism = p.max(1) as usize;
        }
        let pct_ok = |p: i32| (0..=100).contains(&p);
        if let Some(p) = y.percentage_of_nodes_to_score {
            if !pct_ok(p) {
                errs.push(format!(
                    "percentageOfNodesToScore: Invalid value: {p}: not in valid range [0-100]"
                ));
            }
            f.percentage_of_nodes_to_score = p;
        }
        if let Some(s) = y.pod_initial_backoff_seconds {
            if s <= 0 {
                errs.push("podInitialBackoffSeconds: Invalid value: must be greater than 0".into());
            }
            f.pod_initial_backoff = Duration::from_secs(s.max(0) as u64);
        }
        if let Some(s) = y.pod_max_backoff_seconds {
            f.pod_max_backoff = Duration::from_secs(s.max(0) as u64);
        }
        if f.pod_max_backoff < f.pod_initial_backoff {
            errs.push("podMaxBackoffSeconds: Invalid value: must be greater than or equal to PodInitialBackoffSeconds".into());
        }
        if let Some(le) = y.leader_election {
            let d = &mut f.leader_election;
            if let Some(e) = le.leader_elect {
                d.enabled = e;
            }
            for (field, value, slot) in [
                ("leaseDuration", le.lease_duration, &mut d.lease_duration),
                ("renewDeadline", le.renew_deadline, &mut d.renew_deadline),
                ("retryPeriod", le.retry_period, &mut d.retry_period),
            ] {
                if let Some(v) = value {
                    match parse_go_duration(&v) {
                        Ok(v) => *slot = v,
                        Err(e) => errs.push(format!("leaderElection.{field}: {e}")),
                    }
                }
            }
            if let Some(lock) = le.resource_lock.as_deref() {
                if lock != "leases" {
                    errs.push(format!("leaderElection.resourceLock: Unsupported value: {lock:?}: supported values: \"leases\""));
                }
            }
            if let Some(n) = le.resource_name {
                d.name = n;
            }
            if let Some(n) = le.resource_namespace {
                d.namespace = n;
            }
            if d.enabled {
                if d.lease_duration <= d.renew_deadline {
                    errs.push("leaderElection.leaseDuration: Invalid value: LeaseDuration must be greater than RenewDeadline".into());
                }
                if d.renew_deadline <= d.retry_period || d.retry_period.is_zero() {
                    errs.push("leaderElection.renewDeadline: Invalid value: RenewDeadline must be greater than RetryPeriod".into());
                }
            }
        }
        if !y.profiles.is_empty() {
            f.profiles.clear();
        }
        for (i, p) in y.profiles.into_iter().enumerate() {
            let name = p
                .scheduler_name
                .unwrap_or_else(|| DEFAULT_SCHEDULER_NAME.to_string());
            if name.is_empty() {
                errs.push(format!("profiles[{i}].schedulerName: Required value"));
            }
            if f.profiles.iter().any(|q| q.scheduler_name == name) {
                errs.push(format!(
                    "profiles[{i}].schedulerName: Duplicate value: {name:?}"
                ));
            }
            if let Some(pct) = p.percentage_of_nodes_to_score {
                if !pct_ok(pct) {
                    errs.push(format!("profiles[{i}].percentageOfNodesToScore: Invalid value: {pct}: not in valid range [0-100]"));
                }
            }
            let mut args = BTreeMap::new();
            for a in p.plugin_config {
                if args
                    .insert(a.name.clone(), a.args.unwrap_or(Value::Null))
                    .is_some()
                {
                    errs.push(format!(
                        "profiles[{i}].pluginConfig: Duplicate value: {:?}",
                        a.name
                    ));
                }
            }
            f.profiles.push(ProfileConfig {
                scheduler_name: name,
                percentage_of_nodes_to_score: p.percentage_of_nodes_to_score,
                plugins: p.plugins.unwrap_or_default(),
                plugin_args: args.into_iter().filter(|(_, v)| !v.is_null()).collect(),
            });
        }
        if errs.is_empty() {
            Ok(f)
        } else {
            Err(errs.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("15s").unwrap(), Duration::from_secs(15));
        assert_eq!(parse_go_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(
            parse_go_duration("500ms").unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(
            parse_go_duration("1.5h").unwrap(),
            Duration::from_secs(5400)
        );
        assert!(parse_go_duration("15").is_err());
        assert!(parse_go_duration("-1s").is_err());
        assert!(parse_go_duration("1x").is_err());
    }

    #[test]
    fn full_file() {
        let f = SchedulerFile::from_yaml(
            r#"
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
parallelism: 8
percentageOfNodesToScore: 30
podInitialBackoffSeconds: 2
podMaxBackoffSeconds: 20
clientConnection:
  qps: 100
leaderElection:
  leaderElect: true
  leaseDuration: 30s
  renewDeadline: 20s
  retryPeriod: 4s
  resourceNamespace: kube-system
  resourceName: my-scheduler
profiles:
- schedulerName: default-scheduler
  plugins:
    score:
      disabled:
      - name: ImageLocality
      enabled:
      - name: NodeResourcesFit
        weight: 5
- schedulerName: bin-packer
  percentageOfNodesToScore: 100
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: MostAllocated
"#,
        )
        .unwrap();
        assert_eq!((f.parallelism, f.percentage_of_nodes_to_score), (8, 30));
        assert_eq!(
            (f.pod_initial_backoff.as_secs(), f.pod_max_backoff.as_secs()),
            (2, 20)
        );
        assert_eq!(f.leader_election.lease_duration, Duration::from_secs(30));
        assert_eq!(f.leader_election.name, "my-scheduler");
        assert_eq!(f.profiles.len(), 2);
        assert_eq!(
            f.profiles[0].plugins.score.disabled[0].name,
            "ImageLocality"
        );
        assert_eq!(f.profiles[0].plugins.score.enabled[0].weight, Some(5));
        assert_eq!(f.profiles[1].percentage_of_nodes_to_score, Some(100));
        assert_eq!(
            f.profiles[1].plugin_args["NodeResourcesFit"]["scoringStrategy"]["type"],
            "MostAllocated"
        );
    }

    #[test]
    fn empty_file_gives_upstream_defaults() {
        let f = SchedulerFile::from_yaml("{}").unwrap();
        assert_eq!(f, SchedulerFile::defaults());
        assert_eq!(f.profiles[0].scheduler_name, DEFAULT_SCHEDULER_NAME);
        assert!(f.leader_election.enabled);
    }

    #[test]
    fn invalid_files_are_rejected() {
        let bad = |y: &str| SchedulerFile::from_yaml(y).unwrap_err();
        assert!(bad("apiVersion: kubescheduler.config.k8s.io/v1beta2").contains("no kind"));
        assert!(bad("percentageOfNodesToScore: 101").contains("percentageOfNodesToScore"));
        assert!(bad("parallelism: 0").contains("parallelism"));
        assert!(bad("bogus: 1").contains("unknown field"));
        assert!(bad("profiles: [{schedulerName: a}, {schedulerName: a}]").contains("Duplicate"));
        assert!(
            bad("leaderElection: {leaseDuration: 5s, renewDeadline: 10s}")
                .contains("LeaseDuration")
        );
        assert!(bad("podInitialBackoffSeconds: 5\npodMaxBackoffSeconds: 2")
            .contains("podMaxBackoffSeconds"));
        assert!(
            bad("profiles: [{plugins: {score: {enabled: [{name: X, wieght: 1}]}}}]")
                .contains("unknown field")
        );
    }
}
