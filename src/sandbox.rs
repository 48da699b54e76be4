//! The sandbox of every command git-ws starts on a workstream's behalf (the agent or preset,
//! its test, the setup command, `git ws-merge`'s test): [`for_slot`] finds the worktree's
//! paths and settings and prepares the mechanism once per command — a Landlock ruleset
//! (`landlock` crate), or a bubblewrap command line — and [`argv`] / [`apply`] put it on the
//! command the process supervisor spawns. The policy itself is `ws_core::sandbox`.
//!
//! Landlock is applied between fork and exec (`pre_exec`): the ruleset is built and its
//! file descriptor opened in the parent, so the child does only two async-signal-safe
//! system calls (`prctl(PR_SET_NO_NEW_PRIVS)` and `landlock_restrict_self`). The restriction
//! holds for the command and everything it starts, and never for git-ws itself.

use crate::agents::Preset;
use crate::config::{Config, SANDBOX_ALLOW_WRITE};
use std::collections::HashMap;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Once};
use ws_core::sandbox::{self as policy, Grant, Mechanism, Mode, Network, Places, Writable};

/// `ws.sandbox`, `ws.sandbox.network`, `ws.sandbox.allowWrite` of one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub mode: Mode,
    pub network: Network,
    /// Absolute paths.
    pub allow_write: Vec<PathBuf>,
}

impl Settings {
    /// The settings in `config` (relative `allowWrite` paths against `root`, `~/` against
    /// the home). Errors name the key and its value.
    pub fn read(config: &Config, root: &Path) -> Result<Settings, crate::error::Error> {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let mut allow_write = Vec::new();
        for raw in config.sandbox_allow_write() {
            let p = raw.trim();
            let path = match (p.strip_prefix("~/"), &home) {
                (Some(rest), Some(h)) => h.join(rest),
                (Some(_), None) => {
                    return Err(crate::error::Error::new(format!(
                        "git config {SANDBOX_ALLOW_WRITE} = {raw:?}: HOME is not set"
                    )))
                }
                _ => root.join(p),
            };
            allow_write.push(path);
        }
        Ok(Settings {
            mode: config.sandbox()?,
            network: config.sandbox_network()?,
            allow_write,
        })
    }
}

/// The settings of the repository whose common dir is `common`, read once per process
/// from the repository of `worktree`.
fn settings_of(common: &Path, worktree: &Path) -> Result<Settings, String> {
    static CACHE: Mutex<Option<HashMap<PathBuf, Result<Settings, String>>>> = Mutex::new(None);
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    let map = cache.get_or_insert_with(HashMap::new);
    map.entry(common.to_path_buf())
        .or_insert_with(|| {
            let repo = ws_git::Repo::discover(worktree).map_err(|e| e.to_string())?;
            let config = Config::read(&repo.config().map_err(|e| e.to_string())?);
            Settings::read(&config, &repo.paths().root).map_err(|e| e.to_string())
        })
        .clone()
}

/// A prepared sandbox, shared by the clones of a command's spec.
#[derive(Debug, Clone)]
pub struct Sandbox(Arc<Prepared>);

#[derive(Debug)]
struct Prepared {
    how: How,
    /// The policy in force, the first line of the command's log.
    line: String,
    /// The slot's private `TMPDIR`.
    tmpdir: Option<PathBuf>,
    /// The preset CLI the command runs, if any.
    preset: Option<Preset>,
}

#[derive(Debug)]
enum How {
    /// Runs unconfined (`off`, or `auto` with no mechanism available).
    None,
    /// The ruleset's file descriptor, applied in the child.
    Landlock(OwnedFd),
    /// `bwrap …` to put before the command.
    Bwrap(Vec<String>),
    /// Cannot be honoured (a mechanism named but missing, a bad setting): the command is
    /// not started.
    Refused(String),
}

impl Sandbox {
    fn new(how: How, line: String, tmpdir: Option<PathBuf>) -> Sandbox {
        Sandbox(Arc::new(Prepared {
            how,
            line,
            tmpdir,
            preset: None,
        }))
    }

