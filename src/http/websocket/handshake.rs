//! The WebSocket handshake over HTTP/1.1 (RFC 6455 4.2), ours rather than axum's
//! `WebSocketUpgrade`: a fan-out writes to the TCP socket itself (see `outbox`), and axum's
//! socket never lets go of it. Checks what axum checks, in the same order.

use axum::{
    body::Body,
    extract::Request,
    http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use super::protocol::Protocol;

/// A request the handshake accepted: the `101` to answer it with, and the connection once
/// hyper has sent that.
pub struct Accepted {
    accept: HeaderValue,
    on_upgrade: OnUpgrade,
}

/// Why a request is not a WebSocket upgrade, as the response says it.
pub struct Refusal(StatusCode, &'static str);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.0, self.1).into_response()
    }
}

/// Checks `request` is a WebSocket upgrade.
pub fn accept(request: &mut Request) -> Result<Accepted, Refusal> {
    let refuse = |reason| Err(Refusal(StatusCode::BAD_REQUEST, reason));
    let headers = request.headers();
    if request.method() != Method::GET {
        return refuse("A WebSocket upgrade is a GET request.");
    }
    if !header_contains(headers, header::CONNECTION, "upgrade") {
        return refuse("Connection header did not include 'upgrade'.");
    }
    if !header_is(headers, header::UPGRADE, "websocket") {
        return refuse("`Upgrade` header did not include 'websocket'.");
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return refuse("`Sec-WebSocket-Key` header missing.");
    };
    if !header_is(headers, header::SEC_WEBSOCKET_VERSION, "13") {
        return refuse("`Sec-WebSocket-Version` header did not include '13'.");
    }
    let accept = HeaderValue::from_str(&derive_accept_key(key.as_bytes())).expect("base64 is a header value");
    let Some(on_upgrade) = request.extensions_mut().remove::<OnUpgrade>() else {
        return Err(Refusal(StatusCode::UPGRADE_REQUIRED, "This connection cannot be upgraded."));
    };
    Ok(Accepted { accept, on_upgrade })
}

impl Accepted {
    /// The `101 Switching Protocols` answer, speaking `protocol`.
    pub fn response(&self, protocol: Protocol) -> Response {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, self.accept.clone());
        headers.insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(protocol.name()));
        response
    }

    /// The TCP socket once the `101` went out, with whatever the client sent after its
    /// request that hyper had already read. None when the upgrade failed (the client left).
    pub async fn upgraded(self) -> Option<(TcpStream, Vec<u8>)> {
        let upgraded = self.on_upgrade.await.ok()?;
        // `http::serve` hands hyper a `TokioIo<TcpStream>`, so this is what comes back.
        match upgraded.downcast::<TokioIo<TcpStream>>() {
            Ok(parts) => Some((parts.io.into_inner(), parts.read_buf.to_vec())),
            Err(_) => {
                tracing::error!("an upgraded connection was not a TCP socket");
                None
            }
        }
    }
}

fn header_is(headers: &HeaderMap, name: HeaderName, value: &str) -> bool {
    headers.get(name).is_some_and(|header| header.as_bytes().eq_ignore_ascii_case(value.as_bytes()))
}

fn header_contains(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers
        .get(name)
        .and_then(|header| header.to_str().ok())
        .is_some_and(|header| header.split(',').any(|part| part.trim().eq_ignore_ascii_case(token)))
}
