//! The HTTP and WebSocket edges: limits, GET rules, health, GraphiQL, both subprotocols.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{
    Backend, Gql, Ordered, Session, TestServer,
    ws::{Ending, Protocol, WsClient},
};

/// Long enough for anything the server answers at once.
const WAIT: Duration = Duration::from_secs(5);

pub fn tests() -> Vec<crate::common::Test> {
    crate::tests![
        too_deep_query_is_refused,
        too_complex_query_is_refused,
        oversized_body_is_refused,
        invalid_json_is_a_bad_request,
        oversized_batch_is_refused,
        get_runs_queries_but_not_mutations,
        the_answer_takes_the_media_type_the_client_accepts,
        response_keys_come_in_selection_order_every_time,
        response_keys_come_in_selection_order_over_websocket_too,
        objects_answered_in_place_answer_as_the_executor_does,
        request_errors_have_no_data_and_are_400_as_graphql_response_json,
        post_needs_a_json_content_type,
        persisted_queries_stand_for_their_query_over_post_and_get,
        persisted_queries_refuse_a_hash_of_another_query,
        health_and_readiness_answer,
        graphiql_is_served_with_subscriptions,
        websocket_runs_operations_with_the_token_from_connection_init,
        websocket_with_a_bad_token_is_closed,
        websocket_with_a_malformed_authorization_is_refused,
        websocket_without_connection_init_is_closed_in_time,
        stopping_the_server_closes_websockets_with_going_away,
        websocket_protocol_violations_close_with_their_codes,
        websocket_ping_is_answered_before_and_after_the_handshake,
        accepted_connections_send_at_once,
    ]
}

async fn too_deep_query_is_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let deep = format!(
        "{{ __schema {{ types {{ {} name {} }} }} }}",
        "fields { type { ofType { ".repeat(4),
        "} } } ".repeat(4)
    );
    let response = server.gql(None, &deep, json!({})).await;
    assert_eq!(response.status, 200);
    let message = response.errors()[0]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("nested too deep"), "{message}");
    // The server is still fine.
    assert!(server.gql(None, "{ viewer { id } }", json!({})).await.data()["viewer"].is_null());
}

async fn too_complex_query_is_refused(backend: Backend) {
    let server = TestServer::start_with(backend, |config| config.max_query_complexity = 10).await;
    let aliases: String = (0..20).map(|i| format!("a{i}: viewer {{ id }} ")).collect();
    let response = server.gql(None, &format!("{{ {aliases} }}"), json!({})).await;
    let message = response.errors()[0]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("too complex"), "{message}");
}

async fn oversized_body_is_refused(backend: Backend) {
    let server = TestServer::start_with(backend, |config| config.max_body_bytes = 1024).await;
    let padding = " ".repeat(2048);
    let response = server
        .http
        .post(server.url("/graphql"))
        .header("content-type", "application/json")
        .body(format!("{{\"query\": \"{{ viewer {{ id }} }}{padding}\"}}"))
        .send()
        .await
        .unwrap();
    let gql = Gql::from_response(response).await;
    assert_eq!(gql.status, 413);
    assert_eq!(gql.error_code(), "BAD_REQUEST");
    assert!(gql.errors()[0]["message"].as_str().unwrap().contains("1024 bytes"));
}

async fn invalid_json_is_a_bad_request(backend: Backend) {
    let server = TestServer::start(backend).await;
    for body in ["{not json", "[]", "{\"variables\": {}}"] {
        let response = server.http.post(server.url("/graphql")).body(body).send().await.unwrap();
        let gql = Gql::from_response(response).await;
        assert_eq!(gql.status, 400, "{body}");
        assert_eq!(gql.error_code(), "BAD_REQUEST", "{body}");
    }
}

async fn oversized_batch_is_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let batch: Vec<_> = (0..11).map(|_| json!({ "query": "{ viewer { id } }" })).collect();
    let response = server.http.post(server.url("/graphql")).json(&batch).send().await.unwrap();
    let gql = Gql::from_response(response).await;
    assert_eq!(gql.status, 400);
    assert!(gql.errors()[0]["message"].as_str().unwrap().contains("at most 10"));
    let small: Vec<_> = (0..2).map(|_| json!({ "query": "{ viewer { id } }" })).collect();
    let response = server.http.post(server.url("/graphql")).json(&small).send().await.unwrap();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body.as_array().map(Vec::len), Some(2));
}

