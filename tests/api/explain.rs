//! Explainable presence and capacity: why an agent's presence is what it is (each reason
//! produced by its real path), its history, why it is (not) given conversations (checked
//! against what the router then does), and what removing agents would do (checked against
//! what disabling then does).

use std::time::Duration;

use agentdesk::presence::model::PresenceReason;
use agentdesk::{
    config::Config,
    db::entities::{agent, agent_socket, presence_instance},
};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, TransactionTrait};
use serde_json::{Value, json};

use crate::common::{
    Backend, Session, TestServer, eventually,
    metrics::until_listening,
    ws::{Protocol, WsClient},
};

pub fn tests() -> Vec<crate::common::Test> {
    [
        crate::tests![
            reported_and_ttl_reasons_are_stored_announced_and_kept_in_history,
            closing_the_last_socket_gives_disconnected,
            disabling_and_deleting_give_their_reasons,
            a_restart_resets_presence_with_server_restart,
            history_is_pruned_after_its_retention,
            an_instance_taken_for_gone_puts_its_sockets_back,
            eligibility_and_the_router_agree_as_the_agents_state_changes,
            removal_preview_matches_what_disabling_then_does,
            removal_preview_is_for_admins_with_1_to_1000_ids,
        ],
        crate::postgres_tests![
            a_rolling_restart_keeps_presence,
            an_instance_late_to_heartbeat_is_not_taken_for_gone_at_a_start,
            a_busy_pool_does_not_silence_the_heartbeat,
            a_stopping_instances_agents_get_the_grace_to_reconnect_elsewhere
        ],
    ]
    .concat()
}

const PRESENCE_CHANGED: &str = "subscription { presenceChanged { status reason agent { username } } }";

const AGENT: &str = "query($id: ID!) { agent(id: $id) {
    presence presenceReason remainingCapacity activeSessions
    assignmentEligibility { eligible reasons }
    presenceHistory(first: 10) { edges { node { status reason at } } } } }";

fn fast_lapse(config: &mut Config) {
    config.presence_ttl = Duration::from_millis(600);
    config.presence_grace = Duration::from_millis(400);
    config.presence_sweep_interval = Duration::from_millis(50);
}

/// A new AGENT of `demo` (created through the API), signed in.
async fn new_agent(server: &TestServer, admin: &Session, username: &str, extra: Value) -> Session {
    let mut input = json!({ "displayName": username, "username": username, "password": "secret-1" });
    input.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
    let created = server
        .gql(
            Some(admin),
            "mutation($input: CreateAgentInput!) { createAgent(input: $input) { agent { id } userErrors { code } } }",
            json!({ "input": input }),
        )
        .await
        .data();
    assert!(created["createAgent"]["agent"].is_object(), "{created}");
    server.login("demo", username, "secret-1").await
}

async fn report(server: &TestServer, session: &Session, status: &str) {
    let query = "mutation($status: PresenceStatus!) { reportPresence(status: $status) { presence } }";
    server.gql(Some(session), query, json!({ "status": status })).await.data();
}

/// The ADMIN, signed in, and a new agent, ana, who reported ONLINE (over HTTP: no socket).
async fn ana_reported_online(server: &TestServer) -> (Session, Session) {
    let admin = server.admin().await;
    let ana = new_agent(server, &admin, "ana", json!({})).await;
    report(server, &ana, "ONLINE").await;
    (admin, ana)
}

/// An agent's presence and its reason, as `agent` read them.
fn presence_of(agent: &Value) -> (Option<&str>, Option<&str>) {
    (agent["presence"].as_str(), agent["presenceReason"].as_str())
}

async fn agent(server: &TestServer, viewer: &Session, id: &str) -> Value {
    server.gql(Some(viewer), AGENT, json!({ "id": id })).await.data()["agent"].clone()
}

/// (status, reason) of each history entry, newest first.
fn history(agent: &Value) -> Vec<(String, String)> {
    agent["presenceHistory"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| {
            let node = &edge["node"];
            (node["status"].as_str().unwrap().to_owned(), node["reason"].as_str().unwrap().to_owned())
        })
        .collect()
}

fn entry(status: &str, reason: &str) -> (String, String) {
    (status.into(), reason.into())
}

