//! Agents written straight into the database: hashing a password for each through the API
//! would take minutes for the thousands some tests and the benchmarks need.

use agentdesk::{
    auth::{Password, PasswordHasher, token},
    db::entities::{agent, organization, queue, queue_member, session},
    presence::model::Presence,
    viewer::Role,
};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, prelude::Expr,
    sea_query::ExprTrait,
};

/// Every seeded agent's password.
pub const SEED_PASSWORD: &str = "password1";

/// `count` enabled AGENTs of the organization: usernames `{prefix}-0000` on, display names
/// `{prefix} 0000` on, created a millisecond apart in that order, and returned in it.
pub async fn agents(
    db: &DatabaseConnection,
    organization_id: i64,
    prefix: &str,
    count: usize,
) -> Vec<agent::Model> {
    let hash = seed_password_hash().await;
    let now = chrono::Utc::now();
    let rows: Vec<_> = (0..count)
        .map(|n| agent::ActiveModel {
            email: Set(Some(format!("{prefix}{n}@example.com"))),
            ..enabled_agent(
                organization_id,
                [format!("{prefix}-{n:04}"), format!("{prefix} {n:04}")],
                Role::Agent,
                &hash,
                now,
                n,
            )
        })
        .collect();
    let agents = insert_all(db, rows).await;
    count_inserted_agents(db, organization_id, count).await;
    agents
}

async fn seed_password_hash() -> String {
    PasswordHasher::new(1).hash(&Password::parse(SEED_PASSWORD.into()).unwrap()).await.unwrap()
}

/// Rows per INSERT: well inside SQLite's and PostgreSQL's limits on bound parameters.
const ROWS_PER_INSERT: usize = 500;

/// A member of an organization seeded by `organizations`, signed in once.
pub struct SignedIn {
    pub agent_id: i64,
    pub token: String,
}

/// An organization seeded by `organizations`.
pub struct Tenant {
    pub organization_id: i64,
    pub slug: String,
    /// Its one queue, of which every AGENT is a member.
    pub queue_id: i64,
    pub admins: Vec<SignedIn>,
    /// ONLINE, so the queue's conversations are assigned to them.
    pub agents: Vec<SignedIn>,
}

/// `count` organizations `{prefix}-0000` on, each with `admins` ADMINs and `agents` AGENTs
/// holding one session each, and a queue of its AGENTs, in a few statements per table:
/// through the API, thousands of tenants would cost a password hash per member and a
/// request per row.
pub async fn organizations(
    db: &DatabaseConnection,
    prefix: &str,
    count: usize,
    admins: usize,
    agents: usize,
) -> Vec<Tenant> {
    let now = Utc::now();
    let organizations: Vec<_> = (0..count)
        .map(|n| organization::ActiveModel {
            name: Set(format!("{prefix} {n:04}")),
            slug: Set(format!("{prefix}-{n:04}")),
            seat_limit: Set(10_000),
            human_agent_service_enabled: Set(true),
            created_at: Set(now),
            agent_count: Set((admins + agents) as i64),
            ..Default::default()
        })
        .collect();
    let organizations = insert_all(db, organizations).await;
    let queues = organizations.iter().map(|organization| queue::ActiveModel {
        organization_id: Set(organization.id),
        name: Set("Support".into()),
        name_key: Set("support".into()),
        created_at: Set(now),
        updated_at: Set(now),
        deleted_at: Set(None),
        ..Default::default()
    });
    let queues = insert_all(db, queues.collect()).await;
    let hash = seed_password_hash().await;
    let members = organizations.iter().flat_map(|organization| {
        let roles = std::iter::repeat_n(Role::Admin, admins).chain(std::iter::repeat_n(Role::Agent, agents));
        roles.enumerate().map(|(n, role)| member(organization.id, n, role, &hash, now))
    });
    let members = insert_all(db, members.collect()).await;
    // Members and queues were inserted organization by organization, so they line up.
    let per_organization = admins + agents;
    let memberships = members.chunks(per_organization).zip(&queues).flat_map(|(members, queue)| {
        members[admins..].iter().map(|member| queue_member::ActiveModel {
            queue_id: Set(queue.id),
            agent_id: Set(member.id),
            created_at: Set(now),
        })
    });
    insert_only(db, memberships.collect()).await;
    let tokens: Vec<_> = members.iter().map(|_| token::generate()).collect();
    let sessions = members.iter().zip(&tokens).map(|(member, token)| session::ActiveModel {
        agent_id: Set(member.id),
        token_hash: Set(token.hash.clone()),
        created_at: Set(now),
        last_seen_at: Set(now),
        client_address: Set(None),
        ..Default::default()
    });
    insert_only(db, sessions.collect()).await;
    let mut signed_in = members.iter().zip(tokens);
    organizations
        .into_iter()
        .zip(queues)
        .map(|(organization, queue)| {
            let mut members: Vec<_> = signed_in
                .by_ref()
                .take(per_organization)
                .map(|(member, token)| SignedIn { agent_id: member.id, token: token.secret })
                .collect();
            let agents = members.split_off(admins);
            Tenant {
                organization_id: organization.id,
                slug: organization.slug,
                queue_id: queue.id,
                admins: members,
                agents,
            }
        })
        .collect()
}

