//! What operators see and do: `/metrics`, request ids, and stopping the real binary.

use std::{
    net::SocketAddr,
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use serde_json::json;
use tempfile::TempDir;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::HeaderValue};

use crate::common::{
    Backend, TestServer,
    postgres::TestDatabase,
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

pub async fn scrape(server: &TestServer) -> String {
    let response = server.http.get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("application/openmetrics-text"), "{content_type}");
    response.text().await.unwrap()
}

/// The value of one series, 0 when it has not appeared yet.
pub fn value(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| value.parse().unwrap_or_else(|_| panic!("{series}: {value}")))
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

pub async fn settles_at(server: &TestServer, series: &str, expected: f64) {
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

/// The real binary on a free port and a fresh database; killed if the test ends before it.
pub struct Binary {
    child: Child,
    pub addr: SocketAddr,
    pub database_url: String,
    shutdown_timeout: String,
    _storage: (Option<TempDir>, Option<TestDatabase>),
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Binary {
    pub async fn start(backend: Backend, shutdown_timeout: &str) -> Self {
        let (storage, database_url) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("agentdesk.db").display());
                ((Some(dir), None), url)
            }
            Backend::Postgres => {
                let database = TestDatabase::create().await;
                let url = database.url.clone();
                ((None, Some(database)), url)
            }
        };
        let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let shutdown_timeout = shutdown_timeout.to_owned();
        let child = spawn(addr, &database_url, &shutdown_timeout);
        let binary = Self { child, addr, database_url, shutdown_timeout, _storage: storage };
        binary.until_up().await;
        binary
    }

    /// SIGKILL (`Child::kill`), as a crash or the OOM killer would, then the binary again on
    /// the same database and address.
    pub async fn kill_and_restart(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.child = spawn(self.addr, &self.database_url, &self.shutdown_timeout);
        self.until_up().await;
    }

    async fn until_up(&self) {
        let started = Instant::now();
        while reqwest::get(format!("http://{}/healthz", self.addr)).await.is_err() {
            assert!(started.elapsed() < Duration::from_secs(60), "the binary did not come up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn terminate(&self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }

    async fn exit_status(&mut self, within: Duration) -> Option<ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < within {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }
}

fn spawn(addr: SocketAddr, database_url: &str, shutdown_timeout: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_agentdesk"))
        .args(["--listen", &addr.to_string(), "--database-url", database_url])
        .args(["--shutdown-timeout", shutdown_timeout, "--ws-init-timeout", "60s"])
        .env("AGENTDESK_BOOTSTRAP_PASSWORD", "admin-password")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the agentdesk binary starts")
}

/// Sends the head and the first part of a POST body: a request the server is in the middle of.
async fn begin_request(addr: SocketAddr, body: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /graphql HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body.as_bytes()[..10]).await.unwrap();
    stream
}

async fn sigterm_lets_requests_in_flight_finish_and_exits_0(backend: Backend) {
    let mut binary = Binary::start(backend, "10s").await;
    let body = json!({ "query": "{ viewer { id } }" }).to_string();
    let mut in_flight = begin_request(binary.addr, &body).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    binary.terminate();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(TcpStream::connect(binary.addr).await.is_err(), "no new connections once stopping");
    assert!(binary.child.try_wait().unwrap().is_none(), "still serving the request in flight");

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
    let mut binary = Binary::start(backend, "2s").await;
    let body = json!({ "query": "{ viewer { id } }" }).to_string();
    let _never_finished = begin_request(binary.addr, &body).await;
    let mut request = format!("ws://{}/graphql/ws", binary.addr).into_client_request().unwrap();
    request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("graphql-transport-ws"));
    let (_socket, _) = tokio_tungstenite::connect_async(request).await.expect("WebSocket handshake");
    tokio::time::sleep(Duration::from_millis(300)).await;

    let stopping = Instant::now();
    binary.terminate();
    let status = binary.exit_status(Duration::from_secs(8)).await.expect("exits despite lingering clients");
    let took = stopping.elapsed();
    assert!(status.success(), "{status}");
    assert!(took >= Duration::from_millis(1500), "waited for the request in flight: {took:?}");
    assert!(took < Duration::from_secs(5), "gave up at the 2 s bound: {took:?}");
}
