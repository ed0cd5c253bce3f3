//! Faults without loss: a full disk under the SQLite database, and PostgreSQL going away
//! under load. Every write the server acknowledged is stored; every one it could not store is
//! refused with `UNAVAILABLE` and a time to retry, quickly; readiness says so within a
//! second; and it all comes back within seconds once the cause is gone.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::common::{
    Backend, Gql, Session, TestServer, eventually, metrics,
    private_postgres::PrivatePostgres,
    server::AGENT_PASSWORD,
    small_disk::SmallDisk,
    ws::{Protocol, WsClient},
};

/// Tests that need a small file system of their own, run on SQLite only: PostgreSQL keeps
/// its files where its server puts them.
pub fn sqlite_tests() -> Vec<crate::common::Test> {
    crate::tests![a_full_disk_loses_no_acknowledged_write]
}

/// Tests that stop and start a PostgreSQL server of their own.
pub fn private_postgres_tests() -> Vec<crate::common::Test> {
    crate::tests![
        a_postgres_outage_under_load_loses_no_acknowledged_write,
        a_socket_closed_during_an_outage_is_recorded_once_the_database_is_back
    ]
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

/// The bootstrap ADMIN, and a queue served by an ONLINE agent, so that each conversation
/// created is also assigned: more than one write each.
async fn desk_with_an_agent_online(server: &TestServer) -> (Session, Value) {
    let admin = server.admin().await;
    let queue = server.create_queue(&admin, "Support").await;
    let ann = server.agent_session(&admin, "ann", json!({ "queueIds": [queue] })).await;
    server.go_online(&ann).await;
    (admin, json!(queue))
}

/// Every acknowledged conversation (id, customer name) is there, under the id it was
/// acknowledged with, and no id was handed out twice.
async fn every_acknowledged_conversation_is_stored(
    server: &TestServer,
    admin: &Session,
    acknowledged: &[(String, String)],
) {
    let mut ids: Vec<&str> = acknowledged.iter().map(|(id, _)| id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), acknowledged.len(), "an id was acknowledged twice");
    for (id, name) in acknowledged {
        let query = "query($id: ID!) { conversation(id: $id) { customerName } }";
        let stored = server.gql(Some(admin), query, json!({ "id": id })).await.data();
        assert_eq!(stored["conversation"]["customerName"], json!(name), "acknowledged {id} is missing");
    }
}

async fn readiness(server: &TestServer) -> (u16, String) {
    let response = server.http.get(server.url("/readyz")).send().await.expect("readyz answers");
    (response.status().as_u16(), response.text().await.unwrap_or_default())
}

async fn a_full_disk_loses_no_acknowledged_write(backend: Backend) {
    assert_eq!(backend, Backend::Sqlite, "the database must live on the small disk");
    let disk = SmallDisk::mount(DISK_BYTES).expect("mount a small file system");
    let server = TestServer::start_in_directory(disk.path()).await;
    let (admin, queue) = desk_with_an_agent_online(&server).await;
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
    let viewer = server.gql(Some(&admin), "{ viewer { username } }", json!({})).await.data();
    assert_eq!(viewer["viewer"]["username"], "admin");
    assert_eq!(readiness(&server).await, (503, "storage full".to_owned()));

    disk.free();
    eventually(RECOVERY, || async {
        let response = create_conversation(&server, &admin, &queue, "after").await;
        match response.body["data"]["createConversation"]["conversation"]["id"].is_string() {
            true => Ok(()),
            false => Err(format!("writes did not come back: {:?}", response.body)),
        }
    })
    .await;
    assert_eq!(readiness(&server).await.0, 200, "ready again once there is room");
    server.login("demo", "ann", AGENT_PASSWORD).await;

    every_acknowledged_conversation_is_stored(&server, &admin, &acknowledged).await;
    // Else the test proved nothing.
    assert!(refused > 0, "the disk never filled up: {} conversations stored", acknowledged.len());
    server.stop().await;
}

/// How long PostgreSQL stays away.
const OUTAGE: Duration = Duration::from_secs(30);
/// A request during the outage must be answered this soon (the pool waits 2 s).
const FAIL_FAST: Duration = Duration::from_secs(5);
/// `/readyz` must answer this soon, whatever the database does (1 s, and slack).
const READY_ANSWERS_WITHIN: Duration = Duration::from_millis(1500);

/// What the writers saw.
#[derive(Default)]
struct Tally {
    acknowledged: Vec<(String, String)>,
    refused: usize,
    slowest_refusal: Duration,
}

