//! Faults under a running `git ws-run` (issue 17, items 1, 2 and 10): a full disk under the
//! database and the reports (a real 600 KB tmpfs, mounted by the test: it needs root; outside
//! CI a test that cannot mount skips with a message, with `CI=true` it fails), the SQLite
//! file removed mid-run, the SQLite file locked mid-run by another connection, a full disk
//! under the logs, PostgreSQL stopped mid-run (a cluster of the test's own, started again or
//! not), and the coordinator SIGKILLed while it consolidates. In every
//! case nothing finished is lost, nothing is counted as recorded that is not, no workstream
//! runs twice (a marker file each command appends to) and no finished branch moves.
//! `scripts/stress.sh faults N` loops these tests.

use crate::common::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A small tmpfs mounted for one test, unmounted when dropped (also when the test fails).
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mount a `size` tmpfs at `dir`; `None` (the test skips) when it cannot be mounted
    /// outside CI. With `CI=true`, a mount that fails fails the test.
    fn mount(dir: PathBuf, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(&dir).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .output();
        let why = match out {
            Ok(o) if o.status.success() => return Some(Tmpfs { dir }),
            Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
            Err(e) => e.to_string(),
        };
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "CI=true: cannot mount a tmpfs for the full-disk test (run the tests as root): {why}"
        );
        eprintln!("skipping the full-disk test: cannot mount a tmpfs ({why}); run as root");
        None
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .status();
    }
}

/// Three workstreams in a chain (so one agent runs them in order), each appending its id to
/// `marker` and committing a file; `middle` is what the second one also does.
fn three_in_a_chain(env: &Env, marker: &Path, middle: &str) {
    three_in_a_chain_then(env, marker, middle, "true");
}

/// [`three_in_a_chain`], the third one also doing `last`.
fn three_in_a_chain_then(env: &Env, marker: &Path, middle: &str, last: &str) {
    let m = marker.display();
    env.ws(
        "ws-1",
        json!({"id": "ws-1", "command": format!("echo ws-1 >> {m}; echo one > one.txt")}),
    );
    env.ws(
        "ws-2",
        json!({"id": "ws-2", "depends_on": ["ws-1"],
               "command": format!("echo ws-2 >> {m}; echo two > two.txt; {middle}")}),
    );
    env.ws(
        "ws-3",
        json!({"id": "ws-3", "depends_on": ["ws-2"],
               "command": format!("echo ws-3 >> {m}; echo three > three.txt; {last}")}),
    );
    env.git(&["add", "-A"]);
    env.git(&["commit", "-q", "-m", "workstreams"]);
}

/// How many times each workstream ran (lines in the marker file).
fn runs(marker: &Path) -> Vec<String> {
    let mut lines: Vec<String> = std::fs::read_to_string(marker)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

/// The tips of the run's workstream branches.
fn tips(env: &Env, run: &str) -> Vec<String> {
    ["ws-1", "ws-2", "ws-3"]
        .iter()
        .map(|id| {
            env.git(&["rev-parse", &format!("ws/{run}/{id}")])
                .trim()
                .to_string()
        })
        .collect()
}

/// `(workstream_id, status)` of every recorded result of `run` in `db`.
fn recorded(db: &Path, run: &str) -> Vec<(String, String)> {
    sql(
        db,
        &format!(
            "SELECT workstream_id, status FROM agent_results WHERE run_id = '{run}' ORDER BY workstream_id"
        ),
    )
    .into_iter()
    .map(|r| (r[0].clone(), r[1].clone()))
    .collect()
}

fn all_three_completed() -> Vec<(String, String)> {
    ["ws-1", "ws-2", "ws-3"]
        .iter()
        .map(|id| (id.to_string(), "completed".to_string()))
        .collect()
}

/// For `scripts/stress.sh faults N`: one line of counts per test run in the file
/// `GIT_WS_FAULT_COUNTS` names (if set), written before anything is asserted: results lost
/// (not in the database at the end), completed without a record (not in the database yet
/// not named as unrecorded, or an exit 0 with one missing), finished branches moved, and
/// workstreams run more than once.
fn tally(test: &str, lost: usize, completed_without_record: usize, moved: usize, reran: usize) {
    let Ok(path) = std::env::var("GIT_WS_FAULT_COUNTS") else {
        return;
    };
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    writeln!(
        f,
        "{test} {lost} {completed_without_record} {moved} {reran}"
    )
    .unwrap();
}

/// Workstreams missing from `db`'s results of `run`, of the three.
fn missing(db: &Path, run: &str) -> Vec<String> {
    let have: Vec<String> = recorded(db, run).into_iter().map(|(id, _)| id).collect();
    ["ws-1", "ws-2", "ws-3"]
        .iter()
        .filter(|id| !have.iter().any(|h| h == *id))
        .map(|id| id.to_string())
        .collect()
}

/// No report file of 0 bytes anywhere in `dir`.
fn no_empty_report(dir: &Path) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let len = e.metadata().unwrap().len();
        assert!(len > 0, "a 0-byte file was left: {}", e.path().display());
    }
}

