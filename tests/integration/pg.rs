//! The PostgreSQL backend against a real server (the throwaway cluster of
//! [`crate::pgcluster`], a fresh database per test): a whole `git ws-run --db postgres://…`
//! reported exactly as the same run on SQLite, the `--db` / env / git config precedence,
//! the post-merge hook, concurrent writers, and every way a URL can be unusable.

use crate::common::Env;
use crate::pgcluster::{self, psql, PASSWORD};
use git_ws::db::{DbLocation, RunState};
use git_ws::model::{FileChange, RunInfo, Status, WorkstreamResult};
use git_ws::ConsolidationDatabase;
use std::sync::{Arc, Barrier};

/// A fresh database on the test cluster, or `None` (the test skips).
fn fresh_db(label: &str) -> Option<String> {
    pgcluster::cluster().map(|c| c.database(label))
}

/// Rows of `sql` through psql (panics on error).
fn q(url: &str, sql: &str) -> Vec<Vec<String>> {
    psql(url, sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// A repository with workstreams that cover every status, a commit, uncommitted work, a
/// test command, an error with output and a dependency skip.
fn mixed_env() -> Env {
    let env = Env::new();
    env.ws_cmd("ws-01", "echo a > a.txt");
    env.ws_cmd(
        "ws-02",
        "echo b >> src/lib.txt && git add -A && git commit -qm 'ws-02 edit'",
    );
    env.ws_cmd("ws-03", "echo 'it broke' >&2; exit 3");
    env.ws(
        "ws-04",
        serde_json::json!({"id": "ws-04", "command": "echo d > d.txt", "depends_on": ["ws-03"]}),
    );
    env.ws(
        "ws-05",
        serde_json::json!({"id": "ws-05", "title": "With tests", "command": "echo e > docs/e.txt",
            "test": "echo '3 passed, 0 failed'"}),
    );
    env
}

/// Replace what legitimately differs between two runs of the same workstreams: run ids,
/// timestamps, durations, the database's own name, and the SHAs of the commits git-ws made
/// of uncommitted work (stamped with the current time).
fn normalise(text: &str, run: &str, db: &str) -> String {
    let text = text.replace(run, "RUN").replace(db, "DB");
    let mut text: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i + 40 <= text.len() {
        let hex = |c: &char| c.is_ascii_hexdigit() && !c.is_ascii_uppercase();
        let boundary = |j: usize| text.get(j).is_none_or(|c| !c.is_ascii_alphanumeric());
        if (i == 0 || boundary(i - 1)) && text[i..i + 40].iter().all(hex) && boundary(i + 40) {
            text.splice(i..i + 40, "SHA".chars());
        }
        i += 1;
    }
    let text: String = text.into_iter().collect();
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    // Every run of digits (with . : - T Z between them) becomes one `9`: times, durations
    // and percentages vary from run to run; counts are checked separately.
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            while chars
                .peek()
                .is_some_and(|n| n.is_ascii_digit() || ".:-TZ+".contains(*n))
            {
                chars.next();
            }
            out.push('9');
        } else {
            out.push(c);
        }
    }
    // Table columns are as wide as their widest value, which varies with the times: runs
    // of spaces and of the dashes under headers count as one.
    let mut squeezed = String::with_capacity(out.len());
    for c in out.chars() {
        if (c == ' ' || c == '-') && squeezed.ends_with(c) {
            continue;
        }
        squeezed.push(c);
    }
    squeezed
}

