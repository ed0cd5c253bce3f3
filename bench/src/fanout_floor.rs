//! The fan-out's floor: the same subscriber process (see `subscribers`) against a server that
//! does nothing but accept the sockets and, for each change, write one prepared frame to each
//! of them, from one task per core. No server can deliver faster on this machine: what the
//! floor measures is TCP over loopback and the subscribers' process, on the cores the server
//! would use. Beside the real fan-out it tells how much of a p99 is agentdesk's, and whether
//! a target is within this machine's reach at all.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
};

use futures_util::{SinkExt, StreamExt};
use tokio::{
    io::AsyncWriteExt,
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        Message,
        handshake::server::{Request, Response},
        http::HeaderValue,
        protocol::{
            WebSocketConfig,
            frame::{
                Frame,
                coding::{Data, OpCode},
            },
        },
    },
};

type Socket = WebSocketStream<TcpStream>;

/// Client messages here are a few hundred bytes.
const READ_BUFFER_BYTES: usize = 1024;

/// A `next` message the size of agentdesk's `presenceChanged` event in the fan-out.
pub const EVENT: &str = r#"{"id":"1","type":"next","payload":{"data":{"presenceChanged":{"status":"ONLINE","previousStatus":"OFFLINE","agent":{"id":"QWdlbnQ6MTAwMA"}}}}}"#;

pub struct FloorServer {
    address: SocketAddr,
    /// Sockets whose client has subscribed.
    subscribed: Arc<Mutex<Vec<Socket>>>,
    accepting: JoinHandle<()>,
}

impl FloorServer {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the floor's port");
        let address = listener.local_addr().expect("the floor's address");
        let subscribed = Arc::new(Mutex::new(Vec::new()));
        let accepting = tokio::spawn(accept(listener, subscribed.clone()));
        Self { address, subscribed, accepting }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/", self.address)
    }

    /// Writes `text` as one WebSocket text frame to every subscribed socket, the sockets split
    /// between one task per core, as a server's runtime would spread them.
    pub async fn broadcast(&self, text: &str) {
        let mut frame = Vec::new();
        Frame::message(text.to_owned(), OpCode::Data(Data::Text), true)
            .format(&mut frame)
            .expect("a frame formats into memory");
        let frame: Arc<[u8]> = frame.into();
        let mut sockets = std::mem::take(&mut *lock(&self.subscribed));
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let share = sockets.len().div_ceil(cores).max(1);
        let mut writers = Vec::new();
        while !sockets.is_empty() {
            let rest = sockets.split_off(share.min(sockets.len()));
            let mine = std::mem::replace(&mut sockets, rest);
            writers.push(tokio::spawn(write_each(mine, frame.clone())));
        }
        for writer in writers {
            let written = writer.await.expect("a writer task");
            lock(&self.subscribed).extend(written);
        }
    }
}

impl Drop for FloorServer {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

fn lock(sockets: &Mutex<Vec<Socket>>) -> std::sync::MutexGuard<'_, Vec<Socket>> {
    sockets.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One write each, straight to the TCP socket: the frame is complete and server frames are
/// not masked, so the WebSocket's own state is not involved.
async fn write_each(sockets: Vec<Socket>, frame: Arc<[u8]>) -> Vec<Socket> {
    let mut open = Vec::with_capacity(sockets.len());
    for mut socket in sockets {
        let stream = socket.get_mut();
        let written = stream.try_write(&frame).unwrap_or(0);
        if written == frame.len() || stream.write_all(&frame[written..]).await.is_ok() {
            open.push(socket);
        }
    }
    open
}

async fn accept(listener: TcpListener, subscribed: Arc<Mutex<Vec<Socket>>>) {
    while let Ok((stream, _)) = listener.accept().await {
        // As agentdesk's server does: each event goes out as it is written.
        let _ = stream.set_nodelay(true);
        let subscribed = subscribed.clone();
        tokio::spawn(async move {
            if let Some(socket) = handshake(stream).await {
                lock(&subscribed).push(socket);
            }
        });
    }
}

/// The WebSocket upgrade with `graphql-transport-ws`, `connection_ack` for the
/// `connection_init`, and the socket once its `subscribe` arrived.
async fn handshake(stream: TcpStream) -> Option<Socket> {
    // The signature is tungstenite's `Callback`, whose error is a whole HTTP response.
    #[expect(clippy::result_large_err)]
    let with_protocol = |_: &Request, mut response: Response| {
        response
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("graphql-transport-ws"));
        Ok(response)
    };
    // A small read buffer, as agentdesk's sockets have: tungstenite's default of 128 KiB a
    // socket would leave the process's allocator holding memory that a later fan-out in the
    // same process then reuses, hiding its growth per subscriber.
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER_BYTES);
    let mut socket =
        tokio_tungstenite::accept_hdr_async_with_config(stream, with_protocol, Some(config)).await.ok()?;
    while let Some(Ok(message)) = socket.next().await {
        let Message::Text(text) = message else { continue };
        if text.contains("\"connection_init\"") {
            socket.send(Message::text(r#"{"type":"connection_ack"}"#)).await.ok()?;
        } else if text.contains("\"subscribe\"") {
            return Some(socket);
        }
    }
    None
}
