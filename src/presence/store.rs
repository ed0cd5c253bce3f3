//! Presence SQL. Every flip is a conditional UPDATE that names the state it leaves, so of
//! two writers racing (two instances sweeping, a report against a lapse) exactly one
//! changes the row, and only that one announces it.
//!
//! Presence writes its own tables (`agent_sockets`, `presence_instances`, `presence_history`)
//! and, of `agents`, only the columns it owns: `presence`, `presence_changed_at`,
//! `presence_reason`, `presence_expires_at`, `presence_grace_until` (the directory inserts a
//! new agent OFFLINE and owns the rest of the row; see `db::entities::agent`).

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    QueryTrait, Statement, UpdateMany,
    sea_query::{Expr, ExprTrait, OnConflict, Query, UnionType},
};

use super::model::{Flipped, HeldSocket, HistoryEntry, HistoryRecord, Presence, PresenceReason};
use crate::db::{
    entities::{agent, agent_socket, presence_history, presence_instance, queue, queue_member},
    page::{Page, PageRequest},
};

/// History rows written per statement: a sweep may flip any number of agents, and each row
/// takes 5 parameters (SQLite allows 32766 per statement).
const HISTORY_ROWS_PER_STATEMENT: usize = 1000;
/// Sockets put back or closed per statement (at most 4 parameters a socket).
const SOCKET_ROWS_PER_STATEMENT: usize = 1000;

/// No socket of this agent is open (on any instance still counted).
fn has_no_socket() -> Expr {
    Expr::exists(
        Query::select()
            .expr(Expr::val(1))
            .from(agent_socket::Entity)
            .and_where(
                Expr::col((agent_socket::Entity, agent_socket::Column::AgentId))
                    .equals((agent::Entity, agent::Column::Id)),
            )
            .to_owned(),
    )
    .not()
}

fn may_be_online() -> impl sea_orm::sea_query::IntoCondition {
    agent::Column::Enabled.eq(true).and(agent::Column::DeletedAt.is_null())
}

