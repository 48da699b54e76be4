//! `--fix-up N` on real runs: a branch `git ws-merge` leaves out (a conflict, a test break)
//! handed back to its scripted agent as `<id>~fix1`, run by `git ws-run --resume`,
//! integrated by the next `git ws-merge` in its place; attempts bounded; command
//! workstreams never fixed up; off by default.

use crate::common::{status, Env, Run};
use serde_json::Value;

/// The scripted agent: an original workstream writes its id on line 2 of src/lib.txt (so
/// p1 and p2 conflict) or, when it is `bad`, adds bad.txt (which the tests refuse). A
/// fix-up keeps its prompt in `<scratch>/<id>.prompt` and, in `resolve` mode, resolves:
/// line 2 says both when the prompt shows the conflict on src/lib.txt, and bad.txt goes
/// when the prompt carries the failing test's output.
fn agent(env: &Env, mode: &str) -> String {
    let dir = env.scratch("prompts");
    std::fs::create_dir_all(&dir).unwrap();
    let script = env.scratch(&format!("agent-{mode}.sh"));
    std::fs::write(
        &script,
        format!(
            r#"#!/bin/sh
prompt=$(cat)
case "$WS_ID" in
  *~fix*)
    printf '%s\n' "$prompt" > "{dir}/$WS_ID.prompt"
    if [ "{mode}" = resolve ]; then
      if printf '%s' "$prompt" | grep -q '^### src/lib.txt'; then
        sed -i '2s/.*/TWO by p1 and p2/' src/lib.txt
      fi
      if printf '%s' "$prompt" | grep -q 'bad.txt must not exist'; then
        git rm -q bad.txt
      fi
    fi
    [ "{mode}" = fail ] && {{ echo "cannot fix $WS_ID" >&2; exit 1; }}
    echo "$WS_ID" >> fixups.txt ;;
  bad) echo BAD > bad.txt ;;
  *) sed -i "2s/.*/TWO by $WS_ID/" src/lib.txt ;;
esac
git add -A && git commit -qm "$WS_ID"
"#,
            dir = dir.display()
        ),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .args(["+x", &script.display().to_string()])
        .status()
        .unwrap();
    script.display().to_string()
}

fn env_with(ids: &[&str]) -> Env {
    let env = Env::new();
    env.git(&["config", "ws.sandbox", "off"]);
    for id in ids {
        env.ws(
            id,
            serde_json::json!({"id": id, "prompt": format!("{id}: say who you are on line 2")}),
        );
    }
    env
}

fn merge(env: &Env, args: &[&str]) -> (Run, Value) {
    let mut all = args.to_vec();
    all.extend(["--format", "json", "-q"]);
    let out = env
        .command("git")
        .arg("ws-merge")
        .args(&all)
        .output()
        .unwrap();
    let out = Run::from(out);
    let v = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", out.stdout, out.stderr));
    (out, v)
}

