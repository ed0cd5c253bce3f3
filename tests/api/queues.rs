//! Queues as the Agents page lives with them: renaming or deleting one changes its members'
//! badges live, and deleting one never strands the customers waiting in it.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{
    common::{
        Backend, Session, TestServer,
        ws::{Protocol, WsClient},
    },
    directory_live::wait_until_live,
};

pub fn tests() -> Vec<crate::common::Test> {
    crate::tests![
        renaming_or_deleting_a_queue_updates_its_members_live,
        a_queue_with_waiting_customers_is_deleted_only_by_moving_them,
        a_page_of_queues_counts_its_waiting_conversations_at_once,
    ]
}

/// The `agentDirectoryChanged` events that arrive within a moment, as (agent id, queue names).
async fn updates(socket: &mut WsClient, expected: usize) -> Vec<(String, Vec<String>)> {
    let mut seen = Vec::new();
    while seen.len() < expected {
        let Some(event) = socket.try_next_result("d", Duration::from_secs(10)).await else { break };
        let change = &event["data"]["agentDirectoryChanged"];
        assert_eq!(change["kind"], "UPDATED", "{event}");
        let names = change["agent"]["queues"].as_array().unwrap().iter();
        seen.push((
            change["agentId"].as_str().unwrap().to_owned(),
            names.map(|queue| queue["name"].as_str().unwrap().to_owned()).collect(),
        ));
    }
    seen.sort();
    seen
}

async fn renaming_or_deleting_a_queue_updates_its_members_live(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let billing = server.create_queue(&admin, "Billing").await;
    let mut members = [
        server.create_agent(&admin, "ann", json!({ "queueIds": [&billing] })).await,
        server.create_agent(&admin, "bob", json!({ "queueIds": [&billing] })).await,
    ];
    members.sort();
    server.create_agent(&admin, "cat", json!({ "queueIds": [] })).await;
    let mut socket =
        WsClient::connect(&server, Protocol::TransportWs, Some(&admin)).await.expect("acknowledged");
    socket
        .subscribe(
            "d",
            "subscription { agentDirectoryChanged { kind agentId agent { queues { name } } } }",
            json!({}),
        )
        .await;
    wait_until_live(&server, &admin, &mut socket).await;

    let rename =
        "mutation($id: ID!) { updateQueue(input: { id: $id, name: \"Invoices\" }) { userErrors { code } } }";
    server.gql(Some(&admin), rename, json!({ "id": billing })).await.data();
    let renamed: Vec<_> = members.iter().map(|id| (id.clone(), vec!["Invoices".to_owned()])).collect();
    assert_eq!(updates(&mut socket, 2).await, renamed);

    let delete = "mutation($id: ID!) { deleteQueue(id: $id) { deletedId userErrors { code } } }";
    server.gql(Some(&admin), delete, json!({ "id": billing })).await.data();
    let emptied: Vec<_> = members.iter().map(|id| (id.clone(), vec![])).collect();
    assert_eq!(updates(&mut socket, 2).await, emptied);
    // Nobody else's entry changed.
    assert_eq!(socket.try_next_result("d", Duration::from_millis(300)).await, None);
}

const DELETE: &str = "mutation($id: ID!, $to: ID) { deleteQueue(id: $id, moveWaitingTo: $to) {
    deletedId userErrors { field code } } }";

async fn queue_of_conversations(
    server: &TestServer,
    admin: &Session,
    ids: &[Value],
) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for id in ids {
        let data = server
            .gql(
                Some(admin),
                "query($id: ID!) { conversation(id: $id) { status queue { name } } }",
                json!({ "id": id }),
            )
            .await
            .data();
        let conversation = &data["conversation"];
        found.push((
            conversation["status"].as_str().unwrap().to_owned(),
            conversation["queue"]["name"].as_str().unwrap().to_owned(),
        ));
    }
    found
}

