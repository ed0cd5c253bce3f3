use async_graphql::{Context, Enum, ID, InputObject, Object, connection::Connection};
use chrono::{DateTime, Utc};

use super::{AgentRole, PresenceStatus, Queue};
use crate::{
    auth::{Viewer, guard::RoleGuard},
    db::entities::{agent, queue},
    directory::{
        model::{AgentFilter as DomainFilter, AgentOrder as DomainOrder, AgentSortField, avatar_initial},
        service,
    },
    graphql::{
        ApiError, ContextExt, for_query,
        id::{self, NodeKind},
        pagination::{connection, connection_complexity, encode_cursor, page_request},
    },
};

/// A human agent of the organization.
pub struct Agent {
    row: agent::Model,
    /// Read along with a whole page of agents; otherwise loaded through the DataLoader.
    queues: Option<Vec<(queue::Model, i64)>>,
}

impl Agent {
    pub fn new(row: agent::Model) -> Self {
        Self { row, queues: None }
    }

    pub async fn load(ctx: &Context<'_>, viewer: &Viewer, id: i64) -> async_graphql::Result<Option<Self>> {
        for_query(service::agent(&ctx.app().db, viewer, id).await).map(|agent| agent.map(Self::new))
    }
}

#[Object]
impl Agent {
    pub async fn id(&self) -> ID {
        id::encode(NodeKind::Agent, self.row.id)
    }
    async fn display_name(&self) -> &str {
        &self.row.display_name
    }
    /// First letter of the display name, upper-cased.
    async fn avatar_initial(&self) -> String {
        avatar_initial(&self.row.display_name)
    }
    /// Lower-case and never changes.
    async fn username(&self) -> &str {
        &self.row.username
    }
    async fn email(&self) -> Option<&str> {
        self.row.email.as_deref()
    }
    async fn role(&self) -> AgentRole {
        self.row.role.into()
    }
    async fn enabled(&self) -> bool {
        self.row.enabled
    }
    /// Reported by the agent's workspace; read-only here.
    async fn presence(&self) -> PresenceStatus {
        self.row.presence.into()
    }
    async fn presence_changed_at(&self) -> Option<DateTime<Utc>> {
        self.row.presence_changed_at
    }
    /// Whether this agent sees customers' phone numbers unmasked.
    async fn show_real_phone_numbers(&self) -> bool {
        self.row.show_real_phone_numbers
    }
    /// Conversations this agent may hold at once; null means unlimited.
    async fn max_concurrent_sessions(&self) -> Option<i32> {
        self.row.max_concurrent_sessions
    }
    /// Conversations assigned to this agent and not closed.
    async fn active_sessions(&self) -> i32 {
        self.row.active_sessions
    }
    /// The queues whose conversations this agent is offered, by name.
    async fn queues(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Queue>> {
        let queues = match &self.queues {
            Some(queues) => queues.clone(),
            None => {
                let loaded = ctx.directory_loaders()?.queues_of_agent.load_one(self.row.id).await;
                loaded
                    .map_err(|error| ApiError::Internal(Box::new(error)).into_graphql())?
                    .unwrap_or_default()
            }
        };
        Ok(queues.into_iter().map(|(queue, count)| Queue::with_count(queue, count)).collect())
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.row.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.row.updated_at
    }
}

#[derive(InputObject, Default)]
pub struct AgentFilter {
    /// Case-insensitive part of the display name, username or e-mail.
    search: Option<String>,
    enabled: Option<bool>,
    presence: Option<PresenceStatus>,
    queue_id: Option<ID>,
    role: Option<AgentRole>,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum AgentOrderField {
    DisplayName,
    Username,
    CreatedAt,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum OrderDirection {
    Asc,
    Desc,
}

#[derive(InputObject)]
pub struct AgentOrder {
    field: AgentOrderField,
    direction: OrderDirection,
}

/// Fields of an agent listing beyond its page.
pub struct AgentListing {
    filter: DomainFilter,
}

#[Object]
impl AgentListing {
    /// Agents matching the filter, on all pages.
    async fn total_count(&self, ctx: &Context<'_>) -> async_graphql::Result<u64> {
        let viewer = ctx.viewer()?;
        for_query(service::count_agents(&ctx.app().db, viewer, &self.filter).await)
    }
}

pub type AgentConnection = Connection<String, Agent, AgentListing>;

/// Arguments of an agent listing, as the client gave them.
pub struct AgentPageArgs {
    pub after: Option<String>,
    pub before: Option<String>,
    pub first: Option<i32>,
    pub last: Option<i32>,
}

fn sort_tag(field: AgentSortField) -> &'static str {
    match field {
        AgentSortField::DisplayName => "DISPLAY_NAME",
        AgentSortField::Username => "USERNAME",
        AgentSortField::CreatedAt => "CREATED_AT",
    }
}

/// One page of agents as a Relay connection; shared by `Query.agents` and `Queue.agents`.
pub async fn agent_connection(
    ctx: &Context<'_>,
    filter: DomainFilter,
    order: DomainOrder,
    args: AgentPageArgs,
) -> async_graphql::Result<AgentConnection> {
    let viewer = ctx.viewer()?;
    let tag = sort_tag(order.field);
    let request = page_request(tag, args.after, args.before, args.first, args.last)?;
    let page = for_query(service::agents(&ctx.app().db, viewer, &filter, order, &request).await)?;
    // A page that shows queues reads them for all its agents at once. (The DataLoader would
    // batch them too, but how many batches it makes depends on timing; this is exact.)
    let mut queues = if selects_queues(ctx) {
        let ids: Vec<i64> = page.items.iter().map(|agent| agent.id).collect();
        Some(for_query(service::queues_of_agents(&ctx.app().db, viewer, &ids).await)?)
    } else {
        None
    };
    Ok(connection(&request, page, AgentListing { filter }, |row| {
        let cursor = encode_cursor(tag, &service::agent_cursor(&row, order.field));
        let queues = queues.as_mut().map(|by_agent| by_agent.remove(&row.id).unwrap_or_default());
        (cursor, Agent { row, queues })
    }))
}

fn selects_queues(ctx: &Context<'_>) -> bool {
    let look_ahead = ctx.look_ahead();
    look_ahead.field("nodes").field("queues").exists()
        || look_ahead.field("edges").field("node").field("queues").exists()
}

#[derive(Default)]
pub struct AgentQuery;

#[Object]
impl AgentQuery {
    /// An agent of the viewer's organization; null when there is none with this ID.
    #[graphql(guard = "RoleGuard::SignedIn")]
    async fn agent(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Agent>> {
        let viewer = ctx.viewer()?;
        match id::decode_as(&id, NodeKind::Agent) {
            Some(number) => Agent::load(ctx, viewer, number).await,
            None => Ok(None),
        }
    }

    /// The organization's agents, 50 a page by default (at most 200), ordered by display name
    /// unless `orderBy` says otherwise.
    #[graphql(
        guard = "RoleGuard::SignedIn",
        complexity = "connection_complexity(first, last, child_complexity)"
    )]
    async fn agents(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<AgentFilter>,
        order_by: Option<AgentOrder>,
    ) -> async_graphql::Result<AgentConnection> {
        let filter = filter.unwrap_or_default();
        let domain = DomainFilter {
            search: filter.search,
            enabled: filter.enabled,
            presence: filter.presence.map(Into::into),
            // An id that is not a queue's matches no queue, like a deleted one.
            queue_id: filter.queue_id.map(|id| id::decode_as(&id, NodeKind::Queue).unwrap_or(id::NO_ROW)),
            role: filter.role.map(Into::into),
        };
        let order = order_by.map_or_else(DomainOrder::default, |order| DomainOrder {
            field: match order.field {
                AgentOrderField::DisplayName => AgentSortField::DisplayName,
                AgentOrderField::Username => AgentSortField::Username,
                AgentOrderField::CreatedAt => AgentSortField::CreatedAt,
            },
            descending: order.direction == OrderDirection::Desc,
        });
        agent_connection(ctx, domain, order, AgentPageArgs { after, before, first, last }).await
    }
}
