//! A real agentdesk server on a free port of 127.0.0.1, on a fresh database.

use std::net::SocketAddr;

use agentdesk::{
    app::{self, RunningServer},
    config::Config,
    db::entities::organization,
    directory::service::{NewOrganization, create_organization},
    graphql::id::{self, NodeKind},
};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, prelude::Expr};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::net::TcpListener;

use crate::{Backend, Gql, Session, client, client::Endpoint, postgres::TestDatabase, seed};

pub const ADMIN_PASSWORD: &str = "admin-password";
/// Password of every agent made by `create_agent`.
pub const AGENT_PASSWORD: &str = "password1";

/// Where the test's data lives; dropped (and so deleted) with the server.
#[expect(dead_code, reason = "held only for its Drop")]
pub(crate) enum Storage {
    Sqlite(TempDir),
    Postgres(TestDatabase),
    /// A second instance on the first one's database, which owns it.
    Shared,
    /// A database file in a directory the test owns (and keeps until the server is gone).
    Elsewhere,
}

impl Storage {
    /// A new, empty database of `backend`, and its URL.
    pub(crate) async fn fresh(backend: Backend) -> (Self, String) {
        match backend {
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
        }
    }
}

impl Endpoint for TestServer {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn http(&self) -> &reqwest::Client {
        &self.http
    }
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
        let (storage, database_url) = Storage::fresh(backend).await;
        let mut config = Self::config_for(database_url);
        configure(&mut config);
        Self::serve(config, storage).await
    }

    /// Starts with the defaults on a SQLite database in `directory`, which the caller keeps
    /// until this server is stopped.
    pub async fn start_in_directory(directory: &std::path::Path) -> Self {
        let url = format!("sqlite://{}?mode=rwc", directory.join("agentdesk.db").display());
        Self::start_on(url).await
    }

    /// Starts with the defaults on the database at `database_url`, which the caller keeps
    /// until this server is stopped.
    pub async fn start_on(database_url: String) -> Self {
        Self::start_on_with(database_url, |_| {}).await
    }

    /// As `start_on`, with the defaults changed by `configure`.
    pub async fn start_on_with(database_url: String, configure: impl FnOnce(&mut Config)) -> Self {
        let mut config = Self::config_for(database_url);
        configure(&mut config);
        Self::serve(config, Storage::Elsewhere).await
    }

    async fn serve(config: Config, storage: Storage) -> Self {
        let (state, _) = app::prepare(config).await.expect("server prepares");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a free port");
        let server = app::start(state, listener).await.expect("server starts");
        Self { addr: server.addr, http: reqwest::Client::new(), server: Some(server), _storage: storage }
    }

    /// Another server instance on this one's database (in this process, with its own pool,
    /// event listener and sweepers), as a second process would be. Stop it before this one.
    pub async fn another_instance(&self) -> TestServer {
        self.another_instance_with(|_| {}).await
    }

    /// Another instance, as `another_instance`, with this one's configuration changed by
    /// `configure`.
    pub async fn another_instance_with(&self, configure: impl FnOnce(&mut Config)) -> TestServer {
        let mut config = (*self.server.as_ref().expect("running").state.config).clone();
        configure(&mut config);
        Self::serve(config, Storage::Shared).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Where the server's database is, for commands run beside it.
    pub fn database_url(&self) -> String {
        self.server.as_ref().expect("running").state.config.database_url.clone()
    }

    /// The server's own database connection, for checking what was written.
    pub fn db(&self) -> &DatabaseConnection {
        &self.server.as_ref().expect("running").state.db
    }

    /// SQL statements the server has sent so far.
    pub fn statements(&self) -> u64 {
        self.server.as_ref().expect("running").state.statements.get()
    }

    /// Switches an organization's human-agent service, which no API call does (it follows
    /// the customer's plan).
    pub async fn set_human_agent_service(&self, organization_slug: &str, enabled: bool) {
        organization::Entity::update_many()
            .col_expr(organization::Column::HumanAgentServiceEnabled, Expr::value(enabled))
            .filter(organization::Column::Slug.eq(organization_slug))
            .exec(self.db())
            .await
            .expect("switch the human-agent service");
    }

    /// The defaults on this database, with the bootstrap ADMIN's password known.
    fn config_for(database_url: String) -> Config {
        let mut config = Config::defaults();
        config.database_url = database_url;
        config.bootstrap_password = Some(ADMIN_PASSWORD.into());
        config
    }

    /// Inserts `count` enabled AGENTs named `<prefix>-<n>` (password `password1`) straight
    /// into the database; see `seed_agents`.
    pub async fn seed_agents(&self, organization_slug: &str, prefix: &str, count: usize) -> Vec<String> {
        seed_agents(self.db(), organization_slug, prefix, count).await
    }

    /// Stops this server cleanly and starts a new one on the same database, as a restart of
    /// the only instance would.
    pub async fn restart(mut self) -> TestServer {
        let server = self.server.take().expect("running");
        let config = (*server.state.config).clone();
        server.stop().await.expect("server stops cleanly");
        Self::serve(config, self._storage).await
    }

    pub async fn stop(mut self) {
        self.stop_keeping_database().await;
    }

    /// Stops the server cleanly, as `stop`, but keeps its database until this is dropped, for
    /// the other instances on it: the first step of a rolling restart.
    pub async fn stop_keeping_database(&mut self) {
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

    /// A queue made by `admin`; its global ID.
    pub async fn create_queue(&self, admin: &Session, name: &str) -> String {
        let data = self
            .gql(
                Some(admin),
                "mutation($name: String!) { createQueue(input: { name: $name }) { queue { id } userErrors { code } } }",
                json!({ "name": name }),
            )
            .await
            .data();
        data["createQueue"]["queue"]["id"].as_str().unwrap_or_else(|| panic!("{data}")).to_owned()
    }

    /// An agent made by `admin` through the API: display name and username `username`,
    /// password `AGENT_PASSWORD`, and whatever else `fields` sets (`queueIds`, `role`, …).
    /// Its global ID.
    pub async fn create_agent(&self, admin: &Session, username: &str, fields: Value) -> String {
        let mut input = json!({ "displayName": username, "username": username, "password": AGENT_PASSWORD });
        input.as_object_mut().unwrap().extend(fields.as_object().cloned().unwrap_or_default());
        let data = self
            .gql(
                Some(admin),
                "mutation($input: CreateAgentInput!) { createAgent(input: $input) { agent { id } userErrors { field code } } }",
                json!({ "input": input }),
            )
            .await
            .data();
        data["createAgent"]["agent"]["id"].as_str().unwrap_or_else(|| panic!("{data}")).to_owned()
    }

    /// `create_agent`, then signed in.
    pub async fn agent_session(&self, admin: &Session, username: &str, fields: Value) -> Session {
        self.create_agent(admin, username, fields).await;
        self.login("demo", username, AGENT_PASSWORD).await
    }

    /// The session's agent reports itself ONLINE.
    pub async fn go_online(&self, session: &Session) {
        let online = "mutation { reportPresence(status: ONLINE) { presence } }";
        assert_eq!(
            self.gql(Some(session), online, json!({})).await.data()["reportPresence"]["presence"],
            "ONLINE"
        );
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

/// Inserts `count` enabled AGENTs named `<prefix>-<n>` (password `password1`) straight
/// into the database: setting up large directories through the API would spend most of
/// the test hashing passwords. Returns their global IDs in order.
pub async fn seed_agents(
    db: &DatabaseConnection,
    organization_slug: &str,
    prefix: &str,
    count: usize,
) -> Vec<String> {
    let organization = organization::Entity::find()
        .filter(organization::Column::Slug.eq(organization_slug))
        .one(db)
        .await
        .unwrap()
        .expect("organization exists");
    let agents = seed::agents(db, organization.id, prefix, count).await;
    agents.into_iter().map(|agent| id::encode(NodeKind::Agent, agent.id).to_string()).collect()
}
