//! GraphiQL at `/`, with every script and style it loads served from the binary itself, so the
//! page works without internet access. The files in `graphiql/` are the npm packages' own
//! production builds, at the versions `clients/package-lock.json` pins (with their licences);
//! their names carry the version, so a browser may keep them for good.

use axum::{
    extract::Path,
    http::{
        StatusCode,
        header::{CACHE_CONTROL, CONTENT_TYPE},
    },
    response::{Html, IntoResponse, Response},
};

use super::embedded::{self, CSS, Embedded, JAVASCRIPT};

/// Where the page finds its assets; `index.html` spells out the same.
pub(super) const ASSETS: &str = "/graphiql/assets/{name}";

/// Every asset, by its name under `/graphiql/assets/`.
const FILES: &[Embedded] = &[
    Embedded::new(
        "react-18.3.1.production.min.js",
        JAVASCRIPT,
        include_bytes!("graphiql/react-18.3.1.production.min.js"),
    ),
    Embedded::new(
        "react-dom-18.3.1.production.min.js",
        JAVASCRIPT,
        include_bytes!("graphiql/react-dom-18.3.1.production.min.js"),
    ),
    Embedded::new("graphiql-4.1.2.min.js", JAVASCRIPT, include_bytes!("graphiql/graphiql-4.1.2.min.js")),
    Embedded::new("graphiql-4.1.2.min.css", CSS, include_bytes!("graphiql/graphiql-4.1.2.min.css")),
    Embedded::new("graphql-ws-6.4.2.min.js", JAVASCRIPT, include_bytes!("graphiql/graphql-ws-6.4.2.min.js")),
];

/// GraphiQL, wired to `/graphql` and `/graphql/ws`.
pub(super) async fn page() -> Html<&'static str> {
    Html(include_str!("graphiql/index.html"))
}

/// One of `FILES`, cached for a year: a new version comes under a new name.
pub(super) async fn asset(Path(name): Path<String>) -> Response {
    match embedded::find(FILES, &name) {
        Some(file) => (
            [(CONTENT_TYPE, file.content_type), (CACHE_CONTROL, "public, max-age=31536000, immutable")],
            file.bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "No such GraphiQL asset.").into_response(),
    }
}

#[cfg(test)]
mod tests {
    /// Every asset the page names is served, and the page names no other origin.
    #[test]
    fn the_page_loads_only_its_own_assets() {
        let page = include_str!("graphiql/index.html");
        for file in super::FILES {
            let name = file.name;
            assert!(page.contains(&format!("/graphiql/assets/{name}")), "{name} is not on the page");
        }
        for attribute in ["src=\"", "href=\""] {
            for (at, _) in page.match_indices(attribute) {
                let url = &page[at + attribute.len()..];
                assert!(
                    url.starts_with("/graphiql/assets/"),
                    "{}",
                    &url[..url.find('"').unwrap_or(url.len())]
                );
            }
        }
    }
}
