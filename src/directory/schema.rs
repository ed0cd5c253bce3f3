//! GraphQL types and thin resolvers of the directory.

use async_graphql::{Context, Enum, ID, Object};
use chrono::{DateTime, Utc};

use super::{model::avatar_initial, service};
use crate::{
    auth::{Viewer, guard::RoleGuard},
    db::entities::{agent, organization},
    graphql::{
        ApiError, ContextExt, for_query,
        id::{self, NodeKind},
    },
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

impl From<service::DirectoryError> for ApiError {
    fn from(error: service::DirectoryError) -> Self {
        ApiError::Internal(Box::new(error))
    }
}

pub struct Organization(organization::Model);

impl Organization {
    pub async fn load_by_id(
        ctx: &Context<'_>,
        viewer: &Viewer,
        id: i64,
    ) -> async_graphql::Result<Option<Self>> {
        if id != viewer.organization_id {
            return Ok(None);
        }
        for_query(service::organization(&ctx.app().db, viewer).await).map(|org| Some(Self(org)))
    }
}

#[Object]
impl Organization {
    pub async fn id(&self) -> ID {
        id::encode(NodeKind::Organization, self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// What agents type as `organization` when they sign in.
    async fn slug(&self) -> &str {
        &self.0.slug
    }
    /// While false, queries answer but agent, queue and conversation changes are refused.
    async fn human_agent_service_enabled(&self) -> bool {
        self.0.human_agent_service_enabled
    }
    /// Agent accounts the plan allows, enabled or not.
    async fn seat_limit(&self) -> i32 {
        self.0.seat_limit
    }
}

pub struct Agent(pub agent::Model);

impl Agent {
    pub async fn load(ctx: &Context<'_>, viewer: &Viewer, id: i64) -> async_graphql::Result<Option<Self>> {
        for_query(service::agent(&ctx.app().db, viewer, id).await).map(|agent| agent.map(Self))
    }
}

#[Object]
impl Agent {
    pub async fn id(&self) -> ID {
        id::encode(NodeKind::Agent, self.0.id)
    }
    async fn display_name(&self) -> &str {
        &self.0.display_name
    }
    /// First letter of the display name, upper-cased.
    async fn avatar_initial(&self) -> String {
        avatar_initial(&self.0.display_name)
    }
    /// Lower-case and never changes.
    async fn username(&self) -> &str {
        &self.0.username
    }
    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }
    async fn role(&self) -> AgentRole {
        self.0.role.into()
    }
    async fn enabled(&self) -> bool {
        self.0.enabled
    }
    /// Reported by the agent's workspace; read-only here.
    async fn presence(&self) -> PresenceStatus {
        self.0.presence.into()
    }
    async fn presence_changed_at(&self) -> Option<DateTime<Utc>> {
        self.0.presence_changed_at
    }
    /// Whether this agent sees customers' phone numbers unmasked.
    async fn show_real_phone_numbers(&self) -> bool {
        self.0.show_real_phone_numbers
    }
    /// Conversations this agent may hold at once; null means unlimited.
    async fn max_concurrent_sessions(&self) -> Option<i32> {
        self.0.max_concurrent_sessions
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

#[derive(Default)]
pub struct DirectoryQuery;

#[Object]
impl DirectoryQuery {
    /// The viewer's organization.
    #[graphql(guard = "RoleGuard::SignedIn")]
    async fn organization(&self, ctx: &Context<'_>) -> async_graphql::Result<Organization> {
        let viewer = ctx.viewer()?;
        for_query(service::organization(&ctx.app().db, viewer).await).map(Organization)
    }

    /// An agent of the viewer's organization; null when there is none with this ID.
    #[graphql(guard = "RoleGuard::SignedIn")]
    async fn agent(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Agent>> {
        let viewer = ctx.viewer()?;
        match id::decode_as(&id, NodeKind::Agent) {
            Some(number) => Agent::load(ctx, viewer, number).await,
            None => Ok(None),
        }
    }
}