/// The organization's `n`th member, named by role and place: `admin-0`, `agent-2`.
fn member(organization_id: i64, n: usize, role: Role, hash: &str, now: DateTime<Utc>) -> agent::ActiveModel {
    let online = role == Role::Agent;
    let name = if online { format!("agent-{n}") } else { format!("admin-{n}") };
    agent::ActiveModel {
        presence: Set(if online { Presence::Online } else { Presence::Offline }),
        presence_changed_at: Set(online.then_some(now)),
        // Beyond any benchmark: no sweeper lapses them while it runs.
        presence_expires_at: Set(online.then_some(now + chrono::Duration::days(1))),
        ..enabled_agent(organization_id, [name.clone(), name], role, hash, now, n)
    }
}

/// An enabled, OFFLINE agent with these user and display names, created `n` milliseconds
/// after `now` so that seeded agents keep their order.
fn enabled_agent(
    organization_id: i64,
    [username, display_name]: [String; 2],
    role: Role,
    hash: &str,
    now: DateTime<Utc>,
    n: usize,
) -> agent::ActiveModel {
    agent::ActiveModel {
        organization_id: Set(organization_id),
        username: Set(username),
        display_name: Set(display_name),
        email: Set(None),
        role: Set(role),
        enabled: Set(true),
        password_hash: Set(hash.to_owned()),
        presence: Set(Presence::Offline),
        presence_changed_at: Set(None),
        presence_expires_at: Set(None),
        presence_grace_until: Set(None),
        show_real_phone_numbers: Set(false),
        max_concurrent_sessions: Set(None),
        created_at: Set(now + chrono::Duration::milliseconds(n as i64)),
        updated_at: Set(now),
        deleted_at: Set(None),
        ..Default::default()
    }
}

/// Inserts `rows` in order and returns them as stored, in that order.
async fn insert_all<A>(db: &DatabaseConnection, rows: Vec<A>) -> Vec<<A::Entity as EntityTrait>::Model>
where
    A: sea_orm::ActiveModelTrait + sea_orm::ActiveModelBehavior + Send + Clone,
    <A::Entity as EntityTrait>::Model: sea_orm::IntoActiveModel<A>,
{
    let mut stored = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        stored.extend(A::Entity::insert_many(chunk.to_vec()).exec_with_returning(db).await.unwrap());
    }
    stored
}

/// Inserts `rows`, reading nothing back.
async fn insert_only<A>(db: &DatabaseConnection, rows: Vec<A>)
where
    A: sea_orm::ActiveModelTrait + sea_orm::ActiveModelBehavior + Send + Clone,
{
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        A::Entity::insert_many(chunk.to_vec()).exec_without_returning(db).await.unwrap();
    }
}

/// Adds agents inserted straight into the database to their organization's count of live
/// agents, as the server's own `insert_agent` does.
pub async fn count_inserted_agents(db: &DatabaseConnection, organization_id: i64, count: usize) {
    organization::Entity::update_many()
        .col_expr(
            organization::Column::AgentCount,
            Expr::col(organization::Column::AgentCount).add(count as i64),
        )
        .filter(organization::Column::Id.eq(organization_id))
        .exec(db)
        .await
        .expect("agents counted");
}
