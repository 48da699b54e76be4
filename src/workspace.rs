//! The repository a command works in, as the runtime sees it: where its database is
//! (flag, environment, git config, default), resolved here so the database crate takes its
//! location as a value.

use std::path::Path;
use ws_db::{DbError, DbLocation};
use ws_git::RepoPaths;

/// The database to use from the `--db` flag, env [`ws_db::location::ENV_VAR`], git config
/// [`ws_db::location::CONFIG_KEY`] of `repo`, else [`ws_db::DEFAULT_PATH`] at `repo`'s root (in that
/// order). Relative paths: flag and env against `cwd`, git config against the repository
/// root. `Ok(None)`: nothing set and not in a repository.
pub fn locate_db(
    flag: Option<&DbLocation>,
    cwd: &Path,
    repo: Option<&RepoPaths>,
) -> Result<Option<DbLocation>, DbError> {
    let env = std::env::var(ws_db::location::ENV_VAR).ok();
    let config = match (flag, env.as_deref().map(str::trim)) {
        // Only read git config when it can matter.
        (None, None | Some("")) => {
            repo.and_then(|r| ws_git::config::get_string(r, ws_db::location::CONFIG_KEY))
        }
        _ => None,
    };
    let root = repo.map(|r| r.root.as_path());
    ws_db::location::resolve(
        flag,
        env.as_deref(),
        config.as_deref(),
        cwd,
        root,
        root.map(|r| r.join(ws_db::DEFAULT_PATH)),
    )
    .map_err(DbError::Location)
}
