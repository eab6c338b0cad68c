//! Real Kubernetes messages (the k8s-pb crate, generated from upstream's generated.proto)
//! encoded with prost and decoded back to the JSON upstream's Go types would give.

use std::collections::BTreeMap;

use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::authorization::v1 as authz;
use k8s_pb::api::batch::v1 as batch;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiext;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::RawExtension;
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message;
use serde_json::json;

use super::{decode, envelope};
use crate::protobuf::decode::message_to_json;
use crate::protobuf::{decode_request, table};

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn int(v: i32) -> Option<IntOrString> {
    Some(IntOrString {
        r#type: Some(0),
        int_val: Some(v),
        str_val: Some(String::new()),
    })
}

fn string(v: &str) -> Option<IntOrString> {
    Some(IntOrString {
        r#type: Some(1),
        int_val: Some(0),
        str_val: s(v),
    })
}

fn quantity(v: &str) -> Quantity {
    Quantity { string: s(v) }
}

/// ObjectMeta as client-go's encoder writes it: every non-pointer field present, empty, and
/// the zero creationTimestamp as an empty message.
fn gogo_meta(name: &str) -> Option<meta::ObjectMeta> {
    Some(meta::ObjectMeta {
        name: s(name),
        generate_name: s(""),
        namespace: s(""),
        self_link: s(""),
        uid: s(""),
        resource_version: s(""),
        generation: Some(0),
        creation_timestamp: Some(meta::Time::default()),
        ..Default::default()
    })
}

