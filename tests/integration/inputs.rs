//! Hostile and odd inputs: readers that only read, identities that cannot collide, run ids
//! and names that are validated or cleaned before they reach a path, a ref or a terminal,
//! and repositories in unusual states.

use crate::common::{sql_exec, Env};
use std::path::Path;

/// Every file in `dir` with its bytes, sorted. SQLite's `-shm` (shared memory where every
/// reader of a WAL database marks what it reads) is listed without its bytes.
fn files_in(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = if name.ends_with("-shm") {
                Vec::new()
            } else {
                std::fs::read(&p).unwrap()
            };
            (name, bytes)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_reader_refuses_an_empty_or_foreign_database_and_writes_nothing() {
    let env = Env::new();
    let dir = env.scratch("dbs");
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("e.db");
    std::fs::write(&empty, b"").unwrap();
    let foreign = dir.join("foreign.db");
    std::fs::write(&foreign, b"").unwrap();
    sql_exec(
        &foreign,
        "CREATE TABLE notes (t TEXT); INSERT INTO notes VALUES ('mine');",
    );
    let before = files_in(&dir);
    for db in [&empty, &foreign] {
        let out = env.ws_report(&["--db", db.to_str().unwrap()]);
        out.expect(2);
        assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
        assert!(out.stderr.contains("no git-ws tables"), "{}", out.stderr);
        let out = env.ws_report(&["latest", "--db", db.to_str().unwrap(), "--format", "json"]);
        out.expect(2);
    }
    assert!(
        files_in(&dir) == before,
        "a reader changed {}",
        dir.display()
    );
    // A real run's database is read without a byte or a file changing beside it.
    env.ws_cmd("a", "echo a > a.txt");
    env.ws_run(&[]).expect(0);
    let state = env.db_path().parent().unwrap().to_path_buf();
    let before = files_in(&state);
    env.ws_report(&[]).expect(0);
    env.ws_report(&["latest", "--format", "json"]).expect(0);
    let names = |v: &[(String, Vec<u8>)]| -> Vec<(String, usize)> {
        v.iter().map(|(n, b)| (n.clone(), b.len())).collect()
    };
    let after = files_in(&state);
    assert!(
        after == before,
        "a reader changed .state/: {:?} -> {:?}",
        names(&before),
        names(&after)
    );
}

#[test]
fn a_reader_pointed_at_the_null_device_leaves_no_journal() {
    let env = Env::new();
    let out = env.ws_report(&["--db", "/dev/null"]);
    out.expect(2);
    assert!(!Path::new("/dev/null-journal").exists());
    assert!(!Path::new("/dev/null-wal").exists());
}

#[test]
fn an_invalid_file_and_a_workstream_with_its_name_as_id_are_both_counted() {
    let env = Env::new();
    env.write("workstreams/broken.json", "{ this is not json");
    env.ws(
        "ok",
        serde_json::json!({"id": "broken.json", "command": "echo b > b.txt"}),
    );
    env.ws_cmd("other", "echo o > o.txt");
    let out = env.ws_run(&["--agents", "1"]);
    let run = out.run_id();
    assert!(
        out.stdout.contains("2 completed, 1 failed"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    let rows = env.sql(&format!(
        "SELECT workstream_id, status FROM agent_results WHERE run_id = '{run}' \
         ORDER BY workstream_id"
    ));
    assert_eq!(
        rows,
        vec![
            vec!["broken.json".to_string(), "completed".to_string()],
            vec!["file:broken.json".to_string(), "failed".to_string()],
            vec!["other".to_string(), "completed".to_string()],
        ]
    );
    let out = env.ws_report(&[&run, "--format", "json"]);
    out.expect(0);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["total_workstreams"], 3);
    assert_eq!(v["completed_count"], 2);
    assert_eq!(v["failed_count"], 1);
    let text = v.to_string();
    assert!(text.contains("\"file:broken.json\""), "{text}");
    let md = env.ws_report(&[&run, "--format", "markdown"]);
    md.expect(0);
    let report = &md.stdout;
    assert!(report.contains("file:broken.json"), "{report}");
    assert!(report.contains("| Workstreams | 3 |"), "{report}");
}

#[test]
fn a_crafted_run_id_in_the_database_never_becomes_a_path() {
    let env = Env::new();
    env.ws_cmd("a", "echo a > a.txt");
    env.ws_run(&[]).expect(0);
    let target = env.scratch("owned");
    let crafted = format!(
        "x/{}{}",
        "../".repeat(30),
        target.to_str().unwrap().trim_start_matches('/')
    );
    sql_exec(
        &env.db_path(),
        &format!(
            "CREATE TEMP TABLE t AS SELECT * FROM consolidated_runs; UPDATE t SET run_id = '{crafted}'; \
             INSERT INTO consolidated_runs SELECT * FROM t; \
             CREATE TEMP TABLE u AS SELECT * FROM ws_runs; UPDATE u SET run_id = '{crafted}'; \
             INSERT INTO ws_runs SELECT * FROM u;"
        ),
    );
    let reports = env.repo.join("reports");
    let before = files_in(&reports);
    for args in [
        vec![crafted.as_str(), "--format", "markdown"],
        vec![crafted.as_str(), "--format", "json"],
    ] {
        let out = env.ws_report(&args);
        out.expect(2);
        assert!(
            out.stderr.contains("is not a valid run id"),
            "{}",
            out.stderr
        );
        assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
    }
    assert!(!env.scratch("owned.md").exists());
    assert!(files_in(&reports) == before);
}

/// Whether `s` holds a character no terminal or report line may receive from user input.
fn hostile_char(s: &str) -> Option<char> {
    s.chars().find(|&c| {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}')
    })
}

#[test]
fn hostile_file_names_and_titles_are_cleaned_in_every_output_but_json() {
    let env = Env::new();
    let name = "evil\u{1b}]0;owned\u{7}\u{1b}[2J\u{202E}nosj.\u{200B}x.json";
    env.write(&format!("workstreams/{name}"), "{ not json");
    let title = format!("title \u{202E}\u{1b}[31mred\u{2066} {}", "t".repeat(3_000));
    env.ws(
        "ok",
        serde_json::json!({"id": "ok", "title": title, "command": "echo o > o.txt"}),
    );
    let dry = env.ws_run(&["--dry-run"]);
    assert_eq!(hostile_char(&dry.stdout), None, "{:?}", dry.stdout);
    assert_eq!(hostile_char(&dry.stderr), None, "{:?}", dry.stderr);
    assert!(dry.stdout.contains("evil"), "{}", dry.stdout);
    let out = env.ws_run(&["--agents", "1"]);
    out.expect(1);
    let run = out.run_id();
    assert_eq!(hostile_char(&out.stdout), None, "summary: {:?}", out.stdout);
    assert_eq!(
        hostile_char(&out.stderr),
        None,
        "progress: {:?}",
        out.stderr
    );
    assert!(out.stderr.contains("evil"), "{}", out.stderr);
    for (format, sections) in [
        ("table", vec![]),
        ("table", vec!["--agents", "--errors", "--timeline"]),
        ("markdown", vec!["--agents", "--errors", "--timeline"]),
    ] {
        let mut args = vec![run.as_str(), "--format", format];
        args.extend(sections);
        let r = env.ws_report(&args);
        r.expect(0);
        assert_eq!(hostile_char(&r.stdout), None, "{format}: {:?}", r.stdout);
        let longest = r.stdout.lines().map(|l| l.chars().count()).max().unwrap();
        assert!(longest < 500, "{format}: a line of {longest} characters");
    }
    let md = env.ws_report(&[&run, "--format", "markdown", "--write"]);
    let report = std::fs::read_to_string(md.stdout.trim()).unwrap();
    assert_eq!(hostile_char(&report), None);
    assert!(report.lines().all(|l| l.chars().count() < 500));
    // The JSON keeps the raw text, escaped as JSON: the whole title, the file's key.
    let json = env.ws_report(&[&run, "--format", "json"]);
    json.expect(0);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let ws = v["workstreams"].as_array().unwrap();
    assert!(ws.iter().any(|w| w["title"] == serde_json::json!(title)));
    assert!(ws
        .iter()
        .any(|w| w["workstream_id"] == serde_json::json!(format!("file:{name}"))));
    // The database keeps the file name as it is.
    let rows = env.sql(&format!(
        "SELECT workstream_id FROM agent_results WHERE run_id = '{run}' AND status = 'failed'"
    ));
    assert_eq!(rows, vec![vec![format!("file:{name}")]]);
}

#[test]
fn a_symlink_in_workstreams_leaving_the_repository_is_refused_and_the_others_run() {
    let env = Env::new();
    let secret = env.scratch("secret.json");
    std::fs::write(&secret, r#"{"id": "stolen", "command": "echo s > s.txt"}"#).unwrap();
    std::fs::create_dir_all(env.repo.join("workstreams")).unwrap();
    std::os::unix::fs::symlink(&secret, env.repo.join("workstreams/x.json")).unwrap();
    env.ws_cmd("ok", "echo o > o.txt");
    let out = env.ws_run(&["--agents", "1"]);
    out.expect(1);
    assert!(
        out.stdout.contains("1 completed, 1 failed"),
        "{}",
        out.stdout
    );
    let run = out.run_id();
    let rows = env.sql(&format!(
        "SELECT workstream_id, status FROM agent_results WHERE run_id = '{run}' ORDER BY 1"
    ));
    assert_eq!(
        rows,
        vec![
            vec!["file:x.json".to_string(), "failed".to_string()],
            vec!["ok".to_string(), "completed".to_string()],
        ]
    );
    let errors = env.sql(&format!(
        "SELECT error_message FROM consolidated_errors WHERE run_id = '{run}'"
    ));
    let text = format!("{errors:?}");
    assert!(text.contains("x.json: a symbolic link to "), "{text}");
    assert!(text.contains("outside the repository"), "{text}");
}

/// `git ws-report` in a repository in an odd state: exit 2 and one sentence naming the
/// state, never "not inside a git repository".
fn says_the_situation(env: &Env, wanted: &str) {
    let out = env.ws_report(&[]);
    out.expect(2);
    assert!(!out.stderr.contains("not inside"), "{}", out.stderr);
    assert!(out.stderr.contains(wanted), "{}", out.stderr);
    assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
}

#[test]
fn odd_repositories_get_a_sentence_naming_their_state() {
    let env = Env::new();
    env.ws_cmd("a", "echo a > a.txt");
    env.ws_run(&[]).expect(0);
    env.ws_report(&[]).expect(0);
    // An orphan branch.
    env.git(&["checkout", "-q", "--orphan", "x"]);
    says_the_situation(&env, "the current branch x has no commits");
    // The current branch deleted.
    env.git(&["checkout", "-q", "-f", "main"]);
    env.git(&["update-ref", "-d", "refs/heads/main"]);
    says_the_situation(&env, "the current branch main has no commits");
    // core.bare set in a repository with a working tree.
    let env = Env::new();
    env.git(&["config", "core.bare", "true"]);
    says_the_situation(&env, "bare repository");
    // A repository without any commit says so too.
    let empty = env.scratch("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = env
        .command("git")
        .current_dir(&empty)
        .args(["init", "-q"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = env
        .command("git")
        .current_dir(&empty)
        .arg("ws-report")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("no commits yet"), "{stderr}");
}

#[test]
fn ws_merge_ff_clashing_with_an_untracked_file_names_it() {
    let env = Env::new();
    env.ws_cmd("a", "echo from-a > new.txt");
    let out = env.ws_run(&[]);
    out.expect(0);
    let run = out.run_id();
    env.write("new.txt", "mine, untracked\n");
    let start = env.git(&["rev-parse", "HEAD"]);
    let out = env
        .command("git")
        .args(["ws-merge", &run, "--ff"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The integration branch is made; the fast-forward is what failed (exit 1).
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("would overwrite a file that is not committed there (new.txt)"),
        "{stderr}"
    );
    assert!(!stderr.contains("conflict prevents checkout"), "{stderr}");
    assert_eq!(env.git(&["rev-parse", "HEAD"]), start);
    assert_eq!(
        std::fs::read_to_string(env.repo.join("new.txt")).unwrap(),
        "mine, untracked\n"
    );
}

#[test]
fn a_huge_output_leaves_a_capped_log_with_its_head_and_tail() {
    let env = Env::new();
    env.git(&["config", "ws.maxLogBytes", "64k"]);
    env.ws_cmd(
        "loud",
        "echo FIRST-LINE; head -c 2000000 /dev/zero | tr '\\0' 'x'; echo; echo LAST-LINE; echo a > a.txt",
    );
    let out = env.ws_run(&["--agents", "1"]);
    out.expect(0);
    let run = out.run_id();
    let log = env.repo.join(format!(".state/logs/{run}/loud.log"));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.len() < 70_000, "{} bytes", text.len());
    assert!(text.contains("FIRST-LINE"));
    assert!(text.contains("LAST-LINE"));
    assert!(
        text.contains("bytes of output cut here"),
        "{}",
        &text[..200]
    );
    // A value that is not a byte count is refused before anything runs.
    env.git(&["config", "ws.maxLogBytes", "lots"]);
    let out = env.ws_run(&["--agents", "1"]);
    out.expect(2);
    assert!(out.stderr.contains("ws.maxLogBytes"), "{}", out.stderr);
}

#[test]
fn ws_merge_dry_run_reads_the_database_without_migrating_it() {
    let env = Env::new();
    env.ws_cmd("a", "echo a > a.txt");
    let out = env.ws_run(&[]);
    out.expect(0);
    let run = out.run_id();
    let state = env.db_path().parent().unwrap().to_path_buf();
    let before = files_in(&state);
    env.command("git")
        .args(["ws-merge", &run, "--dry-run"])
        .output()
        .unwrap();
    assert!(files_in(&state) == before, "a dry run changed .state/");
    // A schema one migration behind: a reader says so and leaves it as it is.
    sql_exec(
        &env.db_path(),
        "DELETE FROM __diesel_schema_migrations WHERE version = \
         (SELECT MAX(version) FROM __diesel_schema_migrations);",
    );
    let before = files_in(&state);
    let out = env
        .command("git")
        .args(["ws-merge", &run, "--dry-run"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("written by an older git-ws"), "{stderr}");
    let report = env.ws_report(&[]);
    report.expect(2);
    assert!(report.stderr.contains("older git-ws"), "{}", report.stderr);
    assert!(files_in(&state) == before, "a reader migrated .state/");
}

/// How many runs the database holds (0 when there is no database).
fn runs_recorded(env: &Env) -> usize {
    if !env.db_path().exists() {
        return 0;
    }
    env.sql("SELECT COUNT(*) FROM consolidated_runs")[0][0]
        .parse()
        .unwrap()
}

#[test]
fn an_empty_or_misnamed_backlog_is_exit_2_with_one_sentence_and_records_no_run() {
    let env = Env::new();
    std::fs::create_dir_all(env.repo.join("workstreams")).unwrap();
    for args in [&["--dry-run"][..], &["--agents", "1"][..]] {
        let out = env.ws_run(args);
        out.expect(2);
        assert!(
            out.stderr
                .contains("no workstreams: workstreams/ is empty (add one JSON file per workstream, named <id>.json)"),
            "{}",
            out.stderr
        );
    }
    env.write("workstreams/a.JSON", r#"{"id": "a", "command": "true"}"#);
    env.write(
        "workstreams/b.json.bak",
        r#"{"id": "b", "command": "true"}"#,
    );
    for args in [&["--dry-run"][..], &["--agents", "1"][..]] {
        let out = env.ws_run(args);
        out.expect(2);
        let said: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(said.len(), 1, "{}", out.stderr);
        assert!(
            said[0].contains(
                "no workstreams: workstreams/ holds no *.json file, only 2 misnamed files (a.JSON, b.json.bak): only names ending in \".json\" (lower case) are read"
            ),
            "{}",
            out.stderr
        );
    }
    assert_eq!(runs_recorded(&env), 0);
}

#[test]
fn a_dry_run_catches_a_prompt_without_an_agent_and_misspelled_fields() {
    let env = Env::new();
    env.ws_cmd("base", "echo b > b.txt");
    env.ws(
        "ask",
        serde_json::json!({"id": "ask", "prompt": "write docs"}),
    );
    let out = env.ws_run(&["--dry-run"]);
    out.expect(1);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(
        all.contains("ask.json: field \"prompt\": no agent is set to run it: pass --agent NAME"),
        "{all}"
    );
    // With an agent command (flag or git config), it passes.
    env.ws_run(&["--dry-run", "--agent-cmd", "cat > notes.md"])
        .expect(0);
    env.git(&["config", "ws.agentCommand", "cat > notes.md"]);
    env.ws_run(&["--dry-run"]).expect(0);

    // A misspelled required field gets a suggestion; a misspelled depends_on is an error.
    env.ws("typo", serde_json::json!({"id": "typo", "comand": "true"}));
    env.ws(
        "later",
        serde_json::json!({"id": "later", "command": "true", "dependsOn": ["base"]}),
    );
    let out = env.ws_run(&["--dry-run"]);
    out.expect(1);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(
        all.contains(
            "typo.json: needs exactly one of \"command\" and \"prompt\" (found neither; did you mean \"command\" for \"comand\"?)"
        ),
        "{all}"
    );
    assert!(
        all.contains("later.json: field \"dependsOn\": unknown; did you mean \"depends_on\"?"),
        "{all}"
    );
    // The real run fails them the same way, and runs the rest.
    let out = env.ws_run(&["--agents", "1", "--only", "base,later"]);
    out.expect(1);
    let run = out.run_id();
    let rows = env.sql(&format!(
        "SELECT workstream_id, status FROM agent_results WHERE run_id = '{run}' ORDER BY 1"
    ));
    assert_eq!(
        rows,
        vec![
            vec!["base".to_string(), "completed".to_string()],
            vec!["later".to_string(), "failed".to_string()],
        ]
    );
}
