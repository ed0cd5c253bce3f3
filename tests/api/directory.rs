//! The Agents page: listing, creating, editing, enabling/disabling, deleting, bulk, queues,
//! seats, roles and tenancy.

use agentdesk::db::entities::{agent, organization};
use agentdesk::viewer::Role;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, prelude::Expr};
use serde_json::{Value, json};

use crate::common::{Backend, Gql, Session, TestServer, number_of};

pub fn tests() -> Vec<crate::common::Test> {
    crate::tests![
        create_agent_stores_every_field,
        create_agent_reports_every_invalid_field_and_writes_nothing,
        usernames_are_unique_case_insensitively,
        seat_limit_is_exact_and_deleting_frees_a_seat,
        concurrent_creates_cannot_overrun_the_seat_limit,
        the_kept_agent_count_survives_concurrent_creates_and_deletes,
        update_agent_changes_given_fields_only,
        update_agent_validates_and_finds,
        username_cannot_be_changed,
        an_agent_edits_only_its_own_profile,
        agent_role_is_refused_every_admin_operation,
        password_change_ends_the_agents_other_sessions,
        admins_cannot_disable_delete_or_demote_themselves,
        two_admins_disabling_each_other_leave_one_enabled,
        set_agents_enabled_is_all_or_nothing,
        disabling_signs_agents_out_and_enabling_twice_is_no_error,
        bulk_calls_take_1_to_1000_ids,
        delete_agents_frees_seats_and_keeps_usernames_reusable,
        bulk_of_1000_costs_the_same_statements_as_bulk_of_10,
        agents_paginate_forwards_and_backwards_with_filters_and_order,
        pages_cost_the_same_statements_at_5_and_200,
        queues_are_created_renamed_filled_and_deleted,
        queue_membership_changes_are_all_or_nothing,
        mutations_are_refused_while_the_service_is_disabled,
        another_organizations_ids_are_not_found_anywhere,
    ]
}

const AGENT_FIELDS: &str = "id displayName avatarInitial username email role enabled presence
    showRealPhoneNumbers maxConcurrentSessions queues { id name } createdAt updatedAt";

async fn create_agent(server: &TestServer, admin: &Session, input: Value) -> Gql {
    server
        .gql(
            Some(admin),
            &format!(
                "mutation($input: CreateAgentInput!) {{ createAgent(input: $input) {{
                    agent {{ {AGENT_FIELDS} }} userErrors {{ field message code }} }} }}"
            ),
            json!({ "input": input }),
        )
        .await
}

/// Creates an agent that must succeed; returns its global ID.
async fn new_agent(server: &TestServer, admin: &Session, username: &str, extra: Value) -> String {
    let mut input = json!({ "displayName": username, "username": username, "password": "secret-1" });
    input.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
    let response = create_agent(server, admin, input).await.data();
    assert_eq!(response["createAgent"]["userErrors"], json!([]), "{response}");
    response["createAgent"]["agent"]["id"].as_str().unwrap().to_owned()
}

async fn update_agent(server: &TestServer, session: &Session, input: Value) -> Gql {
    server
        .gql(
            Some(session),
            &format!(
                "mutation($input: UpdateAgentInput!) {{ updateAgent(input: $input) {{
                    agent {{ {AGENT_FIELDS} }} userErrors {{ field message code }} }} }}"
            ),
            json!({ "input": input }),
        )
        .await
}

async fn set_enabled(server: &TestServer, admin: &Session, ids: Value, enabled: bool) -> Gql {
    server
        .gql(
            Some(admin),
            "mutation($ids: [ID!]!, $enabled: Boolean!) { setAgentsEnabled(ids: $ids, enabled: $enabled) {
                agents { id enabled presence } affectedCount userErrors { field message code } } }",
            json!({ "ids": ids, "enabled": enabled }),
        )
        .await
}

async fn delete_agents(server: &TestServer, admin: &Session, ids: Value) -> Gql {
    server
        .gql(
            Some(admin),
            "mutation($ids: [ID!]!) { deleteAgents(ids: $ids) { deletedIds deletedCount userErrors { field code } } }",
            json!({ "ids": ids }),
        )
        .await
}

async fn agent_count(server: &TestServer, admin: &Session) -> i64 {
    let data = server.gql(Some(admin), "{ agents { totalCount } }", json!({})).await.data();
    data["agents"]["totalCount"].as_i64().unwrap()
}

fn errors_of(response: &Gql, field: &str) -> Vec<(Value, String)> {
    response.data()[field]["userErrors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["field"].clone(), e["code"].as_str().unwrap().to_owned()))
        .collect()
}

async fn create_agent_stores_every_field(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let billing = server.create_queue(&admin, "Billing").await;
    let response = create_agent(
        &server,
        &admin,
        json!({
            "displayName": "  émile Zola ", "username": "Emile.Z", "password": "secret-1",
            "email": "emile@example.com", "role": "ADMIN", "queueIds": [billing],
            "showRealPhoneNumbers": true, "maxConcurrentSessions": 3
        }),
    )
    .await
    .data();
    let agent = &response["createAgent"]["agent"];
    assert_eq!(response["createAgent"]["userErrors"], json!([]));
    assert_eq!(agent["displayName"], "émile Zola");
    assert_eq!(agent["avatarInitial"], "É");
    assert_eq!(agent["username"], "emile.z");
    assert_eq!(agent["email"], "emile@example.com");
    assert_eq!(agent["role"], "ADMIN");
    assert_eq!(agent["enabled"], true);
    assert_eq!(agent["presence"], "OFFLINE");
    assert_eq!(agent["showRealPhoneNumbers"], true);
    assert_eq!(agent["maxConcurrentSessions"], 3);
    assert_eq!(agent["queues"], json!([{ "id": billing, "name": "Billing" }]));
    // Read back, and the new agent can sign in.
    let read = server
        .gql(
            Some(&admin),
            &format!("query($id: ID!) {{ agent(id: $id) {{ {AGENT_FIELDS} }} }}"),
            json!({ "id": agent["id"] }),
        )
        .await
        .data();
    assert_eq!(&read["agent"], agent);
    server.login("demo", "EMILE.Z", "secret-1").await;
    // Defaults: AGENT, no phone numbers, unlimited.
    let plain = create_agent(
        &server,
        &admin,
        json!({ "displayName": "Bob", "username": "bob", "password": "secret-1" }),
    )
    .await
    .data();
    let plain = &plain["createAgent"]["agent"];
    assert_eq!(
        (plain["role"].as_str(), plain["showRealPhoneNumbers"].as_bool()),
        (Some("AGENT"), Some(false))
    );
    assert!(plain["maxConcurrentSessions"].is_null() && plain["email"].is_null());
}

async fn create_agent_reports_every_invalid_field_and_writes_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let before = agent_count(&server, &admin).await;
    let response = create_agent(
        &server,
        &admin,
        json!({
            "displayName": "   ", "username": "no spaces", "password": "short", "email": "not-an-address",
            "maxConcurrentSessions": 0, "queueIds": ["bm90LWEtcXVldWU"]
        }),
    )
    .await;
    assert_eq!(response.status, 200);
    let mut errors = errors_of(&response, "createAgent");
    errors.sort_by_key(|(_, code)| code.clone());
    assert_eq!(
        errors,
        [
            (json!(["input", "displayName"]), "DISPLAY_NAME_REQUIRED".to_owned()),
            (json!(["input", "email"]), "INVALID_EMAIL".to_owned()),
            (json!(["input", "maxConcurrentSessions"]), "INVALID_MAX_CONCURRENT_SESSIONS".to_owned()),
            (json!(["input", "username"]), "INVALID_USERNAME".to_owned()),
            (json!(["input", "password"]), "PASSWORD_TOO_SHORT".to_owned()),
        ]
    );
    assert!(response.data()["createAgent"]["agent"].is_null());
    let long = create_agent(&server, &admin, json!({ "displayName": "x".repeat(101), "username": "okay", "password": "p".repeat(1025), "maxConcurrentSessions": 1001 })).await;
    let codes: Vec<String> = errors_of(&long, "createAgent").into_iter().map(|(_, code)| code).collect();
    assert_eq!(codes, ["DISPLAY_NAME_TOO_LONG", "PASSWORD_TOO_LONG", "INVALID_MAX_CONCURRENT_SESSIONS"]);
    let unknown_queue = create_agent(&server, &admin, json!({ "displayName": "Q", "username": "qq-agent", "password": "secret-1", "queueIds": ["bm90LWEtcXVldWU"] })).await;
    assert_eq!(
        errors_of(&unknown_queue, "createAgent"),
        [(json!(["input", "queueIds", "0"]), "NOT_FOUND".to_owned())]
    );
    assert_eq!(agent_count(&server, &admin).await, before);
}

