//! ValidatingAdmissionPolicy (`admissionregistration.k8s.io/v1`) expressions: compiling a
//! policy's `variables`, `matchConditions`, `validations` (with `messageExpression`) and
//! `auditAnnotations`, and evaluating them over an admission request as JSON values, as
//! `k8s.io/apiserver/pkg/admission/plugin/policy/validating` does. Matching the policy and its
//! bindings to requests, params lookup and failure-policy handling are the caller's.

use std::sync::Arc;

use cel::common::traits::Indexer;
use cel::common::types::{CelString, MAP_TYPE};
use cel::common::value::{CowVal, Val};
use cel::{ExecutionError, Program, Value as Cel};
use serde_json::Value;

use super::program::{self, bind, error_text};
use super::types::Ty;
use super::value::from_json;

/// The failure policy of a policy: what an evaluation error means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailurePolicy {
    Fail,
    Ignore,
}

struct Validation {
    expression: String,
    program: Arc<Program>,
    message: String,
    message_expression: Option<Arc<Program>>,
    reason: String,
}

struct MatchCondition {
    expression: String,
    program: Arc<Program>,
}

/// A policy whose expressions all compiled.
pub struct CompiledPolicy {
    name: String,
    failure_policy: FailurePolicy,
    has_params: bool,
    variables: Vec<(String, Arc<Program>)>,
    match_conditions: Vec<MatchCondition>,
    validations: Vec<Validation>,
}

/// What the expressions see. `request` is the `admission.k8s.io/v1` AdmissionRequest as JSON
/// (`kind`, `resource`, `subResource`, `requestKind`, `requestResource`,
/// `requestSubResource`, `name`, `namespace`, `operation`, `userInfo`, `dryRun`, `options`);
/// `object` is absent on DELETE, `old_object` on CREATE, `namespace_object` for cluster-scoped
/// requests.
pub struct PolicyInput<'a> {
    pub object: Option<&'a Value>,
    pub old_object: Option<&'a Value>,
    pub request: &'a Value,
    pub params: Option<&'a Value>,
    pub namespace_object: Option<&'a Value>,
}

/// The verdict of one validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyOutcome {
    Admit,
    /// `reason` is a `metav1.StatusReason` (`Invalid`, `Forbidden`, `Unauthorized`,
    /// `RequestEntityTooLarge`), `code` its HTTP status.
    Deny {
        message: String,
        reason: String,
        code: u16,
    },
    /// The expression failed to evaluate; the caller applies the failure policy.
    Error(String),
}

/// The HTTP status upstream answers a denial with.
pub fn reason_code(reason: &str) -> u16 {
    match reason {
        "Forbidden" => 403,
        "Unauthorized" => 401,
        "RequestEntityTooLarge" => 413,
        _ => 422,
    }
}

/// The message of the error a denial becomes: `admission.NewForbidden` names the request's
/// group-resource (`deployments.apps`, `pods`, with `/subresource` for subresources) and
/// object name.
pub fn denial_message(
    group_resource: &str,
    name: &str,
    policy: &str,
    binding: Option<&str>,
    message: &str,
) -> String {
    let denied = match binding {
        Some(b) => {
            format!(
                "ValidatingAdmissionPolicy '{policy}' with binding '{b}' denied request: {message}"
            )
        }
        None => format!("ValidatingAdmissionPolicy '{policy}' denied request: {message}"),
    };
    format!("{group_resource} \"{name}\" is forbidden: {denied}")
}

fn gvk() -> Ty {
    Ty::object([
        ("group", Ty::String),
        ("version", Ty::String),
        ("kind", Ty::String),
    ])
}

fn gvr() -> Ty {
    Ty::object([
        ("group", Ty::String),
        ("version", Ty::String),
        ("resource", Ty::String),
    ])
}

/// `admission.k8s.io/v1 AdmissionRequest`, so a misspelt `request` field fails to compile.
fn request_ty() -> Ty {
    Ty::object([
        ("uid", Ty::String),
        ("kind", gvk()),
        ("resource", gvr()),
        ("subResource", Ty::String),
        ("requestKind", gvk()),
        ("requestResource", gvr()),
        ("requestSubResource", Ty::String),
        ("name", Ty::String),
        ("namespace", Ty::String),
        ("operation", Ty::String),
        (
            "userInfo",
            Ty::object([
                ("username", Ty::String),
                ("uid", Ty::String),
                ("groups", Ty::list(Ty::String)),
                ("extra", Ty::map(Ty::String, Ty::list(Ty::String))),
            ]),
        ),
        ("object", Ty::Dyn),
        ("oldObject", Ty::Dyn),
        ("dryRun", Ty::Bool),
        ("options", Ty::Dyn),
    ])
}

