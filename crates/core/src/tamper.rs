//! The watch on what lies outside the worktrees, compared: two fingerprints of what an agent
//! must not change (the user's refs, `HEAD`, index, git config, hooks and `info/`; taken by
//! ws-git's `watch`) turned into the changes between them, each written as a workstream
//! warning (the one place it is stored) and read back for the report's *Tampering* section.
//! Pure.

use crate::text;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// What was fingerprinted: a location (`refs/heads/main`, `HEAD`, `index`,
/// `config core.bare`, `hooks/pre-commit`, `info/exclude`) → its value (a commit id, a
/// config value, a content hash). A location missing is absent.
pub type Fingerprint = BTreeMap<String, String>;

/// One location whose value changed between two fingerprints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub path: String,
    /// `None`: it did not exist before.
    pub old: Option<String>,
    /// `None`: it no longer exists.
    pub new: Option<String>,
}

/// The changes from `before` to `after`, in location order.
pub fn compare(before: &Fingerprint, after: &Fingerprint) -> Vec<Change> {
    let paths: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    paths
        .into_iter()
        .filter_map(|p| {
            let (old, new) = (before.get(p), after.get(p));
            (old != new).then(|| Change {
                path: p.clone(),
                old: old.cloned(),
                new: new.cloned(),
            })
        })
        .collect()
}

/// Every workstream warning about a change starts so.
pub const PREFIX: &str = "tampering: ";
const CHANGED: &str = " changed: ";
const ARROW: &str = " -> ";
const RUNNING: &str = "; running then: ";
const ABSENT: &str = "(absent)";

fn value(v: &Option<String>) -> String {
    v.as_deref()
        .map_or_else(|| ABSENT.to_string(), text::one_line)
}

/// The warning of one change seen while a workstream ran: its location, old and new values,
/// and the workstreams that were running at any time in that window (this one included).
pub fn warning(c: &Change, running: &[String]) -> String {
    format!(
        "{PREFIX}{}{CHANGED}{}{ARROW}{}{RUNNING}{}",
        text::one_line(&c.path),
        value(&c.old),
        value(&c.new),
        running.join(", ")
    )
}

/// A warning written by [`warning`], read back; `None` for any other warning.
pub fn parse_warning(w: &str) -> Option<(Change, Vec<String>)> {
    let rest = w.strip_prefix(PREFIX)?;
    let (path, rest) = rest.split_once(CHANGED)?;
    let (values, running) = rest.rsplit_once(RUNNING)?;
    let (old, new) = values.split_once(ARROW)?;
    let v = |s: &str| (s != ABSENT).then(|| s.to_string());
    let running = running
        .split(", ")
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    Some((
        Change {
            path: path.to_string(),
            old: v(old),
            new: v(new),
        },
        running,
    ))
}

/// Whether a warning reports a change outside the worktrees.
pub fn is_tampering(w: &str) -> bool {
    w.starts_with(PREFIX)
}

/// One change as the report shows it, with who may have made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tampering {
    pub path: String,
    pub old: Option<String>,
    pub new: Option<String>,
    /// The workstreams whose before/after window saw the change.
    pub seen_by: Vec<String>,
    /// Every workstream running at some time in those windows: the change was made by one
    /// of them, or by something outside git-ws (the user committing, another tool).
    pub suspects: Vec<String>,
}

/// The run's changes from its workstreams' warnings (`(workstream id, warning)`): one entry
/// per distinct change, in location order.
pub fn collect<'a>(warnings: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<Tampering> {
    type Key = (String, Option<String>, Option<String>);
    let mut by: BTreeMap<Key, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    for (ws, w) in warnings {
        let Some((c, running)) = parse_warning(w) else {
            continue;
        };
        let e = by.entry((c.path, c.old, c.new)).or_default();
        e.0.insert(ws.to_string());
        e.1.extend(running);
        e.1.insert(ws.to_string());
    }
    by.into_iter()
        .map(|((path, old, new), (seen, suspects))| Tampering {
            path,
            old,
            new,
            seen_by: seen.into_iter().collect(),
            suspects: suspects.into_iter().collect(),
        })
        .collect()
}

/// One sentence about who may have made a change.
pub fn attribution(t: &Tampering) -> String {
    match t.suspects.as_slice() {
        [one] => format!(
            "made while only {one} ran: by {one}, or by something outside git-ws (the user, \
             another tool)"
        ),
        many => format!(
            "made while {} ran: by one of them, or by something outside git-ws; without the \
             sandbox these cannot be told apart",
            many.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(pairs: &[(&str, &str)]) -> Fingerprint {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn changes_added_and_removed_locations() {
        let before = fp(&[("HEAD", "ref: refs/heads/main"), ("refs/heads/main", "aaa")]);
        let after = fp(&[
            ("HEAD", "ref: refs/heads/main"),
            ("config core.bare", "true"),
        ]);
        let c = compare(&before, &after);
        assert_eq!(
            c,
            vec![
                Change {
                    path: "config core.bare".into(),
                    old: None,
                    new: Some("true".into())
                },
                Change {
                    path: "refs/heads/main".into(),
                    old: Some("aaa".into()),
                    new: None
                },
            ]
        );
        assert!(compare(&before, &before).is_empty());
    }

    #[test]
    fn a_warning_reads_back() {
        let c = Change {
            path: "refs/heads/main".into(),
            old: Some("aaa".into()),
            new: None,
        };
        let running = vec!["ws-01".to_string(), "ws-02".to_string()];
        let w = warning(&c, &running);
        assert_eq!(
            w,
            "tampering: refs/heads/main changed: aaa -> (absent); running then: ws-01, ws-02"
        );
        assert!(is_tampering(&w));
        assert_eq!(parse_warning(&w), Some((c, running)));
        assert_eq!(parse_warning("WS_PORT is not set"), None);
        // A value with the separators in it still reads back whole.
        let odd = Change {
            path: "config alias.x".into(),
            old: None,
            new: Some("!a -> b; c".into()),
        };
        let w = warning(&odd, &["ws-01".to_string()]);
        assert_eq!(
            parse_warning(&w).unwrap().0.new.as_deref(),
            Some("!a -> b; c")
        );
    }

    #[test]
    fn one_change_seen_by_two_windows_is_one_entry_with_every_suspect() {
        let c = Change {
            path: "hooks/pre-commit".into(),
            old: None,
            new: Some("blob 1234".into()),
        };
        let w1 = warning(&c, &["ws-01".into(), "ws-02".into()]);
        let w2 = warning(&c, &["ws-02".into(), "ws-03".into()]);
        let other = warning(
            &Change {
                path: "HEAD".into(),
                old: Some("a".into()),
                new: Some("b".into()),
            },
            &["ws-03".into()],
        );
        let t = collect([
            ("ws-01", w1.as_str()),
            ("ws-02", w2.as_str()),
            ("ws-03", other.as_str()),
            ("ws-03", "an unrelated warning"),
        ]);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].path, "HEAD");
        assert_eq!(t[0].suspects, ["ws-03"]);
        assert!(attribution(&t[0]).starts_with("made while only ws-03 ran"));
        assert_eq!(t[1].seen_by, ["ws-01", "ws-02"]);
        assert_eq!(t[1].suspects, ["ws-01", "ws-02", "ws-03"]);
        assert!(attribution(&t[1]).contains("cannot be told apart"));
    }
}
