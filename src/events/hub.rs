//! This instance's local fan-out: one feed per kind of notice, found by its type, and the
//! decoders that turn another instance's payloads back into events.

use std::{
    any::{Any, TypeId},
    collections::HashMap,
    sync::{Arc, OnceLock, PoisonError, RwLock},
};

use serde::Deserialize;

use super::{
    event::{Event, Notice, Observer},
    routes::{Feed, Mark, Route, Subscription},
};

/// Turns a payload of one kind into its event and delivers it.
type Decoder = fn(&Hub, &str) -> Result<(), serde_json::Error>;

/// The kinds of event this instance's bus carries between instances; built once at start-up
/// (`app::event_kinds`). A payload of a kind not listed is treated as lost: subscribers
/// resynchronise.
#[derive(Default)]
pub struct Kinds {
    decoders: HashMap<&'static str, Decoder>,
    /// Created up front so that metrics name every feed from the start.
    feeds: Vec<(TypeId, Arc<dyn Channel>)>,
}

impl Kinds {
    pub fn with<E: Event>(mut self) -> Self {
        let previous = self.decoders.insert(E::KIND, decode::<E>);
        assert!(previous.is_none(), "two kinds of event are named {}", E::KIND);
        if !self.feeds.iter().any(|(id, _)| *id == TypeId::of::<E::Notice>()) {
            self.feeds.push((TypeId::of::<E::Notice>(), Arc::new(FeedOf::<E::Notice>::default())));
        }
        self
    }
}

fn decode<E: Event>(hub: &Hub, payload: &str) -> Result<(), serde_json::Error> {
    hub.deliver(serde_json::from_str::<E>(payload)?);
    Ok(())
}

/// One feed and its observer, seen without its type: what resyncs and metrics need.
trait Channel: Send + Sync {
    fn as_any(&self) -> &dyn Any;
    fn resync(&self);
    fn unsure(&self);
    fn name(&self) -> &'static str;
    fn receivers(&self) -> usize;
}

struct FeedOf<N> {
    feed: Feed<N>,
    observer: OnceLock<Arc<dyn Observer<N>>>,
}

impl<N: Notice> Default for FeedOf<N> {
    fn default() -> Self {
        Self { feed: Feed::new(N::BUFFERS), observer: OnceLock::new() }
    }
}

impl<N: Notice> Channel for FeedOf<N> {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn resync(&self) {
        if let Some(observer) = self.observer.get() {
            observer.resync();
        }
        self.feed.resync();
    }

    fn unsure(&self) {
        if let Some(observer) = self.observer.get() {
            observer.unsure();
        }
    }

    fn name(&self) -> &'static str {
        N::FEED
    }

    fn receivers(&self) -> usize {
        self.feed.receivers()
    }
}

pub(super) struct Hub {
    decoders: HashMap<&'static str, Decoder>,
    /// By the notice's type. Written only for a kind of notice no registered event has
    /// (which then never carries anything between instances).
    feeds: RwLock<HashMap<TypeId, Arc<dyn Channel>>>,
}

impl Hub {
    pub(super) fn new(kinds: Kinds) -> Self {
        Self { decoders: kinds.decoders, feeds: RwLock::new(kinds.feeds.into_iter().collect()) }
    }

    fn channel<N: Notice>(&self) -> Arc<dyn Channel> {
        let found =
            self.feeds.read().unwrap_or_else(PoisonError::into_inner).get(&TypeId::of::<N>()).cloned();
        found.unwrap_or_else(|| {
            let mut feeds = self.feeds.write().unwrap_or_else(PoisonError::into_inner);
            feeds.entry(TypeId::of::<N>()).or_insert_with(|| Arc::new(FeedOf::<N>::default())).clone()
        })
    }

    pub(super) fn feed<N: Notice>(&self) -> FeedHandle<N> {
        FeedHandle { channel: self.channel::<N>(), _notice: std::marker::PhantomData }
    }

    pub(super) fn observe<N: Notice>(&self, observer: Arc<dyn Observer<N>>) {
        if self.feed::<N>().of().observer.set(observer).is_err() {
            tracing::error!(feed = N::FEED, "a second observer was refused");
        }
    }

    /// The observer first, so nothing is served from what a subscriber already knows is gone.
    pub(super) fn deliver<E: Event>(&self, event: E) {
        let feed = self.feed::<E::Notice>();
        let notice = event.into_notice();
        if let Some(observer) = feed.of().observer.get() {
            observer.notice(&notice);
        }
        feed.of().feed.deliver(notice);
    }

