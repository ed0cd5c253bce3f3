//! Conversations: capacity-aware assignment, waiting and re-routing on every freeing event,
//! phone masking in every field and event, monthly sessions, roles, and the limit holding
//! under a concurrent burst.

use agentdesk::db::entities::{agent, conversation, organization, queue, queue_member};
use agentdesk::presence::model::Presence;
use agentdesk::routing::model::Status;
use chrono::Utc;
use futures_util::{StreamExt, stream};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, prelude::Expr};
use serde_json::{Value, json};

use crate::common::{
    Backend, Session, TestServer,
    metrics::until_listening,
    ws::{Protocol, WsClient},
};

pub fn tests() -> Vec<crate::common::Test> {
    crate::tests![
        assignment_prefers_the_least_busy_then_the_longest_idle,
        waiting_conversations_are_assigned_when_capacity_appears,
        disabling_or_deleting_an_agent_routes_its_conversations_again,
        phone_numbers_are_masked_in_every_field_for_viewers_without_permission,
        each_subscriber_sees_its_own_form_of_one_event,
        monthly_sessions_count_assignments_of_the_last_30_days,
        conversations_wait_while_the_service_is_off,
        a_queue_nobody_serves_does_not_hold_up_the_others,
        an_agent_coming_online_takes_as_many_as_it_can,
        agents_see_and_close_only_their_own_conversations,
        conversation_input_is_validated,
        no_agent_is_ever_over_its_limit_under_a_concurrent_burst,
        history_keeps_a_deleted_agent_where_it_points_at_it,
        a_page_of_conversations_costs_the_same_statements_at_5_and_50,
    ]
}

const CONVERSATION: &str = "id status customerName customerPhone assignedAgent { username } queue { name }";

struct Desk {
    server: TestServer,
    admin: Session,
    queue: String,
}

async fn desk(backend: Backend) -> Desk {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let created = server
        .gql(
            Some(&admin),
            "mutation { createQueue(input: { name: \"Support\" }) { queue { id } } }",
            json!({}),
        )
        .await
        .data();
    let queue = created["createQueue"]["queue"]["id"].as_str().unwrap().to_owned();
    Desk { server, admin, queue }
}

impl Desk {
    /// A signed-in AGENT of the queue with this limit, not yet online.
    async fn agent(&self, username: &str, limit: Option<i32>, show_phones: bool) -> Session {
        let created = self
            .server
            .gql(
                Some(&self.admin),
                "mutation($input: CreateAgentInput!) { createAgent(input: $input) { agent { id } userErrors { code } } }",
                json!({ "input": {
                    "displayName": username, "username": username, "password": "secret-1",
                    "queueIds": [self.queue], "maxConcurrentSessions": limit, "showRealPhoneNumbers": show_phones
                } }),
            )
            .await
            .data();
        assert!(created["createAgent"]["agent"].is_object(), "{created}");
        self.server.login("demo", username, "secret-1").await
    }

    async fn online(&self, session: &Session) {
        let query = "mutation { reportPresence(status: ONLINE) { presence } }";
        self.server.gql(Some(session), query, json!({})).await.data();
    }

    async fn create(&self, phone: Option<&str>) -> Value {
        self.create_as(&self.admin, phone).await
    }

