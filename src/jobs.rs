//! Work an instance repeats in the background: the sweeps and prunes that put stored state
//! right whatever any instance missed (a lost event, a crash between a commit and its
//! follow-up). Each runs on its own tick, so a slow one does not delay the others.

use std::{fmt::Display, time::Duration};

use tokio::{task::JoinHandle, time::MissedTickBehavior};

/// A zero interval would spin.
const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// Runs `job` now and then every `interval` (at least every 10 ms) until the handle is
/// aborted. A run that fails is logged and tried again at the next tick; a run that overruns
/// its interval delays the next one instead of bunching them up.
pub fn spawn_every<F, Fut, T, E>(interval: Duration, what: &'static str, mut job: F) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, E>> + Send,
    E: Display,
{
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval.max(MIN_INTERVAL));
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(error) = job().await {
                tracing::warn!(%error, "{what} failed; trying again at the next interval");
            }
        }
    })
}
