//! Everything a directory operation can refuse, in domain terms. `schema.rs` turns these into
//! `userErrors` (with the input path of the field) or top-level errors, in one place.

use sea_orm::DbErr;

use crate::auth::{model::PasswordProblem, password::HashingError};

/// The input a problem is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// The `id` argument.
    Id,
    /// The `id` of an `input`.
    InputId,
    DisplayName,
    Username,
    Password,
    NewPassword,
    Email,
    Role,
    Enabled,
    MaxConcurrentSessions,
    /// The n-th of the queue ids given with an agent.
    QueueId(usize),
    /// The ids of a bulk operation, as a whole.
    IdList,
    /// The n-th of the ids of a bulk operation.
    Ids(usize),
    /// The queue of a membership change.
    QueueOfMembership,
    /// The agent ids of a membership change, as a whole.
    AgentIdList,
    /// The n-th agent id of a membership change.
    AgentIds(usize),
    QueueName,
    /// `moveWaitingTo` of a queue deletion.
    MoveWaitingTo,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
    DisplayNameRequired,
    DisplayNameTooLong,
    InvalidUsername,
    UsernameTaken,
    Password(PasswordProblem),
    InvalidEmail,
    InvalidMaxConcurrentSessions,
    NotFound,
    SeatLimitReached,
    TooManyIds,
    CannotModifySelf,
    LastAdmin,
    InvalidQueueName,
    QueueNameTaken,
    ServiceDisabled,
    QueueHasWaitingConversations,
}

impl Problem {
    pub fn message(self) -> &'static str {
        match self {
            Problem::DisplayNameRequired => "Enter a display name.",
            Problem::DisplayNameTooLong => "The display name must be at most 100 characters.",
            Problem::InvalidUsername => "The username must be 3–64 characters of a–z, 0–9, '.', '_' and '-'.",
            Problem::UsernameTaken => "This username is already taken in your organization.",
            Problem::Password(PasswordProblem::TooShort) => "The password must be at least 6 characters.",
            Problem::Password(PasswordProblem::TooLong) => "The password must be at most 1024 bytes.",
            Problem::InvalidEmail => "Enter a valid e-mail address, or leave it empty.",
            Problem::InvalidMaxConcurrentSessions => {
                "Max concurrent sessions must be between 1 and 1000, or empty for unlimited."
            }
            Problem::NotFound => "There is no such item in your organization.",
            Problem::SeatLimitReached => {
                "Every seat of your plan is in use; delete an agent, or ask the operator to raise the limit."
            }
            Problem::TooManyIds => "Give between 1 and 1000 ids.",
            Problem::CannotModifySelf => "You cannot disable, delete or demote yourself.",
            Problem::LastAdmin => "This would leave the organization without an enabled administrator.",
            Problem::InvalidQueueName => "The queue name must be 1–100 characters.",
            Problem::QueueNameTaken => "A queue with this name already exists.",
            Problem::ServiceDisabled => "The human-agent service is disabled for your organization.",
            Problem::QueueHasWaitingConversations => {
                "Customers are waiting in this queue: name another queue to move them to (moveWaitingTo)."
            }
        }
    }
}

/// A problem, and the input it is about (None: the request as a whole).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub field: Option<Field>,
    pub problem: Problem,
}

impl Rejection {
    pub fn of(field: Field, problem: Problem) -> Self {
        Self { field: Some(field), problem }
    }

    pub fn whole(problem: Problem) -> Self {
        Self { field: None, problem }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// Input a person can fix; nothing was written.
    #[error("rejected: {0:?}")]
    Rejected(Vec<Rejection>),
    /// The viewer's role does not allow this.
    #[error("forbidden")]
    Forbidden,
    #[error("The slug must be 2–64 characters of a–z, 0–9 and '-'.")]
    InvalidSlug,
    #[error("An organization with this slug already exists.")]
    SlugTaken,
    #[error("The username must be 3–64 characters of a–z, 0–9, '.', '_' and '-'.")]
    InvalidUsername,
    #[error("The password must be at least 6 characters and at most 1024 bytes.")]
    InvalidPassword(PasswordProblem),
    #[error("The organization name must be 1–100 characters.")]
    InvalidOrganizationName,
    #[error("The seat limit must be between 1 and 100000.")]
    InvalidSeatLimit,
    #[error("There is no organization with this slug.")]
    OrganizationNotFound,
    #[error(transparent)]
    Database(#[from] DbErr),
    #[error(transparent)]
    Hashing(#[from] HashingError),
}

impl From<Rejection> for DirectoryError {
    fn from(rejection: Rejection) -> Self {
        DirectoryError::Rejected(vec![rejection])
    }
}

impl From<Vec<Rejection>> for DirectoryError {
    fn from(rejections: Vec<Rejection>) -> Self {
        DirectoryError::Rejected(rejections)
    }
}
