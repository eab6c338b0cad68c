//! The bundled Kubernetes 1.32 reference cluster of kubeproof: API server, storage and
//! (in later parts) scheduler, controllers and node agents. Library first; the `kubeproof
//! cluster` commands call it.

pub mod apiserver;
pub mod cel;
pub mod cluster;
pub mod control;
pub mod controllers;
pub mod faults;
pub mod leaderelection;
pub mod node;
pub mod openapi;
pub mod patch;
pub mod pki;
pub mod resources;
pub mod scheduler;
pub mod security;
pub mod store;
