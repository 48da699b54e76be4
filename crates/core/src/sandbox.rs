//! The sandbox policy, as a description: the modes (`ws.sandbox`, a workstream's
//! `"sandbox"`), the network setting (`ws.sandbox.network`), which paths a sandboxed command
//! may write and how ([`writable`]), the state directories of each preset's CLI
//! ([`preset_state`]), and the one line a log starts with ([`describe`]). Pure: the runtime
//! (`src/sandbox.rs`) finds the paths and enforces the policy.

use crate::agents::Preset;
use crate::Invalid;
use std::path::{Path, PathBuf};

/// `ws.sandbox`, or a workstream's `"sandbox"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The strongest mechanism available (Landlock, else bubblewrap); one warning line
    /// when there is none.
    Auto,
    Landlock,
    Bwrap,
    Off,
    /// `auto`, and a change outside the worktree fails the workstream (the watch's part).
    Strict,
}

impl Mode {
    pub const NAMES: &'static str = "auto, landlock, bwrap, off, strict";

    pub fn parse(text: &str) -> Result<Mode, Invalid> {
        match text.trim().to_ascii_lowercase().as_str() {
            "" | "auto" | "true" | "on" | "yes" => Ok(Mode::Auto),
            "landlock" => Ok(Mode::Landlock),
            "bwrap" | "bubblewrap" => Ok(Mode::Bwrap),
            "off" | "false" | "no" | "none" => Ok(Mode::Off),
            "strict" => Ok(Mode::Strict),
            _ => Err(Invalid::new(format!(
                "unknown sandbox {text:?} (known: {})",
                Mode::NAMES
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Auto => "auto",
            Mode::Landlock => "landlock",
            Mode::Bwrap => "bwrap",
            Mode::Off => "off",
            Mode::Strict => "strict",
        }
    }

    /// The mechanisms to try, in order: the first available one is used. Empty: none
    /// (`off`). `strict` picks its mechanism as `auto` does.
    pub fn mechanisms(self) -> &'static [Mechanism] {
        match self {
            Mode::Auto | Mode::Strict => &[Mechanism::Landlock, Mechanism::Bwrap],
            Mode::Landlock => &[Mechanism::Landlock],
            Mode::Bwrap => &[Mechanism::Bwrap],
            Mode::Off => &[],
        }
    }

    /// Whether a missing mechanism is only a warning (`auto`, `strict`) rather than an
    /// error (a mechanism named explicitly).
    pub fn falls_back(self) -> bool {
        matches!(self, Mode::Auto | Mode::Strict)
    }
}

/// What enforces the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// The kernel's Landlock LSM, applied to the command between fork and exec.
    Landlock,
    /// bubblewrap (`bwrap`): a mount namespace with the filesystem read-only but for the
    /// writable paths, a private `/tmp`, and `--unshare-net` for network `none`.
    Bwrap,
}

impl Mechanism {
    pub fn as_str(self) -> &'static str {
        match self {
            Mechanism::Landlock => "landlock",
            Mechanism::Bwrap => "bwrap",
        }
    }
}

/// `ws.sandbox.network`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Network {
    /// Every connection (agents call their APIs).
    #[default]
    All,
    /// No TCP connection or bind (Landlock); no network at all (bwrap).
    None,
    /// TCP connections to these ports only (Landlock ABI 4 or later).
    Ports(Vec<u16>),
}

impl Network {
    /// `all`, `none`, or ports separated by commas or spaces (`443,8080`).
    pub fn parse(text: &str) -> Result<Network, Invalid> {
        let t = text.trim().to_ascii_lowercase();
        match t.as_str() {
            "" | "all" | "on" | "true" => return Ok(Network::All),
            "none" | "off" | "false" => return Ok(Network::None),
            _ => {}
        }
        let mut ports = Vec::new();
        for p in t.split([',', ' ']).filter(|p| !p.is_empty()) {
            match p.parse::<u16>() {
                Ok(n) if n > 0 => ports.push(n),
                _ => {
                    return Err(Invalid::new(format!(
                        "{p:?} is not a TCP port (1-65535); use all, none or a list of ports"
                    )))
                }
            }
        }
        ports.sort_unstable();
        ports.dedup();
        Ok(Network::Ports(ports))
    }