async fn usernames_are_unique_case_insensitively(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    new_agent(&server, &admin, "ana", json!({})).await;
    let again = create_agent(
        &server,
        &admin,
        json!({ "displayName": "Ana 2", "username": "ANA", "password": "secret-1" }),
    )
    .await;
    assert_eq!(
        errors_of(&again, "createAgent"),
        [(json!(["input", "username"]), "USERNAME_TAKEN".to_owned())]
    );
    // Case-insensitive for ASCII only: the Kelvin sign, which Unicode lower-cases to "k", is
    // not a way to spell "kim", neither to create an agent nor to sign in.
    new_agent(&server, &admin, "kim", json!({})).await;
    let look_alike = create_agent(
        &server,
        &admin,
        json!({ "displayName": "Kim 2", "username": "\u{212A}im", "password": "secret-1" }),
    )
    .await;
    assert_eq!(
        errors_of(&look_alike, "createAgent"),
        [(json!(["input", "username"]), "INVALID_USERNAME".to_owned())]
    );
    let signed_in = server.try_login("demo", "\u{212A}im", "secret-1").await;
    assert_eq!(signed_in.user_error_codes("login"), ["INVALID_CREDENTIALS"]);
    server.login("demo", "KIM", "secret-1").await;
    // Another organization may use the same username.
    server.create_organization("acme", 5, "boss", "boss-password").await;
    let boss = server.login("acme", "boss", "boss-password").await;
    new_agent(&server, &boss, "ana", json!({})).await;
}

async fn quota(server: &TestServer, session: &Session) -> Value {
    server
        .gql(Some(session), "{ usage { agentQuota { used limit remaining nearLimit } } }", json!({}))
        .await
        .data()["usage"]["agentQuota"]
        .clone()
}

async fn seat_limit_is_exact_and_deleting_frees_a_seat(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_organization("small", 5, "boss", "boss-password").await;
    let boss = server.login("small", "boss", "boss-password").await;
    assert_eq!(
        quota(&server, &boss).await,
        json!({ "used": 1, "limit": 5, "remaining": 4, "nearLimit": false })
    );
    let mut ids = vec![];
    for n in 0..3 {
        ids.push(new_agent(&server, &boss, &format!("agent-{n}"), json!({})).await);
    }
    assert_eq!(
        quota(&server, &boss).await,
        json!({ "used": 4, "limit": 5, "remaining": 1, "nearLimit": true })
    );
    // A disabled agent still uses its seat.
    set_enabled(&server, &boss, json!([ids[0]]), false).await.data();
    new_agent(&server, &boss, "last-seat", json!({})).await;
    assert_eq!(quota(&server, &boss).await["remaining"], 0);
    let over = create_agent(
        &server,
        &boss,
        json!({ "displayName": "One Too Many", "username": "too-many", "password": "secret-1" }),
    )
    .await;
    assert_eq!(errors_of(&over, "createAgent"), [(Value::Null, "SEAT_LIMIT_REACHED".to_owned())]);
    assert_eq!(agent_count(&server, &boss).await, 5);
    delete_agents(&server, &boss, json!([ids[0]])).await.data();
    new_agent(&server, &boss, "too-many", json!({})).await;
}

async fn concurrent_creates_cannot_overrun_the_seat_limit(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_organization("small", 3, "boss", "boss-password").await;
    let boss = server.login("small", "boss", "boss-password").await;
    let attempts = (0..6).map(|n| {
        create_agent(
            &server,
            &boss,
            json!({ "displayName": "Racer", "username": format!("racer-{n}"), "password": "secret-1" }),
        )
    });
    let results = futures_util::future::join_all(attempts).await;
    let created = results.iter().filter(|r| r.data()["createAgent"]["agent"].is_object()).count();
    let refused =
        results.iter().filter(|r| r.user_error_codes("createAgent") == ["SEAT_LIMIT_REACHED"]).count();
    assert_eq!((created, refused), (2, 4));
    assert_eq!(quota(&server, &boss).await["used"], 3);
}

