//! The Recreate strategy: scale every old ReplicaSet to zero, wait until none of their pods
//! is left running, then create and scale up the new one (upstream `recreate.go`).

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;

use super::util::*;
use super::DeploymentController;
use crate::controllers::runtime::{pods, Requeue};

impl DeploymentController {
    pub(super) async fn rollout_recreate(
        &self,
        d: &mut Deployment,
        rs_list: &[Arc<ReplicaSet>],
    ) -> anyhow::Result<Requeue> {
        let pod_map = self.pod_map(d, rs_list);
        // Not created yet: nothing may start before the old pods are gone.
        let (mut new_rs, mut old) = self.get_all_and_sync_revision(d, rs_list, false).await?;
        let mut all = old.clone();
        all.extend(new_rs.clone());
        let mut scaled_down = false;
        for rs in old.iter().filter(|r| rs_replicas(r) > 0) {
            if self.scale_and_record(rs, 0, d).await?.0 {
                scaled_down = true;
            }
        }
        if scaled_down || old_pods_running(new_rs.as_ref(), &old, &pod_map) {
            return self.sync_rollout_status(d, &all, new_rs.as_ref()).await;
        }
        if new_rs.is_none() {
            (new_rs, old) = self.get_all_and_sync_revision(d, rs_list, true).await?;
            all = old.clone();
            all.extend(new_rs.clone());
        }
        if let Some(n) = &new_rs {
            self.scale_and_record(n, spec_replicas(d), d).await?;
        }
        if deployment_complete(d, d.status.as_ref().unwrap_or(&Default::default())) {
            self.cleanup(d, &old).await?;
        }
        self.sync_rollout_status(d, &all, new_rs.as_ref()).await
    }
}

/// Whether any pod of an old ReplicaSet may still be running (terminal ones do not count;
/// Unknown does, since it may well be running).
fn old_pods_running(
    new_rs: Option<&Arc<ReplicaSet>>,
    old: &[Arc<ReplicaSet>],
    pod_map: &HashMap<String, Vec<Arc<Pod>>>,
) -> bool {
    if actual_replicas(old) > 0 {
        return true;
    }
    let new_uid = new_rs.and_then(|r| r.metadata.uid.clone());
    pod_map.iter().any(|(uid, list)| {
        Some(uid) != new_uid.as_ref() && list.iter().any(|p| !pods::is_terminal(p))
    })
}
