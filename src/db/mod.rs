//! The database: connecting (with the SQLite settings that make a pool safe), entities, and
//! the write-transaction helper every service uses.

pub mod entities;
pub mod page;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use migrations::MigratorTrait;
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
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

pub async fn connect(url: &str, pool_size: u32) -> Result<(DatabaseConnection, StatementCounter), DbErr> {
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(pool_size.max(1))
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false)
        // Several pooled SQLite connections need WAL (readers do not block the writer), a busy
        // timeout (a second writer waits instead of failing) and foreign keys, which SQLite
        // leaves off unless asked. synchronous=NORMAL under WAL survives a process crash.
        .map_sqlx_sqlite_opts(|opts| {
            opts.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        });
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
