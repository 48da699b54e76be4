//! Colour: `--color auto|always|never` and `NO_COLOR` on `git ws-run`, `git ws-report` and
//! `git ws-merge`, through git's dispatch; a pseudo-terminal (util-linux `script`) for
//! `auto` on a terminal.

use crate::common::{Env, Run};

const ESC: &str = "\x1b[";

/// A repository with one workstream that commits and one that fails.
fn env_with_a_failure() -> Env {
    let env = Env::new();
    env.ws_cmd(
        "good",
        "echo one > one.txt && git add one.txt && git commit -qm one",
    );
    env.ws_cmd("bad", "exit 3");
    env
}

fn git_with(env: &Env, vars: &[(&str, &str)], args: &[&str]) -> Run {
    let mut c = env.command("git");
    for (k, v) in vars {
        c.env(k, v);
    }
    Run::from(c.args(args).output().unwrap())
}

fn plain(r: &Run) {
    assert!(!r.stdout.contains(ESC), "stdout coloured:\n{:?}", r.stdout);
    assert!(!r.stderr.contains(ESC), "stderr coloured:\n{:?}", r.stderr);
}

#[test]
fn ws_run_colours_only_when_asked_or_on_a_terminal() {
    let env = env_with_a_failure();
    // --color always: the verdict's "failed" red and bold, the review advice too, through
    // a pipe; the progress lines on stderr as well.
    let r = git_with(&env, &[], &["ws-run", "--agents", "1", "--color", "always"]);
    r.expect(1);
    assert!(
        r.stdout.contains("\x1b[31m\x1b[1mfailed\x1b[0m"),
        "{:?}",
        r.stdout
    );
    assert!(
        r.stdout.contains("\x1b[32mcompleted\x1b[0m"),
        "{:?}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("\x1b[31m\x1b[1m- Review 1 failed workstream"),
        "{:?}",
        r.stdout
    );
    assert!(r.stderr.contains(ESC), "{:?}", r.stderr);
    // The text under the colour is what a pipe gets.
    let stripped = console::strip_ansi_codes(&r.stdout).into_owned();
    assert!(stripped.contains("1 completed, 1 failed"), "{stripped}");
    // NO_COLOR does not override --color always.
    let r = git_with(
        &env,
        &[("NO_COLOR", "1")],
        &[
            "ws-run",
            "--agents",
            "1",
            "--rerun-failed",
            "--color",
            "always",
        ],
    );
    assert!(r.stdout.contains(ESC), "{:?}", r.stdout);

    // Default auto through a pipe (the test captures the output): none.
    let r = git_with(&env, &[], &["ws-run", "--agents", "1", "--rerun-failed"]);
    r.expect(1);
    plain(&r);
    // auto with NO_COLOR=1: none.
    let r = git_with(
        &env,
        &[("NO_COLOR", "1")],
        &[
            "ws-run",
            "--agents",
            "1",
            "--rerun-failed",
            "--color",
            "auto",
        ],
    );
    r.expect(1);
    plain(&r);
    // never: none.
    let r = git_with(
        &env,
        &[],
        &[
            "ws-run",
            "--agents",
            "1",
            "--rerun-failed",
            "--color",
            "never",
        ],
    );
    r.expect(1);
    plain(&r);
    // The JSON summary is never coloured.
    let r = git_with(
        &env,
        &[],
        &[
            "ws-run",
            "--agents",
            "1",
            "--rerun-failed",
            "--color",
            "always",
            "--format",
            "json",
        ],
    );
    assert!(!r.stdout.contains(ESC), "{}", r.stdout);
    assert!(r.stdout.contains("\"failed\""), "{}", r.stdout);
}

/// `script` runs `cmd` on a pseudo-terminal and writes what the terminal showed to stdout.
fn on_a_terminal(env: &Env, vars: &[(&str, &str)], cmd: &str) -> String {
    let r = git_with_program(env, vars, "script", &["-qec", cmd, "/dev/null"]);
    r.stdout
}

fn git_with_program(env: &Env, vars: &[(&str, &str)], program: &str, args: &[&str]) -> Run {
    let mut c = env.command(program);
    for (k, v) in vars {
        c.env(k, v);
    }
    Run::from(c.args(args).output().unwrap())
}

#[test]
fn auto_colours_a_terminal_unless_no_color() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: no `script` for a pseudo-terminal");
        return;
    }
    let env = env_with_a_failure();
    git_with(&env, &[], &["ws-run", "--agents", "1", "-q"]).expect(1);
    let shown = on_a_terminal(&env, &[], "git ws-report latest");
    assert!(shown.contains("\x1b[31m\x1b[1mfailed"), "{shown:?}");
    let shown = on_a_terminal(&env, &[("NO_COLOR", "1")], "git ws-report latest");
    assert!(shown.contains("failed"), "{shown:?}");
    assert!(!shown.contains(ESC), "{shown:?}");
    let shown = on_a_terminal(&env, &[], "git ws-report latest --color never");
    assert!(!shown.contains(ESC), "{shown:?}");
}

