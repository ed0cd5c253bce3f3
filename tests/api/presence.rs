//! Live presence over real WebSockets: reports, lapses, filters, tenancy, revoked sockets,
//! and two server processes sharing one PostgreSQL database.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use agentdesk::{
    auth::{Password, PasswordHasher},
    config::Config,
    db::entities::{agent, agent_socket, organization, queue, queue_member},
};
use agentdesk::{presence::model::Presence, viewer::Role};
use chrono::Utc;
use futures_util::future::join_all;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Database, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    sea_query::Expr,
};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::common::{
    Backend, Session, TestServer,
    client::Endpoint,
    eventually,
    metrics::{scrape, settles_at, until_listening, value},
    number_of,
    postgres::TestDatabase,
    process::ServerProcess,
    seed::count_inserted_agents,
    server::ADMIN_PASSWORD,
    ws::{Ending, Protocol, WsClient},
};

pub fn tests() -> Vec<crate::common::Test> {
    [
        crate::tests![
            reported_changes_reach_every_subscriber_once_on_both_protocols,
            agent_ids_and_queue_filters_select_changes,
            unknown_or_foreign_queue_is_not_found,
            ttl_lapse_emits_exactly_one_event,
            last_socket_closing_lapses_after_the_grace_and_a_reload_does_not,
            a_mass_disconnect_is_written_in_a_few_statements_not_two_a_socket,
            logout_closes_that_sessions_sockets_within_a_second,
            signed_out_socket_cannot_subscribe,
            another_organizations_changes_never_arrive,
            a_stopped_operation_goes_quiet_and_a_restarted_legacy_one_runs_once,
            sockets_asking_the_same_share_one_execution_which_outlives_the_first,
            viewers_of_different_audiences_get_their_own_answers,
            a_subscriber_that_reads_nothing_falls_behind_alone,
            a_subscription_far_behind_the_bus_is_caught_up_with_each_agents_latest_change,
            a_subscription_selected_through_a_fragment_is_refused_not_left_silent,
            a_socket_that_reads_nothing_for_the_send_timeout_is_dropped,
        ],
        crate::postgres_tests![
            two_instances_share_presence_and_lapse_once,
            a_stopped_instances_sockets_lapse_on_the_survivor
        ],
    ]
    .concat()
}

const PRESENCE_CHANGED: &str = "subscription($queueId: ID, $agentIds: [ID!]) {
    presenceChanged(queueId: $queueId, agentIds: $agentIds) {
        status previousStatus at agent { id username presence } } }";

const REPORT: &str = "mutation($status: PresenceStatus!) { reportPresence(status: $status) { id presence } }";

/// Long enough for an event to cross the bus; what has not arrived by then is not coming.
const QUIET: Duration = Duration::from_millis(700);

fn fast_lapse(config: &mut Config) {
    config.presence_ttl = Duration::from_millis(600);
    config.presence_grace = Duration::from_millis(400);
    config.presence_sweep_interval = Duration::from_millis(50);
}

/// A new AGENT of the organization `slug`, signed in.
async fn add_agent(server: &TestServer, slug: &str, username: &str) -> Session {
    let password = insert_agent(server.db(), slug, username).await;
    server.login(slug, username, &password).await
}

/// Writes a new AGENT of the organization `slug`; its password.
async fn insert_agent(db: &DatabaseConnection, slug: &str, username: &str) -> String {
    let organization = organization::Entity::find()
        .filter(organization::Column::Slug.eq(slug))
        .one(db)
        .await
        .unwrap()
        .expect("organization exists");
    let password = Password::parse(format!("{username}-password")).unwrap();
    let now = Utc::now();
    agent::Entity::insert(agent::ActiveModel {
        organization_id: Set(organization.id),
        username: Set(username.into()),
        display_name: Set(username.into()),
        email: Set(None),
        role: Set(Role::Agent),
        enabled: Set(true),
        password_hash: Set(PasswordHasher::new(1).hash(&password).await.unwrap()),
        presence: Set(Presence::Offline),
        presence_changed_at: Set(None),
        show_real_phone_numbers: Set(false),
        max_concurrent_sessions: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        deleted_at: Set(None),
        ..Default::default()
    })
    .exec(db)
    .await
    .expect("agent inserted");
    count_inserted_agents(db, organization.id, 1).await;
    password.expose().to_owned()
}