#[test]
fn deployment_keeps_pointer_zeros_and_int_or_string_percentages() {
    let deployment = apps::Deployment {
        metadata: gogo_meta("web"),
        spec: Some(apps::DeploymentSpec {
            // Pointers in Go: a zero is a real value and must survive.
            replicas: Some(0),
            revision_history_limit: Some(0),
            // Plain omitempty fields in Go: a zero is "unset".
            min_ready_seconds: Some(0),
            paused: Some(false),
            selector: Some(meta::LabelSelector {
                match_labels: labels(&[("app", "web")]),
                ..Default::default()
            }),
            strategy: Some(apps::DeploymentStrategy {
                r#type: s("RollingUpdate"),
                rolling_update: Some(apps::RollingUpdateDeployment {
                    max_unavailable: int(0),
                    max_surge: string("25%"),
                }),
            }),
            template: Some(core::PodTemplateSpec {
                metadata: Some(meta::ObjectMeta {
                    labels: labels(&[("app", "web")]),
                    ..Default::default()
                }),
                spec: Some(core::PodSpec {
                    containers: vec![core::Container {
                        name: s("nginx"),
                        image: s("nginx:1.27"),
                        image_pull_policy: s(""),
                        stdin: Some(false),
                        ports: vec![core::ContainerPort {
                            container_port: Some(80),
                            protocol: s("TCP"),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                    restart_policy: s(""),
                    host_network: Some(false),
                    termination_grace_period_seconds: Some(0),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }),
        status: Some(apps::DeploymentStatus::default()),
    };
    assert_eq!(
        decode("apps/v1", "Deployment", &deployment),
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [{
                            "name": "nginx",
                            "image": "nginx:1.27",
                            "ports": [{"containerPort": 80, "protocol": "TCP"}]
                        }],
                        "terminationGracePeriodSeconds": 0
                    }
                },
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}
                },
                "revisionHistoryLimit": 0
            }
        })
    );
}

/// The same Deployment through k8s-openapi's serde (the JSON names and shapes of the 1.32
/// OpenAPI schema) gives the same value.
#[test]
fn deployment_matches_k8s_openapi_serialization() {
    use k8s_openapi::api::apps::v1 as oapps;
    use k8s_openapi::api::core::v1 as ocore;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1 as ometa;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString as OIntOrString;

    let pb = apps::Deployment {
        metadata: Some(meta::ObjectMeta {
            name: s("web"),
            namespace: s("demo"),
            annotations: labels(&[("a", "b")]),
            ..Default::default()
        }),
        spec: Some(apps::DeploymentSpec {
            replicas: Some(3),
            selector: Some(meta::LabelSelector {
                match_expressions: vec![meta::LabelSelectorRequirement {
                    key: s("tier"),
                    operator: s("In"),
                    values: vec!["web".into(), "api".into()],
                }],
                ..Default::default()
            }),
            template: Some(core::PodTemplateSpec {
                metadata: None,
                spec: Some(core::PodSpec {
                    containers: vec![core::Container {
                        name: s("c"),
                        image: s("busybox"),
                        args: vec!["sleep".into(), "1d".into()],
                        env: vec![core::EnvVar {
                            name: s("MODE"),
                            value: s("x"),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            }),
            strategy: Some(apps::DeploymentStrategy {
                r#type: s("RollingUpdate"),
                rolling_update: Some(apps::RollingUpdateDeployment {
                    max_unavailable: string("10%"),
                    max_surge: int(2),
                }),
            }),
            progress_deadline_seconds: Some(600),
            ..Default::default()
        }),
        status: None,
    };
    let openapi = oapps::Deployment {
        metadata: ometa::ObjectMeta {
            name: Some("web".into()),
            namespace: Some("demo".into()),
            annotations: Some([("a".to_string(), "b".to_string())].into()),
            ..Default::default()
        },
        spec: Some(oapps::DeploymentSpec {
            replicas: Some(3),
            selector: ometa::LabelSelector {
                match_expressions: Some(vec![ometa::LabelSelectorRequirement {
                    key: "tier".into(),
                    operator: "In".into(),
                    values: Some(vec!["web".into(), "api".into()]),
                }]),
                ..Default::default()
            },
            template: ocore::PodTemplateSpec {
                metadata: None,
                spec: Some(ocore::PodSpec {
                    containers: vec![ocore::Container {
                        name: "c".into(),
                        image: Some("busybox".into()),
                        args: Some(vec!["sleep".into(), "1d".into()]),
                        env: Some(vec![ocore::EnvVar {
                            name: "MODE".into(),
                            value: Some("x".into()),
                            ..Default::default()
                        }]),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            },
            strategy: Some(oapps::DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(oapps::RollingUpdateDeployment {
                    max_unavailable: Some(OIntOrString::String("10%".into())),
                    max_surge: Some(OIntOrString::Int(2)),
                }),
            }),
            progress_deadline_seconds: Some(600),
            ..Default::default()
        }),
        status: None,
    };
    let mut want = serde_json::to_value(&openapi).expect("serialises");
    want["apiVersion"] = json!("apps/v1");
    want["kind"] = json!("Deployment");
    assert_eq!(decode("apps/v1", "Deployment", &pb), want);
}

#[test]
fn secret_bytes_become_base64() {
    let secret = core::Secret {
        metadata: gogo_meta("s"),
        data: [
            ("p".to_string(), b"q".to_vec()),
            ("bin".to_string(), vec![0, 0xFF, 0xFE, b'\n']),
            ("empty".to_string(), Vec::new()),
        ]
        .into(),
        r#type: s("Opaque"),
        immutable: Some(false),
        ..Default::default()
    };
    assert_eq!(
        decode("v1", "Secret", &secret),
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s"},
            "immutable": false,
            "data": {"bin": "AP/+Cg==", "empty": "", "p": "cQ=="},
            "type": "Opaque"
        })
    );
}

#[test]
fn service_target_ports_are_numbers_or_names_and_zero_is_left_to_defaulting() {
    let service = core::Service {
        metadata: gogo_meta("svc"),
        spec: Some(core::ServiceSpec {
            ports: vec![
                core::ServicePort {
                    name: s("http"),
                    protocol: s("TCP"),
                    port: Some(80),
                    target_port: int(8080),
                    node_port: Some(0),
                    ..Default::default()
                },
                core::ServicePort {
                    name: s("metrics"),
                    port: Some(9090),
                    target_port: string("metrics"),
                    ..Default::default()
                },
                core::ServicePort {
                    name: s("plain"),
                    port: Some(443),
                    target_port: int(0),
                    ..Default::default()
                },
            ],
            selector: labels(&[("app", "svc")]),
            cluster_ip: s(""),
            r#type: s("ClusterIP"),
            ..Default::default()
        }),
        status: Some(core::ServiceStatus {
            load_balancer: Some(core::LoadBalancerStatus::default()),
            ..Default::default()
        }),
    };
    assert_eq!(
        decode("v1", "Service", &service),
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "svc"},
            "spec": {
                "ports": [
                    {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080},
                    {"name": "metrics", "port": 9090, "targetPort": "metrics"},
                    {"name": "plain", "port": 443}
                ],
                "selector": {"app": "svc"},
                "type": "ClusterIP"
            }
        })
    );
}

#[test]
fn pod_quantities_times_inline_structs_and_repeated_numbers() {
    let mut limits = BTreeMap::new();
    limits.insert("cpu".to_string(), quantity("500m"));
    limits.insert("memory".to_string(), quantity("128Mi"));
    let pod = core::Pod {
        metadata: Some(meta::ObjectMeta {
            name: s("p"),
            creation_timestamp: Some(meta::Time {
                seconds: Some(1_704_164_645),
                nanos: Some(999),
            }),
            deletion_timestamp: Some(meta::Time {
                seconds: Some(0),
                nanos: None,
            }),
            deletion_grace_period_seconds: Some(0),
            ..Default::default()
        }),
        spec: Some(core::PodSpec {
            volumes: vec![core::Volume {
                name: s("cfg"),
                volume_source: Some(core::VolumeSource {
                    config_map: Some(core::ConfigMapVolumeSource {
                        local_object_reference: Some(core::LocalObjectReference {
                            name: s("settings"),
                        }),
                        default_mode: Some(0o644),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            }],
            containers: vec![core::Container {
                name: s("app"),
                image: s("app:1"),
                resources: Some(core::ResourceRequirements {
                    limits,
                    requests: [("cpu".to_string(), quantity("0.1"))].into(),
                    ..Default::default()
                }),
                readiness_probe: Some(core::Probe {
                    handler: Some(core::ProbeHandler {
                        http_get: Some(core::HttpGetAction {
                            path: s("/healthz"),
                            port: string("http"),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    period_seconds: Some(5),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            security_context: Some(core::PodSecurityContext {
                run_as_user: Some(0),
                supplemental_groups: vec![1000, 2000],
                ..Default::default()
            }),
            ..Default::default()
        }),
        status: None,
    };
    assert_eq!(
        decode("v1", "Pod", &pod),
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "p",
                // metav1.Time keeps seconds only, as upstream's protobuf decoder does.
                "creationTimestamp": "2024-01-02T03:04:05Z",
                "deletionTimestamp": "1970-01-01T00:00:00Z",
                "deletionGracePeriodSeconds": 0
            },
            "spec": {
                "volumes": [{
                    "name": "cfg",
                    "configMap": {"name": "settings", "defaultMode": 420}
                }],
                "containers": [{
                    "name": "app",
                    "image": "app:1",
                    "resources": {
                        "limits": {"cpu": "500m", "memory": "128Mi"},
                        "requests": {"cpu": "0.1"}
                    },
                    "readinessProbe": {
                        "httpGet": {"path": "/healthz", "port": "http"},
                        "periodSeconds": 5
                    }
                }],
                "securityContext": {"runAsUser": 0, "supplementalGroups": [1000, 2000]}
            }
        })
    );
}

#[test]
fn job_with_zero_backoff_and_exit_code_lists() {
    let job = batch::Job {
        metadata: gogo_meta("j"),
        spec: Some(batch::JobSpec {
            backoff_limit: Some(0),
            completions: Some(3),
            ttl_seconds_after_finished: Some(100),
            pod_failure_policy: Some(batch::PodFailurePolicy {
                rules: vec![batch::PodFailurePolicyRule {
                    action: s("FailJob"),
                    on_exit_codes: Some(batch::PodFailurePolicyOnExitCodesRequirement {
                        container_name: None,
                        operator: s("In"),
                        values: vec![1, 2, -3],
                    }),
                    ..Default::default()
                }],
            }),
            template: Some(core::PodTemplateSpec {
                metadata: gogo_meta(""),
                spec: Some(core::PodSpec {
                    restart_policy: s("Never"),
                    containers: vec![core::Container {
                        name: s("j"),
                        image: s("busybox"),
                        command: vec!["echo".into(), "hi".into()],
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }),
        status: Some(batch::JobStatus::default()),
    };
    assert_eq!(
        decode("batch/v1", "Job", &job),
        json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "j"},
            "spec": {
                "completions": 3,
                "backoffLimit": 0,
                "template": {
                    "spec": {
                        "containers": [{"name": "j", "image": "busybox", "command": ["echo", "hi"]}],
                        "restartPolicy": "Never"
                    }
                },
                "ttlSecondsAfterFinished": 100,
                "podFailurePolicy": {
                    "rules": [{
                        "action": "FailJob",
                        "onExitCodes": {"operator": "In", "values": [1, 2, -3]}
                    }]
                }
            }
        })
    );
}

#[test]
fn self_subject_access_review() {
    let review = authz::SelfSubjectAccessReview {
        metadata: gogo_meta(""),
        spec: Some(authz::SelfSubjectAccessReviewSpec {
            resource_attributes: Some(authz::ResourceAttributes {
                namespace: s("demo"),
                verb: s("create"),
                group: s(""),
                resource: s("pods"),
                subresource: s(""),
                name: s(""),
                ..Default::default()
            }),
            non_resource_attributes: None,
        }),
        status: Some(authz::SubjectAccessReviewStatus {
            allowed: Some(false),
            denied: Some(false),
            reason: s(""),
            evaluation_error: s(""),
        }),
    };
    assert_eq!(
        decode(
            "authorization.k8s.io/v1",
            "SelfSubjectAccessReview",
            &review
        ),
        json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"namespace": "demo", "verb": "create", "resource": "pods"}},
            // `allowed` has no omitempty upstream.
            "status": {"allowed": false}
        })
    );
}

#[test]
fn subject_access_review_extra_values_are_arrays() {
    let review = authz::SubjectAccessReview {
        metadata: None,
        spec: Some(authz::SubjectAccessReviewSpec {
            user: s("alice"),
            groups: vec!["devs".into()],
            extra: [(
                "scopes".to_string(),
                authz::ExtraValue {
                    items: vec!["a".into(), "b".into()],
                },
            )]
            .into(),
            non_resource_attributes: Some(authz::NonResourceAttributes {
                path: s("/healthz"),
                verb: s("get"),
            }),
            ..Default::default()
        }),
        status: None,
    };
    assert_eq!(
        decode("authorization.k8s.io/v1", "SubjectAccessReview", &review),
        json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "nonResourceAttributes": {"path": "/healthz", "verb": "get"},
                "user": "alice",
                "groups": ["devs"],
                "extra": {"scopes": ["a", "b"]}
            }
        })
    );
}

/// `kubectl drain` evicts with a zero grace period; the zero must reach the server.
#[test]
fn eviction_with_delete_options() {
    let eviction = k8s_pb::api::policy::v1::Eviction {
        metadata: gogo_meta("web-1"),
        delete_options: Some(meta::DeleteOptions {
            grace_period_seconds: Some(0),
            preconditions: Some(meta::Preconditions {
                uid: s("1234"),
                resource_version: None,
            }),
            ..Default::default()
        }),
    };
    assert_eq!(
        decode("policy/v1", "Eviction", &eviction),
        json!({
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": "web-1"},
            "deleteOptions": {"gracePeriodSeconds": 0, "preconditions": {"uid": "1234"}}
        })
    );
}

/// Typed clients send DeleteOptions under the resource's own group version.
#[test]
fn delete_options_under_any_group_version() {
    let opts = meta::DeleteOptions {
        propagation_policy: s("Foreground"),
        dry_run: vec!["All".into()],
        ..Default::default()
    };
    assert_eq!(
        decode("apps/v1", "DeleteOptions", &opts),
        json!({
            "apiVersion": "apps/v1",
            "kind": "DeleteOptions",
            "propagationPolicy": "Foreground",
            "dryRun": ["All"]
        })
    );
}

#[test]
fn lease_micro_times() {
    let lease = k8s_pb::api::coordination::v1::Lease {
        metadata: gogo_meta("leader"),
        spec: Some(k8s_pb::api::coordination::v1::LeaseSpec {
            holder_identity: s("node-a"),
            lease_duration_seconds: Some(15),
            renew_time: Some(meta::MicroTime {
                seconds: Some(1_704_164_645),
                nanos: Some(123_456_789),
            }),
            acquire_time: Some(meta::MicroTime::default()),
            lease_transitions: Some(0),
            ..Default::default()
        }),
    };
    assert_eq!(
        decode("coordination.k8s.io/v1", "Lease", &lease),
        json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "leader"},
            "spec": {
                "holderIdentity": "node-a",
                "leaseDurationSeconds": 15,
                "acquireTime": null,
                "renewTime": "2024-01-02T03:04:05.123456Z",
                "leaseTransitions": 0
            }
        })
    );
}

#[test]
fn raw_extensions_and_managed_fields_carry_json() {
    let revision = apps::ControllerRevision {
        metadata: Some(meta::ObjectMeta {
            name: s("rev"),
            managed_fields: vec![meta::ManagedFieldsEntry {
                manager: s("kubectl"),
                operation: s("Update"),
                api_version: s("apps/v1"),
                time: Some(meta::Time {
                    seconds: Some(1_704_164_645),
                    nanos: None,
                }),
                fields_type: s("FieldsV1"),
                fields_v1: Some(meta::FieldsV1 {
                    raw: Some(br#"{"f:data":{}}"#.to_vec()),
                }),
                subresource: s(""),
            }],
            ..Default::default()
        }),
        data: Some(RawExtension {
            raw: Some(br#"{"spec":{"template":{"x":1}}}"#.to_vec()),
        }),
        revision: Some(2),
    };
    assert_eq!(
        decode("apps/v1", "ControllerRevision", &revision),
        json!({
            "apiVersion": "apps/v1",
            "kind": "ControllerRevision",
            "metadata": {
                "name": "rev",
                "managedFields": [{
                    "manager": "kubectl",
                    "operation": "Update",
                    "apiVersion": "apps/v1",
                    "time": "2024-01-02T03:04:05Z",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:data": {}}
                }]
            },
            "data": {"spec": {"template": {"x": 1}}},
            "revision": 2
        })
    );
}

/// A RawExtension may hold a whole protobuf object of its own.
#[test]
fn raw_extension_holding_a_protobuf_object() {
    let inner = envelope(
        "v1",
        "ConfigMap",
        core::ConfigMap {
            metadata: gogo_meta("inner"),
            data: labels(&[("k", "v")]),
            ..Default::default()
        }
        .encode_to_vec(),
    );
    let revision = apps::ControllerRevision {
        metadata: gogo_meta("rev"),
        data: Some(RawExtension { raw: Some(inner) }),
        revision: Some(1),
    };
    assert_eq!(
        decode("apps/v1", "ControllerRevision", &revision)["data"],
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "inner"}, "data": {"k": "v"}})
    );
}

#[test]
fn custom_resource_definition_schemas() {
    fn props(t: &str) -> apiext::JsonSchemaProps {
        apiext::JsonSchemaProps {
            r#type: s(t),
            ..Default::default()
        }
    }
    let spec_schema = apiext::JsonSchemaProps {
        x_kubernetes_preserve_unknown_fields: Some(true),
        ..props("object")
    };
    let tags = apiext::JsonSchemaProps {
        items: Some(Box::new(apiext::JsonSchemaPropsOrArray {
            schema: Some(Box::new(props("string"))),
            j_son_schemas: vec![],
        })),
        max_items: Some(0),
        ..props("array")
    };
    let size = apiext::JsonSchemaProps {
        minimum: Some(0.0),
        maximum: Some(2.5),
        default: Some(apiext::Json {
            raw: Some(b"1".to_vec()),
        }),
        r#enum: vec![
            apiext::Json {
                raw: Some(b"1".to_vec()),
            },
            apiext::Json {
                raw: Some(br#""big""#.to_vec()),
            },
        ],
        ..props("number")
    };
    let root = apiext::JsonSchemaProps {
        properties: [
            ("spec".to_string(), spec_schema),
            ("tags".to_string(), tags),
            ("size".to_string(), size),
        ]
        .into(),
        additional_properties: Some(Box::new(apiext::JsonSchemaPropsOrBool {
            allows: Some(false),
            schema: None,
        })),
        required: vec!["spec".into()],
        ..props("object")
    };
    let crd = apiext::CustomResourceDefinition {
        metadata: gogo_meta("widgets.example.com"),
        spec: Some(apiext::CustomResourceDefinitionSpec {
            group: s("example.com"),
            names: Some(apiext::CustomResourceDefinitionNames {
                plural: s("widgets"),
                kind: s("Widget"),
                ..Default::default()
            }),
            scope: s("Namespaced"),
            versions: vec![apiext::CustomResourceDefinitionVersion {
                name: s("v1"),
                served: Some(true),
                storage: Some(true),
                schema: Some(apiext::CustomResourceValidation {
                    open_apiv3_schema: Some(root),
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: None,
    };
    let got = decode("apiextensions.k8s.io/v1", "CustomResourceDefinition", &crd);
    assert_eq!(
        got["spec"]["names"],
        json!({"plural": "widgets", "kind": "Widget"})
    );
    assert_eq!(
        got["spec"]["versions"][0]["schema"]["openAPIV3Schema"],
        json!({
            "type": "object",
            "required": ["spec"],
            "properties": {
                "size": {
                    "type": "number",
                    "default": 1,
                    "maximum": 2.5,
                    "minimum": 0,
                    "enum": [1, "big"]
                },
                "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "tags": {"type": "array", "maxItems": 0, "items": {"type": "string"}}
            },
            "additionalProperties": false
        })
    );
}

/// Protobuf merges repeated occurrences of a singular message field, and skips fields it
/// does not know; upstream's decoder does both.
#[test]
fn split_messages_merge_and_unknown_fields_are_skipped() {
    let part1 = core::ConfigMap {
        metadata: Some(meta::ObjectMeta {
            name: s("c"),
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec();
    let part2 = core::ConfigMap {
        metadata: Some(meta::ObjectMeta {
            labels: labels(&[("x", "y")]),
            ..Default::default()
        }),
        data: labels(&[("k", "v")]),
        ..Default::default()
    }
    .encode_to_vec();
    let mut raw = part1;
    raw.extend(part2);
    // Field 900 as a varint, a string and a fixed64: none is part of ConfigMap.
    raw.extend([0xA0, 0x38, 0x07]);
    raw.extend([0xA2, 0x38, 0x02, b'h', b'i']);
    raw.extend([0xA1, 0x38, 1, 2, 3, 4, 5, 6, 7, 8]);
    let got = decode_request(&envelope("v1", "ConfigMap", raw)).expect("decodes");
    assert_eq!(
        got,
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "c", "labels": {"x": "y"}},
            "data": {"k": "v"}
        })
    );
}

/// Packed encoding of repeated numbers (proto3 style) is accepted as well as one per field.
#[test]
fn packed_repeated_numbers() {
    // PodSecurityContext.supplementalGroups (4) packed: 1, 300.
    let security = [0x22, 0x03, 0x01, 0xAC, 0x02];
    let mut spec = vec![0x72, security.len() as u8]; // PodSpec.securityContext (14)
    spec.extend(security);
    let mut pod = vec![0x12, spec.len() as u8]; // Pod.spec (2)
    pod.extend(spec);
    let got = decode_request(&envelope("v1", "Pod", pod)).expect("decodes");
    assert_eq!(
        got["spec"]["securityContext"]["supplementalGroups"],
        json!([1, 300])
    );
}

#[test]
fn go_durations() {
    let index = table::message_named("k8s.io.apimachinery.pkg.apis.meta.v1.Duration").unwrap();
    let encoded = meta::Duration {
        duration: Some(90_000_000_000),
    }
    .encode_to_vec();
    assert_eq!(message_to_json(index, &encoded, 0).unwrap(), json!("1m30s"));
    assert_eq!(message_to_json(index, &[], 0).unwrap(), json!("0s"));
}
