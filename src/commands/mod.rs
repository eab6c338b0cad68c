pub mod bench;
pub mod bench_auth;
pub mod bench_scheduler;
pub mod cluster;
pub mod conformance;
pub mod run;
