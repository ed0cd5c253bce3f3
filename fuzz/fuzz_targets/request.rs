//! The request path: a GraphQL document and its variables, run by the real schema (limits,
//! extensions, resolvers, services, SQL) as a signed-in ADMIN, on a SQLite database that was
//! seeded once per process through the schema's own mutations.
//!
//! Input, either:
//! - `document` [`\0` `variables` [`\0` `operationName`]], variables a JSON object: the parts
//!   of a POST body without the JSON around them, so the fuzzer mutates GraphQL itself; a
//!   subscription runs as over the WebSocket, until its first event or a short wait;
//! - `\0` then a whole POST body (`{"query", "variables", "operationName"}` or a batch of
//!   them), read and checked as `POST /graphql` does. An empty document is no request, so a
//!   leading NUL is free to mean this.
//!
//! The ADMIN's token is resolved to its viewer once, at start-up: inputs run one after
//! another on the same database, and one that signs out (`logout`) must not leave every later
//! input signed out. The ADMIN cannot disable, demote or delete itself, so the viewer stays
//! an ADMIN of the same organization whatever the inputs do.
//!
//! An input fails when anything panics, when the response does not serialize to JSON, or when
//! the response holds an `INTERNAL` error: nothing a client sends may break the server.

#![no_main]

use std::{
    net::{IpAddr, Ipv4Addr},
    sync::LazyLock,
    time::Duration,
};

use agentdesk::{
    api::AppSchema,
    app,
    auth::{
        model::SessionLifetime,
        service::{self as auth, SessionUse},
    },
    config::Config,
    graphql::{
        RequestContext,
        id::{self, NodeKind},
    },
    state::AppState,
    viewer::Viewer,
};
use async_graphql::{
    BatchRequest, BatchResponse, Request, Variables,
    futures_util::StreamExt,
    parser::{parse_query, types::OperationType},
};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::runtime::Runtime;

const ADMIN_PASSWORD: &str = "fuzz-admin-password";
const AGENT_PASSWORD: &str = "fuzz-agent-password";

/// How long a subscription may take to send its first response. Argument errors (an unknown
/// queue, too many ids) come at once; otherwise it waits for an event that does not come.
const SUBSCRIPTION_WAIT: Duration = Duration::from_millis(20);

/// Every request says it comes from here, so the sign-in limit per address applies to the
/// fuzzer as to any client, and keeps `login` inputs from spending all their time in argon2.
const CLIENT_ADDRESS: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

static HARNESS: LazyLock<Harness> = LazyLock::new(Harness::start);

fuzz_target!(|data: &[u8]| {
    if let Some(request) = Input::read(data, HARNESS.state.config.max_batch_size) {
        HARNESS.run(request);
    }
});

enum Input {
    /// A document with its variables, as one operation.
    Operation(Request),
    /// A POST body.
    Body(BatchRequest),
}

impl Input {
    /// None for what the HTTP layer would refuse before GraphQL sees it.
    fn read(data: &[u8], max_batch_size: usize) -> Option<Self> {
        if let Some(body) = data.strip_prefix(b"\0") {
            let batch: BatchRequest = serde_json::from_slice(body).ok()?;
            let too_many = matches!(&batch, BatchRequest::Batch(requests) if requests.len() > max_batch_size);
            let no_query = batch.iter().any(|request| request.query.trim().is_empty());
            return (!too_many && !no_query).then_some(Input::Body(batch));
        }
        let mut parts = data.splitn(3, |&byte| byte == 0);
        let document = std::str::from_utf8(parts.next()?).ok()?;
        let mut request = Request::new(document);
        if let Some(variables) = parts.next().filter(|json| !json.is_empty()) {
            request = request.variables(serde_json::from_slice::<Variables>(variables).ok()?);
        }
        if let Some(name) = parts.next() {
            request = request.operation_name(std::str::from_utf8(name).ok()?);
        }
        Some(Input::Operation(request))
    }
}

struct Harness {
    runtime: Runtime,
    state: AppState,
    schema: AppSchema,
    admin: Viewer,
    /// `AGENTDESK_FUZZ_PRINT=1`: print every response, to see what a seed or a saved input does.
    print_responses: bool,
    /// Holds the database file; never dropped (the process ends with the fuzzer), so `fuzz/run`
    /// points TMPDIR at a directory it removes.
    _database: TempDir,
}