/// The database and the reports on a 600 KB tmpfs; the second of three workstreams on one
/// agent fills it (and exits 0). With `-q`: exit 3, stderr names the unrecorded workstreams
/// and their branches, no 0-byte report. After space is freed, `--resume` records all three
/// without running any again, from the spool or (`spool_lost`) from git, and moves no
/// branch.
fn full_disk(spool: Spool) {
    let spool_lost = spool == Spool::Lost;
    let env = Env::new();
    let Some(fs) = Tmpfs::mount(env.scratch("small"), "600k") else {
        return;
    };
    // The spool's own directory on a second small tmpfs, filled at the same moment.
    let spool_fs = match spool {
        Spool::Full => match Tmpfs::mount(env.repo.join(".state/spool"), "200k") {
            Some(t) => Some(t),
            None => return,
        },
        _ => None,
    };
    let db = fs.dir.join("e.db");
    let reports = fs.dir.join("reports");
    let marker = env.scratch("marker");
    let fill = fs.dir.join("fill");
    let spool_fill = spool_fs.as_ref().map(|t| t.dir.join("fill"));
    let fill_spool = spool_fill
        .as_ref()
        .map(|f| {
            format!(
                "dd if=/dev/zero of={} bs=4k count=1000 2>/dev/null; ",
                f.display()
            )
        })
        .unwrap_or_default();
    three_in_a_chain(
        &env,
        &marker,
        &format!(
            "{fill_spool}dd if=/dev/zero of={} bs=4k count=1000 2>/dev/null; true",
            fill.display()
        ),
    );
    let (db_s, reports_s) = (db.to_str().unwrap(), reports.to_str().unwrap());
    let first = env.ws_run(&[
        "-q",
        "--agents",
        "1",
        "--db",
        db_s,
        "--reports-dir",
        reports_s,
    ]);
    let run = sql(&db, "SELECT run_id FROM consolidated_runs")[0][0].clone();
    let gone = missing(&db, &run);
    let unnamed = gone
        .iter()
        .filter(|id| {
            !first
                .stderr
                .contains(&format!("{id} (completed): its work is on branch"))
        })
        .count();
    let first_cwr = if first.code == 0 { gone.len() } else { unnamed };
    first.expect(3);
    for id in ["ws-2", "ws-3"] {
        assert!(
            first.stderr.contains(&format!(
                "{id} (completed): its work is on branch ws/{run}/{id}"
            )),
            "stderr names {id} and its branch:\n{}",
            first.stderr
        );
    }
    assert!(first.stderr.contains("NOT RECORDED"), "{}", first.stderr);
    // Said while it happened, -q or not, and the summary does not count them as recorded
    // (ws-1 too when ws-2 filled the disk before its result was written: a race the tool
    // reports correctly either way).
    assert!(
        first
            .stderr
            .contains("warning: failed to record ws-2 in the database"),
        "{}",
        first.stderr
    );
    assert!(
        first.stdout.contains(&format!(
            "3 completed ({} result{} NOT RECORDED)",
            gone.len(),
            if gone.len() == 1 { "" } else { "s" }
        )),
        "{}",
        first.stdout
    );
    assert_eq!(runs(&marker), ["ws-1", "ws-2", "ws-3"]);
    no_empty_report(&reports);
    let before = tips(&env, &run);
    let kept = recorded(&db, &run);
    assert!(kept.len() < 3, "the disk was full, yet: {kept:?}");

    if spool == Spool::Full {
        assert!(
            first.stderr.contains("failed to write the spool file"),
            "the full spool is said: {}",
            first.stderr
        );
        assert!(
            !env.repo.join(format!(".state/spool/{run}.jsonl")).exists(),
            "a spool file on a full disk"
        );
        std::fs::remove_file(spool_fill.as_ref().unwrap()).unwrap();
    }
    std::fs::remove_file(&fill).unwrap();
    if spool_lost {
        std::fs::remove_dir_all(env.repo.join(".state/spool")).unwrap();
    }
    let again = env.ws_run(&[
        "-q",
        "--agents",
        "1",
        "--resume",
        &run,
        "--db",
        db_s,
        "--reports-dir",
        reports_s,
    ]);
    tally(
        match spool {
            Spool::Kept => "full-disk",
            Spool::Lost => "full-disk-no-spool",
            Spool::Full => "full-spool",
        },
        missing(&db, &run).len(),
        first_cwr,
        moved(&before, &tips(&env, &run)),
        runs(&marker).len().saturating_sub(3),
    );
    again.expect(0);
    assert_eq!(
        recorded(&db, &run),
        all_three_completed(),
        "{}",
        again.stderr
    );
    assert_eq!(runs(&marker), ["ws-1", "ws-2", "ws-3"], "nothing ran twice");
    assert_eq!(tips(&env, &run), before, "no finished branch moved");
    let files = sql(
        &db,
        &format!(
            "SELECT files_modified FROM agent_results WHERE run_id = '{run}' AND workstream_id = 'ws-3'"
        ),
    );
    assert!(files[0][0].contains("three.txt"), "{files:?}");
    let report = reports.join(format!("multi_agent_consolidated_{run}.md"));
    assert!(std::fs::metadata(&report).unwrap().len() > 0);
    no_empty_report(&reports);
    assert!(!env.repo.join(format!(".state/spool/{run}.jsonl")).exists());
}

