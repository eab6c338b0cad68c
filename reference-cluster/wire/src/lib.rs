//! Everything of the reference cluster's API server that reads untrusted request bytes before
//! authorization: request bodies ([`body`]: JSON, YAML and Kubernetes [`protobuf`]), request
//! paths and queries ([`request`]), bearer tokens before their signature is checked ([`token`]).
//!
//! It is its own crate, with few dependencies, so that the fuzz target (`fuzz/` at the
//! repository root) compiles only this with coverage instrumentation; `kubeproof-refcluster`
//! re-exports it under `apiserver::{object, protobuf, request}`.

pub mod body;
pub mod protobuf;
pub mod request;
pub mod token;

pub use body::{decode, BodyError};
