//! The session cache: a warm token costs no statement, and whatever ends a session or changes
//! its viewer (logout, disable, a role change, expiry) holds from the very next request, on
//! the instance that made the change and, once its event arrives, on every other.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{
    common::{
        Backend, Session, TestServer,
        ws::{Ending, Protocol, WsClient},
    },
    directory::without_background_sweeps,
};

pub fn tests() -> Vec<crate::common::Test> {
    let mut tests = crate::tests![
        a_warm_token_costs_no_statement,
        revocations_hold_from_the_next_request,
        an_expired_session_is_refused_from_the_cache,
    ];
    tests.extend(crate::postgres_tests![a_revocation_on_one_instance_reaches_the_cache_of_another]);
    tests
}

/// Slack for an event to reach another instance on a loaded machine.
const NOTICED_WITHIN: Duration = Duration::from_secs(5);

const VIEWER: &str = "{ viewer { username role } }";
const UPDATE: &str =
    "mutation($input: UpdateAgentInput!) { updateAgent(input: $input) { userErrors { field code } } }";
/// Another agent's sessions: an ADMIN may read them, an AGENT may not.
const SESSIONS_OF: &str = "query($id: ID!) { agent(id: $id) { sessions { id } } }";

async fn viewer(server: &TestServer, session: &Session) -> Value {
    let body = server.gql(Some(session), VIEWER, json!({})).await.data();
    body["viewer"].clone()
}

/// Tries of a statement count. The counter is the server's: a statement of something else
/// (a start-up job running late on a loaded machine) can land in one window, not in all.
const TRIES: usize = 3;

/// Statements a request costs whose resolvers read nothing: its token's check alone.
async fn statements_to_check(server: &TestServer, session: &Session) -> u64 {
    let before = server.statements();
    server.gql(Some(session), "{ __typename }", json!({})).await.data();
    server.statements() - before
}

/// The session is signed in and its token checked from the cache (the first request may
/// fill it).
async fn assert_warm(server: &TestServer, session: &Session) {
    let seen = viewer(server, session).await;
    assert!(seen.is_object(), "signed in: {seen}");
    let mut least = u64::MAX;
    for _ in 0..TRIES {
        least = least.min(statements_to_check(server, session).await);
    }
    assert_eq!(least, 0, "a warm token's request sent SQL");
}

async fn update(server: &TestServer, admin: &Session, input: Value) {
    let data = server.gql(Some(admin), UPDATE, json!({ "input": input })).await.data();
    assert_eq!(data["updateAgent"]["userErrors"], json!([]), "{data}");
}

async fn a_warm_token_costs_no_statement(backend: Backend) {
    let server = TestServer::start_with(backend, without_background_sweeps).await;
    let admin = server.admin().await;
    // A token this instance has not seen yet is one statement (its session, with the agent).
    let mut least = u64::MAX;
    let mut fresh = Vec::new();
    for _ in 0..TRIES {
        let session = server.admin().await;
        least = least.min(statements_to_check(&server, &session).await);
        fresh.push(session);
    }
    assert_eq!(least, 1, "a cold token");
    assert_warm(&server, &admin).await;
    for session in &fresh {
        assert_warm(&server, session).await;
    }
}

async fn revocations_hold_from_the_next_request(backend: Backend) {
    let server = TestServer::start_with(backend, without_background_sweeps).await;
    let admin = server.admin().await;

    // Logout.
    let una = server.agent_session(&admin, "una", json!({})).await;
    assert_warm(&server, &una).await;
    server.gql(Some(&una), "mutation { logout }", json!({})).await.data();
    assert!(viewer(&server, &una).await.is_null(), "logged out");

    // Disable.
    let bea = server.agent_session(&admin, "bea", json!({})).await;
    assert_warm(&server, &bea).await;
    update(&server, &admin, json!({ "id": bea.agent_id, "enabled": false })).await;
    assert!(viewer(&server, &bea).await.is_null(), "disabled");

    // A role change: the session goes on, as the new role.
    let ada = server.agent_session(&admin, "ada", json!({ "role": "ADMIN" })).await;
    let as_admin = server.gql(Some(&ada), SESSIONS_OF, json!({ "id": admin.agent_id })).await;
    assert!(as_admin.data()["agent"]["sessions"].is_array());
    assert_warm(&server, &ada).await;
    update(&server, &admin, json!({ "id": ada.agent_id, "role": "AGENT" })).await;
    let as_agent = server.gql(Some(&ada), SESSIONS_OF, json!({ "id": admin.agent_id })).await;
    assert_eq!(as_agent.error_code(), "FORBIDDEN");
    assert_eq!(viewer(&server, &ada).await["role"], "AGENT");
}

async fn an_expired_session_is_refused_from_the_cache(backend: Backend) {
    const IDLE: Duration = Duration::from_secs(2);
    let server = TestServer::start_with(backend, |config| {
        without_background_sweeps(config);
        config.session_idle_timeout = IDLE;
        config.session_max_age = Duration::ZERO;
    })
    .await;
    let admin = server.admin().await;
    assert_warm(&server, &admin).await;
    // When the server says the session ends unless used again; left alone, it is refused from
    // then on, though its entry is still in the cache.
    let sessions = "{ viewer { sessions { current expiresAt } } }";
    let listed = server.gql(Some(&admin), sessions, json!({})).await.data();
    let current = listed["viewer"]["sessions"]
        .as_array()
        .and_then(|all| all.iter().find(|session| session["current"] == true).cloned())
        .unwrap_or_else(|| panic!("{listed}"));
    let expires_at: chrono::DateTime<chrono::Utc> = current["expiresAt"]
        .as_str()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| panic!("{current}"));
    let left = (expires_at - chrono::Utc::now()).to_std().unwrap_or_default();
    assert!(left <= IDLE, "expires within the idle limit: {current}");
    // Waiting for the clock itself: any request made with the token meanwhile would be a use,
    // and push the expiry back, so there is nothing to poll.
    tokio::time::sleep(left + Duration::from_millis(50)).await;
    assert!(viewer(&server, &admin).await.is_null(), "served after its expiry");
}

async fn a_revocation_on_one_instance_reaches_the_cache_of_another(backend: Backend) {
    let a = TestServer::start_with(backend, without_background_sweeps).await;
    let b = a.another_instance().await;
    let admin = a.admin().await;
    let una = a.agent_session(&admin, "una", json!({})).await;
    let bea = a.agent_session(&admin, "bea", json!({})).await;
    // Both are warmed before any socket: a closing socket's presence writes on B run beside
    // whatever comes next, and would be counted as the token's.
    assert_warm(&b, &una).await;
    assert_warm(&b, &bea).await;
    for (session, what) in [(&una, "logout"), (&bea, "disable")] {
        let mut socket =
            WsClient::connect(&b, Protocol::TransportWs, Some(session)).await.expect("acknowledged");
        socket.subscribe("p", "subscription { presenceChanged { status } }", json!({})).await;
        if what == "logout" {
            a.gql(Some(session), "mutation { logout }", json!({})).await.data();
        } else {
            update(&a, &admin, json!({ "id": session.agent_id, "enabled": false })).await;
        }
        // The socket closing on B says the event reached B, whose cache heard it first.
        assert_eq!(socket.ending(NOTICED_WITHIN).await, Ending::Closed(Some(4403)), "{what}");
        assert!(viewer(&b, session).await.is_null(), "{what}: B still served the token");
    }
    b.stop().await;
}
