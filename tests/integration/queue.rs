//! A run shared by several clones through a real PostgreSQL database and a bare "remote"
//! repository: the coordinator (`--remote origin`) and joiners (`--join latest`), one of
//! them SIGKILLed mid-run (its leases expire, the others re-run its claims), a joiner
//! interrupted with Ctrl-C (its claims go back to the queue), and the one consolidation.

use crate::common::{signal, wait_until, Env, Spawned};
use crate::pgcluster::{self, psql};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

/// Rows of `sql` through psql (panics on error).
fn q(url: &str, sql: &str) -> Vec<Vec<String>> {
    psql(url, sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Rows of `sql`, or none while the tables do not exist yet.
fn try_q(url: &str, sql: &str) -> Vec<Vec<String>> {
    psql(url, sql).unwrap_or_default()
}

/// A clone of `remote` in `<tmp>/<name>`, hermetic like [`Env`], with a lease of `lease`.
pub(crate) fn clone_of(remote: &Path, name: &str, lease: &str) -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join(name);
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let env = Env {
        tmp,
        repo: repo.clone(),
        home,
    };
    let out = env
        .command("git")
        .current_dir(remote.parent().unwrap())
        .args([
            "clone",
            "-q",
            remote.to_str().unwrap(),
            repo.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.git(&["config", "ws.lease", lease]);
    // As in `Env::new`: the tests' scratch files beside the clone stay writable.
    env.git(&[
        "config",
        "ws.sandbox.allowWrite",
        &env.tmp.path().display().to_string(),
    ]);
    env
}

/// The origin repository (committed workstreams), pushed to a bare remote.
pub(crate) fn origin(workstreams: &[(String, serde_json::Value)]) -> (Env, std::path::PathBuf) {
    let src = Env::new();
    for (id, json) in workstreams {
        src.ws(id, json.clone());
    }
    src.git(&["add", "-A"]);
    src.git(&["commit", "-qm", "workstreams"]);
    let bare = src.scratch("remote.git");
    src.git(&["clone", "-q", "--bare", ".", bare.to_str().unwrap()]);
    (src, bare)
}

fn spawn(env: &Env, args: &[&str]) -> Spawned {
    env.spawn_run(args)
}

/// Per workstream: (attempt, worker, outcome) of every claim.
fn attempts(url: &str, run: &str) -> BTreeMap<String, Vec<(i64, String, String)>> {
    let mut m: BTreeMap<String, Vec<(i64, String, String)>> = BTreeMap::new();
    for r in q(
        url,
        &format!(
            "SELECT workstream_id, attempt, worker, COALESCE(outcome, 'none') \
             FROM ws_queue_attempts WHERE run_id = '{run}' ORDER BY workstream_id, attempt"
        ),
    ) {
        m.entry(r[0].clone()).or_default().push((
            r[1].parse().unwrap(),
            r[2].clone(),
            r[3].clone(),
        ));
    }
    m
}

/// The scenario of the issue: a bare remote, three clones, three workers (2 agents each),
/// 24 workstreams of which 4 form a dependency chain, one worker SIGKILLed while it holds
/// claims. Exactly one final result per workstream, re-executions only of the dead
/// worker's claims, every branch on the remote, one consolidation and one report, and the
/// seed's queries verbatim through psql.
#[test]
fn three_clones_share_a_run_and_a_killed_workers_claims_are_rerun_once_its_lease_expires() {
    let Some(url) = pgcluster::cluster().map(|c| c.database("queue_three")) else {
        return;
    };
    let mut wss = Vec::new();
    for i in 1..=20 {
        let id = format!("ws-{i:02}");
        wss.push((
            id.clone(),
            serde_json::json!({"id": id, "command": format!("sleep 0.6; echo {i} > f{i}.txt")}),
        ));
    }
    for i in 1..=4 {
        let id = format!("chain-{i}");
        let deps: Vec<String> = if i == 1 {
            vec![]
        } else {
            vec![format!("chain-{}", i - 1)]
        };
        wss.push((
            id.clone(),
            serde_json::json!({"id": id, "depends_on": deps,
                "command": format!("sleep 0.3; echo {i} > chain-{i}.txt")}),
        ));
    }
    let (_src, bare) = origin(&wss);
    let a = clone_of(&bare, "a", "2s");
    let b = clone_of(&bare, "b", "2s");
    let c = clone_of(&bare, "c", "2s");
    let common = ["--agents", "2", "--db", &url, "--remote", "origin"];
    let coord = spawn(&a, &[&common[..], &["--worker", "a"]].concat());
    wait_until(Duration::from_secs(60), "the shared run", || {
        !try_q(&url, "SELECT run_id FROM ws_queue_runs").is_empty()
    });
    let run = q(&url, "SELECT run_id FROM ws_queue_runs")[0][0].clone();
    let join = [&common[..], &["--join", "latest"]].concat();
    let victim = spawn(&b, &[&join[..], &["--worker", "b"]].concat());
    // Killed while it holds claims (its agents are running their commands).
    wait_until(Duration::from_secs(60), "worker b's claims", || {
        !try_q(
            &url,
            "SELECT 1 FROM ws_queue WHERE worker = 'b' AND state = 'claimed'",
        )
        .is_empty()
    });
    std::thread::sleep(Duration::from_millis(200));
    signal(victim.pid(), libc::SIGKILL);
    let _ = victim.wait(Duration::from_secs(10));
    let held: BTreeSet<String> = q(
        &url,
        "SELECT workstream_id FROM ws_queue WHERE worker = 'b' AND state = 'claimed'",
    )
    .into_iter()
    .map(|r| r[0].clone())
    .collect();
    assert!(!held.is_empty(), "b died holding claims");
    let joiner = spawn(&c, &[&join[..], &["--worker", "c"]].concat());
    let coord = coord.wait(Duration::from_secs(120));
    let joiner = joiner.wait(Duration::from_secs(120));
    assert_eq!(coord.code, 0, "coordinator:\n{}", coord.stderr);
    assert_eq!(joiner.code, 0, "joiner:\n{}", joiner.stderr);
    assert_eq!(coord.run_id(), run);
    assert!(
        coord.stdout.contains("24 completed"),
        "the coordinator's summary is the whole run's: {}",
        coord.stdout
    );

    // Exactly one final result per workstream, all completed.
    let rows = q(
        &url,
        &format!(
            "SELECT workstream_id, status, count(*) FROM agent_results WHERE run_id = '{run}' \
             GROUP BY workstream_id, status ORDER BY workstream_id"
        ),
    );
    assert_eq!(rows.len(), 24, "{rows:?}");
    for r in &rows {
        assert_eq!((r[1].as_str(), r[2].as_str()), ("completed", "1"), "{r:?}");
    }
    // Agent ids name their worker; the dead worker has no result it did not finish.
    let agents = q(
        &url,
        &format!("SELECT DISTINCT agent_id FROM agent_results WHERE run_id = '{run}'"),
    );
    for r in &agents {
        assert!(
            r[0].ends_with("@a") || r[0].ends_with("@b") || r[0].ends_with("@c"),
            "{r:?}"
        );
    }

    // Re-executions only for what b held when it died: their first claim expired.
    let tries = attempts(&url, &run);
    assert_eq!(tries.len(), 24);
    for (ws, list) in &tries {
        let last = list.last().unwrap();
        assert_eq!(last.2, "completed", "{ws}: {list:?}");
        if list.len() > 1 {
            assert!(
                held.contains(ws),
                "{ws} re-run but b did not hold it: {list:?}"
            );
            for earlier in &list[..list.len() - 1] {
                assert_eq!(
                    (earlier.1.as_str(), earlier.2.as_str()),
                    ("b", "expired"),
                    "{ws}: {list:?}"
                );
            }
            assert_ne!(last.1, "b");
        }
    }
    for ws in &held {
        assert!(
            tries[ws].len() >= 2,
            "{ws} held by b was re-run: {:?}",
            tries[ws]
        );
    }

    // The chain ran in order, whichever worker ran each link.
    for i in 2..=4 {
        let before = q(
            &url,
            &format!(
                "SELECT (SELECT end_time FROM agent_results WHERE run_id = '{run}' AND workstream_id = 'chain-{}') \
                 <= (SELECT start_time FROM agent_results WHERE run_id = '{run}' AND workstream_id = 'chain-{i}')",
                i - 1
            ),
        );
        assert_eq!(before[0][0], "t", "chain-{} before chain-{i}", i - 1);
    }

    // Every branch on the remote; no attempt refs left.
    let remote_refs = a.git(&["ls-remote", bare.to_str().unwrap()]);
    for (ws, _) in &wss {
        let name = format!("refs/heads/ws/{run}/{ws}");
        assert!(
            remote_refs
                .lines()
                .any(|l| l.ends_with(&format!("\t{name}"))),
            "{name} on the remote:\n{remote_refs}"
        );
    }
    assert!(
        !remote_refs.contains(&format!("refs/ws/{run}/attempts/")),
        "{remote_refs}"
    );
    // The last link's branch is on the remote with its commit.
    let out = a.git(&[
        &format!("--git-dir={}", bare.display()),
        "show",
        &format!("ws/{run}/chain-4:chain-4.txt"),
    ]);
    assert_eq!(out, "4\n");

    // One consolidation, one report, the run finished.
    let cons = q(
        &url,
        &format!("SELECT consolidations, consolidated_at IS NOT NULL FROM ws_queue_runs WHERE run_id = '{run}'"),
    );
    assert_eq!(cons, vec![vec!["1", "t"]]);
    // The consolidator wrote the report; a worker that saw the run finish rendered the same
    // stored run into its own clone (as `git ws-report RUN --format markdown` would); the
    // dead worker none.
    let consolidator = q(
        &url,
        &format!("SELECT consolidator FROM ws_queue_runs WHERE run_id = '{run}'"),
    )[0][0]
        .clone();
    assert!(
        ["a", "c"].contains(&consolidator.as_str()),
        "{consolidator}"
    );
    let report_of = |e: &Env| {
        std::fs::read_to_string(
            e.repo
                .join(format!("reports/multi_agent_consolidated_{run}.md")),
        )
        .ok()
    };
    let (ra, rc) = (report_of(&a), report_of(&c));
    assert!(report_of(&b).is_none());
    let ra = ra.expect("the coordinator's report");
    assert!(ra.contains("24"), "{ra}");
    // The joiner writes it too when it stays until the end (always when it consolidated).
    if consolidator == "c" {
        assert!(rc.is_some(), "the consolidator's report");
    }
    if let Some(rc) = rc {
        assert_eq!(rc, ra, "one report, the same in both clones");
    }
    let totals = q(
        &url,
        &format!(
            "SELECT total_workstreams, completed_count, failed_count FROM consolidated_runs WHERE run_id = '{run}'"
        ),
    );
    assert_eq!(totals, vec![vec!["24", "24", "0"]]);

    // Stacked across workers: the chain's last branch holds every link's work, whichever
    // worker ran each (each fetched its dependency's pushed branch first).
    let tree = a
        .command("git")
        .args([
            "--git-dir",
            &bare.display().to_string(),
            "ls-tree",
            "-r",
            "--name-only",
        ])
        .arg(format!("ws/{run}/chain-4"))
        .output()
        .unwrap();
    let tree = String::from_utf8_lossy(&tree.stdout);
    for i in 1..=4 {
        assert!(tree.contains(&format!("chain-{i}.txt")), "{tree}");
    }

    // The seed's queries, verbatim through psql.
    let queries = crate::sql::seed_queries();
    let qq = |i: usize| queries[i].1.replace("ma-run-20241202-190000", &run);
    assert_eq!(q(&url, &qq(1)).len(), 24);
    assert!(q(&url, &qq(2)).is_empty());
    let per_agent = q(&url, &qq(3));
    let total: i64 = per_agent.iter().map(|r| r[1].parse::<i64>().unwrap()).sum();
    assert_eq!(total, 24);
    // `git ws-report RUN --db URL` from another clone.
    let rep = c.ws_report(&[&run, "--db", &url]);
    rep.expect(0);
    assert!(rep.stdout.contains(&run), "{}", rep.stdout);
}

/// Ctrl-C on a joiner gives its running workstreams back to the queue (not failed, not
/// waiting for a lease): the coordinator runs them, and each still has one final result.
/// The joiner is started first, before any run exists, and waits for one.
#[test]
fn ctrl_c_on_a_joiner_gives_its_claims_back_and_the_coordinator_runs_them() {
    let Some(url) = pgcluster::cluster().map(|c| c.database("queue_ctrl_c")) else {
        return;
    };
    let wss: Vec<_> = (1..=4)
        .map(|i| {
            let id = format!("ws-{i}");
            let cmd = format!("sleep 1; echo {i} > f{i}.txt");
            (id.clone(), serde_json::json!({"id": id, "command": cmd}))
        })
        .collect();
    let (_src, bare) = origin(&wss);
    // A long lease: only the give-back can free the joiner's claims in time.
    let a = clone_of(&bare, "a", "60s");
    let b = clone_of(&bare, "b", "60s");
    let common = ["--db", &url, "--remote", "origin"];
    // The joiner starts first, on a database no run has written yet: it waits.
    let joiner = spawn(
        &b,
        &[
            &common[..],
            &["--agents", "2", "--join", "latest", "--worker", "b"],
        ]
        .concat(),
    );
    wait_until(Duration::from_secs(60), "the joiner waiting", || {
        joiner.stderr().contains("waiting for one")
    });
    let coord = spawn(
        &a,
        &[&common[..], &["--agents", "1", "--worker", "a"]].concat(),
    );
    wait_until(Duration::from_secs(60), "worker b's claims", || {
        try_q(
            &url,
            "SELECT 1 FROM ws_queue WHERE worker = 'b' AND state = 'claimed'",
        )
        .len()
            == 2
    });
    std::thread::sleep(Duration::from_millis(300));
    signal(joiner.pid(), libc::SIGINT);
    let joiner = joiner.wait(Duration::from_secs(60));
    assert_eq!(joiner.code, 130, "{}", joiner.stderr);
    assert!(
        joiner.stdout.contains("gave 2 back to the queue"),
        "{}",
        joiner.stdout
    );
    let coord = coord.wait(Duration::from_secs(120));
    assert_eq!(coord.code, 0, "{}", coord.stderr);
    let run = coord.run_id();
    let tries = attempts(&url, &run);
    let released: Vec<_> = tries
        .iter()
        .filter(|(_, l)| l.iter().any(|t| t.2 == "released"))
        .collect();
    assert_eq!(released.len(), 2, "{tries:?}");
    for (ws, list) in &released {
        assert_eq!(list.len(), 2, "{ws}: {list:?}");
        assert_eq!((list[0].1.as_str(), list[0].2.as_str()), ("b", "released"));
        assert_eq!((list[1].1.as_str(), list[1].2.as_str()), ("a", "completed"));
    }
    let rows = q(
        &url,
        &format!(
            "SELECT workstream_id, status FROM agent_results WHERE run_id = '{run}' ORDER BY 1"
        ),
    );
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert!(rows.iter().all(|r| r[1] == "completed"), "{rows:?}");
}
