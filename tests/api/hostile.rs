//! Hostile documents and transport: each is refused with a clear error (or the connection is
//! cut) within a bounded time, before the expensive part, and the server keeps serving.

use std::time::{Duration, Instant};

use agentdesk::config::Config;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::common::{
    Backend, Gql, TestServer,
    ws::{Ending, Protocol, WsClient},
};

pub fn tests() -> Vec<crate::common::Test> {
    crate::tests![
        nesting_a_thousand_deep_is_refused,
        ten_thousand_aliases_are_refused,
        ten_thousand_fragments_are_refused,
        a_fragment_cycle_is_refused,
        a_ten_megabyte_body_is_refused,
        invalid_json_and_invalid_utf8_are_bad_requests,
        huge_and_deeply_nested_variables_are_refused,
        a_batch_of_a_thousand_operations_is_refused,
        an_unknown_operation_name_is_an_error,
        a_websocket_subscribe_flood_is_closed_with_4429,
        a_websocket_message_larger_than_a_body_closes_the_socket,
        headers_trickled_byte_by_byte_are_cut_off,
    ]
}

/// Every refusal here must come at least this quickly.
const BOUND: Duration = Duration::from_secs(5);

/// POSTs `body` as is, and asserts the answer came within `BOUND`.
async fn post_raw(server: &TestServer, body: impl Into<reqwest::Body>) -> Gql {
    let started = Instant::now();
    let response = server
        .http
        .post(server.url("/graphql"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("the server answers");
    let gql = Gql::from_response(response).await;
    assert!(started.elapsed() < BOUND, "answered in {:?}", started.elapsed());
    gql
}

async fn post_query(server: &TestServer, query: &str) -> Gql {
    post_raw(server, json!({ "query": query }).to_string()).await
}

fn first_message(gql: &Gql) -> String {
    gql.errors().first().and_then(|e| e["message"].as_str()).unwrap_or_default().to_owned()
}

/// The server still answers a plain query.
async fn still_serves(server: &TestServer) {
    assert!(server.gql(None, "{ viewer { id } }", json!({})).await.data()["viewer"].is_null());
}

async fn nesting_a_thousand_deep_is_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let deep = format!("{{ {} id {} }}", "viewer { ".repeat(1000), "} ".repeat(1000));
    let gql = post_query(&server, &deep).await;
    let message = first_message(&gql);
    // The parser stops at its stack limit, before any validation or execution.
    assert!(message.contains("stack limit reached"), "{:?}", gql.body);
    still_serves(&server).await;
}

async fn ten_thousand_aliases_are_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let aliases: String = (0..10_000).map(|i| format!("a{i}:viewer{{id}} ")).collect();
    let gql = post_query(&server, &format!("{{{aliases}}}")).await;
    assert!(first_message(&gql).contains("too complex"), "{:?}", gql.errors().first());
    still_serves(&server).await;
}

async fn ten_thousand_fragments_are_refused(backend: Backend) {
    let server = TestServer::start_with(backend, |config| config.max_body_bytes = 1024 * 1024).await;
    let spreads: String = (0..10_000).map(|i| format!("...f{i} ")).collect();
    let fragments: String =
        (0..10_000).map(|i| format!("fragment f{i} on Query{{viewer{{id}}}}\n")).collect();
    let gql = post_query(&server, &format!("{{{spreads}}}\n{fragments}")).await;
    assert!(first_message(&gql).contains("too complex"), "{:?}", gql.errors().first());
    still_serves(&server).await;
}

async fn a_fragment_cycle_is_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let cycle = "{ ...A } fragment A on Query { viewer { id } ...B } fragment B on Query { ...A }";
    let gql = post_query(&server, cycle).await;
    let message = first_message(&gql);
    // Spreads count toward the recursion limit, so the cycle is cut there, not followed.
    assert!(message.contains("recursion depth of the query cannot be greater than `32`"), "{:?}", gql.body);
    still_serves(&server).await;
}

