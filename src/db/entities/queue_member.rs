use sea_orm::entity::prelude::*;

/// An agent's membership of a queue: it is offered that queue's conversations.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "queue_members")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub queue_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub agent_id: i64,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
