//! Loading a workstreams directory ([`load_dir`], the one read of the file system here) and
//! keeping the workstreams `--only` names ([`select_only`]).

use super::parse::parse_workstream;
use super::validation::validate_set;
use super::{InvalidWorkstream, Loaded, Workstream, MAX_FILE_BYTES};
use std::collections::HashSet;
use std::io::Read;
use std::path::Path;

/// Read every `*.json` file in `dir` (not recursive), parse and validate them all.
/// Errors only when the directory itself cannot be read. Hidden files, subdirectories and
/// other names are ignored; a file that cannot be read, is not a regular file or is larger
/// than [`MAX_FILE_BYTES`] becomes an [`InvalidWorkstream`]; so does a symbolic link whose
/// target is outside `dir` (see [`load_dir_within`]).
pub fn load_dir(dir: &Path) -> std::io::Result<Loaded> {
    load_dir_within(dir, dir)
}

/// [`load_dir`], where a symbolic link may point anywhere inside `root` (the repository,
/// when `dir` is in it): a link whose target (all links resolved) is outside `root` is
/// refused as an invalid file naming where it points, and is never read.
pub fn load_dir_within(dir: &Path, root: &Path) -> std::io::Result<Loaded> {
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let lossy = name.to_string_lossy().into_owned();
        if lossy.starts_with('.') || !lossy.ends_with(".json") {
            continue;
        }
        names.push((lossy, name.to_str().is_some(), entry.path()));
    }
    names.sort();

    let mut parsed = Vec::new();
    let mut invalid = Vec::new();
    let mut warnings = Vec::new();
    for (name, utf8_name, path) in names {
        let reject = |reason: String| InvalidWorkstream {
            file: name.clone(),
            id: None,
            message: format!("{name}: {reason}"),
        };
        // Follows symlinks; a directory named `x.json` is skipped like any directory.
        let meta = match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() => continue,
            Ok(m) => m,
            Err(e) => {
                invalid.push(reject(format!("failed to read file: {e}")));
                continue;
            }
        };
        if !utf8_name {
            invalid.push(reject("file name is not valid UTF-8".to_string()));
            continue;
        }
        if let Some(outside) = link_outside(&path, &root) {
            invalid.push(reject(format!(
                "a symbolic link to {}, outside the repository; refusing to read it",
                outside.display()
            )));
            continue;
        }
        if !meta.is_file() {
            invalid.push(reject("not a regular file".to_string()));
            continue;
        }
        if meta.len() > MAX_FILE_BYTES {
            invalid.push(reject(format!(
                "file is too large ({} bytes; at most {MAX_FILE_BYTES})",
                meta.len()
            )));
            continue;
        }
        let mut bytes = Vec::new();
        let read = std::fs::File::open(&path)
            .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes));
        if let Err(e) = read {
            invalid.push(reject(format!("failed to read file: {e}")));
            continue;
        }
        if bytes.len() as u64 > MAX_FILE_BYTES {
            invalid.push(reject(format!(
                "file is too large (more than {MAX_FILE_BYTES} bytes)"
            )));
            continue;
        }
        match parse_workstream(&name, &bytes) {
            Ok((w, warns)) => {
                parsed.push(w);
                warnings.extend(warns);
            }
            Err(bad) => invalid.push(bad),
        }
    }
    Ok(validate_set(parsed, invalid, warnings))
}

/// Where `path` leads when it is a symbolic link whose resolved target is not inside
/// `root` (canonical); `None` for a plain file or a link that stays inside.
fn link_outside(path: &Path, root: &Path) -> Option<std::path::PathBuf> {
    let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    if !is_link {
        return None;
    }
    match std::fs::canonicalize(path) {
        Ok(target) if target.starts_with(root) => None,
        Ok(target) => Some(target),
        Err(_) => std::fs::read_link(path).ok(),
    }
}

