//! The error model at the API edge. Problems a person can fix become `userErrors` in the
//! mutation payload (HTTP 200, nothing written); everything else is a top-level error with
//! `extensions.code`. Each capability maps its own error enum to `ApiError` in one place (its
//! `schema.rs`); this module turns `ApiError` into GraphQL.

use async_graphql::{Enum, ErrorExtensions, SimpleObject};

use crate::{db::Outage, events::WatchError};

/// Machine-readable reason of a `UserError`; API.md's codes plus a few more specific ones.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum UserErrorCode {
    InvalidCredentials,
    AgentDisabled,
    UsernameTaken,
    InvalidUsername,
    PasswordTooShort,
    /// More than 1024 bytes.
    PasswordTooLong,
    InvalidEmail,
    DisplayNameRequired,
    /// Over 100 characters after trimming.
    DisplayNameTooLong,
    InvalidMaxConcurrentSessions,
    SeatLimitReached,
    NotFound,
    QueueNameTaken,
    /// Queue name empty or over 100 characters after trimming.
    InvalidQueueName,
    HumanAgentServiceDisabled,
    CannotModifySelf,
    LastAdmin,
    RateLimited,
    InvalidPhone,
    /// Over 200 characters after trimming.
    CustomerNameTooLong,
    TooManyIds,
    /// A queue with waiting conversations cannot be deleted without `moveWaitingTo`.
    QueueHasWaitingConversations,
}

/// An input problem a person can fix, reported next to the field that caused it.
#[derive(SimpleObject, Clone, Debug)]
pub struct UserError {
    /// Path to the input field, e.g. `["input", "username"]` or `["ids", "3"]`.
    pub field: Option<Vec<String>>,
    pub message: String,
    pub code: UserErrorCode,
}

impl UserError {
    pub fn new(code: UserErrorCode, message: impl Into<String>) -> Self {
        Self { field: None, message: message.into(), code }
    }

    pub fn at<S: Into<String>>(mut self, path: impl IntoIterator<Item = S>) -> Self {
        self.field = Some(path.into_iter().map(Into::into).collect());
        self
    }
}

#[derive(Debug)]
pub enum ApiError {
    User(Vec<UserError>),
    Unauthenticated,
    Forbidden,
    BadRequest(String),
    /// A subscription missed events and has ended; the message says what to do.
    SubscriptionBehind(String),
    /// The database refuses work for now; nothing was written. Detail is logged.
    Unavailable(Outage),
    /// Detail is logged, never sent.
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

impl From<UserError> for ApiError {
    fn from(error: UserError) -> Self {
        ApiError::User(vec![error])
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(error: sea_orm::DbErr) -> Self {
        match Outage::of(&error) {
            Some(outage) => {
                tracing::warn!(%error, "the database refused a request");
                ApiError::Unavailable(outage)
            }
            None => ApiError::Internal(Box::new(error)),
        }
    }
}

/// What a DataLoader failed with.
impl From<std::sync::Arc<sea_orm::DbErr>> for ApiError {
    fn from(error: std::sync::Arc<sea_orm::DbErr>) -> Self {
        (*error).clone().into()
    }
}

impl From<WatchError> for ApiError {
    fn from(error: WatchError) -> Self {
        match error {
            WatchError::Missed => ApiError::SubscriptionBehind(
                "This subscription missed events and has ended: query the current state, and subscribe again."
                    .to_owned(),
            ),
            WatchError::Database(error) => error.into(),
        }
    }
}

impl ApiError {
    pub fn into_graphql(self) -> async_graphql::Error {
        let (code, message) = match self {
            ApiError::Unauthenticated => ("UNAUTHENTICATED", "Sign in first.".to_owned()),
            ApiError::Forbidden => ("FORBIDDEN", "Your role does not allow this.".to_owned()),
            ApiError::BadRequest(message) => ("BAD_REQUEST", message),
            ApiError::SubscriptionBehind(message) => ("SUBSCRIPTION_BEHIND", message),
            ApiError::User(errors) => {
                let message = errors.iter().map(|e| e.message.as_str()).collect::<Vec<_>>().join(" ");
                let code = errors.first().map(|e| e.code);
                return async_graphql::Error::new(message).extend_with(|_, ext| {
                    ext.set("code", "BAD_REQUEST");
                    if let Some(code) = code {
                        ext.set("reason", code);
                    }
                });
            }
            ApiError::Unavailable(outage) => {
                let (message, retry_after) = match outage {
                    Outage::StorageFull => {
                        ("The server's storage is full; nothing was saved. Try again later.", 30)
                    }
                    Outage::Unreachable => {
                        ("The database is unavailable; nothing was saved. Try again shortly.", 5)
                    }
                };
                return async_graphql::Error::new(message).extend_with(|_, ext| {
                    ext.set("code", "UNAVAILABLE");
                    ext.set("retryAfterSeconds", retry_after);
                });
            }
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                ("INTERNAL", "Internal server error.".to_owned())
            }
        };
        async_graphql::Error::new(message).extend_with(|_, ext| ext.set("code", code))
    }

    /// The same error as a whole response's, for answers given outside field resolution
    /// (a refused request, a subscription that fell behind); it points at no location.
    pub fn into_response(self) -> async_graphql::Response {
        let error = self.into_graphql();
        let mut server_error = async_graphql::ServerError::new(error.message, None);
        server_error.extensions = error.extensions;
        async_graphql::Response::from_errors(vec![server_error])
    }
}

/// Splits a service outcome for a mutation payload: the value, or the `userErrors` to show;
/// anything else is a top-level error.
pub fn for_payload<T, E: Into<ApiError>>(
    outcome: Result<T, E>,
) -> async_graphql::Result<Result<T, Vec<UserError>>> {
    match outcome.map_err(Into::into) {
        Ok(value) => Ok(Ok(value)),
        Err(ApiError::User(errors)) => Ok(Err(errors)),
        Err(other) => Err(other.into_graphql()),
    }
}

/// A service outcome for a query field, where every failure is a top-level error.
pub fn for_query<T, E: Into<ApiError>>(outcome: Result<T, E>) -> async_graphql::Result<T> {
    outcome.map_err(|e| e.into().into_graphql())
}
