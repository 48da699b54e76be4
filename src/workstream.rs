//! Workstream task files: parsing and validating `workstreams/*.json` (ids, command/prompt,
//! dependencies, unknown-field warnings). Pure except [`load_dir`], which reads the directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a workstream runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `"command": "..."`, run by `sh -c`.
    Shell(String),
    /// `"command": ["prog", "arg", ...]`, run directly.
    Argv(Vec<String>),
    /// `"prompt": "..."`: sent to the agent command on stdin and in `WS_PROMPT`.
    Prompt(String),
}

/// A valid workstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workstream {
    pub id: String,
    pub title: Option<String>,
    pub action: Action,
    pub test: Option<String>,
    pub timeout: Option<Duration>,
    pub depends_on: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// File name relative to the workstreams directory (e.g. `ws-01.json`).
    pub file: String,
}

/// A workstream file that did not parse or validate. `message` names the file and the
/// line:column (JSON syntax) or the field, and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidWorkstream {
    pub file: String,
    /// The id if one could be read (and is itself valid), else None.
    pub id: Option<String>,
    pub message: String,
}

/// Result of loading a directory: valid workstreams (sorted by file name), invalid ones,
/// and warnings (unknown fields, …) each naming its file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loaded {
    pub valid: Vec<Workstream>,
    pub invalid: Vec<InvalidWorkstream>,
    pub warnings: Vec<String>,
}

/// Parse and validate one file's bytes on its own (no cross-file checks).
/// Returns the workstream plus warnings, or the rejection.
pub fn parse_workstream(
    file: &str,
    bytes: &[u8],
) -> Result<(Workstream, Vec<String>), InvalidWorkstream> {
    let _ = (file, bytes);
    todo!()
}

/// Cross-file validation: duplicate ids, `depends_on` naming unknown ids or forming a cycle.
/// The offending workstreams move to `invalid`; the rest stay valid.
pub fn validate_set(
    parsed: Vec<Workstream>,
    invalid: Vec<InvalidWorkstream>,
    warnings: Vec<String>,
) -> Loaded {
    let _ = (parsed, invalid, warnings);
    todo!()
}

/// Check an id: non-empty, at most 100 chars, only ASCII letters, digits, `.`, `_`, `-`,
/// not `.` or `..`.
pub fn validate_id(id: &str) -> Result<(), String> {
    let _ = id;
    todo!()
}

/// Parse a duration like `90s`, `30m`, `2h`, `1h30m`, `500ms` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let _ = s;
    todo!()
}

/// Read every `*.json` file in `dir` (not recursive), parse and validate them all.
/// Errors only when the directory itself cannot be read.
pub fn load_dir(dir: &Path) -> std::io::Result<Loaded> {
    let _ = dir;
    todo!()
}

/// Keep only the workstreams whose id is in `only` (plus nothing else: dependencies outside
/// the selection are treated as already satisfied). Unknown ids in `only` are returned.
pub fn select_only(loaded: Loaded, only: &[String]) -> (Loaded, Vec<String>) {
    let _ = (loaded, only);
    todo!()
}

#[allow(dead_code)]
fn _unused(_: PathBuf) {}
