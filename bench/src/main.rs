//! agentdesk benchmarks: starts agentdesk in this process on a fresh database (SQLite file,
//! then a fresh PostgreSQL database), seeds 1,000 agents in 20 queues, measures, and writes
//! a markdown report (`BENCHMARKS.md` by default).
//!
//! `cargo run --release -p agentdesk-bench --bin bench` (add `-- --quick` to iterate).

use std::{
    collections::HashMap,
    fmt::Write as _,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use agentdesk::routing::model::Status;
use agentdesk::{
    app::{self, RunningServer},
    config::Config,
    db::entities::{agent, conversation, queue},
    directory::service::{self as directory, NewOrganization},
    graphql::id::{self, NodeKind},
    presence::{
        model::{Presence, Timings},
        service as presence,
    },
    routing::{model::NewConversation, service as routing},
    state::AppState,
    viewer::{Role, Viewer},
};
use agentdesk_bench::{LOGIN, PAGE_QUERY, Seeded, login_variables, login_variables_in};
use agentdesk_testkit::{
    postgres::TestDatabase,
    seed::{self, SEED_PASSWORD},
};
use clap::Parser;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait, QueryFilter, prelude::Expr,
};
use serde_json::{Value, json};
use tokio::net::TcpListener;

mod crowd;
mod fanout_floor;
mod page_floor;
mod stamped;
mod subscribers;
mod tenants;

use fanout_floor::FloorServer;

const CLIENTS: usize = 64;
/// Each back-end's run: the tenants' sections take a few minutes on their own.
const RUN_BOUND: Duration = Duration::from_secs(900);

#[derive(Debug, Parser)]
#[command(about = "agentdesk benchmarks; writes a markdown report")]
struct Args {
    /// Short runs (2 s per load phase, 1,000 subscribers only) to iterate; figures are noisier.
    #[arg(long)]
    quick: bool,
    /// Back-ends to measure, comma-separated: sqlite, postgres.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
    backends: Vec<String>,
    /// Subscriber counts for the presence fan-out, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    subscribers: Vec<usize>,
    /// Seconds per HTTP load phase (default 8, or 2 with --quick).
    #[arg(long)]
    seconds: Option<u64>,
    /// Skip sections, comma-separated: read, statements, bulk, logins, large, fanout, fanout-floor,
    /// routing, tenants, notify.
    #[arg(long, value_delimiter = ',')]
    skip: Vec<String>,
    /// Idle organizations beside the measured one, 10 sockets each (default 2,000, or 200
    /// with --quick); fewer if the descriptor limit cannot hold their sockets.
    #[arg(long)]
    tenant_organizations: Option<usize>,
    /// Organizations the sustained mix of events is spread over (default 500, or 50 with --quick).
    #[arg(long)]
    tenant_mix_organizations: Option<usize>,
    /// Events a second of the sustained mix.
    #[arg(long, default_value_t = 500.0)]
    tenant_rate: f64,
    /// Seconds of the sustained mix, and of each rate of `notify` (default 10, or 3 with --quick).
    #[arg(long)]
    tenant_seconds: Option<u64>,
    /// Events a second driven through one instance and heard on another (PostgreSQL only).
    #[arg(long, value_delimiter = ',', default_value = "250,500,1000,2000")]
    notify_rates: Vec<f64>,
    /// PostgreSQL server to create the benchmark database on.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    postgres_admin_url: String,
    /// Where to write the report.
    #[arg(long, default_value = "BENCHMARKS.md")]
    output: String,
    /// Internal: run as the fan-out's subscriber process against this WebSocket URL.
    #[arg(long, hide = true)]
    subscriber_client: Option<String>,
    #[arg(long, hide = true, default_value_t = 0)]
    subscriber_count: usize,
    /// Internal: run as the crowd of idle tenants against this WebSocket URL.
    #[arg(long, hide = true)]
    crowd_client: Option<String>,
    /// Serve only the same-driver floor on this database (seeded and signed in by agentdesk)
    /// until killed, to profile it alone, as BENCHMARKS.md profiles agentdesk's page.
    #[arg(long)]
    serve_floor: Option<String>,
}

/// One row of the report: a metric, its target, and one cell per back-end.
#[derive(Default)]
struct Report {
    rows: Vec<(String, String)>,
    cells: HashMap<(String, String), String>,
    notes: Vec<String>,
}

impl Report {
    fn set(&mut self, backend: &str, metric: &str, target: &str, value: String) {
        if !self.rows.iter().any(|(m, _)| m == metric) {
            self.rows.push((metric.to_owned(), target.to_owned()));
        }
        println!("[{backend}] {metric}: {value}");
        self.cells.insert((backend.to_owned(), metric.to_owned()), value);
    }
}