/// The organization's `agent_count`, kept by every create and delete, against a count of the
/// rows after creates, single deletes and overlapping bulk deletes all race one another.
async fn the_kept_agent_count_survives_concurrent_creates_and_deletes(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    organization::Entity::update_many()
        .col_expr(organization::Column::SeatLimit, Expr::value(200))
        .filter(organization::Column::Slug.eq("demo"))
        .exec(server.db())
        .await
        .unwrap();
    let victims = server.seed_agents("demo", "victim", 40).await;
    let creates = (0..16).map(|n| {
        create_agent(
            &server,
            &admin,
            json!({ "displayName": "New", "username": format!("new-{n}"), "password": "secret-1" }),
        )
    });
    let delete = "mutation($ids: [ID!]!) { deleteAgents(ids: $ids) { deletedCount userErrors { code } } }";
    // Each victim is named by a single delete and by a bulk delete of ten that overlaps it:
    // whichever commits second finds it gone (NOT_FOUND, nothing written) or deletes nothing.
    let singles = victims.iter().map(|id| server.gql(Some(&admin), delete, json!({ "ids": [id] })));
    let bulks = victims.chunks(10).map(|ids| server.gql(Some(&admin), delete, json!({ "ids": ids })));
    let (created, deleted, bulk_deleted) = tokio::join!(
        futures_util::future::join_all(creates),
        futures_util::future::join_all(singles),
        futures_util::future::join_all(bulks),
    );
    assert!(created.iter().all(|r| r.data()["createAgent"]["agent"].is_object()), "every create succeeds");
    let removed: i64 = deleted
        .iter()
        .chain(&bulk_deleted)
        .map(|r| r.data()["deleteAgents"]["deletedCount"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(removed, 40, "each victim deleted once");

    let organization = organization::Entity::find()
        .filter(organization::Column::Slug.eq("demo"))
        .one(server.db())
        .await
        .unwrap()
        .unwrap();
    let live = agent::Entity::find()
        .filter(agent::Column::OrganizationId.eq(organization.id))
        .filter(agent::Column::DeletedAt.is_null())
        .count(server.db())
        .await
        .unwrap();
    assert_eq!(live, 1 + 16, "the admin and the created");
    assert_eq!(organization.agent_count, live as i64, "kept count against the rows");
    let read = server
        .gql(Some(&admin), "{ agents(first: 1) { totalCount } usage { agentQuota { used } } }", json!({}))
        .await
        .data();
    assert_eq!(read["agents"]["totalCount"], live);
    assert_eq!(read["usage"]["agentQuota"]["used"], live);
}

async fn update_agent_changes_given_fields_only(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let queue = server.create_queue(&admin, "Sales").await;
    let id =
        new_agent(&server, &admin, "bea", json!({ "email": "bea@example.com", "maxConcurrentSessions": 2 }))
            .await;
    let response = update_agent(
        &server,
        &admin,
        json!({ "id": id, "displayName": "Bea Arthur", "showRealPhoneNumbers": true, "queueIds": [queue] }),
    )
    .await
    .data();
    let agent = &response["updateAgent"]["agent"];
    assert_eq!(
        (agent["displayName"].as_str(), agent["email"].as_str()),
        (Some("Bea Arthur"), Some("bea@example.com"))
    );
    assert_eq!(agent["maxConcurrentSessions"], 2);
    assert_eq!(agent["showRealPhoneNumbers"], true);
    assert_eq!(agent["queues"][0]["name"], "Sales");
    let cleared = update_agent(
        &server,
        &admin,
        json!({ "id": id, "email": null, "maxConcurrentSessions": null, "queueIds": [] }),
    )
    .await
    .data();
    let agent = &cleared["updateAgent"]["agent"];
    assert!(agent["email"].is_null() && agent["maxConcurrentSessions"].is_null(), "{agent}");
    assert_eq!(agent["queues"], json!([]));
    assert_eq!(agent["displayName"], "Bea Arthur");
    let promoted =
        update_agent(&server, &admin, json!({ "id": id, "role": "ADMIN", "maxConcurrentSessions": 1000 }))
            .await
            .data();
    assert_eq!(promoted["updateAgent"]["agent"]["role"], "ADMIN");
}

async fn update_agent_validates_and_finds(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let id = new_agent(&server, &admin, "cid", json!({})).await;
    let response = update_agent(&server, &admin, json!({ "id": id, "displayName": "", "newPassword": "12345", "email": "nope", "maxConcurrentSessions": 1001 })).await;
    let mut errors = errors_of(&response, "updateAgent");
    errors.sort_by_key(|(_, code)| code.clone());
    assert_eq!(
        errors,
        [
            (json!(["input", "displayName"]), "DISPLAY_NAME_REQUIRED".to_owned()),
            (json!(["input", "email"]), "INVALID_EMAIL".to_owned()),
            (json!(["input", "maxConcurrentSessions"]), "INVALID_MAX_CONCURRENT_SESSIONS".to_owned()),
            (json!(["input", "newPassword"]), "PASSWORD_TOO_SHORT".to_owned()),
        ]
    );
    let read = server
        .gql(Some(&admin), "query($id: ID!) { agent(id: $id) { displayName } }", json!({ "id": id }))
        .await
        .data();
    assert_eq!(read["agent"]["displayName"], "cid");
    for missing in ["QWdlbnQ6OTk5OTk", "garbage"] {
        let response = update_agent(&server, &admin, json!({ "id": missing, "displayName": "X" })).await;
        assert_eq!(errors_of(&response, "updateAgent"), [(json!(["input", "id"]), "NOT_FOUND".to_owned())]);
    }
}

async fn username_cannot_be_changed(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let id = new_agent(&server, &admin, "dora", json!({})).await;
    let response = update_agent(&server, &admin, json!({ "id": id, "username": "explorer" })).await;
    assert!(response.errors()[0]["message"].as_str().unwrap().contains("username"), "{:?}", response.body);
    let read = server
        .gql(Some(&admin), "query($id: ID!) { agent(id: $id) { username } }", json!({ "id": id }))
        .await
        .data();
    assert_eq!(read["agent"]["username"], "dora");
}

async fn an_agent_edits_only_its_own_profile(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let own = new_agent(&server, &admin, "eve", json!({})).await;
    let other = new_agent(&server, &admin, "fay", json!({})).await;
    let eve = server.login("demo", "eve", "secret-1").await;
    let mine = update_agent(
        &server,
        &eve,
        json!({ "id": own, "displayName": "Eve Online", "email": "eve@example.com" }),
    )
    .await
    .data();
    assert_eq!(mine["updateAgent"]["agent"]["displayName"], "Eve Online");
    for input in [
        json!({ "id": own, "maxConcurrentSessions": 5 }),
        json!({ "id": own, "role": "ADMIN" }),
        json!({ "id": own, "showRealPhoneNumbers": true }),
        json!({ "id": other, "displayName": "Hacked" }),
    ] {
        assert_eq!(update_agent(&server, &eve, input.clone()).await.error_code(), "FORBIDDEN", "{input}");
    }
    // Reading the directory is allowed.
    let data = server
        .gql(
            Some(&eve),
            "{ agents { totalCount } queues { totalCount } usage { agentQuota { used } } }",
            json!({}),
        )
        .await
        .data();
    assert_eq!(data["agents"]["totalCount"], 3);
}

async fn agent_role_is_refused_every_admin_operation(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let queue = server.create_queue(&admin, "Support").await;
    let id = new_agent(&server, &admin, "gus", json!({})).await;
    let gus = server.login("demo", "gus", "secret-1").await;
    let operations = [
        (
            "mutation { createAgent(input: { displayName: \"X\", username: \"xx-x\", password: \"secret-1\" }) { userErrors { code } } }",
            json!({}),
        ),
        ("mutation($id: ID!) { deleteAgent(id: $id) { deletedCount } }", json!({ "id": id })),
        (
            "mutation($id: ID!) { setAgentsEnabled(ids: [$id], enabled: false) { affectedCount } }",
            json!({ "id": id }),
        ),
        ("mutation($id: ID!) { deleteAgents(ids: [$id]) { deletedCount } }", json!({ "id": id })),
        ("mutation { createQueue(input: { name: \"Mine\" }) { queue { id } } }", json!({})),
        (
            "mutation($q: ID!) { updateQueue(input: { id: $q, name: \"Renamed\" }) { queue { id } } }",
            json!({ "q": queue }),
        ),
        ("mutation($q: ID!) { deleteQueue(id: $q) { deletedId } }", json!({ "q": queue })),
        (
            "mutation($q: ID!, $id: ID!) { addAgentsToQueue(queueId: $q, agentIds: [$id]) { queue { id } } }",
            json!({ "q": queue, "id": id }),
        ),
        (
            "mutation($q: ID!, $id: ID!) { removeAgentsFromQueue(queueId: $q, agentIds: [$id]) { queue { id } } }",
            json!({ "q": queue, "id": id }),
        ),
    ];
    for (query, variables) in operations {
        let response = server.gql(Some(&gus), query, variables).await;
        assert_eq!(response.error_code(), "FORBIDDEN", "{query}");
    }
    assert_eq!(
        server.gql(Some(&admin), "{ queues { totalCount } }", json!({})).await.data()["queues"]["totalCount"],
        1
    );
}

async fn password_change_ends_the_agents_other_sessions(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let id = new_agent(&server, &admin, "hal", json!({})).await;
    let first = server.login("demo", "hal", "secret-1").await;
    let second = server.login("demo", "hal", "secret-1").await;
    update_agent(&server, &first, json!({ "id": id, "newPassword": "new-secret" })).await.data();
    let viewer = |session: Session| {
        let server = &server;
        async move {
            server.gql(Some(&session), "{ viewer { username } }", json!({})).await.data()["viewer"].clone()
        }
    };
    assert_eq!(viewer(first.clone()).await["username"], "hal", "the caller's own session stays");
    assert!(viewer(second).await.is_null(), "every other session ends");
    assert_eq!(
        server.try_login("demo", "hal", "secret-1").await.user_error_codes("login"),
        ["INVALID_CREDENTIALS"]
    );
    // An admin setting the password ends all of them.
    update_agent(&server, &admin, json!({ "id": id, "newPassword": "admin-chose" })).await.data();
    assert!(viewer(first).await.is_null());
    server.login("demo", "hal", "admin-chose").await;
}

async fn admins_cannot_disable_delete_or_demote_themselves(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let me = admin.agent_id.clone();
    let disable = set_enabled(&server, &admin, json!([me]), false).await;
    assert_eq!(
        errors_of(&disable, "setAgentsEnabled"),
        [(json!(["ids", "0"]), "CANNOT_MODIFY_SELF".to_owned())]
    );
    let delete = server
        .gql(
            Some(&admin),
            "mutation($id: ID!) { deleteAgent(id: $id) { deletedCount userErrors { field code } } }",
            json!({ "id": me }),
        )
        .await;
    assert_eq!(errors_of(&delete, "deleteAgent"), [(json!(["id"]), "CANNOT_MODIFY_SELF".to_owned())]);
    let demote = update_agent(&server, &admin, json!({ "id": me, "role": "AGENT" })).await;
    assert_eq!(
        errors_of(&demote, "updateAgent"),
        [(json!(["input", "role"]), "CANNOT_MODIFY_SELF".to_owned())]
    );
    let off = update_agent(&server, &admin, json!({ "id": me, "enabled": false })).await;
    assert_eq!(
        errors_of(&off, "updateAgent"),
        [(json!(["input", "enabled"]), "CANNOT_MODIFY_SELF".to_owned())]
    );
    let still = server.gql(Some(&admin), "{ viewer { role enabled } }", json!({})).await.data();
    assert_eq!(still["viewer"], json!({ "role": "ADMIN", "enabled": true }));
}

async fn two_admins_disabling_each_other_leave_one_enabled(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let other_id = new_agent(&server, &admin, "ivy", json!({ "role": "ADMIN" })).await;
    let ivy = server.login("demo", "ivy", "secret-1").await;
    let (a, b) = tokio::join!(
        set_enabled(&server, &admin, json!([other_id]), false),
        set_enabled(&server, &ivy, json!([admin.agent_id]), false),
    );
    let outcome = |response: &Gql| -> String {
        if response.errors().is_empty() {
            response.user_error_codes("setAgentsEnabled").first().cloned().unwrap_or_else(|| "OK".into())
        } else {
            response.error_code()
        }
    };
    let mut outcomes = [outcome(&a), outcome(&b)];
    outcomes.sort();
    // One wins; the other is refused (LAST_ADMIN) or was signed out by the winner first.
    assert!(outcomes == ["LAST_ADMIN", "OK"] || outcomes == ["OK", "UNAUTHENTICATED"], "{outcomes:?}");
    let enabled_admins = agent::Entity::find()
        .filter(agent::Column::Role.eq(Role::Admin))
        .filter(agent::Column::Enabled.eq(true))
        .count(server.db())
        .await
        .unwrap();
    assert_eq!(enabled_admins, 1);
}

async fn set_agents_enabled_is_all_or_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    server.create_organization("acme", 5, "boss", "boss-password").await;
    let boss = server.login("acme", "boss", "boss-password").await;
    let a = new_agent(&server, &admin, "jay", json!({})).await;
    let b = new_agent(&server, &admin, "kay", json!({})).await;
    let response =
        set_enabled(&server, &admin, json!([a, b, "QWdlbnQ6OTk5OTk5", boss.agent_id]), false).await;
    assert_eq!(
        errors_of(&response, "setAgentsEnabled"),
        [(json!(["ids", "2"]), "NOT_FOUND".to_owned()), (json!(["ids", "3"]), "NOT_FOUND".to_owned())]
    );
    assert_eq!(response.data()["setAgentsEnabled"]["affectedCount"], 0);
    let enabled = server
        .gql(Some(&admin), "{ agents(filter: { enabled: true }) { totalCount } }", json!({}))
        .await
        .data();
    assert_eq!(enabled["agents"]["totalCount"], 3, "nothing changed");
    let boss_still = server.gql(Some(&boss), "{ viewer { enabled } }", json!({})).await.data();
    assert_eq!(boss_still["viewer"]["enabled"], true);
}

async fn disabling_signs_agents_out_and_enabling_twice_is_no_error(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let a = new_agent(&server, &admin, "lee", json!({})).await;
    let b = new_agent(&server, &admin, "max", json!({})).await;
    let lee = server.login("demo", "lee", "secret-1").await;
    let response = set_enabled(&server, &admin, json!([a, b, a]), false).await.data();
    assert_eq!(response["setAgentsEnabled"]["affectedCount"], 2);
    assert_eq!(
        response["setAgentsEnabled"]["agents"],
        json!([
            { "id": a, "enabled": false, "presence": "OFFLINE" }, { "id": b, "enabled": false, "presence": "OFFLINE" }
        ])
    );
    assert_eq!(
        server.gql(Some(&lee), "{ organization { name } }", json!({})).await.error_code(),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        server.try_login("demo", "lee", "secret-1").await.user_error_codes("login"),
        ["AGENT_DISABLED"]
    );
    let enable = set_enabled(&server, &admin, json!([a]), true).await.data();
    assert_eq!(enable["setAgentsEnabled"]["affectedCount"], 1);
    let again = set_enabled(&server, &admin, json!([a]), true).await.data();
    assert_eq!(
        (again["setAgentsEnabled"]["affectedCount"].as_i64(), &again["setAgentsEnabled"]["userErrors"]),
        (Some(0), &json!([]))
    );
    server.login("demo", "lee", "secret-1").await;
    // The agents come back in the order named, not the database's.
    let reversed = set_enabled(&server, &admin, json!([b, a]), true).await.data();
    let ids: Vec<&Value> =
        reversed["setAgentsEnabled"]["agents"].as_array().unwrap().iter().map(|agent| &agent["id"]).collect();
    assert_eq!(ids, [&b, &a]);
}

async fn bulk_calls_take_1_to_1000_ids(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let queue = server.create_queue(&admin, "Bulk").await;
    let too_many: Vec<String> = (0..1001).map(|_| admin.agent_id.clone()).collect();
    for ids in [json!([]), json!(too_many)] {
        let disable = set_enabled(&server, &admin, ids.clone(), false).await;
        assert_eq!(errors_of(&disable, "setAgentsEnabled"), [(json!(["ids"]), "TOO_MANY_IDS".to_owned())]);
        let delete = delete_agents(&server, &admin, ids.clone()).await;
        assert_eq!(errors_of(&delete, "deleteAgents"), [(json!(["ids"]), "TOO_MANY_IDS".to_owned())]);
        let add = server.gql(Some(&admin), "mutation($q: ID!, $ids: [ID!]!) { addAgentsToQueue(queueId: $q, agentIds: $ids) { userErrors { field code } } }", json!({ "q": queue, "ids": ids })).await;
        assert_eq!(errors_of(&add, "addAgentsToQueue"), [(json!(["agentIds"]), "TOO_MANY_IDS".to_owned())]);
    }
}

async fn delete_agents_frees_seats_and_keeps_usernames_reusable(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let queue = server.create_queue(&admin, "Gone").await;
    let a = new_agent(&server, &admin, "ned", json!({ "queueIds": [queue] })).await;
    let b = new_agent(&server, &admin, "ozzy", json!({})).await;
    let ned = server.login("demo", "ned", "secret-1").await;
    let used = quota(&server, &admin).await["used"].as_i64().unwrap();
    let response = delete_agents(&server, &admin, json!([a, b])).await.data();
    assert_eq!(response["deleteAgents"]["deletedIds"], json!([a, b]));
    assert_eq!(response["deleteAgents"]["deletedCount"], 2);
    assert_eq!(quota(&server, &admin).await["used"].as_i64().unwrap(), used - 2);
    let gone = server.gql(Some(&admin), "query($a: ID!, $q: ID!) { agent(id: $a) { id } node(id: $a) { id } queue(id: $q) { agentCount } }", json!({ "a": a, "q": queue })).await.data();
    assert_eq!(gone, json!({ "agent": null, "node": null, "queue": { "agentCount": 0 } }));
    assert_eq!(
        server.gql(Some(&ned), "{ organization { name } }", json!({})).await.error_code(),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        server.try_login("demo", "ned", "secret-1").await.user_error_codes("login"),
        ["INVALID_CREDENTIALS"]
    );
    let again = delete_agents(&server, &admin, json!([a])).await;
    assert_eq!(errors_of(&again, "deleteAgents"), [(json!(["ids", "0"]), "NOT_FOUND".to_owned())]);
    new_agent(&server, &admin, "ned", json!({})).await;
}

async fn bulk_of_1000_costs_the_same_statements_as_bulk_of_10(backend: Backend) {
    let server = TestServer::start_with(backend, without_background_sweeps).await;
    let admin = server.admin().await;
    organization::Entity::update_many()
        .col_expr(organization::Column::SeatLimit, Expr::value(2000))
        .filter(organization::Column::Slug.eq("demo"))
        .exec(server.db())
        .await
        .unwrap();
    let ids = server.seed_agents("demo", "bulk", 1000).await;
    // Checked once, the admin's token costs no statement in either (see the session cache).
    server.gql(Some(&admin), "{ __typename }", json!({})).await.data();
    // The least of three tries per size: the counter is the server's, and a statement of
    // something else (a start-up job, late on a loaded machine) can land in one window.
    let mut costs = vec![];
    for size in [10, 1000] {
        let mut least = u64::MAX;
        for _ in 0..3 {
            let before = server.statements();
            let response = set_enabled(&server, &admin, json!(ids[..size]), false).await.data();
            least = least.min(server.statements() - before);
            assert_eq!(response["setAgentsEnabled"]["affectedCount"], size);
            set_enabled(&server, &admin, json!(ids[..size]), true).await.data();
        }
        costs.push(least);
    }
    assert_eq!(costs[0], costs[1], "statements for 10 and 1000 ids: {costs:?}");
    let before = server.statements();
    let response = delete_agents(&server, &admin, json!(ids)).await.data();
    assert_eq!(response["deleteAgents"]["deletedCount"], 1000);
    assert!(server.statements() - before <= costs[0] + 2, "delete of 1000: {}", server.statements() - before);
}

/// Statement counts are the server's: its periodic sweeps must not run inside a measurement.
/// No sweep runs during a test that counts statements.
pub(crate) fn without_background_sweeps(config: &mut agentdesk::config::Config) {
    config.presence_sweep_interval = std::time::Duration::from_secs(3600);
    config.routing_sweep_interval = std::time::Duration::from_secs(3600);
}

async fn page(server: &TestServer, session: &Session, args: &str) -> Value {
    let query = format!(
        "{{ agents({args}) {{ totalCount edges {{ cursor node {{ username }} }}
            pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }} }} }}"
    );
    server.gql(Some(session), &query, json!({})).await.data()["agents"].clone()
}

