//! LISTEN/NOTIFY transport. Publishing is a `pg_notify` on the writing connection;
//! receiving is one `PgListener` per instance on a connection of its own (a pooled one would
//! go back to the pool and take the LISTEN with it).

use std::{sync::Arc, time::Duration};

use sea_orm::{
    ConnectionTrait, DbBackend, DbErr, Statement,
    sqlx::{Error as SqlxError, postgres::PgListener},
};
use tokio::task::JoinHandle;

use super::{
    event::{Event, payload},
    hub::Hub,
};

const CHANNEL: &str = "agentdesk_events";

/// Waits between attempts while the database is unreachable.
const RETRY: Duration = Duration::from_secs(1);

/// Events sent in one statement at most: a bulk operation's NOTIFYs cost one round trip,
/// whatever its size (well inside PostgreSQL's 65535 parameters).
const EVENTS_PER_STATEMENT: usize = 500;

/// Sends the events, in order, in as few statements as possible.
pub(super) async fn notify<E: Event>(db: &impl ConnectionTrait, events: &[E]) -> Result<(), DbErr> {
    for batch in events.chunks(EVENTS_PER_STATEMENT) {
        let mut values = vec![CHANNEL.into()];
        for event in batch {
            let payload = payload(event).map_err(|e| DbErr::Custom(format!("event payload: {e}")))?;
            values.push(payload.into());
        }
        // pg_notify calls in one select list run left to right, so order is kept.
        let calls: Vec<String> = (2..=batch.len() + 1).map(|n| format!("pg_notify($1, ${n})")).collect();
        let sql = format!("SELECT {}", calls.join(", "));
        db.execute_raw(Statement::from_sql_and_values(DbBackend::Postgres, sql, values)).await?;
    }
    Ok(())
}

/// Connects and LISTENs before returning (so nothing committed after start-up is missed),
/// then relays notifications to `hub` in a background task.
pub(super) async fn listen(database_url: &str, hub: Arc<Hub>) -> Result<JoinHandle<()>, DbErr> {
    let connection_error = |e: SqlxError| DbErr::Custom(format!("event listener: {e}"));
    let mut listener = PgListener::connect(database_url).await.map_err(connection_error)?;
    listener.listen(CHANNEL).await.map_err(connection_error)?;
    Ok(tokio::spawn(relay(listener, hub)))
}

async fn relay(mut listener: PgListener, hub: Arc<Hub>) {
    // Set after an error: the connection may have been replaced, losing notifications.
    let mut lost = false;
    loop {
        match listener.try_recv().await {
            Ok(received) => {
                if std::mem::take(&mut lost) {
                    hub.resync();
                }
                match received {
                    // Unreadable (from an instance of another version, perhaps): as good as
                    // lost, and it may have been a revocation.
                    Some(notification) => {
                        if !hub.receive(notification.payload()) {
                            tracing::warn!("resynchronising subscribers after an unreadable event");
                            hub.resync();
                        }
                    }
                    // The connection dropped: notifications since are gone, and go on being
                    // lost until the next receive makes the LISTEN again; subscribers resync
                    // now and once more when one succeeds.
                    None => {
                        tracing::warn!("event listener reconnected; resynchronising subscribers");
                        hub.resync();
                        hub.unsure();
                        lost = true;
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%error, "event listener failed; retrying");
                hub.unsure();
                lost = true;
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}
