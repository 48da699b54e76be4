//! The layer check itself, shared by the crates that keep an order of their modules
//! (`layers_test.rs` in ws-core and ws-report include this file and define `LAYERS` and
//! `FOLDERS` beside it): reads a crate's sources and lists every import that runs up the
//! order, and every file the order does not place.
//!
//! What counts as an import: every `use` (its tree expanded), every `crate::…`, `super::…`
//! and `self::…` path in the code (in attributes too, e.g. `#[serde(with = "super::x")]`),
//! and, in a folder's `mod.rs`, every `child::…` path. Comments do not count. A folder's
//! `mod.rs` may re-export its own files (`pub use child::Item`): that is its public face,
//! not a use.

use super::{FOLDERS, LAYERS};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

#[allow(dead_code)]
pub(super) fn files(list: &[(&str, &str)]) -> BTreeMap<String, String> {
    list.iter()
        .map(|(p, t)| (p.to_string(), t.to_string()))
        .collect()
}

/// Every `.rs` file under `dir`, keyed by its path relative to `root` (with `/`).
pub(super) fn read_sources(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            read_sources(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root).unwrap().to_string_lossy();
            let text = std::fs::read_to_string(&path).unwrap();
            out.insert(rel.replace('\\', "/"), text);
        }
    }
}

/// A byte of an identifier.
fn ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// A module path below the crate root: `[]` is `lib.rs`, `["report", "cells"]` is
/// `report/cells.rs`, `["report"]` is `report/mod.rs`.
type ModPath = Vec<String>;

fn module_of(file: &str) -> ModPath {
    let stem = file.strip_suffix(".rs").unwrap_or(file);
    let mut parts: ModPath = stem.split('/').map(str::to_string).collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

fn show(m: &[String], files: &BTreeMap<ModPath, String>) -> String {
    match files.get(m) {
        Some(f) if f.ends_with("mod.rs") => format!("{} (its mod.rs)", m.join("::")),
        _ => m.join("::"),
    }
}

/// Every import that runs up the order, and every file the order does not place.
pub(super) fn violations(sources: &BTreeMap<String, String>) -> Vec<String> {
    let files: BTreeMap<ModPath, String> =
        sources.keys().map(|f| (module_of(f), f.clone())).collect();
    let mut test_only: BTreeSet<ModPath> = BTreeSet::new();
    let scanned: BTreeMap<&String, Scan> = sources
        .iter()
        .map(|(file, text)| (file, Scan::new(text, module_of(file))))
        .collect();
    for (file, scan) in &scanned {
        for child in &scan.test_children {
            let mut m = module_of(file);
            m.push(child.clone());
            test_only.insert(m);
        }
    }
    let mut found = BTreeSet::new();
    for (file, scan) in &scanned {
        let from = module_of(file);
        if from.is_empty() || test_only.iter().any(|t| from.starts_with(t)) {
            continue;
        }
        let Some(from_rank) = rank(&from) else {
            found.insert(format!(
                "{file} is not in the order (FOLDERS in layers_test.rs)"
            ));
            continue;
        };
        for import in &scan.imports {
            let Some(to) = target(&import.path, &files) else {
                continue;
            };
            let re_export = import.public && to.len() == from.len() + 1 && to.starts_with(&from);
            if to == from || to.is_empty() || re_export {
                continue;
            }
            match rank(&to) {
                Some(to_rank) if to_rank < from_rank => {}
                _ => {
                    found.insert(format!(
                        "{file} imports {}, which comes after it",
                        show(&to, &files)
                    ));
                }
            }
        }
    }
    found.into_iter().collect()
}

/// Where a module sits: its layer, then its place in its folder.
fn rank(m: &[String]) -> Option<(usize, usize)> {
    let layer = LAYERS.iter().position(|l| *l == m[0])?;
    let in_folder = |name: &str| {
        FOLDERS
            .iter()
            .find(|(f, _)| *f == m[0])
            .and_then(|(_, order)| order.iter().position(|x| *x == name))
    };
    match m.len() {
        1 => Some((layer, in_folder("mod").unwrap_or(0))),
        2 => Some((layer, in_folder(&m[1])?)),
        _ => None,
    }
}

/// The file module an absolute path points into: the longest prefix that is a file.
fn target(path: &[String], files: &BTreeMap<ModPath, String>) -> Option<ModPath> {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| files.contains_key(p))
}

