//! Permissions follow the agent: what an open socket runs, and how its events are masked,
//! change as soon as an ADMIN changes the agent, on every instance. Also the viewer a login
//! answers for, and the edit dialog's blank password.

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
        the_login_payload_reads_as_the_viewer_it_signed_in,
        a_blank_new_password_keeps_the_current_one,
        a_demoted_admin_loses_admin_rights_on_an_open_socket_and_a_promoted_agent_gains_them,
        masking_on_a_running_subscription_follows_the_phone_number_permission,
        a_shared_presence_execution_regroups_a_demoted_admin,
    ]
}

/// How long a permission change may take to reach an open socket (the target is 1 s; the
/// margin is for a loaded CI machine, the tests poll and return as soon as it holds).
const PROPAGATION: Duration = Duration::from_secs(5);
const WAIT: Duration = Duration::from_secs(10);

const UPDATE: &str = "mutation($input: UpdateAgentInput!) { updateAgent(input: $input) {
    agent { role showRealPhoneNumbers } userErrors { field code } } }";

async fn update(server: &TestServer, session: &Session, input: Value) -> Value {
    server.gql(Some(session), UPDATE, json!({ "input": input })).await.data()["updateAgent"].clone()
}

/// The instance a watcher's socket is served by: on PostgreSQL another one than the ADMIN
/// who changes things uses, so the change must cross instances.
async fn watching_instance(server: &TestServer, backend: Backend) -> Option<TestServer> {
    match backend {
        Backend::Postgres => Some(server.another_instance().await),
        Backend::Sqlite => None,
    }
}

/// Runs `operation` on the socket (a fresh id each time) until its result satisfies `holds`,
/// for at most `within`; returns the last result.
async fn run_until(
    socket: &mut WsClient,
    operation: &str,
    within: Duration,
    holds: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    for attempt in 0.. {
        let id = format!("poll-{attempt}");
        socket.subscribe(&id, operation, json!({})).await;
        let result = socket.next_result(&id).await;
        if holds(&result) || tokio::time::Instant::now() >= deadline {
            return result;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    unreachable!()
}

fn code_of(result: &Value) -> Option<&str> {
    result["errors"][0]["extensions"]["code"].as_str()
}

async fn the_login_payload_reads_as_the_viewer_it_signed_in(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let queue = server
        .gql(
            Some(&admin),
            "mutation { createQueue(input: { name: \"Billing\" }) { queue { id } } }",
            json!({}),
        )
        .await
        .data()["createQueue"]["queue"]["id"]
        .clone();
    server.agent_session(&admin, "lena", json!({ "queueIds": [queue] })).await;
    let login = "mutation($input: LoginInput!) { login(input: $input) { token agent {
        username queues { name } assignmentEligibility { eligible reasons }
        presenceHistory(first: 5) { edges { node { status } } } } userErrors { code } } }";
    let input = json!({ "organization": "demo", "username": "lena", "password": "password1" });
    let signed_in = server.gql(None, login, json!({ "input": input })).await.data()["login"].clone();
    assert!(signed_in["token"].is_string(), "{signed_in}");
    assert_eq!(signed_in["agent"]["username"], "lena");
    assert_eq!(signed_in["agent"]["queues"], json!([{ "name": "Billing" }]));
    assert_eq!(signed_in["agent"]["assignmentEligibility"]["eligible"], false, "offline");
    assert_eq!(signed_in["agent"]["assignmentEligibility"]["reasons"], json!(["OFFLINE"]));
    assert_eq!(signed_in["agent"]["presenceHistory"]["edges"], json!([]));
    // A failed login still reads nothing.
    let wrong = json!({ "organization": "demo", "username": "lena", "password": "wrong-one" });
    let refused = server.gql(None, login, json!({ "input": wrong })).await.data()["login"].clone();
    assert_eq!(refused["agent"], Value::Null);
    assert_eq!(refused["userErrors"][0]["code"], "INVALID_CREDENTIALS");
}