fn main() {
    let args = Args::parse();
    raise_descriptor_limit();
    if let Some(ws_url) = &args.crowd_client {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
        return runtime.expect("a runtime").block_on(crowd::client(ws_url));
    }
    if let Some(ws_url) = &args.subscriber_client {
        // One thread: the subscribers share the cores with the server they measure, and a
        // single-threaded runtime spends nothing on handing tasks between threads.
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
        return runtime.expect("a runtime").block_on(subscribers::client(ws_url, args.subscriber_count));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build();
    if let Some(database_url) = &args.serve_floor {
        return runtime.expect("a runtime").block_on(async {
            // Served as the benchmark measures it: in a process where agentdesk opened SQLite
            // first, which configures it process-wide (memory statistics off).
            let pool_size = Config::defaults().database_pool_size;
            let _agentdesk = agentdesk::db::connect(database_url, pool_size).await.expect("agentdesk's pool");
            let address = page_floor::start_same_driver(database_url, pool_size, None).await;
            println!("same-driver floor at http://{address}/graphql");
            std::future::pending::<()>().await;
        });
    }
    runtime.expect("a runtime").block_on(measure_all(args));
}

async fn measure_all(args: Args) {
    let seconds = args.seconds.unwrap_or(if args.quick { 2 } else { 8 });
    let phase = Duration::from_secs(seconds);
    let started = Instant::now();
    let before = MachineState::now();
    let mut report = Report::default();
    for backend in &args.backends {
        let retried_before = RETRIED_UNAVAILABLE.load(Ordering::Relaxed);
        let outcome = tokio::time::timeout(RUN_BOUND, run_backend(backend, &args, phase, &mut report)).await;
        if outcome.is_err() {
            report.notes.push(format!("{backend}: the run hit its {RUN_BOUND:?} bound and was cut short."));
        }
        let retried = RETRIED_UNAVAILABLE.load(Ordering::Relaxed) - retried_before;
        if retried > 0 {
            report.notes.push(format!("{backend}: {retried} requests answered UNAVAILABLE were sent again."));
        }
    }
    let after = MachineState::now();
    let markdown = render(&args, &report, &before, &after, started.elapsed());
    std::fs::write(&args.output, markdown).expect("write the report");
    println!("Wrote {} in {:.0?}", args.output, started.elapsed());
}

fn skipped(args: &Args, section: &str) -> bool {
    args.skip.iter().any(|s| s == section)
}

// ---------------------------------------------------------------------------------------
// Set-up
// ---------------------------------------------------------------------------------------

enum Storage {
    Sqlite(std::path::PathBuf),
    /// Dropped (and so deleted) with the storage.
    Postgres(#[expect(dead_code, reason = "held only for its Drop")] TestDatabase),
}

impl Storage {
    async fn create(backend: &str, admin_url: &str) -> (Self, String) {
        match backend {
            "sqlite" => {
                let dir = std::env::temp_dir().join(format!("agentdesk-bench-{}", std::process::id()));
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir).expect("temporary directory");
                let url = format!("sqlite://{}?mode=rwc", dir.join("agentdesk.db").display());
                (Storage::Sqlite(dir), url)
            }
            "postgres" => {
                let database = TestDatabase::create_on(admin_url).await;
                let url = database.url.clone();
                (Storage::Postgres(database), url)
            }
            other => panic!("unknown back-end {other}: use sqlite or postgres"),
        }
    }

    /// Deletes the database (PostgreSQL's when dropped).
    fn remove(self) {
        if let Storage::Sqlite(dir) = self {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

struct Env {
    server: RunningServer,
    http: reqwest::Client,
    url: String,
    admin_token: String,
    admin: Viewer,
    /// Seeded agents, in display-name order.
    agents: Vec<agent::Model>,
}

impl Env {
    fn state(&self) -> &AppState {
        &self.server.state
    }

    async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        gql(&self.http, &self.url, token, query, variables).await
    }
}

/// A GraphQL request over HTTP, signed in as `token` when given.
fn graphql_request(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> reqwest::RequestBuilder {
    let request = http
        .post(url)
        .header("content-type", "application/json")
        .body(json!({ "query": query, "variables": variables }).to_string());
    match token {
        Some(token) => request.header("authorization", format!("Bearer {token}")),
        None => request,
    }
}

async fn gql(http: &reqwest::Client, url: &str, token: Option<&str>, query: &str, variables: Value) -> Value {
    let request = graphql_request(http, url, token, query, variables);
    for attempt in 1..=UNAVAILABLE_ATTEMPTS {
        let request = request.try_clone().expect("a body in memory");
        let response = request.send().await.expect("request reaches the server");
        let text = response.text().await.expect("response body");
        let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
        let error = &body["errors"][0]["extensions"];
        // UNAVAILABLE writes nothing and says when to try again (the pool waited out its
        // acquire timeout, say): sent again, and counted in the report's notes, rather than
        // ending the whole run.
        if error["code"] == "UNAVAILABLE" && attempt < UNAVAILABLE_ATTEMPTS {
            RETRIED_UNAVAILABLE.fetch_add(1, Ordering::Relaxed);
            let wait = error["retryAfterSeconds"].as_u64().unwrap_or(1).min(5);
            tokio::time::sleep(Duration::from_secs(wait)).await;
            continue;
        }
        assert!(body.get("errors").is_none(), "GraphQL errors: {body}");
        return body["data"].clone();
    }
    unreachable!("the last attempt returns or fails")
}

/// How many times a request answered UNAVAILABLE is sent, in all.
const UNAVAILABLE_ATTEMPTS: u32 = 3;
/// Requests answered UNAVAILABLE and sent again, over the run.
static RETRIED_UNAVAILABLE: AtomicU64 = AtomicU64::new(0);

async fn login(http: &reqwest::Client, url: &str, username: &str, password: &str) -> String {
    let data = gql(http, url, None, LOGIN, login_variables(username, password)).await;
    data["login"]["token"].as_str().unwrap_or_else(|| panic!("login as {username}: {data}")).to_owned()
}

async fn setup(database_url: String) -> Env {
    let Seeded { state, admin, admin_token, agents, .. } = agentdesk_bench::seeded(database_url).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let server = app::start(state, listener).await.expect("server starts");
    let url = format!("http://{}/graphql", server.addr);
    let http = reqwest::Client::builder().pool_max_idle_per_host(256).build().expect("HTTP client");
    Env { server, http, url, admin_token, admin, agents }
}

// ---------------------------------------------------------------------------------------
// HTTP load
// ---------------------------------------------------------------------------------------

struct LoadStats {
    requests: usize,
    errors: usize,
    rps: f64,
    p50: Duration,
    p99: Duration,
}

impl LoadStats {
    fn summary(&self) -> String {
        format!("{:.0} req/s, p50 {}, p99 {}", self.rps, ms(self.p50), ms(self.p99))
    }
}

/// What one server answered under load: each counted request's latency, over `duration`.
#[derive(Default)]
struct Load {
    latencies: Vec<Duration>,
    errors: usize,
    duration: Duration,
}

impl Load {
    fn rps(&self) -> f64 {
        self.latencies.len() as f64 / self.duration.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    fn add(&mut self, other: Load) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        self.duration += other.duration;
    }

    fn stats(mut self) -> LoadStats {
        self.latencies.sort_unstable();
        LoadStats {
            requests: self.latencies.len(),
            errors: self.errors,
            rps: self.rps(),
            p50: percentile(&self.latencies, 0.50),
            p99: percentile(&self.latencies, 0.99),
        }
    }
}

/// `clients` keep-alive clients posting `body` back to back for `duration` (after a 1 s
/// warm-up whose requests are not counted).
async fn http_load(url: &str, token: &str, body: &str, clients: usize, duration: Duration) -> LoadStats {
    load(url, token, body, clients, duration).await.stats()
}

/// Servers compared with each other (row 1) are loaded in turn, `rounds` slices of `duration
/// / rounds` each, so that the machine's drift (its host's other tenants come and go) falls on
/// all of them alike instead of on whichever ran last. Each server's loads, merged, and its
/// requests per second in each round.
async fn http_loads_in_turn(
    urls: &[String],
    token: &str,
    body: &str,
    clients: usize,
    duration: Duration,
    rounds: u32,
) -> Vec<(LoadStats, Vec<f64>)> {
    let mut loads: Vec<(Load, Vec<f64>)> = urls.iter().map(|_| Default::default()).collect();
    for _ in 0..rounds {
        for (url, (merged, per_round)) in urls.iter().zip(&mut loads) {
            let slice = load(url, token, body, clients, duration / rounds).await;
            per_round.push(slice.rps());
            merged.add(slice);
        }
    }
    loads.into_iter().map(|(merged, per_round)| (merged.stats(), per_round)).collect()
}

async fn load(url: &str, token: &str, body: &str, clients: usize, duration: Duration) -> Load {
    let http = reqwest::Client::builder().pool_max_idle_per_host(clients * 2).build().unwrap();
    let warmup = Instant::now() + Duration::from_secs(1);
    let end = warmup + duration;
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, url, auth, body) =
            (http.clone(), url.to_owned(), format!("Bearer {token}"), body.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0usize;
            loop {
                let begun = Instant::now();
                if begun >= end {
                    break;
                }
                let response = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("authorization", &auth)
                    .body(body.clone())
                    .send()
                    .await;
                let ok = match response {
                    Ok(response) => {
                        let status = response.status();
                        let bytes = response.bytes().await;
                        status.is_success() && bytes.is_ok_and(|b| !b.windows(9).any(|w| w == b"\"errors\":"))
                    }
                    Err(_) => false,
                };
                if begun >= warmup {
                    if ok {
                        latencies.push(begun.elapsed());
                    } else {
                        errors += 1;
                    }
                }
            }
            (latencies, errors)
        }));
    }
    let mut total = Load { duration, ..Default::default() };
    for task in tasks {
        let (latencies, errors) = task.await.unwrap();
        total.latencies.extend(latencies);
        total.errors += errors;
    }
    total
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

// ---------------------------------------------------------------------------------------
// Sections
// ---------------------------------------------------------------------------------------

/// The floor of row 1's target: sqlx with its defaults (see `page_floor`).
const SAME_DRIVER: &str = "same-driver floor (sqlx)";
/// Row 1's servers take turns this many times (`http_loads_in_turn`).
const READ_ROUNDS: u32 = 4;

async fn run_backend(backend: &str, args: &Args, phase: Duration, report: &mut Report) {
    println!("== {backend}: setting up (1,000 agents, 20 queues)");
    let (storage, database_url) = Storage::create(backend, &args.postgres_admin_url).await;
    let set_up = Instant::now();
    let env = setup(database_url.clone()).await;
    println!("   set up in {:.1?}", set_up.elapsed());
    let body = json!({ "query": PAGE_QUERY }).to_string();

    let mut idle_p99 = None;
    if !skipped(args, "read") {
        let pool_size = Config::defaults().database_pool_size;
        let mut floors =
            vec![(SAME_DRIVER, page_floor::start_same_driver(&database_url, pool_size, None).await)];
        if let Storage::Sqlite(dir) = &storage {
            let rows = Some(agentdesk::db::SQLITE_ROWS_BUFFERED);
            floors.push((
                "same-driver floor, rows buffered as agentdesk's (sqlx)",
                page_floor::start_same_driver(&database_url, pool_size, rows).await,
            ));
            floors.push((
                "hardware line (rusqlite)",
                page_floor::start_hardware(dir.join("agentdesk.db")).await,
            ));
        }
        // A floor that answered something else would measure something else.
        let expected = env.gql(Some(&env.admin_token), PAGE_QUERY, json!({})).await;
        for (name, floor) in &floors {
            let url = format!("http://{floor}/graphql");
            let answer = gql(&env.http, &url, Some(&env.admin_token), PAGE_QUERY, json!({})).await;
            assert_eq!(answer, expected, "the {name} answers as agentdesk does");
        }
        let mut urls = vec![env.url.clone()];
        urls.extend(floors.iter().map(|(_, floor)| format!("http://{floor}/graphql")));
        let mut loads =
            http_loads_in_turn(&urls, &env.admin_token, &body, CLIENTS, phase, READ_ROUNDS).await.into_iter();
        let (graphql, graphql_rounds) = loads.next().expect("agentdesk's load");
        idle_p99 = Some(graphql.p99);
        report.set(
            backend,
            "1. agents page, 64 clients: agentdesk",
            "p50 ≤ 35 ms (SQLite)",
            graphql.summary(),
        );
        let mut counted = format!("{} ({})", graphql.requests, graphql.errors);
        for ((name, _), (stats, rounds)) in floors.into_iter().zip(loads) {
            let target = if name == SAME_DRIVER { "agentdesk ≥ 1.0x" } else { "reported" };
            report.set(backend, &format!("1. {name}"), target, stats.summary());
            let each_round: Vec<String> = graphql_rounds
                .iter()
                .zip(&rounds)
                .map(|(ours, floor)| format!("{:.2}x", ours / floor))
                .collect();
            report.set(
                backend,
                &format!("1. agentdesk / {name}"),
                target,
                format!(
                    "{:.2}x (each of the {READ_ROUNDS} rounds: {})",
                    graphql.rps / stats.rps.max(f64::MIN_POSITIVE),
                    each_round.join(", ")
                ),
            );
            write!(counted, " / {name} {} ({})", stats.requests, stats.errors).unwrap();
        }
        report.set(backend, "1. requests counted (errors)", "0 errors", counted);
    }

    if !skipped(args, "statements") {
        let mut counts = Vec::new();
        for size in [5, 50, 200] {
            let query = format!(
                "query {{ agents(first: {size}) {{ totalCount nodes {{ id displayName queues {{ name }} }} }} }}"
            );
            // Once to settle (a session's last-seen touch happens at most once a minute), then
            // the measured request.
            env.gql(Some(&env.admin_token), &query, json!({})).await;
            let before = env.state().statements.get();
            let data = env.gql(Some(&env.admin_token), &query, json!({})).await;
            let after = env.state().statements.get();
            assert_eq!(data["agents"]["nodes"].as_array().map(Vec::len), Some(size));
            counts.push(format!("{size}: {}", after - before));
        }
        report.set(backend, "2. SQL statements per page (size: statements)", "flat", counts.join(", "));
    }

    if !skipped(args, "logins")
        && let Some(idle) = idle_p99
    {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let logins = {
            let (http, url, stop, done, failed) =
                (env.http.clone(), env.url.clone(), stop.clone(), done.clone(), failed.clone());
            let names: Vec<String> = env.agents.iter().map(|a| a.username.clone()).collect();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(50));
                let mut n = 0;
                let mut inflight = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    let (http, url, done, failed) = (http.clone(), url.clone(), done.clone(), failed.clone());
                    let username = names[n % names.len()].clone();
                    n += 1;
                    inflight.push(tokio::spawn(async move {
                            let response = http
                                .post(&url)
                                .header("content-type", "application/json")
                                .body(
                                    json!({ "query": LOGIN, "variables": login_variables(&username, SEED_PASSWORD) })
                                        .to_string(),
                                )
                                .send()
                                .await;
                            let ok = match response {
                                Ok(r) => r.text().await.is_ok_and(|t| t.contains("\"token\":\"")),
                                Err(_) => false,
                            };
                            if ok { done.fetch_add(1, Ordering::Relaxed) } else { failed.fetch_add(1, Ordering::Relaxed) };
                        }));
                }
                for task in inflight {
                    let _ = task.await;
                }
            })
        };
        let started = Instant::now();
        let loaded = http_load(&env.url, &env.admin_token, &body, CLIENTS, phase).await;
        let elapsed = started.elapsed();
        stop.store(true, Ordering::Relaxed);
        let _ = logins.await;
        let rate = done.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64();
        report.set(
            backend,
            "4. read p99 with 20 logins/s (argon2)",
            "< 2x idle p99",
            format!(
                "{} ({:.2}x idle p99 {}); {} req/s; {:.1} logins/s done, {} failed",
                ms(loaded.p99),
                loaded.p99.as_secs_f64() / idle.as_secs_f64().max(1e-9),
                ms(idle),
                loaded.rps as u64,
                rate,
                failed.load(Ordering::Relaxed)
            ),
        );
    }

    if !skipped(args, "bulk") {
        let ids: Vec<String> =
            env.agents.iter().map(|a| id::encode(NodeKind::Agent, a.id).to_string()).collect();
        let mutation = "mutation($ids: [ID!]!, $on: Boolean!) { setAgentsEnabled(ids: $ids, enabled: $on) { affectedCount userErrors { code } } }";
        // Timed over several rounds (each disables all, then enables all): one request is at
        // the mercy of whatever else the machine does in those milliseconds.
        let mut timings: [Vec<Duration>; 2] = [vec![], vec![]];
        let mut statements = [0; 2];
        for _ in 0..BULK_ROUNDS {
            for (direction, on) in [false, true].into_iter().enumerate() {
                let before = env.state().statements.get();
                let started = Instant::now();
                let data = env.gql(Some(&env.admin_token), mutation, json!({ "ids": ids, "on": on })).await;
                timings[direction].push(started.elapsed());
                statements[direction] = env.state().statements.get() - before;
                let affected = &data["setAgentsEnabled"]["affectedCount"];
                assert_eq!(*affected, json!(ids.len()), "setAgentsEnabled(enabled: {on}): {data}");
            }
        }
        for (direction, on) in [false, true].into_iter().enumerate() {
            let times = &mut timings[direction];
            times.sort_unstable();
            report.set(
                backend,
                &format!("3. setAgentsEnabled(1,000 ids, enabled: {on})"),
                "< 50 ms (SQLite)",
                format!(
                    "median {} over HTTP of {BULK_ROUNDS} rounds (fastest {}, slowest {}), {} statements, affectedCount {}",
                    ms(percentile(times, 0.5)),
                    ms(times[0]),
                    ms(times[times.len() - 1]),
                    statements[direction],
                    ids.len()
                ),
            );
        }
    }

    let limit = fd_limit();
    let subscriber_counts = args.subscribers.iter().copied().filter(|&n| !args.quick || n <= 1000);
    if !skipped(args, "fanout") {
        for n in subscriber_counts.clone() {
            report.set(
                backend,
                &format!("5. presence fan-out, {n} subscribers"),
                "p99 < 100 ms, < 16 KiB each (10,000)",
                within_limits(n, limit, fanout(&env, n)).await,
            );
        }
    }
    // After the fan-outs: whatever the floor leaves in this process's allocator cannot hide
    // a fan-out's memory growth.
    if !skipped(args, "fanout-floor") {
        for n in subscriber_counts {
            report.set(
                backend,
                &format!("5. fan-out floor, {n} subscribers: a server that only writes"),
                "none (no server delivers faster here)",
                within_limits(n, limit, fanout_floor(&env.admin_token, n)).await,
            );
        }
    }

    if !skipped(args, "large") {
        large_organization(&env, backend, phase, report).await;
    }

    if !skipped(args, "routing") {
        let outcome = tokio::time::timeout(Duration::from_secs(120), assignments(&env)).await;
        let value = outcome.unwrap_or_else(|_| "did not finish within 120 s".into());
        report.set(
            backend,
            "5. assignments: 50 agents (limits 1-3), 1,000 conversations",
            ">= 500/s (SQLite)",
            value,
        );
    }

    let run_notify = backend == "postgres" && !skipped(args, "notify");
    if !skipped(args, "tenants") || run_notify {
        tenant_sections(&env, backend, args, &database_url, limit, report).await;
    }

    let _ = env.server.stop().await;
    storage.remove();
}

