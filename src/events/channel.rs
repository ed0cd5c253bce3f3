//! A bounded broadcast channel whose buffer holds only what a receiver has yet to read.
//!
//! tokio's `broadcast` allocates its whole buffer when a channel is made, about 48 bytes a
//! slot whether anything waits or not. A route lives while anyone on the instance listens
//! to it, so for thousands of idle organizations and agents those empty slots were a third
//! of what an idle socket cost (BENCHMARKS.md, memory per idle socket). Here the queue grows
//! while events wait for the slowest receiver and gives its memory back once they are read;
//! a receiver that falls more than `capacity` behind skips the oldest and is told how many
//! it missed, as with tokio's.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, MutexGuard},
};

use tokio::sync::Notify;

/// Past this many slots an empty queue gives its memory back.
const KEPT_WHEN_EMPTY: usize = 16;

#[derive(Debug, PartialEq, Eq)]
pub enum RecvError {
    /// The receiver fell behind, and this many events were dropped before it read them.
    Lagged(u64),
    /// The sender is gone and everything sent was read.
    Closed,
}

#[derive(Debug, PartialEq, Eq)]
pub enum TryRecvError {
    Empty,
    Lagged(u64),
    Closed,
}

pub fn channel<T: Clone>(capacity: usize) -> Sender<T> {
    let state = State { queue: VecDeque::new(), head: 0, receivers: 0, closed: false };
    Sender { shared: Arc::new(Shared { state: Mutex::new(state), sent: Notify::new(), capacity }) }
}

pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
    /// Position of the next event this receiver reads.
    next: u64,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    sent: Notify,
    capacity: usize,
}

struct State<T> {
    /// Each event with how many receivers have yet to read it.
    queue: VecDeque<(T, usize)>,
    /// Position of the queue's first event.
    head: u64,
    receivers: usize,
    closed: bool,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Nothing panics while holding it; a poisoned queue is still consistent.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl<T> State<T> {
    fn tail(&self) -> u64 {
        self.head + self.queue.len() as u64
    }

    /// Drops the events every receiver has read.
    fn release_read(&mut self) {
        while self.queue.front().is_some_and(|(_, unread)| *unread == 0) {
            self.queue.pop_front();
            self.head += 1;
        }
        if self.queue.is_empty() && self.queue.capacity() > KEPT_WHEN_EMPTY {
            self.queue = VecDeque::new();
        }
    }
}

impl<T: Clone> Sender<T> {
    /// Queues `value` for every receiver there is now; the oldest event goes when the
    /// queue is full. Nobody listening: nothing is kept.
    pub fn send(&self, value: T) {
        let mut state = self.shared.lock();
        if state.receivers == 0 {
            return;
        }
        if state.queue.len() >= self.shared.capacity {
            state.queue.pop_front();
            state.head += 1;
        }
        let receivers = state.receivers;
        state.queue.push_back((value, receivers));
        drop(state);
        self.shared.sent.notify_waiters();
    }

    /// A receiver of what is sent from now on.
    pub fn subscribe(&self) -> Receiver<T> {
        let mut state = self.shared.lock();
        state.receivers += 1;
        Receiver { shared: self.shared.clone(), next: state.tail() }
    }

    pub fn receiver_count(&self) -> usize {
        self.shared.lock().receivers
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.sent.notify_waiters();
    }
}

impl<T: Clone> Receiver<T> {
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        take(&self.shared, &mut self.next)
    }

    pub async fn recv(&mut self) -> Result<T, RecvError> {
        let Receiver { shared, next } = self;
        loop {
            // Registered before looking, so an event sent in between still wakes it.
            let sent = shared.sent.notified();
            tokio::pin!(sent);
            sent.as_mut().enable();
            match take(shared, next) {
                Ok(value) => return Ok(value),
                Err(TryRecvError::Lagged(missed)) => return Err(RecvError::Lagged(missed)),
                Err(TryRecvError::Closed) => return Err(RecvError::Closed),
                Err(TryRecvError::Empty) => sent.await,
            }
        }
    }
}

