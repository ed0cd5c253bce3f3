//! `login`, `logout`, `viewer`, `endSession` and `logoutEverywhere`. `Agent.sessions` and
//! its `Session` type are in `session`, which the directory's `Agent` names.

mod session;

pub use session::{Session, sessions_of};

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};

use super::{
    guard::RoleGuard,
    service::{self, AuthError, Credentials, SignedIn},
    sessions::{self, SessionError},
};
use crate::{
    directory::schema::Agent,
    graphql::{
        ApiError, ContextExt, RequestContext, UserError, UserErrorCode, for_payload, for_query,
        id::{self, NodeKind},
    },
};

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        let code = match error {
            AuthError::InvalidCredentials => UserErrorCode::InvalidCredentials,
            AuthError::AgentDisabled => UserErrorCode::AgentDisabled,
            AuthError::RateLimited(_) => UserErrorCode::RateLimited,
            AuthError::Database(error) => return error.into(),
            AuthError::Hashing(_) => return ApiError::Internal(Box::new(error)),
        };
        UserError::new(code, error.to_string()).into()
    }
}

#[derive(InputObject)]
pub struct LoginInput {
    /// The organization's slug.
    organization: String,
    username: String,
    password: String,
}

#[derive(SimpleObject)]
pub struct LoginPayload {
    /// Send as `Authorization: Bearer <token>`; shown only here.
    token: Option<String>,
    agent: Option<Agent>,
    user_errors: Vec<UserError>,
    /// With a `RATE_LIMITED` error: seconds to wait before the next attempt can succeed.
    retry_after_seconds: Option<u64>,
}

#[derive(Default)]
pub struct AuthQuery;

#[Object]
impl AuthQuery {
    /// The signed-in agent; null when signed out.
    async fn viewer(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Agent>> {
        match ctx.maybe_viewer() {
            Some(viewer) => Agent::load(ctx, viewer, viewer.agent_id).await,
            None => Ok(None),
        }
    }
}

#[derive(Default)]
pub struct AuthMutation;

#[Object]
impl AuthMutation {
    async fn login(&self, ctx: &Context<'_>, input: LoginInput) -> async_graphql::Result<LoginPayload> {
        let app = ctx.app();
        let credentials = Credentials {
            organization_slug: input.organization,
            username: input.username,
            password: input.password,
        };
        let outcome =
            service::login(&app.db, &app.hasher, &app.login_throttle, credentials, ctx.client_address())
                .await;
        let retry_after_seconds = match &outcome {
            Err(AuthError::RateLimited(throttled)) => Some(service::retry_after_seconds(throttled)),
            _ => None,
        };
        Ok(match for_payload(outcome)? {
            Ok(SignedIn { token, agent, viewer }) => LoginPayload {
                token: Some(token),
                // Read as the viewer it signed in, not as this anonymous request.
                agent: Some(Agent::seen_by(agent, RequestContext::new(Some(viewer)))),
                user_errors: vec![],
                retry_after_seconds: None,
            },
            Err(user_errors) => LoginPayload { token: None, agent: None, user_errors, retry_after_seconds },
        })
    }

    /// Ends the current session; its token stops working at once.
    #[graphql(guard = "RoleGuard::SignedIn")]
    async fn logout(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        let viewer = ctx.viewer()?;
        let app = ctx.app();
        for_query(service::logout(&app.db, &app.bus, viewer).await).map(|()| true)
    }

    /// Ends one session (see `Agent.sessions`): one of the viewer's own, or for an ADMIN any
    /// of the organization's agents'. Its token stops working and its WebSockets close
    /// (4403), on every instance. Audited.
    #[graphql(guard = "RoleGuard::SignedIn")]
    async fn end_session(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<EndSessionPayload> {
        let viewer = ctx.viewer()?;
        let app = ctx.app();
        let session_id = id::decode_as(&id, NodeKind::Session);
        let outcome =
            sessions::end_session(&app.db, &app.bus, viewer, ctx.client_address(), session_id).await;
        Ok(match for_payload(outcome)? {
            Ok(ended) => EndSessionPayload {
                ended_session_id: Some(id::encode(NodeKind::Session, ended)),
                user_errors: vec![],
            },
            Err(user_errors) => EndSessionPayload { ended_session_id: None, user_errors },
        })
    }

    /// Ends every other session of the viewer (every one, the current included, with
    /// `includeCurrent: true`): "sign out everywhere else". Returns how many ended. Audited.
    #[graphql(guard = "RoleGuard::SignedIn")]
    async fn logout_everywhere(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = false)] include_current: bool,
    ) -> async_graphql::Result<u64> {
        let viewer = ctx.viewer()?;
        let app = ctx.app();
        for_query(
            sessions::logout_everywhere(&app.db, &app.bus, viewer, ctx.client_address(), include_current)
                .await,
        )
    }
}

#[derive(SimpleObject)]
pub struct EndSessionPayload {
    ended_session_id: Option<ID>,
    /// `NOT_FOUND` at `["id"]` for a session that does not exist or is not the viewer's to end.
    user_errors: Vec<UserError>,
}

impl From<SessionError> for ApiError {
    fn from(error: SessionError) -> Self {
        match error {
            SessionError::NotFound => {
                UserError::new(UserErrorCode::NotFound, error.to_string()).at(["id"]).into()
            }
            SessionError::Forbidden => ApiError::Forbidden,
            SessionError::Database(error) => error.into(),
        }
    }
}
