//! `/metrics` read by tests: what the server counts, and waiting for a count to settle.

use std::time::Duration;

use crate::{client::Endpoint, eventually};

pub async fn scrape(server: &impl Endpoint) -> String {
    let response = server.http().get(format!("http://{}/metrics", server.addr())).send().await.unwrap();
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

/// Waits until `series` reads `expected`.
pub async fn settles_at(server: &impl Endpoint, series: &str, expected: f64) {
    eventually(Duration::from_secs(5), || async {
        let seen = value(&scrape(server).await, series);
        if seen == expected { Ok(()) } else { Err(format!("{series} is {seen}, expected {expected}")) }
    })
    .await;
}

/// Waits until `count` subscriptions receive the event feed `feed` (`presence`, `directory`,
/// `conversations`): from then on none of them can miss an event. Subscriptions start
/// asynchronously and the protocol acknowledges none, so this is how a test knows they are
/// live. Sockets that ask the same share one execution and count once.
pub async fn until_listening(server: &impl Endpoint, feed: &str, count: usize) {
    settles_at(server, &format!("agentdesk_event_listeners{{feed=\"{feed}\"}}"), count as f64).await;
}
