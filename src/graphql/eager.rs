//! Objects answered in place. async-graphql resolves every field of an object as a boxed
//! future in a `FuturesUnordered`, which is what a field that waits on the database needs, and
//! a waste for the many that only read what the object holds: a page of 50 agents has
//! hundreds of those, and their futures, boxes and wake-ups were a third of the agents page's
//! instructions (BENCHMARKS.md). `Eager<T>` answers an object whose selected fields are all
//! ready (`ReadyFields`) by running T's own field resolvers one after the other, each polled
//! once: the same resolvers, guards and values, without the machinery. Any other selection
//! goes to async-graphql's own resolution of T, unchanged.
//!
//! What it does not do: run async-graphql extensions' per-field hooks (agentdesk registers
//! no extension: metrics and request rules sit outside the executor, see `http`), or custom
//! directives (a selection with any directive left after `@skip`/`@include` goes the usual
//! way).

use std::{
    borrow::Cow,
    ptr,
    sync::{Mutex, PoisonError},
};

use async_graphql::{
    ContainerType, ContextSelectionSet, Name, OutputType, Positioned, ServerResult, Value,
    indexmap::IndexMap,
    parser::types::{Field, Selection, SelectionSet},
    registry::Registry,
    resolver_utils::resolve_list,
};
use futures_util::FutureExt;

/// Which fields of an object resolve without waiting.
pub trait ReadyFields {
    /// Whether the field of this GraphQL name resolves from what `self` holds, with nothing
    /// to wait on (no database, DataLoader or lock). A field wrongly called ready is still
    /// answered right, only slower (and a debug build panics to say so).
    fn is_ready(&self, field: &str) -> bool;
}

/// `T` as GraphQL output, answered in place when it can be: the same type in the schema.
pub struct Eager<T>(pub T);

impl<T: OutputType + ContainerType + ReadyFields> OutputType for Eager<T> {
    fn type_name() -> Cow<'static, str> {
        T::type_name()
    }

    fn qualified_type_name() -> String {
        T::qualified_type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        T::create_type_info(registry)
    }

    async fn resolve(&self, ctx: &ContextSelectionSet<'_>, field: &Positioned<Field>) -> ServerResult<Value> {
        let mut fields = Vec::new();
        if collect_ready(ctx, &ctx.item.node, &self.0, &mut fields)
            && let Some(shape) = shape_of::<T>(ctx, &fields)
        {
            return Ok(resolve_in_place(ctx, &self.0, &fields, shape).await);
        }
        // Boxed so that this future stays small: lists of these are joined.
        Box::pin(self.0.resolve(ctx, field)).await
    }
}

/// A list of `Eager<T>`, answered in place when all its items can be: the selection is read
/// once for the whole list, and the items answered one after the other, where async-graphql's
/// `resolve_list` makes a future per item and joins them (a page's 50 agents each list their
/// queues: 100 futures and 50 joins for values already in hand).
pub struct EagerList<'a, T>(pub &'a [Eager<T>]);

impl<'a, T: OutputType + ContainerType + ReadyFields + 'a> OutputType for EagerList<'a, T> {
    fn type_name() -> Cow<'static, str> {
        <&[Eager<T>]>::type_name()
    }

    fn qualified_type_name() -> String {
        <&[Eager<T>]>::qualified_type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        <&[Eager<T>]>::create_type_info(registry)
    }

    async fn resolve(&self, ctx: &ContextSelectionSet<'_>, field: &Positioned<Field>) -> ServerResult<Value> {
        let Some(first) = self.0.first() else { return Ok(Value::List(vec![])) };
        let mut fields = Vec::new();
        let shape = if collect_ready(ctx, &ctx.item.node, &first.0, &mut fields)
            && self.0[1..].iter().all(|item| all_ready(&item.0, &fields))
        {
            shape_of::<T>(ctx, &fields)
        } else {
            None
        };
        let Some(shape) = shape else {
            return Box::pin(resolve_list(ctx, field, self.0, Some(self.0.len()))).await;
        };
        let mut values = Vec::with_capacity(self.0.len());
        for (index, item) in self.0.iter().enumerate() {
            values.push(resolve_in_place(&ctx.with_index(index), &item.0, &fields, shape.clone()).await);
        }
        Ok(Value::List(values))
    }
}

/// Whether every field of `fields` (found ready on another item of the list) is ready on `root`.
fn all_ready<T: ReadyFields>(root: &T, fields: &[&Positioned<Field>]) -> bool {
    fields.iter().all(|field| is_ready(root, &field.node))
}

/// Whether `field` of `root` resolves without waiting; `__typename` always does.
fn is_ready<T: ReadyFields>(root: &T, field: &Field) -> bool {
    let name = field.name.node.as_str();
    name == "__typename" || root.is_ready(name)
}

