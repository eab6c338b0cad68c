//! ClusterRole aggregation (upstream's `clusterrole-aggregation-controller`): a ClusterRole
//! with an `aggregationRule` gets the rules of the ClusterRoles its selectors match, rewritten
//! whenever any ClusterRole changes.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::{next_event, watch};
use crate::apiserver::registry::WriteOptions;
use crate::apiserver::{object, ApiServer};
use crate::patch::Operation;
use crate::security::rbac::aggregate_all;
use crate::store::Revision;

const PREFIX: &str = "/registry/clusterroles/";

pub async fn run(server: Arc<ApiServer>, resync: Duration) {
    loop {
        let Some(from) = sync(&server).await else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        let Some(mut events) = watch(&server, PREFIX, from).await else {
            continue;
        };
        let deadline = tokio::time::sleep(resync);
        tokio::pin!(deadline);
        while next_event(&mut events, &mut deadline).await.is_some() {
            // Our own write-backs come back as events; the next sync finds nothing to do.
            if sync(&server).await.is_none() {
                break;
            }
        }
    }
}

/// Brings every aggregated ClusterRole up to date; returns the revision listed at.
pub async fn sync(server: &ApiServer) -> Option<Revision> {
    let info = server
        .catalog
        .get("rbac.authorization.k8s.io", "v1", "clusterroles")?;
    let list = server.store.list(PREFIX, None, None, 0).await.ok()?;
    let mut roles: Vec<Value> = list
        .items
        .iter()
        .filter_map(|kv| object::from_stored(kv).ok())
        .collect();
    let changed = aggregate_all(&mut roles);
    let opts = WriteOptions::internal("clusterrole-aggregation-controller");
    for name in changed {
        let Some(rules) = roles
            .iter()
            .find(|r| object::name(r) == name)
            .map(|r| r.get("rules").cloned().unwrap_or_else(|| json!([])))
        else {
            continue;
        };
        let result = server
            .guaranteed_update(&info, None, &name, None, &opts, Operation::Update, |cur| {
                let mut cur =
                    cur.ok_or_else(|| crate::apiserver::ApiError::not_found(&info, &name))?;
                cur["rules"] = rules.clone();
                Ok(cur)
            })
            .await;
        if let Err(e) = result {
            tracing::debug!("aggregating clusterrole {name}: {e}");
        }
    }
    Some(list.revision)
}
