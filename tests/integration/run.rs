//! `git ws-run` end to end: what agents do is read back from git, recorded and reported.

use crate::common::{alive, result_json, status, Env};
use serde_json::json;

fn files_of(env: &Env, run: &str, ws: &str) -> Vec<String> {
    let v = result_json(env, run, ws, "files_modified");
    let mut out: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

fn file_changes(env: &Env, run: &str, ws: &str) -> Vec<(String, String, String)> {
    let mut rows: Vec<(String, String, String)> = env
        .sql(&format!(
            "SELECT path, change_kind, COALESCE(old_path, '') FROM ws_result_files WHERE run_id = '{run}' AND workstream_id = '{ws}'"
        ))
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone(), r[2].clone()))
        .collect();
    rows.sort();
    rows
}

#[test]
fn agent_that_commits_itself() {
    let env = Env::new();
    env.ws_cmd(
        "ws-01",
        "echo new >> src/lib.txt && git add -A && git commit -qm 'agent commit' && echo done",
    );
    let out = env.ws_run(&["--agents", "1"]);
    out.expect(0);
    let run = out.run_id();
    assert!(run.starts_with("ma-run-"), "{}", out.stdout);
    assert_eq!(status(&env, &run, "ws-01"), "completed");
    assert_eq!(files_of(&env, &run, "ws-01"), vec!["src/lib.txt"]);
    let commits = result_json(&env, &run, "ws-01", "commits_created");
    let commits = commits.as_array().unwrap();
    assert_eq!(commits.len(), 1);
    let sha = commits[0].as_str().unwrap();
    assert_eq!(sha.len(), 40);
    // The branch exists, points at that commit, and the commit message is the agent's.
    let branch = format!("ws/{run}/ws-01");
    assert_eq!(env.git(&["rev-parse", &branch]).trim(), sha);
    assert_eq!(
        env.git(&["log", "-1", "--format=%s", &branch]).trim(),
        "agent commit"
    );
    let warnings = result_json(&env, &run, "ws-01", "warnings");
    assert_eq!(warnings, json!([]));
    // Metadata names the branch, base and head.
    let meta = result_json(&env, &run, "ws-01", "metadata");
    assert_eq!(meta["branch"], json!(branch));
    assert_eq!(meta["head"], json!(sha));
    assert_eq!(
        meta["base"].as_str().unwrap(),
        env.git(&["rev-parse", "main"]).trim()
    );
    // The report exists and names the workstream.
    let report = env
        .repo
        .join(format!("reports/multi_agent_consolidated_{run}.md"));
    let text = std::fs::read_to_string(&report).unwrap();
    assert!(text.contains("ws-01"));
    assert!(text.contains("```mermaid"));
}

#[test]
fn uncommitted_work_is_committed_with_a_warning() {
    let env = Env::new();
    env.ws_cmd("ws-02", "echo changed > docs/guide.txt");
    let out = env.ws_run(&["--agents", "1"]);
    out.expect(0);
    let run = out.run_id();
    assert_eq!(files_of(&env, &run, "ws-02"), vec!["docs/guide.txt"]);
    let commits = result_json(&env, &run, "ws-02", "commits_created");
    assert_eq!(commits.as_array().unwrap().len(), 1);
    let warnings = result_json(&env, &run, "ws-02", "warnings").to_string();
    assert!(warnings.contains("uncommitted"), "{warnings}");
    let branch = format!("ws/{run}/ws-02");
    assert_eq!(
        env.git(&["show", &format!("{branch}:docs/guide.txt")]),
        "changed\n"
    );
}

#[test]
fn untracked_files_in_new_directories_deletes_and_renames() {
    let env = Env::new();
    env.ws_cmd(
        "new-dirs",
        "mkdir -p a/b/c && echo x > a/b/c/deep.txt && echo y > top.txt",
    );
    env.ws_cmd(
        "deletes",
        "git rm -q docs/guide.txt && git commit -qm 'remove guide'",
    );
    env.ws_cmd(
        "renames",
        "git mv src/lib.txt src/library.txt && git commit -qm rename",
    );
    let out = env.ws_run(&["--agents", "2"]);
    out.expect(0);
    let run = out.run_id();
    assert_eq!(
        files_of(&env, &run, "new-dirs"),
        vec!["a/b/c/deep.txt", "top.txt"]
    );
    assert_eq!(
        file_changes(&env, &run, "deletes"),
        vec![("docs/guide.txt".into(), "deleted".into(), "".into())]
    );
    assert_eq!(
        file_changes(&env, &run, "renames"),
        vec![(
            "src/library.txt".into(),
            "renamed".into(),
            "src/lib.txt".into()
        )]
    );
}

