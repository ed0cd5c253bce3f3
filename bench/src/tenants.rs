//! Events cost only their own tenant (issue 24), measured: a crowd of idle organizations
//! (crowd.rs) beside the measured one, whose presence fan-out (subscribers.rs) is measured
//! without and with the crowd; a sustained mix of events spread over many organizations;
//! a burst in one organization, after which every other must still hear its next events
//! and nothing else; and, on PostgreSQL, what LISTEN/NOTIFY carries from one instance to
//! another.
//!
//! Every event is caused through the public API. Each crowd organization has 2 ADMINs,
//! each on one socket watching presence and the directory, and 8 ONLINE AGENTs, each on
//! one socket watching its own conversations.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use agentdesk::{
    app::{self, RunningServer},
    db::entities::{agent, agent_socket},
    graphql::id::{self, NodeKind},
    presence::model::Presence,
    state::AppState,
    viewer::Role,
};
use agentdesk_testkit::seed::{self, Tenant};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, prelude::Expr};
use serde_json::{Value, json};
use tokio::{net::TcpListener, sync::Semaphore};

use crate::{
    Env, Report,
    crowd::{Crowd, Feed, Heard, PlannedSocket},
    graphql_request, ms, percentile,
    subscribers::{self, process_cpu, rss_kib, thread_cpu, unix_micros},
};

const ADMINS: usize = 2;
const AGENTS: usize = 8;
pub const SOCKETS_PER_ORGANIZATION: usize = ADMINS + AGENTS;
/// Presence subscribers of the measured organization.
pub const MEASURED_SUBSCRIBERS: usize = 1000;
/// Descriptors of this process besides the sockets: database pools, HTTP clients (the mix
/// keeps at most `IN_FLIGHT` requests open), files, pipes.
pub const DESCRIPTORS_BESIDES: usize = 600;
const IN_FLIGHT: usize = 128;

/// A close refused under overload is tried again, this many times at most, waiting longer
/// each time: an open conversation would keep its agent at capacity for the rates after.
const CLOSE_ATTEMPTS: u32 = 5;
const CLOSE_RETRY: Duration = Duration::from_millis(500);
/// The burst: this many rounds of disabling (and enabling again) this many ONLINE agents of
/// one organization in one call, each disabling a presence change per agent.
const BURST_ROUNDS: usize = 5;
const BURST_AGENTS: usize = 1000;
/// The crowd's subscriptions go live within this, or the section says so.
const LIVE_WITHIN: Duration = Duration::from_secs(120);
/// Deliveries still missing this long after the last request are counted as lost.
const DELIVERED_WITHIN: Duration = Duration::from_secs(10);

const RENAME: &str =
    "mutation($input: UpdateAgentInput!) { updateAgent(input: $input) { userErrors { code } } }";
const CREATE: &str = "mutation($input: CreateConversationInput!) {
    createConversation(input: $input) { conversation { id status } userErrors { code } } }";
const CLOSE: &str = "mutation($id: ID!) { closeConversation(id: $id) { userErrors { code } } }";
/// Why the router passed an agent over, as the API says it: asked when a conversation the mix
/// created was not assigned, so that the report says why.
const WHY_NOT_ASSIGNED: &str =
    "query($id: ID!) { agent(id: $id) { presence presenceReason assignmentEligibility { reasons } } }";
const SET_ENABLED: &str = "mutation($ids: [ID!]!, $on: Boolean!) {
    setAgentsEnabled(ids: $ids, enabled: $on) { affectedCount userErrors { code } } }";

pub struct Sizes {
    pub organizations: usize,
    pub mix_organizations: usize,
    pub rate: f64,
    pub seconds: Duration,
    pub changes: usize,
}

/// The crowd's organizations; seeded once for both sections.
pub async fn seed_crowd(env: &Env, organizations: usize) -> Vec<Tenant> {
    let seeding = Instant::now();
    let tenants = seed::organizations(&env.state().db, "tenant", organizations, ADMINS, AGENTS).await;
    println!("   {organizations} organizations seeded in {:.1?}", seeding.elapsed());
    tenants
}