/// OFFLINE → ONLINE until `expires_at`, as REPORTED; the agent as updated, or None when it
/// was ONLINE already (or may not be: disabled or deleted).
pub(super) async fn go_online(
    db: &impl ConnectionTrait,
    organization_id: i64,
    agent_id: i64,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<Option<Flipped>, DbErr> {
    let updated = agent::Entity::update_many()
        .set(agent::ActiveModel {
            presence: Set(Presence::Online),
            presence_changed_at: Set(Some(now)),
            presence_reason: Set(Some(PresenceReason::Reported)),
            presence_expires_at: Set(Some(expires_at)),
            presence_grace_until: Set(None),
            ..Default::default()
        })
        .filter(agent::Column::Id.eq(agent_id))
        .filter(agent::Column::OrganizationId.eq(organization_id))
        .filter(agent::Column::Presence.ne(Presence::Online))
        .filter(may_be_online())
        .exec_with_returning(db)
        .await?;
    Ok(updated.into_iter().next().map(flipped))
}

/// Extends an ONLINE agent's TTL; false when it is not ONLINE (any more).
pub(super) async fn renew(
    db: &impl ConnectionTrait,
    organization_id: i64,
    agent_id: i64,
    expires_at: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let result = agent::Entity::update_many()
        .set(agent::ActiveModel {
            presence_expires_at: Set(Some(expires_at)),
            presence_grace_until: Set(None),
            ..Default::default()
        })
        .filter(agent::Column::Id.eq(agent_id))
        .filter(agent::Column::OrganizationId.eq(organization_id))
        .filter(agent::Column::Presence.eq(Presence::Online))
        .filter(may_be_online())
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

fn flipped(row: agent::Model) -> Flipped {
    Flipped {
        organization_id: row.organization_id,
        agent_id: row.id,
        status: row.presence,
        reason: row.presence_reason,
    }
}

fn offline_at(now: DateTime<Utc>, reason: Option<PresenceReason>) -> agent::ActiveModel {
    agent::ActiveModel {
        presence: Set(Presence::Offline),
        presence_changed_at: Set(Some(now)),
        presence_reason: reason.map_or(sea_orm::ActiveValue::NotSet, |reason| Set(Some(reason))),
        presence_expires_at: Set(None),
        presence_grace_until: Set(None),
        ..Default::default()
    }
}

/// These agents of the organization that were not OFFLINE become OFFLINE; returns them as
/// updated.
pub(super) async fn go_offline(
    db: &impl ConnectionTrait,
    organization_id: i64,
    agent_ids: &[i64],
    now: DateTime<Utc>,
    reason: PresenceReason,
) -> Result<Vec<Flipped>, DbErr> {
    let updated = agent::Entity::update_many()
        .set(offline_at(now, Some(reason)))
        .filter(agent::Column::OrganizationId.eq(organization_id))
        .filter(agent::Column::Id.is_in(agent_ids.iter().copied()))
        .filter(agent::Column::Presence.ne(Presence::Offline))
        .exec_with_returning(db)
        .await?;
    Ok(updated.into_iter().map(flipped).collect())
}

/// ONLINE agents whose TTL passed, or whose socket grace passed with no socket open again,
/// become OFFLINE, with the reason that applies (the TTL when both do); returns them.
pub(super) async fn lapse(db: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<Vec<Flipped>, DbErr> {
    let updated = lapse_update(now).exec_with_returning(db).await?;
    Ok(updated.into_iter().map(flipped).collect())
}

/// `lapse`'s statement.
pub(super) fn lapse_statement(backend: DbBackend, now: DateTime<Utc>) -> Statement {
    lapse_update(now).build(backend)
}

/// Every instance runs this every second, so it reads the agents whose deadline passed
/// through the deadlines' indexes, never every agent of every organization: the candidates
/// are the union of one index range per deadline (a plain `OR` with the socket check inside
/// made PostgreSQL hash every socket row each time), and the outer conditions check each
/// candidate again against the row as it is when updated.
fn lapse_update(now: DateTime<Utc>) -> UpdateMany<agent::Entity> {
    let expired = || agent::Column::PresenceExpiresAt.lt(now);
    let grace_over = || agent::Column::PresenceGraceUntil.lt(now);
    let reason = Expr::case(expired(), Expr::val(PresenceReason::TtlExpired.as_str()))
        .finally(Expr::val(PresenceReason::Disconnected.as_str()));
    let mut candidates =
        Query::select().column(agent::Column::Id).from(agent::Entity).cond_where(expired()).to_owned();
    let disconnected_ids = Query::select()
        .column(agent::Column::Id)
        .from(agent::Entity)
        .cond_where(grace_over())
        .and_where(has_no_socket())
        .to_owned();
    candidates.union(UnionType::All, disconnected_ids);
    agent::Entity::update_many()
        .set(offline_at(now, None))
        .col_expr(agent::Column::PresenceReason, reason.into())
        .filter(agent::Column::Presence.eq(Presence::Online))
        .filter(expired().or(grace_over()))
        .filter(agent::Column::Id.in_subquery(candidates))
}

/// Every ONLINE agent of every organization becomes OFFLINE with `SERVER_RESTART`, and every
/// socket is forgotten: the processes that held them are gone. Returns the agents.
pub(super) async fn reset_all(db: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<Vec<Flipped>, DbErr> {
    agent_socket::Entity::delete_many().exec(db).await?;
    let updated = agent::Entity::update_many()
        .set(offline_at(now, Some(PresenceReason::ServerRestart)))
        .filter(agent::Column::Presence.eq(Presence::Online))
        .exec_with_returning(db)
        .await?;
    Ok(updated.into_iter().map(flipped).collect())
}

/// Whether an instance other than `instance` heart-beat at or after `cutoff`.
pub(super) async fn another_instance_alive(
    db: &impl ConnectionTrait,
    instance: &str,
    cutoff: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let alive = presence_instance::Entity::find()
        .filter(presence_instance::Column::Id.ne(instance))
        .filter(presence_instance::Column::HeartbeatAt.gte(cutoff))
        .one(db)
        .await?;
    Ok(alive.is_some())
}

impl From<presence_history::Model> for HistoryRecord {
    fn from(row: presence_history::Model) -> Self {
        let change = HistoryEntry {
            organization_id: row.organization_id,
            agent_id: row.agent_id,
            status: row.status,
            reason: row.reason,
            at: row.at,
        };
        Self { id: row.id, change }
    }
}

/// Appends changes to the presence history: one statement per 1000 rows, whatever the
/// number of agents a bulk change or a sweep flipped.
pub(super) async fn record_history(db: &impl ConnectionTrait, entries: &[HistoryEntry]) -> Result<(), DbErr> {
    for chunk in entries.chunks(HISTORY_ROWS_PER_STATEMENT) {
        let rows = chunk.iter().map(|entry| presence_history::ActiveModel {
            organization_id: Set(entry.organization_id),
            agent_id: Set(entry.agent_id),
            status: Set(entry.status),
            reason: Set(entry.reason),
            at: Set(entry.at),
            ..Default::default()
        });
        presence_history::Entity::insert_many(rows).exec_without_returning(db).await?;
    }
    Ok(())
}

/// One agent's history, newest first, at or after `since` when given.
pub(super) async fn history(
    db: &impl ConnectionTrait,
    organization_id: i64,
    agent_id: i64,
    since: Option<DateTime<Utc>>,
    page: &PageRequest,
) -> Result<Page<HistoryRecord>, DbErr> {
    let mut query = presence_history::Entity::find()
        .filter(presence_history::Column::OrganizationId.eq(organization_id))
        .filter(presence_history::Column::AgentId.eq(agent_id));
    if let Some(since) = since {
        query = query.filter(presence_history::Column::At.gte(since));
    }
    if let Some(after) = &page.after {
        query = query.filter(presence_history::Column::Id.lt(after.id));
    }
    let rows = query.order_by_desc(presence_history::Column::Id).limit(page.rows_to_read()).all(db).await?;
    Ok(page.page_of(rows.into_iter().map(HistoryRecord::from).collect()))
}

/// Forgets history older than `cutoff`.
pub(super) async fn prune_history(db: &impl ConnectionTrait, cutoff: DateTime<Utc>) -> Result<u64, DbErr> {
    let result = presence_history::Entity::delete_many()
        .filter(presence_history::Column::At.lt(cutoff))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}

/// This instance is alive at `now`: its row is written whether or not it is there.
pub(super) async fn heartbeat(
    db: &impl ConnectionTrait,
    instance: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    presence_instance::Entity::insert(presence_instance::ActiveModel {
        id: Set(instance.to_owned()),
        heartbeat_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(presence_instance::Column::Id)
            .update_column(presence_instance::Column::HeartbeatAt)
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// This instance is still alive at `now`; false when its row is gone: another instance took
/// it for gone and released its sockets.
pub(super) async fn renew_heartbeat(
    db: &impl ConnectionTrait,
    instance: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let renewed = presence_instance::Entity::update_many()
        .set(presence_instance::ActiveModel { heartbeat_at: Set(now), ..Default::default() })
        .filter(presence_instance::Column::Id.eq(instance))
        .exec(db)
        .await?;
    Ok(renewed.rows_affected > 0)
}

/// Forgets instances that did not heart-beat since `cutoff` (and `instance`, when it stops)
/// and their sockets; the agents that held them, when ONLINE, keep it until `grace_until`
/// unless a socket opens again. Set-wise: an instance may hold tens of thousands of sockets.
///
/// The instances' rows go first: their deletion locks them, so an instance renewing its
/// heartbeat meanwhile waits for this commit, then finds its row gone and puts its sockets
/// back (`reclaim_sockets`) rather than believing it still holds them.
pub(super) async fn release_instances(
    db: &impl ConnectionTrait,
    cutoff: DateTime<Utc>,
    stopping: Option<&str>,
    grace_until: DateTime<Utc>,
) -> Result<(), DbErr> {
    let mut gone = presence_instance::Column::HeartbeatAt.lt(cutoff);
    if let Some(stopping) = stopping {
        gone = gone.or(presence_instance::Column::Id.eq(stopping));
    }
    presence_instance::Entity::delete_many().filter(gone).exec(db).await?;

    let orphaned: Vec<String> = db
        .query_all_raw(orphaned_instances_statement(db.get_database_backend()))
        .await?
        .iter()
        .map(|row| row.try_get_by_index(0))
        .collect::<Result<_, _>>()?;
    if orphaned.is_empty() {
        return Ok(());
    }
    let of_orphaned = || agent_socket::Column::InstanceId.is_in(orphaned.iter().cloned());
    let orphans_agents = Query::select()
        .column(agent_socket::Column::AgentId)
        .from(agent_socket::Entity)
        .cond_where(of_orphaned())
        .to_owned();
    agent::Entity::update_many()
        .set(agent::ActiveModel { presence_grace_until: Set(Some(grace_until)), ..Default::default() })
        .filter(agent::Column::Id.in_subquery(orphans_agents))
        .filter(agent::Column::PresenceGraceUntil.is_null())
        .exec(db)
        .await?;
    agent_socket::Entity::delete_many().filter(of_orphaned()).exec(db).await?;
    Ok(())
}

/// The instances that sockets are recorded for but that have no row (any more): each
/// instance holding sockets found by one step through the index on `instance_id` (a loose
/// index scan, which neither database does by itself), not by reading every socket row, so
/// a sweep costs the number of instances whatever the number of sockets. One statement, so
/// a socket it sees was recorded after its instance's row, which it then sees too.
pub(super) fn orphaned_instances_statement(backend: DbBackend) -> Statement {
    Statement::from_string(
        backend,
        "WITH RECURSIVE holding (instance_id) AS ( \
           SELECT MIN(instance_id) FROM agent_sockets \
           UNION ALL \
           SELECT (SELECT MIN(s.instance_id) FROM agent_sockets s WHERE s.instance_id > holding.instance_id) \
           FROM holding WHERE holding.instance_id IS NOT NULL \
         ) \
         SELECT instance_id FROM holding \
         WHERE instance_id IS NOT NULL AND instance_id NOT IN (SELECT id FROM presence_instances)",
    )
}

/// Puts back the sockets of `instance` that another instance released while taking it for
/// gone (ids kept, so closing them later finds them), and stops their agents' grace.
pub(super) async fn reclaim_sockets(
    db: &impl ConnectionTrait,
    instance: &str,
    sockets: &[HeldSocket],
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    heartbeat(db, instance, now).await?;
    for chunk in sockets.chunks(SOCKET_ROWS_PER_STATEMENT) {
        let rows = chunk.iter().map(|socket| agent_socket::ActiveModel {
            id: Set(socket.id),
            instance_id: Set(instance.to_owned()),
            agent_id: Set(socket.agent_id),
            opened_at: Set(socket.opened_at),
        });
        agent_socket::Entity::insert_many(rows)
            .on_conflict(OnConflict::column(agent_socket::Column::Id).do_nothing().to_owned())
            .exec_without_returning(db)
            .await?;
        end_grace(db, chunk.iter().map(|socket| socket.agent_id)).await?;
    }
    Ok(())
}

/// Records an open socket of the agent; its grace, if running, is off.
pub(super) async fn open_socket(
    db: &impl ConnectionTrait,
    instance: &str,
    agent_id: i64,
    now: DateTime<Utc>,
) -> Result<i64, DbErr> {
    let inserted = agent_socket::Entity::insert(agent_socket::ActiveModel {
        instance_id: Set(instance.to_owned()),
        agent_id: Set(agent_id),
        opened_at: Set(now),
        ..Default::default()
    })
    .exec(db)
    .await?;
    end_grace(db, [agent_id]).await?;
    Ok(inserted.last_insert_id)
}

/// These agents hold a socket again: a grace that was running is off.
async fn end_grace(db: &impl ConnectionTrait, agent_ids: impl IntoIterator<Item = i64>) -> Result<(), DbErr> {
    agent::Entity::update_many()
        .set(agent::ActiveModel { presence_grace_until: Set(None), ..Default::default() })
        .filter(agent::Column::Id.is_in(agent_ids))
        .exec(db)
        .await?;
    Ok(())
}

/// Forgets closed sockets; for each agent whose last socket that was and who is ONLINE, the
/// grace runs until `grace_until`. Two statements a chunk, however many sockets closed.
pub(super) async fn close_sockets(
    db: &impl ConnectionTrait,
    sockets: &[HeldSocket],
    grace_until: DateTime<Utc>,
) -> Result<(), DbErr> {
    for chunk in sockets.chunks(SOCKET_ROWS_PER_STATEMENT) {
        for statement in close_statements(db.get_database_backend(), chunk, grace_until) {
            db.execute_raw(statement).await?;
        }
    }
    Ok(())
}

/// The sockets' rows deleted, then the grace of their agents left with none. Those still
/// holding one are looked up once for the whole chunk (`NOT IN` a subquery, which PostgreSQL
/// runs once and hashes): a correlated `NOT EXISTS`, planned on statistics from before a
/// crowd came (agents OFFLINE, the sockets table nearly empty), made PostgreSQL scan every
/// socket row for each closed agent, 2.2 s a statement under a crowd of 18,400
/// (`tests/api/query_plans.rs`).
pub(super) fn close_statements(
    backend: DbBackend,
    sockets: &[HeldSocket],
    grace_until: DateTime<Utc>,
) -> [Statement; 2] {
    let agent_ids = || sockets.iter().map(|socket| socket.agent_id);
    let delete = agent_socket::Entity::delete_many()
        .filter(agent_socket::Column::Id.is_in(sockets.iter().map(|socket| socket.id)))
        .build(backend);
    let still_held = Query::select()
        .column(agent_socket::Column::AgentId)
        .from(agent_socket::Entity)
        .and_where(agent_socket::Column::AgentId.is_in(agent_ids()))
        .to_owned();
    let start_grace = agent::Entity::update_many()
        .set(agent::ActiveModel { presence_grace_until: Set(Some(grace_until)), ..Default::default() })
        .filter(agent::Column::Id.is_in(agent_ids()))
        .filter(agent::Column::Presence.eq(Presence::Online))
        .filter(agent::Column::Id.not_in_subquery(still_held))
        .build(backend);
    [delete, start_grace]
}

/// The agent an event names, deleted or not: the last event of a deleted agent still
/// resolves.
pub(super) async fn find_agent(
    db: &impl ConnectionTrait,
    organization_id: i64,
    agent_id: i64,
) -> Result<Option<agent::AgentRecord>, DbErr> {
    agent::Entity::find_by_id(agent_id)
        .filter(agent::Column::OrganizationId.eq(organization_id))
        .into_partial_model()
        .one(db)
        .await
}

/// The organization's live queues the agent belongs to.
pub(super) async fn queue_ids_of(
    db: &impl ConnectionTrait,
    organization_id: i64,
    agent_id: i64,
) -> Result<Vec<i64>, DbErr> {
    let live_queues = Query::select()
        .column(queue::Column::Id)
        .from(queue::Entity)
        .and_where(Expr::col(queue::Column::OrganizationId).eq(organization_id))
        .and_where(Expr::col(queue::Column::DeletedAt).is_null())
        .to_owned();
    let memberships = queue_member::Entity::find()
        .filter(queue_member::Column::AgentId.eq(agent_id))
        .filter(queue_member::Column::QueueId.in_subquery(live_queues))
        .all(db)
        .await?;
    Ok(memberships.into_iter().map(|member| member.queue_id).collect())
}

/// The members of one of the organization's live queues; None when there is no such queue.
/// (Presence reads membership itself rather than through the directory's rules, which sit
/// above it and call it.)
pub(super) async fn members_of_live_queue(
    db: &impl ConnectionTrait,
    organization_id: i64,
    queue_id: i64,
) -> Result<Option<Vec<i64>>, DbErr> {
    let live = queue::Entity::find_by_id(queue_id)
        .filter(queue::Column::OrganizationId.eq(organization_id))
        .filter(queue::Column::DeletedAt.is_null())
        .one(db)
        .await?;
    if live.is_none() {
        return Ok(None);
    }
    let members =
        queue_member::Entity::find().filter(queue_member::Column::QueueId.eq(queue_id)).all(db).await?;
    Ok(Some(members.into_iter().map(|member| member.agent_id).collect()))
}

/// Live agents of the organization (of `agent_ids`, when given) whose presence changed
/// after `since`, oldest change first.
pub(super) async fn changed_since(
    db: &impl ConnectionTrait,
    organization_id: i64,
    since: DateTime<Utc>,
    agent_ids: Option<&[i64]>,
) -> Result<Vec<agent::Model>, DbErr> {
    let mut query = agent::Entity::find()
        .filter(agent::Column::OrganizationId.eq(organization_id))
        .filter(agent::Column::DeletedAt.is_null())
        .filter(agent::Column::PresenceChangedAt.gt(since));
    if let Some(agent_ids) = agent_ids {
        query = query.filter(agent::Column::Id.is_in(agent_ids.iter().copied()));
    }
    query.order_by_asc(agent::Column::PresenceChangedAt).all(db).await
}
