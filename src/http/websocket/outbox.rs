//! A socket's outgoing bytes, written by two parties: the socket's own task (answers, pings,
//! close frames, through tungstenite) and the shared executions of a fan-out, which write
//! their events from their own task ([`Outbox::send_text`]) so that a change sent to
//! thousands of idle sockets wakes none of their tasks.
//!
//! Every write takes the outbox's lock and is a whole frame, so the two never interleave
//! within one. What the kernel does not take at once waits here, in order, and the socket's
//! task writes it as the socket drains; a fan-out frame finding more than `UNREAD_LIMIT`
//! frames waiting is refused, and its subscription ends (`api::Ending::FellBehind`).

use std::{
    collections::VecDeque,
    io::{self, IoSlice},
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard},
    task::{Context, Poll, Waker, ready},
    time::Duration,
};

use futures_util::future;

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};
use tokio_tungstenite::tungstenite::protocol::frame::{
    FrameHeader,
    coding::{Data, OpCode},
};

use crate::api::UNREAD_LIMIT;

pub struct Outbox {
    stream: TcpStream,
    queue: Mutex<Queue>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// Refused when the client has left `UNREAD_LIMIT` frames unread.
    Unread,
    /// Sent whatever waits: the few frames that end an operation.
    None,
}

#[derive(Default)]
pub struct Queue {
    /// Whole frames the kernel has not taken yet; of the first, `written` bytes it has.
    waiting: VecDeque<Vec<u8>>,
    written: usize,
    /// The socket's task, woken when bytes start waiting: it writes them as the socket drains.
    task: Option<Waker>,
    /// A close frame was sent, or the socket failed: fan-out frames are dropped.
    closed: bool,
}

impl Outbox {
    pub fn new(stream: TcpStream) -> Arc<Self> {
        Arc::new(Self { stream, queue: Mutex::default() })
    }

    /// Ends our half of the connection once everything is written, then reads and drops what
    /// the client still sends until it closes its half too (or `within` passes). Closing with
    /// unread bytes in the receive buffer makes the kernel send a reset, and a reset can reach
    /// the client before it has read our close frame, which it would then never see (1006).
    pub async fn linger(&self, within: Duration) {
        let drained = async {
            if future::poll_fn(|cx| self.poll_drain(cx)).await.is_err() {
                return;
            }
            if rustix::net::shutdown(&self.stream, rustix::net::Shutdown::Write).is_err() {
                return;
            }
            // On the heap: an array here would be part of every socket's future for its whole
            // life, not only while it closes (it was half of what an idle socket cost).
            let mut scratch = vec![0; 4096];
            loop {
                if self.stream.readable().await.is_err() {
                    return;
                }
                match self.stream.try_read(&mut scratch) {
                    Ok(0) => return,
                    Ok(_) => {}
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => return,
                }
            }
        };
        let _ = tokio::time::timeout(within, drained).await;
    }

    pub fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sends `message` as one text frame, from outside the socket's task. False when `bound`
    /// refuses it: the client has left `UNREAD_LIMIT` frames unread.
    /// `queue` is this outbox's, locked by the caller (who may have state of its own to check
    /// under the same lock).
    pub fn send_text(&self, queue: &mut Queue, message: &str, bound: Bound) -> bool {
        if queue.closed {
            return true;
        }
        if bound == Bound::Unread && queue.waiting.len() >= UNREAD_LIMIT {
            return false;
        }
        let mut header = [0; 10];
        let header_length = text_frame_header(message.len(), &mut header);
        // A failed socket is closed by its task, which learns so from its next read.
        let _ = self.write_or_queue(queue, [&header[..header_length], message.as_bytes()]);
        true
    }

    /// No more fan-out frames: a close frame follows.
    pub fn close(&self) {
        self.lock().closed = true;
    }

    /// Resolves once frames wait to be written, registering the socket's task to be woken
    /// when they do.
    pub fn poll_waiting(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut queue = self.lock();
        if queue.waiting.is_empty() {
            if !queue.task.as_ref().is_some_and(|task| task.will_wake(cx.waker())) {
                queue.task = Some(cx.waker().clone());
            }
            return Poll::Pending;
        }
        Poll::Ready(())
    }

    /// Writes what waits, as far as the socket takes it; Ready once nothing waits.
    pub fn poll_drain(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !ready!(self.poll_write_waiting(cx))? {}
        Poll::Ready(Ok(()))
    }

    /// Writes what waits, as far as the socket takes it: Ready(true) once nothing waits,
    /// Ready(false) when some went out and the rest must wait, Pending when none could.
    pub fn poll_write_waiting(&self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        let mut progress = false;
        loop {
            let mut queue = self.lock();
            let Some(first) = queue.waiting.front() else { return Poll::Ready(Ok(true)) };
            let (unwritten, length) = (&first[queue.written..], first.len());
            match self.stream.try_write(unwritten) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(written) => {
                    progress = true;
                    queue.written += written;
                    if queue.written == length {
                        queue.waiting.pop_front();
                        queue.written = 0;
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    drop(queue);
                    if progress {
                        return Poll::Ready(Ok(false));
                    }
                    ready!(self.stream.poll_write_ready(cx))?;
                }
                Err(error) => {
                    queue.closed = true;
                    return Poll::Ready(Err(error));
                }
            }
        }
    }

