//! Indexes so that reading conversations costs what is read, not the history: conversations
//! are never deleted, so an organization's closed ones pile up for as long as it serves.
//!
//! - `conversations_status_queue` (status, organization, queue): the queues with waiting
//!   conversations, which the routing sweep of every instance looks for every few seconds
//!   across all organizations. Without it each sweep read every conversation ever held.
//! - `conversations_organization_id`, `conversations_organization_status_id`,
//!   `conversations_agent_id`: the `conversations` connection's order (newest first, by id)
//!   within an organization, a status of it, and an agent's own (all an AGENT may list), so a
//!   page walks an index from its cursor and stops after `limit + 1` entries. Without them a
//!   page read and sorted every conversation of the organization, or of the agent.
//!
//! None is partial (`WHERE status = 'WAITING'`): the status is a bound parameter, and
//! PostgreSQL's generic plans cannot prove a partial index's condition from one.
//!
//! On PostgreSQL, statistics that an agent's conversations are all of one organization
//! (`conversations_agent_organization`): without them its planner multiplies the two
//! conditions' selectivities, expects an agent's page to hold a few rows, and reads and sorts
//! the agent's whole history rather than walk `conversations_agent_id`.

use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

const CREATE_AGENT_ORGANIZATION_STATISTICS: &str = "CREATE STATISTICS conversations_agent_organization \
     (dependencies) ON organization_id, assigned_agent_id FROM conversations";

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Conversations {
    Table,
    Id,
    Status,
    OrganizationId,
    QueueId,
    AssignedAgentId,
}

fn indexes() -> [(&'static str, Vec<Conversations>); 4] {
    use Conversations::*;
    [
        ("conversations_status_queue", vec![Status, OrganizationId, QueueId]),
        ("conversations_organization_id", vec![OrganizationId, Id]),
        ("conversations_organization_status_id", vec![OrganizationId, Status, Id]),
        ("conversations_agent_id", vec![AssignedAgentId, Id]),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, columns) in indexes() {
            let mut index = Index::create();
            index.name(name).table(Conversations::Table);
            for column in columns {
                index.col(column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        if manager.get_database_backend() == DbBackend::Postgres {
            manager.get_connection().execute_unprepared(CREATE_AGENT_ORGANIZATION_STATISTICS).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared("DROP STATISTICS conversations_agent_organization")
                .await?;
        }
        for (name, _) in indexes() {
            manager.drop_index(Index::drop().name(name).table(Conversations::Table).to_owned()).await?;
        }
        Ok(())
    }
}
