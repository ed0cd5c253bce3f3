//! SQL for organizations and agents. Every agent query is scoped by organization and skips
//! deleted agents, through `live_agents`.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, Select,
};

use crate::db::entities::{agent, organization, queue, queue_member};

/// The one entry point for reading agents: this organization's, not deleted.
fn live_agents(organization_id: i64) -> Select<agent::Entity> {
    agent::Entity::find()
        .filter(agent::Column::OrganizationId.eq(organization_id))
        .filter(agent::Column::DeletedAt.is_null())
}

pub(super) async fn find_organization(
    db: &impl ConnectionTrait,
    organization_id: i64,
) -> Result<Option<organization::Model>, DbErr> {
    organization::Entity::find_by_id(organization_id).one(db).await
}

pub(super) async fn count_organizations(db: &impl ConnectionTrait) -> Result<u64, DbErr> {
    organization::Entity::find().count(db).await
}

pub(super) async fn slug_exists(db: &impl ConnectionTrait, slug: &str) -> Result<bool, DbErr> {
    Ok(organization::Entity::find().filter(organization::Column::Slug.eq(slug)).count(db).await? > 0)
}

pub(super) async fn insert_organization(
    db: &impl ConnectionTrait,
    organization: organization::ActiveModel,
) -> Result<organization::Model, DbErr> {
    organization::Entity::insert(organization).exec_with_returning(db).await
}

pub(super) async fn find_agent(
    db: &impl ConnectionTrait,
    organization_id: i64,
    agent_id: i64,
) -> Result<Option<agent::Model>, DbErr> {
    live_agents(organization_id).filter(agent::Column::Id.eq(agent_id)).one(db).await
}

/// Members of a live queue of the organization; None when there is no such queue.
pub(super) async fn queue_member_ids(
    db: &impl ConnectionTrait,
    organization_id: i64,
    queue_id: i64,
) -> Result<Option<Vec<i64>>, DbErr> {
    let queue = queue::Entity::find_by_id(queue_id)
        .filter(queue::Column::OrganizationId.eq(organization_id))
        .filter(queue::Column::DeletedAt.is_null())
        .one(db)
        .await?;
    if queue.is_none() {
        return Ok(None);
    }
    let members =
        queue_member::Entity::find().filter(queue_member::Column::QueueId.eq(queue_id)).all(db).await?;
    Ok(Some(members.into_iter().map(|member| member.agent_id).collect()))
}

pub(super) async fn insert_agent(
    db: &impl ConnectionTrait,
    mut agent: agent::ActiveModel,
    organization_id: i64,
) -> Result<agent::Model, DbErr> {
    agent.organization_id = Set(organization_id);
    agent::Entity::insert(agent).exec_with_returning(db).await
}
