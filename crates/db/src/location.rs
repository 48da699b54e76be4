//! Where the database lives: an SQLite file path or a PostgreSQL URL. Parsing, password
//! redaction for every message that names a URL, and the precedence that picks one
//! (`--db` flag > env `GIT_WS_DATABASE_URL` > git config `ws.database` > the default path).
//! Pure: no I/O besides [`DbLocation::exists`].

use serde::{Serialize, Serializer};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use ws_core::Invalid;

/// The environment variable naming the database (a path or a `postgres://` URL).
pub const ENV_VAR: &str = "GIT_WS_DATABASE_URL";
/// The git config key naming the database (a path relative to the repository root, or a URL).
pub const CONFIG_KEY: &str = "ws.database";

/// A PostgreSQL connection URL (`postgres://` or `postgresql://`). Its `Display` and `Debug`
/// hide the password; [`PgUrl::secret`] is the URL as given, for libpq only.
#[derive(Clone, PartialEq, Eq)]
pub struct PgUrl(String);

impl PgUrl {
    /// Accept a `postgres://` or `postgresql://` URL; libpq checks the rest when connecting.
    pub fn parse(s: &str) -> Result<PgUrl, Invalid> {
        let lower = s.to_ascii_lowercase();
        let Some(rest) = ["postgres://", "postgresql://"]
            .iter()
            .find_map(|p| lower.strip_prefix(p).map(|_| &s[p.len()..]))
        else {
            return Err(Invalid::new(
                "a PostgreSQL URL starts with postgres:// or postgresql://",
            ));
        };
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Invalid::new(
                "a URL cannot contain spaces or control characters",
            ));
        }
        let (authority, tail) = split_authority(rest);
        let path = tail.split_once('?').map_or(tail, |(p, _)| p);
        if path.contains('@') {
            // A `/` or `?` in the user info: libpq would take part of the password for the
            // host or port and echo it in its error. Never quote the URL here.
            return Err(Invalid::new(
                "the URL has an `@` after its host: a user name or password holding `/`, `?` \
                 or `@` must be percent-encoded (%2F, %3F, %40)",
            ));
        }
        let (userinfo, host) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        if host.is_empty() && !rest.contains("host=") {
            return Err(Invalid::new(
                "the URL names no host (postgres://USER@HOST:PORT/DATABASE); git-ws does not \
                 guess one",
            ));
        }
        // The user info up to the last `@` (the host holds none), the password after its first
        // `:`, each percent-encoded where needed: libpq splits at the first `@`, so an
        // unencoded `@` in a password would otherwise reach it as part of the host name.
        let Some(userinfo) = userinfo else {
            return Ok(PgUrl(s.to_string()));
        };
        let encoded = match userinfo.split_once(':') {
            Some((user, pw)) => format!("{}:{}", encode_userinfo(user), encode_userinfo(pw)),
            None => encode_userinfo(userinfo),
        };
        let scheme = &s[..s.len() - rest.len()];
        Ok(PgUrl(format!("{scheme}{encoded}@{host}{tail}")))
    }

    /// The URL with its password, for libpq; never print it.
    pub fn secret(&self) -> &str {
        &self.0
    }

    /// The URL with any password (in the user info or a `password=` parameter) replaced
    /// by `***`.
    pub fn redacted(&self) -> String {
        let s = &self.0;
        let scheme_end = s.find("://").map_or(0, |i| i + 3);
        let (authority, tail) = split_authority(&s[scheme_end..]);
        let authority = match authority.rsplit_once('@') {
            Some((user, host)) => match user.split_once(':') {
                Some((name, _)) => format!("{name}:***@{host}"),
                None => authority.to_string(),
            },
            None => authority.to_string(),
        };
        let tail = match tail.split_once('?') {
            Some((path, query)) => {
                let params: Vec<String> = query
                    .split('&')
                    .map(|p| match p.split_once('=') {
                        Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                        _ => p.to_string(),
                    })
                    .collect();
                format!("{path}?{}", params.join("&"))
            }
            None => tail.to_string(),
        };
        format!("{}{authority}{tail}", &s[..scheme_end])
    }

    /// The password given in the user info or a `password=` parameter, as written.
    pub fn password(&self) -> Option<String> {
        let s = &self.0;
        let (authority, tail) = split_authority(&s[s.find("://").map_or(0, |i| i + 3)..]);
        let from_userinfo = authority
            .rsplit_once('@')
            .and_then(|(user, _)| user.split_once(':'))
            .map(|(_, pw)| pw.to_string());
        from_userinfo.or_else(|| {
            let (_, query) = tail.split_once('?')?;
            query.split('&').find_map(|p| {
                let (k, v) = p.split_once('=')?;
                k.eq_ignore_ascii_case("password").then(|| v.to_string())
            })
        })
    }

    /// Every form of the password a message or an output could show: as written in the URL
    /// and percent-decoded (for [`redaction`](crate::location) of stored output).
    pub fn passwords(&self) -> Vec<String> {
        let Some(p) = self.password() else {
            return Vec::new();
        };
        let decoded = percent_decode(&p);
        let mut v = vec![p];
        if !v.contains(&decoded) {
            v.push(decoded);
        }
        v
    }

    /// Whether the URL sets query parameter `key`.
    pub fn has_param(&self, key: &str) -> bool {
        let (_, tail) = split_authority(&self.0[self.0.find("://").map_or(0, |i| i + 3)..]);
        tail.split_once('?').is_some_and(|(_, q)| {
            q.split('&')
                .any(|p| p.split('=').next().is_some_and(|k| k == key))
        })
    }

    /// The URL with `key=value` appended as a query parameter.
    pub fn with_param(&self, key: &str, value: &str) -> PgUrl {
        let sep = if self.0.contains('?') { '&' } else { '?' };
        PgUrl(format!("{}{sep}{key}={value}", self.0))
    }
}

