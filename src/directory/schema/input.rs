//! What the directory's operations read and how they refuse: client ids decoded, and
//! directory errors turned into `userErrors` or top-level errors, here and only here.

use async_graphql::ID;

use crate::{
    directory::error::{DirectoryError, Field, Problem},
    graphql::{
        ApiError, UserError, UserErrorCode,
        id::{self, NodeKind},
    },
};

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
pub(super) fn agent_ids(ids: &[ID]) -> Vec<Option<i64>> {
    ids.iter().map(|id| id::decode_as(id, NodeKind::Agent)).collect()
}

pub(super) fn queue_ids(ids: &[ID]) -> Vec<Option<i64>> {
    ids.iter().map(|id| id::decode_as(id, NodeKind::Queue)).collect()
}