async fn get_runs_queries_but_not_mutations(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let get = |query: &'static str| {
        server.http.get(server.url("/graphql")).query(&[("query", query)]).bearer_auth(&admin.token).send()
    };
    let query = Gql::from_response(get("{ viewer { username } }").await.unwrap()).await;
    assert_eq!(query.data()["viewer"]["username"], "admin");
    let refused = get("mutation { logout }").await.unwrap();
    assert_eq!(refused.status(), 405);
    assert_eq!(refused.headers()["allow"], "POST");
    let mutation = Gql::from_response(refused).await;
    assert!(mutation.errors()[0]["message"].as_str().unwrap().contains("POST"));
    assert_eq!(mutation.error_code(), "BAD_REQUEST");
    assert!(mutation.body.get("data").is_none(), "{}", mutation.body);
    // The refused mutation did not run: the token still works.
    let still = server.gql(Some(&admin), "{ viewer { username } }", json!({})).await;
    assert_eq!(still.data()["viewer"]["username"], "admin");
}

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

/// POSTs `body` to `/graphql` with `accept`; the status, the content type and the body.
async fn post_accepting(server: &TestServer, accept: &str, body: Value) -> (u16, String, Value) {
    let response =
        server.http.post(server.url("/graphql")).header("accept", accept).json(&body).send().await.unwrap();
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    let gql = Gql::from_response(response).await;
    (gql.status, content_type, gql.body)
}

/// GraphQL over HTTP: `application/json` unless the client names `graphql-response+json`
/// with at least the same quality.
async fn the_answer_takes_the_media_type_the_client_accepts(backend: Backend) {
    let server = TestServer::start(backend).await;
    let query = json!({ "query": "{ __typename }" });
    for (accept, expected) in [
        ("application/json", "application/json"),
        ("*/*", "application/json"),
        ("application/*", "application/json"),
        ("text/html", "application/json"),
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        ("application/graphql-response+json, application/json;q=0.9", GRAPHQL_RESPONSE),
        ("application/json, application/graphql-response+json;q=0.5", "application/json"),
        ("application/graphql-response+json;q=0, */*", "application/json"),
    ] {
        let (status, content_type, body) = post_accepting(&server, accept, query.clone()).await;
        assert_eq!(status, 200, "{accept}");
        assert_eq!(content_type.split(';').next(), Some(expected), "{accept}");
        assert_eq!(body, json!({ "data": { "__typename": "Query" } }), "{accept}");
    }
}

/// GraphQL orders a response's keys as the query selects them. A field that waits on the
/// database (`totalCount`) finishes after its siblings, and async-graphql would insert it
/// when it finished: the order must not depend on that timing, in either selection order.
async fn response_keys_come_in_selection_order_every_time(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = seeded_for_order(&server).await;
    for (query, agents_keys) in selection_orders() {
        for _ in 0..20 {
            let response = server
                .http
                .post(server.url("/graphql"))
                .bearer_auth(&admin.token)
                .json(&json!({ "query": query }))
                .send()
                .await
                .unwrap();
            let text = response.text().await.unwrap();
            let body = Ordered::parse(&text);
            assert_eq!(body.keys(), ["data"], "{text}");
            assert_in_selection_order(body.get("data"), &agents_keys, &text);
        }
    }
}

