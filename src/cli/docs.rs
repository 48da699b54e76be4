//! Man pages (clap_mangen) and shell completions (clap_complete, plus the `_git_ws_run` /
//! `_git_ws_report` / `_git_ws_merge` shims git's bash completion looks for), generated from
//! the clap definitions so they never drift from the flags. Each man page's EXIT STATUS
//! section is written from [`crate::error::exit_statuses`]. Also what every binary shares
//! about its documentation: `--generate-man` / `--generate-completions`, installing the man
//! pages beside the install prefix on first use (git turns `git ws-run --help` into
//! `git help ws-run`, a man page), and clap's error footer pointing to `-h`.

use super::merge::MergeArgs;
use super::report::ReportArgs;
use super::review::ReviewArgs;
use super::RunArgs;
use clap::CommandFactory;
use std::path::Path;

/// The documentation flags every binary accepts (flattened into each one's arguments).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DocsArgs {
    /// Write the man pages (git-ws-run.1, git-ws-report.1, git-ws-merge.1, git-ws-review.1)
    /// into DIR, then exit
    #[arg(long, value_name = "DIR")]
    pub generate_man: Option<std::path::PathBuf>,
    /// Print shell completions for SHELL (bash includes the `git ws-run` shims), then exit
    #[arg(long, value_name = "SHELL")]
    pub generate_completions: Option<clap_complete::Shell>,
}

impl DocsArgs {
    /// Do what the flags ask; `Some(exit status)` when one was given (`tool` prefixes errors).
    pub fn run(&self, tool: &str) -> Option<i32> {
        if let Some(dir) = &self.generate_man {
            return Some(match write_man_pages(dir) {
                Ok(paths) => {
                    for p in paths {
                        println!("{}", p.display());
                    }
                    0
                }
                Err(e) => {
                    eprintln!(
                        "{tool}: failed to write man pages to {}: {e}",
                        dir.display()
                    );
                    crate::error::EXIT_NOTHING_RAN
                }
            });
        }
        self.generate_completions.map(|shell| {
            print!("{}", completions(shell));
            0
        })
    }
}

/// Parse the command line of a git-ws binary: first install the man pages if they are
/// missing or stale ([`install_man_pages`]), then parse; a usage error's footer points to
/// `-h` (which always works) instead of `--help` (which git turns into `git help`, a man
/// page that may not be installed).
pub fn parse<T: clap::Parser>() -> T {
    install_man_pages();
    match T::try_parse() {
        Ok(args) => args,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                e.exit();
            }
            eprint!("{}", short_help_footer(&e.render().to_string()));
            std::process::exit(e.exit_code());
        }
    }
}

/// clap's error text with its "try '--help'" footer pointing to `-h`.
pub fn short_help_footer(error: &str) -> String {
    error.replace("try '--help'", "try '-h'")
}

/// Where the man pages of this installation go: `<prefix>/share/man/man1`, `<prefix>` being
/// the parent of the directory that holds `exe` (man finds it through `<prefix>/bin` on
/// PATH).
pub fn man_dir_for(exe: &Path) -> Option<std::path::PathBuf> {
    Some(exe.parent()?.parent()?.join("share/man/man1"))
}

/// Whether the pages in `dir` are missing or older than the binary `exe`.
fn man_pages_stale(dir: &Path, exe: &Path) -> bool {
    let Ok(built) = std::fs::metadata(exe).and_then(|m| m.modified()) else {
        return false;
    };
    MAN_PAGES.iter().any(|name| {
        std::fs::metadata(dir.join(format!("{name}.1")))
            .and_then(|m| m.modified())
            .map_or(true, |t| t < built)
    })
}

/// The man pages every binary writes.
const MAN_PAGES: [&str; 4] = [
    "git-ws-run",
    "git-ws-report",
    "git-ws-merge",
    "git-ws-review",
];

/// First use of an installation: write the man pages into `<prefix>/share/man/man1` when
/// they are missing or older than the running binary and that directory can be written.
/// When it cannot, say once (a marker under `$XDG_STATE_HOME/git-ws`, else
/// `~/.local/state/git-ws`) how to install them. Never fails the command.
pub fn install_man_pages() {
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let Some(dir) = man_dir_for(&exe) else {
        return;
    };
    if !man_pages_stale(&dir, &exe) {
        return;
    }
    if write_man_pages_atomically(&dir).is_ok() {
        return;
    }
    let Some(marker) = hint_marker() else {
        return;
    };
    if marker.exists() {
        return;
    }
    eprintln!(
        "git-ws: the man pages (what `git ws-run --help` shows) are not installed and {} cannot be written; install them with `git ws-run --generate-man ~/.local/share/man/man1` (`-h` always works). This note is shown once.",
        dir.display()
    );
    if let Some(parent) = marker.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let _ = std::fs::write(&marker, "");
}

/// The marker that the man page hint was shown.
fn hint_marker() -> Option<std::path::PathBuf> {
    let state = match std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        Some(d) => std::path::PathBuf::from(d),
        None => std::path::PathBuf::from(std::env::var_os("HOME")?).join(".local/state"),
    };
    Some(state.join("git-ws/man-hint-shown"))
}

/// [`write_man_pages`] into a fresh directory beside `dir`, then each page renamed into
/// `dir`: binaries starting at the same moment never see half a page.
fn write_man_pages_atomically(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".git-ws-{}", std::process::id()));
    let result = write_man_pages(&tmp).and_then(|paths| {
        for p in paths {
            if let Some(name) = p.file_name() {
                std::fs::rename(&p, dir.join(name))?;
            }
        }
        Ok(())
    });
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

