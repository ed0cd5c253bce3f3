//! The test kit of agentdesk, shared by the integration tests (`tests/api`) and the benchmark
//! program (`bench/`): real servers on fresh databases (in this process, or the binary as a
//! child process), seeding by SQL, a typed GraphQL-over-HTTP client, a WebSocket client, and
//! waiting for what a server reports (`eventually`, `metrics`).

pub mod client;
pub mod metrics;
pub mod postgres;
pub mod private_postgres;
pub mod process;
pub mod seed;
pub mod server;
pub mod small_disk;
pub mod ws;

use std::{future::Future, time::Duration};

pub use client::{Gql, Ordered, Session};
pub use server::TestServer;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The database number of one of our global IDs, for tests that write rows directly or
/// spell an ID differently.
pub fn number_of(global_id: &str) -> i64 {
    agentdesk::graphql::id::decode(&async_graphql::ID(global_id.to_owned())).expect("one of our IDs").1
}

/// How often `eventually` looks again.
const POLL: Duration = Duration::from_millis(50);

/// Looks at `check` until it holds (Ok), at most `within`; then panics with the last state
/// it reported (Err). For a condition the test cannot be told of, only see.
pub async fn eventually<T, F, Fut>(within: Duration, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    poll_until(within, check).await.unwrap_or_else(|state| panic!("not so within {within:?}: {state}"))
}

/// Looks at `check` until it holds (Ok), at most `within`; then returns the last state it
/// reported (Err), for a caller that reports a miss rather than failing on it (the bench).
pub async fn poll_until<T, F, Fut>(within: Duration, mut check: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match check().await {
            Ok(value) => return Ok(value),
            Err(state) if tokio::time::Instant::now() >= deadline => return Err(state),
            Err(_) => tokio::time::sleep(POLL).await,
        }
    }
}