async fn a_blank_new_password_keeps_the_current_one(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let mia = server.agent_session(&admin, "mia", json!({})).await;
    for (session, id) in [(&admin, &mia.agent_id), (&mia, &mia.agent_id)] {
        let updated = update(&server, session, json!({ "id": id, "newPassword": "" })).await;
        assert_eq!(updated["userErrors"], json!([]), "{updated}");
    }
    // Still the old password, and the sessions a new password would end are still live.
    server.login("demo", "mia", "password1").await;
    let viewer = server.gql(Some(&mia), "{ viewer { username } }", json!({})).await.data();
    assert_eq!(viewer["viewer"]["username"], "mia");
    // A short one is still refused, and a real one still changes it.
    let short = update(&server, &admin, json!({ "id": mia.agent_id, "newPassword": "abc" })).await;
    assert_eq!(short["userErrors"][0]["code"], "PASSWORD_TOO_SHORT", "{short}");
    update(&server, &admin, json!({ "id": mia.agent_id, "newPassword": "password2" })).await;
    assert_eq!(server.try_login("demo", "mia", "password1").await.data()["login"]["token"], Value::Null);
    server.login("demo", "mia", "password2").await;
    // Creating an agent still needs one.
    let created = server
        .gql(
            Some(&admin),
            "mutation { createAgent(input: { displayName: \"N\", username: \"nopass\", password: \"\" }) { userErrors { field code } } }",
            json!({}),
        )
        .await
        .data();
    assert_eq!(created["createAgent"]["userErrors"][0]["code"], "PASSWORD_TOO_SHORT", "{created}");
}

async fn a_demoted_admin_loses_admin_rights_on_an_open_socket_and_a_promoted_agent_gains_them(
    backend: Backend,
) {
    let server = TestServer::start(backend).await;
    let boss = server.admin().await;
    let other = server.agent_session(&boss, "other", json!({})).await;
    let watching = watching_instance(&server, backend).await;
    let endpoint = watching.as_ref().unwrap_or(&server);
    // An ADMIN-only query.
    let preview = format!("{{ previewAgentRemoval(ids: [\"{}\"]) {{ seatsFreed }} }}", other.agent_id);
    for (n, protocol) in Protocol::BOTH.into_iter().enumerate() {
        let username = format!("ada{n}");
        let ada = server.agent_session(&boss, &username, json!({ "role": "ADMIN" })).await;
        let mut socket = WsClient::connect(endpoint, protocol, Some(&ada)).await.expect("acknowledged");
        socket
            .subscribe("d", "subscription { agentDirectoryChanged { kind agent { username } } }", json!({}))
            .await;
        wait_until_live(&server, &boss, &mut socket).await;
        let allowed = run_until(&mut socket, &preview, WAIT, |r| r["errors"].is_null()).await;
        assert_eq!(allowed["data"]["previewAgentRemoval"]["seatsFreed"], 1, "{protocol:?}: {allowed}");

        let demoted = update(&server, &boss, json!({ "id": ada.agent_id, "role": "AGENT" })).await;
        assert_eq!(demoted["agent"]["role"], "AGENT", "{demoted}");
        // The admin-only subscription ends with FORBIDDEN (after the event of the demotion
        // itself, perhaps); the socket stays open.
        let deadline = tokio::time::Instant::now() + PROPAGATION;
        let ended = loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let result = socket.try_next_result("d", left).await;
            let result =
                result.unwrap_or_else(|| panic!("{protocol:?}: the admin-only subscription went on"));
            if !result["errors"].is_null() {
                break result;
            }
        };
        assert_eq!(code_of(&ended), Some("FORBIDDEN"), "{protocol:?}: {ended}");
        // Admin queries and mutations sent from now on are refused, as they are over HTTP.
        let refused =
            run_until(&mut socket, &preview, PROPAGATION, |r| code_of(r) == Some("FORBIDDEN")).await;
        assert_eq!(code_of(&refused), Some("FORBIDDEN"), "{protocol:?}: {refused}");
        let escalate = format!(
            "mutation {{ updateAgent(input: {{ id: \"{}\", role: ADMIN }}) {{ userErrors {{ code }} }} }}",
            ada.agent_id
        );
        socket.subscribe("escalate", &escalate, json!({})).await;
        let escalation = socket.next_result("escalate").await;
        assert_eq!(code_of(&escalation), Some("FORBIDDEN"), "{protocol:?}: {escalation}");
        let disable = format!(
            "mutation {{ setAgentsEnabled(ids: [\"{}\"], enabled: false) {{ affectedCount }} }}",
            other.agent_id
        );
        socket.subscribe("disable", &disable, json!({})).await;
        assert_eq!(code_of(&socket.next_result("disable").await), Some("FORBIDDEN"), "{protocol:?}");
        socket.subscribe("me", "{ viewer { role } }", json!({})).await;
        assert_eq!(socket.next_result("me").await["data"]["viewer"]["role"], "AGENT");
        // The role stuck, and `other` is still enabled.
        let role = server.gql(
            Some(&boss),
            "query($id: ID!) { agent(id: $id) { role } }",
            json!({ "id": ada.agent_id }),
        );
        assert_eq!(role.await.data()["agent"]["role"], "AGENT");
        let still = server.gql(
            Some(&boss),
            "query($id: ID!) { agent(id: $id) { enabled } }",
            json!({ "id": other.agent_id }),
        );
        assert_eq!(still.await.data()["agent"]["enabled"], true);

        // And back: promoted, the same socket may run admin operations again.
        update(&server, &boss, json!({ "id": ada.agent_id, "role": "ADMIN" })).await;
        let allowed = run_until(&mut socket, &preview, PROPAGATION, |r| r["errors"].is_null()).await;
        assert_eq!(allowed["data"]["previewAgentRemoval"]["seatsFreed"], 1, "{protocol:?}: {allowed}");
        socket.subscribe("d", "subscription { agentDirectoryChanged { kind } }", json!({})).await;
        wait_until_live(&server, &boss, &mut socket).await;
    }
    if let Some(watching) = watching {
        watching.stop().await;
    }
}