/// (username, status, reason) of presence events.
fn events(results: &[Value]) -> Vec<(String, String, String)> {
    results
        .iter()
        .map(|result| {
            let event = &result["data"]["presenceChanged"];
            assert!(result.get("errors").is_none(), "{result}");
            (
                event["agent"]["username"].as_str().unwrap_or_default().to_owned(),
                event["status"].as_str().unwrap().to_owned(),
                event["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn event(username: &str, status: &str, reason: &str) -> (String, String, String) {
    (username.into(), status.into(), reason.into())
}

async fn watch(server: &TestServer, admin: &Session) -> WsClient {
    let mut socket =
        WsClient::connect(server, Protocol::TransportWs, Some(admin)).await.expect("acknowledged");
    socket.subscribe("p", PRESENCE_CHANGED, json!({})).await;
    until_listening(server, "presence", 1).await;
    socket
}

async fn reported_and_ttl_reasons_are_stored_announced_and_kept_in_history(backend: Backend) {
    let server = TestServer::start_with(backend, fast_lapse).await;
    let admin = server.admin().await;
    let ana = new_agent(&server, &admin, "ana", json!({})).await;
    let bob = new_agent(&server, &admin, "bob", json!({})).await;
    assert_eq!(agent(&server, &admin, &ana.agent_id).await["presenceReason"], Value::Null, "never changed");
    let mut watcher = watch(&server, &admin).await;

    // Reported over HTTP with no socket: only the TTL holds it.
    report(&server, &ana, "ONLINE").await;
    let seen = watcher.results_within("p", Duration::from_millis(2500)).await;
    assert_eq!(events(&seen), [event("ana", "ONLINE", "REPORTED"), event("ana", "OFFLINE", "TTL_EXPIRED")]);
    let lapsed = agent(&server, &ana, &ana.agent_id).await;
    assert_eq!(presence_of(&lapsed), (Some("OFFLINE"), Some("TTL_EXPIRED")));
    assert_eq!(history(&lapsed), [entry("OFFLINE", "TTL_EXPIRED"), entry("ONLINE", "REPORTED")]);

    report(&server, &ana, "ONLINE").await;
    report(&server, &ana, "OFFLINE").await;
    let reported = agent(&server, &admin, &ana.agent_id).await;
    assert_eq!(reported["presenceReason"], "REPORTED");
    assert_eq!(history(&reported)[..2], [entry("OFFLINE", "REPORTED"), entry("ONLINE", "REPORTED")]);

    // `since` and pages.
    let page = server
        .gql(
            Some(&admin),
            "query($id: ID!, $since: DateTime) { agent(id: $id) { presenceHistory(first: 1, since: $since) {
                pageInfo { hasNextPage endCursor } edges { node { status at } } } } }",
            json!({ "id": ana.agent_id, "since": chrono::Utc::now() - chrono::Duration::hours(1) }),
        )
        .await
        .data();
    let connection = &page["agent"]["presenceHistory"];
    assert_eq!(connection["edges"].as_array().unwrap().len(), 1);
    assert_eq!(connection["pageInfo"]["hasNextPage"], true);
    let future = server
        .gql(
            Some(&admin),
            "query($id: ID!, $since: DateTime) { agent(id: $id) { presenceHistory(since: $since) { edges { cursor } } } }",
            json!({ "id": ana.agent_id, "since": chrono::Utc::now() + chrono::Duration::hours(1) }),
        )
        .await
        .data();
    assert_eq!(future["agent"]["presenceHistory"]["edges"], json!([]));

    // An AGENT reads its own history only.
    let foreign = server
        .gql(
            Some(&bob),
            "query($id: ID!) { agent(id: $id) { presenceHistory { edges { cursor } } } }",
            json!({ "id": ana.agent_id }),
        )
        .await;
    assert_eq!(foreign.error_code(), "FORBIDDEN");
}

async fn closing_the_last_socket_gives_disconnected(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        fast_lapse(config);
        config.presence_ttl = Duration::from_secs(60);
    })
    .await;
    let admin = server.admin().await;
    let ana = new_agent(&server, &admin, "ana", json!({})).await;
    let mut watcher = watch(&server, &admin).await;
    let workspace = WsClient::connect(&server, Protocol::TransportWs, Some(&ana)).await.unwrap();
    report(&server, &ana, "ONLINE").await;
    workspace.close().await;
    let seen = watcher.results_within("p", Duration::from_millis(2000)).await;
    assert_eq!(events(&seen), [event("ana", "ONLINE", "REPORTED"), event("ana", "OFFLINE", "DISCONNECTED")]);
    let now = agent(&server, &admin, &ana.agent_id).await;
    assert_eq!(now["presenceReason"], "DISCONNECTED");
    assert_eq!(history(&now)[0], entry("OFFLINE", "DISCONNECTED"));
}