    fn for_preset(self, preset: Option<Preset>) -> Sandbox {
        let Ok(mut p) = Arc::try_unwrap(self.0) else {
            unreachable!("a new sandbox has one owner")
        };
        p.preset = preset;
        Sandbox(Arc::new(p))
    }

    /// The policy line the log starts with.
    pub fn line(&self) -> &str {
        &self.0.line
    }

    /// The mechanism in force, if any.
    pub fn mechanism(&self) -> Option<Mechanism> {
        match self.0.how {
            How::Landlock(_) => Some(Mechanism::Landlock),
            How::Bwrap(_) => Some(Mechanism::Bwrap),
            How::None | How::Refused(_) => None,
        }
    }
}

/// The paths of the worktree at `worktree`: its admin dir and common dir (from its `.git`
/// file), and the branch checked out there.
pub fn places(worktree: &Path) -> Places {
    let dot_git = worktree.join(".git");
    let (admin_dir, common_dir) = match std::fs::read_to_string(&dot_git) {
        Ok(text) => {
            let admin = text
                .lines()
                .find_map(|l| l.strip_prefix("gitdir:"))
                .map(|g| worktree.join(g.trim()));
            let common = admin.as_ref().map(|a| {
                std::fs::read_to_string(a.join("commondir"))
                    .map(|c| a.join(c.trim()))
                    .unwrap_or_else(|_| a.clone())
            });
            (admin, common)
        }
        // A main worktree: `.git` is the directory.
        Err(_) => (None, Some(dot_git.clone())),
    };
    let canon = |p: PathBuf| std::fs::canonicalize(&p).unwrap_or(p);
    let admin_dir = admin_dir.map(canon);
    let common_dir = common_dir.map(canon);
    let head_dir = admin_dir.clone().or_else(|| common_dir.clone());
    let branch = head_dir
        .and_then(|d| std::fs::read_to_string(d.join("HEAD")).ok())
        .and_then(|h| h.trim().strip_prefix("ref:").map(|r| r.trim().to_string()));
    let tmpdir = admin_dir
        .clone()
        .unwrap_or_else(|| dot_git.clone())
        .join("tmp");
    Places {
        worktree: canon(worktree.to_path_buf()),
        admin_dir,
        common_dir,
        branch,
        tmpdir,
        home: std::env::var_os("HOME").map(PathBuf::from),
        codex_home: std::env::var_os("CODEX_HOME").map(PathBuf::from),
        extra: Vec::new(),
        files: Vec::new(),
    }
}

/// The sandbox of a command run in pool worktree `worktree` for a workstream (`mode`: its
/// `"sandbox"` field; `preset`: the preset CLI it runs, whose state stays writable), with
/// the repository's settings. Never fails: what cannot be honoured is a sandbox that
/// refuses to start the command, saying why.
pub fn for_slot(worktree: &Path, mode: Option<Mode>, preset: Option<Preset>) -> Option<Sandbox> {
    for_attempt(worktree, mode, preset, None)
}

/// [`for_slot`] for a workstream's attempt, whose `WS_METRICS` file (`metrics`) stays
/// writable: it is created empty first (Landlock grants existing paths only; an empty file
/// reports nothing).
pub fn for_attempt(
    worktree: &Path,
    mode: Option<Mode>,
    preset: Option<Preset>,
    metrics: Option<&String>,
) -> Option<Sandbox> {
    let mut places = places(worktree);
    if let Some(m) = metrics {
        let m = PathBuf::from(m);
        if std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&m)
            .is_ok()
        {
            places.files.push(m);
        }
    }
    let common = places.common_dir.clone().unwrap_or_default();
    let settings = match settings_of(&common, worktree) {
        Ok(s) => s,
        Err(e) => return Some(Sandbox::new(How::Refused(e.clone()), e, None)),
    };
    places.extra = settings.allow_write.clone();
    Some(
        prepare(
            &places,
            mode.unwrap_or(settings.mode),
            &settings.network,
            preset,
        )
        .for_preset(preset),
    )
}

