//! The connection loop: hyper's HTTP/1 server with upgrades (for WebSockets), as
//! `axum::serve` runs it, plus a deadline for the request head. `axum::serve` gives hyper no
//! timer, so it cannot bound how long a client takes to send its headers: a client trickling
//! them a byte at a time (slowloris) would hold a connection, and its task, for ever.

use std::{future::Future, io, net::SocketAddr, time::Duration};

use axum::{
    Router,
    extract::{ConnectInfo, Request},
};
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, sync::watch};
use tower::ServiceExt;

/// After a failed `accept` (typically out of file descriptors), wait this long rather than spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `router` until `stop` resolves; then accepts no more connections and waits for the
/// open ones to finish their requests in flight (callers bound that wait).
/// Handlers see the peer address as `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    header_read_timeout: Duration,
    stop: impl Future<Output = ()>,
) -> io::Result<()> {
    let mut http = http1::Builder::new();
    // The timer also closes a keep-alive connection left idle that long: hyper waits for the
    // next request head under the same deadline.
    http.timer(TokioTimer::new()).header_read_timeout(header_read_timeout);
    // `stopping` tells each connection to finish its request in flight and close. Each
    // connection task holds a `connection_open` receiver, so `connections.closed()` resolves
    // once every one has ended (as `axum::serve` does it).
    let (stopping, stop_requested) = watch::channel(());
    let (connections, connection_open) = watch::channel(());
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        // Every response and WebSocket message goes out at once. With Nagle's algorithm a
        // small write waits while an earlier one is unacknowledged, and the client's delayed
        // ACK can hold it 40 ms: two events in a row to one socket, or a response written in
        // two parts. (Failing leaves the connection usable, only slower.)
        let _ = stream.set_nodelay(true);
        let service = router.clone().map_request(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            request
        });
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service)).with_upgrades();
        let (mut stop_requested, open) = (stop_requested.clone(), connection_open.clone());
        tokio::spawn(async move {
            tokio::pin!(connection);
            let outcome = tokio::select! {
                outcome = connection.as_mut() => outcome,
                _ = stop_requested.changed() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = outcome {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
            drop(open);
        });
    }
    drop(listener);
    let _ = stopping.send(());
    drop(connection_open);
    connections.closed().await;
    Ok(())
}
