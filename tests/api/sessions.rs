//! Sessions end on their own (idle and absolute limits), on every instance, and an agent can
//! see where it is signed in and end any of those sessions.

use std::time::Duration;

use agentdesk::{
    auth::{model::SessionLifetime, sessions},
    config::Config,
    db::entities::session,
};
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};

use crate::common::{
    Backend, Session, TestServer, eventually,
    ws::{Ending, Protocol, WsClient},
};

pub fn tests() -> Vec<crate::common::Test> {
    crate::tests![
        an_idle_session_ends_and_its_sockets_close,
        a_session_ends_at_its_maximum_age_however_much_it_is_used,
        an_agent_lists_its_sessions_and_ends_them,
        expired_sessions_are_pruned,
    ]
}

/// The limits these tests set: short, so the tests are quick, long enough that a loaded CI
/// machine's requests stay well inside them while the session is in use.
const LIMIT: Duration = Duration::from_secs(3);
/// Expiry is noticed within a second; the rest is slack for a loaded machine.
const NOTICED_WITHIN: Duration = Duration::from_secs(3);

async fn viewer_of(server: &TestServer, session: &Session) -> Value {
    server.gql(Some(session), "{ viewer { username } }", json!({})).await.body
}

/// The token no longer signs anyone in (`viewer` is null for a signed-out request).
fn unauthenticated(body: &Value) -> bool {
    body["errors"].is_null() && body["data"]["viewer"].is_null()
}

/// A socket of `session` on `server` (the other instance on PostgreSQL), running a
/// subscription so that it holds the session like a workspace does.
async fn watching_socket(server: &TestServer, protocol: Protocol, session: &Session) -> WsClient {
    let mut socket = WsClient::connect(server, protocol, Some(session)).await.expect("acknowledged");
    socket.subscribe("p", "subscription { presenceChanged { status } }", json!({})).await;
    socket
}

async fn other_instance(server: &TestServer, backend: Backend) -> Option<TestServer> {
    match backend {
        Backend::Postgres => Some(server.another_instance().await),
        Backend::Sqlite => None,
    }
}

async fn an_idle_session_ends_and_its_sockets_close(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.session_idle_timeout = LIMIT;
        config.session_max_age = Duration::ZERO;
    })
    .await;
    let other = other_instance(&server, backend).await;
    let sockets_on = other.as_ref().unwrap_or(&server);
    for protocol in Protocol::BOTH {
        let admin = server.admin().await;
        let mut socket = watching_socket(sockets_on, protocol, &admin).await;
        // In use, it outlives the limit several times over.
        let started = tokio::time::Instant::now();
        while started.elapsed() < LIMIT * 2 {
            let body = viewer_of(&server, &admin).await;
            assert_eq!(
                body["data"]["viewer"]["username"], "admin",
                "{protocol:?}: ended while in use: {body}"
            );
            tokio::time::sleep(LIMIT / 10).await;
        }
        assert_eq!(socket.ending(Duration::from_millis(10)).await, Ending::StillOpen);
        // Left alone, it ends: the socket closes with 4403 and the token is refused.
        let idle_since = tokio::time::Instant::now();
        assert_eq!(socket.ending(LIMIT + NOTICED_WITHIN).await, Ending::Closed(Some(4403)), "{protocol:?}");
        assert!(idle_since.elapsed() >= LIMIT / 2, "{protocol:?}: closed too early");
        assert!(unauthenticated(&viewer_of(&server, &admin).await), "{protocol:?}");
    }
    if let Some(other) = other {
        other.stop().await;
    }
}

async fn a_session_ends_at_its_maximum_age_however_much_it_is_used(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.session_idle_timeout = Duration::ZERO;
        config.session_max_age = LIMIT;
    })
    .await;
    let other = other_instance(&server, backend).await;
    let sockets_on = other.as_ref().unwrap_or(&server);
    let admin = server.admin().await;
    let mut socket = watching_socket(sockets_on, Protocol::TransportWs, &admin).await;
    let signed_in = tokio::time::Instant::now();
    // Used all along, it still ends.
    eventually(LIMIT + NOTICED_WITHIN, || async {
        let body = viewer_of(&server, &admin).await;
        match unauthenticated(&body) {
            true => Ok(()),
            false => Err(format!("still signed in: {body}")),
        }
    })
    .await;
    assert!(signed_in.elapsed() >= LIMIT / 2, "ended too early");
    assert_eq!(socket.ending(NOTICED_WITHIN).await, Ending::Closed(Some(4403)));
    if let Some(other) = other {
        other.stop().await;
    }
}

const SESSIONS: &str = "{ viewer { sessions { id createdAt lastSeenAt clientAddress current expiresAt } } }";
const END: &str = "mutation($id: ID!) { endSession(id: $id) { endedSessionId userErrors { field code } } }";

async fn sessions_seen_by(server: &TestServer, session: &Session) -> Vec<Value> {
    let data = server.gql(Some(session), SESSIONS, json!({})).await.data();
    data["viewer"]["sessions"].as_array().cloned().unwrap_or_default()
}

