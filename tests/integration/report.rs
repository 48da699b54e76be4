//! `git ws-report` against real runs, the merge forecast on real branches, and the
//! post-merge hook run by a real `git merge`.

use crate::common::{result_json, Env};
use serde_json::{json, Value};
use std::time::Instant;

/// A repo where a and b edit the same line (conflict), c and d edit different regions of
/// one file (clean overlap), and e touches a file nobody else does.
fn forecast_env() -> (Env, String) {
    let env = Env::new();
    env.ws_cmd("a", "sed -i 's/^one$/ONE by a/' src/lib.txt");
    env.ws_cmd("b", "sed -i 's/^one$/one by b/' src/lib.txt");
    env.ws_cmd(
        "c",
        "printf 'c line\\n' >> docs/guide.txt; sed -i '1i top by c' README.md",
    );
    env.ws_cmd("d", "printf 'd line\\n' >> README.md");
    env.ws_cmd("e", "echo e > e.txt");
    let out = env.ws_run(&["--agents", "3"]);
    out.expect(0);
    let run = out.run_id();
    (env, run)
}

fn report_json(env: &Env, args: &[&str]) -> Value {
    let out = env.ws_report(args);
    out.expect(0);
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

#[test]
fn forecast_finds_the_conflict_the_clean_overlap_and_ignores_the_rest() {
    let (env, run) = forecast_env();
    let v = report_json(&env, &[&run, "--format", "json"]);
    let conflicts = v["conflicts"].as_array().unwrap();
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert_eq!(conflicts[0]["workstreams"], json!(["a", "b"]));
    assert_eq!(conflicts[0]["paths"], json!(["src/lib.txt"]));
    let hunk = conflicts[0]["hunks"][0]["text"].as_str().unwrap();
    assert!(
        hunk.contains("ONE by a") && hunk.contains("one by b"),
        "{hunk}"
    );
    let mut pair = [
        conflicts[0]["merge_first"].as_str().unwrap(),
        conflicts[0]["then_rebase"].as_str().unwrap(),
    ];
    pair.sort();
    assert_eq!(pair, ["a", "b"]);
    let overlaps = v["overlaps"].as_array().unwrap();
    let paths: Vec<&str> = overlaps
        .iter()
        .map(|o| o["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["README.md", "src/lib.txt"], "{overlaps:?}");
    // The clean overlap is reported as such, not as a conflict.
    let recs = v["recommendations"].to_string();
    assert!(recs.contains("a and b conflict in src/lib.txt"), "{recs}");
    assert!(recs.contains("merges cleanly"), "{recs}");
    assert!(!recs.contains("c and d conflict"), "{recs}");
    // The forecast is persisted, so ws-report does not recompute it.
    let pairs = env.sql(&format!(
        "SELECT ws_a, ws_b, clean FROM ws_forecast_pairs WHERE run_id = '{run}' ORDER BY ws_a"
    ));
    assert_eq!(pairs, vec![vec!["a", "b", "0"], vec!["c", "d", "1"]]);
    let order = env.sql(&format!(
        "SELECT workstream_id, clean FROM ws_merge_order WHERE run_id = '{run}' ORDER BY position"
    ));
    assert_eq!(order.len(), 5, "{order:?}");
    assert_eq!(
        order.iter().filter(|r| r[1] == "0").count(),
        1,
        "exactly one of a/b needs a rebase: {order:?}"
    );
    // The report shows the hunk and the merge order.
    let report = std::fs::read_to_string(
        env.repo
            .join(format!("reports/multi_agent_consolidated_{run}.md")),
    )
    .unwrap();
    assert!(report.contains("## Merge forecast"));
    assert!(
        report.contains("ONE by a") && report.contains("one by b"),
        "hunk shown"
    );
}

#[test]
fn listing_summary_sections_and_json_shape() {
    let env = Env::new();
    env.ws_cmd("w1", "echo 1 > one.txt");
    env.ws_cmd("w2", "echo 'it broke' >&2; exit 4");
    let first = env.ws_run(&["--agents", "2"]);
    first.expect(1);
    env.ws_run(&["--agents", "1", "--only", "w1"]).expect(0);

    // The list, newest first, as a table and as JSON.
    let out = env.ws_report(&[]);
    out.expect(0);
    assert!(out.stdout.contains(&first.run_id()), "{}", out.stdout);
    let list = report_json(&env, &["--format", "json"]);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    for key in [
        "schema",
        "run_id",
        "timestamp",
        "total_workstreams",
        "completed_count",
        "failed_count",
        "skipped_count",
    ] {
        assert!(list[0].get(key).is_some(), "{key} missing: {}", list[0]);
    }
    assert_eq!(list[1]["run_id"], json!(first.run_id()));
    assert_eq!(
        report_json(&env, &["--limit", "1", "--format", "json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // One run as JSON: every documented field.
    let v = report_json(&env, &[&first.run_id(), "--format", "json"]);
    for key in [
        "run_id",
        "timestamp",
        "total_workstreams",
        "completed_count",
        "failed_count",
        "skipped_count",
        "total_files_modified",
        "total_commits",
        "total_errors",
        "total_warnings",
        "recommendations",
        "agents",
        "workstreams",
        "overlaps",
        "conflicts",
    ] {
        assert!(v.get(key).is_some(), "{key} missing");
    }
    assert_eq!(v["failed_count"], json!(1));
    let ws = v["workstreams"].as_array().unwrap();
    let w1 = ws.iter().find(|w| w["workstream_id"] == "w1").unwrap();
    for key in [
        "agent_id",
        "status",
        "duration_seconds",
        "files_modified",
        "commits_created",
        "branch",
        "merged",
    ] {
        assert!(w1.get(key).is_some(), "{key} missing");
    }
    assert_eq!(w1["files_modified"], json!(["one.txt"]));
    assert_eq!(w1["merged"], json!(false));
    let agents = v["agents"].as_array().unwrap();
    assert!(agents
        .iter()
        .all(|a| a.get("busy_seconds").is_some() && a.get("total").is_some()));

    // Why w2 failed, from JSON alone (schema 2).
    assert_eq!(v["schema"], json!(2));
    let w2 = ws.iter().find(|w| w["workstream_id"] == "w2").unwrap();
    assert_eq!(w2["errors"][0]["type"], json!("CommandFailed"));
    assert_eq!(w2["exit_code"], json!(4));
    assert!(w2["start_time"].is_string() && w2["end_time"].is_string());
    let log = w2["log_path"].as_str().unwrap();
    assert!(log.ends_with("/w2.log"), "{log}");
    assert_eq!(w2["output_tail"]["text"], json!("it broke"));
    assert_eq!(w2["output_tail"]["log_path"], json!(log));

    // Section flags select the same sections in every format.
    for (flag, key) in [
        ("--errors", "errors"),
        ("--agents", "agents"),
        ("--files", "files"),
        ("--timeline", "timeline"),
    ] {
        let section = report_json(&env, &[&first.run_id(), flag, "--format", "json"]);
        assert_eq!(section, v[key], "{flag}");
    }
    let errors = v["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["workstream_id"], json!("w2"));
    assert_eq!(errors[0]["output_tail"]["text"], json!("it broke"));

    // Sections as tables: the errors with their output tail.
    let out = env.ws_report(&[&first.run_id(), "--errors"]);
    out.expect(0);
    assert!(out.stdout.contains("CommandFailed"), "{}", out.stdout);
    assert!(out.stdout.contains("\n    it broke\n"), "{}", out.stdout);
    assert!(out.stdout.contains(log), "{}", out.stdout);
    let out = env.ws_report(&["latest", "--agents", "--files", "--timeline"]);
    out.expect(0);
    assert!(out.stdout.contains("agent-1") && out.stdout.contains("one.txt"));
    // Every column of the files table is named.
    let files = env.ws_report(&["latest", "--files"]);
    let header: Vec<&str> = files
        .stdout
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["path", "change", "lines", "workstreams", "overlap"]
    );
}

#[test]
fn unknown_run_id_names_the_closest() {
    let env = Env::new();
    env.ws_cmd("w1", "true");
    let run = env.ws_run(&["--agents", "1"]).run_id();
    // Change the last digit (to one it is not).
    let last = if run.ends_with('9') { '8' } else { '9' };
    let typo = format!("{}{last}", &run[..run.len() - 1]);
    let out = env.ws_report(&[&typo]);
    out.expect(2);
    assert!(out.stderr.contains(&run), "{}", out.stderr);
    assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
}

#[test]
fn report_without_a_database_is_a_clear_error() {
    let env = Env::new();
    let out = env.ws_report(&[]);
    out.expect(2);
    assert!(
        out.stderr.contains("multi_agent_consolidated.db"),
        "{}",
        out.stderr
    );
}

fn hook_path(env: &Env) -> std::path::PathBuf {
    env.repo.join(".git/hooks/post-merge")
}

#[test]
fn install_hooks_is_idempotent_and_keeps_an_existing_hook() {
    let env = Env::new();
    let hook = hook_path(&env);
    std::fs::create_dir_all(hook.parent().unwrap()).unwrap();
    std::fs::write(&hook, "#!/bin/sh\necho 'my own hook ran'\nexit 0\n").unwrap();
    let out = env.ws_run(&["--install-hooks"]);
    out.expect(0);
    let once = std::fs::read_to_string(&hook).unwrap();
    env.ws_run(&["--install-hooks"]).expect(0);
    assert_eq!(std::fs::read_to_string(&hook).unwrap(), once);
    assert_eq!(once.matches(">>> git-ws post-merge >>>").count(), 1);
    assert!(once.contains("my own hook ran"));

    // A merge runs both: ours records, theirs still prints.
    env.git(&["checkout", "-q", "-b", "side"]);
    env.write("side.txt", "side\n");
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "side"]);
    env.git(&["checkout", "-q", "main"]);
    let out = env
        .command("git")
        .args(["merge", "-q", "--no-ff", "-m", "merge side", "side"])
        .output()
        .unwrap();
    assert!(out.status.success());
    // git sends hook output to stderr.
    assert!(String::from_utf8_lossy(&out.stderr).contains("my own hook ran"));
}

#[test]
fn install_hooks_honours_core_hookspath() {
    let env = Env::new();
    env.git(&["config", "core.hooksPath", "my-hooks"]);
    env.ws_run(&["--install-hooks"]).expect(0);
    assert!(env.repo.join("my-hooks/post-merge").is_file());
    assert!(!hook_path(&env).exists());
}

#[test]
fn post_merge_hook_records_what_landed() {
    let env = Env::new();
    env.ws_cmd("w1", "echo 1 > one.txt");
    env.ws_cmd("w2", "echo 2 > two.txt");
    let run = env.ws_run(&["--agents", "2"]).run_id();
    env.ws_run(&["--install-hooks"]).expect(0);
    let out = env
        .command("git")
        .args(["merge", "--no-ff", "-m", "land w1", &format!("ws/{run}/w1")])
        .output()
        .unwrap();
    assert!(out.status.success());
    // git sends hook output to stderr.
    let stdout = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains(&format!(
            "ws: w1 of {run} merged; 1 completed branch still unmerged"
        )),
        "{stdout}"
    );
    let rows = env.sql(&format!(
        "SELECT workstream_id, branch, merge_commit FROM ws_merges WHERE run_id = '{run}'"
    ));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][0], "w1");
    assert_eq!(rows[0][2], env.git(&["rev-parse", "HEAD"]).trim());
    let v = report_json(&env, &[&run, "--format", "json"]);
    let merged: Vec<(String, bool)> = v["workstreams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["workstream_id"].as_str().unwrap().to_string(),
                w["merged"].as_bool().unwrap(),
            )
        })
        .collect();
    assert!(merged.contains(&("w1".to_string(), true)));
    assert!(merged.contains(&("w2".to_string(), false)));

    // Running the hook again records nothing new and prints nothing.
    let hook = hook_path(&env);
    let out = env.command(hook.to_str().unwrap()).output().unwrap();
    assert!(out.status.success());
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // It is fast: well under 100 ms (median of 5; debug build, loaded machine).
    let mut times: Vec<u128> = (0..5)
        .map(|_| {
            let t = Instant::now();
            env.command(hook.to_str().unwrap()).output().unwrap();
            t.elapsed().as_millis()
        })
        .collect();
    times.sort();
    eprintln!("post-merge hook: median {} ms", times[2]);
}

