//! An index on each presence deadline, so that the sweep every instance runs every second
//! reads the agents whose TTL or socket grace has passed, not every agent of every
//! organization. Partial: the deadlines are set only while an agent is ONLINE (going OFFLINE
//! clears both), so each index holds the ONLINE agents alone, and `deadline < ?` implies the
//! `IS NOT NULL` that both SQLite and PostgreSQL need to use a partial index.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEXES: [(&str, &str); 2] = [
    ("agents_presence_expires_at", "presence_expires_at"),
    ("agents_presence_grace_until", "presence_grace_until"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for (name, column) in INDEXES {
            db.execute_unprepared(&format!(
                "CREATE INDEX {name} ON agents ({column}) WHERE {column} IS NOT NULL"
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for (name, _) in INDEXES {
            db.execute_unprepared(&format!("DROP INDEX {name}")).await?;
        }
        Ok(())
    }
}
