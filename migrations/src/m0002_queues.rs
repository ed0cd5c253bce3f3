use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Queues {
    Table,
    Id,
    OrganizationId,
    Name,
    /// Lower-cased name: queue names are unique case-insensitively.
    NameKey,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
}

#[derive(DeriveIden)]
enum QueueMembers {
    Table,
    QueueId,
    AgentId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Agents {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Queues::Table)
                    .col(big_pk_auto(Queues::Id))
                    .col(big_integer(Queues::OrganizationId))
                    .col(string(Queues::Name))
                    .col(string(Queues::NameKey))
                    .col(ColumnDef::new(Queues::CreatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(Queues::UpdatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(Queues::DeletedAt).timestamp_with_time_zone().null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(Queues::Table, Queues::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Deleted queues stay for the conversations that refer to them; names are unique
        // among the living only.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX queues_live_name ON queues (organization_id, name_key) \
                 WHERE deleted_at IS NULL",
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(QueueMembers::Table)
                    .col(big_integer(QueueMembers::QueueId))
                    .col(big_integer(QueueMembers::AgentId))
                    .col(ColumnDef::new(QueueMembers::CreatedAt).timestamp_with_time_zone().not_null())
                    .primary_key(Index::create().col(QueueMembers::QueueId).col(QueueMembers::AgentId))
                    .foreign_key(
                        ForeignKey::create()
                            .from(QueueMembers::Table, QueueMembers::QueueId)
                            .to(Queues::Table, Queues::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(QueueMembers::Table, QueueMembers::AgentId)
                            .to(Agents::Table, Agents::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("queue_members_agent")
                    .table(QueueMembers::Table)
                    .col(QueueMembers::AgentId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(QueueMembers::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Queues::Table).to_owned()).await
    }
}
