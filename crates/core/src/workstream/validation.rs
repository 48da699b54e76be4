//! Cross-file validation of a directory's workstreams ([`validate_set`]): duplicate ids,
//! dependencies on ids nobody holds, dependency cycles; and what the run's settings decide
//! ([`require_agents`]: a prompt with nothing to run it), and an empty backlog
//! ([`empty_backlog`]).

use super::cycles::find_cycles;
use super::{InvalidWorkstream, Loaded, Workstream};
use crate::text::quote;
use std::collections::{HashMap, HashSet};

/// Cross-file validation: duplicate ids, `depends_on` naming unknown ids or forming a cycle.
/// The offending workstreams move to `invalid`; the rest stay valid.
///
/// - Duplicate ids (compared ignoring ASCII case, since branch refs and log files collide on
///   case-insensitive file systems): the first file by name keeps the id, later files become
///   invalid with `id: None`. An invalid file that had a valid id counts as a holder too.
/// - `depends_on` must name an id held by some file (valid, or invalid with `Some(id)`: the
///   runner fails those and skips their dependents).
/// - Every workstream on a dependency cycle is invalid (message shows the cycle); workstreams
///   merely depending on a cycle stay valid.
///
/// Both outputs are sorted by file name; warnings keep their order.
pub fn validate_set(
    parsed: Vec<Workstream>,
    invalid: Vec<InvalidWorkstream>,
    warnings: Vec<String>,
) -> Loaded {
    let mut rejected = Vec::new();
    let (holders, valid) = claim_ids(by_file(parsed, invalid), &mut rejected);
    let valid = reject_unknown_dependencies(valid, &holders, &mut rejected);
    let valid = reject_cycles(valid, &mut rejected);
    rejected.sort_by(|a, b| a.file.cmp(&b.file));
    Loaded {
        valid,
        invalid: rejected,
        warnings,
    }
}

/// Move every `prompt` workstream that names no `"agent"` to `invalid` when the run has no
/// agent to give it (`default_agent`: `--agent`, `ws.agent`, `--agent-cmd` or
/// `ws.agentCommand` is set), with a message naming the file and every way to set one
/// (`presets`: the preset names). What `--dry-run` reports and a real run fails up front,
/// instead of a `SpawnError` after the worktree is made.
pub fn require_agents(mut loaded: Loaded, default_agent: bool, presets: &str) -> Loaded {
    if default_agent {
        return loaded;
    }
    let (orphans, valid): (Vec<Workstream>, Vec<Workstream>) = loaded
        .valid
        .into_iter()
        .partition(|w| matches!(w.action, super::Action::Prompt(_)) && w.agent.is_none());
    loaded.valid = valid;
    for w in orphans {
        loaded.invalid.push(InvalidWorkstream {
            message: format!(
                "{}: field \"prompt\": no agent is set to run it: pass --agent NAME ({presets}) or --agent-cmd CMD, set git config ws.agent or ws.agentCommand, or give the workstream an \"agent\"",
                w.file
            ),
            file: w.file,
            id: Some(w.id),
        });
    }
    loaded.invalid.sort_by(|a, b| a.file.cmp(&b.file));
    loaded
}