/// Each member of `tenants` on a socket of its own, in `group`.
fn plan(tenants: &[Tenant], group: &'static str) -> Vec<PlannedSocket> {
    const ADMIN_FEEDS: &[Feed] = &[Feed::Presence, Feed::Directory];
    const AGENT_FEEDS: &[Feed] = &[Feed::MyConversations];
    let mut plan = Vec::new();
    for tenant in tenants {
        let admins = tenant.admins.iter().map(|a| (a, ADMIN_FEEDS));
        for (member, feeds) in admins.chain(tenant.agents.iter().map(|a| (a, AGENT_FEEDS))) {
            plan.push(PlannedSocket { group, token: member.token.clone(), feeds });
        }
    }
    plan
}

/// Waits until the server's subscriptions to each feed number as `expected` (from then on
/// none of them can miss an event), or says what they were at the deadline.
async fn until_listening(state: &AppState, expected: &[(&str, usize)]) -> Result<(), String> {
    agentdesk_testkit::poll_until(LIVE_WITHIN, || async {
        let listeners = state.bus.listeners();
        let count = |feed: &str| listeners.iter().find(|(f, _)| *f == feed).map_or(0, |(_, n)| *n);
        if expected.iter().all(|&(feed, n)| count(feed) == n) {
            Ok(())
        } else {
            Err(format!("subscriptions {listeners:?}, expected {expected:?}"))
        }
    })
    .await
}

/// Until no socket is recorded as held (each closing socket deletes its row).
async fn until_no_socket_held(state: &AppState) -> Result<(), String> {
    agentdesk_testkit::poll_until(LIVE_WITHIN, || async {
        match agent_socket::Entity::find().count(&state.db).await {
            Ok(0) => Ok(()),
            Ok(held) => Err(format!("{held} sockets still recorded")),
            Err(error) => Err(error.to_string()),
        }
    })
    .await
}

