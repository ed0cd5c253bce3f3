//! Sessions and the agent lookups sign-in needs. SQL only; the rules are in `service.rs`.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult, QueryFilter,
    QueryOrder, QuerySelect, RelationTrait,
    prelude::Expr,
    sea_query::{ExprTrait, JoinType, OnConflict, Query},
};

use super::throttle::SharedQuota;
use crate::{
    db::entities::{agent, login_allowance, organization, session},
    viewer::Role,
};

/// The live (not deleted) agent with this username in the organization with this slug.
pub(super) async fn find_agent_by_login(
    db: &impl ConnectionTrait,
    organization_slug: &str,
    username: &str,
) -> Result<Option<agent::Model>, DbErr> {
    agent::Entity::find()
        .join(JoinType::InnerJoin, agent::Relation::Organization.def())
        .filter(organization::Column::Slug.eq(organization_slug))
        .filter(agent::Column::Username.eq(username))
        .filter(agent::Column::DeletedAt.is_null())
        .one(db)
        .await
}

/// The id of the organization with this slug, if any.
pub(super) async fn find_organization_id(
    db: &impl ConnectionTrait,
    slug: &str,
) -> Result<Option<i64>, DbErr> {
    let found = organization::Entity::find().filter(organization::Column::Slug.eq(slug)).one(db).await?;
    Ok(found.map(|organization| organization.id))
}

pub(super) async fn insert_session(
    db: &impl ConnectionTrait,
    agent_id: i64,
    token_hash: String,
    client_address: Option<String>,
    now: DateTime<Utc>,
) -> Result<i64, DbErr> {
    let inserted = session::Entity::insert(session::ActiveModel {
        agent_id: Set(agent_id),
        token_hash: Set(token_hash),
        created_at: Set(now),
        last_seen_at: Set(now),
        client_address: Set(client_address),
        ..Default::default()
    })
    .exec(db)
    .await?;
    Ok(inserted.last_insert_id)
}

/// A session and what its viewer is made of: nothing else of the agent (no password hash).
#[derive(FromQueryResult)]
pub(super) struct LiveSession {
    pub session_id: i64,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub agent_id: i64,
    pub username: String,
    pub organization_id: i64,
    pub role: Role,
    pub show_real_phone_numbers: bool,
}

/// The session with this token hash and its agent, provided the agent is enabled and alive.
pub(super) async fn find_live_session(
    db: &impl ConnectionTrait,
    token_hash: &str,
) -> Result<Option<LiveSession>, DbErr> {
    session::Entity::find()
        .select_only()
        .column_as(session::Column::Id, "session_id")
        .column(session::Column::CreatedAt)
        .column(session::Column::LastSeenAt)
        .column_as(agent::Column::Id, "agent_id")
        .column(agent::Column::Username)
        .column(agent::Column::OrganizationId)
        .column(agent::Column::Role)
        .column(agent::Column::ShowRealPhoneNumbers)
        .inner_join(agent::Entity)
        .filter(session::Column::TokenHash.eq(token_hash))
        .filter(agent::Column::Enabled.eq(true))
        .filter(agent::Column::DeletedAt.is_null())
        .into_model::<LiveSession>()
        .one(db)
        .await
}

/// False when there was no such session (any more).
pub(super) async fn touch_session(
    db: &impl ConnectionTrait,
    session_id: i64,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let touched = session::Entity::update_many()
        .col_expr(session::Column::LastSeenAt, now.into())
        .filter(session::Column::Id.eq(session_id))
        .exec(db)
        .await?;
    Ok(touched.rows_affected == 1)
}

/// False when there was no such session (any more).
pub(super) async fn delete_session(db: &impl ConnectionTrait, session_id: i64) -> Result<bool, DbErr> {
    Ok(session::Entity::delete_by_id(session_id).exec(db).await?.rows_affected == 1)
}

/// Ends every session of these agents, but `keep` (the caller's own, on a password change);
/// returns how many ended.
pub(super) async fn delete_sessions_of(
    db: &impl ConnectionTrait,
    organization_id: i64,
    agent_ids: &[i64],
    keep: Option<i64>,
) -> Result<u64, DbErr> {
    let of_the_organization = Query::select()
        .column(agent::Column::Id)
        .from(agent::Entity)
        .and_where(agent::Column::OrganizationId.eq(organization_id))
        .and_where(agent::Column::Id.is_in(agent_ids.iter().copied()))
        .to_owned();
    let mut query =
        session::Entity::delete_many().filter(session::Column::AgentId.in_subquery(of_the_organization));
    if let Some(keep) = keep {
        query = query.filter(session::Column::Id.ne(keep));
    }
    Ok(query.exec(db).await?.rows_affected)
}

