use sea_orm::entity::prelude::*;

use crate::routing::model::Status;

/// An inbound contact on a queue, waiting for, assigned to, or closed by an agent.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "conversations")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub organization_id: i64,
    pub queue_id: i64,
    pub status: Status,
    pub customer_name: Option<String>,
    /// E.164; shown masked to viewers without `show_real_phone_numbers`.
    pub customer_phone: Option<String>,
    /// The agent holding it (ASSIGNED) or who closed it (CLOSED); None while WAITING.
    pub assigned_agent_id: Option<i64>,
    pub created_at: DateTimeUtc,
    /// When it was last assigned; kept when it goes back to WAITING, so it still counts
    /// among the sessions handled.
    pub assigned_at: Option<DateTimeUtc>,
    pub closed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