fn declarations(has_params: bool, variables: &[(String, Ty)]) -> Vec<(String, Ty)> {
    let mut d = vec![
        ("object".to_string(), Ty::Dyn),
        ("oldObject".to_string(), Ty::Dyn),
        ("request".to_string(), request_ty()),
        ("namespaceObject".to_string(), Ty::Dyn),
        ("authorizer".to_string(), Ty::Dyn),
        (
            "variables".to_string(),
            Ty::Object(Arc::new(variables.iter().cloned().collect())),
        ),
    ];
    if has_params {
        d.push(("params".to_string(), Ty::Dyn));
    }
    d
}

fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn items<'a>(spec: &'a Value, key: &str) -> &'a [Value] {
    spec.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// Go's `%q`, as field errors quote expressions.
fn quoted(s: &str) -> String {
    format!("{s:?}")
}

/// Compiles every expression of the policy; the errors name the field they are at, as
/// policy validation reports them.
pub fn compile_policy(policy: &Value) -> Result<CompiledPolicy, Vec<String>> {
    let spec = policy.get("spec").unwrap_or(&Value::Null);
    let has_params = spec.get("paramKind").is_some_and(|p| !p.is_null());
    let failure_policy = match str_field(spec, "failurePolicy") {
        "Ignore" => FailurePolicy::Ignore,
        _ => FailurePolicy::Fail,
    };
    let mut errors = Vec::new();
    let mut compile = |field: String, source: &str, declared: &[(String, Ty)], want: &[Ty]| {
        if source.trim().is_empty() {
            errors.push(format!(
                "{field}: Required value: expression is not specified"
            ));
            return None;
        }
        match program::compile(source, declared) {
            Err(issues) => {
                errors.push(format!(
                    "{field}: Invalid value: {}: compilation failed: {issues}",
                    quoted(source)
                ));
                None
            }
            Ok(c) if !c.ty.is_dyn() && !want.contains(&c.ty) => {
                let must = match want {
                    [one] => format!("must evaluate to {one}"),
                    many => format!(
                        "must evaluate to one of [{}]",
                        many.iter().map(Ty::to_string).collect::<Vec<_>>().join(" ")
                    ),
                };
                errors.push(format!(
                    "{field}: Invalid value: {}: {must}",
                    quoted(source)
                ));
                None
            }
            Ok(c) => Some((c.program, c.ty)),
        }
    };

    let mut variable_types: Vec<(String, Ty)> = Vec::new();
    let mut variables = Vec::new();
    for (i, v) in items(spec, "variables").iter().enumerate() {
        let name = str_field(v, "name").to_string();
        let declared = declarations(has_params, &variable_types);
        let compiled = compile(
            format!("spec.variables[{i}].expression"),
            str_field(v, "expression"),
            &declared,
            &[],
        );
        // A variable that failed to compile is still declared, so later uses of it are not
        // reported twice.
        let ty = compiled.as_ref().map(|c| c.1.clone()).unwrap_or(Ty::Dyn);
        variable_types.push((name.clone(), ty));
        if let Some((program, _)) = compiled {
            variables.push((name, program));
        }
    }
    let declared = declarations(has_params, &variable_types);

    let mut match_conditions = Vec::new();
    for (i, m) in items(spec, "matchConditions").iter().enumerate() {
        let expression = str_field(m, "expression");
        if let Some((program, _)) = compile(
            format!("spec.matchConditions[{i}].expression"),
            expression,
            &declared,
            &[Ty::Bool],
        ) {
            match_conditions.push(MatchCondition {
                expression: expression.to_string(),
                program,
            });
        }
    }

    let mut validations = Vec::new();
    for (i, v) in items(spec, "validations").iter().enumerate() {
        let expression = str_field(v, "expression");
        let compiled = compile(
            format!("spec.validations[{i}].expression"),
            expression,
            &declared,
            &[Ty::Bool],
        );
        let message_expression = match str_field(v, "messageExpression") {
            "" => None,
            src => compile(
                format!("spec.validations[{i}].messageExpression"),
                src,
                &declared,
                &[Ty::String],
            )
            .map(|(p, _)| p),
        };
        if let Some((program, _)) = compiled {
            validations.push(Validation {
                expression: expression.to_string(),
                program,
                message: str_field(v, "message").to_string(),
                message_expression,
                reason: match str_field(v, "reason") {
                    "" => "Invalid".to_string(),
                    r => r.to_string(),
                },
            });
        }
    }

    for (i, a) in items(spec, "auditAnnotations").iter().enumerate() {
        compile(
            format!("spec.auditAnnotations[{i}].valueExpression"),
            str_field(a, "valueExpression"),
            &declared,
            &[Ty::String, Ty::Null],
        );
    }

    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(CompiledPolicy {
        name: str_field(policy.get("metadata").unwrap_or(&Value::Null), "name").to_string(),
        failure_policy,
        has_params,
        variables,
        match_conditions,
        validations,
    })
}

