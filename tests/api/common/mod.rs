//! Shared by every integration test: a real server per test on a fresh database, a typed
//! GraphQL-over-HTTP client and a WebSocket client.

pub mod client;
pub mod metrics;
pub mod postgres;
pub mod private_postgres;
pub mod process;
pub mod server;
pub mod small_disk;
pub mod ws;

use std::{future::Future, pin::Pin, time::Duration};

pub use client::{Gql, Session};
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

pub type TestFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// How often `eventually` looks again.
const POLL: Duration = Duration::from_millis(50);

/// Looks at `check` until it holds (Ok), at most `within`; then panics with the last state
/// it reported (Err). For a condition the test cannot be told of, only see.
pub async fn eventually<T, F, Fut>(within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(state) if tokio::time::Instant::now() >= deadline => {
                panic!("not so within {within:?}: {state}")
            }
            Err(_) => tokio::time::sleep(POLL).await,
        }
    }
}

#[derive(Clone, Copy)]
pub struct Test {
    pub name: &'static str,
    pub body: fn(Backend) -> TestFuture,
    /// What it proves exists only with PostgreSQL (several instances, LISTEN/NOTIFY, the
    /// planner): it runs there only, rather than passing on SQLite without proving anything.
    pub postgres_only: bool,
}

/// Lists a module's tests, run on both back-ends. A test left out of the list is dead code,
/// which clippy refuses, so none can be forgotten.
#[macro_export]
macro_rules! tests {
    ($($name:ident),* $(,)?) => {
        vec![$($crate::common::Test {
            name: stringify!($name), body: |backend| Box::pin($name(backend)), postgres_only: false,
        }),*]
    };
}

/// Lists a module's tests that run on PostgreSQL only.
#[macro_export]
macro_rules! postgres_tests {
    ($($name:ident),* $(,)?) => {
        vec![$($crate::common::Test {
            name: stringify!($name), body: |backend| Box::pin($name(backend)), postgres_only: true,
        }),*]
    };
}

/// No test may hang the suite.
const TEST_TIMEOUT: Duration = Duration::from_secs(180);

pub fn run(test: Test, backend: Backend) -> Result<(), libtest_mimic::Failed> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    runtime
        .block_on(async { tokio::time::timeout(TEST_TIMEOUT, (test.body)(backend)).await })
        .map_err(|_| format!("{} did not finish within {TEST_TIMEOUT:?}", test.name).into())
}
