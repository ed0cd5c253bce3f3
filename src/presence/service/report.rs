//! What a workspace reports, and agents taken offline by a disable or a delete.

use sea_orm::{DatabaseConnection, DbErr};

use super::common::{PresenceError, after, announce, now};
use crate::{
    db::entities::agent,
    events::{EventBus, EventTx},
    presence::{
        model::{Presence, PresenceReason, Timings},
        store,
    },
    viewer::Viewer,
};

/// `reportPresence`: the viewer's workspace says ONLINE (which also renews the TTL) or
/// OFFLINE. Returns the agent as it now is. `came_online` runs once the agent's coming ONLINE
/// has committed and before the agent is read back: routing, which sits above presence, hands
/// it waiting conversations there, so the answer shows them.
pub async fn report(
    db: &DatabaseConnection,
    bus: &EventBus,
    timings: Timings,
    viewer: &Viewer,
    status: Presence,
    came_online: impl AsyncFnOnce() -> Result<(), DbErr>,
) -> Result<agent::AgentRecord, PresenceError> {
    let (organization_id, agent_id) = (viewer.organization_id, viewer.agent_id);
    let now = now();
    let mut tx = bus.begin(db).await?;
    let mut online_now = false;
    match status {
        Presence::Online => {
            let expires_at = after(now, timings.ttl);
            // Each statement sees the latest commit: if a sweep flips the agent OFFLINE
            // between the two, go round again. Twice failing both means the agent may not
            // be ONLINE at all (disabled or deleted).
            let mut attempts = 0;
            loop {
                if let Some(agent) =
                    store::go_online(&*tx, organization_id, agent_id, now, expires_at).await?
                {
                    online_now = true;
                    announce(&mut tx, vec![agent], now).await?;
                    break;
                }
                if store::renew(&*tx, organization_id, agent_id, expires_at).await? {
                    break;
                }
                attempts += 1;
                if attempts == 2 {
                    return Err(PresenceError::AgentUnavailable);
                }
            }
        }
        Presence::Offline => {
            let flipped =
                store::go_offline(&*tx, organization_id, &[agent_id], now, PresenceReason::Reported).await?;
            announce(&mut tx, flipped, now).await?;
        }
    }
    tx.commit().await?;
    if online_now {
        came_online().await?;
    }
    let agent = store::find_agent(db, organization_id, agent_id).await?;
    agent.filter(|agent| agent.details.deleted_at.is_none()).ok_or(PresenceError::AgentUnavailable)
}

/// Makes these agents OFFLINE inside the caller's transaction (disabling or deleting them:
/// `reason` says which), with one event and history row each that was not OFFLINE already;
/// events are delivered when it commits.
pub async fn take_offline(
    tx: &mut EventTx<'_>,
    organization_id: i64,
    agent_ids: &[i64],
    reason: PresenceReason,
) -> Result<(), DbErr> {
    let now = now();
    let flipped = store::go_offline(&**tx, organization_id, agent_ids, now, reason).await?;
    announce(tx, flipped, now).await
}
