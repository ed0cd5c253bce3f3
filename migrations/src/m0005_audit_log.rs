use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    /// Null only for a failed sign-in naming an organization that does not exist.
    OrganizationId,
    /// Null only for a failed sign-in naming a username that does not exist.
    ActorId,
    /// Kept as it was at the time, so the entry still reads right after the actor is deleted;
    /// for a failed sign-in, the username that was tried.
    ActorUsername,
    Action,
    TargetType,
    TargetId,
    /// Comma-separated API field names; never values.
    ChangedFields,
    ClientAddress,
    At,
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
                    .table(AuditLog::Table)
                    .col(big_pk_auto(AuditLog::Id))
                    .col(big_integer_null(AuditLog::OrganizationId))
                    .col(big_integer_null(AuditLog::ActorId))
                    .col(string_null(AuditLog::ActorUsername))
                    .col(string(AuditLog::Action))
                    .col(string_null(AuditLog::TargetType))
                    .col(big_integer_null(AuditLog::TargetId))
                    .col(string(AuditLog::ChangedFields))
                    .col(string_null(AuditLog::ClientAddress))
                    .col(ColumnDef::new(AuditLog::At).timestamp_with_time_zone().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(AuditLog::Table, AuditLog::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(AuditLog::Table, AuditLog::ActorId)
                            .to(Agents::Table, Agents::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        // Every read is one organization's entries, newest first.
        manager
            .create_index(
                Index::create()
                    .name("audit_log_organization")
                    .table(AuditLog::Table)
                    .col(AuditLog::OrganizationId)
                    .col(AuditLog::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(AuditLog::Table).to_owned()).await
    }
}