/// The sandbox for `places` under `mode` and `network`: the first mechanism of the mode
/// that is available here.
pub fn prepare(places: &Places, mode: Mode, network: &Network, preset: Option<Preset>) -> Sandbox {
    if mode == Mode::Off {
        return Sandbox::new(How::None, "git-ws: sandbox off".to_string(), None);
    }
    if let Err(e) = std::fs::create_dir_all(&places.tmpdir) {
        let why = format!(
            "git-ws: sandbox: cannot create the private TMPDIR {}: {e}",
            places.tmpdir.display()
        );
        return Sandbox::new(How::Refused(why.clone()), why, None);
    }
    let writable = policy::writable(places, preset);
    for mechanism in mode.mechanisms() {
        let prepared = match mechanism {
            Mechanism::Landlock => landlock_ruleset(&writable, network).map(|(fd, note)| {
                let line = policy::describe(&format!("landlock ({note})"), &writable, network);
                (How::Landlock(fd), line)
            }),
            Mechanism::Bwrap => bwrap_prefix(places, &writable, network).map(|(argv, note)| {
                let line = policy::describe(&format!("bwrap{note}"), &writable, network);
                (How::Bwrap(argv), line)
            }),
        };
        if let Ok((how, line)) = prepared {
            return Sandbox::new(how, line, Some(places.tmpdir.clone()));
        }
    }
    let why = match mode {
        Mode::Landlock => "the kernel does not offer Landlock".to_string(),
        Mode::Bwrap => "bubblewrap (bwrap) is not installed or cannot run".to_string(),
        _ => "neither Landlock nor bubblewrap is available".to_string(),
    };
    if mode.falls_back() {
        static WARNED: Once = Once::new();
        WARNED.call_once(|| {
            eprintln!(
                "git-ws: warning: no sandbox: {why}; agents run with your full rights (ws.sandbox)"
            )
        });
        Sandbox::new(
            How::None,
            format!("git-ws: sandbox none ({why})"),
            Some(places.tmpdir.clone()),
        )
    } else {
        let msg = format!("ws.sandbox = {}: {why}", mode.as_str());
        Sandbox::new(How::Refused(msg.clone()), format!("git-ws: {msg}"), None)
    }
}

/// The Landlock ABI the kernel offers (0: none).
pub fn landlock_abi() -> i32 {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_ulong = 1;
    // SAFETY: the version query takes no pointer (null, size 0).
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    v.max(0) as i32
}

/// The Landlock ruleset of `writable` and `network`, created (not applied): its file
/// descriptor and a note on what the kernel enforces. `Err` when the kernel has none.
fn landlock_ruleset(writable: &[Writable], network: &Network) -> Result<(OwnedFd, String), String> {
    use landlock::{
        Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, NetPort, PathBeneath,
        PathFd, Ruleset, RulesetAttr, RulesetCreatedAttr, Scope, ABI,
    };
    let v = landlock_abi();
    if v < 1 {
        return Err("no Landlock".into());
    }
    let abi = ABI::from(v);
    let err = |e: landlock::RulesetError| e.to_string();
    // Every write right but device ioctls (terminals need them); reading and executing are
    // not handled, so they stay allowed everywhere.
    let handled: BitFlags<AccessFs> =
        AccessFs::from_write(abi) & !BitFlags::from(AccessFs::IoctlDev);
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(handled)
        .map_err(err)?;
    let net_rules = v >= 4 && *network != Network::All;
    if net_rules {
        let access = match network {
            Network::None => AccessNet::from_all(abi),
            _ => BitFlags::from(AccessNet::ConnectTcp),
        };
        ruleset = ruleset.handle_access(access).map_err(err)?;
    }
    if v >= 6 {
        let scopes = if *network == Network::All {
            BitFlags::from(Scope::Signal)
        } else {
            Scope::from_all(abi)
        };
        ruleset = ruleset.scope(scopes).map_err(err)?;
    }
    let mut created = ruleset.create().map_err(err)?;
    let file_rights = AccessFs::from_file(abi) & handled;
    for w in writable {
        let access = match w.grant {
            Grant::Tree => handled,
            Grant::Objects => {
                (AccessFs::MakeReg | AccessFs::MakeDir | AccessFs::WriteFile | AccessFs::RemoveFile)
                    & handled
            }
            Grant::File => file_rights,
        };
        if w.grant == Grant::Tree && w.why == "agent state" {
            let _ = std::fs::create_dir_all(&w.path);
        }
        if w.why.starts_with("own") {
            let _ = std::fs::create_dir_all(&w.path);
        }
        let Ok(fd) = PathFd::new(&w.path) else {
            continue; // Missing: nothing to write there.
        };
        // A file gets file rights only, whatever the grant said.
        let access = if w.path.is_dir() {
            access
        } else {
            access & file_rights
        };
        created = created
            .add_rule(PathBeneath::new(fd, access))
            .map_err(err)?;
    }
    if let (true, Network::Ports(ports)) = (net_rules, network) {
        for p in ports {
            created = created
                .add_rule(NetPort::new(*p, AccessNet::ConnectTcp))
                .map_err(err)?;
        }
    }
    let fd: Option<OwnedFd> = created.into();
    let fd = fd.ok_or_else(|| "no Landlock".to_string())?;
    let note = if *network != Network::All && !net_rules {
        format!("ABI {v}; the network is NOT limited: port rules need ABI 4")
    } else {
        format!("ABI {v}")
    };
    Ok((fd, note))
}

