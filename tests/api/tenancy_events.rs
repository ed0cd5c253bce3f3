//! Events cost only their own tenant: each organization's subscribers hear exactly its
//! events, a burst in one organization (larger than any buffer the bus had when all tenants
//! shared one) leaves another's subscriptions live and complete, revocations close exactly
//! their own sockets, and a lost notification still resynchronises every organization.

use std::time::Duration;

use agentdesk::db::entities::{agent, conversation, organization, queue};
use agentdesk::presence::model::Presence;
use agentdesk::routing::model::Status;
use chrono::Utc;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, prelude::Expr};
use serde_json::{Value, json};

use crate::{
    common::{
        Backend, Session, TestServer,
        metrics::until_listening,
        number_of,
        server::AGENT_PASSWORD,
        ws::{Ending, Protocol, WsClient},
    },
    directory_live::wait_until_live,
};

pub fn tests() -> Vec<crate::common::Test> {
    [
        crate::tests![
            each_organization_hears_exactly_its_own_events,
            a_burst_in_one_organization_leaves_anothers_subscriptions_live_and_complete,
            revocations_close_exactly_their_own_sockets,
        ],
        crate::postgres_tests![a_lost_notification_resynchronises_every_organization],
    ]
    .concat()
}

const PRESENCE: &str = "subscription { presenceChanged { status agent { username } } }";
const DIRECTORY: &str = "subscription { agentDirectoryChanged { kind agent { username } } }";
const CONVERSATIONS: &str = "subscription { conversationChanged { kind conversation { customerName } } }";
const MINE: &str = "subscription { myConversations { kind conversation { customerName } } }";
/// What has not arrived by then is not coming.
const QUIET: Duration = Duration::from_millis(700);
const CLOSE_WITHIN: Duration = Duration::from_secs(1);
const ADMIN_PASSWORD: &str = "other-admin-1";

/// One organization: its ADMIN watching presence, the directory and every conversation (a
/// socket each, so that reading one never skips another's messages), and an AGENT of its
/// queue watching its own conversations.
struct Tenant {
    slug: &'static str,
    admin: Session,
    agent: Session,
    queue: String,
    presence: WsClient,
    directory: WsClient,
    conversations: WsClient,
    mine: WsClient,
}

impl Tenant {
    /// `demo`, or a new organization of that slug.
    async fn open(server: &TestServer, slug: &'static str) -> Self {
        let admin = if slug == "demo" {
            server.admin().await
        } else {
            server.create_organization(slug, 2000, "boss", ADMIN_PASSWORD).await;
            server.login(slug, "boss", ADMIN_PASSWORD).await
        };
        let queue = server.create_queue(&admin, "Support").await;
        let username = format!("{slug}-agent");
        server.create_agent(&admin, &username, json!({ "queueIds": [queue] })).await;
        let agent = server.login(slug, &username, AGENT_PASSWORD).await;
        let socket = |session: &Session, id: &'static str, query: &'static str| {
            let session = session.clone();
            async move {
                let mut socket =
                    WsClient::connect(server, Protocol::TransportWs, Some(&session)).await.unwrap();
                socket.subscribe(id, query, json!({})).await;
                socket
            }
        };
        let presence = socket(&admin, "p", PRESENCE).await;
        let mut directory = socket(&admin, "d", DIRECTORY).await;
        wait_until_live(server, &admin, &mut directory).await;
        let conversations = socket(&admin, "c", CONVERSATIONS).await;
        let mine = socket(&agent, "m", MINE).await;
        Self { slug, admin, agent, queue, presence, directory, conversations, mine }
    }

