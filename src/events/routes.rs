//! Local fan-out routed by who can want an event: one bounded broadcast channel (`channel`)
//! per route (an organization, or one agent of it) that has a subscriber on this instance,
//! created by its first subscriber and dropped with its last. An event wakes only the subscriptions of
//! its routes, a burst fills only its routes' buffers, and a route nobody here listens to
//! costs one lookup.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::{Arc, Mutex, MutexGuard, Weak},
};

use super::channel::{self, Receiver, RecvError, Sender, TryRecvError};

/// Where an event goes, and what a subscription listens to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    Organization(i64),
    Agent { organization_id: i64, agent_id: i64 },
}

/// An event that knows its routes. An event naming an agent goes to that agent's route and,
/// when organization-wide subscribers want it too, to the organization's: one route is not
/// the other's parent, so each subscriber hears it once.
pub trait Routed {
    /// Each route at most once.
    fn routes(&self) -> impl Iterator<Item = Route> + '_;
}

/// What a local subscriber receives.
pub enum Delivery<T> {
    Event(Arc<T>),
    /// Events may have been lost (the listener reconnected): re-read the state.
    Resync,
}

impl<T> Clone for Delivery<T> {
    fn clone(&self) -> Self {
        match self {
            Delivery::Event(event) => Delivery::Event(event.clone()),
            Delivery::Resync => Delivery::Resync,
        }
    }
}

/// How far a route's slowest subscriber may fall behind before it misses events. Memory is
/// taken only for events that wait (24 bytes each), not for the bound.
#[derive(Clone, Copy)]
pub struct Buffers {
    pub organization: usize,
    pub agent: usize,
}

/// One kind of event's channels.
pub struct Feed<T> {
    buffers: Buffers,
    channels: Arc<Mutex<Channels<T>>>,
}

struct Channels<T> {
    by_route: HashMap<Route, Sender<Delivery<T>>>,
    /// Deliveries so far (events and resyncs), whatever their route: see `Mark`.
    delivered: u64,
}

/// How many deliveries a feed had made at some moment; a subscription made later from a
/// mark says whether it may have missed one meanwhile.
#[derive(Clone, Copy, Debug)]
pub struct Mark(u64);

fn lock<T>(channels: &Mutex<Channels<T>>) -> MutexGuard<'_, Channels<T>> {
    // Nothing panics while holding it; a poisoned map is still consistent.
    channels.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<T: Routed> Feed<T> {
    pub fn new(buffers: Buffers) -> Self {
        let channels = Channels { by_route: HashMap::new(), delivered: 0 };
        Self { buffers, channels: Arc::new(Mutex::new(channels)) }
    }

    /// Hands `event` to the subscribers of its routes. Sent while the map is locked, so a
    /// subscription made before an event is delivered hears it, one made after does not.
    pub fn deliver(&self, event: T) {
        let event = Arc::new(event);
        let mut channels = lock(&self.channels);
        channels.delivered += 1;
        for route in event.routes() {
            if let Some(sender) = channels.by_route.get(&route) {
                sender.send(Delivery::Event(event.clone()));
            }
        }
    }

    /// Tells every subscriber, of every route, to re-read its state.
    pub fn resync(&self) {
        let mut channels = lock(&self.channels);
        channels.delivered += 1;
        for sender in channels.by_route.values() {
            sender.send(Delivery::Resync);
        }
    }
}

impl<T> Feed<T> {
    pub fn subscribe(&self, route: Route) -> Subscription<T> {
        self.subscribe_since(route, self.mark()).0
    }

    pub fn mark(&self) -> Mark {
        Mark(lock(&self.channels).delivered)
    }

    /// A subscription to `route`, and whether anything was delivered (to any route) since
    /// `mark`: then it may have missed an event.
    pub fn subscribe_since(&self, route: Route, mark: Mark) -> (Subscription<T>, bool) {
        let mut channels = lock(&self.channels);
        let buffer = match route {
            Route::Organization(_) => self.buffers.organization,
            Route::Agent { .. } => self.buffers.agent,
        };
        let receiver = channels.by_route.entry(route).or_insert_with(|| channel::channel(buffer)).subscribe();
        let subscription = Subscription { receiver, route, channels: Arc::downgrade(&self.channels) };
        (subscription, channels.delivered != mark.0)
    }

    /// Subscriptions to every route.
    pub fn receivers(&self) -> usize {
        lock(&self.channels).by_route.values().map(Sender::receiver_count).sum()
    }
}