/// Whether `bwrap` runs here.
fn bwrap_works() -> bool {
    static WORKS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *WORKS.get_or_init(|| {
        std::process::Command::new("bwrap")
            .args(["--ro-bind", "/", "/", "--dev", "/dev", "true"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// The `bwrap` command line before the command: the filesystem read-only, a fresh `/dev`,
/// a private `/tmp` (the repository and the home rebound read-only if they are in it),
/// the writable paths bound read-write, `--unshare-net` for network `none`.
fn bwrap_prefix(
    places: &Places,
    writable: &[Writable],
    network: &Network,
) -> Result<(Vec<String>, String), String> {
    if !bwrap_works() {
        return Err("no bwrap".into());
    }
    let s = |p: &Path| p.display().to_string();
    let mut argv: Vec<String> = [
        "bwrap",
        "--die-with-parent",
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--tmpfs",
        "/tmp",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let tmp = Path::new("/tmp");
    let mut keep: Vec<&Path> = vec![places.worktree.as_path()];
    keep.extend(places.common_dir.as_deref());
    keep.extend(places.home.as_deref());
    for k in keep {
        // What lies in /tmp (a repository there, say) stays visible.
        if let Some(top) = top_under(k, tmp) {
            if top.exists() {
                argv.extend(["--ro-bind".to_string(), s(&top), s(&top)]);
            }
        }
    }
    for w in writable {
        if w.path.starts_with("/dev") {
            continue; // The fresh /dev has them.
        }
        if w.why == "agent state" && w.grant == Grant::Tree {
            let _ = std::fs::create_dir_all(&w.path);
        }
        if w.path.exists() {
            argv.extend(["--bind".to_string(), s(&w.path), s(&w.path)]);
        }
    }
    let note = match network {
        Network::All => String::new(),
        Network::None => {
            argv.push("--unshare-net".into());
            String::new()
        }
        Network::Ports(_) => " (the network is NOT limited: bwrap has no port rules)".to_string(),
    };
    argv.push("--".into());
    Ok((argv, note))
}

/// The top directory of `path` right under `dir` (`/tmp/x/repo` → `/tmp/x`), if inside.
fn top_under(path: &Path, dir: &Path) -> Option<PathBuf> {
    let rest = path.strip_prefix(dir).ok()?;
    let first = rest.components().next()?;
    Some(dir.join(first))
}

/// What every policy line starts with ([`Sandbox::line`]).
pub const LINE_PREFIX: &str = "git-ws: sandbox";

/// Whether `line` of a log is the policy line git-ws wrote there: tails leave it out, so
/// output tails, reports and test results show only what the command printed.
pub fn is_policy_line(line: &str) -> bool {
    line.starts_with(LINE_PREFIX) || line.starts_with("git-ws: ws.sandbox = ")
}

/// At most this many denials are reported per command.
const MAX_DENIALS: usize = 5;

/// A denial git prints on every commit in a contained worktree and that changes nothing: a
/// commit deletes the worktree's `AUTO_MERGE` pseudo-ref, and deleting a ref locks the
/// repository's shared `packed-refs` (outside the worktree) even when there is nothing to
/// delete; the commit itself succeeds.
fn harmless(line: &str) -> bool {
    line.starts_with("error: Unable to create '")
        && (line.ends_with("/packed-refs.lock': Permission denied")
            || line.ends_with("/packed-refs.lock': Read-only file system"))
}

/// The writes the sandbox denied, as far as the command's output tells (the kernel does not
/// report them): each line of `output` saying `Permission denied` (Landlock) or `Read-only
/// file system` (bubblewrap) while a mechanism was in force, as a warning (at most
/// [`MAX_DENIALS`], each cut to 200 characters).
pub fn denials(sandbox: Option<&Sandbox>, output: &str) -> Vec<String> {
    let Some(mechanism) = sandbox.and_then(Sandbox::mechanism) else {
        return Vec::new();
    };
    let mut seen = Vec::new();
    for line in output.lines() {
        let l = line.trim();
        if !(l.contains("Permission denied") || l.contains("Read-only file system")) {
            continue;
        }
        if harmless(l) {
            continue;
        }
        let cut: String = l.chars().take(200).collect();
        if !seen.contains(&cut) {
            seen.push(cut);
        }
    }
    let n = seen.len();
    let mut out: Vec<String> = seen
        .into_iter()
        .take(MAX_DENIALS)
        .map(|l| format!("sandbox ({}) denied: {l}", mechanism.as_str()))
        .collect();
    if n > MAX_DENIALS {
        out.push(format!(
            "sandbox ({}): {} more denials in the log",
            mechanism.as_str(),
            n - MAX_DENIALS
        ));
    }
    out
}

/// Codex's own sandbox for the commands it runs, as the preset asks for it.
const CODEX_OWN_SANDBOX: [&str; 2] = ["--sandbox", "workspace-write"];
/// What replaces it under git-ws's sandbox.
const CODEX_UNDER_OURS: [&str; 2] = ["--sandbox", "danger-full-access"];

/// The argv to spawn for `argv` under `sandbox`: bubblewrap's prefix, or `argv` itself.
/// Codex's own sandbox (`--sandbox workspace-write`) builds mount namespaces, which no
/// process under Landlock or inside bubblewrap may do, so every file edit it makes would
/// fail: under a mechanism, the Codex preset's `workspace-write` becomes
/// `danger-full-access`, and git-ws's sandbox confines Codex and what it runs instead.
pub fn argv(sandbox: Option<&Sandbox>, argv: &[String]) -> Vec<String> {
    let mut argv = argv.to_vec();
    let codex =
        sandbox.is_some_and(|s| s.mechanism().is_some() && s.0.preset == Some(Preset::Codex));
    if codex {
        if let Some(i) = argv.windows(2).position(|w| w == CODEX_OWN_SANDBOX) {
            argv[i + 1] = CODEX_UNDER_OURS[1].to_string();
        }
    }
    match sandbox.map(|s| &s.0.how) {
        Some(How::Bwrap(prefix)) => prefix.iter().cloned().chain(argv).collect(),
        _ => argv,
    }
}

/// Append the policy line of `sandbox` to `log` (best effort, as the log's other notes):
/// before the command's output, so it starts the attempt's log.
pub fn write_policy_line(sandbox: Option<&Sandbox>, log: &Path) {
    let Some(sb) = sandbox else {
        return;
    };
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
    {
        let _ = writeln!(f, "{}", sb.0.line);
    }
}

/// Put `sandbox` on `cmd` before it is spawned: `TMPDIR` is the slot's own (the spec's
/// environment, set after, may change it), and under Landlock the ruleset is applied in the
/// child between fork and exec ([`write_policy_line`] starts the log). `Err(sentence)`: the
/// command must not start.
pub fn apply(cmd: &mut tokio::process::Command, sandbox: Option<&Sandbox>) -> Result<(), String> {
    let Some(sb) = sandbox else {
        return Ok(());
    };
    if let Some(t) = &sb.0.tmpdir {
        cmd.env("TMPDIR", t);
    }
    if matches!(sb.0.how, How::Landlock(_) | How::Bwrap(_)) {
        cmd.env(
            "GIT_CONFIG_PARAMETERS",
            no_auto_maintenance(std::env::var("GIT_CONFIG_PARAMETERS").ok().as_deref()),
        );
    }
    match &sb.0.how {
        How::Refused(why) => Err(why.clone()),
        How::None | How::Bwrap(_) => Ok(()),
        How::Landlock(fd) => {
            let raw = fd.as_raw_fd();
            // SAFETY: between fork and exec only two system calls and errno are used
            // (async-signal-safe); `raw` stays open in the parent while the spec (which
            // holds the sandbox) lives, and is close-on-exec.
            unsafe {
                cmd.pre_exec(move || restrict_self(raw));
            }
            Ok(())
        }
    }
}

/// `GIT_CONFIG_PARAMETERS` (what `git -c` passes to the git commands it runs) with
/// `existing` kept and git's automatic maintenance turned off: a commit in a contained
/// worktree would otherwise start `git maintenance run --auto`, which packs the repository's
/// refs and objects — outside the worktree, so the sandbox denies it and every agent
/// workstream got a warning; and packing the user's repository is not an agent's business.
fn no_auto_maintenance(existing: Option<&str>) -> String {
    let ours = "'maintenance.auto'='false' 'gc.auto'='0'";
    match existing.map(str::trim).filter(|e| !e.is_empty()) {
        Some(e) => format!("{e} {ours}"),
        None => ours.to_string(),
    }
}

/// Restrict the calling process with the Landlock ruleset `fd` (no new privileges first, as
/// the kernel requires of an unprivileged caller). Async-signal-safe.
fn restrict_self(fd: i32) -> std::io::Result<()> {
    // SAFETY: plain system calls on integers.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::syscall(libc::SYS_landlock_restrict_self, fd, 0) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contained_commands_run_git_without_automatic_maintenance_keeping_git_c() {
        let ours = "'maintenance.auto'='false' 'gc.auto'='0'";
        assert_eq!(no_auto_maintenance(None), ours);
        assert_eq!(no_auto_maintenance(Some(" ")), ours);
        assert_eq!(
            no_auto_maintenance(Some("'core.pager'='cat'")),
            format!("'core.pager'='cat' {ours}")
        );
    }

    #[test]
    fn a_commit_in_a_contained_worktree_starts_no_maintenance_outside_it() {
        if skip_without_landlock() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        let git = |args: &[&str], cwd: &Path| {
            let out = std::process::Command::new("git")
                .args(["-c", "user.name=t", "-c", "user.email=t@t"])
                .args(args)
                .current_dir(cwd)
                .output()
                .unwrap();
            assert!(out.status.success(), "git {args:?}: {out:?}");
        };
        std::fs::create_dir(&repo).unwrap();
        git(&["init", "-q"], &repo);
        git(&["commit", "-q", "--allow-empty", "-m", "a"], &repo);
        let wt = dir.path().join("wt");
        git(
            &[
                "worktree",
                "add",
                "-q",
                "-b",
                "ws/r/x",
                wt.to_str().unwrap(),
            ],
            &repo,
        );
        let sb = for_slot(&wt, Some(Mode::Landlock), None).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let out = rt.block_on(async {
            let mut cmd = tokio::process::Command::new("sh");
            cmd.args([
                "-c",
                "echo x > f && git add f && GIT_TRACE=1 git -c user.name=t -c user.email=t@t commit -q -m b 2>&1",
            ])
            .current_dir(&wt);
            apply(&mut cmd, Some(&sb)).unwrap();
            cmd.output().await.unwrap()
        });
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        // No maintenance: it would work on the repository's shared refs and objects, from
        // inside the sandbox, on the agent's behalf.
        assert!(text.contains("trace: built-in: git commit"), "{text}");
        assert!(!text.contains("maintenance run"), "{text}");
        assert!(!repo.join(".git/objects/maintenance.lock").exists());
        // What git still prints (deleting AUTO_MERGE locks packed-refs) is no warning.
        assert!(denials(Some(&sb), &text).is_empty(), "{text}");
    }

    fn skip_without_landlock() -> bool {
        if landlock_abi() >= 1 {
            return false;
        }
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true: the kernel must offer Landlock"
        );
        eprintln!("skipped: the kernel does not offer Landlock");
        true
    }

    fn run(sb: &Sandbox, script: &str, dir: &Path) -> (bool, String) {
        let log = dir.join("log");
        let _ = std::fs::remove_file(&log);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let argv = argv(
            Some(sb),
            &["sh".to_string(), "-c".to_string(), script.to_string()],
        );
        let ok = rt.block_on(async {
            let mut cmd = tokio::process::Command::new(&argv[0]);
            cmd.args(&argv[1..]).current_dir(dir);
            write_policy_line(Some(sb), &log);
            let out = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .unwrap();
            cmd.stdout(out.try_clone().unwrap()).stderr(out);
            apply(&mut cmd, Some(sb)).unwrap();
            cmd.status().await.unwrap().success()
        });
        (ok, std::fs::read_to_string(&log).unwrap_or_default())
    }

    fn places_in(root: &Path) -> Places {
        let wt = root.join("wt");
        std::fs::create_dir_all(&wt).unwrap();
        Places {
            worktree: wt.clone(),
            tmpdir: root.join("tmpdir"),
            ..Places::default()
        }
    }

    #[test]
    fn landlock_allows_the_worktree_and_tmpdir_and_denies_the_rest() {
        if skip_without_landlock() {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let p = places_in(d.path());
        let sb = prepare(&p, Mode::Landlock, &Network::All, None);
        assert_eq!(sb.mechanism(), Some(Mechanism::Landlock), "{}", sb.line());
        let (ok, log) = run(
            &sb,
            "echo in > inside && echo t > \"$TMPDIR/t\" && echo n > /dev/null",
            &p.worktree,
        );
        assert!(ok, "{log}");
        assert!(log.starts_with("git-ws: sandbox landlock (ABI "), "{log}");
        let (ok, log) = run(&sb, "echo x > ../escaped", &p.worktree);
        assert!(!ok, "{log}");
        assert!(log.contains("Permission denied"), "{log}");
        assert!(!d.path().join("escaped").exists());
        // Reading stays allowed everywhere.
        std::fs::write(d.path().join("outside"), "o").unwrap();
        let (ok, log) = run(&sb, "cat ../outside", &p.worktree);
        assert!(ok && log.contains('o'), "{log}");
    }

    #[test]
    fn bwrap_allows_the_worktree_hides_tmp_and_cuts_the_network() {
        if !bwrap_works() {
            eprintln!("skipped: bubblewrap (bwrap) is not installed or cannot run");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let p = places_in(d.path());
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let sb = prepare(&p, Mode::Bwrap, &Network::None, None);
        assert_eq!(sb.mechanism(), Some(Mechanism::Bwrap), "{}", sb.line());
        assert!(
            sb.line().starts_with("git-ws: sandbox bwrap: writable "),
            "{}",
            sb.line()
        );
        let (ok, log) = run(
            &sb,
            "echo in > inside && echo t > \"$TMPDIR/t\" && echo p > /tmp/private-x",
            &p.worktree,
        );
        assert!(ok, "{log}");
        assert!(p.worktree.join("inside").exists() && p.tmpdir.join("t").exists());
        std::fs::write(d.path().join("outside"), "o").unwrap();
        let (ok, log) = run(&sb, "cat ../outside", &p.worktree);
        assert!(ok && log.contains('o'), "reading is allowed: {log}");
        assert!(!Path::new("/tmp/private-x").exists(), "/tmp is not private");
        let (ok, log) = run(&sb, "echo x > ../escaped", &p.worktree);
        assert!(!ok && log.contains("Read-only file system"), "{log}");
        assert!(!d.path().join("escaped").exists());
        let (ok, log) = run(
            &sb,
            &format!("bash -c 'echo hi > /dev/tcp/127.0.0.1/{port}'"),
            &p.worktree,
        );
        assert!(!ok, "connected under --unshare-net: {log}");
        assert_eq!(
            denials(
                Some(&sb),
                "sh: 1: cannot create ../escaped: Read-only file system"
            ),
            ["sandbox (bwrap) denied: sh: 1: cannot create ../escaped: Read-only file system"]
        );
    }

    #[test]
    fn codex_keeps_its_own_sandbox_only_without_ours() {
        let d = tempfile::tempdir().unwrap();
        let p = places_in(d.path());
        let argv_of = |sb: &Sandbox| {
            argv(
                Some(sb),
                &["codex", "exec", "--sandbox", "workspace-write", "--", "p"].map(String::from),
            )
        };
        let off = prepare(&p, Mode::Off, &Network::All, None).for_preset(Some(Preset::Codex));
        assert_eq!(argv_of(&off)[3], "workspace-write");
        if landlock_abi() >= 1 {
            let on =
                prepare(&p, Mode::Landlock, &Network::All, None).for_preset(Some(Preset::Codex));
            assert_eq!(argv_of(&on)[3], "danger-full-access");
            let claude =
                prepare(&p, Mode::Landlock, &Network::All, None).for_preset(Some(Preset::Claude));
            assert_eq!(argv_of(&claude)[3], "workspace-write");
        }
    }

    #[test]
    fn off_runs_unconfined_and_a_missing_named_mechanism_refuses() {
        let d = tempfile::tempdir().unwrap();
        let p = places_in(d.path());
        let sb = prepare(&p, Mode::Off, &Network::All, None);
        assert_eq!(sb.mechanism(), None);
        assert_eq!(sb.line(), "git-ws: sandbox off");
        let (ok, _) = run(&sb, "echo x > ../escaped", &p.worktree);
        assert!(ok && d.path().join("escaped").exists());
        if landlock_abi() < 1 {
            let sb = prepare(&p, Mode::Landlock, &Network::All, None);
            let mut cmd = tokio::process::Command::new("true");
            assert!(apply(&mut cmd, Some(&sb))
                .unwrap_err()
                .contains("ws.sandbox = landlock"));
        }
    }

    #[test]
    fn denials_are_the_permission_errors_under_a_mechanism() {
        let out = "ok\nerror: could not lock config file .git/config: Permission denied\nsh: 1: cannot create /x: Permission denied\nsh: 1: cannot create /x: Permission denied\n";
        let d = tempfile::tempdir().unwrap();
        let p = places_in(d.path());
        let off = prepare(&p, Mode::Off, &Network::All, None);
        assert!(denials(Some(&off), out).is_empty());
        assert!(denials(None, out).is_empty());
        if landlock_abi() < 1 {
            return;
        }
        let on = prepare(&p, Mode::Landlock, &Network::All, None);
        assert_eq!(
            denials(
                Some(&on),
                &format!("{out}error: Unable to create '/r/.git/packed-refs.lock': Permission denied\n")
            ),
            [
                "sandbox (landlock) denied: error: could not lock config file .git/config: Permission denied",
                "sandbox (landlock) denied: sh: 1: cannot create /x: Permission denied"
            ]
        );
    }

    #[test]
    fn places_of_a_linked_worktree_name_its_admin_dir_common_dir_and_branch() {
        let d = tempfile::tempdir().unwrap();
        let repo = d.path().join("r");
        let git = |args: &[&str], dir: &Path| {
            let ok = std::process::Command::new("git")
                .args(args)
                .current_dir(dir)
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .env("GIT_AUTHOR_NAME", "a")
                .env("GIT_AUTHOR_EMAIL", "a@x")
                .env("GIT_COMMITTER_NAME", "a")
                .env("GIT_COMMITTER_EMAIL", "a@x")
                .status()
                .unwrap()
                .success();
            assert!(ok, "git {args:?}");
        };
        std::fs::create_dir_all(&repo).unwrap();
        git(&["init", "-q", "-b", "main"], &repo);
        git(&["commit", "-q", "--allow-empty", "-m", "i"], &repo);
        git(&["worktree", "add", "-q", "-b", "ws/r/a", "../wt"], &repo);
        let p = places(&d.path().join("wt"));
        let common = std::fs::canonicalize(repo.join(".git")).unwrap();
        assert_eq!(p.common_dir.as_deref(), Some(common.as_path()));
        assert_eq!(p.admin_dir, Some(common.join("worktrees/wt")));
        assert_eq!(p.branch.as_deref(), Some("refs/heads/ws/r/a"));
        assert_eq!(p.tmpdir, common.join("worktrees/wt/tmp"));
    }
}
