//! Request bodies in Kubernetes protobuf (`application/vnd.kubernetes.protobuf`), which
//! kubectl's typed clients send, and protobuf responses. The decoder and its schema table live
//! in `kubeproof-wire` (`reference-cluster/wire/src/protobuf/`), with the other readers of
//! untrusted request bytes, so the fuzz target builds without the rest of the cluster.

pub use kubeproof_wire::protobuf::*;