/// The crowd's expected subscriptions, `extra_admins` ADMIN sockets of other organizations
/// (watching presence and the directory) included. The two ADMINs of an organization share
/// one presence execution and one directory execution, each holding one subscription.
fn crowd_listeners(organizations: usize, extra_admins: usize) -> [(&'static str, usize); 4] {
    [
        ("presence", organizations + extra_admins),
        ("directory", organizations + extra_admins),
        ("conversations", AGENTS * organizations),
        ("sessions", SOCKETS_PER_ORGANIZATION * organizations + extra_admins),
    ]
}

const NO_LISTENERS: [(&str, usize); 4] =
    [("presence", 0), ("directory", 0), ("conversations", 0), ("sessions", 0)];

/// The multi-tenant rows.
pub async fn run(
    env: &Env,
    backend: &str,
    tenants: &[Tenant],
    sizes: &Sizes,
    limit: usize,
    report: &mut Report,
) {
    let state = env.state();
    let crowd_sockets = tenants.len() * SOCKETS_PER_ORGANIZATION;
    let burst = seed::organizations(&state.db, "burst", 1, 1, 0).await.remove(0);
    let burst_agents = seed::agents(&state.db, burst.organization_id, "b", BURST_AGENTS).await;
    let mut plan = plan(tenants, "crowd");
    let burst_feeds = &[Feed::Presence, Feed::Directory];
    plan.push(PlannedSocket { group: "burst", token: burst.admins[0].token.clone(), feeds: burst_feeds });
    // The crowd first, so that its memory is not taken from what earlier sockets left free.
    let rss_before = rss_kib();
    let ws_url = format!("ws://{}/graphql/ws", env.server.addr);
    let mut crowd = Crowd::connect(&ws_url, &plan).await;
    let live = until_listening(state, &crowd_listeners(tenants.len(), 1)).await;
    // The bursting organization's ADMIN is not of the crowd.
    let connected = crowd.connected.saturating_sub(1);
    let per_socket = (rss_kib().saturating_sub(rss_before)) as f64 / connected.max(1) as f64;
    let fit = if tenants.len() < sizes.organizations {
        format!(
            " (not the {} asked for: this process holds the server's end of every socket, and its descriptor limit is {limit})",
            sizes.organizations
        )
    } else {
        String::new()
    };
    report.set(
        backend,
        "7. tenants: the crowd",
        "20,000 idle sockets, 2,000 organizations",
        format!(
            "{connected}/{crowd_sockets} sockets of {} organizations{fit} connected and subscribed in {:.1} s{}",
            tenants.len(),
            crowd.connect_time.as_secs_f64(),
            live.err().map(|state| format!("; NOT ALL LIVE: {state}")).unwrap_or_default(),
        ),
    );
    report.set(
        backend,
        "7. tenants: server memory per idle socket",
        "< 16 KiB",
        format!("{per_socket:.1} KiB (resident growth of the server's process over {connected} sockets)"),
    );
    let crowded = crate::presence_fanout(env, MEASURED_SUBSCRIBERS, sizes.changes).await;

    let mixed = &tenants[..sizes.mix_organizations.min(tenants.len())];
    let outcome = mix(&mut crowd, env, mixed, sizes.rate, sizes.seconds, "m").await;
    report.set(
        backend,
        &format!(
            "7. tenants: mix of {:.0} events/s over {} organizations, crowd connected",
            sizes.rate,
            mixed.len()
        ),
        "all delivered, p99 < 50 ms, server CPU < 1 core",
        outcome.summary(),
    );

    report.set(
        backend,
        &format!("7. tenants: burst of {} presence changes in one organization", BURST_ROUNDS * BURST_AGENTS),
        "0 lag, SUBSCRIPTION_BEHIND or end elsewhere",
        burst_elsewhere(env, &mut crowd, tenants, &burst, &burst_agents).await,
    );
    let closing = Instant::now();
    crowd.close().await;

    // The crowd's subscriptions gone, and its sockets' closing written (on PostgreSQL that
    // outlasted the subscriptions by seconds, and slowed the fan-out measured alone), the
    // same fan-out again.
    let settled = match until_listening(state, &NO_LISTENERS).await {
        Ok(()) => until_no_socket_held(state).await,
        failed => failed,
    };
    report.set(
        backend,
        "7. tenants: the crowd's sockets all closed at once, until every close is written",
        "none lost",
        match &settled {
            Ok(()) => format!("{connected} closes written in {:.1} s", closing.elapsed().as_secs_f64()),
            Err(state) => format!("NOT ALL WRITTEN: {state}"),
        },
    );
    let alone = crate::presence_fanout(env, MEASURED_SUBSCRIBERS, sizes.changes).await;
    let gone = settled.err().map(|state| format!("; CROWD NOT GONE: {state}")).unwrap_or_default();
    let cpu = |f: &subscribers::Fanout| f.server_cpu.as_secs_f64() * 1000.0 / sizes.changes as f64;
    let p99 = |f: &subscribers::Fanout| percentile(&f.latencies, 0.99);
    report.set(
        backend,
        "7. tenants: server CPU per presence change of the measured organization (1,000 subscribers), without / with the crowd",
        "with ≤ 1.1x without",
        format!(
            "{:.1} ms / {:.1} ms ({:.2}x), over {} changes each",
            cpu(&alone),
            cpu(&crowded),
            cpu(&crowded) / cpu(&alone).max(f64::MIN_POSITIVE),
            sizes.changes
        ) + &gone,
    );
    report.set(
        backend,
        "7. tenants: presence fan-out p99 (1,000 subscribers), without / with the crowd",
        "with ≤ 1.2x without",
        format!(
            "{} / {} ({:.2}x); deliveries {} / {}",
            ms(p99(&alone)),
            ms(p99(&crowded)),
            p99(&crowded).as_secs_f64() / p99(&alone).as_secs_f64().max(f64::MIN_POSITIVE),
            alone.latencies.len(),
            crowded.latencies.len(),
        ),
    );
}

/// Disables and enables again, `BURST_ROUNDS` times, `BURST_AGENTS` ONLINE agents of `burst`
/// through its ADMIN; then one rename, one conversation and its closing in every crowd
/// organization, which every crowd subscription must hear exactly: a subscription that had
/// lagged would say so (or end) when it reads its next event.
async fn burst_elsewhere(
    env: &Env,
    crowd: &mut Crowd,
    tenants: &[Tenant],
    burst: &Tenant,
    burst_agents: &[agent::Model],
) -> String {
    // What came before is not the burst's.
    crowd.report().await;
    let ids: Vec<String> =
        burst_agents.iter().map(|a| id::encode(NodeKind::Agent, a.id).to_string()).collect();
    let token = &burst.admins[0].token;
    let started = Instant::now();
    for _ in 0..BURST_ROUNDS {
        // Set by SQL, without events: the burst is the disabling's.
        agent::Entity::update_many()
            .col_expr(agent::Column::Presence, Expr::value(Presence::Online))
            .col_expr(agent::Column::PresenceChangedAt, Expr::value(chrono::Utc::now()))
            .filter(agent::Column::OrganizationId.eq(burst.organization_id))
            .filter(agent::Column::Role.eq(Role::Agent))
            .exec(&env.state().db)
            .await
            .expect("the burst's agents ONLINE");
        for on in [false, true] {
            let data =
                crate::gql(&env.http, &env.url, Some(token), SET_ENABLED, json!({ "ids": ids, "on": on }))
                    .await;
            assert_eq!(data["setAgentsEnabled"]["affectedCount"], BURST_AGENTS, "{data}");
        }
    }
    let burst_took = started.elapsed();
    let probe = mix(crowd, env, tenants, 1000.0, Duration::ZERO, "after").await;
    let (crowd_counts, burst_counts) = (probe.heard.of("crowd"), probe.heard.of("burst"));
    format!(
        "{} rounds of setAgentsEnabled(false, then true) on {BURST_AGENTS} ONLINE agents in {:.1} s (a presence change per agent disabled, a directory change per agent each call); then in each of the {} other organizations one rename, one conversation and its closing: {}/{} of their events delivered, p99 {}; the other organizations' subscribers counted, from the burst on: {} SUBSCRIPTION_BEHIND, {} other errors, {} ended ({} events, {} not theirs); the bursting organization's own ADMIN: {} events, {} SUBSCRIPTION_BEHIND",
        BURST_ROUNDS,
        burst_took.as_secs_f64(),
        tenants.len(),
        probe.delivered,
        probe.expected,
        ms(percentile(&probe.latencies, 0.99)),
        crowd_counts.behind,
        crowd_counts.errors,
        crowd_counts.ended,
        crowd_counts.events,
        crowd_counts.events.saturating_sub(probe.delivered as u64),
        burst_counts.events,
        burst_counts.behind,
    )
}

/// One event caused by the mix, and how many crowd sockets should hear it.
struct Sent {
    key: String,
    at: u64,
    expected: usize,
}

pub struct MixOutcome {
    events: usize,
    /// Why requests failed, and how often.
    failures: Failures,
    driven: Duration,
    expected: usize,
    delivered: usize,
    /// Deliveries of no event of the mix, or more than expected of one.
    unexpected: usize,
    latencies: Vec<Duration>,
    /// The server's CPU (this process's, less the thread sending the requests) from the first
    /// request to the last delivery, and that time.
    cpu: Duration,
    wall: Duration,
    heard: Heard,
}

impl MixOutcome {
    fn summary(&self) -> String {
        format!(
            "{} events in {:.1} s ({:.0}/s, {} failed{}); {}/{} deliveries, {} unexpected; p50 {}, p99 {}, max {}; server CPU {:.2} cores ({} ms over {:.1} s: this process's, less the thread sending the requests)",
            self.events,
            self.driven.as_secs_f64(),
            self.events as f64 / self.driven.as_secs_f64().max(f64::MIN_POSITIVE),
            self.failures.values().sum::<usize>(),
            failure_reasons(&self.failures),
            self.delivered,
            self.expected,
            self.unexpected,
            ms(percentile(&self.latencies, 0.5)),
            ms(percentile(&self.latencies, 0.99)),
            ms(self.latencies.last().copied().unwrap_or_default()),
            self.cpu.as_secs_f64() / self.wall.as_secs_f64().max(f64::MIN_POSITIVE),
            self.cpu.as_millis(),
            self.wall.as_secs_f64(),
        )
    }
}

/// `rate` events a second through `env`'s server, for `duration` (or one round of every
/// organization of `tenants` when zero): in turn over the organizations, a rename of an
/// AGENT (heard by both ADMINs), a conversation (assigned to an AGENT, who hears it) and its
/// closing (heard by the AGENT). Each carries a name unique in the run, starting with
/// `label`, by which the crowd's deliveries are matched to it.
async fn mix(
    crowd: &mut Crowd,
    env: &Env,
    tenants: &[Tenant],
    rate: f64,
    duration: Duration,
    label: &str,
) -> MixOutcome {
    let mut heard = crowd.report().await;
    heard.deliveries.clear();
    let cpu_before = process_cpu();
    let started = Instant::now();
    let rounds = if duration.is_zero() {
        tenants.len()
    } else {
        (duration.as_secs_f64() * rate / 3.0).round() as usize
    };
    let rounds: Vec<Round> = (0..rounds)
        .map(|round| {
            let tenant = &tenants[round % tenants.len()];
            Round {
                admin: tenant.admins[0].token.clone(),
                agent: id::encode(NodeKind::Agent, tenant.agents[0].agent_id).to_string(),
                queue: id::encode(NodeKind::Queue, tenant.queue_id).to_string(),
                name: format!("{label}{round}"),
            }
        })
        .collect();
    let url = env.url.clone();
    let driving = tokio::task::spawn_blocking(move || drive(url, rounds, rate, started));
    let (sent, failures, driver_cpu) = driving.await.expect("the mix's driver");
    let driven = started.elapsed();
    let expected = sent.iter().map(|s| s.expected).sum();
    crowd.hear(&mut heard, expected, Instant::now() + DELIVERED_WITHIN).await;
    let wall = started.elapsed();
    let cpu = process_cpu().saturating_sub(cpu_before).saturating_sub(driver_cpu);
    let mut awaited: HashMap<&str, (u64, usize)> =
        sent.iter().map(|s| (s.key.as_str(), (s.at, s.expected))).collect();
    let (mut latencies, mut unexpected) = (Vec::new(), 0);
    for (key, read_at) in &heard.deliveries {
        match awaited.get_mut(key.as_str()) {
            Some((at, remaining)) if *remaining > 0 => {
                *remaining -= 1;
                latencies.push(Duration::from_micros(read_at.saturating_sub(*at)));
            }
            _ => unexpected += 1,
        }
    }
    latencies.sort_unstable();
    MixOutcome {
        events: sent.len(),
        failures,
        driven,
        expected,
        delivered: latencies.len(),
        unexpected,
        latencies,
        cpu,
        wall,
        heard,
    }
}

/// One round of the mix: an organization's ADMIN's token, the AGENT it renames, its queue,
/// and the round's unique name.
struct Round {
    admin: String,
    agent: String,
    queue: String,
    name: String,
}

/// Sends the mix's requests from a thread and runtime of their own, so that the CPU they
/// cost can be told from the server's: the events caused, the requests that failed, and
/// this thread's CPU time.
fn drive(url: String, rounds: Vec<Round>, rate: f64, started: Instant) -> (Vec<Sent>, Failures, Duration) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let cpu_before = thread_cpu();
    let (sent, failures) = runtime.block_on(async move {
        let step = Duration::from_secs_f64(1.0 / rate);
        let in_flight = Arc::new(Semaphore::new(IN_FLIGHT));
        let http = reqwest::Client::builder().pool_max_idle_per_host(IN_FLIGHT).build().expect("HTTP client");
        let tasks: Vec<_> = rounds
            .into_iter()
            .enumerate()
            .map(|(round, Round { admin, agent, queue, name })| {
                let (http, url, in_flight) = (http.clone(), url.clone(), in_flight.clone());
                let at = started + step * (3 * round) as u32;
                tokio::spawn(async move {
                    let post = async |query: &str, variables: Value| {
                        let _permit = in_flight.acquire().await.expect("never closed");
                        let sent = unix_micros();
                        (sent, post(&http, &url, &admin, query, variables).await)
                    };
                    let mut sent = Vec::new();
                    let mut failures = Failures::new();
                    tokio::time::sleep_until(at.into()).await;
                    let (at, renamed) =
                        post(RENAME, json!({ "input": { "id": agent, "displayName": name } })).await;
                    match payload(renamed, "updateAgent") {
                        Ok(_) => sent.push(Sent { key: name.clone(), at, expected: ADMINS }),
                        Err(reason) => failed(&mut failures, format!("rename: {reason}")),
                    }
                    tokio::time::sleep_until((started + step * (3 * round + 1) as u32).into()).await;
                    let input = json!({ "input": { "queueId": queue, "customerName": name } });
                    let (at, created) = post(CREATE, input).await;
                    let conversation = match payload(created, "createConversation") {
                        Ok(created) if created["conversation"].is_object() => created["conversation"].clone(),
                        Ok(created) => {
                            failed(&mut failures, format!("create: no conversation in {created}"));
                            return (sent, failures);
                        }
                        Err(reason) => {
                            failed(&mut failures, format!("create: {reason}"));
                            return (sent, failures);
                        }
                    };
                    let assigned = conversation["status"] == "ASSIGNED";
                    if assigned {
                        sent.push(Sent { key: format!("ASSIGNED:{name}"), at, expected: 1 });
                    } else {
                        // Queued behind a conversation a refused close left open: counted as a
                        // failure, and closed below all the same, so that one overloaded rate
                        // does not leave the next one's agents at capacity.
                        let (_, why) = post(WHY_NOT_ASSIGNED, json!({ "id": agent })).await;
                        let why = why.map_or_else(|error| error, |data| data["agent"].to_string());
                        failed(
                            &mut failures,
                            format!("create: {}, not ASSIGNED (its agent: {why})", conversation["status"]),
                        );
                    }
                    tokio::time::sleep_until((started + step * (3 * round + 2) as u32).into()).await;
                    // Past the ceiling the server refuses what waits too long for a connection
                    // (UNAVAILABLE, nothing written): the close is tried again until it is done.
                    for attempt in 0..CLOSE_ATTEMPTS {
                        let (at, closed) = post(CLOSE, json!({ "id": conversation["id"] })).await;
                        match payload(closed, "closeConversation") {
                            Ok(_) => {
                                if assigned {
                                    sent.push(Sent { key: format!("CLOSED:{name}"), at, expected: 1 });
                                }
                                break;
                            }
                            Err(reason) => failed(&mut failures, format!("close: {reason}")),
                        }
                        tokio::time::sleep(CLOSE_RETRY * (attempt + 1)).await;
                    }
                    (sent, failures)
                })
            })
            .collect();
        let (mut sent, mut failures) = (Vec::new(), Failures::new());
        for task in tasks {
            let (these, failed) = task.await.expect("a mix task");
            sent.extend(these);
            for (reason, count) in failed {
                *failures.entry(reason).or_default() += count;
            }
        }
        (sent, failures)
    });
    (sent, failures, thread_cpu().saturating_sub(cpu_before))
}