#[test]
fn a_postgres_run_reports_exactly_like_the_same_run_on_sqlite() {
    let Some(url) = fresh_db("report_parity") else {
        return;
    };
    let env = mixed_env();
    let sqlite = env.ws_run(&["--agents", "1"]);
    sqlite.expect(1);
    let pg = env.ws_run(&["--agents", "1", "--db", &url]);
    pg.expect(1);
    let (s_run, p_run) = (sqlite.run_id(), pg.run_id());
    assert!(p_run.starts_with("ma-run-"), "{}", pg.stdout);
    // The summary names the database with its password hidden.
    assert!(!pg.stdout.contains(PASSWORD), "{}", pg.stdout);
    let shown = url.replace(PASSWORD, "***");
    assert!(pg.stdout.contains(&shown), "{}", pg.stdout);

    let sqlite_db = env.db_path().display().to_string();
    for args in [
        vec![],
        vec!["--format", "json"],
        vec!["--agents", "--errors", "--files", "--timeline"],
    ] {
        let s = env.ws_report(&[&[s_run.as_str()], args.as_slice()].concat());
        s.expect(0);
        let p = env.ws_report(&[&[p_run.as_str(), "--db", &url], args.as_slice()].concat());
        p.expect(0);
        assert_eq!(
            normalise(&p.stdout, &p_run, &shown),
            normalise(&s.stdout, &s_run, &sqlite_db),
            "git ws-report {args:?}"
        );
    }
    // The counts themselves (normalised away above) agree too.
    let json = |out: &crate::common::Run| -> serde_json::Value {
        serde_json::from_str(&out.stdout).unwrap()
    };
    let s = json(env.ws_report(&[&s_run, "--format", "json"]).expect(0));
    let p = json(
        env.ws_report(&[&p_run, "--db", &url, "--format", "json"])
            .expect(0),
    );
    for key in ["completed_count", "failed_count", "skipped_count"] {
        assert!(s[key].is_number(), "{key}: {s}");
        assert_eq!(s[key], p[key], "{key}");
    }
    let ids = |v: &serde_json::Value| -> Vec<(String, String, String)> {
        let mut ids: Vec<_> = v["workstreams"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| {
                (
                    w["workstream_id"].as_str().unwrap().to_string(),
                    w["status"].as_str().unwrap().to_string(),
                    w["commits_created"].as_array().unwrap().len().to_string(),
                )
            })
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&s), ids(&p));
    // The listing and `latest` work on PostgreSQL.
    let list = env.ws_report(&["--db", &url]);
    list.expect(0);
    assert!(list.stdout.contains(&p_run), "{}", list.stdout);
    let latest = env.ws_report(&["latest", "--db", &url, "--format", "json"]);
    assert_eq!(json(latest.expect(0))["run_id"], p_run.as_str());
    // --format markdown rewrites the report from the PostgreSQL rows.
    let md = env.ws_report(&[&p_run, "--db", &url, "--format", "markdown", "--write"]);
    md.expect(0);
    let report = env
        .repo
        .join(format!("reports/multi_agent_consolidated_{p_run}.md"));
    assert!(report.is_file(), "{}", md.stdout);
    // Every row went to PostgreSQL: one result per workstream, totals written at the end.
    let rows = q(
        &url,
        &format!(
            "SELECT total_workstreams, completed_count, failed_count, skipped_count \
             FROM consolidated_runs WHERE run_id = '{p_run}'"
        ),
    );
    assert_eq!(rows, vec![vec!["5", "3", "1", "1"]]);
    let state = q(
        &url,
        &format!("SELECT state FROM ws_runs WHERE run_id = '{p_run}'"),
    );
    assert_eq!(state, vec![vec!["finished"]]);

    // Same tables, same columns, compatible types and the same NOT NULLs on both backends.
    let sqlite_columns: Vec<Vec<String>> = env
        .sql(
            "SELECT m.name, p.name, upper(p.type), p.\"notnull\" OR p.pk > 0 \
             FROM sqlite_master m JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY 1, 2",
        )
        .into_iter()
        .map(|mut r| {
            r[2] = match r[2].as_str() {
                "INTEGER" => "bigint",
                "REAL" => "double precision",
                "TEXT" => "text",
                "TIMESTAMP" => "timestamp without time zone",
                "VARCHAR(50)" => "character varying",
                other => panic!("unexpected SQLite type {other} in {r:?}"),
            }
            .to_string();
            r[3] = if r[3] == "1" { "NO" } else { "YES" }.to_string();
            r
        })
        .collect();
    let pg_columns = q(
        &url,
        "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns \
         WHERE table_schema = 'public' ORDER BY 1, 2",
    );
    assert!(sqlite_columns.len() > 60, "{sqlite_columns:?}");
    assert_eq!(pg_columns, sqlite_columns);
}

/// The seed's four queries through the real `psql` client against a database `git ws-run`
/// wrote.
#[test]
fn the_seed_queries_run_verbatim_in_psql() {
    let Some(url) = fresh_db("seed_queries") else {
        return;
    };
    let env = Env::new();
    crate::sql::check_seed_queries(&env, &["--db", &url], &|sql| q(&url, sql));
}