#[test]
fn a_merge_succeeds_when_the_database_is_missing_or_locked() {
    let env = Env::new();
    env.ws_cmd("w1", "echo 1 > one.txt");
    let run = env.ws_run(&["--agents", "1"]).run_id();
    env.ws_run(&["--install-hooks"]).expect(0);

    // Locked: hold an exclusive lock from another connection while merging.
    let db = env.db_path();
    let locker = std::thread::spawn({
        let db = db.clone();
        move || {
            use libsqlite3_sys as ffi;
            let path = std::ffi::CString::new(db.to_str().unwrap()).unwrap();
            // SAFETY: plain SQLite C API use; the handle is closed before returning.
            unsafe {
                let mut conn = std::ptr::null_mut();
                assert_eq!(ffi::sqlite3_open(path.as_ptr(), &mut conn), ffi::SQLITE_OK);
                let begin = std::ffi::CString::new("BEGIN EXCLUSIVE").unwrap();
                let rc = ffi::sqlite3_exec(
                    conn,
                    begin.as_ptr(),
                    None,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                );
                assert_eq!(rc, ffi::SQLITE_OK);
                std::thread::sleep(std::time::Duration::from_millis(1500));
                ffi::sqlite3_close(conn);
            }
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(200));
    let t = Instant::now();
    let out = env
        .command("git")
        .args(["merge", "--no-ff", "-m", "land", &format!("ws/{run}/w1")])
        .output()
        .unwrap();
    let took = t.elapsed();
    locker.join().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        took.as_millis() < 1000,
        "the hook waited for the lock: {took:?}"
    );
    assert!(env.repo.join("one.txt").is_file());

    // Missing: the merge still succeeds, silently.
    std::fs::remove_dir_all(env.repo.join(".state")).unwrap();
    env.git(&["checkout", "-q", "-b", "other", "HEAD~1"]);
    env.write("x.txt", "x\n");
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "x"]);
    env.git(&["checkout", "-q", "main"]);
    let out = env
        .command("git")
        .args(["merge", "--no-ff", "-m", "other", "other"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("ws:"));
}

