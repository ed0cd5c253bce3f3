use std::sync::Arc;

use async_graphql::{Context, ID, Object, connection::Connection};
use chrono::{DateTime, Utc};

use super::agent::{AgentConnection, AgentPageArgs, agent_connection};
use crate::{
    auth::guard::RoleGuard,
    directory::{
        loaders::DirectoryLoaders,
        model::{AgentFilter, AgentOrder, QueueRecord},
        service,
    },
    graphql::{
        ApiError, ContextExt,
        eager::{Eager, ReadyFields},
        for_query,
        id::{self, NodeKind},
        pagination::{connection, connection_complexity, encode_cursor, page_request},
    },
    viewer::Viewer,
};

/// A queue of conversations and the agents who take them.
#[derive(Clone)]
pub struct Queue {
    /// Shared by the agents of a page that list it.
    record: Arc<QueueRecord>,
    /// Known when it was read along with the queue; otherwise loaded on demand.
    agent_count: Option<i64>,
}

impl Queue {
    pub fn new(record: impl Into<Arc<QueueRecord>>) -> Self {
        Self { record: record.into(), agent_count: None }
    }

    pub fn with_count(record: impl Into<Arc<QueueRecord>>, agent_count: i64) -> Self {
        Self { record: record.into(), agent_count: Some(agent_count) }
    }

    pub async fn load(ctx: &Context<'_>, viewer: &Viewer, id: i64) -> async_graphql::Result<Option<Self>> {
        for_query(service::queue(&ctx.app().db, viewer, id).await).map(|queue| queue.map(Self::new))
    }

    /// The queue a record of the past names, even if it was deleted since; batched with the
    /// other records of the request.
    pub async fn load_from_history(ctx: &Context<'_>, id: i64) -> async_graphql::Result<Option<Self>> {
        let loaded = DirectoryLoaders::of(ctx.app(), ctx.request()?)?.queue_in_history.load_one(id).await;
        Ok(loaded.map_err(|error| ApiError::from(error).into_graphql())?.map(Self::new))
    }
}

#[Object]
impl Queue {
    pub async fn id(&self) -> ID {
        id::encode(NodeKind::Queue, self.record.id)
    }
    async fn name(&self) -> &str {
        &self.record.name
    }
    /// The queue's agents, by display name.
    #[graphql(complexity = "connection_complexity(first, None, child_complexity)")]
    async fn agents(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<AgentConnection> {
        let filter = AgentFilter { queue_id: Some(self.record.id), ..AgentFilter::default() };
        let args = AgentPageArgs { after, before: None, first, last: None };
        // Boxed, as `Agent`'s larger fields are: every field of a Queue runs in a future the
        // size of its largest, and this one holds a whole page's.
        Box::pin(agent_connection(ctx, filter, AgentOrder::default(), args)).await
    }
    async fn agent_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        if let Some(count) = self.agent_count {
            return Ok(count);
        }
        let loaded = DirectoryLoaders::of(ctx.app(), ctx.request()?)?
            .queue_member_count
            .load_one(self.record.id)
            .await;
        Ok(loaded.map_err(|error| ApiError::from(error).into_graphql())?.unwrap_or(0))
    }
    /// Conversations of this queue waiting for an agent (a page of queues counts them at once).
    async fn waiting_conversations(&self, ctx: &Context<'_>) -> async_graphql::Result<u64> {
        let loaded =
            DirectoryLoaders::of(ctx.app(), ctx.request()?)?.waiting_in_queue.load_one(self.record.id).await;
        Ok(loaded.map_err(|error| ApiError::from(error).into_graphql())?.unwrap_or(0))
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.record.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.record.updated_at
    }
}

/// The fields above that only read the record (and `agentCount` when it was read along).
impl ReadyFields for Queue {
    fn is_ready(&self, field: &str) -> bool {
        match field {
            "agentCount" => self.agent_count.is_some(),
            "id" | "name" | "createdAt" | "updatedAt" => true,
            _ => false,
        }
    }
}

/// Fields of a queue listing beyond its page.
pub struct QueueListing;

#[Object]
impl QueueListing {
    /// Queues of the organization, on all pages.
    async fn total_count(&self, ctx: &Context<'_>) -> async_graphql::Result<u64> {
        let viewer = ctx.viewer()?;
        for_query(service::count_queues(&ctx.app().db, viewer).await)
    }
}

pub type QueueConnection = Connection<String, Eager<Queue>, QueueListing>;

const BY_NAME: &str = "NAME";

#[derive(Default)]
pub struct QueueQuery;

#[Object]
impl QueueQuery {
    /// A queue of the viewer's organization; null when there is none with this ID.
    #[graphql(guard = "RoleGuard::SignedIn")]
    async fn queue(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Queue>> {
        let viewer = ctx.viewer()?;
        match id::decode_as(&id, NodeKind::Queue) {
            Some(number) => Queue::load(ctx, viewer, number).await,
            None => Ok(None),
        }
    }

    /// The organization's queues by name, 50 a page by default (at most 200).
    #[graphql(
        guard = "RoleGuard::SignedIn",
        complexity = "connection_complexity(first, None, child_complexity)"
    )]
    async fn queues(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<QueueConnection> {
        let viewer = ctx.viewer()?;
        let request = page_request(BY_NAME, after, None, first, None)?;
        let page = for_query(service::queues(&ctx.app().db, viewer, &request).await)?;
        Ok(connection(&request, page, QueueListing, |queue| {
            (encode_cursor(BY_NAME, &service::queue_cursor(&queue)), Eager(Queue::new(queue)))
        }))
    }
}
