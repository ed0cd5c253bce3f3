//! Live presence: the TTL deadline and socket grace of each agent, and the WebSocket
//! connections of every running instance, so that "lapsed" is decided by stored state that
//! all instances share, not by a timer in one process.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Agents {
    Table,
    Id,
    /// ONLINE lapses after this (renewed by each ONLINE report).
    PresenceExpiresAt,
    /// Set when the agent's last socket closed: ONLINE lapses after this unless a socket
    /// opened again.
    PresenceGraceUntil,
}

#[derive(DeriveIden)]
enum PresenceInstances {
    Table,
    Id,
    HeartbeatAt,
}

#[derive(DeriveIden)]
enum AgentSockets {
    Table,
    Id,
    InstanceId,
    AgentId,
    OpenedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite alters one column per statement.
        for column in [Agents::PresenceExpiresAt, Agents::PresenceGraceUntil] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Agents::Table)
                        .add_column(ColumnDef::new(column).timestamp_with_time_zone().null())
                        .to_owned(),
                )
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(PresenceInstances::Table)
                    .col(ColumnDef::new(PresenceInstances::Id).string().not_null().primary_key())
                    .col(ColumnDef::new(PresenceInstances::HeartbeatAt).timestamp_with_time_zone().not_null())
                    .to_owned(),
            )
            .await?;

        // No foreign key to presence_instances: an instance presumed dead loses its row, and
        // the sweep removes sockets of any instance without a fresh heartbeat.
        manager
            .create_table(
                Table::create()
                    .table(AgentSockets::Table)
                    .col(
                        ColumnDef::new(AgentSockets::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(AgentSockets::InstanceId).string().not_null())
                    .col(ColumnDef::new(AgentSockets::AgentId).big_integer().not_null())
                    .col(ColumnDef::new(AgentSockets::OpenedAt).timestamp_with_time_zone().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(AgentSockets::Table, AgentSockets::AgentId)
                            .to(Agents::Table, Agents::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("agent_sockets_agent", AgentSockets::AgentId),
            ("agent_sockets_instance", AgentSockets::InstanceId),
        ] {
            manager
                .create_index(Index::create().name(name).table(AgentSockets::Table).col(column).to_owned())
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(AgentSockets::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(PresenceInstances::Table).to_owned()).await?;
        for column in [Agents::PresenceGraceUntil, Agents::PresenceExpiresAt] {
            manager.alter_table(Table::alter().table(Agents::Table).drop_column(column).to_owned()).await?;
        }
        Ok(())
    }
}