fn usernames(page: &Value) -> Vec<String> {
    page["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["username"].as_str().unwrap().to_owned())
        .collect()
}

async fn agents_paginate_forwards_and_backwards_with_filters_and_order(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    server.seed_agents("demo", "pg", 7).await;
    let all = usernames(&page(&server, &admin, "first: 200, filter: { search: \"PG \" }").await);
    let expected: Vec<String> = (0..7).map(|n| format!("pg-{n:04}")).collect();
    assert_eq!(all, expected, "search matches display names case-insensitively");
    // Forwards, three at a time.
    let mut seen = vec![];
    let mut after = String::new();
    loop {
        let page = page(&server, &admin, &format!("first: 3, filter: {{ role: AGENT }} {after}")).await;
        assert_eq!(page["totalCount"], 7);
        seen.extend(usernames(&page));
        if !page["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = format!(", after: \"{}\"", page["pageInfo"]["endCursor"].as_str().unwrap());
    }
    assert_eq!(seen, expected);
    // Past the last agent no row carries the total along: it is counted on its own.
    let everyone = page(&server, &admin, "first: 200").await;
    assert_eq!(everyone["totalCount"], 8, "the admin and the seven agents");
    let end = everyone["pageInfo"]["endCursor"].as_str().unwrap();
    for (filter, total) in [("", 8), ("filter: { role: AGENT }", 7)] {
        let past_end = page(&server, &admin, &format!("after: \"{end}\" {filter}")).await;
        assert_eq!((usernames(&past_end).len(), &past_end["totalCount"]), (0, &json!(total)), "{filter}");
    }
    // Backwards from the end.
    let last = page(&server, &admin, "last: 3, filter: { role: AGENT }").await;
    assert_eq!(usernames(&last), expected[4..]);
    assert_eq!(last["pageInfo"]["hasPreviousPage"], true);
    let before = last["pageInfo"]["startCursor"].as_str().unwrap();
    let earlier =
        page(&server, &admin, &format!("last: 3, before: \"{before}\", filter: {{ role: AGENT }}")).await;
    assert_eq!(usernames(&earlier), expected[1..4]);
    // Order and other filters.
    let desc = page(&server, &admin, "first: 2, orderBy: { field: USERNAME, direction: DESC }").await;
    assert_eq!(usernames(&desc), ["pg-0006", "pg-0005"]);
    let after_desc = desc["pageInfo"]["endCursor"].as_str().unwrap();
    let next_desc = page(
        &server,
        &admin,
        &format!("first: 2, after: \"{after_desc}\", orderBy: {{ field: USERNAME, direction: DESC }}"),
    )
    .await;
    assert_eq!(usernames(&next_desc), ["pg-0004", "pg-0003"]);
    let newest = page(&server, &admin, "first: 1, orderBy: { field: CREATED_AT, direction: DESC }").await;
    assert_eq!(usernames(&newest), ["pg-0006"]);
    let by_email = page(&server, &admin, "filter: { search: \"pg3@\" }").await;
    assert_eq!(usernames(&by_email), ["pg-0003"]);
    let admins = page(&server, &admin, "filter: { role: ADMIN, enabled: true, presence: OFFLINE }").await;
    assert_eq!(usernames(&admins), ["admin"]);
    let wildcard = page(&server, &admin, "filter: { search: \"%\" }").await;
    assert_eq!(wildcard["totalCount"], 0, "LIKE wildcards are matched literally");
    // A cursor of another order is refused.
    let mismatch = server
        .gql(Some(&admin), &format!("{{ agents(after: \"{after_desc}\") {{ totalCount }} }}"), json!({}))
        .await;
    assert_eq!(mismatch.error_code(), "BAD_REQUEST");
    let too_big = server.gql(Some(&admin), "{ agents(first: 201) { totalCount } }", json!({})).await;
    assert_eq!(too_big.error_code(), "BAD_REQUEST");
}

async fn pages_cost_the_same_statements_at_5_and_200(backend: Backend) {
    let server = TestServer::start_with(backend, without_background_sweeps).await;
    let admin = server.admin().await;
    organization::Entity::update_many()
        .col_expr(organization::Column::SeatLimit, Expr::value(500))
        .filter(organization::Column::Slug.eq("demo"))
        .exec(server.db())
        .await
        .unwrap();
    let ids = server.seed_agents("demo", "load", 250).await;
    let q1 = server.create_queue(&admin, "One").await;
    let q2 = server.create_queue(&admin, "Two").await;
    for queue in [&q1, &q2] {
        server.gql(Some(&admin), "mutation($q: ID!, $ids: [ID!]!) { addAgentsToQueue(queueId: $q, agentIds: $ids) { userErrors { code } } }", json!({ "q": queue, "ids": ids[..200] })).await.data();
    }
    let page = |size: usize| {
        format!(
            "{{ agents(first: {size}, filter: {{ role: AGENT }}) {{ totalCount nodes {{ username queues {{ name agentCount }} }} }} }}"
        )
    };
    // The admin's token is warm (checked from the session cache): no statement is its.
    let mut costs = vec![];
    for size in [5, 200] {
        let before = server.statements();
        let data = server.gql(Some(&admin), &page(size), json!({})).await.data();
        costs.push(server.statements() - before);
        assert_eq!(data["agents"]["nodes"].as_array().unwrap().len(), size);
        assert_eq!(
            data["agents"]["nodes"][0]["queues"],
            json!([{ "name": "One", "agentCount": 200 }, { "name": "Two", "agentCount": 200 }])
        );
    }
    assert_eq!(costs[0], costs[1], "statements for pages of 5 and 200: {costs:?}");
    // A token this instance has not checked yet costs its session's one statement.
    let cold = server.admin().await;
    let before = server.statements();
    server.gql(Some(&cold), &page(5), json!({})).await.data();
    assert_eq!(server.statements() - before, costs[0] + 1, "a page with a cold token");

    // A page that shows queues but not their sizes does not count members.
    let before = server.statements();
    let data = server
        .gql(Some(&admin), "{ agents(first: 200, filter: { role: AGENT }) { totalCount nodes { username queues { name } } } }", json!({}))
        .await
        .data();
    assert_eq!(server.statements() - before, costs[1] - 1, "a page without agentCount");
    // The target: the agents with their count and their queues, in one statement;
    // the token is warm.
    assert_eq!(costs[1] - 1, 1, "a page: the agents with their count and their queues");
    assert_eq!(data["agents"]["nodes"][0]["queues"], json!([{ "name": "One" }, { "name": "Two" }]));
    // A page reads its agents' cards (the columns a listing shows) and, only when it shows a
    // field beyond them, their other columns too: in the same statement, at any size.
    let cards = |size: usize| {
        format!("{{ agents(first: {size}, filter: {{ role: AGENT }}) {{ nodes {{ username }} }} }}")
    };
    let details = |size: usize| {
        format!(
            "{{ agents(first: {size}, filter: {{ role: AGENT }}) {{ nodes {{ username updatedAt remainingCapacity presenceReason }} }} }}"
        )
    };
    let mut costs = vec![];
    for (query, shows_details) in [(cards(200), false), (details(5), true), (details(200), true)] {
        let before = server.statements();
        let data = server.gql(Some(&admin), &query, json!({})).await.data();
        costs.push(server.statements() - before);
        let first = &data["agents"]["nodes"][0];
        assert!(first["username"].is_string(), "{data}");
        assert_eq!(first["updatedAt"].is_string(), shows_details, "{data}");
    }
    assert!(costs.iter().all(|&cost| cost == costs[0]), "cards, details of 5, details of 200: {costs:?}");
    // One agent's queues, outside a page, count through the DataLoader.
    let one = server
        .gql(
            Some(&admin),
            "query($a: ID!) { agent(id: $a) { queues { name agentCount } } }",
            json!({ "a": ids[0] }),
        )
        .await
        .data();
    assert_eq!(
        one["agent"]["queues"],
        json!([{ "name": "One", "agentCount": 200 }, { "name": "Two", "agentCount": 200 }])
    );
}

async fn queues_are_created_renamed_filled_and_deleted(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let queue = server.create_queue(&admin, "Billing").await;
    let queue_mutation = |query: &'static str, variables: Value| {
        let (server, admin) = (&server, &admin);
        async move { server.gql(Some(admin), query, variables).await }
    };
    let duplicate = queue_mutation(
        "mutation { createQueue(input: { name: \" billing \" }) { queue { id } userErrors { field code } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        errors_of(&duplicate, "createQueue"),
        [(json!(["input", "name"]), "QUEUE_NAME_TAKEN".to_owned())]
    );
    let empty = queue_mutation(
        "mutation { createQueue(input: { name: \"  \" }) { queue { id } userErrors { field code } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        errors_of(&empty, "createQueue"),
        [(json!(["input", "name"]), "INVALID_QUEUE_NAME".to_owned())]
    );
    let renamed = queue_mutation("mutation($id: ID!) { updateQueue(input: { id: $id, name: \"Billing EU\" }) { queue { name } userErrors { code } } }", json!({ "id": queue })).await.data();
    assert_eq!(renamed["updateQueue"]["queue"]["name"], "Billing EU");
    let a = new_agent(&server, &admin, "pat", json!({})).await;
    let b = new_agent(&server, &admin, "quin", json!({})).await;
    let added = queue_mutation("mutation($q: ID!, $ids: [ID!]!) { addAgentsToQueue(queueId: $q, agentIds: $ids) { queue { agentCount agents { totalCount nodes { username } } } userErrors { code } } }", json!({ "q": queue, "ids": [a, b, a] })).await.data();
    assert_eq!(added["addAgentsToQueue"]["queue"]["agentCount"], 2);
    assert_eq!(
        added["addAgentsToQueue"]["queue"]["agents"]["nodes"],
        json!([{ "username": "pat" }, { "username": "quin" }])
    );
    let filtered = page(&server, &admin, &format!("filter: {{ queueId: \"{queue}\" }}")).await;
    assert_eq!(usernames(&filtered), ["pat", "quin"]);
    let removed = queue_mutation("mutation($q: ID!, $ids: [ID!]!) { removeAgentsFromQueue(queueId: $q, agentIds: $ids) { queue { agentCount } userErrors { code } } }", json!({ "q": queue, "ids": [a] })).await.data();
    assert_eq!(removed["removeAgentsFromQueue"]["queue"]["agentCount"], 1);
    let listing =
        queue_mutation("{ queues(first: 10) { totalCount nodes { name } } }", json!({})).await.data();
    assert_eq!(listing["queues"], json!({ "totalCount": 1, "nodes": [{ "name": "Billing EU" }] }));
    let deleted = queue_mutation(
        "mutation($id: ID!) { deleteQueue(id: $id) { deletedId userErrors { code } } }",
        json!({ "id": queue }),
    )
    .await
    .data();
    assert_eq!(deleted["deleteQueue"]["deletedId"], queue.as_str());
    let after = queue_mutation(
        "query($id: ID!, $b: ID!) { queue(id: $id) { id } agent(id: $b) { queues { id } } }",
        json!({ "id": queue, "b": b }),
    )
    .await
    .data();
    assert_eq!(after, json!({ "queue": null, "agent": { "queues": [] } }));
    let again = queue_mutation(
        "mutation($id: ID!) { deleteQueue(id: $id) { deletedId userErrors { field code } } }",
        json!({ "id": queue }),
    )
    .await;
    assert_eq!(errors_of(&again, "deleteQueue"), [(json!(["id"]), "NOT_FOUND".to_owned())]);
    // The name is free again.
    server.create_queue(&admin, "billing eu").await;
}

