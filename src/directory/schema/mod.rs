//! GraphQL types and thin resolvers of the directory: read the viewer, call the service, map
//! the result. Directory errors become `userErrors` or top-level errors here, and only here.

mod agent;
mod mutations;
mod organization;
mod queue;
mod subscription;

use async_graphql::{Enum, ID};

pub use agent::{Agent, AgentConnection, AgentQuery};
pub use mutations::DirectoryMutation;
pub use organization::{Organization, OrganizationQuery};
pub use queue::{Queue, QueueQuery};
pub use subscription::DirectorySubscription;

use super::error::{DirectoryError, Field, Problem};
use crate::graphql::{
    ApiError, UserError, UserErrorCode,
    id::{self, NodeKind},
};

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "crate::db::entities::agent::Role")]
pub enum AgentRole {
    Admin,
    Agent,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "crate::db::entities::agent::Presence")]
pub enum PresenceStatus {
    Online,
    Offline,
}

/// Why an agent's presence was last set.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "crate::db::entities::agent::PresenceReason")]
pub enum PresenceReason {
    /// The agent's workspace reported it.
    Reported,
    /// ONLINE was not renewed within the presence TTL.
    TtlExpired,
    /// The agent's last WebSocket connection closed and none opened within the grace.
    Disconnected,
    /// The agent was disabled.
    Disabled,
    /// The agent was deleted.
    Deleted,
    /// Recovered at start-up: the servers had all stopped while the agent was ONLINE.
    ServerRestart,
}

#[derive(async_graphql::MergedObject, Default)]
pub struct DirectoryQuery(OrganizationQuery, AgentQuery, QueueQuery);

/// The path of the input a problem is about, as the client sent it.
fn field_path(field: Field) -> Vec<String> {
    let input = |name: &str| vec!["input".to_owned(), name.to_owned()];
    match field {
        Field::Id => vec!["id".into()],
        Field::InputId => input("id"),
        Field::DisplayName => input("displayName"),
        Field::Username => input("username"),
        Field::Password => input("password"),
        Field::NewPassword => input("newPassword"),
        Field::Email => input("email"),
        Field::Role => input("role"),
        Field::Enabled => input("enabled"),
        Field::MaxConcurrentSessions => input("maxConcurrentSessions"),
        Field::QueueId(index) => vec!["input".into(), "queueIds".into(), index.to_string()],
        Field::IdList => vec!["ids".into()],
        Field::Ids(index) => vec!["ids".into(), index.to_string()],
        Field::QueueOfMembership => vec!["queueId".into()],
        Field::AgentIdList => vec!["agentIds".into()],
        Field::AgentIds(index) => vec!["agentIds".into(), index.to_string()],
        Field::QueueName => input("name"),
        Field::MoveWaitingTo => vec!["moveWaitingTo".into()],
    }
}

fn code(problem: Problem) -> UserErrorCode {
    match problem {
        Problem::DisplayNameRequired => UserErrorCode::DisplayNameRequired,
        Problem::DisplayNameTooLong => UserErrorCode::DisplayNameTooLong,
        Problem::InvalidUsername => UserErrorCode::InvalidUsername,
        Problem::UsernameTaken => UserErrorCode::UsernameTaken,
        Problem::Password(crate::auth::model::PasswordProblem::TooShort) => UserErrorCode::PasswordTooShort,
        Problem::Password(crate::auth::model::PasswordProblem::TooLong) => UserErrorCode::PasswordTooLong,
        Problem::InvalidEmail => UserErrorCode::InvalidEmail,
        Problem::InvalidMaxConcurrentSessions => UserErrorCode::InvalidMaxConcurrentSessions,
        Problem::NotFound => UserErrorCode::NotFound,
        Problem::SeatLimitReached => UserErrorCode::SeatLimitReached,
        Problem::TooManyIds => UserErrorCode::TooManyIds,
        Problem::CannotModifySelf => UserErrorCode::CannotModifySelf,
        Problem::LastAdmin => UserErrorCode::LastAdmin,
        Problem::InvalidQueueName => UserErrorCode::InvalidQueueName,
        Problem::QueueNameTaken => UserErrorCode::QueueNameTaken,
        Problem::ServiceDisabled => UserErrorCode::HumanAgentServiceDisabled,
        Problem::QueueHasWaitingConversations => UserErrorCode::QueueHasWaitingConversations,
    }
}

impl From<DirectoryError> for ApiError {
    fn from(error: DirectoryError) -> Self {
        match error {
            DirectoryError::Rejected(rejections) => ApiError::User(
                rejections
                    .into_iter()
                    .map(|rejection| UserError {
                        field: rejection.field.map(field_path),
                        message: rejection.problem.message().to_owned(),
                        code: code(rejection.problem),
                    })
                    .collect(),
            ),
            DirectoryError::Forbidden => ApiError::Forbidden,
            DirectoryError::Database(error) => error.into(),
            other => ApiError::Internal(Box::new(other)),
        }
    }
}

/// Decodes client-given agent ids; an id that is not an agent id stays `None` (not found).
fn agent_ids(ids: &[ID]) -> Vec<Option<i64>> {
    ids.iter().map(|id| id::decode_as(id, NodeKind::Agent)).collect()
}

fn queue_ids(ids: &[ID]) -> Vec<Option<i64>> {
    ids.iter().map(|id| id::decode_as(id, NodeKind::Queue)).collect()
}
