//! The directory's live side: what disabling, deleting and password changes do to open
//! sockets and presence, and `agentDirectoryChanged`.

use std::time::Duration;

use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::common::{
    Backend, Session, TestServer,
    metrics::{scrape, settles_at, until_listening, value},
    ws::{Ending, Protocol, WsClient},
};

pub fn tests() -> Vec<crate::common::Test> {
    [
        crate::tests![
            disabling_an_agent_closes_its_sockets_and_takes_it_offline,
            deleting_an_agent_closes_its_sockets_and_takes_it_offline,
            a_new_password_closes_the_other_sessions_sockets_only,
            directory_changes_reach_the_organizations_admins,
            admins_of_one_organization_share_one_directory_execution,
            only_admins_may_watch_the_directory,
            changes_over_a_socket_are_audited_with_the_clients_address,
        ],
        crate::postgres_tests![subscribers_that_may_have_missed_changes_are_told_and_ended],
    ]
    .concat()
}

const PRESENCE: &str = "subscription { presenceChanged { status previousStatus agent { username } } }";
const DIRECTORY: &str =
    "subscription { agentDirectoryChanged { kind agentId agent { username enabled displayName } } }";
/// Revoked sockets close within this.
const CLOSE_WITHIN: Duration = Duration::from_secs(1);
/// What has not arrived by then is not coming.
const QUIET: Duration = Duration::from_millis(700);

async fn new_agent(server: &TestServer, admin: &Session, username: &str) -> (String, Session) {
    let created = server
        .gql(
            Some(admin),
            "mutation($u: String!) { createAgent(input: { displayName: $u, username: $u, password: \"secret-1\" }) {
                agent { id } userErrors { code } } }",
            json!({ "u": username }),
        )
        .await
        .data();
    let id = created["createAgent"]["agent"]["id"].as_str().unwrap_or_else(|| panic!("{created}")).to_owned();
    (id, server.login("demo", username, "secret-1").await)
}

/// Waits until the directory subscription `d` on `socket` is live: touches the admin's own
/// entry until an event comes back (events before the subscription exist are not replayed).
/// The deadline is generous: after a lost LISTEN connection, the listener reconnects with a
/// back-off, which a loaded machine (CI beside other work) stretches.
pub(crate) async fn wait_until_live(server: &TestServer, admin: &Session, socket: &mut WsClient) {
    let touch = "mutation($id: ID!) { updateAgent(input: { id: $id, displayName: \"Administrator\" }) { userErrors { code } } }";
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        server.gql(Some(admin), touch, json!({ "id": admin.agent_id })).await.data();
        if socket.try_next_result("d", Duration::from_millis(200)).await.is_some() {
            // Let any copies of the probe arrive, then start clean.
            socket.results_within("d", Duration::from_millis(200)).await;
            return;
        }
    }
    panic!("the directory subscription never became live");
}

async fn go_online(server: &TestServer, session: &Session) {
    let query = "mutation { reportPresence(status: ONLINE) { presence } }";
    assert_eq!(
        server.gql(Some(session), query, json!({})).await.data()["reportPresence"]["presence"],
        "ONLINE"
    );
}

/// Removes the agent with `mutation` and checks its socket closes and it goes OFFLINE once.
async fn removal_closes_sockets_and_takes_offline(backend: Backend, mutation: &str) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let (id, agent) = new_agent(&server, &admin, "una").await;
    let mut watcher =
        WsClient::connect(&server, Protocol::TransportWs, Some(&admin)).await.expect("admin socket");
    watcher.subscribe("p", PRESENCE, json!({})).await;
    let mut workspace =
        WsClient::connect(&server, Protocol::LegacyWs, Some(&agent)).await.expect("agent socket");
    until_listening(&server, "presence", 1).await;
    go_online(&server, &agent).await;
    let online = watcher.next_result("p").await;
    assert_eq!(online["data"]["presenceChanged"]["status"], "ONLINE", "{online}");

    server.gql(Some(&admin), mutation, json!({ "id": id })).await.data();
    assert_eq!(workspace.ending(CLOSE_WITHIN).await, Ending::Closed(Some(4403)));
    let offline = watcher.next_result("p").await;
    assert_eq!(offline["data"]["presenceChanged"]["status"], "OFFLINE", "{offline}");
    assert_eq!(offline["data"]["presenceChanged"]["previousStatus"], "ONLINE");
    assert!(watcher.results_within("p", QUIET).await.is_empty(), "exactly one OFFLINE event");
}

async fn disabling_an_agent_closes_its_sockets_and_takes_it_offline(backend: Backend) {
    removal_closes_sockets_and_takes_offline(
        backend,
        "mutation($id: ID!) { setAgentsEnabled(ids: [$id], enabled: false) { userErrors { code } } }",
    )
    .await;
}

