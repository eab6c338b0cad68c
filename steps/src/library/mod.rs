//! The step library: one table that is at once the cucumber registration, the `--check`
//! matcher and the documentation printed by `kubeproof steps`.

pub mod actions;
pub mod aggregation;
pub mod assertions;
pub mod audit;
pub mod chaos;
pub mod diagnostics;
pub mod flood;
pub mod history;
pub mod invariants;
pub mod logs;
pub mod metrics;
pub mod nodes;
pub mod nodes_sched;
pub mod ordering;
pub mod raw;
pub mod support;
pub mod workloads;

use std::sync::OnceLock;

use cucumber::gherkin::StepType;
use futures::future::LocalBoxFuture;
use regex::Regex;
use serde::Serialize;

use crate::world::KubeWorld;
pub use support::{StepArgs, StepFailure, StepResult};

pub type StepFn = for<'a> fn(&'a mut KubeWorld, StepArgs) -> LocalBoxFuture<'a, StepResult>;

/// Which Gherkin keywords a step answers to. Actions work after Given and When alike (a
/// precondition is often just an action); expectations are Then steps, and Given steps too
/// when a precondition is something to wait for (a CRD being Established).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Keyword {
    Action,
    Assertion,
}

impl Keyword {
    pub fn accepts(self, ty: StepType) -> bool {
        match self {
            Keyword::Action => matches!(ty, StepType::Given | StepType::When),
            Keyword::Assertion => matches!(ty, StepType::Given | StepType::Then),
        }
    }
}

pub struct StepDef {
    pub name: &'static str,
    pub keyword: Keyword,
    pub pattern: &'static str,
    pub description: &'static str,
    pub example: &'static str,
    pub run: StepFn,
}

macro_rules! step_fn {
    ($f:path) => {{
        fn run(world: &mut KubeWorld, args: StepArgs) -> LocalBoxFuture<'_, StepResult> {
            Box::pin($f(world, args))
        }
        run as StepFn
    }};
}

// Reusable pattern pieces. A kind is any name discovery knows (kind, plural, singular or
// short name, optionally `.group`); names and values are double-quoted.
macro_rules! kind {
    () => {
        r#"(?P<kind>(?:[A-Za-z0-9.\-]|\{\{ ?[A-Za-z_][A-Za-z0-9_]* ?\}\})+)"#
    };
}
macro_rules! obj {
    () => {
        concat!(
            kind!(),
            r#" "(?P<name>[^"]+)"(?: in namespace "(?P<ns>[^"]+)")?"#
        )
    };
}
macro_rules! within {
    () => {
        r#"(?: within (?P<secs>\d+(?:\.\d+)?) seconds?)?"#
    };
}
// `for N seconds`: the assertion must hold on every poll throughout; exclusive with `within`.
macro_rules! timing {
    () => {
        r#"(?:(?: within (?P<secs>\d+(?:\.\d+)?) seconds?)|(?: for (?P<for>\d+(?:\.\d+)?) seconds?))?"#
    };
}
// Acting as another identity through impersonation headers.
macro_rules! as_user {
    () => {
        r#"(?: as user "(?P<user>[^"]+)"(?: in groups? "(?P<groups>[^"]+)")?)?"#
    };
}
macro_rules! try_to {
    () => {
        r#"(?P<try>try to )?"#
    };
}

