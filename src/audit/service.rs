//! Recording and reading the audit log. `record` takes the caller's transaction: the entry
//! commits with the action or not at all.

use chrono::Utc;
use sea_orm::{ConnectionTrait, DbErr};

use super::{
    model::{AuditFilter, Entry, EntryRecord},
    store,
};
use crate::{
    db::page::{Cursor, Page, PageRequest},
    viewer::Viewer,
};

pub async fn record(db: &impl ConnectionTrait, entry: Entry) -> Result<(), DbErr> {
    store::insert(db, entry, Utc::now()).await
}

/// The viewer's organization's entries, newest first.
pub async fn entries(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    filter: &AuditFilter,
    page: &PageRequest,
) -> Result<Page<EntryRecord>, DbErr> {
    store::list(db, viewer.organization_id, filter, page).await
}

/// Where an entry stands in the listing: ids grow with time, so the id alone orders it.
pub fn cursor(entry: &EntryRecord) -> Cursor {
    Cursor { key: String::new(), id: entry.id }
}
