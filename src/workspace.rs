//! The repository a command works in, as the runtime sees it ([`Workspace`]: where the
//! command started, the repository's paths, one snapshot of its `ws.*` config, and the
//! layout of what the tool writes there), found once per command and shared by the modules
//! that command uses; and where its database is (flag, environment, git config, default),
//! resolved here so the database crate takes its location as a value.

use crate::config::Config;
use crate::error::Error;
use crate::layout::Layout;
use std::path::{Path, PathBuf};
use ws_db::{DbError, DbLocation};
use ws_git::{Repo, RepoPaths};

/// The repository a command works in.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// Where the command started: relative flags are relative to it, and `HEAD` is its
    /// worktree's.
    pub cwd: PathBuf,
    pub repo: RepoPaths,
    /// The `ws.*` keys of the repository's git config, read once.
    pub config: Config,
    /// Where the tool's files are (the reports in their default place unless a command
    /// moves them).
    pub layout: Layout,
}

impl Workspace {
    /// Find the repository containing `cwd` and read its config. Errors: not a git
    /// repository, a bare one, one without commits, an unreadable config.
    pub fn discover(cwd: &Path) -> Result<Workspace, Error> {
        Workspace::of(cwd, &Repo::discover(cwd)?)
    }

    /// The workspace of an open repository (its config read now), for a command started
    /// in `cwd`.
    pub fn of(cwd: &Path, repo: &Repo) -> Result<Workspace, Error> {
        let paths = repo.paths().clone();
        let config = Config::read(&repo.config()?);
        Ok(Workspace {
            cwd: cwd.to_path_buf(),
            layout: Layout::new(&paths).with_html_report(config.html_report()?),
            config,
            repo: paths,
        })
    }

    /// `path` as given on the command line: relative to where the command started.
    pub fn abs(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.cwd.join(path)
        }
    }

    /// The database of this repository: see [`locate_db`]; the layout's default when
    /// nothing names one.
    pub fn database(&self, flag: Option<&DbLocation>) -> Result<DbLocation, DbError> {
        Ok(locate_db(flag, &self.cwd, Some(self))?.unwrap_or_else(|| self.layout.default_db()))
    }
}

/// The database to use from the `--db` flag, env [`ws_db::location::ENV_VAR`], git config
/// [`crate::config::DATABASE`] of the workspace, else [`crate::layout::DEFAULT_DB`] at its
/// root (in that order). Relative paths: flag and env against `cwd`, git config against the
/// repository root. `Ok(None)`: nothing set and not in a repository (`ws`: `None`).
pub fn locate_db(
    flag: Option<&DbLocation>,
    cwd: &Path,
    ws: Option<&Workspace>,
) -> Result<Option<DbLocation>, DbError> {
    let env = std::env::var(ws_db::location::ENV_VAR).ok();
    let config = match (flag, env.as_deref().map(str::trim)) {
        // The config only counts when neither the flag nor the environment names one.
        (None, None | Some("")) => ws.and_then(|w| w.config.database()),
        _ => None,
    };
    let root = ws.map(|w| w.repo.root.as_path());
    ws_db::location::resolve(
        flag,
        env.as_deref(),
        config,
        cwd,
        root,
        ws.and_then(|w| w.layout.default_db().sqlite_path().map(Path::to_path_buf)),
    )
    .map_err(DbError::Location)
    .inspect(|db| {
        // Its password (and the environment's) never reaches a child or a stored log.
        crate::secrets::remember_env();
        if let Some(db) = db {
            crate::secrets::remember_db(db);
        }
    })
}
