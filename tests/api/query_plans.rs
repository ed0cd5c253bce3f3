//! How each database plans the agents page: for every order and direction, with and without
//! the filters the page offers (search aside: it may scan), from the start, after a cursor and
//! from the end, the page must walk an index in its order and stop at `limit + 1` entries,
//! never read and sort the organization's agents. A queue filter may instead start from the
//! queue's members and sort those (what both planners pick for a queue much smaller than the
//! organization): bounded by the queue, not the organization. The statements are the ones the server
//! runs, built by the same function (`service::agents_page_statement`). So is the statement that
//! reads a page's queues (`service::queues_of_agents_statement`): through the page's memberships.
//! And the periodic sweeps' (`presence::service::sweep_statements`,
//! `routing::service::sweep_statement`): by index, never every row of every organization;
//! the closes of a crowd's sockets (`presence::service::close_statements`): by key, whatever
//! the statistics; and a page of conversations (`routing::service::conversations_page_statement`).

use agentdesk::{
    db::{
        entities::{agent, agent_socket, organization, presence_instance, queue},
        page::{Cursor, PageRequest},
    },
    directory::{
        model::{AgentFilter, AgentOrder, AgentPageReads, AgentSortField},
        service::{agents_page_statement, queues_of_agents_statement},
    },
};
use agentdesk::{
    presence::{
        model::{HeldSocket, Presence},
        service::{close_statements, sweep_statements},
    },
    routing::{
        self,
        model::{ConversationFilter, Status},
    },
    viewer::Role,
};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement, sea_query::Expr,
};
use serde_json::{Value, json};

use crate::common::{Backend, TestServer, number_of};

pub fn tests() -> Vec<crate::common::Test> {
    crate::tests![
        every_order_and_filter_of_the_agents_page_walks_an_index,
        a_pages_queues_are_found_through_its_agents_memberships,
        the_presence_sweep_reads_only_what_lapses,
        closing_a_crowds_sockets_reads_the_sockets_once_at_most,
        the_routing_sweep_reads_only_waiting_conversations,
        every_conversations_page_walks_an_index
    ]
}

/// Big enough that PostgreSQL's planner prefers an index to reading the table when it may.
const AGENTS: usize = 20_000;
const LIMIT: u64 = 50;

