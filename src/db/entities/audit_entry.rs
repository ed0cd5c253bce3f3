use sea_orm::entity::prelude::*;

use crate::audit::model::{Action, TargetType};

/// One recorded action. Rows are only ever inserted.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub organization_id: Option<i64>,
    pub actor_id: Option<i64>,
    pub actor_username: Option<String>,
    pub action: Action,
    pub target_type: Option<TargetType>,
    pub target_id: Option<i64>,
    /// Comma-separated API field names.
    pub changed_fields: String,
    pub client_address: Option<String>,
    pub at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