/// One path a file imports, made absolute.
struct Import {
    path: ModPath,
    /// Part of a `pub use` (a re-export).
    public: bool,
}

/// What one file imports outside its test modules, and the children it declares test-only.
struct Scan {
    imports: Vec<Import>,
    test_children: Vec<String>,
}

impl Scan {
    fn new(text: &str, module: ModPath) -> Scan {
        let (code, bare) = strip(text);
        let inline = inline_modules(&bare);
        let children = declared_children(&bare);
        let mut scan = Scan {
            imports: Vec::new(),
            test_children: children
                .iter()
                .filter(|(_, test)| *test)
                .map(|(n, _)| n.clone())
                .collect(),
        };
        let child_names: Vec<&str> = children.iter().map(|(n, _)| n.as_str()).collect();
        let context = |at: usize| -> Option<ModPath> {
            let mut m = module.clone();
            for r in inline.iter().filter(|r| r.start <= at && at < r.end) {
                if r.test {
                    return None;
                }
                m.push(r.name.clone());
            }
            Some(m)
        };
        let uses = use_statements(&bare);
        for u in &uses {
            let Some(here) = context(u.start) else {
                continue;
            };
            for path in expand_use(&code[u.start..u.end]) {
                if let Some(abs) = absolute(&path, &here, &module, &child_names) {
                    scan.imports.push(Import {
                        path: abs,
                        public: u.public,
                    });
                }
            }
        }
        let in_use = |at: usize| uses.iter().any(|u| u.start <= at && at < u.end);
        for (at, path) in paths(&code, &child_names) {
            if in_use(at) {
                continue;
            }
            let Some(here) = context(at) else { continue };
            if let Some(abs) = absolute(&path, &here, &module, &child_names) {
                scan.imports.push(Import {
                    path: abs,
                    public: false,
                });
            }
        }
        scan
    }
}