async fn a_queue_with_waiting_customers_is_deleted_only_by_moving_them(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let closing = server.create_queue(&admin, "Closing").await;
    let open = server.create_queue(&admin, "Open").await;
    server.create_agent(&admin, "ida", json!({ "queueIds": [&open] })).await;
    let ida = server.login("demo", "ida", "password1").await;
    server
        .gql(Some(&ida), "mutation { reportPresence(status: ONLINE) { presence } }", json!({}))
        .await
        .data();
    let mut waiting = Vec::new();
    for name in ["Casey", "Drew"] {
        let data = server
            .gql(
                Some(&admin),
                "mutation($q: ID!, $n: String!) { createConversation(input: { queueId: $q, customerName: $n }) { conversation { id status } } }",
                json!({ "q": closing, "n": name }),
            )
            .await
            .data();
        assert_eq!(data["createConversation"]["conversation"]["status"], "WAITING", "nobody serves Closing");
        waiting.push(data["createConversation"]["conversation"]["id"].clone());
    }
    server.create_organization("beta", 5, "boss", "boss-password").await;
    let boss = server.login("beta", "boss", "boss-password").await;
    let foreign = server.create_queue(&boss, "Theirs").await;

    // Refused, and nothing changes: without a target, with one of another organization,
    // with the queue itself, with one that is not a queue id.
    let refusals = [
        (Value::Null, "QUEUE_HAS_WAITING_CONVERSATIONS"),
        (json!(foreign), "NOT_FOUND"),
        (json!(closing), "NOT_FOUND"),
        (json!(waiting[0]), "NOT_FOUND"),
    ];
    for (target, code) in refusals {
        let refused = server.gql(Some(&admin), DELETE, json!({ "id": closing, "to": target })).await.data();
        assert_eq!(
            refused["deleteQueue"],
            json!({ "deletedId": null, "userErrors": [{ "field": ["moveWaitingTo"], "code": code }] }),
            "{target}"
        );
    }
    let still = [("WAITING".to_owned(), "Closing".to_owned()), ("WAITING".to_owned(), "Closing".to_owned())];
    assert_eq!(queue_of_conversations(&server, &admin, &waiting).await, still);

    // Moved: they wait in the other queue, and are routed there.
    let deleted = server.gql(Some(&admin), DELETE, json!({ "id": closing, "to": open })).await.data();
    assert_eq!(deleted["deleteQueue"], json!({ "deletedId": closing, "userErrors": [] }));
    let assigned = [("ASSIGNED".to_owned(), "Open".to_owned()), ("ASSIGNED".to_owned(), "Open".to_owned())];
    assert_eq!(queue_of_conversations(&server, &admin, &waiting).await, assigned);
    // An empty queue still goes without a target.
    let empty = server.create_queue(&admin, "Empty").await;
    let gone = server.gql(Some(&admin), DELETE, json!({ "id": empty, "to": null })).await.data();
    assert_eq!(gone["deleteQueue"]["userErrors"], json!([]));
}

/// `waitingConversations` of a page of queues is one statement for the page, not one per
/// queue (issue 23).
async fn a_page_of_queues_counts_its_waiting_conversations_at_once(backend: Backend) {
    let server = TestServer::start_with(backend, crate::directory::without_background_sweeps).await;
    let admin = server.admin().await;
    let create =
        "mutation($q: ID!) { createConversation(input: { queueId: $q }) { conversation { status } } }";
    for n in 0..10 {
        let queue = server.create_queue(&admin, &format!("Queue {n:02}")).await;
        // Nobody serves them: queue n has n waiting.
        for _ in 0..n {
            server.gql(Some(&admin), create, json!({ "q": queue })).await.data();
        }
    }
    let mut costs = Vec::new();
    for size in [2, 10] {
        let page = format!("{{ queues(first: {size}) {{ nodes {{ name waitingConversations }} }} }}");
        let before = server.statements();
        let data = server.gql(Some(&admin), &page, json!({})).await.data();
        costs.push(server.statements() - before);
        let nodes = data["queues"]["nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), size);
        for node in nodes {
            let n: u64 = node["name"].as_str().unwrap().trim_start_matches("Queue ").parse().unwrap();
            assert_eq!(node["waitingConversations"], n, "{node}");
        }
    }
    // As for any DataLoader, a page's loads may fall into two batches on a loaded machine.
    assert!(costs[1] <= costs[0] + 2, "statements for pages of 2 and 10: {costs:?}");
}
