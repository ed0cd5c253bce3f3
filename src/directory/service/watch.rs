use std::sync::Arc;

use futures_util::{Stream, stream};
use sea_orm::{DatabaseConnection, DbErr};

use crate::{
    directory::events::{DirectoryChangeKind, DirectoryNotice},
    directory::model::AgentRecord,
    directory::store,
    events::{Delivery, EventBus, RecvError, Route, WatchError},
    viewer::Viewer,
};

/// One agent's entry changed, as a subscriber sees it.
pub struct DirectoryUpdate {
    pub kind: DirectoryChangeKind,
    pub agent_id: i64,
    /// The agent as it is now; None once deleted.
    pub agent: Option<AgentRecord>,
}

/// The directory changes of the viewer's organization, one update per agent, as they commit.
/// A subscriber that falls more than the bus's buffer behind, or whose instance may have lost
/// notifications, gets `WatchError::Missed` and the stream ends: there is no state to catch
/// up from, and skipping silently would leave the client's list wrong without telling it.
pub fn watch(
    db: DatabaseConnection,
    bus: &EventBus,
    viewer: Viewer,
) -> impl Stream<Item = Result<DirectoryUpdate, WatchError>> + Send + use<> {
    let state = Some((
        bus.subscribe::<DirectoryNotice>(Route::Organization(viewer.organization_id)),
        Vec::<DirectoryUpdate>::new(),
    ));
    stream::unfold(state, move |state| {
        let db = db.clone();
        let viewer = viewer.clone();
        async move {
            let (mut feed, mut ready) = state?;
            loop {
                if let Some(update) = ready.pop() {
                    return Some((Ok(update), Some((feed, ready))));
                }
                let notice = match feed.recv().await {
                    Ok(Delivery::Event(notice)) => notice,
                    Ok(Delivery::Resync) | Err(RecvError::Lagged(_)) => {
                        tracing::warn!(
                            agent = viewer.agent_id,
                            "directory subscriber missed changes; ending it"
                        );
                        return Some((Err(WatchError::Missed), None));
                    }
                    Err(RecvError::Closed) => return None,
                };
                // Routed by organization already; checked again as tenancy is never assumed.
                if notice.change.organization_id != viewer.organization_id {
                    continue;
                }
                // Boxed: a database read is far larger than the rest of this stream, which
                // every idle subscription holds for its life (BENCHMARKS.md, memory per socket).
                match Box::pin(updates(&db, &notice)).await {
                    // Popped from the end: reversed so they come out in order.
                    Ok(updates) => ready = updates.into_iter().rev().collect(),
                    Err(error) => return Some((Err(error.into()), Some((feed, ready)))),
                }
            }
        }
    })
}

/// The updates of one notice; its agents are read once per instance, by the first subscriber.
async fn updates(
    db: &DatabaseConnection,
    notice: &Arc<DirectoryNotice>,
) -> Result<Vec<DirectoryUpdate>, DbErr> {
    let change = &notice.change;
    let agents = notice
        .agents
        .get_or_try_init(|| async {
            if change.kind == DirectoryChangeKind::Deleted {
                return Ok(Vec::new());
            }
            store::find_agents(db, change.organization_id, &change.agent_ids).await
        })
        .await?;
    Ok(change
        .agent_ids
        .iter()
        .map(|&agent_id| DirectoryUpdate {
            kind: change.kind,
            agent_id,
            agent: agents.iter().find(|agent| agent.card.id == agent_id).cloned(),
        })
        .collect())
}