#[test]
fn unicode_and_spaces_in_paths_are_exact() {
    let env = Env::new();
    env.ws_cmd(
        "unicode",
        "mkdir -p 'dir with space' && printf 'h\\n' > 'dir with space/ünïcødé file.txt' && printf 'x\\n' > '日本語.md'",
    );
    let out = env.ws_run(&["--agents", "1"]);
    out.expect(0);
    let run = out.run_id();
    assert_eq!(
        files_of(&env, &run, "unicode"),
        vec!["dir with space/ünïcødé file.txt", "日本語.md"]
    );
}

#[test]
fn failing_command_keeps_stderr_and_others_still_run() {
    let env = Env::new();
    env.ws_cmd(
        "bad",
        "echo 'compiling widget' ; echo 'error: widget.rs:3 expected ;' >&2; exit 3",
    );
    env.ws_cmd("good", "echo ok > good.txt");
    let out = env.ws_run(&["--agents", "2"]);
    out.expect(1);
    let run = out.run_id();
    assert_eq!(status(&env, &run, "bad"), "failed");
    assert_eq!(status(&env, &run, "good"), "completed");
    let rows = env.sql(&format!(
        "SELECT error_type, error_message, stack_trace FROM consolidated_errors WHERE run_id = '{run}' AND workstream_id = 'bad'"
    ));
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0][0], "CommandFailed");
    assert!(rows[0][1].contains("status 3"), "{}", rows[0][1]);
    assert!(
        rows[0][2].contains("error: widget.rs:3 expected ;"),
        "{}",
        rows[0][2]
    );
    let errors = result_json(&env, &run, "bad", "errors");
    assert_eq!(errors[0]["type"], json!("CommandFailed"));
}

#[test]
fn timeout_kills_the_command_and_its_background_grandchild() {
    let env = Env::new();
    let pidfile = env.scratch("bg.pid");
    env.ws(
        "slow",
        json!({
            "id": "slow",
            "command": "sleep 120 & echo $! > \"$PIDFILE\"; trap '' TERM; sleep 120",
            "timeout_secs": 1,
            "env": {"PIDFILE": pidfile.to_str().unwrap()}
        }),
    );
    let out = env.ws_run(&["--agents", "1", "--grace", "300ms"]);
    out.expect(1);
    let run = out.run_id();
    assert_eq!(status(&env, &run, "slow"), "failed");
    let errors = result_json(&env, &run, "slow", "errors");
    assert_eq!(errors[0]["type"], json!("Timeout"), "{errors}");
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(!alive(pid), "grandchild {pid} outlived the run");
}

#[test]
fn failing_tests_have_parsed_counts() {
    let env = Env::new();
    env.ws(
        "tested",
        json!({
            "id": "tested",
            "command": "echo a > a.txt",
            "test": "echo 'running'; echo '5 passed, 2 failed, 1 skipped'; exit 1"
        }),
    );
    env.ws(
        "green",
        json!({
            "id": "green",
            "command": "true",
            "test": "echo 'test result: ok. 4 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out'"
        }),
    );
    let out = env.ws_run(&["--agents", "2"]);
    out.expect(1);
    let run = out.run_id();
    assert_eq!(status(&env, &run, "tested"), "failed");
    let tr = result_json(&env, &run, "tested", "test_results");
    assert_eq!(tr["passed"], json!(5));
    assert_eq!(tr["failed"], json!(2));
    assert_eq!(tr["skipped"], json!(1));
    assert_eq!(tr["exit_code"], json!(1));
    let errors = result_json(&env, &run, "tested", "errors");
    assert_eq!(errors[0]["type"], json!("TestFailed"));
    assert_eq!(status(&env, &run, "green"), "completed");
    let tr = result_json(&env, &run, "green", "test_results");
    assert_eq!(tr["passed"], json!(4));
}

