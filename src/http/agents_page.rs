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

/// Scripts, styles and connections from this origin only (no inline script or style, no CDN);
/// `ws:`/`wss:` for `/graphql/ws`, since older browsers do not count them as `'self'`.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; form-action 'self'; \
                   frame-ancestors 'none'";

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const TEXT: &str = "text/markdown; charset=utf-8";

/// Every asset: its path under `/agents/`, its content type and its bytes.
const ASSETS: &[(&str, &str, &str)] = &[
    ("app.css", CSS, include_str!("agents_page/app.css")),
    ("main.js", JS, include_str!("agents_page/main.js")),
    ("api.js", JS, include_str!("agents_page/api.js")),
    ("live.js", JS, include_str!("agents_page/live.js")),
    ("directory.js", JS, include_str!("agents_page/directory.js")),
    ("dialogs.js", JS, include_str!("agents_page/dialogs.js")),
    ("menu.js", JS, include_str!("agents_page/menu.js")),
    ("usage.js", JS, include_str!("agents_page/usage.js")),
    ("vendor/graphql-ws/client.js", JS, include_str!("agents_page/vendor/graphql-ws/client.js")),
    (
        "vendor/graphql-ws/common-CGW11Fyb.js",
        JS,
        include_str!("agents_page/vendor/graphql-ws/common-CGW11Fyb.js"),
    ),
    ("vendor/graphql-ws/LICENSE.md", TEXT, include_str!("agents_page/vendor/graphql-ws/LICENSE.md")),
];

/// `GET /agents`: the page itself.
pub(super) async fn index() -> Response {
    file(HTML, include_str!("agents_page/index.html"))
}

/// `GET /agents/<asset>`: one of [`ASSETS`], otherwise 404.
pub(super) async fn asset(Path(path): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == path) {
        Some((_, content_type, body)) => file(content_type, body),
        None => (StatusCode::NOT_FOUND, "Not found").into_response(),
    }
}

/// Revalidated on every load (the files change with the binary and carry no version in
/// their names), so a new release is picked up at once.
fn file(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}
