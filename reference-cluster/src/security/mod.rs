//! The security machinery of the reference cluster, as pure library modules the API server's
//! request pipeline calls: who is asking ([`authn`]), may they ([`rbac`], and for kubelets the
//! [`node_authorizer`]), what the built-in admission plugins and admission webhooks do to the
//! object ([`admission`], [`webhook`]),
//! what is written to the audit log ([`audit`]), how Secrets are stored ([`encryption`]),
//! upstream's default roles ([`bootstrap`]) and API Priority and Fairness ([`flowcontrol`]).
//!
//! Everything here works on `serde_json::Value` objects and plain Rust types so it can be tested
//! without a running server; the API server owns the storage lookups and hands them in through
//! small traits and callbacks.

pub mod admission;
pub mod audit;
pub mod authn;
pub mod authorizer;
pub mod bootstrap;
pub mod encryption;
pub mod flowcontrol;
pub mod node_authorizer;
pub mod rbac;
pub mod webhook;

mod text;
pub mod user;

pub(crate) use text::go_quote;

pub use user::UserInfo;
