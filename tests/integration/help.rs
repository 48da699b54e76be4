//! Help everywhere: the man pages written beside the install prefix on first use (so
//! `git ws-run --help`, which git turns into `git help ws-run`, finds one), the note when
//! they cannot be written, `--generate-man` / `--generate-completions` on every binary, and
//! usage errors pointing to `-h`.

use crate::common::{bin_dir, Env};
use std::path::{Path, PathBuf};
use std::process::Command;

const BINARIES: [&str; 4] = [
    "git-ws-run",
    "git-ws-report",
    "git-ws-merge",
    "git-ws-review",
];

/// The binaries linked (copied if linking fails) into `<prefix>/bin`; returns that bin.
fn install_into(prefix: &Path) -> PathBuf {
    let bin = prefix.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for b in BINARIES {
        let (from, to) = (bin_dir().join(b), bin.join(b));
        if std::fs::hard_link(&from, &to).is_err() {
            std::fs::copy(&from, &to).unwrap();
        }
    }
    bin
}

/// `program` in the repository with `bin` first on PATH (before the cargo target), no
/// MANPATH, and pagers that print.
fn command(env: &Env, bin: &Path, program: &str) -> Command {
    let mut c = env.command(program);
    c.env(
        "PATH",
        format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        ),
    )
    .env_remove("MANPATH")
    .env_remove("XDG_STATE_HOME")
    .env("MANPAGER", "cat")
    .env("PAGER", "cat")
    .env("MANWIDTH", "100");
    c
}

fn has_man() -> bool {
    Command::new("man")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn first_use_installs_the_man_pages_beside_the_prefix_and_git_help_finds_them() {
    let env = Env::new();
    let prefix = env.scratch("prefix");
    let bin = install_into(&prefix);
    env.ws_cmd("one", "true");
    env.ws_run(&[]).expect(0);
    let man1 = prefix.join("share/man/man1");
    assert!(!man1.exists());
    let out = command(&env, &bin, "git")
        .arg("ws-report")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    for b in BINARIES {
        assert!(
            man1.join(format!("{b}.1")).is_file(),
            "{b}.1 not in {man1:?}"
        );
    }
    if !has_man() {
        eprintln!("man is not installed: skipping `man -w` and `git ws-run --help`");
        return;
    }
    let w = command(&env, &bin, "man")
        .args(["-w", "git-ws-run"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&w.stdout).contains(&man1.display().to_string()),
        "man -w: {w:?}"
    );
    let help = command(&env, &bin, "git")
        .args(["ws-run", "--help"])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&help.stdout),
        String::from_utf8_lossy(&help.stderr),
    );
    assert!(!stderr.contains("No manual entry"), "{stderr}");
    assert_eq!(help.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("git-ws-run"), "{stdout}");
    assert!(stdout.contains("EXIT STATUS"), "{stdout}");
}

#[test]
fn stale_pages_are_rewritten_fresh_ones_left_alone() {
    let env = Env::new();
    let prefix = env.scratch("prefix");
    let bin = install_into(&prefix);
    let page = prefix.join("share/man/man1/git-ws-merge.1");
    std::fs::create_dir_all(page.parent().unwrap()).unwrap();
    std::fs::write(&page, "stale").unwrap();
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
    std::fs::File::options()
        .write(true)
        .open(&page)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let out = command(&env, &bin, "git-ws-merge")
        .arg("-h")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let fresh = std::fs::read_to_string(&page).unwrap();
    assert!(fresh.contains(".TH git-ws-merge"), "{fresh}");
    // Fresh now: a page the user edited after that is not overwritten.
    std::fs::write(&page, "edited").unwrap();
    command(&env, &bin, "git-ws-report")
        .arg("-h")
        .output()
        .unwrap();
    assert_eq!(std::fs::read_to_string(&page).unwrap(), "edited");
}

#[test]
fn an_unwritable_prefix_says_once_how_to_install_the_pages() {
    let env = Env::new();
    let prefix = env.scratch("prefix");
    let bin = install_into(&prefix);
    // A file where the directory would go: unwritable even for root.
    std::fs::write(prefix.join("share"), "not a directory").unwrap();
    env.ws_cmd("one", "true");
    env.ws_run(&[]).expect(0);
    let first = command(&env, &bin, "git-ws-report").output().unwrap();
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(
        stderr.contains("git ws-run --generate-man") && stderr.contains("shown once"),
        "{stderr}"
    );
    assert_eq!(
        first.status.code(),
        Some(0),
        "the note never fails the command"
    );
    let second = command(&env, &bin, "git-ws-report").output().unwrap();
    assert!(
        !String::from_utf8_lossy(&second.stderr).contains("--generate-man"),
        "{second:?}"
    );
}

#[test]
fn every_binary_generates_man_pages_and_completions_and_its_errors_point_to_dash_h() {
    let env = Env::new();
    let prefix = env.scratch("prefix");
    let bin = install_into(&prefix);
    for b in BINARIES {
        let dir = env.scratch(&format!("man-{b}"));
        let out = command(&env, &bin, b)
            .arg("--generate-man")
            .arg(&dir)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{b}: {out:?}");
        let page = std::fs::read_to_string(dir.join(format!("{b}.1"))).unwrap();
        assert!(page.contains(&format!(".TH {b}")), "{b}");
        let comp = command(&env, &bin, b)
            .args(["--generate-completions", "bash"])
            .output()
            .unwrap();
        let comp = String::from_utf8_lossy(&comp.stdout);
        assert!(comp.contains("_git_ws_review()"), "{b}: {comp}");
        let help = command(&env, &bin, b).arg("-h").output().unwrap();
        let help = String::from_utf8_lossy(&help.stdout);
        assert!(
            help.contains("--generate-man") && help.contains("--generate-completions"),
            "{b} -h: {help}"
        );
        let bad = command(&env, &bin, b)
            .arg("--no-such-flag")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&bad.stderr);
        assert_eq!(bad.status.code(), Some(2), "{b}: {err}");
        assert!(err.contains("try '-h'"), "{b}: {err}");
        assert!(!err.contains("--help"), "{b}: {err}");
    }
}