/// A queue of the organization `slug` with these members; its global ID.
async fn add_queue(server: &TestServer, slug: &str, name: &str, members: &[&Session]) -> String {
    let organization = organization::Entity::find()
        .filter(organization::Column::Slug.eq(slug))
        .one(server.db())
        .await
        .unwrap()
        .expect("organization exists");
    let now = Utc::now();
    let queue = queue::Entity::insert(queue::ActiveModel {
        organization_id: Set(organization.id),
        name: Set(name.into()),
        name_key: Set(name.to_lowercase()),
        created_at: Set(now),
        updated_at: Set(now),
        deleted_at: Set(None),
        ..Default::default()
    })
    .exec(server.db())
    .await
    .unwrap();
    for member in members {
        queue_member::Entity::insert(queue_member::ActiveModel {
            queue_id: Set(queue.last_insert_id),
            agent_id: Set(number_of(&member.agent_id)),
            created_at: Set(now),
        })
        .exec(server.db())
        .await
        .unwrap();
    }
    agentdesk::graphql::id::encode(agentdesk::graphql::id::NodeKind::Queue, queue.last_insert_id).0
}

async fn report(server: &impl Endpoint, session: &Session, status: &str) -> Value {
    server.post(Some(session), REPORT, json!({ "status": status })).await.data()["reportPresence"].clone()
}

async fn subscribe(
    server: &impl Endpoint,
    protocol: Protocol,
    session: &Session,
    variables: Value,
) -> WsClient {
    let mut socket = WsClient::connect(server, protocol, Some(session)).await.expect("acknowledged");
    socket.subscribe("p", PRESENCE_CHANGED, variables).await;
    socket
}

fn change_of(result: &Value) -> (String, String, String) {
    let event = &result["data"]["presenceChanged"];
    assert!(result.get("errors").is_none(), "{result}");
    (
        event["agent"]["username"].as_str().unwrap_or_default().to_owned(),
        event["status"].as_str().unwrap_or_default().to_owned(),
        event["previousStatus"].as_str().unwrap_or_default().to_owned(),
    )
}

fn changes(results: &[Value]) -> Vec<(String, String, String)> {
    results.iter().map(change_of).collect()
}

fn change(username: &str, status: &str, previous: &str) -> (String, String, String) {
    (username.into(), status.into(), previous.into())
}

async fn reported_changes_reach_every_subscriber_once_on_both_protocols(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let ana = add_agent(&server, "demo", "ana").await;
    let mut watchers = Vec::new();
    for protocol in Protocol::BOTH {
        watchers.push(subscribe(&server, protocol, &admin, json!({})).await);
    }
    // Both ask the same, so they share one execution.
    until_listening(&server, "presence", 1).await;

    assert_eq!(report(&server, &ana, "ONLINE").await["presence"], "ONLINE");
    assert_eq!(report(&server, &ana, "ONLINE").await["presence"], "ONLINE", "a renewal");
    assert_eq!(report(&server, &ana, "OFFLINE").await["presence"], "OFFLINE");
    assert_eq!(report(&server, &ana, "OFFLINE").await["presence"], "OFFLINE", "no change");

    for (watcher, protocol) in watchers.iter_mut().zip(Protocol::BOTH) {
        let online = watcher.next_result("p").await;
        let offline = watcher.next_result("p").await;
        assert_eq!(
            changes(&[online.clone(), offline.clone()]),
            [change("ana", "ONLINE", "OFFLINE"), change("ana", "OFFLINE", "ONLINE")],
            "{protocol:?}"
        );
        let event = &online["data"]["presenceChanged"];
        assert_eq!(event["agent"]["id"], ana.agent_id.as_str());
        assert!(event["at"].as_str().is_some_and(|at| at.contains('T')), "{event}");
        assert!(watcher.results_within("p", QUIET).await.is_empty(), "{protocol:?}: no duplicates");
    }
}

/// A client's `complete` (`stop` on the legacy protocol) ends that subscription, with no
/// answer, and the socket goes on serving; the legacy protocol's `start` under a running id
/// replaces the operation rather than running a second one.
async fn a_stopped_operation_goes_quiet_and_a_restarted_legacy_one_runs_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let ana = add_agent(&server, "demo", "ana").await;
    for protocol in Protocol::BOTH {
        let mut socket = subscribe(&server, protocol, &admin, json!({})).await;
        let stop = match protocol {
            Protocol::TransportWs => "complete",
            Protocol::LegacyWs => "stop",
        };
        socket.send(json!({ "type": stop, "id": "p" })).await;
        socket.subscribe("again", PRESENCE_CHANGED, json!({})).await;
        if protocol == Protocol::LegacyWs {
            socket.subscribe("again", PRESENCE_CHANGED, json!({})).await;
        }
        // The stop is handled, and the last loop's socket is gone once only this one's
        // subscription listens.
        socket.processed().await;
        until_listening(&server, "presence", 1).await;

        report(&server, &ana, "ONLINE").await;
        report(&server, &ana, "OFFLINE").await;
        let mut messages = Vec::new();
        while let Ok(message) = socket.next_message(QUIET).await {
            messages.push(message);
        }
        let kinds: Vec<_> =
            messages.iter().map(|message| (message["type"].clone(), message["id"].clone())).collect();
        let result = match protocol {
            Protocol::TransportWs => "next",
            Protocol::LegacyWs => "data",
        };
        assert_eq!(kinds, [(json!(result), json!("again")), (json!(result), json!("again"))], "{protocol:?}");
        let results: Vec<_> = messages.iter().map(|message| message["payload"].clone()).collect();
        assert_eq!(
            changes(&results),
            [change("ana", "ONLINE", "OFFLINE"), change("ana", "OFFLINE", "ONLINE")],
            "{protocol:?}"
        );
    }
}