#[test]
fn precedence_is_flag_then_env_then_git_config_then_the_default() {
    let Some(url) = fresh_db("precedence") else {
        return;
    };
    let env = Env::new();
    env.ws_cmd("one", "echo 1 > one.txt");
    let runs = |url: &str| q(url, "SELECT run_id FROM consolidated_runs ORDER BY run_id").len();
    // git config ws.database names PostgreSQL: used with no flag and no env.
    env.git(&["config", "ws.database", &url]);
    let out = env.ws_run(&[]);
    out.expect(0);
    assert_eq!(runs(&url), 1);
    assert!(
        !env.db_path().exists(),
        "nothing in the default SQLite file"
    );
    // The environment beats git config: a SQLite path there (relative to the cwd).
    let run = |args: &[&str], envs: &[(&str, &str)]| {
        let mut c = env.command("git");
        c.arg("ws-run").args(args);
        for (k, v) in envs {
            c.env(k, v);
        }
        crate::common::Run::from(c.output().unwrap())
    };
    run(&[], &[("GIT_WS_DATABASE_URL", "env.db")]).expect(0);
    assert!(env.repo.join("env.db").is_file());
    assert_eq!(runs(&url), 1);
    // The flag beats both.
    run(&["--db", "flag.db"], &[("GIT_WS_DATABASE_URL", "env.db")]).expect(0);
    assert!(env.repo.join("flag.db").is_file());
    // git ws-report follows the same rules.
    let rep = |args: &[&str], envs: &[(&str, &str)]| {
        let mut c = env.command("git");
        c.arg("ws-report").args(args);
        for (k, v) in envs {
            c.env(k, v);
        }
        crate::common::Run::from(c.output().unwrap())
    };
    let via_config = rep(&["--format", "json"], &[]);
    via_config.expect(0);
    // Quoted: a run in another database may carry the same id with a `-2` suffix.
    let quoted = format!("\"{}\"", out.run_id());
    assert!(via_config.stdout.contains(&quoted));
    let via_env = rep(&["--format", "json"], &[("GIT_WS_DATABASE_URL", "env.db")]);
    via_env.expect(0);
    assert!(!via_env.stdout.contains(&quoted));
    // An unusable env value is named.
    let bad = run(&[], &[("GIT_WS_DATABASE_URL", "mysql://x@h/db")]);
    bad.expect(2);
    assert!(
        bad.stderr
            .contains("GIT_WS_DATABASE_URL: unsupported database URL scheme mysql://"),
        "{}",
        bad.stderr
    );
    // Without the config, the default SQLite file again.
    env.git(&["config", "--unset", "ws.database"]);
    env.ws_run(&[]).expect(0);
    assert!(env.db_path().is_file());
}