async fn a_ten_megabyte_body_is_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    // The server reads no further than its limit and answers; sending the whole 10 MB would
    // only race it closing the connection.
    let mut client = TcpStream::connect(server.addr).await.unwrap();
    let length = 10 * 1024 * 1024;
    let head = format!(
        "POST /graphql HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n\r\n",
        server.addr
    );
    client.write_all(head.as_bytes()).await.unwrap();
    client.write_all(&vec![b' '; 256 * 1024 + 1]).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(BOUND, client.read(&mut answer)).await.expect("answered in time").unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("larger than the limit of 262144 bytes"), "{answer}");
    still_serves(&server).await;
}

async fn invalid_json_and_invalid_utf8_are_bad_requests(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut invalid_utf8 = br#"{"query": "{ viewer { id } }"#.to_vec();
    invalid_utf8.extend_from_slice(&[0xff, 0xfe, 0xc3]);
    invalid_utf8.extend_from_slice(br#""}"#);
    let bodies: [Vec<u8>; 3] =
        [b"{\"query\": ".to_vec(), invalid_utf8, b"{\"query\": \"{ viewer { id } }\" ,}".to_vec()];
    for body in bodies {
        let gql = post_raw(&server, body.clone()).await;
        assert_eq!(gql.status, 400, "{}", String::from_utf8_lossy(&body));
        assert_eq!(gql.error_code(), "BAD_REQUEST");
        assert!(first_message(&gql).contains("not a GraphQL request"), "{:?}", gql.body);
    }
    still_serves(&server).await;
}

async fn huge_and_deeply_nested_variables_are_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    // 5,000 ids, within the body limit: the bulk limit refuses them, and nothing changes.
    let ids: Vec<Value> = (0..5_000).map(|i| json!(format!("QWdlbnQ6{i}"))).collect();
    let started = Instant::now();
    let gql = server
        .gql(
            Some(&admin),
            "mutation($ids: [ID!]!) { deleteAgents(ids: $ids) { deletedCount userErrors { code } } }",
            json!({ "ids": ids }),
        )
        .await;
    assert!(started.elapsed() < BOUND);
    assert_eq!(gql.user_error_codes("deleteAgents"), ["TOO_MANY_IDS"]);
    assert_eq!(gql.data()["deleteAgents"]["deletedCount"], 0);

    // Variables nested 10,000 deep: the JSON parser's recursion limit refuses them.
    let nested = format!(
        "{{\"query\": \"{{ viewer {{ id }} }}\", \"variables\": {{\"x\": {}{}}}}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let gql = post_raw(&server, nested).await;
    assert_eq!(gql.status, 400);
    assert!(first_message(&gql).contains("recursion limit"), "{:?}", gql.body);
    still_serves(&server).await;
}

async fn a_batch_of_a_thousand_operations_is_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let batch: Vec<_> = (0..1000).map(|_| json!({ "query": "{ viewer { id } }" })).collect();
    let gql = post_raw(&server, serde_json::to_vec(&batch).unwrap()).await;
    assert_eq!(gql.status, 400);
    assert!(first_message(&gql).contains("this one has 1000"), "{:?}", gql.body);
    still_serves(&server).await;
}

async fn an_unknown_operation_name_is_an_error(backend: Backend) {
    let server = TestServer::start(backend).await;
    let body =
        json!({ "query": "query A { viewer { id } } query B { viewer { id } }", "operationName": "C" });
    let gql = post_raw(&server, body.to_string()).await;
    assert_eq!(gql.status, 200);
    assert!(first_message(&gql).contains("Unknown operation named \"C\""), "{:?}", gql.body);
    assert!(gql.body["data"].is_null(), "nothing ran: {:?}", gql.body);
    still_serves(&server).await;
}

