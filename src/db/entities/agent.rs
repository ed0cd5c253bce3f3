use sea_orm::{
    FromQueryResult, PartialModelTrait, QuerySelect, TryGetable,
    entity::prelude::*,
    sqlx::{Row as _, ValueRef as _},
};

use crate::{
    presence::model::{Presence, PresenceReason},
    viewer::Role,
};

/// One row per agent, written by three capabilities, each only its own columns: presence
/// owns `presence`, `presence_changed_at`, `presence_reason`, `presence_expires_at` and
/// `presence_grace_until`; routing owns `active_sessions` and `idle_since`; the directory
/// owns the rest, and inserts a new agent OFFLINE (the capacity columns start at their
/// defaults). One row rather than three tables: the router's one conditional UPDATE reads
/// the profile, the presence and the capacity together.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "agents")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub organization_id: i64,
    /// Lower-case; never changes after creation.
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    pub role: Role,
    pub enabled: bool,
    pub password_hash: String,
    pub presence: Presence,
    pub presence_changed_at: Option<DateTimeUtc>,
    /// Why `presence` was last set; None until it first changes.
    pub presence_reason: Option<PresenceReason>,
    /// ONLINE lapses after this unless reported again (presence TTL).
    pub presence_expires_at: Option<DateTimeUtc>,
    /// Set when the agent's last WebSocket closed: ONLINE lapses after this unless one opens.
    pub presence_grace_until: Option<DateTimeUtc>,
    pub show_real_phone_numbers: bool,
    /// None means unlimited.
    pub max_concurrent_sessions: Option<i32>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// Conversations assigned and not closed.
    pub active_sessions: i32,
    /// When the agent last got or finished a conversation; None: never.
    pub idle_since: Option<DateTimeUtc>,
    /// Deleted agents stay for the history that refers to them; set means deleted.
    pub deleted_at: Option<DateTimeUtc>,
}

/// An agent as every capability shows it: the row without the password hash and the
/// bookkeeping only presence and routing read (`organization_id`, which the query already
/// fixes, included). It is defined here, with the table, because the directory, presence
/// and sign-in all show it and sit at different heights of the capability order; the
/// directory's model re-exports it as its record. Read in two parts, because a page of the
/// directory reads only the card and the rest when a field asks for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentRecord {
    pub card: AgentCard,
    pub details: AgentDetails,
}

/// What a page of the directory reads of each agent: the columns a listing shows (and sorts
/// by).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentCard {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    pub role: Role,
    pub enabled: bool,
    pub presence: Presence,
    pub created_at: DateTimeUtc,
}

/// The rest of an `AgentRecord`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentDetails {
    pub presence_changed_at: Option<DateTimeUtc>,
    pub presence_reason: Option<PresenceReason>,
    pub show_real_phone_numbers: bool,
    pub max_concurrent_sessions: Option<i32>,
    pub updated_at: DateTimeUtc,
    pub active_sessions: i32,
    pub deleted_at: Option<DateTimeUtc>,
}

/// The columns of an `AgentRecord`, in the order its decoding reads them: the card's first.
const COLUMNS: [Column; 15] = [
    Column::Id,
    Column::Username,
    Column::DisplayName,
    Column::Email,
    Column::Role,
    Column::Enabled,
    Column::Presence,
    Column::CreatedAt,
    Column::PresenceChangedAt,
    Column::PresenceReason,
    Column::ShowRealPhoneNumbers,
    Column::MaxConcurrentSessions,
    Column::UpdatedAt,
    Column::ActiveSessions,
    Column::DeletedAt,
];
const CARD_COLUMNS: usize = 8;

/// Selects `COLUMNS`, first in the projection and in order, so that the row can be decoded by
/// position.
impl PartialModelTrait for AgentRecord {
    fn select_cols_nested<S: QuerySelect>(
        select: S,
        _prefix: Option<&str>,
        _alias: Option<&'static str>,
    ) -> S {
        select_in_order(select, &COLUMNS)
    }
}

impl PartialModelTrait for AgentCard {
    fn select_cols_nested<S: QuerySelect>(
        select: S,
        _prefix: Option<&str>,
        _alias: Option<&'static str>,
    ) -> S {
        select_in_order(select, &COLUMNS[..CARD_COLUMNS])
    }
}

