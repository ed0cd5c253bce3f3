//! A future or stream polled only after it asked to be: a task that selects over several of
//! them polls all of them whenever any one wakes it, and for a socket sending the events of a
//! subscription it runs alone that meant reading the socket (a lock, a readiness check, a
//! buffer cleared) and checking the shared revocation feed (a lock all sockets contend for)
//! once for every event sent.

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll, Wake, Waker},
};

use futures_util::{Stream, task::AtomicWaker};

pub struct WhenWoken<T> {
    inner: T,
    signal: Arc<Signal>,
}

/// The waker the inner future or stream sees: notes that it fired, and wakes the task.
struct Signal {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl<T> WhenWoken<T> {
    pub fn new(inner: T) -> Self {
        // Woken to begin with: the first poll reaches the inner one.
        let signal = Arc::new(Signal { woken: AtomicBool::new(true), task: AtomicWaker::new() });
        Self { inner, signal }
    }

    /// The inner one, for what does not go through the signal: a send on the socket whose
    /// reads this watches.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// Polls the inner one with the signal's waker if it fired since it last said Pending.
    fn poll_inner<R>(
        &mut self,
        cx: &mut Context<'_>,
        poll: impl FnOnce(&mut T, &mut Context<'_>) -> Poll<R>,
    ) -> Poll<R> {
        self.signal.task.register(cx.waker());
        if !self.signal.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        let waker = Waker::from(self.signal.clone());
        let polled = poll(&mut self.inner, &mut Context::from_waker(&waker));
        if polled.is_ready() {
            // Ready registers no waker: a stream may have more at once, so ask it next time.
            self.signal.woken.store(true, Ordering::Release);
        }
        polled
    }
}

impl<F: Future + Unpin> Future for WhenWoken<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.get_mut().poll_inner(cx, |inner, cx| Pin::new(inner).poll(cx))
    }
}

impl<S: Stream + Unpin> Stream for WhenWoken<S> {
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        self.get_mut().poll_inner(cx, |inner, cx| Pin::new(inner).poll_next(cx))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use futures_util::{FutureExt, StreamExt, stream};
    use tokio::sync::mpsc;

    use super::*;

    #[tokio::test]
    async fn polls_the_inner_stream_only_after_it_woke_or_yielded() {
        let (sender, mut receiver) = mpsc::unbounded_channel();
        let polls = Arc::new(AtomicUsize::new(0));
        let counted = polls.clone();
        let mut stream = WhenWoken::new(stream::poll_fn(move |cx| {
            counted.fetch_add(1, Ordering::SeqCst);
            receiver.poll_recv(cx)
        }));
        let polled = || polls.load(Ordering::SeqCst);

        assert!(stream.next().now_or_never().is_none(), "nothing sent yet");
        assert!(stream.next().now_or_never().is_none(), "not woken: not asked");
        assert_eq!(polled(), 1);

        sender.send(1).unwrap();
        sender.send(2).unwrap();
        assert_eq!(stream.next().await, Some(1), "the send woke it");
        assert_eq!(stream.next().now_or_never(), Some(Some(2)), "it yielded: asked again");
        assert!(stream.next().now_or_never().is_none());
        assert!(stream.next().now_or_never().is_none());
        assert_eq!(polled(), 4);

        drop(sender);
        assert_eq!(stream.next().await, None, "the end wakes it too");
    }
}
