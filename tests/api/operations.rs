//! What operators see: `/metrics` and request ids.

use std::time::Duration;

use serde_json::json;

use crate::common::{
    Backend, TestServer,
    ws::{Protocol, WsClient},
};

pub fn tests() -> Vec<crate::common::Test> {
    crate::tests![metrics_count_operations_statements_and_sockets, requests_carry_a_request_id]
}

async fn scrape(server: &TestServer) -> String {
    let response = server.http.get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("application/openmetrics-text"), "{content_type}");
    response.text().await.unwrap()
}

/// The value of one series, 0 when it has not appeared yet.
fn value(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| value.parse().unwrap_or_else(|_| panic!("{series}: {value}")))
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

async fn settles_at(server: &TestServer, series: &str, expected: f64) {
    let mut seen = f64::NAN;
    for _ in 0..100 {
        seen = value(&scrape(server).await, series);
        if seen == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{series} stayed at {seen}, expected {expected}");
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