/// The same over `/graphql/ws`: operations run alone, and a subscription's events, which a
/// shared execution serialises once for all its sockets.
async fn response_keys_come_in_selection_order_over_websocket_too(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = seeded_for_order(&server).await;
    let mut socket = WsClient::connect(&server, Protocol::TransportWs, Some(&admin)).await.expect("socket");
    for (round, (query, agents_keys)) in selection_orders().into_iter().cycle().take(30).enumerate() {
        let id = format!("q{round}");
        socket.subscribe(&id, &query, json!({})).await;
        let text = socket.next_text(WAIT).await.expect("the answer");
        let message = Ordered::parse(&text);
        assert_in_selection_order(message.get("payload").get("data"), &agents_keys, &text);
        assert_eq!(socket.next_message(WAIT).await.expect("its end")["type"], "complete");
    }

    let watch =
        "subscription { agentDirectoryChanged { agent { queues { name id } displayName } kind agentId } }";
    socket.subscribe("d", watch, json!({})).await;
    crate::directory_live::wait_until_live(&server, &admin, &mut socket).await;
    let rename = "mutation($id: ID!) { updateAgent(input: { id: $id, displayName: \"Ordered\" }) { userErrors { code } } }";
    server.gql(Some(&admin), rename, json!({ "id": admin.agent_id })).await.data();
    let text = socket.next_text(WAIT).await.expect("the event");
    let message = Ordered::parse(&text);
    let event = message.get("payload").get("data").get("agentDirectoryChanged");
    assert_eq!(event.keys(), ["agent", "kind", "agentId"], "{text}");
    assert_eq!(event.get("agent").keys(), ["queues", "displayName"], "{text}");
}

/// A page's agents and their queues are answered in place when every field selected of them
/// only reads what they hold (`graphql/eager.rs`), and by async-graphql's own resolution
/// otherwise: the two give the same answer, whatever the selection's shape. Each shape runs
/// as is, then with a field that waits on the database added at both levels (which sends
/// every agent and queue the usual way), and the added keys taken out again.
async fn objects_answered_in_place_answer_as_the_executor_does(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = seeded_for_order(&server).await;
    let fragments = [
        ("...Card", "fragment Card on Agent { displayName email }"),
        ("...Q", "fragment Q on Queue { name }"),
    ];
    let shapes = [
        "id displayName avatarInitial username email role enabled presence presenceChangedAt presenceReason \
         showRealPhoneNumbers maxConcurrentSessions activeSessions remainingCapacity deletedAt createdAt updatedAt \
         queues { id name agentCount createdAt updatedAt @Q } @A",
        "__typename who: username ...Card ... on Agent { role } ... { enabled } @A \
         queues { __typename key: id ...Q @Q }",
        // Repeated keys, whose selections execution merges, and a fragment on an interface.
        "id id: id queues { name @Q } @A queues { id } ... on Node { id }",
    ];
    for shape in shapes {
        let used: Vec<&str> = fragments
            .iter()
            .filter(|(spread, _)| shape.contains(spread))
            .map(|(_, fragment)| *fragment)
            .collect();
        let page = |agent_extra: &str, queue_extra: &str| {
            let selection = shape.replace("@A", agent_extra).replace("@Q", queue_extra);
            format!("{{ agents(first: 50) {{ nodes {{ {selection} }} }} }} {}", used.join(" "))
        };
        let in_place = server.gql(Some(&admin), &page("", ""), json!({})).await.data();
        let mut usual = server
            .gql(Some(&admin), &page("sessions { id }", "waitingConversations"), json!({}))
            .await
            .data();
        let nodes = usual["agents"]["nodes"].as_array_mut().expect("nodes");
        assert_eq!(nodes.len(), 6, "{shape}");
        for node in nodes {
            let node = node.as_object_mut().expect("an agent");
            assert!(node.remove("sessions").is_some(), "{shape}");
            for queue in node["queues"].as_array_mut().expect("queues") {
                assert!(queue.as_object_mut().expect("a queue").remove("waitingConversations").is_some());
            }
        }
        assert_eq!(in_place, usual, "{shape}");
    }
}

const ORDER_NODE: &str = "id displayName username email role enabled presence queues { name id }";
const ORDER_NODE_KEYS: [&str; 8] =
    ["id", "displayName", "username", "email", "role", "enabled", "presence", "queues"];

