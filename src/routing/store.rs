//! SQL for conversations and the capacity columns of agents. Capacity is taken with one
//! conditional UPDATE of the agent's row (`active_sessions < max_concurrent_sessions`), and a
//! conversation is assigned with one conditional UPDATE of its row (`status = WAITING`):
//! each is atomic on both back-ends, so concurrent requests and instances cannot overfill an
//! agent or assign a conversation twice.
//!
//! Routing writes `conversations` and, of `agents`, only the capacity columns it owns:
//! `active_sessions` and `idle_since` (see `db::entities::agent`).

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult, NotSet, Order,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Select, Statement,
    prelude::Expr,
    sea_query::{ExprTrait, NullOrdering, Query},
};

use std::collections::HashMap;

use super::model::{ConversationFilter, ConversationRecord, Ineligible, Status};
use crate::{
    db::{
        entities::{agent, conversation, organization, queue, queue_member},
        page::{Page, PageRequest},
    },
    presence::model::Presence,
};

impl From<conversation::Model> for ConversationRecord {
    fn from(row: conversation::Model) -> Self {
        Self {
            id: row.id,
            organization_id: row.organization_id,
            queue_id: row.queue_id,
            status: row.status,
            customer_name: row.customer_name,
            customer_phone: row.customer_phone,
            assigned_agent_id: row.assigned_agent_id,
            created_at: row.created_at,
            assigned_at: row.assigned_at,
            closed_at: row.closed_at,
        }
    }
}

fn records(rows: Vec<conversation::Model>) -> Vec<ConversationRecord> {
    rows.into_iter().map(ConversationRecord::from).collect()
}

fn conversations_of(organization_id: i64) -> Select<conversation::Entity> {
    conversation::Entity::find().filter(conversation::Column::OrganizationId.eq(organization_id))
}

pub(super) async fn find_organization(
    db: &impl ConnectionTrait,
    organization_id: i64,
) -> Result<Option<organization::Model>, DbErr> {
    organization::Entity::find_by_id(organization_id).one(db).await
}

pub(super) async fn queue_exists(
    db: &impl ConnectionTrait,
    organization_id: i64,
    queue_id: i64,
) -> Result<bool, DbErr> {
    let found = queue::Entity::find_by_id(queue_id)
        .filter(queue::Column::OrganizationId.eq(organization_id))
        .filter(queue::Column::DeletedAt.is_null())
        .count(db)
        .await?;
    Ok(found > 0)
}

pub(super) async fn insert_conversation(
    db: &impl ConnectionTrait,
    organization_id: i64,
    queue_id: i64,
    customer_name: Option<String>,
    customer_phone: Option<String>,
    now: DateTime<Utc>,
) -> Result<ConversationRecord, DbErr> {
    conversation::Entity::insert(conversation::ActiveModel {
        id: NotSet,
        organization_id: Set(organization_id),
        queue_id: Set(queue_id),
        status: Set(Status::Waiting),
        customer_name: Set(customer_name),
        customer_phone: Set(customer_phone),
        assigned_agent_id: Set(None),
        created_at: Set(now),
        assigned_at: Set(None),
        closed_at: Set(None),
    })
    .exec_with_returning(db)
    .await
    .map(ConversationRecord::from)
}

pub(super) async fn find_conversation(
    db: &impl ConnectionTrait,
    organization_id: i64,
    conversation_id: i64,
) -> Result<Option<ConversationRecord>, DbErr> {
    let query = conversations_of(organization_id).filter(conversation::Column::Id.eq(conversation_id));
    Ok(query.one(db).await?.map(ConversationRecord::from))
}

fn filtered(organization_id: i64, filter: ConversationFilter) -> Select<conversation::Entity> {
    let mut query = conversations_of(organization_id);
    if let Some(status) = filter.status {
        query = query.filter(conversation::Column::Status.eq(status));
    }
    if let Some(queue_id) = filter.queue_id {
        query = query.filter(conversation::Column::QueueId.eq(queue_id));
    }
    if let Some(agent_id) = filter.agent_id {
        query = query.filter(conversation::Column::AssignedAgentId.eq(agent_id));
    }
    query
}

/// Newest first, keyset on id.
pub(super) async fn list_conversations(
    db: &impl ConnectionTrait,
    organization_id: i64,
    filter: ConversationFilter,
    page: &PageRequest,
) -> Result<Page<ConversationRecord>, DbErr> {
    let rows = conversations_page(organization_id, filter, page).all(db).await?;
    Ok(page.page_of(records(rows)))
}

