//! One organization's IDs, tried by another organization's ADMIN on every root field of the
//! schema. The fields come from introspection, so a new query, mutation or subscription
//! without a probe here fails the test instead of going unchecked.

use std::{num::NonZeroU32, time::Duration};

use serde_json::{Value, json};

use crate::common::{
    Backend, Session, TestServer,
    server::ADMIN_PASSWORD,
    ws::{Protocol, WsClient},
};

pub fn tests() -> Vec<crate::common::Test> {
    crate::tests![every_root_field_treats_another_organizations_ids_as_absent]
}

/// What a probe must see, beyond "nothing of the other organization in the response".
#[derive(Clone, Copy)]
enum Expect {
    /// `data.<field>` is null.
    Null,
    /// The payload's userErrors say NOT_FOUND (nothing written).
    NotFound,
    /// Only the absence of the other organization's data (fields with no ID to probe).
    NoLeak,
    /// A preview that finds no agent and would free no seat.
    NothingFound,
    /// A subscription: NOT_FOUND at once, or no event while the other organization changes.
    Silent,
}

/// Root field, what it must do, and the document; `$agent`, `$queue`, `$conversation` and
/// `$org` are the other organization's IDs.
const PROBES: &[(&str, Expect, &str)] = &[
    ("viewer", Expect::NoLeak, "{ viewer { id username } }"),
    ("organization", Expect::NoLeak, "{ organization { id name slug } }"),
    ("usage", Expect::NoLeak, "{ usage { agentQuota { used } monthlySessions } }"),
    ("agent", Expect::Null, "query($agent: ID!) { agent(id: $agent) { id } }"),
    (
        "agents",
        Expect::NoLeak,
        "query($queue: ID!) { a: agents { nodes { id username } } agents(filter: { queueId: $queue }) { totalCount nodes { id } } }",
    ),
    ("queue", Expect::Null, "query($queue: ID!) { queue(id: $queue) { id } }"),
    (
        "previewAgentRemoval",
        Expect::NothingFound,
        "query($agent: ID!) { previewAgentRemoval(ids: [$agent]) { agents { id } requeuedConversations seatsFreed queuesLeftWithoutEligibleAgent { id } } }",
    ),
    ("queues", Expect::NoLeak, "{ queues { nodes { id name } } }"),
    ("conversation", Expect::Null, "query($conversation: ID!) { conversation(id: $conversation) { id } }"),
    (
        "conversations",
        Expect::NoLeak,
        "query($queue: ID!) { a: conversations { nodes { id } } conversations(queueId: $queue) { totalCount nodes { id customerName } } }",
    ),
    ("node", Expect::Null, "query($agent: ID!) { node(id: $agent) { id } }"),
    (
        "auditLog",
        Expect::NoLeak,
        "query($agent: ID!) { a: auditLog { nodes { id actorUsername targetId } } auditLog(filter: { targetId: $agent }) { nodes { id targetId } } }",
    ),
    (
        "login",
        Expect::NoLeak,
        "mutation { login(input: { organization: \"beta\", username: \"alpha-agent\", password: \"secret-1\" }) { token userErrors { code } } }",
    ),
    ("logout", Expect::NoLeak, "mutation { logout }"),
    (
        "endSession",
        Expect::NotFound,
        "mutation($session: ID!) { endSession(id: $session) { endedSessionId userErrors { code } } }",
    ),
    ("logoutEverywhere", Expect::NoLeak, "mutation { logoutEverywhere(includeCurrent: true) }"),
    (
        "createAgent",
        Expect::NotFound,
        "mutation($queue: ID!) { createAgent(input: { displayName: \"X\", username: \"probe\", password: \"secret-1\", queueIds: [$queue] }) { agent { id } userErrors { code } } }",
    ),
    (
        "updateAgent",
        Expect::NotFound,
        "mutation($agent: ID!) { updateAgent(input: { id: $agent, displayName: \"Owned\" }) { agent { id } userErrors { code } } }",
    ),
    (
        "deleteAgent",
        Expect::NotFound,
        "mutation($agent: ID!) { deleteAgent(id: $agent) { deletedIds userErrors { code } } }",
    ),
    (
        "setAgentsEnabled",
        Expect::NotFound,
        "mutation($agent: ID!) { setAgentsEnabled(ids: [$agent], enabled: false) { affectedCount userErrors { code } } }",
    ),
    (
        "deleteAgents",
        Expect::NotFound,
        "mutation($agent: ID!) { deleteAgents(ids: [$agent]) { deletedIds userErrors { code } } }",
    ),
    (
        "createQueue",
        Expect::NoLeak,
        "mutation { createQueue(input: { name: \"alpha-queue\" }) { queue { id } userErrors { code } } }",
    ),
    (
        "updateQueue",
        Expect::NotFound,
        "mutation($queue: ID!) { updateQueue(input: { id: $queue, name: \"Owned\" }) { queue { id } userErrors { code } } }",
    ),
    (
        "deleteQueue",
        Expect::NotFound,
        "mutation($queue: ID!) { deleteQueue(id: $queue) { deletedId userErrors { code } } }",
    ),
    (
        "addAgentsToQueue",
        Expect::NotFound,
        "mutation($queue: ID!, $agent: ID!) { addAgentsToQueue(queueId: $queue, agentIds: [$agent]) { queue { id } userErrors { code } } }",
    ),
    (
        "removeAgentsFromQueue",
        Expect::NotFound,
        "mutation($queue: ID!, $agent: ID!) { removeAgentsFromQueue(queueId: $queue, agentIds: [$agent]) { queue { id } userErrors { code } } }",
    ),
    ("reportPresence", Expect::NoLeak, "mutation { reportPresence(status: OFFLINE) { id } }"),
    (
        "createConversation",
        Expect::NotFound,
        "mutation($queue: ID!) { createConversation(input: { queueId: $queue }) { conversation { id } userErrors { code } } }",
    ),
    (
        "closeConversation",
        Expect::NotFound,
        "mutation($conversation: ID!) { closeConversation(id: $conversation) { conversation { id } userErrors { code } } }",
    ),
    (
        "presenceChanged",
        Expect::Silent,
        "subscription($queue: ID!, $agent: ID!) { presenceChanged(queueId: $queue, agentIds: [$agent]) { agent { id } } }",
    ),
    ("agentDirectoryChanged", Expect::Silent, "subscription { agentDirectoryChanged { agentId } }"),
    ("myConversations", Expect::Silent, "subscription { myConversations { conversation { id } } }"),
    (
        "conversationChanged",
        Expect::Silent,
        "subscription { conversationChanged { conversation { id customerName } } }",
    ),
];

