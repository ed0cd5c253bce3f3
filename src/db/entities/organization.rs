use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "organizations")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    pub slug: String,
    pub seat_limit: i32,
    pub human_agent_service_enabled: bool,
    pub created_at: DateTimeUtc,
    /// Live agents, each holding a seat: kept by the transactions that create and delete
    /// agents (`directory::store::insert_agent`, `soft_delete_agents`), so it never needs a
    /// count over the agents.
    pub agent_count: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
