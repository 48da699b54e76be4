//! Ctrl-C as a terminal sends it: SIGINT to the whole foreground process group of
//! `git ws-run` (git's wrapper and `git-ws-run` under it), sometimes twice within a few
//! milliseconds (git forwarding its copy). One keypress must be one interrupt: exit 130,
//! the run `interrupted` and resumable. `GIT_WS_LOOPS` raises the iterations
//! (`scripts/stress.sh sigint N`).

use crate::common::{loops, signal_group, wait_until, Env};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::time::Duration;

/// One iteration: a run of two slow workstreams through `git ws-run` in its own process
/// group; SIGINT to the group (twice within `gap` when given) once both run. Returns a
/// problem, if any.
fn one_ctrl_c(i: usize, double: Option<Duration>) -> Option<String> {
    let env = Env::new();
    let flags = env.scratch("flags");
    std::fs::create_dir_all(&flags).unwrap();
    let f = flags.display();
    for id in ["s1", "s2"] {
        env.ws_cmd(
            id,
            &format!("touch {f}/$WS_ID; test -f {f}/go || sleep 30; echo $WS_ID > $WS_ID.txt"),
        );
    }
    // A third waits for an agent: the interrupt skips it, and --resume runs it.
    env.ws_cmd("s3", "echo s3 > s3.txt");
    let stderr_path = env.scratch("ws-run.stderr");
    let stdout_path = env.scratch("ws-run.stdout");
    let mut child = env
        .command("git")
        .args(["ws-run", "--agents", "2", "--grace", "300ms"])
        .process_group(0)
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let pgid = child.id();
    wait_until(Duration::from_secs(30), "both workstreams to run", || {
        flags.join("s1").exists() && flags.join("s2").exists()
    });
    signal_group(pgid, libc::SIGINT);
    if let Some(gap) = double {
        std::thread::sleep(gap);
        signal_group(pgid, libc::SIGINT);
    }
    let start = std::time::Instant::now();
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            // git re-raises the SIGINT it got once its child has exited: a shell says 130.
            break s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0));
        }
        if start.elapsed() > Duration::from_secs(30) {
            signal_group(pgid, libc::SIGKILL);
            let _ = child.wait();
            return Some(format!("iteration {i}: did not exit within 30 s"));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    if code != 130 || stderr.contains("interrupted again") {
        return Some(format!("iteration {i}: exit {code}:\n{stderr}"));
    }
    let runs = env.sql("SELECT run_id, state FROM ws_runs");
    if runs.len() != 1 || runs[0][1] != "interrupted" {
        return Some(format!("iteration {i}: runs {runs:?}:\n{stderr}"));
    }
    let run_id = runs[0][0].clone();
    // The advice names this run and --resume, never a placeholder or --rerun-failed.
    let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    if stderr.contains("--resume RUN")
        || !stdout.contains(&format!("git ws-run --resume {run_id}"))
        || stdout.contains("--rerun-failed")
    {
        return Some(format!("iteration {i}: advice:\n{stdout}{stderr}"));
    }
    // So does the report: what the interrupt stopped or skipped is --resume'd.
    let report = env.ws_report(&[&run_id, "--format", "markdown"]);
    if !report
        .stdout
        .contains(&format!("git ws-run --resume {run_id}"))
        || report.stdout.contains("--rerun-failed")
    {
        return Some(format!("iteration {i}: report advice:\n{}", report.stdout));
    }
    std::fs::write(flags.join("go"), "").unwrap();
    let resumed = env.ws_run(&["--resume", &run_id]);
    if resumed.code != 0 {
        return Some(format!(
            "iteration {i}: --resume {run_id} exited {}:\n{}{}",
            resumed.code, resumed.stdout, resumed.stderr
        ));
    }
    let done = env.sql(&format!(
        "SELECT state FROM ws_runs WHERE run_id = '{run_id}'"
    ));
    (done != vec![vec!["finished".to_string()]])
        .then(|| format!("iteration {i}: after --resume: {done:?}"))
}

#[test]
fn one_ctrl_c_to_the_process_group_of_git_ws_run_is_one_interrupt() {
    let n = loops(5);
    let mut problems = Vec::new();
    for i in 0..n {
        // Alternate: the group signal alone, and the group signal plus a forwarded copy.
        let double = (i % 2 == 1).then(|| Duration::from_millis(1 + (i as u64 % 5)));
        problems.extend(one_ctrl_c(i, double));
    }
    eprintln!(
        "sigint loop: {n} Ctrl-Cs through git ws-run: {} problem(s)",
        problems.len()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