/// The multi-tenant section and, on PostgreSQL, the LISTEN/NOTIFY capacity, on one crowd of
/// seeded organizations.
async fn tenant_sections(
    env: &Env,
    backend: &str,
    args: &Args,
    database_url: &str,
    limit: usize,
    report: &mut Report,
) {
    let or_quick = |given: Option<usize>, full, quick| given.unwrap_or(if args.quick { quick } else { full });
    let organizations = or_quick(args.tenant_organizations, 2000, 200);
    let mix_organizations = or_quick(args.tenant_mix_organizations, 500, 50);
    let seconds = Duration::from_secs(args.tenant_seconds.unwrap_or(if args.quick { 3 } else { 10 }));
    let sizes = tenants::Sizes {
        organizations,
        mix_organizations,
        rate: args.tenant_rate,
        seconds,
        changes: if args.quick { 10 } else { 40 },
    };
    let room = limit.saturating_sub(tenants::MEASURED_SUBSCRIBERS + tenants::DESCRIPTORS_BESIDES);
    let held = organizations.min(room / tenants::SOCKETS_PER_ORGANIZATION);
    let crowd = tenants::seed_crowd(env, held.max(mix_organizations)).await;
    if !skipped(args, "tenants") {
        let run = tenants::run(env, backend, &crowd[..held], &sizes, limit, report);
        let outcome = tokio::time::timeout(Duration::from_secs(400), run).await;
        if outcome.is_err() {
            report
                .notes
                .push(format!("{backend}: the tenants section hit its 400 s bound and was cut short."));
        }
    }
    if backend == "postgres" && !skipped(args, "notify") {
        let mixed = &crowd[..mix_organizations.min(crowd.len())];
        tenants::notify_capacity(env, database_url, mixed, &args.notify_rates, seconds, report).await;
    }
}