    async fn create_as(&self, session: &Session, phone: Option<&str>) -> Value {
        let response = self
            .server
            .gql(
                Some(session),
                &format!(
                    "mutation($input: CreateConversationInput!) {{ createConversation(input: $input) {{
                        conversation {{ {CONVERSATION} }} userErrors {{ field code }} }} }}"
                ),
                json!({ "input": { "queueId": self.queue, "customerName": "Casey", "customerPhone": phone } }),
            )
            .await
            .data();
        assert_eq!(response["createConversation"]["userErrors"], json!([]), "{response}");
        response["createConversation"]["conversation"].clone()
    }

    async fn conversation(&self, session: &Session, id: &Value) -> Value {
        let query = format!("query($id: ID!) {{ conversation(id: $id) {{ {CONVERSATION} }} }}");
        self.server.gql(Some(session), &query, json!({ "id": id })).await.data()["conversation"].clone()
    }

    async fn close(&self, session: &Session, id: &Value) -> Value {
        let query = "mutation($id: ID!) { closeConversation(id: $id) { conversation { status } userErrors { code } } }";
        self.server.gql(Some(session), query, json!({ "id": id })).await.data()["closeConversation"].clone()
    }

    /// `count` WAITING conversations in the named queue, straight into the database: no
    /// drain runs for them until something makes capacity appear.
    async fn insert_waiting(&self, queue_name: &str, count: usize, created_at: chrono::DateTime<Utc>) {
        let db = self.server.db();
        let queue =
            queue::Entity::find().filter(queue::Column::Name.eq(queue_name)).one(db).await.unwrap().unwrap();
        let rows = (0..count).map(|_| conversation::ActiveModel {
            organization_id: Set(queue.organization_id),
            queue_id: Set(queue.id),
            status: Set(Status::Waiting),
            created_at: Set(created_at),
            ..Default::default()
        });
        conversation::Entity::insert_many(rows).exec(db).await.unwrap();
    }

    async fn agent_field(&self, session: &Session, field: &str) -> Value {
        let query = format!("query($id: ID!) {{ agent(id: $id) {{ {field} }} }}");
        self.server.gql(Some(&self.admin), &query, json!({ "id": session.agent_id })).await.data()["agent"]
            [field]
            .clone()
    }
}

fn holder(conversation: &Value) -> &str {
    conversation["assignedAgent"]["username"].as_str().unwrap_or("-")
}

async fn assignment_prefers_the_least_busy_then_the_longest_idle(backend: Backend) {
    let desk = desk(backend).await;
    let mut agents = vec![];
    for name in ["ann", "ben", "cat"] {
        let agent = desk.agent(name, Some(3), false).await;
        desk.online(&agent).await;
        agents.push(agent);
    }
    let mut holders = vec![];
    for _ in 0..4 {
        let conversation = desk.create(None).await;
        assert_eq!(conversation["status"], "ASSIGNED");
        holders.push(holder(&conversation).to_owned());
    }
    // Nobody had worked yet: by age of account; then each has one, and ann waited longest.
    assert_eq!(holders, ["ann", "ben", "cat", "ann"]);
    assert_eq!(desk.agent_field(&agents[0], "activeSessions").await, 2);
    let fifth = desk.create(None).await;
    assert_eq!(holder(&fifth), "ben", "least busy first");
}

async fn waiting_conversations_are_assigned_when_capacity_appears(backend: Backend) {
    let desk = desk(backend).await;
    let dee = desk.agent("dee", Some(1), false).await;
    // Nobody online: it waits.
    let first = desk.create(None).await;
    assert_eq!((first["status"].as_str(), holder(&first)), (Some("WAITING"), "-"));
    let waiting = desk
        .server
        .gql(
            Some(&desk.admin),
            "query($q: ID!) { queue(id: $q) { waitingConversations } }",
            json!({ "q": desk.queue }),
        )
        .await
        .data();
    assert_eq!(waiting["queue"]["waitingConversations"], 1);
    // Coming online takes it.
    desk.online(&dee).await;
    assert_eq!(holder(&desk.conversation(&desk.admin, &first["id"]).await), "dee");
    // At the limit, the next waits until the first is closed.
    let second = desk.create(None).await;
    assert_eq!(second["status"], "WAITING");
    assert_eq!(desk.close(&dee, &first["id"]).await["conversation"]["status"], "CLOSED");
    assert_eq!(holder(&desk.conversation(&desk.admin, &second["id"]).await), "dee");
    // A higher limit takes the next.
    let third = desk.create(None).await;
    assert_eq!(third["status"], "WAITING");
    let raise = "mutation($id: ID!) { updateAgent(input: { id: $id, maxConcurrentSessions: 2 }) { userErrors { code } } }";
    desk.server.gql(Some(&desk.admin), raise, json!({ "id": dee.agent_id })).await.data();
    assert_eq!(holder(&desk.conversation(&desk.admin, &third["id"]).await), "dee");
    // Joining the queue takes the next.
    let fourth = desk.create(None).await;
    assert_eq!(fourth["status"], "WAITING");
    let eve = desk.agent("eve", None, false).await;
    let leave = "mutation($q: ID!, $a: ID!) { removeAgentsFromQueue(queueId: $q, agentIds: [$a]) { userErrors { code } } }";
    desk.server.gql(Some(&desk.admin), leave, json!({ "q": desk.queue, "a": eve.agent_id })).await.data();
    desk.online(&eve).await;
    assert_eq!(desk.conversation(&desk.admin, &fourth["id"]).await["status"], "WAITING", "not in the queue");
    let join = "mutation($q: ID!, $a: ID!) { addAgentsToQueue(queueId: $q, agentIds: [$a]) { userErrors { code } } }";
    desk.server.gql(Some(&desk.admin), join, json!({ "q": desk.queue, "a": eve.agent_id })).await.data();
    assert_eq!(holder(&desk.conversation(&desk.admin, &fourth["id"]).await), "eve");
    assert_eq!(desk.agent_field(&dee, "activeSessions").await, 2);
}

