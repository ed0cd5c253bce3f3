use sea_orm::entity::prelude::*;

/// The sign-in allowance of an account or of a client address, shared by every instance
/// (see `auth::throttle`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "login_allowances")]
pub struct Model {
    /// Hex digest of the account (organization slug and username) or of the client address.
    /// The column keeps the name it had when only accounts had an allowance: renaming it
    /// would fail the sign-ins of instances still on the previous release during a rolling
    /// upgrade.
    #[sea_orm(primary_key, auto_increment = false, column_name = "account_key")]
    pub throttle_key: String,
    /// GCRA's theoretical arrival time, in milliseconds since the epoch by the database's
    /// clock.
    pub allowance_at_ms: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
