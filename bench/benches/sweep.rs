//! One presence sweep (`presence::service::sweep`), which every instance runs every second,
//! as the database grows: 1,000 agents, then 50,000, a quarter of them ONLINE with a socket
//! this instance holds, none lapsing. It reads what lapses and one index step per instance
//! holding sockets, so it should cost the same at both sizes; in-process, SQLite.
//!
//! `cargo bench -p agentdesk-bench --bench sweep`

use std::time::Duration;

use agentdesk::{
    db::entities::{agent, organization},
    presence::{model::Timings, service as presence},
};
use agentdesk_bench::{AGENTS, seeded_on_temporary_sqlite};
use agentdesk_testkit::seed;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, prelude::Expr};

const SIZES: [usize; 2] = [AGENTS, 50_000];

fn sweep(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let (_directory, seeded) = seeded_on_temporary_sqlite(&runtime);
    let state = &seeded.state;
    let organization_id = seeded.admin.organization_id;
    let timings = Timings::from_config(&state.config);
    let mut group = c.benchmark_group("presence sweep");
    let mut agents = AGENTS;
    for size in SIZES {
        runtime.block_on(async {
            organization::Entity::update_many()
                .col_expr(organization::Column::SeatLimit, Expr::value(size as i32 + 100))
                .filter(organization::Column::Id.eq(organization_id))
                .exec(&state.db)
                .await
                .expect("raise the seat limit");
            if size > agents {
                seed::agents(&state.db, organization_id, &format!("more{size}"), size - agents).await;
                agents = size;
            }
            // A quarter ONLINE for the next hour, each with a socket of this instance.
            state.db.execute_unprepared("DELETE FROM agent_sockets").await.expect("no sockets");
            agent::Entity::update_many()
                .col_expr(agent::Column::Presence, Expr::value("ONLINE"))
                .col_expr(
                    agent::Column::PresenceExpiresAt,
                    Expr::value(chrono::Utc::now() + Duration::from_secs(3600)),
                )
                .filter(Expr::cust("id % 4 = 0"))
                .exec(&state.db)
                .await
                .expect("a quarter ONLINE");
            state
                .db
                .execute_unprepared(&format!(
                    "INSERT INTO agent_sockets (instance_id, agent_id, opened_at) \
                     SELECT '{}', id, created_at FROM agents WHERE id % 4 = 0",
                    state.instance.id.as_str()
                ))
                .await
                .expect("their sockets");
            state.db.execute_unprepared("ANALYZE").await.expect("statistics");
        });
        group.bench_with_input(BenchmarkId::new("agents in the database", size), &size, |b, _| {
            b.iter(|| {
                runtime
                    .block_on(presence::sweep(
                        &state.db,
                        &state.heartbeat_db,
                        &state.bus,
                        &state.instance,
                        timings,
                    ))
                    .expect("a sweep")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, sweep);
criterion_main!(benches);