async fn disabling_or_deleting_an_agent_routes_its_conversations_again(backend: Backend) {
    let desk = desk(backend).await;
    let fay = desk.agent("fay", Some(2), false).await;
    desk.online(&fay).await;
    let a = desk.create(None).await;
    let b = desk.create(None).await;
    let c = desk.create(None).await;
    assert_eq!(desk.close(&fay, &a["id"]).await["conversation"]["status"], "CLOSED");
    assert_eq!(holder(&desk.conversation(&desk.admin, &c["id"]).await), "fay");
    let gus = desk.agent("gus", Some(1), false).await;
    desk.online(&gus).await;
    let monthly = "{ usage { monthlySessions } }";
    let before = desk.server.gql(Some(&desk.admin), monthly, json!({})).await.data();

    let disable =
        "mutation($id: ID!) { setAgentsEnabled(ids: [$id], enabled: false) { userErrors { code } } }";
    desk.server.gql(Some(&desk.admin), disable, json!({ "id": fay.agent_id })).await.data();
    let b_now = desk.conversation(&desk.admin, &b["id"]).await;
    let c_now = desk.conversation(&desk.admin, &c["id"]).await;
    let mut states = [
        (b_now["status"].as_str().unwrap().to_owned(), holder(&b_now).to_owned()),
        (c_now["status"].as_str().unwrap().to_owned(), holder(&c_now).to_owned()),
    ];
    states.sort();
    // gus can take one of the two; the other waits. Nothing is lost.
    assert_eq!(states, [("ASSIGNED".to_owned(), "gus".to_owned()), ("WAITING".to_owned(), "-".to_owned())]);
    assert_eq!(desk.agent_field(&fay, "activeSessions").await, 0);

    let delete = "mutation($id: ID!) { deleteAgent(id: $id) { deletedCount } }";
    desk.server.gql(Some(&desk.admin), delete, json!({ "id": gus.agent_id })).await.data();
    for id in [&b["id"], &c["id"]] {
        assert_eq!(desk.conversation(&desk.admin, id).await["status"], "WAITING");
    }
    // Closed history stays (its agent is disabled, so still shown), and so does the count.
    assert_eq!(holder(&desk.conversation(&desk.admin, &a["id"]).await), "fay");
    assert_eq!(desk.server.gql(Some(&desk.admin), monthly, json!({})).await.data(), before);
    let hal = desk.agent("hal", None, false).await;
    desk.online(&hal).await;
    for id in [&b["id"], &c["id"]] {
        assert_eq!(holder(&desk.conversation(&desk.admin, id).await), "hal");
    }
}

