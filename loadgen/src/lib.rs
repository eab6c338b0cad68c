//! kubeproof-loadgen
