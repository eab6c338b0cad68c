//! Failure injection: stopping control-plane components for a while. The runner restarts
//! whatever a scenario stopped when the scenario ends, so one failing scenario never leaves the
//! cluster without its scheduler.

use crate::library::support::{StepArgs, StepFailure, StepResult};
use crate::world::KubeWorld;

fn control(
    world: &KubeWorld,
) -> Result<std::sync::Arc<dyn crate::control::ClusterControl>, StepFailure> {
    world.target()?.control.clone().ok_or_else(|| {
        StepFailure::msg(
            "this target's components cannot be stopped by the runner; tag the scenario @needs:component-control so that it is skipped on such targets",
        )
    })
}

pub async fn stop(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let component = args.req("component")?.to_string();
    control(world)?.stop(&component)?;
    world.stopped_components.push(component);
    Ok(())
}

pub async fn start(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let component = args.req("component")?.to_string();
    control(world)?.start(&component)?;
    world.stopped_components.retain(|c| c != &component);
    Ok(())
}

/// How long a restarted component stays down: long enough for clients to notice.
const RESTART_DOWNTIME: std::time::Duration = std::time::Duration::from_secs(1);

/// Kills a component and starts it again; for the API server, waits until it answers
/// `/readyz` so that the next step talks to the new instance.
pub async fn restart(world: &mut KubeWorld, args: StepArgs) -> StepResult {
    let component = args.req("component")?.to_string();
    let control = control(world)?;
    control.stop(&component)?;
    world.stopped_components.push(component.clone());
    tokio::time::sleep(RESTART_DOWNTIME).await;
    control.start(&component)?;
    world.stopped_components.retain(|c| c != &component);
    if component == "kube-apiserver" {
        let world = &*world;
        crate::library::support::eventually(Some(std::time::Duration::from_secs(30)), async || {
            let resp = crate::library::support::send(
                world,
                http::Method::GET,
                "/readyz",
                None,
                Vec::new(),
            )
            .await?;
            if resp.is_success() {
                Ok(())
            } else {
                Err(StepFailure::msg(format!(
                    "the restarted API server is not ready: {}",
                    resp.describe()
                )))
            }
        })
        .await?;
    }
    Ok(())
}