    pub fn describe(&self) -> String {
        match self {
            Network::All => "all".to_string(),
            Network::None => "none".to_string(),
            Network::Ports(p) => {
                let p: Vec<String> = p.iter().map(u16::to_string).collect();
                format!("tcp ports {}", p.join(","))
            }
        }
    }
}

/// How a path may be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// Anything beneath this directory (or this file): create, write, remove, rename.
    Tree,
    /// The object store: create files and directories and write them, remove files (git
    /// writes an object to a temporary file, then links it and removes the temporary);
    /// no truncating and no removing directories.
    Objects,
    /// This one file: write and truncate it, nothing else.
    File,
}

/// One writable path and why it is writable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Writable {
    pub path: PathBuf,
    pub grant: Grant,
    pub why: &'static str,
}

/// Where one command runs, as the policy needs it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Places {
    /// The agent's worktree.
    pub worktree: PathBuf,
    /// The worktree's admin dir (`<common>/worktrees/<slot>`): its `HEAD`, index, logs.
    pub admin_dir: Option<PathBuf>,
    /// The git common dir.
    pub common_dir: Option<PathBuf>,
    /// The branch checked out in the worktree (`refs/heads/…`), if any.
    pub branch: Option<String>,
    /// The slot's private temporary directory (`TMPDIR`).
    pub tmpdir: PathBuf,
    /// The user's home, for the presets' state.
    pub home: Option<PathBuf>,
    /// `CODEX_HOME`, when set.
    pub codex_home: Option<PathBuf>,
    /// `ws.sandbox.allowWrite`.
    pub extra: Vec<PathBuf>,
    /// Files git-ws hands the command to write (its `WS_METRICS` file).
    pub files: Vec<PathBuf>,
}

/// The namespace of git-ws's own branches: a worktree's branch there may be updated.
pub const OWN_BRANCHES: &str = "refs/heads/ws/";

/// The files a device-using command needs to write (each one file, not `/dev`).
pub const DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/tty",
    "/dev/ptmx",
];

/// Every path a command may write, and how. The branch's directory of refs (and of its
/// reflogs) is writable only for git-ws's own branches ([`OWN_BRANCHES`]): git updates a
/// ref by creating `<ref>.lock` beside it and renaming it.
pub fn writable(p: &Places, preset: Option<Preset>) -> Vec<Writable> {
    let mut w = vec![Writable {
        path: p.worktree.clone(),
        grant: Grant::Tree,
        why: "worktree",
    }];
    if let Some(admin) = &p.admin_dir {
        w.push(Writable {
            path: admin.clone(),
            grant: Grant::Tree,
            why: "worktree admin dir",
        });
    }
    if let Some(common) = &p.common_dir {
        w.push(Writable {
            path: common.join("objects"),
            grant: Grant::Objects,
            why: "object store",
        });
        if let Some(dir) = p.branch.as_deref().and_then(branch_dir) {
            w.push(Writable {
                path: common.join(&dir),
                grant: Grant::Tree,
                why: "own branches",
            });
            w.push(Writable {
                path: common.join("logs").join(dir),
                grant: Grant::Tree,
                why: "own reflogs",
            });
        }
    }
    w.push(Writable {
        path: p.tmpdir.clone(),
        grant: Grant::Tree,
        why: "TMPDIR",
    });
    if let Some(preset) = preset {
        for (path, grant) in preset_state(preset, p.home.as_deref(), p.codex_home.as_deref()) {
            w.push(Writable {
                path,
                grant,
                why: "agent state",
            });
        }
    }
    for e in &p.extra {
        w.push(Writable {
            path: e.clone(),
            grant: Grant::Tree,
            why: "ws.sandbox.allowWrite",
        });
    }
    for f in &p.files {
        w.push(Writable {
            path: f.clone(),
            grant: Grant::File,
            why: "WS_METRICS",
        });
    }
    for d in DEVICES {
        w.push(Writable {
            path: PathBuf::from(d),
            grant: Grant::File,
            why: "device",
        });
    }
    w.push(Writable {
        path: PathBuf::from("/dev/pts"),
        grant: Grant::Tree,
        why: "device",
    });
    w.push(Writable {
        path: PathBuf::from("/dev/shm"),
        grant: Grant::Tree,
        why: "device",
    });
    w
}

