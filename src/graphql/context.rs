//! What a resolver may read from its context: the shared application state and, per request,
//! the viewer and the DataLoaders made for that viewer. Tenancy enters here once: services
//! get the viewer explicitly from this.

use std::{net::IpAddr, sync::Arc};

use async_graphql::Context;

use super::error::ApiError;
use crate::{app::AppState, auth::Viewer, directory::loaders::DirectoryLoaders};

/// Per-request data, inserted by the HTTP and WebSocket handlers.
#[derive(Clone)]
pub struct RequestContext {
    pub viewer: Option<Viewer>,
    /// The peer of the connection, for the audit log; None where the transport does not say.
    pub client_address: Option<IpAddr>,
    directory: Option<Arc<DirectoryLoaders>>,
}

impl RequestContext {
    pub fn new(app: &AppState, viewer: Option<Viewer>) -> Self {
        let directory = viewer.as_ref().map(|viewer| Arc::new(DirectoryLoaders::new(&app.db, viewer)));
        Self { viewer, client_address: None, directory }
    }

    pub fn with_client_address(mut self, address: IpAddr) -> Self {
        self.client_address = Some(address);
        self
    }

    /// The signed-in viewer, or `UNAUTHENTICATED`.
    pub fn viewer(&self) -> async_graphql::Result<&Viewer> {
        self.viewer.as_ref().ok_or_else(|| ApiError::Unauthenticated.into_graphql())
    }

    pub fn directory_loaders(&self) -> async_graphql::Result<&DirectoryLoaders> {
        self.directory.as_deref().ok_or_else(|| ApiError::Unauthenticated.into_graphql())
    }
}

pub trait ContextExt {
    fn app(&self) -> &AppState;
    fn maybe_viewer(&self) -> Option<&Viewer>;
    /// The signed-in viewer, or `UNAUTHENTICATED`.
    fn viewer(&self) -> async_graphql::Result<&Viewer>;
    fn directory_loaders(&self) -> async_graphql::Result<&DirectoryLoaders>;
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

    fn directory_loaders(&self) -> async_graphql::Result<&DirectoryLoaders> {
        self.request()?.directory_loaders()
    }

    fn request(&self) -> async_graphql::Result<&RequestContext> {
        self.data_opt::<RequestContext>().ok_or_else(|| ApiError::Unauthenticated.into_graphql())
    }

    fn client_address(&self) -> Option<IpAddr> {
        self.data_opt::<RequestContext>().and_then(|request| request.client_address)
    }
}
