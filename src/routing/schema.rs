//! GraphQL types and thin resolvers of conversations. Phone numbers take the form the
//! viewer may see here, for every field, payload and event.

use async_graphql::{
    Context, Enum, ID, InputObject, Object, SimpleObject, Subscription, connection::Connection,
};
use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt};

use super::{
    model::{ConversationFilter, ConversationRecord, NewConversation},
    service::{self, Audience, RoutingError},
};
use crate::{
    auth::guard::RoleGuard,
    db::page::Cursor,
    directory::schema::{Agent, Queue},
    graphql::{
        ApiError, ContextExt, UserError, UserErrorCode, for_payload, for_query,
        id::{self, NodeKind},
        pagination::{connection, connection_complexity, encode_cursor, page_request},
    },
    phone,
    viewer::Viewer,
};

impl From<RoutingError> for ApiError {
    fn from(error: RoutingError) -> Self {
        let (code, field): (UserErrorCode, &[&str]) = match &error {
            RoutingError::QueueNotFound => (UserErrorCode::NotFound, &["input", "queueId"]),
            RoutingError::ConversationNotFound => (UserErrorCode::NotFound, &["id"]),
            RoutingError::InvalidPhone => (UserErrorCode::InvalidPhone, &["input", "customerPhone"]),
            RoutingError::CustomerNameTooLong => {
                (UserErrorCode::CustomerNameTooLong, &["input", "customerName"])
            }
            RoutingError::ServiceDisabled => (UserErrorCode::HumanAgentServiceDisabled, &[]),
            RoutingError::Forbidden => return ApiError::Forbidden,
            RoutingError::Database(error) => return error.clone().into(),
        };
        let user_error = UserError::new(code, error.to_string());
        if field.is_empty() { user_error.into() } else { user_error.at(field.iter().copied()).into() }
    }
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "crate::routing::model::Status")]
pub enum ConversationStatus {
    Waiting,
    Assigned,
    Closed,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "ConversationChange", remote = "crate::routing::events::ConversationChangeKind")]
pub enum ConversationChangeKind {
    Assigned,
    Closed,
    /// Taken back (the agent was disabled or deleted) and queued again.
    Unassigned,
}

/// An inbound contact on a queue.
pub struct Conversation(ConversationRecord);

#[Object]
impl Conversation {
    pub async fn id(&self) -> ID {
        id::encode(NodeKind::Conversation, self.0.id)
    }
    /// Its queue, even if deleted since; a page of conversations reads its queues at once.
    async fn queue(&self, ctx: &Context<'_>) -> async_graphql::Result<Queue> {
        Queue::load_from_history(ctx, self.0.queue_id)
            .await?
            .ok_or_else(|| ApiError::Internal("conversation without its queue".into()).into_graphql())
    }
    async fn status(&self) -> ConversationStatus {
        self.0.status.into()
    }
    async fn customer_name(&self) -> Option<&str> {
        self.0.customer_name.as_deref()
    }
    /// Masked (`+1****0123`) unless the viewer may see real phone numbers.
    async fn customer_phone(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        let viewer = ctx.viewer()?;
        Ok(self
            .0
            .customer_phone
            .as_deref()
            .map(|stored| phone::for_viewer(stored, viewer.show_real_phone_numbers)))
    }
    /// The agent holding it, or who held it when it closed (a deleted agent too, with
    /// `deletedAt` set); null while waiting.
    async fn assigned_agent(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Agent>> {
        match self.0.assigned_agent_id {
            Some(agent_id) => Agent::load_from_history(ctx, agent_id).await,
            None => Ok(None),
        }
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When it was last assigned.
    async fn assigned_at(&self) -> Option<DateTime<Utc>> {
        self.0.assigned_at
    }
    async fn closed_at(&self) -> Option<DateTime<Utc>> {
        self.0.closed_at
    }
}

impl Conversation {
    pub async fn load(ctx: &Context<'_>, id: i64) -> async_graphql::Result<Option<Self>> {
        let viewer = ctx.viewer()?;
        for_query(service::conversation(&ctx.app().db, viewer, id).await).map(|found| found.map(Self))
    }
}

/// Fields of a conversation listing beyond its page.
pub struct ConversationListing(ConversationFilter);

#[Object]
impl ConversationListing {
    async fn total_count(&self, ctx: &Context<'_>) -> async_graphql::Result<u64> {
        for_query(service::count_conversations(&ctx.app().db, ctx.viewer()?, self.0).await)
    }
}

pub type ConversationConnection = Connection<String, Conversation, ConversationListing>;

const NEWEST_FIRST: &str = "NEWEST";

#[derive(Default)]
pub struct RoutingQuery;

#[Object]
impl RoutingQuery {
    /// A conversation the viewer may see (an AGENT: its own); null otherwise.
    #[graphql(guard = "RoleGuard::SignedIn")]
    async fn conversation(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Conversation>> {
        match id::decode_as(&id, NodeKind::Conversation) {
            Some(number) => Conversation::load(ctx, number).await,
            None => Ok(None),
        }
    }

    /// Conversations, newest first; an AGENT sees its own only.
    #[graphql(
        guard = "RoleGuard::SignedIn",
        complexity = "connection_complexity(first, None, child_complexity)"
    )]
    async fn conversations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        status: Option<ConversationStatus>,
        queue_id: Option<ID>,
    ) -> async_graphql::Result<ConversationConnection> {
        let viewer = ctx.viewer()?;
        let filter = ConversationFilter {
            status: status.map(Into::into),
            queue_id: queue_id.map(|id| id::decode_as(&id, NodeKind::Queue).unwrap_or(id::NO_ROW)),
            agent_id: None,
        };
        let request = page_request(NEWEST_FIRST, after, None, first, None)?;
        let page = for_query(service::conversations(&ctx.app().db, viewer, filter, &request).await)?;
        Ok(connection(&request, page, ConversationListing(filter), |row| {
            (encode_cursor(NEWEST_FIRST, &Cursor { key: String::new(), id: row.id }), Conversation(row))
        }))
    }
}