async fn a_websocket_subscribe_flood_is_closed_with_4429(backend: Backend) {
    let server = TestServer::start_with(backend, |config| config.ws_max_subscriptions = 5).await;
    let admin = server.admin().await;
    // Several times each: the close frame must reach the client every time, though the
    // client's unread subscribes are still arriving when the server closes.
    for protocol in Protocol::BOTH.into_iter().flat_map(|protocol| [protocol; 5]) {
        let mut socket = WsClient::connect(&server, protocol, Some(&admin)).await.expect("acknowledged");
        // Operations that complete free their place: ten queries in turn are fine.
        for n in 0..10 {
            let id = format!("q{n}");
            socket.subscribe(&id, "{ viewer { username } }", json!({})).await;
            assert_eq!(socket.next_result(&id).await["data"]["viewer"]["username"], "admin");
        }
        let started = Instant::now();
        let subscription = "subscription { agentDirectoryChanged { kind } }";
        let mut sent = 0;
        // The server closes the socket part-way, so later sends may fail.
        while sent < 1000 && socket.try_subscribe(&format!("s{sent}"), subscription, json!({})).await {
            sent += 1;
        }
        assert!(sent > 5, "the first five are within the limit");
        assert_eq!(socket.ending(BOUND).await, Ending::Closed(Some(4429)), "{protocol:?}");
        assert!(started.elapsed() < BOUND);
    }
    still_serves(&server).await;
}

async fn a_websocket_message_larger_than_a_body_closes_the_socket(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let limit = Config::defaults().max_body_bytes;
    for protocol in Protocol::BOTH {
        let mut socket = WsClient::connect(&server, protocol, Some(&admin)).await.expect("acknowledged");
        // Just under the limit is read and answered (an unknown message type is an error,
        // not a reason to close).
        let padding = "a".repeat(limit - 200);
        socket.subscribe("fits", "{ viewer { username } }", json!({ "padding": padding })).await;
        assert_eq!(socket.next_result("fits").await["data"]["viewer"]["username"], "admin");
        // Over it, after the handshake and before it, by a little and by a lot: a close frame
        // that says why (1009, "message too big"), not a dropped connection.
        for size in [limit + 1, 300_000, 1024 * 1024] {
            let started = Instant::now();
            let padding = "a".repeat(size);
            // The server may close before the whole message is written.
            let _ =
                socket.try_subscribe("big", "{ viewer { username } }", json!({ "padding": padding })).await;
            assert_eq!(socket.ending(BOUND).await, Ending::Closed(Some(1009)), "{protocol:?} {size}");
            assert!(started.elapsed() < BOUND);
            socket = WsClient::connect(&server, protocol, Some(&admin)).await.expect("acknowledged");
        }
        let mut unacknowledged = WsClient::open(&server, protocol).await;
        let payload =
            json!({ "authorization": format!("Bearer {}", admin.token), "padding": "a".repeat(limit) });
        // The server may close before the whole message is written.
        let _ = unacknowledged.try_send(json!({ "type": "connection_init", "payload": payload })).await;
        assert_eq!(unacknowledged.ending(BOUND).await, Ending::Closed(Some(1009)), "{protocol:?}");
    }
    still_serves(&server).await;
}

async fn headers_trickled_byte_by_byte_are_cut_off(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.header_read_timeout = Duration::from_millis(500);
    })
    .await;
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    let head = format!("POST /graphql HTTP/1.1\r\nhost: {}\r\nx-padding: {}", server.addr, "a".repeat(100));
    let started = Instant::now();
    let mut cut_off = false;
    for byte in head.as_bytes() {
        if slow.write_all(&[*byte]).await.is_err() {
            cut_off = true;
            break;
        }
        // A byte every 50 ms: never idle long, but the head would take over 6 s.
        let mut buffer = [0u8; 512];
        match tokio::time::timeout(Duration::from_millis(50), slow.read(&mut buffer)).await {
            Err(_) => {}
            // Closed, or hyper's answer to the timeout (408) before closing.
            Ok(read) => {
                cut_off = true;
                if let Ok(n) = read {
                    let answer = String::from_utf8_lossy(&buffer[..n]);
                    assert!(n == 0 || answer.starts_with("HTTP/1.1 408"), "{answer}");
                }
                break;
            }
        }
    }
    let took = started.elapsed();
    assert!(cut_off, "the slow client was never cut off");
    assert!(took >= Duration::from_millis(400) && took < Duration::from_secs(3), "cut off after {took:?}");
    still_serves(&server).await;
}
