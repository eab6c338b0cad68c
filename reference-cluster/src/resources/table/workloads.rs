//! Printers for pods and the workload controllers.

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1 as apps;
use k8s_openapi::api::autoscaling::v2 as autoscaling;
use k8s_openapi::api::batch::v1 as batch;
use k8s_openapi::api::core::v1 as corev1;
use serde_json::Value;

use super::{
    age_at, age_col, bool_ptr, col, container_cells, containers_cols, doc, has, human_duration,
    int, int_or_string, name_cell, name_col, parse_time, s, string_map_at, wide,
};
use crate::resources::json::{array_at, at, bool_at, i64_at, str_at, string_at};
use crate::resources::labels::{format_label_selector, format_labels, LabelSelector};
use crate::resources::quantity::Quantity;
use crate::resources::TableColumn;

pub(super) fn columns(group: &str, kind: &str) -> Option<Vec<TableColumn>> {
    Some(match (group, kind) {
        ("", "Pod") => vec![
            name_col(),
            col(
                "Ready",
                "string",
                "The aggregate readiness state of this pod for accepting traffic.",
            ),
            col(
                "Status",
                "string",
                "The aggregate status of the containers in this pod.",
            ),
            col("Restarts", "string", "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
            age_col(),
            wide(col("IP", "string", doc::<corev1::PodStatus>("podIP"))),
            wide(col("Node", "string", doc::<corev1::PodSpec>("nodeName"))),
            wide(col(
                "Nominated Node",
                "string",
                doc::<corev1::PodStatus>("nominatedNodeName"),
            )),
            wide(col(
                "Readiness Gates",
                "string",
                doc::<corev1::PodSpec>("readinessGates"),
            )),
        ],
        ("", "PodTemplate") => vec![
            name_col(),
            col(
                "Containers",
                "string",
                "Names of each container in the template.",
            ),
            col(
                "Images",
                "string",
                "Images referenced by each container in the template.",
            ),
            col("Pod Labels", "string", "The labels for the pod template."),
        ],
        ("policy", "PodDisruptionBudget") => vec![
            name_col(),
            col(
                "Min Available",
                "string",
                "The minimum number of pods that must be available.",
            ),
            col(
                "Max Unavailable",
                "string",
                "The maximum number of pods that may be unavailable.",
            ),
            col(
                "Allowed Disruptions",
                "integer",
                "Calculated number of pods that may be disrupted at this time.",
            ),
            age_col(),
        ],
        ("", "ReplicationController") => {
            let mut c = vec![
                name_col(),
                col(
                    "Desired",
                    "integer",
                    doc::<corev1::ReplicationControllerSpec>("replicas"),
                ),
                col(
                    "Current",
                    "integer",
                    doc::<corev1::ReplicationControllerStatus>("replicas"),
                ),
                col(
                    "Ready",
                    "integer",
                    doc::<corev1::ReplicationControllerStatus>("readyReplicas"),
                ),
                age_col(),
            ];
            c.extend(containers_cols(Some(doc::<corev1::ReplicationControllerSpec>(
                "selector",
            ))));
            c
        }
        ("apps", "ReplicaSet") => {
            let mut c = vec![
                name_col(),
                col("Desired", "integer", doc::<apps::ReplicaSetSpec>("replicas")),
                col(
                    "Current",
                    "integer",
                    doc::<apps::ReplicaSetStatus>("replicas"),
                ),
                col(
                    "Ready",
                    "integer",
                    doc::<apps::ReplicaSetStatus>("readyReplicas"),
                ),
                age_col(),
            ];
            c.extend(containers_cols(Some(doc::<apps::ReplicaSetSpec>("selector"))));
            c
        }
        ("apps", "DaemonSet") => {
            let st = |f: &str| doc::<apps::DaemonSetStatus>(f);
            let mut c = vec![
                name_col(),
                col("Desired", "integer", st("desiredNumberScheduled")),
                col("Current", "integer", st("currentNumberScheduled")),
                col("Ready", "integer", st("numberReady")),
                col("Up-to-date", "integer", st("updatedNumberScheduled")),
                col("Available", "integer", st("numberAvailable")),
                col(
                    "Node Selector",
                    "string",
                    doc::<corev1::PodSpec>("nodeSelector"),
                ),
                age_col(),
            ];
            c.extend(containers_cols(Some(doc::<apps::DaemonSetSpec>("selector"))));
            c
        }
        ("apps", "StatefulSet") => {
            let mut c = vec![
                name_col(),
                col("Ready", "string", "Number of the pod with ready state"),
                age_col(),
            ];
            c.extend(containers_cols(None));
            c
        }
        ("apps", "Deployment") => {
            let mut c = vec![
                name_col(),
                col("Ready", "string", "Number of the pod with ready state"),
                col(
                    "Up-to-date",
                    "string",
                    doc::<apps::DeploymentStatus>("updatedReplicas"),
                ),
                col(
                    "Available",
                    "string",
                    doc::<apps::DeploymentStatus>("availableReplicas"),
                ),
                age_col(),
            ];
            c.extend(containers_cols(Some(doc::<apps::DeploymentSpec>("selector"))));
            c
        }
        ("apps", "ControllerRevision") => vec![
            name_col(),
            col("Controller", "string", "Controller of the object"),
            col(
                "Revision",
                "string",
                doc::<apps::ControllerRevision>("revision"),
            ),
            age_col(),
        ],
        ("batch", "Job") => {
            let mut c = vec![
                name_col(),
                col("Status", "string", "Status of the job."),
                col("Completions", "string", doc::<batch::JobStatus>("succeeded")),
                col("Duration", "string", "Time required to complete the job."),
                age_col(),
            ];
            c.extend(containers_cols(Some(doc::<batch::JobSpec>("selector"))));
            c
        }
        ("batch", "CronJob") => {
            let mut c = vec![
                name_col(),
                col("Schedule", "string", doc::<batch::CronJobSpec>("schedule")),
                col("Timezone", "string", doc::<batch::CronJobSpec>("timeZone")),
                col("Suspend", "boolean", doc::<batch::CronJobSpec>("suspend")),
                col("Active", "integer", doc::<batch::CronJobStatus>("active")),
                col(
                    "Last Schedule",
                    "string",
                    doc::<batch::CronJobStatus>("lastScheduleTime"),
                ),
                age_col(),
            ];
            c.extend(containers_cols(Some(doc::<batch::JobSpec>("selector"))));
            c
        }
        ("autoscaling", "HorizontalPodAutoscaler") => {
            let spec = |f: &str| doc::<autoscaling::HorizontalPodAutoscalerSpec>(f);
            vec![
                name_col(),
                col("Reference", "string", spec("scaleTargetRef")),
                col("Targets", "string", spec("metrics")),
                col("MinPods", "string", spec("minReplicas")),
                col("MaxPods", "string", spec("maxReplicas")),
                col(
                    "Replicas",
                    "string",
                    doc::<autoscaling::HorizontalPodAutoscalerStatus>("currentReplicas"),
                ),
                age_col(),
            ]
        }
        _ => return None,
    })
}

pub(super) fn row(group: &str, kind: &str, obj: &Value, now: DateTime<Utc>) -> Option<Vec<Value>> {
    let age = || s(age_at(obj, "metadata.creationTimestamp", now));
    Some(match (group, kind) {
        ("", "Pod") => pod_row(obj, now),
        ("", "PodTemplate") => {
            let (names, images) = container_cells(at(obj, "template.spec"));
            vec![
                name_cell(obj),
                names,
                images,
                s(format_labels(&string_map_at(
                    obj,
                    "template.metadata.labels",
                ))),
            ]
        }
        ("policy", "PodDisruptionBudget") => {
            let or_na = |p: &str| {
                at(obj, p)
                    .filter(|v| !v.is_null())
                    .map(int_or_string)
                    .unwrap_or_else(|| "N/A".into())
            };
            vec![
                name_cell(obj),
                s(or_na("spec.minAvailable")),
                s(or_na("spec.maxUnavailable")),
                int(i64_at(obj, "status.disruptionsAllowed").unwrap_or(0)),
                age(),
            ]
        }
        ("", "ReplicationController") => {
            let (names, images) = container_cells(at(obj, "spec.template.spec"));
            vec![
                name_cell(obj),
                int(i64_at(obj, "spec.replicas").unwrap_or(1)),
                int(i64_at(obj, "status.replicas").unwrap_or(0)),
                int(i64_at(obj, "status.readyReplicas").unwrap_or(0)),
                age(),
                names,
                images,
                s(format_labels(&string_map_at(obj, "spec.selector"))),
            ]
        }
        ("apps", "ReplicaSet") => {
            let (names, images) = container_cells(at(obj, "spec.template.spec"));
            vec![
                name_cell(obj),
                int(i64_at(obj, "spec.replicas").unwrap_or(1)),
                int(i64_at(obj, "status.replicas").unwrap_or(0)),
                int(i64_at(obj, "status.readyReplicas").unwrap_or(0)),
                age(),
                names,
                images,
                s(format_label_selector(at(obj, "spec.selector"))),
            ]
        }
        ("apps", "DaemonSet") => {
            let st = |f: &str| int(i64_at(obj, &format!("status.{f}")).unwrap_or(0));
            let (names, images) = container_cells(at(obj, "spec.template.spec"));
            vec![
                name_cell(obj),
                st("desiredNumberScheduled"),
                st("currentNumberScheduled"),
                st("numberReady"),
                st("updatedNumberScheduled"),
                st("numberAvailable"),
                s(format_labels(&string_map_at(
                    obj,
                    "spec.template.spec.nodeSelector",
                ))),
                age(),
                names,
                images,
                s(format_label_selector(at(obj, "spec.selector"))),
            ]
        }
        ("apps", "StatefulSet") => {
            let (names, images) = container_cells(at(obj, "spec.template.spec"));
            vec![
                name_cell(obj),
                s(format!(
                    "{}/{}",
                    i64_at(obj, "status.readyReplicas").unwrap_or(0),
                    i64_at(obj, "spec.replicas").unwrap_or(1)
                )),
                age(),
                names,
                images,
            ]
        }
        ("apps", "Deployment") => {
            let (names, images) = container_cells(at(obj, "spec.template.spec"));
            let selector =
                match LabelSelector::from_json(at(obj, "spec.selector").unwrap_or(&Value::Null)) {
                    Ok(sel) => sel.to_string(),
                    Err(_) => "<invalid>".to_string(),
                };
            vec![
                name_cell(obj),
                s(format!(
                    "{}/{}",
                    i64_at(obj, "status.readyReplicas").unwrap_or(0),
                    i64_at(obj, "spec.replicas").unwrap_or(1)
                )),
                int(i64_at(obj, "status.updatedReplicas").unwrap_or(0)),
                int(i64_at(obj, "status.availableReplicas").unwrap_or(0)),
                age(),
                names,
                images,
                s(selector),
            ]
        }
        ("apps", "ControllerRevision") => {
            let controller = array_at(obj, "metadata.ownerReferences")
                .iter()
                .find(|r| bool_at(r, "controller") == Some(true))
                .map(|r| {
                    let api_version = string_at(r, "apiVersion");
                    let group = api_version
                        .rsplit_once('/')
                        .map(|(g, _)| g.to_string())
                        .unwrap_or_default();
                    let kind = string_at(r, "kind");
                    let gk = if group.is_empty() {
                        kind
                    } else {
                        format!("{kind}.{group}")
                    };
                    format!("{}/{}", gk.to_lowercase(), string_at(r, "name"))
                })
                .unwrap_or_else(|| "<none>".to_string());
            vec![
                name_cell(obj),
                s(controller),
                int(i64_at(obj, "revision").unwrap_or(0)),
                age(),
            ]
        }
        ("batch", "Job") => job_row(obj, now),
        ("batch", "CronJob") => {
            let last = if has(obj, "status.lastScheduleTime") {
                age_at(obj, "status.lastScheduleTime", now)
            } else {
                "<none>".to_string()
            };
            let (names, images) = container_cells(at(obj, "spec.jobTemplate.spec.template.spec"));
            vec![
                name_cell(obj),
                s(string_at(obj, "spec.schedule")),
                s(str_at(obj, "spec.timeZone").unwrap_or("<none>")),
                s(bool_ptr(at(obj, "spec.suspend"))),
                int(array_at(obj, "status.active").len() as i64),
                s(last),
                age(),
                names,
                images,
                s(format_label_selector(at(
                    obj,
                    "spec.jobTemplate.spec.selector",
                ))),
            ]
        }
        ("autoscaling", "HorizontalPodAutoscaler") => {
            let min = i64_at(obj, "spec.minReplicas")
                .map(|m| m.to_string())
                .unwrap_or_else(|| "<unset>".into());
            vec![
                name_cell(obj),
                s(format!(
                    "{}/{}",
                    string_at(obj, "spec.scaleTargetRef.kind"),
                    string_at(obj, "spec.scaleTargetRef.name")
                )),
                s(hpa_metrics(
                    array_at(obj, "spec.metrics"),
                    array_at(obj, "status.currentMetrics"),
                )),
                s(min),
                int(i64_at(obj, "spec.maxReplicas").unwrap_or(0)),
                int(i64_at(obj, "status.currentReplicas").unwrap_or(0)),
                age(),
            ]
        }
        _ => return None,
    })
}

fn is_restartable_init(container: Option<&Value>) -> bool {
    container.and_then(|c| str_at(c, "restartPolicy")) == Some("Always")
}

fn condition_true(conditions: &[Value], type_: &str) -> bool {
    conditions
        .iter()
        .find(|c| str_at(c, "type") == Some(type_))
        .is_some_and(|c| str_at(c, "status") == Some("True"))
}

struct PodSummary {
    ready: usize,
    total: usize,
    reason: String,
    restarts: i64,
    last_restart: Option<DateTime<Utc>>,
}

fn later(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

fn last_termination(status: &Value) -> Option<DateTime<Utc>> {
    str_at(status, "lastState.terminated.finishedAt").and_then(parse_time)
}

fn terminated_reason(term: &Value, prefix: &str) -> String {
    match str_at(term, "reason").filter(|r| !r.is_empty()) {
        Some(r) => format!("{prefix}{r}"),
        None => {
            let signal = i64_at(term, "signal").unwrap_or(0);
            if signal != 0 {
                format!("{prefix}Signal:{signal}")
            } else {
                format!("{prefix}ExitCode:{}", i64_at(term, "exitCode").unwrap_or(0))
            }
        }
    }
}

/// kubectl's pod STATUS/READY/RESTARTS computation (`printPod`).
fn summarize_pod(pod: &Value) -> PodSummary {
    let spec_containers = array_at(pod, "spec.containers");
    let init_specs = array_at(pod, "spec.initContainers");
    let conditions = array_at(pod, "status.conditions");
    let mut total = spec_containers.len();
    let mut ready = 0;
    let mut restarts = 0i64;
    let mut restartable_restarts = 0i64;
    let mut last_restart = None;
    let mut last_restartable_restart = None;

    let phase = string_at(pod, "status.phase");
    let mut reason = str_at(pod, "status.reason")
        .filter(|r| !r.is_empty())
        .map(String::from)
        .unwrap_or_else(|| phase.clone());
    if conditions.iter().any(|c| {
        str_at(c, "type") == Some("PodScheduled") && str_at(c, "reason") == Some("SchedulingGated")
    }) {
        reason = "SchedulingGated".to_string();
    }

    let init_by_name = |name: &str| init_specs.iter().find(|c| str_at(c, "name") == Some(name));
    total += init_specs
        .iter()
        .filter(|c| is_restartable_init(Some(c)))
        .count();

    let mut initializing = false;
    for (i, cs) in array_at(pod, "status.initContainerStatuses")
        .iter()
        .enumerate()
    {
        let count = i64_at(cs, "restartCount").unwrap_or(0);
        restarts += count;
        last_restart = later(last_restart, last_termination(cs));
        let restartable = is_restartable_init(init_by_name(&string_at(cs, "name")));
        if restartable {
            restartable_restarts += count;
            last_restartable_restart = later(last_restartable_restart, last_termination(cs));
        }
        let terminated = at(cs, "state.terminated").filter(|t| !t.is_null());
        let waiting_reason = str_at(cs, "state.waiting.reason").unwrap_or_default();
        if terminated.is_some_and(|t| i64_at(t, "exitCode").unwrap_or(0) == 0) {
            continue;
        }
        if restartable && bool_at(cs, "started") == Some(true) {
            if bool_at(cs, "ready") == Some(true) {
                ready += 1;
            }
            continue;
        }
        if let Some(t) = terminated {
            reason = terminated_reason(t, "Init:");
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            reason = format!("Init:{waiting_reason}");
        } else {
            reason = format!("Init:{}/{}", i, init_specs.len());
        }
        initializing = true;
        break;
    }

    if !initializing || condition_true(conditions, "Initialized") {
        restarts = restartable_restarts;
        last_restart = last_restartable_restart;
        let mut has_running = false;
        for cs in array_at(pod, "status.containerStatuses").iter().rev() {
            restarts += i64_at(cs, "restartCount").unwrap_or(0);
            last_restart = later(last_restart, last_termination(cs));
            let waiting_reason = str_at(cs, "state.waiting.reason").unwrap_or_default();
            let terminated = at(cs, "state.terminated").filter(|t| !t.is_null());
            if !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if let Some(t) = terminated {
                reason = terminated_reason(t, "");
            } else if bool_at(cs, "ready") == Some(true) && has(cs, "state.running") {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            reason = if condition_true(conditions, "Ready") {
                "Running".to_string()
            } else {
                "NotReady".to_string()
            };
        }
    }

    let deleting = has(pod, "metadata.deletionTimestamp");
    if deleting && str_at(pod, "status.reason") == Some("NodeLost") {
        reason = "Unknown".to_string();
    } else if deleting && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".to_string();
    }
    PodSummary {
        ready,
        total,
        reason,
        restarts,
        last_restart,
    }
}

/// The STATUS column of `kubectl get pods`.
pub fn pod_status_reason(pod: &Value) -> String {
    summarize_pod(pod).reason
}

fn pod_row(pod: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let sum = summarize_pod(pod);
    let restarts = match sum.last_restart {
        Some(t) if sum.restarts != 0 => {
            format!("{} ({} ago)", sum.restarts, human_duration(now - t))
        }
        _ => sum.restarts.to_string(),
    };
    let or_none = |v: String| {
        if v.is_empty() {
            "<none>".to_string()
        } else {
            v
        }
    };
    let pod_ip = array_at(pod, "status.podIPs")
        .first()
        .map(|ip| string_at(ip, "ip"))
        .unwrap_or_default();
    let gates = array_at(pod, "spec.readinessGates");
    let readiness = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let conditions = array_at(pod, "status.conditions");
        let true_count = gates
            .iter()
            .filter(|g| {
                let t = str_at(g, "conditionType");
                conditions
                    .iter()
                    .find(|c| str_at(c, "type") == t)
                    .is_some_and(|c| str_at(c, "status") == Some("True"))
            })
            .count();
        format!("{}/{}", true_count, gates.len())
    };
    vec![
        name_cell(pod),
        s(format!("{}/{}", sum.ready, sum.total)),
        s(sum.reason),
        s(restarts),
        s(age_at(pod, "metadata.creationTimestamp", now)),
        s(or_none(pod_ip)),
        s(or_none(string_at(pod, "spec.nodeName"))),
        s(or_none(string_at(pod, "status.nominatedNodeName"))),
        s(readiness),
    ]
}

fn job_row(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let succeeded = i64_at(obj, "status.succeeded").unwrap_or(0);
    let completions = match i64_at(obj, "spec.completions") {
        Some(c) => format!("{succeeded}/{c}"),
        None => {
            let parallelism = i64_at(obj, "spec.parallelism").unwrap_or(0);
            if parallelism > 1 {
                format!("{succeeded}/1 of {parallelism}")
            } else {
                format!("{succeeded}/1")
            }
        }
    };
    let start = str_at(obj, "status.startTime").and_then(parse_time);
    let end = str_at(obj, "status.completionTime").and_then(parse_time);
    let duration = match (start, end) {
        (None, _) => String::new(),
        (Some(s0), None) => human_duration(now - s0),
        (Some(s0), Some(e)) => human_duration(e - s0),
    };
    let conditions = array_at(obj, "status.conditions");
    let status = if condition_true(conditions, "Complete") {
        "Complete"
    } else if condition_true(conditions, "Failed") {
        "Failed"
    } else if has(obj, "metadata.deletionTimestamp") {
        "Terminating"
    } else if condition_true(conditions, "Suspended") {
        "Suspended"
    } else if condition_true(conditions, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (names, images) = container_cells(at(obj, "spec.template.spec"));
    vec![
        name_cell(obj),
        s(status),
        s(completions),
        s(duration),
        s(age_at(obj, "metadata.creationTimestamp", now)),
        names,
        images,
        s(format_label_selector(at(obj, "spec.selector"))),
    ]
}

fn quantity_str(v: Option<&Value>) -> String {
    v.and_then(Quantity::from_json)
        .map(|q| q.canonical())
        .unwrap_or_else(|| "0".to_string())
}

/// `formatHPAMetrics`: at most two metrics, `current/target` each.
fn hpa_metrics(specs: &[Value], statuses: &[Value]) -> String {
    if specs.is_empty() {
        return "<none>".to_string();
    }
    let mut list = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let status = statuses.get(i);
        let unknown = || "<unknown>".to_string();
        let entry = match str_at(spec, "type").unwrap_or_default() {
            "External" | "Object" => {
                let key = if str_at(spec, "type") == Some("External") {
                    "external"
                } else {
                    "object"
                };
                let st = status.and_then(|s| at(s, key)).filter(|v| !v.is_null());
                if has(spec, &format!("{key}.target.averageValue")) {
                    let cur = st
                        .and_then(|s| at(s, "current.averageValue"))
                        .map(|v| quantity_str(Some(v)))
                        .unwrap_or_else(unknown);
                    format!(
                        "{cur}/{} (avg)",
                        quantity_str(at(spec, &format!("{key}.target.averageValue")))
                    )
                } else {
                    let cur = st
                        .map(|s| quantity_str(at(s, "current.value")))
                        .unwrap_or_else(unknown);
                    format!(
                        "{cur}/{}",
                        quantity_str(at(spec, &format!("{key}.target.value")))
                    )
                }
            }
            "Pods" => {
                let cur = status
                    .and_then(|s| at(s, "pods"))
                    .filter(|v| !v.is_null())
                    .map(|s| quantity_str(at(s, "current.averageValue")))
                    .unwrap_or_else(unknown);
                format!(
                    "{cur}/{}",
                    quantity_str(at(spec, "pods.target.averageValue"))
                )
            }
            t @ ("Resource" | "ContainerResource") => {
                let key = if t == "Resource" {
                    "resource"
                } else {
                    "containerResource"
                };
                let name = string_at(spec, &format!("{key}.name"));
                let st = status.and_then(|s| at(s, key)).filter(|v| !v.is_null());
                if has(spec, &format!("{key}.target.averageValue")) {
                    let cur = st
                        .map(|s| quantity_str(at(s, "current.averageValue")))
                        .unwrap_or_else(unknown);
                    format!(
                        "{name}: {cur}/{}",
                        quantity_str(at(spec, &format!("{key}.target.averageValue")))
                    )
                } else {
                    let cur = st
                        .and_then(|s| i64_at(s, "current.averageUtilization"))
                        .map(|u| format!("{u}%"))
                        .unwrap_or_else(unknown);
                    let target = i64_at(spec, &format!("{key}.target.averageUtilization"))
                        .map(|u| format!("{u}%"))
                        .unwrap_or_else(|| "<auto>".to_string());
                    format!("{name}: {cur}/{target}")
                }
            }
            _ => "<unknown type>".to_string(),
        };
        list.push(entry);
    }
    let count = list.len();
    if count > 2 {
        list.truncate(2);
        return format!("{} + {} more...", list.join(", "), count - 2);
    }
    list.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap()
    }

    fn pod(status: Value) -> Value {
        json!({
            "metadata": {"name": "p", "creationTimestamp": "2024-05-01T11:50:00Z"},
            "spec": {"containers": [{"name": "a", "image": "nginx"}]},
            "status": status
        })
    }

    #[test]
    fn pending_pod_without_statuses_shows_phase() {
        let p = pod(json!({"phase": "Pending"}));
        let r = pod_row(&p, now());
        assert_eq!(r[1], s("0/1"));
        assert_eq!(r[2], s("Pending"));
        assert_eq!(r[3], s("0"));
        assert_eq!(r[4], s("10m"));
        assert_eq!(r[5], s("<none>"));
    }

    #[test]
    fn running_ready_pod() {
        let p = pod(json!({"phase": "Running", "podIPs": [{"ip": "10.1.0.5"}],
            "containerStatuses": [{"name": "a", "ready": true, "restartCount": 0,
                "state": {"running": {"startedAt": "2024-05-01T11:51:00Z"}}}]}));
        let r = pod_row(&p, now());
        assert_eq!(r[1], s("1/1"));
        assert_eq!(r[2], s("Running"));
        assert_eq!(r[5], s("10.1.0.5"));
    }

    #[test]
    fn crash_loop_with_restart_age() {
        let p = pod(
            json!({"phase": "Running", "containerStatuses": [{"name": "a", "ready": false,
            "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T11:58:00Z"}}}]}),
        );
        let r = pod_row(&p, now());
        assert_eq!(r[2], s("CrashLoopBackOff"));
        assert_eq!(r[3], s("3 (2m ago)"));
    }

    #[test]
    fn init_container_progress_and_failures() {
        let mut p = pod(json!({"phase": "Pending", "initContainerStatuses": [
            {"name": "i1", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
            {"name": "i2", "state": {"running": {}}}]}));
        p["spec"]["initContainers"] = json!([{"name": "i1"}, {"name": "i2"}, {"name": "i3"}]);
        assert_eq!(pod_status_reason(&p), "Init:1/3");
        p["status"]["initContainerStatuses"][1]["state"] = json!({"terminated": {"exitCode": 2}});
        assert_eq!(pod_status_reason(&p), "Init:ExitCode:2");
        p["status"]["initContainerStatuses"][1]["state"] =
            json!({"waiting": {"reason": "ImagePullBackOff"}});
        assert_eq!(pod_status_reason(&p), "Init:ImagePullBackOff");
    }

    #[test]
    fn completed_terminating_and_gated() {
        let done = pod(
            json!({"phase": "Succeeded", "containerStatuses": [{"name": "a",
            "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}),
        );
        assert_eq!(pod_status_reason(&done), "Completed");
        let mut deleting = pod(json!({"phase": "Running"}));
        deleting["metadata"]["deletionTimestamp"] = json!("2024-05-01T11:59:00Z");
        assert_eq!(pod_status_reason(&deleting), "Terminating");
        let signal = pod(
            json!({"phase": "Failed", "containerStatuses": [{"name": "a",
            "state": {"terminated": {"exitCode": 137, "signal": 9}}}]}),
        );
        assert_eq!(pod_status_reason(&signal), "Signal:9");
        let gated = pod(
            json!({"phase": "Pending", "conditions": [{"type": "PodScheduled",
            "status": "False", "reason": "SchedulingGated"}]}),
        );
        assert_eq!(pod_status_reason(&gated), "SchedulingGated");
    }

    #[test]
    fn sidecar_counts_towards_ready_and_total() {
        let mut p = pod(
            json!({"phase": "Running", "conditions": [{"type": "Initialized", "status": "True"}],
            "initContainerStatuses": [{"name": "side", "started": true, "ready": true, "restartCount": 1,
                "state": {"running": {}}}],
            "containerStatuses": [{"name": "a", "ready": true, "state": {"running": {}}}]}),
        );
        p["spec"]["initContainers"] = json!([{"name": "side", "restartPolicy": "Always"}]);
        let r = pod_row(&p, now());
        assert_eq!(r[1], s("2/2"));
        assert_eq!(r[2], s("Running"));
        assert_eq!(r[3], s("1"));
    }

    #[test]
    fn deployment_row_and_columns() {
        let d = json!({"metadata": {"name": "web", "creationTimestamp": "2024-05-01T09:00:00Z"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.25"}]}}},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
        let r = row("apps", "Deployment", &d, now()).unwrap();
        assert_eq!(
            r,
            vec![
                s("web"),
                s("2/3"),
                int(3),
                int(2),
                s("3h"),
                s("nginx"),
                s("nginx:1.25"),
                s("app=web")
            ]
        );
        let cols: Vec<String> = columns("apps", "Deployment")
            .unwrap()
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(
            cols,
            [
                "Name",
                "Ready",
                "Up-to-date",
                "Available",
                "Age",
                "Containers",
                "Images",
                "Selector"
            ]
        );
    }

    #[test]
    fn job_row_status_and_completions() {
        let j = json!({"metadata": {"name": "j", "creationTimestamp": "2024-05-01T11:00:00Z"},
            "spec": {"completions": 2, "parallelism": 1, "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u"}},
                     "template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
            "status": {"succeeded": 2, "startTime": "2024-05-01T11:00:00Z", "completionTime": "2024-05-01T11:00:45Z",
                       "conditions": [{"type": "Complete", "status": "True"}]}});
        let r = row("batch", "Job", &j, now()).unwrap();
        assert_eq!(r[1], s("Complete"));
        assert_eq!(r[2], s("2/2"));
        assert_eq!(r[3], s("45s"));
        assert_eq!(r[7], s("batch.kubernetes.io/controller-uid=u"));
    }

    #[test]
    fn hpa_targets() {
        let specs = vec![
            json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}),
        ];
        assert_eq!(hpa_metrics(&specs, &[]), "cpu: <unknown>/80%");
        let statuses = vec![
            json!({"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 40}}}),
        ];
        assert_eq!(hpa_metrics(&specs, &statuses), "cpu: 40%/80%");
        assert_eq!(hpa_metrics(&[], &[]), "<none>");
    }
}
