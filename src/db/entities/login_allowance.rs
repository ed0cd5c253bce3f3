use sea_orm::entity::prelude::*;

/// An account's sign-in allowance, shared by every instance (see `auth::throttle`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "login_allowances")]
pub struct Model {
    /// Hex digest of organization slug and username.
    #[sea_orm(primary_key, auto_increment = false)]
    pub account_key: String,
    /// GCRA's theoretical arrival time, in milliseconds since the epoch.
    pub allowance_at_ms: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
