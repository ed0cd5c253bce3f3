//! Crashes: the real binary is killed with SIGKILL in the middle of writes, restarted on the
//! same database, and what it wrote must be whole: a bulk change entirely or not at all, and
//! no conversation lost, half-assigned or assigned past an agent's limit.

use std::{collections::HashMap, time::Duration};

use agentdesk::db::entities::{agent, conversation};
use agentdesk::routing::model::Status;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde_json::{Value, json};

use crate::common::{Backend, Session, client::Endpoint, process::ServerProcess, server::seed_agents};

pub fn tests() -> Vec<crate::common::Test> {
    crate::tests![
        killed_during_a_bulk_change_it_is_all_or_nothing,
        killed_during_a_burst_of_assignments_nothing_is_lost,
    ]
}

/// When the kill comes after the request was sent: early, mid-way and late for a request of
/// this size on this machine; the invariants must hold for every one.
const KILL_AFTER_MS: [u64; 4] = [1, 40, 150, 400];

async fn gql(binary: &ServerProcess, session: Option<&Session>, query: &str, variables: Value) -> Value {
    binary.post(session, query, variables).await.data()
}

async fn database(binary: &ServerProcess) -> DatabaseConnection {
    agentdesk::db::connect(&binary.database_url, 2).await.expect("the test reaches the database").0
}

async fn killed_during_a_bulk_change_it_is_all_or_nothing(backend: Backend) {
    let mut binary = ServerProcess::start(backend, &["--shutdown-timeout", "10s"]).await;
    let db = database(&binary).await;
    let ids = seed_agents(&db, "demo", "bulk", 1000).await;
    let mut enabled = true;
    let mut killed_in_flight = 0;
    for delay in KILL_AFTER_MS {
        let admin = binary.admin().await;
        let request = {
            let (addr, ids) = (binary.addr, ids.clone());
            tokio::spawn(async move {
                let query = "mutation($ids: [ID!]!, $on: Boolean!) { setAgentsEnabled(ids: $ids, enabled: $on) { affectedCount } }";
                let variables = json!({ "ids": ids, "on": !enabled });
                reqwest::Client::new()
                    .post(format!("http://{addr}/graphql"))
                    .bearer_auth(&admin.token)
                    .json(&json!({ "query": query, "variables": variables }))
                    .send()
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(delay)).await;
        binary.kill_and_restart().await;
        let answered = matches!(request.await.unwrap(), Ok(response) if response.status() == 200);
        killed_in_flight += usize::from(!answered);

        let disabled = agent::Entity::find()
            .filter(agent::Column::Username.starts_with("bulk-"))
            .filter(agent::Column::Enabled.eq(false))
            .all(&db)
            .await
            .unwrap()
            .len();
        assert!(disabled == 0 || disabled == 1000, "after a kill at {delay} ms: {disabled} of 1000 disabled");
        let now_enabled = disabled == 0;
        if answered {
            assert_eq!(now_enabled, !enabled, "an answered change was committed (kill at {delay} ms)");
        }
        enabled = now_enabled;
    }
    assert!(killed_in_flight > 0, "every kill came after the answer: the test proved nothing");
}

async fn killed_during_a_burst_of_assignments_nothing_is_lost(backend: Backend) {
    const LIMIT: usize = 2;
    const AGENTS: usize = 4;
    let mut binary = ServerProcess::start(backend, &["--shutdown-timeout", "10s"]).await;
    let admin = binary.admin().await;
    let queue = gql(
        &binary,
        Some(&admin),
        "mutation { createQueue(input: { name: \"Support\" }) { queue { id } } }",
        json!({}),
    )
    .await["createQueue"]["queue"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for n in 0..AGENTS {
        let username = format!("desk-{n}");
        let created = gql(
            &binary,
            Some(&admin),
            "mutation($input: CreateAgentInput!) { createAgent(input: $input) { agent { id } } }",
            json!({ "input": { "displayName": username, "username": username, "password": "secret-1",
                               "queueIds": [queue], "maxConcurrentSessions": LIMIT } }),
        )
        .await;
        assert!(created["createAgent"]["agent"].is_object(), "{created}");
        let session = binary.login(&username, "secret-1").await;
        gql(&binary, Some(&session), "mutation { reportPresence(status: ONLINE) { presence } }", json!({}))
            .await;
    }

    // Eight times the capacity, all at once, and the kill as soon as the first is answered,
    // while the others are still being routed.
    const BURST: usize = AGENTS * LIMIT * 8;
    let create =
        "mutation($q: ID!) { createConversation(input: { queueId: $q }) { conversation { id status } } }";
    let (answers, mut answered_rx) = tokio::sync::mpsc::unbounded_channel();
    for _ in 0..BURST {
        let (addr, admin, queue, answers) = (binary.addr, admin.clone(), queue.clone(), answers.clone());
        tokio::spawn(async move {
            let answer = async {
                let response = reqwest::Client::new()
                    .post(format!("http://{addr}/graphql"))
                    .bearer_auth(&admin.token)
                    .json(&json!({ "query": create, "variables": { "q": queue } }))
                    .send()
                    .await
                    .ok()?;
                let body: Value = response.json().await.ok()?;
                body["data"]["createConversation"]["conversation"]["id"].as_str().map(str::to_owned)
            }
            .await;
            let _ = answers.send(answer);
        });
    }
    drop(answers);
    let first = answered_rx.recv().await.expect("one request ends");
    binary.kill_and_restart().await;
    let mut answered: Vec<String> = first.into_iter().collect();
    while let Some(answer) = answered_rx.recv().await {
        answered.extend(answer);
    }
    assert!(answered.len() < BURST, "the kill came after every answer: the test proved nothing");

    let db = database(&binary).await;
    let rows = conversation::Entity::find().all(&db).await.unwrap();
    let stored: Vec<String> = rows
        .iter()
        .map(|row| {
            agentdesk::graphql::id::encode(agentdesk::graphql::id::NodeKind::Conversation, row.id).to_string()
        })
        .collect();
    for id in &answered {
        assert!(stored.contains(id), "conversation {id} was confirmed, then lost in the crash");
    }
    let mut per_agent: HashMap<i64, usize> = HashMap::new();
    for row in &rows {
        match row.status {
            Status::Waiting => {
                assert_eq!(row.assigned_agent_id, None, "a WAITING conversation held by an agent: {row:?}")
            }
            Status::Assigned => {
                let agent = row.assigned_agent_id.expect("an ASSIGNED conversation names its agent");
                assert!(row.assigned_at.is_some(), "{row:?}");
                *per_agent.entry(agent).or_default() += 1;
            }
            Status::Closed => panic!("nothing closed it: {row:?}"),
        }
    }
    for (agent, count) in per_agent {
        assert!(count <= LIMIT, "agent {agent} holds {count} conversations, over its limit of {LIMIT}");
    }

    // Nothing was created twice, and the restarted server answers on the same data.
    assert!(rows.len() <= BURST, "{} conversations from {BURST} requests", rows.len());
    let listing =
        gql(&binary, Some(&admin), "{ conversations(status: WAITING) { totalCount } }", json!({})).await;
    assert!(listing["conversations"]["totalCount"].is_number(), "{listing}");
}