/// Write `git-ws-run.1`, `git-ws-report.1`, `git-ws-merge.1` and `git-ws-review.1` into
/// `dir`; returns the paths written.
pub fn write_man_pages(dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for (name, cmd) in [
        ("git-ws-run", RunArgs::command()),
        ("git-ws-report", ReportArgs::command()),
        ("git-ws-merge", MergeArgs::command()),
        ("git-ws-review", ReviewArgs::command()),
    ] {
        let cmd = cmd.name(name);
        let path = dir.join(format!("{name}.1"));
        let mut buf = Vec::new();
        clap_mangen::Man::new(cmd).render(&mut buf)?;
        let page = with_exit_status(&String::from_utf8_lossy(&buf), name);
        std::fs::write(&path, page)?;
        written.push(path);
    }
    Ok(written)
}

/// `page` with an EXIT STATUS section (the documented codes of binary `name`) before its
/// VERSION section, or at its end.
fn with_exit_status(page: &str, name: &str) -> String {
    use clap_mangen::roff::{bold, roman, Roff};
    let mut roff = Roff::new();
    roff.control("SH", ["EXIT STATUS"]);
    for s in crate::error::exit_statuses(name) {
        roff.control("TP", []);
        roff.text([bold(s.code.to_string())]);
        roff.text([roman(s.meaning)]);
    }
    let section = roff.to_roff();
    match page.find("\n.SH VERSION") {
        Some(i) => format!("{}\n{section}{}", &page[..i], &page[i + 1..]),
        None => format!("{page}{section}"),
    }
}

/// Completion script for `shell` covering both commands. For bash it includes the shims
/// that make `git ws-run <TAB>` and `git ws-report <TAB>` complete through git's own
/// completion.
pub fn completions(shell: clap_complete::Shell) -> String {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut RunArgs::command(), "git-ws-run", &mut out);
    clap_complete::generate(shell, &mut ReportArgs::command(), "git-ws-report", &mut out);
    clap_complete::generate(shell, &mut MergeArgs::command(), "git-ws-merge", &mut out);
    clap_complete::generate(shell, &mut ReviewArgs::command(), "git-ws-review", &mut out);
    let mut s = String::from_utf8_lossy(&out).into_owned();
    if shell == clap_complete::Shell::Bash {
        s.push_str(BASH_SHIMS);
    }
    s
}

/// git's bash completion calls `_git_<sub>` for `git <sub>`, with COMP_WORDS starting at
/// `git`: hand clap's functions the words as if `git-ws-run` had been typed.
const BASH_SHIMS: &str = r#"
# git subcommand shims: `git ws-run <TAB>`, `git ws-report <TAB>`, `git ws-merge <TAB>`,
# `git ws-review <TAB>`.
__git_ws_delegate() {
    local fn="$1" bin="$2"
    local -a words=("$bin" "${COMP_WORDS[@]:2}")
    local cword=$((COMP_CWORD - 1))
    COMP_WORDS=("${words[@]}")
    COMP_CWORD=$cword
    "$fn" "$bin" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
}
_git_ws_run() { __git_ws_delegate _git__ws__run git-ws-run; }
_git_ws_report() { __git_ws_delegate _git__ws__report git-ws-report; }
_git_ws_merge() { __git_ws_delegate _git__ws__merge git-ws-merge; }
_git_ws_review() { __git_ws_delegate _git__ws__review git-ws-review; }
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn man_pages_document_every_flag() {
        let d = tempfile::tempdir().unwrap();
        let paths = write_man_pages(d.path()).unwrap();
        let run = std::fs::read_to_string(&paths[0]).unwrap();
        for flag in [
            "agents",
            "rerun\\-failed",
            "dry\\-run",
            "install\\-hooks",
            "keep\\-worktrees",
            "remove\\-worktrees",
            "prune\\-worktrees",
            "prune\\-branches",
            "older\\-than",
            "ws.worktreeExpiry",
        ] {
            assert!(run.contains(flag), "{flag} missing from the man page");
        }
        assert!(run.contains(".TH git-ws-run"), "{}", &run[..200]);
        let report = std::fs::read_to_string(&paths[1]).unwrap();
        assert!(report.contains("timeline"));
        let merge = std::fs::read_to_string(&paths[2]).unwrap();
        assert!(merge.contains(".TH git-ws-merge"));
        for (page, name) in [
            (&run, "git-ws-run"),
            (&report, "git-ws-report"),
            (&merge, "git-ws-merge"),
        ] {
            let section = page
                .split(".SH \"EXIT STATUS\"\n")
                .nth(1)
                .unwrap_or_else(|| panic!("{name}.1 has no EXIT STATUS section"));
            let section = section.split("\n.SH ").next().unwrap();
            let statuses = crate::error::exit_statuses(name);
            assert!(!statuses.is_empty());
            for s in statuses {
                assert!(
                    section.contains(&format!("\\fB{}\\fR", s.code)),
                    "{name}.1: exit {} missing from {section}",
                    s.code
                );
            }
        }
        for flag in ["onto", "into", "dry\\-run", "ws.integrationTest", "timeout"] {
            assert!(merge.contains(flag), "{flag} missing from git-ws-merge.1");
        }
    }

    #[test]
    fn bash_completion_has_the_git_shims() {
        let s = completions(clap_complete::Shell::Bash);
        assert!(s.contains("_git_ws_run()"));
        assert!(s.contains("_git_ws_merge()"));
        assert!(s.contains("_git__ws__merge()"));
        assert!(s.contains("_git__ws__run()"));
        assert!(s.contains("--rerun-failed"));
    }
}
