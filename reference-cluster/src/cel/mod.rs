//! CEL as Kubernetes 1.32 evaluates it, for CRD validation rules (`x-kubernetes-validations`)
//! and ValidatingAdmissionPolicy expressions: the `cel` interpreter with the Kubernetes
//! libraries it lacks, JSON values converted the way the API server converts them, and a light
//! static check in place of cel-go's type checker.
//!
//! Not covered: cost estimation and runtime cost limits; evaluating the `authorizer`
//! variable (policies using it compile, their evaluation is an error); evaluating
//! `auditAnnotations` (compiled only); the URL, IP/CIDR and format libraries; equality of
//! `set`/`map` lists that ignores order.

mod check;
mod library;
mod program;
mod types;
mod value;

pub mod policy;
pub mod rules;

pub use policy::{
    compile_policy, denial_message, reason_code, CompiledPolicy, FailurePolicy, PolicyInput,
    PolicyOutcome,
};
