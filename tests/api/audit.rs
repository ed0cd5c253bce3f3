//! The audit log: one entry per action, in the action's transaction, readable by the
//! organization's admins only, and never holding a secret.

use agentdesk::db::entities::audit_entry;
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};

use crate::common::{Backend, Session, TestServer, server::ADMIN_PASSWORD};

pub fn tests() -> Vec<crate::common::Test> {
    crate::tests![
        each_admin_action_writes_one_entry_with_actor_target_and_fields,
        bulk_actions_write_one_entry_per_agent,
        refused_actions_write_no_entry,
        sign_in_attempts_are_recorded,
        audit_log_filters_and_paginates,
        agents_are_forbidden_and_other_organizations_see_nothing,
        no_password_or_token_is_ever_stored,
    ]
}

const ENTRY_FIELDS: &str =
    "id action actor { id username } actorUsername targetId targetType changedFields clientAddress at";

/// The newest `first` entries the admin sees, with `filter`.
async fn audit_log(server: &TestServer, admin: &Session, first: i32, filter: Value) -> Vec<Value> {
    let data = server
        .gql(
            Some(admin),
            &format!(
                "query($first: Int, $filter: AuditFilter) {{ auditLog(first: $first, filter: $filter) {{
                    nodes {{ {ENTRY_FIELDS} }} }} }}"
            ),
            json!({ "first": first, "filter": filter }),
        )
        .await
        .data();
    data["auditLog"]["nodes"].as_array().unwrap().clone()
}

async fn row_count(server: &TestServer) -> u64 {
    audit_entry::Entity::find().count(server.db()).await.unwrap()
}

/// Runs a mutation that must succeed and returns `data`.
async fn mutate(server: &TestServer, admin: &Session, query: &str, variables: Value) -> Value {
    let data = server.gql(Some(admin), query, variables).await.data();
    let payload = data.as_object().unwrap().values().next().unwrap();
    assert_eq!(payload["userErrors"], json!([]), "{data}");
    data
}

/// Runs `query`, then checks it wrote exactly one row, and that the newest entry says this.
async fn expect_one_entry(
    server: &TestServer,
    admin: &Session,
    (query, variables): (&str, Value),
    (action, target, fields): (&str, &str, Value),
) -> Value {
    let before = row_count(server).await;
    let data = mutate(server, admin, query, variables).await;
    assert_eq!(row_count(server).await, before + 1, "{action}");
    let entry = audit_log(server, admin, 1, json!({})).await.remove(0);
    assert_eq!(entry["action"], action);
    assert_eq!(entry["actor"]["id"], admin.agent_id.as_str());
    assert_eq!(entry["actorUsername"], "admin");
    assert_eq!(entry["targetId"], target, "{action}");
    assert_eq!(entry["changedFields"], fields, "{action}");
    assert_eq!(entry["clientAddress"], "127.0.0.1");
    data
}

