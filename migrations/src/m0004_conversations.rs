use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Conversations {
    Table,
    Id,
    OrganizationId,
    QueueId,
    Status,
    CustomerName,
    CustomerPhone,
    AssignedAgentId,
    CreatedAt,
    AssignedAt,
    ClosedAt,
}

#[derive(DeriveIden)]
enum Agents {
    Table,
    Id,
    /// Conversations assigned and not closed: kept in the row so that "under the limit" is one
    /// conditional update, atomic on both back-ends.
    ActiveSessions,
    /// When the agent last got or finished a conversation; routing prefers the longest idle.
    IdleSince,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Queues {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Conversations::Table)
                    .col(big_pk_auto(Conversations::Id))
                    .col(big_integer(Conversations::OrganizationId))
                    .col(big_integer(Conversations::QueueId))
                    .col(string(Conversations::Status))
                    .col(string_null(Conversations::CustomerName))
                    .col(string_null(Conversations::CustomerPhone))
                    .col(big_integer_null(Conversations::AssignedAgentId))
                    .col(ColumnDef::new(Conversations::CreatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(Conversations::AssignedAt).timestamp_with_time_zone().null())
                    .col(ColumnDef::new(Conversations::ClosedAt).timestamp_with_time_zone().null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(Conversations::Table, Conversations::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Conversations::Table, Conversations::QueueId)
                            .to(Queues::Table, Queues::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Conversations::Table, Conversations::AssignedAgentId)
                            .to(Agents::Table, Agents::Id),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            (
                "conversations_queue_status",
                [Conversations::QueueId, Conversations::Status, Conversations::CreatedAt],
            ),
            (
                "conversations_agent_status",
                [Conversations::AssignedAgentId, Conversations::Status, Conversations::CreatedAt],
            ),
            (
                "conversations_organization_assigned",
                [Conversations::OrganizationId, Conversations::AssignedAt, Conversations::Id],
            ),
        ] {
            let mut index = Index::create();
            index.name(name).table(Conversations::Table);
            for column in columns {
                index.col(column);
            }
            manager.create_index(index.to_owned()).await?;
        }

        manager
            .alter_table(
                Table::alter()
                    .table(Agents::Table)
                    .add_column(integer(Agents::ActiveSessions).default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Agents::Table)
                    .add_column(ColumnDef::new(Agents::IdleSince).timestamp_with_time_zone().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [Agents::ActiveSessions, Agents::IdleSince] {
            manager.alter_table(Table::alter().table(Agents::Table).drop_column(column).to_owned()).await?;
        }
        manager.drop_table(Table::drop().table(Conversations::Table).to_owned()).await
    }
}