/// The ADMIN of an organization of six agents, five of them in a queue.
async fn seeded_for_order(server: &TestServer) -> Session {
    let admin = server.admin().await;
    let ids = server.seed_agents("demo", "order", 5).await;
    let queue = server.create_queue(&admin, "Orders").await;
    let join = "mutation($q: ID!, $ids: [ID!]!) { addAgentsToQueue(queueId: $q, agentIds: $ids) { userErrors { code } } }";
    server.gql(Some(&admin), join, json!({ "q": queue, "ids": ids })).await.data();
    admin
}

/// Page queries in three selection orders (fields, a fragment, an alias), each with the keys
/// its `agents` must show, in order.
fn selection_orders() -> Vec<(String, Vec<&'static str>)> {
    vec![
        (
            format!("{{ agents(first: 50) {{ totalCount nodes {{ {ORDER_NODE} }} }} }}"),
            vec!["totalCount", "nodes"],
        ),
        (
            format!(
                "{{ agents(first: 50) {{ nodes {{ {ORDER_NODE} }} pageInfo {{ hasNextPage }} totalCount }} }}"
            ),
            vec!["nodes", "pageInfo", "totalCount"],
        ),
        (
            format!(
                "{{ agents(first: 50) {{ ...Count nodes {{ {ORDER_NODE} }} }} }} fragment Count on AgentConnection {{ n: totalCount }}"
            ),
            vec!["n", "nodes"],
        ),
    ]
}

/// Every object of a page's `data` has its keys in selection order.
fn assert_in_selection_order(data: &Ordered, agents_keys: &[&str], text: &str) {
    let agents = data.get("agents");
    assert_eq!(agents.keys(), agents_keys, "{text}");
    let nodes = agents.get("nodes").items();
    assert_eq!(nodes.len(), 6, "{text}");
    for node in nodes {
        assert_eq!(node.keys(), ORDER_NODE_KEYS, "{text}");
        for queue in node.get("queues").items() {
            assert_eq!(queue.keys(), ["name", "id"], "{text}");
        }
    }
}

/// A request that fails before execution (parse, validation, variable coercion, an unknown
/// operation) has no `data`; as `graphql-response+json` it is a 400, as `application/json` a
/// 200. A field error is a response that executed: 200 either way, with `data`.
async fn request_errors_have_no_data_and_are_400_as_graphql_response_json(backend: Backend) {
    let server = TestServer::start(backend).await;
    let failures = [
        json!({ "query": "{" }),
        json!({ "query": "{ noSuchField }" }),
        json!({ "query": "query($id: ID!) { node(id: $id) { id } }", "variables": { "id": null } }),
        json!({ "query": "query A { __typename }", "operationName": "B" }),
    ];
    for request in failures {
        for (accept, expected_status) in [(GRAPHQL_RESPONSE, 400), ("application/json", 200)] {
            let (status, _, body) = post_accepting(&server, accept, request.clone()).await;
            assert_eq!(status, expected_status, "{accept} {request}: {body}");
            assert!(body.get("data").is_none(), "{accept} {request}: {body}");
            assert!(!body["errors"].as_array().unwrap().is_empty(), "{body}");
        }
    }
    // Signed out, `organization` is an error of its field, and `data` is null for it.
    let field_error = json!({ "query": "{ organization { name } }" });
    for accept in [GRAPHQL_RESPONSE, "application/json"] {
        let (status, _, body) = post_accepting(&server, accept, field_error.clone()).await;
        assert_eq!(status, 200, "{accept}: {body}");
        assert_eq!(body.get("data"), Some(&Value::Null), "{body}");
        assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{body}");
    }
    // A batch answers each of its operations, as it did.
    let batch = json!([{ "query": "{" }, { "query": "{ __typename }" }]);
    let (status, _, body) = post_accepting(&server, GRAPHQL_RESPONSE, batch).await;
    assert_eq!(status, 200);
    assert!(body[0].get("data").is_none() && body[0]["errors"].is_array(), "{body}");
    assert_eq!(body[1], json!({ "data": { "__typename": "Query" } }));
}