#[test]
fn the_post_merge_hook_records_merges_into_postgres() {
    let Some(url) = fresh_db("hook") else {
        return;
    };
    let env = Env::new();
    env.ws_cmd("w1", "echo 1 > one.txt");
    env.ws_cmd("w2", "echo 2 > two.txt");
    env.git(&["config", "ws.database", &url]);
    let run = env.ws_run(&["--agents", "1"]);
    run.expect(0);
    let run = run.run_id();
    env.ws_run(&["--install-hooks"]).expect(0);
    let out = env
        .command("git")
        .args(["merge", "--no-ff", "-m", "land w1", &format!("ws/{run}/w1")])
        .output()
        .unwrap();
    assert!(out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains(&format!(
            "ws: w1 of {run} merged; 1 completed branch still unmerged"
        )),
        "{said}"
    );
    let rows = q(
        &url,
        &format!("SELECT workstream_id, merge_commit FROM ws_merges WHERE run_id = '{run}'"),
    );
    assert_eq!(
        rows,
        vec![vec![
            "w1".to_string(),
            env.git(&["rev-parse", "HEAD"]).trim().to_string()
        ]]
    );
    // The report shows it.
    let v: serde_json::Value =
        serde_json::from_str(&env.ws_report(&[&run, "--format", "json"]).expect(0).stdout).unwrap();
    let w1 = v["workstreams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["workstream_id"] == "w1")
        .unwrap();
    assert_eq!(w1["merged"], true);
    // An unreachable server never fails a merge: one line, exit 0.
    let closed = format!("postgres://postgres@127.0.0.1:{}/x", closed_port());
    env.git(&["config", "ws.database", &closed]);
    let out = env
        .command("git")
        .args(["merge", "--no-ff", "-m", "land w2", &format!("ws/{run}/w2")])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("merge not recorded"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A database with no git-ws tables yet: the hook stays quiet.
    let empty = fresh_db("hook_empty").unwrap();
    env.git(&["config", "ws.database", &empty]);
    let hook = env.repo.join(".git/hooks/post-merge");
    let out = env.command(hook.to_str().unwrap()).output().unwrap();
    assert!(out.status.success());
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(q(&empty, "SELECT to_regclass('consolidated_runs')") == vec![vec!["NULL"]]);
}

/// A loopback port with nothing listening.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Table names in the public schema.
fn tables(url: &str) -> Vec<Vec<String>> {
    q(
        url,
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename",
    )
}

#[test]
fn unusable_postgres_urls_stop_with_one_sentence_and_write_nothing() {
    let Some(url) = fresh_db("bad_urls") else {
        return;
    };
    let cluster = pgcluster::cluster().unwrap();
    let env = Env::new();
    env.ws_cmd("one", "echo 1 > one.txt");
    let port = cluster.port;
    let closed = closed_port();
    let cases: Vec<(String, &str)> = vec![
        (
            format!("postgres://postgres:{PASSWORD}@127.0.0.1:{closed}/db"),
            "the server is unreachable: ",
        ),
        (
            format!("postgres://postgres:wrong-pw@127.0.0.1:{port}/postgres"),
            "authentication failed: ",
        ),
        (
            format!("postgres://nobody:{PASSWORD}@127.0.0.1:{port}/postgres"),
            "authentication failed: ",
        ),
        (
            format!("postgresql://postgres:{PASSWORD}@127.0.0.1:{port}/no_such_db"),
            "the database does not exist",
        ),
        (
            format!("postgres://postgres:{PASSWORD}@127.0.0.1:notaport/db"),
            "the URL is not valid: ",
        ),
        (
            format!("postgres://postgres:{PASSWORD}@no-such-host.invalid:{port}/db"),
            "the server is unreachable: ",
        ),
    ];
    for (bad, why) in &cases {
        let shown = bad.replace(PASSWORD, "***").replace("wrong-pw", "***");
        for out in [
            env.ws_run(&["--db", bad]),
            env.ws_report(&["--db", bad]),
            env.ws_run(&["--db", bad, "--resume", "latest"]),
        ] {
            out.expect(2);
            let line = out.stderr.trim();
            assert_eq!(line.lines().count(), 1, "one line: {line}");
            assert!(
                line.contains(&format!("failed to open database {shown}: {why}")),
                "{bad}: {line}"
            );
            assert!(
                !line.contains(PASSWORD) && !line.contains("wrong-pw"),
                "{line}"
            );
        }
    }
    assert!(!env.db_path().exists(), "no SQLite file instead");
    // Unsupported schemes and URLs without a host are refused before connecting.
    for (bad, why) in [
        ("mysql://u@h/db", "unsupported database URL scheme mysql://"),
        ("postgres:///db", "names no host"),
    ] {
        let out = env.ws_run(&["--db", bad]);
        out.expect(2);
        assert!(out.stderr.contains(why), "{bad}: {}", out.stderr);
    }

    // A reachable, empty database: reading it is an error naming it; nothing is created.
    let shown = url.replace(PASSWORD, "***");
    let out = env.ws_report(&["--db", &url]);
    out.expect(2);
    assert_eq!(
        out.stderr.trim(),
        format!(
            "git ws-report: failed to open database {shown}: it has no git-ws tables (no run \
             has been recorded here yet)"
        )
    );
    assert_eq!(tables(&url), Vec::<Vec<String>>::new());

    // Written by a newer git-ws: refused, nothing changed.
    env.ws_run(&["--db", &url]).expect(0);
    q(
        &url,
        "INSERT INTO __diesel_schema_migrations (version) VALUES ('99990101000000')",
    );
    let before = q(&url, "SELECT count(*) FROM agent_results");
    for out in [env.ws_run(&["--db", &url]), env.ws_report(&["--db", &url])] {
        out.expect(2);
        assert!(
            out.stderr.contains(&format!(
                "failed to open database {shown}: it was written by a newer git-ws (schema \
                 version 99990101000000); upgrade git-ws"
            )),
            "{}",
            out.stderr
        );
    }
    assert_eq!(q(&url, "SELECT count(*) FROM agent_results"), before);
    assert_eq!(
        q(&url, "SELECT count(*) FROM consolidated_runs"),
        vec![vec!["1"]]
    );
}

fn info(run_id: &str) -> RunInfo {
    RunInfo {
        run_id: run_id.to_string(),
        started_at: chrono::Utc::now(),
        finished_at: None,
        agents: 2,
        base: "b".repeat(40),
        base_rev: "HEAD".into(),
        repo_root: "/repo".into(),
        rerun_of: None,
    }
}

fn result(run: &str, ws: &str) -> WorkstreamResult {
    let mut r = WorkstreamResult::new(run, "agent-1", ws, Status::Completed);
    r.start_time = Some(chrono::Utc::now());
    r.end_time = r.start_time;
    r.duration_seconds = 0.25;
    r.title = Some(format!("{ws} with 'quotes', \\ and ünïcode"));
    r.commits = vec!["c".repeat(40)];
    r.files = vec![FileChange {
        path: format!("src/{ws}.rs"),
        old_path: None,
        kind: git_ws::model::ChangeKind::Added,
        additions: 3,
        deletions: 0,
    }];
    r.warnings = vec!["a warning".into()];
    r
}

/// Twelve connections open a fresh database at once (concurrent migrations), start runs
/// with the same id at once (`-2`, `-3`, … on the clash), then write results concurrently.
/// `GIT_WS_PG_LOOPS=N` repeats it on N fresh databases (the suite runs it once).
#[test]
fn concurrent_writers_on_one_postgres_database_are_safe() {
    let loops: usize = std::env::var("GIT_WS_PG_LOOPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    for i in 0..loops {
        let Some(url) = fresh_db(&format!("concurrent_{i}")) else {
            return;
        };
        concurrent_writers(&url);
    }
}

fn concurrent_writers(url: &str) {
    let url = url.to_string();
    let threads = 12;
    let barrier = Arc::new(Barrier::new(threads));
    let base = "ma-run-20261201-120000";
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let url = url.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let loc = DbLocation::parse(&url).unwrap();
                barrier.wait();
                let db = ConsolidationDatabase::open(&loc);
                barrier.wait();
                let mut db = db.unwrap();
                let id = db.begin_run(&info(base)).unwrap();
                for i in 0..10 {
                    db.record_result(&result(&id, &format!("ws-{t}-{i}")))
                        .unwrap();
                }
                id
            })
        })
        .collect();
    let mut ids: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    ids.sort();
    let mut expected: Vec<String> = std::iter::once(base.to_string())
        .chain((2..=threads).map(|n| format!("{base}-{n}")))
        .collect();
    expected.sort();
    assert_eq!(ids, expected);
    let mut db = ConsolidationDatabase::open_existing(DbLocation::parse(&url).unwrap()).unwrap();
    assert_eq!(db.get_all_runs(100).unwrap().len(), threads);
    for id in &ids {
        let back = db.results(id).unwrap();
        assert_eq!(back.len(), 10, "{id}");
        let want = result(id, &back[0].workstream_id);
        assert_eq!(back[0].title, want.title);
        assert_eq!(back[0].files, want.files);
        assert_eq!(back[0].commits, want.commits);
        assert_eq!(back[0].warnings, want.warnings);
    }
    assert_eq!(
        q(&url, "SELECT count(*) FROM agent_results"),
        vec![vec![(threads * 10).to_string()]]
    );
    let unfinished = db.unfinished_runs().unwrap();
    assert_eq!(unfinished.len(), threads);
    assert!(db.set_run_state(&ids[0], RunState::Finished).unwrap());
    assert_eq!(db.unfinished_runs().unwrap().len(), threads - 1);
}

