//! `git ws-merge` on real runs: a textual conflict left out, a pair of branches that each
//! pass the tests but break them together found by bisection with real test processes, a
//! failed workstream not integrated; the integration branch's tree really passes the tests,
//! the user's HEAD, index and worktree are untouched, the JSON, the database rows and the
//! report agree, a second run is idempotent, the post-merge hook records the fast-forward
//! merge, `--ff`, `--dry-run`, and bad input (exit 2, nothing written).

use crate::common::{Env, Run};
use serde_json::Value;
use std::path::Path;

/// A shell project: `lib.sh` defines `greet`, `main.sh` calls it, `test.sh` runs main.sh and
/// every `*-check.sh`. Workstreams: `docs` (clean), `readme-a` / `readme-b` (the same line:
/// a textual conflict), `rename` (renames `greet` to `say_hello` and its caller) and
/// `caller` (a new caller of `greet`): each passes the tests alone, together they fail.
/// `broken` fails. Returns the run id.
fn scenario() -> (Env, String) {
    scenario_with(&[])
}

/// [`scenario`], with extra `git ws-run` arguments (`--db URL`).
fn scenario_with(run_args: &[&str]) -> (Env, String) {
    let env = Env::new();
    env.write("lib.sh", "greet() { echo \"hello $1\"; }\n");
    env.write("main.sh", ". ./lib.sh\ngreet world\n");
    env.write(
        "test.sh",
        "set -e\nsh main.sh >/dev/null\nfor c in *-check.sh; do [ -e \"$c\" ] || continue; sh \"$c\" >/dev/null; done\necho 'all checks pass'\n",
    );
    env.write("README.md", "# Project\n\nA line everyone edits.\n");
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "shell project"]);
    let test = "sh test.sh";
    env.ws_cmd(
        "docs",
        "mkdir -p docs && echo 'run main.sh' > docs/usage.md",
    );
    env.ws_cmd(
        "readme-a",
        "printf '# Project\\n\\nA says so.\\n' > README.md",
    );
    env.ws_cmd(
        "readme-b",
        "printf '# Project\\n\\nB says otherwise.\\n' > README.md",
    );
    env.ws(
        "rename",
        serde_json::json!({"id": "rename", "test": test, "command":
            "printf 'say_hello() { echo \"hello $1\"; }\\n' > lib.sh && printf '. ./lib.sh\\nsay_hello world\\n' > main.sh"}),
    );
    env.ws(
        "caller",
        serde_json::json!({"id": "caller", "test": test, "command":
            "printf '. ./lib.sh\\ngreet extra\\n' > extra-check.sh"}),
    );
    env.ws_cmd("broken", "echo 'cannot do it' >&2; exit 3");
    let mut args = vec!["--agents", "2", "-q"];
    args.extend_from_slice(run_args);
    let out = env.ws_run(&args);
    out.expect(1);
    let run = out.run_id();
    (env, run)
}

impl Env {
    /// `git ws-merge ARGS` through git's own dispatch.
    pub fn ws_merge(&self, args: &[&str]) -> Run {
        let out = self
            .command("git")
            .arg("ws-merge")
            .args(args)
            .output()
            .unwrap();
        Run::from(out)
    }
}

fn json_of(out: &Run) -> Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

fn ids(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect()
}

