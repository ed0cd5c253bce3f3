//! What a resolver may read from its context: the shared application state and, per request,
//! the viewer and the DataLoaders made for that viewer. Tenancy enters here once: services
//! get the viewer explicitly from this.

use std::sync::Arc;

use async_graphql::Context;

use super::error::ApiError;
use crate::{app::AppState, auth::Viewer, directory::loaders::DirectoryLoaders};

/// Per-request data, inserted by the HTTP and WebSocket handlers.
#[derive(Clone)]
pub struct RequestContext {
    pub viewer: Option<Viewer>,
    directory: Option<Arc<DirectoryLoaders>>,
}

impl RequestContext {
    pub fn new(app: &AppState, viewer: Option<Viewer>) -> Self {
        let directory = viewer.as_ref().map(|viewer| Arc::new(DirectoryLoaders::new(&app.db, viewer)));
        Self { viewer, directory }
    }
}

pub trait ContextExt {
    fn app(&self) -> &AppState;
    fn maybe_viewer(&self) -> Option<&Viewer>;
    /// The signed-in viewer, or `UNAUTHENTICATED`.
    fn viewer(&self) -> async_graphql::Result<&Viewer>;
    fn directory_loaders(&self) -> async_graphql::Result<&DirectoryLoaders>;
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
        self.data_opt::<RequestContext>()
            .and_then(|request| request.directory.as_deref())
            .ok_or_else(|| ApiError::Unauthenticated.into_graphql())
    }
}
