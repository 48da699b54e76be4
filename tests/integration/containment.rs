//! Containment without a sandbox (`ws.sandbox=off`): every attack an agent can make on
//! what lies outside its worktree (the user's branches, hooks, config, a push) is seen by
//! the watch and reported — a warning on the workstream naming the location and its old
//! and new values, the report's Tampering section and JSON, exit 1 — and with
//! `ws.sandbox=strict` the workstream fails (`SandboxViolation`). Also: no child process
//! receives git-ws's own variables or the database password, and a known password is
//! masked in every stored output.

use crate::common::{result_json, status, Env};

/// A repository with two commits on `main` (so `HEAD~1` exists) and `ws.sandbox=off`.
fn env() -> Env {
    let env = Env::new();
    env.write("a.txt", "a\n");
    env.git(&["add", "a.txt"]);
    env.git(&["commit", "-q", "-m", "second"]);
    env.git(&["config", "ws.sandbox", "off"]);
    env
}

/// Run one workstream doing `attack`; returns the run id and its warnings as text.
fn attack(env: &Env, attack: &str, code: i32) -> (String, String) {
    env.ws_cmd("ws-01", attack);
    let out = env.ws_run(&["--agents", "1"]);
    out.expect(code);
    // The closing summary names each change.
    assert!(out.stdout.contains("tampering: "), "{}", out.stdout);
    let run = out.run_id();
    let warnings = result_json(env, &run, "ws-01", "warnings").to_string();
    (run, warnings)
}

fn report(env: &Env, run: &str) -> (String, serde_json::Value) {
    let md = env.ws_report(&[run, "--format", "markdown", "--errors"]);
    md.expect(0);
    let js = env.ws_report(&[run, "--format", "json"]);
    js.expect(0);
    (md.stdout, serde_json::from_str(&js.stdout).unwrap())
}

#[test]
fn rewinding_the_user_s_branch_is_reported_with_both_values() {
    let env = env();
    let tip = env.git(&["rev-parse", "main"]).trim().to_string();
    let parent = env.git(&["rev-parse", "main~1"]).trim().to_string();
    let (run, w) = attack(&env, "git update-ref refs/heads/main HEAD~1", 1);
    assert!(
        w.contains(&format!(
            "tampering: refs/heads/main changed: {tip} -> {parent}; running then: ws-01"
        )),
        "{w}"
    );
    // The workstream itself completed: the exit status says what the watch saw.
    assert_eq!(status(&env, &run, "ws-01"), "completed");
    let (md, js) = report(&env, &run);
    assert!(md.contains("## Tampering"), "{md}");
    let table = env.ws_report(&[&run]);
    assert!(
        table.stdout.contains(&format!(
            "- refs/heads/main: {tip} -> {parent} (made while only ws-01 ran"
        )),
        "{}",
        table.stdout
    );
    assert!(md.contains(&format!("`{parent}`")), "{md}");
    let t = &js["tampering"][0];
    assert_eq!(t["path"], "refs/heads/main");
    assert_eq!(t["old"], tip.as_str());
    assert_eq!(t["new"], parent.as_str());
    assert_eq!(t["seen_by"], serde_json::json!(["ws-01"]));
    assert!(
        t["attribution"]
            .as_str()
            .unwrap()
            .contains("only ws-01 ran"),
        "{t}"
    );
}

#[test]
fn deleting_the_user_s_branch_is_reported() {
    let env = env();
    let tip = env.git(&["rev-parse", "main"]).trim().to_string();
    let (_, w) = attack(&env, "git update-ref -d refs/heads/main", 1);
    assert!(
        w.contains(&format!("refs/heads/main changed: {tip} -> (absent)")),
        "{w}"
    );
}

#[test]
fn a_hooks_path_a_planted_hook_and_core_bare_are_reported() {
    let env = env();
    let (_, w) = attack(&env, "git config core.hooksPath /elsewhere", 1);
    assert!(
        w.contains("config core.hookspath changed: (absent) -> /elsewhere"),
        "{w}"
    );
    env.git(&["config", "--unset", "core.hooksPath"]);

    let (_, w) = attack(
        &env,
        "printf '#!/bin/sh\\necho pwned\\n' > \"$(git rev-parse --git-common-dir)/hooks/pre-commit\" && chmod +x \"$(git rev-parse --git-common-dir)/hooks/pre-commit\"",
        1,
    );
    assert!(
        w.contains("tampering: hooks/pre-commit changed: (absent) -> "),
        "{w}"
    );
    assert!(w.contains(" 755; running then: ws-01"), "{w}");
    std::fs::remove_file(env.repo.join(".git/hooks/pre-commit")).unwrap();

    let (_, w) = attack(&env, "git config core.bare true", 1);
    assert!(w.contains("config core.bare changed: false -> true"), "{w}");
}

#[test]
fn committing_on_the_user_s_checked_out_branch_is_reported() {
    let env = env();
    let tip = env.git(&["rev-parse", "main"]).trim().to_string();
    let (_, w) = attack(
        &env,
        "git checkout -q --ignore-other-worktrees main && echo x >> a.txt && git commit -qam moved",
        1,
    );
    assert!(
        w.contains(&format!("tampering: refs/heads/main changed: {tip} -> ")),
        "{w}"
    );
    // The user's main moved under their checkout.
    assert_ne!(env.git(&["rev-parse", "main"]).trim(), tip);
}

