//! `kubectl exec` into sim containers: the kubelet's `/exec/{namespace}/{pod}/{container}`
//! endpoint over WebSocket (`v5.channel.k8s.io`, `v4.channel.k8s.io`), running commands in a
//! built-in interpreter ([`shell`]) instead of processes. What commands print is in `SIM.md`.

pub mod attach;
pub mod script;
pub mod session;
pub mod shell;

pub use self::session::{ExecQuery, PodSource, CHANNEL_PROTOCOLS};
pub use self::shell::{Outcome, Shell};