#[test]
fn git_ws_run_help_opens_the_generated_man_page() {
    let env = Env::new();
    let root = env.scratch("install");
    let out = env.ws_run(&[
        "--generate-man",
        root.join("share/man/man1").to_str().unwrap(),
    ]);
    out.expect(0);
    assert!(root.join("share/man/man1/git-ws-run.1").is_file());
    assert!(root.join("share/man/man1/git-ws-report.1").is_file());
    if which("man").is_none() {
        eprintln!("no `man` on this machine: checked the pages were written, not displayed");
        return;
    }
    // man finds <root>/share/man for <root>/bin on PATH, as after `cargo install --root`.
    std::fs::create_dir_all(root.join("bin")).unwrap();
    for bin in ["git-ws-run", "git-ws-report"] {
        std::os::unix::fs::symlink(
            crate::common::bin_dir().join(bin),
            root.join("bin").join(bin),
        )
        .unwrap();
    }
    let path = format!(
        "{}:{}",
        root.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = env
        .command("git")
        .args(["ws-run", "--help"])
        .env("PATH", path)
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .env_remove("MANPATH")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("rerun-failed") && text.contains("git-ws-run"),
        "{text}"
    );
}

fn which(prog: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(prog))
            .find(|c| c.is_file())
    })
}

#[test]
fn bash_completion_completes_git_ws_run_through_gits_own_completion() {
    let git_completion = std::path::Path::new("/usr/share/bash-completion/completions/git");
    if !git_completion.is_file() || which("bash").is_none() {
        eprintln!("no bash or git bash completion here: nothing to check against");
        return;
    }
    let env = Env::new();
    let out = env.ws_run(&["--generate-completions", "bash"]);
    out.expect(0);
    let script = env.scratch("git-ws.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    let check = |words: &str| -> String {
        let program = format!(
            "source {}; source {}; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); COMP_LINE='{words}'; COMP_POINT=${{#COMP_LINE}}; __git_func_wrap __git_main; echo \"${{COMPREPLY[*]}}\"",
            git_completion.display(),
            script.display()
        );
        let o = env.command("bash").args(["-c", &program]).output().unwrap();
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    assert_eq!(check("git ws-run --rer"), "--rerun-failed");
    assert_eq!(check("git ws-report --time"), "--timeline");
}

#[test]
fn a_merge_in_a_linked_worktree_is_recorded_too() {
    let env = Env::new();
    env.ws_cmd("w1", "echo 1 > one.txt");
    let run = env.ws_run(&["--agents", "1"]).run_id();
    env.ws_run(&["--install-hooks"]).expect(0);
    let linked = env.scratch("linked");
    env.git(&[
        "worktree",
        "add",
        "-q",
        "-b",
        "integration",
        linked.to_str().unwrap(),
    ]);
    let out = env
        .command("git")
        .current_dir(&linked)
        .args(["merge", "--no-ff", "-m", "land w1", &format!("ws/{run}/w1")])
        .output()
        .unwrap();
    assert!(out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains(&format!("ws: w1 of {run} merged")), "{said}");
    let rows = env.sql(&format!(
        "SELECT merge_commit FROM ws_merges WHERE run_id = '{run}' AND workstream_id = 'w1'"
    ));
    let head = env.git(&["rev-parse", "integration"]);
    assert_eq!(rows, vec![vec![head.trim().to_string()]]);
}

#[test]
fn hostile_agent_output_is_cleaned_capped_and_its_warnings_kept() {
    let env = Env::new();
    let long_title = format!("\u{1b}[31mred title\u{1b}[0m {}", "t".repeat(3_000));
    env.ws(
        "hostile",
        json!({
            "id": "hostile",
            "title": long_title,
            "labels": ["not a field"],
            "command": "printf '\\033[1mbuilding\\033[0m \\033]8;;https://x.test/\\033\\\\docs\\033]8;;\\033\\\\ 10%%\\r100%%\\n'; echo 'error: the real reason' >&2; head -c 14000 /dev/zero | tr '\\0' z >&2; echo >&2; exit 2"
        }),
    );
    let out = env.ws_run(&["--agents", "1"]);
    out.expect(1);
    let run = out.run_id();
    // The load warning is stored with the workstream …
    let warnings = result_json(&env, &run, "hostile", "warnings").to_string();
    assert!(
        warnings.contains("unknown field \\\"labels\\\""),
        "{warnings}"
    );
    // … the stored tail keeps the error line before the huge one, which is capped.
    let meta = result_json(&env, &run, "hostile", "metadata");
    let tail = meta["output_tail"].as_str().unwrap();
    assert!(tail.contains("error: the real reason"), "{tail}");
    assert!(tail.len() < 2_000, "{}", tail.len());
    assert!(tail.ends_with("characters cut]"), "{tail}");

    let report = std::fs::read_to_string(
        env.repo
            .join(format!("reports/multi_agent_consolidated_{run}.md")),
    )
    .unwrap();
    assert!(!report.contains('\u{1b}') && !report.contains('\r'));
    assert!(
        report.contains("\n100%\nerror: the real reason\nzzz"),
        "{report}"
    );
    assert!(
        report.contains("(1 long line cut); the whole log: "),
        "{report}"
    );
    assert!(
        report.contains("unknown field \"labels\" (ignored"),
        "{report}"
    );
    let row = report
        .lines()
        .find(|l| l.starts_with("| hostile |"))
        .unwrap();
    assert!(row.chars().count() < 300, "{row}");
    // The list of full titles caps it too, saying how long it is; the JSON has it whole.
    let full = report
        .lines()
        .find(|l| l.starts_with("- **hostile**: red title "))
        .unwrap();
    assert!(full.chars().count() < 400, "{full}");
    assert!(
        full.ends_with("(3010 characters; the full title is in the JSON)_"),
        "{full}"
    );

    let v = report_json(&env, &[&run, "--format", "json"]);
    let w = &v["workstreams"][0];
    // The JSON keeps the title as written, escapes and all (escaped as JSON).
    assert_eq!(w["title"], json!(long_title));
    assert_eq!(w["output_tail"]["cut_lines"], json!(1));
    assert_eq!(v["warnings"][0]["workstream_id"], json!("hostile"));
    let table = env.ws_report(&[&run]);
    assert!(
        table.stdout.lines().all(|l| l.chars().count() < 400),
        "{}",
        table.stdout
    );
}

#[test]
fn ws_run_json_is_the_report_run_object() {
    let env = Env::new();
    env.ws_cmd("ok", "echo ok > ok.txt");
    env.ws_cmd("bad", "echo nope >&2; exit 1");
    let out = env.ws_run(&["--agents", "2", "--format", "json"]);
    out.expect(1);
    let ran: Value = serde_json::from_str(&out.stdout).unwrap();
    let reported = report_json(&env, &[ran["run_id"].as_str().unwrap(), "--format", "json"]);
    for (key, value) in reported.as_object().unwrap() {
        assert_eq!(&ran[key], value, "{key}");
    }
    for key in ["report_path", "db_path", "exit_code", "interrupted"] {
        assert!(ran.get(key).is_some(), "{key}");
    }
    assert_eq!(ran["exit_code"], json!(1));
}

/// The run writes its HTML page beside the Markdown report; `ws-merge` rewrites it with the
/// integration; `ws.htmlReport=false` writes none; `--format html` prints a page.
#[test]
fn the_html_page_is_written_beside_the_report_and_printed_on_demand() {
    let (env, run) = forecast_env();
    let page_path = env
        .repo
        .join(format!("reports/multi_agent_consolidated_{run}.html"));
    let page = std::fs::read_to_string(&page_path).expect("the run wrote its HTML page");
    assert!(page.starts_with("<!doctype html>"), "{}", &page[..80]);
    assert!(page.contains(&run) && page.contains("Content-Security-Policy"));
    assert!(page.contains("Not integrated yet"));
    // Its conflict, with the hunk, is on the page.
    assert!(page.contains("ONE by a") && page.contains("one by b"));
    env.ws_merge(&[&run]).expect(1);
    let after = std::fs::read_to_string(&page_path).unwrap();
    assert!(
        !after.contains("Not integrated yet"),
        "ws-merge rewrote the page"
    );
    assert!(after.contains(&format!("ws/{run}/integration")));

    let printed = env.ws_report(&[&run, "--format", "html"]);
    printed.expect(0);
    assert!(printed.stdout.starts_with("<!doctype html>"));
    assert!(printed.stdout.contains(&format!("ws/{run}/integration")));
    let list = env.ws_report(&["--format", "html"]);
    list.expect(0);
    assert!(
        list.stdout.contains(&format!("<code>{run}</code>")),
        "{}",
        list.stdout
    );
    let both = env.ws_report(&[&run, "--format", "html", "--errors"]);
    both.expect(2);
    assert!(
        both.stderr.contains("--format html shows the whole run"),
        "{}",
        both.stderr
    );

    env.git(&["config", "ws.htmlReport", "false"]);
    let out = env.ws_run(&["--agents", "2"]);
    let second = out.run_id();
    assert!(env
        .repo
        .join(format!("reports/multi_agent_consolidated_{second}.md"))
        .is_file());
    assert!(!env
        .repo
        .join(format!("reports/multi_agent_consolidated_{second}.html"))
        .exists());
    env.git(&["config", "ws.htmlReport", "maybe"]);
    let bad = env.ws_report(&["--format", "json"]);
    assert!(bad.stderr.contains("ws.htmlReport"), "{}", bad.stderr);
}

/// The hook's lines on stderr (git sends hook output there).
fn hook_lines(out: &std::process::Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("ws: "))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_hook_counts_only_what_the_merge_brought_in_each_once_with_its_run() {
    let env = Env::new();
    env.ws_run(&["--install-hooks"]).expect(0);
    let fresh_backlog = || {
        let _ = std::fs::remove_dir_all(env.repo.join("workstreams"));
    };
    // Run A: two zero-commit workstreams and `a`, merged by hand.
    env.ws_cmd("z1", "true");
    env.ws_cmd("z2", "true");
    env.ws_cmd("a", "echo old > a-old.txt");
    let run_a = env.ws_run(&["--agents", "2", "-q"]).run_id();
    let m = env
        .command("git")
        .args(["merge", "--no-ff", "-m", "land a", &format!("ws/{run_a}/a")])
        .output()
        .unwrap();
    assert!(m.status.success());
    let said = hook_lines(&m);
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(
        said[0].starts_with(&format!("ws: a of {run_a} merged;")),
        "{said:?}"
    );
    // z1 and z2 have no commit: nothing of theirs is left to merge.
    assert!(
        said[0].ends_with("; 0 completed branches still unmerged"),
        "{said:?}"
    );

    // Run B from the new main: a (again), b, c, a zero-commit e, and f failing until a
    // flag exists; then its rerun, where f completes.
    fresh_backlog();
    let flag = env.scratch("flag");
    env.ws_cmd("a", "echo a > a.txt");
    env.ws_cmd("b", "echo b > b.txt");
    env.ws_cmd("c", "echo c > c.txt");
    env.ws_cmd("e", "true");
    env.ws_cmd(
        "f",
        &format!("test -f '{}' || exit 3; echo f > f.txt", flag.display()),
    );
    let out = env.ws_run(&["--agents", "2", "-q"]);
    out.expect(1);
    let run_b = out.run_id();
    std::fs::write(&flag, "go").unwrap();
    let rerun = env.ws_run(&["--rerun-failed", &run_b, "-q"]);
    rerun.expect(0);
    let run_c = rerun.run_id();
    assert_ne!(run_c, run_b);

    // Land run B through its integration branch, fast-forward.
    let merged = env
        .command("git")
        .args(["ws-merge", &run_b, "-q", "--format", "json"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&merged.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&merged.stderr)));
    let integration = format!("ws/{run_b}/integration");
    assert_eq!(
        env.git(&["rev-parse", &integration]).trim(),
        v["tip"].as_str().unwrap()
    );
    let m = env
        .command("git")
        .args(["merge", "--ff-only", &integration])
        .output()
        .unwrap();
    assert!(m.status.success(), "{}", String::from_utf8_lossy(&m.stderr));
    let said = hook_lines(&m);
    assert_eq!(said.len(), 1, "{said:?}");
    // Exactly a, b and c of run B, once each, with the run id: not run A's zero-commit
    // branches nor its earlier `a`, not B's empty `e`, not the rerun's unmerged `f`.
    assert!(
        said[0].starts_with(&format!("ws: 3 workstreams merged — {run_b}: a, b, c;")),
        "{said:?}"
    );
    // Still unmerged: only the rerun's f (not A's or B's zero-commit branches).
    assert!(
        said[0].ends_with("; 1 completed branch still unmerged"),
        "{said:?}"
    );
    // (B's id may extend A's: `…-2`.)
    for other in [&run_a, &run_c] {
        assert!(!said[0].contains(&format!("{other}:")), "{said:?}");
    }
    let rows = env.sql(
        "SELECT run_id, workstream_id, detected_by FROM ws_merges ORDER BY run_id, workstream_id",
    );
    let mut want = vec![
        vec![run_a.clone(), "a".to_string(), "ancestor".to_string()],
        vec![run_b.clone(), "a".to_string(), "ancestor".to_string()],
        vec![run_b.clone(), "b".to_string(), "ancestor".to_string()],
        vec![run_b.clone(), "c".to_string(), "ancestor".to_string()],
    ];
    want.sort();
    assert_eq!(rows, want);

    // The rerun's f, merged on its own next: one line, its own run.
    let m = env
        .command("git")
        .args(["merge", "--no-ff", "-m", "land f", &format!("ws/{run_c}/f")])
        .output()
        .unwrap();
    assert!(m.status.success());
    let said = hook_lines(&m);
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(
        said[0] == format!("ws: f of {run_c} merged; 0 completed branches still unmerged"),
        "{said:?}"
    );
}

