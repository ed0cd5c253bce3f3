//! Automatic persisted queries, as Apollo's clients send them: a request may carry
//! `extensions.persistedQuery { version: 1, sha256Hash }` instead of its `query`. A hash the
//! server knows stands for its query; an unknown one is answered `PersistedQueryNotFound`, and
//! the client sends the hash again with the query, which registers it once the hash is checked
//! to be the query's SHA-256 (so no one can make a hash stand for another query).
//!
//! The store is in memory, per instance, and bounded in entries and in bytes; the least
//! recently used queries make room. Losing one costs a client one more round trip.
//!
//! Not async-graphql's `ApolloPersistedQueries` extension: it trusts the hash it is given, and
//! any extension sends every field through the extension chain (see `graphql::document`).

use std::{num::NonZeroUsize, sync::Arc};

use async_graphql::{Request, Value};
use sha2::{Digest, Sha256};

use crate::graphql::bounded::BoundedLru;

/// At most this many queries are kept…
const MAX_ENTRIES: NonZeroUsize = NonZeroUsize::new(4096).expect("not zero");
/// …and at most this many bytes of query text in all.
const MAX_BYTES: usize = 8 * 1024 * 1024;

/// The `extensions` key of a persisted query.
const EXTENSION: &str = "persistedQuery";

/// The message and `extensions.code` of an unknown hash, which Apollo's clients look for.
pub(crate) const NOT_FOUND_MESSAGE: &str = "PersistedQueryNotFound";
pub(crate) const NOT_FOUND_CODE: &str = "PERSISTED_QUERY_NOT_FOUND";

/// Queries by their SHA-256, counted by their length.
pub(crate) struct PersistedQueries(BoundedLru<[u8; 32], Arc<str>>);

/// What became of a request's persisted query.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The request has its query: it named none by hash, or the hash was known, or it came
    /// with the query and is now registered.
    Ready,
    /// A hash without a query that is not (or no longer) stored.
    NotFound,
}

impl PersistedQueries {
    pub(crate) fn new() -> Self {
        Self::with_bounds(MAX_ENTRIES, MAX_BYTES)
    }

    fn with_bounds(max_entries: NonZeroUsize, max_bytes: usize) -> Self {
        Self(BoundedLru::new(max_entries, max_bytes))
    }

    /// Fills in the query of a request that names it by hash, or registers the query a request
    /// brings with its hash. Err: the `persistedQuery` extension is malformed, or its hash is
    /// not the query's.
    pub(crate) fn resolve(&self, request: &mut Request) -> Result<Outcome, String> {
        let Some(extension) = request.extensions.get(EXTENSION) else { return Ok(Outcome::Ready) };
        let hash = read_extension(extension)?;
        if request.query.is_empty() {
            return Ok(match self.0.get(&hash) {
                Some(query) => {
                    request.query = query.to_string();
                    Outcome::Ready
                }
                None => Outcome::NotFound,
            });
        }
        if <[u8; 32]>::from(Sha256::digest(request.query.as_bytes())) != hash {
            return Err("The persistedQuery's sha256Hash is not the SHA-256 of the query.".to_owned());
        }
        self.0.insert(hash, Arc::from(request.query.as_str()), request.query.len());
        Ok(Outcome::Ready)
    }
}

/// The hash of `{ "version": 1, "sha256Hash": "<64 hex digits>" }`.
fn read_extension(extension: &Value) -> Result<[u8; 32], String> {
    let Value::Object(fields) = extension else {
        return Err("`extensions.persistedQuery` must be an object.".to_owned());
    };
    match fields.get("version") {
        Some(Value::Number(version)) if version.as_u64() == Some(1) => {}
        _ => return Err("Only version 1 of persisted queries is supported.".to_owned()),
    }
    let mut hash = [0; 32];
    match fields.get("sha256Hash") {
        Some(Value::String(text)) if hex::decode_to_slice(text, &mut hash).is_ok() => Ok(hash),
        _ => Err("`persistedQuery.sha256Hash` must be a SHA-256 in 64 hexadecimal digits.".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::{Name, Request, Value};
    use sha2::{Digest, Sha256};

    use super::*;

    fn persisted(query: &str, hash: &str) -> Request {
        let mut fields = async_graphql::indexmap::IndexMap::new();
        fields.insert(Name::new("version"), Value::from(1));
        fields.insert(Name::new("sha256Hash"), Value::from(hash));
        let mut request = Request::new(query);
        request.extensions.0.insert(EXTENSION.to_owned(), Value::Object(fields));
        request
    }

    fn hash(query: &str) -> String {
        hex::encode(Sha256::digest(query))
    }

    #[test]
    fn a_hash_stands_for_its_query_once_registered() {
        let store = PersistedQueries::new();
        let query = "{ viewer { id } }";
        assert_eq!(store.resolve(&mut persisted("", &hash(query))), Ok(Outcome::NotFound));
        assert_eq!(store.resolve(&mut persisted(query, &hash(query))), Ok(Outcome::Ready));
        let mut by_hash = persisted("", &hash(query).to_uppercase());
        assert_eq!(store.resolve(&mut by_hash), Ok(Outcome::Ready));
        assert_eq!(by_hash.query, query);
        // Without the extension, nothing changes.
        let mut plain = Request::new(query);
        assert_eq!(store.resolve(&mut plain), Ok(Outcome::Ready));
    }

    #[test]
    fn a_hash_of_another_query_or_a_malformed_extension_is_refused() {
        let store = PersistedQueries::new();
        let wrong = persisted("{ viewer { id } }", &hash("mutation { logout }"));
        assert!(store.resolve(&mut { wrong }).is_err());
        assert_eq!(store.resolve(&mut persisted("", &hash("mutation { logout }"))), Ok(Outcome::NotFound));
        for bad in ["", "abc", &"g".repeat(64), &"a".repeat(66)] {
            assert!(store.resolve(&mut persisted("", bad)).is_err(), "{bad}");
        }
        let mut no_version = Request::new("");
        no_version.extensions.0.insert(EXTENSION.to_owned(), Value::from("x"));
        assert!(store.resolve(&mut no_version).is_err());
    }

    #[test]
    fn the_least_recently_used_make_room_within_both_bounds() {
        let store = PersistedQueries::with_bounds(NonZeroUsize::new(3).unwrap(), 100);
        let queries: Vec<String> = (0..4).map(|i| format!("{{ a{i}: viewer {{ id }} }}")).collect();
        let known = |query: &str| store.resolve(&mut persisted("", &hash(query))) == Ok(Outcome::Ready);
        for query in &queries[..3] {
            store.resolve(&mut persisted(query, &hash(query))).unwrap();
        }
        assert!(known(&queries[0]), "used again, so the second is the oldest");
        store.resolve(&mut persisted(&queries[3], &hash(&queries[3]))).unwrap();
        assert!(!known(&queries[1]));
        assert!(known(&queries[0]) && known(&queries[2]) && known(&queries[3]));

        let long = format!("{{ viewer {{ id }} }}{}", " ".repeat(70));
        store.resolve(&mut persisted(&long, &hash(&long))).unwrap();
        assert!(known(&long));
        assert!(store.0.bytes() <= 100, "{}", store.0.bytes());
        let too_long = format!("{{ viewer {{ id }} }}{}", " ".repeat(100));
        assert_eq!(store.resolve(&mut persisted(&too_long, &hash(&too_long))), Ok(Outcome::Ready));
        assert!(!known(&too_long), "larger than the whole store: run, not kept");
    }
}
