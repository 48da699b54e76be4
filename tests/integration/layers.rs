//! The architecture as a check: the crates' dependencies point down only (ws-core builds
//! without git2, diesel, tokio or clap), and inside every crate the top-level modules import
//! each other without a circle. Test code (`tests.rs`, `*_tests.rs`, `#[cfg(test)]` modules)
//! may import anything.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The source without comments and without its `#[cfg(test)]` modules.
fn code_of(text: &str) -> String {
    let cut = text
        .find("#[cfg(test)]\nmod tests")
        .or_else(|| text.find("#[cfg(test)]\nmod "))
        .unwrap_or(text.len());
    text[..cut]
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The names `crate::NAME` that `code` refers to, group imports (`crate::{a, b::c}`)
/// included.
fn crate_refs(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        // `$crate::` and `ws_core::crate::` do not occur; skip identifiers ending in "crate".
        let before_ok = rest[..i]
            .chars()
            .last()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '$'));
        if before_ok {
            if let Some(group) = after.strip_prefix('{') {
                // Split the group at its top-level commas; each part starts with a name.
                let mut depth = 1;
                let mut part = String::new();
                let mut parts = Vec::new();
                for c in group.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 1 => break,
                        '}' => depth -= 1,
                        ',' if depth == 1 => parts.push(std::mem::take(&mut part)),
                        _ => part.push(c),
                    }
                }
                parts.push(part);
                for p in parts {
                    let name: String = p
                        .trim_start()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() && name != "self" {
                        out.insert(name);
                    }
                }
            } else {
                let name: String = after
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        }
        rest = after;
    }
    out
}

/// The top-level module a file of `src` belongs to (`None` for the crate root, binaries and
/// test files).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?.to_string();
    let name = file.file_name()?.to_str()?;
    if name == "tests.rs" || name.ends_with("_tests.rs") || name == "fixture.rs" {
        return None;
    }
    if rel.components().count() == 1 {
        let stem = first.trim_end_matches(".rs");
        return (stem != "lib" && stem != "main").then(|| stem.to_string());
    }
    (first != "bin").then_some(first)
}

/// The import graph between the top-level modules of the crate whose sources are `src`.
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeSet<String> = files.iter().filter_map(|f| module_of(src, f)).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let Some(m) = module_of(src, f) else { continue };
        let code = code_of(&fs::read_to_string(f).unwrap());
        let edges = graph.entry(m.clone()).or_default();
        for r in crate_refs(&code) {
            if r != m && modules.contains(&r) {
                edges.insert(r);
            }
        }
    }
    graph
}

/// The circles of `graph` (its strongly connected components of more than one module).
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    let names: Vec<&String> = graph.keys().collect();
    let reach = |from: &String| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.clone()];
        while let Some(n) = stack.pop() {
            for next in graph.get(&n).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    stack.push(next.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&String, BTreeSet<String>> =
        names.iter().map(|n| (*n, reach(n))).collect();
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for n in &names {
        if done.contains(*n) || !reaches[n].contains(*n) {
            continue;
        }
        let scc: Vec<String> = names
            .iter()
            .filter(|m| reaches[n].contains(**m) && reaches[*m].contains(*n))
            .map(|m| (*m).clone())
            .collect();
        done.extend(scc.iter().cloned());
        out.push(scc);
    }
    out
}

#[test]
fn the_reference_parser_sees_group_imports() {
    let refs = crate_refs("use crate::{a, b::{c, d}, e::f};\nlet x = crate::g::h();");
    assert_eq!(
        refs.into_iter().collect::<Vec<_>>(),
        ["a", "b", "e", "g"].map(String::from)
    );
}

#[test]
fn no_crate_has_an_import_circle_between_its_modules() {
    let mut srcs = vec![root().join("src")];
    for e in fs::read_dir(root().join("crates")).unwrap() {
        srcs.push(e.unwrap().path().join("src"));
    }
    let mut found = Vec::new();
    for src in &srcs {
        let graph = module_graph(src);
        assert!(
            graph.len() > 3,
            "{} has too few modules to check",
            src.display()
        );
        for c in circles(&graph) {
            let edges: Vec<String> = c
                .iter()
                .flat_map(|m| {
                    graph[m]
                        .iter()
                        .filter(|n| c.contains(n))
                        .map(move |n| format!("{m} -> {n}"))
                })
                .collect();
            found.push(format!("{}: {}", src.display(), edges.join(", ")));
        }
    }
    assert!(found.is_empty(), "import circles:\n{}", found.join("\n"));
}

#[test]
fn a_circle_is_found() {
    let mut g = BTreeMap::new();
    g.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    g.insert("b".to_string(), BTreeSet::from(["c".to_string()]));
    g.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
    g.insert("d".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(circles(&g), vec![vec!["a", "b", "c"]]);
}

/// The layer crates' manifests: each may name only the layers below it.
#[test]
fn crates_depend_down_only() {
    let allowed: &[(&str, &[&str], &[&str])] = &[
        (
            "core",
            &[],
            &["git2", "diesel", "tokio", "clap", "indicatif"],
        ),
        (
            "git",
            &["ws-core"],
            &["diesel", "tokio", "clap", "indicatif"],
        ),
        ("db", &["ws-core"], &["git2", "tokio", "clap", "indicatif"]),
        (
            "report",
            &["ws-core"],
            &["git2", "diesel", "tokio", "clap", "indicatif"],
        ),
    ];
    let dirs: Vec<String> = fs::read_dir(root().join("crates"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for d in &dirs {
        assert!(
            allowed.iter().any(|(a, _, _)| a == d),
            "crates/{d} has no place in the layers (crates_depend_down_only)"
        );
    }
    for (dir, layers, banned) in allowed {
        let toml = fs::read_to_string(root().join("crates").join(dir).join("Cargo.toml")).unwrap();
        let deps = toml.split("[dependencies]").nth(1).unwrap_or("");
        let deps = deps.split("\n[").next().unwrap_or("");
        for line in deps.lines() {
            let name = line.split(['=', '.', ' ']).next().unwrap_or("").trim();
            if name.starts_with("ws-") {
                assert!(layers.contains(&name), "crates/{dir} depends on {name}");
            }
            assert!(!banned.contains(&name), "crates/{dir} depends on {name}");
        }
    }
}
