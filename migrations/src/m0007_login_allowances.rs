//! Each account's sign-in allowance in the database, so that every instance draws on the
//! same one (the in-memory limiters are per instance).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum LoginAllowances {
    Table,
    /// A digest of organization slug and username, as the client sent them: accounts that
    /// do not exist are limited alike, so refusals do not tell which ones do.
    AccountKey,
    /// When the allowance is whole again, as GCRA keeps it (its "theoretical arrival
    /// time"), in milliseconds since the epoch. An integer, so that the statement taking an
    /// attempt computes it in SQL both back-ends share.
    AllowanceAtMs,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(LoginAllowances::Table)
                    .col(string(LoginAllowances::AccountKey).primary_key())
                    .col(big_integer(LoginAllowances::AllowanceAtMs))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(LoginAllowances::Table).to_owned()).await
    }
}
