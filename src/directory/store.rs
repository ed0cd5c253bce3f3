//! SQL for organizations, agents, queues and memberships. Every query is scoped by
//! organization and skips deleted rows, through `live_agents` and `live_queues`; bulk
//! operations are one statement whatever the number of ids.
//!
//! The directory owns `organizations`, `queues`, `queue_members` and the `agents` row, but
//! for the presence and capacity columns, which only presence's and routing's stores write
//! (see `db::entities::agent`).

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::{NotSet, Set, Unchanged},
    ColumnTrait, Condition, ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult, Order,
    PaginatorTrait, PartialModelTrait, QueryFilter, QueryOrder, QueryResult, QuerySelect, QueryTrait, Select,
    SelectGetableTuple, Selector, Statement,
    prelude::Expr,
    sea_query::{Asterisk, ExprTrait, Func, JoinType, Query, SelectStatement, SimpleExpr, SubQueryStatement},
};

use super::model::{
    AgentCard, AgentDetails, AgentFilter, AgentOrder, AgentPage, AgentPageReads, AgentRecord, AgentSortField,
    AgentToCreate, AgentUpdate, OrganizationRecord, OrganizationToCreate, PageAgent, QueueRecord,
    QueueToCreate,
};
use crate::db::entities::{agent, organization, queue, queue_member};
use crate::db::page::{Cursor, Page, PageRequest};
use crate::{presence::model::Presence, viewer::Role};

/// The one entry point for reading agents: this organization's, not deleted.
fn live_agents(organization_id: i64) -> Select<agent::Entity> {
    agent::Entity::find()
        .filter(agent::Column::OrganizationId.eq(organization_id))
        .filter(agent::Column::DeletedAt.is_null())
}

/// The one entry point for reading queues: this organization's, not deleted.
fn live_queues(organization_id: i64) -> Select<queue::Entity> {
    queue::Entity::find()
        .filter(queue::Column::OrganizationId.eq(organization_id))
        .filter(queue::Column::DeletedAt.is_null())
}

// ---- organizations ----

impl From<organization::Model> for OrganizationRecord {
    fn from(row: organization::Model) -> Self {
        Self {
            id: row.id,
            name: row.name,
            slug: row.slug,
            seat_limit: row.seat_limit,
            human_agent_service_enabled: row.human_agent_service_enabled,
            agent_count: row.agent_count,
        }
    }
}

pub(super) async fn find_organization(
    db: &impl ConnectionTrait,
    organization_id: i64,
) -> Result<Option<OrganizationRecord>, DbErr> {
    Ok(organization::Entity::find_by_id(organization_id).one(db).await?.map(OrganizationRecord::from))
}

/// Reads the organization and, on PostgreSQL, locks its row until the transaction ends, so
/// seat-consuming writes of one organization happen one at a time. (SQLite needs no lock:
/// `begin_write` already holds the database's single write lock.)
pub(super) async fn lock_organization(
    db: &impl ConnectionTrait,
    organization_id: i64,
) -> Result<Option<OrganizationRecord>, DbErr> {
    let row = organization::Entity::find_by_id(organization_id).lock_exclusive().one(db).await?;
    Ok(row.map(OrganizationRecord::from))
}

/// Every organization, by slug.
pub(super) async fn organizations(db: &impl ConnectionTrait) -> Result<Vec<OrganizationRecord>, DbErr> {
    let rows = organization::Entity::find().order_by_asc(organization::Column::Slug).all(db).await?;
    Ok(rows.into_iter().map(OrganizationRecord::from).collect())
}

/// The organization with this slug, its row locked until the transaction ends (PostgreSQL).
pub(super) async fn lock_organization_by_slug(
    db: &impl ConnectionTrait,
    slug: &str,
) -> Result<Option<OrganizationRecord>, DbErr> {
    let query = organization::Entity::find().filter(organization::Column::Slug.eq(slug));
    Ok(query.lock_exclusive().one(db).await?.map(OrganizationRecord::from))
}

pub(super) async fn update_organization(
    db: &impl ConnectionTrait,
    organization_id: i64,
    name: Option<String>,
    seat_limit: Option<i32>,
    human_agent_service_enabled: Option<bool>,
) -> Result<OrganizationRecord, DbErr> {
    let changes = organization::ActiveModel {
        id: sea_orm::ActiveValue::Unchanged(organization_id),
        name: name.map_or(NotSet, Set),
        seat_limit: seat_limit.map_or(NotSet, Set),
        human_agent_service_enabled: human_agent_service_enabled.map_or(NotSet, Set),
        ..Default::default()
    };
    Ok(organization::Entity::update(changes).exec(db).await?.into())
}

/// The ids of the organization's live agents.
pub(super) async fn live_agent_ids(
    db: &impl ConnectionTrait,
    organization_id: i64,
) -> Result<Vec<i64>, DbErr> {
    live_agents(organization_id).select_only().column(agent::Column::Id).into_tuple().all(db).await
}

