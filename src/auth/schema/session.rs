//! `Agent.sessions`: where an agent is signed in.

use async_graphql::{ID, SimpleObject};
use chrono::{DateTime, Utc};

use crate::{
    auth::{
        model::SessionLifetime,
        sessions::{self, SessionInfo},
    },
    graphql::{
        for_query,
        id::{self, NodeKind},
    },
    state::AppState,
    viewer::Viewer,
};

/// One signed-in session (a device or browser), never its token.
#[derive(SimpleObject)]
pub struct Session {
    id: ID,
    created_at: DateTime<Utc>,
    /// When a request last used it (kept to the minute, or finer with a short idle limit).
    last_seen_at: DateTime<Utc>,
    /// Where it signed in from.
    client_address: Option<String>,
    /// The session of this request.
    current: bool,
    /// When it ends unless it is used again (`--session-idle-timeout`), or at the latest
    /// (`--session-max-age`); null when neither limit is set.
    expires_at: Option<DateTime<Utc>>,
}

impl From<SessionInfo> for Session {
    fn from(session: SessionInfo) -> Self {
        Self {
            id: id::encode(NodeKind::Session, session.id),
            created_at: session.created_at,
            last_seen_at: session.last_seen_at,
            client_address: session.client_address,
            current: session.current,
            expires_at: session.expires_at,
        }
    }
}

/// `Agent.sessions`: an agent's live sessions, most recently used first.
pub async fn sessions_of(
    app: &AppState,
    viewer: &Viewer,
    agent_id: i64,
) -> async_graphql::Result<Vec<Session>> {
    let lifetime = SessionLifetime::from_config(&app.config);
    let found = for_query(sessions::sessions_of(&app.db, lifetime, viewer, agent_id).await)?;
    Ok(found.into_iter().map(Session::from).collect())
}
