//! Tests for `.worktreeinclude`: the matcher's gitignore semantics, then copies into agent
//! worktrees of real temporary repositories (a child of the git tests, for their helpers).

use super::*;
use crate::include::{copy_worktree_includes, Include};

fn include(text: &str) -> Include {
    Include::parse(Path::new("/repo/.worktreeinclude"), text).unwrap()
}

fn listed(inc: &Include, rel: &str) -> bool {
    inc.is_listed(Path::new(rel), false)
}

#[test]
fn include_negation_last_matching_line_wins() {
    let inc = include("*.local\n!keep.local\n");
    assert!(listed(&inc, "config/app.local"));
    assert!(!listed(&inc, "keep.local"));
    assert!(!listed(&inc, "deep/keep.local"));
    let inc = include("!keep.local\n*.local\n");
    assert!(listed(&inc, "keep.local"), "a later positive line wins");
}

#[test]
fn include_anchoring_and_double_star() {
    let inc = include("/.env\nconfig/app.local\n");
    assert!(listed(&inc, ".env"));
    assert!(
        !listed(&inc, "sub/.env"),
        "a leading slash anchors to the root"
    );
    assert!(listed(&inc, "config/app.local"));
    assert!(
        !listed(&inc, "x/config/app.local"),
        "a middle slash anchors too"
    );
    let inc = include(".env\n");
    assert!(
        listed(&inc, "sub/deeper/.env"),
        "a bare name matches at any depth"
    );
    let inc = include("logs/**/*.txt\n**/secrets.json\n");
    assert!(listed(&inc, "logs/a.txt"));
    assert!(listed(&inc, "logs/a/b/c.txt"));
    assert!(!listed(&inc, "logs/a/b/c.bin"));
    assert!(!listed(&inc, "other/logs/a.txt"));
    assert!(listed(&inc, "secrets.json"));
    assert!(listed(&inc, "a/b/secrets.json"));
}

#[test]
fn include_character_classes_and_directory_only_patterns() {
    let inc = include("key[0-9].pem\nkey[!0-9]x.pem\ncache/\n");
    assert!(listed(&inc, "key1.pem"));
    assert!(!listed(&inc, "keyx.pem"));
    assert!(listed(&inc, "keyax.pem"));
    assert!(!listed(&inc, "key1x.pem"));
    assert!(inc.is_listed(Path::new("cache"), true));
    assert!(
        !inc.is_listed(Path::new("cache"), false),
        "a trailing / is dirs only"
    );
    assert!(
        inc.is_listed(Path::new("cache/blob"), false),
        "inside a listed dir"
    );
}

#[test]
fn include_a_file_in_a_listed_directory_cannot_be_reincluded() {
    let inc = include("secrets/\n!secrets/public.pem\n");
    assert!(
        inc.is_listed(Path::new("secrets/public.pem"), false),
        "as in git, the directory is listed whole"
    );
    let inc = include("secrets/*\n!secrets/public.pem\n");
    assert!(!inc.is_listed(Path::new("secrets/public.pem"), false));
    assert!(inc.is_listed(Path::new("secrets/key.pem"), false));
}

#[test]
fn include_invalid_pattern_names_the_file_and_line() {
    let err = Include::parse(
        Path::new("/repo/.worktreeinclude"),
        "# ok\n.env\nconfig/{a,b\n",
    )
    .err()
    .unwrap();
    assert!(
        err.to_string().contains("line 3") && err.to_string().contains("/repo/.worktreeinclude"),
        "{err}"
    );
}

#[test]
fn include_reach_of_a_line() {
    use crate::include::{reach, Reach};
    let under = |p: &[&str]| Reach::Under(p.iter().map(|s| s.to_string()).collect());
    assert_eq!(reach("config/*.local"), under(&["config"]));
    assert_eq!(reach("/.env"), under(&[".env"]));
    assert_eq!(reach("a/b/**/c"), under(&["a", "b"]));
    assert_eq!(
        reach(".env"),
        Reach::Anywhere,
        "a bare name reaches any depth"
    );
    assert_eq!(reach("**/x"), Reach::Anywhere);
    assert_eq!(
        reach("cache/"),
        Reach::Anywhere,
        "a trailing slash does not anchor"
    );
    assert_eq!(
        reach("!config/x"),
        Reach::Nothing,
        "a negation adds nothing"
    );
    assert_eq!(reach("# comment"), Reach::Nothing);
}