fn excluded(v: &Value) -> Vec<(String, String, String)> {
    v["excluded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["workstream_id"].as_str().unwrap().to_string(),
                x["reason"].as_str().unwrap().to_string(),
                x["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn merged(v: &Value) -> Vec<String> {
    v["merged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_string())
        .collect()
}

fn prompt_of(env: &Env, id: &str) -> String {
    std::fs::read_to_string(env.scratch("prompts").join(format!("{id}.prompt")))
        .unwrap_or_else(|e| panic!("the agent got no prompt for {id}: {e}"))
}

#[test]
fn a_conflict_is_handed_back_run_by_resume_and_integrated_in_its_place() {
    let env = env_with(&["p1", "p2"]);
    let agent = agent(&env, "resolve");
    let out = env.ws_run(&["--agents", "2", "--agent-cmd", &agent, "-q"]);
    out.expect(0);
    let run = out.run_id();
    let (m, v) = merge(&env, &[&run, "--fix-up", "1"]);
    m.expect(1);
    let x = excluded(&v);
    assert_eq!(x.len(), 1, "{x:?}");
    let (left, reason, detail) = &x[0];
    let kept = if left == "p1" { "p2" } else { "p1" };
    assert_eq!(reason, "conflict");
    let fix = format!("{left}~fix1");
    assert!(
        detail.contains(&format!(
            "handed back to its agent as {fix} (attempt 1 of 1; git ws-run --resume {run} runs it)"
        )),
        "{detail}"
    );
    let rows = env.sql(
        "SELECT followup_id, workstream_id, kind, attempt, max_attempts, reason, start_branch, integration_tip, prompt FROM ws_review_followups",
    );
    assert_eq!(rows.len(), 1, "{rows:?}");
    let r = &rows[0];
    assert_eq!(
        &r[..7],
        &[
            fix.clone(),
            left.clone(),
            "fix-up".into(),
            "1".into(),
            "1".into(),
            "conflict".into(),
            format!("refs/ws/{run}/fixup/{left}.fix1")
        ]
    );
    let tip = env.git(&["rev-parse", &format!("ws/{run}/integration")]);
    assert_eq!(r[7], tip.trim());
    // The prompt carries both sides of the conflict, and the original task.
    let p = &r[8];
    assert!(p.contains("### src/lib.txt"), "{p}");
    assert!(
        p.contains(&format!("<<<<<<< integration\nTWO by {kept}")),
        "{p}"
    );
    assert!(
        p.contains(&format!("=======\nTWO by {left}\n>>>>>>> {left}")),
        "{p}"
    );
    assert!(
        p.contains(&format!("{left}: say who you are on line 2")),
        "{p}"
    );
    // The start: the tip (one parent), conflicting path as on the tip.
    let start = format!("refs/ws/{run}/fixup/{left}.fix1");
    assert_eq!(
        env.git(&["rev-parse", &format!("{start}^{{commit}}")])
            .trim(),
        tip.trim()
    );
    // ws-merge again before the fix-up ran: it is pending, not handed back twice.
    let (m, v) = merge(&env, &[&run, "--fix-up", "1"]);
    m.expect(1);
    assert!(excluded(&v)[0]
        .2
        .contains(&format!("already handed back as {fix} (not run yet")));

    env.ws_run(&["--resume", &run, "--agent-cmd", &agent, "-q"])
        .expect(0);
    assert_eq!(status(&env, &run, &fix), "completed");
    assert_eq!(prompt_of(&env, &fix).trim_end(), p.trim_end());
    let branch = format!("ws/{run}/{left}.fix1");
    let ancestor = env
        .command("git")
        .args(["merge-base", "--is-ancestor", tip.trim(), &branch])
        .status()
        .unwrap();
    assert!(
        ancestor.success(),
        "the fix-up starts from the integration tip"
    );

    let (m, v) = merge(&env, &[&run, "--fix-up", "1"]);
    m.expect(0);
    let names = merged(&v);
    assert!(names.contains(&fix), "{names:?}");
    assert!(!names.contains(left), "{names:?}");
    assert!(excluded(&v).is_empty());
    let line2 = env.git(&["show", &format!("ws/{run}/integration:src/lib.txt")]);
    assert_eq!(line2.lines().nth(1), Some("TWO by p1 and p2"));

    // The chain in the report, its tables and its JSON.
    let t = env.ws_report(&[&run, "--integration"]);
    t.expect(0);
    assert!(
        t.stdout
            .contains(&format!("{left} → {fix} (conflict; integrated)")),
        "{}",
        t.stdout
    );
    let md = env.ws_report(&[&run, "--integration", "--format", "markdown"]);
    assert!(md.stdout.contains("### Fix-ups"), "{}", md.stdout);
    let j = env.ws_report(&[&run, "--format", "json"]);
    let j: Value = serde_json::from_str(&j.stdout).unwrap();
    assert!(j["schema"].is_number());
    assert_eq!(j["fixups"][0]["workstream_id"], left.as_str());
    assert_eq!(j["fixups"][0]["state"], "integrated");
    assert_eq!(j["fixups"][0]["attempts"][0]["reason"], "conflict");
}

#[test]
fn a_test_break_prompt_carries_the_failing_tail_and_attempts_are_bounded() {
    let env = env_with(&["bad", "good"]);
    // This agent does not fix anything: the fix-up breaks the tests again.
    let agent = agent(&env, "idle");
    let test = "if [ -e bad.txt ]; then echo 'bad.txt must not exist'; exit 1; fi";
    let out = env.ws_run(&[
        "--agents",
        "2",
        "--agent-cmd",
        &agent,
        "--fix-up",
        "1",
        "-q",
    ]);
    out.expect(0);
    let run = out.run_id();
    // --fix-up comes from the run (git ws-run --fix-up 1).
    let (m, v) = merge(&env, &[&run, "--test", test]);
    m.expect(1);
    let x = excluded(&v);
    assert_eq!(x.len(), 1, "{x:?}");
    assert_eq!((x[0].0.as_str(), x[0].1.as_str()), ("bad", "breaks-tests"));
    assert!(
        x[0].2.contains("handed back to its agent as bad~fix1"),
        "{}",
        x[0].2
    );
    let p = &env.sql("SELECT prompt FROM ws_review_followups")[0][0];
    assert!(p.contains("bad.txt must not exist"), "{p}");
    assert!(p.contains("if [ -e bad.txt ]"), "{p}");

    env.ws_run(&["--resume", &run, "--agent-cmd", &agent, "-q"])
        .expect(0);
    assert_eq!(status(&env, &run, "bad~fix1"), "completed");
    let (m, v) = merge(&env, &[&run, "--test", test]);
    m.expect(1);
    let x = excluded(&v);
    assert_eq!(
        (x[0].0.as_str(), x[0].1.as_str()),
        ("bad~fix1", "breaks-tests")
    );
    assert!(
        x[0].2.contains("no fix-up: attempts exhausted (1 of 1)"),
        "{}",
        x[0].2
    );
    assert_eq!(
        env.sql("SELECT followup_id FROM ws_review_followups").len(),
        1
    );
    let t = env.ws_report(&[&run, "--integration"]);
    assert!(
        t.stdout.contains("bad: exhausted (1 of at most 1 attempt)"),
        "{}",
        t.stdout
    );
    assert!(t
        .stdout
        .contains("bad → bad~fix1 (breaks-tests; breaks-tests)"));
}

#[test]
fn command_workstreams_are_never_fixed_up_and_fix_ups_are_off_by_default() {
    let env = env_with(&["p1", "p2"]);
    env.ws_cmd(
        "c1",
        "echo c1 > docs/guide.txt && git add -A && git commit -qm c1",
    );
    env.ws_cmd(
        "c2",
        "echo c2 > docs/guide.txt && git add -A && git commit -qm c2",
    );
    let agent = agent(&env, "resolve");
    let out = env.ws_run(&["--agents", "2", "--agent-cmd", &agent, "-q"]);
    out.expect(0);
    let run = out.run_id();
    // Off by default: left out as before, nothing recorded.
    let (m, v) = merge(&env, &[&run]);
    m.expect(1);
    assert_eq!(excluded(&v).len(), 2, "{v}");
    for (_, reason, detail) in excluded(&v) {
        assert_eq!(reason, "conflict");
        assert!(
            !detail.contains("fix-up") && !detail.contains("handed back"),
            "{detail}"
        );
    }
    assert!(env.sql("SELECT * FROM ws_review_followups").is_empty());
    // With ws.fixUp: the prompt workstream is handed back, the command one is not.
    env.git(&["config", "ws.fixUp", "2"]);
    let (m, v) = merge(&env, &[&run]);
    m.expect(1);
    for (id, _, detail) in excluded(&v) {
        if id.starts_with('c') {
            assert!(
                detail.contains("no fix-up: a command workstream has no agent to hand it back to"),
                "{detail}"
            );
        } else {
            assert!(
                detail.contains(&format!(
                    "handed back to its agent as {id}~fix1 (attempt 1 of 2"
                )),
                "{detail}"
            );
        }
    }
    let rows = env.sql("SELECT followup_id FROM ws_review_followups");
    assert_eq!(rows.len(), 1, "{rows:?}");
    env.git(&["config", "ws.fixUp", "many"]);
    let out = env
        .command("git")
        .args(["ws-merge", &run])
        .output()
        .unwrap();
    let m = Run::from(out);
    assert_eq!(m.code, 2, "{}", m.stderr);
    assert!(m.stderr.contains("ws.fixUp"), "{}", m.stderr);
}

/// The demo (`fixtures/demo/run-demo.sh --no-install`) ends with its fix-up scenario: a
/// README conflict between two prompt workstreams handed back by `git ws-merge --fix-up 1`,
/// resolved by the scripted agent from its prompt under `git ws-run --resume`, and
/// integrated by the next `git ws-merge`.
#[test]
fn the_demo_shows_a_conflict_fixed_up_by_its_agent() {
    let env = Env::new();
    let demo = env.scratch("demo");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo/run-demo.sh");
    let out = Run::from(
        env.command("sh")
            .arg(&script)
            .arg("--no-install")
            .arg(&demo)
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let o = &out.stdout;
    assert!(
        o.contains("handed back to its agent as tagline-tested~fix1 (attempt 1 of 1"),
        "{o}"
    );
    assert!(
        o.contains("tagline-tested → tagline-tested~fix1 (conflict; integrated)"),
        "{o}"
    );
    assert!(
        o.contains("==> the integrated title: # txtkit: small text tools (tested)"),
        "{o}"
    );
    // The main demo run is still the latest in its own repository.
    assert!(
        o.contains("git ws-merge finished with status 1, as expected"),
        "{o}"
    );
}

/// Fix-ups and the run's `--fix-up` are kept in PostgreSQL as in SQLite (the migration that
/// generalizes `ws_review_followups` runs on both).
#[test]
fn fix_ups_are_kept_in_postgres_too() {
    let Some(url) = crate::pgcluster::cluster().map(|c| c.database("fixups")) else {
        return;
    };
    let mut db =
        git_ws::ConsolidationDatabase::open(url.parse::<git_ws::db::DbLocation>().unwrap())
            .unwrap();
    let info = git_ws::model::RunInfo {
        run_id: "ma-run-pg-fixup".to_string(),
        started_at: chrono::Utc::now(),
        finished_at: None,
        agents: 1,
        base: "b".repeat(40),
        base_rev: "HEAD".into(),
        repo_root: "/repo".into(),
        rerun_of: None,
    };
    let run = db.begin_run(&info).unwrap();
    let rec = git_ws::fixup::FixupRecord {
        followup_id: "ws-1~fix1".into(),
        workstream_id: "ws-1".into(),
        attempt: 1,
        max_attempts: 2,
        reason: "breaks-tests".into(),
        detail: "breaks the tests (`make check`)".into(),
        integration_tip: "c".repeat(40),
        at: "2026-12-07T10:00:00Z".into(),
    };
    db.add_fixup(&run, &rec, "refs/ws/r/fixup/ws-1.fix1", "fix 'it'")
        .unwrap();
    assert_eq!(db.fixups(&run).unwrap(), vec![rec]);
    let f = db.review_followups(&run).unwrap();
    assert_eq!(
        (f[0].prompt.as_str(), f[0].who.as_str()),
        ("fix 'it'", "git-ws")
    );
    let id = db
        .add_review_followup(
            &run,
            "ws-1",
            "ws/r/ws-1",
            &[],
            &|id| id.to_string(),
            "bob",
            "t",
        )
        .unwrap();
    assert_eq!(id, "ws-1~review1");
    db.set_fixup_limit(&run, 2).unwrap();
    assert_eq!(db.fixup_limit(&run).unwrap(), Some(2));
}

/// With `--fix-up 2`, a fix-up that breaks the tests again becomes `~fix2`, started from the
/// tip with `~fix1`'s changes; after it the chain is exhausted and the report says so.
#[test]
fn a_fix_up_of_a_fix_up_counts_toward_the_originals_attempts() {
    let env = env_with(&["bad", "good"]);
    let agent = agent(&env, "idle");
    let test = "if [ -e bad.txt ]; then echo 'bad.txt must not exist'; exit 1; fi";
    let out = env.ws_run(&["--agents", "2", "--agent-cmd", &agent, "-q"]);
    out.expect(0);
    let run = out.run_id();
    let merge2 = |want: i32| {
        let (m, v) = merge(&env, &[&run, "--test", test, "--fix-up", "2"]);
        m.expect(want);
        v
    };
    assert!(excluded(&merge2(1))[0]
        .2
        .contains("as bad~fix1 (attempt 1 of 2"));
    env.ws_run(&["--resume", &run, "--agent-cmd", &agent, "-q"])
        .expect(0);
    let x = excluded(&merge2(1));
    assert_eq!(x[0].0, "bad~fix1");
    assert!(x[0].2.contains("as bad~fix2 (attempt 2 of 2"), "{}", x[0].2);
    let rows = env.sql(
        "SELECT workstream_id, attempt, start_branch FROM ws_review_followups WHERE followup_id = 'bad~fix2'",
    );
    assert_eq!(
        rows,
        vec![vec![
            "bad".to_string(),
            "2".to_string(),
            format!("refs/ws/{run}/fixup/bad.fix2")
        ]]
    );
    env.ws_run(&["--resume", &run, "--agent-cmd", &agent, "-q"])
        .expect(0);
    // The fix-up of the fix-up started from fix1's work: both fix-ups are in its history.
    let fixups = env.git(&["show", &format!("ws/{run}/bad.fix2:fixups.txt")]);
    assert_eq!(fixups, "bad~fix1\nbad~fix2\n");
    let x = excluded(&merge2(1));
    assert_eq!(x[0].0, "bad~fix2");
    assert!(
        x[0].2.contains("no fix-up: attempts exhausted (2 of 2)"),
        "{}",
        x[0].2
    );
    let t = env.ws_report(&[&run, "--integration"]);
    assert!(
        t.stdout.contains(
            "bad → bad~fix1 (breaks-tests; breaks-tests) → bad~fix2 (breaks-tests; breaks-tests)"
        ),
        "{}",
        t.stdout
    );
    assert!(t
        .stdout
        .contains("bad: exhausted (2 of at most 2 attempts)"));
}

/// A fix-up whose agent fails does not stop another attempt: the original, left out again,
/// becomes `~fix2`.
#[test]
fn a_failed_fix_up_is_followed_by_the_next_attempt() {
    let env = env_with(&["p1", "p2"]);
    let agent = agent(&env, "fail");
    let out = env.ws_run(&["--agents", "2", "--agent-cmd", &agent, "-q"]);
    out.expect(0);
    let run = out.run_id();
    let (m, v) = merge(&env, &[&run, "--fix-up", "2"]);
    m.expect(1);
    let left = excluded(&v)[0].0.clone();
    let out = env.ws_run(&["--resume", &run, "--agent-cmd", &agent, "-q"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(status(&env, &run, &format!("{left}~fix1")), "failed");
    let (m, v) = merge(&env, &[&run, "--fix-up", "2"]);
    m.expect(1);
    let x = excluded(&v);
    let again = x.iter().find(|x| x.0 == left).unwrap();
    assert_eq!(again.1, "conflict");
    assert!(
        again.2.contains(&format!(
            "handed back to its agent as {left}~fix2 (attempt 2 of 2"
        )),
        "{}",
        again.2
    );
    assert!(x
        .iter()
        .any(|x| x.0 == format!("{left}~fix1") && x.1 == "not-completed"));
    let t = env.ws_report(&[&run, "--integration"]);
    assert!(
        t.stdout.contains(&format!(
            "{left} → {left}~fix1 (conflict; failed) → {left}~fix2 (conflict; pending)"
        )),
        "{}",
        t.stdout
    );
}

#[test]
fn with_integrate_a_conflict_is_fixed_up_in_the_same_run_and_integrated_in_its_place() {
    let env = env_with(&["p1", "p2"]);
    let agent = agent(&env, "resolve");
    let out = env.ws_run(&[
        "--agents",
        "2",
        "--agent-cmd",
        &agent,
        "--integrate",
        "--test",
        "test ! -e bad.txt",
        "--fix-up",
        "1",
        "--format",
        "json",
    ]);
    let v: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", out.stdout, out.stderr));
    let run = v["run_id"].as_str().unwrap().to_string();
    let it = &v["integration"];
    let x = excluded(it);
    assert_eq!(x.len(), 1, "{it:#}\n{}", out.stderr);
    let (left, reason, detail) = &x[0];
    assert_eq!(reason, "conflict");
    let fix = format!("{left}~fix1");
    assert!(
        detail.contains(&format!(
            "handed back to its agent as {fix} (attempt 1 of 1; it runs in this run)"
        )),
        "{detail}"
    );
    // The fix-up ran in this run (no --resume), and the integration took it in.
    assert_eq!(status(&env, &run, &fix), "completed");
    let names = merged(it);
    assert!(names.contains(&fix), "{names:?}\n{}", out.stderr);
    assert_eq!(names.len(), 2, "{names:?}");
    let file = env.git(&["show", &format!("ws/{run}/integration:src/lib.txt")]);
    assert_eq!(file.lines().nth(1), Some("TWO by p1 and p2"));
    assert!(
        prompt_of(&env, &fix).contains("### src/lib.txt"),
        "the prompt carries the conflict"
    );
    // Nothing left for --resume; the tip the run ends with was tested and passes.
    let pending = env.sql(&format!(
        "SELECT COUNT(*) FROM ws_review_followups f WHERE f.run_id = '{run}' AND NOT EXISTS (SELECT 1 FROM agent_results r WHERE r.run_id = f.run_id AND r.workstream_id = f.followup_id)"
    ));
    assert_eq!(pending[0][0], "0");
    assert!(
        out.stderr.contains(&format!("integration: fix-up: {left}")),
        "{}",
        out.stderr
    );
    out.expect(0);
}

#[test]
fn pruning_every_branch_of_a_run_prunes_its_fix_up_start_points_too() {
    let env = env_with(&["p1", "p2"]);
    let agent = agent(&env, "resolve");
    let out = env.ws_run(&["--agents", "2", "--agent-cmd", &agent, "-q"]);
    out.expect(0);
    let run = out.run_id();
    let (m, _) = merge(&env, &[&run, "--fix-up", "1"]);
    m.expect(1);
    let refs = || {
        env.git(&[
            "for-each-ref",
            "--format=%(refname)",
            &format!("refs/ws/{run}/fixup/"),
        ])
    };
    assert_eq!(refs().lines().count(), 1, "{}", refs());
    // Only some of the run's branches go (the unmerged ones stay): the start point stays.
    let some = env.ws_run(&["--prune-branches"]);
    some.expect(0);
    assert_eq!(refs().lines().count(), 1, "{}", some.stdout);
    let all = env.ws_run(&["--prune-branches", "--all"]);
    all.expect(0);
    assert!(refs().trim().is_empty(), "{}", all.stdout);
    assert!(
        all.stdout.contains("and 1 fix-up start ref(s)"),
        "{}",
        all.stdout
    );
}