/// What becomes of the spool in [`full_disk`].
#[derive(PartialEq, Eq, Clone, Copy)]
enum Spool {
    /// Written, and read by the resume.
    Kept,
    /// Written, then removed before the resume.
    Lost,
    /// On a disk of its own that fills with the database's: never written.
    Full,
}

#[test]
fn a_full_disk_under_the_database_loses_nothing_and_resume_records_from_the_spool() {
    full_disk(Spool::Kept);
}

#[test]
fn a_full_disk_and_a_lost_spool_resume_adopts_the_finished_branches_from_git() {
    full_disk(Spool::Lost);
}

/// The database refuses (its disk is full) and so does the spool (its own disk fills at
/// the same moment): the results are kept in memory only, said on stderr, the run exits 3
/// naming them and their branches, and `--resume` adopts them from git.
#[test]
fn a_full_disk_under_the_spool_too_exits_3_and_resume_adopts_from_git() {
    full_disk(Spool::Full);
}

/// `.git/objects` on its own 1 MB tmpfs (a copy of the repository's objects), filled by the
/// second of three workstreams, which then leaves a file uncommitted: that workstream
/// fails with an error naming the full disk of the git objects and where its uncommitted
/// files were copied (they are there), the third is skipped, the first stays completed and
/// recorded, the run exits 1, nothing is counted as completed that was not kept, nothing
/// runs twice.
#[test]
fn a_full_disk_under_the_git_objects_fails_the_workstream_and_keeps_its_work() {
    let env = Env::new();
    let marker = env.scratch("marker");
    let objects = env.repo.join(".git/objects");
    let fill = objects.join("fill");
    three_in_a_chain(
        &env,
        &marker,
        &format!(
            "dd if=/dev/zero of={} bs=4k count=1000 2>/dev/null; echo kept-two > two-more.txt; true",
            fill.display()
        ),
    );
    let copy = env.scratch("objects-copy");
    let cp = |from: &Path, to: &Path| {
        let ok = std::process::Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", from.display()))
            .arg(to)
            .status()
            .unwrap()
            .success();
        assert!(ok, "cp -a {} {}", from.display(), to.display());
    };
    std::fs::create_dir_all(&copy).unwrap();
    cp(&objects, &copy);
    let Some(_fs) = Tmpfs::mount(objects.clone(), "1m") else {
        return;
    };
    cp(&copy, &objects);
    let out = env.ws_run(&["-q", "--agents", "1"]);
    let db = env.db_path();
    let run = sql(&db, "SELECT run_id FROM consolidated_runs")[0][0].clone();
    let have = recorded(&db, &run);
    let unsaved = env
        .repo
        .join(format!(".git/ws/unsaved/ws/{run}/ws-2/two-more.txt"));
    let kept = std::fs::read_to_string(&unsaved).unwrap_or_default();
    let ws2_completed = have
        .iter()
        .any(|(id, st)| id == "ws-2" && st == "completed");
    tally(
        "objects-full",
        usize::from(kept.trim() != "kept-two" && !ws2_completed),
        usize::from(ws2_completed && kept.trim() != "kept-two"),
        0,
        runs(&marker).len().saturating_sub(2),
    );
    out.expect(1);
    assert_eq!(
        have,
        [
            ("ws-1".to_string(), "completed".to_string()),
            ("ws-2".to_string(), "failed".to_string()),
            ("ws-3".to_string(), "skipped".to_string()),
        ],
        "{}",
        out.stderr
    );
    assert!(!out.stdout.contains("3 completed"), "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!(
            "NOT COMMITTED: ws-2 (failed): the disk refused its commit; its uncommitted files are in {}",
            env.repo.join(format!(".git/ws/unsaved/ws/{run}/ws-2")).display()
        )),
        "the summary names ws-2 and where its work is: {}",
        out.stdout
    );
    let err = sql(
        &db,
        &format!(
            "SELECT errors FROM agent_results WHERE run_id = '{run}' AND workstream_id = 'ws-2'"
        ),
    )[0][0]
        .clone();
    assert!(
        err.contains(&format!(
            "no space left on the disk holding the git objects ({})",
            objects.display()
        )),
        "{err}"
    );
    assert!(err.contains("copied to"), "{err}");
    assert_eq!(kept.trim(), "kept-two", "ws-2's uncommitted work is kept");
    assert_eq!(runs(&marker), ["ws-1", "ws-2"], "nothing ran twice");
    env.git(&["cat-file", "-e", &format!("ws/{run}/ws-1:one.txt")]);
}

