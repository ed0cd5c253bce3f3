//! The data every benchmark starts from, shared by the `bench` program and the Criterion
//! benches: agentdesk prepared on a fresh database with 1,000 enabled agents in 20 queues,
//! and the ADMIN's GraphQL requests executed in this process (no HTTP).

use std::{num::NonZeroU32, time::Duration};

use agentdesk::{
    api::AppSchema,
    app,
    auth::{
        model::SessionLifetime,
        service::{self as auth, SessionUse},
    },
    config::Config,
    db::entities::{agent, organization},
    graphql::{
        RequestContext,
        id::{self, NodeKind},
    },
    state::AppState,
    viewer::Viewer,
};
use agentdesk_testkit::seed;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, prelude::Expr};
use serde_json::{Value, json};

pub const ADMIN_PASSWORD: &str = "bench-admin-password";
pub const AGENTS: usize = 1000;
pub const QUEUES: usize = 20;
/// The page measured: the directory's first page with its total, every stored scalar shown,
/// and each agent's queues (the floors in the `bench` program give the same answer).
pub const PAGE_QUERY: &str = "query { agents(first: 50) { totalCount nodes { id displayName username email role enabled presence queues { id name } } } }";
pub const LOGIN: &str =
    "mutation($input: LoginInput!) { login(input: $input) { token userErrors { code message } } }";

pub struct Seeded {
    pub state: AppState,
    pub schema: AppSchema,
    pub admin: Viewer,
    pub admin_token: String,
    /// Seeded agents, in display-name order.
    pub agents: Vec<agent::Model>,
}

/// A server's configuration for benchmarking on `database_url`.
pub fn config(database_url: String) -> Config {
    let mut config = Config::defaults();
    config.database_url = database_url;
    config.bootstrap_password = Some(ADMIN_PASSWORD.into());
    // The routing section brings agents ONLINE without a workspace socket: keep them ONLINE
    // for the whole run.
    config.presence_ttl = Duration::from_secs(3600);
    config.presence_grace = Duration::from_secs(3600);
    config.max_query_complexity = 100_000;
    // Every load client signs in from 127.0.0.1, far beyond what one address may do against
    // a real deployment; the sign-in limits are not what is measured here.
    config.login_attempts_per_account = NonZeroU32::MAX;
    config.login_attempts_per_address = NonZeroU32::MAX;
    config
}

/// Prepares agentdesk on an empty database and seeds it.
pub async fn seeded(database_url: String) -> Seeded {
    let (state, _) = app::prepare(config(database_url)).await.expect("agentdesk prepares");
    let schema = app::schema(&state);
    let data = execute(&schema, None, LOGIN, login_variables("admin", ADMIN_PASSWORD)).await;
    let admin_token = data["login"]["token"].as_str().expect("the admin signs in").to_owned();
    let lifetime = SessionLifetime::from_config(&state.config);
    let signed_in = auth::authenticate(&state.db, lifetime, &admin_token, SessionUse::Request).await;
    let admin = signed_in.expect("db").expect("admin viewer").viewer;
    organization::Entity::update_many()
        .col_expr(organization::Column::SeatLimit, Expr::value(AGENTS as i32 + 100))
        .filter(organization::Column::Id.eq(admin.organization_id))
        .exec(&state.db)
        .await
        .expect("raise the seat limit");
    let mut agents = seed::agents(&state.db, admin.organization_id, "agent", AGENTS).await;
    agents.sort_by(|a, b| a.display_name.cmp(&b.display_name));
    let seeded = Seeded { state, schema, admin, admin_token, agents };
    seed_queues(&seeded).await;
    seeded
}

/// For the Criterion benches: seeded on a SQLite file in a temporary directory, which lives
/// as long as the returned guard.
pub fn seeded_on_temporary_sqlite(runtime: &tokio::runtime::Runtime) -> (tempfile::TempDir, Seeded) {
    let directory = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}?mode=rwc", directory.path().join("agentdesk.db").display());
    let seeded = runtime.block_on(seeded(url));
    (directory, seeded)
}

pub fn login_variables(username: &str, password: &str) -> Value {
    login_variables_in("demo", username, password)
}

pub fn login_variables_in(organization: &str, username: &str, password: &str) -> Value {
    json!({ "input": { "organization": organization, "username": username, "password": password } })
}

impl Seeded {
    /// Runs a GraphQL request as the ADMIN, as the HTTP handler would after reading the token.
    pub async fn execute(&self, query: &str, variables: Value) -> Value {
        execute(&self.schema, Some(self.admin.clone()), query, variables).await
    }
}

/// Executes one request against the schema; panics on GraphQL errors (a benchmark that
/// measures failures measures nothing).
async fn execute(schema: &AppSchema, viewer: Option<Viewer>, query: &str, variables: Value) -> Value {
    let request = async_graphql::Request::new(query)
        .variables(async_graphql::Variables::from_json(variables))
        .data(RequestContext::new(viewer));
    let response = schema.execute(request).await;
    assert!(response.errors.is_empty(), "GraphQL errors: {:?}", response.errors);
    response.data.into_json().expect("data is JSON")
}

/// 20 queues through the API; agent n is in queues n % 20 and (n + 1) % 20.
async fn seed_queues(seeded: &Seeded) {
    for q in 0..QUEUES {
        let data = seeded
            .execute(
                "mutation($input: CreateQueueInput!) { createQueue(input: $input) { queue { id } userErrors { code } } }",
                json!({ "input": { "name": format!("Queue {q:02}") } }),
            )
            .await;
        let queue_id = data["createQueue"]["queue"]["id"].as_str().expect("queue id").to_owned();
        let members: Vec<String> = seeded
            .agents
            .iter()
            .enumerate()
            .filter(|(n, _)| n % QUEUES == q || (n + 1) % QUEUES == q)
            .map(|(_, a)| id::encode(NodeKind::Agent, a.id).to_string())
            .collect();
        let data = seeded
            .execute(
                "mutation($q: ID!, $ids: [ID!]!) { addAgentsToQueue(queueId: $q, agentIds: $ids) { userErrors { code } } }",
                json!({ "q": queue_id, "ids": members }),
            )
            .await;
        assert_eq!(data["addAgentsToQueue"]["userErrors"], json!([]), "queue membership");
    }
}