/// Two views of the text, byte for byte the same length: `code` without comments, `bare`
/// also without the contents of string and char literals (so their braces do not count).
fn strip(text: &str) -> (String, String) {
    let b = text.as_bytes();
    let (mut code, mut bare) = (b.to_vec(), b.to_vec());
    let blank = |v: &mut Vec<u8>, from: usize, to: usize| {
        for x in &mut v[from..to] {
            if *x != b'\n' {
                *x = b' ';
            }
        }
    };
    let mut i = 0;
    while i < b.len() {
        let rest = &b[i..];
        if rest.starts_with(b"//") {
            let end = rest
                .iter()
                .position(|&c| c == b'\n')
                .map_or(b.len(), |n| i + n);
            blank(&mut code, i, end);
            blank(&mut bare, i, end);
            i = end;
        } else if rest.starts_with(b"/*") {
            let (mut depth, mut j) = (0, i);
            while j < b.len() {
                if b[j..].starts_with(b"/*") {
                    depth += 1;
                    j += 2;
                } else if b[j..].starts_with(b"*/") {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            blank(&mut code, i, j);
            blank(&mut bare, i, j);
            i = j;
        } else if let Some(hashes) = raw_string_at(b, i) {
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            let body = i + 2 + hashes;
            let end = b[body..]
                .windows(close.len())
                .position(|w| w == close.as_slice())
                .map_or(b.len(), |n| body + n);
            blank(&mut bare, body, end);
            i = (end + close.len()).min(b.len());
        } else if b[i] == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            blank(&mut bare, i + 1, j.min(b.len()));
            i = j + 1;
        } else if b[i] == b'\'' {
            // A char literal ('x', '\n', '\u{7b}') or a lifetime ('a).
            let len = if rest.get(1) == Some(&b'\\') {
                rest.get(3..)
                    .and_then(|r| r.iter().position(|&c| c == b'\''))
                    .map(|n| n + 4)
            } else {
                let c = text[i + 1..].chars().next().map_or(1, char::len_utf8);
                (rest.get(1 + c) == Some(&b'\'')).then_some(c + 2)
            };
            match len {
                Some(n) => {
                    blank(&mut bare, i + 1, i + n - 1);
                    i += n;
                }
                None => i += 1,
            }
        } else {
            i += 1;
        }
    }
    let owned = |v: Vec<u8>| String::from_utf8_lossy(&v).into_owned();
    (owned(code), owned(bare))
}

/// The number of `#`s when a raw string literal (`r"…"`, `r#"…"#`, `br"…"`) starts at `i`.
fn raw_string_at(b: &[u8], i: usize) -> Option<usize> {
    let starts_word =
        i == 0 || !ident(b[i - 1]) || (b[i - 1] == b'b' && (i < 2 || !ident(b[i - 2])));
    if b[i] != b'r' || !starts_word {
        return None;
    }
    let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
    (b.get(i + 1 + hashes) == Some(&b'"')).then_some(hashes)
}

/// An inline `mod name { … }`, as byte offsets of its body.
struct Inline {
    name: String,
    start: usize,
    end: usize,
    test: bool,
}

/// Whether the item starting at `at` is marked `#[cfg(test)]` (visibility and other
/// attributes skipped).
fn cfg_test_before(bare: &str, at: usize) -> bool {
    let mut before = bare[..at].trim_end();
    for vis in ["pub(crate)", "pub(super)", "pub"] {
        if let Some(b) = before.strip_suffix(vis) {
            before = b.trim_end();
            break;
        }
    }
    while before.ends_with(']') {
        if before.ends_with("#[cfg(test)]") {
            return true;
        }
        match before.rfind("#[") {
            Some(start) => before = before[..start].trim_end(),
            None => break,
        }
    }
    false
}

/// Every `mod name` item: its name, where it starts and what follows the name.
fn mod_items(bare: &str) -> Vec<(String, usize, usize)> {
    let b = bare.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(n) = bare[from..].find("mod ") {
        let at = from + n;
        from = at + 4;
        if at > 0 && ident(b[at - 1]) {
            continue;
        }
        let name: String = bare[at + 4..]
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii() && ident(*c as u8))
            .collect();
        if name.is_empty() {
            continue;
        }
        let after =
            at + 4 + (bare[at + 4..].len() - bare[at + 4..].trim_start().len()) + name.len();
        out.push((name, at, after));
    }
    out
}

/// The inline modules of a file (nested ones too), from the text without literals.
fn inline_modules(bare: &str) -> Vec<Inline> {
    let b = bare.as_bytes();
    let mut out = Vec::new();
    for (name, at, after) in mod_items(bare) {
        let open = after + (bare[after..].len() - bare[after..].trim_start().len());
        if b.get(open) != Some(&b'{') {
            continue;
        }
        let mut depth = 0;
        let mut end = b.len();
        for (j, &c) in b.iter().enumerate().skip(open) {
            match c {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = j;
                        break;
                    }
                }
                _ => {}
            }
        }
        out.push(Inline {
            name,
            start: open,
            end,
            test: cfg_test_before(bare, at),
        });
    }
    out
}

/// The file modules a file declares (`mod name;`), each with whether it is test-only.
fn declared_children(bare: &str) -> Vec<(String, bool)> {
    mod_items(bare)
        .into_iter()
        .filter(|(_, _, after)| bare[*after..].trim_start().starts_with(';'))
        .map(|(name, at, _)| (name, cfg_test_before(bare, at)))
        .collect()
}

/// A `use … ;` statement: the byte range of its tree, and whether it is `pub`.
struct Use {
    start: usize,
    end: usize,
    public: bool,
}

