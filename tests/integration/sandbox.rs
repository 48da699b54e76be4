//! The sandbox (issue 19 part 1) on real runs under the default `ws.sandbox = auto`
//! (Landlock on this kernel): each attack an agent could make on the user's repository is
//! denied and the user's refs, `HEAD`, index, worktree, config and hooks stay byte-identical;
//! TCP is refused under `ws.sandbox.network = none` and allowed under `all`; and normal work
//! (commits, git-ws's own commit of leftovers, a preset CLI's state, a setup command's cache,
//! a `ws-merge --test`) still succeeds inside it. Without Landlock these tests skip, saying
//! so, unless `CI=true`, where they fail.

use crate::common::{status, Env};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The kernel's Landlock ABI (0: none).
fn landlock_abi() -> i64 {
    // SAFETY: the version query (flag 1) takes no pointer.
    unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            1u32,
        )
    }
}

/// `true` when the test must skip: no Landlock here (and not on CI, where that fails).
fn no_landlock(min_abi: i64) -> bool {
    if landlock_abi() >= min_abi {
        return false;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true: the sandbox tests need Landlock ABI {min_abi}, the kernel offers {}",
        landlock_abi()
    );
    eprintln!("skipped: the kernel lacks Landlock ABI {min_abi}");
    true
}

/// A repository with the sandbox as a user gets it: the harness's `allowWrite` of its
/// temporary directory taken away.
fn sandboxed() -> Env {
    let env = Env::new();
    env.git(&["config", "--unset-all", "ws.sandbox.allowWrite"]);
    env
}

/// Everything of the user's an agent must not change, byte for byte: each file of the
/// common dir outside git-ws's own places (refs, `HEAD`, index, config, hooks, info,
/// packed-refs, logs), the worktree's files, and the home.
fn user_state(env: &Env) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(dir: &Path, skip: &dyn Fn(&Path) -> bool, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if skip(&p) {
                continue;
            }
            if p.is_dir() {
                out.insert(p.clone(), b"<dir>".to_vec());
                walk(&p, skip, out);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap_or_default());
            }
        }
    }
    let git = env.repo.join(".git");
    let own = |p: &Path| {
        [
            "objects",
            "ws",
            "worktrees",
            "refs/heads/ws",
            "logs/refs/heads/ws",
        ]
        .iter()
        .any(|o| p.starts_with(git.join(o)))
            || p.starts_with(env.repo.join(".state"))
            || p.starts_with(env.repo.join("reports"))
    };
    let mut out = BTreeMap::new();
    walk(&env.repo, &own, &mut out);
    walk(&env.home, &|_| false, &mut out);
    out
}

/// Tells which entries differ.
fn assert_same(before: &BTreeMap<PathBuf, Vec<u8>>, after: &BTreeMap<PathBuf, Vec<u8>>) {
    let changed: Vec<&PathBuf> = before
        .keys()
        .chain(after.keys())
        .filter(|k| before.get(*k) != after.get(*k))
        .collect();
    assert!(
        changed.is_empty(),
        "changed outside the sandbox: {changed:?}"
    );
}

fn log(env: &Env, run: &str, name: &str) -> String {
    std::fs::read_to_string(env.repo.join(".state/logs").join(run).join(name)).unwrap_or_default()
}

/// A repository with two commits on `main`, a bare `origin` with `main` pushed, and
/// `agent-1` as the only agent.
fn repo() -> (Env, PathBuf) {
    let env = sandboxed();
    env.write("b.txt", "b\n");
    env.git(&["add", "b.txt"]);
    env.git(&["commit", "-q", "-m", "second"]);
    let origin = env.scratch("origin.git");
    env.git(&["init", "-q", "--bare", origin.to_str().unwrap()]);
    env.git(&["remote", "add", "origin", origin.to_str().unwrap()]);
    env.git(&["push", "-q", "origin", "main"]);
    (env, origin)
}