#[test]
fn dependents_of_a_failure_are_skipped_with_the_reason() {
    let env = Env::new();
    env.ws_cmd("base-fails", "exit 1");
    env.ws(
        "child",
        json!({"id": "child", "command": "true", "depends_on": ["base-fails"]}),
    );
    env.ws(
        "grandchild",
        json!({"id": "grandchild", "command": "true", "depends_on": ["child"]}),
    );
    env.ws_cmd("ok", "true");
    let out = env.ws_run(&["--agents", "2"]);
    out.expect(1);
    let run = out.run_id();
    assert_eq!(status(&env, &run, "base-fails"), "failed");
    assert_eq!(status(&env, &run, "child"), "skipped");
    assert_eq!(status(&env, &run, "grandchild"), "skipped");
    assert_eq!(status(&env, &run, "ok"), "completed");
    let rows = env.sql(&format!(
        "SELECT error_type, error_message FROM consolidated_errors WHERE run_id = '{run}' AND workstream_id = 'child'"
    ));
    assert_eq!(rows[0][0], "DependencyFailed");
    assert!(rows[0][1].contains("base-fails"), "{}", rows[0][1]);
    // No branch for skipped work.
    assert!(env
        .git(&["branch", "--list", &format!("ws/{run}/child")])
        .trim()
        .is_empty());
}

#[test]
fn dependencies_run_in_order() {
    let env = Env::new();
    let log = env.scratch("order.log");
    let l = log.to_str().unwrap();
    env.ws(
        "first",
        json!({"id": "first", "command": format!("sleep 0.3; echo first >> '{l}'")}),
    );
    env.ws(
        "second",
        json!({"id": "second", "command": format!("echo second >> '{l}'"), "depends_on": ["first"]}),
    );
    env.ws_run(&["--agents", "3"]).expect(0);
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "first\nsecond\n");
}

#[test]
fn malformed_json_and_invalid_ids_are_recorded_and_the_rest_run() {
    let env = Env::new();
    env.write(
        "workstreams/broken.json",
        "{\n  \"id\": \"broken\",\n  \"command\": \"true\"\n  \"title\": 1\n}\n",
    );
    env.write(
        "workstreams/evil.json",
        r#"{"id": "../../etc/x", "command": "true"}"#,
    );
    env.ws_cmd("fine", "echo fine > fine.txt");
    let out = env.ws_run(&["--agents", "2"]);
    out.expect(1);
    let run = out.run_id();
    assert_eq!(status(&env, &run, "fine"), "completed");
    let rows = env.sql(&format!(
        "SELECT workstream_id, error_message FROM consolidated_errors WHERE run_id = '{run}' AND error_type = 'InvalidWorkstream' ORDER BY workstream_id"
    ));
    assert_eq!(rows.len(), 2, "{rows:?}");
    let message_of = |file: &str| -> &str {
        rows.iter()
            .find(|r| r[1].starts_with(&format!("{file}:")))
            .map(|r| r[1].as_str())
            .unwrap_or_else(|| panic!("no error for {file}: {rows:?}"))
    };
    assert!(
        message_of("broken.json").starts_with("broken.json:4:"),
        "line:column named: {rows:?}"
    );
    assert!(
        message_of("evil.json").contains("field \"id\""),
        "the field is named: {rows:?}"
    );
    // No branch was created from the hostile id.
    let branches = env.git(&["branch", "--list", "ws/*"]);
    assert!(!branches.contains(".."), "{branches}");
}

#[test]
fn two_megabytes_of_output_is_streamed_and_tailed() {
    let env = Env::new();
    env.ws_cmd(
        "noisy",
        "i=0; while [ $i -lt 26000 ]; do echo \"line $i padding padding padding padding padding padding padding padding padding\"; i=$((i+1)); done; echo LAST-LINE",
    );
    let out = env.ws_run(&["--agents", "1"]);
    out.expect(0);
    let run = out.run_id();
    let meta = result_json(&env, &run, "noisy", "metadata");
    let log = meta["log_path"].as_str().unwrap();
    let size = std::fs::metadata(log).unwrap().len();
    assert!(size > 2_000_000, "log is {size} bytes");
    let tail = meta["output_tail"].as_str().unwrap();
    assert!(tail.ends_with("LAST-LINE"), "{tail}");
    assert!(tail.len() < 20_000);
}

