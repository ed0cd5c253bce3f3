//! Work an instance repeats in the background: the sweeps and prunes that put stored state
//! right whatever any instance missed (a lost event, a crash between a commit and its
//! follow-up). Each runs on its own tick, so a slow one does not delay the others.

use std::{fmt::Display, time::Duration};

use tokio::{
    task::JoinHandle,
    time::{Instant, MissedTickBehavior},
};

/// A zero interval would spin.
const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// When a job first runs: at once (what a restart may have left undone is done now), or one
/// interval after the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstRun {
    AtOnce,
    AfterAnInterval,
}

/// Runs `job` (first as `first` says) every `interval`, at least every 10 ms, until the
/// handle is aborted. A run that fails is logged and tried again at the next tick; a run
/// that overruns its interval delays the next one instead of bunching them up.
pub fn spawn_every<F, Fut, T, E>(
    interval: Duration,
    first: FirstRun,
    what: &'static str,
    mut job: F,
) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, E>> + Send,
    E: Display,
{
    let interval = interval.max(MIN_INTERVAL);
    let start = match first {
        FirstRun::AtOnce => Instant::now(),
        FirstRun::AfterAnInterval => Instant::now() + interval,
    };
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval_at(start, interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(error) = job().await {
                tracing::warn!(%error, "{what} failed; trying again at the next interval");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };

    use super::*;

    #[tokio::test]
    async fn a_failed_run_is_tried_again_and_a_zero_interval_is_allowed() {
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = runs.clone();
        // tokio's own interval panics on zero.
        let job = spawn_every(Duration::ZERO, FirstRun::AtOnce, "the test job", move || {
            let run = counted.fetch_add(1, Ordering::SeqCst);
            async move { if run == 0 { Err("the first run fails") } else { Ok(()) } }
        });
        let three_runs = async {
            while runs.load(Ordering::SeqCst) < 3 {
                tokio::time::sleep(MIN_INTERVAL).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), three_runs).await.expect("runs after the failed one");
        assert!(!job.is_finished(), "a failure does not end the job");
        job.abort();
    }
}