#[test]
fn every_attack_on_the_users_repository_is_denied_and_nothing_of_theirs_changes() {
    if no_landlock(1) {
        return;
    }
    let (env, origin) = repo();
    let attacks = [
        // The pool is beside the repository: its parent is the test's own directory.
        ("escape-git", "echo x > \"$(git rev-parse --git-common-dir)/escaped\""),
        ("escape-root", "echo x > \"$(git rev-parse --git-common-dir)/../escaped\""),
        ("escape-pool", "echo x > ../../escaped"),
        ("escape-home", "echo x > \"$HOME/escaped\""),
        ("rewind-main", "git update-ref refs/heads/main HEAD~1"),
        ("delete-main", "git update-ref -d refs/heads/main"),
        (
            "plant-hook",
            "printf '#!/bin/sh\\nexit 1\\n' > \"$(git rev-parse --git-common-dir)/hooks/pre-commit\"",
        ),
        ("bare", "git config core.bare true"),
        ("hooks-path", "git config core.hooksPath /x"),
        (
            "move-main",
            "git checkout -q --ignore-other-worktrees main && git commit -q --allow-empty -m evil",
        ),
        ("push", "git push -q origin HEAD:refs/heads/evil"),
    ];
    for (id, cmd) in attacks {
        env.ws_cmd(id, cmd);
    }
    let before = user_state(&env);
    let status_before = env.git(&["status", "--porcelain"]);
    let origin_before = env.git(&["--git-dir", origin.to_str().unwrap(), "for-each-ref"]);
    let out = env.ws_run(&["--agents", "1"]);
    let run = out.run_id();
    for (id, _) in attacks {
        assert_eq!(status(&env, &run, id), "failed", "{id} was not stopped");
        let l = log(&env, &run, &format!("{id}.log"));
        assert!(
            l.starts_with("git-ws: sandbox landlock (ABI "),
            "{id}: the log does not start with the policy:\n{l}"
        );
        assert!(
            // A push's receive-pack runs in the sandbox too: it cannot create its object dir.
            l.contains("Permission denied") || l.contains("unable to create temporary object"),
            "{id}: no denial in its log:\n{l}"
        );
    }
    // The run says what was denied: each workstream's warnings.
    for id in ["escape-git", "rewind-main", "bare", "plant-hook"] {
        let w = crate::common::result_json(&env, &run, id, "warnings");
        assert!(
            w.to_string().contains("sandbox (landlock) denied:"),
            "{id}: {w}"
        );
    }
    assert_same(&before, &user_state(&env));
    for p in [
        env.repo.join(".git/escaped"),
        env.repo.join("escaped"),
        env.repo.parent().unwrap().join("escaped"),
        env.home.join("escaped"),
    ] {
        assert!(!p.exists(), "{} was written", p.display());
    }
    assert_eq!(
        env.git(&["--git-dir", origin.to_str().unwrap(), "for-each-ref"]),
        origin_before,
        "the remote changed"
    );
    assert_eq!(env.git(&["status", "--porcelain"]), status_before);
    // The user's next commit runs no planted hook and lands on main.
    env.git(&["commit", "-q", "--allow-empty", "-m", "mine"]);
    assert_eq!(
        env.git(&["log", "-1", "--format=%s", "main"]).trim(),
        "mine"
    );
}

#[test]
fn with_the_sandbox_off_the_same_escape_succeeds() {
    // Shows that the attack test can fail: the per-workstream override turns it off.
    let env = sandboxed();
    env.ws(
        "free",
        json!({"id": "free", "command": "echo x > \"$(git rev-parse --git-common-dir)/escaped\"", "sandbox": "off"}),
    );
    let out = env.ws_run(&["--agents", "1"]);
    assert_eq!(status(&env, &out.run_id(), "free"), "completed");
    assert!(env.repo.join(".git/escaped").exists());
    assert!(log(&env, &out.run_id(), "free.log").starts_with("git-ws: sandbox off\n"));
}