async fn agent_ids_and_queue_filters_select_changes(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let ana = add_agent(&server, "demo", "ana").await;
    let bob = add_agent(&server, "demo", "bob").await;
    let sales = add_queue(&server, "demo", "Sales", &[&bob]).await;
    let mut only_ana =
        subscribe(&server, Protocol::TransportWs, &admin, json!({ "agentIds": [ana.agent_id] })).await;
    let mut sales_queue = subscribe(&server, Protocol::LegacyWs, &admin, json!({ "queueId": sales })).await;
    let mut both_filters = subscribe(
        &server,
        Protocol::TransportWs,
        &ana,
        json!({ "queueId": sales, "agentIds": [ana.agent_id] }),
    )
    .await;
    until_listening(&server, "presence", 3).await;

    report(&server, &ana, "ONLINE").await;
    report(&server, &bob, "ONLINE").await;

    assert_eq!(changes(&only_ana.results_within("p", QUIET).await), [change("ana", "ONLINE", "OFFLINE")]);
    assert_eq!(changes(&sales_queue.results_within("p", QUIET).await), [change("bob", "ONLINE", "OFFLINE")]);
    assert!(both_filters.results_within("p", QUIET).await.is_empty(), "ana is not in Sales");
}

async fn unknown_or_foreign_queue_is_not_found(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_organization("acme", 5, "boss", "boss-password").await;
    let admin = server.admin().await;
    let acme_admin = server.login("acme", "boss", "boss-password").await;
    let foreign = add_queue(&server, "acme", "Acme support", &[&acme_admin]).await;
    // Kept open: a later socket asking the same joins or follows a shared execution that has
    // already ended with its error, and must still get the error itself.
    let mut sockets = Vec::new();
    for queue_id in [foreign.as_str(), "not-an-id", admin.agent_id.as_str()] {
        for _ in 0..2 {
            for protocol in Protocol::BOTH {
                let mut socket = subscribe(&server, protocol, &admin, json!({ "queueId": queue_id })).await;
                let result = socket.next_result("p").await;
                let error = &result["errors"][0];
                assert_eq!(error["extensions"]["reason"], "NOT_FOUND", "{protocol:?} {queue_id}: {result}");
                sockets.push(socket);
            }
        }
    }
}

async fn ttl_lapse_emits_exactly_one_event(backend: Backend) {
    let server = TestServer::start_with(backend, fast_lapse).await;
    let admin = server.admin().await;
    let ana = add_agent(&server, "demo", "ana").await;
    let mut watcher = subscribe(&server, Protocol::TransportWs, &admin, json!({})).await;
    until_listening(&server, "presence", 1).await;

    // Reported over HTTP with no socket: only the TTL holds it.
    report(&server, &ana, "ONLINE").await;
    let events = watcher.results_within("p", Duration::from_millis(2500)).await;
    assert_eq!(changes(&events), [change("ana", "ONLINE", "OFFLINE"), change("ana", "OFFLINE", "ONLINE")]);
    let presence = server
        .gql(Some(&admin), "query($id: ID!) { agent(id: $id) { presence } }", json!({ "id": ana.agent_id }))
        .await;
    assert_eq!(presence.data()["agent"]["presence"], "OFFLINE");
}

