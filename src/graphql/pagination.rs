//! Relay connection arguments to keyset page requests, and opaque cursors.
//!
//! A cursor is base64url of `sort|key|id`. It names the sort it was made for, so a cursor from
//! a listing in another order is refused rather than silently giving a wrong page.

use async_graphql::{
    Context, ObjectType, OutputType,
    connection::{Connection, Edge},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use super::ApiError;
use crate::db::page::{Cursor, Page, PageRequest};

pub const DEFAULT_PAGE_SIZE: usize = 50;
pub const MAX_PAGE_SIZE: usize = 200;

pub fn encode_cursor(sort: &str, cursor: &Cursor) -> String {
    URL_SAFE_NO_PAD.encode(format!("{sort}|{}|{}", cursor.id, cursor.key))
}

fn decode_cursor(sort: &str, raw: &str) -> Result<Cursor, ApiError> {
    let invalid = || ApiError::BadRequest(format!("`{raw}` is not a cursor of this listing."));
    let text =
        String::from_utf8(URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?).map_err(|_| invalid())?;
    let mut parts = text.splitn(3, '|');
    let (Some(tag), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid());
    };
    if tag != sort {
        return Err(ApiError::BadRequest(format!(
            "This cursor was made for another order ({tag}); start again without `after`/`before`."
        )));
    }
    Ok(Cursor { key: key.to_owned(), id: id.parse().map_err(|_| invalid())? })
}

/// The page that `first`/`after` or `last`/`before` ask for.
pub fn page_request(
    sort: &str,
    after: Option<String>,
    before: Option<String>,
    first: Option<i32>,
    last: Option<i32>,
) -> async_graphql::Result<PageRequest> {
    let size = |name: &str, value: i32| -> Result<u64, ApiError> {
        if value < 0 || value as usize > MAX_PAGE_SIZE {
            return Err(ApiError::BadRequest(format!("`{name}` must be between 0 and {MAX_PAGE_SIZE}.")));
        }
        Ok(value as u64)
    };
    let request = (|| {
        let (limit, from_end) = match (first, last) {
            (Some(_), Some(_)) => {
                return Err(ApiError::BadRequest("Give `first` or `last`, not both.".into()));
            }
            (Some(first), None) => (size("first", first)?, false),
            (None, Some(last)) => (size("last", last)?, true),
            (None, None) => (DEFAULT_PAGE_SIZE as u64, before.is_some() && after.is_none()),
        };
        Ok(PageRequest {
            after: after.as_deref().map(|raw| decode_cursor(sort, raw)).transpose()?,
            before: before.as_deref().map(|raw| decode_cursor(sort, raw)).transpose()?,
            limit,
            from_end,
        })
    })();
    request.map_err(ApiError::into_graphql)
}

/// Whether the connection field `ctx` resolves shows any cursor (`edges { cursor }`,
/// `pageInfo { startCursor endCursor }`). When none is shown the cursors need not be built:
/// an agents page without them saved one key, one string and one base64 encoding per row.
pub fn cursors_selected(ctx: &Context<'_>) -> bool {
    let look_ahead = ctx.look_ahead();
    let page_info = look_ahead.field("pageInfo");
    look_ahead.field("edges").field("cursor").exists()
        || page_info.field("startCursor").exists()
        || page_info.field("endCursor").exists()
}

/// Complexity of a connection field: its children counted once per row it may return.
pub fn connection_complexity(first: Option<i32>, last: Option<i32>, child_complexity: usize) -> usize {
    let rows = first.or(last).map_or(DEFAULT_PAGE_SIZE, |n| n.clamp(0, MAX_PAGE_SIZE as i32) as usize);
    rows.max(1).saturating_mul(child_complexity).saturating_add(1)
}

/// `hasPreviousPage` and `hasNextPage` of a page read as `request` asked.
fn page_flags(request: &PageRequest, has_more: bool) -> (bool, bool) {
    if request.from_end { (has_more, request.before.is_some()) } else { (request.after.is_some(), has_more) }
}

/// A page read as `request` asked, as a Relay connection: `edge` gives each row's cursor and
/// node, `fields` the connection's own fields (such as `totalCount`).
pub fn connection<Row, Node: OutputType, Fields: ObjectType>(
    request: &PageRequest,
    page: Page<Row>,
    fields: Fields,
    edge: impl FnMut(Row) -> (String, Node),
) -> Connection<String, Node, Fields> {
    let (has_previous, has_next) = page_flags(request, page.has_more);
    let mut connection = Connection::with_additional_fields(has_previous, has_next, fields);
    connection.edges.extend(page.items.into_iter().map(edge).map(|(cursor, node)| Edge::new(cursor, node)));
    connection
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_name_their_order() {
        let cursor = Cursor { key: "ana|b".into(), id: 7 };
        let encoded = encode_cursor("NAME", &cursor);
        assert_eq!(decode_cursor("NAME", &encoded).unwrap(), cursor);
        assert!(decode_cursor("USERNAME", &encoded).is_err());
        assert!(decode_cursor("NAME", "garbage!").is_err());
    }

    #[test]
    fn page_sizes_are_bounded() {
        assert!(page_request("NAME", None, None, Some(201), None).is_err());
        assert!(page_request("NAME", None, None, Some(-1), None).is_err());
        assert!(page_request("NAME", None, None, Some(1), Some(1)).is_err());
        assert_eq!(page_request("NAME", None, None, None, None).unwrap().limit, 50);
        assert!(page_request("NAME", None, None, None, Some(5)).unwrap().from_end);
    }
}
