//! A fresh PostgreSQL database per test, dropped afterwards, so tests run in parallel and
//! leave nothing behind (leftovers of an interrupted run are swept at the next start).

use std::sync::atomic::{AtomicU32, Ordering};

use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};

const PREFIX: &str = "agentdesk_test_";

pub fn admin_url() -> String {
    std::env::var("AGENTDESK_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub fn required() -> bool {
    std::env::var("AGENTDESK_TEST_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

pub fn warn_skipped(reason: &str) {
    eprintln!();
    eprintln!("##################################################################");
    eprintln!("##  PostgreSQL tests SKIPPED: {reason}");
    eprintln!("##  Start a server or set AGENTDESK_TEST_POSTGRES_URL; .ci/run does.");
    eprintln!("##################################################################");
    eprintln!();
}

/// Ok when a server answers; also sweeps databases left by earlier, interrupted runs.
pub fn probe() -> Result<(), String> {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let admin = connect_admin(&admin_url())
            .await
            .map_err(|e| format!("no server answers at {} ({e})", admin_url()))?;
        sweep_leftovers(&admin).await;
        Ok(())
    })
}

async fn connect_admin(admin_url: &str) -> Result<DatabaseConnection, sea_orm::DbErr> {
    let mut options = sea_orm::ConnectOptions::new(admin_url);
    options.max_connections(1).sqlx_logging(false).acquire_timeout(std::time::Duration::from_secs(3));
    Database::connect(options).await
}

async fn sweep_leftovers(admin: &DatabaseConnection) {
    let pid = std::process::id();
    let Ok(rows) = admin
        .query_all_raw(Statement::from_string(
            admin.get_database_backend(),
            format!("SELECT datname FROM pg_database WHERE datname LIKE '{PREFIX}%'"),
        ))
        .await
    else {
        return;
    };
    for row in rows {
        let Ok(name) = row.try_get::<String>("", "datname") else {
            continue;
        };
        // Names carry the pid of the run that made them; a live run's databases are kept.
        let owner_pid = name.trim_start_matches(PREFIX).split('_').next().and_then(|p| p.parse::<u32>().ok());
        let owner_alive =
            owner_pid.is_some_and(|p| p != pid && std::path::Path::new(&format!("/proc/{p}")).exists());
        if !owner_alive {
            let _ =
                admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await;
        }
    }
}

pub struct TestDatabase {
    pub url: String,
    name: String,
    admin_url: String,
}

impl TestDatabase {
    /// On the server of `AGENTDESK_TEST_POSTGRES_URL`.
    pub async fn create() -> Self {
        Self::create_on(&admin_url()).await
    }

    /// On the server of `admin_url`, whose user may create databases.
    pub async fn create_on(admin_url: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!("{PREFIX}{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let admin = connect_admin(admin_url).await.expect("PostgreSQL answers");
        admin.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")).await.expect("create test database");
        let (server, _) = admin_url.rsplit_once('/').expect("URL has a database part");
        Self { url: format!("{server}/{name}"), name, admin_url: admin_url.to_owned() }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (name, admin_url) = (self.name.clone(), self.admin_url.clone());
        // Drop runs outside async; a short-lived thread with its own runtime does the I/O.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async {
                let admin = connect_admin(&admin_url).await.ok()?;
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await
                    .ok()
            })
        })
        .join();
    }
}
