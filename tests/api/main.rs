//! The integration suite: one binary (linking once is what keeps `cargo test` quick), every
//! test run against a real server on a free port, once on SQLite and once on PostgreSQL.
//!
//! PostgreSQL tests run when a server answers at `AGENTDESK_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). When none does they are reported as ignored,
//! with a banner, unless `AGENTDESK_TEST_REQUIRE_POSTGRES=1` (as in `.ci/run`) makes that a
//! failure.

mod common;

mod abuse;
mod audit;
mod auth;
mod directory;
mod directory_live;
mod durability;
mod explain;
mod faults;
mod hostile;
mod operations;
mod operator;
mod permissions;
mod presence;
mod query_plans;
mod queues;
mod routing;
mod session_cache;
mod sessions;
mod tenancy;
mod tenancy_events;
mod transport;

use common::{Backend, postgres, private_postgres, small_disk};
use libtest_mimic::{Arguments, Trial};

fn main() {
    let args = Arguments::from_args();
    common::process::use_binary(env!("CARGO_BIN_EXE_agentdesk"));
    let postgres = postgres::probe();
    if let Err(reason) = &postgres {
        if postgres::required() {
            eprintln!("PostgreSQL is required (AGENTDESK_TEST_REQUIRE_POSTGRES=1) but {reason}");
            std::process::exit(2);
        }
        postgres::warn_skipped(reason);
    }
    let private_postgres = private_postgres::probe();
    if let Err(reason) = &private_postgres {
        if private_postgres::required() {
            eprintln!(
                "A private PostgreSQL is required (AGENTDESK_TEST_REQUIRE_PRIVATE_POSTGRES=1) but {reason}"
            );
            std::process::exit(2);
        }
        private_postgres::warn_skipped(reason);
    }
    let small_disk = small_disk::probe();
    if let Err(reason) = &small_disk {
        if small_disk::required() {
            eprintln!("A small file system is required (AGENTDESK_TEST_REQUIRE_SMALL_DISK=1) but {reason}");
            std::process::exit(2);
        }
        small_disk::warn_skipped(reason);
    }

    let tests = [
        abuse::tests(),
        audit::tests(),
        auth::tests(),
        directory::tests(),
        directory_live::tests(),
        durability::tests(),
        hostile::tests(),
        explain::tests(),
        operations::tests(),
        operator::tests(),
        permissions::tests(),
        presence::tests(),
        query_plans::tests(),
        queues::tests(),
        routing::tests(),
        session_cache::tests(),
        sessions::tests(),
        tenancy::tests(),
        tenancy_events::tests(),
        transport::tests(),
    ]
    .concat();
    let mut trials = Vec::with_capacity(tests.len() * 2);
    for test in tests {
        if !test.postgres_only {
            trials.push(Trial::test(format!("sqlite::{}", test.name), move || {
                common::run(test, Backend::Sqlite)
            }));
        }
        trials.push(
            Trial::test(format!("postgres::{}", test.name), move || common::run(test, Backend::Postgres))
                .with_ignored_flag(postgres.is_err()),
        );
    }
    for test in faults::sqlite_tests() {
        trials.push(
            Trial::test(format!("sqlite::{}", test.name), move || common::run(test, Backend::Sqlite))
                .with_ignored_flag(small_disk.is_err()),
        );
    }
    for test in faults::private_postgres_tests() {
        trials.push(
            Trial::test(format!("postgres::{}", test.name), move || common::run(test, Backend::Postgres))
                .with_ignored_flag(private_postgres.is_err()),
        );
    }
    let conclusion = libtest_mimic::run(&args, trials);
    if let Err(reason) = &postgres {
        postgres::warn_skipped(reason);
    }
    if let Err(reason) = &small_disk {
        small_disk::warn_skipped(reason);
    }
    if let Err(reason) = &private_postgres {
        private_postgres::warn_skipped(reason);
    }
    conclusion.exit();
}