async fn deleting_an_agent_closes_its_sockets_and_takes_it_offline(backend: Backend) {
    removal_closes_sockets_and_takes_offline(
        backend,
        "mutation($id: ID!) { deleteAgent(id: $id) { userErrors { code } } }",
    )
    .await;
}

async fn a_new_password_closes_the_other_sessions_sockets_only(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let (id, mine) = new_agent(&server, &admin, "vic").await;
    let other = server.login("demo", "vic", "secret-1").await;
    let mut my_socket = WsClient::connect(&server, Protocol::TransportWs, Some(&mine)).await.expect("socket");
    let mut other_socket =
        WsClient::connect(&server, Protocol::TransportWs, Some(&other)).await.expect("socket");
    let changed = server
        .gql(
            Some(&mine),
            "mutation($id: ID!) { updateAgent(input: { id: $id, newPassword: \"brand-new\" }) { userErrors { code } } }",
            json!({ "id": id }),
        )
        .await
        .data();
    assert_eq!(changed["updateAgent"]["userErrors"], json!([]));
    assert_eq!(other_socket.ending(CLOSE_WITHIN).await, Ending::Closed(Some(4403)));
    assert_eq!(my_socket.ending(QUIET).await, Ending::StillOpen);
}

fn event(result: &Value) -> (String, String, Value) {
    let event = &result["data"]["agentDirectoryChanged"];
    (
        event["kind"].as_str().unwrap().to_owned(),
        event["agentId"].as_str().unwrap().to_owned(),
        event["agent"].clone(),
    )
}

async fn directory_changes_reach_the_organizations_admins(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    server.create_organization("acme", 5, "boss", "boss-password").await;
    let boss = server.login("acme", "boss", "boss-password").await;
    let mut ours = WsClient::connect(&server, Protocol::LegacyWs, Some(&admin)).await.expect("socket");
    ours.subscribe("d", DIRECTORY, json!({})).await;
    let mut theirs = WsClient::connect(&server, Protocol::TransportWs, Some(&boss)).await.expect("socket");
    theirs.subscribe("d", DIRECTORY, json!({})).await;
    wait_until_live(&server, &admin, &mut ours).await;
    wait_until_live(&server, &boss, &mut theirs).await;

    let (wes, _) = new_agent(&server, &admin, "wes").await;
    let (kind, agent_id, agent) = event(&ours.next_result("d").await);
    assert_eq!((kind.as_str(), agent_id.as_str()), ("CREATED", wes.as_str()));
    assert_eq!(agent, json!({ "username": "wes", "enabled": true, "displayName": "wes" }));

    let update = "mutation($id: ID!) { updateAgent(input: { id: $id, displayName: \"Wes A.\" }) { userErrors { code } } }";
    server.gql(Some(&admin), update, json!({ "id": wes })).await.data();
    let (kind, _, agent) = event(&ours.next_result("d").await);
    assert_eq!((kind.as_str(), &agent["displayName"]), ("UPDATED", &json!("Wes A.")));

    let (xan, _) = new_agent(&server, &admin, "xan").await;
    ours.next_result("d").await;
    let disable =
        "mutation($ids: [ID!]!) { setAgentsEnabled(ids: $ids, enabled: false) { userErrors { code } } }";
    server.gql(Some(&admin), disable, json!({ "ids": [wes, xan] })).await.data();
    let first = event(&ours.next_result("d").await);
    let second = event(&ours.next_result("d").await);
    assert_eq!(
        (first.0.as_str(), first.1.as_str(), &first.2["enabled"]),
        ("UPDATED", wes.as_str(), &json!(false))
    );
    assert_eq!((second.0.as_str(), second.1.as_str()), ("UPDATED", xan.as_str()));

    // A refused change emits nothing.
    let refused = server.gql(Some(&admin), update, json!({ "id": "QWdlbnQ6OTk5OQ" })).await;
    assert_eq!(refused.user_error_codes("updateAgent"), ["NOT_FOUND"]);
    server
        .gql(
            Some(&admin),
            "mutation($id: ID!) { deleteAgent(id: $id) { deletedCount } }",
            json!({ "id": xan }),
        )
        .await
        .data();
    let (kind, agent_id, agent) = event(&ours.next_result("d").await);
    assert_eq!((kind.as_str(), agent_id.as_str(), agent), ("DELETED", xan.as_str(), Value::Null));
    assert!(ours.results_within("d", QUIET).await.is_empty(), "one event per agent and change");
    assert!(theirs.results_within("d", QUIET).await.is_empty(), "another organization hears nothing");
}

