//! Faults without loss: a full disk under the SQLite database. Every write the server
//! acknowledged is stored; every one it could not store is refused with `UNAVAILABLE` and a
//! time to retry; reads go on; readiness says so; and it all comes back within seconds once
//! there is room again.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Backend, Gql, Session, TestServer, small_disk::SmallDisk};

/// Tests that need a small file system of their own, run on SQLite only: PostgreSQL keeps
/// its files where its server puts them.
pub fn sqlite_tests() -> Vec<crate::common::Test> {
    crate::tests![a_full_disk_loses_no_acknowledged_write]
}

/// Room for the database of a small organization and its write-ahead log, not much more.
const DISK_BYTES: u64 = 6 * 1024 * 1024;
/// How soon after space is freed writes and readiness must be back.
const RECOVERY: Duration = Duration::from_secs(5);

const CREATE: &str =
    "mutation($q: ID!, $n: String!) { createConversation(input: { queueId: $q, customerName: $n }) {
    conversation { id customerName } userErrors { code } } }";

async fn create_conversation(server: &TestServer, admin: &Session, queue: &Value, name: &str) -> Gql {
    server.gql(Some(admin), CREATE, json!({ "q": queue, "n": name })).await
}

async fn readiness(server: &TestServer) -> (u16, String) {
    let response = server.http.get(server.url("/readyz")).send().await.expect("readyz answers");
    (response.status().as_u16(), response.text().await.unwrap_or_default())
}

async fn a_full_disk_loses_no_acknowledged_write(backend: Backend) {
    assert_eq!(backend, Backend::Sqlite, "the database must live on the small disk");
    let disk = SmallDisk::mount(DISK_BYTES).expect("mount a small file system");
    let server = TestServer::start_in_directory(disk.path()).await;
    let admin = server.admin().await;
    let queue = server
        .gql(
            Some(&admin),
            "mutation { createQueue(input: { name: \"Support\" }) { queue { id } } }",
            json!({}),
        )
        .await
        .data()["createQueue"]["queue"]["id"]
        .clone();
    // An agent online, so each conversation is also assigned: more than one write each.
    server
        .gql(
            Some(&admin),
            "mutation($q: ID!) { createAgent(input: { displayName: \"Ann\", username: \"ann\", password: \"password1\", queueIds: [$q] }) { userErrors { code } } }",
            json!({ "q": queue }),
        )
        .await
        .data();
    let ann = server.login("demo", "ann", "password1").await;
    server
        .gql(Some(&ann), "mutation { reportPresence(status: ONLINE) { presence } }", json!({}))
        .await
        .data();
    assert_eq!(readiness(&server).await.0, 200);

    disk.fill();
    let mut acknowledged: Vec<(String, String)> = Vec::new();
    let mut refused = 0;
    // Long names fill pages fast: the database must grow, and cannot.
    for n in 0..400 {
        let name = format!("{n:04}-{}", "x".repeat(150));
        let response = create_conversation(&server, &admin, &queue, &name).await;
        match response.body["data"]["createConversation"]["conversation"]["id"].as_str() {
            Some(id) => {
                assert!(response.body.get("errors").is_none(), "an answer with both: {:?}", response.body);
                acknowledged.push((id.to_owned(), name));
            }
            None => {
                let error = &response.errors()[0];
                assert_eq!(error["extensions"]["code"], "UNAVAILABLE", "{:?}", response.body);
                assert!(error["extensions"]["retryAfterSeconds"].as_u64().is_some_and(|s| s > 0), "{error}");
                refused += 1;
            }
        }
    }
    // Reads need no write: signed-in reads go on while nothing can be written.
    let viewer = server.gql(Some(&ann), "{ viewer { username } }", json!({})).await.data();
    assert_eq!(viewer["viewer"]["username"], "ann");
    assert_eq!(readiness(&server).await, (503, "storage full".to_owned()));

    disk.free();
    let deadline = tokio::time::Instant::now() + RECOVERY;
    loop {
        let response = create_conversation(&server, &admin, &queue, "after").await;
        if response.body["data"]["createConversation"]["conversation"]["id"].is_string() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "writes did not come back: {:?}", response.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(readiness(&server).await.0, 200, "ready again once there is room");
    server.login("demo", "ann", "password1").await;

    // Every acknowledged conversation is there, under the id it was acknowledged with, and no
    // id was handed out twice.
    let mut ids: Vec<&str> = acknowledged.iter().map(|(id, _)| id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), acknowledged.len(), "an id was acknowledged twice");
    for (id, name) in &acknowledged {
        let stored = server
            .gql(
                Some(&admin),
                "query($id: ID!) { conversation(id: $id) { customerName } }",
                json!({ "id": id }),
            )
            .await
            .data();
        assert_eq!(stored["conversation"]["customerName"], json!(name), "acknowledged {id} is missing");
    }
    // Else the test proved nothing.
    assert!(refused > 0, "the disk never filled up: {} conversations stored", acknowledged.len());
    server.stop().await;
}