#[test]
fn ws_report_colours_the_table_only() {
    let env = env_with_a_failure();
    git_with(&env, &[], &["ws-run", "--agents", "1", "-q"]).expect(1);
    let r = git_with(&env, &[], &["ws-report", "latest", "--color", "always"]);
    r.expect(0);
    assert!(
        r.stdout.contains("\x1b[31m\x1b[1mfailed\x1b[0m"),
        "{:?}",
        r.stdout
    );
    let r = git_with(&env, &[], &["ws-report", "--color", "always"]);
    r.expect(0);
    assert!(r.stdout.contains(ESC), "the run list: {:?}", r.stdout);
    let r = git_with(&env, &[], &["ws-report", "latest"]);
    plain(&r);
    for format in ["json", "markdown", "html"] {
        let r = git_with(
            &env,
            &[],
            &[
                "ws-report",
                "latest",
                "--color",
                "always",
                "--format",
                format,
            ],
        );
        r.expect(0);
        assert!(!r.stdout.contains(ESC), "{format}: {}", r.stdout);
    }
    // The report file, written by a run with colour on: plain Markdown.
    git_with(
        &env,
        &[],
        &[
            "ws-run",
            "--agents",
            "1",
            "-q",
            "--rerun-failed",
            "--color",
            "always",
        ],
    );
    let mut files = 0;
    for f in std::fs::read_dir(env.repo.join("reports")).unwrap() {
        let text = std::fs::read_to_string(f.unwrap().path()).unwrap();
        assert!(!text.contains(ESC), "{text}");
        files += 1;
    }
    assert!(files > 0);
}

#[test]
fn ws_merge_colours_merged_and_left_out() {
    let env = env_with_a_failure();
    git_with(&env, &[], &["ws-run", "--agents", "1", "-q"]).expect(1);
    let r = git_with(&env, &[], &["ws-merge", "--no-test", "--color", "always"]);
    assert!(
        r.stdout.contains("\x1b[32mmerged:\x1b[0m"),
        "{:?}",
        r.stdout
    );
    assert!(r.stdout.contains("\x1b[32m    1. good"), "{:?}", r.stdout);
    let r = git_with(&env, &[], &["ws-merge", "--no-test"]);
    plain(&r);
    let r = git_with(
        &env,
        &[],
        &[
            "ws-merge",
            "--no-test",
            "--color",
            "always",
            "--format",
            "json",
        ],
    );
    assert!(!r.stdout.contains(ESC), "{}", r.stdout);
}

#[test]
fn a_bad_color_value_is_a_usage_error_naming_the_flag() {
    let env = Env::new();
    for sub in ["ws-run", "ws-report", "ws-merge"] {
        let r = git_with(&env, &[], &[sub, "--color", "sometimes"]);
        r.expect(2);
        assert!(r.stderr.contains("--color"), "{sub}: {}", r.stderr);
        assert!(r.stderr.contains("sometimes"), "{sub}: {}", r.stderr);
    }
}