async fn every_order_and_filter_of_the_agents_page_walks_an_index(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let db = server.db();
    set_seats(&server, "demo", AGENTS as i32 + 10).await;
    server.seed_agents("demo", "seed", AGENTS).await;
    for other in ["other-a", "other-b"] {
        server.create_organization(other, AGENTS as u32 + 10, "admin", "admin-password").await;
        // The table holds every organization: a scan of it is what a queue filter must avoid.
        server.seed_agents(other, other, AGENTS).await;
    }
    // Some variety for the filters: a fifth ONLINE, a tenth disabled or ADMIN, a queue of 200.
    for statement in [
        "UPDATE agents SET presence = 'ONLINE' WHERE id % 5 = 0 AND username LIKE 'seed-%'",
        "UPDATE agents SET enabled = false WHERE id % 10 = 1 AND username LIKE 'seed-%'",
        "UPDATE agents SET role = 'ADMIN' WHERE id % 10 = 2 AND username LIKE 'seed-%'",
    ] {
        db.execute_unprepared(statement).await.unwrap();
    }
    let queue = number_of(&server.create_queue(&admin, "Support").await);
    db.execute_unprepared(&format!(
        "INSERT INTO queue_members (queue_id, agent_id, created_at) \
         SELECT {queue}, id, created_at FROM agents WHERE id % 100 = 3"
    ))
    .await
    .unwrap();
    // And every agent of every organization in one of 40 more queues, so that the planner
    // weighs finding each agent's queues by its memberships against walking the queues.
    for statement in [
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 39) \
             INSERT INTO queues (organization_id, name, name_key, created_at, updated_at) \
             SELECT o.id, 'Q' || n.i, 'q' || n.i, s.created_at, s.updated_at \
             FROM organizations o CROSS JOIN n CROSS JOIN queues s WHERE s.id = {queue}"
        ),
        "INSERT INTO queue_members (queue_id, agent_id, created_at) \
         SELECT q.id, a.id, a.created_at FROM agents a \
         JOIN queues q ON q.organization_id = a.organization_id AND q.name_key = 'q' || (a.id % 40)"
            .to_owned(),
    ] {
        db.execute_unprepared(&statement).await.unwrap();
    }
    analyze(&server, backend).await;

    let organization_id = agent::Entity::find()
        .filter(agent::Column::Username.eq("seed-0000"))
        .one(db)
        .await
        .unwrap()
        .expect("seeded")
        .organization_id;
    // The middle of the organization in every order: its 10,000th agent. (A cursor at "now"
    // fell wherever the seeding had got to, and the planner's choice with it.)
    let middle = agent::Entity::find()
        .filter(agent::Column::Username.eq("seed-10000"))
        .one(db)
        .await
        .unwrap()
        .expect("seeded");
    let filters = [
        ("no filter", AgentFilter::default()),
        ("enabled", AgentFilter { enabled: Some(true), ..Default::default() }),
        ("presence", AgentFilter { presence: Some(Presence::Online), ..Default::default() }),
        ("role", AgentFilter { role: Some(Role::Agent), ..Default::default() }),
        ("queue", AgentFilter { queue_id: Some(queue), ..Default::default() }),
    ];
    let mut failures = Vec::new();
    for field in [AgentSortField::DisplayName, AgentSortField::Username, AgentSortField::CreatedAt] {
        for descending in [false, true] {
            for (filter_name, filter) in &filters {
                for (page_name, page) in pages(field, &middle) {
                    let order = AgentOrder { field, descending };
                    // With the listing's total when it is the organization's count, read by
                    // primary key; a filter's count counts its matches, which may scan.
                    let reads = AgentPageReads { details: false, total: !filter.narrows(), queues: true };
                    let statement = agents_page_statement(
                        backend_of(backend),
                        organization_id,
                        filter,
                        order,
                        &page,
                        reads,
                    );
                    let case = format!(
                        "{field:?} {} {filter_name} {page_name}",
                        if descending { "DESC" } else { "ASC" }
                    );
                    let by_queue = filter.queue_id.is_some();
                    let from_cursor = page.after.is_some() || page.before.is_some();
                    let problems = match backend {
                        Backend::Sqlite => sqlite_problems(&server, &statement, by_queue, from_cursor).await,
                        Backend::Postgres => postgres_problems(&server, &statement, by_queue).await,
                    };
                    if !problems.is_empty() {
                        failures.push(format!("{case}: {problems}\n    {}", statement.sql));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "plans that read more than the page:\n{}", failures.join("\n"));
}

/// The queues of agents batched by the DataLoader (agents outside a page: a page reads its
/// own in its statement) are read through the index on the memberships' `agent_id`, for those
/// agents only: never a scan of the memberships, nor every queue probed for each agent (what
/// SQLite 3.51 planned for a plain join of the two).
async fn a_pages_queues_are_found_through_its_agents_memberships(backend: Backend) {
    const QUEUES: usize = 20;
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let db = server.db();
    set_seats(&server, "demo", AGENTS as i32 + 10).await;
    let agents = server.seed_agents("demo", "seed", AGENTS).await;
    for n in 0..QUEUES {
        server.create_queue(&admin, &format!("Queue {n:02}")).await;
    }
    // Each agent in two of the queues: 2 x 20,000 memberships.
    db.execute_unprepared(&format!(
        "INSERT INTO queue_members (queue_id, agent_id, created_at) \
         SELECT q.id, a.id, a.created_at FROM agents a JOIN queues q \
         ON (a.id % {QUEUES}) = (q.id % {QUEUES}) OR ((a.id + 1) % {QUEUES}) = (q.id % {QUEUES}) \
         WHERE a.username LIKE 'seed-%'"
    ))
    .await
    .unwrap();
    analyze(&server, backend).await;
    let page: Vec<i64> = agents[..LIMIT as usize].iter().map(|id| number_of(id)).collect();
    let organization_id =
        agent::Entity::find_by_id(page[0]).one(db).await.unwrap().expect("seeded").organization_id;
    let statement = queues_of_agents_statement(backend_of(backend), organization_id, &page);
    let problems = match backend {
        Backend::Sqlite => {
            let lines = sqlite_plan(&server, &statement).await;
            // Every step that reads memberships reads them by agent: by the primary key
            // (`queue_id`, `agent_id`) they would be probed once per queue and agent.
            let reading_members: Vec<&String> =
                lines.iter().filter(|line| line.contains(" queue_members ")).collect();
            let by_agent = !reading_members.is_empty()
                && reading_members.iter().all(|line| line.contains("INDEX queue_members_agent (agent_id=?)"));
            if by_agent { String::new() } else { lines.join(" | ") }
        }
        Backend::Postgres => {
            let plan = postgres_plan(&server, &statement).await;
            let nodes = nodes_of(&plan);
            let scans = nodes
                .iter()
                .any(|node| node["Relation Name"] == "queue_members" && node["Node Type"] == "Seq Scan");
            let by_agent = nodes.iter().any(|node| node["Index Name"] == "queue_members_agent");
            if by_agent && !scans { String::new() } else { plan["Plan"].to_string() }
        }
    };
    assert!(problems.is_empty(), "the page's queues read otherwise: {problems}\n    {}", statement.sql);
}

/// Every instance sweeps every second: the lapse reads the agents whose TTL or grace passed
/// through the deadlines' indexes, and the search for sockets of gone instances steps
/// through the instances holding sockets, so neither reads every agent or every socket of
/// every organization (as they did, every second on every instance).
async fn the_presence_sweep_reads_only_what_lapses(backend: Backend) {
    let server = TestServer::start(backend).await;
    let db = server.db();
    set_seats(&server, "demo", AGENTS as i32 + 10).await;
    server.seed_agents("demo", "seed", AGENTS).await;
    let now = chrono::Utc::now();
    // A quarter ONLINE, each with a socket of an instance that stays alive through the test,
    // but for a few whose grace passed with no socket and a few whose TTL passed: what one
    // sweep lapses (a second after the last, a handful).
    let hour = chrono::Duration::hours(1);
    presence_instance::Entity::insert(presence_instance::ActiveModel {
        id: Set("busy-instance".to_owned()),
        heartbeat_at: Set(now + hour * 24),
    })
    .exec(db)
    .await
    .unwrap();
    let online =
        || Condition::all().add(agent::Column::Username.like("seed-%")).add(Expr::cust("id % 4 = 0"));
    agent::Entity::update_many()
        .col_expr(agent::Column::Presence, Expr::value(Presence::Online))
        .col_expr(agent::Column::PresenceExpiresAt, Expr::value(now + hour))
        .filter(online())
        .exec(db)
        .await
        .unwrap();
    db.execute_unprepared(
        "INSERT INTO agent_sockets (instance_id, agent_id, opened_at) \
         SELECT 'busy-instance', id, created_at FROM agents WHERE presence = 'ONLINE' AND id % 1000 <> 4",
    )
    .await
    .unwrap();
    for (column, lapsing) in [(agent::Column::PresenceExpiresAt, 0), (agent::Column::PresenceGraceUntil, 4)] {
        agent::Entity::update_many()
            .col_expr(column, Expr::value(now - hour))
            .filter(online())
            .filter(Expr::cust(format!("id % 1000 = {lapsing}")))
            .exec(db)
            .await
            .unwrap();
    }
    analyze(&server, backend).await;

    let mut failures = Vec::new();
    for statement in sweep_statements(backend_of(backend), now) {
        let scans = match backend {
            Backend::Sqlite => {
                let lines = sqlite_plan(&server, &statement).await;
                let scans = lines
                    .iter()
                    .any(|line| line.starts_with("SCAN agents") || line.starts_with("SCAN agent_sockets"));
                scans.then(|| lines.join(" | "))
            }
            Backend::Postgres => {
                let plan = postgres_plan(&server, &statement).await;
                let nodes = nodes_of(&plan);
                let scans = nodes.iter().any(|node| {
                    node["Node Type"] == "Seq Scan"
                        && ["agents", "agent_sockets"]
                            .contains(&node["Relation Name"].as_str().unwrap_or_default())
                });
                scans.then(|| plan["Plan"].to_string())
            }
        };
        if let Some(plan) = scans {
            failures.push(format!("{plan}\n    {}", statement.sql));
        }
    }
    assert!(failures.is_empty(), "sweep statements that read every row:\n{}", failures.join("\n"));
}

/// A crowd's sockets closing at once (a balancer restarting) are written a thousand at a
/// time, and each statement reads the socket rows once at most, even when planned on
/// statistics from before the crowd came (agents OFFLINE, an earlier crowd's sockets gone).
/// On those, a correlated `NOT EXISTS` made PostgreSQL scan every socket row for each closed
/// agent: 19 million rows and 2.2 s a statement here, as in the benchmark's full run. (It
/// now reads the sockets table in one pass, as it takes it for nearly empty; SQLite goes by
/// key.)
async fn closing_a_crowds_sockets_reads_the_sockets_once_at_most(backend: Backend) {
    const CLOSED: u64 = 1_000;
    let server = TestServer::start(backend).await;
    let db = server.db();
    set_seats(&server, "demo", AGENTS as i32 + 10).await;
    server.seed_agents("demo", "seed", AGENTS).await;
    let now = chrono::Utc::now();
    presence_instance::Entity::insert(presence_instance::ActiveModel {
        id: Set("crowd-instance".to_owned()),
        heartbeat_at: Set(now),
    })
    .exec(db)
    .await
    .unwrap();
    let open_a_socket_each = "INSERT INTO agent_sockets (instance_id, agent_id, opened_at) \
         SELECT 'crowd-instance', id, created_at FROM agents WHERE username LIKE 'seed-%'";
    // The statistics of the night before: every agent OFFLINE, and an earlier crowd's sockets
    // closed but for one, which VACUUM recorded as pages holding a single row.
    analyze(&server, backend).await;
    db.execute_unprepared(open_a_socket_each).await.unwrap();
    db.execute_unprepared("DELETE FROM agent_sockets WHERE id < (SELECT max(id) FROM agent_sockets)")
        .await
        .unwrap();
    if backend == Backend::Postgres {
        db.execute_unprepared("VACUUM agent_sockets").await.unwrap();
    }
    // Since the statistics: every agent ONLINE, each with a socket.
    agent::Entity::update_many()
        .col_expr(agent::Column::Presence, Expr::value(Presence::Online))
        .filter(agent::Column::Username.like("seed-%"))
        .exec(db)
        .await
        .unwrap();
    db.execute_unprepared(open_a_socket_each).await.unwrap();

    let closing: Vec<HeldSocket> = agent_socket::Entity::find()
        .order_by_asc(agent_socket::Column::Id)
        .limit(CLOSED)
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|row| HeldSocket { id: row.id, agent_id: row.agent_id, opened_at: row.opened_at })
        .collect();
    let [delete, start_grace] = close_statements(backend_of(backend), &closing, now);
    let mut failures = Vec::new();
    for statement in [delete, start_grace] {
        match backend {
            Backend::Sqlite => {
                let lines = sqlite_plan(&server, &statement).await;
                if lines.iter().any(|line| line.starts_with("SCAN ")) {
                    failures.push(format!("{}\n    {}", lines.join(" | "), statement.sql));
                }
            }
            Backend::Postgres => {
                // Run, as the writer runs them: the deletes first.
                let plan = postgres_plan(&server, &statement).await;
                let most_read = nodes_of(&plan).iter().map(|node| read(node)).max().unwrap_or(0);
                if most_read > AGENTS as u64 + CLOSED {
                    failures.push(format!("a node read {most_read} rows: {}", plan["Plan"]));
                }
            }
        }
        db.execute_raw(statement).await.unwrap();
    }
    assert!(
        failures.is_empty(),
        "closing {CLOSED} sockets read the sockets more than once:\n{}",
        failures.join("\n")
    );
}

/// Every instance looks for queues to drain every few seconds: through the index led by the
/// status, never by reading every conversation ever held (as it did: a scan on SQLite, the
/// whole of the queue-and-status index on PostgreSQL).
async fn the_routing_sweep_reads_only_waiting_conversations(backend: Backend) {
    const CONVERSATIONS: usize = 20_000;
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let queue = number_of(&server.create_queue(&admin, "Support").await);
    // Mostly the closed history of every organization; a few waiting.
    server
        .db()
        .execute_unprepared(&format!(
            "WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {CONVERSATIONS}) \
             INSERT INTO conversations (organization_id, queue_id, status, created_at) \
             SELECT q.organization_id, q.id, CASE WHEN n.i % 1000 = 0 THEN 'WAITING' ELSE 'CLOSED' END, q.created_at \
             FROM n CROSS JOIN queues q WHERE q.id = {queue}"
        ))
        .await
        .unwrap();
    analyze(&server, backend).await;
    let statement = routing::service::sweep_statement(backend_of(backend));
    // By that index only: an index with the status second (the queue's) is read whole.
    const BY_STATUS: &str = "conversations_status_queue";
    let elsewise = match backend {
        Backend::Sqlite => {
            let lines = sqlite_plan(&server, &statement).await;
            let mut reads = lines.iter().filter(|line| line.contains(" conversations "));
            reads.any(|line| !line.contains(BY_STATUS)).then(|| lines.join(" | "))
        }
        Backend::Postgres => {
            let plan = postgres_plan(&server, &statement).await;
            let nodes = nodes_of(&plan);
            let elsewise = nodes
                .iter()
                .any(|node| node["Relation Name"] == "conversations" && node["Index Name"] != BY_STATUS);
            elsewise.then(|| plan["Plan"].to_string())
        }
    };
    assert!(
        elsewise.is_none(),
        "the routing sweep reads conversations other than by {BY_STATUS}: {elsewise:?}\n    {}",
        statement.sql
    );
}

/// A page of conversations, newest first, walks an index in id order from its cursor and
/// stops after `limit + 1` entries, whether it lists the organization's, a status of them, or
/// one agent's (all an AGENT may list): never reads and sorts the organization's history, or
/// the agent's (as it did). A queue filter may still read the queue's and sort them.
async fn every_conversations_page_walks_an_index(backend: Backend) {
    const CONVERSATIONS: usize = 440_000;
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    server.create_organization("other", 10, "admin", "admin-password").await;
    let agents: Vec<i64> =
        server.seed_agents("demo", "seed", 2).await.iter().map(|id| number_of(id)).collect();
    let queue = number_of(&server.create_queue(&admin, "Support").await);
    let db = server.db();
    // Both organizations' histories, interleaved as time goes, mostly closed, a few waiting:
    // the demo organization's is one conversation in 100 (one tenant among many), nearly all
    // held by one of its two agents; `m` counts its own. The other organization's have no agent: nothing
    // reads them but a scan.
    for statement in [
        "INSERT INTO queues (organization_id, name, name_key, created_at, updated_at) \
         SELECT o.id, 'Support', 'support', o.created_at, o.created_at FROM organizations o \
         WHERE o.slug = 'other'"
            .to_owned(),
        format!(
            "WITH RECURSIVE n (i, m) AS (SELECT 1, 0 UNION ALL SELECT i + 1, (i + 1) / 100 FROM n WHERE i < {CONVERSATIONS}) \
             INSERT INTO conversations (organization_id, queue_id, status, assigned_agent_id, created_at) \
             SELECT q.organization_id, q.id, \
               CASE WHEN n.m % 100 = 0 THEN 'WAITING' WHEN n.m % 10 = 0 THEN 'ASSIGNED' ELSE 'CLOSED' END, \
               CASE WHEN n.m % 100 = 0 OR q.id <> {queue} THEN NULL WHEN n.m % 20 = 0 THEN {} ELSE {} END, \
               q.created_at \
             FROM n CROSS JOIN queues q WHERE (n.i % 100 = 0) = (q.id = {queue}) ORDER BY n.i",
            agents[1], agents[0]
        ),
    ] {
        db.execute_unprepared(&statement).await.unwrap();
    }
    analyze(&server, backend).await;
    let organization_id =
        queue::Entity::find_by_id(queue).one(db).await.unwrap().expect("the queue").organization_id;
    let middle: i64 = db
        .query_one_raw(Statement::from_string(
            backend_of(backend),
            format!("SELECT CAST(AVG(id) AS BIGINT) AS middle FROM conversations WHERE organization_id = {organization_id}"),
        ))
        .await
        .unwrap()
        .expect("a row")
        .try_get("", "middle")
        .unwrap();
    let filters = [
        ("no filter", ConversationFilter::default()),
        ("closed", ConversationFilter { status: Some(Status::Closed), ..Default::default() }),
        ("waiting", ConversationFilter { status: Some(Status::Waiting), ..Default::default() }),
        ("an agent's", ConversationFilter { agent_id: Some(agents[0]), ..Default::default() }),
    ];
    let pages = [
        ("first page", PageRequest { after: None, before: None, limit: LIMIT, from_end: false }),
        (
            "after a cursor",
            PageRequest {
                after: Some(Cursor { key: String::new(), id: middle }),
                before: None,
                limit: LIMIT,
                from_end: false,
            },
        ),
    ];
    let mut failures = Vec::new();
    for (filter_name, filter) in filters {
        for (page_name, page) in &pages {
            let statement = routing::service::conversations_page_statement(
                backend_of(backend),
                organization_id,
                filter,
                page,
            );
            let problems = match backend {
                Backend::Sqlite => {
                    let lines = sqlite_plan(&server, &statement).await;
                    let fine =
                        lines.iter().all(|line| !line.contains("TEMP B-TREE") && !line.starts_with("SCAN"));
                    if fine { String::new() } else { lines.join(" | ") }
                }
                Backend::Postgres => {
                    let plan = postgres_plan(&server, &statement).await;
                    let nodes = nodes_of(&plan);
                    // No scan of the table, no sort of more than a page (a status as rare as
                    // WAITING may be read whole, and sorted), and at most `limit + 1` rows read
                    // by an index, or, where a filter skips some, no more skipped than kept
                    // (walking everyone's conversations in id order and skipping the other
                    // organizations' skipped 99 for each kept).
                    let fine = nodes.iter().all(|node| {
                        let kind = node["Node Type"].as_str().unwrap_or_default();
                        let sorted_whole = kind.contains("Sort")
                            && node["Plans"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .any(|input| kept(input) + skipped(input) > LIMIT + 1);
                        let reads_more = node["Relation Name"] == "conversations"
                            && (kind == "Seq Scan" || kept(node) > LIMIT + 1 || skipped(node) > kept(node));
                        !sorted_whole && !reads_more
                    });
                    if fine { String::new() } else { plan["Plan"].to_string() }
                }
            };
            if !problems.is_empty() {
                failures.push(format!("{filter_name} {page_name}: {problems}\n    {}", statement.sql));
            }
        }
    }
    assert!(failures.is_empty(), "conversation pages that read more than the page:\n{}", failures.join("\n"));
}

/// Fresh statistics, as autovacuum would gather them within a minute of the seeding.
async fn analyze(server: &TestServer, backend: Backend) {
    let statement = match backend {
        // Statistics from every row rather than ANALYZE's random sample (30,000 rows at the
        // default target, fewer than are seeded), so the planner sees the same numbers, and
        // makes the same plans, on every run. One statement: SET holds for its connection.
        Backend::Postgres => "SET default_statistics_target = 1000; ANALYZE",
        Backend::Sqlite => "ANALYZE",
    };
    server.db().execute_unprepared(statement).await.unwrap();
}

fn backend_of(backend: Backend) -> DbBackend {
    match backend {
        Backend::Sqlite => DbBackend::Sqlite,
        Backend::Postgres => DbBackend::Postgres,
    }
}

/// The first page, one after the cursor of `middle`, and the last page before it.
fn pages(field: AgentSortField, middle: &agent::Model) -> [(&'static str, PageRequest); 3] {
    let middle = Cursor {
        key: match field {
            AgentSortField::DisplayName => middle.display_name.to_lowercase(),
            AgentSortField::Username => middle.username.clone(),
            AgentSortField::CreatedAt => middle.created_at.to_rfc3339(),
        },
        id: middle.id,
    };
    let page = |after: Option<Cursor>, before: Option<Cursor>, from_end| PageRequest {
        after,
        before,
        limit: LIMIT,
        from_end,
    };
    [
        ("first page", page(None, None, false)),
        ("after a cursor", page(Some(middle.clone()), None, false)),
        ("last page before a cursor", page(None, Some(middle), true)),
    ]
}

async fn set_seats(server: &TestServer, slug: &str, seats: i32) {
    organization::Entity::update_many()
        .col_expr(organization::Column::SeatLimit, sea_orm::prelude::Expr::value(seats))
        .filter(organization::Column::Slug.eq(slug))
        .exec(server.db())
        .await
        .unwrap();
}

/// SQLite says how it finds rows, one line each: a `SCAN` of agents reads them all, a
/// `TEMP B-TREE` sorts what it read (only a queue's members, looked up by id, may be sorted),
/// and each agent's queues are found from its memberships, never by walking the organization's.
/// From a cursor the index search must be bounded by the key too (`organization_id=? AND
/// <key>>?`), or it walks every entry before the cursor.
async fn sqlite_problems(
    server: &TestServer,
    statement: &Statement,
    by_queue: bool,
    from_cursor: bool,
) -> String {
    let lines = sqlite_plan(server, statement).await;
    let walks_order = lines.iter().any(|line| {
        line.starts_with("SEARCH agents USING INDEX agents_live_") && (!from_cursor || line.contains(" AND "))
    });
    let from_members = by_queue
        && lines.iter().any(|line| line.starts_with("SEARCH agents USING INTEGER PRIMARY KEY"))
        && lines.iter().any(|line| line.starts_with("SEARCH queue_members"));
    let sorts = lines.iter().any(|line| line.contains("TEMP B-TREE"));
    let queues_by_member =
        lines.iter().any(|line| {
            line.starts_with("SEARCH queue_members USING") && line.contains("INDEX queue_members_agent")
        }) && lines.iter().any(|line| line.starts_with("SEARCH queues USING INTEGER PRIMARY KEY"));
    let scans = lines.iter().any(|line| line.starts_with("SCAN agents"));
    let fine = !scans && queues_by_member && (walks_order && !sorts || from_members);
    if fine { String::new() } else { lines.join(" | ") }
}

/// PostgreSQL's plan, run (`ANALYZE`) so that it also says how many rows each node read:
/// no sequential or bitmap scan of agents (which read every matching row before the limit),
/// no `Sort`, and, where no filter skips entries, at most `limit + 1` index entries read. A
/// queue filter instead looks the queue's members up by key and sorts those (`by_queue`).
async fn postgres_problems(server: &TestServer, statement: &Statement, by_queue: bool) -> String {
    let plan = postgres_plan(server, statement).await;
    let nodes = nodes_of(&plan);
    let mut problems = Vec::new();
    for node in &nodes {
        let kind = node["Node Type"].as_str().unwrap_or_default();
        let relation = node["Relation Name"].as_str().unwrap_or_default();
        if kind.contains("Sort") && !by_queue {
            problems.push(format!("{kind} of {} rows", node["Actual Rows"]));
        }
        if relation == "agents" && !kind.starts_with("Index") {
            problems.push(format!("{kind} on agents"));
        }
        if relation == "agents" && kind.starts_with("Index") {
            let index = node["Index Name"].as_str().unwrap_or_default();
            let read = kept(node) + skipped(node);
            let by_member = by_queue && index == "agents_pkey";
            if !index.starts_with("agents_live_") && !by_member {
                problems.push(format!("index {index}"));
            }
            if node["Filter"].is_null() && read > LIMIT + 1 {
                problems.push(format!("{read} entries of {index} read"));
            }
        }
    }
    if problems.is_empty() {
        String::new()
    } else {
        format!("{} in {}", problems.join(", "), json!(plan["Plan"]))
    }
}

/// SQLite's plan of `statement`, a line a step.
async fn sqlite_plan(server: &TestServer, statement: &Statement) -> Vec<String> {
    let explain = Statement::from_sql_and_values(
        DbBackend::Sqlite,
        format!("EXPLAIN QUERY PLAN {}", statement.sql),
        statement.values.clone().map(|values| values.0).unwrap_or_default(),
    );
    let rows = server.db().query_all_raw(explain).await.unwrap();
    rows.iter().map(|row| row.try_get::<String>("", "detail").unwrap()).collect()
}

/// PostgreSQL's plan of `statement`, run (`ANALYZE`), so that each node says how many rows
/// it read.
async fn postgres_plan(server: &TestServer, statement: &Statement) -> Value {
    let explain = Statement::from_sql_and_values(
        DbBackend::Postgres,
        format!("EXPLAIN (ANALYZE, FORMAT JSON) {}", statement.sql),
        statement.values.clone().map(|values| values.0).unwrap_or_default(),
    );
    let row = server.db().query_one_raw(explain).await.unwrap().expect("a plan");
    let plan: Value = row.try_get("", "QUERY PLAN").unwrap();
    plan[0].clone()
}

/// The rows a node of a PostgreSQL plan (run) passed on.
fn kept(node: &Value) -> u64 {
    node["Actual Rows"].as_u64().unwrap_or(0)
}

/// The rows a node of a PostgreSQL plan (run) read and dropped by its filter.
fn skipped(node: &Value) -> u64 {
    node["Rows Removed by Filter"].as_u64().unwrap_or(0)
}

/// The rows a node of a PostgreSQL plan (run) read: passed on in every loop, or dropped by
/// its filter or join filter.
fn read(node: &Value) -> u64 {
    let loops = node["Actual Loops"].as_u64().unwrap_or(1);
    kept(node) * loops + skipped(node) + node["Rows Removed by Join Filter"].as_u64().unwrap_or(0)
}

/// Every node of a PostgreSQL plan, the top one first.
fn nodes_of(plan: &Value) -> Vec<&Value> {
    fn flatten<'a>(node: &'a Value, into: &mut Vec<&'a Value>) {
        into.push(node);
        for child in node["Plans"].as_array().into_iter().flatten() {
            flatten(child, into);
        }
    }
    let mut nodes = Vec::new();
    flatten(&plan["Plan"], &mut nodes);
    nodes
}