/// (workstream, reason) of each exclusion.
fn excluded(v: &Value) -> Vec<(String, String)> {
    v["excluded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["workstream_id"].as_str().unwrap().to_string(),
                x["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Run `sh test.sh` on the tree of `rev`, exported into a scratch directory.
fn tests_pass_on(env: &Env, rev: &str, dir: &Path) -> bool {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let archive = env.scratch("tree.tar");
    env.git(&["archive", "-o", archive.to_str().unwrap(), rev]);
    let untar = env
        .command("tar")
        .args([
            "-xf",
            archive.to_str().unwrap(),
            "-C",
            dir.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(untar.success());
    env.command("sh")
        .arg("test.sh")
        .current_dir(dir)
        .status()
        .unwrap()
        .success()
}

/// What must not change in the user's repository: HEAD, the index's entries, the worktree's
/// status (with a local edit and an untracked file of the user's in it).
fn user_state(env: &Env) -> (String, String, String) {
    (
        env.git(&["rev-parse", "HEAD"]),
        env.git(&["ls-files", "--stage"]),
        env.git(&["status", "--porcelain", "--untracked-files=all"]),
    )
}

fn count(env: &Env, sql: &str) -> usize {
    env.sql(sql)[0][0].parse().unwrap()
}

#[test]
fn integrates_leaves_out_the_conflict_and_the_combination_that_breaks_the_tests() {
    let (env, run) = scenario();
    // The user is in the middle of something: a local edit and an untracked file.
    env.write("README.md", "# Project\n\nmy local edit\n");
    env.write("notes.txt", "mine\n");
    let before = user_state(&env);

    let out = env.ws_merge(&[&run, "--test", "sh test.sh", "--format", "json"]);
    out.expect(1);
    let v = json_of(&out);
    let branch = format!("ws/{run}/integration");
    assert_eq!(v["run_id"], run.as_str());
    assert_eq!(v["branch"], branch.as_str());
    assert_eq!(v["onto"], env.git(&["rev-parse", "HEAD"]).trim());
    assert_eq!(v["test_command"], "sh test.sh");
    let tip = v["tip"].as_str().unwrap().to_string();
    assert_eq!(tip.len(), 40);
    assert_eq!(env.git(&["rev-parse", &branch]).trim(), tip);

    // Merged in the forecast's order; the conflict, the test breaker and the failure out.
    let merged = ids(&v["merged"]);
    let order: Vec<String> = env
        .sql(&format!(
            "SELECT workstream_id FROM ws_merge_order WHERE run_id = '{run}' ORDER BY position"
        ))
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    let in_order: Vec<&str> = order
        .iter()
        .map(String::as_str)
        .filter(|w| merged.contains(w))
        .collect();
    assert_eq!(merged, in_order, "merged in the forecast's order");
    assert_eq!(merged.len(), 3, "{merged:?}");
    assert!(merged.contains(&"docs"));
    let x = excluded(&v);
    assert_eq!(x.len(), 3, "{x:?}");
    let conflict = &v["excluded"][0];
    assert_eq!(conflict["reason"], "conflict");
    assert_eq!(conflict["paths"], serde_json::json!(["README.md"]));
    let loser = conflict["workstream_id"].as_str().unwrap();
    assert!(loser == "readme-a" || loser == "readme-b");
    assert!(merged.contains(&if loser == "readme-a" {
        "readme-b"
    } else {
        "readme-a"
    }));
    let breaker = &v["excluded"][1];
    assert_eq!(breaker["reason"], "breaks-tests");
    let (culprit, partner) = (
        breaker["workstream_id"].as_str().unwrap(),
        breaker["broke_with"][0].as_str().unwrap(),
    );
    let mut pair = [culprit, partner];
    pair.sort();
    assert_eq!(pair, ["caller", "rename"], "{breaker}");
    assert!(merged.contains(&partner));
    assert!(
        breaker["output_tail"]
            .as_str()
            .unwrap()
            .contains("greet: not found"),
        "{breaker}"
    );
    assert_eq!(x[2], ("broken".to_string(), "not-completed".to_string()));
    assert!(v["excluded"][2]["detail"]
        .as_str()
        .unwrap()
        .contains("CommandFailed"));
    // Test runs: the onto commit first, then the bisection, within the bound.
    let runs = v["test_runs"].as_u64().unwrap() as usize;
    let tests = v["tests"].as_array().unwrap();
    assert_eq!(tests.len(), runs);
    assert_eq!(tests[0]["workstreams"], serde_json::json!([]));
    // 4 merges, one culprit: 1 + 2*ceil(log2 4) + 1 passing run, + the onto run.
    assert!(runs <= 1 + (1 + 2 * 2) + 1, "{runs} test runs");
    eprintln!("bisection: {runs} test runs for 4 merges and one culprit");

    // The integration branch's tree really passes; the user's repository is as it was.
    assert!(tests_pass_on(&env, &branch, &env.scratch("check")));
    assert_eq!(user_state(&env), before);
    assert_eq!(
        std::fs::read_to_string(env.repo.join("README.md")).unwrap(),
        "# Project\n\nmy local edit\n"
    );

    // The JSON, the database rows and the report agree.
    let report = env.ws_report(&[&run, "--format", "json"]);
    report.expect(0);
    let rv = json_of(&report);
    // ws-merge's object, which says its schema as every printed object does.
    assert_eq!(v["schema"], rv["schema"]);
    let mut unversioned = v.clone();
    unversioned.as_object_mut().unwrap().remove("schema");
    assert_eq!(
        rv["integration"], unversioned,
        "ws-report's integration is ws-merge's object"
    );
    let rows = env.sql(&format!(
        "SELECT branch, onto, tip, test_command, test_runs, merged_count, excluded_count \
         FROM ws_integrations WHERE run_id = '{run}'"
    ));
    assert_eq!(
        rows,
        vec![vec![
            branch.clone(),
            v["onto"].as_str().unwrap().to_string(),
            tip.clone(),
            "sh test.sh".to_string(),
            runs.to_string(),
            "3".to_string(),
            "3".to_string()
        ]]
    );
    let steps = env.sql(&format!(
        "SELECT s.workstream_id, s.outcome, COALESCE(s.reason, '') FROM ws_integration_steps s \
         JOIN ws_integrations i ON i.id = s.integration_id WHERE i.run_id = '{run}' ORDER BY s.position"
    ));
    let mut want: Vec<Vec<String>> = merged
        .iter()
        .map(|w| vec![w.to_string(), "merged".into(), String::new()])
        .collect();
    want.extend(
        x.iter()
            .map(|(w, r)| vec![w.clone(), "excluded".into(), r.clone()]),
    );
    assert_eq!(steps, want);
    let md = std::fs::read_to_string(
        env.repo
            .join(format!("reports/multi_agent_consolidated_{run}.md")),
    )
    .unwrap();
    let section = md.split("## Integration").nth(1).unwrap();
    assert!(
        section.contains("3 of 5 completed workstreams integrated"),
        "{section}"
    );
    assert!(section.contains(&format!("**{culprit}** (breaks-tests)")));
    assert!(section.contains(&format!("**{loser}** (conflict)")));
    assert!(section.contains("greet: not found"));
    let table = env.ws_report(&[&run]);
    assert!(
        table
            .stdout
            .contains(&format!("integration: {branch} at {} ", &tip[..7])),
        "{}",
        table.stdout
    );

    // A second run recomputes the same integration.
    let again = env.ws_merge(&[&run, "--test", "sh test.sh", "--format", "json"]);
    again.expect(1);
    let w = json_of(&again);
    for key in ["tip", "merged", "excluded", "onto", "branch"] {
        assert_eq!(w[key], v[key], "{key}");
    }
    assert_eq!(
        count(
            &env,
            &format!("SELECT COUNT(*) FROM ws_integrations WHERE run_id = '{run}'")
        ),
        2
    );
    assert_eq!(user_state(&env), before);
}

#[test]
fn the_post_merge_hook_records_the_fast_forward_merge_and_ff_moves_a_clean_branch() {
    let (env, run) = scenario();
    env.ws_run(&["--install-hooks"]).expect(0);
    let out = env.ws_merge(&[&run, "--format", "json"]);
    // Untested: only the conflict and the failure are left out.
    out.expect(1);
    let v = json_of(&out);
    assert_eq!(v["test_runs"], 0);
    assert_eq!(v["test_command"], Value::Null);
    let merged: Vec<String> = ids(&v["merged"]).iter().map(|s| s.to_string()).collect();
    assert_eq!(merged.len(), 4, "{merged:?}");
    let branch = format!("ws/{run}/integration");
    let m = env
        .command("git")
        .args(["merge", "--ff-only", &branch])
        .output()
        .unwrap();
    assert!(m.status.success());
    let said = String::from_utf8_lossy(&m.stderr);
    assert!(said.contains("ws: 4 workstreams merged"), "{said}");
    let rows = env.sql(&format!(
        "SELECT workstream_id, detected_by, merge_commit FROM ws_merges WHERE run_id = '{run}' ORDER BY workstream_id"
    ));
    let mut want: Vec<Vec<String>> = merged
        .iter()
        .map(|w| {
            vec![
                w.clone(),
                "ancestor".into(),
                v["tip"].as_str().unwrap().into(),
            ]
        })
        .collect();
    want.sort();
    assert_eq!(rows, want);
    let listed = json_of(&env.ws_report(&[&run, "--format", "json"]));
    let by: Vec<&Value> = listed["workstreams"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["merged"] == true)
        .map(|w| &w["merge_detected_by"])
        .collect();
    assert_eq!(by.len(), 4);
    assert!(by.iter().all(|b| *b == "ancestor"));

    // Integrating again onto the new HEAD: every merged branch is already contained.
    let again = json_of(&env.ws_merge(&[&run, "--format", "json"]));
    assert_eq!(again["tip"], v["tip"]);
    assert_eq!(again["merged"], v["merged"]);

    // --ff moves the checked-out branch and its clean worktree; refused when it is dirty.
    env.git(&["reset", "-q", "--hard", "HEAD~4"]);
    let start = env.git(&["rev-parse", "HEAD"]);
    env.write("lib.sh", "dirty\n");
    let refused = env.ws_merge(&[&run, "--ff"]);
    refused.expect(2);
    assert!(
        refused.stderr.contains("uncommitted changes (lib.sh)"),
        "{}",
        refused.stderr
    );
    assert_eq!(env.git(&["rev-parse", "HEAD"]), start);
    env.git(&["checkout", "-q", "lib.sh"]);
    let ff = env.ws_merge(&[&run, "--ff", "--format", "json"]);
    ff.expect(1);
    let f = json_of(&ff);
    assert_eq!(f["fast_forwarded"], "main");
    assert_eq!(
        env.git(&["rev-parse", "HEAD"]).trim(),
        f["tip"].as_str().unwrap()
    );
    assert_eq!(
        env.git(&["status", "--porcelain", "--untracked-files=no"]),
        ""
    );
    assert!(
        env.repo.join("docs/usage.md").is_file(),
        "the worktree followed"
    );
}

#[test]
fn bad_input_is_a_clear_error_with_nothing_written() {
    let (env, run) = scenario();
    let branch = format!("ws/{run}/integration");
    let refs = || env.git(&["for-each-ref", "--format=%(refname)"]);
    let before = refs();
    let integrations = || count(&env, "SELECT COUNT(*) FROM ws_integrations");
    let unchanged = |out: &Run, needle: &str| {
        out.expect(2);
        assert!(out.stderr.contains(needle), "{needle}: {}", out.stderr);
        assert_eq!(out.stdout, "");
        assert_eq!(refs(), before, "no ref written");
        assert_eq!(integrations(), 0, "no integration recorded");
    };
    let typo = format!("{}x", &run[..run.len() - 1]);
    unchanged(&env.ws_merge(&[&typo]), &format!("closest: {run}"));
    unchanged(
        &env.ws_merge(&[&run, "--onto", "no-such-rev"]),
        "--onto no-such-rev: failed to resolve",
    );
    unchanged(
        &env.ws_merge(&[&run, "--test", "no-such-test-command-xyz"]),
        "cannot start (exit 127: command not found)",
    );
    unchanged(
        &env.ws_merge(&[&run, "--test", "echo broken base; exit 1"]),
        "the tests fail on the --onto commit",
    );
    unchanged(
        &env.ws_merge(&[&run, "--onto", "HEAD~0^{tree}", "--ff"]),
        "--onto HEAD~0^{tree}",
    );
    unchanged(
        &env.ws_merge(&[&run, "--onto", "HEAD~0", "--ff"]),
        "--ff needs --onto to name a local branch",
    );
    unchanged(
        &env.ws_merge(&[&run, "--into", "bad..name"]),
        "not a valid branch name",
    );
    // A test run past its time limit fails (its process group is stopped): on onto, exit 2.
    let started = std::time::Instant::now();
    unchanged(
        &env.ws_merge(&[
            &run,
            "--test",
            "sleep 30",
            "--timeout",
            "1s",
            "--grace",
            "1s",
        ]),
        "timed out",
    );
    assert!(started.elapsed().as_secs() < 20);
    // The integration branch checked out in a worktree is not reset under it.
    env.git(&["branch", &branch, "HEAD"]);
    let linked = env.scratch("linked");
    env.git(&["worktree", "add", "-q", linked.to_str().unwrap(), &branch]);
    let before = refs();
    let out = env.ws_merge(&[&run]);
    out.expect(2);
    assert!(
        out.stderr.contains("it is checked out in"),
        "{}",
        out.stderr
    );
    assert_eq!(refs(), before);
    assert_eq!(integrations(), 0);
}

#[test]
fn dry_run_prints_the_plan_and_writes_nothing() {
    let (env, run) = scenario();
    let objects = || {
        env.git(&["count-objects", "-v"])
            .lines()
            .filter(|l| l.starts_with("count:") || l.starts_with("in-pack:"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let (before_refs, before_objects) = (env.git(&["for-each-ref"]), objects());
    let out = env.ws_merge(&[&run, "--dry-run", "--test", "sh test.sh"]);
    out.expect(1);
    assert!(out.stdout.starts_with("dry run: "), "{}", out.stdout);
    assert!(out.stdout.contains("plan (the merge forecast's order):"));
    assert!(out.stdout.contains("would test with `sh test.sh`"));
    assert!(out.stdout.contains("nothing was written"));
    // Its counts add up to its lists: "N to merge, M to leave out, K not completed" above
    // N lines under "would merge" and M + K under "would leave out".
    let first = out.stdout.lines().next().unwrap();
    let numbers: Vec<usize> = first
        .rsplit(": ")
        .next()
        .unwrap()
        .split(", ")
        .map(|part| part.split(' ').next().unwrap().parse().unwrap())
        .collect();
    let listed = |header: &str| {
        out.stdout
            .split(header)
            .nth(1)
            .unwrap_or("")
            .split("\n\n")
            .next()
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("  ") && !l.contains(" | "))
            .count()
    };
    assert_eq!(numbers.len(), 3, "{first}");
    assert_eq!(numbers[0], listed("would merge:\n"), "{}", out.stdout);
    assert_eq!(
        numbers[1] + numbers[2],
        listed("would leave out:\n"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("\ntip: "), "{}", out.stdout);
    assert_eq!(env.git(&["for-each-ref"]), before_refs);
    assert_eq!(objects(), before_objects, "no object written");
    assert_eq!(count(&env, "SELECT COUNT(*) FROM ws_integrations"), 0);
    // The plan's tip is the one a real run makes (the commits are deterministic).
    let plan = json_of(&env.ws_merge(&[&run, "--dry-run", "--format", "json"]));
    assert_eq!(plan["dry_run"], true);
    let real = json_of(&env.ws_merge(&[&run, "--format", "json"]));
    assert_eq!(plan["tip"], real["tip"]);
    assert_eq!(plan["merged"], real["merged"]);
}

#[test]
fn integrations_are_recorded_in_postgres_too() {
    let Some(cluster) = crate::pgcluster::cluster() else {
        return;
    };
    let url = cluster.database("merge_recording");
    let (env, run) = scenario_with(&["--db", &url]);
    let out = env.ws_merge(&[
        &run,
        "--db",
        &url,
        "--test",
        "sh test.sh",
        "--format",
        "json",
    ]);
    out.expect(1);
    let v = json_of(&out);
    assert_eq!(
        excluded(&v)
            .iter()
            .map(|x| x.1.as_str())
            .collect::<Vec<_>>(),
        ["conflict", "breaks-tests", "not-completed"]
    );
    let report = json_of(&env.ws_report(&[&run, "--db", &url, "--format", "json"]));
    let mut unversioned = v.clone();
    unversioned.as_object_mut().unwrap().remove("schema");
    assert_eq!(report["integration"], unversioned);
    let q = |sql: &str| crate::pgcluster::psql(&url, sql).unwrap();
    let rows = q(&format!(
        "SELECT tip, test_runs, merged_count, excluded_count FROM ws_integrations WHERE run_id = '{run}'"
    ));
    assert_eq!(
        rows,
        vec![vec![
            v["tip"].as_str().unwrap().to_string(),
            v["test_runs"].to_string(),
            "3".to_string(),
            "3".to_string()
        ]]
    );
    let tests = q("SELECT COUNT(*), SUM(passed) FROM ws_integration_tests");
    assert_eq!(tests[0][0], v["test_runs"].to_string());
    // The forecast's clusters and explained order are stored there too.
    let clusters = q(&format!(
        "SELECT path FROM ws_forecast_clusters WHERE run_id = '{run}' ORDER BY cluster_id"
    ));
    assert!(clusters.iter().any(|r| r[0] == "README.md"), "{clusters:?}");
    let reasons = q(&format!(
        "SELECT COUNT(*) FROM ws_merge_order WHERE run_id = '{run}' AND reason <> ''"
    ));
    assert_eq!(reasons, vec![vec!["5".to_string()]]);
    assert!(
        !env.db_path().exists(),
        "nothing in the default SQLite file"
    );
}

/// The demo (`fixtures/demo/run-demo.sh --no-install`) ends with `git ws-merge --test`: the
/// version conflict and the docs example that breaks the docs check only together with the
/// deletion of `src/txt-wrap.sh` are left out, the rest is integrated and its tip passes.
#[test]
fn the_demo_ends_with_its_conflict_and_combination_failure_left_out() {
    let env = Env::new();
    let demo = env.scratch("demo");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo/run-demo.sh");
    let out = Run::from(
        env.command("sh")
            .arg(&script)
            .arg("--no-install")
            .arg(&demo)
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("git ws-merge finished with status 1, as expected"),
        "{}",
        out.stdout
    );
    // The integration it recorded, as `git ws-report` shows it.
    let report = Run::from(
        env.command("git")
            .current_dir(&demo)
            .args(["ws-report", "latest", "--format", "json"])
            .output()
            .unwrap(),
    );
    let it = &json_of(&report)["integration"];
    assert_eq!(
        excluded(it)
            .into_iter()
            .filter(|(_, r)| r != "not-completed")
            .collect::<Vec<_>>(),
        [
            ("release-0.2".to_string(), "conflict".to_string()),
            ("docs-examples".to_string(), "breaks-tests".to_string()),
        ]
    );
    let broke = &it["excluded"][1];
    assert_eq!(broke["broke_with"], serde_json::json!(["drop-legacy-wrap"]));
    assert_eq!(it["merged"].as_array().unwrap().len(), 9, "{it}");
    assert!(
        it["test_runs"].as_u64().unwrap() <= 1 + 1 + 2 * 4 + 1,
        "{it}"
    );
    // The tip's tree, exported, passes both test scripts.
    let tip = it["tip"].as_str().unwrap();
    let tree = env.scratch("demo-tip");
    std::fs::create_dir_all(&tree).unwrap();
    let export = env
        .command("sh")
        .current_dir(&demo)
        .arg("-c")
        .arg(format!(
            "git archive {tip} | tar -xf - -C '{}'",
            tree.display()
        ))
        .status()
        .unwrap();
    assert!(export.success());
    let tested = env
        .command("sh")
        .current_dir(&tree)
        .args(["-c", "sh tests/run.sh && sh tests/docs.sh"])
        .output()
        .unwrap();
    assert!(
        tested.status.success(),
        "the tip {tip} fails the tests: {}",
        String::from_utf8_lossy(&tested.stdout)
    );
}

/// `.gitattributes` decide merges as in git: two branches appending to a `merge=union`
/// changelog both land, a configured driver (`merge.tail.driver`) merges a log, and a
/// `-merge` file edited by two branches in different places conflicts (git keeps ours).
/// The forecast agrees, ws-merge integrates every branch git merges cleanly onto the
/// tip, leaves out the one git does not, and no driver's temporary file is left behind.
#[test]
fn merge_attributes_decide_like_git_union_driver_and_unset_merge() {
    let env = Env::new();
    env.write(
        ".gitattributes",
        "CHANGES.md merge=union\nlog.txt merge=tail\npinned.txt -merge\n",
    );
    env.write("CHANGES.md", "# Changes\n\n- base entry\n");
    env.write("log.txt", "log\n");
    env.write("pinned.txt", "1\n2\n3\n4\n5\n6\n");
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "attributes"]);
    // The driver appends theirs' last line to ours.
    env.git(&["config", "merge.tail.driver", "tail -n 1 %B >> %A"]);
    env.ws_cmd("a", "printf -- '- entry a\\n' >> CHANGES.md");
    env.ws_cmd(
        "b",
        "printf -- '- entry b\\n' >> CHANGES.md && echo b-log >> log.txt",
    );
    env.ws_cmd("c", "echo c-log >> log.txt");
    env.ws_cmd("p", "sed -i 's/^2$/two/' pinned.txt");
    env.ws_cmd("q", "sed -i 's/^4$/four/' pinned.txt");
    let out = env.ws_run(&["--agents", "2", "-q"]);
    out.expect(0);
    let run = out.run_id();

    // The forecast: the union and the driver merge cleanly, -merge conflicts.
    let pairs = env.sql(&format!(
        "SELECT ws_a, ws_b, clean FROM ws_forecast_pairs WHERE run_id = '{run}' ORDER BY ws_a, ws_b"
    ));
    assert!(
        pairs.contains(&vec!["a".into(), "b".into(), "1".into()]),
        "{pairs:?}"
    );
    assert!(
        pairs.contains(&vec!["b".into(), "c".into(), "1".into()]),
        "{pairs:?}"
    );
    assert!(
        pairs.contains(&vec!["p".into(), "q".into(), "0".into()]),
        "{pairs:?}"
    );

    let out = env.ws_merge(&[&run, "--format", "json"]);
    out.expect(1);
    let v = json_of(&out);
    let mut merged = ids(&v["merged"]);
    merged.sort();
    let x = excluded(&v);
    assert_eq!(x.len(), 1, "{x:?}");
    let (left_out, reason) = &x[0];
    assert_eq!(reason, "conflict");
    assert_eq!(v["excluded"][0]["paths"], serde_json::json!(["pinned.txt"]));
    let kept = if left_out == "p" { "q" } else { "p" };
    let mut want = vec!["a", "b", "c", kept];
    want.sort();
    assert_eq!(merged, want);

    // The tip holds both changelog entries and both log lines.
    let branch = format!("ws/{run}/integration");
    let changes = env.git(&["show", &format!("{branch}:CHANGES.md")]);
    assert!(
        changes.contains("- entry a\n") && changes.contains("- entry b\n"),
        "{changes}"
    );
    let log = env.git(&["show", &format!("{branch}:log.txt")]);
    assert!(log.contains("b-log\n") && log.contains("c-log\n"), "{log}");
    // git agrees: each merged branch is in the tip, and the one left out conflicts there.
    let git_merge = |a: &str, b: &str| {
        env.command("git")
            .args(["merge-tree", "--write-tree", "--name-only", a, b])
            .output()
            .unwrap()
    };
    let o = git_merge(&branch, &format!("ws/{run}/{left_out}"));
    assert_eq!(o.status.code(), Some(1), "git also conflicts");
    assert!(String::from_utf8_lossy(&o.stdout).contains("pinned.txt"));
    // The branches git merges cleanly pairwise (union, driver) are the ones integrated.
    let o = git_merge(&format!("ws/{run}/a"), &format!("ws/{run}/b"));
    assert_eq!(o.status.code(), Some(0));
    let o = git_merge(&format!("ws/{run}/b"), &format!("ws/{run}/c"));
    assert_eq!(o.status.code(), Some(0));
    // No driver file left in the user's working tree.
    let status = env.git(&["status", "--porcelain", "--untracked-files=all"]);
    assert!(!status.contains(".merge_file_"), "{status}");
}

/// `--jobs 3` tests candidate tips at once in three pool worktrees (their runs overlap in
/// time) and finds what `--jobs 1` finds, one at a time: the same merges, exclusions and
/// tip.
#[test]
fn jobs_test_candidates_at_once_and_agree_with_one_at_a_time() {
    let (env, run) = scenario();
    let spans = env.scratch("spans.txt");
    let cmd = format!(
        "echo \"start $(date +%s.%N)\" >> {s}; sleep 0.4; sh test.sh; r=$?; echo \"end $(date +%s.%N)\" >> {s}; exit $r",
        s = spans.display()
    );
    // Most test runs at once, from the start/end lines.
    let overlap = || {
        let text = std::fs::read_to_string(&spans).unwrap();
        let mut events: Vec<(f64, i32)> = text
            .lines()
            .map(|l| {
                let (what, t) = l.split_once(' ').unwrap();
                (
                    t.parse::<f64>().unwrap(),
                    if what == "start" { 1 } else { -1 },
                )
            })
            .collect();
        events.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let (mut now, mut most) = (0, 0);
        for (_, d) in events {
            now += d;
            most = most.max(now);
        }
        most
    };
    let one = env.ws_merge(&[&run, "--test", &cmd, "--jobs", "1", "--format", "json"]);
    one.expect(1);
    assert_eq!(overlap(), 1, "one at a time");
    std::fs::remove_file(&spans).unwrap();
    let three = env.ws_merge(&[&run, "--test", &cmd, "--jobs", "3", "--format", "json"]);
    three.expect(1);
    assert!(overlap() >= 2, "test runs overlap with --jobs 3");
    assert!(three.stderr.contains("(batch 1)"), "{}", three.stderr);
    let (a, b) = (json_of(&one), json_of(&three));
    assert_eq!(a["merged"], b["merged"]);
    assert_eq!(excluded(&a), excluded(&b));
    assert_eq!(
        a["excluded"][1]["broke_with"],
        b["excluded"][1]["broke_with"]
    );
    assert_eq!(a["tip"], b["tip"]);
    // The onto run comes first in both.
    assert_eq!(b["tests"][0]["workstreams"], serde_json::json!([]));
    assert_eq!(
        b["tests"].as_array().unwrap().len() as u64,
        b["test_runs"].as_u64().unwrap()
    );
    // Bad input is a clear error.
    let bad = env.ws_merge(&[&run, "--test", &cmd, "--jobs", "0"]);
    bad.expect(2);
    assert!(bad.stderr.contains("--jobs"), "{}", bad.stderr);
}