#[test]
fn the_sqlite_file_removed_mid_run_loses_nothing() {
    let env = Env::new();
    let marker = env.scratch("marker");
    let db = env.db_path();
    let d = db.display();
    three_in_a_chain(&env, &marker, &format!("rm -f {d} {d}-wal {d}-shm"));
    let out = env.ws_run(&["-q", "--agents", "1"]);
    let run = sql(&db, "SELECT run_id FROM consolidated_runs")[0][0].clone();
    let gone = missing(&db, &run).len();
    tally(
        "removed",
        gone,
        if out.code == 0 { gone } else { 0 },
        0,
        runs(&marker).len().saturating_sub(3),
    );
    out.expect(0);
    assert!(
        out.stderr
            .contains("was removed or replaced during the run"),
        "{}",
        out.stderr
    );
    assert_eq!(recorded(&db, &run), all_three_completed());
    assert_eq!(runs(&marker), ["ws-1", "ws-2", "ws-3"]);
    assert_eq!(sql(&db, "SELECT state FROM ws_runs")[0][0], "finished");
}

#[test]
fn the_sqlite_file_locked_mid_run_loses_nothing() {
    let env = Env::new();
    let marker = env.scratch("marker");
    let started = env.scratch("ws-2-started");
    three_in_a_chain(
        &env,
        &marker,
        &format!("touch {}; sleep 1", started.display()),
    );
    let run = env.spawn_run(&["-q", "--agents", "1"]);
    wait_until(Duration::from_secs(30), "ws-2 to start", || {
        started.exists()
    });
    // Another connection holds an exclusive transaction for 4 s while ws-2 finishes.
    let mut holder = std::process::Command::new("sqlite3")
        .arg(env.db_path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let stdin = holder.stdin.as_mut().unwrap();
        writeln!(stdin, "BEGIN EXCLUSIVE;").unwrap();
        writeln!(stdin, "DELETE FROM agent_results WHERE 0;").unwrap();
        stdin.flush().unwrap();
    }
    std::thread::sleep(Duration::from_secs(4));
    {
        use std::io::Write;
        let mut stdin = holder.stdin.take().unwrap();
        writeln!(stdin, "COMMIT;").unwrap();
    }
    holder.wait().unwrap();
    let out = run.wait(Duration::from_secs(60));
    let id = sql(&env.db_path(), "SELECT run_id FROM consolidated_runs")[0][0].clone();
    let gone = missing(&env.db_path(), &id).len();
    tally(
        "locked",
        gone,
        if out.code == 0 { gone } else { 0 },
        0,
        runs(&marker).len().saturating_sub(3),
    );
    out.expect(0);
    assert_eq!(recorded(&env.db_path(), &id), all_three_completed());
    assert_eq!(runs(&marker), ["ws-1", "ws-2", "ws-3"]);
}

