//! Reading an agent's presence history.

use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;

use super::common::PresenceError;
use crate::{
    db::page::{Page, PageRequest},
    presence::{model::HistoryRecord, store},
    viewer::Viewer,
};

/// One page of an agent's presence history, newest first: ADMINs see anyone's, an AGENT
/// its own. None when there is no such agent.
pub async fn history(
    db: &DatabaseConnection,
    viewer: &Viewer,
    agent_id: i64,
    since: Option<DateTime<Utc>>,
    page: &PageRequest,
) -> Result<Page<HistoryRecord>, PresenceError> {
    if !viewer.is_admin() && viewer.agent_id != agent_id {
        return Err(PresenceError::Forbidden);
    }
    Ok(store::history(db, viewer.organization_id, agent_id, since, page).await?)
}