/// A POST body is JSON, and says so: without a content type it is a 400, with another a 415.
async fn post_needs_a_json_content_type(backend: Backend) {
    let server = TestServer::start(backend).await;
    let body = r#"{"query": "{ __typename }"}"#;
    for (content_type, expected) in [
        (None, 400),
        (Some("text/plain;charset=UTF-8"), 415),
        (Some("application/x-www-form-urlencoded"), 415),
        (Some("application/json; charset=latin1"), 415),
        (Some("application/json"), 200),
        (Some("Application/JSON; charset=utf-8"), 200),
    ] {
        let mut request = server.http.post(server.url("/graphql")).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let gql = Gql::from_response(request.send().await.unwrap()).await;
        assert_eq!(gql.status, expected, "{content_type:?}: {}", gql.body);
        if expected != 200 {
            assert_eq!(gql.error_code(), "BAD_REQUEST", "{content_type:?}");
        }
    }
}

fn sha256_hex(query: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(query))
}

fn persisted(hash: &str) -> Value {
    json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })
}

/// Apollo's automatic persisted queries: an unknown hash is `PersistedQueryNotFound`; sent
/// with its query, the hash is registered and then stands for it, over POST and over GET
/// (where a mutation's hash is still refused).
async fn persisted_queries_stand_for_their_query_over_post_and_get(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let query = "query Me { viewer { username } }";
    let hash = sha256_hex(query);
    let post =
        |body: Value| server.http.post(server.url("/graphql")).bearer_auth(&admin.token).json(&body).send();

    for accept in ["application/json", GRAPHQL_RESPONSE] {
        let unknown = server
            .http
            .post(server.url("/graphql"))
            .header("accept", accept)
            .json(&json!({ "extensions": persisted(&hash) }))
            .send()
            .await
            .unwrap();
        let unknown = Gql::from_response(unknown).await;
        assert_eq!(unknown.status, 200, "{accept}");
        assert_eq!(unknown.errors()[0]["message"], "PersistedQueryNotFound");
        assert_eq!(unknown.error_code(), "PERSISTED_QUERY_NOT_FOUND");
        assert!(unknown.body.get("data").is_none(), "{}", unknown.body);
    }

    let with_query = post(json!({ "query": query, "extensions": persisted(&hash) })).await.unwrap();
    assert_eq!(Gql::from_response(with_query).await.data()["viewer"]["username"], "admin");
    let by_hash = Gql::from_response(post(json!({ "extensions": persisted(&hash) })).await.unwrap()).await;
    assert_eq!(by_hash.data()["viewer"]["username"], "admin");

    // GET, as Apollo's link sends a hashed query: no `query` at all.
    let get = |hash: &str| {
        let extensions = persisted(hash).to_string();
        let parameters = [("operationName", "Me"), ("variables", "{}"), ("extensions", extensions.as_str())];
        server.http.get(server.url("/graphql")).query(&parameters).bearer_auth(&admin.token).send()
    };
    let over_get = get(&hash).await.unwrap();
    assert_eq!(over_get.status(), 200);
    assert_eq!(Gql::from_response(over_get).await.data()["viewer"]["username"], "admin");

    // A batch may mix known and unknown hashes.
    let batch =
        json!([{ "extensions": persisted(&hash) }, { "extensions": persisted(&sha256_hex("{ x }")) }]);
    let answers: Value = post(batch).await.unwrap().json().await.unwrap();
    assert_eq!(answers[0]["data"]["viewer"]["username"], "admin", "{answers}");
    assert_eq!(answers[1]["errors"][0]["extensions"]["code"], "PERSISTED_QUERY_NOT_FOUND", "{answers}");

    // A mutation registered over POST (signed out, so `logout` has nothing to end) is still
    // refused over GET.
    let mutation = "mutation { logout }";
    let mutation_hash = sha256_hex(mutation);
    let body = json!({ "query": mutation, "extensions": persisted(&mutation_hash) });
    server.http.post(server.url("/graphql")).json(&body).send().await.unwrap();
    let refused = get(&mutation_hash).await.unwrap();
    assert_eq!(refused.status(), 405);
    assert_eq!(Gql::from_response(refused).await.error_code(), "BAD_REQUEST");
    let still = server.gql(Some(&admin), "{ viewer { username } }", json!({})).await;
    assert_eq!(still.data()["viewer"]["username"], "admin");
}