/// A coordinator SIGKILLed while the second workstream runs, after that workstream already
/// committed part of its work: `--resume` does not adopt the half-done branch as completed
/// (its process-group file says it was running) but runs it again; the finished first one
/// is kept as recorded and its branch does not move.
#[test]
fn resume_after_a_crash_does_not_adopt_a_workstream_that_was_still_running() {
    let env = Env::new();
    let marker = env.scratch("marker");
    let started = env.scratch("ws-2-started");
    // The first time only: commit part of the work, then hang until killed.
    three_in_a_chain(
        &env,
        &marker,
        &format!(
            "if [ ! -e {s} ]; then touch {s}; git add -A; git commit -qm half; sleep 60; fi",
            s = started.display()
        ),
    );
    let run = env.spawn_run(&["-q", "--agents", "1"]);
    wait_until(Duration::from_secs(30), "ws-2 to start", || {
        started.exists()
    });
    std::thread::sleep(Duration::from_millis(300));
    signal(run.pid(), libc::SIGKILL);
    let _ = run.wait(Duration::from_secs(10));
    let id = sql(&env.db_path(), "SELECT run_id FROM consolidated_runs")[0][0].clone();
    let ws1 = env.git(&["rev-parse", &format!("ws/{id}/ws-1")]);
    let again = env.ws_run(&["-q", "--resume", &id]);
    again.expect(0);
    assert!(
        !again
            .stderr
            .contains("ws-2 finished before the run stopped"),
        "{}",
        again.stderr
    );
    assert_eq!(recorded(&env.db_path(), &id), all_three_completed());
    assert_eq!(runs(&marker), ["ws-1", "ws-2", "ws-2", "ws-3"]);
    assert_eq!(env.git(&["rev-parse", &format!("ws/{id}/ws-1")]), ws1);
    let warnings = sql(
        &env.db_path(),
        &format!(
            "SELECT warnings FROM agent_results WHERE run_id = '{id}' AND workstream_id = 'ws-2'"
        ),
    );
    assert!(!warnings[0][0].contains("adopted"), "{warnings:?}");
}

/// The run's logs (`.state/logs`) on a 600 KB tmpfs, the database and the reports elsewhere;
/// the second of three workstreams prints 2 MB into its log, which fills the disk (the
/// command ignores its write error and exits 0), and the third then runs with no space left
/// for its log. Every result is recorded as completed, nothing runs twice, the report is
/// written whole, the full log keeps what fit (not 0 bytes), and the workstreams that ended
/// with the disk full carry a warning that their log may be cut (the command writes its log
/// itself, so git-ws never sees the write fail). The run exits 0: its results are whole.
#[test]
fn a_full_disk_under_the_logs_loses_no_result() {
    let env = Env::new();
    let Some(_fs) = Tmpfs::mount(env.repo.join(".state/logs"), "600k") else {
        return;
    };
    let marker = env.scratch("marker");
    three_in_a_chain(
        &env,
        &marker,
        "head -c 2000000 /dev/zero | tr '\\0' x; echo; true",
    );
    let out = env.ws_run(&["-q", "--agents", "1"]);
    let db = env.db_path();
    let run = sql(&db, "SELECT run_id FROM consolidated_runs")[0][0].clone();
    let gone = missing(&db, &run).len();
    tally(
        "full-logs",
        gone,
        if out.code == 0 { gone } else { 0 },
        0,
        runs(&marker).len().saturating_sub(3),
    );
    assert!(
        out.code == 0 || out.code == 3,
        "exit {}\n{}",
        out.code,
        out.stderr
    );
    assert_eq!(recorded(&db, &run), all_three_completed(), "{}", out.stderr);
    assert_eq!(runs(&marker), ["ws-1", "ws-2", "ws-3"]);
    let reports = env.repo.join("reports");
    no_empty_report(&reports);
    let report =
        std::fs::read_to_string(reports.join(format!("multi_agent_consolidated_{run}.md")))
            .unwrap();
    for id in ["ws-1", "ws-2", "ws-3"] {
        assert!(report.contains(id), "{report}");
    }
    let log = env.repo.join(format!(".state/logs/{run}/ws-2.log"));
    assert!(
        std::fs::metadata(&log).unwrap().len() > 0,
        "ws-2's log is empty"
    );
    // The two that ended with the disk full say their log may be cut; ws-1 does not.
    for (ws, cut) in [("ws-1", false), ("ws-2", true), ("ws-3", true)] {
        let w = sql(
            &db,
            &format!(
                "SELECT warnings FROM agent_results WHERE run_id = '{run}' AND workstream_id = '{ws}'"
            ),
        );
        assert_eq!(w[0][0].contains("the log may be cut"), cut, "{ws}: {w:?}");
    }
    assert_eq!(
        std::fs::read_to_string(env.repo.join(format!(".state/logs/{run}/workstreams.json")))
            .unwrap()
            .trim(),
        r#"["ws-1","ws-2","ws-3"]"#
    );
}

/// A durable PostgreSQL cluster of this test's own (it is stopped and started), or `None` (the test
/// skips) when there are no PostgreSQL binaries, unless `GIT_WS_REQUIRE_PG=1`.
fn own_cluster() -> Option<crate::pgcluster::Cluster> {
    use crate::pgcluster;
    if pgcluster::find_bindir().is_none() {
        assert!(
            !pgcluster::required(),
            "GIT_WS_REQUIRE_PG=1 and there are no PostgreSQL binaries"
        );
        eprintln!("skipping: no PostgreSQL binaries (GIT_WS_REQUIRE_PG=1 makes this a failure)");
        return None;
    }
    // Durable (PostgreSQL's default fsync and synchronous_commit): with the suite's fast
    // settings an immediate stop loses commits already acknowledged, which no client can
    // see or help.
    Some(pgcluster::start_own(true).expect("start a throwaway PostgreSQL cluster"))
}