#[test]
fn three_sleepers_on_three_agents_overlap_in_time() {
    let env = Env::new();
    for i in 1..=3 {
        env.ws_cmd(&format!("sleep-{i}"), "sleep 1.5");
    }
    let out = env.ws_run(&["--agents", "3"]);
    out.expect(0);
    let run = out.run_id();
    let rows = env.sql(&format!(
        "SELECT agent_id, start_time, end_time FROM agent_results WHERE run_id = '{run}' ORDER BY start_time"
    ));
    assert_eq!(rows.len(), 3);
    let agents: std::collections::BTreeSet<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(agents.len(), 3, "three distinct agents: {rows:?}");
    // Every start precedes every end: all three ran at once.
    let latest_start = rows.iter().map(|r| r[1].clone()).max().unwrap();
    let earliest_end = rows.iter().map(|r| r[2].clone()).min().unwrap();
    assert!(latest_start < earliest_end, "{rows:?}");
}

#[test]
fn the_users_head_branch_index_and_worktree_are_untouched() {
    let env = Env::new();
    env.git(&["checkout", "-q", "-b", "feature"]);
    env.write("src/lib.txt", "user edit in progress\n");
    env.git(&["add", "src/lib.txt"]);
    env.write("docs/guide.txt", "unstaged user edit\n");
    env.write("scratch.txt", "untracked\n");
    env.ws_cmd(
        "edits",
        "echo agent > src/lib.txt && git add -A && git commit -qm agent && rm docs/guide.txt",
    );
    env.ws_cmd("more", "echo x > scratch.txt");
    let head = env.git(&["rev-parse", "HEAD"]);
    let status_before = env.git(&["status", "--porcelain=v1", "--untracked-files=all"]);
    let index_before = std::fs::read(env.repo.join(".git/index")).unwrap();
    let out = env.ws_run(&["--agents", "2"]);
    out.expect(0);
    assert_eq!(env.git(&["rev-parse", "HEAD"]), head);
    assert_eq!(env.git(&["branch", "--show-current"]).trim(), "feature");
    let status_after = env.git(&["status", "--porcelain=v1", "--untracked-files=all"]);
    // The run adds reports/ (a visible deliverable) and nothing else.
    let extra: Vec<&str> = status_after
        .lines()
        .filter(|l| !status_before.lines().any(|b| b == *l))
        .collect();
    assert!(
        extra.iter().all(|l| l.starts_with("?? reports/")),
        "unexpected changes: {extra:?}"
    );
    assert!(!status_after.contains(".state"), "{status_after}");
    assert_eq!(
        std::fs::read(env.repo.join(".git/index")).unwrap(),
        index_before
    );
    assert_eq!(
        std::fs::read_to_string(env.repo.join("src/lib.txt")).unwrap(),
        "user edit in progress\n"
    );
    assert_eq!(
        std::fs::read_to_string(env.repo.join("scratch.txt")).unwrap(),
        "untracked\n"
    );
    // The agent worktrees stay as the pool (detached, so the branches are free); the
    // branches stay.
    crate::pool::assert_pool_tidy(&env, 2);
    let run = out.run_id();
    assert!(!env
        .git(&["branch", "--list", &format!("ws/{run}/*")])
        .is_empty());
}

#[test]
fn the_pool_is_reused_by_the_next_run_and_remove_worktrees_removes_it() {
    let env = Env::new();
    env.ws_cmd("a", "echo a > a.txt");
    env.ws_run(&["--agents", "1"]).expect(0);
    assert_eq!(env.worktrees().len(), 2, "{:?}", env.worktrees());
    // The next run reuses the agent worktree, and a.txt from the previous branch is gone
    // from it before the workstream starts.
    env.ws_cmd("a", "test ! -e a.txt && echo again > a.txt");
    env.ws_run(&["--agents", "1", "--remove-worktrees"])
        .expect(0);
    assert_eq!(env.worktrees().len(), 1, "{:?}", env.worktrees());
}

