//! What every presence rule shares: its errors, its clock, and recording a change.

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::{ActiveValue::Set, DbErr};

use crate::{
    db::entities::{agent, presence_history},
    events::{ClusterEvent, EventTx, PresenceChange, publish_all},
    presence::model::{Presence, PresenceReason},
    presence::{model::other, store},
};

/// The most agents a `presenceChanged` filter may name, as for every bulk id list.
pub const MAX_FILTER_IDS: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum PresenceError {
    #[error("There is no queue with this ID.")]
    QueueNotFound,
    #[error("At most {MAX_FILTER_IDS} agent IDs may be given.")]
    TooManyIds,
    /// The agent was disabled or deleted after its token was checked.
    #[error("This agent can no longer sign in.")]
    AgentUnavailable,
    /// Another agent's history, asked by an AGENT.
    #[error("forbidden")]
    Forbidden,
    #[error(transparent)]
    Database(#[from] DbErr),
}

/// Timestamps at the precision PostgreSQL keeps, so an event's `at` equals what was stored.
pub(super) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// `now` plus a configured duration; an absurdly long one means "never".
pub(super) fn after(now: DateTime<Utc>, duration: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(duration)
        .ok()
        .and_then(|duration| now.checked_add_signed(duration))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

pub(super) fn before(now: DateTime<Utc>, duration: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(duration)
        .ok()
        .and_then(|duration| now.checked_sub_signed(duration))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// An agent that just changed to `status`, for `reason`.
pub(super) fn changed(
    organization_id: i64,
    agent_id: i64,
    status: Presence,
    reason: Option<PresenceReason>,
    at: DateTime<Utc>,
) -> PresenceChange {
    PresenceChange { organization_id, agent_id, status, previous: other(status), reason, at }
}

/// Records and announces changes in the transaction that made them: one history row and one
/// event each, written set-based whatever their number. `agents` are the rows as updated.
pub(super) async fn announce(
    tx: &mut EventTx<'_>,
    agents: Vec<agent::Model>,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let mut history = Vec::with_capacity(agents.len());
    let mut events = Vec::with_capacity(agents.len());
    for agent in agents {
        // Every flip sets the reason in its own UPDATE, so the fallback is never taken.
        let reason = agent.presence_reason.unwrap_or(PresenceReason::Reported);
        history.push(presence_history::ActiveModel {
            organization_id: Set(agent.organization_id),
            agent_id: Set(agent.id),
            status: Set(agent.presence),
            reason: Set(reason),
            at: Set(at),
            ..Default::default()
        });
        events.push(ClusterEvent::PresenceChanged(changed(
            agent.organization_id,
            agent.id,
            agent.presence,
            Some(reason),
            at,
        )));
    }
    store::record_history(&**tx, history).await?;
    publish_all(tx, events).await
}