/// The sessions of an agent of the organization, most recently used first.
pub(super) async fn sessions_of(
    db: &impl ConnectionTrait,
    organization_id: i64,
    agent_id: i64,
) -> Result<Vec<session::Model>, DbErr> {
    session::Entity::find()
        .inner_join(agent::Entity)
        .filter(agent::Column::OrganizationId.eq(organization_id))
        .filter(session::Column::AgentId.eq(agent_id))
        .order_by_desc(session::Column::LastSeenAt)
        .order_by_desc(session::Column::Id)
        .all(db)
        .await
}

/// A session of an agent of the organization.
pub(super) async fn find_session(
    db: &impl ConnectionTrait,
    organization_id: i64,
    session_id: i64,
) -> Result<Option<session::Model>, DbErr> {
    session::Entity::find_by_id(session_id)
        .inner_join(agent::Entity)
        .filter(agent::Column::OrganizationId.eq(organization_id))
        .one(db)
        .await
}

/// Deletes the sessions idle since before `idle_cutoff` or signed in before `age_cutoff`
/// (None: no such limit); returns how many.
pub(super) async fn delete_expired_sessions(
    db: &impl ConnectionTrait,
    idle_cutoff: Option<DateTime<Utc>>,
    age_cutoff: Option<DateTime<Utc>>,
) -> Result<u64, DbErr> {
    let mut expired = Condition::any();
    if let Some(cutoff) = idle_cutoff {
        expired = expired.add(session::Column::LastSeenAt.lt(cutoff));
    }
    if let Some(cutoff) = age_cutoff {
        expired = expired.add(session::Column::CreatedAt.lt(cutoff));
    }
    if expired.is_empty() {
        return Ok(0);
    }
    Ok(session::Entity::delete_many().filter(expired).exec(db).await?.rows_affected)
}

/// Takes one attempt from a shared allowance (an account's or a client address's) in one
/// statement (GCRA, see `throttle::SharedQuota`), by the database's clock: concurrent
/// attempts on any instances cannot overdraw it. False when it is spent.
pub(super) async fn take_login_attempt(
    db: &impl ConnectionTrait,
    throttle_key: String,
    quota: SharedQuota,
) -> Result<bool, DbErr> {
    let stored = Expr::col((login_allowance::Entity, login_allowance::Column::AllowanceAtMs));
    let now = database_now_ms(db.get_database_backend());
    let from: Expr = Expr::case(stored.clone().gt(now.clone()), stored.clone()).finally(now.clone()).into();
    let statement = Query::insert()
        .into_table(login_allowance::Entity)
        .columns([login_allowance::Column::ThrottleKey, login_allowance::Column::AllowanceAtMs])
        .values([throttle_key.into(), now.clone().add(quota.interval_ms)])
        .map_err(|error| DbErr::Custom(error.to_string()))?
        .on_conflict(
            OnConflict::column(login_allowance::Column::ThrottleKey)
                .value(login_allowance::Column::AllowanceAtMs, from.add(quota.interval_ms))
                .action_and_where(stored.lte(now.add(quota.burst_span_ms())))
                .to_owned(),
        )
        .to_owned();
    Ok(db.execute(&statement).await?.rows_affected() == 1)
}

/// How far a shared allowance stands ahead of the database's clock, in milliseconds; None
/// when it has no row.
pub(super) async fn login_allowance_ahead_ms(
    db: &impl ConnectionTrait,
    throttle_key: &str,
) -> Result<Option<i64>, DbErr> {
    let now = database_now_ms(db.get_database_backend());
    login_allowance::Entity::find_by_id(throttle_key.to_owned())
        .select_only()
        .expr(Expr::col(login_allowance::Column::AllowanceAtMs).sub(now))
        .into_tuple::<i64>()
        .one(db)
        .await
}

/// Forgets allowances that are whole again: they hold nothing an absent row would not.
pub(super) async fn prune_login_allowances(db: &impl ConnectionTrait) -> Result<u64, DbErr> {
    let now = database_now_ms(db.get_database_backend());
    let pruned = login_allowance::Entity::delete_many()
        .filter(Expr::col(login_allowance::Column::AllowanceAtMs).lte(now))
        .exec(db)
        .await?;
    Ok(pruned.rows_affected)
}

/// The database's clock in milliseconds since the epoch, read as the statement runs: the one
/// clock every allowance is kept by. Taking an attempt by it, concurrent attempts move an
/// allowance on in the order they take its row, whatever order the instances read their own
/// clocks in: one that read its clock first but reached the row last would otherwise find the
/// allowance ahead of its "now" and be refused a burst early. It also keeps the instances'
/// clocks, which may disagree, out of it.
fn database_now_ms(backend: DbBackend) -> Expr {
    Expr::cust(match backend {
        DbBackend::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
        // PostgreSQL. `clock_timestamp()`, not `now()`: `now()` is when the statement began,
        // before it waited for the row.
        _ => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
    })
}