async fn queue_membership_changes_are_all_or_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let queue = server.create_queue(&admin, "Strict").await;
    let a = new_agent(&server, &admin, "rae", json!({})).await;
    let response = server.gql(Some(&admin), "mutation($q: ID!, $ids: [ID!]!) { addAgentsToQueue(queueId: $q, agentIds: $ids) { queue { id } userErrors { field code } } }", json!({ "q": queue, "ids": [a, "QWdlbnQ6NDI0Mg"] })).await;
    assert_eq!(
        errors_of(&response, "addAgentsToQueue"),
        [(json!(["agentIds", "1"]), "NOT_FOUND".to_owned())]
    );
    let count = server
        .gql(Some(&admin), "query($q: ID!) { queue(id: $q) { agentCount } }", json!({ "q": queue }))
        .await
        .data();
    assert_eq!(count["queue"]["agentCount"], 0);
    let no_queue = server.gql(Some(&admin), "mutation($ids: [ID!]!) { addAgentsToQueue(queueId: \"UXVldWU6OTk5\", agentIds: $ids) { userErrors { field code } } }", json!({ "ids": [a] })).await;
    assert_eq!(errors_of(&no_queue, "addAgentsToQueue"), [(json!(["queueId"]), "NOT_FOUND".to_owned())]);
}