async fn disabling_and_deleting_give_their_reasons(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let ana = new_agent(&server, &admin, "ana", json!({})).await;
    let bob = new_agent(&server, &admin, "bob", json!({})).await;
    report(&server, &ana, "ONLINE").await;
    report(&server, &bob, "ONLINE").await;
    let mut watcher = watch(&server, &admin).await;

    let disabled = server
        .gql(
            Some(&admin),
            "mutation($ids: [ID!]!) { setAgentsEnabled(ids: $ids, enabled: false) { affectedCount } }",
            json!({ "ids": [ana.agent_id] }),
        )
        .await;
    assert_eq!(disabled.data()["setAgentsEnabled"]["affectedCount"], 1);
    let deleted = server
        .gql(
            Some(&admin),
            "mutation($id: ID!) { deleteAgent(id: $id) { deletedCount } }",
            json!({ "id": bob.agent_id }),
        )
        .await;
    assert_eq!(deleted.data()["deleteAgent"]["deletedCount"], 1);

    let seen = watcher.results_within("p", Duration::from_millis(1000)).await;
    assert_eq!(events(&seen), [event("ana", "OFFLINE", "DISABLED"), event("bob", "OFFLINE", "DELETED")]);
    let ana_now = agent(&server, &admin, &ana.agent_id).await;
    assert_eq!(ana_now["presenceReason"], "DISABLED");
    assert_eq!(history(&ana_now), [entry("OFFLINE", "DISABLED"), entry("ONLINE", "REPORTED")]);
    // A deleted agent is gone from the API; its row keeps why it went offline.
    let bob_row = agent::Entity::find()
        .filter(agent::Column::Username.eq("bob"))
        .one(server.db())
        .await
        .unwrap()
        .expect("deleted agents keep their row");
    assert_eq!(bob_row.presence_reason, Some(PresenceReason::Deleted));
}

async fn a_restart_resets_presence_with_server_restart(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (_, ana) = ana_reported_online(&server).await;

    // The only instance stops and starts again: nobody kept ana's presence meanwhile.
    let server = server.restart().await;
    let admin = server.admin().await;
    let now = agent(&server, &admin, &ana.agent_id).await;
    assert_eq!(presence_of(&now), (Some("OFFLINE"), Some("SERVER_RESTART")));
    assert_eq!(history(&now), [entry("OFFLINE", "SERVER_RESTART"), entry("ONLINE", "REPORTED")]);
    let admin_now = agent(&server, &admin, &admin.agent_id).await;
    assert_eq!(admin_now["presenceReason"], Value::Null, "an agent that was OFFLINE is left alone");
}

async fn a_rolling_restart_keeps_presence(backend: Backend) {
    assert_eq!(backend, Backend::Postgres, "listed with postgres_tests!");
    let first = TestServer::start(backend).await;
    let (admin, ana) = ana_reported_online(&first).await;

    // A new instance starts while the first is alive: presence is the first one's to keep.
    let second = first.another_instance().await;
    let now = agent(&second, &admin, &ana.agent_id).await;
    assert_eq!(presence_of(&now), (Some("ONLINE"), Some("REPORTED")));
    assert_eq!(history(&now), [entry("ONLINE", "REPORTED")]);
    second.stop().await;
    first.stop().await;
}

/// A busy instance heart-beats late; one starting meanwhile must not take it for gone and
/// reset every organization's presence, those of the agents it still serves included.
async fn an_instance_late_to_heartbeat_is_not_taken_for_gone_at_a_start(backend: Backend) {
    assert_eq!(backend, Backend::Postgres, "listed with postgres_tests!");
    // This instance heart-beats when it starts and then not again during the test.
    let first =
        TestServer::start_with(backend, |config| config.presence_sweep_interval = Duration::from_secs(3600))
            .await;
    let (admin, ana) = ana_reported_online(&first).await;
    // Its last heartbeat 30 s ago, as a sweeper stuck behind a busy pool leaves it: three
    // times the instance timeout of the one starting now (ten sweeps of one second).
    first
        .db()
        .execute_unprepared("UPDATE presence_instances SET heartbeat_at = now() - interval '30 seconds'")
        .await
        .unwrap();
    let second =
        first.another_instance_with(|config| config.presence_sweep_interval = Duration::from_secs(1)).await;
    let now = agent(&second, &admin, &ana.agent_id).await;
    assert_eq!(presence_of(&now), (Some("ONLINE"), Some("REPORTED")), "{now}");
    second.stop().await;
    first.stop().await;
}