/// How many times the bulk rows time each call; the median is reported.
const BULK_ROUNDS: usize = 5;

/// Agents of the large organization: the page must cost the same however many there are.
const LARGE: usize = 50_000;

/// A second organization of `LARGE` agents (seeded by SQL) beside the 1,000-agent one: the
/// first page of each, with one client and with 64.
async fn large_organization(env: &Env, backend: &str, phase: Duration, report: &mut Report) {
    const PASSWORD: &str = "bench-large-password";
    let state = env.state();
    let new = NewOrganization {
        name: "Large".into(),
        slug: "large".into(),
        seat_limit: 100_000,
        admin_username: "boss".into(),
        admin_password: PASSWORD.into(),
    };
    let (organization, _) =
        directory::create_organization(&state.db, &state.hasher, new).await.expect("organization");
    let seeding = Instant::now();
    seed::agents(&state.db, organization.id, "large", LARGE).await;
    println!("   {LARGE} agents seeded in {:.1?}", seeding.elapsed());
    if state.db.get_database_backend() == DbBackend::Postgres {
        // What autovacuum does within a minute of a bulk load: without statistics the planner
        // takes the 50,000 new rows for a handful and plans the page accordingly.
        state.db.execute_unprepared("ANALYZE").await.expect("ANALYZE");
    }
    let data = gql(&env.http, &env.url, None, LOGIN, login_variables_in("large", "boss", PASSWORD)).await;
    let token = data["login"]["token"].as_str().expect("the large organization's admin signs in").to_owned();
    let body = json!({ "query": PAGE_QUERY }).to_string();
    for clients in [1, CLIENTS] {
        let small = http_load(&env.url, &env.admin_token, &body, clients, phase).await;
        let large = http_load(&env.url, &token, &body, clients, phase).await;
        report.set(
            backend,
            &format!("6. page p50, {clients} client(s): 1,000 / 50,000 agents"),
            "≤ 1.2x",
            format!(
                "{} / {} ({:.2}x)",
                ms(small.p50),
                ms(large.p50),
                large.p50.as_secs_f64() / small.p50.as_secs_f64()
            ),
        );
    }
}