async fn masking_on_a_running_subscription_follows_the_phone_number_permission(backend: Backend) {
    let server = TestServer::start(backend).await;
    let boss = server.admin().await;
    let queue = server
        .gql(Some(&boss), "mutation { createQueue(input: { name: \"Sales\" }) { queue { id } } }", json!({}))
        .await
        .data()["createQueue"]["queue"]["id"]
        .clone();
    let watching = watching_instance(&server, backend).await;
    let endpoint = watching.as_ref().unwrap_or(&server);
    let mine = "subscription { myConversations { kind conversation { customerPhone } } }";
    let everyone = "subscription { conversationChanged { kind conversation { customerPhone } } }";
    for (n, protocol) in Protocol::BOTH.into_iter().enumerate() {
        // An AGENT (its own conversations) and an ADMIN (everyone's, in a shared execution
        // with other admins who see the same), both starting masked.
        let kim = server.agent_session(&boss, &format!("kim{n}"), json!({ "queueIds": [queue] })).await;
        let lou = server.agent_session(&boss, &format!("lou{n}"), json!({ "role": "ADMIN" })).await;
        let peer = server.agent_session(&boss, &format!("peer{n}"), json!({ "role": "ADMIN" })).await;
        server
            .gql(Some(&kim), "mutation { reportPresence(status: ONLINE) { presence } }", json!({}))
            .await
            .data();
        let mut kim_socket = WsClient::connect(endpoint, protocol, Some(&kim)).await.expect("acknowledged");
        kim_socket.subscribe("m", mine, json!({})).await;
        let mut lou_socket = WsClient::connect(endpoint, protocol, Some(&lou)).await.expect("acknowledged");
        lou_socket.subscribe("c", everyone, json!({})).await;
        let mut peer_socket = WsClient::connect(endpoint, protocol, Some(&peer)).await.expect("acknowledged");
        peer_socket.subscribe("c", everyone, json!({})).await;

        let masked = json!("+1****0123");
        let real = json!("+14155550123");
        let mut listeners = [
            (kim_socket, "m", "myConversations"),
            (lou_socket, "c", "conversationChanged"),
            (peer_socket, "c", "conversationChanged"),
        ];
        let phones = next_phones(&server, &boss, &queue, &mut listeners).await;
        assert_eq!(phones, [masked.clone(), masked.clone(), masked.clone()], "{protocol:?}");

        for (show, expected) in [(true, &real), (false, &masked)] {
            for who in [&kim, &lou] {
                update(&server, &boss, json!({ "id": who.agent_id, "showRealPhoneNumbers": show })).await;
            }
            let deadline = tokio::time::Instant::now() + PROPAGATION;
            loop {
                let phones = next_phones(&server, &boss, &queue, &mut listeners).await;
                // The peer's permission never changed: it never sees the real number, though
                // it shared an execution with lou.
                assert_eq!(phones[2], masked, "{protocol:?}: the peer got another class's event");
                if phones[0] == *expected && phones[1] == *expected {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{protocol:?}: still {phones:?} after the change"
                );
            }
        }
    }
    if let Some(watching) = watching {
        watching.stop().await;
    }
}