/// Why the mix's requests failed, and how often: a failure is counted rather than stopping
/// the mix, and the report says what it was.
type Failures = std::collections::BTreeMap<String, usize>;

fn failed(failures: &mut Failures, reason: String) {
    *failures.entry(reason).or_default() += 1;
}

/// The reasons, most frequent first, after the count they explain.
fn failure_reasons(failures: &Failures) -> String {
    let mut reasons: Vec<_> = failures.iter().collect();
    reasons.sort_by(|a, b| b.1.cmp(a.1));
    let listed: Vec<String> =
        reasons.iter().take(3).map(|(reason, count)| format!("{count} {reason}")).collect();
    if listed.is_empty() { String::new() } else { format!(": {}", listed.join(", ")) }
}

/// A mutation's payload when the request and the mutation both succeeded; otherwise what
/// failed: the request's error code, or the mutation's `userErrors`.
fn payload(answer: Result<Value, String>, mutation: &str) -> Result<Value, String> {
    let payload = answer?[mutation].take();
    if payload["userErrors"] == json!([]) { Ok(payload) } else { Err(payload["userErrors"].to_string()) }
}

/// One GraphQL request: its data, or what went wrong (a transport error, a body that is not
/// JSON, or the response's first error code).
async fn post(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    query: &str,
    variables: Value,
) -> Result<Value, String> {
    let response = graphql_request(http, url, Some(token), query, variables)
        .send()
        .await
        .map_err(|error| format!("transport: {error}"))?;
    let bytes = response.bytes().await.map_err(|error| format!("transport: {error}"))?;
    let body: Value = serde_json::from_slice(&bytes).map_err(|_| "a body that is not JSON".to_owned())?;
    match body.get("errors") {
        Some(errors) => Err(errors[0]["extensions"]["code"].as_str().unwrap_or("an error").to_owned()),
        None => Ok(body["data"].clone()),
    }
}