/// The one sentence for a workstreams directory (`dir`, as shown) holding no workstream
/// file, given the names of the files it does hold (`names`, hidden ones excluded): `None`
/// when `loaded_any` (some `*.json` file was read, valid or not). Files that look like
/// misnamed workstream files (`*.JSON`, `*.json.bak`, `*.jsonc`, …) are named.
pub fn empty_backlog(dir: &str, names: &[String], loaded_any: bool) -> Option<String> {
    if loaded_any {
        return None;
    }
    let mut near: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| n.to_ascii_lowercase().contains(".json"))
        .collect();
    near.sort();
    const SHOWN: usize = 5;
    let list = |v: &[&str]| {
        let more = v.len().saturating_sub(SHOWN);
        let mut s = v[..v.len().min(SHOWN)].join(", ");
        if more > 0 {
            s.push_str(&format!(" and {more} more"));
        }
        s
    };
    Some(match (near.as_slice(), names.len()) {
        ([], 0) => format!(
            "no workstreams: {dir} is empty (add one JSON file per workstream, named <id>.json)"
        ),
        ([], n) => format!(
            "no workstreams: {dir} holds {} but no *.json file (add one JSON file per workstream, named <id>.json)",
            crate::text::plural(n, "file", "files")
        ),
        (near, _) => format!(
            "no workstreams: {dir} holds no *.json file, only {} ({}): only names ending in \".json\" (lower case) are read",
            crate::text::plural(near.len(), "misnamed file", "misnamed files"),
            list(near)
        ),
    })
}

/// One file of the set, valid or not, while the set is checked.
enum Entry {
    Valid(Workstream),
    Invalid(InvalidWorkstream),
}

impl Entry {
    fn file(&self) -> &str {
        match self {
            Entry::Valid(w) => &w.file,
            Entry::Invalid(i) => &i.file,
        }
    }

    /// The id the file claims: a valid workstream's, an invalid one's when it was readable.
    fn id(&self) -> Option<&str> {
        match self {
            Entry::Valid(w) => Some(&w.id),
            Entry::Invalid(i) => i.id.as_deref(),
        }
    }
}

/// Who holds each id, keyed by the id in ASCII lower case: the id as written and its file.
type Holders = HashMap<String, (String, String)>;

/// Every file of the set, valid or not, sorted by file name.
fn by_file(parsed: Vec<Workstream>, invalid: Vec<InvalidWorkstream>) -> Vec<Entry> {
    let mut entries: Vec<Entry> = parsed
        .into_iter()
        .map(Entry::Valid)
        .chain(invalid.into_iter().map(Entry::Invalid))
        .collect();
    entries.sort_by(|a, b| a.file().cmp(b.file()));
    entries
}

/// Step 1, duplicate ids: the first file (by name) holds the id, valid or not; a later file
/// with the same id (ignoring case) becomes invalid and loses its id. Returns the holders
/// and the workstreams still valid; the invalid ones go to `rejected`.
fn claim_ids(
    entries: Vec<Entry>,
    rejected: &mut Vec<InvalidWorkstream>,
) -> (Holders, Vec<Workstream>) {
    let mut holders = Holders::new();
    let mut valid = Vec::new();
    for entry in entries {
        let Some(id) = entry.id().map(str::to_string) else {
            if let Entry::Invalid(i) = entry {
                rejected.push(i);
            }
            continue;
        };
        let lower = id.to_ascii_lowercase();
        match (entry, duplicate_reason(&holders, &id)) {
            (Entry::Valid(w), None) => {
                holders.insert(lower, (id, w.file.clone()));
                valid.push(w);
            }
            (Entry::Invalid(i), None) => {
                holders.insert(lower, (id, i.file.clone()));
                rejected.push(i);
            }
            (Entry::Valid(w), Some(reason)) => rejected.push(InvalidWorkstream {
                message: format!("{}: {reason}", w.file),
                file: w.file,
                id: None,
            }),
            (Entry::Invalid(mut i), Some(reason)) => {
                i.id = None;
                i.message = format!("{}; {reason}", i.message);
                rejected.push(i);
            }
        }
    }
    (holders, valid)
}

/// Why `id` cannot be held again, when an earlier file holds it (or the same id in another
/// case).
fn duplicate_reason(holders: &Holders, id: &str) -> Option<String> {
    let (first_id, first_file) = holders.get(&id.to_ascii_lowercase())?;
    Some(if first_id == id {
        format!(
            "field \"id\": duplicate id {} (already used by {first_file})",
            quote(id)
        )
    } else {
        format!(
            "field \"id\": duplicate id {} (differs only in case from {} in {first_file})",
            quote(id),
            quote(first_id)
        )
    })
}

