//! Floors for the agents page: servers that give the same answer as agentdesk to
//! `agentdesk_bench::PAGE_QUERY` and share no code with it: hand-written SQL, the fewest statements a careful
//! engineer would use, JSON by hand. They show what the driver and the hardware allow, so
//! the ratio to them exposes every cost of agentdesk's own, not only its GraphQL layer's.
//!
//! Four statements a request, as an endpoint of a real product needs: the session of the
//! bearer token (one indexed lookup joined to its agent), the organization's agent count,
//! the page, and the page's queues.
//!
//! - `SameDriver`: axum and sqlx, the driver agentdesk uses, on a pool of the same size, with
//!   sqlx's defaults; on SQLite also with the one driver setting agentdesk changes (the rows a
//!   connection's thread sends ahead, `rows_buffered`), to show what that setting is worth.
//! - `Hardware` (SQLite only): the same statements through rusqlite, synchronously on the
//!   runtime's worker threads, one connection per thread with its statements cached.

use std::{cell::RefCell, fmt::Write as _, net::SocketAddr, path::PathBuf, str::FromStr};

use axum::{Router, extract::State, http::HeaderMap, http::StatusCode, routing::post};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sea_orm::sqlx::{
    self, Row,
    postgres::PgPoolOptions,
    sqlite::{SqliteConnectOptions, SqlitePoolOptions},
};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

/// The page of `PAGE_QUERY`.
const PAGE_SIZE: i64 = 50;

const SESSION: &str = "SELECT a.organization_id FROM sessions s JOIN agents a ON a.id = s.agent_id \
    WHERE s.token_hash = $1 AND a.enabled AND a.deleted_at IS NULL";
const COUNT: &str = "SELECT count(*) FROM agents WHERE organization_id = $1 AND deleted_at IS NULL";
const PAGE: &str = "SELECT id, display_name, username, email, role, enabled, presence FROM agents \
    WHERE organization_id = $1 AND deleted_at IS NULL ORDER BY lower(display_name), id LIMIT $2";
/// The page's agents' live queues, in each agent's order (by name); `$1` is a JSON array of
/// ids, so the statement is one prepared text whatever the page's size.
const QUEUES_SQLITE: &str = "SELECT m.agent_id, q.id, q.name FROM queue_members m JOIN queues q ON q.id = m.queue_id \
    WHERE m.agent_id IN (SELECT value FROM json_each($1)) AND q.deleted_at IS NULL ORDER BY q.name_key, q.id";
const QUEUES_POSTGRES: &str = "SELECT m.agent_id, q.id, q.name FROM queue_members m JOIN queues q ON q.id = m.queue_id \
    WHERE m.agent_id = ANY(SELECT jsonb_array_elements_text($1::jsonb)::bigint) AND q.deleted_at IS NULL \
    ORDER BY q.name_key, q.id";

/// One row of the page, as read.
struct PageRow {
    id: i64,
    display_name: String,
    username: String,
    email: Option<String>,
    role: String,
    enabled: bool,
    presence: String,
}

