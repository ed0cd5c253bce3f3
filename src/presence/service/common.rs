//! What every presence rule shares: its errors, its clock, and recording a change.

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::DbErr;

use crate::{
    events::EventTx,
    presence::{
        events::PresenceChange,
        model::{Flipped, HistoryEntry, Presence, PresenceReason, other},
        store,
    },
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
/// event each, written set-based whatever their number.
pub(super) async fn announce(
    tx: &mut EventTx<'_>,
    flips: Vec<Flipped>,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let mut history = Vec::with_capacity(flips.len());
    let mut events = Vec::with_capacity(flips.len());
    for flip in flips {
        // Every flip sets the reason in its own UPDATE, so the fallback is never taken.
        let reason = flip.reason.unwrap_or(PresenceReason::Reported);
        let (organization_id, agent_id, status) = (flip.organization_id, flip.agent_id, flip.status);
        history.push(HistoryEntry { organization_id, agent_id, status, reason, at });
        events.push(changed(organization_id, agent_id, status, Some(reason), at));
    }
    store::record_history(&**tx, &history).await?;
    tx.publish_all(events).await
}
