//! `setAgentsEnabled` on 1,000 ids, executed through the schema without the network:
//! one iteration disables the 1,000 seeded agents and enables them again. The HTTP figure
//! (target < 50 ms each way on SQLite) is in BENCHMARKS.md; this catches regressions.
//!
//! `cargo bench -p agentdesk-bench --bench bulk`

use agentdesk::graphql::id::{self, NodeKind};
use agentdesk_bench::seeded_on_temporary_sqlite;
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;

const SET_ENABLED: &str = "mutation($ids: [ID!]!, $on: Boolean!) { setAgentsEnabled(ids: $ids, enabled: $on) { affectedCount userErrors { code } } }";

fn bulk(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let (_directory, seeded) = seeded_on_temporary_sqlite(&runtime);
    let ids: Vec<String> =
        seeded.agents.iter().map(|a| id::encode(NodeKind::Agent, a.id).to_string()).collect();
    let set_enabled = async |on: bool| {
        let data = seeded.execute(SET_ENABLED, json!({ "ids": ids, "on": on })).await;
        assert_eq!(data["setAgentsEnabled"]["affectedCount"], 1000, "{data}");
    };
    let mut group = c.benchmark_group("setAgentsEnabled");
    group.sample_size(10);
    group.bench_function("disable then enable 1,000 agents, SQLite, in process", |b| {
        b.iter(|| {
            runtime.block_on(async {
                set_enabled(false).await;
                set_enabled(true).await;
            })
        })
    });
    group.finish();
}

criterion_group!(benches, bulk);
criterion_main!(benches);
