//! `.gitattributes` as git reads them for a merge (`merge`, `conflict-marker-size`), and the
//! merge driver they pick.
//!
//! merge-ort asks `git_check_attr` with the repository's index not loaded (`git merge-tree`
//! never reads it), so the attributes come from where git reads them then, checked against
//! real `git merge-tree` 2.39 and 2.47: the `.gitattributes` files of the *working tree*
//! (each directory of the path, deeper files first), `$GIT_DIR/info/attributes` above them,
//! and below them `core.attributesFile` (default `$XDG_CONFIG_HOME/git/attributes`) and the
//! system file `/etc/gitattributes` (unless `GIT_ATTR_NOSYSTEM`). With `attr.tree` set, the
//! `.gitattributes` files come from that tree instead. A bare repository has no working
//! tree, so only the other files apply. Not the merged trees: a branch that adds
//! `merge=union` does not change how git merges it until that file is checked out.
//!
//! The matcher is git's: later lines win, deeper files win, a pattern without a slash
//! matches the file name at any depth, one with a slash matches from its file's directory
//! with `wildmatch` (`*` stops at `/`, `**/`, `/**`), `!attr` resets, and macros (`binary`
//! = `-diff -merge -text`, and `[attr]` lines in the top-level files) expand when set.

use git2::{ObjectType, Oid, Repository};
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One attribute's state on a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum State {
    /// `attr`
    Set,
    /// `-attr`
    Unset,
    /// `attr=value`
    Value(String),
    /// `!attr`: back to unspecified.
    Unspecified,
}

#[derive(Debug, Clone)]
struct Rule {
    pattern: Vec<u8>,
    /// The pattern has no slash (other than a trailing one): it matches the file name.
    basename: bool,
    /// A trailing slash: matches directories only, so never a file.
    dir_only: bool,
    attrs: Vec<(String, State)>,
}

/// The rules of one attributes file, and the directory it applies from ("" = the top).
#[derive(Debug, Clone, Default)]
pub(crate) struct RuleFile {
    dir: String,
    rules: Vec<Rule>,
    macros: Vec<(String, Vec<(String, State)>)>,
}