/// Presence changes of one fan-out measurement, after a warm-up change (see
/// `subscribers::Fanout::warm_up_p99`): more than one, because a single change's p99 is at
/// the mercy of whatever else the machine does at that moment.
const FANOUT_CHANGES: usize = 5;

/// The outcome of a fan-out `measurement` of `n` subscribers, if the descriptor `limit` allows
/// it (one a socket in each process, see subscribers.rs, plus the pools) and it ends in time.
async fn within_limits(n: usize, limit: usize, measurement: impl Future<Output = String>) -> String {
    if n + 500 > limit {
        return format!("not run: needs ~{} file descriptors, the limit is {limit}", n + 500);
    }
    let outcome = tokio::time::timeout(Duration::from_secs(180), measurement).await;
    outcome.unwrap_or_else(|_| "did not finish within 180 s".into())
}

/// One agent goes ONLINE and OFFLINE in turns in front of `n` subscribers; see subscribers.rs.
async fn fanout(env: &Env, n: usize) -> String {
    let fanout = presence_fanout(env, n, FANOUT_CHANGES).await;
    format!(
        "{}/{n} subscribed in {:.1} s; {}; first delivery of each change {}; server RSS +{:.1} KiB a subscriber (+{:.1} KiB after the changes); {}",
        fanout.subscribed,
        fanout.connect_time.as_secs_f64(),
        deliveries(&fanout),
        fanout.firsts.iter().map(|first| ms(*first)).collect::<Vec<_>>().join(", "),
        fanout.server_rss_growth_kib as f64 / fanout.subscribed.max(1) as f64,
        fanout.server_rss_growth_after_changes_kib as f64 / fanout.subscribed.max(1) as f64,
        cpu_per_change(&fanout),
    )
}

