use std::{
    borrow::Cow,
    collections::HashMap,
    sync::{Arc, OnceLock},
};

use async_graphql::{
    Context, Enum, ID, InputObject, Lookahead, Object, SimpleObject, connection::Connection,
};
use chrono::{DateTime, Utc};

use super::{
    enums::{AgentRole, PresenceReason, PresenceStatus},
    input::agent_ids,
    queue::Queue,
};
use crate::{
    auth::{
        guard::RoleGuard,
        schema::{Session, sessions_of},
    },
    directory::{
        loaders::DirectoryLoaders,
        model::{
            AgentCard, AgentDetails, AgentFilter as DomainFilter, AgentOrder as DomainOrder, AgentPage,
            AgentPageReads, AgentRecord, AgentSortField, PageAgent, QueueRecord, avatar_initial,
        },
        service::{self, RemovalPreview},
    },
    graphql::{
        ApiError, ContextExt, RequestContext,
        eager::{Eager, EagerList, ReadyFields},
        for_query,
        id::{self, NodeKind},
        pagination::{connection, connection_complexity, cursors_selected, encode_cursor, page_request},
    },
    presence::schema::{PresenceHistoryConnection, presence_history},
    routing::model::{Ineligible, remaining_capacity},
    viewer::Viewer,
};

/// A human agent of the organization.
pub struct Agent {
    card: AgentCard,
    /// Read along with the card, except by a page of the directory that shows none of them
    /// (`page_shows_details`); loaded through the DataLoader should a field ask all the same.
    details: Option<AgentDetails>,
    /// Read along with a whole page of agents; otherwise loaded through the DataLoader, and
    /// kept, so that the field answers with references rather than copies.
    queues: OnceLock<Vec<Eager<Queue>>>,
    /// The request whose viewer reads this agent, when it is not the one being answered:
    /// `login { agent { … } }` is asked anonymously and answered for the viewer it created.
    seen_by: Option<Arc<RequestContext>>,
}

impl Agent {
    /// The agent of a record, read by the directory, presence or sign-in.
    pub fn new(AgentRecord { card, details }: AgentRecord) -> Self {
        Self { card, details: Some(details), queues: OnceLock::new(), seen_by: None }
    }

    pub fn seen_by(record: AgentRecord, request: RequestContext) -> Self {
        Self { seen_by: Some(Arc::new(request)), ..Self::new(record) }
    }

    /// The columns beyond the card, loaded if they were not read.
    async fn details(&self, ctx: &Context<'_>) -> async_graphql::Result<Cow<'_, AgentDetails>> {
        if let Some(details) = &self.details {
            return Ok(Cow::Borrowed(details));
        }
        let loaders = DirectoryLoaders::of(ctx.app(), self.request(ctx)?)?;
        let loaded = Box::pin(loaders.agent_in_history.load_one(self.card.id)).await;
        let record = loaded.map_err(|error| ApiError::from(error).into_graphql())?;
        // History keeps deleted agents: only the deletion of the whole organization, while
        // this request ran, removes the row.
        let record =
            record.ok_or_else(|| ApiError::Internal("the agent's row is gone".into()).into_graphql())?;
        Ok(Cow::Owned(record.details))
    }

    fn request<'a>(&'a self, ctx: &'a Context<'_>) -> async_graphql::Result<&'a RequestContext> {
        match &self.seen_by {
            Some(request) => Ok(request),
            None => ctx.request(),
        }
    }

    pub async fn load(ctx: &Context<'_>, viewer: &Viewer, id: i64) -> async_graphql::Result<Option<Self>> {
        for_query(service::agent(&ctx.app().db, viewer, id).await).map(|agent| agent.map(Self::new))
    }

    /// The agent a record of the past names, even if it was deleted since; batched with the
    /// other records of the request (a page of conversations reads its agents at once).
    pub async fn load_from_history(ctx: &Context<'_>, id: i64) -> async_graphql::Result<Option<Self>> {
        let loaded = DirectoryLoaders::of(ctx.app(), ctx.request()?)?.agent_in_history.load_one(id).await;
        Ok(loaded.map_err(|error| ApiError::from(error).into_graphql())?.map(Self::new))
    }
}