async fn mutations_are_refused_while_the_service_is_disabled(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let queue = server.create_queue(&admin, "Paused").await;
    let id = new_agent(&server, &admin, "sam", json!({})).await;
    organization::Entity::update_many()
        .col_expr(organization::Column::HumanAgentServiceEnabled, Expr::value(false))
        .filter(organization::Column::Slug.eq("demo"))
        .exec(server.db())
        .await
        .unwrap();
    let mutations = [
        (
            "createAgent",
            "mutation { createAgent(input: { displayName: \"X\", username: \"xx-x\", password: \"secret-1\" }) { userErrors { code } } }",
        ),
        (
            "updateAgent",
            "mutation($id: ID!) { updateAgent(input: { id: $id, displayName: \"Y\" }) { userErrors { code } } }",
        ),
        ("deleteAgent", "mutation($id: ID!) { deleteAgent(id: $id) { userErrors { code } } }"),
        (
            "setAgentsEnabled",
            "mutation($id: ID!) { setAgentsEnabled(ids: [$id], enabled: false) { userErrors { code } } }",
        ),
        ("deleteAgents", "mutation($id: ID!) { deleteAgents(ids: [$id]) { userErrors { code } } }"),
        ("createQueue", "mutation { createQueue(input: { name: \"New\" }) { userErrors { code } } }"),
        (
            "updateQueue",
            "mutation($q: ID!) { updateQueue(input: { id: $q, name: \"Z\" }) { userErrors { code } } }",
        ),
        ("deleteQueue", "mutation($q: ID!) { deleteQueue(id: $q) { userErrors { code } } }"),
        (
            "addAgentsToQueue",
            "mutation($q: ID!, $id: ID!) { addAgentsToQueue(queueId: $q, agentIds: [$id]) { userErrors { code } } }",
        ),
        (
            "removeAgentsFromQueue",
            "mutation($q: ID!, $id: ID!) { removeAgentsFromQueue(queueId: $q, agentIds: [$id]) { userErrors { code } } }",
        ),
    ];
    for (name, query) in mutations {
        let response = server.gql(Some(&admin), query, json!({ "id": id, "q": queue })).await;
        assert_eq!(response.user_error_codes(name), ["HUMAN_AGENT_SERVICE_DISABLED"], "{name}");
    }
    let read = server
        .gql(
            Some(&admin),
            "{ organization { humanAgentServiceEnabled } agents { totalCount } queues { totalCount } }",
            json!({}),
        )
        .await
        .data();
    assert_eq!(
        read,
        json!({ "organization": { "humanAgentServiceEnabled": false }, "agents": { "totalCount": 2 }, "queues": { "totalCount": 1 } })
    );
}

