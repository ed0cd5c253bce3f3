//! Explainable presence: why each agent's presence was last set, and every change kept for a
//! while (so worked hours can be derived and "why did they go offline?" answered).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Agents {
    Table,
    Id,
    /// Why `presence` was last set (REPORTED, TTL_EXPIRED, …); null until it first changes.
    PresenceReason,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum PresenceHistory {
    Table,
    Id,
    OrganizationId,
    AgentId,
    Status,
    Reason,
    At,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Agents::Table)
                    .add_column(string_null(Agents::PresenceReason))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PresenceHistory::Table)
                    .col(big_pk_auto(PresenceHistory::Id))
                    .col(big_integer(PresenceHistory::OrganizationId))
                    .col(big_integer(PresenceHistory::AgentId))
                    .col(string(PresenceHistory::Status))
                    .col(string(PresenceHistory::Reason))
                    .col(ColumnDef::new(PresenceHistory::At).timestamp_with_time_zone().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(PresenceHistory::Table, PresenceHistory::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(PresenceHistory::Table, PresenceHistory::AgentId)
                            .to(Agents::Table, Agents::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // One agent's history, newest first, from a point in time.
        manager
            .create_index(
                Index::create()
                    .name("presence_history_agent_at")
                    .table(PresenceHistory::Table)
                    .col(PresenceHistory::AgentId)
                    .col(PresenceHistory::At)
                    .col(PresenceHistory::Id)
                    .to_owned(),
            )
            .await?;
        // Retention prunes by age across every agent.
        manager
            .create_index(
                Index::create()
                    .name("presence_history_at")
                    .table(PresenceHistory::Table)
                    .col(PresenceHistory::At)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(PresenceHistory::Table).to_owned()).await?;
        manager
            .alter_table(Table::alter().table(Agents::Table).drop_column(Agents::PresenceReason).to_owned())
            .await
    }
}
