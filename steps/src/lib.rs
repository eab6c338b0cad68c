//! kubeproof's conformance suite engine: the cucumber World ([`world::KubeWorld`]), the step
//! library ([`library`]), and the runner ([`runner::run`]) shared by `cargo test --features
//! conformance` and `kubeproof conformance`.

pub mod api;
pub mod jsonpath;
pub mod kinds;
pub mod library;
pub mod matching;
pub mod tags;
pub mod template;
pub mod watch;
pub mod world;

pub use world::KubeWorld;
pub mod capabilities;
mod collector;
pub mod control;
pub mod features;
pub mod runner;