/// `(workstream_id, status)` of `run`'s results in PostgreSQL.
fn pg_recorded(url: &str, run: &str) -> Vec<(String, String)> {
    crate::pgcluster::psql(
        url,
        &format!(
            "SELECT workstream_id, status FROM agent_results WHERE run_id = '{run}' ORDER BY workstream_id"
        ),
    )
    .unwrap()
    .into_iter()
    .map(|r| (r[0].clone(), r[1].clone()))
    .collect()
}

/// PostgreSQL stopped (`pg_ctl stop -m immediate`) while the second of three workstreams
/// runs. `back`: started again 2 s later, while the recorder still retries: every result is
/// recorded, exit 0. Otherwise: exit 3 naming the unrecorded workstreams and their
/// branches; with the cluster started again, `--resume` records them from the spool without
/// running anything again and moves no branch.
fn postgres_stopped(back: bool) {
    let Some(cluster) = own_cluster() else {
        return;
    };
    let url = cluster.database("stopped");
    let env = Env::new();
    let marker = env.scratch("marker");
    let started = env.scratch("ws-2-started");
    // The third one takes 4 s, so the recorder is still retrying ws-2 when the cluster is
    // back (its start after an immediate stop takes up to a few seconds).
    three_in_a_chain_then(
        &env,
        &marker,
        &format!("touch {}; sleep 1", started.display()),
        if back { "sleep 4" } else { "true" },
    );
    let run = env.spawn_run(&["-q", "--agents", "1", "--db", &url]);
    wait_until(Duration::from_secs(30), "ws-2 to start", || {
        started.exists()
    });
    cluster.stop();
    if back {
        std::thread::sleep(Duration::from_secs(2));
        cluster.restart(true);
    }
    let out = run.wait(Duration::from_secs(120));
    let id = out.run_id();
    if !back {
        cluster.restart(true);
    }
    let have = pg_recorded(&url, &id);
    let gone = 3 - have.len();
    let unnamed = ["ws-1", "ws-2", "ws-3"]
        .iter()
        .filter(|ws| !have.iter().any(|(h, _)| h == *ws))
        .filter(|ws| {
            !out.stderr
                .contains(&format!("{ws} (completed): its work is on branch"))
        })
        .count();
    let first_cwr = if out.code == 0 { gone } else { unnamed };
    if back {
        tally(
            "pg-stopped-back",
            gone,
            first_cwr,
            0,
            runs(&marker).len().saturating_sub(3),
        );
        out.expect(0);
        assert_eq!(have, all_three_completed(), "{}", out.stderr);
        assert_eq!(runs(&marker), ["ws-1", "ws-2", "ws-3"]);
        return;
    }
    let before = tips(&env, &id);
    let again = env.ws_run(&["-q", "--agents", "1", "--resume", &id, "--db", &url]);
    tally(
        "pg-stopped-gone",
        3 - pg_recorded(&url, &id).len(),
        first_cwr,
        moved(&before, &tips(&env, &id)),
        runs(&marker).len().saturating_sub(3),
    );
    out.expect(3);
    assert!(out.stderr.contains("NOT RECORDED"), "{}", out.stderr);
    for ws in ["ws-2", "ws-3"] {
        assert!(
            out.stderr.contains(&format!(
                "{ws} (completed): its work is on branch ws/{id}/{ws}"
            )),
            "stderr names {ws} and its branch:\n{}",
            out.stderr
        );
    }
    assert!(have.len() < 3, "PostgreSQL was down, yet: {have:?}");
    again.expect(0);
    assert_eq!(
        pg_recorded(&url, &id),
        all_three_completed(),
        "{}",
        again.stderr
    );
    assert_eq!(runs(&marker), ["ws-1", "ws-2", "ws-3"], "nothing ran twice");
    assert_eq!(tips(&env, &id), before, "no finished branch moved");
    assert!(!env.repo.join(format!(".state/spool/{id}.jsonl")).exists());
}

#[test]
fn postgres_stopped_mid_run_and_started_again_loses_nothing() {
    postgres_stopped(true);
}

#[test]
fn postgres_stopped_for_good_exits_3_and_resume_records_from_the_spool() {
    postgres_stopped(false);
}

