//! SQL of the audit log: inserts, and one organization's entries newest first.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::model::{AuditFilter, Entry, EntryRecord};
use crate::db::{
    entities::audit_entry,
    page::{Page, PageRequest},
};

/// The fields an entry set are stored comma-separated.
const FIELD_SEPARATOR: &str = ",";

impl From<audit_entry::Model> for EntryRecord {
    fn from(row: audit_entry::Model) -> Self {
        Self {
            id: row.id,
            actor_id: row.actor_id,
            actor_username: row.actor_username,
            action: row.action,
            target_type: row.target_type,
            target_id: row.target_id,
            changed_fields: row
                .changed_fields
                .split(FIELD_SEPARATOR)
                .filter(|field| !field.is_empty())
                .map(str::to_owned)
                .collect(),
            client_address: row.client_address,
            at: row.at,
        }
    }
}

/// One statement whatever the number of targets.
pub(super) async fn insert(db: &impl ConnectionTrait, entry: Entry, at: DateTime<Utc>) -> Result<(), DbErr> {
    let row = |target_id: Option<i64>| audit_entry::ActiveModel {
        organization_id: Set(entry.organization_id),
        actor_id: Set(entry.actor_id),
        actor_username: Set(entry.actor_username.clone()),
        action: Set(entry.action),
        target_type: Set(entry.target_type),
        target_id: Set(target_id),
        changed_fields: Set(entry.changed_fields.join(FIELD_SEPARATOR)),
        client_address: Set(entry.client_address.map(|address| address.to_string())),
        at: Set(at),
        ..Default::default()
    };
    let rows: Vec<_> = if entry.target_ids.is_empty() {
        vec![row(None)]
    } else {
        entry.target_ids.iter().map(|&id| row(Some(id))).collect()
    };
    audit_entry::Entity::insert_many(rows).exec_without_returning(db).await?;
    Ok(())
}

/// A page of entries, newest (highest id) first; only `after` is offered.
pub(super) async fn list(
    db: &impl ConnectionTrait,
    organization_id: i64,
    filter: &AuditFilter,
    page: &PageRequest,
) -> Result<Page<EntryRecord>, DbErr> {
    let mut query =
        audit_entry::Entity::find().filter(audit_entry::Column::OrganizationId.eq(organization_id));
    if let Some(actor_id) = filter.actor_id {
        query = query.filter(audit_entry::Column::ActorId.eq(actor_id));
    }
    if let Some((target_type, target_id)) = filter.target {
        query = query
            .filter(audit_entry::Column::TargetType.eq(target_type))
            .filter(audit_entry::Column::TargetId.eq(target_id));
    }
    if let Some(action) = filter.action {
        query = query.filter(audit_entry::Column::Action.eq(action));
    }
    if let Some(since) = filter.since {
        query = query.filter(audit_entry::Column::At.gte(since));
    }
    if let Some(until) = filter.until {
        query = query.filter(audit_entry::Column::At.lt(until));
    }
    if let Some(after) = &page.after {
        query = query.filter(audit_entry::Column::Id.lt(after.id));
    }
    let rows = query.order_by_desc(audit_entry::Column::Id).limit(page.rows_to_read()).all(db).await?;
    Ok(page.page_of(rows.into_iter().map(EntryRecord::from).collect()))
}
