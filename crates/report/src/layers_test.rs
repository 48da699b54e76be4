//! The order of ws-report's files, checked by ws-core's layer check (`layers_check.rs`):
//! each file may import only the files before it; `lib.rs` is the public face.

#[path = "../../core/src/layers_check.rs"]
mod layers_check;

use std::collections::BTreeMap;
use std::path::Path;

/// The files of ws-report, bottom first.
const LAYERS: &[&str] = &[
    "escape", "section", "cells", "usage", "markdown", "table", "json", "diff", "html",
];

/// ws-report has no folder modules.
const FOLDERS: &[(&str, &[&str])] = &[];

#[test]
fn no_file_imports_one_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut sources = BTreeMap::new();
    layers_check::read_sources(&src, &src, &mut sources);
    // The tests and this check are test code.
    sources.retain(|f, _| f != "tests.rs" && f != "layers_test.rs");
    assert!(sources.len() >= 8, "read only {} files", sources.len());
    let found = layers_check::violations(&sources);
    assert!(
        found.is_empty(),
        "imports that run up the order of ws-report ({}):\n{}",
        LAYERS.join(" → "),
        found.join("\n")
    );
}