async fn a_shared_presence_execution_regroups_a_demoted_admin(backend: Backend) {
    let server = TestServer::start(backend).await;
    let boss = server.admin().await;
    let watching = watching_instance(&server, backend).await;
    let endpoint = watching.as_ref().unwrap_or(&server);
    // Another agent's presence history is for ADMINs: the one field that tells the two
    // classes of viewer apart in a presence event.
    let watch = "subscription { presenceChanged { status agent { username presenceHistory(first: 1) { edges { node { status } } } } } }";
    let worker = server.agent_session(&boss, "worker", json!({})).await;
    for (n, protocol) in Protocol::BOTH.into_iter().enumerate() {
        let ada = server.agent_session(&boss, &format!("ada{n}"), json!({ "role": "ADMIN" })).await;
        let bea = server.agent_session(&boss, &format!("bea{n}"), json!({ "role": "ADMIN" })).await;
        let mut ada_socket = WsClient::connect(endpoint, protocol, Some(&ada)).await.expect("acknowledged");
        ada_socket.subscribe("p", watch, json!({})).await;
        let mut bea_socket = WsClient::connect(endpoint, protocol, Some(&bea)).await.expect("acknowledged");
        bea_socket.subscribe("p", watch, json!({})).await;
        let mut sockets = [ada_socket, bea_socket];
        let admin_view = |result: &Value| {
            result["errors"].is_null()
                && result["data"]["presenceChanged"]["agent"]["presenceHistory"]["edges"].is_array()
        };
        let views = presence_views(&server, &worker, &mut sockets).await;
        assert!(views.iter().all(admin_view), "{protocol:?}: {views:?}");

        update(&server, &boss, json!({ "id": ada.agent_id, "role": "AGENT" })).await;
        let deadline = tokio::time::Instant::now() + PROPAGATION;
        loop {
            let [ada_view, bea_view] = presence_views(&server, &worker, &mut sockets).await;
            assert!(admin_view(&bea_view), "{protocol:?}: the ADMIN got another class's event: {bea_view}");
            if code_of(&ada_view) == Some("FORBIDDEN") {
                assert_eq!(ada_view["data"]["presenceChanged"]["agent"]["username"], "worker", "{ada_view}");
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{protocol:?}: still {ada_view} after the demotion"
            );
        }
    }
    if let Some(watching) = watching {
        watching.stop().await;
    }
}

/// The latest presence event each socket's subscription `p` delivers once `worker` changes
/// its presence (it goes back and forth until every socket has heard a change).
async fn presence_views(server: &TestServer, worker: &Session, sockets: &mut [WsClient; 2]) -> [Value; 2] {
    let mut views: [Option<Value>; 2] = [None, None];
    for attempt in 0..50 {
        let status = if attempt % 2 == 0 { "ONLINE" } else { "OFFLINE" };
        let report = format!("mutation {{ reportPresence(status: {status}) {{ presence }} }}");
        server.gql(Some(worker), &report, json!({})).await.data();
        for (view, socket) in views.iter_mut().zip(sockets.iter_mut()) {
            if let Some(latest) = socket.results_within("p", Duration::from_millis(150)).await.pop() {
                *view = Some(latest);
            }
        }
        if views.iter().all(Option::is_some) {
            return views.map(Option::unwrap);
        }
    }
    panic!("the presence subscriptions never all heard a change: {views:?}");
}

/// The customer phone each listener (socket, operation id, field) sees in conversation
/// events, once all of them are live: conversations are created until each has heard one;
/// the latest each heard.
async fn next_phones(
    server: &TestServer,
    admin: &Session,
    queue: &Value,
    listeners: &mut [(WsClient, &str, &str); 3],
) -> [Value; 3] {
    let create =
        "mutation($q: ID!) { createConversation(input: { queueId: $q, customerPhone: \"+14155550123\" }) {
        userErrors { code } } }";
    let mut phones: [Option<Value>; 3] = [None, None, None];
    for _ in 0..50 {
        server.gql(Some(admin), create, json!({ "q": queue })).await.data();
        for (phone, (socket, id, field)) in phones.iter_mut().zip(listeners.iter_mut()) {
            for result in socket.results_within(id, Duration::from_millis(150)).await {
                *phone = Some(result["data"][*field]["conversation"]["customerPhone"].clone());
            }
        }
        if phones.iter().all(Option::is_some) {
            return phones.map(Option::unwrap);
        }
    }
    panic!("the subscriptions never all heard a conversation: {phones:?}");
}
