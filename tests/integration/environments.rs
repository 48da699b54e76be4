//! Bad environments and bad invocations: exit 2, one clear sentence, nothing written.

use crate::common::Env;

#[test]
fn not_a_git_repository() {
    let env = Env::new();
    let outside = env.scratch("plain");
    std::fs::create_dir_all(&outside).unwrap();
    let out = env
        .command(
            crate::common::bin_dir()
                .join("git-ws-run")
                .to_str()
                .unwrap(),
        )
        .current_dir(&outside)
        .output()
        .unwrap();
    let run = crate::common::Run::from(out);
    run.expect(2);
    assert!(
        run.stderr.contains("not inside a git repository"),
        "{}",
        run.stderr
    );
}

#[test]
fn missing_workstreams_directory() {
    let env = Env::new();
    let out = env.ws_run(&[]);
    out.expect(2);
    assert!(out.stderr.contains("workstreams"), "{}", out.stderr);
    assert!(!env.db_path().exists(), "nothing written");
}

#[test]
fn zero_agents_and_unresolvable_base() {
    let env = Env::new();
    env.ws_cmd("a", "true");
    let out = env.ws_run(&["--agents", "0"]);
    out.expect(2);
    assert!(out.stderr.contains("--agents"), "{}", out.stderr);
    let out = env.ws_run(&["--base", "no-such-branch"]);
    out.expect(2);
    assert!(out.stderr.contains("no-such-branch"), "{}", out.stderr);
    assert!(!env.db_path().exists(), "nothing written");
}

#[test]
fn unknown_only_id_is_a_usage_error() {
    let env = Env::new();
    env.ws_cmd("a", "true");
    let out = env.ws_run(&["--only", "a,zzz"]);
    out.expect(2);
    assert!(out.stderr.contains("zzz"), "{}", out.stderr);
}

#[test]
fn a_database_path_that_is_not_sqlite_is_left_untouched() {
    let env = Env::new();
    env.ws_cmd("a", "true");
    let p = env.scratch("notes.db");
    let bytes = b"these are my notes, not a database\n".repeat(100);
    std::fs::write(&p, &bytes).unwrap();
    let out = env.ws_run(&["--db", p.to_str().unwrap()]);
    out.expect(2);
    assert!(out.stderr.contains("notes.db"), "{}", out.stderr);
    assert_eq!(std::fs::read(&p).unwrap(), bytes);
    assert!(env.git(&["branch", "--list", "ws/*"]).trim().is_empty());
}

#[test]
fn git_config_supplies_defaults_and_flags_override() {
    let env = Env::new();
    for i in 1..=2 {
        env.ws_cmd(&format!("w{i}"), "sleep 0.5");
    }
    env.git(&["config", "ws.agents", "1"]);
    let out = env.ws_run(&[]);
    out.expect(0);
    let run = out.run_id();
    let agents = env.sql(&format!(
        "SELECT DISTINCT agent_id FROM agent_results WHERE run_id = '{run}'"
    ));
    assert_eq!(agents, vec![vec!["agent-1"]]);
    let out = env.ws_run(&["--agents", "2"]);
    out.expect(0);
    let run = out.run_id();
    let agents = env.sql(&format!(
        "SELECT DISTINCT agent_id FROM agent_results WHERE run_id = '{run}'"
    ));
    assert_eq!(agents.len(), 2);
}

#[test]
fn run_ids_get_a_suffix_on_a_clash() {
    let env = Env::new();
    env.ws_cmd("a", "true");
    let mut ids = Vec::new();
    for _ in 0..3 {
        let out = env.ws_run(&["--agents", "1"]);
        out.expect(0);
        ids.push(out.run_id());
    }
    let unique: std::collections::BTreeSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), 3, "{ids:?}");
    for id in &ids {
        assert!(id.starts_with("ma-run-2"), "{id}");
    }
}