/// The directory of `branch` (`refs/heads/ws/<run>/<id>` → `refs/heads/ws/<run>`) when it
/// is one of git-ws's own; `None` for any other branch, and for names that climb (`..`).
pub fn branch_dir(branch: &str) -> Option<PathBuf> {
    if !branch.starts_with(OWN_BRANCHES) || branch.split('/').any(|c| c == ".." || c == ".") {
        return None;
    }
    let (dir, _) = branch.rsplit_once('/')?;
    (dir.len() + 1 >= OWN_BRANCHES.len()).then(|| PathBuf::from(dir))
}

/// The state each preset's CLI writes outside the worktree (from each tool's docs):
/// - Claude Code: `~/.claude/` (settings, sessions, todos) and `~/.claude.json`;
/// - Codex CLI: `$CODEX_HOME`, else `~/.codex/` (config, sessions, logs);
/// - Gemini CLI: `~/.gemini/` (settings, history, tmp);
/// - aider: `~/.aider/` (caches); its chat and input history are in the worktree.
pub fn preset_state(
    preset: Preset,
    home: Option<&Path>,
    codex_home: Option<&Path>,
) -> Vec<(PathBuf, Grant)> {
    let Some(home) = home else {
        return match (preset, codex_home) {
            (Preset::Codex, Some(c)) => vec![(c.to_path_buf(), Grant::Tree)],
            _ => Vec::new(),
        };
    };
    match preset {
        Preset::Claude => vec![
            (home.join(".claude"), Grant::Tree),
            (home.join(".claude.json"), Grant::File),
        ],
        Preset::Codex => vec![(
            codex_home.map_or_else(|| home.join(".codex"), Path::to_path_buf),
            Grant::Tree,
        )],
        Preset::Gemini => vec![(home.join(".gemini"), Grant::Tree)],
        Preset::Aider => vec![(home.join(".aider"), Grant::Tree)],
    }
}