/// Requests holding every pooled connection (a burst of writes, a backlog after an outage)
/// must not stop the instance's heartbeat: after the instance timeout the other instances
/// would take it for gone and release its agents' sockets.
async fn a_busy_pool_does_not_silence_the_heartbeat(backend: Backend) {
    assert_eq!(backend, Backend::Postgres, "listed with postgres_tests!");
    let server =
        TestServer::start_with(backend, |config| config.presence_sweep_interval = Duration::from_millis(100))
            .await;
    let mut held = Vec::new();
    for _ in 0..Config::defaults().database_pool_size {
        held.push(server.db().begin().await.unwrap());
    }
    let (observer, _) = agentdesk::db::connect(&server.database_url(), 1).await.unwrap();
    // Since the pool filled.
    a_heartbeat_after(&observer, chrono::Utc::now(), Duration::from_secs(3)).await;
    drop(held);
}

/// A rolling restart: the stopping instance closes its sockets, and their agents get the
/// grace to reconnect to another instance, as when any socket closes; they lapsed at the other
/// instances' next sweep before (a second at most, by default).
async fn a_stopping_instances_agents_get_the_grace_to_reconnect_elsewhere(backend: Backend) {
    assert_eq!(backend, Backend::Postgres, "listed with postgres_tests!");
    let mut first =
        TestServer::start_with(backend, |config| config.presence_grace = Duration::from_secs(60)).await;
    let second = first
        .another_instance_with(|config| config.presence_sweep_interval = Duration::from_millis(50))
        .await;
    let (admin, ana) = ana_reported_online(&first).await;
    let _workspace =
        WsClient::connect(&first, Protocol::TransportWs, Some(&ana)).await.expect("acknowledged");

    first.stop_keeping_database().await;
    let observer = second.db();
    a_sweep_ran_after(observer, chrono::Utc::now()).await;
    let now = agent(&second, &admin, &ana.agent_id).await;
    assert_eq!(presence_of(&now), (Some("ONLINE"), Some("REPORTED")), "{now}");

    // Her workspace reconnects to the second instance within the grace: she stays ONLINE.
    let _reconnected =
        WsClient::connect(&second, Protocol::TransportWs, Some(&ana)).await.expect("acknowledged");
    let row = agent::Entity::find_by_id(crate::common::number_of(&ana.agent_id))
        .one(observer)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.presence_grace_until, None, "a socket is open again");
    second.stop().await;
}

/// An instance the others took for gone (no heartbeat for the instance timeout: its runtime
/// stalled, or its link to the database was cut) had its sockets released; its next heartbeat
/// finds its row gone and puts them back, so agents still connected to it do not lapse.
async fn an_instance_taken_for_gone_puts_its_sockets_back(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        fast_lapse(config);
        config.presence_ttl = Duration::from_secs(60);
    })
    .await;
    let (admin, ana) = ana_reported_online(&server).await;
    let workspace =
        WsClient::connect(&server, Protocol::TransportWs, Some(&ana)).await.expect("acknowledged");
    let db = server.db();
    let ana_id = crate::common::number_of(&ana.agent_id);
    let sockets_of_ana =
        || agent_socket::Entity::find().filter(agent_socket::Column::AgentId.eq(ana_id)).all(db);
    let held = sockets_of_ana().await.unwrap();
    assert_eq!(held.len(), 1);

    // What another instance's sweep does when it takes this one for gone: its row and its
    // sockets deleted, their agents' grace started.
    let tx = db.begin().await.unwrap();
    presence_instance::Entity::delete_many().exec(&tx).await.unwrap();
    agent_socket::Entity::delete_many().exec(&tx).await.unwrap();
    let grace_until = chrono::Utc::now() + chrono::Duration::milliseconds(400);
    agent::Entity::update_many()
        .set(agent::ActiveModel { presence_grace_until: Set(Some(grace_until)), ..Default::default() })
        .filter(agent::Column::Id.eq(ana_id))
        .exec(&tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    eventually(Duration::from_secs(3), || async {
        let now = sockets_of_ana().await.map_err(|e| e.to_string())?;
        if now == held { Ok(()) } else { Err(format!("ana's sockets {now:?}, before {held:?}")) }
    })
    .await;
    a_sweep_ran_after(db, grace_until).await;
    let now = agent(&server, &admin, &ana.agent_id).await;
    assert_eq!(presence_of(&now), (Some("ONLINE"), Some("REPORTED")), "past the grace: {now}");

    // The socket put back is the one that closes: ana then lapses as usual.
    workspace.close().await;
    let now = eventually(Duration::from_secs(3), || async {
        let now = agent(&server, &admin, &ana.agent_id).await;
        if presence_of(&now).0 == Some("OFFLINE") { Ok(now) } else { Err(format!("{now}")) }
    })
    .await;
    assert_eq!(presence_of(&now), (Some("OFFLINE"), Some("DISCONNECTED")));
}