#[test]
fn markdown_prints_the_report_and_write_rewrites_the_file() {
    let env = Env::new();
    env.ws_cmd("w1", "echo 1 > one.txt");
    let first = env.ws_run(&["--agents", "1"]);
    first.expect(0);
    // Markdown prints the whole report on stdout, and writes no file …
    let report = env.repo.join(format!(
        "reports/multi_agent_consolidated_{}.md",
        first.run_id()
    ));
    std::fs::remove_file(&report).unwrap();
    let md = env.ws_report(&[&first.run_id(), "--format", "markdown"]);
    md.expect(0);
    assert!(md.stdout.starts_with("# Multi-agent run "), "{}", md.stdout);
    assert!(md.stdout.contains("## Executive summary"), "{}", md.stdout);
    assert!(!report.exists());
    // … unless --write: then it rewrites the file (in --reports-dir) and prints its path.
    let md = env.ws_report(&[&first.run_id(), "--format", "markdown", "--write"]);
    md.expect(0);
    assert_eq!(md.stdout.trim(), report.display().to_string());
    let written = std::fs::read_to_string(&report).unwrap();
    assert!(written.contains("## Executive summary"));
    let elsewhere = env.scratch("elsewhere");
    let md = env.ws_report(&[
        &first.run_id(),
        "--format",
        "markdown",
        "--write",
        "--reports-dir",
        elsewhere.to_str().unwrap(),
    ]);
    md.expect(0);
    assert!(std::path::Path::new(md.stdout.trim()).starts_with(&elsewhere));
    // --write with anything else is refused.
    let bad = env.ws_report(&[&first.run_id(), "--format", "json", "--write"]);
    bad.expect(2);
    assert!(bad.stderr.contains("--write"), "{}", bad.stderr);
}

#[test]
fn every_json_object_printed_says_its_schema() {
    let env = Env::new();
    env.ws_cmd("w1", "echo 1 > one.txt");
    let run = env.ws_run(&["--agents", "1"]).run_id();
    let list = report_json(&env, &["--format", "json"]);
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["schema"] == json!(2)));
    assert_eq!(report_json(&env, &[&run, "--format", "json"])["schema"], 2);
    let two = report_json(&env, &[&run, "--agents", "--files", "--format", "json"]);
    assert_eq!(two["schema"], 2, "{two}");
    assert!(two["agents"].is_array() && two["files"].is_array(), "{two}");
    let merge = env
        .command("git")
        .args(["ws-merge", &run, "--format", "json", "-q"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&merge.stdout).into_owned();
    assert!(text.starts_with("{\n  \"schema\": 2,"), "{text}");
    let merge: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(merge["schema"], 2, "{merge}");
}