/// A user name or password with every byte that is not unreserved in a URL's user info
/// percent-encoded; `%XX` escapes already there are kept. Pure.
fn encode_userinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let escape = c == b'%'
            && i + 2 < b.len()
            && b[i + 1].is_ascii_hexdigit()
            && b[i + 2].is_ascii_hexdigit();
        if escape || c.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&c) {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
        i += 1;
    }
    out
}

/// `%XX` escapes decoded (invalid ones and non-UTF-8 results kept as written). Pure.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        match (
            b[i],
            b.get(i + 1).and_then(|&c| hex(c)),
            b.get(i + 2).and_then(|&c| hex(c)),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push(h * 16 + l);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
}

/// `user:pass@host:port` and what follows it (`/db?params`).
fn split_authority(after_scheme: &str) -> (&str, &str) {
    let end = after_scheme.find(['/', '?']).unwrap_or(after_scheme.len());
    after_scheme.split_at(end)
}

impl fmt::Display for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgUrl({:?})", self.redacted())
    }
}

/// The database: an SQLite file (the default) or a PostgreSQL server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbLocation {
    Sqlite(PathBuf),
    Postgres(PgUrl),
}

impl DbLocation {
    /// `postgres://…` / `postgresql://…` is PostgreSQL, any other `scheme://` is refused,
    /// anything else is an SQLite path.
    pub fn parse(s: &str) -> Result<DbLocation, Invalid> {
        if s.is_empty() {
            return Err(Invalid::new("empty database path"));
        }
        let lower = s.to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            return PgUrl::parse(s).map(DbLocation::Postgres);
        }
        if let Some((scheme, _)) = s.split_once("://") {
            let looks_like_scheme = scheme
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c));
            if looks_like_scheme {
                return Err(Invalid::new(format!(
                    "unsupported database URL scheme {scheme}:// (give an SQLite file path or a \
                     postgres:// URL)"
                )));
            }
        }
        Ok(DbLocation::Sqlite(PathBuf::from(s)))
    }

    /// Something `Display`: the path, or the URL with its password hidden.
    pub fn display(&self) -> impl fmt::Display + '_ {
        DisplayLocation(self)
    }

    /// The SQLite file, if this is one.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            DbLocation::Sqlite(p) => Some(p),
            DbLocation::Postgres(_) => None,
        }
    }

    /// Whether there may be recorded runs to read without creating anything: the SQLite
    /// file exists, or the database is a server (asked when opened).
    pub fn exists(&self) -> bool {
        match self {
            DbLocation::Sqlite(p) => p.is_file(),
            DbLocation::Postgres(_) => true,
        }
    }

    /// A relative SQLite path made relative to `base`; URLs unchanged.
    pub fn relative_to(self, base: &Path) -> DbLocation {
        match self {
            DbLocation::Sqlite(p) if p.is_relative() => DbLocation::Sqlite(base.join(p)),
            other => other,
        }
    }
}

