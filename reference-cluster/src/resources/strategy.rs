//! The strategy of every built-in kind: one configurable type, [`BuiltinStrategy`], whose
//! behaviour is looked up by group and kind (defaults, validation, generation policy, status
//! handling, selectable fields, table printer).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::defaults::pod::qos_class;
use super::json::{array_at, at, ensure_object, ensure_path, semantic_eq, str_at};
use super::{defaults, fields, table, validation, FieldError, ResourceInfo, Strategy, TableColumn};

/// When `metadata.generation` is set to 1 on create and bumped on update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Generation {
    /// The kind has no generation (pods, services, config maps, ...).
    None,
    /// Bumped when `spec` changes.
    Spec,
    /// Bumped when `spec` or the annotations change (Deployments copy annotations to their
    /// ReplicaSets, so annotation edits are rollouts).
    SpecAndAnnotations,
    /// Bumped when one top-level field changes (`template`, `webhooks`).
    Field(&'static str),
    /// Bumped when anything but metadata changes, or the labels do (EndpointSlices).
    AllButMetadataOrLabels,
}

fn generation_policy(group: &str, kind: &str) -> Generation {
    match (group, kind) {
        ("apps", "Deployment") => Generation::SpecAndAnnotations,
        ("apps", "ReplicaSet" | "StatefulSet" | "DaemonSet")
        | ("", "ReplicationController")
        | ("batch", "Job" | "CronJob")
        | ("policy", "PodDisruptionBudget")
        | ("apiextensions.k8s.io", "CustomResourceDefinition")
        | ("networking.k8s.io", "Ingress" | "IngressClass" | "NetworkPolicy")
        | ("flowcontrol.apiserver.k8s.io", _)
        | (
            "admissionregistration.k8s.io",
            "ValidatingAdmissionPolicy" | "ValidatingAdmissionPolicyBinding",
        ) => Generation::Spec,
        ("", "PodTemplate") => Generation::Field("template"),
        (
            "admissionregistration.k8s.io",
            "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration",
        ) => Generation::Field("webhooks"),
        ("discovery.k8s.io", "EndpointSlice") => Generation::AllButMetadataOrLabels,
        _ => Generation::None,
    }
}

/// Strategy of one built-in resource version.
pub struct BuiltinStrategy {
    group: String,
    version: String,
    kind: String,
    namespaced: bool,
    has_status: bool,
    generation: Generation,
    columns: Vec<TableColumn>,
}

/// Builds the strategy for a built-in resource.
pub fn builtin_strategy(info: &ResourceInfo) -> Arc<dyn Strategy> {
    Arc::new(BuiltinStrategy::new(info))
}

impl BuiltinStrategy {
    pub fn new(info: &ResourceInfo) -> Self {
        BuiltinStrategy {
            group: info.group.clone(),
            version: info.version.clone(),
            kind: info.kind.clone(),
            namespaced: info.namespaced,
            has_status: info.has_subresource("status"),
            generation: generation_policy(&info.group, &info.kind),
            columns: table::builtin_columns(&info.group, &info.kind),
        }
    }

    fn is(&self, group: &str, kind: &str) -> bool {
        self.group == group && self.kind == kind
    }

