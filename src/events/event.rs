//! What the bus carries, as a capability declares it.

use serde::{Serialize, de::DeserializeOwned};

use super::routes::{Buffers, Routed};

/// A kind of fact one instance commits and every instance hears, declared by the capability
/// that owns it.
pub trait Event: Serialize + DeserializeOwned + Clone + Send + 'static {
    /// Its name on the wire (the payload's `kind`), unique among kinds.
    const KIND: &'static str;
    /// What local subscribers receive for it.
    type Notice: Notice;

    fn into_notice(self) -> Self::Notice;
}

/// What the local subscribers of one feed receive. Several kinds of event may share a feed
/// (a socket watches its session's revocations and permission changes as one stream).
pub trait Notice: Routed + Send + Sync + 'static {
    /// The feed's name in metrics (`agentdesk_event_listeners{feed}`).
    const FEED: &'static str;
    /// Events a route holds for its slowest subscriber.
    const BUFFERS: Buffers;
}

/// Told synchronously of every notice of one feed as this instance's bus delivers it (before
/// any subscriber hears it), and of every publication of one by this instance as it commits:
/// for state that must not outlive an event on this instance, such as the session cache.
pub trait Observer<N>: Send + Sync {
    fn notice(&self, notice: &N);
    /// Notices may have been lost; from now on none is.
    fn resync(&self);
    /// Notices may be being lost, until the next `resync`.
    fn unsure(&self);
}

/// An event as the transport carries it: its fields and its kind, which the receiver reads
/// first (`Hub::receive`).
pub(super) fn payload<E: Event>(event: &E) -> Result<String, serde_json::Error> {
    #[derive(Serialize)]
    struct Payload<'a, E> {
        kind: &'static str,
        #[serde(flatten)]
        event: &'a E,
    }
    serde_json::to_string(&Payload { kind: E::KIND, event })
}