async fn each_admin_action_writes_one_entry_with_actor_target_and_fields(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let queue = mutate(
        &server,
        &admin,
        "mutation { createQueue(input: { name: \"Sales\" }) { queue { id } userErrors { code } } }",
        json!({}),
    )
    .await["createQueue"]["queue"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let created = audit_log(&server, &admin, 1, json!({})).await.remove(0);
    assert_eq!(
        (created["action"].as_str(), created["targetId"].as_str()),
        (Some("QUEUE_CREATED"), Some(&*queue))
    );
    assert_eq!(
        (created["targetType"].as_str(), &created["changedFields"]),
        (Some("QUEUE"), &json!(["name"]))
    );

    let before = row_count(&server).await;
    let data = mutate(
        &server,
        &admin,
        "mutation($input: CreateAgentInput!) { createAgent(input: $input) { agent { id } userErrors { code } } }",
        json!({ "input": { "displayName": "Tia", "username": "tia", "password": "secret-1", "email": "tia@example.com" } }),
    )
    .await;
    assert_eq!(row_count(&server).await, before + 1);
    let agent = data["createAgent"]["agent"]["id"].as_str().unwrap().to_owned();
    let entry = audit_log(&server, &admin, 1, json!({})).await.remove(0);
    assert_eq!(entry["action"], "AGENT_CREATED");
    assert_eq!((entry["targetId"].as_str(), entry["targetType"].as_str()), (Some(&*agent), Some("AGENT")));
    assert_eq!(
        entry["changedFields"],
        json!(["displayName", "username", "password", "role", "showRealPhoneNumbers", "email"])
    );

    let update = "mutation($input: UpdateAgentInput!) { updateAgent(input: $input) { agent { id } userErrors { code } } }";
    expect_one_entry(
        &server,
        &admin,
        (update, json!({ "input": { "id": agent, "displayName": "Tia M", "email": "tia@example.com", "newPassword": "secret-2" } })),
        ("AGENT_UPDATED", &agent, json!(["displayName", "password"])),
    )
    .await;
    expect_one_entry(
        &server,
        &admin,
        (update, json!({ "input": { "id": agent, "enabled": false, "role": "ADMIN" } })),
        ("AGENT_UPDATED", &agent, json!(["enabled", "role"])),
    )
    .await;
    let enable = "mutation($ids: [ID!]!, $enabled: Boolean!) { setAgentsEnabled(ids: $ids, enabled: $enabled) { userErrors { code } } }";
    expect_one_entry(
        &server,
        &admin,
        (enable, json!({ "ids": [agent], "enabled": true })),
        ("AGENT_ENABLED", &agent, json!(["enabled"])),
    )
    .await;
    expect_one_entry(
        &server,
        &admin,
        (enable, json!({ "ids": [agent], "enabled": false })),
        ("AGENT_DISABLED", &agent, json!(["enabled"])),
    )
    .await;
    expect_one_entry(
        &server,
        &admin,
        (
            "mutation($q: ID!) { updateQueue(input: { id: $q, name: \"Sales EU\" }) { userErrors { code } } }",
            json!({ "q": queue }),
        ),
        ("QUEUE_UPDATED", &queue, json!(["name"])),
    )
    .await;
    expect_one_entry(
        &server,
        &admin,
        (
            "mutation($q: ID!, $a: ID!) { addAgentsToQueue(queueId: $q, agentIds: [$a]) { userErrors { code } } }",
            json!({ "q": queue, "a": agent }),
        ),
        ("QUEUE_AGENTS_ADDED", &queue, json!(["agentIds"])),
    )
    .await;
    expect_one_entry(
        &server,
        &admin,
        (
            "mutation($q: ID!, $a: ID!) { removeAgentsFromQueue(queueId: $q, agentIds: [$a]) { userErrors { code } } }",
            json!({ "q": queue, "a": agent }),
        ),
        ("QUEUE_AGENTS_REMOVED", &queue, json!(["agentIds"])),
    )
    .await;
    expect_one_entry(
        &server,
        &admin,
        ("mutation($q: ID!) { deleteQueue(id: $q) { userErrors { code } } }", json!({ "q": queue })),
        ("QUEUE_DELETED", &queue, json!([])),
    )
    .await;
    expect_one_entry(
        &server,
        &admin,
        ("mutation($a: ID!) { deleteAgent(id: $a) { userErrors { code } } }", json!({ "a": agent })),
        ("AGENT_DELETED", &agent, json!([])),
    )
    .await;
    server.stop().await;
}

async fn bulk_actions_write_one_entry_per_agent(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let ids = server.seed_agents("demo", "bulk", 3).await;
    let before = row_count(&server).await;
    mutate(
        &server,
        &admin,
        "mutation($ids: [ID!]!) { setAgentsEnabled(ids: $ids, enabled: false) { userErrors { code } } }",
        json!({ "ids": ids }),
    )
    .await;
    mutate(
        &server,
        &admin,
        "mutation($ids: [ID!]!) { deleteAgents(ids: $ids) { userErrors { code } } }",
        json!({ "ids": ids }),
    )
    .await;
    assert_eq!(row_count(&server).await, before + 6);
    for id in &ids {
        let history = audit_log(&server, &admin, 10, json!({ "targetId": id })).await;
        let actions: Vec<&str> = history.iter().map(|e| e["action"].as_str().unwrap()).collect();
        assert_eq!(actions, ["AGENT_DELETED", "AGENT_DISABLED"], "{id}");
        assert!(history.iter().all(|e| e["actor"]["id"] == admin.agent_id.as_str()));
    }
}

async fn refused_actions_write_no_entry(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let before = row_count(&server).await;
    let refused = [
        "mutation { createAgent(input: { displayName: \"X\", username: \"no\", password: \"secret-1\" }) { userErrors { code } } }",
        "mutation { createAgent(input: { displayName: \"X\", username: \"admin\", password: \"secret-1\" }) { userErrors { code } } }",
        "mutation { setAgentsEnabled(ids: [\"QWdlbnQ6OTk5\"], enabled: false) { userErrors { code } } }",
        "mutation { createQueue(input: { name: \"\" }) { userErrors { code } } }",
    ];
    for query in refused {
        let data = server.gql(Some(&admin), query, json!({})).await.data();
        let payload = data.as_object().unwrap().values().next().unwrap();
        assert_ne!(payload["userErrors"], json!([]), "{query}");
    }
    // The admin cannot disable itself: refused inside the transaction, after reads.
    let own = server
        .gql(
            Some(&admin),
            "mutation($ids: [ID!]!) { deleteAgents(ids: $ids) { userErrors { code } } }",
            json!({ "ids": [admin.agent_id] }),
        )
        .await;
    assert_eq!(own.user_error_codes("deleteAgents"), ["CANNOT_MODIFY_SELF"]);
    assert_eq!(row_count(&server).await, before);
}

async fn sign_in_attempts_are_recorded(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_organization("acme", 5, "boss", "boss-password").await;
    let boss = server.login("acme", "boss", "boss-password").await;
    server.try_login("acme", "boss", "wrong-password").await;
    server.try_login("acme", "Nobody ", "whatever-1").await;
    server.try_login("nowhere", "boss", "boss-password").await;
    let entries = audit_log(&server, &boss, 10, json!({})).await;
    let seen: Vec<(&str, Option<&str>, &str)> = entries
        .iter()
        .map(|e| {
            (e["action"].as_str().unwrap(), e["actor"]["id"].as_str(), e["actorUsername"].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("SIGN_IN_FAILED", None, "nobody"),
            ("SIGN_IN_FAILED", Some(boss.agent_id.as_str()), "boss"),
            ("SIGN_IN_SUCCEEDED", Some(boss.agent_id.as_str()), "boss"),
        ],
        "the attempt on an unknown organization belongs to no organization"
    );
    assert!(entries.iter().all(|e| e["clientAddress"] == "127.0.0.1"));
    assert_eq!(entries[0]["targetId"], Value::Null);
    assert_eq!(entries[1]["targetId"], boss.agent_id.as_str());
    // The attempt on an unknown organization is kept, for operators, under no organization.
    let rows = audit_entry::Entity::find().all(server.db()).await.unwrap();
    assert_eq!(rows.len(), 4);
    assert!(
        rows.iter().any(|row| row.organization_id.is_none() && row.actor_username.as_deref() == Some("boss"))
    );
}

async fn audit_log_filters_and_paginates(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let mut queues = Vec::new();
    for name in ["One", "Two", "Three", "Four", "Five"] {
        let data = mutate(
            &server,
            &admin,
            "mutation($name: String!) { createQueue(input: { name: $name }) { queue { id } userErrors { code } } }",
            json!({ "name": name }),
        )
        .await;
        queues.push(data["createQueue"]["queue"]["id"].as_str().unwrap().to_owned());
    }
    let created = audit_log(&server, &admin, 50, json!({ "action": "QUEUE_CREATED" })).await;
    let targets: Vec<&str> = created.iter().map(|e| e["targetId"].as_str().unwrap()).collect();
    let newest_first: Vec<&str> = queues.iter().rev().map(String::as_str).collect();
    assert_eq!(targets, newest_first);

    let by_target = audit_log(&server, &admin, 50, json!({ "targetId": queues[2] })).await;
    assert_eq!(by_target.len(), 1);
    let by_actor = audit_log(&server, &admin, 50, json!({ "actorId": admin.agent_id })).await;
    assert_eq!(by_actor.len(), 6, "five queues and the sign-in");
    let nobody = audit_log(&server, &admin, 50, json!({ "actorId": queues[0] })).await;
    assert!(nobody.is_empty(), "a queue's ID names no actor");

    let third_at = created[2]["at"].as_str().unwrap().to_owned();
    let until = audit_log(&server, &admin, 50, json!({ "action": "QUEUE_CREATED", "until": third_at })).await;
    assert!(until.iter().all(|e| e["at"].as_str().unwrap() < third_at.as_str()));
    let since = audit_log(&server, &admin, 50, json!({ "action": "QUEUE_CREATED", "since": third_at })).await;
    assert!(since.iter().any(|e| e["targetId"] == created[2]["targetId"]));
    assert_eq!(until.len() + since.len(), 5);
    let future = audit_log(&server, &admin, 50, json!({ "since": "2999-01-01T00:00:00Z" })).await;
    assert!(future.is_empty());

    let page = |after: Option<String>| {
        let server = &server;
        let admin = &admin;
        async move {
            server
                .gql(
                    Some(admin),
                    "query($after: String) { auditLog(first: 2, after: $after, filter: { action: QUEUE_CREATED }) {
                        pageInfo { hasNextPage endCursor } nodes { targetId } } }",
                    json!({ "after": after }),
                )
                .await
                .data()["auditLog"]
                .clone()
        }
    };
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let connection = page(after).await;
        seen.extend(
            connection["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["targetId"].as_str().unwrap().to_owned()),
        );
        if connection["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = connection["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
    assert_eq!(seen, newest_first);
}

async fn agents_are_forbidden_and_other_organizations_see_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    mutate(
        &server,
        &admin,
        "mutation { createAgent(input: { displayName: \"Tia\", username: \"tia\", password: \"secret-1\" }) { userErrors { code } } }",
        json!({}),
    )
    .await;
    let tia = server.login("demo", "tia", "secret-1").await;
    let response = server.gql(Some(&tia), "{ auditLog { nodes { id } } }", json!({})).await;
    assert_eq!(response.error_code(), "FORBIDDEN");
    assert_eq!(
        server.gql(None, "{ auditLog { nodes { id } } }", json!({})).await.error_code(),
        "UNAUTHENTICATED"
    );

    server.create_organization("acme", 5, "boss", "boss-password").await;
    let boss = server.login("acme", "boss", "boss-password").await;
    server.try_login("demo", "admin", "wrong-password").await;
    let theirs = audit_log(&server, &boss, 50, json!({})).await;
    let actions: Vec<&str> = theirs.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["SIGN_IN_SUCCEEDED"], "only boss's own sign-in");
    let ours = audit_log(&server, &admin, 50, json!({ "actorId": boss.agent_id })).await;
    assert!(ours.is_empty());
}

async fn no_password_or_token_is_ever_stored(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let data = mutate(
        &server,
        &admin,
        "mutation { createAgent(input: { displayName: \"Tia\", username: \"tia\", password: \"first-secret\" }) { agent { id } userErrors { code } } }",
        json!({}),
    )
    .await;
    let tia = data["createAgent"]["agent"]["id"].as_str().unwrap().to_owned();
    mutate(
        &server,
        &admin,
        "mutation($id: ID!) { updateAgent(input: { id: $id, newPassword: \"second-secret\" }) { userErrors { code } } }",
        json!({ "id": tia }),
    )
    .await;
    let session = server.login("demo", "tia", "second-secret").await;
    server.try_login("demo", "tia", "third-secret").await;
    let rows = audit_entry::Entity::find().all(server.db()).await.unwrap();
    assert!(rows.len() >= 5);
    let dump = format!("{rows:?}");
    for secret in [
        ADMIN_PASSWORD,
        "first-secret",
        "second-secret",
        "third-secret",
        admin.token.as_str(),
        session.token.as_str(),
        &agentdesk::auth::token::hash(&session.token),
    ] {
        assert!(!dump.contains(secret), "{secret} found in the audit log: {dump}");
    }
}
