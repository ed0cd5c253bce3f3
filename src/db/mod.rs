//! The database: connecting (with the SQLite settings that make a pool safe), entities, and
//! the write-transaction helper every service uses.

pub mod entities;
pub mod page;
mod sqlite_tuning;
mod text_column;

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use migrations::MigratorTrait;
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait,
    sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous},
};

/// Counts every SQL statement the server sends, for `/metrics` and for tests that prove a
/// page costs the same number of statements whatever its size.
#[derive(Clone, Default)]
pub struct StatementCounter(Arc<AtomicU64>);

impl StatementCounter {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a pooled PostgreSQL connection may sit unused before it is pinged as it is checked
/// out (see `connect`).
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(1);

/// Rows a SQLite connection's thread may send ahead of the task reading them (see `connect`).
pub const SQLITE_ROWS_BUFFERED: usize = 4096;

pub async fn connect(url: &str, pool_size: u32) -> Result<(DatabaseConnection, StatementCounter), DbErr> {
    let sqlite = url.starts_with("sqlite:");
    if sqlite {
        sqlite_tuning::before_first_connection();
    }
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(pool_size.max(1))
        .min_connections(1)
        // While the database is down a request waits this long for a connection before it
        // is answered UNAVAILABLE: short, so clients hear of an outage at once and retry
        // (elsewhere, perhaps), long enough that a busy pool is not mistaken for one.
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .sqlx_logging(false)
        // Several pooled SQLite connections need WAL (readers do not block the writer), a busy
        // timeout (a second writer waits instead of failing) and foreign keys, which SQLite
        // leaves off unless asked. synchronous=NORMAL under WAL survives a process crash.
        //
        // The connection's thread sends a statement's rows through a channel of 50 by default
        // and blocks when it is full until the request's task takes some: every page of 51
        // rows or more cost a sleep and a wake-up of that thread while the runtime was busy.
        // Every read collects its rows whole, so a bound above the largest page only keeps
        // the thread from waiting (the channel grows as rows come, not to its bound).
        .map_sqlx_sqlite_opts(|opts| {
            opts.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
                .row_buffer_size(SQLITE_ROWS_BUFFERED)
        })
        // A transaction that failed is rolled back as it is dropped, but on SQLite the
        // rollback itself can fail (after a full disk, say), leaving the connection inside a
        // transaction that holds the write lock: every other writer would then wait out its
        // busy timeout and fail with "database is locked" for as long as the connection
        // lives. Such a connection is closed instead of being handed out again.
        .map_sqlx_sqlite_before_acquire(|connection, _| {
            Box::pin(async move {
                use sea_orm::sqlx::Connection;
                if connection.is_in_transaction() {
                    // The rollback may still be queued on the connection's thread: a ping
                    // runs after it, and then the connection says how it ended.
                    connection.ping().await?;
                }
                let clean = !connection.is_in_transaction();
                if !clean {
                    tracing::warn!("closing a database connection left inside a failed transaction");
                }
                Ok(clean)
            })
        })
        .map_sqlx_sqlite_pool_opts(|pool| pool.after_connect(sqlite_tuning::on_connect));
    // sqlx pings a pooled connection as it is released (closing one that broke) and, by
    // default, again as it is checked out: a round trip before every statement, to the
    // server or to the connection's thread. An embedded SQLite connection cannot be dropped,
    // so it is not pinged on checkout at all; a PostgreSQL connection only when it sat idle
    // long enough for the server to have gone away meanwhile (a restart, an outage).
    if sqlite {
        options.test_before_acquire(false);
    } else {
        options.test_before_acquire_if_idle_for(PING_IF_IDLE_FOR);
    }
    let mut db = Database::connect(options).await?;
    let counter = StatementCounter::default();
    let count = counter.0.clone();
    db.set_metric_callback(move |_| {
        count.fetch_add(1, Ordering::Relaxed);
    });
    Ok((db, counter))
}

pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    migrations::Migrator::up(db, None).await
}

/// True when every known migration has been applied: part of readiness.
pub async fn is_migrated(db: &DatabaseConnection) -> Result<bool, DbErr> {
    Ok(migrations::Migrator::get_pending_migrations(db).await?.is_empty())
}

/// Free space under which a SQLite database counts as full: a write needs room for its WAL
/// frames, and a checkpoint for the pages it copies.
const SQLITE_MIN_FREE_BYTES: u64 = 1024 * 1024;

/// Whether this instance can serve: what `/readyz` reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    MigrationsPending,
    /// The file system of the SQLite database has (almost) no space left: writes fail.
    StorageFull,
}