/// Waits until a whole sweep of some instance began after `moment`: its heartbeat renewed
/// twice since then.
async fn a_sweep_ran_after(db: &sea_orm::DatabaseConnection, moment: chrono::DateTime<chrono::Utc>) {
    let once = a_heartbeat_after(db, moment, Duration::from_secs(5)).await;
    a_heartbeat_after(db, once, Duration::from_secs(5)).await;
}

/// Waits, at most `within`, until some instance heart-beats after `moment`; returns when.
async fn a_heartbeat_after(
    db: &sea_orm::DatabaseConnection,
    moment: chrono::DateTime<chrono::Utc>,
    within: Duration,
) -> chrono::DateTime<chrono::Utc> {
    eventually(within, || async {
        let beats = presence_instance::Entity::find().all(db).await.map_err(|e| e.to_string())?;
        let latest = beats.iter().map(|instance| instance.heartbeat_at).max();
        match latest {
            Some(at) if at > moment => Ok(at),
            _ => Err(format!("heartbeats {beats:?}, none after {moment}")),
        }
    })
    .await
}

async fn history_is_pruned_after_its_retention(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.presence_sweep_interval = Duration::from_millis(50);
        config.presence_history_retention = Duration::from_millis(800);
    })
    .await;
    let admin = server.admin().await;
    report(&server, &admin, "ONLINE").await;
    assert_eq!(history(&agent(&server, &admin, &admin.agent_id).await).len(), 1);
    // The sweeper prunes within an interval once the entry is older than the retention.
    let now = eventually(Duration::from_secs(5), || async {
        let now = agent(&server, &admin, &admin.agent_id).await;
        if history(&now).is_empty() { Ok(now) } else { Err(format!("history still holds {now}")) }
    })
    .await;
    assert_eq!(now["presenceReason"], "REPORTED", "the current reason stays");
}

// ---- eligibility ----

struct Desk {
    server: TestServer,
    admin: Session,
}

impl Desk {
    async fn start(backend: Backend) -> Self {
        let server = TestServer::start(backend).await;
        let admin = server.admin().await;
        Self { server, admin }
    }

    async fn queue(&self, name: &str) -> String {
        let created = self
            .server
            .gql(
                Some(&self.admin),
                "mutation($name: String!) { createQueue(input: { name: $name }) { queue { id } } }",
                json!({ "name": name }),
            )
            .await
            .data();
        created["createQueue"]["queue"]["id"].as_str().unwrap().to_owned()
    }

