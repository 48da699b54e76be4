//! A guard on the test tree itself: every Rust file under `tests/` is compiled into a test
//! binary. A file nobody declares with `mod` is never built, so its tests silently never run;
//! this fails instead. The suite is one binary, `tests/integration/` (its `main.rs` declares
//! the modules), so a top-level `tests/*.rs` (a second binary) fails too, and a directory
//! without a `main.rs` (such as `tests/fake-agents/`, shell scripts) may hold no Rust.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, recursively, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The out-of-line modules a file declares: `(name, #[path] if any)` of each `mod name;`
/// (with any visibility). Inline `mod name { … }` blocks declare no file.
fn declared_modules(source: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut path_attr: Option<String> = None;
    for line in source.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("#[path") {
            path_attr = rest.split('"').nth(1).map(str::to_string);
            continue;
        }
        if line.starts_with("#[") || line.starts_with("//") {
            continue;
        }
        let decl = line
            .strip_prefix("pub ")
            .or_else(|| {
                line.strip_prefix("pub(")
                    .and_then(|r| r.split_once(')'))
                    .map(|(_, r)| r.trim_start())
            })
            .unwrap_or(line);
        if let Some(name) = decl
            .strip_prefix("mod ")
            .and_then(|r| r.trim().strip_suffix(';'))
        {
            out.push((name.trim().to_string(), path_attr.take()));
        }
        path_attr = None;
    }
    out
}

/// The files reachable from the crate roots `roots` through `mod` declarations.
fn reachable(roots: &[PathBuf]) -> BTreeSet<PathBuf> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<(PathBuf, bool)> = roots.iter().map(|r| (r.clone(), true)).collect();
    while let Some((file, is_root)) = stack.pop() {
        let Ok(source) = std::fs::read_to_string(&file) else {
            continue;
        };
        if !seen.insert(file.clone()) {
            continue;
        }
        let dir = file.parent().unwrap().to_path_buf();
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        // A crate root or a `mod.rs` owns its directory; `a.rs` owns `a/`.
        let child_dir = if is_root || stem == "mod" {
            dir.clone()
        } else {
            dir.join(&stem)
        };
        for (name, path) in declared_modules(&source) {
            let candidates = match path {
                Some(p) => vec![dir.join(p)],
                None => vec![
                    child_dir.join(format!("{name}.rs")),
                    child_dir.join(&name).join("mod.rs"),
                ],
            };
            for c in candidates {
                if c.is_file() {
                    stack.push((c, false));
                }
            }
        }
    }
    seen
}

/// What is wrong with the test tree at `tests`: one line per file.
fn problems(tests: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut roots = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(tests)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in &entries {
        if path.is_dir() {
            let main = path.join("main.rs");
            if main.is_file() {
                roots.push(main);
            }
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(format!(
                "{}: a second test binary; the suite is one binary: move it into tests/integration/ and declare it in main.rs",
                path.display()
            ));
        }
    }
    let compiled = reachable(&roots);
    for file in rust_files(tests) {
        if compiled.contains(&file) || file.parent() == Some(tests) {
            continue;
        }
        let binary = entries
            .iter()
            .find(|d| file.starts_with(d) && d.join("main.rs").is_file());
        out.push(match binary {
            Some(d) => format!(
                "{}: not compiled: no module reachable from {} declares `mod {};`",
                file.display(),
                d.join("main.rs").display(),
                file.file_stem().unwrap().to_string_lossy()
            ),
            None => format!(
                "{}: not compiled: its directory has no main.rs and no test binary declares it",
                file.display()
            ),
        });
    }
    out
}

#[test]
fn every_rust_file_under_tests_is_compiled_into_the_test_binary() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    assert!(
        !manifest.contains("autotests = false") && !manifest.contains("autotests=false"),
        "Cargo.toml turns off test discovery: this guard assumes tests/integration/main.rs is found by it"
    );
    let tests = root.join("tests");
    assert!(
        tests.join("integration/main.rs").is_file(),
        "the test binary's root moved: update this guard"
    );
    let found = problems(&tests);
    assert!(found.is_empty(), "{}", found.join("\n"));
    // It sees the files it should: this file, and the harness every module uses.
    let compiled = reachable(&[tests.join("integration/main.rs")]);
    for f in ["test_files.rs", "common.rs", "cli_snapshots.rs"] {
        assert!(compiled.contains(&tests.join("integration").join(f)), "{f}");
    }
}

#[test]
fn the_guard_catches_an_undeclared_file_a_nested_one_and_a_second_binary() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let write = |rel: &str, text: &str| {
        let p = t.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write(
        "integration/main.rs",
        "//! root\n\nmod common;\npub(crate) mod nested;\n#[path = \"elsewhere/x.rs\"]\nmod moved;\n// mod commented;\n",
    );
    write("integration/common.rs", "pub fn f() {}\n");
    write("integration/nested.rs", "mod inner;\n");
    write("integration/nested/inner.rs", "\n");
    write("integration/elsewhere/x.rs", "\n");
    write("fake-agents/claude", "#!/bin/sh\n");
    assert_eq!(problems(t), Vec::<String>::new());

    write("integration/new.rs", "#[test]\nfn t() {}\n");
    write("integration/commented.rs", "\n");
    write("integration/nested/orphan.rs", "\n");
    write("fake-agents/helper.rs", "\n");
    write("second.rs", "\n");
    let found = problems(t);
    let named = |f: &str| found.iter().filter(|p| p.contains(f)).count();
    for f in [
        "integration/new.rs",
        "integration/commented.rs",
        "nested/orphan.rs",
        "fake-agents/helper.rs",
        "second.rs",
    ] {
        assert_eq!(named(f), 1, "{f} in {found:#?}");
    }
    assert_eq!(found.len(), 5, "{found:#?}");
}