async fn phone_numbers_are_masked_in_every_field_for_viewers_without_permission(backend: Backend) {
    let desk = desk(backend).await;
    let ida = desk.agent("ida", None, false).await;
    let jon = desk.agent("jon", None, true).await;
    desk.online(&ida).await;
    // The bootstrap admin may see real numbers; an admin without the permission may not.
    let masked_admin_id = desk.server.gql(Some(&desk.admin), "mutation { createAgent(input: { displayName: \"Kim\", username: \"kim\", password: \"secret-1\", role: ADMIN }) { agent { id } } }", json!({})).await.data();
    assert!(masked_admin_id["createAgent"]["agent"].is_object());
    let kim = desk.server.login("demo", "kim", "secret-1").await;

    let real = desk.create(Some("+1 415 555 0123")).await;
    assert_eq!(real["customerPhone"], "+14155550123", "stored in E.164, shown whole to the permitted");
    let payload = desk.create_as(&kim, Some("+44 7911 123456")).await;
    assert_eq!(payload["customerPhone"], "+44****3456", "mutation payloads are masked");
    let hk = desk.create(Some("+852 2345 6789")).await;

    // ida holds them all (the only one online).
    for (conversation, masked) in [(&real, "+1****0123"), (&payload, "+44****3456"), (&hk, "+852****6789")] {
        assert_eq!(desk.conversation(&ida, &conversation["id"]).await["customerPhone"], masked);
        assert_eq!(desk.conversation(&kim, &conversation["id"]).await["customerPhone"], masked);
    }
    let listing =
        desk.server.gql(Some(&ida), "{ conversations { nodes { customerPhone } } }", json!({})).await.data();
    let phones: Vec<&str> = listing["conversations"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["customerPhone"].as_str().unwrap())
        .collect();
    assert_eq!(phones, ["+852****6789", "+44****3456", "+1****0123"]);
    let node = desk
        .server
        .gql(
            Some(&kim),
            "query($id: ID!) { node(id: $id) { ... on Conversation { customerPhone } } }",
            json!({ "id": real["id"] }),
        )
        .await
        .data();
    assert_eq!(node["node"]["customerPhone"], "+1****0123");
    // jon has the permission but not the conversation: it stays hidden from an AGENT.
    assert!(desk.conversation(&jon, &real["id"]).await.is_null());
    assert_eq!(desk.conversation(&desk.admin, &payload["id"]).await["customerPhone"], "+447911123456");
}

async fn each_subscriber_sees_its_own_form_of_one_event(backend: Backend) {
    let desk = desk(backend).await;
    let make_admin = |name: &'static str, show: bool| {
        let desk = &desk;
        async move {
            let query = "mutation($u: String!, $s: Boolean!) { createAgent(input: { displayName: $u, username: $u, password: \"secret-1\", role: ADMIN, showRealPhoneNumbers: $s }) { agent { id } } }";
            desk.server.gql(Some(&desk.admin), query, json!({ "u": name, "s": show })).await.data();
            desk.server.login("demo", name, "secret-1").await
        }
    };
    let sees = make_admin("lou", true).await;
    let masked = make_admin("mia", false).await;
    let events = "subscription { conversationChanged { kind conversation { customerPhone assignedAgent { username } } } }";
    let mine = "subscription { myConversations { kind conversation { customerPhone } } }";
    let mut sees_socket = WsClient::connect(&desk.server, Protocol::TransportWs, Some(&sees)).await.unwrap();
    sees_socket.subscribe("c", events, json!({})).await;
    let mut masked_socket = WsClient::connect(&desk.server, Protocol::LegacyWs, Some(&masked)).await.unwrap();
    masked_socket.subscribe("c", events, json!({})).await;
    let nia = desk.agent("nia", None, false).await;
    let mut nia_socket = WsClient::connect(&desk.server, Protocol::TransportWs, Some(&nia)).await.unwrap();
    nia_socket.subscribe("m", mine, json!({})).await;
    // Each viewer sees phones its own way, so three executions.
    until_listening(&desk.server, "conversations", 3).await;
    desk.online(&nia).await;
    desk.create(Some("+14155550123")).await;

    let seen = sees_socket.next_result("c").await;
    assert_eq!(seen["data"]["conversationChanged"]["kind"], "ASSIGNED", "{seen}");
    assert_eq!(seen["data"]["conversationChanged"]["conversation"]["customerPhone"], "+14155550123");
    let hidden = masked_socket.next_result("c").await;
    assert_eq!(hidden["data"]["conversationChanged"]["conversation"]["customerPhone"], "+1****0123");
    let own = nia_socket.next_result("m").await;
    assert_eq!(
        own["data"]["myConversations"],
        json!({ "kind": "ASSIGNED", "conversation": { "customerPhone": "+1****0123" } })
    );
}