/// The fields `selection` asks of `root`, fragments flattened, into `fields`; false when one
/// is not ready, or the selection needs more than a flat walk (a fragment on another type, a
/// directive): async-graphql's resolution handles those.
fn collect_ready<'a, T: OutputType + ReadyFields>(
    ctx: &ContextSelectionSet<'a>,
    selection: &'a SelectionSet,
    root: &T,
    fields: &mut Vec<&'a Positioned<Field>>,
) -> bool {
    let on_this_type = |condition: &Name| condition.as_str() == T::type_name();
    selection.items.iter().all(|item| match &item.node {
        Selection::Field(field) => {
            let ready = field.node.directives.is_empty() && is_ready(root, &field.node);
            fields.push(field);
            ready
        }
        Selection::FragmentSpread(spread) => {
            let fragment = ctx.query_env.fragments.get(&spread.node.fragment_name.node);
            fragment.is_some_and(|fragment| {
                spread.node.directives.is_empty()
                    && fragment.node.directives.is_empty()
                    && on_this_type(&fragment.node.type_condition.node.on.node)
                    && collect_ready(ctx, &fragment.node.selection_set.node, root, fields)
            })
        }
        Selection::InlineFragment(fragment) => {
            fragment.node.directives.is_empty()
                && fragment
                    .node
                    .type_condition
                    .as_ref()
                    .is_none_or(|condition| on_this_type(&condition.node.on.node))
                && collect_ready(ctx, &fragment.node.selection_set.node, root, fields)
        }
    })
}

/// Whether no response key repeats: async-graphql merges repeated keys' selections, which a
/// flat walk does not.
fn keys_are_distinct(fields: &[&Positioned<Field>]) -> bool {
    fields.iter().enumerate().all(|(n, field)| {
        let key = field.node.response_key();
        fields[..n].iter().all(|earlier| earlier.node.response_key().node != key.node)
    })
}

/// The shapes of the objects answered in place during one execution: for each selection (by
/// address) and type answered, its response keys in order, as an object whose values are all
/// null. Each further object of a shape starts as a copy of it, where building it hashed every
/// key again (a page of 50 agents hashed 400; the copies cost 1.6% fewer instructions a page,
/// BENCHMARKS.md). Inserted into each execution's data by the HTTP handler: a selection's
/// address names it only while its document lives. Without it, objects are built key by key.
#[derive(Default)]
pub struct Shapes(Mutex<Vec<(ShapeKey, IndexMap<Name, Value>)>>);

type ShapeKey = (usize, Cow<'static, str>);

/// An object with the response keys of `fields` in order and null values; None when a key
/// repeats (async-graphql merges repeated keys' selections, which a flat walk does not).
fn shape_of<T: OutputType>(
    ctx: &ContextSelectionSet<'_>,
    fields: &[&Positioned<Field>],
) -> Option<IndexMap<Name, Value>> {
    let shapes = ctx.data_opt::<Shapes>();
    let key = (ptr::from_ref(ctx.item) as usize, T::type_name());
    if let Some(shapes) = shapes {
        let known = shapes.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, shape)) = known.iter().find(|(known, _)| *known == key) {
            return Some(shape.clone());
        }
    }
    if !keys_are_distinct(fields) {
        return None;
    }
    let shape: IndexMap<Name, Value> =
        fields.iter().map(|field| (field.node.response_key().node.clone(), Value::Null)).collect();
    if let Some(shapes) = shapes {
        shapes.0.lock().unwrap_or_else(PoisonError::into_inner).push((key, shape.clone()));
    }
    Some(shape)
}

/// The object's value, as async-graphql's container resolution builds it: a field that fails
/// is left out and its error recorded, and an object with no field left is null. `shape` holds
/// the fields' keys in order (`shape_of`).
async fn resolve_in_place<T: OutputType + ContainerType>(
    ctx: &ContextSelectionSet<'_>,
    root: &T,
    fields: &[&Positioned<Field>],
    mut shape: IndexMap<Name, Value>,
) -> Value {
    let mut failed = Vec::new();
    for (index, field) in fields.iter().enumerate() {
        let Some((_, slot)) = shape.get_index_mut(index) else { continue };
        if field.node.name.node == "__typename" {
            *slot = Value::String(root.introspection_type_name().into_owned());
            continue;
        }
        let ctx_field = ctx.with_field(field);
        let resolved = match root.resolve_field(&ctx_field).now_or_never() {
            Some(resolved) => resolved,
            None => {
                debug_assert!(
                    false,
                    "{}.{} is declared ready but waited",
                    T::type_name(),
                    field.node.name.node
                );
                // Its first run did nothing but read; run it again to the end.
                Box::pin(root.resolve_field(&ctx_field)).await
            }
        };
        match resolved {
            Ok(value) => {
                if let Some((_, slot)) = shape.get_index_mut(index) {
                    *slot = value.unwrap_or_default();
                }
            }
            Err(error) => {
                ctx.add_error(error);
                failed.push(index);
            }
        }
    }
    // Backwards, so that each index still names its field.
    for index in failed.into_iter().rev() {
        shape.shift_remove_index(index);
    }
    if shape.is_empty() { Value::Null } else { Value::Object(shape) }
}
