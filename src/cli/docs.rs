//! Man pages (clap_mangen) and shell completions (clap_complete, plus the `_git_ws_run` /
//! `_git_ws_report` / `_git_ws_merge` shims git's bash completion looks for), generated from
//! the clap definitions so they never drift from the flags. Each man page's EXIT STATUS
//! section is written from [`crate::error::exit_statuses`].

use super::merge::MergeArgs;
use super::report::ReportArgs;
use super::review::ReviewArgs;
use super::RunArgs;
use clap::CommandFactory;
use std::path::Path;

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
    let mut s = String::from_utf8_lossy(&out).into_owned();
    if shell == clap_complete::Shell::Bash {
        s.push_str(BASH_SHIMS);
    }
    s
}

/// git's bash completion calls `_git_<sub>` for `git <sub>`, with COMP_WORDS starting at
/// `git`: hand clap's functions the words as if `git-ws-run` had been typed.
const BASH_SHIMS: &str = r#"
# git subcommand shims: `git ws-run <TAB>`, `git ws-report <TAB>`, `git ws-merge <TAB>`.
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