async fn monthly_sessions_count_assignments_of_the_last_30_days(backend: Backend) {
    let desk = desk(backend).await;
    let db = desk.server.db();
    let organization = organization::Entity::find()
        .filter(organization::Column::Slug.eq("demo"))
        .one(db)
        .await
        .unwrap()
        .unwrap();
    let queue_row = queue::Entity::find().one(db).await.unwrap().unwrap();
    let now = Utc::now();
    let month = chrono::Duration::days(30);
    let minute = chrono::Duration::minutes(1);
    for (assigned_at, status) in [
        (Some(now - month + minute), Status::Closed),
        (Some(now - month - minute), Status::Closed),
        (Some(now), Status::Assigned),
        (Some(now - chrono::Duration::days(2)), Status::Waiting),
        (None, Status::Waiting),
    ] {
        conversation::Entity::insert(conversation::ActiveModel {
            organization_id: Set(organization.id),
            queue_id: Set(queue_row.id),
            status: Set(status),
            created_at: Set(now - month - month),
            assigned_at: Set(assigned_at),
            ..Default::default()
        })
        .exec(db)
        .await
        .unwrap();
    }
    let usage = desk.server.gql(Some(&desk.admin), "{ usage { monthlySessions } }", json!({})).await.data();
    assert_eq!(usage["usage"]["monthlySessions"], 3, "inside the window, including one taken back since");
}

/// The service switch is part of the routing rule: while it is off, capacity appearing
/// assigns nothing; back on, the next chance does.
async fn conversations_wait_while_the_service_is_off(backend: Backend) {
    let desk = desk(backend).await;
    let gus = desk.agent("gus", Some(1), false).await;
    let waiting = desk.create(None).await;
    assert_eq!(waiting["status"], "WAITING");
    desk.server.set_human_agent_service("demo", false).await;
    desk.online(&gus).await;
    assert_eq!(desk.conversation(&desk.admin, &waiting["id"]).await["status"], "WAITING");
    assert_eq!(desk.agent_field(&gus, "activeSessions").await, 0);
    desk.server.set_human_agent_service("demo", true).await;
    let offline = "mutation { reportPresence(status: OFFLINE) { presence } }";
    desk.server.gql(Some(&gus), offline, json!({})).await.data();
    desk.online(&gus).await;
    assert_eq!(holder(&desk.conversation(&desk.admin, &waiting["id"]).await), "gus");
}

/// Draining the whole organization (after an agent is disabled) reads waiting
/// conversations oldest first, a batch at a time: a backlog longer than a batch in a queue
/// nobody serves must not keep a younger conversation of another queue from a free agent.
async fn a_queue_nobody_serves_does_not_hold_up_the_others(backend: Backend) {
    let desk = desk(backend).await;
    let ivy = desk.agent("ivy", Some(1), false).await;
    let kim = desk.agent("kim", Some(1), false).await;
    desk.online(&ivy).await;
    let taken_back = desk.create(None).await;
    assert_eq!(holder(&taken_back), "ivy");
    desk.online(&kim).await;

    let created = "mutation { createQueue(input: { name: \"Backlog\" }) { queue { id } } }";
    desk.server.gql(Some(&desk.admin), created, json!({})).await.data();
    desk.insert_waiting("Backlog", 150, Utc::now() - chrono::Duration::hours(1)).await;

    let disable =
        "mutation($id: ID!) { setAgentsEnabled(ids: [$id], enabled: false) { userErrors { code } } }";
    desk.server.gql(Some(&desk.admin), disable, json!({ "id": ivy.agent_id })).await.data();
    assert_eq!(holder(&desk.conversation(&desk.admin, &taken_back["id"]).await), "kim");
}

