//! A real agentdesk server on a free port of 127.0.0.1, on a fresh database.

use std::net::SocketAddr;

use agentdesk::{
    app::{self, RunningServer},
    config::Config,
    directory::service::{NewOrganization, create_organization},
};
use sea_orm::DatabaseConnection;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::net::TcpListener;

use super::{Backend, Gql, Session, client, postgres::TestDatabase};

pub const ADMIN_PASSWORD: &str = "admin-password";

/// Where the test's data lives; dropped (and so deleted) with the server.
#[expect(dead_code, reason = "held only for its Drop")]
enum Storage {
    Sqlite(TempDir),
    Postgres(TestDatabase),
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    server: Option<RunningServer>,
    _storage: Storage,
}

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    /// Starts with the defaults, changed by `configure`.
    pub async fn start_with(backend: Backend, configure: impl FnOnce(&mut Config)) -> Self {
        let (storage, database_url) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temporary directory");
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("agentdesk.db").display());
                (Storage::Sqlite(dir), url)
            }
            Backend::Postgres => {
                let database = TestDatabase::create().await;
                let url = database.url.clone();
                (Storage::Postgres(database), url)
            }
        };
        let mut config = Config::defaults();
        config.database_url = database_url;
        config.bootstrap_password = Some(ADMIN_PASSWORD.into());
        configure(&mut config);
        let (state, _) = app::prepare(config).await.expect("server prepares");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a free port");
        let server = app::start(state, listener).await.expect("server starts");
        Self { addr: server.addr, http: reqwest::Client::new(), server: Some(server), _storage: storage }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The server's own database connection, for checking what was written.
    pub fn db(&self) -> &DatabaseConnection {
        &self.server.as_ref().expect("running").state.db
    }

    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await.expect("server stops cleanly");
        }
    }

    /// POSTs a GraphQL request, signed in as `session` when given.
    pub async fn gql(&self, session: Option<&Session>, query: &str, variables: Value) -> Gql {
        client::post(&self.http, self.addr, session, query, variables).await
    }

    /// Signs in and returns the session, or panics with the userErrors.
    pub async fn login(&self, organization: &str, username: &str, password: &str) -> Session {
        Session::from_login(&self.try_login(organization, username, password).await, username)
    }

    pub async fn try_login(&self, organization: &str, username: &str, password: &str) -> Gql {
        self.gql(
            None,
            client::LOGIN,
            json!({ "input": { "organization": organization, "username": username, "password": password } }),
        )
        .await
    }

    /// The bootstrap ADMIN of the `demo` organization.
    pub async fn admin(&self) -> Session {
        self.login("demo", "admin", ADMIN_PASSWORD).await
    }

    /// Another organization with its own ADMIN (`password` as password), for tenancy probes.
    pub async fn create_organization(&self, slug: &str, seats: u32, admin_username: &str, password: &str) {
        let hasher = self.server.as_ref().expect("running").state.hasher.clone();
        create_organization(
            self.db(),
            &hasher,
            NewOrganization {
                name: slug.into(),
                slug: slug.into(),
                seat_limit: seats,
                admin_username: admin_username.into(),
                admin_password: password.into(),
            },
        )
        .await
        .expect("organization created");
    }
}