#[derive(InputObject)]
pub struct CreateConversationInput {
    queue_id: ID,
    customer_name: Option<String>,
    /// International form, e.g. `+14155550123`; stored in E.164.
    customer_phone: Option<String>,
}

#[derive(SimpleObject)]
pub struct ConversationPayload {
    conversation: Option<Conversation>,
    user_errors: Vec<UserError>,
}

fn payload(outcome: Result<ConversationRecord, Vec<UserError>>) -> ConversationPayload {
    match outcome {
        Ok(row) => ConversationPayload { conversation: Some(Conversation(row)), user_errors: vec![] },
        Err(user_errors) => ConversationPayload { conversation: None, user_errors },
    }
}

#[derive(Default)]
pub struct RoutingMutation;

#[Object]
impl RoutingMutation {
    /// An inbound contact: it is assigned at once if an agent of the queue can take it,
    /// otherwise it waits.
    #[graphql(guard = "RoleGuard::Admin")]
    async fn create_conversation(
        &self,
        ctx: &Context<'_>,
        input: CreateConversationInput,
    ) -> async_graphql::Result<ConversationPayload> {
        let (app, viewer) = (ctx.app(), ctx.viewer()?);
        let new = NewConversation {
            queue_id: id::decode_as(&input.queue_id, NodeKind::Queue),
            customer_name: input.customer_name,
            customer_phone: input.customer_phone,
        };
        for_payload(service::create_conversation(&app.db, &app.bus, viewer, new).await).map(payload)
    }

    /// Closes a conversation (an AGENT: its own only); its agent can take the next one.
    #[graphql(guard = "RoleGuard::SignedIn")]
    async fn close_conversation(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<ConversationPayload> {
        let (app, viewer) = (ctx.app(), ctx.viewer()?);
        let conversation_id = id::decode_as(&id, NodeKind::Conversation);
        for_payload(service::close_conversation(&app.db, &app.bus, viewer, conversation_id).await)
            .map(payload)
    }
}

#[derive(SimpleObject)]
pub struct ConversationEvent {
    kind: ConversationChangeKind,
    conversation: Conversation,
}

#[derive(Default)]
pub struct RoutingSubscription;

#[Subscription]
impl RoutingSubscription {
    /// The viewer's conversations as they are assigned to it, closed, or taken back. Like
    /// `agentDirectoryChanged`, it ends with `SUBSCRIPTION_BEHIND` if it may have missed
    /// events.
    #[graphql(guard = "RoleGuard::SignedIn")]
    async fn my_conversations(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<ConversationEvent>> + use<>> {
        let viewer = ctx.viewer()?.clone();
        Ok(conversation_events(ctx, viewer, Audience::Mine))
    }

    /// Every conversation of the organization as it is assigned, closed or taken back: a
    /// supervisor's view. Admins only. Ends with `SUBSCRIPTION_BEHIND` if it may have
    /// missed events.
    #[graphql(guard = "RoleGuard::Admin")]
    async fn conversation_changed(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<ConversationEvent>> + use<>> {
        let viewer = ctx.viewer()?.clone();
        Ok(conversation_events(ctx, viewer, Audience::Organization))
    }
}

fn conversation_events(
    ctx: &Context<'_>,
    viewer: Viewer,
    audience: Audience,
) -> impl Stream<Item = async_graphql::Result<ConversationEvent>> + use<> {
    let app = ctx.app();
    service::watch(app.db.clone(), &app.bus, viewer, audience).map(|change| {
        for_query(
            change
                .map(|(kind, row)| ConversationEvent { kind: kind.into(), conversation: Conversation(row) }),
        )
    })
}
