//! The layers of ws-core, checked: reads every source file of the crate and fails when a
//! module imports one above it in [`LAYERS`], or when a file of a folder module imports a
//! file above it in that folder's order ([`FOLDERS`]). An order has no circle, so neither do
//! the imports. Test code (`#[cfg(test)]` modules and test-only files) may import anything.
//! The check itself is `layers_check.rs` (ws-report runs it on its own order too).

#[path = "layers_check.rs"]
mod layers_check;

use layers_check::{files, read_sources, violations};
use std::collections::BTreeMap;
use std::path::Path;

/// The modules of ws-core, bottom first: each may import only the ones before it.
const LAYERS: &[&str] = &[
    "invalid",
    "text",
    "model",
    "tamper",
    "agents",
    "testparse",
    "sandbox",
    "workstream",
    "plan",
    "consolidate",
    "fixup",
    "view",
    "review",
];

/// The files of each folder module, bottom first (`mod` is its `mod.rs`): each may import
/// only the files before it. Test-only files are left out.
const FOLDERS: &[(&str, &[&str])] = &[
    (
        "agents",
        &[
            "preset", "ports", "metrics", "retry", "usage", "failure", "limits", "mod",
        ],
    ),
    (
        "testparse",
        &["counts", "go", "js", "python", "ruby", "rust", "tap", "mod"],
    ),
    (
        "workstream",
        &["mod", "fields", "parse", "cycles", "validation", "loading"],
    ),
    ("consolidate", &["consolidated", "advice", "mod"]),
    ("view", &["micros", "timeline", "mod", "fixture"]),
];

#[test]
fn no_module_imports_one_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut sources = BTreeMap::new();
    read_sources(&src, &src, &mut sources);
    // The check itself is test code, included by the test modules.
    sources.remove("layers_check.rs");
    assert!(sources.len() > 30, "read only {} files", sources.len());
    let found = violations(&sources);
    assert!(
        found.is_empty(),
        "imports that run up the layers of ws-core (order: {}):\n{}",
        LAYERS.join(" → "),
        found.join("\n")
    );
}

#[test]
fn the_check_sees_an_upward_import_and_a_circle() {
    let sources = files(&[
        (
            "lib.rs",
            "pub mod text;\npub mod model;\npub mod consolidate;\n",
        ),
        ("text.rs", "use crate::model::Usage;\nfn f() {}\n"),
        ("model.rs", "pub fn g() { crate::text::f() }\n"),
        (
            "consolidate/mod.rs",
            "mod consolidated;\nmod advice;\npub use advice::advise;\n",
        ),
        (
            "consolidate/consolidated.rs",
            "pub fn c() { super::advice::advise() }\n",
        ),
        (
            "consolidate/advice.rs",
            "use super::{consolidated::c, Consolidated};\npub fn advise() {}\n",
        ),
    ]);
    assert_eq!(
        violations(&sources),
        vec![
            "consolidate/advice.rs imports consolidate (its mod.rs), which comes after it",
            "consolidate/consolidated.rs imports consolidate::advice, which comes after it",
            "text.rs imports model, which comes after it",
        ]
    );
}

#[test]
fn tests_comments_strings_and_re_exports_are_not_imports() {
    let sources = files(&[
        ("lib.rs", "pub mod text;\npub mod workstream;\n"),
        (
            "text.rs",
            "// use crate::workstream::X;\n\
             /* crate::workstream::y() */\n\
             const S: &str = \"{ not a brace\";\n\
             const C: char = '{';\n\
             fn f<'a>(s: &'a str) -> &'a str { s }\n\
             #[cfg(test)]\n\
             mod tests {\n    use crate::workstream::load_dir;\n}\n",
        ),
        (
            "workstream/mod.rs",
            "mod fields;\n#[cfg(test)]\n#[allow(dead_code)]\nmod fuzz;\npub use fields::validate_id;\n\
             pub struct Workstream;\n",
        ),
        (
            "workstream/fields.rs",
            "use super::Workstream;\nuse crate::text::*;\npub fn validate_id() {}\n",
        ),
        (
            "workstream/fuzz.rs",
            "use super::fields::validate_id;\nuse crate::view::x;\n",
        ),
    ]);
    assert_eq!(violations(&sources), Vec::<String>::new());
    // A use in code (not a re-export) of a file above it is one.
    let mut calls = sources.clone();
    calls.insert(
        "workstream/mod.rs".into(),
        "mod fields;\n#[cfg(test)]\nmod fuzz;\npub fn f() { fields::validate_id() }\n".into(),
    );
    assert_eq!(
        violations(&calls),
        vec!["workstream/mod.rs imports workstream::fields, which comes after it"]
    );
    // A new file nobody placed in the order.
    let mut new = sources.clone();
    new.insert("workstream/extra.rs".into(), String::new());
    assert_eq!(
        violations(&new),
        vec!["workstream/extra.rs is not in the order (FOLDERS in layers_test.rs)"]
    );
}
