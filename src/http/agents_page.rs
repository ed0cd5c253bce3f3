//! The Agents page at `/agents`: static files compiled into the binary, built on the public
//! GraphQL API only (`/graphql`, `/graphql/ws`). Only the files listed here are served.

use axum::{
    extract::Path,
    http::{
        HeaderValue, StatusCode,
        header::{
            CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
        },
    },
    response::{IntoResponse, Response},
};

use super::embedded::{self, CSS, Embedded, HTML, JAVASCRIPT, MARKDOWN};

/// Scripts, styles and connections from this origin only (no inline script or style, no CDN);
/// `ws:`/`wss:` for `/graphql/ws`, since older browsers do not count them as `'self'`.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; form-action 'self'; \
                   frame-ancestors 'none'";

/// Every asset, by its path under `/agents/`.
const ASSETS: &[Embedded] = &[
    Embedded::new("app.css", CSS, include_bytes!("agents_page/app.css")),
    Embedded::new("main.js", JAVASCRIPT, include_bytes!("agents_page/main.js")),
    Embedded::new("api.js", JAVASCRIPT, include_bytes!("agents_page/api.js")),
    Embedded::new("live.js", JAVASCRIPT, include_bytes!("agents_page/live.js")),
    Embedded::new("directory.js", JAVASCRIPT, include_bytes!("agents_page/directory.js")),
    Embedded::new("dialogs.js", JAVASCRIPT, include_bytes!("agents_page/dialogs.js")),
    Embedded::new("menu.js", JAVASCRIPT, include_bytes!("agents_page/menu.js")),
    Embedded::new("usage.js", JAVASCRIPT, include_bytes!("agents_page/usage.js")),
    Embedded::new(
        "vendor/graphql-ws/client.js",
        JAVASCRIPT,
        include_bytes!("agents_page/vendor/graphql-ws/client.js"),
    ),
    Embedded::new(
        "vendor/graphql-ws/common-CGW11Fyb.js",
        JAVASCRIPT,
        include_bytes!("agents_page/vendor/graphql-ws/common-CGW11Fyb.js"),
    ),
    Embedded::new(
        "vendor/graphql-ws/LICENSE.md",
        MARKDOWN,
        include_bytes!("agents_page/vendor/graphql-ws/LICENSE.md"),
    ),
];

/// `GET /agents`: the page itself.
pub(super) async fn index() -> Response {
    file(HTML, include_bytes!("agents_page/index.html"))
}

/// `GET /agents/<asset>`: one of [`ASSETS`], otherwise 404.
pub(super) async fn asset(Path(path): Path<String>) -> Response {
    match embedded::find(ASSETS, &path) {
        Some(asset) => file(asset.content_type, asset.bytes),
        None => (StatusCode::NOT_FOUND, "Not found").into_response(),
    }
}

/// Revalidated on every load (the files change with the binary and carry no version in
/// their names), so a new release is picked up at once.
fn file(content_type: &'static str, body: &'static [u8]) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}