/// A drain reads waiting conversations in growing batches: an agent with room for all of
/// them takes them all at once, past the first batch.
async fn an_agent_coming_online_takes_as_many_as_it_can(backend: Backend) {
    let desk = desk(backend).await;
    let lou = desk.agent("lou", None, false).await;
    desk.insert_waiting("Support", 50, Utc::now()).await;
    desk.online(&lou).await;
    assert_eq!(desk.agent_field(&lou, "activeSessions").await, 50);
}

async fn agents_see_and_close_only_their_own_conversations(backend: Backend) {
    let desk = desk(backend).await;
    let ola = desk.agent("ola", Some(1), false).await;
    let pam = desk.agent("pam", Some(1), false).await;
    desk.online(&ola).await;
    let hers = desk.create(None).await;
    desk.online(&pam).await;
    let other = desk.create(None).await;
    assert_eq!((holder(&hers), holder(&other)), ("ola", "pam"));
    let listing =
        desk.server.gql(Some(&ola), "{ conversations { totalCount nodes { id } } }", json!({})).await.data();
    assert_eq!(listing["conversations"], json!({ "totalCount": 1, "nodes": [{ "id": hers["id"] }] }));
    assert!(desk.conversation(&ola, &other["id"]).await.is_null());
    let query = "mutation($id: ID!) { closeConversation(id: $id) { conversation { status } } }";
    let refused = desk.server.gql(Some(&ola), query, json!({ "id": other["id"] })).await;
    assert_eq!(refused.error_code(), "FORBIDDEN");
    let create = "mutation($q: ID!) { createConversation(input: { queueId: $q }) { userErrors { code } } }";
    assert_eq!(
        desk.server.gql(Some(&ola), create, json!({ "q": desk.queue })).await.error_code(),
        "FORBIDDEN"
    );
    assert_eq!(desk.close(&ola, &hers["id"]).await["conversation"]["status"], "CLOSED");
    assert_eq!(
        desk.close(&ola, &hers["id"]).await["conversation"]["status"],
        "CLOSED",
        "closing twice is harmless"
    );
    assert_eq!(desk.agent_field(&ola, "activeSessions").await, 0);
}

async fn conversation_input_is_validated(backend: Backend) {
    let desk = desk(backend).await;
    let create = "mutation($input: CreateConversationInput!) { createConversation(input: $input) { conversation { id } userErrors { field code } } }";
    let cases = [
        (
            json!({ "queueId": desk.queue, "customerPhone": "555-0123" }),
            json!([{ "field": ["input", "customerPhone"], "code": "INVALID_PHONE" }]),
        ),
        (
            json!({ "queueId": desk.queue, "customerName": "n".repeat(201) }),
            json!([{ "field": ["input", "customerName"], "code": "CUSTOMER_NAME_TOO_LONG" }]),
        ),
        (
            json!({ "queueId": "UXVldWU6OTk5OQ" }),
            json!([{ "field": ["input", "queueId"], "code": "NOT_FOUND" }]),
        ),
    ];
    for (input, errors) in cases {
        let response = desk.server.gql(Some(&desk.admin), create, json!({ "input": input })).await.data();
        assert_eq!(response["createConversation"]["userErrors"], errors, "{input}");
    }
    let none = desk.server.gql(Some(&desk.admin), "{ conversations { totalCount } }", json!({})).await.data();
    assert_eq!(none["conversations"]["totalCount"], 0);
    desk.server.set_human_agent_service("demo", false).await;
    let off = desk.server.gql(Some(&desk.admin), create, json!({ "input": { "queueId": desk.queue } })).await;
    assert_eq!(off.user_error_codes("createConversation"), ["HUMAN_AGENT_SERVICE_DISABLED"]);
}

