//! The periodic pod sync's volume part: while a pod has a sandbox on this node, its ConfigMap,
//! Secret, downward API and projected volumes are rendered again every `syncFrequency` from
//! the current objects (and the pod's current labels and annotations) and published
//! atomically when they changed, so running containers see updates as on a real kubelet.
//! `subPath` mounts bind one file of a version and never change, as upstream.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;

use super::atomic_writer::Outcome;
use super::container::pod_dir;
use super::volumes::{self, VolumeContext};
use super::{allocatable, Ctx};
use crate::node::events::WARNING;

/// Resyncs the pod's volumes every `period` until the pod is gone from the API (or has been
/// replaced by one of the same name) or the task is aborted with its sandbox.
pub(crate) async fn run(ctx: Arc<Ctx>, node: String, pod: Pod, period: Duration) {
    if !pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .is_some_and(|v| v.iter().any(volumes::is_updated))
    {
        return;
    }
    let (Some(ns), Some(name), Some(uid)) = (
        pod.metadata.namespace.clone(),
        pod.metadata.name.clone(),
        pod.metadata.uid.clone(),
    ) else {
        return;
    };
    let dir = pod_dir(&ctx.cfg.root, &pod);
    let host_ip = ctx
        .nodes
        .get(&node)
        .map(|n| n.internal_ip.to_string())
        .unwrap_or_else(|| "127.0.0.1".into());
    let period = period.max(Duration::from_millis(100));
    // Only labels and annotations of the pod can change while it runs (the other downward API
    // fields and the volume list cannot), so only pods that show them are read again.
    let reads_pod = pod
        .spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .flat_map(|v| {
            let direct = v.downward_api.iter().flat_map(|d| d.items.iter().flatten());
            let projected = v
                .projected
                .iter()
                .flat_map(|p| p.sources.iter().flatten())
                .flat_map(|s| s.downward_api.iter().flat_map(|d| d.items.iter().flatten()));
            direct.chain(projected)
        })
        .filter_map(|item| item.field_ref.as_ref())
        .any(|f| {
            f.field_path.starts_with("metadata.labels")
                || f.field_path.starts_with("metadata.annotations")
        });
    loop {
        tokio::time::sleep(period).await;
        let client = ctx.client_of(&node);
        let current = if !reads_pod {
            pod.clone()
        } else {
            match Api::<Pod>::namespaced(client.clone(), &ns)
                .get_opt(&name)
                .await
            {
                Ok(Some(p)) if p.metadata.uid.as_deref() == Some(uid.as_str()) => p,
                Ok(_) => return,
                Err(e) => {
                    tracing::debug!(pod = %name, namespace = %ns, error = %e, "volume resync cannot read the pod; trying again next period");
                    continue;
                }
            }
        };
        let pod_ip = current
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .filter(|ip| !ip.is_empty());
        let cx = VolumeContext {
            client,
            pod: &current,
            pod_dir: &dir,
            pod_ip,
            host_ip: host_ip.clone(),
            node_allocatable: allocatable(&ctx, &node),
        };
        for r in volumes::refresh(&cx).await {
            match r.result {
                Ok(Outcome::Written) => {
                    tracing::debug!(pod = %name, namespace = %ns, volume = %r.volume, "volume updated");
                }
                Ok(Outcome::Unchanged) => {}
                Err(message) => {
                    // As the kubelet's remount: the old content stays and the pod gets a
                    // FailedMount event naming the volume.
                    ctx.events.lock().pod_event(
                        &node,
                        &current,
                        None,
                        WARNING,
                        "FailedMount",
                        || {
                            format!(
                                "MountVolume.SetUp failed for volume {:?} : {message}",
                                r.volume
                            )
                        },
                    );
                }
            }
        }
    }
}