/// A hash must be the SHA-256 of the query it comes with, so no one can make a known hash
/// stand for another query; and the extension must be version 1 with a hash.
async fn persisted_queries_refuse_a_hash_of_another_query(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let honest = "{ viewer { username } }";
    let hash = sha256_hex(honest);
    let forged = json!({ "query": "{ organization { name } }", "extensions": persisted(&hash) });
    let response = server.http.post(server.url("/graphql")).bearer_auth(&admin.token).json(&forged).send();
    let refused = Gql::from_response(response.await.unwrap()).await;
    assert_eq!(refused.status, 400);
    assert!(refused.errors()[0]["message"].as_str().unwrap().contains("sha256Hash"), "{}", refused.body);
    // The forged pair registered nothing.
    let by_hash = json!({ "extensions": persisted(&hash) });
    let response = server.http.post(server.url("/graphql")).json(&by_hash).send().await.unwrap();
    assert_eq!(Gql::from_response(response).await.error_code(), "PERSISTED_QUERY_NOT_FOUND");

    for extension in [
        json!({ "persistedQuery": { "version": 2, "sha256Hash": hash } }),
        json!({ "persistedQuery": { "version": 1 } }),
        json!({ "persistedQuery": { "version": 1, "sha256Hash": "not hex" } }),
        json!({ "persistedQuery": "yes" }),
    ] {
        let body = json!({ "query": honest, "extensions": extension });
        let response = server.http.post(server.url("/graphql")).json(&body).send().await.unwrap();
        let gql = Gql::from_response(response).await;
        assert_eq!(gql.status, 400, "{extension}: {}", gql.body);
        assert_eq!(gql.error_code(), "BAD_REQUEST");
    }
}