/// Every step kubeproof understands.
pub fn steps() -> &'static [StepDef] {
    static STEPS: OnceLock<Vec<StepDef>> = OnceLock::new();
    STEPS.get_or_init(|| {
        vec![
            StepDef {
                name: "namespace",
                keyword: Keyword::Action,
                pattern: r#"^a namespace$"#,
                description: "The scenario's own namespace, created before its first step and deleted after it; manifests without a namespace land in it and `{{ namespace }}` names it.",
                example: "Given a namespace",
                run: step_fn!(actions::a_namespace),
            },
            StepDef {
                name: "another-namespace",
                keyword: Keyword::Action,
                pattern: r#"^another namespace as "(?P<var>[A-Za-z_][A-Za-z0-9_]*)"$"#,
                description: "Creates a second namespace for the scenario (deleted after it) and names it in the template variable given.",
                example: "Given another namespace as \"other\"",
                run: step_fn!(actions::another_namespace),
            },
            StepDef {
                name: "manifest",
                keyword: Keyword::Action,
                pattern: concat!(
                    "^I ", try_to!(), r#"(?P<verb>apply|create|replace)"#, as_user!(), r#"(?: as "(?P<manager>[^"]+)")?(?P<force> with force)?(?P<dry> with dry run)?(?: with field validation (?P<fv>Strict|Warn|Ignore))?:$"#
                ),
                description: "Sends every YAML document of the doc string: `create` POSTs, `replace` PUTs, `apply` is server-side apply (field manager `kubeproof` unless `as \"<manager>\"`, `with force` to take over conflicting fields). Optional `with dry run` and `with field validation Strict|Warn|Ignore`. Kinds are resolved through discovery, so CRDs work. Without `try to`, a non-2xx answer fails the step; with it, the answer is kept for `the last request ...`.",
                example: "When I create:\n  \"\"\"\n  apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: settings\n  data:\n    mode: fast\n  \"\"\"",
                run: step_fn!(actions::manifest),
            },
            StepDef {
                name: "patch",
                keyword: Keyword::Action,
                pattern: concat!("^I ", try_to!(), "patch ", obj!(), as_user!(), r#" with (?P<type>json|merge|strategic) patch:$"#),
                description: "PATCHes one object with the doc string as a JSON patch, JSON merge patch or strategic merge patch (written in YAML or JSON).",
                example: "When I patch configmap \"settings\" with merge patch:\n  \"\"\"\n  data:\n    mode: slow\n  \"\"\"",
                run: step_fn!(actions::patch),
            },
            StepDef {
                name: "delete",
                keyword: Keyword::Action,
                pattern: concat!(
                    "^I ", try_to!(), "delete ", obj!(), as_user!(), r#"(?: with propagation policy (?P<policy>Foreground|Background|Orphan))?(?: with grace period (?P<grace>\d+))?$"#
                ),
                description: "DELETEs one object, optionally with a propagation policy and a grace period in seconds.",
                example: "When I delete configmap \"settings\" with propagation policy Foreground",
                run: step_fn!(actions::delete),
            },
            StepDef {
                name: "scale",
                keyword: Keyword::Action,
                pattern: concat!("^I ", try_to!(), "scale ", obj!(), as_user!(), r#" to (?P<n>\d+)$"#),
                description: "Sets spec.replicas through the object's scale subresource.",
                example: "When I scale deployment \"web\" to 3",
                run: step_fn!(actions::scale),
            },
            StepDef {
                name: "get",
                keyword: Keyword::Action,
                pattern: concat!("^I ", try_to!(), "get ", obj!(), as_user!(), "$"),
                description: "GETs one object and keeps the answer for `the last request ...` / `the last response ...` steps. Like create/apply/replace, patch, delete, scale and list, it takes `as user \"x\"` (optionally `in group \"g\"` or `in groups \"a,b\"`) to act as that identity through impersonation headers; the runner needs the `impersonate` permission.",
                example: "When I try to get configmap \"gone\" as user \"bob\" in groups \"dev,ops\"",
                run: step_fn!(actions::get),
            },
            StepDef {
                name: "list",
                keyword: Keyword::Action,
                pattern: concat!(
                    "^I ", try_to!(), "list ", kind!(),
                    r#"(?: in namespace "(?P<ns>[^"]+)")?"#, as_user!(), r#"(?: with label selector "(?P<ls>[^"]*)")?(?: with field selector "(?P<fs>[^"]*)")?(?: with limit (?P<limit>\d+))?$"#
                ),
                description: "Lists a namespaced collection with optional label selector, field selector and page size; starts a new pagination.",
                example: "When I list configmaps with label selector \"app=web\" with limit 2",
                run: step_fn!(actions::list),
            },
            StepDef {
                name: "next-page",
                keyword: Keyword::Action,
                pattern: concat!("^I ", try_to!(), "list the next page$"),
                description: "Fetches the next page of the last list with its continue token.",
                example: "When I list the next page",
                run: step_fn!(actions::next_page),
            },
            StepDef {
                name: "request",
                keyword: Keyword::Action,
                pattern: r#"^I request (?P<method>GET|POST|PUT|PATCH|DELETE|HEAD) "(?P<path>[^"]+)"$"#,
                description: "A raw request to any path (health endpoints, /metrics, /version, discovery); an optional doc string is sent as a JSON body. The answer is kept whatever its code.",
                example: "When I request GET \"/readyz?verbose\"",
                run: step_fn!(actions::request),
            },
            StepDef {
                name: "raw-request",
                keyword: Keyword::Action,
                pattern: r#"^I request (?P<method>GET|POST|PUT|PATCH|DELETE|HEAD) "(?P<path>[^"]+)"(?: (?:as service account "(?P<sa>[^"]+)"|(?P<anon>without credentials)|with bearer token "(?P<token>[^"]+)")(?P<hdr1> with headers:)?| (?P<hdr2>with headers:))$"#,
                description: "A raw request with chosen credentials and headers, kept whatever its code. `as service account \"sa\"` sends a token the API issues for that ServiceAccount of the scenario namespace (TokenRequest), `without credentials` sends none, `with bearer token \"t\"` sends that token; otherwise the runner's own credentials are used, without retrying 429. `with headers:` takes a doc string of `Name: value` lines (Accept, Impersonate-User, …), then an empty line and an optional body (YAML is sent as JSON unless Content-Type says otherwise).",
                example: "When I request GET \"/api/v1/namespaces/{{ namespace }}/pods\" as service account \"robot\" with headers:\n  \"\"\"\n  Impersonate-User: jane\n  \"\"\"",
                run: step_fn!(raw::request),
            },
            StepDef {
                name: "remember-header",
                keyword: Keyword::Action,
                pattern: r#"^I remember header "(?P<header>[^"]+)" of the last response as "(?P<var>[A-Za-z_][A-Za-z0-9_]*)"$"#,
                description: "Keeps a header of the last response in a template variable (e.g. the FlowSchema UID API Priority and Fairness reports).",
                example: "When I remember header \"X-Kubernetes-PF-FlowSchema-UID\" of the last response as \"fs_uid\"",
                run: step_fn!(raw::remember_header),
            },
            StepDef {
                name: "failed-with-either",
                keyword: Keyword::Assertion,
                pattern: r#"^the last request failed with code (?P<a>\d+) or (?P<b>\d+)$"#,
                description: "The last request answered one of two codes, where a cluster's configuration decides which (e.g. 401 or 403 for an anonymous request).",
                example: "Then the last request failed with code 401 or 403",
                run: step_fn!(raw::failed_with_either),
            },
            StepDef {
                name: "body-begins-with",
                keyword: Keyword::Assertion,
                pattern: r#"^the last response body begins with hex "(?P<hex>[0-9a-fA-F]+)"$"#,
                description: "The raw bytes of the last response start with these (e.g. `6b387300`, the `k8s\\0` envelope of Kubernetes protobuf).",
                example: "Then the last response body begins with hex \"6b387300\"",
                run: step_fn!(raw::body_begins_with),
            },
            StepDef {
                name: "yaml-field",
                keyword: Keyword::Assertion,
                pattern: r#"^the last response read as YAML has "(?P<path>[^"]+)" equal to "(?P<value>(?:[^"\\]|\\.)*)"$"#,
                description: "The last response body parses as one YAML document whose JSONPath equals the value.",
                example: "Then the last response read as YAML has \"{.kind}\" equal to \"Pod\"",
                run: step_fn!(raw::yaml_field),
            },
            StepDef {
                name: "stream-event",
                keyword: Keyword::Assertion,
                pattern: r#"^the last response is a watch stream (?P<op>with|without) an? (?P<type>ADDED|MODIFIED|DELETED|BOOKMARK|ERROR) event$"#,
                description: "The last response (a watch request with `timeoutSeconds`, read to its end) holds, or lacks, an event of this type.",
                example: "Then the last response is a watch stream with a BOOKMARK event",
                run: step_fn!(raw::stream_has_event),
            },
            StepDef {
                name: "bookmarks-only-rv",
                keyword: Keyword::Assertion,
                pattern: r#"^every BOOKMARK of the last response carries only a resourceVersion$"#,
                description: "The last watch response holds at least one BOOKMARK, and each one's object has no data besides kind, apiVersion and metadata.resourceVersion (empty or null fields aside).",
                example: "Then every BOOKMARK of the last response carries only a resourceVersion",
                run: step_fn!(raw::bookmarks_only_carry_rv),
            },
            StepDef {
                name: "remember-event-rv",
                keyword: Keyword::Action,
                pattern: r#"^I remember the resourceVersion of the last (?P<type>ADDED|MODIFIED|DELETED|BOOKMARK) event of the last response as "(?P<var>[A-Za-z_][A-Za-z0-9_]*)"$"#,
                description: "Keeps the resourceVersion of the last event of that type in the last watch response, e.g. to resume from a BOOKMARK.",
                example: "When I remember the resourceVersion of the last BOOKMARK event of the last response as \"resume\"",
                run: step_fn!(raw::remember_event_rv),
            },
            StepDef {
                name: "watch-expired",
                keyword: Keyword::Assertion,
                pattern: r#"^the last response is a watch stream whose ERROR event has code (?P<code>\d+) and reason "(?P<reason>[^"]+)"(?: and a message containing "(?P<msg>(?:[^"\\]|\\.)*)")?$"#,
                description: "The last watch response (read to its end) holds an ERROR event whose object is a Status with this code and reason (and message fragment), as a watch from a compacted resourceVersion gets: 410 `Expired`, \"too old resource version\".",
                example: "Then the last response is a watch stream whose ERROR event has code 410 and reason \"Expired\" and a message containing \"too old resource version\"",
                run: step_fn!(history::watch_error),
            },
            StepDef {
                name: "compact",
                keyword: Keyword::Action,
                pattern: r#"^the API server compacts its storage history$"#,
                description: "Compacts the store to its current revision now, as kube-apiserver's periodic etcd compaction (every 5 minutes) would later: a watch from any older resourceVersion is answered 410 `Expired`. Keeps the revision in `{{ compacted_revision }}`. Only a cluster the runner started itself can be compacted on demand: mark such scenarios `@serial @needs:compaction-control`.",
                example: "When the API server compacts its storage history",
                run: step_fn!(history::compact),
            },
            StepDef {
                name: "burst",
                keyword: Keyword::Action,
                pattern: r#"^I send (?P<n>\d+) concurrent requests "(?P<method>GET|POST|PUT|PATCH|DELETE) (?P<path>[^"]+)" as service account "(?P<sa>[^"]+)"(?: and at the same time (?P<n2>\d+) concurrent requests "(?P<method2>GET|POST|PUT|PATCH|DELETE) (?P<path2>[^"]+)" as service account "(?P<sa2>[^"]+)")?$"#,
                description: "Sends a burst of requests at once (up to 1000) with a token the API issues for a ServiceAccount of the scenario namespace, optionally together with a second burst as another ServiceAccount, and keeps every answer's code per account (429s are not retried). For API Priority and Fairness: one account floods its priority level while the other is served by another. Mark flooding scenarios `@serial`.",
                example: "When I send 30 concurrent requests \"GET /api/v1/namespaces/{{ namespace }}/configmaps\" as service account \"flooder\" and at the same time 10 concurrent requests \"GET /api/v1/namespaces/{{ namespace }}/configmaps\" as service account \"steady\"",
                run: step_fn!(flood::send_burst),
            },
            StepDef {
                name: "burst-rejected",
                keyword: Keyword::Assertion,
                pattern: r#"^some requests as service account "(?P<sa>[^"]+)" were rejected with code (?P<code>\d+)(?P<retry> and a Retry-After header)?$"#,
                description: "At least one request of the account's last burst was answered with this code; `and a Retry-After header` also requires every such answer to say when to retry, as API Priority and Fairness's 429 does. The failure message counts the answers by code.",
                example: "Then some requests as service account \"flooder\" were rejected with code 429 and a Retry-After header",
                run: step_fn!(flood::some_rejected),
            },
            StepDef {
                name: "burst-succeeded",
                keyword: Keyword::Assertion,
                pattern: r#"^every request as service account "(?P<sa>[^"]+)" succeeded$"#,
                description: "Every request of the account's last burst got a 2xx answer.",
                example: "Then every request as service account \"steady\" succeeded",
                run: step_fn!(flood::all_succeeded),
            },
            StepDef {
                name: "audit-annotation",
                keyword: Keyword::Assertion,
                pattern: concat!(r#"^the audit log has an event for (?P<verb>[a-z]+) (?P<resource>[a-z0-9.\-]+(?:/[a-z]+)?) "(?P<name>[^"]+)"(?: in namespace "(?P<ns>[^"]+)")? with annotation "(?P<key>[^"]+)" containing "(?P<value>(?:[^"\\]|\\.)*)""#, within!(), "$"),
                description: "The API server's audit log holds an event of this request (verb, resource as in the URL, optionally `/subresource`, object name, the scenario namespace unless told) with the annotation containing the text, as admission plugins add (PodSecurity's `pod-security.kubernetes.io/audit-violations`). Waits up to 10 s unless told otherwise. Needs `@needs:audit-log`.",
                example: "Then the audit log has an event for create pods \"web\" with annotation \"pod-security.kubernetes.io/audit-violations\" containing \"allowPrivilegeEscalation != false\" within 10 seconds",
                run: step_fn!(audit::has_annotation),
            },
            StepDef {
                name: "watch-order",
                keyword: Keyword::Assertion,
                pattern: concat!(
                    "^the watch on ", kind!(), r#" sees (?P<event>ADDED|MODIFIED|DELETED) events of "(?P<names>[^"]+)" in this order"#, within!(), "$"
                ),
                description: "The watch started by `I watch ...` delivered the first event of this type for each named object in the order listed (comma-separated); objects not listed are ignored. Waits up to 10 s unless told otherwise.",
                example: "Then the watch on pods sees DELETED events of \"web-2, web-1\" in this order within 60 seconds",
                run: step_fn!(ordering::watch_order),
            },
            StepDef {
                name: "remember-field",
                keyword: Keyword::Action,
                pattern: concat!(r#"^I remember "(?P<path>[^"]+)" of "#, obj!(), r#" as "(?P<var>[A-Za-z_][A-Za-z0-9_]*)"$"#),
                description: "Reads a JSONPath of an object into a template variable, e.g. a resourceVersion to send back later.",
                example: "When I remember \"{.metadata.resourceVersion}\" of configmap \"settings\" as \"rv\"",
                run: step_fn!(actions::remember_field),
            },
            StepDef {
                name: "remember-response",
                keyword: Keyword::Action,
                pattern: r#"^I remember "(?P<path>[^"]+)" of the last response as "(?P<var>[A-Za-z_][A-Za-z0-9_]*)"$"#,
                description: "Reads a JSONPath of the last response into a template variable.",
                example: "When I remember \"{.metadata.resourceVersion}\" of the last response as \"listrv\"",
                run: step_fn!(actions::remember_response_field),
            },
            StepDef {
                name: "watch",
                keyword: Keyword::Action,
                pattern: concat!(
                    "^I watch ", kind!(), r#"(?: named "(?P<name>[^"]+)")?(?: in namespace "(?P<ns>[^"]+)")? from (?:now|resource version "(?P<rv>[^"]+)")$"#
                ),
                description: "Starts watching a collection (optionally one object) from the current resourceVersion or a given one; `the watch on ... sees ...` checks what arrived.",
                example: "When I watch configmaps named \"settings\" from now",
                run: step_fn!(actions::start_watch),
            },
            StepDef {
                name: "wait",
                keyword: Keyword::Action,
                pattern: r#"^I wait (?P<secs>\d+(?:\.\d+)?) seconds?$"#,
                description: "Sleeps. Prefer `within N seconds` on a Then step, which waits only as long as needed.",
                example: "When I wait 2 seconds",
                run: step_fn!(actions::wait),
            },
            StepDef {
                name: "set-image",
                keyword: Keyword::Action,
                pattern: concat!("^I ", try_to!(), r#"set the image of container "(?P<container>[^"]+)" of "#, obj!(), r#" to "(?P<image>[^"]+)"$"#),
                description: "`kubectl set image`: changes one container's image in the pod template of a Deployment, StatefulSet, DaemonSet or ReplicaSet (a strategic merge patch keyed by container name).",
                example: "When I set the image of container \"app\" of deployment \"web\" to \"nginx:1.27\"",
                run: step_fn!(workloads::set_image),
            },
            StepDef {
                name: "rollout",
                keyword: Keyword::Action,
                pattern: concat!("^I ", try_to!(), r#"(?P<op>restart|pause|resume) the rollout of "#, obj!(), "$"),
                description: "`kubectl rollout restart|pause|resume`: restart sets the pod template annotation kubectl.kubernetes.io/restartedAt to now; pause and resume set spec.paused.",
                example: "When I pause the rollout of deployment \"web\"",
                run: step_fn!(workloads::rollout),
            },
            StepDef {
                name: "rollout-undo",
                keyword: Keyword::Action,
                pattern: concat!("^I ", try_to!(), r#"undo the rollout of deployment "(?P<name>[^"]+)"(?: in namespace "(?P<ns>[^"]+)")?(?: to revision (?P<rev>\d+))?$"#),
                description: "`kubectl rollout undo`: copies the pod template of the Deployment's ReplicaSet with the previous deployment.kubernetes.io/revision (or the revision given) back into the Deployment, without its pod-template-hash label. Refused for a paused Deployment, as kubectl refuses it.",
                example: "When I undo the rollout of deployment \"web\"",
                run: step_fn!(workloads::rollout_undo),
            },
            StepDef {
                name: "remember-pod",
                keyword: Keyword::Action,
                pattern: r#"^I remember the name of a (?P<ready>ready )?pod with label "(?P<sel>[^"]*)"(?: other than "(?P<except>[^"]+)")? as "(?P<var>[A-Za-z_][A-Za-z0-9_]*)"$"#,
                description: "Keeps the name of one (ready) pod of the scenario namespace matching a label selector, e.g. a pod a controller named; `other than \"a,b\"` skips pods already picked. Pods being deleted are never picked; the first by name is, so runs repeat.",
                example: "When I remember the name of a ready pod with label \"app=web\" other than \"{{ first }}\" as \"second\"",
                run: step_fn!(workloads::remember_pod),
            },
            StepDef {
                name: "evict",
                keyword: Keyword::Action,
                pattern: concat!("^I ", try_to!(), r#"evict pod "(?P<name>[^"]+)"(?: in namespace "(?P<ns>[^"]+)")?$"#),
                description: "POSTs a policy/v1 Eviction for the pod (what `kubectl drain` does). The answer is not retried, so a PodDisruptionBudget's 429 reaches `the last request failed with code 429`.",
                example: "When I try to evict pod \"{{ victim }}\"",
                run: step_fn!(workloads::evict),
            },
            StepDef {
                name: "cordon",
                keyword: Keyword::Action,
                pattern: concat!("^I ", try_to!(), r#"(?P<op>cordon|uncordon) node "(?P<node>[^"]+)"$"#),
                description: "`kubectl cordon|uncordon`: sets or clears the node's spec.unschedulable. The node is restored after the scenario. Mark such scenarios `@serial @needs:node-control`: nodes are shared.",
                example: "When I cordon node \"{{ node }}\"",
                run: step_fn!(nodes::cordon),
            },
            StepDef {
                name: "taint",
                keyword: Keyword::Action,
                pattern: concat!("^I ", try_to!(), r#"(?P<op>add|remove) taint "(?P<taint>[^"]+)" (?:to|from) node "(?P<node>[^"]+)"$"#),
                description: "`kubectl taint`: adds `key=value:Effect` (replacing the key's taint with that effect) or removes `key:Effect` (or every taint of `key`). The node's taints are restored after the scenario.",
                example: "When I add taint \"dedicated=gpu:NoSchedule\" to node \"{{ node }}\"",
                run: step_fn!(nodes::taint),
            },
            StepDef {
                name: "node-label",
                keyword: Keyword::Action,
                pattern: concat!("^I ", try_to!(), r#"label node "(?P<node>[^"]+)" with "(?P<key>[^"=]+?)(?:=(?P<value>[^"]*)|(?P<remove>-))"$"#),
                description: "`kubectl label node`: `k=v` sets a label, `k-` removes it. The label is restored after the scenario.",
                example: "When I label node \"{{ node }}\" with \"disk=ssd\"",
                run: step_fn!(nodes::label),
            },
            StepDef {
                name: "remember-node",
                keyword: Keyword::Action,
                pattern: r#"^I remember the name of a Ready node(?: other than "(?P<except>[^"]+)")? as "(?P<var>[A-Za-z_][A-Za-z0-9_]*)"$"#,
                description: "Keeps the name of a Ready, schedulable node (the first by name, skipping those listed in `other than \"a,b\"`).",
                example: "Given I remember the name of a Ready node as \"node\"",
                run: step_fn!(nodes::remember_node),
            },
            StepDef {
                name: "exists",
                keyword: Keyword::Assertion,
                pattern: concat!("^", obj!(), " (?P<neg>exists|does not exist)", timing!(), "$"),
                description: "The object exists / does not exist (now, eventually with `within N seconds`, or on every poll for `for N seconds`).",
                example: "Then configmap \"settings\" does not exist within 10 seconds",
                run: step_fn!(assertions::exists),
            },
            StepDef {
                name: "extension-apiserver",
                keyword: Keyword::Action,
                pattern: r#"^an extension API server serving group "(?P<group>[^"]+)" version "(?P<version>[^"]+)" with resource "(?P<resource>[a-z0-9]+)"$"#,
                description: "Starts a small HTTPS extension API server in the runner that serves the namespaced resource (list, get, create, delete) from its own memory, and registers a selectorless Service `extension-apiserver` with Endpoints at its loopback address and the APIService `<version>.<group>` (`{{ apiservice }}`) with its CA bundle. It trusts the aggregator's identity headers as `extension-apiserver-authentication` says, and annotates what it creates with `extension.kubeproof.dev/served-by` and `extension.kubeproof.dev/requested-by`. Needs `@needs:runner-reachable`.",
                example: "Given an extension API server serving group \"wardle.example.com\" version \"v1\" with resource \"flunders\"",
                run: step_fn!(aggregation::extension_server),
            },
            StepDef {
                name: "discovery-group",
                keyword: Keyword::Assertion,
                pattern: concat!(r#"^discovery (?P<neg>does not list|lists) group "(?P<group>[^"]+)""#, within!(), "$"),
                description: "Both discovery documents of `/apis`, the legacy APIGroupList and the aggregated APIGroupDiscoveryList, list the group (or both leave it out).",
                example: "Then discovery lists group \"wardle.example.com\" within 30 seconds",
                run: step_fn!(aggregation::discovery_group),
            },
            StepDef {
                name: "extension-apiserver-holds",
                keyword: Keyword::Assertion,
                pattern: r#"^the extension API server holds "(?P<name>[^"]+)"(?: created by (?:user "(?P<user>[^"]+)"|(?P<me>the runner's user)))?$"#,
                description: "The scenario's extension API server has the object in its own memory (in the scenario's namespace) — the request reached it, not the cluster's store — optionally created by the user the aggregator vouched for (`the runner's user`: whoever SelfSubjectReview says the runner is).",
                example: "Then the extension API server holds \"my-flunder\" created by user \"kubernetes-admin\"",
                run: step_fn!(aggregation::extension_holds),
            },
            StepDef {
                name: "matches",
                keyword: Keyword::Assertion,
                pattern: concat!("^", obj!(), " matches", timing!(), ":$"),
                description: "The object contains the doc string's partial YAML: maps by subset, lists element by element by `name` when every element has one, otherwise as sets; `null` means absent. A failure shows the diff. `within N seconds` waits for it; `for N seconds` requires it on every poll (200 ms) for that long and fails at the first poll that differs.",
                example: "Then configmap \"settings\" matches:\n  \"\"\"\n  data:\n    mode: fast\n  \"\"\"",
                run: step_fn!(assertions::object_matches),
            },
            StepDef {
                name: "field",
                keyword: Keyword::Assertion,
                pattern: concat!(
                    "^", obj!(), r#" has "(?P<path>[^"]+)" (?P<op>equal to|not equal to|containing|matching) "(?P<value>(?:[^"\\]|\\.)*)""#, timing!(), "$"
                ),
                description: "A JSONPath (kubectl dialect) of the object compares with a value; several results are joined with spaces, as kubectl prints them. `within N seconds`: eventually; `for N seconds`: on every poll (200 ms) for that long, failing fast with the value seen.",
                example: "Then configmap \"settings\" has \"{.data.mode}\" equal to \"fast\" for 3 seconds",
                run: step_fn!(assertions::field),
            },
            StepDef {
                name: "last-failed",
                keyword: Keyword::Assertion,
                pattern: r#"^the last request failed with code (?P<code>\d+)(?: and reason "(?P<reason>[^"]+)")?(?: and message containing "(?P<msg>(?:[^"\\]|\\.)+)")?$"#,
                description: "The last request answered this HTTP code (and Status reason, and message substring).",
                example: "Then the last request failed with code 409 and reason \"AlreadyExists\"",
                run: step_fn!(assertions::last_failed),
            },
            StepDef {
                name: "last-succeeded",
                keyword: Keyword::Assertion,
                pattern: r#"^the last request succeeded(?: with code (?P<code>\d+))?$"#,
                description: "The last request answered 2xx (or exactly the code given).",
                example: "Then the last request succeeded with code 201",
                run: step_fn!(assertions::last_succeeded),
            },
            StepDef {
                name: "response-body",
                keyword: Keyword::Assertion,
                pattern: r#"^the last response (?P<op>contains|does not contain|matches) "(?P<text>(?:[^"\\]|\\.)+)"$"#,
                description: "The last response body contains (or lacks) a text, or matches a regular expression (e.g. a metric with a label).",
                example: "Then the last response contains \"apiserver_request_total\"",
                run: step_fn!(assertions::response_body),
            },
            StepDef {
                name: "scheduler-request",
                keyword: Keyword::Action,
                pattern: r#"^I request GET "(?P<path>[^"]+)" from the scheduler(?: (?P<anon>without credentials)| with bearer token "(?P<token>[^"]+)")?$"#,
                description: "A GET to the kube-scheduler's secure port (`/metrics`, `/healthz`, …) with the runner's credentials, none, or a bearer token; the answer is kept whatever its code. Needs `@needs:scheduler-metrics`.",
                example: "When I request GET \"/metrics\" from the scheduler without credentials",
                run: step_fn!(metrics::scheduler_request),
            },
            StepDef {
                name: "metric-value",
                keyword: Keyword::Assertion,
                pattern: concat!(
                    r#"^the (?P<component>API server|scheduler) metric (?P<series>[a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (?:(?P<exists>exists)|is (?P<op>at least|at most|greater than|less than|equal to) (?P<value>-?[0-9]+(?:\.[0-9]+)?|\{\{ ?[A-Za-z_][A-Za-z0-9_]* ?\}\}))"#,
                    timing!(),
                    "$"
                ),
                description: "Scrapes `/metrics` of the API server or the scheduler (`@needs:scheduler-metrics`) and judges a series written as in PromQL, `name{label=\"value\"}`: the sum of every sample of that name carrying those labels, which must exist, or compare with a number (or a remembered `{{ var }}`). Polled with `within N seconds`; other scenarios run at the same time, so compare with \"at least\" rather than \"equal to\".",
                example: "Then the scheduler metric scheduler_pending_pods{queue=\"gated\"} is at least 1 within 10 seconds",
                run: step_fn!(metrics::metric_value),
            },
            StepDef {
                name: "remember-metric",
                keyword: Keyword::Action,
                pattern: r#"^I remember the (?P<component>API server|scheduler) metric (?P<series>[a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) as "(?P<var>[A-Za-z_][A-Za-z0-9_]*)"$"#,
                description: "Keeps the current value of a series (the sum of the samples it matches; 0 when none matches yet, as for a counter nothing incremented) as a template variable, to compare with later.",
                example: "Given I remember the scheduler metric scheduler_schedule_attempts_total{result=\"scheduled\"} as \"scheduled_before\"",
                run: step_fn!(metrics::remember_metric),
            },
            StepDef {
                name: "response-field",
                keyword: Keyword::Assertion,
                pattern: r#"^the last response has "(?P<path>[^"]+)" (?P<op>equal to|not equal to|containing|matching) "(?P<value>(?:[^"\\]|\\.)*)"$"#,
                description: "A JSONPath of the last (JSON) response compares with a value.",
                example: "Then the last response has \"{.items[*].metadata.name}\" equal to \"a b\"",
                run: step_fn!(assertions::response_field),
            },
            StepDef {
                name: "response-header",
                keyword: Keyword::Assertion,
                pattern: r#"^the last response has header "(?P<header>[^"]+)"(?: containing "(?P<value>[^"]*)")?$"#,
                description: "The last response carries a header (containing a text).",
                example: "Then the last response has header \"Content-Type\" containing \"application/json\"",
                run: step_fn!(assertions::response_header),
            },
            StepDef {
                name: "pod-count",
                keyword: Keyword::Assertion,
                pattern: concat!(
                    r#"^there (?:is|are) (?P<count>\d+) (?P<ready>ready )?pods? with label "(?P<sel>[^"]*)"(?: in phase (?P<phase>Pending|Running|Succeeded|Failed|Unknown))?"#, timing!(), "$"
                ),
                description: "Exactly N pods of the scenario namespace match the label selector (and are Ready, and are in the phase given). Pods being deleted are not counted. `within N seconds` waits for it; `for N seconds` requires it on every poll (200 ms).",
                example: "Then there are 3 ready pods with label \"app=web\" within 60 seconds",
                run: step_fn!(workloads::pod_count),
            },
            StepDef {
                name: "track",
                keyword: Keyword::Action,
                pattern: r#"^I track (?P<kind>pods|replicasets) with label "(?P<sel>[^"]*)"$"#,
                description: "Starts a watch of the scenario namespace's pods (or ReplicaSets) matching a label selector that records, after a complete list and then after every change, how many pods are active and ready (for ReplicaSets: the replicas their specs want and those available), for a later `at every moment` check. Pods being deleted or finished are not active.",
                example: "When I track pods with label \"app=web\"",
                run: step_fn!(invariants::track),
            },
            StepDef {
                name: "tracked-bounds",
                keyword: Keyword::Assertion,
                pattern: r#"^at every moment the tracked (?P<kind>pods|replicasets) had (?:at most (?P<max>\d+) (?:active|wanted))?(?: and )?(?:at least (?P<min>\d+) (?:ready|available))?$"#,
                description: "Checks every state the tracked objects went through since tracking started (from the watch, not by sampling): never more than N active pods (or replicas wanted by the ReplicaSets' specs), never fewer than M ready pods (or available replicas). Reports the invariant, the first moment out of bounds with the change (object and resourceVersion) that caused it, each object's part of the totals then, and how long the bound stayed broken.",
                example: "Then at every moment the tracked pods had at least 8 ready",
                run: step_fn!(invariants::tracked_bounds),
            },
            StepDef {
                name: "pod-per-node",
                keyword: Keyword::Assertion,
                pattern: concat!(
                    r#"^there is one (?P<ready>ready )?pod with label "(?P<sel>[^"]*)" on every Ready node"#, timing!(), "$"
                ),
                description: "What a DaemonSet promises: every Ready node without a NoSchedule/NoExecute taint outside `node.kubernetes.io/` runs exactly one (ready) pod of the scenario namespace matching the selector, and no node runs two.",
                example: "Then there is one ready pod with label \"app=agent\" on every Ready node within 60 seconds",
                run: step_fn!(workloads::pod_per_node),
            },
            StepDef {
                name: "count",
                keyword: Keyword::Assertion,
                pattern: concat!(
                    r#"^(?P<count>\d+) "#, kind!(), r#" exists?(?: in namespace "(?P<ns>[^"]+)")?(?: with label "(?P<sel>[^"]*)")?"#, timing!(), "$"
                ),
                description: "Exactly N objects of a kind exist in the namespace (matching a label selector); `within N seconds` eventually, `for N seconds` throughout.",
                example: "Then 2 configmaps exist with label \"app=web\"",
                run: step_fn!(assertions::count),
            },
            StepDef {
                name: "list-size",
                keyword: Keyword::Assertion,
                pattern: r#"^(?P<all>all pages of )?the last list (?:has|hold|holds) (?P<n>\d+) items?$"#,
                description: "The last list page (or all pages of the pagination together) holds exactly N items, none repeated.",
                example: "Then all pages of the last list hold 5 items",
                run: step_fn!(assertions::list_size),
            },
            StepDef {
                name: "list-contains",
                keyword: Keyword::Assertion,
                pattern: r#"^the last list (?P<op>contains|does not contain) "(?P<name>[^"]+)"$"#,
                description: "The last list page includes (or not) an object of that name.",
                example: "Then the last list contains \"settings\"",
                run: step_fn!(assertions::list_contains),
            },
            StepDef {
                name: "list-continue",
                keyword: Keyword::Assertion,
                pattern: r#"^the last list has (?P<which>a|no) continue token$"#,
                description: "The last list page does or does not offer a continue token.",
                example: "Then the last list has no continue token",
                run: step_fn!(assertions::list_continue),
            },
            StepDef {
                name: "server-version",
                keyword: Keyword::Assertion,
                pattern: r#"^the server version is (?P<major>\d+)\.(?P<minor>\d+)$"#,
                description: "GET /version reports this major.minor (gitVersion vMAJOR.MINOR.x).",
                example: "Then the server version is 1.32",
                run: step_fn!(assertions::server_version),
            },
            StepDef {
                name: "watch-sees",
                keyword: Keyword::Assertion,
                pattern: concat!(
                    "^the watch on ", kind!(), r#" sees (?P<events>(?:ADDED|MODIFIED|DELETED|BOOKMARK|ERROR)(?:, (?:ADDED|MODIFIED|DELETED|BOOKMARK|ERROR))*)"#, within!(), "$"
                ),
                description: "The watch started by `I watch ...` delivered exactly this sequence of event types (bookmarks ignored unless listed), with distinct resourceVersions. Waits up to 10 s unless told otherwise.",
                example: "Then the watch on configmaps sees ADDED, MODIFIED, DELETED",
                run: step_fn!(assertions::watch_sees),
            },
            StepDef {
                name: "event",
                keyword: Keyword::Assertion,
                pattern: concat!(
                    r#"^an [Ee]vent with reason "(?P<reason>[^"]+)"(?: and message containing "(?P<msg>(?:[^"\\]|\\.)+)")? exists for "#, kind!(), r#" "(?P<name>[^"]+)""#, within!(), "$"
                ),
                description: "An Event in the scenario namespace names the object with this reason (and message text).",
                example: "Then an event with reason \"FailedScheduling\" exists for pod \"big\" within 30 seconds",
                run: step_fn!(assertions::event_exists),
            },
            StepDef {
                name: "pod-logs",
                keyword: Keyword::Assertion,
                pattern: concat!(
                    r#"^the logs of pod "(?P<name>[^"]+)"(?: in namespace "(?P<ns>[^"]+)")?(?: container "(?P<container>[^"]+)")?(?P<previous> \(previous\))? (?:contain|(?P<neg>do not contain)) "(?P<text>(?:[^"\\]|\\.)+)""#, timing!(), "$"
                ),
                description: "`kubectl logs` of the pod (its only or the named container; `(previous)`: the attempt before the last restart) contains the text, or does not.",
                example: "Then the logs of pod \"crash\" (previous) contain \"exited with code 1\" within 30 seconds",
                run: step_fn!(logs::pod_logs),
            },
            StepDef {
                name: "no-events",
                keyword: Keyword::Assertion,
                pattern: concat!(
                    r#"^there are no [Ee]vents for "#, kind!(), r#" "(?P<name>[^"]+)""#, timing!(), "$"
                ),
                description: "No Event in the scenario namespace names the object; with `for N seconds`, none appears meanwhile (e.g. a pod no scheduler has seen).",
                example: "Then there are no events for pod \"waiting\" for 5 seconds",
                run: step_fn!(assertions::no_events),
            },
            StepDef {
                name: "node-annotate",
                keyword: Keyword::Action,
                pattern: concat!("^I ", try_to!(), r#"annotate node "(?P<node>[^"]+)" with "(?P<key>[^"=]+?)(?:=(?P<value>[^"]*)|(?P<remove>-))"$"#),
                description: "`kubectl annotate node`: `k=v` sets an annotation, `k-` removes it (simulated nodes report conditions from `sim.kubeproof.dev/*` annotations). The annotation is restored after the scenario; mark such scenarios `@serial @needs:node-control`.",
                example: "When I annotate node \"{{ node }}\" with \"sim.kubeproof.dev/memory-pressure=true\"",
                run: step_fn!(nodes_sched::annotate),
            },
            StepDef {
                name: "component-stop",
                keyword: Keyword::Action,
                pattern: r#"^I stop the (?P<component>kube-scheduler|kube-controller-manager)$"#,
                description: "Kills a control-plane component as SIGKILL would (a leader's Lease stays held until it expires). It is started again when the scenario ends if the scenario did not; mark such scenarios `@serial @needs:component-control` (only a cluster the runner started itself offers it).",
                example: "When I stop the kube-scheduler",
                run: step_fn!(chaos::stop),
            },
            StepDef {
                name: "component-start",
                keyword: Keyword::Action,
                pattern: r#"^I start the (?P<component>kube-scheduler|kube-controller-manager) again$"#,
                description: "Starts a component the scenario stopped; it finds the cluster as it is now (level-triggered), not the events it missed.",
                example: "When I start the kube-controller-manager again",
                run: step_fn!(chaos::start),
            },
            StepDef {
                name: "component-restart",
                keyword: Keyword::Action,
                pattern: r#"^I restart the (?P<component>kube-apiserver|kube-scheduler|kube-controller-manager)$"#,
                description: "Kills a component and starts a new instance a second later, as a crash and a restart would; for the API server every connection breaks (watches included) and the step returns once it answers /readyz again. Mark such scenarios `@serial @needs:component-control`.",
                example: "When I restart the kube-apiserver",
                run: step_fn!(chaos::restart),
            },
            StepDef {
                name: "node-count",
                keyword: Keyword::Action,
                pattern: r#"^I remember the number of nodes as "(?P<var>[A-Za-z_][A-Za-z0-9_]*)"$"#,
                description: "Keeps how many Node objects exist, as the scheduler counts them in \"0/N nodes are available\".",
                example: "Given I remember the number of nodes as \"nodes\"",
                run: step_fn!(nodes_sched::remember_node_count),
            },
            StepDef {
                name: "remember-pod-in-phase",
                keyword: Keyword::Action,
                pattern: r#"^I remember the name of a pod with label "(?P<sel>[^"]*)" in phase (?P<phase>Pending|Running|Succeeded|Failed|Unknown) as "(?P<var>[A-Za-z_][A-Za-z0-9_]*)"$"#,
                description: "Keeps the name of one pod of the scenario namespace matching the selector and in the phase given (the first by name; pods being deleted are skipped), e.g. the replica the scheduler could not place.",
                example: "When I remember the name of a pod with label \"app=web\" in phase Pending as \"pending\"",
                run: step_fn!(nodes_sched::remember_pod_in_phase),
            },
            StepDef {
                name: "pod-spread",
                keyword: Keyword::Assertion,
                pattern: concat!(
                    r#"^the pods with label "(?P<sel>[^"]*)" are spread over "(?P<key>[^"]+)" as "(?P<counts>[0-9, ]+)""#, timing!(), "$"
                ),
                description: "The scenario's bound pods matching the selector, counted per value of a node label (topology domain), are exactly these counts in any order; domains without pods count 0 and pods not yet bound or being deleted are left out.",
                example: "Then the pods with label \"app=web\" are spread over \"topology.kubernetes.io/zone\" as \"2, 2, 2\" within 60 seconds",
                run: step_fn!(nodes_sched::spread),
            },
            StepDef {
                name: "service-endpoints",
                keyword: Keyword::Assertion,
                pattern: concat!(
                    r#"^the (?P<api>Endpoints|EndpointSlices) of service "(?P<name>[^"]+)"(?: in namespace "(?P<ns>[^"]+)")? list (?P<which>ready |not-ready )?pods "(?P<pods>[^"]*)""#, timing!(), "$"
                ),
                description: "Exactly these pods (comma-separated; `\"\"` for none) stand behind the Service: in its Endpoints object (`addresses` are ready, `notReadyAddresses` not) or in the EndpointSlices labelled `kubernetes.io/service-name=<service>` (`conditions.ready`). Addresses are named by their targetRef, order ignored. `ready`/`not-ready` narrows to those addresses.",
                example: "Then the EndpointSlices of service \"web\" list ready pods \"a, b\" within 30 seconds",
                run: step_fn!(diagnostics::service_endpoints),
            },
        ]
    })
}

/// The compiled patterns, in table order.
fn regexes() -> &'static [Regex] {
    static RES: OnceLock<Vec<Regex>> = OnceLock::new();
    // The patterns are constants checked by a unit test; a bad one is a build defect.
    RES.get_or_init(|| {
        steps()
            .iter()
            .map(|s| Regex::new(s.pattern).expect("step pattern compiles"))
            .collect()
    })
}

/// The definitions a step line matches (more than one means the grammar is ambiguous).
pub fn matching(ty: StepType, text: &str) -> Vec<&'static StepDef> {
    steps()
        .iter()
        .zip(regexes())
        .filter(|(d, re)| d.keyword.accepts(ty) && re.is_match(text))
        .map(|(d, _)| d)
        .collect()
}

/// Captures of `text` against `def`, templated with the scenario's variables.
fn captures(def: &StepDef, text: &str, world: &KubeWorld) -> Result<StepArgs, StepFailure> {
    let idx = steps()
        .iter()
        .position(|d| std::ptr::eq(d, def))
        .ok_or_else(|| StepFailure::msg("unknown step"))?;
    let re = &regexes()[idx];
    let caps = re
        .captures(text)
        .ok_or_else(|| StepFailure::msg("step text does not match its definition"))?;
    let mut args = StepArgs::default();
    for name in re.capture_names().flatten() {
        if let Some(m) = caps.name(name) {
            // `\"` lets a quoted value hold a quote; other backslashes (regular expressions)
            // are kept as written.
            let raw = m.as_str().replace("\\\"", "\"");
            args.caps.insert(name.to_string(), world.render(&raw)?);
        }
    }
    Ok(args)
}

/// Registers the library with cucumber: every pattern points at [`dispatch`], which finds the
/// definition again from the step text (cucumber step functions are plain `fn` pointers).
pub fn collection() -> cucumber::step::Collection<KubeWorld> {
    let mut c = cucumber::step::Collection::new();
    for (def, re) in steps().iter().zip(regexes()) {
        c = match def.keyword {
            Keyword::Action => c
                .given(None, re.clone(), dispatch)
                .when(None, re.clone(), dispatch),
            Keyword::Assertion => {
                c.given(None, re.clone(), dispatch)
                    .then(None, re.clone(), dispatch)
            }
        };
    }
    c
}

fn dispatch(world: &mut KubeWorld, ctx: cucumber::step::Context) -> LocalBoxFuture<'_, ()> {
    Box::pin(async move {
        let step = ctx.step;
        let outcome = run_step(world, &step).await;
        if let Err(f) = outcome {
            let message = f.message.clone();
            world.failure = Some(kubeproof_report::Failure {
                step: format!("{}{}", step.keyword, step.value),
                step_line: Some(step.position.line as u32),
                message: f.message,
                diff: f.diff,
                events: world.recent_events(10).await,
                logs: logs::excerpts(world).await,
            });
            // resume_unwind, unlike panic!, skips the panic hook: a failing step is an expected
            // outcome reported by the runner, not a crash to print a backtrace for.
            std::panic::resume_unwind(Box::new(message));
        }
    })
}

async fn run_step(world: &mut KubeWorld, step: &cucumber::gherkin::Step) -> StepResult {
    let defs = matching(step.ty, &step.value);
    let [def] = defs.as_slice() else {
        return Err(StepFailure::msg(format!(
            "the step matches {} definitions",
            defs.len()
        )));
    };
    let mut args = captures(def, &step.value, world)?;
    if let Some(doc) = &step.docstring {
        args.doc = Some(world.render(doc)?);
    }
    (def.run)(world, args).await
}

/// A step as documented by `kubeproof steps`.
#[derive(Clone, Debug, Serialize)]
pub struct StepDoc {
    pub name: &'static str,
    /// `Given/When` for actions, `Then/Given` for assertions.
    pub keywords: &'static str,
    pub pattern: &'static str,
    pub description: &'static str,
    pub example: &'static str,
}

/// The step catalogue, in table order.
pub fn catalogue() -> Vec<StepDoc> {
    steps()
        .iter()
        .map(|s| StepDoc {
            name: s.name,
            keywords: match s.keyword {
                Keyword::Action => "Given/When",
                Keyword::Assertion => "Then/Given",
            },
            pattern: s.pattern,
            description: s.description,
            example: s.example,
        })
        .collect()
}

pub fn catalogue_json() -> String {
    serde_json::to_string_pretty(&catalogue()).unwrap_or_else(|_| "[]".into())
}

pub fn catalogue_markdown() -> String {
    let mut out = String::from("# kubeproof steps\n\nQuoted values may contain `\\\"` (an escaped quote). Template variables: `{{ namespace }}` (the scenario's namespace), `{{ suffix }}` (random, per scenario) and any value a step remembered. Add `within N seconds` to Then steps that must eventually hold.\n");
    for d in catalogue() {
        out.push_str(&format!(
            "\n## {} ({})\n\n{}\n\nPattern: `{}`\n\n```gherkin\n{}\n```\n",
            d.name, d.keywords, d.description, d.pattern, d.example
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only(ty: StepType, text: &str) -> &'static str {
        let m = matching(ty, text);
        assert_eq!(
            m.len(),
            1,
            "{text:?} matched {:?}",
            m.iter().map(|d| d.name).collect::<Vec<_>>()
        );
        m[0].name
    }

    #[test]
    fn every_pattern_compiles_and_names_are_unique() {
        assert_eq!(regexes().len(), steps().len());
        let mut names: Vec<_> = steps().iter().map(|s| s.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), steps().len());
    }

    #[test]
    fn every_example_matches_exactly_its_own_step() {
        for s in steps() {
            let first_line = s.example.lines().next().unwrap();
            let (ty, text) = if let Some(t) = first_line.strip_prefix("Given ") {
                (StepType::Given, t)
            } else if let Some(t) = first_line.strip_prefix("When ") {
                (StepType::When, t)
            } else {
                (StepType::Then, first_line.strip_prefix("Then ").unwrap())
            };
            assert_eq!(only(ty, text), s.name, "example of {}", s.name);
        }
    }

    #[test]
    fn grammar_variants_resolve_to_one_step() {
        assert_eq!(
            only(StepType::When, "I try to create with dry run:"),
            "manifest"
        );
        assert_eq!(
            only(StepType::When, "I create with field validation Strict:"),
            "manifest"
        );
        assert_eq!(
            only(StepType::When, "I apply as \"alice\" with force:"),
            "manifest"
        );
        assert_eq!(only(StepType::Given, "I apply:"), "manifest");
        assert_eq!(
            only(
                StepType::When,
                "I delete configmap \"a\" in namespace \"{{ other }}\" with grace period 0"
            ),
            "delete"
        );
        assert_eq!(
            only(
                StepType::Then,
                "configmap \"a\" in namespace \"x\" exists within 5 seconds"
            ),
            "exists"
        );
        assert_eq!(
            only(
                StepType::Then,
                "3 configmaps exist with label \"app=web\" within 5 seconds"
            ),
            "count"
        );
        assert_eq!(only(StepType::Then, "1 configmap exists"), "count");
        assert_eq!(
            only(
                StepType::Then,
                "deployment \"web\" has \"{.spec.replicas}\" equal to \"3\" for 2.5 seconds"
            ),
            "field"
        );
        assert!(matching(
            StepType::Then,
            "configmap \"a\" exists within 5 seconds for 5 seconds"
        )
        .is_empty());
        assert_eq!(
            only(StepType::Then, "configmap \"a\" matches for 5 seconds:"),
            "matches"
        );
        assert_eq!(
            only(
                StepType::Then,
                "there is 1 pod with label \"app=web\" in phase Pending for 3 seconds"
            ),
            "pod-count"
        );
        assert_eq!(
            only(
                StepType::Then,
                "an Event with reason \"Killing\" exists for pod \"p\""
            ),
            "event"
        );
        for (text, name) in [
            ("I create as user \"alice\":", "manifest"),
            ("I try to apply as user \"alice\" in group \"dev\" as \"mgr\" with force:", "manifest"),
            ("I try to delete configmap \"a\" as user \"bob\" in groups \"a,b\" with grace period 0", "delete"),
            ("I try to list configmaps in namespace \"x\" as user \"bob\" with limit 2", "list"),
            ("I try to patch configmap \"a\" as user \"bob\" with merge patch:", "patch"),
            ("I try to scale deployment \"web\" as user \"bob\" to 3", "scale"),
            ("I undo the rollout of deployment \"web\" to revision 2", "rollout-undo"),
            ("I restart the rollout of statefulset \"db\"", "rollout"),
            ("I remove taint \"dedicated\" from node \"n\"", "taint"),
            ("I label node \"n\" with \"team-a-\"", "node-label"),
            ("I remember the name of a Ready node other than \"{{ node }}\" as \"other\"", "remember-node"),
            ("I remember the name of a pod with label \"app=web\" as \"p\"", "remember-pod"),
        ] {
            assert_eq!(only(StepType::When, text), name, "{text}");
        }
        let text =
            r#"I try to get configmap "a" in namespace "x" as user "bob" in groups "dev, ops""#;
        let def = matching(StepType::When, text)[0];
        let args = captures(def, text, &KubeWorld::default()).unwrap();
        assert_eq!(args.get("ns"), Some("x"));
        let id = args.identity().unwrap();
        assert_eq!((id.user.as_str(), id.groups.len()), ("bob", 2));
        let text = r#"I label node "n" with "team-a-""#;
        let args = captures(
            matching(StepType::When, text)[0],
            text,
            &KubeWorld::default(),
        )
        .unwrap();
        assert_eq!(
            (args.get("key"), args.get("remove")),
            (Some("team-a"), Some("-"))
        );
        let text = r#"I label node "n" with "team-a=""#;
        let args = captures(
            matching(StepType::When, text)[0],
            text,
            &KubeWorld::default(),
        )
        .unwrap();
        assert_eq!(
            (args.get("key"), args.get("remove")),
            (Some("team-a"), None)
        );
        assert_eq!(
            only(
                StepType::Then,
                "the watch on configmaps sees ADDED, DELETED within 5 seconds"
            ),
            "watch-sees"
        );
        assert_eq!(
            only(StepType::Then, "the last list has 2 items"),
            "list-size"
        );
        let escaped =
            r#"the last request failed with code 400 and message containing "field \"x\"""#;
        assert_eq!(only(StepType::Then, escaped), "last-failed");
        let def = matching(StepType::Then, escaped)[0];
        let args = captures(def, escaped, &KubeWorld::default()).unwrap();
        assert_eq!(args.get("msg"), Some("field \"x\""));
        assert!(
            matching(StepType::Then, "I create:").is_empty(),
            "actions are not Then steps"
        );
        assert!(matching(StepType::When, "the last request succeeded").is_empty());
        assert!(matching(StepType::When, "I frobnicate").is_empty());
        assert_eq!(
            only(StepType::Then, "w{{ suffix }}s.kubeproof.dev \"a\" exists"),
            "exists"
        );
        assert_eq!(
            only(
                StepType::Then,
                "the last response matches \"a_total\\{[^}]*code=\""
            ),
            "response-body"
        );
    }

    #[test]
    fn catalogue_documents_every_step() {
        let md = catalogue_markdown();
        for s in steps() {
            assert!(md.contains(&format!("## {} (", s.name)));
        }
        let json: serde_json::Value = serde_json::from_str(&catalogue_json()).unwrap();
        assert_eq!(json.as_array().unwrap().len(), steps().len());
    }
}
