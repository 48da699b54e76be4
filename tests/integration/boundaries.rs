//! The crate boundaries carry typed errors: no `pub` function, type alias or `FromStr` of
//! the layer crates (`crates/*/src`) returns a bare `String` as its error. Crate-internal
//! helpers (`pub(crate)`, `pub(super)`, private) may.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, recursively, sorted.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The generic arguments of `ty` if it is `Result<…>` (any path to it), split at its top
/// level: `Result<Vec<u8>, String>` → `["Vec<u8>", "String"]`.
fn result_args(ty: &str) -> Option<Vec<String>> {
    let ty = ty.trim();
    let start = ty.find("Result<")?;
    let head = &ty[..start];
    if !(head.is_empty() || head.ends_with("::")) {
        return None;
    }
    let inner = ty[start + "Result<".len()..].strip_suffix('>')?;
    let (mut args, mut depth, mut cur) = (Vec::new(), 0i32, String::new());
    for c in inner.chars() {
        match c {
            '<' | '(' | '[' => depth += 1,
            '>' | ')' | ']' => depth -= 1,
            ',' if depth == 0 => {
                args.push(cur.trim().to_string());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    args.push(cur.trim().to_string());
    Some(args)
}

fn is_string(ty: &str) -> bool {
    matches!(
        ty.trim(),
        "String" | "std::string::String" | "string::String"
    )
}

/// The public items of one file whose error type is a bare `String`: `line: item`.
fn string_errors(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let at = offset;
        offset += line.len();
        let t = line.trim_start();
        let line_no = text[..at].matches('\n').count() + 1;
        // `pub fn`, `pub const fn`, `pub async fn`, `pub unsafe fn`; never `pub(crate)`.
        let Some(rest) = t.strip_prefix("pub ") else {
            if let Some(ty) = t.strip_prefix("type Err =") {
                if is_string(ty.trim_end().trim_end_matches(';')) {
                    found.push(format!("{line_no}: {}", t.trim_end()));
                }
            }
            continue;
        };
        let rest = rest.trim_start();
        if let Some(alias) = rest.strip_prefix("type ") {
            if let Some((_, ty)) = alias.split_once('=') {
                let ty = ty.trim_end().trim_end_matches(';');
                if result_args(ty).is_some_and(|a| a.last().is_some_and(|e| is_string(e))) {
                    found.push(format!("{line_no}: {}", t.trim_end()));
                }
            }
            continue;
        }
        let rest = ["const ", "async ", "unsafe ", "extern \"C\" "]
            .iter()
            .fold(rest, |r, q| r.strip_prefix(q).unwrap_or(r));
        if !rest.starts_with("fn ") {
            continue;
        }
        // The signature: up to the body or `;` at bracket depth 0.
        let sig_start = at + (line.len() - t.len());
        let mut depth = 0i32;
        let mut end = text.len();
        let bytes = text.as_bytes();
        for (i, &b) in bytes.iter().enumerate().skip(sig_start) {
            match b {
                b'(' | b'[' | b'<' => depth += 1,
                b')' | b']' => depth -= 1,
                b'>' if bytes[i - 1] != b'-' => depth -= 1,
                b'{' | b';' if depth <= 0 => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        let sig = text[sig_start..end].split_whitespace().collect::<Vec<_>>();
        let sig = sig.join(" ");
        let Some((_, ret)) = sig.rsplit_once(") -> ") else {
            continue;
        };
        let ret = ret.split(" where ").next().unwrap_or(ret);
        if result_args(ret).is_some_and(|a| a.len() == 2 && is_string(&a[1])) {
            found.push(format!("{line_no}: {sig}"));
        }
    }
    found
}

#[test]
fn the_scanner_finds_string_errors_and_only_public_ones() {
    let sample = r#"
/// pub fn in_a_comment() -> Result<(), String>
pub fn one() -> Result<u16, String> {
    todo!()
}
pub fn multi(
    a: &str,
    b: Vec<Result<u8, String>>,
) -> Result<(Vec<String>, Vec<u8>), String> {
    todo!()
}
    pub fn in_impl(&self) -> std::result::Result<Option<bool>, String>;
pub(crate) fn internal() -> Result<(), String> {}
fn private() -> Result<(), String> {}
pub fn typed() -> Result<String, Invalid> {}
pub fn generic<E: From<String>>(f: impl Fn() -> Result<(), String>) -> Result<(), E> {}
pub fn bounded<T>(x: T) -> Result<T, String>
where
    T: Clone,
{
}
pub type Alias<T> = Result<T, String>;
impl FromStr for X {
    type Err = String;
}
"#;
    let found = string_errors(sample);
    let names: Vec<&str> = found
        .iter()
        .map(|f| {
            ["one", "multi", "in_impl", "bounded", "Alias", "Err"]
                .into_iter()
                .find(|n| f.contains(&format!(" {n}")))
                .unwrap_or(f)
        })
        .collect();
    assert_eq!(
        names,
        ["one", "multi", "in_impl", "bounded", "Alias", "Err"],
        "{found:#?}"
    );
}

#[test]
fn no_public_function_of_a_layer_crate_returns_a_string_error() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates");
    let mut files = Vec::new();
    for member in ["core", "git", "db"] {
        let src = crates.join(member).join("src");
        assert!(src.is_dir(), "{} is missing", src.display());
        rust_files(&src, &mut files);
    }
    assert!(files.len() > 30, "{} files", files.len());
    let mut offenders = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for hit in string_errors(&text) {
            let rel = f.strip_prefix(&crates).unwrap_or(f);
            offenders.push(format!("crates/{}:{hit}", rel.display()));
        }
    }
    assert!(
        offenders.is_empty(),
        "public items whose error is a bare String (give them a typed error: \
         ws_core::Invalid, ws_git::GitError, ws_db::DbError, or make them pub(crate)):\n{}",
        offenders.join("\n")
    );
}