/// ADMINs of one organization (and one phone-number permission: an organization's first
/// ADMIN sees real numbers) asking the same thing get
/// the same answers, so their sockets share one execution, one subscription to the feed:
/// each hears every change once, and it goes on for the others when one leaves.
async fn admins_of_one_organization_share_one_directory_execution(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let promote = "mutation($u: String!) { createAgent(input: { displayName: $u, username: $u,
        password: \"secret-1\", role: ADMIN, showRealPhoneNumbers: true }) { userErrors { code } } }";
    server.gql(Some(&admin), promote, json!({ "u": "ada" })).await.data();
    let ada = server.login("demo", "ada", "secret-1").await;
    let mut sockets = Vec::new();
    for (session, protocol) in
        [(&admin, Protocol::TransportWs), (&ada, Protocol::LegacyWs), (&admin, Protocol::LegacyWs)]
    {
        let mut socket = WsClient::connect(&server, protocol, Some(session)).await.expect("socket");
        socket.subscribe("d", DIRECTORY, json!({})).await;
        sockets.push(socket);
    }
    settles_at(&server, "agentdesk_subscription_executions", 1.0).await;
    until_listening(&server, "directory", 1).await;

    let (wes, _) = new_agent(&server, &admin, "wes").await;
    for socket in &mut sockets {
        let results = socket.results_within("d", QUIET).await;
        assert_eq!(results.len(), 1, "once each: {results:?}");
        assert_eq!(event(&results[0]).1, wes);
    }

    sockets.remove(0).close().await;
    settles_at(&server, "agentdesk_subscriptions_active", 2.0).await;
    let (yul, _) = new_agent(&server, &admin, "yul").await;
    for socket in &mut sockets {
        assert_eq!(event(&socket.next_result("d").await).1, yul);
    }
    assert_eq!(
        value(&scrape(&server).await, "agentdesk_subscription_executions"),
        1.0,
        "the others still share it"
    );
}

/// The directory and conversation feeds have no state to catch up from: when notifications
/// may have been lost (here: PostgreSQL drops the instance's LISTEN connection), each of
/// their subscribers gets SUBSCRIPTION_BEHIND and its subscription ends, rather than going
/// on with a list the client no longer knows to be wrong. Subscribing again works at once.
async fn subscribers_that_may_have_missed_changes_are_told_and_ended(backend: Backend) {
    assert_eq!(backend, Backend::Postgres, "listed with postgres_tests!");
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let mut socket = WsClient::connect(&server, Protocol::TransportWs, Some(&admin)).await.expect("socket");
    socket.subscribe("c", "subscription { conversationChanged { kind } }", json!({})).await;
    socket.subscribe("d", DIRECTORY, json!({})).await;
    wait_until_live(&server, &admin, &mut socket).await;

    let terminated = server
        .db()
        .execute_unprepared(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()",
        )
        .await
        .expect("terminate the listener's connection");
    assert_eq!(terminated.rows_affected(), 1, "one LISTEN connection");

    let mut told = Vec::new();
    while told.len() < 2 {
        let message =
            socket.next_message(Duration::from_secs(5)).await.expect("the server tells the subscribers");
        if message["type"] == "next" {
            let code = &message["payload"]["errors"][0]["extensions"]["code"];
            assert_eq!(code, "SUBSCRIPTION_BEHIND", "{message}");
            told.push(message["id"].as_str().unwrap_or_default().to_owned());
        } else {
            assert_eq!(message["type"], "complete", "{message}");
            assert!(
                told.contains(&message["id"].as_str().unwrap_or_default().to_owned()),
                "ended after the error: {message}"
            );
        }
    }
    told.sort();
    assert_eq!(told, ["c", "d"]);

    // Subscribed again (a finished id is free again), the directory is live once more.
    socket.subscribe("d", DIRECTORY, json!({})).await;
    wait_until_live(&server, &admin, &mut socket).await;
}

async fn only_admins_may_watch_the_directory(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let (_, agent) = new_agent(&server, &admin, "yul").await;
    let mut socket = WsClient::connect(&server, Protocol::TransportWs, Some(&agent)).await.expect("socket");
    socket.subscribe("d", DIRECTORY, json!({})).await;
    let refused = socket.next_result("d").await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "FORBIDDEN", "{refused}");
}

async fn changes_over_a_socket_are_audited_with_the_clients_address(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let mut socket = WsClient::connect(&server, Protocol::TransportWs, Some(&admin)).await.expect("socket");
    socket
        .subscribe(
            "q",
            "mutation { createQueue(input: { name: \"Over WS\" }) { queue { name } } }",
            json!({}),
        )
        .await;
    let created = socket.next_result("q").await;
    assert_eq!(created["data"]["createQueue"]["queue"]["name"], "Over WS", "{created}");
    let log = "{ auditLog(filter: { action: QUEUE_CREATED }) { nodes { actorUsername clientAddress } } }";
    let entries = server.gql(Some(&admin), log, json!({})).await.data();
    assert_eq!(
        entries["auditLog"]["nodes"],
        json!([{ "actorUsername": "admin", "clientAddress": "127.0.0.1" }])
    );
}
