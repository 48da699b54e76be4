//! JSON: the serde serialisation of a [`RunView`] (`"schema": 2`), whole or by section.

use super::section::Section;
use serde_json::{Map, Value};
use ws_core::view::RunView;

impl Section {
    /// The run object's keys this section shows, in JSON.
    pub fn json_keys(self) -> &'static [&'static str] {
        match self {
            Section::Summary => &[
                "run_id",
                "state",
                "verdict",
                "total_workstreams",
                "completed_count",
                "failed_count",
                "skipped_count",
                "total_files_modified",
                "total_commits",
                "total_errors",
                "total_warnings",
                "wall_seconds",
                "busy_seconds",
                "speedup",
                "usage",
                "retries",
                "tampering",
            ],
            Section::Agents => &["agents"],
            Section::Workstreams => &["workstreams"],
            Section::Errors => &["errors"],
            Section::Files => &["files"],
            Section::Commits => &["commits"],
            Section::Tests => &["tests"],
            Section::Forecast => &["clusters", "conflicts", "clean_overlaps", "merge_order"],
            Section::Integration => &["integration"],
            Section::Recommendations => &["advice"],
            Section::Timeline => &["timeline"],
        }
    }
}

/// Run keys present only when there is something to say.
const OPTIONAL_KEYS: [&str; 4] = ["usage", "retries", "tampering", "fixups"];

/// Pretty JSON and a final newline.
fn pretty(v: &impl serde::Serialize) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|e| {
        // Serialising plain data cannot fail; say so rather than print nothing.
        serde_json::json!({ "error": format!("failed to encode JSON: {e}") }).to_string()
    });
    s.push('\n');
    s
}

/// The whole run object.
pub fn json(v: &RunView) -> String {
    pretty(v)
}

/// The run object, or the requested sections of it: a section that is one key prints its
/// value alone (`--errors`: the errors array); several sections print an object of their
/// keys, named as in the run object.
pub fn json_sections(v: &RunView, sections: &[Section]) -> String {
    if sections.is_empty() {
        return pretty(v);
    }
    let Ok(Value::Object(mut all)) = serde_json::to_value(v) else {
        return pretty(v);
    };
    let keys: Vec<&str> = sections
        .iter()
        .flat_map(|s| s.json_keys())
        .copied()
        .collect();
    match keys.as_slice() {
        [one] => pretty(&all.remove(*one).unwrap_or(Value::Null)),
        many => {
            let mut picked = Map::new();
            // Every JSON object git-ws prints says which contract it follows.
            picked.insert("schema".to_string(), Value::from(v.schema));
            for k in many {
                // Keys the run leaves out when they are empty (usage, retries) stay out.
                if let Some(v) = all.remove(*k) {
                    picked.insert(k.to_string(), v);
                } else if !OPTIONAL_KEYS.contains(k) {
                    picked.insert(k.to_string(), Value::Null);
                }
            }
            pretty(&picked)
        }
    }
}
