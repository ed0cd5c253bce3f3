use sea_orm::entity::prelude::*;

use crate::presence::model::{Presence, PresenceReason};

/// One change of an agent's presence, kept for the configured retention.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "presence_history")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub organization_id: i64,
    pub agent_id: i64,
    pub status: Presence,
    pub reason: PresenceReason,
    pub at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