/// Asks the database (one statement, or two on SQLite) whether it can take this instance's
/// work; Err when it does not answer.
pub async fn readiness(db: &DatabaseConnection) -> Result<Readiness, DbErr> {
    if !is_migrated(db).await? {
        return Ok(Readiness::MigrationsPending);
    }
    if db.get_database_backend() == DbBackend::Sqlite
        && sqlite_free_bytes(db).await?.is_some_and(|free| free < SQLITE_MIN_FREE_BYTES)
    {
        return Ok(Readiness::StorageFull);
    }
    Ok(Readiness::Ready)
}

/// Space left on the file system that holds the SQLite database; None for an in-memory one.
async fn sqlite_free_bytes(db: &DatabaseConnection) -> Result<Option<u64>, DbErr> {
    let statement = Statement::from_string(
        DbBackend::Sqlite,
        "SELECT file FROM pragma_database_list WHERE name = 'main'",
    );
    let file: String = match db.query_one_raw(statement).await? {
        Some(row) => row.try_get("", "file")?,
        None => return Ok(None),
    };
    let Some(directory) = Path::new(&file).parent().filter(|_| !file.is_empty()) else {
        return Ok(None);
    };
    let stats = rustix::fs::statvfs(directory).map_err(|error| DbErr::Custom(error.to_string()))?;
    Ok(Some(stats.f_bavail.saturating_mul(stats.f_frsize)))
}

/// Begins a transaction that will write. On SQLite it takes the write lock up front
/// (`BEGIN IMMEDIATE`): a deferred transaction that reads and then writes can fail with
/// "database is locked" when another writer got there in between, where an immediate one
/// simply waits its turn.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    let options = TransactionOptions {
        sqlite_transaction_mode: (db.get_database_backend() == DbBackend::Sqlite)
            .then_some(SqliteTransactionMode::Immediate),
        ..Default::default()
    };
    db.begin_with_options(options).await
}

/// A condition of the database, not of the request, that makes it refuse work for now: the
/// client should retry later, and nothing of the refused request was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outage {
    /// No space left for the database (a full disk, or PostgreSQL's `disk_full`): writes fail
    /// until an operator frees some; reads go on.
    StorageFull,
    /// The database cannot be reached (down, restarting, the pool waited in vain) or is too
    /// busy to take the statement.
    Unreachable,
}

impl Outage {
    /// The error's outage, when it is one; None for anything a retry would not cure.
    pub fn of(error: &DbErr) -> Option<Self> {
        use sea_orm::{RuntimeErr, sqlx::Error};
        let runtime = match error {
            DbErr::ConnectionAcquire(_) => return Some(Self::Unreachable),
            DbErr::Conn(runtime) | DbErr::Exec(runtime) | DbErr::Query(runtime) => runtime,
            _ => return None,
        };
        let RuntimeErr::SqlxError(error) = runtime else { return None };
        match &**error {
            Error::Io(_) | Error::Tls(_) | Error::PoolTimedOut | Error::PoolClosed | Error::WorkerCrashed => {
                Some(Self::Unreachable)
            }
            Error::Database(error) => {
                let code = error.code()?;
                if error.try_downcast_ref::<sea_orm::sqlx::sqlite::SqliteError>().is_some() {
                    Self::of_sqlite_code(code.parse().ok()?)
                } else {
                    Self::of_sqlstate(&code)
                }
            }
            _ => None,
        }
    }

    /// SQLite result codes (https://sqlite.org/rescode.html); an extended code keeps its
    /// primary code in the low byte.
    fn of_sqlite_code(code: i32) -> Option<Self> {
        match code & 0xff {
            13 => Some(Self::StorageFull),
            // BUSY, LOCKED (past our busy timeout), IOERR, CANTOPEN, READONLY (the file
            // system went read-only).
            5 | 6 | 8 | 10 | 14 => Some(Self::Unreachable),
            _ => None,
        }
    }

    /// PostgreSQL SQLSTATEs: class 08 (connection), 53 (insufficient resources, 53100 being
    /// disk_full), 57P01-57P03 (shut down, restarting), 25006 (a read-only standby).
    fn of_sqlstate(code: &str) -> Option<Self> {
        match code {
            "53100" => Some(Self::StorageFull),
            "57P01" | "57P02" | "57P03" | "25006" => Some(Self::Unreachable),
            _ if code.starts_with("08") || code.starts_with("53") => Some(Self::Unreachable),
            _ => None,
        }
    }
}
