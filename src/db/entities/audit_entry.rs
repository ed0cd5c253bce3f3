use sea_orm::entity::prelude::*;

/// What an audit entry records. The database spelling is the API's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum Action {
    #[sea_orm(string_value = "AGENT_CREATED")]
    AgentCreated,
    #[sea_orm(string_value = "AGENT_UPDATED")]
    AgentUpdated,
    #[sea_orm(string_value = "AGENT_ENABLED")]
    AgentEnabled,
    #[sea_orm(string_value = "AGENT_DISABLED")]
    AgentDisabled,
    #[sea_orm(string_value = "AGENT_DELETED")]
    AgentDeleted,
    #[sea_orm(string_value = "QUEUE_CREATED")]
    QueueCreated,
    #[sea_orm(string_value = "QUEUE_UPDATED")]
    QueueUpdated,
    #[sea_orm(string_value = "QUEUE_DELETED")]
    QueueDeleted,
    #[sea_orm(string_value = "QUEUE_AGENTS_ADDED")]
    QueueAgentsAdded,
    #[sea_orm(string_value = "QUEUE_AGENTS_REMOVED")]
    QueueAgentsRemoved,
    #[sea_orm(string_value = "SIGN_IN_SUCCEEDED")]
    SignInSucceeded,
    /// Unknown organization or username, or a wrong password.
    #[sea_orm(string_value = "SIGN_IN_FAILED")]
    SignInFailed,
    /// The right password of a disabled agent.
    #[sea_orm(string_value = "SIGN_IN_REFUSED_DISABLED")]
    SignInRefusedDisabled,
    /// One session ended by `endSession` (its own agent's, or by an ADMIN).
    #[sea_orm(string_value = "SESSION_ENDED")]
    SessionEnded,
    /// `logoutEverywhere`: every session of the agent, but perhaps the caller's own.
    #[sea_orm(string_value = "SIGNED_OUT_EVERYWHERE")]
    SignedOutEverywhere,
    /// An operator changed the organization (name, seats, human-agent service) with
    /// `agentdesk org update`.
    #[sea_orm(string_value = "ORGANIZATION_UPDATED")]
    OrganizationUpdated,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum TargetType {
    #[sea_orm(string_value = "AGENT")]
    Agent,
    #[sea_orm(string_value = "QUEUE")]
    Queue,
    #[sea_orm(string_value = "ORGANIZATION")]
    Organization,
}

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