    /// The status a freshly created object starts with: Go's zero status struct as it
    /// serialises (fields without `omitempty` show up as zeros).
    fn initial_status(&self, obj: &Value) -> Value {
        match (self.group.as_str(), self.kind.as_str()) {
            ("", "Namespace") => json!({"phase": "Active"}),
            ("", "Service") | ("networking.k8s.io", "Ingress") => json!({"loadBalancer": {}}),
            ("", "ReplicationController") | ("apps", "ReplicaSet") => json!({"replicas": 0}),
            ("apps", "StatefulSet") => json!({"replicas": 0, "availableReplicas": 0}),
            ("apps", "DaemonSet") => json!({"currentNumberScheduled": 0,
                "numberMisscheduled": 0, "desiredNumberScheduled": 0, "numberReady": 0}),
            ("autoscaling", "HorizontalPodAutoscaler") => {
                if self.version == "v1" {
                    json!({"currentReplicas": 0, "desiredReplicas": 0})
                } else {
                    json!({"desiredReplicas": 0})
                }
            }
            ("policy", "PodDisruptionBudget") => json!({"disruptionsAllowed": 0,
                "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0}),
            ("", "PersistentVolume") => {
                let at_time = str_at(obj, "metadata.creationTimestamp")
                    .map(String::from)
                    .unwrap_or_else(|| Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string());
                json!({"phase": "Pending", "lastPhaseTransitionTime": at_time})
            }
            ("", "PersistentVolumeClaim") => json!({"phase": "Pending"}),
            ("storage.k8s.io", "VolumeAttachment") => json!({"attached": false}),
            ("", "Pod") => pod_initial_status(obj),
            ("apiextensions.k8s.io", "CustomResourceDefinition") => super::crd::initial_status(obj),
            _ => json!({}),
        }
    }

    fn generation_changed(&self, obj: &Value, old: &Value) -> bool {
        let field = |v: &Value, k: &str| v.get(k).cloned().unwrap_or(Value::Null);
        match self.generation {
            Generation::None => false,
            Generation::Spec => !semantic_eq(&field(obj, "spec"), &field(old, "spec")),
            Generation::SpecAndAnnotations => {
                !semantic_eq(&field(obj, "spec"), &field(old, "spec"))
                    || !semantic_eq(
                        at(obj, "metadata.annotations").unwrap_or(&Value::Null),
                        at(old, "metadata.annotations").unwrap_or(&Value::Null),
                    )
            }
            Generation::Field(f) => !semantic_eq(&field(obj, f), &field(old, f)),
            Generation::AllButMetadataOrLabels => {
                let strip = |v: &Value| super::json::without_keys(v, &["metadata"]);
                !semantic_eq(&strip(obj), &strip(old))
                    || !semantic_eq(
                        at(obj, "metadata.labels").unwrap_or(&Value::Null),
                        at(old, "metadata.labels").unwrap_or(&Value::Null),
                    )
            }
        }
    }
}

fn set_generation(obj: &mut Value, generation: Option<&Value>) {
    if let Some(meta) = ensure_object(obj, "metadata").and_then(Value::as_object_mut) {
        match generation {
            Some(g) if !g.is_null() => {
                meta.insert("generation".into(), g.clone());
            }
            _ => {
                meta.remove("generation");
            }
        }
    }
}

/// Replaces `obj[key]` with `old[key]` (removing it when `old` has none).
fn keep_from_old(obj: &mut Value, old: &Value, key: &str) {
    if let Some(map) = obj.as_object_mut() {
        match old.get(key) {
            Some(v) => {
                map.insert(key.to_string(), v.clone());
            }
            None => {
                map.remove(key);
            }
        }
    }
}

/// A pod's status on create: Pending with its QoS class, and the SchedulingGated condition
/// when the pod starts out gated.
fn pod_initial_status(pod: &Value) -> Value {
    let spec = pod.get("spec").cloned().unwrap_or(Value::Null);
    let mut status = json!({"phase": "Pending", "qosClass": qos_class(&spec)});
    if !array_at(&spec, "schedulingGates").is_empty() {
        status["conditions"] = json!([{
            "type": "PodScheduled", "status": "False",
            "lastProbeTime": null, "lastTransitionTime": null,
            "reason": "SchedulingGated",
            "message": "Scheduling is blocked due to non-empty scheduling gates"
        }]);
    }
    status
}

/// Job creation: selector and labels generated from the job's name and UID unless the user
/// asked for a manual selector (`generateSelector` upstream). Needs `metadata.uid` set.
pub fn prepare_job_create(job: &mut Value) {
    if at(job, "spec.manualSelector").and_then(Value::as_bool) == Some(true) {
        return;
    }
    let name = str_at(job, "metadata.name").unwrap_or_default().to_string();
    let uid = str_at(job, "metadata.uid").unwrap_or_default().to_string();
    if let Some(labels) =
        ensure_path(job, "spec.template.metadata.labels").and_then(Value::as_object_mut)
    {
        for (k, v) in [
            ("job-name", &name),
            ("batch.kubernetes.io/job-name", &name),
            ("controller-uid", &uid),
            ("batch.kubernetes.io/controller-uid", &uid),
        ] {
            labels.entry(k).or_insert_with(|| json!(v));
        }
    }
    if let Some(ml) = ensure_path(job, "spec.selector.matchLabels").and_then(Value::as_object_mut) {
        ml.entry("batch.kubernetes.io/controller-uid")
            .or_insert_with(|| json!(uid));
    }
}

impl Strategy for BuiltinStrategy {
    fn default(&self, obj: &mut Value) {
        defaults::apply(&self.group, &self.version, &self.kind, obj);
    }

    fn prepare_create(&self, obj: &mut Value) {
        if !obj.is_object() {
            return;
        }
        // Nodes are registered by their kubelet with a status; everything else starts clean.
        if self.has_status && !self.is("", "Node") {
            let status = self.initial_status(obj);
            obj["status"] = status;
        }
        if self.generation != Generation::None {
            set_generation(obj, Some(&json!(1)));
        }
        if self.is("", "Namespace") {
            // The name may only now be known (generateName), so the name label is set again.
            let name = str_at(obj, "metadata.name").unwrap_or_default().to_string();
            if !name.is_empty() {
                if let Some(labels) = ensure_path(obj, "metadata.labels") {
                    labels["kubernetes.io/metadata.name"] = json!(name);
                }
            }
            if let Some(spec) = ensure_object(obj, "spec") {
                let finalizers = spec
                    .get("finalizers")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                if !finalizers.iter().any(|f| f.as_str() == Some("kubernetes")) {
                    let mut f = finalizers;
                    f.push(json!("kubernetes"));
                    spec["finalizers"] = Value::Array(f);
                }
            }
        }
        if self.is("batch", "Job") {
            prepare_job_create(obj);
        }
    }

    fn prepare_update(&self, obj: &mut Value, old: &Value) {
        if !obj.is_object() {
            return;
        }
        // Clients never set generation; it is carried over and only the server bumps it.
        set_generation(obj, at(old, "metadata.generation"));
        if self.has_status {
            keep_from_old(obj, old, "status");
        }
        if self.is("", "Namespace") {
            let old_finalizers = at(old, "spec.finalizers").cloned();
            if let Some(spec) = ensure_object(obj, "spec").and_then(Value::as_object_mut) {
                match old_finalizers {
                    Some(f) => {
                        spec.insert("finalizers".into(), f);
                    }
                    None => {
                        spec.remove("finalizers");
                    }
                }
            }
        }
        if self.is("apiextensions.k8s.io", "CustomResourceDefinition") {
            super::crd::record_stored_version(obj);
        }
        if self.generation != Generation::None && self.generation_changed(obj, old) {
            let next = at(old, "metadata.generation")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                + 1;
            set_generation(obj, Some(&json!(next)));
        }
    }

    fn prepare_status_update(&self, obj: &mut Value, old: &Value) {
        let Some(new_map) = obj.as_object().cloned() else {
            return;
        };
        let mut out = old.as_object().cloned().unwrap_or_default();
        if let Some(meta) = new_map.get("metadata") {
            out.insert("metadata".into(), meta.clone());
        }
        match new_map.get("status") {
            Some(s) => {
                out.insert("status".into(), s.clone());
            }
            None => {
                out.remove("status");
            }
        }
        *obj = Value::Object(out);
        set_generation(obj, at(old, "metadata.generation"));
        if self.is("", "Pod") {
            // Old kubelets corrupt owner references through pods/status; upstream ignores them.
            if let Some(meta) = ensure_object(obj, "metadata").and_then(Value::as_object_mut) {
                match at(old, "metadata.ownerReferences") {
                    Some(r) => {
                        meta.insert("ownerReferences".into(), r.clone());
                    }
                    None => {
                        meta.remove("ownerReferences");
                    }
                }
            }
        }
    }

    fn prepare_subresource_update(&self, subresource: &str, obj: &mut Value, old: &Value) {
        match subresource {
            "status" => self.prepare_status_update(obj, old),
            // Only spec.finalizers changes through namespaces/finalize.
            "finalize" => {
                let finalizers = at(obj, "spec.finalizers").cloned();
                *obj = old.clone();
                if let Some(spec) = ensure_object(obj, "spec").and_then(Value::as_object_mut) {
                    match finalizers {
                        Some(f) => spec.insert("finalizers".into(), f),
                        None => spec.remove("finalizers"),
                    };
                }
            }
            // Only the approval conditions change through certificatesigningrequests/approval.
            "approval" => {
                let conditions = at(obj, "status.conditions").cloned();
                *obj = old.clone();
                if let Some(status) = ensure_object(obj, "status").and_then(Value::as_object_mut) {
                    match conditions {
                        Some(c) => status.insert("conditions".into(), c),
                        None => status.remove("conditions"),
                    };
                }
            }
            // Only spec.ephemeralContainers changes through pods/ephemeralcontainers.
            "ephemeralcontainers" => {
                let ephemeral = at(obj, "spec.ephemeralContainers").cloned();
                *obj = old.clone();
                if let Some(spec) = ensure_object(obj, "spec").and_then(Value::as_object_mut) {
                    match ephemeral {
                        Some(e) => spec.insert("ephemeralContainers".into(), e),
                        None => spec.remove("ephemeralContainers"),
                    };
                }
            }
            _ => self.prepare_update(obj, old),
        }
    }

    fn validate(&self, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
        validation::validate(&self.group, &self.kind, self.namespaced, obj, old)
    }

    fn validate_subresource_update(
        &self,
        subresource: &str,
        obj: &Value,
        old: &Value,
    ) -> Vec<FieldError> {
        if subresource == "ephemeralcontainers" && self.is("", "Pod") {
            // `ValidatePodEphemeralContainersUpdate`: the pod as a whole must stay valid, new
            // ephemeral containers may be added, existing ones neither removed nor changed.
            let mut base = old.clone();
            if let Some(spec) = ensure_object(&mut base, "spec").and_then(Value::as_object_mut) {
                match at(obj, "spec.ephemeralContainers") {
                    Some(e) => spec.insert("ephemeralContainers".into(), e.clone()),
                    None => spec.remove("ephemeralContainers"),
                };
            }
            let mut errs = self.validate(obj, Some(&base));
            validation::validate_ephemeral_containers_update(obj, old, &mut errs);
            return errs;
        }
        self.validate(obj, Some(old))
    }

    fn field_value(&self, obj: &Value, field: &str) -> Option<String> {
        fields::builtin_field_value(&self.group, &self.kind, obj, field)
    }

    fn table_columns(&self) -> Vec<TableColumn> {
        self.columns.clone()
    }

    fn table_row(&self, obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
        table::builtin_row(&self.group, &self.kind, obj, now)
    }

    fn stores_served_version(&self) -> bool {
        !matches!(
            (
                self.group.as_str(),
                self.kind.as_str(),
                self.version.as_str(),
            ),
            ("events.k8s.io", "Event", _) | ("autoscaling", "HorizontalPodAutoscaler", "v1")
        )
    }

    fn to_storage_version(&self, obj: Value) -> Value {
        match (
            self.group.as_str(),
            self.kind.as_str(),
            self.version.as_str(),
        ) {
            ("events.k8s.io", "Event", _) => super::convert::event_v1_to_core(&obj),
            ("autoscaling", "HorizontalPodAutoscaler", "v1") => super::convert::hpa_v1_to_v2(&obj),
            _ => obj,
        }
    }

    fn to_served_version(&self, obj: Value) -> Value {
        match (
            self.group.as_str(),
            self.kind.as_str(),
            self.version.as_str(),
        ) {
            ("events.k8s.io", "Event", _) => {
                super::convert::event_core_to_v1(&super::convert::event_as_core(&obj))
            }
            ("autoscaling", "HorizontalPodAutoscaler", "v1") => {
                if str_at(&obj, "apiVersion") == Some("autoscaling/v1") {
                    obj
                } else {
                    super::convert::hpa_v2_to_v1(&obj)
                }
            }
            _ => obj,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Catalog;

    fn strategy(group: &str, version: &str, plural: &str) -> Arc<dyn Strategy> {
        let c = Catalog::builtin();
        let info = c.get(group, version, plural).unwrap();
        c.strategy(&info)
    }

    fn create(s: &dyn Strategy, mut obj: Value) -> Value {
        s.default(&mut obj);
        s.prepare_create(&mut obj);
        obj
    }

    fn update(s: &dyn Strategy, old: &Value, mut obj: Value) -> Value {
        s.default(&mut obj);
        s.prepare_update(&mut obj, old);
        obj
    }

    fn deployment() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "ns", "uid": "u"},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25"}]}}},
            "status": {"replicas": 9}})
    }

