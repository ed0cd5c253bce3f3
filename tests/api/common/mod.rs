//! This binary's harness over the shared test kit (`agentdesk-testkit`, re-exported here so
//! tests name it `crate::common`): the lists of tests and how one runs on a back-end.

use std::{future::Future, pin::Pin, time::Duration};

pub use agentdesk_testkit::*;

pub type TestFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

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
