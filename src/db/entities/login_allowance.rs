use sea_orm::entity::prelude::*;

/// The sign-in allowance of an account or of a client address, shared by every instance
/// (see `auth::throttle`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "login_allowances")]
pub struct Model {
    /// Hex digest of the account (organization slug and username) or of the client address.
    #[sea_orm(primary_key, auto_increment = false)]
    pub throttle_key: String,
    /// GCRA's theoretical arrival time, in milliseconds since the epoch.
    pub allowance_at_ms: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