pub(super) async fn count_organizations(db: &impl ConnectionTrait) -> Result<u64, DbErr> {
    organization::Entity::find().count(db).await
}

pub(super) async fn slug_exists(db: &impl ConnectionTrait, slug: &str) -> Result<bool, DbErr> {
    Ok(organization::Entity::find().filter(organization::Column::Slug.eq(slug)).count(db).await? > 0)
}

pub(super) async fn insert_organization(
    db: &impl ConnectionTrait,
    new: OrganizationToCreate,
) -> Result<OrganizationRecord, DbErr> {
    let organization = organization::ActiveModel {
        id: NotSet,
        name: Set(new.name.into_inner()),
        slug: Set(new.slug.to_string()),
        seat_limit: Set(new.seat_limit),
        human_agent_service_enabled: Set(true),
        created_at: Set(new.at),
        agent_count: Set(0),
    };
    Ok(organization::Entity::insert(organization).exec_with_returning(db).await?.into())
}

// ---- agents ----

pub(super) async fn find_agent(
    db: &impl ConnectionTrait,
    organization_id: i64,
    agent_id: i64,
) -> Result<Option<AgentRecord>, DbErr> {
    let query = live_agents(organization_id).filter(agent::Column::Id.eq(agent_id));
    query.into_partial_model().one(db).await
}

pub(super) async fn find_agents(
    db: &impl ConnectionTrait,
    organization_id: i64,
    agent_ids: &[i64],
) -> Result<Vec<AgentRecord>, DbErr> {
    let query = live_agents(organization_id).filter(agent::Column::Id.is_in(agent_ids.iter().copied()));
    query.into_partial_model().all(db).await
}

/// These agents of the organization, deleted ones included: history names them.
pub(super) async fn find_agents_including_deleted(
    db: &impl ConnectionTrait,
    organization_id: i64,
    agent_ids: &[i64],
) -> Result<Vec<AgentRecord>, DbErr> {
    let query = agent::Entity::find()
        .filter(agent::Column::OrganizationId.eq(organization_id))
        .filter(agent::Column::Id.is_in(agent_ids.iter().copied()));
    query.into_partial_model().all(db).await
}

pub(super) async fn username_taken(
    db: &impl ConnectionTrait,
    organization_id: i64,
    username: &str,
) -> Result<bool, DbErr> {
    Ok(live_agents(organization_id).filter(agent::Column::Username.eq(username)).count(db).await? > 0)
}

/// Enabled admins other than `excluding`: what would be left after disabling, deleting or
/// demoting those.
pub(super) async fn count_enabled_admins_except(
    db: &impl ConnectionTrait,
    organization_id: i64,
    excluding: &[i64],
) -> Result<u64, DbErr> {
    live_agents(organization_id)
        .filter(agent::Column::Role.eq(Role::Admin))
        .filter(agent::Column::Enabled.eq(true))
        .filter(agent::Column::Id.is_not_in(excluding.iter().copied()))
        .count(db)
        .await
}

/// Inserts a live agent and counts it in its organization's `agent_count`: call it inside
/// the transaction that decided the agent may be created (the two writes stand or fall
/// together).
pub(super) async fn insert_agent(
    db: &impl ConnectionTrait,
    new: AgentToCreate,
) -> Result<AgentRecord, DbErr> {
    let agent = agent::ActiveModel {
        organization_id: Set(new.organization_id),
        username: Set(new.username.as_str().to_owned()),
        display_name: Set(new.display_name),
        email: Set(new.email),
        role: Set(new.role),
        enabled: Set(true),
        password_hash: Set(new.password_hash),
        presence: Set(Presence::Offline),
        presence_changed_at: Set(None),
        show_real_phone_numbers: Set(new.show_real_phone_numbers),
        max_concurrent_sessions: Set(new.max_concurrent_sessions),
        created_at: Set(new.at),
        updated_at: Set(new.at),
        deleted_at: Set(None),
        ..Default::default()
    };
    let created = agent::Entity::insert(agent).exec_with_returning(db).await?;
    add_to_agent_count(db, new.organization_id, 1).await?;
    Ok(created.into())
}

