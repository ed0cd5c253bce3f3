//! `GET /graphql/ws`: GraphQL over WebSocket, both `graphql-transport-ws` and legacy
//! `graphql-ws`. The token travels in the `connection_init` payload, because browsers cannot
//! set headers on a WebSocket.
//!
//! The protocol itself is async-graphql's; this loop around it adds what a public endpoint
//! needs: a deadline for `connection_init` and the close codes the protocol specifies.

use std::{
    str::FromStr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use async_graphql::{
    Data,
    http::{ALL_WEBSOCKET_PROTOCOLS, WebSocket as GraphQLWebSocket, WebSocketProtocols, WsMessage},
};
use axum::{
    extract::{
        State, WebSocketUpgrade,
        ws::{CloseFrame, Message, WebSocket},
    },
    http::{HeaderMap, StatusCode, header::SEC_WEBSOCKET_PROTOCOL},
    response::{IntoResponse, Response},
};
use futures_util::{SinkExt, StreamExt, future};

use super::{HttpState, bearer_token};
use crate::{auth::service as auth, graphql::RequestContext};

/// graphql-transport-ws close codes.
const FORBIDDEN: u16 = 4403;
const INIT_TIMEOUT: u16 = 4408;

pub(super) async fn upgrade(
    State(state): State<HttpState>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Some(protocol) = requested_protocol(&headers) else {
        return (
            StatusCode::BAD_REQUEST,
            "Sec-WebSocket-Protocol must name graphql-transport-ws or graphql-ws.",
        )
            .into_response();
    };
    upgrade.protocols(ALL_WEBSOCKET_PROTOCOLS).on_upgrade(move |socket| serve(state, socket, protocol))
}

fn requested_protocol(headers: &HeaderMap) -> Option<WebSocketProtocols> {
    headers
        .get(SEC_WEBSOCKET_PROTOCOL)?
        .to_str()
        .ok()?
        .split(',')
        .find_map(|name| WebSocketProtocols::from_str(name.trim()).ok())
}

/// What the connection learned in `connection_init`, read by the loop in `serve`.
#[derive(Default)]
struct Handshake {
    accepted: AtomicBool,
    refused: AtomicBool,
}

async fn serve(state: HttpState, socket: WebSocket, protocol: WebSocketProtocols) {
    let _open = state.app.metrics.websocket_opened();
    let (mut sink, incoming) = socket.split();
    let incoming = incoming.take_while(|frame| future::ready(frame.is_ok())).filter_map(|frame| {
        future::ready(match frame {
            Ok(frame @ (Message::Text(_) | Message::Binary(_))) => Some(frame.into_data()),
            _ => None,
        })
    });

    let handshake = Arc::new(Handshake::default());
    let on_init = {
        let handshake = handshake.clone();
        let app = state.app.clone();
        move |payload: serde_json::Value| async move {
            let outcome = connection_data(&app, &payload).await;
            let flag = if outcome.is_ok() { &handshake.accepted } else { &handshake.refused };
            flag.store(true, Ordering::SeqCst);
            outcome
        }
    };
    let outgoing =
        GraphQLWebSocket::new(state.schema.clone(), incoming, protocol).on_connection_init(on_init);
    futures_util::pin_mut!(outgoing);

    let init_deadline = tokio::time::sleep(state.app.config.ws_init_timeout);
    tokio::pin!(init_deadline);
    loop {
        let message = tokio::select! {
            message = outgoing.next() => match message {
                Some(message) => message,
                None => break,
            },
            () = &mut init_deadline, if !handshake.accepted.load(Ordering::SeqCst) => {
                WsMessage::Close(INIT_TIMEOUT, "Connection initialisation timeout".into())
            }
        };
        let frame = match message {
            WsMessage::Text(text) => Message::Text(text.into()),
            WsMessage::Close(code, reason) => {
                // async-graphql closes a refused handshake with 1002; the protocol says 4403.
                let code = if handshake.refused.load(Ordering::SeqCst) { FORBIDDEN } else { code };
                let _ = sink.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
                break;
            }
        };
        if sink.send(frame).await.is_err() {
            break;
        }
    }
}

/// The context of every operation on this socket: the viewer named by the payload's
/// `authorization` (none when absent; an invalid token refuses the connection).
async fn connection_data(
    app: &crate::app::AppState,
    payload: &serde_json::Value,
) -> async_graphql::Result<Data> {
    let viewer = match authorization_in(payload) {
        Some(token) => Some(
            auth::authenticate(&app.db, token)
                .await
                .map_err(|error| {
                    tracing::error!(%error, "authenticating a socket failed");
                    async_graphql::Error::new("The server could not check the token; try again.")
                })?
                .ok_or_else(|| async_graphql::Error::new("The token is not valid; sign in again."))?,
        ),
        None => None,
    };
    let mut data = Data::default();
    data.insert(RequestContext::new(app, viewer));
    Ok(data)
}

/// The bearer token of `{"authorization": "Bearer …"}`, the key matched case-insensitively
/// (GraphiQL sends its headers editor's `Authorization` as is).
fn authorization_in(payload: &serde_json::Value) -> Option<&str> {
    payload
        .as_object()?
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case("authorization"))
        .and_then(|(_, value)| value.as_str())
        .and_then(bearer_token)
}