/// A subscriber's receiver for one route. Dropping the route's last one drops its channel.
pub struct Subscription<T> {
    receiver: Receiver<Delivery<T>>,
    route: Route,
    /// Weak: when the bus goes, its channels close and the subscription ends.
    channels: Weak<Mutex<Channels<T>>>,
}

impl<T> Subscription<T> {
    /// `Lagged` when the subscriber fell more than its route's buffer behind.
    pub async fn recv(&mut self) -> Result<Delivery<T>, RecvError> {
        self.receiver.recv().await
    }

    pub fn try_recv(&mut self) -> Result<Delivery<T>, TryRecvError> {
        self.receiver.try_recv()
    }
}

impl<T> Drop for Subscription<T> {
    fn drop(&mut self) {
        let Some(channels) = self.channels.upgrade() else { return };
        let mut channels = lock(&channels);
        // Subscribing takes the same lock, so a count of one is this receiver alone.
        if channels.by_route.get(&self.route).is_some_and(|sender| sender.receiver_count() == 1) {
            channels.by_route.remove(&self.route);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Note(Vec<Route>);

    impl Routed for Note {
        fn routes(&self) -> impl Iterator<Item = Route> + '_ {
            self.0.iter().copied()
        }
    }

    const BUFFERS: Buffers = Buffers { organization: 4, agent: 2 };
    const ORG: Route = Route::Organization(1);
    const AGENT: Route = Route::Agent { organization_id: 1, agent_id: 7 };

    fn routes_held(feed: &Feed<Note>) -> usize {
        lock(&feed.channels).by_route.len()
    }

    fn received(subscription: &mut Subscription<Note>) -> usize {
        std::iter::from_fn(|| subscription.try_recv().ok()).count()
    }

    #[test]
    fn a_route_is_dropped_with_its_last_subscriber() {
        let feed = Feed::<Note>::new(BUFFERS);
        let first = feed.subscribe(ORG);
        let second = feed.subscribe(ORG);
        let agent = feed.subscribe(AGENT);
        assert_eq!((routes_held(&feed), feed.receivers()), (2, 3));
        drop(first);
        assert_eq!((routes_held(&feed), feed.receivers()), (2, 2));
        drop(second);
        assert_eq!(routes_held(&feed), 1, "the organization's channel is gone");
        drop(agent);
        assert_eq!((routes_held(&feed), feed.receivers()), (0, 0), "no channel left");
        // An event for a route nobody listens to is dropped without creating one.
        feed.deliver(Note(vec![ORG, AGENT]));
        assert_eq!(routes_held(&feed), 0);
    }

    #[test]
    fn events_reach_only_their_routes_and_lag_only_there() {
        let feed = Feed::<Note>::new(BUFFERS);
        let mut ours = feed.subscribe(ORG);
        let mut theirs = feed.subscribe(Route::Organization(2));
        let mut agent = feed.subscribe(AGENT);
        for _ in 0..10 {
            feed.deliver(Note(vec![ORG]));
        }
        feed.deliver(Note(vec![Route::Organization(2), Route::Agent { organization_id: 2, agent_id: 7 }]));
        assert!(matches!(ours.try_recv(), Err(TryRecvError::Lagged(6))));
        assert_eq!(received(&mut ours), 4);
        assert_eq!(received(&mut theirs), 1, "the burst did not touch another organization");
        assert_eq!(received(&mut agent), 0, "nor an agent, even of the same id elsewhere");
        feed.resync();
        for subscription in [&mut ours, &mut theirs, &mut agent] {
            assert!(matches!(subscription.try_recv(), Ok(Delivery::Resync)));
        }
    }

    #[test]
    fn a_subscription_knows_whether_it_may_have_missed_an_event() {
        let feed = Feed::<Note>::new(BUFFERS);
        let mark = feed.mark();
        assert!(!feed.subscribe_since(AGENT, mark).1);
        feed.deliver(Note(vec![Route::Organization(9)]));
        assert!(feed.subscribe_since(AGENT, mark).1, "something was delivered meanwhile");
    }

    #[test]
    fn subscriptions_end_with_the_bus() {
        let feed = Feed::<Note>::new(BUFFERS);
        let mut subscription = feed.subscribe(ORG);
        drop(feed);
        assert!(matches!(subscription.try_recv(), Err(TryRecvError::Closed)));
    }
}
