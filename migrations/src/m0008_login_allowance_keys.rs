//! Client addresses get a shared sign-in allowance too, in the same table: its key column
//! now names either an account or an address. (Allowances live a minute or two, so the
//! rows kept by the rename need no conversion.)

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum LoginAllowances {
    Table,
    AccountKey,
    /// A digest of the account (organization slug and username, as the client sent them)
    /// or of the client address.
    ThrottleKey,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        rename(manager, LoginAllowances::AccountKey, LoginAllowances::ThrottleKey).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        rename(manager, LoginAllowances::ThrottleKey, LoginAllowances::AccountKey).await
    }
}

async fn rename(
    manager: &SchemaManager<'_>,
    from: LoginAllowances,
    to: LoginAllowances,
) -> Result<(), DbErr> {
    manager.alter_table(Table::alter().table(LoginAllowances::Table).rename_column(from, to).to_owned()).await
}
