//! What operators see and do: `/metrics`, request ids, and stopping the real binary.

use std::{net::SocketAddr, time::Duration};

use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::HeaderValue};

use crate::common::{
    Backend, TestServer, eventually,
    metrics::{scrape, settles_at, value},
    process::ServerProcess,
    ws::{Protocol, WsClient},
};

pub fn tests() -> Vec<crate::common::Test> {
    crate::tests![
        metrics_count_operations_statements_and_sockets,
        metrics_need_the_token_when_one_is_set,
        requests_carry_a_request_id,
        sigterm_lets_requests_in_flight_finish_and_exits_0,
        sigterm_exits_within_the_bound_when_clients_linger,
    ]
}

async fn metrics_need_the_token_when_one_is_set(backend: Backend) {
    let server =
        TestServer::start_with(backend, |config| config.metrics_token = Some("scrape-secret".into())).await;
    let scrape_with = async |authorization: Option<&str>| {
        let mut request = server.http.get(server.url("/metrics"));
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        request.send().await.unwrap()
    };
    for refused in
        [None, Some("Bearer scrape-secre"), Some("Bearer scrape-secret-and-more"), Some("scrape-secret")]
    {
        let response = scrape_with(refused).await;
        assert_eq!(response.status(), 401, "{refused:?}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
    }
    let response = scrape_with(Some("Bearer scrape-secret")).await;
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("agentdesk_websockets_open"));
}

async fn metrics_count_operations_statements_and_sockets(backend: Backend) {
    let server = TestServer::start(backend).await;
    let before = scrape(&server).await;
    for series in
        ["agentdesk_password_hashing_queue", "agentdesk_websockets_open", "agentdesk_subscriptions_active"]
    {
        assert!(before.contains(&format!("{series} 0")), "{series} in {before}");
    }

    let admin = server.admin().await;
    server.gql(Some(&admin), "query Probe { viewer { id } }", json!({})).await.data();
    server.gql(Some(&admin), "query Probe { viewer { id } }", json!({})).await.data();
    server.gql(None, "query Broken { organization { name } }", json!({})).await;
    let after = scrape(&server).await;

    let probe = r#"agentdesk_graphql_operations_total{operation="Probe",outcome="ok"}"#;
    assert_eq!(value(&after, probe) - value(&before, probe), 2.0, "{after}");
    let broken = r#"agentdesk_graphql_operations_total{operation="Broken",outcome="error"}"#;
    assert_eq!(value(&after, broken), 1.0);
    let anonymous_login = r#"agentdesk_graphql_operations_total{operation="anonymous",outcome="ok"}"#;
    assert_eq!(value(&after, anonymous_login), 1.0, "the harness's login names no operation");
    let count = "agentdesk_graphql_operation_duration_seconds_count";
    assert_eq!(value(&after, count) - value(&before, count), 4.0);
    let statements = "agentdesk_sql_statements_total";
    assert!(value(&after, statements) > value(&before, statements), "sign-in reads and writes");

    // The socket is counted from the task that serves it, which starts just after the handshake.
    let socket = WsClient::open(&server, Protocol::TransportWs).await;
    settles_at(&server, "agentdesk_websockets_open", 1.0).await;
    drop(socket);
    settles_at(&server, "agentdesk_websockets_open", 0.0).await;
}

async fn requests_carry_a_request_id(backend: Backend) {
    let server = TestServer::start(backend).await;
    let id_of = |response: &reqwest::Response| {
        response.headers().get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned)
    };
    let fresh = server.http.get(server.url("/healthz")).send().await.unwrap();
    let generated = id_of(&fresh).expect("a generated id");
    assert_eq!(generated.len(), 32);
    let again = server.http.get(server.url("/healthz")).send().await.unwrap();
    assert_ne!(id_of(&again).unwrap(), generated);

    let given = server
        .http
        .post(server.url("/graphql"))
        .header("x-request-id", "lb-7f3a.42")
        .json(&json!({ "query": "{ viewer { id } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(id_of(&given).as_deref(), Some("lb-7f3a.42"));
    let odd = server.http.get(server.url("/healthz")).header("x-request-id", "a b<c>").send().await.unwrap();
    let replaced = id_of(&odd).unwrap();
    assert_ne!(replaced, "a b<c>");
    assert_eq!(replaced.len(), 32);
}

/// Sends the head and the first part of a POST body: a request the server is in the middle of.
/// A whole `GET /healthz` answered first on the same connection proves the server has taken
/// the connection (not merely the kernel), so a stop that follows finds the request in flight.
async fn begin_request(addr: SocketAddr, body: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(format!("GET /healthz HTTP/1.1\r\nhost: {addr}\r\n\r\n").as_bytes()).await.unwrap();
    let mut answered = Vec::new();
    while !answered.ends_with(b"\r\n\r\nok") {
        let mut byte = [0];
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut byte)).await;
        assert_eq!(read.expect("/healthz answers").unwrap(), 1, "the connection stays open");
        answered.push(byte[0]);
    }
    let head = format!(
        "POST /graphql HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body.as_bytes()[..10]).await.unwrap();
    stream
}

async fn sigterm_lets_requests_in_flight_finish_and_exits_0(backend: Backend) {
    let mut binary = ServerProcess::start(backend, &stopping_within("10s")).await;
    let body = json!({ "query": "{ viewer { id } }" }).to_string();
    let mut in_flight = begin_request(binary.addr, &body).await;
    binary.terminate();
    eventually(Duration::from_secs(5), || async {
        match TcpStream::connect(binary.addr).await {
            Ok(_) => Err("still accepting new connections".to_owned()),
            Err(_) => Ok(()),
        }
    })
    .await;
    assert!(binary.is_running(), "still serving the request in flight");

    in_flight.write_all(&body.as_bytes()[10..]).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), in_flight.read_to_end(&mut response))
        .await
        .expect("the response comes, then the connection closes")
        .unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains(r#"{"data":{"viewer":null}}"#), "{response}");
    let status = binary.exit_status(Duration::from_secs(5)).await.expect("exits once the request is done");
    assert!(status.success(), "{status}");
}

async fn sigterm_exits_within_the_bound_when_clients_linger(backend: Backend) {
    let mut binary = ServerProcess::start(backend, &stopping_within("2s")).await;
    let body = json!({ "query": "{ viewer { id } }" }).to_string();
    let _never_finished = begin_request(binary.addr, &body).await;
    let mut request = format!("ws://{}/graphql/ws", binary.addr).into_client_request().unwrap();
    request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("graphql-transport-ws"));
    let (_socket, _) = tokio_tungstenite::connect_async(request).await.expect("WebSocket handshake");

    let stopping = tokio::time::Instant::now();
    binary.terminate();
    let status = binary.exit_status(Duration::from_secs(8)).await.expect("exits despite lingering clients");
    let took = stopping.elapsed();
    assert!(status.success(), "{status}");
    assert!(took >= Duration::from_millis(1500), "waited for the request in flight: {took:?}");
    assert!(took < Duration::from_secs(5), "gave up at the 2 s bound: {took:?}");
}

/// Flags for a process that waits at most `timeout` for requests in flight when stopping.
fn stopping_within(timeout: &str) -> [&str; 4] {
    ["--shutdown-timeout", timeout, "--ws-init-timeout", "60s"]
}
