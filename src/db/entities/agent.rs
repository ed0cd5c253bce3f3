use sea_orm::entity::prelude::*;

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

/// The row without the password hash and the bookkeeping only presence and routing read
/// (`organization_id`, which the query already fixes, included): every read for display
/// selects exactly these columns, and the stores map it to the directory's `AgentRecord`.
#[derive(Clone, Debug, PartialEq, Eq, DerivePartialModel)]
#[sea_orm(entity = "Entity")]
pub struct AgentRow {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    pub role: Role,
    pub enabled: bool,
    pub presence: Presence,
    pub presence_changed_at: Option<DateTimeUtc>,
    pub presence_reason: Option<PresenceReason>,
    pub show_real_phone_numbers: bool,
    pub max_concurrent_sessions: Option<i32>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub active_sessions: i32,
    pub deleted_at: Option<DateTimeUtc>,
}

/// A row a write returned whole, as shown.
impl From<Model> for AgentRow {
    fn from(row: Model) -> Self {
        Self {
            id: row.id,
            username: row.username,
            display_name: row.display_name,
            email: row.email,
            role: row.role,
            enabled: row.enabled,
            presence: row.presence,
            presence_changed_at: row.presence_changed_at,
            presence_reason: row.presence_reason,
            show_real_phone_numbers: row.show_real_phone_numbers,
            max_concurrent_sessions: row.max_concurrent_sessions,
            created_at: row.created_at,
            updated_at: row.updated_at,
            active_sessions: row.active_sessions,
            deleted_at: row.deleted_at,
        }
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