#[test]
fn include_walks_only_where_anchored_patterns_reach() {
    let inc = include(
        "/.env
config/*.local
",
    );
    assert!(inc.may_hold_matches(Path::new("config")));
    assert!(inc.may_hold_matches(Path::new("config/sub")));
    assert!(!inc.may_hold_matches(Path::new("node_modules")));
    assert!(!inc.may_hold_matches(Path::new("src/config")));
    let inc = include(
        "/.env
*.local
",
    );
    assert!(inc.may_hold_matches(Path::new("node_modules/a")));
}

/// A repository whose `.gitignore` and `.worktreeinclude` are given, committed as the base.
fn include_repo(gitignore: &str, worktreeinclude: &str) -> (TestRepo, String) {
    let t = repo();
    write(&t.root, ".gitignore", gitignore);
    write(&t.root, ".worktreeinclude", worktreeinclude);
    let base = commit_all(&t.root, "include base");
    (t, base)
}

#[test]
fn include_copies_with_full_gitignore_semantics_on_a_real_repo() {
    let (t, base) = include_repo(
        "*.local\n.env\nkey1.pem\nkeyx.pem\ncache/\nlogs/\nbuild/\n",
        "# local configs, but not the skip one\n*.local\n!config/skip.local\n/.env\n\
         key[0-9].pem\ncache/\nlogs/**/*.txt\n",
    );
    write(&t.root, "config/tracked.local", "tracked in base\n");
    git(&t.root, &["add", "-f", "config/tracked.local"]);
    let base2 = commit_all(&t.root, "tracked local");
    assert_ne!(base, base2);
    // The user's local files.
    for (rel, body) in [
        ("config/app.local", "app\n"),
        ("config/skip.local", "skip\n"),
        ("config/tracked.local", "edited locally\n"),
        ("deep/nested/x.local", "deep\n"),
        (".env", "TOKEN=abc\n"),
        ("sub/.env", "not at the root\n"),
        ("key1.pem", "KEY1\n"),
        ("keyx.pem", "KEYX\n"),
        ("key2.pem", "untracked but not ignored\n"),
        ("cache/blob/1", "c1\n"),
        ("build/cache", "a file named cache\n"),
        ("logs/a/b/c.txt", "log text\n"),
        ("logs/a/b/c.bin", "log bin\n"),
    ] {
        write(&t.root, rel, body);
    }
    let mut slot = claim_agent_slot(&t.paths, 1, &base2).unwrap();
    slot.prepare("ws/r/a", &base2, &no_opts()).unwrap();
    let read = |rel: &str| fs::read_to_string(slot.path.join(rel)).ok();
    assert_eq!(read("config/app.local").as_deref(), Some("app\n"));
    assert_eq!(read("config/skip.local"), None, "negated");
    assert_eq!(
        read("config/tracked.local").as_deref(),
        Some("tracked in base\n"),
        "tracked files are never overwritten"
    );
    assert_eq!(read("deep/nested/x.local").as_deref(), Some("deep\n"));
    assert_eq!(read(".env").as_deref(), Some("TOKEN=abc\n"));
    assert_eq!(read("sub/.env"), None, "anchored to the root");
    assert_eq!(read("key1.pem").as_deref(), Some("KEY1\n"));
    assert_eq!(read("keyx.pem"), None, "not in the class");
    assert_eq!(read("key2.pem"), None, "not ignored by git");
    assert_eq!(read("cache/blob/1").as_deref(), Some("c1\n"));
    assert_eq!(read("build/cache"), None, "cache/ matches directories only");
    assert_eq!(read("logs/a/b/c.txt").as_deref(), Some("log text\n"));
    assert_eq!(read("logs/a/b/c.bin"), None);
    assert_eq!(git(&slot.path, &["status", "--porcelain"]), "");
}

#[test]
fn include_a_listed_directory_keeps_its_tracked_and_unignored_files() {
    let (t, base) = include_repo(
        "secrets/*\n!secrets/README.md\n",
        "secrets/\n!secrets/public.pem\n",
    );
    write(&t.root, "secrets/README.md", "tracked readme\n");
    write(&t.root, "secrets/forced.pem", "forced in base\n");
    git(&t.root, &["add", "-f", "secrets/forced.pem"]);
    let base = {
        let b = commit_all(&t.root, "secrets readme");
        assert_ne!(b, base);
        b
    };
    write(&t.root, "secrets/README.md", "edited locally\n");
    write(&t.root, "secrets/forced.pem", "edited locally\n");
    write(&t.root, "secrets/key.pem", "KEY\n");
    write(&t.root, "secrets/public.pem", "PUBLIC\n");
    // Staged in the user's index but not in the base: still tracked, never copied.
    write(&t.root, "secrets/staged.pem", "staged\n");
    git(&t.root, &["add", "-f", "secrets/staged.pem"]);

    let mut slot = claim_agent_slot(&t.paths, 1, &base).unwrap();
    slot.prepare("ws/r/a", &base, &no_opts()).unwrap();
    let read = |rel: &str| fs::read_to_string(slot.path.join(rel)).ok();
    assert_eq!(read("secrets/key.pem").as_deref(), Some("KEY\n"));
    assert_eq!(
        read("secrets/public.pem").as_deref(),
        Some("PUBLIC\n"),
        "the directory is listed whole, as in git"
    );
    assert_eq!(
        read("secrets/README.md").as_deref(),
        Some("tracked readme\n")
    );
    assert_eq!(
        read("secrets/forced.pem").as_deref(),
        Some("forced in base\n")
    );
    assert_eq!(read("secrets/staged.pem"), None);
}

#[test]
fn include_skips_git_and_state_and_reports_bad_patterns() {
    let (t, base) = include_repo("*.log\n.state/\n", "*.log\n");
    write(&t.root, "app.log", "app\n");
    write(&t.root, ".state/logs/run/ws.log", "tool's own\n");
    let mut slot = claim_agent_slot(&t.paths, 1, &base).unwrap();
    slot.prepare("ws/r/a", &base, &no_opts()).unwrap();
    assert!(slot.path.join("app.log").exists());
    assert!(!slot.path.join(".state").exists());

    // Called directly: a bad pattern is an error naming the file and line.
    write(&t.root, ".worktreeinclude", "*.log\nsecrets/{a\n");
    let err = copy_worktree_includes(&t.paths, &slot.path).unwrap_err();
    assert!(
        err.to_string().contains(".worktreeinclude") && err.to_string().contains("line 2"),
        "{err}"
    );
}