/// A loopback TCP listener counting the connections it gets.
fn listener() -> (std::net::TcpListener, u16) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

fn connections(l: &std::net::TcpListener) -> usize {
    let mut n = 0;
    while l.accept().is_ok() {
        n += 1;
    }
    n
}

#[test]
fn tcp_is_refused_under_network_none_and_allowed_under_all_and_listed_ports() {
    if no_landlock(4) {
        return;
    }
    let env = sandboxed();
    let (l, port) = listener();
    let connect = format!("bash -c 'echo hi > /dev/tcp/127.0.0.1/{port}'");
    env.ws_cmd("connect", &connect);
    env.git(&["config", "ws.sandbox.network", "none"]);
    let out = env.ws_run(&["--agents", "1"]);
    assert_eq!(status(&env, &out.run_id(), "connect"), "failed");
    assert_eq!(connections(&l), 0, "a connection got through network none");
    let l1 = log(&env, &out.run_id(), "connect.log");
    assert!(l1.contains("network none"), "{l1}");

    env.git(&["config", "ws.sandbox.network", &format!("443,{port}")]);
    let out = env.ws_run(&["--agents", "1"]);
    assert_eq!(status(&env, &out.run_id(), "connect"), "completed");
    assert_eq!(connections(&l), 1);

    env.git(&["config", "ws.sandbox.network", "443"]);
    let out = env.ws_run(&["--agents", "1"]);
    assert_eq!(status(&env, &out.run_id(), "connect"), "failed");
    assert_eq!(connections(&l), 0);

    env.git(&["config", "ws.sandbox.network", "all"]);
    let out = env.ws_run(&["--agents", "1"]);
    assert_eq!(status(&env, &out.run_id(), "connect"), "completed");
    assert_eq!(connections(&l), 1);
}

#[test]
fn normal_work_succeeds_inside_the_sandbox() {
    if no_landlock(1) {
        return;
    }
    let env = sandboxed();
    // A fake preset CLI that writes its state directory and its home's state file.
    let bin = env.scratch("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let gemini = bin.join("gemini");
    std::fs::write(
        &gemini,
        "#!/bin/sh\nmkdir -p \"$HOME/.gemini/tmp\" && echo session > \"$HOME/.gemini/tmp/s\" && echo done > gem.txt\n",
    )
    .unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(&gemini).unwrap().permissions(),
        0o755,
    );
    std::fs::set_permissions(&gemini, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    env.git(&[
        "config",
        "ws.setupCommand",
        "mkdir -p .cache && echo filled > .cache/deps && echo t > \"$TMPDIR/setup\"",
    ]);
    env.git(&["config", "ws.keepIgnored", ".cache"]);
    env.write(".gitignore", ".cache/\n");
    env.git(&["add", ".gitignore"]);
    env.git(&["commit", "-q", "-m", "ignore the cache"]);
    let extra = env.scratch("extra");
    std::fs::create_dir_all(&extra).unwrap();
    env.git(&["config", "ws.sandbox.allowWrite", extra.to_str().unwrap()]);
    env.ws_cmd(
        "commits",
        "test -f .cache/deps && echo a > a.txt && git add a.txt && git commit -q -m 'add a' && echo tmp > \"$TMPDIR/x\"",
    );
    env.ws(
        "leftovers",
        json!({"id": "leftovers", "command": format!("echo l > l.txt && echo e > {}/e", extra.display()), "test": "test -f l.txt"}),
    );
    env.ws(
        "preset",
        json!({"id": "preset", "prompt": "do it", "agent": "gemini"}),
    );
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = env
        .command("git")
        .env(
            "PATH",
            format!("{}:{path}", crate::common::bin_dir().display()),
        )
        .args(["ws-run", "--agents", "1"])
        .output()
        .unwrap();
    let out = crate::common::Run::from(out);
    let run = out.run_id();
    for id in ["commits", "leftovers", "preset"] {
        assert_eq!(
            status(&env, &run, id),
            "completed",
            "{id}: {}\n{}",
            log(&env, &run, &format!("{id}.log")),
            out.stderr
        );
    }
    let setup = log(&env, &run, "setup-agent-1.log");
    assert!(setup.contains("git-ws: sandbox landlock"), "{setup}");
    assert!(env.home.join(".gemini/tmp/s").exists());
    assert!(extra.join("e").exists());
    let show = |rev: &str| env.git(&["show", "--stat", "--format=%s", rev]);
    assert!(show(&format!("ws/{run}/commits")).contains("a.txt"));
    assert!(show(&format!("ws/{run}/leftovers")).contains("l.txt"));
    assert!(show(&format!("ws/{run}/preset")).contains("gem.txt"));
    // ws-merge's test runs in the sandbox too, and passes.
    let merged = env.ws_merge(&[
        &run,
        "--test",
        "echo ok > \"$TMPDIR/merge-test\" && echo built > build.out",
    ]);
    assert_eq!(merged.code, 0, "{}\n{}", merged.stdout, merged.stderr);
    let logs = env.repo.join(".state/logs").join(&run);
    let tests: String = std::fs::read_dir(&logs)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("integration-"))
        .flat_map(|e| std::fs::read_dir(e.path()).unwrap().flatten())
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .collect();
    assert!(tests.contains("git-ws: sandbox landlock"), "{tests}");
}