async fn last_socket_closing_lapses_after_the_grace_and_a_reload_does_not(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        fast_lapse(config);
        config.presence_ttl = Duration::from_secs(60);
    })
    .await;
    let admin = server.admin().await;
    let ana = add_agent(&server, "demo", "ana").await;
    let mut watcher =
        subscribe(&server, Protocol::LegacyWs, &admin, json!({ "agentIds": [ana.agent_id] })).await;
    let first = WsClient::connect(&server, Protocol::TransportWs, Some(&ana)).await.unwrap();
    let second = WsClient::connect(&server, Protocol::LegacyWs, Some(&ana)).await.unwrap();
    report(&server, &ana, "ONLINE").await;
    assert_eq!(change_of(&watcher.next_result("p").await), change("ana", "ONLINE", "OFFLINE"));

    // One of two sockets closes: still ONLINE.
    first.close().await;
    assert!(watcher.results_within("p", Duration::from_secs(1)).await.is_empty());
    // A reload: the last socket closes and a new one opens within the grace.
    second.close().await;
    let reloaded = WsClient::connect(&server, Protocol::TransportWs, Some(&ana)).await.unwrap();
    assert!(watcher.results_within("p", Duration::from_secs(1)).await.is_empty(), "a reload does not flap");
    // The tab goes away: one OFFLINE after the grace, and nothing more.
    reloaded.close().await;
    let events = watcher.results_within("p", Duration::from_millis(2000)).await;
    assert_eq!(changes(&events), [change("ana", "OFFLINE", "ONLINE")]);
}

/// A balancer restarting drops every socket of an instance at once. Each close written by a
/// transaction of its own made N writers contend for the pool (and SQLite's write lock) that
/// every organization on the instance needs; one writer writes them a batch at a time.
async fn a_mass_disconnect_is_written_in_a_few_statements_not_two_a_socket(backend: Backend) {
    const SOCKETS: usize = 100;
    let server = TestServer::start_with(backend, crate::directory::without_background_sweeps).await;
    let ana = add_agent(&server, "demo", "ana").await;
    let opening = (0..SOCKETS).map(|_| WsClient::connect(&server, Protocol::TransportWs, Some(&ana)));
    let sockets: Vec<WsClient> = join_all(opening).await.into_iter().map(Result::unwrap).collect();
    let socket_rows = || async { agent_socket::Entity::find().count(server.db()).await.unwrap() };
    assert_eq!(socket_rows().await, SOCKETS as u64);

    let before = server.statements();
    join_all(sockets.into_iter().map(WsClient::close)).await;
    // The looks go through the server's connection, so they count too, and are taken off.
    let mut looks = 0;
    eventually(Duration::from_secs(10), || {
        looks += 1;
        async {
            match socket_rows().await {
                0 => Ok(()),
                left => Err(format!("{left} of {SOCKETS} closes not written")),
            }
        }
    })
    .await;
    let spent = server.statements() - before - looks;
    // Two a socket before; now two a batch, and closes arriving together share a batch.
    assert!(spent < SOCKETS as u64, "{spent} statements to write {SOCKETS} closes");
}

async fn logout_closes_that_sessions_sockets_within_a_second(backend: Backend) {
    let server = TestServer::start(backend).await;
    let leaving = server.admin().await;
    let staying = server.admin().await;
    let mut closing = Vec::new();
    for protocol in Protocol::BOTH {
        closing.push(subscribe(&server, protocol, &leaving, json!({})).await);
    }
    let mut open = subscribe(&server, Protocol::TransportWs, &staying, json!({})).await;

    assert_eq!(server.gql(Some(&leaving), "mutation { logout }", json!({})).await.data()["logout"], true);
    for (socket, protocol) in closing.iter_mut().zip(Protocol::BOTH) {
        assert_eq!(socket.ending(Duration::from_secs(1)).await, Ending::Closed(Some(4403)), "{protocol:?}");
    }
    assert_eq!(open.ending(QUIET).await, Ending::StillOpen, "another session's socket stays");
}

