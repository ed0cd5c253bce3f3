//! Response keys in the order the query selects them, as the GraphQL specification requires
//! ("ordered by the order in which they appear in the query").
//!
//! async-graphql 7.2 resolves an object's fields concurrently and inserts each value when its
//! future finishes (`do_resolve_container` drains a `FuturesUnordered`), so a field that waits
//! on the database (`totalCount`) lands after one that does not (`nodes`), or before it,
//! depending on timing. This puts every object of a response back in selection order.

use async_graphql::{
    Name, Response, Value,
    parser::types::{ExecutableDocument, Selection, SelectionSet},
};

use super::operation_that_runs;

/// Reorders `response.data` to the selections of the operation of `document` that ran.
pub fn in_selection_order(
    response: &mut Response,
    document: &ExecutableDocument,
    operation_name: Option<&str>,
) {
    // A request that failed before execution has no data to order.
    if !matches!(response.data, Value::Object(_)) {
        return;
    }
    if let Some(operation) = operation_that_runs(document, operation_name) {
        let mut plan = Plan::of(&[&operation.node.selection_set.node], document);
        plan.apply(&mut response.data, document);
    }
}

/// The response keys one field's objects have, in order, each with the selection sets of the
/// fields under it (every field sharing a response key, merged as execution merges them).
/// Built once per field of the query and used for every object of a list, on the first object
/// that has the key: a page of 50 agents is walked, not analysed 50 times. Lists, linear search:
/// an object has a handful of keys, and hashing each would cost more.
struct Plan<'a> {
    keys: Vec<&'a Name>,
    sets: Vec<Vec<&'a SelectionSet>>,
    children: Vec<Option<Plan<'a>>>,
}

impl<'a> Plan<'a> {
    fn of(sets: &[&'a SelectionSet], document: &'a ExecutableDocument) -> Self {
        let mut plan = Plan { keys: vec![], sets: vec![], children: vec![] };
        for set in sets {
            plan.collect(set, document, &mut vec![]);
        }
        plan.children.resize_with(plan.keys.len(), || None);
        plan
    }

    /// Adds the keys of `set`, fragments expanded in place. `expanding` holds the fragments
    /// being expanded: a cycle (which validation refuses, so whose response has no data) is
    /// not followed round.
    fn collect(
        &mut self,
        set: &'a SelectionSet,
        document: &'a ExecutableDocument,
        expanding: &mut Vec<&'a Name>,
    ) {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    let key = &field.node.response_key().node;
                    let index = self.position(key).unwrap_or_else(|| {
                        self.keys.push(key);
                        self.sets.push(vec![]);
                        self.keys.len() - 1
                    });
                    if !field.node.selection_set.node.items.is_empty() {
                        self.sets[index].push(&field.node.selection_set.node);
                    }
                }
                Selection::FragmentSpread(spread) => {
                    let name = &spread.node.fragment_name.node;
                    if let Some(fragment) = document.fragments.get(name)
                        && !expanding.contains(&name)
                    {
                        expanding.push(name);
                        self.collect(&fragment.node.selection_set.node, document, expanding);
                        expanding.pop();
                    }
                }
                Selection::InlineFragment(inline) => {
                    self.collect(&inline.node.selection_set.node, document, expanding)
                }
            }
        }
    }

    fn position(&self, key: &Name) -> Option<usize> {
        self.keys.iter().position(|known| *known == key)
    }

    /// Puts the keys of `value` (an object, or a list of them at any depth) in plan order.
    fn apply(&mut self, value: &mut Value, document: &'a ExecutableDocument) {
        match value {
            Value::List(items) => items.iter_mut().for_each(|item| self.apply(item, document)),
            Value::Object(fields) => {
                // Fragments on other types name keys this object does not have: those are
                // skipped. Only fields that waited can be out of place, so this is rarely true.
                let mut next = 0;
                let in_order = fields.keys().all(|key| {
                    let found = self.keys[next..].iter().position(|known| *known == key);
                    found.map(|offset| next += offset + 1).is_some()
                });
                if !in_order {
                    let mut unordered = std::mem::take(fields);
                    for key in &self.keys {
                        if let Some((key, value)) = unordered.swap_remove_entry(*key) {
                            fields.insert(key, value);
                        }
                    }
                    // None is expected; kept rather than lost should a key come from elsewhere.
                    fields.extend(unordered);
                }
                for (key, field) in fields.iter_mut() {
                    if !matches!(field, Value::Object(_) | Value::List(_)) {
                        continue;
                    }
                    let Some(index) = self.position(key) else { continue };
                    if self.sets[index].is_empty() {
                        continue;
                    }
                    let child =
                        self.children[index].get_or_insert_with(|| Plan::of(&self.sets[index], document));
                    child.apply(field, document);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_query;
    use serde_json::json;

    use super::*;

    fn keys(value: &Value) -> Vec<String> {
        match value {
            Value::Object(fields) => fields.keys().map(ToString::to_string).collect(),
            _ => vec![],
        }
    }

    #[test]
    fn objects_take_the_order_of_their_selections_through_lists_aliases_and_fragments() {
        let document = parse_query(
            "query Q { a { z ...F list { y x } } b: c }
             fragment F on T { ... on T { w } z2: z }",
        )
        .unwrap();
        let data = json!({
            "b": 1,
            "a": { "list": [{ "x": 1, "y": 2 }, { "x": 3, "y": 4 }], "z2": 0, "w": 0, "z": 0 },
        });
        let mut response = Response::new(Value::from_json(data).unwrap());
        in_selection_order(&mut response, &document, None);
        assert_eq!(keys(&response.data), ["a", "b"]);
        let Value::Object(root) = &response.data else { panic!() };
        assert_eq!(keys(&root["a"]), ["z", "w", "z2", "list"]);
        let Value::Object(a) = &root["a"] else { panic!() };
        let Value::List(list) = &a["list"] else { panic!() };
        assert!(list.iter().all(|item| keys(item) == ["y", "x"]));
    }

    #[test]
    fn a_fragment_cycle_is_not_followed_round() {
        let document =
            parse_query("{ a { ...F } } fragment F on T { b ...G } fragment G on T { ...F c }").unwrap();
        let mut response = Response::new(Value::from_json(json!({ "a": { "c": 1, "b": 2 } })).unwrap());
        in_selection_order(&mut response, &document, None);
        let Value::Object(root) = &response.data else { panic!() };
        assert_eq!(keys(&root["a"]), ["b", "c"]);
    }
}
