//! The direction of the arrows, enforced rather than remembered: reads every `crate::`,
//! `super::` and `self::` path in `src/` (re-exports included), resolves each to the file it
//! names, and fails on an import cycle between files, on a capability's model, service or
//! store importing upwards in the written order, and on the arrows `../shared/ARCHITECTURE.md`
//! forbids.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

/// Below the GraphQL tier (see [`is_graphql_tier`]) the capabilities' models, services and
/// stores form a chain, highest first: each may import only those after it, so the graph is
/// acyclic by construction. Where a lower one needs a higher one, it takes a callback or
/// publishes an event. `viewer` is no capability, but sits at the bottom of the chain: every
/// capability names who is asking.
const SERVICE_ORDER: &[&str] = &["directory", "routing", "presence", "auth", "audit", "viewer"];

/// Capabilities: folders of GraphQL types, rules and SQL for one part of the product.
const CAPABILITIES: &[&str] = &["audit", "auth", "directory", "presence", "routing"];

type Graph = BTreeMap<PathBuf, BTreeSet<PathBuf>>;

/// GraphQL types of one capability may name each other (an agent lists its queues, a queue
/// its agents): such a cycle may stay inside one `schema/` folder. Nothing else may.
#[test]
fn no_file_imports_itself_through_others() {
    let graph = file_graph();
    let within_one_schema = |component: &Vec<PathBuf>| {
        let folders: BTreeSet<_> = component.iter().filter_map(|file| file.parent()).collect();
        folders.len() == 1 && folders.iter().all(|folder| folder.ends_with("schema"))
    };
    let cycles: Vec<_> = strongly_connected(&graph)
        .into_iter()
        .filter(|component| component.len() > 1 && !within_one_schema(component))
        .collect();
    assert!(cycles.is_empty(), "import cycles between files: {cycles:#?}");
}

/// The GraphQL tier: each capability's GraphQL types and resolvers, and the DataLoaders,
/// which are GraphQL-request machinery. The GraphQL graph is a graph (an agent lists its
/// conversations, a conversation names its agent) and sits above every service, so this tier
/// may name other capabilities' GraphQL types and call any capability's service.
fn is_graphql_tier(file: &Path) -> bool {
    let relative = file.strip_prefix(src()).unwrap();
    relative.ends_with("schema.rs")
        || relative.iter().any(|segment| segment == "schema")
        || relative == Path::new("directory/loaders.rs")
}

#[test]
fn below_the_graphql_tier_capabilities_import_down_the_written_order() {
    for capability in CAPABILITIES {
        assert!(SERVICE_ORDER.contains(capability), "{capability} has no place in SERVICE_ORDER");
    }
    let place = |module: &str| SERVICE_ORDER.iter().position(|&listed| listed == module);
    let mut broken = Vec::new();
    for (from, targets) in file_graph() {
        let from_module = top_level(&from);
        let Some(from_place) = place(&from_module) else { continue };
        if is_graphql_tier(&from) {
            continue;
        }
        let shown = |file: &Path| file.strip_prefix(src()).unwrap().display().to_string();
        for to in targets {
            let to_module = top_level(&to);
            if is_graphql_tier(&to) {
                broken.push(format!("src/{} imports the GraphQL tier: src/{}", shown(&from), shown(&to)));
            } else if place(&to_module).is_some_and(|to_place| to_place < from_place) {
                broken.push(format!(
                    "src/{} imports src/{}, but {to_module} sits above {from_module} in SERVICE_ORDER",
                    shown(&from),
                    shown(&to)
                ));
            }
        }
    }
    assert!(broken.is_empty(), "imports that go up, below the GraphQL tier:\n{}", broken.join("\n"));
}