/// Parse an attributes file that lives in directory `dir` ("" for the top level). Macro
/// definitions count only when `macros_allowed` (top-level files), as in git.
pub(crate) fn parse(text: &[u8], dir: &str, macros_allowed: bool) -> RuleFile {
    let mut out = RuleFile {
        dir: dir.to_string(),
        ..RuleFile::default()
    };
    for raw in text.split(|&b| b == b'\n') {
        let line = trim(raw.strip_suffix(b"\r").unwrap_or(raw));
        if line.is_empty() || line[0] == b'#' {
            continue;
        }
        let (pattern, rest) = if line[0] == b'"' {
            match unquote(line) {
                Some(x) => x,
                None => continue,
            }
        } else {
            let end = line
                .iter()
                .position(|b| b.is_ascii_whitespace())
                .unwrap_or(line.len());
            (line[..end].to_vec(), &line[end..])
        };
        let attrs: Vec<(String, State)> = rest
            .split(|b| b.is_ascii_whitespace())
            .filter(|w| !w.is_empty())
            .map(|w| {
                let w = String::from_utf8_lossy(w);
                if let Some(n) = w.strip_prefix('-') {
                    (n.to_string(), State::Unset)
                } else if let Some(n) = w.strip_prefix('!') {
                    (n.to_string(), State::Unspecified)
                } else if let Some((n, v)) = w.split_once('=') {
                    (n.to_string(), State::Value(v.to_string()))
                } else {
                    (w.to_string(), State::Set)
                }
            })
            .collect();
        if let Some(name) = pattern.strip_prefix(b"[attr]") {
            if macros_allowed {
                out.macros
                    .push((String::from_utf8_lossy(name).into_owned(), attrs));
            }
            continue;
        }
        if pattern.first() == Some(&b'!') {
            // Negative patterns are forbidden in attributes files; git ignores the line.
            continue;
        }
        let mut pattern = pattern;
        let dir_only = pattern.len() > 1 && pattern.ends_with(b"/");
        if dir_only {
            pattern.pop();
        }
        let basename = !pattern.contains(&b'/');
        if pattern.first() == Some(&b'/') {
            pattern.remove(0);
        }
        out.rules.push(Rule {
            pattern,
            basename,
            dir_only,
            attrs,
        });
    }
    out
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if first.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if last.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// A C-quoted pattern (`"a b.txt" merge=union`): the pattern and what follows it.
fn unquote(line: &[u8]) -> Option<(Vec<u8>, &[u8])> {
    let mut out = Vec::new();
    let mut i = 1;
    while i < line.len() {
        match line[i] {
            b'"' => return Some((out, &line[i + 1..])),
            b'\\' if i + 1 < line.len() => {
                i += 1;
                let c = line[i];
                match c {
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'0'..=b'7' if i + 2 < line.len() => {
                        let oct = std::str::from_utf8(&line[i..i + 3]).ok()?;
                        out.push(u8::from_str_radix(oct, 8).ok()?);
                        i += 2;
                    }
                    _ => out.push(c),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    None
}

/// git's `wildmatch` with `WM_PATHNAME`: `*` and `?` never match `/`; `**` between
/// slashes (or at either end) matches any number of directories.
pub(crate) fn wildmatch(p: &[u8], t: &[u8]) -> bool {
    wm(p, t, true)
}

fn wm(p: &[u8], t: &[u8], at_start: bool) -> bool {
    let Some((&c, rest)) = p.split_first() else {
        return t.is_empty();
    };
    match c {
        b'*' => {
            let stars = p.iter().take_while(|&&b| b == b'*').count();
            let after = &p[stars..];
            let double = stars >= 2 && at_start && (after.is_empty() || after[0] == b'/');
            if double {
                if after.is_empty() {
                    return true;
                }
                // `**/`: zero directories, or any number of them.
                let tail = &after[1..];
                if wm(tail, t, true) {
                    return true;
                }
                return t
                    .iter()
                    .enumerate()
                    .any(|(k, &b)| b == b'/' && wm(tail, &t[k + 1..], true));
            }
            for k in 0..=t.len() {
                if wm(after, &t[k..], false) {
                    return true;
                }
                if k < t.len() && t[k] == b'/' {
                    break;
                }
            }
            false
        }
        b'?' => match t.split_first() {
            Some((&x, tr)) if x != b'/' => wm(rest, tr, false),
            _ => false,
        },
        b'[' => {
            let Some((&x, tr)) = t.split_first() else {
                return false;
            };
            match class(rest, x) {
                Some((true, after)) if x != b'/' => wm(after, tr, false),
                Some(_) => false,
                // An unclosed bracket is a literal '['.
                None => x == b'[' && wm(rest, tr, false),
            }
        }
        b'\\' if !rest.is_empty() => match t.split_first() {
            Some((&x, tr)) if x == rest[0] => wm(&rest[1..], tr, false),
            _ => false,
        },
        _ => match t.split_first() {
            Some((&x, tr)) if x == c => wm(rest, tr, c == b'/'),
            _ => false,
        },
    }
}

/// A bracket expression after its `[`: whether `x` matches, and the pattern after `]`.
fn class(p: &[u8], x: u8) -> Option<(bool, &[u8])> {
    let mut i = 0;
    let negate = matches!(p.first(), Some(b'!') | Some(b'^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < p.len() {
        let c = p[i];
        if c == b']' && !first {
            return Some((matched != negate, &p[i + 1..]));
        }
        first = false;
        if c == b'[' && p.get(i + 1) == Some(&b':') {
            if let Some(end) = p[i + 2..].windows(2).position(|w| w == b":]") {
                let name = &p[i + 2..i + 2 + end];
                matched |= match name {
                    b"alnum" => x.is_ascii_alphanumeric(),
                    b"alpha" => x.is_ascii_alphabetic(),
                    b"digit" => x.is_ascii_digit(),
                    b"lower" => x.is_ascii_lowercase(),
                    b"upper" => x.is_ascii_uppercase(),
                    b"space" => x.is_ascii_whitespace(),
                    b"punct" => x.is_ascii_punctuation(),
                    b"xdigit" => x.is_ascii_hexdigit(),
                    b"blank" => x == b' ' || x == b'\t',
                    b"cntrl" => x.is_ascii_control(),
                    b"graph" => x.is_ascii_graphic(),
                    b"print" => x.is_ascii_graphic() || x == b' ',
                    _ => false,
                };
                i += 2 + end + 2;
                continue;
            }
        }
        let lo = if c == b'\\' && i + 1 < p.len() {
            i += 1;
            p[i]
        } else {
            c
        };
        if p.get(i + 1) == Some(&b'-') && p.get(i + 2).is_some_and(|&e| e != b']') {
            let mut hi = p[i + 2];
            i += 2;
            if hi == b'\\' && i + 1 < p.len() {
                i += 1;
                hi = p[i];
            }
            matched |= lo <= x && x <= hi;
        } else {
            matched |= lo == x;
        }
        i += 1;
    }
    None
}

impl Rule {
    fn matches(&self, dir: &str, path: &str) -> bool {
        if self.dir_only {
            return false;
        }
        if self.basename {
            let name = path.rsplit('/').next().unwrap_or(path);
            return wildmatch(&self.pattern, name.as_bytes());
        }
        let rest = if dir.is_empty() {
            path
        } else {
            match path.strip_prefix(dir).and_then(|r| r.strip_prefix('/')) {
                Some(r) => r,
                None => return false,
            }
        };
        wildmatch(&self.pattern, rest.as_bytes())
    }
}

/// git's built-in macro.
fn builtin_macros() -> HashMap<String, Vec<(String, State)>> {
    let mut m = HashMap::new();
    m.insert(
        "binary".to_string(),
        vec![
            ("diff".to_string(), State::Unset),
            ("merge".to_string(), State::Unset),
            ("text".to_string(), State::Unset),
        ],
    );
    m
}

/// The attributes of `path` from `files`, lowest precedence first: each attribute's state,
/// the unspecified ones left out.
pub(crate) fn lookup(files: &[&RuleFile], path: &str) -> HashMap<String, State> {
    let mut macros = builtin_macros();
    for f in files {
        for (name, attrs) in &f.macros {
            macros.insert(name.clone(), attrs.clone());
        }
    }
    let mut decided: HashMap<String, State> = HashMap::new();
    for f in files.iter().rev() {
        let applies = f.dir.is_empty()
            || path
                .strip_prefix(f.dir.as_str())
                .is_some_and(|r| r.starts_with('/'));
        if !applies {
            continue;
        }
        for rule in f.rules.iter().rev() {
            if rule.matches(&f.dir, path) {
                fill(&mut decided, &rule.attrs, &macros, 0);
            }
        }
    }
    decided.retain(|_, s| *s != State::Unspecified);
    decided
}

fn fill(
    decided: &mut HashMap<String, State>,
    attrs: &[(String, State)],
    macros: &HashMap<String, Vec<(String, State)>>,
    depth: usize,
) {
    // Later attributes on a line win, as git fills them from the end.
    for (name, state) in attrs.iter().rev() {
        if decided.contains_key(name) {
            continue;
        }
        decided.insert(name.clone(), state.clone());
        if *state == State::Set && depth < 8 {
            if let Some(expansion) = macros.get(name) {
                fill(decided, expansion, macros, depth + 1);
            }
        }
    }
}

/// How one file's contents are merged, from its `merge` attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Driver {
    /// The default three-way text merge (`merge`, `merge=text`, unspecified).
    Text,
    /// `merge=union`: both sides' lines, no conflict.
    Union,
    /// `-merge`, `merge=binary`: keep ours, conflict.
    Binary,
    /// `merge=<name>` with `merge.<name>.driver` configured: a command.
    External { name: String, command: String },
}

/// The merge attributes of one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MergeAttrs {
    pub driver: Driver,
    /// `conflict-marker-size`, default 7.
    pub marker_size: usize,
}

impl Default for MergeAttrs {
    fn default() -> Self {
        MergeAttrs {
            driver: Driver::Text,
            marker_size: 7,
        }
    }
}

/// git's `find_ll_merge_driver`: a configured driver of that name first, then the
/// built-in ones, then the text merge.
pub(crate) fn driver_for(
    merge: Option<&State>,
    default_driver: Option<&str>,
    configured: &dyn Fn(&str) -> Option<String>,
) -> Driver {
    let name = match merge {
        Some(State::Set) => return Driver::Text,
        Some(State::Unset) => return Driver::Binary,
        Some(State::Value(v)) => v.as_str(),
        Some(State::Unspecified) | None => match default_driver {
            Some(d) => d,
            None => return Driver::Text,
        },
    };
    if let Some(command) = configured(name) {
        return Driver::External {
            name: name.to_string(),
            command,
        };
    }
    match name {
        "union" => Driver::Union,
        "binary" => Driver::Binary,
        _ => Driver::Text,
    }
}

/// `conflict-marker-size`: a positive number, else the default 7.
pub(crate) fn marker_size(state: Option<&State>) -> usize {
    match state {
        Some(State::Value(v)) => {
            // git's atoi: leading digits.
            let digits: String = v.chars().take_while(|c| c.is_ascii_digit()).collect();
            digits.parse::<usize>().ok().filter(|&n| n > 0).unwrap_or(7)
        }
        _ => 7,
    }
}

/// Where the per-directory `.gitattributes` files come from.
enum Source {
    /// The working tree's top directory.
    Worktree(PathBuf),
    /// `attr.tree`.
    Tree(Oid),
    /// A bare repository: none.
    None,
}

/// The merge attributes of a repository, read as `git merge-tree` reads them; files are
/// read once and the answers cached.
pub(crate) struct Attributes {
    source: Source,
    /// The global and system files (lowest first), and `info/attributes`.
    below: Vec<RuleFile>,
    info: RuleFile,
    per_dir: RefCell<HashMap<String, RuleFile>>,
    default_driver: Option<String>,
    drivers: HashMap<String, String>,
    cache: RefCell<HashMap<String, MergeAttrs>>,
    /// Where git runs a driver (the working tree's top, or the git directory).
    pub run_dir: PathBuf,
}

impl Attributes {
    pub fn load(repo: &Repository) -> Self {
        let cfg = repo.config().ok();
        let get = |k: &str| cfg.as_ref().and_then(|c| c.get_string(k).ok());
        let mut drivers = HashMap::new();
        if let Some(c) = &cfg {
            if let Ok(mut entries) = c.entries(Some(r"^merge\..+\.driver$")) {
                while let Some(Ok(e)) = entries.next() {
                    if let (Ok(name), Ok(v)) = (e.name(), e.value()) {
                        let inner = &name["merge.".len()..name.len() - ".driver".len()];
                        drivers.insert(inner.to_string(), v.to_string());
                    }
                }
            }
        }
        let source = match get("attr.tree") {
            Some(t) => match repo.revparse_single(&t).and_then(|o| o.peel_to_tree()) {
                Ok(tree) => Source::Tree(tree.id()),
                Err(_) => Source::None,
            },
            None => match repo.workdir() {
                Some(w) => Source::Worktree(w.to_path_buf()),
                None => Source::None,
            },
        };
        let mut below = Vec::new();
        if std::env::var_os("GIT_ATTR_NOSYSTEM").is_none() {
            below.push(read_file(Path::new("/etc/gitattributes")));
        }
        let global = match cfg
            .as_ref()
            .and_then(|c| c.get_path("core.attributesFile").ok())
        {
            Some(p) => Some(p),
            None => std::env::var_os("XDG_CONFIG_HOME")
                .filter(|x| !x.is_empty())
                .map(|x| PathBuf::from(x).join("git/attributes"))
                .or_else(|| {
                    std::env::var_os("HOME")
                        .map(|h| PathBuf::from(h).join(".config/git/attributes"))
                }),
        };
        if let Some(g) = global {
            below.push(read_file(&g));
        }
        let info = read_file(&repo.path().join("info/attributes"));
        let run_dir = repo.workdir().unwrap_or_else(|| repo.path()).to_path_buf();
        Attributes {
            source,
            below,
            info,
            per_dir: RefCell::default(),
            default_driver: get("merge.default"),
            drivers,
            cache: RefCell::default(),
            run_dir,
        }
    }

    fn dir_file(&self, repo: &Repository, dir: &str) -> RuleFile {
        if let Some(f) = self.per_dir.borrow().get(dir) {
            return f.clone();
        }
        let rel = if dir.is_empty() {
            ".gitattributes".to_string()
        } else {
            format!("{dir}/.gitattributes")
        };
        let data = match &self.source {
            Source::Worktree(top) => std::fs::read(top.join(&rel)).ok(),
            Source::Tree(tree) => repo
                .find_tree(*tree)
                .and_then(|t| t.get_path(Path::new(&rel)))
                .ok()
                .filter(|e| e.kind() == Some(ObjectType::Blob))
                .and_then(|e| repo.find_blob(e.id()).ok())
                .map(|b| b.content().to_vec()),
            Source::None => None,
        };
        let f = data
            .map(|d| parse(&d, dir, dir.is_empty()))
            .unwrap_or_default();
        self.per_dir.borrow_mut().insert(dir.to_string(), f.clone());
        f
    }

    /// The merge attributes of `path`.
    pub fn of(&self, repo: &Repository, path: &str) -> MergeAttrs {
        if let Some(a) = self.cache.borrow().get(path) {
            return a.clone();
        }
        let mut dirs = vec![String::new()];
        for (i, c) in path.char_indices() {
            if c == '/' {
                dirs.push(path[..i].to_string());
            }
        }
        let per_dir: Vec<RuleFile> = dirs.iter().map(|d| self.dir_file(repo, d)).collect();
        let mut files: Vec<&RuleFile> = self.below.iter().collect();
        files.extend(per_dir.iter());
        files.push(&self.info);
        let attrs = lookup(&files, path);
        let configured = |name: &str| self.drivers.get(name).cloned();
        let a = MergeAttrs {
            driver: driver_for(
                attrs.get("merge"),
                self.default_driver.as_deref(),
                &configured,
            ),
            marker_size: marker_size(attrs.get("conflict-marker-size")),
        };
        self.cache.borrow_mut().insert(path.to_string(), a.clone());
        a
    }
}

fn read_file(path: &Path) -> RuleFile {
    std::fs::read(path)
        .map(|d| parse(&d, "", true))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildmatch_follows_git() {
        let yes = [
            ("*.txt", "a.txt"),
            ("a/*.txt", "a/b.txt"),
            ("**/x", "x"),
            ("**/x", "a/b/x"),
            ("a/**/b", "a/b"),
            ("a/**/b", "a/x/y/b"),
            ("a/**", "a/b/c"),
            ("[a-c]?.md", "bx.md"),
            ("[!a]x", "bx"),
            ("\\*", "*"),
            ("[[:digit:]]*", "1abc"),
        ];
        let no = [
            ("*.txt", "a/b.txt"),
            ("a/*.txt", "a/b/c.txt"),
            ("a/**", "a"),
            ("a/**/b", "a/xb"),
            ("[a-c]?.md", "dx.md"),
            ("[!a]x", "ax"),
            ("?", "/"),
            ("a**b", "a/b"),
        ];
        for (p, t) in yes {
            assert!(
                wildmatch(p.as_bytes(), t.as_bytes()),
                "{p} should match {t}"
            );
        }
        for (p, t) in no {
            assert!(
                !wildmatch(p.as_bytes(), t.as_bytes()),
                "{p} should not match {t}"
            );
        }
    }

    fn attrs_of(files: &[(&str, &str)], path: &str) -> HashMap<String, State> {
        let parsed: Vec<RuleFile> = files
            .iter()
            .map(|(dir, text)| parse(text.as_bytes(), dir, dir.is_empty()))
            .collect();
        let refs: Vec<&RuleFile> = parsed.iter().collect();
        lookup(&refs, path)
    }

    #[test]
    fn precedence_macros_and_patterns() {
        let top = "*.log merge=union\n\
                   # a comment\n\
                   docs/*.md merge=text conflict-marker-size=12\n\
                   *.png binary\n\
                   /root.txt -merge\n\
                   [attr]mine merge=mydrv\n\
                   *.x mine\n\
                   keep.log !merge\n\
                   build/ merge=union\n\
                   \"sp ace.txt\" merge=union\n";
        let sub = "*.log merge=binary\n";
        let files = [("", top), ("sub", sub)];
        let get = |p: &str| attrs_of(&files, p).get("merge").cloned();
        assert_eq!(get("a/b/c.log"), Some(State::Value("union".into())));
        // The deeper file wins.
        assert_eq!(get("sub/c.log"), Some(State::Value("binary".into())));
        assert_eq!(get("docs/a.md"), Some(State::Value("text".into())));
        assert_eq!(
            get("x/docs/a.md"),
            None,
            "a pattern with a slash is anchored"
        );
        assert_eq!(get("img/a.png"), Some(State::Unset), "binary = -merge");
        assert_eq!(get("root.txt"), Some(State::Unset));
        assert_eq!(get("sub/root.txt"), None);
        assert_eq!(get("a.x"), Some(State::Value("mydrv".into())), "macro");
        assert_eq!(get("keep.log"), None, "!merge resets");
        assert_eq!(
            get("build"),
            None,
            "a directory pattern never matches a file"
        );
        assert_eq!(get("sp ace.txt"), Some(State::Value("union".into())));
        let a = attrs_of(&files, "docs/a.md");
        assert_eq!(marker_size(a.get("conflict-marker-size")), 12);
        // Macros are only read from the top-level file.
        let nested = [("", "*.y m2\n"), ("d", "[attr]m2 -merge\n")];
        assert_eq!(attrs_of(&nested, "d/a.y").get("merge"), None);
    }

    #[test]
    fn drivers_are_chosen_as_git_chooses() {
        let none = |_: &str| None;
        let mine = |n: &str| (n == "mine" || n == "union").then(|| format!("run-{n} %A"));
        assert_eq!(driver_for(None, None, &none), Driver::Text);
        assert_eq!(driver_for(Some(&State::Set), None, &none), Driver::Text);
        assert_eq!(driver_for(Some(&State::Unset), None, &none), Driver::Binary);
        let v = |s: &str| State::Value(s.to_string());
        assert_eq!(driver_for(Some(&v("union")), None, &none), Driver::Union);
        assert_eq!(driver_for(Some(&v("binary")), None, &none), Driver::Binary);
        assert_eq!(driver_for(Some(&v("text")), None, &none), Driver::Text);
        // Not configured: the text merge.
        assert_eq!(driver_for(Some(&v("nosuch")), None, &none), Driver::Text);
        // A configured driver, even one named like a built-in, wins.
        assert_eq!(
            driver_for(Some(&v("union")), None, &mine),
            Driver::External {
                name: "union".into(),
                command: "run-union %A".into()
            }
        );
        // merge.default applies to unspecified paths only.
        assert_eq!(driver_for(None, Some("binary"), &none), Driver::Binary);
        assert_eq!(
            driver_for(Some(&State::Set), Some("binary"), &none),
            Driver::Text
        );
        assert_eq!(marker_size(Some(&v("0"))), 7);
        assert_eq!(marker_size(Some(&v("20x"))), 20);
        assert_eq!(marker_size(None), 7);
    }
}
