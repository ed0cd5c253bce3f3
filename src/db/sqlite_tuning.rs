//! Two SQLite settings sqlx has no option for, set through the SQLite it links.
//!
//! - Memory statistics off (`SQLITE_CONFIG_MEMSTATUS`, on by default): with them on, every
//!   allocation SQLite makes takes a global mutex to count itself, 4% of the agents page's
//!   instructions in a profile, for statistics nothing here reads.
//! - The query planner stability guarantee (`SQLITE_DBCONFIG_ENABLE_QPSG`) on each
//!   connection: without it, a statement whose plan depends on a bound value (every page's
//!   `LIMIT ?`) is prepared again on each run, defeating sqlx's statement cache; with it,
//!   the plan is the one made at the first prepare, as on PostgreSQL. The query-plan tests
//!   (`tests/api/query_plans.rs`) hold every page's plan to its index either way.

use std::{ffi::c_int, ptr, sync::Once};

use libsqlite3_sys::{
    SQLITE_CONFIG_MEMSTATUS, SQLITE_DBCONFIG_ENABLE_QPSG, SQLITE_OK, sqlite3_config, sqlite3_db_config,
};
use sea_orm::sqlx::{Error, SqliteConnection, pool::PoolConnectionMetadata};

/// Process-wide configuration, which SQLite accepts only before it initialises (its first
/// connection): afterwards it refuses with SQLITE_MISUSE and keeps its defaults, which are
/// correct, only slower, so that is logged and not an error.
pub fn before_first_connection() {
    static CONFIGURED: Once = Once::new();
    CONFIGURED.call_once(|| {
        // SAFETY: the documented variadic form (one int); SQLite checks itself that it is
        // not initialised yet, and nothing else here configures it.
        let code = unsafe { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0 as c_int) };
        if code != SQLITE_OK {
            tracing::debug!(code, "SQLite was initialised before its memory statistics could be turned off");
        }
    });
}

/// Per-connection configuration, for the pool's `after_connect`.
pub fn on_connect(
    connection: &mut SqliteConnection,
    _: PoolConnectionMetadata,
) -> futures_util::future::BoxFuture<'_, Result<(), Error>> {
    Box::pin(async move {
        let mut handle = connection.lock_handle().await?;
        // SAFETY: the handle is this connection's, locked for us; the documented form is the
        // value (int) and where to report the new setting (null: not wanted).
        let code = unsafe {
            sqlite3_db_config(
                handle.as_raw_handle().as_ptr(),
                SQLITE_DBCONFIG_ENABLE_QPSG,
                1 as c_int,
                ptr::null_mut::<c_int>(),
            )
        };
        if code != SQLITE_OK {
            return Err(Error::Configuration(
                format!("enabling SQLITE_DBCONFIG_ENABLE_QPSG failed ({code})").into(),
            ));
        }
        Ok(())
    })
}