async fn signed_out_socket_cannot_subscribe(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    for protocol in Protocol::BOTH {
        let mut anonymous = WsClient::connect(&server, protocol, None).await.expect("acknowledged");
        anonymous.subscribe("p", PRESENCE_CHANGED, json!({})).await;
        let result = anonymous.next_result("p").await;
        assert_eq!(result["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{protocol:?}: {result}");
        report(&server, &admin, "ONLINE").await;
        assert!(anonymous.results_within("p", QUIET).await.is_empty(), "{protocol:?}");
        report(&server, &admin, "OFFLINE").await;
    }
}

async fn another_organizations_changes_never_arrive(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_organization("acme", 5, "boss", "boss-password").await;
    let boss = server.login("acme", "boss", "boss-password").await;
    let ana = add_agent(&server, "demo", "ana").await;
    let mut everything = subscribe(&server, Protocol::TransportWs, &boss, json!({})).await;
    let mut naming_ana =
        subscribe(&server, Protocol::LegacyWs, &boss, json!({ "agentIds": [ana.agent_id] })).await;
    until_listening(&server, "presence", 2).await;

    report(&server, &ana, "ONLINE").await;
    report(&server, &boss, "ONLINE").await;

    assert_eq!(changes(&everything.results_within("p", QUIET).await), [change("boss", "ONLINE", "OFFLINE")]);
    assert!(naming_ana.results_within("p", QUIET).await.is_empty());
}

/// `agentdesk serve` on `database_url` with a presence TTL of `ttl` and quick lapses.
async fn instance(database_url: &str, ttl: &str) -> ServerProcess {
    let flags = ["--presence-ttl", ttl, "--presence-grace", "300ms", "--presence-sweep-interval", "50ms"];
    ServerProcess::start_on(database_url, &flags).await
}

async fn two_instances_share_presence_and_lapse_once(backend: Backend) {
    assert_eq!(backend, Backend::Postgres, "listed with postgres_tests!");
    let database = TestDatabase::create().await;
    // The first applies migrations and creates `demo` before the second starts.
    let a = instance(&database.url, "1500ms").await;
    let b = instance(&database.url, "1500ms").await;
    let admin_on_a = a.login("admin", ADMIN_PASSWORD).await;
    let admin_on_b = b.login("admin", ADMIN_PASSWORD).await;
    let mut on_a = subscribe(&a, Protocol::TransportWs, &admin_on_a, json!({})).await;
    let mut on_b = subscribe(&b, Protocol::LegacyWs, &admin_on_b, json!({})).await;
    until_listening(&a, "presence", 1).await;
    until_listening(&b, "presence", 1).await;

    // Reported to A (no socket, so only the TTL holds it): both instances' subscribers hear
    // it, and both sweepers race to lapse it; exactly one OFFLINE reaches each.
    report(&a, &admin_on_a, "ONLINE").await;
    for (watcher, instance) in [(&mut on_a, "A"), (&mut on_b, "B")] {
        let events = watcher.results_within("p", Duration::from_secs(4)).await;
        assert_eq!(
            changes(&events),
            [change("admin", "ONLINE", "OFFLINE"), change("admin", "OFFLINE", "ONLINE")],
            "subscriber on {instance}"
        );
    }
}

async fn a_stopped_instances_sockets_lapse_on_the_survivor(backend: Backend) {
    assert_eq!(backend, Backend::Postgres, "listed with postgres_tests!");
    let database = TestDatabase::create().await;
    let mut a = instance(&database.url, "60s").await;
    let b = instance(&database.url, "60s").await;
    let password = insert_agent(&Database::connect(&database.url).await.unwrap(), "demo", "ana").await;
    let ana_on_a = a.login("ana", &password).await;
    let admin_on_b = b.login("admin", ADMIN_PASSWORD).await;
    let mut on_b = subscribe(&b, Protocol::TransportWs, &admin_on_b, json!({})).await;
    let _workspace_on_a = WsClient::connect(&a, Protocol::TransportWs, Some(&ana_on_a)).await.unwrap();
    report(&a, &ana_on_a, "ONLINE").await;
    assert_eq!(change_of(&on_b.next_result("p").await), change("ana", "ONLINE", "OFFLINE"));

    // A dies without a word: its socket no longer counts once its heartbeat is stale
    // (3 s at least), and B lapses the agent after the grace, once.
    a.kill();
    let events = on_b.results_within("p", Duration::from_secs(6)).await;
    assert_eq!(changes(&events), [change("ana", "OFFLINE", "ONLINE")]);
}

/// Sockets that subscribe with the same document and variables, as viewers of one audience,
/// share one execution (seen in /metrics); it serves the rest once its first socket closes.
async fn sockets_asking_the_same_share_one_execution_which_outlives_the_first(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let ana = add_agent(&server, "demo", "ana").await;
    let mut same = Vec::new();
    for protocol in [Protocol::TransportWs, Protocol::LegacyWs, Protocol::TransportWs] {
        same.push(subscribe(&server, protocol, &admin, json!({})).await);
    }
    let mut only_ana =
        subscribe(&server, Protocol::TransportWs, &admin, json!({ "agentIds": [ana.agent_id] })).await;
    settles_at(&server, "agentdesk_subscriptions_active", 4.0).await;
    settles_at(&server, "agentdesk_subscription_executions", 2.0).await;

    same.remove(0).close().await;
    settles_at(&server, "agentdesk_subscriptions_active", 3.0).await;
    until_listening(&server, "presence", 2).await;
    report(&server, &ana, "ONLINE").await;
    for socket in same.iter_mut().chain([&mut only_ana]) {
        assert_eq!(changes(&socket.results_within("p", QUIET).await), [change("ana", "ONLINE", "OFFLINE")]);
    }
    assert_eq!(value(&scrape(&server).await, "agentdesk_subscription_executions"), 2.0);

    for socket in same.into_iter().chain([only_ana]) {
        socket.close().await;
    }
    settles_at(&server, "agentdesk_subscription_executions", 0.0).await;
}

/// One document, three audiences: the ADMIN sees anyone's presence history, an AGENT only its
/// own; sharing must not hand one viewer's answer to another.
async fn viewers_of_different_audiences_get_their_own_answers(backend: Backend) {
    const WITH_HISTORY: &str = "subscription { presenceChanged {
        agent { username presenceHistory(first: 1) { edges { node { status } } } } } }";
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let ana = add_agent(&server, "demo", "ana").await;
    let bob = add_agent(&server, "demo", "bob").await;
    let mut sockets = Vec::new();
    for session in [&admin, &ana, &bob] {
        let mut socket =
            WsClient::connect(&server, Protocol::TransportWs, Some(session)).await.expect("acknowledged");
        socket.subscribe("p", WITH_HISTORY, json!({})).await;
        sockets.push(socket);
    }
    settles_at(&server, "agentdesk_subscription_executions", 3.0).await;

    report(&server, &bob, "ONLINE").await;
    let mut answers = Vec::new();
    for socket in &mut sockets {
        answers.push(socket.next_result("p").await);
    }
    let history = |answer: &Value| {
        answer["data"]["presenceChanged"]["agent"]["presenceHistory"]["edges"][0]["node"]["status"].clone()
    };
    let (for_admin, for_ana, for_bob) = (&answers[0], &answers[1], &answers[2]);
    assert_eq!(history(for_admin), "ONLINE", "{for_admin}");
    assert!(for_admin.get("errors").is_none(), "{for_admin}");
    assert_eq!(history(for_bob), "ONLINE", "its own: {for_bob}");
    assert_eq!(for_ana["errors"][0]["extensions"]["code"], "FORBIDDEN", "{for_ana}");
    assert_eq!(for_ana["data"]["presenceChanged"]["agent"]["username"], "bob", "{for_ana}");
}

