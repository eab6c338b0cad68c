//! Turns a request path and method into what it addresses, as upstream's RequestInfoFactory does:
//! group, version, namespace, resource, name, subresource and the Kubernetes verb. The code lives
//! in `kubeproof-wire` (`reference-cluster/wire/`), with the other readers of untrusted request
//! bytes, so the fuzz target builds without the rest of the cluster.

pub use kubeproof_wire::request::*;