/// `variables`: each composited variable's value, or why it failed, which only surfaces
/// when an expression reads that variable (upstream evaluates them lazily).
#[derive(Clone, Debug)]
struct Variables(Arc<Vec<(String, Result<Cel, String>)>>);

impl Val for Variables {
    fn get_type(&self) -> &cel::common::types::Type {
        &MAP_TYPE
    }

    fn cel_type() -> &'static cel::common::types::Type {
        &MAP_TYPE
    }

    fn as_indexer<'b, 'w>(&'b self) -> Option<&'b (dyn Indexer + 'w)>
    where
        Self: 'w,
    {
        Some(self)
    }

    fn into_indexer<'w>(self: Box<Self>) -> Option<Box<dyn Indexer + 'w>>
    where
        Self: 'w,
    {
        Some(self)
    }

    fn clone_as_boxed<'v>(&self) -> Box<dyn Val + 'v>
    where
        Self: 'v,
    {
        Box::new(self.clone())
    }
}

impl Indexer for Variables {
    fn get<'b, 'v>(&'b self, idx: &dyn Val) -> Result<CowVal<'b, 'v>, ExecutionError>
    where
        Self: 'v,
    {
        let name = idx
            .downcast_ref::<CelString>()
            .map(|s| s.inner().to_string())
            .unwrap_or_default();
        match self.0.iter().find(|(n, _)| *n == name) {
            Some((_, Ok(v))) => Ok(CowVal::from(bind(v.clone()) as Box<dyn Val + 'v>)),
            Some((_, Err(e))) => Err(ExecutionError::function_error("", e)),
            None => Err(ExecutionError::no_such_key(&name)),
        }
    }

    fn steal<'v>(self: Box<Self>, idx: &dyn Val) -> Result<Box<dyn Val + 'v>, ExecutionError>
    where
        Self: 'v,
    {
        self.get(idx).map(CowVal::into_owned)
    }
}

/// The inputs as CEL values, bound afresh for each expression.
struct Activation {
    values: Vec<(&'static str, Cel)>,
    variables: Variables,
}

impl Activation {
    fn bindings(&self) -> Vec<(&'static str, Box<dyn Val + 'static>)> {
        let mut out: Vec<(&'static str, Box<dyn Val + 'static>)> = self
            .values
            .iter()
            .map(|(n, v)| (*n, bind(v.clone())))
            .collect();
        out.push(("variables", Box::new(self.variables.clone())));
        out
    }

    fn run(&self, program: &Program) -> Result<Cel, ExecutionError> {
        program::run(program, self.bindings())
    }
}

fn failure_text(expression: &str, e: &ExecutionError) -> String {
    let detail = match e {
        ExecutionError::UndeclaredReference(name) if name.as_str() == "authorizer" => {
            "the authorizer is not supported by this cluster".to_string()
        }
        other => error_text(other),
    };
    format!("expression '{expression}' resulted in error: {detail}")
}

impl CompiledPolicy {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn failure_policy(&self) -> FailurePolicy {
        self.failure_policy
    }

    fn activation(&self, input: &PolicyInput) -> Activation {
        let opt = |v: Option<&Value>| v.map(from_json).unwrap_or(Cel::Null);
        let mut values = vec![
            ("object", opt(input.object)),
            ("oldObject", opt(input.old_object)),
            ("request", from_json(input.request)),
            ("namespaceObject", opt(input.namespace_object)),
        ];
        if self.has_params {
            values.push(("params", opt(input.params)));
        }
        let mut activation = Activation {
            values,
            variables: Variables(Arc::new(Vec::new())),
        };
        let mut computed: Vec<(String, Result<Cel, String>)> = Vec::new();
        for (name, program) in &self.variables {
            let result = activation.run(program).map_err(|e| {
                format!(
                    "composited variable \"{name}\" fails to evaluate: {}",
                    error_text(&e)
                )
            });
            computed.push((name.clone(), result));
            activation.variables = Variables(Arc::new(computed.clone()));
        }
        activation
    }

    /// Whether the request matches the policy's `matchConditions`: any condition false is a
    /// non-match, even if others failed; otherwise a failed condition is an error.
    pub fn matches_conditions(&self, input: &PolicyInput) -> Result<bool, String> {
        if self.match_conditions.is_empty() {
            return Ok(true);
        }
        let activation = self.activation(input);
        let mut errors = Vec::new();
        for m in &self.match_conditions {
            match activation.run(&m.program) {
                Ok(Cel::Bool(false)) => return Ok(false),
                Ok(Cel::Bool(true)) => {}
                Ok(other) => errors.push(format!(
                    "expression '{}' resulted in error: expected a bool, got {}",
                    m.expression,
                    other.type_of()
                )),
                Err(e) => errors.push(failure_text(&m.expression, &e)),
            }
        }
        match errors.len() {
            0 => Ok(true),
            1 => Err(errors.remove(0)),
            _ => Err(format!("[{}]", errors.join(", "))),
        }
    }

    /// One outcome per validation, in order.
    pub fn evaluate(&self, input: &PolicyInput) -> Vec<PolicyOutcome> {
        let activation = self.activation(input);
        self.validations
            .iter()
            .map(|v| match activation.run(&v.program) {
                Err(e) => PolicyOutcome::Error(failure_text(&v.expression, &e)),
                Ok(Cel::Bool(true)) => PolicyOutcome::Admit,
                Ok(_) => PolicyOutcome::Deny {
                    message: denial_detail(v, &activation),
                    code: reason_code(&v.reason),
                    reason: v.reason.clone(),
                },
            })
            .collect()
    }
}

/// `messageExpression` when it yields a usable string, else `message`, else the expression.
fn denial_detail(v: &Validation, activation: &Activation) -> String {
    let from_expression = v
        .message_expression
        .as_ref()
        .and_then(|p| match activation.run(p) {
            Ok(Cel::String(s)) => Some(s.trim().to_string()),
            _ => None,
        })
        .filter(|m| !m.is_empty() && !m.contains('\n') && m.len() <= 5 * 1024);
    if let Some(m) = from_expression {
        return m;
    }
    if !v.message.is_empty() {
        return v.message.trim().to_string();
    }
    format!("failed expression: {}", v.expression.trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(spec: Value) -> Value {
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": "replica-limit"}, "spec": spec})
    }

    fn request(op: &str) -> Value {
        json!({"kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "name": "web", "namespace": "prod", "operation": op,
            "userInfo": {"username": "alice", "groups": ["devs", "system:authenticated"]}})
    }

    fn deployment(replicas: i64) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "prod", "labels": {"env": "prod"}},
            "spec": {"replicas": replicas}})
    }

    fn input<'a>(object: Option<&'a Value>, request: &'a Value) -> PolicyInput<'a> {
        PolicyInput {
            object,
            old_object: None,
            request,
            params: None,
            namespace_object: None,
        }
    }

    #[test]
    fn validations_admit_and_deny_with_upstream_messages() {
        let p = compile_policy(&policy(json!({
            "validations": [
                {"expression": "object.spec.replicas <= 5"},
                {"expression": "object.spec.replicas % 2 == 1", "message": "replicas must be odd", "reason": "Forbidden"},
                {"expression": "object.spec.replicas < 3",
                 "messageExpression": "'too many: ' + string(object.spec.replicas)"}]})))
        .unwrap();
        assert_eq!(p.name(), "replica-limit");
        assert_eq!(p.failure_policy(), FailurePolicy::Fail);
        let req = request("CREATE");
        let small = deployment(1);
        assert_eq!(
            p.evaluate(&input(Some(&small), &req)),
            [
                PolicyOutcome::Admit,
                PolicyOutcome::Admit,
                PolicyOutcome::Admit
            ]
        );
        let big = deployment(6);
        assert_eq!(
            p.evaluate(&input(Some(&big), &req)),
            [
                PolicyOutcome::Deny {
                    message: "failed expression: object.spec.replicas <= 5".into(),
                    reason: "Invalid".into(),
                    code: 422
                },
                PolicyOutcome::Deny {
                    message: "replicas must be odd".into(),
                    reason: "Forbidden".into(),
                    code: 403
                },
                PolicyOutcome::Deny {
                    message: "too many: 6".into(),
                    reason: "Invalid".into(),
                    code: 422
                },
            ]
        );
    }

    #[test]
    fn failing_message_expression_falls_back() {
        let p = compile_policy(&policy(json!({"validations": [
            {"expression": "false", "messageExpression": "object.missing", "message": "fallback"},
            {"expression": "false", "messageExpression": "'  '"}]})))
        .unwrap();
        let req = request("CREATE");
        let obj = deployment(1);
        let out = p.evaluate(&input(Some(&obj), &req));
        assert!(matches!(&out[0], PolicyOutcome::Deny { message, .. } if message == "fallback"));
        assert!(
            matches!(&out[1], PolicyOutcome::Deny { message, .. } if message == "failed expression: false")
        );
    }

    #[test]
    fn evaluation_errors_are_reported_for_the_failure_policy() {
        let p = compile_policy(&policy(json!({"failurePolicy": "Ignore",
            "validations": [{"expression": "object.spec.paused == true"}]})))
        .unwrap();
        assert_eq!(p.failure_policy(), FailurePolicy::Ignore);
        let req = request("DELETE");
        assert_eq!(
            p.evaluate(&input(None, &req)),
            [PolicyOutcome::Error(
                "expression 'object.spec.paused == true' resulted in error: no such overload: _._ applied to (null_type, string)".into()
            )]
        );
    }

    #[test]
    fn request_params_and_namespace_are_visible() {
        let p = compile_policy(&policy(json!({
            "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
            "validations": [
                {"expression": "request.operation == 'CREATE' && request.userInfo.username == 'alice'"},
                {"expression": "object.spec.replicas <= int(params.data.max)"},
                {"expression": "namespaceObject.metadata.labels.tier == 'gold'"},
                {"expression": "'devs' in request.userInfo.groups && request.kind.kind == 'Deployment'"}]})))
        .unwrap();
        let req = request("CREATE");
        let obj = deployment(4);
        let params = json!({"data": {"max": "3"}});
        let ns = json!({"metadata": {"name": "prod", "labels": {"tier": "gold"}}});
        let out = p.evaluate(&PolicyInput {
            object: Some(&obj),
            old_object: None,
            request: &req,
            params: Some(&params),
            namespace_object: Some(&ns),
        });
        assert_eq!(out[0], PolicyOutcome::Admit);
        assert!(matches!(out[1], PolicyOutcome::Deny { .. }));
        assert_eq!(out[2], PolicyOutcome::Admit);
        assert_eq!(out[3], PolicyOutcome::Admit);
    }

    #[test]
    fn variables_compose_and_fail_lazily() {
        let p = compile_policy(&policy(json!({
            "variables": [
                {"name": "replicas", "expression": "object.spec.replicas"},
                {"name": "doubled", "expression": "variables.replicas * 2"},
                {"name": "broken", "expression": "object.spec.missing"}],
            "validations": [
                {"expression": "variables.doubled <= 10"},
                {"expression": "variables.broken == 1"}]})))
        .unwrap();
        let req = request("UPDATE");
        let obj = deployment(6);
        let out = p.evaluate(&input(Some(&obj), &req));
        assert!(matches!(&out[0], PolicyOutcome::Deny { message, .. }
            if message == "failed expression: variables.doubled <= 10"));
        assert_eq!(
            out[1],
            PolicyOutcome::Error(
                "expression 'variables.broken == 1' resulted in error: composited variable \"broken\" fails to evaluate: no such key: missing".into()
            )
        );
    }

    #[test]
    fn match_conditions_false_wins_over_errors() {
        let p = compile_policy(&policy(json!({
            "matchConditions": [
                {"name": "not-system", "expression": "!request.userInfo.username.startsWith('system:')"},
                {"name": "labelled", "expression": "object.metadata.labels.env == 'prod'"}],
            "validations": [{"expression": "true"}]})))
        .unwrap();
        let req = request("CREATE");
        let obj = deployment(1);
        assert_eq!(p.matches_conditions(&input(Some(&obj), &req)), Ok(true));
        let mut unlabelled = deployment(1);
        unlabelled["metadata"]["labels"] = json!({"env": "dev"});
        assert_eq!(
            p.matches_conditions(&input(Some(&unlabelled), &req)),
            Ok(false)
        );
        let mut system = request("CREATE");
        system["userInfo"]["username"] = json!("system:admin");
        assert_eq!(p.matches_conditions(&input(None, &system)), Ok(false));
        let err = p.matches_conditions(&input(None, &req)).unwrap_err();
        assert!(
            err.starts_with(
                "expression 'object.metadata.labels.env == 'prod'' resulted in error: "
            ),
            "{err}"
        );
    }

    #[test]
    fn compile_errors_name_their_fields() {
        let errs = compile_policy(&policy(json!({
            "variables": [{"name": "v", "expression": "object.x +"}],
            "matchConditions": [{"name": "m", "expression": "'not a bool'"}],
            "validations": [
                {"expression": "params.max > 1"},
                {"expression": "request.operaton == 'CREATE'"},
                {"expression": "true", "messageExpression": "1"},
                {"expression": ""}]})))
        .err()
        .unwrap();
        assert_eq!(errs.len(), 6, "{errs:#?}");
        assert!(errs[0].starts_with("spec.variables[0].expression: Invalid value: \"object.x +\": compilation failed: ERROR: <input>:1:11: Syntax error:"), "{}", errs[0]);
        assert_eq!(errs[1], "spec.matchConditions[0].expression: Invalid value: \"'not a bool'\": must evaluate to bool");
        assert_eq!(errs[2], "spec.validations[0].expression: Invalid value: \"params.max > 1\": compilation failed: ERROR: <input>:1:1: undeclared reference to 'params' (in container '')\n | params.max > 1\n | ^");
        assert!(
            errs[3].ends_with(
                "undefined field 'operaton'\n | request.operaton == 'CREATE'\n | .......^"
            ),
            "{}",
            errs[3]
        );
        assert_eq!(
            errs[4],
            "spec.validations[2].messageExpression: Invalid value: \"1\": must evaluate to string"
        );
        assert_eq!(
            errs[5],
            "spec.validations[3].expression: Required value: expression is not specified"
        );
    }

    #[test]
    fn authorizer_compiles_but_evaluating_it_is_an_error() {
        let p = compile_policy(&policy(json!({"validations": [{"expression":
            "authorizer.group('apps').resource('deployments').check('create').allowed()"}]})))
        .unwrap();
        let req = request("CREATE");
        let out = p.evaluate(&input(None, &req));
        assert!(
            matches!(&out[0], PolicyOutcome::Error(m) if m.ends_with("resulted in error: the authorizer is not supported by this cluster")),
            "{out:?}"
        );
    }

    #[test]
    fn denial_message_and_codes() {
        assert_eq!(
            denial_message("deployments.apps", "web", "replica-limit", Some("prod-binding"), "failed expression: x"),
            "deployments.apps \"web\" is forbidden: ValidatingAdmissionPolicy 'replica-limit' with binding 'prod-binding' denied request: failed expression: x"
        );
        assert_eq!(
            denial_message("pods", "p", "pol", None, "no"),
            "pods \"p\" is forbidden: ValidatingAdmissionPolicy 'pol' denied request: no"
        );
        assert_eq!(
            [
                reason_code("Invalid"),
                reason_code("Forbidden"),
                reason_code("Unauthorized"),
                reason_code("RequestEntityTooLarge"),
                reason_code("")
            ],
            [422, 403, 401, 413, 422]
        );
    }

    #[test]
    fn odd_policies_never_panic() {
        for p in [
            json!(null),
            json!({"spec": []}),
            json!({"spec": {"validations": [null, 1, {"expression": 5}]}}),
            json!({"spec": {"variables": [{"expression": "1"}], "validations": [{"expression": "variables[''] == 1"}]}}),
        ] {
            if let Ok(c) = compile_policy(&p) {
                let req = json!(null);
                let _ = c.evaluate(&input(None, &req));
                let _ = c.matches_conditions(&input(None, &req));
            }
        }
    }
}