fn use_statements(bare: &str) -> Vec<Use> {
    let b = bare.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(n) = bare[from..].find("use ") {
        let at = from + n;
        from = at + 4;
        if at > 0 && ident(b[at - 1]) {
            continue;
        }
        let Some(len) = bare[at..].find(';') else {
            break;
        };
        let before = bare[..at].trim_end();
        let public = before.ends_with("pub")
            || (before.ends_with(')') && {
                let open = before.rfind('(').unwrap_or(0);
                before[..open].ends_with("pub")
            });
        out.push(Use {
            start: at + 4,
            end: at + len,
            public,
        });
    }
    out
}

/// Every path of a use tree: `a::{b, c::{d, e}}` → `a::b`, `a::c::d`, `a::c::e` (a glob
/// or `self` names the module before it; `as` renames are dropped).
fn expand_use(tree: &str) -> Vec<Vec<String>> {
    let tokens: Vec<String> = tokenize(tree);
    let mut out = Vec::new();
    let mut pos = 0;
    use_tree(&tokens, &mut pos, Vec::new(), &mut out);
    out
}

fn tokenize(s: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_alphanumeric() || c == '_' {
            let mut word = String::new();
            while let Some(&c) = chars.peek().filter(|c| c.is_alphanumeric() || **c == '_') {
                word.push(c);
                chars.next();
            }
            tokens.push(word);
        } else {
            chars.next();
            if !c.is_whitespace() && c != ':' {
                tokens.push(c.to_string());
            }
        }
    }
    tokens
}

fn use_tree(t: &[String], pos: &mut usize, mut prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    while let Some(tok) = t.get(*pos) {
        match tok.as_str() {
            "{" => {
                *pos += 1;
                loop {
                    use_tree(t, pos, prefix.clone(), out);
                    match t.get(*pos).map(String::as_str) {
                        Some(",") => *pos += 1,
                        Some("}") => {
                            *pos += 1;
                            return;
                        }
                        _ => return,
                    }
                    if t.get(*pos).map(String::as_str) == Some("}") {
                        *pos += 1;
                        return;
                    }
                }
            }
            "," | "}" => break,
            "*" | "self" => *pos += 1,
            "as" => *pos += 2,
            word => {
                prefix.push(word.to_string());
                *pos += 1;
            }
        }
    }
    out.push(prefix);
}

/// Every `crate::…`, `super::…`, `self::…` path in the code, and every `child::…` path to
/// one of `children`, each with where it starts.
fn paths(code: &str, children: &[&str]) -> Vec<(usize, Vec<String>)> {
    let b = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !ident(b[i]) || (i > 0 && (ident(b[i - 1]) || b[i - 1] == b':')) {
            i += 1;
            continue;
        }
        let mut segments = Vec::new();
        let mut j = i;
        loop {
            let start = j;
            while j < b.len() && ident(b[j]) {
                j += 1;
            }
            segments.push(code[start..j].to_string());
            if code[j..].starts_with("::") && b.get(j + 2).is_some_and(|&c| ident(c)) {
                j += 2;
            } else {
                break;
            }
        }
        let first = segments[0].as_str();
        let rooted = matches!(first, "crate" | "super" | "self");
        if segments.len() > 1 && (rooted || children.contains(&first)) {
            out.push((i, segments));
        }
        i = j.max(i + 1);
    }
    out
}

/// A path as written in module `here` (inside file module `file`), made absolute; None
/// when it leaves the crate (std, serde, …).
fn absolute(
    path: &[String],
    here: &[String],
    file: &[String],
    children: &[&str],
) -> Option<ModPath> {
    let first = path.first()?.as_str();
    let (mut base, rest): (ModPath, &[String]) = match first {
        "crate" => (Vec::new(), &path[1..]),
        "self" => (here.to_vec(), &path[1..]),
        "super" => {
            let ups = path.iter().take_while(|s| *s == "super").count();
            let keep = here.len().checked_sub(ups)?;
            (here[..keep].to_vec(), &path[ups..])
        }
        child if here == file && children.contains(&child) => (here.to_vec(), path),
        _ => return None,
    };
    base.extend(rest.iter().cloned());
    Some(base)
}
