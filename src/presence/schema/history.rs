//! `Agent.presenceHistory`: every change of an agent's presence, with its reason and time.

use async_graphql::{
    Object,
    connection::{Connection, EmptyFields},
};
use chrono::{DateTime, Utc};

use crate::{
    db::page::Cursor,
    directory::schema::{PresenceReason, PresenceStatus},
    graphql::{
        for_query,
        pagination::{connection, encode_cursor, page_request},
    },
    presence::{model::HistoryRecord, service},
    state::AppState,
    viewer::Viewer,
};

/// One change of an agent's presence, as kept in its history.
pub struct PresenceHistoryEntry(HistoryRecord);

#[Object]
impl PresenceHistoryEntry {
    /// The presence it changed to.
    async fn status(&self) -> PresenceStatus {
        self.0.change.status.into()
    }
    async fn reason(&self) -> PresenceReason {
        self.0.change.reason.into()
    }
    async fn at(&self) -> DateTime<Utc> {
        self.0.change.at
    }
}

pub type PresenceHistoryConnection = Connection<String, PresenceHistoryEntry>;

/// Cursors of this listing name it, so another listing's cursor is refused.
const HISTORY_SORT_TAG: &str = "PRESENCE_HISTORY";

/// `Agent.presenceHistory`: newest first, at or after `since` when given.
pub async fn presence_history(
    app: &AppState,
    viewer: &Viewer,
    agent_id: i64,
    first: Option<i32>,
    after: Option<String>,
    since: Option<DateTime<Utc>>,
) -> async_graphql::Result<PresenceHistoryConnection> {
    let request = page_request(HISTORY_SORT_TAG, after, None, first, None)?;
    let page = for_query(service::history(&app.db, viewer, agent_id, since, &request).await)?;
    Ok(connection(&request, page, EmptyFields, |record| {
        (
            encode_cursor(HISTORY_SORT_TAG, &Cursor { key: String::new(), id: record.id }),
            PresenceHistoryEntry(record),
        )
    }))
}