/// Several `git ws-run` processes, each in its own clone, write one fresh PostgreSQL
/// database at the same moment: distinct run ids, every result recorded.
#[test]
fn concurrent_git_ws_run_processes_share_one_postgres_database() {
    let Some(url) = fresh_db("processes") else {
        return;
    };
    let n = 4;
    let envs: Vec<Env> = (0..n)
        .map(|_| {
            let env = Env::new();
            env.ws_cmd("a", "echo a > a.txt");
            env.ws_cmd("b", "echo b > b.txt; exit 1");
            env
        })
        .collect();
    let started: Vec<_> = envs
        .iter()
        .map(|env| env.spawn_run(&["--agents", "1", "--db", &url]))
        .collect();
    let outs: Vec<_> = started
        .into_iter()
        .map(|s| s.wait(std::time::Duration::from_secs(120)))
        .collect();
    let mut ids: Vec<String> = outs
        .iter()
        .map(|o| {
            o.expect(1);
            o.run_id()
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "{ids:?}");
    for id in &ids {
        let rows = q(
            &url,
            &format!(
                "SELECT workstream_id, status FROM agent_results WHERE run_id = '{id}' \
                 ORDER BY workstream_id"
            ),
        );
        assert_eq!(
            rows,
            vec![vec!["a", "completed"], vec!["b", "failed"]],
            "{id}"
        );
    }
}