/// Keep only the workstreams whose id is in `only` (plus nothing else: dependencies outside
/// the selection are treated as already satisfied — the scheduler does that — so `depends_on`
/// is left as written). Invalid files whose id is selected are kept so they are still
/// reported — when no usable id could be read, the file name without `.json` stands in
/// (`--only ws-03` keeps a broken `ws-03.json`); warnings are kept for kept files. Entries of `only` are trimmed, empty ones
/// ignored. Unknown ids in `only` are returned, in order, without repeats.
pub fn select_only(loaded: Loaded, only: &[String]) -> (Loaded, Vec<String>) {
    /// What `--only` matches an invalid file by: its id, else its file stem.
    fn selection_key(i: &InvalidWorkstream) -> Option<&str> {
        i.id.as_deref().or_else(|| i.file.strip_suffix(".json"))
    }

    let wanted: Vec<&str> = only
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect();
    let wanted_set: HashSet<&str> = wanted.iter().copied().collect();
    let mut found: HashSet<&str> = HashSet::new();

    let valid: Vec<Workstream> = loaded
        .valid
        .into_iter()
        .filter(|w| wanted_set.contains(w.id.as_str()))
        .collect();
    let invalid: Vec<InvalidWorkstream> = loaded
        .invalid
        .into_iter()
        .filter(|i| selection_key(i).is_some_and(|key| wanted_set.contains(key)))
        .collect();
    let kept_files: HashSet<&str> = valid
        .iter()
        .map(|w| w.file.as_str())
        .chain(invalid.iter().map(|i| i.file.as_str()))
        .collect();
    let warnings: Vec<String> = loaded
        .warnings
        .into_iter()
        .filter(|w| {
            w.split_once(": ")
                .is_some_and(|(file, _)| kept_files.contains(file))
        })
        .collect();
    for id in valid
        .iter()
        .map(|w| w.id.as_str())
        .chain(invalid.iter().filter_map(selection_key))
    {
        if let Some(&w) = wanted_set.get(id) {
            found.insert(w);
        }
    }
    let mut unknown = Vec::new();
    let mut reported = HashSet::new();
    for id in wanted {
        if !found.contains(id) && reported.insert(id) {
            unknown.push(id.to_string());
        }
    }
    (
        Loaded {
            valid,
            invalid,
            warnings,
        },
        unknown,
    )
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{bad, ws};
    use super::*;

    #[test]
    fn load_dir_reads_only_json_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(
            p.join("ws-02.json"),
            r#"{"id":"ws-02","prompt":"do","depends_on":["ws-01"],"x":1}"#,
        )
        .unwrap();
        std::fs::write(p.join("ws-01.json"), r#"{"id":"ws-01","command":"true"}"#).unwrap();
        std::fs::write(p.join("ws-03.json"), "{\"id\": \"ws-03\",").unwrap();
        std::fs::write(p.join(".hidden.json"), "garbage").unwrap();
        std::fs::write(p.join("notes.txt"), "garbage").unwrap();
        std::fs::write(p.join("ws-01.json.bak"), "garbage").unwrap();
        std::fs::create_dir(p.join("sub.json")).unwrap();
        std::fs::write(p.join("sub.json").join("inner.json"), "garbage").unwrap();
        std::os::unix::fs::symlink(p.join("missing"), p.join("ws-04.json")).unwrap();
        std::os::unix::fs::symlink(p.join("ws-01.json"), p.join("ws-05.json")).unwrap();
        let big = vec![b' '; MAX_FILE_BYTES as usize + 1];
        std::fs::write(p.join("ws-06.json"), big).unwrap();

        let loaded = load_dir(p).unwrap();
        let valid: Vec<(&str, &str)> = loaded
            .valid
            .iter()
            .map(|w| (w.file.as_str(), w.id.as_str()))
            .collect();
        assert_eq!(
            valid,
            vec![("ws-01.json", "ws-01"), ("ws-02.json", "ws-02")]
        );
        let invalid: Vec<&str> = loaded.invalid.iter().map(|i| i.message.as_str()).collect();
        assert_eq!(invalid.len(), 4, "{invalid:?}");
        assert_eq!(
            invalid[0],
            "ws-03.json:1:15: invalid JSON: EOF while parsing a value"
        );
        assert!(
            invalid[1].starts_with("ws-04.json: failed to read file: "),
            "{}",
            invalid[1]
        );
        assert_eq!(
            invalid[2],
            "ws-05.json: field \"id\": duplicate id \"ws-01\" (already used by ws-01.json)"
        );
        assert_eq!(
            invalid[3],
            format!(
                "ws-06.json: file is too large ({} bytes; at most {MAX_FILE_BYTES})",
                MAX_FILE_BYTES + 1
            )
        );
        assert_eq!(
            loaded.warnings,
            vec!["ws-02.json: unknown field \"x\" (ignored)"]
        );

        assert!(load_dir(&p.join("nope")).is_err());
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(load_dir(empty.path()).unwrap(), Loaded::default());
    }

    #[test]
    fn select_only_keeps_named_workstreams() {
        let loaded = Loaded {
            valid: vec![
                ws("a.json", "a", &[]),
                ws("b.json", "b", &["a"]),
                ws("c.json", "c", &[]),
            ],
            invalid: vec![
                bad("d.json", Some("d")),
                bad("e.json", None),
                bad("f.json", None),
            ],
            warnings: vec![
                "a.json: unknown field \"x\" (ignored)".into(),
                "b.json: unknown field \"y\" (ignored)".into(),
            ],
        };
        let only: Vec<String> = ["b", " d", "zz", "", "b", "zz", "e", "f.json"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (sel, unknown) = select_only(loaded, &only);
        assert_eq!(
            sel.valid,
            vec![ws("b.json", "b", &["a"])],
            "depends_on kept as written"
        );
        assert_eq!(
            sel.invalid,
            vec![bad("d.json", Some("d")), bad("e.json", None)]
        );
        assert_eq!(
            sel.warnings,
            vec!["b.json: unknown field \"y\" (ignored)".to_string()]
        );
        assert_eq!(unknown, vec!["zz".to_string(), "f.json".to_string()]);
    }

    #[test]
    fn an_invalid_file_and_a_valid_id_named_like_it_have_different_keys() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(p.join("broken.json"), "{ not json").unwrap();
        std::fs::write(
            p.join("ok.json"),
            r#"{"id": "broken.json", "command": "true"}"#,
        )
        .unwrap();
        let loaded = load_dir(p).unwrap();
        assert_eq!(loaded.valid[0].id, "broken.json");
        let key = loaded.invalid[0].key();
        assert_eq!(key, "file:broken.json");
        assert!(super::super::validate_id(&key).is_err());
        assert_ne!(key, loaded.valid[0].id);
    }

    #[test]
    fn a_symlink_leaving_the_root_is_refused_and_one_inside_is_read() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(
            outside.path().join("secret.json"),
            r#"{"id":"s","command":"true"}"#,
        )
        .unwrap();
        let repo = tempfile::tempdir().unwrap();
        let dir = repo.path().join("workstreams");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(
            repo.path().join("shared.json"),
            r#"{"id":"in","command":"true"}"#,
        )
        .unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret.json"), dir.join("x.json")).unwrap();
        std::os::unix::fs::symlink("../shared.json", dir.join("in.json")).unwrap();
        std::fs::write(dir.join("ok.json"), r#"{"id":"ok","command":"true"}"#).unwrap();
        let loaded = load_dir_within(&dir, repo.path()).unwrap();
        let ids: Vec<&str> = loaded.valid.iter().map(|w| w.id.as_str()).collect();
        assert_eq!(ids, ["in", "ok"]);
        assert_eq!(loaded.invalid.len(), 1);
        let msg = &loaded.invalid[0].message;
        assert!(msg.starts_with("x.json: a symbolic link to "), "{msg}");
        assert!(
            msg.ends_with("secret.json, outside the repository; refusing to read it"),
            "{msg}"
        );
        // Without a wider root, the directory itself is the limit.
        let loaded = load_dir(&dir).unwrap();
        assert_eq!(loaded.invalid.len(), 2, "{:?}", loaded.invalid);
    }
}