/// The line a log starts with: the mechanism, what is writable and the network.
pub fn describe(mechanism: &str, writable: &[Writable], network: &Network) -> String {
    let paths: Vec<String> = writable
        .iter()
        .filter(|w| w.why != "device")
        .map(|w| match w.grant {
            Grant::Objects => format!("{} (create-only)", w.path.display()),
            _ => w.path.display().to_string(),
        })
        .collect();
    format!(
        "git-ws: sandbox {mechanism}: writable {}; network {}",
        paths.join(", "),
        network.describe()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_with_clear_errors() {
        assert_eq!(Mode::parse("AUTO").unwrap(), Mode::Auto);
        assert_eq!(Mode::parse("").unwrap(), Mode::Auto);
        assert_eq!(Mode::parse("bubblewrap").unwrap(), Mode::Bwrap);
        assert_eq!(Mode::parse("off").unwrap(), Mode::Off);
        assert_eq!(
            Mode::parse("strict").unwrap().mechanisms(),
            Mode::Auto.mechanisms()
        );
        let e = Mode::parse("docker").unwrap_err().to_string();
        assert!(e.contains("\"docker\"") && e.contains("landlock"), "{e}");
        assert!(Mode::Off.mechanisms().is_empty());
        assert!(!Mode::Landlock.falls_back() && Mode::Auto.falls_back());
    }

    #[test]
    fn network_parses_all_none_and_ports() {
        assert_eq!(Network::parse("all").unwrap(), Network::All);
        assert_eq!(Network::parse(" None ").unwrap(), Network::None);
        assert_eq!(
            Network::parse("8080, 443 443").unwrap(),
            Network::Ports(vec![443, 8080])
        );
        assert_eq!(
            Network::parse("443,8080").unwrap().describe(),
            "tcp ports 443,8080"
        );
        for bad in ["0", "70000", "http", "-1"] {
            let e = Network::parse(bad).unwrap_err().to_string();
            assert!(e.contains("not a TCP port"), "{bad}: {e}");
        }
    }

    #[test]
    fn only_git_ws_branches_get_their_ref_directory() {
        assert_eq!(
            branch_dir("refs/heads/ws/run-1/a"),
            Some(PathBuf::from("refs/heads/ws/run-1"))
        );
        assert_eq!(branch_dir("refs/heads/main"), None);
        assert_eq!(
            branch_dir("refs/heads/ws/x"),
            Some(PathBuf::from("refs/heads/ws"))
        );
        assert_eq!(branch_dir("refs/heads/ws/../main"), None);
        assert_eq!(branch_dir("refs/heads/wsx/a/b"), None);
    }

    fn places() -> Places {
        Places {
            worktree: "/r/.git/ws/agent-1".into(),
            admin_dir: Some("/r/.git/worktrees/agent-1".into()),
            common_dir: Some("/r/.git".into()),
            branch: Some("refs/heads/ws/run/a".into()),
            tmpdir: "/r/.git/worktrees/agent-1/tmp".into(),
            home: Some("/home/u".into()),
            codex_home: None,
            extra: vec!["/opt/cache".into()],
            files: vec!["/r/.state/logs/run/a.metrics.json".into()],
        }
    }

    #[test]
    fn the_writable_paths_are_the_worktree_its_git_state_and_nothing_of_the_user() {
        let w = writable(&places(), None);
        let paths: Vec<String> = w.iter().map(|w| w.path.display().to_string()).collect();
        for want in [
            "/r/.git/ws/agent-1",
            "/r/.git/worktrees/agent-1",
            "/r/.git/objects",
            "/r/.git/refs/heads/ws/run",
            "/r/.git/logs/refs/heads/ws/run",
            "/opt/cache",
            "/r/.state/logs/run/a.metrics.json",
            "/dev/null",
        ] {
            assert!(
                paths.contains(&want.to_string()),
                "{want} missing: {paths:?}"
            );
        }
        for never in [
            "/r/.git",
            "/r",
            "/r/.git/refs",
            "/r/.git/hooks",
            "/home/u",
            "/dev",
        ] {
            assert!(!paths.contains(&never.to_string()), "{never} writable");
        }
        let objects = w.iter().find(|w| w.why == "object store").unwrap();
        assert_eq!(objects.grant, Grant::Objects);
        // The user's branch checked out: no ref directory at all.
        let mut p = places();
        p.branch = Some("refs/heads/main".into());
        assert!(!writable(&p, None).iter().any(|w| w.why.starts_with("own")));
    }

    #[test]
    fn each_preset_gets_its_own_state_directories() {
        let home = Path::new("/h");
        assert_eq!(
            preset_state(Preset::Claude, Some(home), None),
            vec![
                (PathBuf::from("/h/.claude"), Grant::Tree),
                (PathBuf::from("/h/.claude.json"), Grant::File)
            ]
        );
        assert_eq!(
            preset_state(Preset::Codex, Some(home), Some(Path::new("/c"))),
            vec![(PathBuf::from("/c"), Grant::Tree)]
        );
        assert_eq!(
            preset_state(Preset::Codex, Some(home), None)[0].0,
            PathBuf::from("/h/.codex")
        );
        assert_eq!(
            preset_state(Preset::Gemini, Some(home), None)[0].0,
            PathBuf::from("/h/.gemini")
        );
        assert_eq!(
            preset_state(Preset::Aider, Some(home), None)[0].0,
            PathBuf::from("/h/.aider")
        );
        assert!(preset_state(Preset::Claude, None, None).is_empty());
        let w = writable(&places(), Some(Preset::Gemini));
        assert!(w.iter().any(|w| w.path == Path::new("/home/u/.gemini")));
    }

    #[test]
    fn the_log_line_names_mechanism_paths_and_network() {
        let line = describe("landlock", &writable(&places(), None), &Network::None);
        assert!(line.starts_with("git-ws: sandbox landlock: writable /r/.git/ws/agent-1, "));
        assert!(line.contains("/r/.git/objects (create-only)"), "{line}");
        assert!(line.ends_with("; network none"), "{line}");
        assert!(!line.contains("/dev/null"), "{line}");
    }
}