/// Step 2, dependencies on ids nobody holds: such a workstream becomes invalid (keeping its
/// id); the rest stay valid.
fn reject_unknown_dependencies(
    valid: Vec<Workstream>,
    holders: &Holders,
    rejected: &mut Vec<InvalidWorkstream>,
) -> Vec<Workstream> {
    let exact: HashSet<&str> = holders.values().map(|(id, _)| id.as_str()).collect();
    let mut still_valid = Vec::with_capacity(valid.len());
    for w in valid {
        match unknown_dependencies(&w, &exact, holders) {
            Some(p) => rejected.push(InvalidWorkstream {
                message: format!("{}: {p}", w.file),
                file: w.file,
                id: Some(w.id),
            }),
            None => still_valid.push(w),
        }
    }
    still_valid
}

/// What is wrong with `w`'s dependencies, each unknown id with the id it probably meant (the
/// same id in another case).
fn unknown_dependencies(
    w: &Workstream,
    exact: &HashSet<&str>,
    holders: &Holders,
) -> Option<String> {
    let problems: Vec<String> = w
        .depends_on
        .iter()
        .filter(|d| !exact.contains(d.as_str()))
        .map(|d| match holders.get(&d.to_ascii_lowercase()) {
            Some((real, _)) => format!(
                "field \"depends_on\": unknown workstream {} (did you mean {}?)",
                quote(d),
                quote(real)
            ),
            None => format!("field \"depends_on\": unknown workstream {}", quote(d)),
        })
        .collect();
    (!problems.is_empty()).then(|| problems.join("; "))
}

/// Step 3, cycles among the valid ones: every member of a cycle becomes invalid (keeping
/// its id); those merely depending on a cycle stay valid.
fn reject_cycles(valid: Vec<Workstream>, rejected: &mut Vec<InvalidWorkstream>) -> Vec<Workstream> {
    let cycles = find_cycles(&valid);
    let mut acyclic = Vec::with_capacity(valid.len());
    for (w, cycle) in valid.into_iter().zip(cycles) {
        match cycle {
            Some(cycle) => rejected.push(InvalidWorkstream {
                message: format!("{}: field \"depends_on\": dependency cycle {cycle}", w.file),
                file: w.file,
                id: Some(w.id),
            }),
            None => acyclic.push(w),
        }
    }
    acyclic
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{bad, ws};
    use super::*;

    #[test]
    fn duplicate_ids_first_file_wins() {
        let loaded = validate_set(
            vec![
                ws("b.json", "x", &[]),
                ws("a.json", "x", &[]),
                ws("c.json", "X", &[]),
            ],
            vec![],
            vec![],
        );
        assert_eq!(loaded.valid.len(), 1);
        assert_eq!(loaded.valid[0].file, "a.json");
        assert_eq!(
            loaded.invalid,
            vec![
                InvalidWorkstream {
                    file: "b.json".into(),
                    id: None,
                    message: "b.json: field \"id\": duplicate id \"x\" (already used by a.json)"
                        .into(),
                },
                InvalidWorkstream {
                    file: "c.json".into(),
                    id: None,
                    message: "c.json: field \"id\": duplicate id \"X\" (differs only in case from \"x\" in a.json)".into(),
                },
            ]
        );
    }

    #[test]
    fn invalid_files_with_ids_hold_their_id() {
        // a.json is invalid but had a valid id: it holds "x"; the later valid b.json loses.
        let loaded = validate_set(
            vec![ws("b.json", "x", &[]), ws("d.json", "dep", &["x"])],
            vec![
                bad("a.json", Some("x")),
                bad("c.json", Some("x")),
                bad("e.json", None),
            ],
            vec![],
        );
        assert_eq!(
            loaded
                .valid
                .iter()
                .map(|w| w.id.as_str())
                .collect::<Vec<_>>(),
            vec!["dep"],
            "depending on an invalid-with-id workstream is fine"
        );
        let summary: Vec<(&str, Option<&str>)> = loaded
            .invalid
            .iter()
            .map(|i| (i.file.as_str(), i.id.as_deref()))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("a.json", Some("x")),
                ("b.json", None),
                ("c.json", None),
                ("e.json", None)
            ]
        );
        assert_eq!(
            loaded.invalid[2].message,
            "c.json: field \"test\": must not be empty; field \"id\": duplicate id \"x\" (already used by a.json)"
        );
    }

    #[test]
    fn unknown_dependencies_invalidate() {
        let loaded = validate_set(
            vec![
                ws("a.json", "ws-01", &[]),
                ws("b.json", "ws-02", &["ws-01", "ws-99"]),
                ws("c.json", "ws-03", &["WS-01"]),
                ws("d.json", "ws-04", &["ws-02"]),
            ],
            vec![],
            vec!["a.json: unknown field \"foo\" (ignored)".into()],
        );
        let ids: Vec<&str> = loaded.valid.iter().map(|w| w.id.as_str()).collect();
        assert_eq!(
            ids,
            vec!["ws-01", "ws-04"],
            "ws-04 may depend on invalid ws-02"
        );
        assert_eq!(
            loaded.invalid[0].message,
            "b.json: field \"depends_on\": unknown workstream \"ws-99\""
        );
        assert_eq!(loaded.invalid[0].id.as_deref(), Some("ws-02"));
        assert_eq!(
            loaded.invalid[1].message,
            "c.json: field \"depends_on\": unknown workstream \"WS-01\" (did you mean \"ws-01\"?)"
        );
        assert_eq!(loaded.warnings.len(), 1);
    }
}