/// The event at `next`, moving `next` past it.
fn take<T: Clone>(shared: &Shared<T>, next: &mut u64) -> Result<T, TryRecvError> {
    let mut state = shared.lock();
    if *next < state.head {
        let missed = state.head - *next;
        *next = state.head;
        return Err(TryRecvError::Lagged(missed));
    }
    let index = (*next - state.head) as usize;
    let Some((value, unread)) = state.queue.get_mut(index) else {
        return Err(if state.closed { TryRecvError::Closed } else { TryRecvError::Empty });
    };
    *unread -= 1;
    let value = value.clone();
    *next += 1;
    state.release_read();
    Ok(value)
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.receivers -= 1;
        // Every event from here on was counted for this receiver.
        let first_unread = self.next.saturating_sub(state.head) as usize;
        for (_, unread) in state.queue.iter_mut().skip(first_unread) {
            *unread -= 1;
        }
        state.release_read();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(sender: &Sender<u32>) -> usize {
        sender.shared.lock().queue.len()
    }

    #[test]
    fn every_receiver_reads_what_was_sent_after_it_subscribed() {
        let sender = channel(8);
        sender.send(0);
        let mut early = sender.subscribe();
        sender.send(1);
        let mut late = sender.subscribe();
        sender.send(2);
        assert_eq!(
            (early.try_recv(), early.try_recv(), early.try_recv()),
            (Ok(1), Ok(2), Err(TryRecvError::Empty))
        );
        assert_eq!((late.try_recv(), late.try_recv()), (Ok(2), Err(TryRecvError::Empty)));
    }

    #[test]
    fn events_are_kept_only_until_every_receiver_read_them() {
        let sender = channel(8);
        let mut first = sender.subscribe();
        let mut second = sender.subscribe();
        sender.send(1);
        sender.send(2);
        assert_eq!(queued(&sender), 2);
        assert_eq!(first.try_recv(), Ok(1));
        assert_eq!(queued(&sender), 2, "the second receiver has yet to read it");
        assert_eq!(second.try_recv(), Ok(1));
        assert_eq!(queued(&sender), 1);
        drop(second);
        assert_eq!(queued(&sender), 1, "the first has yet to read 2");
        drop(first);
        assert_eq!(queued(&sender), 0, "a receiver gone reads nothing more");
        sender.send(3);
        assert_eq!(queued(&sender), 0, "nobody listens");
    }

    #[test]
    fn a_burst_gives_its_memory_back_once_read() {
        let sender = channel(1024);
        let mut receiver = sender.subscribe();
        for n in 0..1000 {
            sender.send(n);
        }
        assert!(sender.shared.lock().queue.capacity() >= 1000);
        while receiver.try_recv().is_ok() {}
        assert_eq!(sender.shared.lock().queue.capacity(), 0);
    }

    #[test]
    fn a_receiver_that_falls_behind_skips_the_oldest_and_is_told_how_many() {
        let sender = channel(4);
        let mut slow = sender.subscribe();
        let mut fast = sender.subscribe();
        for n in 0..10 {
            sender.send(n);
            assert_eq!(fast.try_recv(), Ok(n));
        }
        assert_eq!(slow.try_recv(), Err(TryRecvError::Lagged(6)));
        assert_eq!((6..10).map(|_| slow.try_recv().unwrap()).collect::<Vec<_>>(), vec![6, 7, 8, 9]);
        assert_eq!(slow.try_recv(), Err(TryRecvError::Empty));
        assert_eq!(queued(&sender), 0);
    }

    #[tokio::test]
    async fn recv_waits_for_the_next_event_and_ends_with_the_sender() {
        let sender = channel(4);
        let mut receiver = sender.subscribe();
        let waiting = tokio::spawn(async move {
            let first = receiver.recv().await;
            (first, receiver.recv().await)
        });
        // The receiver may or may not be waiting yet: either way it must get the event.
        tokio::task::yield_now().await;
        sender.send(7);
        drop(sender);
        assert_eq!(waiting.await.unwrap(), (Ok(7), Err(RecvError::Closed)));
    }
}