    #[test]
    fn deployment_generation_and_status() {
        let s = strategy("apps", "v1", "deployments");
        let created = create(s.as_ref(), deployment());
        assert_eq!(created["metadata"]["generation"], 1);
        assert_eq!(created["status"], json!({}));
        assert!(s.validate(&created, None).is_empty());

        let mut stored = created.clone();
        stored["status"] = json!({"replicas": 1});
        // A scale is a spec change.
        let mut scaled = created.clone();
        scaled["spec"]["replicas"] = json!(3);
        scaled["status"] = json!({"replicas": 100});
        let scaled = update(s.as_ref(), &stored, scaled);
        assert_eq!(scaled["metadata"]["generation"], 2);
        assert_eq!(
            scaled["status"],
            json!({"replicas": 1}),
            "status kept on main update"
        );

        // Labels alone do not bump; annotations do for deployments.
        let mut labelled = stored.clone();
        labelled["metadata"]["labels"] = json!({"x": "y"});
        assert_eq!(
            update(s.as_ref(), &stored, labelled)["metadata"]["generation"],
            1
        );
        let mut annotated = stored.clone();
        annotated["metadata"]["annotations"] = json!({"x": "y"});
        assert_eq!(
            update(s.as_ref(), &stored, annotated)["metadata"]["generation"],
            2
        );

        // Clients cannot set the generation.
        let mut forged = stored.clone();
        forged["metadata"]["generation"] = json!(42);
        assert_eq!(
            update(s.as_ref(), &stored, forged)["metadata"]["generation"],
            1
        );
    }