/// Moves the organization's count of live agents by `change`, relative to what the row
/// holds when the statement runs, so concurrent transactions cannot lose an update.
async fn add_to_agent_count(
    db: &impl ConnectionTrait,
    organization_id: i64,
    change: i64,
) -> Result<(), DbErr> {
    organization::Entity::update_many()
        .col_expr(organization::Column::AgentCount, Expr::col(organization::Column::AgentCount).add(change))
        .filter(organization::Column::Id.eq(organization_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Writes `update` to an agent of the organization; the row as it now is.
pub(super) async fn update_agent(
    db: &impl ConnectionTrait,
    organization_id: i64,
    agent_id: i64,
    update: AgentUpdate,
    now: DateTime<Utc>,
) -> Result<AgentRecord, DbErr> {
    let row = agent::ActiveModel {
        id: Unchanged(agent_id),
        display_name: update.display_name.map_or(NotSet, Set),
        password_hash: update.password_hash.map_or(NotSet, Set),
        email: update.email.map_or(NotSet, Set),
        max_concurrent_sessions: update.max_concurrent_sessions.map_or(NotSet, Set),
        show_real_phone_numbers: update.show_real_phone_numbers.map_or(NotSet, Set),
        role: update.role.map_or(NotSet, Set),
        enabled: update.enabled.map_or(NotSet, Set),
        updated_at: Set(now),
        ..Default::default()
    };
    let updated = agent::Entity::update(row)
        .validate()?
        .filter(agent::Column::OrganizationId.eq(organization_id))
        .exec(db)
        .await?;
    Ok(updated.into())
}

/// Sets `enabled` on those of the agents that differ; returns how many changed.
pub(super) async fn set_enabled(
    db: &impl ConnectionTrait,
    organization_id: i64,
    agent_ids: &[i64],
    enabled: bool,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let result = agent::Entity::update_many()
        .col_expr(agent::Column::Enabled, Expr::value(enabled))
        .col_expr(agent::Column::UpdatedAt, Expr::value(now))
        .filter(agent::Column::OrganizationId.eq(organization_id))
        .filter(agent::Column::DeletedAt.is_null())
        .filter(agent::Column::Id.is_in(agent_ids.iter().copied()))
        .filter(agent::Column::Enabled.ne(enabled))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}

/// Marks the agents deleted (they stay as rows for history) and disabled, and takes those
/// that were live off their organization's `agent_count`, in the caller's transaction.
pub(super) async fn soft_delete_agents(
    db: &impl ConnectionTrait,
    organization_id: i64,
    agent_ids: &[i64],
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let result = agent::Entity::update_many()
        .col_expr(agent::Column::DeletedAt, Expr::value(now))
        .col_expr(agent::Column::Enabled, Expr::value(false))
        .col_expr(agent::Column::UpdatedAt, Expr::value(now))
        .filter(agent::Column::OrganizationId.eq(organization_id))
        .filter(agent::Column::DeletedAt.is_null())
        .filter(agent::Column::Id.is_in(agent_ids.iter().copied()))
        .exec(db)
        .await?;
    if result.rows_affected > 0 {
        add_to_agent_count(db, organization_id, -(result.rows_affected as i64)).await?;
    }
    Ok(result.rows_affected)
}

/// The expression an order sorts by; cursors hold its value as text.
fn sort_expression(field: AgentSortField) -> SimpleExpr {
    match field {
        // Case-insensitive, so "ana" sits next to "Ana".
        AgentSortField::DisplayName => Func::lower(Expr::col(agent::Column::DisplayName)).into(),
        AgentSortField::Username => Expr::col(agent::Column::Username),
        AgentSortField::CreatedAt => Expr::col(agent::Column::CreatedAt),
    }
}

/// The cursor of an agent under an order.
pub(super) fn agent_cursor(agent: &AgentCard, field: AgentSortField) -> Cursor {
    let key = match field {
        AgentSortField::DisplayName => agent.display_name.to_lowercase(),
        AgentSortField::Username => agent.username.clone(),
        AgentSortField::CreatedAt => agent.created_at.to_rfc3339(),
    };
    Cursor { key, id: agent.id }
}

fn cursor_value(field: AgentSortField, cursor: &Cursor) -> SimpleExpr {
    match field {
        AgentSortField::CreatedAt => match DateTime::parse_from_rfc3339(&cursor.key) {
            Ok(time) => Expr::value(time.with_timezone(&Utc)),
            // Unparseable cursors sort before everything: an empty page, not an error.
            Err(_) => Expr::value(DateTime::<Utc>::MIN_UTC),
        },
        _ => Expr::value(cursor.key.clone()),
    }
}

fn filtered_agents(backend: DbBackend, organization_id: i64, filter: &AgentFilter) -> Select<agent::Entity> {
    let mut query = live_agents(organization_id);
    if let Some(search) = filter.search_term() {
        let pattern = format!("%{}%", escape_like(&search.to_lowercase()));
        let matches = |column: agent::Column| -> SimpleExpr {
            Expr::expr(Func::lower(Expr::col(column)))
                .like(sea_orm::sea_query::LikeExpr::new(&pattern).escape('\\'))
        };
        query = query.filter(
            Condition::any()
                .add(matches(agent::Column::DisplayName))
                .add(matches(agent::Column::Username))
                .add(matches(agent::Column::Email)),
        );
    }
    if let Some(enabled) = filter.enabled {
        query = query.filter(agent::Column::Enabled.eq(enabled));
    }
    if let Some(presence) = filter.presence {
        query = query.filter(agent::Column::Presence.eq(presence));
    }
    if let Some(role) = filter.role {
        query = query.filter(agent::Column::Role.eq(role));
    }
    if let Some(queue_id) = filter.queue_id {
        query = query.filter(in_queue(backend, queue_id));
    }
    query
}

/// The agent is a member of the queue. A page filtered by queue starts from the queue's
/// members, looks each agent up by key and sorts them: bounded by the queue, where walking the
/// order's index would read the organization's agents until the page is full. SQLite plans
/// `IN` so. PostgreSQL hashed the members and read the whole organization (sequentially, or by
/// bitmap from a cursor); given the members as an array, it can only look them up by key.
fn in_queue(backend: DbBackend, queue_id: i64) -> SimpleExpr {
    let members = Query::select()
        .column(queue_member::Column::AgentId)
        .from(queue_member::Entity)
        .and_where(queue_member::Column::QueueId.eq(queue_id))
        .to_owned();
    match backend {
        DbBackend::Postgres => {
            let array = SimpleExpr::from(Func::cust("ARRAY").arg(subquery(members)));
            Expr::col((agent::Entity, agent::Column::Id)).eq(SimpleExpr::from(Func::cust("ANY").arg(array)))
        }
        _ => agent::Column::Id.in_subquery(members),
    }
}

/// A select as a value of the enclosing statement (a scalar subquery, or a function's argument).
fn subquery(select: SelectStatement) -> SimpleExpr {
    SimpleExpr::SubQuery(None, Box::new(SubQueryStatement::SelectStatement(select)))
}

fn escape_like(raw: &str) -> String {
    raw.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// One page of agents in keyset order: (sort key, id), so pages stay stable while agents
/// are added or removed. Each order has an index on exactly its key (see migration
/// `m0009_agent_order_indexes`), so a page reads `limit + 1` entries from its cursor on, and
/// of each the card's columns, and the details' only when asked. A total asked for comes in
/// the same statement: one round trip to the database, where a count of its own made two.
pub(super) async fn list_agents(
    db: &impl ConnectionTrait,
    organization_id: i64,
    filter: &AgentFilter,
    order: AgentOrder,
    page: &PageRequest,
    reads: AgentPageReads,
) -> Result<AgentPage, DbErr> {
    let statement =
        list_agents_statement(db.get_database_backend(), organization_id, filter, order, page, reads);
    let rows = db.query_all_raw(statement).await?;
    // Every row carries the total; the first is enough.
    let total = match rows.first() {
        Some(row) if reads.total => Some(total_in(row)?),
        _ => None,
    };
    let agents = rows
        .iter()
        .map(|row| {
            let card = AgentCard::from_query_result(row, "")?;
            let details = if reads.details { Some(AgentDetails::from_query_result(row, "")?) } else { None };
            let queues = if reads.queues { Some(queues_in(row)?) } else { None };
            Ok(PageAgent { card, details, queues })
        })
        .collect::<Result<_, DbErr>>()?;
    Ok(AgentPage { agents: page.page_of(agents), total })
}

/// The column of a page's statement that holds the listing's total.
const TOTAL: &str = "total";
/// The column of a page's statement that holds each agent's queues (`queues_of_row`).
const QUEUES: &str = "queues";

/// The statement `list_agents` runs, built for `backend`; exists so that tests can ask the
/// database how it plans it (`tests/api/query_plans.rs`). The cards come first and in order
/// (`select_cols`), then the details, then the total, which the database computes once for
/// the statement, not once a row.
pub(super) fn list_agents_statement(
    backend: DbBackend,
    organization_id: i64,
    filter: &AgentFilter,
    order: AgentOrder,
    page: &PageRequest,
    reads: AgentPageReads,
) -> Statement {
    let query = agents_page(backend, organization_id, filter, order, page);
    let mut query =
        if reads.details { AgentRecord::select_cols(query) } else { AgentCard::select_cols(query) };
    if reads.total {
        query = query.expr_as(total_agents(backend, organization_id, filter), TOTAL);
    }
    if reads.queues {
        query = query.expr_as(queues_of_row(backend, organization_id), QUEUES);
    }
    query.build(backend)
}

/// The live queues of the row's agent as a JSON array of `[id, name, name_key, created_at,
/// updated_at]`, null for a membership of a deleted queue: a subquery per row, so that a page
/// showing queues is still one statement (a second one cost a pool checkout and a hop to a
/// connection's thread and back, more than the page's rows). It walks the agent's memberships
/// by the index on their agent and looks each queue up by its key, in a subquery of its own:
/// as a join, or with the queues filtered by `IN`, SQLite's planner chose by the tables'
/// statistics and sometimes walked every queue of the organization for every row. Unordered:
/// `queues_in` sorts each agent's few queues.
fn queues_of_row(backend: DbBackend, organization_id: i64) -> SimpleExpr {
    const FIELDS: &str = r#""queues"."id", "queues"."name", "queues"."name_key", "queues"."created_at", "queues"."updated_at""#;
    let (array, aggregate) = match backend {
        DbBackend::Postgres => ("json_build_array", "json_agg"),
        _ => ("json_array", "json_group_array"),
    };
    let queue = Query::select()
        .expr(Expr::cust(format!("{array}({FIELDS})")))
        .from(queue::Entity)
        .and_where(
            Expr::col((queue::Entity, queue::Column::Id))
                .equals((queue_member::Entity, queue_member::Column::QueueId)),
        )
        // The unary `+` keeps SQLite from searching the organization's queues by name instead
        // (its index on them matches these terms): the key alone finds the queue.
        .and_where(Expr::cust(r#"+"queues"."organization_id""#).eq(organization_id))
        .and_where(Expr::col((queue::Entity, queue::Column::DeletedAt)).is_null())
        .to_owned();
    let mut all = SimpleExpr::from(Func::cust(aggregate).arg(subquery(queue)));
    if backend == DbBackend::Postgres {
        // No row gives NULL there (`[]` on SQLite), and json is read as text.
        all = Func::coalesce([all.cast_as("text"), Expr::val("[]")]).into();
    }
    let queues = Query::select()
        .expr(all)
        .from(queue_member::Entity)
        .and_where(
            Expr::col((queue_member::Entity, queue_member::Column::AgentId))
                .equals((agent::Entity, agent::Column::Id)),
        )
        .to_owned();
    subquery(queues)
}

/// The queues a page's row carries (`queues_of_row`), in name order.
fn queues_in(row: &QueryResult) -> Result<Vec<Arc<QueueRecord>>, DbErr> {
    let json: String = row.try_get("", QUEUES)?;
    let read: Vec<Option<QueueColumns>> = serde_json::from_str(&json)
        .map_err(|error| DbErr::Type(format!("an agent's queues as read ({error}): {json}")))?;
    let mut queues: Vec<QueueColumns> = read.into_iter().flatten().collect();
    queues.sort_unstable_by(|(id, _, key, ..), (other_id, _, other_key, ..)| {
        (key, id).cmp(&(other_key, other_id))
    });
    Ok(queues.into_iter().map(|queue| Arc::new(queue_record(queue))).collect())
}

fn agents_page(
    backend: DbBackend,
    organization_id: i64,
    filter: &AgentFilter,
    order: AgentOrder,
    page: &PageRequest,
) -> Select<agent::Entity> {
    let key = sort_expression(order.field);
    let row = || Expr::tuple([key.clone(), Expr::col(agent::Column::Id)]);
    let at = |cursor: &Cursor| Expr::tuple([cursor_value(order.field, cursor), Expr::value(cursor.id)]);
    // The key alone bounds it too, redundantly: SQLite starts an index range at a row value
    // of plain columns but not of an expression (`lower(display_name)`), and would otherwise
    // walk the organization's entries from the first one to the cursor.
    let past = |cursor: &Cursor, forwards: bool| {
        let key_bound = cursor_value(order.field, cursor);
        if forwards {
            Condition::all().add(key.clone().gte(key_bound)).add(row().gt(at(cursor)))
        } else {
            Condition::all().add(key.clone().lte(key_bound)).add(row().lt(at(cursor)))
        }
    };
    let mut query = filtered_agents(backend, organization_id, filter);
    // "after" is further along the order, "before" further back; descending flips both.
    if let Some(after) = &page.after {
        query = query.filter(past(after, !order.descending));
    }
    if let Some(before) = &page.before {
        query = query.filter(past(before, order.descending));
    }
    let ascending = order.descending == page.from_end;
    let direction = if ascending { Order::Asc } else { Order::Desc };
    query
        .select_only()
        .order_by(key, direction.clone())
        .order_by(agent::Column::Id, direction)
        .limit(page.rows_to_read())
}

/// Agents matching the filter, when a page did not read them along (`list_agents`).
pub(super) async fn count_agents(
    db: &impl ConnectionTrait,
    organization_id: i64,
    filter: &AgentFilter,
) -> Result<u64, DbErr> {
    let backend = db.get_database_backend();
    let query = Query::select().expr_as(total_agents(backend, organization_id, filter), TOTAL).to_owned();
    db.query_one(&query).await?.map_or(Ok(0), |row| total_in(&row))
}

/// Agents matching the filter, as a value a statement selects. With no filter that is the
/// organization's `agent_count`, one row read by primary key; a filter counts its matches.
fn total_agents(backend: DbBackend, organization_id: i64, filter: &AgentFilter) -> SimpleExpr {
    let count = if filter.narrows() {
        filtered_agents(backend, organization_id, filter)
            .select_only()
            .expr(Expr::col(Asterisk).count())
            .into_query()
    } else {
        let count = organization::Entity::find_by_id(organization_id).select_only();
        count.column(organization::Column::AgentCount).into_query()
    };
    subquery(count)
}

/// The total a statement selected (`total_agents` as `TOTAL`). None, when the organization
/// was deleted meanwhile, counts as no agent.
fn total_in(row: &QueryResult) -> Result<u64, DbErr> {
    let total: Option<i64> = row.try_get("", TOTAL)?;
    Ok(total.map_or(0, |total| u64::try_from(total).unwrap_or(0)))
}

// ---- queues ----

/// A queue a write returned whole.
impl From<queue::Model> for QueueRecord {
    fn from(row: queue::Model) -> Self {
        Self {
            id: row.id,
            name: row.name,
            name_key: row.name_key,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// A `QueueRecord`'s columns, in order: reads decode them by position (sea-orm reads a model
/// by name, formatting and hashing each column's name for each value).
type QueueColumns = (i64, String, String, DateTime<Utc>, DateTime<Utc>);

const QUEUE_COLUMNS: [queue::Column; 5] = [
    queue::Column::Id,
    queue::Column::Name,
    queue::Column::NameKey,
    queue::Column::CreatedAt,
    queue::Column::UpdatedAt,
];

fn queue_columns(query: Select<queue::Entity>) -> Selector<SelectGetableTuple<QueueColumns>> {
    query.select_only().columns(QUEUE_COLUMNS).into_tuple()
}

fn queue_record((id, name, name_key, created_at, updated_at): QueueColumns) -> QueueRecord {
    QueueRecord { id, name, name_key, created_at, updated_at }
}

async fn read_queues(
    db: &impl ConnectionTrait,
    query: Select<queue::Entity>,
) -> Result<Vec<QueueRecord>, DbErr> {
    Ok(queue_columns(query).all(db).await?.into_iter().map(queue_record).collect())
}

pub(super) async fn find_queue(
    db: &impl ConnectionTrait,
    organization_id: i64,
    queue_id: i64,
) -> Result<Option<QueueRecord>, DbErr> {
    let query = live_queues(organization_id).filter(queue::Column::Id.eq(queue_id));
    Ok(queue_columns(query).one(db).await?.map(queue_record))
}

/// A queue of the organization even if deleted: conversations keep pointing at theirs.
pub(super) async fn find_queues_including_deleted(
    db: &impl ConnectionTrait,
    organization_id: i64,
    queue_ids: &[i64],
) -> Result<Vec<QueueRecord>, DbErr> {
    let query = queue::Entity::find()
        .filter(queue::Column::OrganizationId.eq(organization_id))
        .filter(queue::Column::Id.is_in(queue_ids.iter().copied()));
    read_queues(db, query).await
}

pub(super) async fn find_queues(
    db: &impl ConnectionTrait,
    organization_id: i64,
    queue_ids: &[i64],
) -> Result<Vec<QueueRecord>, DbErr> {
    let query = live_queues(organization_id).filter(queue::Column::Id.is_in(queue_ids.iter().copied()));
    read_queues(db, query).await
}

/// One page of queues ordered by name (case-insensitive), then id.
pub(super) async fn list_queues(
    db: &impl ConnectionTrait,
    organization_id: i64,
    page: &PageRequest,
) -> Result<Page<QueueRecord>, DbErr> {
    let row = || Expr::tuple([Expr::col(queue::Column::NameKey), Expr::col(queue::Column::Id)]);
    let at = |cursor: &Cursor| Expr::tuple([Expr::value(cursor.key.clone()), Expr::value(cursor.id)]);
    let mut query = live_queues(organization_id);
    if let Some(after) = &page.after {
        query = query.filter(row().gt(at(after)));
    }
    if let Some(before) = &page.before {
        query = query.filter(row().lt(at(before)));
    }
    let direction = if page.from_end { Order::Desc } else { Order::Asc };
    let query = query
        .order_by(queue::Column::NameKey, direction.clone())
        .order_by(queue::Column::Id, direction)
        .limit(page.rows_to_read());
    Ok(page.page_of(read_queues(db, query).await?))
}

pub(super) async fn count_queues(db: &impl ConnectionTrait, organization_id: i64) -> Result<u64, DbErr> {
    live_queues(organization_id).count(db).await
}

pub(super) async fn queue_name_taken(
    db: &impl ConnectionTrait,
    organization_id: i64,
    name_key: &str,
    except: Option<i64>,
) -> Result<bool, DbErr> {
    let mut query = live_queues(organization_id).filter(queue::Column::NameKey.eq(name_key));
    if let Some(except) = except {
        query = query.filter(queue::Column::Id.ne(except));
    }
    Ok(query.count(db).await? > 0)
}

pub(super) async fn insert_queue(
    db: &impl ConnectionTrait,
    new: QueueToCreate,
) -> Result<QueueRecord, DbErr> {
    let queue = queue::ActiveModel {
        id: NotSet,
        organization_id: Set(new.organization_id),
        name: Set(new.name.as_str().to_owned()),
        name_key: Set(new.name.key()),
        created_at: Set(new.at),
        updated_at: Set(new.at),
        deleted_at: Set(None),
    };
    Ok(queue::Entity::insert(queue).exec_with_returning(db).await?.into())
}

pub(super) async fn rename_queue(
    db: &impl ConnectionTrait,
    queue_id: i64,
    name: &str,
    name_key: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    queue::Entity::update_many()
        .col_expr(queue::Column::Name, Expr::value(name))
        .col_expr(queue::Column::NameKey, Expr::value(name_key))
        .col_expr(queue::Column::UpdatedAt, Expr::value(now))
        .filter(queue::Column::Id.eq(queue_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Marks the queue deleted and removes its members.
pub(super) async fn soft_delete_queue(
    db: &impl ConnectionTrait,
    organization_id: i64,
    queue_id: i64,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    queue::Entity::update_many()
        .col_expr(queue::Column::DeletedAt, Expr::value(now))
        .col_expr(queue::Column::UpdatedAt, Expr::value(now))
        .filter(queue::Column::OrganizationId.eq(organization_id))
        .filter(queue::Column::Id.eq(queue_id))
        .exec(db)
        .await?;
    queue_member::Entity::delete_many()
        .filter(queue_member::Column::QueueId.in_subquery(queues_among(organization_id, &[queue_id])))
        .exec(db)
        .await?;
    Ok(())
}

/// Those of `queue_ids` that are the organization's, as a subquery: memberships have no
/// organization of their own.
fn queues_among(organization_id: i64, queue_ids: &[i64]) -> SelectStatement {
    Query::select()
        .column(queue::Column::Id)
        .from(queue::Entity)
        .and_where(queue::Column::OrganizationId.eq(organization_id))
        .and_where(queue::Column::Id.is_in(queue_ids.iter().copied()))
        .to_owned()
}

/// Those of `agent_ids` that are the organization's, as a subquery.
fn agents_among(organization_id: i64, agent_ids: &[i64]) -> SelectStatement {
    Query::select()
        .column(agent::Column::Id)
        .from(agent::Entity)
        .and_where(agent::Column::OrganizationId.eq(organization_id))
        .and_where(agent::Column::Id.is_in(agent_ids.iter().copied()))
        .to_owned()
}

/// Adds memberships, leaving existing ones as they are.
pub(super) async fn add_memberships(
    db: &impl ConnectionTrait,
    pairs: impl IntoIterator<Item = (i64, i64)>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let rows = pairs.into_iter().map(|(queue_id, agent_id)| queue_member::ActiveModel {
        queue_id: Set(queue_id),
        agent_id: Set(agent_id),
        created_at: Set(now),
    });
    queue_member::Entity::insert_many(rows)
        .on_conflict_do_nothing_on([queue_member::Column::QueueId, queue_member::Column::AgentId])
        .exec_without_returning(db)
        .await?;
    Ok(())
}

pub(super) async fn remove_memberships(
    db: &impl ConnectionTrait,
    organization_id: i64,
    queue_id: i64,
    agent_ids: &[i64],
) -> Result<(), DbErr> {
    queue_member::Entity::delete_many()
        .filter(queue_member::Column::QueueId.in_subquery(queues_among(organization_id, &[queue_id])))
        .filter(queue_member::Column::AgentId.is_in(agent_ids.iter().copied()))
        .exec(db)
        .await?;
    Ok(())
}

pub(super) async fn remove_all_memberships_of(
    db: &impl ConnectionTrait,
    organization_id: i64,
    agent_ids: &[i64],
) -> Result<(), DbErr> {
    queue_member::Entity::delete_many()
        .filter(queue_member::Column::AgentId.in_subquery(agents_among(organization_id, agent_ids)))
        .exec(db)
        .await?;
    Ok(())
}

/// A `QueueRecord`'s columns, then the ids of its members among the agents asked about,
/// separated by commas.
type QueueAndMembers = (i64, String, String, DateTime<Utc>, DateTime<Utc>, String);

/// The live queues of each of these agents, in name order: one statement, each queue read
/// once (50 agents may list 20 queues 100 times) with the list of its members among
/// these agents (`string_agg`: PostgreSQL, and SQLite since 3.44), and shared by them.
pub(super) async fn queues_of_agents(
    db: &impl ConnectionTrait,
    organization_id: i64,
    agent_ids: &[i64],
) -> Result<HashMap<i64, Vec<Arc<QueueRecord>>>, DbErr> {
    let rows = db.query_all(&queues_of_agents_query(organization_id, agent_ids)).await?;
    let mut by_agent: HashMap<i64, Vec<Arc<QueueRecord>>> = HashMap::new();
    for row in rows {
        let (id, name, name_key, created_at, updated_at, members): QueueAndMembers =
            row.try_get_many_by_index()?;
        let queue = Arc::new(queue_record((id, name, name_key, created_at, updated_at)));
        for member in members.split(',') {
            let agent_id = member.parse().map_err(|_| DbErr::Type(format!("a member id `{member}`")))?;
            // Queues come in name order, so each agent's list is in name order too.
            by_agent.entry(agent_id).or_default().push(Arc::clone(&queue));
        }
    }
    Ok(by_agent)
}

fn queues_of_agents_query(organization_id: i64, agent_ids: &[i64]) -> SelectStatement {
    // The memberships are grouped first, in a subquery, so that SQLite reads them through
    // the index on `agent_id` once rather than probing each queue for each agent.
    let members = Query::select()
        .column(queue_member::Column::QueueId)
        .expr_as(
            Func::cust("string_agg").arg(Expr::col(queue_member::Column::AgentId).cast_as("TEXT")).arg(","),
            "agent_ids",
        )
        .from(queue_member::Entity)
        .and_where(Expr::col(queue_member::Column::AgentId).is_in(agent_ids.iter().copied()))
        .group_by_col(queue_member::Column::QueueId)
        .to_owned();
    live_queues(organization_id)
        .select_only()
        .columns(QUEUE_COLUMNS)
        .column_as(Expr::col(("members", "agent_ids")), "agent_ids")
        .order_by_asc(queue::Column::NameKey)
        .order_by_asc(queue::Column::Id)
        .into_query()
        .join_subquery(
            JoinType::InnerJoin,
            members,
            "members",
            Expr::col(("members", queue_member::Column::QueueId)).equals((queue::Entity, queue::Column::Id)),
        )
        .to_owned()
}

/// The statement `queues_of_agents` runs, built for `backend`; exists so that tests can ask
/// the database how it plans it (`tests/api/query_plans.rs`).
pub(super) fn queues_of_agents_statement(
    backend: DbBackend,
    organization_id: i64,
    agent_ids: &[i64],
) -> Statement {
    backend.build(&queues_of_agents_query(organization_id, agent_ids))
}

#[derive(FromQueryResult)]
struct MemberCount {
    queue_id: i64,
    members: i64,
}

/// How many live agents each of these queues has, in one statement.
///
/// Written as a correlated `EXISTS` so that both planners walk each queue's memberships and
/// look every member up by primary key (about 2 × members). As `agent_id IN (SELECT id FROM
/// agents …)` SQLite probed every (queue, live agent) pair instead: 20,000 index seeks for
/// 20 queues in a 1,000-agent organization, 5 ms of the Agents page's 7 (see BENCHMARKS.md).
pub(super) async fn member_counts(
    db: &impl ConnectionTrait,
    organization_id: i64,
    queue_ids: &[i64],
) -> Result<HashMap<i64, i64>, DbErr> {
    let counts = queue_member::Entity::find()
        .select_only()
        .column(queue_member::Column::QueueId)
        .column_as(queue_member::Column::AgentId.count(), "members")
        .filter(queue_member::Column::QueueId.is_in(queue_ids.iter().copied()))
        .filter(Expr::exists(
            sea_orm::sea_query::Query::select()
                .expr(Expr::value(1))
                .from(agent::Entity)
                .and_where(
                    Expr::col((agent::Entity, agent::Column::Id))
                        .equals((queue_member::Entity, queue_member::Column::AgentId)),
                )
                .and_where(agent::Column::OrganizationId.eq(organization_id))
                .and_where(agent::Column::DeletedAt.is_null())
                .to_owned(),
        ))
        .group_by(queue_member::Column::QueueId)
        .into_model::<MemberCount>()
        .all(db)
        .await?;
    Ok(counts.into_iter().map(|c| (c.queue_id, c.members)).collect())
}

/// Members of a live queue of the organization; None when there is no such queue.
pub(super) async fn queue_member_ids(
    db: &impl ConnectionTrait,
    organization_id: i64,
    queue_id: i64,
) -> Result<Option<Vec<i64>>, DbErr> {
    if find_queue(db, organization_id, queue_id).await?.is_none() {
        return Ok(None);
    }
    let members =
        queue_member::Entity::find().filter(queue_member::Column::QueueId.eq(queue_id)).all(db).await?;
    Ok(Some(members.into_iter().map(|member| member.agent_id).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agents_page_selects_no_password_hash() {
        let page = PageRequest { after: None, before: None, limit: 50, from_end: false };
        for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
            for (details, total) in [(false, false), (true, true)] {
                let reads = AgentPageReads { details, total, queues: total };
                let sql = list_agents_statement(
                    backend,
                    1,
                    &AgentFilter::default(),
                    AgentOrder::default(),
                    &page,
                    reads,
                )
                .sql;
                assert!(!sql.contains("password_hash") && !sql.contains('*'), "{sql}");
            }
        }
    }
}
