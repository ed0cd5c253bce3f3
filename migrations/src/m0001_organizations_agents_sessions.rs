use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
    Name,
    Slug,
    SeatLimit,
    HumanAgentServiceEnabled,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Agents {
    Table,
    Id,
    OrganizationId,
    Username,
    DisplayName,
    Email,
    Role,
    Enabled,
    PasswordHash,
    Presence,
    PresenceChangedAt,
    ShowRealPhoneNumbers,
    MaxConcurrentSessions,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    AgentId,
    TokenHash,
    CreatedAt,
    LastSeenAt,
}

fn timestamp(column: impl IntoIden) -> ColumnDef {
    ColumnDef::new(column).timestamp_with_time_zone().not_null().take()
}

fn timestamp_null(column: impl IntoIden) -> ColumnDef {
    ColumnDef::new(column).timestamp_with_time_zone().null().take()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Organizations::Table)
                    .col(big_pk_auto(Organizations::Id))
                    .col(string(Organizations::Name))
                    .col(string_uniq(Organizations::Slug))
                    .col(integer(Organizations::SeatLimit))
                    .col(boolean(Organizations::HumanAgentServiceEnabled).default(true))
                    .col(timestamp(Organizations::CreatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Agents::Table)
                    .col(big_pk_auto(Agents::Id))
                    .col(big_integer(Agents::OrganizationId))
                    .col(string(Agents::Username))
                    .col(string(Agents::DisplayName))
                    .col(string_null(Agents::Email))
                    .col(string(Agents::Role))
                    .col(boolean(Agents::Enabled))
                    .col(string(Agents::PasswordHash))
                    .col(string(Agents::Presence))
                    .col(timestamp_null(Agents::PresenceChangedAt))
                    .col(boolean(Agents::ShowRealPhoneNumbers))
                    .col(integer_null(Agents::MaxConcurrentSessions))
                    .col(timestamp(Agents::CreatedAt))
                    .col(timestamp(Agents::UpdatedAt))
                    .col(timestamp_null(Agents::DeletedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Agents::Table, Agents::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        // Deleted agents stay as rows for history, so a username is unique only among the
        // living; a partial index says exactly that on both back-ends.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX agents_live_username ON agents (organization_id, username) \
                 WHERE deleted_at IS NULL",
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Sessions::Table)
                    .col(big_pk_auto(Sessions::Id))
                    .col(big_integer(Sessions::AgentId))
                    .col(string_uniq(Sessions::TokenHash))
                    .col(timestamp(Sessions::CreatedAt))
                    .col(timestamp(Sessions::LastSeenAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Sessions::Table, Sessions::AgentId)
                            .to(Agents::Table, Agents::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("sessions_agent")
                    .table(Sessions::Table)
                    .col(Sessions::AgentId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Sessions::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Agents::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Organizations::Table).to_owned()).await
    }
}