/// `list_conversations`' statement.
pub(super) fn list_conversations_statement(
    backend: DbBackend,
    organization_id: i64,
    filter: ConversationFilter,
    page: &PageRequest,
) -> Statement {
    conversations_page(organization_id, filter, page).build(backend)
}

/// Walks an index in id order from the cursor (the organization's, a status of it, or an
/// agent's: migration `m0012_conversation_indexes`) and stops after `limit + 1` entries.
fn conversations_page(
    organization_id: i64,
    filter: ConversationFilter,
    page: &PageRequest,
) -> Select<conversation::Entity> {
    let mut query = filtered(organization_id, filter);
    if let Some(after) = &page.after {
        query = query.filter(conversation::Column::Id.lt(after.id));
    }
    query.order_by(conversation::Column::Id, Order::Desc).limit(page.rows_to_read())
}

pub(super) async fn count_conversations(
    db: &impl ConnectionTrait,
    organization_id: i64,
    filter: ConversationFilter,
) -> Result<u64, DbErr> {
    filtered(organization_id, filter).count(db).await
}

/// An agent that may take a conversation now.
pub(super) struct Candidate {
    pub agent_id: i64,
    /// Conversations it may still take; None: no limit.
    pub free_seats: Option<i64>,
}

/// The agents that may take a conversation of the queue now, best first: least busy, then
/// idle longest (never assigned counts as longest), then oldest account.
pub(super) async fn candidates(
    db: &impl ConnectionTrait,
    organization_id: i64,
    queue_id: i64,
    limit: u64,
) -> Result<Vec<Candidate>, DbErr> {
    let members = Query::select()
        .column(queue_member::Column::AgentId)
        .from(queue_member::Entity)
        .and_where(queue_member::Column::QueueId.eq(queue_id))
        .to_owned();
    let rows = agent::Entity::find()
        .select_only()
        .column(agent::Column::Id)
        .column(agent::Column::MaxConcurrentSessions)
        .column(agent::Column::ActiveSessions)
        .filter(agent::Column::OrganizationId.eq(organization_id))
        .filter(agent::Column::Id.in_subquery(members))
        .filter(assignable())
        .order_by(agent::Column::ActiveSessions, Order::Asc)
        .order_by_with_nulls(agent::Column::IdleSince, Order::Asc, NullOrdering::First)
        .order_by(agent::Column::Id, Order::Asc)
        .limit(limit)
        .into_tuple::<(i64, Option<i32>, i32)>()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(agent_id, limit, active)| Candidate {
            agent_id,
            free_seats: limit.map(|limit| i64::from(limit) - i64::from(active)),
        })
        .collect())
}

/// The routing rule, clause by clause: each condition an agent's row must meet, with the
/// reason given when it does not. It is the one definition: the router filters with all
/// of them (`eligible`, within `assignable`) and `Agent.assignmentEligibility` asks the
/// database which of them hold (`eligibility`), so the two cannot disagree.
fn rule() -> [(Ineligible, Condition); 3] {
    [
        (
            Ineligible::Disabled,
            Condition::all().add(agent::Column::Enabled.eq(true)).add(agent::Column::DeletedAt.is_null()),
        ),
        (Ineligible::Offline, Condition::all().add(agent::Column::Presence.eq(Presence::Online))),
        (
            Ineligible::AtCapacity,
            Condition::any().add(agent::Column::MaxConcurrentSessions.is_null()).add(
                Expr::col(agent::Column::ActiveSessions).lt(Expr::col(agent::Column::MaxConcurrentSessions)),
            ),
        ),
    ]
}

/// The routing rule in SQL: ONLINE, enabled, not deleted, and under its limit. The same
/// condition guards the capacity update, so what is offered is what may be taken.
fn eligible() -> Condition {
    rule().into_iter().fold(Condition::all(), |all, (_, clause)| all.add(clause))
}

/// The routing rule as the router applies it, with the organization's human-agent service
/// switch: conversations wait while it is off. It is part of the statement that takes the
/// capacity, so no assignment slips in after the switch is turned off.
fn assignable() -> Condition {
    let serving = Query::select()
        .column(organization::Column::Id)
        .from(organization::Entity)
        .and_where(organization::Column::HumanAgentServiceEnabled.eq(true))
        .to_owned();
    eligible().add(agent::Column::OrganizationId.in_subquery(serving))
}