#[test]
fn the_forbidden_arrows_are_absent() {
    let graph = file_graph();
    let mut broken = Vec::new();
    for (from, targets) in &graph {
        let from_module = top_level(from);
        for to in targets {
            let to_module = top_level(to);
            let file = to.display().to_string();
            // Nothing below the start-up imports it; only the transport and start-up import
            // the assembled schema.
            if to_module == "app" && from_module != "main" {
                broken.push(format!("{} imports app", from.display()));
            }
            if to_module == "api" && !["api", "app", "http", "main"].contains(&from_module.as_str()) {
                broken.push(format!("{} imports the assembled schema ({file})", from.display()));
            }
            // The kit knows no capability: the viewer it carries lives below them.
            if from_module == "graphql" && CAPABILITIES.contains(&to_module.as_str()) {
                broken.push(format!("{} (the kit) imports {file}", from.display()));
            }
            // Stores and the database layer never call up into rules.
            let is_store = from.ends_with("store.rs") || from_module == "db";
            if is_store
                && (file.contains("/service") || file.ends_with("schema.rs") || file.contains("/schema/"))
            {
                broken.push(format!("{} (storage) imports {file}", from.display()));
            }
        }
    }
    // Services do not know GraphQL.
    for file in source_files() {
        let path = file.display().to_string();
        let is_service =
            path.ends_with("/service.rs") || path.contains("/service/") || path.ends_with("sessions.rs");
        if is_service && fs::read_to_string(&file).unwrap().contains("async_graphql") {
            broken.push(format!("{path} (a service) uses async_graphql"));
        }
    }
    assert!(broken.is_empty(), "forbidden arrows:\n{}", broken.join("\n"));
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn source_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(&src(), &mut found);
    found.sort();
    found
}

/// The module path of a file: `src/a/b.rs` and `src/a/b/mod.rs` are `[a, b]`.
fn module_of(file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src()).unwrap().with_extension("");
    let mut segments: Vec<String> = relative.iter().map(|s| s.to_string_lossy().into_owned()).collect();
    if matches!(segments.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        segments.pop();
    }
    segments
}

