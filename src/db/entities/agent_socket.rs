use sea_orm::entity::prelude::*;

/// A signed-in WebSocket connection, held open by one server instance. An agent whose last
/// one closes (or whose instance stops heart-beating) lapses to OFFLINE after the grace.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "agent_sockets")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub instance_id: String,
    pub agent_id: i64,
    pub opened_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