impl Harness {
    fn start() -> Self {
        // One thread: inputs run one at a time anyway, and a single thread keeps runs
        // repeatable. SQLite's own worker threads and argon2's blocking pool still work.
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
        let database = tempfile::tempdir().expect("temporary directory");
        let mut config = Config::defaults();
        // A file, not `sqlite::memory:`: each pooled connection would get a database of its own.
        config.database_url = format!("sqlite://{}?mode=rwc", database.path().join("fuzz.db").display());
        config.bootstrap_password = Some(ADMIN_PASSWORD.into());
        let (state, _) = runtime.block_on(app::prepare(config)).expect("agentdesk prepares");
        let schema = app::schema(&state);
        let admin = runtime.block_on(seed(&state, &schema));
        let print_responses = std::env::var_os("AGENTDESK_FUZZ_PRINT").is_some();
        Harness { runtime, state, schema, admin, print_responses, _database: database }
    }

    fn run(&self, input: Input) {
        let context = RequestContext::new(Some(self.admin.clone())).with_client_address(CLIENT_ADDRESS);
        let response = self.runtime.block_on(async {
            Some(match input {
                Input::Body(batch) => self.schema.execute_batch(batch.data(context)).await,
                Input::Operation(request) if is_subscription(&request) => {
                    let mut stream = self.schema.execute_stream(request.data(context));
                    match tokio::time::timeout(SUBSCRIPTION_WAIT, stream.next()).await {
                        Ok(Some(response)) => BatchResponse::Single(response),
                        Ok(None) | Err(_) => return None,
                    }
                }
                Input::Operation(request) => {
                    BatchResponse::Single(self.schema.execute(request.data(context)).await)
                }
            })
        });
        if let Some(response) = response {
            let json = serde_json::to_value(&response).expect("the response serializes to JSON");
            if self.print_responses {
                eprintln!("{json}");
            }
            assert_no_internal_error(&json);
        }
    }
}

/// Whether the operation the request names (or its only one) is a subscription; documents
/// that do not parse are left to the schema to refuse.
fn is_subscription(request: &Request) -> bool {
    let Ok(document) = parse_query(&request.query) else { return false };
    let mut operations = document.operations.iter();
    let operation = match &request.operation_name {
        Some(name) => operations.find(|(candidate, _)| candidate.is_some_and(|c| c.as_str() == name)),
        None => operations.next(),
    };
    operation.is_some_and(|(_, operation)| operation.node.ty == OperationType::Subscription)
}

fn assert_no_internal_error(response: &Value) {
    let responses = match response {
        Value::Array(batch) => batch.iter().collect(),
        single => vec![single],
    };
    for error in responses.iter().filter_map(|r| r["errors"].as_array()).flatten() {
        assert_ne!(error["extensions"]["code"], "INTERNAL", "an input made the server fail: {error}");
    }
}

