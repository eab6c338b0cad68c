//! The RollingUpdate strategy: grow the new ReplicaSet within maxSurge, shrink old ones
//! within maxUnavailable, unhealthy old replicas first (upstream `rolling.go`).

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};

use super::util::*;
use super::DeploymentController;
use crate::controllers::runtime::Requeue;

impl DeploymentController {
    pub(super) async fn rollout_rolling(
        &self,
        d: &mut Deployment,
        rs_list: &[Arc<ReplicaSet>],
    ) -> anyhow::Result<Requeue> {
        let (new_rs, old) = self.get_all_and_sync_revision(d, rs_list, true).await?;
        let Some(new_rs) = new_rs else {
            anyhow::bail!("no new replica set after creating one");
        };
        let mut all = old.clone();
        all.push(new_rs.clone());
        if self.reconcile_new_rs(&all, &new_rs, d).await? {
            return self.sync_rollout_status(d, &all, Some(&new_rs)).await;
        }
        let active_old: Vec<Arc<ReplicaSet>> =
            old.iter().filter(|r| rs_replicas(r) > 0).cloned().collect();
        if self.reconcile_old_rs(&all, active_old, &new_rs, d).await? {
            return self.sync_rollout_status(d, &all, Some(&new_rs)).await;
        }
        if deployment_complete(d, d.status.as_ref().unwrap_or(&Default::default())) {
            self.cleanup(d, &old).await?;
        }
        self.sync_rollout_status(d, &all, Some(&new_rs)).await
    }

    async fn reconcile_new_rs(
        &self,
        all: &[Arc<ReplicaSet>],
        new_rs: &Arc<ReplicaSet>,
        d: &Deployment,
    ) -> anyhow::Result<bool> {
        let want = spec_replicas(d);
        let have = rs_replicas(new_rs);
        if have == want {
            return Ok(false);
        }
        let target = if have > want {
            want
        } else {
            new_rs_new_replicas(d, all, new_rs)
        };
        Ok(self.scale_and_record(new_rs, target, d).await?.0)
    }

    async fn reconcile_old_rs(
        &self,
        all: &[Arc<ReplicaSet>],
        old: Vec<Arc<ReplicaSet>>,
        new_rs: &Arc<ReplicaSet>,
        d: &Deployment,
    ) -> anyhow::Result<bool> {
        if total_replicas(&old) == 0 {
            return Ok(false);
        }
        if self.ignore_max_unavailable {
            // The injected bug: every old replica goes at once, whatever is available.
            let mut scaled = 0;
            for rs in &old {
                let replicas = rs_replicas(rs);
                if replicas > 0 {
                    self.scale_and_record(rs, 0, d).await?;
                    scaled += replicas;
                }
            }
            return Ok(scaled > 0);
        }
        let all_pods = total_replicas(all);
        let min_available = spec_replicas(d) - max_unavailable(d);
        let new_available = new_rs
            .status
            .as_ref()
            .and_then(|s| s.available_replicas)
            .unwrap_or(0);
        let new_unavailable = rs_replicas(new_rs) - new_available;
        let max_scaled_down = all_pods - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return Ok(false);
        }
        // Unhealthy old replicas first: they would otherwise block the rollout.
        let (old, cleaned) = self.cleanup_unhealthy(old, d, max_scaled_down).await?;
        let mut all: Vec<Arc<ReplicaSet>> = old.clone();
        all.push(new_rs.clone());
        let scaled = self.scale_down_old_for_rolling(&all, old, d).await?;
        Ok(cleaned + scaled > 0)
    }

    async fn cleanup_unhealthy(
        &self,
        mut old: Vec<Arc<ReplicaSet>>,
        d: &Deployment,
        max_cleanup: i32,
    ) -> anyhow::Result<(Vec<Arc<ReplicaSet>>, i32)> {
        old.sort_by(by_creation);
        let mut total = 0;
        for slot in old.iter_mut() {
            if total >= max_cleanup {
                break;
            }
            let rs = slot.clone();
            let replicas = rs_replicas(&rs);
            let available = rs
                .status
                .as_ref()
                .and_then(|s| s.available_replicas)
                .unwrap_or(0);
            // A status that still counts pods of an earlier, larger size (available above the
            // spec) is no unhealthy replica: scaling "down" by a negative count would grow the
            // old ReplicaSet past maxSurge (upstream refuses that request too).
            if replicas == 0 || available >= replicas {
                continue;
            }
            let down = (max_cleanup - total).min(replicas - available);
            let (_, updated) = self.scale_and_record(&rs, replicas - down, d).await?;
            total += down;
            *slot = updated;
        }
        Ok((old, total))
    }

    async fn scale_down_old_for_rolling(
        &self,
        all: &[Arc<ReplicaSet>],
        mut old: Vec<Arc<ReplicaSet>>,
        d: &Deployment,
    ) -> anyhow::Result<i32> {
        let min_available = spec_replicas(d) - max_unavailable(d);
        // A ReplicaSet just scaled down still reports the pods it is deleting as available
        // until its controller catches up; counting at most its spec keeps such a stale status
        // from scaling the old ReplicaSets down past maxUnavailable.
        let available: i32 = all
            .iter()
            .map(|rs| {
                let avail = rs
                    .status
                    .as_ref()
                    .and_then(|s| s.available_replicas)
                    .unwrap_or(0);
                avail.min(rs_replicas(rs))
            })
            .sum();
        if available <= min_available {
            return Ok(0);
        }
        old.sort_by(by_creation);
        let to_scale_down = available - min_available;
        let mut total = 0;
        for rs in &old {
            if total >= to_scale_down {
                break;
            }
            let replicas = rs_replicas(rs);
            if replicas == 0 {
                continue;
            }
            let down = replicas.min(to_scale_down - total);
            self.scale_and_record(rs, replicas - down, d).await?;
            total += down;
        }
        Ok(total)
    }
}
