//! Three SQLite settings sqlx has no option for, set through the SQLite it links.
//!
//! - Memory statistics off (`SQLITE_CONFIG_MEMSTATUS`, on by default): with them on, every
//!   allocation SQLite makes takes a global mutex to count itself, 4% of the agents page's
//!   instructions in a profile, for statistics nothing here reads.
//! - SQLite allocates through mimalloc, as the rest of the process does (`ALLOCATOR` in
//!   `lib.rs`), not glibc's malloc (`SQLITE_CONFIG_MALLOC`): a page of agents makes about a
//!   thousand of SQLite's allocations (a copy of every column of every row read, for sqlx),
//!   and glibc's malloc and free were 14% of the page's instructions.
//! - The query planner stability guarantee (`SQLITE_DBCONFIG_ENABLE_QPSG`) on each
//!   connection: without it, a statement whose plan depends on a bound value (every page's
//!   `LIMIT ?`) is prepared again on each run, defeating sqlx's statement cache; with it,
//!   the plan is the one made at the first prepare, as on PostgreSQL. The query-plan tests
//!   (`tests/api/query_plans.rs`) hold every page's plan to its index either way.

use std::{
    ffi::{c_int, c_void},
    ptr,
    sync::Once,
};

use libsqlite3_sys::{
    SQLITE_CONFIG_MALLOC, SQLITE_CONFIG_MEMSTATUS, SQLITE_DBCONFIG_ENABLE_QPSG, SQLITE_OK, sqlite3_config,
    sqlite3_db_config, sqlite3_mem_methods,
};
use sea_orm::sqlx::{Error, SqliteConnection, pool::PoolConnectionMetadata};

// mimalloc's C API, linked into every program built on this crate by the `mimalloc` crate (the
// global allocator), whose Rust bindings leave the size queries out unless a feature that pulls
// in another crate is on.
unsafe extern "C" {
    fn mi_malloc(size: usize) -> *mut c_void;
    fn mi_realloc(pointer: *mut c_void, size: usize) -> *mut c_void;
    fn mi_free(pointer: *mut c_void);
    fn mi_usable_size(pointer: *const c_void) -> usize;
    fn mi_good_size(size: usize) -> usize;
}

// SQLite's allocator interface over mimalloc. SQLite asks 8-byte alignment, which mimalloc
// always gives, and sizes as C ints: never negative, and at most 2^31 - 1 (SQLite's own limit
// on one allocation is lower).
unsafe extern "C" fn sqlite_malloc(size: c_int) -> *mut c_void {
    // SAFETY: any size is valid; null on failure, which SQLite handles as out of memory.
    unsafe { mi_malloc(size.max(0) as usize) }
}

unsafe extern "C" fn sqlite_free(pointer: *mut c_void) {
    // SAFETY: SQLite frees only what `sqlite_malloc` or `sqlite_realloc` returned (or null).
    unsafe { mi_free(pointer) }
}

unsafe extern "C" fn sqlite_realloc(pointer: *mut c_void, size: c_int) -> *mut c_void {
    // SAFETY: as `sqlite_free`, for the pointer.
    unsafe { mi_realloc(pointer, size.max(0) as usize) }
}

unsafe extern "C" fn sqlite_size(pointer: *mut c_void) -> c_int {
    // SAFETY: as `sqlite_free`; the usable size of a block SQLite asked in a c_int fits one.
    unsafe { c_int::try_from(mi_usable_size(pointer)).unwrap_or(c_int::MAX) }
}

unsafe extern "C" fn sqlite_roundup(size: c_int) -> c_int {
    // SAFETY: a pure function of its argument.
    let good = unsafe { mi_good_size(size.max(0) as usize) };
    c_int::try_from(good).unwrap_or(size)
}

unsafe extern "C" fn sqlite_init(_: *mut c_void) -> c_int {
    SQLITE_OK
}

unsafe extern "C" fn sqlite_shutdown(_: *mut c_void) {}

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
        let methods = sqlite3_mem_methods {
            xMalloc: Some(sqlite_malloc),
            xFree: Some(sqlite_free),
            xRealloc: Some(sqlite_realloc),
            xSize: Some(sqlite_size),
            xRoundup: Some(sqlite_roundup),
            xInit: Some(sqlite_init),
            xShutdown: Some(sqlite_shutdown),
            pAppData: ptr::null_mut(),
        };
        // SAFETY: the documented form (a pointer to the methods, which SQLite copies); the
        // methods are valid for the life of the process.
        let code = unsafe { sqlite3_config(SQLITE_CONFIG_MALLOC, &raw const methods) };
        if code != SQLITE_OK {
            tracing::debug!(code, "SQLite was initialised before it could be given mimalloc");
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