/// Queues, agents (one ONLINE, one disabled) and conversations (assigned, waiting, closed),
/// so inputs reach the resolvers that have rows to show. Returns the ADMIN `admin`.
///
/// Global IDs the seeds in `fuzz/seeds/request` use: agents 1 (admin) to 4, queues 1–2,
/// conversations 1–4, organization 1.
async fn seed(state: &AppState, schema: &AppSchema) -> Viewer {
    let (admin_token, admin) = sign_in(state, schema, "admin", ADMIN_PASSWORD).await;
    // Phone numbers reach the viewer masked, so the masking runs on every one shown.
    run(
        schema,
        Some(&admin),
        "mutation($id: ID!) { updateAgent(input: { id: $id, showRealPhoneNumbers: false }) { userErrors { code } } }",
        json!({ "id": id::encode(NodeKind::Agent, admin.agent_id) }),
    )
    .await;
    let admin = authenticate(state, &admin_token).await;
    let as_admin = Some(&admin);
    let mut queues = Vec::new();
    for name in ["Billing", "Support"] {
        let created = run(
            schema,
            as_admin,
            "mutation($name: String!) { createQueue(input: { name: $name }) { queue { id } userErrors { code } } }",
            json!({ "name": name }),
        )
        .await;
        queues.push(created["createQueue"]["queue"]["id"].clone());
    }
    let agents = [
        json!({ "displayName": "Ana Lima", "username": "ana", "email": "ana@example.com",
                "queueIds": [queues[0]], "maxConcurrentSessions": 2 }),
        json!({ "displayName": "Bob Chen", "username": "bob", "queueIds": [queues[1]], "showRealPhoneNumbers": true }),
        json!({ "displayName": "Çağrı Öz", "username": "cagri", "role": "ADMIN", "queueIds": queues }),
    ];
    let mut agent_ids = Vec::new();
    for mut input in agents {
        input["password"] = json!(AGENT_PASSWORD);
        let created = run(
            schema,
            as_admin,
            "mutation($input: CreateAgentInput!) { createAgent(input: $input) { agent { id } userErrors { code } } }",
            json!({ "input": input }),
        )
        .await;
        agent_ids.push(created["createAgent"]["agent"]["id"].clone());
    }
    let (_, ana) = sign_in(state, schema, "ana", AGENT_PASSWORD).await;
    run(schema, Some(&ana), "mutation { reportPresence(status: ONLINE) { presence } }", json!({})).await;
    // Billing: two assigned to Ana (her limit), one waiting; Support: one waiting (Bob is OFFLINE).
    let mut conversations = Vec::new();
    for (queue, phone) in [
        (&queues[0], "+1 415 555 0123"),
        (&queues[0], "+44 7911 123456"),
        (&queues[0], "+85223456789"),
        (&queues[1], "+14155550124"),
    ] {
        let created = run(
            schema,
            as_admin,
            "mutation($queue: ID!, $phone: String) { createConversation(input: { queueId: $queue, customerName: \"Casey\", customerPhone: $phone }) { conversation { id } userErrors { code } } }",
            json!({ "queue": queue, "phone": phone }),
        )
        .await;
        conversations.push(created["createConversation"]["conversation"]["id"].clone());
    }
    // Closing the first frees Ana for the waiting one; disabling Çağrı gives the audit log
    // and the eligibility reasons something to show.
    run(
        schema,
        as_admin,
        "mutation($id: ID!) { closeConversation(id: $id) { userErrors { code } } }",
        json!({ "id": conversations[0] }),
    )
    .await;
    run(
        schema,
        as_admin,
        "mutation($ids: [ID!]!) { setAgentsEnabled(ids: $ids, enabled: false) { affectedCount userErrors { code } } }",
        json!({ "ids": [agent_ids[2]] }),
    )
    .await;
    admin
}

/// Signs in through the `login` mutation; the token and who it stands for.
async fn sign_in(state: &AppState, schema: &AppSchema, username: &str, password: &str) -> (String, Viewer) {
    let signed_in = run(
        schema,
        None,
        "mutation($username: String!, $password: String!) { login(input: { organization: \"demo\", username: $username, password: $password }) { token userErrors { code } } }",
        json!({ "username": username, "password": password }),
    )
    .await;
    let token =
        signed_in["login"]["token"].as_str().unwrap_or_else(|| panic!("{username} signs in: {signed_in}"));
    (token.to_owned(), authenticate(state, token).await)
}

/// The viewer of a token, as the HTTP layer resolves it.
async fn authenticate(state: &AppState, token: &str) -> Viewer {
    let lifetime = SessionLifetime::from_config(&state.config);
    let signed_in = auth::authenticate(&state.db, lifetime, token, SessionUse::Request).await;
    signed_in.expect("the database answers").expect("the token is valid").viewer
}

/// Runs one seeding operation; any error or user error means the harness is broken.
async fn run(schema: &AppSchema, viewer: Option<&Viewer>, query: &str, variables: Value) -> Value {
    let request = Request::new(query)
        .variables(Variables::from_json(variables))
        .data(RequestContext::new(viewer.cloned()));
    let response = schema.execute(request).await;
    assert!(response.errors.is_empty(), "seeding `{query}`: {:?}", response.errors);
    let data = response.data.into_json().expect("data is JSON");
    let user_errors = data
        .as_object()
        .into_iter()
        .flat_map(|root| root.values())
        .filter_map(|p| p["userErrors"].as_array());
    assert!(user_errors.flatten().next().is_none(), "seeding `{query}`: {data}");
    data
}