/// `changes` presence changes of one of the ADMIN's agents (after a warm-up one) in front of
/// `n` subscribers of the ADMIN's organization.
async fn presence_fanout(env: &Env, n: usize, changes: usize) -> subscribers::Fanout {
    let agent = &env.agents[0];
    let token = login(&env.http, &env.url, &agent.username, SEED_PASSWORD).await;
    let ws_url = format!("ws://{}/graphql/ws", env.server.addr);
    let presence = async |status: &str| {
        let mutation = format!("mutation {{ reportPresence(status: {status}) {{ id }} }}");
        gql(&env.http, &env.url, Some(&token), &mutation, json!({})).await;
    };
    let change = async |i: usize| presence(if i.is_multiple_of(2) { "ONLINE" } else { "OFFLINE" }).await;
    let fanout = subscribers::measure(&ws_url, &env.admin_token, n, changes, change).await;
    if !(changes + 1).is_multiple_of(2) {
        // Back OFFLINE for the next run (the changes, the warm-up included, start ONLINE).
        presence("OFFLINE").await;
    }
    fanout
}

/// The same subscribers and changes against a server that only writes (fanout_floor.rs).
async fn fanout_floor(token: &str, n: usize) -> String {
    let floor = FloorServer::start().await;
    let change = async |_: usize| floor.broadcast(fanout_floor::EVENT).await;
    let fanout = subscribers::measure(&floor.ws_url(), token, n, FANOUT_CHANGES, change).await;
    format!("{}/{n} subscribed; {}; {}", fanout.subscribed, deliveries(&fanout), cpu_per_change(&fanout))
}