#[cfg(test)]
mod run_setting_tests {
    use super::super::test_util::ws;
    use super::super::Action;
    use super::*;

    #[test]
    fn a_prompt_without_an_agent_is_invalid_unless_one_is_set() {
        let mut p = ws("p.json", "p", &[]);
        p.action = Action::Prompt("do it".into());
        let mut own = ws("o.json", "o", &[]);
        own.action = Action::Prompt("do it".into());
        own.agent = Some(crate::agents::Preset::Claude);
        let loaded = Loaded {
            valid: vec![ws("c.json", "c", &[]), own, p],
            ..Loaded::default()
        };
        assert_eq!(require_agents(loaded.clone(), true, "x"), loaded);
        let out = require_agents(loaded, false, "claude, codex");
        let ids: Vec<&str> = out.valid.iter().map(|w| w.id.as_str()).collect();
        assert_eq!(ids, ["c", "o"]);
        assert_eq!(out.invalid.len(), 1);
        assert_eq!(out.invalid[0].id.as_deref(), Some("p"));
        assert!(
            out.invalid[0].message.starts_with(
                "p.json: field \"prompt\": no agent is set to run it: pass --agent NAME (claude, codex)"
            ),
            "{}",
            out.invalid[0].message
        );
    }

    #[test]
    fn an_empty_or_misnamed_backlog_is_one_sentence() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(empty_backlog("w/", &names(&["a.JSON"]), true), None);
        assert_eq!(
            empty_backlog("w/", &[], false).unwrap(),
            "no workstreams: w/ is empty (add one JSON file per workstream, named <id>.json)"
        );
        assert_eq!(
            empty_backlog("w/", &names(&["notes.txt"]), false).unwrap(),
            "no workstreams: w/ holds 1 file but no *.json file (add one JSON file per workstream, named <id>.json)"
        );
        assert_eq!(
            empty_backlog("w/", &names(&["b.json.bak", "a.JSON", "notes.txt"]), false).unwrap(),
            "no workstreams: w/ holds no *.json file, only 2 misnamed files (a.JSON, b.json.bak): only names ending in \".json\" (lower case) are read"
        );
    }
}