async fn health_and_readiness_answer(backend: Backend) {
    let server = TestServer::start(backend).await;
    for path in ["/healthz", "/readyz"] {
        let response = server.http.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
}

async fn graphiql_is_served_with_subscriptions(backend: Backend) {
    let server = TestServer::start(backend).await;
    let page = server.http.get(server.url("/")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("graphiql"), "{page}");
    assert!(page.contains("/graphql/ws"), "subscriptions wired: {page}");
    // Offline: every script and style comes from the server, none from a CDN.
    assert!(!page.contains("https://") && !page.contains("unpkg"), "{page}");
    let assets: Vec<&str> =
        page.split("/graphiql/assets/").skip(1).map(|rest| &rest[..rest.find('"').unwrap()]).collect();
    assert_eq!(assets.len(), 5, "react, react-dom, graphql-ws, GraphiQL's script and style: {assets:?}");
    for name in assets {
        let response = server.http.get(server.url(&format!("/graphiql/assets/{name}"))).send().await.unwrap();
        assert_eq!(response.status(), 200, "{name}");
        let header = |header: &str| response.headers()[header].to_str().unwrap().to_owned();
        let expected = if name.ends_with(".css") { "text/css" } else { "text/javascript" };
        assert!(header("content-type").starts_with(expected), "{name}: {}", header("content-type"));
        assert!(header("cache-control").contains("immutable"), "{name}");
        assert!(!name.contains("development"), "production builds only: {name}");
        assert!(response.bytes().await.unwrap().len() > 1000, "{name}");
    }
    let missing = server.http.get(server.url("/graphiql/assets/react.development.js")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
}

async fn websocket_runs_operations_with_the_token_from_connection_init(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    for protocol in Protocol::BOTH {
        let mut signed_in = WsClient::connect(&server, protocol, Some(&admin)).await.expect("acknowledged");
        signed_in.subscribe("1", "{ viewer { username } }", json!({})).await;
        let result = signed_in.next_result("1").await;
        assert_eq!(result["data"]["viewer"]["username"], "admin", "{protocol:?}: {result}");

        let mut anonymous = WsClient::connect(&server, protocol, None).await.expect("acknowledged");
        anonymous.subscribe("1", "{ organization { name } }", json!({})).await;
        let result = anonymous.next_result("1").await;
        assert_eq!(result["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{protocol:?}: {result}");
    }
}

async fn websocket_with_a_bad_token_is_closed(backend: Backend) {
    let server = TestServer::start(backend).await;
    let forged = Session { token: "adk_forged".into(), agent_id: String::new() };
    for protocol in Protocol::BOTH {
        let outcome = WsClient::connect(&server, protocol, Some(&forged)).await;
        let Err(ending) = outcome else { panic!("{protocol:?}: a forged token was acknowledged") };
        let expected = match protocol {
            Protocol::TransportWs => Ending::Closed(Some(4403)),
            Protocol::LegacyWs => Ending::Refused,
        };
        assert_eq!(ending, expected, "{protocol:?}");
    }
}

/// A client that sends an authorization the server cannot read is told so (4403), rather
/// than acknowledged as signed out and told "Sign in first" on every operation; one that
/// sends none, or an empty one, is signed out as before.
async fn websocket_with_a_malformed_authorization_is_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let malformed = [
        json!({ "authorization": admin.token }),
        json!({ "authorization": format!("Basic {}", admin.token) }),
        json!({ "authorization": "Bearer " }),
        json!({ "authorization": 42 }),
        json!({ "authorization": { "token": admin.token } }),
        json!("Bearer token"),
        json!([1, 2]),
        json!(7),
    ];
    for protocol in Protocol::BOTH {
        for payload in &malformed {
            let mut socket = WsClient::open(&server, protocol).await;
            socket.send(json!({ "type": "connection_init", "payload": payload })).await;
            if protocol == Protocol::LegacyWs {
                let refusal = socket.next_message(WAIT).await;
                assert_eq!(refusal.map(|m| m["type"].clone()), Ok(json!("connection_error")), "{payload}");
            }
            let ending = socket.ending(WAIT).await;
            assert_eq!(ending, Ending::Closed(Some(4403)), "{protocol:?} {payload}");
        }
        for payload in
            [json!({}), json!(null), json!({ "authorization": "" }), json!({ "authorization": null })]
        {
            let mut socket = WsClient::open(&server, protocol).await;
            socket.send(json!({ "type": "connection_init", "payload": payload })).await;
            let ack = socket.next_message(WAIT).await.expect("acknowledged");
            assert_eq!(ack["type"], "connection_ack", "{protocol:?} {payload}");
            socket.subscribe("1", "{ viewer { username } }", json!({})).await;
            assert_eq!(socket.next_result("1").await["data"]["viewer"], Value::Null, "{payload}");
        }
    }
}

async fn websocket_without_connection_init_is_closed_in_time(backend: Backend) {
    let server =
        TestServer::start_with(backend, |config| config.ws_init_timeout = Duration::from_millis(300)).await;
    for protocol in Protocol::BOTH {
        let mut silent = WsClient::open(&server, protocol).await;
        let ending = silent.next_message(WAIT).await;
        assert_eq!(ending, Err(Ending::Closed(Some(4408))), "{protocol:?}");
    }
}

async fn stopping_the_server_closes_websockets_with_going_away(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let mut signed_in =
        WsClient::connect(&server, Protocol::TransportWs, Some(&admin)).await.expect("acknowledged");
    let mut anonymous = WsClient::connect(&server, Protocol::LegacyWs, None).await.expect("acknowledged");
    server.stop().await;
    for socket in [&mut signed_in, &mut anonymous] {
        assert_eq!(socket.ending(Duration::from_secs(2)).await, Ending::Closed(Some(1001)));
    }
}

/// The close codes of graphql-transport-ws, on both subprotocols.
async fn websocket_protocol_violations_close_with_their_codes(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    for protocol in Protocol::BOTH {
        let mut early = WsClient::open(&server, protocol).await;
        early.subscribe("1", "{ viewer { id } }", json!({})).await;
        assert_eq!(
            early.ending(WAIT).await,
            Ending::Closed(Some(4401)),
            "{protocol:?}: subscribe before init"
        );

        let mut garbled = WsClient::connect(&server, protocol, Some(&admin)).await.expect("acknowledged");
        garbled.send(json!({ "type": "subscribe-please", "id": "1" })).await;
        assert_eq!(garbled.ending(WAIT).await, Ending::Closed(Some(4400)), "{protocol:?}: unknown message");

        let mut twice = WsClient::connect(&server, protocol, Some(&admin)).await.expect("acknowledged");
        twice.send(json!({ "type": "connection_init", "payload": {} })).await;
        assert_eq!(twice.ending(WAIT).await, Ending::Closed(Some(4429)), "{protocol:?}: second init");
    }

    // graphql-transport-ws forbids a second operation under a running one's id (the legacy
    // protocol replaces it: tests/api/presence.rs).
    let mut socket =
        WsClient::connect(&server, Protocol::TransportWs, Some(&admin)).await.expect("acknowledged");
    let subscription = "subscription { agentDirectoryChanged { kind } }";
    socket.subscribe("same", subscription, json!({})).await;
    socket.subscribe("same", subscription, json!({})).await;
    assert_eq!(socket.ending(WAIT).await, Ending::Closed(Some(4409)));

    // A finished operation's id is free again.
    let mut socket =
        WsClient::connect(&server, Protocol::TransportWs, Some(&admin)).await.expect("acknowledged");
    for _ in 0..2 {
        socket.subscribe("again", "{ viewer { username } }", json!({})).await;
        assert_eq!(socket.next_result("again").await["data"]["viewer"]["username"], "admin");
    }
}

async fn websocket_ping_is_answered_before_and_after_the_handshake(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut socket = WsClient::open(&server, Protocol::TransportWs).await;
    for step in ["before", "after"] {
        if step == "after" {
            socket.send(json!({ "type": "connection_init", "payload": {} })).await;
            let ack = socket.next_message(WAIT).await.expect("acknowledged");
            assert_eq!(ack["type"], "connection_ack");
        }
        socket.send(json!({ "type": "ping" })).await;
        let pong = socket.next_message_or_keepalive(WAIT).await.expect("an answer");
        assert_eq!(pong, json!({ "type": "pong" }), "{step} connection_init");
    }
}

/// Every accepted connection has Nagle's algorithm off (TCP_NODELAY): with it on, a small
/// write waits while an earlier one is unacknowledged, and a client's delayed ACK can hold
/// the second of two events in a row 40 ms. Checked on the server's own sockets, not by
/// timing: the server runs in this process, so they are among its file descriptors.
async fn accepted_connections_send_at_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ws = WsClient::connect(&server, Protocol::TransportWs, None).await.expect("acknowledged");
    let health = server.http.get(server.url("/healthz")).send().await.unwrap();
    assert!(health.status().is_success());
    let server_address = server.addr;
    let accepted: Vec<socket2::Socket> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<std::os::fd::RawFd>().ok())
        .filter_map(own_copy)
        .filter_map(|fd| {
            let socket = socket2::Socket::from(fd);
            let local = socket.local_addr().ok()?.as_socket()?;
            // Connected (not the listener), on the server's side.
            (local == server_address && socket.peer_addr().is_ok()).then_some(socket)
        })
        .collect();
    assert!(accepted.len() >= 2, "the WebSocket and the HTTP connection: found {}", accepted.len());
    for socket in &accepted {
        let peer = socket.peer_addr().ok().and_then(|address| address.as_socket());
        assert!(socket.tcp_nodelay().unwrap(), "TCP_NODELAY is off on the connection from {peer:?}");
    }
    ws.close().await;
}

/// A descriptor of this process's own, duplicated so that the copy stays valid whatever
/// other tests close meanwhile (the original may be closed, or reused, at any time).
fn own_copy(fd: std::os::fd::RawFd) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: dup only reads the descriptor table; on success the new descriptor is ours
    // alone, so the OwnedFd is its only owner.
    let copy = unsafe { libc::dup(fd) };
    (copy >= 0).then(|| unsafe { std::os::fd::OwnedFd::from_raw_fd(copy) })
}
