//! The README's examples are what the current code prints: `scripts/readme-examples.sh
//! --check` runs every example in fresh scratch repositories with the built binaries,
//! normalizes what changes between runs, and compares the result with each
//! `<!-- example: NAME -->` block of README.md.

use crate::common::bin_dir;
use std::path::Path;
use std::process::Command;

#[test]
fn the_readme_examples_are_what_the_code_prints() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let start = std::time::Instant::now();
    let out = Command::new("bash")
        .arg(root.join("scripts/readme-examples.sh"))
        .arg("--check")
        .arg("--bin")
        .arg(bin_dir())
        .current_dir(root)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "README.md's examples are not what the code prints; run scripts/readme-examples.sh \
         to rewrite them, and check the diff:\n{said}"
    );
    assert!(
        said.contains("README.md's examples are what the code prints"),
        "{said}"
    );
    eprintln!("readme examples: checked in {:?}", start.elapsed());
}

/// The marked blocks are well formed: each has a name the script makes, and none is empty.
#[test]
fn every_example_block_is_marked_and_filled() {
    let readme = include_str!("../../README.md");
    let opens = readme.matches("<!-- example: ").count();
    let closes = readme.matches("<!-- /example -->").count();
    assert_eq!(opens, closes, "unbalanced example markers");
    assert!(opens >= 12, "{opens} example blocks");
    for block in readme.split("<!-- example: ").skip(1) {
        let (name, rest) = block.split_once(" -->\n").unwrap();
        let body = rest.split("<!-- /example -->").next().unwrap();
        let lines: Vec<&str> = body.lines().collect();
        assert!(
            lines.len() > 2 && lines[0].starts_with("```"),
            "example {name} is empty or has no code fence: {body:?}"
        );
    }
    // The Quick start is the first section after the two commands.
    let first = readme.split("\n## ").nth(1).unwrap();
    assert!(first.starts_with("Quick start\n"), "{}", &first[..40]);
}