/// The answer, written by hand in the order GraphQL writes the selection.
fn render(total: i64, rows: &[PageRow], queues: &[(i64, i64, String)]) -> String {
    let mut out = String::with_capacity(16 * 1024);
    write!(out, r#"{{"data":{{"agents":{{"totalCount":{total},"nodes":["#).unwrap();
    for (n, row) in rows.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        out.push_str(r#"{"id":""#);
        out.push_str(&global_id("Agent", row.id));
        out.push_str(r#"","displayName":"#);
        json_string(&mut out, &row.display_name);
        out.push_str(r#","username":"#);
        json_string(&mut out, &row.username);
        out.push_str(r#","email":"#);
        match &row.email {
            Some(email) => json_string(&mut out, email),
            None => out.push_str("null"),
        }
        write!(
            out,
            r#","role":"{}","enabled":{},"presence":"{}","queues":["#,
            row.role, row.enabled, row.presence
        )
        .unwrap();
        let mut first = true;
        for (_, queue_id, name) in queues.iter().filter(|(agent, ..)| *agent == row.id) {
            if !std::mem::take(&mut first) {
                out.push(',');
            }
            out.push_str(r#"{"id":""#);
            out.push_str(&global_id("Queue", *queue_id));
            out.push_str(r#"","name":"#);
            json_string(&mut out, name);
            out.push('}');
        }
        out.push_str("]}");
    }
    out.push_str("]}}}");
    out
}

/// agentdesk's public ID format: base64url (no padding) of `Kind:id`.
fn global_id(kind: &str, id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{kind}:{id}"))
}

fn json_string(out: &mut String, text: &str) {
    out.push_str(&serde_json::to_string(text).expect("a string serialises"));
}

fn token_hash(headers: &HeaderMap) -> Option<String> {
    let token = headers.get("authorization")?.to_str().ok()?.strip_prefix("Bearer ")?;
    Some(hex::encode(Sha256::digest(token.as_bytes())))
}

fn ids_json(rows: &[PageRow]) -> String {
    serde_json::to_string(&rows.iter().map(|row| row.id).collect::<Vec<_>>()).expect("ids serialise")
}

#[derive(Clone)]
enum Pool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Pool {
    /// The four statements; None when the token names no live session.
    async fn answer(&self, token_hash: &str) -> Result<Option<String>, sqlx::Error> {
        // One body for both drivers: the statements and the decoding are the same, only the
        // pool's type differs.
        macro_rules! answer_with {
            ($pool:expr, $queues:expr) => {{
                let Some(session) = sqlx::query(SESSION).bind(token_hash).fetch_optional($pool).await? else {
                    return Ok(None);
                };
                let organization_id: i64 = session.try_get(0)?;
                let total: i64 =
                    sqlx::query(COUNT).bind(organization_id).fetch_one($pool).await?.try_get(0)?;
                let rows = sqlx::query(PAGE).bind(organization_id).bind(PAGE_SIZE).fetch_all($pool).await?;
                let rows = rows
                    .iter()
                    .map(|row| {
                        Ok(PageRow {
                            id: row.try_get(0)?,
                            display_name: row.try_get(1)?,
                            username: row.try_get(2)?,
                            email: row.try_get(3)?,
                            role: row.try_get(4)?,
                            enabled: row.try_get(5)?,
                            presence: row.try_get(6)?,
                        })
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()?;
                let queues = sqlx::query($queues).bind(ids_json(&rows)).fetch_all($pool).await?;
                let queues = queues
                    .iter()
                    .map(|row| Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)))
                    .collect::<Result<Vec<_>, sqlx::Error>>()?;
                Ok(Some(render(total, &rows, &queues)))
            }};
        }
        match self {
            Pool::Sqlite(pool) => answer_with!(pool, QUEUES_SQLITE),
            Pool::Postgres(pool) => answer_with!(pool, QUEUES_POSTGRES),
        }
    }
}

async fn same_driver(State(pool): State<Pool>, headers: HeaderMap) -> (StatusCode, String) {
    let Some(hash) = token_hash(&headers) else { return (StatusCode::UNAUTHORIZED, String::new()) };
    match pool.answer(&hash).await {
        Ok(Some(body)) => (StatusCode::OK, body),
        Ok(None) => (StatusCode::UNAUTHORIZED, String::new()),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
    }
}

/// The same-driver floor on `database_url`, with `connections` pooled; its address.
pub async fn start_same_driver(
    database_url: &str,
    connections: u32,
    rows_buffered: Option<usize>,
) -> SocketAddr {
    let pool = if database_url.starts_with("sqlite:") {
        let mut options = SqliteConnectOptions::from_str(database_url).unwrap();
        if let Some(rows) = rows_buffered {
            options = options.row_buffer_size(rows);
        }
        Pool::Sqlite(
            SqlitePoolOptions::new().max_connections(connections).connect_with(options).await.unwrap(),
        )
    } else {
        Pool::Postgres(PgPoolOptions::new().max_connections(connections).connect(database_url).await.unwrap())
    };
    serve(Router::new().route("/graphql", post(same_driver)).with_state(pool)).await
}

thread_local! {
    /// The hardware floor's connection on this thread, opened on first use.
    static CONNECTION: RefCell<Option<rusqlite::Connection>> = const { RefCell::new(None) };
}

fn answer_synchronously(path: &PathBuf, token_hash: &str) -> rusqlite::Result<Option<String>> {
    CONNECTION.with_borrow_mut(|connection| {
        if connection.is_none() {
            let opened =
                rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
            opened.busy_timeout(std::time::Duration::from_secs(5))?;
            *connection = Some(opened);
        }
        let db = connection.as_ref().expect("opened above");
        let mut session = db.prepare_cached(SESSION)?;
        let Some(organization_id) = session
            .query_row([token_hash], |row| row.get::<_, i64>(0))
            .map(Some)
            .or_else(|error| match error {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                error => Err(error),
            })?
        else {
            return Ok(None);
        };
        let total: i64 = db.prepare_cached(COUNT)?.query_row([organization_id], |row| row.get(0))?;
        let rows = db
            .prepare_cached(PAGE)?
            .query_map([organization_id, PAGE_SIZE], |row| {
                Ok(PageRow {
                    id: row.get(0)?,
                    display_name: row.get(1)?,
                    username: row.get(2)?,
                    email: row.get(3)?,
                    role: row.get(4)?,
                    enabled: row.get(5)?,
                    presence: row.get(6)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let queues = db
            .prepare_cached(QUEUES_SQLITE)?
            .query_map([ids_json(&rows)], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(Some(render(total, &rows, &queues)))
    })
}

async fn hardware(State(path): State<PathBuf>, headers: HeaderMap) -> (StatusCode, String) {
    let Some(hash) = token_hash(&headers) else { return (StatusCode::UNAUTHORIZED, String::new()) };
    // On the worker thread itself, as a synchronous server would: no hop to a blocking pool.
    match answer_synchronously(&path, &hash) {
        Ok(Some(body)) => (StatusCode::OK, body),
        Ok(None) => (StatusCode::UNAUTHORIZED, String::new()),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
    }
}

/// The hardware floor on the SQLite file at `path`; its address.
pub async fn start_hardware(path: PathBuf) -> SocketAddr {
    serve(Router::new().route("/graphql", post(hardware)).with_state(path)).await
}

async fn serve(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("bound");
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}