/// Two instances on one PostgreSQL: the mix through this one (A) at each of `rates`, heard
/// by the crowd of `tenants` on a second instance (B), so every event crosses LISTEN/NOTIFY.
pub async fn notify_capacity(
    env: &Env,
    database_url: &str,
    tenants: &[Tenant],
    rates: &[f64],
    seconds: Duration,
    report: &mut Report,
) {
    let (state, _) =
        app::prepare(agentdesk_bench::config(database_url.to_owned())).await.expect("B prepares");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let b: RunningServer = app::start(state, listener).await.expect("B starts");
    let planned = plan(tenants, "crowd");
    let mut crowd = Crowd::connect(&format!("ws://{}/graphql/ws", b.addr), &planned).await;
    // Told apart in the report: sockets that never got their connection_ack, and sockets
    // acknowledged whose subscriptions B did not register in time.
    let live = until_listening(&b.state, &crowd_listeners(tenants.len(), 0)).await.map_err(|state| {
        format!("{state}; {}/{} crowd sockets acknowledged", crowd.connected, planned.len())
    });
    for (n, &rate) in rates.iter().enumerate() {
        let outcome = mix(&mut crowd, env, tenants, rate, seconds, &format!("n{n}x")).await;
        report.set(
            "postgres",
            &format!(
                "8. LISTEN/NOTIFY, instance A to B: {rate:.0} events/s over {} organizations",
                tenants.len()
            ),
            "p99 against rate; the ceiling",
            format!(
                "{}{}",
                outcome.summary(),
                live.as_ref().err().map(|state| format!("; NOT ALL LIVE: {state}")).unwrap_or_default()
            ),
        );
    }
    crowd.close().await;
    let _ = b.stop().await;
}