// The fields that wait on the database or a DataLoader run boxed (`Box::pin(…).await`):
// async-graphql resolves every field of an object in a future the size of the largest
// field's (3 KB here), and a page resolves hundreds of scalar fields that would each carry it.
#[Object]
impl Agent {
    pub async fn id(&self) -> ID {
        id::encode(NodeKind::Agent, self.card.id)
    }
    async fn display_name(&self) -> &str {
        &self.card.display_name
    }
    /// First letter of the display name, upper-cased.
    async fn avatar_initial(&self) -> String {
        avatar_initial(&self.card.display_name)
    }
    /// Lower-case and never changes.
    async fn username(&self) -> &str {
        &self.card.username
    }
    async fn email(&self) -> Option<&str> {
        self.card.email.as_deref()
    }
    async fn role(&self) -> AgentRole {
        self.card.role.into()
    }
    async fn enabled(&self) -> bool {
        self.card.enabled
    }
    /// Reported by the agent's workspace; read-only here.
    async fn presence(&self) -> PresenceStatus {
        self.card.presence.into()
    }
    async fn presence_changed_at(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<DateTime<Utc>>> {
        Ok(self.details(ctx).await?.presence_changed_at)
    }
    /// Why the current presence was set; null while it never changed.
    async fn presence_reason(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<PresenceReason>> {
        Ok(self.details(ctx).await?.presence_reason.map(Into::into))
    }
    /// Every change of presence with its reason and time, newest first, 50 a page by default
    /// (at most 200); kept for the configured retention (90 days by default). ADMINs see
    /// anyone's, an AGENT only its own (FORBIDDEN otherwise).
    #[graphql(complexity = "connection_complexity(first, None, child_complexity)")]
    async fn presence_history(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        since: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<PresenceHistoryConnection> {
        let viewer = self.request(ctx)?.viewer()?;
        Box::pin(presence_history(ctx.app(), viewer, self.card.id, first, after, since)).await
    }
    /// Whether this agent sees customers' phone numbers unmasked.
    async fn show_real_phone_numbers(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        Ok(self.details(ctx).await?.show_real_phone_numbers)
    }
    /// Conversations this agent may hold at once; null means unlimited.
    async fn max_concurrent_sessions(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<i32>> {
        Ok(self.details(ctx).await?.max_concurrent_sessions)
    }
    /// Conversations assigned to this agent and not closed.
    async fn active_sessions(&self, ctx: &Context<'_>) -> async_graphql::Result<i32> {
        Ok(self.details(ctx).await?.active_sessions)
    }
    /// Conversations this agent may still take under its limit; null means unlimited.
    async fn remaining_capacity(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<i32>> {
        let details = self.details(ctx).await?;
        Ok(remaining_capacity(details.max_concurrent_sessions, details.active_sessions))
    }
    /// Whether the router would give this agent a conversation of its queues now, and if
    /// not, every reason why: evaluated by the same rule the router selects agents by.
    async fn assignment_eligibility(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<AssignmentEligibility> {
        let loaders = DirectoryLoaders::of(ctx.app(), self.request(ctx)?)?;
        let loaded = Box::pin(loaders.eligibility.load_one(self.card.id)).await;
        let reasons = loaded.map_err(|error| ApiError::from(error).into_graphql())?;
        // A row the rule did not see (deleted meanwhile) cannot take anything.
        let reasons = reasons.unwrap_or_else(|| vec![Ineligible::Disabled]);
        Ok(AssignmentEligibility {
            eligible: reasons.is_empty(),
            reasons: reasons.into_iter().map(Into::into).collect(),
        })
    }
    /// The queues whose conversations this agent is offered, by name.
    async fn queues(&self, ctx: &Context<'_>) -> async_graphql::Result<EagerList<'_, Queue>> {
        if let Some(queues) = self.queues.get() {
            return Ok(EagerList(queues));
        }
        let loaders = DirectoryLoaders::of(ctx.app(), self.request(ctx)?)?;
        let loaded = Box::pin(loaders.queues_of_agent.load_one(self.card.id)).await;
        let queues = loaded.map_err(|error| ApiError::from(error).into_graphql())?;
        let queues = queues.unwrap_or_default().into_iter().map(|queue| Eager(Queue::new(queue))).collect();
        Ok(EagerList(self.queues.get_or_init(|| queues)))
    }
    /// Where this agent is signed in: its live sessions, most recently used first. An agent
    /// reads its own; an ADMIN anyone's of the organization (FORBIDDEN otherwise).
    async fn sessions(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Session>> {
        let viewer = self.request(ctx)?.viewer()?;
        Box::pin(sessions_of(ctx.app(), viewer, self.card.id)).await
    }
    /// When the agent was deleted; only records of the past (a conversation it handled, an
    /// audit entry) still show a deleted agent.
    async fn deleted_at(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<DateTime<Utc>>> {
        Ok(self.details(ctx).await?.deleted_at)
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.card.created_at
    }
    async fn updated_at(&self, ctx: &Context<'_>) -> async_graphql::Result<DateTime<Utc>> {
        Ok(self.details(ctx).await?.updated_at)
    }
}

/// The fields that read `AgentDetails`, which a page reads only when it shows one of them.
const DETAIL_FIELDS: [&str; 8] = [
    "presenceChangedAt",
    "presenceReason",
    "showRealPhoneNumbers",
    "maxConcurrentSessions",
    "activeSessions",
    "remainingCapacity",
    "deletedAt",
    "updatedAt",
];

/// The selections of the page being resolved that its agents answer: `nodes` and `edges { node }`.
fn page_agents<'a>(ctx: &'a Context<'a>) -> [Lookahead<'a>; 2] {
    let look_ahead = ctx.look_ahead();
    [look_ahead.field("nodes"), look_ahead.field("edges").field("node")]
}

/// Whether the page being resolved shows a field of `DETAIL_FIELDS` for its agents.
fn page_shows_details(ctx: &Context<'_>) -> bool {
    page_agents(ctx).iter().any(|agent| DETAIL_FIELDS.iter().any(|field| agent.field(field).exists()))
}

/// The fields above that only read what the agent holds: its card, its details and its
/// queues when they were read along.
impl ReadyFields for Agent {
    fn is_ready(&self, field: &str) -> bool {
        match field {
            "queues" => self.queues.get().is_some(),
            "id" | "displayName" | "avatarInitial" | "username" | "email" | "role" | "enabled"
            | "presence" | "createdAt" => true,
            field if DETAIL_FIELDS.contains(&field) => self.details.is_some(),
            _ => false,
        }
    }
}

/// Why an agent cannot be given a conversation now.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "crate::routing::model::Ineligible")]
pub enum IneligibleReason {
    /// The agent is disabled.
    Disabled,
    /// The agent is not ONLINE.
    Offline,
    /// The agent holds as many conversations as its limit.
    AtCapacity,
    /// The agent is a member of no queue.
    NoQueue,
    /// The organization's human-agent service is switched off.
    ServiceDisabled,
}

/// Whether the router would give the agent a conversation now.
#[derive(SimpleObject)]
pub struct AssignmentEligibility {
    eligible: bool,
    /// Empty when eligible.
    reasons: Vec<IneligibleReason>,
}

/// What disabling or deleting agents would do, computed without doing it.
pub struct AgentRemovalPreview {
    preview: RemovalPreview,
    /// As given, to name the ones not found.
    ids: Vec<ID>,
}

#[Object]
impl AgentRemovalPreview {
    /// The agents found, in the order given.
    async fn agents(&self) -> Vec<Agent> {
        self.preview.agents.iter().cloned().map(Agent::new).collect()
    }
    /// Given ids that name no agent of the organization (left out of the preview).
    async fn not_found_ids(&self) -> Vec<ID> {
        self.preview.not_found.iter().filter_map(|index| self.ids.get(*index).cloned()).collect()
    }
    /// Their ASSIGNED conversations, which would go back to WAITING and be routed again.
    async fn requeued_conversations(&self) -> u64 {
        self.preview.impact.requeued_conversations
    }
    /// Their queues where no other agent could take a conversation now (ONLINE, enabled,
    /// under its limit): requeued conversations of these would wait.
    async fn queues_left_without_eligible_agent(&self) -> Vec<Queue> {
        self.preview.stranded_queues.iter().cloned().map(Queue::new).collect()
    }
    /// Seats deleting them would free (one per agent); disabling frees none, since a
    /// disabled account still holds its seat.
    async fn seats_freed(&self) -> usize {
        self.preview.agents.len()
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
    /// Read along with the page, when it was asked for and the page had a row to carry it.
    total: Option<u64>,
}

#[Object]
impl AgentListing {
    /// Agents matching the filter, on all pages.
    async fn total_count(&self, ctx: &Context<'_>) -> async_graphql::Result<u64> {
        if let Some(total) = self.total {
            return Ok(total);
        }
        let viewer = ctx.viewer()?;
        for_query(service::count_agents(&ctx.app().db, viewer, &self.filter).await)
    }
}

pub type AgentConnection = Connection<String, Eager<Agent>, AgentListing>;

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
    let shown_queues = page_agents(ctx).map(|agent| agent.field("queues"));
    let reads = AgentPageReads {
        details: page_shows_details(ctx),
        total: ctx.look_ahead().field("totalCount").exists(),
        queues: shown_queues.iter().any(|queues| queues.exists()),
    };
    let AgentPage { agents: page, total } =
        for_query(service::agents(&ctx.app().db, viewer, &filter, order, &request, reads).await)?;
    let counts = if shown_queues.iter().any(|queues| queues.field("agentCount").exists()) {
        Some(member_counts(ctx, viewer, &page.items).await?)
    } else {
        None
    };
    let cursors = cursors_selected(ctx);
    Ok(connection(&request, page, AgentListing { filter, total }, |PageAgent { card, details, queues }| {
        // A cursor no one selected is never seen: left empty rather than built.
        let cursor = if cursors {
            encode_cursor(tag, &service::agent_cursor(&card, order.field))
        } else {
            String::new()
        };
        let queues = match queues {
            Some(queues) => OnceLock::from(
                queues.into_iter().map(|queue| queue_of(queue, counts.as_ref())).collect::<Vec<_>>(),
            ),
            None => OnceLock::new(),
        };
        (cursor, Eager(Agent { card, details, queues, seen_by: None }))
    }))
}

/// How many agents each queue of the page has, read for all of them at once when the page
/// shows it. (The DataLoaders would batch them too, but how many batches they make depends
/// on timing; this is exact.)
async fn member_counts(
    ctx: &Context<'_>,
    viewer: &Viewer,
    agents: &[PageAgent],
) -> async_graphql::Result<HashMap<i64, i64>> {
    let mut queue_ids: Vec<i64> =
        agents.iter().flat_map(|agent| agent.queues.iter().flatten()).map(|queue| queue.id).collect();
    queue_ids.sort_unstable();
    queue_ids.dedup();
    for_query(service::member_counts(&ctx.app().db, viewer, &queue_ids).await)
}

/// A queue of a page's agent, with its member count when the page read those.
fn queue_of(queue: Arc<QueueRecord>, counts: Option<&HashMap<i64, i64>>) -> Eager<Queue> {
    match counts {
        Some(counts) => {
            let count = counts.get(&queue.id).copied().unwrap_or(0);
            Eager(Queue::with_count(queue, count))
        }
        None => Eager(Queue::new(queue)),
    }
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

    /// What disabling or deleting these agents (1–1000 ids, else a BAD_REQUEST error with
    /// reason TOO_MANY_IDS) would do, so a confirmation can say it before it happens. Ids
    /// that name no agent are listed in `notFoundIds` and left out. ADMIN only.
    #[graphql(guard = "RoleGuard::Admin")]
    async fn preview_agent_removal(
        &self,
        ctx: &Context<'_>,
        ids: Vec<ID>,
    ) -> async_graphql::Result<AgentRemovalPreview> {
        let viewer = ctx.viewer()?;
        let preview = for_query(service::preview_removal(&ctx.app().db, viewer, &agent_ids(&ids)).await)?;
        Ok(AgentRemovalPreview { preview, ids })
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