/// The other organization ("demo"): an agent in a queue, and a conversation assigned to it.
struct Alpha {
    admin: Session,
    agent: Session,
    /// The global ID of the agent's session.
    session: String,
    queue: String,
    conversation: String,
    org: String,
}

impl Alpha {
    fn variables(&self) -> Value {
        json!({
            "agent": self.agent.agent_id, "queue": self.queue, "conversation": self.conversation,
            "org": self.org, "session": self.session,
        })
    }

    /// Strings that must never reach the other organization.
    fn secrets(&self) -> Vec<String> {
        vec![
            self.agent.agent_id.clone(),
            self.admin.agent_id.clone(),
            self.queue.clone(),
            self.conversation.clone(),
            self.org.clone(),
            self.session.clone(),
            "alpha-agent".into(),
            "Alpha Customer".into(),
        ]
    }
}

async fn alpha(server: &TestServer) -> Alpha {
    let admin = server.admin().await;
    let data = server
        .gql(
            Some(&admin),
            "mutation { createQueue(input: { name: \"alpha-queue\" }) { queue { id } } }",
            json!({}),
        )
        .await
        .data();
    let queue = data["createQueue"]["queue"]["id"].as_str().unwrap().to_owned();
    server
        .gql(
            Some(&admin),
            "mutation($queue: ID!) { createAgent(input: { displayName: \"Alpha\", username: \"alpha-agent\", password: \"secret-1\", queueIds: [$queue] }) { agent { id } } }",
            json!({ "queue": queue }),
        )
        .await
        .data();
    let agent = server.login("demo", "alpha-agent", "secret-1").await;
    server.gql(Some(&agent), "mutation { reportPresence(status: ONLINE) { id } }", json!({})).await.data();
    let data = server
        .gql(
            Some(&admin),
            "mutation($queue: ID!) { createConversation(input: { queueId: $queue, customerName: \"Alpha Customer\" }) { conversation { id assignedAgent { id } } } }",
            json!({ "queue": queue }),
        )
        .await
        .data();
    let conversation = data["createConversation"]["conversation"]["id"].as_str().unwrap().to_owned();
    let org =
        server.gql(Some(&admin), "{ organization { id } }", json!({})).await.data()["organization"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
    let session = server.gql(Some(&agent), "{ viewer { sessions { id } } }", json!({})).await.data()["viewer"]
        ["sessions"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    Alpha { admin, agent, session, queue, conversation, org }
}

async fn root_fields(server: &TestServer) -> Vec<String> {
    let data = server
        .gql(
            None,
            "{ __schema { queryType { fields { name } } mutationType { fields { name } } subscriptionType { fields { name } } } }",
            json!({}),
        )
        .await
        .data();
    ["queryType", "mutationType", "subscriptionType"]
        .iter()
        .flat_map(|root| data["__schema"][root]["fields"].as_array().unwrap().clone())
        .map(|field| field["name"].as_str().unwrap().to_owned())
        .collect()
}

fn assert_no_leak(field: &str, response: &Value, secrets: &[String]) {
    let text = response.to_string();
    for secret in secrets {
        assert!(!text.contains(secret.as_str()), "{field} revealed {secret}: {text}");
    }
}

async fn every_root_field_treats_another_organizations_ids_as_absent(backend: Backend) {
    // A sign-in per probe: more than the default allowance of one account.
    let server = TestServer::start_with(backend, |config| {
        config.login_attempts_per_account = NonZeroU32::new(1000).unwrap();
        config.login_attempts_per_address = NonZeroU32::new(1000).unwrap();
    })
    .await;
    let alpha = alpha(&server).await;
    server.create_organization("beta", 5, "boss", "boss-password").await;

    let fields = root_fields(&server).await;
    let missing: Vec<_> =
        fields.iter().filter(|field| !PROBES.iter().any(|(name, _, _)| name == field)).collect();
    assert!(missing.is_empty(), "root fields without a cross-tenant probe in tenancy.rs: {missing:?}");
    let stale: Vec<_> = PROBES.iter().filter(|(name, _, _)| !fields.iter().any(|f| f == name)).collect();
    assert!(
        stale.is_empty(),
        "probes for fields the schema no longer has: {:?}",
        stale.iter().map(|p| p.0).collect::<Vec<_>>()
    );

    let secrets = alpha.secrets();
    for &(field, expect, document) in PROBES {
        // A fresh session each time: `logout` ends one.
        let boss = server.login("beta", "boss", "boss-password").await;
        if let Expect::Silent = expect {
            probe_subscription(&server, &alpha, &boss, field, document, &secrets).await;
            continue;
        }
        let response = server.gql(Some(&boss), document, alpha.variables()).await;
        assert_no_leak(field, &response.body, &secrets);
        match expect {
            Expect::Null => assert!(response.data()[field].is_null(), "{field}: {:?}", response.body),
            Expect::NotFound => {
                let codes = response.user_error_codes(field);
                assert!(
                    !codes.is_empty() && codes.iter().all(|code| code == "NOT_FOUND"),
                    "{field}: {:?}",
                    response.body
                );
            }
            Expect::NothingFound => {
                let preview = &response.data()[field];
                assert_eq!((&preview["agents"], &preview["seatsFreed"]), (&json!([]), &json!(0)), "{field}");
            }
            Expect::NoLeak | Expect::Silent => {}
        }
    }

    // Nothing of the other organization changed, its agent's session included.
    let still = server.gql(Some(&alpha.agent), "{ viewer { username } }", json!({})).await.data();
    assert_eq!(still["viewer"]["username"], "alpha-agent");
    let data = server
        .gql(
            Some(&alpha.admin),
            "query($agent: ID!, $queue: ID!, $conversation: ID!) {
                agent(id: $agent) { displayName enabled queues { id } }
                queue(id: $queue) { name agentCount }
                conversation(id: $conversation) { status }
                queues { totalCount } }",
            alpha.variables(),
        )
        .await
        .data();
    assert_eq!(
        data,
        json!({
            "agent": { "displayName": "Alpha", "enabled": true, "queues": [{ "id": alpha.queue }] },
            "queue": { "name": "alpha-queue", "agentCount": 1 },
            "conversation": { "status": "ASSIGNED" },
            "queues": { "totalCount": 1 }
        })
    );
    let still = server.login("demo", "admin", ADMIN_PASSWORD).await;
    assert!(!still.token.is_empty());
}

/// Subscribes as the other organization's admin, then changes the first organization in every
/// way these subscriptions report: the subscriber must be refused or hear nothing.
async fn probe_subscription(
    server: &TestServer,
    alpha: &Alpha,
    boss: &Session,
    field: &str,
    document: &str,
    secrets: &[String],
) {
    let mut socket =
        WsClient::connect(server, Protocol::TransportWs, Some(boss)).await.expect("acknowledged");
    socket.subscribe("1", document, alpha.variables()).await;
    if let Some(early) = socket.try_next_result("1", Duration::from_millis(300)).await {
        // Refused at once: a NOT_FOUND for the other organization's queue, nothing more.
        assert_no_leak(field, &early, secrets);
        let code = &early["errors"][0]["extensions"]["reason"];
        let top = &early["errors"][0]["extensions"]["code"];
        assert!(code == "NOT_FOUND" || top == "NOT_FOUND", "{field}: {early}");
        return;
    }
    // Presence, the directory and conversations of the first organization all change.
    for status in ["OFFLINE", "ONLINE"] {
        let query = format!("mutation {{ reportPresence(status: {status}) {{ id }} }}");
        server.gql(Some(&alpha.agent), &query, json!({})).await.data();
    }
    server
        .gql(
            Some(&alpha.admin),
            "mutation($agent: ID!) { updateAgent(input: { id: $agent, maxConcurrentSessions: 5 }) { userErrors { code } } }",
            json!({ "agent": alpha.agent.agent_id }),
        )
        .await
        .data();
    let created = server
        .gql(
            Some(&alpha.admin),
            "mutation($queue: ID!) { createConversation(input: { queueId: $queue, customerName: \"Alpha Customer\" }) { conversation { id } } }",
            json!({ "queue": alpha.queue }),
        )
        .await
        .data();
    let id = created["createConversation"]["conversation"]["id"].clone();
    server
        .gql(
            Some(&alpha.admin),
            "mutation($id: ID!) { closeConversation(id: $id) { userErrors { code } } }",
            json!({ "id": id }),
        )
        .await
        .data();
    let heard = socket.results_within("1", Duration::from_millis(700)).await;
    assert!(heard.is_empty(), "{field} delivered another organization's events: {heard:?}");
}