/// Appends `columns` to the projection in this order, which the decoding by position relies
/// on.
fn select_in_order<S: QuerySelect>(select: S, columns: &[Column]) -> S {
    columns.iter().fold(select, |select, column| select.column(*column))
}

/// Decoded by position, not by name as sea-orm's derive does: a lookup by name formats and
/// hashes the column's name for every value, which was a tenth of the agents page's
/// instructions (BENCHMARKS.md). Every read goes through `select_cols`
/// (`into_partial_model`), which puts `COLUMNS` first and in this order.
impl FromQueryResult for AgentRecord {
    fn from_query_result(row: &QueryResult, prefix: &str) -> Result<Self, DbErr> {
        let card = AgentCard::from_query_result(row, prefix)?;
        let details = AgentDetails::from_query_result(row, prefix)?;
        Ok(Self { card, details })
    }
}

impl FromQueryResult for AgentCard {
    fn from_query_result(row: &QueryResult, prefix: &str) -> Result<Self, DbErr> {
        by_position(prefix)?;
        Ok(Self {
            id: row.try_get_by_index(0)?,
            username: row.try_get_by_index(1)?,
            display_name: row.try_get_by_index(2)?,
            email: nullable(row, 3)?,
            role: row.try_get_by_index(4)?,
            enabled: row.try_get_by_index(5)?,
            presence: row.try_get_by_index(6)?,
            created_at: row.try_get_by_index(7)?,
        })
    }
}

/// The details of a row that selected all of `COLUMNS`: they follow the card's.
impl FromQueryResult for AgentDetails {
    fn from_query_result(row: &QueryResult, prefix: &str) -> Result<Self, DbErr> {
        by_position(prefix)?;
        Ok(Self {
            presence_changed_at: nullable(row, CARD_COLUMNS)?,
            presence_reason: nullable(row, CARD_COLUMNS + 1)?,
            show_real_phone_numbers: row.try_get_by_index(CARD_COLUMNS + 2)?,
            max_concurrent_sessions: nullable(row, CARD_COLUMNS + 3)?,
            updated_at: row.try_get_by_index(CARD_COLUMNS + 4)?,
            active_sessions: row.try_get_by_index(CARD_COLUMNS + 5)?,
            deleted_at: nullable(row, CARD_COLUMNS + 6)?,
        })
    }
}

/// Rows decoded by position cannot be nested in another model's, which names its columns
/// with a prefix.
fn by_position(prefix: &str) -> Result<(), DbErr> {
    if prefix.is_empty() {
        Ok(())
    } else {
        Err(DbErr::Type(format!("agent rows are read by position and cannot be nested (prefix `{prefix}`)")))
    }
}

/// A row a write (or sign-in) read whole, as shown: the hash goes no further.
impl From<Model> for AgentRecord {
    fn from(row: Model) -> Self {
        let card = AgentCard {
            id: row.id,
            username: row.username,
            display_name: row.display_name,
            email: row.email,
            role: row.role,
            enabled: row.enabled,
            presence: row.presence,
            created_at: row.created_at,
        };
        let details = AgentDetails {
            presence_changed_at: row.presence_changed_at,
            presence_reason: row.presence_reason,
            show_real_phone_numbers: row.show_real_phone_numbers,
            max_concurrent_sessions: row.max_concurrent_sessions,
            updated_at: row.updated_at,
            active_sessions: row.active_sessions,
            deleted_at: row.deleted_at,
        };
        Self { card, details }
    }
}

/// A nullable column by position. sea-orm reads a NULL into `Option<T>` by way of an error
/// whose message it formats and then drops, a thousand instructions a NULL (and a page of
/// agents has four a row): the value is looked at first.
fn nullable<T: TryGetable>(row: &QueryResult, index: usize) -> Result<Option<T>, DbErr> {
    let null = if let Some(row) = row.try_as_sqlite_row() {
        row.try_get_raw(index).map(|value| value.is_null())
    } else if let Some(row) = row.try_as_pg_row() {
        row.try_get_raw(index).map(|value| value.is_null())
    } else {
        Ok(false)
    };
    match null {
        Ok(true) => Ok(None),
        _ => row.try_get_by_index(index),
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::organization::Entity",
        from = "Column::OrganizationId",
        to = "super::organization::Column::Id"
    )]
    Organization,
}

impl Related<super::organization::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Organization.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
