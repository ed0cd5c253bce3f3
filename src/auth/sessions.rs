//! An agent's sessions (one per sign-in, i.e. per device): listing them, ending one or all,
//! and forgetting expired ones. Signing in and checking a token are in `service`.

use std::{net::IpAddr, time::Duration as StdDuration};

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, DbErr};
use tokio::task::JoinHandle;

use super::{model::SessionLifetime, store};
use crate::viewer::Viewer;
use crate::{
    audit::{
        model::{Action, Entry, TargetType},
        service as audit,
    },
    auth::events::SessionsRevoked,
    db,
    events::EventBus,
    jobs::{self, FirstRun},
};

/// A session as its agent (or an ADMIN) sees it; never its token.
pub struct SessionInfo {
    pub id: i64,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub client_address: Option<String>,
    /// The session the viewer is using.
    pub current: bool,
    /// When it ends unless used again; None: never.
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("There is no such session.")]
    NotFound,
    #[error("forbidden")]
    Forbidden,
    #[error(transparent)]
    Database(#[from] DbErr),
}

/// Whose sessions the viewer may see and end: its own; an ADMIN, anyone's of the organization.
fn may_manage(viewer: &Viewer, agent_id: i64) -> bool {
    viewer.is_admin() || viewer.agent_id == agent_id
}

/// The live sessions of an agent, most recently used first.
pub async fn sessions_of(
    db: &DatabaseConnection,
    lifetime: SessionLifetime,
    viewer: &Viewer,
    agent_id: i64,
) -> Result<Vec<SessionInfo>, SessionError> {
    if !may_manage(viewer, agent_id) {
        return Err(SessionError::Forbidden);
    }
    let now = Utc::now();
    let sessions = store::sessions_of(db, viewer.organization_id, agent_id).await?;
    Ok(sessions
        .into_iter()
        .map(|session| SessionInfo {
            id: session.id,
            created_at: session.created_at,
            last_seen_at: session.last_seen_at,
            client_address: session.client_address,
            current: session.id == viewer.session_id,
            expires_at: lifetime.expiry(session.created_at, session.last_seen_at),
        })
        .filter(|session| session.expires_at.is_none_or(|expiry| expiry > now))
        .collect())
}

/// Ends one session: the viewer's own agent's, or (ADMIN) any of the organization's agents'.
/// Its token stops working and its sockets close, on every instance. Returns the id ended.
pub async fn end_session(
    db: &DatabaseConnection,
    bus: &EventBus,
    viewer: &Viewer,
    client_address: Option<IpAddr>,
    session_id: Option<i64>,
) -> Result<i64, SessionError> {
    let tx = db::begin_write(db).await?;
    let session = match session_id {
        Some(id) => store::find_session(&tx, viewer.organization_id, id).await?,
        None => None,
    };
    // Another agent's session is as absent to an AGENT as one of another organization.
    let session =
        session.filter(|session| may_manage(viewer, session.agent_id)).ok_or(SessionError::NotFound)?;
    store::delete_session(&tx, session.id).await?;
    let entry =
        Entry::by(viewer, client_address, Action::SessionEnded).on(TargetType::Agent, [session.agent_id]);
    audit::record(&tx, entry).await?;
    tx.commit().await?;
    bus.publish(db, vec![SessionsRevoked::of_session(viewer.organization_id, session.agent_id, session.id)])
        .await?;
    Ok(session.id)
}

/// Ends every session of the viewer's agent but the current one, or all of them when
/// `include_current`. Returns how many ended.
pub async fn logout_everywhere(
    db: &DatabaseConnection,
    bus: &EventBus,
    viewer: &Viewer,
    client_address: Option<IpAddr>,
    include_current: bool,
) -> Result<u64, DbErr> {
    let keep = (!include_current).then_some(viewer.session_id);
    let tx = db::begin_write(db).await?;
    let ended = store::delete_sessions_of(&tx, viewer.organization_id, &[viewer.agent_id], keep).await?;
    let entry = Entry::by(viewer, client_address, Action::SignedOutEverywhere)
        .on(TargetType::Agent, [viewer.agent_id]);
    audit::record(&tx, entry).await?;
    tx.commit().await?;
    bus.publish(db, SessionsRevoked::of_agents(viewer.organization_id, &[viewer.agent_id], keep)).await?;
    Ok(ended)
}

/// Forgets the sessions that expired; returns how many. (A token of an expired session is
/// refused whether or not its row is still there.)
pub async fn prune_expired(db: &DatabaseConnection, lifetime: SessionLifetime) -> Result<u64, DbErr> {
    let now = Utc::now();
    let before =
        |limit: Option<StdDuration>| now.checked_sub_signed(chrono::Duration::from_std(limit?).ok()?);
    store::delete_expired_sessions(db, before(lifetime.idle), before(lifetime.max_age)).await
}

/// Runs `prune_expired` every `interval`, the first time at start-up.
pub fn spawn_pruner(
    db: DatabaseConnection,
    lifetime: SessionLifetime,
    interval: StdDuration,
) -> JoinHandle<()> {
    jobs::spawn_every(interval, FirstRun::AtOnce, "pruning expired sessions", move || {
        let db = db.clone();
        async move { prune_expired(&db, lifetime).await }
    })
}
