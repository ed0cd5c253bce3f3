use async_graphql::{Context, ID, Object, SimpleObject};

use crate::{
    auth::guard::RoleGuard,
    directory::{
        model::OrganizationRecord,
        service::{self, SeatUsage},
    },
    graphql::{
        ContextExt, for_query,
        id::{self, NodeKind},
    },
    viewer::Viewer,
};

pub struct Organization(pub OrganizationRecord);

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

/// Seats of the plan: every agent account, enabled or not, uses one.
#[derive(SimpleObject)]
pub struct AgentQuota {
    used: u64,
    limit: u64,
    remaining: u64,
    /// At least 80 % of the seats are used.
    near_limit: bool,
}

impl From<SeatUsage> for AgentQuota {
    fn from(usage: SeatUsage) -> Self {
        Self {
            used: usage.used,
            limit: usage.limit,
            remaining: usage.remaining(),
            near_limit: usage.near_limit(),
        }
    }
}

pub struct Usage;

#[Object]
impl Usage {
    async fn agent_quota(&self, ctx: &Context<'_>) -> async_graphql::Result<AgentQuota> {
        let viewer = ctx.viewer()?;
        for_query(service::seat_usage(&ctx.app().db, viewer).await).map(AgentQuota::from)
    }
    /// Conversations assigned to an agent of the organization in the last 30 days (rolling).
    async fn monthly_sessions(&self, ctx: &Context<'_>) -> async_graphql::Result<u64> {
        for_query(crate::routing::service::monthly_sessions(&ctx.app().db, ctx.viewer()?).await)
    }
}

#[derive(Default)]
pub struct OrganizationQuery;

#[Object]
impl OrganizationQuery {
    /// The viewer's organization.
    #[graphql(guard = "RoleGuard::SignedIn")]
    async fn organization(&self, ctx: &Context<'_>) -> async_graphql::Result<Organization> {
        let viewer = ctx.viewer()?;
        for_query(service::organization(&ctx.app().db, viewer).await).map(Organization)
    }

    /// Seat usage of the viewer's organization.
    #[graphql(guard = "RoleGuard::SignedIn")]
    async fn usage(&self) -> Usage {
        Usage
    }
}
