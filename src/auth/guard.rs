//! Roles are enforced here and only here: resolvers declare `guard = "Role…"`.

use async_graphql::{Context, Guard};

use crate::graphql::{ApiError, ContextExt};

pub enum RoleGuard {
    /// Any signed-in agent.
    SignedIn,
    Admin,
}

impl Guard for RoleGuard {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        let viewer = ctx.viewer()?;
        match self {
            RoleGuard::SignedIn => Ok(()),
            RoleGuard::Admin if viewer.is_admin() => Ok(()),
            RoleGuard::Admin => Err(ApiError::Forbidden.into_graphql()),
        }
    }
}