    /// A new conversation on the queue: its id and the agent it went to, if any.
    async fn contact(&self, queue: &str) -> (String, Option<String>) {
        let created = self
            .server
            .gql(
                Some(&self.admin),
                "mutation($queue: ID!) { createConversation(input: { queueId: $queue }) {
                    conversation { id assignedAgent { username } } userErrors { code } } }",
                json!({ "queue": queue }),
            )
            .await
            .data();
        let conversation = &created["createConversation"]["conversation"];
        assert!(conversation.is_object(), "{created}");
        (
            conversation["id"].as_str().unwrap().to_owned(),
            conversation["assignedAgent"]["username"].as_str().map(str::to_owned),
        )
    }

    async fn close(&self, conversation: &str) {
        let closed = self
            .server
            .gql(
                Some(&self.admin),
                "mutation($id: ID!) { closeConversation(id: $id) { userErrors { code } } }",
                json!({ "id": conversation }),
            )
            .await
            .data();
        assert_eq!(closed["closeConversation"]["userErrors"], json!([]));
    }

    /// Whether the router gives a new conversation of the queue to `username` now; the probe
    /// is closed again, so the agent's load is as it was.
    async fn router_assigns(&self, queue: &str, username: &str) -> bool {
        let (conversation, holder) = self.contact(queue).await;
        self.close(&conversation).await;
        holder.as_deref() == Some(username)
    }

    async fn update(&self, id: &str, changes: Value) {
        let mut input = changes;
        input["id"] = json!(id);
        let updated = self
            .server
            .gql(
                Some(&self.admin),
                "mutation($input: UpdateAgentInput!) { updateAgent(input: $input) { userErrors { code } } }",
                json!({ "input": input }),
            )
            .await
            .data();
        assert_eq!(updated["updateAgent"]["userErrors"], json!([]));
    }

    /// (eligible, reasons, remainingCapacity) of the agent.
    async fn eligibility(&self, id: &str) -> (bool, Vec<String>, Value) {
        let found = agent(&self.server, &self.admin, id).await;
        let eligibility = &found["assignmentEligibility"];
        let reasons = eligibility["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_owned())
            .collect();
        (eligibility["eligible"].as_bool().unwrap(), reasons, found["remainingCapacity"].clone())
    }
}

fn reasons(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

async fn eligibility_and_the_router_agree_as_the_agents_state_changes(backend: Backend) {
    let desk = Desk::start(backend).await;
    let support = desk.queue("Support").await;
    let ann = new_agent(
        &desk.server,
        &desk.admin,
        "ann",
        json!({ "queueIds": [support], "maxConcurrentSessions": 1 }),
    )
    .await;
    let id = ann.agent_id.as_str();

    // Each state: what the field says, then what the router does with a new conversation.
    assert_eq!(desk.eligibility(id).await, (false, reasons(&["OFFLINE"]), json!(1)));
    assert!(!desk.router_assigns(&support, "ann").await);

    report(&desk.server, &ann, "ONLINE").await;
    assert_eq!(desk.eligibility(id).await, (true, reasons(&[]), json!(1)));
    assert!(desk.router_assigns(&support, "ann").await);

    let (held, holder) = desk.contact(&support).await;
    assert_eq!(holder.as_deref(), Some("ann"));
    assert_eq!(desk.eligibility(id).await, (false, reasons(&["AT_CAPACITY"]), json!(0)));
    assert!(!desk.router_assigns(&support, "ann").await);

    desk.update(id, json!({ "maxConcurrentSessions": 2 })).await;
    assert_eq!(desk.eligibility(id).await, (true, reasons(&[]), json!(1)));
    assert!(desk.router_assigns(&support, "ann").await);

    desk.update(id, json!({ "maxConcurrentSessions": null })).await;
    assert_eq!(desk.eligibility(id).await, (true, reasons(&[]), Value::Null), "unlimited");

    // While the service is off nothing is assigned (conversations cannot even be created).
    desk.server.set_human_agent_service("demo", false).await;
    assert_eq!(desk.eligibility(id).await, (false, reasons(&["SERVICE_DISABLED"]), Value::Null));
    desk.server.set_human_agent_service("demo", true).await;

    desk.update(id, json!({ "queueIds": [] })).await;
    assert_eq!(desk.eligibility(id).await, (false, reasons(&["NO_QUEUE"]), Value::Null));
    assert!(!desk.router_assigns(&support, "ann").await);

    desk.close(&held).await;
    desk.update(id, json!({ "enabled": false, "queueIds": [support] })).await;
    assert_eq!(desk.eligibility(id).await, (false, reasons(&["DISABLED", "OFFLINE"]), Value::Null));
    assert!(!desk.router_assigns(&support, "ann").await);
}

// ---- removal preview ----

const PREVIEW: &str = "query($ids: [ID!]!) { previewAgentRemoval(ids: $ids) {
    agents { username } notFoundIds requeuedConversations seatsFreed
    queuesLeftWithoutEligibleAgent { name } } }";

async fn quota_used(desk: &Desk) -> i64 {
    let usage =
        desk.server.gql(Some(&desk.admin), "{ usage { agentQuota { used } } }", json!({})).await.data();
    usage["usage"]["agentQuota"]["used"].as_i64().unwrap()
}