async fn another_organizations_ids_are_not_found_anywhere(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let queue = server.create_queue(&admin, "Ours").await;
    let agent = new_agent(&server, &admin, "tia", json!({ "queueIds": [queue] })).await;
    server.create_organization("acme", 5, "boss", "boss-password").await;
    let boss = server.login("acme", "boss", "boss-password").await;
    let reads = server
        .gql(
            Some(&boss),
            "query($a: ID!, $q: ID!) { agent(id: $a) { id } queue(id: $q) { id } n1: node(id: $a) { id } n2: node(id: $q) { id }
               agents(filter: { queueId: $q }) { totalCount } }",
            json!({ "a": agent, "q": queue }),
        )
        .await
        .data();
    assert_eq!(
        reads,
        json!({ "agent": null, "queue": null, "n1": null, "n2": null, "agents": { "totalCount": 0 } })
    );
    // One ID per record: another spelling of our own agent's number finds nothing.
    let padded = URL_SAFE_NO_PAD.encode(format!("Agent:0{}", number_of(&agent)));
    let other_spelling = server
        .gql(Some(&admin), "query($a: ID!) { agent(id: $a) { id } }", json!({ "a": padded }))
        .await
        .data();
    assert_eq!(other_spelling, json!({ "agent": null }));
    let writes = [
        (
            "updateAgent",
            "mutation($a: ID!) { updateAgent(input: { id: $a, displayName: \"Mine\" }) { userErrors { code } } }",
        ),
        ("deleteAgent", "mutation($a: ID!) { deleteAgent(id: $a) { userErrors { code } } }"),
        (
            "setAgentsEnabled",
            "mutation($a: ID!) { setAgentsEnabled(ids: [$a], enabled: false) { userErrors { code } } }",
        ),
        ("deleteAgents", "mutation($a: ID!) { deleteAgents(ids: [$a]) { userErrors { code } } }"),
        (
            "updateQueue",
            "mutation($q: ID!) { updateQueue(input: { id: $q, name: \"Mine\" }) { userErrors { code } } }",
        ),
        ("deleteQueue", "mutation($q: ID!) { deleteQueue(id: $q) { userErrors { code } } }"),
        (
            "createAgent",
            "mutation($q: ID!) { createAgent(input: { displayName: \"Z\", username: \"zed\", password: \"secret-1\", queueIds: [$q] }) { userErrors { code } } }",
        ),
    ];
    for (name, query) in writes {
        let response = server.gql(Some(&boss), query, json!({ "a": agent, "q": queue })).await;
        assert_eq!(response.user_error_codes(name), ["NOT_FOUND"], "{name}");
    }
    let own_queue = server.create_queue(&boss, "Theirs").await;
    let add = server.gql(Some(&boss), "mutation($q: ID!, $a: ID!) { addAgentsToQueue(queueId: $q, agentIds: [$a]) { userErrors { field code } } }", json!({ "q": own_queue, "a": agent })).await;
    assert_eq!(errors_of(&add, "addAgentsToQueue"), [(json!(["agentIds", "0"]), "NOT_FOUND".to_owned())]);
    let add_to_ours = server.gql(Some(&boss), "mutation($q: ID!, $a: ID!) { addAgentsToQueue(queueId: $q, agentIds: [$a]) { userErrors { field code } } }", json!({ "q": queue, "a": boss.agent_id })).await;
    assert_eq!(errors_of(&add_to_ours, "addAgentsToQueue"), [(json!(["queueId"]), "NOT_FOUND".to_owned())]);
    // Nothing of ours changed.
    let ours = server
        .gql(
            Some(&admin),
            "query($a: ID!) { agent(id: $a) { displayName enabled queues { name } } }",
            json!({ "a": agent }),
        )
        .await
        .data();
    assert_eq!(
        ours["agent"],
        json!({ "displayName": "tia", "enabled": true, "queues": [{ "name": "Ours" }] })
    );
}