struct DisplayLocation<'a>(&'a DbLocation);

impl fmt::Display for DisplayLocation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            DbLocation::Sqlite(p) => write!(f, "{}", p.display()),
            DbLocation::Postgres(u) => write!(f, "{u}"),
        }
    }
}

impl FromStr for DbLocation {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        DbLocation::parse(s)
    }
}

impl Serialize for DbLocation {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.display())
    }
}

impl From<&Path> for DbLocation {
    fn from(p: &Path) -> Self {
        DbLocation::Sqlite(p.to_path_buf())
    }
}

impl From<&PathBuf> for DbLocation {
    fn from(p: &PathBuf) -> Self {
        DbLocation::Sqlite(p.clone())
    }
}

impl From<PathBuf> for DbLocation {
    fn from(p: PathBuf) -> Self {
        DbLocation::Sqlite(p)
    }
}

impl From<&DbLocation> for DbLocation {
    fn from(l: &DbLocation) -> Self {
        l.clone()
    }
}

impl From<PgUrl> for DbLocation {
    fn from(u: PgUrl) -> Self {
        DbLocation::Postgres(u)
    }
}

/// Pick the database: the `--db` flag, else env [`ENV_VAR`], else git config
/// [`CONFIG_KEY`], else `default`. Relative paths from the flag and the environment are
/// relative to `cwd`, from git config relative to `repo_root`. An empty env value counts as
/// unset. `Ok(None)`: nothing given and no default (outside a repository).
pub fn resolve(
    flag: Option<&DbLocation>,
    env: Option<&str>,
    config: Option<&str>,
    cwd: &Path,
    repo_root: Option<&Path>,
    default: Option<PathBuf>,
) -> Result<Option<DbLocation>, Invalid> {
    if let Some(l) = flag {
        return Ok(Some(l.clone().relative_to(cwd)));
    }
    if let Some(v) = env.map(str::trim).filter(|v| !v.is_empty()) {
        let l = DbLocation::parse(v).map_err(|e| Invalid::new(format!("{ENV_VAR}: {e}")))?;
        return Ok(Some(l.relative_to(cwd)));
    }
    if let Some(v) = config.map(str::trim).filter(|v| !v.is_empty()) {
        let l = DbLocation::parse(v)
            .map_err(|e| Invalid::new(format!("git config {CONFIG_KEY}: {e}")))?;
        return Ok(Some(l.relative_to(repo_root.unwrap_or(cwd))));
    }
    Ok(default.map(DbLocation::Sqlite))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg(s: &str) -> PgUrl {
        PgUrl::parse(s).unwrap()
    }

    #[test]
    fn urls_and_paths_are_told_apart() {
        assert!(matches!(
            DbLocation::parse("postgres://u@h:5432/db"),
            Ok(DbLocation::Postgres(_))
        ));
        assert!(matches!(
            DbLocation::parse("PostgreSQL://u@h/db"),
            Ok(DbLocation::Postgres(_))
        ));
        assert_eq!(
            DbLocation::parse("state/x.db").unwrap(),
            DbLocation::Sqlite("state/x.db".into())
        );
        assert_eq!(
            DbLocation::parse("file:x.db").unwrap(),
            DbLocation::Sqlite("file:x.db".into())
        );
        let e = DbLocation::parse("mysql://u@h/db").unwrap_err();
        assert!(
            e.as_str()
                .contains("unsupported database URL scheme mysql://"),
            "{e}"
        );
        assert!(DbLocation::parse("").is_err());
        let e = DbLocation::parse("postgres:///db").unwrap_err();
        assert!(e.as_str().contains("no host"), "{e}");
        assert!(DbLocation::parse("postgres://h/db?host=/run/pg").is_ok());
        assert!(DbLocation::parse("postgres://u@h/d b").is_err());
    }

    #[test]
    fn passwords_never_show() {
        let u = pg("postgres://alice:s3cr%40t@db.example:5433/ws?sslmode=prefer");
        assert_eq!(
            u.redacted(),
            "postgres://alice:***@db.example:5433/ws?sslmode=prefer"
        );
        assert_eq!(u.to_string(), u.redacted());
        assert!(!format!("{u:?}").contains("s3cr"));
        let u = pg("postgresql://bob@h/ws?password=hunter2&connect_timeout=3");
        assert_eq!(
            u.redacted(),
            "postgresql://bob@h/ws?password=***&connect_timeout=3"
        );
        // An @ in the password: the host is after the last @.
        let u = pg("postgres://carol:a@b@h:1/d");
        assert_eq!(u.redacted(), "postgres://carol:***@h:1/d");
        // …and libpq gets it percent-encoded, so it never takes `b@h` for the host.
        assert_eq!(u.secret(), "postgres://carol:a%40b@h:1/d");
        assert_eq!(u.passwords(), ["a%40b", "a@b"]);
        let u = pg("postgres://user:sec@ret@host/x");
        assert_eq!(u.secret(), "postgres://user:sec%40ret@host/x");
        assert_eq!(u.redacted(), "postgres://user:***@host/x");
        // Already encoded: kept; other reserved characters encoded.
        let u = pg("postgres://alice:s3cr%40t#x@db/ws");
        assert_eq!(u.secret(), "postgres://alice:s3cr%40t%23x@db/ws");
        assert_eq!(u.passwords(), ["s3cr%40t%23x", "s3cr@t#x"]);
        // A `/` in the password cannot be told from the path: refused, not echoed.
        let e = PgUrl::parse("postgres://u:pa/ss@h/d").unwrap_err();
        assert!(e.as_str().contains("percent-encoded"), "{e}");
        assert!(
            !e.as_str().contains("pa/ss") && !e.as_str().contains("ss@h"),
            "{e}"
        );
        let l = DbLocation::Postgres(pg("postgres://u:pw@h/d"));
        assert_eq!(l.display().to_string(), "postgres://u:***@h/d");
        assert_eq!(
            serde_json::to_string(&l).unwrap(),
            "\"postgres://u:***@h/d\""
        );
    }

    #[test]
    fn query_parameters() {
        let u = pg("postgres://u@h/d");
        assert!(!u.has_param("connect_timeout"));
        let u = u.with_param("connect_timeout", "10");
        assert_eq!(u.secret(), "postgres://u@h/d?connect_timeout=10");
        assert!(u.has_param("connect_timeout"));
        let u = u.with_param("application_name", "git-ws");
        assert_eq!(
            u.secret(),
            "postgres://u@h/d?connect_timeout=10&application_name=git-ws"
        );
    }

    #[test]
    fn precedence_is_flag_env_config_default() {
        let cwd = Path::new("/work/sub");
        let root = Path::new("/work");
        let default = || Some(root.join(".state/x.db"));
        let flag = DbLocation::parse("f.db").unwrap();
        let r = |flag: Option<&DbLocation>, env: Option<&str>, cfg: Option<&str>| {
            resolve(flag, env, cfg, cwd, Some(root), default()).unwrap()
        };
        assert_eq!(
            r(Some(&flag), Some("postgres://e@h/d"), Some("c.db")),
            Some(DbLocation::Sqlite("/work/sub/f.db".into()))
        );
        assert_eq!(
            r(None, Some("postgres://e@h/d"), Some("c.db"))
                .unwrap()
                .display()
                .to_string(),
            "postgres://e@h/d"
        );
        assert_eq!(
            r(None, Some("e.db"), Some("c.db")),
            Some(DbLocation::Sqlite("/work/sub/e.db".into()))
        );
        assert_eq!(
            r(None, Some("  "), Some("c.db")),
            Some(DbLocation::Sqlite("/work/c.db".into()))
        );
        assert_eq!(
            r(None, None, Some("/abs/c.db")),
            Some(DbLocation::Sqlite("/abs/c.db".into()))
        );
        assert_eq!(
            r(None, None, None),
            Some(DbLocation::Sqlite("/work/.state/x.db".into()))
        );
        assert_eq!(resolve(None, None, None, cwd, None, None).unwrap(), None);
        let e = resolve(None, Some("redis://x"), None, cwd, Some(root), None).unwrap_err();
        assert!(
            e.as_str().starts_with("GIT_WS_DATABASE_URL: unsupported"),
            "{e}"
        );
        let e = resolve(None, None, Some("postgres://"), cwd, Some(root), None).unwrap_err();
        assert!(e.as_str().starts_with("git config ws.database: "), "{e}");
    }
}