async fn removal_preview_matches_what_disabling_then_does(backend: Backend) {
    let desk = Desk::start(backend).await;
    let support = desk.queue("Support").await;
    let sales = desk.queue("Sales").await;
    let ann = new_agent(&desk.server, &desk.admin, "ann", json!({ "queueIds": [support, sales] })).await;
    let ben = new_agent(&desk.server, &desk.admin, "ben", json!({ "queueIds": [support] })).await;
    report(&desk.server, &ann, "ONLINE").await;
    report(&desk.server, &ben, "ONLINE").await;
    let mut anns = vec![];
    for queue in [&sales, &support, &support] {
        let (conversation, holder) = desk.contact(queue).await;
        if holder.as_deref() == Some("ann") {
            anns.push(conversation);
        }
    }
    assert_eq!(anns.len(), 2, "ann holds one of each queue (least busy, then idle longest)");

    let bogus = desk.queue("Not an agent").await;
    let preview =
        desk.server.gql(Some(&desk.admin), PREVIEW, json!({ "ids": [ann.agent_id, bogus] })).await.data();
    let preview = &preview["previewAgentRemoval"];
    assert_eq!(preview["agents"], json!([{ "username": "ann" }]));
    assert_eq!(preview["notFoundIds"], json!([bogus]));
    assert_eq!(preview["requeuedConversations"], 2);
    assert_eq!(preview["queuesLeftWithoutEligibleAgent"], json!([{ "name": "Sales" }]));
    assert_eq!(preview["seatsFreed"], 1);

    // What disabling then really does.
    let disabled = desk
        .server
        .gql(
            Some(&desk.admin),
            "mutation($ids: [ID!]!) { setAgentsEnabled(ids: $ids, enabled: false) { affectedCount } }",
            json!({ "ids": [ann.agent_id] }),
        )
        .await;
    assert_eq!(disabled.data()["setAgentsEnabled"]["affectedCount"], 1);
    let mut requeued = 0;
    let mut waiting_in = vec![];
    for conversation in &anns {
        let now = desk
            .server
            .gql(
                Some(&desk.admin),
                "query($id: ID!) { conversation(id: $id) { status assignedAgent { username } queue { name } } }",
                json!({ "id": conversation }),
            )
            .await
            .data();
        let now = &now["conversation"];
        if now["assignedAgent"]["username"] != "ann" {
            requeued += 1;
        }
        if now["status"] == "WAITING" {
            waiting_in.push(now["queue"]["name"].clone());
        }
    }
    assert_eq!(requeued, 2, "as previewed");
    assert_eq!(waiting_in, [json!("Sales")], "only the previewed queue is left waiting");

    // Deleting frees the seats the preview said.
    let before = quota_used(&desk).await;
    let deleted = desk
        .server
        .gql(
            Some(&desk.admin),
            "mutation($id: ID!) { deleteAgent(id: $id) { deletedCount } }",
            json!({ "id": ann.agent_id }),
        )
        .await;
    assert_eq!(deleted.data()["deleteAgent"]["deletedCount"], 1);
    assert_eq!(before - quota_used(&desk).await, 1);
}

async fn removal_preview_is_for_admins_with_1_to_1000_ids(backend: Backend) {
    let desk = Desk::start(backend).await;
    let ann = new_agent(&desk.server, &desk.admin, "ann", json!({})).await;
    let refused = desk.server.gql(Some(&ann), PREVIEW, json!({ "ids": [ann.agent_id] })).await;
    assert_eq!(refused.error_code(), "FORBIDDEN");
    for ids in [json!([]), json!(vec![ann.agent_id.clone(); 1001])] {
        let response = desk.server.gql(Some(&desk.admin), PREVIEW, json!({ "ids": ids })).await;
        assert_eq!(response.error_code(), "BAD_REQUEST");
        assert_eq!(response.errors()[0]["extensions"]["reason"], "TOO_MANY_IDS");
    }
    // A preview writes nothing.
    let preview = desk.server.gql(Some(&desk.admin), PREVIEW, json!({ "ids": [ann.agent_id] })).await.data();
    assert_eq!(preview["previewAgentRemoval"]["seatsFreed"], 1);
    let still = agent(&desk.server, &desk.admin, &ann.agent_id).await;
    assert!(still.is_object());
}
