//! The queues with waiting conversations, which the routing sweep of every instance looks
//! for every few seconds, found through an index led by the status: without it each sweep
//! read every conversation ever held, closed ones included, by every organization. Not
//! partial (`WHERE status = 'WAITING'`): the status is a bound parameter, and PostgreSQL's
//! generic plans cannot prove a partial index's condition from one.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Conversations {
    Table,
    Status,
    OrganizationId,
    QueueId,
}

const NAME: &str = "conversations_status_queue";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(NAME)
                    .table(Conversations::Table)
                    .col(Conversations::Status)
                    .col(Conversations::OrganizationId)
                    .col(Conversations::QueueId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name(NAME).table(Conversations::Table).to_owned()).await
    }
}