    /// One event of each feed: the agent comes ONLINE, is renamed, and is given a new
    /// conversation.
    async fn act(&self, server: &TestServer) {
        server.go_online(&self.agent).await;
        let rename = "mutation($id: ID!, $name: String!) {
            updateAgent(input: { id: $id, displayName: $name }) { userErrors { code } } }";
        let renamed =
            server.gql(Some(&self.admin), rename, json!({ "id": self.agent.agent_id, "name": self.slug }));
        assert_eq!(renamed.await.data()["updateAgent"]["userErrors"], json!([]));
        let create = "mutation($input: CreateConversationInput!) {
            createConversation(input: $input) { conversation { status } userErrors { code } } }";
        let input = json!({ "input": { "queueId": self.queue, "customerName": self.slug } });
        let created = server.gql(Some(&self.admin), create, input).await.data();
        assert_eq!(created["createConversation"]["conversation"]["status"], "ASSIGNED", "{created}");
    }

    /// Exactly what `act` causes, and nothing else: no event of another organization, no
    /// error (SUBSCRIPTION_BEHIND), nothing twice.
    async fn heard_exactly_its_own(&mut self) {
        let agent = format!("{}-agent", self.slug);
        let expected = [
            ("p", json!({ "presenceChanged": { "status": "ONLINE", "agent": { "username": agent } } })),
            ("d", json!({ "agentDirectoryChanged": { "kind": "UPDATED", "agent": { "username": agent } } })),
            (
                "c",
                json!({ "conversationChanged": { "kind": "ASSIGNED", "conversation": { "customerName": self.slug } } }),
            ),
            (
                "m",
                json!({ "myConversations": { "kind": "ASSIGNED", "conversation": { "customerName": self.slug } } }),
            ),
        ];
        for (id, data) in expected {
            let socket = match id {
                "p" => &mut self.presence,
                "d" => &mut self.directory,
                "c" => &mut self.conversations,
                _ => &mut self.mine,
            };
            let first = socket.next_result(id).await;
            assert_eq!(first, json!({ "data": data }), "{}: {id}", self.slug);
            assert_eq!(socket.results_within(id, QUIET).await, Vec::<Value>::new(), "{}: {id}", self.slug);
        }
    }

    /// Nothing at all arrives on any of its subscriptions.
    async fn heard_nothing(&mut self) {
        for (socket, id) in [
            (&mut self.presence, "p"),
            (&mut self.directory, "d"),
            (&mut self.conversations, "c"),
            (&mut self.mine, "m"),
        ] {
            assert_eq!(socket.results_within(id, QUIET).await, Vec::<Value>::new(), "{}: {id}", self.slug);
        }
    }
}

/// Waits until both organizations' subscriptions receive their feeds.
async fn all_listening(server: &TestServer, organizations: usize) {
    until_listening(server, "presence", organizations).await;
    until_listening(server, "directory", organizations).await;
    until_listening(server, "conversations", 2 * organizations).await;
}

async fn each_organization_hears_exactly_its_own_events(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut ours = Tenant::open(&server, "demo").await;
    let mut theirs = Tenant::open(&server, "other").await;
    all_listening(&server, 2).await;

    ours.act(&server).await;
    ours.heard_exactly_its_own().await;
    theirs.heard_nothing().await;

    theirs.act(&server).await;
    theirs.heard_exactly_its_own().await;
    ours.heard_nothing().await;
}

/// More than the 1,024 events all tenants' subscribers once shared, of each kind that ends a
/// subscription when it overflows, in one transaction.
const BURST_AGENTS: usize = 1000;
const BURST_CONVERSATIONS: usize = 1500;

/// `crowd`: 1,000 ONLINE agents holding 1,500 conversations, disabled in one call: 1,000
/// presence changes, 1,500 conversations taken back, and directory changes and revocations,
/// delivered at once.
async fn burst_in_crowd(server: &TestServer) {
    server.create_organization("crowd", 2000, "boss", ADMIN_PASSWORD).await;
    let boss = server.login("crowd", "boss", ADMIN_PASSWORD).await;
    server.create_queue(&boss, "Crowded").await;
    let ids = server.seed_agents("crowd", "c", BURST_AGENTS).await;
    let db = server.db();
    let crowd = organization::Entity::find()
        .filter(organization::Column::Slug.eq("crowd"))
        .one(db)
        .await
        .unwrap()
        .unwrap();
    agent::Entity::update_many()
        .col_expr(agent::Column::Presence, Expr::value(Presence::Online))
        .col_expr(agent::Column::PresenceChangedAt, Expr::value(Utc::now()))
        .filter(agent::Column::OrganizationId.eq(crowd.id))
        .filter(agent::Column::Username.starts_with("c-"))
        .exec(db)
        .await
        .unwrap();
    let queue =
        queue::Entity::find().filter(queue::Column::OrganizationId.eq(crowd.id)).one(db).await.unwrap();
    let queue = queue.unwrap();
    let now = Utc::now();
    let rows: Vec<_> = (0..BURST_CONVERSATIONS)
        .map(|n| conversation::ActiveModel {
            organization_id: Set(crowd.id),
            queue_id: Set(queue.id),
            status: Set(Status::Assigned),
            assigned_agent_id: Set(Some(number_of(&ids[n % BURST_AGENTS]))),
            created_at: Set(now),
            assigned_at: Set(Some(now)),
            ..Default::default()
        })
        .collect();
    for chunk in rows.chunks(500) {
        conversation::Entity::insert_many(chunk.to_vec()).exec(db).await.unwrap();
    }

    let disable =
        "mutation($ids: [ID!]!) { setAgentsEnabled(ids: $ids, enabled: false) { userErrors { code } } }";
    let disabled = server.gql(Some(&boss), disable, json!({ "ids": ids })).await.data();
    assert_eq!(disabled["setAgentsEnabled"]["userErrors"], json!([]), "{disabled}");
    let waiting = conversation::Entity::find()
        .filter(conversation::Column::OrganizationId.eq(crowd.id))
        .filter(conversation::Column::Status.eq(Status::Waiting));
    assert_eq!(
        sea_orm::PaginatorTrait::count(waiting, db).await.unwrap(),
        BURST_CONVERSATIONS as u64,
        "every conversation was taken back"
    );
}