    #[test]
    fn status_update_keeps_spec() {
        let s = strategy("apps", "v1", "deployments");
        let stored = create(s.as_ref(), deployment());
        let mut req = stored.clone();
        req["spec"]["replicas"] = json!(7);
        req["status"] = json!({"readyReplicas": 1});
        s.prepare_status_update(&mut req, &stored);
        assert_eq!(req["spec"], stored["spec"]);
        assert_eq!(req["status"], json!({"readyReplicas": 1}));
        assert_eq!(req["metadata"]["generation"], 1);
    }

    #[test]
    fn kinds_without_generation() {
        let s = strategy("", "v1", "configmaps");
        let cm = create(
            s.as_ref(),
            json!({"metadata": {"name": "c", "namespace": "ns"}, "data": {"a": "1"}}),
        );
        assert!(cm["metadata"].get("generation").is_none());
        let mut changed = cm.clone();
        changed["data"]["a"] = json!("2");
        assert!(update(s.as_ref(), &cm, changed)["metadata"]
            .get("generation")
            .is_none());
    }

    #[test]
    fn pod_create_status_and_update() {
        let s = strategy("", "v1", "pods");
        let pod = create(
            s.as_ref(),
            json!({"metadata": {"name": "p", "namespace": "ns"},
            "spec": {"containers": [{"name": "a", "image": "nginx",
                "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}],
                "schedulingGates": [{"name": "wait"}]},
            "status": {"phase": "Running"}}),
        );
        assert_eq!(pod["status"]["phase"], "Pending");
        assert_eq!(pod["status"]["qosClass"], "Guaranteed");
        assert_eq!(pod["status"]["conditions"][0]["reason"], "SchedulingGated");
        assert!(pod["metadata"].get("generation").is_none());
        assert!(
            s.validate(&pod, None).is_empty(),
            "{:?}",
            s.validate(&pod, None)
        );
        let mut changed = pod.clone();
        changed["spec"]["containers"][0]["image"] = json!("nginx:2");
        changed["status"]["phase"] = json!("Running");
        let changed = update(s.as_ref(), &pod, changed);
        assert_eq!(changed["status"]["phase"], "Pending");
        assert!(s.validate(&changed, Some(&pod)).is_empty());
    }

    #[test]
    fn namespace_create_and_finalize() {
        let s = strategy("", "v1", "namespaces");
        let ns = create(s.as_ref(), json!({"metadata": {"name": "team"}}));
        assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
        assert_eq!(ns["status"], json!({"phase": "Active"}));
        assert_eq!(
            ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
            "team"
        );
        let mut edit = ns.clone();
        edit["spec"]["finalizers"] = json!([]);
        let edit = update(s.as_ref(), &ns, edit);
        assert_eq!(
            edit["spec"]["finalizers"],
            json!(["kubernetes"]),
            "main update keeps finalizers"
        );
        let mut fin = ns.clone();
        fin["spec"]["finalizers"] = json!([]);
        fin["metadata"]["labels"]["x"] = json!("y");
        s.prepare_subresource_update("finalize", &mut fin, &ns);
        assert_eq!(fin["spec"]["finalizers"], json!([]));
        assert!(fin["metadata"]["labels"].get("x").is_none());
    }

    #[test]
    fn job_create_generates_selector() {
        let s = strategy("batch", "v1", "jobs");
        let job = create(
            s.as_ref(),
            json!({"metadata": {"name": "pi", "namespace": "ns", "uid": "abc"},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "pi", "image": "perl:5.34"}]}}}}),
        );
        assert_eq!(job["metadata"]["generation"], 1);
        assert_eq!(
            job["spec"]["selector"],
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "abc"}})
        );
        let labels = &job["spec"]["template"]["metadata"]["labels"];
        assert_eq!(labels["job-name"], "pi");
        assert_eq!(labels["batch.kubernetes.io/job-name"], "pi");
        assert_eq!(labels["controller-uid"], "abc");
        assert!(
            s.validate(&job, None).is_empty(),
            "{:?}",
            s.validate(&job, None)
        );
    }

    #[test]
    fn initial_statuses_match_go_zero_values() {
        let svc = create(
            strategy("", "v1", "services").as_ref(),
            json!({"metadata": {"name": "s", "namespace": "ns"}, "spec": {"ports": [{"port": 80}]}}),
        );
        assert_eq!(svc["status"], json!({"loadBalancer": {}}));
        let rs = create(
            strategy("apps", "v1", "replicasets").as_ref(),
            json!({"metadata": {"name": "r"}}),
        );
        assert_eq!(rs["status"], json!({"replicas": 0}));
        let node = create(
            strategy("", "v1", "nodes").as_ref(),
            json!({"metadata": {"name": "n"}, "status": {"capacity": {"cpu": "4"}}}),
        );
        assert_eq!(
            node["status"]["allocatable"],
            json!({"cpu": "4"}),
            "nodes keep their status"
        );
    }

    #[test]
    fn hostile_input_never_panics() {
        let hostile = [
            json!(null),
            json!([1, 2]),
            json!("pod"),
            json!({"metadata": "x", "spec": [], "status": 7}),
            json!({"metadata": {"name": 5, "labels": [1], "annotations": "a", "ownerReferences": {}},
                   "spec": {"containers": "c", "template": {"spec": {"containers": [1, null, {"ports": "p"}]}},
                            "selector": "s", "ports": [null, {"port": "x"}], "volumes": [{"secret": 1}],
                            "jobTemplate": [], "rules": {}, "replicas": "three"},
                   "status": {"conditions": "none", "containerStatuses": [{"state": 3}]},
                   "data": [], "subjects": [7], "roleRef": 1, "webhooks": {}}),
        ];
        let c = Catalog::builtin();
        let now = Utc::now();
        for info in c.all() {
            let s = c.strategy(&info);
            for old in &hostile {
                for obj in &hostile {
                    let mut created = obj.clone();
                    s.default(&mut created);
                    s.prepare_create(&mut created);
                    let _ = s.validate(&created, None);
                    let mut updated = obj.clone();
                    s.default(&mut updated);
                    s.prepare_update(&mut updated, old);
                    let _ = s.validate(&updated, Some(old));
                    let mut status = obj.clone();
                    s.prepare_status_update(&mut status, old);
                    for sub in ["finalize", "approval", "ephemeralcontainers"] {
                        let mut o = obj.clone();
                        s.prepare_subresource_update(sub, &mut o, old);
                    }
                    let _ = s.table_row(obj, now);
                    let _ = s.field_value(obj, "status.phase");
                    let _ = s.to_served_version(s.to_storage_version(obj.clone()));
                }
            }
        }
    }

    #[test]
    fn events_and_hpa_convert_to_storage() {
        let ev = strategy("events.k8s.io", "v1", "events");
        let stored = ev
            .to_storage_version(json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e"}, "note": "hi", "regarding": {"kind": "Pod"}}));
        assert_eq!(stored["apiVersion"], "v1");
        assert_eq!(stored["message"], "hi");
        assert_eq!(ev.to_served_version(stored)["note"], "hi");
        let hpa = strategy("autoscaling", "v1", "horizontalpodautoscalers");
        let stored = hpa.to_storage_version(
            json!({"apiVersion": "autoscaling/v1", "metadata": {"name": "h"},
            "spec": {"maxReplicas": 3, "targetCPUUtilizationPercentage": 50}}),
        );
        assert_eq!(stored["apiVersion"], "autoscaling/v2");
        assert_eq!(
            hpa.to_served_version(stored)["spec"]["targetCPUUtilizationPercentage"],
            50
        );
    }
}