/// `src/<first segment>`, or the file's own name for `src/main.rs` and `src/lib.rs`.
fn top_level(file: &Path) -> String {
    let relative = file.strip_prefix(src()).unwrap();
    let first = relative.iter().next().unwrap().to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

/// The file that holds the longest prefix of `path` that is a module.
fn file_of(path: &[String]) -> Option<PathBuf> {
    (1..=path.len()).rev().find_map(|length| {
        let base = path[..length].iter().fold(src(), |dir, segment| dir.join(segment));
        let file = base.with_extension("rs");
        let module = base.join("mod.rs");
        [file, module].into_iter().find(|candidate| candidate.is_file())
    })
}

/// A module path, absolute, and whether it is named to re-export it.
type NamedPath = (Vec<String>, bool);

/// Every module path a file names.
fn paths_named(file: &Path) -> Vec<NamedPath> {
    let text = fs::read_to_string(file).unwrap();
    // A file's unit tests (at its end, by this crate's habit) are a module inside it: their
    // `super` is the file itself, and what they import is no arrow of the product.
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or_default();
    let text: String =
        text.lines().filter(|line| !line.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
    let here = module_of(file);
    let mut paths = Vec::new();
    // `use` trees, whole.
    let mut statements = text.split("use ");
    let mut before = statements.next().unwrap_or_default();
    for statement in statements {
        let reexport = before.trim_end().ends_with("pub");
        before = statement;
        let Some(end) = statement.find(';') else { continue };
        // Spaces only where they separate words (`Name as Alias`).
        let tree = statement[..end].split_whitespace().collect::<Vec<_>>().join(" ");
        let tree = ["::", "{", "}", ","].iter().fold(tree, |tree, mark| {
            tree.replace(&format!(" {mark}"), mark).replace(&format!("{mark} "), mark)
        });
        let anchored =
            tree.starts_with("crate::") || tree.starts_with("super::") || tree.starts_with("self::");
        // `use child::Item` (a re-export, mostly) names a module of this file's own.
        let first = tree.split("::").next().unwrap_or_default();
        let child = [here.as_slice(), &[first.to_owned()]].concat();
        let names_child = file_of(&child).is_some_and(|found| module_of(&found).len() > here.len());
        if anchored || names_child {
            let tree = if anchored { tree } else { format!("self::{tree}") };
            for leaf in expand(&tree) {
                paths.push((absolute(&here, &leaf), reexport));
            }
        }
    }
    // Paths written in place (`crate::auth::token::generate_password()`).
    for (index, _) in text.match_indices("crate::") {
        let rest = &text[index..];
        let path: String =
            rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
        paths.push((absolute(&here, &path), false));
    }
    paths
}

/// `a::{b, c::{d, e}}` → `a::b`, `a::c::d`, `a::c::e`.
fn expand(tree: &str) -> Vec<String> {
    let Some(open) = tree.find('{') else { return vec![tree.to_owned()] };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (index, character) in inner.char_indices() {
        match character {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|part| !part.is_empty())
        .flat_map(|part| expand(&format!("{prefix}{part}")))
        .collect()
}

/// A path as seen from module `here`, made absolute (without `crate`).
fn absolute(here: &[String], path: &str) -> Vec<String> {
    let mut segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let mut base: Vec<String> = match segments.first() {
        Some(&"crate") => {
            segments.remove(0);
            Vec::new()
        }
        _ => here.to_vec(),
    };
    while let Some(&first) = segments.first() {
        match first {
            "super" => {
                base.pop();
            }
            "self" => {}
            _ => break,
        }
        segments.remove(0);
    }
    base.extend(segments.into_iter().map(|s| s.split(" as ").next().unwrap_or(s).to_owned()));
    base
}

/// The files the paths of each file lead to. A path through a module's re-export (`use
/// super::ApiError` where `graphql/mod.rs` says `pub use error::ApiError`) leads to the file
/// that defines the item, as the compiler resolves it: a facade is no arrow back to itself.
fn file_graph() -> Graph {
    let named: Vec<(PathBuf, Vec<NamedPath>)> =
        source_files().into_iter().map(|file| (file.clone(), paths_named(&file))).collect();
    let mut reexports: BTreeMap<(PathBuf, String), PathBuf> = BTreeMap::new();
    for (file, paths) in &named {
        for (path, reexport) in paths {
            if let (true, Some(target), Some(name)) = (*reexport, file_of(path), path.last()) {
                let name = name.split(" as ").last().unwrap_or(name).to_owned();
                reexports.insert((file.clone(), name), target);
            }
        }
    }
    let mut graph = Graph::new();
    for (file, paths) in named {
        let targets = graph.entry(file.clone()).or_default();
        for (path, _) in paths {
            let Some(mut target) = file_of(&path) else { continue };
            let depth = module_of(&target).len();
            if let Some(defined) =
                path.get(depth).and_then(|name| reexports.get(&(target.clone(), name.clone())))
            {
                target = defined.clone();
            }
            if target != file {
                targets.insert(target);
            }
        }
    }
    graph
}

/// Tarjan's strongly connected components.
fn strongly_connected(graph: &Graph) -> Vec<Vec<PathBuf>> {
    struct State<'a> {
        graph: &'a Graph,
        index: BTreeMap<&'a PathBuf, usize>,
        low: BTreeMap<&'a PathBuf, usize>,
        stack: Vec<&'a PathBuf>,
        on_stack: BTreeSet<&'a PathBuf>,
        components: Vec<Vec<PathBuf>>,
    }
    fn visit<'a>(state: &mut State<'a>, node: &'a PathBuf) {
        let next = state.index.len();
        state.index.insert(node, next);
        state.low.insert(node, next);
        state.stack.push(node);
        state.on_stack.insert(node);
        for target in state.graph.get(node).into_iter().flatten() {
            if !state.index.contains_key(target) {
                visit(state, target);
                let low = state.low[node].min(state.low[target]);
                state.low.insert(node, low);
            } else if state.on_stack.contains(target) {
                let low = state.low[node].min(state.index[target]);
                state.low.insert(node, low);
            }
        }
        if state.low[node] == state.index[node] {
            let mut component = Vec::new();
            while let Some(member) = state.stack.pop() {
                state.on_stack.remove(member);
                component.push(member.clone());
                if member == node {
                    break;
                }
            }
            state.components.push(component);
        }
    }
    let mut state = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        components: Vec::new(),
    };
    for node in graph.keys() {
        if !state.index.contains_key(node) {
            visit(&mut state, node);
        }
    }
    state.components
}
