//! What a workspace reports, and agents taken offline by a disable or a delete.

use sea_orm::{DatabaseConnection, DbErr};

use super::common::{PresenceError, after, announce, now};
use crate::{
    db::entities::agent::{self, Presence, PresenceReason},
    events::{EventBus, EventTx},
    presence::{model::Timings, store},
    routing::service as routing,
    viewer::Viewer,
};

/// `reportPresence`: the viewer's workspace says ONLINE (which also renews the TTL) or
/// OFFLINE. Returns the agent as it now is.
pub async fn report(
    db: &DatabaseConnection,
    bus: &EventBus,
    timings: Timings,
    viewer: &Viewer,
    status: Presence,
) -> Result<agent::AgentRow, PresenceError> {
    let (organization_id, agent_id) = (viewer.organization_id, viewer.agent_id);
    let now = now();
    let mut tx = bus.begin(db).await?;
    // An agent coming online may take waiting conversations, once this commits.
    let mut came_online = false;
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
                    came_online = true;
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
    if came_online {
        routing::agent_available(db, bus, organization_id, agent_id).await?;
    }
    let agent = store::find_agent(db, organization_id, agent_id).await?;
    agent.filter(|agent| agent.deleted_at.is_none()).ok_or(PresenceError::AgentUnavailable)
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