/// A server with `AGENTS` agents whose presence changes make events of about 80 KB (200 times
/// a 400-byte name), so that the kernel's buffers for a socket that reads nothing (a few MB)
/// fill after a hundred or so and the rest wait on the server; and two admin sockets
/// subscribed to those events, one that will read nothing and one that reads them all as
/// they come (in a task of its own, which returns it once it saw every change).
struct LoudAgents {
    server: TestServer,
    agents: Vec<Session>,
    stalled: WsClient,
    /// Changes the watcher has seen so far.
    seen: Arc<AtomicUsize>,
}

impl LoudAgents {
    const AGENTS: usize = 4;
    /// How far the changes may run ahead of the watcher. The server's event bus holds 1,024
    /// events; a subscription that falls further behind it is caught up with each agent's
    /// latest change instead of every one it missed (by design), and the watcher would count
    /// fewer than were made. Debug builds process these large events slowly enough for four
    /// agents reporting at once to get ~300 ahead.
    const AHEAD: usize = 256;

    async fn start(
        backend: Backend,
        send_timeout: Duration,
        changes_each: usize,
        stalled_runs: Runs,
    ) -> (Self, JoinHandle<WsClient>) {
        let server = TestServer::start_with(backend, |config| config.ws_send_timeout = send_timeout).await;
        let admin = server.admin().await;
        let mut agents = Vec::new();
        for n in 0..Self::AGENTS {
            agents.push(add_agent(&server, "demo", &format!("loud{n}")).await);
        }
        agent::Entity::update_many()
            .col_expr(agent::Column::DisplayName, Expr::value("🙂".repeat(100)))
            .filter(agent::Column::Username.starts_with("loud"))
            .exec(server.db())
            .await
            .expect("long names");
        let names: String = (0..200).map(|n| format!(" n{n}: displayName")).collect();
        let query = format!("subscription {{ presenceChanged {{ status agent {{{names} }} }} }}");
        let mut stalled = WsClient::connect(&server, Protocol::TransportWs, Some(&admin)).await.unwrap();
        match stalled_runs {
            Runs::Shared => stalled.subscribe("p", &query, json!({})).await,
            Runs::Alone => {
                let query =
                    format!("subscription {{ presenceChanged {{ status at agent {{ username{names} }} }} }}");
                let payload = json!({ "query": query, "extensions": { "alone": true } });
                stalled.send(json!({ "id": "p", "type": "subscribe", "payload": payload })).await;
            }
        }
        let mut watcher = WsClient::connect(&server, Protocol::TransportWs, Some(&admin)).await.unwrap();
        watcher.subscribe("p", &query, json!({})).await;
        settles_at(&server, "agentdesk_subscription_executions", 1.0).await;
        settles_at(&server, "agentdesk_subscriptions_active", 2.0).await;
        // Counted as active before their streams are polled: only a bus receiver says that
        // the first change cannot be missed (one for the shared execution, one more for a
        // subscription run alone).
        let receivers = match stalled_runs {
            Runs::Shared => 1,
            Runs::Alone => 2,
        };
        until_listening(&server, "presence", receivers).await;
        let expected = Self::AGENTS * changes_each;
        let seen = Arc::new(AtomicUsize::new(0));
        let counting = seen.clone();
        let watching = tokio::spawn(async move {
            for n in 0..expected {
                // Generous: a loaded machine may stall a debug build for seconds; a lost change
                // still fails, only later.
                let result = watcher.try_next_result("p", Duration::from_secs(30)).await;
                let result = result.unwrap_or_else(|| panic!("the watcher saw {n} of {expected} changes"));
                assert!(result.get("errors").is_none(), "the watcher never falls behind: {result}");
                counting.fetch_add(1, Ordering::Relaxed);
            }
            watcher
        });
        (Self { server, agents, stalled, seen }, watching)
    }

