pub mod bench;
pub mod cluster;
pub mod conformance;
pub mod run;