/// 1 when `condition` holds for the row, else 0: a boolean both back-ends return alike.
fn holds(condition: Condition) -> Expr {
    Expr::case(condition, Expr::val(1)).finally(Expr::val(0)).into()
}

/// For each of these agents of the organization, the clauses of the routing rule it fails,
/// and whether it is a member of a live queue, evaluated by the database on its rows.
pub(super) async fn eligibility(
    db: &impl ConnectionTrait,
    organization_id: i64,
    agent_ids: &[i64],
) -> Result<HashMap<i64, Vec<Ineligible>>, DbErr> {
    let live_membership = Query::select()
        .expr(Expr::val(1))
        .from(queue_member::Entity)
        .inner_join(
            queue::Entity,
            Expr::col((queue::Entity, queue::Column::Id))
                .equals((queue_member::Entity, queue_member::Column::QueueId)),
        )
        .and_where(
            Expr::col((queue_member::Entity, queue_member::Column::AgentId))
                .equals((agent::Entity, agent::Column::Id)),
        )
        .and_where(Expr::col((queue::Entity, queue::Column::DeletedAt)).is_null())
        .to_owned();
    let mut clauses: Vec<(Ineligible, Condition)> = rule().into();
    clauses.push((Ineligible::NoQueue, Condition::all().add(Expr::exists(live_membership))));
    let mut query = agent::Entity::find()
        .select_only()
        .column(agent::Column::Id)
        .filter(agent::Column::OrganizationId.eq(organization_id))
        .filter(agent::Column::Id.is_in(agent_ids.iter().copied()));
    for (index, (_, clause)) in clauses.iter().enumerate() {
        query = query.expr_as(holds(clause.clone()), format!("clause_{index}"));
    }
    let rows = query.into_tuple::<(i64, i32, i32, i32, i32)>().all(db).await?;
    Ok(rows
        .into_iter()
        .map(|(id, first, second, third, fourth)| {
            let failed = clauses
                .iter()
                .zip([first, second, third, fourth])
                .filter(|(_, held)| *held == 0)
                .map(|((reason, _), _)| *reason)
                .collect();
            (id, failed)
        })
        .collect())
}

/// How many conversations these agents hold.
pub(super) async fn count_assigned_to(
    db: &impl ConnectionTrait,
    organization_id: i64,
    agent_ids: &[i64],
) -> Result<u64, DbErr> {
    conversations_of(organization_id)
        .filter(conversation::Column::AssignedAgentId.is_in(agent_ids.iter().copied()))
        .filter(conversation::Column::Status.eq(Status::Assigned))
        .count(db)
        .await
}

/// The organization's live queues with a member among `agent_ids`.
pub(super) async fn live_queues_of(
    db: &impl ConnectionTrait,
    organization_id: i64,
    agent_ids: &[i64],
) -> Result<Vec<i64>, DbErr> {
    let members = Query::select()
        .column(queue_member::Column::QueueId)
        .from(queue_member::Entity)
        .and_where(queue_member::Column::AgentId.is_in(agent_ids.iter().copied()))
        .to_owned();
    queue::Entity::find()
        .select_only()
        .column(queue::Column::Id)
        .filter(queue::Column::OrganizationId.eq(organization_id))
        .filter(queue::Column::DeletedAt.is_null())
        .filter(queue::Column::Id.in_subquery(members))
        .into_tuple::<i64>()
        .all(db)
        .await
}

/// Those of `queue_ids` with an eligible member that is not one of `except`.
pub(super) async fn queues_with_eligible_member(
    db: &impl ConnectionTrait,
    organization_id: i64,
    queue_ids: &[i64],
    except: &[i64],
) -> Result<Vec<i64>, DbErr> {
    let eligible_agents = Query::select()
        .column(agent::Column::Id)
        .from(agent::Entity)
        .and_where(agent::Column::OrganizationId.eq(organization_id))
        .cond_where(eligible())
        .and_where(agent::Column::Id.is_not_in(except.iter().copied()))
        .to_owned();
    queue_member::Entity::find()
        .select_only()
        .column(queue_member::Column::QueueId)
        .filter(queue_member::Column::QueueId.is_in(queue_ids.iter().copied()))
        .filter(queue_member::Column::AgentId.in_subquery(eligible_agents))
        .distinct()
        .into_tuple::<i64>()
        .all(db)
        .await
}