#[test]
fn a_bad_sandbox_setting_names_the_key() {
    let env = sandboxed();
    env.ws_cmd("a", "true");
    env.git(&["config", "ws.sandbox.network", "lots"]);
    let out = env.ws_run(&["--agents", "1"]);
    let run = out.run_id();
    let all = format!("{}{}{}", out.stdout, out.stderr, log(&env, &run, "a.log"));
    assert!(
        all.contains("ws.sandbox.network = \"lots\""),
        "exit {}: {all}",
        out.code
    );
}

/// Whether bubblewrap runs here (on PATH).
fn bwrap_runs() -> bool {
    std::process::Command::new("bwrap")
        .args(["--ro-bind", "/", "/", "--dev", "/dev", "true"])
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn under_bwrap_the_escapes_are_denied_and_commits_still_land() {
    if !bwrap_runs() {
        eprintln!("skipped: bubblewrap (bwrap) is not installed or cannot run");
        return;
    }
    let (env, _origin) = repo();
    env.git(&["config", "ws.sandbox", "bwrap"]);
    env.ws_cmd(
        "escape-git",
        "echo x > \"$(git rev-parse --git-common-dir)/escaped\"",
    );
    env.ws_cmd("rewind-main", "git update-ref refs/heads/main HEAD~1");
    env.ws_cmd("bare", "git config core.bare true");
    env.ws_cmd(
        "commits",
        "echo a > a.txt && git add a.txt && git commit -q -m 'add a' && echo t > \"$TMPDIR/t\" && echo p > /tmp/p",
    );
    let before = user_state(&env);
    let out = env.ws_run(&["--agents", "1"]);
    let run = out.run_id();
    for id in ["escape-git", "rewind-main", "bare"] {
        assert_eq!(status(&env, &run, id), "failed", "{id} was not stopped");
        let l = log(&env, &run, &format!("{id}.log"));
        assert!(
            l.starts_with("git-ws: sandbox bwrap: writable "),
            "{id}: {l}"
        );
        assert!(l.contains("Read-only file system"), "{id}: {l}");
    }
    assert_eq!(
        status(&env, &run, "commits"),
        "completed",
        "{}",
        log(&env, &run, "commits.log")
    );
    assert!(
        !Path::new("/tmp/p").exists(),
        "/tmp is not private under bwrap"
    );
    assert_same(&before, &user_state(&env));
    assert!(env
        .git(&[
            "show",
            "--stat",
            "--format=%s",
            &format!("ws/{run}/commits")
        ])
        .contains("a.txt"));
}
