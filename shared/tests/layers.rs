//! The module graph of `shared/src`, derived from its paths (`use crate::…`, `super::…` and
//! inline `crate::…` paths, parsed with `syn`), must run one way:
//!
//! edges (handlers, lambda, workers, wiring) → features (access, ai, calendly, chat, files, mcp,
//! moderation, reminders) → realtime delivery, jobs, limits, sessions and the app (app, fair_share, gone,
//! jobs, limits, realtime, room_order, sessions) →
//! adapters (adapters, keyring) → domain and ports (domain, error, ports, protocol, config,
//! telemetry, tokens).
//!
//! A module may use its own layer or a lower one, and the components must not form a cycle.
//! `KNOWN` lists the imports that still break the rule, so that none is added; remove an entry
//! when its import goes (the test fails on a stale entry too).

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use syn::visit::Visit;

/// Each top-level module's layer: higher may use lower.
fn layer(component: &str) -> Option<u8> {
    Some(match component {
        "handlers" | "lambda" | "workers" | "wiring" => 4,
        "access" | "ai" | "calendly" | "chat" | "files" | "mcp" | "moderation" | "reminders" => 3,
        "app" | "fair_share" | "gone" | "jobs" | "limits" | "realtime" | "room_order" | "sessions" => 2,
        "adapters" | "keyring" => 1,
        "domain" | "error" | "ports" | "protocol" | "config" | "telemetry" | "tokens" => 0,
        _ => return None,
    })
}

/// Imports against the direction that are still there: (from file, to component).
const KNOWN: &[(&str, &str)] = &[];

fn module_path(file: &Path, root: &Path) -> Vec<String> {
    let rel = file.strip_prefix(root).unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

struct Paths<'a> {
    here: &'a [String],
    found: BTreeSet<String>,
}

impl Paths<'_> {
    /// The top-level component a path starting with `first` names, if it leaves this file.
    fn resolve(&mut self, segments: &[String]) {
        let Some(first) = segments.first() else { return };
        let absolute: Vec<String> = match first.as_str() {
            "crate" => segments[1..].to_vec(),
            "super" => {
                // `super` of `a/b.rs` is `a`; of `a/b/mod.rs` (module `a::b`) it is `a` too.
                let mut base: Vec<String> = self.here.to_vec();
                let mut rest = segments;
                while rest.first().is_some_and(|s| s == "super") {
                    base.pop();
                    rest = &rest[1..];
                }
                base.extend(rest.iter().cloned());
                base
            }
            _ => return,
        };
        if let Some(component) = absolute.first() {
            // The crate root's re-exports.
            let component = match component.as_str() {
                "App" => "app",
                "Config" => "config",
                "Error" | "Result" => "error",
                other => other,
            };
            self.found.insert(component.to_owned());
        }
    }
}

fn use_paths(tree: &syn::UseTree, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            use_paths(&p.tree, prefix, out);
            prefix.pop();
        }
        syn::UseTree::Name(n) => {
            let mut full = prefix.clone();
            full.push(n.ident.to_string());
            out.push(full);
        }
        syn::UseTree::Rename(r) => {
            let mut full = prefix.clone();
            full.push(r.ident.to_string());
            out.push(full);
        }
        syn::UseTree::Glob(_) => out.push(prefix.clone()),
        syn::UseTree::Group(g) => {
            for item in &g.items {
                use_paths(item, prefix, out);
            }
        }
    }
}

impl<'ast> Visit<'ast> for Paths<'_> {
    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        let mut out = Vec::new();
        use_paths(&item.tree, &mut Vec::new(), &mut out);
        for path in out {
            self.resolve(&path);
        }
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        self.resolve(&segments);
        syn::visit::visit_path(self, path);
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every file's uses of other top-level components.
fn graph() -> BTreeMap<String, (String, BTreeSet<String>)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut graph = BTreeMap::new();
    for file in files {
        let here = module_path(&file, &root);
        let Some(component) = here.first().cloned() else { continue };
        let source = std::fs::read_to_string(&file).unwrap();
        let parsed = syn::parse_file(&source).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let mut paths = Paths { here: &here, found: BTreeSet::new() };
        paths.visit_file(&parsed);
        paths.found.remove(&component);
        let name = file.strip_prefix(&root).unwrap().to_string_lossy().into_owned();
        graph.insert(name, (component, paths.found));
    }
    graph
}

#[test]
fn every_module_has_a_layer() {
    for (file, (component, uses)) in graph() {
        assert!(layer(&component).is_some(), "{file}: `{component}` has no layer in tests/layers.rs");
        for used in uses {
            assert!(layer(&used).is_some(), "{file} uses `{used}`, which has no layer in tests/layers.rs");
        }
    }
}

#[test]
fn imports_run_from_edges_down_to_the_domain() {
    let mut against = BTreeSet::new();
    for (file, (component, uses)) in graph() {
        for used in uses {
            if layer(&used) > layer(&component) {
                against.insert((file.clone(), used));
            }
        }
    }
    let known: BTreeSet<(String, String)> = KNOWN.iter().map(|(f, c)| ((*f).to_owned(), (*c).to_owned())).collect();
    let new: Vec<_> = against.difference(&known).collect();
    assert!(new.is_empty(), "imports against the layers (edges → features → app → adapters → domain): {new:?}");
    let stale: Vec<_> = known.difference(&against).collect();
    assert!(stale.is_empty(), "KNOWN lists imports that are gone; remove them: {stale:?}");
}

#[test]
fn components_form_no_cycle() {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (_, (component, uses)) in graph() {
        edges.entry(component).or_default().extend(uses);
    }
    // Depth-first search for a back edge, reporting the cycle it closes.
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        if let Some(cycle) = visit(node, &edges, &mut Vec::new(), &mut done) {
            panic!("a cycle between components: {}", cycle.join(" → "));
        }
    }
}