#[test]
fn a_push_is_seen_through_the_remote_tracking_ref() {
    let env = env();
    let bare = env.scratch("remote.git");
    let ok = std::process::Command::new("git")
        .args(["init", "-q", "--bare"])
        .arg(&bare)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    env.git(&["remote", "add", "origin", bare.to_str().unwrap()]);
    env.git(&["push", "-q", "origin", "main"]);
    let (_, w) = attack(&env, "git push -q origin HEAD:refs/heads/evil", 1);
    // The remote itself is not watched; the push updated the user's remote-tracking ref.
    assert!(
        w.contains("tampering: refs/remotes/origin/evil changed: (absent) -> "),
        "{w}"
    );
}

#[test]
fn strict_fails_the_workstream_with_a_sandbox_violation() {
    let env = env();
    env.git(&["config", "ws.sandbox", "strict"]);
    let (run, w) = attack(&env, "git branch planted", 1);
    assert!(w.contains("tampering: refs/heads/planted"), "{w}");
    assert_eq!(status(&env, &run, "ws-01"), "failed");
    let errors = result_json(&env, &run, "ws-01", "errors").to_string();
    assert!(errors.contains("SandboxViolation"), "{errors}");
    assert!(errors.contains("refs/heads/planted"), "{errors}");
    // A bad value is refused, naming the key.
    env.git(&["config", "ws.sandbox", "tight"]);
    let out = env.ws_run(&["--agents", "1"]);
    out.expect(2);
    assert!(out.stderr.contains("ws.sandbox"), "{}", out.stderr);
}

#[test]
fn a_change_while_two_workstreams_ran_names_both() {
    let env = env();
    env.ws_cmd("ws-01", "sleep 1; git branch planted");
    env.ws_cmd("ws-02", "sleep 3");
    let out = env.ws_run(&["--agents", "2"]);
    out.expect(1);
    let run = out.run_id();
    let (_, js) = report(&env, &run);
    let t = &js["tampering"][0];
    assert_eq!(t["path"], "refs/heads/planted", "{js}");
    // Both windows saw it; without a sandbox the two cannot be told apart.
    assert_eq!(t["seen_by"], serde_json::json!(["ws-01", "ws-02"]));
    assert_eq!(t["suspects"], serde_json::json!(["ws-01", "ws-02"]));
    assert!(
        t["attribution"]
            .as_str()
            .unwrap()
            .contains("cannot be told apart"),
        "{t}"
    );
}

#[test]
fn git_ws_s_own_work_is_no_tampering() {
    let env = env();
    env.ws_cmd(
        "ws-01",
        "echo n >> a.txt && git add -A && git commit -qm work && git status -s",
    );
    env.ws_cmd("ws-02", "echo uncommitted > b.txt");
    let out = env.ws_run(&["--agents", "2"]);
    out.expect(0);
    let run = out.run_id();
    for ws in ["ws-01", "ws-02"] {
        let w = result_json(&env, &run, ws, "warnings").to_string();
        assert!(!w.contains("tampering"), "{w}");
    }
}

#[test]
fn no_child_inherits_git_ws_variables_and_known_passwords_are_masked() {
    let env = env();
    // The password reaches the agent by another way (a file): masked where it is stored.
    env.write("secret.txt", "hunter2-pw\n");
    env.git(&["add", "secret.txt"]);
    env.git(&["commit", "-q", "-m", "secret"]);
    env.ws(
        "ws-01",
        serde_json::json!({
            "id": "ws-01",
            "command": "env; echo \"URL=[$GIT_WS_DATABASE_URL] OWN=[$GIT_WS_OWN_SETTING] PG=[$PGPASSWORD]\"; cat secret.txt; exit 3",
            "test": "env; cat secret.txt"
        }),
    );
    let db = env.scratch("ws.db");
    let out = env
        .command("git")
        .args(["ws-run", "--agents", "1", "--db"])
        .arg(&db)
        .env(
            "GIT_WS_DATABASE_URL",
            "postgres://u:hunter2-pw@127.0.0.1:1/x",
        )
        .env("GIT_WS_OWN_SETTING", "set")
        .env("PGPASSWORD", "other-secret")
        .env("DATABASE_URL_COPY", "postgres://u:hunter2-pw@h/x")
        .output()
        .unwrap();
    let out = crate::common::Run::from(out);
    out.expect(1);
    let run = out.run_id();
    let log = std::fs::read_to_string(env.repo.join(format!(".state/logs/{run}/ws-01.log")))
        .unwrap_or_else(|e| panic!("{e}: {}", out.stdout));
    assert!(log.contains("URL=[] OWN=[] PG=[]"), "{log}");
    assert!(!log.contains("GIT_WS_DATABASE_URL"), "{log}");
    assert!(!log.contains("DATABASE_URL_COPY"), "{log}");
    assert!(!log.contains("hunter2"), "{log}");
    assert!(!log.contains("other-secret"), "{log}");
    assert!(log.contains("***"), "{log}");
    // What git-ws means the command to have is still there.
    assert!(log.contains("WS_WORKTREE="), "{log}");
    // The database's output tail and the report keep no password either.
    let all = crate::common::sql(
        &db,
        "SELECT COALESCE(errors, '') || COALESCE(test_results, '') || COALESCE(metadata, '') FROM agent_results",
    );
    let stored = format!("{all:?}");
    assert!(stored.contains("***"), "{stored}");
    assert!(!stored.contains("hunter2"), "{stored}");
    assert!(!out.stdout.contains("hunter2") && !out.stderr.contains("hunter2"));
}
