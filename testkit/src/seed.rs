//! Agents written straight into the database: hashing a password for each through the API
//! would take minutes for the thousands some tests and the benchmarks need.

use agentdesk::{
    auth::{Password, PasswordHasher},
    db::entities::{agent, organization},
    presence::model::Presence,
    viewer::Role,
};
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
    let hash = PasswordHasher::new(1).hash(&Password::parse(SEED_PASSWORD.into()).unwrap()).await.unwrap();
    let now = chrono::Utc::now();
    let rows: Vec<_> = (0..count)
        .map(|n| agent::ActiveModel {
            organization_id: Set(organization_id),
            username: Set(format!("{prefix}-{n:04}")),
            display_name: Set(format!("{prefix} {n:04}")),
            email: Set(Some(format!("{prefix}{n}@example.com"))),
            role: Set(Role::Agent),
            enabled: Set(true),
            password_hash: Set(hash.clone()),
            presence: Set(Presence::Offline),
            presence_changed_at: Set(None),
            show_real_phone_numbers: Set(false),
            max_concurrent_sessions: Set(None),
            created_at: Set(now + chrono::Duration::milliseconds(n as i64)),
            updated_at: Set(now),
            deleted_at: Set(None),
            ..Default::default()
        })
        .collect();
    let mut agents = Vec::with_capacity(count);
    for chunk in rows.chunks(500) {
        agents.extend(agent::Entity::insert_many(chunk.to_vec()).exec_with_returning(db).await.unwrap());
    }
    count_inserted_agents(db, organization_id, count).await;
    agents
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
