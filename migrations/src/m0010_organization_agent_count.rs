//! How many live agents each organization has, kept in its row by the transactions that
//! create and delete agents: the directory's unfiltered `totalCount` and the seats used are
//! read from it rather than counted over every agent.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organizations {
    Table,
    AgentCount,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Organizations::Table)
                    .add_column(big_integer(Organizations::AgentCount).default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE organizations SET agent_count = (SELECT COUNT(*) FROM agents \
                 WHERE agents.organization_id = organizations.id AND agents.deleted_at IS NULL)",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter().table(Organizations::Table).drop_column(Organizations::AgentCount).to_owned(),
            )
            .await
    }
}