    /// Writes `parts` (together one or more whole frames) now if nothing waits before them and
    /// the kernel takes them, else queues what is left. Two parts, so that a fan-out frame's
    /// header and text go out in one call without being copied together (or an allocation
    /// per socket for the list of them).
    fn write_or_queue(&self, queue: &mut Queue, parts: [&[u8]; 2]) -> io::Result<()> {
        let total = parts[0].len() + parts[1].len();
        let written = if queue.waiting.is_empty() {
            match self.stream.try_write_vectored(&parts.map(IoSlice::new)) {
                Ok(written) => written,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => 0,
                Err(error) => {
                    queue.closed = true;
                    return Err(error);
                }
            }
        } else {
            0
        };
        if written == total {
            return Ok(());
        }
        let mut rest = Vec::with_capacity(total - written);
        let mut skip = written;
        for part in parts {
            let from = skip.min(part.len());
            rest.extend_from_slice(&part[from..]);
            skip -= from;
        }
        if queue.waiting.is_empty() {
            queue.wake_task();
        }
        queue.waiting.push_back(rest);
        Ok(())
    }
}

impl Queue {
    /// Wakes the socket's task (when it waits for frames to write, see `Outbox::poll_waiting`).
    pub fn wake_task(&self) {
        if let Some(task) = &self.task {
            task.wake_by_ref();
        }
    }
}

/// The header of an unmasked, final text frame of `length` bytes, written to `output`;
/// returns its length.
fn text_frame_header(length: usize, output: &mut [u8; 10]) -> usize {
    let header = FrameHeader { opcode: OpCode::Data(Data::Text), ..FrameHeader::default() };
    let mut cursor = io::Cursor::new(&mut output[..]);
    header.format(length as u64, &mut cursor).expect("a frame header fits in 10 bytes");
    cursor.position() as usize
}

/// The socket as tungstenite sees it: reads straight from the TCP socket; writes go through
/// the outbox, which takes all they give (tungstenite writes whole frames) and holds what
/// the kernel does not, so a frame of the fan-out never lands inside one of the task's.
pub struct SocketIo(pub Arc<Outbox>);

impl AsyncRead for SocketIo {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let stream = &self.0.stream;
        loop {
            ready!(stream.poll_read_ready(cx))?;
            match stream.try_read(buf.initialize_unfilled()) {
                Ok(read) => {
                    buf.advance(read);
                    return Poll::Ready(Ok(()));
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error) => return Poll::Ready(Err(error)),
            }
        }
    }
}

impl AsyncWrite for SocketIo {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let mut queue = self.0.lock();
        Poll::Ready(self.0.write_or_queue(&mut queue, [buf, &[]]).map(|()| buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_drain(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_drain(cx)
    }
}

#[cfg(test)]
mod tests {
    use futures_util::{SinkExt, StreamExt, future};
    use tokio::net::TcpListener;
    use tokio_tungstenite::{
        WebSocketStream,
        tungstenite::{
            Message,
            protocol::{Role, WebSocketConfig},
        },
    };

    use super::*;

    /// The server's outbox and a client reading its frames, over a real loopback socket.
    async fn connected() -> (Arc<Outbox>, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (Outbox::new(server), client)
    }

    #[tokio::test]
    async fn frames_of_the_fan_out_and_the_task_arrive_whole_and_in_order() {
        let (outbox, client) = connected().await;
        // As the socket's task writes: each frame at once (`feed` does not wait for a flush).
        let config = WebSocketConfig::default().write_buffer_size(0);
        let mut task =
            WebSocketStream::from_raw_socket(SocketIo(outbox.clone()), Role::Server, Some(config)).await;
        let message = |n: usize| format!("{n:06}{}", "x".repeat(n % 3000));
        // On until the client's socket is full and both writers have queued a while, before
        // it reads anything.
        let mut sent = 0;
        let mut queued_since = None;
        while queued_since.is_none_or(|since| sent < since + 500) {
            if sent % 7 == 0 {
                task.feed(Message::text(message(sent))).await.unwrap();
            } else {
                let mut queue = outbox.lock();
                assert!(outbox.send_text(&mut queue, &message(sent), Bound::None));
            }
            sent += 1;
            if queued_since.is_none() && !outbox.lock().waiting.is_empty() {
                queued_since = Some(sent);
            }
            assert!(sent < 100_000, "the client's socket never filled up");
        }

        let draining = tokio::spawn(async move { future::poll_fn(|cx| outbox.poll_drain(cx)).await });
        let mut client = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
        for n in 0..sent {
            let Some(Ok(Message::Text(text))) = client.next().await else { panic!("frame {n}") };
            assert_eq!(text.as_str(), message(n));
        }
        draining.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_client_that_reads_nothing_is_refused_after_the_unread_limit() {
        let (outbox, _client) = connected().await;
        let message = "y".repeat(1000);
        let mut sent = 0;
        while outbox.send_text(&mut outbox.lock(), &message, Bound::Unread) {
            sent += 1;
            assert!(sent < 1_000_000, "never refused");
        }
        assert_eq!(outbox.lock().waiting.len(), UNREAD_LIMIT);
        assert!(outbox.send_text(&mut outbox.lock(), "the end", Bound::None), "an ending is never refused");
        assert_eq!(outbox.lock().waiting.len(), UNREAD_LIMIT + 1);

        outbox.close();
        assert!(outbox.send_text(&mut outbox.lock(), &message, Bound::None));
        assert_eq!(outbox.lock().waiting.len(), UNREAD_LIMIT + 1, "nothing goes out after a close frame");
    }
}