    /// Tells the observer of an event this instance published, without delivering it: on
    /// PostgreSQL its delivery comes later, through the listener, and the next request on
    /// this instance must not wait for it.
    pub(super) fn observe_published<E: Event>(&self, event: &E) {
        let feed = self.feed::<E::Notice>();
        if let Some(observer) = feed.of().observer.get() {
            observer.notice(&event.clone().into_notice());
        }
    }

    /// A payload from the transport. False when it could not be read (a kind unknown here,
    /// from an instance of another version, perhaps): as good as lost.
    pub(super) fn receive(&self, payload: &str) -> bool {
        #[derive(Deserialize)]
        struct Kind<'a> {
            kind: &'a str,
        }
        let read = serde_json::from_str::<Kind>(payload)
            .map_err(|error| error.to_string())
            .and_then(|Kind { kind }| self.decoders.get(kind).ok_or_else(|| format!("unknown kind {kind}")))
            .and_then(|decode| decode(self, payload).map_err(|error| error.to_string()));
        if let Err(error) = &read {
            tracing::warn!(%error, "unreadable cluster event");
        }
        read.is_ok()
    }

    fn channels(&self) -> Vec<Arc<dyn Channel>> {
        self.feeds.read().unwrap_or_else(PoisonError::into_inner).values().cloned().collect()
    }

    /// Every subscriber of every feed and route re-reads its state.
    pub(super) fn resync(&self) {
        self.channels().iter().for_each(|channel| channel.resync());
    }

    pub(super) fn unsure(&self) {
        self.channels().iter().for_each(|channel| channel.unsure());
    }

    pub(super) fn listeners(&self) -> Vec<(&'static str, usize)> {
        let mut listeners: Vec<_> =
            self.channels().iter().map(|channel| (channel.name(), channel.receivers())).collect();
        listeners.sort_unstable();
        listeners
    }
}

/// One feed, typed again.
pub(super) struct FeedHandle<N> {
    channel: Arc<dyn Channel>,
    _notice: std::marker::PhantomData<N>,
}

impl<N: Notice> FeedHandle<N> {
    fn of(&self) -> &FeedOf<N> {
        self.channel.as_any().downcast_ref().expect("a feed is stored under its notice's type")
    }

    pub(super) fn subscribe(&self, route: Route) -> Subscription<N> {
        self.of().feed.subscribe(route)
    }

    pub(super) fn mark(&self) -> Mark {
        self.of().feed.mark()
    }

    pub(super) fn subscribe_since(&self, route: Route, mark: Mark) -> (Subscription<N>, bool) {
        self.of().feed.subscribe_since(route, mark)
    }
}

#[cfg(test)]
mod tests {
    use serde::Serialize;

    use super::*;
    use crate::events::{Buffers, Delivery, Routed, event::payload};

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct Rang {
        organization_id: i64,
        times: u32,
    }

    impl Event for Rang {
        const KIND: &'static str = "rang";
        type Notice = Rang;

        fn into_notice(self) -> Rang {
            self
        }
    }

    impl Notice for Rang {
        const FEED: &'static str = "bells";
        const BUFFERS: Buffers = Buffers { organization: 4, agent: 1 };
    }

    impl Routed for Rang {
        fn routes(&self) -> impl Iterator<Item = Route> + '_ {
            std::iter::once(Route::Organization(self.organization_id))
        }
    }

    #[test]
    fn a_registered_kind_crosses_the_wire_to_its_feed() {
        let hub = Hub::new(Kinds::default().with::<Rang>());
        assert_eq!(hub.listeners(), [("bells", 0)], "the feed exists before anyone subscribes");
        let mut ours = hub.feed::<Rang>().subscribe(Route::Organization(1));
        let mut theirs = hub.feed::<Rang>().subscribe(Route::Organization(2));
        let sent = Rang { organization_id: 1, times: 3 };
        assert!(hub.receive(&payload(&sent).unwrap()));
        match ours.try_recv() {
            Ok(Delivery::Event(received)) => assert_eq!(*received, sent),
            _ => panic!("the event did not arrive"),
        }
        assert!(theirs.try_recv().is_err(), "another organization heard it");
    }

    #[test]
    fn an_unknown_or_malformed_payload_is_refused() {
        let hub = Hub::new(Kinds::default().with::<Rang>());
        assert!(!hub.receive(r#"{"kind":"thunder","organization_id":1}"#));
        assert!(!hub.receive(r#"{"kind":"rang","organization_id":"one"}"#));
        assert!(!hub.receive("not json"));
    }
}