async fn a_burst_in_one_organization_leaves_anothers_subscriptions_live_and_complete(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut quiet = Tenant::open(&server, "demo").await;
    all_listening(&server, 1).await;

    burst_in_crowd(&server).await;
    quiet.heard_nothing().await;
    // Still live, and complete: each subscription hears the next event of its organization.
    quiet.act(&server).await;
    quiet.heard_exactly_its_own().await;
}

/// Two sessions of one agent, another agent of the same organization, and an agent of
/// another organization, each with a socket: ending a session closes its socket only;
/// disabling an agent closes its sockets only, and never another organization's agent's
/// (whose database id may be the same number in a test that reuses ids, but not its route).
async fn revocations_close_exactly_their_own_sockets(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let ana_id = server.create_agent(&admin, "ana", json!({})).await;
    let ana_one = server.login("demo", "ana", AGENT_PASSWORD).await;
    let ana_two = server.login("demo", "ana", AGENT_PASSWORD).await;
    let bob = server.agent_session(&admin, "bob", json!({})).await;
    server.create_organization("other", 10, "boss", ADMIN_PASSWORD).await;
    let boss = server.login("other", "boss", ADMIN_PASSWORD).await;
    server.create_agent(&boss, "ana", json!({})).await;
    let other_ana = server.login("other", "ana", AGENT_PASSWORD).await;
    let live = &server;
    let connect = |session: &Session| {
        let session = session.clone();
        async move { WsClient::connect(live, Protocol::TransportWs, Some(&session)).await.unwrap() }
    };
    let (mut one, mut two, mut bobs, mut others) =
        (connect(&ana_one).await, connect(&ana_two).await, connect(&bob).await, connect(&other_ana).await);

    assert_eq!(server.gql(Some(&ana_one), "mutation { logout }", json!({})).await.data()["logout"], true);
    assert_eq!(one.ending(CLOSE_WITHIN).await, Ending::Closed(Some(4403)));
    for socket in [&mut two, &mut bobs, &mut others] {
        assert_eq!(socket.ending(QUIET).await, Ending::StillOpen);
    }

    let disable =
        "mutation($ids: [ID!]!) { setAgentsEnabled(ids: $ids, enabled: false) { userErrors { code } } }";
    let disabled = server.gql(Some(&admin), disable, json!({ "ids": [ana_id] })).await.data();
    assert_eq!(disabled["setAgentsEnabled"]["userErrors"], json!([]), "{disabled}");
    assert_eq!(two.ending(CLOSE_WITHIN).await, Ending::Closed(Some(4403)));
    for socket in [&mut bobs, &mut others] {
        assert_eq!(socket.ending(QUIET).await, Ending::StillOpen);
    }
}

/// PostgreSQL drops the LISTEN connection: every organization's directory and conversation
/// subscribers are told they may have missed changes, not only those of some.
async fn a_lost_notification_resynchronises_every_organization(backend: Backend) {
    assert_eq!(backend, Backend::Postgres, "listed with postgres_tests!");
    let server = TestServer::start(backend).await;
    let mut tenants = [Tenant::open(&server, "demo").await, Tenant::open(&server, "other").await];
    all_listening(&server, 2).await;

    let terminated = server
        .db()
        .execute_unprepared(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()",
        )
        .await
        .expect("terminate the listener's connection");
    assert_eq!(terminated.rows_affected(), 1, "one LISTEN connection");

    for tenant in &mut tenants {
        for (socket, id) in
            [(&mut tenant.directory, "d"), (&mut tenant.conversations, "c"), (&mut tenant.mine, "m")]
        {
            let told = socket.next_result(id).await;
            assert_eq!(
                told["errors"][0]["extensions"]["code"], "SUBSCRIPTION_BEHIND",
                "{}: {told}",
                tenant.slug
            );
        }
    }
}
