//! An index for each order of the agents page, so that a page walks the index from its
//! cursor and stops after `limit + 1` entries instead of reading and sorting every agent of
//! the organization. Partial (`deleted_at IS NULL`) like every read of the directory, and
//! ending in `id`, the keyset's tie-breaker. The display-name index is on `lower(display_name)`,
//! the very expression the query sorts by: SQLite uses an expression index only for an
//! identical expression.

use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

const ORDER_INDEXES: [(&str, &str); 2] = [
    ("agents_live_display_name", "organization_id, lower(display_name), id"),
    ("agents_live_created_at", "organization_id, created_at, id"),
];

/// On SQLite `agents_live_username (organization_id, username)` already ends in the rowid,
/// which `id` is; PostgreSQL's indexes hold no such column, so it needs its own.
const POSTGRES_ONLY: (&str, &str) = ("agents_live_username_id", "organization_id, username, id");

fn indexes(backend: DbBackend) -> Vec<(&'static str, &'static str)> {
    let mut indexes = ORDER_INDEXES.to_vec();
    if backend == DbBackend::Postgres {
        indexes.push(POSTGRES_ONLY);
    }
    indexes
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for (name, columns) in indexes(manager.get_database_backend()) {
            db.execute_unprepared(&format!(
                "CREATE INDEX {name} ON agents ({columns}) WHERE deleted_at IS NULL"
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for (name, _) in indexes(manager.get_database_backend()) {
            db.execute_unprepared(&format!("DROP INDEX {name}")).await?;
        }
        Ok(())
    }
}
