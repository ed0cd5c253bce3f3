//! Parsed documents by query text. Clients send the same few documents again and again (the
//! Agents page its page query), and parsing one was 4% of the page's instructions; a hit
//! costs a hash of the text and a copy of the document (async-graphql takes it by value).
//! Documents that do not parse are not kept: `execute` parses them again to report why. The
//! subscriptions of `/graphql/ws` share them too, for as long as each runs.

use std::{num::NonZeroUsize, sync::Arc};

use async_graphql::{Request, parser::types::ExecutableDocument};

use super::bounded::BoundedLru;

/// At most this many documents are kept…
const MAX_ENTRIES: NonZeroUsize = NonZeroUsize::new(1024).expect("not zero");
/// …and at most this many bytes of query text in all (a parsed document takes a few times
/// its text).
const MAX_BYTES: usize = 4 * 1024 * 1024;

pub struct ParsedDocuments(BoundedLru<Arc<str>, Arc<ExecutableDocument>>);

impl Default for ParsedDocuments {
    fn default() -> Self {
        Self(BoundedLru::new(MAX_ENTRIES, MAX_BYTES))
    }
}

impl ParsedDocuments {
    /// Gives `request` its parsed document, from the store or parsed now; the document too,
    /// or None when the query does not parse.
    pub fn parse(&self, request: &mut Request) -> Option<Arc<ExecutableDocument>> {
        if let Some(document) = self.0.get(request.query.as_str()) {
            request.set_parsed_query(ExecutableDocument::clone(&document));
            return Some(document);
        }
        let document = Arc::new(request.parsed_query().ok()?.clone());
        self.0.insert(Arc::from(request.query.as_str()), document.clone(), request.query.len());
        Some(document)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_is_parsed_once_and_one_that_does_not_parse_is_not_kept() {
        let documents = ParsedDocuments::default();
        let first = documents.parse(&mut Request::new("{ viewer { id } }")).unwrap();
        let mut again = Request::new("{ viewer { id } }");
        let second = documents.parse(&mut again).unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        assert!(again.parsed_query().is_ok());
        assert!(documents.parse(&mut Request::new("{ viewer {")).is_none());
        assert_eq!(documents.0.bytes(), "{ viewer { id } }".len());
    }
}