#[test]
fn environment_of_the_command() {
    let env = Env::new();
    let out_file = env.scratch("env.txt");
    env.ws(
        "env-check",
        json!({
            "id": "env-check",
            "command": format!("env | grep -E '^(WS_|CUSTOM)' | sort > '{}'; pwd >> '{}'; cat >> '{}'", out_file.display(), out_file.display(), out_file.display()),
            "env": {"CUSTOM": "yes"}
        }),
    );
    let out = env.ws_run(&["--agents", "1"]);
    out.expect(0);
    let run = out.run_id();
    let text = std::fs::read_to_string(&out_file).unwrap();
    assert!(text.contains(&format!("WS_RUN_ID={run}")), "{text}");
    assert!(text.contains("WS_ID=env-check"));
    assert!(text.contains("WS_AGENT_ID=agent-1"));
    assert!(text.contains(&format!(
        "WS_BASE={}",
        env.git(&["rev-parse", "HEAD"]).trim()
    )));
    assert!(text.contains("CUSTOM=yes"));
    assert!(text.contains("WS_WORKTREE="));
    // cwd is the agent worktree in the pool next to the repository, not the user's checkout.
    assert!(text.contains("/.repo.ws-pool/agent-1"), "{text}");
}

#[test]
fn prompt_workstreams_go_to_the_agent_command_on_stdin() {
    let env = Env::new();
    env.ws(
        "prompted",
        json!({"id": "prompted", "prompt": "Add a NOTES file\nwith two lines"}),
    );
    let out = env.ws_run(&[
        "--agents",
        "1",
        "--agent-cmd",
        "cat > NOTES.md; echo \"$WS_PROMPT\" | wc -l > lines.txt",
    ]);
    out.expect(0);
    let run = out.run_id();
    let branch = format!("ws/{run}/prompted");
    assert_eq!(
        env.git(&["show", &format!("{branch}:NOTES.md")]),
        "Add a NOTES file\nwith two lines"
    );
    // Without an agent command the prompt workstream fails up front with a clear error.
    let out = env.ws_run(&["--agents", "1"]);
    out.expect(1);
    let errors = result_json(&env, &out.run_id(), "prompted", "errors");
    assert_eq!(errors[0]["type"], json!("InvalidWorkstream"));
    assert!(errors[0]["message"]
        .as_str()
        .unwrap()
        .contains("ws.agentCommand"));
}

#[test]
fn json_summary_and_exit_codes() {
    let env = Env::new();
    env.ws_cmd("ok", "true");
    let out = env.ws_run(&["--agents", "1", "--format", "json"]);
    out.expect(0);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["completed_count"], json!(1));
    assert_eq!(v["exit_code"], json!(0));
    let report = v["report_path"].as_str().unwrap();
    assert!(std::path::Path::new(report).is_file());
}

#[test]
fn dry_run_validates_everything_and_changes_nothing() {
    let env = Env::new();
    env.ws_cmd("a", "true");
    env.ws(
        "b",
        json!({"id": "b", "command": "true", "depends_on": ["a"], "surprise": 1}),
    );
    env.write("workstreams/bad1.json", "{");
    env.write(
        "workstreams/bad2.json",
        r#"{"id": "x y", "command": "true"}"#,
    );
    env.write(
        "workstreams/bad3.json",
        r#"{"id": "both", "command": "true", "prompt": "p"}"#,
    );
    let out = env.ws_run(&["--dry-run", "--agents", "2"]);
    out.expect(1);
    for needle in ["bad1.json", "bad2.json", "bad3.json", "surprise", "agent-1"] {
        assert!(
            out.stdout.contains(needle),
            "{needle} missing:\n{}",
            out.stdout
        );
    }
    assert!(!env.db_path().exists());
    assert!(!env.repo.join("reports").exists());
    assert!(env.git(&["branch", "--list", "ws/*"]).trim().is_empty());
}