/// Takes one unit of the agent's capacity if it may still be assigned to; false when not.
pub(super) async fn reserve_capacity(
    db: &impl ConnectionTrait,
    organization_id: i64,
    agent_id: i64,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let result = agent::Entity::update_many()
        .col_expr(agent::Column::ActiveSessions, Expr::col(agent::Column::ActiveSessions).add(1))
        .col_expr(agent::Column::IdleSince, Expr::value(now))
        .filter(agent::Column::OrganizationId.eq(organization_id))
        .filter(agent::Column::Id.eq(agent_id))
        .filter(assignable())
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Gives back one unit of capacity (a conversation closed).
pub(super) async fn release_capacity(
    db: &impl ConnectionTrait,
    organization_id: i64,
    agent_id: i64,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    agent::Entity::update_many()
        .col_expr(agent::Column::ActiveSessions, Expr::col(agent::Column::ActiveSessions).sub(1))
        .col_expr(agent::Column::IdleSince, Expr::value(now))
        .filter(agent::Column::OrganizationId.eq(organization_id))
        .filter(agent::Column::Id.eq(agent_id))
        .filter(agent::Column::ActiveSessions.gt(0))
        .exec(db)
        .await?;
    Ok(())
}

/// Assigns the conversation if it is still waiting; false when someone else got it first.
pub(super) async fn assign(
    db: &impl ConnectionTrait,
    organization_id: i64,
    conversation_id: i64,
    agent_id: i64,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let result = conversation::Entity::update_many()
        .col_expr(conversation::Column::Status, Expr::value(Status::Assigned))
        .col_expr(conversation::Column::AssignedAgentId, Expr::value(agent_id))
        .col_expr(conversation::Column::AssignedAt, Expr::value(now))
        .filter(conversation::Column::OrganizationId.eq(organization_id))
        .filter(conversation::Column::Id.eq(conversation_id))
        .filter(conversation::Column::Status.eq(Status::Waiting))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Closes the conversation if it is in `from` and returns it as stored; None when it
/// changed meanwhile.
pub(super) async fn close(
    db: &impl ConnectionTrait,
    organization_id: i64,
    conversation_id: i64,
    from: Status,
    now: DateTime<Utc>,
) -> Result<Option<ConversationRecord>, DbErr> {
    let closed = conversation::Entity::update_many()
        .col_expr(conversation::Column::Status, Expr::value(Status::Closed))
        .col_expr(conversation::Column::ClosedAt, Expr::value(now))
        .filter(conversation::Column::OrganizationId.eq(organization_id))
        .filter(conversation::Column::Id.eq(conversation_id))
        .filter(conversation::Column::Status.eq(from))
        .exec_with_returning(db)
        .await?;
    Ok(closed.into_iter().next().map(ConversationRecord::from))
}

/// Puts every conversation these agents hold back to WAITING (their `assignedAt` stays, so
/// they still count as handled) and zeroes the agents' load; returns the conversations.
pub(super) async fn release_agents(
    db: &impl ConnectionTrait,
    organization_id: i64,
    agent_ids: &[i64],
) -> Result<Vec<ConversationRecord>, DbErr> {
    let held = conversations_of(organization_id)
        .filter(conversation::Column::AssignedAgentId.is_in(agent_ids.iter().copied()))
        .filter(conversation::Column::Status.eq(Status::Assigned))
        .all(db)
        .await?;
    let held = records(held);
    if held.is_empty() {
        return Ok(held);
    }
    conversation::Entity::update_many()
        .col_expr(conversation::Column::Status, Expr::value(Status::Waiting))
        .col_expr(conversation::Column::AssignedAgentId, Expr::value(Option::<i64>::None))
        .filter(conversation::Column::Id.is_in(held.iter().map(|c| c.id)))
        .exec(db)
        .await?;
    agent::Entity::update_many()
        .col_expr(agent::Column::ActiveSessions, Expr::value(0))
        .filter(agent::Column::OrganizationId.eq(organization_id))
        .filter(agent::Column::Id.is_in(agent_ids.iter().copied()))
        .exec(db)
        .await?;
    Ok(held)
}

/// Waiting conversations of the queues (all of the organization's when None) but those of
/// `except`, oldest first.
pub(super) async fn waiting(
    db: &impl ConnectionTrait,
    organization_id: i64,
    queue_ids: Option<&[i64]>,
    except: &[i64],
    limit: u64,
) -> Result<Vec<ConversationRecord>, DbErr> {
    let mut query =
        conversations_of(organization_id).filter(conversation::Column::Status.eq(Status::Waiting));
    if let Some(queue_ids) = queue_ids {
        query = query.filter(conversation::Column::QueueId.is_in(queue_ids.iter().copied()));
    }
    if !except.is_empty() {
        query = query.filter(conversation::Column::QueueId.is_not_in(except.iter().copied()));
    }
    let rows = query
        .order_by(conversation::Column::CreatedAt, Order::Asc)
        .order_by(conversation::Column::Id, Order::Asc)
        .limit(limit)
        .all(db)
        .await?;
    Ok(records(rows))
}

/// The queues of an agent of the organization.
pub(super) async fn queues_of(
    db: &impl ConnectionTrait,
    organization_id: i64,
    agent_id: i64,
) -> Result<Vec<i64>, DbErr> {
    let of_the_organization = Query::select()
        .column(agent::Column::Id)
        .from(agent::Entity)
        .and_where(agent::Column::OrganizationId.eq(organization_id))
        .and_where(agent::Column::Id.eq(agent_id))
        .to_owned();
    queue_member::Entity::find()
        .select_only()
        .column(queue_member::Column::QueueId)
        .filter(queue_member::Column::AgentId.in_subquery(of_the_organization))
        .into_tuple::<i64>()
        .all(db)
        .await
}

#[derive(FromQueryResult)]
pub(super) struct WaitingQueue {
    pub organization_id: i64,
    pub queue_id: i64,
}

/// Every (organization, queue) that has a waiting conversation: what the sweeper drains.
pub(super) async fn queues_with_waiting(db: &impl ConnectionTrait) -> Result<Vec<WaitingQueue>, DbErr> {
    queues_with_waiting_query().into_model::<WaitingQueue>().all(db).await
}

/// `queues_with_waiting`'s statement.
pub(super) fn queues_with_waiting_statement(backend: DbBackend) -> Statement {
    queues_with_waiting_query().build(backend)
}

/// Read through the index led by the status (`conversations_status_queue`), so every
/// instance's sweep reads the waiting conversations, not every one ever held.
fn queues_with_waiting_query() -> Select<conversation::Entity> {
    conversation::Entity::find()
        .select_only()
        .column(conversation::Column::OrganizationId)
        .column(conversation::Column::QueueId)
        .filter(conversation::Column::Status.eq(Status::Waiting))
        .distinct()
}

/// Moves the organization's WAITING conversations of one queue to another; returns how many.
pub(super) async fn move_waiting(
    db: &impl ConnectionTrait,
    organization_id: i64,
    from_queue_id: i64,
    to_queue_id: i64,
) -> Result<u64, DbErr> {
    let moved = conversation::Entity::update_many()
        .col_expr(conversation::Column::QueueId, Expr::value(to_queue_id))
        .filter(conversation::Column::OrganizationId.eq(organization_id))
        .filter(conversation::Column::QueueId.eq(from_queue_id))
        .filter(conversation::Column::Status.eq(Status::Waiting))
        .exec(db)
        .await?;
    Ok(moved.rows_affected)
}

/// How many conversations wait in each of these queues of the organization (queues where
/// none waits are absent).
pub(super) async fn count_waiting_in(
    db: &impl ConnectionTrait,
    organization_id: i64,
    queue_ids: &[i64],
) -> Result<Vec<(i64, i64)>, DbErr> {
    conversations_of(organization_id)
        .select_only()
        .column(conversation::Column::QueueId)
        .column_as(Expr::col(conversation::Column::Id).count(), "waiting")
        .filter(conversation::Column::Status.eq(Status::Waiting))
        .filter(conversation::Column::QueueId.is_in(queue_ids.iter().copied()))
        .group_by(conversation::Column::QueueId)
        .into_tuple()
        .all(db)
        .await
}

pub(super) async fn count_waiting(
    db: &impl ConnectionTrait,
    organization_id: i64,
    queue_id: i64,
) -> Result<u64, DbErr> {
    filtered(
        organization_id,
        ConversationFilter { status: Some(Status::Waiting), queue_id: Some(queue_id), agent_id: None },
    )
    .count(db)
    .await
}

/// Conversations assigned to an agent of the organization since `since`.
pub(super) async fn count_assigned_since(
    db: &impl ConnectionTrait,
    organization_id: i64,
    since: DateTime<Utc>,
) -> Result<u64, DbErr> {
    conversations_of(organization_id).filter(conversation::Column::AssignedAt.gte(since)).count(db).await
}