    /// Every agent goes ONLINE and OFFLINE in turns, `changes_each` times, all at once, at
    /// most `AHEAD` changes ahead of the watcher.
    async fn change(&self, changes_each: usize) {
        let made = AtomicUsize::new(0);
        let reports = self.agents.iter().map(|agent| async {
            for change in 0..changes_each {
                self.until_the_watcher_is_near(made.load(Ordering::Relaxed)).await;
                report(&self.server, agent, if change % 2 == 0 { "ONLINE" } else { "OFFLINE" }).await;
                made.fetch_add(1, Ordering::Relaxed);
            }
        });
        join_all(reports).await;
    }

    /// Waits until the watcher has seen all but `AHEAD` of the `made` changes.
    async fn until_the_watcher_is_near(&self, made: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while made > self.seen.load(Ordering::Relaxed) + Self::AHEAD {
            let seen = self.seen.load(Ordering::Relaxed);
            assert!(
                tokio::time::Instant::now() < deadline,
                "the watcher is stuck at {seen} of {made} changes"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// How the stalled socket's subscription runs.
#[derive(Clone, Copy)]
enum Runs {
    /// In the watcher's shared execution: the same document.
    Shared,
    /// On its own, polled by its socket's task: the server shares no request that carries
    /// extensions.
    Alone,
}

/// A subscriber that reads nothing holds back no one: another one sharing its execution gets
/// every change, and once the stalled one has left `UNREAD_LIMIT` (1,024) events unread on
/// the server it is told it fell behind and its subscription ends, so nothing more is kept
/// for it.
async fn a_subscriber_that_reads_nothing_falls_behind_alone(backend: Backend) {
    const CHANGES_EACH: usize = 330;
    const UNREAD_LIMIT: usize = 1024;
    // Time enough for all the changes: this test is about the bound, not the timeout.
    let (mut loud, watching) =
        LoudAgents::start(backend, Duration::from_secs(120), CHANGES_EACH, Runs::Shared).await;
    loud.change(CHANGES_EACH).await;
    watching.await.expect("the watcher saw every change");

    let mut delivered = 0;
    let ending = loop {
        let message = loud.stalled.next_message(Duration::from_secs(10)).await.expect("the stalled backlog");
        match message["type"].as_str() {
            Some("next") if message["payload"].get("errors").is_none() => delivered += 1,
            Some("next") => break message["payload"]["errors"][0]["extensions"]["code"].clone(),
            _ => panic!("expected the subscription's events, then its error: {message}"),
        }
    };
    assert_eq!(ending, "SUBSCRIPTION_BEHIND");
    let total = LoudAgents::AGENTS * CHANGES_EACH;
    assert!((UNREAD_LIMIT..total).contains(&delivered), "{delivered} events before it fell behind");
    let complete = loud.stalled.next_message(QUIET).await.expect("the end of the subscription");
    assert_eq!((complete["type"].as_str(), complete["id"].as_str()), (Some("complete"), Some("p")));
    assert!(loud.stalled.results_within("p", QUIET).await.is_empty(), "nothing more for it");
}

/// A subscription run alone whose client reads nothing stops taking events once its socket's
/// task waits to send; when it is more than the event bus's 1,024 events behind and the client
/// reads again, it is caught up from the database with each agent's latest change (in order,
/// no duplicates) instead of every change it missed.
async fn a_subscription_far_behind_the_bus_is_caught_up_with_each_agents_latest_change(backend: Backend) {
    const CHANGES_EACH: usize = 330;
    let (mut loud, watching) =
        LoudAgents::start(backend, Duration::from_secs(120), CHANGES_EACH, Runs::Alone).await;
    loud.change(CHANGES_EACH).await;
    watching.await.expect("the watcher saw every change");

    let mut received = Vec::new();
    while let Some(result) = loud.stalled.try_next_result("p", QUIET).await {
        assert!(result.get("errors").is_none(), "{result}");
        received.push(result["data"]["presenceChanged"].clone());
    }
    let total = LoudAgents::AGENTS * CHANGES_EACH;
    assert!(received.len() < total / 2, "{} of {total} changes: it was not caught up", received.len());
    let mut latest = std::collections::HashMap::new();
    for event in &received {
        let at = chrono::DateTime::parse_from_rfc3339(event["at"].as_str().unwrap()).unwrap();
        let username = event["agent"]["username"].as_str().unwrap();
        if let Some((before, _)) = latest.insert(username, (at, event["status"].clone())) {
            assert!(before < at, "{username}: in order, once each");
        }
    }
    for n in 0..LoudAgents::AGENTS {
        // Each agent's last change (the 330th) took it OFFLINE.
        assert_eq!(latest[format!("loud{n}").as_str()].1, "OFFLINE", "loud{n}'s latest change");
    }
}

/// GraphQL allows a subscription's one root field to be selected through a fragment, but the
/// engine would end such a subscription at once with nothing; it is refused with an error
/// that says what to write instead, and the socket goes on, on both protocols.
async fn a_subscription_selected_through_a_fragment_is_refused_not_left_silent(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let ana = add_agent(&server, "demo", "ana").await;
    let mut sockets = Vec::new();
    for protocol in Protocol::BOTH {
        let mut socket = WsClient::connect(&server, protocol, Some(&admin)).await.unwrap();
        let through_fragments = [
            "subscription { ... on Subscription { presenceChanged { status } } }",
            "subscription { ...Changes } fragment Changes on Subscription { presenceChanged { status } }",
        ];
        for (n, query) in through_fragments.iter().enumerate() {
            let id = format!("f{n}");
            socket.subscribe(&id, query, json!({})).await;
            let refused = socket.next_result(&id).await;
            assert_eq!(refused["errors"][0]["extensions"]["code"], "BAD_REQUEST", "{refused}");
            assert!(refused["errors"][0]["message"].as_str().unwrap().contains("directly"), "{refused}");
            let complete = socket.next_message(QUIET).await.expect("the operation's end");
            assert_eq!((complete["type"].as_str(), complete["id"].as_str()), (Some("complete"), Some(&*id)));
        }
        // Fragments below the root are fine.
        let below =
            "subscription { presenceChanged { ...Change } } fragment Change on PresenceEvent { status }";
        socket.subscribe("p", below, json!({})).await;
        sockets.push(socket);
        // Refused operations count no more once the socket starts another.
        settles_at(&server, "agentdesk_subscriptions_active", sockets.len() as f64).await;
    }
    report(&server, &ana, "ONLINE").await;
    for socket in &mut sockets {
        let event = socket.next_result("p").await;
        assert_eq!(event["data"]["presenceChanged"]["status"], "ONLINE", "{event}");
    }
}

/// A client that reads none of what the server sends for `--ws-send-timeout` is cut off, while
/// the other socket of the same execution goes on.
async fn a_socket_that_reads_nothing_for_the_send_timeout_is_dropped(backend: Backend) {
    const CHANGES_EACH: usize = 60;
    let (mut loud, watching) =
        LoudAgents::start(backend, Duration::from_millis(500), CHANGES_EACH, Runs::Shared).await;
    loud.change(CHANGES_EACH).await;
    let _watcher = watching.await.expect("the watcher saw every change");
    settles_at(&loud.server, "agentdesk_websockets_open", 1.0).await;
    let mut delivered = 0;
    let ending = loop {
        match loud.stalled.next_message(Duration::from_secs(10)).await {
            Ok(message) => {
                assert_eq!(message["type"], "next", "{message}");
                delivered += 1;
            }
            Err(ending) => break ending,
        }
    };
    assert_eq!(ending, Ending::Closed(None), "dropped, after {delivered} events");
    assert!(delivered < LoudAgents::AGENTS * CHANGES_EACH, "it did not get them all");
}