async fn an_agent_lists_its_sessions_and_ends_them(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    server
        .gql(
            Some(&admin),
            "mutation { createAgent(input: { displayName: \"Una\", username: \"una\", password: \"password1\" }) { userErrors { code } } }",
            json!({}),
        )
        .await
        .data();
    let laptop = server.login("demo", "una", "password1").await;
    let phone = server.login("demo", "una", "password1").await;
    let tablet = server.login("demo", "una", "password1").await;
    let listed = sessions_seen_by(&server, &laptop).await;
    assert_eq!(listed.len(), 3, "{listed:?}");
    let current: Vec<&Value> = listed.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["clientAddress"], "127.0.0.1");
    assert!(listed.iter().all(|s| s["expiresAt"].is_string()), "the defaults set limits: {listed:?}");
    let phone_id =
        sessions_seen_by(&server, &phone).await.into_iter().find(|s| s["current"] == true).unwrap()["id"]
            .clone();

    // Ending another of one's sessions: its token is refused, its socket closes.
    let mut phone_socket = watching_socket(&server, Protocol::LegacyWs, &phone).await;
    let ended = server.gql(Some(&laptop), END, json!({ "id": phone_id })).await.data();
    assert_eq!(ended["endSession"], json!({ "endedSessionId": phone_id, "userErrors": [] }));
    assert!(unauthenticated(&viewer_of(&server, &phone).await));
    assert_eq!(phone_socket.ending(NOTICED_WITHIN).await, Ending::Closed(Some(4403)));
    assert_eq!(sessions_seen_by(&server, &laptop).await.len(), 2);

    // Unknown, already ended, malformed, or someone else's (for an AGENT): NOT_FOUND.
    let admins = sessions_seen_by(&server, &admin).await;
    for id in [phone_id.clone(), json!("not-an-id"), admins[0]["id"].clone()] {
        let refused = server.gql(Some(&laptop), END, json!({ "id": id })).await.data();
        assert_eq!(
            refused["endSession"],
            json!({ "endedSessionId": null, "userErrors": [{ "field": ["id"], "code": "NOT_FOUND" }] }),
            "{id}"
        );
    }
    assert!(!unauthenticated(&viewer_of(&server, &admin).await), "nothing of the admin's ended");

    // An ADMIN reads and ends an agent's sessions; an AGENT may not read another's.
    let una = "query($id: ID!) { agent(id: $id) { sessions { id current } } }";
    let seen = server.gql(Some(&admin), una, json!({ "id": laptop.agent_id })).await.data();
    assert_eq!(seen["agent"]["sessions"].as_array().map(Vec::len), Some(2), "{seen}");
    let forbidden = server.gql(Some(&laptop), una, json!({ "id": admin.agent_id })).await;
    assert_eq!(forbidden.error_code(), "FORBIDDEN");

    // Everywhere else: the tablet ends, the laptop stays; then the laptop too when asked.
    let everywhere = server.gql(Some(&laptop), "mutation { logoutEverywhere }", json!({})).await.data();
    assert_eq!(everywhere["logoutEverywhere"], 1);
    assert!(unauthenticated(&viewer_of(&server, &tablet).await));
    assert!(!unauthenticated(&viewer_of(&server, &laptop).await));
    let all =
        server.gql(Some(&laptop), "mutation { logoutEverywhere(includeCurrent: true) }", json!({})).await;
    assert_eq!(all.data()["logoutEverywhere"], 1);
    assert!(unauthenticated(&viewer_of(&server, &laptop).await));

    // Each is in the audit log.
    let audit = server
        .gql(
            Some(&admin),
            "{ ended: auditLog(filter: { action: SESSION_ENDED }) { nodes { actorUsername } } everywhere: auditLog(filter: { action: SIGNED_OUT_EVERYWHERE }) { nodes { actorUsername } } }",
            json!({}),
        )
        .await
        .data();
    assert_eq!(audit["ended"]["nodes"], json!([{ "actorUsername": "una" }]));
    assert_eq!(audit["everywhere"]["nodes"], json!([{ "actorUsername": "una" }, { "actorUsername": "una" }]));
}

async fn expired_sessions_are_pruned(backend: Backend) {
    let server = TestServer::start_with(backend, |config| config.session_idle_timeout = LIMIT).await;
    let admin = server.admin().await;
    let count = || async { session::Entity::find().count(server.db()).await.unwrap() };
    assert_eq!(count().await, 1);
    let lifetime =
        SessionLifetime::from_config(&Config { session_idle_timeout: LIMIT, ..Config::defaults() });
    // Not before it expired.
    assert_eq!(sessions::prune_expired(server.db(), lifetime).await.unwrap(), 0);
    eventually(Duration::from_secs(10), || async {
        match sessions::prune_expired(server.db(), lifetime).await.unwrap() {
            0 => Err("the idle session was never pruned".to_owned()),
            _ => Ok(()),
        }
    })
    .await;
    assert_eq!(count().await, 0);
    assert!(unauthenticated(&viewer_of(&server, &admin).await));
}
