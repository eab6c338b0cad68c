//! kubeproof-chaos