/// `git-ws-run` SIGKILLed as soon as it says it is consolidating (24 workstreams that each
/// change a file, so the merge forecast takes a moment): every result is already in the
/// database, the run stays `running`, `git ws-merge` refuses it (exit 2), and `--resume`
/// finishes it, running nothing again, and writes the report.
#[test]
fn the_consolidator_killed_mid_consolidation_is_finished_by_resume() {
    const N: usize = 24;
    let env = Env::new();
    let marker = env.scratch("marker");
    let ids: Vec<String> = (1..=N).map(|i| format!("ws-{i:02}")).collect();
    for id in &ids {
        env.ws_cmd(
            id,
            &format!("echo {id} >> {}; echo {id} > {id}.txt", marker.display()),
        );
    }
    env.git(&["add", "-A"]);
    env.git(&["commit", "-q", "-m", "workstreams"]);
    let run = env.spawn_run(&["--agents", "3"]);
    let start = std::time::Instant::now();
    while !run.stderr().contains("ws: consolidating") {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no consolidation line:\n{}",
            run.stderr()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    signal(run.pid(), libc::SIGKILL);
    let _ = run.wait(Duration::from_secs(10));
    let db = env.db_path();
    let id = sql(&db, "SELECT run_id FROM ws_runs")[0][0].clone();
    let state = sql(&db, "SELECT state FROM ws_runs")[0][0].clone();
    let have = sql(
        &db,
        &format!(
            "SELECT count(*) FROM agent_results WHERE run_id = '{id}' AND status = 'completed'"
        ),
    )[0][0]
        .parse::<usize>()
        .unwrap();
    let tips_of = |env: &Env| -> Vec<String> {
        ids.iter()
            .map(|ws| env.git(&["rev-parse", &format!("ws/{id}/{ws}")]))
            .collect()
    };
    let before = tips_of(&env);
    let merge = env.ws_merge(&[&id]);
    let again = env.ws_run(&["-q", "--resume", &id]);
    let ran = runs(&marker);
    let after = sql(
        &db,
        &format!(
            "SELECT count(*) FROM agent_results WHERE run_id = '{id}' AND status = 'completed'"
        ),
    )[0][0]
        .parse::<usize>()
        .unwrap();
    tally(
        "killed-consolidating",
        N - after,
        0,
        moved(&before, &tips_of(&env)),
        ran.len().saturating_sub(N),
    );
    assert_eq!(have, N, "every result was recorded before consolidating");
    assert_eq!(state, "running", "the killed run is not finished");
    merge.expect(2);
    assert!(
        merge.stderr.contains(&format!("git ws-run --resume {id}")),
        "{}",
        merge.stderr
    );
    again.expect(0);
    assert_eq!(after, N);
    assert_eq!(ran, ids, "nothing ran twice");
    assert_eq!(tips_of(&env), before, "no finished branch moved");
    assert_eq!(sql(&db, "SELECT state FROM ws_runs")[0][0], "finished");
    let report = env
        .repo
        .join(format!("reports/multi_agent_consolidated_{id}.md"));
    let text = std::fs::read_to_string(&report).unwrap();
    assert!(text.contains("ws-24"), "{text}");
}

/// How many of the branch tips `before` differ from `after` (finished branches moved).
fn moved(before: &[String], after: &[String]) -> usize {
    before.iter().zip(after).filter(|(a, b)| a != b).count()
}

/// The largest `big.log` under `.state/logs/*/` now (0 when there is none yet).
fn big_log_len(env: &Env) -> u64 {
    std::fs::read_dir(env.repo.join(".state/logs"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|d| std::fs::metadata(d.path().join("big.log")).ok())
        .map(|m| m.len())
        .max()
        .unwrap_or(0)
}

/// `ws.maxLogBytes = 64k` and a workstream printing 12 MB in three bursts a second apart:
/// its log is never bigger than the cap plus the note's slack, whenever it is looked at
/// while the command runs, and at the end it keeps the head, the tail and the note of how
/// much was cut.
#[test]
fn the_log_cap_holds_while_the_command_runs() {
    let env = Env::new();
    env.git(&["config", "ws.maxLogBytes", "64k"]);
    env.ws_cmd(
        "big",
        "echo FIRST-LINE; for i in 1 2 3; do yes | head -c 4000000; sleep 1; done; echo LAST-LINE; echo done > big.txt",
    );
    env.git(&["add", "-A"]);
    env.git(&["commit", "-q", "-m", "workstreams"]);
    let mut run = env.spawn_run(&["-q", "--agents", "1"]);
    // The slack: the cut note and the sandbox's policy line, which starts the log before
    // the command's output (the cap is on the output).
    let (cap, slack) = (64 * 1024u64, 2048u64);
    let (mut looks, mut biggest) = (0, 0u64);
    while run.child.try_wait().unwrap().is_none() {
        let len = big_log_len(&env);
        biggest = biggest.max(len);
        if len > 0 {
            looks += 1;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let out = run.wait(Duration::from_secs(10));
    out.expect(0);
    assert!(
        looks > 50,
        "the log was seen only {looks} times while it ran"
    );
    assert!(
        biggest <= cap + slack,
        "the log reached {biggest} bytes while the command ran (cap {cap})"
    );
    let run_id = out.run_id();
    let log = std::fs::read(env.repo.join(format!(".state/logs/{run_id}/big.log"))).unwrap();
    assert!(
        log.len() as u64 <= cap + slack,
        "{} bytes at the end",
        log.len()
    );
    let text = String::from_utf8_lossy(&log);
    assert!(text.contains("FIRST-LINE"), "the head is kept");
    assert!(text.trim_end().ends_with("LAST-LINE"), "the tail is kept");
    assert!(text.contains("bytes of output cut here"), "the cut is said");
}

/// A shared run (`--remote origin`, PostgreSQL) whose database is stopped for good while
/// the second of three chained workstreams runs: the coordinator keeps ws-2's result,
/// retries, then spools it and exits 3 naming ws-2 and its branch. With the cluster
/// started again, `--join` from the same repository records ws-2 from the spool with its
/// claim's attempt (not run again, its branch not moved), runs ws-3 and finishes the run.
#[test]
fn a_shared_run_whose_database_stops_exits_3_and_a_join_adopts_the_result() {
    let Some(cluster) = own_cluster() else {
        return;
    };
    let url = cluster.database("shared_stopped");
    let env = Env::new();
    let marker = env.scratch("marker");
    let started = env.scratch("ws-2-started");
    three_in_a_chain(
        &env,
        &marker,
        &format!("touch {}; sleep 1", started.display()),
    );
    let bare = env.scratch("remote.git");
    env.git(&["clone", "-q", "--bare", ".", bare.to_str().unwrap()]);
    env.git(&["remote", "add", "origin", bare.to_str().unwrap()]);
    env.git(&["config", "ws.lease", "5s"]);
    let common = ["-q", "--agents", "1", "--db", &url, "--remote", "origin"];
    let run = env.spawn_run(&[&common[..], &["--worker", "a"]].concat());
    wait_until(Duration::from_secs(60), "ws-2 to start", || {
        started.exists()
    });
    cluster.stop();
    let out = run.wait(Duration::from_secs(120));
    cluster.restart(true);
    let id = sql_run_id(&url);
    let have = pg_recorded(&url, &id);
    let named = out.stderr.contains(&format!(
        "ws-2 (completed): its work is on branch ws/{id}/ws-2"
    ));
    let branch = |ws: &str| env.git(&["rev-parse", &format!("ws/{id}/{ws}")]);
    let before = [branch("ws-1"), branch("ws-2")];
    let spooled = env.repo.join(format!(".state/spool/{id}.jsonl")).exists();
    let join = env.ws_run(&[&common[..], &["--worker", "b", "--join", &id]].concat());
    let after = pg_recorded(&url, &id);
    tally(
        "shared-pg-stopped",
        3 - after.len(),
        usize::from(out.code == 0 && have.len() < 3 || out.code != 0 && !named),
        moved(&before, &[branch("ws-1"), branch("ws-2")]),
        runs(&marker).len().saturating_sub(3),
    );
    out.expect(3);
    assert!(named, "stderr names ws-2 and its branch:\n{}", out.stderr);
    assert!(out.stderr.contains("NOT RECORDED"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("warning: failed to record ws-2 in the database"),
        "said at once, -q or not:\n{}",
        out.stderr
    );
    assert!(
        !have.iter().any(|(ws, _)| ws == "ws-2"),
        "the database was stopped, yet: {have:?}"
    );
    assert!(spooled, "the result is in the spool");
    join.expect(0);
    assert!(
        join.stderr.contains("recorded ws-2 from the spool"),
        "{}",
        join.stderr
    );
    assert_eq!(after, all_three_completed(), "{}", join.stderr);
    assert_eq!(runs(&marker), ["ws-1", "ws-2", "ws-3"], "nothing ran twice");
    assert_eq!(
        [branch("ws-1"), branch("ws-2")],
        before,
        "no finished branch moved"
    );
    assert!(!env.repo.join(format!(".state/spool/{id}.jsonl")).exists());
}

/// The one run id in PostgreSQL database `url`.
fn sql_run_id(url: &str) -> String {
    crate::pgcluster::psql(url, "SELECT run_id FROM consolidated_runs").unwrap()[0][0].clone()
}