/// The latencies of a fan-out measurement, read by the subscribers and stamped by the kernel.
fn deliveries(fanout: &subscribers::Fanout) -> String {
    let latencies = &fanout.latencies;
    format!(
        "{FANOUT_CHANGES} changes, {} deliveries: p50 {}, p99 {} (each change's p99: {}), last {}; in the subscribers' sockets (kernel receive time, {} stamped): p50 {}, p99 {}; the warm-up change before them (not counted): p99 {}, first delivery {}",
        latencies.len(),
        ms(percentile(latencies, 0.5)),
        ms(percentile(latencies, 0.99)),
        fanout.p99s.iter().map(|p99| ms(*p99)).collect::<Vec<_>>().join(", "),
        ms(latencies.last().copied().unwrap_or_default()),
        fanout.handed.len(),
        ms(percentile(&fanout.handed, 0.5)),
        ms(percentile(&fanout.handed, 0.99)),
        ms(fanout.warm_up_p99),
        ms(fanout.warm_up_first),
    )
}

fn cpu_per_change(fanout: &subscribers::Fanout) -> String {
    let changes = FANOUT_CHANGES as u128;
    format!(
        "CPU per change while delivering: server {} ms, subscribers {} ms",
        fanout.server_cpu.as_millis() / changes,
        fanout.subscribers_cpu.as_millis() / changes,
    )
}

/// 50 agents with limits 1, 2, 3 in one queue; 1,000 conversations created while they are
/// OFFLINE; then they come ONLINE and every assigned conversation is closed as soon as it
/// is seen, so capacity frees up and the queue drains. In-process service calls (no HTTP).
async fn assignments(env: &Env) -> String {
    let state = env.state();
    let (db, bus) = (&state.db, &state.bus);
    let data = env
        .gql(
            Some(&env.admin_token),
            "mutation { createQueue(input: { name: \"Routing bench\" }) { queue { id } } }",
            json!({}),
        )
        .await;
    let queue_gid = data["createQueue"]["queue"]["id"].as_str().unwrap().to_owned();
    let queue_id = queue::Entity::find()
        .filter(queue::Column::Name.eq("Routing bench"))
        .one(db)
        .await
        .unwrap()
        .expect("the routing queue")
        .id;
    let crew: Vec<&agent::Model> = env.agents.iter().skip(100).take(50).collect();
    let ids: Vec<String> = crew.iter().map(|a| id::encode(NodeKind::Agent, a.id).to_string()).collect();
    env.gql(
        Some(&env.admin_token),
        "mutation($q: ID!, $ids: [ID!]!) { addAgentsToQueue(queueId: $q, agentIds: $ids) { userErrors { code } } }",
        json!({ "q": queue_gid, "ids": ids }),
    )
    .await;
    for limit in 1..=3 {
        let group: Vec<i64> =
            crew.iter().enumerate().filter(|(i, _)| i % 3 == limit - 1).map(|(_, a)| a.id).collect();
        agent::Entity::update_many()
            .col_expr(agent::Column::MaxConcurrentSessions, Expr::value(limit as i32))
            .filter(agent::Column::Id.is_in(group))
            .exec(db)
            .await
            .unwrap();
    }
    let created = Instant::now();
    for n in 0..1000 {
        let new = NewConversation {
            queue_id: Some(queue_id),
            customer_name: Some(format!("Customer {n}")),
            customer_phone: Some("+14155550123".into()),
        };
        routing::create_conversation(db, bus, &env.admin, new).await.expect("conversation");
    }
    let create_rate = 1000.0 / created.elapsed().as_secs_f64();
    let statements_before = state.statements.get();
    let started = Instant::now();
    let timings = Timings::from_config(&state.config);
    for agent in &crew {
        let viewer = Viewer {
            agent_id: agent.id,
            username: agent.username.clone(),
            organization_id: agent.organization_id,
            role: Role::Agent,
            session_id: 0,
            show_real_phone_numbers: false,
        };
        let take_waiting = || routing::agent_available(db, bus, agent.organization_id, agent.id);
        presence::report(db, bus, timings, &viewer, Presence::Online, take_waiting).await.expect("online");
    }
    let mut closed = 0u64;
    loop {
        let assigned = conversation::Entity::find()
            .filter(conversation::Column::QueueId.eq(queue_id))
            .filter(conversation::Column::Status.eq(Status::Assigned))
            .all(db)
            .await
            .unwrap();
        if assigned.is_empty() {
            break;
        }
        for c in assigned {
            routing::close_conversation(db, bus, &env.admin, Some(c.id)).await.expect("close");
            closed += 1;
        }
    }
    let elapsed = started.elapsed();
    let statements = state.statements.get() - statements_before;
    let waiting = conversation::Entity::find()
        .filter(conversation::Column::QueueId.eq(queue_id))
        .filter(conversation::Column::Status.eq(Status::Waiting))
        .count(db)
        .await
        .unwrap();
    format!(
        "{:.0} assignments/s ({closed} assigned and closed in {:.2} s, {:.1} statements per assign+close, {waiting} left waiting); creating 1,000 waiting: {:.0}/s",
        closed as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64(),
        statements as f64 / closed.max(1) as f64,
        create_rate,
    )
}