/// 50 agents with limits 1–3, 1000 conversations created at once (through two instances
/// on PostgreSQL): no agent over its limit, each conversation ASSIGNED or WAITING, none
/// lost, every free seat used. Checked in the database.
async fn no_agent_is_ever_over_its_limit_under_a_concurrent_burst(backend: Backend) {
    let desk = desk(backend).await;
    let db = desk.server.db().clone();
    organization::Entity::update_many()
        .col_expr(organization::Column::SeatLimit, Expr::value(100))
        .exec(&db)
        .await
        .unwrap();
    let ids = desk.server.seed_agents("demo", "burst", 50).await;
    let queue_row = queue::Entity::find().one(&db).await.unwrap().unwrap();
    let agents =
        agent::Entity::find().filter(agent::Column::Username.starts_with("burst-")).all(&db).await.unwrap();
    assert_eq!(agents.len(), ids.len());
    let mut capacity = 0;
    for (n, row) in agents.iter().enumerate() {
        let limit = (n % 3) as i32 + 1;
        capacity += limit;
        agent::Entity::update_many()
            .col_expr(agent::Column::MaxConcurrentSessions, Expr::value(limit))
            .col_expr(agent::Column::Presence, Expr::value(Presence::Online))
            .col_expr(agent::Column::PresenceExpiresAt, Expr::value(Utc::now() + chrono::Duration::hours(1)))
            .filter(agent::Column::Id.eq(row.id))
            .exec(&db)
            .await
            .unwrap();
        queue_member::Entity::insert(queue_member::ActiveModel {
            queue_id: Set(queue_row.id),
            agent_id: Set(row.id),
            created_at: Set(Utc::now()),
        })
        .exec(&db)
        .await
        .unwrap();
    }
    let second = match backend {
        Backend::Postgres => Some(desk.server.another_instance().await),
        Backend::Sqlite => None,
    };
    let servers: Vec<&TestServer> = std::iter::once(&desk.server).chain(second.as_ref()).collect();
    let create = "mutation($q: ID!) { createConversation(input: { queueId: $q }) { conversation { status } userErrors { code } } }";
    let outcomes: Vec<String> = stream::iter(0..1000)
        .map(|n| {
            let server = servers[n % servers.len()];
            let (admin, queue) = (&desk.admin, &desk.queue);
            async move {
                let data = server.gql(Some(admin), create, json!({ "q": queue })).await.data();
                data["createConversation"]["conversation"]["status"].as_str().unwrap_or("LOST").to_owned()
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    assert!(outcomes.iter().all(|status| status == "ASSIGNED" || status == "WAITING"), "{outcomes:?}");

    let rows = conversation::Entity::find().all(&db).await.unwrap();
    assert_eq!(rows.len(), 1000, "none lost");
    let assigned = rows.iter().filter(|row| row.status == Status::Assigned).count();
    let waiting =
        rows.iter().filter(|row| row.status == Status::Waiting && row.assigned_agent_id.is_none()).count();
    assert_eq!(
        (assigned, waiting),
        (capacity as usize, 1000 - capacity as usize),
        "every seat used, the rest waiting"
    );
    for row in
        agent::Entity::find().filter(agent::Column::Username.starts_with("burst-")).all(&db).await.unwrap()
    {
        let held = conversation::Entity::find()
            .filter(conversation::Column::AssignedAgentId.eq(row.id))
            .filter(conversation::Column::Status.eq(Status::Assigned))
            .count(&db)
            .await
            .unwrap();
        let limit = row.max_concurrent_sessions.unwrap() as u64;
        assert!(held <= limit, "{} holds {held} over its limit {limit}", row.username);
        assert_eq!(held, row.active_sessions as u64, "{}: the counter matches the rows", row.username);
    }
    if let Some(second) = second {
        second.stop().await;
    }
}

/// A deleted agent is gone from the directory, from writes and from routing, but the records
/// of what it did still name it.
async fn history_keeps_a_deleted_agent_where_it_points_at_it(backend: Backend) {
    let desk = desk(backend).await;
    let ola = desk.agent("ola", None, false).await;
    desk.online(&ola).await;
    let handled = desk.create(None).await;
    assert_eq!(holder(&handled), "ola");
    desk.close(&ola, &handled["id"]).await;
    let delete = "mutation($id: ID!) { deleteAgent(id: $id) { deletedCount } }";
    desk.server.gql(Some(&desk.admin), delete, json!({ "id": ola.agent_id })).await.data();

    let query =
        "query($id: ID!) { conversation(id: $id) { status assignedAgent { id username deletedAt } } }";
    let data = desk.server.gql(Some(&desk.admin), query, json!({ "id": handled["id"] })).await.data();
    let agent = &data["conversation"]["assignedAgent"];
    assert_eq!((&agent["id"], &agent["username"]), (&json!(ola.agent_id), &json!("ola")), "{data}");
    assert!(agent["deletedAt"].is_string(), "{data}");
    // Its own sign-in is in the audit log with it as the actor.
    let audit = desk
        .server
        .gql(
            Some(&desk.admin),
            "query($id: ID!) { auditLog(filter: { actorId: $id }) { nodes { action actor { username deletedAt } } } }",
            json!({ "id": ola.agent_id }),
        )
        .await
        .data();
    let entries = audit["auditLog"]["nodes"].as_array().unwrap();
    assert!(!entries.is_empty(), "{audit}");
    assert!(
        entries
            .iter()
            .all(|entry| entry["actor"]["username"] == "ola" && entry["actor"]["deletedAt"].is_string())
    );

    // Nowhere else: not in the directory, not for a write, not for routing.
    let listed =
        desk.server.gql(Some(&desk.admin), "{ agents { nodes { username } } }", json!({})).await.data();
    assert!(!listed.to_string().contains("\"ola\""), "{listed}");
    let found = desk.server.gql(
        Some(&desk.admin),
        "query($id: ID!) { agent(id: $id) { id } }",
        json!({ "id": ola.agent_id }),
    );
    assert_eq!(found.await.data()["agent"], Value::Null);
    let update = "mutation($id: ID!) { updateAgent(input: { id: $id, displayName: \"Back\" }) { userErrors { code } } }";
    let refused = desk.server.gql(Some(&desk.admin), update, json!({ "id": ola.agent_id })).await.data();
    assert_eq!(refused["updateAgent"]["userErrors"][0]["code"], "NOT_FOUND");
    let waiting = desk.create(None).await;
    assert_eq!(waiting["status"], "WAITING", "nobody left to route to: {waiting}");
}

/// A conversation's queue and agent are read for the whole page at once (DataLoaders), not
/// one statement per row each (issue 23).
async fn a_page_of_conversations_costs_the_same_statements_at_5_and_50(backend: Backend) {
    let server = TestServer::start_with(backend, crate::directory::without_background_sweeps).await;
    let admin = server.admin().await;
    let queue = server.create_queue(&admin, "Support").await;
    let ola = server.agent_session(&admin, "ola", json!({ "queueIds": [queue] })).await;
    server.go_online(&ola).await;
    let create =
        "mutation($q: ID!) { createConversation(input: { queueId: $q }) { conversation { status } } }";
    for _ in 0..50 {
        let created = server.gql(Some(&admin), create, json!({ "q": queue })).await.data();
        assert_eq!(created["createConversation"]["conversation"]["status"], "ASSIGNED");
    }
    let mut costs = Vec::new();
    for size in [5, 50] {
        let page = format!(
            "{{ conversations(first: {size}) {{ nodes {{ queue {{ name }} assignedAgent {{ displayName }} }} }} }}"
        );
        // The server's counter also counts what runs beside the request (routing after the
        // assignments above, on a slow machine): the least of three reads is the page's own.
        let mut least = u64::MAX;
        for _ in 0..3 {
            let before = server.statements();
            let data = server.gql(Some(&admin), &page, json!({})).await.data();
            least = least.min(server.statements() - before);
            let nodes = data["conversations"]["nodes"].as_array().unwrap();
            assert_eq!(nodes.len(), size);
            let shown = json!({ "queue": { "name": "Support" }, "assignedAgent": { "displayName": "ola" } });
            assert!(nodes.iter().all(|node| *node == shown), "{data}");
        }
        costs.push(least);
    }
    // A DataLoader batches what is asked within a moment: on a loaded machine a page's loads
    // may fall into two batches, one statement more. What must never happen is one per row
    // (before the loaders: 12 and 102), which every read would show.
    assert!(costs[1] <= costs[0] + 2, "statements for pages of 5 and 50: {costs:?}");
}
