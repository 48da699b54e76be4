//! The file-level merge git's `ll_merge` runs for one path, chosen by its attributes
//! ([`super::attributes`]): the text merge, `union`, `binary`, or a configured driver
//! command (`merge.<name>.driver`) run as git runs it.
//!
//! A driver command gets its placeholders expanded (`%O` base, `%A` ours, `%B` theirs:
//! temporary files named `.merge_file_XXXXXX` in the directory git runs in, the working
//! tree's top; `%L` the conflict marker size; `%P` the path, shell-quoted; `%S`/`%X`/`%Y`
//! the labels; `%%`), runs with `sh -c` in that directory, and leaves its result in `%A`.
//! Exit status 0 is a clean merge; anything else is a conflict.

use super::attributes::{Driver, MergeAttrs};
use super::xmerge::{self, TextMerge};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

/// The names shown in conflict labels (`%S`, `%X`, `%Y`).
pub(crate) struct Labels<'a> {
    pub base: &'a str,
    pub ours: &'a str,
    pub theirs: &'a str,
}

/// Merge one file's three versions the way git would for `path`.
pub(crate) fn merge_file(
    attrs: &MergeAttrs,
    run_dir: &Path,
    path: &str,
    base: &[u8],
    ours: &[u8],
    theirs: &[u8],
    labels: &Labels<'_>,
) -> TextMerge {
    match &attrs.driver {
        Driver::Text => xmerge::xdiff_merge(base, ours, theirs, false, attrs.marker_size),
        Driver::Union => xmerge::xdiff_merge(base, ours, theirs, true, attrs.marker_size),
        // ll_binary_merge: ours is kept, and it is a conflict.
        Driver::Binary => TextMerge::Binary,
        Driver::External { command, .. } => {
            match run_driver(command, run_dir, path, [base, ours, theirs], attrs, labels) {
                Ok(Some(merged)) => TextMerge::Clean(merged),
                // A failed driver, or one that could not run: git leaves the file conflicted.
                Ok(None) | Err(_) => TextMerge::Conflict,
            }
        }
    }
}

/// A temporary file git-style: `.merge_file_XXXXXX` in `dir`, removed on drop.
struct Temp {
    full: PathBuf,
    name: String,
}

impl Temp {
    fn create(dir: &Path, data: &[u8]) -> std::io::Result<Temp> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        loop {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos() as u64)
                .unwrap_or(0);
            let mut x = (std::process::id() as u64) << 32
                ^ nanos
                ^ COUNTER
                    .fetch_add(1, Ordering::Relaxed)
                    .wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let suffix: String = (0..6)
                .map(|_| {
                    let c = ALPHABET[(x % ALPHABET.len() as u64) as usize] as char;
                    x /= ALPHABET.len() as u64;
                    c
                })
                .collect();
            let name = format!(".merge_file_{suffix}");
            let full = dir.join(&name);
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&full)
            {
                Ok(mut f) => {
                    f.write_all(data)?;
                    return Ok(Temp { full, name });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.full);
    }
}

/// git's `sq_quote_buf`: `'…'` with each `'` written `'\''`.
fn sq_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Expand git's placeholders; an unknown `%x` stays as it is.
fn expand(command: &str, values: &[(char, &str)]) -> String {
    let mut out = String::with_capacity(command.len());
    let mut chars = command.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.peek().copied() {
            Some('%') => {
                chars.next();
                out.push('%');
            }
            Some(k) => match values.iter().find(|(p, _)| *p == k) {
                Some((_, v)) => {
                    chars.next();
                    out.push_str(v);
                }
                None => out.push('%'),
            },
            None => out.push('%'),
        }
    }
    out
}

/// Run a driver command; `Some(result)` when it exits 0.
fn run_driver(
    command: &str,
    run_dir: &Path,
    path: &str,
    [base, ours, theirs]: [&[u8]; 3],
    attrs: &MergeAttrs,
    labels: &Labels<'_>,
) -> std::io::Result<Option<Vec<u8>>> {
    let o = Temp::create(run_dir, base)?;
    let a = Temp::create(run_dir, ours)?;
    let b = Temp::create(run_dir, theirs)?;
    let size = attrs.marker_size.to_string();
    let quoted = sq_quote(path);
    let cmd = expand(
        command,
        &[
            ('O', &o.name),
            ('A', &a.name),
            ('B', &b.name),
            ('L', &size),
            ('P', &quoted),
            ('S', labels.base),
            ('X', labels.ours),
            ('Y', labels.theirs),
        ],
    );
    let status = Command::new("sh")
        .arg("-c")
        .arg(&cmd)
        .current_dir(run_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    let merged = std::fs::read(&a.full)?;
    Ok(status.success().then_some(merged))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(cmd: &str, size: usize) -> MergeAttrs {
        MergeAttrs {
            driver: Driver::External {
                name: "t".into(),
                command: cmd.into(),
            },
            marker_size: size,
        }
    }

    const LABELS: Labels<'static> = Labels {
        base: "base",
        ours: "ours",
        theirs: "theirs",
    };

    #[test]
    fn placeholders_expand_like_git() {
        let v = [('A', "a"), ('P', "'p'")];
        assert_eq!(expand("x %A %P %% %Z %", &v), "x a 'p' % %Z %");
        assert_eq!(sq_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn a_driver_runs_in_the_directory_with_its_files_and_status_decides() {
        let dir = tempfile::tempdir().unwrap();
        // Clean: writes base+ours+theirs, the size and the path into %A.
        let cat = "cat %O %B >> %A && echo %L %P >> %A";
        let r = merge_file(
            &ext(cat, 9),
            dir.path(),
            "d/f.txt",
            b"o\n",
            b"a\n",
            b"b\n",
            &LABELS,
        );
        assert_eq!(r, TextMerge::Clean(b"a\no\nb\n9 d/f.txt\n".to_vec()));
        // Exit status 1: a conflict.
        let r = merge_file(&ext("false", 7), dir.path(), "f", b"", b"a", b"b", &LABELS);
        assert_eq!(r, TextMerge::Conflict);
        // The temporary files are gone afterwards.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn builtin_drivers() {
        let base = b"1\n2\n";
        let (x, y) = (b"1\n2\nx\n", b"1\n2\ny\n");
        let union = MergeAttrs {
            driver: Driver::Union,
            marker_size: 7,
        };
        let text = MergeAttrs::default();
        let binary = MergeAttrs {
            driver: Driver::Binary,
            marker_size: 7,
        };
        let d = Path::new(".");
        assert_eq!(
            merge_file(&union, d, "f", base, x, y, &LABELS),
            TextMerge::Clean(b"1\n2\nx\ny\n".to_vec())
        );
        assert_eq!(
            merge_file(&text, d, "f", base, x, y, &LABELS),
            TextMerge::Conflict
        );
        assert_eq!(
            merge_file(&binary, d, "f", base, x, base, &LABELS),
            TextMerge::Binary
        );
        // Union still refuses binary files.
        assert_eq!(
            merge_file(&union, d, "f", b"\0", b"\0a", b"\0b", &LABELS),
            TextMerge::Binary
        );
    }
}