// ---------------------------------------------------------------------------------------
// Machine facts and the report
// ---------------------------------------------------------------------------------------

/// Raises this process's soft limit on open descriptors to its hard limit: each socket the
/// fan-outs and the crowd hold costs one in this process (the server's end).
fn raise_descriptor_limit() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: a valid resource and a pointer to a live rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) == 0 && limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &raw const limit);
        }
    }
}

fn fd_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            limits
                .lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(1024)
}

/// How busy and how fast the machine is, at the start and the end of a run.
struct MachineState {
    load_average: String,
    speed: SpeedProbe,
}

impl MachineState {
    fn now() -> Self {
        let load_average = std::fs::read_to_string("/proc/loadavg")
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|_| "unknown".into());
        Self { load_average, speed: SpeedProbe::run() }
    }
}

/// Fixed single-threaded workloads, each timed as the best of three. A virtual machine's
/// speed changes with its neighbours' load (2x within one session here), which neither the
/// load average nor the steal time shows; runs are comparable when these figures are. Two,
/// because a neighbour may take CPU time or the memory caches.
struct SpeedProbe {
    /// Arithmetic in registers.
    compute: Duration,
    /// Random reads and writes over 64 MiB, more than the caches hold, each address depending
    /// on the value read before (a chain of cache misses, not a batch of them).
    memory: Duration,
}

impl SpeedProbe {
    fn run() -> Self {
        let mut table = vec![1u64; 8 << 20];
        Self {
            compute: best_of_three(|| {
                let mut x = XORSHIFT_SEED;
                for _ in 0..20_000_000 {
                    x = std::hint::black_box(xorshift(x));
                }
                x
            }),
            memory: best_of_three(|| {
                let mut x = XORSHIFT_SEED;
                let mask = table.len() - 1;
                for _ in 0..500_000 {
                    let slot = &mut table[x as usize & mask];
                    *slot = slot.wrapping_add(x);
                    x = xorshift(x ^ *slot);
                }
                table[x as usize & mask]
            }),
        }
    }
}

const XORSHIFT_SEED: u64 = 0x9E37_79B9_7F4A_7C15;

/// The next step depends on the last, so a loop of them can be neither vectorised nor skipped.
fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^ (x << 17)
}

fn best_of_three(mut work: impl FnMut() -> u64) -> Duration {
    (0..3)
        .map(|_| {
            let started = Instant::now();
            std::hint::black_box(work());
            started.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn render(
    args: &Args,
    report: &Report,
    before: &MachineState,
    after: &MachineState,
    took: Duration,
) -> String {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let command = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    let mut out = String::new();
    let _ = writeln!(out, "# agentdesk benchmarks\n");
    let _ = writeln!(
        out,
        "Generated by the benchmark program (`bench/`); every figure below is as it measured.\n"
    );
    let _ = writeln!(out, "- Date: {}", chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"));
    let _ = writeln!(
        out,
        "- Cores: {cores}; load average (1/5/15 min) at start {}, at end {}",
        before.load_average, after.load_average
    );
    let _ = writeln!(
        out,
        "- Speed probe (fixed single-threaded work, lower is faster; see `SpeedProbe`): compute {} / memory {} at start, {} / {} at end",
        ms(before.speed.compute),
        ms(before.speed.memory),
        ms(after.speed.compute),
        ms(after.speed.memory)
    );
    let _ = writeln!(
        out,
        "- Command: `cargo run --release -p agentdesk-bench --bin bench{}{}`",
        if command.is_empty() { "" } else { " -- " },
        command
    );
    let _ = writeln!(
        out,
        "- Run time: {:.0} s{}",
        took.as_secs_f64(),
        if args.quick { " (--quick)" } else { "" }
    );
    let _ = writeln!(
        out,
        "- Server and HTTP load clients share this process, the WebSocket subscribers run in a second one; all share the cores, so latencies include client work.\n"
    );
    let backends: Vec<&String> = args.backends.iter().collect();
    let _ = write!(out, "| Measure | Target |");
    for b in &backends {
        let _ = write!(out, " {} |", if b.as_str() == "sqlite" { "SQLite" } else { "PostgreSQL" });
    }
    let _ = write!(out, "\n|---|---|");
    for _ in &backends {
        let _ = write!(out, "---|");
    }
    out.push('\n');
    for (metric, target) in &report.rows {
        let _ = write!(out, "| {metric} | {target} |");
        for b in &backends {
            let cell = report.cells.get(&(b.to_string(), metric.clone())).map(String::as_str).unwrap_or("-");
            let _ = write!(out, " {cell} |");
        }
        out.push('\n');
    }
    for note in &report.notes {
        let _ = writeln!(out, "\n{note}");
    }
    out
}
