//! What a resolver may read from its context: the shared application state and, per request,
//! the viewer and what its resolvers share (the DataLoaders made for that viewer). Tenancy
//! enters here once: services get the viewer explicitly from this.

use std::{
    any::{Any, TypeId},
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex, PoisonError},
};

use async_graphql::Context;

use super::error::ApiError;
use crate::{state::AppState, viewer::Viewer};

type Shared = HashMap<TypeId, Arc<dyn Any + Send + Sync>>;

/// Per-request data, inserted by the HTTP and WebSocket handlers.
#[derive(Clone)]
pub struct RequestContext {
    pub viewer: Option<Viewer>,
    /// The peer of the connection, for the audit log; None where the transport does not say.
    pub client_address: Option<IpAddr>,
    /// Made on first use and shared by the request's resolvers (a socket's operations), one
    /// of each type: the DataLoaders each capability batches its reads with. Keyed by type
    /// so that this kit needs to know no capability.
    shared: Arc<Mutex<Shared>>,
}

impl RequestContext {
    pub fn new(viewer: Option<Viewer>) -> Self {
        Self { viewer, client_address: None, shared: Arc::default() }
    }

    pub fn with_client_address(mut self, address: IpAddr) -> Self {
        self.client_address = Some(address);
        self
    }

    /// The signed-in viewer, or `UNAUTHENTICATED`.
    pub fn viewer(&self) -> async_graphql::Result<&Viewer> {
        self.viewer.as_ref().ok_or_else(|| ApiError::Unauthenticated.into_graphql())
    }

    /// This request's `T`, made by `make` the first time it is asked for.
    pub fn shared<T: Any + Send + Sync>(&self, make: impl FnOnce() -> T) -> Arc<T> {
        let mut shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = shared.get(&TypeId::of::<T>()).and_then(|found| found.clone().downcast().ok()) {
            return found;
        }
        let made = Arc::new(make());
        shared.insert(TypeId::of::<T>(), made.clone());
        made
    }
}

pub trait ContextExt {
    fn app(&self) -> &AppState;
    fn maybe_viewer(&self) -> Option<&Viewer>;
    /// The signed-in viewer, or `UNAUTHENTICATED`.
    fn viewer(&self) -> async_graphql::Result<&Viewer>;
    /// This request's own context (absent only when a transport forgot to insert it).
    fn request(&self) -> async_graphql::Result<&RequestContext>;
    /// Where the request came from, for the audit log.
    fn client_address(&self) -> Option<IpAddr>;
}

impl ContextExt for Context<'_> {
    fn app(&self) -> &AppState {
        self.data_unchecked::<AppState>()
    }

    fn maybe_viewer(&self) -> Option<&Viewer> {
        self.data_opt::<RequestContext>().and_then(|request| request.viewer.as_ref())
    }

    fn viewer(&self) -> async_graphql::Result<&Viewer> {
        self.maybe_viewer().ok_or_else(|| ApiError::Unauthenticated.into_graphql())
    }

    fn request(&self) -> async_graphql::Result<&RequestContext> {
        self.data_opt::<RequestContext>().ok_or_else(|| ApiError::Unauthenticated.into_graphql())
    }

    fn client_address(&self) -> Option<IpAddr> {
        self.data_opt::<RequestContext>().and_then(|request| request.client_address)
    }
}