/// Creates conversations on `server` until `stop`, each named uniquely, noting what came back.
async fn keep_writing(
    server: Arc<TestServer>,
    admin: Session,
    queue: Value,
    writer: usize,
    stop: Arc<AtomicBool>,
    tally: Arc<Mutex<Tally>>,
) {
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let name = format!("w{writer}-{n}");
        let started = Instant::now();
        let response = create_conversation(&server, &admin, &queue, &name).await;
        let took = started.elapsed();
        let id = response.body["data"]["createConversation"]["conversation"]["id"].as_str();
        if let Some(id) = id {
            tally.lock().unwrap().acknowledged.push((id.to_owned(), name));
            continue;
        }
        let error = &response.errors()[0];
        assert_eq!(error["extensions"]["code"], "UNAVAILABLE", "{:?}", response.body);
        assert!(error["extensions"]["retryAfterSeconds"].as_u64().is_some_and(|s| s > 0), "{error}");
        {
            let mut tally = tally.lock().unwrap();
            tally.refused += 1;
            tally.slowest_refusal = tally.slowest_refusal.max(took);
        }
        // As a client told to retry later would, if less patiently.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `/readyz`: its status, and how long it took to say it.
async fn timed_readiness(server: &TestServer) -> (u16, Duration) {
    let started = Instant::now();
    let (status, _) = readiness(server).await;
    (status, started.elapsed())
}

/// Waits until `/readyz` says `expected`; how long that took.
async fn until_ready_is(server: &TestServer, expected: u16, within: Duration) -> Duration {
    let started = Instant::now();
    eventually(within, || async {
        let (status, took) = timed_readiness(server).await;
        assert!(took < READY_ANSWERS_WITHIN, "/readyz took {took:?}");
        match status == expected {
            true => Ok(()),
            false => Err(format!("/readyz never said {expected}")),
        }
    })
    .await;
    started.elapsed()
}

/// Waits until the writers have had 20 more writes acknowledged.
async fn until_writes_progress(tally: &Mutex<Tally>, what: &str) {
    let acknowledged = || tally.lock().unwrap().acknowledged.len();
    let before = acknowledged();
    eventually(Duration::from_secs(10), || async {
        match acknowledged() >= before + 20 {
            true => Ok(()),
            false => Err(what.to_owned()),
        }
    })
    .await;
}

async fn a_postgres_outage_under_load_loses_no_acknowledged_write(backend: Backend) {
    assert_eq!(backend, Backend::Postgres, "the outage is a PostgreSQL server's");
    let postgres = PrivatePostgres::start().await;
    let first = Arc::new(TestServer::start_on(postgres.url()).await);
    let second = Arc::new(first.another_instance().await);
    let (admin, queue) = desk_with_an_agent_online(&first).await;

    // Two writers on each instance, all along.
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let writers: Vec<_> = (0..4)
        .map(|writer| {
            let server = if writer % 2 == 0 { first.clone() } else { second.clone() };
            let task =
                keep_writing(server, admin.clone(), queue.clone(), writer, stop.clone(), tally.clone());
            tokio::spawn(task)
        })
        .collect();
    until_writes_progress(&tally, "the writers make no progress").await;

    postgres.stop().await;
    // Not ready, said at once, on both instances.
    for server in [&first, &second] {
        until_ready_is(server, 503, Duration::from_secs(5)).await;
    }
    let outage_began = Instant::now();
    while outage_began.elapsed() < OUTAGE {
        let (status, took) = timed_readiness(&first).await;
        assert_eq!(status, 503);
        assert!(took < READY_ANSWERS_WITHIN, "/readyz took {took:?} during the outage");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let refused_during_outage = tally.lock().unwrap().refused;
    assert!(refused_during_outage > 0, "nothing was refused while the database was down");

    postgres.start_again().await;
    let mut recovery = Vec::new();
    for server in [&first, &second] {
        recovery.push(until_ready_is(server, 200, Duration::from_secs(10)).await);
    }
    until_writes_progress(&tally, "writes did not come back after the outage").await;
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.expect("a writer failed");
    }

    let tally = Arc::try_unwrap(tally).ok().expect("the writers are done").into_inner().unwrap();
    assert!(tally.slowest_refusal < FAIL_FAST, "a refusal took {:?}", tally.slowest_refusal);
    every_acknowledged_conversation_is_stored(&first, &admin, &tally.acknowledged).await;
    eprintln!(
        "outage: {} acknowledged, {} refused (slowest refusal {:?}), ready again after {:?}",
        tally.acknowledged.len(),
        tally.refused,
        tally.slowest_refusal,
        recovery
    );
    Arc::try_unwrap(second).ok().expect("one owner").stop().await;
    Arc::try_unwrap(first).ok().expect("one owner").stop().await;
}

/// A workspace whose socket closes while the database is away: its close is written once the
/// database is back (by the next sweep), so the agent lapses DISCONNECTED after the grace. Its
/// row stayed before, and the agent ONLINE as if still connected, for as long as the instance
/// ran (a mass disconnect that exhausted the pool left thousands so).
async fn a_socket_closed_during_an_outage_is_recorded_once_the_database_is_back(backend: Backend) {
    assert_eq!(backend, Backend::Postgres, "the outage is a PostgreSQL server's");
    let postgres = PrivatePostgres::start().await;
    let server = TestServer::start_on_with(postgres.url(), |config| {
        config.presence_ttl = Duration::from_secs(600);
        config.presence_grace = Duration::from_millis(300);
        config.presence_sweep_interval = Duration::from_millis(100);
    })
    .await;
    let admin = server.admin().await;
    let ana = server.agent_session(&admin, "ana", json!({})).await;
    server.go_online(&ana).await;
    let workspace =
        WsClient::connect(&server, Protocol::TransportWs, Some(&ana)).await.expect("acknowledged");
    let presence = || async {
        let agent = server
            .gql(
                Some(&admin),
                "query($id: ID!) { agent(id: $id) { presence presenceReason } }",
                json!({ "id": ana.agent_id }),
            )
            .await;
        // Answered UNAVAILABLE until the pool has a connection again.
        if !agent.errors().is_empty() {
            return Err(format!("{:?}", agent.errors()));
        }
        let agent = agent.data();
        Ok((agent["agent"]["presence"].clone(), agent["agent"]["presenceReason"].clone()))
    };

    postgres.stop().await;
    workspace.close().await;
    // The socket is done (its close tried and refused) once the server counts it no more.
    metrics::settles_at(&server, "agentdesk_websockets_open", 0.0).await;
    postgres.start_again().await;

    eventually(Duration::from_secs(10), || async {
        match presence().await? {
            (status, reason) if status == "OFFLINE" && reason == "DISCONNECTED" => Ok(()),
            other => Err(format!("ana is {other:?}")),
        }
    })
    .await;
    server.stop().await;
}
