//! The GraphQL execution of the Agents page without the network: parse, validate, resolve and
//! build the response for `agents(first: 50) { nodes { id displayName queues { name } } }`
//! as the ADMIN, on SQLite seeded with 1,000 agents in 20 queues, and the same page with the
//! queues' member counts. Regressions in the resolvers, the DataLoaders or the page's SQL show
//! up here before they show in the HTTP benchmark.
//!
//! `cargo bench -p agentdesk-bench --bench agents_page`

use agentdesk_bench::{PAGE_QUERY, seeded_on_temporary_sqlite};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;

fn agents_page(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let (_directory, seeded) = seeded_on_temporary_sqlite(&runtime);
    let page = async |query: &str| {
        let data = seeded.execute(query, json!({})).await;
        assert_eq!(data["agents"]["nodes"].as_array().map(Vec::len), Some(50));
        data
    };
    c.bench_function("agents(first: 50) with queues, SQLite, in process", |b| {
        b.iter(|| runtime.block_on(page(PAGE_QUERY)))
    });
    let with_counts = PAGE_QUERY.replace("queues { name }", "queues { name agentCount }");
    c.bench_function("agents(first: 50) with queues and their agentCount, SQLite, in process", |b| {
        b.iter(|| runtime.block_on(page(&with_counts)))
    });
}

criterion_group!(benches, agents_page);
criterion_main!(benches);
